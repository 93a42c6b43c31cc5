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
