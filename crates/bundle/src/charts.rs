//! The Helm charts of a spec (`spec.charts`), stored as OCI Helm charts (what `helm push`
//! writes, [`airlock_layout::content::chart_manifest`]).
//!
//! - `chart: oci://HOST/PATH/NAME`: resolved like an image (mirrors, credentials, the content
//!   graph) without platform filtering; its config must be a Helm config.
//! - `repoURL`: the repository's `index.yaml` (through the host's mirrors, as files) names the
//!   archive and its sha256 `digest`, which the download must match before it is cached; a
//!   `.prov` beside it is carried when there is one; `Chart.yaml` in the archive must name the
//!   chart and version the index gave.
//!
//! Either way the images the chart names (its `values.yaml` and the `artifacthub.io/images`
//! annotation) are listed in [`ChartInfo::images`], for people adding them to a spec.

use std::collections::BTreeSet;
use std::io::Read as _;

use airlock_layout::content::{chart_manifest, chart_tag, ChartParts};
use airlock_layout::{media, ChartInfo, Content, Digest};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{ContentProblem, ImageError};
use crate::files::{self, Small};
use crate::platform::PlatformFilter;
use crate::pull::{Ctx, Refetch, Resolved};
use crate::spec::{ArtifactSelection, ChartSource, ChartSpec, ImageSpec, Spec};

/// The largest `index.yaml` read (those of big public repositories are tens of MiB).
const INDEX_MAX: u64 = 64 << 20;
/// The largest provenance file read.
const PROV_MAX: u64 = 1 << 20;
/// The largest `Chart.yaml` or `values.yaml` read from an archive.
const CHART_FILE_MAX: u64 = 4 << 20;

/// How a chart is named in messages: `NAME VERSION from ORIGIN`.
fn label(c: &ChartSpec) -> String {
    match &c.source {
        ChartSource::Oci(r) => format!("oci://{} {}", r.name(), c.version),
        ChartSource::Repository { url } => format!("{} {} from {url}", c.name, c.version),
    }
}

fn fail(c: &ChartSpec, message: String) -> ImageError {
    ImageError::Chart {
        chart: label(c),
        problem: ContentProblem::Chart { message },
    }
}

/// The OCI charts of a spec as the images they are pulled like (no platform filtering, no
/// artifacts): what `lock` pins and `bundle` resolves.
pub(crate) fn oci_images(spec: &Spec) -> Vec<ImageSpec> {
    spec.charts
        .iter()
        .filter_map(|c| match &c.source {
            ChartSource::Oci(r) => Some(oci_image(c, r)),
            ChartSource::Repository { .. } => None,
        })
        .collect()
}

fn oci_image(c: &ChartSpec, r: &airlock_registry::Reference) -> ImageSpec {
    ImageSpec {
        reference: r.clone(),
        original: format!("oci://{r}"),
        platforms: PlatformFilter::All,
        line: c.line,
        column: c.column,
        artifacts: ArtifactSelection::none(),
        verify: None,
    }
}

/// Resolves one chart.
pub(crate) async fn resolve(
    ctx: &Ctx,
    spec_index: usize,
    c: &ChartSpec,
) -> Result<Resolved, ImageError> {
    match &c.source {
        ChartSource::Oci(r) => resolve_oci(ctx, spec_index, c, r).await,
        ChartSource::Repository { url } => resolve_repository(ctx, spec_index, c, url).await,
    }
}

