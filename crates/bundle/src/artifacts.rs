//! The signatures, attestations, SBOMs and other referrers of an image, found where the image
//! was pulled from and carried with it.
//!
//! For every digest carried (the top manifest or index as stored, each platform manifest
//! kept), from the image's own source:
//! - cosign's tag scheme, `sha256-<hex>.sig`, `.att`, `.sbom` (looked up in the repository's
//!   tag list, asked for once per repository in a run, or asked for directly when the
//!   registry does not list tags);
//! - OCI 1.1 referrers, through the referrers API, or through its tag schema (`sha256-<hex>`
//!   holding an index) on a registry without the API (remembered per registry for the run);
//! - the same on what was found (a signature on an SBOM), a few levels deep.
//!
//! Each artifact's manifest, config and layers are fetched through the content graph and
//! verified; small blobs are stored now, large layers join the image's downloads.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use airlock_cosign::{Policy, SignatureLayer};
use airlock_layout::graph::{self, Role};
use airlock_layout::media;
use airlock_layout::{ArtifactKind, ArtifactRecord, BlobRecord, Digest};
use airlock_registry::{Lookup, ReferrersApi};
use bytes::Bytes;
use futures_util::future::join_all;
use oci_spec::image::{Descriptor, ImageIndex};
use tokio::sync::OnceCell;

use crate::error::{BlobError, ImageError};
use crate::pull::{Ctx, Source};
use crate::spec::ArtifactSelection;

/// How many levels of referrers of referrers are followed (1: only those of the image).
pub(crate) const MAX_DEPTH: usize = 3;

/// Blobs of an artifact up to this size are fetched while the image resolves; larger ones
/// are downloaded with the layers.
const SMALL_BLOB: u64 = 4 * 1024 * 1024;

/// The tags of a repository, or `None` when its registry does not list them.
type TagList = Option<Arc<HashSet<String>>>;

/// What a run learnt about its sources, shared by every image.
#[derive(Default)]
pub(crate) struct Discovery {
    /// The tags of each repository (`host/repository`); `None` when the registry did not list
    /// them.
    tags: Mutex<HashMap<String, Arc<OnceCell<TagList>>>>,
    /// Whether each registry host has the referrers API.
    referrers_api: ReferrersApi,
}

/// A digest whose artifacts are looked for.
#[derive(Debug, Clone)]
pub(crate) struct Subject {
    /// The digest (as served upstream).
    pub(crate) digest: Digest,
    /// Its platform, for a platform manifest of an index.
    pub(crate) platform: Option<String>,
    /// Whether the bundle holds it (a filtered index's upstream digest is not held).
    pub(crate) carried: bool,
}

/// One artifact found and fetched.
#[derive(Debug, Clone)]
pub(crate) struct Artifact {
    pub(crate) record: ArtifactRecord,
    /// Its blobs in write order (manifest first), and which of them are still to download.
    pub(crate) blobs: Vec<BlobRecord>,
    pub(crate) layers: Vec<BlobRecord>,
    /// For a signature: its layers' payloads and annotations.
    pub(crate) signature_layers: Vec<(Digest, Bytes, BTreeMap<String, String>)>,
}

/// Where an artifact was found, before it is fetched.
#[derive(Debug, Clone)]
struct Candidate {
    /// A cosign tag, or the digest of a referrer.
    reference: String,
    tag: Option<String>,
    /// The kind its tag says (`.sig`…), if found by tag.
    tag_kind: Option<ArtifactKind>,
    /// The artifact type its referrers descriptor says.
    artifact_type: Option<String>,
}

/// The kind of an artifact: by its cosign tag suffix, else by its `artifactType` (or config
/// media type), else by its layers' media types.
pub(crate) fn classify(
    tag_kind: Option<ArtifactKind>,
    artifact_type: Option<&str>,
    layer_types: &[&str],
) -> ArtifactKind {
    if let Some(k) = tag_kind {
        return k;
    }
    let by_type = |t: &str| -> Option<ArtifactKind> {
        let t = media::essence(t);
        match t.as_str() {
            media::COSIGN_SIGNATURE_ARTIFACT | media::COSIGN_SIMPLE_SIGNING => {
                Some(ArtifactKind::Signature)
            }
            media::IN_TOTO | media::DSSE_ENVELOPE => Some(ArtifactKind::Attestation),
            media::SPDX_JSON | media::CYCLONEDX_JSON => Some(ArtifactKind::Sbom),
            _ if t.starts_with(media::IN_TOTO.trim_end_matches("+json")) => {
                Some(ArtifactKind::Attestation)
            }
            _ => None,
        }
    };
    artifact_type
        .and_then(by_type)
        .or_else(|| layer_types.iter().find_map(|t| by_type(t)))
        .unwrap_or(ArtifactKind::Referrer)
}

