//! A signed bundle of format 3 with one small image, one Helm chart and two files, built
//! from synthetic content with [`crate::content`]: the chart is a real `.tgz`
//! (`demo/Chart.yaml`, `demo/values.yaml`, `demo/templates/cm.yaml`) with a `.prov`; the
//! files are `hello.txt` and `kubernetes/v1.35.2/linux/amd64/kubeadm` (mode 0755, a few
//! hundred KiB of incompressible bytes over several frames).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::archive::{write_bundle, ArchiveOptions, BundleContents};
use crate::content::{chart_manifest, chart_tag, file_manifest, ChartParts, FileParts};
use crate::digest::Digest;
use crate::manifest::{
    BlobRecord, BundleManifest, ChartInfo, Content, FileChecksum, FileInfo, ImageRecord, SpecInfo,
    Totals,
};
use crate::media;
use crate::sign::SigningKey;
use crate::store::BlobStore;

/// The image's canonical name.
pub const IMAGE: &str = "example.test/demo/app";
/// Its tag.
pub const IMAGE_TAG: &str = "1.0";
/// The chart's canonical name (an OCI chart `oci://registry.example/charts/demo`).
pub const CHART: &str = "registry.example/charts/demo";
/// The chart's version (its tag is [`chart_tag`] of it).
pub const CHART_VERSION: &str = "0.1.0+build.1";
/// The image the chart's values name.
pub const CHART_IMAGE: &str = "registry.example/demo/app:1.0";
/// The `hello.txt` file's canonical name (a local file).
pub const HELLO: &str = "local/files/hello.txt";
/// The kubeadm file's canonical name (a node binary from dl.k8s.io).
pub const KUBEADM: &str = "dl.k8s.io/files/kubeadm";
/// The kubeadm file's name in the bundle.
pub const KUBEADM_FILE: &str = "kubernetes/v1.35.2/linux/amd64/kubeadm";
/// The kubeadm file's size.
pub const KUBEADM_SIZE: usize = 300 << 10;
/// The frame size the bundle is written with: the kubeadm file spans several frames.
pub const FRAME_SIZE: usize = 64 << 10;

/// A bundle written by [`content_bundle`].
#[derive(Debug)]
pub struct ContentBundle {
    /// The bundle file.
    pub path: PathBuf,
    /// Its signed manifest.
    pub manifest: BundleManifest,
    /// The chart archive's bytes (`.tgz`).
    pub chart_archive: Vec<u8>,
    /// The chart's `Chart.yaml`.
    pub chart_yaml: String,
    /// The provenance file's bytes.
    pub provenance: Vec<u8>,
    /// Each file's bytes, in the manifest's order (`hello.txt`, then kubeadm).
    pub files: Vec<(FileInfo, Vec<u8>)>,
}

impl ContentBundle {
    /// The record named `name`.
    pub fn record(&self, name: &str) -> &ImageRecord {
        self.manifest
            .images
            .iter()
            .find(|i| i.name == name)
            .expect("the bundle carries it")
    }
}

struct Builder {
    store: BlobStore,
    blobs: Vec<BlobRecord>,
}

impl Builder {
    fn put(&mut self, media_type: &str, bytes: &[u8]) -> Digest {
        let digest = Digest::of_bytes(bytes);
        self.store.put_bytes(&digest, bytes).unwrap();
        self.record(BlobRecord {
            digest: digest.clone(),
            size: bytes.len() as u64,
            media_type: media_type.into(),
        });
        digest
    }

    fn record(&mut self, b: BlobRecord) {
        if !self.blobs.iter().any(|x| x.digest == b.digest) {
            self.blobs.push(b);
        }
    }

    /// Stores the manifest and config of `built` (its layers were stored already) and lists
    /// every blob of it.
    fn built(&mut self, built: &crate::content::Built) {
        self.store
            .put_bytes(&built.digest, &built.manifest)
            .unwrap();
        self.store
            .put_bytes(&Digest::of_bytes(&built.config), &built.config)
            .unwrap();
        for b in &built.blobs {
            self.record(b.clone());
        }
    }
}

