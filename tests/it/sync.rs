//! `airlock sync`: a spec's images registry to registry, checked with skopeo; a rerun through
//! an nginx in front of the source asks for no manifest and no blob; a moved tag moves
//! exactly that tag; a source killed mid-run fails the images it served and moves none of
//! their tags; `--dry-run` sends nothing but HEADs; `--locked` takes the lock's digests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use airlock_testkit::fixtures::{self, FixtureImage, FixtureSet};
use airlock_testkit::{Nginx, Registry, RegistryOptions};
use serde_json::Value;

use crate::support::{airlock, fixture_images, fixture_set, run, stderr, workdir};

/// A writable source registry holding every fixture image (a copy of the cached storage).
fn source(work: &Path) -> Registry {
    let storage = work.join("source-storage");
    let cached = fixtures::registry_storage().expect("fixture registry storage");
    let o = Command::new("cp")
        .arg("-a")
        .arg(&cached)
        .arg(&storage)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Registry::start(RegistryOptions {
        storage: Some(storage),
        ..RegistryOptions::default()
    })
    .expect("start the source registry (`cargo xtask install`)")
}

fn empty_registry() -> Registry {
    Registry::start(RegistryOptions::default()).expect("start the target registry")
}

/// The fixture images but the 100 MiB one, each tag an entry.
fn small(set: &FixtureSet) -> Vec<&FixtureImage> {
    fixture_images(set)
        .into_iter()
        .filter(|i| i.repository != "fixtures/big")
        .collect()
}

/// A spec of `images` (each tag an entry) at `host`, with `settings` for it.
fn spec(work: &Path, host: &str, images: &[&FixtureImage], extra: &str, settings: &str) -> PathBuf {
    let mut s = String::from(
        "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {name: mirror}\nspec:\n  images:\n",
    );
    for i in images {
        for t in &i.tags {
            s.push_str(&format!("    - {host}/{}:{t}\n", i.repository));
        }
    }
    s.push_str(extra);
    s.push_str(&format!("  registries:\n    {host}: {settings}\n"));
    let p = work.join("spec.yaml");
    std::fs::write(&p, s).unwrap();
    p
}

fn sync(work: &Path, spec: &Path, target: &Registry, more: &[&str]) -> Output {
    let mut c = airlock(&work.join("cache"));
    c.arg("sync")
        .arg(spec)
        .arg("--to")
        .arg(format!("registry://{}/mirror", target.host))
        .args(["--plain-http", "--names", "drop-host", "--json"])
        .args(more);
    run(c, None)
}

fn report(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "--json: {e}\n{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            stderr(o)
        )
    })
}

/// sha256 of `skopeo inspect --raw` of a reference on a plain-HTTP registry.
fn raw_digest(reference: &str) -> Result<String, String> {
    let o = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .expect("run skopeo (`cargo xtask install`)");
    if !o.status.success() {
        return Err(String::from_utf8_lossy(&o.stderr).into_owned());
    }
    Ok(format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&o.stdout))
    ))
}

/// `skopeo copy` of a reference into a directory: succeeds only when every blob is there
/// and matches its digest.
fn skopeo_copy_ok(reference: &str, out: &Path) -> Result<(), String> {
    let o = Command::new("skopeo")
        .args(["copy", "--quiet", "--all", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("dir:{}", out.display()))
        .output()
        .expect("run skopeo");
    if o.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).into_owned())
    }
}

fn skopeo_retag(from: &str, to: &str) {
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
        .expect("run skopeo");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Access log lines after `from` bytes.
fn log_after(path: &Path, from: usize) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text[from.min(text.len())..]
        .lines()
        .map(str::to_string)
        .collect()
}

fn log_len(path: &Path) -> usize {
    std::fs::metadata(path).map_or(0, |m| m.len() as usize)
}

