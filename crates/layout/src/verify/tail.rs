//! The last check of [`verify_bundle`](super::verify_bundle): the trailing entry table and seek
//! table describe exactly the entries and frames that were streamed.

use super::report::{VerifyError, VerifyErrorKind};
use crate::format::{ENTRY_TABLE_VERSION, SEEKABLE_MAGIC, SEEK_FOOTER_LEN, SKIPPABLE_HEADER_LEN};
use crate::reader::index::{
    parse_entry_table_frame, parse_seek_table_frame, EntryInfo, FrameInfo, TailDefect,
};

/// A defect of the trailing index as `verify` reports it: a file cut short, or an index that
/// does not match; `frame_at` is the file offset of the table's frame.
fn tail_error(defect: TailDefect, frame_at: u64, file_len: u64) -> VerifyError {
    let truncated = |what: String| {
        VerifyError::new(VerifyErrorKind::Truncated { file_len, what }).at(None, Some(frame_at))
    };
    let bad = |reason: String, at: u64| {
        VerifyError::new(VerifyErrorKind::FrameIndex { reason }).at(None, Some(at))
    };
    match defect {
        TailDefect::ShortHeader { table } => {
            truncated(format!("inside the {}'s frame header", table.name()))
        }
        TailDefect::BadMagic { table, found } => bad(
            format!(
                "expected the {} (magic `{:#010X}`), found magic `{found:#010X}`",
                table.name(),
                table.magic()
            ),
            frame_at,
        ),
        TailDefect::Cut { table, .. } => truncated(format!("inside the {}", table.name())),
        TailDefect::EntryTableJson(e) => bad(format!("unreadable entry table: {e}"), frame_at),
        TailDefect::EntryTableVersion { found } => bad(
            format!("entry table version {found}, expected {ENTRY_TABLE_VERSION}"),
            frame_at,
        ),
        TailDefect::NoSeekTable => truncated("the seek table is missing".to_owned()),
        TailDefect::AfterSeekTable { after } => bad(
            format!("{after} bytes follow the seek table"),
            file_len - after,
        ),
        TailDefect::NoRoomForFooter { len } => bad(
            format!("seek table of {len} bytes has no room for its footer"),
            frame_at,
        ),
        TailDefect::NoSeekableMagic { found } => bad(
            format!("no seekable magic `{SEEKABLE_MAGIC:#010X}` at the end, found `{found:#010X}`"),
            file_len - 4,
        ),
        TailDefect::ReservedBits { count, descriptor }
        | TailDefect::FooterMismatch {
            count, descriptor, ..
        } => {
            let len = match defect {
                TailDefect::FooterMismatch { len, .. } => len,
                _ => file_len - frame_at - SKIPPABLE_HEADER_LEN,
            };
            bad(
                format!(
                    "seek table footer (frame count {count}, descriptor `{descriptor:#04X}`) \
                     does not fit its {len} bytes"
                ),
                file_len - SEEK_FOOTER_LEN,
            )
        }
    }
}

/// The entry table and the seek table after the data frames describe exactly what was read.
pub(super) fn check_index(
    frames: &[FrameInfo],
    entries: &[EntryInfo],
    tail: &[u8],
    tail_offset: u64,
) -> Result<(), VerifyError> {
    let file_len = tail_offset + tail.len() as u64;
    let bad = |reason: String, at: u64| {
        VerifyError::new(VerifyErrorKind::FrameIndex { reason }).at(None, Some(at))
    };
    if tail.is_empty() {
        return Err(VerifyError::new(VerifyErrorKind::NoFrameIndex).at(None, Some(tail_offset)));
    }

    // The entry table.
    let (listed, table_len) = parse_entry_table_frame(tail)
        .map_err(|defect| tail_error(defect, tail_offset, file_len))?;
    for i in 0..listed.len().max(entries.len()) {
        let describe = |e: Option<&EntryInfo>| match e {
            Some(e) => format!(
                "`{}` at tar offset {} with {} bytes",
                e.path, e.offset, e.size
            ),
            None => "nothing".to_owned(),
        };
        let (listed, actual) = (listed.get(i), entries.get(i));
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
    let seek_offset = tail_offset + table_len as u64;
    let sizes = parse_seek_table_frame(&tail[table_len..])
        .map_err(|defect| tail_error(defect, seek_offset, file_len))?;
    if sizes.len() != frames.len() {
        return Err(bad(
            format!(
                "the seek table lists {} frames, the file has {}",
                sizes.len(),
                frames.len()
            ),
            seek_offset,
        ));
    }
    let entry_len = (file_len - seek_offset - SKIPPABLE_HEADER_LEN - SEEK_FOOTER_LEN)
        .checked_div(sizes.len() as u64)
        .unwrap_or(0);
    for (i, (f, &(c, d))) in frames.iter().zip(&sizes).enumerate() {
        if c != f.compressed_size || d != f.decompressed_size {
            let mut err = bad(
                format!(
                    "the seek table says frame {i} has {c} compressed and {d} decompressed \
                     bytes, the frame at byte offset {} has {} and {}",
                    f.compressed_offset, f.compressed_size, f.decompressed_size
                ),
                seek_offset + SKIPPABLE_HEADER_LEN + i as u64 * entry_len,
            );
            err.tar_offset = Some(f.decompressed_offset);
            return Err(err);
        }
    }
    Ok(())
}
