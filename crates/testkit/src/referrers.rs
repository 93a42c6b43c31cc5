//! An in-memory registry with the OCI 1.1 referrers API, for what no packaged registry here
//! does (distribution 2.8 has no referrers API).
//!
//! Hand-rolled HTTP/1.1 on a std `TcpListener`, as the token issuer, one thread per
//! connection, `Connection: close`. It speaks enough of the distribution API for a push and a
//! check: `/v2/`; blobs `HEAD`/`GET`; uploads (`POST` with `?digest=`, `POST` then `PATCH`es
//! then `PUT`, mounts refused with 202, upload status, cancel); manifests `PUT`/`GET`/`HEAD`/
//! `DELETE` by tag and digest, answering `OCI-Subject` to the `PUT` of a manifest with a
//! `subject`; `GET /v2/<name>/referrers/<digest>[?artifactType=]` (`OCI-Filters-Applied`
//! when filtered); `tags/list`. Every request is logged for assertions.

use std::collections::{BTreeMap, HashMap};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;

use crate::http::{accept_loop, read_request, write_answer, Request};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::fixtures::OCI_INDEX;

/// One request the registry answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// `GET`, `PUT`, …
    pub method: String,
    /// The path, with its query when there was one.
    pub target: String,
    /// The status answered.
    pub status: u16,
}

#[derive(Default)]
struct Repo {
    tags: BTreeMap<String, String>,
    /// Digest → (media type, bytes).
    manifests: HashMap<String, (String, Vec<u8>)>,
    /// Subject digest → referrers-index entries, in the order pushed.
    referrers: BTreeMap<String, Vec<Value>>,
}

#[derive(Default)]
struct Store {
    repos: BTreeMap<String, Repo>,
    /// Blobs by digest, shared by every repository (a repository lists the ones it holds).
    blobs: HashMap<String, Vec<u8>>,
    linked: BTreeMap<String, Vec<String>>,
    uploads: HashMap<String, (String, Vec<u8>)>,
}

struct State {
    store: Mutex<Store>,
    log: Mutex<Vec<Logged>>,
    stop: AtomicBool,
    next_upload: AtomicUsize,
}

/// A running in-memory registry with the referrers API; dropping it stops its thread.
pub struct ReferrersRegistry {
    /// `127.0.0.1:PORT`.
    pub host: String,
    state: Arc<State>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ReferrersRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReferrersRegistry")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl ReferrersRegistry {
    /// Starts an empty registry on a free loopback port (plain HTTP, no auth).
    pub fn start() -> anyhow::Result<ReferrersRegistry> {
        let listener =
            TcpListener::bind("127.0.0.1:0").context("binding the referrers registry")?;
        let host = listener.local_addr()?.to_string();
        let state = Arc::new(State {
            store: Mutex::default(),
            log: Mutex::default(),
            stop: AtomicBool::new(false),
            next_upload: AtomicUsize::new(0),
        });
        let thread = {
            let state = Arc::clone(&state);
            std::thread::Builder::new()
                .name("referrers-registry".into())
                .spawn(move || {
                    accept_loop(listener, state, |s| &s.stop, "referrers-conn", handle)
                })?
        };
        Ok(ReferrersRegistry {
            host,
            state,
            thread: Some(thread),
        })
    }

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<Logged> {
        self.state.log.lock().unwrap().clone()
    }

    /// The referrers-index entries of `subject` in `repository`, as the API lists them.
    pub fn referrers(&self, repository: &str, subject: &str) -> Vec<Value> {
        let store = self.state.store.lock().unwrap();
        store
            .repos
            .get(repository)
            .and_then(|r| r.referrers.get(subject).cloned())
            .unwrap_or_default()
    }

    /// The digest `tag` points at in `repository`.
    pub fn tag(&self, repository: &str, tag: &str) -> Option<String> {
        let store = self.state.store.lock().unwrap();
        store.repos.get(repository)?.tags.get(tag).cloned()
    }
}

