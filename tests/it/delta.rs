//! Delta bundles: `airlock bundle SPEC --base BASE` carries only the blobs its bases lack,
//! against the two versions of [`delta_versions`].

use std::collections::BTreeMap;
use std::path::Path;

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