/// The kind a cosign tag suffix names.
fn suffix_kind(suffix: &str) -> ArtifactKind {
    match suffix {
        "sig" => ArtifactKind::Signature,
        "att" => ArtifactKind::Attestation,
        _ => ArtifactKind::Sbom,
    }
}

fn kind_wanted(selection: &ArtifactSelection, kind: ArtifactKind) -> bool {
    match kind {
        ArtifactKind::Signature => selection.signatures,
        ArtifactKind::Attestation => selection.attestations,
        ArtifactKind::Sbom => selection.sboms,
        ArtifactKind::Referrer => true,
    }
}

/// Finds and fetches the artifacts of `subjects` (and theirs, [`MAX_DEPTH`] levels deep),
/// subjects before what refers to them.
///
/// With a `policy`, signatures are looked for even when the selection carries none (they are
/// needed to verify, and then not carried).
pub(crate) async fn discover(
    ctx: &Ctx,
    image: &str,
    source: &Source,
    selection: &ArtifactSelection,
    subjects: &[Subject],
    policy: bool,
) -> Result<Vec<(Subject, Vec<Artifact>)>, ImageError> {
    let mut out = Vec::new();
    let mut seen: HashSet<Digest> = subjects.iter().map(|s| s.digest.clone()).collect();
    let mut level: Vec<Subject> = subjects.to_vec();
    for depth in 0..MAX_DEPTH {
        if level.is_empty() {
            break;
        }
        let found = join_all(level.iter().map(|s| async move {
            let mut wanted = selection.clone();
            if policy && depth == 0 {
                wanted.signatures = true;
            }
            let r = artifacts_of(ctx, image, source, &wanted, &s.digest).await;
            (s.clone(), r)
        }))
        .await;
        let mut next = Vec::new();
        for (subject, r) in found {
            let mut list = Vec::new();
            for a in r? {
                if !seen.insert(a.record.digest.clone()) {
                    continue;
                }
                next.push(Subject {
                    digest: a.record.digest.clone(),
                    platform: subject.platform.clone(),
                    carried: subject.carried,
                });
                list.push(a);
            }
            out.push((subject, list));
        }
        level = next;
    }
    Ok(out)
}

/// The artifacts whose subject is `digest`: cosign tags, then referrers.
async fn artifacts_of(
    ctx: &Ctx,
    image: &str,
    source: &Source,
    selection: &ArtifactSelection,
    digest: &Digest,
) -> Result<Vec<Artifact>, ImageError> {
    let registry_error = |what: String, e: airlock_registry::Error| ImageError::Registry {
        image: image.to_string(),
        what,
        source_name: source.to_string(),
        source: Box::new(e),
    };
    let tags = tag_list(ctx, source).await;
    let suffixes: Vec<&str> = media::COSIGN_TAG_SUFFIXES
        .into_iter()
        .filter(|s| kind_wanted(selection, suffix_kind(s)))
        .collect();
    let mut candidates: Vec<Candidate> = suffixes
        .iter()
        .map(|s| media::cosign_tag(digest, s))
        .filter(|t| tags.as_ref().is_none_or(|list| list.contains(t)))
        .map(|t| Candidate {
            tag_kind: Some(suffix_kind(t.rsplit('.').next().unwrap_or_default())),
            reference: t.clone(),
            tag: Some(t),
            artifact_type: None,
        })
        .collect();
    if selection.referrers != crate::spec::ReferrerFilter::None {
        let listed = referrers(ctx, source, digest, selection, tags.as_deref())
            .await
            .map_err(|e| registry_error(format!("referrers of {digest}"), e))?;
        candidates.extend(listed);
    }
    let fetched = join_all(
        candidates
            .into_iter()
            .map(|c| async move { fetch_artifact(ctx, image, source, digest, c).await }),
    )
    .await;
    let mut out = Vec::new();
    for a in fetched {
        let Some(a) = a? else { continue };
        if kind_wanted(selection, a.record.kind)
            && (a.record.tag.is_some()
                || selection.referrers.keeps(a.record.artifact_type.as_deref()))
        {
            out.push(a);
        }
    }
    Ok(out)
}

