//! Where images land on the offline side (docs/load.md).
//!
//! Images keep their canonical names in the bundle (`registry.k8s.io/pause`). At load time a
//! [`Target`] (`registry://harbor.lan/k8s`) and a [`NameRule`] decide the repository at the
//! target, after any explicit prefix [`Rewrite`]. Digests never change.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// How a canonical name becomes a repository under the target prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NameRule {
    /// `harbor.lan/mirror/registry.k8s.io/pause`: the origin host stays as a path element.
    #[default]
    KeepHost,
    /// `harbor.lan/mirror/coredns/coredns`: the origin host is dropped.
    DropHost,
    /// `harbor.lan/mirror/coredns`: only the last path element (kubeadm's `imageRepository`).
    Flat,
}

impl FromStr for NameRule {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        match s {
            "keep-host" => Ok(NameRule::KeepHost),
            "drop-host" => Ok(NameRule::DropHost),
            "flat" => Ok(NameRule::Flat),
            other => Err(NameError::BadRule(other.to_string())),
        }
    }
}

impl fmt::Display for NameRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameRule::KeepHost => "keep-host",
            NameRule::DropHost => "drop-host",
            NameRule::Flat => "flat",
        })
    }
}

/// An explicit prefix rewrite: canonical names starting with `from` (at a path boundary) land
/// at `to` + the rest, under the target prefix; the rule is not applied to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    /// A canonical name prefix, e.g. `registry.k8s.io/coredns`.
    pub from: String,
    /// Its replacement, e.g. `dns` (may be empty: the rest moves up to the prefix).
    pub to: String,
}

impl FromStr for Rewrite {
    type Err = NameError;
    /// `FROM=TO`.
    fn from_str(s: &str) -> Result<Self, NameError> {
        let (from, to) = s.split_once('=').ok_or_else(|| NameError::BadRewrite {
            text: s.to_string(),
            problem: "expected FROM=TO",
        })?;
        let (from, to) = (
            from.trim().trim_end_matches('/'),
            to.trim().trim_matches('/'),
        );
        if from.is_empty() {
            return Err(NameError::BadRewrite {
                text: s.to_string(),
                problem: "FROM is empty",
            });
        }
        if !valid_path(to) && !to.is_empty() {
            return Err(NameError::BadRewrite {
                text: s.to_string(),
                problem: "TO must be lowercase path components (a-z, 0-9, `.`, `_`, `-`, `/`)",
            });
        }
        Ok(Rewrite {
            from: from.to_string(),
            to: to.to_string(),
        })
    }
}

/// Reads rewrites from a file: one `FROM=TO` a line, `#` comments.
pub fn parse_rewrite_file(text: &str) -> Result<Vec<Rewrite>, (usize, NameError)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        out.push(line.parse().map_err(|e| (i + 1, e))?);
    }
    Ok(out)
}

/// A rewrite file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RewriteFileError {
    /// The file cannot be read.
    #[error("cannot read the rewrite file `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a rewrite.
    #[error("{}:{line}: {error}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// What is wrong with it.
        error: NameError,
    },
}

/// Reads the rewrite file at `path` (see [`parse_rewrite_file`]).
pub fn read_rewrite_file(path: &Path) -> Result<Vec<Rewrite>, RewriteFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| RewriteFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_rewrite_file(&text).map_err(|(line, error)| RewriteFileError::Line {
        path: path.to_owned(),
        line,
        error,
    })
}

/// A registry to load into: `registry://HOST[:PORT][/PREFIX]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `harbor.lan` or `127.0.0.1:5000`.
    pub host: String,
    /// `k8s` or `mirror/base` (no leading or trailing slash), or empty.
    pub prefix: String,
}

