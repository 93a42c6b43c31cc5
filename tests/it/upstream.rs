//! `airlock verify --upstream-key` / keyless flags, offline: a bundle whose images carry no
//! upstream signature fails, naming every image; bad policy inputs are usage errors.

use serde_json::Value;

use crate::support::*;
use crate::verify::{key_pair, signed};

#[test]
fn images_without_carried_signatures_fail_the_upstream_check_each_named() {
    let s = signed();
    let (_, upstream) = key_pair(s.work.path(), "upstream");
    let mut cmd = airlock(&s.work.path().join("cache"));
    cmd.arg("verify")
        .arg(&s.bundle)
        .arg("--json")
        .arg("--key")
        .arg(&s.public)
        .arg("--upstream-key")
        .arg(&upstream);
    let o = run(cmd, None);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["ok"], false, "{doc:#}");
    assert_eq!(doc["error"], Value::Null, "the bundle itself is good");
    let images = doc["upstream"]["images"].as_array().unwrap();
    assert!(!images.is_empty());
    for image in images {
        let name = image["image"].as_str().unwrap();
        let failure = image["failures"][0].as_str().unwrap();
        assert!(
            failure.starts_with(&format!("{name}: no signature of sha256:"))
                && failure.contains("is carried in the bundle"),
            "{failure}"
        );
        assert!(
            e.contains(&format!("error: upstream signature: {failure}")),
            "{e}"
        );
    }
    assert!(e.contains("upstream signatures (signed with `"), "{e}");
}

#[test]
fn a_bad_upstream_key_or_trusted_root_is_a_usage_error_naming_the_file() {
    let s = signed();
    let missing = s.work.path().join("missing.pub");
    let mut cmd = airlock(&s.work.path().join("cache"));
    cmd.arg("verify")
        .arg(&s.bundle)
        .arg("--key")
        .arg(&s.public)
        .arg("--upstream-key")
        .arg(&missing);
    let o = run(cmd, None);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("missing.pub"), "{}", stderr(&o));

    let root = s.work.path().join("trusted_root.json");
    std::fs::write(&root, "{}").unwrap();
    let mut cmd = airlock(&s.work.path().join("cache"));
    cmd.arg("verify")
        .arg(&s.bundle)
        .arg("--key")
        .arg(&s.public)
        .args(["--upstream-identity", "someone@example.test"])
        .args(["--upstream-issuer", "https://issuer.example.test"])
        .arg("--trusted-root")
        .arg(&root);
    let o = run(cmd, None);
    assert_ne!(o.status.code(), Some(0));
    let e = stderr(&o);
    assert!(
        e.contains("trusted_root.json` is not a usable sigstore trusted root"),
        "{e}"
    );

    // The keyless flags go together.
    let mut cmd = airlock(&s.work.path().join("cache"));
    cmd.arg("verify")
        .arg(&s.bundle)
        .arg("--key")
        .arg(&s.public)
        .args(["--upstream-identity", "someone@example.test"]);
    let o = run(cmd, None);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

// ---- bundles carrying signatures, written with the layout crate ----

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use airlock_cosign::testing::{sign_with_key, simple_signing_payload, TestSigstore};
use airlock_layout::archive::{write_bundle, ArchiveOptions, BundleContents};
use airlock_layout::media::{cosign_tag, COSIGN_SIMPLE_SIGNING, OCI_CONFIG, OCI_MANIFEST};
use airlock_layout::{
    format_version_for, ArtifactKind, ArtifactRecord, BlobRecord, BlobStore, BundleManifest,
    Digest, ImageRecord, SigningKey, SpecInfo, Totals,
};

type Sign<'a> = &'a dyn Fn(&[u8]) -> BTreeMap<String, String>;

