//! The files of a spec (`spec.files`, node binaries): each resolved to its sha256 before any
//! byte is trusted, then taken from the cache, downloaded into it (through the host's mirrors,
//! resumable, verified before it is committed) or read from a local path, and stored as an
//! ORAS-style artifact ([`airlock_layout::content::file_manifest`]).
//!
//! Download sites share the registries' settings in `spec.registries`: a host's `mirrors`
//! (`host[:port][/path]` or an `http(s)://` URL; the request is the mirror base with the
//! origin URL's path and query), its `plainHttp` (the scheme of a mirror without one) and
//! `caFile`, and its credentials from the docker or podman auth files.

use std::path::{Path, PathBuf};

use airlock_layout::content::{file_manifest, FileParts};
use airlock_layout::{media, Content, Digest, FileChecksum, FileInfo};
use bytes::Bytes;
use tracing::debug;

use crate::error::{BlobError, ContentProblem, ImageError};
use crate::pull::{blocking, write_body, Ctx, Refetch, Resolved, Source};
use crate::spec::{ChecksumSpec, FileSource, FileSpec, RegistrySettings, Spec};

/// The largest checksum file read (a `SHA256SUMS` of a release is a few KiB).
const CHECKSUM_MAX: u64 = 1 << 20;
/// How often a download broken mid-stream is resumed before giving up.
const RESUMES: u32 = 5;

/// The URLs to ask for `url`, in order: the spec's mirrors of its host, then the origin.
pub(crate) fn candidates(spec: &Spec, url: &str) -> Vec<String> {
    let Ok(parsed) = url::Url::parse(url) else {
        return vec![url.to_string()];
    };
    let host = airlock_registry::host_key(&parsed);
    let mut path = parsed.path().to_string();
    if let Some(q) = parsed.query() {
        path.push('?');
        path.push_str(q);
    }
    let mut out = Vec::new();
    if let Some(settings) = RegistrySettings::for_host(&spec.registries, &host) {
        for m in &settings.mirrors {
            let base = if m.starts_with("http://") || m.starts_with("https://") {
                m.clone()
            } else {
                let mirror_host = m.split('/').next().unwrap_or(m);
                let plain = spec
                    .registries
                    .get(mirror_host)
                    .is_some_and(|r| r.plain_http);
                format!("{}://{m}", if plain { "http" } else { "https" })
            };
            out.push(format!("{}{path}", base.trim_end_matches('/')));
        }
    }
    out.push(parsed.to_string());
    out
}

/// `host/path` of a URL: where something was fetched from, as the manifest records it.
pub(crate) fn source_of(url: &str) -> Source {
    match url::Url::parse(url) {
        Ok(u) => Source {
            host: airlock_registry::host_key(&u),
            repository: u.path().trim_start_matches('/').to_string(),
        },
        Err(_) => Source {
            host: String::new(),
            repository: url.to_string(),
        },
    }
}

