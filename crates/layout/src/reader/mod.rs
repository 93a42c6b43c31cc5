//! Reading a bundle file: one room for every reader of the offline side (`airlock load`,
//! `inspect`, `serve`, and the tar header checks of `verify`).
//!
//! - [`head`]: the manifest, signature and small blobs at the front, read without decoding
//!   the rest;
//! - [`index`]: the trailing frame index (seek table and entry table) and its one parser;
//! - [`entries`]: one entry's data, streamed through the index;
//! - [`frames`]: the frames a byte range of an entry needs, raw zstd blocks handed out as
//!   slices of one read;
//! - [`header`]: the tar header parser all of them (and `verify`) share.
//!
//! Nothing here is a root of trust: the index and the head are not signed, and callers check
//! the signature and every blob's digest.

pub mod entries;
pub mod frames;
pub mod head;
pub mod header;
pub mod index;

pub use entries::{open_entry, open_entry_owned, read_entry, EntryReader, ReadSeek};
pub use frames::{read_range, Buffers, EntryRange, FrameReader};
pub use head::{read_head, BundleHead, ImageSize};
pub use header::{check_entry_header, EntryHeaderMismatch, TarHeaderDefect};
pub use index::{EntryInfo, FrameIndex, FrameInfo};
