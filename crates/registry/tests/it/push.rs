//! Pushes against real registries (Debian's `docker-registry`: plain, TLS with a private CA,
//! htpasswd, bearer tokens) and through Debian's nginx with a 1 MiB body limit; read back with
//! the client and checked independently with skopeo.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use airlock_registry::{Client, ClientOptions, Credentials, Error, HostConfig};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
use airlock_testkit::{Auth, Nginx, Registry, RegistryOptions};
use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use sha2::{Digest as _, Sha256};

use crate::sha256;

const MIB: u64 = 1024 * 1024;

/// Deterministic bytes that can be produced from any offset: word `i` of blob `seed` is
/// splitmix64 of `seed * 2^40 + i`.
fn word(seed: u64, i: u64) -> [u8; 8] {
    let mut z = (seed << 40)
        .wrapping_add(i)
        .wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)).to_le_bytes()
}

/// Bytes `[start, end)` of blob `seed`.
fn generate(seed: u64, start: u64, end: u64) -> Bytes {
    let mut out = Vec::with_capacity((end - start) as usize + 16);
    for i in start / 8..end.div_ceil(8) {
        out.extend_from_slice(&word(seed, i));
    }
    let skip = (start % 8) as usize;
    Bytes::from(out).slice(skip..skip + (end - start) as usize)
}

/// A generated blob: its bytes are made as they are streamed, never held whole.
#[derive(Clone, Copy)]
struct Generated {
    seed: u64,
    size: u64,
}

impl Generated {
    /// The stream of bytes from `offset`, in pieces of 256 KiB.
    fn stream(self, offset: u64) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
        const PIECE: u64 = 256 * 1024;
        futures_util::stream::iter((offset..self.size).step_by(PIECE as usize))
            .map(move |at| Ok(generate(self.seed, at, (at + PIECE).min(self.size))))
    }

    fn digest(self) -> String {
        let mut hasher = Sha256::new();
        for at in (0..self.size).step_by(MIB as usize) {
            hasher.update(generate(self.seed, at, (at + MIB).min(self.size)));
        }
        format!("sha256:{}", hex::encode(hasher.finalize()))
    }
}

fn single(
    bytes: Bytes,
) -> impl Fn(u64) -> futures_util::stream::Iter<std::vec::IntoIter<std::io::Result<Bytes>>> {
    move |offset| futures_util::stream::iter(vec![Ok(bytes.slice(offset as usize..))])
}

/// A client for one host, plain HTTP unless a CA is given.
fn client(
    host: &str,
    ca_file: Option<&std::path::Path>,
    creds: Option<&(String, String)>,
) -> Client {
    client_with(host, ca_file, creds, ClientOptions::default())
}

fn client_with(
    host: &str,
    ca_file: Option<&std::path::Path>,
    creds: Option<&(String, String)>,
    opts: ClientOptions,
) -> Client {
    let mut hosts = std::collections::HashMap::new();
    hosts.insert(
        host.to_owned(),
        HostConfig {
            plain_http: ca_file.is_none(),
            ca_file: ca_file.map(Into::into),
            credentials: creds.map(|(u, p)| Credentials::new(u, p)),
        },
    );
    Client::new(ClientOptions {
        hosts,
        docker_config: false,
        retry_base_delay: Duration::from_millis(10),
        manifest_types: crate::manifest_types(),
        ..opts
    })
    .unwrap()
}

fn registry(tls: bool, auth: Auth) -> Registry {
    Registry::start(RegistryOptions {
        tls,
        auth,
        storage: None,
    })
    .unwrap_or_else(|e| panic!("{e:#}"))
}

fn registry_client(registry: &Registry) -> Client {
    client(
        &registry.host,
        registry.ca_file.as_deref(),
        registry.credentials.as_ref(),
    )
}

/// An OCI image manifest for `config` and `layers` (`(digest, size)`).
fn manifest(config: (&str, u64), layers: &[(&str, u64)]) -> Bytes {
    let layers: Vec<_> = layers
        .iter()
        .map(|(digest, size)| {
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": digest,
                "size": size,
            })
        })
        .collect();
    Bytes::from(
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config.0,
                "size": config.1,
            },
            "layers": layers,
        }))
        .unwrap(),
    )
}

