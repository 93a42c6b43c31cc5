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
//!
//! The pins are data, [`RELEASE_DATA`] (`data/kubeadm-images.tsv`, embedded), read once into
//! [`releases`]: every patch release from v1.27.0 to the newest known of each minor through
//! v1.37. A patch release newer than the data, or a minor it does not know, is an error that
//! names the known releases; `airlock images kubernetes --kubeadm PATH` asks a real kubeadm.

#![warn(missing_docs)]

use std::fmt;
use std::str::FromStr;

mod error;
pub mod node;

pub use error::{KubernetesError, ReleaseDataError};

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

/// The release data: `kubeadm config images list --kubernetes-version vX.Y.Z` as kubeadm of
/// each release prints it, one row per range of patch releases with the same pins (kubeadm
/// backports etcd and CoreDNS bumps into patch releases), with where each row was checked.
/// Tab-separated, a header line first: `minor`, `first_patch`, `last_patch_checked`, `pause`,
/// `etcd`, `coredns`, `source`.
pub const RELEASE_DATA: &str = include_str!("../data/kubeadm-images.tsv");

/// What kubeadm of a range of patch releases pins: one row of [`RELEASE_DATA`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    /// The minor version (`28` for v1.28.x).
    pub minor: u32,
    /// The first patch release with these pins.
    pub from_patch: u32,
    /// The last patch release known to have these pins: the next row of the minor starts after
    /// it, and for the last row of a minor it is the newest patch airlock knows.
    pub last_patch: u32,
    /// The release the row was last checked at, as written in the data (`v1.31.13`; a
    /// pre-release such as `v1.37.0-rc.0` when the row's final release was not yet out, and
    /// the row is inferred for the final release of that patch).
    pub checked: &'static str,
    /// `PauseVersion`.
    pub pause: &'static str,
    /// `DefaultEtcdVersion` (equal to `SupportedEtcdVersion[minor]`).
    pub etcd: &'static str,
    /// `CoreDNSVersion`.
    pub coredns: &'static str,
    /// Where the row was checked (kubeadm runs, kubeadm's `constants.go`, pull requests).
    pub source: &'static str,
}

impl Release {
    /// The first patch release of the row.
    pub fn first(&self) -> Version {
        Version {
            major: 1,
            minor: self.minor,
            patch: self.from_patch,
        }
    }

    /// The last patch release of the row.
    pub fn last(&self) -> Version {
        Version {
            major: 1,
            minor: self.minor,
            patch: self.last_patch,
        }
    }

    /// Whether the row was checked only at a pre-release of its last patch, and is inferred
    /// for the final release.
    pub fn inferred(&self) -> bool {
        self.checked.contains('-')
    }
}

/// The rows of [`RELEASE_DATA`], in its order (by minor, then by patch), parsed once.
pub fn releases() -> &'static [Release] {
    static ROWS: std::sync::OnceLock<Vec<Release>> = std::sync::OnceLock::new();
    ROWS.get_or_init(|| {
        // A unit test parses the embedded data, so this cannot fail in a build that passed it.
        parse_release_data(RELEASE_DATA).unwrap_or_else(|e| panic!("embedded release data: {e}"))
    })
}