impl FromStr for Target {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        let bad = |problem| NameError::BadTarget {
            text: s.to_string(),
            problem,
        };
        let rest = s
            .strip_prefix("registry://")
            .ok_or_else(|| bad("expected registry://HOST[:PORT][/PREFIX]"))?;
        let (host, prefix) = match rest.split_once('/') {
            Some((h, p)) => (h, p.trim_matches('/')),
            None => (rest, ""),
        };
        if let Some(at) = rest.rfind('@') {
            // Never echo what may be a password.
            return Err(NameError::BadTarget {
                text: format!("registry://***@{}", &rest[at + 1..]),
                problem: "a target cannot carry credentials: use --username and --password-stdin",
            });
        }
        if host.is_empty() {
            return Err(bad("the host is missing"));
        }
        if airlock_registry::reference::validate_host(host).is_err() {
            return Err(bad(
                "the host must be a host name or IP address with an optional port, such as \
                 `harbor.lan:5000` or `[fd00::1]:5000`",
            ));
        }
        if !prefix.is_empty() && !valid_path(prefix) {
            return Err(bad(
                "the prefix must be lowercase path components (a-z, 0-9, `.`, `_`, `-`)",
            ));
        }
        Ok(Target {
            host: host.to_string(),
            prefix: prefix.to_string(),
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "registry://{}", self.host)
        } else {
            write!(f, "registry://{}/{}", self.host, self.prefix)
        }
    }
}

fn valid_path(p: &str) -> bool {
    !p.is_empty()
        && p.split('/').all(|c| {
            !c.is_empty()
                && c.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
                && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
        })
}

/// Maps canonical names (`registry.k8s.io/coredns/coredns`) to repositories at a target.
#[derive(Debug, Clone, Default)]
pub struct NameMapper {
    /// The target prefix (may be empty).
    pub prefix: String,
    /// The rule for names no rewrite matches.
    pub rule: NameRule,
    /// Explicit rewrites; the longest matching `from` wins.
    pub rewrites: Vec<Rewrite>,
}

impl NameMapper {
    /// The repository (without host) a canonical name lands at.
    pub fn repository(&self, canonical: &str) -> String {
        let rewritten = self
            .rewrites
            .iter()
            .filter(|r| {
                canonical == r.from
                    || canonical
                        .strip_prefix(&r.from)
                        .is_some_and(|rest| rest.starts_with('/'))
            })
            .max_by_key(|r| r.from.len())
            .map(|r| {
                let rest = canonical[r.from.len()..].trim_start_matches('/');
                join(&r.to, rest)
            });
        let path = rewritten.unwrap_or_else(|| {
            let (_host, path) = canonical.split_once('/').unwrap_or(("", canonical));
            match self.rule {
                NameRule::KeepHost => canonical.to_string(),
                NameRule::DropHost => path.to_string(),
                NameRule::Flat => path.rsplit('/').next().unwrap_or(path).to_string(),
            }
        });
        join(&self.prefix, &path)
    }

    /// Maps every canonical name; two names landing on one repository is an error naming both
    /// and the repository, before anything is pushed.
    pub fn map_all<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<BTreeMap<String, String>, NameError> {
        let mut out = BTreeMap::new();
        let mut taken: BTreeMap<String, String> = BTreeMap::new();
        for name in names {
            let repo = self.repository(name);
            if let Some(other) = taken.get(&repo) {
                if other != name {
                    return Err(NameError::Collision {
                        first: other.clone(),
                        second: name.to_string(),
                        repository: repo,
                        rule: self.rule,
                    });
                }
            }
            taken.insert(repo.clone(), name.to_string());
            out.insert(name.to_string(), repo);
        }
        Ok(out)
    }
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}/{b}"),
    }
}

