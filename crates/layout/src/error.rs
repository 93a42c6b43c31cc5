//! The one error type of this crate.

use std::io;
use std::path::PathBuf;

use crate::digest::Digest;

/// Everything that can go wrong in `airlock-layout`.
///
/// Each variant names its subject: a file path, a digest, a bundle entry path or a byte offset.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A string is not a `sha256:<64 lowercase hex digits>` digest.
    #[error("invalid digest `{input}`: {reason}")]
    InvalidDigest {
        /// The string as given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A file system operation failed.
    #[error("cannot {action} `{}`", path.display())]
    Io {
        /// What was being done, e.g. "create directory".
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// Content did not hash to the digest, or had the wrong size.
    #[error(
        "blob `{digest}` failed verification: expected {expected_size} bytes, \
         got {actual_size} bytes with digest `{actual}`"
    )]
    BlobMismatch {
        /// The digest the content was supposed to have.
        digest: Digest,
        /// The size the content was supposed to have.
        expected_size: u64,
        /// The size actually received.
        actual_size: u64,
        /// The digest of what was actually received.
        actual: Digest,
    },

    /// More bytes were written to a [`BlobWriter`](crate::BlobWriter) than the blob's size.
    #[error("blob `{digest}` is larger than its expected {expected} bytes")]
    BlobOverflow {
        /// The blob being written.
        digest: Digest,
        /// Its expected size.
        expected: u64,
    },

    /// A blob file in the store does not have the size its record says.
    #[error("blob `{digest}` at `{}` has {actual} bytes, the bundle lists {expected}", path.display())]
    BlobSize {
        /// The blob.
        digest: Digest,
        /// Its file in the store.
        path: PathBuf,
        /// The size in the blob record.
        expected: u64,
        /// The size of the file.
        actual: u64,
    },

    /// A blob read from the store while the bundle was written did not hash to its digest
    /// (the cache entry was damaged or changed after it was committed). Nothing was written
    /// under the bundle's name.
    #[error("cached blob `{digest}` at `{}` does not match its digest (its bytes hash to `{actual}`)\n  hint: remove the file; the next bundle run fetches the blob again", path.display())]
    CachedBlobMismatch {
        /// The blob.
        digest: Digest,
        /// Its file in the store.
        path: PathBuf,
        /// What its bytes hash to.
        actual: Digest,
    },

    /// The bundle write was cancelled (the run was interrupted); nothing was written under the
    /// bundle's name.
    #[error("writing `{}` was interrupted; nothing was written under that name", path.display())]
    Cancelled {
        /// The bundle file that was not written.
        path: PathBuf,
    },

    /// A blob the bundle was waiting for will not arrive in the store (its download failed).
    #[error("blob `{digest}` did not arrive in the cache: its download failed")]
    NotArrived {
        /// The blob.
        digest: Digest,
    },

    /// The same blob appears twice in the list of blobs to write.
    #[error("blob `{digest}` is listed twice in the bundle")]
    DuplicateBlob {
        /// The repeated digest.
        digest: Digest,
    },

    /// `airlock/manifest.json` is not valid JSON or does not match the format.
    #[error("cannot parse `airlock/manifest.json`")]
    ManifestJson {
        /// The parser's error, with line and column.
        #[source]
        source: serde_json::Error,
    },

    /// `airlock/manifest.json` is of a format version this code does not read.
    #[error(
        "`airlock/manifest.json` has format version {found}, this airlock reads versions \
         1 to {supported}; hint: use an airlock release that reads format version {found}"
    )]
    UnsupportedFormatVersion {
        /// The version in the file.
        found: u32,
        /// The newest version this crate reads and writes.
        supported: u32,
    },

    /// A tar entry path does not fit a ustar header.
    #[error("bundle entry path `{path}` is longer than 100 bytes")]
    EntryPathTooLong {
        /// The path.
        path: String,
    },

    /// An [`ArchiveOptions`](crate::ArchiveOptions) value is out of range.
    #[error("invalid archive option `{name}` = {value}: {expected}")]
    InvalidOption {
        /// The option's field name.
        name: &'static str,
        /// The value given.
        value: i64,
        /// The accepted range.
        expected: &'static str,
    },

    /// zstd failed to compress a frame.
    #[error("cannot compress the frame of bundle entry `{path}` at tar offset {offset}")]
    Compress {
        /// The tar entry the frame belongs to.
        path: String,
        /// Decompressed (tar stream) offset of the frame.
        offset: u64,
        /// The zstd error.
        #[source]
        source: io::Error,
    },

    /// The seek table or entry table at the end of a bundle is missing or inconsistent.
    #[error("invalid bundle index at byte offset {offset}: {defect}")]
    InvalidIndex {
        /// File offset of the faulty structure.
        offset: u64,
        /// What is wrong.
        defect: IndexDefect,
    },

    /// The entry table of a bundle is not valid JSON.
    #[error("cannot parse the bundle entry table at byte offset {offset}")]
    EntryTableJson {
        /// File offset of the entry table frame.
        offset: u64,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },

    /// A path is not in the bundle's entry table.
    #[error("no entry `{path}` in the bundle")]
    UnknownEntry {
        /// The path asked for.
        path: String,
    },

    /// Reading the bundle file failed.
    #[error("cannot read the bundle at byte offset {offset}")]
    Read {
        /// File offset of the read.
        offset: u64,
        /// The I/O error.
        #[source]
        source: io::Error,
    },

    /// A zstd frame of the bundle does not decode to what the seek table says.
    #[error("cannot decompress the zstd frame at byte offset {offset}")]
    Decompress {
        /// File offset of the frame.
        offset: u64,
        /// The zstd error, or a size mismatch.
        #[source]
        source: io::Error,
    },

    /// A key file cannot be used to sign or verify.
    #[error("key `{}`: {problem}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong, with a hint.
        problem: KeyProblem,
    },

    /// A signing key could not be encoded as PKCS#8 (or encrypted).
    #[error("cannot encode the signing key as PKCS#8: {detail}")]
    KeyEncode {
        /// The encoder's message.
        detail: String,
    },

    /// A signature does not verify.
    #[error("bad signature: {defect}")]
    BadSignature {
        /// What failed.
        defect: SignatureDefect,
    },
}