async fn resolve_oci(
    ctx: &Ctx,
    spec_index: usize,
    c: &ChartSpec,
    r: &airlock_registry::Reference,
) -> Result<Resolved, ImageError> {
    let img = oci_image(c, r);
    let mut resolved = crate::pull::resolve(ctx, spec_index, &img).await?;
    if media::kind(&resolved.media_type) != media::Kind::Manifest {
        return Err(fail(
            c,
            format!(
                "`{}` is an index ({}), not a Helm chart\n  hint: check `chart:` in the spec",
                resolved.reference, resolved.media_type
            ),
        ));
    }
    let config = resolved.blobs.get(1).cloned();
    let Some(config) = config.filter(|b| b.media_type == media::HELM_CONFIG) else {
        return Err(fail(
            c,
            format!(
                "`{}` is not a Helm chart: its config is `{}`, not `{}`\n  hint: check `chart:` in the spec",
                resolved.reference,
                resolved.blobs.get(1).map(|b| b.media_type.as_str()).unwrap_or("missing"),
                media::HELM_CONFIG
            ),
        ));
    };
    let config_bytes = std::fs::read(ctx.store.path(&config.digest)).map_err(|e| {
        fail(
            c,
            format!("cannot read the cached config {}: {e}", config.digest),
        )
    })?;
    let meta: Value = serde_json::from_slice(&config_bytes).map_err(|e| {
        fail(
            c,
            format!("its Helm config {} is not JSON: {e}", config.digest),
        )
    })?;
    let text = |k: &str| meta.get(k).and_then(Value::as_str).map(str::to_string);
    let name = text("name").unwrap_or_default();
    let version = text("version").unwrap_or_default();
    if name != c.name || version != c.version {
        return Err(fail(
            c,
            format!(
                "`{}` holds chart `{name}` version `{version}`, not `{}` `{}`",
                resolved.reference, c.name, c.version
            ),
        ));
    }
    let archive = resolved
        .blobs
        .iter()
        .find(|b| b.media_type == media::HELM_CHART_CONTENT)
        .cloned()
        .ok_or_else(|| {
            fail(
                c,
                format!("`{}` has no chart content layer", resolved.reference),
            )
        })?;
    let provenance = resolved
        .blobs
        .iter()
        .any(|b| b.media_type == media::HELM_PROVENANCE);
    // The archive now (charts are small), to list the images it names.
    if !ctx.store.has(&archive.digest, archive.size) {
        resolved.downloaded += crate::pull::fetch_blob(ctx, &resolved.source, &archive)
            .await
            .map_err(|e| ImageError::Blob {
                image: resolved.reference.clone(),
                digest: archive.digest.to_string(),
                source_name: resolved.source.to_string(),
                source: Box::new(e),
            })?
            .downloaded;
    }
    resolved.layers.retain(|l| l.digest != archive.digest);
    let tgz = std::fs::read(ctx.store.path(&archive.digest)).map_err(|e| {
        fail(
            c,
            format!("cannot read the cached archive {}: {e}", archive.digest),
        )
    })?;
    let images = read_archive(&tgz)
        .map(|a| a.images)
        .map_err(|m| fail(c, format!("its archive {}: {m}", archive.digest)))?;
    resolved.content = Some(Content::Chart(ChartInfo {
        name,
        version,
        app_version: text("appVersion"),
        origin: format!("oci://{}", r.name()),
        archive: archive.digest,
        repository_digest: None,
        provenance,
        images,
    }));
    Ok(resolved)
}

/// A classic repository's `index.yaml`, as far as it is read.
#[derive(Deserialize)]
struct RepoIndex {
    #[serde(default)]
    entries: std::collections::BTreeMap<String, Vec<IndexEntry>>,
}

#[derive(Deserialize)]
struct IndexEntry {
    #[serde(default)]
    version: String,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    urls: Vec<String>,
}

