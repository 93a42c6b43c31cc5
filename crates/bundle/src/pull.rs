//! Resolve, fetch and assemble.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use airlock_layout::graph::{self, GraphError, Node, Role};
use airlock_layout::media::{self, Kind};
use airlock_layout::{
    write_bundle_until, Arrival, BlobGate, BlobRecord, BlobStore, BundleContents, BundleManifest,
    Digest, ImageRecord, Platform, SpecInfo, Totals,
};
use airlock_registry::{Client, ClientOptions, ManifestTypes};
use bytes::Bytes;
use futures_util::{stream, StreamExt};
use tracing::{debug, info_span, Instrument};

use crate::error::{BlobError, Error, ImageError};
use crate::lock::{Lock, LockedImage, LOCK_VERSION};
use crate::platform::{FilteredIndex, PlatformFilter};
use crate::spec::{ImageSpec, RegistrySettings, Spec};
use crate::{BundleOptions, BundleOutcome, LockOptions, LockOutcome, Reporter};

/// Bytes gathered before a write to the cache is handed to a blocking thread.
const WRITE_BATCH: usize = 1 << 20;
/// How often a download broken mid-stream is resumed before giving up.
const RESUMES: u32 = 5;
/// How many times the bundle is written again after damaged cache entries were fetched again.
const REWRITES: usize = 3;

/// Where an image is pulled from: a repository on a registry host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// `host[:port]` (Docker Hub as `docker.io`).
    pub host: String,
    /// The repository on that host.
    pub repository: String,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.host, self.repository)
    }
}

/// One image, chart or file after resolution: manifests and configs are in the cache, layers
/// are listed (a file's bytes and a classic chart's archive are in the cache already).
#[derive(Debug)]
pub(crate) struct Resolved {
    pub(crate) spec_index: usize,
    pub(crate) reference: String,
    pub(crate) name: String,
    pub(crate) tag: Option<String>,
    pub(crate) source: Source,
    /// Digest served upstream (what the lock records).
    pub(crate) upstream_digest: String,
    pub(crate) digest: Digest,
    pub(crate) media_type: String,
    pub(crate) size: u64,
    pub(crate) platforms: Vec<String>,
    pub(crate) original_digest: Option<Digest>,
    /// Every blob of the image in write order (top manifest first), deduplicated.
    pub(crate) blobs: Vec<BlobRecord>,
    /// The blobs that still have to be downloaded (layers), a subset of `blobs`.
    pub(crate) layers: Vec<BlobRecord>,
    /// The artifacts carried with it, subjects first.
    pub(crate) artifacts: Vec<airlock_layout::ArtifactRecord>,
    /// What it is when not a container image: a chart or a file.
    pub(crate) content: Option<airlock_layout::Content>,
    /// How to fetch a blob again that is not pulled from a registry (a file's bytes, a classic
    /// chart's archive, the documents made for them) when its cache entry is damaged.
    pub(crate) refetch: Vec<(Digest, Refetch)>,
    /// Bytes downloaded while it was resolved (a file, a chart archive), for the totals.
    pub(crate) downloaded: u64,
}

/// How a blob that does not come from a registry is fetched again.
#[derive(Debug, Clone)]
pub(crate) enum Refetch {
    /// A document made at bundle time: its bytes.
    Bytes(Bytes),
    /// A download: its sources in order (mirrors, then the origin).
    Urls(Vec<String>),
    /// A local file.
    Local(std::path::PathBuf),
}

/// The upstream signature policy of an image, and how to name it.
struct ImagePolicy {
    policy: Arc<airlock_cosign::Policy>,
    text: String,
}

pub(crate) struct Ctx {
    pub(crate) client: Client,
    pub(crate) store: Arc<BlobStore>,
    /// What the run learnt about its sources' tags and referrers APIs.
    pub(crate) discovery: crate::artifacts::Discovery,
    /// The upstream signature policy of each spec image that has one, by spec index.
    policies: HashMap<usize, ImagePolicy>,
    pub(crate) spec: Spec,
    lock: Option<(std::path::PathBuf, Lock)>,
    reporter: Arc<dyn Reporter>,
    warnings: Mutex<Vec<String>>,
    pub(crate) retries: u32,
    sign: Option<airlock_layout::SigningKey>,
    /// The largest part of a split bundle (`--split`).
    split: Option<u64>,
    /// Set when the run is abandoned (its future dropped): the archive writer stops and
    /// removes its temporary file.
    cancel: Arc<AtomicBool>,
}

impl Ctx {
    pub(crate) fn warn(&self, message: String) {
        self.reporter.warn(&message);
        self.warnings.lock().expect("warnings lock").push(message);
    }
}

