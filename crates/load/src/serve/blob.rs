//! One blob as served: where it is, whether its digest was checked, and the byte streams.
//!
//! A blob's digest is checked once, by one pass over its bytes that no client paces
//! ([`Blob::check`]): the first request for it starts the pass, later ones join it. A full
//! read of a blob whose check is still running streams at once but withholds its last chunk
//! until the check passed, so a damaged blob is never delivered whole; a range of such a blob
//! waits for the check. Bytes come from [`frames`](super::frames): zstd raw blocks are handed
//! out as slices of one read of the file, other frames are decoded.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use airlock_layout::{BlobRecord, Hasher};
use bytes::Bytes;
use futures_util::future::{BoxFuture, FutureExt as _, Shared};
use futures_util::Stream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::frames::{read_range, Buffers, FrameReader};
use crate::source::BundleSource;

/// Batches of slices (about one frame each) in flight between a reading thread and its
/// connection.
const IN_FLIGHT: usize = 1;

/// Whether a blob's bytes were checked against its signed digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobState {
    /// Not yet checked in full.
    Unverified,
    /// Hashed to its digest once; served without hashing from now on.
    Verified,
    /// Did not hash to its digest (or could not be decoded): never served.
    Bad,
}

/// What the blobs of the served bundles share: the frame buffers and the permits of the
/// checking passes (apart from the connections' read permits, which a connection holds while
/// it waits for a check).
pub(crate) struct Reading {
    pub(crate) buffers: Arc<Buffers>,
    pub(crate) checkers: Arc<Semaphore>,
}

impl Reading {
    /// For `readers` connections reading at once and `checkers` checking passes.
    pub(crate) fn new(readers: usize, checkers: usize) -> Arc<Reading> {
        Arc::new(Reading {
            // A reader holds about three frames (one being read, one queued, one being
            // written), a checking pass one.
            buffers: Buffers::new(readers * 3 + checkers),
            checkers: Arc::new(Semaphore::new(checkers.max(1))),
        })
    }
}

/// The outcome of a blob's one checking pass, awaited by every request that needs it.
pub(crate) type Check = Shared<BoxFuture<'static, BlobState>>;

/// A blob of a bundle.
pub(crate) struct Blob {
    pub(crate) record: BlobRecord,
    source: BundleSource,
    reading: Arc<Reading>,
    /// Indexes, manifests and configs: read and checked at start-up.
    pub(crate) small: Option<Bytes>,
    state: AtomicU8,
    reason: OnceLock<String>,
    /// The checking pass, once started.
    check: Mutex<Option<Check>>,
}

