//! Signing keys as files: a new key pair written whole or not at all (`airlock key
//! generate`), and a private key read for signing.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, SigningKey};

/// Why a key file cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The key pair's files cannot be written.
    #[error("cannot write `{}`", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The signing key cannot be read.
    #[error("cannot read the signing key `{}`", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The key itself is refused (format, passphrase, curve).
    #[error(transparent)]
    Key(#[from] Error),
}

/// The two files of a key pair: `NAME.key` (PKCS#8 PEM, mode 0600) and `NAME.pub`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPairPaths {
    /// `NAME.key`.
    pub key: PathBuf,
    /// `NAME.pub`.
    pub public: PathBuf,
}

impl KeyPairPaths {
    /// The files of the key pair named `name`.
    pub fn new(name: &Path) -> KeyPairPaths {
        KeyPairPaths {
            key: with_suffix(name, ".key"),
            public: with_suffix(name, ".pub"),
        }
    }

    /// Those of the two that exist already (as anything, a dangling link too).
    pub fn existing(&self) -> Vec<&Path> {
        [&self.key, &self.public]
            .into_iter()
            .filter(|p| p.symlink_metadata().is_ok())
            .map(PathBuf::as_path)
            .collect()
    }

    /// Makes a new ECDSA P-256 key pair and writes it, the private key encrypted with
    /// `passphrase` when given; never replaces an existing file, and leaves no half pair
    /// behind. Returns the public key's fingerprint.
    pub fn generate(&self, passphrase: Option<&[u8]>) -> Result<String, KeyFileError> {
        let key = SigningKey::generate();
        let key_pem = key.to_pkcs8_pem(passphrase)?;
        let public = key.verifying_key();
        write_new(&self.key, key_pem.as_bytes(), 0o600)?;
        if let Err(e) = write_new(&self.public, public.to_pem().as_bytes(), 0o644) {
            // Half a key pair is of no use; leave nothing behind.
            let _ = std::fs::remove_file(&self.key);
            return Err(e);
        }
        Ok(public.fingerprint())
    }
}

/// A private key file read for signing, not yet decrypted: read first, so that a missing file
/// is reported before a passphrase is asked for.
pub struct SigningKeyFile {
    path: PathBuf,
    pem: zeroize::Zeroizing<String>,
}

impl std::fmt::Debug for SigningKeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key's bytes.
        f.debug_struct("SigningKeyFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SigningKeyFile {
    /// Reads the private key (PEM) at `path`.
    pub fn read(path: &Path) -> Result<SigningKeyFile, KeyFileError> {
        let pem = std::fs::read_to_string(path).map_err(|source| KeyFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(SigningKeyFile {
            path: path.to_path_buf(),
            pem: zeroize::Zeroizing::new(pem),
        })
    }

    /// The key, decrypted with `passphrase` when it is encrypted; warns when other users can
    /// read the file.
    pub fn decrypt(&self, passphrase: Option<&[u8]>) -> Result<SigningKey, KeyFileError> {
        let key = SigningKey::from_pem(&self.pem, passphrase, &self.path)?;
        warn_if_readable_by_others(&self.path);
        Ok(key)
    }
}

fn with_suffix(name: &Path, suffix: &str) -> PathBuf {
    let mut s = name.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Writes a new file through a temporary name; fails if `path` exists by then.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyFileError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let err = |source| KeyFileError::Write {
        path: path.to_path_buf(),
        source,
    };
    // The temporary file is created with mode 0600, so the key is never readable by others.
    let mut tmp = tempfile::Builder::new()
        .prefix(".airlock-key-")
        .tempfile_in(dir)
        .map_err(err)?;
    tmp.write_all(bytes).map_err(err)?;
    set_mode(tmp.as_file(), mode).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist_noclobber(path).map_err(|e| err(e.error))?;
    Ok(())
}

#[cfg(unix)]
fn set_mode(file: &std::fs::File, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_file: &std::fs::File, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                "the signing key `{}` can be read by other users (mode {:o}); hint: chmod 600 it",
                path.display(),
                mode & 0o777
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_is_written_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let paths = KeyPairPaths::new(&dir.path().join("k"));
        assert!(paths.existing().is_empty());
        let fingerprint = paths.generate(Some(b"pw")).unwrap();
        assert_eq!(paths.existing().len(), 2);
        let file = SigningKeyFile::read(&paths.key).unwrap();
        let key = file.decrypt(Some(b"pw")).unwrap();
        assert_eq!(key.verifying_key().fingerprint(), fingerprint);
        // Never replaced: the second pair fails at the first file and leaves the first pair.
        assert!(matches!(
            paths.generate(None),
            Err(KeyFileError::Write { .. })
        ));
        assert!(file.decrypt(Some(b"pw")).is_ok());
        assert!(SigningKeyFile::read(&dir.path().join("missing.key")).is_err());
    }
}
