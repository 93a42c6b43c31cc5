//! `airlock load --to registry://…` (issue 4): bundles made from the fixture registry loaded
//! into empty registries of every variant and through nginx with a 1 MB body limit, checked
//! with skopeo; a resumed load after the target was killed; a corrupted layer; and the errors
//! that must stop a load before anything is pushed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use airlock_testkit::fixtures::FixtureImage;
use airlock_testkit::{Auth, Nginx, Registry, RegistryOptions};
use serde_json::Value;

use crate::support::*;
use crate::verify::{entries, key_pair};

const USER: &str = "airlock";
const PASS: &str = "s3cret-Pa55";
const PREFIX: &str = "mirror";

/// A signed bundle of fixture images (all of them, or the three small ones).
pub(crate) struct Bundle {
    pub(crate) work: tempfile::TempDir,
    pub(crate) file: PathBuf,
    pub(crate) public: PathBuf,
    /// The fixture registry's host, the first path element of every canonical name.
    pub(crate) source_host: String,
    pub(crate) images: Vec<FixtureImage>,
}

pub(crate) fn make_bundle(all: bool) -> Bundle {
    let work = workdir();
    let (key, public) = key_pair(work.path(), "signer");
    let reg = registry(false, Auth::None);
    let set = fixture_set();
    let images: Vec<FixtureImage> = fixture_images(&set)
        .into_iter()
        .filter(|i| {
            all || ["fixtures/base", "fixtures/app-a", "fixtures/multi"].contains(&&*i.repository)
        })
        .cloned()
        .collect();
    let refs: Vec<&FixtureImage> = images.iter().collect();
    let spec = write_spec(
        work.path(),
        "load",
        &refs_of(&reg.host, &refs),
        None,
        &registry_settings(&reg),
    );
    let file = work.path().join("load.tar.zst");
    bundle_signed_ok(work.path(), &key, &spec, &file);
    Bundle {
        work,
        file,
        public,
        source_host: reg.host.clone(),
        images,
    }
}

fn refs_of(host: &str, images: &[&FixtureImage]) -> Vec<String> {
    refs(host, images)
}

/// How the test reaches a target.
struct To {
    host: String,
    ca_file: Option<PathBuf>,
    creds: Option<(String, String)>,
}

impl To {
    fn of(reg: &Registry) -> To {
        To {
            host: reg.host.clone(),
            ca_file: reg.ca_file.clone(),
            creds: reg.credentials.clone(),
        }
    }
}

/// `airlock load` of `b` into `to` with `extra` arguments; the output and the JSON report.
fn load(b: &Bundle, to: &To, extra: &[&str]) -> (Output, Value) {
    let mut cmd = airlock(&b.work.path().join("cache"));
    cmd.arg("load")
        .arg(&b.file)
        .arg("--to")
        .arg(format!("registry://{}/{PREFIX}", to.host))
        .args(["--json", "--retries", "1"]);
    if !extra.contains(&"--names") {
        cmd.args(["--names", "drop-host"]);
    }
    if !extra.contains(&"--insecure-skip-signature") && !extra.contains(&"--key") {
        cmd.arg("--key").arg(&b.public);
    }
    match &to.ca_file {
        Some(ca) => {
            cmd.arg("--ca-file").arg(ca);
        }
        None => {
            cmd.arg("--plain-http");
        }
    }
    cmd.args(extra);
    let stdin = to.creds.as_ref().map(|(u, p)| {
        cmd.args(["--username", u, "--password-stdin"]);
        format!("{p}\n")
    });
    let o = run(cmd, stdin.as_deref());
    let text = String::from_utf8_lossy(&o.stdout);
    let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{text}\nstderr:\n{}",
            stderr(&o)
        )
    });
    (o, doc)
}

