//! Writing a bundle file: a tar stream in seekable, independently compressed zstd frames
//! (docs/bundle-format.md).
//!
//! The pipeline has four stages joined by channels: this thread cuts the tar stream into
//! frames (reading blobs from the store), `threads` workers compress frames, one writer
//! thread puts them in the file in order, and one hashing thread takes the frames in the same
//! order and hashes every byte read from the store, checking each blob against its digest at
//! the end of its entry. A fixed pool of frame buffers circulates through the stages, so at
//! most `2 × threads + 1` frames are in memory whatever the bundle size, and buffers are reused
//! rather than reallocated. Each frame's bytes depend only on its input and level, so the
//! output is the same for any number of threads.
//!
//! Nothing is renamed to the bundle's name unless every byte of every blob hashed to its
//! digest while this write read it: the store's own check on the way in is not trusted for a
//! file that may have changed on disk since (bit rot, an edit in place).

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};

use crate::digest::{Digest, Hasher};
use crate::error::Error;
use crate::format::{
    ENTRY_TABLE_MAGIC, ENTRY_TABLE_VERSION, INDEX_PATH, MANIFEST_PATH, MAX_FRAME_SIZE,
    OCI_LAYOUT_JSON, OCI_LAYOUT_PATH, SEEKABLE_MAGIC, SEEK_TABLE_MAGIC, SIGNATURE_PATH, TAR_BLOCK,
};
use crate::manifest::{is_compressed_media_type, is_small_media_type, BlobRecord};
use crate::reader::index::{EntryInfo, EntryTableRef};
use crate::store::BlobStore;
use crate::volume::PartList;

mod parts;
use parts::Sink;
pub use parts::SplitOptions;

/// How to compress a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveOptions {
    /// zstd level for everything except already-compressed blobs (default 3).
    pub level: i32,
    /// zstd level for blobs whose media type is already compressed (default 1).
    pub fast_level: i32,
    /// Largest decompressed size of one frame, in bytes (default 4 MiB). Smaller frames make
    /// random access cheaper and compress slightly worse. Between 512 bytes and 1 GiB.
    pub frame_size: usize,
    /// Compression threads (default: the available parallelism; 0 counts as 1).
    pub threads: usize,
}

impl Default for ArchiveOptions {
    fn default() -> Self {
        ArchiveOptions {
            level: 3,
            fast_level: 1,
            frame_size: 4 << 20,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// Everything that goes into one bundle file.
#[derive(Debug, Clone, Copy)]
pub struct BundleContents<'a> {
    /// Exact bytes of `airlock/manifest.json`.
    pub manifest_json: &'a [u8],
    /// Exact bytes of `airlock/manifest.json.sig`, if the bundle is signed.
    pub signature: Option<&'a [u8]>,
    /// Bytes of the OCI `index.json`.
    pub index_json: &'a [u8],
    /// The blobs in the order to write them (small ones are moved first, keeping this order
    /// otherwise); each must be committed in `store`.
    pub blobs: &'a [BlobRecord],
    /// Where the blobs are.
    pub store: &'a BlobStore,
    /// For writing while blobs still download: called just before a blob is read, it blocks
    /// until the blob is committed in `store`, or returns the error that keeps it from coming.
    /// Without a gate every blob must be in the store before the first byte is written.
    pub gate: Option<BlobGate<'a>>,
}

/// Waits for a blob to be committed in the store (see [`BundleContents::gate`]) and says how
/// it came there.
#[derive(Clone, Copy)]
pub struct BlobGate<'a>(pub &'a (dyn Fn(&Digest) -> Result<Arrival, Error> + Sync));

/// How a blob the gate let through came into the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// It was there before this run: it is hashed again on its way into the bundle
    /// ([`Error::CachedBlobMismatch`] if it no longer matches).
    Cached,
    /// This run wrote it into the store, which hashed it before committing it under its
    /// digest: it goes in without a second hash.
    Verified,
}

impl std::fmt::Debug for BlobGate<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlobGate")
    }
}

/// What [`write_bundle`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArchiveStats {
    /// Tar entries (files).
    pub entries: u64,
    /// zstd data frames (the skippable index frames not counted).
    pub frames: u64,
    /// Length of the decompressed tar stream.
    pub tar_bytes: u64,
    /// Length of the bundle file, index frames included.
    pub compressed_bytes: u64,
}

