//! Unit tests of the whole pass over small bundles.

use super::content::REF_NAME;
use super::*;
use crate::archive::{write_bundle, ArchiveOptions, BundleContents};
use crate::digest::Digest;
use crate::manifest::{BlobRecord, ImageRecord, FORMAT_VERSION};
use crate::manifest::{BundleManifest, SpecInfo, Totals};
use crate::sign::SigningKey;
use crate::store::BlobStore;

const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A signed bundle of one image (manifest, config, two layers) with small frames.
pub(crate) fn bundle(signed: bool) -> (Vec<u8>, SigningKey) {
    bundle_of(signed, |_| br#"{"schemaVersion":2}"#.to_vec())
}

/// [`bundle`] whose image manifest is `manifest_doc` of the two layers and the config (in
/// that order).
pub(crate) fn bundle_of(
    signed: bool,
    manifest_doc: impl FnOnce(&[BlobRecord]) -> Vec<u8>,
) -> (Vec<u8>, SigningKey) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path().join("cache")).unwrap();
    let mut blobs = Vec::new();
    let put = |blobs: &mut Vec<BlobRecord>, data: &[u8], media_type: &str| {
        let digest = Digest::of_bytes(data);
        store.put_bytes(&digest, data).unwrap();
        blobs.push(BlobRecord {
            digest,
            size: data.len() as u64,
            media_type: media_type.into(),
        });
    };
    put(&mut blobs, &b"layer one ".repeat(300), LAYER);
    put(
        &mut blobs,
        &(0..2000u32)
            .map(|i| (i * 7 % 251) as u8)
            .collect::<Vec<_>>(),
        LAYER,
    );
    put(
        &mut blobs,
        br#"{"architecture":"amd64","os":"linux"}"#,
        "application/vnd.oci.image.config.v1+json",
    );
    let manifest_doc = manifest_doc(&blobs);
    put(&mut blobs, &manifest_doc, MANIFEST);
    let top = blobs.last().unwrap().clone();
    let images = vec![ImageRecord {
        name: "r.test/a".into(),
        reference: "r.test/a:1".into(),
        tags: vec!["1".into()],
        digest: top.digest.clone(),
        media_type: MANIFEST.into(),
        size: top.size,
        source: "r.test/a".into(),
        platforms: vec!["linux/amd64".into()],
        original_digest: None,
        artifacts: Vec::new(),
        content: None,
    }];
    let manifest = BundleManifest {
        format_version: FORMAT_VERSION,
        created: "2026-11-27T10:00:00Z".into(),
        airlock_version: "0.1.0".into(),
        spec: SpecInfo {
            name: "t".into(),
            sha256: Digest::of_bytes(b"spec").hex().into(),
        },
        totals: Totals::of(&images, &blobs),
        images,
        blobs: blobs.clone(),
        bases: Vec::new(),
    };
    let manifest_json = manifest.to_json_bytes();
    let key = SigningKey::generate();
    let sig = key.sign(&manifest_json);
    let index_json = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": MANIFEST, "digest": top.digest.to_string(), "size": top.size,
            "annotations": {REF_NAME: "r.test/a:1"}}],
    }))
    .unwrap();
    let out = dir.path().join("b.tar.zst");
    let opts = ArchiveOptions {
        frame_size: 1024,
        threads: 2,
        ..ArchiveOptions::default()
    };
    let contents = BundleContents {
        manifest_json: &manifest_json,
        signature: signed.then_some(sig.as_bytes()),
        index_json: &index_json,
        blobs: &blobs,
        store: &store,
        gate: None,
    };
    write_bundle(&out, &contents, &opts).unwrap();
    (std::fs::read(out).unwrap(), key)
}

#[test]
fn a_good_bundle_passes_and_reports_what_it_read() {
    let (file, key) = bundle(true);
    let public = key.verifying_key();
    let r = verify_bundle(&file[..], Some(&public));
    assert!(r.ok, "{:?}", r.error);
    assert!(r.signature.present && r.signature.checked);
    assert_eq!(r.signature.key, Some(public.fingerprint()));
    assert_eq!(r.blobs_verified, 4);
    assert_eq!(r.entries, 8);
    assert_eq!(r.compressed_bytes, file.len() as u64);
    let m = r.manifest.unwrap();
    assert_eq!(m.totals.blobs, 4);

    // Without a key: every digest checked, the signature not.
    let r = verify_bundle(&file[..], None);
    assert!(r.ok && r.signature.present && !r.signature.checked);
}

#[test]
fn a_key_on_an_unsigned_bundle_is_refused_before_anything_else() {
    let (file, key) = bundle(false);
    let r = verify_bundle(&file[..], Some(&key.verifying_key()));
    let e = r.error.unwrap();
    assert!(matches!(*e.kind, VerifyErrorKind::Unsigned), "{e}");
    assert!(r.manifest.is_none());
    assert!(verify_bundle(&file[..], None).ok);
}

#[test]
fn every_truncation_fails() {
    let (file, key) = bundle(true);
    let public = key.verifying_key();
    for cut in 0..file.len() {
        let r = verify_bundle(&file[..cut], Some(&public));
        let e = r.error.unwrap_or_else(|| panic!("cut at {cut} passed"));
        assert!(!r.ok);
        let text = e.to_string();
        assert!(
            matches!(
                *e.kind,
                VerifyErrorKind::Truncated { .. } | VerifyErrorKind::NoFrameIndex
            ) || cut < 4,
            "cut at {cut}: {text}"
        );
        if let VerifyErrorKind::Truncated { file_len, .. } = *e.kind {
            assert_eq!(file_len, cut as u64, "{text}");
        }
    }
}

#[test]
fn every_flipped_byte_fails_or_changes_nothing() {
    let (file, key) = bundle(true);
    let public = key.verifying_key();
    let tar = zstd::decode_all(&file[..]).unwrap();
    let mut passed = 0;
    for at in 0..file.len() {
        let mut bad = file.clone();
        bad[at] ^= 0x20;
        let r = verify_bundle(&bad[..], Some(&public));
        // zstd ignores a few bits of its encoding (a flip there decodes to the very same
        // tar): what passes must be exactly the content that was signed.
        if r.ok {
            assert_eq!(
                zstd::decode_all(&bad[..]).unwrap(),
                tar,
                "a flipped byte at {at} passed with other content"
            );
            passed += 1;
        }
    }
    assert!(
        passed < file.len() / 100,
        "{passed} of {} flips passed",
        file.len()
    );
}
