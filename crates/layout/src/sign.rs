//! ECDSA P-256 keys and the signature of `airlock/manifest.json`.
//!
//! The signature is the `cosign sign-blob` format: ECDSA P-256 over the SHA-256 of the exact
//! bytes, DER-encoded, then base64 (standard alphabet, no line breaks). A PEM public key
//! verifies it with airlock, `cosign verify-blob --key` or `openssl dgst -sha256 -verify`.
//! Signing is deterministic (RFC 6979), so a signed bundle stays reproducible.
//!
//! ```
//! use airlock_layout::{SigningKey, VerifyingKey};
//! use std::path::Path;
//!
//! # fn main() -> Result<(), airlock_layout::Error> {
//! let key = SigningKey::generate();
//! let pem = key.to_pkcs8_pem(Some(b"correct horse"))?;
//! let key = SigningKey::from_pem(&pem, Some(b"correct horse"), Path::new("demo.key"))?;
//!
//! let manifest = br#"{"formatVersion":1}"#;
//! let signature = key.sign(manifest);
//! let public = VerifyingKey::from_pem(&key.verifying_key().to_pem(), Path::new("demo.pub"))?;
//! public.verify(manifest, signature.as_bytes())?;
//! assert!(public.verify(b"tampered", signature.as_bytes()).is_err());
//! # Ok(())
//! # }
//! ```
//!
//! Private keys are read from PEM: PKCS#8 (`PRIVATE KEY`, as written by `airlock key
//! generate` without a passphrase and by `openssl genpkey`), encrypted PKCS#8 (`ENCRYPTED
//! PRIVATE KEY`, PBES2), SEC1 (`EC PRIVATE KEY`, as written by `openssl ecparam -genkey`) and
//! cosign's encrypted keys (`ENCRYPTED SIGSTORE PRIVATE KEY` and the older `ENCRYPTED COSIGN
//! PRIVATE KEY`: scrypt and NaCl secretbox around PKCS#8).

use std::fmt;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::Signature;
use pkcs8::der::Decode as _;
use pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, EncodePrivateKey as _};
use pkcs8::{EncodePublicKey as _, LineEnding, ObjectIdentifier};
use sha2::Digest as _;

use crate::error::{Error, KeyProblem, SignatureDefect};

/// `id-ecPublicKey` (RFC 5480): the algorithm of every EC key, the curve is a parameter.
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// `secp256r1` a.k.a. `prime256v1` a.k.a. P-256.
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

/// Largest scrypt cost accepted in a cosign key (cosign writes 2^15 or 2^16); a bigger one
/// would let a crafted key file take gigabytes of memory.
const MAX_SCRYPT_LOG_N: u8 = 20;
/// Largest scrypt memory (`128 * N * r` bytes) accepted in a cosign key: N = 2^20 with cosign's
/// r = 8. cosign's own keys need 32 or 64 MiB.
const MAX_SCRYPT_MEMORY: u128 = 1 << 30;
/// Largest scrypt work (`128 * N * r * p`) accepted: that of the largest memory with p = 1
/// (`airlock key generate` writes N = 2^14, r = 8, p = 5: 80 MiB).
const MAX_SCRYPT_WORK: u128 = 1 << 30;
/// Largest PBKDF2 iteration count accepted in an encrypted PKCS#8 key (OpenSSL writes 2048).
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;

/// An ECDSA P-256 private key that signs bundle manifests.
///
/// Its `Debug` shows the public key's fingerprint only, never key material.
#[derive(Clone)]
pub struct SigningKey {
    inner: p256::ecdsa::SigningKey,
}

/// An ECDSA P-256 public key that checks bundle manifest signatures.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    inner: p256::ecdsa::VerifyingKey,
}

impl SigningKey {
    /// A new random key from the operating system's random number generator.
    pub fn generate() -> SigningKey {
        SigningKey {
            inner: p256::ecdsa::SigningKey::random(&mut rand_core::OsRng),
        }
    }

