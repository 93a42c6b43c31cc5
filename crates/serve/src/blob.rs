//! One blob as served: where it is, whether its digest was checked, and the byte streams.
//!
//! A blob's digest is checked once, by one pass over its bytes that no client paces
//! ([`Blob::check`]): the first request for it starts the pass, later ones join it. A full
//! read of a blob whose check is still running streams at once but withholds its last chunk
//! until the check passed, so a damaged blob is never delivered whole; a range of such a blob
//! waits for the check. Bytes come from [`frames`](super::frames): zstd raw blocks are handed
//! out as slices of one read of the file, other frames are decoded.
//!
//! A reading slot (a permit of [`Reading::readers`]) is held only while a frame is read from
//! the file, never while a connection's socket drains: a stream waits for room for its next
//! frame first, then for a slot, reads the frame, gives the slot back and hands the frame
//! over. A client that stops reading therefore costs its own frames, not a slot. Blobs up to
//! [`SMALL_BLOB`] bytes are read whole, and hashed when unchecked, before their response
//! starts: they never wait for a checking pass of a large blob.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use airlock_layout::{BlobRecord, Hasher};
use bytes::Bytes;
use futures_util::future::{BoxFuture, FutureExt as _, Shared};
use futures_util::Stream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::frames::{read_range, Buffers, EntryRange, FrameReader};
use airlock_load::source::BundleSource;

/// Batches of slices (about one frame each) in flight between a reading thread and its
/// connection.
const IN_FLIGHT: usize = 1;

/// Frames (4 MiB at most each) that streaming connections may hold together, per reading
/// slot: with the default four slots, 64 frames. A stream holds at most two (one queued, one
/// being handed to its socket), so that many clients pull at full speed at once; beyond that
/// a stream waits for a frame to be freed, holding nothing, and memory stays bounded however
/// many clients connect.
const FRAMES_HELD_PER_READER: usize = 16;

/// Blobs up to this size are read whole (and hashed, until checked once) before their
/// response starts, instead of streaming beside a checking pass.
pub(crate) const SMALL_BLOB: u64 = 1 << 20;

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

/// What the blobs of the served bundles share: the frame buffers, the reading slots of the
/// connections and the permits of the checking passes.
pub(crate) struct Reading {
    pub(crate) buffers: Arc<Buffers>,
    /// Frames read from the bundles at once for connections (`--jobs`).
    pub(crate) readers: Arc<Semaphore>,
    /// Frames held by all streaming connections together, read and not yet handed to the
    /// socket: what bounds serve's memory however many clients pull at once.
    pub(crate) held: Arc<Semaphore>,
    pub(crate) checkers: Arc<Semaphore>,
}

