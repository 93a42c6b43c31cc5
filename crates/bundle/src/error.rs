//! Errors of the online side.

use std::path::PathBuf;

/// Everything that can stop or spoil a bundle run.
///
/// Each variant names its subject: the spec file and line, the image reference, the digest or
/// the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec or lock file could not be read.
    #[error("cannot read `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The spec has a syntax or schema error, or names a bad or duplicate image.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Spec {
        /// The spec file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong, and what to do.
        message: String,
    },
    /// The lock file is malformed.
    #[error("{}:{line}:{column}: not a valid airlock lock file: {message}\n  hint: fix the entry, or write the lock again with `airlock lock` or `--lock FILE`", path.display())]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong, naming the image where one is concerned.
        message: String,
    },
    /// One or more images could not be bundled (each is reported in detail).
    #[error("{count} of {total} images failed; no bundle was written\n  hint: fix the images named above, or pass --keep-going to bundle the rest")]
    ImagesFailed {
        /// How many failed.
        count: usize,
        /// How many the spec names.
        total: usize,
    },
    /// Some images could not be resolved for the lock (each is reported in detail).
    #[error("{count} of {total} images could not be resolved; no lock was written")]
    LockFailed {
        /// How many failed.
        count: usize,
        /// How many the spec names.
        total: usize,
    },
    /// Every image failed, so there is nothing to write even with `--keep-going`.
    #[error("no image could be bundled; no bundle was written")]
    NothingToBundle,
    /// The registry client could not be set up (a CA file, an auth file).
    #[error(transparent)]
    Client(#[from] airlock_registry::Error),
    /// The blob cache or the archive writer failed.
    #[error(transparent)]
    Layout(#[from] airlock_layout::Error),
    /// A `--base` cannot be used.
    #[error(transparent)]
    Base(#[from] crate::base::BaseError),
    /// The output directory has too little free space for the bundle.
    #[error(transparent)]
    NoSpace(#[from] airlock_layout::volume::NoSpace),
    /// Writing a file (the lock) failed.
    #[error("cannot write `{}`", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A blob fetched again in this run (its cache entry did not match its digest) was read
    /// back with other bytes while the bundle was written: the disk under the cache, or
    /// something writing into it, cannot be trusted.
    #[error("cached blob `{digest}` at `{}` was fetched again and verified, but did not match its digest when read back; no bundle was written\n  hint: check the disk and whatever else writes under the cache directory, or pass another --cache-dir", path.display())]
    CacheUnreliable {
        /// The blob.
        digest: String,
        /// Its cache file.
        path: PathBuf,
    },
    /// A `verify:` key or trusted root (or `--verify-upstream-key`, `--trusted-root`) cannot
    /// be used.
    #[error("cannot use the upstream signature policy `{what}`\n  hint: check the file, or change `verify:` in the spec")]
    Policy {
        /// The key or trusted root file, or the keyless identity.
        what: String,
        /// The cause.
        #[source]
        source: airlock_cosign::CosignError,
    },
    /// A keyless `verify:` names no trusted root, and none was given.
    #[error("`{image}`: keyless `verify:` needs a sigstore trusted root\n  hint: add `trustedRoot: FILE` to it, or pass --trusted-root FILE")]
    NoTrustedRoot {
        /// The first image concerned.
        image: String,
    },
    /// A blocking task panicked or was cancelled.
    #[error("internal task failed")]
    Join(#[from] tokio::task::JoinError),
}

/// Why one image could not be bundled.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Every source (mirrors, then the origin) failed.
    #[error(
        "`{image}`: not found or not reachable at any source:{}",
        attempts_text(attempts)
    )]
    Unresolved {
        /// The canonical reference.
        image: String,
        /// One entry per source tried, in order: the source and its rendered error.
        attempts: Vec<(String, String)>,
    },
    /// A registry operation on a resolved image failed.
    #[error("`{image}`: {what} from `{source_name}` failed")]
    Registry {
        /// The canonical reference.
        image: String,
        /// What was being fetched (e.g. "manifest sha256:…").
        what: String,
        /// The repository it was fetched from.
        source_name: String,
        /// The cause.
        #[source]
        source: Box<airlock_registry::Error>,
    },
    /// The digest differs from the lock file.
    #[error("`{image}`: `{source_name}` serves {actual} but the lock says {expected}\n  hint: the source changed or lags behind; check it, or run without --locked to update the lock")]
    LockMismatch {
        /// The canonical reference.
        image: String,
        /// Where the differing digest came from (a mirror or the origin).
        source_name: String,
        /// Digest in the lock.
        expected: String,
        /// Digest served.
        actual: String,
    },
    /// `--locked` was given but the lock does not list this image.
    #[error("`{image}` is not in the lock file `{}`\n  hint: run without --locked (or `--lock FILE` alone) to resolve it and write the lock", lock.display())]
    NotLocked {
        /// The canonical reference.
        image: String,
        /// The lock file.
        lock: PathBuf,
    },
    /// A manifest or index is not valid JSON of a known kind.
    #[error("`{image}`: manifest {digest} ({media_type}) cannot be read: {message}")]
    BadManifest {
        /// The canonical reference.
        image: String,
        /// The manifest's digest.
        digest: String,
        /// Its media type.
        media_type: String,
        /// What is wrong.
        message: String,
    },
    /// The index has no manifest for any of the requested platforms.
    #[error("`{image}`: no manifest for {wanted} in index {digest} (it has: {available})\n  hint: change `platforms` in the spec")]
    NoPlatform {
        /// The canonical reference.
        image: String,
        /// The index digest.
        digest: String,
        /// The requested platforms.
        wanted: String,
        /// The platforms the index offers.
        available: String,
    },
    /// The image has no upstream signature valid under its `verify:` policy.
    #[error("`{image}`: refused: no valid upstream signature of {digest} ({policy}): {}\n  hint: check that the image is signed with the key or identity in `verify:`, or remove `verify:` for it", found_text(found))]
    UpstreamSignature {
        /// The canonical reference.
        image: String,
        /// The digest whose signature was looked for (upstream, as served).
        digest: String,
        /// The policy, for people (`key FILE`, `identity … from …`).
        policy: String,
        /// What was found instead, one entry per signature layer (none: unsigned).
        found: Vec<String>,
    },
    /// A blob could not be downloaded and verified.
    #[error("`{image}`: blob {digest} from `{source_name}`")]
    Blob {
        /// One image that references the blob.
        image: String,
        /// The blob digest.
        digest: String,
        /// The repository it was fetched from.
        source_name: String,
        /// The cause.
        #[source]
        source: Box<BlobError>,
    },
    /// A file of `spec.files` (or a node binary) could not be bundled.
    #[error("file `{file}`: {problem}")]
    File {
        /// The file's name in the bundle.
        file: String,
        /// What went wrong.
        problem: ContentProblem,
    },
    /// A chart of `spec.charts` could not be bundled.
    #[error("chart `{chart}`: {problem}")]
    Chart {
        /// The chart, `NAME VERSION` with where it comes from.
        chart: String,
        /// What went wrong.
        problem: ContentProblem,
    },
}

/// Why a file or a chart could not be bundled.
#[derive(Debug, thiserror::Error)]
pub enum ContentProblem {
    /// The bytes downloaded (or read) do not hash to the sha256 they must have; nothing was
    /// cached.
    #[error("`{url}` does not match its sha256: expected {expected}, got {actual} ({size} bytes); nothing was cached\n  hint: {hint}")]
    Mismatch {
        /// Where the bytes came from (a URL without credentials, or a local path).
        url: String,
        /// The sha256 it must have.
        expected: String,
        /// What the bytes hash to.
        actual: String,
        /// How many bytes were received.
        size: u64,
        /// What to check.
        hint: &'static str,
    },
    /// The checksum file does not exist at any source.
    #[error("checksum file `{url}` does not exist (404){}\n  hint: check `checksumUrl`, or give `sha256` in the spec", attempts_text(attempts))]
    ChecksumNotFound {
        /// The checksum file's URL.
        url: String,
        /// Each source asked, with its answer.
        attempts: Vec<(String, String)>,
    },
    /// The checksum file has no usable sha256 for this file.
    #[error("checksum file `{url}`: {message}\n  hint: check `checksumUrl`, or give `sha256` in the spec")]
    Checksum {
        /// The checksum file's URL.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// Every source (mirrors, then the origin) failed.
    #[error("`{url}`: no source could serve it:{}", attempts_text(attempts))]
    Unreachable {
        /// The URL asked for (the origin).
        url: String,
        /// Each source asked, with its error.
        attempts: Vec<(String, String)>,
    },
    /// A local file could not be read.
    #[error("cannot read `{}`", path.display())]
    Local {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The blob cache could not be written.
    #[error("cannot store `{what}` in the cache")]
    Cache {
        /// What was stored.
        what: String,
        /// The cause.
        #[source]
        source: Box<BlobError>,
    },
    /// An OCI chart's registry failed, or the chart is not what it must be; the text says.
    #[error("{message}")]
    Chart {
        /// What is wrong, naming the URL or digest, and what to do.
        message: String,
    },
}

/// Why a blob download failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The registry failed.
    #[error(transparent)]
    Registry(Box<airlock_registry::Error>),
    /// The cache rejected it (wrong size or digest) or could not be written.
    #[error(transparent)]
    Layout(#[from] airlock_layout::Error),
    /// Writing to or reading from the cache failed.
    #[error("cache file `{}`", path.display())]
    Io {
        /// The cache file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Another image's download of this shared blob failed.
    #[error("the download of this shared blob failed for `{image}`")]
    Shared {
        /// The image whose download failed.
        image: String,
    },
    /// The blocking writer task failed.
    #[error("internal task failed")]
    Join(#[from] tokio::task::JoinError),
}

impl From<airlock_registry::Error> for BlobError {
    fn from(e: airlock_registry::Error) -> Self {
        BlobError::Registry(Box::new(e))
    }
}

fn found_text(found: &[String]) -> String {
    if found.is_empty() {
        "no signature found".to_string()
    } else {
        found.join("; ")
    }
}

fn attempts_text(attempts: &[(String, String)]) -> String {
    let mut s = String::new();
    let mut hints: Vec<&str> = Vec::new();
    for (source, err) in attempts {
        let mut lines = err.split("\n  hint: ");
        s.push_str(&format!("\n    {source}: {}", lines.next().unwrap_or("")));
        for h in lines {
            if !hints.contains(&h) {
                hints.push(h);
            }
        }
    }
    for h in hints {
        s.push_str(&format!("\n  hint: {h}"));
    }
    s
}

pub use airlock_registry::render_error as render;
