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
    /// Harbor projects are missing or could not be created.
    #[error(transparent)]
    Harbor(#[from] crate::harbor::HarborError),
    /// A blocking task panicked or was cancelled.
    #[error("internal task failed")]
    Join(#[from] tokio::task::JoinError),
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
}

impl ImageError {
    /// The canonical reference of the image concerned.
    pub fn image(&self) -> &str {
        match self {
            ImageError::BadBundleBlob { image, .. }
            | ImageError::Blob { image, .. }
            | ImageError::Manifest { image, .. } => image,
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
}

pub use airlock_registry::render_error as render;
