//! Upstream signatures carried in a bundle, checked offline (`airlock verify --upstream-key`,
//! or `--upstream-identity`/`--upstream-issuer`/`--trusted-root` for keyless ones).
//!
//! Every carried signature ([`ArtifactKind::Signature`]) is checked against its subject with
//! [`airlock_cosign::verify_image`], from the bundle's own bytes: the signature manifest and
//! its simple-signing payloads are small JSON blobs, read and hashed when the bundle is opened.
//! An image passes when its digest has a valid signature; for a platform-filtered index (one
//! with `original_digest`), whose rewritten digest no upstream signature can name, when each
//! kept platform manifest has one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use airlock_cosign::{SignatureLayer, Verified};
use airlock_layout::{
    ArtifactKind, BundleManifest, CertificateIdentity, Digest, ImageRecord, UpstreamVerification,
};
use bytes::Bytes;
use oci_spec::image::{ImageIndex, ImageManifest};
use serde::{Serialize, Serializer};

use crate::offline::OpenBundle;

pub use airlock_cosign::{CosignError, Policy, Refusal, TrustedRoot};

/// What [`check_upstream`] found, image by image; serialises as the `upstream` part of
/// `airlock verify --json`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamReport {
    /// What a valid signature had to be, in words.
    pub policy: String,
    /// Every image of the bundle, in its order.
    pub images: Vec<ImageUpstream>,
}

impl UpstreamReport {
    /// Whether every image has the valid signatures it needs.
    pub fn ok(&self) -> bool {
        self.images.iter().all(|image| image.failures.is_empty())
    }
}

/// One image's upstream signatures.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageUpstream {
    /// `NAME:TAG`, or `NAME@DIGEST` for an image without a tag.
    pub image: String,
    /// The image's digest in the bundle.
    pub digest: Digest,
    /// The digests that need a valid signature: the image's, or each kept platform
    /// manifest's for a platform-filtered index.
    pub required: Vec<Digest>,
    /// The carried signatures that verified.
    pub valid: Vec<ValidSignature>,
    /// The carried signatures that did not, and why.
    pub invalid: Vec<InvalidSignature>,
    /// Plain statements, e.g. that a signature over the upstream index does not cover the
    /// filtered one.
    pub notes: Vec<String>,
    /// Why the image fails; empty: it passes.
    #[serde(serialize_with = "messages")]
    pub failures: Vec<UpstreamFailure>,
}

/// A carried signature that verified.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidSignature {
    /// What it signs.
    pub subject: Digest,
    /// The signature manifest.
    pub signature: Digest,
    /// The layer that verified.
    pub layer: Digest,
    /// How it was verified.
    pub how: UpstreamVerification,
    /// Who signed, for a keyless signature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateIdentity>,
}

/// A carried signature that did not verify.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvalidSignature {
    /// What it claims to sign.
    pub subject: Digest,
    /// The signature manifest.
    pub signature: Digest,
    /// Why it is not valid.
    #[serde(serialize_with = "message")]
    pub problem: SignatureProblem,
}

/// Why a carried signature is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureProblem {
    /// The signature manifest's bytes are not in the bundle.
    #[error("its manifest {0} is not among the bundle's blobs")]
    MissingManifest(Digest),
    /// The signature manifest is not an OCI image manifest.
    #[error("its manifest {digest} is not an OCI image manifest: {detail}")]
    BadManifest {
        /// The manifest.
        digest: Digest,
        /// What the parser said.
        detail: String,
    },
    /// No layer verified: what each one was.
    #[error("{}", if .0.found.is_empty() { "its manifest has no layer".to_string() } else { .0.found.join("; ") })]
    Refused(Refusal),
}

/// Why an image fails the upstream check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamFailure {
    /// No signature of this digest is carried.
    #[error(
        "{image}: no signature of {digest}{} is carried in the bundle (it was bundled unsigned, or with artifacts.signatures off)",
        platform.as_ref().map(|p| format!(" ({p})")).unwrap_or_default()
    )]
    Unsigned {
        /// The image.
        image: String,
        /// The digest that needs a signature.
        digest: Digest,
        /// Its platform, for a platform manifest.
        platform: Option<String>,
    },
    /// Signatures of this digest are carried, none valid.
    #[error(
        "{image}: no valid signature of {digest}{}: {}",
        platform.as_ref().map(|p| format!(" ({p})")).unwrap_or_default(),
        found.join("; ")
    )]
    Invalid {
        /// The image.
        image: String,
        /// The digest that needs a signature.
        digest: Digest,
        /// Its platform, for a platform manifest.
        platform: Option<String>,
        /// What each carried signature was.
        found: Vec<String>,
    },
    /// The image's index could not be read to know its platform manifests.
    #[error("{image}: its index {digest} cannot be read from the bundle: {problem}")]
    BadIndex {
        /// The image.
        image: String,
        /// The index.
        digest: Digest,
        /// Why.
        problem: IndexProblem,
    },
}

