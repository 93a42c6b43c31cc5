//! The OCI error envelope: `{"errors": [{"code": …, "message": …, "detail": …}]}`.
//!
//! Defined in the OCI distribution spec, section "Error Codes"; distribution adds
//! `UNAVAILABLE` and `TOOMANYREQUESTS`.

use std::fmt;

use serde::Deserialize;

/// An error code of the OCI distribution spec.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `BLOB_UNKNOWN`
    BlobUnknown,
    /// `BLOB_UPLOAD_INVALID`
    BlobUploadInvalid,
    /// `BLOB_UPLOAD_UNKNOWN`
    BlobUploadUnknown,
    /// `DIGEST_INVALID`
    DigestInvalid,
    /// `MANIFEST_BLOB_UNKNOWN`
    ManifestBlobUnknown,
    /// `MANIFEST_INVALID`
    ManifestInvalid,
    /// `MANIFEST_UNKNOWN`
    ManifestUnknown,
    /// `NAME_INVALID`
    NameInvalid,
    /// `NAME_UNKNOWN`
    NameUnknown,
    /// `SIZE_INVALID`
    SizeInvalid,
    /// `UNAUTHORIZED`
    Unauthorized,
    /// `DENIED`
    Denied,
    /// `UNSUPPORTED`
    Unsupported,
    /// `TOOMANYREQUESTS`
    TooManyRequests,
    /// `UNAVAILABLE`
    Unavailable,
    /// A code this client does not know, as sent.
    Unknown(String),
}

impl ErrorCode {
    /// Reads a code as it appears in the envelope.
    pub fn parse(code: &str) -> ErrorCode {
        match code {
            "BLOB_UNKNOWN" => ErrorCode::BlobUnknown,
            "BLOB_UPLOAD_INVALID" => ErrorCode::BlobUploadInvalid,
            "BLOB_UPLOAD_UNKNOWN" => ErrorCode::BlobUploadUnknown,
            "DIGEST_INVALID" => ErrorCode::DigestInvalid,
            "MANIFEST_BLOB_UNKNOWN" => ErrorCode::ManifestBlobUnknown,
            "MANIFEST_INVALID" => ErrorCode::ManifestInvalid,
            "MANIFEST_UNKNOWN" => ErrorCode::ManifestUnknown,
            "NAME_INVALID" => ErrorCode::NameInvalid,
            "NAME_UNKNOWN" => ErrorCode::NameUnknown,
            "SIZE_INVALID" => ErrorCode::SizeInvalid,
            "UNAUTHORIZED" => ErrorCode::Unauthorized,
            "DENIED" => ErrorCode::Denied,
            "UNSUPPORTED" => ErrorCode::Unsupported,
            "TOOMANYREQUESTS" => ErrorCode::TooManyRequests,
            "UNAVAILABLE" => ErrorCode::Unavailable,
            other => ErrorCode::Unknown(other.to_owned()),
        }
    }

    /// The code as it appears in the envelope.
    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::BlobUnknown => "BLOB_UNKNOWN",
            ErrorCode::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            ErrorCode::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            ErrorCode::DigestInvalid => "DIGEST_INVALID",
            ErrorCode::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            ErrorCode::ManifestInvalid => "MANIFEST_INVALID",
            ErrorCode::ManifestUnknown => "MANIFEST_UNKNOWN",
            ErrorCode::NameInvalid => "NAME_INVALID",
            ErrorCode::NameUnknown => "NAME_UNKNOWN",
            ErrorCode::SizeInvalid => "SIZE_INVALID",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Denied => "DENIED",
            ErrorCode::Unsupported => "UNSUPPORTED",
            ErrorCode::TooManyRequests => "TOOMANYREQUESTS",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::Unknown(code) => code,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(ErrorCode::parse(&String::deserialize(d)?))
    }
}

/// One entry of the envelope.
#[derive(Debug, Clone, Deserialize)]
pub struct RegistryError {
    /// The code.
    pub code: ErrorCode,
    /// A message for people.
    #[serde(default)]
    pub message: String,
    /// Unstructured detail, kept as JSON.
    #[serde(default)]
    pub detail: Option<serde_json::Value>,
}

/// The error envelope of a failed request.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorEnvelope {
    /// The errors, in the order the registry listed them.
    #[serde(default)]
    pub errors: Vec<RegistryError>,
}

impl ErrorEnvelope {
    /// Parses a response body; `None` if it is not an envelope.
    pub fn parse(body: &[u8]) -> Option<ErrorEnvelope> {
        serde_json::from_slice::<ErrorEnvelope>(body)
            .ok()
            .filter(|e| !e.errors.is_empty())
    }

    /// The first code, if any.
    pub fn first_code(&self) -> Option<&ErrorCode> {
        self.errors.first().map(|e| &e.code)
    }

    /// Whether any entry has `code`.
    pub fn has(&self, code: &ErrorCode) -> bool {
        self.errors.iter().any(|e| &e.code == code)
    }

    /// The messages joined with `; ` (codes stand in for empty messages).
    pub fn message(&self) -> String {
        self.errors
            .iter()
            .map(|e| {
                if e.message.is_empty() {
                    e.code.as_str().to_owned()
                } else {
                    e.message.clone()
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_envelope() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}},{"code":"SOMETHING_NEW","message":""}]}"#;
        let env = ErrorEnvelope::parse(body).unwrap();
        assert_eq!(env.first_code(), Some(&ErrorCode::ManifestUnknown));
        assert!(env.has(&ErrorCode::Unknown("SOMETHING_NEW".into())));
        assert_eq!(env.message(), "manifest unknown; SOMETHING_NEW");
        assert!(env.errors[0].detail.is_some());
        assert!(ErrorEnvelope::parse(b"<html>nope</html>").is_none());
        assert!(ErrorEnvelope::parse(b"{}").is_none());
    }
}
