//! The trailing index of a bundle file: the zstd seek table and airlock's entry table
//! (docs/bundle-format.md), and its one parser.
//!
//! The index is an accelerator, not a root of trust: it is not signed. A wrong index makes
//! these functions return wrong bytes or an error, never something that passes verification,
//! because callers check every blob against the digests of the signed manifest.

use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IndexDefect};
use crate::format::{
    ENTRY_TABLE_MAGIC, ENTRY_TABLE_VERSION, MAX_FRAME_SIZE, SEEKABLE_MAGIC, SEEK_FOOTER_LEN,
    SEEK_TABLE_MAGIC, SKIPPABLE_HEADER_LEN, TAR_BLOCK,
};

/// Where every frame and every entry of a bundle file is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FrameIndex {
    /// The zstd data frames, in file order.
    pub frames: Vec<FrameInfo>,
    /// The tar entries, in tar order.
    pub entries: Vec<EntryInfo>,
}

/// One zstd data frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// Where the frame starts in the file.
    pub compressed_offset: u64,
    /// Its length in the file.
    pub compressed_size: u64,
    /// Where its content starts in the tar stream.
    pub decompressed_offset: u64,
    /// Length of its content.
    pub decompressed_size: u64,
}

/// One tar entry, as listed in the entry table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryInfo {
    /// Path inside the tar, e.g. `blobs/sha256/<hex>`.
    pub path: String,
    /// Offset of the entry's tar header in the tar stream; its data starts 512 bytes later.
    pub offset: u64,
    /// Size of the entry's data.
    pub size: u64,
}

impl EntryInfo {
    /// Offset of the entry's data in the tar stream.
    pub fn data_offset(&self) -> u64 {
        self.offset + TAR_BLOCK
    }
}

/// The entry table as written.
#[derive(Serialize)]
pub(crate) struct EntryTableRef<'a> {
    pub(crate) version: u32,
    pub(crate) entries: &'a [EntryInfo],
}

/// The entry table as read: a closed format, so unknown fields are refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryTable {
    version: u32,
    entries: Vec<EntryInfo>,
}

pub(crate) fn read_at<R: Read + Seek + ?Sized>(
    file: &mut R,
    offset: u64,
    buf: &mut [u8],
) -> Result<(), Error> {
    file.seek(SeekFrom::Start(offset))
        .and_then(|_| file.read_exact(buf))
        .map_err(|source| Error::Read { offset, source })
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes(b[..4].try_into().expect("4 bytes"))
}

pub(crate) fn invalid(offset: u64, defect: IndexDefect) -> Error {
    Error::InvalidIndex { offset, defect }
}

// ---- the one parser of the trailing index ----
//
// Its pieces read the bytes of the two skippable frames; [`FrameIndex::read_from`] finds them
// from the end of a file, `verify_bundle` from the end of the data frames it streamed, and
// each reports a defect in its own terms.

/// One of the two tables of the trailing index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    /// airlock's entry table.
    Entries,
    /// The zstd seek table.
    Seek,
}

impl Table {
    /// The magic of its skippable frame.
    pub(crate) fn magic(self) -> u32 {
        match self {
            Table::Entries => ENTRY_TABLE_MAGIC,
            Table::Seek => SEEK_TABLE_MAGIC,
        }
    }

    /// What it is called in messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Table::Entries => "entry table",
            Table::Seek => "seek table",
        }
    }
}

/// What the parser of the trailing index found wrong with its bytes.
#[derive(Debug)]
pub(crate) enum TailDefect {
    /// Fewer bytes than a skippable frame header where the table's frame starts.
    ShortHeader { table: Table },
    /// The table's frame has another magic.
    BadMagic { table: Table, found: u32 },
    /// The frame header declares more bytes than follow it.
    Cut {
        table: Table,
        declared: u64,
        available: u64,
    },
    /// The entry table is not its JSON.
    EntryTableJson(serde_json::Error),
    /// The entry table has another version.
    EntryTableVersion { found: u32 },
    /// Nothing follows the entry table.
    NoSeekTable,
    /// Bytes follow the seek table's frame.
    AfterSeekTable { after: u64 },
    /// The seek table is shorter than its footer.
    NoRoomForFooter { len: u64 },
    /// The footer does not end with the seekable magic.
    NoSeekableMagic { found: u32 },
    /// Reserved bits of the footer's descriptor are set.
    ReservedBits { count: u32, descriptor: u8 },
    /// The footer's frame count does not fit the seek table's length.
    FooterMismatch {
        count: u32,
        descriptor: u8,
        len: u64,
    },
}

