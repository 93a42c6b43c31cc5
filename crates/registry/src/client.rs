//! The client: hosts and TLS, the auth flow, retries, and the pull operations (the push
//! operations are in `push`).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, CONTENT_RANGE, CONTENT_TYPE, RANGE, WWW_AUTHENTICATE,
};
use reqwest::{Method, StatusCode};
use sha2::{Digest as _, Sha256};
use tokio::sync::OnceCell;
use url::Url;

use crate::auth::{parse_challenges, scope_key, Challenge, Scope, TokenResponse};
use crate::credentials::{AuthFiles, Credentials};
use crate::envelope::{ErrorCode, ErrorEnvelope};
use crate::error::{Error, ReferenceError, ReferenceProblem};
use crate::reference::{self, normalize_registry, DOCKER_HUB, DOCKER_HUB_API_HOST};
use crate::retry;
use crate::token_cache::{Token, TokenCache};

/// The manifest media types a client works with. The client knows no media type itself:
/// its caller, which owns the content model, says which ones to ask for and assume.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestTypes {
    /// Sent as `Accept` on manifest requests, in order of preference (none: no `Accept`).
    pub accept: Vec<String>,
    /// Assumed for a manifest without a telling `Content-Type` or `mediaType` that lists
    /// `manifests`.
    pub index: Option<String>,
    /// Assumed for one such manifest that has a `config`.
    pub manifest: Option<String>,
    /// Manifests announced with the digest of a payload that is not their bytes (a signed
    /// Docker schema 1 manifest is announced without its signatures): their
    /// `Docker-Content-Digest` is not compared.
    pub signed_payload: Vec<String>,
}

/// The largest manifest accepted (the limit distribution and containerd use).
pub const MANIFEST_MAX_SIZE: u64 = 4 * 1024 * 1024;

/// The largest token response and error body read.
const SMALL_BODY_MAX: u64 = 1024 * 1024;

/// What `check` is told for token service responses (a 404 there is no "not found").
const TOKEN_SERVICE: &str = "token service";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A read that stalls this long fails (and a blob download resumes).
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// How to talk to one registry host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostConfig {
    /// Use `http://` instead of `https://`.
    pub plain_http: bool,
    /// A PEM file with one or more CA certificates trusted for this host, in addition to
    /// the system's.
    pub ca_file: Option<PathBuf>,
    /// Credentials for this host; they win over every other source.
    pub credentials: Option<Credentials>,
}

/// Settings of a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Per-host settings, keyed by `host[:port]` (Docker Hub as `docker.io`).
    pub hosts: HashMap<String, HostConfig>,
    /// Credentials for every host that has none of its own.
    pub default_credentials: Option<Credentials>,
    /// Look up credentials in docker/podman auth files and credential helpers.
    pub docker_config: bool,
    /// Retries after the first attempt (connection errors, 5xx, 429).
    pub retries: u32,
    /// First backoff delay; doubled per retry, with jitter, capped at 10 s.
    pub retry_base_delay: Duration,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// Blobs up to this size are pushed with one `PUT`; larger ones in chunks.
    pub monolithic_max: u64,
    /// The size of the `PATCH` chunks of a chunked upload.
    pub chunk_size: u64,
    /// The chunk size used after a registry (or a proxy in front of it) answered 413 to a
    /// request body: it must fit under the proxy's body limit (nginx `client_max_body_size 1m`
    /// is common in front of Harbor).
    pub fallback_chunk_size: u64,
    /// The manifest media types asked for and recognised.
    pub manifest_types: ManifestTypes,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            hosts: HashMap::new(),
            default_credentials: None,
            docker_config: true,
            retries: 4,
            retry_base_delay: Duration::from_millis(250),
            user_agent: concat!("airlock/", env!("CARGO_PKG_VERSION")).to_owned(),
            monolithic_max: 32 * 1024 * 1024,
            chunk_size: 16 * 1024 * 1024,
            fallback_chunk_size: 512 * 1024,
            manifest_types: ManifestTypes::default(),
        }
    }
}

/// A manifest or index exactly as the registry sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The raw bytes (their digest is the manifest's identity).
    pub bytes: Bytes,
    /// The media type, from `Content-Type` or the `mediaType` field.
    pub media_type: String,
    /// `sha256:<hex>` of `bytes`.
    pub digest: String,
}

/// What a `HEAD` of a manifest answered: enough to tell whether it changed, without
/// fetching it (Docker Hub does not count a `HEAD` as a pull).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHead {
    /// `sha256:<hex>` (`Docker-Content-Digest`).
    pub digest: String,
    /// `Content-Type`, when the registry sent one.
    pub media_type: Option<String>,
    /// `Content-Length`, when the registry sent one.
    pub size: Option<u64>,
}

/// The referrers of a manifest, as the referrers API answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrers {
    /// The OCI image index listing them (pages joined into one), as sent when there was
    /// one page.
    pub bytes: Bytes,
    /// The registry applied the `artifactType` filter asked for (its `OCI-Filters-Applied`
    /// header names it); when false the index may list other artifact types too.
    pub filters_applied: bool,
}

/// The most pages a paginated listing is followed for.
const PAGES_MAX: usize = 10_000;

/// A stream of body chunks; a failure mid-way is an `Err` item.
pub type BlobStream = Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>>;

/// A blob download in progress.
///
/// The stream is not verified: the caller hashes what it writes (it may be resuming).
pub struct BlobResponse {
    /// Where in the blob the stream starts: the requested offset if the server honoured the
    /// range, 0 if it sent the whole blob.
    pub offset: u64,
    /// The size of the whole blob, if the server said.
    pub total_size: Option<u64>,
    /// The body.
    pub stream: BlobStream,
}

impl fmt::Debug for BlobResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobResponse")
            .field("offset", &self.offset)
            .field("total_size", &self.total_size)
            .finish_non_exhaustive()
    }
}

/// A client for the OCI distribution API. Cheap to clone; clones share connections, tokens
/// and credentials.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    hosts: HashMap<String, Host>,
    default_http: reqwest::Client,
    default_credentials: Option<Credentials>,
    auth_files: Option<AuthFiles>,
    /// Credentials found in auth files, per registry (looked up once, when first needed).
    found_credentials: Mutex<HashMap<String, Arc<OnceCell<Option<Credentials>>>>>,
    /// The last challenge per registry, to authenticate the next request up front.
    challenges: Mutex<HashMap<String, Challenge>>,
    tokens: TokenCache,
    pub(crate) retries: u32,
    pub(crate) retry_base_delay: Duration,
    pub(crate) push: crate::push::PushSettings,
    manifest_types: ManifestTypes,
    /// `manifest_types.accept` as a header value (none when empty or not a header value).
    accept: Option<HeaderValue>,
    /// The last request budget each registry announced (`RateLimit-*` headers).
    rate_limits: Mutex<HashMap<String, crate::RateLimit>>,
}

