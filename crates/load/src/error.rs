//! Errors of the offline side.
//!
//! [`Error`] stops a load before anything is pushed (or, for [`Error::Join`], mid-way);
//! [`ImageError`] fails one image while the others go on. Each names its subject: the bundle
//! file, the image, the digest, the target.

use std::path::PathBuf;
use std::sync::Arc;

use crate::names::NameError;

/// Everything that stops a load as a whole. None of these happens after the first byte was
/// sent, except [`Error::Join`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bundle file could not be opened.
    #[error("cannot open the bundle `{}`", path.display())]
    Open {
        /// The bundle file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A split bundle's part list or one of its parts cannot be used.
    #[error(transparent)]
    Parts(#[from] airlock_layout::VolumeError),
    /// The head of the bundle (`airlock/manifest.json` and its signature) could not be read.
    #[error("cannot read the head of the bundle `{}`", path.display())]
    Head {
        /// The bundle file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Box<airlock_layout::VerifyError>,
    },
    /// The bundle is not trusted: no signature where a key was given, or one that does not
    /// verify.
    #[error(transparent)]
    Trust(#[from] airlock_layout::TrustError),
    /// The trailing frame index of the bundle could not be read.
    #[error(
        "cannot read the frame index of the bundle `{}`\n  hint: the file may be cut short; \
         check it with `airlock verify`",
        path.display()
    )]
    Index {
        /// The bundle file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Box<airlock_layout::Error>,
    },
    /// Two images map to one repository, or a mapping option is malformed.
    #[error("names: {0}")]
    Names(#[from] NameError),
    /// An image maps to a name the registry would refuse.
    #[error(
        "`{image}` would land at `{repository}`, which is not a valid repository name: \
         {reason}\n  hint: use --names drop-host or flat, or --rewrite FROM=TO"
    )]
    BadRepository {
        /// The canonical image name.
        image: String,
        /// Where it would land.
        repository: String,
        /// Why the name is refused.
        reason: String,
    },
    /// The registry client could not be set up (a CA file, an auth file).
    #[error("cannot set up the registry client")]
    Client(#[source] Box<airlock_registry::Error>),
    /// The target does not answer `/v2/` with the given credentials.
    #[error("the target `{target}` does not answer `/v2/`; nothing was pushed")]
    Target {
        /// The target as given.
        target: String,
        /// The cause (with its hint: address, CA, credentials).
        #[source]
        source: Box<airlock_registry::Error>,
    },
    /// The target of `airlock check` does not answer `/v2/` with the given credentials.
    #[error("the target `{target}` does not answer `/v2/`; nothing was checked")]
    CheckTarget {
        /// The target as given.
        target: String,
        /// The cause (with its hint: address, CA, credentials).
        #[source]
        source: Box<airlock_registry::Error>,
    },
    /// Harbor projects are missing or could not be created.
    #[error(transparent)]
    Harbor(#[from] crate::harbor::HarborError),
    /// A blocking task panicked or was cancelled.
    #[error("internal task failed")]
    Join(#[from] tokio::task::JoinError),
    /// `--base` was given for a bundle that is no delta.
    #[error(
        "`{}` is a full bundle, not a delta: it needs no --base\n  hint: load it without --base",
        path.display()
    )]
    NotADelta {
        /// The bundle.
        path: PathBuf,
    },
    /// A base file given is none of the delta's bases.
    #[error(
        "`{}` is not a base of the delta `{}`: its manifest digest is `{identity}`, the delta \
         was made against {expected}\n  hint: give the bundle the delta was made against",
        path.display(), delta.display()
    )]
    WrongBase {
        /// The base file given.
        path: PathBuf,
        /// The sha256 of its `airlock/manifest.json`.
        identity: airlock_layout::Digest,
        /// The delta.
        delta: PathBuf,
        /// The delta's bases, named.
        expected: String,
    },
    /// A base file given to `verify --base` fails its own verification.
    #[error("the base `{}` is BAD", path.display())]
    BadBase {
        /// The base file.
        path: PathBuf,
        /// What its verification found.
        #[source]
        source: Box<airlock_layout::VerifyError>,
    },
    /// A base file does not list a blob the delta takes from it.
    #[error(
        "the base `{}` does not list blob `{digest}`, which the delta takes from it\n  hint: \
         check both with `airlock verify DELTA --base BASE`",
        path.display()
    )]
    BaseLacksBlob {
        /// The base file.
        path: PathBuf,
        /// The blob.
        digest: airlock_layout::Digest,
    },
    /// Blobs a delta takes from its bases are neither in a base file given nor in the target.
    #[error(
        "the delta `{}` needs {} blobs of its bases that {target}; nothing was \
         loaded:{missing}\n  hint: load the base first, or give it with --base BASE.tar.zst",
        bundle.display(), missing.0.len()
    )]
    BaseBlobsMissing {
        /// The delta.
        bundle: PathBuf,
        /// Where they were looked for: `the target `registry://…` does not have`, `no --base
        /// file carries`.
        target: String,
        /// Each missing blob.
        missing: crate::delta::MissingBaseBlobs,
    },
}

