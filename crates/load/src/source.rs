//! Blob bytes read from the bundle through its (untrusted) frame index, hashed as they go.
//!
//! A blob's bytes are decoded on a blocking thread and handed to the upload as a stream. The
//! last chunk is held back until the whole blob has been hashed: when the bytes do not match
//! the signed manifest's digest, the stream ends with an error instead of that chunk, so the
//! request carrying the blob's end never completes and the registry never commits the blob.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use airlock_layout::{open_entry_owned, Digest, EntryReader, FrameIndex, Hasher};
use bytes::Bytes;
use futures_util::Stream;

/// Bytes decoded at once and handed to the upload as one item.
const CHUNK: usize = 256 << 10;
/// Items in flight between the decoding thread and the upload.
const IN_FLIGHT: usize = 4;

/// Where blobs are read from: the bundle file and its frame index.
#[derive(Debug, Clone)]
pub struct BundleSource {
    /// The bundle file.
    pub path: Arc<PathBuf>,
    /// Its trailing frame index (untrusted: it only locates bytes).
    pub index: Arc<FrameIndex>,
}

/// Called with the number of bytes handed to the upload.
pub(crate) type Progress = Arc<dyn Fn(u64) + Send + Sync>;

impl BundleSource {
    /// The blob `digest` of `size` bytes from `offset` to its end, as a stream of chunks.
    ///
    /// Bytes `0..offset` are read and hashed too (a resumed upload must not trust what it
    /// does not send), but not yielded.
    pub(crate) fn stream(
        &self,
        digest: &Digest,
        size: u64,
        offset: u64,
        progress: Option<Progress>,
    ) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(IN_FLIGHT);
        let (path, index, digest) = (self.path.clone(), self.index.clone(), digest.clone());
        tokio::task::spawn_blocking(move || {
            let send = |item: io::Result<Bytes>| tx.blocking_send(item).is_ok();
            let result = read_verified(&path, &index, &digest, size, offset, |chunk| {
                let n = chunk.len() as u64;
                let ok = send(Ok(chunk));
                if ok {
                    if let Some(p) = &progress {
                        p(n);
                    }
                }
                ok
            });
            if let Err(e) = result {
                send(Err(e));
            }
        });
        futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
    }
}

impl BundleSource {
    /// The whole blob `digest` of `size` bytes handed to `emit` chunk by chunk on this
    /// (blocking) thread, the last chunk only once the digest matched; `emit` returning
    /// `false` stops the read (`Ok`).
    pub(crate) fn read_verified(
        &self,
        digest: &Digest,
        size: u64,
        emit: impl FnMut(Bytes) -> bool,
    ) -> io::Result<()> {
        read_verified(&self.path, &self.index, digest, size, 0, emit)
    }
}

/// Reads the blob, hashing every byte, and hands the bytes from `offset` on to `emit`; the
/// last chunk only once the digest matched. Stops early (Ok) when `emit` says the receiver is
/// gone.
fn read_verified(
    path: &Path,
    index: &FrameIndex,
    digest: &Digest,
    size: u64,
    offset: u64,
    mut emit: impl FnMut(Bytes) -> bool,
) -> io::Result<()> {
    let file = airlock_layout::BundleFile::open(path).map_err(io::Error::other)?;
    let mut reader =
        open_entry_owned(file, index, &digest.blob_path()).map_err(io::Error::other)?;
    if reader.size() != size {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the bundle's frame index says {} bytes, the signed manifest {size}",
                reader.size()
            ),
        ));
    }
    let mut hasher = Hasher::new();
    let mut pos = 0u64;
    let mut held: Option<Bytes> = None;
    loop {
        let mut buf = vec![0u8; CHUNK];
        let n = fill(&mut reader, &mut buf)?;
        if n == 0 {
            break;
        }
        buf.truncate(n);
        hasher.update(&buf);
        let start = offset.saturating_sub(pos).min(n as u64) as usize;
        pos += n as u64;
        if start < n {
            let chunk = Bytes::from(buf).slice(start..);
            if let Some(prev) = held.replace(chunk) {
                if !emit(prev) {
                    return Ok(());
                }
            }
        }
    }
    let actual = hasher.finish();
    if pos != size || &actual != digest {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the bytes read from the bundle ({pos} bytes) hash to `{actual}`, not to the \
                 digest the signed manifest lists; the blob was not committed (the bundle is \
                 damaged or was tampered with)"
            ),
        ));
    }
    if let Some(last) = held {
        emit(last);
    }
    Ok(())
}

