//! Fixtures for the tests of bundle readers, here and in the crates built on them (through
//! the `testing` feature): a bundle of one blob, and bytes zstd cannot shrink; bundles with
//! artifacts ([`artifacts`]) and with a chart and files ([`content`]).

use std::path::PathBuf;

pub mod artifacts;
pub mod content;
pub mod delta;

pub use tempfile::TempDir;

use crate::archive::{write_bundle, ArchiveOptions, BundleContents};
use crate::digest::Digest;
use crate::manifest::BlobRecord;
use crate::media;
use crate::store::BlobStore;

/// A bundle file holding `blob` (as an uncompressed layer) in frames of `frame_size`, in a
/// temporary directory that lives as long as the returned [`TempDir`].
pub fn one_blob_bundle(blob: &[u8], frame_size: usize) -> (TempDir, PathBuf, BlobRecord) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path().join("cache")).unwrap();
    let digest = Digest::of_bytes(blob);
    store.put_bytes(&digest, blob).unwrap();
    let out = dir.path().join("b.tar.zst");
    let record = BlobRecord {
        digest,
        size: blob.len() as u64,
        media_type: media::OCI_LAYER.into(),
    };
    let contents = BundleContents {
        manifest_json: b"{}",
        signature: None,
        index_json: b"{}",
        blobs: std::slice::from_ref(&record),
        store: &store,
        gate: None,
    };
    let opts = ArchiveOptions {
        frame_size,
        ..ArchiveOptions::default()
    };
    write_bundle(&out, &contents, &opts).unwrap();
    (dir, out, record)
}

/// Deterministic bytes zstd cannot shrink (stored as raw blocks).
pub fn noise(n: usize) -> Vec<u8> {
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
