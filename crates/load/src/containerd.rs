//! `airlock load --to containerd://…`: the bundle into containerd, through its gRPC API.
//!
//! Order of work, so that nothing unverified is committed and no image record points at
//! missing content:
//! 1. the head of the bundle, its signature, frame index and small blobs (as for a registry:
//!    `offline::open_all`, `offline::plan`); names mapped, collisions refused;
//! 2. the socket answers (`Version`); a lease is taken for the whole import
//!    (`containerd.io/gc.expire` in a day, deleted at the end), so garbage collection keeps
//!    what this run wrote until the image records reference it;
//! 3. per image (up to `jobs` at once, the largest first), in this order:
//!    - its configs and layers, each written once whichever image asks first (at most `jobs`
//!      writes at once): skipped when `Content.Info` knows it, else streamed from the bundle
//!      with `Content.Write` (ref, expected digest and size; resumed at the offset containerd
//!      holds for the ref), hashed as it is read, the last chunk and the commit withheld
//!      until the digest matched;
//!    - its manifests, children first, with the `containerd.io/gc.ref.content.*` labels that
//!      keep their children;
//!    - the layers of the host platform (or the one asked for) applied into the snapshotter
//!      (`Snapshots.Prepare`, `Diff.Apply`, `Snapshots.Commit` under the chain ID; existing
//!      chain IDs skipped), the config labelled `containerd.io/gc.ref.snapshot.<snapshotter>`;
//!    - last, its image records (`Images.Create`, or `Update` when the name points
//!      elsewhere).
//!
//! A blob that fails fails every image that uses it, and none of their records is written.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use airlock_layout::graph::{self, Body, Document, Problem, Role};
use airlock_layout::{BlobRecord, Digest, Platform, Purpose, Trust};
use bytes::Bytes;
use containerd_client::services::v1::snapshots::{
    CommitSnapshotRequest, PrepareSnapshotRequest, RemoveSnapshotRequest, StatSnapshotRequest,
};
use containerd_client::services::v1::{
    AbortRequest, ApplyRequest, CreateImageRequest, CreateRequest as CreateLeaseRequest,
    DeleteRequest as DeleteLeaseRequest, GetImageRequest, Image, Info as ContentInfo, InfoRequest,
    UpdateImageRequest, UpdateRequest as UpdateContentRequest, WriteAction, WriteContentRequest,
};
use containerd_client::tonic::metadata::MetadataValue;
use containerd_client::tonic::transport::Channel;
use containerd_client::tonic::{Code, Request, Status};
use containerd_client::types::Descriptor;
use futures_util::{stream, StreamExt as _};
use oci_spec::image::{ImageConfiguration, ImageManifest};
use serde::Serialize;
use tokio::sync::{OnceCell, Semaphore};

use crate::error::{ContainerdImageError, ContentError, Said, UnpackError};
use crate::names::{NameMapper, NameRule, Rewrite};
use crate::offline::{open_all, plan, PlannedBundle};
use crate::plan::{ImagePlan, SmallBlobs};
use crate::source::Progress;
use crate::{FailedImage, LoadReporter, SignatureCheck};

/// The socket containerd listens on by default.
pub const DEFAULT_SOCKET: &str = "/run/containerd/containerd.sock";
/// The namespace the kubelet's CRI plugin reads images from.
pub const DEFAULT_NAMESPACE: &str = "k8s.io";
/// The snapshotter images are unpacked into unless told otherwise.
pub const DEFAULT_SNAPSHOTTER: &str = "overlayfs";

/// A containerd to load into: `containerd://[/path/to/containerd.sock][?namespace=NS]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerdTarget {
    /// The gRPC socket.
    pub socket: PathBuf,
    /// The containerd namespace.
    pub namespace: String,
}

/// A `containerd://` target that cannot be parsed.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{text}` is not a containerd target: {problem}\n  hint: write \
     containerd://[/path/to/containerd.sock][?namespace=k8s.io]"
)]
pub struct BadTarget {
    /// The target as given.
    pub text: String,
    /// What is wrong.
    pub problem: &'static str,
}

impl FromStr for ContainerdTarget {
    type Err = BadTarget;
    fn from_str(s: &str) -> Result<Self, BadTarget> {
        let bad = |problem| BadTarget {
            text: s.to_string(),
            problem,
        };
        let rest = s
            .strip_prefix("containerd://")
            .ok_or_else(|| bad("it does not start with containerd://"))?;
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let socket = match path {
            "" => PathBuf::from(DEFAULT_SOCKET),
            p if p.starts_with('/') => PathBuf::from(p),
            _ => return Err(bad("the socket path must be absolute")),
        };
        let mut namespace = DEFAULT_NAMESPACE.to_string();
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            match pair.split_once('=') {
                Some(("namespace", ns)) if valid_namespace(ns) => namespace = ns.to_string(),
                Some(("namespace", _)) => {
                    return Err(bad(
                        "a namespace is letters, digits, `.`, `_` and `-`, starting with a letter",
                    ))
                }
                _ => return Err(bad("the only query parameter is namespace=NAME")),
            }
        }
        Ok(ContainerdTarget { socket, namespace })
    }
}

impl fmt::Display for ContainerdTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "containerd://{}?namespace={}",
            self.socket.display(),
            self.namespace
        )
    }
}