/// A name mapping problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Two images would land on one repository.
    #[error("`{first}` and `{second}` would both land at `{repository}` with --names {rule}\n  hint: use --names keep-host, or --rewrite FROM=TO for one of them")]
    Collision {
        /// The first image.
        first: String,
        /// The second image.
        second: String,
        /// The repository both map to.
        repository: String,
        /// The rule in force.
        rule: NameRule,
    },
    /// `--names` has an unknown value.
    #[error("unknown name rule `{0}`: use keep-host, drop-host or flat")]
    BadRule(String),
    /// A rewrite is malformed.
    #[error("bad rewrite `{text}`: {problem}")]
    BadRewrite {
        /// As given.
        text: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// A target is malformed.
    #[error("bad target `{text}`: {problem}")]
    BadTarget {
        /// As given.
        text: String,
        /// What is wrong.
        problem: &'static str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapper(prefix: &str, rule: NameRule, rewrites: &[&str]) -> NameMapper {
        NameMapper {
            prefix: prefix.into(),
            rule,
            rewrites: rewrites.iter().map(|r| r.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn a_rewrite_file_names_its_path_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rewrites.txt");
        std::fs::write(&path, "# mirrors\nquay.io=mirror/quay\n\nnot a rewrite\n").unwrap();
        let e = read_rewrite_file(&path).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}:4: bad rewrite `not a rewrite`: expected FROM=TO",
                path.display()
            )
        );
        std::fs::write(&path, "quay.io=mirror/quay # the mirror\n").unwrap();
        assert_eq!(read_rewrite_file(&path).unwrap().len(), 1);
        let missing = dir.path().join("none.txt");
        let e = read_rewrite_file(&missing).unwrap_err();
        assert!(
            e.to_string().starts_with("cannot read the rewrite file"),
            "{e}"
        );
    }

    #[test]
    fn rules() {
        let cases = [
            (
                NameRule::KeepHost,
                "registry.k8s.io/pause",
                "mirror/registry.k8s.io/pause",
            ),
            (
                NameRule::DropHost,
                "registry.k8s.io/coredns/coredns",
                "mirror/coredns/coredns",
            ),
            (
                NameRule::Flat,
                "registry.k8s.io/coredns/coredns",
                "mirror/coredns",
            ),
            (
                NameRule::DropHost,
                "docker.io/library/nginx",
                "mirror/library/nginx",
            ),
            (NameRule::Flat, "docker.io/library/nginx", "mirror/nginx"),
            (
                NameRule::KeepHost,
                "127.0.0.1:5000/a/b",
                "mirror/127.0.0.1:5000/a/b",
            ),
        ];
        for (rule, name, want) in cases {
            assert_eq!(
                mapper("mirror", rule, &[]).repository(name),
                want,
                "{rule} {name}"
            );
        }
        assert_eq!(
            mapper("", NameRule::DropHost, &[]).repository("registry.k8s.io/pause"),
            "pause"
        );
    }

    #[test]
    fn rewrites_win_longest_first_at_path_boundaries() {
        let m = mapper(
            "k8s",
            NameRule::Flat,
            &["registry.k8s.io/coredns=dns", "registry.k8s.io=up"],
        );
        assert_eq!(
            m.repository("registry.k8s.io/coredns/coredns"),
            "k8s/dns/coredns"
        );
        assert_eq!(m.repository("registry.k8s.io/pause"), "k8s/up/pause");
        // `registry.k8s.io/corednsx` is not under `registry.k8s.io/coredns`.
        assert_eq!(m.repository("registry.k8s.io/corednsx"), "k8s/up/corednsx");
        assert_eq!(m.repository("quay.io/x/y"), "k8s/y");
        assert!("nope".parse::<Rewrite>().is_err());
        assert!("a=B".parse::<Rewrite>().is_err());
    }

    #[test]
    fn collisions_are_errors_naming_both() {
        let m = mapper("m", NameRule::Flat, &[]);
        let e = m
            .map_all([
                "registry.k8s.io/coredns/coredns",
                "docker.io/coredns/coredns",
            ])
            .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("registry.k8s.io/coredns/coredns")
                && text.contains("docker.io/coredns/coredns"),
            "{text}"
        );
        assert!(text.contains("`m/coredns`"), "{text}");
        let ok = mapper("m", NameRule::KeepHost, &[])
            .map_all([
                "registry.k8s.io/coredns/coredns",
                "docker.io/coredns/coredns",
            ])
            .unwrap();
        assert_eq!(ok.len(), 2);
    }

    #[test]
    fn targets() {
        let t: Target = "registry://harbor.lan:8443/k8s/base/".parse().unwrap();
        assert_eq!(
            (t.host.as_str(), t.prefix.as_str()),
            ("harbor.lan:8443", "k8s/base")
        );
        assert_eq!(t.to_string(), "registry://harbor.lan:8443/k8s/base");
        let t: Target = "registry://127.0.0.1:5000".parse().unwrap();
        assert_eq!(t.prefix, "");
        for bad in [
            "harbor.lan",
            "registry://",
            "registry://u:p@h/x",
            "registry://h/UPPER",
            "registry://a b: c",
            "registry://h\nx: y/k8s",
            "registry://h:port",
        ] {
            assert!(bad.parse::<Target>().is_err(), "{bad}");
        }
        let e = "registry://u:s3cret@h/x"
            .parse::<Target>()
            .unwrap_err()
            .to_string();
        assert!(!e.contains("s3cret") && e.contains("--username"), "{e}");
    }
}
