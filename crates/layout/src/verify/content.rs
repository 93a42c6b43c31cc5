//! The checks of what the small entries say: the manifest agrees with itself, `oci-layout` is
//! the OCI marker, and `index.json` names exactly the manifest's images.

use std::collections::HashMap;

use serde::Deserialize;

use crate::digest::Digest;
use crate::manifest::{BundleManifest, Totals};

/// How `airlock/manifest.json` contradicts itself (see
/// [`VerifyErrorKind::ManifestInconsistent`](super::VerifyErrorKind::ManifestInconsistent)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestDefect {
    /// A blob is listed twice.
    #[error("blob `{digest}` is listed twice")]
    BlobTwice {
        /// The blob.
        digest: Digest,
    },
    /// An image's digest is not among the blobs.
    #[error("image `{reference}` has digest `{digest}`, which is not in the blob list")]
    ImageNotListed {
        /// The image.
        reference: String,
        /// Its digest.
        digest: Digest,
    },
    /// An image's size differs from its blob's.
    #[error("image `{reference}` has size {size}, its blob `{digest}` {blob_size}")]
    ImageSize {
        /// The image.
        reference: String,
        /// The image's size.
        size: u64,
        /// Its digest.
        digest: Digest,
        /// The blob's size.
        blob_size: u64,
    },
    /// An artifact's digest is not among the blobs.
    #[error("artifact `{digest}` of image `{reference}` is not in the blob list")]
    ArtifactNotListed {
        /// The image it is carried with.
        reference: String,
        /// The artifact's digest.
        digest: Digest,
    },
    /// An artifact's size differs from its blob's.
    #[error("artifact `{digest}` of image `{reference}` has size {size}, its blob {blob_size}")]
    ArtifactSize {
        /// The image it is carried with.
        reference: String,
        /// The artifact's digest.
        digest: Digest,
        /// The artifact's size.
        size: u64,
        /// The blob's size.
        blob_size: u64,
    },
    /// A base lists a blob the manifest does not.
    #[error("base `{base}` supplies blob `{digest}`, which is not in the blob list")]
    BaseBlobNotListed {
        /// The base (its name, else its digest).
        base: String,
        /// The blob.
        digest: Digest,
    },
    /// A blob is listed by two bases (or twice by one).
    #[error("blob `{digest}` is listed twice in the bases")]
    BaseBlobTwice {
        /// The blob.
        digest: Digest,
    },
    /// The blob sizes overflow.
    #[error("the blob sizes add up to more than 2^64 bytes")]
    SizesOverflow,
    /// The totals differ from the lists.
    #[error(
        "totals say {} images, {} blobs, {} bytes; the lists hold {}, {}, {}",
        .stated.images, .stated.blobs, .stated.bytes, .counted.images, .counted.blobs,
        .counted.bytes
    )]
    Totals {
        /// The totals the manifest states.
        stated: Totals,
        /// The totals of its lists.
        counted: Totals,
    },
}

/// What is wrong with `oci-layout` (see
/// [`VerifyErrorKind::OciLayout`](super::VerifyErrorKind::OciLayout)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OciLayoutDefect {
    /// Not the JSON of the marker.
    #[error("not an OCI layout marker: {0}")]
    NotJson(serde_json::Error),
    /// Another layout version.
    #[error("imageLayoutVersion `{found}`, expected `1.0.0`")]
    Version {
        /// The version found.
        found: String,
    },
}