fn valid_namespace(ns: &str) -> bool {
    ns.starts_with(|c: char| c.is_ascii_alphabetic())
        && ns
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// What a load into containerd needs.
#[derive(Debug, Clone)]
pub struct ContainerdOptions {
    /// The bundle file.
    pub bundle: PathBuf,
    /// Who vouches for the bundle (every blob is checked against its manifest either way).
    pub trust: Trust,
    /// The socket and namespace.
    pub target: ContainerdTarget,
    /// How canonical names become image names (`keep-host`: the canonical names).
    pub rule: NameRule,
    /// Explicit prefix rewrites (win over `rule`).
    pub rewrites: Vec<Rewrite>,
    /// The platform to unpack, `os/arch[/variant]`; `None`: this host's.
    pub platform: Option<String>,
    /// The snapshotter to unpack into.
    pub snapshotter: String,
    /// Unpack layers into the snapshotter.
    pub unpack: bool,
    /// Blobs written and images handled at once.
    pub jobs: usize,
    /// Base bundles of a delta (`--base`): the blobs the delta takes from its bases are
    /// read from them.
    pub bases: Vec<PathBuf>,
}

impl ContainerdOptions {
    /// Defaults for everything but the bundle, the target and the trust.
    pub fn new(bundle: PathBuf, target: ContainerdTarget, trust: Trust) -> ContainerdOptions {
        ContainerdOptions {
            bundle,
            trust,
            target,
            rule: NameRule::KeepHost,
            rewrites: Vec::new(),
            platform: None,
            snapshotter: DEFAULT_SNAPSHOTTER.into(),
            unpack: true,
            jobs: 4,
            bases: Vec::new(),
        }
    }
}

/// What a load into containerd did; the `--json` report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerdReport {
    /// The bundle file.
    pub bundle: PathBuf,
    /// `containerd://SOCKET?namespace=NS`.
    pub target: String,
    /// containerd's version, as it reports it.
    pub containerd_version: String,
    /// Whether the signature was checked, and with which key.
    pub signature: SignatureCheck,
    /// The platform unpacked (`None` with `--no-unpack`).
    pub platform: Option<String>,
    /// Every image loaded: content committed, unpacked, records written.
    pub images: Vec<ContainerdImage>,
    /// Every image that failed (no record of it was written).
    pub failures: Vec<FailedImage>,
    /// Sums.
    pub totals: ContainerdTotals,
    /// Helm charts of the bundle, left out: containerd holds images only (a load into a
    /// registry pushes them).
    #[serde(skip_serializing_if = "is_zero")]
    pub charts_not_loaded: u64,
    /// Files of the bundle, left out: containerd holds images only (a load into a registry
    /// pushes them, `--files-to DIR` writes them).
    #[serde(skip_serializing_if = "is_zero")]
    pub files_not_loaded: u64,
    /// Wall time.
    pub seconds: f64,
}

/// One image loaded into containerd.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerdImage {
    /// The canonical reference in the bundle.
    pub image: String,
    /// The image records: `NAME:TAG` for each tag (or `NAME@DIGEST` without tags).
    pub names: Vec<String>,
    /// Digest of the top manifest or index, the records' target.
    pub digest: String,
    /// Media type of that manifest or index.
    pub media_type: String,
    /// Records created, updated (pointed elsewhere before) and left as they were.
    pub records_created: u64,
    /// See `records_created`.
    pub records_updated: u64,
    /// See `records_created`.
    pub records_unchanged: u64,
    /// The manifest unpacked, or why none was.
    pub unpacked: Unpacked,
    /// Its signatures, attestations, SBOMs and referrers, which containerd cannot hold:
    /// left out (a load into a registry restores them).
    #[serde(skip_serializing_if = "is_zero")]
    pub artifacts_not_loaded: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The line said for an image whose artifacts are left out of containerd.
fn not_loaded(p: &ImagePlan) -> String {
    let mut kinds: Vec<&str> = p.artifacts.iter().map(|a| a.record.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    format!(
        "`{}`: {} artifacts ({}) not loaded: containerd has no referrers store; load the \
         bundle into a registry (`--to registry://HOST/PREFIX`) to keep signatures, \
         attestations, SBOMs and referrers",
        p.image,
        p.artifacts.len(),
        kinds.join(", ")
    )
}

/// What unpacking did for one image.
#[derive(Debug, Clone, Serialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "state"
)]
pub enum Unpacked {
    /// `--no-unpack`.
    Skipped,
    /// The image has no manifest for the platform.
    NoPlatform,
    /// The layers are in the snapshotter under `chain_id`.
    Done {
        /// The manifest unpacked.
        manifest: String,
        /// The chain ID of the top layer (the snapshot a container starts from).
        chain_id: String,
        /// Snapshots committed by this run.
        snapshots_created: u64,
        /// Snapshots that already existed.
        snapshots_skipped: u64,
    },
}

/// Sums over a [`ContainerdReport`].
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerdTotals {
    /// Images loaded.
    pub images: u64,
    /// Images failed.
    pub failed: u64,
    /// Unique blobs (manifests, configs, layers) written into the content store.
    pub blobs_written: u64,
    /// Unique blobs the content store had already.
    pub blobs_skipped: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Snapshots committed.
    pub snapshots_created: u64,
    /// Snapshots that existed.
    pub snapshots_skipped: u64,
    /// Image records created.
    pub records_created: u64,
    /// Image records updated.
    pub records_updated: u64,
    /// Image records unchanged.
    pub records_unchanged: u64,
}

