//! `airlock outdated SPEC|LOCK`: what a spec or lock lags behind, asked with tag lists and
//! `HEAD` requests only (no manifest `GET`: Docker Hub and Harbor count those as pulls).
//!
//! For each image with a release-like tag ([`crate::version`]), the newest patch and minor
//! release of its line at the origin; for each mirror it is bundled through, whether the
//! mirror lacks the tag, serves another digest for it, or lacks newer tags of the line that
//! the origin has; for a lock, whether the origin's tag moved away from the locked digest;
//! for `spec.kubernetes`, the newest patch (and minor) release in airlock's release data.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use airlock_registry::{Client, ClientOptions, Reference};
use futures_util::{stream, StreamExt};
use serde::Serialize;
use tokio::sync::OnceCell;
use tracing::{info_span, Instrument};

use crate::error::{render, Error};
use crate::lock::Lock;
use crate::pull::{apply_manifest_types, apply_spec_hosts, sources, Source};
use crate::spec::Spec;
use crate::version::{newer, TagVersion};

/// What `airlock outdated` needs.
#[derive(Debug)]
pub struct OutdatedOptions {
    /// A spec (YAML or an image list) or a lock file, told apart by content: a lock is a
    /// JSON object.
    pub input: PathBuf,
    /// How many images are checked at once.
    pub jobs: usize,
    /// Registry client settings; a spec's `registries` are merged in.
    pub client: ClientOptions,
}

/// What was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InputKind {
    /// A spec: its images, mirrors and `spec.kubernetes`.
    Spec,
    /// A lock: its images, their locked digests and the source each was resolved from.
    Lock,
}

/// The result of [`outdated`].
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutdatedReport {
    /// The spec or lock file.
    pub input: PathBuf,
    /// Whether it was a spec or a lock.
    pub kind: InputKind,
    /// One entry per image, in the input's order.
    pub images: Vec<ImageReport>,
    /// `spec.kubernetes`, when the spec names a release.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesReport>,
    /// Things skipped, with the reason (charts and files, entries that are not images).
    pub notes: Vec<String>,
    /// Counts over `images` and `kubernetes`.
    pub totals: Totals,
    /// The request budgets registries announced during the run (Docker Hub's
    /// `RateLimit-*` headers), the latest per registry.
    pub rate_limits: Vec<RateLimitReport>,
}

/// A registry's request budget as its last answer stated it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitReport {
    /// The registry host.
    pub registry: String,
    /// Requests allowed per window.
    pub limit: u64,
    /// Requests left in the current window.
    pub remaining: u64,
    /// The window in seconds, when the registry said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<u64>,
    /// `76 of 100 requests left (per 6 h)`.
    pub text: String,
}

/// Counts of an [`OutdatedReport`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    /// Images checked.
    pub images: usize,
    /// Images with a newer release in their line, or whose locked tag moved (and the
    /// Kubernetes release, when behind).
    pub outdated: usize,
    /// Mirrors found lagging behind their origin.
    pub mirrors_lagging: usize,
    /// Registries that could not be asked (each named in its image's entry).
    pub unreachable: usize,
}

impl OutdatedReport {
    /// The result a nightly job acts on: [`Verdict::Incomplete`] when a registry could not be
    /// asked (whatever else was found: the report is not the whole answer), else
    /// [`Verdict::Outdated`] when anything is outdated or a mirror lags, else
    /// [`Verdict::Current`].
    pub fn verdict(&self) -> Verdict {
        let t = &self.totals;
        if t.unreachable > 0 {
            Verdict::Incomplete
        } else if t.outdated > 0 || t.mirrors_lagging > 0 {
            Verdict::Outdated
        } else {
            Verdict::Current
        }
    }
}

/// The overall result of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Everything is on the newest release of its line and every mirror is current.
    Current,
    /// Something has a newer release, moved, or a mirror lags.
    Outdated,
    /// A registry could not be asked.
    Incomplete,
}

/// One image.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageReport {
    /// The canonical reference, as in the spec or lock.
    pub image: String,
    /// The origin repository (`host/repository`).
    pub origin: String,
    /// The tag in use, if the reference has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// What the origin's tags say.
    pub check: TagCheck,
    /// For a lock: the origin now serves another digest for the locked tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moved: Option<Moved>,
    /// Each mirror the image is bundled through.
    pub mirrors: Vec<MirrorReport>,
}

