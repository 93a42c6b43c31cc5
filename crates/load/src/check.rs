//! `airlock check BUNDLE --against registry://HOST/PREFIX`: whether everything a bundle holds
//! is in a registry under the names a load gives it, without downloading any layer.
//!
//! Per image, with the same trust and name rules as a load: every tag (`HEAD`, the same
//! digest), the top manifest or index and every child manifest by digest, every blob
//! (`HEAD`, the signed size); every artifact's manifest by digest and its blobs, each cosign
//! tag (the same digest), and each referrer listed for its subject, by the referrers API
//! where the registry has one, else in the referrers tag index (`sha256-<subject hex>`). What is not there is *missing*, what is there with another
//! digest or size is *different*, and a question the registry did not answer is
//! *unreachable*: the three are told apart.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use airlock_layout::{media, Digest, SignatureCheck};
use airlock_registry::Client;
use futures_util::{stream, StreamExt as _};
use serde::Serialize;

use crate::error::Error;
use crate::names::NameMapper;
use crate::offline::{open_all, plan, PlannedBundle};
use crate::plan::{describe_artifact, ImagePlan};
use crate::{FailedImage, LoadOptions, Purpose};

/// What `airlock check` found; serialises as its `--json` report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    /// The bundle file.
    pub bundle: PathBuf,
    /// The target, `registry://HOST[/PREFIX]`.
    pub target: String,
    /// Whether the bundle's signature was checked, and with which key.
    pub signature: SignatureCheck,
    /// Every image checked, in the manifest's order.
    pub images: Vec<ImageCheck>,
    /// Everything missing, different or unreachable, by image.
    pub problems: Vec<CheckProblem>,
    /// Images the bundle itself cannot tell the content of (damaged small blobs).
    pub unreadable: Vec<FailedImage>,
    /// Counts.
    pub totals: CheckTotals,
    /// Wall time.
    pub seconds: f64,
}

impl CheckReport {
    /// Whether everything is in the target.
    pub fn complete(&self) -> bool {
        self.problems.is_empty() && self.unreadable.is_empty()
    }
}

/// One image checked.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageCheck {
    /// The canonical reference in the bundle.
    pub image: String,
    /// `HOST/REPOSITORY` it was looked for at.
    pub repository: String,
    /// Tags, manifests, blobs, artifacts and referrers asked for.
    pub checked: u64,
    /// Of those, not as the bundle has them.
    pub problems: u64,
}

/// One thing not as the bundle has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckProblem {
    /// The canonical reference of the image.
    pub image: String,
    /// What was looked for.
    pub what: Item,
    /// Where: `HOST/REPO:TAG`, `HOST/REPO@DIGEST`.
    pub reference: String,
    /// The digest (or, for a blob, `DIGEST (N bytes)`) the bundle has.
    pub expected: String,
    /// For an artifact or referrer: which one (kind, digest, tag or subject).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
    /// What was found.
    pub found: Found,
}

/// What a [`CheckProblem`] looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Item {
    /// A tag of the image.
    Tag,
    /// A manifest or index of the image, by digest.
    Manifest,
    /// A config or layer of the image.
    Blob,
    /// An artifact's manifest, by digest.
    ArtifactManifest,
    /// A config or layer of an artifact.
    ArtifactBlob,
    /// A cosign tag (`sha256-<hex>.sig`).
    CosignTag,
    /// A referrer listed for its subject.
    Referrer,
}

impl Item {
    /// `tag`, `manifest`, `blob`, `artifact manifest`, `artifact blob`, `cosign tag`,
    /// `referrer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Item::Tag => "tag",
            Item::Manifest => "manifest",
            Item::Blob => "blob",
            Item::ArtifactManifest => "artifact manifest",
            Item::ArtifactBlob => "artifact blob",
            Item::CosignTag => "cosign tag",
            Item::Referrer => "referrer",
        }
    }
}

/// What the target has where the bundle's content should be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum Found {
    /// Nothing (404; for a referrer: not listed for its subject).
    Missing,
    /// Something else: another digest (a tag), another size (a blob), or not an index (the
    /// referrers tag).
    Different {
        /// What is there.
        actual: String,
    },
    /// The registry did not answer the question.
    Unreachable {
        /// Why, with causes.
        error: String,
    },
}

