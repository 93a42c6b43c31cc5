//! Supply-chain content beside the fixture images: cosign signatures, an in-toto attestation,
//! an SPDX SBOM and an OCI 1.1 referrer, all real and pushed with raw HTTP.
//!
//! | repository | what [`push_supply_chain`] pushes |
//! |---|---|
//! | `fixtures/app-a` | `.sig` (main key), `.att` (DSSE in-toto statement, main key), `.sbom` (SPDX 2.3), and a `.sig` on the SBOM manifest |
//! | `fixtures/multi` | `.sig` over the index and over each platform manifest (main key); a referrer of `artifactType` [`SCAN_ARTIFACT_TYPE`] with `subject` = the linux/amd64 manifest, and the referrers tag-schema index `sha256-<amd64 hex>` listing it |
//! | `fixtures/app-b` | `.sig` made with the other key |
//! | `fixtures/many-layers` | a keyless `.sig`: Fulcio-style certificate from a test CA naming [`KEYLESS_IDENTITY`] and [`KEYLESS_ISSUER`], and a Rekor bundle signed by a test log ([`SupplyChain::keyless`] names the `trusted_root.json`) |
//! | `fixtures/base` | nothing: unsigned |
//!
//! Signatures are cosign's format, made without cosign: the simple-signing payload as a layer
//! of media type `application/vnd.dev.cosign.simplesigning.v1+json`, and the annotation
//! `dev.cosignproject.cosign/signature` = base64 of the DER ECDSA P-256 signature over the
//! payload's SHA-256. [`openssl_verify_cosign`] checks one with `openssl`, independently of
//! airlock's code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use airlock_layout::SigningKey;
use anyhow::{bail, ensure, Context as _};
use base64::Engine as _;
use reqwest::blocking::RequestBuilder;
use serde_json::{json, Value};
use sha2::Digest as _;

use crate::fixtures::push::{Authorization, Pusher};
use crate::fixtures::{
    FixtureSet, PushOptions, DOCKER_MANIFEST, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST,
};
use crate::{off_runtime, require_tool, run, Registry, RegistryOptions};

/// `application/vnd.dev.cosign.simplesigning.v1+json`
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// `application/vnd.dsse.envelope.v1+json`
pub const DSSE_ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";
/// `application/vnd.in-toto+json`
pub const IN_TOTO: &str = "application/vnd.in-toto+json";
/// `application/spdx+json`
pub const SPDX_JSON: &str = "application/spdx+json";
/// `application/vnd.oci.empty.v1+json`
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// The `artifactType` of the OCI 1.1 referrer pushed on `fixtures/multi`'s linux/amd64 manifest.
pub const SCAN_ARTIFACT_TYPE: &str = "application/vnd.example.scan+json";
/// The annotation holding a cosign signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The docker reference the simple-signing payloads name (`<this>/<repository>`): the
/// registry the images were signed in, as for an upstream image.
pub const SIGNED_REGISTRY: &str = "registry.example.test";
/// The identity (SAN) of the keyless signature's certificate.
pub const KEYLESS_IDENTITY: &str = "https://ci.example.test/release.yml@refs/heads/main";
/// The OIDC issuer of the keyless signature's certificate.
pub const KEYLESS_ISSUER: &str = "https://issuer.example.test";
/// The in-toto predicate type of the attestation.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";

/// The keyless signature's test sigstore: where its `trusted_root.json` is and whom its
/// certificate names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeylessFixture {
    /// The sigstore `trusted_root.json` (test Fulcio CA and Rekor key).
    pub trusted_root: PathBuf,
    /// The certificate's SAN (a URI).
    pub identity: String,
    /// The certificate's OIDC issuer extension.
    pub issuer: String,
    /// The repository signed keylessly (`fixtures/many-layers`).
    pub repository: String,
}

/// One artifact manifest pushed by [`push_supply_chain`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushedArtifact {
    /// e.g. `fixtures/app-a`.
    pub repository: String,
    /// The digest it refers to (`sha256:…`): an image, a platform manifest, or another
    /// artifact (the signature of the SBOM).
    pub subject: String,
    /// `signature`, `attestation`, `sbom` or `referrer`.
    pub kind: &'static str,
    /// The artifact manifest's digest.
    pub digest: String,
    /// The cosign tag (`sha256-<hex>.sig`, `.att`, `.sbom`); `None` for an OCI 1.1 referrer.
    pub tag: Option<String>,
    /// The manifest's `artifactType` (set on the referrer only).
    pub artifact_type: Option<String>,
    /// Every blob, sorted by digest: the manifest itself, its config and its layers.
    pub blobs: Vec<(String, u64)>,
}