/// Must show 1: every image and tag lands with the source's digest; the rerun, through an
/// nginx in front of the source, is `unchanged` and asks for no manifest and no blob.
#[test]
fn sync_into_an_empty_registry_then_a_rerun_asks_the_source_for_nothing() {
    let work = workdir();
    let set = fixture_set();
    let images = small(&set);
    let src = source(work.path());
    let nginx = Nginx::start_tls_proxy(&src, "0").unwrap();
    let target = empty_registry();
    let settings = format!("{{caFile: {}}}", nginx.ca_file.display());
    let spec = spec(work.path(), &nginx.host, &images, "", &settings);

    let o = sync(work.path(), &spec, &target, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = report(&o);
    let entries: usize = images.iter().map(|i| i.tags.len()).sum();
    assert_eq!(r["images"].as_array().unwrap().len(), entries, "{r:#}");
    for i in r["images"].as_array().unwrap() {
        assert_eq!(i["change"]["kind"], "created", "{i:#}");
    }
    for image in &images {
        for t in &image.tags {
            let at = format!("{}/mirror/{}:{t}", target.host, image.repository);
            assert_eq!(raw_digest(&at).unwrap(), image.digest, "{at}");
        }
    }

    let before = log_len(&nginx.access_log());
    let o = sync(work.path(), &spec, &target, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stderr(&o);
    for image in &images {
        for t in &image.tags {
            let line = format!("{}/{}:{t}: unchanged", nginx.host, image.repository);
            assert!(text.contains(&line), "{line}\n{text}");
        }
    }
    let r = report(&o);
    assert_eq!(r["totals"]["unchanged"], entries as u64, "{r:#}");
    let lines = log_after(&nginx.access_log(), before);
    let gets: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("\"GET ") && l.contains("/manifests/"))
        .collect();
    let blobs: Vec<&String> = lines.iter().filter(|l| l.contains("/blobs/")).collect();
    assert!(gets.is_empty(), "manifest GETs on a no-op run: {gets:#?}");
    assert!(blobs.is_empty(), "blob requests on a no-op run: {blobs:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"HEAD ") && l.contains("/manifests/")),
        "the rerun asked with HEAD: {lines:#?}"
    );
}

/// A platform-filtered index lands as the index `bundle` writes (only the kept platform);
/// its rerun is still `unchanged` without a manifest GET at the source (the marker tag).
#[test]
fn a_filtered_index_reruns_without_asking_the_source() {
    let work = workdir();
    let set = fixture_set();
    let multi = crate::support::find(&set, "fixtures/multi");
    let src = source(work.path());
    let nginx = Nginx::start_tls_proxy(&src, "0").unwrap();
    let target = empty_registry();
    let settings = format!("{{caFile: {}}}", nginx.ca_file.display());
    let spec = spec(
        work.path(),
        &nginx.host,
        &[],
        &format!(
            "    - {{name: {}/fixtures/multi:1, platforms: [linux/amd64]}}\n",
            nginx.host
        ),
        &settings,
    );
    let o = sync(work.path(), &spec, &target, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let at = format!("{}/mirror/fixtures/multi:1", target.host);
    let index = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{at}"))
        .output()
        .unwrap();
    let index: Value = serde_json::from_slice(&index.stdout).unwrap();
    let kept = index["manifests"].as_array().unwrap();
    assert_eq!(kept.len(), 1, "{index:#}");
    assert_eq!(kept[0]["platform"]["architecture"], "amd64");
    assert_ne!(raw_digest(&at).unwrap(), multi.digest);
    skopeo_copy_ok(&at, &work.path().join("multi")).unwrap();
    // The same index a bundle of the same spec carries (so load and sync agree).
    let mut c = airlock(&work.path().join("cache"));
    c.arg("bundle")
        .arg(&spec)
        .arg("-o")
        .arg(work.path().join("multi.tar.zst"))
        .arg("--json");
    let b = run(c, None);
    assert_eq!(b.status.code(), Some(0), "{}", stderr(&b));
    let bundled: Value = serde_json::from_slice(&b.stdout).unwrap();
    assert_eq!(
        bundled["images"][0]["digest"].as_str().unwrap(),
        raw_digest(&at).unwrap()
    );

    let before = log_len(&nginx.access_log());
    let o = sync(work.path(), &spec, &target, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(report(&o)["totals"]["unchanged"], 1);
    let lines = log_after(&nginx.access_log(), before);
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("\"GET ") && l.contains("/manifests/") || l.contains("/blobs/")),
        "{lines:#?}"
    );
}

/// Must show 2, first half: a tag moved upstream moves exactly that tag at the next run,
/// and only the new blobs are sent; `--locked` keeps the lock's digest meanwhile.
#[test]
fn a_moved_tag_moves_exactly_that_tag_and_sends_only_new_blobs() {
    let work = workdir();
    let set = fixture_set();
    let images = small(&set);
    let src = source(work.path());
    let target = empty_registry();
    let spec = spec(work.path(), &src.host, &images, "", "{plainHttp: true}");
    let lock = work.path().join("mirror.lock");
    let o = sync(
        work.path(),
        &spec,
        &target,
        &["--lock", lock.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(lock.is_file());

    // `fixtures/base:1` now names the pause image (blobs the target has nowhere).
    let base = crate::support::find(&set, "fixtures/base");
    let pause = crate::support::find(&set, "k8s/pause");
    skopeo_retag(
        &format!("{}/k8s/pause:3.9", src.host),
        &format!("{}/fixtures/base:1", src.host),
    );

    // --locked: the lock's digest is the truth; nothing moves.
    let o = sync(
        work.path(),
        &spec,
        &target,
        &["--locked", "--lock", lock.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let entries: usize = images.iter().map(|i| i.tags.len()).sum();
    assert_eq!(report(&o)["totals"]["unchanged"], entries as u64);
    let at = format!("{}/mirror/fixtures/base:1", target.host);
    assert_eq!(raw_digest(&at).unwrap(), base.digest);

    // --dry-run: says it would move, moves nothing.
    let o = sync(work.path(), &spec, &target, &["--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "would be moved 1 from {} to {}",
            base.digest, pause.digest
        )),
        "{}",
        stderr(&o)
    );
    assert_eq!(raw_digest(&at).unwrap(), base.digest);

    let o = sync(work.path(), &spec, &target, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stderr(&o);
    assert!(
        text.contains(&format!("moved 1 from {} to {}", base.digest, pause.digest)),
        "{text}"
    );
    let r = report(&o);
    let changed: Vec<&Value> = r["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["change"]["kind"] != "unchanged")
        .collect();
    assert_eq!(changed.len(), 1, "{r:#}");
    assert_eq!(changed[0]["image"], format!("{}/fixtures/base:1", src.host));
    assert_eq!(raw_digest(&at).unwrap(), pause.digest);
    // The new blobs: pause's config and layers that none of the synced images has.
    let old: std::collections::HashSet<&str> = images
        .iter()
        .flat_map(|i| i.blobs.iter().map(|(d, _)| d.as_str()))
        .collect();
    let documents: std::collections::HashSet<&str> = pause
        .manifests
        .iter()
        .map(|m| m.digest.as_str())
        .chain([pause.digest.as_str()])
        .collect();
    let new = pause
        .blobs
        .iter()
        .filter(|(d, _)| !old.contains(d.as_str()) && !documents.contains(d.as_str()))
        .count();
    assert!(new > 0);
    assert_eq!(r["totals"]["blobs_copied"], new as u64, "{r:#}");
    for image in images.iter().filter(|i| i.repository != "fixtures/base") {
        for t in &image.tags {
            let at = format!("{}/mirror/{}:{t}", target.host, image.repository);
            assert_eq!(raw_digest(&at).unwrap(), image.digest, "{at}");
        }
    }
}

/// Must show 2, second half: the source dies while a large blob streams; the run exits 1
/// naming the image, every tag at the target points at complete content, and the rerun
/// (source restarted on its storage) completes.
#[test]
fn a_source_killed_mid_sync_fails_its_images_and_the_rerun_completes() {
    let work = workdir();
    let set = fixture_set();
    let big = crate::support::find(&set, "fixtures/big");
    let mut images = small(&set);
    images.push(big);
    let mut src = source(work.path());
    let target = empty_registry();
    let spec = spec(work.path(), &src.host, &images, "", "{plainHttp: true}");

    let mut c = airlock(&work.path().join("cache"));
    c.arg("sync")
        .arg(&spec)
        .arg("--to")
        .arg(format!("registry://{}/mirror", target.host))
        .args(["--plain-http", "--names", "drop-host", "--retries", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    // An upload of the big image's layer has begun at the target: the source dies.
    let uploads = target
        .storage
        .join("docker/registry/v2/repositories/mirror/fixtures/big/_uploads");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let started = std::fs::read_dir(&uploads)
            .map(|d| {
                d.flatten()
                    .any(|e| std::fs::metadata(e.path().join("data")).is_ok_and(|m| m.len() > 0))
            })
            .unwrap_or(false);
        if started {
            break;
        }
        assert!(Instant::now() < deadline, "no upload of fixtures/big began");
        std::thread::sleep(Duration::from_millis(2));
    }
    src.kill();
    let o = child.wait_with_output().unwrap();
    let text = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    let big_ref = format!("{}/fixtures/big:1", src.host);
    assert!(text.contains(&format!("{big_ref}: failed")), "{text}");
    assert!(text.contains("image(s) failed"), "{text}");
    // No tag points at missing content: each tag there copies completely.
    let big_at = format!("{}/mirror/fixtures/big:1", target.host);
    assert!(
        raw_digest(&big_at).is_err(),
        "the failed image's tag was pushed"
    );
    for (n, image) in images.iter().enumerate() {
        for t in &image.tags {
            let at = format!("{}/mirror/{}:{t}", target.host, image.repository);
            if raw_digest(&at).is_ok() {
                skopeo_copy_ok(&at, &work.path().join(format!("copy-{n}-{t}"))).unwrap();
            }
        }
    }

    src.restart().unwrap();
    let o = sync(work.path(), &spec, &target, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(raw_digest(&big_at).unwrap(), big.digest);
    skopeo_copy_ok(&big_at, &work.path().join("big")).unwrap();
}

/// `--dry-run` into an empty registry: what would be copied, and nothing but HEADs (and the
/// `/v2/` ping) reach the target.
#[test]
fn a_dry_run_sends_the_target_nothing_but_heads() {
    let work = workdir();
    let set = fixture_set();
    let images = small(&set);
    let src = source(work.path());
    let target = empty_registry();
    let proxy = Nginx::start_tls_proxy(&target, "0").unwrap();
    let spec = spec(work.path(), &src.host, &images, "", "{plainHttp: true}");
    let mut c = airlock(&work.path().join("cache"));
    c.arg("sync")
        .arg(&spec)
        .arg("--to")
        .arg(format!("registry://{}/mirror", proxy.host))
        .arg("--ca-file")
        .arg(&proxy.ca_file)
        .args(["--names", "drop-host", "--dry-run", "--json"]);
    let o = run(c, None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = report(&o);
    assert_eq!(r["dry_run"], true);
    assert!(r["totals"]["blobs_copied"].as_u64().unwrap() > 0, "{r:#}");
    assert!(stderr(&o).contains("would be created"), "{}", stderr(&o));
    let lines = log_after(&proxy.access_log(), 0);
    let sent: Vec<&String> = lines
        .iter()
        .filter(|l| !l.contains("\"HEAD ") && !l.contains("\"GET /v2/ "))
        .collect();
    assert!(sent.is_empty(), "{sent:#?}");
    let at = format!("{}/mirror/fixtures/base:1", target.host);
    assert!(raw_digest(&at).is_err());
}

/// A registry that answers every manifest request with 429, `Retry-After` and Docker Hub's
/// budget headers (`testkit::RateLimited` in front of a real one): the image fails naming the
/// wait, and the budget is reported.
#[test]
fn a_rate_limited_source_is_reported_with_its_budget() {
    let upstream = Registry::with_fixtures(false, airlock_testkit::Auth::None).unwrap();
    let front =
        airlock_testkit::RateLimited::start(&upstream.host, (100, 0), usize::MAX, 3600).unwrap();
    let host = front.host.clone();
    let work = workdir();
    let target = empty_registry();
    let set = fixture_set();
    let base = crate::support::find(&set, "fixtures/base");
    let spec = spec(work.path(), &host, &[base], "", "{plainHttp: true}");
    let o = sync(work.path(), &spec, &target, &["--retries", "0"]);
    let text = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("{host}/fixtures/base:1: failed")),
        "{text}"
    );
    assert!(text.contains("the registry asked to wait 1 h"), "{text}");
    assert!(
        text.contains(&format!(
            "rate limit: {host}: 0 of 100 requests left (per 6 h)"
        )),
        "{text}"
    );
    let r = report(&o);
    assert_eq!(r["rate_limits"][0]["remaining"], 0, "{r:#}");
}

/// A cosign signature comes along after its image, under its tag, with the source's digest;
/// a rerun finds it current with `HEAD`s and asks for no manifest and no blob.
#[test]
fn signatures_follow_their_images_and_rerun_with_heads_only() {
    let work = workdir();
    let set = fixture_set();
    let app = crate::support::find(&set, "fixtures/app-b");
    let src = source(work.path());
    let key = airlock_layout::SigningKey::generate();
    let signed = airlock_testkit::supply::sign_images(&src.url(), &[app], &key).unwrap();
    let sig = signed.iter().find(|a| a.kind == "signature").unwrap();
    let tag = sig.tag.clone().unwrap();
    let nginx = Nginx::start_tls_proxy(&src, "0").unwrap();
    let target = empty_registry();
    let settings = format!("{{caFile: {}}}", nginx.ca_file.display());
    let spec = spec(work.path(), &nginx.host, &[app], "", &settings);
    let o = sync(work.path(), &spec, &target, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let at = format!("{}/mirror/fixtures/app-b:{tag}", target.host);
    assert_eq!(raw_digest(&at).unwrap(), sig.digest);
    let r = report(&o);
    assert_eq!(
        r["images"][0]["artifacts_copied"][0],
        format!("{}/mirror/fixtures/app-b:{tag}", target.host),
        "{r:#}"
    );

    let before = log_len(&nginx.access_log());
    let o = sync(work.path(), &spec, &target, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = report(&o);
    assert_eq!(r["images"][0]["change"]["kind"], "unchanged");
    assert!(r["images"][0]["artifacts_copied"]
        .as_array()
        .unwrap()
        .is_empty());
    let lines = log_after(&nginx.access_log(), before);
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("\"GET ") && l.contains("/manifests/") || l.contains("/blobs/")),
        "{lines:#?}"
    );
}

/// A referrer that the source lists only through the OCI 1.1 referrers API (the in-process
/// stand-in: distribution 2.8 has no such API, and the referrer has no tag there) reaches a
/// target without the API by digest, listed in the target's referrers tag index; a rerun
/// copies nothing and asks the source for no manifest and no blob.
#[test]
fn referrers_only_the_sources_api_lists_reach_the_targets_tag_index() {
    use airlock_layout::media;
    use airlock_layout::testing::artifacts::{Carried, TAG};
    let s = crate::restore::Signed::new();
    let all = s.bundle(Carried::All);
    let referrer = all.referrer().clone();
    let api = airlock_testkit::ReferrersRegistry::start().unwrap();
    let (o, _) = s.airlock(
        "load",
        &all.path,
        &[
            "--to",
            &format!("registry://{}/up", api.host),
            "--names",
            "drop-host",
            "--plain-http",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let (src_repo, subject) = ("up/signed/app", referrer.subject.to_string());
    let index_tag = media::referrers_tag(&referrer.subject);
    assert_eq!(api.referrers(src_repo, &subject).len(), 1);
    assert_eq!(
        api.tag(src_repo, &index_tag),
        None,
        "only the API may list it at the source"
    );

    let target = empty_registry();
    let spec = s.work.path().join("spec.yaml");
    std::fs::write(
        &spec,
        format!(
            "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {{name: mirror}}\nspec:\n  \
             images:\n    - {host}/{src_repo}:{TAG}\n  registries:\n    {host}: {{plainHttp: true}}\n",
            host = api.host
        ),
    )
    .unwrap();
    let o = sync(s.work.path(), &spec, &target, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let repo = format!("{}/mirror/up/signed/app", target.host);
    let at = format!("{repo}@{}", referrer.digest);
    assert_eq!(raw_digest(&at).unwrap(), referrer.digest.to_string());
    skopeo_copy_ok(&at, &s.work.path().join("referrer")).unwrap();
    let r = report(&o);
    let copied = r["images"][0]["artifacts_copied"].as_array().unwrap();
    assert!(copied.iter().any(|c| *c == at), "{r:#}");
    // The target has no referrers API: the tag schema lists the referrer, with the entry the
    // source's API gave (artifact type included).
    let o = Command::new("curl")
        .args(["-sf", "-H", &format!("Accept: {}", media::OCI_INDEX)])
        .arg(format!(
            "http://{}/v2/mirror/up/signed/app/manifests/{index_tag}",
            target.host
        ))
        .output()
        .unwrap();
    assert!(o.status.success(), "no referrers tag index at the target");
    let index: Value = serde_json::from_slice(&o.stdout).unwrap();
    let listed: Vec<&Value> = index["manifests"].as_array().unwrap().iter().collect();
    assert_eq!(listed.len(), 1, "{index:#}");
    assert_eq!(listed[0]["digest"], referrer.digest.to_string());
    assert_eq!(
        listed[0]["artifactType"].as_str(),
        referrer.artifact_type.as_deref()
    );

    let before = api.requests().len();
    let o = sync(s.work.path(), &spec, &target, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = report(&o);
    assert_eq!(r["images"][0]["change"]["kind"], "unchanged", "{r:#}");
    assert!(
        r["images"][0]["artifacts_copied"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{r:#}"
    );
    let asked = api.requests().split_off(before);
    assert!(
        asked.iter().any(|l| l.target.contains("/referrers/")),
        "{asked:#?}"
    );
    assert!(
        !asked.iter().any(|l| l.target.contains("/blobs/")
            || (l.method == "GET" && l.target.contains("/manifests/"))),
        "{asked:#?}"
    );
}
