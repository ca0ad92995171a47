//! The parts of go-plugin's handshake that are plain data: the magic cookie,
//! protocol version negotiation, the stdout line and the reattach JSON.

use std::fmt::Write as _;

use super::PluginError;

/// Environment variable carrying the magic cookie.
pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";

/// Value Terraform puts in [`MAGIC_COOKIE_KEY`] when it starts a provider.
pub const MAGIC_COOKIE_VALUE: &str =
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

/// go-plugin's own protocol version (first field of the handshake line).
pub const CORE_PROTOCOL_VERSION: u32 = 1;

/// The only Terraform plugin protocol major version this provider speaks.
pub const PROTOCOL_VERSION: u32 = 6;

/// What a person who runs the binary by hand gets to read.
pub const NOT_A_COMMAND_MESSAGE: &str = "\
This binary is a plugin for Terraform (the provider registry.terraform.io/ep-platform/ep).
It is not meant to be run directly: Terraform starts it by itself and talks to it
over gRPC. Use it from Terraform via `terraform init` with a `required_providers`
block, a `provider_installation` filesystem mirror or a `dev_overrides` entry in
your CLI configuration.

To debug the provider, run it with `--debug` and set the TF_REATTACH_PROVIDERS
value it prints in the environment of Terraform.
";

/// Checks the magic cookie the way go-plugin does: exact match.
pub fn cookie_matches(value: Option<&str>) -> bool {
    value == Some(MAGIC_COOKIE_VALUE)
}

/// Picks the protocol version from `PLUGIN_PROTOCOL_VERSIONS` (a comma list
/// such as `5,6`).
///
/// Unset or empty means a client too old to negotiate; go-plugin then serves
/// its own version, and so do we. Entries that are not numbers are skipped
/// (go-plugin does the same). A list without 6 is an error: we cannot serve
/// the client anything it speaks.
pub fn negotiate_protocol(client_versions: Option<&str>) -> Result<u32, PluginError> {
    let Some(list) = client_versions.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(PROTOCOL_VERSION);
    };
    let speaks_ours = list
        .split(',')
        .filter_map(|v| v.trim().parse::<u32>().ok())
        .any(|v| v == PROTOCOL_VERSION);
    if speaks_ours {
        Ok(PROTOCOL_VERSION)
    } else {
        Err(PluginError::UnsupportedProtocol {
            offered: list.to_owned(),
        })
    }
}

/// The address the plugin listens on, as go-plugin names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginAddr {
    /// A unix domain socket at this path.
    Unix(std::path::PathBuf),
    /// A TCP socket on the loopback interface.
    Tcp(std::net::SocketAddr),
}

impl PluginAddr {
    /// go-plugin's network name: `unix` or `tcp`.
    pub fn network(&self) -> &'static str {
        match self {
            PluginAddr::Unix(_) => "unix",
            PluginAddr::Tcp(_) => "tcp",
        }
    }

    /// The address as go-plugin prints it (a path, or `ip:port`).
    pub fn address(&self) -> String {
        match self {
            PluginAddr::Unix(path) => path.to_string_lossy().into_owned(),
            PluginAddr::Tcp(addr) => addr.to_string(),
        }
    }
}

/// The single stdout line of the handshake:
/// `CORE|PROTO|NETWORK|ADDRESS|grpc|CERT` (CERT empty without TLS), plus a
/// seventh `|false` field when the client announced gRPC broker
/// multiplexing, which we do not support (a client that asks for it reads
/// seven fields and then reports the lack clearly).
pub fn handshake_line(
    version: u32,
    addr: &PluginAddr,
    server_cert_b64: Option<&str>,
    client_wants_multiplex: bool,
) -> String {
    let mut line = format!(
        "{CORE_PROTOCOL_VERSION}|{version}|{}|{}|grpc|{}",
        addr.network(),
        addr.address(),
        server_cert_b64.unwrap_or("")
    );
    if client_wants_multiplex {
        line.push_str("|false");
    }
    line.push('\n');
    line
}

