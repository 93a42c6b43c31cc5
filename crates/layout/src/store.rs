//! The content-addressed blob cache of the online side (`--cache-dir`).
//!
//! Layout on disk:
//!
//! ```text
//! ROOT/blobs/sha256/<hex>     committed blobs, each verified against its digest and size
//! ROOT/tmp/<hex>.partial      an interrupted download, resumable (locked while in use)
//! ROOT/tmp/<hex>.*.tmp        unique temporary files, never resumed
//! ```
//!
//! Invariant: nothing appears under `blobs/` before its sha256 and size were checked. Writes go
//! to `tmp/`, are fsynced, then renamed into place, so a crash leaves at worst a partial file
//! that the next [`BlobStore::begin`] re-hashes and resumes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::digest::{Digest, Hasher};
use crate::error::Error;

/// Buffer size for writes into the store and for re-hashing partial files.
const IO_BUF: usize = 256 * 1024;

/// A content-addressed store of verified blobs under one root directory.
///
/// Several processes may share one store: committed blobs are only ever renamed into place
/// whole, and a resumable partial download is used by one writer at a time (file lock).
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
    blobs: PathBuf,
    tmp: PathBuf,
}

impl BlobStore {
    /// Opens the store at `root`, creating `root/blobs/sha256` and `root/tmp` if needed.
    pub fn open(root: impl Into<PathBuf>) -> Result<BlobStore, Error> {
        let root = root.into();
        let blobs = root.join("blobs").join("sha256");
        let tmp = root.join("tmp");
        for dir in [&blobs, &tmp] {
            fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
        }
        Ok(BlobStore { root, blobs, tmp })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob `d` lives once committed: `root/blobs/sha256/<hex>`.
    pub fn path(&self, d: &Digest) -> PathBuf {
        self.blobs.join(d.hex())
    }

    /// Whether the committed blob `d` exists with exactly `size` bytes.
    pub fn has(&self, d: &Digest, size: u64) -> bool {
        fs::metadata(self.path(d)).is_ok_and(|m| m.is_file() && m.len() == size)
    }

    /// Stores `data` as the blob `d` after checking that it hashes to `d`.
    ///
    /// Returns the committed path. Writing goes through a temporary file, fsync and rename.
    pub fn put_bytes(&self, d: &Digest, data: &[u8]) -> Result<PathBuf, Error> {
        let size = data.len() as u64;
        let actual = Digest::of_bytes(data);
        if actual != *d {
            return Err(Error::BlobMismatch {
                digest: d.clone(),
                expected_size: size,
                actual_size: size,
                actual,
            });
        }
        let dest = self.path(d);
        // An entry already there is kept only if it still holds these very bytes (a small
        // blob: comparing is cheap); a damaged one is replaced.
        if self.has(d, size) && fs::read(&dest).is_ok_and(|old| old == data) {
            return Ok(dest);
        }
        let (mut file, temp) = self.unique_temp(d)?;
        file.write_all(data)
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io("write", &*temp, e))?;
        drop(file);
        temp.persist(&dest)
            .map_err(|e| Error::io("rename into place", &dest, e.error))?;
        Ok(dest)
    }

    /// Starts (or resumes) writing the blob `d` of `size` bytes.
    ///
    /// If an earlier download of `d` was interrupted, its bytes are re-hashed and
    /// [`BlobWriter::offset`] says where to resume (e.g. with an HTTP `Range` request). If
    /// another process is writing the same blob right now, this writer starts from zero under
    /// a unique temporary name instead.
    pub fn begin(&self, d: &Digest, size: u64) -> Result<BlobWriter, Error> {
        let partial = self.tmp.join(format!("{}.partial", d.hex()));
        let dest = self.path(d);
        match lock_partial(&partial)? {
            Some(file) => BlobWriter::resume(d.clone(), size, file, partial, dest),
            None => {
                let (file, temp) = self.unique_temp(d)?;
                Ok(BlobWriter::new(
                    d.clone(),
                    size,
                    file,
                    TempFile::Unique(temp),
                    dest,
                    0,
                    Hasher::new(),
                ))
            }
        }
    }

