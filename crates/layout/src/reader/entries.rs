//! Reading single entries of a bundle file through its trailing index, decoding only the
//! frames that hold them.
//!
//! The index is an accelerator, not a root of trust: it is not signed. A wrong index makes
//! these functions return wrong bytes or an error, never something that passes verification,
//! because callers check every blob against the digests of the signed manifest.

use std::io::{self, Read, Seek};

use crate::error::{Error, IndexDefect};
use crate::reader::frames::{DecodeFailure, FrameDecoder};
use crate::reader::index::{invalid, read_at, EntryInfo, FrameIndex, FrameInfo};

/// Reads the whole data of the entry at `path`, decoding only the frames that hold it.
///
/// Meant for small entries (manifests, configs, `index.json`); stream large ones with
/// [`open_entry`].
pub fn read_entry(
    file: &mut dyn ReadSeek,
    index: &FrameIndex,
    path: &str,
) -> Result<Vec<u8>, Error> {
    let mut reader = open_entry(file, index, path)?;
    // Capped: the size comes from the unsigned index.
    let mut data = Vec::with_capacity(reader.size().min(64 << 20) as usize);
    reader
        .read_to_end(&mut data)
        .map_err(EntryReader::unwrap_error)?;
    Ok(data)
}

/// What entries are read from: a [`crate::BundleFile`] (one file or the parts of a split
/// bundle), or any other seekable reader.
pub trait ReadSeek: Read + Seek + Send {}

impl<T: Read + Seek + Send> ReadSeek for T {}

/// Opens a stream over the data of the entry at `path`; it decodes only that entry's frames.
pub fn open_entry<'f>(
    file: &'f mut dyn ReadSeek,
    index: &FrameIndex,
    path: &str,
) -> Result<EntryReader<'f>, Error> {
    EntryReader::new(FileRef::Borrowed(file), index, path)
}

/// Like [`open_entry`], but the reader owns the file (for a reader that must be `'static`,
/// e.g. one handed to another thread).
pub fn open_entry_owned(
    file: impl ReadSeek + 'static,
    index: &FrameIndex,
    path: &str,
) -> Result<EntryReader<'static>, Error> {
    EntryReader::new(FileRef::Owned(Box::new(file)), index, path)
}

enum FileRef<'f> {
    Borrowed(&'f mut dyn ReadSeek),
    Owned(Box<dyn ReadSeek>),
}

impl std::fmt::Debug for FileRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileRef")
    }
}

impl FileRef<'_> {
    fn get(&mut self) -> &mut dyn ReadSeek {
        match self {
            FileRef::Borrowed(f) => f,
            FileRef::Owned(f) => f,
        }
    }
}

/// Streams one entry's data out of a bundle file, one frame at a time.
///
/// Memory use is about two frames (compressed and decoded), whatever the entry's size. I/O and
/// decoding errors carry this crate's [`Error`] inside the [`io::Error`].
pub struct EntryReader<'f> {
    file: FileRef<'f>,
    entry: EntryInfo,
    size: u64,
    /// The frames holding the data, in order.
    frames: Vec<FrameInfo>,
    next_frame: usize,
    /// Bytes before the data in the first frame (the header, or more with tiny frames).
    skip: usize,
    /// Data bytes not yet returned.
    remaining: u64,
    decoded: Vec<u8>,
    pos: usize,
    compressed: Vec<u8>,
    decoder: FrameDecoder,
}

impl<'f> EntryReader<'f> {
    fn new(file: FileRef<'f>, index: &FrameIndex, path: &str) -> Result<Self, Error> {
        let entry = index.entry(path).ok_or_else(|| Error::UnknownEntry {
            path: path.to_owned(),
        })?;
        let start = entry.data_offset();
        let frames = index.frames_covering(start, start + entry.size).to_vec();
        let skip = frames
            .first()
            .map_or(0, |f| (start - f.decompressed_offset) as usize);
        Ok(EntryReader {
            file,
            entry: entry.clone(),
            size: entry.size,
            frames,
            next_frame: 0,
            skip,
            remaining: entry.size,
            decoded: Vec::new(),
            pos: 0,
            compressed: Vec::new(),
            decoder: FrameDecoder::default(),
        })
    }

    /// Size of the entry's data.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Gets this crate's error back out of an [`io::Error`] returned by `read`.
    pub fn unwrap_error(e: io::Error) -> Error {
        match e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            true => *e
                .into_inner()
                .expect("checked above")
                .downcast::<Error>()
                .expect("checked above"),
            false => Error::Read {
                offset: 0,
                source: e,
            },
        }
    }

    fn load_next_frame(&mut self) -> Result<(), Error> {
        let Some(frame) = self.frames.get(self.next_frame).copied() else {
            // Only reachable with a hand-made index whose frames do not cover the entry
            // (`FrameIndex::read_from` checks that they do).
            let end = self
                .frames
                .last()
                .map_or(0, |f| f.compressed_offset + f.compressed_size);
            return Err(invalid(
                end,
                IndexDefect::EntryOutOfBounds {
                    path: self.entry.path.clone(),
                    offset: self.entry.offset,
                    size: self.entry.size,
                },
            ));
        };
        let at = frame.compressed_offset;
        self.compressed.resize(frame.compressed_size as usize, 0);
        read_at(self.file.get(), at, &mut self.compressed)?;
        let decompress_err = |source| Error::Decompress { offset: at, source };
        self.decoder
            .decode(
                &self.compressed,
                &mut self.decoded,
                frame.decompressed_size as usize,
            )
            .map_err(|failure| {
                decompress_err(match failure {
                    DecodeFailure::Context(e) | DecodeFailure::Zstd(e) => e,
                    DecodeFailure::Size { decoded } => io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "frame decodes to {decoded} bytes, the seek table says {}",
                            frame.decompressed_size
                        ),
                    ),
                })
            })?;
        self.pos = if self.next_frame == 0 { self.skip } else { 0 };
        self.next_frame += 1;
        Ok(())
    }
}

impl std::fmt::Debug for EntryReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntryReader")
            .field("entry", &self.entry)
            .field("frames", &self.frames.len())
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

impl Read for EntryReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || out.is_empty() {
            return Ok(0);
        }
        while self.pos >= self.decoded.len() {
            self.load_next_frame().map_err(io::Error::other)?;
        }
        let n = out
            .len()
            .min(self.decoded.len() - self.pos)
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        out[..n].copy_from_slice(&self.decoded[self.pos..self.pos + n]);
        self.pos += n;
        self.remaining -= n as u64;
        Ok(n)
    }
}