    /// Reads a private key from PEM text.
    ///
    /// Accepted: PKCS#8 `PRIVATE KEY`, encrypted PKCS#8 `ENCRYPTED PRIVATE KEY` (needs
    /// `passphrase`), SEC1 `EC PRIVATE KEY` (other blocks such as `EC PARAMETERS` before it
    /// are skipped), and cosign's `ENCRYPTED SIGSTORE PRIVATE KEY` / `ENCRYPTED COSIGN
    /// PRIVATE KEY` (without a passphrase, the empty one cosign allows is tried). The key
    /// must be on the P-256 curve. `origin` names the file in errors.
    pub fn from_pem(
        pem: &str,
        passphrase: Option<&[u8]>,
        origin: &Path,
    ) -> Result<SigningKey, Error> {
        let fail = |problem| key_error(origin, problem);
        let block = first_block(pem, |label| label != "EC PARAMETERS").map_err(fail)?;
        if block.text.contains("Proc-Type:") {
            return Err(fail(KeyProblem::LegacyEncryption));
        }
        let der = |text: &str| {
            pkcs8::der::pem::decode_vec(text.as_bytes())
                .map(|(_, der)| zeroize::Zeroizing::new(der))
                .map_err(|e| KeyProblem::Malformed {
                    kind: "PEM",
                    detail: e.to_string(),
                })
        };
        let inner = match block.label.as_str() {
            "PRIVATE KEY" => from_pkcs8_der(&der(block.text).map_err(fail)?),
            "ENCRYPTED PRIVATE KEY" => {
                let Some(passphrase) = passphrase else {
                    return Err(fail(KeyProblem::NeedsPassphrase));
                };
                let der = der(block.text).map_err(fail)?;
                from_encrypted_pkcs8_der(&der, passphrase)
            }
            "EC PRIVATE KEY" => from_sec1_der(&der(block.text).map_err(fail)?),
            "ENCRYPTED SIGSTORE PRIVATE KEY" | "ENCRYPTED COSIGN PRIVATE KEY" => {
                let json = der(block.text).map_err(fail)?;
                match passphrase {
                    Some(p) => from_cosign_json(&json, p),
                    // cosign lets a key be made with an empty password.
                    None => from_cosign_json(&json, b"").map_err(|e| match e {
                        KeyProblem::WrongPassphrase => KeyProblem::NeedsPassphrase,
                        other => other,
                    }),
                }
            }
            "RSA PRIVATE KEY" => Err(KeyProblem::NotP256 {
                algorithm: "RSA".into(),
            }),
            "DSA PRIVATE KEY" => Err(KeyProblem::NotP256 {
                algorithm: "DSA".into(),
            }),
            "PUBLIC KEY" => Err(KeyProblem::PublicNotPrivate),
            other => Err(KeyProblem::UnsupportedPem {
                label: other.to_string(),
            }),
        };
        inner.map(|inner| SigningKey { inner }).map_err(fail)
    }