/// Runs the online side: resolve every image of the spec, fetch what is missing into the cache,
/// and write the bundle file.
///
/// Without `keep_going`, any failed image fails the run and no file is written; each failure is
/// handed to the reporter first.
pub async fn bundle(
    opts: BundleOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<BundleOutcome, Error> {
    let BundleOptions {
        spec,
        output,
        cache_dir,
        jobs,
        keep_going,
        write_lock,
        locked,
        mut client,
        created,
        archive,
        sign,
        verify_upstream_key,
        trusted_root,
        bases,
        split,
    } = opts;
    let jobs = jobs.max(1);
    let policies = policies(
        &spec,
        verify_upstream_key.as_deref(),
        trusted_root.as_deref(),
    )?;

    if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            return Err(Error::Write {
                path: output.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the output directory does not exist",
                ),
            });
        }
    }
    apply_spec_hosts(&mut client, &spec);
    let retries = client.retries;
    let lock = match &locked {
        Some(path) => Some((path.clone(), Lock::read(path)?)),
        None => None,
    };
    let store = Arc::new(BlobStore::open(&cache_dir)?);
    let ctx = Arc::new(Ctx {
        client: Client::new(client)?,
        store,
        discovery: crate::artifacts::Discovery::default(),
        policies,
        spec,
        lock,
        reporter,
        warnings: Mutex::new(Vec::new()),
        retries,
        sign,
        split,
        cancel: Arc::new(AtomicBool::new(false)),
    });

    // 1. Resolve every image (manifests and configs land in the cache), then every file
    // (its bytes land in the cache) and chart, in the order of the spec.
    let (n_images, n_files) = (ctx.spec.images.len(), ctx.spec.files.len());
    let total_images = n_images + n_files + ctx.spec.charts.len();
    let results: Vec<Result<Resolved, ImageError>> = stream::iter(0..total_images)
        .map(|i| {
            let ctx = ctx.clone();
            async move {
                if i < n_images {
                    let img = &ctx.spec.images[i];
                    let span = info_span!("resolve", image = %img.reference);
                    resolve(&ctx, i, img).instrument(span).await
                } else if i < n_images + n_files {
                    let f = &ctx.spec.files[i - n_images];
                    let span = info_span!("file", file = %f.name);
                    crate::files::resolve(&ctx, i, f).instrument(span).await
                } else {
                    let c = &ctx.spec.charts[i - n_images - n_files];
                    let span = info_span!("chart", chart = %c.name, version = %c.version);
                    crate::charts::resolve(&ctx, i, c).instrument(span).await
                }
            }
        })
        .buffered(jobs)
        .collect()
        .await;
    let mut failures = Vec::new();
    let mut resolved = Vec::new();
    for r in results {
        match r {
            Ok(r) => {
                ctx.reporter
                    .resolved(&r.reference, &r.source.to_string(), &r.digest.to_string());
                resolved.push(r);
            }
            Err(e) => {
                ctx.reporter.image_failed(image_of(&e), &e);
                failures.push(e);
            }
        }
    }

    // Without --keep-going a failed resolution ends the run before any layer is fetched.
    if !failures.is_empty() && !keep_going {
        return Err(Error::ImagesFailed {
            count: failures.len(),
            total: total_images,
        });
    }
    if resolved.is_empty() {
        return Err(Error::NothingToBundle);
    }
    let created = created.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    });

    // 2. Download every unique layer once while the archive is written: the manifest and
    // every small blob are known now, and the writer waits at each layer until it is in the
    // cache (in the order the archive needs them, which is the order they are fetched in).
    let manifest = crate::base::apply(build_manifest(&ctx.spec, &resolved, created), &bases);
    // What a base holds is neither downloaded nor written (the documents were fetched for
    // the walk as always).
    let left_out = left_out(&manifest);
    for r in &mut resolved {
        r.layers.retain(|l| !left_out.contains(&l.digest));
    }
    let carried = manifest
        .carried_blobs()
        .fold((0u64, 0u64), |(n, b), r| (n + 1, b + r.size));
    check_free_space(&output, &manifest)?;
    ctx.reporter.writing(carried.0 + 3, carried.1);
    // Registered before the writer starts, so it never takes a missing layer for a cached one.
    let arrivals = Arc::new(Arrivals::default());
    let mut cached_before = HashSet::new();
    for l in resolved.iter().flat_map(|r| &r.layers) {
        if ctx.store.has(&l.digest, l.size) {
            cached_before.insert(l.digest.clone());
        } else {
            arrivals.expect(&l.digest);
        }
    }
    // Whatever ends this run early (an error returned, a panic in a reporter, the caller
    // dropping this future on Ctrl-C), the writer thread must not wait for blobs that will
    // not come, nor finish the file: it stops and removes its temporary file.
    let _stop = StopWriters {
        arrivals: arrivals.clone(),
        cancel: ctx.cancel.clone(),
    };
    let writer = spawn_writer(&ctx, &output, &manifest, &archive, Some(arrivals.clone()));
    let downloads = download_layers(&ctx, &resolved, jobs, &arrivals).await;
    arrivals.close();
    let written = writer.await?;
    let Downloads {
        mut downloaded_bytes,
        resumed_bytes,
        cached_bytes,
        failures: blob_failures,
    } = downloads;
    downloaded_bytes += resolved.iter().map(|r| r.downloaded).sum::<u64>();

    let (manifest, written) = if blob_failures.is_empty() {
        (manifest, written)
    } else {
        let failed_images: HashSet<usize> = blob_failures.iter().map(|(i, _)| *i).collect();
        for (_, e) in blob_failures {
            ctx.reporter.image_failed(image_of(&e), &e);
            failures.push(e);
        }
        if !keep_going {
            return Err(Error::ImagesFailed {
                count: failures.len(),
                total: total_images,
            });
        }
        resolved.retain(|r| !failed_images.contains(&r.spec_index));
        if resolved.is_empty() {
            return Err(Error::NothingToBundle);
        }
        // The pipelined write stopped at the missing blob; write again from the cache,
        // without the failed images.
        let manifest = crate::base::apply(build_manifest(&ctx.spec, &resolved, created), &bases);
        let written = spawn_writer(&ctx, &output, &manifest, &archive, None).await?;
        (manifest, written)
    };
    let archive = repair_cache(
        &ctx,
        Rewrite {
            output: &output,
            manifest: &manifest,
            archive: &archive,
            resolved: &resolved,
            cached_before: &cached_before,
            total_images,
            jobs,
        },
        written,
        &mut downloaded_bytes,
    )
    .await?;
    crate::write_beside(&output, &manifest, ctx.sign.as_ref())?;

    if let Some(path) = &write_lock {
        let lock = lock_of(
            &ctx.spec,
            resolved
                .iter()
                .filter(|r| match &r.content {
                    None => true,
                    // OCI charts are pinned like images; files and classic charts by sha256.
                    Some(airlock_layout::Content::Chart(c)) => c.origin.starts_with("oci://"),
                    Some(airlock_layout::Content::File(_)) => false,
                })
                .map(|r| (&r.reference, &r.upstream_digest, &r.source)),
        );
        lock.write(path)?;
    }

    let warnings = std::mem::take(&mut *ctx.warnings.lock().expect("warnings lock"));
    Ok(BundleOutcome {
        output,
        manifest,
        failures,
        warnings,
        downloaded_bytes,
        resumed_bytes,
        cached_bytes,
        archive,
        rate_limits: ctx.client.rate_limits(),
        bases,
    })
}

/// The upstream signature policy of every image that has one (its `verify:`, its registry's,
/// or `--verify-upstream-key`), each policy built once; files are read now.
fn policies(
    spec: &Spec,
    cli_key: Option<&std::path::Path>,
    cli_root: Option<&std::path::Path>,
) -> Result<HashMap<usize, ImagePolicy>, Error> {
    use crate::spec::VerifySpec;
    let cli = cli_key.map(|k| VerifySpec::Key(k.to_path_buf()));
    let mut built: HashMap<VerifySpec, Arc<airlock_cosign::Policy>> = HashMap::new();
    let mut out = HashMap::new();
    for (i, img) in spec.images.iter().enumerate() {
        let Some(v) = spec.verify_for(img).or(cli.as_ref()) else {
            continue;
        };
        let text = match v {
            VerifySpec::Key(path) => format!("key `{}`", path.display()),
            VerifySpec::Keyless {
                identity, issuer, ..
            } => format!("identity `{identity}` from `{issuer}`"),
        };
        let policy = match built.get(v) {
            Some(p) => p.clone(),
            None => {
                let policy = match v {
                    VerifySpec::Key(path) => airlock_cosign::Policy::keys(std::slice::from_ref(
                        path,
                    ))
                    .map_err(|source| Error::Policy {
                        what: path.display().to_string(),
                        source,
                    })?,
                    VerifySpec::Keyless {
                        identity,
                        issuer,
                        trusted_root,
                    } => {
                        let root = trusted_root.as_deref().or(cli_root).ok_or_else(|| {
                            Error::NoTrustedRoot {
                                image: img.reference.to_string(),
                            }
                        })?;
                        let root = airlock_cosign::TrustedRoot::load(root).map_err(|source| {
                            Error::Policy {
                                what: root.display().to_string(),
                                source,
                            }
                        })?;
                        airlock_cosign::Policy::Keyless(airlock_cosign::KeylessPolicy {
                            root: Arc::new(root),
                            identity: identity.clone(),
                            issuer: issuer.clone(),
                        })
                    }
                };
                let policy = Arc::new(policy);
                built.insert(v.clone(), policy.clone());
                policy
            }
        };
        out.insert(i, ImagePolicy { policy, text });
    }
    Ok(out)
}

/// Sets the cancel flag and closes the arrivals when a run ends, however it ends.
struct StopWriters {
    arrivals: Arc<Arrivals>,
    cancel: Arc<AtomicBool>,
}

impl Drop for StopWriters {
    fn drop(&mut self) {
        // On a normal end every writer was awaited already, so this changes nothing.
        self.cancel.store(true, Ordering::Relaxed);
        self.arrivals.close();
    }
}

/// What [`repair_cache`] needs to write the bundle again.
struct Rewrite<'a> {
    output: &'a std::path::Path,
    manifest: &'a BundleManifest,
    archive: &'a airlock_layout::ArchiveOptions,
    resolved: &'a [Resolved],
    /// Layers that were in the cache before this run (not downloaded by it).
    cached_before: &'a HashSet<Digest>,
    total_images: usize,
    jobs: usize,
}

