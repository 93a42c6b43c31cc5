//! Keyless signatures, checked offline: Fulcio certificate, Rekor bundle, identity.

use std::collections::BTreeMap;

use airlock_layout::media::{COSIGN_BUNDLE_ANNOTATION, COSIGN_CERTIFICATE_ANNOTATION};
use airlock_layout::CertificateIdentity;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use x509_cert::der::asn1::Utf8StringRef;
use x509_cert::der::oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ID_KP_CODE_SIGNING,
};
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::der::{Decode as _, DecodePem as _, Encode as _};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{ExtendedKeyUsage, SubjectAltName};
use x509_cert::Certificate;

use crate::{KeylessPolicy, TrustedRoot};

/// Fulcio's OIDC issuer extension (v1): the issuer's URL as raw bytes.
pub(crate) const FULCIO_ISSUER_V1: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1");
/// Fulcio's OIDC issuer extension (v2): a DER UTF8String.
pub(crate) const FULCIO_ISSUER_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8");

/// Why a keyless signature layer is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KeylessProblem {
    #[error("no Fulcio certificate (`{COSIGN_CERTIFICATE_ANNOTATION}`): not a keyless signature")]
    NoCertificate,
    #[error("its certificate is not a PEM X.509 certificate: {0}")]
    BadCertificate(String),
    #[error("its certificate names no identity (subject alternative name)")]
    NoIdentity,
    #[error("its certificate is not for code signing")]
    NotCodeSigning,
    #[error("no Rekor bundle (`{COSIGN_BUNDLE_ANNOTATION}`): it cannot be checked offline")]
    NoBundle,
    #[error("its Rekor bundle is not readable: {0}")]
    BadBundle(String),
    #[error("its Rekor entry was logged by {log_id}, which is not a log of the trusted root")]
    UnknownLog { log_id: String },
    #[error("its Rekor signed entry timestamp does not verify with the log's key")]
    BadEntryTimestamp,
    #[error("its certificate (issued by `{issuer}`) does not chain to a certificate authority of the trusted root valid at {time}")]
    NotFromRoot { issuer: String, time: u64 },
    #[error("it was logged at {time} (Unix time), outside its certificate's validity ({not_before} to {not_after})")]
    OutsideValidity {
        time: u64,
        not_before: u64,
        not_after: u64,
    },
    #[error("its Rekor entry is not of this signature: {0}")]
    EntryMismatch(&'static str),
    #[error("the signature does not verify with its certificate's key")]
    BadSignature,
    #[error("its certificate names identity `{}` and issuer `{}`, not identity `{wanted_identity}` and issuer `{wanted_issuer}`", found.identity, found.issuer)]
    WrongIdentity {
        found: CertificateIdentity,
        wanted_identity: String,
        wanted_issuer: String,
    },
}

/// The hash of an ECDSA signature.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Hash {
    Sha256,
    Sha384,
}

/// Whether `signature` (DER) is an ECDSA signature of `message` under the P-256 or P-384 key
/// `spki` (DER `SubjectPublicKeyInfo`), hashed with `hash`.
pub(crate) fn verify_ecdsa(spki: &[u8], hash: Hash, message: &[u8], signature: &[u8]) -> bool {
    use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
    use p256::pkcs8::DecodePublicKey as _;
    let prehash = match hash {
        Hash::Sha256 => sha2::Sha256::digest(message).to_vec(),
        Hash::Sha384 => sha2::Sha384::digest(message).to_vec(),
    };
    if let Ok(key) = p256::ecdsa::VerifyingKey::from_public_key_der(spki) {
        return p256::ecdsa::Signature::from_der(signature)
            .is_ok_and(|sig| key.verify_prehash(&prehash, &sig).is_ok());
    }
    if let Ok(key) = p384::ecdsa::VerifyingKey::from_public_key_der(spki) {
        return p384::ecdsa::Signature::from_der(signature)
            .is_ok_and(|sig| key.verify_prehash(&prehash, &sig).is_ok());
    }
    false
}

/// Whether `issuer` signed `cert`.
fn signed_by(cert: &Certificate, issuer: &Certificate) -> bool {
    let hash = match cert.signature_algorithm.oid {
        ECDSA_WITH_SHA_256 => Hash::Sha256,
        ECDSA_WITH_SHA_384 => Hash::Sha384,
        _ => return false,
    };
    let (Ok(tbs), Ok(spki)) = (
        cert.tbs_certificate.to_der(),
        issuer.tbs_certificate.subject_public_key_info.to_der(),
    ) else {
        return false;
    };
    cert.tbs_certificate.issuer == issuer.tbs_certificate.subject
        && verify_ecdsa(&spki, hash, &tbs, cert.signature.raw_bytes())
}

