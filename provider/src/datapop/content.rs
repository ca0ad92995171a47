//! What of a deployment package the Data Population tool runs on, hashed:
//! the identity of a populated database's inputs from the package.

use std::path::Path;

use ep_imagebuild::package::DeploymentPackage;
use sha2::{Digest, Sha256};

use super::DataPopError;

/// SHA-256 (hex) over `parts`, each followed by a NUL byte.
pub fn sha(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())
}

/// The package's data-population content: path, size and CRC-32 of the
/// tool zip, the ext-data jar and the JDBC drivers, from the central
/// directory (a directory package's files are read for their hash).
/// Moving or rebuilding the package with the same content keeps it.
pub fn package_data_hash(package: &Path) -> Result<String, DataPopError> {
    let pkg = DeploymentPackage::open(package)?;
    let mut files: Vec<String> = Vec::new();
    let tool = pkg.tool("data-population").ok_or(DataPopError::NoTool)?;
    let ext = pkg.ext_data().ok_or(DataPopError::NoExtData)?;
    for a in std::iter::once(tool)
        .chain(std::iter::once(ext))
        .chain(pkg.jdbc_drivers())
    {
        let crc = match pkg.entry(&a.path).and_then(|e| e.crc32) {
            Some(c) => format!("crc32:{c:08x}"),
            None => format!("sha256:{}", pkg.sha256(a)?),
        };
        files.push(format!("{}\t{}\t{crc}", a.path, a.size));
    }
    files.sort();
    let refs: Vec<&str> = files.iter().map(String::as_str).collect();
    Ok(sha(&refs))
}