/// The payload of the `table`'s skippable frame at the start of `buf`, of the length its
/// header declares.
fn skippable(buf: &[u8], table: Table) -> Result<&[u8], TailDefect> {
    let hdr = SKIPPABLE_HEADER_LEN as usize;
    if buf.len() < hdr {
        return Err(TailDefect::ShortHeader { table });
    }
    let found = le32(buf);
    if found != table.magic() {
        return Err(TailDefect::BadMagic { table, found });
    }
    let declared = u64::from(le32(&buf[4..]));
    let available = (buf.len() - hdr) as u64;
    if declared > available {
        return Err(TailDefect::Cut {
            table,
            declared,
            available,
        });
    }
    Ok(&buf[hdr..hdr + declared as usize])
}

/// The entries of the entry table's JSON.
fn entry_table(json: &[u8]) -> Result<Vec<EntryInfo>, TailDefect> {
    let table: EntryTable = serde_json::from_slice(json).map_err(TailDefect::EntryTableJson)?;
    if table.version != ENTRY_TABLE_VERSION {
        return Err(TailDefect::EntryTableVersion {
            found: table.version,
        });
    }
    Ok(table.entries)
}

/// The seek table's footer: frame count, descriptor, seekable magic.
#[derive(Debug, Clone, Copy)]
struct Footer {
    count: u32,
    descriptor: u8,
    /// Bytes per frame entry (bit 7 of the descriptor: each carries a checksum too; airlock
    /// writes none, but reads files that do).
    entry_len: u64,
}

fn footer(b: &[u8]) -> Result<Footer, TailDefect> {
    let (count, descriptor, magic) = (le32(b), b[4], le32(&b[5..]));
    if magic != SEEKABLE_MAGIC {
        return Err(TailDefect::NoSeekableMagic { found: magic });
    }
    if descriptor & 0x7C != 0 {
        return Err(TailDefect::ReservedBits { count, descriptor });
    }
    let entry_len = if descriptor & 0x80 != 0 { 12 } else { 8 };
    Ok(Footer {
        count,
        descriptor,
        entry_len,
    })
}

/// The (compressed, decompressed) sizes of the seek table's frame entries.
fn frame_sizes(entries: &[u8], entry_len: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
    entries
        .chunks_exact(entry_len as usize)
        .map(|e| (u64::from(le32(e)), u64::from(le32(&e[4..]))))
}

/// The entry table's frame at the start of `buf`: its entries, and the frame's length.
pub(crate) fn parse_entry_table_frame(buf: &[u8]) -> Result<(Vec<EntryInfo>, usize), TailDefect> {
    let json = skippable(buf, Table::Entries)?;
    Ok((
        entry_table(json)?,
        SKIPPABLE_HEADER_LEN as usize + json.len(),
    ))
}

/// The seek table's frame that is all of `buf` (the end of the file): the (compressed,
/// decompressed) size of every data frame.
pub(crate) fn parse_seek_table_frame(buf: &[u8]) -> Result<Vec<(u64, u64)>, TailDefect> {
    if buf.is_empty() {
        return Err(TailDefect::NoSeekTable);
    }
    let payload = skippable(buf, Table::Seek)?;
    let len = payload.len() as u64;
    let after = (buf.len() - SKIPPABLE_HEADER_LEN as usize) as u64 - len;
    if after > 0 {
        return Err(TailDefect::AfterSeekTable { after });
    }
    if len < SEEK_FOOTER_LEN {
        return Err(TailDefect::NoRoomForFooter { len });
    }
    let (entries, foot) = payload.split_at(payload.len() - SEEK_FOOTER_LEN as usize);
    let mismatch = |count, descriptor| TailDefect::FooterMismatch {
        count,
        descriptor,
        len,
    };
    let f = footer(foot).map_err(|e| match e {
        TailDefect::ReservedBits { count, descriptor } => mismatch(count, descriptor),
        e => e,
    })?;
    if u64::from(f.count) * f.entry_len != entries.len() as u64 {
        return Err(mismatch(f.count, f.descriptor));
    }
    Ok(frame_sizes(entries, f.entry_len).collect())
}

