//! Running the staged launcher: its own process group, both output streams
//! streamed line by line into the log with passwords masked, the last lines
//! kept for diagnostics, and the whole group killed on cancellation.

use rustix::process::{kill_process_group, Pid, Signal};
use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio_util::sync::CancellationToken;

use super::stage::Staged;
use super::{Command, DataPopError, Outcome};

/// How many output lines a diagnostic carries.
pub const TAIL_LINES: usize = 40;

/// Longest line kept (longer ones are cut), so a runaway line cannot eat memory.
const MAX_LINE: usize = 4096;

/// How long the tool gets between SIGTERM and SIGKILL when cancelled.
const TERM_GRACE: Duration = Duration::from_millis(500);

/// Replaces every password (plain, SQL-quoted and backslash-escaped forms)
/// with `****`.
#[derive(Clone, Debug, Default)]
pub struct Masker {
    secrets: Vec<String>,
}

impl Masker {
    /// A masker for `secrets` (empty ones are ignored).
    pub fn new(secrets: &[&str]) -> Self {
        let mut all: Vec<String> = Vec::new();
        for s in secrets.iter().filter(|s| !s.is_empty()) {
            let forms = [
                (*s).to_owned(),
                s.replace('\'', "''"),
                s.replace('\\', "\\\\").replace('\'', "\\'"),
            ];
            for f in forms {
                if !all.contains(&f) {
                    all.push(f);
                }
            }
        }
        // Longest first, so a secret containing another is masked whole.
        all.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Masker { secrets: all }
    }

    /// `text` with every secret masked.
    pub fn mask(&self, text: &str) -> String {
        self.secrets
            .iter()
            .fold(text.to_owned(), |t, s| t.replace(s.as_str(), "****"))
    }
}

/// The last [`TAIL_LINES`] lines of output, both streams interleaved.
#[derive(Debug, Default)]
pub struct Tail(VecDeque<String>);

impl Tail {
    fn push(&mut self, line: String) {
        if self.0.len() == TAIL_LINES {
            self.0.pop_front();
        }
        self.0.push_back(line);
    }

    fn lines(&self) -> Vec<String> {
        self.0.iter().cloned().collect()
    }
}

type SharedTail = Arc<Mutex<Tail>>;

fn lines_of(tail: &SharedTail) -> Vec<String> {
    tail.lock().unwrap_or_else(PoisonError::into_inner).lines()
}

/// Reads `stream` to its end, logging and keeping each masked line.
async fn pump(
    stream: impl AsyncRead + Unpin,
    name: &'static str,
    tail: SharedTail,
    masker: Masker,
) {
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let raw = String::from_utf8_lossy(&buf);
        let mut line = masker.mask(raw.trim_end_matches(['\n', '\r']));
        if line.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push('…');
        }
        if name == "stderr" {
            tracing::warn!(target: "data_population", stream = name, "{line}");
        } else {
            tracing::info!(target: "data_population", stream = name, "{line}");
        }
        tail.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
    }
}

/// Sends `signal` to the process group `pgid`; a group that is gone is fine.
pub(crate) fn signal_group(pgid: Option<u32>, signal: Signal) {
    let Some(pgid) = pgid
        .and_then(|p| i32::try_from(p).ok())
        .filter(|p| *p > 1)
        .and_then(Pid::from_raw)
    else {
        return;
    };
    // ESRCH (already gone) is the expected race; nothing else can be done about others.
    let _ = kill_process_group(pgid, signal);
}

/// Runs the launcher of `staged` and waits for it, or for `cancel`.
pub(super) async fn run_launcher(
    staged: &Staged,
    command: Command,
    masker: &Masker,
    cancel: &CancellationToken,
) -> Result<Outcome, DataPopError> {
    let mut cmd = tokio::process::Command::new(&staged.launcher);
    cmd.arg("--dataDirectory")
        .arg(&staged.data_dir)
        .arg("--configDirectory")
        .arg(&staged.config_dir)
        .arg(command.as_str())
        .env("TMPDIR", &staged.tmp_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = staged.config_dir.parent() {
        cmd.current_dir(dir);
    }
    let mut child = cmd.spawn().map_err(|source| DataPopError::Spawn {
        launcher: staged.launcher.display().to_string(),
        source,
    })?;
    // The child leads its own group: its id is the group id.
    let pgid = child.id();
    // Whatever happens to this future from here, the group dies with it.
    let guard = GroupGuard(pgid);
    let tail: SharedTail = Arc::default();
    let mut readers = tokio::task::JoinSet::new();
    if let Some(out) = child.stdout.take() {
        readers.spawn(pump(out, "stdout", tail.clone(), masker.clone()));
    }
    if let Some(err) = child.stderr.take() {
        readers.spawn(pump(err, "stderr", tail.clone(), masker.clone()));
    }
    let status = tokio::select! {
        s = child.wait() => Some(s),
        _ = cancel.cancelled() => None,
    };
    let Some(status) = status else {
        tracing::warn!("stopping the Data Population tool");
        signal_group(pgid, Signal::TERM);
        if tokio::time::timeout(TERM_GRACE, child.wait())
            .await
            .is_err()
        {
            signal_group(pgid, Signal::KILL);
            let _ = child.wait().await;
        }
        signal_group(pgid, Signal::KILL);
        drain(&mut readers).await;
        drop(guard);
        return Err(DataPopError::Cancelled {
            tail: lines_of(&tail),
        });
    };
    // Anything the tool left running in its group would hold the pipes open.
    signal_group(pgid, Signal::KILL);
    drain(&mut readers).await;
    drop(guard);
    let status = status.map_err(DataPopError::io("wait for the Data Population tool"))?;
    let outcome = Outcome {
        exit_code: status.code(),
        tail: lines_of(&tail),
    };
    tracing::info!(exit_code = ?outcome.exit_code, "the Data Population tool exited");
    Ok(outcome)
}

/// Lets the readers finish what is buffered, briefly.
async fn drain(readers: &mut tokio::task::JoinSet<()>) {
    let all = async { while readers.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(2), all)
        .await
        .is_err()
    {
        readers.abort_all();
    }
}

/// Kills the process group when dropped (a cancelled or panicking caller).
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        signal_group(self.0, Signal::KILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_plain_quoted_and_escaped_forms() {
        let m = Masker::new(&["it's\\x", ""]);
        assert_eq!(m.mask("pw=it's\\x"), "pw=****");
        assert_eq!(m.mask("IDENTIFIED BY 'it''s\\x'"), "IDENTIFIED BY '****'");
        assert_eq!(m.mask("'it\\'s\\\\x'"), "'****'");
        assert_eq!(m.mask("nothing"), "nothing");
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let mut t = Tail::default();
        for i in 0..100 {
            t.push(i.to_string());
        }
        let lines = t.lines();
        assert_eq!(lines.len(), TAIL_LINES);
        assert_eq!(lines.first().map(String::as_str), Some("60"));
        assert_eq!(lines.last().map(String::as_str), Some("99"));
    }
}
