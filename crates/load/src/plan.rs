//! What to push for each image: its blobs (configs and layers) and its manifests, children
//! first, read from the bundle and checked against the signed manifest.

use std::collections::{HashMap, HashSet};
use std::fs::File;

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

/// The small blobs (indexes, manifests, configs) of the bundle, read through the index and
/// checked against the manifest's sizes and digests: each one's bytes, or what is wrong.
pub fn read_small_blobs(
    file: &mut File,
    index: &FrameIndex,
    manifest: &BundleManifest,
) -> HashMap<Digest, Result<Bytes, String>> {
    let mut out = HashMap::new();
    for b in manifest
        .blobs
        .iter()
        .filter(|b| is_small_media_type(&b.media_type))
    {
        let result = match index.entry(&b.digest.blob_path()) {
            None => Err("it is not in the bundle's frame index".to_string()),
            Some(e) if e.size != b.size => Err(format!(
                "the frame index says {} bytes, the signed manifest {}",
                e.size, b.size
            )),
            Some(_) => match read_entry(file, index, &b.digest.blob_path()) {
                Err(e) => Err(airlock_layout_error(&e)),
                Ok(data) => {
                    let actual = Digest::of_bytes(&data);
                    if actual == b.digest && data.len() as u64 == b.size {
                        Ok(Bytes::from(data))
                    } else {
                        Err(format!(
                            "the bytes read ({} bytes) hash to `{actual}`, not to the digest \
                             the signed manifest lists",
                            data.len()
                        ))
                    }
                }
            },
        };
        out.insert(b.digest.clone(), result);
    }
    out
}

fn airlock_layout_error(e: &airlock_layout::Error) -> String {
    crate::error::render(e)
}

/// The plan of one image, or why it cannot be loaded.
pub fn plan_image(
    record: &ImageRecord,
    repository: String,
    blobs: &HashMap<&Digest, &BlobRecord>,
    small: &HashMap<Digest, Result<Bytes, String>>,
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
            Some(Err(problem)) => Err(bad(what, d, problem.clone())),
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
pub type SmallBlobs = HashMap<Digest, Result<Bytes, String>>;

/// The head of a bundle with its signature checked (or the check skipped on purpose), its
/// frame index, and its small blobs read and checked against the signed manifest: what every
/// load target starts from. Blocking: call it on a blocking thread.
pub fn open_verified(
    path: &std::path::Path,
    key: Option<&airlock_layout::VerifyingKey>,
    insecure_skip_signature: bool,
) -> Result<(airlock_layout::BundleHead, FrameIndex, SmallBlobs), crate::Error> {
    use crate::Error;
    let open = |p: &std::path::Path| {
        File::open(p).map_err(|source| Error::Open {
            path: p.to_owned(),
            source,
        })
    };
    let head = airlock_layout::read_head(std::io::BufReader::new(open(path)?)).map_err(|e| {
        Error::Head {
            path: path.to_owned(),
            source: Box::new(e),
        }
    })?;
    match (key, &head.signature) {
        (Some(key), Some(sig)) => {
            key.verify(&head.manifest_json, sig)
                .map_err(|source| Error::Signature {
                    path: path.to_owned(),
                    key: key.fingerprint(),
                    source: Box::new(source),
                })?
        }
        (Some(_), None) => {
            return Err(Error::Unsigned {
                path: path.to_owned(),
            })
        }
        (None, _) if !insecure_skip_signature => return Err(Error::NoKey),
        (None, _) => {}
    }
    // The index only locates bytes; everything read through it is hashed.
    let mut file = open(path)?;
    let index = FrameIndex::read_from(&mut file).map_err(|source| Error::Index {
        path: path.to_owned(),
        source: Box::new(source),
    })?;
    let small = read_small_blobs(&mut file, &index, &head.manifest);
    Ok((head, index, small))
}