/// What is wrong with a key file (see [`Error::Key`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyProblem {
    /// No `-----BEGIN …-----` line.
    #[error(
        "not a PEM file (no `-----BEGIN` line)\n  hint: pass a PEM key such as one written by \
         `airlock key generate`"
    )]
    NotPem,
    /// A PEM block of a kind airlock does not read.
    #[error(
        "unsupported PEM block `{label}`\n  hint: airlock reads `PRIVATE KEY`, `ENCRYPTED \
         PRIVATE KEY`, `EC PRIVATE KEY` and cosign's `ENCRYPTED SIGSTORE PRIVATE KEY` for \
         signing, `PUBLIC KEY` for verifying"
    )]
    UnsupportedPem {
        /// The block's label.
        label: String,
    },
    /// The key is encrypted and no passphrase was given.
    #[error(
        "the key is encrypted and no passphrase was given\n  hint: pass --passphrase-stdin or \
         set AIRLOCK_KEY_PASSPHRASE"
    )]
    NeedsPassphrase,
    /// The passphrase does not decrypt the key.
    #[error(
        "wrong passphrase (the key does not decrypt)\n  hint: check the passphrase given \
         with --passphrase-stdin or AIRLOCK_KEY_PASSPHRASE"
    )]
    WrongPassphrase,
    /// Encrypted in a way airlock does not decrypt (PBES1, DES, an unknown KDF).
    #[error(
        "unsupported key encryption: {detail}\n  hint: re-encrypt it with `openssl pkcs8 \
         -topk8 -v2 aes-256-cbc -in OLD.key -out NEW.key`"
    )]
    UnsupportedEncryption {
        /// The decoder's message.
        detail: String,
    },
    /// An OpenSSL 1.0-style encrypted PEM (`Proc-Type: 4,ENCRYPTED` headers).
    #[error(
        "legacy PEM encryption (`Proc-Type: 4,ENCRYPTED`) is not supported\n  hint: convert it \
         with `openssl pkcs8 -topk8 -v2 aes-256-cbc -in OLD.key -out NEW.key`"
    )]
    LegacyEncryption,
    /// A key for another algorithm or curve.
    #[error(
        "the key is {algorithm}, airlock signs with ECDSA P-256 only\n  hint: make a key with \
         `airlock key generate --out NAME` or `openssl genpkey -algorithm EC -pkeyopt \
         ec_paramgen_curve:P-256`"
    )]
    NotP256 {
        /// The algorithm found, e.g. `RSA` or `ECDSA P-384`.
        algorithm: String,
    },
    /// A public key where a private key belongs.
    #[error(
        "this is a public key, signing needs the private key\n  hint: pass NAME.key, not NAME.pub"
    )]
    PublicNotPrivate,
    /// A private key where a public key belongs.
    #[error(
        "this is a private key, verifying needs the public key\n  hint: pass NAME.pub (or make \
         it with `openssl pkey -in NAME.key -pubout`)"
    )]
    PrivateNotPublic,
    /// A certificate where a public key belongs.
    #[error(
        "this is a certificate, not a public key\n  hint: extract the key with `openssl x509 \
         -in CERT.pem -pubkey -noout`"
    )]
    CertificateNotKey,
    /// The structure inside the PEM does not decode.
    #[error("malformed {kind} key: {detail}")]
    Malformed {
        /// The structure: `PEM`, `PKCS#8`, `SEC1`, ….
        kind: &'static str,
        /// The decoder's message.
        detail: String,
    },
}

