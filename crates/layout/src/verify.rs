//! Checking a whole bundle file in one streaming pass (`airlock verify`, docs/bundle-format.md).
//!
//! [`verify_bundle`] reads the file once, front to back, through any [`Read`]: no seeking, and
//! memory stays flat whatever the bundle's size (a few buffers of 1 MiB, one zstd window, the
//! manifest, and a list of entries and frames). Two threads share the work: one decodes the
//! zstd frames, the other walks the tar stream and hashes every blob.
//!
//! The checks, in order:
//! 1. the first entry is `airlock/manifest.json` (at most [`MAX_MANIFEST_SIZE`]);
//! 2. the signature `airlock/manifest.json.sig`, if the caller gave a key, is checked over the
//!    manifest's exact bytes **before anything in the manifest is used**;
//! 3. every entry is a regular file named `oci-layout`, `index.json` or
//!    `blobs/sha256/<hex>` (no links, devices, directories, absolute paths or `..`), and
//!    appears once;
//! 4. every blob has the size and sha256 the manifest lists, and every listed blob is there;
//! 5. `oci-layout` is valid and `index.json` names exactly the manifest's images and tags;
//! 6. the tar ends with its two zero blocks and the file does not end early;
//! 7. the trailing entry table and seek table describe exactly the entries and frames that
//!    were streamed.
//!
//! The first failure stops the pass; the error names the entry, the expected and actual
//! values and the byte offsets (in the tar stream, and of the zstd frame in the file).

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use zstd::stream::raw::{InBuffer, Operation, OutBuffer};

use crate::digest::{Digest, Hasher};
use crate::error::Error;
use crate::format::{
    ENTRY_TABLE_MAGIC, ENTRY_TABLE_VERSION, INDEX_PATH, MANIFEST_PATH, OCI_LAYOUT_PATH,
    SEEKABLE_MAGIC, SEEK_FOOTER_LEN, SEEK_TABLE_MAGIC, SIGNATURE_PATH, SKIPPABLE_HEADER_LEN,
    TAR_BLOCK,
};
use crate::index::{EntryInfo, FrameInfo};
use crate::manifest::{BundleManifest, SpecInfo, Totals};
use crate::sign::VerifyingKey;

/// Largest `airlock/manifest.json` accepted (it is held in memory to check its signature).
pub const MAX_MANIFEST_SIZE: u64 = 64 << 20;
/// Largest `airlock/manifest.json.sig` accepted (a base64 DER ECDSA signature is ~100 bytes).
const MAX_SIGNATURE_SIZE: u64 = 64 << 10;
/// Largest `index.json` accepted.
const MAX_INDEX_JSON_SIZE: u64 = 64 << 20;
/// Largest `oci-layout` accepted.
const MAX_OCI_LAYOUT_SIZE: u64 = 4 << 10;
/// Largest entry table plus seek table accepted after the data frames.
const MAX_TAIL_SIZE: u64 = 256 << 20;

/// Decoded bytes handed from the decoding thread to the checking thread at once.
const CHUNK: usize = 1 << 20;
/// Buffers in flight between the two threads (bounds memory, lets both threads run).
const BUFFERS: usize = 4;
/// Compressed bytes read from the file at once.
const READ_BUF: usize = 1 << 20;

/// The zstd magic numbers `0x184D2A50..=0x184D2A5F` start skippable frames.
const SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;
const SKIPPABLE_BASE: u32 = 0x184D_2A50;

/// What [`verify_bundle`] found; serialises as the `--json` report of `airlock verify`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    /// Whether every check passed.
    pub ok: bool,
    /// What is known of the signature.
    pub signature: SignatureReport,
    /// The manifest's summary, once it was read (and its signature checked, when a key was
    /// given).
    pub manifest: Option<ManifestSummary>,
    /// Tar entries read.
    pub entries: u64,
    /// Blobs whose size and sha256 matched the manifest.
    pub blobs_verified: u64,
    /// Bytes of the tar stream read.
    pub bytes: u64,
    /// Bytes of the bundle file read.
    pub compressed_bytes: u64,
    /// Wall time of the pass.
    pub seconds: f64,
    /// The first failure, if any.
    pub error: Option<VerifyError>,
}

/// The signature part of a [`VerifyReport`].
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureReport {
    /// Whether the bundle holds `airlock/manifest.json.sig`.
    pub present: bool,
    /// Whether the signature was checked against a key and found valid.
    pub checked: bool,
    /// Fingerprint of the key it was checked with.
    pub key: Option<String>,
}

/// The manifest part of a [`VerifyReport`].
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestSummary {
    /// The spec the bundle was made from.
    pub spec: SpecInfo,
    /// When the bundle was made.
    pub created: String,
    /// The airlock version that made it.
    pub airlock_version: String,
    /// Counts of images, blobs and blob bytes.
    pub totals: Totals,
}

/// The first thing wrong with a bundle, and where it is.
#[derive(Debug)]
pub struct VerifyError {
    /// What is wrong (boxed: errors travel through every `Result` of the hot loop).
    pub kind: Box<VerifyErrorKind>,
    /// The entry concerned, if any.
    pub path: Option<String>,
    /// Offset in the tar stream: of the entry's header for entry errors, else of the problem.
    pub tar_offset: Option<u64>,
    /// Offset in the bundle file: of the zstd frame holding the problem, or of the problem.
    pub compressed_offset: Option<u64>,
}

/// What is wrong with a bundle (see [`VerifyError`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyErrorKind {
    /// The bundle file could not be read.
    #[error("cannot read the bundle")]
    Read {
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file ends before the bundle does.
    #[error("the bundle ends early, after {file_len} bytes: {what}")]
    Truncated {
        /// Bytes in the file.
        file_len: u64,
        /// What was cut.
        what: String,
    },
    /// A zstd frame does not decode (damaged bytes, or a frame checksum mismatch).
    #[error("corrupt zstd frame")]
    Decompress {
        /// The zstd error.
        #[source]
        source: io::Error,
    },
    /// A tar header block is malformed.
    #[error("invalid tar header: {reason}")]
    TarHeader {
        /// What is wrong with it.
        reason: String,
    },
    /// The first entry is not `airlock/manifest.json`.
    #[error("the first entry is `{found}`, expected `airlock/manifest.json`")]
    FirstEntryNotManifest {
        /// The first entry's path.
        found: String,
    },
    /// An entry is larger than its kind allows.
    #[error("entry `{path}` has {size} bytes, more than the {limit} allowed")]
    EntryTooLarge {
        /// The entry.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A key was given but the bundle has no signature.
    #[error(
        "the bundle is not signed: no `airlock/manifest.json.sig` follows `airlock/manifest.json`"
    )]
    Unsigned,
    /// The signature does not verify with the key.
    #[error(
        "`airlock/manifest.json.sig` is not a valid signature of `airlock/manifest.json` \
         by key `{key}`"
    )]
    BadSignature {
        /// Fingerprint of the key.
        key: String,
        /// Why the check failed.
        #[source]
        source: Error,
    },
    /// The manifest is not a valid bundle manifest.
    #[error("`airlock/manifest.json` is not a valid bundle manifest")]
    Manifest {
        /// The parse error.
        #[source]
        source: Error,
    },
    /// The manifest contradicts itself.
    #[error("`airlock/manifest.json` is inconsistent: {reason}")]
    ManifestInconsistent {
        /// What contradicts what.
        reason: String,
    },
    /// An entry's path is absolute or climbs out with `..`.
    #[error("entry `{path}` {reason}")]
    UnsafePath {
        /// The entry's path as written.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An entry is not a regular file.
    #[error("entry `{path}` is a {kind}{}; a bundle holds regular files only", link_text(.target))]
    NotRegularFile {
        /// The entry's path.
        path: String,
        /// What it is: `symbolic link`, `hard link`, `character device`, …
        kind: &'static str,
        /// The link target, for links.
        target: Option<String>,
    },
    /// An entry that has no place in a bundle.
    #[error(
        "entry `{path}` is not part of an airlock bundle (allowed: `airlock/manifest.json`, \
         `airlock/manifest.json.sig`, `oci-layout`, `index.json`, `blobs/sha256/<hex>`)"
    )]
    UnexpectedEntry {
        /// The entry's path.
        path: String,
    },
    /// The signature is not the second entry.
    #[error("entry `airlock/manifest.json.sig` is out of place: it must directly follow `airlock/manifest.json`")]
    SignatureOutOfPlace,
    /// The same path appears twice.
    #[error("entry `{path}` appears twice (first at tar offset {first_offset})")]
    DuplicateEntry {
        /// The path.
        path: String,
        /// Tar offset of its first header.
        first_offset: u64,
    },
    /// A blob that the manifest does not list.
    #[error("blob `{path}` is not listed in `airlock/manifest.json`")]
    UnlistedBlob {
        /// The entry's path.
        path: String,
    },
    /// A blob of the wrong size.
    #[error("blob `{path}` has {actual} bytes, `airlock/manifest.json` lists {expected}")]
    BlobSize {
        /// The entry's path.
        path: String,
        /// The size in the manifest.
        expected: u64,
        /// The size in the tar header.
        actual: u64,
    },
    /// A blob whose content does not hash to its digest.
    #[error("blob `{path}` does not match its digest: expected `{expected}`, got `{actual}`")]
    BlobDigest {
        /// The entry's path.
        path: String,
        /// The digest in the manifest (and the path).
        expected: Digest,
        /// The digest of the content.
        actual: Digest,
    },
    /// A blob the manifest lists is not in the bundle.
    #[error(
        "blob `{digest}` listed in `airlock/manifest.json` is missing from the bundle{}",
        more_text(*.more)
    )]
    MissingBlob {
        /// The first missing blob, in manifest order.
        digest: Digest,
        /// How many more are missing.
        more: usize,
    },
    /// A required entry is missing.
    #[error("the bundle has no `{path}` entry")]
    MissingEntry {
        /// The entry's path.
        path: &'static str,
    },
    /// `oci-layout` is not the OCI layout marker.
    #[error("`oci-layout` is invalid: {reason}")]
    OciLayout {
        /// What is wrong.
        reason: String,
    },
    /// `index.json` does not match the manifest.
    #[error("`index.json` does not match `airlock/manifest.json`: {reason}")]
    IndexJson {
        /// What is wrong.
        reason: String,
    },
    /// The tar stream stops without its end blocks (but the index follows).
    #[error("the tar stream ends without its two zero end blocks{}", inside_text(.inside))]
    NoEndOfArchive {
        /// The entry it stops in, if any.
        inside: Option<String>,
    },
    /// Non-zero bytes after the tar's end blocks.
    #[error("data after the end of the tar archive")]
    DataAfterEnd,
    /// The data frames are not followed by airlock's entry table and seek table.
    #[error("no frame index after the data frames (the file ends there)")]
    NoFrameIndex,
    /// The entry table or seek table disagrees with the file.
    #[error("the frame index does not match the file: {reason}")]
    FrameIndex {
        /// What disagrees.
        reason: String,
    },
}