async fn resolve_repository(
    ctx: &Ctx,
    spec_index: usize,
    c: &ChartSpec,
    repo: &str,
) -> Result<Resolved, ImageError> {
    let problem = |problem| ImageError::Chart {
        chart: label(c),
        problem,
    };
    let index_url = format!("{repo}/index.yaml");
    let index_bytes = match files::fetch_small(ctx, &index_url, INDEX_MAX)
        .await
        .map_err(problem)?
    {
        Small::Found(b) => b,
        Small::Missing(_) => {
            return Err(fail(
                c,
                format!(
                    "`{index_url}` does not exist (404): `{repo}` is not a chart repository\n  hint: check `repoURL`"
                ),
            ))
        }
    };
    let text = std::str::from_utf8(&index_bytes)
        .map_err(|_| fail(c, format!("`{index_url}` is not text")))?;
    // Big public repositories list tens of thousands of versions: a wide budget, still
    // bounded against alias bombs.
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = 50_000_000;
    budget.max_events = 100_000_000;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.with_snippet = false;
    let index: RepoIndex = serde_saphyr::from_str_with_options(text, options).map_err(|e| {
        fail(
            c,
            format!("`{index_url}` is not a chart repository index: {e}"),
        )
    })?;
    let Some(versions) = index.entries.get(&c.name) else {
        let names: Vec<&str> = index.entries.keys().map(String::as_str).take(20).collect();
        return Err(fail(
            c,
            format!(
                "`{index_url}` has no chart `{}` (it has: {})\n  hint: check `name` in the spec",
                c.name,
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ),
        ));
    };
    let Some(entry) = versions.iter().find(|e| e.version == c.version) else {
        let listed: Vec<&str> = versions
            .iter()
            .map(|e| e.version.as_str())
            .take(30)
            .collect();
        return Err(fail(
            c,
            format!(
                "version `{}` is not in `{index_url}` (it has: {})\n  hint: change `version` in the spec",
                c.version,
                if listed.is_empty() { "none".to_string() } else { listed.join(", ") }
            ),
        ));
    };
    let repo_digest = entry.digest.clone().unwrap_or_default();
    let hex = repo_digest
        .strip_prefix("sha256:")
        .unwrap_or(&repo_digest)
        .to_ascii_lowercase();
    let digest = Digest::parse(&format!("sha256:{hex}"))
        .ok()
        .filter(|_| hex.len() == 64)
        .ok_or_else(|| {
            fail(
                c,
                format!(
                    "`{index_url}` lists no sha256 `digest` for it (`{repo_digest}`): its archive cannot be checked, so it is not bundled"
                ),
            )
        })?;
    let first = entry
        .urls
        .first()
        .ok_or_else(|| fail(c, format!("`{index_url}` lists no `urls` for it")))?;
    let base = url::Url::parse(&format!("{repo}/"))
        .map_err(|e| fail(c, format!("bad repository URL `{repo}`: {e}")))?;
    let tgz_url = base
        .join(first)
        .map_err(|e| fail(c, format!("`{index_url}`: bad archive URL `{first}`: {e}")))?;
    if !matches!(tgz_url.scheme(), "http" | "https") {
        return Err(fail(
            c,
            format!("`{index_url}`: the archive URL `{first}` is not http(s)"),
        ));
    }
    let tgz_url = tgz_url.to_string();
    let urls = files::candidates(&ctx.spec, &tgz_url);
    let mut downloaded = 0;
    let (size, from) = match files::cached_size(ctx, &digest) {
        Some(size) => (size, tgz_url.clone()),
        None => files::download(ctx, &urls, &digest)
            .await
            .map_err(|p| match p {
                ContentProblem::Mismatch {
                    url,
                    expected,
                    actual,
                    size,
                    ..
                } => problem(ContentProblem::Mismatch {
                    url,
                    expected,
                    actual,
                    size,
                    hint: "the repository's `index.yaml` lists another digest for this archive: \
                       the repository or a mirror is inconsistent or tampered with",
                }),
                p => problem(p),
            })
            .inspect(|(size, _)| downloaded = *size)?,
    };
    let prov = match files::fetch_small(ctx, &format!("{tgz_url}.prov"), PROV_MAX)
        .await
        .map_err(problem)?
    {
        Small::Found(b) => Some(b),
        Small::Missing(_) => None,
    };
    let tgz = std::fs::read(ctx.store.path(&digest))
        .map_err(|e| fail(c, format!("cannot read the cached archive {digest}: {e}")))?;
    let read = read_archive(&tgz).map_err(|m| fail(c, format!("`{tgz_url}`: {m}")))?;
    let meta = &read.chart;
    let text = |k: &str| meta.get(k).and_then(Value::as_str).map(str::to_string);
    let (name, version) = (
        text("name").unwrap_or_default(),
        text("version").unwrap_or_default(),
    );
    if name != c.name || version != c.version {
        return Err(fail(
            c,
            format!(
                "`{tgz_url}` holds chart `{name}` version `{version}`, not what `{index_url}` lists"
            ),
        ));
    }
    let config = serde_json::to_vec(meta).expect("JSON serialises");
    let prov_digest = prov.as_ref().map(|p| Digest::of_bytes(p));
    let built = chart_manifest(&ChartParts {
        config: &config,
        name: &name,
        version: &version,
        description: text("description").as_deref(),
        archive: (&digest, size),
        provenance: prov
            .as_ref()
            .zip(prov_digest.as_ref())
            .map(|(p, d)| (d, p.len() as u64)),
        created: None,
    });
    let what = label(c);
    let config_digest = Digest::of_bytes(&built.config);
    files::store_small(ctx, &built.digest, &built.manifest, &what).map_err(problem)?;
    files::store_small(ctx, &config_digest, &built.config, &what).map_err(problem)?;
    let mut refetch = vec![
        (
            built.digest.clone(),
            Refetch::Bytes(Bytes::from(built.manifest.clone())),
        ),
        (
            config_digest,
            Refetch::Bytes(Bytes::from(built.config.clone())),
        ),
        (digest.clone(), Refetch::Urls(urls)),
    ];
    if let (Some(p), Some(d)) = (prov, prov_digest) {
        files::store_small(ctx, &d, &p, &what).map_err(problem)?;
        refetch.push((d, Refetch::Bytes(p)));
    }
    let canonical = crate::spec::repository_chart_name(repo, &c.name);
    let tag = chart_tag(&version);
    Ok(Resolved {
        spec_index,
        reference: format!("{canonical}:{tag}"),
        name: canonical,
        tag: Some(tag),
        source: files::source_of(&from),
        upstream_digest: built.digest.to_string(),
        digest: built.digest.clone(),
        media_type: media::OCI_MANIFEST.to_string(),
        size: built.size(),
        platforms: Vec::new(),
        original_digest: None,
        blobs: built.blobs.clone(),
        layers: Vec::new(),
        artifacts: Vec::new(),
        content: Some(Content::Chart(ChartInfo {
            name,
            version,
            app_version: text("appVersion"),
            origin: repo.to_string(),
            archive: digest,
            repository_digest: Some(hex),
            provenance: refetch.len() == 4,
            images: read.images,
        })),
        refetch,
        downloaded,
    })
}

