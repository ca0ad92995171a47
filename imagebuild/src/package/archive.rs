//! A small zip reader built for untrusted input: it parses the central directory itself (so it
//! sees duplicates, symlink modes and overlapping entries that general-purpose readers hide),
//! streams entry data with CRC, size and inflation-ratio checks, and reads archives nested in
//! other archives either in place (stored, or a file on disk) or through the outer inflater.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::PathBuf;

use super::paths::{check_entry_name, normalize};
use super::{DeploymentPackage, Entry, EntryKind, Limits, PackageError};

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

/// Parses and validates the central directory of the archive in `src`.
pub(crate) fn read_index(
    src: &ByteSource<'_>,
    label: &Label,
    limits: &Limits,
) -> Result<ZipIndex, PackageError> {
    let len = src.len();
    let mut head = [0u8; 4];
    let got = read_full(&mut src.open_at(0)?, &mut head, &label.archive)?;
    let is_zip_start =
        got == 4 && (u32::from_le_bytes(head) == LOCAL_SIG || u32::from_le_bytes(head) == EOCD_SIG);
    if !is_zip_start {
        return Err(PackageError::NotAZip {
            archive: label.archive.clone(),
        });
    }
    if len < EOCD_LEN {
        return Err(label.corrupt("truncated: shorter than an end-of-central-directory record"));
    }

    let tail_len = len.min(src.preferred_tail().max(EOCD_LEN + MAX_COMMENT));
    let tail_start = len - tail_len;
    let tail = {
        let n = usize::try_from(tail_len).map_err(|_| label.corrupt("archive too large"))?;
        let mut buf = vec![0u8; n];
        if read_full(&mut src.open_at(tail_start)?, &mut buf, &label.archive)? != n {
            return Err(label.corrupt("truncated while reading its end"));
        }
        buf
    };

    // The EOCD record is the last 22 bytes plus a comment; scan back for a signature whose
    // comment length lands exactly on the end, which rejects signatures inside data.
    let search_from = tail.len().saturating_sub((EOCD_LEN + MAX_COMMENT) as usize);
    let mut eocd_pos = None;
    let mut i = tail.len() - EOCD_LEN as usize;
    loop {
        let mut f = Fields::new(&tail[i..]);
        if f.u32() == Some(EOCD_SIG) {
            let comment_len = Fields::new(&tail[i + 20..]).u16().unwrap_or(u16::MAX);
            if i + EOCD_LEN as usize + comment_len as usize == tail.len() {
                eocd_pos = Some(i);
                break;
            }
        }
        if i == search_from {
            break;
        }
        i -= 1;
    }
    let Some(eocd_pos) = eocd_pos else {
        return Err(label
            .corrupt("end of central directory record not found (truncated or damaged archive)"));
    };
    let eocd_abs = tail_start + eocd_pos as u64;
    let mut f = Fields::new(&tail[eocd_pos + 4..]);
    let short = || label.corrupt("short end of central directory record");
    let disk = f.u16().ok_or_else(short)?;
    let cd_disk = f.u16().ok_or_else(short)?;
    let _entries_on_disk = f.u16().ok_or_else(short)?;
    let entries16 = f.u16().ok_or_else(short)?;
    let cd_size32 = f.u32().ok_or_else(short)?;
    let cd_offset32 = f.u32().ok_or_else(short)?;
    if disk != 0 || cd_disk != 0 {
        return Err(label.corrupt("multi-disk archives are not supported"));
    }

    let (entry_count, cd_size, cd_offset, cd_end) =
        if entries16 == u16::MAX || cd_size32 == u32::MAX || cd_offset32 == u32::MAX {
            if eocd_abs < 20 {
                return Err(label.corrupt("zip64 locator missing"));
            }
            let loc = read_range(src, &tail, tail_start, eocd_abs - 20, 20, label)?;
            let mut f = Fields::new(&loc);
            let bad = || label.corrupt("bad zip64 end of central directory locator");
            if f.u32() != Some(ZIP64_LOCATOR_SIG) {
                return Err(bad());
            }
            let _disk = f.u32().ok_or_else(bad)?;
            let z64_offset = f.u64().ok_or_else(bad)?;
            if z64_offset.checked_add(56).is_none_or(|end| end > eocd_abs) {
                return Err(bad());
            }
            let rec = read_range(src, &tail, tail_start, z64_offset, 56, label)?;
            let mut f = Fields::new(&rec);
            let bad = || label.corrupt("bad zip64 end of central directory record");
            if f.u32() != Some(ZIP64_EOCD_SIG) {
                return Err(bad());
            }
            f.bytes(8 + 2 + 2 + 4 + 4 + 8).ok_or_else(bad)?;
            let count = f.u64().ok_or_else(bad)?;
            let size = f.u64().ok_or_else(bad)?;
            let offset = f.u64().ok_or_else(bad)?;
            (count, size, offset, z64_offset)
        } else {
            (
                u64::from(entries16),
                u64::from(cd_size32),
                u64::from(cd_offset32),
                eocd_abs,
            )
        };

    check_directory_bounds(entry_count, cd_size, cd_offset, cd_end, label, limits)?;

    let cd = read_range(src, &tail, tail_start, cd_offset, cd_size, label)?;
    parse_central_directory(cd, entry_count, cd_offset, label, limits)
}