impl ImageReport {
    /// Whether the image has a newer release or its locked tag moved.
    pub fn is_outdated(&self) -> bool {
        matches!(self.check, TagCheck::Outdated { .. }) || self.moved.is_some()
    }
}

/// The origin's tag moved away from the digest a lock records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Moved {
    /// The digest in the lock.
    pub locked: String,
    /// The digest the origin serves now.
    pub origin: String,
}

/// What an image's tag is, compared with the origin's tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum TagCheck {
    /// No newer release in the line.
    Current,
    /// Newer releases: the newest patch (same major and minor) and the newest minor (same
    /// major), each when there is one.
    Outdated {
        /// The newest patch release.
        #[serde(skip_serializing_if = "Option::is_none")]
        patch: Option<String>,
        /// The newest minor release.
        #[serde(skip_serializing_if = "Option::is_none")]
        minor: Option<String>,
    },
    /// The tag is not a release-like version (`latest`): not checked.
    NotAVersion {
        /// Why.
        reason: String,
    },
    /// Pinned by digest without a tag: not checked.
    Pinned,
    /// The origin's tag list could not be read.
    Unreachable {
        /// The repository asked (`host/repository`).
        registry: String,
        /// The error, rendered.
        error: String,
    },
}

/// One mirror of an image.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MirrorReport {
    /// The mirror repository (`host/repository`).
    pub mirror: String,
    /// What was found.
    #[serde(flatten)]
    pub status: MirrorStatus,
}

/// Whether a mirror keeps up with its origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum MirrorStatus {
    /// The mirror serves what the origin serves.
    Current,
    /// The mirror lags: each way it does.
    Lags {
        /// What it lacks or serves differently.
        lags: Vec<Lag>,
    },
    /// The mirror or the origin could not be asked.
    Unreachable {
        /// The repository that could not be asked (`host/repository`).
        registry: String,
        /// The error, rendered.
        error: String,
    },
}

/// One way a mirror lags behind its origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Lag {
    /// The mirror has no manifest under the image's tag.
    MissingTag {
        /// The tag.
        tag: String,
    },
    /// The mirror lacks the pinned digest.
    MissingDigest {
        /// The digest.
        digest: String,
    },
    /// The mirror serves another digest for the tag than the origin.
    DifferentDigest {
        /// The tag.
        tag: String,
        /// What the mirror serves.
        mirror: String,
        /// What the origin serves.
        origin: String,
    },
    /// Newer releases of the line that the origin has and the mirror lacks, oldest first.
    MissingNewer {
        /// The tags.
        tags: Vec<String>,
    },
}

/// `spec.kubernetes` against the release data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesReport {
    /// The release in the spec (`v1.28.3`).
    pub version: String,
    /// The newest patch release of its minor that airlock knows, when newer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    /// The newest patch release of the newest minor airlock knows, when that minor is newer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minor: Option<String>,
}

impl KubernetesReport {
    /// Whether a newer release is known.
    pub fn is_outdated(&self) -> bool {
        self.patch.is_some() || self.minor.is_some()
    }
}

/// One image to check: where its origin and mirrors are.
struct Job {
    image: String,
    reference: Reference,
    origin: Source,
    mirrors: Vec<Source>,
    locked: Option<String>,
}