/// Takes the result of a bundle write; if the writer found a cache entry that does not hash
/// to its digest, drops it (and every other damaged entry from before this run), fetches
/// them again, says so, and writes the bundle again. A blob that is still wrong after it was
/// fetched and verified in this run is a hard error.
async fn repair_cache(
    ctx: &Arc<Ctx>,
    w: Rewrite<'_>,
    mut written: Result<airlock_layout::ArchiveStats, airlock_layout::Error>,
    downloaded: &mut u64,
) -> Result<airlock_layout::ArchiveStats, Error> {
    let mut refetched: HashSet<Digest> = HashSet::new();
    for _ in 0..=REWRITES {
        let (digest, path) = match &written {
            Err(airlock_layout::Error::CachedBlobMismatch { digest, path, .. }) => {
                (digest.clone(), path.clone())
            }
            _ => return Ok(written?),
        };
        if refetched.contains(&digest) {
            return Err(Error::CacheUnreliable {
                digest: digest.to_string(),
                path,
            });
        }
        // One damaged entry makes others likely (a bad disk, a careless edit): hashing the
        // other entries from before this run costs one read each, far less than a rewrite of
        // the bundle for each of them.
        let mut damaged = vec![digest];
        let others: Vec<BlobRecord> = w
            .manifest
            .blobs
            .iter()
            .filter(|b| {
                w.cached_before.contains(&b.digest)
                    && !damaged.contains(&b.digest)
                    && !refetched.contains(&b.digest)
            })
            .cloned()
            .collect();
        damaged.extend(find_damaged(ctx, others, w.jobs).await);
        for digest in damaged {
            let rec = w
                .manifest
                .blobs
                .iter()
                .find(|b| b.digest == digest)
                .cloned()
                .expect("the damaged blob is in the manifest");
            let users: Vec<&Resolved> = w
                .resolved
                .iter()
                .filter(|r| r.blobs.iter().any(|b| b.digest == digest))
                .collect();
            let Some(first) = users.first() else {
                return Ok(written?);
            };
            let cache_path = ctx.store.path(&digest);
            if let Err(source) = std::fs::remove_file(&cache_path) {
                if source.kind() != std::io::ErrorKind::NotFound {
                    return Err(Error::Write {
                        path: cache_path,
                        source,
                    });
                }
            }
            let span = info_span!("blob", digest = %digest);
            if let Some((_, how)) = first.refetch.iter().find(|(d, _)| *d == digest) {
                match crate::files::refetch(ctx, &digest, how)
                    .instrument(span)
                    .await
                {
                    Ok(n) => *downloaded += n,
                    Err(problem) => {
                        let e = content_error(first, problem);
                        ctx.reporter.image_failed(image_of(&e), &e);
                        return Err(Error::ImagesFailed {
                            count: users.len(),
                            total: w.total_images,
                        });
                    }
                }
            } else {
                match fetch_blob(ctx, &first.source, &rec).instrument(span).await {
                    Ok(f) => *downloaded += f.downloaded,
                    Err(e) => {
                        let e = ImageError::Blob {
                            image: first.reference.clone(),
                            digest: digest.to_string(),
                            source_name: first.source.to_string(),
                            source: Box::new(e),
                        };
                        ctx.reporter.image_failed(image_of(&e), &e);
                        return Err(Error::ImagesFailed {
                            count: users.len(),
                            total: w.total_images,
                        });
                    }
                }
            }
            let names: Vec<String> = users.iter().map(|r| format!("`{}`", r.reference)).collect();
            ctx.warn(format!(
                "cached blob {digest} (used by {}) did not match its digest; fetched again",
                names.join(", ")
            ));
            refetched.insert(digest);
        }
        written = spawn_writer(ctx, w.output, w.manifest, w.archive, None).await?;
    }
    Ok(written?)
}

/// The blobs among `blobs` whose cache file does not hash to their digest, `jobs` at a time.
async fn find_damaged(ctx: &Arc<Ctx>, blobs: Vec<BlobRecord>, jobs: usize) -> Vec<Digest> {
    stream::iter(blobs)
        .map(|b| {
            let path = ctx.store.path(&b.digest);
            tokio::task::spawn_blocking(move || match hash_file(&path) {
                // Unreadable or missing: the writer will say so with the path.
                Ok(actual) if actual != b.digest => Some(b.digest),
                _ => None,
            })
        })
        .buffer_unordered(jobs.max(1))
        .filter_map(|r| async move { r.ok().flatten() })
        .collect()
        .await
}

