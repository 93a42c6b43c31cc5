//! The online side of airlock: a spec goes in, a verified bundle file comes out.
//!
//! ```no_run
//! # async fn demo() -> Result<(), airlock_bundle::Error> {
//! use std::sync::Arc;
//! use airlock_bundle::{BundleOptions, NoReport, Spec};
//!
//! let spec = Spec::load("bundle-specs/kubernetes-v1.28.yaml".as_ref())?;
//! let opts = BundleOptions::new(spec, "k8s.tar.zst".into(), "/var/cache/airlock".into());
//! let outcome = airlock_bundle::bundle(opts, Arc::new(NoReport)).await?;
//! println!("{} images, {} bytes", outcome.manifest.totals.images, outcome.manifest.totals.bytes);
//! # Ok(()) }
//! ```
//!
//! The run: every spec image is resolved to a digest (mirrors first, then the origin), its
//! indexes, manifests and configs are fetched and checked, platforms are filtered, then every
//! unique layer is downloaded into a content-addressed cache (resumable, hashed while
//! streaming), and finally the bundle is assembled from the cache by `airlock-layout`.

#![warn(missing_docs)]

mod artifacts;
pub mod base;
mod charts;
mod error;
mod files;
pub mod kubeadm;
pub mod lock;
pub mod outdated;
pub mod platform;
mod pull;
pub mod spec;
mod time;
pub mod version;

use std::path::{Path, PathBuf};

/// Kubernetes release data (`spec.kubernetes`), shared with the offline side.
pub use airlock_kube as kubernetes;
pub use airlock_kube::KubernetesError;
pub use airlock_layout::{ArchiveOptions, ArchiveStats, BundleManifest};
pub use airlock_registry::{ClientOptions, Credentials, RateLimit};
pub use base::{Base, BaseError, BaseSignature};
pub use error::{render as render_error, BlobError, ContentProblem, Error, ImageError};
pub use lock::Lock;
pub use outdated::{outdated, OutdatedOptions, OutdatedReport};
pub use pull::{apply_spec_hosts, bundle, resolve_lock, sources as image_sources, Source};
pub use spec::Spec;

/// What a bundle run needs.
#[derive(Debug)]
pub struct BundleOptions {
    /// The validated spec.
    pub spec: Spec,
    /// The bundle file to write (`NAME.tar.zst`).
    pub output: PathBuf,
    /// The content-addressed blob cache (reused by later runs).
    pub cache_dir: PathBuf,
    /// How many registry requests and downloads run at once.
    pub jobs: usize,
    /// Write the bundle with the images that worked when some fail.
    pub keep_going: bool,
    /// Write the resolved digests to this lock file.
    pub write_lock: Option<PathBuf>,
    /// Refuse any image whose digest differs from this lock file.
    pub locked: Option<PathBuf>,
    /// Registry client settings (credentials, retries); the spec's `registries` are merged in.
    pub client: ClientOptions,
    /// Creation time written into the manifest, in seconds since the epoch (`None`: now).
    /// `SOURCE_DATE_EPOCH` is the usual way to set it for reproducible bundles.
    pub created: Option<u64>,
    /// Compression settings.
    pub archive: ArchiveOptions,
    /// Sign `airlock/manifest.json` with this key (stored as `airlock/manifest.json.sig`).
    pub sign: Option<airlock_layout::SigningKey>,
    /// Verify the upstream signature of every image without a `verify:` of its own (or of its
    /// registry) with this public key (`--verify-upstream-key`).
    pub verify_upstream_key: Option<PathBuf>,
    /// The sigstore `trusted_root.json` for keyless `verify:` entries that name none
    /// (`--trusted-root`).
    pub trusted_root: Option<PathBuf>,
    /// The bases of a delta (`--base`, opened with [`Base::open_all`]): every blob one of
    /// them holds is left out of the file and listed under the first that holds it.
    pub bases: Vec<Base>,
    /// Write parts of at most this many bytes and a part list instead of one file
    /// (`--split`, see [`airlock_layout::write_split_bundle_until`]).
    pub split: Option<u64>,
}

impl BundleOptions {
    /// Options with defaults for everything but the spec, output and cache.
    pub fn new(spec: Spec, output: PathBuf, cache_dir: PathBuf) -> BundleOptions {
        BundleOptions {
            spec,
            output,
            cache_dir,
            jobs: 8,
            keep_going: false,
            write_lock: None,
            locked: None,
            client: ClientOptions::default(),
            created: None,
            archive: ArchiveOptions::default(),
            sign: None,
            verify_upstream_key: None,
            trusted_root: None,
            bases: Vec::new(),
            split: None,
        }
    }
}

/// What `airlock lock` needs: resolve every image to a digest, fetch nothing else.
#[derive(Debug)]
pub struct LockOptions {
    /// The validated spec.
    pub spec: Spec,
    /// The lock file to write (conventionally `SPEC.lock`, where `bundle --locked` looks).
    pub output: PathBuf,
    /// How many registry requests run at once.
    pub jobs: usize,
    /// Registry client settings; the spec's `registries` are merged in.
    pub client: ClientOptions,
    /// Ask the spec's mirrors first, as a bundle run does (default: the origin first).
    pub via_mirrors: bool,
}

