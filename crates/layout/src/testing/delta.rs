//! Two versions of a small bundle and the delta between them, for the tests of the readers of
//! a delta (`verify`, `load`, `serve`).
//!
//! v1 holds `r.lan/app:1` (layers A, B) and `r.lan/tool:1` (layer C); v2 keeps `app:1`, moves
//! `tool:1` to a new manifest (layers C, D) and adds `r.lan/new:1` (layers A, E). The delta
//! against v1 carries what v1 lacks: tool's new manifest and config, `new:1`'s manifest and
//! config, layers D and E; its manifest lists every blob of v2 and names v1 as its base.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::archive::{write_bundle, ArchiveOptions, BundleContents};
use crate::digest::Digest;
use crate::manifest::{
    BaseBundle, BaseKind, BlobRecord, BundleManifest, ImageRecord, SpecInfo, Totals,
    DELTA_FORMAT_VERSION,
};
use crate::media;
use crate::sign::SigningKey;
use crate::store::BlobStore;

/// The files [`delta_versions`] wrote, and what is in them.
#[derive(Debug)]
pub struct DeltaVersions {
    /// The full v1 bundle.
    pub v1: PathBuf,
    /// The full v2 bundle.
    pub v2: PathBuf,
    /// The delta of v2 against v1.
    pub delta: PathBuf,
    /// Another full bundle (v1 with one more image): not the delta's base.
    pub other: PathBuf,
    /// v1's manifest.
    pub v1_manifest: BundleManifest,
    /// The delta's manifest.
    pub delta_manifest: BundleManifest,
}

impl DeltaVersions {
    /// The blobs the delta takes from v1, sorted.
    pub fn from_base(&self) -> &[Digest] {
        &self.delta_manifest.bases[0].blobs
    }
}

struct Builder {
    store: BlobStore,
}

impl Builder {
    fn put(&self, bytes: &[u8], media_type: &str) -> BlobRecord {
        let digest = Digest::of_bytes(bytes);
        self.store.put_bytes(&digest, bytes).unwrap();
        BlobRecord {
            digest,
            size: bytes.len() as u64,
            media_type: media_type.into(),
        }
    }

    /// A single-platform image of `layers` (their bytes), its record and blobs.
    fn image(&self, name: &str, tag: &str, layers: &[&[u8]]) -> (ImageRecord, Vec<BlobRecord>) {
        let layers: Vec<BlobRecord> = layers
            .iter()
            .map(|l| self.put(l, media::OCI_LAYER))
            .collect();
        let config = json!({
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {
                "type": "layers",
                "diff_ids": layers.iter().map(|l| l.digest.to_string()).collect::<Vec<_>>(),
            },
        });
        let config = self.put(&serde_json::to_vec(&config).unwrap(), media::OCI_CONFIG);
        let descriptor = |b: &BlobRecord| json!({"mediaType": b.media_type, "digest": b.digest.to_string(), "size": b.size});
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_MANIFEST,
            "config": descriptor(&config),
            "layers": layers.iter().map(descriptor).collect::<Vec<_>>(),
        });
        let manifest = self.put(&serde_json::to_vec(&manifest).unwrap(), media::OCI_MANIFEST);
        let record = ImageRecord {
            name: name.into(),
            reference: format!("{name}:{tag}"),
            tags: vec![tag.into()],
            digest: manifest.digest.clone(),
            media_type: media::OCI_MANIFEST.into(),
            size: manifest.size,
            source: name.into(),
            platforms: vec!["linux/amd64".into()],
            original_digest: None,
            artifacts: Vec::new(),
            content: None,
        };
        let mut blobs = vec![manifest, config];
        blobs.extend(layers);
        (record, blobs)
    }
}

/// A layer of `n` bytes of `fill`.
fn layer(fill: u8, n: usize) -> Vec<u8> {
    let mut v = vec![fill; n];
    v[0] = b'L';
    v
}

/// The manifest of `images` (their blobs deduplicated, in order).
fn manifest_of(images: Vec<(ImageRecord, Vec<BlobRecord>)>) -> BundleManifest {
    let mut blobs: Vec<BlobRecord> = Vec::new();
    let mut records = Vec::new();
    for (record, bs) in images {
        for b in bs {
            if !blobs.iter().any(|x| x.digest == b.digest) {
                blobs.push(b);
            }
        }
        records.push(record);
    }
    BundleManifest {
        format_version: crate::manifest::format_version_for(&records),
        created: "2026-01-01T00:00:00Z".into(),
        airlock_version: "0.1.0".into(),
        spec: SpecInfo {
            name: "delta".into(),
            sha256: Digest::of_bytes(b"spec").hex().into(),
        },
        totals: Totals::of(&records, &blobs),
        images: records,
        blobs,
        bases: Vec::new(),
    }
}

/// Writes `manifest` signed by `signer` to `path`, carrying [`BundleManifest::carried_blobs`]
/// from `store`; returns the manifest's bytes.
pub fn write_signed(
    path: &Path,
    manifest: &BundleManifest,
    store: &BlobStore,
    signer: &SigningKey,
) -> Vec<u8> {
    let manifest_json = manifest.to_json_bytes();
    let signature = signer.sign(&manifest_json);
    let carried: Vec<BlobRecord> = manifest.carried_blobs().cloned().collect();
    let contents = BundleContents {
        manifest_json: &manifest_json,
        signature: Some(signature.as_bytes()),
        index_json: &manifest.index_json(),
        blobs: &carried,
        store,
        gate: None,
    };
    write_bundle(path, &contents, &ArchiveOptions::default()).unwrap();
    manifest_json
}

