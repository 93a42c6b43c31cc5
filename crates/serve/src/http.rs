//! The read-only side of the OCI distribution API (v1.1, "pull" and "content discovery"),
//! over hyper's HTTP/1.1 server.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use airlock_layout::media;
use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Empty, Full, StreamBody};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite};

use super::blob::{Blob, BlobState, SMALL_BLOB};
use super::{AccessLog, Catalog, ServeError, ServeReporter};

type BoxBody = UnsyncBoxBody<Bytes, io::Error>;

const API_VERSION: &str = "registry/2.0";

pub(crate) struct State {
    pub(crate) catalog: Catalog,
    pub(crate) reporter: Arc<dyn ServeReporter>,
    /// How long a request's head may take to arrive (slow or silent clients).
    pub(crate) header_timeout: Duration,
}

/// Serves one connection (HTTP/1.1, keep-alive).
pub(crate) fn connection<I>(
    io: TokioIo<I>,
    state: Arc<State>,
    peer: SocketAddr,
) -> hyper::server::conn::http1::Connection<TokioIo<I>, Service>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        // A client that opens connections and sends no request, or sends it a byte at a time,
        // does not keep them forever.
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(state.header_timeout)
        .serve_connection(io, Service { state, peer })
}

/// The service of one connection: every request answered, its access line logged.
pub(crate) struct Service {
    state: Arc<State>,
    peer: SocketAddr,
}

impl hyper::service::Service<Request<Incoming>> for Service {
    type Response = Response<Logged>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Logged>, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let (state, peer) = (self.state.clone(), self.peer);
        Box::pin(async move {
            let started = Instant::now();
            let method = req.method().to_string();
            let path = req
                .uri()
                .path_and_query()
                .map_or_else(|| req.uri().path().to_string(), |p| p.to_string());
            let resp = handle(&state, req).await;
            let status = resp.status().as_u16();
            Ok(resp.map(|body| Logged {
                body,
                line: Some(AccessLog {
                    peer,
                    method,
                    path,
                    status,
                    bytes: 0,
                    millis: 0,
                    aborted: false,
                }),
                started,
                finished: false,
                reporter: state.reporter.clone(),
            }))
        })
    }
}

/// A response body that writes the access log line when it is done (or dropped).
pub(crate) struct Logged {
    body: BoxBody,
    line: Option<AccessLog>,
    started: Instant,
    /// The body ended (streams do not say so through `is_end_stream`).
    finished: bool,
    reporter: Arc<dyn ServeReporter>,
}

impl Body for Logged {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if let Some(line) = &mut self.line {
            match &polled {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(d) = frame.data_ref() {
                        line.bytes += d.len() as u64;
                    }
                }
                Poll::Ready(Some(Err(_))) => line.aborted = true,
                Poll::Ready(None) => self.finished = true,
                Poll::Pending => {}
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        if let Some(mut line) = self.line.take() {
            // Dropped before its end: the client went away (or the connection was cut).
            if !self.finished && !self.body.is_end_stream() && line.method != "HEAD" {
                line.aborted = true;
            }
            line.millis = self.started.elapsed().as_millis() as u64;
            self.reporter.access(&line);
        }
    }
}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    Base,
    Catalog,
    Tags(&'a str),
    Manifest(&'a str, &'a str),
    Blob(&'a str, &'a str),
    Referrers(&'a str, &'a str),
    /// `/files/NAME`: a file of a bundle; `/files/` lists them.
    File(&'a str),
    Upload,
    Other,
}

/// The route of a request path. The reference or digest is the last segment and the kind
/// the one before it: a repository name may itself hold `manifests`, `blobs` or `uploads`
/// components (`team/blobs/cache` is a valid name).
fn route(path: &str) -> Route<'_> {
    if let Some(name) = path.strip_prefix("/files/") {
        return Route::File(name);
    }
    if path == "/v2" || path == "/v2/" {
        return Route::Base;
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return Route::Other;
    };
    if rest == "_catalog" {
        return Route::Catalog;
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Route::Tags(name);
    }
    let Some((head, last)) = rest.rsplit_once('/') else {
        return Route::Other;
    };
    let (name, kind) = head.rsplit_once('/').unwrap_or(("", head));
    match kind {
        "manifests" if !name.is_empty() => Route::Manifest(name, last),
        "blobs" if !name.is_empty() && last == "uploads" => Route::Upload,
        "blobs" if !name.is_empty() => Route::Blob(name, last),
        "referrers" if !name.is_empty() => Route::Referrers(name, last),
        // `NAME/blobs/uploads/` and `NAME/blobs/uploads/ID`.
        "uploads" if name.ends_with("/blobs") && name.len() > "/blobs".len() => Route::Upload,
        _ => Route::Other,
    }
}

