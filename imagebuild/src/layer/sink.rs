//! The one streaming pass behind a layer: tar bytes are hashed (diff_id) on
//! the caller's thread, cut into fixed chunks and handed through bounded
//! channels to compressor threads; a writer thread puts the compressed chunks
//! back in order, hashes them (blob digest) and writes them to a temporary
//! file.
//!
//! Gzip is compressed pigz-style: every [`CHUNK_SIZE`] chunk is an
//! independent raw-deflate run ending in a sync flush (the last one in a final
//! block), all inside one gzip member whose CRC is combined from the chunks'
//! CRCs. The bytes depend only on the input, the level and the chunk size —
//! never on the number of threads or their timing.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::{self, JoinHandle};

use flate2::{Compress, FlushCompress, Status};
use sha2::{Digest as _, Sha256};

use super::{Compression, LayerError};
use crate::digest::Digest;

/// Uncompressed bytes per chunk. Part of the output's identity for gzip
/// (changing it changes the compressed bytes, hence the cache id).
pub const CHUNK_SIZE: usize = 1 << 20;

/// Chunks allowed in flight per channel; with the chunk being compressed and
/// the one being written this bounds memory to a few MiB per thread.
const QUEUE_DEPTH: usize = 1;

/// What the sink produced.
pub(crate) struct SinkOutput {
    pub diff_id: Digest,
    pub uncompressed_size: u64,
    pub digest: Digest,
    pub size: u64,
    pub temp_path: PathBuf,
}

struct Chunk {
    data: Vec<u8>,
    last: bool,
}

struct Deflated {
    data: Vec<u8>,
    crc: crc32fast::Hasher,
    last: bool,
}

/// A file that hashes what is written to it.
struct HashedFile {
    file: BufWriter<File>,
    sha: Sha256,
    len: u64,
}

impl HashedFile {
    fn create(path: &Path) -> io::Result<HashedFile> {
        Ok(HashedFile {
            file: BufWriter::with_capacity(256 * 1024, File::create(path)?),
            sha: Sha256::new(),
            len: 0,
        })
    }

    fn finish(mut self) -> io::Result<(Digest, u64)> {
        self.file.flush()?;
        Ok((Digest::from_sha256(self.sha.finalize().into()), self.len))
    }
}

impl Write for HashedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.sha.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// A raw-deflate compressor for `level`, reused (reset) across chunks.
fn compressor(level: u32) -> Compress {
    Compress::new(flate2::Compression::new(level), false)
}

/// Bytes of each probe window of [`looks_incompressible`].
const PROBE_WINDOW: usize = 4096;
/// Probe windows per chunk, spread evenly over it.
const PROBE_WINDOWS: usize = 4;

