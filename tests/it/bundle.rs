//! `airlock bundle` against the four registry variants, read back by skopeo and containerd.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use airlock_testkit::{Auth, Containerd, Registry};
use serde_json::Value;

use crate::support::*;

const USER: &str = "airlock";
const PASS: &str = "s3cret-Pa55";

fn basic() -> Auth {
    Auth::Basic {
        username: USER.into(),
        password: PASS.into(),
    }
}

fn token() -> Auth {
    Auth::Token {
        username: USER.into(),
        password: PASS.into(),
    }
}

/// Bundles every fixture image from `reg` and checks the result with skopeo and containerd:
/// Must show 1 of the bundle issue, for one registry variant.
fn round_trip(reg: &Registry, how: Credentials) {
    let set = fixture_set();
    let images = fixture_images(&set);
    let work = workdir();
    let refs = refs(&reg.host, &images);
    let spec = write_spec(
        work.path(),
        "fixtures",
        &refs,
        None,
        &registry_settings(reg),
    );
    let out = work.path().join("fixtures.tar.zst");
    let mut cmd = airlock(&work.path().join("cache"));
    cmd.args(["bundle", "--json", "-o"]).arg(&out).arg(&spec);
    let stdin = match how {
        Credentials::None => None,
        Credentials::Flag => {
            cmd.args(["--username", USER, "--password-stdin"]);
            Some(format!("{PASS}\n"))
        }
        Credentials::AuthFile => {
            let auth = base64_encode(&format!("{USER}:{PASS}"));
            let file = work.path().join("auth.json");
            std::fs::write(
                &file,
                format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host),
            )
            .unwrap();
            cmd.env("REGISTRY_AUTH_FILE", &file);
            None
        }
    };
    let o = run(cmd, stdin.as_deref());
    assert!(o.status.success(), "bundle failed: {}", stderr(&o));
    assert!(
        !stderr(&o).contains(PASS),
        "the password leaked into the output"
    );
    let summary: Value =
        serde_json::from_slice(&o.stdout).expect("--json prints one JSON document");
    assert_eq!(
        summary["totals"]["images"].as_u64().unwrap() as usize,
        images.len()
    );
    let bundle_bytes = std::fs::read(&out).unwrap();
    assert!(
        !bundle_bytes
            .windows(PASS.len())
            .any(|w| w == PASS.as_bytes()),
        "the password is inside the bundle"
    );

    // The stock zstd gives a tar that skopeo reads as an OCI archive, with the source digests.
    let tar = decompress(&out);
    for image in &images {
        if image.media_type.starts_with("application/vnd.docker.") {
            // skopeo 1.9 (containers/image 5.23, Debian 12) skips index.json descriptors with
            // Docker media types ("no descriptor found for reference"), and rewriting the
            // descriptor to an OCI type makes it convert the list (new digest). Such images
            // are checked through containerd below, which verifies every digest it imports.
            continue;
        }
        for t in &image.tags {
            let reference = format!("{}/{}:{t}", reg.host, image.repository);
            let dir = work
                .path()
                .join(format!("skopeo-{}-{t}", image.repository.replace('/', "_")));
            let got = skopeo_digest_from_archive(&tar, &reference, &dir).unwrap();
            assert_eq!(
                got, image.digest,
                "digest of `{reference}` read back by skopeo"
            );
        }
    }

    // containerd imports it under the full names.
    let ctrd = Containerd::start().expect("start containerd (run `cargo xtask install`)");
    let imp = ctrd
        .ctr()
        .args([
            "-n",
            "airlock-test",
            "images",
            "import",
            "--all-platforms",
            "--no-unpack",
        ])
        .arg(&tar)
        .output()
        .unwrap();
    assert!(
        imp.status.success(),
        "ctr import: {}",
        String::from_utf8_lossy(&imp.stderr)
    );
    let ls = ctrd
        .ctr()
        .args(["-n", "airlock-test", "images", "ls"])
        .output()
        .unwrap();
    let ls = String::from_utf8_lossy(&ls.stdout).into_owned();
    for r in &refs {
        let line = ls
            .lines()
            .find(|l| l.split_whitespace().next() == Some(r.as_str()))
            .unwrap_or_else(|| panic!("`{r}` missing from ctr images ls:\n{ls}"));
        let digest = images
            .iter()
            .find(|i| r.starts_with(&format!("{}/{}:", reg.host, i.repository)))
            .unwrap()
            .digest
            .clone();
        assert!(
            line.contains(&digest),
            "`{r}` has the wrong digest in containerd: {line}"
        );
    }
    // Every image's content (all platforms) is complete in containerd's store.
    let check = ctrd
        .ctr()
        .args(["-n", "airlock-test", "images", "check"])
        .output()
        .unwrap();
    let check = String::from_utf8_lossy(&check.stdout).into_owned();
    for r in &refs {
        let line = check
            .lines()
            .find(|l| l.split_whitespace().next() == Some(r.as_str()))
            .unwrap_or_else(|| panic!("`{r}` missing from ctr images check:\n{check}"));
        assert!(
            line.contains("complete"),
            "`{r}` is not complete in containerd: {line}"
        );
    }
}

