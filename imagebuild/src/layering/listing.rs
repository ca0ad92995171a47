//! A cache of nested archives' listings (their raw central directories), so that planning a
//! package whose WARs did not change inflates nothing.
//!
//! A WAR deflated inside the package zip keeps its central directory at the end of a deflate
//! stream: reading it means inflating the whole WAR. The package's own central directory
//! already says, for free, whether that WAR changed: its path, CRC-32, sizes and compression
//! method are the key here. A hit reopens the archive from the stored listing
//! ([`DeploymentPackage::open_nested_listed`](crate::package::DeploymentPackage::open_nested_listed)),
//! which parses and checks it like a fresh read.
//!
//! Each listing is one file `<dir>/<key>`: a magic line, the SHA-256 of the payload, then the
//! payload ([`ArchiveListing::to_bytes`]). Files appear by renaming a complete temporary file,
//! so concurrent builds sharing the directory see a whole listing or none; a file that is
//! short, damaged or unparsable is a miss and is replaced by the next store.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::package::{ArchiveListing, EntryCoding};

const MAGIC: &[u8] = b"ep-imagebuild listing v1\n";

/// Listings of nested archives in a directory (normally `<layer cache>/listings`).
#[derive(Debug, Clone)]
pub struct ListingCache {
    dir: PathBuf,
}

impl ListingCache {
    /// A cache in `dir`, created on the first store.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ListingCache { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key of the archive at package path `rel` stored as `coding`: everything the
    /// package's central directory says about its bytes.
    fn key(rel: &str, coding: &EntryCoding) -> String {
        let mut h = Sha256::new();
        h.update(MAGIC);
        h.update(rel.as_bytes());
        h.update([0]);
        h.update(coding.method.to_le_bytes());
        h.update(coding.crc32.to_le_bytes());
        h.update(coding.size.to_le_bytes());
        h.update(coding.compressed_size.to_le_bytes());
        hex::encode(h.finalize())
    }

    /// The stored listing of `rel`, if there is an intact one.
    pub fn load(&self, rel: &str, coding: &EntryCoding) -> Option<ArchiveListing> {
        let bytes = fs::read(self.dir.join(Self::key(rel, coding))).ok()?;
        let rest = bytes.strip_prefix(MAGIC)?;
        let (sum, payload) = rest.split_at_checked(32)?;
        if Sha256::digest(payload).as_slice() != sum {
            return None;
        }
        ArchiveListing::from_bytes(payload)
    }

    /// Stores the listing of `rel`. Best effort by design: a listing that cannot be written
    /// only costs the next build one inflation, so failures are returned for logging only.
    pub fn store(
        &self,
        rel: &str,
        coding: &EntryCoding,
        listing: &ArchiveListing,
    ) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let payload = listing.to_bytes();
        let tmp = self.dir.join(format!(
            ".tmp-listing-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        let write = || -> io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(MAGIC)?;
            f.write_all(&Sha256::digest(&payload))?;
            f.write_all(&payload)?;
            drop(f);
            fs::rename(&tmp, self.dir.join(Self::key(rel, coding)))
        };
        let res = write();
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res
    }
}