impl FrameIndex {
    /// Reads the seek table and the entry table from the end of a bundle file, and checks
    /// that they agree with each other and with the file length. `file` is a
    /// [`crate::BundleFile`] (one file or the parts of a split bundle) or a plain file.
    pub fn read_from<R: Read + Seek + ?Sized>(file: &mut R) -> Result<FrameIndex, Error> {
        let len = file
            .seek(SeekFrom::End(0))
            .map_err(|source| Error::Read { offset: 0, source })?;
        if len < SKIPPABLE_HEADER_LEN + SEEK_FOOTER_LEN {
            return Err(invalid(0, IndexDefect::TooShort { len }));
        }

        // Footer: frame count, descriptor, magic.
        let footer_at = len - SEEK_FOOTER_LEN;
        let mut foot = [0; SEEK_FOOTER_LEN as usize];
        read_at(file, footer_at, &mut foot)?;
        let f = footer(&foot).map_err(|defect| index_error(footer_at, len, defect))?;
        let payload = u64::from(f.count) * f.entry_len + SEEK_FOOTER_LEN;
        let seek_start = (len - SKIPPABLE_HEADER_LEN)
            .checked_sub(payload)
            .ok_or_else(|| {
                invalid(
                    footer_at,
                    IndexDefect::SeekTableTooLarge {
                        frames: f.count,
                        len,
                    },
                )
            })?;
        let mut table = vec![0; (SKIPPABLE_HEADER_LEN + payload - SEEK_FOOTER_LEN) as usize];
        read_at(file, seek_start, &mut table)?;
        // The header's declared size is checked against the frame's length from the footer.
        table.extend_from_slice(&foot);
        let sizes = exact_payload(&table, Table::Seek)
            .map_err(|defect| index_error(seek_start, len, defect))?;

        let mut frames = Vec::with_capacity(f.count as usize);
        let (mut c_off, mut d_off) = (0u64, 0u64);
        let entries = &sizes[..sizes.len() - SEEK_FOOTER_LEN as usize];
        for (i, (compressed_size, decompressed_size)) in
            frame_sizes(entries, f.entry_len).enumerate()
        {
            if decompressed_size > MAX_FRAME_SIZE as u64 {
                let at = seek_start + SKIPPABLE_HEADER_LEN + i as u64 * f.entry_len;
                return Err(invalid(
                    at,
                    IndexDefect::FrameTooLarge {
                        frame: i,
                        size: decompressed_size,
                        limit: MAX_FRAME_SIZE as u64,
                    },
                ));
            }
            frames.push(FrameInfo {
                compressed_offset: c_off,
                compressed_size,
                decompressed_offset: d_off,
                decompressed_size,
            });
            c_off += compressed_size;
            d_off += decompressed_size;
        }

        // The data frames must end exactly where the entry table frame begins.
        if c_off + SKIPPABLE_HEADER_LEN > seek_start {
            return Err(invalid(
                seek_start,
                IndexDefect::FrameSizesMismatch {
                    sum: c_off,
                    start: seek_start,
                },
            ));
        }
        let entries_at = c_off;
        let mut frame = vec![0; (seek_start - entries_at) as usize];
        read_at(file, entries_at, &mut frame)?;
        let entries = exact_payload(&frame, Table::Entries)
            .and_then(entry_table)
            .map_err(|defect| index_error(entries_at, len, defect))?;

        let index = FrameIndex { frames, entries };
        index.check_entries(entries_at)?;
        Ok(index)
    }

