//! What of a cleanly shut down data directory goes into an image.
//!
//! MariaDB needs `ibdata1`, `ib_logfile0` (10.5+ refuses to start without
//! it, even after a clean shutdown), the undo tablespaces, every schema
//! directory and the Aria control file and log. It recreates the rest on
//! start, and those are what a run leaves behind by accident or by
//! timing: the buffer pool dump (page numbers in load order), the
//! temporary tablespace, the DDL recovery log, pid files, sockets, error
//! and query logs, and `#sql…` temporary tables. Those are removed here.
//!
//! The remaining files are still not byte-for-byte reproducible: MariaDB
//! writes a table version UUID into every `.frm` and log sequence numbers
//! and timestamps into InnoDB and Aria pages. Their metadata is made
//! uniform by the layer writer (mtimes, owners, modes).

use std::fs;
use std::path::Path;

use super::ServerError;

/// Top-level files a server run leaves that are not part of the data.
pub const LEFT_OUT: &[&str] = &[
    "ib_buffer_pool",
    "ibtmp1",
    "ddl_recovery.log",
    "ddl_recovery-backup.log",
    "tc.log",
    "mysql_upgrade_info.lock",
];

/// Suffixes of top-level files that are logs or run-time files.
const LEFT_OUT_SUFFIXES: &[&str] = &[".pid", ".err", ".sock", ".sock.lock", ".log"];

/// Whether the top-level `name` is left out.
fn left_out_top(name: &str) -> bool {
    LEFT_OUT.contains(&name)
        || LEFT_OUT_SUFFIXES.iter().any(|s| name.ends_with(s))
        || name.starts_with("#sql")
        || name == "#innodb_temp"
}

fn remove(path: &Path) -> Result<(), ServerError> {
    let md = fs::symlink_metadata(path)
        .map_err(ServerError::io(format!("inspect {}", path.display())))?;
    let removed = if md.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    removed.map_err(ServerError::io(format!("remove {}", path.display())))
}

/// Removes what does not belong in an image from the data directory
/// `data` and returns the names removed (sorted). A device or fifo is an
/// error; sockets are removed wherever they are.
pub fn normalise(data: &Path) -> Result<Vec<String>, ServerError> {
    let mut removed = Vec::new();
    let mut stack = vec![(data.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let entries =
            fs::read_dir(&dir).map_err(ServerError::io(format!("read {}", dir.display())))?;
        for e in entries {
            let e = e.map_err(ServerError::io(format!("read {}", dir.display())))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            let child_rel = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let ft = e
                .file_type()
                .map_err(ServerError::io(format!("inspect {}", path.display())))?;
            use std::os::unix::fs::FileTypeExt;
            let drop_it = (rel.is_empty() && left_out_top(&name))
                || name.starts_with("#sql")
                || ft.is_socket();
            if drop_it {
                remove(&path)?;
                removed.push(child_rel);
            } else if ft.is_dir() {
                stack.push((path, child_rel));
            } else if ft.is_block_device() || ft.is_char_device() || ft.is_fifo() {
                return Err(ServerError::DataDir {
                    path: path.display().to_string(),
                    reason: "a device or fifo cannot go into an image",
                });
            }
        }
    }
    removed.sort();
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_time_files_go_and_data_stays() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let d = tmp.path();
        let keep = [
            "ibdata1",
            "ib_logfile0",
            "undo001",
            "aria_log_control",
            "aria_log.00000001",
            "mysql_upgrade_info",
            "mysql/user.frm",
            "commercedb/TSETTING.ibd",
            "commercedb/TSETTING.frm",
            "commercedb/db.opt",
        ];
        let gone = [
            "ib_buffer_pool",
            "ibtmp1",
            "ddl_recovery.log",
            "host.err",
            "mysqld.pid",
            "#sql-1a2b_3.frm",
            "commercedb/#sql-alter-1.ibd",
            "#innodb_temp/temp_1.ibt",
        ];
        for f in keep.iter().chain(gone.iter()) {
            let p = d.join(f);
            fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            fs::write(&p, f).expect("write");
        }
        let removed = normalise(d).expect("normalise");
        for f in keep {
            assert!(d.join(f).is_file(), "{f} was removed");
        }
        for f in gone {
            assert!(!d.join(f).exists(), "{f} is still there");
        }
        assert_eq!(
            removed,
            [
                "#innodb_temp",
                "#sql-1a2b_3.frm",
                "commercedb/#sql-alter-1.ibd",
                "ddl_recovery.log",
                "host.err",
                "ib_buffer_pool",
                "ibtmp1",
                "mysqld.pid",
            ]
        );
    }

    #[test]
    fn a_fifo_is_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let status = std::process::Command::new("mkfifo")
            .arg(tmp.path().join("pipe"))
            .status()
            .expect("mkfifo");
        assert!(status.success());
        assert!(matches!(
            normalise(tmp.path()),
            Err(ServerError::DataDir { .. })
        ));
    }
}
