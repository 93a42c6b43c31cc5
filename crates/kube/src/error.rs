//! Errors of the release data.

/// A Kubernetes release or addon airlock does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KubernetesError {
    /// Not `vMAJOR.MINOR.PATCH`.
    #[error("`{version}` is not a Kubernetes version such as `v1.28.0`")]
    BadVersion {
        /// As given.
        version: String,
    },
    /// A release the image table does not cover.
    #[error("Kubernetes {version} is not supported (supported: {supported}, any patch release)")]
    Unsupported {
        /// The version asked for.
        version: String,
        /// The supported minor releases.
        supported: String,
    },
    /// An addon name that is not `coredns`, `etcd` or `pause`.
    #[error("unknown Kubernetes addon `{addon}` (known: coredns, etcd, pause)")]
    UnknownAddon {
        /// As given.
        addon: String,
    },
}
