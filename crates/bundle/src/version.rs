//! Release-like image tags, for `airlock outdated`: which tags are in one release line and
//! which of them is newer. Pure: no I/O.
//!
//! ```
//! use airlock_bundle::version::{newer, TagVersion};
//!
//! let used = TagVersion::parse("3.5.9-0").unwrap();
//! let tags = ["3.5.9-0", "3.5.10-0", "3.5.15-0", "3.6.4-0", "v3.5.16", "3.5.16-rc.1"];
//! let found = newer(&used, tags.iter().copied());
//! assert_eq!(found.patch.as_deref(), Some("3.5.15-0"));
//! assert_eq!(found.minor.as_deref(), Some("3.6.4-0"));
//! ```
//!
//! A tag is read as `PREFIX NUMBERS [-BUILD] [-PRERELEASE] [SUFFIX]`:
//! - `PREFIX`: ASCII letters before the first digit (`v` of `v1.28.3`), possibly empty;
//! - `NUMBERS`: at least two dot-separated decimal components (`1.28.3`, `3.9`);
//! - `BUILD`: a `-` and digits only right after the numbers (`-0` of etcd's `3.5.9-0`): it
//!   belongs to the version and is compared after the numbers;
//! - `PRERELEASE`: a `-` (or `.`) and a pre-release word (`rc`, `alpha`, `beta`, `pre`,
//!   `dev`, …) with what follows it (`-rc.1`): such a tag is never newer than the release of
//!   the same numbers and never offered as an update;
//! - `SUFFIX`: anything else after the numbers (`-alpine`, `-bookworm`, `-alpine3.18`): a
//!   variant, part of the line.
//!
//! Two tags are in one line only with the same prefix, suffix, number count and the same
//! presence of a build number: `1.25.3-alpine` and `1.25.4-alpine` are, `1.25.4` is not;
//! `3.5.9-0` and `3.5.10-0` are, `v3.5.10` is not. `latest`, `stable`, a single number
//! (`8`) or a date-like single component are not versions.

use std::cmp::Ordering;
use std::fmt;

/// Words that mark a pre-release when they follow the numbers after `-` or `.`.
const PRERELEASE_WORDS: &[&str] = &[
    "alpha", "beta", "rc", "pre", "preview", "dev", "snapshot", "nightly", "canary", "next",
];

/// At most this many digits in one component (keeps `u64` safe and skips hashes).
const MAX_DIGITS: usize = 9;

/// A parsed release-like tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagVersion {
    /// The tag as given.
    pub tag: String,
    /// Letters before the numbers (`v`).
    pub prefix: String,
    /// The numeric components (`[1, 28, 3]`), at least two.
    pub numbers: Vec<u64>,
    /// A build number after the numbers (`0` of `3.5.9-0`).
    pub build: Option<u64>,
    /// The pre-release part, when there is one (`rc.1` of `1.2.3-rc.1`).
    pub prerelease: Option<String>,
    /// The variant after the version (`-alpine`), empty when none.
    pub suffix: String,
}

/// Why a tag is not a release-like version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAVersion {
    /// No digits after an optional letter prefix (`latest`, `stable`, `main`).
    NoNumbers,
    /// Only one number (`8`, `20240101`): no minor or patch to compare.
    SingleNumber,
    /// A component too long to be a version (a hash or a timestamp).
    TooLong,
}

impl fmt::Display for NotAVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NotAVersion::NoNumbers => "not a version",
            NotAVersion::SingleNumber => "a single number: no minor or patch to compare",
            NotAVersion::TooLong => "a number too long to be a version",
        })
    }
}

