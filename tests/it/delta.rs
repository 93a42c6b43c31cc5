//! Delta bundles: `airlock bundle SPEC --base BASE` carries only the blobs its bases lack,
//! against the two versions of [`delta_versions`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use airlock_testkit::{Registry, RegistryOptions};
use serde_json::Value;

use crate::support::*;

/// The signed manifest inside a bundle (`airlock/manifest.json`).
fn bundle_manifest(bundle: &Path) -> Value {
    let tar = decompress(bundle);
    let v = serde_json::from_slice(&tar_read(&tar, "airlock/manifest.json")).unwrap();
    std::fs::remove_file(&tar).unwrap();
    v
}

/// `manifest.blobs` as digest to size.
fn manifest_blobs(manifest: &Value) -> BTreeMap<String, u64> {
    manifest["blobs"]
        .as_array()
        .expect("manifest.blobs")
        .iter()
        .map(|b| {
            (
                b["digest"].as_str().unwrap().to_string(),
                b["size"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The images a manifest names, reference to digest.
fn manifest_images(manifest: &Value) -> BTreeMap<String, String> {
    manifest["images"]
        .as_array()
        .expect("manifest.images")
        .iter()
        .map(|i| {
            (
                i["reference"].as_str().unwrap_or_default().to_string(),
                i["digest"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_two_versions_differ_by_one_image_and_one_moved_tag() {
    let work = workdir();
    let versions = delta_versions(work.path());
    let v1 = work.path().join("v1.tar.zst");
    versions.bundle(work.path(), &versions.v1, &v1, &["--quiet"]);
    versions.move_tag();
    let v2 = work.path().join("v2.tar.zst");
    versions.bundle(work.path(), &versions.v2, &v2, &["--quiet"]);
    let (m1, m2) = (bundle_manifest(&v1), bundle_manifest(&v2));
    let (i1, i2) = (manifest_images(&m1), manifest_images(&m2));
    assert!(!i1.contains_key(&versions.new_image) && i2.contains_key(&versions.new_image));
    assert_ne!(versions.moved_from, versions.moved_to);
    assert_eq!(i2[&versions.moved_tag], versions.moved_to);
    assert!(versions.registry.host.starts_with("127.0.0.1:"));
    let (b1, b2) = (manifest_blobs(&m1), manifest_blobs(&m2));
    let new: Vec<_> = b2.keys().filter(|d| !b1.contains_key(*d)).collect();
    assert!(!new.is_empty());
    assert!(new.contains(&&versions.moved_to), "{new:?}");
}

/// What the test allows a delta beyond its blobs' bytes (+1%): `airlock/manifest.json` (the
/// whole inventory of v2, compressed), its signature, `oci-layout`, `index.json`, a 512-byte
/// tar header per entry, the end of the tar and the seek-table frames. Measured: 6.0 KiB for
/// the fixture delta (6 blobs carried), most of it the manifest listing every blob of v2.
const DELTA_ALLOWANCE: u64 = 8 << 10;

/// The blob digests in a bundle's tar, listed by the stock tools (`zstd -dc | tar t`).
fn tar_blob_digests(bundle: &Path) -> BTreeSet<String> {
    let o = Command::new("sh")
        .arg("-c")
        .arg("zstd -dc \"$1\" | tar t")
        .arg("sh")
        .arg(bundle)
        .output()
        .expect("run zstd and tar");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("blobs/sha256/"))
        .filter(|h| !h.is_empty())
        .map(|h| format!("sha256:{h}"))
        .collect()
}

/// v1 bundled (signed with a fresh key), the tag moved, v2 bundled in full: the manifests.
struct Made {
    versions: DeltaVersions,
    key: std::path::PathBuf,
    v1: std::path::PathBuf,
    m1: Value,
    m2: Value,
}

fn make(work: &Path) -> Made {
    let versions = delta_versions(work);
    let mut cmd = airlock(&work.join("cache"));
    cmd.args(["key", "generate", "--no-passphrase", "--out"])
        .arg(work.join("K"));
    let o = run(cmd, None);
    assert!(o.status.success(), "key generate: {}", stderr(&o));
    let key = work.join("K.key");
    assert!(key.exists(), "key generate wrote no K.key");
    let v1 = work.join("v1.tar.zst");
    versions.bundle(
        work,
        &versions.v1,
        &v1,
        &["--quiet", "--sign-key", key.to_str().unwrap()],
    );
    versions.move_tag();
    let full = work.join("v2-full.tar.zst");
    versions.bundle(work, &versions.v2, &full, &["--quiet"]);
    Made {
        m1: bundle_manifest(&v1),
        m2: bundle_manifest(&full),
        versions,
        key,
        v1,
    }
}

/// `bundle v2 --base BASE… --json`: its summary and signed manifest. Checks what every delta
/// of v2 against (something equal to) v1 must be: exactly the blobs of v2 not in v1 in its tar,
/// within the size allowed, the full inventory in its manifest.
fn delta_of(made: &Made, work: &Path, name: &str, bases: &[&Path]) -> (Value, Value) {
    let out = work.join(name);
    let mut args: Vec<String> = vec!["--json".into()];
    for b in bases {
        args.push("--base".into());
        args.push(b.to_str().unwrap().into());
    }
    args.push("--sign-key".into());
    args.push(made.key.to_str().unwrap().into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let summary: Value =
        serde_json::from_slice(&made.versions.bundle(work, &made.versions.v2, &out, &args))
            .expect("--json prints one document");
    let delta = bundle_manifest(&out);

    let (b1, b2) = (manifest_blobs(&made.m1), manifest_blobs(&made.m2));
    let expected: BTreeSet<String> = b2
        .keys()
        .filter(|d| !b1.contains_key(*d))
        .cloned()
        .collect();
    assert!(expected.contains(&made.versions.moved_to));
    assert_eq!(tar_blob_digests(&out), expected, "the blobs in {name}");
    let bytes: u64 = expected.iter().map(|d| b2[d]).sum();
    let size = std::fs::metadata(&out).unwrap().len();
    eprintln!(
        "{name}: {size} bytes for {} blobs of {bytes} bytes (overhead {})",
        expected.len(),
        size as i64 - bytes as i64
    );
    assert!(
        size <= bytes + bytes / 100 + DELTA_ALLOWANCE,
        "{name} is {size} bytes for {bytes} bytes of blobs"
    );
    // The full audit inventory: every blob and image of v2; each left-out blob under one base.
    assert_eq!(manifest_blobs(&delta), b2);
    assert_eq!(manifest_images(&delta), manifest_images(&made.m2));
    assert_eq!(delta["formatVersion"], 4);
    let mut from_bases: Vec<String> = delta["bases"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["blobs"].as_array().unwrap().iter())
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    let n = from_bases.len();
    from_bases.sort();
    from_bases.dedup();
    assert_eq!(n, from_bases.len(), "a blob is listed under two bases");
    let left_out: BTreeSet<String> = b2.keys().filter(|d| b1.contains_key(*d)).cloned().collect();
    assert_eq!(from_bases.into_iter().collect::<BTreeSet<_>>(), left_out);
    assert_eq!(
        summary["delta"]["carriedBlobs"].as_u64().unwrap() as usize,
        expected.len()
    );
    assert_eq!(summary["delta"]["carriedBytes"].as_u64().unwrap(), bytes);
    (summary, delta)
}

/// Must show 1 of the delta issue: `bundle v2 --base v1.tar.zst` holds exactly the blobs of
/// v2 not in v1, within their bytes + 1% + a few KiB; the same against the manifest beside
/// v1, against an inventory of what v1 holds, and against two bases.
#[test]
fn a_delta_holds_exactly_the_blobs_its_base_lacks() {
    let work = workdir();
    let w = work.path();
    let made = make(w);
    let v1_identity = sha256_file(&airlock_bundle_beside(&made.v1));

    // Against the bundle file: its head only.
    let (summary, delta) = delta_of(&made, w, "d-bundle.tar.zst", &[&made.v1]);
    let bases = delta["bases"].as_array().unwrap();
    assert_eq!(bases.len(), 1);
    assert_eq!(bases[0]["kind"], "bundle");
    assert_eq!(bases[0]["digest"].as_str().unwrap(), v1_identity);
    assert_eq!(bases[0]["name"], "v1.tar.zst");
    assert_eq!(summary["delta"]["bases"][0]["signature"], "verified");

    // `inspect` of the delta: full and carried sizes, the base, that loading needs it.
    let mut cmd = airlock(&w.join("cache"));
    cmd.args(["inspect", "--json"])
        .arg(w.join("d-bundle.tar.zst"));
    let o = run(cmd, None);
    assert!(o.status.success(), "inspect: {}", stderr(&o));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["delta"]["fullBytes"], made.m2["totals"]["bytes"]);
    assert_eq!(
        doc["delta"]["carriedBytes"],
        summary["delta"]["carriedBytes"]
    );
    assert_eq!(
        doc["delta"]["bases"][0]["digest"].as_str().unwrap(),
        v1_identity
    );
    assert_eq!(doc["delta"]["needsBase"], true);
    let mut cmd = airlock(&w.join("cache"));
    cmd.arg("inspect").arg(w.join("d-bundle.tar.zst"));
    let o = run(cmd, None);
    assert!(o.status.success(), "inspect: {}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("delta: carries"), "{text}");
    assert!(text.contains(&v1_identity), "{text}");
    assert!(text.contains("needs the base"), "{text}");

    // Against the manifest written beside v1: the same delta, the same identity.
    let (_, delta) = delta_of(
        &made,
        w,
        "d-manifest.tar.zst",
        &[&airlock_bundle_beside(&made.v1)],
    );
    assert_eq!(delta["bases"][0]["digest"].as_str().unwrap(), v1_identity);
    assert_eq!(delta["bases"][0]["kind"], "bundle");

    // Against an inventory of what v1 holds, written by hand.
    let inventory = w.join("site.inventory.json");
    let blobs: Vec<String> = manifest_blobs(&made.m1).into_keys().collect();
    write_inventory(&inventory, &made.m1, &blobs);
    let (_, delta) = delta_of(&made, w, "d-inventory.tar.zst", &[&inventory]);
    assert_eq!(delta["bases"][0]["kind"], "inventory");
    assert_eq!(
        delta["bases"][0]["digest"].as_str().unwrap(),
        sha256_file(&inventory)
    );

    // Two bases: an inventory of half of v1's blobs first, then v1 for the rest.
    let half = w.join("half.inventory.json");
    let first_half: Vec<String> = blobs.iter().step_by(2).cloned().collect();
    write_inventory(&half, &made.m1, &first_half);
    let (summary, delta) = delta_of(&made, w, "d-two.tar.zst", &[&half, &made.v1]);
    let bases = delta["bases"].as_array().unwrap();
    assert_eq!(bases.len(), 2);
    assert_eq!(bases[0]["kind"], "inventory");
    assert_eq!(bases[1]["kind"], "bundle");
    let listed = |b: &Value| -> BTreeSet<String> {
        b["blobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap().to_string())
            .collect()
    };
    let b2 = manifest_blobs(&made.m2);
    let expected_first: BTreeSet<String> = first_half
        .iter()
        .filter(|d| b2.contains_key(*d))
        .cloned()
        .collect();
    assert_eq!(listed(&bases[0]), expected_first);
    assert!(listed(&bases[1]).is_disjoint(&expected_first));
    assert_eq!(summary["delta"]["bases"].as_array().unwrap().len(), 2);

    // With an empty cache: the layers the base has are not downloaded (the documents are,
    // for the walk), so the 100 MiB layer of `fixtures/big` stays where it is.
    let mut cmd = airlock(&w.join("cold-cache"));
    cmd.args(["bundle", "--json", "--base"])
        .arg(&made.v1)
        .arg("-o")
        .arg(w.join("d-cold.tar.zst"))
        .arg(&made.versions.v2);
    let o = run(cmd, None);
    assert!(o.status.success(), "bundle: {}", stderr(&o));
    let cold: Value = serde_json::from_slice(&o.stdout).unwrap();
    let documents: u64 = made.m2["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| !b["mediaType"].as_str().unwrap().contains("layer"))
        .map(|b| b["size"].as_u64().unwrap())
        .sum();
    let carried = cold["delta"]["carriedBytes"].as_u64().unwrap();
    let downloaded = cold["downloadedBytes"].as_u64().unwrap();
    assert!(
        downloaded <= documents + carried,
        "downloaded {downloaded} bytes: more than the documents ({documents}) and the carried blobs ({carried})"
    );
    assert_eq!(
        tar_blob_digests(&w.join("d-cold.tar.zst")),
        tar_blob_digests(&w.join("d-bundle.tar.zst"))
    );
}

/// `NAME.manifest.json` beside a bundle.
fn airlock_bundle_beside(bundle: &Path) -> std::path::PathBuf {
    let mut p = bundle.as_os_str().to_owned();
    p.push(".manifest.json");
    p.into()
}

/// A site inventory holding `digests` (of the blobs of `manifest`), in one repository:
/// manifests and indexes under `manifests`, the rest under `blobs`.
fn write_inventory(path: &Path, manifest: &Value, digests: &[String]) {
    let types: BTreeMap<&str, &str> = manifest["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["digest"].as_str().unwrap(),
                b["mediaType"].as_str().unwrap(),
            )
        })
        .collect();
    let is_manifest = |d: &str| {
        let t = types.get(d).copied().unwrap_or_default();
        t.contains("manifest") || t.contains("index")
    };
    let mut manifests: Vec<&String> = digests.iter().filter(|d| is_manifest(d)).collect();
    let mut blobs: Vec<&String> = digests.iter().filter(|d| !is_manifest(d)).collect();
    manifests.sort();
    blobs.sort();
    let doc = serde_json::json!({
        "kind": "airlock-inventory",
        "formatVersion": 1,
        "created": "2026-12-01T00:00:00Z",
        "airlockVersion": "test",
        "registry": "127.0.0.1:5000",
        "prefix": "",
        "repositories": [{
            "name": "fixtures/all",
            "tags": {},
            "manifests": manifests,
            "blobs": blobs,
        }],
    });
    let mut bytes = serde_json::to_vec_pretty(&doc).unwrap();
    bytes.push(b'\n');
    std::fs::write(path, bytes).unwrap();
}

/// A file that is no bundle, manifest or inventory is refused naming it; so is a base that
/// is the output itself; both before any registry is asked.
#[test]
fn a_base_that_is_not_one_is_refused_naming_it() {
    let work = workdir();
    let w = work.path();
    // No registry listens here: a run that got as far as the network would fail otherwise.
    let spec = write_spec(
        w,
        "v2",
        &["127.0.0.1:9/fixtures/base:1".to_string()],
        None,
        "    127.0.0.1:9: {plainHttp: true}\n",
    );
    for (name, bytes) in [
        ("notes.txt", &b"not a bundle\n"[..]),
        ("other.json", &br#"{"apiVersion": "v1"}"#[..]),
    ] {
        let base = w.join(name);
        std::fs::write(&base, bytes).unwrap();
        let mut cmd = airlock(&w.join("cache"));
        cmd.args(["bundle", "-o"])
            .arg(w.join("out.tar.zst"))
            .arg("--base")
            .arg(&base)
            .arg(&spec);
        let o = run(cmd, None);
        assert!(!o.status.success());
        let err = stderr(&o);
        assert!(err.contains(name), "{err}");
        assert!(err.contains("neither a bundle"), "{err}");
        assert!(
            !err.contains("127.0.0.1:9"),
            "the registry was asked: {err}"
        );
    }
    let out = w.join("out.tar.zst");
    std::fs::write(&out, b"an earlier file").unwrap();
    let mut cmd = airlock(&w.join("cache"));
    cmd.args(["bundle", "-o"])
        .arg(&out)
        .arg("--base")
        .arg(&out)
        .arg(&spec);
    let o = run(cmd, None);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("out.tar.zst") && err.contains("base"), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"an earlier file");
}

/// An empty registry to load into.
fn empty_target() -> Registry {
    Registry::start(RegistryOptions::default()).expect("start a registry")
}

/// Every tag of every repository of the registry at `host` and its digest, by curl (catalog
/// and tag lists) and skopeo (the manifest's bytes).
fn registry_state(host: &str) -> BTreeMap<String, String> {
    let get = |path: &str| -> Value {
        let o = Command::new("curl")
            .args(["-sf", &format!("http://{host}{path}")])
            .output()
            .expect("run curl");
        assert!(o.status.success(), "GET {path} at {host}");
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let mut state = BTreeMap::new();
    let catalog = get("/v2/_catalog");
    for repo in catalog["repositories"].as_array().into_iter().flatten() {
        let repo = repo.as_str().unwrap();
        let tags = get(&format!("/v2/{repo}/tags/list"));
        for tag in tags["tags"].as_array().into_iter().flatten() {
            let reference = format!("{repo}:{}", tag.as_str().unwrap());
            let digest = crate::restore::skopeo_raw(host, &reference);
            state.insert(reference, digest);
        }
    }
    state
}

/// Must show 2 of the delta issue, with the delta `bundle --base` writes: v1 then the delta
/// load to what the full v2 loads (every tag's digest, by skopeo); the delta alone into an
/// empty registry is refused before any push, naming what it lacks; with `--base v1.tar.zst`
/// it loads the same.
#[test]
fn a_delta_bundle_loads_after_its_base_or_with_it_to_the_full_v2() {
    let work = workdir();
    let w = work.path();
    let made = make(w);
    let delta = w.join("v2-delta.tar.zst");
    made.versions.bundle(
        w,
        &made.versions.v2,
        &delta,
        &[
            "--quiet",
            "--base",
            made.v1.to_str().unwrap(),
            "--sign-key",
            made.key.to_str().unwrap(),
        ],
    );
    let public = made.key.with_extension("pub");
    let load = |bundle: &Path, reg: &Registry, extra: &[&str]| {
        let mut cmd = airlock(&w.join("cache"));
        cmd.arg("load")
            .arg(bundle)
            .arg("--to")
            .arg(format!("registry://{}/site", reg.host))
            .args(["--plain-http", "--names", "drop-host"])
            .args(extra);
        run(cmd, None)
    };
    let key = ["--key", public.to_str().unwrap()];

    let full = empty_target();
    let o = load(
        &w.join("v2-full.tar.zst"),
        &full,
        &["--insecure-skip-signature"],
    );
    assert!(o.status.success(), "full v2: {}", stderr(&o));
    let expected = registry_state(&full.host);
    assert!(expected.len() >= 8, "{expected:?}");

    // v1, then the delta.
    let site = empty_target();
    let o = load(&made.v1, &site, &key);
    assert!(o.status.success(), "v1: {}", stderr(&o));
    let o = load(&delta, &site, &key);
    assert!(o.status.success(), "delta after v1: {}", stderr(&o));
    assert_eq!(registry_state(&site.host), expected);

    // The delta alone: refused before any push, naming a blob only v1 has.
    let empty = empty_target();
    let o = load(&delta, &empty, &key);
    assert!(!o.status.success());
    let text = stderr(&o);
    let (b1, b2) = (manifest_blobs(&made.m1), manifest_blobs(&made.m2));
    let from_v1: Vec<&String> = b2.keys().filter(|d| b1.contains_key(*d)).collect();
    assert!(!from_v1.is_empty());
    for d in &from_v1 {
        assert!(text.contains(d.as_str()), "{d} not named:\n{text}");
    }
    assert!(text.contains("--base"), "{text}");
    assert!(
        registry_state(&empty.host).is_empty(),
        "something was pushed"
    );

    // With the base file beside it: the same as the full v2.
    let mut with_base = key.to_vec();
    with_base.extend(["--base", made.v1.to_str().unwrap()]);
    let o = load(&delta, &empty, &with_base);
    assert!(o.status.success(), "delta --base v1: {}", stderr(&o));
    assert_eq!(registry_state(&empty.host), expected);
}

// A delta on the offline side, with the signed v1, v2 and delta of
// `airlock_layout::testing::delta`: loaded after its base and into an empty registry (refused
// before any push, or with `--base`), each time compared with a load of the full v2 by
// skopeo; served with its base; verified alone, with its base and with the wrong one.
mod offline {
    use std::path::{Path, PathBuf};
    use std::process::{Command, Output};

    use airlock_layout::testing::delta::{delta_versions, DeltaVersions};
    use airlock_layout::SigningKey;
    use airlock_testkit::{Registry, RegistryOptions};
    use serde_json::Value;

    use crate::restore::skopeo_raw;
    use crate::support::*;

    /// The images of v2, as loaded under `mirror/`.
    const V2_IMAGES: [&str; 3] = [
        "mirror/r.lan/app:1",
        "mirror/r.lan/tool:1",
        "mirror/r.lan/new:1",
    ];

    struct Work {
        work: tempfile::TempDir,
        public: PathBuf,
        v: DeltaVersions,
    }

    fn work() -> Work {
        let work = workdir();
        let signer = SigningKey::generate();
        let public = work.path().join("signer.pub");
        std::fs::write(&public, signer.verifying_key().to_pem()).unwrap();
        let dir = work.path().join("bundles");
        std::fs::create_dir_all(&dir).unwrap();
        let v = delta_versions(&dir, &signer);
        Work { work, public, v }
    }

    impl Work {
        /// `airlock COMMAND BUNDLE --key PUB ARGS…`.
        fn airlock(&self, command: &str, bundle: &Path, args: &[&str]) -> Output {
            let mut cmd = airlock(&self.work.path().join("cache"));
            cmd.arg(command)
                .arg(bundle)
                .arg("--key")
                .arg(&self.public)
                .args(args);
            run(cmd, None)
        }

        /// `airlock load BUNDLE --to registry://HOST/mirror --plain-http ARGS…`.
        fn load(&self, bundle: &Path, reg: &Registry, args: &[&str]) -> Output {
            let to = format!("registry://{}/mirror", reg.host);
            let mut all = vec!["--to", to.as_str(), "--plain-http"];
            all.extend_from_slice(args);
            self.airlock("load", bundle, &all)
        }
    }

    fn empty_registry() -> Registry {
        Registry::start(RegistryOptions::default()).expect("start a registry")
    }

    /// The repositories the registry holds (its catalog).
    fn catalog(reg: &Registry) -> Vec<String> {
        let o = Command::new("curl")
            .args(["-sf", &format!("http://{}/v2/_catalog", reg.host)])
            .output()
            .expect("run curl");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
        doc["repositories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect()
    }

    /// The digest of every v2 image in `reg`, by skopeo.
    fn v2_digests(reg: &Registry) -> Vec<String> {
        V2_IMAGES.iter().map(|r| skopeo_raw(&reg.host, r)).collect()
    }

    #[test]
    fn a_delta_after_its_base_loads_to_what_the_full_bundle_loads() {
        let w = work();
        let full = empty_registry();
        let o = w.load(&w.v.v2, &full, &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        let expected = v2_digests(&full);

        let reg = empty_registry();
        let o = w.load(&w.v.v1, &reg, &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        let o = w.load(&w.v.delta, &reg, &["--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(doc["totals"]["images"], 3, "{doc:#}");
        assert_eq!(v2_digests(&reg), expected);
        // Only what v1 lacks was sent: tool's layer D and new's layer E, two configs.
        assert_eq!(doc["totals"]["blobsSent"], 4, "{doc:#}");
    }

    #[test]
    fn a_delta_into_an_empty_registry_is_refused_before_any_push_naming_each_missing_blob() {
        let w = work();
        let reg = empty_registry();
        let o = w.load(&w.v.delta, &reg, &[]);
        assert!(!o.status.success(), "{}", stderr(&o));
        let text = stderr(&o);
        for d in w.v.from_base() {
            assert!(text.contains(&d.to_string()), "{d} not named:\n{text}");
        }
        assert!(text.contains("v1.tar.zst"), "{text}");
        assert!(text.contains("--base"), "{text}");
        assert!(text.contains("`r.lan/app:1`"), "{text}");
        assert!(text.contains("needs 5 blobs"), "{text}");
        assert!(text.contains("nothing was loaded"), "{text}");
        // Nothing was pushed: no repository exists.
        assert_eq!(catalog(&reg), Vec::<String>::new());

        // With the base file: loaded, the same as the full v2.
        let o = w.load(&w.v.delta, &reg, &["--base", w.v.v1.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        let full = empty_registry();
        let o = w.load(&w.v.v2, &full, &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(v2_digests(&reg), v2_digests(&full));

        // The wrong base file is named as such.
        let other = empty_registry();
        let o = w.load(&w.v.delta, &other, &["--base", w.v.other.to_str().unwrap()]);
        assert!(!o.status.success());
        let text = stderr(&o);
        assert!(text.contains("is not a base of the delta"), "{text}");
        assert!(text.contains("other.tar.zst"), "{text}");
        assert_eq!(catalog(&other), Vec::<String>::new());
    }

    #[test]
    fn serve_of_a_delta_and_its_base_serves_every_v2_image_and_the_delta_alone_leaves_them_out() {
        use crate::serve::{skopeo_pull, Served};
        let w = work();
        let full = empty_registry();
        let o = w.load(&w.v.v2, &full, &[]);
        assert!(o.status.success(), "{}", stderr(&o));

        let s = Served::start(w.work.path(), &[&w.v.v1, &w.v.delta], &w.public, &[]);
        for (i, image) in V2_IMAGES.iter().enumerate() {
            let name = image.trim_start_matches("mirror/");
            let out = w.work.path().join(format!("pulled-{i}"));
            let got = skopeo_pull(&format!("127.0.0.1:{}/{name}", s.port), &out)
                .unwrap_or_else(|e| panic!("{name}: {e}\n{}", s.log()));
            assert_eq!(got, skopeo_raw(&full.host, image), "{name}");
        }
        drop(s);

        // The delta alone: `app:1` (all from the base) and `new:1`, `tool:1` (a layer each from
        // the base) are left out, each named with its base.
        let s = Served::start(w.work.path(), &[&w.v.delta], &w.public, &[]);
        let log = s.log();
        for name in ["r.lan/app:1", "r.lan/new:1", "r.lan/tool:1"] {
            let out = w.work.path().join("pulled-alone");
            assert!(
                skopeo_pull(&format!("127.0.0.1:{}/{name}", s.port), &out).is_err(),
                "{name} is served:\n{log}"
            );
        }
        assert_eq!(log.matches("not serving it").count(), 3, "{log}");
        assert!(log.contains("v1.tar.zst"), "{log}");
        assert!(log.contains("airlock serve BASE DELTA"), "{log}");
    }

    #[test]
    fn verify_checks_a_delta_alone_with_its_base_and_names_the_wrong_base() {
        let w = work();
        let o = w.airlock("verify", &w.v.delta, &["--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(doc["blobsVerified"], 6, "{doc:#}");

        let o = w.airlock("verify", &w.v.delta, &["--base", w.v.v1.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("5 blobs from the base"),
            "{}",
            stderr(&o)
        );

        let o = w.airlock(
            "verify",
            &w.v.delta,
            &["--base", w.v.other.to_str().unwrap()],
        );
        assert!(!o.status.success());
        let text = stderr(&o);
        assert!(text.contains("is not a base of the delta"), "{text}");
        assert!(text.contains("other.tar.zst"), "{text}");
    }
}