/// `skopeo inspect --raw` of a reference on the target: sha256 of the bytes, or the error.
fn skopeo_raw(to: &To, reference: &str) -> Result<String, String> {
    let mut cmd = Command::new("skopeo");
    cmd.args(["inspect", "--raw", "--tls-verify=false"]);
    if let Some((u, p)) = &to.creds {
        cmd.arg("--creds").arg(format!("{u}:{p}"));
    }
    let o = cmd
        .arg(format!("docker://{}/{reference}", to.host))
        .stdin(Stdio::null())
        .output()
        .expect("run skopeo (install it: `cargo xtask install`)");
    if !o.status.success() {
        return Err(String::from_utf8_lossy(&o.stderr).into_owned());
    }
    use sha2::Digest as _;
    Ok(format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(&o.stdout))
    ))
}

/// Every tag of every image, and every child manifest by digest, read back by skopeo with
/// the digests of the source.
#[track_caller]
fn assert_loaded(to: &To, images: &[FixtureImage]) {
    for i in images {
        for t in &i.tags {
            let r = format!("{PREFIX}/{}:{t}", i.repository);
            assert_eq!(
                skopeo_raw(to, &r).unwrap_or_else(|e| panic!("{r}: {e}")),
                i.digest,
                "{r}"
            );
        }
        if i.platforms.len() > 1 {
            for m in &i.manifests {
                let r = format!("{PREFIX}/{}@{}", i.repository, m.digest);
                assert_eq!(
                    skopeo_raw(to, &r).unwrap_or_else(|e| panic!("{r}: {e}")),
                    m.digest,
                    "{r}"
                );
            }
        }
    }
}

/// Nothing at all was pushed into the registry's storage.
#[track_caller]
fn assert_empty(reg: &Registry) {
    let repos = reg.storage.join("docker/registry/v2/repositories");
    assert!(!repos.exists(), "something was pushed: {}", repos.display());
}

/// `(repository, blob hex)` linked in the registry's storage.
fn linked_blobs(storage: &Path) -> BTreeSet<(String, String)> {
    let root = storage.join("docker/registry/v2/repositories");
    let mut out = BTreeSet::new();
    for e in walk(&root) {
        let s = e.to_string_lossy().into_owned();
        if let Some((repo, rest)) = s.split_once("/_layers/sha256/") {
            // An empty link is a record torn by the kill, not a linked blob.
            let whole =
                |hex: &str| std::fs::read_to_string(&e).is_ok_and(|l| l == format!("sha256:{hex}"));
            if let Some(hex) = rest.strip_suffix("/link").filter(|h| whole(h)) {
                let repo = repo
                    .trim_start_matches(&*root.to_string_lossy())
                    .trim_start_matches('/');
                out.insert((repo.to_string(), hex.to_string()));
            }
        }
    }
    out
}

/// `(repository, tag)` present in the registry's storage.
fn tags(storage: &Path) -> BTreeSet<(String, String)> {
    let root = storage.join("docker/registry/v2/repositories");
    let mut out = BTreeSet::new();
    for e in walk(&root) {
        let s = e.to_string_lossy().into_owned();
        if let Some((repo, rest)) = s.split_once("/_manifests/tags/") {
            if let Some(tag) = rest.strip_suffix("/current/link") {
                let repo = repo
                    .trim_start_matches(&*root.to_string_lossy())
                    .trim_start_matches('/');
                out.insert((repo.to_string(), tag.to_string()));
            }
        }
    }
    out
}

/// What distribution left torn when it was killed: it writes link files and small blobs
/// (manifests) in place, so a kill in the middle leaves an empty link or a manifest that does
/// not hash to its digest. Layers are uploaded elsewhere and renamed into place: never torn.
fn torn_writes(storage: &Path) -> Vec<PathBuf> {
    walk(&storage.join("docker/registry/v2"))
        .into_iter()
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let len = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
            match name {
                "link" => len == 0,
                "data" if len < 1 << 20 && p.to_string_lossy().contains("/blobs/sha256/") => {
                    let hex = p
                        .parent()
                        .and_then(|d| d.file_name())
                        .and_then(|n| n.to_str())
                        .unwrap_or("");
                    let bytes = std::fs::read(p).unwrap_or_default();
                    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)) != hex
                }
                _ => false,
            }
        })
        .collect()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn empty_registry(tls: bool, auth: Auth) -> Registry {
    Registry::start(RegistryOptions {
        tls,
        auth,
        storage: None,
    })
    .expect("start the registry (is docker-registry installed? run `cargo xtask install`)")
}

