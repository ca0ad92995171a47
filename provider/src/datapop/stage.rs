//! Staging: the tool zip, the ext-data jar and the JDBC drivers unpacked
//! into a private work directory with a disk budget, and one environment
//! copied into a config directory with the connection settings written
//! into its `database.properties` (mode 600).

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use ep_imagebuild::package::{DeploymentPackage, Entry, EntryKind, PackageError};
use tokio_util::sync::CancellationToken;

use super::contract::{Setting, Value};
use super::{properties, DataPopError, Request};

/// Default disk budget of one run's work directory: 8 GiB.
pub const DEFAULT_MAX_DISK: u64 = 8 << 30;

/// The launcher's file name.
const LAUNCHER: &str = "data-population.sh";

/// A staged run: the work directory and what is in it. Dropping it
/// removes the directory.
pub(super) struct Staged {
    dir: Option<tempfile::TempDir>,
    /// The launcher to run.
    pub launcher: PathBuf,
    /// The unpacked ext-data jar (`--dataDirectory`).
    pub data_dir: PathBuf,
    /// The environment's copy with `database.properties` (`--configDirectory`).
    pub config_dir: PathBuf,
    /// The tool's `TMPDIR`, inside the work directory, so whatever it leaves
    /// behind (a killed tool cannot clean up) goes with it.
    pub tmp_dir: PathBuf,
}

impl Staged {
    /// Removes the work directory now, off the async threads.
    pub async fn remove(mut self) {
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_path_buf();
            let removed = tokio::task::spawn_blocking(move || dir.close()).await;
            if !matches!(removed, Ok(Ok(()))) {
                tracing::warn!(dir = %path.display(), "could not remove the Data Population work directory");
            }
        }
    }
}

/// The launcher inside a tool zip's entries: `data-population.sh` at the
/// top, else `bin/data-population.sh`, else the shallowest one.
pub fn find_launcher(entries: &[Entry]) -> Option<String> {
    let mut found: Vec<&str> = entries
        .iter()
        .filter(|e| e.kind == EntryKind::File)
        .map(|e| e.path.as_str())
        .filter(|p| p.rsplit('/').next() == Some(LAUNCHER))
        .collect();
    let rank = |p: &str| match p {
        LAUNCHER => 0,
        "bin/data-population.sh" => 1,
        _ => 2 + p.matches('/').count(),
    };
    found.sort_by_key(|p| (rank(p), p.len()));
    found.first().map(|p| (*p).to_owned())
}

/// Checks, from central directories only, that `pkg` can run the tool for
/// `environment`: the tool zip with its launcher, the ext-data jar, and
/// the environment in it.
pub fn environment_check(pkg: &DeploymentPackage, environment: &str) -> Result<(), DataPopError> {
    let tool = pkg.tool("data-population").ok_or(DataPopError::NoTool)?;
    let zip = pkg.open_nested(&tool.path)?;
    if find_launcher(zip.entries()).is_none() {
        return Err(DataPopError::NoLauncher(tool.path.clone()));
    }
    if pkg.ext_data().is_none() {
        return Err(DataPopError::NoExtData);
    }
    let available = pkg.environments()?;
    if !available.iter().any(|e| e == environment) {
        return Err(DataPopError::UnknownEnvironment {
            environment: environment.to_owned(),
            available,
        });
    }
    Ok(())
}

/// Bytes written so far against the limit.
struct Budget {
    used: u64,
    limit: u64,
}

impl Budget {
    fn take(&mut self, n: u64) -> Result<(), DataPopError> {
        self.used = self.used.saturating_add(n);
        if self.used > self.limit {
            return Err(DataPopError::DiskLimit { limit: self.limit });
        }
        Ok(())
    }
}

/// `rel` under `root`, refusing anything but plain components.
fn safe_join(root: &Path, rel: &str) -> Result<PathBuf, DataPopError> {
    let p = Path::new(rel);
    if rel.is_empty() || !p.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(DataPopError::Package(PackageError::UnsafePath {
            entry: rel.to_owned(),
            reason: "not a plain relative path",
        }));
    }
    Ok(root.join(p))
}

/// Copies `from` into a new file `to` with `mode`, within the budget.
fn write_file(
    from: &mut dyn Read,
    to: &Path,
    mode: u32,
    budget: &mut Budget,
    cancel: &CancellationToken,
) -> Result<(), DataPopError> {
    let what = || format!("write {}", to.display());
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(to)
        .map_err(DataPopError::io(what()))?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if cancel.is_cancelled() {
            return Err(DataPopError::Cancelled { tail: Vec::new() });
        }
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(PackageError::from_io(e, &to.display().to_string()).into()),
        };
        budget.take(n as u64)?;
        out.write_all(buf.get(..n).unwrap_or_default())
            .map_err(DataPopError::io(what()))?;
    }
    Ok(())
}

