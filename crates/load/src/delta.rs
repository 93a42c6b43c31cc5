//! Loading a delta: the blobs its bases supply (listed in [`BundleManifest::bases`], not in
//! the file) taken from base files given with `--base`, or found in the target.
//!
//! [`attach_bases`] matches each base file to one of the delta's bases by its identity (the
//! sha256 of its `airlock/manifest.json`), hands the delta the base's checked documents, and
//! gives the [`Sources`] every blob is read from: the delta's file, or the base file that
//! carries it. What no base file carries must already be in the target: a registry load
//! looks for each such blob there ([`find_in_registry`]) before anything is pushed and stops
//! with [`MissingBaseBlobs`] when some are not.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io;
use std::path::PathBuf;

use airlock_layout::media::{self, Kind};
use airlock_layout::{BaseBundle, BundleManifest, Digest};
use airlock_registry::Client;
use bytes::Bytes;
use futures_util::{stream, Stream, StreamExt as _};
use serde::Serialize;
use tracing::debug;

use crate::error::Error;
use crate::offline::OpenBundle;
use crate::plan::ImagePlan;
use crate::source::{BundleSource, Progress};

/// Where each blob of a bundle is read from: the bundle's own file, or, for a delta, the base
/// file given with `--base` that carries it.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The bundle's own file.
    pub own: BundleSource,
    /// The blobs a base supplies, and the base.
    pub from_base: HashMap<Digest, BaseBundle>,
    /// The blobs of `from_base` a base file given carries, and that file.
    pub from_files: HashMap<Digest, BundleSource>,
}

impl Sources {
    /// The sources of a full bundle: its own file only.
    pub fn own(bundle: &OpenBundle) -> Sources {
        Sources {
            own: bundle.source(),
            from_base: HashMap::new(),
            from_files: HashMap::new(),
        }
    }

    /// The file `digest` is read from; `None` for a blob a base supplies that no base file
    /// given carries (it must be in the target).
    pub fn of(&self, digest: &Digest) -> Option<&BundleSource> {
        if self.from_base.contains_key(digest) {
            self.from_files.get(digest)
        } else {
            Some(&self.own)
        }
    }

    /// Whether `digest` is supplied by a base and no base file given carries it.
    pub fn needed_from_target(&self, digest: &Digest) -> bool {
        self.from_base.contains_key(digest) && !self.from_files.contains_key(digest)
    }

    /// Whether the frame index of the file `digest` is read from has an entry for it.
    pub(crate) fn has_entry(&self, digest: &Digest) -> bool {
        self.of(digest)
            .is_some_and(|s| s.index.entry(&digest.blob_path()).is_some())
    }

    /// [`BundleSource::stream`] from the file `digest` is read from.
    pub(crate) fn stream(
        &self,
        digest: &Digest,
        size: u64,
        offset: u64,
        progress: Option<Progress>,
    ) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
        self.of(digest)
            .unwrap_or(&self.own)
            .stream(digest, size, offset, progress)
    }
}

/// How a base is named in messages: `NAME` (`sha256:…`), or its digest.
pub fn describe_base(base: &BaseBundle) -> String {
    match &base.name {
        Some(name) => format!("`{name}` (`{}`)", base.digest),
        None => format!("`{}`", base.digest),
    }
}

/// Matches each of `bases` (opened under the same trust as the delta) to a base of `delta`
/// by its identity, gives the delta the documents (indexes, manifests, configs) each carries
/// for it, and returns where every blob is read from.
///
/// Refused: a base file the delta does not name ([`Error::WrongBase`]), one that does not
/// list a blob the delta takes from it ([`Error::BaseLacksBlob`]), base files for a bundle
/// that is no delta ([`Error::NotADelta`]). A base that is itself a delta carries only some
/// of its blobs: the others are looked for in the other base files, then in the target.
pub fn attach_bases(delta: &mut OpenBundle, bases: &[OpenBundle]) -> Result<Sources, Error> {
    let mut sources = Sources::own(delta);
    sources.from_base = delta
        .manifest
        .from_bases()
        .into_iter()
        .map(|(d, b)| (d.clone(), b.clone()))
        .collect();
    if bases.is_empty() {
        return Ok(sources);
    }
    if !delta.manifest.is_delta() {
        return Err(Error::NotADelta {
            path: delta.path.clone(),
        });
    }
    for file in bases {
        let Some(base) = delta
            .manifest
            .bases
            .iter()
            .find(|b| b.digest == file.identity)
        else {
            return Err(Error::WrongBase {
                path: file.path.clone(),
                identity: file.identity.clone(),
                delta: delta.path.clone(),
                expected: delta
                    .manifest
                    .bases
                    .iter()
                    .map(describe_base)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        let listed: HashSet<&Digest> = file.manifest.blobs.iter().map(|b| &b.digest).collect();
        let not_carried = file.manifest.from_bases();
        for d in &base.blobs {
            if !listed.contains(d) {
                return Err(Error::BaseLacksBlob {
                    path: file.path.clone(),
                    digest: d.clone(),
                });
            }
            if not_carried.contains_key(d) || sources.from_files.contains_key(d) {
                continue;
            }
            sources.from_files.insert(d.clone(), file.source());
            if let Some(Ok(bytes)) = file.small.get(d) {
                delta.small.insert(d.clone(), Ok(bytes.clone()));
            }
        }
    }
    Ok(sources)
}

/// A blob a delta's base supplies that neither a base file nor the target has.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MissingBaseBlob {
    /// The blob.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// The images that need it (empty when none could be planned: a document above it is
    /// missing too).
    pub images: Vec<String>,
    /// The base it should come from.
    pub base: BaseBundle,
}

/// Every blob of a delta missing from the target, none pushed (see [`Error::BaseBlobsMissing`]).
#[derive(Debug, Clone)]
pub struct MissingBaseBlobs(pub Vec<MissingBaseBlob>);

impl fmt::Display for MissingBaseBlobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in &self.0 {
            write!(f, "\n  `{}` ({} bytes", m.digest, m.size)?;
            if !m.images.is_empty() {
                let images: Vec<String> = m.images.iter().map(|i| format!("`{i}`")).collect();
                write!(f, ", for {}", images.join(", "))?;
            }
            write!(f, ") from the base {}", describe_base(&m.base))?;
        }
        Ok(())
    }
}

