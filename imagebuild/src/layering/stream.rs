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
//!
//! [`write_layers`] writes several layers at once so that such an archive is inflated once for
//! all of them: a pass feeds every layer waiting for entries of that archive, each in its own
//! order into its own writer, with one reorder-buffer budget shared by all of them.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Cursor, Read, Write};
use std::path::PathBuf;

use serde::Serialize;

use super::{EntrySource, LayerPlan, LayeringError, PlannedEntry, PlannedKind, Sources};
use crate::layer::{LayerError, LayerWriter, Meta};
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

/// Where a lane's writer lives: borrowed from [`write_layer`]'s caller, or owned until
/// [`write_layers`] hands it back finished.
enum Slot<'w> {
    Borrowed(&'w mut LayerWriter),
    Owned(Box<LayerWriter>),
    Taken,
}

/// A run of a layer's entries needing at most one non-seekable archive; seekable entries in
/// between are written as their turn comes.
#[derive(Clone, Copy)]
struct Segment<'a> {
    end: usize,
    archive: Option<&'a str>,
}

/// One layer being written: its entries, writer, reorder buffer and position.
struct Lane<'a, 'w> {
    entries: &'a [PlannedEntry],
    writer: Slot<'w>,
    segments: Vec<Segment<'a>>,
    seg: usize,
    next: usize,
    end: usize,
    held: HashMap<usize, Held>,
    stats: StreamStats,
    finished: bool,
}

/// Every lane of one call, with what they share: the sources, the options and one memory
/// budget for all reorder buffers, so writing several layers in one pass holds no more in
/// memory than writing one.
struct Streamer<'a, 'p, 'w> {
    sources: &'a Sources<'p>,
    opts: &'a StreamOptions,
    progress: &'a mut dyn FnMut(usize, u64),
    lanes: Vec<Lane<'a, 'w>>,
    memory_used: usize,
}

fn segments<'a>(sources: &Sources<'_>, entries: &'a [PlannedEntry]) -> Vec<Segment<'a>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < entries.len() {
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
        out.push(Segment { end, archive });
        start = end;
    }
    out
}

impl<'a, 'p, 'w> Streamer<'a, 'p, 'w> {
    fn new(
        sources: &'a Sources<'p>,
        opts: &'a StreamOptions,
        progress: &'a mut dyn FnMut(usize, u64),
        layers: Vec<(&'a LayerPlan, Slot<'w>)>,
    ) -> Self {
        let lanes = layers
            .into_iter()
            .map(|(plan, writer)| Lane {
                entries: plan.entries.as_slice(),
                writer,
                segments: segments(sources, &plan.entries),
                seg: 0,
                next: 0,
                end: 0,
                held: HashMap::new(),
                stats: StreamStats::default(),
                finished: false,
            })
            .collect();
        Streamer {
            sources,
            opts,
            progress,
            lanes,
            memory_used: 0,
        }
    }

    fn lane(&mut self, l: usize) -> Result<&mut Lane<'a, 'w>, LayeringError> {
        self.lanes
            .get_mut(l)
            .ok_or_else(|| LayeringError::Layer(LayerError::Pipeline(format!("no layer #{l}"))))
    }

