//! The frame reading serve uses: layout's bundle reader ([`airlock_layout::reader::frames`]).

pub(crate) use airlock_layout::reader::frames::{read_range, Buffers, EntryRange, FrameReader};