/// Writes the bundle file `out` (see the module docs and docs/bundle-format.md).
///
/// The file is written under a hidden temporary name next to `out` (`.NAME.tmp-XXXXXX`,
/// exclusively locked while in use), fsynced, and renamed to `out` only when complete and
/// when every blob read from the store hashed to its digest; on error the temporary file is
/// removed and `out` is untouched ([`Error::CachedBlobMismatch`] names a damaged store
/// entry). Temporary files of earlier writes of `out` that no process holds any more (left by
/// a killed run) are removed first.
pub fn write_bundle(
    out: &Path,
    contents: &BundleContents<'_>,
    opts: &ArchiveOptions,
) -> Result<ArchiveStats, Error> {
    write_bundle_until(out, contents, opts, &AtomicBool::new(false))
}

/// [`write_bundle`] that stops with [`Error::Cancelled`] (removing its temporary file, `out`
/// untouched) as soon as it sees `cancel` set: between two frames, and once more just before
/// the rename.
pub fn write_bundle_until(
    out: &Path,
    contents: &BundleContents<'_>,
    opts: &ArchiveOptions,
    cancel: &AtomicBool,
) -> Result<ArchiveStats, Error> {
    write_to(out, contents, opts, cancel, None).map(|(stats, _)| stats)
}

/// [`write_bundle_until`] writing parts `out.000`, `out.001`, … of at most
/// `split.part_size` bytes each, and the part list `out.parts.json` (signed with
/// `split.key` into `out.parts.json.sig`), instead of one file. The parts concatenated are
/// byte-identical to the file [`write_bundle_until`] writes. Every part is written under a
/// temporary name, locked, fsynced, and all are renamed only once the whole run succeeded;
/// then higher-numbered parts an earlier run of the same name left are removed (and a part
/// list signature this run did not write). Returns the part list.
pub fn write_split_bundle_until(
    out: &Path,
    contents: &BundleContents<'_>,
    opts: &ArchiveOptions,
    cancel: &AtomicBool,
    split: &SplitOptions<'_>,
) -> Result<(ArchiveStats, PartList), Error> {
    if split.part_size < crate::volume::MIN_PART_SIZE {
        return Err(Error::InvalidOption {
            name: "part_size",
            value: i64::try_from(split.part_size).unwrap_or(i64::MAX),
            expected: "at least 1000000 bytes",
        });
    }
    let (stats, list) = write_to(out, contents, opts, cancel, Some(split))?;
    Ok((stats, list.expect("a split write gives a part list")))
}

fn write_to(
    out: &Path,
    contents: &BundleContents<'_>,
    opts: &ArchiveOptions,
    cancel: &AtomicBool,
    split: Option<&SplitOptions<'_>>,
) -> Result<(ArchiveStats, Option<PartList>), Error> {
    check_options(opts)?;
    let entries = plan(contents, opts)?;

    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = out.file_name().ok_or_else(|| {
        Error::io(
            "write to",
            out,
            io::Error::new(io::ErrorKind::InvalidInput, "not a file name"),
        )
    })?;
    // A rename would replace whatever is there: a directory fails late, a device or a fifo
    // would silently become a regular file.
    let first_part = split.map(|_| dir.join(crate::volume::part_name(&name.to_string_lossy(), 0)));
    let target = first_part.as_deref().unwrap_or(out);
    if let Ok(m) = std::fs::symlink_metadata(target) {
        if !m.is_file() {
            return Err(Error::io(
                "replace",
                target,
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "it exists and is not a regular file",
                ),
            ));
        }
    }
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    remove_stale_temps(dir, &prefix);
    let (sink, temp_path) = match split {
        None => {
            let (file, temp_path) = locked_temp(dir, &prefix)?;
            let shown = temp_path.to_path_buf();
            (Sink::One(file, temp_path), shown)
        }
        Some(s) => (
            Sink::Parts(Box::new(parts::Parts::new(dir, &prefix, s.part_size))),
            dir.join(&prefix),
        ),
    };

    let threads = opts.threads.max(1);
    let ctl = Control { out, cancel };
    let (out_file, frames, table) = run_pipeline(sink, &temp_path, &entries, opts, threads, &ctl)?;
    let tar_bytes = frames.iter().map(|f| u64::from(f.1)).sum();
    let frame_count = frames.len() as u64;
    // The files stay open (and locked) until they have their final names, so no other run
    // takes them for stale ones in between.
    let (compressed_bytes, sink) = finish_file(out_file, &temp_path, &frames, &table)?;
    ctl.check()?;

    let list = sink.persist(out, contents.manifest_json, split.and_then(|s| s.key))?;
    sync_dir(dir);
    let stats = ArchiveStats {
        entries: entries.len() as u64,
        frames: frame_count,
        tar_bytes,
        compressed_bytes,
    };
    tracing::debug!(out = %out.display(), ?stats, threads, parts = list.as_ref().map(|l| l.parts.len()), "bundle written");
    Ok((stats, list))
}