/// The tags of `source`, asked for once per run; `None` when the registry does not list them.
/// Called early (while the image's own documents are fetched) so discovery starts with it.
pub(crate) async fn tag_list(ctx: &Ctx, source: &Source) -> Option<Arc<HashSet<String>>> {
    let cell = ctx
        .discovery
        .tags
        .lock()
        .expect("tag cache lock")
        .entry(source.to_string())
        .or_default()
        .clone();
    cell.get_or_init(|| async {
        match ctx.client.list_tags(&source.host, &source.repository).await {
            Ok(tags) => Some(Arc::new(tags.into_iter().collect())),
            Err(e) => {
                tracing::debug!(%source, error = %e, "no tag list; asking for each tag");
                None
            }
        }
    })
    .await
    .clone()
}

/// The referrers of `digest`: through the API when the registry has it, else through the tag
/// schema. Those the selection does not want are left out.
async fn referrers(
    ctx: &Ctx,
    source: &Source,
    digest: &Digest,
    selection: &ArtifactSelection,
    tags: Option<&HashSet<String>>,
) -> Result<Vec<Candidate>, airlock_registry::Error> {
    let filter = match &selection.referrers {
        crate::spec::ReferrerFilter::Types(t) if t.len() == 1 => Some(t[0].as_str()),
        _ => None,
    };
    // The first image to ask a registry learns whether it has the API; the others wait. A
    // registry that answers the first question with an error is taken to have none.
    let found = ctx
        .discovery
        .referrers_api
        .lookup(
            &ctx.client,
            &source.host,
            &source.repository,
            &digest.to_string(),
            filter,
        )
        .await?;
    if let Lookup::NoApiAfter(e) = &found {
        ctx.warn(format!(
            "`{}`: the referrers API answered with an error ({}); referrers are looked for through the tag schema",
            source.host,
            crate::error::render(e).lines().next().unwrap_or_default()
        ));
    }
    let index = if let Lookup::Api(r) = found {
        r.map(|r| r.bytes)
    } else {
        let tag = media::referrers_tag(digest);
        if tags.is_some_and(|t| !t.contains(&tag)) {
            None
        } else {
            match ctx
                .client
                .get_manifest(&source.host, &source.repository, &tag)
                .await
            {
                Ok(m) => Some(m.bytes),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e),
            }
        }
    };
    let Some(bytes) = index else {
        return Ok(Vec::new());
    };
    let index: ImageIndex = match serde_json::from_slice(&bytes) {
        Ok(i) => i,
        Err(e) => {
            ctx.warn(format!(
                "`{source}`: the referrers index of {digest} is not an OCI index ({e}); its referrers are not carried"
            ));
            return Ok(Vec::new());
        }
    };
    Ok(index
        .manifests()
        .iter()
        .filter(|d| {
            let t = d.artifact_type().as_ref().map(|t| t.to_string());
            selection.referrers.keeps(t.as_deref())
        })
        .map(|d: &Descriptor| Candidate {
            reference: d.digest().to_string(),
            tag: None,
            tag_kind: None,
            artifact_type: d.artifact_type().as_ref().map(|t| t.to_string()),
        })
        .collect())
}

