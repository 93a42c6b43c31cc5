//! Upstream signatures, checked offline.
//!
//! A cosign signature is a manifest (found under the tag `sha256-<hex>.sig`, or as an OCI 1.1
//! referrer) whose layers are simple-signing payloads
//! ([`COSIGN_SIMPLE_SIGNING`](airlock_layout::media::COSIGN_SIMPLE_SIGNING)); each layer's
//! annotations hold the signature over the payload and, for a keyless signature, the Fulcio
//! certificate, its chain and the Rekor bundle. [`verify_image`] checks that one layer is a
//! valid signature of an image digest under a [`Policy`]; [`certificate_identity`] reads what a
//! keyless certificate names, for the inventory.
//!
//! Nothing here does I/O but reading the files a policy names: the caller fetches the
//! signature manifest and its layers (from a registry at bundle time, from the bundle
//! offline) and hands their bytes in.

#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use airlock_layout::{CertificateIdentity, Digest, UpstreamVerification};

/// What is wrong with a policy's inputs or a signature manifest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CosignError {
    /// A key or trusted root file could not be read.
    #[error("reading `{path}`: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not implemented yet.
    #[error("upstream signature verification is not built yet")]
    NotBuilt,
}

/// What a valid signature must be.
#[derive(Debug, Clone)]
pub enum Policy {
    /// Made with one of these public keys (cosign or PEM `PUBLIC KEY` files).
    Keys(Vec<PolicyKey>),
    /// Keyless: a Fulcio certificate chaining to the trusted root, logged in Rekor, naming
    /// this identity and issuer.
    Keyless(KeylessPolicy),
}

/// A public key of a [`Policy::Keys`], with the file it came from.
#[derive(Debug, Clone)]
pub struct PolicyKey {
    /// The file, for messages.
    pub path: PathBuf,
    /// The key.
    pub key: airlock_layout::VerifyingKey,
}

/// The keyless half of a [`Policy`].
#[derive(Debug, Clone)]
pub struct KeylessPolicy {
    /// The sigstore trusted root.
    pub root: std::sync::Arc<TrustedRoot>,
    /// The certificate identity wanted (the SAN: e-mail or URI), exact.
    pub identity: String,
    /// The OIDC issuer wanted, exact.
    pub issuer: String,
}

/// A sigstore `trusted_root.json`: Fulcio CAs and Rekor keys, with their validity.
#[derive(Debug)]
pub struct TrustedRoot {
    /// sha256 (hex) of the file's bytes, recorded in the inventory.
    pub sha256: String,
}

impl TrustedRoot {
    /// Reads and parses a `trusted_root.json`.
    pub fn load(path: &Path) -> Result<TrustedRoot, CosignError> {
        let _ = path;
        Err(CosignError::NotBuilt)
    }
}

impl Policy {
    /// A key policy from public key files.
    pub fn keys(paths: &[PathBuf]) -> Result<Policy, CosignError> {
        let _ = paths;
        Err(CosignError::NotBuilt)
    }
}

/// One layer of a signature manifest: its payload and its annotations.
#[derive(Debug, Clone, Copy)]
pub struct SignatureLayer<'a> {
    /// The layer's digest (the payload's).
    pub digest: &'a Digest,
    /// The payload (simple-signing JSON).
    pub payload: &'a [u8],
    /// The layer descriptor's annotations.
    pub annotations: &'a BTreeMap<String, String>,
}

/// A valid signature: which layer, and who signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The layer that verified.
    pub layer: Digest,
    /// How, for the inventory.
    pub how: UpstreamVerification,
    /// The certificate's identity and issuer, for a keyless signature.
    pub certificate: Option<CertificateIdentity>,
}

/// No layer is a valid signature of the image: what each one was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no valid signature of {image}: {}", if found.is_empty() { "none found".to_string() } else { found.join("; ") })]
pub struct Refusal {
    /// The image digest.
    pub image: Digest,
    /// What each layer found was, e.g. "layer sha256:… is signed by another key".
    pub found: Vec<String>,
}

/// Checks that one of `layers` is a valid signature of `image` under `policy`.
pub fn verify_image(
    image: &Digest,
    layers: &[SignatureLayer<'_>],
    policy: &Policy,
) -> Result<Verified, Refusal> {
    let _ = (layers, policy);
    Err(Refusal {
        image: image.clone(),
        found: vec!["upstream signature verification is not built yet".into()],
    })
}

/// The identity and issuer a keyless signature layer's certificate names, read without
/// verifying anything; `None` for a layer without a certificate.
pub fn certificate_identity(annotations: &BTreeMap<String, String>) -> Option<CertificateIdentity> {
    let _ = annotations;
    None
}