/// How `index.json` differs from the manifest (see
/// [`VerifyErrorKind::IndexJson`](super::VerifyErrorKind::IndexJson)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexJsonDefect {
    /// Not the JSON of an OCI index.
    #[error("not an OCI index: {0}")]
    NotJson(serde_json::Error),
    /// Another schema version.
    #[error("schemaVersion {found}, expected 2")]
    SchemaVersion {
        /// The version found.
        found: u32,
    },
    /// A descriptor of no image of the manifest.
    #[error("descriptor {index} (`{digest}`) is not an image of the manifest")]
    NotAnImage {
        /// Its position in `manifests`.
        index: usize,
        /// Its digest.
        digest: Digest,
    },
    /// A descriptor whose size or media type differ from the image's.
    #[error(
        "descriptor {index} (`{digest}`) says {size} bytes of `{media_type}`, the manifest \
         {image_size} bytes of `{image_media_type}`"
    )]
    Descriptor {
        /// Its position in `manifests`.
        index: usize,
        /// Its digest.
        digest: Digest,
        /// The size it says.
        size: u64,
        /// The media type it says.
        media_type: String,
        /// The image's size in the manifest.
        image_size: u64,
        /// The image's media type in the manifest.
        image_media_type: String,
    },
    /// A name points at another image.
    #[error("`{name}` points at `{found}`, the manifest says `{expected}`")]
    NamePointsElsewhere {
        /// The tag or digest pin.
        name: String,
        /// The digest `index.json` gives it.
        found: Digest,
        /// The digest the manifest gives it.
        expected: Digest,
    },
    /// A name of the manifest is missing.
    #[error("no descriptor names `{name}`")]
    Unnamed {
        /// The tag or digest pin.
        name: String,
    },
}

/// The state of one listed blob during the pass.
pub(crate) struct BlobState {
    pub(crate) size: u64,
    pub(crate) seen: bool,
    /// The base that supplies it (a delta's blob not in this file), by name or digest.
    pub(crate) from_base: Option<String>,
}

/// The signed manifest must agree with itself; returns its blobs by digest.
pub(crate) fn check_manifest(
    m: &BundleManifest,
) -> Result<HashMap<Digest, BlobState>, ManifestDefect> {
    let mut blobs = HashMap::with_capacity(m.blobs.len());
    for b in &m.blobs {
        let state = BlobState {
            size: b.size,
            seen: false,
            from_base: None,
        };
        if blobs.insert(b.digest.clone(), state).is_some() {
            return Err(ManifestDefect::BlobTwice {
                digest: b.digest.clone(),
            });
        }
    }
    for base in &m.bases {
        let name = base_name(base);
        for d in &base.blobs {
            match blobs.get_mut(d) {
                None => {
                    return Err(ManifestDefect::BaseBlobNotListed {
                        base: name,
                        digest: d.clone(),
                    })
                }
                Some(s) if s.from_base.is_some() => {
                    return Err(ManifestDefect::BaseBlobTwice { digest: d.clone() })
                }
                Some(s) => s.from_base = Some(name.clone()),
            }
        }
    }
    for i in &m.images {
        match blobs.get(&i.digest) {
            None => {
                return Err(ManifestDefect::ImageNotListed {
                    reference: i.reference.clone(),
                    digest: i.digest.clone(),
                })
            }
            Some(b) if b.size != i.size => {
                return Err(ManifestDefect::ImageSize {
                    reference: i.reference.clone(),
                    size: i.size,
                    digest: i.digest.clone(),
                    blob_size: b.size,
                })
            }
            Some(_) => {}
        }
        for a in &i.artifacts {
            match blobs.get(&a.digest) {
                None => {
                    return Err(ManifestDefect::ArtifactNotListed {
                        reference: i.reference.clone(),
                        digest: a.digest.clone(),
                    })
                }
                Some(b) if b.size != a.size => {
                    return Err(ManifestDefect::ArtifactSize {
                        reference: i.reference.clone(),
                        digest: a.digest.clone(),
                        size: a.size,
                        blob_size: b.size,
                    })
                }
                Some(_) => {}
            }
        }
    }
    if m.blobs
        .iter()
        .try_fold(0u64, |sum, b| sum.checked_add(b.size))
        .is_none()
    {
        return Err(ManifestDefect::SizesOverflow);
    }
    let totals = Totals::of(&m.images, &m.blobs);
    if totals != m.totals {
        return Err(ManifestDefect::Totals {
            stated: m.totals,
            counted: totals,
        });
    }
    Ok(blobs)
}