/// `skopeo inspect --raw docker://HOST/REFERENCE`: the manifest's bytes.
fn skopeo_raw(
    host: &str,
    reference: &str,
    ca_file: Option<&std::path::Path>,
    creds: Option<&(String, String)>,
    scratch: &std::path::Path,
) -> Vec<u8> {
    let skopeo = airlock_testkit::require_tool("skopeo").unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = Command::new(skopeo);
    cmd.args(["inspect", "--raw"]);
    match ca_file {
        Some(ca) => {
            let dir = scratch.join("skopeo-certs");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::copy(ca, dir.join("ca.crt")).unwrap();
            cmd.arg(format!("--cert-dir={}", dir.display()));
        }
        None => {
            cmd.arg("--tls-verify=false");
        }
    }
    match creds {
        Some((user, pass)) => cmd.arg(format!("--creds={user}:{pass}")),
        None => cmd.arg("--no-creds"),
    };
    cmd.arg(format!("docker://{host}/{reference}"));
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Streams a blob back and hashes it.
async fn pulled_digest(client: &Client, host: &str, repository: &str, digest: &str) -> String {
    let mut blob = client.get_blob(host, repository, digest, 0).await.unwrap();
    let mut hasher = Sha256::new();
    while let Some(chunk) = blob.stream.next().await {
        hasher.update(chunk.unwrap());
    }
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

/// Pushes a config, a small layer (one `PUT`) and a 40 MiB layer (chunks), then a manifest
/// referencing them; reads everything back and has skopeo fetch the manifest.
async fn push_image_and_read_back(tls: bool, auth: Auth) {
    let registry = registry(tls, auth);
    let client = registry_client(&registry);
    let host = registry.host.as_str();
    let repo = "airlock/pushed";

    let config = Bytes::from_static(
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
    );
    let config_digest = sha256(&config);
    let small = Generated {
        seed: 1,
        size: 300 * 1024 + 5,
    };
    let large = Generated {
        seed: 2,
        size: 40 * MIB + 3,
    };
    let (small_digest, large_digest) = (small.digest(), large.digest());

    assert_eq!(
        client.blob_exists(host, repo, &large_digest).await.unwrap(),
        None
    );
    let outcome = client
        .push_blob(
            host,
            repo,
            &config_digest,
            config.len() as u64,
            single(config.clone()),
        )
        .await
        .unwrap();
    assert!(!outcome.chunked);
    let outcome = client
        .push_blob(host, repo, &small_digest, small.size, |at| small.stream(at))
        .await
        .unwrap();
    assert_eq!(
        (outcome.bytes_sent, outcome.chunked, outcome.restarts),
        (small.size, false, 0)
    );
    let outcome = client
        .push_blob(host, repo, &large_digest, large.size, |at| large.stream(at))
        .await
        .unwrap();
    assert_eq!(
        (outcome.bytes_sent, outcome.chunked, outcome.restarts),
        (large.size, true, 0)
    );
    assert_eq!(
        client.blob_exists(host, repo, &large_digest).await.unwrap(),
        Some(large.size)
    );
    assert_eq!(
        client.blob_exists(host, repo, &small_digest).await.unwrap(),
        Some(small.size)
    );

    let manifest = manifest(
        (&config_digest, config.len() as u64),
        &[(&small_digest, small.size), (&large_digest, large.size)],
    );
    assert_eq!(
        client.manifest_exists(host, repo, "v1").await.unwrap(),
        None
    );
    let digest = client
        .put_manifest(host, repo, "v1", OCI_MANIFEST, manifest.clone())
        .await
        .unwrap();
    assert_eq!(digest, sha256(&manifest));
    assert_eq!(
        client.manifest_exists(host, repo, "v1").await.unwrap(),
        Some(digest.clone())
    );
    // By digest too (what a load does for the children of an index).
    assert_eq!(
        client
            .put_manifest(host, repo, &digest, OCI_MANIFEST, manifest.clone())
            .await
            .unwrap(),
        digest
    );

    let got = client.get_manifest(host, repo, "v1").await.unwrap();
    assert_eq!(
        (got.digest.as_str(), got.bytes),
        (digest.as_str(), manifest)
    );
    for d in [&config_digest, &small_digest, &large_digest] {
        assert_eq!(&pulled_digest(&client, host, repo, d).await, d);
    }
    let raw = skopeo_raw(
        host,
        &format!("{repo}:v1"),
        registry.ca_file.as_deref(),
        registry.credentials.as_ref(),
        registry.dir(),
    );
    assert_eq!(sha256(&raw), digest);
}

#[tokio::test]
async fn push_to_plain_registry() {
    push_image_and_read_back(false, Auth::None).await;
}

#[tokio::test]
async fn push_to_tls_registry_with_private_ca() {
    push_image_and_read_back(true, Auth::None).await;
}

#[tokio::test]
async fn push_with_basic_auth() {
    push_image_and_read_back(false, Auth::basic("alice", "wonderland")).await;
}

#[tokio::test]
async fn push_with_token_auth() {
    push_image_and_read_back(true, Auth::token("alice", "wonderland")).await;
}

/// Log lines at WARN and above, captured for the current thread (tokio tests run on it).
fn capture_warnings() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf: Arc<Mutex<Vec<u8>>> = Arc::default();
    let sink = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || Sink(sink.clone()))
        .finish();
    (buf, tracing::subscriber::set_default(subscriber))
}

