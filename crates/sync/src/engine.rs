//! The run: resolve with `HEAD`, compare, copy what differs. See the crate documentation.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use airlock_bundle::lock::{Lock, LockedImage, LOCK_VERSION};
use airlock_bundle::platform::{filter_index, FilteredIndex, PlatformFilter};
use airlock_bundle::spec::{ImageSpec, ReferrerFilter};
use airlock_bundle::{image_sources, Source};
use airlock_layout::graph::{self, Role};
use airlock_layout::media::{self, Kind};
use airlock_layout::{BlobRecord, Digest, Hasher};
use airlock_load::NameMapper;
use airlock_registry::{Client, Lookup, Reference, ReferrersApi};
use bytes::Bytes;
use futures_util::{stream, StreamExt as _};
use oci_spec::image::{Descriptor, ImageIndex};
use tokio::sync::{OnceCell, Semaphore};
use tracing::{debug, info_span, warn, Instrument as _};

use crate::error::{Error, ImageError};
use crate::{Change, FailedImage, ImageSync, LockMode, SyncOptions, SyncReport, SyncTotals};

/// The marker tag that proves a target's filtered index was made from the upstream index
/// `upstream` with `filter`: `airlock-sync-` and 32 hex digits of
/// sha256(`<upstream digest>\n<filter>`). It is pushed on the filtered index right after
/// it, so a later run compares `HEAD`s at the target (tag and marker on one digest) instead
/// of fetching the upstream index again.
pub fn marker_tag(upstream: &Digest, filter: &PlatformFilter) -> String {
    let mut h = Hasher::new();
    h.update(upstream.to_string().as_bytes());
    h.update(b"\n");
    h.update(filter.to_string().as_bytes());
    format!("airlock-sync-{}", &h.finish().hex()[..32])
}

/// Images compared at once: [`COMPARES_PER_JOB`] per job, at most [`MAX_COMPARES`].
fn compares(jobs: usize) -> usize {
    (jobs * COMPARES_PER_JOB).min(MAX_COMPARES)
}

/// Images compared with `HEAD` at once, per job.
const COMPARES_PER_JOB: usize = 16;

/// At most this many images compared at once, whatever `--jobs` says: each holds a
/// connection to its source and one to the target.
const MAX_COMPARES: usize = 128;

/// What happened to one blob of one image.
enum Outcome {
    Present,
    Mounted,
    Copied(u64),
}

/// The repository of the target a blob was first put in by this run, or why it could not be.
type Home = Arc<OnceCell<Result<String, Arc<airlock_registry::Error>>>>;

struct Engine {
    client: Client,
    host: String,
    dry_run: bool,
    jobs: usize,
    locked: Option<(PathBuf, Lock)>,
    uploads: Semaphore,
    /// Images past their comparison (copying, or looking up artifacts) at once.
    copies: Semaphore,
    homes: Mutex<HashMap<Digest, Home>>,
    /// Tag lists of source repositories, asked once each (artifact discovery).
    tag_lists: Mutex<HashMap<String, Arc<OnceCell<HashSet<String>>>>>,
    /// Source hosts with the referrers API, learnt from each one's first answer.
    referrers_api: ReferrersApi,
    /// The target has the referrers API (else its referrers tag indexes are kept here).
    target_api: OnceCell<bool>,
    /// The referrers tag indexes written at the target.
    tag_indexes: airlock_load::referrers::TagIndexes,
}

/// One image's content as walked: documents (children first, the top last) and blobs.
struct Content {
    documents: Vec<(Digest, String, Bytes)>,
    blobs: Vec<BlobRecord>,
}

/// Counts of one image's copy.
#[derive(Default)]
struct Counts {
    copied: u64,
    bytes: u64,
    mounted: u64,
    present: u64,
    manifests: u64,
}