/// The `TF_REATTACH_PROVIDERS` JSON for one provider served in debug mode.
pub fn reattach_json(provider_address: &str, pid: u32, addr: &PluginAddr) -> String {
    let mut entry = serde_json::Map::new();
    entry.insert("Protocol".into(), "grpc".into());
    entry.insert("ProtocolVersion".into(), PROTOCOL_VERSION.into());
    entry.insert("Pid".into(), pid.into());
    entry.insert("Test".into(), true.into());
    let mut addr_obj = serde_json::Map::new();
    addr_obj.insert("Network".into(), addr.network().into());
    addr_obj.insert("String".into(), addr.address().into());
    entry.insert("Addr".into(), serde_json::Value::Object(addr_obj));
    let mut root = serde_json::Map::new();
    root.insert(provider_address.into(), serde_json::Value::Object(entry));
    serde_json::Value::Object(root).to_string()
}

/// The human message printed in debug mode, ending with a shell-ready
/// `TF_REATTACH_PROVIDERS='...'` line.
pub fn debug_message(reattach: &str) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "Provider started. To attach Terraform CLI, set the TF_REATTACH_PROVIDERS environment variable with the following:\n"
    );
    let _ = writeln!(
        text,
        "\tTF_REATTACH_PROVIDERS='{}'\n",
        reattach.replace('\'', r#"'"'"'"#)
    );
    let _ = writeln!(
        text,
        "Stop the provider with Ctrl-C (or SIGTERM) when done; Terraform never stops it."
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_must_match_exactly() {
        assert!(cookie_matches(Some(MAGIC_COOKIE_VALUE)));
        assert!(!cookie_matches(None));
        assert!(!cookie_matches(Some("")));
        assert!(!cookie_matches(Some(&MAGIC_COOKIE_VALUE[1..])));
    }

    #[test]
    fn negotiation_picks_six_or_fails() {
        assert_eq!(negotiate_protocol(Some("5,6")).ok(), Some(6));
        assert_eq!(negotiate_protocol(Some(" 6 ")).ok(), Some(6));
        assert_eq!(negotiate_protocol(Some("x,6")).ok(), Some(6));
        assert_eq!(negotiate_protocol(None).ok(), Some(6));
        assert_eq!(negotiate_protocol(Some("")).ok(), Some(6));
        let err = negotiate_protocol(Some("4,5")).err().map(|e| e.to_string());
        assert!(err.unwrap_or_default().contains("4,5"));
        assert!(negotiate_protocol(Some("60")).is_err());
    }

    #[test]
    fn handshake_line_layout() {
        let addr = PluginAddr::Unix("/tmp/plugin123".into());
        assert_eq!(
            handshake_line(6, &addr, Some("QUJD"), false),
            "1|6|unix|/tmp/plugin123|grpc|QUJD\n"
        );
        assert_eq!(
            handshake_line(6, &addr, None, true),
            "1|6|unix|/tmp/plugin123|grpc||false\n"
        );
        let tcp = PluginAddr::Tcp("127.0.0.1:4242".parse().unwrap_or_else(|_| unreachable!()));
        assert_eq!(
            handshake_line(6, &tcp, None, false),
            "1|6|tcp|127.0.0.1:4242|grpc|\n"
        );
    }

    #[test]
    fn reattach_json_shape() {
        let addr = PluginAddr::Unix("/tmp/it's".into());
        let json = reattach_json("registry.terraform.io/ep-platform/ep", 42, &addr);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
        let e = &v["registry.terraform.io/ep-platform/ep"];
        assert_eq!(e["Protocol"], "grpc");
        assert_eq!(e["ProtocolVersion"], 6);
        assert_eq!(e["Pid"], 42);
        assert_eq!(e["Test"], true);
        assert_eq!(e["Addr"]["Network"], "unix");
        assert_eq!(e["Addr"]["String"], "/tmp/it's");
        let msg = debug_message(&json);
        assert!(msg.contains(r#"it'"'"'s"#), "{msg}");
    }
}