/// Why one image was not loaded. No tag of it was pushed.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A manifest, index or config in the bundle is missing, damaged, or does not match the
    /// signed manifest.
    #[error("`{image}`: {what} `{digest}` in the bundle: {problem}")]
    BadBundleBlob {
        /// The canonical reference.
        image: String,
        /// "manifest", "index", "config".
        what: &'static str,
        /// The blob.
        digest: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A blob the image references could not be pushed (shared by every image that
    /// references it).
    #[error("`{image}`: blob `{digest}` was not loaded")]
    Blob {
        /// The canonical reference.
        image: String,
        /// The blob.
        digest: String,
        /// The cause.
        #[source]
        source: Arc<BlobError>,
    },
    /// A manifest or tag could not be pushed.
    #[error("`{image}`: pushing manifest `{reference}` failed")]
    Manifest {
        /// The canonical reference.
        image: String,
        /// `HOST/REPO:TAG` or `HOST/REPO@DIGEST`.
        reference: String,
        /// The cause.
        #[source]
        source: Box<airlock_registry::Error>,
    },
    /// An artifact of the image (a signature, attestation, SBOM or referrer) could not be
    /// pushed; the image itself and its tags are in the target.
    #[error("`{image}`: {artifact} was not loaded")]
    Artifact {
        /// The canonical reference.
        image: String,
        /// Its kind, digest and tag or subject (`signature `sha256:…` (tag `sha256-….sig`)`).
        artifact: String,
        /// The cause.
        #[source]
        source: ArtifactError,
    },
}

/// Why an artifact could not be pushed.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// One of its blobs.
    #[error("blob `{digest}`")]
    Blob {
        /// The blob.
        digest: String,
        /// The cause.
        #[source]
        source: Arc<BlobError>,
    },
    /// Its manifest, or the referrers index of its subject.
    #[error("pushing manifest `{reference}` failed")]
    Manifest {
        /// `HOST/REPO:TAG` or `HOST/REPO@DIGEST`.
        reference: String,
        /// The cause.
        #[source]
        source: Box<airlock_registry::Error>,
    },
    /// The referrers index already under the subject's tag cannot be read.
    #[error(
        "the referrers index `{reference}` is not an OCI index: {problem}\n  hint: it is left \
         as it is; delete the tag if nothing needs it, then load again"
    )]
    ReferrersIndex {
        /// `HOST/REPO:sha256-<hex>`.
        reference: String,
        /// Why it cannot be read.
        problem: serde_json::Error,
    },
}

impl ImageError {
    /// The canonical reference of the image concerned.
    pub fn image(&self) -> &str {
        match self {
            ImageError::BadBundleBlob { image, .. }
            | ImageError::Blob { image, .. }
            | ImageError::Manifest { image, .. }
            | ImageError::Artifact { image, .. } => image,
        }
    }
}

/// Why one blob could not be pushed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The registry refused it, or the bytes read from the bundle failed verification (then
    /// the cause chain says `does not match the signed manifest`).
    #[error(transparent)]
    Registry(#[from] Box<airlock_registry::Error>),
    /// The bundle's frame index has no entry for it, or one of the wrong size.
    #[error("the bundle's frame index {problem}\n  hint: check the bundle with `airlock verify`")]
    Index {
        /// What is wrong.
        problem: String,
    },
    /// A blob a delta's base supplies, found in another repository of the target, could not
    /// be mounted from there (and the delta does not carry it).
    #[error(
        "it comes from the delta's base and is in `{from}`, but the registry refused to mount \
         it from there\n  hint: give the base with --base BASE.tar.zst"
    )]
    NotMounted {
        /// The repository that holds it.
        from: String,
    },
}

