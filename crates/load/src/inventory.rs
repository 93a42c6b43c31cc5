//! `airlock inventory registry://HOST/PREFIX -o site.inventory.json`: what a registry on the
//! far side already holds, as a [`SiteInventory`] to carry back out and use as the base of a
//! delta bundle (`bundle --base site.inventory.json`).
//!
//! The repositories come from the catalog (`/v2/_catalog`, filtered to the prefix) or are
//! given by name. Per repository: its tag list, each tag's manifest by tag, every child
//! manifest of an index by digest, and the referrers each manifest has where the registry
//! speaks the OCI referrers API (cosign tags and the referrers tag schema are tags like any
//! other). Configs and layers are only listed from the manifests that name them: no blob is
//! ever downloaded. A document seen in several repositories is fetched once per run.
//!
//! An inventory never claims what was not read: a repository or tag that fails is named and
//! nothing is written, unless `keep_going`, which writes what was read (a missing entry only
//! makes a delta larger). A child manifest an index names but the registry does not hold is
//! left out, and so are its blobs.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use airlock_layout::graph::{self, Document, Role, MAX_DEPTH};
use airlock_layout::site::{SITE_INVENTORY_KIND, SITE_INVENTORY_VERSION};
use airlock_layout::{Digest, SigningKey, SiteInventory, SiteRepository};
use airlock_registry::{Client, ClientOptions, Error as RegistryError};
use bytes::Bytes;
use futures_util::{stream, StreamExt as _};
use oci_spec::image::{Descriptor, ImageIndex};
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::names::Target;

/// What `airlock inventory` needs.
#[derive(Debug, Clone)]
pub struct InventoryOptions {
    /// The registry and the prefix whose repositories are listed.
    pub target: Target,
    /// Repositories to list, relative to the prefix (as `load` names them); empty: every
    /// repository the catalog lists under the prefix.
    pub names: Vec<String>,
    /// Registry client settings; the target's TLS, plain HTTP and credentials are under its
    /// host in `hosts`.
    pub client: ClientOptions,
    /// Requests at once.
    pub jobs: usize,
    /// Repositories asked for per catalog page (`n`); none: the registry's page size.
    pub page_size: Option<u32>,
    /// Write what was read when some repositories or tags fail.
    pub keep_going: bool,
    /// The inventory file to write.
    pub output: PathBuf,
    /// Sign the file (`OUTPUT.sig`, the `cosign sign-blob` format).
    pub sign: Option<SigningKey>,
    /// When the inventory says it was taken (Unix seconds); none: now.
    pub created: Option<u64>,
}

impl InventoryOptions {
    /// Options with defaults for everything but the target and the output.
    pub fn new(target: Target, output: PathBuf) -> InventoryOptions {
        InventoryOptions {
            target,
            names: Vec::new(),
            client: ClientOptions::default(),
            jobs: 8,
            page_size: None,
            keep_going: false,
            output,
            sign: None,
            created: None,
        }
    }
}

/// What an inventory run did; serialises as the `--json` report of `airlock inventory`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryReport {
    /// `registry://HOST[/PREFIX]`.
    pub target: String,
    /// The file written; none when a failure kept it from being written.
    pub output: Option<PathBuf>,
    /// Its signature, when signed.
    pub signature: Option<PathBuf>,
    /// The sha256 of the file's bytes: how a delta names this base.
    pub digest: Option<Digest>,
    /// Counts.
    pub totals: InventoryTotals,
    /// Every repository or tag that could not be read.
    pub failures: Vec<InventoryFailure>,
    /// Wall time.
    pub seconds: f64,
}