/// Refuses a central directory that declares more than the limits allow or does not fit
/// before `cd_end` (the zip64 record or end-of-central-directory record, or the archive's end).
fn check_directory_bounds(
    entry_count: u64,
    cd_size: u64,
    cd_offset: u64,
    cd_end: u64,
    label: &Label,
    limits: &Limits,
) -> Result<(), PackageError> {
    if entry_count > limits.max_entries {
        return Err(PackageError::ZipBomb {
            entry: label.archive.clone(),
            reason: format!(
                "declares {entry_count} entries, more than the limit of {}",
                limits.max_entries
            ),
        });
    }
    if cd_size > limits.max_central_directory {
        return Err(PackageError::ZipBomb {
            entry: label.archive.clone(),
            reason: format!(
                "central directory of {cd_size} bytes exceeds the limit of {}",
                limits.max_central_directory
            ),
        });
    }
    if cd_offset
        .checked_add(cd_size)
        .is_none_or(|end| end > cd_end)
    {
        return Err(label.corrupt("central directory lies outside the archive (truncated?)"));
    }
    if entry_count.saturating_mul(46) > cd_size {
        return Err(label.corrupt("central directory is shorter than its entry count"));
    }
    Ok(())
}

/// Parses and validates the raw central directory `cd` of `entry_count` records. Shared by a
/// fresh read and by a listing cached from an earlier read ([`ArchiveListing`]), so a cached
/// listing passes exactly the checks a fresh one does.
fn parse_central_directory(
    cd: Vec<u8>,
    entry_count: u64,
    cd_offset: u64,
    label: &Label,
    limits: &Limits,
) -> Result<ZipIndex, PackageError> {
    let mut f = Fields::new(&cd);
    let capacity = usize::try_from(entry_count).unwrap_or(0);
    let mut records = Vec::with_capacity(capacity);
    let mut entries = Vec::with_capacity(capacity);
    let mut by_name = HashMap::with_capacity(capacity);
    let mut declared_total: u64 = 0;

    for n in 0..entry_count {
        let bad = || label.corrupt(format!("bad central directory record #{n}"));
        if f.u32() != Some(CENTRAL_SIG) {
            return Err(bad());
        }
        let made_by = f.u16().ok_or_else(bad)?;
        let _needed = f.u16().ok_or_else(bad)?;
        let flags = f.u16().ok_or_else(bad)?;
        let method = f.u16().ok_or_else(bad)?;
        let _time = f.u32().ok_or_else(bad)?;
        let crc32 = f.u32().ok_or_else(bad)?;
        let csize32 = f.u32().ok_or_else(bad)?;
        let usize32 = f.u32().ok_or_else(bad)?;
        let name_len = f.u16().ok_or_else(bad)?;
        let extra_len = f.u16().ok_or_else(bad)?;
        let comment_len = f.u16().ok_or_else(bad)?;
        let _disk = f.u16().ok_or_else(bad)?;
        let _internal = f.u16().ok_or_else(bad)?;
        let external = f.u32().ok_or_else(bad)?;
        let offset32 = f.u32().ok_or_else(bad)?;
        let name_bytes = f.bytes(name_len.into()).ok_or_else(bad)?;
        let extra = f.bytes(extra_len.into()).ok_or_else(bad)?;
        f.bytes(comment_len.into()).ok_or_else(bad)?;

        let mut size = u64::from(usize32);
        let mut compressed_size = u64::from(csize32);
        let mut header_offset = u64::from(offset32);
        if usize32 == u32::MAX || csize32 == u32::MAX || offset32 == u32::MAX {
            let mut z = zip64_extra(extra).ok_or_else(bad)?;
            if usize32 == u32::MAX {
                size = z.u64().ok_or_else(bad)?;
            }
            if csize32 == u32::MAX {
                compressed_size = z.u64().ok_or_else(bad)?;
            }
            if offset32 == u32::MAX {
                header_offset = z.u64().ok_or_else(bad)?;
            }
        }

        let raw_name =
            String::from_utf8(name_bytes.to_vec()).map_err(|_| PackageError::UnsafePath {
                entry: label.entry(&String::from_utf8_lossy(name_bytes)),
                reason: "name is not valid UTF-8",
            })?;
        let shown = label.entry(&raw_name);
        check_entry_name(&raw_name).map_err(|reason| PackageError::UnsafePath {
            entry: shown.clone(),
            reason,
        })?;
        // Unix hosts (3) and macOS (19) keep st_mode in the high half of the external attributes.
        let host = made_by >> 8;
        let unix_mode = if host == 3 || host == 19 {
            Some(external >> 16).filter(|m| *m != 0)
        } else {
            None
        };
        let is_dir = raw_name.ends_with('/');
        if let Some(mode) = unix_mode {
            match mode & S_IFMT {
                S_IFLNK => return Err(PackageError::SymlinkEntry { entry: shown }),
                0 | S_IFREG | S_IFDIR => {}
                other => {
                    return Err(PackageError::UnsupportedEntry {
                        entry: shown,
                        reason: format!("special file type {other:o}"),
                    })
                }
            }
        }
        if flags & 1 != 0 {
            return Err(PackageError::UnsupportedEntry {
                entry: shown,
                reason: "encrypted".into(),
            });
        }
        if method != METHOD_STORED && method != METHOD_DEFLATED {
            return Err(PackageError::UnsupportedEntry {
                entry: shown,
                reason: format!("compression method {method} (only stored and deflate)"),
            });
        }
        if method == METHOD_STORED && size != compressed_size {
            return Err(label.corrupt(format!(
                "stored entry {shown:?} has different compressed and uncompressed sizes"
            )));
        }
        check_declared(&shown, size, compressed_size, limits)?;
        declared_total = declared_total.saturating_add(size);
        if declared_total > limits.max_total_size {
            return Err(PackageError::ZipBomb {
                entry: label.archive.clone(),
                reason: format!(
                    "entries declare more than {} bytes in total",
                    limits.max_total_size
                ),
            });
        }

        let key = normalize(&raw_name).to_string();
        if by_name.insert(key.clone(), entries.len()).is_some() {
            return Err(PackageError::DuplicateEntry {
                entry: label.entry(&key),
            });
        }
        entries.push(Entry {
            path: key,
            kind: if is_dir {
                EntryKind::Directory
            } else {
                EntryKind::File
            },
            size,
            crc32: Some(crc32),
            mode: unix_mode.map(|m| m & 0o7777),
        });
        records.push(ZipRecord {
            raw_name,
            method,
            crc32,
            compressed_size,
            size,
            header_offset,
        });
    }

    check_file_dir_conflicts(&entries, &by_name, label)?;
    check_layout(&records, cd_offset, label)?;
    Ok(ZipIndex {
        records,
        entries,
        by_name,
        cd_offset,
        listing: ArchiveListing {
            entry_count,
            cd_offset,
            central_directory: cd,
        },
    })
}