struct Host {
    plain_http: bool,
    http: reqwest::Client,
    /// The CA file `http` trusts besides the system's roots, named in TLS errors.
    ca_file: Option<PathBuf>,
    credentials: Option<Credentials>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut hosts: Vec<&String> = self.inner.hosts.keys().collect();
        hosts.sort();
        f.debug_struct("Client")
            .field("hosts", &hosts)
            .field("retries", &self.inner.retries)
            .finish_non_exhaustive()
    }
}

/// How one request is authenticated.
pub(crate) enum Auth {
    None,
    Basic(Credentials),
    Bearer {
        token: Token,
        /// Fetched for this request (a refusal is final) rather than taken from the cache.
        fresh: bool,
        /// The token service was given credentials.
        with_credentials: bool,
    },
}

impl Auth {
    fn sent_credentials(&self) -> bool {
        match self {
            Auth::None => false,
            Auth::Basic(_) => true,
            Auth::Bearer {
                with_credentials, ..
            } => *with_credentials,
        }
    }
}

/// One logical request, rebuilt for every attempt.
pub(crate) struct Call<'a> {
    pub(crate) method: Method,
    pub(crate) registry: &'a str,
    pub(crate) repository: &'a str,
    pub(crate) scopes: Vec<Scope>,
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    /// A small body (a manifest), sent again with every attempt. Streamed bodies go through
    /// `send_streaming` instead.
    pub(crate) body: Option<Bytes>,
}

impl Client {
    /// A client with `opts`. CA files are read now.
    pub fn new(opts: ClientOptions) -> Result<Client, Error> {
        let default_http = http_client(&opts.user_agent, None)?;
        let mut by_ca: HashMap<PathBuf, reqwest::Client> = HashMap::new();
        let mut hosts = HashMap::new();
        for (key, config) in opts.hosts {
            let http = match &config.ca_file {
                None => default_http.clone(),
                Some(path) => match by_ca.get(path) {
                    Some(http) => http.clone(),
                    None => {
                        let http = http_client(&opts.user_agent, Some(path))?;
                        by_ca.insert(path.clone(), http.clone());
                        http
                    }
                },
            };
            hosts.insert(
                normalize_registry(&key).to_owned(),
                Host {
                    plain_http: config.plain_http,
                    http,
                    ca_file: config.ca_file,
                    credentials: config.credentials,
                },
            );
        }
        Ok(Client {
            inner: Arc::new(Inner {
                hosts,
                default_http,
                default_credentials: opts.default_credentials,
                auth_files: opts.docker_config.then(AuthFiles::from_env),
                found_credentials: Mutex::default(),
                challenges: Mutex::default(),
                tokens: TokenCache::default(),
                retries: opts.retries,
                retry_base_delay: opts.retry_base_delay,
                push: crate::push::PushSettings::new(
                    opts.monolithic_max,
                    opts.chunk_size,
                    opts.fallback_chunk_size,
                ),
                accept: Some(opts.manifest_types.accept.join(", "))
                    .filter(|a| !a.is_empty())
                    .and_then(|a| HeaderValue::from_str(&a).ok()),
                manifest_types: opts.manifest_types,
                rate_limits: Mutex::default(),
            }),
        })
    }

