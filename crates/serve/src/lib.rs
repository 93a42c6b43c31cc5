//! `airlock serve`: bundles as a read-only OCI registry, straight from the compressed files.
//!
//! ```no_run
//! use std::sync::Arc;
//! use airlock_layout::{Purpose, Trust};
//! use airlock_serve::{serve, NoServeReport, ServeOptions};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let trust = Trust::from_flags(Some("signer.pub".as_ref()), false, Purpose::Serve)?;
//! let opts = ServeOptions::new(vec!["k8s.tar.zst".into()], "127.0.0.1:5000".parse()?, trust);
//! serve(opts, Arc::new(NoServeReport), async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```
//!
//! Order of work at start-up, so that nothing is served before it is trusted:
//! 1. every bundle's head (`airlock/manifest.json` and its signature), checked with the key;
//!    one bad bundle stops the start-up;
//! 2. every bundle's frame index, then its small blobs (indexes, manifests, configs) read
//!    through it and checked against the signed manifest; an image whose documents are bad is
//!    left out (and said so), the others are served;
//! 3. names: every canonical name mapped (`keep-host` or `drop-host`), collisions refused;
//! 4. the listener (loopback unless `allow_remote`), plain or TLS.
//!
//! Layers are read from the bundle through the frame index on request (only the frames a
//! request needs; raw zstd blocks without decoding) and streamed. The first request for a
//! layer starts one checking pass over it, which later requests join; a full read streams
//! meanwhile but its last chunk waits for the pass, a range waits for it before its headers.
//! A layer that does not match its digest is marked bad, logged and never served; the
//! connections streaming it are cut before the blob's end.
//!
//! The files a bundle carries are also served over plain HTTP(S) at `/files/NAME` (with
//! `Range`), through the same blobs and the same checks; `/files/` lists their names. Two
//! bundles with different files under one name are refused at start-up.

#![warn(missing_docs)]

mod blob;
mod frames;
mod http;
mod stall;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use airlock_layout::{Digest, Purpose, Trust};
use airlock_load::offline::{open_all, plan, OpenBundle, PlannedBundle, PlannedImage};
use airlock_load::plan::{ImagePlan, SmallBlobError, SmallBlobs};
use airlock_load::source::BundleSource;
use airlock_load::ImageError;
use bytes::Bytes;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use airlock_load::names::{NameMapper, NameRule};
use airlock_load::Error;

pub use blob::BlobState;
use blob::{Blob, Reading};

/// Layers checked (hashed in full) at once.
const CHECKERS: usize = 2;

/// How long in-flight responses may take to finish after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(10);

/// What `airlock serve` needs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The bundle files, in order: for a tag in several bundles, the last one wins.
    pub bundles: Vec<PathBuf>,
    /// Who vouches for the bundles (every blob is checked against its manifest either way).
    pub trust: Trust,
    /// Where to listen.
    pub listen: SocketAddr,
    /// Listen on an address other than loopback.
    pub allow_remote: bool,
    /// Certificate chain and private key (PEM) for HTTPS; plain HTTP without.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// `KeepHost` (`HOST:PORT/registry.k8s.io/pause`) or `DropHost` (`HOST:PORT/pause`).
    pub rule: NameRule,
    /// Frames read from the bundles at once for connections; more wait (a slot is held
    /// while a frame is read, never while a client drains it).
    pub readers: usize,
    /// A connection whose client accepts no bytes for this long is closed.
    pub write_timeout: Duration,
    /// How long a request's head (and a TLS handshake) may take to arrive.
    pub header_timeout: Duration,
}

impl ServeOptions {
    /// Defaults for everything but the bundles, the address and the trust.
    pub fn new(bundles: Vec<PathBuf>, listen: SocketAddr, trust: Trust) -> ServeOptions {
        ServeOptions {
            bundles,
            trust,
            listen,
            allow_remote: false,
            tls: None,
            rule: NameRule::KeepHost,
            readers: 4,
            write_timeout: Duration::from_secs(60),
            header_timeout: Duration::from_secs(30),
        }
    }
}

