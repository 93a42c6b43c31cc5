//! The frame index and entry table (`FrameIndex::read_from`, `read_entry`): what is written
//! reads back equal; anything else is refused or, read through, never passes for a blob it
//! is not; nothing panics, and declared sizes and counts never allocate beyond the file.

use std::io::Write as _;

use airlock_layout::{read_entry, Digest, EntryInfo, FrameIndex};
use proptest::prelude::*;

use super::{cases, signed, write, LAYER};

/// Skippable frame magics of the entry table and the seek table, and the seekable magic
/// (docs/bundle-format.md).
const ENTRY_TABLE_MAGIC: u32 = 0x184D_2A5A;
const SEEK_TABLE_MAGIC: u32 = 0x184D_2A5E;
const SEEKABLE_MAGIC: u32 = 0x8F92_EAB1;

fn file_of(bytes: &[u8]) -> std::fs::File {
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(bytes).unwrap();
    f
}

/// Reads every entry through `index`; a blob read must be the blob its path names.
fn read_all(bytes: &[u8], index: &FrameIndex) -> Result<(), TestCaseError> {
    let mut f = file_of(bytes);
    for e in &index.entries {
        if let Ok(data) = read_entry(&mut f, index, &e.path) {
            prop_assert_eq!(data.len() as u64, e.size);
            if let Some(hex) = e.path.strip_prefix("blobs/sha256/") {
                if Digest::of_bytes(&data).hex() == hex {
                    // The only way to pass a blob check is its real content.
                    prop_assert!(signed_blob(hex).is_none_or(|b| b == data));
                }
            }
        }
    }
    Ok(())
}

/// The content of a blob of the shared signed bundle, read through its (valid) index.
fn signed_blob(hex: &str) -> Option<Vec<u8>> {
    let s = signed();
    let mut f = file_of(&s.file);
    let index = FrameIndex::read_from(&mut f).ok()?;
    read_entry(&mut f, &index, &format!("blobs/sha256/{hex}")).ok()
}

/// A tail of an entry table and a seek table after `data`.
fn with_tail(
    data: &[u8],
    entries: &[EntryInfo],
    frames: &[(u32, u32)],
    count_delta: i64,
) -> Vec<u8> {
    let json = serde_json::to_vec(&serde_json::json!({"version": 1, "entries": entries})).unwrap();
    let mut out = data.to_vec();
    out.extend(ENTRY_TABLE_MAGIC.to_le_bytes());
    out.extend((json.len() as u32).to_le_bytes());
    out.extend(&json);
    out.extend(SEEK_TABLE_MAGIC.to_le_bytes());
    out.extend(((frames.len() * 8 + 9) as u32).to_le_bytes());
    for (c, d) in frames {
        out.extend(c.to_le_bytes());
        out.extend(d.to_le_bytes());
    }
    out.extend(((frames.len() as i64 + count_delta) as u32).to_le_bytes());
    out.push(0);
    out.extend(SEEKABLE_MAGIC.to_le_bytes());
    out
}

fn entry_strategy() -> impl Strategy<Value = EntryInfo> {
    (
        prop_oneof![
            Just("index.json".to_owned()),
            Just("oci-layout".to_owned()),
            any::<[u8; 4]>().prop_map(|b| Digest::of_bytes(&b).blob_path()),
            any::<String>(),
        ],
        prop_oneof![0..5000u64, any::<u64>(), Just(u64::MAX - 511)],
        prop_oneof![0..5000u64, any::<u64>(), Just(u64::MAX)],
    )
        .prop_map(|(path, offset, size)| EntryInfo { path, offset, size })
}