/// Reads the spec or lock and checks every image against its origin and mirrors.
///
/// Fails only for bad input or a client that cannot be set up; registries that cannot be
/// asked are reported per image ([`Verdict::Incomplete`]).
pub async fn outdated(opts: OutdatedOptions) -> Result<OutdatedReport, Error> {
    let OutdatedOptions {
        input,
        jobs,
        mut client,
    } = opts;
    let mut notes = Vec::new();
    let (kind, work, kubernetes) = if is_lock(&input)? {
        let lock = Lock::read(&input)?;
        apply_manifest_types(&mut client);
        (InputKind::Lock, lock_jobs(&lock, &mut notes), None)
    } else {
        let spec = Spec::load(&input)?;
        apply_spec_hosts(&mut client, &spec);
        if !spec.files.is_empty() || !spec.charts.is_empty() {
            notes.push(format!(
                "{} files and {} charts skipped: `outdated` checks images only",
                spec.files.len(),
                spec.charts.len()
            ));
        }
        let kubernetes = spec.kubernetes.as_ref().map(|k| kubernetes(&k.version));
        (InputKind::Spec, spec_jobs(&spec), kubernetes)
    };
    let asker = Asker {
        client: Client::new(client)?,
        tags: Mutex::default(),
    };
    let images: Vec<ImageReport> = stream::iter(work)
        .map(|job| {
            let span = info_span!("outdated", image = %job.image);
            check(&asker, job).instrument(span)
        })
        .buffered(jobs.max(1))
        .collect()
        .await;
    let mut totals = Totals {
        images: images.len(),
        ..Totals::default()
    };
    for i in &images {
        totals.outdated += usize::from(i.is_outdated());
        totals.unreachable += usize::from(matches!(i.check, TagCheck::Unreachable { .. }));
        for m in &i.mirrors {
            match m.status {
                MirrorStatus::Lags { .. } => totals.mirrors_lagging += 1,
                MirrorStatus::Unreachable { .. } => totals.unreachable += 1,
                MirrorStatus::Current => {}
            }
        }
    }
    totals.outdated += usize::from(kubernetes.as_ref().is_some_and(|k| k.is_outdated()));
    let rate_limits = asker
        .client
        .rate_limits()
        .into_iter()
        .map(|(registry, l)| RateLimitReport {
            registry,
            limit: l.limit,
            remaining: l.remaining,
            window_seconds: l.window.map(|w| w.as_secs()),
            text: l.to_string(),
        })
        .collect();
    Ok(OutdatedReport {
        input,
        kind,
        images,
        kubernetes,
        notes,
        totals,
        rate_limits,
    })
}

/// A lock is a JSON object; a spec is YAML or an image list, neither of which starts with `{`.
fn is_lock(path: &Path) -> Result<bool, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{'))
}

fn spec_jobs(spec: &Spec) -> Vec<Job> {
    spec.images
        .iter()
        .map(|img| {
            let all = sources(spec, img);
            let origin = all
                .iter()
                .find(|(_, mirror)| !mirror)
                .map(|(s, _)| s.clone())
                .expect("the origin is always a source");
            Job {
                image: img.reference.to_string(),
                reference: img.reference.clone(),
                origin,
                mirrors: all
                    .into_iter()
                    .filter(|(_, m)| *m)
                    .map(|(s, _)| s)
                    .collect(),
                locked: None,
            }
        })
        .collect()
}

fn lock_jobs(lock: &Lock, notes: &mut Vec<String>) -> Vec<Job> {
    let mut out = Vec::new();
    for (image, entry) in &lock.images {
        let reference = match Reference::parse(image) {
            Ok(r) => r,
            Err(e) => {
                notes.push(format!("`{image}` skipped: not an image reference ({e})"));
                continue;
            }
        };
        let origin = Source {
            host: reference.registry.clone(),
            repository: reference.repository.clone(),
        };
        // A lock records where the image was resolved; anything but the origin (or its
        // Kubernetes alias) is a mirror.
        let alias =
            crate::kubernetes::alias_of(&origin.host).map(|a| format!("{a}/{}", origin.repository));
        let mut mirrors = Vec::new();
        if entry.source != origin.to_string() && Some(&entry.source) != alias.as_ref() {
            if let Some((host, repository)) = entry.source.split_once('/') {
                mirrors.push(Source {
                    host: host.to_string(),
                    repository: repository.to_string(),
                });
            }
        }
        out.push(Job {
            image: image.clone(),
            reference,
            origin,
            mirrors,
            locked: Some(entry.digest.clone()),
        });
    }
    out
}

/// The newest patch of the spec's minor and the newest minor the release data knows.
fn kubernetes(version: &str) -> KubernetesReport {
    let mut report = KubernetesReport {
        version: version.to_string(),
        patch: None,
        minor: None,
    };
    let Ok(v) = version.parse::<crate::kubernetes::Version>() else {
        return report;
    };
    if let Some(p) = crate::kubernetes::newest_patch(v.minor) {
        if p.patch > v.patch {
            report.patch = Some(p.to_string());
        }
    }
    let newest_minor = crate::kubernetes::releases().iter().map(|r| r.minor).max();
    if let Some(m) = newest_minor.filter(|m| *m > v.minor) {
        report.minor = crate::kubernetes::newest_patch(m).map(|p| p.to_string());
    }
    report
}

/// The registry client, with each repository's tag list asked for once per run (several
/// images of one repository, or one mirror repository of several, share it).
struct Asker {
    client: Client,
    tags: Mutex<HashMap<String, Arc<OnceCell<Listed>>>>,
}

