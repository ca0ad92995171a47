//! Streams a planned layer's entries into a [`LayerWriter`] in layer order without unpacking
//! anything to disk.
//!
//! Entries of a seekable source (the package zip itself, a WAR stored in it, a directory
//! package, host files) are opened one by one in order. An archive deflated inside the package
//! is not seekable: opening one of its entries re-inflates the archive from its start, which
//! over thousands of classes is quadratic. Such an archive is read in ONE sequential pass
//! ([`NestedArchive::for_each_entry`]): an entry that is the next one the layer needs goes
//! straight into the tar; one that arrives early waits in a bounded reorder buffer — in memory
//! while the buffer holds less than [`StreamOptions::memory_cap`], otherwise in a spill file in
//! [`StreamOptions::spill_dir`], deleted as soon as it is written. The sorted order is known up
//! front from the central directory, so the buffer drains as the expected entries arrive, and
//! the pass stops as soon as the layer's last entry from that archive is written.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Cursor, Read, Write};
use std::path::PathBuf;

use serde::Serialize;

use super::{EntrySource, LayerPlan, LayeringError, PlannedEntry, PlannedKind, Sources};
use crate::layer::{LayerWriter, Meta};
use crate::package::PackageError;

/// Default in-memory reorder buffer: 16 MiB.
pub const DEFAULT_MEMORY_CAP: usize = 16 << 20;

/// Bounds of the reorder buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamOptions {
    /// Most bytes held in memory at once; larger out-of-order entries are spilled.
    pub memory_cap: usize,
    /// Where spill files go (the build's work directory).
    pub spill_dir: PathBuf,
}

/// What streaming one layer took.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StreamStats {
    /// Sequential passes over non-seekable archives.
    pub passes: usize,
    /// Entries that arrived early and waited in memory.
    pub buffered_entries: usize,
    /// Entries that arrived early and waited in a spill file.
    pub spilled_entries: usize,
    /// Bytes written to spill files.
    pub spilled_bytes: u64,
    /// Most bytes the in-memory buffer held at once.
    pub peak_buffered_bytes: usize,
}

/// A spill file, removed when dropped (written, or on any failure).
struct Spill {
    path: PathBuf,
}

impl Drop for Spill {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

enum Held {
    Memory(Vec<u8>),
    Spilled(Spill),
}

/// Counts bytes read for progress reports.
struct Counting<'r> {
    inner: &'r mut dyn Read,
    progress: &'r mut dyn FnMut(u64),
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.progress)(n as u64);
        Ok(n)
    }
}

/// The archive an entry must be streamed from, when it is not seekable.
fn streamed_archive<'e>(sources: &Sources<'_>, e: &'e PlannedEntry) -> Option<&'e str> {
    match &e.source {
        EntrySource::Nested { archive, .. } => match sources.get(archive) {
            Some(a) if a.is_seekable() => None,
            // Not open: reported when the entry is written.
            Some(_) => Some(archive.as_str()),
            None => None,
        },
        _ => None,
    }
}

fn package_io(err: io::Error, context: &str) -> LayeringError {
    LayeringError::Package(PackageError::from_io(err, context))
}

struct Streamer<'a, 'p> {
    sources: &'a Sources<'p>,
    entries: &'a [PlannedEntry],
    writer: &'a mut LayerWriter,
    opts: &'a StreamOptions,
    progress: &'a mut dyn FnMut(u64),
    next: usize,
    end: usize,
    held: HashMap<usize, Held>,
    memory_used: usize,
    stats: StreamStats,
}

impl Streamer<'_, '_> {
    fn entry(&self, i: usize) -> Result<&PlannedEntry, LayeringError> {
        self.entries
            .get(i)
            .ok_or_else(|| LayeringError::MissingEntry {
                archive: String::new(),
                entry: format!("#{i}"),
            })
    }