impl InventoryReport {
    /// Whether everything under the prefix (or every name given) was read.
    pub fn complete(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Counts over an [`InventoryReport`] (what the file holds).
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryTotals {
    /// Repositories listed.
    pub repositories: u64,
    /// Tags, over all repositories.
    pub tags: u64,
    /// Distinct manifests and indexes.
    pub manifests: u64,
    /// Distinct configs and layers (listed, never downloaded).
    pub blobs: u64,
    /// Manifests and indexes fetched from the registry (each once per run).
    pub documents_fetched: u64,
}

/// A repository or tag that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryFailure {
    /// The repository, prefix included.
    pub repository: String,
    /// The tag, when one tag failed (none: the repository's tag list).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Why, with causes.
    pub error: String,
}

/// What stops an inventory as a whole, before anything is written.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// The registry client could not be set up (a CA file).
    #[error("cannot set up the registry client")]
    Client(#[source] Box<RegistryError>),
    /// The registry does not answer `/v2/`.
    #[error("cannot take an inventory of `{target}`")]
    Target {
        /// `registry://HOST[/PREFIX]`.
        target: String,
        /// The cause.
        #[source]
        source: Box<RegistryError>,
    },
    /// The registry does not give its catalog to this account (Harbor gives it to
    /// administrators only) or has none.
    #[error(
        "`{registry}` does not list its repositories (`/v2/_catalog` refused)\n  hint: pass \
         the repositories with --names REPO… (relative to the prefix, as `airlock load` \
         named them), or use an account that may read the catalog"
    )]
    CatalogRefused {
        /// `host[:port]`.
        registry: String,
        /// The registry's answer.
        #[source]
        source: Box<RegistryError>,
    },
    /// The catalog could not be read for another reason.
    #[error("cannot read the catalog of `{registry}`")]
    Catalog {
        /// `host[:port]`.
        registry: String,
        /// The cause.
        #[source]
        source: Box<RegistryError>,
    },
    /// A name given with `--names` is not a repository name.
    #[error(
        "`{name}` is not a repository name\n  hint: give names relative to the prefix, such \
         as `library/nginx`"
    )]
    BadName {
        /// The name as given.
        name: String,
    },
    /// The file (or its signature) could not be written.
    #[error("cannot write `{}`", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// `OUTPUT.sig`: where the signature of an inventory file goes.
pub fn signature_path(output: &Path) -> PathBuf {
    let mut name = output.as_os_str().to_owned();
    name.push(".sig");
    PathBuf::from(name)
}

