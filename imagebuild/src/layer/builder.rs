//! Entries in any order, sorted before streaming.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::{normalize_path, path_cmp, LayerError, LayerOptions, LayerOutput, LayerWriter, Meta};

/// Opens an entry's content when its turn comes.
type Opener<'a> = Box<dyn FnOnce() -> io::Result<Box<dyn Read + 'a>> + 'a>;

/// Where a file's bytes come from. Content is opened only when the entry is
/// written, in sorted order, so thousands of entries never hold thousands
/// of open files.
pub enum Content<'a> {
    /// Bytes in memory.
    Bytes(Vec<u8>),
    /// A file on the host, opened when written.
    Path(PathBuf),
    /// A reader that is already open.
    Reader(Box<dyn Read + 'a>),
    /// A function that opens the reader when written (e.g. a zip entry by
    /// index).
    Lazy(Opener<'a>),
}

impl<'a> Content<'a> {
    /// Content opened lazily by `f`.
    pub fn lazy<R: Read + 'a>(f: impl FnOnce() -> io::Result<R> + 'a) -> Content<'a> {
        Content::Lazy(Box::new(move || {
            f().map(|r| Box::new(r) as Box<dyn Read + 'a>)
        }))
    }

    fn open(self) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Content::Bytes(b) => Box::new(io::Cursor::new(b)),
            Content::Path(p) => Box::new(std::fs::File::open(p)?),
            Content::Reader(r) => r,
            Content::Lazy(f) => f()?,
        })
    }
}

enum Item<'a> {
    Dir,
    File { size: u64, content: Content<'a> },
    Symlink(String),
    HardLink(String),
}

struct Pending<'a> {
    path: String,
    meta: Meta,
    item: Item<'a>,
}

/// Collects entries in any order; [`LayerBuilder::finish`] sorts them by
/// [`path_cmp`](super::path_cmp), rejects duplicates, and streams them.
/// Memory holds the entry list (paths and any [`Content::Bytes`]), never
/// streamed file contents.
pub struct LayerBuilder<'a> {
    opts: LayerOptions,
    entries: Vec<Pending<'a>>,
}

impl<'a> LayerBuilder<'a> {
    /// An empty layer.
    pub fn new(opts: LayerOptions) -> LayerBuilder<'a> {
        LayerBuilder {
            opts,
            entries: Vec::new(),
        }
    }

    /// Adds a directory (default mode 0755).
    pub fn add_dir(&mut self, path: &str, meta: Meta) -> Result<&mut Self, LayerError> {
        self.push(path, meta, Item::Dir)
    }

    /// Adds a regular file of `size` bytes (default mode 0644).
    pub fn add_file(
        &mut self,
        path: &str,
        meta: Meta,
        size: u64,
        content: Content<'a>,
    ) -> Result<&mut Self, LayerError> {
        self.push(path, meta, Item::File { size, content })
    }

    /// Adds a file from a reader that is already open.
    pub fn add_file_reader(
        &mut self,
        path: &str,
        meta: Meta,
        size: u64,
        reader: impl Read + 'a,
    ) -> Result<&mut Self, LayerError> {
        self.add_file(path, meta, size, Content::Reader(Box::new(reader)))
    }

    /// Adds a file whose bytes are in memory.
    pub fn add_file_bytes(
        &mut self,
        path: &str,
        meta: Meta,
        bytes: Vec<u8>,
    ) -> Result<&mut Self, LayerError> {
        let size = bytes.len() as u64;
        self.add_file(path, meta, size, Content::Bytes(bytes))
    }

    /// Adds a symlink (default mode 0777).
    pub fn add_symlink(
        &mut self,
        path: &str,
        target: &str,
        meta: Meta,
    ) -> Result<&mut Self, LayerError> {
        self.push(path, meta, Item::Symlink(target.to_owned()))
    }

    /// Adds a hardlink to another regular file of this layer, which must sort
    /// before it.
    pub fn add_hardlink(
        &mut self,
        path: &str,
        target: &str,
        meta: Meta,
    ) -> Result<&mut Self, LayerError> {
        self.push(path, meta, Item::HardLink(target.to_owned()))
    }

    fn push(&mut self, path: &str, meta: Meta, item: Item<'a>) -> Result<&mut Self, LayerError> {
        let path = normalize_path(path)?;
        self.entries.push(Pending { path, meta, item });
        Ok(self)
    }

    /// Number of entries added so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sorts, streams, compresses and writes the blob into `dir`.
    pub fn finish(mut self, dir: &Path) -> Result<LayerOutput, LayerError> {
        // Stable sort: the duplicate check reports the second one added.
        self.entries.sort_by(|a, b| path_cmp(&a.path, &b.path));
        if let Some(w) = self.entries.windows(2).find(|w| w[0].path == w[1].path) {
            return Err(LayerError::Duplicate(w[0].path.clone()));
        }
        let mut writer = LayerWriter::new(dir, self.opts.clone())?;
        for e in self.entries {
            match e.item {
                Item::Dir => writer.add_dir(&e.path, e.meta)?,
                Item::File { size, content } => {
                    let mut r = content
                        .open()
                        .map_err(|err| LayerError::io(Path::new(&e.path), err))?;
                    writer.add_file(&e.path, e.meta, size, &mut r)?
                }
                Item::Symlink(t) => writer.add_symlink(&e.path, &t, e.meta)?,
                Item::HardLink(t) => writer.add_hardlink(&e.path, &t, e.meta)?,
            }
        }
        writer.finish()
    }
}