fn link_text(target: &Option<String>) -> String {
    target
        .as_ref()
        .map(|t| format!(" to `{t}`"))
        .unwrap_or_default()
}

fn more_text(more: usize) -> String {
    match more {
        0 => String::new(),
        n => format!(" (and {n} more)"),
    }
}

fn inside_text(inside: &Option<String>) -> String {
    inside
        .as_ref()
        .map(|p| format!(", inside entry `{p}`"))
        .unwrap_or_default()
}

impl VerifyErrorKind {
    /// What to do about it, where something can be done.
    pub fn hint(&self) -> Option<&'static str> {
        use VerifyErrorKind::*;
        Some(match self {
            Truncated { .. } => {
                "the file was cut short (an interrupted copy?); copy it again and compare its \
                 size and sha256 with the original"
            }
            Decompress { .. } | TarHeader { .. } => {
                "the file was damaged after it was written; copy it again from the original"
            }
            FirstEntryNotManifest { .. } => {
                "is this an airlock bundle (`airlock bundle` writes one)?"
            }
            Unsigned => {
                "ask for a bundle signed with `airlock bundle --sign-key`, or pass \
                 --insecure-skip-signature to check the digests without authenticity"
            }
            BadSignature { .. } => {
                "the manifest was changed after it was signed, or it was signed with another \
                 key: check that --key is the public key of the bundle's signer"
            }
            UnsafePath { .. } | NotRegularFile { .. } | UnexpectedEntry { .. } => {
                "airlock never writes such an entry: the bundle was crafted or altered; do not \
                 unpack it"
            }
            BlobDigest { .. }
            | BlobSize { .. }
            | MissingBlob { .. }
            | UnlistedBlob { .. }
            | DuplicateEntry { .. }
            | SignatureOutOfPlace => {
                "the bundle was altered after it was made; get it again from its source"
            }
            NoFrameIndex => {
                "the file was cut short, or recompressed (`zstd -d | zstd` drops the index): \
                 it is not the file airlock wrote"
            }
            FrameIndex { .. } => {
                "the trailing index was altered or belongs to another file; get the bundle \
                 again from its source"
            }
            _ => return None,
        })
    }

    /// Whether the file offset of an error of this kind is that of a zstd data frame (else
    /// it is the place in the file where the problem is).
    fn offset_is_frame(&self) -> bool {
        !matches!(
            self,
            VerifyErrorKind::Read { .. }
                | VerifyErrorKind::Truncated { .. }
                | VerifyErrorKind::NoFrameIndex
                | VerifyErrorKind::FrameIndex { .. }
        )
    }

    /// A stable name for the `--json` report, e.g. `blobDigest`.
    pub fn code(&self) -> &'static str {
        use VerifyErrorKind::*;
        match self {
            Read { .. } => "read",
            Truncated { .. } => "truncated",
            Decompress { .. } => "decompress",
            TarHeader { .. } => "tarHeader",
            FirstEntryNotManifest { .. } => "firstEntryNotManifest",
            EntryTooLarge { .. } => "entryTooLarge",
            Unsigned => "unsigned",
            BadSignature { .. } => "badSignature",
            Manifest { .. } => "manifest",
            ManifestInconsistent { .. } => "manifestInconsistent",
            UnsafePath { .. } => "unsafePath",
            NotRegularFile { .. } => "notRegularFile",
            UnexpectedEntry { .. } => "unexpectedEntry",
            SignatureOutOfPlace => "signatureOutOfPlace",
            DuplicateEntry { .. } => "duplicateEntry",
            UnlistedBlob { .. } => "unlistedBlob",
            BlobSize { .. } => "blobSize",
            BlobDigest { .. } => "blobDigest",
            MissingBlob { .. } => "missingBlob",
            MissingEntry { .. } => "missingEntry",
            OciLayout { .. } => "ociLayout",
            IndexJson { .. } => "indexJson",
            NoEndOfArchive { .. } => "noEndOfArchive",
            DataAfterEnd => "dataAfterEnd",
            NoFrameIndex => "noFrameIndex",
            FrameIndex { .. } => "frameIndex",
        }
    }
}

impl VerifyError {
    fn new(kind: VerifyErrorKind) -> Self {
        VerifyError {
            kind: Box::new(kind),
            path: None,
            tar_offset: None,
            compressed_offset: None,
        }
    }

    fn at(mut self, tar_offset: Option<u64>, compressed_offset: Option<u64>) -> Self {
        self.tar_offset = tar_offset;
        self.compressed_offset = compressed_offset;
        self
    }

    fn entry(mut self, path: &str) -> Self {
        self.path = Some(path.to_owned());
        self
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = self.kind.to_string();
        f.write_str(&what)?;
        // Name the entry when the message does not already.
        if let Some(path) = self.path.as_ref().filter(|p| !what.contains(p.as_str())) {
            write!(f, " in entry `{path}`")?;
        }
        match (self.tar_offset, self.compressed_offset) {
            (Some(t), Some(c)) if self.kind.offset_is_frame() => {
                write!(f, " (tar offset {t}, zstd frame at byte offset {c})")?
            }
            (Some(t), Some(c)) => write!(f, " (tar offset {t}, byte offset {c})")?,
            (Some(t), None) => write!(f, " (tar offset {t})")?,
            (None, Some(c)) => write!(f, " (at byte offset {c})")?,
            (None, None) => {}
        }
        if let Some(hint) = self.kind.hint() {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for VerifyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&*self.kind)
    }
}

impl Serialize for VerifyError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        use VerifyErrorKind::*;
        let mut m = serializer.serialize_map(None)?;
        m.serialize_entry("kind", self.kind.code())?;
        let mut message = self.kind.to_string();
        let mut cause = std::error::Error::source(&*self.kind);
        while let Some(c) = cause {
            message.push_str(": ");
            message.push_str(&c.to_string());
            cause = c.source();
        }
        m.serialize_entry("message", &message)?;
        m.serialize_entry("path", &self.path)?;
        m.serialize_entry("tarOffset", &self.tar_offset)?;
        m.serialize_entry("compressedOffset", &self.compressed_offset)?;
        match &*self.kind {
            BlobDigest {
                expected, actual, ..
            } => {
                m.serialize_entry("expected", expected)?;
                m.serialize_entry("actual", actual)?;
            }
            BlobSize {
                expected, actual, ..
            } => {
                m.serialize_entry("expected", expected)?;
                m.serialize_entry("actual", actual)?;
            }
            MissingBlob { digest, .. } => m.serialize_entry("expected", digest)?,
            _ => {}
        }
        m.serialize_entry("hint", &self.kind.hint())?;
        m.end()
    }
}

