//! The media types of the OCI image spec and of Docker's image formats, each stated once, and
//! the kind of content each one names.
//!
//! Everything else in the workspace names media types through these constants and
//! classifies them with [`kind`]; a registry client that must not depend on this crate is
//! handed the strings it needs (the `Accept` list, [`MANIFEST_ACCEPT`]) by its callers.

/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI layer, uncompressed tar.
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI layer, gzip.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI layer, zstd.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// OCI non-distributable layer, uncompressed tar (deprecated by the spec, still met).
pub const OCI_LAYER_NONDISTRIBUTABLE: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar";
/// OCI non-distributable layer, gzip.
pub const OCI_LAYER_NONDISTRIBUTABLE_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
/// OCI non-distributable layer, zstd.
pub const OCI_LAYER_NONDISTRIBUTABLE_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
/// OCI empty descriptor (`{}`, 2 bytes): the config of artifacts that need none.
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// Docker manifest list (schema 2).
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image manifest (schema 2).
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker layer (gzip).
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker foreign layer (gzip), fetched from its `urls`, not from the registry.
pub const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// Docker schema 1 manifest (unsigned).
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
/// Docker schema 1 manifest (signed); never asked for, but a registry may send it for old
/// images.
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// The config of an OCI Helm chart (what `helm push` writes): `Chart.yaml` as JSON.
pub const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
/// The layer of an OCI Helm chart holding the chart archive (`.tgz`).
pub const HELM_CHART_CONTENT: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
/// The layer of an OCI Helm chart holding its provenance file (`.prov`).
pub const HELM_PROVENANCE: &str = "application/vnd.cncf.helm.chart.provenance.v1.prov";
/// The `artifactType` of a file carried in a bundle (its manifest is stored the way `oras
/// push` stores a file: the empty config, one layer of [`FILE_LAYER`]).
pub const FILE_ARTIFACT: &str = "application/vnd.airlock.file.v1";
/// The media type of a file's one layer, as `oras push` gives a file by default.
pub const FILE_LAYER: &str = OCI_LAYER;
/// The annotation naming a file (ORAS writes the layer to this name on pull).
pub const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";
/// The annotation of a version (a Helm chart's).
pub const VERSION_ANNOTATION: &str = "org.opencontainers.image.version";
/// The annotation of a description (a Helm chart's).
pub const DESCRIPTION_ANNOTATION: &str = "org.opencontainers.image.description";
/// The annotation of a creation time (RFC 3339).
pub const CREATED_ANNOTATION: &str = "org.opencontainers.image.created";
/// The OCI empty descriptor's content, `{}`.
pub const EMPTY_JSON: &[u8] = b"{}";

/// cosign's simple-signing payload: the layer of a `.sig` manifest.
pub const COSIGN_SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The `artifactType` cosign gives a signature stored as an OCI 1.1 referrer.
pub const COSIGN_SIGNATURE_ARTIFACT: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// A DSSE envelope: the layer of a cosign `.att` attestation.
pub const DSSE_ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";
/// An in-toto statement (the payload of a DSSE envelope, or an attestation's `artifactType`).
pub const IN_TOTO: &str = "application/vnd.in-toto+json";
/// An SPDX SBOM, JSON.
pub const SPDX_JSON: &str = "application/spdx+json";
/// A CycloneDX SBOM, JSON.
pub const CYCLONEDX_JSON: &str = "application/vnd.cyclonedx+json";
/// The annotation of a cosign signature layer holding the base64 signature.
pub const COSIGN_SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The annotation holding a keyless signature's Fulcio certificate (PEM).
pub const COSIGN_CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
/// The annotation holding the certificate's chain (PEM).
pub const COSIGN_CHAIN_ANNOTATION: &str = "dev.sigstore.cosign/chain";
/// The annotation holding the Rekor bundle (the signed entry timestamp) of a signature.
pub const COSIGN_BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";
/// A sigstore `trusted_root.json` (Fulcio CAs and Rekor keys).
pub const SIGSTORE_TRUSTED_ROOT: &str = "application/vnd.dev.sigstore.trustedroot+json;version=0.1";
/// The payload type of cosign's simple-signing payload: its `critical.type`.
pub const COSIGN_SIMPLE_SIGNING_TYPE: &str = "cosign container image signature";
/// The suffixes of cosign's tag scheme: `sha256-<hex>.sig`, `.att`, `.sbom`.
pub const COSIGN_TAG_SUFFIXES: [&str; 3] = ["sig", "att", "sbom"];

/// The cosign tag of `digest` with `suffix` (`sig`, `att`, `sbom`): `sha256-<hex>.sig`.
pub fn cosign_tag(digest: &crate::Digest, suffix: &str) -> String {
    format!("{}.{suffix}", referrers_tag(digest))
}

/// The OCI 1.1 referrers tag schema's tag of `digest`: `sha256-<hex>`, which holds an index
/// of the manifests whose `subject` is `digest` on a registry without the referrers API.
pub fn referrers_tag(digest: &crate::Digest) -> String {
    format!("sha256-{}", digest.hex())
}

