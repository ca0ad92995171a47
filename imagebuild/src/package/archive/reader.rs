//! Reading entry data: local headers, and a reader that checks CRC, size and inflation ratio.

use std::io::{self, Read};

use crate::package::{Limits, PackageError};

use super::{read_full, Fields, Label, ZipRecord, LOCAL_HEADER_LEN, LOCAL_SIG};

/// Reads and checks a local file header; returns its length.
pub(super) fn read_local_header(
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

    pub(super) fn corrupt(&self, reason: String) -> io::Error {
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
