//! Files and Helm charts in a bundle: downloaded through a mirror entry from nginx (the
//! stand-in for dl.k8s.io, release servers and chart repositories), pushed to the fixture
//! registry (OCI charts), read from a local path; every download verified before it is
//! cached, and every refusal named, with nothing half-written.

use std::path::{Path, PathBuf};

use airlock_testkit::Nginx;
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
