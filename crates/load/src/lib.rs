//! The offline side of airlock: a bundle file opened, its signature checked, its images mapped
//! and planned, then loaded into a registry or into containerd (`airlock-serve` serves the
//! same planned images).
//!
//! ```
//! use airlock_load::names::{NameMapper, NameRule};
//!
//! let m = NameMapper { prefix: "k8s".into(), rule: NameRule::Flat, rewrites: vec![] };
//! assert_eq!(m.repository("registry.k8s.io/coredns/coredns"), "k8s/coredns");
//! ```
//!
//! Loading into a registry (`airlock load --to registry://…`):
//!
//! ```no_run
//! use std::sync::Arc;
//! use airlock_load::{load_to_registry, LoadOptions, NoReport, Purpose, Trust};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let trust = Trust::from_flags(Some("signer.pub".as_ref()), false, Purpose::Load)?;
//! let opts = LoadOptions::new(
//!     "k8s.tar.zst".into(),
//!     "registry://harbor.lan/k8s".parse()?,
//!     trust,
//! );
//! let report = load_to_registry(opts, Arc::new(NoReport)).await?;
//! for image in &report.images {
//!     println!("{} -> {:?} ({} bytes sent)", image.image, image.references, image.bytes_sent);
//! }
//! for failed in &report.failures {
//!     eprintln!("{}: {}", failed.image, failed.error);
//! }
//! # Ok(()) }
//! ```
//!
//! Nothing is sent before the signature over `airlock/manifest.json` is checked; every blob
//! is hashed while it is read from the bundle (through the untrusted frame index, never
//! unpacked to disk); a manifest or tag is pushed only after every blob it references is in
//! the target.

#![warn(missing_docs)]

pub mod check;
pub mod config;
pub mod containerd;
pub mod delta;
mod error;
pub mod files;
pub mod harbor;
pub mod inventory;
pub mod names;
pub mod offline;
pub mod plan;
pub mod referrers;
pub mod source;
mod target;
mod to_registry;
pub mod upstream;

use std::path::PathBuf;

pub use airlock_layout::{Purpose, SignatureCheck, Trust, TrustError, VerifyingKey};
pub use airlock_registry::{ClientOptions, Credentials, HostConfig};
pub use check::{check, CheckReport};
pub use containerd::{
    load_to_containerd, ContainerdError, ContainerdOptions, ContainerdReport, ContainerdTarget,
};
pub use error::{
    render as render_error, ArtifactError, BlobError, ContainerdImageError, ContentError, Error,
    ImageError, Said, UnpackError,
};
pub use files::{write_files, FileReport, FileState, FilesError, FilesOptions, FilesReport};
pub use inventory::{inventory, InventoryError, InventoryOptions, InventoryReport};
pub use names::{NameError, NameMapper, NameRule, Rewrite, Target};
use serde::Serialize;
pub use target::{
    load, BadLoadTarget, LoadError, LoadJob, LoadOutcome, LoadTarget, TargetSetting,
    WrongTargetSetting,
};
pub use to_registry::load_to_registry;

/// What a load into a registry needs.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The bundle file.
    pub bundle: PathBuf,
    /// Who vouches for the bundle (every blob is checked against its manifest either way).
    pub trust: Trust,
    /// Where images land.
    pub target: Target,
    /// How canonical names become repositories under the target prefix.
    pub rule: NameRule,
    /// Explicit prefix rewrites (win over `rule`).
    pub rewrites: Vec<Rewrite>,
    /// Registry client settings; the target's TLS, plain HTTP and credentials are under its
    /// host in `hosts` (or in `default_credentials`).
    pub client: ClientOptions,
    /// Images, blobs and uploads at once.
    pub jobs: usize,
    /// Create missing Harbor projects through Harbor's API.
    pub harbor_create_projects: bool,
    /// Base bundles of a delta (`--base`): what the target lacks of the blobs the delta
    /// takes from its bases is read from them.
    pub bases: Vec<PathBuf>,
}

impl LoadOptions {
    /// Options with defaults for everything but the bundle, the target and the trust.
    pub fn new(bundle: PathBuf, target: Target, trust: Trust) -> LoadOptions {
        LoadOptions {
            bundle,
            trust,
            target,
            rule: NameRule::default(),
            rewrites: Vec::new(),
            client: ClientOptions::default(),
            jobs: 4,
            harbor_create_projects: false,
            bases: Vec::new(),
        }
    }
}