/// Resolves one file: its sha256, its bytes in the cache, its manifest.
pub(crate) async fn resolve(
    ctx: &Ctx,
    spec_index: usize,
    f: &FileSpec,
) -> Result<Resolved, ImageError> {
    let fail = |problem| ImageError::File {
        file: f.name.clone(),
        problem,
    };
    let mut downloaded = 0;
    let (digest, size, source, url, checksum, refetch) = match &f.source {
        FileSource::Url(url) => {
            let (digest, checksum) = match &f.checksum {
                ChecksumSpec::Sha256(d) => (d.clone(), FileChecksum::Spec),
                ChecksumSpec::Url(c) => (
                    checksum_from(ctx, url, c).await.map_err(fail)?,
                    FileChecksum::Url { url: c.clone() },
                ),
                ChecksumSpec::Local => unreachable!("a URL always has a checksum (spec check)"),
            };
            let urls = candidates(&ctx.spec, url);
            let (size, from) = match cached_size(ctx, &digest) {
                Some(size) => (size, url.clone()),
                None => {
                    let (size, from) = download(ctx, &urls, &digest).await.map_err(fail)?;
                    downloaded = size;
                    (size, from)
                }
            };
            (
                digest,
                size,
                source_of(&from),
                Some(url.clone()),
                checksum,
                Refetch::Urls(urls),
            )
        }
        FileSource::Local(path) => {
            let expected = match &f.checksum {
                ChecksumSpec::Sha256(d) => Some(d.clone()),
                _ => None,
            };
            let (digest, size) = store_local(ctx, path, expected.as_ref())
                .await
                .map_err(fail)?;
            let checksum = if expected.is_some() {
                FileChecksum::Spec
            } else {
                FileChecksum::Local
            };
            (
                digest,
                size,
                // The name, not the path: the operator's directory layout stays out of the
                // bundle.
                Source {
                    host: crate::spec::LOCAL_HOST.to_string(),
                    repository: f.name.clone(),
                },
                None,
                checksum,
                Refetch::Local(path.clone()),
            )
        }
    };
    let title = f.name.rsplit('/').next().unwrap_or(&f.name);
    let built = file_manifest(&FileParts {
        title,
        digest: &digest,
        size,
        created: None,
    });
    store_small(ctx, &built.digest, &built.manifest, &f.name).map_err(fail)?;
    store_small(
        ctx,
        &Digest::of_bytes(&built.config),
        &built.config,
        &f.name,
    )
    .map_err(fail)?;
    let refetch = vec![
        (
            built.digest.clone(),
            Refetch::Bytes(Bytes::from(built.manifest.clone())),
        ),
        (
            Digest::of_bytes(&built.config),
            Refetch::Bytes(Bytes::from(built.config.clone())),
        ),
        (digest.clone(), refetch),
    ];
    Ok(Resolved {
        spec_index,
        reference: format!("{}:{}", f.repository, f.tag),
        name: f.repository.clone(),
        tag: Some(f.tag.clone()),
        source,
        upstream_digest: built.digest.to_string(),
        digest: built.digest.clone(),
        media_type: media::OCI_MANIFEST.to_string(),
        size: built.size(),
        platforms: Vec::new(),
        original_digest: None,
        blobs: built.blobs.clone(),
        layers: Vec::new(),
        artifacts: Vec::new(),
        content: Some(Content::File(FileInfo {
            name: f.name.clone(),
            digest,
            size,
            mode: f.mode,
            url,
            checksum,
        })),
        refetch,
        downloaded,
    })
}

/// Stores a small document (a manifest, a config) in the cache.
pub(crate) fn store_small(
    ctx: &Ctx,
    digest: &Digest,
    bytes: &[u8],
    what: &str,
) -> Result<(), ContentProblem> {
    ctx.store
        .put_bytes(digest, bytes)
        .map(drop)
        .map_err(|e| ContentProblem::Cache {
            what: format!("{what} ({digest})"),
            source: Box::new(BlobError::Layout(e)),
        })
}

/// The size of `digest` in the cache, when it is there.
pub(crate) fn cached_size(ctx: &Ctx, digest: &Digest) -> Option<u64> {
    std::fs::metadata(ctx.store.path(digest))
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len())
}

/// The sha256 of the file at `file_url` from its published checksum file.
async fn checksum_from(
    ctx: &Ctx,
    file_url: &str,
    checksum_url: &str,
) -> Result<Digest, ContentProblem> {
    let bytes = match fetch_small(ctx, checksum_url, CHECKSUM_MAX).await? {
        Small::Found(b) => b,
        Small::Missing(attempts) => {
            return Err(ContentProblem::ChecksumNotFound {
                url: checksum_url.to_string(),
                attempts,
            })
        }
    };
    let base = file_url
        .split(['?', '#'])
        .next()
        .unwrap_or(file_url)
        .rsplit('/')
        .next()
        .unwrap_or_default();
    parse_checksum_file(&bytes, base).map_err(|problem| ContentProblem::Checksum {
        url: checksum_url.to_string(),
        message: problem.to_string(),
    })
}

/// What [`fetch_small`] found.
pub(crate) enum Small {
    /// The bytes.
    Found(Bytes),
    /// It does not exist (404) wherever it could be asked: each source with its answer.
    Missing(Vec<(String, String)>),
}

/// Fetches a small document at `url` through its mirrors.
pub(crate) async fn fetch_small(ctx: &Ctx, url: &str, limit: u64) -> Result<Small, ContentProblem> {
    let mut attempts = Vec::new();
    // Not found where it could be asked (a mirror answering 404 while the origin cannot be
    // reached, as in an isolated network): it does not exist as far as this run can tell.
    let (mut any_missing, mut only_missing) = (false, true);
    for candidate in candidates(&ctx.spec, url) {
        match ctx.client.fetch_bytes(&candidate, limit).await {
            Ok(b) => return Ok(Small::Found(b)),
            Err(e) => {
                debug!(url = %candidate, error = %e, "source failed, trying the next one");
                any_missing |= e.is_not_found();
                only_missing &= e.is_not_found() || e.is_unreachable();
                attempts.push((shown(&candidate), crate::error::render(&e)));
            }
        }
    }
    if any_missing && only_missing {
        return Ok(Small::Missing(attempts));
    }
    Err(ContentProblem::Unreachable {
        url: url.to_string(),
        attempts,
    })
}

