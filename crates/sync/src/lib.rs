//! `airlock sync`: a spec's images copied registry to registry, kept current on a schedule.
//!
//! ```no_run
//! # async fn demo() -> Result<(), airlock_sync::Error> {
//! use airlock_sync::{SyncOptions, LockMode};
//! let spec = airlock_bundle::Spec::load("spec.yaml".as_ref())?;
//! let target = "registry://mirror.lan/k8s".parse().map_err(airlock_sync::Error::Names)?;
//! let report = airlock_sync::sync(SyncOptions::new(spec, target)).await?;
//! for image in &report.images {
//!     println!("{}: {}", image.image, image.change);
//! }
//! # Ok(()) }
//! ```
//!
//! Per image, in the spec's order of sources (mirrors, then the origin, as `bundle` asks):
//! 1. the tag is resolved at the source with `HEAD` only (with `--locked`, the lock's digest
//!    is taken and the source is not asked); the target's tag is asked with `HEAD` too;
//! 2. equal digests: `unchanged`, and nothing else is asked of the source. An image whose
//!    index the spec's `platforms:` filters lands at the target as the index `bundle` writes
//!    (other digest, same bytes as in a bundle): for it the target also holds a marker tag
//!    ([`marker_tag`]) on that index, named after the upstream digest and the filter, pushed
//!    only after the filtered index; the tag and the marker naming one digest prove the
//!    target's index was made from this upstream index with this filter, still without a
//!    request to the source;
//! 3. otherwise the documents are fetched (small, in memory) and walked through
//!    `layout::graph`, which checks each against its descriptor; every config and layer is
//!    made present at the target: already there (`HEAD`), mounted from another repository
//!    of the target this run put it in, or streamed from the source to the target, hashed on
//!    the way, its last chunk withheld until the digest matched; nothing touches the disk;
//! 4. child manifests by digest, then the tag, last; then the image's cosign artifacts
//!    (`.sig`, `.att`, `.sbom` tags), each compared with `HEAD` at both ends and copied like
//!    an image when they differ; then its referrers: through the source's OCI 1.1 referrers
//!    API where it has one (each referrer copied by digest unless the target has it, and
//!    listed in the target's referrers tag index when the target has no API), else its
//!    referrers tag index, compared and copied like a cosign tag.
//!
//! A source that fails mid-run fails the images it was serving (named in the report), and
//! moves none of their tags; the next run completes them, skipping what arrived.

#![warn(missing_docs)]

mod engine;
mod error;
mod stream;

use std::fmt;
use std::path::PathBuf;

use airlock_bundle::{ClientOptions, Spec};
use airlock_load::{NameRule, Rewrite, Target};
use serde::Serialize;

pub use engine::{marker_tag, sync};
pub use error::{Error, ImageError};

/// What a sync does with a lock file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LockMode {
    /// No lock: every tag is resolved at its source.
    #[default]
    None,
    /// `--lock FILE`: tags are resolved at the source and the digests written there (the
    /// format `bundle --lock` writes) when every image synced.
    Write(PathBuf),
    /// `--locked`: the lock's digests are the truth; the source is asked only for content
    /// the target lacks.
    Locked(PathBuf),
}

/// What to sync where.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// The spec: images, mirrors, platforms, artifacts.
    pub spec: Spec,
    /// `registry://HOST[:PORT][/PREFIX]`.
    pub target: Target,
    /// How names land under the prefix (the rules of `load`).
    pub rule: NameRule,
    /// Explicit prefix rewrites (the rules of `load`).
    pub rewrites: Vec<Rewrite>,
    /// Client settings for the sources and the target (hosts, credentials, retries).
    pub client: ClientOptions,
    /// The lock file, if any.
    pub lock: LockMode,
    /// Say what would change; send nothing to the target beyond `HEAD`s.
    pub dry_run: bool,
    /// Uploads at once (and blobs of an image asked about at once); images are compared four
    /// times as many at once.
    pub jobs: usize,
}

impl SyncOptions {
    /// Defaults: names keep their host, no lock, 4 jobs.
    pub fn new(spec: Spec, target: Target) -> SyncOptions {
        SyncOptions {
            spec,
            target,
            rule: NameRule::default(),
            rewrites: Vec::new(),
            client: ClientOptions::default(),
            lock: LockMode::None,
            dry_run: false,
            jobs: 4,
        }
    }
}

