//! The signed inventory of a bundle, `airlock/manifest.json` (docs/bundle-format.md).
//!
//! It is the root of trust: its signature covers the exact bytes of the file, and every blob
//! read from a bundle is checked against the digests listed here.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::Error;

// Their old home; they live in `media` with the other media-type rules.
pub use crate::media::{is_compressed_media_type, is_small_media_type};

/// The newest bundle format version this crate writes and reads: 2 adds the artifacts of an
/// image (signatures, attestations, SBOMs, referrers), 3 the Helm charts and files
/// ([`ImageRecord::content`]), 4 the bases of a delta bundle ([`BundleManifest::bases`]).
pub const FORMAT_VERSION: u32 = 4;

/// The format version of a delta bundle (one with [`BundleManifest::bases`]).
pub const DELTA_FORMAT_VERSION: u32 = 4;

/// The oldest format version this crate reads. A bundle of plain images is written as
/// version 1, so older readers keep reading it.
pub const MIN_FORMAT_VERSION: u32 = 1;

/// The format version a manifest of these records needs: 3 when one is a chart or a file, 2
/// when an image carries artifacts, else 1.
pub fn format_version_for(images: &[ImageRecord]) -> u32 {
    if images.iter().any(|i| i.content.is_some()) {
        3
    } else if images.iter().any(|i| !i.artifacts.is_empty()) {
        2
    } else {
        MIN_FORMAT_VERSION
    }
}

/// The contents of `airlock/manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BundleManifest {
    /// Always [`FORMAT_VERSION`] when written by this crate.
    pub format_version: u32,
    /// When the bundle was made, RFC 3339 UTC, e.g. `2026-11-27T10:00:00Z`.
    pub created: String,
    /// The airlock version that made it.
    pub airlock_version: String,
    /// The spec the bundle was made from.
    pub spec: SpecInfo,
    /// Every image in the bundle.
    pub images: Vec<ImageRecord>,
    /// Every blob in the bundle, each once.
    pub blobs: Vec<BlobRecord>,
    /// Counts, for a quick look.
    pub totals: Totals,
    /// The bases of a delta bundle (format 4): every blob of `blobs` that this file does not
    /// carry is listed under the one base it comes from. Empty for a full bundle.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bases: Vec<BaseBundle>,
}

/// The spec file a bundle was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SpecInfo {
    /// The spec's name.
    pub name: String,
    /// Lowercase hex sha256 of the spec file's bytes.
    pub sha256: String,
}

/// One image, Helm chart or file in a bundle: each is an OCI manifest (or index) under a
/// canonical name, pushed, served and verified alike; [`ImageRecord::content`] says which.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageRecord {
    /// Canonical repository, e.g. `registry.k8s.io/pause`.
    pub name: String,
    /// The reference as resolved: `registry.k8s.io/pause:3.9` or `…@sha256:…`.
    pub reference: String,
    /// Tags this image carries.
    pub tags: Vec<String>,
    /// Digest of the top manifest or index stored in the bundle.
    pub digest: Digest,
    /// Media type of that manifest or index.
    pub media_type: String,
    /// Size of that manifest or index.
    pub size: u64,
    /// Where it was actually pulled from (origin or mirror, never with credentials).
    pub source: String,
    /// Platforms kept, e.g. `linux/arm64/v8`.
    pub platforms: Vec<String>,
    /// The upstream index digest, when platforms were filtered out and a new index was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_digest: Option<Digest>,
    /// The signatures, attestations, SBOMs and other referrers carried with the image (format
    /// 2), each under its subject: the image's digest, one of its platform manifests, or
    /// another artifact (a signature on an SBOM). Subjects come before what refers to them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<ArtifactRecord>,
    /// What the record is when it is not a container image (format 3): a Helm chart (an OCI
    /// Helm chart, as `helm push` stores it) or a file (an ORAS-style artifact). `None` for a
    /// container image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
}

impl ImageRecord {
    /// Whether this is a container image (not a chart or a file): what containerd, kubeadm's
    /// and containerd's configuration and the workload tools take.
    pub fn is_image(&self) -> bool {
        self.content.is_none()
    }

    /// The chart this record is, if it is one.
    pub fn chart(&self) -> Option<&ChartInfo> {
        match &self.content {
            Some(Content::Chart(c)) => Some(c),
            _ => None,
        }
    }

    /// The file this record is, if it is one.
    pub fn file(&self) -> Option<&FileInfo> {
        match &self.content {
            Some(Content::File(f)) => Some(f),
            _ => None,
        }
    }
}

/// A record that is not a container image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type", deny_unknown_fields)]
pub enum Content {
    /// A Helm chart: the record's manifest has the Helm config and chart content layer (and a
    /// provenance layer when the chart has one).
    Chart(ChartInfo),
    /// A file: the record's manifest has an empty config and one layer, the file's bytes, with
    /// its name in `org.opencontainers.image.title`.
    File(FileInfo),
}