/// The result of [`resolve_lock`].
#[derive(Debug)]
pub struct LockOutcome {
    /// The lock file written.
    pub output: PathBuf,
    /// What it holds.
    pub lock: Lock,
    /// Things the operator should know (an image locked from a mirror, a broken source).
    pub warnings: Vec<String>,
}

/// The result of a run that wrote a bundle.
#[derive(Debug)]
pub struct BundleOutcome {
    /// The bundle file.
    pub output: PathBuf,
    /// The manifest written into it.
    pub manifest: BundleManifest,
    /// Images that failed (only with `keep_going`).
    pub failures: Vec<ImageError>,
    /// Things the operator should know (filtered digest pins, platform mismatches).
    pub warnings: Vec<String>,
    /// Bytes downloaded in this run (resumed bytes not counted).
    pub downloaded_bytes: u64,
    /// Bytes of interrupted earlier downloads that this run resumed from.
    pub resumed_bytes: u64,
    /// Bytes found in the cache.
    pub cached_bytes: u64,
    /// Archive statistics.
    pub archive: ArchiveStats,
    /// The request budgets registries announced during the run (Docker Hub's `RateLimit-*`
    /// headers), by registry.
    pub rate_limits: Vec<(String, RateLimit)>,
    /// The bases given (`--base`), in order, with what their signatures said; the manifest's
    /// `bases` lists those that supply blobs.
    pub bases: Vec<Base>,
}

/// Progress of a run, for the binary to render. Every method has an empty default.
pub trait Reporter: Send + Sync {
    /// An image was resolved to a digest at a source.
    fn resolved(&self, _image: &str, _source: &str, _digest: &str) {}
    /// An image failed (the run goes on to report every failure).
    fn image_failed(&self, _image: &str, _error: &ImageError) {}
    /// Something the operator should know.
    fn warn(&self, _message: &str) {}
    /// Downloads start: totals to fetch, and what the cache already has.
    fn download_start(&self, _blobs: u64, _bytes: u64, _cached_blobs: u64, _cached_bytes: u64) {}
    /// A download resumes an earlier interrupted one: `offset` of the blob's `size` bytes are
    /// already in the cache and will not be downloaded (nor counted by `download_progress`).
    fn download_resumed(&self, _digest: &str, _offset: u64, _size: u64) {}
    /// Bytes arrived.
    fn download_progress(&self, _bytes: u64) {}
    /// An image has `done` of its `total` blobs in the cache.
    fn image_progress(&self, _image: &str, _done: usize, _total: usize) {}
    /// The archive is being written.
    fn writing(&self, _entries: u64, _bytes: u64) {}
}

/// A reporter that says nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoReport;
impl Reporter for NoReport {}

/// `SPEC.lock`: where `lock` writes and `bundle --locked` reads a spec's lock by default.
pub fn default_lock_path(spec: &Path) -> PathBuf {
    let mut s = spec.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

/// The blob cache when none is given: `$XDG_CACHE_HOME/airlock` (when absolute), else
/// `$HOME/.cache/airlock`.
pub fn default_cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("airlock"))
}

/// `OUT.manifest.json` for the bundle file `OUT` (the whole file name, e.g.
/// `k8s.tar.zst.manifest.json`): a copy of `airlock/manifest.json` beside the bundle, so a
/// gatekeeper can read and check the inventory without opening the bundle.
pub fn beside_manifest_path(output: &Path) -> PathBuf {
    let mut name = output.as_os_str().to_owned();
    name.push(".manifest.json");
    PathBuf::from(name)
}

/// `OUT.manifest.json.sig`: the signature of [`beside_manifest_path`], when signed.
pub fn beside_signature_path(output: &Path) -> PathBuf {
    let mut name = beside_manifest_path(output).into_os_string();
    name.push(".sig");
    PathBuf::from(name)
}

/// Writes the manifest beside the bundle (and its signature, or removes a stale one), each
/// atomically, with the very bytes of the bundle's `airlock/manifest.json` and `.sig` entries
/// (serialisation and RFC 6979 signatures are deterministic).
pub(crate) fn write_beside(
    output: &Path,
    manifest: &BundleManifest,
    key: Option<&airlock_layout::SigningKey>,
) -> Result<(), Error> {
    let json = manifest.to_json_bytes();
    let sig_path = beside_signature_path(output);
    write_atomic(&beside_manifest_path(output), &json)?;
    match key {
        Some(key) => write_atomic(&sig_path, key.sign(&json).as_bytes()),
        None => match std::fs::remove_file(&sig_path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Write {
                path: sig_path,
                source: e,
            }),
            _ => Ok(()),
        },
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    airlock_layout::write_atomic(path, bytes).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}
