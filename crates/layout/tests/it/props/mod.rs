//! Property tests of every parser that reads untrusted bytes: the bundle manifest, the frame
//! index and entry table, the tar walker of `verify_bundle`, `read_head`, the content graph,
//! signatures and PEM keys.
//!
//! The default run (256 cases, or fewer for the expensive properties) is part of `cargo test`;
//! `PROPTEST_CASES=N` sets the case count of every property, which `cargo xtask fuzz` uses
//! for long runs. Failures are persisted under `proptest-regressions/` and replayed first.

mod alloc;
mod graph;
mod head;
mod index;
mod manifest;
mod sign;
mod verify;

use std::sync::OnceLock;

use airlock_layout::{
    write_bundle, ArchiveOptions, BlobRecord, BlobStore, BundleContents, BundleManifest, Digest,
    ImageRecord, SigningKey, SpecInfo, Totals, VerifyingKey, FORMAT_VERSION,
};
use proptest::test_runner::Config as ProptestConfig;

pub const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The default configuration with `cases` as the case count unless `PROPTEST_CASES` is set
/// (`ProptestConfig::default()` reads that variable; a literal `cases` would override it).
pub fn cases(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config
}

/// Writes a bundle of `blobs` (data, media type) with the given manifest bytes, signature and
/// `index.json`, and returns the file's bytes.
pub fn write(
    manifest_json: &[u8],
    signature: Option<&[u8]>,
    index_json: &[u8],
    blobs: &[(Vec<u8>, &str)],
    frame_size: usize,
) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path().join("cache")).unwrap();
    let records = records(blobs);
    for ((data, _), r) in blobs.iter().zip(&records) {
        store.put_bytes(&r.digest, data).unwrap();
    }
    let out = dir.path().join("b.tar.zst");
    let contents = BundleContents {
        manifest_json,
        signature,
        index_json,
        blobs: &records,
        store: &store,
        gate: None,
    };
    let opts = ArchiveOptions {
        frame_size,
        threads: 1,
        ..ArchiveOptions::default()
    };
    write_bundle(&out, &contents, &opts).unwrap();
    std::fs::read(out).unwrap()
}

/// Blob records for `blobs`, deduplicated in order.
pub fn records(blobs: &[(Vec<u8>, &str)]) -> Vec<BlobRecord> {
    let mut out: Vec<BlobRecord> = Vec::new();
    for (data, media_type) in blobs {
        let digest = Digest::of_bytes(data);
        if out.iter().all(|r| r.digest != digest) {
            out.push(BlobRecord {
                digest,
                size: data.len() as u64,
                media_type: (*media_type).into(),
            });
        }
    }
    out
}

/// A manifest of one image whose top manifest is the last of `blobs`.
pub fn manifest_of(blobs: &[BlobRecord]) -> BundleManifest {
    let top = blobs.last().expect("at least one blob").clone();
    let images = vec![ImageRecord {
        name: "r.test/a".into(),
        reference: "r.test/a:1".into(),
        tags: vec!["1".into()],
        digest: top.digest.clone(),
        media_type: top.media_type.clone(),
        size: top.size,
        source: "r.test/a".into(),
        platforms: vec!["linux/amd64".into()],
        original_digest: None,
        artifacts: Vec::new(),
        content: None,
    }];
    BundleManifest {
        format_version: FORMAT_VERSION,
        created: "2026-11-27T10:00:00Z".into(),
        airlock_version: "0.1.0".into(),
        spec: SpecInfo {
            name: "t".into(),
            sha256: Digest::of_bytes(b"spec").hex().into(),
        },
        totals: Totals::of(&images, blobs),
        images,
        blobs: blobs.to_vec(),
        bases: Vec::new(),
    }
}

/// The `index.json` naming the manifest's images.
pub fn index_json_of(m: &BundleManifest) -> Vec<u8> {
    let manifests: Vec<_> = m
        .images
        .iter()
        .map(|i| {
            serde_json::json!({
                "mediaType": i.media_type, "digest": i.digest.to_string(), "size": i.size,
                "annotations": {REF_NAME: format!("{}:{}", i.name, i.tags[0])},
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": manifests})).unwrap()
}

/// A valid signed bundle: one image (manifest, config, two layers), small frames.
pub struct Signed {
    pub file: Vec<u8>,
    /// Its decoded tar stream: what the signature vouches for.
    pub tar: Vec<u8>,
    pub key: SigningKey,
    pub public: VerifyingKey,
}

pub fn signed() -> &'static Signed {
    static SIGNED: OnceLock<Signed> = OnceLock::new();
    SIGNED.get_or_init(|| {
        let blobs = vec![
            (b"layer one ".repeat(300), LAYER),
            ((0..2000u32).map(|i| (i * 7 % 251) as u8).collect(), LAYER),
            (br#"{"architecture":"amd64","os":"linux"}"#.to_vec(), CONFIG),
            (br#"{"schemaVersion":2}"#.to_vec(), MANIFEST),
        ];
        let manifest = manifest_of(&records(&blobs));
        let manifest_json = manifest.to_json_bytes();
        let key = SigningKey::generate();
        let sig = key.sign(&manifest_json);
        let file = write(
            &manifest_json,
            Some(sig.as_bytes()),
            &index_json_of(&manifest),
            &blobs,
            1024,
        );
        let tar = zstd::decode_all(&file[..]).unwrap();
        let public = key.verifying_key();
        assert!(airlock_layout::verify_bundle(&file[..], Some(&public)).ok);
        Signed {
            file,
            tar,
            key,
            public,
        }
    })
}