/// Parses release data in the format of [`RELEASE_DATA`], checking that the rows of each minor
/// follow one another without a gap or an overlap.
pub fn parse_release_data(text: &'static str) -> Result<Vec<Release>, ReleaseDataError> {
    const HEADER: &str = "minor\tfirst_patch\tlast_patch_checked\tpause\tetcd\tcoredns\tsource";
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    match lines.next() {
        Some((_, h)) if h.trim_end() == HEADER => {}
        _ => {
            return Err(ReleaseDataError {
                line: 1,
                message: format!("the header must be `{}`", HEADER.replace('\t', "<TAB>")),
            })
        }
    }
    let mut rows: Vec<Release> = Vec::new();
    for (line, text) in lines {
        if text.trim().is_empty() {
            continue;
        }
        let bad = |message: String| ReleaseDataError { line, message };
        let fields: Vec<&'static str> = text.trim_end_matches('\r').split('\t').collect();
        let [minor, first, checked, pause, etcd, coredns, source] = fields.as_slice() else {
            return Err(bad(format!("{} fields, expected 7", fields.len())));
        };
        let minor_num = minor
            .strip_prefix("1.")
            .and_then(|m| m.parse::<u32>().ok())
            .ok_or_else(|| bad(format!("minor `{minor}` is not `1.N`")))?;
        let patch_of = |field: &str, v: &str| -> Result<u32, ReleaseDataError> {
            let ver: Version = v
                .parse()
                .map_err(|_| bad(format!("{field} `{v}` is not `v{minor}.PATCH`")))?;
            if ver.major != 1 || ver.minor != minor_num {
                return Err(bad(format!("{field} `{v}` is not a release of v{minor}")));
            }
            Ok(ver.patch)
        };
        let from_patch = patch_of("first_patch", first)?;
        // A pre-release (`v1.37.0-rc.0`) stands for the final release of its patch.
        let last_patch = patch_of(
            "last_patch_checked",
            checked.split('-').next().unwrap_or(""),
        )?;
        if last_patch < from_patch {
            return Err(bad(format!("`{checked}` is before `{first}`")));
        }
        for (field, value) in [("pause", pause), ("etcd", etcd), ("coredns", coredns)] {
            if value.is_empty()
                || !value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            {
                return Err(bad(format!("{field} `{value}` is not an image tag")));
            }
        }
        if let Some(prev) = rows.last() {
            let follows = if prev.minor == minor_num {
                from_patch == prev.last_patch + 1
            } else {
                minor_num > prev.minor && from_patch == 0
            };
            if !follows {
                return Err(bad(format!(
                    "`{first}` does not follow the row before (`{}` to `{}`): rows go by minor, each \
                     minor from patch 0 without gaps",
                    prev.first(),
                    prev.last()
                )));
            }
        } else if from_patch != 0 {
            return Err(bad(format!(
                "`{first}` does not start its minor at patch 0"
            )));
        }
        rows.push(Release {
            minor: minor_num,
            from_patch,
            last_patch,
            checked,
            pause,
            etcd,
            coredns,
            source,
        });
    }
    if rows.is_empty() {
        return Err(ReleaseDataError {
            line: 1,
            message: "no release rows".to_string(),
        });
    }
    Ok(rows)
}

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

/// The known releases, for messages: `v1.27.0–v1.27.16, …, v1.37.0`.
pub fn supported() -> String {
    let mut out: Vec<String> = Vec::new();
    let rows = releases();
    for (i, r) in rows.iter().enumerate() {
        let last_of_minor = rows.get(i + 1).is_none_or(|n| n.minor != r.minor);
        if !last_of_minor {
            continue;
        }
        let first = rows.iter().find(|f| f.minor == r.minor).unwrap_or(r);
        if first.from_patch == r.last_patch {
            out.push(r.last().to_string());
        } else {
            out.push(format!("{}\u{2013}{}", first.first(), r.last()));
        }
    }
    out.join(", ")
}

/// What kubeadm pins for `version` (`vX.Y.Z`, or a bare known minor `vX.Y`, which means its
/// newest known patch release), or an error naming the known releases.
pub fn release(version: &str) -> Result<(Version, &'static Release), KubernetesError> {
    let v = match version.parse::<Version>() {
        Ok(v) => v,
        Err(e) => match parse_minor(version) {
            Some((1, minor)) => {
                newest_patch(minor).ok_or_else(|| KubernetesError::Unsupported {
                    version: format!("v1.{minor}"),
                    supported: supported(),
                })?
            }
            Some(_) => {
                return Err(KubernetesError::Unsupported {
                    version: version.to_string(),
                    supported: supported(),
                })
            }
            None => return Err(e),
        },
    };
    let rows = releases();
    let of_minor = || rows.iter().filter(|r| v.major == 1 && r.minor == v.minor);
    if let Some(r) = of_minor().find(|r| r.from_patch <= v.patch && v.patch <= r.last_patch) {
        return Ok((v, r));
    }
    match of_minor().next_back() {
        Some(newest) => Err(KubernetesError::TooNew {
            version: v.to_string(),
            newest: newest.last().to_string(),
            supported: supported(),
        }),
        None => Err(KubernetesError::Unsupported {
            version: v.to_string(),
            supported: supported(),
        }),
    }
}

/// `vMAJOR.MINOR` (the `v` optional), or `None`.
fn parse_minor(s: &str) -> Option<(u32, u32)> {
    let digits = s.strip_prefix('v').unwrap_or(s);
    let (major, minor) = digits.split_once('.')?;
    let num = |p: &str| {
        (!p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse::<u32>().ok())
            .flatten()
    };
    Some((num(major)?, num(minor)?))
}