/// A referrers tag-schema index (`sha256-<hex>` holding an index of a subject's referrers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushedReferrersIndex {
    /// e.g. `fixtures/multi`.
    pub repository: String,
    /// The subject (`sha256:…`).
    pub subject: String,
    /// `sha256-<hex>` of the subject.
    pub tag: String,
    /// The index's digest.
    pub digest: String,
    /// The referrers it lists.
    pub referrers: Vec<String>,
}

/// What [`push_supply_chain`] pushed, and the keys it signed with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SupplyChain {
    /// The main signing key (PKCS#8 PEM, unencrypted).
    pub key: PathBuf,
    /// The main key's public half (PEM `PUBLIC KEY`).
    pub public_key: PathBuf,
    /// The other key's public half: it signed `fixtures/app-b` only.
    pub other_public_key: PathBuf,
    /// The keyless signature's trusted root and identity, when one was pushed.
    pub keyless: Option<KeylessFixture>,
    /// Every artifact manifest pushed, subjects before what refers to them.
    pub artifacts: Vec<PushedArtifact>,
    /// The referrers tag-schema indexes written.
    pub referrers_indexes: Vec<PushedReferrersIndex>,
}

impl SupplyChain {
    /// The artifacts pushed in `repository`.
    pub fn in_repository<'a>(
        &'a self,
        repository: &'a str,
    ) -> impl Iterator<Item = &'a PushedArtifact> + 'a {
        self.artifacts
            .iter()
            .filter(move |a| a.repository == repository)
    }

    /// The artifact of `kind` whose subject is `subject`.
    pub fn find(&self, subject: &str, kind: &str) -> Option<&PushedArtifact> {
        self.artifacts
            .iter()
            .find(|a| a.subject == subject && a.kind == kind)
    }
}

impl Registry {
    /// A fresh, writable, plain-HTTP registry holding every fixture image but `fixtures/big`,
    /// with [`push_supply_chain`]'s content beside them (keys and trusted root in `dir`).
    pub fn with_supply_chain(
        set: &FixtureSet,
        dir: &Path,
    ) -> anyhow::Result<(Registry, SupplyChain)> {
        let registry = Registry::start(RegistryOptions::default())?;
        let repositories: Vec<&str> = set
            .images
            .iter()
            .map(|i| i.repository.as_str())
            .filter(|r| *r != "fixtures/big")
            .collect();
        registry.push_fixtures(set, "", &repositories)?;
        let supply = push_supply_chain(&registry.url(), set, dir)?;
        Ok((registry, supply))
    }
}