/// Whether every probe window of `data` fails to shrink by 3 %: jars and
/// other already-compressed content. Deflating such a chunk only to throw
/// the result away for stored blocks was most of a cold build's CPU. A chunk
/// with any compressible window (class files, text) is compressed as usual.
/// Depends only on the bytes, so the output stays deterministic.
fn looks_incompressible(c: &mut Compress, data: &[u8]) -> io::Result<bool> {
    if data.len() < PROBE_WINDOW * PROBE_WINDOWS * 4 {
        return Ok(false);
    }
    let stride = data.len() / PROBE_WINDOWS;
    let mut out = Vec::with_capacity(PROBE_WINDOW * 2);
    for i in 0..PROBE_WINDOWS {
        let start = i * stride;
        let window = &data[start..start + PROBE_WINDOW];
        c.reset();
        out.clear();
        c.compress_vec(window, &mut out, FlushCompress::Finish)
            .map_err(io::Error::other)?;
        if out.len() * 100 < window.len() * 97 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Compresses one chunk into an independent raw-deflate run.
fn deflate_chunk(c: &mut Compress, data: &[u8], last: bool) -> io::Result<Deflated> {
    let mut crc = crc32fast::Hasher::new();
    crc.update(data);
    if looks_incompressible(c, data)? {
        let mut out = Vec::with_capacity(stored_len(data.len()));
        write_stored(data, last, &mut out);
        return Ok(Deflated {
            data: out,
            crc,
            last,
        });
    }
    // Independent runs: nothing carries over from the previous chunk.
    c.reset();
    let base = c.total_in();
    let mut out = Vec::with_capacity(data.len() + data.len() / 16 + 1024);
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    loop {
        let consumed = (c.total_in() - base) as usize;
        let status = c
            .compress_vec(&data[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        let done_input = (c.total_in() - base) as usize == data.len();
        let room_left = out.len() < out.capacity();
        match status {
            Status::StreamEnd => break,
            // A sync flush is complete once all input is taken and the
            // output did not fill up (zlib's own rule).
            Status::Ok | Status::BufError if !last && done_input && room_left => break,
            _ => out.reserve(out.capacity().max(64 * 1024)),
        }
    }
    // zlib-rs's fastest level expands incompressible input (~5 % on random
    // bytes); stored blocks cap a chunk at +5 bytes per 64 KiB. The choice
    // depends only on the chunk, so the output stays deterministic.
    if out.len() > stored_len(data.len()) {
        out.clear();
        write_stored(data, last, &mut out);
    }
    Ok(Deflated {
        data: out,
        crc,
        last,
    })
}

/// Largest payload of one stored deflate block.
const STORED_MAX: usize = 65_535;

fn stored_len(n: usize) -> usize {
    n + 5 * n.div_ceil(STORED_MAX).max(1)
}

/// `data` as stored (uncompressed) deflate blocks, starting byte-aligned;
/// the last block is marked final when `last`.
fn write_stored(data: &[u8], last: bool, out: &mut Vec<u8>) {
    let mut blocks = data.chunks(STORED_MAX).peekable();
    if blocks.peek().is_none() {
        // An empty chunk: one empty block keeps the framing uniform.
        out.extend_from_slice(&[u8::from(last), 0, 0, 0xff, 0xff]);
        return;
    }
    while let Some(b) = blocks.next() {
        let fin = last && blocks.peek().is_none();
        let len = b.len() as u16;
        out.push(u8::from(fin));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(b);
    }
}

/// The gzip member around the deflate runs: fixed header (no name, mtime 0,
/// OS "unknown") and a trailer with the combined CRC and length.
struct GzipFramer {
    crc: crc32fast::Hasher,
    len: u64,
}

impl GzipFramer {
    fn header(level: u32) -> [u8; 10] {
        let xfl = match level {
            0 | 1 => 4,
            9 => 2,
            _ => 0,
        };
        [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]
    }

    fn add(&mut self, d: &Deflated, raw_len: usize, out: &mut HashedFile) -> io::Result<()> {
        out.write_all(&d.data)?;
        self.crc.combine(&d.crc);
        self.len += raw_len as u64;
        if d.last {
            let crc = std::mem::take(&mut self.crc).finalize();
            out.write_all(&crc.to_le_bytes())?;
            out.write_all(&(self.len as u32).to_le_bytes())?;
        }
        Ok(())
    }
}

/// The compressor state when everything runs on the caller's thread.
enum Inline {
    Gzip {
        deflate: Box<Compress>,
        framer: GzipFramer,
        file: HashedFile,
    },
    Zstd(zstd::stream::write::Encoder<'static, HashedFile>),
    Plain(HashedFile),
}

impl Inline {
    fn new(compression: Compression, path: &Path) -> io::Result<Inline> {
        let mut file = HashedFile::create(path)?;
        Ok(match compression {
            Compression::Gzip { level } => {
                file.write_all(&GzipFramer::header(level))?;
                Inline::Gzip {
                    deflate: Box::new(compressor(level)),
                    framer: GzipFramer {
                        crc: crc32fast::Hasher::new(),
                        len: 0,
                    },
                    file,
                }
            }
            Compression::Zstd { level } => Inline::Zstd(zstd_encoder(file, level)?),
            Compression::None => Inline::Plain(file),
        })
    }

    fn chunk(&mut self, data: &[u8], last: bool) -> io::Result<()> {
        match self {
            Inline::Gzip {
                deflate,
                framer,
                file,
            } => {
                let d = deflate_chunk(deflate, data, last)?;
                framer.add(&d, data.len(), file)
            }
            Inline::Zstd(enc) => enc.write_all(data),
            Inline::Plain(file) => file.write_all(data),
        }
    }

    fn finish(self) -> io::Result<(Digest, u64)> {
        match self {
            Inline::Gzip { file, .. } | Inline::Plain(file) => file.finish(),
            Inline::Zstd(enc) => enc.finish()?.finish(),
        }
    }
}

fn zstd_encoder(
    file: HashedFile,
    level: i32,
) -> io::Result<zstd::stream::write::Encoder<'static, HashedFile>> {
    let mut enc = zstd::stream::write::Encoder::new(file, level)?;
    // Pin every parameter that shows in the frame; never multithreaded, as
    // libzstd's worker mode emits different bytes.
    enc.include_checksum(true)?;
    enc.include_contentsize(false)?;
    enc.include_dictid(false)?;
    Ok(enc)
}

enum Mode {
    Inline(Box<Inline>),
    Threads {
        txs: Vec<SyncSender<Chunk>>,
        workers: Vec<JoinHandle<()>>,
        writer: JoinHandle<io::Result<(Digest, u64)>>,
        next: usize,
    },
    Done,
}

/// The write side of the pass. Call [`BlobSink::finish`], or drop it to
/// abandon the layer (the temporary file is removed).
pub(crate) struct BlobSink {
    buf: Vec<u8>,
    diff: Sha256,
    uncompressed: u64,
    mode: Mode,
    temp_path: PathBuf,
}

impl BlobSink {
    /// Starts a blob in `dir` with `threads` helper threads (0: all inline).
    pub(crate) fn new(
        dir: &Path,
        compression: Compression,
        threads: usize,
    ) -> Result<BlobSink, LayerError> {
        fs::create_dir_all(dir).map_err(|e| LayerError::io(dir, e))?;
        let temp_path = dir.join(format!(
            ".tmp-layer-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        let mode = if threads == 0 {
            Mode::Inline(Box::new(
                Inline::new(compression, &temp_path).map_err(|e| LayerError::io(&temp_path, e))?,
            ))
        } else {
            spawn(compression, threads, &temp_path).map_err(|e| LayerError::io(&temp_path, e))?
        };
        Ok(BlobSink {
            buf: Vec::with_capacity(CHUNK_SIZE),
            diff: Sha256::new(),
            uncompressed: 0,
            mode,
            temp_path,
        })
    }

    /// Appends tar bytes.
    pub(crate) fn write(&mut self, mut data: &[u8]) -> Result<(), LayerError> {
        self.diff.update(data);
        self.uncompressed += data.len() as u64;
        while !data.is_empty() {
            let take = (CHUNK_SIZE - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == CHUNK_SIZE {
                let full = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK_SIZE));
                self.send(full, false)?;
            }
        }
        Ok(())
    }

    fn send(&mut self, data: Vec<u8>, last: bool) -> Result<(), LayerError> {
        match &mut self.mode {
            Mode::Inline(inline) => inline
                .chunk(&data, last)
                .map_err(|e| LayerError::io(&self.temp_path, e)),
            Mode::Threads { txs, next, .. } => {
                let i = *next % txs.len();
                *next += 1;
                match txs[i].send(Chunk { data, last }) {
                    Ok(()) => Ok(()),
                    // The receiving side stopped: its own error says why.
                    Err(_) => Err(self.join_error()),
                }
            }
            Mode::Done => Err(LayerError::Pipeline("layer already finished".into())),
        }
    }

    /// Joins the threads after a failure and returns the most telling error.
    fn join_error(&mut self) -> LayerError {
        match std::mem::replace(&mut self.mode, Mode::Done) {
            Mode::Threads {
                txs,
                workers,
                writer,
                ..
            } => {
                drop(txs);
                for w in workers {
                    let _ = w.join();
                }
                match writer.join() {
                    Ok(Err(e)) => LayerError::io(&self.temp_path, e),
                    Ok(Ok(_)) => LayerError::Pipeline("writer ended early".into()),
                    Err(_) => LayerError::Pipeline("compressor thread panicked".into()),
                }
            }
            _ => LayerError::Pipeline("compressor stopped".into()),
        }
    }

    /// Flushes the last chunk and waits for the compressed blob.
    pub(crate) fn finish(mut self) -> Result<SinkOutput, LayerError> {
        let last = std::mem::take(&mut self.buf);
        self.send(last, true)?;
        let (digest, size) = match std::mem::replace(&mut self.mode, Mode::Done) {
            Mode::Inline(inline) => inline
                .finish()
                .map_err(|e| LayerError::io(&self.temp_path, e))?,
            Mode::Threads {
                txs,
                workers,
                writer,
                ..
            } => {
                drop(txs);
                let mut panicked = false;
                for w in workers {
                    panicked |= w.join().is_err();
                }
                let res = writer.join();
                if panicked {
                    return Err(LayerError::Pipeline("compressor thread panicked".into()));
                }
                match res {
                    Ok(r) => r.map_err(|e| LayerError::io(&self.temp_path, e))?,
                    Err(_) => return Err(LayerError::Pipeline("writer thread panicked".into())),
                }
            }
            Mode::Done => return Err(LayerError::Pipeline("layer already finished".into())),
        };
        let diff = std::mem::take(&mut self.diff);
        Ok(SinkOutput {
            diff_id: Digest::from_sha256(diff.finalize().into()),
            uncompressed_size: self.uncompressed,
            digest,
            size,
            // Ownership of the file passes to the caller.
            temp_path: std::mem::take(&mut self.temp_path),
        })
    }
}

impl Drop for BlobSink {
    fn drop(&mut self) {
        if let Mode::Threads {
            txs,
            workers,
            writer,
            ..
        } = std::mem::replace(&mut self.mode, Mode::Done)
        {
            drop(txs);
            for w in workers {
                let _ = w.join();
            }
            let _ = writer.join();
        }
        if !self.temp_path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.temp_path);
        }
    }
}

fn spawn(compression: Compression, threads: usize, path: &Path) -> io::Result<Mode> {
    let mut file = HashedFile::create(path)?;
    match compression {
        Compression::Gzip { level } => {
            file.write_all(&GzipFramer::header(level))?;
            let mut txs = Vec::new();
            let mut rxs: Vec<Receiver<(Deflated, usize)>> = Vec::new();
            let mut workers = Vec::new();
            for _ in 0..threads {
                let (tx, rx) = sync_channel::<Chunk>(QUEUE_DEPTH);
                let (otx, orx) = sync_channel::<(Deflated, usize)>(QUEUE_DEPTH);
                txs.push(tx);
                rxs.push(orx);
                workers.push(thread::Builder::new().name("layer-gzip".into()).spawn(
                    move || {
                        let mut c = compressor(level);
                        for chunk in rx {
                            let Ok(d) = deflate_chunk(&mut c, &chunk.data, chunk.last) else {
                                return;
                            };
                            if otx.send((d, chunk.data.len())).is_err() {
                                return;
                            }
                        }
                    },
                )?);
            }
            let writer = thread::Builder::new()
                .name("layer-write".into())
                .spawn(move || {
                    let mut framer = GzipFramer {
                        crc: crc32fast::Hasher::new(),
                        len: 0,
                    };
                    // Chunks were dealt round-robin, so collecting them
                    // round-robin restores their order.
                    for i in 0.. {
                        let Ok((d, raw_len)) = rxs[i % rxs.len()].recv() else {
                            return Err(io::Error::other("compressor stopped before the end"));
                        };
                        framer.add(&d, raw_len, &mut file)?;
                        if d.last {
                            break;
                        }
                    }
                    file.finish()
                })?;
            Ok(Mode::Threads {
                txs,
                workers,
                writer,
                next: 0,
            })
        }
        Compression::Zstd { .. } | Compression::None => {
            // One stage: compressing and writing on a second thread is plenty
            // (zstd is far faster than the tar side's input).
            let (tx, rx) = sync_channel::<Chunk>(QUEUE_DEPTH);
            let mut stage = match compression {
                Compression::Zstd { level } => Inline::Zstd(zstd_encoder(file, level)?),
                _ => Inline::Plain(file),
            };
            let writer = thread::Builder::new()
                .name("layer-write".into())
                .spawn(move || {
                    for chunk in rx {
                        stage.chunk(&chunk.data, chunk.last)?;
                        if chunk.last {
                            return stage.finish();
                        }
                    }
                    Err(io::Error::other("layer abandoned"))
                })?;
            Ok(Mode::Threads {
                txs: vec![tx],
                workers: Vec::new(),
                writer,
                next: 0,
            })
        }
    }
}