impl TagVersion {
    /// Reads `tag` as a release-like version.
    pub fn parse(tag: &str) -> Result<TagVersion, NotAVersion> {
        let start = tag
            .find(|c: char| c.is_ascii_digit())
            .ok_or(NotAVersion::NoNumbers)?;
        let prefix = &tag[..start];
        if !prefix.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(NotAVersion::NoNumbers);
        }
        let mut rest = &tag[start..];
        let mut numbers = Vec::new();
        loop {
            let len = rest.bytes().take_while(u8::is_ascii_digit).count();
            if len == 0 {
                // `1.` or `1..2`: the dot belongs to the suffix.
                break;
            }
            if len > MAX_DIGITS {
                return Err(NotAVersion::TooLong);
            }
            numbers.push(rest[..len].parse().expect("digits"));
            rest = &rest[len..];
            match rest.strip_prefix('.') {
                Some(after) if after.starts_with(|c: char| c.is_ascii_digit()) => rest = after,
                _ => break,
            }
        }
        if numbers.len() < 2 {
            return Err(NotAVersion::SingleNumber);
        }
        let mut build = None;
        if let Some(after) = rest.strip_prefix('-') {
            let len = after.bytes().take_while(u8::is_ascii_digit).count();
            let ends = after[len..].is_empty() || after[len..].starts_with(['-', '_', '+']);
            if len > 0 && len <= MAX_DIGITS && ends {
                build = Some(after[..len].parse().expect("digits"));
                rest = &after[len..];
            }
        }
        let mut prerelease = None;
        if let Some(after) = rest.strip_prefix(['-', '.']) {
            let lower = after.to_ascii_lowercase();
            let word = PRERELEASE_WORDS.iter().find(|w| {
                lower.starts_with(*w)
                    && lower[w.len()..]
                        .chars()
                        .next()
                        .is_none_or(|c| c.is_ascii_digit() || c == '.' || c == '-')
            });
            if word.is_some() {
                prerelease = Some(after.to_string());
                rest = "";
            }
        }
        Ok(TagVersion {
            tag: tag.to_string(),
            prefix: prefix.to_string(),
            numbers,
            build,
            prerelease,
            suffix: rest.to_string(),
        })
    }

    /// Whether `other` is in the same release line: same prefix, suffix, number count and
    /// presence of a build number.
    pub fn same_line(&self, other: &TagVersion) -> bool {
        self.prefix == other.prefix
            && self.suffix == other.suffix
            && self.numbers.len() == other.numbers.len()
            && self.build.is_some() == other.build.is_some()
    }

    /// Whether this is a pre-release (`1.2.3-rc.1`).
    pub fn is_prerelease(&self) -> bool {
        self.prerelease.is_some()
    }

    /// The order of two tags of one line: the numbers, then the build number, then a release
    /// after its pre-releases (pre-releases among themselves by their text, numbers inside it
    /// compared as numbers).
    pub fn cmp_version(&self, other: &TagVersion) -> Ordering {
        self.numbers
            .cmp(&other.numbers)
            .then(self.build.cmp(&other.build))
            .then_with(|| match (&self.prerelease, &other.prerelease) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => natural(a, b),
            })
    }
}

impl fmt::Display for TagVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.tag)
    }
}

