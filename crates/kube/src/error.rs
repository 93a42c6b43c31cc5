//! Errors of the release data.

/// A Kubernetes release or addon airlock does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KubernetesError {
    /// Not `vMAJOR.MINOR.PATCH` (or a bare `vMAJOR.MINOR`).
    #[error("`{version}` is not a Kubernetes version such as `v1.28.0`")]
    BadVersion {
        /// As given.
        version: String,
    },
    /// A minor release the release data does not cover.
    #[error(
        "Kubernetes {version} is not in airlock's release data (known: {supported})\n  hint: \
         `--kubeadm PATH` (of `airlock images kubernetes vX.Y.Z`, `bundle` or `lock`) asks a \
         real kubeadm of that release"
    )]
    Unsupported {
        /// The version asked for.
        version: String,
        /// The known releases.
        supported: String,
    },
    /// A patch release newer than the newest the release data knows of its minor.
    #[error(
        "Kubernetes {version} is newer than {newest}, the newest patch release of its minor in \
         airlock's release data (known: {supported})\n  hint: `--kubeadm PATH` (of `airlock \
         images kubernetes`, `bundle` or `lock`) asks a real kubeadm of that release"
    )]
    TooNew {
        /// The version asked for.
        version: String,
        /// The newest known patch release of its minor.
        newest: String,
        /// The known releases.
        supported: String,
    },
    /// A node binary the node kit does not know.
    #[error("unknown Kubernetes node binary `{binary}` (known: kubeadm, kubelet, kubectl, kube-proxy, kube-apiserver, kube-controller-manager, kube-scheduler)")]
    UnknownBinary {
        /// As given.
        binary: String,
    },
    /// A platform the node kit does not know.
    #[error("the node kit has no binaries for platform `{platform}` (known: linux/amd64, linux/arm64, linux/arm, linux/ppc64le, linux/s390x)")]
    UnknownPlatform {
        /// As given.
        platform: String,
    },
    /// A crictl or CNI plugins version that is not a release tag.
    #[error("{tool} version `{version}` is not a release tag such as `v1.8.0`")]
    BadToolVersion {
        /// `crictl` or `cni`.
        tool: &'static str,
        /// As given.
        version: String,
    },
    /// An addon name that is not `coredns`, `etcd` or `pause`.
    #[error("unknown Kubernetes addon `{addon}` (known: coredns, etcd, pause)")]
    UnknownAddon {
        /// As given.
        addon: String,
    },
}

/// A line of release data that is not a valid row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("release data line {line}: {message}")]
pub struct ReleaseDataError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}