    /// The request budgets registries announced to this client so far (Docker Hub's
    /// `RateLimit-Limit` / `RateLimit-Remaining`), the latest per registry, sorted by registry.
    pub fn rate_limits(&self) -> Vec<(String, crate::RateLimit)> {
        let mut out: Vec<(String, crate::RateLimit)> = self
            .inner
            .rate_limits
            .lock()
            .expect("rate limits lock")
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// `HEAD /v2/<repository>/manifests/<reference>` with pull access: its digest, media
    /// type and size, or `None` on 404. Only a registry that sends no
    /// `Docker-Content-Digest` (none known) costs a `GET` to hash the manifest.
    pub async fn head_manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
    ) -> Result<Option<ManifestHead>, Error> {
        let registry = normalize_registry(registry);
        let call = self.manifest_call(
            Method::HEAD,
            registry,
            repository,
            reference,
            Scope::pull(repository),
        )?;
        let found = self
            .retrying(&call.url, || async {
                let resp = self.send(&call).await?;
                match self.check(resp, &call, "manifest", reference).await {
                    Ok(resp) => {
                        let h = resp.headers();
                        let text = |name| {
                            h.get(name)
                                .and_then(|v: &HeaderValue| v.to_str().ok())
                                .map(|v| v.trim().to_owned())
                                .filter(|v| !v.is_empty())
                        };
                        Ok(Some((
                            text("docker-content-digest"),
                            text("content-type"),
                            text("content-length").and_then(|v| v.parse().ok()),
                        )))
                    }
                    Err(e) if e.is_not_found() => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await?;
        match found {
            None => Ok(None),
            Some((Some(digest), media_type, size)) if digest.starts_with("sha256:") => {
                Ok(Some(ManifestHead {
                    digest,
                    media_type,
                    size,
                }))
            }
            Some(_) => {
                let m = self.get_manifest(registry, repository, reference).await?;
                Ok(Some(ManifestHead {
                    digest: m.digest,
                    media_type: Some(m.media_type),
                    size: Some(m.bytes.len() as u64),
                }))
            }
        }
    }

    /// Checks that `registry` (`host[:port]`) speaks the distribution API (`GET /v2/`),
    /// authenticating if it asks.
    pub async fn ping(&self, registry: &str) -> Result<(), Error> {
        let registry = normalize_registry(registry);
        let call = Call {
            method: Method::GET,
            registry,
            repository: "",
            scopes: Vec::new(),
            url: self.endpoint(registry)?,
            headers: HeaderMap::new(),
            body: None,
        };
        self.retrying(&call.url, || async {
            let resp = self.send(&call).await?;
            if resp.status() == StatusCode::NOT_FOUND {
                return Err(Error::Server {
                    url: call.url.to_string(),
                    status: 404,
                    code: None,
                    message: "there is no distribution API (`/v2/`) at this address".into(),
                    retry_after: None,
                });
            }
            self.check(resp, &call, "repository", "").await?;
            Ok(())
        })
        .await
    }

    /// Fetches a manifest or index by tag or digest, and verifies its digest.
    ///
    /// When `reference` is a digest the content must hash to it; a `Docker-Content-Digest`
    /// header must match the content too.
    pub async fn get_manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
    ) -> Result<Manifest, Error> {
        let registry = normalize_registry(registry);
        let call = self.manifest_call(
            Method::GET,
            registry,
            repository,
            reference,
            Scope::pull(repository),
        )?;
        let what = format!(
            "manifest `{}`",
            display_reference(registry, repository, reference)
        );
        self.retrying(&call.url, || async {
            let resp = self.send(&call).await?;
            let resp = self.check(resp, &call, "manifest", reference).await?;
            let header = |name: &str| {
                resp.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.trim().to_owned())
            };
            let content_type = header(CONTENT_TYPE.as_str());
            let announced = header("docker-content-digest").filter(|d| !d.is_empty());
            let bytes = read_capped(resp, MANIFEST_MAX_SIZE, &what, &call.url).await?;
            let digest = sha256_digest(&bytes);

            if reference.contains(':') && reference != digest {
                return Err(Error::DigestMismatch {
                    what: what.clone(),
                    expected: reference.to_owned(),
                    actual: digest,
                });
            }
            let types = &self.inner.manifest_types;
            let media_type =
                media_type(types, content_type.as_deref(), &bytes).ok_or_else(|| {
                    Error::Protocol {
                        url: call.url.to_string(),
                        message: "the manifest has neither a `Content-Type` nor a `mediaType`"
                            .into(),
                    }
                })?;
            if let Some(announced) = announced {
                // A signed schema 1 manifest is announced with the digest of its payload
                // without the signatures, which cannot match the bytes.
                if announced.starts_with("sha256:")
                    && announced != digest
                    && !types.signed_payload.contains(&media_type)
                {
                    return Err(Error::DigestMismatch {
                        what: format!("{what} (`Docker-Content-Digest` header)"),
                        expected: announced,
                        actual: digest,
                    });
                }
            }
            Ok(Manifest {
                bytes,
                media_type,
                digest,
            })
        })
        .await
    }

    /// The tags of `repository`, in the order the registry lists them, following `Link`
    /// pagination (`rel="next"`) to the end.
    ///
    /// A repository the registry does not know is [`Error::NotFound`]; a registry that does
    /// not list tags answers with an error too (often 404 or 401): callers that can do
    /// without the list ask for each tag directly instead.
    pub async fn list_tags(&self, registry: &str, repository: &str) -> Result<Vec<String>, Error> {
        let registry = normalize_registry(registry);
        validate(registry, repository, None)?;
        let url = self.repo_url(registry, repository, "tags", "list")?;
        let what = format!("tag list of `{registry}/{repository}`");
        let call = Call {
            method: Method::GET,
            registry,
            repository,
            scopes: vec![Scope::pull(repository)],
            url,
            headers: HeaderMap::new(),
            body: None,
        };
        self.pages(call, "repository", &what, "tags").await
    }

    /// The repositories of `registry` (`GET /v2/_catalog`), in the order the registry lists
    /// them, asking for `page_size` names a page when given (`n`; else the registry's own
    /// page size) and following `Link` pagination (`rel="next"`, which carries `last`) to the
    /// end.
    ///
    /// Many registries give the catalog to administrators only (Harbor) or not at all: a
    /// refusal is [`Error::Unauthorized`], [`Error::Denied`] or [`Error::NotFound`] (with
    /// `what` `"catalog"`), for the caller to say what to do instead.
    pub async fn catalog(
        &self,
        registry: &str,
        page_size: Option<u32>,
    ) -> Result<Vec<String>, Error> {
        let registry = normalize_registry(registry);
        let mut url = self.endpoint(registry)?;
        url.path_segments_mut()
            .expect("an http(s) URL has a path")
            .pop_if_empty()
            .push("_catalog");
        if let Some(n) = page_size {
            url.query_pairs_mut().append_pair("n", &n.to_string());
        }
        let what = format!("catalog of `{registry}`");
        let call = Call {
            method: Method::GET,
            registry,
            repository: "",
            scopes: vec![Scope::raw("registry:catalog:*")],
            url,
            headers: HeaderMap::new(),
            body: None,
        };
        self.pages(call, "catalog", &what, "repositories").await
    }

    /// The names of a paginated list (`GET` `call`, whose answer is a JSON object with the
    /// array `field`), following `Link` pagination (`rel="next"`) to the end; `what` names
    /// the list in errors, `kind` what a 404 means.
    async fn pages(
        &self,
        mut call: Call<'_>,
        kind: &'static str,
        what: &str,
        field: &str,
    ) -> Result<Vec<String>, Error> {
        let mut names = Vec::new();
        let mut seen = std::collections::HashSet::new();
        loop {
            if !seen.insert(call.url.clone()) || seen.len() > PAGES_MAX {
                return Err(Error::Protocol {
                    url: call.url.to_string(),
                    message: format!(
                        "the {what} does not end (a page repeats, or more than {PAGES_MAX} pages)"
                    ),
                });
            }
            let (page, next) = self
                .retrying(&call.url, || async {
                    let resp = self.send(&call).await?;
                    let resp = self.check(resp, &call, kind, "").await?;
                    let next = next_link(resp.headers(), &call.url);
                    let body = read_capped(resp, MANIFEST_MAX_SIZE, what, &call.url).await?;
                    let protocol = |message: String| Error::Protocol {
                        url: call.url.to_string(),
                        message,
                    };
                    let doc: serde_json::Value = serde_json::from_slice(&body)
                        .map_err(|e| protocol(format!("the {what} is not JSON: {e}")))?;
                    let list = match doc.get(field) {
                        None | Some(serde_json::Value::Null) => Vec::new(),
                        Some(v) => {
                            serde_json::from_value::<Vec<String>>(v.clone()).map_err(|e| {
                                protocol(format!("the {what} is not a list of names: {e}"))
                            })?
                        }
                    };
                    Ok((list, next))
                })
                .await?;
            names.extend(page);
            match next {
                Some(next) => call.url = next,
                None => return Ok(names),
            }
        }
    }

    /// The referrers of the manifest `digest` through the OCI 1.1 referrers API
    /// (`GET /v2/<repository>/referrers/<digest>`), asking the registry to keep only
    /// `artifact_type` when given. Pages (`Link`, `rel="next"`) are joined into one index.
    ///
    /// `Ok(None)` when the registry has no referrers API (it answers 404): the caller then
    /// looks for the referrers tag schema (`sha256-<hex>`). The index is asked for with the
    /// index media type of [`ManifestTypes::index`].
    pub async fn referrers(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
        artifact_type: Option<&str>,
    ) -> Result<Option<Referrers>, Error> {
        let registry = normalize_registry(registry);
        validate(registry, repository, Some(digest))?;
        if !digest.contains(':') {
            return Err(ReferenceError {
                reference: display_reference(registry, repository, digest),
                reason: ReferenceProblem::NoAlgorithm(digest.to_owned()),
            }
            .into());
        }
        let mut url = self.repo_url(registry, repository, "referrers", digest)?;
        if let Some(t) = artifact_type {
            url.query_pairs_mut().append_pair("artifactType", t);
        }
        let mut headers = HeaderMap::new();
        if let Some(accept) = self
            .inner
            .manifest_types
            .index
            .as_deref()
            .and_then(|i| HeaderValue::from_str(i).ok())
        {
            headers.insert(ACCEPT, accept);
        }
        let what = format!(
            "referrers of `{}`",
            display_reference(registry, repository, digest)
        );
        let mut pages: Vec<Bytes> = Vec::new();
        let mut filters_applied = true;
        let mut seen = std::collections::HashSet::new();
        loop {
            if !seen.insert(url.clone()) || seen.len() > PAGES_MAX {
                return Err(Error::Protocol {
                    url: url.to_string(),
                    message: format!(
                        "the {what} do not end (a page repeats, or more than {PAGES_MAX} pages)"
                    ),
                });
            }
            let call = Call {
                method: Method::GET,
                registry,
                repository,
                scopes: vec![Scope::pull(repository)],
                url: url.clone(),
                headers: headers.clone(),
                body: None,
            };
            let page = self
                .retrying(&call.url, || async {
                    let resp = self.send(&call).await?;
                    if resp.status() == StatusCode::NOT_FOUND {
                        return Ok(None);
                    }
                    let resp = self.check(resp, &call, "manifest", digest).await?;
                    let applied = resp
                        .headers()
                        .get_all("oci-filters-applied")
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .flat_map(|v| v.split(','))
                        .any(|f| f.trim() == "artifactType");
                    let next = next_link(resp.headers(), &call.url);
                    let body = read_capped(resp, MANIFEST_MAX_SIZE, &what, &call.url).await?;
                    Ok(Some((body, applied, next)))
                })
                .await?;
            let Some((body, applied, next)) = page else {
                if pages.is_empty() {
                    return Ok(None);
                }
                // A later page that is gone: the registry changed under the listing.
                return Err(Error::NotFound {
                    what: "manifest",
                    registry: registry.to_owned(),
                    repository: repository.to_owned(),
                    reference: digest.to_owned(),
                });
            };
            filters_applied &= applied;
            pages.push(body);
            match next {
                Some(next) => url = next,
                None => break,
            }
        }
        let bytes = join_index_pages(pages, &url)?;
        Ok(Some(Referrers {
            bytes,
            filters_applied: filters_applied && artifact_type.is_some(),
        }))
    }

    /// Starts downloading a blob at `offset` (0 for all of it); follows redirects to
    /// storage. The stream is not verified (see [`BlobResponse`]).
    ///
    /// Retries cover getting the response; a failure mid-stream is an `Err` item, after
    /// which the caller asks again from where it got to.
    pub async fn get_blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
        offset: u64,
    ) -> Result<BlobResponse, Error> {
        let registry = normalize_registry(registry);
        let call = self.blob_call(registry, repository, digest, offset)?;
        self.retrying(&call.url, || self.get_blob_once(&call, digest, offset))
            .await
    }