#[tokio::test]
async fn nginx_body_limit_falls_back_to_small_chunks() {
    let (logs, _guard) = capture_warnings();
    let upstream = registry(false, Auth::None);
    let nginx = Nginx::start_tls_proxy(&upstream, "1m").unwrap_or_else(|e| panic!("{e:#}"));
    let client = client(&nginx.host, Some(&nginx.ca_file), None);
    let host = nginx.host.as_str();
    let repo = "proxied/image";

    // 3 MiB: a single PUT is refused (413), the upload starts over in small chunks.
    let mid = Generated {
        seed: 3,
        size: 3 * MIB,
    };
    let outcome = client
        .push_blob(host, repo, &mid.digest(), mid.size, |at| mid.stream(at))
        .await
        .unwrap();
    assert!(outcome.chunked, "{outcome:?}");
    assert_eq!(outcome.restarts, 1, "{outcome:?}");
    assert!(outcome.bytes_sent >= mid.size, "{outcome:?}");

    // 40 MiB: this registry is known to want small chunks now, no 413 any more.
    let large = Generated {
        seed: 4,
        size: 40 * MIB + 1,
    };
    let large_digest = large.digest();
    let outcome = client
        .push_blob(host, repo, &large_digest, large.size, |at| large.stream(at))
        .await
        .unwrap();
    assert_eq!(
        (outcome.bytes_sent, outcome.chunked, outcome.restarts),
        (large.size, true, 0)
    );
    assert_eq!(
        client.blob_exists(host, repo, &large_digest).await.unwrap(),
        Some(large.size)
    );
    assert_eq!(
        pulled_digest(&client, host, repo, &large_digest).await,
        large_digest
    );

    let config = Bytes::from_static(b"{}");
    let config_digest = sha256(&config);
    client
        .push_blob(host, repo, &config_digest, 2, single(config))
        .await
        .unwrap();
    let manifest = manifest((&config_digest, 2), &[(&large_digest, large.size)]);
    let digest = client
        .put_manifest(host, repo, "v1", OCI_MANIFEST, manifest.clone())
        .await
        .unwrap();
    let raw = skopeo_raw(
        host,
        &format!("{repo}:v1"),
        Some(&nginx.ca_file),
        None,
        upstream.dir(),
    );
    assert_eq!(sha256(&raw), digest);

    let logs = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert_eq!(logs.matches("(413)").count(), 1, "{logs}");
    assert!(logs.contains(host), "{logs}");

    // Every chunk went through nginx: the registry's `Location`s pointed back at it.
    let access = std::fs::read_to_string(nginx.access_log()).unwrap();
    let patches = access.lines().filter(|l| l.contains("\"PATCH ")).count();
    // 6 for the 3 MiB blob, 81 for the 40 MiB one, 1 for the config.
    assert_eq!(patches, 6 + 81 + 1, "{access}");
    assert!(access.contains("\" 413 "), "{access}");
}

#[tokio::test]
async fn mount_between_repositories_and_refusals() {
    let registry = registry(false, Auth::token("alice", "wonderland"));
    let issuer = registry.token_issuer().unwrap();
    let client = registry_client(&registry);
    let host = registry.host.as_str();
    let blob = Bytes::from_static(b"a layer shared by two repositories");
    let digest = sha256(&blob);
    for repo in ["team/source", "team/secret"] {
        client
            .push_blob(host, repo, &digest, blob.len() as u64, single(blob.clone()))
            .await
            .unwrap();
    }

    assert!(client
        .mount_blob(host, "team/target", &digest, "team/source")
        .await
        .unwrap());
    assert_eq!(
        client
            .blob_exists(host, "team/target", &digest)
            .await
            .unwrap(),
        Some(blob.len() as u64)
    );

    // A blob the source does not have: distribution opens an upload session instead (202).
    let absent = sha256(b"nowhere");
    assert!(!client
        .mount_blob(host, "team/other", &absent, "team/source")
        .await
        .unwrap());

    // No rights on the source: the token leaves its scope out and the registry answers 401
    // `insufficient_scope` (Harbor does this across projects); the caller then uploads.
    issuer.deny("team/secret");
    assert!(!client
        .mount_blob(host, "team/third", &digest, "team/secret")
        .await
        .unwrap());
    assert_eq!(
        client
            .blob_exists(host, "team/third", &digest)
            .await
            .unwrap(),
        None
    );
    client
        .push_blob(
            host,
            "team/third",
            &digest,
            blob.len() as u64,
            single(blob.clone()),
        )
        .await
        .unwrap();
    assert_eq!(
        client
            .blob_exists(host, "team/third", &digest)
            .await
            .unwrap(),
        Some(blob.len() as u64)
    );

    // No push rights on the target: a clear refusal naming the repository and the fix.
    issuer.deny("team/locked");
    let err = client
        .push_blob(
            host,
            "team/locked",
            &digest,
            blob.len() as u64,
            single(blob.clone()),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PushDenied { .. }), "{err:?}");
    let shown = err.to_string();
    assert!(shown.contains(&format!("`{host}/team/locked`")), "{shown}");
    assert!(shown.contains(&digest), "{shown}");
    assert!(shown.contains("--harbor-create-projects"), "{shown}");
}

