//! `scripts/lib/aws_hold_proxy.py`: a proxy in front of moto that keeps
//! AWS Cloud Map operations PENDING while held, so that a test can stop
//! Terraform in the middle of a wait moto would end at once.

use crate::script_server::ScriptServer;

/// A running hold proxy; holding from the start.
pub struct HoldProxy {
    server: ScriptServer,
}

impl HoldProxy {
    /// Proxies `upstream` (an emulator's URL), holding Cloud Map operations.
    pub fn start(upstream: &str) -> HoldProxy {
        let server = ScriptServer::start("aws_hold_proxy.py", |cmd, dir| {
            let hold = dir.join("hold");
            std::fs::write(&hold, "")?;
            cmd.args(["--upstream", upstream])
                .arg("--hold-file")
                .arg(&hold)
                .arg("--log")
                .arg(dir.join("requests"));
            Ok(())
        })
        .unwrap_or_else(|e| panic!("hold proxy: {e}"));
        HoldProxy { server }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.server.port())
    }

    /// Lets operations finish from now on.
    pub fn release(&self) {
        std::fs::remove_file(self.server.dir().join("hold")).expect("release the hold");
    }

    /// Requests so far, one line each: `TARGET STATUS [held]`.
    pub fn requests(&self) -> Vec<String> {
        self.server.lines("requests")
    }
}
