//! A signed bundle whose image carries artifacts (format 2), built from synthetic content:
//! an index of two platforms (`linux/amd64`, `linux/arm64`), a cosign `.sig` over the index
//! (a real ECDSA signature over cosign's simple-signing payload), an `.sbom` (SPDX), an
//! `.att` (a DSSE envelope), and OCI 1.1 referrers (manifests with `subject`) on the amd64
//! manifest.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::archive::{write_bundle, ArchiveOptions, BundleContents};
use crate::digest::Digest;
use crate::manifest::{
    ArtifactKind, ArtifactRecord, BlobRecord, BundleManifest, ImageRecord, SpecInfo, Totals,
};
use crate::media;
use crate::sign::SigningKey;
use crate::store::BlobStore;

/// The image's canonical name.
pub const NAME: &str = "example.test/signed/app";
/// Its tag.
pub const TAG: &str = "1.0";

/// Which artifacts the bundle carries with the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carried {
    /// The `.sig`, `.sbom` and `.att` of the index, and an attestation referrer on the amd64
    /// manifest.
    All,
    /// Only a second referrer (an SPDX SBOM) on the amd64 manifest: loaded after [`All`]
    /// (the same image), the subject then has two referrers.
    ///
    /// [`All`]: Carried::All
    SecondReferrer,
}

/// A bundle written by [`artifact_bundle`].
#[derive(Debug)]
pub struct ArtifactBundle {
    /// The bundle file.
    pub path: PathBuf,
    /// Its signed manifest.
    pub manifest: BundleManifest,
    /// Digest of the image's index.
    pub index: Digest,
    /// Digests of its platform manifests: amd64, then arm64.
    pub platforms: [Digest; 2],
    /// The key the cosign signature was made with.
    pub cosign_key: SigningKey,
}

impl ArtifactBundle {
    /// The image's record.
    pub fn image(&self) -> &ImageRecord {
        &self.manifest.images[0]
    }

    /// Its artifacts.
    pub fn artifacts(&self) -> &[ArtifactRecord] {
        &self.image().artifacts
    }

    /// The artifact of `kind` under a cosign tag.
    pub fn artifact(&self, kind: ArtifactKind) -> &ArtifactRecord {
        self.artifacts()
            .iter()
            .find(|a| a.kind == kind && a.tag.is_some())
            .expect("the bundle carries it")
    }

    /// The first OCI 1.1 referrer (no cosign tag).
    pub fn referrer(&self) -> &ArtifactRecord {
        self.artifacts()
            .iter()
            .find(|a| a.tag.is_none())
            .expect("the bundle carries one")
    }
}

struct Builder {
    store: BlobStore,
    blobs: Vec<BlobRecord>,
}

impl Builder {
    fn blob(&mut self, media_type: &str, bytes: &[u8]) -> Value {
        let digest = Digest::of_bytes(bytes);
        self.store.put_bytes(&digest, bytes).unwrap();
        if !self.blobs.iter().any(|b| b.digest == digest) {
            self.blobs.push(BlobRecord {
                digest: digest.clone(),
                size: bytes.len() as u64,
                media_type: media_type.into(),
            });
        }
        json!({"mediaType": media_type, "digest": digest.to_string(), "size": bytes.len()})
    }

    fn json(&mut self, media_type: &str, doc: &Value) -> (Value, Digest) {
        let bytes = serde_json::to_vec(doc).unwrap();
        let d = self.blob(media_type, &bytes);
        (d, Digest::of_bytes(&bytes))
    }

    /// An artifact manifest, its record.
    fn artifact(
        &mut self,
        kind: ArtifactKind,
        subject: (&Value, &Digest),
        artifact_type: Option<&str>,
        layers: Vec<Value>,
        tag: Option<String>,
    ) -> ArtifactRecord {
        // Under a cosign tag, an image config as cosign writes it (its layers as diff IDs);
        // a referrer has the empty config and an `artifactType`.
        let config = if tag.is_some() {
            let diff_ids: Vec<&Value> = layers.iter().map(|l| &l["digest"]).collect();
            let config = json!({
                "architecture": "", "config": {}, "created": "0001-01-01T00:00:00Z",
                "history": [{"created": "0001-01-01T00:00:00Z"}], "os": "",
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
            });
            self.json(media::OCI_CONFIG, &config).0
        } else {
            self.blob(media::OCI_EMPTY, b"{}")
        };
        let mut doc = json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_MANIFEST,
            "config": config,
            "layers": layers,
        });
        if let Some(t) = artifact_type {
            doc["artifactType"] = json!(t);
        }
        if tag.is_none() {
            doc["subject"] = subject.0.clone();
            doc["annotations"] =
                json!({"org.opencontainers.image.created": "2026-01-01T00:00:00Z"});
        }
        let (d, digest) = self.json(media::OCI_MANIFEST, &doc);
        ArtifactRecord {
            subject: subject.1.clone(),
            kind,
            digest,
            media_type: media::OCI_MANIFEST.into(),
            size: d["size"].as_u64().unwrap(),
            artifact_type: artifact_type.map(String::from),
            tag,
            certificate: None,
            verified: None,
        }
    }
}

/// A one-file tar (a real layer: containerd unpacks it).
fn layer(arch: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let body = format!("built for {arch}\n");
    let mut h = tar::Header::new_ustar();
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_cksum();
    b.append_data(&mut h, "etc/arch", body.as_bytes()).unwrap();
    b.into_inner().unwrap()
}