fn hash_file(path: &std::path::Path) -> std::io::Result<Digest> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = airlock_layout::Hasher::new();
    let mut buf = vec![0; 256 * 1024];
    loop {
        match f.read(&mut buf) {
            Ok(0) => return Ok(h.finish()),
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The spec's `plainHttp` and `caFile` settings, merged into the client's host settings, and
/// the manifest media types of the content model (unless the client was given others: the
/// registry client knows none of its own).
pub fn apply_spec_hosts(client: &mut ClientOptions, spec: &Spec) {
    apply_manifest_types(client);
    for (host, settings) in &spec.registries {
        let entry = client.hosts.entry(host.clone()).or_default();
        entry.plain_http |= settings.plain_http;
        if settings.ca_file.is_some() {
            entry.ca_file = settings.ca_file.clone();
        }
    }
}

/// The manifest media types of the content model, unless the client was given others.
pub(crate) fn apply_manifest_types(client: &mut ClientOptions) {
    if client.manifest_types == ManifestTypes::default() {
        client.manifest_types = ManifestTypes {
            accept: media::MANIFEST_ACCEPT.map(String::from).to_vec(),
            index: Some(media::OCI_INDEX.into()),
            manifest: Some(media::OCI_MANIFEST.into()),
            signed_payload: vec![media::DOCKER_SCHEMA1_SIGNED.into()],
        };
    }
}

/// The lock of resolved images: canonical reference → upstream digest and source.
fn lock_of<'a>(
    spec: &Spec,
    resolved: impl Iterator<Item = (&'a String, &'a String, &'a Source)>,
) -> Lock {
    let mut lock = Lock {
        lock_version: LOCK_VERSION,
        spec: spec.name.clone(),
        images: BTreeMap::new(),
    };
    for (reference, digest, source) in resolved {
        lock.images.insert(
            reference.clone(),
            LockedImage {
                digest: digest.clone(),
                source: source.to_string(),
            },
        );
    }
    lock
}

/// Resolves every image of the spec to the digest of its top manifest or index, as served,
/// without fetching anything else, and writes the lock file (the format `bundle --lock`
/// writes; `bundle --locked` checks against it).
///
/// By default the origin is asked first and the spec's mirrors only when it cannot be reached
/// (each such image is named in a warning): the lock then records what the origin serves, and a
/// later `bundle --locked` through a mirror that lags behind is refused. `via_mirrors` asks in
/// the spec's order instead, as a bundle run does. Nothing is written unless every image
/// resolved.
pub async fn resolve_lock(
    opts: LockOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<LockOutcome, Error> {
    let LockOptions {
        spec,
        output,
        jobs,
        mut client,
        via_mirrors,
    } = opts;
    apply_spec_hosts(&mut client, &spec);
    let client = Client::new(client)?;
    let order = if via_mirrors {
        Order::MirrorsFirst
    } else {
        Order::OriginFirst
    };
    // OCI charts are pinned like images.
    let charts = crate::charts::oci_images(&spec);
    let all: Vec<&ImageSpec> = spec.images.iter().chain(&charts).collect();
    let results: Vec<Result<Located, ImageError>> = stream::iter(all.iter().copied())
        .map(|img| {
            let span = info_span!("lock", image = %img.reference);
            locate(&client, &spec, img, order).instrument(span)
        })
        .buffered(jobs.max(1))
        .collect()
        .await;
    let mut warnings = Vec::new();
    let mut failures = Vec::new();
    let mut found = Vec::new();
    for (img, r) in all.iter().zip(results) {
        match r {
            Ok(l) => {
                let image = img.reference.to_string();
                reporter.resolved(&image, &l.source.to_string(), &l.top.digest);
                let mut notes = l.broken;
                if l.mirror && order == Order::OriginFirst {
                    notes.push(format!(
                        "`{image}`: the origin could not be asked; locked as mirror `{}` serves it",
                        l.source
                    ));
                }
                for w in notes {
                    reporter.warn(&w);
                    warnings.push(w);
                }
                found.push((image, l.top.digest, l.source));
            }
            Err(e) => {
                reporter.image_failed(image_of(&e), &e);
                failures.push(e);
            }
        }
    }
    if !failures.is_empty() {
        return Err(Error::LockFailed {
            count: failures.len(),
            total: all.len(),
        });
    }
    let lock = lock_of(&spec, found.iter().map(|(i, d, s)| (i, d, s)));
    lock.write(&output)?;
    Ok(LockOutcome {
        output,
        lock,
        warnings,
    })
}

/// Which layers are in the cache, for a writer that runs while they download.
#[derive(Default)]
struct Arrivals {
    /// `false` while downloading, `true` once committed; a failed blob is removed.
    state: Mutex<ArrivalState>,
    changed: Condvar,
}

#[derive(Default)]
struct ArrivalState {
    pending: HashSet<Digest>,
    failed: HashSet<Digest>,
    /// Downloaded by this run: the store hashed them before committing them.
    fetched: HashSet<Digest>,
    closed: bool,
}

impl Arrivals {
    fn expect(&self, d: &Digest) {
        self.state
            .lock()
            .expect("arrivals lock")
            .pending
            .insert(d.clone());
    }

    /// `d` is in the cache (`ok`), or will not come; `fetched` when this run downloaded it.
    fn arrived(&self, d: &Digest, ok: bool, fetched: bool) {
        let mut st = self.state.lock().expect("arrivals lock");
        st.pending.remove(d);
        if !ok {
            st.failed.insert(d.clone());
        } else if fetched {
            st.fetched.insert(d.clone());
        }
        self.changed.notify_all();
    }

    /// No more downloads: whatever is still pending will not come.
    fn close(&self) {
        let mut st = self.state.lock().expect("arrivals lock");
        st.closed = true;
        self.changed.notify_all();
    }

    /// Blocks until `d` is in the cache (or was never awaited: cached before the run), and
    /// says whether this run's download verified it.
    fn wait(&self, d: &Digest) -> Result<Arrival, airlock_layout::Error> {
        let mut st = self.state.lock().expect("arrivals lock");
        loop {
            if st.failed.contains(d) || (st.closed && st.pending.contains(d)) {
                return Err(airlock_layout::Error::NotArrived { digest: d.clone() });
            }
            if !st.pending.contains(d) {
                return Ok(if st.fetched.contains(d) {
                    Arrival::Verified
                } else {
                    Arrival::Cached
                });
            }
            st = self.changed.wait(st).expect("arrivals lock");
        }
    }
}

/// Refuses before any layer is downloaded when the output directory has clearly too little
/// room: the blobs the bundle carries (layers are stored as they are, already compressed)
/// plus the tar and index overhead, with a margin.
fn check_free_space(output: &std::path::Path, manifest: &BundleManifest) -> Result<(), Error> {
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    // A delta's file holds only what its bases lack.
    let (count, blobs) = manifest
        .carried_blobs()
        .fold((0u64, 0u64), |(n, s), b| (n + 1, s + b.size));
    // A header and padding per entry, and a few KiB of manifest, index and tables.
    let overhead = (count + 8) * 2 * airlock_layout::TAR_BLOCK;
    let estimate = blobs + overhead + manifest.to_json_bytes().len() as u64 * 2;
    airlock_layout::volume::check_free_space(dir, estimate)?;
    Ok(())
}

/// Writes the bundle on a blocking thread; with `arrivals`, each blob is awaited first.
fn spawn_writer(
    ctx: &Arc<Ctx>,
    output: &std::path::Path,
    manifest: &BundleManifest,
    archive: &airlock_layout::ArchiveOptions,
    arrivals: Option<Arc<Arrivals>>,
) -> tokio::task::JoinHandle<Result<airlock_layout::ArchiveStats, airlock_layout::Error>> {
    let store = ctx.store.clone();
    let out = output.to_path_buf();
    let manifest_json = manifest.to_json_bytes();
    let signature = ctx.sign.as_ref().map(|key| key.sign(&manifest_json));
    let index_json = manifest.index_json();
    let blobs: Vec<BlobRecord> = manifest.carried_blobs().cloned().collect();
    let archive = archive.clone();
    let cancel = ctx.cancel.clone();
    let split = ctx.split.map(|part_size| (part_size, ctx.sign.clone()));
    tokio::task::spawn_blocking(move || {
        let wait = |d: &Digest| match &arrivals {
            Some(a) => a.wait(d),
            None => Ok(Arrival::Cached),
        };
        let contents = BundleContents {
            manifest_json: &manifest_json,
            signature: signature.as_ref().map(|sig| sig.as_bytes()),
            index_json: &index_json,
            blobs: &blobs,
            store: &store,
            gate: Some(BlobGate(&wait)),
        };
        match &split {
            None => write_bundle_until(&out, &contents, &archive, &cancel),
            Some((part_size, key)) => {
                let split = airlock_layout::SplitOptions {
                    part_size: *part_size,
                    key: key.as_ref(),
                };
                airlock_layout::write_split_bundle_until(&out, &contents, &archive, &cancel, &split)
                    .map(|(stats, _)| stats)
            }
        }
    })
}

/// The blobs of a delta that its bases supply.
fn left_out(manifest: &BundleManifest) -> HashSet<Digest> {
    manifest.from_bases().into_keys().cloned().collect()
}

/// The error of a chart or file record whose blob could not be fetched again.
fn content_error(r: &Resolved, problem: crate::error::ContentProblem) -> ImageError {
    match &r.content {
        Some(airlock_layout::Content::File(f)) => ImageError::File {
            file: f.name.clone(),
            problem,
        },
        _ => ImageError::Chart {
            chart: r.reference.clone(),
            problem,
        },
    }
}

fn image_of(e: &ImageError) -> &str {
    match e {
        ImageError::File { file, .. } => file,
        ImageError::Chart { chart, .. } => chart,
        ImageError::Unresolved { image, .. }
        | ImageError::Registry { image, .. }
        | ImageError::LockMismatch { image, .. }
        | ImageError::NotLocked { image, .. }
        | ImageError::BadManifest { image, .. }
        | ImageError::NoPlatform { image, .. }
        | ImageError::UpstreamSignature { image, .. }
        | ImageError::Blob { image, .. } => image,
    }
}

/// The sources of an image: the spec's mirrors of its registry in order, then the origin;
/// each with whether it is a mirror.
///
/// `k8s.gcr.io` and `registry.k8s.io` are aliases: the mirrors of either apply to both, and a
/// `k8s.gcr.io` image (frozen since 2023) is looked up at `registry.k8s.io` after its own origin.
/// The image keeps the name it was given.
pub fn sources(spec: &Spec, img: &ImageSpec) -> Vec<(Source, bool)> {
    let r = &img.reference;
    let mut out = Vec::new();
    if let Some(settings) = RegistrySettings::for_host(&spec.registries, &r.registry) {
        for m in &settings.mirrors {
            // A mirror written as a URL (for file hosts) names its host the same way.
            let m = m
                .strip_prefix("https://")
                .or_else(|| m.strip_prefix("http://"))
                .unwrap_or(m);
            let (host, prefix) = match m.split_once('/') {
                Some((h, p)) => (h.to_string(), format!("{p}/")),
                None => (m.to_string(), String::new()),
            };
            out.push((
                Source {
                    host,
                    repository: format!("{prefix}{}", r.repository),
                },
                true,
            ));
        }
    }
    out.push((
        Source {
            host: r.registry.clone(),
            repository: r.repository.clone(),
        },
        false,
    ));
    if r.registry == crate::kubernetes::LEGACY_REGISTRY {
        out.push((
            Source {
                host: crate::kubernetes::REGISTRY.to_string(),
                repository: r.repository.clone(),
            },
            false,
        ));
    }
    out
}

/// Which source is asked first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    /// The spec's order: mirrors, then the origin (what a bundle run does).
    MirrorsFirst,
    /// The origin first, the mirrors only when it cannot be reached (what `lock` does by
    /// default, so a later bundle through a mirror is checked against the origin).
    OriginFirst,
}

/// Where an image was found.
struct Located {
    source: Source,
    /// Whether `source` is a mirror (not the origin).
    mirror: bool,
    top: airlock_registry::Manifest,
    /// Warnings about sources skipped for reasons other than a missing image.
    broken: Vec<String>,
}

/// The first source that serves the image, with its top manifest or index; sources that lack
/// it are skipped quietly, sources broken otherwise are skipped with a warning (returned).
async fn locate(
    client: &Client,
    spec: &Spec,
    img: &ImageSpec,
    order: Order,
) -> Result<Located, ImageError> {
    let image = img.reference.to_string();
    let wanted = img.reference.reference().to_string();
    let mut candidates = sources(spec, img);
    if order == Order::OriginFirst {
        // Stable: origins keep their order, mirrors theirs.
        candidates.sort_by_key(|(_, mirror)| *mirror);
    }
    let single = candidates.len() == 1;
    let mut attempts = Vec::new();
    let mut broken = Vec::new();
    for (i, (source, mirror)) in candidates.iter().enumerate() {
        match client
            .get_manifest(&source.host, &source.repository, &wanted)
            .await
        {
            Ok(top) => {
                return Ok(Located {
                    source: source.clone(),
                    mirror: *mirror,
                    top,
                    broken,
                })
            }
            Err(e) if i + 1 == candidates.len() => {
                if single {
                    return Err(ImageError::Registry {
                        image,
                        what: format!("manifest `{wanted}`"),
                        source_name: source.to_string(),
                        source: Box::new(e),
                    });
                }
                attempts.push((source.to_string(), error_text(&e)));
                return Err(ImageError::Unresolved { image, attempts });
            }
            Err(e) => {
                // A source that lacks the image or is down is not fatal: the next one is
                // tried, and every attempt is kept for the final report. A source that is
                // broken in another way (TLS, credentials) is worth a warning even when a
                // later one works.
                debug!(%source, error = %e, "source failed, trying the next one");
                if !e.is_not_found() {
                    let text = error_text(&e);
                    let first = text.lines().next().unwrap_or_default();
                    let kind = if *mirror { "mirror" } else { "origin" };
                    broken.push(format!("`{image}`: {kind} `{source}` skipped: {first}"));
                }
                attempts.push((source.to_string(), error_text(&e)));
            }
        }
    }
    unreachable!("the last source returns")
}

pub(crate) async fn resolve(
    ctx: &Ctx,
    spec_index: usize,
    img: &ImageSpec,
) -> Result<Resolved, ImageError> {
    let image = img.reference.to_string();
    let Located {
        source,
        top,
        broken,
        ..
    } = locate(&ctx.client, &ctx.spec, img, Order::MirrorsFirst).await?;
    for w in broken {
        ctx.warn(w);
    }

    if let Some((lock_path, lock)) = &ctx.lock {
        match lock.images.get(&image) {
            None => {
                return Err(ImageError::NotLocked {
                    image,
                    lock: lock_path.clone(),
                })
            }
            Some(l) if l.digest != top.digest => {
                return Err(ImageError::LockMismatch {
                    image,
                    source_name: source.to_string(),
                    expected: l.digest.clone(),
                    actual: top.digest.clone(),
                })
            }
            Some(_) => {}
        }
    }

    let mut walk = ImageWalk {
        ctx,
        image: &image,
        source: &source,
        blobs: Vec::new(),
        seen: HashSet::new(),
        layers: Vec::new(),
        platforms: Vec::new(),
        children: Vec::new(),
    };
    let upstream_digest = top.digest.clone();
    let media_type = graph::document_media_type(Some(&top.media_type), &top.bytes);
    // The repository's tag list, which discovery starts from, is asked for while the image's
    // own documents are fetched.
    let wants_artifacts = !img.artifacts.is_none() || ctx.policies.contains_key(&spec_index);
    let (walked, _) = tokio::join!(
        walk.top(&top.bytes, &media_type, &upstream_digest, &img.platforms),
        async {
            if wants_artifacts {
                crate::artifacts::tag_list(ctx, &source).await;
            }
        }
    );
    let (digest, size, original_digest) = walked?;
    if let Some(orig) = &original_digest {
        let mut msg = format!(
            "`{image}`: index {orig} filtered to {} -> {digest}",
            walk.platforms.join(", ")
        );
        if img.reference.digest.is_some() {
            msg.push_str(
                "; the digest pin is not kept (pods that name the pinned digest will not find it): \
                 set `platforms: [all]` on this image to keep it",
            );
        }
        ctx.warn(msg);
    }
    let artifacts = carry_artifacts(
        ctx,
        spec_index,
        img,
        &source,
        &mut walk,
        (&digest, original_digest.as_ref()),
    )
    .await?;
    let ImageWalk {
        blobs,
        layers,
        platforms,
        ..
    } = walk;
    Ok(Resolved {
        spec_index,
        reference: image,
        name: img.reference.name(),
        tag: img.reference.tag.clone(),
        source,
        upstream_digest,
        digest,
        media_type,
        size,
        platforms,
        original_digest,
        blobs,
        layers,
        artifacts,
        content: None,
        refetch: Vec::new(),
        downloaded: 0,
    })
}

/// Finds the artifacts of the image (its top as stored, each platform manifest kept, and for
/// a filtered index the upstream index), verifies its upstream signature when a policy applies,
/// and adds what is carried to the walk's blobs. A filtered index's own artifacts are not
/// carried: a warning says which signatures stay valid.
async fn carry_artifacts(
    ctx: &Ctx,
    spec_index: usize,
    img: &ImageSpec,
    source: &Source,
    walk: &mut ImageWalk<'_>,
    (digest, original): (&Digest, Option<&Digest>),
) -> Result<Vec<airlock_layout::ArtifactRecord>, ImageError> {
    use crate::artifacts::{self, Subject};
    let policy = ctx.policies.get(&spec_index);
    if img.artifacts.is_none() && policy.is_none() {
        return Ok(Vec::new());
    }
    let image = walk.image.to_string();
    let upstream = original.unwrap_or(digest).clone();
    let mut subjects = vec![Subject {
        digest: upstream.clone(),
        platform: None,
        carried: original.is_none(),
    }];
    for (d, platform) in &walk.children {
        subjects.push(Subject {
            digest: d.clone(),
            platform: platform.clone(),
            carried: true,
        });
    }
    let found = artifacts::discover(
        ctx,
        &image,
        source,
        &img.artifacts,
        &subjects,
        policy.is_some(),
    )
    .await?;
    let mut all: Vec<artifacts::Artifact> = found.into_iter().flat_map(|(_, a)| a).collect();
    if let Some(p) = policy {
        artifacts::verify(&image, &upstream, &mut all, &p.policy, &p.text)?;
        if original.is_some() {
            for (d, _) in &walk.children {
                let signed = all.iter().any(|a| {
                    a.record.subject == *d
                        && a.record.kind == airlock_layout::ArtifactKind::Signature
                });
                if signed {
                    artifacts::verify(&image, d, &mut all, &p.policy, &p.text)?;
                }
            }
        }
    }
    if let Some(orig) = original {
        filtered_index_warning(ctx, &image, orig, digest, &walk.children, &all);
    }
    // Carried: what the selection wants, under a subject the bundle holds.
    let mut held: HashSet<Digest> = walk.children.iter().map(|(d, _)| d.clone()).collect();
    if original.is_none() {
        held.insert(upstream.clone());
    }
    let wanted = |k: airlock_layout::ArtifactKind| match k {
        airlock_layout::ArtifactKind::Signature => img.artifacts.signatures,
        airlock_layout::ArtifactKind::Attestation => img.artifacts.attestations,
        airlock_layout::ArtifactKind::Sbom => img.artifacts.sboms,
        airlock_layout::ArtifactKind::Referrer => true,
    };
    let mut records = Vec::new();
    for a in all {
        if !held.contains(&a.record.subject) || !wanted(a.record.kind) {
            continue;
        }
        held.insert(a.record.digest.clone());
        let layers: HashSet<&Digest> = a.layers.iter().map(|l| &l.digest).collect();
        for b in &a.blobs {
            if walk.seen.insert(b.digest.clone()) {
                walk.blobs.push(b.clone());
                if layers.contains(&b.digest) {
                    walk.layers.push(b.clone());
                }
            }
        }
        records.push(a.record);
    }
    Ok(records)
}

/// Says plainly that the artifacts of an upstream index do not cover the rewritten one, and
/// which signatures stay valid.
fn filtered_index_warning(
    ctx: &Ctx,
    image: &str,
    upstream: &Digest,
    new: &Digest,
    children: &[(Digest, Option<String>)],
    all: &[crate::artifacts::Artifact],
) {
    let over_index: Vec<&crate::artifacts::Artifact> = all
        .iter()
        .filter(|a| a.record.subject == *upstream)
        .collect();
    if over_index.is_empty() {
        return;
    }
    let signed: Vec<String> = children
        .iter()
        .filter(|(d, _)| {
            all.iter().any(|a| {
                a.record.subject == *d && a.record.kind == airlock_layout::ArtifactKind::Signature
            })
        })
        .map(|(d, p)| match p {
            Some(p) => format!("{p} ({d})"),
            None => d.to_string(),
        })
        .collect();
    let kinds: Vec<String> = over_index
        .iter()
        .map(|a| match &a.record.tag {
            Some(t) => format!("{} `{t}`", a.record.kind),
            None => format!("{} {}", a.record.kind, a.record.digest),
        })
        .collect();
    let valid = if signed.is_empty() {
        "no signature stays valid (no platform manifest kept has a signature of its own)"
            .to_string()
    } else {
        format!(
            "the per-platform signatures stay valid and are carried: {}",
            signed.join(", ")
        )
    };
    let what = if over_index
        .iter()
        .any(|a| a.record.kind == airlock_layout::ArtifactKind::Signature)
    {
        "is signed"
    } else {
        "has artifacts"
    };
    ctx.warn(format!(
        "`{image}`: upstream index {upstream} {what}, but platform filtering made a new index \
         {new}, which they do not cover: {} not carried; {valid}",
        kinds.join(", ")
    ));
}

fn error_text(e: &dyn std::error::Error) -> String {
    crate::error::render(e)
}

/// Resolves one image's content through the content graph: documents and configs are
/// fetched (configs from the cache when they are there) and stored, layers are listed.
struct ImageWalk<'a> {
    ctx: &'a Ctx,
    image: &'a str,
    source: &'a Source,
    blobs: Vec<BlobRecord>,
    seen: HashSet<Digest>,
    layers: Vec<BlobRecord>,
    platforms: Vec<String>,
    /// The platform manifests kept under the top index, with their platforms.
    children: Vec<(Digest, Option<String>)>,
}

impl ImageWalk<'_> {
    fn bad(&self, digest: &str, media_type: &str, message: impl Into<String>) -> ImageError {
        ImageError::BadManifest {
            image: self.image.to_string(),
            digest: digest.to_string(),
            media_type: media_type.to_string(),
            message: message.into(),
        }
    }

    fn graph_error(&self, e: GraphError) -> ImageError {
        self.bad(&e.digest, &e.media_type, e.problem.to_string())
    }

    fn parse_digest(&self, d: &str, media_type: &str) -> Result<Digest, ImageError> {
        Digest::parse(d).map_err(|e| self.bad(d, media_type, e.to_string()))
    }

    fn store_bytes(
        &mut self,
        digest: &Digest,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), ImageError> {
        if self.seen.insert(digest.clone()) {
            self.ctx
                .store
                .put_bytes(digest, bytes)
                .map_err(|e| self.blob_error(digest, e.into()))?;
            self.blobs.push(BlobRecord {
                digest: digest.clone(),
                size: bytes.len() as u64,
                media_type: media_type.to_string(),
            });
        }
        Ok(())
    }

    fn blob_error(&self, digest: &Digest, source: BlobError) -> ImageError {
        ImageError::Blob {
            image: self.image.to_string(),
            digest: digest.to_string(),
            source_name: self.source.to_string(),
            source: Box::new(source),
        }
    }

    /// Handles the top manifest; returns the digest and size stored, and the upstream digest
    /// when platform filtering rewrote the index.
    async fn top(
        &mut self,
        bytes: &Bytes,
        media_type: &str,
        upstream: &str,
        filter: &PlatformFilter,
    ) -> Result<(Digest, u64, Option<Digest>), ImageError> {
        let digest = self.parse_digest(upstream, media_type)?;
        let (stored_bytes, stored_digest, original) = if media::kind(media_type) == Kind::Index {
            self.filter_index(bytes, media_type, upstream, &digest, filter)?
        } else {
            (bytes.clone(), digest.clone(), None)
        };
        let top = graph::descriptor(media_type, &stored_digest, stored_bytes.len() as u64);
        let mut walk = graph::Walk::new(&top).map_err(|e| self.graph_error(e))?;
        while let Some(node) = walk.next_node() {
            match node.role {
                Role::Document => {
                    let data = if node.depth == 0 {
                        stored_bytes.clone()
                    } else {
                        self.fetch_manifest(&node).await?
                    };
                    let doc = walk.feed(&data).map_err(|e| self.graph_error(e))?;
                    self.store_bytes(&node.digest, &node.media_type, &data)?;
                    if node.depth == 1 {
                        self.children.push((
                            node.digest.clone(),
                            node.platform.as_ref().map(|p| p.to_string()),
                        ));
                    }
                    if node.depth > 0 || doc.kind() != Kind::Index {
                        continue;
                    }
                    for d in doc.index().map(|i| i.manifests().as_slice()).unwrap_or(&[]) {
                        if let Some(p) = d.platform() {
                            let s = Platform::from_oci(p).to_string();
                            if !self.platforms.contains(&s) {
                                self.platforms.push(s);
                            }
                        }
                    }
                }
                Role::Config => {
                    let data = self.fetch_config(&node).await?;
                    node.check(&data).map_err(|e| self.graph_error(e))?;
                    self.store_bytes(&node.digest, &node.media_type, &data)?;
                    // The config of a top manifest: a single-platform image.
                    if node.depth == 1 {
                        self.single_platform(&data, filter);
                    }
                }
                Role::Layer => {
                    if self.seen.insert(node.digest.clone()) {
                        let rec = BlobRecord {
                            digest: node.digest,
                            size: node.descriptor.size(),
                            media_type: node.media_type,
                        };
                        self.blobs.push(rec.clone());
                        self.layers.push(rec);
                    }
                }
            }
        }
        Ok((stored_digest, stored_bytes.len() as u64, original))
    }

    /// Keeps the manifests of an index that the filter wants; returns the index to store,
    /// its digest, and the upstream digest when it was rewritten.
    fn filter_index(
        &self,
        bytes: &Bytes,
        media_type: &str,
        upstream: &str,
        digest: &Digest,
        filter: &PlatformFilter,
    ) -> Result<(Bytes, Digest, Option<Digest>), ImageError> {
        match crate::platform::filter_index(bytes, filter)
            .map_err(|e| self.bad(upstream, media_type, e.to_string()))?
        {
            FilteredIndex::Unchanged => Ok((bytes.clone(), digest.clone(), None)),
            FilteredIndex::Rewritten { bytes, digest: new } => {
                Ok((bytes, new, Some(digest.clone())))
            }
            FilteredIndex::NothingKept { available } => Err(ImageError::NoPlatform {
                image: self.image.to_string(),
                digest: upstream.to_string(),
                wanted: filter.to_string(),
                available: if available.is_empty() {
                    "none".into()
                } else {
                    available.join(", ")
                },
            }),
        }
    }

    /// Fetches a manifest named by an index, by digest (the walk checks it).
    async fn fetch_manifest(&self, node: &Node) -> Result<Bytes, ImageError> {
        let digest_s = node.digest.to_string();
        let m = self
            .ctx
            .client
            .get_manifest(&self.source.host, &self.source.repository, &digest_s)
            .await
            .map_err(|e| ImageError::Registry {
                image: self.image.to_string(),
                what: format!("manifest {digest_s}"),
                source_name: self.source.to_string(),
                source: Box::new(e),
            })?;
        Ok(m.bytes)
    }

    /// A config, from the cache when it is there and intact, else from the registry.
    async fn fetch_config(&self, node: &Node) -> Result<Bytes, ImageError> {
        let (digest, size) = (&node.digest, node.descriptor.size());
        if self.ctx.store.has(digest, size) {
            let path = self.ctx.store.path(digest);
            let data = std::fs::read(&path)
                .map(Bytes::from)
                .map_err(|source| self.blob_error(digest, BlobError::Io { path, source }))?;
            if Digest::of_bytes(&data) == *digest {
                return Ok(data);
            }
            // Fetched again below; `put_bytes` then replaces the damaged entry.
            self.ctx.warn(format!(
                "cached blob {digest} (used by `{}`) did not match its digest; fetched again",
                self.image
            ));
        }
        self.ctx
            .client
            .get_blob_bytes(
                &self.source.host,
                &self.source.repository,
                &digest.to_string(),
                size,
            )
            .await
            .map_err(|e| self.blob_error(digest, e.into()))
    }

    /// A single-manifest image: read its platform from the config, warn if the filter would
    /// not keep it (a single manifest cannot be filtered).
    fn single_platform(&mut self, config: &[u8], filter: &PlatformFilter) {
        if let Some(p) = Platform::from_config(config) {
            if !filter.keeps(&p) {
                self.ctx.warn(format!(
                    "`{}` is a single-platform image for {p}, which is not among the requested platforms ({filter}); it is bundled as it is",
                    self.image
                ));
            }
            self.platforms.push(p.to_string());
        }
    }
}