    /// Writes entry `i`, from `reader` when given, else opened from its (seekable) source.
    fn write(&mut self, i: usize, reader: Option<&mut dyn Read>) -> Result<(), LayeringError> {
        let e = self.entry(i)?.clone();
        let sources = self.sources;
        let meta = Meta {
            mode: Some(e.mode),
            uid: e.uid,
            gid: e.gid,
        };
        match &e.kind {
            PlannedKind::Dir => return Ok(self.writer.add_dir(&e.dest, meta)?),
            PlannedKind::Symlink { target } => {
                return Ok(self.writer.add_symlink(&e.dest, target, meta)?)
            }
            PlannedKind::File => {}
        }
        let mut opened: Box<dyn Read + '_>;
        let inner: &mut dyn Read = match reader {
            Some(r) => r,
            None => {
                opened = match &e.source {
                    EntrySource::Package { path } => sources.package().open_entry(path)?,
                    EntrySource::Nested { archive, path } => sources
                        .get(archive)
                        .ok_or_else(|| LayeringError::ArchiveNotOpen(archive.clone()))?
                        .open_entry(path)?,
                    EntrySource::Host { path } => {
                        let f = File::open(path).map_err(|source| LayeringError::Host {
                            path: path.clone(),
                            source,
                        })?;
                        Box::new(BufReader::with_capacity(64 * 1024, f))
                    }
                    EntrySource::None => Box::new(io::empty()),
                };
                &mut opened
            }
        };
        let mut counting = Counting {
            inner,
            progress: &mut *self.progress,
        };
        self.writer.add_file(&e.dest, meta, e.size, &mut counting)?;
        Ok(())
    }

    /// Writes every entry from `next` on that is available: held, or seekable.
    fn drain(&mut self) -> Result<(), LayeringError> {
        while self.next < self.end {
            let i = self.next;
            if let Some(h) = self.held.remove(&i) {
                match h {
                    Held::Memory(bytes) => {
                        self.memory_used -= bytes.len();
                        let mut c = Cursor::new(bytes);
                        self.write(i, Some(&mut c))?;
                    }
                    Held::Spilled(spill) => {
                        let f = File::open(&spill.path).map_err(|source| LayeringError::Spill {
                            path: spill.path.clone(),
                            source,
                        })?;
                        let mut r = BufReader::with_capacity(64 * 1024, f);
                        self.write(i, Some(&mut r))?;
                        drop(spill);
                    }
                }
            } else if streamed_archive(self.sources, self.entry(i)?).is_some() {
                // Comes with the archive's pass.
                return Ok(());
            } else {
                self.write(i, None)?;
            }
            self.next += 1;
        }
        Ok(())
    }

    /// Keeps an early entry until its turn.
    fn hold(&mut self, i: usize, reader: &mut dyn Read) -> Result<(), LayeringError> {
        let e = self.entry(i)?;
        let size = e.size;
        let shown = e.dest.clone();
        let fits = usize::try_from(size)
            .ok()
            .and_then(|s| s.checked_add(self.memory_used))
            .is_some_and(|total| total <= self.opts.memory_cap);
        if fits {
            let mut bytes = Vec::with_capacity(size as usize);
            reader
                .take(size + 1)
                .read_to_end(&mut bytes)
                .map_err(|err| package_io(err, &shown))?;
            self.memory_used += bytes.len();
            self.stats.buffered_entries += 1;
            self.stats.peak_buffered_bytes = self.stats.peak_buffered_bytes.max(self.memory_used);
            self.held.insert(i, Held::Memory(bytes));
            return Ok(());
        }
        let spill = Spill {
            path: self.opts.spill_dir.join(format!(
                ".spill-{}-{:016x}",
                std::process::id(),
                rand::random::<u64>()
            )),
        };
        let spill_err = |source| LayeringError::Spill {
            path: spill.path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.opts.spill_dir).map_err(spill_err)?;
        let file = File::create(&spill.path).map_err(spill_err)?;
        let mut out = BufWriter::with_capacity(64 * 1024, file);
        let mut buf = vec![0u8; 64 * 1024];
        let mut written = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(package_io(err, &shown)),
            };
            out.write_all(buf.get(..n).unwrap_or_default())
                .map_err(spill_err)?;
            written += n as u64;
        }
        out.flush().map_err(spill_err)?;
        drop(out);
        self.stats.spilled_entries += 1;
        self.stats.spilled_bytes += written;
        self.held.insert(i, Held::Spilled(spill));
        Ok(())
    }
}

