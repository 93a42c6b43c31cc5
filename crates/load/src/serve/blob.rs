//! One blob as served: where it is, whether its digest was checked, and the byte streams.
//!
//! The first full read of a blob goes through [`BundleSource::stream`], which hashes every
//! byte and withholds the last chunk until the digest matched; its end marks the blob
//! verified, its error marks it bad. Verified blobs (and ranges of them) are decoded without
//! hashing, only the frames the range needs, and handed out as slices of the decoded frames.

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};

use airlock_layout::{BlobRecord, FrameIndex};
use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};

use crate::source::BundleSource;

/// Bytes decoded at once and handed to the connection as one chunk.
const CHUNK: usize = 256 << 10;
/// Chunks in flight between a decoding thread and its connection.
const IN_FLIGHT: usize = 4;

/// Whether a blob's bytes were checked against its signed digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobState {
    /// Not yet served in full.
    Unverified,
    /// Hashed to its digest once; served without hashing from now on.
    Verified,
    /// Did not hash to its digest (or could not be decoded): never served.
    Bad,
}

/// A blob of a bundle.
pub(crate) struct Blob {
    pub(crate) record: BlobRecord,
    source: BundleSource,
    /// Indexes, manifests and configs: read and checked at start-up.
    pub(crate) small: Option<Bytes>,
    state: AtomicU8,
    reason: OnceLock<String>,
    /// Held while a range request verifies the whole blob first, so that one pass does it.
    verifying: Mutex<()>,
}

impl Blob {
    pub(crate) fn new(record: BlobRecord, source: BundleSource, small: Option<Bytes>) -> Blob {
        let state = if small.is_some() {
            BlobState::Verified
        } else {
            BlobState::Unverified
        };
        Blob {
            record,
            source,
            small,
            state: AtomicU8::new(state as u8),
            reason: OnceLock::new(),
            verifying: Mutex::new(()),
        }
    }

    pub(crate) fn state(&self) -> BlobState {
        match self.state.load(Ordering::Acquire) {
            0 => BlobState::Unverified,
            1 => BlobState::Verified,
            _ => BlobState::Bad,
        }
    }

    /// Why the blob is bad.
    pub(crate) fn reason(&self) -> &str {
        self.reason.get().map_or("", String::as_str)
    }

    pub(crate) fn bundle(&self) -> &std::path::Path {
        &self.source.path
    }

    fn mark_verified(&self) {
        let _ = self.state.compare_exchange(
            BlobState::Unverified as u8,
            BlobState::Verified as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// Marks the blob bad; true the first time.
    fn mark_bad(&self, reason: String) -> bool {
        let _ = self.reason.set(reason);
        self.state.swap(BlobState::Bad as u8, Ordering::AcqRel) != BlobState::Bad as u8
    }

    /// The whole blob, hashed while it streams; the last chunk only after the digest matched.
    /// `on_bad` is called once if this read finds the blob bad.
    pub(crate) fn verifying_stream(
        self: &Arc<Self>,
        permit: OwnedSemaphorePermit,
        on_bad: impl FnOnce(&str) + Send + 'static,
    ) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
        let inner = self
            .source
            .stream(&self.record.digest, self.record.size, 0, None);
        let blob = self.clone();
        let mut on_bad = Some(on_bad);
        let mut sent = 0u64;
        inner.map(move |item| {
            let _held = &permit;
            match &item {
                Ok(b) => {
                    sent += b.len() as u64;
                    if sent == blob.record.size {
                        blob.mark_verified();
                    }
                }
                Err(e) => {
                    if blob.mark_bad(e.to_string()) {
                        if let Some(f) = on_bad.take() {
                            f(blob.reason());
                        }
                    }
                }
            }
            item
        })
    }

    /// Reads the whole blob once, hashing it, without sending it anywhere (a range of an
    /// unverified blob is served only after this).
    pub(crate) async fn verify(
        self: &Arc<Self>,
        readers: &Arc<Semaphore>,
        on_bad: impl FnOnce(&str) + Send + 'static,
    ) -> BlobState {
        let _one = self.verifying.lock().await;
        if self.state() != BlobState::Unverified {
            return self.state();
        }
        let permit = readers.clone().acquire_owned().await.expect("never closed");
        let mut s = std::pin::pin!(self.verifying_stream(permit, on_bad));
        while let Some(item) = s.next().await {
            if item.is_err() {
                break;
            }
        }
        self.state()
    }

    /// Bytes `start..end` of a blob, decoding only the frames that hold them, not hashed:
    /// for verified blobs only.
    pub(crate) fn range_stream(
        &self,
        start: u64,
        end: u64,
        permit: OwnedSemaphorePermit,
    ) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(IN_FLIGHT);
        let (path, index) = (self.source.path.clone(), self.source.index.clone());
        let blob_path = self.record.digest.blob_path();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let send = |chunk: Bytes| tx.blocking_send(Ok(chunk)).is_ok();
            if let Err(e) = send_range(&path, &index, &blob_path, start, end, send) {
                let _ = tx.blocking_send(Err(e));
            }
        });
        futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
    }
}