/// A signed (by `signer`) format-2 bundle of one tiny image per `(name, sign)`, each carrying
/// a cosign signature made by `sign` (`None`: unsigned).
fn bundle_with_signatures(
    dir: &Path,
    signer: &SigningKey,
    images: &[(&str, Option<Sign<'_>>)],
) -> PathBuf {
    let store = BlobStore::open(dir.join("store")).unwrap();
    let mut blobs: BTreeMap<String, BlobRecord> = BTreeMap::new();
    let mut put = |bytes: &[u8], media_type: &str| {
        let digest = Digest::of_bytes(bytes);
        store.put_bytes(&digest, bytes).unwrap();
        blobs.insert(
            digest.to_string(),
            BlobRecord {
                digest: digest.clone(),
                size: bytes.len() as u64,
                media_type: media_type.into(),
            },
        );
        (digest, bytes.len() as u64)
    };
    let mut records = Vec::new();
    for (name, sign) in images {
        let config = serde_json::to_vec(
            &serde_json::json!({"architecture": "amd64", "os": "linux", "name": name}),
        )
        .unwrap();
        let (config, config_size) = put(&config, OCI_CONFIG);
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config.to_string(), "size": config_size},
            "layers": [],
        }))
        .unwrap();
        let (digest, size) = put(&manifest, OCI_MANIFEST);
        let mut artifacts = Vec::new();
        if let Some(sign) = sign {
            let payload = simple_signing_payload(&format!("registry.example.test/{name}"), &digest);
            let annotations = sign(&payload);
            let (layer, layer_size) = put(&payload, COSIGN_SIMPLE_SIGNING);
            let (empty, _) = put(b"{}", OCI_CONFIG);
            let sig = serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": empty.to_string(), "size": 2},
                "layers": [{"mediaType": COSIGN_SIMPLE_SIGNING, "digest": layer.to_string(),
                            "size": layer_size, "annotations": annotations}],
            }))
            .unwrap();
            let (sig, sig_size) = put(&sig, OCI_MANIFEST);
            artifacts.push(ArtifactRecord {
                subject: digest.clone(),
                kind: ArtifactKind::Signature,
                digest: sig,
                media_type: OCI_MANIFEST.into(),
                size: sig_size,
                artifact_type: None,
                tag: Some(cosign_tag(&digest, "sig")),
                certificate: airlock_cosign::certificate_identity(&annotations),
                verified: None,
            });
        }
        records.push(ImageRecord {
            name: format!("registry.example.test/{name}"),
            reference: format!("registry.example.test/{name}:1"),
            tags: vec!["1".into()],
            digest,
            media_type: OCI_MANIFEST.into(),
            size,
            source: format!("registry.example.test/{name}"),
            platforms: vec!["linux/amd64".into()],
            original_digest: None,
            artifacts,
            content: None,
        });
    }
    let blobs: Vec<BlobRecord> = blobs.into_values().collect();
    let manifest = BundleManifest {
        format_version: format_version_for(&records),
        created: "2026-12-01T00:00:00Z".into(),
        airlock_version: "0.1.0".into(),
        spec: SpecInfo {
            name: "signed".into(),
            sha256: "0".repeat(64),
        },
        totals: Totals::of(&records, &blobs),
        images: records,
        blobs: blobs.clone(),
        bases: Vec::new(),
    };
    let manifest_json = manifest.to_json_bytes();
    let signature = signer.sign(&manifest_json);
    let index_json = manifest.index_json();
    let out = dir.join("signed.tar.zst");
    let contents = BundleContents {
        manifest_json: &manifest_json,
        signature: Some(signature.as_bytes()),
        index_json: &index_json,
        blobs: &blobs,
        store: &store,
        gate: None,
    };
    write_bundle(&out, &contents, &ArchiveOptions::default()).unwrap();
    out
}

/// `airlock verify BUNDLE --json --key SIGNER.pub ARGS…`: exit code and report.
fn verify_upstream(
    dir: &Path,
    bundle: &Path,
    signer: &Path,
    args: &[&str],
) -> (Option<i32>, Value, String) {
    let mut cmd = airlock(&dir.join("cache"));
    cmd.arg("verify")
        .arg(bundle)
        .arg("--json")
        .arg("--key")
        .arg(signer)
        .args(args);
    let o = run(cmd, None);
    let doc: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stderr(&o)));
    (o.status.code(), doc, stderr(&o))
}

fn status(doc: &Value) -> Vec<(String, usize)> {
    doc["upstream"]["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["image"].as_str().unwrap().to_string(),
                i["failures"].as_array().unwrap().len(),
            )
        })
        .collect()
}