    /// Downloads a small blob (a config) into memory: at most `max_size` bytes, verified
    /// against `digest`.
    pub async fn get_blob_bytes(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
        max_size: u64,
    ) -> Result<Bytes, Error> {
        let registry = normalize_registry(registry);
        let call = self.blob_call(registry, repository, digest, 0)?;
        let what = format!("blob `{digest}` of `{registry}/{repository}`");
        self.retrying(&call.url, || async {
            let blob = self.get_blob_once(&call, digest, 0).await?;
            if let Some(size) = blob.total_size.filter(|&s| s > max_size) {
                return Err(Error::TooLarge {
                    what: what.clone(),
                    limit: max_size,
                    size: Some(size),
                });
            }
            let mut buf = Vec::with_capacity(blob.total_size.unwrap_or(0) as usize);
            let mut stream = blob.stream;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                if (buf.len() + chunk.len()) as u64 > max_size {
                    return Err(Error::TooLarge {
                        what: what.clone(),
                        limit: max_size,
                        size: None,
                    });
                }
                buf.extend_from_slice(&chunk);
            }
            let actual = sha256_digest(&buf);
            if actual != digest {
                return Err(Error::DigestMismatch {
                    what: what.clone(),
                    expected: digest.to_owned(),
                    actual,
                });
            }
            Ok(Bytes::from(buf))
        })
        .await
    }

    pub(crate) fn blob_call<'a>(
        &self,
        registry: &'a str,
        repository: &'a str,
        digest: &str,
        offset: u64,
    ) -> Result<Call<'a>, Error> {
        validate(registry, repository, None)?;
        reference::validate_digest(digest).map_err(|reason| ReferenceError {
            reference: format!("{registry}/{repository}@{digest}"),
            reason,
        })?;
        let mut headers = HeaderMap::new();
        if offset > 0 {
            headers.insert(
                RANGE,
                HeaderValue::from_str(&format!("bytes={offset}-")).expect("ASCII"),
            );
        }
        Ok(Call {
            method: Method::GET,
            registry,
            repository,
            scopes: vec![Scope::pull(repository)],
            url: self.repo_url(registry, repository, "blobs", digest)?,
            headers,
            body: None,
        })
    }

    async fn get_blob_once(
        &self,
        call: &Call<'_>,
        digest: &str,
        offset: u64,
    ) -> Result<BlobResponse, Error> {
        let resp = self.send(call).await?;
        if resp.status() == StatusCode::RANGE_NOT_SATISFIABLE && offset > 0 {
            // Asking from exactly the end (a download that broke off after its last byte)
            // is not an error: there is nothing left to send.
            if let Some((None, Some(total))) = content_range(resp.headers()) {
                if total == offset {
                    return Ok(BlobResponse {
                        offset,
                        total_size: Some(total),
                        stream: Box::pin(futures_util::stream::empty()),
                    });
                }
            }
        }
        let resp = self.check(resp, call, "blob", digest).await?;
        let (start, total_size) = if resp.status() == StatusCode::PARTIAL_CONTENT {
            match content_range(resp.headers()) {
                Some((Some(start), total)) if start == offset => (start, total),
                _ => {
                    return Err(Error::Protocol {
                        url: call.url.to_string(),
                        message: format!(
                            "asked for bytes from {offset}, got `Content-Range: {}`",
                            resp.headers()
                                .get(CONTENT_RANGE)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                        ),
                    })
                }
            }
        } else {
            (0, resp.content_length())
        };
        let url = call.url.to_string();
        let stream = resp.bytes_stream().map(move |chunk| {
            chunk.map_err(|source| Error::Body {
                url: url.clone(),
                source: without_query(source),
            })
        });
        Ok(BlobResponse {
            offset: start,
            total_size,
            stream: Box::pin(stream),
        })
    }

    /// Runs `attempt` until it succeeds, fails for good, or the retries run out.
    pub(crate) async fn retrying<T, F, Fut>(&self, url: &Url, mut attempt: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let retries = self.inner.retries;
        let mut n = 0;
        loop {
            match attempt().await {
                Err(e) if e.is_retryable() && n < retries => {
                    let delay = e
                        .retry_after()
                        .unwrap_or_else(|| retry::backoff(self.inner.retry_base_delay, n));
                    n += 1;
                    tracing::warn!(
                        url = %url,
                        attempt = n,
                        of = retries,
                        ?delay,
                        error = %summary(&e),
                        "retrying"
                    );
                    tokio::time::sleep(delay).await;
                }
                result => return result,
            }
        }
    }

    /// Sends `call`, answering an authentication challenge once.
    pub(crate) async fn send(&self, call: &Call<'_>) -> Result<reqwest::Response, Error> {
        let key = scope_key(&call.scopes);
        let auth = self.known_auth(call, &key).await?;
        let resp = self.execute(call, &auth).await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenges: Vec<Challenge> = resp
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(parse_challenges)
            .collect();
        let challenge = challenges
            .iter()
            .find(|c| matches!(c, Challenge::Bearer { .. }))
            .or(challenges.first())
            .cloned();
        let Some(challenge) = challenge else {
            return Err(unauthorized(call, auth.sent_credentials(), resp, None).await);
        };
        self.lock_challenges()
            .insert(call.registry.to_owned(), challenge.clone());

        let next = match (&challenge, &auth) {
            (Challenge::Bearer { error, .. }, Auth::Bearer { fresh: true, .. }) => {
                let error = error.clone();
                return Err(unauthorized(call, auth.sent_credentials(), resp, error).await);
            }
            (Challenge::Bearer { .. }, _) => {
                // No token yet, or the cached one was refused (revoked, expired early):
                // get a fresh one, once.
                self.inner.tokens.remove(call.registry, &key);
                self.fetch_token(call, &challenge, &key).await?
            }
            (Challenge::Basic, Auth::Basic(_)) => {
                return Err(unauthorized(call, true, resp, None).await);
            }
            (Challenge::Basic, _) => match self.credentials(call.registry).await? {
                Some(credentials) => Auth::Basic(credentials),
                None => return Err(unauthorized(call, false, resp, None).await),
            },
        };
        // Free the connection of the refused request for reuse.
        drop(resp);
        let resp = self.execute(call, &next).await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            let error = parse_bearer_error(resp.headers());
            return Err(unauthorized(call, next.sent_credentials(), resp, error).await);
        }
        Ok(resp)
    }

    /// Sends `call` once with a streamed `body`, authenticated as the last request to this
    /// registry was. A streamed body cannot be sent twice, so no challenge is answered here:
    /// on 401 the cached token is dropped and the caller recovers with a request without a
    /// body (which goes through [`Client::send`]).
    pub(crate) async fn send_streaming(
        &self,
        call: &Call<'_>,
        body: reqwest::Body,
    ) -> Result<reqwest::Response, Error> {
        let key = scope_key(&call.scopes);
        let auth = self.known_auth(call, &key).await?;
        let resp = self.execute_with(call, &auth, Some(body)).await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            self.inner.tokens.remove(call.registry, &key);
        }
        Ok(resp)
    }

    /// Authentication known to be needed before asking: a cached token, or what the last
    /// challenge of this registry asked for.
    pub(crate) async fn known_auth(&self, call: &Call<'_>, key: &str) -> Result<Auth, Error> {
        if let Some(token) = self.inner.tokens.get(call.registry, key) {
            return Ok(Auth::Bearer {
                token,
                fresh: false,
                with_credentials: false,
            });
        }
        let known = self.lock_challenges().get(call.registry).cloned();
        match known {
            Some(challenge @ Challenge::Bearer { .. }) => {
                self.fetch_token(call, &challenge, key).await
            }
            Some(Challenge::Basic) => Ok(self
                .credentials(call.registry)
                .await?
                .map_or(Auth::None, Auth::Basic)),
            None => Ok(Auth::None),
        }
    }

    /// Gets a token for the scopes of `call` from the service a `Bearer` challenge names.
    async fn fetch_token(
        &self,
        call: &Call<'_>,
        challenge: &Challenge,
        key: &str,
    ) -> Result<Auth, Error> {
        let Challenge::Bearer {
            realm,
            service,
            scope,
            ..
        } = challenge
        else {
            unreachable!("fetch_token is called for bearer challenges only");
        };
        let mut url = Url::parse(realm)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| Error::Protocol {
                url: call.url.to_string(),
                message: format!("the token realm `{realm}` is not an http(s) URL"),
            })?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            let mut scopes: Vec<&str> = call.scopes.iter().map(Scope::as_str).collect();
            // The registry may want a scope of its own (e.g. for `/v2/`).
            for s in scope.iter().flat_map(|s| s.split(' ')) {
                if !s.is_empty() && !scopes.contains(&s) {
                    scopes.push(s);
                }
            }
            for s in scopes {
                query.append_pair("scope", s);
            }
        }
        let credentials = self.credentials(call.registry).await?;
        let mut request = self.http_for_url(&url, call.registry).get(url.clone());
        if let Some(c) = &credentials {
            request = request.basic_auth(&c.username, Some(&c.password));
        }
        tracing::debug!(registry = call.registry, realm = %realm, scope = key, "fetching token");
        let resp = request.send().await.map_err(|e| {
            let ca = self
                .host_for_url(&url, call.registry)
                .and_then(|h| h.ca_file.as_deref());
            transport_error(e, &url, call.registry, ca)
        })?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED {
            return Err(unauthorized(call, credentials.is_some(), resp, None).await);
        }
        let token_call = Call {
            method: Method::GET,
            registry: call.registry,
            repository: call.repository,
            scopes: Vec::new(),
            url: url.clone(),
            headers: HeaderMap::new(),
            body: None,
        };
        let resp = self.check(resp, &token_call, TOKEN_SERVICE, "").await?;
        let body = read_capped(resp, SMALL_BODY_MAX, "token response", &url).await?;
        let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|e| Error::Protocol {
            url: url.to_string(),
            message: format!("the token response is not JSON: {e}"),
        })?;
        let (token, lifetime) = parsed.into_token().ok_or_else(|| Error::Protocol {
            url: url.to_string(),
            message: "the token response has no `token` or `access_token`".into(),
        })?;
        let token = Token::new(token);
        self.inner
            .tokens
            .insert(call.registry, key, token.clone(), lifetime);
        Ok(Auth::Bearer {
            token,
            fresh: true,
            with_credentials: credentials.is_some(),
        })
    }

    async fn execute(&self, call: &Call<'_>, auth: &Auth) -> Result<reqwest::Response, Error> {
        self.execute_with(call, auth, call.body.clone().map(reqwest::Body::from))
            .await
    }

    /// Sends `call` once with `auth` and `body` (which replaces `call.body`).
    pub(crate) async fn execute_with(
        &self,
        call: &Call<'_>,
        auth: &Auth,
        body: Option<reqwest::Body>,
    ) -> Result<reqwest::Response, Error> {
        let mut request = self
            .host(call.registry)
            .map_or(&self.inner.default_http, |h| &h.http)
            .request(call.method.clone(), call.url.clone())
            .headers(call.headers.clone());
        request = match auth {
            Auth::None => request,
            Auth::Basic(c) => request.basic_auth(&c.username, Some(&c.password)),
            Auth::Bearer { token, .. } => request.bearer_auth(token.secret()),
        };
        if let Some(body) = body {
            request = request.body(body);
        }
        let resp = request.send().await.map_err(|e| {
            let ca = self.host(call.registry).and_then(|h| h.ca_file.as_deref());
            transport_error(e, &call.url, call.registry, ca)
        })?;
        tracing::debug!(method = %call.method, url = %call.url, status = resp.status().as_u16(), "response");
        if let Some(limit) = crate::RateLimit::from_headers(resp.headers()) {
            self.inner
                .rate_limits
                .lock()
                .expect("rate limits lock")
                .insert(call.registry.to_owned(), limit);
        }
        Ok(resp)
    }

    /// Passes a success through; turns any other status into the matching error.
    pub(crate) async fn check(
        &self,
        resp: reqwest::Response,
        call: &Call<'_>,
        what: &'static str,
        reference: &str,
    ) -> Result<reqwest::Response, Error> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let url = call.url.to_string();
        let retry_after = retry::retry_after(resp.headers());
        let resp_headers =
            (status == StatusCode::TOO_MANY_REQUESTS).then(|| resp.headers().clone());
        let (envelope, mut message) = error_body(resp).await;
        if status == StatusCode::BAD_REQUEST
            && call.url.scheme() == "http"
            && message.contains("HTTP request to an HTTPS server")
        {
            // Go's net/http answers this to plain HTTP on a TLS port (distribution, Harbor).
            message.push_str(&format!(
                "\n  hint: `{}` serves HTTPS: remove plainHttp for it from the spec",
                call.registry
            ));
        }
        let has = |code| envelope.as_ref().is_some_and(|e| e.has(&code));
        let not_found = if has(ErrorCode::NameUnknown) {
            Some(("repository", ""))
        } else if has(ErrorCode::BlobUnknown) {
            Some(("blob", reference))
        } else if has(ErrorCode::ManifestUnknown) {
            Some(("manifest", reference))
        } else if status == StatusCode::NOT_FOUND && what != TOKEN_SERVICE {
            Some((what, reference))
        } else {
            None
        };
        if let Some((what, reference)) = not_found {
            return Err(Error::NotFound {
                what,
                registry: call.registry.to_owned(),
                repository: call.repository.to_owned(),
                reference: reference.to_owned(),
            });
        }
        Err(match status {
            StatusCode::FORBIDDEN => Error::Denied {
                registry: call.registry.to_owned(),
                repository: call.repository.to_owned(),
                message,
            },
            StatusCode::TOO_MANY_REQUESTS => Error::TooManyRequests {
                url,
                retry_after,
                asked: retry::asked_wait(resp_headers.as_ref()),
            },
            StatusCode::UNAUTHORIZED => Error::Unauthorized {
                registry: call.registry.to_owned(),
                repository: call.repository.to_owned(),
                credentials: true,
                message,
            },
            _ => Error::Server {
                url,
                status: status.as_u16(),
                code: envelope.and_then(|e| e.first_code().cloned()),
                message,
                retry_after,
            },
        })
    }

    async fn credentials(&self, registry: &str) -> Result<Option<Credentials>, Error> {
        if let Some(c) = self.host(registry).and_then(|h| h.credentials.clone()) {
            return Ok(Some(c));
        }
        if let Some(c) = &self.inner.default_credentials {
            return Ok(Some(c.clone()));
        }
        self.auth_file_credentials(registry).await
    }

    /// Credentials for a download host: its own, else from the auth files (the default
    /// credentials are for registries only).
    pub(crate) async fn credentials_for(&self, host: &str) -> Result<Option<Credentials>, Error> {
        if let Some(c) = self.host(host).and_then(|h| h.credentials.clone()) {
            return Ok(Some(c));
        }
        self.auth_file_credentials(host).await
    }

    /// `host`'s entry in the docker/podman auth files, looked up once per run.
    async fn auth_file_credentials(&self, host: &str) -> Result<Option<Credentials>, Error> {
        let Some(files) = &self.inner.auth_files else {
            return Ok(None);
        };
        let cell = self
            .inner
            .found_credentials
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(host.to_owned())
            .or_default()
            .clone();
        cell.get_or_try_init(|| files.lookup(host)).await.cloned()
    }

    /// The HTTP client for `host` (`host[:port]`): with its CA file when it has one.
    pub(crate) fn http_for_host(&self, host: &str) -> &reqwest::Client {
        self.host(host)
            .map_or(&self.inner.default_http, |h| &h.http)
    }

    /// The CA file configured for `host`, named in TLS errors.
    pub(crate) fn ca_file_for_host(&self, host: &str) -> Option<&Path> {
        self.host(host).and_then(|h| h.ca_file.as_deref())
    }

    fn lock_challenges(&self) -> std::sync::MutexGuard<'_, HashMap<String, Challenge>> {
        self.inner
            .challenges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn host(&self, registry: &str) -> Option<&Host> {
        self.inner.hosts.get(registry)
    }

    /// The HTTP client for a token service: its own host's if configured, else the
    /// registry's (a token service usually shares the registry's CA).
    fn http_for_url(&self, url: &Url, registry: &str) -> &reqwest::Client {
        self.host_for_url(url, registry)
            .map_or(&self.inner.default_http, |h| &h.http)
    }

    fn host_for_url(&self, url: &Url, registry: &str) -> Option<&Host> {
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => String::new(),
        };
        self.host(&host).or_else(|| self.host(registry))
    }

    /// `<scheme>://<host>/v2/`.
    pub(crate) fn endpoint(&self, registry: &str) -> Result<Url, Error> {
        let plain = self.host(registry).is_some_and(|h| h.plain_http);
        let scheme = if plain { "http" } else { "https" };
        let host = if registry == DOCKER_HUB {
            DOCKER_HUB_API_HOST
        } else {
            registry
        };
        let bad = |url: Option<url::ParseError>| ReferenceError {
            reference: registry.to_owned(),
            reason: ReferenceProblem::NotHost {
                registry: registry.to_owned(),
                url,
            },
        };
        if host.is_empty() || host.contains(['/', '@', '?', '#']) {
            return Err(bad(None).into());
        }
        Url::parse(&format!("{scheme}://{host}/v2/")).map_err(|e| bad(Some(e)).into())
    }

    /// A request for `/v2/<repository>/manifests/<reference>` accepting the manifest types the
    /// client was given.
    pub(crate) fn manifest_call<'a>(
        &self,
        method: Method,
        registry: &'a str,
        repository: &'a str,
        reference: &str,
        scope: Scope,
    ) -> Result<Call<'a>, Error> {
        validate(registry, repository, Some(reference))?;
        let mut headers = HeaderMap::new();
        if let Some(accept) = &self.inner.accept {
            headers.insert(ACCEPT, accept.clone());
        }
        Ok(Call {
            method,
            registry,
            repository,
            scopes: vec![scope],
            url: self.repo_url(registry, repository, "manifests", reference)?,
            headers,
            body: None,
        })
    }

    /// `<endpoint><repository>/<kind>/<reference>`.
    pub(crate) fn repo_url(
        &self,
        registry: &str,
        repository: &str,
        kind: &str,
        reference: &str,
    ) -> Result<Url, Error> {
        let mut url = self.endpoint(registry)?;
        url.path_segments_mut()
            .expect("an http(s) URL has a path")
            .pop_if_empty()
            .extend(repository.split('/'))
            .push(kind)
            .push(reference);
        Ok(url)
    }
}