/// The value of `key` in a query string, percent-decoded (`+` is a space), as clients that
/// build queries with their URL library send them (Go's `url.Values` writes `/` as `%2F`).
fn query_value(query: Option<&str>, key: &str) -> Option<String> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| decode_component(k) == key)
        .map(|(_, v)| decode_component(v))
}

fn query(req: &Request<Incoming>, key: &str) -> Option<String> {
    query_value(req.uri().query(), key)
}

/// `application/x-www-form-urlencoded` decoding of one key or value; a `%` not followed by
/// two hex digits stays as it is.
fn decode_component(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn full(bytes: impl Into<Bytes>) -> BoxBody {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

fn empty() -> BoxBody {
    Empty::new()
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

fn base(status: StatusCode) -> hyper::http::response::Builder {
    Response::builder()
        .status(status)
        .header("Docker-Distribution-API-Version", API_VERSION)
}

/// The OCI error envelope.
fn error(status: StatusCode, code: &str, message: &str, head: bool) -> Response<BoxBody> {
    let doc = json!({"errors": [{"code": code, "message": message}]}).to_string();
    base(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, doc.len())
        .body(if head { empty() } else { full(doc) })
        .expect("valid response")
}

fn json_response(doc: serde_json::Value, head: bool) -> Response<BoxBody> {
    let text = doc.to_string();
    base(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, text.len())
        .body(if head { empty() } else { full(text) })
        .expect("valid response")
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<BoxBody> {
    let path = req.uri().path().to_string();
    let r = route(&path);
    let head = req.method() == Method::HEAD;
    if req.method() != Method::GET && !head {
        let mut resp = error(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "this registry is read-only: `airlock serve` serves a bundle and accepts no writes",
            false,
        );
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return resp;
    }
    let ns = query(&req, "ns");
    let ns = ns.as_deref();
    let cat = &state.catalog;
    match r {
        Route::Base => json_response(json!({}), head),
        Route::Catalog => {
            let names: Vec<&String> = cat.repos.keys().collect();
            match paginate(
                &names,
                query(&req, "n").as_deref(),
                query(&req, "last").as_deref(),
            ) {
                Err(n) => pagination_invalid(n, head),
                Ok((page, next)) => with_next(
                    json_response(json!({ "repositories": page }), head),
                    &path,
                    next,
                    &req,
                ),
            }
        }
        Route::Tags(name) => match cat.repo(name, ns) {
            None => name_unknown(name, head),
            Some(repo) => {
                let tags: Vec<&String> = repo.tags.keys().collect();
                match paginate(
                    &tags,
                    query(&req, "n").as_deref(),
                    query(&req, "last").as_deref(),
                ) {
                    Err(n) => pagination_invalid(n, head),
                    Ok((page, next)) => with_next(
                        json_response(json!({ "name": name, "tags": page }), head),
                        &path,
                        next,
                        &req,
                    ),
                }
            }
        },
        Route::Manifest(name, reference) => {
            let Some(repo) = cat.repo(name, ns) else {
                return name_unknown(name, head);
            };
            let found = match reference.parse::<airlock_layout::Digest>() {
                Ok(d) if reference.contains(':') => repo.manifests.get(&d).map(|m| (d, m)),
                _ => repo
                    .tags
                    .get(reference)
                    .and_then(|d| repo.manifests.get(d).map(|m| (d.clone(), m))),
            };
            match found {
                None => error(
                    StatusCode::NOT_FOUND,
                    "MANIFEST_UNKNOWN",
                    &format!("manifest `{reference}` is not in `{name}`"),
                    head,
                ),
                Some((digest, m)) => base(StatusCode::OK)
                    .header(header::CONTENT_TYPE, m.media_type.as_str())
                    .header("Docker-Content-Digest", digest.to_string())
                    .header(header::ETAG, format!("\"{digest}\""))
                    .header(header::CONTENT_LENGTH, m.bytes.len())
                    .body(if head { empty() } else { full(m.bytes.clone()) })
                    .expect("valid response"),
            }
        }
        Route::Blob(name, digest) => {
            let Some(repo) = cat.repo(name, ns) else {
                return name_unknown(name, head);
            };
            let parsed = digest.parse::<airlock_layout::Digest>().ok();
            // Manifests are blobs too (some clients fetch them so).
            if let Some(m) = parsed.as_ref().and_then(|d| repo.manifests.get(d)) {
                let range = req.headers().get(header::RANGE).cloned();
                return bytes_response(m.bytes.clone(), digest, range.as_ref(), head);
            }
            let blob = parsed
                .filter(|d| repo.blobs.contains(d))
                .and_then(|d| cat.blobs.get(&d));
            match blob {
                None => error(
                    StatusCode::NOT_FOUND,
                    "BLOB_UNKNOWN",
                    &format!("blob `{digest}` is not in `{name}`"),
                    head,
                ),
                Some(b) => blob_response(state, b, &req, head).await,
            }
        }
        Route::Referrers(name, digest) => {
            let Some(repo) = cat.repo(name, ns) else {
                return name_unknown(name, head);
            };
            let Ok(subject) = digest.parse::<airlock_layout::Digest>() else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "DIGEST_INVALID",
                    &format!("`{digest}` is not a digest"),
                    head,
                );
            };
            referrers(
                repo.referrers.get(&subject),
                query(&req, "artifactType"),
                head,
            )
        }
        Route::File("") => {
            let mut text = String::new();
            for name in cat.files.keys() {
                text.push_str(name);
                text.push('\n');
            }
            base(StatusCode::OK)
                .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .header(header::CONTENT_LENGTH, text.len())
                .body(if head { empty() } else { full(text) })
                .expect("valid response")
        }
        Route::File(name) => match cat.files.get(name) {
            None => error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                &format!("file `{name}` is not served here (`/files/` lists them)"),
                head,
            ),
            Some(b) => blob_response(state, b, &req, head).await,
        },
        Route::Upload => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "this registry is read-only: `airlock serve` serves a bundle and accepts no writes",
            head,
        ),
        Route::Other => error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "not a distribution API path",
            head,
        ),
    }
}