/// Why an image's index cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IndexProblem {
    /// Its bytes are not in the bundle.
    #[error("it is not among the bundle's blobs")]
    Missing,
    /// It is not an image index.
    #[error("it is not an image index: {0}")]
    NotAnIndex(String),
}

fn message<S: Serializer>(value: &SignatureProblem, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

fn messages<S: Serializer>(values: &[UpstreamFailure], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(values.iter().map(ToString::to_string))
}

/// The policy of `airlock verify`'s flags: keys (`--upstream-key`, repeatable), or keyless
/// (`--upstream-identity`, `--upstream-issuer`, `--trusted-root`); `None` when none is given.
pub fn policy_from_flags(
    keys: &[PathBuf],
    identity: Option<&str>,
    issuer: Option<&str>,
    trusted_root: Option<&Path>,
) -> Result<Option<Policy>, CosignError> {
    if !keys.is_empty() {
        return Policy::keys(keys).map(Some);
    }
    match (identity, issuer, trusted_root) {
        (Some(identity), Some(issuer), Some(root)) => {
            Policy::keyless(root, identity, issuer).map(Some)
        }
        _ => Ok(None),
    }
}

/// The policy in words, for the report.
pub fn describe(policy: &Policy) -> String {
    match policy {
        Policy::Keys(keys) => {
            let keys: Vec<String> = keys
                .iter()
                .map(|k| format!("`{}` ({})", k.path.display(), k.key.fingerprint()))
                .collect();
            format!("signed with {}", keys.join(" or "))
        }
        Policy::Keyless(k) => format!(
            "keyless, identity `{}`, issuer `{}`, trusted root sha256:{}",
            k.identity, k.issuer, k.root.sha256
        ),
    }
}

/// [`check_upstream`] on an opened bundle, from its small blobs.
pub fn check_bundle(bundle: &OpenBundle, policy: &Policy) -> UpstreamReport {
    let blob = |d: &Digest| bundle.small.get(d).and_then(|r| r.as_ref().ok()).cloned();
    check_upstream(&bundle.manifest, &blob, policy)
}

/// Checks every signature `manifest` carries against its subject under `policy`, reading
/// blobs through `blob` (`None`: not in the bundle), and says per image whether the digests
/// that need a signature have a valid one.
pub fn check_upstream(
    manifest: &BundleManifest,
    blob: &dyn Fn(&Digest) -> Option<Bytes>,
    policy: &Policy,
) -> UpstreamReport {
    UpstreamReport {
        policy: describe(policy),
        images: manifest
            .images
            .iter()
            .map(|record| check_image(record, blob, policy))
            .collect(),
    }
}

fn display_name(record: &ImageRecord) -> String {
    match record.tags.first() {
        Some(tag) => format!("{}:{tag}", record.name),
        None => format!("{}@{}", record.name, record.digest),
    }
}

/// The platform manifests of the index `digest`: digest and `os/arch[/variant]`.
fn platform_manifests(
    digest: &Digest,
    blob: &dyn Fn(&Digest) -> Option<Bytes>,
) -> Result<Vec<(Digest, String)>, IndexProblem> {
    let bytes = blob(digest).ok_or(IndexProblem::Missing)?;
    let index: ImageIndex =
        serde_json::from_slice(&bytes).map_err(|e| IndexProblem::NotAnIndex(e.to_string()))?;
    let mut out = Vec::new();
    for m in index.manifests() {
        let d = Digest::parse(m.digest().as_ref())
            .map_err(|e| IndexProblem::NotAnIndex(e.to_string()))?;
        let platform = m.platform().as_ref().map(|p| {
            let mut s = format!("{}/{}", p.os(), p.architecture());
            if let Some(v) = p.variant() {
                s.push('/');
                s.push_str(v);
            }
            s
        });
        out.push((d, platform.unwrap_or_default()));
    }
    Ok(out)
}

fn check_image(
    record: &ImageRecord,
    blob: &dyn Fn(&Digest) -> Option<Bytes>,
    policy: &Policy,
) -> ImageUpstream {
    let image = display_name(record);
    let mut out = ImageUpstream {
        image: image.clone(),
        digest: record.digest.clone(),
        required: Vec::new(),
        valid: Vec::new(),
        invalid: Vec::new(),
        notes: Vec::new(),
        failures: Vec::new(),
    };
    // What must be signed, with the platform of each (for messages).
    let required: Vec<(Digest, Option<String>)> = match &record.original_digest {
        None => vec![(record.digest.clone(), None)],
        Some(_) => match platform_manifests(&record.digest, blob) {
            Ok(manifests) => manifests
                .into_iter()
                .map(|(d, p)| (d, Some(p).filter(|p| !p.is_empty())))
                .collect(),
            Err(problem) => {
                out.failures.push(UpstreamFailure::BadIndex {
                    image,
                    digest: record.digest.clone(),
                    problem,
                });
                return out;
            }
        },
    };
    out.required = required.iter().map(|(d, _)| d.clone()).collect();

    for artifact in record
        .artifacts
        .iter()
        .filter(|a| a.kind == ArtifactKind::Signature)
    {
        match check_signature(&artifact.subject, &artifact.digest, blob, policy) {
            Ok(verified) => out.valid.push(ValidSignature {
                subject: artifact.subject.clone(),
                signature: artifact.digest.clone(),
                layer: verified.layer,
                how: verified.how,
                certificate: verified.certificate,
            }),
            Err(problem) => out.invalid.push(InvalidSignature {
                subject: artifact.subject.clone(),
                signature: artifact.digest.clone(),
                problem,
            }),
        }
    }
    if let Some(original) = &record.original_digest {
        let carried = record
            .artifacts
            .iter()
            .any(|a| a.kind == ArtifactKind::Signature && a.subject == *original);
        if carried {
            out.notes.push(format!(
                "the signature over the upstream index {original} does not cover the filtered index {}: the per-platform signatures are the ones that stay valid",
                record.digest
            ));
        }
    }

    for (digest, platform) in required {
        if out.valid.iter().any(|v| v.subject == digest) {
            continue;
        }
        let found: Vec<String> = out
            .invalid
            .iter()
            .filter(|i| i.subject == digest)
            .map(|i| format!("signature {}: {}", i.signature, i.problem))
            .collect();
        out.failures.push(if found.is_empty() {
            UpstreamFailure::Unsigned {
                image: image.clone(),
                digest,
                platform,
            }
        } else {
            UpstreamFailure::Invalid {
                image: image.clone(),
                digest,
                platform,
                found,
            }
        });
    }
    out
}

/// Checks the signature manifest `signature` against `subject`.
fn check_signature(
    subject: &Digest,
    signature: &Digest,
    blob: &dyn Fn(&Digest) -> Option<Bytes>,
    policy: &Policy,
) -> Result<Verified, SignatureProblem> {
    let bytes =
        blob(signature).ok_or_else(|| SignatureProblem::MissingManifest(signature.clone()))?;
    let bad = |detail: String| SignatureProblem::BadManifest {
        digest: signature.clone(),
        detail,
    };
    let manifest: ImageManifest = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    let mut layers: Vec<(Digest, Bytes, BTreeMap<String, String>)> = Vec::new();
    let mut missing = Vec::new();
    for layer in manifest.layers() {
        let digest = Digest::parse(layer.digest().as_ref()).map_err(|e| bad(e.to_string()))?;
        let annotations: BTreeMap<String, String> = layer
            .annotations()
            .as_ref()
            .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        match blob(&digest) {
            Some(payload) => layers.push((digest, payload, annotations)),
            None => missing.push(format!("layer {digest}: not among the bundle's blobs")),
        }
    }
    let views: Vec<SignatureLayer<'_>> = layers
        .iter()
        .map(|(digest, payload, annotations)| SignatureLayer {
            digest,
            payload,
            annotations,
        })
        .collect();
    airlock_cosign::verify_image(subject, &views, policy).map_err(|mut refusal| {
        refusal.found.extend(missing);
        SignatureProblem::Refused(refusal)
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use airlock_cosign::testing::{sign_with_key, simple_signing_payload, TestSigstore};
    use airlock_cosign::{KeylessPolicy, PolicyKey};
    use airlock_layout::media::{COSIGN_SIMPLE_SIGNING, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST};
    use airlock_layout::{ArtifactRecord, SigningKey, SpecInfo, Totals};
    use serde_json::json;

    use super::*;

    /// Blobs by digest, and what is built from them.
    #[derive(Default)]
    struct Bundle {
        blobs: HashMap<Digest, Bytes>,
        images: Vec<ImageRecord>,
    }

    impl Bundle {
        fn put(&mut self, bytes: Vec<u8>) -> Digest {
            let digest = Digest::of_bytes(&bytes);
            self.blobs.insert(digest.clone(), Bytes::from(bytes));
            digest
        }

        /// A cosign signature manifest over `subject` with `annotations` made by `sign`.
        fn signature(
            &mut self,
            subject: &Digest,
            sign: &dyn Fn(&[u8]) -> BTreeMap<String, String>,
        ) -> ArtifactRecord {
            let payload = simple_signing_payload("registry.example.test/app", subject);
            let annotations = sign(&payload);
            let size = payload.len();
            let layer = self.put(payload);
            let config = self.put(b"{}".to_vec());
            let manifest = serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": config.to_string(), "size": 2},
                "layers": [{
                    "mediaType": COSIGN_SIMPLE_SIGNING,
                    "digest": layer.to_string(),
                    "size": size,
                    "annotations": annotations,
                }],
            }))
            .unwrap();
            let size = manifest.len() as u64;
            ArtifactRecord {
                subject: subject.clone(),
                kind: ArtifactKind::Signature,
                digest: self.put(manifest),
                media_type: OCI_MANIFEST.into(),
                size,
                artifact_type: None,
                tag: Some(airlock_layout::media::cosign_tag(subject, "sig")),
                certificate: None,
                verified: None,
            }
        }

        fn image(&mut self, name: &str, digest: Digest, artifacts: Vec<ArtifactRecord>) {
            self.images.push(ImageRecord {
                name: name.into(),
                reference: format!("{name}:1"),
                tags: vec!["1".into()],
                digest,
                media_type: OCI_MANIFEST.into(),
                size: 1,
                source: name.into(),
                platforms: vec!["linux/amd64".into()],
                original_digest: None,
                artifacts,
                content: None,
            });
        }

        fn check(&self, policy: &Policy) -> UpstreamReport {
            let manifest = BundleManifest {
                format_version: 2,
                created: "2026-12-01T00:00:00Z".into(),
                airlock_version: "0".into(),
                spec: SpecInfo {
                    name: "test".into(),
                    sha256: "0".repeat(64),
                },
                images: self.images.clone(),
                blobs: Vec::new(),
                totals: Totals::default(),
                bases: Vec::new(),
            };
            check_upstream(&manifest, &|d| self.blobs.get(d).cloned(), policy)
        }
    }

    fn policy(key: &SigningKey) -> Policy {
        Policy::Keys(vec![PolicyKey {
            path: "upstream.pub".into(),
            key: key.verifying_key(),
        }])
    }

    fn failures(image: &ImageUpstream) -> Vec<String> {
        image.failures.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn signed_images_pass_and_unsigned_or_other_key_ones_fail_named() {
        let key = SigningKey::generate();
        let other = SigningKey::generate();
        let mut b = Bundle::default();
        let (a, bb, c) = (
            Digest::of_bytes(b"app-a"),
            Digest::of_bytes(b"app-b"),
            Digest::of_bytes(b"base"),
        );
        let sig_a = b.signature(&a, &|p| sign_with_key(&key, p));
        let sig_b = b.signature(&bb, &|p| sign_with_key(&other, p));
        b.image(
            "registry.example.test/app-a",
            a.clone(),
            vec![sig_a.clone()],
        );
        b.image(
            "registry.example.test/app-b",
            bb.clone(),
            vec![sig_b.clone()],
        );
        b.image("registry.example.test/base", c.clone(), vec![]);
        let report = b.check(&policy(&key));
        assert!(!report.ok());
        assert!(report
            .policy
            .starts_with("signed with `upstream.pub` (sha256:"));

        let [app_a, app_b, base] = &report.images[..] else {
            panic!("{report:?}")
        };
        assert!(app_a.failures.is_empty(), "{:?}", app_a.failures);
        assert_eq!(app_a.valid.len(), 1);
        assert_eq!(app_a.valid[0].signature, sig_a.digest);
        assert_eq!(app_a.required, [a]);

        let said = failures(app_b);
        assert_eq!(said.len(), 1);
        assert!(
            said[0].starts_with(&format!(
                "registry.example.test/app-b:1: no valid signature of {bb}: signature {}: layer sha256:",
                sig_b.digest
            )),
            "{}",
            said[0]
        );
        assert!(
            said[0].ends_with("signed by another key, not `upstream.pub`"),
            "{}",
            said[0]
        );

        assert_eq!(
            failures(base),
            [format!("registry.example.test/base:1: no signature of {c} is carried in the bundle (it was bundled unsigned, or with artifacts.signatures off)")]
        );

        // The JSON report says the same in words.
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["images"][2]["failures"][0], failures(base)[0].as_str());
        assert!(json["images"][1]["invalid"][0]["problem"]
            .as_str()
            .unwrap()
            .contains("signed by another key"));
    }

    #[test]
    fn a_filtered_index_needs_each_kept_platform_signed_and_says_the_index_signature_does_not_cover_it(
    ) {
        let key = SigningKey::generate();
        let mut b = Bundle::default();
        let (amd64, arm64) = (Digest::of_bytes(b"amd64"), Digest::of_bytes(b"arm64"));
        let index = b.put(
            serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [
                    {"mediaType": OCI_MANIFEST, "digest": amd64.to_string(), "size": 5,
                     "platform": {"os": "linux", "architecture": "amd64"}},
                    {"mediaType": OCI_MANIFEST, "digest": arm64.to_string(), "size": 5,
                     "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
                ],
            }))
            .unwrap(),
        );
        let upstream = Digest::of_bytes(b"the upstream index");
        let signed = |p: &[u8]| sign_with_key(&key, p);
        let artifacts = vec![
            b.signature(&upstream, &signed),
            b.signature(&amd64, &signed),
        ];
        b.image("registry.example.test/multi", index.clone(), artifacts);
        b.images[0].original_digest = Some(upstream.clone());
        b.images[0].media_type = OCI_INDEX.into();

        let report = b.check(&policy(&key));
        let image = &report.images[0];
        assert_eq!(image.required, [amd64.clone(), arm64.clone()]);
        assert_eq!(
            image.valid.len(),
            2,
            "the upstream index's signature is valid for it"
        );
        assert_eq!(
            image.notes,
            [format!("the signature over the upstream index {upstream} does not cover the filtered index {index}: the per-platform signatures are the ones that stay valid")]
        );
        assert_eq!(
            failures(image),
            [format!("registry.example.test/multi:1: no signature of {arm64} (linux/arm64/v8) is carried in the bundle (it was bundled unsigned, or with artifacts.signatures off)")]
        );

        let sig = b.signature(&arm64, &signed);
        b.images[0].artifacts.push(sig);
        assert!(b.check(&policy(&key)).ok());
    }

    #[test]
    fn keyless_signatures_verify_against_the_trusted_root_and_a_wrong_identity_fails() {
        let sigstore = TestSigstore::new();
        let identity = "https://ci.example.test/release.yml@refs/heads/main";
        let issuer = "https://issuer.example.test";
        let mut b = Bundle::default();
        let digest = Digest::of_bytes(b"app");
        let sig = b.signature(&digest, &|p| sigstore.sign_keyless(p, identity, issuer));
        b.image("registry.example.test/app", digest, vec![sig]);
        let root = Arc::new(
            TrustedRoot::from_json(&sigstore.trusted_root_json(), Path::new("root.json")).unwrap(),
        );
        let keyless = |identity: &str| {
            Policy::Keyless(KeylessPolicy {
                root: root.clone(),
                identity: identity.into(),
                issuer: issuer.into(),
            })
        };
        let report = b.check(&keyless(identity));
        assert!(report.ok(), "{:?}", report.images[0].failures);
        assert_eq!(
            report.images[0].valid[0]
                .certificate
                .as_ref()
                .unwrap()
                .identity,
            identity
        );
        let report = b.check(&keyless(
            "https://ci.example.test/other.yml@refs/heads/main",
        ));
        let said = failures(&report.images[0]);
        assert!(
            said[0].contains(&format!("its certificate names identity `{identity}`")),
            "{said:?}"
        );
    }

    #[test]
    fn a_signature_whose_manifest_is_not_in_the_bundle_is_said() {
        let key = SigningKey::generate();
        let mut b = Bundle::default();
        let digest = Digest::of_bytes(b"app");
        let sig = b.signature(&digest, &|p| sign_with_key(&key, p));
        b.blobs.remove(&sig.digest);
        b.image("registry.example.test/app", digest, vec![sig.clone()]);
        let report = b.check(&policy(&key));
        assert_eq!(
            report.images[0].invalid[0].problem,
            SignatureProblem::MissingManifest(sig.digest.clone())
        );
        assert!(failures(&report.images[0])[0].ends_with(&format!(
            "its manifest {} is not among the bundle's blobs",
            sig.digest
        )));
    }

    /// A real bundle file (written, signed, opened as every offline command opens one): the
    /// signature manifests and payloads are among its small blobs, read and hashed on open.
    #[test]
    fn a_bundle_file_carries_what_the_check_needs_among_its_small_blobs() {
        use airlock_layout::archive::{write_bundle, ArchiveOptions, BundleContents};
        use airlock_layout::{BlobRecord, BlobStore, Purpose, Trust};

        let upstream = SigningKey::generate();
        let signer = SigningKey::generate();
        let mut b = Bundle::default();
        let image = b.put(
            serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": Digest::of_bytes(b"{}").to_string(), "size": 2},
                "layers": [],
            }))
            .unwrap(),
        );
        let sig = b.signature(&image, &|p| sign_with_key(&upstream, p));
        b.image("registry.example.test/app", image.clone(), vec![sig]);
        b.images[0].size = b.blobs[&image].len() as u64;

        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path().join("cache")).unwrap();
        let mut blobs = Vec::new();
        for (digest, bytes) in &b.blobs {
            store.put_bytes(digest, bytes).unwrap();
            let manifest: Option<serde_json::Value> = serde_json::from_slice(bytes).ok();
            let media_type = match manifest.as_ref().and_then(|m| m.get("schemaVersion")) {
                Some(_) => OCI_MANIFEST,
                None if bytes.as_ref() == b"{}" => OCI_CONFIG,
                None => COSIGN_SIMPLE_SIGNING,
            };
            blobs.push(BlobRecord {
                digest: digest.clone(),
                size: bytes.len() as u64,
                media_type: media_type.into(),
            });
        }
        blobs.sort_by_key(|b| b.digest.to_string());
        let manifest = BundleManifest {
            format_version: airlock_layout::format_version_for(&b.images),
            created: "2026-12-01T00:00:00Z".into(),
            airlock_version: "0".into(),
            spec: SpecInfo {
                name: "test".into(),
                sha256: "0".repeat(64),
            },
            totals: Totals::of(&b.images, &blobs),
            images: b.images.clone(),
            blobs: blobs.clone(),
            bases: Vec::new(),
        };
        let manifest_json = manifest.to_json_bytes();
        let signature = signer.sign(&manifest_json);
        let out = dir.path().join("b.tar.zst");
        let contents = BundleContents {
            manifest_json: &manifest_json,
            signature: Some(signature.as_bytes()),
            index_json: b"{}",
            blobs: &blobs,
            store: &store,
            gate: None,
        };
        write_bundle(&out, &contents, &ArchiveOptions::default()).unwrap();

        let trust = Trust::Key(signer.verifying_key());
        let bundle = crate::offline::open(&out, &trust, Purpose::Verify).unwrap();
        assert_eq!(bundle.manifest.format_version, 2);
        let report = check_bundle(&bundle, &policy(&upstream));
        assert!(report.ok(), "{:?}", report.images[0].failures);
        assert_eq!(report.images[0].valid.len(), 1);
        let report = check_bundle(&bundle, &policy(&SigningKey::generate()));
        assert!(!report.ok());
    }

    #[test]
    fn flags_make_a_policy_or_none() {
        assert!(policy_from_flags(&[], None, None, None).unwrap().is_none());
        let err = policy_from_flags(&["/nonexistent/k.pub".into()], None, None, None).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/k.pub"), "{err}");
    }
}
