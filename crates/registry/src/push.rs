//! The push operations: blob existence, cross-repository mounts, uploads (monolithic, chunked,
//! resumed, and the fallback to small chunks behind a proxy that answers 413), manifests.
//!
//! Uploads follow the OCI distribution spec, "Pushing blobs": `POST /v2/<name>/blobs/uploads/`
//! opens a session whose `Location` every later request follows (a registry may change it at
//! each step; distribution signs the offset into its `_state` query); `PATCH` sends a chunk
//! with `Content-Range: <start>-<end>`; `PUT ?digest=` closes the session, and the registry
//! checks the digest then.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use reqwest::header::{
    HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE,
};
use reqwest::{Method, StatusCode};
use url::Url;

use crate::auth::Scope;
use crate::client::{display_reference, sha256_digest, summary, validate, Call, Client};
use crate::envelope::ErrorCode;
use crate::error::Error;
use crate::reference::normalize_registry;
use crate::retry;

/// What [`Client::push_blob`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushOutcome {
    /// Bytes read from the body streams and handed to the HTTP client, over every attempt:
    /// the blob's size when nothing had to be sent twice.
    pub bytes_sent: u64,
    /// Whether the upload that completed was chunked (`PATCH`es) rather than one `PUT`.
    pub chunked: bool,
    /// How many times the upload started over from a new session (after a 413, or when a
    /// broken upload could not be resumed).
    pub restarts: u32,
}

/// What a registry answered to [`Client::push_manifest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedManifest {
    /// `sha256:<hex>` of the bytes pushed, checked against `Docker-Content-Digest`.
    pub digest: String,
    /// The `OCI-Subject` header: the registry indexed the manifest's `subject` for its
    /// referrers API (OCI distribution 1.1). `None` when the registry does not say so, and the
    /// pusher keeps the referrers tag schema up to date itself.
    pub subject: Option<String>,
}

/// The push settings of a client, and what it learnt about registries while pushing.
pub(crate) struct PushSettings {
    monolithic_max: u64,
    chunk_size: u64,
    fallback_chunk_size: u64,
    /// Registries that answered 413 to a request body: the chunk size used for them since.
    small_chunks: Mutex<HashMap<String, u64>>,
}

impl PushSettings {
    pub(crate) fn new(monolithic_max: u64, chunk_size: u64, fallback_chunk_size: u64) -> Self {
        // A chunk of 0 bytes would never finish an upload.
        let chunk_size = chunk_size.max(1);
        PushSettings {
            monolithic_max,
            chunk_size,
            fallback_chunk_size: fallback_chunk_size.clamp(1, chunk_size),
            small_chunks: Mutex::default(),
        }
    }

    /// The chunk size remembered for `registry` after a 413, if any.
    fn remembered(&self, registry: &str) -> Option<u64> {
        self.lock().get(registry).copied()
    }

    /// Remembers the fallback chunk size for `registry`; true the first time.
    fn remember_fallback(&self, registry: &str) -> bool {
        self.lock()
            .insert(registry.to_owned(), self.fallback_chunk_size)
            .is_none()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.small_chunks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The subject of one blob push, for requests and errors.
#[derive(Clone, Copy)]
struct Blob<'a> {
    registry: &'a str,
    repository: &'a str,
    digest: &'a str,
    size: u64,
}

impl Blob<'_> {
    fn call(&self, method: Method, url: Url, headers: HeaderMap) -> Call<'_> {
        Call {
            method,
            registry: self.registry,
            repository: self.repository,
            scopes: vec![Scope::push(self.repository)],
            url,
            headers,
            body: None,
        }
    }

    fn source_error(&self, source: io::Error) -> Error {
        Error::BlobSource {
            registry: self.registry.to_owned(),
            repository: self.repository.to_owned(),
            digest: self.digest.to_owned(),
            source,
        }
    }

    /// Names the blob in `e`, unless `e` already does.
    fn error(&self, e: Error) -> Error {
        match e {
            Error::DigestMismatch { .. }
            | Error::PushDenied { .. }
            | Error::BlobSource { .. }
            | Error::BlobPush { .. }
            | Error::InvalidReference(_) => e,
            e => Error::BlobPush {
                registry: self.registry.to_owned(),
                repository: self.repository.to_owned(),
                digest: self.digest.to_owned(),
                source: Box::new(e),
            },
        }
    }
}

