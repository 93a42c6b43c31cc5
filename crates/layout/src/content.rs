//! The OCI documents of what a bundle carries besides images: a file, stored the way `oras
//! push` stores one, and a Helm chart, stored the way `helm push` does. The online side builds
//! them once; every reader then treats them as any other manifest (walked by
//! [`crate::graph`], listed in the signed manifest, pushed, served and verified alike).
//!
//! ```
//! use airlock_layout::content::{file_manifest, FileParts};
//! use airlock_layout::Digest;
//!
//! let bytes = b"#!/bin/sh\n";
//! let layer = Digest::of_bytes(bytes);
//! let built = file_manifest(&FileParts { title: "kubeadm", digest: &layer, size: 10, created: None });
//! assert_eq!(built.blobs.len(), 3); // manifest, empty config, the file
//! assert_eq!(built.blobs[2].digest, layer);
//! ```

use serde_json::{json, Map, Value};

use crate::digest::Digest;
use crate::manifest::BlobRecord;
use crate::media;

/// The documents of one non-image record: its manifest and config, and every blob it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// The manifest's bytes (an OCI image manifest).
    pub manifest: Vec<u8>,
    /// Its digest.
    pub digest: Digest,
    /// The config's bytes.
    pub config: Vec<u8>,
    /// Every blob, in archive order: the manifest, the config, then the layers.
    pub blobs: Vec<BlobRecord>,
}

impl Built {
    /// The manifest's size.
    pub fn size(&self) -> u64 {
        self.manifest.len() as u64
    }
}

/// What a file's manifest names.
#[derive(Debug, Clone, Copy)]
pub struct FileParts<'a> {
    /// The layer's `org.opencontainers.image.title`: the file name `oras pull` writes (the
    /// last component of the record's name).
    pub title: &'a str,
    /// Digest of the file's bytes.
    pub digest: &'a Digest,
    /// Its size.
    pub size: u64,
    /// `org.opencontainers.image.created` (RFC 3339), when the bundle records one.
    pub created: Option<&'a str>,
}

/// A file's manifest: `artifactType` [`media::FILE_ARTIFACT`], the empty config, one layer of
/// [`media::FILE_LAYER`] titled with its name.
pub fn file_manifest(parts: &FileParts<'_>) -> Built {
    let config = media::EMPTY_JSON.to_vec();
    let config_digest = Digest::of_bytes(&config);
    let mut annotations = Map::new();
    if let Some(c) = parts.created {
        annotations.insert(media::CREATED_ANNOTATION.into(), Value::from(c));
    }
    let mut doc = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "artifactType": media::FILE_ARTIFACT,
        "config": {
            "mediaType": media::OCI_EMPTY,
            "digest": config_digest.to_string(),
            "size": config.len(),
            "data": "e30=",
        },
        "layers": [{
            "mediaType": media::FILE_LAYER,
            "digest": parts.digest.to_string(),
            "size": parts.size,
            "annotations": { media::TITLE_ANNOTATION: parts.title },
        }],
    });
    if !annotations.is_empty() {
        doc["annotations"] = Value::Object(annotations);
    }
    finish(
        doc,
        config,
        media::OCI_EMPTY,
        vec![BlobRecord {
            digest: parts.digest.clone(),
            size: parts.size,
            media_type: media::FILE_LAYER.to_string(),
        }],
    )
}

/// What a Helm chart's manifest names.
#[derive(Debug, Clone, Copy)]
pub struct ChartParts<'a> {
    /// The config: the chart's `Chart.yaml` as JSON (what `helm push` writes).
    pub config: &'a [u8],
    /// `Chart.yaml` `name` (`org.opencontainers.image.title`).
    pub name: &'a str,
    /// `Chart.yaml` `version` (`org.opencontainers.image.version`).
    pub version: &'a str,
    /// `Chart.yaml` `description`, when it has one.
    pub description: Option<&'a str>,
    /// The chart archive (`.tgz`): digest and size.
    pub archive: (&'a Digest, u64),
    /// The provenance file (`.prov`), when there is one.
    pub provenance: Option<(&'a Digest, u64)>,
    /// `org.opencontainers.image.created` (RFC 3339), when the bundle records one.
    pub created: Option<&'a str>,
}

/// A Helm chart's manifest as `helm push` writes it: config [`media::HELM_CONFIG`], the
/// chart content layer, then the provenance layer when there is one.
pub fn chart_manifest(parts: &ChartParts<'_>) -> Built {
    let config = parts.config.to_vec();
    let config_digest = Digest::of_bytes(&config);
    let mut layers = vec![BlobRecord {
        digest: parts.archive.0.clone(),
        size: parts.archive.1,
        media_type: media::HELM_CHART_CONTENT.to_string(),
    }];
    if let Some((d, size)) = parts.provenance {
        layers.push(BlobRecord {
            digest: d.clone(),
            size,
            media_type: media::HELM_PROVENANCE.to_string(),
        });
    }
    let mut annotations = Map::new();
    if let Some(c) = parts.created {
        annotations.insert(media::CREATED_ANNOTATION.into(), Value::from(c));
    }
    if let Some(d) = parts.description {
        annotations.insert(media::DESCRIPTION_ANNOTATION.into(), Value::from(d));
    }
    annotations.insert(media::TITLE_ANNOTATION.into(), Value::from(parts.name));
    annotations.insert(media::VERSION_ANNOTATION.into(), Value::from(parts.version));
    let doc = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": {
            "mediaType": media::HELM_CONFIG,
            "digest": config_digest.to_string(),
            "size": config.len(),
        },
        "layers": layers.iter().map(|l| json!({
            "mediaType": l.media_type,
            "digest": l.digest.to_string(),
            "size": l.size,
        })).collect::<Vec<_>>(),
        "annotations": annotations,
    });
    finish(doc, config, media::HELM_CONFIG, layers)
}