/// `rc.2` < `rc.10`: runs of digits compared as numbers, the rest as text.
fn natural(a: &str, b: &str) -> Ordering {
    fn parts(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut rest = s;
        while let Some(c) = rest.chars().next() {
            let digit = c.is_ascii_digit();
            let len = rest
                .find(|x: char| x.is_ascii_digit() != digit)
                .unwrap_or(rest.len());
            out.push((digit, &rest[..len]));
            rest = &rest[len..];
        }
        out
    }
    let (pa, pb) = (parts(a), parts(b));
    for (x, y) in pa.iter().zip(&pb) {
        let o = match (x, y) {
            ((true, x), (true, y)) => {
                let (x, y) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
                x.len().cmp(&y.len()).then(x.cmp(y))
            }
            ((_, x), (_, y)) => x.cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    pa.len().cmp(&pb.len()).then(a.cmp(b))
}

/// The updates found for a tag among a repository's tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Newer {
    /// The newest release of the line with the same major and minor, newer than the tag.
    pub patch: Option<String>,
    /// The newest release of the line with the same major and a newer minor.
    pub minor: Option<String>,
    /// Every release of the line newer than the tag (patch or minor), oldest first.
    pub all: Vec<String>,
}

impl Newer {
    /// Whether anything newer was found.
    pub fn is_empty(&self) -> bool {
        self.patch.is_none() && self.minor.is_none()
    }
}

/// The releases among `tags` in the line of `used` that are newer than it with the same
/// major: the newest patch (same major and minor) and the newest minor. Pre-releases are
/// never offered; tags outside the line (another prefix, suffix or number count, `latest`)
/// are ignored.
pub fn newer<'a>(used: &TagVersion, tags: impl IntoIterator<Item = &'a str>) -> Newer {
    let mut candidates: Vec<TagVersion> = tags
        .into_iter()
        .filter_map(|t| TagVersion::parse(t).ok())
        .filter(|t| {
            !t.is_prerelease()
                && used.same_line(t)
                && t.numbers[0] == used.numbers[0]
                && t.cmp_version(used) == Ordering::Greater
        })
        .collect();
    candidates.sort_by(|a, b| a.cmp_version(b).then_with(|| a.tag.cmp(&b.tag)));
    candidates.dedup_by(|a, b| a.tag == b.tag);
    let newest = |same_minor: bool| {
        candidates
            .iter()
            .rev()
            .find(|t| (t.numbers[1] == used.numbers[1]) == same_minor)
            .map(|t| t.tag.clone())
    };
    Newer {
        patch: newest(true),
        minor: newest(false),
        all: candidates.into_iter().map(|t| t.tag).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(tag: &str) -> TagVersion {
        TagVersion::parse(tag).unwrap_or_else(|e| panic!("{tag}: {e}"))
    }

    #[test]
    fn parses_the_common_shapes() {
        let t = v("v1.28.3");
        assert_eq!(
            (
                t.prefix.as_str(),
                t.numbers.as_slice(),
                t.build,
                t.suffix.as_str()
            ),
            ("v", &[1, 28, 3][..], None, "")
        );
        let t = v("3.5.9-0");
        assert_eq!((t.numbers.as_slice(), t.build), (&[3, 5, 9][..], Some(0)));
        assert_eq!(t.suffix, "");
        let t = v("1.25.3-alpine");
        assert_eq!((t.build, t.suffix.as_str()), (None, "-alpine"));
        let t = v("v1.10.1");
        assert_eq!(t.numbers, [1, 10, 1]);
        let t = v("3.9");
        assert_eq!(t.numbers, [3, 9]);
        let t = v("1.2.3-rc.1");
        assert_eq!(t.prerelease.as_deref(), Some("rc.1"));
        assert!(t.is_prerelease());
        assert_eq!(t.suffix, "");
        let t = v("1.25.3-alpine3.18");
        assert_eq!(t.suffix, "-alpine3.18");
        let t = v("2.0.0-beta2");
        assert_eq!(t.prerelease.as_deref(), Some("beta2"));
        // A word that only starts like a pre-release word is a variant.
        assert_eq!(v("1.2.3-devel").suffix, "-devel");
        assert_eq!(v("1.2.3-rcx").suffix, "-rcx");
        // `-0` then a variant.
        let t = v("3.5.9-0-alpine");
        assert_eq!((t.build, t.suffix.as_str()), (Some(0), "-alpine"));
    }

    #[test]
    fn not_versions() {
        assert_eq!(TagVersion::parse("latest"), Err(NotAVersion::NoNumbers));
        assert_eq!(TagVersion::parse("stable"), Err(NotAVersion::NoNumbers));
        assert_eq!(TagVersion::parse(""), Err(NotAVersion::NoNumbers));
        assert_eq!(TagVersion::parse("8"), Err(NotAVersion::SingleNumber));
        assert_eq!(
            TagVersion::parse("v8-alpine"),
            Err(NotAVersion::SingleNumber)
        );
        assert!(TagVersion::parse("sha256-0123456789abcdef").is_err());
        assert!(TagVersion::parse("sha256-0123456789abcdef.sig").is_err());
        assert_eq!(
            TagVersion::parse("1.20240101123456"),
            Err(NotAVersion::TooLong)
        );
        assert_eq!(
            TagVersion::parse("release-1.2.3"),
            Err(NotAVersion::NoNumbers)
        );
    }

    #[test]
    fn lines() {
        assert!(v("1.25.3-alpine").same_line(&v("1.25.4-alpine")));
        assert!(!v("1.25.3-alpine").same_line(&v("1.25.4")));
        assert!(v("3.5.9-0").same_line(&v("3.5.10-0")));
        assert!(!v("3.5.9-0").same_line(&v("v3.5.10")));
        assert!(!v("3.5.9-0").same_line(&v("3.5.10")));
        assert!(!v("v1.28.3").same_line(&v("1.28.4")));
        assert!(!v("3.9").same_line(&v("3.9.1")));
    }

    #[test]
    fn order_within_a_line() {
        assert_eq!(v("3.5.9-0").cmp_version(&v("3.5.10-0")), Ordering::Less);
        assert_eq!(v("3.5.9-1").cmp_version(&v("3.5.9-0")), Ordering::Greater);
        assert_eq!(v("1.2.3-rc.1").cmp_version(&v("1.2.3")), Ordering::Less);
        assert_eq!(
            v("1.2.3-rc.2").cmp_version(&v("1.2.3-rc.10")),
            Ordering::Less
        );
        assert_eq!(v("1.2.4-rc.1").cmp_version(&v("1.2.3")), Ordering::Greater);
        assert_eq!(v("1.10.0").cmp_version(&v("1.9.9")), Ordering::Greater);
    }

    #[test]
    fn newest_patch_and_minor() {
        let tags = [
            "v1.2.3",
            "v1.2.5",
            "v1.2.4",
            "v1.3.0",
            "v1.3.1-rc.1",
            "v2.0.0",
            "1.2.9",
            "latest",
            "v1.2.6-rc.1",
            "v1.2.10-alpine",
        ];
        let n = newer(&v("v1.2.3"), tags);
        assert_eq!(n.patch.as_deref(), Some("v1.2.5"));
        assert_eq!(n.minor.as_deref(), Some("v1.3.0"));
        assert_eq!(n.all, ["v1.2.4", "v1.2.5", "v1.3.0"]);
        // The newest of a line is current.
        assert!(newer(&v("v1.3.0"), tags).is_empty());
        // A pre-release in use: its release is an update.
        let n = newer(&v("v1.2.6-rc.1"), ["v1.2.6", "v1.2.7-rc.1"]);
        assert_eq!(n.patch.as_deref(), Some("v1.2.6"));
        // A pre-release is never offered to a release.
        assert!(newer(&v("v1.2.6"), ["v1.2.7-rc.1", "v1.3.0-beta.1"]).is_empty());
        // Variants stay in their line.
        let n = newer(
            &v("1.25.3-alpine"),
            ["1.25.4", "1.25.4-alpine", "1.26.0-bookworm"],
        );
        assert_eq!(n.patch.as_deref(), Some("1.25.4-alpine"));
        assert_eq!(n.minor, None);
        // etcd: the build number belongs to the version.
        let n = newer(
            &v("3.5.9-0"),
            [
                "3.5.10-0", "3.5.15-0", "3.5.9-1", "3.6.4-0", "v3.6.5", "3.4.30-0",
            ],
        );
        assert_eq!(n.patch.as_deref(), Some("3.5.15-0"));
        assert_eq!(n.minor.as_deref(), Some("3.6.4-0"));
        // Two components: `3.9` → `3.10` is a newer minor.
        let n = newer(&v("3.9"), ["3.10", "3.8", "4.0", "3.9.1"]);
        assert_eq!((n.patch, n.minor.as_deref()), (None, Some("3.10")));
    }
}

/// Property tests: `PROPTEST_CASES` sets how many cases.
#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;

    fn tag() -> impl Strategy<Value = String> {
        (
            prop_oneof![Just(""), Just("v")],
            proptest::collection::vec(0u64..30, 2..4),
            proptest::option::of(0u64..3),
            proptest::option::of(prop_oneof![Just("rc.1"), Just("rc.2"), Just("beta")]),
            prop_oneof![Just(""), Just("-alpine"), Just("-slim")],
        )
            .prop_map(|(p, n, b, pre, s)| {
                let mut t = format!(
                    "{p}{}",
                    n.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
                );
                if let Some(b) = b {
                    t.push_str(&format!("-{b}"));
                }
                match pre {
                    Some(pre) => t.push_str(&format!("-{pre}")),
                    None => t.push_str(s),
                }
                t
            })
    }

    proptest! {
        /// Nothing panics the parser, and a parsed tag keeps its text.
        #[test]
        fn prop_parse_never_panics(s in "\\PC{0,24}") {
            if let Ok(t) = TagVersion::parse(&s) {
                prop_assert_eq!(&t.tag, &s);
                prop_assert!(t.numbers.len() >= 2);
            }
        }

        /// Generated tags parse back into the parts they were made of.
        #[test]
        fn prop_generated_tags_parse(t in tag()) {
            let p = TagVersion::parse(&t).unwrap();
            prop_assert!(p.numbers.len() >= 2);
            prop_assert_eq!(p.tag, t);
        }

        /// The order is a total order within a line: antisymmetric and transitive.
        #[test]
        fn prop_order_is_total(a in tag(), b in tag(), c in tag()) {
            let (a, b, c) = (TagVersion::parse(&a).unwrap(), TagVersion::parse(&b).unwrap(), TagVersion::parse(&c).unwrap());
            prop_assert_eq!(a.cmp_version(&b), b.cmp_version(&a).reverse());
            if a.cmp_version(&b) != Ordering::Greater && b.cmp_version(&c) != Ordering::Greater {
                prop_assert_ne!(a.cmp_version(&c), Ordering::Greater);
            }
        }

        /// What `newer` offers is a release of the same line and major, newer than the tag in
        /// use, and the newest of its kind among the tags.
        #[test]
        fn prop_newer_offers_only_newer_releases_of_the_line(
            used in tag(),
            tags in proptest::collection::vec(tag(), 0..30),
        ) {
            let u = TagVersion::parse(&used).unwrap();
            let n = newer(&u, tags.iter().map(String::as_str));
            for offered in n.patch.iter().chain(&n.minor).chain(&n.all) {
                let o = TagVersion::parse(offered).unwrap();
                prop_assert!(!o.is_prerelease());
                prop_assert!(u.same_line(&o));
                prop_assert_eq!(o.numbers[0], u.numbers[0]);
                prop_assert_eq!(o.cmp_version(&u), Ordering::Greater);
            }
            if let Some(p) = &n.patch {
                let p = TagVersion::parse(p).unwrap();
                prop_assert_eq!(p.numbers[1], u.numbers[1]);
                for t in tags.iter().filter_map(|t| TagVersion::parse(t).ok()) {
                    if !t.is_prerelease() && u.same_line(&t) && t.numbers[..2] == u.numbers[..2] {
                        prop_assert_ne!(t.cmp_version(&p), Ordering::Greater, "{} beats {}", t, p);
                    }
                }
            }
            if let Some(m) = &n.minor {
                prop_assert_ne!(TagVersion::parse(m).unwrap().numbers[1], u.numbers[1]);
            }
        }
    }
}
