//! `airlock outdated`: newer patch and minor tags at a real origin registry (behind nginx,
//! whose access log shows that only tag lists and `HEAD`s were asked), a real mirror that
//! lacks a tag, serves another digest and lacks newer tags; a current spec and lock; a moved
//! tag; an origin that cannot be asked.

use std::path::Path;
use std::process::{Command, Output};

use airlock_testkit::{Auth, Nginx, Registry, RegistryOptions};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::support::*;

/// `skopeo copy` between two plain registries (skopeo keeps the manifest bytes).
fn copy(from: &str, to: &str) {
    let o = Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ])
        .arg(format!("docker://{from}"))
        .arg(format!("docker://{to}"))
        .output()
        .expect("run skopeo (install it: `cargo xtask install`)");
    assert!(
        o.status.success(),
        "skopeo copy {from} {to}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The digest of `reference` as skopeo reads it (sha256 of the raw manifest).
fn skopeo_digest(reference: &str) -> String {
    let o = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .expect("run skopeo (install it: `cargo xtask install`)");
    assert!(
        o.status.success(),
        "skopeo inspect {reference}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    format!("sha256:{}", hex::encode(Sha256::digest(&o.stdout)))
}

fn outdated(work: &Path, args: &[&str]) -> Output {
    let mut cmd = airlock(&work.join("cache"));
    cmd.arg("outdated").args(args);
    run(cmd, None)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The repositories of the origin: (repository, tag, fixture image), every tag a copy of a
/// small fixture image.
const ORIGIN: &[(&str, &str, &str)] = &[
    ("app", "v1.2.3", "fixtures/base"),
    ("app", "v1.2.4", "fixtures/base"),
    ("app", "v1.2.5", "fixtures/app-a"),
    ("app", "v1.3.0", "fixtures/app-b"),
    ("app", "v1.3.1-rc.1", "fixtures/base"),
    ("app", "v2.0.0", "fixtures/base"),
    ("app", "latest", "fixtures/base"),
    ("etcd", "3.5.9-0", "fixtures/base"),
    ("etcd", "3.5.12-0", "fixtures/app-a"),
    ("etcd", "v3.5.13", "fixtures/base"),
    ("web", "1.25.3-alpine", "fixtures/base"),
    ("web", "1.25.4-alpine", "fixtures/app-a"),
    ("web", "1.25.5", "fixtures/base"),
    ("cur", "0.9.0", "fixtures/app-a"),
    ("cur", "1.0.0", "fixtures/base"),
];

/// The mirror's repositories under `lan/`: app's tag with another digest and no newer tags,
/// etcd missing entirely, web and cur as the origin has them.
const MIRROR: &[(&str, &str, &str)] = &[
    ("app", "v1.2.3", "fixtures/app-a"),
    ("web", "1.25.3-alpine", "fixtures/base"),
    ("web", "1.25.4-alpine", "fixtures/app-a"),
    ("cur", "1.0.0", "fixtures/base"),
];

struct Setup {
    origin: Registry,
    proxy: Nginx,
    mirror: Registry,
    _fixtures: Registry,
}

fn setup() -> Setup {
    let fixtures = registry(false, Auth::None);
    let origin = Registry::start(RegistryOptions::default()).expect("start a registry");
    let mirror = Registry::start(RegistryOptions::default()).expect("start a registry");
    for (repo, tag, from) in ORIGIN {
        copy(
            &format!("{}/{from}:1", fixtures.host),
            &format!("{}/{repo}:{tag}", origin.host),
        );
    }
    for (repo, tag, from) in MIRROR {
        copy(
            &format!("{}/{from}:1", fixtures.host),
            &format!("{}/lan/{repo}:{tag}", mirror.host),
        );
    }
    let proxy = Nginx::start_tls_proxy(&origin, "1m").expect("start nginx (`cargo xtask install`)");
    Setup {
        origin,
        proxy,
        mirror,
        _fixtures: fixtures,
    }
}

/// The `registries:` block: the origin (through nginx) mirrored at `MIRROR/lan`.
fn registries(s: &Setup) -> String {
    format!(
        "    {p}: {{caFile: {ca}, mirrors: [{m}/lan]}}\n    {m}: {{plainHttp: true}}\n",
        p = s.proxy.host,
        ca = s.proxy.ca_file.display(),
        m = s.mirror.host
    )
}

/// Must show 4: newer patch and minor tags and a lagging mirror, each reported, exit 1; only
/// tag lists and `HEAD`s reach the origin.
#[test]
fn outdated_reports_newer_tags_and_a_lagging_mirror() {
    let s = setup();
    let work = workdir();
    let p = &s.proxy.host;
    let m = &s.mirror.host;
    let app_a = skopeo_digest(&format!("{}/cur:0.9.0", s.origin.host));
    let images: Vec<String> = [
        "app:v1.2.3".to_string(),
        "etcd:3.5.9-0".to_string(),
        "web:1.25.3-alpine".to_string(),
        "cur:1.0.0".to_string(),
        "app:latest".to_string(),
        // Pinned: the tag is checked, the mirror asked for the digest (it has it).
        format!("web:1.25.4-alpine@{app_a}"),
        // Pinned without a tag: not checked, but the mirror lacks the digest.
        format!("cur@{app_a}"),
    ]
    .iter()
    .map(|i| format!("{p}/{i}"))
    .collect();
    let spec = write_spec(work.path(), "o", &images, None, &registries(&s));

    let o = outdated(work.path(), &[spec.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    let app_origin = skopeo_digest(&format!("{}/app:v1.2.3", s.origin.host));
    let app_mirror = skopeo_digest(&format!("{m}/lan/app:v1.2.3"));
    assert_ne!(app_origin, app_mirror);
    let want = [
        format!("{p}/app:v1.2.3 → v1.2.5 (patch), v1.3.0 (minor)"),
        format!(
            "{m}/lan/app lags {p}/app: tag `v1.2.3` is {app_mirror} there, {app_origin} at the \
             origin; newer tags v1.2.4, v1.2.5, v1.3.0 missing (for {p}/app:v1.2.3)"
        ),
        format!("{p}/etcd:3.5.9-0 → 3.5.12-0 (patch)"),
        format!(
            "{m}/lan/etcd lags {p}/etcd: tag `3.5.9-0` missing; newer tag 3.5.12-0 missing (for \
             {p}/etcd:3.5.9-0)"
        ),
        format!("{p}/web:1.25.3-alpine → 1.25.4-alpine (patch)"),
        // `latest` is not a version, but the mirror lacks it all the same.
        format!("{m}/lan/app lags {p}/app: tag `latest` missing (for {p}/app:latest)"),
        format!("{m}/lan/cur lags {p}/cur: digest {app_a} missing (for {p}/cur@{app_a})"),
    ];
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(got, want, "{out}");
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "note: {p}/app:latest: tag `latest` is not a version"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("note: {p}/cur@{app_a}: pinned, not checked")),
        "{err}"
    );
    assert!(
        err.contains("outdated: 7 images checked: 3 outdated, 4 mirrors lagging, 0 unreachable"),
        "{err}"
    );

    // The JSON report says the same, for every image.
    let o = outdated(work.path(), &["--json", spec.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let doc: Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    assert_eq!(doc["verdict"], "outdated");
    assert_eq!(doc["kind"], "spec");
    let imgs = doc["images"].as_array().unwrap();
    assert_eq!(imgs.len(), 7, "{doc:#}");
    assert_eq!(imgs[0]["check"]["status"], "outdated");
    assert_eq!(imgs[0]["check"]["patch"], "v1.2.5");
    assert_eq!(imgs[0]["check"]["minor"], "v1.3.0");
    let lags = &imgs[0]["mirrors"][0]["lags"];
    assert_eq!(lags[0]["kind"], "different-digest", "{doc:#}");
    assert_eq!(lags[0]["mirror"], app_mirror.as_str());
    assert_eq!(lags[0]["origin"], app_origin.as_str());
    assert_eq!(lags[1]["kind"], "missing-newer");
    assert_eq!(imgs[1]["mirrors"][0]["lags"][0]["kind"], "missing-tag");
    assert_eq!(imgs[2]["mirrors"][0]["status"], "current");
    assert_eq!(imgs[3]["check"]["status"], "current");
    assert_eq!(imgs[3]["mirrors"][0]["status"], "current");
    assert_eq!(imgs[4]["check"]["status"], "not-a-version");
    assert_eq!(doc["totals"]["outdated"], 3);
    assert_eq!(imgs[5]["check"]["status"], "current");
    assert_eq!(imgs[5]["mirrors"][0]["status"], "current");
    assert_eq!(imgs[6]["check"]["status"], "pinned");
    assert_eq!(imgs[6]["mirrors"][0]["lags"][0]["kind"], "missing-digest");
    assert_eq!(doc["totals"]["mirrorsLagging"], 4);

    // Only tag lists and HEADs went to the origin: no manifest GET, no blob.
    let log = std::fs::read_to_string(s.proxy.access_log()).unwrap();
    let asked: Vec<&str> = log.lines().filter(|l| l.contains("/v2/")).collect();
    assert!(
        asked.iter().any(|l| l.contains("\"GET /v2/app/tags/list")),
        "{log}"
    );
    assert!(
        asked
            .iter()
            .any(|l| l.contains("\"HEAD /v2/app/manifests/v1.2.3")),
        "{log}"
    );
    // Each repository's tags are listed once per run, however many images it has (`web` has
    // two); two runs here.
    let web_lists = asked
        .iter()
        .filter(|l| l.contains("\"GET /v2/web/tags/list"))
        .count();
    assert_eq!(web_lists, 2, "{log}");
    for l in &asked {
        let ok = l.contains("\"HEAD /v2/") && l.contains("/manifests/")
            || l.contains("\"GET /v2/") && l.contains("/tags/list")
            || l.contains("\"GET /v2/ ");
        assert!(ok, "not a tag list or HEAD: {l}");
    }
}

/// A spec that is current everywhere exits 0; so does its lock, until a tag moves upstream.
#[test]
fn a_current_spec_and_lock_exit_0_and_a_moved_tag_is_reported() {
    let s = setup();
    let work = workdir();
    let p = &s.proxy.host;
    let images = vec![format!("{p}/web:1.25.4-alpine"), format!("{p}/cur:1.0.0")];
    let spec = write_spec(work.path(), "c", &images, None, &registries(&s));
    let o = outdated(work.path(), &[spec.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(stdout(&o), "");
    assert!(
        stderr(&o).contains("current: 2 images checked: 0 outdated, 0 mirrors lagging"),
        "{}",
        stderr(&o)
    );

    // A lock through the mirror: its sources are the mirror's repositories.
    let lock = work.path().join("c.lock");
    let mut cmd = airlock(&work.path().join("cache"));
    cmd.args(["lock", "--via-mirrors", "-o"])
        .arg(&lock)
        .arg(&spec);
    let o = run(cmd, None);
    assert!(o.status.success(), "{}", stderr(&o));
    let ca = format!("{p}={}", s.proxy.ca_file.display());
    let hosts = [
        "--ca-file",
        ca.as_str(),
        "--plain-http",
        s.mirror.host.as_str(),
    ];
    let lock_path = lock.to_str().unwrap();
    let o = outdated(work.path(), &[&hosts[..], &["--json", lock_path]].concat());
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["kind"], "lock");
    assert_eq!(doc["verdict"], "current");
    assert_eq!(
        doc["images"][0]["mirrors"][0]["mirror"],
        format!("{}/lan/cur", s.mirror.host).as_str(),
        "{doc:#}"
    );

    // The origin moves `cur:1.0.0`: the lock is behind and the mirror serves the old digest.
    let fixtures = registry(false, Auth::None);
    copy(
        &format!("{}/fixtures/app-b:1", fixtures.host),
        &format!("{}/cur:1.0.0", s.origin.host),
    );
    let moved_to = skopeo_digest(&format!("{}/cur:1.0.0", s.origin.host));
    let o = outdated(work.path(), &[&hosts[..], &[lock_path]].concat());
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains(&format!(
            "{p}/cur:1.0.0: the tag moved upstream: {p}/cur serves {moved_to}"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{}/lan/cur lags {p}/cur: tag `1.0.0` is ",
            s.mirror.host
        )),
        "{out}"
    );
}

/// An origin that cannot be asked is named, and the run exits 2 (the report is incomplete).
#[test]
fn an_unreachable_origin_is_named_and_exits_2() {
    let work = workdir();
    // A port nothing listens on: a registry started and stopped.
    let mut gone = Registry::start(RegistryOptions::default()).expect("start a registry");
    let host = gone.host.clone();
    gone.stop();
    let images = vec![format!("{host}/app:v1.2.3")];
    let spec = write_spec(
        work.path(),
        "u",
        &images,
        None,
        &format!("    {host}: {{plainHttp: true}}\n"),
    );
    let o = outdated(work.path(), &["--retries", "0", spec.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains(&format!(
            "{host}/app:v1.2.3: cannot list the tags of {host}/app: cannot reach"
        )),
        "{out}"
    );
    assert!(
        stderr(&o).contains("incomplete: 1 images checked"),
        "{}",
        stderr(&o)
    );

    // A file that is neither a spec nor a lock: exit 2 with its position.
    let bad = work.path().join("bad.lock");
    std::fs::write(&bad, "{\"lockVersion\": 1, \"images\": 3}").unwrap();
    let o = outdated(work.path(), &[bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("bad.lock:1:"), "{}", stderr(&o));
}