/// Takes the inventory `opts` asks for and writes it (with its signature), unless some
/// repository or tag failed and `opts.keep_going` is false: then nothing is written and the
/// report names each failure.
pub async fn inventory(opts: InventoryOptions) -> Result<InventoryReport, InventoryError> {
    let started = Instant::now();
    let host = opts.target.host.clone();
    let prefix = opts.target.prefix.clone();
    let client = Client::new(crate::plan::with_manifest_types(opts.client.clone()))
        .map_err(|e| InventoryError::Client(Box::new(e)))?;
    client
        .ping(&host)
        .await
        .map_err(|source| InventoryError::Target {
            target: opts.target.to_string(),
            source: Box::new(source),
        })?;
    let repositories = repositories(&client, &opts).await?;
    tracing::debug!(count = repositories.len(), "repositories to list");

    let ctx = Arc::new(Run {
        client,
        host: host.clone(),
        permits: Semaphore::new(opts.jobs.max(1)),
        documents: Mutex::default(),
        fetched: AtomicU64::new(0),
        referrers_api: AtomicU8::new(API_UNKNOWN),
    });
    let jobs = opts.jobs.max(1);
    let mut listed: Vec<(SiteRepository, Vec<InventoryFailure>)> = stream::iter(repositories)
        .map(|name| {
            let ctx = ctx.clone();
            async move { list_repository(&ctx, name, jobs).await }
        })
        .buffer_unordered(jobs)
        .collect()
        .await;
    listed.sort_by(|a, b| a.0.name.cmp(&b.0.name));

    let mut failures = Vec::new();
    let mut site = Vec::new();
    for (repo, failed) in listed {
        failures.extend(failed);
        // A repository whose tag list failed has nothing read: it is not claimed at all.
        if !failures
            .iter()
            .any(|f| f.repository == repo.name && f.tag.is_none())
        {
            site.push(repo);
        }
    }
    let created = opts
        .created
        .map_or_else(SystemTime::now, |s| UNIX_EPOCH + Duration::from_secs(s));
    let inventory = SiteInventory {
        kind: SITE_INVENTORY_KIND.into(),
        format_version: SITE_INVENTORY_VERSION,
        created: crate::containerd::rfc3339(created),
        airlock_version: env!("CARGO_PKG_VERSION").into(),
        registry: host,
        prefix,
        repositories: site,
    };
    let totals = InventoryTotals {
        repositories: inventory.repositories.len() as u64,
        tags: inventory
            .repositories
            .iter()
            .map(|r| r.tags.len() as u64)
            .sum(),
        manifests: inventory
            .repositories
            .iter()
            .flat_map(|r| &r.manifests)
            .collect::<HashSet<_>>()
            .len() as u64,
        blobs: inventory
            .repositories
            .iter()
            .flat_map(|r| &r.blobs)
            .collect::<HashSet<_>>()
            .len() as u64,
        documents_fetched: ctx.fetched.load(Ordering::Relaxed),
    };
    let mut report = InventoryReport {
        target: opts.target.to_string(),
        output: None,
        signature: None,
        digest: None,
        totals,
        failures,
        seconds: 0.0,
    };
    if report.complete() || opts.keep_going {
        let bytes = inventory.to_json_bytes();
        let sig_path = signature_path(&opts.output);
        write_atomic(&opts.output, &bytes)?;
        match &opts.sign {
            Some(key) => {
                write_atomic(&sig_path, key.sign(&bytes).as_bytes())?;
                report.signature = Some(sig_path);
            }
            // A signature left from an earlier run would not match the new file.
            None => match std::fs::remove_file(&sig_path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(InventoryError::Write {
                        path: sig_path,
                        source: e,
                    })
                }
                _ => {}
            },
        }
        report.output = Some(opts.output.clone());
        report.digest = Some(SiteInventory::digest_of(&bytes));
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The repositories to list, prefix included, sorted: the names given, or the catalog's
/// under the prefix.
async fn repositories(
    client: &Client,
    opts: &InventoryOptions,
) -> Result<Vec<String>, InventoryError> {
    let prefix = opts.target.prefix.as_str();
    let full = |name: &str| {
        if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        }
    };
    let mut out = BTreeSet::new();
    if !opts.names.is_empty() {
        for name in &opts.names {
            let n = name.trim_matches('/');
            if n.is_empty() || n.contains(['@', ':', ' ']) {
                return Err(InventoryError::BadName { name: name.clone() });
            }
            out.insert(full(n));
        }
        return Ok(out.into_iter().collect());
    }
    let host = &opts.target.host;
    let all = client
        .catalog(host, opts.page_size)
        .await
        .map_err(|e| match e {
            RegistryError::Unauthorized { .. }
            | RegistryError::Denied { .. }
            | RegistryError::NotFound { .. } => InventoryError::CatalogRefused {
                registry: host.clone(),
                source: Box::new(e),
            },
            // 405 (a registry without the route) is a refusal too.
            RegistryError::Server { status: 405, .. } => InventoryError::CatalogRefused {
                registry: host.clone(),
                source: Box::new(e),
            },
            e => InventoryError::Catalog {
                registry: host.clone(),
                source: Box::new(e),
            },
        })?;
    let under = format!("{prefix}/");
    out.extend(
        all.into_iter()
            .filter(|r| prefix.is_empty() || r == prefix || r.starts_with(&under)),
    );
    Ok(out.into_iter().collect())
}

/// The referrers API is not known yet, there, or absent.
const API_UNKNOWN: u8 = 0;
const API_PRESENT: u8 = 1;
const API_ABSENT: u8 = 2;

/// What one run shares between its repositories.
struct Run {
    client: Client,
    host: String,
    /// One per request in flight.
    permits: Semaphore,
    /// Every document fetched so far: media type and bytes (they are small).
    documents: Mutex<HashMap<Digest, (String, Bytes)>>,
    fetched: AtomicU64,
    referrers_api: AtomicU8,
}

/// What one tag reaches.
#[derive(Default)]
struct Reached {
    manifests: BTreeSet<Digest>,
    blobs: BTreeSet<Digest>,
}

/// A tag's digest and what it reaches, or why it could not be read.
type TagResult = Result<(Digest, Reached), TagError>;

