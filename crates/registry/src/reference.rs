//! Image references: parsing, validation and docker-style normalisation.
//!
//! The grammar is the one of the distribution project (`reference/reference.go`):
//!
//! ```text
//! reference      := name [ ":" tag ] [ "@" digest ]
//! name           := [ domain "/" ] path-component [ "/" path-component ]*
//! domain         := host [ ":" port ]
//! path-component := [a-z0-9]+ ( separator [a-z0-9]+ )*      separator := [_.] | "__" | "-"+
//! tag            := [\w][\w.-]{0,127}
//! digest         := "sha256:" 64 lowercase hex digits
//! ```
//!
//! Normalisation follows the docker CLI: a name without a registry is on `docker.io`, a
//! single-component repository on `docker.io` lives under `library/`, and a reference with
//! neither tag nor digest means the tag `latest`.

use std::fmt;
use std::str::FromStr;

use crate::error::{ComponentDefect, ReferenceError, ReferenceProblem};

/// The registry that references without a registry component point to.
pub const DOCKER_HUB: &str = "docker.io";

/// The host that serves the distribution API for [`DOCKER_HUB`].
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";

/// The tag assumed when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";

/// Longest name (`registry/repository`) the distribution grammar accepts.
const NAME_MAX: usize = 255;

/// A fully qualified image reference: `registry/repository[:tag][@digest]`.
///
/// At least one of `tag` and `digest` is set: [`Reference::parse`] fills in the tag
/// `latest` when the input has neither.
///
/// ```
/// use airlock_registry::Reference;
///
/// let r = Reference::parse("nginx").unwrap();
/// assert_eq!(r.to_string(), "docker.io/library/nginx:latest");
/// assert_eq!(r.reference(), "latest");
///
/// let r = Reference::parse("127.0.0.1:5000/team/app:1.2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef").unwrap();
/// assert_eq!(r.registry, "127.0.0.1:5000");
/// assert_eq!(r.name(), "127.0.0.1:5000/team/app");
/// assert!(r.reference().starts_with("sha256:"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// The registry host, with its port if any (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// The repository path inside the registry (`library/nginx`).
    pub repository: String,
    /// The tag, if the reference names one (or none was given and there is no digest).
    pub tag: Option<String>,
    /// The digest (`sha256:<hex>`), if the reference pins one.
    pub digest: Option<String>,
}

impl Reference {
    /// Parses and normalises a reference the way `docker pull` reads it.
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        if let Some(e) = userinfo_error(s) {
            return Err(e);
        }
        parse(s).map_err(|reason| ReferenceError {
            reference: s.to_owned(),
            reason,
        })
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// What goes into `/v2/<repository>/manifests/<reference>`: the digest if there is one,
    /// else the tag.
    pub fn reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or(DEFAULT_TAG)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

/// Checks a registry host with an optional port (`harbor.lan`, `10.0.0.5:5000`,
/// `[::1]:5000`), as it appears in front of a repository.
pub fn validate_host(registry: &str) -> Result<(), ReferenceError> {
    validate_registry(registry).map_err(|reason| ReferenceError {
        reference: registry.to_owned(),
        reason,
    })
}

/// The error for `s` when it may carry userinfo (`user[:password]@host/…`, a URL's), which
/// is then never echoed: everything up to the last `@` is shown as `***`.
///
/// After the `@` of `name@digest` comes a digest, never a `/`; a `:` before the `@` that is
/// not followed by a valid digest may be a password.
fn userinfo_error(s: &str) -> Option<ReferenceError> {
    let (before, after) = s.split_once('@')?;
    let reason = if after.contains('/') {
        ReferenceProblem::Credentials
    } else if before.contains(':') && validate_digest(after).is_err() {
        ReferenceProblem::NoDigestAfterAt
    } else {
        return None;
    };
    let rest = &s[s.rfind('@').map_or(0, |i| i + 1)..];
    Some(ReferenceError {
        reference: format!("***@{rest}"),
        reason,
    })
}

/// Maps the aliases of Docker Hub to [`DOCKER_HUB`]; any other registry is returned as is.
pub fn normalize_registry(registry: &str) -> &str {
    match registry {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => DOCKER_HUB,
        other => other,
    }
}

fn parse(s: &str) -> Result<Reference, ReferenceProblem> {
    if s.is_empty() {
        return Err(ReferenceProblem::Empty);
    }
    if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(ReferenceProblem::Character(c));
    }

