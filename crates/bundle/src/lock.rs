//! The lock file: every spec reference resolved to a digest.
//!
//! `--lock FILE` writes it after a successful resolution; `--locked` reads it and refuses any
//! image whose source now serves a different digest (a mirror lagging behind, a moved tag).
//! `airlock lock` ([`crate::resolve_lock`]) writes it without downloading anything, asking the
//! origin first.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

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
    #[serde(deserialize_with = "images")]
    pub images: BTreeMap<String, LockedImage>,
}

/// One resolved image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LockedImage {
    /// The digest of the manifest or index as served (before any platform filtering).
    pub digest: String,
    /// Where it was resolved (origin or mirror repository).
    pub source: String,
}

/// `images`: each entry is read knowing its image, so that a bad digest names it; the
/// JSON parser adds the position of the value that failed.
fn images<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, LockedImage>, D::Error> {
    struct Images;
    impl<'de> Visitor<'de> for Images {
        type Value = BTreeMap<String, LockedImage>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map of image references to `{digest, source}`")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(image) = map.next_key::<String>()? {
                if out.contains_key(&image) {
                    return Err(de::Error::custom(format!(
                        "image `{image}` is listed twice"
                    )));
                }
                let entry = map.next_value_seed(Entry { image: &image })?;
                out.insert(image, entry);
            }
            Ok(out)
        }
    }
    d.deserialize_map(Images)
}

/// One `images` entry, for the image `image`.
struct Entry<'a> {
    image: &'a str,
}

impl<'de> DeserializeSeed<'de> for Entry<'_> {
    type Value = LockedImage;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<LockedImage, D::Error> {
        d.deserialize_struct("LockedImage", &["digest", "source"], self)
    }
}