/// Where the write goes, and whether it should stop.
struct Control<'a> {
    out: &'a Path,
    cancel: &'a AtomicBool,
}

impl Control<'_> {
    fn check(&self) -> Result<(), Error> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled {
                path: self.out.to_path_buf(),
            });
        }
        Ok(())
    }
}

/// Creates the temporary file `DIR/PREFIX*` and takes an exclusive lock on it, which it keeps
/// until the file is renamed or removed: that lock is how [`remove_stale_temps`] tells a live
/// write from the leftovers of a killed one.
fn locked_temp(dir: &Path, prefix: &str) -> Result<(File, tempfile::TempPath), Error> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix);
    #[cfg(unix)]
    {
        // Like `File::create`: the umask decides, not tempfile's private 0600.
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (file, temp_path) = builder
            .tempfile_in(dir)
            .map_err(|e| Error::io("create a temporary file in", dir, e))?
            .into_parts();
        // Another run may have taken the new file for a stale one in the instant between its
        // creation and our lock (it holds the lock, or already removed the name): then start
        // over under a new name.
        let ours = match file.try_lock() {
            Ok(()) => same_file(&file, &temp_path),
            Err(std::fs::TryLockError::WouldBlock) => false,
            Err(std::fs::TryLockError::Error(e)) => {
                // A file system without locks: write anyway; stale files there are not cleaned.
                tracing::debug!(path = %temp_path.display(), error = %e, "cannot lock the temporary bundle file");
                true
            }
        };
        if ours || attempts >= 3 {
            return Ok((file, temp_path));
        }
    }
}

/// Removes `DIR/PREFIX*` files that no process holds locked: temporary bundle files left by a
/// run that was killed (SIGKILL, power loss) before it could clean up. A live write holds its
/// file locked, so it is never touched. Best effort: anything that fails is left alone.
fn remove_stale_temps(dir: &Path, prefix: &str) {
    let Ok(list) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in list.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(prefix) {
            continue;
        }
        let path = entry.path();
        // Regular files only: opening a fifo would block.
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let Ok(file) = File::open(&path) else {
            continue;
        };
        if file.try_lock().is_err() {
            continue;
        }
        // Holding the lock: the name still points at what we locked, nobody writes to it.
        if same_file(&file, &path) && std::fs::remove_file(&path).is_ok() {
            tracing::info!(path = %path.display(), "removed a temporary bundle file left by an interrupted run");
        }
    }
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.exists()
}

fn check_options(opts: &ArchiveOptions) -> Result<(), Error> {
    let levels = zstd::compression_level_range();
    for (name, value) in [("level", opts.level), ("fast_level", opts.fast_level)] {
        if !levels.contains(&value) {
            return Err(Error::InvalidOption {
                name,
                value: value.into(),
                expected: "a zstd level, at most 22",
            });
        }
    }
    if !(TAR_BLOCK as usize..=MAX_FRAME_SIZE).contains(&opts.frame_size) {
        return Err(Error::InvalidOption {
            name: "frame_size",
            value: i64::try_from(opts.frame_size).unwrap_or(i64::MAX),
            expected: "between 512 bytes and 1 GiB",
        });
    }
    Ok(())
}

enum Source<'a> {
    Bytes(&'a [u8]),
    /// A blob file; with a gate, its arrival and size are checked just before it is read.
    Blob(PathBuf, &'a Digest, Option<BlobGate<'a>>),
}

struct PlannedEntry<'a> {
    path: String,
    size: u64,
    level: i32,
    source: Source<'a>,
}