fn validity(cert: &Certificate) -> (u64, u64) {
    let v = &cert.tbs_certificate.validity;
    (
        v.not_before.to_unix_duration().as_secs(),
        v.not_after.to_unix_duration().as_secs(),
    )
}

/// The identity (SAN) and issuer (Fulcio extension) a certificate names.
pub(crate) fn identity_of(cert: &Certificate) -> Option<CertificateIdentity> {
    let (_, san) = cert.tbs_certificate.get::<SubjectAltName>().ok()??;
    let identity = san.0.iter().find_map(|name| match name {
        GeneralName::UniformResourceIdentifier(uri) => Some(uri.to_string()),
        GeneralName::Rfc822Name(email) => Some(email.to_string()),
        GeneralName::DnsName(dns) => Some(dns.to_string()),
        _ => None,
    })?;
    let extensions = cert
        .tbs_certificate
        .extensions
        .as_deref()
        .unwrap_or_default();
    let v2 = extensions
        .iter()
        .find(|e| e.extn_id == FULCIO_ISSUER_V2)
        .and_then(|e| Utf8StringRef::from_der(e.extn_value.as_bytes()).ok())
        .map(|s| s.as_str().to_string());
    let v1 = || {
        extensions
            .iter()
            .find(|e| e.extn_id == FULCIO_ISSUER_V1)
            .and_then(|e| std::str::from_utf8(e.extn_value.as_bytes()).ok())
            .map(str::to_string)
    };
    let issuer = v2.or_else(v1).unwrap_or_default();
    Some(CertificateIdentity { identity, issuer })
}

/// The leaf certificate of a layer's annotations.
pub(crate) fn leaf(annotations: &BTreeMap<String, String>) -> Result<Certificate, KeylessProblem> {
    let pem = annotations
        .get(COSIGN_CERTIFICATE_ANNOTATION)
        .ok_or(KeylessProblem::NoCertificate)?;
    Certificate::from_pem(pem.trim().as_bytes())
        .map_err(|e| KeylessProblem::BadCertificate(e.to_string()))
}

/// cosign's Rekor bundle annotation.
#[derive(Deserialize)]
struct RekorBundle {
    #[serde(rename = "SignedEntryTimestamp")]
    signed_entry_timestamp: String,
    #[serde(rename = "Payload")]
    payload: RekorPayload,
}

/// What the signed entry timestamp signs, in canonical JSON (keys sorted, no space): the
/// field order below is that order.
#[derive(Deserialize, Serialize)]
struct RekorPayload {
    body: String,
    #[serde(rename = "integratedTime")]
    integrated_time: i64,
    #[serde(rename = "logID")]
    log_id: String,
    #[serde(rename = "logIndex")]
    log_index: i64,
}

/// The canonical JSON the signed entry timestamp is made over.
pub(crate) fn entry_timestamp_message(
    body: &str,
    integrated_time: i64,
    log_id: &str,
    log_index: i64,
) -> Vec<u8> {
    serde_json::to_vec(&RekorPayload {
        body: body.to_string(),
        integrated_time,
        log_id: log_id.to_string(),
        log_index,
    })
    .expect("a struct of strings and integers serializes")
}