/// What a chart archive says about itself.
struct ArchiveInfo {
    /// `Chart.yaml` as JSON.
    chart: Value,
    /// The images it names, sorted.
    images: Vec<String>,
}

/// Why a chart archive cannot be read.
#[derive(Debug, thiserror::Error)]
enum ArchiveProblem {
    #[error("not a gzip'd tar: {0}")]
    NotTar(std::io::Error),
    #[error("cannot read `{path}`: {source}")]
    Entry {
        path: String,
        source: std::io::Error,
    },
    #[error("no `Chart.yaml` at its top")]
    NoChartYaml,
    #[error("`Chart.yaml` is not a YAML map: {0}")]
    BadChartYaml(String),
}

/// Reads `NAME/Chart.yaml` and `NAME/values.yaml` from a chart archive.
fn read_archive(tgz: &[u8]) -> Result<ArchiveInfo, ArchiveProblem> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
    let (mut chart, mut values) = (None, None);
    let entries = archive.entries().map_err(ArchiveProblem::NotTar)?;
    for entry in entries {
        let mut entry = entry.map_err(ArchiveProblem::NotTar)?;
        let path = entry
            .path()
            .map_err(ArchiveProblem::NotTar)?
            .to_string_lossy()
            .into_owned();
        let mut parts = path.splitn(2, '/');
        let (_, rest) = (parts.next(), parts.next());
        let slot = match rest {
            Some("Chart.yaml") => &mut chart,
            Some("values.yaml") => &mut values,
            _ => continue,
        };
        if slot.is_some() {
            continue;
        }
        let mut text = String::new();
        entry
            .by_ref()
            .take(CHART_FILE_MAX)
            .read_to_string(&mut text)
            .map_err(|source| ArchiveProblem::Entry {
                path: path.clone(),
                source,
            })?;
        *slot = Some(text);
    }
    let chart_text = chart.ok_or(ArchiveProblem::NoChartYaml)?;
    let chart: Value = serde_saphyr::from_str(&chart_text)
        .map_err(|e| ArchiveProblem::BadChartYaml(e.to_string()))?;
    if !chart.is_object() {
        return Err(ArchiveProblem::BadChartYaml("not a map".into()));
    }
    let mut images = BTreeSet::new();
    if let Some(v) = values {
        if let Ok(v) = serde_saphyr::from_str::<Value>(&v) {
            images_in_values(&v, &mut images);
        }
    }
    if let Some(list) = chart
        .get("annotations")
        .and_then(|a| a.get("artifacthub.io/images"))
        .and_then(Value::as_str)
    {
        if let Ok(Value::Array(items)) = serde_saphyr::from_str::<Value>(list) {
            for i in items {
                if let Some(img) = i.get("image").and_then(Value::as_str) {
                    images.insert(img.to_string());
                }
            }
        }
    }
    Ok(ArchiveInfo {
        chart,
        images: images.into_iter().collect(),
    })
}

