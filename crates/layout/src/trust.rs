//! Who vouches for a bundle: the signer's public key, or the operator's explicit choice to
//! trust nobody (`--insecure-skip-signature`). Every offline command applies the same policy
//! through [`Trust`]; what differs between them is only the wording of what was not done,
//! chosen by [`Purpose`].
//!
//! ```
//! use airlock_layout::{Purpose, Trust};
//!
//! // No key and no explicit choice is refused, naming the fix.
//! let e = Trust::from_flags(None, false, Purpose::Load).unwrap_err();
//! assert!(e.to_string().contains("--insecure-skip-signature"));
//!
//! let trust = Trust::from_flags(None, true, Purpose::Load).unwrap();
//! assert!(trust.key().is_none());
//! assert!(trust.warning(Purpose::Load).unwrap().contains("authenticity NOT checked"));
//! ```

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::{BundleHead, Error, VerifyingKey};

/// How a bundle's origin is established.
#[derive(Debug, Clone)]
pub enum Trust {
    /// The signature over `airlock/manifest.json` must verify with this key.
    Key(VerifyingKey),
    /// The operator said `--insecure-skip-signature`: every blob is still checked against
    /// the manifest, but nobody vouches for the manifest.
    InsecureSkipSignature,
}

/// What a bundle is opened for; it decides the wording of trust errors and warnings (what
/// was not done, which flag to pass).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `airlock load`, into a registry or containerd.
    Load,
    /// `airlock serve`.
    Serve,
    /// `airlock verify`.
    Verify,
}

impl Purpose {
    /// "the bundle's signature" or, for serve (which takes several), "the bundles' signatures".
    fn signatures(self) -> &'static str {
        match self {
            Purpose::Serve => "the bundles' signatures",
            Purpose::Load | Purpose::Verify => "the bundle's signature",
        }
    }

    /// What was not done when no key was given.
    fn nothing_without_key(self) -> &'static str {
        match self {
            Purpose::Load => "; nothing was loaded",
            Purpose::Serve => "; nothing is served",
            Purpose::Verify => "",
        }
    }

    /// What `--insecure-skip-signature` would do instead.
    fn insecurely(self) -> &'static str {
        match self {
            Purpose::Load => "to load a bundle nobody vouched for",
            Purpose::Serve => "to serve a bundle nobody vouched for",
            Purpose::Verify => "to check the digests without authenticity",
        }
    }

    /// What was not done when the signature is missing or bad.
    fn nothing(self) -> &'static str {
        match self {
            Purpose::Load => "nothing was pushed",
            Purpose::Serve => "nothing is served",
            Purpose::Verify => "nothing was checked",
        }
    }

    /// Said after "does not verify with key `…`" (serve says why that matters).
    fn bad_signature_cause(self) -> &'static str {
        match self {
            Purpose::Serve => ": its manifest was altered or another key signed it;",
            Purpose::Load | Purpose::Verify => ";",
        }
    }
}

/// The signature part of a report: whether it was checked, and with which key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureCheck {
    /// The signature was checked with a key and is valid.
    pub checked: bool,
    /// Fingerprint of that key.
    pub key: Option<String>,
}

/// Why a bundle is not trusted, or no trust could be set up. Nothing was done with it.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// No key was given and the operator did not say `--insecure-skip-signature`.
    #[error(
        "no key to check {} with{}\n  hint: pass --key SIGNER.pub (the public key of whoever \
         made the bundle), or --insecure-skip-signature {}",
        purpose.signatures(),
        purpose.nothing_without_key(),
        purpose.insecurely()
    )]
    NoKey {
        /// What the bundle was to be opened for.
        purpose: Purpose,
    },
    /// The key file could not be read.
    #[error("cannot read the public key `{}`", path.display())]
    ReadKey {
        /// The key file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The key file is not a public key.
    #[error(transparent)]
    Key(Box<Error>),
    /// A key was given but the bundle carries no signature.
    #[error(
        "the bundle `{}` is not signed (no `airlock/manifest.json.sig`); {}\n  hint: ask for \
         a bundle made with `airlock bundle --sign-key`, or pass --insecure-skip-signature \
         instead of --key",
        path.display(),
        purpose.nothing()
    )]
    Unsigned {
        /// The bundle file.
        path: PathBuf,
        /// What the bundle was opened for.
        purpose: Purpose,
    },
    /// The signature does not verify with the key given.
    #[error(
        "the signature of the bundle `{}` does not verify with key `{key}`{} {}\n  hint: check \
         that --key is the public key of whoever made the bundle",
        path.display(),
        purpose.bad_signature_cause(),
        purpose.nothing()
    )]
    Signature {
        /// The bundle file.
        path: PathBuf,
        /// Fingerprint of the key tried.
        key: String,
        /// What the bundle was opened for.
        purpose: Purpose,
        /// The cause.
        #[source]
        source: Box<Error>,
    },
}

impl Trust {
    /// The trust the flags ask for: the public key (PEM) read from `key`, or the explicit
    /// insecure choice; neither is refused. A key wins over `insecure_skip_signature` (the
    /// command line refuses both at once).
    pub fn from_flags(
        key: Option<&Path>,
        insecure_skip_signature: bool,
        purpose: Purpose,
    ) -> Result<Trust, TrustError> {
        match key {
            Some(path) => {
                let pem = std::fs::read_to_string(path).map_err(|source| TrustError::ReadKey {
                    path: path.to_owned(),
                    source,
                })?;
                let key =
                    VerifyingKey::from_pem(&pem, path).map_err(|e| TrustError::Key(Box::new(e)))?;
                Ok(Trust::Key(key))
            }
            None if insecure_skip_signature => Ok(Trust::InsecureSkipSignature),
            None => Err(TrustError::NoKey { purpose }),
        }
    }