/// The simple-signing payload cosign signs for `digest` of `repository` (named as
/// `registry.example.test/<repository>`).
pub fn simple_signing_payload(repository: &str, digest: &str) -> Vec<u8> {
    let payload = json!({
        "critical": {
            "identity": {"docker-reference": format!("{SIGNED_REGISTRY}/{repository}")},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": null,
    });
    serde_json::to_vec(&payload).expect("JSON values serialize")
}

/// DSSE's pre-authentication encoding of a payload (what a DSSE signature is made over).
pub use airlock_cosign::testing::dsse_pae;

/// `cosign_tag("sha256:ab…", "sig")` = `sha256-ab….sig`.
pub fn cosign_tag(digest: &str, suffix: &str) -> String {
    format!("{}.{suffix}", digest.replacen(':', "-", 1))
}

fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// One layer of an artifact manifest being built.
struct Layer {
    media_type: &'static str,
    bytes: Vec<u8>,
    annotations: BTreeMap<String, String>,
}

struct Writer {
    pusher: Pusher,
    pushed: Vec<PushedArtifact>,
    indexes: Vec<PushedReferrersIndex>,
}

impl Writer {
    fn with_auth(
        &self,
        repository: &str,
    ) -> anyhow::Result<impl Fn(RequestBuilder) -> RequestBuilder> {
        let auth = self.pusher.authorize(repository)?;
        Ok(move |builder: RequestBuilder| match &auth {
            Authorization::None => builder,
            Authorization::Basic(u, p) => builder.basic_auth(u, Some(p)),
            Authorization::Bearer(token) => builder.bearer_auth(token),
        })
    }

    /// Pushes a manifest with `layers` (and a config of `config_type`), under `tag` or by
    /// digest, and records it.
    #[allow(clippy::too_many_arguments)]
    fn artifact(
        &mut self,
        repository: &str,
        subject: (&str, &str, u64),
        kind: &'static str,
        tag: Option<String>,
        artifact_type: Option<&str>,
        config: (&'static str, Vec<u8>),
        layers: Vec<Layer>,
    ) -> anyhow::Result<PushedArtifact> {
        let with = self.with_auth(repository)?;
        let mut blobs = BTreeMap::new();
        let config_digest = sha256_digest(&config.1);
        self.pusher
            .push_bytes(repository, &config_digest, &config.1, &with)?;
        blobs.insert(config_digest.clone(), config.1.len() as u64);
        let mut layer_descriptors = Vec::new();
        for layer in &layers {
            let digest = sha256_digest(&layer.bytes);
            self.pusher
                .push_bytes(repository, &digest, &layer.bytes, &with)?;
            blobs.insert(digest.clone(), layer.bytes.len() as u64);
            let mut descriptor = json!({
                "mediaType": layer.media_type,
                "size": layer.bytes.len(),
                "digest": digest,
            });
            if !layer.annotations.is_empty() {
                descriptor["annotations"] = json!(layer.annotations);
            }
            layer_descriptors.push(descriptor);
        }
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": config.0, "size": config.1.len(), "digest": config_digest},
            "layers": layer_descriptors,
        });
        if let Some(artifact_type) = artifact_type {
            manifest["artifactType"] = json!(artifact_type);
        }
        if tag.is_none() {
            manifest["subject"] =
                json!({"mediaType": subject.1, "digest": subject.0, "size": subject.2});
        }
        let bytes = serde_json::to_vec(&manifest)?;
        let digest = sha256_digest(&bytes);
        self.pusher.put_manifest(
            repository,
            tag.as_deref().unwrap_or(&digest),
            OCI_MANIFEST,
            &bytes,
            &with,
        )?;
        blobs.insert(digest.clone(), bytes.len() as u64);
        let artifact = PushedArtifact {
            repository: repository.to_string(),
            subject: subject.0.to_string(),
            kind,
            digest,
            tag,
            artifact_type: artifact_type.map(str::to_string),
            blobs: blobs.into_iter().collect(),
        };
        self.pushed.push(artifact.clone());
        Ok(artifact)
    }

    /// A cosign `.sig` of `subject` signed with `key`, or with the keyless `annotations`.
    fn signature(
        &mut self,
        repository: &str,
        subject: (&str, &str, u64),
        sign: &dyn Fn(&[u8]) -> BTreeMap<String, String>,
    ) -> anyhow::Result<PushedArtifact> {
        let payload = simple_signing_payload(repository, subject.0);
        let annotations = sign(&payload);
        let config = cosign_config(&payload);
        self.artifact(
            repository,
            subject,
            "signature",
            Some(cosign_tag(subject.0, "sig")),
            None,
            (OCI_CONFIG, config),
            vec![Layer {
                media_type: SIMPLE_SIGNING,
                bytes: payload,
                annotations,
            }],
        )
    }

    /// Writes the referrers tag-schema index of `subject` listing `referrers`.
    fn referrers_index(
        &mut self,
        repository: &str,
        subject: &str,
        referrers: &[&PushedArtifact],
    ) -> anyhow::Result<()> {
        let with = self.with_auth(repository)?;
        let manifests: Vec<Value> = referrers
            .iter()
            .map(|r| {
                let (_, size) = r
                    .blobs
                    .iter()
                    .find(|(d, _)| *d == r.digest)
                    .expect("an artifact's blobs hold its manifest");
                let mut descriptor =
                    json!({"mediaType": OCI_MANIFEST, "digest": r.digest, "size": size});
                if let Some(t) = &r.artifact_type {
                    descriptor["artifactType"] = json!(t);
                }
                descriptor
            })
            .collect();
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
        let bytes = serde_json::to_vec(&index)?;
        let tag = subject.replacen(':', "-", 1);
        self.pusher
            .put_manifest(repository, &tag, OCI_INDEX, &bytes, &with)?;
        self.indexes.push(PushedReferrersIndex {
            repository: repository.to_string(),
            subject: subject.to_string(),
            tag,
            digest: sha256_digest(&bytes),
            referrers: referrers.iter().map(|r| r.digest.clone()).collect(),
        });
        Ok(())
    }
}

