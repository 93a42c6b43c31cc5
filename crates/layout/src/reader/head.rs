//! Reading only the head of a bundle: its manifest, signature and small blobs (`airlock
//! inspect`, and `airlock load` before it plans anything).
//!
//! Nothing read here is verified: the callers check the signature and every digest.

use std::collections::HashMap;
use std::io::{self, Read};

use serde::Serialize;

use crate::digest::Digest;
use crate::format::{MANIFEST_PATH, OCI_LAYOUT_PATH, SIGNATURE_PATH, TAR_BLOCK};
use crate::manifest::BundleManifest;
use crate::reader::header::{blob_digest, parse_header, unsafe_path, Header};
use crate::verify::{
    check_size, VerifyError, VerifyErrorKind, MAX_MANIFEST_SIZE, MAX_OCI_LAYOUT_SIZE,
    MAX_SIGNATURE_SIZE,
};

/// Small entries read from the head are capped (manifests and configs are a few KiB).
const MAX_HEAD_BLOB_SIZE: u64 = 4 << 20;
/// All small entries read from the head together; past this the head ends early (the sizes
/// of the images whose documents lie beyond are then unknown).
const MAX_HEAD_SIZE: u64 = 64 << 20;

/// What the first entries of a bundle say, read without decoding the rest (see [`read_head`]).
///
/// Nothing here is verified: the signature is only looked for, not checked.
#[derive(Debug, Clone)]
pub struct BundleHead {
    /// The exact bytes of `airlock/manifest.json`.
    pub manifest_json: Vec<u8>,
    /// The parsed manifest.
    pub manifest: BundleManifest,
    /// The bytes of `airlock/manifest.json.sig`, when the bundle carries one.
    pub signature: Option<Vec<u8>>,
    /// For each image (by its digest) whose indexes and manifests are in the head: how many
    /// unique blobs it uses and their total size, from the sizes the manifest lists.
    pub image_sizes: HashMap<Digest, ImageSize>,
}

/// The blobs one image uses (see [`BundleHead::image_sizes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageSize {
    /// Unique blobs: the index or manifest itself, child manifests, configs, layers.
    pub blobs: u64,
    /// Their total size in bytes.
    pub bytes: u64,
}

/// Reads only the head of a bundle: `airlock/manifest.json`, its signature if present, and
/// the small blobs (indexes, manifests, configs) that follow, stopping at the first layer.
///
/// Only the first zstd frames are decoded, so this is quick whatever the bundle's size.
pub fn read_head<R: Read>(reader: R) -> Result<BundleHead, VerifyError> {
    let mut tar = HeadReader {
        inner: zstd::stream::read::Decoder::new(Counting {
            inner: reader,
            read: 0,
        })
        .map_err(|source| VerifyError::new(VerifyErrorKind::Read { source }))?,
        pos: 0,
    };
    let (offset, header) = tar.header()?.ok_or_else(|| {
        VerifyError::new(VerifyErrorKind::MissingEntry {
            path: MANIFEST_PATH,
        })
    })?;
    if header.path != MANIFEST_PATH || header.not_regular.is_some() {
        return Err(VerifyError::new(VerifyErrorKind::FirstEntryNotManifest {
            found: header.path,
        })
        .at(Some(offset), None));
    }
    let err_at = |path: &str, offset: u64| {
        let path = path.to_owned();
        move |kind| VerifyError::new(kind).entry(&path).at(Some(offset), None)
    };
    check_size(MANIFEST_PATH, header.size, MAX_MANIFEST_SIZE).map_err(err_at(MANIFEST_PATH, 0))?;
    let manifest_json = tar.data(header.size)?;
    let manifest = BundleManifest::from_json_bytes(&manifest_json)
        .map_err(|source| err_at(MANIFEST_PATH, 0)(VerifyErrorKind::Manifest { source }))?;

    let small: HashMap<&Digest, u64> = manifest
        .blobs
        .iter()
        .filter(|b| crate::manifest::is_small_media_type(&b.media_type))
        .map(|b| (&b.digest, b.size))
        .collect();
    let mut signature = None;
    let mut blobs: HashMap<Digest, Vec<u8>> = HashMap::new();
    // The small blobs kept together are capped too, not only each one.
    let mut head_bytes = 0u64;
    // Past the manifest, a damaged or cut file only ends the head early: the inventory is
    // known, the sizes of the images whose manifests are missing are not.
    while let Ok(Some((offset, h))) = tar.header() {
        if h.not_regular.is_some() || unsafe_path(&h.path).is_some() {
            break;
        }
        if h.path == SIGNATURE_PATH && blobs.is_empty() && signature.is_none() {
            check_size(SIGNATURE_PATH, h.size, MAX_SIGNATURE_SIZE)
                .map_err(err_at(SIGNATURE_PATH, offset))?;
            match tar.data(h.size) {
                Ok(data) => signature = Some(data),
                Err(_) => break,
            }
        } else if h.path == OCI_LAYOUT_PATH && h.size <= MAX_OCI_LAYOUT_SIZE {
            if tar.skip(h.size).is_err() {
                break;
            }
        } else if let Some(d) = blob_digest(&h.path).filter(|d| {
            small.get(d).is_some_and(|&s| s == h.size)
                && h.size <= MAX_HEAD_BLOB_SIZE
                && head_bytes + h.size <= MAX_HEAD_SIZE
        }) {
            head_bytes += h.size;
            match tar.data(h.size) {
                Ok(data) => blobs.insert(d, data),
                Err(_) => break,
            };
        } else {
            // The first layer (or anything else): the head ends here.
            break;
        }
    }
    let image_sizes = crate::verify::sizes::image_sizes(&manifest, &blobs);
    Ok(BundleHead {
        manifest_json,
        manifest,
        signature,
        image_sizes,
    })
}

