//! Signatures and PEM keys (`VerifyingKey::verify`, `from_pem`): a changed signature, key
//! or manifest never verifies, and no input panics or makes the key derivation run away.

use std::path::Path;
use std::time::{Duration, Instant};

use airlock_layout::{SigningKey, VerifyingKey};
use base64::Engine as _;
use proptest::prelude::*;

use super::{cases, signed};

fn origin() -> &'static Path {
    Path::new("k.pem")
}

fn mutate(text: &str, at: prop::sample::Index, xor: u8) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    let at = at.index(bytes.len());
    bytes[at] ^= xor;
    bytes
}

fn no_space(b: &[u8]) -> Vec<u8> {
    b.iter()
        .copied()
        .filter(|c| !c.is_ascii_whitespace())
        .collect()
}

/// A cosign-style encrypted key with the given scrypt parameters (and junk ciphertext).
fn cosign_pem(n: u64, r: u64, p: u64) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let json = serde_json::json!({
        "kdf": {"name": "scrypt", "params": {"N": n, "r": r, "p": p}, "salt": b64(&[7; 32])},
        "cipher": {"name": "nacl/secretbox", "nonce": b64(&[9; 24])},
        "ciphertext": b64(&[1; 150]),
    });
    pkcs8::der::pem::encode_string(
        "ENCRYPTED SIGSTORE PRIVATE KEY",
        pkcs8::LineEnding::LF,
        json.to_string().as_bytes(),
    )
    .unwrap()
}

// Regression: the scrypt parameters of a cosign key were taken as written, so a crafted key
// file (`"r": 1048576`) made airlock try to allocate 128 GiB and abort.
#[test]
fn cosign_key_with_huge_scrypt_parameters_is_refused() {
    for (n, r, p) in [(1 << 20, 1 << 20, 1), (1 << 10, 8, 1 << 11)] {
        let started = Instant::now();
        let err = SigningKey::from_pem(&cosign_pem(n, r, p), Some(b"pw"), origin()).unwrap_err();
        assert!(err.to_string().contains("scrypt"), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "N={n} r={r} p={p}"
        );
    }
}

/// An encrypted PKCS#8 key with the given scrypt parameters (and junk encrypted data).
fn pkcs8_scrypt_pem(log_n: u8, r: u32, p: u32) -> String {
    use pkcs8::der::Encode as _;
    let params = scrypt::Params::new(log_n, r, p, 32).unwrap();
    let pbes2 =
        pkcs8::pkcs5::pbes2::Parameters::scrypt_aes256cbc(params, &[7; 16], &[9; 16]).unwrap();
    let info = pkcs8::EncryptedPrivateKeyInfo {
        encryption_algorithm: pbes2.into(),
        encrypted_data: &[1; 144],
    };
    pkcs8::der::pem::encode_string(
        "ENCRYPTED PRIVATE KEY",
        pkcs8::LineEnding::LF,
        &info.to_der().unwrap(),
    )
    .unwrap()
}

// Regression: the scrypt parameters of an encrypted PKCS#8 key were taken as written (r and
// p up to 65535), so a crafted key file made airlock derive with up to 8 TiB of memory.
#[test]
fn pkcs8_key_with_huge_scrypt_parameters_is_refused() {
    for (log_n, r, p) in [(20, 65535, 1), (10, 8, 4096)] {
        let started = Instant::now();
        let err = SigningKey::from_pem(&pkcs8_scrypt_pem(log_n, r, p), Some(b"pw"), origin())
            .unwrap_err();
        assert!(err.to_string().contains("scrypt"), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "log_n={log_n} r={r} p={p}"
        );
    }
    // What `airlock key generate` writes still loads.
    let key = SigningKey::generate();
    let pem = key.to_pkcs8_pem(Some(b"pw")).unwrap();
    let back = SigningKey::from_pem(&pem, Some(b"pw"), origin()).unwrap();
    assert_eq!(back.verifying_key(), key.verifying_key());
}