fn shown(url: &str) -> String {
    source_of(url).to_string()
}

/// Why a checksum file gives no sha256 for a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ChecksumFileProblem {
    #[error("it is not text")]
    NotText,
    #[error("it is empty")]
    Empty,
    #[error("`{0}` is not a sha256 line (`HEX` or `HEX  NAME`)")]
    BadLine(String),
    #[error("no line names `{0}`")]
    NoLine(String),
    #[error("more than one line names `{0}`")]
    Several(String),
}

/// The sha256 a checksum file gives for `name`: its one `HEX` or `HEX  NAME` line, or the
/// line that names `name` (as `sha256sum` writes them, `*` for binary mode).
pub(crate) fn parse_checksum_file(bytes: &[u8], name: &str) -> Result<Digest, ChecksumFileProblem> {
    let text = std::str::from_utf8(bytes).map_err(|_| ChecksumFileProblem::NotText)?;
    let mut lines = Vec::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let mut parts = line.splitn(2, char::is_whitespace);
        let hex = parts.next().unwrap_or_default().to_ascii_lowercase();
        let file = parts
            .next()
            .map(|n| n.trim().trim_start_matches('*').to_string());
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ChecksumFileProblem::BadLine(
                line.chars().take(80).collect(),
            ));
        }
        lines.push((hex, file));
    }
    let pick = match lines.as_slice() {
        [] => return Err(ChecksumFileProblem::Empty),
        [(hex, _)] => hex.clone(),
        many => {
            let named: Vec<&str> = many
                .iter()
                .filter(|(_, f)| {
                    f.as_deref()
                        .is_some_and(|f| f == name || f.rsplit('/').next() == Some(name))
                })
                .map(|(h, _)| h.as_str())
                .collect();
            match named.as_slice() {
                [one] => (*one).to_string(),
                [] => return Err(ChecksumFileProblem::NoLine(name.to_string())),
                _ => return Err(ChecksumFileProblem::Several(name.to_string())),
            }
        }
    };
    Digest::parse(&format!("sha256:{pick}")).map_err(|_| ChecksumFileProblem::BadLine(pick))
}

/// Downloads `digest` from the first of `urls` that serves it, into the cache: under a
/// temporary name, hashed while streaming, renamed only when the sha256 matches; an
/// interrupted download resumes (`Range`). Returns its size and the URL that served it.
pub(crate) async fn download(
    ctx: &Ctx,
    urls: &[String],
    digest: &Digest,
) -> Result<(u64, String), ContentProblem> {
    let mut attempts = Vec::new();
    for url in urls {
        match download_one(ctx, url, digest).await {
            Ok(size) => return Ok((size, url.clone())),
            Err(Failed::Mismatch { actual, size }) => {
                return Err(ContentProblem::Mismatch {
                    url: url_shown(url),
                    expected: digest.to_string(),
                    actual: actual.to_string(),
                    size,
                    hint: "check the sha256 in the spec (or the checksum file) and the source; \
                           a mirror may hold another version",
                })
            }
            Err(Failed::Cache(e)) => {
                return Err(ContentProblem::Cache {
                    what: digest.to_string(),
                    source: Box::new(e),
                })
            }
            Err(Failed::Source(e)) => {
                debug!(url = %url_shown(url), error = %e, "source failed, trying the next one");
                attempts.push((shown(url), crate::error::render(&e)));
            }
        }
    }
    Err(ContentProblem::Unreachable {
        url: urls.last().map(|u| url_shown(u)).unwrap_or_default(),
        attempts,
    })
}

fn url_shown(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => url.to_string(),
    }
}

enum Failed {
    Mismatch { actual: Digest, size: u64 },
    Source(airlock_registry::Error),
    Cache(BlobError),
}

impl From<BlobError> for Failed {
    fn from(e: BlobError) -> Self {
        Failed::Cache(e)
    }
}