impl<'de> Visitor<'de> for Entry<'_> {
    type Value = LockedImage;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{{digest, source}}` for image `{}`", self.image)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LockedImage, A::Error> {
        let image = self.image;
        let mut digest = None;
        let mut source = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "digest" if digest.is_none() => {
                    digest = Some(map.next_value_seed(DigestOf { image })?)
                }
                "source" if source.is_none() => source = Some(map.next_value::<String>()?),
                "digest" | "source" => {
                    return Err(de::Error::custom(format!(
                        "image `{image}`: `{key}` is given twice"
                    )))
                }
                other => {
                    return Err(de::Error::custom(format!(
                        "image `{image}`: unknown field `{other}`, expected `digest` or `source`"
                    )))
                }
            }
        }
        let missing = |field| de::Error::custom(format!("image `{image}`: missing `{field}`"));
        Ok(LockedImage {
            digest: digest.ok_or_else(|| missing("digest"))?,
            source: source.ok_or_else(|| missing("source"))?,
        })
    }
}

/// The `digest` of `image`: `sha256:` and 64 lowercase hex digits, or an error naming both.
struct DigestOf<'a> {
    image: &'a str,
}

impl<'de> DeserializeSeed<'de> for DigestOf<'_> {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        let digest = String::deserialize(d)?;
        airlock_layout::Digest::parse(&digest)
            .map_err(|e| de::Error::custom(format!("image `{}`: {e}", self.image)))?;
        Ok(digest)
    }
}

impl Lock {
    /// Reads a lock file.
    pub fn read(path: &Path) -> Result<Lock, Error> {
        let bytes = std::fs::read(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Lock::from_bytes(path, &bytes)
    }

    /// Parses the bytes of the lock file `path`.
    fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Lock, Error> {
        let lock: Lock = serde_json::from_slice(bytes).map_err(|e| {
            // serde_json appends " at line L column C"; the position goes in front.
            let message = e.to_string();
            let message = match message.rfind(" at line ") {
                Some(i) => message[..i].to_string(),
                None => message,
            };
            Error::Lock {
                path: path.to_path_buf(),
                line: e.line().max(1),
                column: e.column().max(1),
                message,
            }
        })?;
        if lock.lock_version != LOCK_VERSION {
            return Err(Error::Lock {
                path: path.to_path_buf(),
                line: 1,
                column: 1,
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

    /// Regression: a lock whose digest is not a digest (`sha256:ZZZ…`) was read, and the run
    /// then reported the image as changed upstream instead of the lock as malformed.
    #[test]
    fn malformed_digest_is_a_malformed_lock_with_its_position() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.lock");
        let bad = format!("sha256:{}", "Z".repeat(64));
        std::fs::write(
            &p,
            format!(
                "{{\n  \"lockVersion\": 1,\n  \"spec\": \"demo\",\n  \"images\": {{\n    \"registry.k8s.io/pause:3.9\": {{\n      \"digest\": \"{bad}\",\n      \"source\": \"registry.k8s.io/pause\"\n    }}\n  }}\n}}\n"
            ),
        )
        .unwrap();
        let e = Lock::read(&p).unwrap_err();
        let Error::Lock { line, column, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(*line, 6, "{e}");
        assert!(*column > 16, "{e}");
        let s = e.to_string();
        assert!(s.contains("x.lock:6:"), "{s}");
        assert!(s.contains("not a valid airlock lock file"), "{s}");
        assert!(s.contains("`registry.k8s.io/pause:3.9`"), "{s}");
        assert!(s.contains(&bad), "{s}");
        assert!(!s.contains(" at line "), "{s}");

        // Other defects name the image and the place too.
        for (body, needle) in [
            (
                r#"{"lockVersion":1,"spec":"x","images":{"a":{"digest":"sha256:ab","source":"s"}}}"#,
                "image `a`",
            ),
            (
                r#"{"lockVersion":1,"spec":"x","images":{"a":{"source":"s"}}}"#,
                "image `a`: missing `digest`",
            ),
            (
                r#"{"lockVersion":1,"spec":"x","images":{"a":{"digest":1,"source":"s"}}}"#,
                "invalid type",
            ),
            (
                r#"{"lockVersion":1,"spec":"x","images":{"a":{"dgst":"x","source":"s"}}}"#,
                "unknown field `dgst`",
            ),
            (r#"{"lockVersion":1,"spec":"x","images":{}"#, "EOF"),
        ] {
            std::fs::write(&p, body).unwrap();
            let s = Lock::read(&p).unwrap_err().to_string();
            assert!(s.contains("x.lock:1:") && s.contains(needle), "{body}: {s}");
        }
    }
}

/// Property tests: `PROPTEST_CASES` sets how many cases (`cargo xtask fuzz` runs many more).
#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;

    fn lock() -> impl Strategy<Value = Lock> {
        (
            "\\PC{0,20}",
            proptest::collection::btree_map(
                "\\PC{1,40}",
                ("[0-9a-f]{64}", "\\PC{0,40}").prop_map(|(hex, source)| LockedImage {
                    digest: format!("sha256:{hex}"),
                    source,
                }),
                0..8,
            ),
        )
            .prop_map(|(spec, images)| Lock {
                lock_version: LOCK_VERSION,
                spec,
                images,
            })
    }

    /// 1-based (line, column) of the end of `text`, the furthest a position can be.
    fn fits(text: &[u8], line: usize, column: usize) -> bool {
        let text = String::from_utf8_lossy(text);
        let lines: Vec<&str> = text.split('\n').collect();
        line >= 1
            && column >= 1
            && line <= lines.len()
            && column <= lines[line - 1].chars().count() + 1
    }

    proptest! {
        #![proptest_config(ProptestConfig::default())]

        /// A lock written and read again is equal.
        #[test]
        fn prop_lock_round_trip(lock in lock()) {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("x.lock");
            lock.write(&p).unwrap();
            prop_assert_eq!(Lock::read(&p).unwrap(), lock);
        }

        /// No input panics the reader, and every error carries a position inside the text.
        #[test]
        fn prop_lock_errors_are_positioned(
            bytes in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..200),
                "[{}\\[\\]\":, a-z0-9\n]{0,200}".prop_map(String::into_bytes),
            ]
        ) {
            match Lock::from_bytes(Path::new("x.lock"), &bytes) {
                Ok(lock) => prop_assert_eq!(lock.lock_version, LOCK_VERSION),
                Err(Error::Lock { line, column, .. }) => {
                    prop_assert!(fits(&bytes, line, column), "{}:{} outside {:?}", line, column, String::from_utf8_lossy(&bytes));
                }
                Err(e) => prop_assert!(false, "{e}"),
            }
        }

        /// A digest that is not `sha256:` and 64 lowercase hex digits is never accepted, and
        /// the error names the image and the place.
        #[test]
        fn prop_bad_digest_is_refused(
            lock in lock(),
            bad in "[a-zA-Z0-9:]{0,80}",
        ) {
            prop_assume!(!lock.images.is_empty());
            prop_assume!(airlock_layout::Digest::parse(&bad).is_err());
            let mut lock = lock;
            let image = lock.images.keys().next().unwrap().clone();
            lock.images.get_mut(&image).unwrap().digest = bad.clone();
            let text = serde_json::to_vec_pretty(&lock).unwrap();
            let e = Lock::from_bytes(Path::new("x.lock"), &text).unwrap_err();
            let Error::Lock { line, column, ref message, .. } = e else {
                return Err(TestCaseError::fail(format!("{e}")));
            };
            prop_assert!(fits(&text, line, column));
            let shown = serde_json::to_string(&image).unwrap();
            prop_assert!(message.contains(&image) || message.contains(&shown[1..shown.len() - 1]), "{}", message);
        }
    }
}