fn http_client(user_agent: &str, ca_file: Option<&Path>) -> Result<reqwest::Client, Error> {
    let mut builder = reqwest::Client::builder()
        .user_agent(user_agent)
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT);
    if let Some(path) = ca_file {
        let config = |source: Box<dyn std::error::Error + Send + Sync>| Error::Config {
            what: "CA file",
            path: path.to_owned(),
            source,
        };
        let pem = std::fs::read(path).map_err(|e| config(e.into()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| config(e.into()))?;
        if certs.is_empty() {
            return Err(config("the file holds no PEM certificate".into()));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
        // The certificates are parsed when the client is built.
        return builder.build().map_err(|e| config(e.into()));
    }
    builder.build().map_err(Error::ClientSetup)
}

pub(crate) fn validate(
    registry: &str,
    repository: &str,
    reference: Option<&str>,
) -> Result<(), Error> {
    let full = match reference {
        Some(r) => display_reference(registry, repository, r),
        None => format!("{registry}/{repository}"),
    };
    let bad = |reason| ReferenceError {
        reference: full.clone(),
        reason,
    };
    reference::validate_repository(repository).map_err(bad)?;
    match reference {
        Some(r) if r.contains(':') => reference::validate_digest(r).map_err(bad)?,
        Some(r) => reference::validate_tag(r).map_err(bad)?,
        None => {}
    }
    Ok(())
}

pub(crate) fn display_reference(registry: &str, repository: &str, reference: &str) -> String {
    let sep = if reference.contains(':') { '@' } else { ':' };
    format!("{registry}/{repository}{sep}{reference}")
}

pub(crate) fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Media types servers put on anything; the body then says what it is.
const GENERIC_TYPES: [&str; 4] = [
    "application/json",
    "text/plain",
    "application/octet-stream",
    "binary/octet-stream",
];

/// The manifest's media type: the `Content-Type` unless generic, else the `mediaType`
/// field, else guessed from the fields (`mediaType` is optional in OCI manifests) as `types`
/// says.
fn media_type(types: &ManifestTypes, content_type: Option<&str>, bytes: &[u8]) -> Option<String> {
    if let Some(ct) = content_type {
        let ct = ct.split(';').next().unwrap_or("").trim();
        if !ct.is_empty() && !GENERIC_TYPES.contains(&ct) {
            return Some(ct.to_owned());
        }
    }
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType", default)]
        media_type: Option<String>,
        #[serde(default)]
        manifests: Option<serde::de::IgnoredAny>,
        #[serde(default)]
        config: Option<serde::de::IgnoredAny>,
    }
    let probe: Probe = serde_json::from_slice(bytes).ok()?;
    match probe.media_type.filter(|m| !m.is_empty()) {
        Some(m) => Some(m),
        None if probe.manifests.is_some() => types.index.clone(),
        None if probe.config.is_some() => types.manifest.clone(),
        None => None,
    }
}