    /// The key as PKCS#8 PEM: `ENCRYPTED PRIVATE KEY` (PBES2: scrypt with N = 2^14, r = 8,
    /// p = 5, and AES-256-CBC; OpenSSL reads it) when a passphrase is given, `PRIVATE KEY`
    /// otherwise.
    pub fn to_pkcs8_pem(&self, passphrase: Option<&[u8]>) -> Result<String, Error> {
        let encode_error = |e: pkcs8::Error| Error::KeyEncode {
            detail: e.to_string(),
        };
        let Some(passphrase) = passphrase else {
            let pem = self
                .inner
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(encode_error)?;
            return Ok(pem.as_str().to_owned());
        };
        // scrypt N = 2^14, r = 8, p = 5 (16 MiB, OWASP's equivalent of N = 2^17, p = 1):
        // OpenSSL refuses to decrypt keys whose scrypt needs more than 32 MiB, and a key
        // that `openssl pkey` reads can be converted to any other format.
        let mut salt = [0u8; 16];
        let mut iv = [0u8; 16];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut salt);
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut iv);
        let scrypt = scrypt::Params::new(14, 8, 5, 32).expect("valid scrypt parameters");
        let params = pkcs8::pkcs5::pbes2::Parameters::scrypt_aes256cbc(scrypt, &salt, &iv)
            .map_err(|e| encode_error(e.into()))?;
        let plain = self.inner.to_pkcs8_der().map_err(encode_error)?;
        let info = pkcs8::PrivateKeyInfo::from_der(plain.as_bytes())
            .map_err(|e| encode_error(e.into()))?;
        let sealed = info
            .encrypt_with_params(params, passphrase)
            .map_err(encode_error)?;
        let pem = sealed
            .to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF)
            .map_err(|e| encode_error(e.into()))?;
        Ok(pem.as_str().to_owned())
    }

    /// The public half.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey {
            inner: *self.inner.verifying_key(),
        }
    }

    /// Signs `data`: deterministic (RFC 6979) ECDSA P-256 over SHA-256 of `data`, the DER
    /// signature in base64 (standard alphabet, no line break), as `cosign sign-blob` writes it.
    pub fn sign(&self, data: &[u8]) -> String {
        let signature: Signature = self.inner.sign(data);
        BASE64.encode(signature.to_der().as_bytes())
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("public", &self.verifying_key().fingerprint())
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// Reads a public key from PEM SubjectPublicKeyInfo (`PUBLIC KEY`), as written by `airlock
    /// key generate`, `cosign generate-key-pair` and `openssl pkey -pubout`. `origin` names
    /// the file in errors.
    pub fn from_pem(pem: &str, origin: &Path) -> Result<VerifyingKey, Error> {
        let fail = |problem| key_error(origin, problem);
        let block = first_block(pem, |_| true).map_err(fail)?;
        let inner = match block.label.as_str() {
            "PUBLIC KEY" => pkcs8::der::pem::decode_vec(block.text.as_bytes())
                .map_err(|e| KeyProblem::Malformed {
                    kind: "PEM",
                    detail: e.to_string(),
                })
                .and_then(|(_, der)| from_spki_der(&der)),
            "PRIVATE KEY"
            | "ENCRYPTED PRIVATE KEY"
            | "EC PRIVATE KEY"
            | "ENCRYPTED SIGSTORE PRIVATE KEY"
            | "ENCRYPTED COSIGN PRIVATE KEY" => Err(KeyProblem::PrivateNotPublic),
            "CERTIFICATE" => Err(KeyProblem::CertificateNotKey),
            other => Err(KeyProblem::UnsupportedPem {
                label: other.to_string(),
            }),
        };
        inner.map(|inner| VerifyingKey { inner }).map_err(fail)
    }

    /// The key as PEM SubjectPublicKeyInfo (`PUBLIC KEY`), with a final newline.
    pub fn to_pem(&self) -> String {
        self.inner
            .to_public_key_pem(LineEnding::LF)
            .expect("a P-256 public key always encodes as SubjectPublicKeyInfo")
    }

    /// Checks a signature made by [`SigningKey::sign`] (or `cosign sign-blob`, or `openssl
    /// dgst -sha256 -sign` then base64) over `data`. `signature` is the base64 text; white
    /// space around it and line breaks inside it are ignored.
    pub fn verify(&self, data: &[u8], signature: &[u8]) -> Result<(), Error> {
        let bad = |defect| Error::BadSignature { defect };
        let text: Vec<u8> = signature
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        if text.is_empty() {
            return Err(bad(SignatureDefect::Empty));
        }
        let der = BASE64.decode(&text).map_err(|e| {
            bad(SignatureDefect::NotBase64 {
                detail: e.to_string(),
            })
        })?;
        let signature = Signature::from_der(&der).map_err(|_| {
            bad(SignatureDefect::NotDer {
                len: der.len() as u64,
            })
        })?;
        self.inner.verify(data, &signature).map_err(|_| {
            bad(SignatureDefect::Mismatch {
                key: self.fingerprint(),
            })
        })
    }

    /// `sha256:<hex>` of the DER SubjectPublicKeyInfo: names the key in reports. The same
    /// value as `openssl pkey -pubin -in K.pub -outform DER | sha256sum`.
    pub fn fingerprint(&self) -> String {
        let der = self
            .inner
            .to_public_key_der()
            .expect("a P-256 public key always encodes as SubjectPublicKeyInfo");
        format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(der.as_bytes()))
        )
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("VerifyingKey")
            .field(&self.fingerprint())
            .finish()
    }
}

fn key_error(origin: &Path, problem: KeyProblem) -> Error {
    Error::Key {
        path: origin.to_path_buf(),
        problem,
    }
}

/// One `-----BEGIN LABEL-----` … `-----END LABEL-----` block of a PEM file.
struct Block<'a> {
    label: String,
    /// The block from its BEGIN line to the end of its END line.
    text: &'a str,
}

/// The first PEM block whose label `wanted` accepts. Text before, between and after blocks
/// is ignored, as OpenSSL does (`openssl ecparam -genkey` puts `EC PARAMETERS` first).
fn first_block<'a>(pem: &'a str, wanted: impl Fn(&str) -> bool) -> Result<Block<'a>, KeyProblem> {
    const BEGIN: &str = "-----BEGIN ";
    let mut rest = pem;
    let mut offset = 0;
    let mut seen_any = false;
    while let Some(start) = rest.find(BEGIN) {
        seen_any = true;
        let after = &rest[start + BEGIN.len()..];
        let Some(label_end) = after.find("-----") else {
            break;
        };
        let label = after[..label_end].to_string();
        let end_marker = format!("-----END {label}-----");
        let Some(end) = after.find(&end_marker) else {
            return Err(KeyProblem::Malformed {
                kind: "PEM",
                detail: format!("no `{end_marker}` line"),
            });
        };
        let block_end = start + BEGIN.len() + end + end_marker.len();
        if wanted(&label) {
            return Ok(Block {
                label,
                text: &pem[offset + start..offset + block_end],
            });
        }
        offset += block_end;
        rest = &rest[block_end..];
    }
    Err(if seen_any {
        KeyProblem::UnsupportedPem {
            label: "EC PARAMETERS".into(),
        }
    } else {
        KeyProblem::NotPem
    })
}

