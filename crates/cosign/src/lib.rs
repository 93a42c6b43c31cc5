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
//!
//! # What is checked
//! - Every signature: the layer's bytes hash to its digest; the payload is a simple-signing
//!   payload (`critical.type` = `cosign container image signature`) whose
//!   `critical.image.docker-manifest-digest` is the image digest; the annotation
//!   `dev.cosignproject.cosign/signature` is a base64 DER ECDSA signature over it (SHA-256).
//! - With keys ([`Policy::Keys`]): the signature verifies with one of the keys (P-256).
//! - Keyless ([`Policy::Keyless`]), fully offline: the Fulcio certificate
//!   (`dev.sigstore.cosign/certificate`) is for code signing and issued by a certificate
//!   authority of the trusted root (P-256 or P-384, ECDSA with SHA-256 or SHA-384) that is
//!   valid at the time the signature was logged; the Rekor bundle's signed entry timestamp
//!   (`dev.sigstore.cosign/bundle`) verifies with the key of a log of the trusted root whose
//!   key id is the bundle's `logID`, over the canonical JSON of `body`, `integratedTime`,
//!   `logID` and `logIndex`; the integrated time lies within the certificate's validity; the
//!   entry (`hashedrekord`) names the payload's SHA-256, this signature and this
//!   certificate; the signature verifies with the certificate's key; and the certificate's
//!   identity (its subject alternative name) and issuer (Fulcio's extension
//!   1.3.6.1.4.1.57264.1.8, or else 1.3.6.1.4.1.57264.1.1) are the policy's, exactly. The
//!   chain annotation is not trusted: trust comes from the trusted root only. Signed
//!   certificate timestamps and Rekor inclusion proofs are not checked (cosign's own offline
//!   check of such a signature relies on the signed entry timestamp too).
//!
//! # Why not sigstore-rs
//! The `sigstore` crate (0.14) verifies cosign signatures through its `cosign` feature,
//! which pulls in an OCI registry client (`oci-client`), `aws-lc-rs` through `rustls-webpki`
//! and an async runtime, and fetches the signature manifests itself; airlock reads them from
//! its bundle, offline, and keeps network code in its registry crate. The newer
//! `sigstore-verify` crates verify Sigstore bundles (the protobuf-JSON bundle format) and
//! require a certificate's SCT, not the annotations a cosign `.sig` layer carries (a Rekor
//! bundle with a signed entry timestamp). So this crate checks those annotations itself with
//! RustCrypto's maintained `x509-cert`, `p256` and `p384`.

#![warn(missing_docs)]

mod keyless;
mod root;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::collections::BTreeMap;
use std::path::PathBuf;

use airlock_layout::media::{COSIGN_SIGNATURE_ANNOTATION, COSIGN_SIMPLE_SIGNING_TYPE};
use airlock_layout::{CertificateIdentity, Digest, UpstreamVerification};
use serde::Deserialize;

pub use root::TrustedRoot;