async fn download_one(ctx: &Ctx, url: &str, digest: &Digest) -> Result<u64, Failed> {
    let store = ctx.store.clone();
    let d = digest.clone();
    // The size is what the server says (or what arrives): the digest is what is checked.
    let mut writer = tokio::task::spawn_blocking(move || store.begin(&d, u64::MAX))
        .await
        .map_err(BlobError::from)?
        .map_err(BlobError::from)?;
    let cache_path = ctx.store.path(digest);
    let mut broken = 0;
    loop {
        let offset = writer.offset();
        let resp = match ctx.client.fetch(url, offset).await {
            Ok(r) => r,
            // A partial file longer than what the server has now: start over.
            Err(airlock_registry::Error::Server { status: 416, .. }) if offset > 0 => {
                writer = blocking(writer, |w| w.restart().map_err(BlobError::from)).await?;
                continue;
            }
            Err(e) => return Err(Failed::Source(e)),
        };
        if resp.offset != offset {
            writer = blocking(writer, |w| w.restart().map_err(BlobError::from)).await?;
        }
        if let Some(total) = resp.total_size {
            let total = if resp.offset > 0 && resp.offset == offset && total < offset {
                // Inconsistent: restart from scratch on the next round.
                writer = blocking(writer, |w| w.restart().map_err(BlobError::from)).await?;
                continue;
            } else {
                total
            };
            writer.set_size(total);
        } else {
            writer.set_size(u64::MAX);
        }
        let (w, failure) = write_body(writer, resp.stream, &cache_path, |_| {}).await?;
        writer = w;
        match failure {
            None => break,
            Some(e) if broken < RESUMES.max(ctx.retries) && e.is_retryable() => {
                broken += 1;
                debug!(error = %e, offset = writer.offset(), "download broke, resuming");
            }
            Some(e) => return Err(Failed::Source(e)),
        }
    }
    let size = writer.offset();
    if writer.size() == u64::MAX {
        writer.set_size(size);
    }
    match tokio::task::spawn_blocking(move || writer.commit())
        .await
        .map_err(BlobError::from)?
    {
        Ok(_) => Ok(size),
        Err(airlock_layout::Error::BlobMismatch {
            actual,
            actual_size,
            ..
        }) => Err(Failed::Mismatch {
            actual,
            size: actual_size,
        }),
        Err(e) => Err(Failed::Cache(e.into())),
    }
}

/// Hashes a local file, checks it against `expected` when given, and copies it into the cache
/// (verified again on commit). Returns its digest and size.
async fn store_local(
    ctx: &Ctx,
    path: &Path,
    expected: Option<&Digest>,
) -> Result<(Digest, u64), ContentProblem> {
    let store = ctx.store.clone();
    let path_buf = path.to_path_buf();
    let expected = expected.cloned();
    tokio::task::spawn_blocking(move || copy_local(&store, &path_buf, expected.as_ref()))
        .await
        .map_err(|e| ContentProblem::Cache {
            what: path.display().to_string(),
            source: Box::new(BlobError::Join(e)),
        })?
}

fn copy_local(
    store: &airlock_layout::BlobStore,
    path: &PathBuf,
    expected: Option<&Digest>,
) -> Result<(Digest, u64), ContentProblem> {
    use std::io::Read;
    let local = |source| ContentProblem::Local {
        path: path.clone(),
        source,
    };
    let size = std::fs::metadata(path).map_err(local)?.len();
    let actual = hash_file(path).map_err(local)?;
    if let Some(e) = expected {
        if *e != actual {
            return Err(ContentProblem::Mismatch {
                url: path.display().to_string(),
                expected: e.to_string(),
                actual: actual.to_string(),
                size,
                hint: "check the sha256 in the spec, or the file",
            });
        }
    }
    if store.has(&actual, size) {
        return Ok((actual, size));
    }
    let cache = |e: airlock_layout::Error| ContentProblem::Cache {
        what: path.display().to_string(),
        source: Box::new(BlobError::Layout(e)),
    };
    let mut writer = store.begin(&actual, size).map_err(cache)?;
    if writer.offset() > 0 {
        writer.restart().map_err(cache)?;
    }
    let mut f = std::fs::File::open(path).map_err(local)?;
    let mut buf = vec![0; 256 * 1024];
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(local(e)),
        };
        std::io::Write::write_all(&mut writer, &buf[..n]).map_err(|source| {
            ContentProblem::Cache {
                what: path.display().to_string(),
                source: Box::new(BlobError::Io {
                    path: store.path(&actual),
                    source,
                }),
            }
        })?;
    }
    writer.commit().map_err(|e| match e {
        // Changed while it was read.
        airlock_layout::Error::BlobMismatch {
            actual: got,
            actual_size,
            ..
        } => ContentProblem::Mismatch {
            url: path.display().to_string(),
            expected: actual.to_string(),
            actual: got.to_string(),
            size: actual_size,
            hint: "the file changed while it was read; run again when it is complete",
        },
        e => cache(e),
    })?;
    Ok((actual, size))
}