/// The target of a `Link: <url>; rel="next"` header, resolved against `base`.
fn next_link(headers: &HeaderMap, base: &Url) -> Option<Url> {
    headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|link| {
            let (target, params) = link.trim().split_once(';')?;
            let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
            let next = params.split(';').any(|p| {
                p.trim()
                    .strip_prefix("rel=")
                    .is_some_and(|r| r.trim_matches('"').split(' ').any(|r| r == "next"))
            });
            next.then(|| base.join(target).ok()).flatten()
        })
        .filter(|u| u.host_str() == base.host_str() && u.port() == base.port())
}

/// One index of the pages of a listing: the first page with the `manifests` of the others
/// appended (the bytes of a single page unchanged).
fn join_index_pages(mut pages: Vec<Bytes>, url: &Url) -> Result<Bytes, Error> {
    let protocol = |message: String| Error::Protocol {
        url: url.to_string(),
        message,
    };
    let parse = |page: &Bytes| -> Result<serde_json::Map<String, serde_json::Value>, Error> {
        serde_json::from_slice(page)
            .map_err(|e| protocol(format!("the referrers index is not JSON: {e}")))
    };
    let manifests =
        |index: &mut serde_json::Map<String, serde_json::Value>| match index.remove("manifests") {
            None | Some(serde_json::Value::Null) => Ok(Vec::new()),
            Some(serde_json::Value::Array(list)) => Ok(list),
            Some(_) => Err(protocol(
                "the referrers index's `manifests` is not a list".to_owned(),
            )),
        };
    if pages.len() == 1 {
        let mut index = parse(&pages[0])?;
        manifests(&mut index)?;
        return Ok(pages.remove(0));
    }
    let mut first = parse(&pages[0])?;
    let mut all = manifests(&mut first)?;
    for page in &pages[1..] {
        all.extend(manifests(&mut parse(page)?)?);
    }
    first.insert("manifests".into(), serde_json::Value::Array(all));
    Ok(Bytes::from(
        serde_json::to_vec(&first).expect("JSON values serialise"),
    ))
}

