//! Archives opened in place or nested in the package.

use std::io::{self, BufReader, Read};

use crate::package::paths::normalize;
use crate::package::{ArchiveListing, Entry, EntryCoding, EntryKind, Limits, PackageError};

use super::index::{check_directory_bounds, parse_central_directory};
use super::reader::read_local_header;
use super::{
    read_index, ByteSource, CheckedReader, Label, ZipIndex, ZipRecord, BUF_SIZE, METHOD_DEFLATED,
    METHOD_STORED,
};

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

    pub(super) fn check_data_end(
        &self,
        rec: &ZipRecord,
        header_len: u64,
    ) -> Result<(), PackageError> {
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