/// What a load did; serialises as the `--json` report of `airlock load`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadReport {
    /// The bundle file.
    pub bundle: PathBuf,
    /// The target, `registry://HOST[/PREFIX]`.
    pub target: String,
    /// Whether the signature was checked, and with which key.
    pub signature: SignatureCheck,
    /// Every image loaded (all its blobs, manifests and tags are in the target).
    pub images: Vec<ImageReport>,
    /// Every image that failed: none of its tags was pushed, or, when `artifact` says which,
    /// an artifact of it could not be pushed after it.
    pub failures: Vec<FailedImage>,
    /// Sums over `images`.
    pub totals: LoadTotals,
    /// Harbor projects created.
    pub projects_created: Vec<String>,
    /// Wall time.
    pub seconds: f64,
}

/// One image loaded.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageReport {
    /// The canonical reference in the bundle (`registry.k8s.io/pause:3.9`).
    pub image: String,
    /// `HOST/REPOSITORY` it landed at.
    pub repository: String,
    /// Digest of its top manifest or index (unchanged).
    pub digest: String,
    /// Media type of that manifest or index.
    pub media_type: String,
    /// Every reference pushed: `HOST/REPO:TAG` for each tag, and `HOST/REPO@DIGEST`.
    pub references: Vec<String>,
    /// Configs and layers the image references.
    pub blobs: u64,
    /// Of those, uploaded from the bundle.
    pub blobs_sent: u64,
    /// Already in the repository (a rerun, or an earlier load).
    pub blobs_skipped: u64,
    /// Mounted from another repository this run pushed them to.
    pub blobs_mounted: u64,
    /// Bytes uploaded for this image.
    pub bytes_sent: u64,
    /// Manifests and indexes pushed.
    pub manifests: u64,
    /// Its artifacts pushed (after the image): signatures, attestations, SBOMs, referrers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<ArtifactReport>,
    /// `chart` or `file` when the record is not a container image (absent for an image).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<ContentKind>,
}

/// What a record that is not a container image is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContentKind {
    /// A Helm chart.
    Chart,
    /// A file.
    File,
}

impl ContentKind {
    /// What `record` is, `None` for a container image.
    pub fn of(record: &airlock_layout::ImageRecord) -> Option<ContentKind> {
        match &record.content {
            None => None,
            Some(airlock_layout::Content::Chart(_)) => Some(ContentKind::Chart),
            Some(airlock_layout::Content::File(_)) => Some(ContentKind::File),
        }
    }
}

/// One artifact pushed with its image.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactReport {
    /// `signature`, `attestation`, `sbom` or `referrer`.
    pub kind: airlock_layout::ArtifactKind,
    /// Digest of its manifest.
    pub digest: String,
    /// What it refers to.
    pub subject: String,
    /// `HOST/REPO:sha256-<hex>.sig` for a cosign tag, `HOST/REPO@DIGEST` for a referrer.
    pub reference: String,
    /// For a referrer: how the target lists it, `api` (the registry indexed its `subject`)
    /// or `tag-schema` (the index under `sha256-<subject hex>` was written).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listed_by: Option<ListedBy>,
}

/// How a target lists the referrers of a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ListedBy {
    /// The registry's referrers API (it answered `OCI-Subject`).
    Api,
    /// The referrers tag schema: an index under the tag `sha256-<subject hex>`.
    TagSchema,
}

/// One image that failed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedImage {
    /// The canonical reference.
    pub image: String,
    /// What went wrong, with causes and hints.
    pub error: String,
    /// When only an artifact failed: which one (the image and its tags are in the target).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
}

/// Sums over the images of a [`LoadReport`].
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadTotals {
    /// Images loaded.
    pub images: u64,
    /// Images failed.
    pub failed: u64,
    /// Blobs uploaded.
    pub blobs_sent: u64,
    /// Blobs already present.
    pub blobs_skipped: u64,
    /// Blobs mounted.
    pub blobs_mounted: u64,
    /// Bytes uploaded.
    pub bytes_sent: u64,
}

/// Progress of a load, for the binary to render. Every method has an empty default.
pub trait LoadReporter: Send + Sync {
    /// Something the operator should know.
    fn warn(&self, _message: &str) {}
    /// Pushing starts: images, unique blobs and their bytes.
    fn start(&self, _images: usize, _blobs: u64, _bytes: u64) {}
    /// Bytes were handed to an upload.
    fn bytes_sent(&self, _bytes: u64) {}
    /// An image is complete in the target, tags included.
    fn image_loaded(&self, _report: &ImageReport) {}
    /// An image failed (the others go on): an [`ImageError`] for a registry, a
    /// [`ContainerdImageError`] for containerd.
    fn image_failed(&self, _image: &str, _error: &(dyn std::error::Error + 'static)) {}
}

/// A reporter that says nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoReport;
impl LoadReporter for NoReport {}