/// A name for the algorithm of a key that is not P-256, for the error message.
fn algorithm_name(algorithm: ObjectIdentifier, curve: Option<ObjectIdentifier>) -> String {
    match algorithm.to_string().as_str() {
        "1.2.840.10045.2.1" => match curve.map(|c| c.to_string()).as_deref() {
            Some("1.3.132.0.34") => "ECDSA P-384".into(),
            Some("1.3.132.0.35") => "ECDSA P-521".into(),
            Some("1.3.132.0.10") => "ECDSA secp256k1".into(),
            Some(other) => format!("EC on curve {other}"),
            None => "EC with explicit curve parameters".into(),
        },
        "1.2.840.113549.1.1.1" => "RSA".into(),
        "1.2.840.113549.1.1.10" => "RSA-PSS".into(),
        "1.3.101.112" => "Ed25519".into(),
        "1.3.101.113" => "Ed448".into(),
        "1.2.840.10040.4.1" => "DSA".into(),
        other => format!("algorithm {other}"),
    }
}

fn from_spki_der(der: &[u8]) -> Result<p256::ecdsa::VerifyingKey, KeyProblem> {
    let malformed = |e: &dyn fmt::Display| KeyProblem::Malformed {
        kind: "SubjectPublicKeyInfo",
        detail: e.to_string(),
    };
    let info = pkcs8::SubjectPublicKeyInfoRef::from_der(der).map_err(|e| malformed(&e))?;
    let curve = info.algorithm.parameters_oid().ok();
    if info.algorithm.oid != OID_EC_PUBLIC_KEY || curve != Some(OID_P256) {
        return Err(KeyProblem::NotP256 {
            algorithm: algorithm_name(info.algorithm.oid, curve),
        });
    }
    p256::ecdsa::VerifyingKey::from_public_key_der(der).map_err(|e| malformed(&e))
}

fn from_pkcs8_der(der: &[u8]) -> Result<p256::ecdsa::SigningKey, KeyProblem> {
    let info = pkcs8::PrivateKeyInfo::from_der(der).map_err(|e| KeyProblem::Malformed {
        kind: "PKCS#8",
        detail: e.to_string(),
    })?;
    let curve = info.algorithm.parameters_oid().ok();
    if info.algorithm.oid != OID_EC_PUBLIC_KEY || curve != Some(OID_P256) {
        return Err(KeyProblem::NotP256 {
            algorithm: algorithm_name(info.algorithm.oid, curve),
        });
    }
    p256::ecdsa::SigningKey::from_pkcs8_der(der).map_err(|e| KeyProblem::Malformed {
        kind: "PKCS#8",
        detail: e.to_string(),
    })
}

fn from_encrypted_pkcs8_der(
    der: &[u8],
    passphrase: &[u8],
) -> Result<p256::ecdsa::SigningKey, KeyProblem> {
    let info =
        pkcs8::EncryptedPrivateKeyInfo::from_der(der).map_err(|e| KeyProblem::Malformed {
            kind: "encrypted PKCS#8",
            detail: e.to_string(),
        })?;
    check_pbes2_cost(&info)?;
    let plain = match info.decrypt(passphrase) {
        Ok(plain) => plain,
        // pkcs5 0.7.1 reports bad CBC padding on decryption as `EncryptFailed`.
        Err(pkcs8::Error::EncryptedPrivateKey(
            pkcs8::pkcs5::Error::DecryptFailed | pkcs8::pkcs5::Error::EncryptFailed,
        )) => return Err(KeyProblem::WrongPassphrase),
        Err(pkcs8::Error::EncryptedPrivateKey(e)) => {
            return Err(KeyProblem::UnsupportedEncryption {
                detail: e.to_string(),
            })
        }
        Err(e) => {
            return Err(KeyProblem::Malformed {
                kind: "encrypted PKCS#8",
                detail: e.to_string(),
            })
        }
    };
    // CBC padding that happens to be valid under a wrong passphrase (about 1 in 256) leaves
    // garbage that is not DER: that too is a wrong passphrase.
    if pkcs8::PrivateKeyInfo::from_der(plain.as_bytes()).is_err() {
        return Err(KeyProblem::WrongPassphrase);
    }
    from_pkcs8_der(plain.as_bytes())
}

