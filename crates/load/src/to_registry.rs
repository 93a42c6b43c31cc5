//! `airlock load --to registry://…`: the bundle into a registry.
//!
//! Order of work, so that nothing unverified is sent and no tag points at missing content:
//! 1. the head of the bundle: `airlock/manifest.json` and its signature, checked with the key;
//! 2. the frame index, then the small blobs (indexes, manifests, configs) through it, each
//!    checked against the signed manifest;
//! 3. names: every image mapped, collisions refused;
//! 4. the target answers `/v2/` with the credentials; on Harbor, its projects exist;
//! 5. per image (up to `jobs` at once): every blob present in its repository (already there,
//!    mounted from a repository this run pushed it to, or uploaded from the bundle, hashed as
//!    it is read); then the child manifests by digest; then the top manifest under every tag;
//! 6. then its artifacts, subjects first, each with its blobs before its manifest: a cosign
//!    signature, attestation or SBOM under its tag (`sha256-<hex>.sig`); an OCI 1.1 referrer
//!    by digest, and, unless the registry answers `OCI-Subject` (it indexed the `subject` for
//!    its referrers API), added to the index under the subject's referrers tag
//!    (`sha256-<hex>`), which is read first so that no entry already there is dropped.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use airlock_layout::{BlobRecord, Digest};
use airlock_registry::{Client, Reference};
use futures_util::{stream, StreamExt as _};
use tokio::sync::{OnceCell, Semaphore};
use tracing::{debug, info_span, warn, Instrument as _};

use crate::delta::{self, Sources};
use crate::error::{ArtifactError, BlobError, Error, ImageError};
use crate::harbor::{self, HarborApi};
use crate::names::NameMapper;
use crate::offline::{open_all, plan, PlannedBundle};
use crate::plan::{ArtifactPlan, ImagePlan};
use crate::source::Progress;
use crate::{
    ArtifactReport, ContentKind, FailedImage, ImageReport, ListedBy, LoadOptions, LoadReport,
    LoadReporter, LoadTotals, Purpose,
};

/// One unique blob of the run, shared by the images that reference it.
struct Slot {
    record: BlobRecord,
    /// Repositories of this run that reference it.
    repositories: Vec<String>,
    /// The repository it was first found in or pushed to, or why it could not be: decided
    /// once, so a blob that fails fails every image that references it.
    home: OnceCell<Result<String, Arc<BlobError>>>,
}

struct Engine {
    client: Client,
    host: String,
    sources: Sources,
    slots: HashMap<Digest, Slot>,
    uploads: Semaphore,
    jobs: usize,
    progress: Progress,
    /// The referrers tag indexes this run writes (a target without the referrers API).
    referrer_indexes: crate::referrers::TagIndexes,
    /// The blobs and documents a delta's bases supply: a manifest among them may be in the
    /// target already, and is not pushed again.
    from_base: std::collections::HashSet<Digest>,
}

/// What happened to one blob of one image.
enum Outcome {
    Skipped,
    Mounted,
    Sent(u64),
}