/// Reads a whole bundle file and checks everything in it (see the module docs).
///
/// `key` is the signer's public key; `None` skips the signature check (only for an operator
/// who said `--insecure-skip-signature`): every digest is still checked, but against a
/// manifest nobody vouched for.
///
/// Never panics on bad input and never returns early: the report says what was read and
/// carries the first error, if any.
pub fn verify_bundle<R: Read + Send>(reader: R, key: Option<&VerifyingKey>) -> VerifyReport {
    let started = Instant::now();
    let consumed = AtomicU64::new(0);
    let (data_tx, data_rx) = mpsc::sync_channel::<Msg>(BUFFERS);
    let (pool_tx, pool_rx) = mpsc::channel::<Vec<u8>>();
    for _ in 0..BUFFERS + 1 {
        pool_tx.send(vec![0; CHUNK]).expect("receiver is alive");
    }

    let mut checker = Checker::new(key);
    let result = std::thread::scope(|s| {
        let consumed = &consumed;
        s.spawn(move || decode(reader, data_tx, pool_rx, consumed));
        // Dropping the receivers on return stops the decoder if we stop first.
        checker.run(data_rx, pool_tx)
    });

    let mut report = checker.report;
    report.bytes = checker.tar_pos;
    report.compressed_bytes = consumed.load(Ordering::Relaxed);
    report.seconds = started.elapsed().as_secs_f64();
    report.ok = result.is_ok();
    report.error = result.err();
    report
}

// ---- the decoding thread ----

enum Msg {
    /// Decoded tar bytes `buf[..len]`, all from one zstd frame.
    Data {
        buf: Vec<u8>,
        len: usize,
        tar_offset: u64,
        frame_offset: u64,
    },
    /// The data frames are over; `tail` is everything after them (the index frames).
    End {
        frames: Vec<FrameInfo>,
        tail: Vec<u8>,
        tail_offset: u64,
    },
    /// Decoding stopped; the error carries its byte offsets. `head` holds what the failed
    /// frame decoded to before the failure, when that starts at the frame's start: never
    /// checked, only used to name the entry whose header it holds.
    Failed(VerifyError, Vec<u8>),
}

/// Buffered input that knows its position in the file.
struct Input<'a, R> {
    reader: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// File offset of `buf[0]`.
    base: u64,
    eof: bool,
    consumed: &'a AtomicU64,
}

impl<R: Read> Input<'_, R> {
    fn pos(&self) -> u64 {
        self.base + self.start as u64
    }

    fn avail(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Reads until at least `min` bytes are buffered or the file ends.
    fn fill(&mut self, min: usize) -> Result<(), VerifyError> {
        while self.end - self.start < min && !self.eof {
            if self.start > 0 && (self.end == self.buf.len() || self.start == self.end) {
                self.buf.copy_within(self.start..self.end, 0);
                self.base += self.start as u64;
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.buf.len() {
                let len = self.buf.len();
                self.buf.resize(len.max(min).next_power_of_two(), 0);
            }
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.end += n;
                    self.consumed
                        .store(self.base + self.end as u64, Ordering::Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    let at = self.base + self.end as u64;
                    return Err(
                        VerifyError::new(VerifyErrorKind::Read { source }).at(None, Some(at))
                    );
                }
            }
        }
        Ok(())
    }
}

fn decode<R: Read>(
    reader: R,
    out: mpsc::SyncSender<Msg>,
    pool: mpsc::Receiver<Vec<u8>>,
    consumed: &AtomicU64,
) {
    let mut input = Input {
        reader,
        buf: vec![0; READ_BUF],
        start: 0,
        end: 0,
        base: 0,
        eof: false,
        consumed,
    };
    let mut head = Vec::new();
    match decode_frames(&mut input, &out, &pool, &mut head) {
        Ok(()) | Err(None) => {}
        Err(Some(e)) => {
            let _ = out.send(Msg::Failed(e, head));
        }
    }
}

/// `Err(None)`: the checking thread stopped listening.
fn decode_frames<R: Read>(
    input: &mut Input<'_, R>,
    out: &mpsc::SyncSender<Msg>,
    pool: &mpsc::Receiver<Vec<u8>>,
    head: &mut Vec<u8>,
) -> Result<(), Option<VerifyError>> {
    let mut dctx = zstd::stream::raw::Decoder::new()
        .map_err(|source| VerifyError::new(VerifyErrorKind::Decompress { source }))?;
    let mut frames: Vec<FrameInfo> = Vec::new();
    let mut tar_pos = 0u64;
    // Buffers are always CHUNK long and initialised; `filled` says how much is decoded.
    let mut buf = pool.recv().map_err(|_| None)?;
    let mut filled = 0;

    loop {
        // At a frame boundary: a data frame, the index frames, or the end of the file.
        input.fill(4)?;
        let avail = input.avail();
        let skippable = avail.len() >= 4
            && u32::from_le_bytes(avail[..4].try_into().expect("4 bytes")) & SKIPPABLE_MASK
                == SKIPPABLE_BASE;
        if !avail.is_empty() && avail.len() < 4 {
            let file_len = input.pos() + avail.len() as u64;
            return Err(Some(
                VerifyError::new(VerifyErrorKind::Truncated {
                    file_len,
                    what: "inside the magic number of a zstd frame".to_owned(),
                })
                .at(Some(tar_pos), Some(input.pos())),
            ));
        }
        if avail.is_empty() || skippable {
            let tail_offset = input.pos();
            let mut tail = avail.to_vec();
            while !input.eof {
                input.start = input.end;
                input.fill(READ_BUF)?;
                tail.extend_from_slice(input.avail());
                if tail.len() as u64 > MAX_TAIL_SIZE {
                    return Err(Some(
                        VerifyError::new(VerifyErrorKind::FrameIndex {
                            reason: format!(
                                "more than {MAX_TAIL_SIZE} bytes follow the data frames"
                            ),
                        })
                        .at(None, Some(tail_offset)),
                    ));
                }
            }
            input.start = input.end;
            out.send(Msg::End {
                frames,
                tail,
                tail_offset,
            })
            .map_err(|_| None)?;
            return Ok(());
        }

        let frame_offset = input.pos();
        let frame_tar = tar_pos;
        let mut chunk_tar = tar_pos;
        let frame_start = filled;
        // zstd does not advance the output position when a frame fails its checksum, but the
        // bytes are written: cleared here, the header they may hold can name the entry.
        let head_end = (frame_start + TAR_BLOCK as usize).min(buf.len());
        buf[frame_start..head_end].fill(0);
        loop {
            let (consumed, hint, pos) = {
                let mut inb = InBuffer::around(&input.buf[input.start..input.end]);
                let mut outb = OutBuffer::around_pos(&mut buf[..], filled);
                let hint = dctx.run(&mut inb, &mut outb);
                (inb.pos(), hint, outb.pos())
            };
            let hint = hint.map_err(|source| {
                if chunk_tar == frame_tar {
                    head.extend_from_slice(&buf[frame_start..head_end]);
                }
                VerifyError::new(VerifyErrorKind::Decompress { source })
                    .at(Some(frame_tar), Some(frame_offset))
            })?;
            input.start += consumed;
            tar_pos += (pos - filled) as u64;
            filled = pos;
            if hint == 0 {
                break;
            }
            if filled == buf.len() {
                let next = pool.recv().map_err(|_| None)?;
                let full = std::mem::replace(&mut buf, next);
                out.send(Msg::Data {
                    buf: full,
                    len: filled,
                    tar_offset: chunk_tar,
                    frame_offset,
                })
                .map_err(|_| None)?;
                filled = 0;
                chunk_tar = tar_pos;
            } else if input.start == input.end || consumed == 0 {
                let have = input.end - input.start;
                input.fill(have + 1)?;
                if input.end - input.start == have {
                    let file_len = input.pos() + have as u64;
                    return Err(Some(
                        VerifyError::new(VerifyErrorKind::Truncated {
                            file_len,
                            what: format!(
                                "in the middle of the zstd frame that starts at byte offset \
                                 {frame_offset}"
                            ),
                        })
                        .at(Some(tar_pos), Some(frame_offset)),
                    ));
                }
            }
        }
        frames.push(FrameInfo {
            compressed_offset: frame_offset,
            compressed_size: input.pos() - frame_offset,
            decompressed_offset: frame_tar,
            decompressed_size: tar_pos - frame_tar,
        });
        if filled > 0 {
            let next = pool.recv().map_err(|_| None)?;
            let full = std::mem::replace(&mut buf, next);
            out.send(Msg::Data {
                buf: full,
                len: filled,
                tar_offset: chunk_tar,
                frame_offset,
            })
            .map_err(|_| None)?;
            filled = 0;
        }
    }
}

// ---- the checking thread ----

enum TarState {
    /// Collecting a 512-byte header block.
    Header {
        block: Box<[u8; TAR_BLOCK as usize]>,
        have: usize,
        /// A first zero block was seen: this one must be the second.
        after_zero: bool,
    },
    /// Inside an entry's data.
    Data { left: u64, padding: u64 },
    /// Inside the padding after an entry's data.
    Padding { left: u64 },
    /// After the two zero blocks: only zeros may follow.
    Ended,
}

enum Sink {
    Collect(Vec<u8>),
    Hash(Hasher),
}

struct Current {
    path: String,
    header_offset: u64,
    frame_offset: u64,
    sink: Sink,
}

struct BlobState {
    size: u64,
    seen: bool,
}