    let (rest, digest) = match s.split_once('@') {
        Some((rest, digest)) => {
            validate_digest(digest)?;
            (rest, Some(digest.to_owned()))
        }
        None => (s, None),
    };

    // A tag is the part after the last ':' that comes after the last '/': the ':' of a
    // registry port is always followed by a '/'.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => {
            let (name, tag) = (&rest[..last_slash + i], &rest[last_slash + i + 1..]);
            validate_tag(tag)?;
            (name, Some(tag.to_owned()))
        }
        None => (rest, None),
    };
    if name.is_empty() {
        return Err(ReferenceProblem::EmptyRepository);
    }

    let (registry, repository) = match name.split_once('/') {
        Some((first, remainder)) if is_registry(first) => {
            validate_registry(first)?;
            (normalize_registry(first).to_owned(), remainder.to_owned())
        }
        _ => (DOCKER_HUB.to_owned(), name.to_owned()),
    };
    validate_repository(&repository)?;
    let repository = if registry == DOCKER_HUB && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository
    };
    if registry.len() + 1 + repository.len() > NAME_MAX {
        return Err(ReferenceProblem::NameTooLong {
            name: format!("{registry}/{repository}"),
            limit: NAME_MAX,
        });
    }

    let tag = match (&tag, &digest) {
        (None, None) => Some(DEFAULT_TAG.to_owned()),
        _ => tag,
    };
    Ok(Reference {
        registry,
        repository,
        tag,
        digest,
    })
}

/// The first path component is a registry if it contains '.' or ':', or is `localhost`.
///
/// The docker CLI also takes a component with an uppercase letter for a host (`UPPER/case`
/// is a pull from the host `upper`); here it stays a repository component and is refused for
/// its uppercase letter, so a typo never becomes a lookup of an unintended host.
fn is_registry(first: &str) -> bool {
    first.contains(['.', ':']) || first == "localhost"
}

fn validate_registry(registry: &str) -> Result<(), ReferenceProblem> {
    let (host, port) = if let Some(v6) = registry.strip_prefix('[') {
        let Some((addr, after)) = v6.split_once(']') else {
            return Err(ReferenceProblem::UnclosedIpv6 {
                registry: registry.to_owned(),
            });
        };
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(ReferenceProblem::NotIpv6 {
                address: addr.to_owned(),
                registry: registry.to_owned(),
            });
        }
        match after {
            "" => (None, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => {
                    return Err(ReferenceProblem::AfterIpv6 {
                        after: after.to_owned(),
                        registry: registry.to_owned(),
                    })
                }
            },
        }
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(registry), None),
        }
    };
    if let Some(host) = host {
        if host.is_empty() {
            return Err(ReferenceProblem::EmptyHost {
                registry: registry.to_owned(),
            });
        }
        for component in host.split('.') {
            let ok = !component.is_empty()
                && component
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !component.starts_with('-')
                && !component.ends_with('-');
            if !ok {
                return Err(ReferenceProblem::HostComponent {
                    host: host.to_owned(),
                    component: component.to_owned(),
                });
            }
        }
    }
    if let Some(port) = port {
        if port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()) || port.len() > 5 {
            return Err(ReferenceProblem::Port {
                port: port.to_owned(),
                registry: registry.to_owned(),
            });
        }
    }
    Ok(())
}

pub(crate) fn validate_repository(repository: &str) -> Result<(), ReferenceProblem> {
    for component in repository.split('/') {
        if component.is_empty() {
            return Err(ReferenceProblem::EmptyComponent {
                repository: repository.to_owned(),
            });
        }
        if let Some(defect) = path_component_error(component) {
            let looks_like_host = component.chars().any(|c| c.is_ascii_uppercase())
                && repository.starts_with(&format!("{component}/"));
            return Err(ReferenceProblem::Component {
                component: component.to_owned(),
                defect,
                looks_like_host,
            });
        }
    }
    Ok(())
}