    /// The key, unless the check is skipped on purpose.
    pub fn key(&self) -> Option<&VerifyingKey> {
        match self {
            Trust::Key(key) => Some(key),
            Trust::InsecureSkipSignature => None,
        }
    }

    /// Applies the policy to the head of the bundle at `path`: with a key, its signature must
    /// be present and verify over the manifest's exact bytes.
    pub fn check(
        &self,
        head: &BundleHead,
        path: &Path,
        purpose: Purpose,
    ) -> Result<SignatureCheck, TrustError> {
        self.check_signature(
            &head.manifest_json,
            head.signature.as_deref(),
            path,
            purpose,
        )
    }

    /// [`Trust::check`] on the exact bytes of `airlock/manifest.json` and of its signature.
    pub fn check_signature(
        &self,
        manifest_json: &[u8],
        signature: Option<&[u8]>,
        path: &Path,
        purpose: Purpose,
    ) -> Result<SignatureCheck, TrustError> {
        let key = match self {
            Trust::InsecureSkipSignature => return Ok(SignatureCheck::default()),
            Trust::Key(key) => key,
        };
        let signature = signature.ok_or_else(|| TrustError::Unsigned {
            path: path.to_owned(),
            purpose,
        })?;
        key.verify(manifest_json, signature)
            .map_err(|source| TrustError::Signature {
                path: path.to_owned(),
                key: key.fingerprint(),
                purpose,
                source: Box::new(source),
            })?;
        Ok(self.signature())
    }

    /// What a report says of the signature once [`Trust::check`] passed.
    pub fn signature(&self) -> SignatureCheck {
        SignatureCheck {
            checked: self.key().is_some(),
            key: self.key().map(|k| k.fingerprint()),
        }
    }

    /// What the operator must be told when nobody vouches for the bundle, if so.
    pub fn warning(&self, purpose: Purpose) -> Option<&'static str> {
        if self.key().is_some() {
            return None;
        }
        Some(match purpose {
            Purpose::Load => {
                "authenticity NOT checked (--insecure-skip-signature): every blob is checked \
                 against a manifest that nobody vouched for; anyone could have made or altered \
                 this bundle"
            }
            Purpose::Serve => {
                "authenticity NOT checked (--insecure-skip-signature): blobs are checked \
                 against manifests that nobody vouched for"
            }
            Purpose::Verify => {
                "authenticity NOT checked (--insecure-skip-signature): the digests were \
                 checked against a manifest that nobody vouched for; anyone could have made \
                 or altered this bundle"
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SigningKey;

    #[test]
    fn no_key_names_the_fix_in_each_wording() {
        let load = Trust::from_flags(None, false, Purpose::Load).unwrap_err();
        assert_eq!(
            load.to_string(),
            "no key to check the bundle's signature with; nothing was loaded\n  hint: pass --key \
             SIGNER.pub (the public key of whoever made the bundle), or \
             --insecure-skip-signature to load a bundle nobody vouched for"
        );
        let serve = Trust::from_flags(None, false, Purpose::Serve).unwrap_err();
        assert_eq!(
            serve.to_string(),
            "no key to check the bundles' signatures with; nothing is served\n  hint: pass --key \
             SIGNER.pub (the public key of whoever made the bundle), or \
             --insecure-skip-signature to serve a bundle nobody vouched for"
        );
        let verify = Trust::from_flags(None, false, Purpose::Verify).unwrap_err();
        assert_eq!(
            verify.to_string(),
            "no key to check the bundle's signature with\n  hint: pass --key SIGNER.pub (the \
             public key of whoever made the bundle), or --insecure-skip-signature to check the \
             digests without authenticity"
        );
    }

    #[test]
    fn a_key_needs_a_signature_that_verifies() {
        let signer = SigningKey::generate();
        let key = signer.verifying_key();
        let trust = Trust::Key(key.clone());
        let path = Path::new("k8s.tar.zst");
        let json = b"{\"a\":1}";

        let unsigned = trust
            .check_signature(json, None, path, Purpose::Load)
            .unwrap_err();
        assert!(
            matches!(unsigned, TrustError::Unsigned { .. }),
            "{unsigned}"
        );
        assert!(
            unsigned.to_string().contains("nothing was pushed"),
            "{unsigned}"
        );

        let other = SigningKey::generate().sign(json);
        let bad = trust
            .check_signature(json, Some(other.as_bytes()), path, Purpose::Serve)
            .unwrap_err();
        assert!(
            bad.to_string().contains("does not verify with key")
                && bad
                    .to_string()
                    .contains("another key signed it; nothing is served"),
            "{bad}"
        );

        let good = trust
            .check_signature(
                json,
                Some(signer.sign(json).as_bytes()),
                path,
                Purpose::Load,
            )
            .unwrap();
        assert_eq!(
            good,
            SignatureCheck {
                checked: true,
                key: Some(key.fingerprint())
            }
        );
        assert!(trust.warning(Purpose::Load).is_none());
        let skipped = Trust::InsecureSkipSignature
            .check_signature(json, None, path, Purpose::Load)
            .unwrap();
        assert_eq!(skipped, SignatureCheck::default());
    }
}