/// Counts over a [`CheckReport`].
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckTotals {
    /// Images checked.
    pub images: u64,
    /// Things asked for.
    pub checked: u64,
    /// Missing.
    pub missing: u64,
    /// Different.
    pub different: u64,
    /// Unreachable.
    pub unreachable: u64,
}

/// One question to the target.
struct Probe {
    image: usize,
    what: Item,
    repository: String,
    /// A manifest reference (tag or digest) or a blob digest.
    reference: String,
    /// The digest the answer must have.
    digest: Digest,
    /// A blob's size; a referrer's subject.
    size: u64,
    subject: Option<Digest>,
    artifact: Option<String>,
}

/// Checks that every image of the bundle `opts` names is in its target, as a load into it
/// would put it (`opts.harbor_create_projects` is not used).
///
/// Fails as a whole on a bad signature, an unreadable bundle, a name collision or a target
/// that does not answer `/v2/`; everything else is in the report.
pub async fn check(opts: LoadOptions) -> Result<CheckReport, Error> {
    let started = Instant::now();
    let mapper = NameMapper {
        prefix: opts.target.prefix.clone(),
        rule: opts.rule,
        rewrites: opts.rewrites,
    };
    let opened = open_all(vec![opts.bundle.clone()], &opts.trust, Purpose::Verify).await?;
    let PlannedBundle { bundle, images } = plan(opened, &mapper)?
        .pop()
        .expect("one bundle opened, one planned");
    let host = opts.target.host.clone();
    let client = Client::new(crate::plan::with_manifest_types(opts.client))
        .map_err(|e| Error::Client(Box::new(e)))?;
    client
        .ping(&host)
        .await
        .map_err(|source| Error::CheckTarget {
            target: opts.target.to_string(),
            source: Box::new(source),
        })?;

    let mut checks = Vec::new();
    let mut unreadable = Vec::new();
    let mut probes = Vec::new();
    for image in images {
        match image.plan {
            Ok(p) => {
                probes.extend(probes_of(checks.len(), &p));
                checks.push(ImageCheck {
                    image: p.image.clone(),
                    repository: format!("{host}/{}", p.repository),
                    checked: 0,
                    problems: 0,
                });
            }
            Err(e) => unreadable.push(FailedImage {
                image: e.image().to_string(),
                error: crate::error::render(&e),
                artifact: None,
            }),
        }
    }
    let client = Arc::new(client);
    let answers: Vec<(Probe, Option<Found>)> = stream::iter(probes)
        .map(|probe| {
            let (client, host) = (client.clone(), host.clone());
            async move {
                let found = ask(&client, &host, &probe).await;
                (probe, found)
            }
        })
        .buffered(opts.jobs.max(1))
        .collect()
        .await;

    let mut totals = CheckTotals {
        images: checks.len() as u64,
        ..CheckTotals::default()
    };
    let mut problems = Vec::new();
    for (probe, found) in answers {
        let c = &mut checks[probe.image];
        c.checked += 1;
        totals.checked += 1;
        let Some(found) = found else { continue };
        c.problems += 1;
        match found {
            Found::Missing => totals.missing += 1,
            Found::Different { .. } => totals.different += 1,
            Found::Unreachable { .. } => totals.unreachable += 1,
        }
        let expected = match probe.what {
            Item::Blob | Item::ArtifactBlob => format!("{} ({} bytes)", probe.digest, probe.size),
            _ => probe.digest.to_string(),
        };
        problems.push(CheckProblem {
            image: c.image.clone(),
            what: probe.what,
            reference: reference(&host, &probe.repository, &probe.reference),
            expected,
            artifact: probe.artifact,
            found,
        });
    }
    Ok(CheckReport {
        bundle: opts.bundle,
        target: opts.target.to_string(),
        signature: bundle.signature,
        images: checks,
        problems,
        unreadable,
        totals,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Everything to ask about one image, in the order a load pushes it.
fn probes_of(image: usize, p: &ImagePlan) -> Vec<Probe> {
    let probe = |what, reference: String, digest: &Digest, size, artifact: Option<String>| Probe {
        image,
        what,
        repository: p.repository.clone(),
        reference,
        digest: digest.clone(),
        size,
        subject: None,
        artifact,
    };
    let mut out = Vec::new();
    for b in &p.blobs {
        out.push(probe(
            Item::Blob,
            b.digest.to_string(),
            &b.digest,
            b.size,
            None,
        ));
    }
    for (d, _, _) in &p.manifests {
        out.push(probe(Item::Manifest, d.to_string(), d, 0, None));
    }
    for t in &p.record.tags {
        out.push(probe(Item::Tag, t.clone(), &p.record.digest, 0, None));
    }
    for a in &p.artifacts {
        let name = Some(describe_artifact(&a.record));
        for b in &a.blobs {
            let r = b.digest.to_string();
            out.push(probe(
                Item::ArtifactBlob,
                r,
                &b.digest,
                b.size,
                name.clone(),
            ));
        }
        for (d, _, _) in &a.manifests {
            out.push(probe(
                Item::ArtifactManifest,
                d.to_string(),
                d,
                0,
                name.clone(),
            ));
        }
        let digest = &a.record.digest;
        match &a.record.tag {
            Some(t) => out.push(probe(Item::CosignTag, t.clone(), digest, 0, name.clone())),
            None => out.push(Probe {
                subject: Some(a.record.subject.clone()),
                ..probe(
                    Item::Referrer,
                    media::referrers_tag(&a.record.subject),
                    digest,
                    0,
                    name.clone(),
                )
            }),
        }
    }
    out
}

/// What is wrong with `probe` in the target, or `None` when it is there as the bundle has it.
async fn ask(client: &Client, host: &str, probe: &Probe) -> Option<Found> {
    let unreachable = |e: airlock_registry::Error| Found::Unreachable {
        error: crate::error::render(&e),
    };
    let repo = probe.repository.as_str();
    match probe.what {
        Item::Blob | Item::ArtifactBlob => {
            match client.blob_exists(host, repo, &probe.reference).await {
                Ok(Some(size)) if size == probe.size => None,
                Ok(Some(size)) => Some(Found::Different {
                    actual: format!("{size} bytes"),
                }),
                Ok(None) => Some(Found::Missing),
                Err(e) => Some(unreachable(e)),
            }
        }
        Item::Referrer => {
            let subject = probe.subject.as_ref().expect("a referrer has its subject");
            // The referrers API where the registry has one, else the tag schema.
            match client
                .referrers(host, repo, &subject.to_string(), None)
                .await
            {
                Ok(Some(found)) => return listed(&found.bytes, &probe.digest),
                Ok(None) => {}
                Err(e) => return Some(unreachable(e)),
            }
            let tag = media::referrers_tag(subject);
            match client.get_manifest(host, repo, &tag).await {
                Ok(found) => listed(&found.bytes, &probe.digest),
                Err(e) if e.is_not_found() => Some(Found::Missing),
                Err(e) => Some(unreachable(e)),
            }
        }
        _ => match client.manifest_exists(host, repo, &probe.reference).await {
            Ok(Some(d)) if d == probe.digest.to_string() => None,
            Ok(Some(d)) => Some(Found::Different { actual: d }),
            Ok(None) => Some(Found::Missing),
            Err(e) => Some(unreachable(e)),
        },
    }
}

/// Whether the referrers index `bytes` lists `digest`.
fn listed(bytes: &[u8], digest: &Digest) -> Option<Found> {
    match serde_json::from_slice::<oci_spec::image::ImageIndex>(bytes) {
        Ok(index) => {
            let want = digest.to_string();
            let there = index
                .manifests()
                .iter()
                .any(|d| d.digest().to_string() == want);
            (!there).then_some(Found::Missing)
        }
        Err(e) => Some(Found::Different {
            actual: format!("not an OCI index ({e})"),
        }),
    }
}

fn reference(host: &str, repo: &str, reference: &str) -> String {
    if reference.starts_with("sha256:") {
        format!("{host}/{repo}@{reference}")
    } else {
        format!("{host}/{repo}:{reference}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_referrer_is_listed_or_missing_and_a_non_index_is_different() {
        let d = Digest::of_bytes(b"referrer");
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_INDEX,
            "manifests": [{"mediaType": media::OCI_MANIFEST, "digest": d.to_string(), "size": 3}],
        });
        let bytes = serde_json::to_vec(&index).unwrap();
        assert_eq!(listed(&bytes, &d), None);
        assert_eq!(
            listed(&bytes, &Digest::of_bytes(b"other")),
            Some(Found::Missing)
        );
        assert!(matches!(listed(b"[]", &d), Some(Found::Different { .. })));
    }
}