fn hash_file(path: &Path) -> std::io::Result<Digest> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = airlock_layout::Hasher::new();
    let mut buf = vec![0; 256 * 1024];
    loop {
        match f.read(&mut buf) {
            Ok(0) => return Ok(h.finish()),
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Fetches one blob of a file or chart again after its cache entry was found damaged: the
/// bytes of a document held in memory, the download through its sources, or the local file.
/// Returns the bytes downloaded.
pub(crate) async fn refetch(
    ctx: &Ctx,
    digest: &Digest,
    how: &Refetch,
) -> Result<u64, ContentProblem> {
    match how {
        Refetch::Bytes(b) => store_small(ctx, digest, b, &digest.to_string()).map(|()| 0),
        Refetch::Urls(urls) => download(ctx, urls, digest).await.map(|(size, _)| size),
        Refetch::Local(path) => {
            let (got, size) = store_local(ctx, path, Some(digest)).await?;
            debug_assert_eq!(&got, digest);
            Ok(size)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const B: &str = "0000000000000000000000000000000000000000000000000000000000000001";

    #[test]
    fn mirrors_of_download_hosts() {
        use crate::spec::RegistrySettings;
        let mut registries = std::collections::BTreeMap::new();
        let mirrors = |m: &[&str]| RegistrySettings {
            mirrors: m.iter().map(|s| s.to_string()).collect(),
            ..RegistrySettings::default()
        };
        registries.insert(
            "dl.k8s.io".to_string(),
            mirrors(&[
                "127.0.0.1:8081/dl.k8s.io",
                "https://files.lan/base/",
                "files.lan",
            ]),
        );
        registries.insert(
            "127.0.0.1:8081".to_string(),
            RegistrySettings {
                plain_http: true,
                ..RegistrySettings::default()
            },
        );
        let spec = Spec {
            path: "s.yaml".into(),
            name: "s".into(),
            sha256: String::new(),
            platforms: crate::platform::PlatformFilter::All,
            images: Vec::new(),
            registries,
            kubernetes: None,
            files: Vec::new(),
            charts: Vec::new(),
        };
        assert_eq!(
            candidates(
                &spec,
                "https://dl.k8s.io/release/v1.35.2/bin/linux/amd64/kubeadm?x=1"
            ),
            [
                "http://127.0.0.1:8081/dl.k8s.io/release/v1.35.2/bin/linux/amd64/kubeadm?x=1",
                "https://files.lan/base/release/v1.35.2/bin/linux/amd64/kubeadm?x=1",
                "https://files.lan/release/v1.35.2/bin/linux/amd64/kubeadm?x=1",
                "https://dl.k8s.io/release/v1.35.2/bin/linux/amd64/kubeadm?x=1",
            ]
        );
        assert_eq!(
            candidates(&spec, "https://github.com/a/b"),
            ["https://github.com/a/b"]
        );
        assert_eq!(
            source_of("http://127.0.0.1:8081/dl.k8s.io/x").to_string(),
            "127.0.0.1:8081/dl.k8s.io/x"
        );
    }

    #[test]
    fn checksum_files() {
        let d = |h: &str| Digest::parse(&format!("sha256:{h}")).unwrap();
        assert_eq!(parse_checksum_file(A.as_bytes(), "x").unwrap(), d(A));
        assert_eq!(
            parse_checksum_file(format!("{A}  kubeadm\n").as_bytes(), "x").unwrap(),
            d(A)
        );
        let many = format!("{A}  kubeadm\n{B} *bin/kubectl\n");
        assert_eq!(
            parse_checksum_file(many.as_bytes(), "kubectl").unwrap(),
            d(B)
        );
        assert_eq!(
            parse_checksum_file(many.as_bytes(), "kubeadm").unwrap(),
            d(A)
        );
        assert_eq!(
            parse_checksum_file(many.as_bytes(), "kubelet")
                .unwrap_err()
                .to_string(),
            "no line names `kubelet`"
        );
        assert_eq!(
            parse_checksum_file(b"", "x").unwrap_err(),
            ChecksumFileProblem::Empty
        );
        assert!(matches!(
            parse_checksum_file(b"<html>404</html>", "x").unwrap_err(),
            ChecksumFileProblem::BadLine(_)
        ));
    }
}
