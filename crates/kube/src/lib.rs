//! Kubernetes release data: the images `kubeadm init` of a release pulls, and the two names of
//! Kubernetes' image registry. No network, no I/O: the online side expands `spec.kubernetes`
//! with it, the offline side writes kubeadm's and containerd's configuration from it.
//!
//! ```
//! use airlock_kube::{images, Addon};
//!
//! let all = images("v1.28.0", None).unwrap();
//! assert_eq!(all[4], "registry.k8s.io/pause:3.9");
//! assert_eq!(all.len(), 7);
//! // The four control-plane images are always there; `addons` narrows the rest.
//! let some = images("1.28.3", Some(&[Addon::Etcd])).unwrap();
//! assert_eq!(some.last().unwrap(), "registry.k8s.io/etcd:3.5.9-0");
//! assert_eq!(some.len(), 5);
//! ```
//!
//! The list and its order are those of `kubeadm config images list --kubernetes-version V`:
//! kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy (at the Kubernetes
//! version), then pause, etcd and coredns at the versions kubeadm of that release pins.

#![warn(missing_docs)]

use std::fmt;
use std::str::FromStr;

mod error;

pub use error::KubernetesError;

/// Where kubeadm pulls from by default since v1.25 (kubeadm's `DefaultImageRepository`).
pub const REGISTRY: &str = "registry.k8s.io";

/// The name of [`REGISTRY`] before the move (frozen since April 2023); airlock reads the two as
/// aliases of one another: mirrors and settings of either apply to both.
pub const LEGACY_REGISTRY: &str = "k8s.gcr.io";

/// The other name of a Kubernetes image registry, if `host` has one.
pub fn alias_of(host: &str) -> Option<&'static str> {
    match host {
        REGISTRY => Some(LEGACY_REGISTRY),
        LEGACY_REGISTRY => Some(REGISTRY),
        _ => None,
    }
}

/// What kubeadm of a range of patch releases pins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    /// The minor version (`28` for v1.28.x).
    pub minor: u32,
    /// The first patch release with these pins; they hold until the next row of the minor.
    pub from_patch: u32,
    /// `PauseVersion`.
    pub pause: &'static str,
    /// `DefaultEtcdVersion` (equal to `SupportedEtcdVersion[minor]`).
    pub etcd: &'static str,
    /// `CoreDNSVersion`.
    pub coredns: &'static str,
}

