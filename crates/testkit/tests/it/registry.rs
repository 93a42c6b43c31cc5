use std::process::Command;
use std::time::Instant;

use airlock_testkit::fixtures::{self, FixtureSet};
use airlock_testkit::{Auth, Registry, RegistryOptions};

use crate::{output, sha256, succeed, tool};

const USER: &str = "alice";
const PASS: &str = "wonderland";

/// `skopeo inspect --raw` of `reference` on `registry`, with `creds` (`None`: anonymous).
fn inspect(registry: &Registry, reference: &str, creds: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(tool("skopeo"));
    cmd.args(["inspect", "--raw"]);
    skopeo_access(&mut cmd, registry, "", creds);
    cmd.arg(format!("docker://{}/{reference}", registry.host));
    output(&mut cmd)
}

/// TLS and credential flags for a skopeo command (`prefix` is "", "src-" or "dest-").
fn skopeo_access(cmd: &mut Command, registry: &Registry, prefix: &str, creds: Option<&str>) {
    match &registry.ca_file {
        Some(ca) => {
            let dir = registry.dir().join("skopeo-certs");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::copy(ca, dir.join("ca.crt")).unwrap();
            cmd.arg(format!("--{prefix}cert-dir={}", dir.display()));
        }
        None => {
            cmd.arg(format!("--{prefix}tls-verify=false"));
        }
    }
    match creds {
        Some(creds) => cmd.arg(format!("--{prefix}creds={creds}")),
        None => cmd.arg(format!("--{prefix}no-creds")),
    };
}

fn multi_digest() -> String {
    fixtures::fixture_set()
        .unwrap()
        .image("fixtures/multi")
        .unwrap()
        .digest
        .clone()
}

fn check_variant(tls: bool, auth: Auth) {
    let started = Instant::now();
    let registry = Registry::with_fixtures(tls, auth.clone()).unwrap();
    eprintln!("{auth:?} tls={tls}: started in {:?}", started.elapsed());
    assert_eq!(registry.url().starts_with("https://"), tls);
    let expected = multi_digest();
    let good = registry
        .credentials
        .as_ref()
        .map(|(user, pass)| format!("{user}:{pass}"));
    let out = inspect(&registry, "fixtures/multi:1", good.as_deref());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sha256(&out.stdout), expected);
    if auth != Auth::None {
        for creds in [Some(format!("{USER}:wrong")), None] {
            let out = inspect(&registry, "fixtures/multi:1", creds.as_deref());
            assert!(!out.status.success(), "{creds:?} accepted");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains("unauthorized") || stderr.contains("denied"),
                "{creds:?}: {stderr}"
            );
        }
    }
}

#[test]
fn plain_registry_serves_fixtures() {
    check_variant(false, Auth::None);
}

#[test]
fn tls_registry_serves_fixtures() {
    check_variant(true, Auth::None);
}

#[test]
fn basic_auth_registry_serves_fixtures() {
    check_variant(false, Auth::basic(USER, PASS));
}

#[test]
fn token_auth_registry_serves_fixtures() {
    check_variant(false, Auth::token(USER, PASS));
}

#[test]
fn token_auth_over_tls_serves_fixtures() {
    check_variant(true, Auth::token(USER, PASS));
}

fn copy_all(registry: &Registry, set: &FixtureSet, creds: Option<&str>, only: &[&str]) {
    for image in &set.images {
        if !only.is_empty() && !only.contains(&image.repository.as_str()) {
            continue;
        }
        for tag in &image.tags {
            let out = tempfile::tempdir().unwrap();
            let mut cmd = Command::new(tool("skopeo"));
            cmd.args(["copy", "--all", "--quiet"]);
            skopeo_access(&mut cmd, registry, "src-", creds);
            cmd.arg(format!(
                "docker://{}/{}:{tag}",
                registry.host, image.repository
            ));
            cmd.arg(format!("dir:{}", out.path().display()));
            succeed(&mut cmd);
            let manifest = std::fs::read(out.path().join("manifest.json")).unwrap();
            assert_eq!(
                sha256(&manifest),
                image.digest,
                "{}:{tag}",
                image.repository
            );
            let copied = std::fs::read_dir(out.path()).unwrap().count();
            // dir: holds every blob (the top manifest as manifest.json) plus a version file.
            assert_eq!(copied, image.blobs.len() + 1, "{}:{tag}", image.repository);
        }
    }
}

/// skopeo copies every image, every platform, every tag, verifying every digest.
#[test]
fn skopeo_copies_every_image_from_the_registry() {
    let set = fixtures::fixture_set().unwrap();
    let registry = Registry::with_fixtures(false, Auth::None).unwrap();
    copy_all(&registry, &set, None, &[]);
}

