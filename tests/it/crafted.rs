//! Bundles crafted around the checks the property tests of airlock-layout found missing,
//! given to the real binary.

use std::path::Path;

use sha2::{Digest as _, Sha256};

use crate::support::*;

fn sha256(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

fn entry(path: &str, data: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path).unwrap();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    // One zstd frame per entry, as airlock writes them.
    zstd::encode_all(&out[..], 1).unwrap()
}

/// An unsigned bundle whose manifest lists two layers of 2^63 bytes each, and the image
/// manifest naming them (no index: the checks in question come before it).
fn write_crafted(path: &Path) {
    let layers = [sha256(b"one"), sha256(b"two")];
    let layer = |d: &str| {
        serde_json::json!({"digest": d, "size": 1u64 << 63,
            "mediaType": "application/vnd.oci.image.layer.v1.tar"})
    };
    // A manifest the content graph reads: a config (not listed, so of no size) and the layers.
    let doc = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"digest": sha256(b"{}"), "size": 2,
            "mediaType": "application/vnd.oci.image.config.v1+json"},
        "layers": layers.iter().map(|d| layer(d)).collect::<Vec<_>>(),
    }))
    .unwrap();
    let mt = "application/vnd.oci.image.manifest.v1+json";
    let manifest = serde_json::json!({
        "formatVersion": 1,
        "created": "2026-11-27T10:00:00Z",
        "airlockVersion": "0.1.0",
        "spec": {"name": "crafted", "sha256": hex::encode(Sha256::digest(b"spec"))},
        "images": [{
            "name": "r.test/a", "reference": "r.test/a:1", "tags": ["1"],
            "digest": sha256(&doc), "mediaType": mt, "size": doc.len(),
            "source": "r.test/a", "platforms": ["linux/amd64"],
        }],
        "blobs": [
            {"digest": sha256(&doc), "size": doc.len(), "mediaType": mt},
            layer(&layers[0]),
            layer(&layers[1]),
        ],
        // What the sizes add up to with wrapping arithmetic.
        "totals": {"images": 1, "blobs": 3, "bytes": doc.len()},
    });
    let manifest = serde_json::to_vec_pretty(&manifest).unwrap();
    let mut file = entry("airlock/manifest.json", &manifest);
    file.extend(entry("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#));
    file.extend(entry(&format!("blobs/sha256/{}", &sha256(&doc)[7..]), &doc));
    file.extend(zstd::encode_all(&[0u8; 1024][..], 1).unwrap());
    std::fs::write(path, file).unwrap();
}

// Regression: blob sizes in a manifest were summed with overflow; a crafted manifest made
// `airlock verify --insecure-skip-signature` and `airlock inspect` panic (exit 101).
#[test]
fn manifest_sizes_past_2_pow_64_are_refused_not_a_panic() {
    let work = workdir();
    let bundle = work.path().join("crafted.tar.zst");
    write_crafted(&bundle);

    let mut cmd = airlock(&work.path().join("cache"));
    cmd.arg("verify")
        .arg(&bundle)
        .arg("--insecure-skip-signature");
    let o = run(cmd, None);
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("2^64"), "{err}");

    let mut cmd = airlock(&work.path().join("cache"));
    cmd.arg("inspect").arg(&bundle).arg("--json");
    let o = run(cmd, None);
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(o.status.code(), Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["images"][0]["size"], serde_json::json!(u64::MAX), "{v}");
}
