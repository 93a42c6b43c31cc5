//! The one step every offline target starts from: open a bundle, check its signature with the
//! [`Trust`] given, read its frame index and small blobs ([`open_all`]); then map the names
//! of every image and plan each one ([`plan`]). Between the two, the caller warns when
//! nobody vouches for the bundles ([`Trust::warning`]).
//!
//! A load into a registry, a load into containerd and `airlock serve` differ only in what
//! they do with the [`PlannedBundle`]s this gives; the checks before that are the same.

use airlock_layout::BundleFile;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use airlock_layout::{
    BlobRecord, BundleManifest, Digest, FrameIndex, ImageRecord, Purpose, SignatureCheck, Trust,
};

use crate::error::{Error, ImageError};
use crate::names::{NameError, NameMapper};
use crate::plan::{plan_image, read_small_blobs, ImagePlan, SmallBlobs};
use crate::source::BundleSource;

/// A bundle whose head was read and trusted (or, on purpose, not), with its frame index and
/// its small blobs (indexes, manifests, configs) read and checked against the signed manifest.
#[derive(Debug)]
pub struct OpenBundle {
    /// The bundle file.
    pub path: PathBuf,
    /// `airlock/manifest.json`, trusted as [`OpenBundle::signature`] says.
    pub manifest: BundleManifest,
    /// The sha256 of the exact bytes of `airlock/manifest.json`: how a delta names this
    /// bundle as its base.
    pub identity: Digest,
    /// What the signature check found.
    pub signature: SignatureCheck,
    /// The trailing frame index (it only locates bytes: everything read through it is
    /// hashed).
    pub index: Arc<FrameIndex>,
    /// Each small blob's checked bytes, or what is wrong with it.
    pub small: SmallBlobs,
}

impl OpenBundle {
    /// Where the bundle's blobs are read from.
    pub fn source(&self) -> BundleSource {
        BundleSource {
            path: Arc::new(self.path.clone()),
            index: self.index.clone(),
        }
    }
}

/// One image of a bundle, its repository and its plan (or why it cannot be loaded).
#[derive(Debug)]
pub struct PlannedImage {
    /// As in the bundle.
    pub record: ImageRecord,
    /// Where it lands, without the host.
    pub repository: String,
    /// What to push, or why the image is left out (the others go on).
    pub plan: Result<ImagePlan, ImageError>,
}

/// An opened bundle and the plan of each of its images, in the manifest's order.
#[derive(Debug)]
pub struct PlannedBundle {
    /// The bundle.
    pub bundle: OpenBundle,
    /// Its images.
    pub images: Vec<PlannedImage>,
}

/// Opens the bundle at `path`: its head, the signature checked as `trust` says (`purpose`
/// words the errors), its frame index, its small blobs. Blocking: call it on a blocking
/// thread.
pub fn open(path: &Path, trust: &Trust, purpose: Purpose) -> Result<OpenBundle, Error> {
    // One file, or the parts of a split bundle read in place.
    let mut file = BundleFile::open(path).map_err(|e| match e {
        airlock_layout::VolumeError::Read { path, source } => Error::Open { path, source },
        e => Error::Parts(e),
    })?;
    let head = airlock_layout::read_head(std::io::BufReader::new(file.try_clone().map_err(
        |source| Error::Open {
            path: path.to_owned(),
            source,
        },
    )?))
    .map_err(|e| Error::Head {
        path: path.to_owned(),
        source: Box::new(e),
    })?;
    let signature = trust.check(&head, path, purpose)?;
    file.check_part_list(trust, &head.manifest_json, purpose)?;
    // The index only locates bytes; everything read through it is hashed.
    let index = FrameIndex::read_from(&mut file).map_err(|source| Error::Index {
        path: path.to_owned(),
        source: Box::new(source),
    })?;
    let small = read_small_blobs(&mut file, &index, &head.manifest);
    Ok(OpenBundle {
        path: path.to_owned(),
        identity: Digest::of_bytes(&head.manifest_json),
        manifest: head.manifest,
        signature,
        index: Arc::new(index),
        small,
    })
}