/// Sequential tar reading over the zstd decoder, for the head only.
struct HeadReader<R: Read> {
    inner: zstd::stream::read::Decoder<'static, io::BufReader<Counting<R>>>,
    pos: u64,
}

/// Counts the bytes read from the file, to report where it ends early.
struct Counting<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

impl<R: Read> HeadReader<R> {
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), VerifyError> {
        let at = self.pos;
        let read = &mut self.inner;
        read.read_exact(buf).map_err(|source| {
            let kind = if source.kind() == io::ErrorKind::UnexpectedEof {
                VerifyErrorKind::Truncated {
                    file_len: read.get_ref().get_ref().read,
                    what: "the tar stream stops in the head".to_owned(),
                }
            } else {
                VerifyErrorKind::Decompress { source }
            };
            VerifyError::new(kind).at(Some(at), None)
        })?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    /// The next header and its offset, or `None` at the end blocks.
    fn header(&mut self) -> Result<Option<(u64, Header)>, VerifyError> {
        let offset = self.pos;
        let mut block = [0; TAR_BLOCK as usize];
        self.read_exact(&mut block)?;
        if block.iter().all(|&b| b == 0) {
            return Ok(None);
        }
        let h = parse_header(&block).map_err(|reason| {
            VerifyError::new(VerifyErrorKind::TarHeader { reason }).at(Some(offset), None)
        })?;
        Ok(Some((offset, h)))
    }

    /// An entry's data (size already capped by the caller), and its padding.
    fn data(&mut self, size: u64) -> Result<Vec<u8>, VerifyError> {
        let mut data = vec![0; size as usize];
        self.read_exact(&mut data)?;
        self.skip_padding(size)?;
        Ok(data)
    }

    fn skip(&mut self, size: u64) -> Result<(), VerifyError> {
        let mut left = size;
        let mut buf = [0; 4096];
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            self.read_exact(&mut buf[..n])?;
            left -= n as u64;
        }
        self.skip_padding(size)
    }

    fn skip_padding(&mut self, size: u64) -> Result<(), VerifyError> {
        let padding = ((TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK) as usize;
        let mut pad = [0; TAR_BLOCK as usize];
        self.read_exact(&mut pad[..padding])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::tests::{bundle, bundle_of};
    use crate::BlobRecord;

    #[test]
    fn head_reads_the_inventory_and_sizes() {
        let (file, _) = bundle(true);
        let head = read_head(&file[..]).unwrap();
        assert!(head.signature.is_some());
        assert_eq!(head.manifest.images.len(), 1);
        // `{"schemaVersion":2}` is no image manifest the content graph reads: no size.
        assert!(head.image_sizes.is_empty());

        let descriptor = |b: &BlobRecord| serde_json::json!({"mediaType": b.media_type, "digest": b.digest, "size": b.size});
        let (file, _) = bundle_of(true, |blobs| {
            serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": crate::media::OCI_MANIFEST,
                "config": descriptor(&blobs[2]),
                "layers": [descriptor(&blobs[0]), descriptor(&blobs[1])],
            }))
            .unwrap()
        });
        let head = read_head(&file[..]).unwrap();
        let image = &head.manifest.images[0];
        // The manifest, its config and its two layers.
        assert_eq!(
            head.image_sizes[&image.digest],
            ImageSize {
                blobs: 4,
                bytes: head.manifest.blobs.iter().map(|b| b.size).sum(),
            }
        );
    }
}
