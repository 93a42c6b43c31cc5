//! Reading bytes of an entry out of the bundle's zstd frames, a byte range at a time (what
//! `airlock serve` hands out).
//!
//! Layers are gzip- or zstd-compressed already, so the bundle writer's frames that hold them
//! are made of zstd *raw* blocks: the blob's bytes verbatim behind a 3-byte block header. Such
//! a frame is read from the file once and handed out as slices of that read (no decode, no
//! copy); any other frame is decoded. Frame buffers are reused, so a long transfer does not
//! allocate (and fault in) fresh memory for every frame.

use std::io;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::format::TAR_BLOCK;
use crate::reader::header::check_entry_header;
use crate::reader::index::{EntryInfo, FrameIndex, FrameInfo};

/// Frame-sized buffers kept for reuse, shared by the [`FrameReader`]s of one server.
pub struct Buffers {
    free: Mutex<Vec<Vec<u8>>>,
    keep: usize,
}

/// A buffer lent out as the owner of [`Bytes`]: back to the pool when the last slice drops.
struct Lent {
    buf: Vec<u8>,
    pool: Arc<Buffers>,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        self.pool.put(std::mem::take(&mut self.buf));
    }
}

impl Buffers {
    /// A pool that keeps up to `keep` buffers.
    pub fn new(keep: usize) -> Arc<Buffers> {
        Arc::new(Buffers {
            free: Mutex::new(Vec::new()),
            keep,
        })
    }

    fn take(&self) -> Vec<u8> {
        self.free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_default()
    }

    fn put(&self, buf: Vec<u8>) {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        if free.len() < self.keep && buf.capacity() > 0 {
            free.push(buf);
        }
    }

    /// Buffers waiting to be reused.
    #[cfg(test)]
    fn kept(&self) -> usize {
        self.free.lock().unwrap().len()
    }
}

/// Decodes whole zstd frames, one decompression context reused from frame to frame.
#[derive(Default)]
pub(crate) struct FrameDecoder {
    context: Option<zstd::bulk::Decompressor<'static>>,
}

/// Why a frame did not decode to what the seek table says (see [`FrameDecoder::decode`]).
pub(crate) enum DecodeFailure {
    /// No decompression context could be made.
    Context(io::Error),
    /// The frame is not valid zstd.
    Zstd(io::Error),
    /// It decodes to another length.
    Size { decoded: usize },
}

impl FrameDecoder {
    /// Decodes the frame `compressed` into `out` (emptied first), which must come to `want`
    /// bytes.
    pub(crate) fn decode(
        &mut self,
        compressed: &[u8],
        out: &mut Vec<u8>,
        want: usize,
    ) -> Result<(), DecodeFailure> {
        let context = match &mut self.context {
            Some(c) => c,
            None => self
                .context
                .insert(zstd::bulk::Decompressor::new().map_err(DecodeFailure::Context)?),
        };
        out.clear();
        out.reserve(want);
        context
            .decompress_to_buffer(compressed, out)
            .map_err(DecodeFailure::Zstd)?;
        if out.len() != want {
            return Err(DecodeFailure::Size { decoded: out.len() });
        }
        Ok(())
    }
}

/// Reads frames of one bundle file: raw blocks as slices of one read, other frames decoded
/// into buffers of the pool.
pub struct FrameReader {
    file: crate::volume::BundleFile,
    pool: Arc<Buffers>,
    decoder: FrameDecoder,
}

impl FrameReader {
    /// Opens the bundle at `path` (a file, or a split bundle's first part or part list, see
    /// [`crate::BundleFile::open`]), taking buffers from `pool`.
    pub fn open(path: &std::path::Path, pool: &Arc<Buffers>) -> io::Result<Self> {
        let file = crate::volume::BundleFile::open(path).map_err(io::Error::other)?;
        Ok(FrameReader::new(file, pool))
    }

    /// Reads frames of a bundle already open, taking buffers from `pool`.
    pub fn new(file: crate::volume::BundleFile, pool: &Arc<Buffers>) -> Self {
        FrameReader {
            file,
            pool: pool.clone(),
            decoder: FrameDecoder::default(),
        }
    }

    /// The decoded bytes of frame `f`, as one or more slices in order.
    pub fn read(&mut self, f: &FrameInfo) -> io::Result<Vec<Bytes>> {
        let bad = |what: String| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("frame at byte offset {}: {what}", f.compressed_offset),
            )
        };
        let len = usize::try_from(f.compressed_size).map_err(|_| bad("too large".into()))?;
        let want = usize::try_from(f.decompressed_size).map_err(|_| bad("too large".into()))?;
        let mut buf = self.pool.take();
        // A reused buffer is only zero-filled where it grows.
        buf.resize(len, 0);
        self.file.read_exact_at(&mut buf, f.compressed_offset)?;
        if let Some(blocks) = raw_blocks(&buf, f.decompressed_size) {
            let frame = self.lend(buf);
            return Ok(blocks.into_iter().map(|r| frame.slice(r)).collect());
        }
        let mut out = self.pool.take();
        let decoded = self.decoder.decode(&buf, &mut out, want);
        self.pool.put(buf);
        match decoded {
            Ok(()) => Ok(vec![self.lend(out)]),
            Err(DecodeFailure::Context(e)) => Err(e),
            Err(DecodeFailure::Zstd(e)) => Err(bad(e.to_string())),
            Err(DecodeFailure::Size { decoded }) => Err(bad(format!(
                "decodes to {decoded} bytes, the seek table says {want}"
            ))),
        }
    }

    fn lend(&self, buf: Vec<u8>) -> Bytes {
        Bytes::from_owner(Lent {
            buf,
            pool: self.pool.clone(),
        })
    }
}