pub use airlock_registry::render_error as render;

/// containerd's answer to a call, as messages quote it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("containerd says {:?}: {}", .0.code(), .0.message())]
pub struct Said(pub Arc<containerd_client::tonic::Status>);

impl From<containerd_client::tonic::Status> for Said {
    fn from(s: containerd_client::tonic::Status) -> Said {
        Said(Arc::new(s))
    }
}

/// Why one image was not loaded into containerd. None of its image records was written.
#[derive(Debug, thiserror::Error)]
pub enum ContainerdImageError {
    /// It could not be planned (a manifest, index or config in the bundle is bad).
    #[error(transparent)]
    Plan(#[from] ImageError),
    /// A config or layer could not be written (shared by every image that uses it).
    #[error("`{image}`: blob `{digest}` was not loaded")]
    Blob {
        /// The canonical reference.
        image: String,
        /// The blob.
        digest: airlock_layout::Digest,
        /// The cause.
        #[source]
        source: ContentError,
    },
    /// A manifest or index of the image is not JSON.
    #[error("`{image}`: manifest `{digest}`: not valid JSON: {error}")]
    ManifestJson {
        /// The canonical reference.
        image: String,
        /// The manifest.
        digest: airlock_layout::Digest,
        /// What the content graph found wrong with it.
        error: airlock_layout::graph::Problem,
    },
    /// A manifest or index could not be written.
    #[error("`{image}`: manifest `{digest}` was not loaded")]
    Manifest {
        /// The canonical reference.
        image: String,
        /// The manifest.
        digest: airlock_layout::Digest,
        /// The cause.
        #[source]
        source: ContentError,
    },
    /// Its layers could not be unpacked into the snapshotter.
    #[error("`{image}`: unpacking failed")]
    Unpack {
        /// The canonical reference.
        image: String,
        /// The cause.
        #[source]
        source: UnpackError,
    },
    /// An image record could not be looked up, created or updated.
    #[error("`{image}`: {action} the image `{name}`")]
    Record {
        /// The canonical reference.
        image: String,
        /// "looking up", "creating", "updating".
        action: &'static str,
        /// The image record's name.
        name: String,
        /// containerd's answer.
        #[source]
        source: Said,
    },
}

impl ContainerdImageError {
    /// The canonical reference of the image concerned.
    pub fn image(&self) -> &str {
        match self {
            ContainerdImageError::Plan(e) => e.image(),
            ContainerdImageError::Blob { image, .. }
            | ContainerdImageError::ManifestJson { image, .. }
            | ContainerdImageError::Manifest { image, .. }
            | ContainerdImageError::Unpack { image, .. }
            | ContainerdImageError::Record { image, .. } => image,
        }
    }
}

/// Why a blob could not be put in containerd's content store. Decided once per blob and
/// shared by the images that use it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ContentError {
    /// A content call failed.
    #[error(transparent)]
    Said(#[from] Said),
    /// The bundle's frame index has no entry for it.
    #[error(
        "the bundle's frame index has no entry for it\n  hint: check the bundle with `airlock \
         verify`"
    )]
    NotIndexed,
    /// Its bytes could not be read from the bundle, or did not match the signed manifest.
    #[error("{0}")]
    Read(Arc<std::io::Error>),
    /// The write stream ended before containerd answered.
    #[error("containerd closed the write without an answer")]
    NoAnswer,
    /// containerd did not confirm the commit.
    #[error("containerd did not confirm the commit")]
    NotConfirmed,
    /// The task reading containerd's answers failed.
    #[error("{0}")]
    Join(Arc<tokio::task::JoinError>),
}