impl Drop for ReferrersRegistry {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(&self.host);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// An answer: status, headers, body.
type Answer = (u16, Vec<(&'static str, String)>, Vec<u8>);

fn handle(mut stream: TcpStream, state: &State) -> anyhow::Result<()> {
    let request = read_request(&stream, Duration::from_secs(30), 256 << 20)?;
    let (status, headers, body) = respond(&request, state);
    let target = if request.query.is_empty() {
        request.path.clone()
    } else {
        format!("{}?{}", request.path, request.query)
    };
    state.log.lock().unwrap().push(Logged {
        method: request.method.clone(),
        target,
        status,
    });
    write_answer(&mut stream, &request.method, status, &headers, &body)
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| {
            url::form_urlencoded::parse(format!("v={v}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        })
    })
}

fn oci_error(status: u16, code: &str, message: &str) -> Answer {
    let body = json!({"errors": [{"code": code, "message": message}]}).to_string();
    (
        status,
        vec![("Content-Type", "application/json".into())],
        body.into_bytes(),
    )
}

fn respond(r: &Request, state: &State) -> Answer {
    if r.path == "/v2/" || r.path == "/v2" {
        return (
            200,
            vec![("Content-Type", "application/json".into())],
            b"{}".to_vec(),
        );
    }
    let Some(rest) = r.path.strip_prefix("/v2/") else {
        return oci_error(404, "NOT_FOUND", "not a distribution API path");
    };
    if let Some(name) = rest.strip_suffix("/tags/list") {
        let store = state.store.lock().unwrap();
        return match store.repos.get(name) {
            None => oci_error(404, "NAME_UNKNOWN", name),
            Some(repo) => {
                let tags: Vec<&String> = repo.tags.keys().collect();
                let body = json!({"name": name, "tags": tags}).to_string();
                (
                    200,
                    vec![("Content-Type", "application/json".into())],
                    body.into_bytes(),
                )
            }
        };
    }
    if let Some((name, id)) = rest.split_once("/blobs/uploads") {
        return upload(r, state, name, id.trim_start_matches('/'));
    }
    let Some((head, last)) = rest.rsplit_once('/') else {
        return oci_error(404, "NOT_FOUND", "not a distribution API path");
    };
    let Some((name, kind)) = head.rsplit_once('/') else {
        return oci_error(404, "NOT_FOUND", "not a distribution API path");
    };
    match kind {
        "blobs" => blob(r, state, name, last),
        "manifests" => manifest(r, state, name, last),
        "referrers" => referrers(r, state, name, last),
        _ => oci_error(404, "NOT_FOUND", "not a distribution API path"),
    }
}

fn blob(r: &Request, state: &State, name: &str, digest: &str) -> Answer {
    let store = state.store.lock().unwrap();
    let linked = store
        .linked
        .get(name)
        .is_some_and(|l| l.iter().any(|d| d == digest));
    match store.blobs.get(digest).filter(|_| linked) {
        None => oci_error(404, "BLOB_UNKNOWN", digest),
        Some(b) if r.method == "HEAD" || r.method == "GET" => (
            200,
            vec![
                ("Content-Type", "application/octet-stream".into()),
                ("Docker-Content-Digest", digest.into()),
                ("Content-Length", b.len().to_string()),
            ],
            b.clone(),
        ),
        Some(_) => oci_error(405, "UNSUPPORTED", &r.method),
    }
}

fn commit_blob(store: &mut Store, name: &str, expected: &str, bytes: Vec<u8>) -> Answer {
    let actual = sha256(&bytes);
    if actual != expected {
        return oci_error(400, "DIGEST_INVALID", &format!("{expected} is {actual}"));
    }
    store.blobs.insert(actual.clone(), bytes);
    let linked = store.linked.entry(name.to_string()).or_default();
    if !linked.contains(&actual) {
        linked.push(actual.clone());
    }
    (
        201,
        vec![
            ("Location", format!("/v2/{name}/blobs/{actual}")),
            ("Docker-Content-Digest", actual),
        ],
        Vec::new(),
    )
}

fn upload(r: &Request, state: &State, name: &str, id: &str) -> Answer {
    let mut store = state.store.lock().unwrap();
    let open = |store: &mut Store, state: &State| {
        let id = format!("u{}", state.next_upload.fetch_add(1, Ordering::SeqCst));
        store
            .uploads
            .insert(id.clone(), (name.to_string(), Vec::new()));
        (
            202,
            vec![
                ("Location", format!("/v2/{name}/blobs/uploads/{id}")),
                ("Range", "0-0".into()),
                ("Docker-Upload-UUID", id),
            ],
            Vec::new(),
        )
    };
    match (r.method.as_str(), id.is_empty()) {
        // A mount is refused: an upload session is opened instead (the spec allows it).
        ("POST", true) if param(&r.query, "mount").is_some() => open(&mut store, state),
        ("POST", true) => match param(&r.query, "digest") {
            Some(d) => commit_blob(&mut store, name, &d, r.body.clone()),
            None => open(&mut store, state),
        },
        ("PATCH", false) => match store.uploads.get_mut(id) {
            None => oci_error(404, "BLOB_UPLOAD_UNKNOWN", id),
            Some((_, data)) => {
                data.extend_from_slice(&r.body);
                let end = data.len().saturating_sub(1);
                (
                    202,
                    vec![
                        ("Location", format!("/v2/{name}/blobs/uploads/{id}")),
                        ("Range", format!("0-{end}")),
                    ],
                    Vec::new(),
                )
            }
        },
        ("PUT", false) => match store.uploads.remove(id) {
            None => oci_error(404, "BLOB_UPLOAD_UNKNOWN", id),
            Some((_, mut data)) => {
                data.extend_from_slice(&r.body);
                let digest = param(&r.query, "digest").unwrap_or_default();
                commit_blob(&mut store, name, &digest, data)
            }
        },
        ("GET", false) => match store.uploads.get(id) {
            None => oci_error(404, "BLOB_UPLOAD_UNKNOWN", id),
            Some((_, data)) => (
                204,
                vec![
                    ("Location", format!("/v2/{name}/blobs/uploads/{id}")),
                    ("Range", format!("0-{}", data.len().saturating_sub(1))),
                ],
                Vec::new(),
            ),
        },
        ("DELETE", false) => {
            store.uploads.remove(id);
            (204, Vec::new(), Vec::new())
        }
        _ => oci_error(405, "UNSUPPORTED", &r.method),
    }
}

/// The referrers-index entry of a manifest with a `subject`, and that subject.
fn referrer_entry(media_type: &str, digest: &str, bytes: &[u8]) -> Option<(String, Value)> {
    let doc: Value = serde_json::from_slice(bytes).ok()?;
    let subject = doc["subject"]["digest"].as_str()?.to_string();
    let artifact_type = doc
        .get("artifactType")
        .or_else(|| doc["config"].get("mediaType"))
        .cloned();
    let mut entry = json!({"mediaType": media_type, "digest": digest, "size": bytes.len()});
    if let Some(t) = artifact_type {
        entry["artifactType"] = t;
    }
    if let Some(a) = doc.get("annotations") {
        entry["annotations"] = a.clone();
    }
    Some((subject, entry))
}

fn manifest(r: &Request, state: &State, name: &str, reference: &str) -> Answer {
    let mut store = state.store.lock().unwrap();
    match r.method.as_str() {
        "PUT" => {
            let digest = sha256(&r.body);
            if reference.contains(':') && reference != digest {
                return oci_error(400, "DIGEST_INVALID", reference);
            }
            let media_type = r.header("content-type").unwrap_or_default().to_string();
            let repo = store.repos.entry(name.to_string()).or_default();
            repo.manifests
                .insert(digest.clone(), (media_type.clone(), r.body.clone()));
            if !reference.contains(':') {
                repo.tags.insert(reference.to_string(), digest.clone());
            }
            let mut headers = vec![
                ("Location", format!("/v2/{name}/manifests/{digest}")),
                ("Docker-Content-Digest", digest.clone()),
            ];
            if let Some((subject, entry)) = referrer_entry(&media_type, &digest, &r.body) {
                let listed = repo.referrers.entry(subject.clone()).or_default();
                if !listed.iter().any(|e| e["digest"] == entry["digest"]) {
                    listed.push(entry);
                }
                headers.push(("OCI-Subject", subject));
            }
            (201, headers, Vec::new())
        }
        "GET" | "HEAD" => {
            let found = store.repos.get(name).and_then(|repo| {
                let digest = if reference.contains(':') {
                    reference.to_string()
                } else {
                    repo.tags.get(reference)?.clone()
                };
                repo.manifests.get(&digest).map(|m| (digest, m.clone()))
            });
            match found {
                None => oci_error(404, "MANIFEST_UNKNOWN", reference),
                Some((digest, (media_type, bytes))) => (
                    200,
                    vec![
                        ("Content-Type", media_type),
                        ("Docker-Content-Digest", digest),
                        ("Content-Length", bytes.len().to_string()),
                    ],
                    bytes,
                ),
            }
        }
        "DELETE" => {
            let Some(repo) = store.repos.get_mut(name) else {
                return oci_error(404, "NAME_UNKNOWN", name);
            };
            if repo.manifests.remove(reference).is_none() {
                return oci_error(404, "MANIFEST_UNKNOWN", reference);
            }
            repo.tags.retain(|_, d| d != reference);
            for listed in repo.referrers.values_mut() {
                listed.retain(|e| e["digest"] != reference);
            }
            (202, Vec::new(), Vec::new())
        }
        _ => oci_error(405, "UNSUPPORTED", &r.method),
    }
}

fn referrers(r: &Request, state: &State, name: &str, subject: &str) -> Answer {
    if r.method != "GET" && r.method != "HEAD" {
        return oci_error(405, "UNSUPPORTED", &r.method);
    }
    let store = state.store.lock().unwrap();
    let Some(repo) = store.repos.get(name) else {
        return oci_error(404, "NAME_UNKNOWN", name);
    };
    let wanted = param(&r.query, "artifactType");
    let manifests: Vec<&Value> = repo
        .referrers
        .get(subject)
        .into_iter()
        .flatten()
        .filter(|e| {
            wanted
                .as_deref()
                .is_none_or(|t| e["artifactType"].as_str() == Some(t))
        })
        .collect();
    let body = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
    let mut headers = vec![("Content-Type", OCI_INDEX.to_string())];
    if wanted.is_some() {
        headers.push(("OCI-Filters-Applied", "artifactType".into()));
    }
    (200, headers, body.to_string().into_bytes())
}