/// Unpacks the nested archive `rel` of `pkg` under `dest`.
fn unpack(
    pkg: &DeploymentPackage,
    rel: &str,
    dest: &Path,
    budget: &mut Budget,
    cancel: &CancellationToken,
) -> Result<(), DataPopError> {
    let archive = pkg.open_nested(rel)?;
    let declared: u64 = archive.entries().iter().map(|e| e.size).sum();
    if budget.used.saturating_add(declared) > budget.limit {
        return Err(DataPopError::DiskLimit {
            limit: budget.limit,
        });
    }
    fs::create_dir_all(dest).map_err(DataPopError::io(format!("create {}", dest.display())))?;
    // Our own failures stop the walk through a placeholder package error.
    let mut ours: Option<DataPopError> = None;
    let walked = archive.for_each_entry(|entry, content| {
        let step = (|| {
            let path = safe_join(dest, &entry.path)?;
            if entry.kind == EntryKind::Directory {
                return fs::create_dir_all(&path)
                    .map_err(DataPopError::io(format!("create {}", path.display())));
            }
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)
                    .map_err(DataPopError::io(format!("create {}", parent.display())))?;
            }
            let executable =
                entry.mode.is_some_and(|m| m & 0o111 != 0) || entry.path.ends_with(".sh");
            let mode = if executable { 0o755 } else { 0o644 };
            write_file(content, &path, mode, budget, cancel)
        })();
        step.map_err(|e| {
            let placeholder = PackageError::Io {
                context: entry.path.clone(),
                source: std::io::Error::other(e.to_string()),
            };
            ours = Some(e);
            placeholder
        })
    });
    match (walked, ours) {
        (Err(_), Some(e)) => Err(e),
        (Err(e), None) => Err(e.into()),
        (Ok(()), _) => Ok(()),
    }
}

/// Copies the files of `from` (recursively) into `to`.
fn copy_tree(from: &Path, to: &Path, budget: &mut Budget) -> Result<(), DataPopError> {
    fs::create_dir_all(to).map_err(DataPopError::io(format!("create {}", to.display())))?;
    let entries =
        fs::read_dir(from).map_err(DataPopError::io(format!("read {}", from.display())))?;
    for e in entries {
        let e = e.map_err(DataPopError::io(format!("read {}", from.display())))?;
        let ty = e
            .file_type()
            .map_err(DataPopError::io(format!("inspect {}", e.path().display())))?;
        let target = to.join(e.file_name());
        if ty.is_dir() {
            copy_tree(&e.path(), &target, budget)?;
        } else if ty.is_file() {
            let n = fs::copy(e.path(), &target)
                .map_err(DataPopError::io(format!("copy {}", e.path().display())))?;
            budget.take(n)?;
        }
    }
    Ok(())
}

/// Refuses a key that cannot be written (every other key and every value
/// is escaped, see [`super::properties`]).
fn check_property(key: &str) -> Result<(), DataPopError> {
    if key.is_empty() {
        return Err(DataPopError::InvalidProperty {
            key: key.to_owned(),
            why: "a key must not be empty",
        });
    }
    Ok(())
}

/// The `database.properties` text: the environment's own settings first,
/// then the connection, then the extra properties (the last definition wins).
fn properties(original: &str, req: &Request) -> Result<String, DataPopError> {
    let mut out = String::from(original);
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str("# connection settings written by terraform-provider-ep\n");
    for setting in Setting::ALL {
        let k = setting.property();
        check_property(k)?;
        match setting.value(&req.connection) {
            Value::Plain(v) => out.push_str(&properties::line(k, &v)),
            Value::Secret(p) => out.push_str(&properties::line(k, p.expose())),
        }
    }
    if !req.extra_properties.is_empty() {
        out.push_str("# extra_properties\n");
        for (k, v) in &req.extra_properties {
            check_property(k)?;
            out.push_str(&properties::line(k, v));
        }
    }
    Ok(out)
}