impl Reading {
    /// For `readers` frames read at once for connections and `checkers` checking passes.
    pub(crate) fn new(readers: usize, checkers: usize) -> Arc<Reading> {
        Arc::new(Reading {
            // A stream holds up to two frames (one queued, one being handed to its socket),
            // a checking pass one; buffers beyond these are freed, not kept.
            buffers: Buffers::new(readers * 3 + checkers),
            readers: Arc::new(Semaphore::new(readers.max(1))),
            held: Arc::new(Semaphore::new(readers.max(1) * FRAMES_HELD_PER_READER)),
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
    /// `entry_size`: the size of the blob's entry in the bundle's frame index, if it has one.
    pub(crate) fn new(
        record: BlobRecord,
        source: BundleSource,
        reading: Arc<Reading>,
        small: Option<Bytes>,
        entry_size: Option<u64>,
    ) -> Blob {
        let reason = OnceLock::new();
        let state = if small.is_some() {
            BlobState::Verified
        } else if let Some(problem) = entry_disagrees(&record, entry_size) {
            // Never served: its bytes could not be the signed ones, and a wrong size must not
            // reach a `Content-Length` (the catalog leaves such images out before this).
            let _ = reason.set(problem);
            BlobState::Bad
        } else {
            BlobState::Unverified
        };
        Blob {
            record,
            source,
            reading,
            small,
            state: AtomicU8::new(state as u8),
            reason,
            check: Mutex::new(None),
        }
    }

    /// Marks the blob bad for `reason`; true for the call that did (the one to report it).
    fn mark_bad(&self, reason: String) -> bool {
        let changed = self
            .state
            .compare_exchange(
                BlobState::Unverified as u8,
                BlobState::Bad as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok();
        if changed {
            let _ = self.reason.set(reason);
        }
        changed
    }

    /// The whole blob, read under a reading slot; hashed first while it is unchecked (on a
    /// mismatch it is marked bad, `on_bad` told, and `None` returned). For blobs up to
    /// [`SMALL_BLOB`] bytes.
    pub(crate) async fn read_whole(
        self: &Arc<Self>,
        on_bad: impl FnOnce(&str) + Send + 'static,
    ) -> Option<Bytes> {
        let b = self.clone();
        let read = blocking_under(&self.reading.readers, move || b.read_checked()).await;
        match read {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                if self.mark_bad(e.to_string()) {
                    on_bad(self.reason());
                }
                None
            }
        }
    }

    /// Reads the whole blob; while it is unchecked, hashes it and marks it verified on a match.
    fn read_checked(&self) -> io::Result<Bytes> {
        let mut reader = FrameReader::open(&self.source.path, &self.reading.buffers)?;
        let mut data = Vec::with_capacity(self.record.size as usize);
        read_range(
            &mut reader,
            &self.source.index,
            &self.record.digest.blob_path(),
            0,
            self.record.size,
            |pieces| {
                pieces.iter().for_each(|p| data.extend_from_slice(p));
                true
            },
        )?;
        if self.state() == BlobState::Unverified {
            let actual = airlock_layout::Digest::of_bytes(&data);
            if actual != self.record.digest {
                return Err(mismatch(data.len() as u64, &actual));
            }
            let _ = self.state.compare_exchange(
                BlobState::Unverified as u8,
                BlobState::Verified as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
        Ok(Bytes::from(data))
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
            let b = blob.clone();
            let outcome = blocking_under(&blob.reading.checkers, move || b.hash_all()).await;
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
                    if blob.mark_bad(e.to_string()) {
                        on_bad(blob.reason());
                    }
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
        if let Some(problem) = entry_disagrees(&self.record, listed) {
            return Err(io::Error::new(io::ErrorKind::InvalidData, problem));
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
            return Err(mismatch(read, &actual));
        }
        Ok(())
    }

    /// Bytes `start..end` of the blob, reading only the frames that hold them, not hashed.
    /// With `check` (a blob not verified yet), the last chunk waits for the check and is
    /// replaced by an error if it fails.
    ///
    /// Each frame is read under a reading slot, taken only once the connection has room for
    /// it and given back before it is handed over: a client that does not read holds no slot.
    pub(crate) fn stream(
        self: &Arc<Self>,
        start: u64,
        end: u64,
        check: Option<Check>,
    ) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
        type Batch = (Vec<Bytes>, OwnedSemaphorePermit);
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Batch>>(IN_FLIGHT);
        let blob = self.clone();
        tokio::spawn(async move {
            let path = blob.record.digest.blob_path();
            let mut range = match EntryRange::new(&blob.source.index, &path, start, end) {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            let mut reader: Option<FrameReader> = None;
            loop {
                // Room for the next frame first (the connection drained the last one), then a
                // slot: a client that does not read waits here, holding none.
                let Ok(room) = tx.reserve().await else {
                    return;
                };
                // Then a share of the memory all streams hold together (it travels with the
                // frame and is given back once the connection took all of it).
                let held = take(&blob.reading.held).await;
                let permit = take(&blob.reading.readers).await;
                let b = blob.clone();
                let job = tokio::task::spawn_blocking(move || {
                    let _permit = permit;
                    let next = match reader {
                        Some(ref mut r) => range.next_frame(r, &b.source.index),
                        None => FrameReader::open(&b.source.path, &b.reading.buffers)
                            .and_then(|r| range.next_frame(reader.insert(r), &b.source.index)),
                    };
                    (reader, range, next)
                })
                .await;
                match job {
                    Ok((r, g, Ok(Some(pieces)))) => {
                        (reader, range) = (r, g);
                        room.send(Ok((pieces, held)));
                    }
                    Ok((_, _, Ok(None))) => return,
                    Ok((_, _, Err(e))) => return room.send(Err(e)),
                    Err(e) => return room.send(Err(io::Error::other(e.to_string()))),
                }
            }
        });
        struct Flow {
            rx: tokio::sync::mpsc::Receiver<io::Result<Batch>>,
            queue: VecDeque<Bytes>,
            /// The share of [`Reading::held`] of the frame in `queue`.
            _held: Option<OwnedSemaphorePermit>,
            left: u64,
            check: Option<Check>,
            blob: Arc<Blob>,
            done: bool,
        }
        let flow = Flow {
            rx,
            queue: VecDeque::new(),
            _held: None,
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
                    Some(Ok((pieces, held))) => {
                        // The frame before was handed over whole: its share is given back.
                        flow.queue.extend(pieces);
                        flow._held = Some(held);
                    }
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

/// One permit of `limit` (these semaphores are never closed).
async fn take(limit: &Arc<Semaphore>) -> OwnedSemaphorePermit {
    limit.clone().acquire_owned().await.expect("never closed")
}

/// Runs `work` on a blocking thread while holding a permit of `limit`.
async fn blocking_under<T: Send + 'static>(
    limit: &Arc<Semaphore>,
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let permit = take(limit).await;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    })
    .await
    .unwrap_or_else(|e| Err(io::Error::other(e.to_string())))
}

/// What is wrong when the bundle's entry for the blob does not hold exactly the number of
/// bytes the signed manifest lists (bytes past the entry are never served).
pub(crate) fn entry_disagrees(record: &BlobRecord, entry_size: Option<u64>) -> Option<String> {
    let path = record.digest.blob_path();
    match entry_size {
        Some(n) if n == record.size => None,
        Some(n) => Some(format!(
            "the bundle's entry `{path}` holds {n} bytes, the signed manifest says {}",
            record.size
        )),
        None => Some(format!("the bundle's frame index has no entry `{path}`")),
    }
}

fn mismatch(read: u64, actual: &airlock_layout::Digest) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "the bytes read from the bundle ({read} bytes) hash to `{actual}`, not to the digest \
             the signed manifest lists (the bundle is damaged or was tampered with)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_layout::Digest;
    use airlock_load::source::testing::{collect, noise, one_blob_bundle as bundle};

    fn blob(record: BlobRecord, src: BundleSource) -> Arc<Blob> {
        let size = src.index.entry(&record.digest.blob_path()).map(|e| e.size);
        Arc::new(Blob::new(record, src, Reading::new(1, 1), None, size))
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
            let (got, err) = collect(blob.stream(s, e, None)).await;
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
        let (got, err) = collect(good.stream(0, record.size, Some(check))).await;
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
        let (got, err) = collect(bad.stream(0, data.len() as u64, Some(joined))).await;
        assert!(err.is_some() && got.len() < data.len());
        assert_eq!(first.await, BlobState::Bad);
        assert_eq!(told.load(Ordering::SeqCst), 1);
        // The entry's own tar header names the real digest: found before any hashing.
        assert!(
            bad.reason().contains("tar header") && bad.reason().contains(record.digest.hex()),
            "{}",
            bad.reason()
        );
    }

    // Regression (hardening: defect 7): bytes past a blob's tar entry were sent when the
    // sizes said so. A manifest size that disagrees with the entry marks the blob bad from
    // the start; an entry table stretched to agree with it is caught by the entry's own tar
    // header before a byte goes out, whole read or checking pass.
    #[tokio::test]
    async fn no_byte_outside_the_entry_is_sent_whatever_the_sizes_say() {
        let data = noise(300_000);
        let (_d, src, record) = bundle(&data, 1 << 20);
        let longer = BlobRecord {
            size: record.size + 1000,
            ..record.clone()
        };
        let b = blob(longer.clone(), src.clone());
        assert_eq!(b.state(), BlobState::Bad);
        assert!(b.reason().contains("holds 300000 bytes"), "{}", b.reason());

        // The entry table says so too (it is not signed): the tar header does not.
        let mut index = (*src.index).clone();
        for e in &mut index.entries {
            if e.path == record.digest.blob_path() {
                e.size = longer.size;
            }
        }
        let src = BundleSource {
            path: src.path.clone(),
            index: Arc::new(index),
        };
        let b = blob(longer.clone(), src.clone());
        assert_eq!(b.state(), BlobState::Unverified);
        let check = b.check(|_| {});
        let (got, err) = collect(b.stream(0, longer.size, Some(check.clone()))).await;
        let err = err.expect("refused").to_string();
        assert!(got.is_empty(), "{} bytes sent", got.len());
        assert!(
            err.contains("tar header") && err.contains("300000"),
            "{err}"
        );
        assert_eq!(check.await, BlobState::Bad);
        let b = blob(longer.clone(), src);
        assert!(b.read_whole(|_| {}).await.is_none());
        assert!(b.reason().contains("tar header"), "{}", b.reason());
        // Never a range beyond the entry either.
        let (got, err) = collect(b.stream(0, longer.size + 1, None)).await;
        assert!(got.is_empty() && err.is_some());
    }

    // Regression (hardening: defect 5): a stream kept its reading slot while its client did
    // not read, so `--jobs` such clients blocked every other blob. A stream nobody reads
    // holds no slot.
    #[tokio::test]
    async fn a_stream_nobody_reads_holds_no_reading_slot() {
        let data = noise(3 << 20);
        let (_d, src, record) = bundle(&data, 1 << 18);
        let reading = Reading::new(1, 1);
        let b = Arc::new(Blob::new(
            record.clone(),
            src,
            reading.clone(),
            None,
            Some(record.size),
        ));
        let stalled: Vec<_> = (0..4)
            .map(|_| Box::pin(b.stream(0, record.size, None)))
            .collect();
        let mut first = Box::pin(b.stream(0, record.size, None));
        use futures_util::StreamExt as _;
        assert!(first.next().await.is_some());
        // Give the producers every chance to run ahead and hold on to a slot.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(reading.readers.available_permits(), 1);
        let permit = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            reading.readers.clone().acquire_owned(),
        )
        .await;
        assert!(permit.is_ok(), "a stalled stream holds the only slot");
        drop((stalled, first));
    }

    #[tokio::test]
    async fn streams_hold_at_most_two_frames_each_and_all_of_them_a_bounded_number() {
        // Regression: with slots held per frame, every connection could hold its own frames,
        // so memory grew with the number of clients pulling at once.
        use futures_util::StreamExt as _;
        let data = noise(3 << 20);
        let (_d, src, record) = bundle(&data, 1 << 18);
        let reading = Reading::new(1, 1);
        let budget = FRAMES_HELD_PER_READER;
        let b = Arc::new(Blob::new(
            record.clone(),
            src,
            reading.clone(),
            None,
            Some(record.size),
        ));
        // Clients that took one piece each and then stopped reading.
        let mut stalled = Vec::new();
        for _ in 0..budget / 2 {
            let mut s = Box::pin(b.stream(0, record.size, None));
            assert!(s.next().await.is_some());
            stalled.push(s);
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(reading.held.available_permits(), 0, "two frames per stream");
        assert_eq!(
            reading.readers.available_permits(),
            1,
            "no reading slot held"
        );
        // One more client waits for a frame to be freed, holding nothing meanwhile ...
        let mut late = Box::pin(b.stream(0, record.size, None));
        let waited = tokio::time::timeout(std::time::Duration::from_millis(300), late.next()).await;
        assert!(waited.is_err(), "a frame beyond the bound was read");
        // ... and goes on as soon as a stalled one leaves.
        stalled.pop();
        let next = tokio::time::timeout(std::time::Duration::from_secs(20), late.next()).await;
        assert!(matches!(next, Ok(Some(Ok(_)))), "{next:?}");
        drop((stalled, late));
    }

    #[tokio::test]
    async fn a_byte_changed_inside_a_raw_block_is_found_by_the_check() {
        let data = noise(600_000);
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
        let (got, err) = collect(b.stream(0, record.size, Some(check))).await;
        assert!(err.is_some() && got.len() < data.len(), "{err:?}");
        // What did go out is the file's bytes, as they are.
        assert_eq!(got[..300_000], data[..300_000]);
        assert_eq!(got[300_000], data[300_000] ^ 1);
        assert_eq!(b.state(), BlobState::Bad);
        assert!(b.reason().contains("not to the digest"), "{}", b.reason());
    }
}