/// The entries in their order, checked before any byte is compressed: no duplicate blob, every
/// blob present in the store with its recorded size.
fn plan<'a>(
    contents: &BundleContents<'a>,
    opts: &ArchiveOptions,
) -> Result<Vec<PlannedEntry<'a>>, Error> {
    let bytes = |path: &str, data: &'a [u8]| PlannedEntry {
        path: path.to_owned(),
        size: data.len() as u64,
        level: opts.level,
        source: Source::Bytes(data),
    };
    let mut entries = Vec::with_capacity(contents.blobs.len() + 4);
    entries.push(bytes(MANIFEST_PATH, contents.manifest_json));
    if let Some(sig) = contents.signature {
        entries.push(bytes(SIGNATURE_PATH, sig));
    }
    entries.push(bytes(OCI_LAYOUT_PATH, OCI_LAYOUT_JSON));

    let mut seen = HashSet::with_capacity(contents.blobs.len());
    for b in contents.blobs {
        if !seen.insert(&b.digest) {
            return Err(Error::DuplicateBlob {
                digest: b.digest.clone(),
            });
        }
    }
    // Small blobs first (stable partition): a loader reads every manifest and config, and so
    // knows the whole plan, before the first layer byte.
    let (small, large): (Vec<&BlobRecord>, Vec<&BlobRecord>) = contents
        .blobs
        .iter()
        .partition(|b| is_small_media_type(&b.media_type));
    for b in small.into_iter().chain(large) {
        let path = contents.store.path(&b.digest);
        if contents.gate.is_none() {
            check_blob_size(&path, b)?;
        }
        let level = if is_compressed_media_type(&b.media_type) {
            opts.fast_level
        } else {
            opts.level
        };
        entries.push(PlannedEntry {
            path: b.digest.blob_path(),
            size: b.size,
            level,
            source: Source::Blob(path, &b.digest, contents.gate),
        });
    }
    entries.push(bytes(INDEX_PATH, contents.index_json));
    Ok(entries)
}

/// The store only holds verified blobs; their file size must still match the record.
fn check_blob_size(path: &Path, b: &BlobRecord) -> Result<(), Error> {
    let actual = std::fs::metadata(path)
        .map_err(|e| Error::io("read metadata of", path, e))?
        .len();
    if actual != b.size {
        return Err(Error::BlobSize {
            digest: b.digest.clone(),
            path: path.to_path_buf(),
            expected: b.size,
            actual,
        });
    }
    Ok(())
}

/// A ustar header: mode 0644, mtime 0, uid/gid 0, empty user and group names.
fn tar_header(path: &str, size: u64) -> Result<[u8; TAR_BLOCK as usize], Error> {
    let mut h = tar::Header::new_ustar();
    let name = &mut h.as_old_mut().name;
    if path.len() > name.len() {
        return Err(Error::EntryPathTooLong {
            path: path.to_owned(),
        });
    }
    // Written directly rather than with `set_path`, which may split long names into the
    // ustar prefix field: entry names are ours and short, and stay in one place.
    name[..path.len()].copy_from_slice(path.as_bytes());
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    // Sizes of 8 GiB and more use the base-256 extension that GNU tar, Go and the `tar`
    // crate read; the header stays one block either way.
    h.set_size(size);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    Ok(*h.as_bytes())
}

/// One frame travelling through the pipeline; the buffers are reused.
#[derive(Default)]
struct Slot {
    seq: u64,
    level: i32,
    /// Index into the planned entries, for error messages.
    entry: usize,
    tar_offset: u64,
    /// The bytes of `input` read from a store blob (to be hashed), and whether the blob's
    /// last byte is in this frame (then its hash is checked).
    blob_data: std::ops::Range<usize>,
    blob_ends: bool,
    input: Vec<u8>,
    output: Vec<u8>,
}

/// Why a worker or the writer stopped early.
enum Failure {
    Error(Error),
    /// The thread panicked; `std::thread::scope` re-raises the panic.
    Panicked,
}

/// Why the producer stopped early.
enum Stop {
    Error(Error),
    /// The writer or the workers stopped; their result says why.
    Downstream,
}

/// Compressed and decompressed size of each data frame, for the seek table.
type FrameSizes = Vec<(u32, u32)>;

