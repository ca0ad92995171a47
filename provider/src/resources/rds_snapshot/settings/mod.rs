//! Checks of the configuration (validate time, on the attribute) and the
//! settings a run uses, with defaults applied; identifiers and the data
//! fingerprint derived from them.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use ep_imagebuild::package::DeploymentPackage;

mod runner;

use runner::validate_runner;
pub use runner::Runner;

use super::model::SnapshotModel;
use crate::datapop::content::sha;
use crate::datapop::{self, Command, DataPopError};
use crate::framework::timeouts::parse_duration;
use crate::framework::{AttrPath, Diagnostic, Diagnostics, Known, Planning};

/// Default engine.
pub const DEFAULT_ENGINE: &str = "mysql";
/// Default instance class.
pub const DEFAULT_INSTANCE_CLASS: &str = "db.t3.medium";
/// Default storage, GiB.
pub const DEFAULT_STORAGE: u32 = 20;
/// Default schema.
pub const DEFAULT_SCHEMA: &str = "commercedb";
/// Default application user.
pub const DEFAULT_APP_USER: &str = "ep";
/// Default master user.
pub const DEFAULT_MASTER_USER: &str = "epadmin";
/// Default CPU units of the `ecs` runner's task.
pub const DEFAULT_ECS_CPU: u32 = 1024;
/// Default memory (MiB) of the `ecs` runner's task: the tool is a JVM.
pub const DEFAULT_ECS_MEMORY: u32 = 4096;
/// Default phase limits.
pub const DEFAULT_INSTANCE_TIMEOUT: Duration = Duration::from_secs(40 * 60);
/// Default limit of the tool run.
pub const DEFAULT_TOOL_TIMEOUT: Duration = Duration::from_secs(60 * 60);
/// Default limit of the snapshot wait.
pub const DEFAULT_SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(20 * 60);

fn err(d: &mut Diagnostics, attr: &str, summary: &str, detail: String) {
    d.push(Diagnostic::error(summary, detail).at(AttrPath::root(attr)));
}

/// Why `name` cannot be an identifier base, if it cannot.
pub fn check_name(name: &str) -> Option<&'static str> {
    let first_letter = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if name.is_empty() || name.len() > 40 {
        Some("must have 1 to 40 characters")
    } else if !first_letter {
        Some("must start with a letter")
    } else if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        Some("may hold only letters, digits and hyphens")
    } else if name.contains("--") || name.ends_with('-') {
        Some("must not contain two hyphens in a row or end with one")
    } else {
        None
    }
}

/// Why RDS would refuse `pw` as a master password, if it would.
pub fn check_master_password(pw: &str) -> Option<String> {
    if !(8..=41).contains(&pw.len()) {
        return Some(format!(
            "must have 8 to 41 characters (it has {})",
            pw.chars().count()
        ));
    }
    if let Some(c) = pw
        .chars()
        .find(|c| !c.is_ascii_graphic() || matches!(c, '/' | '"' | '@'))
    {
        let shown = if c == ' ' {
            "a space".to_owned()
        } else if c.is_ascii_graphic() {
            format!("{c:?}")
        } else {
            "a non-printable or non-ASCII character".to_owned()
        };
        return Some(format!(
            "must be printable ASCII without '/', '\"', '@' or spaces; it contains {shown}"
        ));
    }
    None
}

/// Whether `v` looks like an RDS MySQL/MariaDB version: `8`, `8.0`, `8.0.35`.
pub fn valid_engine_version(v: &str) -> bool {
    let parts: Vec<&str> = v.split('.').collect();
    (1..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 4 && p.chars().all(|c| c.is_ascii_digit()))
}

/// Whether `c` looks like an instance class: `db.<family>.<size>`.
pub fn valid_instance_class(c: &str) -> bool {
    let mut parts = c.split('.');
    parts.next() == Some("db")
        && parts.clone().count() == 2
        && parts.all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit())
        })
}