    fn entry(&self, l: usize, i: usize) -> Result<&'a PlannedEntry, LayeringError> {
        self.lanes
            .get(l)
            .and_then(|lane| lane.entries.get(i))
            .ok_or_else(|| LayeringError::MissingEntry {
                archive: String::new(),
                entry: format!("#{i}"),
            })
    }

    /// Writes entry `i` of lane `l`, from `reader` when given, else opened from its (seekable)
    /// source.
    fn write(
        &mut self,
        l: usize,
        i: usize,
        reader: Option<&mut dyn Read>,
    ) -> Result<(), LayeringError> {
        let e = self.entry(l, i)?;
        let sources = self.sources;
        let meta = Meta {
            mode: Some(e.mode),
            uid: e.uid,
            gid: e.gid,
        };
        let Some(lane) = self.lanes.get_mut(l) else {
            return Err(LayeringError::Layer(LayerError::Pipeline(format!(
                "no layer #{l}"
            ))));
        };
        let writer: &mut LayerWriter = match &mut lane.writer {
            Slot::Borrowed(w) => w,
            Slot::Owned(w) => w,
            Slot::Taken => {
                return Err(LayeringError::Layer(LayerError::Pipeline(
                    "layer already finished".into(),
                )))
            }
        };
        match &e.kind {
            PlannedKind::Dir => return Ok(writer.add_dir(&e.dest, meta)?),
            PlannedKind::Symlink { target } => {
                return Ok(writer.add_symlink(&e.dest, target, meta)?)
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
        let progress = &mut *self.progress;
        let mut count = |n: u64| progress(l, n);
        let mut counting = Counting {
            inner,
            progress: &mut count,
        };
        writer.add_file(&e.dest, meta, e.size, &mut counting)?;
        Ok(())
    }

    /// Writes every entry of lane `l` from its `next` on that is available: held, or seekable.
    fn drain(&mut self, l: usize) -> Result<(), LayeringError> {
        loop {
            let lane = self.lane(l)?;
            if lane.next >= lane.end {
                return Ok(());
            }
            let i = lane.next;
            if let Some(h) = lane.held.remove(&i) {
                match h {
                    Held::Memory(bytes) => {
                        self.memory_used -= bytes.len();
                        let mut c = Cursor::new(bytes);
                        self.write(l, i, Some(&mut c))?;
                    }
                    Held::Spilled(spill) => {
                        let f = File::open(&spill.path).map_err(|source| LayeringError::Spill {
                            path: spill.path.clone(),
                            source,
                        })?;
                        let mut r = BufReader::with_capacity(64 * 1024, f);
                        self.write(l, i, Some(&mut r))?;
                        drop(spill);
                    }
                }
            } else if streamed_archive(self.sources, self.entry(l, i)?).is_some() {
                // Comes with the archive's pass.
                return Ok(());
            } else {
                self.write(l, i, None)?;
            }
            self.lane(l)?.next += 1;
        }
    }

    /// Keeps an early entry of lane `l` until its turn.
    fn hold(&mut self, l: usize, i: usize, reader: &mut dyn Read) -> Result<(), LayeringError> {
        let e = self.entry(l, i)?;
        let size = e.size;
        let shown = e.dest.as_str();
        let fits = usize::try_from(size)
            .ok()
            .and_then(|s| s.checked_add(self.memory_used))
            .is_some_and(|total| total <= self.opts.memory_cap);
        if fits {
            let mut bytes = Vec::with_capacity(size as usize);
            reader
                .take(size + 1)
                .read_to_end(&mut bytes)
                .map_err(|err| package_io(err, shown))?;
            self.memory_used += bytes.len();
            let used = self.memory_used;
            let lane = self.lane(l)?;
            lane.stats.buffered_entries += 1;
            lane.stats.peak_buffered_bytes = lane.stats.peak_buffered_bytes.max(used);
            lane.held.insert(i, Held::Memory(bytes));
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
                Err(err) => return Err(package_io(err, shown)),
            };
            out.write_all(buf.get(..n).unwrap_or_default())
                .map_err(spill_err)?;
            written += n as u64;
        }
        out.flush().map_err(spill_err)?;
        drop(out);
        let lane = self.lane(l)?;
        lane.stats.spilled_entries += 1;
        lane.stats.spilled_bytes += written;
        lane.held.insert(i, Held::Spilled(spill));
        Ok(())
    }

    /// Moves lane `l` forward through its segments as far as it can go without a pass; returns
    /// the archive it now waits for, or `None` once every entry is written.
    fn advance(&mut self, l: usize) -> Result<Option<&'a str>, LayeringError> {
        loop {
            let lane = self.lane(l)?;
            let Some(seg) = lane.segments.get(lane.seg).copied() else {
                return Ok(None);
            };
            lane.end = seg.end;
            self.drain(l)?;
            let lane = self.lane(l)?;
            if lane.next < seg.end {
                if let Some(a) = seg.archive {
                    return Ok(Some(a));
                }
            }
            lane.seg += 1;
        }
    }

    /// One sequential pass over archive `name` for the lanes in `group`, each waiting for
    /// its current segment's entries from it.
    fn pass(&mut self, name: &str, group: &[usize]) -> Result<(), LayeringError> {
        let archive = self
            .sources
            .get(name)
            .ok_or_else(|| LayeringError::ArchiveNotOpen(name.to_string()))?;
        let mut want: HashMap<&'a str, (usize, usize)> = HashMap::new();
        for &l in group {
            let lane = self.lane(l)?;
            let entries = lane.entries;
            for i in lane.next..lane.end {
                if let Some(EntrySource::Nested { archive, path }) =
                    entries.get(i).map(|e| &e.source)
                {
                    if archive == name {
                        want.insert(path.as_str(), (l, i));
                    }
                }
            }
            lane.stats.passes += 1;
        }
        let mut waiting = group.len();
        let mut failure: Option<LayeringError> = None;
        let mut finished = false;
        let result = archive.for_each_entry(|entry, reader| {
            let Some(&(l, i)) = want.get(entry.path.as_str()) else {
                return Ok(());
            };
            let step = self
                .lane(l)
                .map(|lane| (lane.next, lane.end))
                .and_then(|(next, end)| {
                    let step = if i == next {
                        self.write(l, i, Some(reader)).and_then(|()| {
                            self.lane(l)?.next += 1;
                            self.drain(l)
                        })
                    } else if i > next {
                        self.hold(l, i, reader)
                    } else {
                        Ok(())
                    };
                    let lane = self.lane(l)?;
                    if next < end && lane.next >= lane.end {
                        waiting -= 1;
                    }
                    step
                });
            match step {
                Ok(()) if waiting == 0 => {
                    // Everything these layers need from the archive is written: skip the rest.
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
        for &l in group {
            self.drain(l)?;
            let lane = self.lane(l)?;
            if lane.next < lane.end {
                let missing = lane
                    .entries
                    .get(lane.next)
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
        }
        Ok(())
    }

    /// Writes every lane to its end, calling `done` for each as soon as its last entry is
    /// written. Lanes waiting for the same archive share one pass over it, unless they want
    /// the same entry of it (its content can be read only once per pass).
    fn run<E: From<LayeringError>>(
        &mut self,
        done: &mut dyn FnMut(usize, Slot<'w>, StreamStats) -> Result<(), E>,
    ) -> Result<(), E> {
        loop {
            let mut waiting: Vec<(usize, &'a str)> = Vec::new();
            for l in 0..self.lanes.len() {
                if self.lane(l)?.finished {
                    continue;
                }
                match self.advance(l)? {
                    Some(archive) => waiting.push((l, archive)),
                    None => {
                        let lane = self.lane(l)?;
                        lane.finished = true;
                        let writer = std::mem::replace(&mut lane.writer, Slot::Taken);
                        let stats = std::mem::take(&mut lane.stats);
                        done(l, writer, stats)?;
                    }
                }
            }
            let Some(&(_, name)) = waiting.first() else {
                return Ok(());
            };
            let group = self.disjoint_group(name, &waiting)?;
            self.pass(name, &group)?;
        }
    }

    /// The lanes waiting for `name` whose wanted entries do not overlap (the first always
    /// qualifies, so every round makes progress).
    fn disjoint_group(
        &mut self,
        name: &str,
        waiting: &[(usize, &str)],
    ) -> Result<Vec<usize>, LayeringError> {
        let mut taken: std::collections::HashSet<&'a str> = std::collections::HashSet::new();
        let mut group = Vec::new();
        for &(l, archive) in waiting {
            if archive != name {
                continue;
            }
            let lane = self.lane(l)?;
            let paths: Vec<&'a str> = lane
                .entries
                .get(lane.next..lane.end)
                .unwrap_or_default()
                .iter()
                .filter_map(|e| match &e.source {
                    EntrySource::Nested { archive, path } if archive == name => Some(path.as_str()),
                    _ => None,
                })
                .collect();
            if !group.is_empty() && paths.iter().any(|p| taken.contains(p)) {
                continue;
            }
            taken.extend(paths);
            group.push(l);
        }
        Ok(group)
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
    let mut progress = |_: usize, n: u64| progress(n);
    let mut st = Streamer::new(
        sources,
        opts,
        &mut progress,
        vec![(plan, Slot::Borrowed(writer))],
    );
    let mut stats = StreamStats::default();
    st.run::<LayeringError>(&mut |_, _, s| {
        stats = s;
        Ok(())
    })?;
    Ok(stats)
}

/// A layer for [`write_layers`]: its plan and the writer its entries go to.
pub struct LayerJob<'a> {
    /// The layer's plan.
    pub plan: &'a LayerPlan,
    /// Where its entries go.
    pub writer: LayerWriter,
}

/// Writes several layers at once, so that an archive deflated in the package is inflated
/// once for all of them rather than once per layer: each sequential pass over such an archive
/// feeds every layer waiting for entries of it, each layer through its own writer (compressing
/// on its own threads) in its own order, their reorder buffers sharing one
/// [`StreamOptions::memory_cap`]. `done(i, writer, stats)` receives job `i`'s writer as soon
/// as its last entry is written (to finish it while the others go on); its error stops
/// everything. `progress(i, n)` reports content bytes written to job `i`. The bytes of each
/// layer are exactly those [`write_layer`] would write.
pub fn write_layers<E: From<LayeringError>>(
    sources: &Sources<'_>,
    jobs: Vec<LayerJob<'_>>,
    opts: &StreamOptions,
    progress: &mut dyn FnMut(usize, u64),
    done: &mut dyn FnMut(usize, LayerWriter, StreamStats) -> Result<(), E>,
) -> Result<(), E> {
    let lanes = jobs
        .into_iter()
        .map(|j| (j.plan, Slot::Owned(Box::new(j.writer))))
        .collect();
    let mut st = Streamer::new(sources, opts, progress, lanes);
    st.run(&mut |i, slot, stats| match slot {
        Slot::Owned(w) => done(i, *w, stats),
        Slot::Borrowed(_) | Slot::Taken => Err(E::from(LayeringError::Layer(
            LayerError::Pipeline("layer writer missing".into()),
        ))),
    })
}