    /// Every entry starts a frame, lies inside the tar stream, after the previous one, once.
    fn check_entries(&self, table_at: u64) -> Result<(), Error> {
        let tar_len = self.tar_len();
        let mut paths = HashSet::with_capacity(self.entries.len());
        let mut prev_end = 0;
        for e in &self.entries {
            let end = e
                .offset
                .checked_add(TAR_BLOCK)
                .and_then(|x| x.checked_add(e.size));
            if e.offset < prev_end || end.is_none_or(|end| end > tar_len) {
                return Err(invalid(
                    table_at,
                    IndexDefect::EntryOutOfBounds {
                        path: e.path.clone(),
                        offset: e.offset,
                        size: e.size,
                    },
                ));
            }
            if self
                .frames
                .binary_search_by_key(&e.offset, |f| f.decompressed_offset)
                .is_err()
            {
                return Err(invalid(
                    table_at,
                    IndexDefect::EntryNotAtFrameStart {
                        path: e.path.clone(),
                        offset: e.offset,
                    },
                ));
            }
            if !paths.insert(e.path.as_str()) {
                return Err(invalid(
                    table_at,
                    IndexDefect::DuplicateEntry {
                        path: e.path.clone(),
                    },
                ));
            }
            prev_end = end.unwrap_or(tar_len);
        }
        Ok(())
    }

    /// The entry at `path`, if any.
    pub fn entry(&self, path: &str) -> Option<&EntryInfo> {
        self.entries.iter().find(|e| e.path == path)
    }

    /// Length of the decompressed tar stream.
    pub fn tar_len(&self) -> u64 {
        self.frames
            .last()
            .map_or(0, |f| f.decompressed_offset + f.decompressed_size)
    }

    /// The frames holding tar bytes `start..end`.
    pub(crate) fn frames_covering(&self, start: u64, end: u64) -> &[FrameInfo] {
        if start >= end {
            return &[];
        }
        let first = self
            .frames
            .partition_point(|f| f.decompressed_offset + f.decompressed_size <= start);
        let last = self.frames.partition_point(|f| f.decompressed_offset < end);
        &self.frames[first..last.max(first)]
    }
}

/// The payload of the `table`'s skippable frame that is exactly `frame`: its header must
/// declare the frame's length.
fn exact_payload(frame: &[u8], table: Table) -> Result<&[u8], TailDefect> {
    let payload = skippable(frame, table)?;
    let available = (frame.len() - SKIPPABLE_HEADER_LEN as usize) as u64;
    if payload.len() as u64 != available {
        return Err(TailDefect::Cut {
            table,
            declared: payload.len() as u64,
            available,
        });
    }
    Ok(payload)
}