struct Checker<'k> {
    key: Option<&'k VerifyingKey>,
    report: VerifyReport,
    state: TarState,
    tar_pos: u64,
    /// Compressed offset of the frame the bytes being checked come from.
    frame_offset: u64,
    /// Where the header being collected started.
    header_start: (u64, u64),
    entries: Vec<EntryInfo>,
    seen: HashMap<String, u64>,
    current: Option<Current>,
    manifest_json: Vec<u8>,
    /// The manifest, once its signature was checked; with the blobs by digest.
    manifest: Option<(BundleManifest, HashMap<Digest, BlobState>)>,
    index_json_seen: bool,
    oci_layout_seen: bool,
}

impl<'k> Checker<'k> {
    fn new(key: Option<&'k VerifyingKey>) -> Self {
        Checker {
            key,
            report: VerifyReport {
                ok: false,
                signature: SignatureReport::default(),
                manifest: None,
                entries: 0,
                blobs_verified: 0,
                bytes: 0,
                compressed_bytes: 0,
                seconds: 0.0,
                error: None,
            },
            state: new_header_state(false),
            tar_pos: 0,
            frame_offset: 0,
            header_start: (0, 0),
            entries: Vec::new(),
            seen: HashMap::new(),
            current: None,
            manifest_json: Vec::new(),
            manifest: None,
            index_json_seen: false,
            oci_layout_seen: false,
        }
    }

    fn run(
        &mut self,
        data: mpsc::Receiver<Msg>,
        pool: mpsc::Sender<Vec<u8>>,
    ) -> Result<(), VerifyError> {
        for msg in data {
            match msg {
                Msg::Data {
                    buf,
                    len,
                    tar_offset,
                    frame_offset,
                } => {
                    debug_assert_eq!(tar_offset, self.tar_pos);
                    self.frame_offset = frame_offset;
                    let r = self.feed(&buf[..len]);
                    let _ = pool.send(buf);
                    r?;
                }
                Msg::End {
                    frames,
                    tail,
                    tail_offset,
                } => return self.finish(&frames, &tail, tail_offset),
                Msg::Failed(mut e, head) => {
                    // Name the entry the decoder stopped in: the open one, or the one whose
                    // header starts the failed frame (read, not trusted: it only names).
                    if e.path.is_none() {
                        e.path = self.current.as_ref().map(|c| c.path.clone());
                    }
                    let at_header = matches!(self.state, TarState::Header { have: 0, .. });
                    if e.path.is_none() && at_header && head.len() == TAR_BLOCK as usize {
                        let block: &[u8; TAR_BLOCK as usize] =
                            head[..].try_into().expect("one block");
                        e.path = parse_header(block).ok().map(|h| h.path);
                    }
                    return Err(e);
                }
            }
        }
        // The decoder only stops without a message when it panicked.
        Err(VerifyError::new(VerifyErrorKind::Read {
            source: io::Error::other("the decoding thread stopped"),
        }))
    }

    /// An error at the current entry (or at the current position when between entries).
    fn entry_error(&self, kind: VerifyErrorKind) -> VerifyError {
        match &self.current {
            Some(c) => VerifyError::new(kind)
                .entry(&c.path)
                .at(Some(c.header_offset), Some(c.frame_offset)),
            None => VerifyError::new(kind).at(Some(self.tar_pos), Some(self.frame_offset)),
        }
    }

    fn feed(&mut self, mut data: &[u8]) -> Result<(), VerifyError> {
        while !data.is_empty() {
            match &mut self.state {
                TarState::Header {
                    block,
                    have,
                    after_zero,
                } => {
                    if *have == 0 {
                        self.header_start = (self.tar_pos, self.frame_offset);
                    }
                    let n = (block.len() - *have).min(data.len());
                    block[*have..*have + n].copy_from_slice(&data[..n]);
                    *have += n;
                    data = &data[n..];
                    self.tar_pos += n as u64;
                    if *have == block.len() {
                        let block = std::mem::replace(block, Box::new([0; TAR_BLOCK as usize]));
                        let after_zero = *after_zero;
                        self.on_header(&block, after_zero)?;
                    }
                }
                TarState::Data { left, padding } => {
                    let n = (*left).min(data.len() as u64) as usize;
                    let current = self.current.as_mut().expect("an entry is open");
                    match &mut current.sink {
                        Sink::Collect(v) => v.extend_from_slice(&data[..n]),
                        Sink::Hash(h) => h.update(&data[..n]),
                    }
                    *left -= n as u64;
                    data = &data[n..];
                    self.tar_pos += n as u64;
                    if *left == 0 {
                        let padding = *padding;
                        self.state = if padding == 0 {
                            new_header_state(false)
                        } else {
                            TarState::Padding { left: padding }
                        };
                        self.finish_entry()?;
                    }
                }
                TarState::Padding { left } => {
                    let n = (*left).min(data.len() as u64) as usize;
                    *left -= n as u64;
                    data = &data[n..];
                    self.tar_pos += n as u64;
                    if *left == 0 {
                        self.state = new_header_state(false);
                    }
                }
                TarState::Ended => {
                    if let Some(i) = data.iter().position(|&b| b != 0) {
                        let at = self.tar_pos + i as u64;
                        return Err(VerifyError::new(VerifyErrorKind::DataAfterEnd)
                            .at(Some(at), Some(self.frame_offset)));
                    }
                    self.tar_pos += data.len() as u64;
                    data = &[];
                }
            }
        }
        Ok(())
    }

    fn on_header(
        &mut self,
        block: &[u8; TAR_BLOCK as usize],
        after_zero: bool,
    ) -> Result<(), VerifyError> {
        let (offset, frame_offset) = self.header_start;
        let header_error = |reason: String| {
            VerifyError::new(VerifyErrorKind::TarHeader { reason })
                .at(Some(offset), Some(frame_offset))
        };
        if block.iter().all(|&b| b == 0) {
            if after_zero {
                self.state = TarState::Ended;
                return self.end_of_archive();
            }
            self.state = new_header_state(true);
            return Ok(());
        }
        if after_zero {
            return Err(header_error(
                "a lone zero block inside the archive".to_owned(),
            ));
        }
        let header = parse_header(block).map_err(header_error)?;
        let path = header.path;
        let at = |kind| {
            VerifyError::new(kind)
                .entry(&path)
                .at(Some(offset), Some(frame_offset))
        };

        // Structure first: nothing about an unsafe entry is looked at further.
        if let Some(reason) = unsafe_path(&path) {
            return Err(at(VerifyErrorKind::UnsafePath {
                path: path.clone(),
                reason,
            }));
        }
        if let Some(kind) = header.not_regular {
            return Err(at(VerifyErrorKind::NotRegularFile {
                path: path.clone(),
                kind,
                target: header.link,
            }));
        }
        let size = header.size;

        if self.entries.is_empty() {
            if path != MANIFEST_PATH {
                return Err(at(VerifyErrorKind::FirstEntryNotManifest {
                    found: path.clone(),
                }));
            }
            check_size(&path, size, MAX_MANIFEST_SIZE).map_err(at)?;
            return self.open(path, offset, frame_offset, size, collect(size));
        }
        if self.manifest.is_none() {
            // The entry after the manifest: its signature, or the manifest is unsigned.
            if path == SIGNATURE_PATH {
                self.report.signature.present = true;
                check_size(&path, size, MAX_SIGNATURE_SIZE).map_err(at)?;
                return self.open(path, offset, frame_offset, size, collect(size));
            }
            self.trust_manifest(None)?;
        }
        if let Some(&first_offset) = self.seen.get(&path) {
            return Err(at(VerifyErrorKind::DuplicateEntry {
                path: path.clone(),
                first_offset,
            }));
        }
        match path.as_str() {
            SIGNATURE_PATH => Err(at(VerifyErrorKind::SignatureOutOfPlace)),
            OCI_LAYOUT_PATH => {
                check_size(&path, size, MAX_OCI_LAYOUT_SIZE).map_err(at)?;
                self.open(path, offset, frame_offset, size, collect(size))
            }
            INDEX_PATH => {
                check_size(&path, size, MAX_INDEX_JSON_SIZE).map_err(at)?;
                self.open(path, offset, frame_offset, size, collect(size))
            }
            _ => {
                let Some(digest) = blob_digest(&path) else {
                    return Err(at(VerifyErrorKind::UnexpectedEntry { path: path.clone() }));
                };
                let (_, blobs) = self.manifest.as_ref().expect("trusted above");
                let Some(blob) = blobs.get(&digest) else {
                    return Err(at(VerifyErrorKind::UnlistedBlob { path: path.clone() }));
                };
                if blob.size != size {
                    return Err(at(VerifyErrorKind::BlobSize {
                        path: path.clone(),
                        expected: blob.size,
                        actual: size,
                    }));
                }
                self.open(path, offset, frame_offset, size, Sink::Hash(Hasher::new()))
            }
        }
    }