/// `Content-Range: bytes <start>-<end>/<total>` or `bytes */<total>`, as
/// `(start, total)`; an unknown total (`*`) is `None`.
pub(crate) fn content_range(headers: &HeaderMap) -> Option<(Option<u64>, Option<u64>)> {
    let value = headers.get(CONTENT_RANGE)?.to_str().ok()?.trim();
    let (range, total) = value.strip_prefix("bytes ")?.split_once('/')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    let start = match range.trim() {
        "*" => None,
        r => Some(r.split_once('-')?.0.parse().ok()?),
    };
    Some((start, total))
}

/// Reads a whole body of at most `limit` bytes.
async fn read_capped(
    mut resp: reqwest::Response,
    limit: u64,
    what: &str,
    url: &Url,
) -> Result<Bytes, Error> {
    if let Some(size) = resp.content_length().filter(|&s| s > limit) {
        return Err(Error::TooLarge {
            what: what.to_owned(),
            limit,
            size: Some(size),
        });
    }
    let mut buf = Vec::with_capacity(resp.content_length().unwrap_or(0) as usize);
    while let Some(chunk) = resp.chunk().await.map_err(|source| Error::Body {
        url: url.to_string(),
        source: without_query(source),
    })? {
        if (buf.len() + chunk.len()) as u64 > limit {
            return Err(Error::TooLarge {
                what: what.to_owned(),
                limit,
                size: None,
            });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

/// The error envelope of a failed response, and a message: the envelope's, else the start
/// of the body.
pub(crate) async fn error_body(resp: reqwest::Response) -> (Option<ErrorEnvelope>, String) {
    let url = resp.url().clone();
    let Ok(body) = read_capped(resp, SMALL_BODY_MAX, "error body", &url).await else {
        return (None, String::new());
    };
    if let Some(envelope) = ErrorEnvelope::parse(&body) {
        let message = envelope.message();
        return (Some(envelope), message);
    }
    let text = String::from_utf8_lossy(&body);
    let mut message: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if message.chars().count() > 200 {
        message = message.chars().take(200).collect::<String>() + "…";
    }
    (None, message)
}

/// The `error=` of a `Bearer` challenge, if the response has one.
fn parse_bearer_error(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(parse_challenges)
        .find_map(|c| match c {
            Challenge::Bearer { error, .. } => error,
            Challenge::Basic => None,
        })
}

async fn unauthorized(
    call: &Call<'_>,
    credentials: bool,
    resp: reqwest::Response,
    challenge_error: Option<String>,
) -> Error {
    let (_, mut message) = error_body(resp).await;
    match challenge_error {
        Some(error) if message.is_empty() => message = error,
        // The token was granted without some of the actions asked for: a missing permission
        // (distribution and Harbor answer a push without push rights this way), which the
        // body's "authentication required" does not tell.
        Some(error) if error == "insufficient_scope" && !message.contains(&error) => {
            message = format!("{message} ({error})");
        }
        _ => {}
    }
    Error::Unauthorized {
        registry: call.registry.to_owned(),
        repository: call.repository.to_owned(),
        credentials,
        message,
    }
}

/// Maps a failed request to `Tls`, `Unreachable` or `Request`.
pub(crate) fn transport_error(
    source: reqwest::Error,
    url: &Url,
    registry: &str,
    ca_file: Option<&Path>,
) -> Error {
    let source = without_query(source);
    let url = url.to_string();
    if let Some(problem) = crate::error::tls_problem(&source) {
        return Error::Tls {
            url,
            host: registry.to_owned(),
            ca_file: ca_file.map(Path::to_path_buf),
            problem,
            source,
        };
    }
    if source.is_connect() || source.is_timeout() {
        Error::Unreachable { url, source }
    } else {
        Error::Request { url, source }
    }
}

/// Drops the query from the URL a reqwest error carries: after a redirect it may be a
/// pre-signed storage URL whose signature is a credential.
pub(crate) fn without_query(mut e: reqwest::Error) -> reqwest::Error {
    if let Some(url) = e.url_mut() {
        url.set_query(None);
        url.set_fragment(None);
    }
    e
}

/// One line for a log: the message without its hint, and the causes.
pub(crate) fn summary(e: &Error) -> String {
    let text = e.to_string();
    let mut line = text.lines().next().unwrap_or_default().to_owned();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        line.push_str(": ");
        line.push_str(&s.to_string());
        source = s.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_is_shareable() {
        fn shareable<T: Send + Sync + Clone + 'static>() {}
        fn sendable<T: Send + Unpin + 'static>() {}
        shareable::<Client>();
        sendable::<BlobResponse>();
        sendable::<Error>();
    }

    #[test]
    fn media_types() {
        const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
        const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
        const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
        let types = ManifestTypes {
            index: Some(OCI_INDEX.into()),
            manifest: Some(OCI_MANIFEST.into()),
            ..ManifestTypes::default()
        };
        let media_type = |ct, bytes| media_type(&types, ct, bytes);
        let idx = br#"{"schemaVersion":2,"manifests":[]}"#;
        let img = br#"{"schemaVersion":2,"config":{},"layers":[]}"#;
        let typed = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}"#;
        assert_eq!(
            media_type(
                Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
                idx
            )
            .unwrap(),
            OCI_MANIFEST
        );
        assert_eq!(media_type(None, idx).unwrap(), OCI_INDEX);
        assert_eq!(
            media_type(Some("application/json"), img).unwrap(),
            OCI_MANIFEST
        );
        assert_eq!(
            media_type(Some("text/plain"), typed).unwrap(),
            DOCKER_MANIFEST
        );
        assert_eq!(media_type(None, b"{}"), None);
        assert_eq!(media_type(None, b"not json"), None);
    }

    #[test]
    fn content_ranges() {
        let mut h = HeaderMap::new();
        assert_eq!(content_range(&h), None);
        h.insert(CONTENT_RANGE, "bytes 100-199/200".parse().unwrap());
        assert_eq!(content_range(&h), Some((Some(100), Some(200))));
        h.insert(CONTENT_RANGE, "bytes 5-9/*".parse().unwrap());
        assert_eq!(content_range(&h), Some((Some(5), None)));
        h.insert(CONTENT_RANGE, "bytes */42".parse().unwrap());
        assert_eq!(content_range(&h), Some((None, Some(42))));
        h.insert(CONTENT_RANGE, "items 1-2/3".parse().unwrap());
        assert_eq!(content_range(&h), None);
    }

    #[test]
    fn urls() {
        let mut hosts = HashMap::new();
        hosts.insert(
            "127.0.0.1:5000".to_owned(),
            HostConfig {
                plain_http: true,
                ..HostConfig::default()
            },
        );
        let client = Client::new(ClientOptions {
            hosts,
            docker_config: false,
            ..ClientOptions::default()
        })
        .unwrap();
        assert_eq!(
            client
                .repo_url("127.0.0.1:5000", "a/b", "manifests", "v1")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:5000/v2/a/b/manifests/v1"
        );
        assert_eq!(
            client
                .repo_url("docker.io", "library/x", "blobs", "sha256:00")
                .unwrap()
                .as_str(),
            "https://registry-1.docker.io/v2/library/x/blobs/sha256:00"
        );
        assert_eq!(
            client.endpoint("[::1]:5000").unwrap().as_str(),
            "https://[::1]:5000/v2/"
        );
        assert!(client.endpoint("a/b").is_err());
    }

    #[test]
    fn missing_or_bad_ca_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("ca.pem");
        std::fs::write(&bad, "not a certificate").unwrap();
        for path in [dir.path().join("missing.pem"), bad] {
            let mut hosts = HashMap::new();
            hosts.insert(
                "r.example".to_owned(),
                HostConfig {
                    ca_file: Some(path.clone()),
                    ..HostConfig::default()
                },
            );
            let err = Client::new(ClientOptions {
                hosts,
                ..ClientOptions::default()
            })
            .unwrap_err();
            assert!(
                matches!(&err, Error::Config { what: "CA file", path: p, .. } if *p == path),
                "{err:?}"
            );
            assert!(err.to_string().contains(&path.display().to_string()));
        }
    }

    #[test]
    fn debug_shows_no_secrets() {
        let mut hosts = HashMap::new();
        hosts.insert(
            "r.example".to_owned(),
            HostConfig {
                credentials: Some(Credentials::new("u", "host-secret")),
                ..HostConfig::default()
            },
        );
        let opts = ClientOptions {
            hosts,
            default_credentials: Some(Credentials::new("d", "default-secret")),
            ..ClientOptions::default()
        };
        let shown = format!("{opts:?}");
        assert!(!shown.contains("secret"), "{shown}");
        let client = Client::new(opts).unwrap();
        let shown = format!("{client:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }
}
