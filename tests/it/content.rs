//! Files and Helm charts in a bundle: downloaded through a mirror entry from nginx (the
//! stand-in for dl.k8s.io, release servers and chart repositories), pushed to the fixture
//! registry (OCI charts), read from a local path; every download verified before it is
//! cached, and every refusal named, with nothing half-written.

use std::path::{Path, PathBuf};

use airlock_testkit::{write_chart_repo, Nginx, Registry, RegistryOptions, RepoEntry, TestChart};
use serde_json::Value;

use crate::support::*;

/// The host the specs name as origin; it does not resolve, so only the mirror can serve it.
const ORIGIN: &str = "dl.airlock-test.invalid";

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A download site under `site/ORIGIN/rel/`: `tool-1.0.tar.gz`, `kubeadm` and its
/// `kubeadm.sha256`. Returns the bytes of the first two.
fn download_site(site: &Path) -> (Vec<u8>, Vec<u8>) {
    let rel = site.join(ORIGIN).join("rel");
    std::fs::create_dir_all(&rel).unwrap();
    let tool: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let kubeadm = b"#!/bin/sh\necho kubeadm\n".to_vec();
    std::fs::write(rel.join("tool-1.0.tar.gz"), &tool).unwrap();
    std::fs::write(rel.join("kubeadm"), &kubeadm).unwrap();
    std::fs::write(
        rel.join("kubeadm.sha256"),
        format!("{}  kubeadm\n", sha256_hex(&kubeadm)),
    )
    .unwrap();
    (tool, kubeadm)
}

/// A spec of `files` (YAML list items, indented by four) and `extra` top-level entries, with
/// `ORIGIN` mirrored at `nginx`.
fn content_spec(work: &Path, nginx: &Nginx, files: &str, extra: &str) -> PathBuf {
    let spec = format!(
        "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {{name: content}}\nspec:\n  files:\n{files}{extra}  registries:\n    {ORIGIN}: {{mirrors: ['{}/{ORIGIN}']}}\n    {}: {{plainHttp: true}}\n",
        nginx.host, nginx.host
    );
    let p = work.join("content.yaml");
    std::fs::write(&p, spec).unwrap();
    p
}

fn bundle(work: &Path, spec: &Path, out: &Path) -> std::process::Output {
    let mut cmd = airlock(&work.join("cache"));
    cmd.args(["bundle", "--quiet", "-o"])
        .arg(out)
        .arg(spec)
        .env("SOURCE_DATE_EPOCH", "1700000000");
    run(cmd, None)
}

fn manifest_of(bundle: &Path) -> Value {
    let tar = decompress(bundle);
    serde_json::from_slice(&tar_read(&tar, "airlock/manifest.json")).unwrap()
}

/// Nothing under `hex` in the cache, and no temporary file left in it.
fn assert_not_cached(work: &Path, hex: &str) {
    let cache = work.join("cache");
    assert!(
        !cache.join("blobs/sha256").join(hex).exists(),
        "{hex} entered the cache"
    );
    let tmp = cache.join("tmp");
    if tmp.exists() {
        assert_eq!(listing(&tmp), Vec::<String>::new(), "stray temporary files");
    }
}

/// No bundle, and no temporary file beside where it would have been.
fn assert_no_output(out: &Path) {
    assert!(!out.exists(), "a bundle was written");
    let stray: Vec<String> = listing(out.parent().unwrap())
        .into_iter()
        .filter(|n| n.contains(".tmp") || n.contains("content.tar"))
        .collect();
    assert!(stray.is_empty(), "stray files: {stray:?}");
}