    fn open(
        &mut self,
        path: String,
        header_offset: u64,
        frame_offset: u64,
        size: u64,
        sink: Sink,
    ) -> Result<(), VerifyError> {
        self.seen.insert(path.clone(), header_offset);
        self.entries.push(EntryInfo {
            path: path.clone(),
            offset: header_offset,
            size,
        });
        self.report.entries += 1;
        self.current = Some(Current {
            path,
            header_offset,
            frame_offset,
            sink,
        });
        let padding = (TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK;
        if size == 0 {
            self.state = if padding == 0 {
                new_header_state(false)
            } else {
                TarState::Padding { left: padding }
            };
            self.finish_entry()
        } else {
            self.state = TarState::Data {
                left: size,
                padding,
            };
            Ok(())
        }
    }

    /// An entry's data is complete.
    fn finish_entry(&mut self) -> Result<(), VerifyError> {
        let current = self.current.take().expect("an entry is open");
        let err = |kind| {
            VerifyError::new(kind)
                .entry(&current.path)
                .at(Some(current.header_offset), Some(current.frame_offset))
        };
        match current.sink {
            Sink::Hash(h) => {
                let actual = h.finish();
                let expected = blob_digest(&current.path).expect("checked when opened");
                if actual != expected {
                    return Err(err(VerifyErrorKind::BlobDigest {
                        path: current.path.clone(),
                        expected,
                        actual,
                    }));
                }
                let (_, blobs) = self.manifest.as_mut().expect("trusted before any blob");
                if let Some(b) = blobs.get_mut(&expected) {
                    b.seen = true;
                }
                self.report.blobs_verified += 1;
                Ok(())
            }
            Sink::Collect(bytes) => match current.path.as_str() {
                MANIFEST_PATH => {
                    self.manifest_json = bytes;
                    Ok(())
                }
                SIGNATURE_PATH => {
                    // Kept in `current` until checked so errors can name it.
                    self.current = Some(Current {
                        sink: Sink::Collect(Vec::new()),
                        ..current
                    });
                    let r = self.trust_manifest(Some(&bytes));
                    self.current = None;
                    r
                }
                OCI_LAYOUT_PATH => {
                    self.oci_layout_seen = true;
                    check_oci_layout(&bytes)
                        .map_err(|reason| err(VerifyErrorKind::OciLayout { reason }))
                }
                INDEX_PATH => {
                    self.index_json_seen = true;
                    let (manifest, _) = self.manifest.as_ref().expect("trusted before index.json");
                    check_index_json(&bytes, manifest)
                        .map_err(|reason| err(VerifyErrorKind::IndexJson { reason }))
                }
                _ => unreachable!("only known entries are collected"),
            },
        }
    }

    /// Checks the signature over the manifest's exact bytes, then parses the manifest.
    fn trust_manifest(&mut self, signature: Option<&[u8]>) -> Result<(), VerifyError> {
        match (self.key, signature) {
            (Some(key), Some(sig)) => {
                let fingerprint = key.fingerprint();
                key.verify(&self.manifest_json, sig).map_err(|source| {
                    self.entry_error(VerifyErrorKind::BadSignature {
                        key: fingerprint.clone(),
                        source,
                    })
                })?;
                self.report.signature.checked = true;
                self.report.signature.key = Some(fingerprint);
            }
            (Some(_), None) => {
                return Err(VerifyError::new(VerifyErrorKind::Unsigned)
                    .entry(MANIFEST_PATH)
                    .at(Some(0), Some(0)));
            }
            (None, _) => {}
        }
        let manifest_err = |kind| {
            VerifyError::new(kind)
                .entry(MANIFEST_PATH)
                .at(Some(0), Some(0))
        };
        let manifest = BundleManifest::from_json_bytes(&self.manifest_json)
            .map_err(|source| manifest_err(VerifyErrorKind::Manifest { source }))?;
        let blobs = check_manifest(&manifest)
            .map_err(|reason| manifest_err(VerifyErrorKind::ManifestInconsistent { reason }))?;
        self.report.manifest = Some(ManifestSummary {
            spec: manifest.spec.clone(),
            created: manifest.created.clone(),
            airlock_version: manifest.airlock_version.clone(),
            totals: manifest.totals,
        });
        self.manifest = Some((manifest, blobs));
        Ok(())
    }

    /// The second zero block was read: every required entry must have been seen.
    fn end_of_archive(&mut self) -> Result<(), VerifyError> {
        let end = Some(self.tar_pos);
        if self.entries.is_empty() {
            return Err(VerifyError::new(VerifyErrorKind::MissingEntry {
                path: MANIFEST_PATH,
            })
            .at(end, None));
        }
        if self.manifest.is_none() {
            self.trust_manifest(None)?;
        }
        let (manifest, blobs) = self.manifest.as_ref().expect("trusted above");
        let mut missing = manifest
            .blobs
            .iter()
            .filter(|b| blobs.get(&b.digest).is_some_and(|s| !s.seen));
        if let Some(first) = missing.next() {
            return Err(VerifyError::new(VerifyErrorKind::MissingBlob {
                digest: first.digest.clone(),
                more: missing.count(),
            })
            .entry(&first.digest.blob_path())
            .at(end, None));
        }
        for (seen, path) in [
            (self.oci_layout_seen, OCI_LAYOUT_PATH),
            (self.index_json_seen, INDEX_PATH),
        ] {
            if !seen {
                return Err(VerifyError::new(VerifyErrorKind::MissingEntry { path }).at(end, None));
            }
        }
        Ok(())
    }

    /// The data frames are over: the tar must be complete and the index must describe it.
    fn finish(
        &mut self,
        frames: &[FrameInfo],
        tail: &[u8],
        tail_offset: u64,
    ) -> Result<(), VerifyError> {
        if !matches!(self.state, TarState::Ended) {
            let inside = self.current.as_ref().map(|c| c.path.clone());
            let kind = if tail.is_empty() {
                VerifyErrorKind::Truncated {
                    file_len: tail_offset,
                    what: match &inside {
                        Some(p) => format!("the tar stream stops inside entry `{p}`"),
                        None => "the tar stream stops before its end blocks".to_owned(),
                    },
                }
            } else {
                VerifyErrorKind::NoEndOfArchive {
                    inside: inside.clone(),
                }
            };
            let mut e = VerifyError::new(kind).at(Some(self.tar_pos), Some(tail_offset));
            e.path = inside;
            return Err(e);
        }
        check_index(frames, &self.entries, tail, tail_offset)
    }
}

fn new_header_state(after_zero: bool) -> TarState {
    TarState::Header {
        block: Box::new([0; TAR_BLOCK as usize]),
        have: 0,
        after_zero,
    }
}

fn collect(size: u64) -> Sink {
    // Sizes were capped by the caller.
    Sink::Collect(Vec::with_capacity(size as usize))
}

fn check_size(path: &str, size: u64, limit: u64) -> Result<(), VerifyErrorKind> {
    if size > limit {
        return Err(VerifyErrorKind::EntryTooLarge {
            path: path.to_owned(),
            size,
            limit,
        });
    }
    Ok(())
}

/// The digest of a `blobs/sha256/<64 lowercase hex>` path.
fn blob_digest(path: &str) -> Option<Digest> {
    let hex = path.strip_prefix("blobs/sha256/")?;
    Digest::parse(&format!("sha256:{hex}")).ok()
}

/// Why a path is unsafe to unpack, if it is.
fn unsafe_path(path: &str) -> Option<&'static str> {
    if path.starts_with('/') || path.starts_with('\\') || path.as_bytes().get(1) == Some(&b':') {
        return Some("has an absolute path");
    }
    if path.split(['/', '\\']).any(|c| c == "..") {
        return Some("climbs out of the bundle with `..`");
    }
    None
}

#[derive(Debug)]
struct Header {
    path: String,
    size: u64,
    /// What the entry is, when it is not a regular file.
    not_regular: Option<&'static str>,
    link: Option<String>,
}

fn field_str(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..end]
}

