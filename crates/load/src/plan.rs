//! What to push for each image: its blobs (configs and layers) and its manifests, children
//! first, read from the bundle and checked against the signed manifest.

use std::collections::HashMap;
use std::fs::File;

use airlock_layout::graph::{self, Problem, WalkError};
use airlock_layout::{
    is_small_media_type, read_entry, BlobRecord, BundleManifest, Digest, FrameIndex, ImageRecord,
};
use airlock_registry::{ClientOptions, ManifestTypes};
use bytes::Bytes;

use crate::error::ImageError;

/// One image to push.
#[derive(Debug, Clone)]
pub(crate) struct ImagePlan {
    /// As in the bundle.
    pub(crate) record: ImageRecord,
    /// `name:tag` (or `name@digest`), for messages.
    pub(crate) image: String,
    /// Where it lands, without the host.
    pub(crate) repository: String,
    /// Configs and layers, each once, in the order the manifests list them.
    pub(crate) blobs: Vec<BlobRecord>,
    /// Child manifests (by digest) then the top manifest or index: digest, media type, bytes.
    pub(crate) manifests: Vec<(Digest, String, Bytes)>,
}

/// The small blobs (indexes, manifests, configs) of the bundle, read through the index and
/// checked against the manifest's sizes and digests: each one's bytes, or what is wrong.
pub(crate) fn read_small_blobs(
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
pub(crate) fn plan_image(
    record: &ImageRecord,
    repository: String,
    blobs: &HashMap<&Digest, &BlobRecord>,
    small: &HashMap<Digest, Result<Bytes, String>>,
) -> Result<ImagePlan, ImageError> {
    let image = match record.tags.first() {
        Some(t) => format!("{}:{t}", record.name),
        None => format!("{}@{}", record.name, record.digest),
    };
    let bad = |what: &'static str, digest: &str, problem: String| ImageError::BadBundleBlob {
        image: image.clone(),
        what,
        digest: digest.to_string(),
        problem,
    };
    let top = graph::descriptor(&record.media_type, &record.digest, record.size);
    let mut bytes: HashMap<Digest, Bytes> = HashMap::new();
    let walked = graph::walk(&top, |node| {
        let d = &node.digest;
        let b = match small.get(d) {
            Some(Ok(b)) => b.clone(),
            Some(Err(problem)) => return Err(bad("manifest", &d.to_string(), problem.clone())),
            None => {
                return Err(bad(
                    "manifest",
                    &d.to_string(),
                    "it is not listed in the signed manifest".to_string(),
                ))
            }
        };
        bytes.insert(d.clone(), b.clone());
        Ok(b)
    });
    let graph = match walked {
        Ok(g) => g,
        Err(WalkError::Fetch(e)) => return Err(e),
        Err(WalkError::Graph(e)) => {
            let what = match e.problem {
                Problem::NestedIndex => "index",
                Problem::ConfigTooLarge { .. } => "config",
                _ => "manifest",
            };
            return Err(bad(what, &e.digest, e.problem.to_string()));
        }
    };
    // Child manifests, then the top (the walk's children-first order).
    let manifests = graph
        .documents()
        .into_iter()
        .map(|n| {
            let media_type = if n.depth == 0 {
                record.media_type.clone()
            } else {
                n.media_type.clone()
            };
            (n.digest.clone(), media_type, bytes[&n.digest].clone())
        })
        .collect();
    let mut out = Vec::new();
    for node in graph.blobs() {
        let rec = blobs.get(&node.digest).ok_or_else(|| {
            let parent = node.parent.as_ref().unwrap_or(&record.digest);
            bad(
                "manifest",
                &parent.to_string(),
                format!(
                    "it references `{}`, which the signed manifest does not list",
                    node.digest
                ),
            )
        })?;
        out.push((*rec).clone());
    }
    Ok(ImagePlan {
        record: record.clone(),
        image,
        repository,
        blobs: out,
        manifests,
    })
}

/// `client` with the manifest media types of the content model, unless it was given others:
/// the registry client knows none of its own.
pub(crate) fn with_manifest_types(mut client: ClientOptions) -> ClientOptions {
    use airlock_layout::media;
    if client.manifest_types == ManifestTypes::default() {
        client.manifest_types = ManifestTypes {
            accept: media::MANIFEST_ACCEPT.map(String::from).to_vec(),
            index: Some(media::OCI_INDEX.into()),
            manifest: Some(media::OCI_MANIFEST.into()),
            signed_payload: vec![media::DOCKER_SCHEMA1_SIGNED.into()],
        };
    }
    client
}

/// The small blobs of a bundle: each one's checked bytes, or what is wrong with it.
pub(crate) type SmallBlobs = HashMap<Digest, Result<Bytes, String>>;

/// The head of a bundle with its signature checked (or the check skipped on purpose), its
/// frame index, and its small blobs read and checked against the signed manifest: what every
/// load target starts from. Blocking: call it on a blocking thread.
pub(crate) fn open_verified(
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
