//! The lock file: every spec reference resolved to a digest.
//!
//! `--lock FILE` writes it after a successful resolution; `--locked` reads it and refuses any
//! image whose source now serves a different digest (a mirror lagging behind, a moved tag).
//! `airlock lock` ([`crate::resolve_lock`]) writes it without downloading anything, asking the
//! origin first.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The lock file version this airlock writes and reads.
pub const LOCK_VERSION: u32 = 1;

/// A resolved spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Lock {
    /// Always [`LOCK_VERSION`].
    pub lock_version: u32,
    /// The spec's `metadata.name`.
    pub spec: String,
    /// Canonical reference → entry, sorted.
    pub images: BTreeMap<String, LockedImage>,
}

/// One resolved image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockedImage {
    /// The digest of the manifest or index as served (before any platform filtering).
    pub digest: String,
    /// Where it was resolved (origin or mirror repository).
    pub source: String,
}

impl Lock {
    /// Reads a lock file.
    pub fn read(path: &Path) -> Result<Lock, Error> {
        let bytes = std::fs::read(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let lock: Lock = serde_json::from_slice(&bytes).map_err(|e| Error::Lock {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        if lock.lock_version != LOCK_VERSION {
            return Err(Error::Lock {
                path: path.to_path_buf(),
                message: format!(
                    "lockVersion {} is not supported (this airlock reads {LOCK_VERSION})",
                    lock.lock_version
                ),
            });
        }
        Ok(lock)
    }

    /// Writes the lock atomically (temporary file, then rename).
    pub fn write(&self, path: &Path) -> Result<(), Error> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("lock serialises");
        bytes.push(b'\n');
        crate::write_atomic(path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_version_check() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.lock");
        let mut lock = Lock {
            lock_version: LOCK_VERSION,
            spec: "demo".into(),
            images: BTreeMap::new(),
        };
        lock.images.insert(
            "registry.k8s.io/pause:3.9".into(),
            LockedImage {
                digest: format!("sha256:{}", "a".repeat(64)),
                source: "mirror.lan/k8s/pause".into(),
            },
        );
        lock.write(&p).unwrap();
        assert_eq!(Lock::read(&p).unwrap(), lock);
        std::fs::write(&p, r#"{"lockVersion":9,"spec":"x","images":{}}"#).unwrap();
        assert!(Lock::read(&p)
            .unwrap_err()
            .to_string()
            .contains("lockVersion 9"));
    }
}