fn run_pipeline(
    file: Sink,
    temp_path: &Path,
    entries: &[PlannedEntry<'_>],
    opts: &ArchiveOptions,
    threads: usize,
    ctl: &Control<'_>,
) -> Result<(BufWriter<Sink>, FrameSizes, Vec<EntryInfo>), Error> {
    let (job_tx, job_rx) = mpsc::channel::<Slot>();
    let job_rx = Mutex::new(job_rx);
    let (res_tx, res_rx) = mpsc::channel::<Result<Slot, Failure>>();
    let (hash_tx, hash_rx) = mpsc::channel::<Slot>();
    let (pool_tx, pool_rx) = mpsc::channel::<Slot>();
    for _ in 0..2 * threads + 1 {
        // Buffers grow on first use, so a small bundle allocates little.
        pool_tx.send(Slot::default()).expect("receiver is alive");
    }

    let outcome = std::thread::scope(|s| {
        let writer = s.spawn(move || write_frames(file, temp_path, res_rx, hash_tx));
        // Hashing runs on a thread of its own, off the producer's path: the frames reach it
        // in order, after they were written.
        let hasher = s.spawn(move || hash_frames(entries, hash_rx, pool_tx));
        for _ in 0..threads {
            let res_tx = res_tx.clone();
            let job_rx = &job_rx;
            s.spawn(move || compress_frames(job_rx, res_tx, entries));
        }
        drop(res_tx);
        // `job_tx` moves in and is dropped when the producer is done, which ends the workers,
        // which ends the writer, which ends the hasher.
        let produced = produce(entries, opts, pool_rx, job_tx, ctl);
        let written = writer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let hashed = hasher
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        match (written, produced, hashed) {
            // A damaged blob explains any later failure (the producer stops when the hasher
            // does), so it is reported first.
            (_, _, Err(e)) | (Err(Failure::Error(e)), _, _) | (_, Err(Stop::Error(e)), _) => {
                Some(Err(e))
            }
            (Ok((out, frames)), Ok(table), Ok(())) => Some(Ok((out, frames, table))),
            // A worker panicked: the scope re-raises it on exit.
            _ => None,
        }
    });
    outcome.expect("a panicked worker thread ends the scope with its panic")
}

/// Cuts the tar stream into frames: a new frame at every entry header and every
/// `frame_size` bytes; the end-of-archive blocks get a frame of their own.
fn produce(
    entries: &[PlannedEntry<'_>],
    opts: &ArchiveOptions,
    pool: mpsc::Receiver<Slot>,
    jobs: mpsc::Sender<Slot>,
    ctl: &Control<'_>,
) -> Result<Vec<EntryInfo>, Stop> {
    let frame_size = opts.frame_size;
    let mut seq = 0;
    let mut tar_offset = 0;
    let mut table = Vec::with_capacity(entries.len());
    let emit = |slot: Slot| jobs.send(slot).map_err(|_| Stop::Downstream);

    for (i, entry) in entries.iter().enumerate() {
        table.push(EntryInfo {
            path: entry.path.clone(),
            offset: tar_offset,
            size: entry.size,
        });
        let header = tar_header(&entry.path, entry.size).map_err(Stop::Error)?;
        // Without a gate, or as the gate says: whether the store hashed it in this run.
        let mut arrival = Arrival::Cached;
        let (mut reader, source_path): (Box<dyn Read + '_>, Option<&Path>) = match &entry.source {
            Source::Bytes(b) => (Box::new(*b), None),
            // A blob cached before this run is hashed again on the way out (by
            // `hash_frames`): the store checked the sha256 when it was written, but a file on
            // disk can change after that. One this run wrote was hashed just before its commit.
            Source::Blob(path, digest, gate) => {
                if let Some(gate) = gate {
                    arrival = (gate.0)(digest).map_err(Stop::Error)?;
                    let rec = BlobRecord {
                        digest: (*digest).clone(),
                        size: entry.size,
                        media_type: String::new(),
                    };
                    check_blob_size(path, &rec).map_err(Stop::Error)?;
                }
                let f = File::open(path)
                    .map_err(|e| Stop::Error(Error::io("open", path.as_path(), e)))?;
                (Box::new(f), Some(path.as_path()))
            }
        };
        let padding = (TAR_BLOCK - entry.size % TAR_BLOCK) % TAR_BLOCK;
        let mut header_left: &[u8] = &header;
        let mut data_left = entry.size;
        let mut pad_left = padding;
        let mut entry_left = TAR_BLOCK + entry.size + padding;
        // A store blob is hashed on its way in unless this run verified it already.
        let is_blob = matches!(entry.source, Source::Blob(..)) && arrival == Arrival::Cached;
        let mut blob_ended = false;

        while entry_left > 0 {
            ctl.check().map_err(Stop::Error)?;
            let mut slot = pool.recv().map_err(|_| Stop::Downstream)?;
            let want = entry_left.min(frame_size as u64) as usize;
            slot.input.clear();
            slot.input.reserve(want);

            let n = header_left.len().min(want);
            slot.input.extend_from_slice(&header_left[..n]);
            header_left = &header_left[n..];

            let n = data_left.min((want - slot.input.len()) as u64);
            let data_start = slot.input.len();
            if n > 0 {
                let got = (&mut reader)
                    .take(n)
                    .read_to_end(&mut slot.input)
                    .and_then(|got| {
                        if got as u64 == n {
                            Ok(())
                        } else {
                            Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "file shrank while the bundle was written",
                            ))
                        }
                    });
                if let Err(e) = got {
                    let path = source_path.unwrap_or(Path::new(&entry.path));
                    return Err(Stop::Error(Error::io("read", path, e)));
                }
                data_left -= n;
            }
            slot.blob_data = if is_blob {
                data_start..slot.input.len()
            } else {
                0..0
            };
            slot.blob_ends = is_blob && data_left == 0 && !blob_ended;
            blob_ended |= slot.blob_ends;

            let n = pad_left.min((want - slot.input.len()) as u64);
            slot.input.resize(slot.input.len() + n as usize, 0);
            pad_left -= n;

            debug_assert_eq!(slot.input.len(), want);
            slot.seq = seq;
            slot.level = entry.level;
            slot.entry = i;
            slot.tar_offset = tar_offset;
            emit(slot)?;
            seq += 1;
            tar_offset += want as u64;
            entry_left -= want as u64;
        }
    }

    // End of archive: two zero blocks, in a frame of their own.
    let mut slot = pool.recv().map_err(|_| Stop::Downstream)?;
    slot.input.clear();
    slot.input.resize(2 * TAR_BLOCK as usize, 0);
    slot.seq = seq;
    slot.level = opts.level;
    slot.entry = entries.len();
    slot.tar_offset = tar_offset;
    slot.blob_data = 0..0;
    slot.blob_ends = false;
    emit(slot)?;
    Ok(table)
}