/// Why a signature does not verify (see [`Error::BadSignature`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureDefect {
    /// The signature text is empty.
    #[error("the signature is empty")]
    Empty,
    /// The signature text is not base64.
    #[error("the signature is not base64 ({detail})")]
    NotBase64 {
        /// The decoder's message.
        detail: String,
    },
    /// The decoded signature is not a DER ECDSA signature.
    #[error("the signature is not a DER-encoded ECDSA signature ({len} bytes after base64)")]
    NotDer {
        /// Length of the decoded bytes.
        len: u64,
    },
    /// A well-formed signature, but not by this key over these bytes.
    #[error(
        "the signature does not match key `{key}` over these bytes (made by another key, or \
         the data changed)"
    )]
    Mismatch {
        /// Fingerprint of the key tried.
        key: String,
    },
}

/// What is wrong with a bundle's trailing index (see [`Error::InvalidIndex`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IndexDefect {
    /// The file is too short to hold a seek table footer.
    #[error("file of {len} bytes is too short for a zstd seek table")]
    TooShort {
        /// The file length.
        len: u64,
    },
    /// The footer does not end with the seekable magic number.
    #[error("no zstd seekable magic `0x8F92EAB1`, found `{found:#010X}`")]
    NoSeekableMagic {
        /// The 4 bytes found instead, little-endian.
        found: u32,
    },
    /// Reserved bits of the seek table descriptor are set.
    #[error("reserved bits set in the seek table descriptor `{descriptor:#04X}`")]
    ReservedBits {
        /// The descriptor byte.
        descriptor: u8,
    },
    /// The seek table does not fit in the file.
    #[error("seek table of {frames} frames does not fit in a file of {len} bytes")]
    SeekTableTooLarge {
        /// Frame count from the footer.
        frames: u32,
        /// The file length.
        len: u64,
    },
    /// A skippable frame header has the wrong magic number.
    #[error("expected skippable frame magic `{expected:#010X}`, found `{found:#010X}`")]
    BadSkippableMagic {
        /// The magic expected there.
        expected: u32,
        /// The magic found.
        found: u32,
    },
    /// A skippable frame's size field disagrees with the layout of the file.
    #[error("skippable frame size {found} does not match the expected {expected}")]
    BadSkippableSize {
        /// The size expected.
        expected: u64,
        /// The size in the frame header.
        found: u64,
    },
    /// The data frames' compressed sizes do not add up to where the tables begin.
    #[error("data frames add up to {sum} bytes, but the index frames begin at byte {start}")]
    FrameSizesMismatch {
        /// Sum of compressed frame sizes.
        sum: u64,
        /// Offset of the first index frame.
        start: u64,
    },
    /// A frame claims an implausible decompressed size.
    #[error("frame {frame} claims {size} decompressed bytes (limit {limit})")]
    FrameTooLarge {
        /// Frame number.
        frame: usize,
        /// Its decompressed size.
        size: u64,
        /// The largest size accepted.
        limit: u64,
    },
    /// The entry table has an unknown version.
    #[error("entry table version {found} is not supported (expected `1`)")]
    EntryTableVersion {
        /// The version found.
        found: u32,
    },
    /// An entry does not start at a frame boundary.
    #[error("entry `{path}` at tar offset {offset} does not start a frame")]
    EntryNotAtFrameStart {
        /// The entry.
        path: String,
        /// Its tar offset.
        offset: u64,
    },
    /// An entry extends past the end of the tar stream or overlaps the previous one.
    #[error("entry `{path}` at tar offset {offset} with {size} bytes is out of place")]
    EntryOutOfBounds {
        /// The entry.
        path: String,
        /// Its tar offset.
        offset: u64,
        /// Its data size.
        size: u64,
    },
    /// Two entries have the same path.
    #[error("entry `{path}` appears twice")]
    DuplicateEntry {
        /// The repeated path.
        path: String,
    },
}

impl Error {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
