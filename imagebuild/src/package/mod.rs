//! Reading Elastic Path deployment packages.
//!
//! A package is the zip Elastic Path's packager builds (or the same tree unpacked into a
//! directory), with no top-level folder: `webapps/*.war`, `tools/*-package.zip`,
//! `tools/activemq/lib/*.jar`, `database/ext-data-<v>.jar`, `database/jdbc/*.jar` and an
//! optional `ops-spec.json`. [`DeploymentPackage`] opens one without unpacking it: it reads the
//! zip's central directory, streams entries on demand, and opens archives nested in it (a WAR,
//! the ext-data jar) in place when they are stored or by re-inflating them when deflated.
//!
//! The input is untrusted. Unsafe names (`..`, absolute, drive letters, backslashes), symlink
//! entries, duplicates, overlapping entries, corrupt data and inflation beyond [`Limits`] are
//! refused with distinct [`PackageError`] variants naming the offending entry.

mod archive;
mod classify;
mod dir;
mod error;
mod ops_spec;
mod paths;

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use sha2::{Digest, Sha256};

pub use archive::{ArchiveListing, EntryCoding, NestedArchive};
pub use error::PackageError;
pub use ops_spec::{DatabaseSpec, OpsSpec};

use archive::{ByteSource, Label};
use dir::DirIndex;
use paths::normalize;

/// The path of the optional ops spec at the package root.
pub const OPS_SPEC_PATH: &str = "ops-spec.json";

/// Bounds on what a package may make this reader inflate or hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest inflated size of any one entry (declared or actual).
    pub max_entry_size: u64,
    /// Largest total declared inflated size of one archive's entries.
    pub max_total_size: u64,
    /// Largest inflated-to-compressed ratio, checked once an entry exceeds `ratio_threshold`.
    pub max_ratio: u64,
    /// Entries up to this inflated size are exempt from the ratio check (small text files
    /// legitimately compress very well).
    pub ratio_threshold: u64,
    /// Most entries in one archive.
    pub max_entries: u64,
    /// Largest central directory, which is held in memory.
    pub max_central_directory: u64,
    /// Largest `ops-spec.json`, which is held in memory.
    pub max_ops_spec: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entry_size: 8 << 30,
            max_total_size: 32 << 30,
            // Deflate tops out near 1032:1; real jars, classes and XML stay far below 100:1.
            max_ratio: 200,
            ratio_threshold: 4 << 20,
            max_entries: 1_000_000,
            max_central_directory: 128 << 20,
            max_ops_spec: 1 << 20,
        }
    }
}

/// Whether an entry is a file or a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory (zip entries ending in `/`, or real directories).
    Directory,
}

/// One entry of a package or of a nested archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Relative path with forward slashes and no trailing slash.
    pub path: String,
    /// File or directory.
    pub kind: EntryKind,
    /// Inflated size in bytes (0 for directories).
    pub size: u64,
    /// CRC-32 from the zip central directory; `None` for unpacked directories.
    pub crc32: Option<u32>,
    /// Unix permission bits when the archive (or file system) records them.
    pub mode: Option<u32>,
}

/// What an [`Artifact`] is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArtifactKind {
    /// A web application WAR under `webapps/`.
    Application,
    /// A command-line tool zip under `tools/`.
    Tool,
    /// `database/ext-data-<v>.jar`: Liquibase data and the environments.
    ExtData,
    /// A JDBC driver under `database/jdbc/`.
    JdbcDriver,
    /// An ActiveMQ client jar under `tools/activemq/lib/`.
    ActiveMqLibrary,
}

/// A recognised file of the package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Artifact {
    /// Logical name: `cortex`, `studio`, `cm`, `batch`, `integration`, `search`, `data-sync`
    /// for applications; `data-population`, `import-export`, `sync` for tools; the Maven
    /// artifact id for the others.
    pub name: String,
    /// What it is for.
    pub kind: ArtifactKind,
    /// Path relative to the package root, forward slashes.
    pub path: String,
    /// Size in bytes (inflated).
    pub size: u64,
    /// The version in the file name (`<artifactId>-<version>.<ext>`), if any.
    pub version: Option<String>,
}

/// Whether the package was opened from a zip or from a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageFormat {
    /// A zip file.
    Zip,
    /// An unpacked directory.
    Directory,
}

