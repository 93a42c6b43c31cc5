//! `read_head` (`airlock inspect`): never panics, memory bounded whatever the head holds.

use airlock_layout::{read_head, BlobRecord, BundleManifest, Digest};
use proptest::prelude::*;

use super::{alloc::Peak, cases, manifest_of, signed, write, CONFIG, MANIFEST};

fn tar_header(path: &str, size: u64) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path).unwrap();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    h.as_bytes().to_vec()
}

fn padded(mut data: Vec<u8>) -> Vec<u8> {
    data.resize(data.len().div_ceil(512) * 512, 0);
    data
}

// Regression: `read_head` kept every small blob of the head in memory, however many there
// were; a crafted bundle whose manifest lists many 4 MiB "configs" (zeros, a few bytes
// compressed) made `airlock inspect` hold all of them at once.
#[test]
fn head_of_many_large_small_blobs_is_bounded() {
    const BLOB: u64 = 4 << 20;
    const COUNT: u32 = 150; // 600 MiB in the head
    let blobs: Vec<BlobRecord> = (0..COUNT)
        .map(|i| BlobRecord {
            digest: Digest::of_bytes(&i.to_le_bytes()),
            size: BLOB,
            media_type: CONFIG.into(),
        })
        .collect();
    let manifest = BundleManifest {
        images: Vec::new(),
        ..manifest_of(&blobs)
    };
    let manifest_json = manifest.to_json_bytes();
    let frame = |data: &[u8]| zstd::encode_all(data, 1).unwrap();
    let mut file = frame(
        &[
            tar_header(airlock_layout::MANIFEST_PATH, manifest_json.len() as u64),
            padded(manifest_json),
        ]
        .concat(),
    );
    // One compressed frame of zeros serves as the data of every blob.
    let zeros = frame(&vec![0; BLOB as usize]);
    for b in &blobs {
        file.extend(frame(&tar_header(&b.digest.blob_path(), BLOB)));
        file.extend_from_slice(&zeros);
    }
    file.extend(frame(&[0; 1024]));

    let peak = Peak::start();
    let head = read_head(&file[..]).unwrap();
    let used = peak.bytes();
    assert_eq!(head.manifest.blobs.len(), COUNT as usize);
    assert!(
        used < 256 << 20,
        "read_head of a bundle with {COUNT} blobs of {BLOB} bytes in its head used {} MiB",
        used >> 20
    );
}

proptest! {
    // Each case writes a bundle to disk (fsynced): fewer cases by default.
    #![proptest_config(cases(64))]

    /// An image manifest in the head refers to blobs the manifest lists with any sizes: the
    /// image's size is summed without overflow.
    #[test]
    fn prop_head_image_sizes_never_overflow(sizes in prop::collection::vec(any::<u64>(), 1..6)) {
        let layers: Vec<BlobRecord> = sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| BlobRecord {
                digest: Digest::of_bytes(&i.to_le_bytes()),
                size,
                media_type: super::LAYER.into(),
            })
            .collect();
        // A manifest as the content graph reads it: a config and the layers.
        let config = BlobRecord {
            digest: Digest::of_bytes(b"{}"),
            size: 2,
            media_type: super::CONFIG.into(),
        };
        let descriptor = |b: &BlobRecord| {
            serde_json::json!({"mediaType": b.media_type, "digest": b.digest, "size": b.size})
        };
        let doc = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": descriptor(&config),
            "layers": layers.iter().map(descriptor).collect::<Vec<_>>(),
        }))
        .unwrap();
        let top = BlobRecord {
            digest: Digest::of_bytes(&doc),
            size: doc.len() as u64,
            media_type: MANIFEST.into(),
        };
        let mut listed = layers.clone();
        listed.push(config.clone());
        listed.push(top.clone());
        // The last blob listed is the image's top manifest.
        let manifest = manifest_of(&listed);
        let file = write(&manifest.to_json_bytes(), None, b"{}", &[(doc, MANIFEST)], 4096);
        let head = read_head(&file[..]).unwrap();
        let size = head.image_sizes[&top.digest];
        prop_assert_eq!(size.blobs, sizes.len() as u64 + 2);
        let exact = sizes.iter().map(|&s| u128::from(s)).sum::<u128>()
            + u128::from(config.size)
            + u128::from(top.size);
        prop_assert_eq!(u128::from(size.bytes), exact.min(u128::from(u64::MAX)));
    }
}

proptest! {
    #![proptest_config(cases(256))]

    /// Any byte changed in a valid bundle: `read_head` returns or refuses, never panics, and
    /// what it returns for the manifest is the bytes the file holds.
    #[test]
    fn prop_head_of_mutated_bundle_never_panics(at in any::<prop::sample::Index>(), xor in 1..=255u8) {
        let s = signed();
        let mut bad = s.file.clone();
        let at = at.index(bad.len());
        bad[at] ^= xor;
        if let Ok(head) = read_head(&bad[..]) {
            prop_assert_eq!(BundleManifest::from_json_bytes(&head.manifest_json).unwrap(), head.manifest);
        }
    }

    /// Any bytes at all.
    #[test]
    fn prop_head_of_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = read_head(&bytes[..]);
    }
}
