//! The central directory: finding it, parsing it, and refusing what is unsafe or inconsistent.

use std::collections::HashMap;

use crate::package::paths::{check_entry_name, normalize};
use crate::package::{ArchiveListing, Entry, EntryKind, Limits, PackageError};

use super::{
    read_full, read_range, ByteSource, Fields, Label, ZipIndex, ZipRecord, CENTRAL_SIG, EOCD_LEN,
    EOCD_SIG, LOCAL_HEADER_LEN, LOCAL_SIG, MAX_COMMENT, METHOD_DEFLATED, METHOD_STORED, S_IFDIR,
    S_IFLNK, S_IFMT, S_IFREG, ZIP64_EOCD_SIG, ZIP64_LOCATOR_SIG,
};

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
pub(super) fn check_directory_bounds(
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
pub(super) fn parse_central_directory(
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
pub(super) fn zip64_extra(extra: &[u8]) -> Option<Fields<'_>> {
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
pub(super) fn check_file_dir_conflicts(
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
pub(super) fn check_layout(
    records: &[ZipRecord],
    cd_offset: u64,
    label: &Label,
) -> Result<(), PackageError> {
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