proptest! {
    #![proptest_config(cases(256))]

    /// The manifest's signature with any byte changed: refused, unless only white space
    /// changed (which `verify` ignores by design).
    #[test]
    fn prop_mutated_signature_never_verifies(at in any::<prop::sample::Index>(), xor in 1..=255u8) {
        let s = signed();
        let data = b"the manifest bytes";
        let sig = s.key.sign(data);
        let bad = mutate(&sig, at, xor);
        if s.public.verify(data, &bad).is_ok() {
            prop_assert_eq!(no_space(&bad), no_space(sig.as_bytes()));
        }
    }

    /// A signature over other bytes, or any bytes as a signature: refused, never a panic.
    #[test]
    fn prop_signature_over_other_data_never_verifies(
        data in prop::collection::vec(any::<u8>(), 0..256),
        other in prop::collection::vec(any::<u8>(), 0..256),
        junk in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let s = signed();
        let sig = s.key.sign(&data);
        prop_assert!(s.public.verify(&data, sig.as_bytes()).is_ok());
        if other != data {
            prop_assert!(s.public.verify(&other, sig.as_bytes()).is_err());
        }
        prop_assert!(s.public.verify(&data, &junk).is_err());
        let b64 = base64::engine::general_purpose::STANDARD.encode(&junk);
        prop_assert!(s.public.verify(&data, b64.as_bytes()).is_err());
    }

    /// The public key's PEM with any byte changed: refused, or a key that is either the
    /// same key or does not verify the signer's signatures.
    #[test]
    fn prop_mutated_public_key_never_verifies(at in any::<prop::sample::Index>(), xor in 1..=255u8) {
        let s = signed();
        let data = b"the manifest bytes";
        let sig = s.key.sign(data);
        let pem = s.public.to_pem();
        let bad = String::from_utf8_lossy(&mutate(&pem, at, xor)).into_owned();
        if let Ok(k) = VerifyingKey::from_pem(&bad, origin()) {
            if k != s.public {
                prop_assert!(k.verify(data, sig.as_bytes()).is_err());
            }
        }
    }

    /// The private key's PEM with any byte changed: refused, or a key (the same or another)
    /// without a panic.
    #[test]
    fn prop_mutated_private_key_never_panics(at in any::<prop::sample::Index>(), xor in 1..=255u8) {
        let s = signed();
        let pem = s.key.to_pkcs8_pem(None).unwrap();
        let bad = String::from_utf8_lossy(&mutate(&pem, at, xor)).into_owned();
        let _ = SigningKey::from_pem(&bad, None, origin());
        let _ = VerifyingKey::from_pem(&bad, origin());
    }

    /// Any text, with or without PEM armour.
    #[test]
    fn prop_arbitrary_text_is_not_a_key(
        text in any::<String>(),
        body in prop::collection::vec(any::<u8>(), 0..300),
        label in prop_oneof![
            Just("PUBLIC KEY"), Just("PRIVATE KEY"), Just("EC PRIVATE KEY"),
            Just("ENCRYPTED PRIVATE KEY"), Just("ENCRYPTED SIGSTORE PRIVATE KEY"),
            Just("EC PARAMETERS"), Just("CERTIFICATE"),
        ],
    ) {
        prop_assert!(SigningKey::from_pem(&text, None, origin()).is_err());
        prop_assert!(VerifyingKey::from_pem(&text, origin()).is_err());
        let armoured = pkcs8::der::pem::encode_string(label, pkcs8::LineEnding::LF, &body).unwrap();
        for pem in [armoured.clone(), format!("{text}{armoured}"), armoured.replace("-----END", &text)] {
            let _ = SigningKey::from_pem(&pem, Some(b"pw"), origin());
            let _ = SigningKey::from_pem(&pem, None, origin());
            let _ = VerifyingKey::from_pem(&pem, origin());
        }
    }
}

proptest! {
    #![proptest_config(cases(64))]

    /// A cosign key with any scrypt parameters: refused quickly, within bounded memory.
    #[test]
    fn prop_cosign_kdf_parameters_are_bounded(
        log_n in 0..64u32,
        r in prop_oneof![1..64u64, any::<u32>().prop_map(u64::from), any::<u64>()],
        p in prop_oneof![1..4u64, any::<u32>().prop_map(u64::from), any::<u64>()],
    ) {
        // Parameters within the bounds but slow to derive are not what this is about.
        let work = (128u128 << log_n.min(63)).saturating_mul(u128::from(r)).saturating_mul(u128::from(p));
        prop_assume!(log_n > 20 || work <= 1 << 26 || work > 1 << 30);
        let started = Instant::now();
        let result = SigningKey::from_pem(&cosign_pem(1u64 << log_n, r, p), Some(b"pw"), origin());
        prop_assert!(result.is_err());
        prop_assert!(started.elapsed() < Duration::from_secs(30));
    }
}