/// What [`download_layers`] did.
struct Downloads {
    /// Bytes that came over the network in this run.
    downloaded_bytes: u64,
    /// Bytes of earlier interrupted downloads taken over.
    resumed_bytes: u64,
    /// Bytes of layers that were in the cache already.
    cached_bytes: u64,
    /// The failures by spec index.
    failures: Vec<(usize, ImageError)>,
}

/// Downloads every layer not yet in the cache, each once, `jobs` at a time.
async fn download_layers(
    ctx: &Arc<Ctx>,
    resolved: &[Resolved],
    jobs: usize,
    arrivals: &Arrivals,
) -> Downloads {
    // Each unique layer is fetched from the source of the first image that needs it.
    let mut todo: Vec<(BlobRecord, Source, usize)> = Vec::new();
    let mut users: HashMap<Digest, Vec<usize>> = HashMap::new();
    let mut cached = (0u64, 0u64);
    let mut total = (0u64, 0u64);
    for (ri, r) in resolved.iter().enumerate() {
        for l in &r.layers {
            let u = users.entry(l.digest.clone()).or_default();
            if u.is_empty() {
                if ctx.store.has(&l.digest, l.size) {
                    cached.0 += 1;
                    cached.1 += l.size;
                } else {
                    total.0 += 1;
                    total.1 += l.size;
                    todo.push((l.clone(), r.source.clone(), ri));
                }
            }
            u.push(ri);
        }
    }
    if !resolved.is_empty() {
        ctx.reporter
            .download_start(total.0, total.1, cached.0, cached.1);
    }
    let progress: Arc<Mutex<Vec<usize>>> = Arc::new(Mutex::new(vec![0; resolved.len()]));
    let done_blob = |digest: &Digest| {
        let mut p = progress.lock().expect("progress lock");
        for &ri in users.get(digest).map(Vec::as_slice).unwrap_or(&[]) {
            p[ri] += 1;
            ctx.reporter
                .image_progress(&resolved[ri].reference, p[ri], resolved[ri].layers.len());
        }
    };
    // Cached layers count as done right away.
    let todo_set: HashSet<Digest> = todo.iter().map(|(rec, _, _)| rec.digest.clone()).collect();
    for digest in users.keys().filter(|d| !todo_set.contains(*d)) {
        arrivals.arrived(digest, true, false);
        done_blob(digest);
    }

    let results: Vec<(usize, Digest, Result<Fetched, BlobError>, Source)> = stream::iter(todo)
        .map(|(rec, source, ri)| {
            let ctx = ctx.clone();
            async move {
                let span = info_span!("blob", digest = %rec.digest);
                let r = fetch_blob(&ctx, &source, &rec).instrument(span).await;
                (ri, rec.digest, r, source)
            }
        })
        .buffer_unordered(jobs)
        .inspect(|(_, digest, r, _)| {
            arrivals.arrived(digest, r.is_ok(), true);
            if r.is_ok() {
                done_blob(digest);
            }
        })
        .collect()
        .await;

    let mut failures = Vec::new();
    let mut failed_digests = HashSet::new();
    let mut downloaded = 0;
    let mut resumed = 0;
    for (ri, digest, r, source) in results {
        match r {
            Ok(f) => {
                downloaded += f.downloaded;
                resumed += f.resumed;
            }
            Err(e) => {
                failed_digests.insert(digest.clone());
                failures.push((
                    resolved[ri].spec_index,
                    ImageError::Blob {
                        image: resolved[ri].reference.clone(),
                        digest: digest.to_string(),
                        source_name: source.to_string(),
                        source: Box::new(e),
                    },
                ));
            }
        }
    }
    // Other images that share a failed blob fail too; each is named.
    for r in resolved {
        if failures.iter().any(|(i, _)| *i == r.spec_index) {
            continue;
        }
        if let Some(l) = r.layers.iter().find(|l| failed_digests.contains(&l.digest)) {
            let first = users[&l.digest][0];
            failures.push((
                r.spec_index,
                ImageError::Blob {
                    image: r.reference.clone(),
                    digest: l.digest.to_string(),
                    source_name: resolved[first].source.to_string(),
                    source: Box::new(BlobError::Shared {
                        image: resolved[first].reference.clone(),
                    }),
                },
            ));
        }
    }
    Downloads {
        downloaded_bytes: downloaded,
        resumed_bytes: resumed,
        cached_bytes: cached.1,
        failures,
    }
}

