//! The node kit: where the node binaries of a release, crictl and the CNI plugins are
//! published, and under which names a bundle carries them. Names and URLs only; fetching and
//! checking them against the `.sha256` published beside each one is the bundle's work.
//!
//! ```
//! use airlock_kube::node;
//!
//! let v = "v1.35.2".parse().unwrap();
//! let f = node::binary(&v, "linux", "amd64", "kubeadm").unwrap();
//! assert_eq!(f.url, "https://dl.k8s.io/release/v1.35.2/bin/linux/amd64/kubeadm");
//! assert_eq!(f.name, "kubernetes/v1.35.2/linux/amd64/kubeadm");
//! assert_eq!((f.repository.as_str(), f.tag.as_str(), f.mode), ("files/kubeadm", "v1.35.2-linux-amd64", 0o755));
//! assert_eq!(f.checksum_url(), "https://dl.k8s.io/release/v1.35.2/bin/linux/amd64/kubeadm.sha256");
//! ```

use crate::{KubernetesError, Version};

/// The node binaries a release publishes at `dl.k8s.io/release/{v}/bin/{os}/{arch}/`.
pub const BINARIES: &[&str] = &[
    "kubeadm",
    "kubelet",
    "kubectl",
    "kube-proxy",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

/// The platforms (`os/arch`) the node kit knows: those for which Kubernetes, cri-tools and the
/// CNI plugins all publish Linux builds.
pub const PLATFORMS: &[&str] = &[
    "linux/amd64",
    "linux/arm64",
    "linux/arm",
    "linux/ppc64le",
    "linux/s390x",
];

/// One file of the node kit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFile {
    /// Its name in the bundle: `kubernetes/{v}/{os}/{arch}/{bin}`,
    /// `crictl/{v}/crictl-{v}-{os}-{arch}.tar.gz` or `cni/{v}/cni-plugins-{os}-{arch}-{v}.tgz`.
    pub name: String,
    /// Where it is published.
    pub url: String,
    /// Its repository, without the host (`files/kubeadm`, `files/crictl`, `files/cni-plugins`).
    pub repository: String,
    /// Its tag: `{v}-{os}-{arch}`.
    pub tag: String,
    /// The permission bits it is written with: `0o755` for a binary, `0o644` for an archive.
    pub mode: u32,
}

impl NodeFile {
    /// The checksum file published beside it (`sha256sum` format, or the bare hex).
    pub fn checksum_url(&self) -> String {
        format!("{}.sha256", self.url)
    }
}

/// Checks `platform` (`os/arch`) against [`PLATFORMS`] and splits it.
pub fn platform(platform: &str) -> Result<(&str, &str), KubernetesError> {
    match platform.split_once('/') {
        Some((os, arch)) if PLATFORMS.contains(&platform) => Ok((os, arch)),
        _ => Err(KubernetesError::UnknownPlatform {
            platform: platform.to_string(),
        }),
    }
}

/// Node binary `bin` of release `v` for `os/arch`.
pub fn binary(v: &Version, os: &str, arch: &str, bin: &str) -> Result<NodeFile, KubernetesError> {
    if !BINARIES.contains(&bin) {
        return Err(KubernetesError::UnknownBinary {
            binary: bin.to_string(),
        });
    }
    Ok(NodeFile {
        name: format!("kubernetes/{v}/{os}/{arch}/{bin}"),
        url: format!("https://dl.k8s.io/release/{v}/bin/{os}/{arch}/{bin}"),
        repository: format!("files/{bin}"),
        tag: format!("{v}-{os}-{arch}"),
        mode: 0o755,
    })
}

/// The crictl archive of cri-tools release `cv` (`v1.35.0`) for `os/arch`.
pub fn crictl(cv: &str, os: &str, arch: &str) -> Result<NodeFile, KubernetesError> {
    tool_version("crictl", cv)?;
    Ok(NodeFile {
        name: format!("crictl/{cv}/crictl-{cv}-{os}-{arch}.tar.gz"),
        url: format!(
            "https://github.com/kubernetes-sigs/cri-tools/releases/download/{cv}/crictl-{cv}-{os}-{arch}.tar.gz"
        ),
        repository: "files/crictl".to_string(),
        tag: format!("{cv}-{os}-{arch}"),
        mode: 0o644,
    })
}

/// The CNI plugins archive of release `nv` (`v1.8.0`) for `os/arch`.
pub fn cni(nv: &str, os: &str, arch: &str) -> Result<NodeFile, KubernetesError> {
    tool_version("cni", nv)?;
    Ok(NodeFile {
        name: format!("cni/{nv}/cni-plugins-{os}-{arch}-{nv}.tgz"),
        url: format!(
            "https://github.com/containernetworking/plugins/releases/download/{nv}/cni-plugins-{os}-{arch}-{nv}.tgz"
        ),
        repository: "files/cni-plugins".to_string(),
        tag: format!("{nv}-{os}-{arch}"),
        mode: 0o644,
    })
}

/// A release tag as cri-tools and the CNI plugins write them: `vX.Y.Z`.
fn tool_version(tool: &'static str, v: &str) -> Result<(), KubernetesError> {
    let ok = v.starts_with('v') && v.parse::<Version>().is_ok();
    if ok {
        Ok(())
    } else {
        Err(KubernetesError::BadToolVersion {
            tool,
            version: v.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_urls_of_the_contract() {
        let c = crictl("v1.35.0", "linux", "arm64").unwrap();
        assert_eq!(c.name, "crictl/v1.35.0/crictl-v1.35.0-linux-arm64.tar.gz");
        assert_eq!(
            c.url,
            "https://github.com/kubernetes-sigs/cri-tools/releases/download/v1.35.0/crictl-v1.35.0-linux-arm64.tar.gz"
        );
        assert_eq!(
            (c.repository.as_str(), c.tag.as_str(), c.mode),
            ("files/crictl", "v1.35.0-linux-arm64", 0o644)
        );
        let n = cni("v1.8.0", "linux", "amd64").unwrap();
        assert_eq!(n.name, "cni/v1.8.0/cni-plugins-linux-amd64-v1.8.0.tgz");
        assert_eq!(
            n.checksum_url(),
            "https://github.com/containernetworking/plugins/releases/download/v1.8.0/cni-plugins-linux-amd64-v1.8.0.tgz.sha256"
        );
        assert_eq!(
            (n.repository.as_str(), n.tag.as_str(), n.mode),
            ("files/cni-plugins", "v1.8.0-linux-amd64", 0o644)
        );
    }

    #[test]
    fn unknown_binaries_platforms_and_versions() {
        let v = "v1.35.2".parse().unwrap();
        let e = binary(&v, "linux", "amd64", "kubeadmin")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`kubeadmin`") && e.contains(&format!("(known: {})", BINARIES.join(", "))),
            "{e}"
        );
        for p in ["windows/amd64", "linux/arm/v7", "linux", "linux/riscv64"] {
            let e = platform(p).unwrap_err().to_string();
            assert!(
                e.contains(&format!("`{p}`"))
                    && e.contains(&format!("(known: {})", PLATFORMS.join(", "))),
                "{e}"
            );
        }
        assert_eq!(platform("linux/s390x").unwrap(), ("linux", "s390x"));
        for bad in ["1.35.0", "v1.35", "latest", "v1.35.0/../x"] {
            let e = crictl(bad, "linux", "amd64").unwrap_err().to_string();
            assert!(e.contains(&format!("crictl version `{bad}`")), "{e}");
            assert!(cni(bad, "linux", "amd64").is_err());
        }
    }
}
