//! A small zip reader built for untrusted input: it parses the central directory itself (so it
//! sees duplicates, symlink modes and overlapping entries that general-purpose readers hide),
//! streams entry data with CRC, size and inflation-ratio checks, and reads archives nested in
//! other archives either in place (stored, or a file on disk) or through the outer inflater.

mod index;
mod nested;
mod reader;

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::PathBuf;

use crate::package::{DeploymentPackage, Entry, PackageError};

pub(crate) use index::read_index;
pub use nested::NestedArchive;
pub(crate) use reader::CheckedReader;

const LOCAL_SIG: u32 = 0x0403_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const EOCD_SIG: u32 = 0x0605_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const EOCD_LEN: u64 = 22;
const LOCAL_HEADER_LEN: u64 = 30;
const MAX_COMMENT: u64 = 65_535;
const METHOD_STORED: u16 = 0;
const METHOD_DEFLATED: u16 = 8;
const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;
const BUF_SIZE: usize = 64 * 1024;

/// Location and coding of one entry's data, from the central directory.
#[derive(Debug, Clone)]
pub(crate) struct ZipRecord {
    pub(crate) raw_name: String,
    pub(crate) method: u16,
    pub(crate) crc32: u32,
    pub(crate) compressed_size: u64,
    pub(crate) size: u64,
    pub(crate) header_offset: u64,
}

/// The validated central directory of one archive.
#[derive(Debug)]
pub(crate) struct ZipIndex {
    /// Parallel to `entries`.
    pub(crate) records: Vec<ZipRecord>,
    pub(crate) entries: Vec<Entry>,
    pub(crate) by_name: HashMap<String, usize>,
    /// Entry data must end before this offset.
    cd_offset: u64,
    /// The raw central directory it was parsed from, for [`NestedArchive::listing`].
    listing: ArchiveListing,
}

/// How an entry of a zip is stored, as its central directory records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryCoding {
    /// Compression method (0 stored, 8 deflate).
    pub method: u16,
    /// CRC-32 of the content.
    pub crc32: u32,
    /// Inflated size.
    pub size: u64,
    /// Size as stored.
    pub compressed_size: u64,
}

impl EntryCoding {
    /// Whether reading the entry means inflating it.
    pub fn is_deflated(&self) -> bool {
        self.method == METHOD_DEFLATED
    }
}

/// The raw central directory of an archive, as read from it: enough to reopen the archive
/// later without reading (or, for an archive deflated in the package, inflating) anything to
/// find it. Reopening parses and validates it again with the same checks as a fresh read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveListing {
    entry_count: u64,
    cd_offset: u64,
    central_directory: Vec<u8>,
}

const LISTING_MAGIC: &[u8; 8] = b"EPZIPCD1";

impl ArchiveListing {
    /// A self-describing byte form: magic, entry count, offset, then the directory.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(24 + self.central_directory.len());
        out.extend_from_slice(LISTING_MAGIC);
        out.extend_from_slice(&self.entry_count.to_le_bytes());
        out.extend_from_slice(&self.cd_offset.to_le_bytes());
        out.extend_from_slice(&self.central_directory);
        out
    }

    /// Reads [`to_bytes`](Self::to_bytes) output back; `None` if it is not one. The content is
    /// only checked when an archive is opened from it.
    pub fn from_bytes(bytes: &[u8]) -> Option<ArchiveListing> {
        let mut f = Fields::new(bytes);
        if f.bytes(LISTING_MAGIC.len())? != LISTING_MAGIC {
            return None;
        }
        let entry_count = f.u64()?;
        let cd_offset = f.u64()?;
        let central_directory = bytes.get(f.pos..)?.to_vec();
        Some(ArchiveListing {
            entry_count,
            cd_offset,
            central_directory,
        })
    }

    /// Number of entries it declares.
    pub fn entry_count(&self) -> u64 {
        self.entry_count
    }
}

/// Where an archive's bytes come from.
#[derive(Debug)]
pub(crate) enum ByteSource<'a> {
    /// A byte range of a file on disk: seekable, read in place.
    File { path: PathBuf, start: u64, len: u64 },
    /// A deflated entry of the outer package: re-inflated from the start for every pass.
    Entry {
        pkg: &'a DeploymentPackage,
        rel: String,
        len: u64,
    },
}