fn stop_signal() -> PackageError {
    PackageError::Io {
        context: "layer streaming".into(),
        source: io::Error::other("stopped early"),
    }
}

/// Writes `plan`'s entries into `writer` in layer order (see the module documentation).
/// Nested archives the plan reads must be open in `sources` (the planner opens them).
/// `progress` is called with the number of content bytes as they are written.
pub fn write_layer(
    sources: &Sources<'_>,
    plan: &LayerPlan,
    writer: &mut LayerWriter,
    opts: &StreamOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<StreamStats, LayeringError> {
    let entries = plan.entries.as_slice();
    let mut st = Streamer {
        sources,
        entries,
        writer,
        opts,
        progress,
        next: 0,
        end: 0,
        held: HashMap::new(),
        memory_used: 0,
        stats: StreamStats::default(),
    };
    let mut start = 0;
    while start < entries.len() {
        // A segment: a run of entries needing at most one non-seekable archive; seekable
        // entries in between are written as their turn comes.
        let mut archive: Option<&str> = None;
        let mut end = start;
        while let Some(e) = entries.get(end) {
            if let Some(a) = streamed_archive(sources, e) {
                match archive {
                    None => archive = Some(a),
                    Some(x) if x == a => {}
                    Some(_) => break,
                }
            }
            end += 1;
        }
        st.next = start;
        st.end = end;
        st.drain()?;
        if let Some(name) = archive {
            if st.next < end {
                pass(&mut st, name, end)?;
            }
        }
        start = end;
    }
    Ok(st.stats)
}

/// One sequential pass over `name` covering entries up to `end`.
fn pass(st: &mut Streamer<'_, '_>, name: &str, end: usize) -> Result<(), LayeringError> {
    let sources = st.sources;
    let entries = st.entries;
    let archive = sources
        .get(name)
        .ok_or_else(|| LayeringError::ArchiveNotOpen(name.to_string()))?;
    let want: HashMap<&str, usize> = (st.next..end)
        .filter_map(|i| match entries.get(i).map(|e| &e.source) {
            Some(EntrySource::Nested { archive, path }) if archive == name => {
                Some((path.as_str(), i))
            }
            _ => None,
        })
        .collect();
    st.stats.passes += 1;
    let mut failure: Option<LayeringError> = None;
    let mut finished = false;
    let result = archive.for_each_entry(|entry, reader| {
        let Some(&i) = want.get(entry.path.as_str()) else {
            return Ok(());
        };
        let step = if i == st.next {
            st.write(i, Some(reader)).and_then(|()| {
                st.next += 1;
                st.drain()
            })
        } else if i > st.next {
            st.hold(i, reader)
        } else {
            Ok(())
        };
        match step {
            Ok(()) if st.next >= st.end => {
                // Everything this layer needs from the archive is written: skip the rest.
                finished = true;
                Err(stop_signal())
            }
            Ok(()) => Ok(()),
            Err(e) => {
                failure = Some(e);
                Err(stop_signal())
            }
        }
    });
    if let Some(f) = failure {
        return Err(f);
    }
    if !finished {
        result?;
    }
    st.drain()?;
    if st.next < end {
        let missing = st
            .entries
            .get(st.next)
            .map(|e| match &e.source {
                EntrySource::Nested { path, .. } => path.clone(),
                _ => e.dest.clone(),
            })
            .unwrap_or_default();
        return Err(LayeringError::MissingEntry {
            archive: name.to_string(),
            entry: missing,
        });
    }
    Ok(())
}