/// A Helm chart carried in a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChartInfo {
    /// The chart's name (`Chart.yaml` `name`).
    pub name: String,
    /// Its version (`Chart.yaml` `version`, SemVer; the OCI tag with `+` as `_`).
    pub version: String,
    /// `Chart.yaml` `appVersion`, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
    /// Where it came from: `oci://HOST/PATH/NAME` or the chart repository's URL (never with
    /// credentials).
    pub origin: String,
    /// Digest of the chart archive (`.tgz`), the chart content layer.
    pub archive: Digest,
    /// For a chart from a classic repository: the `digest` its `index.yaml` gives (checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_digest: Option<String>,
    /// Whether a provenance file (`.prov`) is carried with it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub provenance: bool,
    /// The images the chart names (its values and `Chart.yaml` image annotations), sorted,
    /// for people adding them to a spec; not pulled because of this list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
}

/// A file carried in a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileInfo {
    /// Its name in the bundle: a relative path of `/`-separated components (no `.`, `..` or
    /// empty component), e.g. `kubeadm` or `kubernetes/v1.35.2/linux/amd64/kubeadm`. Where
    /// `load --files-to DIR` writes it (`DIR/NAME`) and where `serve` serves it
    /// (`/files/NAME`). Unique in a bundle.
    pub name: String,
    /// Digest of its bytes (the manifest's one layer).
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Unix permission bits to write it with (`0o755` for node binaries, else `0o644`).
    pub mode: u32,
    /// Where it was downloaded from (the origin URL, never with credentials); `None` for a
    /// local file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// How its sha256 was known before it was trusted.
    pub checksum: FileChecksum,
}

/// How a file's sha256 was established at bundle time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "from", deny_unknown_fields)]
pub enum FileChecksum {
    /// Written in the spec.
    Spec,
    /// Read from a published checksum file.
    Url {
        /// The checksum file's URL (origin, never with credentials).
        url: String,
    },
    /// A local file, hashed when it was bundled.
    Local,
}

/// One artifact carried with an image: a manifest that refers to another one, found upstream
/// through cosign's tag scheme or as an OCI 1.1 referrer. Its manifest and blobs are in the
/// bundle's blob list like an image's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArtifactRecord {
    /// What it refers to: the image's digest, a platform manifest's, or another artifact's.
    pub subject: Digest,
    /// What it is.
    pub kind: ArtifactKind,
    /// Digest of the artifact's manifest.
    pub digest: Digest,
    /// Media type of that manifest.
    pub media_type: String,
    /// Size of that manifest.
    pub size: u64,
    /// Its `artifactType` (or its config's media type when that is not an image config).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The cosign tag it was found under and is restored as (`sha256-<hex>.sig`); none for an
    /// OCI 1.1 referrer, which is restored by its `subject`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// For a keyless signature: the identity and issuer its certificate names (read, not
    /// verified; `verified` says whether it was checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateIdentity>,
    /// How the signature was verified at bundle time, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<UpstreamVerification>,
}

/// What an artifact is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactKind {
    /// A cosign signature (`.sig`, or a referrer of the cosign signature artifact type).
    Signature,
    /// An attestation (`.att`, an in-toto statement in a DSSE envelope).
    Attestation,
    /// A software bill of materials (`.sbom`, SPDX or CycloneDX).
    Sbom,
    /// Any other OCI 1.1 referrer.
    Referrer,
}

impl ArtifactKind {
    /// The lowercase name (`signature`, `attestation`, `sbom`, `referrer`).
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::Signature => "signature",
            ArtifactKind::Attestation => "attestation",
            ArtifactKind::Sbom => "sbom",
            ArtifactKind::Referrer => "referrer",
        }
    }
}

impl std::fmt::Display for ArtifactKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The identity and issuer a Fulcio certificate names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CertificateIdentity {
    /// The subject alternative name: an e-mail address or a URI (a CI workflow).
    pub identity: String,
    /// The OIDC issuer (Fulcio's issuer extension).
    pub issuer: String,
}

/// How an upstream signature was verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "method", deny_unknown_fields)]
pub enum UpstreamVerification {
    /// With a public key: the SHA-256 of its DER `SubjectPublicKeyInfo`, hex.
    Key {
        /// The key's fingerprint.
        key_sha256: String,
    },
    /// Keyless: the certificate chains to the trusted root, the Rekor entry is signed by its
    /// log, and the identity and issuer are the ones the spec asks for.
    Keyless {
        /// sha256 (hex) of the `trusted_root.json` used.
        trusted_root_sha256: String,
    },
}

/// One blob in a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlobRecord {
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Its media type (from the descriptor that refers to it).
    pub media_type: String,
}