/// Why `airlock serve` did not start (or stopped).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A bundle could not be opened, is not signed or its signature did not verify (said by
    /// [`airlock_layout::TrustError`] in serve's words), its index is unreadable.
    #[error(transparent)]
    Bundle(#[from] Error),
    /// Two canonical names map to one repository.
    #[error("names: {0}")]
    Names(#[from] airlock_load::names::NameError),
    /// `--names flat` and rewrites would hide the origin from containerd's `ns` parameter.
    #[error("`--names {0}` is not offered by serve\n  hint: use --names keep-host or drop-host")]
    Rule(NameRule),
    /// A non-loopback address without `allow_remote`.
    #[error(
        "`{addr}` is not a loopback address; serve binds to loopback unless told otherwise\n  \
         hint: pass --allow-remote to serve other hosts (consider --tls-cert and --tls-key)"
    )]
    NotLoopback {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The address could not be bound.
    #[error("cannot listen on `{addr}`")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The certificate or key could not be used.
    #[error("cannot use `{}` for TLS: {problem}", path.display())]
    Tls {
        /// The certificate or key file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// Two bundles carry different files under one name.
    #[error(
        "file `{name}` is in two bundles with different contents: `{}` and `{}`; nothing is \
         served\n  hint: serve them from separate `airlock serve` processes",
        first.display(),
        second.display()
    )]
    FileCollision {
        /// The file's name (`/files/NAME`).
        name: String,
        /// The bundle that carries it first.
        first: PathBuf,
        /// The bundle that carries it too, with other bytes.
        second: PathBuf,
    },
    /// A blocking task panicked.
    #[error("internal task failed")]
    Join(#[from] tokio::task::JoinError),
}

/// One request, as the access log shows it.
#[derive(Debug, Clone)]
pub struct AccessLog {
    /// The client.
    pub peer: SocketAddr,
    /// `GET`, `HEAD`, …
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The status sent.
    pub status: u16,
    /// Body bytes sent.
    pub bytes: u64,
    /// From the request to the end of the response.
    pub millis: u64,
    /// The response was cut before its end (the client left, or a blob failed its digest).
    pub aborted: bool,
}

/// Events of a running server, for the binary to render. Every method has an empty default.
pub trait ServeReporter: Send + Sync {
    /// Something the operator should know.
    fn warn(&self, _message: &str) {}
    /// An image is served under `reference` (`HOST:PORT/` left out).
    fn image(&self, _reference: &str, _digest: &str) {}
    /// A file is served at `/files/NAME`.
    fn file(&self, _name: &str, _digest: &str) {}
    /// Listening.
    fn listening(&self, _addr: SocketAddr, _tls: bool, _images: usize, _repositories: usize) {}
    /// One request was answered.
    fn access(&self, _line: &AccessLog) {}
    /// A blob failed its digest and will not be served.
    fn blob_refused(&self, _digest: &str, _bundle: &Path, _reason: &str) {}
    /// The server stopped accepting and is draining.
    fn stopping(&self) {}
}

/// A reporter that says nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoServeReport;
impl ServeReporter for NoServeReport {}

/// A manifest or index, verified at start-up, kept in memory.
#[derive(Debug)]
struct Manifest {
    media_type: String,
    bytes: Bytes,
}

/// One repository as served.
#[derive(Debug, Default)]
struct Repo {
    tags: BTreeMap<String, Digest>,
    manifests: HashMap<Digest, Arc<Manifest>>,
    blobs: BTreeSet<Digest>,
    /// The referrers of each subject (manifests with `subject`), as referrers-index entries,
    /// in the bundles' order.
    referrers: HashMap<Digest, Vec<serde_json::Value>>,
}

/// Everything served, built once at start-up.
pub(crate) struct Catalog {
    repos: BTreeMap<String, Repo>,
    blobs: HashMap<Digest, Arc<Blob>>,
    /// The files of the bundles by name (`/files/NAME`), each its layer's blob.
    files: BTreeMap<String, Arc<Blob>>,
    mapper: NameMapper,
}

impl Catalog {
    /// The repository a request names: with containerd's `ns` (the upstream registry), the
    /// canonical name `ns/name` mapped by the rule; else the path as is.
    fn repo(&self, name: &str, ns: Option<&str>) -> Option<&Repo> {
        if let Some(ns) = ns.filter(|n| !n.is_empty()) {
            let mapped = self.mapper.repository(&format!("{ns}/{name}"));
            if let Some(r) = self.repos.get(&mapped) {
                return Some(r);
            }
        }
        self.repos.get(name)
    }
}

/// Where each blob some served file carries is read from: the first file that carries it,
/// and its entry's size.
type Carriers = HashMap<Digest, (BundleSource, u64)>;