/// What a sync did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    /// `registry://HOST/PREFIX`.
    pub target: String,
    /// Nothing was sent but `HEAD`s.
    pub dry_run: bool,
    /// The images synced or found unchanged, in the spec's order.
    pub images: Vec<ImageSync>,
    /// The images that failed, in the spec's order; none of their tags moved.
    pub failures: Vec<FailedImage>,
    /// Things worth knowing that are no failure (charts and files skipped, a lock not
    /// written).
    pub notes: Vec<String>,
    /// Sums over `images`.
    pub totals: SyncTotals,
    /// The request budgets registries announced during the run.
    pub rate_limits: Vec<HostRateLimit>,
    /// The lock written (`--lock`).
    pub lock_written: Option<PathBuf>,
    /// Wall time.
    pub seconds: f64,
}

/// One image of the spec that synced (or was already current).
#[derive(Debug, Clone, Serialize)]
pub struct ImageSync {
    /// The image as the spec names it.
    pub image: String,
    /// `host/repository` it was resolved at (for `--locked`, where content was read, if any).
    pub source: String,
    /// `host/repository:tag` (or `@digest`) at the target.
    pub target: String,
    /// The digest the source serves (the lock's with `--locked`).
    pub upstream_digest: String,
    /// The digest the target's tag points at now (differs when platforms were filtered).
    pub digest: String,
    /// What happened to the tag.
    pub change: Change,
    /// Blobs streamed from the source.
    pub blobs_copied: u64,
    /// Their bytes.
    pub bytes_copied: u64,
    /// Blobs mounted from another repository of the target.
    pub blobs_mounted: u64,
    /// Blobs the target had already.
    pub blobs_present: u64,
    /// Manifests and indexes pushed.
    pub manifests_pushed: u64,
    /// Artifacts (cosign tags, referrers tag indexes) copied, by reference at the target.
    pub artifacts_copied: Vec<String>,
}

/// What happened to an image's tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// The target had it already.
    Unchanged,
    /// The target had no such tag.
    Created,
    /// The tag pointed elsewhere before.
    Moved {
        /// The digest it pointed at.
        from: String,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Unchanged => f.write_str("unchanged"),
            Change::Created => f.write_str("created"),
            Change::Moved { from } => write!(f, "moved from {from}"),
        }
    }
}

/// One image that failed.
#[derive(Debug, Clone, Serialize)]
pub struct FailedImage {
    /// The image as the spec names it.
    pub image: String,
    /// The error, with its causes.
    pub error: String,
}

/// Sums over a report's images.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncTotals {
    /// Images synced or current.
    pub images: u64,
    /// Of those, unchanged.
    pub unchanged: u64,
    /// Images failed.
    pub failed: u64,
    /// Blobs streamed from sources.
    pub blobs_copied: u64,
    /// Their bytes.
    pub bytes_copied: u64,
    /// Blobs mounted within the target.
    pub blobs_mounted: u64,
    /// Blobs already at the target.
    pub blobs_present: u64,
}

/// A registry's request budget as it last announced it (`RateLimit-*` headers).
#[derive(Debug, Clone, Serialize)]
pub struct HostRateLimit {
    /// `host[:port]`.
    pub host: String,
    /// Requests per window.
    pub limit: u64,
    /// Requests left.
    pub remaining: u64,
    /// The window in seconds, when the registry said.
    pub window_seconds: Option<u64>,
    /// `docker.io: 76 of 100 requests left (per 6 h)`.
    pub text: String,
}

/// The request budgets a client was told of, for a command's report.
pub fn rate_limits(client: &airlock_registry::Client) -> Vec<HostRateLimit> {
    client
        .rate_limits()
        .into_iter()
        .map(|(host, r)| HostRateLimit {
            text: format!("{host}: {r}"),
            host,
            limit: r.limit,
            remaining: r.remaining,
            window_seconds: r.window.map(|w| w.as_secs()),
        })
        .collect()
}

/// An error and its causes, one line each.
pub(crate) fn render(e: &dyn std::error::Error) -> String {
    airlock_registry::render_error(e)
}