/// Why `component` is not `[a-z0-9]+ ( ( [_.] | __ | -+ ) [a-z0-9]+ )*`, or `None`.
fn path_component_error(component: &str) -> Option<ComponentDefect> {
    let bytes = component.as_bytes();
    if let Some(c) = component.chars().find(|c| c.is_ascii_uppercase()) {
        return Some(ComponentDefect::Uppercase(c));
    }
    if let Some(c) = component
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(*c)))
    {
        return Some(ComponentDefect::Character(c));
    }
    let is_alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !is_alnum(bytes[0]) || !is_alnum(bytes[bytes.len() - 1]) {
        return Some(ComponentDefect::Ends);
    }
    let mut i = 0;
    while i < bytes.len() {
        if is_alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !is_alnum(bytes[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-');
        if !ok {
            return Some(ComponentDefect::Separator(sep.to_owned()));
        }
    }
    None
}

pub(crate) fn validate_tag(tag: &str) -> Result<(), ReferenceProblem> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = tag.chars();
    let valid = match chars.next() {
        Some(first) => word(first) && chars.all(|c| word(c) || c == '.' || c == '-'),
        None => false,
    };
    if !valid || tag.len() > 128 {
        return Err(ReferenceProblem::Tag(tag.to_owned()));
    }
    Ok(())
}