/// What is wrong with a policy's inputs.
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
    /// A public key file is not a usable key.
    #[error("upstream key: {source}")]
    Key {
        /// What the key reader said (it names the file).
        #[source]
        source: airlock_layout::Error,
    },
    /// A key policy was asked for without any key.
    #[error("no upstream public key given: name at least one key file")]
    NoKeys,
    /// A `trusted_root.json` is not usable.
    #[error("`{path}` is not a usable sigstore trusted root: {detail}; give the `trusted_root.json` of the sigstore instance that signed the images")]
    TrustedRoot {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
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

impl Policy {
    /// A key policy from public key files.
    pub fn keys(paths: &[PathBuf]) -> Result<Policy, CosignError> {
        if paths.is_empty() {
            return Err(CosignError::NoKeys);
        }
        let mut keys = Vec::new();
        for path in paths {
            let pem = std::fs::read_to_string(path).map_err(|source| CosignError::Read {
                path: path.clone(),
                source,
            })?;
            let key = airlock_layout::VerifyingKey::from_pem(&pem, path)
                .map_err(|source| CosignError::Key { source })?;
            keys.push(PolicyKey {
                path: path.clone(),
                key,
            });
        }
        Ok(Policy::Keys(keys))
    }

    /// A keyless policy: the trusted root file, and the identity and issuer wanted.
    pub fn keyless(
        trusted_root: &std::path::Path,
        identity: &str,
        issuer: &str,
    ) -> Result<Policy, CosignError> {
        Ok(Policy::Keyless(KeylessPolicy {
            root: std::sync::Arc::new(TrustedRoot::load(trusted_root)?),
            identity: identity.to_string(),
            issuer: issuer.to_string(),
        }))
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

/// The parts of a simple-signing payload that are checked.
#[derive(Deserialize)]
struct SimpleSigning {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    image: CriticalImage,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct CriticalImage {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// Checks that one of `layers` is a valid signature of `image` under `policy`.
pub fn verify_image(
    image: &Digest,
    layers: &[SignatureLayer<'_>],
    policy: &Policy,
) -> Result<Verified, Refusal> {
    let mut found = Vec::new();
    for layer in layers {
        match verify_layer(image, layer, policy) {
            Ok(verified) => return Ok(verified),
            Err(problem) => found.push(format!("layer {}: {problem}", layer.digest)),
        }
    }
    Err(Refusal {
        image: image.clone(),
        found,
    })
}

/// Why one layer is not a valid signature.
#[derive(Debug, thiserror::Error)]
enum LayerProblem {
    #[error("its bytes do not hash to its digest")]
    HashMismatch,
    #[error("not a simple-signing payload: {0}")]
    NotSimpleSigning(String),
    #[error("payload names {0} not the image")]
    OtherImage(String),
    #[error("no signature annotation")]
    NoSignature,
    #[error("{what}, not {keys}")]
    OtherKey { what: &'static str, keys: String },
    #[error(transparent)]
    Keyless(#[from] keyless::KeylessProblem),
}

fn verify_layer(
    image: &Digest,
    layer: &SignatureLayer<'_>,
    policy: &Policy,
) -> Result<Verified, LayerProblem> {
    if Digest::of_bytes(layer.payload) != *layer.digest {
        return Err(LayerProblem::HashMismatch);
    }
    let payload: SimpleSigning = serde_json::from_slice(layer.payload)
        .map_err(|e| LayerProblem::NotSimpleSigning(e.to_string()))?;
    if payload.critical.kind != COSIGN_SIMPLE_SIGNING_TYPE {
        return Err(LayerProblem::NotSimpleSigning(format!(
            "its type is `{}`",
            payload.critical.kind
        )));
    }
    let named = &payload.critical.image.docker_manifest_digest;
    if *named != image.to_string() {
        return Err(LayerProblem::OtherImage(named.clone()));
    }
    let signature = layer
        .annotations
        .get(COSIGN_SIGNATURE_ANNOTATION)
        .filter(|s| !s.trim().is_empty())
        .ok_or(LayerProblem::NoSignature)?;
    match policy {
        Policy::Keys(keys) => {
            for key in keys {
                if key.key.verify(layer.payload, signature.as_bytes()).is_ok() {
                    let fingerprint = key.key.fingerprint();
                    return Ok(Verified {
                        layer: layer.digest.clone(),
                        how: UpstreamVerification::Key {
                            key_sha256: fingerprint
                                .strip_prefix("sha256:")
                                .unwrap_or(&fingerprint)
                                .to_string(),
                        },
                        certificate: None,
                    });
                }
            }
            let names: Vec<String> = keys
                .iter()
                .map(|k| format!("`{}`", k.path.display()))
                .collect();
            let what = if keyless::leaf(layer.annotations).is_ok() {
                "a keyless signature (a key policy was given)"
            } else {
                "signed by another key"
            };
            Err(LayerProblem::OtherKey {
                what,
                keys: names.join(" or "),
            })
        }
        Policy::Keyless(keyless) => {
            let identity = keyless::verify(layer.payload, signature, layer.annotations, keyless)?;
            Ok(Verified {
                layer: layer.digest.clone(),
                how: UpstreamVerification::Keyless {
                    trusted_root_sha256: keyless.root.sha256.clone(),
                },
                certificate: Some(identity),
            })
        }
    }
}

/// The identity and issuer a keyless signature layer's certificate names, read without
/// verifying anything; `None` for a layer without a certificate.
pub fn certificate_identity(annotations: &BTreeMap<String, String>) -> Option<CertificateIdentity> {
    keyless::identity_of(&keyless::leaf(annotations).ok()?)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use airlock_layout::media::COSIGN_BUNDLE_ANNOTATION;
    use airlock_layout::SigningKey;

    use super::*;
    use crate::testing::{
        now, sign_with_key, simple_signing_payload, KeylessOptions, TestSigstore,
    };

    const IDENTITY: &str = "https://ci.example.test/release.yml@refs/heads/main";
    const ISSUER: &str = "https://issuer.example.test";

    fn image() -> Digest {
        Digest::of_bytes(b"an image manifest")
    }

    fn key_policy(key: &SigningKey) -> Policy {
        Policy::Keys(vec![PolicyKey {
            path: PathBuf::from("upstream.pub"),
            key: key.verifying_key(),
        }])
    }

    fn keyless_policy(sigstore: &TestSigstore, identity: &str, issuer: &str) -> Policy {
        let root = TrustedRoot::from_json(
            &sigstore.trusted_root_json(),
            std::path::Path::new("trusted_root.json"),
        )
        .unwrap();
        Policy::Keyless(KeylessPolicy {
            root: Arc::new(root),
            identity: identity.into(),
            issuer: issuer.into(),
        })
    }

    fn check(
        payload: &[u8],
        annotations: &BTreeMap<String, String>,
        policy: &Policy,
    ) -> Result<Verified, Refusal> {
        let digest = Digest::of_bytes(payload);
        let layer = SignatureLayer {
            digest: &digest,
            payload,
            annotations,
        };
        verify_image(&image(), &[layer], policy)
    }

    fn refused(result: Result<Verified, Refusal>) -> String {
        let refusal = result.unwrap_err();
        assert_eq!(refusal.found.len(), 1, "{refusal}");
        refusal.found[0].clone()
    }

    #[test]
    fn a_key_signature_verifies_and_names_the_key() {
        let key = SigningKey::generate();
        let payload = simple_signing_payload("registry.example.test/app", &image());
        let verified = check(&payload, &sign_with_key(&key, &payload), &key_policy(&key)).unwrap();
        let fingerprint = key.verifying_key().fingerprint();
        assert_eq!(
            verified.how,
            UpstreamVerification::Key {
                key_sha256: fingerprint.trim_start_matches("sha256:").into()
            }
        );
        assert_eq!(verified.layer, Digest::of_bytes(&payload));
        assert_eq!(verified.certificate, None);
    }

    #[test]
    fn another_key_is_refused_naming_the_key_file() {
        let payload = simple_signing_payload("registry.example.test/app", &image());
        let annotations = sign_with_key(&SigningKey::generate(), &payload);
        let found = refused(check(
            &payload,
            &annotations,
            &key_policy(&SigningKey::generate()),
        ));
        assert!(
            found.ends_with(": signed by another key, not `upstream.pub`"),
            "{found}"
        );
    }

    #[test]
    fn a_payload_naming_another_digest_is_refused() {
        let key = SigningKey::generate();
        let other = Digest::of_bytes(b"another image");
        let payload = simple_signing_payload("registry.example.test/app", &other);
        let found = refused(check(
            &payload,
            &sign_with_key(&key, &payload),
            &key_policy(&key),
        ));
        assert!(
            found.ends_with(&format!(": payload names {other} not the image")),
            "{found}"
        );
    }

    #[test]
    fn a_tampered_payload_is_refused() {
        let key = SigningKey::generate();
        let payload = simple_signing_payload("registry.example.test/app", &image());
        let annotations = sign_with_key(&key, &payload);
        let tampered = String::from_utf8(payload)
            .unwrap()
            .replace("registry.example.test", "registry.evil.test");
        let found = refused(check(tampered.as_bytes(), &annotations, &key_policy(&key)));
        assert!(found.contains("signed by another key"), "{found}");
        // Bytes that do not hash to the layer's digest are refused before anything else.
        let digest = Digest::of_bytes(b"something else");
        let layer = SignatureLayer {
            digest: &digest,
            payload: tampered.as_bytes(),
            annotations: &annotations,
        };
        let refusal = verify_image(&image(), &[layer], &key_policy(&key)).unwrap_err();
        assert!(refusal.found[0].ends_with("its bytes do not hash to its digest"));
    }

    #[test]
    fn what_each_layer_was_is_said() {
        let key = SigningKey::generate();
        let payload = simple_signing_payload("registry.example.test/app", &image());
        let not_json = b"not json".to_vec();
        let (a, b) = (Digest::of_bytes(&payload), Digest::of_bytes(&not_json));
        let none = BTreeMap::new();
        let layers = [
            SignatureLayer {
                digest: &a,
                payload: &payload,
                annotations: &none,
            },
            SignatureLayer {
                digest: &b,
                payload: &not_json,
                annotations: &none,
            },
        ];
        let refusal = verify_image(&image(), &layers, &key_policy(&key)).unwrap_err();
        assert_eq!(
            refusal.found[0],
            format!("layer {a}: no signature annotation")
        );
        assert!(refusal.found[1].starts_with(&format!("layer {b}: not a simple-signing payload: ")));
        assert!(refusal
            .to_string()
            .starts_with(&format!("no valid signature of {}: layer", image())));
        let empty = verify_image(&image(), &[], &key_policy(&key)).unwrap_err();
        assert_eq!(
            empty.to_string(),
            format!("no valid signature of {}: none found", image())
        );
    }

    #[test]
    fn a_keyless_signature_verifies_against_the_trusted_root() {
        let sigstore = TestSigstore::new();
        let payload = simple_signing_payload("registry.example.test/app", &image());
        let annotations = sigstore.sign_keyless(&payload, IDENTITY, ISSUER);
        let policy = keyless_policy(&sigstore, IDENTITY, ISSUER);
        let verified = check(&payload, &annotations, &policy).unwrap();
        let wanted = CertificateIdentity {
            identity: IDENTITY.into(),
            issuer: ISSUER.into(),
        };
        assert_eq!(verified.certificate.as_ref(), Some(&wanted));
        let Policy::Keyless(keyless) = &policy else {
            unreachable!()
        };
        assert_eq!(
            verified.how,
            UpstreamVerification::Keyless {
                trusted_root_sha256: keyless.root.sha256.clone()
            }
        );
        assert_eq!(certificate_identity(&annotations), Some(wanted));
        // A key policy says it is keyless.
        let found = refused(check(
            &payload,
            &annotations,
            &key_policy(&SigningKey::generate()),
        ));
        assert!(
            found.contains("a keyless signature (a key policy was given)"),
            "{found}"
        );
    }

    #[test]
    fn a_wrong_identity_or_issuer_is_refused_naming_what_the_certificate_says() {
        let sigstore = TestSigstore::new();
        let payload = simple_signing_payload("registry.example.test/app", &image());
        let annotations = sigstore.sign_keyless(&payload, IDENTITY, ISSUER);
        let wrong = "https://ci.example.test/other.yml@refs/heads/main";
        let found = refused(check(
            &payload,
            &annotations,
            &keyless_policy(&sigstore, wrong, ISSUER),
        ));
        assert!(
            found.ends_with(&format!(
                "its certificate names identity `{IDENTITY}` and issuer `{ISSUER}`, not identity `{wrong}` and issuer `{ISSUER}`"
            )),
            "{found}"
        );
        let found = refused(check(
            &payload,
            &annotations,
            &keyless_policy(&sigstore, IDENTITY, "https://accounts.example.test"),
        ));
        assert!(
            found.contains(&format!(
                "names identity `{IDENTITY}` and issuer `{ISSUER}`"
            )),
            "{found}"
        );
        assert!(found.contains("not identity"), "{found}");
    }

    #[test]
    fn a_certificate_from_another_ca_is_refused() {
        let ours = TestSigstore::new();
        let theirs = TestSigstore::new();
        let payload = simple_signing_payload("registry.example.test/app", &image());
        let mut annotations = theirs.sign_keyless(&payload, IDENTITY, ISSUER);
        // Their Rekor key is not ours either: take a bundle our log signed for a signature
        // of theirs and the refusal is about the log; with ours, about the certificate.
        let found = refused(check(
            &payload,
            &annotations,
            &keyless_policy(&ours, IDENTITY, ISSUER),
        ));
        assert!(
            found.contains("which is not a log of the trusted root"),
            "{found}"
        );
        let ours_signed = ours.sign_keyless(&payload, IDENTITY, ISSUER);
        annotations.insert(
            COSIGN_BUNDLE_ANNOTATION.into(),
            ours_signed[COSIGN_BUNDLE_ANNOTATION].clone(),
        );
        let found = refused(check(
            &payload,
            &annotations,
            &keyless_policy(&ours, IDENTITY, ISSUER),
        ));
        assert!(
            found.contains("does not chain to a certificate authority of the trusted root"),
            "{found}"
        );
    }

    #[test]
    fn a_tampered_signed_entry_timestamp_is_refused() {
        let sigstore = TestSigstore::new();
        let payload = simple_signing_payload("registry.example.test/app", &image());
        let mut annotations = sigstore.sign_keyless(&payload, IDENTITY, ISSUER);
        let bundle = &annotations[COSIGN_BUNDLE_ANNOTATION];
        let mut json: serde_json::Value = serde_json::from_str(bundle).unwrap();
        let t = json["Payload"]["integratedTime"].as_i64().unwrap();
        json["Payload"]["integratedTime"] = (t + 1).into();
        annotations.insert(COSIGN_BUNDLE_ANNOTATION.into(), json.to_string());
        let found = refused(check(
            &payload,
            &annotations,
            &keyless_policy(&sigstore, IDENTITY, ISSUER),
        ));
        assert!(
            found.ends_with("its Rekor signed entry timestamp does not verify with the log's key"),
            "{found}"
        );
    }

    #[test]
    fn a_signature_logged_outside_the_certificate_validity_is_refused() {
        let sigstore = TestSigstore::new();
        let payload = simple_signing_payload("registry.example.test/app", &image());
        let t = now();
        let annotations = sigstore.sign_keyless_with(
            &payload,
            &KeylessOptions {
                identity: IDENTITY,
                issuer: ISSUER,
                integrated_time: Some(t + 3_600),
                validity: Some((t - 60, t + 540)),
            },
        );
        let found = refused(check(
            &payload,
            &annotations,
            &keyless_policy(&sigstore, IDENTITY, ISSUER),
        ));
        assert!(
            found.contains(&format!(
                "it was logged at {} (Unix time), outside its certificate's validity",
                t + 3_600
            )),
            "{found}"
        );
    }

    #[test]
    fn a_keyless_layer_whose_entry_names_another_payload_is_refused() {
        let sigstore = TestSigstore::new();
        let payload = simple_signing_payload("registry.example.test/app", &image());
        let other = simple_signing_payload("registry.example.test/other", &image());
        let mut annotations = sigstore.sign_keyless(&payload, IDENTITY, ISSUER);
        let other_signed = sigstore.sign_keyless(&other, IDENTITY, ISSUER);
        annotations.insert(
            COSIGN_BUNDLE_ANNOTATION.into(),
            other_signed[COSIGN_BUNDLE_ANNOTATION].clone(),
        );
        let found = refused(check(
            &payload,
            &annotations,
            &keyless_policy(&sigstore, IDENTITY, ISSUER),
        ));
        assert!(
            found.contains("its Rekor entry is not of this signature"),
            "{found}"
        );
    }

    #[test]
    fn policy_keys_reads_pem_files_and_names_a_bad_one() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("k.pub");
        std::fs::write(&good, SigningKey::generate().verifying_key().to_pem()).unwrap();
        assert!(
            matches!(Policy::keys(std::slice::from_ref(&good)).unwrap(), Policy::Keys(k) if k.len() == 1)
        );
        let bad = dir.path().join("bad.pub");
        std::fs::write(&bad, "not a key").unwrap();
        let err = Policy::keys(&[good, bad.clone()]).unwrap_err();
        assert!(err.to_string().contains("bad.pub"), "{err}");
        assert!(matches!(Policy::keys(&[]), Err(CosignError::NoKeys)));
    }
}