fn valid_mysql_identifier(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks of the schema, application user and password the Data Population
/// tool creates, shared by every resource that runs it (`None`: not known yet,
/// or not set).
pub(crate) fn check_tool_account(
    d: &mut Diagnostics,
    schema_name: Option<&str>,
    database_username: Option<&str>,
    database_password: Option<&str>,
) {
    if let Some(s) = schema_name {
        if !valid_mysql_identifier(s, 64) {
            err(
                d,
                "schema_name",
                "Invalid schema name",
                format!("{s:?}: 1 to 64 letters, digits or underscores."),
            );
        }
    }
    if let Some(u) = database_username {
        if !valid_mysql_identifier(u, 32) {
            err(
                d,
                "database_username",
                "Invalid database user name",
                format!("{u:?}: 1 to 32 letters, digits or underscores."),
            );
        }
    }
    if let Some(pw) = database_password {
        if pw.is_empty() || pw.chars().any(char::is_control) {
            err(
                d,
                "database_password",
                "Invalid database password",
                "It must not be empty or contain control characters (line breaks).".into(),
            );
        }
    }
}

/// Checks whatever is known of the configuration.
pub fn validate(c: &SnapshotModel<Planning>) -> Diagnostics {
    let mut d = Diagnostics::new();
    if let Known::Known(n) = &c.name {
        if let Some(why) = check_name(n) {
            err(&mut d, "name", "Invalid name", format!("{n:?} {why}."));
        }
    }
    if let Some(cmd) = c.command.present() {
        if Command::parse(cmd).is_none() {
            err(
                &mut d,
                "command",
                "Invalid command",
                format!("{cmd:?} is not `reset-db` or `update-db`."),
            );
        }
        if cmd == "update-db" && matches!(&c.source_snapshot_identifier, Known::Known(None)) {
            err(
                &mut d,
                "command",
                "update-db needs a restored snapshot",
                "`update-db` only applies new change sets to an existing schema; a new instance \
                 is empty. Set `source_snapshot_identifier`, or use `reset-db`."
                    .into(),
            );
        }
    }
    if let Some(e) = c.engine.present() {
        if e != "mysql" && e != "mariadb" {
            err(
                &mut d,
                "engine",
                "Unsupported engine",
                format!("{e:?}: the Data Population tool needs `mysql` or `mariadb`."),
            );
        }
    }
    if let Some(v) = c.engine_version.present() {
        if !valid_engine_version(v) {
            err(
                &mut d,
                "engine_version",
                "Invalid engine version",
                format!("{v:?} is not a version such as `8.0` or `8.0.35`."),
            );
        }
    }
    if let Some(v) = c.instance_class.present() {
        if !valid_instance_class(v) {
            err(
                &mut d,
                "instance_class",
                "Invalid instance class",
                format!("{v:?} is not an instance class such as `db.t3.medium`."),
            );
        }
    }
    if let Some(s) = c.allocated_storage.present() {
        if !(20..=65536).contains(s) {
            err(
                &mut d,
                "allocated_storage",
                "Invalid allocated storage",
                format!("{s} GiB: RDS MySQL takes 20 to 65536."),
            );
        }
    }
    for (attr, value) in [
        ("master_password", &c.master_password),
        ("master_password_wo", &c.master_password_wo),
    ] {
        if let Some(why) = value.present().and_then(|pw| check_master_password(pw)) {
            err(
                &mut d,
                attr,
                "RDS would reject this master password",
                format!("The master password {why}."),
            );
        }
    }
    if c.master_password.present().is_some() && c.master_password_wo.present().is_some() {
        err(
            &mut d,
            "master_password_wo",
            "Conflicting master passwords",
            "Set `master_password` or `master_password_wo`, not both.".into(),
        );
    }
    if let Some(u) = c.master_username.present() {
        let ok = u.len() <= 16
            && u.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && valid_mysql_identifier(u, 16);
        if !ok {
            err(
                &mut d,
                "master_username",
                "Invalid master user name",
                format!("{u:?}: 1 to 16 letters, digits or underscores, starting with a letter."),
            );
        }
    }
    check_tool_account(
        &mut d,
        c.schema_name.present().map(String::as_str),
        c.database_username.present().map(String::as_str),
        c.database_password.get().map(String::as_str),
    );
    validate_runner(&mut d, c);
    if let Known::Known(Some(p)) = &c.phase_timeouts {
        for (attr, v) in [
            ("instance", &p.instance),
            ("tool", &p.tool),
            ("snapshot", &p.snapshot),
        ] {
            if let Some(Err(why)) = v.as_deref().map(parse_duration) {
                d.push(
                    Diagnostic::error(
                        "Invalid timeout",
                        format!("{:?} {why}.", v.as_deref().unwrap_or_default()),
                    )
                    .at(AttrPath::root("phase_timeouts").attr(attr)),
                );
            }
        }
    }
    d
}

/// [`validate_package`] for a configuration at validate time, off the async
/// threads (it reads the package's central directories): nothing to check
/// while the package path is unknown.
pub async fn validate_known_package(
    package: &Known<String>,
    environment: &Known<String>,
) -> Diagnostics {
    let Known::Known(pkg) = package else {
        return Diagnostics::new();
    };
    let (pkg, env) = (pkg.clone(), environment.get().cloned());
    tokio::task::spawn_blocking(move || validate_package(&pkg, env.as_deref()))
        .await
        .unwrap_or_else(|e| {
            Diagnostic::error("Cannot check the deployment package", e.to_string()).into()
        })
}

/// Checks the package against the environment (blocking: reads central directories).
pub fn validate_package(package: &str, environment: Option<&str>) -> Diagnostics {
    let mut d = Diagnostics::new();
    let pkg = match DeploymentPackage::open(Path::new(package)) {
        Ok(p) => p,
        Err(e) => {
            err(
                &mut d,
                "deployment_package",
                "Cannot read the deployment package",
                e.to_string(),
            );
            return d;
        }
    };
    let env = environment.unwrap_or("");
    match datapop::environment_check(&pkg, env) {
        Ok(()) => {}
        Err(e @ DataPopError::UnknownEnvironment { .. }) => {
            if environment.is_some() {
                err(&mut d, "environment", "Unknown environment", e.to_string());
            }
        }
        Err(e) => err(
            &mut d,
            "deployment_package",
            "The package cannot populate a database",
            e.to_string(),
        ),
    }
    d
}

/// The settings of one run, defaults applied.
#[derive(Clone, Debug)]
pub struct RunSettings {
    /// The tool's command.
    pub command: Command,
    /// `mysql` or `mariadb`.
    pub engine: String,
    /// The commerce schema.
    pub schema: String,
    /// The application user.
    pub app_user: String,
    /// The instance's master user.
    pub master_user: String,
    /// The instance class.
    pub instance_class: String,
    /// Storage, GiB.
    pub storage: u32,
    /// Limit of each instance wait.
    pub instance_timeout: Duration,
    /// Limit of the tool run.
    pub tool_timeout: Duration,
    /// Limit of the snapshot wait.
    pub snapshot_timeout: Duration,
}

impl RunSettings {
    /// Resolves defaults of `m` (already validated).
    pub fn of(m: &SnapshotModel) -> Self {
        let phase = |f: fn(&super::model::PhaseTimeoutsBlock) -> &Option<String>, default| {
            m.phase_timeouts
                .as_ref()
                .and_then(|p| f(p).as_deref())
                .and_then(|t| parse_duration(t).ok())
                .unwrap_or(default)
        };
        RunSettings {
            command: command_of(m.command.as_deref(), m.source_snapshot_identifier.is_some()),
            engine: m.engine.clone().unwrap_or_else(|| DEFAULT_ENGINE.into()),
            schema: m
                .schema_name
                .clone()
                .unwrap_or_else(|| DEFAULT_SCHEMA.into()),
            app_user: m
                .database_username
                .clone()
                .unwrap_or_else(|| DEFAULT_APP_USER.into()),
            master_user: m
                .master_username
                .clone()
                .unwrap_or_else(|| DEFAULT_MASTER_USER.into()),
            instance_class: m
                .instance_class
                .clone()
                .unwrap_or_else(|| DEFAULT_INSTANCE_CLASS.into()),
            storage: m.allocated_storage.unwrap_or(DEFAULT_STORAGE),
            instance_timeout: phase(|p| &p.instance, DEFAULT_INSTANCE_TIMEOUT),
            tool_timeout: phase(|p| &p.tool, DEFAULT_TOOL_TIMEOUT),
            snapshot_timeout: phase(|p| &p.snapshot, DEFAULT_SNAPSHOT_TIMEOUT),
        }
    }
}

/// The command: as configured, else by source.
pub fn command_of(configured: Option<&str>, restoring: bool) -> Command {
    configured.and_then(Command::parse).unwrap_or(if restoring {
        Command::UpdateDb
    } else {
        Command::ResetDb
    })
}

/// What goes into the data fingerprint besides the package content.
#[derive(Clone, Debug)]
pub struct FingerprintInputs<'a> {
    /// The package path.
    pub package: &'a str,
    /// The environment.
    pub environment: &'a str,
    /// The command.
    pub command: Command,
    /// The engine.
    pub engine: &'a str,
    /// The configured engine version.
    pub engine_version: Option<&'a str>,
    /// The snapshot restored, if any.
    pub source_snapshot: Option<&'a str>,
    /// The schema.
    pub schema: &'a str,
    /// The application user.
    pub app_user: &'a str,
    /// Extra properties for the tool.
    pub extra_properties: Option<&'a BTreeMap<String, String>>,
}