/// Writes `dir/NAME.tar.zst`, signed by `signer`, carrying [`NAME`]`:`[`TAG`] and the
/// artifacts `carried` names. The image (and the cosign key) is the same whatever `carried`.
pub fn artifact_bundle(dir: &Path, signer: &SigningKey, carried: Carried) -> ArtifactBundle {
    std::fs::create_dir_all(dir).unwrap();
    let mut b = Builder {
        store: BlobStore::open(dir.join("cache")).unwrap(),
        blobs: Vec::new(),
    };
    let mut descriptors = Vec::new();
    let mut platforms = Vec::new();
    for arch in ["amd64", "arm64"] {
        let l = layer(arch);
        let layer_d = b.blob(media::OCI_LAYER, &l);
        let config = json!({
            "architecture": arch, "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": [Digest::of_bytes(&l).to_string()]},
        });
        let (config_d, _) = b.json(media::OCI_CONFIG, &config);
        let manifest = json!({
            "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
            "config": config_d, "layers": [layer_d],
        });
        let (mut d, digest) = b.json(media::OCI_MANIFEST, &manifest);
        platforms.push((d.clone(), digest));
        d["platform"] = json!({"architecture": arch, "os": "linux"});
        descriptors.push(d);
    }
    let index =
        json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": descriptors});
    let (index_d, index_digest) = b.json(media::OCI_INDEX, &index);

    let amd64 = (&platforms[0].0, &platforms[0].1);
    let top = (&index_d, &index_digest);
    let mut artifacts = Vec::new();
    let cosign_key = SigningKey::from_pem(COSIGN_KEY, None, Path::new("cosign.key")).unwrap();
    match carried {
        Carried::All => {
            let payload = serde_json::to_vec(&json!({
                "critical": {
                    "identity": {"docker-reference": NAME},
                    "image": {"docker-manifest-digest": index_digest.to_string()},
                    "type": "cosign container image signature",
                },
                "optional": null,
            }))
            .unwrap();
            let mut sig = b.blob(media::COSIGN_SIMPLE_SIGNING, &payload);
            sig["annotations"] =
                json!({media::COSIGN_SIGNATURE_ANNOTATION: cosign_key.sign(&payload)});
            let tag = media::cosign_tag(&index_digest, "sig");
            artifacts.push(b.artifact(ArtifactKind::Signature, top, None, vec![sig], Some(tag)));
            let sbom = br#"{"spdxVersion":"SPDX-2.3","name":"app","packages":[]}"#;
            let layer = b.blob(media::SPDX_JSON, sbom);
            let tag = media::cosign_tag(&index_digest, "sbom");
            artifacts.push(b.artifact(ArtifactKind::Sbom, top, None, vec![layer], Some(tag)));
            let envelope = serde_json::to_vec(
                &json!({"payloadType": media::IN_TOTO, "payload": "e30=", "signatures": []}),
            )
            .unwrap();
            let layer = b.blob(media::DSSE_ENVELOPE, &envelope);
            let tag = media::cosign_tag(&index_digest, "att");
            artifacts.push(b.artifact(
                ArtifactKind::Attestation,
                top,
                None,
                vec![layer.clone()],
                Some(tag),
            ));
            artifacts.push(b.artifact(
                ArtifactKind::Attestation,
                amd64,
                Some(media::IN_TOTO),
                vec![layer],
                None,
            ));
        }
        Carried::SecondReferrer => {
            let sbom = br#"{"spdxVersion":"SPDX-2.3","name":"app-amd64","packages":[]}"#;
            let layer = b.blob(media::SPDX_JSON, sbom);
            artifacts.push(b.artifact(
                ArtifactKind::Sbom,
                amd64,
                Some(media::SPDX_JSON),
                vec![layer],
                None,
            ));
        }
    }

    let images = vec![ImageRecord {
        name: NAME.into(),
        reference: format!("{NAME}:{TAG}"),
        tags: vec![TAG.into()],
        digest: index_digest.clone(),
        media_type: media::OCI_INDEX.into(),
        size: index_d["size"].as_u64().unwrap(),
        source: NAME.into(),
        platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
        original_digest: None,
        artifacts,
        content: None,
    }];
    let manifest = BundleManifest {
        format_version: crate::manifest::format_version_for(&images),
        created: "2026-01-01T00:00:00Z".into(),
        airlock_version: "0.1.0".into(),
        spec: SpecInfo {
            name: "signed".into(),
            sha256: Digest::of_bytes(b"spec").hex().into(),
        },
        totals: Totals::of(&images, &b.blobs),
        images,
        blobs: b.blobs.clone(),
        bases: Vec::new(),
    };
    let index_json = manifest.index_json();
    let manifest_json = manifest.to_json_bytes();
    let signature = signer.sign(&manifest_json);
    let path = dir.join("signed.tar.zst");
    let contents = BundleContents {
        manifest_json: &manifest_json,
        signature: Some(signature.as_bytes()),
        index_json: &index_json,
        blobs: &b.blobs,
        store: &b.store,
        gate: None,
    };
    write_bundle(&path, &contents, &ArchiveOptions::default()).unwrap();
    ArtifactBundle {
        path,
        manifest,
        index: index_digest,
        platforms: [platforms[0].1.clone(), platforms[1].1.clone()],
        cosign_key,
    }
}

/// The upstream signer's key: fixed, so the signature (RFC 6979) is the same on every run.
const COSIGN_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg9c85eqB8rSE+fcTX
1g11lRkx3LTvlYyE13PYAn1UcWShRANCAARAUgsTFT+yNZqdlbH9XyT3XzuseqUf
L+4ElQrjBROi/WOi0e50IQaETqe8fDjzpKUnJ3yUC2FZpLCwBVYrPjy4
-----END PRIVATE KEY-----
";