/// The images `values.yaml` names: `image: "REPO:TAG"` strings and `image: {registry,
/// repository, tag}` maps, at any depth.
fn images_in_values(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if k == "image" {
                    match child {
                        Value::String(s) if looks_like_image(s) => {
                            out.insert(s.clone());
                        }
                        Value::Object(m) => {
                            let get = |k: &str| {
                                m.get(k).and_then(|v| match v {
                                    Value::String(s) if !s.is_empty() => Some(s.clone()),
                                    Value::Number(n) => Some(n.to_string()),
                                    _ => None,
                                })
                            };
                            if let Some(repo) = get("repository") {
                                let mut s = match get("registry") {
                                    Some(r) => format!("{r}/{repo}"),
                                    None => repo,
                                };
                                if let Some(t) = get("tag") {
                                    s = format!("{s}:{t}");
                                }
                                if let Some(d) = get("digest") {
                                    s = format!("{s}@{d}");
                                }
                                out.insert(s);
                            }
                        }
                        _ => {}
                    }
                }
                images_in_values(child, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| images_in_values(i, out)),
        _ => {}
    }
}

fn looks_like_image(s: &str) -> bool {
    !s.is_empty() && !s.contains(char::is_whitespace) && !s.contains("{{")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_from_values_and_annotations() {
        let values: Value = serde_saphyr::from_str(
            "image: \"ghcr.io/a/b:1.0\"\nsidecar:\n  image:\n    registry: docker.io\n    repository: library/nginx\n    tag: 1.25\nlist:\n  - image: {repository: busybox}\nother:\n  image: \"{{ .Values.x }}\"\n",
        )
        .unwrap();
        let mut out = BTreeSet::new();
        images_in_values(&values, &mut out);
        assert_eq!(
            out.into_iter().collect::<Vec<_>>(),
            ["busybox", "docker.io/library/nginx:1.25", "ghcr.io/a/b:1.0"]
        );
    }
}