/// Reads until `buf` is full or the entry ends.
fn fill(reader: &mut EntryReader<'static>, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A one-blob bundle, a stream collector and incompressible bytes, for the tests of the
/// readers built on [`BundleSource`] (here and in `airlock-serve`, through the `testing`
/// feature).
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing {
    use super::*;
    pub use airlock_layout::testing::noise;
    use airlock_layout::testing::TempDir;
    use airlock_layout::BlobRecord;
    use futures_util::StreamExt as _;

    /// A bundle holding `blob` (as an uncompressed layer) in frames of `frame_size`, as a
    /// source.
    pub fn one_blob_bundle(blob: &[u8], frame_size: usize) -> (TempDir, BundleSource, BlobRecord) {
        let (dir, out, record) = airlock_layout::testing::one_blob_bundle(blob, frame_size);
        let index = FrameIndex::read_from(&mut std::fs::File::open(&out).unwrap()).unwrap();
        let src = BundleSource {
            path: Arc::new(out),
            index: Arc::new(index),
        };
        (dir, src, record)
    }

    /// Every chunk of `s`, and the error that ended it, if one did.
    pub async fn collect(s: impl Stream<Item = io::Result<Bytes>>) -> (Vec<u8>, Option<io::Error>) {
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
}

#[cfg(test)]
mod tests {
    use super::testing::{collect, one_blob_bundle};
    use super::*;
    use airlock_layout::ArchiveOptions;

    fn bundle(blob: &[u8]) -> (tempfile::TempDir, BundleSource, Digest) {
        let (dir, src, record) = one_blob_bundle(blob, ArchiveOptions::default().frame_size);
        (dir, src, record.digest)
    }

    #[tokio::test]
    async fn streams_from_any_offset_after_hashing_all() {
        let blob: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let (_d, src, digest) = bundle(&blob);
        for offset in [0u64, 1, 262_144, 999_999, 1_000_000] {
            let (got, err) = collect(src.stream(&digest, blob.len() as u64, offset, None)).await;
            assert!(err.is_none(), "{err:?}");
            assert_eq!(got, blob[offset as usize..], "offset {offset}");
        }
    }

    #[tokio::test]
    async fn a_wrong_digest_withholds_the_last_chunk() {
        let blob: Vec<u8> = (0..600_000u32).map(|i| (i % 13) as u8).collect();
        let (_d, src, _) = bundle(&blob);
        let wrong = Digest::of_bytes(b"something else");
        // The index has no entry under the wrong digest's path.
        let (_, err) = collect(src.stream(&wrong, blob.len() as u64, 0, None)).await;
        assert!(err.is_some());

        // Same path, but the manifest says another digest: simulate by renaming the entry.
        let mut index = (*src.index).clone();
        for e in &mut index.entries {
            if e.path.starts_with("blobs/") {
                e.path = wrong.blob_path();
            }
        }
        let src = BundleSource {
            path: src.path.clone(),
            index: Arc::new(index),
        };
        let (got, err) = collect(src.stream(&wrong, blob.len() as u64, 0, None)).await;
        let err = err.expect("an error instead of the last chunk");
        assert!(err.to_string().contains("not to the digest"), "{err}");
        assert!(got.len() < blob.len(), "the end of the blob was handed out");
    }
}