/// The image config cosign writes for a signature manifest: empty but for the payload's
/// diff id.
fn cosign_config(payload: &[u8]) -> Vec<u8> {
    let config = json!({
        "architecture": "",
        "config": {},
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(payload)]},
    });
    serde_json::to_vec(&config).expect("JSON values serialize")
}

fn key_annotations(key: &SigningKey, payload: &[u8]) -> BTreeMap<String, String> {
    BTreeMap::from([(SIGNATURE_ANNOTATION.to_string(), key.sign(payload))])
}

/// Pushes the supply-chain content of the table above into the registry at `registry_url`
/// (plain HTTP, or HTTPS without verifying; anonymous, or the registry's own auth challenge
/// answered without credentials), beside the fixture images of `set`, which it should
/// already hold. Keys are written into `dir`: `cosign.key`, `cosign.pub`, `other.pub`, and
/// the keyless signature's `trusted_root.json` (a test Fulcio CA and Rekor key).
pub fn push_supply_chain(
    registry_url: &str,
    set: &FixtureSet,
    dir: &Path,
) -> anyhow::Result<SupplyChain> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating `{}`", dir.display()))?;
    let key = SigningKey::generate();
    let other = SigningKey::generate();
    let key_file = dir.join("cosign.key");
    let public_key = dir.join("cosign.pub");
    let other_public_key = dir.join("other.pub");
    std::fs::write(&key_file, key.to_pkcs8_pem(None)?)?;
    std::fs::write(&public_key, key.verifying_key().to_pem())?;
    std::fs::write(&other_public_key, other.verifying_key().to_pem())?;
    let image = |repository: &str| {
        set.image(repository)
            .with_context(|| format!("the fixture set has no `{repository}`"))
    };
    let app_a = image("fixtures/app-a")?.clone();
    let app_b = image("fixtures/app-b")?.clone();
    let multi = image("fixtures/multi")?.clone();
    let many = image("fixtures/many-layers")?.clone();
    let sigstore = airlock_cosign::testing::TestSigstore::new();
    let trusted_root = dir.join("trusted_root.json");
    std::fs::write(&trusted_root, sigstore.trusted_root_json())?;

    let (artifacts, referrers_indexes) = off_runtime(|| -> anyhow::Result<_> {
        let mut w = Writer {
            pusher: Pusher::new(registry_url, &PushOptions::default())?,
            pushed: Vec::new(),
            indexes: Vec::new(),
        };
        let signed = |payload: &[u8]| key_annotations(&key, payload);

        // fixtures/app-a: .sig, .att, .sbom, and a .sig on the SBOM.
        let subject = (app_a.digest.as_str(), app_a.media_type.as_str(), app_a.size);
        w.signature(&app_a.repository, subject, &signed)?;
        let statement = json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{
                "name": format!("{SIGNED_REGISTRY}/{}", app_a.repository),
                "digest": {"sha256": app_a.digest.trim_start_matches("sha256:")},
            }],
            "predicateType": PREDICATE_TYPE,
            "predicate": {"buildDefinition": {"buildType": "https://ci.example.test/build/v1"}},
        });
        let statement = serde_json::to_vec(&statement)?;
        let base64 = base64::engine::general_purpose::STANDARD;
        let envelope = json!({
            "payloadType": IN_TOTO,
            "payload": base64.encode(&statement),
            "signatures": [{"keyid": "", "sig": key.sign(&dsse_pae(IN_TOTO, &statement))}],
        });
        let envelope = serde_json::to_vec(&envelope)?;
        w.artifact(
            &app_a.repository,
            subject,
            "attestation",
            Some(cosign_tag(&app_a.digest, "att")),
            None,
            (OCI_CONFIG, cosign_config(&envelope)),
            vec![Layer {
                media_type: DSSE_ENVELOPE,
                bytes: envelope,
                annotations: BTreeMap::from([
                    ("predicateType".to_string(), PREDICATE_TYPE.to_string()),
                    (SIGNATURE_ANNOTATION.to_string(), String::new()),
                ]),
            }],
        )?;
        let sbom = serde_json::to_vec(&json!({
            "spdxVersion": "SPDX-2.3",
            "dataLicense": "CC0-1.0",
            "SPDXID": "SPDXRef-DOCUMENT",
            "name": app_a.repository,
            "documentNamespace": format!("https://sbom.example.test/{}", app_a.digest),
            "creationInfo": {"created": "1970-01-01T00:00:00Z", "creators": ["Tool: airlock-testkit"]},
            "packages": [{
                "SPDXID": "SPDXRef-Package-app-a",
                "name": "app-a",
                "versionInfo": "1",
                "downloadLocation": "NOASSERTION",
            }],
        }))?;
        let sbom = w.artifact(
            &app_a.repository,
            subject,
            "sbom",
            Some(cosign_tag(&app_a.digest, "sbom")),
            None,
            (OCI_CONFIG, cosign_config(&sbom)),
            vec![Layer {
                media_type: SPDX_JSON,
                bytes: sbom,
                annotations: BTreeMap::new(),
            }],
        )?;
        let sbom_size = sbom
            .blobs
            .iter()
            .find(|(d, _)| *d == sbom.digest)
            .unwrap()
            .1;
        w.signature(
            &app_a.repository,
            (&sbom.digest, OCI_MANIFEST, sbom_size),
            &signed,
        )?;

        // fixtures/multi: the index, each platform manifest, and a referrer on amd64.
        w.signature(
            &multi.repository,
            (&multi.digest, &multi.media_type, multi.size),
            &signed,
        )?;
        for manifest in &multi.manifests {
            w.signature(
                &multi.repository,
                (&manifest.digest, &manifest.media_type, manifest.size),
                &signed,
            )?;
        }
        let amd64 = multi
            .manifests
            .iter()
            .find(|m| m.platform == "linux/amd64")
            .context("fixtures/multi has no linux/amd64")?;
        let report = serde_json::to_vec(&json!({
            "scanner": "example-scan",
            "subject": amd64.digest,
            "findings": [],
        }))?;
        let referrer = w.artifact(
            &multi.repository,
            (&amd64.digest, &amd64.media_type, amd64.size),
            "referrer",
            None,
            Some(SCAN_ARTIFACT_TYPE),
            (OCI_EMPTY, b"{}".to_vec()),
            vec![Layer {
                media_type: SCAN_ARTIFACT_TYPE,
                bytes: report,
                annotations: BTreeMap::from([(
                    "org.opencontainers.image.title".to_string(),
                    "scan.json".to_string(),
                )]),
            }],
        )?;
        w.referrers_index(&multi.repository, &amd64.digest, &[&referrer])?;

        // fixtures/app-b: signed with the other key.
        let other_signed = |payload: &[u8]| key_annotations(&other, payload);
        w.signature(
            &app_b.repository,
            (&app_b.digest, &app_b.media_type, app_b.size),
            &other_signed,
        )?;

        // fixtures/many-layers: keyless.
        let keyless =
            |payload: &[u8]| sigstore.sign_keyless(payload, KEYLESS_IDENTITY, KEYLESS_ISSUER);
        w.signature(
            &many.repository,
            (&many.digest, &many.media_type, many.size),
            &keyless,
        )?;
        Ok((w.pushed, w.indexes))
    })?;
    Ok(SupplyChain {
        key: key_file,
        public_key,
        other_public_key,
        keyless: Some(KeylessFixture {
            trusted_root,
            identity: KEYLESS_IDENTITY.to_string(),
            issuer: KEYLESS_ISSUER.to_string(),
            repository: many.repository.clone(),
        }),
        artifacts,
        referrers_indexes,
    })
}

