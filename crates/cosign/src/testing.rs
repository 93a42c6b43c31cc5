//! Signing helpers for tests (feature `testing`): a test Fulcio CA and Rekor key with their
//! `trusted_root.json`, keyless and key-based cosign signatures, DSSE envelopes.
//!
//! Everything is real cryptography in the formats cosign writes; only the authorities are
//! made up.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use airlock_layout::media::{
    COSIGN_BUNDLE_ANNOTATION, COSIGN_CERTIFICATE_ANNOTATION, COSIGN_CHAIN_ANNOTATION,
    COSIGN_SIGNATURE_ANNOTATION, COSIGN_SIMPLE_SIGNING_TYPE, SIGSTORE_TRUSTED_ROOT,
};
use airlock_layout::{Digest, SigningKey};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::EncodePublicKey as _;
use serde_json::json;
use sha2::Digest as _;
use x509_cert::der::asn1::{BitString, Ia5String, OctetString, UtcTime, Utf8StringRef};
use x509_cert::der::oid::db::rfc5280::{
    ID_CE_BASIC_CONSTRAINTS, ID_CE_EXT_KEY_USAGE, ID_CE_SUBJECT_ALT_NAME,
};
use x509_cert::der::oid::db::rfc5912::{ECDSA_WITH_SHA_256, ID_KP_CODE_SIGNING};
use x509_cert::der::pem::LineEnding;
use x509_cert::der::{Decode as _, Encode as _, EncodePem as _};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, SubjectAltName};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate, Version};

use crate::keyless::{entry_timestamp_message, FULCIO_ISSUER_V1, FULCIO_ISSUER_V2};

/// Seconds since the Unix epoch, now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The simple-signing payload cosign signs for `digest`, named `docker_reference`.
pub fn simple_signing_payload(docker_reference: &str, digest: &Digest) -> Vec<u8> {
    let payload = json!({
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest.to_string()},
            "type": COSIGN_SIMPLE_SIGNING_TYPE,
        },
        "optional": null,
    });
    serde_json::to_vec(&payload).expect("JSON values serialize")
}

/// The annotations of a key-based signature layer: `dev.cosignproject.cosign/signature`.
pub fn sign_with_key(key: &SigningKey, payload: &[u8]) -> BTreeMap<String, String> {
    BTreeMap::from([(COSIGN_SIGNATURE_ANNOTATION.to_string(), key.sign(payload))])
}

/// DSSE's pre-authentication encoding: what a DSSE signature is made over.
pub fn dsse_pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// A DSSE envelope of `payload`, signed with `key` over its pre-authentication encoding.
pub fn dsse_envelope(key: &SigningKey, payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let envelope = json!({
        "payloadType": payload_type,
        "payload": BASE64.encode(payload),
        "signatures": [{"keyid": "", "sig": key.sign(&dsse_pae(payload_type, payload))}],
    });
    serde_json::to_vec(&envelope).expect("JSON values serialize")
}

/// A test sigstore: a Fulcio CA (P-256, self-signed) and a Rekor log key (P-256).
pub struct TestSigstore {
    ca_key: p256::ecdsa::SigningKey,
    ca: Certificate,
    rekor_key: p256::ecdsa::SigningKey,
}

/// The knobs of [`TestSigstore::sign_keyless_with`].
#[derive(Debug, Clone)]
pub struct KeylessOptions<'a> {
    /// The certificate's SAN (a URI, or an e-mail address when it holds `@` and no `:`).
    pub identity: &'a str,
    /// The certificate's OIDC issuer extensions.
    pub issuer: &'a str,
    /// The Rekor integrated time (Unix seconds); `None`: now.
    pub integrated_time: Option<u64>,
    /// The certificate's validity (Unix seconds); `None`: from a minute before now for ten
    /// minutes, as Fulcio issues them.
    pub validity: Option<(u64, u64)>,
}

impl Default for TestSigstore {
    fn default() -> Self {
        TestSigstore::new()
    }
}

fn random_key() -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::random(&mut rand_core::OsRng)
}

