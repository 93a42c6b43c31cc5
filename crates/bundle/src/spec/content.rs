//! `spec.files` and `spec.charts`: the entries as written and their checked form
//! ([`FileSpec`], [`ChartSpec`]).

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use airlock_registry::Reference;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;

use super::{at, spec_error, ChartSource, ChartSpec, ChecksumSpec, FileSource, FileSpec};
use crate::error::Error;

/// The canonical host of a local file's name (`local/files/NAME`).
pub const LOCAL_HOST: &str = "local";

/// An entry of `spec.files` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawFile {
    #[serde(default)]
    url: Option<Spanned<String>>,
    #[serde(default)]
    path: Option<Spanned<String>>,
    #[serde(default)]
    sha256: Option<Spanned<String>>,
    #[serde(default)]
    checksum_url: Option<Spanned<String>>,
    #[serde(default)]
    name: Option<Spanned<String>>,
    #[serde(default)]
    repository: Option<Spanned<String>>,
    #[serde(default)]
    tag: Option<Spanned<String>>,
    #[serde(default)]
    mode: Option<Spanned<RawMode>>,
}

/// `mode:` as written: `"0755"`, `"755"` or the number 755 (octal digits).
pub(super) struct RawMode(String);

impl<'de> Deserialize<'de> for RawMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawMode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("permission bits in octal, such as \"0755\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawMode, E> {
                Ok(RawMode(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawMode, E> {
                Ok(RawMode(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawMode, E> {
                Ok(RawMode(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// An entry of `spec.charts` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawChart {
    #[serde(default)]
    chart: Option<Spanned<String>>,
    #[serde(default, rename = "repoURL")]
    repo_url: Option<Spanned<String>>,
    #[serde(default)]
    name: Option<Spanned<String>>,
    #[serde(default)]
    version: Option<Spanned<String>>,
}

/// Checks `spec.files` (relative paths against `base`).
pub(super) fn files(
    path: &Path,
    base: &Path,
    raw: Vec<Spanned<RawFile>>,
) -> Result<Vec<FileSpec>, Error> {
    raw.into_iter().map(|f| file(path, base, f)).collect()
}

fn file(path: &Path, base: &Path, raw: Spanned<RawFile>) -> Result<FileSpec, Error> {
    let (line, column) = at(raw.referenced);
    let f = raw.value;
    let err_at = |s: &Spanned<String>, m: String| {
        let (l, c) = at(s.referenced);
        spec_error(path, l, c, m)
    };
    let (source, host, default_name) = match (&f.url, &f.path) {
        (Some(_), Some(_)) | (None, None) => return Err(spec_error(
            path,
            line,
            column,
            "a file takes either `url` (downloaded) or `path` (a local file), not both or neither",
        )),
        (Some(u), None) => {
            let url = url::Url::parse(&u.value)
                .ok()
                .filter(|p| matches!(p.scheme(), "http" | "https") && p.host_str().is_some())
                .ok_or_else(|| {
                    err_at(
                        u,
                        format!(
                            "`{}` is not an http:// or https:// URL",
                            shown_url(&u.value)
                        ),
                    )
                })?;
            if !url.username().is_empty() {
                return Err(err_at(
                    u,
                    "a file URL must not carry credentials: put them in the docker or podman \
                     auth file for its host"
                        .into(),
                ));
            }
            let last = url
                .path_segments()
                .and_then(|mut s| s.next_back())
                .unwrap_or_default()
                .to_string();
            (
                FileSource::Url(url.to_string()),
                airlock_registry::host_key(&url),
                last,
            )
        }
        (None, Some(p)) => {
            if p.value.is_empty() {
                return Err(err_at(p, "`path` is empty".into()));
            }
            let local = Path::new(&p.value);
            let last = local
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            let full = if local.is_relative() {
                base.join(local)
            } else {
                local.to_path_buf()
            };
            (FileSource::Local(full), LOCAL_HOST.to_string(), last)
        }
    };
    let checksum = match (&f.sha256, &f.checksum_url, &source) {
        (Some(s), Some(_), _) => {
            return Err(err_at(
                s,
                "give either `sha256` or `checksumUrl`, not both".into(),
            ))
        }
        (Some(s), None, _) => ChecksumSpec::Sha256(parse_sha256(&s.value).ok_or_else(|| {
            err_at(
                s,
                format!(
                    "`sha256: {}` is not a sha256 (64 hexadecimal digits)",
                    s.value
                ),
            )
        })?),
        (None, Some(c), FileSource::Url(_)) => {
            url::Url::parse(&c.value)
                .ok()
                .filter(|p| {
                    matches!(p.scheme(), "http" | "https")
                        && p.host_str().is_some()
                        && p.username().is_empty()
                })
                .ok_or_else(|| {
                    err_at(
                        c,
                        format!(
                            "`checksumUrl` `{}` is not an http:// or https:// URL without credentials",
                            shown_url(&c.value)
                        ),
                    )
                })?;
            ChecksumSpec::Url(c.value.clone())
        }
        (None, Some(c), FileSource::Local(_)) => {
            return Err(err_at(
                c,
                "`checksumUrl` is for downloaded files; give `sha256` for a local one".into(),
            ))
        }
        (None, None, FileSource::Url(u)) => {
            return Err(spec_error(
                path,
                line,
                column,
                format!(
                    "file `{}` has no checksum: add `sha256: <hex>` or `checksumUrl: <URL of \
                     its published sha256>`",
                    shown_url(u)
                ),
            ))
        }
        (None, None, FileSource::Local(_)) => ChecksumSpec::Local,
    };
    let name = match &f.name {
        Some(n) => {
            check_name(&n.value).map_err(|m| err_at(n, m.to_string()))?;
            n.value.clone()
        }
        None => {
            check_name(&default_name).map_err(|m| {
                spec_error(path, line, column, format!("{m}; give the file a `name`"))
            })?;
            default_name.to_string()
        }
    };
    let repository = match &f.repository {
        Some(r) => r.value.clone(),
        None => default_repository(&name),
    };
    let tag = f
        .tag
        .as_ref()
        .map_or_else(|| "latest".to_string(), |t| t.value.clone());
    if let Err(e) = Reference::parse(&format!("registry.invalid/{repository}:{tag}")) {
        let (l, c) = f
            .tag
            .as_ref()
            .or(f.repository.as_ref())
            .map_or((line, column), |s| at(s.referenced));
        return Err(spec_error(
            path,
            l,
            c,
            format!(
                "file `{name}`: `{repository}:{tag}` is not a valid repository and tag ({}); \
                 set `repository` and `tag`",
                e.reason
            ),
        ));
    }
    let mode = match &f.mode {
        None => 0o644,
        Some(m) => parse_mode(&m.value.0).ok_or_else(|| {
            let (l, c) = at(m.referenced);
            spec_error(
                path,
                l,
                c,
                format!(
                    "`mode: {}` is not permission bits in octal, such as \"0755\"",
                    m.value.0
                ),
            )
        })?,
    };
    Ok(FileSpec {
        name,
        source,
        checksum,
        repository: format!("{host}/{repository}"),
        tag,
        mode,
        line,
        column,
    })
}

/// Refuses two files of one name, and two on one repository and tag (they would overwrite
/// each other on a load).
pub(super) fn check_unique(path: &Path, files: &[FileSpec]) -> Result<(), Error> {
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut tags: HashMap<String, (usize, &str)> = HashMap::new();
    for f in files {
        if let Some(first) = names.insert(&f.name, f.line) {
            return Err(spec_error(
                path,
                f.line,
                f.column,
                format!(
                    "duplicate file name `{}` (first listed on line {first}); give one a different `name`",
                    f.name
                ),
            ));
        }
        let key = format!("{}:{}", f.repository, f.tag);
        if let Some((first, other)) = tags.insert(key.clone(), (f.line, &f.name)) {
            return Err(spec_error(
                path,
                f.line,
                f.column,
                format!(
                    "files `{other}` (line {first}) and `{}` are both `{key}`; give one a \
                     different `repository` or `tag`",
                    f.name
                ),
            ));
        }
    }
    Ok(())
}

/// Why a file name cannot be a name in the bundle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameProblem {
    /// It is empty.
    #[error("the file name is empty")]
    Empty,
    /// It starts with `/`.
    #[error("file name `{0}` is absolute (it must be relative)")]
    Absolute(String),
    /// It holds a backslash or a control character.
    #[error("file name `{0}` contains a backslash or control character")]
    BadCharacter(String),
    /// A component is empty, `.` or `..`.
    #[error("file name `{0}` has an empty, `.` or `..` component")]
    BadComponent(String),
}

/// A name in the bundle: relative, `/`-separated, no empty, `.` or `..` component.
pub fn check_name(name: &str) -> Result<(), NameProblem> {
    if name.is_empty() {
        return Err(NameProblem::Empty);
    }
    if name.starts_with('/') {
        return Err(NameProblem::Absolute(name.to_string()));
    }
    if name.contains('\\') || name.chars().any(char::is_control) {
        return Err(NameProblem::BadCharacter(name.escape_debug().to_string()));
    }
    if name
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(NameProblem::BadComponent(name.to_string()));
    }
    Ok(())
}

/// `files/<last component of the name, lowercased, anything but [a-z0-9._-] as '-'>`, made a
/// valid repository component (letters or digits at both ends, one kind of separator between).
pub fn default_repository(name: &str) -> String {
    let base = name.rsplit('/').next().unwrap_or(name).to_lowercase();
    let mapped: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut out = String::new();
    let mut run = String::new();
    for c in mapped.chars() {
        if c.is_ascii_alphanumeric() {
            if !run.is_empty() {
                if !out.is_empty() {
                    let ok =
                        run == "." || run == "_" || run == "__" || run.chars().all(|c| c == '-');
                    out.push_str(if ok { &run } else { "-" });
                }
                run.clear();
            }
            out.push(c);
        } else {
            run.push(c);
        }
    }
    if out.is_empty() {
        out.push_str("file");
    }
    format!("files/{out}")
}

fn parse_sha256(s: &str) -> Option<airlock_layout::Digest> {
    let hex = s.strip_prefix("sha256:").unwrap_or(s).to_ascii_lowercase();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    airlock_layout::Digest::parse(&format!("sha256:{hex}")).ok()
}

fn parse_mode(s: &str) -> Option<u32> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    if digits.is_empty() || digits.len() > 4 {
        return None;
    }
    u32::from_str_radix(digits, 8).ok().filter(|m| *m <= 0o7777)
}

/// A URL as written, without credentials, for messages.
fn shown_url(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(mut p) => {
            let _ = p.set_username("");
            let _ = p.set_password(None);
            p.to_string()
        }
        Err(_) => match u.split_once("://") {
            Some((scheme, rest)) if rest.split('/').next().unwrap_or("").contains('@') => {
                let after = &rest[rest.find('@').map_or(0, |i| i + 1)..];
                format!("{scheme}://{after}")
            }
            _ => u.to_string(),
        },
    }
}

/// Checks `spec.charts`.
pub(super) fn charts(path: &Path, raw: Vec<Spanned<RawChart>>) -> Result<Vec<ChartSpec>, Error> {
    let mut out: Vec<ChartSpec> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for c in raw {
        let chart = chart(path, c)?;
        let key = format!("{}:{}", chart_key(&chart), chart.version);
        if let Some(first) = seen.insert(key.clone(), chart.line) {
            return Err(spec_error(
                path,
                chart.line,
                chart.column,
                format!("duplicate chart `{key}` (first listed on line {first})"),
            ));
        }
        out.push(chart);
    }
    Ok(out)
}

fn chart_key(c: &ChartSpec) -> String {
    match &c.source {
        ChartSource::Oci(r) => r.name(),
        ChartSource::Repository { url } => format!("{url}/{}", c.name),
    }
}

fn chart(path: &Path, raw: Spanned<RawChart>) -> Result<ChartSpec, Error> {
    let (line, column) = at(raw.referenced);
    let c = raw.value;
    let err_at = |s: &Spanned<String>, m: String| {
        let (l, c) = at(s.referenced);
        spec_error(path, l, c, m)
    };
    let version = match &c.version {
        None => {
            return Err(spec_error(
                path,
                line,
                column,
                "a chart needs its `version` (exact, as the repository lists it)",
            ))
        }
        Some(v) if v.value.is_empty() || v.value.contains(char::is_whitespace) => {
            return Err(err_at(
                v,
                format!("`version: {}` is not a chart version", v.value),
            ))
        }
        Some(v) => v.value.clone(),
    };
    let tag = airlock_layout::content::chart_tag(&version);
    match (&c.chart, &c.repo_url) {
        (Some(_), Some(_)) | (None, None) => Err(spec_error(
            path,
            line,
            column,
            "a chart takes either `chart: oci://HOST/PATH/NAME` or `repoURL` with `name`",
        )),
        (Some(oci), None) => {
            if let Some(n) = &c.name {
                return Err(err_at(
                    n,
                    "`name` is for `repoURL` charts; an OCI chart's name is the last component \
                     of `chart`"
                        .into(),
                ));
            }
            let Some(rest) = oci.value.strip_prefix("oci://") else {
                return Err(err_at(
                    oci,
                    format!(
                        "`chart: {}` is not an `oci://` reference (for a chart repository give \
                         `repoURL` and `name`)",
                        oci.value
                    ),
                ));
            };
            if rest.rsplit('/').next().unwrap_or("").contains([':', '@']) {
                return Err(err_at(
                    oci,
                    format!(
                        "`{}`: give the version in `version`, not in `chart`",
                        oci.value
                    ),
                ));
            }
            if !rest.contains('/') {
                return Err(err_at(
                    oci,
                    format!("`{}` names no chart (oci://HOST/PATH/NAME)", oci.value),
                ));
            }
            let reference = Reference::parse(&format!("{rest}:{tag}"))
                .map_err(|e| err_at(oci, format!("bad chart reference: {e}")))?;
            let name = reference
                .repository
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string();
            Ok(ChartSpec {
                source: ChartSource::Oci(reference),
                name,
                version,
                line,
                column,
            })
        }
        (None, Some(repo)) => {
            let name = c
                .name
                .as_ref()
                .ok_or_else(|| err_at(repo, "a `repoURL` chart needs the chart's `name`".into()))?;
            let url = url::Url::parse(&repo.value)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
                .ok_or_else(|| {
                    err_at(
                        repo,
                        format!(
                            "`repoURL: {}` is not an http:// or https:// URL",
                            shown_url(&repo.value)
                        ),
                    )
                })?;
            if !url.username().is_empty() {
                return Err(err_at(
                    repo,
                    "`repoURL` must not carry credentials: put them in the docker or podman \
                     auth file for its host"
                        .into(),
                ));
            }
            if name.value.is_empty() || name.value.contains(['/', ' ']) {
                return Err(err_at(
                    name,
                    format!("`name: {}` is not a chart name", name.value),
                ));
            }
            let url = url.to_string().trim_end_matches('/').to_string();
            // Its canonical name must be a valid repository.
            let canonical = repository_chart_name(&url, &name.value);
            Reference::parse(&format!("{canonical}:{tag}")).map_err(|e| {
                err_at(
                    name,
                    format!(
                        "chart `{}` cannot be named `{canonical}:{tag}`: {e}",
                        name.value
                    ),
                )
            })?;
            Ok(ChartSpec {
                source: ChartSource::Repository { url },
                name: name.value.clone(),
                version,
                line,
                column,
            })
        }
    }
}

/// The canonical name of a chart of a classic repository: `REPOHOST[:PORT]/REPOPATH/NAME`.
pub fn repository_chart_name(repo_url: &str, name: &str) -> String {
    let rest = repo_url
        .split_once("://")
        .map_or(repo_url, |(_, r)| r)
        .trim_end_matches('/');
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    format!("{rest}/{name}").to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_repositories() {
        assert!(check_name("kubernetes/v1.35.2/linux/amd64/kubeadm").is_ok());
        for bad in ["", "/etc/x", "a//b", "a/../b", "./a", "a/", "a\\b"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!(
            default_repository("tools/Tool-1.0.tar.gz"),
            "files/tool-1.0.tar.gz"
        );
        assert_eq!(
            default_repository("My File (1).txt"),
            "files/my-file--1-txt"
        );
        assert_eq!(
            default_repository("cni-plugins-linux-amd64-v1.8.0.tgz"),
            "files/cni-plugins-linux-amd64-v1.8.0.tgz"
        );
        assert_eq!(default_repository("__x__"), "files/x");
        assert_eq!(parse_mode("0755"), Some(0o755));
        assert_eq!(parse_mode("644"), Some(0o644));
        assert_eq!(parse_mode("0o600"), Some(0o600));
        assert_eq!(parse_mode("9"), None);
        assert_eq!(parse_mode("rwx"), None);
        assert_eq!(
            repository_chart_name("https://charts.example.org:8443/stable", "Demo"),
            "charts.example.org:8443/stable/demo"
        );
        assert_eq!(shown_url("https://u:p@h/x"), "https://h/x");
    }

    const HEAD: &str = "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {name: t}\nspec:\n";
    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn load(body: &str) -> Result<crate::Spec, Error> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.yaml");
        std::fs::write(&p, format!("{HEAD}{body}")).unwrap();
        crate::Spec::load(&p)
    }

    #[test]
    fn files_and_charts_parse_with_their_defaults() {
        let spec = load(&format!(
            "  files:\n    - url: https://dl.example.org/rel/Tool-1.0.tar.gz\n      sha256: {HEX}\n    - url: http://127.0.0.1:8081/x/kubeadm\n      checksumUrl: http://127.0.0.1:8081/x/kubeadm.sha256\n      name: bin/kubeadm\n      repository: files/kubeadm\n      tag: v1.35.2\n      mode: \"0755\"\n    - path: notes.txt\n  charts:\n    - {{chart: oci://registry.example/charts/podinfo, version: 6.5.0+b1}}\n    - {{repoURL: 'https://charts.example.org/stable/', name: demo, version: 0.1.0}}\n"
        ))
        .unwrap();
        assert!(spec.images.is_empty());
        let f = &spec.files;
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].name, "Tool-1.0.tar.gz");
        assert_eq!(f[0].repository, "dl.example.org/files/tool-1.0.tar.gz");
        assert_eq!((f[0].tag.as_str(), f[0].mode), ("latest", 0o644));
        assert!(matches!(&f[0].checksum, ChecksumSpec::Sha256(d) if d.hex() == HEX));
        assert_eq!(f[1].name, "bin/kubeadm");
        assert_eq!(f[1].repository, "127.0.0.1:8081/files/kubeadm");
        assert_eq!((f[1].tag.as_str(), f[1].mode), ("v1.35.2", 0o755));
        assert_eq!(
            f[1].checksum,
            ChecksumSpec::Url("http://127.0.0.1:8081/x/kubeadm.sha256".into())
        );
        assert_eq!(f[2].repository, "local/files/notes.txt");
        assert_eq!(f[2].checksum, ChecksumSpec::Local);
        assert!(
            matches!(&f[2].source, FileSource::Local(p) if p.ends_with("notes.txt") && p.is_absolute())
        );
        assert_eq!((f[2].line, f[2].column), (14, 7));
        let c = &spec.charts;
        assert!(
            matches!(&c[0].source, ChartSource::Oci(r) if r.to_string() == "registry.example/charts/podinfo:6.5.0_b1")
        );
        assert_eq!(
            (c[0].name.as_str(), c[0].version.as_str()),
            ("podinfo", "6.5.0+b1")
        );
        assert_eq!(
            c[1].source,
            ChartSource::Repository {
                url: "https://charts.example.org/stable".into()
            }
        );
    }

    #[test]
    fn bad_files_and_charts_are_located_errors() {
        for (body, want, needle) in [
            ("  files:\n    - {url: 'https://h/a', path: a}\n", "s.yaml:6:7", "not both or neither"),
            ("  files:\n    - {name: a}\n", "s.yaml:6:7", "not both or neither"),
            ("  files:\n    - url: https://h/a\n", "s.yaml:6:7", "has no checksum"),
            ("  files:\n    - url: https://h/a\n      sha256: abc\n", "s.yaml:7:15", "64 hexadecimal"),
            ("  files:\n    - url: ftp://h/a\n      sha256: abc\n", "s.yaml:6:12", "not an http"),
            ("  files:\n    - url: https://u:hunter2@h/a\n      sha256: abc\n", "s.yaml:6:12", "credentials"),
            ("  files:\n    - path: a\n      name: ../etc/passwd\n", "s.yaml:7:13", "`..` component"),
            ("  files:\n    - path: a\n      name: /etc/passwd\n", "s.yaml:7:13", "absolute"),
            ("  files:\n    - path: a\n      name: a//b\n", "s.yaml:7:13", "empty"),
            ("  files:\n    - url: https://h/\n      checksumUrl: https://h/x.sha256\n", "s.yaml:6:7", "give the file a `name`"),
            ("  files:\n    - path: x/a\n    - path: y/a\n", "s.yaml:7:7", "duplicate file name `a`"),
            ("  files:\n    - {path: a, repository: files/t, tag: v1}\n    - {path: b, repository: files/t, tag: v1}\n", "s.yaml:7:7", "both `local/files/t:v1`"),
            ("  files:\n    - {path: a, mode: rwx}\n", "s.yaml:6:23", "octal"),
            ("  files:\n    - {path: a, checksumUrl: 'https://h/a.sha256'}\n", "s.yaml:6:30", "for downloaded files"),
            ("  charts:\n    - {chart: oci://r.lan/c/demo}\n", "s.yaml:6:7", "needs its `version`"),
            ("  charts:\n    - {chart: 'https://r.lan/c/demo', version: 1.0.0}\n", "s.yaml:6:15", "not an `oci://`"),
            ("  charts:\n    - {chart: 'oci://r.lan/c/demo:1.0', version: 1.0.0}\n", "s.yaml:6:15", "in `version`"),
            ("  charts:\n    - {repoURL: 'https://c.lan', version: 1.0.0}\n", "s.yaml:6:17", "needs the chart's `name`"),
            ("  charts:\n    - {repoURL: 'https://c.lan', chart: 'oci://r/a/b', name: a, version: 1}\n", "s.yaml:6:7", "either"),
            ("  charts:\n    - {repoURL: 'https://c.lan', name: a, version: 1}\n    - {repoURL: 'https://c.lan/', name: a, version: 1}\n", "s.yaml:7:7", "duplicate chart"),
        ] {
            let e = load(body).unwrap_err().to_string();
            assert!(e.contains(want), "{body:?}: {e}");
            assert!(e.contains(needle), "{body:?}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }
}
