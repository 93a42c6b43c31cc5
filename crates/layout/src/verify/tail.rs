//! The last check of [`verify_bundle`](super::verify_bundle): the trailing entry table and seek
//! table describe exactly the entries and frames that were streamed.

use serde::Deserialize;

use super::report::{VerifyError, VerifyErrorKind};
use crate::format::{
    ENTRY_TABLE_MAGIC, ENTRY_TABLE_VERSION, SEEKABLE_MAGIC, SEEK_FOOTER_LEN, SEEK_TABLE_MAGIC,
    SKIPPABLE_HEADER_LEN,
};
use crate::reader::index::{EntryInfo, FrameInfo};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryTableDoc {
    version: u32,
    entries: Vec<EntryInfo>,
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes(b[..4].try_into().expect("4 bytes"))
}

/// The payload of the skippable frame at the start of `buf` (at file offset `at`): the
/// `name`d table, whose frame must carry `magic`.
fn skippable_payload<'a>(
    buf: &'a [u8],
    magic: u32,
    name: &str,
    at: u64,
    file_len: u64,
) -> Result<&'a [u8], VerifyError> {
    let truncated = |what: String| {
        VerifyError::new(VerifyErrorKind::Truncated { file_len, what }).at(None, Some(at))
    };
    let hdr = SKIPPABLE_HEADER_LEN as usize;
    if buf.len() < hdr {
        return Err(truncated(format!("inside the {name}'s frame header")));
    }
    let found = le32(buf);
    if found != magic {
        let reason =
            format!("expected the {name} (magic `{magic:#010X}`), found magic `{found:#010X}`");
        return Err(VerifyError::new(VerifyErrorKind::FrameIndex { reason }).at(None, Some(at)));
    }
    let len = le32(&buf[4..]) as usize;
    buf.get(hdr..hdr + len)
        .ok_or_else(|| truncated(format!("inside the {name}")))
}

/// The entry table and the seek table after the data frames describe exactly what was read.
pub(super) fn check_index(
    frames: &[FrameInfo],
    entries: &[EntryInfo],
    tail: &[u8],
    tail_offset: u64,
) -> Result<(), VerifyError> {
    let file_len = tail_offset + tail.len() as u64;
    let truncated = |what: &str, at: u64| {
        VerifyError::new(VerifyErrorKind::Truncated {
            file_len,
            what: what.to_owned(),
        })
        .at(None, Some(at))
    };
    let bad = |reason: String, at: u64| {
        VerifyError::new(VerifyErrorKind::FrameIndex { reason }).at(None, Some(at))
    };
    if tail.is_empty() {
        return Err(VerifyError::new(VerifyErrorKind::NoFrameIndex).at(None, Some(tail_offset)));
    }
    let hdr = SKIPPABLE_HEADER_LEN as usize;

    // The entry table.
    let json = skippable_payload(
        tail,
        ENTRY_TABLE_MAGIC,
        "entry table",
        tail_offset,
        file_len,
    )?;
    let json_len = json.len();
    let table: EntryTableDoc = serde_json::from_slice(json)
        .map_err(|e| bad(format!("unreadable entry table: {e}"), tail_offset))?;
    if table.version != ENTRY_TABLE_VERSION {
        return Err(bad(
            format!(
                "entry table version {}, expected {ENTRY_TABLE_VERSION}",
                table.version
            ),
            tail_offset,
        ));
    }
    for i in 0..table.entries.len().max(entries.len()) {
        let describe = |e: Option<&EntryInfo>| match e {
            Some(e) => format!(
                "`{}` at tar offset {} with {} bytes",
                e.path, e.offset, e.size
            ),
            None => "nothing".to_owned(),
        };
        let (listed, actual) = (table.entries.get(i), entries.get(i));
        if listed != actual {
            let mut e = bad(
                format!(
                    "entry {i}: the entry table lists {}, the tar has {}",
                    describe(listed),
                    describe(actual)
                ),
                tail_offset,
            );
            e.path = actual.or(listed).map(|x| x.path.clone());
            e.tar_offset = actual.or(listed).map(|x| x.offset);
            return Err(e);
        }
    }
    for e in entries {
        if frames
            .binary_search_by_key(&e.offset, |f| f.decompressed_offset)
            .is_err()
        {
            let mut err = bad(
                format!("entry `{}` does not start a zstd frame", e.path),
                tail_offset,
            );
            err.path = Some(e.path.clone());
            err.tar_offset = Some(e.offset);
            return Err(err);
        }
    }

    // The seek table.
    let seek_at = hdr + json_len;
    let seek_offset = tail_offset + seek_at as u64;
    let rest = &tail[seek_at..];
    if rest.is_empty() {
        return Err(truncated("the seek table is missing", seek_offset));
    }
    let payload = skippable_payload(rest, SEEK_TABLE_MAGIC, "seek table", seek_offset, file_len)?;
    let payload_len = payload.len();
    let after = rest.len() - hdr - payload_len;
    if after > 0 {
        return Err(bad(
            format!("{after} bytes follow the seek table"),
            seek_offset + (hdr + payload_len) as u64,
        ));
    }
    let footer_len = SEEK_FOOTER_LEN as usize;
    if payload.len() < footer_len {
        return Err(bad(
            format!("seek table of {payload_len} bytes has no room for its footer"),
            seek_offset,
        ));
    }
    let footer = &payload[payload.len() - footer_len..];
    let (count, descriptor, magic) = (le32(footer) as usize, footer[4], le32(&footer[5..]));
    if magic != SEEKABLE_MAGIC {
        return Err(bad(
            format!("no seekable magic `{SEEKABLE_MAGIC:#010X}` at the end, found `{magic:#010X}`"),
            file_len - 4,
        ));
    }
    let entry_len = if descriptor & 0x80 != 0 { 12 } else { 8 };
    if descriptor & 0x7C != 0 || count * entry_len + footer_len != payload.len() {
        return Err(bad(
            format!(
                "seek table footer (frame count {count}, descriptor `{descriptor:#04X}`) does \
                 not fit its {payload_len} bytes"
            ),
            file_len - SEEK_FOOTER_LEN,
        ));
    }
    if count != frames.len() {
        return Err(bad(
            format!(
                "the seek table lists {count} frames, the file has {}",
                frames.len()
            ),
            seek_offset,
        ));
    }
    for (i, (f, e)) in frames
        .iter()
        .zip(payload.chunks_exact(entry_len))
        .enumerate()
    {
        let (c, d) = (u64::from(le32(e)), u64::from(le32(&e[4..])));
        if c != f.compressed_size || d != f.decompressed_size {
            let mut err = bad(
                format!(
                    "the seek table says frame {i} has {c} compressed and {d} decompressed \
                     bytes, the frame at byte offset {} has {} and {}",
                    f.compressed_offset, f.compressed_size, f.decompressed_size
                ),
                seek_offset + (hdr + i * entry_len) as u64,
            );
            err.tar_offset = Some(f.decompressed_offset);
            return Err(err);
        }
    }
    Ok(())
}