/// Counts over a bundle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Totals {
    /// Number of images.
    pub images: u64,
    /// Number of unique blobs.
    pub blobs: u64,
    /// Sum of the unique blobs' sizes.
    pub bytes: u64,
}

impl Totals {
    /// The totals over `images` and `blobs` (which list each blob once).
    ///
    /// The byte count saturates at `u64::MAX`: sizes come from a manifest that may be crafted.
    pub fn of(images: &[ImageRecord], blobs: &[BlobRecord]) -> Totals {
        Totals {
            images: images.len() as u64,
            blobs: blobs.len() as u64,
            bytes: blobs.iter().fold(0u64, |sum, b| sum.saturating_add(b.size)),
        }
    }
}

/// One entry of a bundle's `index.json` ([`BundleManifest::index_entries`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry<'a> {
    /// The fully qualified name: `NAME:TAG`, `NAME@DIGEST`, or `NAME:sha256-<hex>.sig`.
    pub name: String,
    /// The media type of the document it names.
    pub media_type: &'a str,
    /// Its digest.
    pub digest: &'a Digest,
    /// Its size.
    pub size: u64,
}

/// A base of a delta bundle: an earlier bundle, or an inventory of what a registry holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BaseBundle {
    /// What the base is.
    pub kind: BaseKind,
    /// sha256 of the base's `airlock/manifest.json` bytes (a bundle) or of the inventory
    /// file's bytes (an inventory).
    pub digest: Digest,
    /// Its file name, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The blobs of this bundle that are not in this file because the base has them, sorted.
    pub blobs: Vec<Digest>,
}

/// What a delta's base is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BaseKind {
    /// An earlier bundle (its signed manifest).
    Bundle,
    /// An inventory of a registry (`airlock inventory`).
    Inventory,
}

impl BundleManifest {
    /// Whether this is a delta: some of its blobs are not in the file but in a base.
    pub fn is_delta(&self) -> bool {
        self.bases.iter().any(|b| !b.blobs.is_empty())
    }

    /// The base each blob left out of the file comes from.
    pub fn from_bases(&self) -> std::collections::HashMap<&Digest, &BaseBundle> {
        self.bases
            .iter()
            .flat_map(|b| b.blobs.iter().map(move |d| (d, b)))
            .collect()
    }

    /// The blobs this file carries: every blob of [`BundleManifest::blobs`] that no base
    /// supplies, in order.
    pub fn carried_blobs(&self) -> impl Iterator<Item = &BlobRecord> {
        let from = self.from_bases();
        self.blobs
            .iter()
            .filter(move |b| !from.contains_key(&b.digest))
    }

    /// Pretty JSON with a trailing newline; the same manifest always gives the same bytes
    /// (fields in declaration order, lists in their given order).
    pub fn to_json_bytes(&self) -> Vec<u8> {
        let mut out =
            serde_json::to_vec_pretty(self).expect("a manifest always serializes to JSON");
        out.push(b'\n');
        out
    }