/// Why one request of an upload failed.
enum Failure {
    /// 413: the body is over the limit of the registry or of a proxy in front of it.
    TooLarge(Error),
    /// The caller's stream failed or ended early.
    Source(io::Error),
    /// The session is gone or out of step (404, 416, `BLOB_UPLOAD_INVALID`): start over.
    Lost(Error),
    /// A 401 with a token that worked a moment ago, or a transport error, 5xx, 429: ask the
    /// registry where the upload stands and go on from there.
    Broken(Error),
    /// Anything else: give up.
    Fatal(Error),
}

/// The caller's byte stream, shared by the request bodies of one upload attempt: each body
/// takes the next `len` bytes.
struct Source<S> {
    stream: Pin<Box<S>>,
    /// Read from the stream but not yet handed out.
    pending: Bytes,
    /// Bytes still to come before the blob's end.
    left: u64,
    /// Why the stream failed, kept for the error (reqwest only gets a copy of its text).
    failed: Option<io::Error>,
    /// Counts every byte handed out, across attempts.
    sent: Arc<AtomicU64>,
}

type SharedSource<S> = Arc<tokio::sync::Mutex<Source<S>>>;

impl<S> Source<S>
where
    S: Stream<Item = io::Result<Bytes>> + Send + 'static,
{
    fn shared(stream: S, left: u64, sent: Arc<AtomicU64>) -> SharedSource<S> {
        Arc::new(tokio::sync::Mutex::new(Source {
            stream: Box::pin(stream),
            pending: Bytes::new(),
            left,
            failed: None,
            sent,
        }))
    }

    /// The next at most `max` bytes (never empty).
    async fn next_up_to(&mut self, max: u64) -> io::Result<Bytes> {
        while self.pending.is_empty() {
            let failure = match self.stream.next().await {
                Some(Ok(bytes)) => {
                    self.pending = bytes;
                    continue;
                }
                Some(Err(e)) => e,
                None => io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the stream ended {} bytes before the blob's end", self.left),
                ),
            };
            let copy = io::Error::new(failure.kind(), failure.to_string());
            self.failed = Some(failure);
            return Err(copy);
        }
        let n = (self.pending.len() as u64).min(max).min(self.left.max(1)) as usize;
        let bytes = self.pending.split_to(n);
        self.left = self.left.saturating_sub(n as u64);
        self.sent.fetch_add(n as u64, Ordering::Relaxed);
        Ok(bytes)
    }
}

/// A request body of the next `len` bytes of `source`.
fn chunk_body<S>(source: &SharedSource<S>, len: u64) -> reqwest::Body
where
    S: Stream<Item = io::Result<Bytes>> + Send + 'static,
{
    let stream = futures_util::stream::try_unfold(
        (Arc::clone(source), len),
        |(source, remaining)| async move {
            if remaining == 0 {
                return Ok(None);
            }
            let bytes = source.lock().await.next_up_to(remaining).await?;
            let n = bytes.len() as u64;
            Ok::<_, io::Error>(Some((bytes, (source, remaining - n))))
        },
    );
    reqwest::Body::wrap_stream(stream)
}

/// The first of the registry's answers that let an upload go on.
enum Next {
    /// The next request goes to this URL.
    Continue(Url),
    /// The blob is complete.
    Done,
}

impl Client {
    /// Whether `repository` has the blob `digest` (`HEAD /v2/<repo>/blobs/<digest>`): its
    /// size, or `None` on 404.
    ///
    /// The token asked for is the push one (`repository:<repo>:pull,push`), shared with the
    /// upload that usually follows.
    pub async fn blob_exists(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
    ) -> Result<Option<u64>, Error> {
        let registry = normalize_registry(registry);
        let mut call = self.blob_call(registry, repository, digest, 0)?;
        call.method = Method::HEAD;
        call.scopes = vec![Scope::push(repository)];
        let what = format!("blob `{digest}`");
        self.retrying(&call.url, || async {
            let resp = self.send(&call).await.map_err(|e| push_denied(e, &what))?;
            match self.check(resp, &call, "blob", digest).await {
                // A HEAD response has no body: its length is in the header only.
                Ok(resp) => Ok(Some(
                    header(resp.headers(), CONTENT_LENGTH.as_str())
                        .and_then(|v| v.parse().ok())
                        .ok_or_else(|| Error::Protocol {
                            url: call.url.to_string(),
                            message: "the blob's `HEAD` answer has no `Content-Length`".into(),
                        })?,
                )),
                Err(e) if e.is_not_found() => Ok(None),
                Err(e) => Err(push_denied(e, &what)),
            }
        })
        .await
    }