#[derive(Debug)]
enum Source {
    Zip(NestedArchive<'static>),
    Dir(DirIndex),
}

/// An opened Elastic Path deployment package (zip or unpacked directory).
#[derive(Debug)]
pub struct DeploymentPackage {
    path: PathBuf,
    source: Source,
    limits: Limits,
    applications: Vec<Artifact>,
    tools: Vec<Artifact>,
    ext_data: Option<Artifact>,
    jdbc_drivers: Vec<Artifact>,
    activemq_libraries: Vec<Artifact>,
    version: Option<String>,
    /// Bytes inflated out of deflated package entries so far (see [`Self::inflated_bytes`]).
    inflated: AtomicU64,
}

/// Counts what a reader of a deflated package entry produces.
struct CountInflated<'c, R> {
    inner: R,
    count: &'c AtomicU64,
}

impl<R: Read> Read for CountInflated<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl DeploymentPackage {
    /// Opens a package zip or directory with the default [`Limits`].
    pub fn open(path: &Path) -> Result<Self, PackageError> {
        Self::open_with_limits(path, Limits::default())
    }

    /// Opens any directory or zip as a build context: its files are layer sources, and it
    /// need not hold Elastic Path artifacts (an image of tools, not of a service).
    pub fn open_context(path: &Path) -> Result<Self, PackageError> {
        let mut pkg = Self::open_source(path, Limits::default())?;
        // Not a package: classify leaves nothing set (no applications, tools or version).
        match pkg.classify() {
            Ok(()) | Err(PackageError::NotAPackage { .. }) => Ok(pkg),
            Err(e) => Err(e),
        }
    }

    /// Opens a package zip or directory with explicit limits.
    pub fn open_with_limits(path: &Path, limits: Limits) -> Result<Self, PackageError> {
        let mut pkg = Self::open_source(path, limits)?;
        pkg.classify()?;
        Ok(pkg)
    }