/// The OCI tag of a chart version: SemVer's `+` is not allowed in a tag, so `helm push` writes
/// `_` (and `helm pull` reads it back).
pub fn chart_tag(version: &str) -> String {
    version.replace('+', "_")
}

fn finish(doc: Value, config: Vec<u8>, config_type: &str, layers: Vec<BlobRecord>) -> Built {
    let manifest = serde_json::to_vec(&doc).expect("a manifest serialises");
    let digest = Digest::of_bytes(&manifest);
    let mut blobs = vec![
        BlobRecord {
            digest: digest.clone(),
            size: manifest.len() as u64,
            media_type: media::OCI_MANIFEST.to_string(),
        },
        BlobRecord {
            digest: Digest::of_bytes(&config),
            size: config.len() as u64,
            media_type: config_type.to_string(),
        },
    ];
    blobs.extend(layers);
    Built {
        manifest,
        digest,
        config,
        blobs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{descriptor, walk};
    use crate::media::Kind;

    #[test]
    fn a_file_manifest_is_what_oras_reads() {
        let layer = Digest::of_bytes(b"hello\n");
        let b = file_manifest(&FileParts {
            title: "hello.txt",
            digest: &layer,
            size: 6,
            created: Some("2026-12-01T00:00:00Z"),
        });
        let v: Value = serde_json::from_slice(&b.manifest).unwrap();
        assert_eq!(v["artifactType"], media::FILE_ARTIFACT);
        assert_eq!(v["config"]["mediaType"], media::OCI_EMPTY);
        assert_eq!(
            v["config"]["digest"],
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(
            v["layers"][0]["annotations"][media::TITLE_ANNOTATION],
            "hello.txt"
        );
        assert_eq!(b.digest, Digest::of_bytes(&b.manifest));
        // The walk reads it like any manifest: the empty config and the file.
        let top = BlobRecord {
            digest: b.digest.clone(),
            size: b.size(),
            media_type: media::OCI_MANIFEST.into(),
        };
        let nodes = walk_built(&top, &b);
        assert_eq!(
            nodes,
            vec![b.blobs[0].digest.clone(), b.blobs[1].digest.clone(), layer]
        );
    }

    #[test]
    fn a_chart_manifest_is_what_helm_push_writes() {
        let tgz = Digest::of_bytes(b"tgz");
        let prov = Digest::of_bytes(b"prov");
        let b = chart_manifest(&ChartParts {
            config: br#"{"apiVersion":"v2","name":"demo","version":"1.2.3+build.1"}"#,
            name: "demo",
            version: "1.2.3+build.1",
            description: Some("A demo"),
            archive: (&tgz, 3),
            provenance: Some((&prov, 4)),
            created: None,
        });
        let v: Value = serde_json::from_slice(&b.manifest).unwrap();
        assert_eq!(v["config"]["mediaType"], media::HELM_CONFIG);
        assert_eq!(v["layers"][0]["mediaType"], media::HELM_CHART_CONTENT);
        assert_eq!(v["layers"][1]["mediaType"], media::HELM_PROVENANCE);
        assert_eq!(v["annotations"][media::VERSION_ANNOTATION], "1.2.3+build.1");
        assert_eq!(chart_tag("1.2.3+build.1"), "1.2.3_build.1");
        assert_eq!(media::kind(media::HELM_CONFIG), Kind::Artifact);
        assert!(media::is_small_media_type(media::HELM_CONFIG));
        assert!(media::is_compressed_media_type(media::HELM_CHART_CONTENT));
        assert_eq!(b.blobs.len(), 4);
    }

    fn walk_built(top: &BlobRecord, b: &Built) -> Vec<Digest> {
        let desc = descriptor(&top.media_type, &top.digest, top.size);
        let graph = walk(&desc, |node| {
            assert_eq!(node.digest, b.digest, "only the manifest is a document");
            Ok::<_, std::convert::Infallible>(b.manifest.clone())
        })
        .unwrap();
        graph.nodes.iter().map(|n| n.digest.clone()).collect()
    }
}