/// The newest patch release of `minor` (`v1.MINOR.x`) the release data knows, for `airlock
/// outdated`: a release line that has a newer patch than the one in use is behind.
pub fn newest_patch(minor: u32) -> Option<Version> {
    releases()
        .iter()
        .filter(|r| r.minor == minor)
        .map(Release::last)
        .next_back()
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

    /// Every row of the data, every patch release in it, against the list kubeadm prints:
    /// the four control-plane images at the version, then the row's pause, etcd and coredns.
    /// The data is read here with a plain split, independently of [`parse_release_data`].
    #[test]
    fn every_patch_of_every_row_expands_to_kubeadms_list() {
        let mut checked = 0;
        let mut minors = Vec::new();
        for line in RELEASE_DATA
            .lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
        {
            let f: Vec<&str> = line.split('\t').collect();
            let (minor, first, last) = (f[0], f[1], f[2]);
            let patch = |v: &str| -> u32 {
                let p = v.strip_prefix(&format!("v{minor}.")).unwrap();
                p.split('-').next().unwrap().parse().unwrap()
            };
            for p in patch(first)..=patch(last) {
                let v = format!("v{minor}.{p}");
                let want = vec![
                    format!("registry.k8s.io/kube-apiserver:{v}"),
                    format!("registry.k8s.io/kube-controller-manager:{v}"),
                    format!("registry.k8s.io/kube-scheduler:{v}"),
                    format!("registry.k8s.io/kube-proxy:{v}"),
                    format!("registry.k8s.io/pause:{}", f[3]),
                    format!("registry.k8s.io/etcd:{}", f[4]),
                    format!("registry.k8s.io/coredns/coredns:{}", f[5]),
                ];
                assert_eq!(images(&v, None).unwrap(), want, "{v}");
                // Without the `v`, as kubeadm's `--kubernetes-version` takes it.
                assert_eq!(images(&v[1..], None).unwrap(), want, "{v}");
                checked += 1;
            }
            if !minors.contains(&minor) {
                minors.push(minor);
            }
        }
        let want_minors: Vec<String> = (27..=37).map(|m| format!("1.{m}")).collect();
        assert_eq!(minors, want_minors);
        assert_eq!(releases().len(), RELEASE_DATA.lines().count() - 1);
        assert!(checked >= 131, "only {checked} patch releases");
    }

    /// Spot checks against kubeadm's output, including the pins an earlier table had wrong:
    /// v1.29.11+ pins etcd 3.5.16-0 and v1.31.14 pins 3.5.24-0 (both printed 3.5.15-0).
    #[test]
    fn pins_where_kubeadm_moved_them() {
        let table: &[(&str, &str, &str, &str)] = &[
            ("v1.27.0", "3.9", "3.5.7-0", "v1.10.1"),
            ("v1.27.7", "3.9", "3.5.9-0", "v1.10.1"),
            ("v1.28.14", "3.9", "3.5.15-0", "v1.10.1"),
            ("v1.29.10", "3.9", "3.5.15-0", "v1.11.1"),
            ("v1.29.11", "3.9", "3.5.16-0", "v1.11.1"),
            ("v1.29.15", "3.9", "3.5.16-0", "v1.11.1"),
            ("v1.30.5", "3.9", "3.5.15-0", "v1.11.3"),
            ("v1.31.0", "3.10", "3.5.15-0", "v1.11.1"),
            ("v1.31.13", "3.10", "3.5.15-0", "v1.11.3"),
            ("v1.31.14", "3.10", "3.5.24-0", "v1.11.3"),
            ("v1.32.10", "3.10", "3.5.24-0", "v1.11.3"),
            ("v1.34.2", "3.10.1", "3.6.5-0", "v1.12.1"),
            ("v1.35.2", "3.10.1", "3.6.6-0", "v1.13.1"),
            ("v1.37.0", "3.10.2", "3.7.0-0", "v1.14.6"),
        ];
        for (v, pause, etcd, coredns) in table {
            let l = images(v, None).unwrap();
            assert_eq!(l[4], format!("registry.k8s.io/pause:{pause}"), "{v}");
            assert_eq!(l[5], format!("registry.k8s.io/etcd:{etcd}"), "{v}");
            assert_eq!(
                l[6],
                format!("registry.k8s.io/coredns/coredns:{coredns}"),
                "{v}"
            );
        }
        let (_, r) = release("v1.37.0").unwrap();
        assert!(r.inferred(), "{r:?}");
        assert!(!release("v1.36.3").unwrap().1.inferred());
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
    fn any_known_patch_and_addons_narrow() {
        let l = images("1.30.7", Some(&[])).unwrap();
        assert_eq!(l.len(), 4);
        assert!(l.iter().all(|i| i.ends_with(":v1.30.7")), "{l:?}");
        let l = images("v1.29.2", Some(&[Addon::CoreDns, Addon::Pause])).unwrap();
        assert_eq!(l[4], "registry.k8s.io/pause:3.9");
        assert_eq!(l[5], "registry.k8s.io/coredns/coredns:v1.11.1");
        assert_eq!(l.len(), 6);
    }

    #[test]
    fn newest_patch_and_bare_minors() {
        assert_eq!(newest_patch(27).unwrap().to_string(), "v1.27.16");
        assert_eq!(newest_patch(31).unwrap().to_string(), "v1.31.14");
        assert_eq!(newest_patch(35).unwrap().to_string(), "v1.35.7");
        assert_eq!(newest_patch(37).unwrap().to_string(), "v1.37.0");
        assert_eq!(newest_patch(26), None);
        assert_eq!(newest_patch(38), None);
        let (v, r) = release("v1.35").unwrap();
        assert_eq!(v.to_string(), "v1.35.7");
        assert_eq!(r.etcd, "3.6.6-0");
        assert_eq!(release("1.33").unwrap().0.to_string(), "v1.33.13");
    }

    #[test]
    fn unknown_releases_name_the_known_ones_and_kubeadm() {
        let known = "v1.27.0\u{2013}v1.27.16, v1.28.0\u{2013}v1.28.15, v1.29.0\u{2013}v1.29.15, \
                     v1.30.0\u{2013}v1.30.14, v1.31.0\u{2013}v1.31.14, v1.32.0\u{2013}v1.32.13, \
                     v1.33.0\u{2013}v1.33.13, v1.34.0\u{2013}v1.34.10, v1.35.0\u{2013}v1.35.7, \
                     v1.36.0\u{2013}v1.36.3, v1.37.0";
        assert_eq!(supported(), known);
        for v in ["v1.26.3", "v1.38.0", "v1.38", "v2.28.0", "v0.35"] {
            let e = images(v, None).unwrap_err();
            assert!(matches!(e, KubernetesError::Unsupported { .. }), "{v}: {e}");
            let e = e.to_string();
            assert!(e.contains(v), "{e}");
            assert!(e.contains(known), "{e}");
            assert!(e.contains("--kubeadm PATH"), "{e}");
        }
        for (v, newest) in [
            ("v1.35.8", "v1.35.7"),
            ("v1.37.1", "v1.37.0"),
            ("1.27.17", "v1.27.16"),
        ] {
            let e = images(v, None).unwrap_err();
            assert!(matches!(e, KubernetesError::TooNew { .. }), "{v}: {e}");
            let e = e.to_string();
            assert!(e.contains(newest) && e.contains("--kubeadm PATH"), "{e}");
        }
        for bad in ["latest", "v1.28.0-rc.1", "v1..0", "stable-1", "v1", ""] {
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
    fn bad_release_data_is_refused_with_its_line() {
        const H: &str = "minor\tfirst_patch\tlast_patch_checked\tpause\tetcd\tcoredns\tsource\n";
        let bad: &[(&'static str, usize, &str)] = &[
            ("minor,first\n", 1, "header"),
            (concat!("minor\tfirst_patch\tlast_patch_checked\tpause\tetcd\tcoredns\tsource\n", "1.30\tv1.30.0\tv1.30.4\t3.9\t3.5.12-0\n"), 2, "5 fields"),
            (concat!("minor\tfirst_patch\tlast_patch_checked\tpause\tetcd\tcoredns\tsource\n", "1.30\tv1.30.0\tv1.30.4\t3.9\t3.5.12-0\tv1.11.1\ts\n1.30\tv1.30.6\tv1.30.9\t3.9\t3.5.15-0\tv1.11.3\ts\n"), 3, "does not follow"),
            (concat!("minor\tfirst_patch\tlast_patch_checked\tpause\tetcd\tcoredns\tsource\n", "1.30\tv1.30.0\tv1.31.4\t3.9\t3.5.12-0\tv1.11.1\ts\n"), 2, "not a release of v1.30"),
            (concat!("minor\tfirst_patch\tlast_patch_checked\tpause\tetcd\tcoredns\tsource\n", "1.30\tv1.30.0\tv1.30.4\t3.9\t3.5 12\tv1.11.1\ts\n"), 2, "etcd"),
        ];
        for (text, line, what) in bad {
            let e = parse_release_data(text).unwrap_err();
            assert_eq!(e.line, *line, "{e}");
            assert!(e.to_string().contains(what), "{e}");
        }
        assert!(parse_release_data(H).is_err());
    }

    #[test]
    fn aliases() {
        assert_eq!(alias_of("k8s.gcr.io"), Some("registry.k8s.io"));
        assert_eq!(alias_of("registry.k8s.io"), Some("k8s.gcr.io"));
        assert_eq!(alias_of("quay.io"), None);
    }
}
