//! `--pin`: the digest of each tagged image, from a bundle, its manifest or a lock.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use airlock_layout::sniff::ZSTD_MAGIC;
use airlock_registry::Reference;

use crate::error::PinError;

/// Digests by `registry/repository:tag`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pins {
    digests: HashMap<String, String>,
}

impl Pins {
    /// Reads a bundle (`NAME.tar.zst`, its head only), the manifest beside it
    /// (`NAME.tar.zst.manifest.json`) or a lock (`airlock lock`); the bundle's signature is not
    /// checked here (`airlock load` checks it before anything lands).
    pub fn read(path: &Path) -> Result<Pins, PinError> {
        let read_err = |source| PinError::Read {
            path: path.to_owned(),
            source,
        };
        let mut head = [0u8; 4];
        let n = std::fs::File::open(path)
            .and_then(|mut f| f.read(&mut head))
            .map_err(read_err)?;
        let zstd = n == 4 && head == ZSTD_MAGIC;
        if !zstd && is_lock(path).map_err(read_err)? {
            let lock = airlock_bundle::Lock::read(path).map_err(|source| PinError::Lock {
                path: path.to_owned(),
                source: Box::new(source),
            })?;
            return Ok(Pins::from_pairs(
                lock.images.into_iter().map(|(r, i)| (r, i.digest)),
            ));
        }
        let inventory =
            airlock_layout::read_inventory(path).map_err(|source| PinError::Inventory {
                path: path.to_owned(),
                source: Box::new(source),
            })?;
        let mut pins = Pins::default();
        // Charts and files are no image a manifest can name.
        for image in inventory
            .manifest
            .images
            .into_iter()
            .filter(|i| i.is_image())
        {
            for tag in &image.tags {
                pins.digests
                    .insert(format!("{}:{tag}", image.name), image.digest.to_string());
            }
            if let Ok(r) = Reference::parse(&image.reference) {
                if let (Some(tag), None) = (&r.tag, &r.digest) {
                    pins.digests
                        .insert(format!("{}:{tag}", r.name()), image.digest.to_string());
                }
            }
        }
        Ok(pins)
    }

    /// Pins from `(reference, digest)` pairs; references with a digest of their own or without
    /// a tag are skipped.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Pins {
        let digests = pairs
            .into_iter()
            .filter_map(|(reference, digest)| {
                let r = Reference::parse(&reference).ok()?;
                match (&r.tag, &r.digest) {
                    (Some(tag), None) => Some((format!("{}:{tag}", r.name()), digest)),
                    _ => None,
                }
            })
            .collect();
        Pins { digests }
    }

    /// The digest of `name:tag` (`docker.io/library/nginx`, `1.25`).
    pub fn digest(&self, name: &str, tag: &str) -> Option<&str> {
        self.digests
            .get(&format!("{name}:{tag}"))
            .map(String::as_str)
    }

    /// How many tags it pins.
    pub fn len(&self) -> usize {
        self.digests.len()
    }

    /// Whether it pins nothing.
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }
}

/// A lock is a JSON object with `lockVersion`; a bundle manifest has none.
fn is_lock(path: &Path) -> std::io::Result<bool> {
    let bytes = std::fs::read(path)?;
    Ok(serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .is_some_and(|v| v.get("lockVersion").is_some()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_pins_its_images_not_its_charts_and_files() {
        use airlock_layout::testing::content::{content_bundle, CHART, HELLO, IMAGE, IMAGE_TAG};
        let dir = tempfile::tempdir().unwrap();
        let b = content_bundle(dir.path(), &airlock_layout::SigningKey::generate());
        let pins = Pins::read(&b.path).unwrap();
        assert_eq!(pins.len(), 1);
        assert!(pins.digest(IMAGE, IMAGE_TAG).is_some());
        assert!(pins.digest(HELLO, "latest").is_none());
        assert!(pins.digest(CHART, &b.record(CHART).tags[0]).is_none());
    }
}