/// A gzipped tar of `entries` with fixed headers (the same bytes on every run).
fn tgz(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    for (path, body) in entries {
        let mut h = tar::Header::new_ustar();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, path, *body).unwrap();
    }
    let mut gz = b.into_inner().unwrap();
    gz.flush().unwrap();
    gz.finish().unwrap()
}

/// Writes `dir/content.tar.zst`, signed by `signer`: [`IMAGE`]`:`[`IMAGE_TAG`], the chart
/// [`CHART`] at [`CHART_VERSION`], and the files [`HELLO`] (`hello.txt`) and [`KUBEADM`]
/// ([`KUBEADM_FILE`]).
pub fn content_bundle(dir: &Path, signer: &SigningKey) -> ContentBundle {
    content_bundle_with(dir, signer, b"hello, offline world\n")
}

/// [`content_bundle`] with other bytes in `hello.txt` (two bundles with different files under
/// one name).
pub fn content_bundle_with(dir: &Path, signer: &SigningKey, hello: &[u8]) -> ContentBundle {
    std::fs::create_dir_all(dir).unwrap();
    let mut b = Builder {
        store: BlobStore::open(dir.join("cache")).unwrap(),
        blobs: Vec::new(),
    };
    let mut images = Vec::new();

    // The image: one layer, one config, one manifest.
    let layer = tgz(&[("etc/demo", b"demo\n")]);
    let layer_d = b.put(media::OCI_LAYER_GZIP, &layer);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [Digest::of_bytes(&{
            let mut d = flate2::read::GzDecoder::new(&layer[..]);
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut d, &mut v).unwrap();
            v
        }).to_string()]},
    }))
    .unwrap();
    let config_d = b.put(media::OCI_CONFIG, &config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
        "config": {"mediaType": media::OCI_CONFIG, "digest": config_d.to_string(), "size": config.len()},
        "layers": [{"mediaType": media::OCI_LAYER_GZIP, "digest": layer_d.to_string(), "size": layer.len()}],
    }))
    .unwrap();
    let manifest_d = b.put(media::OCI_MANIFEST, &manifest);
    images.push(ImageRecord {
        name: IMAGE.into(),
        reference: format!("{IMAGE}:{IMAGE_TAG}"),
        tags: vec![IMAGE_TAG.into()],
        digest: manifest_d,
        media_type: media::OCI_MANIFEST.into(),
        size: manifest.len() as u64,
        source: IMAGE.into(),
        platforms: vec!["linux/amd64".into()],
        original_digest: None,
        artifacts: Vec::new(),
        content: None,
    });

    // The chart.
    let chart_yaml = format!(
        "apiVersion: v2\nname: demo\nversion: {CHART_VERSION}\nappVersion: \"1.0\"\n\
         description: A demo chart\n"
    );
    let values = format!("image: {CHART_IMAGE}\n");
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo\ndata:\n  image: {{ .Values.image }}\n";
    let archive = tgz(&[
        ("demo/Chart.yaml", chart_yaml.as_bytes()),
        ("demo/values.yaml", values.as_bytes()),
        ("demo/templates/cm.yaml", cm.as_bytes()),
    ]);
    let archive_d = b.put(media::HELM_CHART_CONTENT, &archive);
    let provenance = format!(
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n{chart_yaml}\n...\nfiles:\n  \
         demo-{CHART_VERSION}.tgz: {archive_d}\n-----BEGIN PGP SIGNATURE-----\n\n\
         -----END PGP SIGNATURE-----\n"
    )
    .into_bytes();
    let prov_d = b.put(media::HELM_PROVENANCE, &provenance);
    let chart_config = serde_json::to_vec(&json!({
        "apiVersion": "v2", "name": "demo", "version": CHART_VERSION, "appVersion": "1.0",
        "description": "A demo chart",
    }))
    .unwrap();
    let built = chart_manifest(&ChartParts {
        config: &chart_config,
        name: "demo",
        version: CHART_VERSION,
        description: Some("A demo chart"),
        archive: (&archive_d, archive.len() as u64),
        provenance: Some((&prov_d, provenance.len() as u64)),
        created: None,
    });
    b.built(&built);
    let tag = chart_tag(CHART_VERSION);
    images.push(ImageRecord {
        name: CHART.into(),
        reference: format!("{CHART}:{tag}"),
        tags: vec![tag],
        digest: built.digest.clone(),
        media_type: media::OCI_MANIFEST.into(),
        size: built.size(),
        source: CHART.into(),
        platforms: Vec::new(),
        original_digest: None,
        artifacts: Vec::new(),
        content: Some(Content::Chart(ChartInfo {
            name: "demo".into(),
            version: CHART_VERSION.into(),
            app_version: Some("1.0".into()),
            origin: format!("oci://{CHART}"),
            archive: archive_d,
            repository_digest: None,
            provenance: true,
            images: vec![CHART_IMAGE.into()],
        })),
    });

    // The files.
    let mut files = Vec::new();
    let kubeadm_url = "https://dl.k8s.io/release/v1.35.2/bin/linux/amd64/kubeadm";
    for (name, file, tag, bytes, mode, url) in [
        (HELLO, "hello.txt", "latest", hello.to_vec(), 0o644, None),
        (
            KUBEADM,
            KUBEADM_FILE,
            "v1.35.2-linux-amd64",
            super::noise(KUBEADM_SIZE),
            0o755,
            Some(kubeadm_url),
        ),
    ] {
        let d = b.put(media::FILE_LAYER, &bytes);
        let title = file.rsplit('/').next().unwrap();
        let built = file_manifest(&FileParts {
            title,
            digest: &d,
            size: bytes.len() as u64,
            created: None,
        });
        b.built(&built);
        let info = FileInfo {
            name: file.into(),
            digest: d,
            size: bytes.len() as u64,
            mode,
            url: url.map(String::from),
            checksum: match url {
                Some(u) => FileChecksum::Url {
                    url: format!("{u}.sha256"),
                },
                None => FileChecksum::Local,
            },
        };
        images.push(ImageRecord {
            name: name.into(),
            reference: format!("{name}:{tag}"),
            tags: vec![tag.into()],
            digest: built.digest.clone(),
            media_type: media::OCI_MANIFEST.into(),
            size: built.size(),
            source: url.map_or_else(|| name.to_string(), |u| u["https://".len()..].to_string()),
            platforms: Vec::new(),
            original_digest: None,
            artifacts: Vec::new(),
            content: Some(Content::File(info.clone())),
        });
        files.push((info, bytes));
    }

    let manifest = BundleManifest {
        format_version: crate::manifest::format_version_for(&images),
        created: "2026-01-01T00:00:00Z".into(),
        airlock_version: "0.1.0".into(),
        spec: SpecInfo {
            name: "content".into(),
            sha256: Digest::of_bytes(b"spec").hex().into(),
        },
        totals: Totals::of(&images, &b.blobs),
        images,
        blobs: b.blobs.clone(),
        bases: Vec::new(),
    };
    let index_json = manifest.index_json();
    let manifest_json = manifest.to_json_bytes();
    let signature = signer.sign(&manifest_json);
    let path = dir.join("content.tar.zst");
    let contents = BundleContents {
        manifest_json: &manifest_json,
        signature: Some(signature.as_bytes()),
        index_json: &index_json,
        blobs: &b.blobs,
        store: &b.store,
        gate: None,
    };
    let opts = ArchiveOptions {
        frame_size: FRAME_SIZE,
        ..ArchiveOptions::default()
    };
    write_bundle(&path, &contents, &opts).unwrap();
    ContentBundle {
        path,
        manifest,
        chart_archive: archive,
        chart_yaml,
        provenance,
        files,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_content_bundle_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let signer = SigningKey::generate();
        let b = content_bundle(dir.path(), &signer);
        assert_eq!(b.manifest.format_version, 3);
        let report = crate::verify_bundle(
            std::fs::File::open(&b.path).unwrap(),
            Some(&signer.verifying_key()),
        );
        assert!(report.ok, "{:?}", report.error);
        assert!(b.record(CHART).chart().is_some());
        assert_eq!(b.record(KUBEADM).file().unwrap().mode, 0o755);
    }
}