    fn unique_temp(&self, d: &Digest) -> Result<(File, tempfile::TempPath), Error> {
        let named = tempfile::Builder::new()
            .prefix(&format!("{}.", d.hex()))
            .suffix(".tmp")
            .tempfile_in(&self.tmp)
            .map_err(|e| Error::io("create a temporary file in", &self.tmp, e))?;
        Ok(named.into_parts())
    }
}

/// Opens and locks `path` for resuming; `None` when someone else holds it.
fn lock_partial(path: &Path) -> Result<Option<File>, Error> {
    // A few attempts: see the rename race below.
    for _ in 0..3 {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::io("open", path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Ok(None),
            Err(fs::TryLockError::Error(e)) => {
                // Some file systems (older NFS setups) do not do locks: give up resuming there
                // rather than risk two writers on one file.
                tracing::debug!(path = %path.display(), error = %e, "cannot lock partial blob, not resuming");
                return Ok(None);
            }
        }
        // The previous holder may have committed (renamed this very file to its digest path)
        // between our open and our lock. Then we hold the committed blob, which we must never
        // truncate or append to: make sure the name still points at the file we locked.
        if still_named(&file, path) {
            return Ok(Some(file));
        }
    }
    Ok(None)
}

#[cfg(unix)]
fn still_named(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn still_named(_file: &File, path: &Path) -> bool {
    // Without inode numbers, at least check the name still exists; on Windows an open file
    // cannot be renamed by default anyway.
    path.exists()
}

#[derive(Debug)]
enum TempFile {
    /// `tmp/<hex>.partial`, locked by us; kept on drop so a later `begin` can resume.
    Partial(PathBuf),
    /// A unique name, deleted on drop.
    Unique(tempfile::TempPath),
}

impl TempFile {
    fn path(&self) -> &Path {
        match self {
            TempFile::Partial(p) => p,
            TempFile::Unique(t) => t,
        }
    }
}

/// Writes one blob into a [`BlobStore`], hashing as it goes; see [`BlobStore::begin`].
///
/// Dropping it without [`commit`](BlobWriter::commit) keeps a resumable partial file (or
/// deletes the unique temporary file when the partial was busy).
#[derive(Debug)]
pub struct BlobWriter {
    digest: Digest,
    size: u64,
    /// Bytes taken over from an earlier download.
    resumed: u64,
    /// Bytes in the file now (resumed ones included).
    written: u64,
    hasher: Hasher,
    file: BufWriter<File>,
    temp: TempFile,
    dest: PathBuf,
}

impl BlobWriter {
    fn new(
        digest: Digest,
        size: u64,
        file: File,
        temp: TempFile,
        dest: PathBuf,
        resumed: u64,
        hasher: Hasher,
    ) -> BlobWriter {
        BlobWriter {
            digest,
            size,
            resumed,
            written: resumed,
            hasher,
            file: BufWriter::with_capacity(IO_BUF, file),
            temp,
            dest,
        }
    }

    /// Picks up a locked partial file: re-hash what is there, or start over if it is too long.
    fn resume(
        digest: Digest,
        size: u64,
        mut file: File,
        partial: PathBuf,
        dest: PathBuf,
    ) -> Result<BlobWriter, Error> {
        let len = file
            .metadata()
            .map_err(|e| Error::io("read metadata of", &partial, e))?
            .len();
        let mut hasher = Hasher::new();
        let mut offset = 0;
        if len > size {
            tracing::debug!(%digest, len, size, "partial blob longer than expected, starting over");
            file.set_len(0)
                .map_err(|e| Error::io("truncate", &partial, e))?;
        } else if len > 0 {
            let mut buf = vec![0; IO_BUF];
            loop {
                let n = match file.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(Error::io("read", &partial, e)),
                };
                hasher.update(&buf[..n]);
                offset += n as u64;
            }
            tracing::debug!(%digest, offset, size, "resuming partial blob");
        }
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| Error::io("seek in", &partial, e))?;
        Ok(BlobWriter::new(
            digest,
            size,
            file,
            TempFile::Partial(partial),
            dest,
            offset,
            hasher,
        ))
    }

    /// Bytes of the blob present so far, all already fed to the hasher: where to resume the
    /// download (HTTP `Range: bytes=<offset>-`); `0` means from the start.
    ///
    /// Right after [`BlobStore::begin`] these are the bytes of an earlier interrupted
    /// download; it grows with every write, so after a connection breaks it is also where the
    /// next request starts.
    pub fn offset(&self) -> u64 {
        self.written
    }

    /// Bytes taken over from an earlier interrupted download when this writer began (0 after
    /// [`restart`](BlobWriter::restart)).
    pub fn resumed(&self) -> u64 {
        self.resumed
    }

    /// The digest this blob must have.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The size this blob must have.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Sets the size the blob must have, once it is known: for a download begun with
    /// `u64::MAX` because only its digest was known (a file whose size the server says, or
    /// that is complete when its body ends). [`commit`](BlobWriter::commit) checks it.
    pub fn set_size(&mut self, size: u64) {
        self.size = size;
    }

    /// Discards everything written so far, including resumed bytes.
    ///
    /// For a server that ignored the `Range` request and sends the blob from its first byte.
    pub fn restart(&mut self) -> Result<(), Error> {
        let path = self.temp.path();
        self.file
            .flush()
            .and_then(|()| self.file.get_ref().set_len(0))
            .and_then(|()| self.file.seek(SeekFrom::Start(0)).map(drop))
            .map_err(|e| Error::io("truncate", path, e))?;
        self.hasher = Hasher::new();
        self.resumed = 0;
        self.written = 0;
        Ok(())
    }

    /// Checks size and sha256, then fsyncs and renames the blob to its digest path.
    ///
    /// On a mismatch the temporary file is deleted (so the next attempt starts clean) and the
    /// error names the digest, the expected size and what was actually received.
    pub fn commit(self) -> Result<PathBuf, Error> {
        let BlobWriter {
            digest,
            size,
            written,
            hasher,
            file,
            temp,
            dest,
            ..
        } = self;
        let file = file
            .into_inner()
            .map_err(|e| Error::io("write", temp.path(), e.into_error()))?;
        let actual = hasher.finish();
        if written != size || actual != digest {
            if let TempFile::Partial(p) = &temp {
                // Still holding the lock here, so nobody resumes the bad bytes meanwhile.
                let _ = fs::remove_file(p);
            }
            drop(file);
            return Err(Error::BlobMismatch {
                digest,
                expected_size: size,
                actual_size: written,
                actual,
            });
        }
        file.sync_all()
            .map_err(|e| Error::io("fsync", temp.path(), e))?;
        match temp {
            TempFile::Partial(p) => {
                // Renamed while still locked: see `still_named` for the other side of this.
                fs::rename(&p, &dest).map_err(|e| Error::io("rename into place", &dest, e))?;
            }
            TempFile::Unique(t) => {
                t.persist(&dest)
                    .map_err(|e| Error::io("rename into place", &dest, e.error))?;
            }
        }
        drop(file);
        Ok(dest)
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() as u64 > self.size - self.written {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                Error::BlobOverflow {
                    digest: self.digest.clone(),
                    expected: self.size,
                },
            ));
        }
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    fn tmp_entries(store: &BlobStore) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(store.root().join("tmp"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn open_creates_layout() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path().join("cache")).unwrap();
        assert!(store.root().join("blobs/sha256").is_dir());
        assert!(store.root().join("tmp").is_dir());
        let d = Digest::of_bytes(b"x");
        assert_eq!(
            store.path(&d),
            dir.path().join("cache/blobs/sha256").join(d.hex())
        );
    }

    #[test]
    fn commit_right_hash() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let data = blob(1_000_000);
        let d = Digest::of_bytes(&data);
        assert!(!store.has(&d, data.len() as u64));
        let mut w = store.begin(&d, data.len() as u64).unwrap();
        assert_eq!(w.offset(), 0);
        for chunk in data.chunks(7000) {
            w.write_all(chunk).unwrap();
        }
        let path = w.commit().unwrap();
        assert_eq!(path, store.path(&d));
        assert_eq!(fs::read(&path).unwrap(), data);
        assert!(store.has(&d, data.len() as u64));
        assert!(!store.has(&d, data.len() as u64 + 1));
        assert!(tmp_entries(&store).is_empty());
    }

    #[test]
    fn commit_wrong_hash_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let data = blob(5000);
        let d = Digest::of_bytes(b"something else");
        let mut w = store.begin(&d, data.len() as u64).unwrap();
        w.write_all(&data).unwrap();
        let err = w.commit().unwrap_err();
        match &err {
            Error::BlobMismatch {
                digest,
                expected_size,
                actual_size,
                actual,
            } => {
                assert_eq!(digest, &d);
                assert_eq!(*expected_size, 5000);
                assert_eq!(*actual_size, 5000);
                assert_eq!(actual, &Digest::of_bytes(&data));
            }
            other => panic!("unexpected error {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains(&d.to_string()), "{msg}");
        assert!(!store.path(&d).exists());
        assert!(
            tmp_entries(&store).is_empty(),
            "bad partial must be removed"
        );
    }

    #[test]
    fn commit_short_is_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let data = blob(100);
        let d = Digest::of_bytes(&data);
        let mut w = store.begin(&d, 100).unwrap();
        w.write_all(&data[..99]).unwrap();
        let err = w.commit().unwrap_err();
        assert!(
            matches!(
                err,
                Error::BlobMismatch {
                    actual_size: 99,
                    expected_size: 100,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(!store.path(&d).exists());
    }

    #[test]
    fn overflow_is_error_at_write_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let data = blob(100);
        let d = Digest::of_bytes(&data[..50]);
        let mut w = store.begin(&d, 50).unwrap();
        w.write_all(&data[..40]).unwrap();
        let err = w.write(&data[40..]).unwrap_err();
        let inner = err.get_ref().and_then(|e| e.downcast_ref::<Error>());
        assert!(
            matches!(inner, Some(Error::BlobOverflow { expected: 50, .. })),
            "{err:?}"
        );
        // Nothing of the rejected write was taken: the rest still fits and commits.
        w.write_all(&data[40..50]).unwrap();
        w.commit().unwrap();
        assert_eq!(fs::read(store.path(&d)).unwrap(), &data[..50]);
    }

    #[test]
    fn resume_after_interruption() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let data = blob(700_000);
        let d = Digest::of_bytes(&data);
        let size = data.len() as u64;

        let mut w = store.begin(&d, size).unwrap();
        w.write_all(&data[..300_001]).unwrap();
        drop(w); // interrupted download
        assert!(!store.has(&d, size));
        assert_eq!(tmp_entries(&store), vec![format!("{}.partial", d.hex())]);

        let mut w = store.begin(&d, size).unwrap();
        assert_eq!(w.offset(), 300_001);
        assert_eq!(w.resumed(), 300_001);
        // A connection breaks mid-way: the offset says where the next request starts.
        w.write_all(&data[300_001..500_000]).unwrap();
        assert_eq!(w.offset(), 500_000);
        assert_eq!(w.resumed(), 300_001);
        w.write_all(&data[500_000..]).unwrap();
        let path = w.commit().unwrap();
        assert_eq!(fs::read(path).unwrap(), data);
        assert!(tmp_entries(&store).is_empty());
    }

    #[test]
    fn resume_of_corrupt_partial_fails_then_starts_clean() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let data = blob(10_000);
        let d = Digest::of_bytes(&data);
        let mut w = store.begin(&d, 10_000).unwrap();
        w.write_all(&[0xff; 4000]).unwrap(); // garbage from a bad proxy
        drop(w);
        let mut w = store.begin(&d, 10_000).unwrap();
        assert_eq!(w.offset(), 4000);
        w.write_all(&data[4000..]).unwrap();
        assert!(matches!(w.commit(), Err(Error::BlobMismatch { .. })));
        assert!(!store.path(&d).exists());
        let mut w = store.begin(&d, 10_000).unwrap();
        assert_eq!(w.offset(), 0);
        w.write_all(&data).unwrap();
        w.commit().unwrap();
        assert!(store.has(&d, 10_000));
    }

    #[test]
    fn partial_longer_than_size_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let data = blob(1000);
        let d = Digest::of_bytes(&data);
        fs::write(
            store
                .root()
                .join("tmp")
                .join(format!("{}.partial", d.hex())),
            blob(2000),
        )
        .unwrap();
        let mut w = store.begin(&d, 1000).unwrap();
        assert_eq!(w.offset(), 0);
        w.write_all(&data).unwrap();
        w.commit().unwrap();
        assert_eq!(fs::read(store.path(&d)).unwrap(), data);
    }

    #[test]
    fn restart_discards_resumed_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let data = blob(3000);
        let d = Digest::of_bytes(&data);
        let mut w = store.begin(&d, 3000).unwrap();
        w.write_all(&data[..1000]).unwrap();
        drop(w);
        let mut w = store.begin(&d, 3000).unwrap();
        assert_eq!(w.offset(), 1000);
        // The server ignored `Range` and sends everything from byte 0.
        w.restart().unwrap();
        assert_eq!(w.offset(), 0);
        assert_eq!(w.resumed(), 0);
        w.write_all(&data).unwrap();
        w.commit().unwrap();
        assert_eq!(fs::read(store.path(&d)).unwrap(), data);
    }

    #[test]
    fn busy_partial_falls_back_to_unique_temp() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let data = blob(2048);
        let d = Digest::of_bytes(&data);
        let mut first = store.begin(&d, 2048).unwrap();
        first.write_all(&data[..1024]).unwrap();
        first.flush().unwrap();
        // A second writer (another process, in real life) does not resume the busy partial.
        let mut second = store.begin(&d, 2048).unwrap();
        assert_eq!(second.offset(), 0);
        second.write_all(&data).unwrap();
        second.commit().unwrap();
        first.write_all(&data[1024..]).unwrap();
        first.commit().unwrap();
        assert_eq!(fs::read(store.path(&d)).unwrap(), data);
        assert!(tmp_entries(&store).is_empty());
    }

    #[test]
    fn unique_temp_is_removed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let d = Digest::of_bytes(b"abc");
        let first = store.begin(&d, 3).unwrap();
        let mut second = store.begin(&d, 3).unwrap();
        second.write_all(b"ab").unwrap();
        assert_eq!(tmp_entries(&store).len(), 2);
        drop(second);
        assert_eq!(tmp_entries(&store), vec![format!("{}.partial", d.hex())]);
        drop(first);
    }

    // Regression: a damaged cache entry of a small blob (same size) was kept by `put_bytes`
    // and then packed into the bundle.
    #[test]
    fn put_bytes_replaces_a_damaged_entry() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let d = Digest::of_bytes(b"{\"a\":1}");
        let path = store.put_bytes(&d, b"{\"a\":1}").unwrap();
        fs::write(&path, b"{\"a\":2}").unwrap();
        store.put_bytes(&d, b"{\"a\":1}").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"{\"a\":1}");
    }

    #[test]
    fn put_bytes_checks_hash() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let d = Digest::of_bytes(b"{}");
        let path = store.put_bytes(&d, b"{}").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"{}");
        // Idempotent.
        assert_eq!(store.put_bytes(&d, b"{}").unwrap(), path);
        let other = Digest::of_bytes(b"[]");
        let err = store.put_bytes(&other, b"{}").unwrap_err();
        assert!(matches!(err, Error::BlobMismatch { .. }), "{err:?}");
        assert!(!store.path(&other).exists());
        assert!(tmp_entries(&store).is_empty());
    }
}