    fn open_source(path: &Path, limits: Limits) -> Result<Self, PackageError> {
        let meta = std::fs::metadata(path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                PackageError::NotFound {
                    path: path.to_path_buf(),
                }
            } else {
                PackageError::from_io(e, &path.display().to_string())
            }
        })?;
        let source = if meta.is_dir() {
            Source::Dir(DirIndex::scan(path)?)
        } else {
            let label = Label {
                archive: path.display().to_string(),
                prefix: String::new(),
            };
            let bytes = ByteSource::File {
                path: path.to_path_buf(),
                start: 0,
                len: meta.len(),
            };
            Source::Zip(NestedArchive::open(bytes, label, limits.clone())?)
        };
        let pkg = DeploymentPackage {
            path: path.to_path_buf(),
            source,
            limits,
            applications: Vec::new(),
            tools: Vec::new(),
            ext_data: None,
            jdbc_drivers: Vec::new(),
            activemq_libraries: Vec::new(),
            version: None,
            inflated: AtomicU64::new(0),
        };
        Ok(pkg)
    }

    /// The path the package was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Zip or directory.
    pub fn format(&self) -> PackageFormat {
        match self.source {
            Source::Zip(_) => PackageFormat::Zip,
            Source::Dir(_) => PackageFormat::Directory,
        }
    }

    /// The limits the package was opened with.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The release version, from the ext-data jar's name or else the first application's.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// The web applications found, in the order cortex, studio, cm, batch, integration,
    /// search, data-sync.
    pub fn applications(&self) -> &[Artifact] {
        &self.applications
    }

    /// One application by logical name (`"cortex"`, ...).
    pub fn application(&self, name: &str) -> Option<&Artifact> {
        self.applications.iter().find(|a| a.name == name)
    }

    /// The tools found: data-population, import-export, sync.
    pub fn tools(&self) -> &[Artifact] {
        &self.tools
    }

    /// One tool by logical name (`"data-population"`, ...).
    pub fn tool(&self, name: &str) -> Option<&Artifact> {
        self.tools.iter().find(|a| a.name == name)
    }

    /// `database/ext-data-<v>.jar`, if present.
    pub fn ext_data(&self) -> Option<&Artifact> {
        self.ext_data.as_ref()
    }

    /// The JDBC driver jars under `database/jdbc/`.
    pub fn jdbc_drivers(&self) -> &[Artifact] {
        &self.jdbc_drivers
    }

    /// The ActiveMQ client jars under `tools/activemq/lib/`.
    pub fn activemq_libraries(&self) -> &[Artifact] {
        &self.activemq_libraries
    }

    /// Every entry of the package (directories included), sorted for directories and in
    /// central directory order for zips.
    pub fn entries(&self) -> &[Entry] {
        match &self.source {
            Source::Zip(z) => z.entries(),
            Source::Dir(d) => &d.entries,
        }
    }

    /// One entry by relative path (a trailing `/` is ignored).
    pub fn entry(&self, rel: &str) -> Option<&Entry> {
        match &self.source {
            Source::Zip(z) => z.entry(rel),
            Source::Dir(d) => d
                .by_name
                .get(normalize(rel))
                .and_then(|&i| d.entries.get(i)),
        }
    }

    /// Streams one file of the package. Zip entries are inflated on the fly and checked for
    /// size, CRC and bomb limits; failures surface as `io::Error`s carrying a
    /// [`PackageError`] (see [`PackageError::from_io`]).
    pub fn open_entry(&self, rel: &str) -> Result<Box<dyn Read + '_>, PackageError> {
        match &self.source {
            Source::Zip(z) => {
                let reader = z.open_entry(rel)?;
                if z.coding(rel).is_some_and(|c| c.is_deflated()) {
                    Ok(Box::new(CountInflated {
                        inner: reader,
                        count: &self.inflated,
                    }))
                } else {
                    Ok(reader)
                }
            }
            Source::Dir(d) => {
                let entry = self.entry(rel).ok_or_else(|| PackageError::EntryNotFound {
                    archive: self.path.display().to_string(),
                    entry: rel.to_string(),
                })?;
                if entry.kind == EntryKind::Directory {
                    return Err(PackageError::UnsupportedEntry {
                        entry: rel.to_string(),
                        reason: "is a directory".into(),
                    });
                }
                let real = d.resolve(&entry.path)?;
                let file = File::open(&real).map_err(|e| PackageError::from_io(e, &entry.path))?;
                Ok(Box::new(BufReader::with_capacity(64 * 1024, file)))
            }
        }
    }

    /// Opens a zip nested in the package (a WAR, a tool zip, a jar) without extracting it:
    /// in place when it is stored in the package zip or the package is a directory, through
    /// the package's inflater otherwise.
    pub fn open_nested(&self, rel: &str) -> Result<NestedArchive<'_>, PackageError> {
        let (bytes, label) = self.nested_source(rel)?;
        NestedArchive::open(bytes, label, self.limits.clone())
    }

    /// [`open_nested`](Self::open_nested) from a listing taken earlier from the same entry
    /// ([`NestedArchive::listing`]): no central directory is read, so an archive deflated in
    /// the package is not inflated until one of its entries is read. The caller must make sure
    /// the entry did not change since (its [`EntryCoding`] is a good key); the listing is
    /// still parsed and checked like a fresh one, and entry reads still check local headers,
    /// sizes and CRCs.
    pub fn open_nested_listed(
        &self,
        rel: &str,
        listing: &ArchiveListing,
    ) -> Result<NestedArchive<'_>, PackageError> {
        let (bytes, label) = self.nested_source(rel)?;
        NestedArchive::open_listed(bytes, label, self.limits.clone(), listing)
    }

    /// How a file of a zip package is stored (method, CRC-32, sizes); `None` for a directory
    /// package or an unknown path.
    pub fn entry_coding(&self, rel: &str) -> Option<EntryCoding> {
        match &self.source {
            Source::Zip(z) => z.coding(rel),
            Source::Dir(_) => None,
        }
    }

    /// Bytes inflated out of deflated entries of the package zip so far, by every reader of
    /// this package (nested archives deflated in it included): what the caches of a build
    /// save shows here.
    pub fn inflated_bytes(&self) -> u64 {
        self.inflated.load(Ordering::Relaxed)
    }

    fn nested_source(&self, rel: &str) -> Result<(ByteSource<'_>, Label), PackageError> {
        let entry = self
            .entry(rel)
            .filter(|e| e.kind == EntryKind::File)
            .ok_or_else(|| PackageError::EntryNotFound {
                archive: self.path.display().to_string(),
                entry: rel.to_string(),
            })?;
        let label = Label {
            archive: entry.path.clone(),
            prefix: format!("{}!/", entry.path),
        };
        let bytes = match &self.source {
            Source::Dir(d) => ByteSource::File {
                path: d.resolve(&entry.path)?,
                start: 0,
                len: entry.size,
            },
            Source::Zip(z) => match z.stored_range(&entry.path)? {
                Some((start, len)) => ByteSource::File {
                    path: self.path.clone(),
                    start,
                    len,
                },
                None => ByteSource::Entry {
                    pkg: self,
                    rel: entry.path.clone(),
                    len: entry.size,
                },
            },
        };
        Ok((bytes, label))
    }

    /// The environment names in the ext-data jar (`environments/<env>/...`), sorted; empty
    /// when the package has no ext-data jar.
    pub fn environments(&self) -> Result<Vec<String>, PackageError> {
        let Some(ext) = &self.ext_data else {
            return Ok(Vec::new());
        };
        let jar = self.open_nested(&ext.path)?;
        let mut names = BTreeSet::new();
        for e in jar.entries() {
            if let Some(rest) = e.path.strip_prefix("environments/") {
                let (env, below) = rest.split_once('/').unwrap_or((rest, ""));
                if !env.is_empty() && (e.kind == EntryKind::Directory || !below.is_empty()) {
                    names.insert(env.to_string());
                }
            }
        }
        Ok(names.into_iter().collect())
    }

    /// Parses `ops-spec.json` when present (capped at [`Limits::max_ops_spec`] bytes).
    pub fn ops_spec(&self) -> Result<Option<OpsSpec>, PackageError> {
        let Some(entry) = self.entry(OPS_SPEC_PATH) else {
            return Ok(None);
        };
        let cap = self.limits.max_ops_spec;
        let too_large = |size| PackageError::TooLarge {
            entry: OPS_SPEC_PATH.into(),
            size,
            limit: cap,
        };
        if entry.size > cap {
            return Err(too_large(entry.size));
        }
        let mut buf = Vec::new();
        self.open_entry(OPS_SPEC_PATH)?
            .take(cap + 1)
            .read_to_end(&mut buf)
            .map_err(|e| PackageError::from_io(e, OPS_SPEC_PATH))?;
        if buf.len() as u64 > cap {
            return Err(too_large(buf.len() as u64));
        }
        let invalid = |reason: String| PackageError::InvalidOpsSpec {
            entry: OPS_SPEC_PATH.into(),
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_slice(&buf).map_err(|e| invalid(e.to_string()))?;
        OpsSpec::from_value(value)
            .map(Some)
            .ok_or_else(|| invalid("not a JSON object".into()))
    }

    /// SHA-256 (hex) of an artifact's content, streamed.
    pub fn sha256(&self, artifact: &Artifact) -> Result<String, PackageError> {
        self.sha256_entry(&artifact.path)
    }

    /// SHA-256 (hex) of any file of the package, streamed.
    pub fn sha256_entry(&self, rel: &str) -> Result<String, PackageError> {
        let mut hasher = Sha256::new();
        self.stream_entry(rel, |chunk| hasher.update(chunk))?;
        Ok(hex::encode(hasher.finalize()))
    }

    /// Feeds every byte of one file to `sink`, in chunks, without holding it in memory.
    fn stream_entry(&self, rel: &str, mut sink: impl FnMut(&[u8])) -> Result<(), PackageError> {
        let mut reader = self.open_entry(rel)?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(PackageError::from_io(e, rel)),
            };
            sink(buf.get(..n).unwrap_or_default());
        }
    }

    /// A content identity for the package, stable across machines and across zip and
    /// directory forms: SHA-256 over (path, size, CRC-32) of every file, sorted by path.
    /// Directory entries, timestamps and compression do not count. For a zip it only reads the
    /// central directory; for a directory it reads every file once to compute its CRC-32.
    pub fn fingerprint(&self) -> Result<String, PackageError> {
        let mut files: Vec<(&str, u64, u32)> = Vec::new();
        let crcs: HashMap<&str, u32> = match &self.source {
            Source::Zip(_) => HashMap::new(),
            Source::Dir(_) => {
                let mut map = HashMap::new();
                for e in self.entries().iter().filter(|e| e.kind == EntryKind::File) {
                    map.insert(e.path.as_str(), self.crc32_of(&e.path)?);
                }
                map
            }
        };
        for e in self.entries().iter().filter(|e| e.kind == EntryKind::File) {
            let crc = match e.crc32 {
                Some(c) => c,
                None => crcs.get(e.path.as_str()).copied().unwrap_or_default(),
            };
            files.push((&e.path, e.size, crc));
        }
        files.sort_unstable();
        let mut hasher = Sha256::new();
        hasher.update(b"ep-deployment-package-fingerprint/v1\n");
        for (path, size, crc) in files {
            hasher.update(path.as_bytes());
            hasher.update([0u8]);
            hasher.update(size.to_le_bytes());
            hasher.update(crc.to_le_bytes());
        }
        Ok(hex::encode(hasher.finalize()))
    }

    fn crc32_of(&self, rel: &str) -> Result<u32, PackageError> {
        let mut hasher = crc32fast::Hasher::new();
        self.stream_entry(rel, |chunk| hasher.update(chunk))?;
        Ok(hasher.finalize())
    }
}