/// What one [`fetch_blob`] moved.
pub(crate) struct Fetched {
    /// Bytes received over the network.
    pub(crate) downloaded: u64,
    /// Bytes of an earlier interrupted download it resumed from (0 if it started over).
    resumed: u64,
}

/// Streams one blob into the cache, resuming after broken connections; the cache checks size
/// and sha256 before the blob becomes visible under its digest.
pub(crate) async fn fetch_blob(
    ctx: &Ctx,
    source: &Source,
    rec: &BlobRecord,
) -> Result<Fetched, BlobError> {
    let store = ctx.store.clone();
    let (digest, size) = (rec.digest.clone(), rec.size);
    let mut writer = tokio::task::spawn_blocking(move || store.begin(&digest, size)).await??;
    let digest_s = rec.digest.to_string();
    let cache_path = ctx.store.path(&rec.digest);
    let mut broken = 0;
    let mut resumed = writer.resumed();
    if resumed > 0 {
        ctx.reporter.download_resumed(&digest_s, resumed, rec.size);
    }
    let mut downloaded = 0u64;
    loop {
        let offset = writer.offset();
        if offset == rec.size {
            break;
        }
        let resp = ctx
            .client
            .get_blob(&source.host, &source.repository, &digest_s, offset)
            .await?;
        if resp.offset != offset {
            // The server ignored the Range request and sends the whole blob.
            writer = blocking(writer, |w| w.restart().map_err(BlobError::from)).await?;
            if resumed > 0 {
                // Said to be resumed, but downloaded whole after all.
                ctx.reporter.download_resumed(&digest_s, 0, rec.size);
                resumed = 0;
            }
        }
        let (w, failure) = write_body(writer, resp.stream, &cache_path, |n| {
            ctx.reporter.download_progress(n as u64);
            downloaded += n as u64;
        })
        .await?;
        writer = w;
        match failure {
            None => break,
            Some(e) if broken < RESUMES.max(ctx.retries) && e.is_retryable() => {
                broken += 1;
                debug!(error = %e, offset = writer.offset(), "download broke, resuming");
            }
            Some(e) => return Err(e.into()),
        }
    }
    tokio::task::spawn_blocking(move || writer.commit()).await??;
    Ok(Fetched {
        downloaded,
        resumed,
    })
}