/// Sends a notice if the thread panics, so the writer stops waiting and the producer unblocks.
struct PanicNotice(mpsc::Sender<Result<Slot, Failure>>);

impl Drop for PanicNotice {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.0.send(Err(Failure::Panicked));
        }
    }
}

fn compress_frames(
    jobs: &Mutex<mpsc::Receiver<Slot>>,
    results: mpsc::Sender<Result<Slot, Failure>>,
    entries: &[PlannedEntry<'_>],
) {
    let notice = PanicNotice(results);
    let mut compressor: Option<(zstd::bulk::Compressor<'static>, i32)> = None;
    loop {
        let job = jobs.lock().unwrap_or_else(|p| p.into_inner()).recv();
        let Ok(mut slot) = job else { return };
        let result = compress_one(&mut compressor, &mut slot).map_err(|source| {
            let path = entries
                .get(slot.entry)
                .map_or("end of archive", |e| e.path.as_str());
            Failure::Error(Error::Compress {
                path: path.to_owned(),
                offset: slot.tar_offset,
                source,
            })
        });
        let failed = result.is_err();
        if notice.0.send(result.map(|()| slot)).is_err() || failed {
            return;
        }
    }
}

fn compress_one(
    compressor: &mut Option<(zstd::bulk::Compressor<'static>, i32)>,
    slot: &mut Slot,
) -> io::Result<()> {
    let (c, level) = match compressor {
        Some(c) => c,
        None => {
            let mut c = zstd::bulk::Compressor::new(slot.level)?;
            // A content checksum per frame lets stock `zstd -d` detect damage too.
            c.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))?;
            compressor.insert((c, slot.level))
        }
    };
    if *level != slot.level {
        c.set_compression_level(slot.level)?;
        *level = slot.level;
    }
    slot.output.clear();
    slot.output
        .reserve(zstd::zstd_safe::compress_bound(slot.input.len()));
    c.compress_to_buffer(&slot.input, &mut slot.output)?;
    Ok(())
}

/// Hashes the store bytes of every frame, in order, and checks each blob at its last frame;
/// returns the slots to the pool. Stops at the first blob that does not match (which stops
/// the producer, as the pool runs dry).
fn hash_frames(
    entries: &[PlannedEntry<'_>],
    frames: mpsc::Receiver<Slot>,
    pool: mpsc::Sender<Slot>,
) -> Result<(), Error> {
    let mut hasher = Hasher::new();
    for slot in frames {
        hasher.update(&slot.input[slot.blob_data.clone()]);
        if slot.blob_ends {
            let done = std::mem::take(&mut hasher).finish();
            if let Some(PlannedEntry {
                source: Source::Blob(path, digest, _),
                ..
            }) = entries.get(slot.entry)
            {
                if done != **digest {
                    return Err(Error::CachedBlobMismatch {
                        digest: (*digest).clone(),
                        path: path.clone(),
                        actual: done,
                    });
                }
            }
        }
        // The producer may be gone already (it failed): then the slot is simply dropped.
        let _ = pool.send(slot);
    }
    Ok(())
}

/// Writes compressed frames in sequence order and hands the slots on to the hasher.
fn write_frames(
    file: Sink,
    temp_path: &Path,
    results: mpsc::Receiver<Result<Slot, Failure>>,
    pool: mpsc::Sender<Slot>,
) -> Result<(BufWriter<Sink>, FrameSizes), Failure> {
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut frames = FrameSizes::new();
    let mut pending = BTreeMap::new();
    let mut next = 0;
    for result in results {
        let slot = result?;
        pending.insert(slot.seq, slot);
        while let Some(slot) = pending.remove(&next) {
            out.write_all(&slot.output)
                .map_err(|e| Failure::Error(Error::io("write", temp_path, e)))?;
            // Both fit: frames are at most 1 GiB decompressed (checked), so their compressed
            // bound is below 4 GiB.
            let compressed = u32::try_from(slot.output.len()).expect("frame below 4 GiB");
            let decompressed = u32::try_from(slot.input.len()).expect("frame below 4 GiB");
            frames.push((compressed, decompressed));
            next += 1;
            // The hasher may be gone already (it failed): then the slot is simply dropped.
            let _ = pool.send(slot);
        }
    }
    debug_assert!(
        pending.is_empty(),
        "every frame before the last was written"
    );
    Ok((out, frames))
}

fn skippable_header(magic: u32, len: usize) -> [u8; 8] {
    let len = u32::try_from(len).expect("index frames stay far below 4 GiB");
    let mut h = [0; 8];
    h[..4].copy_from_slice(&magic.to_le_bytes());
    h[4..].copy_from_slice(&len.to_le_bytes());
    h
}

/// Appends the entry table and the seek table, fsyncs; returns the file length and the file.
fn finish_file(
    mut out: BufWriter<Sink>,
    temp_path: &Path,
    frames: &FrameSizes,
    table: &[EntryInfo],
) -> Result<(u64, Sink), Error> {
    let entry_json = serde_json::to_vec(&EntryTableRef {
        version: ENTRY_TABLE_VERSION,
        entries: table,
    })
    .expect("the entry table always serializes");

    let mut seek = Vec::with_capacity(frames.len() * 8 + 9);
    for &(c, d) in frames {
        seek.extend_from_slice(&c.to_le_bytes());
        seek.extend_from_slice(&d.to_le_bytes());
    }
    let count = u32::try_from(frames.len()).expect("fewer than 4 billion frames");
    seek.extend_from_slice(&count.to_le_bytes());
    seek.push(0); // descriptor: no checksums
    seek.extend_from_slice(&SEEKABLE_MAGIC.to_le_bytes());

    let write = || -> io::Result<(u64, Sink)> {
        out.write_all(&skippable_header(ENTRY_TABLE_MAGIC, entry_json.len()))?;
        out.write_all(&entry_json)?;
        out.write_all(&skippable_header(SEEK_TABLE_MAGIC, seek.len()))?;
        out.write_all(&seek)?;
        let mut sink = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        let len = sink.sync()?;
        Ok((len, sink))
    };
    write().map_err(|e| Error::io("write", temp_path, e))
}

/// Makes the rename durable; best effort, as some file systems refuse to fsync directories.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
        tracing::debug!(dir = %dir.display(), error = %e, "cannot fsync directory");
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests;