/// Syncs the spec's images into the target. See the crate documentation for the order of
/// work.
///
/// Fails as a whole, with nothing sent, when names collide, the lock cannot be read or the
/// target does not answer; images that fail later are in [`SyncReport::failures`] and the
/// others are synced.
pub async fn sync(opts: SyncOptions) -> Result<SyncReport, Error> {
    let started = Instant::now();
    let SyncOptions {
        spec,
        target,
        rule,
        rewrites,
        mut client,
        lock,
        dry_run,
        jobs,
    } = opts;
    let jobs = jobs.max(1);
    let mapper = NameMapper {
        prefix: target.prefix.clone(),
        rule,
        rewrites,
    };
    let canonical: Vec<String> = spec.images.iter().map(|i| i.reference.name()).collect();
    let repos = mapper.map_all(canonical.iter().map(String::as_str))?;
    for (image, repository) in &repos {
        if let Err(e) = Reference::parse(&format!("{}/{repository}:x", target.host)) {
            return Err(Error::BadRepository {
                image: image.clone(),
                repository: repository.clone(),
                reason: crate::render(&e),
            });
        }
    }
    let locked = match &lock {
        LockMode::Locked(path) => Some((path.clone(), Lock::read(path)?)),
        _ => None,
    };
    airlock_bundle::apply_spec_hosts(&mut client, &spec);
    let client = Client::new(client).map_err(|e| Error::Client(Box::new(e)))?;
    client
        .ping(&target.host)
        .await
        .map_err(|source| Error::Target {
            target: target.to_string(),
            source: Box::new(source),
        })?;
    let mut notes = Vec::new();
    if !spec.files.is_empty() || !spec.charts.is_empty() {
        notes.push(format!(
            "the spec's {} file(s) and {} chart(s) are not synced: sync copies images only \
             (carry them in a bundle)",
            spec.files.len(),
            spec.charts.len()
        ));
    }
    let engine = Arc::new(Engine {
        client: client.clone(),
        host: target.host.clone(),
        dry_run,
        jobs,
        locked,
        uploads: Semaphore::new(jobs),
        copies: Semaphore::new(jobs * 4),
        homes: Mutex::default(),
        tag_lists: Mutex::default(),
        referrers_api: ReferrersApi::default(),
        target_api: OnceCell::new(),
        tag_indexes: Default::default(),
    });
    let results: Vec<Result<ImageSync, ImageError>> = stream::iter(spec.images.iter().cloned())
        .map(|img| {
            let engine = engine.clone();
            let repo = repos[&img.reference.name()].clone();
            let sources = image_sources(&spec, &img);
            async move {
                let span = info_span!("sync", image = %img.reference, repository = %repo);
                engine.image(&img, &repo, sources).instrument(span).await
            }
        })
        // Comparing is two `HEAD`s, which cost a registry little and wait mostly: many
        // images are compared at once; `copies` bounds those past it to `jobs * 4`, and
        // `uploads` the uploads to `jobs`.
        .buffered(compares(jobs))
        .collect()
        .await;

    let mut images = Vec::new();
    let mut failures = Vec::new();
    for r in results {
        match r {
            Ok(i) => images.push(i),
            Err(e) => failures.push(FailedImage {
                image: e.image().to_string(),
                error: crate::render(&e),
            }),
        }
    }
    let mut lock_written = None;
    if let LockMode::Write(path) = &lock {
        if failures.is_empty() && !dry_run {
            let lock = Lock {
                lock_version: LOCK_VERSION,
                spec: spec.name.clone(),
                images: images
                    .iter()
                    .map(|i| {
                        let locked = LockedImage {
                            digest: i.upstream_digest.clone(),
                            source: i.source.clone(),
                        };
                        (i.image.clone(), locked)
                    })
                    .collect(),
            };
            lock.write(path)?;
            lock_written = Some(path.clone());
        } else {
            notes.push(format!(
                "the lock `{}` was not written: {}",
                path.display(),
                if dry_run {
                    "this was a dry run"
                } else {
                    "some images failed"
                }
            ));
        }
    }
    let totals = SyncTotals {
        images: images.len() as u64,
        unchanged: images
            .iter()
            .filter(|i| i.change == Change::Unchanged)
            .count() as u64,
        failed: failures.len() as u64,
        blobs_copied: images.iter().map(|i| i.blobs_copied).sum(),
        bytes_copied: images.iter().map(|i| i.bytes_copied).sum(),
        blobs_mounted: images.iter().map(|i| i.blobs_mounted).sum(),
        blobs_present: images.iter().map(|i| i.blobs_present).sum(),
    };
    Ok(SyncReport {
        target: target.to_string(),
        dry_run,
        images,
        failures,
        notes,
        totals,
        rate_limits: crate::rate_limits(&client),
        lock_written,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn at(s: &Source) -> String {
    s.to_string()
}

impl Engine {
    fn registry_error(
        image: &str,
        what: String,
        at: String,
    ) -> impl FnOnce(airlock_registry::Error) -> ImageError + '_ {
        move |e| ImageError::Registry {
            image: image.to_string(),
            what,
            at,
            source: Box::new(e),
        }
    }

    /// The upstream digest, and the source that answered it (none when the lock or a digest
    /// pin gave it: a source is then looked for only if content is missing).
    async fn resolve(
        &self,
        img: &ImageSpec,
        image: &str,
        sources: &[(Source, bool)],
    ) -> Result<(Digest, Option<Source>), ImageError> {
        let bad = |d: &str| ImageError::BadIndex {
            image: image.to_string(),
            digest: d.to_string(),
            message: "not a sha256 digest".into(),
        };
        if let Some((path, lock)) = &self.locked {
            let Some(l) = lock.images.get(image) else {
                return Err(ImageError::NotLocked {
                    image: image.to_string(),
                    lock: path.clone(),
                });
            };
            return Ok((Digest::parse(&l.digest).map_err(|_| bad(&l.digest))?, None));
        }
        if let Some(pin) = &img.reference.digest {
            return Ok((Digest::parse(pin).map_err(|_| bad(pin))?, None));
        }
        let tag = img.reference.reference().to_string();
        let mut attempts = Vec::new();
        for (source, _) in sources {
            match self
                .client
                .head_manifest(&source.host, &source.repository, &tag)
                .await
            {
                Ok(Some(head)) => {
                    let digest = Digest::parse(&head.digest).map_err(|_| bad(&head.digest))?;
                    return Ok((digest, Some(source.clone())));
                }
                Ok(None) => attempts.push((at(source), format!("no tag `{tag}`"))),
                Err(e) => {
                    debug!(%source, error = %e, "source failed, trying the next one");
                    attempts.push((at(source), crate::render(&e)));
                }
            }
        }
        Err(ImageError::Unresolved {
            image: image.to_string(),
            attempts,
        })
    }

    async fn image(
        &self,
        img: &ImageSpec,
        repo: &str,
        sources: Vec<(Source, bool)>,
    ) -> Result<ImageSync, ImageError> {
        let image = img.reference.to_string();
        let at_target = |reference: String| {
            let target_ref = display(&self.host, repo, &reference);
            let image = &image;
            async move {
                let current = self
                    .client
                    .manifest_exists(&self.host, repo, &reference)
                    .await
                    .map_err(Self::registry_error(image, "tag".into(), target_ref))?;
                Ok::<_, ImageError>((reference, current))
            }
        };
        // The source's digest and the target's tag are independent: both `HEAD`s are asked
        // at once (by digest, the target is asked once the digest is known).
        let ((upstream, found), (reference, current)) = match &img.reference.tag {
            Some(t) => {
                let (resolved, there) =
                    tokio::join!(self.resolve(img, &image, &sources), at_target(t.clone()));
                (resolved?, there?)
            }
            None => {
                let resolved = self.resolve(img, &image, &sources).await?;
                let there = at_target(resolved.0.to_string()).await?;
                (resolved, there)
            }
        };
        let target_ref = display(&self.host, repo, &reference);
        let marker =
            (img.platforms != PlatformFilter::All).then(|| marker_tag(&upstream, &img.platforms));
        let mut unchanged = current.as_deref() == Some(upstream.to_string().as_str());
        if !unchanged && current.is_some() {
            if let Some(m) = &marker {
                let marked = self
                    .client
                    .manifest_exists(&self.host, repo, m)
                    .await
                    .map_err(Self::registry_error(
                        &image,
                        "marker tag".into(),
                        target_ref.clone(),
                    ))?;
                unchanged = marked.is_some() && marked == current;
            }
        }
        // Comparing is done; what follows (reading documents, copying, artifacts) is bounded
        // by `copies`, so many images are compared while few are copied.
        let _copying = match unchanged && img.artifacts.is_none() {
            true => None,
            false => Some(self.copies.acquire().await.expect("never closed")),
        };
        let mut report = ImageSync {
            image: image.clone(),
            source: found.as_ref().map(at).unwrap_or_default(),
            target: target_ref.clone(),
            upstream_digest: upstream.to_string(),
            digest: current.clone().unwrap_or_default(),
            change: match &current {
                None => Change::Created,
                Some(d) => Change::Moved { from: d.clone() },
            },
            blobs_copied: 0,
            bytes_copied: 0,
            blobs_mounted: 0,
            blobs_present: 0,
            manifests_pushed: 0,
            artifacts_copied: Vec::new(),
        };
        let mut subjects: Vec<Digest> = Vec::new();
        let mut artifact_source = found.clone();
        if unchanged {
            report.change = Change::Unchanged;
            // Artifacts are found by tag (`sha256-<hex>.sig`, `sha256-<hex>`) or through the
            // referrers API: a source repository with no such tag, on a registry without the
            // API, has none, and the target need not be read.
            let may_have_artifacts = !img.artifacts.is_none() && {
                let source = found.as_ref().unwrap_or(&sources[0].0);
                self.tag_list(source)
                    .await
                    .iter()
                    .any(|t| t.starts_with("sha256-"))
                    || (img.artifacts.referrers != ReferrerFilter::None
                        && self.has_referrers_api(source, &upstream).await)
            };
            if may_have_artifacts {
                // The subjects are the target's: its index (read there, which costs the
                // source nothing) names the platform manifests.
                let top = self
                    .client
                    .get_manifest(&self.host, repo, &reference)
                    .await
                    .map_err(Self::registry_error(
                        &image,
                        "manifest".into(),
                        target_ref.clone(),
                    ))?;
                if marker.is_none() || current.as_deref() == Some(&upstream.to_string()) {
                    subjects.push(upstream.clone());
                }
                subjects.extend(children_of(&top.bytes));
            }
        } else {
            let (source, content, top_digest, filtered) =
                self.fetch(img, &image, &upstream, found, &sources).await?;
            report.source = at(&source);
            report.digest = top_digest.to_string();
            if !filtered {
                subjects.push(upstream.clone());
            }
            if content.documents.len() > 1 {
                subjects.extend(children_of(&content.documents.last().expect("top").2));
            }
            let mut tags = vec![reference.clone()];
            if filtered {
                tags.push(marker.clone().expect("a filter when filtered"));
            }
            let counts = self.copy(&image, repo, &source, &content, &tags).await?;
            report.blobs_copied = counts.copied;
            report.bytes_copied = counts.bytes;
            report.blobs_mounted = counts.mounted;
            report.blobs_present = counts.present;
            report.manifests_pushed = counts.manifests;
            artifact_source = Some(source);
        }
        if !img.artifacts.is_none() {
            let source = match artifact_source {
                Some(s) => s,
                None => sources[0].0.clone(),
            };
            self.artifacts(img, &image, repo, &source, &subjects, &mut report)
                .await?;
        }
        Ok(report)
    }

    /// The image's documents from the first source that has its digest, checked through the
    /// content graph; the top index rebuilt when the platform filter drops entries.
    async fn fetch(
        &self,
        img: &ImageSpec,
        image: &str,
        upstream: &Digest,
        found: Option<Source>,
        sources: &[(Source, bool)],
    ) -> Result<(Source, Content, Digest, bool), ImageError> {
        let candidates: Vec<Source> = match found {
            Some(s) => vec![s],
            None => sources.iter().map(|(s, _)| s.clone()).collect(),
        };
        let mut attempts = Vec::new();
        let mut got = None;
        for source in candidates {
            match self
                .client
                .get_manifest(&source.host, &source.repository, &upstream.to_string())
                .await
            {
                Ok(m) => {
                    got = Some((source, m));
                    break;
                }
                Err(e) => attempts.push((at(&source), crate::render(&e))),
            }
        }
        let Some((source, top)) = got else {
            return Err(ImageError::Unresolved {
                image: image.to_string(),
                attempts,
            });
        };
        let graph_error = |e| ImageError::Graph {
            image: image.to_string(),
            source: e,
        };
        let media_type = graph::document_media_type(Some(&top.media_type), &top.bytes);
        let upstream_descriptor = graph::descriptor(&media_type, upstream, top.bytes.len() as u64);
        graph::Document::parse(&upstream_descriptor, &top.bytes).map_err(graph_error)?;
        let (top_bytes, top_digest, filtered) = if media::kind(&media_type) == Kind::Index {
            match filter_index(&top.bytes, &img.platforms).map_err(|e| ImageError::BadIndex {
                image: image.to_string(),
                digest: upstream.to_string(),
                message: e.to_string(),
            })? {
                FilteredIndex::Unchanged => (top.bytes.clone(), upstream.clone(), false),
                FilteredIndex::Rewritten { bytes, digest } => (bytes, digest, true),
                FilteredIndex::NothingKept { available } => {
                    return Err(ImageError::NoPlatform {
                        image: image.to_string(),
                        digest: upstream.to_string(),
                        wanted: img.platforms.to_string(),
                        available: if available.is_empty() {
                            "none".into()
                        } else {
                            available.join(", ")
                        },
                    })
                }
            }
        } else {
            (top.bytes.clone(), upstream.clone(), false)
        };
        let content = self
            .walk(image, &source, &media_type, &top_digest, top_bytes)
            .await?;
        Ok((source, content, top_digest, filtered))
    }

    /// Walks a document and what it names: documents fetched by digest from `source`,
    /// configs and layers listed.
    async fn walk(
        &self,
        image: &str,
        source: &Source,
        media_type: &str,
        digest: &Digest,
        top: Bytes,
    ) -> Result<Content, ImageError> {
        let graph_error = |e| ImageError::Graph {
            image: image.to_string(),
            source: e,
        };
        let descriptor = graph::descriptor(media_type, digest, top.len() as u64);
        let mut walk = graph::Walk::new(&descriptor).map_err(graph_error)?;
        let mut bytes_of: HashMap<Digest, Bytes> = HashMap::new();
        let mut blobs = Vec::new();
        while let Some(node) = walk.next_node() {
            match node.role {
                Role::Document => {
                    let data = if node.depth == 0 {
                        top.clone()
                    } else {
                        let d = node.digest.to_string();
                        self.client
                            .get_manifest(&source.host, &source.repository, &d)
                            .await
                            .map_err(Self::registry_error(
                                image,
                                format!("manifest {d}"),
                                at(source),
                            ))?
                            .bytes
                    };
                    walk.feed(&data).map_err(graph_error)?;
                    bytes_of.insert(node.digest.clone(), data);
                }
                Role::Config | Role::Layer => blobs.push(BlobRecord {
                    size: node.descriptor.size(),
                    digest: node.digest,
                    media_type: node.media_type,
                }),
            }
        }
        let graph = walk.finish();
        let documents = graph
            .documents()
            .into_iter()
            .map(|n| {
                let mt = if n.depth == 0 {
                    media_type.to_string()
                } else {
                    n.media_type.clone()
                };
                (n.digest.clone(), mt, bytes_of[&n.digest].clone())
            })
            .collect();
        Ok(Content { documents, blobs })
    }

    /// Every blob present in `repo`, then the child documents by digest, then the top under
    /// each of `tags` (by digest when there is none). A dry run only asks.
    async fn copy(
        &self,
        image: &str,
        repo: &str,
        source: &Source,
        content: &Content,
        tags: &[String],
    ) -> Result<Counts, ImageError> {
        let outcomes: Vec<(Digest, Result<Outcome, Arc<airlock_registry::Error>>)> =
            stream::iter(&content.blobs)
                .map(|b| async move { (b.digest.clone(), self.ensure_blob(repo, b, source).await) })
                .buffer_unordered(self.jobs)
                .collect()
                .await;
        let mut counts = Counts::default();
        for (digest, outcome) in outcomes {
            match outcome {
                Ok(Outcome::Present) => counts.present += 1,
                Ok(Outcome::Mounted) => counts.mounted += 1,
                Ok(Outcome::Copied(n)) => {
                    counts.copied += 1;
                    counts.bytes += n;
                }
                // Every blob must be there before any manifest, or a tag could point at
                // nothing.
                Err(e) => {
                    return Err(ImageError::Blob {
                        image: image.to_string(),
                        digest: digest.to_string(),
                        from: at(source),
                        source: e,
                    })
                }
            }
        }
        if self.dry_run {
            return Ok(counts);
        }
        let (children, top) = content.documents.split_at(content.documents.len() - 1);
        let mut put = |reference: String, mt: &str, bytes: &Bytes| {
            counts.manifests += 1;
            let what = format!("manifest {reference}");
            let client = self.client.clone();
            let (host, repo) = (self.host.clone(), repo.to_string());
            let (mt, bytes) = (mt.to_string(), bytes.clone());
            async move {
                client
                    .put_manifest(&host, &repo, &reference, &mt, bytes)
                    .await
                    .map_err(Self::registry_error(
                        image,
                        what,
                        display(&host, &repo, &reference),
                    ))
            }
        };
        for (digest, mt, bytes) in children {
            put(digest.to_string(), mt, bytes).await?;
        }
        let (digest, mt, bytes) = &top[0];
        if tags.is_empty() {
            put(digest.to_string(), mt, bytes).await?;
        }
        for t in tags {
            put(t.clone(), mt, bytes).await?;
        }
        Ok(counts)
    }

    /// Makes `blob` present in `repo`: there already, mounted, or streamed from `source`.
    async fn ensure_blob(
        &self,
        repo: &str,
        blob: &BlobRecord,
        source: &Source,
    ) -> Result<Outcome, Arc<airlock_registry::Error>> {
        let digest = blob.digest.to_string();
        match self.client.blob_exists(&self.host, repo, &digest).await {
            Ok(Some(_)) => return Ok(Outcome::Present),
            Ok(None) => {}
            Err(e) => return Err(Arc::new(e)),
        }
        if self.dry_run {
            return Ok(Outcome::Copied(blob.size));
        }
        let cell = self
            .homes
            .lock()
            .expect("homes lock")
            .entry(blob.digest.clone())
            .or_default()
            .clone();
        let mut sent_here = None;
        let home = cell
            .get_or_init(|| async {
                match self.upload(repo, blob, source).await {
                    Ok(n) => {
                        sent_here = Some(n);
                        Ok(repo.to_string())
                    }
                    Err(e) => Err(e),
                }
            })
            .await
            .clone()?;
        if let Some(n) = sent_here {
            return Ok(Outcome::Copied(n));
        }
        if home == repo {
            return Ok(Outcome::Present);
        }
        match self
            .client
            .mount_blob(&self.host, repo, &digest, &home)
            .await
        {
            Ok(true) => return Ok(Outcome::Mounted),
            Ok(false) => debug!(%digest, from = %home, "mount refused, copying"),
            Err(e) => debug!(%digest, from = %home, error = %e, "mount failed, copying"),
        }
        self.upload(repo, blob, source).await.map(Outcome::Copied)
    }

    /// Streams `blob` from `source` into `repo`, hashed on the way; the bytes sent.
    async fn upload(
        &self,
        repo: &str,
        blob: &BlobRecord,
        source: &Source,
    ) -> Result<u64, Arc<airlock_registry::Error>> {
        let _permit = self.uploads.acquire().await.expect("never closed");
        let from = crate::stream::From {
            client: self.client.clone(),
            host: source.host.clone(),
            repository: source.repository.clone(),
        };
        let (digest, size) = (blob.digest.clone(), blob.size);
        self.client
            .push_blob(&self.host, repo, &digest.to_string(), size, |offset| {
                crate::stream::verified(from.clone(), digest.clone(), size, offset)
            })
            .await
            .map(|o| o.bytes_sent)
            .map_err(Arc::new)
    }

    /// The cosign tags (`.sig`, `.att`, `.sbom`) and referrers of `subjects` that the
    /// spec's `artifacts:` selects and the source has. Referrers come through the source's
    /// referrers API when it has one (each copied by digest unless the target has it, and
    /// listed in the target's referrers tag index when the target has no API), else through
    /// the referrers tag schema like the cosign tags: found in the source's tag list (asked
    /// once per repository), each copied when the target's `HEAD` differs from the source's.
    async fn artifacts(
        &self,
        img: &ImageSpec,
        image: &str,
        repo: &str,
        source: &Source,
        subjects: &[Digest],
        report: &mut ImageSync,
    ) -> Result<(), ImageError> {
        let sel = &img.artifacts;
        let mut wanted = Vec::new();
        let mut by_api = Vec::new();
        for s in subjects {
            for (suffix, on) in [
                ("sig", sel.signatures),
                ("att", sel.attestations),
                ("sbom", sel.sboms),
            ] {
                if on {
                    wanted.push(media::cosign_tag(s, suffix));
                }
            }
            if sel.referrers != ReferrerFilter::None {
                match self
                    .source_referrers(image, source, s, &sel.referrers)
                    .await?
                {
                    Some(found) => by_api.extend(found.into_iter().map(|d| (s.clone(), d))),
                    None => wanted.push(media::referrers_tag(s)),
                }
            }
        }
        for (subject, referrer) in &by_api {
            self.referrer(image, repo, source, subject, referrer, report)
                .await?;
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let listed = self.tag_list(source).await;
        for tag in wanted.into_iter().filter(|t| listed.contains(t)) {
            let err =
                |what: &str| Self::registry_error(image, format!("{what} `{tag}`"), at(source));
            let Some(head) = self
                .client
                .head_manifest(&source.host, &source.repository, &tag)
                .await
                .map_err(err("artifact"))?
            else {
                continue;
            };
            let there = self
                .client
                .manifest_exists(&self.host, repo, &tag)
                .await
                .map_err(err("artifact at the target"))?;
            if there.as_deref() == Some(head.digest.as_str()) {
                continue;
            }
            let m = self
                .client
                .get_manifest(&source.host, &source.repository, &tag)
                .await
                .map_err(err("artifact"))?;
            let digest = Digest::parse(&m.digest).map_err(|_| ImageError::BadIndex {
                image: image.to_string(),
                digest: m.digest.clone(),
                message: "not a sha256 digest".into(),
            })?;
            let mt = graph::document_media_type(Some(&m.media_type), &m.bytes);
            let content = self.walk(image, source, &mt, &digest, m.bytes).await?;
            let counts = self
                .copy(image, repo, source, &content, std::slice::from_ref(&tag))
                .await?;
            report.blobs_copied += counts.copied;
            report.bytes_copied += counts.bytes;
            report.blobs_mounted += counts.mounted;
            report.blobs_present += counts.present;
            report.manifests_pushed += counts.manifests;
            report
                .artifacts_copied
                .push(display(&self.host, repo, &tag));
        }
        Ok(())
    }

    /// Whether the registry of `source` has the referrers API: learnt from its first answer
    /// this run (asking for the referrers of `probe` when nothing was asked there yet).
    async fn has_referrers_api(&self, source: &Source, probe: &Digest) -> bool {
        matches!(
            self.lookup_referrers(source, probe, None).await,
            Ok(Lookup::Api(_))
        )
    }

    /// The source's referrers API asked for `subject` (see [`ReferrersApi::lookup`]), a
    /// first answer that failed said as a warning, since the tag schema is then all that is
    /// looked at.
    async fn lookup_referrers(
        &self,
        source: &Source,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Lookup, airlock_registry::Error> {
        let asked = self
            .referrers_api
            .lookup(
                &self.client,
                &source.host,
                &source.repository,
                &subject.to_string(),
                artifact_type,
            )
            .await;
        if let Ok(Lookup::NoApiAfter(e)) = &asked {
            warn!(
                %source,
                error = %crate::render(e).lines().next().unwrap_or_default(),
                "the referrers API answered with an error; referrers are looked for through the tag schema"
            );
        }
        asked
    }

    /// The referrers of `subject` at `source` that `filter` keeps, through the referrers API;
    /// `None` when the registry has none (its referrers are then looked for through the tag
    /// schema). A registry whose first answer is an error is taken to have none.
    async fn source_referrers(
        &self,
        image: &str,
        source: &Source,
        subject: &Digest,
        filter: &ReferrerFilter,
    ) -> Result<Option<Vec<Descriptor>>, ImageError> {
        let one_type = match filter {
            ReferrerFilter::Types(t) if t.len() == 1 => Some(t[0].as_str()),
            _ => None,
        };
        let asked = self.lookup_referrers(source, subject, one_type).await;
        let answer = match asked.map_err(Self::registry_error(
            image,
            format!("referrers of {subject}"),
            at(source),
        ))? {
            Lookup::Api(answer) => answer,
            _ => return Ok(None),
        };
        // A registry with the API may answer 404 for a subject it holds no referrers of.
        let Some(answer) = answer else {
            return Ok(Some(Vec::new()));
        };
        let index: ImageIndex =
            serde_json::from_slice(&answer.bytes).map_err(|e| ImageError::BadIndex {
                image: image.to_string(),
                digest: format!("referrers of {subject}"),
                message: e.to_string(),
            })?;
        Ok(Some(
            index
                .manifests()
                .iter()
                .filter(|d| {
                    let t = d.artifact_type().as_ref().map(ToString::to_string);
                    filter.keeps(t.as_deref())
                })
                .cloned()
                .collect(),
        ))
    }

    /// One referrer found through the source's API: copied by digest when the target lacks
    /// it, then listed in the target's referrers tag index when the target has no API.
    async fn referrer(
        &self,
        image: &str,
        repo: &str,
        source: &Source,
        subject: &Digest,
        referrer: &Descriptor,
        report: &mut ImageSync,
    ) -> Result<(), ImageError> {
        let digest =
            Digest::parse(referrer.digest().as_ref()).map_err(|_| ImageError::BadIndex {
                image: image.to_string(),
                digest: format!("referrers of {subject}"),
                message: format!("`{}` is not a sha256 digest", referrer.digest()),
            })?;
        let d = digest.to_string();
        let err = |what: &str| Self::registry_error(image, format!("{what} {d}"), at(source));
        let there = self
            .client
            .manifest_exists(&self.host, repo, &d)
            .await
            .map_err(err("referrer at the target"))?;
        if there.is_none() {
            let m = self
                .client
                .get_manifest(&source.host, &source.repository, &d)
                .await
                .map_err(err("referrer"))?;
            let mt = graph::document_media_type(Some(&m.media_type), &m.bytes);
            // The walk checks the bytes against the digest the source's index names.
            let content = self.walk(image, source, &mt, &digest, m.bytes).await?;
            let counts = self.copy(image, repo, source, &content, &[]).await?;
            report.blobs_copied += counts.copied;
            report.bytes_copied += counts.bytes;
            report.blobs_mounted += counts.mounted;
            report.blobs_present += counts.present;
            report.manifests_pushed += counts.manifests;
            report.artifacts_copied.push(display(&self.host, repo, &d));
        }
        if self.dry_run || self.target_has_referrers_api(repo, subject).await {
            return Ok(());
        }
        self.tag_indexes
            .add(&self.client, &self.host, repo, subject, referrer)
            .await
            .map_err(|source| ImageError::Referrer {
                image: image.to_string(),
                referrer: d.clone(),
                subject: subject.to_string(),
                source,
            })?;
        Ok(())
    }

    /// Whether the target has the referrers API, asked once per run (for `subject`, which
    /// the target holds by now).
    async fn target_has_referrers_api(&self, repo: &str, subject: &Digest) -> bool {
        *self
            .target_api
            .get_or_init(|| async {
                matches!(
                    self.client
                        .referrers(&self.host, repo, &subject.to_string(), None)
                        .await,
                    Ok(Some(_))
                )
            })
            .await
    }

    /// The tags of `source`'s repository, asked once per run (none when it cannot be
    /// listed: no artifact is then found by tag).
    async fn tag_list(&self, source: &Source) -> HashSet<String> {
        let cell = self
            .tag_lists
            .lock()
            .expect("tag lists lock")
            .entry(at(source))
            .or_default()
            .clone();
        cell.get_or_init(|| async {
            match self
                .client
                .list_tags(&source.host, &source.repository)
                .await
            {
                Ok(tags) => tags.into_iter().collect(),
                Err(e) => {
                    debug!(%source, error = %e, "no tag list: artifacts are not looked up by tag");
                    HashSet::new()
                }
            }
        })
        .await
        .clone()
    }
}

/// The manifests an index names (none for a manifest or unreadable bytes).
fn children_of(bytes: &[u8]) -> Vec<Digest> {
    serde_json::from_slice::<oci_spec_index::Index>(bytes)
        .map(|i| {
            i.manifests
                .into_iter()
                .filter_map(|m| Digest::parse(&m.digest).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Just the digests of an index's entries.
mod oci_spec_index {
    #[derive(serde::Deserialize)]
    pub(super) struct Index {
        #[serde(default)]
        pub(super) manifests: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    pub(super) struct Entry {
        pub(super) digest: String,
    }
}

fn display(host: &str, repo: &str, reference: &str) -> String {
    if reference.starts_with("sha256:") {
        format!("{host}/{repo}@{reference}")
    } else {
        format!("{host}/{repo}:{reference}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_names_the_upstream_digest_and_the_filter() {
        let up = Digest::of_bytes(b"index");
        let amd64 = PlatformFilter::parse_list(&["linux/amd64".into()]).unwrap();
        let arm64 = PlatformFilter::parse_list(&["linux/arm64".into()]).unwrap();
        let m = marker_tag(&up, &amd64);
        assert_eq!(m, marker_tag(&up, &amd64));
        assert!(m.starts_with("airlock-sync-") && m.len() == 45, "{m}");
        assert_ne!(m, marker_tag(&up, &arm64));
        assert_ne!(m, marker_tag(&Digest::of_bytes(b"other"), &amd64));
        // A valid tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
        assert!(m.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }

    #[test]
    fn children_of_an_index_and_of_a_manifest() {
        let d = Digest::of_bytes(b"m");
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"digest":"{d}","size":1,"mediaType":"x"}}]}}"#
        );
        assert_eq!(children_of(index.as_bytes()), vec![d]);
        assert!(children_of(br#"{"schemaVersion":2,"config":{},"layers":[]}"#).is_empty());
        assert!(children_of(b"not json").is_empty());
    }
}
