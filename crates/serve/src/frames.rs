//! The frame reading serve uses: layout's bundle reader ([`airlock_layout::reader::frames`]).

pub(crate) use airlock_layout::reader::frames::{read_range, Buffers, EntryRange, FrameReader};

/// Deterministic bytes zstd cannot shrink (stored as raw blocks), for tests.
#[cfg(test)]
pub(crate) fn noise(n: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