/// Checks a keyless signature layer: `signature` (base64) over `payload`, with the
/// certificate, chain and Rekor bundle of `annotations`, under `policy`.
pub(crate) fn verify(
    payload: &[u8],
    signature: &str,
    annotations: &BTreeMap<String, String>,
    policy: &KeylessPolicy,
) -> Result<CertificateIdentity, KeylessProblem> {
    let cert = leaf(annotations)?;
    let found = identity_of(&cert).ok_or(KeylessProblem::NoIdentity)?;
    let code_signing = cert
        .tbs_certificate
        .get::<ExtendedKeyUsage>()
        .ok()
        .flatten()
        .is_some_and(|(_, eku)| eku.0.contains(&ID_KP_CODE_SIGNING));
    if !code_signing {
        return Err(KeylessProblem::NotCodeSigning);
    }
    let bundle = annotations
        .get(COSIGN_BUNDLE_ANNOTATION)
        .ok_or(KeylessProblem::NoBundle)?;
    let bundle: RekorBundle =
        serde_json::from_str(bundle).map_err(|e| KeylessProblem::BadBundle(e.to_string()))?;
    let root: &TrustedRoot = &policy.root;

    // The log entry: signed by a log of the trusted root.
    let p = &bundle.payload;
    let log_id = hex::decode(&p.log_id)
        .map_err(|_| KeylessProblem::BadBundle(format!("logID `{}` is not hex", p.log_id)))?;
    let time = u64::try_from(p.integrated_time)
        .map_err(|_| KeylessProblem::BadBundle("integratedTime is negative".into()))?;
    let log = root
        .logs
        .iter()
        .find(|log| log.key_id == log_id && log.valid_for.contains(time))
        .ok_or_else(|| KeylessProblem::UnknownLog {
            log_id: p.log_id.clone(),
        })?;
    let set = BASE64
        .decode(bundle.signed_entry_timestamp.trim())
        .map_err(|e| KeylessProblem::BadBundle(format!("SignedEntryTimestamp: {e}")))?;
    let message = entry_timestamp_message(&p.body, p.integrated_time, &p.log_id, p.log_index);
    if !verify_ecdsa(&log.spki, Hash::Sha256, &message, &set) {
        return Err(KeylessProblem::BadEntryTimestamp);
    }

    // The certificate: issued by a CA of the trusted root, valid when logged.
    let from_root = root.authorities.iter().any(|ca| {
        let issuing = &ca.chain[0];
        let (start, end) = validity(issuing);
        ca.valid_for.contains(time) && start <= time && time <= end && signed_by(&cert, issuing)
    });
    if !from_root {
        return Err(KeylessProblem::NotFromRoot {
            issuer: cert.tbs_certificate.issuer.to_string(),
            time,
        });
    }
    let (not_before, not_after) = validity(&cert);
    if time < not_before || time > not_after {
        return Err(KeylessProblem::OutsideValidity {
            time,
            not_before,
            not_after,
        });
    }

    // The entry names this signature, this payload and this certificate.
    check_entry(&p.body, payload, signature, &cert)?;

    // The signature itself, with the certificate's key.
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| KeylessProblem::BadCertificate(e.to_string()))?;
    let der = BASE64
        .decode(signature.trim())
        .map_err(|_| KeylessProblem::BadSignature)?;
    if !verify_ecdsa(&spki, Hash::Sha256, payload, &der) {
        return Err(KeylessProblem::BadSignature);
    }

    if found.identity != policy.identity || found.issuer != policy.issuer {
        return Err(KeylessProblem::WrongIdentity {
            found,
            wanted_identity: policy.identity.clone(),
            wanted_issuer: policy.issuer.clone(),
        });
    }
    Ok(found)
}

/// Checks the Rekor `hashedrekord` body against the payload, signature and certificate.
fn check_entry(
    body: &str,
    payload: &[u8],
    signature: &str,
    cert: &Certificate,
) -> Result<(), KeylessProblem> {
    use KeylessProblem::EntryMismatch;
    let body = BASE64
        .decode(body.trim())
        .map_err(|_| EntryMismatch("its body is not base64"))?;
    let body: serde_json::Value =
        serde_json::from_slice(&body).map_err(|_| EntryMismatch("its body is not JSON"))?;
    if body["kind"] != "hashedrekord" {
        return Err(EntryMismatch("it is not a hashedrekord entry"));
    }
    let spec = &body["spec"];
    let hash = &spec["data"]["hash"];
    let payload_hash = hex::encode(sha2::Sha256::digest(payload));
    if hash["algorithm"] != "sha256" || hash["value"] != payload_hash.as_str() {
        return Err(EntryMismatch("it names another payload hash"));
    }
    let logged = spec["signature"]["content"]
        .as_str()
        .and_then(|s| BASE64.decode(s.trim()).ok());
    if logged.is_none() || logged != BASE64.decode(signature.trim()).ok() {
        return Err(EntryMismatch("it names another signature"));
    }
    let logged_cert = spec["signature"]["publicKey"]["content"]
        .as_str()
        .and_then(|s| BASE64.decode(s.trim()).ok())
        .and_then(|pem| Certificate::from_pem(&pem).ok());
    if logged_cert.as_ref() != Some(cert) {
        return Err(EntryMismatch("it names another certificate"));
    }
    Ok(())
}