/// The served files as one: each blob a delta takes from its bases is read from whichever
/// served file carries it, and each document it takes so (checked there against the same
/// digest) is handed to the delta for planning.
fn union(mut opened: Vec<OpenBundle>) -> (Vec<OpenBundle>, Carriers) {
    let mut carriers: Carriers = HashMap::new();
    let mut documents: HashMap<Digest, Bytes> = HashMap::new();
    for o in &opened {
        let source = o.source();
        for b in o.manifest.carried_blobs() {
            if let Some(e) = o.index.entry(&b.digest.blob_path()) {
                carriers
                    .entry(b.digest.clone())
                    .or_insert_with(|| (source.clone(), e.size));
            }
            if let Some(Ok(bytes)) = o.small.get(&b.digest) {
                documents.entry(b.digest.clone()).or_insert(bytes.clone());
            }
        }
    }
    for o in opened.iter_mut().filter(|o| o.manifest.is_delta()) {
        let from = o.manifest.from_bases();
        for d in from.keys() {
            if let Some(bytes) = documents.get(*d) {
                o.small.insert((*d).clone(), Ok(bytes.clone()));
            }
        }
    }
    (opened, carriers)
}

/// Builds the catalog from the planned bundles, in order (a later tag wins).
fn catalog(
    reading: &Arc<Reading>,
    planned: Vec<PlannedBundle>,
    carriers: &Carriers,
    mapper: NameMapper,
    reporter: &dyn ServeReporter,
) -> Result<(Catalog, usize), ServeError> {
    let mut repos: BTreeMap<String, Repo> = BTreeMap::new();
    let mut blobs: HashMap<Digest, Arc<Blob>> = HashMap::new();
    let mut files: BTreeMap<String, (Arc<Blob>, PathBuf)> = BTreeMap::new();
    let mut images = 0;
    for PlannedBundle {
        bundle: o,
        images: planned_images,
    } in planned
    {
        let source = o.source();
        // Entry sizes by path, looked up once per blob (the index lists entries, not a map).
        let sizes: HashMap<&str, u64> = source
            .index
            .entries
            .iter()
            .map(|e| (e.path.as_str(), e.size))
            .collect();
        // A delta's blob from a base: from the served file that carries it.
        let from_bases = o.manifest.from_bases();
        let entry = |d: &Digest| -> Option<(BundleSource, u64)> {
            match from_bases.get(d) {
                Some(_) => carriers.get(d).cloned(),
                None => sizes
                    .get(d.blob_path().as_str())
                    .map(|&n| (source.clone(), n)),
            }
        };
        let base_of = |d: &Digest| {
            from_bases
                .get(d)
                .map(|b| airlock_load::delta::describe_base(b))
        };
        for PlannedImage {
            record,
            repository,
            plan,
        } in planned_images
        {
            let plan = match plan
                .map_err(NotServed::Plan)
                .and_then(|p| servable(&p, &entry, &base_of, &o.small).map(|()| p))
            {
                Ok(p) => p,
                Err(e) => {
                    reporter.warn(&format!(
                        "not serving it: {e} (bundle `{}`)",
                        o.path.display()
                    ));
                    continue;
                }
            };
            images += 1;
            let repo = repos.entry(repository.clone()).or_default();
            for (digest, media_type, bytes) in &plan.manifests {
                repo.manifests.insert(
                    digest.clone(),
                    Arc::new(Manifest {
                        media_type: media_type.clone(),
                        bytes: bytes.clone(),
                    }),
                );
            }
            for tag in &record.tags {
                if let Some(old) = repo.tags.insert(tag.clone(), record.digest.clone()) {
                    if old != record.digest {
                        reporter.warn(&format!(
                            "`{repository}:{tag}` is in several bundles: serving `{}` from `{}`, \
                             not `{old}`",
                            record.digest,
                            o.path.display()
                        ));
                    }
                }
                reporter.image(&format!("{repository}:{tag}"), &record.digest.to_string());
            }
            if record.tags.is_empty() {
                reporter.image(
                    &format!("{repository}@{}", record.digest),
                    &record.digest.to_string(),
                );
            }
            for a in &plan.artifacts {
                for (digest, media_type, bytes) in &a.manifests {
                    repo.manifests.insert(
                        digest.clone(),
                        Arc::new(Manifest {
                            media_type: media_type.clone(),
                            bytes: bytes.clone(),
                        }),
                    );
                }
                match &a.record.tag {
                    // A cosign tag is a tag like the image's.
                    Some(tag) => {
                        repo.tags.insert(tag.clone(), a.record.digest.clone());
                    }
                    None => {
                        let entry =
                            serde_json::to_value(&a.descriptor).expect("a descriptor serialises");
                        let listed = repo.referrers.entry(a.record.subject.clone()).or_default();
                        if !listed.iter().any(|d| d["digest"] == entry["digest"]) {
                            listed.push(entry);
                        }
                    }
                }
            }
            let artifact_blobs = plan.artifacts.iter().flat_map(|a| &a.blobs);
            for b in plan.blobs.iter().chain(artifact_blobs) {
                repo.blobs.insert(b.digest.clone());
                let small = o
                    .small
                    .get(&b.digest)
                    .and_then(|r| r.as_ref().ok())
                    .cloned();
                let (from, size) = match entry(&b.digest) {
                    Some((s, n)) => (s, Some(n)),
                    None => (source.clone(), None),
                };
                blobs.insert(
                    b.digest.clone(),
                    Arc::new(Blob::new(b.clone(), from, reading.clone(), small, size)),
                );
            }
            if let Some(file) = record.file() {
                let Some(blob) = plan
                    .blobs
                    .iter()
                    .find(|b| b.digest == file.digest && b.size == file.size)
                    .and_then(|b| blobs.get(&b.digest))
                else {
                    reporter.warn(&format!(
                        "not serving file `{}` at /files/: its manifest does not name its \
                         digest `{}` (bundle `{}`)",
                        file.name,
                        file.digest,
                        o.path.display()
                    ));
                    continue;
                };
                if let Some((old, first)) = files.get(&file.name) {
                    if old.record.digest != file.digest {
                        return Err(ServeError::FileCollision {
                            name: file.name.clone(),
                            first: first.clone(),
                            second: o.path.clone(),
                        });
                    }
                }
                reporter.file(&file.name, &file.digest.to_string());
                files.insert(file.name.clone(), (blob.clone(), o.path.clone()));
            }
        }
    }
    Ok((
        Catalog {
            repos,
            blobs,
            files: files.into_iter().map(|(n, (b, _))| (n, b)).collect(),
            mapper,
        },
        images,
    ))
}