proptest! {
    #![proptest_config(cases(64))]

    /// An index written with a bundle reads back as exactly its tar entries and frames, and
    /// every entry reads back as what was written.
    #[test]
    fn prop_index_round_trips(
        layers in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..6000), 1..4),
        frame_size in 512..5000usize,
    ) {
        let blobs: Vec<(Vec<u8>, &str)> = layers.iter().map(|l| (l.clone(), LAYER)).collect();
        let file = write(b"{}", None, b"{}", &blobs, frame_size);
        let mut f = file_of(&file);
        let index = FrameIndex::read_from(&mut f).unwrap();
        prop_assert_eq!(&FrameIndex::read_from(&mut f).unwrap(), &index);

        // The entries are the tar's, at the same offsets and sizes.
        let tar = zstd::decode_all(&file[..]).unwrap();
        prop_assert_eq!(index.tar_len(), tar.len() as u64);
        let mut archive = tar::Archive::new(&tar[..]);
        let from_tar: Vec<EntryInfo> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                EntryInfo {
                    path: e.path().unwrap().to_string_lossy().into_owned(),
                    offset: e.raw_header_position(),
                    size: e.size(),
                }
            })
            .collect();
        prop_assert_eq!(&index.entries, &from_tar);

        // Frames tile the data, none larger than asked (but the end blocks' own frame).
        let mut at = (0, 0);
        let (last, data_frames) = index.frames.split_last().unwrap();
        prop_assert_eq!(last.decompressed_size, 1024);
        for fr in data_frames {
            prop_assert!(fr.decompressed_size <= frame_size as u64);
        }
        for fr in &index.frames {
            prop_assert_eq!((fr.compressed_offset, fr.decompressed_offset), at);
            at = (at.0 + fr.compressed_size, at.1 + fr.decompressed_size);
        }
        for (data, _) in &blobs {
            let path = Digest::of_bytes(data).blob_path();
            prop_assert_eq!(&read_entry(&mut f, &index, &path).unwrap(), data);
        }
    }
}

proptest! {
    #![proptest_config(cases(256))]

    /// Any byte of a valid bundle changed: its index is refused, or what it locates is
    /// read or refused without panicking, and never passes for another blob.
    #[test]
    fn prop_mutated_index_never_misleads(at in any::<prop::sample::Index>(), xor in 1..=255u8, in_tail in any::<bool>()) {
        let s = signed();
        let mut f = file_of(&s.file);
        let good = FrameIndex::read_from(&mut f).unwrap();
        let tail = good.frames.last().map_or(0, |fr| fr.compressed_offset + fr.compressed_size) as usize;
        let mut bad = s.file.clone();
        let at = if in_tail { tail + at.index(bad.len() - tail) } else { at.index(bad.len()) };
        bad[at] ^= xor;
        if let Ok(index) = FrameIndex::read_from(&mut file_of(&bad)) {
            read_all(&bad, &index)?;
        }
    }

    /// An entry table and seek table with any entries and frame sizes after any data:
    /// refused or consistent, never a panic or an allocation the file does not back.
    #[test]
    fn prop_crafted_index_never_panics(
        data in prop::collection::vec(any::<u8>(), 0..2048),
        entries in prop::collection::vec(entry_strategy(), 0..5),
        frames in prop::collection::vec(
            (prop_oneof![0..600u32, any::<u32>()], prop_oneof![0..3000u32, any::<u32>()]),
            0..6,
        ),
        count_delta in prop_oneof![Just(0i64), -2..3i64],
    ) {
        let bytes = with_tail(&data, &entries, &frames, count_delta);
        if let Ok(index) = FrameIndex::read_from(&mut file_of(&bytes)) {
            // What was accepted is consistent: entries inside the tar, in order.
            let mut end = 0;
            for e in &index.entries {
                prop_assert!(e.offset >= end);
                end = e.offset + 512 + e.size;
                prop_assert!(end <= index.tar_len());
            }
            read_all(&bytes, &index)?;
        }
    }

    /// Any bytes: refused (or read) without panicking.
    #[test]
    fn prop_arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        if let Ok(index) = FrameIndex::read_from(&mut file_of(&bytes)) {
            read_all(&bytes, &index)?;
        }
    }
}