/// The referrers API's answer (OCI distribution 1.1, "Listing Referrers"): an index of the
/// manifests whose `subject` is the digest asked for, empty when there are none, only those
/// of `artifact_type` when asked, saying so in `OCI-Filters-Applied`.
fn referrers(
    listed: Option<&Vec<serde_json::Value>>,
    artifact_type: Option<String>,
    head: bool,
) -> Response<BoxBody> {
    let manifests: Vec<&serde_json::Value> = listed
        .into_iter()
        .flatten()
        .filter(|d| {
            artifact_type
                .as_deref()
                .is_none_or(|t| d["artifactType"].as_str() == Some(t))
        })
        .collect();
    let doc = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": manifests,
    });
    let bytes = serde_json::to_vec(&doc).expect("a JSON value serialises");
    let mut resp = base(StatusCode::OK)
        .header(header::CONTENT_TYPE, media::OCI_INDEX)
        .header(header::CONTENT_LENGTH, bytes.len());
    if artifact_type.is_some() {
        resp = resp.header("OCI-Filters-Applied", "artifactType");
    }
    resp.body(if head { empty() } else { full(bytes) })
        .expect("valid response")
}

fn name_unknown(name: &str, head: bool) -> Response<BoxBody> {
    error(
        StatusCode::NOT_FOUND,
        "NAME_UNKNOWN",
        &format!("repository `{name}` is not served here"),
        head,
    )
}