/// The zip64 extended-information extra field, if present.
fn zip64_extra(extra: &[u8]) -> Option<Fields<'_>> {
    let mut f = Fields::new(extra);
    while let (Some(id), Some(len)) = (f.u16(), f.u16()) {
        let data = f.bytes(len.into())?;
        if id == 1 {
            return Some(Fields::new(data));
        }
    }
    None
}

/// Refuses entries whose declared size or ratio is beyond the limits, before inflating them.
pub(crate) fn check_declared(
    entry: &str,
    size: u64,
    compressed: u64,
    limits: &Limits,
) -> Result<(), PackageError> {
    if size > limits.max_entry_size {
        return Err(PackageError::ZipBomb {
            entry: entry.to_string(),
            reason: format!(
                "declares {size} bytes, more than the limit of {}",
                limits.max_entry_size
            ),
        });
    }
    if size > limits.ratio_threshold && size / compressed.max(1) > limits.max_ratio {
        return Err(PackageError::ZipBomb {
            entry: entry.to_string(),
            reason: format!(
                "declares a compression ratio above {}:1 ({size} from {compressed} bytes)",
                limits.max_ratio
            ),
        });
    }
    Ok(())
}

/// A file whose name is also a parent directory of another entry would make extraction
/// ambiguous (and is a classic way to smuggle content through a "file" later replaced).
fn check_file_dir_conflicts(
    entries: &[Entry],
    by_name: &HashMap<String, usize>,
    label: &Label,
) -> Result<(), PackageError> {
    for e in entries {
        let mut path = e.path.as_str();
        while let Some(cut) = path.rfind('/') {
            path = &path[..cut];
            if let Some(&i) = by_name.get(path) {
                if entries.get(i).is_some_and(|p| p.kind == EntryKind::File) {
                    return Err(PackageError::DuplicateEntry {
                        entry: label.entry(path),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Entries must not overlap one another or the central directory: overlapping entries let a
/// tiny archive expand to huge sizes by sharing one compressed stream.
fn check_layout(records: &[ZipRecord], cd_offset: u64, label: &Label) -> Result<(), PackageError> {
    let mut order: Vec<&ZipRecord> = records.iter().collect();
    order.sort_by_key(|r| r.header_offset);
    for (i, rec) in order.iter().enumerate() {
        let min_end = rec
            .header_offset
            .checked_add(LOCAL_HEADER_LEN + rec.raw_name.len() as u64)
            .and_then(|v| v.checked_add(rec.compressed_size))
            .ok_or_else(|| label.corrupt("entry offsets overflow"))?;
        let limit = order
            .get(i + 1)
            .map_or(cd_offset, |next| next.header_offset);
        if min_end > limit {
            return Err(label.corrupt(format!(
                "entry {:?} overlaps the next entry or the central directory",
                label.entry(&rec.raw_name)
            )));
        }
    }
    Ok(())
}

/// Reads and checks a local file header; returns its length.
fn read_local_header(
    r: &mut dyn Read,
    rec: &ZipRecord,
    label: &Label,
) -> Result<u64, PackageError> {
    let shown = label.entry(&rec.raw_name);
    let bad = |what: &str| label.corrupt(format!("{what} for entry {shown:?}"));
    let mut fixed = [0u8; LOCAL_HEADER_LEN as usize];
    if read_full(r, &mut fixed, &label.archive)? != fixed.len() {
        return Err(bad("truncated local header"));
    }
    let mut f = Fields::new(&fixed);
    if f.u32() != Some(LOCAL_SIG) {
        return Err(bad("bad local header signature"));
    }
    let _needed = f.u16();
    let _flags = f.u16();
    let method = f.u16().ok_or_else(|| bad("short local header"))?;
    f.bytes(16).ok_or_else(|| bad("short local header"))?;
    let name_len = f.u16().ok_or_else(|| bad("short local header"))?;
    let extra_len = f.u16().ok_or_else(|| bad("short local header"))?;
    if method != rec.method {
        return Err(bad(
            "local header compression method differs from the central directory",
        ));
    }
    let mut name = vec![0u8; name_len.into()];
    if read_full(r, &mut name, &label.archive)? != name.len() {
        return Err(bad("truncated local header"));
    }
    // A local name different from the central one is how some archives show one file to a
    // listing and extract another.
    if name != rec.raw_name.as_bytes() {
        return Err(bad("local header name differs from the central directory"));
    }
    let skipped = io::copy(&mut (&mut *r).take(extra_len.into()), &mut io::sink())
        .map_err(|e| PackageError::from_io(e, &label.archive))?;
    if skipped != u64::from(extra_len) {
        return Err(bad("truncated local header"));
    }
    Ok(LOCAL_HEADER_LEN + u64::from(name_len) + u64::from(extra_len))
}

/// Wraps an entry's decoded data: verifies its size and CRC-32 at the end and stops as soon as
/// it inflates beyond what it declared or beyond the ratio limit, whatever the headers said.
pub(crate) struct CheckedReader<R> {
    inner: R,
    entry: String,
    expected_size: u64,
    expected_crc: u32,
    compressed_size: u64,
    produced: u64,
    hasher: crc32fast::Hasher,
    max_ratio: u64,
    ratio_threshold: u64,
    finished: bool,
}

impl<R: Read> CheckedReader<R> {
    pub(crate) fn new(inner: R, entry: String, rec: &ZipRecord, limits: &Limits) -> Self {
        CheckedReader {
            inner,
            entry,
            expected_size: rec.size,
            expected_crc: rec.crc32,
            compressed_size: rec.compressed_size,
            produced: 0,
            hasher: crc32fast::Hasher::new(),
            max_ratio: limits.max_ratio,
            ratio_threshold: limits.ratio_threshold,
            finished: false,
        }
    }

    fn corrupt(&self, reason: String) -> io::Error {
        PackageError::CorruptZip {
            archive: self.entry.clone(),
            reason,
        }
        .into_io()
    }
}

impl<R: Read> Read for CheckedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.finished || buf.is_empty() {
            return Ok(0);
        }
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) => {
                let carries_ours = e.get_ref().is_some_and(|i| i.is::<PackageError>());
                return Err(match e.kind() {
                    io::ErrorKind::InvalidData
                    | io::ErrorKind::InvalidInput
                    | io::ErrorKind::UnexpectedEof
                        if !carries_ours =>
                    {
                        self.corrupt(format!("bad compressed data: {e}"))
                    }
                    _ => e,
                });
            }
        };
        if n == 0 {
            if self.produced != self.expected_size {
                return Err(self.corrupt(format!(
                    "data ends after {} of {} bytes (truncated)",
                    self.produced, self.expected_size
                )));
            }
            let crc = std::mem::take(&mut self.hasher).finalize();
            if crc != self.expected_crc {
                return Err(self.corrupt(format!(
                    "CRC-32 mismatch (expected {:08x}, got {crc:08x})",
                    self.expected_crc
                )));
            }
            self.finished = true;
            return Ok(0);
        }
        self.produced += n as u64;
        if self.produced > self.expected_size {
            return Err(PackageError::ZipBomb {
                entry: self.entry.clone(),
                reason: format!(
                    "inflates beyond its declared size of {} bytes",
                    self.expected_size
                ),
            }
            .into_io());
        }
        if self.produced > self.ratio_threshold
            && self.produced / self.compressed_size.max(1) > self.max_ratio
        {
            return Err(PackageError::ZipBomb {
                entry: self.entry.clone(),
                reason: format!("inflates at more than {}:1", self.max_ratio),
            }
            .into_io());
        }
        let data = buf.get(..n).unwrap_or_default();
        self.hasher.update(data);
        Ok(n)
    }
}

/// An opened zip archive: the deployment package itself, or an archive nested in it (a WAR,
/// the data population tool zip, the ext-data jar). Nothing is unpacked to disk and no entry
/// is held in memory: archives stored in the package (or on disk) are read in place by seeking;
/// archives deflated in the package are re-inflated from the start for each pass.
#[derive(Debug)]
pub struct NestedArchive<'a> {
    source: ByteSource<'a>,
    index: ZipIndex,
    label: Label,
    limits: Limits,
}

impl<'a> NestedArchive<'a> {
    pub(crate) fn open(
        source: ByteSource<'a>,
        label: Label,
        limits: Limits,
    ) -> Result<Self, PackageError> {
        let index = read_index(&source, &label, &limits)?;
        Ok(NestedArchive {
            source,
            index,
            label,
            limits,
        })
    }

    /// Opens an archive from a listing taken earlier from the same bytes (see
    /// [`NestedArchive::listing`]): nothing is read until an entry is. The listing is parsed
    /// and checked like a fresh central directory, and must fit inside the source.
    pub(crate) fn open_listed(
        source: ByteSource<'a>,
        label: Label,
        limits: Limits,
        listing: &ArchiveListing,
    ) -> Result<Self, PackageError> {
        let cd_size = listing.central_directory.len() as u64;
        check_directory_bounds(
            listing.entry_count,
            cd_size,
            listing.cd_offset,
            source.len(),
            &label,
            &limits,
        )?;
        let index = parse_central_directory(
            listing.central_directory.clone(),
            listing.entry_count,
            listing.cd_offset,
            &label,
            &limits,
        )?;
        Ok(NestedArchive {
            source,
            index,
            label,
            limits,
        })
    }

    /// The archive's central directory as read, to reopen it later with
    /// [`DeploymentPackage::open_nested_listed`] without reading it again.
    pub fn listing(&self) -> &ArchiveListing {
        &self.index.listing
    }

    /// The archive's name in errors: the package path, or the entry path of a nested archive.
    pub fn name(&self) -> &str {
        &self.label.archive
    }

    /// Whether entries are read in place (stored or on disk, random access is cheap) rather
    /// than through the outer inflater (each [`open_entry`](Self::open_entry) inflates the
    /// archive up to that entry; prefer [`for_each_entry`](Self::for_each_entry)).
    pub fn is_seekable(&self) -> bool {
        self.source.is_seekable()
    }

    /// Every entry, in central directory order.
    pub fn entries(&self) -> &[Entry] {
        &self.index.entries
    }

    /// Looks up one entry by path (a trailing `/` is ignored).
    pub fn entry(&self, path: &str) -> Option<&Entry> {
        self.index
            .by_name
            .get(normalize(path))
            .and_then(|&i| self.index.entries.get(i))
    }

    /// Streams one entry's content, checked for size, CRC and inflation limits (failures
    /// surface as `io::Error`s that [`PackageError::from_io`] turns back into typed errors).
    pub fn open_entry(&self, path: &str) -> Result<Box<dyn Read + '_>, PackageError> {
        let i = *self.index.by_name.get(normalize(path)).ok_or_else(|| {
            PackageError::EntryNotFound {
                archive: self.label.archive.clone(),
                entry: path.to_string(),
            }
        })?;
        let (Some(entry), Some(rec)) = (self.index.entries.get(i), self.index.records.get(i))
        else {
            return Err(PackageError::EntryNotFound {
                archive: self.label.archive.clone(),
                entry: path.to_string(),
            });
        };
        if entry.kind == EntryKind::Directory {
            return Err(PackageError::UnsupportedEntry {
                entry: self.label.entry(path),
                reason: "is a directory".into(),
            });
        }
        let mut reader = self.source.open_at(rec.header_offset)?;
        let header_len = read_local_header(&mut reader, rec, &self.label)?;
        self.check_data_end(rec, header_len)?;
        let raw = reader.take(rec.compressed_size);
        let decoded: Box<dyn Read + '_> = if rec.method == METHOD_DEFLATED {
            Box::new(flate2::read::DeflateDecoder::new(raw))
        } else {
            Box::new(raw)
        };
        Ok(Box::new(CheckedReader::new(
            decoded,
            self.label.entry(&rec.raw_name),
            rec,
            &self.limits,
        )))
    }

    /// How one entry is stored, from the central directory: `None` if there is no such entry.
    pub(crate) fn coding(&self, path: &str) -> Option<EntryCoding> {
        let rec = self
            .index
            .by_name
            .get(normalize(path))
            .and_then(|&i| self.index.records.get(i))?;
        Some(EntryCoding {
            method: rec.method,
            crc32: rec.crc32,
            size: rec.size,
            compressed_size: rec.compressed_size,
        })
    }

    /// For a stored entry of an archive on disk: the absolute byte range of its data in that
    /// file, so an archive nested in it can be read in place.
    pub(crate) fn stored_range(&self, path: &str) -> Result<Option<(u64, u64)>, PackageError> {
        let ByteSource::File { start, .. } = &self.source else {
            return Ok(None);
        };
        let Some(rec) = self
            .index
            .by_name
            .get(normalize(path))
            .and_then(|&i| self.index.records.get(i))
        else {
            return Ok(None);
        };
        if rec.method != METHOD_STORED {
            return Ok(None);
        }
        let mut reader = self.source.open_at(rec.header_offset)?;
        let header_len = read_local_header(&mut reader, rec, &self.label)?;
        self.check_data_end(rec, header_len)?;
        Ok(Some((
            start + rec.header_offset + header_len,
            rec.compressed_size,
        )))
    }

    fn check_data_end(&self, rec: &ZipRecord, header_len: u64) -> Result<(), PackageError> {
        let end = rec
            .header_offset
            .saturating_add(header_len)
            .saturating_add(rec.compressed_size);
        if end > self.index.cd_offset {
            return Err(self.label.corrupt(format!(
                "data of {:?} runs into the central directory",
                self.label.entry(&rec.raw_name)
            )));
        }
        Ok(())
    }

    /// Visits every entry (directories included, with empty content) in archive order with
    /// one sequential pass. The visitor may read all, part or none of the content; the rest is
    /// read and verified before the next entry, so a damaged entry fails the walk.
    pub fn for_each_entry<F>(&self, mut visit: F) -> Result<(), PackageError>
    where
        F: FnMut(&Entry, &mut dyn Read) -> Result<(), PackageError>,
    {
        let mut order: Vec<usize> = (0..self.index.records.len()).collect();
        order.sort_by_key(|&i| self.index.records.get(i).map_or(0, |r| r.header_offset));
        let mut reader = BufReader::with_capacity(BUF_SIZE, self.source.open_at(0)?);
        let mut pos: u64 = 0;
        for i in order {
            let (Some(entry), Some(rec)) = (self.index.entries.get(i), self.index.records.get(i))
            else {
                continue;
            };
            // Skip what lies between entries (data descriptors).
            let gap = rec.header_offset.saturating_sub(pos);
            let skipped = io::copy(&mut (&mut reader).take(gap), &mut io::sink())
                .map_err(|e| PackageError::from_io(e, &self.label.archive))?;
            if skipped != gap || rec.header_offset < pos {
                return Err(self.label.corrupt("entries are out of place (truncated?)"));
            }
            let header_len = read_local_header(&mut reader, rec, &self.label)?;
            self.check_data_end(rec, header_len)?;
            let shown = self.label.entry(&rec.raw_name);
            let mut raw = (&mut reader).take(rec.compressed_size);
            {
                let decoded: Box<dyn Read + '_> = if rec.method == METHOD_DEFLATED {
                    Box::new(flate2::read::DeflateDecoder::new(&mut raw))
                } else {
                    Box::new(&mut raw)
                };
                let mut checked = CheckedReader::new(decoded, shown.clone(), rec, &self.limits);
                visit(entry, &mut checked)?;
                io::copy(&mut checked, &mut io::sink())
                    .map_err(|e| PackageError::from_io(e, &shown))?;
            }
            io::copy(&mut raw, &mut io::sink()).map_err(|e| PackageError::from_io(e, &shown))?;
            if raw.limit() != 0 {
                return Err(self
                    .label
                    .corrupt(format!("data of {shown:?} is truncated")));
            }
            pos = rec.header_offset + header_len + rec.compressed_size;
        }
        Ok(())
    }
}