fn spki(key: &p256::ecdsa::SigningKey) -> Vec<u8> {
    key.verifying_key()
        .to_public_key_der()
        .expect("a P-256 key encodes")
        .as_bytes()
        .to_vec()
}

fn time(secs: u64) -> Time {
    Time::UtcTime(
        UtcTime::from_unix_duration(Duration::from_secs(secs)).expect("a time before 2050"),
    )
}

fn extension(
    oid: x509_cert::der::oid::ObjectIdentifier,
    critical: bool,
    value: Vec<u8>,
) -> Extension {
    Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value).expect("an extension value encodes"),
    }
}

/// Signs `tbs` with `signer` (ECDSA P-256, SHA-256) into a certificate.
fn certificate(tbs: TbsCertificate, signer: &p256::ecdsa::SigningKey) -> Certificate {
    let der = tbs.to_der().expect("a TBS certificate encodes");
    let signature: p256::ecdsa::Signature = signer.sign(&der);
    Certificate {
        tbs_certificate: tbs,
        signature_algorithm: ecdsa_sha256(),
        signature: BitString::from_bytes(signature.to_der().as_bytes()).expect("a bit string"),
    }
}

fn ecdsa_sha256() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: ECDSA_WITH_SHA_256,
        parameters: None,
    }
}

impl TestSigstore {
    /// A new CA and log key; the CA is valid from a day ago for ten years.
    pub fn new() -> TestSigstore {
        let ca_key = random_key();
        let name: Name = "CN=Test Fulcio,O=airlock test"
            .parse()
            .expect("a valid name");
        let t = now();
        let tbs = TbsCertificate {
            version: Version::V3,
            serial_number: SerialNumber::new(&[1]).expect("a serial number"),
            signature: ecdsa_sha256(),
            issuer: name.clone(),
            validity: Validity {
                not_before: time(t - 86_400),
                not_after: time(t + 10 * 365 * 86_400),
            },
            subject: name,
            subject_public_key_info: SubjectPublicKeyInfoOwned::from_der(&spki(&ca_key))
                .expect("a SubjectPublicKeyInfo"),
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: Some(vec![extension(
                ID_CE_BASIC_CONSTRAINTS,
                true,
                BasicConstraints {
                    ca: true,
                    path_len_constraint: None,
                }
                .to_der()
                .expect("basic constraints encode"),
            )]),
        };
        let ca = certificate(tbs, &ca_key);
        TestSigstore {
            ca_key,
            ca,
            rekor_key: random_key(),
        }
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> String {
        self.ca
            .to_pem(LineEnding::LF)
            .expect("a certificate encodes")
    }

    /// The `trusted_root.json` naming this CA and this log.
    pub fn trusted_root_json(&self) -> Vec<u8> {
        let rekor = spki(&self.rekor_key);
        let root = json!({
            "mediaType": SIGSTORE_TRUSTED_ROOT,
            "tlogs": [{
                "baseUrl": "https://rekor.example.test",
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": BASE64.encode(&rekor),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": {"start": "2020-01-01T00:00:00Z"},
                },
                "logId": {"keyId": BASE64.encode(sha2::Sha256::digest(&rekor))},
            }],
            "certificateAuthorities": [{
                "subject": {"organization": "airlock test", "commonName": "Test Fulcio"},
                "uri": "https://fulcio.example.test",
                "certChain": {"certificates": [{
                    "rawBytes": BASE64.encode(self.ca.to_der().expect("a certificate encodes")),
                }]},
                "validFor": {"start": "2020-01-01T00:00:00Z"},
            }],
            "ctlogs": [],
            "timestampAuthorities": [],
        });
        serde_json::to_vec_pretty(&root).expect("JSON values serialize")
    }

    /// The annotations of a keyless signature layer over `payload`: signature, Fulcio
    /// certificate naming `identity` and `issuer`, chain, and Rekor bundle.
    pub fn sign_keyless(
        &self,
        payload: &[u8],
        identity: &str,
        issuer: &str,
    ) -> BTreeMap<String, String> {
        self.sign_keyless_with(
            payload,
            &KeylessOptions {
                identity,
                issuer,
                integrated_time: None,
                validity: None,
            },
        )
    }