/// A defect found while reading the index from the end of a file of `len` bytes, in the
/// terms of [`IndexDefect`]; `at` is the start of the frame (or footer) concerned.
fn index_error(at: u64, len: u64, defect: TailDefect) -> Error {
    let defect = match defect {
        TailDefect::BadMagic { table, found } => IndexDefect::BadSkippableMagic {
            expected: table.magic(),
            found,
        },
        TailDefect::Cut {
            declared,
            available,
            ..
        } => IndexDefect::BadSkippableSize {
            expected: available,
            found: declared,
        },
        TailDefect::EntryTableJson(source) => return Error::EntryTableJson { offset: at, source },
        TailDefect::EntryTableVersion { found } => IndexDefect::EntryTableVersion { found },
        TailDefect::NoSeekableMagic { found } => {
            return invalid(len - 4, IndexDefect::NoSeekableMagic { found })
        }
        TailDefect::ReservedBits { descriptor, .. } => {
            return invalid(len - 5, IndexDefect::ReservedBits { descriptor })
        }
        // Not met on this path: the frames read are at least a header long, end the file
        // and have the length the footer gives.
        TailDefect::ShortHeader { .. }
        | TailDefect::NoSeekTable
        | TailDefect::AfterSeekTable { .. }
        | TailDefect::NoRoomForFooter { .. }
        | TailDefect::FooterMismatch { .. } => IndexDefect::TooShort { len },
    };
    invalid(at, defect)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::fs::File;
    use std::io::Write;
    use std::path::PathBuf;

    use super::*;
    use crate::digest::Digest;
    use crate::reader::entries::read_entry;

    /// A small bundle with one blob of `blob_len` bytes, written with `frame_size`.
    fn bundle(blob_len: usize, frame_size: usize) -> (tempfile::TempDir, PathBuf, Vec<u8>) {
        let blob: Vec<u8> = (0..blob_len).map(|i| (i % 253) as u8).collect();
        let (dir, out, _) = crate::testing::one_blob_bundle(&blob, frame_size);
        (dir, out, blob)
    }

    fn index_error(bytes: &[u8]) -> Error {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        FrameIndex::read_from(&mut f).unwrap_err()
    }

    #[test]
    fn tiny_frames_split_headers() {
        // Frames smaller than an entry's header and data: entries still start frames, and
        // data that starts in a later frame is found.
        let (_dir, out, blob) = bundle(5000, 700);
        let mut f = File::open(&out).unwrap();
        let index = FrameIndex::read_from(&mut f).unwrap();
        let path = Digest::of_bytes(&blob).blob_path();
        assert_eq!(read_entry(&mut f, &index, &path).unwrap(), blob);
        assert_eq!(read_entry(&mut f, &index, "index.json").unwrap(), b"{}");
        let e = index.entry(&path).unwrap();
        let first = index
            .frames
            .iter()
            .position(|fr| fr.decompressed_offset == e.offset)
            .unwrap();
        assert_eq!(index.frames[first].decompressed_size, 700);
    }

    #[test]
    fn empty_entry_reads_empty() {
        let (_dir, out, blob) = bundle(0, 4096);
        let mut f = File::open(&out).unwrap();
        let index = FrameIndex::read_from(&mut f).unwrap();
        let path = Digest::of_bytes(&blob).blob_path();
        assert!(read_entry(&mut f, &index, &path).unwrap().is_empty());
    }

    #[test]
    fn missing_footer_is_reported_with_offset() {
        let (_dir, out, _) = bundle(100, 4096);
        let mut bytes = fs::read(&out).unwrap();
        let len = bytes.len() as u64;
        bytes.pop();
        let err = index_error(&bytes);
        assert!(
            matches!(
                &err,
                Error::InvalidIndex { defect: IndexDefect::NoSeekableMagic { .. }, offset }
                    if *offset == len - 5
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("byte offset"), "{err}");

        let err = index_error(b"short");
        assert!(
            matches!(
                err,
                Error::InvalidIndex {
                    defect: IndexDefect::TooShort { len: 5 },
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn wrong_frame_sizes_are_reported() {
        let (_dir, out, _) = bundle(100, 4096);
        let bytes = fs::read(&out).unwrap();
        let count = le32(&bytes[bytes.len() - 9..]) as usize;
        let first_entry = bytes.len() - 9 - count * 8;

        // The first frame claims one byte more: the entry table is no longer where the
        // frames end.
        let mut bad = bytes.clone();
        let c = le32(&bad[first_entry..]) + 1;
        bad[first_entry..first_entry + 4].copy_from_slice(&c.to_le_bytes());
        let err = index_error(&bad);
        assert!(
            matches!(
                err,
                Error::InvalidIndex {
                    defect: IndexDefect::BadSkippableMagic { .. },
                    ..
                }
            ),
            "{err:?}"
        );

        // A frame claims more compressed bytes than the file has.
        let mut bad = bytes.clone();
        bad[first_entry..first_entry + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = index_error(&bad);
        assert!(
            matches!(
                err,
                Error::InvalidIndex {
                    defect: IndexDefect::FrameSizesMismatch { .. },
                    ..
                }
            ),
            "{err:?}"
        );

        // A frame claims too many decompressed bytes: entries fall outside, or frame
        // boundaries move.
        let mut bad = bytes.clone();
        let d = le32(&bad[first_entry + 4..]) + 512;
        bad[first_entry + 4..first_entry + 8].copy_from_slice(&d.to_le_bytes());
        let err = index_error(&bad);
        assert!(
            matches!(
                err,
                Error::InvalidIndex {
                    defect: IndexDefect::EntryNotAtFrameStart { .. },
                    ..
                }
            ),
            "{err:?}"
        );

        // The frame count is wrong.
        let mut bad = bytes;
        let n = bad.len();
        bad[n - 9..n - 5].copy_from_slice(&(count as u32 + 1).to_le_bytes());
        let err = index_error(&bad);
        assert!(matches!(err, Error::InvalidIndex { .. }), "{err:?}");
    }

    #[test]
    fn corrupt_frame_is_a_decompress_error() {
        let (_dir, out, blob) = bundle(20_000, 4096);
        let mut bytes = fs::read(&out).unwrap();
        let mut f = File::open(&out).unwrap();
        let index = FrameIndex::read_from(&mut f).unwrap();
        let path = Digest::of_bytes(&blob).blob_path();
        let e = index.entry(&path).unwrap();
        let frame = index
            .frames
            .iter()
            .find(|fr| fr.decompressed_offset == e.offset)
            .unwrap();
        let mid = (frame.compressed_offset + frame.compressed_size / 2) as usize;
        bytes[mid] ^= 0xff;
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&bytes).unwrap();
        let err = read_entry(&mut f, &index, &path).unwrap_err();
        assert!(
            matches!(&err, Error::Decompress { offset, .. } if *offset == frame.compressed_offset),
            "{err:?}"
        );
    }

    #[test]
    fn hand_made_index_that_misses_frames_is_an_error() {
        let (_dir, out, blob) = bundle(20_000, 4096);
        let mut f = File::open(&out).unwrap();
        let mut index = FrameIndex::read_from(&mut f).unwrap();
        let path = Digest::of_bytes(&blob).blob_path();
        let e = index.entry(&path).unwrap().clone();
        index.frames.retain(|fr| fr.decompressed_offset <= e.offset);
        let err = read_entry(&mut f, &index, &path).unwrap_err();
        assert!(matches!(err, Error::InvalidIndex { .. }), "{err:?}");
    }

    /// The tail of a bundle file (what follows its data frames) and where it starts.
    fn tail_of(bytes: &[u8]) -> (&[u8], u64) {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        let index = FrameIndex::read_from(&mut f).unwrap();
        let at = index
            .frames
            .last()
            .map_or(0, |fr| fr.compressed_offset + fr.compressed_size);
        (&bytes[at as usize..], at)
    }

    #[test]
    fn both_ways_into_the_tail_read_the_same_index() {
        // From the end of the file (`read_from`) and from the end of the data frames (what
        // `verify_bundle` streams): the same entries and frame sizes.
        let (_dir, out, _) = bundle(20_000, 4096);
        let bytes = fs::read(&out).unwrap();
        let index = FrameIndex::read_from(&mut File::open(&out).unwrap()).unwrap();
        let (tail, _) = tail_of(&bytes);
        let (entries, table_len) = parse_entry_table_frame(tail).unwrap();
        assert_eq!(entries, index.entries);
        let sizes = parse_seek_table_frame(&tail[table_len..]).unwrap();
        let expected: Vec<(u64, u64)> = index
            .frames
            .iter()
            .map(|f| (f.compressed_size, f.decompressed_size))
            .collect();
        assert_eq!(sizes, expected);

        // A seek table cut by a byte, or followed by one.
        let cut = &tail[table_len..tail.len() - 1];
        assert!(matches!(
            parse_seek_table_frame(cut),
            Err(TailDefect::Cut {
                table: Table::Seek,
                ..
            })
        ));
        let mut longer = tail[table_len..].to_vec();
        longer.push(0);
        assert!(matches!(
            parse_seek_table_frame(&longer),
            Err(TailDefect::AfterSeekTable { after: 1 })
        ));
        assert!(matches!(
            parse_seek_table_frame(&[]),
            Err(TailDefect::NoSeekTable)
        ));
    }

    #[test]
    fn an_entry_table_with_an_unknown_field_is_refused_both_ways() {
        // The entry table is a closed format: the reader of the offline side and `verify`
        // apply the same rule to it.
        let (_dir, out, _) = bundle(100, 4096);
        let bytes = fs::read(&out).unwrap();
        let (tail, at) = tail_of(&bytes);
        let (_, table_len) = parse_entry_table_frame(tail).unwrap();
        let json = &tail[SKIPPABLE_HEADER_LEN as usize..table_len];
        let mut doc: serde_json::Value = serde_json::from_slice(json).unwrap();
        doc["extra"] = serde_json::json!(1);
        let json = serde_json::to_vec(&doc).unwrap();
        let mut bad = bytes[..at as usize].to_vec();
        bad.extend(ENTRY_TABLE_MAGIC.to_le_bytes());
        bad.extend((json.len() as u32).to_le_bytes());
        bad.extend(&json);
        bad.extend(&tail[table_len..]);

        let err = index_error(&bad);
        assert!(matches!(err, Error::EntryTableJson { .. }), "{err:?}");
        let err = parse_entry_table_frame(&bad[at as usize..]).unwrap_err();
        assert!(matches!(err, TailDefect::EntryTableJson(_)), "{err:?}");
    }
}