#[track_caller]
fn assert_ok_report(o: &Output, doc: &Value, images: &[FixtureImage]) {
    assert_eq!(o.status.code(), Some(0), "load failed:\n{}", stderr(o));
    assert_eq!(doc["failures"], Value::Array(vec![]), "{doc:#}");
    assert_eq!(doc["totals"]["images"], images.len() as u64, "{doc:#}");
    assert_eq!(doc["signature"]["checked"], true);
    for i in images {
        let r = doc["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| {
                r["repository"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!("/{PREFIX}/{}", i.repository))
            })
            .unwrap_or_else(|| panic!("{} missing from the report: {doc:#}", i.repository));
        assert_eq!(r["digest"], i.digest.as_str());
    }
}

// ---- Must show 1: round trip into every variant and through nginx ----

#[test]
fn round_trip_into_every_registry_variant_and_through_nginx() {
    let b = make_bundle(true);
    let variants: Vec<(&str, Registry)> = vec![
        ("plain", empty_registry(false, Auth::None)),
        ("tls", empty_registry(true, Auth::None)),
        ("basic", empty_registry(true, Auth::basic(USER, PASS))),
        ("token", empty_registry(false, Auth::token(USER, PASS))),
    ];
    for (name, reg) in &variants {
        let to = To::of(reg);
        let (o, doc) = load(&b, &to, &[]);
        assert_ok_report(&o, &doc, &b.images);
        assert!(!stderr(&o).contains(PASS), "{name}: the password leaked");
        assert_eq!(doc["totals"]["blobsSkipped"], 0, "{name}: {doc:#}");
        // Layers shared across repositories are sent once, then mounted.
        assert!(
            doc["totals"]["blobsMounted"].as_u64().unwrap() > 0,
            "{name}: {doc:#}"
        );
        assert_loaded(&to, &b.images);
    }

    // nginx terminating TLS with a 1 MB body limit in front of an empty plain registry: the
    // 100 MiB layer goes through in small chunks after the first 413.
    let upstream = empty_registry(false, Auth::None);
    let nginx =
        Nginx::start_tls_proxy(&upstream, "1m").expect("start nginx (`cargo xtask install`)");
    let to = To {
        host: nginx.host.clone(),
        ca_file: Some(nginx.ca_file.clone()),
        creds: None,
    };
    let (o, doc) = load(&b, &to, &[]);
    assert_ok_report(&o, &doc, &b.images);
    assert_loaded(&to, &b.images);
    assert_loaded(&To::of(&upstream), &b.images);

    // A second load into a full target sends nothing.
    let to = To::of(&variants[0].1);
    let (o, doc) = load(&b, &to, &[]);
    assert_ok_report(&o, &doc, &b.images);
    assert_eq!(doc["totals"]["bytesSent"], 0, "{doc:#}");
    assert_eq!(doc["totals"]["blobsSent"], 0, "{doc:#}");
}

// ---- Must show 2: resume after the target was killed ----