fn parse_octal(b: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(field_str(b)).ok()?;
    let s = s.trim_matches(|c| c == ' ');
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

/// A ustar (or GNU) header block; the checksum is checked.
fn parse_header(block: &[u8; TAR_BLOCK as usize]) -> Result<Header, String> {
    let stored = parse_octal(&block[148..156]).ok_or("unreadable checksum field")?;
    let sum: u64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    if sum != stored {
        return Err(format!(
            "checksum {stored:o} does not match the header's sum {sum:o}"
        ));
    }
    let name = String::from_utf8_lossy(field_str(&block[0..100])).into_owned();
    let posix = &block[257..263] == b"ustar\0";
    let prefix = if posix {
        String::from_utf8_lossy(field_str(&block[345..500])).into_owned()
    } else {
        String::new()
    };
    let path = if prefix.is_empty() {
        name
    } else {
        format!("{prefix}/{name}")
    };
    let size_field = &block[124..136];
    let size = if size_field[0] & 0x80 != 0 {
        // GNU base-256, as written for entries of 8 GiB and more.
        if size_field[1..4].iter().any(|&b| b != 0) || size_field[0] != 0x80 {
            return Err(format!("size of entry `{path}` is out of range"));
        }
        size_field[4..]
            .iter()
            .fold(0u64, |n, &b| (n << 8) | u64::from(b))
    } else {
        parse_octal(size_field).ok_or_else(|| format!("unreadable size of entry `{path}`"))?
    };
    let link = || Some(String::from_utf8_lossy(field_str(&block[157..257])).into_owned());
    let (not_regular, link) = match block[156] {
        b'0' | 0 => (None, None),
        b'1' => (Some("hard link"), link()),
        b'2' => (Some("symbolic link"), link()),
        b'3' => (Some("character device"), None),
        b'4' => (Some("block device"), None),
        b'5' => (Some("directory"), None),
        b'6' => (Some("FIFO"), None),
        b'7' => (Some("contiguous file"), None),
        b'x' | b'g' => (Some("pax extended header"), None),
        b'L' | b'K' => (Some("GNU long name record"), None),
        _ => (Some("special entry"), None),
    };
    Ok(Header {
        path,
        size,
        not_regular,
        link,
    })
}

/// Checks that `block` is the tar header of the regular-file entry `path` of `size` bytes, with
/// a checksum that holds: what a reader that seeks to an entry through the (unsigned) frame
/// index checks before it trusts the bytes after it. The error says what differs.
pub fn check_entry_header(
    block: &[u8; TAR_BLOCK as usize],
    path: &str,
    size: u64,
) -> Result<(), String> {
    let h = parse_header(block)?;
    if let Some(kind) = h.not_regular {
        return Err(format!("it is a {kind}, not a regular file"));
    }
    if h.path != path {
        return Err(format!("it names `{}`", h.path.escape_debug()));
    }
    if h.size != size {
        return Err(format!("it says {} bytes", h.size));
    }
    Ok(())
}

/// The signed manifest must agree with itself; returns its blobs by digest.
fn check_manifest(m: &BundleManifest) -> Result<HashMap<Digest, BlobState>, String> {
    let mut blobs = HashMap::with_capacity(m.blobs.len());
    for b in &m.blobs {
        let state = BlobState {
            size: b.size,
            seen: false,
        };
        if blobs.insert(b.digest.clone(), state).is_some() {
            return Err(format!("blob `{}` is listed twice", b.digest));
        }
    }
    for i in &m.images {
        match blobs.get(&i.digest) {
            None => {
                return Err(format!(
                    "image `{}` has digest `{}`, which is not in the blob list",
                    i.reference, i.digest
                ))
            }
            Some(b) if b.size != i.size => {
                return Err(format!(
                    "image `{}` has size {}, its blob `{}` {}",
                    i.reference, i.size, i.digest, b.size
                ))
            }
            Some(_) => {}
        }
    }
    if m.blobs
        .iter()
        .try_fold(0u64, |sum, b| sum.checked_add(b.size))
        .is_none()
    {
        return Err("the blob sizes add up to more than 2^64 bytes".to_owned());
    }
    let totals = Totals::of(&m.images, &m.blobs);
    if totals != m.totals {
        return Err(format!(
            "totals say {} images, {} blobs, {} bytes; the lists hold {}, {}, {}",
            m.totals.images,
            m.totals.blobs,
            m.totals.bytes,
            totals.images,
            totals.blobs,
            totals.bytes
        ));
    }
    Ok(blobs)
}

fn check_oci_layout(bytes: &[u8]) -> Result<(), String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Layout {
        image_layout_version: String,
    }
    let layout: Layout =
        serde_json::from_slice(bytes).map_err(|e| format!("not an OCI layout marker: {e}"))?;
    if layout.image_layout_version != "1.0.0" {
        return Err(format!(
            "imageLayoutVersion `{}`, expected `1.0.0`",
            layout.image_layout_version
        ));
    }
    Ok(())
}

const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Every descriptor is one of the manifest's images (same digest, size and media type), and
/// every image tag (or digest pin) is named.
fn check_index_json(bytes: &[u8], m: &BundleManifest) -> Result<(), String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Index {
        schema_version: u32,
        manifests: Vec<Descriptor>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Descriptor {
        media_type: String,
        digest: Digest,
        size: u64,
        #[serde(default)]
        annotations: HashMap<String, String>,
    }
    let index: Index =
        serde_json::from_slice(bytes).map_err(|e| format!("not an OCI index: {e}"))?;
    if index.schema_version != 2 {
        return Err(format!(
            "schemaVersion {}, expected 2",
            index.schema_version
        ));
    }
    let mut names: HashMap<&str, &Digest> = HashMap::new();
    for (i, d) in index.manifests.iter().enumerate() {
        let Some(image) = m.images.iter().find(|img| img.digest == d.digest) else {
            return Err(format!(
                "descriptor {i} (`{}`) is not an image of the manifest",
                d.digest
            ));
        };
        if image.size != d.size || image.media_type != d.media_type {
            return Err(format!(
                "descriptor {i} (`{}`) says {} bytes of `{}`, the manifest {} bytes of `{}`",
                d.digest, d.size, d.media_type, image.size, image.media_type
            ));
        }
        if let Some(name) = d.annotations.get(REF_NAME) {
            names.insert(name, &d.digest);
        }
    }
    for image in &m.images {
        let mut wanted: Vec<String> = image
            .tags
            .iter()
            .map(|t| format!("{}:{t}", image.name))
            .collect();
        if wanted.is_empty() {
            wanted.push(format!("{}@{}", image.name, image.digest));
        }
        for name in wanted {
            match names.get(name.as_str()) {
                Some(&d) if *d == image.digest => {}
                Some(d) => {
                    return Err(format!(
                        "`{name}` points at `{d}`, the manifest says `{}`",
                        image.digest
                    ))
                }
                None => return Err(format!("no descriptor names `{name}`")),
            }
        }
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryTableDoc {
    version: u32,
    entries: Vec<EntryInfo>,
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes(b[..4].try_into().expect("4 bytes"))
}

/// The payload of the skippable frame at the start of `buf` (at file offset `at`): the
/// `name`d table, whose frame must carry `magic`.
fn skippable_payload<'a>(
    buf: &'a [u8],
    magic: u32,
    name: &str,
    at: u64,
    file_len: u64,
) -> Result<&'a [u8], VerifyError> {
    let truncated = |what: String| {
        VerifyError::new(VerifyErrorKind::Truncated { file_len, what }).at(None, Some(at))
    };
    let hdr = SKIPPABLE_HEADER_LEN as usize;
    if buf.len() < hdr {
        return Err(truncated(format!("inside the {name}'s frame header")));
    }
    let found = le32(buf);
    if found != magic {
        let reason =
            format!("expected the {name} (magic `{magic:#010X}`), found magic `{found:#010X}`");
        return Err(VerifyError::new(VerifyErrorKind::FrameIndex { reason }).at(None, Some(at)));
    }
    let len = le32(&buf[4..]) as usize;
    buf.get(hdr..hdr + len)
        .ok_or_else(|| truncated(format!("inside the {name}")))
}

/// The entry table and the seek table after the data frames describe exactly what was read.
fn check_index(
    frames: &[FrameInfo],
    entries: &[EntryInfo],
    tail: &[u8],
    tail_offset: u64,
) -> Result<(), VerifyError> {
    let file_len = tail_offset + tail.len() as u64;
    let truncated = |what: &str, at: u64| {
        VerifyError::new(VerifyErrorKind::Truncated {
            file_len,
            what: what.to_owned(),
        })
        .at(None, Some(at))
    };
    let bad = |reason: String, at: u64| {
        VerifyError::new(VerifyErrorKind::FrameIndex { reason }).at(None, Some(at))
    };
    if tail.is_empty() {
        return Err(VerifyError::new(VerifyErrorKind::NoFrameIndex).at(None, Some(tail_offset)));
    }
    let hdr = SKIPPABLE_HEADER_LEN as usize;

    // The entry table.
    let json = skippable_payload(
        tail,
        ENTRY_TABLE_MAGIC,
        "entry table",
        tail_offset,
        file_len,
    )?;
    let json_len = json.len();
    let table: EntryTableDoc = serde_json::from_slice(json)
        .map_err(|e| bad(format!("unreadable entry table: {e}"), tail_offset))?;
    if table.version != ENTRY_TABLE_VERSION {
        return Err(bad(
            format!(
                "entry table version {}, expected {ENTRY_TABLE_VERSION}",
                table.version
            ),
            tail_offset,
        ));
    }
    for i in 0..table.entries.len().max(entries.len()) {
        let describe = |e: Option<&EntryInfo>| match e {
            Some(e) => format!(
                "`{}` at tar offset {} with {} bytes",
                e.path, e.offset, e.size
            ),
            None => "nothing".to_owned(),
        };
        let (listed, actual) = (table.entries.get(i), entries.get(i));
        if listed != actual {
            let mut e = bad(
                format!(
                    "entry {i}: the entry table lists {}, the tar has {}",
                    describe(listed),
                    describe(actual)
                ),
                tail_offset,
            );
            e.path = actual.or(listed).map(|x| x.path.clone());
            e.tar_offset = actual.or(listed).map(|x| x.offset);
            return Err(e);
        }
    }
    for e in entries {
        if frames
            .binary_search_by_key(&e.offset, |f| f.decompressed_offset)
            .is_err()
        {
            let mut err = bad(
                format!("entry `{}` does not start a zstd frame", e.path),
                tail_offset,
            );
            err.path = Some(e.path.clone());
            err.tar_offset = Some(e.offset);
            return Err(err);
        }
    }

    // The seek table.
    let seek_at = hdr + json_len;
    let seek_offset = tail_offset + seek_at as u64;
    let rest = &tail[seek_at..];
    if rest.is_empty() {
        return Err(truncated("the seek table is missing", seek_offset));
    }
    let payload = skippable_payload(rest, SEEK_TABLE_MAGIC, "seek table", seek_offset, file_len)?;
    let payload_len = payload.len();
    let after = rest.len() - hdr - payload_len;
    if after > 0 {
        return Err(bad(
            format!("{after} bytes follow the seek table"),
            seek_offset + (hdr + payload_len) as u64,
        ));
    }
    let footer_len = SEEK_FOOTER_LEN as usize;
    if payload.len() < footer_len {
        return Err(bad(
            format!("seek table of {payload_len} bytes has no room for its footer"),
            seek_offset,
        ));
    }
    let footer = &payload[payload.len() - footer_len..];
    let (count, descriptor, magic) = (le32(footer) as usize, footer[4], le32(&footer[5..]));
    if magic != SEEKABLE_MAGIC {
        return Err(bad(
            format!("no seekable magic `{SEEKABLE_MAGIC:#010X}` at the end, found `{magic:#010X}`"),
            file_len - 4,
        ));
    }
    let entry_len = if descriptor & 0x80 != 0 { 12 } else { 8 };
    if descriptor & 0x7C != 0 || count * entry_len + footer_len != payload.len() {
        return Err(bad(
            format!(
                "seek table footer (frame count {count}, descriptor `{descriptor:#04X}`) does \
                 not fit its {payload_len} bytes"
            ),
            file_len - SEEK_FOOTER_LEN,
        ));
    }
    if count != frames.len() {
        return Err(bad(
            format!(
                "the seek table lists {count} frames, the file has {}",
                frames.len()
            ),
            seek_offset,
        ));
    }
    for (i, (f, e)) in frames
        .iter()
        .zip(payload.chunks_exact(entry_len))
        .enumerate()
    {
        let (c, d) = (u64::from(le32(e)), u64::from(le32(&e[4..])));
        if c != f.compressed_size || d != f.decompressed_size {
            let mut err = bad(
                format!(
                    "the seek table says frame {i} has {c} compressed and {d} decompressed \
                     bytes, the frame at byte offset {} has {} and {}",
                    f.compressed_offset, f.compressed_size, f.decompressed_size
                ),
                seek_offset + (hdr + i * entry_len) as u64,
            );
            err.tar_offset = Some(f.decompressed_offset);
            return Err(err);
        }
    }
    Ok(())
}

