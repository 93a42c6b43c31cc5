//! Synthetic Helm charts: a `.tgz` as `helm package` makes it (`NAME/Chart.yaml`,
//! `NAME/values.yaml`, a template), a classic chart repository directory (`index.yaml` with
//! sha256 digests, the archives, optional `.prov` files) for [`crate::Nginx::start_static`],
//! and a push to a [`Registry`] as `helm push` does it. The OCI documents are written here
//! with their own media-type strings, independent of how airlock builds them.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::fixtures::push::{Authorization, PushOptions, Pusher};
use crate::{off_runtime, Registry};

/// `helm push`'s config media type.
pub const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
/// `helm push`'s chart content layer media type.
pub const HELM_CHART_CONTENT: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
/// `helm push`'s provenance layer media type.
pub const HELM_PROVENANCE: &str = "application/vnd.cncf.helm.chart.provenance.v1.prov";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A chart made by [`TestChart::new`].
#[derive(Debug, Clone)]
pub struct TestChart {
    /// `Chart.yaml` `name`.
    pub name: String,
    /// `Chart.yaml` `version`.
    pub version: String,
    /// `Chart.yaml` `appVersion`.
    pub app_version: String,
    /// The images the chart names: the first in `values.yaml` as `image: "REPO:TAG"`, the
    /// second as `image: {registry, repository, tag}`, the rest in the `artifacthub.io/images`
    /// annotation of `Chart.yaml`.
    pub images: Vec<String>,
    /// `NAME/Chart.yaml`.
    pub chart_yaml: String,
    /// The archive (`NAME-VERSION.tgz`), reproducible.
    pub tgz: Vec<u8>,
}

impl TestChart {
    /// A chart `name` `version` (appVersion `1.0.0`) naming `images`.
    pub fn new(name: &str, version: &str, images: &[&str]) -> TestChart {
        let app_version = "1.0.0".to_string();
        let mut chart_yaml = format!(
            "apiVersion: v2\nname: {name}\nversion: {version}\nappVersion: \"{app_version}\"\ndescription: A test chart\ntype: application\n"
        );
        if images.len() > 2 {
            chart_yaml.push_str("annotations:\n  artifacthub.io/images: |\n");
            for (i, img) in images[2..].iter().enumerate() {
                chart_yaml.push_str(&format!("    - name: extra{i}\n      image: {img}\n"));
            }
        }
        let mut values = String::from("replicaCount: 1\n");
        if let Some(first) = images.first() {
            values.push_str(&format!("image: \"{first}\"\n"));
        }
        if let Some(second) = images.get(1) {
            let (rest, tag) = second.rsplit_once(':').unwrap_or((second, "latest"));
            let (registry, repository) = rest.split_once('/').unwrap_or(("docker.io", rest));
            values.push_str(&format!(
                "sidecar:\n  image:\n    registry: {registry}\n    repository: {repository}\n    tag: \"{tag}\"\n"
            ));
        }
        let template = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  replicas: {{ .Values.replicaCount }}\n";
        let tgz = tgz(&[
            (format!("{name}/Chart.yaml"), chart_yaml.as_bytes()),
            (format!("{name}/values.yaml"), values.as_bytes()),
            (
                format!("{name}/templates/deployment.yaml"),
                template.as_bytes(),
            ),
        ]);
        TestChart {
            name: name.to_string(),
            version: version.to_string(),
            app_version,
            images: images.iter().map(|s| s.to_string()).collect(),
            chart_yaml,
            tgz,
        }
    }

    /// `NAME-VERSION.tgz`.
    pub fn file_name(&self) -> String {
        format!("{}-{}.tgz", self.name, self.version)
    }

    /// Hex sha256 of the archive (what `index.yaml` lists as `digest`).
    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(&self.tgz))
    }

    /// The config `helm push` writes: `Chart.yaml` as JSON.
    pub fn config_json(&self) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "name": self.name,
            "version": self.version,
            "description": "A test chart",
            "apiVersion": "v2",
            "appVersion": self.app_version,
            "type": "application",
        }))
        .expect("JSON")
    }

    /// A stand-in provenance file (`.prov`): a clear-signed text naming the archive's sha256,
    /// as `helm package --sign` writes (the signature is not a real one).
    pub fn provenance(&self) -> Vec<u8> {
        format!(
            "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n{}\n...\nfiles:\n  {}: sha256:{}\n-----BEGIN PGP SIGNATURE-----\n\ntest\n-----END PGP SIGNATURE-----\n",
            self.chart_yaml,
            self.file_name(),
            self.sha256()
        )
        .into_bytes()
    }
}

/// A gzip'd tar of `entries`, reproducible (fixed times, owners and modes).
fn tgz(entries: &[(String, &[u8])]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (path, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        tar.append_data(&mut h, path, *data).expect("tar in memory");
    }
    let gz = tar.into_inner().expect("tar in memory");
    gz.finish().expect("gzip in memory")
}

/// How [`write_chart_repo`] lists one chart.
#[derive(Debug, Clone, Copy)]
pub struct RepoEntry<'a> {
    /// The chart.
    pub chart: &'a TestChart,
    /// Write `NAME-VERSION.tgz.prov` beside it.
    pub provenance: bool,
    /// The `digest` to list instead of the archive's own (to make a repository that lies).
    pub digest: Option<&'a str>,
    /// List `urls` as an absolute URL under this base instead of relative to the repository.
    pub absolute_base: Option<&'a str>,
}