#[test]
fn files_by_sha256_checksum_url_and_path_are_bundled_through_a_mirror() {
    let work = workdir();
    let site = work.path().join("site");
    let (tool, kubeadm) = download_site(&site);
    let nginx = Nginx::start_static(&site, false).expect("start nginx (cargo xtask install)");
    std::fs::write(work.path().join("notes.txt"), b"notes\n").unwrap();
    let files = format!(
        "    - url: https://{ORIGIN}/rel/tool-1.0.tar.gz\n      sha256: {}\n      name: tools/tool-1.0.tar.gz\n    - url: https://{ORIGIN}/rel/kubeadm\n      checksumUrl: https://{ORIGIN}/rel/kubeadm.sha256\n      tag: v1.35.2\n      mode: \"0755\"\n    - path: notes.txt\n",
        sha256_hex(&tool)
    );
    let spec = content_spec(work.path(), &nginx, &files, "");
    let out = work.path().join("content.tar.zst");
    let o = bundle(work.path(), &spec, &out);
    assert!(o.status.success(), "bundle failed: {}", stderr(&o));

    let mut cmd = airlock(&work.path().join("cache"));
    cmd.arg("verify")
        .arg(&out)
        .args(["--insecure-skip-signature", "--quiet"]);
    let v = run(cmd, None);
    assert!(v.status.success(), "verify failed: {}", stderr(&v));

    let m = manifest_of(&out);
    assert_eq!(m["formatVersion"], 3);
    let records = m["images"].as_array().unwrap();
    let want = [
        (
            "tools/tool-1.0.tar.gz",
            format!("{ORIGIN}/files/tool-1.0.tar.gz"),
            "latest",
            sha256_hex(&tool),
            0o644,
        ),
        (
            "kubeadm",
            format!("{ORIGIN}/files/kubeadm"),
            "v1.35.2",
            sha256_hex(&kubeadm),
            0o755,
        ),
        (
            "notes.txt",
            "local/files/notes.txt".to_string(),
            "latest",
            sha256_hex(b"notes\n"),
            0o644,
        ),
    ];
    assert_eq!(records.len(), 3, "{m:#}");
    let blobs: Vec<&str> = m["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["digest"].as_str().unwrap())
        .collect();
    for (r, (name, repo, tag, hex, mode)) in records.iter().zip(want) {
        let f = &r["content"];
        assert_eq!(f["type"], "file", "{r:#}");
        assert_eq!(f["name"], name);
        assert_eq!(r["name"], repo.as_str());
        assert_eq!(r["tags"][0], tag);
        assert_eq!(f["digest"], format!("sha256:{hex}"));
        assert_eq!(f["mode"], mode);
        assert!(blobs.contains(&format!("sha256:{hex}").as_str()));
        assert!(blobs.contains(&r["digest"].as_str().unwrap()));
    }
    assert_eq!(records[0]["content"]["checksum"]["from"], "spec");
    assert_eq!(records[1]["content"]["checksum"]["from"], "url");
    assert_eq!(records[2]["content"]["checksum"]["from"], "local");
    // Fetched from the mirror (the origin does not resolve).
    assert!(
        records[0]["source"]
            .as_str()
            .unwrap()
            .starts_with(&nginx.host),
        "{:#}",
        records[0]
    );

    // A second run takes the files from the cache: nginx is not asked for them again.
    let before = std::fs::read_to_string(nginx.access_log()).unwrap_or_default();
    let again = work.path().join("again.tar.zst");
    let o = bundle(work.path(), &spec, &again);
    assert!(o.status.success(), "bundle failed: {}", stderr(&o));
    let after = std::fs::read_to_string(nginx.access_log()).unwrap_or_default();
    let new: Vec<&str> = after[before.len()..].lines().collect();
    assert!(
        new.iter().all(|l| !l.contains("tool-1.0.tar.gz")),
        "downloaded again: {new:?}"
    );
    // A damaged cache entry of a file is fetched again (through the mirror) and said so.
    let cached = work
        .path()
        .join("cache/blobs/sha256")
        .join(sha256_hex(&tool));
    let mut damaged = std::fs::read(&cached).unwrap();
    damaged[100] ^= 0xff;
    std::fs::write(&cached, &damaged).unwrap();
    let repaired = work.path().join("repaired.tar.zst");
    let o = bundle(work.path(), &spec, &repaired);
    assert!(o.status.success(), "bundle failed: {}", stderr(&o));
    assert!(
        stderr(&o).contains("did not match its digest; fetched again"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(&cached).unwrap(), tool);
    let mut cmd = airlock(&work.path().join("cache"));
    cmd.arg("verify")
        .arg(&repaired)
        .args(["--insecure-skip-signature", "--quiet"]);
    assert!(run(cmd, None).status.success());

    let m2 = manifest_of(&again);
    for (a, b) in records.iter().zip(m2["images"].as_array().unwrap()) {
        assert_eq!(
            a["digest"], b["digest"],
            "the same file gives the same manifest"
        );
    }
}

#[test]
fn a_file_that_does_not_match_its_sha256_is_refused_and_not_cached() {
    let work = workdir();
    let site = work.path().join("site");
    let (tool, _) = download_site(&site);
    let nginx = Nginx::start_static(&site, false).expect("start nginx (cargo xtask install)");
    let wrong = sha256_hex(b"other bytes");
    let files = format!("    - url: https://{ORIGIN}/rel/tool-1.0.tar.gz\n      sha256: {wrong}\n");
    let spec = content_spec(work.path(), &nginx, &files, "");
    let out = work.path().join("content.tar.zst");
    let o = bundle(work.path(), &spec, &out);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("file `tool-1.0.tar.gz`"), "{e}");
    assert!(e.contains("does not match its sha256"), "{e}");
    assert!(e.contains(&wrong) && e.contains(&sha256_hex(&tool)), "{e}");
    assert_no_output(&out);
    assert_not_cached(work.path(), &wrong);
    assert_not_cached(work.path(), &sha256_hex(&tool));
}

#[test]
fn a_checksum_url_that_404s_is_refused_naming_it() {
    let work = workdir();
    let site = work.path().join("site");
    download_site(&site);
    let nginx = Nginx::start_static(&site, false).expect("start nginx (cargo xtask install)");
    let files = format!(
        "    - url: https://{ORIGIN}/rel/tool-1.0.tar.gz\n      checksumUrl: https://{ORIGIN}/rel/tool-1.0.tar.gz.sha256\n"
    );
    let spec = content_spec(work.path(), &nginx, &files, "");
    let out = work.path().join("content.tar.zst");
    let o = bundle(work.path(), &spec, &out);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("file `tool-1.0.tar.gz`"), "{e}");
    assert!(
        e.contains(&format!(
            "checksum file `https://{ORIGIN}/rel/tool-1.0.tar.gz.sha256` does not exist (404)"
        )),
        "{e}"
    );
    assert_no_output(&out);
    let blobs = work.path().join("cache/blobs/sha256");
    let cached = if blobs.exists() {
        listing(&blobs)
    } else {
        Vec::new()
    };
    assert!(cached.is_empty(), "nothing is cached: {cached:?}");
}

