//! Telling a bundle file from the manifest written beside it, by their first bytes, and
//! reading the inventory of either (`airlock inspect`): from a bundle its head only, from a
//! manifest the JSON document (no larger than a bundle's manifest may be).

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::{read_head, BundleManifest, Digest, ImageSize, VerifyError, MAX_MANIFEST_SIZE};

/// First bytes of a zstd frame (RFC 8878, 3.1.1): every bundle starts with them.
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// What [`read_inventory`] was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InventorySource {
    /// A bundle file (`NAME.tar.zst`): its head was read.
    Bundle,
    /// The manifest beside a bundle (`NAME.tar.zst.manifest.json`).
    Manifest,
}

impl InventorySource {
    /// `bundle` or `manifest`.
    pub fn as_str(self) -> &'static str {
        match self {
            InventorySource::Bundle => "bundle",
            InventorySource::Manifest => "manifest",
        }
    }
}

/// A bundle's inventory, read without checking anything but its form.
#[derive(Debug, Clone)]
pub struct Inventory {
    /// What was read.
    pub source: InventorySource,
    /// The bundle manifest.
    pub manifest: BundleManifest,
    /// Whether a signature is there (in the bundle, or as `MANIFEST.sig` beside the
    /// manifest); it is not verified.
    pub signature_present: bool,
    /// Each image's blobs, when read from a bundle's head (empty for a manifest).
    pub sizes: HashMap<Digest, ImageSize>,
}

/// Why an inventory cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// The file cannot be opened.
    #[error("cannot open `{}`", .path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file cannot be read.
    #[error("cannot read `{}`", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A zstd file whose head is not a bundle's.
    #[error("cannot read the head of the bundle `{}`", .path.display())]
    Head {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: VerifyError,
    },
    /// Neither zstd nor a JSON object.
    #[error(
        "`{}` is neither a bundle nor a bundle manifest: it starts with neither the zstd magic \
         nor a JSON object\n  hint: give a `.tar.zst` bundle or its `.manifest.json`",
        .path.display()
    )]
    Neither {
        /// The file.
        path: PathBuf,
    },
    /// JSON larger than [`MAX_MANIFEST_SIZE`].
    #[error(
        "`{}` is neither a bundle nor a bundle manifest: it is larger than the {} MiB a bundle \
         manifest may have",
        .path.display(),
        MAX_MANIFEST_SIZE >> 20
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// A split bundle whose part list or parts cannot be used.
    #[error(transparent)]
    Volume(#[from] crate::volume::VolumeError),
    /// JSON that is not a bundle manifest.
    #[error("`{}` is neither a bundle nor a bundle manifest", .path.display())]
    NotAManifest {
        /// The file.
        path: PathBuf,
        /// Why it is not one.
        #[source]
        source: crate::Error,
    },
}

/// The inventory of the bundle or bundle manifest at `path`, told apart by the zstd magic.
pub fn read_inventory(path: &Path) -> Result<Inventory, InventoryError> {
    let open = |path: &Path| {
        File::open(path).map_err(|source| InventoryError::Open {
            path: path.to_path_buf(),
            source,
        })
    };
    let read_err = |source| InventoryError::Read {
        path: path.to_path_buf(),
        source,
    };
    // A split bundle: its first part, its part list, or its name with only the parts there.
    if crate::volume::BundleFile::find_part_list(path)?.is_some() {
        let file = crate::volume::BundleFile::open(path)?;
        let head =
            read_head(std::io::BufReader::new(file)).map_err(|source| InventoryError::Head {
                path: path.to_path_buf(),
                source,
            })?;
        return Ok(Inventory {
            source: InventorySource::Bundle,
            manifest: head.manifest,
            signature_present: head.signature.is_some(),
            sizes: head.image_sizes,
        });
    }
    let mut file = open(path)?;
    let mut magic = [0; 4];
    let n = read_up_to(&mut file, &mut magic).map_err(read_err)?;
    if n == 4 && magic == ZSTD_MAGIC {
        let head = read_head(std::io::BufReader::new(open(path)?)).map_err(|source| {
            InventoryError::Head {
                path: path.to_path_buf(),
                source,
            }
        })?;
        return Ok(Inventory {
            source: InventorySource::Bundle,
            manifest: head.manifest,
            signature_present: head.signature.is_some(),
            sizes: head.image_sizes,
        });
    }
    // The manifest beside the bundle (`NAME.tar.zst.manifest.json`), and its `.sig`: JSON
    // that starts with `{`, read no further than the largest manifest airlock reads, so that
    // a device or a huge file is refused at once with bounded memory.
    let first = magic[..n].iter().find(|b| !b.is_ascii_whitespace());
    if n > 0 && first.is_some_and(|&b| b != b'{') {
        return Err(InventoryError::Neither {
            path: path.to_path_buf(),
        });
    }
    let too_large = || InventoryError::TooLarge {
        path: path.to_path_buf(),
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > MAX_MANIFEST_SIZE {
        return Err(too_large());
    }
    let mut bytes = magic[..n].to_vec();
    (&mut file)
        .take(MAX_MANIFEST_SIZE + 1 - n as u64)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_MANIFEST_SIZE {
        return Err(too_large());
    }
    let manifest =
        BundleManifest::from_json_bytes(&bytes).map_err(|source| InventoryError::NotAManifest {
            path: path.to_path_buf(),
            source,
        })?;
    let mut sig = path.as_os_str().to_owned();
    sig.push(".sig");
    Ok(Inventory {
        source: InventorySource::Manifest,
        manifest,
        signature_present: PathBuf::from(sig).is_file(),
        sizes: HashMap::new(),
    })
}

/// Reads until `buf` is full or the input ends; the number of bytes read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neither_zstd_nor_json_is_refused_and_json_is_read_as_a_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "hello").unwrap();
        let e = read_inventory(&text).unwrap_err();
        assert!(matches!(e, InventoryError::Neither { .. }), "{e}");
        let json = dir.path().join("x.manifest.json");
        std::fs::write(&json, " {\"not\": \"a manifest\"}").unwrap();
        let e = read_inventory(&json).unwrap_err();
        assert!(matches!(e, InventoryError::NotAManifest { .. }), "{e}");
        let e = read_inventory(&dir.path().join("missing")).unwrap_err();
        assert!(matches!(e, InventoryError::Open { .. }), "{e}");
    }
}
