//! A one-blob bundle and a stream collector, for the tests of the readers.

use std::fs::File;
use std::io;
use std::sync::Arc;

use airlock_layout::{
    write_bundle, ArchiveOptions, BlobRecord, BlobStore, BundleContents, Digest, FrameIndex,
};
use airlock_load::source::BundleSource;
use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};

/// A bundle holding `blob` (as an uncompressed layer) in frames of `frame_size`.
pub(crate) fn one_blob_bundle(
    blob: &[u8],
    frame_size: usize,
) -> (tempfile::TempDir, BundleSource, BlobRecord) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path().join("cache")).unwrap();
    let digest = Digest::of_bytes(blob);
    store.put_bytes(&digest, blob).unwrap();
    let out = dir.path().join("b.tar.zst");
    let record = BlobRecord {
        digest,
        size: blob.len() as u64,
        media_type: "application/vnd.oci.image.layer.v1.tar".into(),
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
    let index = FrameIndex::read_from(&mut File::open(&out).unwrap()).unwrap();
    let src = BundleSource {
        path: Arc::new(out),
        index: Arc::new(index),
    };
    (dir, src, record)
}

/// Every chunk of `s`, and the error that ended it, if one did.
pub(crate) async fn collect(
    s: impl Stream<Item = io::Result<Bytes>>,
) -> (Vec<u8>, Option<io::Error>) {
    let mut out = Vec::new();
    let mut s = std::pin::pin!(s);
    while let Some(item) = s.next().await {
        match item {
            Ok(b) => out.extend_from_slice(&b),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}