impl Blob {
    pub(crate) fn new(
        record: BlobRecord,
        source: BundleSource,
        reading: Arc<Reading>,
        small: Option<Bytes>,
    ) -> Blob {
        let state = if small.is_some() {
            BlobState::Verified
        } else {
            BlobState::Unverified
        };
        Blob {
            record,
            source,
            reading,
            small,
            state: AtomicU8::new(state as u8),
            reason: OnceLock::new(),
            check: Mutex::new(None),
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

    /// The checking pass of this blob: started by the first call (which gives `on_bad`, called
    /// once if the blob turns out bad), joined by later ones. It runs to its end even when
    /// nobody waits for it any more.
    pub(crate) fn check(self: &Arc<Self>, on_bad: impl FnOnce(&str) + Send + 'static) -> Check {
        let mut slot = self.check.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(check) = &*slot {
            return check.clone();
        }
        let blob = self.clone();
        let pass = tokio::spawn(async move {
            if blob.state() != BlobState::Unverified {
                return blob.state();
            }
            let checkers = blob.reading.checkers.clone();
            let permit = checkers.acquire_owned().await.expect("never closed");
            let b = blob.clone();
            let outcome = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                b.hash_all()
            })
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e.to_string())));
            match outcome {
                Ok(()) => {
                    let _ = blob.state.compare_exchange(
                        BlobState::Unverified as u8,
                        BlobState::Verified as u8,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    );
                }
                Err(e) => {
                    let _ = blob.reason.set(e.to_string());
                    blob.state.store(BlobState::Bad as u8, Ordering::Release);
                    on_bad(blob.reason());
                }
            }
            blob.state()
        });
        let check = async move { pass.await.unwrap_or(BlobState::Bad) }
            .boxed()
            .shared();
        *slot = Some(check.clone());
        check
    }

    /// Reads the whole blob through the frame index and compares its length and digest with
    /// the signed manifest's.
    fn hash_all(&self) -> io::Result<()> {
        let path = self.record.digest.blob_path();
        let listed = self.source.index.entry(&path).map(|e| e.size);
        if listed != Some(self.record.size) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                match listed {
                    Some(n) => format!(
                        "the bundle's frame index says {n} bytes, the signed manifest {}",
                        self.record.size
                    ),
                    None => format!("the bundle's frame index has no entry `{path}`"),
                },
            ));
        }
        let mut reader = FrameReader::open(&self.source.path, &self.reading.buffers)?;
        let mut hasher = Hasher::new();
        let mut read = 0u64;
        read_range(
            &mut reader,
            &self.source.index,
            &path,
            0,
            self.record.size,
            |pieces| {
                for p in &pieces {
                    hasher.update(p);
                    read += p.len() as u64;
                }
                true
            },
        )?;
        let actual = hasher.finish();
        if actual != self.record.digest {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the bytes read from the bundle ({read} bytes) hash to `{actual}`, not to \
                     the digest the signed manifest lists (the bundle is damaged or was \
                     tampered with)"
                ),
            ));
        }
        Ok(())
    }

    /// Bytes `start..end` of the blob, reading only the frames that hold them, not hashed.
    /// With `check` (a blob not verified yet), the last chunk waits for the check and is
    /// replaced by an error if it fails.
    pub(crate) fn stream(
        self: &Arc<Self>,
        start: u64,
        end: u64,
        permit: OwnedSemaphorePermit,
        check: Option<Check>,
    ) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Vec<Bytes>>>(IN_FLIGHT);
        let blob = self.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let result = FrameReader::open(&blob.source.path, &blob.reading.buffers).and_then(
                |mut reader| {
                    read_range(
                        &mut reader,
                        &blob.source.index,
                        &blob.record.digest.blob_path(),
                        start,
                        end,
                        |pieces| tx.blocking_send(Ok(pieces)).is_ok(),
                    )
                },
            );
            if let Err(e) = result {
                let _ = tx.blocking_send(Err(e));
            }
        });
        struct Flow {
            rx: tokio::sync::mpsc::Receiver<io::Result<Vec<Bytes>>>,
            queue: VecDeque<Bytes>,
            left: u64,
            check: Option<Check>,
            blob: Arc<Blob>,
            done: bool,
        }
        let flow = Flow {
            rx,
            queue: VecDeque::new(),
            left: end - start,
            check,
            blob: self.clone(),
            done: false,
        };
        futures_util::stream::unfold(flow, |mut flow| async move {
            if flow.done {
                return None;
            }
            loop {
                if let Some(piece) = flow.queue.pop_front() {
                    flow.left = flow.left.saturating_sub(piece.len() as u64);
                    if flow.left == 0 {
                        if let Some(check) = flow.check.take() {
                            if check.await != BlobState::Verified {
                                flow.done = true;
                                let e = io::Error::new(
                                    io::ErrorKind::InvalidData,
                                    flow.blob.reason().to_owned(),
                                );
                                return Some((Err(e), flow));
                            }
                        }
                    }
                    return Some((Ok(piece), flow));
                }
                match flow.rx.recv().await {
                    Some(Ok(pieces)) => flow.queue.extend(pieces),
                    Some(Err(e)) => {
                        flow.done = true;
                        return Some((Err(e), flow));
                    }
                    None => return None,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::testing::{collect, one_blob_bundle as bundle};
    use airlock_layout::Digest;

    fn permit() -> OwnedSemaphorePermit {
        Arc::new(tokio::sync::Semaphore::new(1))
            .try_acquire_owned()
            .unwrap()
    }

    fn blob(record: BlobRecord, src: BundleSource) -> Arc<Blob> {
        Arc::new(Blob::new(record, src, Reading::new(1, 1), None))
    }

    #[tokio::test]
    async fn ranges_read_only_their_frames_and_match() {
        // Compressible bytes (decoded frames) and noise (raw blocks read in place).
        let mut x = 1u32;
        let data: Vec<u8> = (0..300_000u32)
            .map(|i| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                if i < 150_000 {
                    (i % 251) as u8
                } else {
                    (x >> 24) as u8
                }
            })
            .collect();
        let (_d, src, record) = bundle(&data, 10_000);
        let blob = blob(record, src);
        for (s, e) in [
            (0u64, 1u64),
            (0, 300_000),
            (9_000, 31_000),
            (149_000, 151_000),
            (299_999, 300_000),
            (123, 124),
            (200_001, 270_000),
        ] {
            let (got, err) = collect(blob.stream(s, e, permit(), None)).await;
            assert!(err.is_none(), "{err:?}");
            assert_eq!(got, data[s as usize..e as usize], "{s}..{e}");
        }
    }

    #[tokio::test]
    async fn one_check_verifies_and_a_wrong_digest_marks_bad_and_withholds_the_end() {
        let data: Vec<u8> = (0..700_000u32).map(|i| (i % 13) as u8).collect();
        let (_d, src, record) = bundle(&data, 1 << 20);
        let good = blob(record.clone(), src.clone());
        assert_eq!(good.state(), BlobState::Unverified);
        let check = good.check(|_| panic!("the blob is good"));
        let (got, err) = collect(good.stream(0, record.size, permit(), Some(check))).await;
        assert!(err.is_none());
        assert_eq!(got, data);
        assert_eq!(good.state(), BlobState::Verified);

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
        let bad = blob(
            BlobRecord {
                digest: wrong,
                ..record
            },
            src,
        );
        let told = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let t = told.clone();
        let first = bad.check(move |_| {
            t.fetch_add(1, Ordering::SeqCst);
        });
        // Joining requests get the same pass: their `on_bad` is never called.
        let joined = bad.check(|_| panic!("only the first caller is told"));
        let (got, err) = collect(bad.stream(0, data.len() as u64, permit(), Some(joined))).await;
        assert!(err.is_some() && got.len() < data.len());
        assert_eq!(first.await, BlobState::Bad);
        assert_eq!(told.load(Ordering::SeqCst), 1);
        assert!(
            bad.reason().contains("not to the digest"),
            "{}",
            bad.reason()
        );
    }

    #[tokio::test]
    async fn a_byte_changed_inside_a_raw_block_is_found_by_the_check() {
        let data = crate::serve::frames::noise(600_000);
        let (_d, src, record) = bundle(&data, 1 << 18);
        // Raw blocks hold the blob verbatim: change one byte of it in the file, leaving the
        // zstd frame valid in shape (only its own checksum, which the raw path skips, differs).
        let mut file = std::fs::read(&*src.path).unwrap();
        let at = file
            .windows(64)
            .position(|w| w == &data[300_000..300_064])
            .expect("the blob's bytes stored verbatim");
        file[at] ^= 1;
        std::fs::write(&*src.path, &file).unwrap();
        let b = blob(record.clone(), src);
        let check = b.check(|_| {});
        let (got, err) = collect(b.stream(0, record.size, permit(), Some(check))).await;
        assert!(err.is_some() && got.len() < data.len(), "{err:?}");
        // What did go out is the file's bytes, as they are.
        assert_eq!(got[..300_000], data[..300_000]);
        assert_eq!(got[300_000], data[300_000] ^ 1);
        assert_eq!(b.state(), BlobState::Bad);
        assert!(b.reason().contains("not to the digest"), "{}", b.reason());
    }
}
