//! What to push for each image: its blobs (configs and layers) and its manifests, children
//! first, read from the bundle and checked against the signed manifest.

use std::collections::HashMap;
use std::sync::Arc;

use airlock_layout::graph::{self, Problem, WalkError};
use airlock_layout::{
    is_small_media_type, read_entry, ArtifactRecord, BlobRecord, BundleManifest, Digest,
    FrameIndex, ImageRecord,
};
use airlock_registry::{ClientOptions, ManifestTypes};
use bytes::Bytes;
use oci_spec::image::Descriptor;

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
    /// Its artifacts, in the manifest's order (subjects before what refers to them).
    pub artifacts: Vec<ArtifactPlan>,
}

/// One artifact of an image to push after the image: its blobs, then its manifest under its
/// cosign tag, or by digest as a referrer of its subject.
#[derive(Debug, Clone)]
pub struct ArtifactPlan {
    /// As in the bundle.
    pub record: ArtifactRecord,
    /// Its blobs (config and layers), each once.
    pub blobs: Vec<BlobRecord>,
    /// Child manifests (an artifact that is an index) then its own: digest, media type, bytes.
    pub manifests: Vec<(Digest, String, Bytes)>,
    /// Its entry in a referrers index: media type, digest, size, `artifactType` and
    /// annotations.
    pub descriptor: Descriptor,
}

impl ArtifactPlan {
    /// `signature `sha256:…` (tag `sha256-….sig`)`, for messages.
    pub fn describe(&self) -> String {
        describe_artifact(&self.record)
    }
}

/// `signature `sha256:…` (tag `sha256-….sig`)`, or `referrer `sha256:…` of `sha256:…``.
pub fn describe_artifact(a: &ArtifactRecord) -> String {
    match &a.tag {
        Some(tag) => format!("{} `{}` (tag `{tag}`)", a.kind, a.digest),
        None => format!("{} `{}` (referrer of `{}`)", a.kind, a.digest, a.subject),
    }
}

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
    /// A delta's document that its base supplies, and no base was given.
    #[error(
        "it comes from the delta's base {base}, which was not given\n  hint: give the base: \
         `--base BASE.tar.zst`, or `airlock serve BASE DELTA`"
    )]
    InBase {
        /// The base, named (`NAME` (`sha256:…`)).
        base: String,
    },
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
    file: &mut dyn airlock_layout::reader::ReadSeek,
    index: &FrameIndex,
    manifest: &BundleManifest,
) -> SmallBlobs {
    let mut out = HashMap::new();
    let from_bases = manifest.from_bases();
    for b in manifest
        .blobs
        .iter()
        .filter(|b| is_small_media_type(&b.media_type))
    {
        if let Some(base) = from_bases.get(&b.digest) {
            let base = crate::delta::describe_base(base);
            out.insert(b.digest.clone(), Err(SmallBlobError::InBase { base }));
            continue;
        }
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
    let bad = |what: &'static str, digest: &str, problem: String| ImageError::BadBundleBlob {
        image: image.clone(),
        what,
        digest: digest.to_string(),
        problem,
    };
    let top = graph::descriptor(&record.media_type, &record.digest, record.size);
    let (manifests, out, _) = walk_content(
        (&top, &record.media_type),
        &record.digest,
        blobs,
        small,
        &bad,
    )?;
    let mut artifacts = Vec::new();
    for a in &record.artifacts {
        let top = graph::descriptor(&a.media_type, &a.digest, a.size);
        let (manifests, blobs, doc) =
            walk_content((&top, &a.media_type), &a.digest, blobs, small, &bad)?;
        let mut descriptor = top;
        descriptor.set_artifact_type(
            a.artifact_type
                .clone()
                .or_else(|| doc.artifact_type())
                .map(|t| t.as_str().into()),
        );
        descriptor.set_annotations(doc.manifest().and_then(|m| m.annotations().clone()));
        artifacts.push(ArtifactPlan {
            record: a.clone(),
            blobs,
            manifests,
            descriptor,
        });
    }
    Ok(ImagePlan {
        record: record.clone(),
        image,
        repository,
        blobs: out,
        manifests,
        artifacts,
    })
}

type Walked = (
    Vec<(Digest, String, Bytes)>,
    Vec<BlobRecord>,
    graph::Document,
);

/// The documents (children first) and blobs of the content `top` names, from the bundle's
/// checked small blobs, and the top document.
fn walk_content(
    (top, top_media_type): (&Descriptor, &str),
    top_digest: &Digest,
    blobs: &HashMap<&Digest, &BlobRecord>,
    small: &SmallBlobs,
    bad: &dyn Fn(&'static str, &str, String) -> ImageError,
) -> Result<Walked, ImageError> {
    let mut bytes: HashMap<Digest, Bytes> = HashMap::new();
    let walked = graph::walk(top, |node| {
        let d = &node.digest;
        let b = match small.get(d) {
            Some(Ok(b)) => b.clone(),
            Some(Err(problem)) => return Err(bad("manifest", &d.to_string(), problem.to_string())),
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
    let manifests: Vec<(Digest, String, Bytes)> = graph
        .documents()
        .into_iter()
        .map(|n| {
            let media_type = if n.depth == 0 {
                top_media_type.to_string()
            } else {
                n.media_type.clone()
            };
            (n.digest.clone(), media_type, bytes[&n.digest].clone())
        })
        .collect();
    let mut out = Vec::new();
    for node in graph.blobs() {
        let rec = blobs.get(&node.digest).ok_or_else(|| {
            let parent = node.parent.as_ref().unwrap_or(top_digest);
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
    let doc = graph::Document::parse(top, &bytes[top_digest])
        .map_err(|e| bad("manifest", &e.digest, e.problem.to_string()))?;
    Ok((manifests, out, doc))
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
pub type SmallBlobs = HashMap<Digest, Result<Bytes, SmallBlobError>>;