/// Maps the names of every image of `bundles` together (two images landing on one
/// repository are refused, across bundles too), then plans each image.
pub fn plan(
    bundles: Vec<OpenBundle>,
    mapper: &NameMapper,
) -> Result<Vec<PlannedBundle>, NameError> {
    let names = mapper.map_all(
        bundles
            .iter()
            .flat_map(|b| b.manifest.images.iter().map(|i| i.name.as_str())),
    )?;
    Ok(bundles
        .into_iter()
        .map(|bundle| {
            let records: HashMap<&Digest, &BlobRecord> = bundle
                .manifest
                .blobs
                .iter()
                .map(|b| (&b.digest, b))
                .collect();
            let images = bundle
                .manifest
                .images
                .iter()
                .map(|record| {
                    let repository = names[&record.name].clone();
                    PlannedImage {
                        record: record.clone(),
                        plan: plan_image(record, repository.clone(), &records, &bundle.small),
                        repository,
                    }
                })
                .collect();
            PlannedBundle { bundle, images }
        })
        .collect())
}

/// [`open`] each of `paths` in order, off the async threads; the first that fails stops.
pub async fn open_all(
    paths: Vec<PathBuf>,
    trust: &Trust,
    purpose: Purpose,
) -> Result<Vec<OpenBundle>, Error> {
    let trust = trust.clone();
    tokio::task::spawn_blocking(move || paths.iter().map(|p| open(p, &trust, purpose)).collect())
        .await?
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_layout::{write_bundle, ArchiveOptions, BlobStore, BundleContents, SigningKey};
    use serde_json::json;

    /// A bundle file holding one image (`registry.k8s.io/pause:3.9`), signed by `signer` if
    /// given.
    fn bundle(dir: &Path, signer: Option<&SigningKey>) -> PathBuf {
        let store = BlobStore::open(dir.join("cache")).unwrap();
        let config = br#"{"architecture":"amd64","os":"linux"}"#;
        let config_digest = Digest::of_bytes(config);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest.to_string(),
                "size": config.len(),
            },
            "layers": [],
        })
        .to_string();
        let digest = Digest::of_bytes(manifest.as_bytes());
        store.put_bytes(&config_digest, config).unwrap();
        store.put_bytes(&digest, manifest.as_bytes()).unwrap();
        let blobs = [
            BlobRecord {
                digest: digest.clone(),
                size: manifest.len() as u64,
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            },
            BlobRecord {
                digest: config_digest,
                size: config.len() as u64,
                media_type: "application/vnd.oci.image.config.v1+json".into(),
            },
        ];
        let doc = json!({
            "formatVersion": 1,
            "created": "2026-11-27T10:00:00Z",
            "airlockVersion": "0.1.0",
            "spec": {"name": "t", "sha256": "00"},
            "images": [{
                "name": "registry.k8s.io/pause",
                "reference": "registry.k8s.io/pause:3.9",
                "tags": ["3.9"],
                "digest": digest.to_string(),
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "size": manifest.len(),
                "source": "registry.k8s.io/pause",
                "platforms": ["linux/amd64"],
            }],
            "blobs": blobs,
            "totals": {"images": 1, "blobs": 2, "bytes": 0},
        });
        let manifest_json = serde_json::to_vec(&doc).unwrap();
        let signature = signer.map(|k| k.sign(&manifest_json));
        let out = dir.join("b.tar.zst");
        let contents = BundleContents {
            manifest_json: &manifest_json,
            signature: signature.as_deref().map(str::as_bytes),
            index_json: b"{}",
            blobs: &blobs,
            store: &store,
            gate: None,
        };
        write_bundle(&out, &contents, &ArchiveOptions::default()).unwrap();
        out
    }

    #[test]
    fn open_applies_the_trust_then_plans_every_image() {
        let dir = tempfile::tempdir().unwrap();
        let signer = SigningKey::generate();
        let key = Trust::Key(signer.verifying_key());

        let unsigned = bundle(&dir.path().join("u"), None);
        let e = open(&unsigned, &key, Purpose::Load).unwrap_err();
        assert!(
            matches!(&e, Error::Trust(airlock_layout::TrustError::Unsigned { path, .. }) if path == &unsigned),
            "{e}"
        );
        // Nobody vouches for it, on purpose: opened, nothing checked.
        let opened = open(&unsigned, &Trust::InsecureSkipSignature, Purpose::Load).unwrap();
        assert_eq!(opened.signature, SignatureCheck::default());

        let other = bundle(&dir.path().join("o"), Some(&SigningKey::generate()));
        let e = open(&other, &key, Purpose::Serve).unwrap_err();
        assert!(e.to_string().contains("nothing is served"), "{e}");

        let signed = bundle(&dir.path().join("s"), Some(&signer));
        let opened = open(&signed, &key, Purpose::Load).unwrap();
        assert!(opened.signature.checked);
        assert!(opened.small.values().all(|r| r.is_ok()));
        let planned = plan(vec![opened], &NameMapper::default()).unwrap();
        let image = &planned[0].images[0];
        assert_eq!(image.repository, "registry.k8s.io/pause");
        let plan = image.plan.as_ref().unwrap();
        assert_eq!(plan.image, "registry.k8s.io/pause:3.9");
        assert_eq!(plan.blobs.len(), 1);
        assert_eq!(plan.manifests.len(), 1);
        assert!(plan.artifacts.is_empty());
    }

    #[test]
    fn each_artifact_is_planned_with_its_blobs_and_its_referrers_index_entry() {
        use airlock_layout::testing::artifacts::{artifact_bundle, Carried};
        use airlock_layout::{media, ArtifactKind};
        let dir = tempfile::tempdir().unwrap();
        let signer = SigningKey::generate();
        let b = artifact_bundle(dir.path(), &signer, Carried::All);
        let opened = open(&b.path, &Trust::Key(signer.verifying_key()), Purpose::Load).unwrap();
        let planned = plan(vec![opened], &NameMapper::default()).unwrap();
        let plan = planned[0].images[0].plan.as_ref().unwrap();
        // The index, two platform manifests; a config and a layer each.
        assert_eq!(plan.manifests.len(), 3);
        assert_eq!(plan.blobs.len(), 4);
        let kinds: Vec<ArtifactKind> = plan.artifacts.iter().map(|a| a.record.kind).collect();
        assert_eq!(
            kinds,
            [
                ArtifactKind::Signature,
                ArtifactKind::Sbom,
                ArtifactKind::Attestation,
                ArtifactKind::Attestation
            ]
        );
        for a in &plan.artifacts {
            // Its config and one layer, none of the image's.
            assert_eq!(a.blobs.len(), 2, "{a:?}");
            assert!(a.blobs.iter().all(|x| !plan.blobs.contains(x)));
            assert_eq!(a.manifests.len(), 1);
            assert_eq!(a.manifests[0].0, a.record.digest);
        }
        let referrer = &plan.artifacts[3];
        assert_eq!(referrer.record.subject, b.platforms[0]);
        let d = &referrer.descriptor;
        assert_eq!(d.digest().to_string(), referrer.record.digest.to_string());
        assert_eq!(d.size(), referrer.record.size);
        assert_eq!(
            d.artifact_type().as_ref().map(|t| t.to_string()).as_deref(),
            Some(media::IN_TOTO)
        );
        assert!(d.annotations().as_ref().is_some_and(|a| !a.is_empty()));
        assert!(plan.artifacts[0].describe().contains("(tag `sha256-"));
        assert!(referrer.describe().contains("(referrer of `"));
    }

    #[test]
    fn an_artifact_blob_missing_from_the_manifest_fails_its_image() {
        use airlock_layout::testing::artifacts::{artifact_bundle, Carried};
        let dir = tempfile::tempdir().unwrap();
        let signer = SigningKey::generate();
        let b = artifact_bundle(dir.path(), &signer, Carried::All);
        let mut opened = open(&b.path, &Trust::Key(signer.verifying_key()), Purpose::Load).unwrap();
        let sig = b.artifacts()[0].digest.clone();
        opened.small.remove(&sig);
        let planned = plan(vec![opened], &NameMapper::default()).unwrap();
        let e = planned[0].images[0].plan.as_ref().unwrap_err();
        let text = e.to_string();
        assert!(text.contains(&sig.to_string()), "{text}");
        assert!(text.contains("not listed in the signed manifest"), "{text}");
    }

    #[test]
    fn charts_and_files_are_planned_like_images() {
        use airlock_layout::testing::content::{content_bundle, CHART, HELLO, KUBEADM};
        let dir = tempfile::tempdir().unwrap();
        let signer = SigningKey::generate();
        let b = content_bundle(dir.path(), &signer);
        let opened = open(&b.path, &Trust::Key(signer.verifying_key()), Purpose::Load).unwrap();
        let planned = plan(vec![opened], &NameMapper::default()).unwrap();
        let images = &planned[0].images;
        assert_eq!(images.len(), 4);
        for i in images {
            let plan = i
                .plan
                .as_ref()
                .unwrap_or_else(|e| panic!("{}: {e}", i.record.name));
            assert_eq!(plan.manifests.len(), 1, "{}", i.record.name);
        }
        let blobs = |name: &str| {
            let i = images.iter().find(|i| i.record.name == name).unwrap();
            i.plan.as_ref().unwrap().blobs.len()
        };
        // The Helm config, the chart archive and its provenance; the empty config and the file.
        assert_eq!(blobs(CHART), 3);
        assert_eq!(blobs(HELLO), 2);
        assert_eq!(blobs(KUBEADM), 2);
    }
}