// ---- reading the head only (`airlock inspect`) ----

/// Small entries read from the head are capped (manifests and configs are a few KiB).
const MAX_HEAD_BLOB_SIZE: u64 = 4 << 20;
/// All small entries read from the head together; past this the head ends early (the sizes
/// of the images whose documents lie beyond are then unknown).
const MAX_HEAD_SIZE: u64 = 64 << 20;

/// What the first entries of a bundle say, read without decoding the rest (see [`read_head`]).
///
/// Nothing here is verified: the signature is only looked for, not checked.
#[derive(Debug, Clone)]
pub struct BundleHead {
    /// The exact bytes of `airlock/manifest.json`.
    pub manifest_json: Vec<u8>,
    /// The parsed manifest.
    pub manifest: BundleManifest,
    /// The bytes of `airlock/manifest.json.sig`, when the bundle carries one.
    pub signature: Option<Vec<u8>>,
    /// For each image (by its digest) whose indexes and manifests are in the head: how many
    /// unique blobs it uses and their total size, from the sizes the manifest lists.
    pub image_sizes: HashMap<Digest, ImageSize>,
}

/// The blobs one image uses (see [`BundleHead::image_sizes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageSize {
    /// Unique blobs: the index or manifest itself, child manifests, configs, layers.
    pub blobs: u64,
    /// Their total size in bytes.
    pub bytes: u64,
}

/// Reads only the head of a bundle: `airlock/manifest.json`, its signature if present, and
/// the small blobs (indexes, manifests, configs) that follow, stopping at the first layer.
///
/// Only the first zstd frames are decoded, so this is quick whatever the bundle's size.
pub fn read_head<R: Read>(reader: R) -> Result<BundleHead, VerifyError> {
    let mut tar = HeadReader {
        inner: zstd::stream::read::Decoder::new(Counting {
            inner: reader,
            read: 0,
        })
        .map_err(|source| VerifyError::new(VerifyErrorKind::Read { source }))?,
        pos: 0,
    };
    let (offset, header) = tar.header()?.ok_or_else(|| {
        VerifyError::new(VerifyErrorKind::MissingEntry {
            path: MANIFEST_PATH,
        })
    })?;
    if header.path != MANIFEST_PATH || header.not_regular.is_some() {
        return Err(VerifyError::new(VerifyErrorKind::FirstEntryNotManifest {
            found: header.path,
        })
        .at(Some(offset), None));
    }
    let err_at = |path: &str, offset: u64| {
        let path = path.to_owned();
        move |kind| VerifyError::new(kind).entry(&path).at(Some(offset), None)
    };
    check_size(MANIFEST_PATH, header.size, MAX_MANIFEST_SIZE).map_err(err_at(MANIFEST_PATH, 0))?;
    let manifest_json = tar.data(header.size)?;
    let manifest = BundleManifest::from_json_bytes(&manifest_json)
        .map_err(|source| err_at(MANIFEST_PATH, 0)(VerifyErrorKind::Manifest { source }))?;

    let small: HashMap<&Digest, u64> = manifest
        .blobs
        .iter()
        .filter(|b| crate::manifest::is_small_media_type(&b.media_type))
        .map(|b| (&b.digest, b.size))
        .collect();
    let mut signature = None;
    let mut blobs: HashMap<Digest, Vec<u8>> = HashMap::new();
    // The small blobs kept together are capped too, not only each one.
    let mut head_bytes = 0u64;
    // Past the manifest, a damaged or cut file only ends the head early: the inventory is
    // known, the sizes of the images whose manifests are missing are not.
    while let Ok(Some((offset, h))) = tar.header() {
        if h.not_regular.is_some() || unsafe_path(&h.path).is_some() {
            break;
        }
        if h.path == SIGNATURE_PATH && blobs.is_empty() && signature.is_none() {
            check_size(SIGNATURE_PATH, h.size, MAX_SIGNATURE_SIZE)
                .map_err(err_at(SIGNATURE_PATH, offset))?;
            match tar.data(h.size) {
                Ok(data) => signature = Some(data),
                Err(_) => break,
            }
        } else if h.path == OCI_LAYOUT_PATH && h.size <= MAX_OCI_LAYOUT_SIZE {
            if tar.skip(h.size).is_err() {
                break;
            }
        } else if let Some(d) = blob_digest(&h.path).filter(|d| {
            small.get(d).is_some_and(|&s| s == h.size)
                && h.size <= MAX_HEAD_BLOB_SIZE
                && head_bytes + h.size <= MAX_HEAD_SIZE
        }) {
            head_bytes += h.size;
            match tar.data(h.size) {
                Ok(data) => blobs.insert(d, data),
                Err(_) => break,
            };
        } else {
            // The first layer (or anything else): the head ends here.
            break;
        }
    }
    let image_sizes = image_sizes(&manifest, &blobs);
    Ok(BundleHead {
        manifest_json,
        manifest,
        signature,
        image_sizes,
    })
}

/// For each image whose manifests were all read: its unique blobs and their size.
fn image_sizes(m: &BundleManifest, docs: &HashMap<Digest, Vec<u8>>) -> HashMap<Digest, ImageSize> {
    #[derive(Deserialize)]
    struct Doc {
        #[serde(default)]
        manifests: Vec<Ref>,
        config: Option<Ref>,
        #[serde(default)]
        layers: Vec<Ref>,
    }
    #[derive(Deserialize)]
    struct Ref {
        digest: Digest,
    }
    let sizes: HashMap<&Digest, u64> = m.blobs.iter().map(|b| (&b.digest, b.size)).collect();
    let mut out = HashMap::new();
    'images: for image in &m.images {
        let mut used = std::collections::HashSet::new();
        let mut todo = vec![(image.digest.clone(), 0)];
        while let Some((d, depth)) = todo.pop() {
            if !used.insert(d.clone()) || depth > 2 {
                continue;
            }
            let Some(doc) = docs
                .get(&d)
                .and_then(|b| serde_json::from_slice::<Doc>(b).ok())
            else {
                continue 'images;
            };
            for r in doc.manifests {
                todo.push((r.digest, depth + 1));
            }
            for r in doc.config.into_iter().chain(doc.layers) {
                used.insert(r.digest);
            }
        }
        out.insert(
            image.digest.clone(),
            ImageSize {
                blobs: used.len() as u64,
                // Saturating: the sizes are not checked here (nothing in the head is).
                bytes: used
                    .iter()
                    .filter_map(|d| sizes.get(d))
                    .fold(0u64, |sum, &s| sum.saturating_add(s)),
            },
        );
    }
    out
}