/// Why a load into containerd stopped as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ContainerdError {
    /// The bundle, its signature or the names (as for a registry load).
    #[error(transparent)]
    Load(#[from] crate::Error),
    /// The socket does not exist.
    #[error(
        "no containerd socket at `{}`; nothing was loaded\n  hint: is containerd installed \
         and running? pass its socket as containerd:///path/to/containerd.sock (the default is \
         {DEFAULT_SOCKET}; see `address` under [grpc] in containerd's config.toml)",
        socket.display()
    )]
    NoSocket {
        /// The socket path.
        socket: PathBuf,
    },
    /// The socket exists but nobody listens.
    #[error(
        "containerd is not running: nothing listens on `{}` (connection refused); nothing was \
         loaded\n  hint: start containerd (`systemctl start containerd`), then run this again",
        socket.display()
    )]
    Down {
        /// The socket path.
        socket: PathBuf,
    },
    /// The socket cannot be opened by this user.
    #[error(
        "permission denied on the containerd socket `{}`; nothing was loaded\n  hint: run as \
         root (`sudo airlock load …`), or as a member of the group that owns the socket",
        socket.display()
    )]
    Permission {
        /// The socket path.
        socket: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Connecting failed otherwise.
    #[error("cannot connect to containerd at `{}`; nothing was loaded", socket.display())]
    Connect {
        /// The socket path.
        socket: PathBuf,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A call that the whole load depends on failed (version, lease).
    #[error("containerd at `{}`: {what} failed", socket.display())]
    Call {
        /// The socket path.
        socket: PathBuf,
        /// The call.
        what: &'static str,
        /// containerd's answer.
        #[source]
        source: Box<Status>,
    },
    /// The platform given cannot be parsed.
    #[error("`{0}` is not a platform\n  hint: write OS/ARCH[/VARIANT], e.g. linux/amd64")]
    Platform(String),
    /// A blocking task panicked or was cancelled.
    #[error("internal task failed")]
    Join(#[from] tokio::task::JoinError),
}

/// Bytes of blob data in one `Content.Write` message (containerd accepts up to 16 MiB).
const MESSAGE: usize = 1 << 20;
/// How long the lease protects what this run wrote, should the run die before deleting it.
const LEASE_TTL: Duration = Duration::from_secs(24 * 3600);

/// What became of one unique blob: written (its bytes) or already there.
type ContentResult = Result<Option<u64>, ContentError>;

struct Engine {
    channel: Channel,
    namespace: String,
    lease: String,
    snapshotter: String,
    source: crate::delta::Sources,
    small: SmallBlobs,
    content: HashMap<Digest, OnceCell<ContentResult>>,
    progress: Progress,
    written: AtomicU64,
    writes: Semaphore,
    jobs: usize,
}

/// Loads a bundle into containerd. See the module documentation for the order of work.
///
/// Fails as a whole (nothing written) on a bad signature, unreadable bundle, name collision
/// or a containerd that does not answer. Images that fail later are listed in
/// [`ContainerdReport::failures`]; the others are loaded.
pub async fn load_to_containerd(
    opts: ContainerdOptions,
    reporter: Arc<dyn LoadReporter>,
) -> Result<ContainerdReport, ContainerdError> {
    let started = Instant::now();
    let ContainerdOptions {
        bundle,
        trust,
        target,
        rule,
        rewrites,
        platform,
        snapshotter,
        unpack,
        jobs,
        bases,
    } = opts;
    let jobs = jobs.max(1);
    let platform = match &platform {
        Some(p) => Platform::parse(p).map_err(|_| ContainerdError::Platform(p.clone()))?,
        None => Platform::host(),
    };

    // 1. Head, signature, index and small blobs, before anything else is used; then names.
    let mut opened = open_all(vec![bundle.clone()], &trust, Purpose::Load).await?;
    if let Some(warning) = trust.warning(Purpose::Load) {
        reporter.warn(warning);
    }
    // A delta: containerd is not asked what it holds; every blob the delta takes from its
    // bases must come from a base file.
    let base_files = open_all(bases, &trust, Purpose::Load).await?;
    let sources = crate::delta::attach_bases(&mut opened[0], &base_files)?;
    let missing = crate::delta::not_supplied(&opened[0], &sources);
    if !missing.0.is_empty() {
        return Err(crate::Error::BaseBlobsMissing {
            bundle: bundle.clone(),
            target: "no --base file carries (containerd is not asked for them)".into(),
            missing,
        }
        .into());
    }
    let mapper = NameMapper {
        prefix: String::new(),
        rule,
        rewrites,
    };
    let PlannedBundle {
        bundle: opened,
        images: planned,
    } = plan(opened, &mapper)
        .map_err(crate::Error::from)?
        .pop()
        .expect("one bundle opened, one planned");
    let mut plans = Vec::new();
    let mut failures: Vec<FailedImage> = Vec::new();
    // Charts and files are OCI content too, but containerd would list them as images (and
    // could not unpack them): they are left out, said once.
    let (planned, content): (Vec<_>, Vec<_>) =
        planned.into_iter().partition(|i| i.record.is_image());
    let charts_not_loaded = content
        .iter()
        .filter(|i| i.record.chart().is_some())
        .count() as u64;
    let files_not_loaded = content.len() as u64 - charts_not_loaded;
    if !content.is_empty() {
        reporter.warn(&format!(
            "{charts_not_loaded} charts and {files_not_loaded} files not loaded: containerd \
             holds images only; load the bundle into a registry (`--to registry://HOST/PREFIX`) \
             for charts and files, or write the files with `--files-to DIR`"
        ));
    }
    for image in planned {
        match image.plan {
            Ok(p) => {
                // containerd has no referrers store: an artifact imported as content would be
                // reachable from no image record (and collected), and one given a record
                // would be listed as an image. They are left out, said once per image.
                if !p.artifacts.is_empty() {
                    reporter.warn(&not_loaded(&p));
                }
                plans.push(p)
            }
            Err(e) => {
                let e = ContainerdImageError::Plan(e);
                reporter.image_failed(e.image(), &e);
                failures.push(FailedImage {
                    image: e.image().to_string(),
                    error: crate::error::render(&e),
                    artifact: None,
                });
            }
        }
    }

    // 2. The daemon, then a lease for everything this run writes.
    let channel = connect(&target).await?;
    let call = |what: &'static str| {
        let socket = target.socket.clone();
        move |s: Status| ContainerdError::Call {
            socket,
            what,
            source: Box::new(s),
        }
    };
    let version =
        containerd_client::services::v1::version_client::VersionClient::new(channel.clone())
            .version(Request::new(()))
            .await
            .map_err(|s| connect_status(&target, s))?
            .into_inner()
            .version;
    let lease = format!(
        "airlock-load-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let mut labels = HashMap::new();
    labels.insert(
        "containerd.io/gc.expire".to_string(),
        rfc3339(SystemTime::now() + LEASE_TTL),
    );
    let mut leases =
        containerd_client::services::v1::leases_client::LeasesClient::new(channel.clone());
    leases
        .create(namespaced(
            &target.namespace,
            None,
            CreateLeaseRequest {
                id: lease.clone(),
                labels,
            },
        ))
        .await
        .map_err(call("creating a lease"))?;

    let mut content = HashMap::new();
    for p in &plans {
        for b in &p.blobs {
            content
                .entry(b.digest.clone())
                .or_insert_with(OnceCell::new);
        }
        for (d, _, _) in &p.manifests {
            content.entry(d.clone()).or_insert_with(OnceCell::new);
        }
    }
    let unique: BTreeMap<&Digest, u64> = plans
        .iter()
        .flat_map(|p| p.blobs.iter().map(|b| (&b.digest, b.size)))
        .collect();
    reporter.start(plans.len(), unique.len() as u64, unique.values().sum());
    let progress_reporter = reporter.clone();
    let engine = Arc::new(Engine {
        channel,
        namespace: target.namespace.clone(),
        lease: lease.clone(),
        snapshotter,
        source: sources,
        small: opened.small,
        content,
        progress: Arc::new(move |n| progress_reporter.bytes_sent(n)),
        written: AtomicU64::new(0),
        writes: Semaphore::new(jobs),
        jobs,
    });

    // 3. Per image, `jobs` at once, the largest first (its layer writes and unpacking are
    // the longest path): configs and layers, each written once whichever image asks first and
    // at most `jobs` at once; then manifests, unpack, records. An image unpacks as soon as
    // its own content is in, while others are still being written.
    plans.sort_by_key(|p| std::cmp::Reverse(p.blobs.iter().map(|b| b.size).sum::<u64>()));
    let unpack_platform = unpack.then_some(&platform);
    let results: Vec<Result<ContainerdImage, FailedImage>> = stream::iter(plans)
        .map(|plan| {
            let engine = engine.clone();
            let reporter = reporter.clone();
            async move {
                engine
                    .load_image(&plan, unpack_platform)
                    .await
                    .map_err(|e| {
                        // Said as it happens; the report lists it too.
                        reporter.image_failed(e.image(), &e);
                        FailedImage {
                            image: e.image().to_string(),
                            error: crate::error::render(&e),
                            artifact: None,
                        }
                    })
            }
        })
        .buffer_unordered(jobs)
        .collect()
        .await;

    // The records reference everything now; the lease can go. `sync`: containerd collects
    // garbage before answering, so what the load reports is what stays.
    if let Err(s) = leases
        .delete(namespaced(
            &target.namespace,
            None,
            DeleteLeaseRequest {
                id: lease.clone(),
                sync: true,
            },
        ))
        .await
    {
        reporter.warn(&format!(
            "could not delete the lease `{lease}` (it expires by itself in a day): {}",
            s.message()
        ));
    }

    let mut images = Vec::new();
    for r in results {
        match r {
            Ok(i) => images.push(i),
            Err(f) => failures.push(f),
        }
    }
    images.sort_by(|a, b| a.image.cmp(&b.image));
    let mut totals = ContainerdTotals {
        images: images.len() as u64,
        failed: failures.len() as u64,
        bytes_written: engine.written.load(Ordering::Relaxed),
        ..ContainerdTotals::default()
    };
    for cell in engine.content.values() {
        match cell.get() {
            Some(Ok(Some(_))) => totals.blobs_written += 1,
            Some(Ok(None)) => totals.blobs_skipped += 1,
            _ => {}
        }
    }
    for i in &images {
        totals.records_created += i.records_created;
        totals.records_updated += i.records_updated;
        totals.records_unchanged += i.records_unchanged;
        if let Unpacked::Done {
            snapshots_created,
            snapshots_skipped,
            ..
        } = &i.unpacked
        {
            totals.snapshots_created += snapshots_created;
            totals.snapshots_skipped += snapshots_skipped;
        }
    }
    Ok(ContainerdReport {
        bundle,
        target: target.to_string(),
        containerd_version: version,
        signature: opened.signature,
        platform: unpack.then(|| platform.to_string()),
        images,
        failures,
        totals,
        charts_not_loaded,
        files_not_loaded,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Connects to the socket, turning the usual failures into errors with a hint.
async fn connect(target: &ContainerdTarget) -> Result<Channel, ContainerdError> {
    let socket = target.socket.clone();
    // A probe first: tonic's transport error hides the io::Error kind.
    match tokio::net::UnixStream::connect(&socket).await {
        Ok(_) => {}
        Err(e) => return Err(io_connect_error(&socket, e)),
    }
    containerd_client::connect(&socket)
        .await
        .map_err(|e| ContainerdError::Connect {
            socket,
            source: Box::new(e),
        })
}

fn io_connect_error(socket: &std::path::Path, e: std::io::Error) -> ContainerdError {
    let socket = socket.to_path_buf();
    match e.kind() {
        std::io::ErrorKind::NotFound => ContainerdError::NoSocket { socket },
        std::io::ErrorKind::ConnectionRefused => ContainerdError::Down { socket },
        std::io::ErrorKind::PermissionDenied => ContainerdError::Permission { socket, source: e },
        _ => ContainerdError::Connect {
            socket,
            source: Box::new(e),
        },
    }
}

/// The first call's failure: a daemon that went away between the probe and the call, or a
/// socket that is not containerd's.
fn connect_status(target: &ContainerdTarget, s: Status) -> ContainerdError {
    if s.code() == Code::Unavailable {
        return ContainerdError::Down {
            socket: target.socket.clone(),
        };
    }
    ContainerdError::Call {
        socket: target.socket.clone(),
        what: "asking its version (is this containerd's gRPC socket, not the ttrpc one?)",
        source: Box::new(s),
    }
}

/// A request in the namespace, and in the lease when one is given.
fn namespaced<T>(namespace: &str, lease: Option<&str>, msg: T) -> Request<T> {
    let mut req = Request::new(msg);
    let md = req.metadata_mut();
    if let Ok(v) = MetadataValue::try_from(namespace) {
        md.insert("containerd-namespace", v);
    }
    if let Some(Ok(v)) = lease.map(MetadataValue::try_from) {
        md.insert("containerd-lease", v);
    }
    req
}

impl Engine {
    fn req<T>(&self, msg: T) -> Request<T> {
        namespaced(&self.namespace, Some(&self.lease), msg)
    }

    fn content_client(
        &self,
    ) -> containerd_client::services::v1::content_client::ContentClient<Channel> {
        containerd_client::services::v1::content_client::ContentClient::new(self.channel.clone())
    }

    /// A config or layer: in the content store once, whichever image asks first.
    async fn ensure_blob(&self, blob: &BlobRecord) -> ContentResult {
        self.content[&blob.digest]
            .get_or_init(|| async {
                if self.exists(&blob.digest).await? {
                    return Ok(None);
                }
                if !self.source.has_entry(&blob.digest) {
                    return Err(ContentError::NotIndexed);
                }
                let _permit = self.writes.acquire().await.expect("never closed");
                self.write(&blob.digest, blob.size, None, HashMap::new())
                    .await
                    .map(Some)
            })
            .await
            .clone()
    }

    /// A manifest or index (bytes already checked), with its GC labels.
    async fn ensure_small(
        &self,
        digest: &Digest,
        bytes: &Bytes,
        labels: HashMap<String, String>,
    ) -> ContentResult {
        self.content[digest]
            .get_or_init(|| async {
                if self.exists(digest).await? {
                    return Ok(None);
                }
                self.write(digest, bytes.len() as u64, Some(bytes.clone()), labels)
                    .await
                    .map(Some)
            })
            .await
            .clone()
    }

    async fn exists(&self, digest: &Digest) -> Result<bool, ContentError> {
        match self
            .content_client()
            .info(self.req(InfoRequest {
                digest: digest.to_string(),
            }))
            .await
        {
            Ok(_) => Ok(true),
            Err(s) if s.code() == Code::NotFound => Ok(false),
            Err(s) => Err(Said::from(s).into()),
        }
    }

    /// `Content.Write`: stat the ref (resume where containerd is), write the chunks, commit
    /// with the expected digest and size once the bytes hashed right. Returns the bytes sent.
    async fn write(
        &self,
        digest: &Digest,
        size: u64,
        small: Option<Bytes>,
        labels: HashMap<String, String>,
    ) -> Result<u64, ContentError> {
        let reference = format!("airlock-{digest}");
        let (tx, rx) = tokio::sync::mpsc::channel::<WriteContentRequest>(4);
        let requests = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) });
        let _ = tx
            .send(WriteContentRequest {
                action: WriteAction::Stat as i32,
                r#ref: reference.clone(),
                total: size as i64,
                expected: digest.to_string(),
                ..Default::default()
            })
            .await;
        let mut client = self.content_client();
        let mut responses = match client.write(self.req(requests)).await {
            Ok(r) => r.into_inner(),
            Err(s) if s.code() == Code::AlreadyExists => return Ok(0),
            Err(s) => return Err(Said::from(s).into()),
        };
        let first = match responses.message().await {
            Ok(Some(m)) => m,
            Ok(None) => return Err(ContentError::NoAnswer),
            Err(s) if s.code() == Code::AlreadyExists => return Ok(0),
            Err(s) => return Err(Said::from(s).into()),
        };
        let mut offset = u64::try_from(first.offset).unwrap_or(0);
        if offset > size {
            offset = 0;
        }
        // Answers are read as they come, so containerd never waits on a full window.
        let drain = tokio::spawn(async move {
            let mut last = None;
            loop {
                match responses.message().await {
                    Ok(Some(m)) => last = Some(m),
                    Ok(None) => return Ok(last),
                    Err(s) => return Err(s),
                }
            }
        });
        let mut sent = 0u64;
        let mut failed = None;
        match small {
            Some(bytes) => {
                let _ = tx
                    .send(WriteContentRequest {
                        action: WriteAction::Write as i32,
                        r#ref: reference.clone(),
                        offset: 0,
                        data: bytes.to_vec(),
                        ..Default::default()
                    })
                    .await;
                sent = bytes.len() as u64;
                offset = 0;
            }
            None => {
                let chunks = self
                    .source
                    .stream(digest, size, offset, Some(self.progress.clone()));
                let mut chunks = std::pin::pin!(chunks);
                let mut pos = offset;
                // Chunks are gathered into messages of about MESSAGE bytes: fewer round trips
                // through containerd's write loop. The source still withholds the blob's last
                // chunk until it hashed right, so the last message waits for that too.
                let mut data = Vec::with_capacity(MESSAGE);
                loop {
                    let item = chunks.next().await;
                    let end = item.is_none();
                    match item {
                        Some(Ok(chunk)) => data.extend_from_slice(&chunk),
                        Some(Err(e)) => {
                            failed = Some(ContentError::Read(Arc::new(e)));
                            break;
                        }
                        None => {}
                    }
                    if data.len() >= MESSAGE || (end && !data.is_empty()) {
                        let n = data.len() as u64;
                        let message = WriteContentRequest {
                            action: WriteAction::Write as i32,
                            r#ref: reference.clone(),
                            offset: pos as i64,
                            data: std::mem::replace(&mut data, Vec::with_capacity(MESSAGE)),
                            ..Default::default()
                        };
                        if tx.send(message).await.is_err() {
                            break;
                        }
                        pos += n;
                        sent += n;
                    }
                    if end {
                        break;
                    }
                }
            }
        }
        if failed.is_none() {
            let _ = tx
                .send(WriteContentRequest {
                    action: WriteAction::Commit as i32,
                    r#ref: reference.clone(),
                    total: size as i64,
                    offset: (offset + sent) as i64,
                    expected: digest.to_string(),
                    labels,
                    ..Default::default()
                })
                .await;
        }
        drop(tx);
        let answer = drain.await.map_err(|e| ContentError::Join(Arc::new(e)))?;
        if let Some(problem) = failed {
            // Nothing was committed; drop what containerd holds for the ref, so a rerun
            // starts clean.
            let _ = self
                .content_client()
                .abort(self.req(AbortRequest { r#ref: reference }))
                .await;
            return Err(problem);
        }
        match answer {
            Ok(Some(last)) if last.action == WriteAction::Commit as i32 => {
                self.written.fetch_add(sent, Ordering::Relaxed);
                Ok(sent)
            }
            Ok(_) => Err(ContentError::NotConfirmed),
            Err(s) if s.code() == Code::AlreadyExists => Ok(0),
            Err(s) => {
                if s.code() == Code::FailedPrecondition || s.code() == Code::InvalidArgument {
                    let _ = self
                        .content_client()
                        .abort(self.req(AbortRequest { r#ref: reference }))
                        .await;
                }
                Err(Said::from(s).into())
            }
        }
    }

    /// Sets labels on content that exists (merging with what it has).
    async fn label(&self, digest: &str, labels: HashMap<String, String>) -> Result<(), Said> {
        let paths = labels.keys().map(|k| format!("labels.{k}")).collect();
        self.content_client()
            .update(self.req(UpdateContentRequest {
                info: Some(ContentInfo {
                    digest: digest.to_string(),
                    labels,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask { paths }),
            }))
            .await
            .map(|_| ())
            .map_err(Said::from)
    }

    async fn load_image(
        &self,
        plan: &ImagePlan,
        platform: Option<&Platform>,
    ) -> Result<ContainerdImage, ContainerdImageError> {
        let image = || plan.image.clone();
        // Every config and layer first: a failed one fails the image, before any record.
        let outcomes: Vec<(&Digest, ContentResult)> = stream::iter(&plan.blobs)
            .map(|b| async move { (&b.digest, self.ensure_blob(b).await) })
            .buffer_unordered(self.jobs)
            .collect()
            .await;
        let mut failed: Vec<_> = outcomes
            .into_iter()
            .filter_map(|(d, r)| r.err().map(|e| (d, e)))
            .collect();
        // The same blob is named whichever write finished first.
        failed.sort_by(|a, b| a.0.cmp(b.0));
        if let Some((digest, source)) = failed.into_iter().next() {
            return Err(ContainerdImageError::Blob {
                image: image(),
                digest: digest.clone(),
                source,
            });
        }
        // Then manifests, children first, each with the labels that keep its children.
        for (digest, media_type, bytes) in &plan.manifests {
            let declared = graph::descriptor(media_type, digest, bytes.len() as u64);
            let doc = Document::parse(&declared, bytes).map_err(|e| {
                ContainerdImageError::ManifestJson {
                    image: image(),
                    digest: digest.clone(),
                    error: e.problem,
                }
            })?;
            let labels = gc_labels(&doc);
            self.ensure_small(digest, bytes, labels)
                .await
                .map_err(|source| ContainerdImageError::Manifest {
                    image: image(),
                    digest: digest.clone(),
                    source,
                })?;
        }
        let (top_digest, top_media_type, top_bytes) =
            plan.manifests.last().expect("a plan has its top manifest");

        let unpacked = match platform {
            None => Unpacked::Skipped,
            Some(p) => self
                .unpack(top_digest, top_media_type, top_bytes, p)
                .await
                .map_err(|source| ContainerdImageError::Unpack {
                    image: image(),
                    source,
                })?,
        };

        let mut names: Vec<String> = plan
            .record
            .tags
            .iter()
            .map(|t| format!("{}:{t}", plan.repository))
            .collect();
        if names.is_empty() {
            names.push(format!("{}@{}", plan.repository, top_digest));
        }
        let target = Descriptor {
            media_type: top_media_type.clone(),
            digest: top_digest.to_string(),
            size: top_bytes.len() as i64,
            annotations: HashMap::new(),
        };
        let mut report = ContainerdImage {
            image: plan.image.clone(),
            names: names.clone(),
            digest: top_digest.to_string(),
            media_type: top_media_type.clone(),
            records_created: 0,
            records_updated: 0,
            records_unchanged: 0,
            unpacked,
            artifacts_not_loaded: plan.artifacts.len() as u64,
        };
        let record = |action, name: &String, s: Status| ContainerdImageError::Record {
            image: image(),
            action,
            name: name.clone(),
            source: s.into(),
        };
        let mut images =
            containerd_client::services::v1::images_client::ImagesClient::new(self.channel.clone());
        for name in &names {
            let image = Image {
                name: name.clone(),
                target: Some(target.clone()),
                ..Default::default()
            };
            match images
                .get(self.req(GetImageRequest { name: name.clone() }))
                .await
            {
                Ok(r) => {
                    let current = r.into_inner().image.and_then(|i| i.target);
                    if current.as_ref().map(|t| (&t.digest, &t.media_type))
                        == Some((&target.digest, &target.media_type))
                    {
                        report.records_unchanged += 1;
                        continue;
                    }
                    images
                        .update(self.req(UpdateImageRequest {
                            image: Some(image),
                            update_mask: Some(prost_types::FieldMask {
                                paths: vec!["target".into()],
                            }),
                            source_date_epoch: None,
                        }))
                        .await
                        .map_err(|s| record("updating", name, s))?;
                    report.records_updated += 1;
                }
                Err(s) if s.code() == Code::NotFound => {
                    images
                        .create(self.req(CreateImageRequest {
                            image: Some(image),
                            source_date_epoch: None,
                        }))
                        .await
                        .map_err(|s| record("creating", name, s))?;
                    report.records_created += 1;
                }
                Err(s) => return Err(record("looking up", name, s)),
            }
        }
        Ok(report)
    }

    /// The manifest of `platform` in the image (the image itself when it is one manifest
    /// whose config says that platform).
    fn pick_manifest(
        &self,
        top_digest: &Digest,
        top_media_type: &str,
        top: &Bytes,
        platform: &Platform,
    ) -> Result<Option<(String, ImageManifest)>, UnpackError> {
        let declared = graph::descriptor(top_media_type, top_digest, top.len() as u64);
        let doc = Document::parse(&declared, top).map_err(|e| UnpackError::TopJson(e.problem))?;
        let index = match doc.body {
            Body::Manifest(m) => {
                let (_, cfg) = self.config(&m)?;
                let found = Platform {
                    os: cfg.os().to_string(),
                    architecture: cfg.architecture().to_string(),
                    variant: cfg.variant().clone(),
                };
                if !platform.matches(&found) {
                    return Ok(None);
                }
                return Ok(Some((top_digest.to_string(), m)));
            }
            Body::Index(i) => i,
        };
        // Attestation manifests say `unknown/unknown`: they never match.
        // An entry of exactly the wanted platform wins over one that only matches it (no
        // wanted variant takes every variant).
        let entries: Vec<(&oci_spec::image::Descriptor, Platform)> = index
            .manifests()
            .iter()
            .filter_map(|c| c.platform().as_ref().map(|p| (c, Platform::from_oci(p))))
            .collect();
        let chosen = entries
            .iter()
            .find(|(_, p)| platform.same_as(p))
            .or_else(|| entries.iter().find(|(_, p)| platform.matches(p)));
        if let Some((child, _)) = chosen {
            {
                let digest = child.digest().to_string();
                let bytes = self.small_bytes(&digest)?;
                let d = Document::parse(child, &bytes).map_err(|e| UnpackError::ManifestJson {
                    digest: digest.clone(),
                    error: e.problem,
                })?;
                let Body::Manifest(m) = d.body else {
                    return Err(UnpackError::ManifestJson {
                        digest,
                        error: Problem::NestedIndex,
                    });
                };
                return Ok(Some((digest, m)));
            }
        }
        Ok(None)
    }

    /// The config of a manifest: its digest and what it says.
    fn config(&self, m: &ImageManifest) -> Result<(String, ImageConfiguration), UnpackError> {
        let digest = m.config().digest().to_string();
        let cfg = serde_json::from_slice(&self.small_bytes(&digest)?).map_err(|error| {
            UnpackError::ConfigJson {
                digest: digest.clone(),
                error,
            }
        })?;
        Ok((digest, cfg))
    }

    fn small_bytes(&self, digest: &str) -> Result<Bytes, UnpackError> {
        let d: Digest = digest
            .parse()
            .map_err(|_| UnpackError::NotDigest(digest.to_string()))?;
        match self.small.get(&d) {
            Some(Ok(b)) => Ok(b.clone()),
            Some(Err(problem)) => Err(UnpackError::Small {
                digest: d,
                problem: problem.clone(),
            }),
            None => Err(UnpackError::Unlisted(d)),
        }
    }

    /// Applies the platform's layers into the snapshotter, one chain ID at a time, skipping
    /// those that exist; labels the config so GC keeps the snapshot.
    async fn unpack(
        &self,
        top_digest: &Digest,
        top_media_type: &str,
        top: &Bytes,
        platform: &Platform,
    ) -> Result<Unpacked, UnpackError> {
        let Some((manifest_digest, doc)) =
            self.pick_manifest(top_digest, top_media_type, top, platform)?
        else {
            return Ok(Unpacked::NoPlatform);
        };
        let (config_digest, cfg) = self.config(&doc)?;
        let diff_ids = cfg.rootfs().diff_ids().clone();
        let layers = doc.layers();
        if diff_ids.len() != layers.len() {
            return Err(UnpackError::DiffIds {
                config: config_digest,
                diff_ids: diff_ids.len(),
                layers: layers.len(),
            });
        }
        let chain = chain_ids(&diff_ids);
        let mut snapshots =
            containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient::new(
                self.channel.clone(),
            );
        let mut diff =
            containerd_client::services::v1::diff_client::DiffClient::new(self.channel.clone());
        let (mut created, mut skipped) = (0u64, 0u64);
        // The topmost existing chain ID: everything below it exists too.
        let mut start = 0;
        for i in (0..chain.len()).rev() {
            match snapshots
                .stat(self.req(StatSnapshotRequest {
                    snapshotter: self.snapshotter.clone(),
                    key: chain[i].clone(),
                }))
                .await
            {
                Ok(_) => {
                    start = i + 1;
                    break;
                }
                Err(s) if s.code() == Code::NotFound => {}
                Err(s) => {
                    return Err(UnpackError::Snapshotter {
                        snapshotter: self.snapshotter.clone(),
                        hint: snapshotter_hint(&s),
                        said: s.into(),
                    })
                }
            }
        }
        skipped += start as u64;
        for i in start..chain.len() {
            let layer = &layers[i];
            let parent = if i == 0 {
                String::new()
            } else {
                chain[i - 1].clone()
            };
            let key = format!(
                "airlock-extract-{}-{}",
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0),
                chain[i]
            );
            let mut labels = HashMap::new();
            labels.insert("containerd.io/snapshot.ref".to_string(), chain[i].clone());
            let mounts = match snapshots
                .prepare(self.req(PrepareSnapshotRequest {
                    snapshotter: self.snapshotter.clone(),
                    key: key.clone(),
                    parent,
                    labels,
                }))
                .await
            {
                Ok(r) => r.into_inner().mounts,
                // The target (the `snapshot.ref` label) exists: another image of this run, or
                // another client, unpacked this layer meanwhile. containerd's own unpacker
                // takes that as done once the snapshot is there.
                Err(s)
                    if s.code() == Code::AlreadyExists
                        && snapshots
                            .stat(self.req(StatSnapshotRequest {
                                snapshotter: self.snapshotter.clone(),
                                key: chain[i].clone(),
                            }))
                            .await
                            .is_ok() =>
                {
                    skipped += 1;
                    continue;
                }
                Err(s) => {
                    return Err(UnpackError::Prepare {
                        layer: layer.digest().to_string(),
                        snapshotter: self.snapshotter.clone(),
                        hint: snapshotter_hint(&s),
                        said: s.into(),
                    })
                }
            };
            let applied = diff
                .apply(self.req(ApplyRequest {
                    diff: Some(Descriptor {
                        media_type: layer.media_type().to_string(),
                        digest: layer.digest().to_string(),
                        size: layer.size() as i64,
                        annotations: HashMap::new(),
                    }),
                    mounts,
                    payloads: HashMap::new(),
                    sync_fs: false,
                }))
                .await;
            let remove = |mut sn: containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient<Channel>, key: String| async move {
                let _ = sn
                    .remove(self.req(RemoveSnapshotRequest {
                        snapshotter: self.snapshotter.clone(),
                        key,
                    }))
                    .await;
            };
            let applied = match applied {
                Ok(r) => r.into_inner().applied,
                Err(s) => {
                    remove(snapshots.clone(), key).await;
                    return Err(UnpackError::Apply {
                        layer: layer.digest().to_string(),
                        said: s.into(),
                    });
                }
            };
            let got = applied.map(|d| d.digest).unwrap_or_default();
            if got != diff_ids[i] {
                remove(snapshots.clone(), key).await;
                return Err(UnpackError::DiffId {
                    layer: layer.digest().to_string(),
                    got,
                    config: config_digest.clone(),
                    diff_id: diff_ids[i].clone(),
                });
            }
            match snapshots
                .commit(self.req(CommitSnapshotRequest {
                    snapshotter: self.snapshotter.clone(),
                    name: chain[i].clone(),
                    key: key.clone(),
                    labels: HashMap::new(),
                }))
                .await
            {
                Ok(_) => created += 1,
                // Another image of this run (or another client) committed it meanwhile.
                Err(s) if s.code() == Code::AlreadyExists => {
                    remove(snapshots.clone(), key).await;
                    skipped += 1;
                }
                Err(s) => {
                    remove(snapshots.clone(), key).await;
                    return Err(UnpackError::Commit {
                        chain_id: chain[i].clone(),
                        said: s.into(),
                    });
                }
            }
        }
        let top_chain = chain.last().cloned().unwrap_or_default();
        if !top_chain.is_empty() {
            let mut labels = HashMap::new();
            labels.insert(
                format!("containerd.io/gc.ref.snapshot.{}", self.snapshotter),
                top_chain.clone(),
            );
            self.label(&config_digest, labels)
                .await
                .map_err(|said| UnpackError::Label {
                    config: config_digest.clone(),
                    said,
                })?;
        }
        Ok(Unpacked::Done {
            manifest: manifest_digest,
            chain_id: top_chain,
            snapshots_created: created,
            snapshots_skipped: skipped,
        })
    }
}

fn snapshotter_hint(s: &Status) -> &'static str {
    if s.message().contains("not loaded") || s.message().contains("snapshotter") {
        "\n  hint: pass --snapshotter NAME (one containerd has loaded: `ctr plugins ls`), or \
         --no-unpack"
    } else {
        ""
    }
}

/// The labels containerd's garbage collector follows from an index or manifest to its
/// children (as `ctr images import` and pulls write them).
fn gc_labels(doc: &Document) -> HashMap<String, String> {
    let children = doc.children();
    let of = |role: Role| {
        children
            .iter()
            .filter(move |(r, _)| *r == role)
            .map(|(_, d)| d.digest().to_string())
    };
    gc_labels_of(
        &of(Role::Document).collect::<Vec<_>>(),
        of(Role::Config).next(),
        &of(Role::Layer).collect::<Vec<_>>(),
    )
}

/// [`gc_labels`] of a document's child manifests, config and layers (digests).
fn gc_labels_of(
    manifests: &[String],
    config: Option<String>,
    layers: &[String],
) -> HashMap<String, String> {
    let mut labels = HashMap::new();
    for (i, m) in manifests.iter().enumerate() {
        labels.insert(format!("containerd.io/gc.ref.content.m.{i}"), m.clone());
    }
    if let Some(c) = config {
        labels.insert("containerd.io/gc.ref.content.config".into(), c);
    }
    for (i, l) in layers.iter().enumerate() {
        labels.insert(format!("containerd.io/gc.ref.content.l.{i}"), l.clone());
    }
    labels
}

/// OCI chain IDs: the first is the first diff_id; then sha256 of "PARENT DIFFID".
fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(parent) => Digest::of_bytes(format!("{parent} {d}").as_bytes()).to_string(),
        };
        out.push(next);
    }
    out
}

/// `YYYY-MM-DDTHH:MM:SSZ`, what containerd parses in `containerd.io/gc.expire`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t: ContainerdTarget = "containerd://".parse().unwrap();
        assert_eq!(t.socket, PathBuf::from(DEFAULT_SOCKET));
        assert_eq!(t.namespace, "k8s.io");
        let t: ContainerdTarget = "containerd:///tmp/c.sock?namespace=default"
            .parse()
            .unwrap();
        assert_eq!(t.socket, PathBuf::from("/tmp/c.sock"));
        assert_eq!(t.namespace, "default");
        assert_eq!(t.to_string(), "containerd:///tmp/c.sock?namespace=default");
        assert!("containerd://rel/path".parse::<ContainerdTarget>().is_err());
        assert!("containerd://?ns=x".parse::<ContainerdTarget>().is_err());
        assert!("containerd://?namespace=a/b"
            .parse::<ContainerdTarget>()
            .is_err());
        assert!("registry://x".parse::<ContainerdTarget>().is_err());
    }

    #[test]
    fn chain_ids_follow_the_oci_image_spec() {
        // The example of the OCI image spec (config.md, "Layer ChainID").
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        let ids = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(ids[0], a);
        assert_eq!(
            ids[1],
            Digest::of_bytes(format!("{a} {b}").as_bytes()).to_string()
        );
    }

    #[test]
    fn platforms() {
        let at = |os: &str, arch: &str, variant: Option<&str>| Platform {
            variant: variant.map(str::to_string),
            ..Platform::new(os, arch)
        };
        let p = Platform::parse("linux/arm64").unwrap();
        assert!(p.matches(&at("linux", "arm64", Some("v8"))));
        assert!(p.matches(&at("linux", "arm64", None)));
        assert!(!p.matches(&at("linux", "amd64", None)));
        let p = Platform::parse("linux/arm/v7").unwrap();
        assert!(p.matches(&at("linux", "arm", Some("v7"))));
        assert!(!p.matches(&at("linux", "arm", Some("v6"))));
        assert!(!Platform::parse("unknown/unknown")
            .unwrap()
            .matches(&at("linux", "amd64", None)));
        assert!(Platform::parse("linux").is_err());
    }

    #[test]
    fn expiry_is_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_798_416_000 + 3661)),
            "2026-12-28T01:01:01Z"
        );
    }

    #[test]
    fn gc_labels_name_every_child() {
        let l = gc_labels_of(
            &[],
            Some("sha256:c".into()),
            &["sha256:l0".into(), "sha256:l1".into()],
        );
        assert_eq!(l["containerd.io/gc.ref.content.config"], "sha256:c");
        assert_eq!(l["containerd.io/gc.ref.content.l.1"], "sha256:l1");
        assert_eq!(
            gc_labels_of(&["sha256:m".into()], None, &[])["containerd.io/gc.ref.content.m.0"],
            "sha256:m"
        );
    }

    #[test]
    fn gc_labels_of_a_document() {
        let layer = Digest::of_bytes(b"l");
        let config = Digest::of_bytes(b"c");
        let bytes = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "config": {"mediaType": airlock_layout::media::OCI_CONFIG, "digest": config.to_string(), "size": 1},
            "layers": [{"mediaType": airlock_layout::media::OCI_LAYER, "digest": layer.to_string(), "size": 1}],
        }))
        .unwrap();
        let declared = graph::descriptor(
            airlock_layout::media::OCI_MANIFEST,
            &Digest::of_bytes(&bytes),
            bytes.len() as u64,
        );
        let l = gc_labels(&Document::parse(&declared, &bytes).unwrap());
        assert_eq!(l["containerd.io/gc.ref.content.config"], config.to_string());
        assert_eq!(l["containerd.io/gc.ref.content.l.0"], layer.to_string());
        assert_eq!(l.len(), 2);
    }
}