enum Credentials {
    None,
    Flag,
    AuthFile,
}

fn base64_encode(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn round_trip_plain_http() {
    let reg = registry(false, Auth::None);
    round_trip(&reg, Credentials::None);
}

#[test]
fn round_trip_tls_with_private_ca() {
    let reg = registry(true, Auth::None);
    round_trip(&reg, Credentials::None);
}

#[test]
fn round_trip_basic_auth() {
    let reg = registry(true, basic());
    round_trip(&reg, Credentials::Flag);
}

#[test]
fn round_trip_token_auth_with_auth_file() {
    let reg = registry(false, token());
    round_trip(&reg, Credentials::AuthFile);
}

/// Bundles `images` from a plain registry with fresh caches; returns the bundle path.
fn bundle_plain(
    work: &Path,
    reg: &Registry,
    name: &str,
    images: &[String],
    platforms: Option<&str>,
    extra: &[&str],
) -> (std::path::PathBuf, Value) {
    let spec = write_spec(work, name, images, platforms, &registry_settings(reg));
    let out = work.join(format!("{name}.tar.zst"));
    let mut cmd = airlock(&work.join(format!("cache-{name}")));
    cmd.args(["bundle", "--json", "-o"])
        .arg(&out)
        .arg(&spec)
        .args(extra);
    cmd.env("SOURCE_DATE_EPOCH", "1700000000");
    let o = run(cmd, None);
    assert!(o.status.success(), "bundle failed: {}", stderr(&o));
    (
        out,
        serde_json::from_slice(&o.stdout).expect("json summary"),
    )
}

#[test]
fn each_blob_is_stored_once_and_the_bundle_is_not_larger_than_its_blobs() {
    let set = fixture_set();
    let images = fixture_images(&set);
    let reg = registry(false, Auth::None);
    let work = workdir();
    let (out, summary) = bundle_plain(
        work.path(),
        &reg,
        "dedup",
        &refs(&reg.host, &images),
        None,
        &[],
    );
    let tar = decompress(&out);
    let entries = tar_entries(&tar);

    let blob_entries: Vec<&(String, u64)> = entries
        .iter()
        .filter(|(p, _)| p.starts_with("blobs/"))
        .collect();
    let unique: HashSet<&String> = blob_entries.iter().map(|(p, _)| p).collect();
    assert_eq!(
        unique.len(),
        blob_entries.len(),
        "a blob appears twice in the tar"
    );

    // Every blob reachable from the fixture images is there, once; shared base layers are
    // counted once although several images use them.
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    let mut per_image_total = 0;
    for i in &images {
        for (d, size) in &i.blobs {
            expected.insert(d.clone(), *size);
            per_image_total += size;
        }
    }
    let got: BTreeMap<String, u64> = blob_entries
        .iter()
        .map(|(p, s)| {
            (
                format!("sha256:{}", p.trim_start_matches("blobs/sha256/")),
                *s,
            )
        })
        .collect();
    assert_eq!(
        got, expected,
        "blobs in the tar differ from the fixtures' blobs"
    );
    let unique_bytes: u64 = expected.values().sum();
    assert!(
        per_image_total > unique_bytes,
        "fixtures share no blob: the dedup test proves nothing"
    );
    assert_eq!(summary["totals"]["bytes"].as_u64().unwrap(), unique_bytes);

    let size = std::fs::metadata(&out).unwrap().len();
    assert!(
        size as f64 <= unique_bytes as f64 * 1.01,
        "bundle is {size} bytes, more than 1% over the {unique_bytes} bytes of unique blobs"
    );

    // Entry order serves streaming: the manifest first, small blobs before layers, index last.
    assert_eq!(entries[0].0, "airlock/manifest.json");
    assert_eq!(entries.last().unwrap().0, "index.json");
    let manifest: Value = serde_json::from_slice(&tar_read(&tar, "airlock/manifest.json")).unwrap();
    let small = |mt: &str| mt.ends_with("json");
    let kinds: Vec<bool> = manifest["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| small(b["mediaType"].as_str().unwrap()))
        .collect();
    let tar_kinds: Vec<bool> = blob_entries
        .iter()
        .map(|(p, _)| {
            let d = format!("sha256:{}", p.trim_start_matches("blobs/sha256/"));
            let b = manifest["blobs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|b| b["digest"] == d.as_str())
                .unwrap();
            small(b["mediaType"].as_str().unwrap())
        })
        .collect();
    assert_eq!(kinds.len(), tar_kinds.len());
    let first_layer = tar_kinds.iter().position(|k| !k).unwrap();
    assert!(
        tar_kinds[first_layer..].iter().all(|k| !k),
        "a manifest or config comes after a layer"
    );
}

#[test]
fn bundling_the_same_spec_twice_gives_identical_bytes() {
    let set = fixture_set();
    let images: Vec<_> = fixture_images(&set)
        .into_iter()
        .filter(|i| i.repository != "fixtures/big")
        .collect();
    let reg = registry(false, Auth::None);
    let work = workdir();
    let refs = refs(&reg.host, &images);
    let (a, _) = bundle_plain(work.path(), &reg, "one", &refs, None, &["--jobs", "1"]);
    // Same spec content under another directory, another cache, more parallelism.
    let other = work.path().join("again");
    std::fs::create_dir(&other).unwrap();
    let (b, _) = bundle_plain(&other, &reg, "one", &refs, None, &["--jobs", "16"]);
    let (a, b) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    assert!(
        a == b,
        "two bundles of one spec differ ({} vs {} bytes)",
        a.len(),
        b.len()
    );
}

#[test]
fn platform_filter_keeps_only_the_requested_platforms_and_reports_the_index_digest() {
    let set = fixture_set();
    let multi = find(&set, "fixtures/multi");
    let list = find(&set, "fixtures/docker-list");
    let reg = registry(false, Auth::None);
    let work = workdir();
    let images = vec![
        format!("{}/fixtures/multi:1", reg.host),
        format!("{}/fixtures/docker-list@{}", reg.host, list.digest),
    ];
    let spec = write_spec(
        work.path(),
        "arm",
        &images,
        Some("[linux/arm64]"),
        &registry_settings(&reg),
    );
    let out = work.path().join("arm.tar.zst");
    let mut cmd = airlock(&work.path().join("cache"));
    cmd.args(["bundle", "--json", "-o"]).arg(&out).arg(&spec);
    let o = run(cmd, None);
    assert!(o.status.success(), "bundle failed: {}", stderr(&o));
    let err = stderr(&o);
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    let recs = summary["images"].as_array().unwrap();
    for (fixture, rec_name) in [(multi, "fixtures/multi"), (list, "fixtures/docker-list")] {
        let rec = recs
            .iter()
            .find(|r| r["name"].as_str().unwrap().ends_with(rec_name))
            .unwrap_or_else(|| panic!("{rec_name} missing from {summary}"));
        assert_eq!(
            rec["originalDigest"],
            fixture.digest.as_str(),
            "original index digest reported"
        );
        assert_ne!(
            rec["digest"],
            fixture.digest.as_str(),
            "a filtered index must get a new digest"
        );
        let platforms: Vec<&str> = rec["platforms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        assert_eq!(platforms.len(), 1, "{platforms:?}");
        assert!(platforms[0].starts_with("linux/arm64"), "{platforms:?}");
        assert!(
            err.contains(&fixture.digest),
            "the run does not report the original digest: {err}"
        );
    }
    assert!(
        err.contains("digest pin is not kept"),
        "a filtered pin must be reported: {err}"
    );

    // The stored index lists only arm64, and skopeo reads the filtered image completely.
    let tar = decompress(&out);
    let rec = recs
        .iter()
        .find(|r| r["name"].as_str().unwrap().ends_with("fixtures/multi"))
        .unwrap();
    let digest = rec["digest"].as_str().unwrap();
    let index: Value =
        serde_json::from_slice(&tar_read(&tar, &format!("blobs/sha256/{}", &digest[7..]))).unwrap();
    let archs: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(archs, vec!["arm64"]);
    let got = skopeo_digest_from_archive(
        &tar,
        &format!("{}/fixtures/multi:1", reg.host),
        &work.path().join("d"),
    )
    .unwrap();
    assert_eq!(got, digest);
    // The amd64 layers are not in the bundle.
    let entries: HashSet<String> = tar_entries(&tar).into_iter().map(|(p, _)| p).collect();
    let amd64_only: Vec<&String> = multi
        .blobs
        .iter()
        .map(|(d, _)| d)
        .filter(|d| !entries.contains(&format!("blobs/sha256/{}", &d[7..])))
        .collect();
    assert!(
        !amd64_only.is_empty(),
        "every blob of both platforms was kept"
    );
}

#[test]
fn mirrors_are_tried_first_and_recorded_as_the_source() {
    let set = fixture_set();
    let pause = find(&set, "k8s/pause");
    let reg = registry(false, Auth::None);
    let work = workdir();
    // The first mirror lacks the image, the second has it; the origin is never reachable here.
    let registries = format!(
        "    registry.k8s.io: {{mirrors: [{h}/nothing-here, {h}/k8s]}}\n    {h}: {{plainHttp: true}}\n",
        h = reg.host
    );
    let spec = write_spec(
        work.path(),
        "k8s",
        &["registry.k8s.io/pause:3.9".to_string()],
        None,
        &registries,
    );
    let out = work.path().join("k8s.tar.zst");
    let lock = work.path().join("k8s.lock");
    let mut cmd = airlock(&work.path().join("cache"));
    cmd.args(["bundle", "--json", "-o"])
        .arg(&out)
        .arg(&spec)
        .arg("--lock")
        .arg(&lock);
    let o = run(cmd, None);
    assert!(o.status.success(), "bundle failed: {}", stderr(&o));
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    let rec = &summary["images"][0];
    assert_eq!(rec["name"], "registry.k8s.io/pause");
    assert_eq!(rec["source"], format!("{}/k8s/pause", reg.host).as_str());
    assert_eq!(rec["digest"], pause.digest.as_str());
    let tar = decompress(&out);
    let got = skopeo_digest_from_archive(&tar, "registry.k8s.io/pause:3.9", &work.path().join("d"))
        .unwrap();
    assert_eq!(got, pause.digest);

    // --locked with a lock that says otherwise: the mirror is named with both digests.
    let text = std::fs::read_to_string(&lock).unwrap();
    assert!(text.contains(&pause.digest), "{text}");
    let forged = format!("sha256:{}", "0".repeat(64));
    std::fs::write(&lock, text.replace(&pause.digest, &forged)).unwrap();
    let out2 = work.path().join("k8s-locked.tar.zst");
    let mut cmd = airlock(&work.path().join("cache"));
    cmd.args(["bundle", "--locked", "-o"])
        .arg(&out2)
        .arg(&spec)
        .arg("--lock")
        .arg(&lock);
    let o = run(cmd, None);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    for needle in [
        "registry.k8s.io/pause:3.9",
        &format!("{}/k8s/pause", reg.host),
        &pause.digest,
        &forged,
    ] {
        assert!(err.contains(needle), "`{needle}` missing from: {err}");
    }
    assert!(!out2.exists());
}

#[test]
fn image_list_file_fails_whole_without_keep_going_and_writes_the_rest_with_it() {
    let reg = registry(false, Auth::None);
    let work = workdir();
    let list = work.path().join("images.txt");
    std::fs::write(
        &list,
        format!(
            "# a plain list, as hauler and kubespray users have\n{h}/fixtures/base:1\n\n{h}/fixtures/does-not-exist:1  # missing\n",
            h = reg.host
        ),
    )
    .unwrap();
    let missing = format!("{}/fixtures/does-not-exist:1", reg.host);
    let out = work.path().join("list.tar.zst");
    let mut cmd = airlock(&work.path().join("cache"));
    cmd.args(["bundle", "--plain-http", &reg.host, "-o"])
        .arg(&out)
        .arg(&list);
    let o = run(cmd, None);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains(&missing), "{}", stderr(&o));
    assert!(!out.exists(), "no bundle without --keep-going");
    assert_eq!(
        listing(work.path()),
        vec!["cache", "images.txt"],
        "a failed run left files behind"
    );

    let mut cmd = airlock(&work.path().join("cache"));
    cmd.args([
        "bundle",
        "--plain-http",
        &reg.host,
        "--keep-going",
        "--json",
        "-o",
    ])
    .arg(&out)
    .arg(&list);
    let o = run(cmd, None);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains(&missing), "{}", stderr(&o));
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["totals"]["images"], 1);
    assert_eq!(summary["failures"][0]["image"], missing.as_str());
    assert_eq!(summary["spec"]["name"], "images");
    assert!(out.exists(), "--keep-going writes the bundle with the rest");
}