/// Sequential tar reading over the zstd decoder, for the head only.
struct HeadReader<R: Read> {
    inner: zstd::stream::read::Decoder<'static, io::BufReader<Counting<R>>>,
    pos: u64,
}

/// Counts the bytes read from the file, to report where it ends early.
struct Counting<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

impl<R: Read> HeadReader<R> {
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), VerifyError> {
        let at = self.pos;
        let read = &mut self.inner;
        read.read_exact(buf).map_err(|source| {
            let kind = if source.kind() == io::ErrorKind::UnexpectedEof {
                VerifyErrorKind::Truncated {
                    file_len: read.get_ref().get_ref().read,
                    what: "the tar stream stops in the head".to_owned(),
                }
            } else {
                VerifyErrorKind::Decompress { source }
            };
            VerifyError::new(kind).at(Some(at), None)
        })?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    /// The next header and its offset, or `None` at the end blocks.
    fn header(&mut self) -> Result<Option<(u64, Header)>, VerifyError> {
        let offset = self.pos;
        let mut block = [0; TAR_BLOCK as usize];
        self.read_exact(&mut block)?;
        if block.iter().all(|&b| b == 0) {
            return Ok(None);
        }
        let h = parse_header(&block).map_err(|reason| {
            VerifyError::new(VerifyErrorKind::TarHeader { reason }).at(Some(offset), None)
        })?;
        Ok(Some((offset, h)))
    }

    /// An entry's data (size already capped by the caller), and its padding.
    fn data(&mut self, size: u64) -> Result<Vec<u8>, VerifyError> {
        let mut data = vec![0; size as usize];
        self.read_exact(&mut data)?;
        self.skip_padding(size)?;
        Ok(data)
    }

    fn skip(&mut self, size: u64) -> Result<(), VerifyError> {
        let mut left = size;
        let mut buf = [0; 4096];
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            self.read_exact(&mut buf[..n])?;
            left -= n as u64;
        }
        self.skip_padding(size)
    }

    fn skip_padding(&mut self, size: u64) -> Result<(), VerifyError> {
        let padding = ((TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK) as usize;
        let mut pad = [0; TAR_BLOCK as usize];
        self.read_exact(&mut pad[..padding])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{write_bundle, ArchiveOptions, BundleContents};
    use crate::manifest::{BlobRecord, ImageRecord, FORMAT_VERSION};
    use crate::sign::SigningKey;
    use crate::store::BlobStore;

    const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

    /// A signed bundle of one image (manifest, config, two layers) with small frames.
    fn bundle(signed: bool) -> (Vec<u8>, SigningKey) {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path().join("cache")).unwrap();
        let mut blobs = Vec::new();
        let mut put = |data: &[u8], media_type: &str| {
            let digest = Digest::of_bytes(data);
            store.put_bytes(&digest, data).unwrap();
            blobs.push(BlobRecord {
                digest,
                size: data.len() as u64,
                media_type: media_type.into(),
            });
        };
        put(&b"layer one ".repeat(300), LAYER);
        put(
            &(0..2000u32)
                .map(|i| (i * 7 % 251) as u8)
                .collect::<Vec<_>>(),
            LAYER,
        );
        put(
            br#"{"architecture":"amd64","os":"linux"}"#,
            "application/vnd.oci.image.config.v1+json",
        );
        let manifest_doc = br#"{"schemaVersion":2}"#;
        put(manifest_doc, MANIFEST);
        let top = blobs.last().unwrap().clone();
        let images = vec![ImageRecord {
            name: "r.test/a".into(),
            reference: "r.test/a:1".into(),
            tags: vec!["1".into()],
            digest: top.digest.clone(),
            media_type: MANIFEST.into(),
            size: top.size,
            source: "r.test/a".into(),
            platforms: vec!["linux/amd64".into()],
            original_digest: None,
        }];
        let manifest = BundleManifest {
            format_version: FORMAT_VERSION,
            created: "2026-11-27T10:00:00Z".into(),
            airlock_version: "0.1.0".into(),
            spec: SpecInfo {
                name: "t".into(),
                sha256: Digest::of_bytes(b"spec").hex().into(),
            },
            totals: Totals::of(&images, &blobs),
            images,
            blobs: blobs.clone(),
            base: None,
        };
        let manifest_json = manifest.to_json_bytes();
        let key = SigningKey::generate();
        let sig = key.sign(&manifest_json);
        let index_json = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": MANIFEST, "digest": top.digest.to_string(), "size": top.size,
                "annotations": {REF_NAME: "r.test/a:1"}}],
        }))
        .unwrap();
        let out = dir.path().join("b.tar.zst");
        let opts = ArchiveOptions {
            frame_size: 1024,
            threads: 2,
            ..ArchiveOptions::default()
        };
        let contents = BundleContents {
            manifest_json: &manifest_json,
            signature: signed.then_some(sig.as_bytes()),
            index_json: &index_json,
            blobs: &blobs,
            store: &store,
            gate: None,
        };
        write_bundle(&out, &contents, &opts).unwrap();
        (std::fs::read(out).unwrap(), key)
    }

    #[test]
    fn a_good_bundle_passes_and_reports_what_it_read() {
        let (file, key) = bundle(true);
        let public = key.verifying_key();
        let r = verify_bundle(&file[..], Some(&public));
        assert!(r.ok, "{:?}", r.error);
        assert!(r.signature.present && r.signature.checked);
        assert_eq!(r.signature.key, Some(public.fingerprint()));
        assert_eq!(r.blobs_verified, 4);
        assert_eq!(r.entries, 8);
        assert_eq!(r.compressed_bytes, file.len() as u64);
        let m = r.manifest.unwrap();
        assert_eq!(m.totals.blobs, 4);

        // Without a key: every digest checked, the signature not.
        let r = verify_bundle(&file[..], None);
        assert!(r.ok && r.signature.present && !r.signature.checked);
    }

    #[test]
    fn a_key_on_an_unsigned_bundle_is_refused_before_anything_else() {
        let (file, key) = bundle(false);
        let r = verify_bundle(&file[..], Some(&key.verifying_key()));
        let e = r.error.unwrap();
        assert!(matches!(*e.kind, VerifyErrorKind::Unsigned), "{e}");
        assert!(r.manifest.is_none());
        assert!(verify_bundle(&file[..], None).ok);
    }

    #[test]
    fn every_truncation_fails() {
        let (file, key) = bundle(true);
        let public = key.verifying_key();
        for cut in 0..file.len() {
            let r = verify_bundle(&file[..cut], Some(&public));
            let e = r.error.unwrap_or_else(|| panic!("cut at {cut} passed"));
            assert!(!r.ok);
            let text = e.to_string();
            assert!(
                matches!(
                    *e.kind,
                    VerifyErrorKind::Truncated { .. } | VerifyErrorKind::NoFrameIndex
                ) || cut < 4,
                "cut at {cut}: {text}"
            );
            if let VerifyErrorKind::Truncated { file_len, .. } = *e.kind {
                assert_eq!(file_len, cut as u64, "{text}");
            }
        }
    }

    #[test]
    fn every_flipped_byte_fails_or_changes_nothing() {
        let (file, key) = bundle(true);
        let public = key.verifying_key();
        let tar = zstd::decode_all(&file[..]).unwrap();
        let mut passed = 0;
        for at in 0..file.len() {
            let mut bad = file.clone();
            bad[at] ^= 0x20;
            let r = verify_bundle(&bad[..], Some(&public));
            // zstd ignores a few bits of its encoding (a flip there decodes to the very same
            // tar): what passes must be exactly the content that was signed.
            if r.ok {
                assert_eq!(
                    zstd::decode_all(&bad[..]).unwrap(),
                    tar,
                    "a flipped byte at {at} passed with other content"
                );
                passed += 1;
            }
        }
        assert!(
            passed < file.len() / 100,
            "{passed} of {} flips passed",
            file.len()
        );
    }

    #[test]
    fn head_reads_the_inventory_and_sizes() {
        let (file, _) = bundle(true);
        let head = read_head(&file[..]).unwrap();
        assert!(head.signature.is_some());
        assert_eq!(head.manifest.images.len(), 1);
        let image = &head.manifest.images[0];
        // The image manifest has no config or layer references here: itself only.
        assert_eq!(
            head.image_sizes[&image.digest],
            ImageSize {
                blobs: 1,
                bytes: image.size
            }
        );
    }

    #[test]
    fn headers_refuse_special_entries_and_escaping_names() {
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().name[..4].copy_from_slice(b"../x");
        h.set_size(0);
        h.set_entry_type(tar::EntryType::Fifo);
        h.set_cksum();
        let parsed = parse_header(h.as_bytes()).unwrap();
        assert_eq!(parsed.path, "../x");
        assert_eq!(parsed.not_regular, Some("FIFO"));
        assert!(unsafe_path("../x").is_some());
        assert!(unsafe_path("a/../../x").is_some());
        assert!(unsafe_path("/x").is_some());
        assert!(unsafe_path("blobs/sha256/ab").is_none());

        let mut block = *h.as_bytes();
        block[0] ^= 1;
        assert!(parse_header(&block).unwrap_err().contains("checksum"));
    }
}