/// Fetches one artifact and everything it names; `None` when a cosign tag is not there.
async fn fetch_artifact(
    ctx: &Ctx,
    image: &str,
    source: &Source,
    subject: &Digest,
    c: Candidate,
) -> Result<Option<Artifact>, ImageError> {
    let registry_error = |what: String, e: airlock_registry::Error| ImageError::Registry {
        image: image.to_string(),
        what,
        source_name: source.to_string(),
        source: Box::new(e),
    };
    let m = match ctx
        .client
        .get_manifest(&source.host, &source.repository, &c.reference)
        .await
    {
        Ok(m) => m,
        Err(e) if e.is_not_found() && c.tag.is_some() => return Ok(None),
        Err(e) => return Err(registry_error(format!("artifact `{}`", c.reference), e)),
    };
    let bad = |digest: &str, media_type: &str, message: String| ImageError::BadManifest {
        image: image.to_string(),
        digest: digest.to_string(),
        media_type: media_type.to_string(),
        message,
    };
    let media_type = graph::document_media_type(Some(&m.media_type), &m.bytes);
    let digest =
        Digest::parse(&m.digest).map_err(|e| bad(&m.digest, &media_type, e.to_string()))?;
    let top = graph::descriptor(&media_type, &digest, m.bytes.len() as u64);
    let gerr = |e: graph::GraphError| bad(&e.digest, &e.media_type, e.problem.to_string());
    let mut walk = graph::Walk::new(&top).map_err(gerr)?;
    let mut blobs = Vec::new();
    let mut layers = Vec::new();
    let mut layer_types: Vec<String> = Vec::new();
    let mut artifact_type = c.artifact_type.clone();
    let mut signature_layers = Vec::new();
    let mut own_subject = None;
    let mut pending_small: Vec<(Digest, u64, String, BTreeMap<String, String>)> = Vec::new();
    while let Some(node) = walk.next_node() {
        match node.role {
            Role::Document => {
                let data = if node.depth == 0 {
                    m.bytes.clone()
                } else {
                    ctx.client
                        .get_manifest(&source.host, &source.repository, &node.digest.to_string())
                        .await
                        .map_err(|e| registry_error(format!("manifest {}", node.digest), e))?
                        .bytes
                };
                let doc = walk.feed(&data).map_err(gerr)?;
                if node.depth == 0 {
                    own_subject = doc.subject();
                    if artifact_type.is_none() {
                        artifact_type = doc.artifact_type();
                    }
                }
                store(ctx, image, source, &node.digest, &data)?;
                blobs.push(BlobRecord {
                    digest: node.digest.clone(),
                    size: data.len() as u64,
                    media_type: node.media_type.clone(),
                });
            }
            Role::Config | Role::Layer => {
                let size = node.descriptor.size();
                if node.role == Role::Layer {
                    layer_types.push(node.media_type.clone());
                }
                let annotations: BTreeMap<String, String> = node
                    .descriptor
                    .annotations()
                    .as_ref()
                    .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default();
                if size <= SMALL_BLOB || node.role == Role::Config {
                    pending_small.push((
                        node.digest.clone(),
                        size,
                        node.media_type.clone(),
                        annotations,
                    ));
                } else {
                    let rec = BlobRecord {
                        digest: node.digest.clone(),
                        size,
                        media_type: node.media_type.clone(),
                    };
                    blobs.push(rec.clone());
                    layers.push(rec);
                }
            }
        }
    }
    let types: Vec<&str> = layer_types.iter().map(String::as_str).collect();
    let kind = classify(c.tag_kind, artifact_type.as_deref(), &types);
    let smalls = join_all(
        pending_small
            .iter()
            .map(|(d, size, _, _)| small_blob(ctx, image, source, d, *size)),
    )
    .await;
    let mut certificate = None;
    for ((d, size, mt, annotations), data) in pending_small.into_iter().zip(smalls) {
        let data = data?;
        if kind == ArtifactKind::Signature && media::essence(&mt) == media::COSIGN_SIMPLE_SIGNING {
            if certificate.is_none() {
                certificate = airlock_cosign::certificate_identity(&annotations);
            }
            signature_layers.push((d.clone(), data, annotations));
        }
        if !blobs.iter().any(|b: &BlobRecord| b.digest == d) {
            blobs.push(BlobRecord {
                digest: d,
                size,
                media_type: mt,
            });
        }
    }
    if c.tag.is_none() && own_subject.as_ref() != Some(subject) {
        ctx.warn(format!(
            "`{image}`: referrer {digest} listed for {subject} names another subject; it is not carried"
        ));
        return Ok(None);
    }
    Ok(Some(Artifact {
        record: ArtifactRecord {
            subject: subject.clone(),
            kind,
            digest,
            media_type,
            size: m.bytes.len() as u64,
            artifact_type,
            tag: c.tag,
            certificate,
            verified: None,
        },
        blobs,
        layers,
        signature_layers,
    }))
}

/// Stores verified bytes in the cache.
fn store(
    ctx: &Ctx,
    image: &str,
    source: &Source,
    digest: &Digest,
    bytes: &[u8],
) -> Result<(), ImageError> {
    ctx.store
        .put_bytes(digest, bytes)
        .map_err(|e| ImageError::Blob {
            image: image.to_string(),
            digest: digest.to_string(),
            source_name: source.to_string(),
            source: Box::new(BlobError::from(e)),
        })?;
    Ok(())
}