/// Where the content of `frame` lies in it, when the frame is one zstd frame of raw blocks
/// only that decodes to `want` bytes; `None` for anything else (decoded the usual way, which
/// also reports what is wrong with it).
fn raw_blocks(frame: &[u8], want: u64) -> Option<Vec<Range<usize>>> {
    if frame.get(0..4)? != crate::sniff::ZSTD_MAGIC {
        return None;
    }
    let descriptor = *frame.get(4)?;
    let content_size_flag = descriptor >> 6;
    let single_segment = descriptor & 0x20 != 0;
    let reserved = descriptor & 0x08 != 0;
    let checksum = descriptor & 0x04 != 0;
    let dictionary = descriptor & 0x03;
    if reserved || dictionary != 0 {
        return None;
    }
    let window = usize::from(!single_segment);
    let content_size = match (content_size_flag, single_segment) {
        (0, false) => 0,
        (0, true) => 1,
        (1, _) => 2,
        (2, _) => 4,
        _ => 8,
    };
    let mut at = 5 + window + content_size;
    let mut blocks = Vec::new();
    let mut total = 0u64;
    loop {
        let h = frame.get(at..at + 3)?;
        let header = u32::from(h[0]) | u32::from(h[1]) << 8 | u32::from(h[2]) << 16;
        at += 3;
        let last = header & 1 == 1;
        let raw = (header >> 1) & 3 == 0;
        let size = (header >> 3) as usize;
        if !raw {
            return None;
        }
        let end = at.checked_add(size)?;
        if end > frame.len() {
            return None;
        }
        if size > 0 {
            blocks.push(at..end);
        }
        total += size as u64;
        at = end;
        if last {
            break;
        }
    }
    if checksum {
        at += 4;
    }
    (at == frame.len() && total == want).then_some(blocks)
}

fn invalid_data(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Bytes `start..end` of one tar entry, a frame at a time, never a byte outside the entry.
///
/// The entry table only locates bytes; what it says is checked as far as reading allows:
/// `start..end` must lie inside the entry's size, and whenever the frame holding the entry's
/// tar header is read (every read from the entry's start, so every checking pass), that header
/// must name the entry's path and size.
pub struct EntryRange {
    entry: EntryInfo,
    /// Tar-stream coordinates of the bytes asked for.
    from: u64,
    to: u64,
    /// Frames still to read: `next..last` of the index's frames.
    next: usize,
    last: usize,
    sent: u64,
}

impl EntryRange {
    /// Bytes `start..end` of the data of the entry `entry_path`; refused when the range does
    /// not lie inside the entry.
    pub fn new(
        index: &FrameIndex,
        entry_path: &str,
        start: u64,
        end: u64,
    ) -> io::Result<EntryRange> {
        let entry = index.entry(entry_path).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("the bundle's frame index has no entry `{entry_path}`"),
            )
        })?;
        if start > end || end > entry.size {
            return Err(invalid_data(format!(
                "bytes {start}..{end} were asked for, the entry `{entry_path}` holds {}",
                entry.size
            )));
        }
        let (from, to) = (entry.data_offset() + start, entry.data_offset() + end);
        // From the entry's start, begin at the frame of its header, to check it.
        let first_byte = if start == 0 { entry.offset } else { from };
        let first = index
            .frames
            .partition_point(|f| f.decompressed_offset + f.decompressed_size <= first_byte);
        let last = index.frames.partition_point(|f| f.decompressed_offset < to);
        Ok(EntryRange {
            entry: entry.clone(),
            from,
            to,
            next: first,
            last: last.max(first),
            sent: 0,
        })
    }

    /// The slices of the next frame that fall in the range; `None` once it was all read.
    pub fn next_frame(
        &mut self,
        reader: &mut FrameReader,
        index: &FrameIndex,
    ) -> io::Result<Option<Vec<Bytes>>> {
        while self.next < self.last {
            let f = index.frames[self.next];
            self.next += 1;
            let pieces = reader.read(&f)?;
            if f.decompressed_offset == self.entry.offset {
                check_header(&pieces, &self.entry)?;
            }
            // The frame's bytes that fall in `from..to`, in decoded coordinates.
            let (lo, hi) = (
                self.from.max(f.decompressed_offset),
                self.to.min(f.decompressed_offset + f.decompressed_size),
            );
            let mut pos = f.decompressed_offset;
            let mut out = Vec::new();
            for piece in pieces {
                let (a, b) = (pos, pos + piece.len() as u64);
                pos = b;
                if b <= lo || a >= hi {
                    continue;
                }
                let s = (lo.max(a) - a) as usize;
                let e = (hi.min(b) - a) as usize;
                self.sent += (e - s) as u64;
                out.push(piece.slice(s..e));
            }
            if !out.is_empty() {
                return Ok(Some(out));
            }
        }
        if self.sent != self.to - self.from {
            return Err(invalid_data(format!(
                "the bundle's frames hold {} of the {} bytes asked for",
                self.sent,
                self.to - self.from
            )));
        }
        Ok(None)
    }
}