/// Why an image of a bundle is left out of the catalog (the others are served).
#[derive(Debug, thiserror::Error)]
enum NotServed {
    /// It cannot be planned (a bad manifest, index or config).
    #[error("{}", airlock_load::render_error(.0))]
    Plan(ImageError),
    /// One of its blobs cannot be served.
    #[error("image `{image}`: {what} `{digest}` cannot be served: {problem}")]
    Blob {
        /// `name:tag`.
        image: String,
        /// "config" or "layer".
        what: &'static str,
        /// The blob.
        digest: Digest,
        /// What is wrong with it.
        problem: Unservable,
    },
}

/// What is wrong with a blob that cannot be served.
#[derive(Debug, thiserror::Error)]
enum Unservable {
    /// A config that could not be read or checked.
    #[error(transparent)]
    Small(#[from] SmallBlobError),
    /// The frame index has no entry for it.
    #[error("it is not in the bundle's frame index")]
    NotIndexed,
    /// A delta's blob that its base supplies, and no served file carries.
    #[error(
        "it comes from the delta's base {base}, which is not served\n  hint: serve the base \
         too: `airlock serve BASE DELTA`"
    )]
    InBase {
        /// The base, named.
        base: String,
    },
    /// Its entry is not as long as the signed manifest says.
    #[error("the bundle's entry holds {entry} bytes, the signed manifest says {signed}")]
    Size {
        /// Bytes in the entry.
        entry: u64,
        /// Bytes the signed manifest lists.
        signed: u64,
    },
}

/// Whether every blob of a planned image can be served as the signed manifest lists it:
/// configs (every blob of a JSON media type) read and hashed at start-up, and every blob's
/// entry in the bundle exactly as long as the signed size (bytes beyond an entry are never
/// served, and a wrong size never reaches a `Content-Length`).
fn servable(
    plan: &ImagePlan,
    entry: &dyn Fn(&Digest) -> Option<(BundleSource, u64)>,
    base_of: &dyn Fn(&Digest) -> Option<String>,
    small: &SmallBlobs,
) -> Result<(), NotServed> {
    let artifact_blobs = plan.artifacts.iter().flat_map(|a| &a.blobs);
    for b in plan.blobs.iter().chain(artifact_blobs) {
        let what = if airlock_layout::is_small_media_type(&b.media_type) {
            "config"
        } else {
            "layer"
        };
        let problem = match (small.get(&b.digest), entry(&b.digest).map(|(_, n)| n)) {
            // Read through the index and checked already.
            (Some(Ok(_)), _) => continue,
            (Some(Err(problem)), _) => Unservable::Small(problem.clone()),
            (_, None) => match base_of(&b.digest) {
                Some(base) => Unservable::InBase { base },
                None => Unservable::NotIndexed,
            },
            (_, Some(n)) if n != b.size => Unservable::Size {
                entry: n,
                signed: b.size,
            },
            _ => continue,
        };
        return Err(NotServed::Blob {
            image: plan.image.clone(),
            what,
            digest: b.digest.clone(),
            problem,
        });
    }
    Ok(())
}