/// The table, from kubeadm's `cmd/kubeadm/app/constants/constants.go` (`PauseVersion`,
/// `DefaultEtcdVersion` / `SupportedEtcdVersion`, `CoreDNSVersion`) of each release, as
/// `kubeadm config images list --kubernetes-version vX.Y.Z` prints it. kubeadm backports etcd
/// and CoreDNS bumps into patch releases (v1.28.14 moved to etcd 3.5.15-0, v1.31.1 to CoreDNS
/// v1.11.3), so each row holds from its `from_patch` until the next row of its minor. Patch
/// releases after the last one checked (v1.27.16, v1.28.15, v1.29.10, v1.30.6, v1.31.2) take the
/// last row. Every release here uses `registry.k8s.io` (kubeadm's default since v1.25).
pub const RELEASES: &[Release] = &[
    Release {
        minor: 27,
        from_patch: 0,
        pause: "3.9",
        etcd: "3.5.7-0",
        coredns: "v1.10.1",
    },
    Release {
        minor: 27,
        from_patch: 7,
        pause: "3.9",
        etcd: "3.5.9-0",
        coredns: "v1.10.1",
    },
    Release {
        minor: 27,
        from_patch: 10,
        pause: "3.9",
        etcd: "3.5.10-0",
        coredns: "v1.10.1",
    },
    Release {
        minor: 27,
        from_patch: 12,
        pause: "3.9",
        etcd: "3.5.12-0",
        coredns: "v1.10.1",
    },
    Release {
        minor: 28,
        from_patch: 0,
        pause: "3.9",
        etcd: "3.5.9-0",
        coredns: "v1.10.1",
    },
    Release {
        minor: 28,
        from_patch: 6,
        pause: "3.9",
        etcd: "3.5.10-0",
        coredns: "v1.10.1",
    },
    Release {
        minor: 28,
        from_patch: 8,
        pause: "3.9",
        etcd: "3.5.12-0",
        coredns: "v1.10.1",
    },
    Release {
        minor: 28,
        from_patch: 14,
        pause: "3.9",
        etcd: "3.5.15-0",
        coredns: "v1.10.1",
    },
    Release {
        minor: 29,
        from_patch: 0,
        pause: "3.9",
        etcd: "3.5.10-0",
        coredns: "v1.11.1",
    },
    Release {
        minor: 29,
        from_patch: 3,
        pause: "3.9",
        etcd: "3.5.12-0",
        coredns: "v1.11.1",
    },
    Release {
        minor: 29,
        from_patch: 9,
        pause: "3.9",
        etcd: "3.5.15-0",
        coredns: "v1.11.1",
    },
    Release {
        minor: 30,
        from_patch: 0,
        pause: "3.9",
        etcd: "3.5.12-0",
        coredns: "v1.11.1",
    },
    Release {
        minor: 30,
        from_patch: 5,
        pause: "3.9",
        etcd: "3.5.15-0",
        coredns: "v1.11.3",
    },
    Release {
        minor: 31,
        from_patch: 0,
        pause: "3.10",
        etcd: "3.5.15-0",
        coredns: "v1.11.1",
    },
    Release {
        minor: 31,
        from_patch: 1,
        pause: "3.10",
        etcd: "3.5.15-0",
        coredns: "v1.11.3",
    },
];

/// The images beyond the four control-plane ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Addon {
    /// `registry.k8s.io/coredns/coredns`.
    CoreDns,
    /// `registry.k8s.io/etcd` (stacked etcd; leave it out with an external etcd).
    Etcd,
    /// `registry.k8s.io/pause` (the sandbox image).
    Pause,
}

/// Every addon, by name.
pub const ADDONS: &[(&str, Addon)] = &[
    ("coredns", Addon::CoreDns),
    ("etcd", Addon::Etcd),
    ("pause", Addon::Pause),
];

impl FromStr for Addon {
    type Err = KubernetesError;
    fn from_str(s: &str) -> Result<Addon, KubernetesError> {
        ADDONS
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, a)| *a)
            .ok_or_else(|| KubernetesError::UnknownAddon {
                addon: s.to_string(),
            })
    }
}

impl fmt::Display for Addon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = ADDONS
            .iter()
            .find(|(_, a)| a == self)
            .map_or("?", |(n, _)| *n);
        f.write_str(name)
    }
}

/// A Kubernetes version `vMAJOR.MINOR.PATCH` (the `v` is optional on input, as for kubeadm's
/// `--kubernetes-version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    /// Always 1.
    pub major: u32,
    /// The minor release.
    pub minor: u32,
    /// The patch release.
    pub patch: u32,
}