/// The package's data-population content (see [`datapop::content::package_data_hash`]).
pub fn package_data_hash(package: &str) -> Result<String, DataPopError> {
    datapop::content::package_data_hash(Path::new(package))
}

/// The fingerprint's parts (name → hash), and the fingerprint over them.
pub fn fingerprint(
    i: &FingerprintInputs<'_>,
) -> Result<(String, BTreeMap<String, String>), DataPopError> {
    let extra: Vec<String> = i
        .extra_properties
        .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
        .unwrap_or_default();
    let extra_refs: Vec<&str> = extra.iter().map(String::as_str).collect();
    let parts: BTreeMap<String, String> = [
        (
            "package data-population content",
            package_data_hash(i.package)?,
        ),
        ("environment", sha(&[i.environment])),
        ("command", sha(&[i.command.as_str()])),
        (
            "engine settings",
            sha(&[
                i.engine,
                i.engine_version.unwrap_or(""),
                i.source_snapshot.unwrap_or(""),
            ]),
        ),
        ("schema and user", sha(&[i.schema, i.app_user])),
        ("extra properties", sha(&extra_refs)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut all = vec!["ep_rds_snapshot/v1"];
    for (k, v) in &parts {
        all.push(k);
        all.push(v);
    }
    Ok((sha(&all), parts))
}

/// `<name>-<12 hex>`.
pub fn snapshot_identifier(name: &str, fingerprint: &str) -> String {
    format!("{name}-{}", fingerprint.get(..12).unwrap_or(fingerprint))
}

/// `<name>-<8 hex>-tmp`.
pub fn instance_identifier(name: &str, fingerprint: &str) -> String {
    format!("{name}-{}-tmp", fingerprint.get(..8).unwrap_or(fingerprint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_passwords_rds_would_reject() {
        assert!(check_master_password("Good-Passw0rd").is_none());
        assert!(check_master_password("short").is_some());
        assert!(check_master_password(&"x".repeat(42)).is_some());
        for bad in [
            "has space1",
            "has/slash1",
            "has\"quote",
            "has@at-sign",
            "tab\there1",
            "ünïcode-pw",
        ] {
            assert!(check_master_password(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn names_versions_and_classes() {
        assert!(check_name("ep-author").is_none());
        for bad in ["", "1abc", "a--b", "a-", "a_b", &"a".repeat(41)] {
            assert!(check_name(bad).is_some(), "{bad}");
        }
        for good in ["8", "8.0", "8.0.35", "10.11.6"] {
            assert!(valid_engine_version(good), "{good}");
        }
        for bad in ["", "8.", "v8", "8.0.35.1", "latest"] {
            assert!(!valid_engine_version(bad), "{bad}");
        }
        assert!(valid_instance_class("db.t3.medium"));
        assert!(valid_instance_class("db.r6g.2xlarge"));
        for bad in ["t3.medium", "db.t3", "db.T3.medium", "db.t3.medium.x"] {
            assert!(!valid_instance_class(bad), "{bad}");
        }
    }

    #[test]
    fn identifiers_fit_rds_limits() {
        let fp = "0123456789abcdef".repeat(4);
        let name = "a".repeat(40);
        assert!(snapshot_identifier(&name, &fp).len() <= 63);
        assert!(instance_identifier(&name, &fp).len() <= 63);
        assert_eq!(instance_identifier("ep", &fp), "ep-01234567-tmp");
    }

    fn inputs<'a>(package: &'a str, environment: &'a str) -> FingerprintInputs<'a> {
        FingerprintInputs {
            package,
            environment,
            command: Command::ResetDb,
            engine: "mysql",
            engine_version: None,
            source_snapshot: None,
            schema: "commercedb",
            app_user: "ep",
            extra_properties: None,
        }
    }

    #[test]
    fn the_fingerprint_follows_the_data_not_the_path() {
        use ep_imagebuild::synthetic::{write_zip, SynthOptions};
        let tmp = tempfile::tempdir().expect("tempdir");
        let (a, b, c) = (
            tmp.path().join("a.zip"),
            tmp.path().join("moved/b.zip"),
            tmp.path().join("c.zip"),
        );
        write_zip(&SynthOptions::small(3), &a).expect("package a");
        std::fs::create_dir(tmp.path().join("moved")).expect("mkdir");
        std::fs::copy(&a, &b).expect("copy");
        write_zip(&SynthOptions::small(4), &c).expect("package c");
        let s = |p: &std::path::Path| p.display().to_string();
        let (pa, pb, pc) = (s(&a), s(&b), s(&c));
        let fp = |i: &FingerprintInputs<'_>| fingerprint(i).expect("fingerprint");
        let (base, parts) = fp(&inputs(&pa, "author"));
        assert_eq!(base.len(), 64);
        assert_eq!(fp(&inputs(&pb, "author")).0, base, "same data elsewhere");
        let (other, other_parts) = fp(&inputs(&pc, "author"));
        assert_ne!(other, base, "other data");
        let changed: Vec<&String> = parts
            .iter()
            .filter(|(k, v)| other_parts.get(*k) != Some(*v))
            .map(|(k, _)| k)
            .collect();
        assert_eq!(changed, ["package data-population content"]);
        assert_ne!(fp(&inputs(&pa, "live")).0, base, "environment");
        let mut update = inputs(&pa, "author");
        update.command = Command::UpdateDb;
        assert_ne!(fp(&update).0, base, "command");
        let extra = BTreeMap::from([("k".to_owned(), "v".to_owned())]);
        let mut with_extra = inputs(&pa, "author");
        with_extra.extra_properties = Some(&extra);
        assert_ne!(fp(&with_extra).0, base, "extra properties");
        let mut version = inputs(&pa, "author");
        version.engine_version = Some("8.0");
        assert_ne!(fp(&version).0, base, "engine settings");
    }
}
