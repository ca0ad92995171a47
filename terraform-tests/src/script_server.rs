//! A test server written in Python (`scripts/lib/*.py`) on a free port of
//! 127.0.0.1: started with `--port-file`, waited for, killed on drop.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::consul::{scripts_lib, tools_python};

/// A running script server and its scratch directory (port file, log, and
/// whatever the caller puts there).
#[derive(Debug)]
pub struct ScriptServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl ScriptServer {
    /// Runs `scripts/lib/<script>` with the arguments `args` adds (given the
    /// scratch directory, where it may write files the script reads), and
    /// waits up to 30 s for the port it listens on. The script's standard
    /// error goes to `log` in the scratch directory.
    pub fn start(
        script: &str,
        args: impl FnOnce(&mut Command, &Path) -> std::io::Result<()>,
    ) -> Result<ScriptServer, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let port_file = dir.path().join("port");
        let log = dir.path().join("log");
        let mut cmd = Command::new(tools_python());
        cmd.arg(scripts_lib().join(script))
            .arg("--port-file")
            .arg(&port_file);
        args(&mut cmd, dir.path()).map_err(|e| format!("{script} set-up: {e}"))?;
        let log_file = std::fs::File::create(&log).map_err(|e| format!("log file: {e}"))?;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("start {script}: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(port) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|t| t.trim().parse::<u16>().ok())
            {
                return Ok(ScriptServer { child, port, dir });
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(format!("{script} exited with {status}: {log}"));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{script}: no port after 30 s"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Its scratch directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The lines of `file` in its scratch directory (none while it does not exist).
    pub fn lines(&self, file: &str) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join(file))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for ScriptServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
