//! Errors raised while reading a deployment package.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while opening or reading a deployment package.
///
/// Entry names are reported relative to the package root; an entry inside a nested archive is
/// written `outer!/inner` (for example `webapps/ext-cortex-webapp-8.5.0.war!/WEB-INF/web.xml`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackageError {
    /// The package path does not exist.
    #[error("deployment package not found: {}", path.display())]
    NotFound {
        /// The path that was given.
        path: PathBuf,
    },

    /// An I/O error while reading the package.
    #[error("cannot read {context}: {source}")]
    Io {
        /// The file or entry being read.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The file (or nested entry) does not start like a zip archive.
    #[error("{archive} is not a zip archive (expected a .zip/.war/.jar or an unpacked directory)")]
    NotAZip {
        /// The file or entry that was expected to be a zip.
        archive: String,
    },

    /// The archive is damaged: truncated, bad central directory, bad local header, CRC or size
    /// mismatch, overlapping entries.
    #[error("{archive} is a corrupt zip archive: {reason}")]
    CorruptZip {
        /// The archive or entry that failed.
        archive: String,
        /// What exactly is wrong.
        reason: String,
    },

    /// An entry name that could escape the extraction root or is not portable
    /// (`..`, absolute, drive letter, backslash, empty components, NUL).
    #[error("unsafe entry path {entry:?}: {reason}")]
    UnsafePath {
        /// The offending entry name, as found.
        entry: String,
        /// Why it is refused.
        reason: &'static str,
    },

    /// A zip entry that is a symbolic link (unix mode `S_IFLNK`). Links inside archives are
    /// never materialised.
    #[error("symbolic link entry {entry:?} is not allowed in a deployment package")]
    SymlinkEntry {
        /// The offending entry.
        entry: String,
    },

    /// A symbolic link in an unpacked package directory that resolves outside the package root.
    #[error("symbolic link {entry:?} points outside the package root (to {})", target.display())]
    SymlinkEscapes {
        /// The link, relative to the package root.
        entry: String,
        /// Where it resolves to.
        target: PathBuf,
    },

    /// Two entries with the same name, or a file that is also used as a directory.
    #[error("duplicate entry {entry:?}")]
    DuplicateEntry {
        /// The name that occurs twice.
        entry: String,
    },

    /// An entry (or the archive) inflates beyond a size or ratio limit, declared or actual.
    #[error("possible zip bomb at {entry:?}: {reason}")]
    ZipBomb {
        /// The offending entry or archive.
        entry: String,
        /// Which limit was exceeded.
        reason: String,
    },

    /// A small file that is read into memory (such as `ops-spec.json`) exceeds its cap.
    #[error("{entry:?} is {size} bytes, more than the {limit} bytes allowed")]
    TooLarge {
        /// The entry.
        entry: String,
        /// Its size (declared or read so far).
        size: u64,
        /// The cap.
        limit: u64,
    },

    /// An entry this reader does not support (encryption, a compression method other than
    /// stored/deflate, a device or fifo, a directory symlink, a directory opened as a file).
    #[error("unsupported entry {entry:?}: {reason}")]
    UnsupportedEntry {
        /// The entry.
        entry: String,
        /// What is unsupported.
        reason: String,
    },

    /// Neither applications nor tools were found: not an Elastic Path deployment package.
    #[error(
        "{} is not an Elastic Path deployment package: found neither webapps/*.war \
         (cortex, studio, cm, batch, integration, search, data-sync) nor \
         tools/*-package.zip at its root",
        path.display()
    )]
    NotAPackage {
        /// The package path.
        path: PathBuf,
    },

    /// Two files match the same application or tool pattern.
    #[error("ambiguous {name}: both {first:?} and {second:?} match")]
    AmbiguousArtifact {
        /// Logical name (`cortex`, `data-population`, ...).
        name: String,
        /// First matching path.
        first: String,
        /// Second matching path.
        second: String,
    },

    /// The requested entry does not exist.
    #[error("no entry {entry:?} in {archive}")]
    EntryNotFound {
        /// The package or nested archive.
        archive: String,
        /// The requested entry.
        entry: String,
    },

    /// `ops-spec.json` is not valid JSON (or not a JSON object).
    #[error("invalid {entry}: {reason}")]
    InvalidOpsSpec {
        /// The entry name.
        entry: String,
        /// Parser message.
        reason: String,
    },
}

impl PackageError {
    /// Turns an `io::Error` from one of this crate's readers back into the `PackageError` it
    /// carries (readers returned by `open_entry` report CRC, size and bomb failures this way);
    /// any other I/O error becomes [`PackageError::Io`] with `context`.
    pub fn from_io(err: io::Error, context: &str) -> Self {
        if err.get_ref().is_some_and(|e| e.is::<PackageError>()) {
            if let Some(inner) = err.into_inner() {
                if let Ok(pe) = inner.downcast::<PackageError>() {
                    return *pe;
                }
            }
            // Unreachable in practice: the check above saw a PackageError.
            return PackageError::Io {
                context: context.to_string(),
                source: io::Error::other("lost inner error"),
            };
        }
        PackageError::Io {
            context: context.to_string(),
            source: err,
        }
    }

    /// Wraps this error into an `io::Error` so it can travel through `Read`.
    pub(crate) fn into_io(self) -> io::Error {
        io::Error::other(self)
    }
}