#[test]
fn skopeo_copies_through_token_auth_and_tls() {
    let set = fixtures::fixture_set().unwrap();
    let registry = Registry::with_fixtures(true, Auth::token(USER, PASS)).unwrap();
    copy_all(
        &registry,
        &set,
        Some(&format!("{USER}:{PASS}")),
        &["fixtures/docker-list", "fixtures/multi"],
    );
    assert!(registry.token_issuer().unwrap().tokens_issued() > 0);
}

/// The shared storage must never be written: registries on it are read-only.
#[test]
fn fixture_registries_refuse_pushes() {
    let set = fixtures::fixture_set().unwrap();
    let registry = Registry::with_fixtures(false, Auth::None).unwrap();
    let err = fixtures::push(&set, &registry.url(), "copy").unwrap_err();
    assert!(format!("{err:#}").contains("405"), "{err:#}");
}

/// push_fixtures goes through token auth and TLS; the registry survives kill and restart.
#[test]
fn push_kill_restart() {
    let set = fixtures::fixture_set().unwrap();
    let storage = tempfile::tempdir().unwrap();
    let mut registry = Registry::start(RegistryOptions {
        tls: true,
        auth: Auth::token(USER, PASS),
        storage: Some(storage.path().to_path_buf()),
    })
    .unwrap();
    registry
        .push_fixtures(&set, "mirror", &["fixtures/app-a", "k8s/pause"])
        .unwrap();
    let creds = format!("{USER}:{PASS}");
    let app_a = set.image("fixtures/app-a").unwrap();
    let out = inspect(&registry, "mirror/fixtures/app-a:latest", Some(&creds));
    assert_eq!(sha256(&out.stdout), app_a.digest);

    let pid = registry.pid().unwrap();
    registry.kill();
    assert_eq!(registry.pid(), None);
    assert!(!inspect(&registry, "mirror/k8s/pause:3.9", Some(&creds))
        .status
        .success());
    registry.restart().unwrap();
    assert_ne!(registry.pid().unwrap(), pid);
    let pause = set.image("k8s/pause").unwrap();
    let out = inspect(&registry, "mirror/k8s/pause:3.9", Some(&creds));
    assert_eq!(sha256(&out.stdout), pause.digest);
    registry.stop();
    registry.stop();
    assert!(storage
        .path()
        .join("docker/registry/v2/repositories/mirror")
        .is_dir());
    drop(registry);
    assert!(storage.path().is_dir(), "a given storage directory is kept");
}

/// The token issuer speaks containerd's OAuth2 POST form too, and refuses bad credentials.
#[test]
fn token_issuer_answers_get_and_post() {
    let registry = Registry::start(RegistryOptions {
        auth: Auth::token(USER, PASS),
        ..RegistryOptions::default()
    })
    .unwrap();
    let issuer = registry.token_issuer().unwrap();
    let realm = issuer.realm.clone();
    let service = issuer.service.clone();
    std::thread::spawn(move || {
        let client = reqwest::blocking::Client::new();
        let form = |user: &str, pass: &str| {
            client
                .post(&realm)
                .form(&[
                    ("grant_type", "password"),
                    ("username", user),
                    ("password", pass),
                    ("service", &service),
                    ("scope", "repository:fixtures/base:pull"),
                ])
                .send()
                .unwrap()
        };
        let ok = form(USER, PASS);
        assert_eq!(ok.status(), 200);
        let body: serde_json::Value = ok.json().unwrap();
        assert_eq!(body["expires_in"], 300);
        assert_eq!(body["token"], body["access_token"]);
        let claims = body["token"].as_str().unwrap().split('.').nth(1).unwrap().to_string();
        use base64::Engine as _;
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(claims)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            claims["access"],
            serde_json::json!([{"type": "repository", "name": "fixtures/base", "actions": ["pull"]}])
        );
        assert_eq!(form(USER, "nope").status(), 401);
        let get = |user: Option<(&str, &str)>| {
            let mut req = client.get(format!(
                "{realm}?service={service}&scope=repository:a:pull&scope=repository:b:pull,push"
            ));
            if let Some((user, pass)) = user {
                req = req.basic_auth(user, Some(pass));
            }
            req.send().unwrap().status()
        };
        assert_eq!(get(Some((USER, PASS))), 200);
        assert_eq!(get(Some((USER, "nope"))), 401);
        assert_eq!(get(None), 401);
    })
    .join()
    .unwrap();
}