impl FromStr for Version {
    type Err = KubernetesError;
    fn from_str(s: &str) -> Result<Version, KubernetesError> {
        let bad = || KubernetesError::BadVersion {
            version: s.to_string(),
        };
        let digits = s.strip_prefix('v').unwrap_or(s);
        let parts: Vec<&str> = digits.split('.').collect();
        let [major, minor, patch] = parts.as_slice() else {
            return Err(bad());
        };
        let num = |p: &str| {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 9 {
                Err(bad())
            } else {
                p.parse::<u32>().map_err(|_| bad())
            }
        };
        Ok(Version {
            major: num(major)?,
            minor: num(minor)?,
            patch: num(patch)?,
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The supported releases, for messages: `v1.27, v1.28, …`.
pub fn supported() -> String {
    let mut minors: Vec<String> = RELEASES.iter().map(|r| format!("v1.{}", r.minor)).collect();
    minors.dedup();
    minors.join(", ")
}

/// What kubeadm pins for `version`, or an error naming the supported releases.
pub fn release(version: &str) -> Result<(Version, &'static Release), KubernetesError> {
    let v: Version = version.parse()?;
    let found = (v.major == 1)
        .then(|| {
            RELEASES
                .iter()
                .filter(|r| r.minor == v.minor && r.from_patch <= v.patch)
                .max_by_key(|r| r.from_patch)
        })
        .flatten();
    match found {
        Some(r) => Ok((v, r)),
        None => Err(KubernetesError::Unsupported {
            version: v.to_string(),
            supported: supported(),
        }),
    }
}

/// The images kubeadm of `version` pulls, in `kubeadm config images list` order. `addons`
/// (`None`: all of them) narrows pause, etcd and coredns; the four control-plane images are
/// always listed.
pub fn images(version: &str, addons: Option<&[Addon]>) -> Result<Vec<String>, KubernetesError> {
    let (v, r) = release(version)?;
    // kubeadm's own repository keeps CoreDNS one level down (`GetDNSImage`).
    let dns = format!("{REGISTRY}/coredns");
    Ok(image_names(REGISTRY, &dns, &v, r, addons))
}

/// The images kubeadm of release `v` (pinning `r`) pulls from its `imageRepository` `repo`
/// and `dns.imageRepository` `dns`, in `kubeadm config images list` order: every image
/// `<repo>/<name>:<tag>`, CoreDNS `<dns>/coredns:<tag>` (kubeadm's `GetGenericImage` and
/// `GetDNSImage`, `cmd/kubeadm/app/images/images.go`). `addons` as for [`images`].
pub fn image_names(
    repo: &str,
    dns: &str,
    v: &Version,
    r: &Release,
    addons: Option<&[Addon]>,
) -> Vec<String> {
    let wanted = |a: Addon| addons.is_none_or(|list| list.contains(&a));
    let mut out: Vec<String> = [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kube-proxy",
    ]
    .iter()
    .map(|c| format!("{repo}/{c}:{v}"))
    .collect();
    if wanted(Addon::Pause) {
        out.push(format!("{repo}/pause:{}", r.pause));
    }
    if wanted(Addon::Etcd) {
        out.push(format!("{repo}/etcd:{}", r.etcd));
    }
    if wanted(Addon::CoreDns) {
        out.push(format!("{dns}/coredns:{}", r.coredns));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every supported release against the list `kubeadm config images list
    /// --kubernetes-version vX.Y.Z` prints with that kubeadm: the first release of each minor,
    /// each patch where a pin moved, and the last patch checked.
    #[test]
    fn every_release_expands_to_kubeadms_list() {
        let table: &[(&str, &str, &str, &str)] = &[
            ("v1.27.0", "3.9", "3.5.7-0", "v1.10.1"),
            ("v1.27.6", "3.9", "3.5.7-0", "v1.10.1"),
            ("v1.27.7", "3.9", "3.5.9-0", "v1.10.1"),
            ("v1.27.10", "3.9", "3.5.10-0", "v1.10.1"),
            ("v1.27.16", "3.9", "3.5.12-0", "v1.10.1"),
            ("v1.28.0", "3.9", "3.5.9-0", "v1.10.1"),
            ("v1.28.6", "3.9", "3.5.10-0", "v1.10.1"),
            ("v1.28.8", "3.9", "3.5.12-0", "v1.10.1"),
            ("v1.28.15", "3.9", "3.5.15-0", "v1.10.1"),
            ("v1.29.0", "3.9", "3.5.10-0", "v1.11.1"),
            ("v1.29.3", "3.9", "3.5.12-0", "v1.11.1"),
            ("v1.29.10", "3.9", "3.5.15-0", "v1.11.1"),
            ("v1.30.0", "3.9", "3.5.12-0", "v1.11.1"),
            ("v1.30.5", "3.9", "3.5.15-0", "v1.11.3"),
            ("v1.31.0", "3.10", "3.5.15-0", "v1.11.1"),
            ("v1.31.2", "3.10", "3.5.15-0", "v1.11.3"),
        ];
        for r in RELEASES {
            let v = format!("v1.{}.{}", r.minor, r.from_patch);
            let first_or_checked = table.iter().any(|(t, ..)| *t == v)
                || table
                    .iter()
                    .any(|(t, ..)| t.starts_with(&format!("v1.{}.", r.minor)));
            assert!(first_or_checked, "release row {v} has no test row");
        }
        for (v, pause, etcd, coredns) in table {
            let want = vec![
                format!("registry.k8s.io/kube-apiserver:{v}"),
                format!("registry.k8s.io/kube-controller-manager:{v}"),
                format!("registry.k8s.io/kube-scheduler:{v}"),
                format!("registry.k8s.io/kube-proxy:{v}"),
                format!("registry.k8s.io/pause:{pause}"),
                format!("registry.k8s.io/etcd:{etcd}"),
                format!("registry.k8s.io/coredns/coredns:{coredns}"),
            ];
            assert_eq!(images(v, None).unwrap(), want, "{v}");
        }
    }

    #[test]
    fn v1_28_0_is_kubeadms_list() {
        assert_eq!(
            images("v1.28.0", None).unwrap(),
            [
                "registry.k8s.io/kube-apiserver:v1.28.0",
                "registry.k8s.io/kube-controller-manager:v1.28.0",
                "registry.k8s.io/kube-scheduler:v1.28.0",
                "registry.k8s.io/kube-proxy:v1.28.0",
                "registry.k8s.io/pause:3.9",
                "registry.k8s.io/etcd:3.5.9-0",
                "registry.k8s.io/coredns/coredns:v1.10.1",
            ]
        );
    }

    #[test]
    fn any_patch_of_a_supported_minor_and_addons_narrow() {
        let l = images("1.30.7", Some(&[])).unwrap();
        assert_eq!(l.len(), 4);
        assert!(l.iter().all(|i| i.ends_with(":v1.30.7")), "{l:?}");
        let l = images("v1.29.2", Some(&[Addon::CoreDns, Addon::Pause])).unwrap();
        assert_eq!(l[4], "registry.k8s.io/pause:3.9");
        assert_eq!(l[5], "registry.k8s.io/coredns/coredns:v1.11.1");
        assert_eq!(l.len(), 6);
    }

    #[test]
    fn unsupported_and_malformed_versions() {
        let e = images("v1.26.3", None).unwrap_err().to_string();
        assert!(e.contains("v1.26.3"), "{e}");
        assert!(e.contains("v1.27, v1.28, v1.29, v1.30, v1.31"), "{e}");
        assert!(images("v2.28.0", None).is_err());
        for bad in ["v1.28", "latest", "v1.28.0-rc.1", "v1..0", "stable-1"] {
            let e = images(bad, None).unwrap_err();
            assert!(
                matches!(e, KubernetesError::BadVersion { .. }),
                "{bad}: {e}"
            );
        }
        let e = "dns".parse::<Addon>().unwrap_err().to_string();
        assert!(e.contains("coredns, etcd, pause"), "{e}");
    }

    #[test]
    fn aliases() {
        assert_eq!(alias_of("k8s.gcr.io"), Some("registry.k8s.io"));
        assert_eq!(alias_of("registry.k8s.io"), Some("k8s.gcr.io"));
        assert_eq!(alias_of("quay.io"), None);
    }
}

/// The newest patch release of `minor` (`v1.MINOR.x`) the release data knows, for `airlock
/// outdated`: a release line that has a newer patch than the one in use is behind.
pub fn newest_patch(minor: u32) -> Option<Version> {
    // The last row of each minor holds until the newest patch checked.
    const NEWEST: &[(u32, u32)] = &[(27, 16), (28, 15), (29, 10), (30, 6), (31, 2)];
    NEWEST
        .iter()
        .find(|(m, _)| *m == minor)
        .map(|&(minor, patch)| Version {
            major: 1,
            minor,
            patch,
        })
}