/// How a base is named in messages: its file name, else its digest.
pub(crate) fn base_name(base: &crate::manifest::BaseBundle) -> String {
    base.name.clone().unwrap_or_else(|| base.digest.to_string())
}

pub(crate) fn check_oci_layout(bytes: &[u8]) -> Result<(), OciLayoutDefect> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Layout {
        image_layout_version: String,
    }
    let layout: Layout = serde_json::from_slice(bytes).map_err(OciLayoutDefect::NotJson)?;
    if layout.image_layout_version != "1.0.0" {
        return Err(OciLayoutDefect::Version {
            found: layout.image_layout_version,
        });
    }
    Ok(())
}

pub(crate) const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Every descriptor is one of the manifest's images or tagged artifacts (same digest, size and
/// media type), and every image tag (or digest pin) and artifact tag is named.
pub(crate) fn check_index_json(bytes: &[u8], m: &BundleManifest) -> Result<(), IndexJsonDefect> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Index {
        schema_version: u32,
        manifests: Vec<Descriptor>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Descriptor {
        media_type: String,
        digest: Digest,
        size: u64,
        #[serde(default)]
        annotations: HashMap<String, String>,
    }
    let index: Index = serde_json::from_slice(bytes).map_err(IndexJsonDefect::NotJson)?;
    if index.schema_version != 2 {
        return Err(IndexJsonDefect::SchemaVersion {
            found: index.schema_version,
        });
    }
    let mut names: HashMap<&str, &Digest> = HashMap::new();
    for (i, d) in index.manifests.iter().enumerate() {
        let found = m
            .images
            .iter()
            .find(|img| img.digest == d.digest)
            .map(|img| (img.size, &img.media_type))
            .or_else(|| {
                m.images
                    .iter()
                    .flat_map(|img| &img.artifacts)
                    .find(|a| a.tag.is_some() && a.digest == d.digest)
                    .map(|a| (a.size, &a.media_type))
            });
        let Some((size, media_type)) = found else {
            return Err(IndexJsonDefect::NotAnImage {
                index: i,
                digest: d.digest.clone(),
            });
        };
        if size != d.size || *media_type != d.media_type {
            return Err(IndexJsonDefect::Descriptor {
                index: i,
                digest: d.digest.clone(),
                size: d.size,
                media_type: d.media_type.clone(),
                image_size: size,
                image_media_type: media_type.clone(),
            });
        }
        if let Some(name) = d.annotations.get(REF_NAME) {
            names.insert(name, &d.digest);
        }
    }
    for e in m.index_entries() {
        match names.get(e.name.as_str()) {
            Some(&d) if d == e.digest => {}
            Some(&d) => {
                return Err(IndexJsonDefect::NamePointsElsewhere {
                    name: e.name,
                    found: d.clone(),
                    expected: e.digest.clone(),
                })
            }
            None => return Err(IndexJsonDefect::Unnamed { name: e.name }),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{ArtifactKind, ArtifactRecord, BlobRecord, ImageRecord, SpecInfo};
    use crate::media;

    /// An image with one tag and a `.sig` artifact, both listed as blobs.
    fn signed() -> BundleManifest {
        let image = Digest::of_bytes(b"image");
        let sig = Digest::of_bytes(b"signature");
        let images = vec![ImageRecord {
            name: "r.lan/app".into(),
            reference: "r.lan/app:1".into(),
            tags: vec!["1".into()],
            digest: image.clone(),
            media_type: media::OCI_MANIFEST.into(),
            size: 5,
            source: "r.lan/app".into(),
            platforms: Vec::new(),
            original_digest: None,
            artifacts: vec![ArtifactRecord {
                subject: image.clone(),
                kind: ArtifactKind::Signature,
                digest: sig.clone(),
                media_type: media::OCI_MANIFEST.into(),
                size: 9,
                artifact_type: None,
                tag: Some(media::cosign_tag(&image, "sig")),
                certificate: None,
                verified: None,
            }],
            content: None,
        }];
        let blobs = vec![
            BlobRecord {
                digest: image,
                size: 5,
                media_type: media::OCI_MANIFEST.into(),
            },
            BlobRecord {
                digest: sig,
                size: 9,
                media_type: media::OCI_MANIFEST.into(),
            },
        ];
        BundleManifest {
            format_version: 2,
            created: "2026-12-01T00:00:00Z".into(),
            airlock_version: "0".into(),
            spec: SpecInfo {
                name: "s".into(),
                sha256: "0".repeat(64),
            },
            totals: Totals::of(&images, &blobs),
            images,
            blobs,
            bases: Vec::new(),
        }
    }

    fn index_of(entries: &[(&str, &Digest, u64)]) -> Vec<u8> {
        let manifests: Vec<serde_json::Value> = entries
            .iter()
            .map(|(name, digest, size)| {
                serde_json::json!({
                    "mediaType": media::OCI_MANIFEST,
                    "digest": digest.to_string(),
                    "size": size,
                    "annotations": {REF_NAME: name},
                })
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": manifests}))
            .unwrap()
    }

    #[test]
    fn artifacts_must_be_listed_with_their_size() {
        let m = signed();
        assert!(check_manifest(&m).is_ok());
        let sig = m.images[0].artifacts[0].digest.clone();
        let mut unlisted = m.clone();
        unlisted.blobs.retain(|b| b.digest != sig);
        unlisted.totals = Totals::of(&unlisted.images, &unlisted.blobs);
        assert_eq!(
            check_manifest(&unlisted).err(),
            Some(ManifestDefect::ArtifactNotListed {
                reference: "r.lan/app:1".into(),
                digest: sig.clone(),
            })
        );
        let mut resized = m;
        resized.images[0].artifacts[0].size = 10;
        let e = check_manifest(&resized).err().unwrap();
        assert!(matches!(e, ManifestDefect::ArtifactSize { .. }), "{e}");
        assert!(e.to_string().contains(&sig.to_string()), "{e}");
    }

    #[test]
    fn index_json_names_image_tags_and_artifact_tags_exactly() {
        let m = signed();
        let image = m.images[0].digest.clone();
        let sig = m.images[0].artifacts[0].digest.clone();
        let tag = format!(
            "r.lan/app:{}",
            m.images[0].artifacts[0].tag.as_ref().unwrap()
        );
        let good = index_of(&[("r.lan/app:1", &image, 5), (&tag, &sig, 9)]);
        check_index_json(&good, &m).unwrap();

        let missing = index_of(&[("r.lan/app:1", &image, 5)]);
        let e = check_index_json(&missing, &m).unwrap_err();
        assert!(
            matches!(e, IndexJsonDefect::Unnamed { ref name } if *name == tag),
            "{e}"
        );

        let elsewhere = index_of(&[("r.lan/app:1", &image, 5), (&tag, &image, 5)]);
        let e = check_index_json(&elsewhere, &m).unwrap_err();
        assert!(
            matches!(e, IndexJsonDefect::NamePointsElsewhere { ref expected, .. } if *expected == sig),
            "{e}"
        );

        let wrong_size = index_of(&[("r.lan/app:1", &image, 5), (&tag, &sig, 8)]);
        let e = check_index_json(&wrong_size, &m).unwrap_err();
        assert!(matches!(e, IndexJsonDefect::Descriptor { .. }), "{e}");

        // An untagged artifact (an OCI 1.1 referrer) is no entry of index.json.
        let mut referrer = m.clone();
        referrer.images[0].artifacts[0].tag = None;
        let e = check_index_json(&good, &referrer).unwrap_err();
        assert!(matches!(e, IndexJsonDefect::NotAnImage { .. }), "{e}");
        check_index_json(&missing, &referrer).unwrap();
    }
}