/// Loads a bundle into a registry. See the module documentation for the order of work.
///
/// Fails as a whole (with nothing pushed) on a bad signature, unreadable bundle, name
/// collision, unreachable target or missing Harbor project. Images that fail later are listed
/// in [`LoadReport::failures`], each handed to the reporter too; the others are loaded.
pub async fn load_to_registry(
    opts: LoadOptions,
    reporter: Arc<dyn LoadReporter>,
) -> Result<LoadReport, Error> {
    let started = Instant::now();
    let LoadOptions {
        bundle,
        trust,
        target,
        rule,
        rewrites,
        client: client_opts,
        jobs,
        harbor_create_projects,
        bases,
    } = opts;
    let jobs = jobs.max(1);

    // 1.-3. Head and signature before anything else is used; index, small blobs, names.
    let mapper = NameMapper {
        prefix: target.prefix.clone(),
        rule,
        rewrites,
    };
    let mut opened = open_all(vec![bundle.clone()], &trust, Purpose::Load).await?;
    if let Some(warning) = trust.warning(Purpose::Load) {
        reporter.warn(warning);
    }
    let base_files = open_all(bases, &trust, Purpose::Load).await?;
    let sources = delta::attach_bases(&mut opened[0], &base_files)?;
    let PlannedBundle {
        bundle: mut opened,
        images: mut planned_images,
    } = plan(opened, &mapper)?
        .pop()
        .expect("one bundle opened, one planned");
    // By name, as the names were mapped: the first bad one is the same on every run.
    let names: BTreeMap<&str, &str> = planned_images
        .iter()
        .map(|i| (i.record.name.as_str(), i.repository.as_str()))
        .collect();
    for (image, repository) in names {
        if let Err(e) = Reference::parse(&format!("{}/{repository}:x", target.host)) {
            return Err(Error::BadRepository {
                image: image.to_string(),
                repository: repository.to_string(),
                reason: crate::error::render(&e),
            });
        }
    }
    let repositories: Vec<String> = {
        let mut r: Vec<String> = planned_images
            .iter()
            .map(|i| i.repository.clone())
            .collect();
        r.sort();
        r.dedup();
        r
    };
    let is_delta = opened.manifest.is_delta();

    // 4. The target, with the credentials, before the first byte.
    let host_config = client_opts
        .hosts
        .get(&target.host)
        .cloned()
        .unwrap_or_default();
    let credentials = host_config
        .credentials
        .clone()
        .or_else(|| client_opts.default_credentials.clone());
    let client = Client::new(crate::plan::with_manifest_types(client_opts))
        .map_err(|e| Error::Client(Box::new(e)))?;
    client
        .ping(&target.host)
        .await
        .map_err(|source| Error::Target {
            target: target.to_string(),
            source: Box::new(source),
        })?;

    // A delta: the documents its bases supply that no base file gave, from the target; then
    // every image planned again with them.
    if is_delta {
        delta::fetch_documents(&client, &target.host, &mut opened, &sources, &repositories).await;
        let replanned = plan(vec![opened], &mapper)?
            .pop()
            .expect("one bundle opened, one planned");
        opened = replanned.bundle;
        planned_images = replanned.images;
    }
    let mut plans = Vec::new();
    let mut failures = Vec::new();
    for image in planned_images {
        match image.plan {
            Ok(p) => plans.push(p),
            Err(e) => failures.push(e),
        }
    }

    // A delta: every blob its bases supply and no base file carries must be in the target
    // (a document too), or nothing is pushed.
    let homes = if is_delta {
        delta::find_in_registry(
            &client,
            &target.host,
            &opened,
            &sources,
            &plans,
            &repositories,
            jobs,
        )
        .await
        .map_err(|missing| Error::BaseBlobsMissing {
            bundle: bundle.clone(),
            target: format!("the target `{target}` does not have"),
            missing,
        })?
    } else {
        HashMap::new()
    };
    for e in &failures {
        reporter.image_failed(e.image(), e);
    }
    let harbor = HarborApi::new(
        &target.host,
        host_config.plain_http,
        host_config.ca_file.as_deref(),
        credentials,
    )?;
    let projects_created = if harbor.is_harbor().await.unwrap_or(false) {
        let projects = harbor::projects(plans.iter().map(|p| p.repository.as_str()))?;
        let created = harbor
            .ensure_projects(&projects, harbor_create_projects)
            .await?;
        for p in &created {
            reporter.warn(&format!("created the Harbor project `{p}` (private)"));
        }
        created
    } else {
        if harbor_create_projects {
            reporter.warn(&format!(
                "`{}` is not Harbor (no `/api/v2.0/ping`): --harbor-create-projects has nothing to do",
                target.host
            ));
        }
        Vec::new()
    };

    // 5. Blobs, then manifests, then tags; images in parallel.
    let mut slots: HashMap<Digest, Slot> = HashMap::new();
    for p in &plans {
        let artifact_blobs = p.artifacts.iter().flat_map(|a| &a.blobs);
        for b in p.blobs.iter().chain(artifact_blobs) {
            slots
                .entry(b.digest.clone())
                .or_insert_with(|| Slot {
                    record: b.clone(),
                    repositories: Vec::new(),
                    // A base's blob found in the target: mounted from where it is.
                    home: match homes.get(&b.digest) {
                        Some(repo) => OnceCell::new_with(Some(Ok(repo.clone()))),
                        None => OnceCell::new(),
                    },
                })
                .repositories
                .push(p.repository.clone());
        }
    }
    let unique_bytes: u64 = slots.values().map(|s| s.record.size).sum();
    reporter.start(plans.len(), slots.len() as u64, unique_bytes);
    let progress_reporter = reporter.clone();
    let engine = Arc::new(Engine {
        client,
        host: target.host.clone(),
        from_base: sources.from_base.keys().cloned().collect(),
        sources,
        slots,
        uploads: Semaphore::new(jobs),
        jobs,
        progress: Arc::new(move |n| progress_reporter.bytes_sent(n)),
        referrer_indexes: crate::referrers::TagIndexes::default(),
    });
    let results: Vec<Result<ImageReport, ImageError>> = stream::iter(plans)
        .map(|plan| {
            let engine = engine.clone();
            let reporter = reporter.clone();
            async move {
                let span = info_span!("load", image = %plan.image, repository = %plan.repository);
                let r = engine.load_image(&plan).instrument(span).await;
                match &r {
                    Ok(report) => reporter.image_loaded(report),
                    Err(e) => reporter.image_failed(e.image(), e),
                }
                r
            }
        })
        .buffer_unordered(jobs)
        .collect()
        .await;

    let mut images = Vec::new();
    for r in results {
        match r {
            Ok(i) => images.push(i),
            Err(e) => failures.push(e),
        }
    }
    images.sort_by(|a, b| a.image.cmp(&b.image));
    let failures: Vec<FailedImage> = failures
        .iter()
        .map(|e| FailedImage {
            image: e.image().to_string(),
            error: crate::error::render(e),
            artifact: match e {
                ImageError::Artifact { artifact, .. } => Some(artifact.clone()),
                _ => None,
            },
        })
        .collect();
    let totals = LoadTotals {
        images: images.len() as u64,
        failed: failures.len() as u64,
        blobs_sent: images.iter().map(|i| i.blobs_sent).sum(),
        blobs_skipped: images.iter().map(|i| i.blobs_skipped).sum(),
        blobs_mounted: images.iter().map(|i| i.blobs_mounted).sum(),
        bytes_sent: images.iter().map(|i| i.bytes_sent).sum(),
    };
    Ok(LoadReport {
        bundle,
        target: target.to_string(),
        signature: opened.signature,
        images,
        failures,
        totals,
        projects_created,
        seconds: started.elapsed().as_secs_f64(),
    })
}

