//! The plan-time input fingerprint: cheap, machine-independent, and equal
//! exactly when a build would produce the same image.
//!
//! It covers the package by entry name, size and CRC-32 (central directory
//! only), the base by digest, and the whole configuration — never absolute
//! paths or modification times, so two machines agree.

use std::io::Read;
use std::path::Path;

use ep_imagebuild::package::DeploymentPackage;
use sha2::{Digest, Sha256};

use super::args::{BaseArg, ImageArgs};

/// Bumped whenever the builder's output for the same inputs changes.
const BUILDER_EPOCH: &str = "ep_image/1";

/// Hash of a local root filesystem: relative names, kinds, modes, link
/// targets and contents, in sorted order.
pub fn rootfs_fingerprint(path: &Path) -> std::io::Result<String> {
    let mut h = Sha256::new();
    if path.is_dir() {
        let mut stack = vec![path.to_path_buf()];
        let mut files = Vec::new();
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir)? {
                let e = e?;
                let ft = e.file_type()?;
                if ft.is_dir() {
                    stack.push(e.path());
                }
                files.push(e.path());
            }
        }
        files.sort();
        for f in files {
            let rel = f.strip_prefix(path).unwrap_or(&f);
            h.update(rel.to_string_lossy().as_bytes());
            h.update([0]);
            let meta = std::fs::symlink_metadata(&f)?;
            use std::os::unix::fs::MetadataExt;
            h.update(meta.mode().to_le_bytes());
            if meta.file_type().is_symlink() {
                h.update(std::fs::read_link(&f)?.to_string_lossy().as_bytes());
            } else if meta.is_file() {
                hash_file(&f, &mut h)?;
            }
            h.update([0xff]);
        }
    } else {
        hash_file(path, &mut h)?;
    }
    Ok(hex::encode(h.finalize()))
}

fn hash_file(path: &Path, h: &mut Sha256) -> std::io::Result<()> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        h.update(buf.get(..n).unwrap_or_default());
    }
}

/// Inputs resolved at plan time.
pub struct Resolved {
    /// The package's content fingerprint, when there is a package.
    pub package_fingerprint: Option<String>,
    /// The base: its manifest digest (registry) or content hash (local).
    pub base_identity: Option<String>,
}

/// The fingerprint of everything that determines the image's digest.
/// Tags and repository settings are deliberately left out: they do not
/// change the image.
pub fn source_fingerprint(args: &ImageArgs, resolved: &Resolved) -> String {
    let base = match &args.base {
        BaseArg::Scratch => "scratch".to_owned(),
        BaseArg::Dir(_) | BaseArg::Tar(_) | BaseArg::Image(_) => {
            resolved.base_identity.clone().unwrap_or_default()
        }
    };
    let doc = serde_json::json!({
        "builder": BUILDER_EPOCH,
        "package": resolved.package_fingerprint,
        "service": args.service,
        "layers": args.layers.iter().map(|l| serde_json::json!({
            "source": l.source, "destination": l.destination, "mode": l.mode, "uid": l.uid, "gid": l.gid,
        })).collect::<Vec<_>>(),
        "base": base,
        "env": args.env,
        "entrypoint": args.entrypoint,
        "cmd": args.cmd,
        "working_dir": args.working_dir,
        "user": args.user,
        "labels": args.labels,
        "exposed_ports": args.exposed_ports,
        "stop_signal": args.stop_signal,
        "annotations": args.annotations,
        "platforms": args.platforms,
        "source_date_epoch": args.source_date_epoch,
        "compression": args.compression,
        "format": args.format,
    });
    hex::encode(Sha256::digest(doc.to_string().as_bytes()))
}

/// The package's content fingerprint (central directory only for a zip).
pub fn package_fingerprint(path: &Path) -> Result<String, ep_imagebuild::package::PackageError> {
    DeploymentPackage::open(path)?.fingerprint()
}