    /// The entries of the bundle's OCI `index.json`, sorted by name: one per image tag (or
    /// per digest pin) and per tagged artifact (`NAME:sha256-<hex>.sig`, so OCI layout tools
    /// see them). [`BundleManifest::index_json`] writes them and `verify` requires exactly
    /// these names.
    pub fn index_entries(&self) -> Vec<IndexEntry<'_>> {
        let mut entries: Vec<IndexEntry<'_>> = Vec::new();
        for img in &self.images {
            let entry = |name| IndexEntry {
                name,
                media_type: &img.media_type,
                digest: &img.digest,
                size: img.size,
            };
            if img.tags.is_empty() {
                entries.push(entry(format!("{}@{}", img.name, img.digest)));
            }
            for t in &img.tags {
                entries.push(entry(format!("{}:{t}", img.name)));
            }
            for a in &img.artifacts {
                if let Some(t) = &a.tag {
                    let name = format!("{}:{t}", img.name);
                    if !entries.iter().any(|e| e.name == name) {
                        entries.push(IndexEntry {
                            name,
                            media_type: &a.media_type,
                            digest: &a.digest,
                            size: a.size,
                        });
                    }
                }
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        entries
    }

    /// The OCI `index.json` of a bundle with this manifest: [`BundleManifest::index_entries`],
    /// each named with the fully qualified reference in both the OCI and the containerd
    /// annotation.
    pub fn index_json(&self) -> Vec<u8> {
        let manifests: Vec<serde_json::Value> = self
            .index_entries()
            .iter()
            .map(|e| {
                serde_json::json!({
                    "mediaType": e.media_type,
                    "digest": e.digest.to_string(),
                    "size": e.size,
                    "annotations": {
                        "io.containerd.image.name": e.name,
                        "org.opencontainers.image.ref.name": e.name,
                    },
                })
            })
            .collect();
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": crate::media::OCI_INDEX,
            "manifests": manifests,
        });
        let mut out = serde_json::to_vec_pretty(&index).expect("index serialises");
        out.push(b'\n');
        out
    }

    /// Parses the bytes of `airlock/manifest.json`.
    ///
    /// A manifest of another format version is reported as such, before its fields are
    /// checked (a newer format may have fields this version does not know).
    pub fn from_json_bytes(b: &[u8]) -> Result<Self, Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Probe {
            format_version: Option<u32>,
        }
        if let Ok(Probe {
            format_version: Some(found),
        }) = serde_json::from_slice::<Probe>(b)
        {
            if !(MIN_FORMAT_VERSION..=FORMAT_VERSION).contains(&found) {
                return Err(Error::UnsupportedFormatVersion {
                    found,
                    supported: FORMAT_VERSION,
                });
            }
        }
        serde_json::from_slice(b).map_err(|source| Error::ManifestJson { source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BundleManifest {
        let d = Digest::of_bytes(b"index");
        let blobs = vec![
            BlobRecord {
                digest: d.clone(),
                size: 5,
                media_type: "application/vnd.oci.image.index.v1+json".into(),
            },
            BlobRecord {
                digest: Digest::of_bytes(b"layer"),
                size: 5,
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            },
        ];
        let images = vec![ImageRecord {
            name: "registry.k8s.io/pause".into(),
            reference: "registry.k8s.io/pause:3.9".into(),
            tags: vec!["3.9".into()],
            digest: d.clone(),
            media_type: "application/vnd.oci.image.index.v1+json".into(),
            size: 5,
            source: "127.0.0.1:5000/mirror/pause".into(),
            platforms: vec!["linux/amd64".into(), "linux/arm64/v8".into()],
            original_digest: Some(Digest::of_bytes(b"upstream")),
            artifacts: Vec::new(),
            content: None,
        }];
        BundleManifest {
            format_version: MIN_FORMAT_VERSION,
            created: "2026-11-27T10:00:00Z".into(),
            airlock_version: "0.1.0".into(),
            spec: SpecInfo {
                name: "kubernetes-v1.28".into(),
                sha256: Digest::of_bytes(b"spec").hex().into(),
            },
            totals: Totals::of(&images, &blobs),
            images,
            blobs,
            bases: Vec::new(),
        }
    }

    #[test]
    fn round_trip_is_stable() {
        let m = sample();
        let bytes = m.to_json_bytes();
        assert!(bytes.ends_with(b"}\n"));
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(
            text.starts_with("{\n  \"formatVersion\": 1,\n  \"created\""),
            "{text}"
        );
        for key in ["airlockVersion", "mediaType", "originalDigest", "totals"] {
            assert!(text.contains(&format!("\"{key}\"")), "{key} in {text}");
        }
        assert!(!text.contains("\"base\""));
        let back = BundleManifest::from_json_bytes(&bytes).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.to_json_bytes(), bytes);
        assert_eq!(
            m.totals,
            Totals {
                images: 1,
                blobs: 2,
                bytes: 10
            }
        );
    }

    #[test]
    fn base_round_trips() {
        let mut m = sample();
        m.bases = vec![BaseBundle {
            kind: BaseKind::Bundle,
            digest: Digest::of_bytes(b"base"),
            name: None,
            blobs: vec![m.blobs[1].digest.clone()],
        }];
        assert!(m.is_delta());
        assert_eq!(m.carried_blobs().count(), m.blobs.len() - 1);
        let back = BundleManifest::from_json_bytes(&m.to_json_bytes()).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let mut v: serde_json::Value = serde_json::from_slice(&sample().to_json_bytes()).unwrap();
        v["images"][0]["extra"] = serde_json::json!(1);
        let err = BundleManifest::from_json_bytes(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(matches!(err, Error::ManifestJson { .. }), "{err:?}");
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(source.contains("extra"), "{source}");
    }

    #[test]
    fn other_format_version_is_named() {
        let mut v: serde_json::Value = serde_json::from_slice(&sample().to_json_bytes()).unwrap();
        v["formatVersion"] = serde_json::json!(FORMAT_VERSION + 1);
        v["newField"] = serde_json::json!(true);
        let err = BundleManifest::from_json_bytes(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(
            matches!(
                err,
                Error::UnsupportedFormatVersion {
                    found: 5,
                    supported: FORMAT_VERSION
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn bad_digest_is_rejected() {
        let text = String::from_utf8(sample().to_json_bytes())
            .unwrap()
            .replacen("sha256:", "sha256:X", 1);
        let err = BundleManifest::from_json_bytes(text.as_bytes()).unwrap_err();
        assert!(matches!(err, Error::ManifestJson { .. }));
    }
}