impl Engine {
    async fn load_image(&self, plan: &ImagePlan) -> Result<ImageReport, ImageError> {
        let repo = plan.repository.as_str();
        let outcomes: Vec<(Digest, Result<Outcome, Arc<BlobError>>)> = stream::iter(&plan.blobs)
            .map(|b| async move { (b.digest.clone(), self.ensure_blob(repo, b).await) })
            .buffer_unordered(self.jobs)
            .collect()
            .await;
        let mut report = ImageReport {
            image: plan.image.clone(),
            repository: format!("{}/{repo}", self.host),
            digest: plan.record.digest.to_string(),
            media_type: plan.record.media_type.clone(),
            references: Vec::new(),
            blobs: plan.blobs.len() as u64,
            blobs_sent: 0,
            blobs_skipped: 0,
            blobs_mounted: 0,
            bytes_sent: 0,
            manifests: plan.manifests.len() as u64,
            artifacts: Vec::new(),
            content: ContentKind::of(&plan.record),
        };
        // Every blob must be there before any manifest, or a tag could point at nothing.
        let mut first_error = None;
        for (digest, outcome) in outcomes {
            match outcome {
                Ok(outcome) => count_blob(&mut report, outcome),
                Err(source) => {
                    first_error.get_or_insert(ImageError::Blob {
                        image: plan.image.clone(),
                        digest: digest.to_string(),
                        source,
                    });
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        let (children, top) = plan.manifests.split_at(plan.manifests.len() - 1);
        for (digest, media_type, bytes) in children {
            self.put_manifest(plan, &digest.to_string(), media_type, bytes)
                .await?;
        }
        let (digest, media_type, bytes) = &top[0];
        let mut references: Vec<String> = plan.record.tags.clone();
        if references.is_empty() {
            references.push(digest.to_string());
        }
        for r in &references {
            self.put_manifest(plan, r, media_type, bytes).await?;
            report.references.push(display(&self.host, repo, r));
        }
        report
            .references
            .push(display(&self.host, repo, &digest.to_string()));
        report.references.dedup();
        for artifact in &plan.artifacts {
            self.load_artifact(plan, artifact, &mut report)
                .await
                .map_err(|source| ImageError::Artifact {
                    image: plan.image.clone(),
                    artifact: artifact.describe(),
                    source,
                })?;
        }
        Ok(report)
    }

    /// Pushes one artifact of `plan` (whose image is in the target): its blobs, its manifest
    /// under its cosign tag or by digest, then, for a referrer the registry did not index
    /// itself, its entry in the subject's referrers tag index.
    async fn load_artifact(
        &self,
        plan: &ImagePlan,
        artifact: &ArtifactPlan,
        report: &mut ImageReport,
    ) -> Result<(), ArtifactError> {
        let repo = plan.repository.as_str();
        let outcomes: Vec<(Digest, Result<Outcome, Arc<BlobError>>)> =
            stream::iter(&artifact.blobs)
                .map(|b| async move { (b.digest.clone(), self.ensure_blob(repo, b).await) })
                .buffer_unordered(self.jobs)
                .collect()
                .await;
        for (digest, outcome) in outcomes {
            report.blobs += 1;
            match outcome {
                Ok(outcome) => count_blob(report, outcome),
                Err(source) => {
                    return Err(ArtifactError::Blob {
                        digest: digest.to_string(),
                        source,
                    })
                }
            }
        }
        let record = &artifact.record;
        let mut listed_by = None;
        let mut reference = record.digest.to_string();
        for (digest, media_type, bytes) in &artifact.manifests {
            report.manifests += 1;
            let top = *digest == record.digest;
            let at = match (&record.tag, top) {
                (Some(tag), true) => tag.clone(),
                _ => digest.to_string(),
            };
            let pushed = self
                .client
                .push_manifest(&self.host, repo, &at, media_type, bytes.clone())
                .await
                .map_err(|source| ArtifactError::Manifest {
                    reference: display(&self.host, repo, &at),
                    source: Box::new(source),
                })?;
            if top {
                reference = at;
                if record.tag.is_none() {
                    listed_by = Some(if pushed.subject.is_some() {
                        ListedBy::Api
                    } else {
                        self.add_referrer(repo, &record.subject, artifact).await?;
                        ListedBy::TagSchema
                    });
                }
            }
        }
        report.artifacts.push(ArtifactReport {
            kind: record.kind,
            digest: record.digest.to_string(),
            subject: record.subject.to_string(),
            reference: display(&self.host, repo, &reference),
            listed_by,
        });
        Ok(())
    }

    /// Adds `artifact` to the referrers tag index of `subject` in `repo`.
    async fn add_referrer(
        &self,
        repo: &str,
        subject: &Digest,
        artifact: &ArtifactPlan,
    ) -> Result<(), ArtifactError> {
        self.referrer_indexes
            .add(
                &self.client,
                &self.host,
                repo,
                subject,
                &artifact.descriptor,
            )
            .await
            .map(|_| ())
    }

    async fn put_manifest(
        &self,
        plan: &ImagePlan,
        reference: &str,
        media_type: &str,
        bytes: &bytes::Bytes,
    ) -> Result<(), ImageError> {
        let digest = Digest::of_bytes(bytes);
        if self.from_base.contains(&digest) {
            // A delta's unchanged image: nothing pushed when the reference already names it.
            let there = self
                .client
                .manifest_exists(&self.host, &plan.repository, reference)
                .await;
            if matches!(there, Ok(Some(d)) if d == digest.to_string()) {
                return Ok(());
            }
        }
        self.client
            .put_manifest(
                &self.host,
                &plan.repository,
                reference,
                media_type,
                bytes.clone(),
            )
            .await
            .map(|_| ())
            .map_err(|source| ImageError::Manifest {
                image: plan.image.clone(),
                reference: display(&self.host, &plan.repository, reference),
                source: Box::new(source),
            })
    }

    /// Makes `blob` present in `repo`.
    async fn ensure_blob(&self, repo: &str, blob: &BlobRecord) -> Result<Outcome, Arc<BlobError>> {
        let digest = blob.digest.to_string();
        let arc = |e: airlock_registry::Error| Arc::new(BlobError::Registry(Box::new(e)));
        match self.client.blob_exists(&self.host, repo, &digest).await {
            Ok(Some(_)) => return Ok(Outcome::Skipped),
            Ok(None) => {}
            // The registry keeps answering 500 for this blob: its record of it is damaged
            // (distribution leaves an empty link file when it is killed while writing one).
            // An upload writes that record again; a registry that is broken fails the upload
            // too, and that error is reported.
            Err(airlock_registry::Error::Server { status: 500, .. }) => warn!(
                %digest,
                repository = repo,
                "the registry answers 500 for this blob; uploading it again"
            ),
            Err(e) => return Err(arc(e)),
        }
        let slot = &self.slots[&blob.digest];
        let mut sent_here = None;
        let home = slot
            .home
            .get_or_init(|| async {
                // A rerun: another repository of this run may hold it already.
                for other in slot.repositories.iter().filter(|r| *r != repo) {
                    if let Ok(Some(_)) = self.client.blob_exists(&self.host, other, &digest).await {
                        return Ok(other.clone());
                    }
                }
                match self.upload(repo, blob).await {
                    Ok(n) => {
                        sent_here = Some(n);
                        Ok(repo.to_string())
                    }
                    Err(e) => Err(Arc::new(e)),
                }
            })
            .await
            .clone()?;
        if let Some(n) = sent_here {
            return Ok(Outcome::Sent(n));
        }
        if home == repo {
            return Ok(Outcome::Skipped);
        }
        match self
            .client
            .mount_blob(&self.host, repo, &digest, &home)
            .await
        {
            Ok(true) => return Ok(Outcome::Mounted),
            Ok(false) => debug!(%digest, from = %home, "mount refused, uploading"),
            Err(e) => debug!(%digest, from = %home, error = %e, "mount failed, uploading"),
        }
        self.upload(repo, blob)
            .await
            .map(Outcome::Sent)
            .map_err(Arc::new)
    }

    /// Uploads `blob` into `repo` from the bundle; the bytes sent.
    async fn upload(&self, repo: &str, blob: &BlobRecord) -> Result<u64, BlobError> {
        if self.sources.needed_from_target(&blob.digest) {
            // Never an upload of what the delta does not hold.
            let slot = &self.slots[&blob.digest];
            let from = match slot.home.get() {
                Some(Ok(home)) => home.clone(),
                _ => repo.to_string(),
            };
            return Err(BlobError::NotMounted { from });
        }
        if !self.sources.has_entry(&blob.digest) {
            return Err(BlobError::Index {
                problem: format!("has no entry for blob `{}`", blob.digest),
            });
        }
        let _permit = self.uploads.acquire().await.expect("never closed");
        let (source, digest, size) = (&self.sources, &blob.digest, blob.size);
        let progress = self.progress.clone();
        let outcome = self
            .client
            .push_blob(&self.host, repo, &digest.to_string(), size, |offset| {
                source.stream(digest, size, offset, Some(progress.clone()))
            })
            .await
            .map_err(Box::new)?;
        Ok(outcome.bytes_sent)
    }
}

fn display(host: &str, repo: &str, reference: &str) -> String {
    if reference.starts_with("sha256:") {
        format!("{host}/{repo}@{reference}")
    } else {
        format!("{host}/{repo}:{reference}")
    }
}

/// Counts one blob that is in the target in `report`: skipped (already there), mounted or sent.
fn count_blob(report: &mut ImageReport, outcome: Outcome) {
    match outcome {
        Outcome::Skipped => report.blobs_skipped += 1,
        Outcome::Mounted => report.blobs_mounted += 1,
        Outcome::Sent(n) => {
            report.blobs_sent += 1;
            report.bytes_sent += n;
        }
    }
}