/// Why one tag could not be read.
#[derive(Debug, thiserror::Error)]
enum TagError {
    /// The registry did not give a document.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A document breaks the content model (its size or digest, its JSON).
    #[error(transparent)]
    Graph(#[from] graph::GraphError),
    /// A digest that is not one.
    #[error(transparent)]
    Digest(#[from] airlock_layout::Error),
    /// Documents nested deeper than any image.
    #[error("`{digest}`: deeper than {MAX_DEPTH} levels below the tag")]
    TooDeep {
        /// The document too deep.
        digest: Digest,
    },
}

/// One repository: its tags and what they reach, and what failed.
async fn list_repository(
    ctx: &Run,
    name: String,
    jobs: usize,
) -> (SiteRepository, Vec<InventoryFailure>) {
    let mut repo = SiteRepository {
        name: name.clone(),
        tags: BTreeMap::new(),
        manifests: Vec::new(),
        blobs: Vec::new(),
    };
    let tags = {
        let _permit = ctx.permits.acquire().await.expect("never closed");
        ctx.client.list_tags(&ctx.host, &name).await
    };
    let tags = match tags {
        Ok(t) => t,
        Err(e) => {
            let failure = InventoryFailure {
                repository: name,
                tag: None,
                error: crate::error::render(&e),
            };
            return (repo, vec![failure]);
        }
    };
    let results: Vec<(String, TagResult)> = stream::iter(tags)
        .map(|tag| {
            let name = name.as_str();
            async move {
                let r = list_tag(ctx, name, &tag).await;
                (tag, r)
            }
        })
        .buffer_unordered(jobs)
        .collect()
        .await;
    let mut manifests = BTreeSet::new();
    let mut blobs = BTreeSet::new();
    let mut failures = Vec::new();
    for (tag, result) in results {
        match result {
            Ok((digest, reached)) => {
                repo.tags.insert(tag, digest);
                manifests.extend(reached.manifests);
                blobs.extend(reached.blobs);
            }
            Err(e) => failures.push(InventoryFailure {
                repository: name.clone(),
                tag: Some(tag),
                error: crate::error::render(&e),
            }),
        }
    }
    failures.sort_by(|a, b| a.tag.cmp(&b.tag));
    repo.manifests = manifests.into_iter().collect();
    repo.blobs = blobs.into_iter().collect();
    (repo, failures)
}

/// One tag: its manifest by tag, then every document it reaches (index children by digest,
/// referrers), each checked against its descriptor; blobs only listed.
async fn list_tag(ctx: &Run, repo: &str, tag: &str) -> TagResult {
    let top = {
        let _permit = ctx.permits.acquire().await.expect("never closed");
        ctx.client.get_manifest(&ctx.host, repo, tag).await
    }?;
    ctx.fetched.fetch_add(1, Ordering::Relaxed);
    let digest = Digest::parse(&top.digest)?;
    ctx.documents
        .lock()
        .expect("documents lock")
        .insert(digest.clone(), (top.media_type.clone(), top.bytes.clone()));
    let descriptor = graph::descriptor(&top.media_type, &digest, top.bytes.len() as u64);

    let mut reached = Reached::default();
    let mut pending: Vec<(Descriptor, Bytes, usize)> = vec![(descriptor, top.bytes, 0)];
    let mut asked_referrers: HashSet<Digest> = HashSet::new();
    loop {
        while let Some((descriptor, bytes, depth)) = pending.pop() {
            let doc = Document::parse(&descriptor, &bytes)?;
            if !reached.manifests.insert(doc.digest.clone()) {
                continue;
            }
            for (role, child) in doc.children() {
                let child_digest = Digest::parse(child.digest().as_ref())?;
                if role != Role::Document {
                    reached.blobs.insert(child_digest);
                    continue;
                }
                if reached.manifests.contains(&child_digest) {
                    continue;
                }
                if depth + 1 > MAX_DEPTH {
                    return Err(TagError::TooDeep {
                        digest: child_digest,
                    });
                }
                if let Some(bytes) = fetch_document(ctx, repo, &child_digest).await? {
                    pending.push((child.clone(), bytes, depth + 1));
                }
            }
        }
        // Referrers of every manifest reached, where the registry lists them; what they
        // reach is walked in turn.
        let new: Vec<Digest> = reached
            .manifests
            .iter()
            .filter(|d| !asked_referrers.contains(*d))
            .cloned()
            .collect();
        if new.is_empty() || ctx.referrers_api.load(Ordering::Relaxed) == API_ABSENT {
            break;
        }
        for subject in new {
            asked_referrers.insert(subject.clone());
            for d in referrers(ctx, repo, &subject).await {
                let Ok(digest) = Digest::parse(d.digest().as_ref()) else {
                    continue;
                };
                if reached.manifests.contains(&digest) {
                    continue;
                }
                if let Some(bytes) = fetch_document(ctx, repo, &digest).await? {
                    pending.push((d, bytes, 1));
                }
            }
        }
        if pending.is_empty() {
            break;
        }
    }
    Ok((digest, reached))
}

/// A document by digest: from what this run fetched already, else from the registry. `None`
/// when the registry does not hold it (an index may name manifests it never received).
async fn fetch_document(ctx: &Run, repo: &str, digest: &Digest) -> Result<Option<Bytes>, TagError> {
    if let Some((_, bytes)) = ctx.documents.lock().expect("documents lock").get(digest) {
        return Ok(Some(bytes.clone()));
    }
    let got = {
        let _permit = ctx.permits.acquire().await.expect("never closed");
        ctx.client
            .get_manifest(&ctx.host, repo, &digest.to_string())
            .await
    };
    match got {
        Ok(m) => {
            ctx.fetched.fetch_add(1, Ordering::Relaxed);
            ctx.documents
                .lock()
                .expect("documents lock")
                .insert(digest.clone(), (m.media_type, m.bytes.clone()));
            Ok(Some(m.bytes))
        }
        Err(e) if e.is_not_found() => {
            tracing::debug!(repository = repo, %digest, "named but not held; left out");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// The referrers of `subject` through the referrers API; none when the registry has no such
/// API (then it is not asked again this run) or its answer cannot be read (a missing
/// referrer only makes a delta larger).
async fn referrers(ctx: &Run, repo: &str, subject: &Digest) -> Vec<Descriptor> {
    if ctx.referrers_api.load(Ordering::Relaxed) == API_ABSENT {
        return Vec::new();
    }
    let answer = {
        let _permit = ctx.permits.acquire().await.expect("never closed");
        ctx.client
            .referrers(&ctx.host, repo, &subject.to_string(), None)
            .await
    };
    match answer {
        Ok(Some(r)) => {
            ctx.referrers_api.store(API_PRESENT, Ordering::Relaxed);
            match serde_json::from_slice::<ImageIndex>(&r.bytes) {
                Ok(index) => index.manifests().clone(),
                Err(e) => {
                    tracing::warn!(repository = repo, %subject, error = %e, "referrers index not readable; left out");
                    Vec::new()
                }
            }
        }
        Ok(None) => {
            if ctx.referrers_api.load(Ordering::Relaxed) == API_UNKNOWN {
                tracing::debug!(registry = %ctx.host, "no referrers API; cosign and referrers tags are read as tags");
                ctx.referrers_api.store(API_ABSENT, Ordering::Relaxed);
            }
            Vec::new()
        }
        Err(e) => {
            tracing::warn!(repository = repo, %subject, error = %crate::error::render(&e), "referrers not listed; left out");
            Vec::new()
        }
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory, renamed into
/// place when complete.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), InventoryError> {
    airlock_layout::write_atomic(path, bytes).map_err(|source| InventoryError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_goes_beside_the_file() {
        assert_eq!(
            signature_path(Path::new("out/site.inventory.json")),
            PathBuf::from("out/site.inventory.json.sig")
        );
    }

    #[test]
    fn a_refused_catalog_says_to_pass_names() {
        let e = InventoryError::CatalogRefused {
            registry: "harbor.lan".into(),
            source: Box::new(RegistryError::Denied {
                registry: "harbor.lan".into(),
                repository: String::new(),
                message: String::new(),
            }),
        };
        let text = e.to_string();
        assert!(text.contains("--names"), "{text}");
        assert!(text.contains("harbor.lan"), "{text}");
    }
}
