//! Protocol edge cases that a real registry does not produce on demand, against a tiny
//! in-process HTTP responder; pushes against real registries and nginx are in `push`.

mod push;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use airlock_registry::{Client, ClientOptions, Credentials, Error, HostConfig, ManifestTypes};
use futures_util::StreamExt as _;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// A request as the fake server saw it.
#[derive(Debug, Clone)]
struct Req {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// A canned response.
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn new(status: u16) -> Resp {
        Resp {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
    fn header(mut self, name: &str, value: &str) -> Resp {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
    fn body(mut self, body: impl Into<Vec<u8>>) -> Resp {
        self.body = body.into();
        self
    }
}

type Handler = Arc<dyn Fn(&Req, usize) -> Resp + Send + Sync>;

/// An HTTP/1.1 server on 127.0.0.1 that answers each request with `handler(request, n)`,
/// `n` counting requests from 0, one request per connection.
struct FakeServer {
    addr: String,
    requests: Arc<Mutex<Vec<Req>>>,
}

impl FakeServer {
    async fn start(handler: impl Fn(&Req, usize) -> Resp + Send + Sync + 'static) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let requests: Arc<Mutex<Vec<Req>>> = Arc::default();
        let handler: Handler = Arc::new(handler);
        let seen = requests.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let handler = handler.clone();
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        if buf[0] == 0x16 {
                            // A TLS ClientHello: answer like an HTTP server does.
                            let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
                            return;
                        }
                    }
                    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    let text = String::from_utf8_lossy(&buf[..end]).into_owned();
                    let mut lines = text.split("\r\n");
                    let mut request_line = lines.next().unwrap_or_default().split(' ');
                    let method = request_line.next().unwrap_or_default().to_owned();
                    let path = request_line.next().unwrap_or_default().to_owned();
                    let headers: HashMap<String, String> = lines
                        .take_while(|l| !l.is_empty())
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                        .collect();
                    // The body, by `Content-Length` (this client never sends chunked ones).
                    let length: usize = headers
                        .get("content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    let mut body = buf[end..].to_vec();
                    while body.len() < length {
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => body.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let req = Req {
                        method,
                        path,
                        headers,
                        body,
                    };
                    let n = {
                        let mut seen = seen.lock().unwrap();
                        seen.push(req.clone());
                        seen.len() - 1
                    };
                    let resp = handler(&req, n);
                    let mut out = format!("HTTP/1.1 {} X\r\n", resp.status);
                    for (k, v) in &resp.headers {
                        out.push_str(&format!("{k}: {v}\r\n"));
                    }
                    out.push_str(&format!(
                        "Content-Length: {}\r\nConnection: close\r\n\r\n",
                        resp.body.len()
                    ));
                    let _ = conn.write_all(out.as_bytes()).await;
                    let _ = conn.write_all(&resp.body).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        FakeServer { addr, requests }
    }

    fn requests(&self) -> Vec<Req> {
        self.requests.lock().unwrap().clone()
    }
}

/// The manifest types airlock gives its clients (`airlock_layout::media::MANIFEST_ACCEPT`).
pub(crate) fn manifest_types() -> ManifestTypes {
    const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    ManifestTypes {
        accept: [
            OCI_INDEX,
            OCI_MANIFEST,
            "application/vnd.docker.distribution.manifest.list.v2+json",
            "application/vnd.docker.distribution.manifest.v2+json",
        ]
        .map(String::from)
        .to_vec(),
        index: Some(OCI_INDEX.into()),
        manifest: Some(OCI_MANIFEST.into()),
        signed_payload: vec!["application/vnd.docker.distribution.manifest.v1+prettyjws".into()],
    }
}

fn client_for(hosts: &[&str], credentials: Option<Credentials>) -> Client {
    let hosts = hosts
        .iter()
        .map(|h| {
            (
                h.to_string(),
                HostConfig {
                    plain_http: true,
                    ca_file: None,
                    credentials: credentials.clone(),
                },
            )
        })
        .collect();
    Client::new(ClientOptions {
        hosts,
        docker_config: false,
        retries: 3,
        retry_base_delay: Duration::from_millis(10),
        manifest_types: manifest_types(),
        ..ClientOptions::default()
    })
    .unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}"#;

#[tokio::test]
async fn too_many_requests_honours_retry_after_then_succeeds() {
    let server = FakeServer::start(|_, n| match n {
        0 => Resp::new(429)
            .header("Retry-After", "1")
            .body(r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#),
        _ => Resp::new(200)
            .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            .body(MANIFEST),
    })
    .await;
    let client = client_for(&[&server.addr], None);
    let start = Instant::now();
    let m = client
        .get_manifest(&server.addr, "a/b", "v1")
        .await
        .unwrap();
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(m.digest, sha256(MANIFEST.as_bytes()));
    assert_eq!(m.media_type, "application/vnd.oci.image.manifest.v1+json");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].path, "/v2/a/b/manifests/v1");
    let accept = reqs[1].header("accept").unwrap();
    assert!(
        accept.starts_with("application/vnd.oci.image.index.v1+json"),
        "{accept}"
    );
    assert!(accept.contains("application/vnd.docker.distribution.manifest.v2+json"));
}

#[tokio::test]
async fn retries_run_out_on_server_errors() {
    let server = FakeServer::start(|_, _| Resp::new(503).body("maintenance")).await;
    let client = client_for(&[&server.addr], None);
    let err = client.ping(&server.addr).await.unwrap_err();
    assert!(matches!(err, Error::Server { status: 503, .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(server.requests().len(), 4, "one attempt and three retries");
    assert!(err.to_string().contains("maintenance"), "{err}");
}

#[tokio::test]
async fn wrong_docker_content_digest_is_a_mismatch() {
    let wrong = format!("sha256:{}", "0".repeat(64));
    let announced = wrong.clone();
    let server = FakeServer::start(move |_, _| {
        Resp::new(200)
            .header("Content-Type", "application/json")
            .header("Docker-Content-Digest", &announced)
            .body(MANIFEST)
    })
    .await;
    let client = client_for(&[&server.addr], None);
    let err = client
        .get_manifest(&server.addr, "a", "v1")
        .await
        .unwrap_err();
    match &err {
        Error::DigestMismatch {
            expected, actual, ..
        } => {
            assert_eq!(*expected, wrong);
            assert_eq!(*actual, sha256(MANIFEST.as_bytes()));
        }
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(&wrong) && text.contains(&sha256(MANIFEST.as_bytes())),
        "{text}"
    );
    assert_eq!(
        server.requests().len(),
        1,
        "a digest mismatch is not retried"
    );

    // Asked by digest, the content must hash to it, whatever the headers say.
    let err = client
        .get_manifest(&server.addr, "a", &wrong)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { ref expected, .. } if *expected == wrong));
}

#[tokio::test]
async fn media_type_from_body_when_header_is_generic_and_size_is_capped() {
    let big = "x".repeat(5 * 1024 * 1024);
    let server = FakeServer::start(move |req, _| {
        if req.path.ends_with("/big") {
            Resp::new(200).body(big.clone())
        } else {
            Resp::new(200)
                .header("Content-Type", "text/plain; charset=utf-8")
                .body(MANIFEST)
        }
    })
    .await;
    let client = client_for(&[&server.addr], None);
    let m = client.get_manifest(&server.addr, "a", "v1").await.unwrap();
    assert_eq!(m.media_type, "application/vnd.oci.image.manifest.v1+json");
    let err = client
        .get_manifest(&server.addr, "a", "big")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");
}

#[tokio::test]
async fn not_found_from_status_and_envelope() {
    let server = FakeServer::start(|req, _| {
        if req.path.contains("/nope/") {
            Resp::new(404).body(
                r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry","detail":{"name":"nope"}}]}"#,
            )
        } else {
            Resp::new(404).body("")
        }
    })
    .await;
    let client = client_for(&[&server.addr], None);
    let err = client
        .get_manifest(&server.addr, "nope", "v1")
        .await
        .unwrap_err();
    assert!(err.is_not_found());
    assert!(
        matches!(
            err,
            Error::NotFound {
                what: "repository",
                ..
            }
        ),
        "{err:?}"
    );
    let digest = sha256(b"");
    let err = client
        .get_blob(&server.addr, "a", &digest, 0)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::NotFound { what: "blob", .. }),
        "{err:?}"
    );
    assert_eq!(server.requests().len(), 2, "404 is not retried");
}

/// Token flow: anonymous request, 401 with a bearer challenge, token, retry; the token is
/// cached; a cached token the registry refuses is refreshed once.
#[tokio::test]
async fn bearer_tokens_are_fetched_cached_and_refreshed() {
    let issued = Arc::new(Mutex::new(0u32));
    let revoked = Arc::new(Mutex::new(None::<String>));
    let (issued2, revoked2) = (issued.clone(), revoked.clone());
    let server = FakeServer::start(move |req, _| {
        if req.path.starts_with("/token") {
            assert_eq!(
                req.header("authorization"),
                Some("Basic dXNlcjpwYXNz"),
                "credentials go to the token service"
            );
            assert!(req.path.contains("service=svc"), "{}", req.path);
            assert!(
                req.path.contains("scope=repository%3Aa%2Fb%3Apull"),
                "{}",
                req.path
            );
            let mut n = issued2.lock().unwrap();
            *n += 1;
            return Resp::new(200).body(format!(r#"{{"access_token":"tok{n}","expires_in":300}}"#));
        }
        let auth = req.header("authorization").unwrap_or_default();
        let valid =
            auth.starts_with("Bearer tok") && revoked2.lock().unwrap().as_deref() != Some(auth);
        if !valid {
            return Resp::new(401).header(
                "WWW-Authenticate",
                &format!(
                    r#"Bearer realm="http://{}/token",service="svc",scope="repository:a/b:pull""#,
                    req.header("host").unwrap()
                ),
            );
        }
        Resp::new(200)
            .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            .body(MANIFEST)
    })
    .await;
    let client = client_for(&[&server.addr], Some(Credentials::new("user", "pass")));
    client
        .get_manifest(&server.addr, "a/b", "v1")
        .await
        .unwrap();
    client
        .get_manifest(&server.addr, "a/b", "v2")
        .await
        .unwrap();
    assert_eq!(*issued.lock().unwrap(), 1, "the token is reused");
    *revoked.lock().unwrap() = Some("Bearer tok1".into());
    client
        .get_manifest(&server.addr, "a/b", "v3")
        .await
        .unwrap();
    assert_eq!(*issued.lock().unwrap(), 2, "a refused token is refreshed");
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths.iter().filter(|p| p.starts_with("/token")).count(), 2);
    assert_eq!(paths.len(), 7, "{paths:#?}");
}

#[tokio::test]
async fn basic_auth_refused_is_unauthorized_without_leaking_the_password() {
    let server = FakeServer::start(|_, _| {
        Resp::new(401)
            .header("WWW-Authenticate", r#"Basic realm="r""#)
            .body(r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#)
    })
    .await;
    let client = client_for(&[&server.addr], Some(Credentials::new("user", "hunter2")));
    let err = client
        .get_manifest(&server.addr, "a", "v1")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unauthorized {
                credentials: true,
                ..
            }
        ),
        "{err:?}"
    );
    let shown = format!("{err} {err:?} {client:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("check the username and password"), "{shown}");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        reqs[0].header("authorization"),
        None,
        "first try is anonymous"
    );
    assert!(reqs[1]
        .header("authorization")
        .unwrap()
        .starts_with("Basic "));
}

/// Registries redirect blobs to storage; the registry's credentials must not follow.
#[tokio::test]
async fn blob_redirect_keeps_range_and_drops_authorization() {
    let blob: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    let digest = sha256(&blob);
    let data = blob.clone();
    let storage = FakeServer::start(move |req, _| {
        let range = req.header("range").unwrap_or_default();
        match range
            .strip_prefix("bytes=")
            .and_then(|r| r.strip_suffix('-'))
        {
            Some(start) => {
                let start: usize = start.parse().unwrap();
                Resp::new(206)
                    .header(
                        "Content-Range",
                        &format!("bytes {start}-{}/{}", data.len() - 1, data.len()),
                    )
                    .body(data[start..].to_vec())
            }
            None => Resp::new(200).body(data.clone()),
        }
    })
    .await;
    let storage_addr = storage.addr.clone();
    let registry = FakeServer::start(move |req, _| {
        if req.header("authorization").is_none() {
            return Resp::new(401).header("WWW-Authenticate", r#"Basic realm="r""#);
        }
        Resp::new(307).header(
            "Location",
            &format!("http://{storage_addr}/data?X-Signature=secret-sig"),
        )
    })
    .await;
    let client = client_for(&[&registry.addr], Some(Credentials::new("u", "p")));

    let bytes = client
        .get_blob_bytes(&registry.addr, "a", &digest, 1 << 20)
        .await
        .unwrap();
    assert_eq!(&bytes[..], &blob[..]);

    let resp = client
        .get_blob(&registry.addr, "a", &digest, 4000)
        .await
        .unwrap();
    assert_eq!((resp.offset, resp.total_size), (4000, Some(10_000)));
    let mut got = Vec::new();
    let mut stream = resp.stream;
    while let Some(chunk) = stream.next().await {
        got.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(&got[..], &blob[4000..]);

    for req in storage.requests() {
        assert_eq!(req.header("authorization"), None, "{req:?}");
    }
    assert_eq!(storage.requests()[1].header("range"), Some("bytes=4000-"));

    let err = client
        .get_blob_bytes(&registry.addr, "a", &digest, 100)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge { limit: 100, .. }), "{err:?}");
}

#[tokio::test]
async fn range_past_the_end_and_ignored_ranges() {
    let server = FakeServer::start(|req, _| match req.header("range") {
        Some("bytes=10-") => Resp::new(416).header("Content-Range", "bytes */10"),
        _ => Resp::new(200).body("0123456789"),
    })
    .await;
    let client = client_for(&[&server.addr], None);
    let digest = sha256(b"0123456789");
    // Asking from the end: nothing left, not an error.
    let resp = client
        .get_blob(&server.addr, "a", &digest, 10)
        .await
        .unwrap();
    assert_eq!((resp.offset, resp.total_size), (10, Some(10)));
    assert!(resp.stream.collect::<Vec<_>>().await.is_empty());
    // A server that ignores Range sends everything from 0.
    let resp = client
        .get_blob(&server.addr, "a", &digest, 3)
        .await
        .unwrap();
    assert_eq!((resp.offset, resp.total_size), (0, Some(10)));
}

#[tokio::test]
async fn unreachable_and_tls_errors() {
    // A port nothing listens on.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let client = Client::new(ClientOptions {
        retries: 1,
        retry_base_delay: Duration::from_millis(1),
        docker_config: false,
        hosts: [(
            addr.clone(),
            HostConfig {
                plain_http: true,
                ..HostConfig::default()
            },
        )]
        .into(),
        ..ClientOptions::default()
    })
    .unwrap();
    let err = client.ping(&addr).await.unwrap_err();
    assert!(err.is_unreachable() && err.is_retryable(), "{err:?}");
    assert!(
        err.to_string().contains(&format!("http://{addr}/v2/")),
        "{err}"
    );

    // HTTPS to a plain HTTP server: told apart from a certificate problem.
    let server = FakeServer::start(|_, _| Resp::new(200)).await;
    let client = Client::new(ClientOptions {
        retries: 0,
        docker_config: false,
        ..ClientOptions::default()
    })
    .unwrap();
    let err = client.ping(&server.addr).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Tls {
                problem: airlock_registry::TlsProblem::NotTls,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("plainHttp"), "{err}");
}

/// A chunk upload that breaks is resumed where the registry says it stands (distribution
/// keeps the chunks it got); real registries do not fail on demand.
#[tokio::test]
async fn broken_chunk_upload_resumes_from_the_registry_offset() {
    const BLOB: &[u8] = b"0123456789";
    let server = FakeServer::start(|req, n| {
        let upload = "/v2/a/b/blobs/uploads/u1";
        match (n, req.method.as_str()) {
            (0, "POST") => Resp::new(202).header("Location", &format!("{upload}?s=0")),
            (1, "PATCH") => Resp::new(202).header("Location", &format!("{upload}?s=4")),
            (2, "PATCH") => Resp::new(503).body("overloaded"),
            (3, "GET") => Resp::new(204)
                .header("Range", "0-5")
                .header("Location", &format!("{upload}?s=6")),
            (4, "PATCH") => Resp::new(202).header("Location", &format!("{upload}?s=10")),
            (5, "PUT") => Resp::new(201),
            _ => Resp::new(500).body(format!("unexpected request {n}: {req:?}")),
        }
    })
    .await;
    let client = {
        let mut hosts = HashMap::new();
        hosts.insert(
            server.addr.clone(),
            HostConfig {
                plain_http: true,
                ..HostConfig::default()
            },
        );
        Client::new(ClientOptions {
            hosts,
            docker_config: false,
            retry_base_delay: Duration::from_millis(10),
            monolithic_max: 0,
            chunk_size: 4,
            ..ClientOptions::default()
        })
        .unwrap()
    };
    let digest = sha256(BLOB);
    let offsets: Arc<Mutex<Vec<u64>>> = Arc::default();
    let asked = offsets.clone();
    let outcome = client
        .push_blob(
            &server.addr,
            "a/b",
            &digest,
            BLOB.len() as u64,
            move |offset| {
                asked.lock().unwrap().push(offset);
                // In pieces of 3 bytes, so that chunks straddle the stream's items.
                let pieces: Vec<std::io::Result<bytes::Bytes>> = BLOB[offset as usize..]
                    .chunks(3)
                    .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
                    .collect();
                futures_util::stream::iter(pieces)
            },
        )
        .await
        .unwrap();
    assert_eq!(*offsets.lock().unwrap(), [0, 6]);
    assert_eq!((outcome.chunked, outcome.restarts), (true, 0));
    assert_eq!(outcome.bytes_sent, 12, "{outcome:?}");
    let reqs = server.requests();
    let seen: Vec<(&str, &str, Option<&str>, &[u8])> = reqs
        .iter()
        .map(|r| {
            (
                r.method.as_str(),
                r.path.as_str(),
                r.header("content-range"),
                r.body.as_slice(),
            )
        })
        .collect();
    let put = format!(
        "/v2/a/b/blobs/uploads/u1?s=10&digest={}",
        digest.replace(':', "%3A")
    );
    assert_eq!(
        seen,
        [
            ("POST", "/v2/a/b/blobs/uploads/", None, &b""[..]),
            (
                "PATCH",
                "/v2/a/b/blobs/uploads/u1?s=0",
                Some("0-3"),
                b"0123"
            ),
            (
                "PATCH",
                "/v2/a/b/blobs/uploads/u1?s=4",
                Some("4-7"),
                b"4567"
            ),
            ("GET", "/v2/a/b/blobs/uploads/u1?s=4", None, b""),
            (
                "PATCH",
                "/v2/a/b/blobs/uploads/u1?s=6",
                Some("6-9"),
                b"6789"
            ),
            ("PUT", put.as_str(), None, b""),
        ]
    );
    for r in reqs
        .iter()
        .filter(|r| r.method == "PATCH" || r.method == "PUT")
    {
        assert_eq!(r.header("content-type"), Some("application/octet-stream"));
        assert_eq!(
            r.header("content-length"),
            Some(r.body.len().to_string().as_str())
        );
    }
}

/// Harbor answers 401 to a mount across projects whose source the account cannot read; the
/// caller then uploads, so this is `false`, not an error.
#[tokio::test]
async fn mount_refused_with_401_is_false() {
    let server = FakeServer::start(|_, _| {
        Resp::new(401)
            .body(r#"{"errors":[{"code":"UNAUTHORIZED","message":"unauthorized to access repository: other/src"}]}"#)
    })
    .await;
    let client = client_for(&[&server.addr], Some(Credentials::new("u", "p")));
    let digest = sha256(b"x");
    assert!(!client
        .mount_blob(&server.addr, "proj/dst", &digest, "other/src")
        .await
        .unwrap());
    let reqs = server.requests();
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(
        reqs[0].path,
        format!(
            "/v2/proj/dst/blobs/uploads/?mount={}&from=other%2Fsrc",
            digest.replace(':', "%3A")
        )
    );
}

#[tokio::test]
async fn tag_lists_follow_link_pagination() {
    let server = FakeServer::start(|req, _| match req.path.as_str() {
        "/v2/a/b/tags/list" => Resp::new(200)
            .header("Link", r#"</v2/a/b/tags/list?last=v2&n=2>; rel="next""#)
            .body(r#"{"name":"a/b","tags":["v1","v2"]}"#),
        "/v2/a/b/tags/list?last=v2&n=2" => {
            Resp::new(200).body(r#"{"name":"a/b","tags":["sha256-00.sig"]}"#)
        }
        "/v2/empty/tags/list" => Resp::new(200).body(r#"{"name":"empty","tags":null}"#),
        _ => Resp::new(404)
            .body(r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known"}]}"#),
    })
    .await;
    let client = client_for(&[&server.addr], None);
    let tags = client.list_tags(&server.addr, "a/b").await.unwrap();
    assert_eq!(tags, ["v1", "v2", "sha256-00.sig"]);
    assert!(client
        .list_tags(&server.addr, "empty")
        .await
        .unwrap()
        .is_empty());
    let err = client.list_tags(&server.addr, "nope").await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
}

#[tokio::test]
async fn the_catalog_follows_link_pagination_and_a_refusal_is_told() {
    let server = FakeServer::start(|req, _| match req.path.as_str() {
        "/v2/_catalog?n=2" => Resp::new(200)
            .header("Link", r#"</v2/_catalog?last=k8s%2Fb&n=2>; rel="next""#)
            .body(r#"{"repositories":["k8s/a","k8s/b"]}"#),
        "/v2/_catalog?last=k8s%2Fb&n=2" => Resp::new(200).body(r#"{"repositories":["other/c"]}"#),
        _ => Resp::new(403)
            .body(r#"{"errors":[{"code":"DENIED","message":"catalog is for administrators"}]}"#),
    })
    .await;
    let client = client_for(&[&server.addr], None);
    let repos = client.catalog(&server.addr, Some(2)).await.unwrap();
    assert_eq!(repos, ["k8s/a", "k8s/b", "other/c"]);
    let err = client.catalog(&server.addr, None).await.unwrap_err();
    assert!(matches!(err, Error::Denied { .. }), "{err:?}");
}

#[tokio::test]
async fn a_tag_list_whose_pages_loop_is_an_error() {
    let server = FakeServer::start(|_, _| {
        Resp::new(200)
            .header("Link", r#"</v2/a/tags/list>; rel="next""#)
            .body(r#"{"tags":["v1"]}"#)
    })
    .await;
    let client = client_for(&[&server.addr], None);
    let err = client.list_tags(&server.addr, "a").await.unwrap_err();
    assert!(matches!(err, Error::Protocol { .. }), "{err:?}");
    assert_eq!(
        server.requests().len(),
        1,
        "the page that links to itself is not asked again"
    );
}

#[tokio::test]
async fn referrers_api_absent_filtered_and_paginated() {
    let subject = sha256(b"subject");
    let other = sha256(b"other");
    let sbom = "application/spdx+json";
    let page1 = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":1,"artifactType":"{sbom}"}}]}}"#,
        sha256(b"r1")
    );
    let page2 = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":1,"artifactType":"{sbom}"}}]}}"#,
        sha256(b"r2")
    );
    let (p1, p2, s) = (page1.clone(), page2.clone(), subject.clone());
    let server = FakeServer::start(move |req, _| {
        let base = format!("/v2/a/referrers/{s}");
        if req.path.starts_with("/v2/old/") {
            Resp::new(404).body("404 page not found")
        } else if req.path == format!("{base}?artifactType=application%2Fspdx%2Bjson") {
            Resp::new(200)
                .header("Content-Type", "application/vnd.oci.image.index.v1+json")
                .header("OCI-Filters-Applied", "artifactType")
                .body(p1.clone())
        } else if req.path == base {
            Resp::new(200)
                .header("Link", &format!(r#"<{base}?page=2>; rel="next""#))
                .body(p1.clone())
        } else if req.path == format!("{base}?page=2") {
            Resp::new(200).body(p2.clone())
        } else {
            Resp::new(200).body(r#"{"schemaVersion":2,"manifests":[]}"#)
        }
    })
    .await;
    let client = client_for(&[&server.addr], None);

    assert_eq!(
        client
            .referrers(&server.addr, "old", &subject, None)
            .await
            .unwrap(),
        None,
        "no referrers API"
    );

    let filtered = client
        .referrers(&server.addr, "a", &subject, Some(sbom))
        .await
        .unwrap()
        .unwrap();
    assert!(filtered.filters_applied);
    assert_eq!(filtered.bytes, page1.as_bytes());
    let req = server.requests().pop().unwrap();
    assert_eq!(
        req.header("accept"),
        Some("application/vnd.oci.image.index.v1+json")
    );

    let all = client
        .referrers(&server.addr, "a", &subject, None)
        .await
        .unwrap()
        .unwrap();
    assert!(!all.filters_applied, "no filter was asked for");
    let index: serde_json::Value = serde_json::from_slice(&all.bytes).unwrap();
    let digests: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert_eq!(digests, [sha256(b"r1"), sha256(b"r2")]);

    // A registry that ignores the filter says nothing: the caller filters.
    let unfiltered = client
        .referrers(&server.addr, "a", &other, Some(sbom))
        .await
        .unwrap()
        .unwrap();
    assert!(!unfiltered.filters_applied);

    let err = client
        .referrers(&server.addr, "a", "v1", None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidReference(_)), "{err:?}");
}

/// `ReferrersApi`: each registry's first answer decides whether it has the referrers API; one
/// without it (404) or whose first answer failed (400, not retried) is not asked again, and
/// the failure goes to the first caller alone; one with it is asked every time.
#[tokio::test]
async fn referrers_api_is_learnt_from_each_registrys_first_answer() {
    use airlock_registry::{Lookup, ReferrersApi};
    let subject = sha256(b"subject");
    let none = FakeServer::start(|_, _| Resp::new(404).body("404 page not found")).await;
    let broken = FakeServer::start(|_, _| Resp::new(400).body("bad request")).await;
    let api = FakeServer::start(|_, _| {
        Resp::new(200)
            .header("Content-Type", "application/vnd.oci.image.index.v1+json")
            .body(r#"{"schemaVersion":2,"manifests":[]}"#)
    })
    .await;
    let client = client_for(&[&none.addr, &broken.addr, &api.addr], None);
    let memo = ReferrersApi::default();

    for _ in 0..2 {
        assert!(matches!(
            memo.lookup(&client, &none.addr, "a", &subject, None)
                .await
                .unwrap(),
            Lookup::NoApi
        ));
    }
    assert_eq!(none.requests().len(), 1, "asked once");

    let first = memo
        .lookup(&client, &broken.addr, "a", &subject, None)
        .await
        .unwrap();
    assert!(matches!(first, Lookup::NoApiAfter(_)), "{first:?}");
    assert!(matches!(
        memo.lookup(&client, &broken.addr, "a", &subject, None)
            .await
            .unwrap(),
        Lookup::NoApi
    ));
    assert_eq!(broken.requests().len(), 1, "asked once");

    for _ in 0..2 {
        let found = memo
            .lookup(&client, &api.addr, "a", &subject, None)
            .await
            .unwrap();
        assert!(matches!(found, Lookup::Api(Some(_))), "{found:?}");
    }
    assert_eq!(api.requests().len(), 2, "asked every time");
}

/// Docker Hub's budget headers (`RateLimit-Limit: 100;w=21600`) are kept per registry, the
/// latest answer winning, and a `HEAD` is enough to learn them.
#[tokio::test]
async fn rate_limit_headers_are_kept_per_registry() {
    let server = FakeServer::start(|_, n| {
        let left = (76 - n).to_string();
        Resp::new(200)
            .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            .header("Docker-Content-Digest", &sha256(MANIFEST.as_bytes()))
            .header("RateLimit-Limit", "100;w=21600")
            .header("RateLimit-Remaining", &format!("{left};w=21600"))
            .body(MANIFEST)
    })
    .await;
    let client = client_for(&[&server.addr], None);
    assert!(client.rate_limits().is_empty());
    let head = client
        .head_manifest(&server.addr, "library/alpine", "3")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head.digest, sha256(MANIFEST.as_bytes()));
    client
        .get_manifest(&server.addr, "library/alpine", "3")
        .await
        .unwrap();
    let limits = client.rate_limits();
    assert_eq!(limits.len(), 1, "{limits:?}");
    assert_eq!(limits[0].0, server.addr);
    assert_eq!(limits[0].1.to_string(), "75 of 100 requests left (per 6 h)");
    let reqs = server.requests();
    assert_eq!(reqs[0].method, "HEAD");
}

/// A 429 storm that outlasts the retries says how long the registry asked to wait, even
/// beyond what the client waits between attempts, and the budget it announced is kept.
#[tokio::test]
async fn too_many_requests_exhausted_says_how_long_to_wait() {
    let server = FakeServer::start(|_, _| {
        Resp::new(429)
            .header("Retry-After", "0")
            .header("RateLimit-Limit", "100;w=21600")
            .header("RateLimit-Remaining", "0;w=21600")
            .body(r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"pull rate limit"}]}"#)
    })
    .await;
    let client = client_for(&[&server.addr], None);
    let err = client
        .head_manifest(&server.addr, "library/alpine", "3")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TooManyRequests { .. }), "{err:?}");
    assert_eq!(
        server.requests().len(),
        4,
        "the first attempt and 3 retries"
    );
    assert_eq!(
        client.rate_limits()[0].1.to_string(),
        "0 of 100 requests left (per 6 h)"
    );

    let long = FakeServer::start(|_, n| match n {
        0 => Resp::new(429).header("Retry-After", "7200"),
        _ => Resp::new(500),
    })
    .await;
    let client = Client::new(ClientOptions {
        hosts: [(
            long.addr.clone(),
            HostConfig {
                plain_http: true,
                ..HostConfig::default()
            },
        )]
        .into(),
        docker_config: false,
        retries: 0,
        manifest_types: manifest_types(),
        ..ClientOptions::default()
    })
    .unwrap();
    let err = client
        .get_manifest(&long.addr, "library/alpine", "3")
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("retries exhausted; the registry asked to wait 2 h"),
        "{text}"
    );
}

/// Downloads outside the distribution API: anonymous first, basic auth only when asked,
/// `Range` to resume, 404 as its own error, 5xx retried.
#[tokio::test]
async fn fetch_urls_with_auth_range_not_found_and_retries() {
    let data: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    let body = data.clone();
    let server = FakeServer::start(move |req, n| {
        if req.path == "/flaky" {
            return if n == 0 {
                Resp::new(503).body("busy")
            } else {
                Resp::new(200).body("ok")
            };
        }
        if req.path == "/gone" {
            return Resp::new(404).body("no");
        }
        if req.header("authorization").is_none() {
            return Resp::new(401).header("WWW-Authenticate", r#"Basic realm="files""#);
        }
        match req
            .header("range")
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.strip_suffix('-'))
        {
            Some(start) => {
                let start: usize = start.parse().unwrap();
                Resp::new(206)
                    .header(
                        "Content-Range",
                        &format!("bytes {start}-{}/{}", body.len() - 1, body.len()),
                    )
                    .body(body[start..].to_vec())
            }
            None => Resp::new(200).body(body.clone()),
        }
    })
    .await;
    let client = client_for(&[&server.addr], Some(Credentials::new("u", "hunter2")));
    let base = format!("http://{}", server.addr);

    assert_eq!(
        &client
            .fetch_bytes(&format!("{base}/flaky"), 100)
            .await
            .unwrap()[..],
        b"ok"
    );
    let bytes = client
        .fetch_bytes(&format!("{base}/f.bin"), 1 << 20)
        .await
        .unwrap();
    assert_eq!(&bytes[..], &data[..]);
    let resp = client.fetch(&format!("{base}/f.bin"), 1234).await.unwrap();
    assert_eq!((resp.offset, resp.total_size), (1234, Some(5000)));
    let got: Vec<u8> = resp
        .stream
        .map(|c| c.unwrap().to_vec())
        .collect::<Vec<_>>()
        .await
        .concat();
    assert_eq!(&got[..], &data[1234..]);

    let err = client
        .fetch_bytes(&format!("{base}/gone"), 100)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::UrlNotFound { status: 404, .. }) && err.is_not_found(),
        "{err:?}"
    );
    assert!(err.to_string().contains("/gone"), "{err}");
    let err = client
        .fetch_bytes(&format!("{base}/f.bin"), 100)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge { limit: 100, .. }), "{err:?}");

    let reqs = server.requests();
    let anonymous = reqs
        .iter()
        .filter(|r| r.path == "/f.bin" && r.header("authorization").is_none())
        .count();
    assert!(anonymous >= 1, "the first try is anonymous");

    // Without credentials: refused, with the hint.
    let bare = client_for(&[&server.addr], None);
    let err = bare
        .fetch_bytes(&format!("{base}/f.bin"), 1 << 20)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::UrlRefused { status: 401, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("auth file"), "{err}");
    assert!(!format!("{err:?}").contains("hunter2"));
}