/// A page of a list, and the `n` and `last` of the next one.
type Page<'a> = (Vec<&'a String>, Option<(usize, &'a String)>);

/// The largest `n` a list request may ask for: distribution 2.8's default `maxentries`, which
/// answers more with `400 PAGINATION_NUMBER_INVALID`.
const MAX_PAGE: usize = 1000;

/// `n` and `last` of the distribution API's pagination: the page, and the `n` and `last` of
/// the next page when `n` cut the list; `Err(n)` for an `n` that is not a number from 0 to
/// [`MAX_PAGE`]. No `n` (or an empty one) gives the whole list after `last`.
fn paginate<'a, 'q>(
    items: &[&'a String],
    n: Option<&'q str>,
    last: Option<&str>,
) -> Result<Page<'a>, &'q str> {
    let start = last.map_or(0, |l| items.partition_point(|i| i.as_str() <= l));
    let rest = &items[start.min(items.len())..];
    let n = match n.filter(|n| !n.is_empty()) {
        None => return Ok((rest.to_vec(), None)),
        Some(raw) => match raw.parse::<usize>() {
            // Only digits: `usize::from_str` also takes a leading `+`.
            Ok(n) if n <= MAX_PAGE && raw.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return Err(raw),
        },
    };
    let page: Vec<&String> = rest.iter().take(n).copied().collect();
    let next = (rest.len() > n && n > 0).then(|| (n, page[n - 1]));
    Ok((page, next))
}

fn pagination_invalid(n: &str, head: bool) -> Response<BoxBody> {
    error(
        StatusCode::BAD_REQUEST,
        "PAGINATION_NUMBER_INVALID",
        &format!(
            "invalid number of results requested: `n={n}` (a number from 0 to {MAX_PAGE}; no \
             `n` lists everything)"
        ),
        head,
    )
}

/// The `Link: <…?last=…&n=…>; rel="next"` header of a cut list, as the distribution API says.
fn with_next(
    mut resp: Response<BoxBody>,
    path: &str,
    next: Option<(usize, &String)>,
    req: &Request<Incoming>,
) -> Response<BoxBody> {
    if let Some((n, last)) = next {
        let mut link = format!("<{path}?last={}&n={n}", encode_query(last));
        if let Some(ns) = query(req, "ns") {
            link.push_str(&format!("&ns={}", encode_query(&ns)));
        }
        link.push_str(">; rel=\"next\"");
        if let Ok(v) = HeaderValue::from_str(&link) {
            resp.headers_mut().insert(header::LINK, v);
        }
    }
    resp
}

/// Percent-encodes what a repository name or tag may hold beyond unreserved characters.
fn encode_query(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `Range: bytes=…` of a blob of `size` bytes: `Ok(None)` for no (or an ignored) range,
/// `Ok(Some(start..end))`, or `Err(())` when it cannot be satisfied.
fn parse_range(value: Option<&HeaderValue>, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = value
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Ok(None);
    };
    if spec.contains(',') {
        // Several ranges: answered with the whole blob, which RFC 9110 allows.
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        let suffix = digits(b).ok_or(())?;
        if suffix == 0 {
            return Err(());
        }
        (size.saturating_sub(suffix), size)
    } else {
        let start = digits(a).ok_or(())?;
        let end = if b.is_empty() {
            size
        } else {
            digits(b).ok_or(())?.saturating_add(1).min(size)
        };
        (start, end)
    };
    if start >= size || start >= end {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// RFC 9110's `1*DIGIT`: digits only (no sign, no space), saturating at `u64::MAX`: a last
/// position past any blob is as good as its end.
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

fn unsatisfiable(size: u64) -> Response<BoxBody> {
    let mut r = error(
        StatusCode::RANGE_NOT_SATISFIABLE,
        "RANGE_INVALID",
        "the range is outside the blob",
        false,
    );
    r.headers_mut().insert(
        header::CONTENT_RANGE,
        HeaderValue::from_str(&format!("bytes */{size}")).expect("ascii"),
    );
    r
}

fn blob_headers(
    digest: &str,
    size: u64,
    range: Option<(u64, u64)>,
) -> hyper::http::response::Builder {
    let b = match range {
        None => base(StatusCode::OK).header(header::CONTENT_LENGTH, size),
        Some((s, e)) => base(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_LENGTH, e - s)
            .header(header::CONTENT_RANGE, format!("bytes {s}-{}/{size}", e - 1)),
    };
    b.header(header::CONTENT_TYPE, "application/octet-stream")
        .header("Docker-Content-Digest", digest)
        .header(header::ETAG, format!("\"{digest}\""))
        .header(header::ACCEPT_RANGES, "bytes")
}

fn bytes_response(
    bytes: Bytes,
    digest: &str,
    range: Option<&HeaderValue>,
    head: bool,
) -> Response<BoxBody> {
    let size = bytes.len() as u64;
    let range = match parse_range(range, size) {
        Ok(r) => r,
        Err(()) => return unsatisfiable(size),
    };
    let body = match (head, range) {
        (true, _) => empty(),
        (false, None) => full(bytes),
        (false, Some((s, e))) => full(bytes.slice(s as usize..e as usize)),
    };
    blob_headers(digest, size, range)
        .body(body)
        .expect("valid response")
}

fn refused(blob: &Blob, head: bool) -> Response<BoxBody> {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "BLOB_UNKNOWN",
        &format!(
            "blob `{}` of the bundle `{}` does not match the digest its signed manifest lists \
             ({}); it is not served. Check the bundle with `airlock verify`",
            blob.record.digest,
            blob.bundle().display(),
            blob.reason()
        ),
        head,
    )
}

fn stream_body(s: impl Stream<Item = io::Result<Bytes>> + Send + 'static) -> BoxBody {
    StreamBody::new(s.map(|r| r.map(Frame::data))).boxed_unsync()
}

async fn blob_response(
    state: &State,
    blob: &Arc<Blob>,
    req: &Request<Incoming>,
    head: bool,
) -> Response<BoxBody> {
    let digest = blob.record.digest.to_string();
    if let Some(bytes) = &blob.small {
        return bytes_response(
            bytes.clone(),
            &digest,
            req.headers().get(header::RANGE),
            head,
        );
    }
    let size = blob.record.size;
    if blob.state() == BlobState::Bad {
        return refused(blob, head);
    }
    let range = match parse_range(req.headers().get(header::RANGE), size) {
        Ok(r) => r,
        Err(()) => return unsatisfiable(size),
    };
    if head {
        return blob_headers(&digest, size, range)
            .body(empty())
            .expect("valid response");
    }
    let reporter = state.reporter.clone();
    let bundle: Arc<Path> = Arc::from(blob.bundle());
    let d = digest.clone();
    let on_bad = move |reason: &str| reporter.blob_refused(&d, &bundle, reason);
    if size <= SMALL_BLOB {
        // Read whole and, until checked once, hashed before anything is sent: a small blob
        // is answered in full or refused, and never waits for a large blob's checking pass.
        return match blob.read_whole(on_bad).await {
            Some(bytes) => bytes_response(bytes, &digest, req.headers().get(header::RANGE), head),
            None => refused(blob, head),
        };
    }
    if let (BlobState::Unverified, Some(_)) = (blob.state(), range) {
        // A range of a blob whose check has not ended: served once the check passed (one
        // pass for all requests; the others wait for its outcome).
        if blob.check(on_bad.clone()).await != BlobState::Verified {
            return refused(blob, head);
        }
    }
    // A full read of an unchecked blob starts (or joins) the check and streams meanwhile;
    // reading slots are taken frame by frame by the stream, not held for the response.
    let check = (blob.state() == BlobState::Unverified).then(|| blob.check(on_bad));
    if blob.state() == BlobState::Bad {
        return refused(blob, head);
    }
    let (s, e) = range.unwrap_or((0, size));
    let body = stream_body(blob.stream(s, e, check));
    blob_headers(&digest, size, range)
        .body(body)
        .expect("valid response")
}

/// A TLS acceptor from PEM files (rustls with ring; HTTP/1.1 by ALPN).
pub(crate) fn tls_acceptor(
    cert: &Path,
    key: &Path,
) -> Result<tokio_rustls::TlsAcceptor, ServeError> {
    use tokio_rustls::rustls::pki_types::pem::PemObject as _;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls::{crypto, ServerConfig};
    let bad = |path: &Path, problem: String| ServeError::Tls {
        path: path.to_owned(),
        problem,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad(cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(bad(cert, "no PEM certificate in it".into()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, e.to_string()))?;
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(cert, e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key_der)
            .map_err(|e| bad(key, e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("/v2/"), Route::Base);
        assert_eq!(route("/v2/_catalog"), Route::Catalog);
        assert_eq!(
            route("/v2/registry.k8s.io/pause/tags/list"),
            Route::Tags("registry.k8s.io/pause")
        );
        assert_eq!(
            route("/v2/registry.k8s.io/pause/manifests/3.9"),
            Route::Manifest("registry.k8s.io/pause", "3.9")
        );
        assert_eq!(
            route("/v2/a/b/blobs/sha256:00"),
            Route::Blob("a/b", "sha256:00")
        );
        assert_eq!(route("/v2/a/blobs/uploads/"), Route::Upload);
        assert_eq!(route("/files/"), Route::File(""));
        assert_eq!(
            route("/files/kubernetes/v1.35.2/linux/amd64/kubeadm"),
            Route::File("kubernetes/v1.35.2/linux/amd64/kubeadm")
        );
        assert_eq!(
            route("/v2/a/b/referrers/sha256:00"),
            Route::Referrers("a/b", "sha256:00")
        );
        assert_eq!(route("/other"), Route::Other);
        // Regression (found by `prop_routes_find_the_name_and_reference`): a repository name
        // with a `manifests` or `blobs` component was split at it (`0/manifests`'s blob
        // became a manifest of `0`), and one with `blobs/uploads` in it was refused as an
        // upload.
        assert_eq!(
            route("/v2/0/manifests/blobs/sha256:00"),
            Route::Blob("0/manifests", "sha256:00")
        );
        assert_eq!(
            route("/v2/team/blobs/uploads-cache/manifests/1"),
            Route::Manifest("team/blobs/uploads-cache", "1")
        );
        assert_eq!(route("/v2/a/blobs/uploads/0f-1"), Route::Upload);
        assert_eq!(route("/v2/manifests/x"), Route::Other);
    }

    // Regression (found by `prop_query_values_decode_what_clients_encode`): query values were
    // used as sent, so `last=a%2Fb` (how Go's `url.Values` writes `a/b`) matched nothing.
    #[test]
    fn query_values_are_percent_decoded() {
        assert_eq!(
            query_value(Some("n=2&last=fixtures.test%2Ffixtures%2Fbase"), "last").as_deref(),
            Some("fixtures.test/fixtures/base")
        );
        assert_eq!(query_value(Some("a=1+2&b"), "a").as_deref(), Some("1 2"));
        assert_eq!(
            query_value(Some("b&a=%zz%4"), "a").as_deref(),
            Some("%zz%4")
        );
        assert_eq!(query_value(Some("b"), "b").as_deref(), Some(""));
        assert_eq!(query_value(None, "a"), None);
    }

    #[test]
    fn ranges() {
        let v = |s: &str| HeaderValue::from_str(s).unwrap();
        assert_eq!(parse_range(None, 10), Ok(None));
        assert_eq!(parse_range(Some(&v("bytes=0-0")), 10), Ok(Some((0, 1))));
        assert_eq!(parse_range(Some(&v("bytes=2-")), 10), Ok(Some((2, 10))));
        assert_eq!(parse_range(Some(&v("bytes=-3")), 10), Ok(Some((7, 10))));
        assert_eq!(parse_range(Some(&v("bytes=5-100")), 10), Ok(Some((5, 10))));
        assert_eq!(parse_range(Some(&v("bytes=10-")), 10), Err(()));
        assert_eq!(parse_range(Some(&v("bytes=5-2")), 10), Err(()));
        assert_eq!(parse_range(Some(&v("bytes=0-1,3-4")), 10), Ok(None));
        assert_eq!(parse_range(Some(&v("items=0-1")), 10), Ok(None));
        // Regression: a last position beyond `u64` was refused (416) instead of meaning the
        // blob's end, and signs were taken as digits.
        assert_eq!(
            parse_range(Some(&v("bytes=3-99999999999999999999")), 10),
            Ok(Some((3, 10)))
        );
        assert_eq!(parse_range(Some(&v("bytes=+1-2")), 10), Err(()));
        assert_eq!(parse_range(Some(&v("bytes=-+2")), 10), Err(()));
    }

    #[test]
    fn pages() {
        let items: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let refs: Vec<&String> = items.iter().collect();
        let (page, next) = paginate(&refs, Some("2"), None).unwrap();
        assert_eq!(page, vec!["a", "b"]);
        assert_eq!(next, Some((2, &items[1])));
        assert_eq!(paginate(&refs, None, Some("a")).unwrap().0, vec!["b", "c"]);
        assert_eq!(
            paginate(&refs, Some(""), None).unwrap().0,
            vec!["a", "b", "c"]
        );
        assert_eq!(paginate(&refs, Some("3"), None).unwrap().1, None);
        // distribution 2.8: `n=0` is an empty page, more than 1000 is refused.
        assert_eq!(paginate(&refs, Some("0"), None).unwrap(), (vec![], None));
        assert_eq!(paginate(&refs, Some("1000"), None).unwrap().0.len(), 3);
        for bad in [
            "abc",
            "-1",
            "+1",
            "1001",
            "99999999999999999999",
            " 1",
            "1.0",
        ] {
            assert_eq!(paginate(&refs, Some(bad), None), Err(bad), "{bad}");
        }
    }
}

/// Property tests of request handling: paths, `Range` headers, query strings, pagination.
/// `PROPTEST_CASES` sets the number of cases (`cargo xtask fuzz` runs many more).
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    /// A repository name as the distribution spec allows, with components that are also
    /// route words.
    fn name() -> impl Strategy<Value = String> {
        let component = prop_oneof![
            "[a-z0-9]{1,6}([._-][a-z0-9]{1,4}){0,2}",
            Just("manifests".to_string()),
            Just("blobs".to_string()),
            Just("uploads".to_string()),
            Just("tags".to_string()),
            Just("list".to_string()),
            Just("v2".to_string()),
        ];
        prop::collection::vec(component, 1..5).prop_map(|c| c.join("/"))
    }

    fn tag() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_][A-Za-z0-9._-]{0,20}"
    }

    fn digest() -> impl Strategy<Value = String> {
        "[0-9a-f]{64}".prop_map(|h| format!("sha256:{h}"))
    }

    #[derive(Debug, Clone)]
    enum Spec {
        Full(u64, u64),
        From(u64),
        Suffix(u64),
    }

    fn position(size: u64) -> impl Strategy<Value = u64> {
        prop_oneof![
            0..=size.saturating_mul(2).saturating_add(2),
            Just(u64::MAX),
            Just(size),
            Just(size.saturating_sub(1)),
        ]
    }

    /// What RFC 9110 says a single byte range of a blob of `size` bytes is.
    fn model(spec: &Spec, size: u64) -> Result<Option<(u64, u64)>, ()> {
        let (start, end) = match *spec {
            Spec::Full(a, b) if b < a => return Err(()),
            Spec::Full(a, b) => (a, b.saturating_add(1).min(size)),
            Spec::From(a) => (a, size),
            Spec::Suffix(0) => return Err(()),
            Spec::Suffix(n) => (size - n.min(size), size),
        };
        if start >= size {
            return Err(());
        }
        Ok(Some((start, end)))
    }

    /// Form encoding of one key or value, as a URL library writes it.
    fn encode(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::default())]

        #[test]
        fn prop_routes_find_the_name_and_reference(
            name in name(),
            tag in tag(),
            digest in digest(),
            upload in "[a-f0-9-]{0,36}",
        ) {
            let paths = [
                format!("/v2/{name}/manifests/{tag}"),
                format!("/v2/{name}/manifests/{digest}"),
                format!("/v2/{name}/blobs/{digest}"),
                format!("/v2/{name}/tags/list"),
                format!("/v2/{name}/blobs/uploads/{upload}"),
            ];
            prop_assert_eq!(route(&paths[0]), Route::Manifest(&name, &tag));
            prop_assert_eq!(route(&paths[1]), Route::Manifest(&name, &digest));
            prop_assert_eq!(route(&paths[2]), Route::Blob(&name, &digest));
            prop_assert_eq!(route(&paths[3]), Route::Tags(&name));
            prop_assert_eq!(route(&paths[4]), Route::Upload);
        }

        #[test]
        fn prop_any_path_gets_a_route(path in "(/v2)?(/[a-z_:.%-]{0,12}){0,6}/?") {
            let r = route(&path);
            // A name, reference or digest is a part of the path, never more.
            match r {
                Route::Manifest(n, x) | Route::Blob(n, x) => {
                    prop_assert!(path.contains(n) && path.ends_with(x));
                    prop_assert!(!x.contains('/'));
                }
                Route::Tags(n) => prop_assert!(path.contains(n)),
                _ => {}
            }
        }

        #[test]
        fn prop_ranges_follow_rfc_9110(
            size in prop_oneof![0u64..4, 0u64..100_000, Just(u64::MAX / 2)],
            pick in 0u8..3,
            a in any::<u64>(),
            b in any::<u64>(),
            spaces in any::<bool>(),
        ) {
            let (a, b) = (a % size.saturating_mul(2).saturating_add(3), b);
            let b = if b % 4 == 0 { b } else { b % size.saturating_mul(2).saturating_add(3) };
            let spec = match pick {
                0 => Spec::Full(a, b),
                1 => Spec::From(a),
                _ => Spec::Suffix(b),
            };
            let sp = if spaces { " " } else { "" };
            let text = match spec {
                Spec::Full(a, b) => format!("bytes={sp}{a}{sp}-{sp}{b}"),
                Spec::From(a) => format!("bytes={a}-"),
                Spec::Suffix(n) => format!("bytes=-{n}"),
            };
            let value = HeaderValue::from_str(&text).unwrap();
            let got = parse_range(Some(&value), size);
            prop_assert_eq!(got, model(&spec, size), "{}", text);
            if let Ok(Some((s, e))) = got {
                prop_assert!(s < e && e <= size);
            }
        }

        #[test]
        fn prop_any_range_header_is_inside_the_blob_or_refused(
            text in "[ -~]{0,40}",
            size in position(1 << 20),
        ) {
            if let Ok(value) = HeaderValue::from_str(&text) {
                if let Ok(Some((s, e))) = parse_range(Some(&value), size) {
                    prop_assert!(s < e && e <= size, "{} of {}: {}..{}", text, size, s, e);
                }
            }
            let _ = position(size);
        }

        #[test]
        fn prop_query_values_decode_what_clients_encode(
            pairs in prop::collection::vec(("[a-z]{1,3}", "\\PC{0,12}"), 0..5),
            key in "[a-z]{1,3}",
        ) {
            let q: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect();
            let q = q.join("&");
            let want = pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone());
            prop_assert_eq!(query_value(Some(&q), &key), want, "{}", q);
        }

        #[test]
        fn prop_pages_followed_by_their_links_list_everything_once(
            items in prop::collection::btree_set("[a-z0-9/._-]{1,8}", 0..30),
            n in 1usize..7,
            last in prop::option::of("[a-z0-9/._-]{0,8}"),
        ) {
            let items: Vec<String> = items.into_iter().collect();
            let refs: Vec<&String> = items.iter().collect();
            let want: Vec<&String> = refs
                .iter()
                .copied()
                .filter(|i| last.as_ref().is_none_or(|l| i.as_str() > l.as_str()))
                .collect();
            let mut got = Vec::new();
            let mut after = last.clone();
            let n_text = n.to_string();
            for _ in 0..=items.len() {
                let (page, next) = paginate(&refs, Some(&n_text), after.as_deref()).unwrap();
                prop_assert!(page.len() <= n);
                got.extend(page);
                match next {
                    None => break,
                    Some((m, l)) => {
                        prop_assert_eq!(m, n);
                        after = Some(l.clone());
                    }
                }
            }
            prop_assert_eq!(got, want);
        }
    }
}