/// The documents (indexes, manifests, configs) a delta takes from a base that no base file
/// gave: fetched from the target by digest, from the repositories `repositories` in order,
/// then checked against their signed digest and size like every document of a bundle.
pub(crate) async fn fetch_documents(
    client: &Client,
    host: &str,
    bundle: &mut OpenBundle,
    sources: &Sources,
    repositories: &[String],
) {
    let wanted: Vec<(Digest, String, u64)> = bundle
        .manifest
        .blobs
        .iter()
        .filter(|b| media::is_small_media_type(&b.media_type))
        .filter(|b| sources.needed_from_target(&b.digest))
        .filter(|b| !matches!(bundle.small.get(&b.digest), Some(Ok(_))))
        .map(|b| (b.digest.clone(), b.media_type.clone(), b.size))
        .collect();
    let found: Vec<Option<(Digest, Bytes)>> = stream::iter(wanted)
        .map(|(digest, media_type, size)| async move {
            let d = digest.to_string();
            for repo in repositories {
                let got = match media::kind(&media_type) {
                    Kind::Index | Kind::Manifest => client
                        .get_manifest(host, repo, &d)
                        .await
                        .map(|m| m.bytes),
                    _ => client.get_blob_bytes(host, repo, &d, size).await,
                };
                match got {
                    Ok(bytes) if bytes.len() as u64 == size && Digest::of_bytes(&bytes) == digest => {
                        return Some((digest, bytes))
                    }
                    Ok(_) => debug!(%digest, repository = %repo, "the target's copy does not hash to its digest"),
                    Err(e) => debug!(%digest, repository = %repo, error = %e, "not in this repository"),
                }
            }
            None
        })
        .buffer_unordered(8)
        .collect()
        .await;
    for (digest, bytes) in found.into_iter().flatten() {
        bundle.small.insert(digest, Ok(bytes));
    }
}

/// Looks in the target for every blob `plans` take from a base that no base file carries:
/// `HEAD` in the repository of an image that needs it, then in the other repositories of
/// this load. Returns the repository each was found in, or every one missing (with the
/// documents still missing after [`fetch_documents`]).
pub(crate) async fn find_in_registry(
    client: &Client,
    host: &str,
    bundle: &OpenBundle,
    sources: &Sources,
    plans: &[ImagePlan],
    repositories: &[String],
    jobs: usize,
) -> Result<HashMap<Digest, String>, MissingBaseBlobs> {
    // Each blob's images and their repositories, in plan order.
    let mut needed: Vec<(Digest, u64)> = Vec::new();
    let mut users: HashMap<Digest, (Vec<String>, Vec<String>)> = HashMap::new();
    for p in plans {
        let artifact_blobs = p.artifacts.iter().flat_map(|a| &a.blobs);
        for b in p.blobs.iter().chain(artifact_blobs) {
            if !sources.needed_from_target(&b.digest) {
                continue;
            }
            let (images, repos) = users.entry(b.digest.clone()).or_insert_with(|| {
                needed.push((b.digest.clone(), b.size));
                Default::default()
            });
            if !images.contains(&p.image) {
                images.push(p.image.clone());
            }
            if !repos.contains(&p.repository) {
                repos.push(p.repository.clone());
            }
        }
    }
    // A document nobody could give hides what is below it: then every other blob of the
    // bases is looked for too, for the list of what is missing.
    let documents_missing = bundle.manifest.blobs.iter().any(|b| {
        media::is_small_media_type(&b.media_type)
            && sources.needed_from_target(&b.digest)
            && !matches!(bundle.small.get(&b.digest), Some(Ok(_)))
    });
    if documents_missing {
        for b in &bundle.manifest.blobs {
            if sources.needed_from_target(&b.digest)
                && !media::is_small_media_type(&b.media_type)
                && !users.contains_key(&b.digest)
            {
                users.insert(b.digest.clone(), Default::default());
                needed.push((b.digest.clone(), b.size));
            }
        }
    }
    let users = &users;
    let found: Vec<(Digest, u64, Option<String>)> = stream::iter(needed)
        .map(|(digest, size)| async move {
            let own = &users[&digest].1;
            let others = repositories.iter().filter(|r| !own.contains(r));
            let d = digest.to_string();
            for repo in own.iter().chain(others) {
                if let Ok(Some(_)) = client.blob_exists(host, repo, &d).await {
                    return (digest, size, Some(repo.clone()));
                }
            }
            (digest, size, None)
        })
        .buffer_unordered(jobs.max(1))
        .collect()
        .await;
    let mut homes = HashMap::new();
    let mut missing = Vec::new();
    for (digest, size, home) in found {
        match home {
            Some(repo) => {
                homes.insert(digest, repo);
            }
            None => missing.push(MissingBaseBlob {
                images: users[&digest].0.clone(),
                base: sources.from_base[&digest].clone(),
                digest,
                size,
            }),
        }
    }
    // Documents nobody could give: the images they head, when they head one.
    for b in &bundle.manifest.blobs {
        if media::is_small_media_type(&b.media_type)
            && sources.needed_from_target(&b.digest)
            && !matches!(bundle.small.get(&b.digest), Some(Ok(_)))
            && !missing.iter().any(|m| m.digest == b.digest)
        {
            missing.push(MissingBaseBlob {
                digest: b.digest.clone(),
                size: b.size,
                images: images_headed_by(&bundle.manifest, &b.digest),
                base: sources.from_base[&b.digest].clone(),
            });
        }
    }
    if missing.is_empty() {
        Ok(homes)
    } else {
        missing.sort_by(|a, b| a.digest.cmp(&b.digest));
        Err(MissingBaseBlobs(missing))
    }
}