fn from_sec1_der(der: &[u8]) -> Result<p256::ecdsa::SigningKey, KeyProblem> {
    let malformed = |e: &dyn fmt::Display| KeyProblem::Malformed {
        kind: "SEC1",
        detail: e.to_string(),
    };
    let key = sec1::EcPrivateKey::from_der(der).map_err(|e| malformed(&e))?;
    // A SEC1 key usually names its curve; one without parameters is taken as P-256 only if
    // its public point checks out below.
    if let Some(curve) = key.parameters.and_then(|p| p.named_curve()) {
        if curve != OID_P256 {
            return Err(KeyProblem::NotP256 {
                algorithm: algorithm_name(OID_EC_PUBLIC_KEY, Some(curve)),
            });
        }
    }
    let secret = p256::SecretKey::from_sec1_der(der).map_err(|e| malformed(&e))?;
    Ok(p256::ecdsa::SigningKey::from(secret))
}

/// A scrypt cost above what airlock accepts (see [`check_scrypt_cost`]).
#[derive(Debug, thiserror::Error)]
#[error(
    "scrypt N = {n}, r = {r}, p = {p} needs {} MiB of memory and {} MiB of work, \
     more than the {} MiB and {} MiB airlock accepts",
    memory >> 20,
    work >> 20,
    MAX_SCRYPT_MEMORY >> 20,
    MAX_SCRYPT_WORK >> 20
)]
struct ScryptTooCostly {
    n: u64,
    r: u64,
    p: u64,
    memory: u128,
    work: u128,
}

/// r and p are bounded too, not only N: a crafted key file must not take unbounded memory
/// or time before its passphrase is even checked.
fn check_scrypt_cost(n: u64, r: u64, p: u64) -> Result<(), ScryptTooCostly> {
    let memory = 128 * u128::from(n) * u128::from(r);
    let work = memory * u128::from(p);
    if r == 0 || p == 0 || memory > MAX_SCRYPT_MEMORY || work > MAX_SCRYPT_WORK {
        return Err(ScryptTooCostly {
            n,
            r,
            p,
            memory,
            work,
        });
    }
    Ok(())
}