#[test]
fn carried_key_and_keyless_signatures_verify_offline_and_the_wrong_ones_are_refused() {
    let work = workdir();
    let dir = work.path();
    let signer = SigningKey::generate();
    let signer_pub = dir.join("signer.pub");
    std::fs::write(&signer_pub, signer.verifying_key().to_pem()).unwrap();
    let upstream = SigningKey::generate();
    let upstream_pub = dir.join("upstream.pub");
    std::fs::write(&upstream_pub, upstream.verifying_key().to_pem()).unwrap();
    let other_pub = dir.join("other.pub");
    std::fs::write(&other_pub, SigningKey::generate().verifying_key().to_pem()).unwrap();
    let sigstore = TestSigstore::new();
    let root = dir.join("trusted_root.json");
    std::fs::write(&root, sigstore.trusted_root_json()).unwrap();
    let identity = "https://ci.example.test/release.yml@refs/heads/main";
    let issuer = "https://issuer.example.test";

    let keyed = |p: &[u8]| sign_with_key(&upstream, p);
    let keyless = |p: &[u8]| sigstore.sign_keyless(p, identity, issuer);
    let bundle = bundle_with_signatures(
        dir,
        &signer,
        &[
            ("keyed", Some(&keyed)),
            ("keyless", Some(&keyless)),
            ("unsigned", None),
        ],
    );
    let (up, other, root_s) = (
        upstream_pub.to_str().unwrap(),
        other_pub.to_str().unwrap(),
        root.to_str().unwrap(),
    );

    // With the upstream key: the key-signed image passes, the others are refused, named.
    let (code, doc, e) = verify_upstream(dir, &bundle, &signer_pub, &["--upstream-key", up]);
    assert_eq!(code, Some(1), "{e}");
    assert_eq!(doc["error"], Value::Null, "{doc:#}");
    assert_eq!(
        status(&doc),
        [
            ("registry.example.test/keyed:1".to_string(), 0),
            ("registry.example.test/keyless:1".to_string(), 1),
            ("registry.example.test/unsigned:1".to_string(), 1),
        ]
    );
    assert!(
        e.contains("a keyless signature (a key policy was given)"),
        "{e}"
    );
    assert!(
        e.contains("registry.example.test/unsigned:1: no signature of sha256:"),
        "{e}"
    );

    // With another key: the key-signed image is refused too.
    let (code, _, e) = verify_upstream(dir, &bundle, &signer_pub, &["--upstream-key", other]);
    assert_eq!(code, Some(1));
    assert!(
        e.contains("registry.example.test/keyed:1: no valid signature of sha256:")
            && e.contains("signed by another key, not `"),
        "{e}"
    );

    // Keyless against the test trusted root: the keyless image passes.
    let keyless_args = |who: &'static str| {
        vec![
            "--trusted-root",
            root_s,
            "--upstream-identity",
            who,
            "--upstream-issuer",
            issuer,
        ]
    };
    let (code, doc, e) = verify_upstream(dir, &bundle, &signer_pub, &keyless_args(identity));
    assert_eq!(code, Some(1), "{e}");
    assert_eq!(
        status(&doc)[1],
        ("registry.example.test/keyless:1".to_string(), 0),
        "{e}"
    );
    let valid = &doc["upstream"]["images"][1]["valid"][0];
    assert_eq!(valid["certificate"]["identity"], identity);
    assert_eq!(valid["how"]["method"], "keyless");

    // A wrong identity is refused, naming what the certificate says.
    let wrong = "https://ci.example.test/other.yml@refs/heads/main";
    let (code, doc, e) = verify_upstream(dir, &bundle, &signer_pub, &keyless_args(wrong));
    assert_eq!(code, Some(1));
    assert_eq!(status(&doc)[1].1, 1);
    assert!(
        e.contains(&format!("its certificate names identity `{identity}` and issuer `{issuer}`, not identity `{wrong}`")),
        "{e}"
    );

    // A bundle whose every image is signed with the key: exit 0.
    let only = dir.join("only");
    std::fs::create_dir_all(&only).unwrap();
    let bundle = bundle_with_signatures(&only, &signer, &[("keyed", Some(&keyed))]);
    let (code, doc, e) = verify_upstream(dir, &bundle, &signer_pub, &["--upstream-key", up]);
    assert_eq!(code, Some(0), "{e}");
    assert_eq!(doc["ok"], true);
    assert!(
        e.contains("registry.example.test/keyed:1") && e.contains(" ok"),
        "{e}"
    );
}