/// A small blob, from the cache when it is there and intact, else fetched, verified and
/// stored.
async fn small_blob(
    ctx: &Ctx,
    image: &str,
    source: &Source,
    digest: &Digest,
    size: u64,
) -> Result<Bytes, ImageError> {
    if ctx.store.has(digest, size) {
        if let Ok(data) = std::fs::read(ctx.store.path(digest)) {
            if Digest::of_bytes(&data) == *digest {
                return Ok(Bytes::from(data));
            }
        }
    }
    let data = ctx
        .client
        .get_blob_bytes(&source.host, &source.repository, &digest.to_string(), size)
        .await
        .map_err(|e| ImageError::Blob {
            image: image.to_string(),
            digest: digest.to_string(),
            source_name: source.to_string(),
            source: Box::new(BlobError::from(e)),
        })?;
    store(ctx, image, source, digest, &data)?;
    Ok(data)
}

/// Checks the signatures of `digest` among `artifacts` under `policy`: the verified one gets
/// its `verified` and `certificate`. A refusal names what was found.
pub(crate) fn verify(
    image: &str,
    digest: &Digest,
    artifacts: &mut [Artifact],
    policy: &Policy,
    policy_text: &str,
) -> Result<(), ImageError> {
    let layers: Vec<SignatureLayer<'_>> = artifacts
        .iter()
        .filter(|a| a.record.kind == ArtifactKind::Signature && a.record.subject == *digest)
        .flat_map(|a| &a.signature_layers)
        .map(|(d, payload, annotations)| SignatureLayer {
            digest: d,
            payload,
            annotations,
        })
        .collect();
    let found_none = layers.is_empty();
    match airlock_cosign::verify_image(digest, &layers, policy) {
        Ok(v) => {
            for a in artifacts.iter_mut() {
                if a.record.subject == *digest
                    && a.signature_layers.iter().any(|(d, _, _)| *d == v.layer)
                {
                    a.record.verified = Some(v.how.clone());
                    if v.certificate.is_some() {
                        a.record.certificate = v.certificate.clone();
                    }
                }
            }
            Ok(())
        }
        Err(refusal) => Err(ImageError::UpstreamSignature {
            image: image.to_string(),
            digest: digest.to_string(),
            policy: policy_text.to_string(),
            found: if found_none {
                Vec::new()
            } else {
                refusal.found
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_by_tag_type_and_layers() {
        assert_eq!(
            classify(
                Some(ArtifactKind::Sbom),
                Some(media::COSIGN_SIGNATURE_ARTIFACT),
                &[]
            ),
            ArtifactKind::Sbom,
            "the cosign tag suffix wins"
        );
        assert_eq!(
            classify(None, Some(media::COSIGN_SIGNATURE_ARTIFACT), &[]),
            ArtifactKind::Signature
        );
        assert_eq!(
            classify(None, Some("application/vnd.in-toto.provenance+json"), &[]),
            ArtifactKind::Attestation
        );
        assert_eq!(
            classify(None, Some(media::IN_TOTO), &[]),
            ArtifactKind::Attestation
        );
        assert_eq!(
            classify(None, None, &[media::DSSE_ENVELOPE]),
            ArtifactKind::Attestation
        );
        assert_eq!(
            classify(None, Some("application/spdx+json; charset=utf-8"), &[]),
            ArtifactKind::Sbom
        );
        assert_eq!(
            classify(None, Some(media::CYCLONEDX_JSON), &[]),
            ArtifactKind::Sbom
        );
        assert_eq!(
            classify(None, None, &[media::COSIGN_SIMPLE_SIGNING]),
            ArtifactKind::Signature
        );
        assert_eq!(
            classify(
                None,
                Some("application/vnd.example.report"),
                &[media::OCI_LAYER]
            ),
            ArtifactKind::Referrer
        );
        assert_eq!(classify(None, None, &[]), ArtifactKind::Referrer);
    }

    #[test]
    fn suffixes_name_kinds() {
        assert_eq!(suffix_kind("sig"), ArtifactKind::Signature);
        assert_eq!(suffix_kind("att"), ArtifactKind::Attestation);
        assert_eq!(suffix_kind("sbom"), ArtifactKind::Sbom);
        let none = ArtifactSelection::none();
        assert!(!kind_wanted(&none, ArtifactKind::Signature));
        assert!(kind_wanted(&ArtifactSelection::all(), ArtifactKind::Sbom));
    }
}