/// Writes a response body into `writer`, batched onto blocking threads; `on_chunk` sees each
/// chunk's length as it arrives. A body that breaks off is handed back with the writer (which
/// holds what arrived, for a resume), not as an error.
pub(crate) async fn write_body(
    mut writer: airlock_layout::BlobWriter,
    mut body: airlock_registry::BlobStream,
    path: &std::path::Path,
    mut on_chunk: impl FnMut(usize),
) -> Result<(airlock_layout::BlobWriter, Option<airlock_registry::Error>), BlobError> {
    let mut batch: Vec<Bytes> = Vec::new();
    let mut batch_len = 0;
    let mut failure = None;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(b) => {
                on_chunk(b.len());
                batch_len += b.len();
                batch.push(b);
                if batch_len >= WRITE_BATCH {
                    let chunks = std::mem::take(&mut batch);
                    batch_len = 0;
                    let p = path.to_path_buf();
                    writer = blocking(writer, move |w| write_chunks(w, &chunks, &p)).await?;
                }
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    if !batch.is_empty() {
        let p = path.to_path_buf();
        writer = blocking(writer, move |w| write_chunks(w, &batch, &p)).await?;
    }
    Ok((writer, failure))
}

pub(crate) fn write_chunks(
    w: &mut airlock_layout::BlobWriter,
    chunks: &[Bytes],
    path: &std::path::Path,
) -> Result<(), BlobError> {
    use std::io::Write;
    for c in chunks {
        w.write_all(c).map_err(|source| BlobError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    }
    Ok(())
}

pub(crate) async fn blocking<F>(
    mut w: airlock_layout::BlobWriter,
    f: F,
) -> Result<airlock_layout::BlobWriter, BlobError>
where
    F: FnOnce(&mut airlock_layout::BlobWriter) -> Result<(), BlobError> + Send + 'static,
{
    let (w, r) = tokio::task::spawn_blocking(move || {
        let r = f(&mut w);
        (w, r)
    })
    .await?;
    r?;
    Ok(w)
}

fn build_manifest(spec: &Spec, resolved: &[Resolved], created: u64) -> BundleManifest {
    // Images with the same name and digest (two tags of one image) become one record.
    let mut images: Vec<ImageRecord> = Vec::new();
    let mut blobs: Vec<BlobRecord> = Vec::new();
    let mut seen = HashSet::new();
    for r in resolved {
        if let Some(existing) = images
            .iter_mut()
            .find(|i| i.name == r.name && i.digest == r.digest)
        {
            if let Some(t) = &r.tag {
                if !existing.tags.contains(t) {
                    existing.tags.push(t.clone());
                }
            }
            continue;
        }
        images.push(ImageRecord {
            name: r.name.clone(),
            reference: r.reference.clone(),
            tags: r.tag.iter().cloned().collect(),
            digest: r.digest.clone(),
            media_type: r.media_type.clone(),
            size: r.size,
            source: r.source.to_string(),
            platforms: r.platforms.clone(),
            original_digest: r.original_digest.clone(),
            artifacts: r.artifacts.clone(),
            content: r.content.clone(),
        });
        for b in &r.blobs {
            if seen.insert(b.digest.clone()) {
                blobs.push(b.clone());
            }
        }
    }
    let bytes = blobs.iter().map(|b| b.size).sum();
    BundleManifest {
        format_version: airlock_layout::manifest::format_version_for(&images),
        created: crate::time::rfc3339(created),
        airlock_version: env!("CARGO_PKG_VERSION").to_string(),
        spec: SpecInfo {
            name: spec.name.clone(),
            sha256: spec.sha256.clone(),
        },
        totals: Totals {
            images: images.len() as u64,
            blobs: blobs.len() as u64,
            bytes,
        },
        images,
        blobs,
        bases: Vec::new(),
    }
}