    /// Mounts the blob `digest` from `from_repository` into `repository` of the same
    /// registry (`POST /v2/<repo>/blobs/uploads/?mount=<digest>&from=<from_repo>`), asking a
    /// token for both `repository:<from>:pull` and `repository:<repo>:pull,push`.
    ///
    /// True when the registry mounted it (201). False when it did not, and the caller must
    /// upload the blob: a 202 (the registry opened an upload session instead, which is
    /// cancelled here), or 401, 403 or 404 on the mount (the credentials may not read the
    /// source; Harbor answers 401 across projects).
    pub async fn mount_blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
        from_repository: &str,
    ) -> Result<bool, Error> {
        let registry = normalize_registry(registry);
        validate(registry, repository, Some(digest))?;
        validate(registry, from_repository, None)?;
        let mut url = self.uploads_url(registry, repository)?;
        url.query_pairs_mut()
            .append_pair("mount", digest)
            .append_pair("from", from_repository);
        let call = Call {
            method: Method::POST,
            registry,
            repository,
            scopes: vec![Scope::pull(from_repository), Scope::push(repository)],
            url,
            headers: HeaderMap::new(),
            body: Some(Bytes::new()),
        };
        let resp = self
            .retrying(&call.url, || async {
                match self.send(&call).await {
                    Ok(resp) => Ok(Some(resp)),
                    Err(Error::Unauthorized { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await?;
        let Some(resp) = resp else {
            tracing::debug!(
                registry,
                repository,
                digest,
                from_repository,
                "mount refused (401)"
            );
            return Ok(false);
        };
        match resp.status() {
            StatusCode::CREATED => Ok(true),
            StatusCode::ACCEPTED => {
                if let Some(session) = location(&resp, &call.url) {
                    self.cancel_upload(registry, repository, session).await;
                }
                Ok(false)
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => {
                tracing::debug!(
                    registry,
                    repository,
                    digest,
                    from_repository,
                    status = resp.status().as_u16(),
                    "mount refused"
                );
                Ok(false)
            }
            _ => {
                let e = self
                    .check(resp, &call, "blob", digest)
                    .await
                    .err()
                    .unwrap_or_else(|| Error::Protocol {
                        url: call.url.to_string(),
                        message: "a mount must be answered 201 or 202".into(),
                    });
                Err(push_denied(e, &format!("blob `{digest}`")))
            }
        }
    }

    /// Uploads the blob `digest` of `size` bytes into `repository`.
    ///
    /// `body(offset)` returns a fresh stream of the blob's bytes from `offset` to the end; it
    /// is called once per attempt (from 0, or from where a broken upload resumes), never for
    /// each chunk, and nothing is buffered beyond a chunk's worth of the stream's own items.
    ///
    /// Blobs up to [`ClientOptions::monolithic_max`](crate::ClientOptions::monolithic_max)
    /// go in one `PUT`; larger ones in `PATCH` chunks of `chunk_size`. A 413 (a proxy's body
    /// limit, e.g. nginx `client_max_body_size`) restarts the upload in chunks of
    /// `fallback_chunk_size`, which the client then uses for this registry from the start (a
    /// warning says so, once per registry). A broken upload (connection error, 5xx, 429) is
    /// resumed from the offset the registry reports, or restarted when it reports none, within
    /// the client's retries. The registry checks the digest at the end: a `DIGEST_INVALID`
    /// answer is [`Error::DigestMismatch`].
    pub async fn push_blob<F, S>(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
        size: u64,
        body: F,
    ) -> Result<PushOutcome, Error>
    where
        F: Fn(u64) -> S + Send + Sync,
        S: Stream<Item = io::Result<Bytes>> + Send + 'static,
    {
        let registry = normalize_registry(registry);
        validate(registry, repository, Some(digest))?;
        let blob = Blob {
            registry,
            repository,
            digest,
            size,
        };
        self.upload(blob, &body).await.map_err(|e| blob.error(e))
    }

    async fn upload<F, S>(&self, blob: Blob<'_>, body: &F) -> Result<PushOutcome, Error>
    where
        F: Fn(u64) -> S + Send + Sync,
        S: Stream<Item = io::Result<Bytes>> + Send + 'static,
    {
        let settings = &self.inner.push;
        let sent = Arc::new(AtomicU64::new(0));
        let mut restarts = 0;
        // Failures recovered from so far (resumes and restarts), bounded by the retries.
        let mut failures = 0;
        'session: loop {
            let small = settings.remembered(blob.registry);
            let chunked = small.is_some() || blob.size > settings.monolithic_max;
            let chunk_size = small.unwrap_or(settings.chunk_size);
            let mut url = self.start_upload(blob).await?;
            let mut offset = 0;
            let mut source = Source::shared(body(0), blob.size, Arc::clone(&sent));
            loop {
                let result = if !chunked {
                    self.put_blob(blob, &url, Some((&source, blob.size))).await
                } else if offset < blob.size {
                    let len = chunk_size.min(blob.size - offset);
                    self.patch_blob(blob, &url, &source, offset, len).await
                } else {
                    self.put_blob::<S>(blob, &url, None).await
                };
                let failure = match result {
                    Ok(Next::Done) => {
                        return Ok(PushOutcome {
                            bytes_sent: sent.load(Ordering::Relaxed),
                            chunked,
                            restarts,
                        })
                    }
                    Ok(Next::Continue(next)) => {
                        url = next;
                        offset += chunk_size.min(blob.size - offset);
                        continue;
                    }
                    Err(failure) => failure,
                };
                // The stream's own failure wins over the transport error it caused.
                let failure = match source.lock().await.failed.take() {
                    Some(e) => Failure::Source(e),
                    None => failure,
                };
                match failure {
                    Failure::TooLarge(e) => {
                        if chunk_size <= settings.fallback_chunk_size && chunked {
                            return Err(too_large_hint(e, chunk_size));
                        }
                        if settings.remember_fallback(blob.registry) {
                            tracing::warn!(
                                registry = blob.registry,
                                chunk_size = settings.fallback_chunk_size,
                                "`{}` refused a request body as too large (413), most likely a \
                                 proxy's body limit: uploading to it in chunks of {} bytes from \
                                 now on",
                                blob.registry,
                                settings.fallback_chunk_size
                            );
                        }
                        self.cancel_upload(blob.registry, blob.repository, url)
                            .await;
                        restarts += 1;
                        continue 'session;
                    }
                    Failure::Source(e) => {
                        self.cancel_upload(blob.registry, blob.repository, url)
                            .await;
                        return Err(blob.source_error(e));
                    }
                    Failure::Fatal(e) => {
                        self.cancel_upload(blob.registry, blob.repository, url)
                            .await;
                        return Err(e);
                    }
                    Failure::Broken(e) | Failure::Lost(e) if failures >= self.inner.retries => {
                        self.cancel_upload(blob.registry, blob.repository, url)
                            .await;
                        return Err(e);
                    }
                    Failure::Broken(e) => {
                        self.pause(&e, failures, &url).await;
                        failures += 1;
                        // The last request may have completed before its answer was lost.
                        if offset >= blob.size || !chunked {
                            if let Ok(Some(_)) = self
                                .blob_exists(blob.registry, blob.repository, blob.digest)
                                .await
                            {
                                return Ok(PushOutcome {
                                    bytes_sent: sent.load(Ordering::Relaxed),
                                    chunked,
                                    restarts,
                                });
                            }
                        }
                        if chunked {
                            if let Some((next, at)) = self.upload_status(blob, &url).await {
                                tracing::debug!(
                                    registry = blob.registry,
                                    digest = blob.digest,
                                    offset = at,
                                    "resuming the upload"
                                );
                                url = next;
                                offset = at;
                                source =
                                    Source::shared(body(at), blob.size - at, Arc::clone(&sent));
                                continue;
                            }
                        }
                        self.cancel_upload(blob.registry, blob.repository, url)
                            .await;
                        restarts += 1;
                        continue 'session;
                    }
                    Failure::Lost(e) => {
                        self.pause(&e, failures, &url).await;
                        failures += 1;
                        self.cancel_upload(blob.registry, blob.repository, url)
                            .await;
                        restarts += 1;
                        continue 'session;
                    }
                }
            }
        }
    }

    /// Waits before recovering from `e` (the registry's `Retry-After`, else the backoff).
    async fn pause(&self, e: &Error, failures: u32, url: &Url) {
        let delay = e
            .retry_after()
            .unwrap_or_else(|| retry::backoff(self.inner.retry_base_delay, failures));
        let mut shown = url.clone();
        shown.set_query(None);
        tracing::warn!(
            url = %shown,
            attempt = failures + 1,
            of = self.inner.retries,
            ?delay,
            error = %summary(e),
            "upload failed, trying again"
        );
        tokio::time::sleep(delay).await;
    }

    /// `<endpoint><repository>/blobs/uploads/`.
    fn uploads_url(&self, registry: &str, repository: &str) -> Result<Url, Error> {
        let mut url = self.repo_url(registry, repository, "blobs", "uploads")?;
        url.path_segments_mut()
            .expect("an http(s) URL has a path")
            .push("");
        Ok(url)
    }

    /// Opens an upload session: its URL.
    async fn start_upload(&self, blob: Blob<'_>) -> Result<Url, Error> {
        let mut call = blob.call(
            Method::POST,
            self.uploads_url(blob.registry, blob.repository)?,
            HeaderMap::new(),
        );
        call.body = Some(Bytes::new());
        let what = format!("blob `{}`", blob.digest);
        self.retrying(&call.url, || async {
            let resp = self.send(&call).await.map_err(|e| push_denied(e, &what))?;
            let resp = self
                .check(resp, &call, "repository", "")
                .await
                .map_err(|e| push_denied(e, &what))?;
            location(&resp, &call.url).ok_or_else(|| Error::Protocol {
                url: call.url.to_string(),
                message: format!(
                    "the upload was answered {} without a `Location`",
                    resp.status()
                ),
            })
        })
        .await
    }

    /// `PATCH`es the next `len` bytes at `offset`.
    async fn patch_blob<S>(
        &self,
        blob: Blob<'_>,
        url: &Url,
        source: &SharedSource<S>,
        offset: u64,
        len: u64,
    ) -> Result<Next, Failure>
    where
        S: Stream<Item = io::Result<Bytes>> + Send + 'static,
    {
        let mut headers = octet_stream(len);
        headers.insert(
            CONTENT_RANGE,
            HeaderValue::from_str(&format!("{offset}-{}", offset + len - 1)).expect("ASCII"),
        );
        let call = blob.call(Method::PATCH, url.clone(), headers);
        let resp = self.send_body(blob, &call, chunk_body(source, len)).await?;
        Ok(Next::Continue(
            location(&resp, url).unwrap_or_else(|| url.clone()),
        ))
    }

    /// Closes the session with `PUT ?digest=`, with the whole blob (`Some`) or nothing.
    async fn put_blob<S>(
        &self,
        blob: Blob<'_>,
        url: &Url,
        body: Option<(&SharedSource<S>, u64)>,
    ) -> Result<Next, Failure>
    where
        S: Stream<Item = io::Result<Bytes>> + Send + 'static,
    {
        let mut put = url.clone();
        put.query_pairs_mut().append_pair("digest", blob.digest);
        let len = body.map_or(0, |(_, len)| len);
        let call = blob.call(Method::PUT, put, octet_stream(len));
        let body = match body {
            Some((source, len)) => chunk_body(source, len),
            None => reqwest::Body::from(Bytes::new()),
        };
        self.send_body(blob, &call, body).await?;
        Ok(Next::Done)
    }

    /// Sends one request of an upload and sorts its failure.
    async fn send_body(
        &self,
        blob: Blob<'_>,
        call: &Call<'_>,
        body: reqwest::Body,
    ) -> Result<reqwest::Response, Failure> {
        let resp = match self.send_streaming(call, body).await {
            Ok(resp) => resp,
            Err(e) if e.is_retryable() => return Err(Failure::Broken(e)),
            Err(e) => return Err(Failure::Fatal(e)),
        };
        let status = resp.status();
        let stale_token = status == StatusCode::UNAUTHORIZED;
        let e = match self.check(resp, call, "blob upload", blob.digest).await {
            Ok(resp) => return Ok(resp),
            Err(e) => e,
        };
        Err(match (status, &e) {
            (StatusCode::PAYLOAD_TOO_LARGE, _) => Failure::TooLarge(e),
            (StatusCode::RANGE_NOT_SATISFIABLE, _) | (StatusCode::NOT_FOUND, _) => Failure::Lost(e),
            (
                _,
                Error::Server {
                    code: Some(ErrorCode::DigestInvalid),
                    ..
                },
            ) => Failure::Fatal(Error::DigestMismatch {
                what: format!(
                    "blob pushed to `{}/{}` ({} bytes)",
                    blob.registry, blob.repository, blob.size
                ),
                expected: blob.digest.to_owned(),
                actual: "a different digest (the registry answered DIGEST_INVALID)".into(),
            }),
            (
                _,
                Error::Server {
                    code: Some(ErrorCode::BlobUploadInvalid | ErrorCode::BlobUploadUnknown),
                    ..
                },
            ) => Failure::Lost(e),
            // A token that worked for the previous request was refused (expired early,
            // revoked): the status request gets a new one, then the upload goes on.
            _ if stale_token && !is_insufficient_scope(&e) => Failure::Broken(e),
            _ if e.is_retryable() => Failure::Broken(e),
            _ => Failure::Fatal(push_denied(e, &format!("blob `{}`", blob.digest))),
        })
    }

    /// Where a broken upload stands (`GET` on the session: `Range: 0-<last>`): the URL to go
    /// on with and the offset, or `None` when the registry cannot tell (then start over).
    async fn upload_status(&self, blob: Blob<'_>, url: &Url) -> Option<(Url, u64)> {
        let call = blob.call(Method::GET, url.clone(), HeaderMap::new());
        let resp = self.send(&call).await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        let range = header(resp.headers(), RANGE.as_str())?;
        let range = range.strip_prefix("bytes=").unwrap_or(&range);
        let (start, end) = range.split_once('-')?;
        let (start, end): (u64, u64) = (start.trim().parse().ok()?, end.trim().parse().ok()?);
        // distribution answers `0-0` for both 0 and 1 byte received: take 0 (a wrong guess
        // is answered 416, and the upload starts over).
        let at = if end == 0 { 0 } else { end + 1 };
        if start != 0 || at > blob.size {
            return None;
        }
        let next = location(&resp, url).unwrap_or_else(|| url.clone());
        Some((next, at))
    }

    /// Cancels an upload session (`DELETE`), best effort: a registry purges abandoned
    /// sessions anyway.
    async fn cancel_upload(&self, registry: &str, repository: &str, url: Url) {
        let call = Call {
            method: Method::DELETE,
            registry,
            repository,
            scopes: vec![Scope::push(repository)],
            url,
            headers: HeaderMap::new(),
            body: None,
        };
        if let Err(e) = self.send(&call).await {
            tracing::debug!(registry, repository, error = %summary(&e), "cancelling an upload failed");
        }
    }

    /// Pushes a manifest or index (`PUT /v2/<repo>/manifests/<reference>`, `Content-Type:
    /// <media_type>`) by tag or digest; returns its digest, checked against the registry's
    /// `Docker-Content-Digest`.
    ///
    /// Every blob and child manifest it references must be in `repository` already.
    pub async fn put_manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<String, Error> {
        self.push_manifest(registry, repository, reference, media_type, bytes)
            .await
            .map(|pushed| pushed.digest)
    }

    /// [`Client::put_manifest`], with what else the registry answered: whether it indexed
    /// the manifest's `subject` (`OCI-Subject`).
    pub async fn push_manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<PushedManifest, Error> {
        let registry = normalize_registry(registry);
        validate(registry, repository, Some(reference))?;
        let digest = sha256_digest(&bytes);
        let what = format!(
            "manifest `{}`",
            display_reference(registry, repository, reference)
        );
        if reference.contains(':') && reference != digest {
            return Err(Error::DigestMismatch {
                what,
                expected: reference.to_owned(),
                actual: digest,
            });
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_str(media_type).map_err(|_| Error::Protocol {
                url: display_reference(registry, repository, reference),
                message: format!("`{media_type}` is not a valid media type"),
            })?,
        );
        let call = Call {
            method: Method::PUT,
            registry,
            repository,
            scopes: vec![Scope::push(repository)],
            url: self.repo_url(registry, repository, "manifests", reference)?,
            headers,
            body: Some(bytes),
        };
        let denied = |e| push_denied(e, &format!("manifest `{reference}`"));
        self.retrying(&call.url, || async {
            let resp = self.send(&call).await.map_err(denied)?;
            let resp = self
                .check(resp, &call, "manifest", reference)
                .await
                .map_err(denied)?;
            match header(resp.headers(), "docker-content-digest") {
                Some(announced) if announced != digest => Err(Error::DigestMismatch {
                    what: format!("{what} (`Docker-Content-Digest` of the push)"),
                    expected: digest.clone(),
                    actual: announced,
                }),
                _ => Ok(PushedManifest {
                    digest: digest.clone(),
                    subject: header(resp.headers(), "oci-subject"),
                }),
            }
        })
        .await
    }

    /// Whether `repository` has the manifest `reference` (`HEAD`, with the manifest
    /// `Accept` list): its digest, or `None` on 404.
    pub async fn manifest_exists(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
    ) -> Result<Option<String>, Error> {
        let registry = normalize_registry(registry);
        let call = self.manifest_call(
            Method::HEAD,
            registry,
            repository,
            reference,
            Scope::push(repository),
        )?;
        let found = self
            .retrying(&call.url, || async {
                let resp = self.send(&call).await?;
                match self.check(resp, &call, "manifest", reference).await {
                    Ok(resp) => Ok(Some(header(resp.headers(), "docker-content-digest"))),
                    Err(e) if e.is_not_found() => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await?;
        match found {
            None => Ok(None),
            Some(Some(digest)) if digest.starts_with("sha256:") => Ok(Some(digest)),
            // No digest in the answer (allowed by the spec): fetch the manifest to hash it.
            Some(_) => Ok(Some(
                self.get_manifest(registry, repository, reference)
                    .await?
                    .digest,
            )),
        }
    }
}

/// `Content-Type: application/octet-stream` (distribution answers 400 to anything else on
/// an upload) and `Content-Length`.
fn octet_stream(len: u64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    headers
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The `Location` of `resp`, resolved against the URL asked (it may be relative); its query
/// (distribution's signed `_state`) is kept.
fn location(resp: &reqwest::Response, base: &Url) -> Option<Url> {
    let value = header(resp.headers(), LOCATION.as_str())?;
    base.join(&value).ok()
}

fn is_insufficient_scope(e: &Error) -> bool {
    matches!(e, Error::Unauthorized { message, .. } if message.contains("insufficient_scope"))
}

/// A refusal to push, told as such: a 403, or a token granted without `push`.
fn push_denied(e: Error, what: &str) -> Error {
    match e {
        Error::Denied {
            registry,
            repository,
            message,
        } => Error::PushDenied {
            registry,
            repository,
            what: what.to_owned(),
            message,
        },
        Error::Unauthorized {
            registry,
            repository,
            credentials: true,
            message,
        } if message.contains("insufficient_scope") => Error::PushDenied {
            registry,
            repository,
            what: what.to_owned(),
            message,
        },
        e => e,
    }
}

/// A 413 even at the fallback chunk size: the limit is lower than that.
fn too_large_hint(e: Error, chunk_size: u64) -> Error {
    match e {
        Error::Server {
            url,
            status,
            code,
            message,
            retry_after,
        } => Error::Server {
            url,
            status,
            code,
            message: format!(
                "{message}\n  hint: a proxy in front of the registry limits request bodies to \
                 less than {chunk_size} bytes: raise its limit (nginx `client_max_body_size`) \
                 or lower the fallback chunk size"
            ),
            retry_after,
        },
        e => e,
    }
}