impl ByteSource<'_> {
    fn len(&self) -> u64 {
        match self {
            ByteSource::File { len, .. } | ByteSource::Entry { len, .. } => *len,
        }
    }

    /// How much of the end to keep in memory while locating the central directory: seeking a
    /// file is cheap, re-inflating an entry is not, so keep enough to usually hold the whole
    /// central directory of a large WAR.
    fn preferred_tail(&self) -> u64 {
        match self {
            ByteSource::File { .. } => EOCD_LEN + MAX_COMMENT,
            ByteSource::Entry { .. } => 8 * 1024 * 1024,
        }
    }

    /// A reader positioned at `offset`, ending at the end of the source.
    fn open_at(&self, offset: u64) -> Result<Box<dyn Read + '_>, PackageError> {
        let len = self.len();
        let offset = offset.min(len);
        match self {
            ByteSource::File { path, start, .. } => {
                let ctx = || path.display().to_string();
                let mut file = File::open(path).map_err(|e| PackageError::from_io(e, &ctx()))?;
                file.seek(SeekFrom::Start(start + offset))
                    .map_err(|e| PackageError::from_io(e, &ctx()))?;
                Ok(Box::new(BufReader::with_capacity(
                    BUF_SIZE,
                    file.take(len - offset),
                )))
            }
            ByteSource::Entry { pkg, rel, .. } => {
                let mut reader = BufReader::with_capacity(BUF_SIZE, pkg.open_entry(rel)?);
                let skipped = io::copy(&mut (&mut reader).take(offset), &mut io::sink())
                    .map_err(|e| PackageError::from_io(e, rel))?;
                if skipped != offset {
                    return Err(PackageError::CorruptZip {
                        archive: rel.clone(),
                        reason: "entry ends before its declared size".into(),
                    });
                }
                Ok(Box::new(reader))
            }
        }
    }

    fn is_seekable(&self) -> bool {
        matches!(self, ByteSource::File { .. })
    }
}

/// Reads at most `buf.len()` bytes, stopping early only at end of input.
fn read_full(r: &mut dyn Read, buf: &mut [u8], ctx: &str) -> Result<usize, PackageError> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(PackageError::from_io(e, ctx)),
        }
    }
    Ok(filled)
}

/// Little-endian field reader over a byte slice that never panics.
struct Fields<'b> {
    buf: &'b [u8],
    pos: usize,
}

impl<'b> Fields<'b> {
    fn new(buf: &'b [u8]) -> Self {
        Fields { buf, pos: 0 }
    }
    fn bytes(&mut self, n: usize) -> Option<&'b [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }
    fn u16(&mut self) -> Option<u16> {
        self.bytes(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.bytes(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Option<u64> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Some(u64::from_le_bytes(a))
    }
}

/// Context for error messages: the archive's display name and the prefix for its entries.
#[derive(Debug, Clone)]
pub(crate) struct Label {
    /// How the archive is named in errors (a path, or `webapps/x.war`).
    pub(crate) archive: String,
    /// Prepended to entry names in errors: empty for the package, `webapps/x.war!/` if nested.
    pub(crate) prefix: String,
}

impl Label {
    fn entry(&self, name: &str) -> String {
        format!("{}{}", self.prefix, name)
    }
    fn corrupt(&self, reason: impl Into<String>) -> PackageError {
        PackageError::CorruptZip {
            archive: self.archive.clone(),
            reason: reason.into(),
        }
    }
}

/// Reads `len` bytes at `offset`, from the cached tail when it covers the range.
fn read_range(
    src: &ByteSource<'_>,
    tail: &[u8],
    tail_start: u64,
    offset: u64,
    len: u64,
    label: &Label,
) -> Result<Vec<u8>, PackageError> {
    if offset >= tail_start {
        let from = usize::try_from(offset - tail_start).map_err(|_| label.corrupt("bad offset"))?;
        let to = usize::try_from(len)
            .ok()
            .and_then(|l| from.checked_add(l))
            .ok_or_else(|| label.corrupt("bad length"))?;
        return tail
            .get(from..to)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| label.corrupt("record extends past the end of the archive"));
    }
    let n = usize::try_from(len).map_err(|_| label.corrupt("record too large"))?;
    let mut out = vec![0u8; n];
    let mut reader = src.open_at(offset)?;
    if read_full(&mut reader, &mut out, &label.archive)? != n {
        return Err(label.corrupt("record extends past the end of the archive (truncated?)"));
    }
    Ok(out)
}