/// Stages everything for one run (blocking).
pub(super) fn stage(req: &Request, cancel: &CancellationToken) -> Result<Staged, DataPopError> {
    let pkg = DeploymentPackage::open(&req.package)?;
    environment_check(&pkg, &req.environment)?;
    let tool = pkg.tool("data-population").ok_or(DataPopError::NoTool)?;
    let ext = pkg.ext_data().ok_or(DataPopError::NoExtData)?;
    let launcher_rel = find_launcher(pkg.open_nested(&tool.path)?.entries())
        .ok_or_else(|| DataPopError::NoLauncher(tool.path.clone()))?;

    let mut builder = tempfile::Builder::new();
    builder.prefix("ep-data-population-");
    let dir = match &req.work_parent {
        Some(parent) => builder.tempdir_in(parent),
        None => builder.tempdir(),
    }
    .map_err(DataPopError::io(
        "create the Data Population work directory",
    ))?;
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700))
        .map_err(DataPopError::io("restrict the work directory"))?;
    let root = dir.path().to_path_buf();
    let mut staged = Staged {
        dir: Some(dir),
        launcher: PathBuf::new(),
        data_dir: root.join("ext-data"),
        config_dir: root.join("conf"),
        tmp_dir: root.join("tmp"),
    };
    fs::create_dir_all(&staged.tmp_dir)
        .map_err(DataPopError::io("create the tool's temporary directory"))?;
    let mut budget = Budget {
        used: 0,
        limit: req.max_disk,
    };
    let tool_dir = root.join("tool");
    unpack(&pkg, &tool.path, &tool_dir, &mut budget, cancel)?;
    unpack(&pkg, &ext.path, &staged.data_dir, &mut budget, cancel)?;

    staged.launcher = safe_join(&tool_dir, &launcher_rel)?;
    let launcher_dir = staged.launcher.parent().unwrap_or(&tool_dir).to_path_buf();
    let home = if launcher_dir.file_name().is_some_and(|n| n == "bin") {
        launcher_dir.parent().unwrap_or(&tool_dir).to_path_buf()
    } else {
        launcher_dir
    };
    let lib = home.join("lib");
    fs::create_dir_all(&lib).map_err(DataPopError::io(format!("create {}", lib.display())))?;
    for driver in pkg.jdbc_drivers() {
        let name = driver.path.rsplit('/').next().unwrap_or(&driver.path);
        let target = safe_join(&lib, name)?;
        let _ = fs::remove_file(&target);
        let mut from = pkg.open_entry(&driver.path)?;
        write_file(&mut from, &target, 0o644, &mut budget, cancel)?;
    }

    let env_dir = safe_join(&staged.data_dir.join("environments"), &req.environment)?;
    copy_tree(&env_dir, &staged.config_dir, &mut budget)?;
    let props = staged.config_dir.join("database.properties");
    let original = match fs::read_to_string(&props) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(DataPopError::io(format!("read {}", props.display()))(e)),
    };
    let text = properties(&original, req)?;
    let _ = fs::remove_file(&props);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&props)
        .map_err(DataPopError::io("write database.properties"))?;
    f.write_all(text.as_bytes())
        .map_err(DataPopError::io("write database.properties"))?;
    budget.take(text.len() as u64)?;
    Ok(staged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> Entry {
        Entry {
            path: path.to_owned(),
            kind: EntryKind::File,
            size: 1,
            crc32: None,
            mode: None,
        }
    }

    #[test]
    fn launcher_prefers_the_top_then_bin_then_the_shallowest() {
        let all = [
            file("x/y/data-population.sh"),
            file("bin/data-population.sh"),
            file("data-population.sh"),
        ];
        assert_eq!(find_launcher(&all).as_deref(), Some("data-population.sh"));
        assert_eq!(
            find_launcher(&all[..2]).as_deref(),
            Some("bin/data-population.sh")
        );
        assert_eq!(find_launcher(&[file("lib/a.jar")]), None);
    }

    #[test]
    fn properties_are_escaped_not_refused() {
        assert!(check_property("").is_err());
        let mut req = Request {
            package: PathBuf::from("/p.zip"),
            environment: "author".into(),
            command: super::super::Command::ResetDb,
            connection: super::super::Connection {
                host: "127.0.0.1".into(),
                port: 3306,
                schema: "commercedb".into(),
                username: "ep".into(),
                password: super::super::Secret::new("p=w\nx"),
                reset_user: "root".into(),
                reset_password: super::super::Secret::new(" r#"),
            },
            extra_properties: Default::default(),
            work_parent: None,
            max_disk: 0,
        };
        req.extra_properties
            .insert("a key".into(), "line\nbreak".into());
        let text = properties("data.population.environment=author", &req).expect("properties");
        assert!(text.starts_with("data.population.environment=author\n#"));
        assert!(text.contains(r"data.population.password=p\=w\nx"), "{text}");
        assert!(
            text.contains(r"data.population.reset_password=\ r\#"),
            "{text}"
        );
        assert!(text.contains(r"a\ key=line\nbreak"), "{text}");
        assert_eq!(text.lines().count(), 11, "{text}");
    }

    #[test]
    fn unsafe_paths_are_refused() {
        let root = Path::new("/w");
        assert!(safe_join(root, "../etc/passwd").is_err());
        assert!(safe_join(root, "/etc").is_err());
        assert!(safe_join(root, "").is_err());
        assert_eq!(safe_join(root, "a/b").ok(), Some(PathBuf::from("/w/a/b")));
    }
}
