//! What [`verify_bundle`](super::verify_bundle) reports: the `--json` document of `airlock
//! verify`, and the first thing wrong with a bundle with its offsets and hint.

use std::fmt;
use std::io;

use serde::Serialize;

use super::content::{IndexJsonDefect, ManifestDefect, OciLayoutDefect};
use crate::digest::Digest;
use crate::error::Error;
use crate::manifest::{SpecInfo, Totals};
use crate::reader::header::TarHeaderDefect;

/// What [`verify_bundle`](super::verify_bundle) found; serialises as the `--json` report of `airlock verify`.
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
    /// The bases of a delta (empty for a full bundle): each blob they list is not in this
    /// file and was not checked here (`verify --base` checks it in the base).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bases: Vec<crate::manifest::BaseBundle>,
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
        reason: TarHeaderDefect,
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
        reason: ManifestDefect,
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
    /// A blob of a delta that its manifest says comes from a base: a delta holds exactly the
    /// blobs its bases lack, so the file is not the one its manifest describes.
    #[error(
        "blob `{path}` is in the delta, but `airlock/manifest.json` says it comes from the base \
         `{base}`"
    )]
    BlobFromBase {
        /// The entry's path.
        path: String,
        /// The base (its name, else its digest).
        base: String,
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
        reason: OciLayoutDefect,
    },
    /// `index.json` does not match the manifest.
    #[error("`index.json` does not match `airlock/manifest.json`: {reason}")]
    IndexJson {
        /// What is wrong.
        reason: IndexJsonDefect,
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
            | BlobFromBase { .. }
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
            BlobFromBase { .. } => "blobFromBase",
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
    pub(crate) fn new(kind: VerifyErrorKind) -> Self {
        VerifyError {
            kind: Box::new(kind),
            path: None,
            tar_offset: None,
            compressed_offset: None,
        }
    }

    pub(crate) fn at(mut self, tar_offset: Option<u64>, compressed_offset: Option<u64>) -> Self {
        self.tar_offset = tar_offset;
        self.compressed_offset = compressed_offset;
        self
    }

    pub(crate) fn entry(mut self, path: &str) -> Self {
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