/// The images (`name:tag`, or `name@digest`) whose top manifest or index is `digest`.
pub(crate) fn images_headed_by(manifest: &BundleManifest, digest: &Digest) -> Vec<String> {
    manifest
        .images
        .iter()
        .filter(|i| i.digest == *digest)
        .map(|i| match i.tags.first() {
            Some(t) => format!("{}:{t}", i.name),
            None => format!("{}@{}", i.name, i.digest),
        })
        .collect()
}

/// Every blob a delta's bases supply that no base file given carries, as missing: for a
/// target that is not asked (containerd, `--files-to`).
pub fn not_supplied(bundle: &OpenBundle, sources: &Sources) -> MissingBaseBlobs {
    let mut missing: Vec<MissingBaseBlob> = bundle
        .manifest
        .blobs
        .iter()
        .filter(|b| sources.needed_from_target(&b.digest))
        .map(|b| MissingBaseBlob {
            digest: b.digest.clone(),
            size: b.size,
            images: images_headed_by(&bundle.manifest, &b.digest),
            base: sources.from_base[&b.digest].clone(),
        })
        .collect();
    missing.sort_by(|a, b| a.digest.cmp(&b.digest));
    MissingBaseBlobs(missing)
}

/// What `verify DELTA --base BASE…` found, once every base file verified on its own.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BaseCheck {
    /// Each base file given and how many of the delta's blobs it carries (each listed in its
    /// signed manifest, and checked in its file by its own verification).
    pub supplied: Vec<(PathBuf, usize)>,
    /// The blobs of the bases that no file given carries: of a base not given, of a base
    /// that is itself a delta, or of an inventory (a registry's contents, which no file
    /// holds: load checks those in the target).
    pub missing: Vec<MissingBaseBlob>,
}

/// Matches `bases` to the delta's bases ([`attach_bases`]: a wrong base is refused, named)
/// and says what each supplies and what is still missing.
pub fn check_bases(delta: &mut OpenBundle, bases: &[OpenBundle]) -> Result<BaseCheck, Error> {
    let sources = attach_bases(delta, bases)?;
    let supplied = bases
        .iter()
        .map(|b| {
            let n = sources
                .from_files
                .values()
                .filter(|s| *s.path == b.path)
                .count();
            (b.path.clone(), n)
        })
        .collect();
    Ok(BaseCheck {
        supplied,
        missing: not_supplied(delta, &sources).0,
    })
}

/// `verify DELTA --base BASE…`: each base verified on its own under `trust` (every blob it
/// carries hashed), then matched to the delta's bases ([`check_bases`]). Blocking.
pub fn verify_bases(
    delta: &std::path::Path,
    bases: &[PathBuf],
    trust: &airlock_layout::Trust,
) -> Result<BaseCheck, Error> {
    use airlock_layout::Purpose;
    let mut opened = Vec::new();
    for base in bases {
        let file = airlock_layout::BundleFile::open(base)?;
        let report = airlock_layout::verify_bundle(file, trust.key());
        if let Some(e) = report.error {
            return Err(Error::BadBase {
                path: base.clone(),
                source: Box::new(e),
            });
        }
        opened.push(crate::offline::open(base, trust, Purpose::Verify)?);
    }
    let mut delta = crate::offline::open(delta, trust, Purpose::Verify)?;
    check_bases(&mut delta, &opened)
}