/// Why the layers of an image could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The top manifest or index is not a document of its kind.
    #[error("{0}")]
    TopJson(airlock_layout::graph::Problem),
    /// A digest the image names is malformed.
    #[error("`{0}` is not a digest")]
    NotDigest(String),
    /// A config or manifest in the bundle is bad.
    #[error("`{digest}` in the bundle: {problem}")]
    Small {
        /// The blob.
        digest: airlock_layout::Digest,
        /// What is wrong with it.
        problem: crate::plan::SmallBlobError,
    },
    /// A config or manifest is not in the signed manifest.
    #[error("`{0}` is not in the signed manifest")]
    Unlisted(airlock_layout::Digest),
    /// A config is not valid.
    #[error("config `{digest}`: {error}")]
    ConfigJson {
        /// The config.
        digest: String,
        /// The parse error.
        error: serde_json::Error,
    },
    /// A manifest is not valid.
    #[error("manifest `{digest}`: {error}")]
    ManifestJson {
        /// The manifest.
        digest: String,
        /// What the content graph found wrong with it.
        error: airlock_layout::graph::Problem,
    },
    /// The config lists another number of layers than the manifest.
    #[error("config `{config}` lists {diff_ids} diff_ids for {layers} layers")]
    DiffIds {
        /// The config.
        config: String,
        /// diff_ids in the config.
        diff_ids: usize,
        /// Layers in the manifest.
        layers: usize,
    },
    /// The snapshotter cannot be asked.
    #[error("snapshotter `{snapshotter}`: {said}{hint}")]
    Snapshotter {
        /// The snapshotter.
        snapshotter: String,
        /// containerd's answer.
        said: Said,
        /// What to do about it, if anything is known (`\n  hint: …`).
        hint: &'static str,
    },
    /// A snapshot for a layer could not be prepared.
    #[error("preparing a snapshot for layer `{layer}` in `{snapshotter}`: {said}{hint}")]
    Prepare {
        /// The layer.
        layer: String,
        /// The snapshotter.
        snapshotter: String,
        /// containerd's answer.
        said: Said,
        /// What to do about it, if anything is known (`\n  hint: …`).
        hint: &'static str,
    },
    /// A layer could not be applied.
    #[error("applying layer `{layer}`: {said}")]
    Apply {
        /// The layer.
        layer: String,
        /// containerd's answer.
        said: Said,
    },
    /// A layer unpacked to another diff ID than its config says.
    #[error("layer `{layer}` unpacks to `{got}`, but config `{config}` says diff_id `{diff_id}`")]
    DiffId {
        /// The layer.
        layer: String,
        /// What it unpacked to.
        got: String,
        /// The config.
        config: String,
        /// What the config says.
        diff_id: String,
    },
    /// A snapshot could not be committed.
    #[error("committing the snapshot `{chain_id}`: {said}")]
    Commit {
        /// Its chain ID.
        chain_id: String,
        /// containerd's answer.
        said: Said,
    },
    /// The config could not be labelled for the garbage collector.
    #[error("labelling config `{config}`: {said}")]
    Label {
        /// The config.
        config: String,
        /// containerd's answer.
        said: Said,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_layout::Digest;

    #[test]
    fn containerd_failures_read_as_one_line_with_the_hint_last() {
        let digest = Digest::of_bytes(b"layer");
        let e = ContainerdImageError::Blob {
            image: "registry.k8s.io/pause:3.9".into(),
            digest: digest.clone(),
            source: ContentError::NotIndexed,
        };
        assert_eq!(e.image(), "registry.k8s.io/pause:3.9");
        assert_eq!(
            render(&e),
            format!(
                "`registry.k8s.io/pause:3.9`: blob `{digest}` was not loaded: the bundle's frame \
                 index has no entry for it\n  hint: check the bundle with `airlock verify`"
            )
        );
        let status = containerd_client::tonic::Status::not_found("snapshotter not loaded");
        let e = ContainerdImageError::Unpack {
            image: "x:1".into(),
            source: UnpackError::Snapshotter {
                snapshotter: "zfs".into(),
                said: status.into(),
                hint: "\n  hint: pass --snapshotter NAME",
            },
        };
        assert_eq!(
            render(&e),
            "`x:1`: unpacking failed: snapshotter `zfs`: containerd says NotFound: snapshotter \
             not loaded\n  hint: pass --snapshotter NAME"
        );
    }
}