/// Decodes the frames that hold bytes `start..end` of the entry `entry_path` and hands them
/// to `send` as slices of each decoded frame (no copy); stops early when `send` says the
/// receiver is gone.
fn send_range(
    path: &std::path::Path,
    index: &FrameIndex,
    entry_path: &str,
    start: u64,
    end: u64,
    mut send: impl FnMut(Bytes) -> bool,
) -> io::Result<()> {
    use std::os::unix::fs::FileExt as _;
    let entry = index.entry(entry_path).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("the bundle's frame index has no entry `{entry_path}`"),
        )
    })?;
    let (from, to) = (entry.data_offset() + start, entry.data_offset() + end);
    let first = index
        .frames
        .partition_point(|f| f.decompressed_offset + f.decompressed_size <= from);
    let last = index.frames.partition_point(|f| f.decompressed_offset < to);
    let file = File::open(path)?;
    let mut compressed = Vec::new();
    let mut decompressor = zstd::bulk::Decompressor::new()?;
    let mut sent = 0u64;
    for f in &index.frames[first..last.max(first)] {
        let bad = |what: String| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("frame at byte offset {}: {what}", f.compressed_offset),
            )
        };
        compressed.resize(f.compressed_size as usize, 0);
        file.read_exact_at(&mut compressed, f.compressed_offset)?;
        let mut out = Vec::with_capacity(f.decompressed_size as usize);
        decompressor
            .decompress_to_buffer(&compressed, &mut out)
            .map_err(|e| bad(e.to_string()))?;
        if out.len() as u64 != f.decompressed_size {
            return Err(bad(format!(
                "decodes to {} bytes, the seek table says {}",
                out.len(),
                f.decompressed_size
            )));
        }
        let frame = Bytes::from(out);
        let lo = from.saturating_sub(f.decompressed_offset) as usize;
        let hi = (to - f.decompressed_offset).min(f.decompressed_size) as usize;
        let mut at = lo;
        while at < hi {
            let n = (hi - at).min(CHUNK);
            if !send(frame.slice(at..at + n)) {
                return Ok(());
            }
            at += n;
            sent += n as u64;
        }
    }
    if sent != end - start {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the bundle's frames hold {sent} of the {} bytes asked for",
                end - start
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_layout::{write_bundle, ArchiveOptions, BlobStore, BundleContents, Digest};
    use std::path::PathBuf;

    fn bundle(blob: &[u8], frame_size: usize) -> (tempfile::TempDir, BundleSource, BlobRecord) {
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
            path: Arc::new(PathBuf::from(&out)),
            index: Arc::new(index),
        };
        (dir, src, record)
    }

    async fn collect(s: impl Stream<Item = io::Result<Bytes>>) -> (Vec<u8>, Option<io::Error>) {
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

    fn permit() -> OwnedSemaphorePermit {
        Arc::new(tokio::sync::Semaphore::new(1))
            .try_acquire_owned()
            .unwrap()
    }

    #[tokio::test]
    async fn ranges_decode_only_their_frames_and_match() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let (_d, src, record) = bundle(&data, 10_000);
        let blob = Arc::new(Blob::new(record, src, None));
        for (s, e) in [
            (0u64, 1u64),
            (0, 300_000),
            (9_000, 31_000),
            (299_999, 300_000),
            (123, 124),
        ] {
            let (got, err) = collect(blob.range_stream(s, e, permit())).await;
            assert!(err.is_none(), "{err:?}");
            assert_eq!(got, data[s as usize..e as usize], "{s}..{e}");
        }
    }

    #[tokio::test]
    async fn a_full_read_verifies_and_a_wrong_digest_marks_bad() {
        let data: Vec<u8> = (0..700_000u32).map(|i| (i % 13) as u8).collect();
        let (_d, src, record) = bundle(&data, 1 << 20);
        let blob = Arc::new(Blob::new(record.clone(), src.clone(), None));
        assert_eq!(blob.state(), BlobState::Unverified);
        let (got, err) = collect(blob.verifying_stream(permit(), |_| {})).await;
        assert!(err.is_none());
        assert_eq!(got, data);
        assert_eq!(blob.state(), BlobState::Verified);

        // The manifest says another digest: the same bytes are refused before their end.
        let wrong = Digest::of_bytes(b"other");
        let mut index = (*src.index).clone();
        for e in &mut index.entries {
            if e.path == record.digest.blob_path() {
                e.path = wrong.blob_path();
            }
        }
        let src = BundleSource {
            path: src.path.clone(),
            index: Arc::new(index),
        };
        let bad = Arc::new(Blob::new(
            BlobRecord {
                digest: wrong,
                ..record
            },
            src,
            None,
        ));
        let told = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let t = told.clone();
        let readers = Arc::new(Semaphore::new(1));
        let state = bad
            .verify(&readers, move |_| {
                t.fetch_add(1, Ordering::SeqCst);
            })
            .await;
        assert_eq!(state, BlobState::Bad);
        assert_eq!(told.load(Ordering::SeqCst), 1);
        assert!(
            bad.reason().contains("not to the digest"),
            "{}",
            bad.reason()
        );
        let (got, err) = collect(bad.verifying_stream(permit(), |_| {})).await;
        assert!(err.is_some() && got.len() < data.len());
    }
}
