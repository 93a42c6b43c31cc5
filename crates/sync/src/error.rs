//! The errors of a sync: of the whole run (nothing was sent), and of one image (the others go on).

use std::path::PathBuf;

/// A sync that could not start, or whose lock could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The registry client could not be set up (a CA file, for instance).
    #[error("cannot set up the registry client")]
    Client(#[source] Box<airlock_registry::Error>),
    /// The target does not answer `/v2/` with these credentials.
    #[error("the target `{target}` cannot be used")]
    Target {
        /// `registry://HOST/PREFIX`.
        target: String,
        /// Why.
        #[source]
        source: Box<airlock_registry::Error>,
    },
    /// Two images would land on one repository, or a name is not a repository.
    #[error(transparent)]
    Names(#[from] airlock_load::NameError),
    /// An image maps to a repository the target cannot have.
    #[error("`{image}` would land at `{repository}`, which is not a valid repository: {reason}\n  hint: change --names or add a --rewrite for it")]
    BadRepository {
        /// The image.
        image: String,
        /// The repository it maps to.
        repository: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The lock file could not be read (`--locked`) or written (`--lock`).
    #[error(transparent)]
    Lock(#[from] airlock_bundle::Error),
}

/// Why one image was not synced. No tag of it was moved.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// No source (mirrors, then the origin) has the tag.
    #[error("`{image}`: no source has it:{}", attempts.iter().map(|(s, e)| format!("\n    {s}: {}", first_line(e))).collect::<String>())]
    Unresolved {
        /// The image.
        image: String,
        /// Each source asked, with its answer.
        attempts: Vec<(String, String)>,
    },
    /// `--locked`, and the lock does not list the image.
    #[error("`{image}` is not in the lock `{}`\n  hint: write the lock again (`airlock lock`, or `airlock sync --lock FILE` without --locked)", lock.display())]
    NotLocked {
        /// The image.
        image: String,
        /// The lock file.
        lock: PathBuf,
    },
    /// A request for the image failed at a source or at the target.
    #[error("`{image}`: {what} at `{at}`: {}", crate::render(source.as_ref()))]
    Registry {
        /// The image.
        image: String,
        /// What was asked (`manifest sha256:…`, `tag 1.0`).
        what: String,
        /// `host/repository` asked.
        at: String,
        /// The registry's answer.
        source: Box<airlock_registry::Error>,
    },
    /// A document of the image breaks the content model's rules (digest, size, nesting).
    #[error("`{image}`: {source}")]
    Graph {
        /// The image.
        image: String,
        /// The rule broken, with the document's digest.
        #[source]
        source: airlock_layout::graph::GraphError,
    },
    /// The index is not readable as an OCI index.
    #[error("`{image}`: index `{digest}` cannot be read: {message}")]
    BadIndex {
        /// The image.
        image: String,
        /// The index.
        digest: String,
        /// The parser's message.
        message: String,
    },
    /// The spec's platform filter keeps nothing of the index.
    #[error("`{image}`: index `{digest}` has none of the platforms {wanted} (it has: {available})\n  hint: change `platforms:` for this image")]
    NoPlatform {
        /// The image.
        image: String,
        /// The upstream index.
        digest: String,
        /// The filter.
        wanted: String,
        /// What the index has.
        available: String,
    },
    /// A blob could not be copied (the source failed, or its bytes did not hash to the
    /// digest, or the target refused it).
    #[error("`{image}`: blob `{digest}` from `{from}`: {}", crate::render(source.as_ref()))]
    Blob {
        /// The image.
        image: String,
        /// The blob.
        digest: String,
        /// `host/repository` it was read from.
        from: String,
        /// What went wrong: at the source (in the upload's body) or at the target.
        source: std::sync::Arc<airlock_registry::Error>,
    },
    /// A referrer was copied but could not be listed in the target's referrers tag index
    /// (the target has no referrers API).
    #[error(
        "`{image}`: the referrer `{referrer}` of `{subject}`: {}",
        crate::render(source)
    )]
    Referrer {
        /// The image.
        image: String,
        /// The referrer's digest.
        referrer: String,
        /// Its subject's digest.
        subject: String,
        /// Why its index could not be written.
        source: airlock_load::ArtifactError,
    },
}

impl ImageError {
    /// The image it is about, as the spec names it.
    pub fn image(&self) -> &str {
        match self {
            ImageError::Unresolved { image, .. }
            | ImageError::NotLocked { image, .. }
            | ImageError::Registry { image, .. }
            | ImageError::Graph { image, .. }
            | ImageError::BadIndex { image, .. }
            | ImageError::NoPlatform { image, .. }
            | ImageError::Blob { image, .. }
            | ImageError::Referrer { image, .. } => image,
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}