/// `full` as a delta against the base whose `airlock/manifest.json` bytes are `base_json`:
/// every blob of `full` the base lists goes to the base.
pub fn delta_of(full: &BundleManifest, base_json: &[u8], base_name: &str) -> BundleManifest {
    let base = BundleManifest::from_json_bytes(base_json).unwrap();
    let mut blobs: Vec<Digest> = full
        .blobs
        .iter()
        .filter(|b| base.blobs.iter().any(|x| x.digest == b.digest))
        .map(|b| b.digest.clone())
        .collect();
    blobs.sort();
    let mut delta = full.clone();
    delta.format_version = DELTA_FORMAT_VERSION;
    delta.bases = vec![BaseBundle {
        kind: BaseKind::Bundle,
        digest: Digest::of_bytes(base_json),
        name: Some(base_name.into()),
        blobs,
    }];
    delta
}

/// Writes v1, v2, the delta of v2 against v1 and another bundle into `dir`, each signed by
/// `signer` (see the module docs).
pub fn delta_versions(dir: &Path, signer: &SigningKey) -> DeltaVersions {
    let b = Builder {
        store: BlobStore::open(dir.join("cache")).unwrap(),
    };
    let (a, bb, c, d, e) = (
        layer(b'a', 70_000),
        layer(b'b', 3_000),
        layer(b'c', 5_000),
        layer(b'd', 9_000),
        layer(b'e', 40_000),
    );
    let app = b.image("r.lan/app", "1", &[&a, &bb]);
    let tool1 = b.image("r.lan/tool", "1", &[&c]);
    let tool2 = b.image("r.lan/tool", "1", &[&c, &d]);
    let new = b.image("r.lan/new", "1", &[&a, &e]);
    let extra = b.image("r.lan/extra", "1", &[&e]);

    let v1_manifest = manifest_of(vec![app.clone(), tool1.clone()]);
    let v1 = dir.join("v1.tar.zst");
    let v1_json = write_signed(&v1, &v1_manifest, &b.store, signer);
    let v2_manifest = manifest_of(vec![app.clone(), tool2, new]);
    let v2 = dir.join("v2.tar.zst");
    write_signed(&v2, &v2_manifest, &b.store, signer);
    let delta_manifest = delta_of(&v2_manifest, &v1_json, "v1.tar.zst");
    let delta = dir.join("delta.tar.zst");
    write_signed(&delta, &delta_manifest, &b.store, signer);
    let other = dir.join("other.tar.zst");
    write_signed(
        &other,
        &manifest_of(vec![app, tool1, extra]),
        &b.store,
        signer,
    );
    DeltaVersions {
        v1,
        v2,
        delta,
        other,
        v1_manifest,
        delta_manifest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::verify_bundle;

    #[test]
    fn a_delta_verifies_on_its_own_blobs_and_fails_on_one_it_should_not_hold() {
        let dir = tempfile::tempdir().unwrap();
        let signer = SigningKey::generate();
        let v = delta_versions(dir.path(), &signer);
        // app's manifest, config and layers A, B; tool's layer C.
        assert_eq!(v.from_base().len(), 5);
        let key = signer.verifying_key();
        let r = verify_bundle(std::fs::File::open(&v.delta).unwrap(), Some(&key));
        assert!(r.ok, "{:?}", r.error);
        assert_eq!(r.blobs_verified, 6);
        assert_eq!(r.manifest.as_ref().unwrap().bases, v.delta_manifest.bases);

        // A delta that holds a blob its manifest says comes from the base anyway.
        let store = BlobStore::open(dir.path().join("cache")).unwrap();
        let mut fat = v.delta_manifest.clone();
        let taken = fat.bases[0].blobs.remove(0);
        let path = dir.path().join("fat.tar.zst");
        let carried: Vec<BlobRecord> = fat.carried_blobs().cloned().collect();
        fat.bases[0].blobs.insert(0, taken.clone());
        let json_with_base = fat.to_json_bytes();
        let signature_with_base = signer.sign(&json_with_base);
        let contents = BundleContents {
            manifest_json: &json_with_base,
            signature: Some(signature_with_base.as_bytes()),
            index_json: &fat.index_json(),
            blobs: &carried,
            store: &store,
            gate: None,
        };
        write_bundle(&path, &contents, &ArchiveOptions::default()).unwrap();
        let r = verify_bundle(std::fs::File::open(&path).unwrap(), Some(&key));
        let e = r.error.expect("a base's blob in the delta is an error");
        assert_eq!(e.kind.code(), "blobFromBase", "{e}");
        let text = e.kind.to_string();
        assert!(text.contains(taken.hex()), "{text}");
        assert!(text.contains("v1.tar.zst"), "{text}");

        // A base naming a blob the manifest does not list.
        let mut bad = v.delta_manifest.clone();
        bad.bases[0].blobs.push(Digest::of_bytes(b"nowhere"));
        let path = dir.path().join("bad.tar.zst");
        write_signed(&path, &bad, &store, &signer);
        let r = verify_bundle(std::fs::File::open(&path).unwrap(), Some(&key));
        let e = r.error.expect("an unlisted base blob is an error");
        assert_eq!(e.kind.code(), "manifestInconsistent", "{e}");
    }
}