/// A repository's tag list, or why there is none.
#[derive(Clone)]
enum Listed {
    Tags(Arc<Vec<String>>),
    /// The registry does not know the repository (404), with the error rendered.
    Unknown(String),
    /// The registry could not be asked, with the error rendered.
    Failed(String),
}

impl Asker {
    async fn tags(&self, source: &Source) -> Listed {
        let cell = self
            .tags
            .lock()
            .expect("tag lists lock")
            .entry(source.to_string())
            .or_default()
            .clone();
        cell.get_or_init(|| async {
            match self
                .client
                .list_tags(&source.host, &source.repository)
                .await
            {
                Ok(tags) => Listed::Tags(Arc::new(tags)),
                Err(e) if e.is_not_found() => Listed::Unknown(render(&e)),
                Err(e) => Listed::Failed(render(&e)),
            }
        })
        .await
        .clone()
    }
}

async fn check(asker: &Asker, job: Job) -> ImageReport {
    let client = &asker.client;
    let Job {
        image,
        reference,
        origin,
        mirrors,
        locked,
    } = job;
    let tag = reference.tag.clone();
    let version = tag.as_deref().map(TagVersion::parse);
    let mut newer_all = Vec::new();
    let check = match (&tag, &version) {
        (None, _) => TagCheck::Pinned,
        (Some(_), Some(Err(why))) => TagCheck::NotAVersion {
            reason: why.to_string(),
        },
        (Some(_), Some(Ok(used))) => match asker.tags(&origin).await {
            Listed::Tags(tags) => {
                let found = newer(used, tags.iter().map(String::as_str));
                newer_all = found.all.clone();
                if found.is_empty() {
                    TagCheck::Current
                } else {
                    TagCheck::Outdated {
                        patch: found.patch,
                        minor: found.minor,
                    }
                }
            }
            Listed::Unknown(error) | Listed::Failed(error) => TagCheck::Unreachable {
                registry: origin.to_string(),
                error,
            },
        },
        (Some(_), None) => unreachable!("a tag has a parse result"),
    };
    // The origin's digest for the tag, asked once, for the lock and every mirror.
    let origin_digest = match &tag {
        Some(t) if reference.digest.is_none() && (locked.is_some() || !mirrors.is_empty()) => {
            match client
                .head_manifest(&origin.host, &origin.repository, t)
                .await
            {
                Ok(Some(h)) => OriginTag::Found(h.digest),
                Ok(None) => OriginTag::Missing,
                Err(e) => OriginTag::Failed(render(&e)),
            }
        }
        _ => OriginTag::NotAsked,
    };
    let mut check = check;
    let moved = match (&locked, &origin_digest) {
        (Some(locked), OriginTag::Found(now)) if locked != now => Some(Moved {
            locked: locked.clone(),
            origin: now.clone(),
        }),
        (Some(_), OriginTag::Failed(error)) => {
            // The lock could not be compared: that is as unknown as an unlisted origin.
            if !matches!(check, TagCheck::Unreachable { .. }) {
                check = TagCheck::Unreachable {
                    registry: origin.to_string(),
                    error: error.clone(),
                };
            }
            None
        }
        _ => None,
    };
    let mut reports = Vec::new();
    for mirror in mirrors {
        let status = mirror_status(
            asker,
            &reference,
            &origin,
            &mirror,
            &origin_digest,
            &newer_all,
        )
        .await;
        reports.push(MirrorReport {
            mirror: mirror.to_string(),
            status,
        });
    }
    ImageReport {
        image,
        origin: origin.to_string(),
        tag,
        check,
        moved,
        mirrors: reports,
    }
}

/// What the origin serves for an image's tag (`HEAD`).
enum OriginTag {
    /// Not needed: no lock to compare and no mirror, or the image is pinned by digest.
    NotAsked,
    /// This digest.
    Found(String),
    /// Nothing (404).
    Missing,
    /// The origin could not be asked, with the error rendered.
    Failed(String),
}