/// The entry's tar header (the first 512 bytes of `pieces`, the decoded frame that starts at
/// the entry) names the entry's path and size, and its checksum holds.
fn check_header(pieces: &[Bytes], entry: &EntryInfo) -> io::Result<()> {
    let mut block = [0u8; TAR_BLOCK as usize];
    let mut have = 0;
    for p in pieces {
        let n = p.len().min(block.len() - have);
        block[have..have + n].copy_from_slice(&p[..n]);
        have += n;
        if have == block.len() {
            break;
        }
    }
    let bad = |what: String| {
        invalid_data(format!(
            "the tar header at offset {} is not the one of `{}` ({} bytes) the frame index \
             lists: {what}",
            entry.offset, entry.path, entry.size
        ))
    };
    if have < block.len() {
        return Err(bad("it is cut short".into()));
    }
    check_entry_header(&block, &entry.path, entry.size).map_err(|e| bad(e.to_string()))
}

/// Hands bytes `start..end` of the entry `entry_path` to `send`, a frame's slices at a time,
/// reading only the frames that hold them; stops early (Ok) when `send` says the receiver is
/// gone.
pub fn read_range(
    reader: &mut FrameReader,
    index: &FrameIndex,
    entry_path: &str,
    start: u64,
    end: u64,
    mut send: impl FnMut(Vec<Bytes>) -> bool,
) -> io::Result<()> {
    let mut range = EntryRange::new(index, entry_path, start, end)?;
    while let Some(pieces) = range.next_frame(reader, index)? {
        if !send(pieces) {
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::noise;

    fn frame(data: &[u8], level: i32, checksum: bool) -> Vec<u8> {
        let mut c = zstd::bulk::Compressor::new(level).unwrap();
        c.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(checksum))
            .unwrap();
        c.compress(data).unwrap()
    }

    #[test]
    fn incompressible_frames_are_raw_blocks_read_in_place() {
        for (n, checksum) in [(1usize, true), (131_072, false), (1_000_000, true)] {
            let data = noise(n);
            let f = frame(&data, 3, checksum);
            let blocks = raw_blocks(&f, n as u64).expect("raw blocks");
            let joined: Vec<u8> = blocks.iter().flat_map(|r| f[r.clone()].to_vec()).collect();
            assert_eq!(joined, data, "{n} bytes");
            // A wrong decoded size, a cut frame or a trailing byte is not taken as raw.
            assert!(raw_blocks(&f, n as u64 + 1).is_none());
            assert!(raw_blocks(&f[..f.len() - 1], n as u64).is_none());
            let mut longer = f.clone();
            longer.push(0);
            assert!(raw_blocks(&longer, n as u64).is_none());
        }
    }

    #[test]
    fn compressible_frames_are_decoded() {
        let data = vec![7u8; 100_000];
        assert!(raw_blocks(&frame(&data, 3, true), 100_000).is_none());
        assert!(raw_blocks(b"not zstd", 8).is_none());
    }

    #[test]
    fn frames_read_the_same_either_way_and_buffers_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("frames");
        let parts = [noise(300_000), vec![1u8; 200_000], noise(5)];
        let mut file = Vec::new();
        let mut infos = Vec::new();
        let mut decoded = 0u64;
        for p in &parts {
            let f = frame(p, 3, true);
            infos.push(FrameInfo {
                compressed_offset: file.len() as u64,
                compressed_size: f.len() as u64,
                decompressed_offset: decoded,
                decompressed_size: p.len() as u64,
            });
            decoded += p.len() as u64;
            file.extend_from_slice(&f);
        }
        std::fs::write(&path, &file).unwrap();
        let pool = Buffers::new(4);
        let mut reader = FrameReader::open(&path, &pool).unwrap();
        for (info, want) in infos.iter().zip(&parts) {
            let got: Vec<u8> = reader.read(info).unwrap().concat();
            assert_eq!(&got, want);
        }
        assert!(pool.kept() >= 1, "buffers are returned for reuse");

        // A frame whose seek-table size is wrong is named by its offset.
        let mut wrong = infos[1];
        wrong.decompressed_size += 1;
        let err = reader.read(&wrong).unwrap_err().to_string();
        assert!(
            err.contains(&format!("byte offset {}", wrong.compressed_offset)),
            "{err}"
        );
    }
}
