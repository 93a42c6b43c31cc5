//! What to push for each image: its blobs (configs and layers) and its manifests, children
//! first, read from the bundle and checked against the signed manifest.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::sync::Arc;

use airlock_layout::{
    is_small_media_type, read_entry, BlobRecord, BundleManifest, Digest, FrameIndex, ImageRecord,
};
use bytes::Bytes;
use serde::Deserialize;

use crate::error::ImageError;

/// One image to push.
#[derive(Debug, Clone)]
pub struct ImagePlan {
    /// As in the bundle.
    pub record: ImageRecord,
    /// `name:tag` (or `name@digest`), for messages.
    pub image: String,
    /// Where it lands, without the host.
    pub repository: String,
    /// Configs and layers, each once, in the order the manifests list them.
    pub blobs: Vec<BlobRecord>,
    /// Child manifests (by digest) then the top manifest or index: digest, media type, bytes.
    pub manifests: Vec<(Digest, String, Bytes)>,
}

/// The fields of a manifest or index that name other content.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<Desc>,
    config: Option<Desc>,
    #[serde(default)]
    layers: Vec<Desc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Desc {
    digest: Digest,
    #[serde(default)]
    media_type: Option<String>,
}

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Why a small blob of the bundle cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SmallBlobError {
    /// The frame index has no entry for it.
    #[error("it is not in the bundle's frame index")]
    NotIndexed,
    /// The frame index gives it another size than the signed manifest.
    #[error("the frame index says {index} bytes, the signed manifest {signed}")]
    Size {
        /// The size in the frame index.
        index: u64,
        /// The size in the signed manifest.
        signed: u64,
    },
    /// Reading it through the frame index failed. Said with its whole cause chain: the
    /// problem is told inside the message of the image that needs the blob.
    #[error("{}", crate::error::render(.0.as_ref()))]
    Read(Arc<airlock_layout::Error>),
    /// Its bytes do not hash to the digest the signed manifest lists.
    #[error(
        "the bytes read ({len} bytes) hash to `{actual}`, not to the digest the signed manifest \
         lists"
    )]
    Digest {
        /// Bytes read.
        len: usize,
        /// What they hash to.
        actual: Digest,
    },
}

/// The small blobs (indexes, manifests, configs) of the bundle, read through the index and
/// checked against the manifest's sizes and digests: each one's bytes, or what is wrong.
pub fn read_small_blobs(
    file: &mut File,
    index: &FrameIndex,
    manifest: &BundleManifest,
) -> SmallBlobs {
    let mut out = HashMap::new();
    for b in manifest
        .blobs
        .iter()
        .filter(|b| is_small_media_type(&b.media_type))
    {
        let result = match index.entry(&b.digest.blob_path()) {
            None => Err(SmallBlobError::NotIndexed),
            Some(e) if e.size != b.size => Err(SmallBlobError::Size {
                index: e.size,
                signed: b.size,
            }),
            Some(_) => match read_entry(file, index, &b.digest.blob_path()) {
                Err(e) => Err(SmallBlobError::Read(Arc::new(e))),
                Ok(data) => {
                    let actual = Digest::of_bytes(&data);
                    if actual == b.digest && data.len() as u64 == b.size {
                        Ok(Bytes::from(data))
                    } else {
                        Err(SmallBlobError::Digest {
                            len: data.len(),
                            actual,
                        })
                    }
                }
            },
        };
        out.insert(b.digest.clone(), result);
    }
    out
}

/// The plan of one image, or why it cannot be loaded.
pub fn plan_image(
    record: &ImageRecord,
    repository: String,
    blobs: &HashMap<&Digest, &BlobRecord>,
    small: &SmallBlobs,
) -> Result<ImagePlan, ImageError> {
    let image = match record.tags.first() {
        Some(t) => format!("{}:{t}", record.name),
        None => format!("{}@{}", record.name, record.digest),
    };
    let bad = |what: &'static str, digest: &Digest, problem: String| ImageError::BadBundleBlob {
        image: image.clone(),
        what,
        digest: digest.to_string(),
        problem,
    };
    let doc_bytes = |what: &'static str, d: &Digest| -> Result<Bytes, ImageError> {
        match small.get(d) {
            Some(Ok(b)) => Ok(b.clone()),
            Some(Err(problem)) => Err(bad(what, d, problem.to_string())),
            None => Err(bad(
                what,
                d,
                "it is not listed in the signed manifest".to_string(),
            )),
        }
    };
    let parse = |what: &'static str, d: &Digest, b: &[u8]| -> Result<Doc, ImageError> {
        serde_json::from_slice(b).map_err(|e| bad(what, d, format!("not valid JSON: {e}")))
    };

    let top = doc_bytes("manifest", &record.digest)?;
    let top_doc = parse("manifest", &record.digest, &top)?;
    let is_index = [OCI_INDEX, DOCKER_LIST].contains(&record.media_type.as_str())
        || !top_doc.manifests.is_empty();
    let mut manifests = Vec::new();
    let mut images: Vec<(Digest, Doc)> = Vec::new();
    if is_index {
        for child in &top_doc.manifests {
            let b = doc_bytes("manifest", &child.digest)?;
            let doc = parse("manifest", &child.digest, &b)?;
            if !doc.manifests.is_empty() {
                return Err(bad(
                    "index",
                    &child.digest,
                    "nested indexes are not supported".to_string(),
                ));
            }
            let media_type = child
                .media_type
                .clone()
                .or_else(|| doc.media_type.clone())
                .ok_or_else(|| bad("manifest", &child.digest, "no media type".to_string()))?;
            manifests.push((child.digest.clone(), media_type, b));
            images.push((child.digest.clone(), doc));
        }
    } else {
        images.push((record.digest.clone(), top_doc));
    }
    manifests.push((record.digest.clone(), record.media_type.clone(), top));

    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (manifest_digest, doc) in &images {
        for d in doc.config.iter().chain(&doc.layers) {
            if !seen.insert(d.digest.clone()) {
                continue;
            }
            let rec = blobs.get(&d.digest).ok_or_else(|| {
                bad(
                    "manifest",
                    manifest_digest,
                    format!(
                        "it references `{}`, which the signed manifest does not list",
                        d.digest
                    ),
                )
            })?;
            out.push((*rec).clone());
        }
    }
    Ok(ImagePlan {
        record: record.clone(),
        image,
        repository,
        blobs: out,
        manifests,
    })
}

/// The small blobs of a bundle: each one's checked bytes, or what is wrong with it.
pub type SmallBlobs = HashMap<Digest, Result<Bytes, SmallBlobError>>;