/// A classic chart repository under `site/ORIGIN/charts` with `demo` 0.1.0 (with provenance)
/// and 0.2.0; `digest` replaces the listed digest of 0.1.0.
fn chart_repo(site: &Path, digest: Option<&str>) -> TestChart {
    let demo = TestChart::new(
        "demo",
        "0.1.0",
        &[
            "ghcr.io/example/demo:0.1.0",
            "docker.io/library/busybox:1.36",
            "quay.io/example/extra:2",
        ],
    );
    let newer = TestChart::new("demo", "0.2.0", &[]);
    write_chart_repo(
        &site.join(ORIGIN).join("charts"),
        &[
            RepoEntry {
                provenance: true,
                digest,
                ..RepoEntry::plain(&demo)
            },
            RepoEntry::plain(&newer),
        ],
    )
    .unwrap();
    demo
}

fn record<'a>(m: &'a Value, name: &str) -> &'a Value {
    m["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no record `{name}` in {m:#}"))
}

#[test]
fn oci_and_repository_charts_and_three_files_are_bundled_and_verify() {
    let work = workdir();
    let site = work.path().join("site");
    let (tool, kubeadm) = download_site(&site);
    let demo = chart_repo(&site, None);
    let nginx = Nginx::start_static(&site, false).expect("start nginx (cargo xtask install)");
    let reg = Registry::start(RegistryOptions::default()).expect("start the registry");
    let podinfo = TestChart::new(
        "podinfo",
        "6.5.0+b1",
        &["ghcr.io/stefanprodan/podinfo:6.5.0"],
    );
    let pushed = reg.push_chart("charts/podinfo", &podinfo, true).unwrap();
    std::fs::write(work.path().join("notes.txt"), b"notes\n").unwrap();
    let files = format!(
        "    - url: https://{ORIGIN}/rel/tool-1.0.tar.gz\n      sha256: {}\n    - url: https://{ORIGIN}/rel/kubeadm\n      checksumUrl: https://{ORIGIN}/rel/kubeadm.sha256\n    - path: notes.txt\n",
        sha256_hex(&tool)
    );
    let charts = format!(
        "  charts:\n    - {{chart: 'oci://{}/charts/podinfo', version: 6.5.0+b1}}\n    - {{repoURL: 'https://{ORIGIN}/charts', name: demo, version: 0.1.0}}\n",
        reg.host
    );
    let spec = content_spec(work.path(), &nginx, &files, &charts);
    // The fixture registry is plain HTTP.
    let text = std::fs::read_to_string(&spec).unwrap()
        + &format!("    {}: {{plainHttp: true}}\n", reg.host);
    std::fs::write(&spec, text).unwrap();
    let out = work.path().join("content.tar.zst");
    let o = bundle(work.path(), &spec, &out);
    assert!(o.status.success(), "bundle failed: {}", stderr(&o));

    let mut cmd = airlock(&work.path().join("cache"));
    cmd.arg("verify")
        .arg(&out)
        .args(["--insecure-skip-signature", "--quiet"]);
    let v = run(cmd, None);
    assert!(v.status.success(), "verify failed: {}", stderr(&v));

    let m = manifest_of(&out);
    assert_eq!(m["images"].as_array().unwrap().len(), 5, "{m:#}");
    let blobs: Vec<&str> = m["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["digest"].as_str().unwrap())
        .collect();

    let oci = record(&m, &format!("{}/charts/podinfo", reg.host));
    assert_eq!(oci["digest"], pushed.as_str(), "stored as pushed: {oci:#}");
    assert_eq!(oci["tags"][0], "6.5.0_b1");
    let c = &oci["content"];
    assert_eq!(c["type"], "chart");
    assert_eq!(
        (c["name"].as_str(), c["version"].as_str()),
        (Some("podinfo"), Some("6.5.0+b1"))
    );
    assert_eq!(c["archive"], format!("sha256:{}", podinfo.sha256()));
    assert_eq!(c["provenance"], true);
    assert_eq!(c["images"][0], "ghcr.io/stefanprodan/podinfo:6.5.0");
    assert!(blobs.contains(&format!("sha256:{}", podinfo.sha256()).as_str()));

    let classic = record(&m, &format!("{ORIGIN}/charts/demo"));
    let c = &classic["content"];
    assert_eq!(c["type"], "chart");
    assert_eq!(classic["tags"][0], "0.1.0");
    assert_eq!(c["archive"], format!("sha256:{}", demo.sha256()));
    assert_eq!(c["repositoryDigest"], demo.sha256());
    assert_eq!(c["provenance"], true);
    assert_eq!(c["appVersion"], "1.0.0");
    assert_eq!(
        c["images"],
        serde_json::json!([
            "docker.io/library/busybox:1.36",
            "ghcr.io/example/demo:0.1.0",
            "quay.io/example/extra:2"
        ])
    );
    assert!(blobs.contains(&format!("sha256:{}", demo.sha256()).as_str()));
    assert!(blobs.contains(&classic["digest"].as_str().unwrap()));

    for (name, bytes) in [
        (format!("{ORIGIN}/files/tool-1.0.tar.gz"), tool.as_slice()),
        (format!("{ORIGIN}/files/kubeadm"), kubeadm.as_slice()),
        ("local/files/notes.txt".to_string(), b"notes\n".as_slice()),
    ] {
        let r = record(&m, &name);
        assert_eq!(
            r["content"]["digest"],
            format!("sha256:{}", sha256_hex(bytes))
        );
        assert!(blobs.contains(&format!("sha256:{}", sha256_hex(bytes)).as_str()));
    }

    // `lock` pins the OCI chart like an image.
    let lock = work.path().join("content.lock");
    let mut cmd = airlock(&work.path().join("cache"));
    cmd.args(["lock", "--quiet", "-o"]).arg(&lock).arg(&spec);
    let o = run(cmd, None);
    assert!(o.status.success(), "lock failed: {}", stderr(&o));
    let text = std::fs::read_to_string(&lock).unwrap();
    assert!(text.contains(&pushed), "{text}");
}

#[test]
fn a_chart_version_not_in_the_index_is_refused_naming_the_versions() {
    let work = workdir();
    let site = work.path().join("site");
    download_site(&site);
    chart_repo(&site, None);
    let nginx = Nginx::start_static(&site, false).expect("start nginx (cargo xtask install)");
    let charts = format!(
        "  charts:\n    - {{repoURL: 'https://{ORIGIN}/charts', name: demo, version: 9.9.9}}\n"
    );
    let spec = content_spec(work.path(), &nginx, "    - path: content.yaml\n", &charts);
    let out = work.path().join("content.tar.zst");
    let o = bundle(work.path(), &spec, &out);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains(&format!("chart `demo 9.9.9 from https://{ORIGIN}/charts`")),
        "{e}"
    );
    assert!(e.contains("version `9.9.9` is not in"), "{e}");
    assert!(e.contains("0.1.0, 0.2.0"), "{e}");
    assert_no_output(&out);
}