/// Whether `mirror` serves the image as `origin` does and has the newer tags of its line.
async fn mirror_status(
    asker: &Asker,
    reference: &Reference,
    origin: &Source,
    mirror: &Source,
    origin_digest: &OriginTag,
    newer_at_origin: &[String],
) -> MirrorStatus {
    let unreachable = |source: &Source, error: String| MirrorStatus::Unreachable {
        registry: source.to_string(),
        error,
    };
    // A pinned digest is what a bundle asks the mirror for; otherwise the tag.
    let wanted = reference.digest.as_deref().or(reference.tag.as_deref());
    let Some(wanted) = wanted else {
        return MirrorStatus::Current;
    };
    let at_mirror = match asker
        .client
        .head_manifest(&mirror.host, &mirror.repository, wanted)
        .await
    {
        Ok(h) => h.map(|h| h.digest),
        Err(e) => return unreachable(mirror, render(&e)),
    };
    let mut lags = Vec::new();
    match (&reference.digest, &reference.tag, at_mirror) {
        (Some(digest), _, None) => lags.push(Lag::MissingDigest {
            digest: digest.clone(),
        }),
        (Some(_), _, Some(_)) | (None, None, _) => {}
        (None, Some(tag), None) => lags.push(Lag::MissingTag { tag: tag.clone() }),
        (None, Some(tag), Some(mirror_digest)) => match origin_digest {
            OriginTag::Found(origin_digest) if *origin_digest != mirror_digest => {
                lags.push(Lag::DifferentDigest {
                    tag: tag.clone(),
                    mirror: mirror_digest,
                    origin: origin_digest.clone(),
                })
            }
            OriginTag::Failed(e) => return unreachable(origin, e.clone()),
            _ => {}
        },
    }
    if !newer_at_origin.is_empty() {
        let have = match asker.tags(mirror).await {
            Listed::Tags(tags) => tags,
            Listed::Unknown(_) => Arc::default(),
            Listed::Failed(e) => return unreachable(mirror, e),
        };
        let missing: Vec<String> = newer_at_origin
            .iter()
            .filter(|t| !have.contains(t))
            .cloned()
            .collect();
        if !missing.is_empty() {
            lags.push(Lag::MissingNewer { tags: missing });
        }
    }
    if lags.is_empty() {
        MirrorStatus::Current
    } else {
        MirrorStatus::Lags { lags }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_newest_patch_and_minor() {
        let k = kubernetes("v1.28.3");
        let newest = crate::kubernetes::newest_patch(28).unwrap();
        assert_eq!(k.patch, Some(newest.to_string()));
        let top = crate::kubernetes::releases()
            .iter()
            .map(|r| r.minor)
            .max()
            .unwrap();
        assert!(top > 28);
        assert_eq!(
            k.minor,
            crate::kubernetes::newest_patch(top).map(|v| v.to_string())
        );
        assert!(k.is_outdated());
        // The newest known release is current.
        let p = crate::kubernetes::newest_patch(top).unwrap();
        assert!(!kubernetes(&p.to_string()).is_outdated());
    }

    #[test]
    fn a_lock_is_told_apart_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("x.yaml");
        std::fs::write(&lock, "\n  {\"lockVersion\": 1}").unwrap();
        assert!(is_lock(&lock).unwrap());
        let spec = dir.path().join("x.lock");
        std::fs::write(&spec, "registry.k8s.io/pause:3.9\n").unwrap();
        assert!(!is_lock(&spec).unwrap());
    }

    #[test]
    fn lock_sources_other_than_the_origin_are_mirrors() {
        let mut lock = Lock::default();
        let digest = format!("sha256:{}", "a".repeat(64));
        for (image, source) in [
            ("registry.k8s.io/pause:3.9", "mirror.lan/k8s/pause"),
            ("registry.k8s.io/etcd:3.5.9-0", "registry.k8s.io/etcd"),
            ("k8s.gcr.io/coredns:1.8.6", "registry.k8s.io/coredns"),
            ("not a reference", "x/y"),
        ] {
            lock.images.insert(
                image.into(),
                crate::lock::LockedImage {
                    digest: digest.clone(),
                    source: source.into(),
                },
            );
        }
        let mut notes = Vec::new();
        let jobs = lock_jobs(&lock, &mut notes);
        assert_eq!(notes.len(), 1, "{notes:?}");
        let mirrors: Vec<(String, Vec<String>)> = jobs
            .iter()
            .map(|j| {
                (
                    j.image.clone(),
                    j.mirrors.iter().map(|m| m.to_string()).collect(),
                )
            })
            .collect();
        assert_eq!(
            mirrors,
            [
                ("k8s.gcr.io/coredns:1.8.6".to_string(), vec![]),
                ("registry.k8s.io/etcd:3.5.9-0".to_string(), vec![]),
                (
                    "registry.k8s.io/pause:3.9".to_string(),
                    vec!["mirror.lan/k8s/pause".to_string()]
                ),
            ]
        );
    }
}