/// The manifest media types a registry is asked for, in order of preference (the `Accept`
/// header of a manifest request).
pub const MANIFEST_ACCEPT: [&str; 4] = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];

/// What a media type names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// An image index or Docker manifest list: it names manifests.
    Index,
    /// An image manifest (OCI, or Docker schema 2): it names a config and layers.
    Manifest,
    /// A Docker schema 1 manifest, which airlock does not read.
    Schema1,
    /// An image config (OCI or Docker).
    Config,
    /// A layer (tar, gzip or zstd; OCI or Docker).
    Layer,
    /// A layer that is not distributed with the image (OCI non-distributable, Docker foreign).
    Foreign,
    /// Anything else: an artifact's config or content (a Helm chart, an SBOM, a signature,
    /// the OCI empty descriptor).
    Artifact,
}

/// The media type without parameters (`; charset=…`), lowercased.
pub fn essence(mt: &str) -> String {
    mt.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// What the media type `mt` names; parameters (`; charset=utf-8`) and case are ignored.
pub fn kind(mt: &str) -> Kind {
    let mt = essence(mt);
    match mt.as_str() {
        OCI_INDEX | DOCKER_LIST => Kind::Index,
        OCI_MANIFEST | DOCKER_MANIFEST => Kind::Manifest,
        DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED => Kind::Schema1,
        OCI_CONFIG | DOCKER_CONFIG => Kind::Config,
        OCI_LAYER | OCI_LAYER_GZIP | OCI_LAYER_ZSTD | DOCKER_LAYER => Kind::Layer,
        OCI_LAYER_NONDISTRIBUTABLE
        | OCI_LAYER_NONDISTRIBUTABLE_GZIP
        | OCI_LAYER_NONDISTRIBUTABLE_ZSTD
        | DOCKER_FOREIGN_LAYER => Kind::Foreign,
        _ => Kind::Artifact,
    }
}

/// Whether blobs of this media type are small metadata: image indexes, manifests (OCI, Docker
/// v2 schema 1 and 2, manifest lists) and configs (anything JSON).
///
/// These go first in a bundle so a loader knows the whole plan before the first layer.
pub fn is_small_media_type(mt: &str) -> bool {
    let mt = essence(mt);
    mt.ends_with("+json")
        || mt.ends_with("/json")
        // Docker schema 1 signed manifests.
        || mt.ends_with("+prettyjws")
        || mt == DOCKER_CONFIG
}

/// Whether blobs of this media type are already compressed (gzip or zstd layers, OCI and
/// Docker), or encrypted: zstd cannot shrink them, so they are stored at a fast level.
pub fn is_compressed_media_type(mt: &str) -> bool {
    let mt = essence(mt);
    let Some((_, subtype)) = mt.split_once('/') else {
        return false;
    };
    subtype
        .split(['+', '.'])
        .any(|token| matches!(token, "gzip" | "zstd" | "encrypted"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_ignore_parameters_and_case() {
        assert_eq!(
            kind("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
            Kind::Manifest
        );
        assert_eq!(
            kind("Application/VND.docker.distribution.manifest.list.v2+json"),
            Kind::Index
        );
        assert_eq!(kind(DOCKER_SCHEMA1_SIGNED), Kind::Schema1);
        assert_eq!(kind(DOCKER_CONFIG), Kind::Config);
        assert_eq!(kind(OCI_LAYER_ZSTD), Kind::Layer);
        assert_eq!(kind(DOCKER_FOREIGN_LAYER), Kind::Foreign);
        assert_eq!(kind(OCI_EMPTY), Kind::Artifact);
        assert_eq!(
            kind("application/vnd.cncf.helm.config.v1+json"),
            Kind::Artifact
        );
        assert_eq!(kind(""), Kind::Artifact);
    }

    #[test]
    fn the_accept_list_asks_for_indexes_first() {
        assert_eq!(MANIFEST_ACCEPT[0], OCI_INDEX);
        assert!(MANIFEST_ACCEPT
            .iter()
            .all(|m| matches!(kind(m), Kind::Index | Kind::Manifest)));
    }

    #[test]
    fn media_type_classes() {
        let small = [
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            "application/vnd.docker.container.image.v1+json",
            "application/vnd.cncf.helm.config.v1+json",
            "application/json",
            "application/vnd.oci.image.manifest.v1+json; charset=utf-8",
        ];
        for mt in small {
            assert!(is_small_media_type(mt), "{mt}");
            assert!(!is_compressed_media_type(mt), "{mt}");
        }
        let compressed = [
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.layer.v1.tar+zstd",
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            "application/vnd.oci.image.layer.v1.tar+gzip+encrypted",
        ];
        for mt in compressed {
            assert!(!is_small_media_type(mt), "{mt}");
            assert!(is_compressed_media_type(mt), "{mt}");
        }
        for mt in [
            "application/vnd.oci.image.layer.v1.tar",
            "application/octet-stream",
            "",
        ] {
            assert!(!is_small_media_type(mt), "{mt}");
            assert!(!is_compressed_media_type(mt), "{mt}");
        }
    }
}