#[test]
fn a_chart_whose_archive_does_not_match_the_repository_digest_is_refused() {
    let work = workdir();
    let site = work.path().join("site");
    download_site(&site);
    let wrong = sha256_hex(b"not the archive");
    let demo = chart_repo(&site, Some(&wrong));
    let nginx = Nginx::start_static(&site, false).expect("start nginx (cargo xtask install)");
    let charts = format!(
        "  charts:\n    - {{repoURL: 'https://{ORIGIN}/charts', name: demo, version: 0.1.0}}\n"
    );
    let spec = content_spec(work.path(), &nginx, "    - path: content.yaml\n", &charts);
    let out = work.path().join("content.tar.zst");
    let o = bundle(work.path(), &spec, &out);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("chart `demo 0.1.0"), "{e}");
    assert!(
        e.contains("demo-0.1.0.tgz` does not match its sha256"),
        "{e}"
    );
    assert!(e.contains(&wrong) && e.contains(&demo.sha256()), "{e}");
    assert!(e.contains("index.yaml"), "{e}");
    assert_no_output(&out);
    assert_not_cached(work.path(), &wrong);
    assert_not_cached(work.path(), &demo.sha256());
}

#[test]
fn an_interrupted_file_download_resumes_with_range() {
    let work = workdir();
    let site = work.path().join("site");
    let (tool, _) = download_site(&site);
    let nginx = Nginx::start_static(&site, false).expect("start nginx (cargo xtask install)");
    // What an interrupted earlier run left: the first 150 000 bytes, under the partial name.
    let hex = sha256_hex(&tool);
    let tmp = work.path().join("cache/tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::create_dir_all(work.path().join("cache/blobs/sha256")).unwrap();
    std::fs::write(tmp.join(format!("{hex}.partial")), &tool[..150_000]).unwrap();
    let files = format!("    - url: https://{ORIGIN}/rel/tool-1.0.tar.gz\n      sha256: {hex}\n");
    let spec = content_spec(work.path(), &nginx, &files, "");
    let out = work.path().join("content.tar.zst");
    let o = bundle(work.path(), &spec, &out);
    assert!(o.status.success(), "bundle failed: {}", stderr(&o));
    let log = std::fs::read_to_string(nginx.access_log()).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("tool-1.0.tar.gz"))
        .unwrap_or_else(|| panic!("not downloaded: {log}"));
    assert!(line.contains("\" 206 50000 "), "not resumed: {line}");
    assert_eq!(
        std::fs::read(work.path().join("cache/blobs/sha256").join(&hex)).unwrap(),
        tool
    );
    assert_eq!(listing(&tmp), Vec::<String>::new());
}