#[test]
fn a_load_resumes_after_the_target_was_killed() {
    let b = make_bundle(true);
    let mut reg = empty_registry(false, Auth::None);
    let to = To::of(&reg);
    let blobs_dir = reg.storage.join("docker/registry/v2/blobs");

    let mut cmd = airlock(&b.work.path().join("cache"));
    cmd.arg("load")
        .arg(&b.file)
        .arg("--key")
        .arg(&b.public)
        .arg("--to")
        .arg(format!("registry://{}/{PREFIX}", reg.host))
        .args([
            "--names",
            "drop-host",
            "--plain-http",
            "--json",
            "--retries",
            "1",
            "--jobs",
            "2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    // Kill the registry once it holds some blobs, before the load can be complete.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = walk(&blobs_dir)
            .iter()
            .filter(|p| p.ends_with("data"))
            .count();
        if n >= 8 {
            break;
        }
        assert!(Instant::now() < deadline, "no blobs arrived in 60 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    reg.kill();
    let first = child.wait_with_output().unwrap();
    assert_ne!(first.status.code(), Some(0), "the load survived the kill?");
    let present = linked_blobs(&reg.storage);
    let tags_after_kill = tags(&reg.storage);

    // What the registry itself tore (a write in flight when it was killed).
    let torn = torn_writes(&reg.storage);
    reg.restart().unwrap();
    // No tag ever pointed at missing content: every tag present after the kill is whole,
    // unless the manifest PUT that wrote it was the one in flight, torn by the registry's own
    // in-place writes (it never answered that PUT).
    for (repo, tag) in &tags_after_kill {
        let dir = b
            .work
            .path()
            .join(format!("check-{}-{tag}", repo.replace('/', "_")));
        let o = Command::new("skopeo")
            .args(["copy", "--all", "--quiet", "--src-tls-verify=false"])
            .arg(format!("docker://{}/{repo}:{tag}", reg.host))
            .arg(format!("dir:{}", dir.display()))
            .output()
            .unwrap();
        let own_write_torn = torn.iter().any(|p| {
            let p = p.to_string_lossy();
            p.contains(&format!("/repositories/{repo}/_manifests/")) || p.ends_with("/data")
        });
        assert!(
            o.status.success() || own_write_torn,
            "tag {repo}:{tag} points at missing content: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // A torn manifest cannot be replaced through the API (distribution keeps a blob that
    // exists); an operator deletes it. Torn links are left for the rerun to rewrite.
    for p in torn.iter().filter(|p| p.ends_with("data")) {
        std::fs::remove_file(p).unwrap();
    }

    let (o, doc) = load(&b, &to, &[]);
    eprintln!(
        "first run:\n{}\ntorn by the kill: {torn:?}\nlinked after the kill: {}; rerun:\n{}\ntotals {}",
        stderr(&first),
        present.len(),
        stderr(&o),
        doc["totals"]
    );
    assert_ok_report(&o, &doc, &b.images);
    let skipped = doc["totals"]["blobsSkipped"].as_u64().unwrap();
    let mounted = doc["totals"]["blobsMounted"].as_u64().unwrap();
    assert!(
        skipped >= present.len() as u64 - mounted.min(present.len() as u64) && skipped > 0,
        "{} blobs were linked after the kill, the rerun skipped {skipped}: {doc:#}",
        present.len()
    );
    // Nothing already linked was sent again.
    let unique: u64 = fixture_set().all_blobs().values().sum();
    let present_bytes: u64 = {
        let sizes = fixture_set().all_blobs();
        let hexes: BTreeSet<&String> = present.iter().map(|(_, h)| h).collect();
        hexes
            .into_iter()
            .filter_map(|h| sizes.get(&format!("sha256:{h}")))
            .sum()
    };
    let sent = doc["totals"]["bytesSent"].as_u64().unwrap();
    assert!(
        sent <= unique - present_bytes,
        "sent {sent} bytes, but only {} were missing: {doc:#}",
        unique - present_bytes
    );
    assert_loaded(&to, &b.images);
}

// ---- Must show 3: a corrupted layer ----

/// A copy of the bundle where the layer `digest` has one byte flipped in its zstd frame's
/// content, recompressed and spliced back with the seek table updated: the signature and the
/// frame index stay valid, only the layer's bytes are wrong.
#[test]
fn a_layer_record_damaged_in_the_target_is_written_again() {
    // distribution writes its link files in place: killed while writing one, it keeps an
    // empty file and answers 500 for that blob from then on. A rerun uploads the blob again,
    // which rewrites the record.
    let b = make_bundle(false);
    let reg = empty_registry(false, Auth::None);
    let to = To::of(&reg);
    let (o, doc) = load(&b, &to, &[]);
    assert_ok_report(&o, &doc, &b.images);
    let base = b
        .images
        .iter()
        .find(|i| i.repository == "fixtures/base")
        .unwrap();
    let layer = base.manifests[0].layers[0].0.clone();
    let link = reg.storage.join(format!(
        "docker/registry/v2/repositories/{PREFIX}/fixtures/base/_layers/sha256/{}/link",
        layer.trim_start_matches("sha256:")
    ));
    assert!(link.is_file(), "{}", link.display());
    std::fs::write(&link, b"").unwrap();
    assert!(skopeo_raw(&to, &format!("{PREFIX}/fixtures/base:1")).is_ok());

    let (o, doc) = load(&b, &to, &[]);
    assert_ok_report(&o, &doc, &b.images);
    let e = stderr(&o);
    assert!(
        e.contains("answers 500") && e.contains(&layer),
        "the damaged record is not mentioned:\n{e}"
    );
    assert_eq!(std::fs::read_to_string(&link).unwrap(), layer);
    assert_loaded(&to, &b.images);
}

/// A load of a bundle whose base layer `layer` was corrupted ([`corrupt_layer`]): exit code 1,
/// the blob named with the reason, and exactly the two images that use it failed
/// (`fixtures/base`, `fixtures/app-a`).
pub(crate) fn assert_the_base_layer_failed_its_two_images(o: &Output, doc: &Value, layer: &str) {
    let e = stderr(o);
    eprintln!("{e}");
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains(layer), "the blob is not named:\n{e}");
    assert!(e.contains("signed manifest"), "{e}");
    let failed: Vec<&str> = doc["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["image"].as_str().unwrap())
        .collect();
    assert_eq!(failed.len(), 2, "{doc:#}");
    assert_eq!(failed.iter().collect::<BTreeSet<_>>().len(), 2, "{doc:#}");
    assert!(failed
        .iter()
        .all(|f| f.contains("fixtures/base") || f.contains("fixtures/app-a")));
}

pub(crate) fn corrupt_layer(bundle: &Path, digest: &str, out: &Path) {
    let file = std::fs::read(bundle).unwrap();
    let n = file.len();
    let count = u32::from_le_bytes(file[n - 9..n - 5].try_into().unwrap()) as usize;
    let table = n - 9 - 8 * count;
    let frames: Vec<(usize, usize)> = (0..count)
        .map(|i| {
            let at = table + 8 * i;
            (
                u32::from_le_bytes(file[at..at + 4].try_into().unwrap()) as usize,
                u32::from_le_bytes(file[at + 4..at + 8].try_into().unwrap()) as usize,
            )
        })
        .collect();
    // Find the entry's tar offset.
    let tar = zstd::decode_all(&file[..]).unwrap();
    let path = format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
    let mut at = 0u64;
    let mut entry_at = None;
    for e in entries(&tar) {
        if e.path() == path {
            entry_at = Some(at);
            break;
        }
        at += 512 + (e.data.len() as u64).div_ceil(512) * 512;
    }
    let entry_at = entry_at.expect("layer in the bundle") as usize;
    // The frame starting there.
    let (mut c_off, mut d_off) = (0usize, 0usize);
    for (i, (c, d)) in frames.iter().enumerate() {
        if d_off == entry_at {
            let mut content = zstd::decode_all(&file[c_off..c_off + c]).unwrap();
            assert_eq!(content.len(), *d);
            // Past the 512-byte header: inside the layer's data.
            let mid = 512 + (content.len() - 512) / 3;
            content[mid] ^= 0x5a;
            let frame = zstd::encode_all(&content[..], 3).unwrap();
            let mut new = Vec::with_capacity(n);
            new.extend_from_slice(&file[..c_off]);
            new.extend_from_slice(&frame);
            new.extend_from_slice(&file[c_off + c..]);
            let at = table + 8 * i + frame.len() - c;
            new[at..at + 4].copy_from_slice(&(frame.len() as u32).to_le_bytes());
            std::fs::write(out, new).unwrap();
            return;
        }
        c_off += c;
        d_off += d;
    }
    panic!("no frame starts at the layer's entry");
}

#[test]
fn a_corrupted_layer_fails_every_image_using_it_and_leaves_no_tag() {
    let b = make_bundle(false);
    let set = fixture_set();
    // The base layer is shared by `fixtures/base` and `fixtures/app-a`.
    let base = find(&set, "fixtures/base");
    let layer = base.manifests[0].layers[0].0.clone();
    let app_a = find(&set, "fixtures/app-a");
    assert!(app_a.manifests[0].layers.iter().any(|(d, _)| *d == layer));
    let bad = b.work.path().join("corrupt.tar.zst");
    corrupt_layer(&b.file, &layer, &bad);
    let bad_bundle = Bundle {
        work: tempfile::tempdir().unwrap(),
        file: bad,
        public: b.public.clone(),
        source_host: b.source_host.clone(),
        images: b.images.clone(),
    };

    let reg = empty_registry(false, Auth::None);
    let to = To::of(&reg);
    let (o, doc) = load(&bad_bundle, &to, &[]);
    assert_the_base_layer_failed_its_two_images(&o, &doc, &layer);
    // No tag of either image; the blob was never committed; the third image is there.
    for i in [base, app_a] {
        for t in &i.tags {
            let r = format!("{PREFIX}/{}:{t}", i.repository);
            assert!(skopeo_raw(&to, &r).is_err(), "{r} exists");
        }
    }
    let present = linked_blobs(&reg.storage);
    assert!(
        !present.iter().any(|(_, h)| layer.ends_with(h.as_str())),
        "the corrupted blob was committed: {present:?}"
    );
    let multi: Vec<FixtureImage> = b
        .images
        .iter()
        .filter(|i| i.repository == "fixtures/multi")
        .cloned()
        .collect();
    assert_loaded(&to, &multi);
}

// ---- Must show 4: errors before anything is pushed ----

#[test]
fn bad_inputs_and_targets_fail_before_anything_is_pushed() {
    let b = make_bundle(false);

    // Name collision.
    let reg = empty_registry(false, Auth::None);
    let base = format!("{}/fixtures/base", b.source_host);
    let app = format!("{}/fixtures/app-a", b.source_host);
    let (o, doc) = load(
        &b,
        &To::of(&reg),
        &[
            "--rewrite",
            &format!("{base}=same"),
            "--rewrite",
            &format!("{app}=same"),
        ],
    );
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(
        e.contains(&base) && e.contains(&app) && e.contains("mirror/same"),
        "{e}"
    );
    assert_eq!(doc["ok"], false);
    assert_empty(&reg);

    // Wrong key.
    let (_, other) = key_pair(b.work.path(), "other");
    let other = other.to_str().unwrap().to_owned();
    let (o, _) = load(&b, &To::of(&reg), &["--key", &other]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(
        e.contains("does not verify") && e.contains("nothing was pushed"),
        "{e}"
    );
    assert_empty(&reg);

    // No key at all.
    let mut cmd = airlock(&b.work.path().join("cache"));
    cmd.arg("load").arg(&b.file).args([
        "--to",
        &format!("registry://{}/x", reg.host),
        "--plain-http",
    ]);
    let o = run(cmd, None);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--insecure-skip-signature"),
        "{}",
        stderr(&o)
    );
    assert_empty(&reg);

    // Unreachable target.
    let port = airlock_testkit::free_port();
    let to = To {
        host: format!("127.0.0.1:{port}"),
        ca_file: None,
        creds: None,
    };
    let (o, _) = load(&b, &to, &[]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("cannot reach") && e.contains("hint:"), "{e}");

    // Bad credentials.
    let basic = empty_registry(false, Auth::basic(USER, PASS));
    let to = To {
        host: basic.host.clone(),
        ca_file: None,
        creds: Some((USER.into(), "wrong".into())),
    };
    let (o, _) = load(&b, &to, &[]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("/v2/") && e.contains("hint:"), "{e}");
    assert!(!e.contains("wrong"), "the password leaked: {e}");
    assert_empty(&basic);

    // Unknown CA: TLS target without --ca-file.
    let tls = empty_registry(true, Auth::None);
    let mut cmd = airlock(&b.work.path().join("cache"));
    cmd.arg("load")
        .arg(&b.file)
        .arg("--key")
        .arg(&b.public)
        .args([
            "--to",
            &format!("registry://{}/{PREFIX}", tls.host),
            "--names",
            "drop-host",
        ]);
    let o = run(cmd, None);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("--ca-file"), "{e}");
    assert_empty(&tls);

    // keep-host with a host:port name cannot be a repository: said before anything is sent.
    let (o, _) = load(&b, &To::of(&reg), &["--names", "keep-host"]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("not a valid repository name"), "{e}");
    assert_empty(&reg);
}