/// Serves the bundles until `shutdown` completes, then lets in-flight responses finish (up to
/// ten seconds). See the module documentation for what is checked when.
pub async fn serve(
    opts: ServeOptions,
    reporter: Arc<dyn ServeReporter>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    if !matches!(opts.rule, NameRule::KeepHost | NameRule::DropHost) {
        return Err(ServeError::Rule(opts.rule));
    }
    if !opts.listen.ip().is_loopback() && !opts.allow_remote {
        return Err(ServeError::NotLoopback { addr: opts.listen });
    }
    let opened = open_all(opts.bundles.clone(), &opts.trust, Purpose::Serve).await?;
    if let Some(warning) = opts.trust.warning(Purpose::Serve) {
        reporter.warn(warning);
    }
    let mapper = NameMapper {
        prefix: String::new(),
        rule: opts.rule,
        rewrites: Vec::new(),
    };
    let (opened, carriers) = union(opened);
    let planned = plan(opened, &mapper)?;
    let readers = opts.readers.max(1);
    let reading = Reading::new(readers, CHECKERS);
    let (catalog, images) = catalog(&reading, planned, &carriers, mapper, reporter.as_ref())?;
    let tls = match &opts.tls {
        Some((cert, key)) => Some(http::tls_acceptor(cert, key)?),
        None => None,
    };
    let listener = TcpListener::bind(opts.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: opts.listen,
            source,
        })?;
    let local = listener.local_addr().unwrap_or(opts.listen);
    reporter.listening(local, tls.is_some(), images, catalog.repos.len());
    let state = Arc::new(http::State {
        catalog,
        reporter: reporter.clone(),
        header_timeout: opts.header_timeout,
    });
    let (write_timeout, handshake_timeout) = (opts.write_timeout, opts.header_timeout);

    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors and the like: wait a little, go on.
                        reporter.warn(&format!("accepting a connection failed: {e}"));
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                // Below TLS too: a client that stops reading is cut whatever the listener.
                let tcp = stall::WriteDeadline::new(tcp, write_timeout);
                let watcher = graceful.watcher();
                let state = state.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => {
                            let _ = watcher.watch(http::connection(TokioIo::new(tcp), state, peer)).await;
                        }
                        Some(acceptor) => {
                            match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                                Ok(Ok(stream)) => {
                                    let _ = watcher
                                        .watch(http::connection(TokioIo::new(stream), state, peer))
                                        .await;
                                }
                                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                            }
                        }
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    reporter.stopping();
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        reporter.warn("responses still running after 10 s were cut");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_load::offline::OpenBundle;
    use serde_json::json;

    /// A bundle (in memory only) holding `name:tag` as an image whose config is `config`.
    fn opened(file: &str, name: &str, tag: &str, config: &[u8]) -> (OpenBundle, Digest) {
        let config_digest = Digest::of_bytes(config);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest.to_string(),
                "size": config.len(),
            },
            "layers": [],
        })
        .to_string();
        let digest = Digest::of_bytes(manifest.as_bytes());
        let record = |d: &Digest, size: usize, mt: &str| json!({"digest": d.to_string(), "size": size, "mediaType": mt});
        let doc = json!({
            "formatVersion": 1,
            "created": "2026-11-27T10:00:00Z",
            "airlockVersion": "0.1.0",
            "spec": {"name": "t", "sha256": "00"},
            "images": [{
                "name": name,
                "reference": format!("{name}:{tag}"),
                "tags": [tag],
                "digest": digest.to_string(),
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "size": manifest.len(),
                "source": name,
                "platforms": ["linux/amd64"],
            }],
            "blobs": [
                record(&digest, manifest.len(), "application/vnd.oci.image.manifest.v1+json"),
                record(&config_digest, config.len(), "application/vnd.oci.image.config.v1+json"),
            ],
            "totals": {"images": 1, "blobs": 2, "bytes": 0},
        });
        let small = HashMap::from([
            (digest.clone(), Ok(Bytes::from(manifest))),
            (config_digest, Ok(Bytes::copy_from_slice(config))),
        ]);
        let o = OpenBundle {
            path: PathBuf::from(file),
            identity: Digest::of_bytes(file.as_bytes()),
            manifest: serde_json::from_value(doc).unwrap(),
            signature: Default::default(),
            index: Default::default(),
            small,
        };
        (o, digest)
    }

    #[derive(Default)]
    struct Warnings(std::sync::Mutex<Vec<String>>);
    impl ServeReporter for Warnings {
        fn warn(&self, message: &str) {
            self.0.lock().unwrap().push(message.to_string());
        }
    }

    #[test]
    fn the_last_bundle_wins_a_tag_and_says_so() {
        let (a, old) = opened("base.tar.zst", "registry.k8s.io/pause", "3.9", b"{\"a\":1}");
        let (b, new) = opened(
            "update.tar.zst",
            "registry.k8s.io/pause",
            "3.9",
            b"{\"b\":2}",
        );
        let (c, other) = opened("update.tar.zst", "quay.io/x/y", "1", b"{}");
        let warnings = Warnings::default();
        let mapper = NameMapper::default();
        let planned = plan(vec![a, b, c], &mapper).unwrap();
        let (cat, images) = catalog(
            &Reading::new(1, 1),
            planned,
            &Carriers::new(),
            mapper,
            &warnings,
        )
        .unwrap();
        assert_eq!(images, 3);
        let repo = cat.repo("registry.k8s.io/pause", None).unwrap();
        assert_eq!(repo.tags["3.9"], new);
        // The older digest stays reachable by digest.
        assert!(repo.manifests.contains_key(&old));
        let w = warnings.0.lock().unwrap().join("\n");
        assert!(
            w.contains("several bundles") && w.contains(&old.to_string()),
            "{w}"
        );
        // containerd's `ns` form, and names under drop-host.
        assert!(cat.repo("pause", Some("registry.k8s.io")).is_some());
        assert!(cat.repo("x/y", Some("quay.io")).unwrap().tags["1"] == other);
        let drop = NameMapper {
            rule: NameRule::DropHost,
            ..NameMapper::default()
        };
        let (a, _) = opened("a", "a.io/x", "1", b"{}");
        let (b, _) = opened("b", "b.io/x", "1", b"{}");
        let err = plan(vec![a, b], &drop).err().unwrap();
        assert!(err.to_string().contains("would both land at `x`"), "{err}");
    }

    #[test]
    fn two_bundles_with_different_files_under_one_name_are_refused() {
        use airlock_layout::testing::content::{content_bundle, content_bundle_with};
        use airlock_layout::SigningKey;
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate();
        let a = content_bundle(&dir.path().join("a"), &key);
        let same = content_bundle(&dir.path().join("same"), &key);
        let b = content_bundle_with(&dir.path().join("b"), &key, b"other bytes\n");
        let trust = Trust::Key(key.verifying_key());
        let open = |p: &Path| airlock_load::offline::open(p, &trust, Purpose::Serve).unwrap();
        let mapper = NameMapper::default();
        // The same file in two bundles is served once.
        let planned = plan(vec![open(&a.path), open(&same.path)], &mapper).unwrap();
        let (cat, _) = catalog(
            &Reading::new(1, 1),
            planned,
            &Carriers::new(),
            mapper.clone(),
            &NoServeReport,
        )
        .unwrap();
        assert_eq!(
            cat.files.keys().collect::<Vec<_>>(),
            ["hello.txt", "kubernetes/v1.35.2/linux/amd64/kubeadm"]
        );
        // Other bytes under the name: refused, naming both bundles.
        let planned = plan(vec![open(&a.path), open(&b.path)], &mapper).unwrap();
        let e = catalog(
            &Reading::new(1, 1),
            planned,
            &Carriers::new(),
            mapper,
            &NoServeReport,
        )
        .err()
        .unwrap();
        let text = e.to_string();
        assert!(matches!(e, ServeError::FileCollision { .. }), "{text}");
        assert!(
            text.contains("`hello.txt`")
                && text.contains(&a.path.display().to_string())
                && text.contains(&b.path.display().to_string()),
            "{text}"
        );
    }
}
