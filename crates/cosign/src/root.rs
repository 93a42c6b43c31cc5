//! A sigstore `trusted_root.json`: what it holds, parsed once.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::Deserialize;
use sha2::Digest as _;
use x509_cert::der::Decode as _;
use x509_cert::Certificate;

use crate::CosignError;

/// A sigstore `trusted_root.json`: Fulcio CAs and Rekor keys, with their validity.
#[derive(Debug)]
pub struct TrustedRoot {
    /// sha256 (hex) of the file's bytes, recorded in the inventory.
    pub sha256: String,
    pub(crate) authorities: Vec<Authority>,
    pub(crate) logs: Vec<LogKey>,
}

/// A Fulcio CA: its chain (issuing certificate first) and when the root trusts it.
#[derive(Debug)]
pub(crate) struct Authority {
    pub(crate) chain: Vec<Certificate>,
    pub(crate) valid_for: Window,
}

/// A transparency log's key.
#[derive(Debug)]
pub(crate) struct LogKey {
    /// The log id: the SHA-256 of the key's DER `SubjectPublicKeyInfo`.
    pub(crate) key_id: Vec<u8>,
    /// The DER `SubjectPublicKeyInfo`.
    pub(crate) spki: Vec<u8>,
    pub(crate) valid_for: Window,
}

/// A validity window in Unix seconds; no end: still valid.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub(crate) start: u64,
    pub(crate) end: Option<u64>,
}

impl Window {
    pub(crate) fn contains(&self, t: u64) -> bool {
        self.start <= t && self.end.is_none_or(|end| t <= end)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RootJson {
    #[serde(default)]
    tlogs: Vec<TlogJson>,
    #[serde(default)]
    certificate_authorities: Vec<CaJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TlogJson {
    public_key: PublicKeyJson,
    log_id: LogIdJson,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublicKeyJson {
    raw_bytes: String,
    #[serde(default)]
    valid_for: Option<ValidForJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogIdJson {
    key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CaJson {
    cert_chain: CertChainJson,
    #[serde(default)]
    valid_for: Option<ValidForJson>,
}

#[derive(Deserialize)]
struct CertChainJson {
    certificates: Vec<RawBytesJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBytesJson {
    raw_bytes: String,
}

#[derive(Deserialize)]
struct ValidForJson {
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    end: Option<String>,
}

impl TrustedRoot {
    /// Reads and parses a `trusted_root.json`.
    pub fn load(path: &Path) -> Result<TrustedRoot, CosignError> {
        let bytes = std::fs::read(path).map_err(|source| CosignError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        TrustedRoot::from_json(&bytes, path)
    }

    /// Parses the bytes of a `trusted_root.json`; `origin` names the file in errors.
    pub fn from_json(bytes: &[u8], origin: &Path) -> Result<TrustedRoot, CosignError> {
        let bad = |detail: String| CosignError::TrustedRoot {
            path: origin.to_path_buf(),
            detail,
        };
        let json: RootJson =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("not its JSON: {e}")))?;
        let mut authorities = Vec::new();
        for (n, ca) in json.certificate_authorities.iter().enumerate() {
            let mut chain = Vec::new();
            for (m, cert) in ca.cert_chain.certificates.iter().enumerate() {
                let der = BASE64.decode(cert.raw_bytes.trim()).map_err(|e| {
                    bad(format!(
                        "certificateAuthorities[{n}].certChain.certificates[{m}] is not base64: {e}"
                    ))
                })?;
                let cert = Certificate::from_der(&der).map_err(|e| {
                    bad(format!(
                        "certificateAuthorities[{n}].certChain.certificates[{m}] is not a DER certificate: {e}"
                    ))
                })?;
                chain.push(cert);
            }
            if chain.is_empty() {
                return Err(bad(format!(
                    "certificateAuthorities[{n}] has no certificate"
                )));
            }
            let valid_for = window(ca.valid_for.as_ref())
                .map_err(|e| bad(format!("certificateAuthorities[{n}].validFor: {e}")))?;
            authorities.push(Authority { chain, valid_for });
        }
        let mut logs = Vec::new();
        for (n, log) in json.tlogs.iter().enumerate() {
            let spki = BASE64
                .decode(log.public_key.raw_bytes.trim())
                .map_err(|e| bad(format!("tlogs[{n}].publicKey.rawBytes is not base64: {e}")))?;
            let key_id = BASE64
                .decode(log.log_id.key_id.trim())
                .map_err(|e| bad(format!("tlogs[{n}].logId.keyId is not base64: {e}")))?;
            let valid_for = window(log.public_key.valid_for.as_ref())
                .map_err(|e| bad(format!("tlogs[{n}].publicKey.validFor: {e}")))?;
            logs.push(LogKey {
                key_id,
                spki,
                valid_for,
            });
        }
        if authorities.is_empty() {
            return Err(bad("it names no certificate authority (Fulcio)".into()));
        }
        if logs.is_empty() {
            return Err(bad("it names no transparency log (Rekor)".into()));
        }
        Ok(TrustedRoot {
            sha256: hex::encode(sha2::Sha256::digest(bytes)),
            authorities,
            logs,
        })
    }
}

/// A time that is not RFC 3339 UTC: the text.
#[derive(Debug)]
pub(crate) struct BadTime(String);

impl std::fmt::Display for BadTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` is not an RFC 3339 UTC time", self.0)
    }
}

fn window(valid_for: Option<&ValidForJson>) -> Result<Window, BadTime> {
    let Some(valid_for) = valid_for else {
        return Ok(Window {
            start: 0,
            end: None,
        });
    };
    let start = match &valid_for.start {
        Some(s) => rfc3339(s)?,
        None => 0,
    };
    let end = valid_for.end.as_deref().map(rfc3339).transpose()?;
    Ok(Window { start, end })
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (or `+00:00`) into Unix seconds.
pub(crate) fn rfc3339(text: &str) -> Result<u64, BadTime> {
    let bad = || BadTime(text.to_string());
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return Err(bad());
    }
    let num = |range: std::ops::Range<usize>| -> Result<u16, BadTime> {
        text.get(range)
            .filter(|s| s.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)
    };
    let rest = &text[19..];
    let rest = match rest.strip_prefix('.') {
        Some(frac) => frac.trim_start_matches(|c: char| c.is_ascii_digit()),
        None => rest,
    };
    if !matches!(rest, "Z" | "z" | "+00:00") {
        return Err(bad());
    }
    let time = x509_cert::der::DateTime::new(
        num(0..4)?,
        num(5..7)? as u8,
        num(8..10)? as u8,
        num(11..13)? as u8,
        num(14..16)? as u8,
        num(17..19)? as u8,
    )
    .map_err(|_| bad())?;
    Ok(time.unix_duration().as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_are_read() {
        assert_eq!(rfc3339("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(rfc3339("2021-03-07T03:20:29.000Z").unwrap(), 1_615_087_229);
        assert!(rfc3339("2021-03-07 03:20:29").is_err());
    }

    #[test]
    fn a_root_without_authorities_is_refused_naming_the_file() {
        let err = TrustedRoot::from_json(br#"{"tlogs": []}"#, Path::new("root.json")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`root.json` is not a usable sigstore trusted root: it names no certificate authority (Fulcio); give the `trusted_root.json` of the sigstore instance that signed the images"
        );
    }
}