/// Checks, with `openssl` and plain HTTP (no airlock code), that `repository` of the registry
/// at `registry_url` holds a cosign signature of `image_digest` made with `public_key`: the
/// `sha256-<hex>.sig` manifest, a simple-signing layer whose bytes hash to its digest, whose
/// `dev.cosignproject.cosign/signature` annotation `openssl dgst -sha256 -verify` accepts, and
/// whose `critical.image.docker-manifest-digest` is `image_digest`.
pub fn openssl_verify_cosign(
    registry_url: &str,
    repository: &str,
    image_digest: &str,
    public_key: &Path,
) -> anyhow::Result<()> {
    let openssl = require_tool("openssl")?;
    let base = url::Url::parse(registry_url)
        .with_context(|| format!("bad registry URL `{registry_url}`"))?;
    let tag = cosign_tag(image_digest, "sig");
    let fetched = off_runtime(|| -> anyhow::Result<Vec<(Vec<u8>, String)>> {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .danger_accept_invalid_certs(true)
            .no_proxy()
            .build()?;
        let get = |path: &str, accept: &str| -> anyhow::Result<Vec<u8>> {
            let resp = client
                .get(base.join(path)?)
                .header(reqwest::header::ACCEPT, accept)
                .send()?;
            ensure!(resp.status().is_success(), "GET {path}: {}", resp.status());
            Ok(resp.bytes()?.to_vec())
        };
        let accept = format!("{OCI_MANIFEST}, {DOCKER_MANIFEST}");
        let manifest = get(&format!("/v2/{repository}/manifests/{tag}"), &accept)?;
        let manifest: Value = serde_json::from_slice(&manifest)
            .with_context(|| format!("`{repository}:{tag}` is not JSON"))?;
        let mut out = Vec::new();
        for layer in manifest["layers"].as_array().into_iter().flatten() {
            if layer["mediaType"] != SIMPLE_SIGNING {
                continue;
            }
            let digest = layer["digest"].as_str().unwrap_or_default();
            let payload = get(
                &format!("/v2/{repository}/blobs/{digest}"),
                "application/octet-stream",
            )?;
            ensure!(
                sha256_digest(&payload) == digest,
                "payload blob {digest} of `{repository}:{tag}` does not hash to its digest"
            );
            let signature = layer["annotations"][SIGNATURE_ANNOTATION]
                .as_str()
                .unwrap_or_default()
                .to_string();
            out.push((payload, signature));
        }
        Ok(out)
    })?;
    ensure!(
        !fetched.is_empty(),
        "`{repository}:{tag}` has no simple-signing layer"
    );
    let work = tempfile::tempdir()?;
    let mut failures = Vec::new();
    for (n, (payload, signature)) in fetched.iter().enumerate() {
        let payload_file = work.path().join(format!("payload-{n}"));
        let signature_file = work.path().join(format!("signature-{n}"));
        std::fs::write(&payload_file, payload)?;
        let der = match base64::engine::general_purpose::STANDARD.decode(signature.trim()) {
            Ok(der) => der,
            Err(e) => {
                failures.push(format!("layer {n}: signature is not base64: {e}"));
                continue;
            }
        };
        std::fs::write(&signature_file, der)?;
        let verified = run(Command::new(&openssl)
            .args(["dgst", "-sha256", "-verify"])
            .arg(public_key)
            .arg("-signature")
            .arg(&signature_file)
            .arg(&payload_file));
        if let Err(e) = verified {
            failures.push(format!("layer {n}: {e:#}"));
            continue;
        }
        let payload: Value = serde_json::from_slice(payload)?;
        let named = payload["critical"]["image"]["docker-manifest-digest"]
            .as_str()
            .unwrap_or_default();
        if named != image_digest {
            failures.push(format!(
                "layer {n}: the payload names {named}, not {image_digest}"
            ));
            continue;
        }
        return Ok(());
    }
    bail!(
        "no signature of {image_digest} in `{repository}:{tag}` verifies with `{}`: {}",
        public_key.display(),
        failures.join("; ")
    )
}

/// Pushes a cosign `.sig`, signed with `key`, for each of `images` (already in the registry at
/// `registry_url`): a signed share of a corpus, for the benches.
pub fn sign_images(
    registry_url: &str,
    images: &[&crate::fixtures::FixtureImage],
    key: &SigningKey,
) -> anyhow::Result<Vec<PushedArtifact>> {
    off_runtime(|| {
        let mut w = Writer {
            pusher: Pusher::new(registry_url, &PushOptions::default())?,
            pushed: Vec::new(),
            indexes: Vec::new(),
        };
        let signed = |payload: &[u8]| key_annotations(key, payload);
        for image in images {
            let subject = (image.digest.as_str(), image.media_type.as_str(), image.size);
            w.signature(&image.repository, subject, &signed)
                .with_context(|| format!("signing `{}`", image.repository))?;
        }
        Ok(w.pushed)
    })
}