impl<'a> RepoEntry<'a> {
    /// The chart listed as it is, without provenance.
    pub fn plain(chart: &'a TestChart) -> RepoEntry<'a> {
        RepoEntry {
            chart,
            provenance: false,
            digest: None,
            absolute_base: None,
        }
    }
}

/// Writes a classic chart repository into `dir` (created): `index.yaml` (apiVersion v1,
/// `entries` by chart name, each with `version`, `appVersion`, `digest` and `urls`), the
/// archives and, where asked, their `.prov` files. Returns the path of `index.yaml`.
pub fn write_chart_repo(dir: &Path, entries: &[RepoEntry<'_>]) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating `{}`", dir.display()))?;
    let mut names: Vec<&str> = entries.iter().map(|e| e.chart.name.as_str()).collect();
    names.sort();
    names.dedup();
    let mut index = String::from("apiVersion: v1\nentries:\n");
    for name in names {
        index.push_str(&format!("  {name}:\n"));
        for e in entries.iter().filter(|e| e.chart.name == name) {
            let c = e.chart;
            let file = c.file_name();
            std::fs::write(dir.join(&file), &c.tgz)?;
            if e.provenance {
                std::fs::write(dir.join(format!("{file}.prov")), c.provenance())?;
            }
            let url = match e.absolute_base {
                Some(base) => format!("{}/{file}", base.trim_end_matches('/')),
                None => file.clone(),
            };
            let own = c.sha256();
            index.push_str(&format!(
                "  - apiVersion: v2\n    name: {name}\n    version: {}\n    appVersion: \"{}\"\n    description: A test chart\n    created: \"2026-12-01T00:00:00Z\"\n    digest: {}\n    urls:\n    - {url}\n",
                c.version,
                c.app_version,
                e.digest.unwrap_or(&own),
            ));
        }
    }
    index.push_str("generated: \"2026-12-01T00:00:00Z\"\n");
    let path = dir.join("index.yaml");
    std::fs::write(&path, index)?;
    Ok(path)
}

impl Registry {
    /// Pushes `chart` to `repository` (e.g. `charts/demo`) as `helm push` does: config
    /// `Chart.yaml` as JSON, the archive as the chart content layer, the provenance layer when
    /// `provenance`, tagged with the version (`+` as `_`). Returns the manifest's digest.
    pub fn push_chart(
        &self,
        repository: &str,
        chart: &TestChart,
        provenance: bool,
    ) -> anyhow::Result<String> {
        off_runtime(|| {
            let pusher = Pusher::new(
                &self.url(),
                &PushOptions {
                    ca_file: self.ca_file.clone(),
                    credentials: self.credentials.clone(),
                    repositories: Vec::new(),
                },
            )?;
            let auth = pusher.authorize(repository)?;
            let with = |builder: reqwest::blocking::RequestBuilder| match &auth {
                Authorization::None => builder,
                Authorization::Basic(u, p) => builder.basic_auth(u, Some(p)),
                Authorization::Bearer(token) => builder.bearer_auth(token),
            };
            let config = chart.config_json();
            let sha = |b: &[u8]| format!("sha256:{}", hex::encode(Sha256::digest(b)));
            let mut layers = vec![json!({
                "mediaType": HELM_CHART_CONTENT,
                "digest": sha(&chart.tgz),
                "size": chart.tgz.len(),
            })];
            pusher.push_bytes(repository, &sha(&config), &config, &with)?;
            pusher.push_bytes(repository, &sha(&chart.tgz), &chart.tgz, &with)?;
            if provenance {
                let prov = chart.provenance();
                pusher.push_bytes(repository, &sha(&prov), &prov, &with)?;
                layers.push(json!({
                    "mediaType": HELM_PROVENANCE,
                    "digest": sha(&prov),
                    "size": prov.len(),
                }));
            }
            let manifest = serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": HELM_CONFIG, "digest": sha(&config), "size": config.len()},
                "layers": layers,
                "annotations": {
                    "org.opencontainers.image.title": chart.name,
                    "org.opencontainers.image.version": chart.version,
                    "org.opencontainers.image.description": "A test chart",
                },
            }))?;
            let tag = chart.version.replace('+', "_");
            pusher.put_manifest(repository, &tag, OCI_MANIFEST, &manifest, &with)?;
            Ok(sha(&manifest))
        })
    }
}

/// Extracts `NAME/Chart.yaml` from a chart archive (for tests that check what was pulled).
pub fn chart_yaml_of(tgz: &[u8]) -> anyhow::Result<String> {
    use std::io::Read as _;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        if path.ends_with("/Chart.yaml") && path.matches('/').count() == 1 {
            let mut s = String::new();
            entry.read_to_string(&mut s)?;
            return Ok(s);
        }
    }
    anyhow::bail!("no Chart.yaml in the archive")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_and_its_repository() {
        let c = TestChart::new("demo", "0.1.0", &["r.lan/a:1", "r.lan/b:2", "r.lan/c:3"]);
        assert_eq!(chart_yaml_of(&c.tgz).unwrap(), c.chart_yaml);
        assert_eq!(
            c.tgz,
            TestChart::new("demo", "0.1.0", &["r.lan/a:1", "r.lan/b:2", "r.lan/c:3"]).tgz
        );
        let dir = tempfile::tempdir().unwrap();
        let index = write_chart_repo(
            dir.path(),
            &[RepoEntry {
                provenance: true,
                ..RepoEntry::plain(&c)
            }],
        )
        .unwrap();
        let text = std::fs::read_to_string(index).unwrap();
        assert!(text.contains(&format!("digest: {}", c.sha256())), "{text}");
        assert!(dir.path().join("demo-0.1.0.tgz.prov").exists());
    }
}