    /// [`TestSigstore::sign_keyless`] with a chosen integrated time and certificate validity.
    pub fn sign_keyless_with(
        &self,
        payload: &[u8],
        options: &KeylessOptions<'_>,
    ) -> BTreeMap<String, String> {
        let t = now();
        let (not_before, not_after) = options.validity.unwrap_or((t - 60, t + 540));
        let integrated_time = options.integrated_time.unwrap_or(t);
        let key = random_key();
        let name = Ia5String::new(options.identity).expect("an ASCII identity");
        let san = if options.identity.contains('@') && !options.identity.contains(':') {
            GeneralName::Rfc822Name(name)
        } else {
            GeneralName::UniformResourceIdentifier(name)
        };
        let extensions = vec![
            extension(
                ID_CE_SUBJECT_ALT_NAME,
                true,
                SubjectAltName(vec![san]).to_der().expect("a SAN encodes"),
            ),
            extension(
                ID_CE_EXT_KEY_USAGE,
                false,
                ExtendedKeyUsage(vec![ID_KP_CODE_SIGNING])
                    .to_der()
                    .expect("an EKU encodes"),
            ),
            extension(FULCIO_ISSUER_V1, false, options.issuer.as_bytes().to_vec()),
            extension(
                FULCIO_ISSUER_V2,
                false,
                Utf8StringRef::new(options.issuer)
                    .expect("a UTF-8 issuer")
                    .to_der()
                    .expect("a UTF8String encodes"),
            ),
        ];
        let serial = sha2::Sha256::digest(spki(&key));
        let tbs = TbsCertificate {
            version: Version::V3,
            serial_number: SerialNumber::new(&serial[..16]).expect("a serial number"),
            signature: ecdsa_sha256(),
            issuer: self.ca.tbs_certificate.subject.clone(),
            validity: Validity {
                not_before: time(not_before),
                not_after: time(not_after),
            },
            subject: Name::default(),
            subject_public_key_info: SubjectPublicKeyInfoOwned::from_der(&spki(&key))
                .expect("a SubjectPublicKeyInfo"),
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: Some(extensions),
        };
        let leaf = certificate(tbs, &self.ca_key);
        let leaf_pem = leaf.to_pem(LineEnding::LF).expect("a certificate encodes");
        let signature: p256::ecdsa::Signature = key.sign(payload);
        let signature = BASE64.encode(signature.to_der().as_bytes());

        let body = json!({
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {
                    "algorithm": "sha256",
                    "value": hex::encode(sha2::Sha256::digest(payload)),
                }},
                "signature": {
                    "content": signature,
                    "publicKey": {"content": BASE64.encode(leaf_pem.as_bytes())},
                },
            },
        });
        let body = BASE64.encode(serde_json::to_vec(&body).expect("JSON values serialize"));
        let log_id = hex::encode(sha2::Sha256::digest(spki(&self.rekor_key)));
        let log_index = 4_242;
        let when = i64::try_from(integrated_time).expect("a time after 1970");
        let message = entry_timestamp_message(&body, when, &log_id, log_index);
        let set: p256::ecdsa::Signature = self.rekor_key.sign(&message);
        let bundle = json!({
            "SignedEntryTimestamp": BASE64.encode(set.to_der().as_bytes()),
            "Payload": {
                "body": body,
                "integratedTime": when,
                "logIndex": log_index,
                "logID": log_id,
            },
        });
        BTreeMap::from([
            (COSIGN_SIGNATURE_ANNOTATION.to_string(), signature),
            (COSIGN_CERTIFICATE_ANNOTATION.to_string(), leaf_pem),
            (COSIGN_CHAIN_ANNOTATION.to_string(), self.ca_pem()),
            (
                COSIGN_BUNDLE_ANNOTATION.to_string(),
                serde_json::to_string(&bundle).expect("JSON values serialize"),
            ),
        ])
    }
}