/// The cost a PKCS#8 key's PBES2 parameters ask for is bounded before decryption: scrypt as
/// for cosign keys, PBKDF2 to [`MAX_PBKDF2_ITERATIONS`].
fn check_pbes2_cost(info: &pkcs8::EncryptedPrivateKeyInfo<'_>) -> Result<(), KeyProblem> {
    use pkcs8::pkcs5::{pbes2::Kdf, EncryptionScheme};
    let malformed = |detail: String| KeyProblem::Malformed {
        kind: "encrypted PKCS#8",
        detail,
    };
    match &info.encryption_algorithm {
        EncryptionScheme::Pbes2(params) => match &params.kdf {
            Kdf::Scrypt(s) => check_scrypt_cost(
                s.cost_parameter,
                s.block_size.into(),
                s.parallelization.into(),
            )
            .map_err(|e| malformed(e.to_string())),
            Kdf::Pbkdf2(p) if p.iteration_count > MAX_PBKDF2_ITERATIONS => Err(malformed(format!(
                "PBKDF2 with {} iterations, more than the {MAX_PBKDF2_ITERATIONS} airlock accepts",
                p.iteration_count
            ))),
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

/// cosign's encrypted private key (sigstore `encrypted.go`): JSON with scrypt parameters, a
/// salt, a NaCl secretbox nonce and the sealed PKCS#8 DER.
fn from_cosign_json(json: &[u8], passphrase: &[u8]) -> Result<p256::ecdsa::SigningKey, KeyProblem> {
    use crypto_secretbox::aead::{Aead as _, KeyInit as _};

    #[derive(serde::Deserialize)]
    struct Sealed {
        kdf: Kdf,
        cipher: Cipher,
        ciphertext: String,
    }
    #[derive(serde::Deserialize)]
    struct Kdf {
        name: String,
        params: KdfParams,
        salt: String,
    }
    #[derive(serde::Deserialize)]
    struct KdfParams {
        #[serde(rename = "N")]
        n: u64,
        r: u32,
        p: u32,
    }
    #[derive(serde::Deserialize)]
    struct Cipher {
        name: String,
        nonce: String,
    }

    let malformed = |detail: String| KeyProblem::Malformed {
        kind: "cosign encrypted key",
        detail,
    };
    let sealed: Sealed = serde_json::from_slice(json).map_err(|e| malformed(e.to_string()))?;
    if sealed.kdf.name != "scrypt" || sealed.cipher.name != "nacl/secretbox" {
        return Err(KeyProblem::UnsupportedEncryption {
            detail: format!(
                "kdf `{}` with cipher `{}` (airlock reads `scrypt` with `nacl/secretbox`)",
                sealed.kdf.name, sealed.cipher.name
            ),
        });
    }
    let KdfParams { n, r, p } = sealed.kdf.params;
    if !n.is_power_of_two() || n < 2 || n.trailing_zeros() > u32::from(MAX_SCRYPT_LOG_N) {
        return Err(malformed(format!(
            "scrypt N = {n} is not a power of two up to 2^{MAX_SCRYPT_LOG_N}"
        )));
    }
    check_scrypt_cost(n, r.into(), p.into()).map_err(|e| malformed(e.to_string()))?;
    let log_n = n.trailing_zeros() as u8;
    let params =
        scrypt::Params::new(log_n, r, p, 32).map_err(|e| malformed(format!("scrypt: {e}")))?;
    let b64 = |what: &str, s: &str| {
        BASE64
            .decode(s)
            .map_err(|e| malformed(format!("{what} is not base64: {e}")))
    };
    let salt = b64("salt", &sealed.kdf.salt)?;
    let nonce = b64("nonce", &sealed.cipher.nonce)?;
    let ciphertext = b64("ciphertext", &sealed.ciphertext)?;
    if nonce.len() != 24 {
        return Err(malformed(format!(
            "nonce has {} bytes, expected 24",
            nonce.len()
        )));
    }
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    scrypt::scrypt(passphrase, &salt, &params, key.as_mut())
        .map_err(|e| malformed(format!("scrypt: {e}")))?;
    let cipher =
        crypto_secretbox::XSalsa20Poly1305::new(crypto_secretbox::Key::from_slice(key.as_ref()));
    let plain = cipher
        .decrypt(
            crypto_secretbox::Nonce::from_slice(&nonce),
            ciphertext.as_slice(),
        )
        .map(zeroize::Zeroizing::new)
        .map_err(|_| KeyProblem::WrongPassphrase)?;
    from_pkcs8_der(&plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn origin() -> &'static Path {
        Path::new("test.key")
    }

    #[test]
    fn sign_verify_round_trip() {
        let key = SigningKey::generate();
        let data = b"{\"formatVersion\":1}\n";
        let sig = key.sign(data);
        key.verifying_key().verify(data, sig.as_bytes()).unwrap();
        // Surrounding white space (a trailing newline from a file) is accepted.
        key.verifying_key()
            .verify(data, format!("  {sig}\n").as_bytes())
            .unwrap();
    }

    #[test]
    fn signatures_are_deterministic() {
        let key = SigningKey::generate();
        assert_eq!(key.sign(b"same bytes"), key.sign(b"same bytes"));
        assert_ne!(key.sign(b"same bytes"), key.sign(b"other bytes"));
        // Also across a PEM round trip.
        let again = SigningKey::from_pem(&key.to_pkcs8_pem(None).unwrap(), None, origin()).unwrap();
        assert_eq!(key.sign(b"same bytes"), again.sign(b"same bytes"));
    }

    #[test]
    fn wrong_key_and_tampered_data_fail() {
        let key = SigningKey::generate();
        let other = SigningKey::generate();
        let sig = key.sign(b"manifest");
        let err = other
            .verifying_key()
            .verify(b"manifest", sig.as_bytes())
            .unwrap_err();
        assert!(
            matches!(&err, Error::BadSignature { defect: SignatureDefect::Mismatch { key } } if *key == other.verifying_key().fingerprint()),
            "{err:?}"
        );
        let err = key
            .verifying_key()
            .verify(b"manifesT", sig.as_bytes())
            .unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
    }

    #[test]
    fn malformed_signatures_say_what_is_wrong() {
        let vk = SigningKey::generate().verifying_key();
        let err = vk.verify(b"x", b"not base64 !!").unwrap_err();
        assert!(err.to_string().contains("not base64"), "{err}");
        let err = vk
            .verify(b"x", BASE64.encode(b"not DER").as_bytes())
            .unwrap_err();
        assert!(err.to_string().contains("not a DER"), "{err}");
        let err = vk.verify(b"x", b" \n").unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
    }

    #[test]
    fn public_key_pem_round_trip_and_fingerprint() {
        let vk = SigningKey::generate().verifying_key();
        let pem = vk.to_pem();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
        let back = VerifyingKey::from_pem(&pem, Path::new("k.pub")).unwrap();
        assert_eq!(back, vk);
        let fp = vk.fingerprint();
        assert!(fp.starts_with("sha256:") && fp.len() == 7 + 64, "{fp}");
        // A private key where a public one belongs is named as such.
        let key = SigningKey::generate().to_pkcs8_pem(None).unwrap();
        let err = VerifyingKey::from_pem(&key, Path::new("k.key")).unwrap_err();
        assert!(err.to_string().contains("`k.key`"), "{err}");
        assert!(err.to_string().contains("private key"), "{err}");
    }

    #[test]
    fn debug_shows_no_key_material() {
        let key = SigningKey::generate();
        let secret_hex = hex::encode(key.inner.to_bytes());
        let debug = format!("{key:?}");
        assert!(!debug.contains(&secret_hex), "{debug}");
        assert!(
            debug.contains(&key.verifying_key().fingerprint()),
            "{debug}"
        );
    }

    #[test]
    fn encrypted_pkcs8_round_trip() {
        let key = SigningKey::generate();
        let pem = key.to_pkcs8_pem(Some(b"s3cret")).unwrap();
        assert!(
            pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
            "{pem}"
        );
        let back = SigningKey::from_pem(&pem, Some(b"s3cret"), origin()).unwrap();
        assert_eq!(back.verifying_key(), key.verifying_key());

        let err = SigningKey::from_pem(&pem, Some(b"wrong"), origin()).unwrap_err();
        assert!(
            matches!(
                &err,
                Error::Key {
                    problem: KeyProblem::WrongPassphrase,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("`test.key`"), "{err}");
        assert!(err.to_string().contains("wrong passphrase"), "{err}");

        let err = SigningKey::from_pem(&pem, None, origin()).unwrap_err();
        assert!(
            matches!(
                &err,
                Error::Key {
                    problem: KeyProblem::NeedsPassphrase,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    fn openssl(args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
        use std::io::Write;
        let mut child = Command::new("openssl")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("openssl is installed (apt-get install openssl)");
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.unwrap_or_default()).unwrap();
        drop(input);
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Signs with a key `openssl` made, then `openssl` checks the signature with the public key
    /// it derives itself.
    fn check_openssl_key(pem: &str, passphrase: Option<&[u8]>) {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_pem(pem, passphrase, origin()).unwrap();
        let data = dir.path().join("data");
        std::fs::write(&data, b"bundle manifest").unwrap();
        let sig = dir.path().join("sig.der");
        std::fs::write(&sig, BASE64.decode(key.sign(b"bundle manifest")).unwrap()).unwrap();
        let key_file = dir.path().join("key.pem");
        std::fs::write(&key_file, pem).unwrap();
        let mut pass_args = Vec::new();
        if let Some(p) = passphrase {
            pass_args = vec![
                "-passin".to_string(),
                format!("pass:{}", std::str::from_utf8(p).unwrap()),
            ];
        }
        let mut args = vec!["pkey", "-in", key_file.to_str().unwrap(), "-pubout"];
        args.extend(pass_args.iter().map(String::as_str));
        let public = String::from_utf8(openssl(&args, None)).unwrap();
        assert_eq!(
            VerifyingKey::from_pem(&public, Path::new("pub.pem")).unwrap(),
            key.verifying_key()
        );
        let pub_file = dir.path().join("pub.pem");
        std::fs::write(&pub_file, &public).unwrap();
        let out = openssl(
            &[
                "dgst",
                "-sha256",
                "-verify",
                pub_file.to_str().unwrap(),
                "-signature",
                sig.to_str().unwrap(),
                data.to_str().unwrap(),
            ],
            None,
        );
        assert_eq!(String::from_utf8_lossy(&out).trim(), "Verified OK");
    }

    #[test]
    fn loads_openssl_sec1_key() {
        // `openssl ecparam -genkey` without -noout writes `EC PARAMETERS` first: skipped.
        let pem = String::from_utf8(openssl(
            &["ecparam", "-name", "prime256v1", "-genkey"],
            None,
        ))
        .unwrap();
        assert!(pem.contains("BEGIN EC PARAMETERS") && pem.contains("BEGIN EC PRIVATE KEY"));
        check_openssl_key(&pem, None);
        let pem = String::from_utf8(openssl(
            &["ecparam", "-name", "prime256v1", "-genkey", "-noout"],
            None,
        ))
        .unwrap();
        check_openssl_key(&pem, None);
    }

    #[test]
    fn loads_openssl_pkcs8_keys() {
        let pem = String::from_utf8(openssl(
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ],
            None,
        ))
        .unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
        check_openssl_key(&pem, None);

        // Encrypted by openssl (PBES2, PBKDF2 with HMAC-SHA256, AES-256-CBC).
        let encrypted = String::from_utf8(openssl(
            &[
                "pkcs8",
                "-topk8",
                "-v2",
                "aes-256-cbc",
                "-passout",
                "pass:open sesame",
            ],
            Some(pem.as_bytes()),
        ))
        .unwrap();
        assert!(encrypted.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        check_openssl_key(&encrypted, Some(b"open sesame"));
    }

    #[test]
    fn openssl_reads_airlock_keys() {
        let key = SigningKey::generate();
        check_openssl_key(&key.to_pkcs8_pem(None).unwrap(), None);
        check_openssl_key(
            &key.to_pkcs8_pem(Some(b"pass phrase")).unwrap(),
            Some(b"pass phrase"),
        );
    }

    #[test]
    fn refuses_other_algorithms_and_curves() {
        let rsa = String::from_utf8(openssl(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:1024",
            ],
            None,
        ))
        .unwrap();
        let err = SigningKey::from_pem(&rsa, None, Path::new("rsa.key")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("`rsa.key`") && msg.contains("RSA"), "{msg}");
        assert!(msg.contains("P-256") && msg.contains("hint:"), "{msg}");

        let p384 = String::from_utf8(openssl(
            &["ecparam", "-name", "secp384r1", "-genkey", "-noout"],
            None,
        ))
        .unwrap();
        let err = SigningKey::from_pem(&p384, None, origin()).unwrap_err();
        assert!(err.to_string().contains("ECDSA P-384"), "{err}");

        let err = SigningKey::from_pem("hello", None, origin()).unwrap_err();
        assert!(err.to_string().contains("not a PEM file"), "{err}");

        let public = SigningKey::generate().verifying_key().to_pem();
        let err = SigningKey::from_pem(&public, None, Path::new("k.pub")).unwrap_err();
        assert!(err.to_string().contains("public key"), "{err}");
    }

    /// Seals a PKCS#8 key the way cosign's `encrypted.go` does.
    fn cosign_pem(key: &SigningKey, passphrase: &[u8], log_n: u8) -> String {
        use crypto_secretbox::aead::{Aead as _, KeyInit as _};
        let der = key.inner.to_pkcs8_der().unwrap();
        let salt = [7u8; 32];
        let nonce = [9u8; 24];
        let mut k = [0u8; 32];
        let params = scrypt::Params::new(log_n, 8, 1, 32).unwrap();
        scrypt::scrypt(passphrase, &salt, &params, &mut k).unwrap();
        let sealed = crypto_secretbox::XSalsa20Poly1305::new(crypto_secretbox::Key::from_slice(&k))
            .encrypt(crypto_secretbox::Nonce::from_slice(&nonce), der.as_bytes())
            .unwrap();
        let json = serde_json::json!({
            "kdf": {"name": "scrypt", "params": {"N": 1u64 << log_n, "r": 8, "p": 1},
                    "salt": BASE64.encode(salt)},
            "cipher": {"name": "nacl/secretbox", "nonce": BASE64.encode(nonce)},
            "ciphertext": BASE64.encode(sealed),
        });
        pkcs8::der::pem::encode_string(
            "ENCRYPTED SIGSTORE PRIVATE KEY",
            LineEnding::LF,
            json.to_string().as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn loads_cosign_keys() {
        let key = SigningKey::generate();
        let pem = cosign_pem(&key, b"cosign pass", 10);
        let back = SigningKey::from_pem(&pem, Some(b"cosign pass"), origin()).unwrap();
        assert_eq!(back.verifying_key(), key.verifying_key());
        let err = SigningKey::from_pem(&pem, Some(b"nope"), origin()).unwrap_err();
        assert!(err.to_string().contains("wrong passphrase"), "{err}");
        let err = SigningKey::from_pem(&pem, None, origin()).unwrap_err();
        assert!(
            matches!(
                &err,
                Error::Key {
                    problem: KeyProblem::NeedsPassphrase,
                    ..
                }
            ),
            "{err:?}"
        );
        // cosign allows an empty password; no passphrase tries that one.
        let empty = cosign_pem(&key, b"", 10);
        let back = SigningKey::from_pem(&empty, None, origin()).unwrap();
        assert_eq!(back.verifying_key(), key.verifying_key());
        // The older label.
        let old = pem.replace("SIGSTORE", "COSIGN");
        SigningKey::from_pem(&old, Some(b"cosign pass"), origin()).unwrap();
    }
}