#[tokio::test]
async fn bytes_that_do_not_match_the_digest_are_refused() {
    let registry = registry(false, Auth::None);
    let host = registry.host.as_str();
    // Small chunks, to cover a multi-chunk upload cheaply as well as a single PUT.
    let chunky = client_with(
        host,
        None,
        None,
        ClientOptions {
            monolithic_max: 0,
            chunk_size: 64 * 1024,
            ..ClientOptions::default()
        },
    );
    let blob = Generated {
        seed: 5,
        size: 200 * 1024,
    };
    let claimed = Generated { seed: 6, ..blob }.digest();
    for client in [registry_client(&registry), chunky.clone()] {
        let err = client
            .push_blob(host, "x/y", &claimed, blob.size, |at| blob.stream(at))
            .await
            .unwrap_err();
        match &err {
            Error::DigestMismatch { what, expected, .. } => {
                assert_eq!(expected, &claimed);
                assert!(what.contains(&format!("`{host}/x/y`")), "{what}");
            }
            _ => panic!("{err:?}"),
        }
        assert_eq!(
            client.blob_exists(host, "x/y", &claimed).await.unwrap(),
            None
        );
    }
    // The same client with the right digest: four chunks, then the closing PUT.
    let outcome = chunky
        .push_blob(host, "x/y", &blob.digest(), blob.size, |at| blob.stream(at))
        .await
        .unwrap();
    assert_eq!((outcome.bytes_sent, outcome.chunked), (blob.size, true));
}

#[tokio::test]
async fn a_stream_that_ends_early_is_a_source_error() {
    let registry = registry(false, Auth::None);
    let client = registry_client(&registry);
    let host = registry.host.as_str();
    let blob = Generated {
        seed: 7,
        size: 100 * 1024,
    };
    let short = Generated {
        size: blob.size - 10,
        ..blob
    };
    let err = client
        .push_blob(host, "x/y", &blob.digest(), blob.size, |at| {
            short.stream(at)
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BlobSource { .. }), "{err:?}");
    let mut chain = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        chain.push_str(&format!(": {s}"));
        source = s.source();
    }
    assert!(chain.contains("10 bytes before the blob's end"), "{chain}");
}

/// `push_manifest` says whether the registry indexed the manifest's `subject` (`OCI-Subject`,
/// distribution spec 1.1): the in-memory referrers registry does; distribution 2.8 accepts
/// the manifest and says nothing, so the pusher writes the referrers tag index itself.
#[tokio::test]
async fn push_manifest_reports_the_oci_subject_answer() {
    let subject = sha256(b"the subject");
    let referrer = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example+json","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{empty}","size":2}},"layers":[],"subject":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{subject}","size":7}}}}"#,
        empty = sha256(b"{}"),
    );
    let bytes = Bytes::from(referrer);
    let digest = sha256(&bytes);
    let media_type = "application/vnd.oci.image.manifest.v1+json";

    let fake = airlock_testkit::ReferrersRegistry::start().unwrap();
    let c = client(&fake.host, None, None);
    let pushed = c
        .push_manifest(&fake.host, "r/a", &digest, media_type, bytes.clone())
        .await
        .unwrap();
    assert_eq!(pushed.digest, digest);
    assert_eq!(pushed.subject.as_deref(), Some(subject.as_str()));
    let listed = c
        .referrers(&fake.host, "r/a", &subject, None)
        .await
        .unwrap()
        .unwrap();
    let index: serde_json::Value = serde_json::from_slice(&listed.bytes).unwrap();
    assert_eq!(index["manifests"][0]["digest"], digest.as_str());

    let reg = registry(false, Auth::None);
    let c = registry_client(&reg);
    // distribution checks the config blob of a manifest it accepts.
    let empty = Bytes::from_static(b"{}");
    c.push_blob(&reg.host, "r/a", &sha256(&empty), 2, |_| {
        futures_util::stream::iter([Ok::<_, std::io::Error>(empty.clone())])
    })
    .await
    .unwrap();
    let pushed = c
        .push_manifest(&reg.host, "r/a", &digest, media_type, bytes)
        .await
        .unwrap();
    assert_eq!(pushed.digest, digest);
    assert_eq!(pushed.subject, None);
    assert!(c
        .referrers(&reg.host, "r/a", &subject, None)
        .await
        .unwrap()
        .is_none());
}