/// Checks `sha256:` followed by 64 lowercase hex digits.
pub(crate) fn validate_digest(digest: &str) -> Result<(), ReferenceProblem> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(ReferenceProblem::NoAlgorithm(digest.to_owned()));
    };
    if algorithm != "sha256" {
        return Err(ReferenceProblem::Algorithm(algorithm.to_owned()));
    }
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(ReferenceProblem::DigestHex(digest.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a reference with userinfo (`user:pw@host/…`) was echoed back, password
    /// and all, in the error.
    #[test]
    fn userinfo_is_refused_without_echoing_it() {
        for input in [
            "user:s3cret@registry.example/app:1",
            "user:s3cret@registry.example:5000/app",
            "https://user:s3cret@registry.example/app",
            "user:s3cret@registry.example",
            "user:s3@cret@registry.example/app",
            // Found by `prop_userinfo_is_refused_and_hidden`: `host:port` after the `@` looked
            // like a digest (`algorithm:encoded`), and the password was echoed.
            "user:s3cret@registry.example:5000",
            "user@registry.example/app",
        ] {
            let err = Reference::parse(input).expect_err(input);
            let shown = err.to_string();
            assert!(
                !shown.contains("s3cret") && !shown.contains("s3@"),
                "{shown}"
            );
            assert!(shown.contains("cannot carry credentials"), "{shown}");
            assert!(
                shown.contains("hint: give credentials in an auth file"),
                "{shown}"
            );
        }
        // `name@digest` and `name:tag@digest` are no userinfo.
        assert!(Reference::parse(&format!("app:1@{D}")).is_ok());
        assert!(Reference::parse("nginx@latest")
            .unwrap_err()
            .to_string()
            .contains("no algorithm"));
    }

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn good_references() {
        let cases: &[(&str, &str, &str, Option<&str>, bool)] = &[
            // input, registry, repository, tag, has digest
            ("nginx", "docker.io", "library/nginx", Some("latest"), false),
            (
                "nginx:1.25",
                "docker.io",
                "library/nginx",
                Some("1.25"),
                false,
            ),
            ("user/app", "docker.io", "user/app", Some("latest"), false),
            (
                "docker.io/nginx",
                "docker.io",
                "library/nginx",
                Some("latest"),
                false,
            ),
            (
                "index.docker.io/nginx",
                "docker.io",
                "library/nginx",
                Some("latest"),
                false,
            ),
            (
                "registry-1.docker.io/user/app:v1",
                "docker.io",
                "user/app",
                Some("v1"),
                false,
            ),
            (
                "docker.io/library/nginx",
                "docker.io",
                "library/nginx",
                Some("latest"),
                false,
            ),
            ("localhost/app", "localhost", "app", Some("latest"), false),
            (
                "localhost:5000/app:dev",
                "localhost:5000",
                "app",
                Some("dev"),
                false,
            ),
            (
                "127.0.0.1:5443/a/b/c:1",
                "127.0.0.1:5443",
                "a/b/c",
                Some("1"),
                false,
            ),
            (
                "registry.k8s.io/pause:3.9",
                "registry.k8s.io",
                "pause",
                Some("3.9"),
                false,
            ),
            (
                "quay.io/coreos/etcd:v3.5.9",
                "quay.io",
                "coreos/etcd",
                Some("v3.5.9"),
                false,
            ),
            (
                "Registry.Example/app",
                "Registry.Example",
                "app",
                Some("latest"),
                false,
            ),
            (
                "localhost/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "localhost",
                "app",
                None,
                true,
            ),
            ("[::1]:5000/app", "[::1]:5000", "app", Some("latest"), false),
            ("a.b/x__y/z-w", "a.b", "x__y/z-w", Some("latest"), false),
            ("a.b/x.y_z---w", "a.b", "x.y_z---w", Some("latest"), false),
            (
                "nginx:_tag.-x",
                "docker.io",
                "library/nginx",
                Some("_tag.-x"),
                false,
            ),
        ];
        for &(input, registry, repository, tag, digest) in cases {
            let r = Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.registry, registry, "{input}");
            assert_eq!(r.repository, repository, "{input}");
            assert_eq!(r.tag.as_deref(), tag, "{input}");
            assert_eq!(r.digest.is_some(), digest, "{input}");
        }
    }

    #[test]
    fn digests_and_tags() {
        let r = Reference::parse(&format!("nginx@{D}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_deref(), Some(D));
        assert_eq!(r.reference(), D);
        assert_eq!(r.to_string(), format!("docker.io/library/nginx@{D}"));

        let r = Reference::parse(&format!("localhost:5000/app:1.0@{D}")).unwrap();
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        assert_eq!(r.reference(), D);
        assert_eq!(r.to_string(), format!("localhost:5000/app:1.0@{D}"));

        let r = Reference::parse("localhost:5000/app").unwrap();
        assert_eq!(r.reference(), "latest");
        assert_eq!(r.name(), "localhost:5000/app");
        assert_eq!(r.to_string(), "localhost:5000/app:latest");
        assert_eq!("localhost:5000/app".parse::<Reference>().unwrap(), r);
    }

    #[test]
    fn bad_references() {
        let long_tag = "t".repeat(129);
        let long_name = format!("r.io/{}", "a".repeat(260));
        let cases: Vec<(String, &str)> = vec![
            ("".into(), "empty"),
            ("Nginx".into(), "uppercase letter `N`"),
            ("user/App".into(), "uppercase letter `A`"),
            ("nginx:".into(), "the tag ``"),
            ("nginx:-x".into(), "the tag `-x`"),
            (format!("nginx:{long_tag}"), "1 to 128"),
            ("nginx@sha256:abc".into(), "64 lowercase hex"),
            (
                format!("nginx@{}", D.to_uppercase().replace("SHA256", "sha256")),
                "64 lowercase hex",
            ),
            (format!("nginx@md5:{}", &D[7..]), "algorithm `md5`"),
            ("nginx@latest".into(), "no algorithm"),
            ("a.b/x__y/z-_-w".into(), "separator `-_-`"),
            ("a.b/x...y".into(), "separator `...`"),
            ("a.b/-x".into(), "start and end"),
            ("a.b/x//y".into(), "empty path component"),
            ("a.b/".into(), "empty path component"),
            ("a.b:port/x".into(), "the port `port`"),
            ("a.b:/x".into(), "the port ``"),
            ("a..b/x".into(), "registry host `a..b`"),
            ("-a.b/x".into(), "registry host `-a.b`"),
            ("[::1/x".into(), "does not close"),
            ("[zz]:5000/x".into(), "not an IPv6 address"),
            ("ng inx".into(), "character ' '"),
            ("a.b/x$y".into(), "character `$`"),
            (long_name, "longer than 255"),
            // Regression: `UPPER/case` was taken for the host `UPPER` (and looked up as
            // `upper`) instead of being refused.
            ("UPPER/case".into(), "uppercase letter `U`"),
            ("UPPER/case".into(), "registry host needs a `.`"),
            ("Team/app:1".into(), "uppercase letter `T`"),
        ];
        for (input, needle) in cases {
            let err = Reference::parse(&input).expect_err(&input).to_string();
            assert!(err.contains(needle), "{input:?}: {err:?} lacks {needle:?}");
            assert!(err.starts_with("invalid image reference `"), "{err}");
        }
    }
}

/// Property tests: `PROPTEST_CASES` sets how many cases (`cargo xtask fuzz` runs many more).
#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;

    /// A path component: `[a-z0-9]+ (sep [a-z0-9]+)*`.
    fn component() -> impl Strategy<Value = String> {
        (
            "[a-z0-9]{1,8}",
            proptest::collection::vec(("(\\.|_|__|-{1,3})", "[a-z0-9]{1,6}"), 0..3),
        )
            .prop_map(|(first, rest)| {
                let mut s = first;
                for (sep, part) in rest {
                    s.push_str(&sep);
                    s.push_str(&part);
                }
                s
            })
    }

    fn host() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z][a-z0-9]{0,8}(\\.[a-z][a-z0-9]{0,8}){1,3}",
            "[a-z][a-z0-9]{0,8}(\\.[a-z][a-z0-9]{0,8}){0,2}:[0-9]{1,5}",
            Just("localhost".to_string()),
            "localhost:[0-9]{1,5}",
            "\\[::[0-9a-f]{1,4}\\]:[0-9]{1,5}",
        ]
    }

    /// Valid references, with or without registry, tag and digest.
    fn reference_text() -> impl Strategy<Value = String> {
        (
            proptest::option::of(host()),
            proptest::collection::vec(component(), 1..4),
            proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
            proptest::option::of("[0-9a-f]{64}"),
        )
            .prop_filter(
                "a first component with `.` is a host",
                |(host, path, _, _)| {
                    host.is_some() || !(path[0].contains('.') || path[0] == "localhost")
                },
            )
            .prop_map(|(host, path, tag, digest)| {
                let mut s = host.map(|h| format!("{h}/")).unwrap_or_default();
                s.push_str(&path.join("/"));
                if let Some(t) = tag {
                    s.push(':');
                    s.push_str(&t);
                }
                if let Some(d) = digest {
                    s.push_str("@sha256:");
                    s.push_str(&d);
                }
                s
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::default())]

        /// No input panics the parser; an error names the input (or hides its userinfo).
        #[test]
        fn prop_parse_never_panics(s in "\\PC{0,80}|[a-zA-Z0-9:/@._\\-\\[\\]]{0,80}") {
            if let Err(e) = Reference::parse(&s) {
                prop_assert!(e.to_string().starts_with("invalid image reference `"));
            }
        }

        /// A parsed reference printed and parsed again is the same reference.
        #[test]
        fn prop_round_trip(s in reference_text()) {
            let r = Reference::parse(&s).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let printed = r.to_string();
            let again = Reference::parse(&printed)
                .map_err(|e| TestCaseError::fail(format!("{printed}: {e}")))?;
            prop_assert_eq!(&again, &r);
            prop_assert_eq!(again.to_string(), printed);
        }

        /// A first component with an uppercase letter and no `.`/`:` is never a host, and never
        /// accepted.
        #[test]
        fn prop_upper_first_component_is_refused(
            first in "[a-z0-9]{0,4}[A-Z][A-Za-z0-9]{0,6}",
            rest in reference_text(),
        ) {
            prop_assume!(first != "localhost");
            let s = format!("{first}/{rest}");
            prop_assert!(Reference::parse(&s).is_err(), "{} was accepted", s);
        }

        /// `user:password@reference` is never accepted, and the password never shown.
        #[test]
        fn prop_userinfo_is_refused_and_hidden(
            user in "[a-z]{1,8}",
            password in "PW[A-Z]{8,12}",
            rest in reference_text(),
            scheme in proptest::option::of(Just("https://")),
        ) {
            let s = format!("{}{user}:{password}@{rest}", scheme.unwrap_or(""));
            let e = Reference::parse(&s);
            prop_assert!(e.is_err(), "{} was accepted", s);
            let shown = e.unwrap_err().to_string();
            prop_assert!(!shown.contains(&password), "{}", shown);
        }
    }
}