#[test]
fn keep_going_bundles_the_files_that_verify_and_names_the_one_that_does_not() {
    let work = workdir();
    let site = work.path().join("site");
    let (_, kubeadm) = download_site(&site);
    let nginx = Nginx::start_static(&site, false).expect("start nginx (cargo xtask install)");
    let files = format!(
        "    - url: https://{ORIGIN}/rel/tool-1.0.tar.gz\n      sha256: {}\n    - url: https://{ORIGIN}/rel/kubeadm\n      sha256: {}\n",
        sha256_hex(b"wrong"),
        sha256_hex(&kubeadm)
    );
    let spec = content_spec(work.path(), &nginx, &files, "");
    let out = work.path().join("content.tar.zst");
    let mut cmd = airlock(&work.path().join("cache"));
    cmd.args(["bundle", "--quiet", "--keep-going", "-o"])
        .arg(&out)
        .arg(&spec);
    let o = run(cmd, None);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("file `tool-1.0.tar.gz`"), "{e}");
    let m = manifest_of(&out);
    let names: Vec<&str> = m["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["content"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["kubeadm"]);
}

#[test]
fn an_oci_chart_that_is_a_container_image_is_refused() {
    let work = workdir();
    let reg = registry(false, airlock_testkit::Auth::None);
    let spec = work.path().join("content.yaml");
    std::fs::write(
        &spec,
        format!(
            "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {{name: content}}\nspec:\n  charts:\n    - {{chart: 'oci://{}/fixtures/base', version: '1'}}\n  registries:\n{}",
            reg.host,
            registry_settings(&reg)
        ),
    )
    .unwrap();
    let out = work.path().join("content.tar.zst");
    let o = bundle(work.path(), &spec, &out);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains(&format!("chart `oci://{}/fixtures/base 1`", reg.host)),
        "{e}"
    );
    assert!(e.contains("is not a Helm chart"), "{e}");
    assert_no_output(&out);
}

#[test]
fn a_file_no_source_serves_lists_every_source_tried() {
    let work = workdir();
    let site = work.path().join("site");
    download_site(&site);
    let nginx = Nginx::start_static(&site, false).expect("start nginx (cargo xtask install)");
    let files = format!(
        "    - url: https://{ORIGIN}/rel/missing.bin\n      sha256: {}\n",
        sha256_hex(b"x")
    );
    let spec = content_spec(work.path(), &nginx, &files, "");
    let out = work.path().join("content.tar.zst");
    let o = bundle(work.path(), &spec, &out);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("file `missing.bin`"), "{e}");
    assert!(e.contains("no source could serve it"), "{e}");
    assert!(
        e.contains(&format!("{}/{ORIGIN}/rel/missing.bin", nginx.host)) && e.contains("(404)"),
        "the mirror: {e}"
    );
    assert!(
        e.contains(&format!("cannot reach `https://{ORIGIN}/rel/missing.bin`")),
        "the origin: {e}"
    );
    assert_no_output(&out);
}
