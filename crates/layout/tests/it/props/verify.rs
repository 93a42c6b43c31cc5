//! `verify_bundle`: a changed, cut or crafted bundle is refused, or is exactly the signed
//! content; it never panics.

use airlock_layout::{verify_bundle, BlobRecord, Digest, Totals};
use proptest::prelude::*;

use super::{cases, index_json_of, manifest_of, records, signed, write, CONFIG, LAYER, MANIFEST};

/// What a mutated file that passed verification must decode to.
fn assert_signed_content(bad: &[u8]) -> Result<(), TestCaseError> {
    let decoded = zstd::decode_all(bad);
    prop_assert!(decoded.is_ok(), "a bundle that verified does not decode");
    prop_assert!(
        decoded.unwrap() == signed().tar,
        "a changed bundle verified with other content"
    );
    Ok(())
}

proptest! {
    #![proptest_config(cases(256))]

    /// Any single byte changed to any other value.
    #[test]
    fn prop_single_byte_mutation_is_refused_or_harmless(
        at in any::<prop::sample::Index>(),
        xor in 1..=255u8,
    ) {
        let s = signed();
        let mut bad = s.file.clone();
        bad[at.index(s.file.len())] ^= xor;
        let r = verify_bundle(&bad[..], Some(&s.public));
        if r.ok {
            assert_signed_content(&bad)?;
        }
    }

    /// Several bytes changed at once.
    #[test]
    fn prop_multi_byte_mutation_is_refused_or_harmless(
        changes in prop::collection::vec((any::<prop::sample::Index>(), 1..=255u8), 1..8),
    ) {
        let s = signed();
        let mut bad = s.file.clone();
        for (at, xor) in changes {
            bad[at.index(s.file.len())] ^= xor;
        }
        let r = verify_bundle(&bad[..], Some(&s.public));
        if r.ok {
            assert_signed_content(&bad)?;
        }
    }

    /// A run of bytes overwritten with anything (a damaged sector, a crafted region).
    #[test]
    fn prop_overwritten_span_is_refused_or_harmless(
        at in any::<prop::sample::Index>(),
        junk in prop::collection::vec(any::<u8>(), 1..600),
    ) {
        let s = signed();
        let mut bad = s.file.clone();
        let at = at.index(bad.len());
        let end = (at + junk.len()).min(bad.len());
        bad[at..end].copy_from_slice(&junk[..end - at]);
        let r = verify_bundle(&bad[..], Some(&s.public));
        if r.ok {
            assert_signed_content(&bad)?;
        }
    }

    /// A bundle cut anywhere, or with anything appended, is refused.
    #[test]
    fn prop_truncated_or_extended_bundle_is_refused(
        cut in any::<prop::sample::Index>(),
        extra in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let s = signed();
        let r = verify_bundle(&s.file[..cut.index(s.file.len())], Some(&s.public));
        prop_assert!(!r.ok && r.error.is_some());
        if !extra.is_empty() {
            let mut longer = s.file.clone();
            longer.extend_from_slice(&extra);
            let r = verify_bundle(&longer[..], Some(&s.public));
            prop_assert!(!r.ok, "a bundle with {} bytes appended verified", extra.len());
        }
    }

    /// Bytes inserted or removed anywhere.
    #[test]
    fn prop_shifted_bundle_is_refused_or_harmless(
        at in any::<prop::sample::Index>(),
        insert in prop::collection::vec(any::<u8>(), 0..16),
        remove in 0..16usize,
    ) {
        let s = signed();
        let at = at.index(s.file.len());
        let mut bad = s.file[..at].to_vec();
        bad.extend_from_slice(&insert);
        bad.extend_from_slice(&s.file[(at + remove).min(s.file.len())..]);
        if bad != s.file {
            let r = verify_bundle(&bad[..], Some(&s.public));
            if r.ok {
                assert_signed_content(&bad)?;
            }
        }
    }

    /// Arbitrary bytes, and arbitrary zstd-compressed bytes (which reach the tar walker).
    #[test]
    fn prop_arbitrary_input_is_refused(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        prop_assert!(!verify_bundle(&bytes[..], None).ok);
        let compressed = zstd::encode_all(&bytes[..], 1).unwrap();
        prop_assert!(!verify_bundle(&compressed[..], None).ok);
    }

    /// Tar headers with any field values (the checksum made right) after a valid manifest:
    /// the walker refuses them or accepts only what a bundle may hold, and never panics.
    #[test]
    fn prop_crafted_tar_headers_never_panic(
        headers in prop::collection::vec(
            (prop::collection::vec(any::<u8>(), 512), prop::collection::vec(any::<u8>(), 0..1500)),
            1..4,
        ),
    ) {
        let s = signed();
        // The manifest and signature entries of the valid bundle, then the crafted ones.
        let mut tar = Vec::new();
        let mut pos = 0;
        // Keep the first two entries (manifest, signature): walk their headers.
        for _ in 0..2 {
            let h = tar::Header::from_byte_slice(&s.tar[pos..pos + 512]);
            let size = h.entry_size().unwrap() as usize;
            let end = pos + 512 + size.div_ceil(512) * 512;
            tar.extend_from_slice(&s.tar[pos..end]);
            pos = end;
        }
        for (block, data) in headers {
            let mut block: [u8; 512] = block.try_into().unwrap();
            block[148..156].fill(b' ');
            let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
            block[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
            tar.extend_from_slice(&block);
            tar.extend_from_slice(&data);
        }
        tar.extend_from_slice(&[0; 1024]);
        let file = zstd::encode_all(&tar[..], 1).unwrap();
        let r = verify_bundle(&file[..], Some(&s.public));
        // No index follows: it can never pass.
        prop_assert!(!r.ok);
    }

}

proptest! {
    // Each case writes a bundle to disk (fsynced): fewer cases by default.
    #![proptest_config(cases(64))]

    /// A manifest with any sizes and totals (an unsigned bundle checked with
    /// `--insecure-skip-signature`, or one signed by a careless key): refused or accepted
    /// without panicking or overflowing.
    #[test]
    fn prop_manifest_with_any_sizes_never_panics(
        sizes in prop::collection::vec(any::<u64>(), 0..4),
        totals in (any::<u64>(), any::<u64>(), any::<u64>()),
        use_totals in any::<bool>(),
    ) {
        let blobs = vec![
            (b"layer".repeat(10), LAYER),
            (br#"{"os":"linux"}"#.to_vec(), CONFIG),
            (br#"{"schemaVersion":2}"#.to_vec(), MANIFEST),
        ];
        let mut listed = records(&blobs);
        listed.splice(
            0..0,
            sizes.iter().enumerate().map(|(i, &size)| BlobRecord {
                digest: Digest::of_bytes(&i.to_le_bytes()),
                size,
                media_type: LAYER.into(),
            }),
        );
        let mut manifest = manifest_of(&listed);
        if use_totals {
            manifest.totals = Totals { images: totals.0, blobs: totals.1, bytes: totals.2 };
        }
        let file = write(&manifest.to_json_bytes(), None, &index_json_of(&manifest), &blobs, 1024);
        let r = verify_bundle(&file[..], None);
        // The listed blobs that are not in the file are missing.
        prop_assert_eq!(r.ok, sizes.is_empty() && (!use_totals || manifest.totals == Totals::of(&manifest.images, &manifest.blobs)));
    }

    /// A valid bundle of random blobs verifies, signed or not.
    #[test]
    fn prop_valid_bundles_verify(
        layers in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..5000), 0..4),
        frame_size in 512..6000usize,
        sign in any::<bool>(),
    ) {
        let mut blobs: Vec<(Vec<u8>, &str)> = layers.into_iter().map(|l| (l, LAYER)).collect();
        blobs.push((br#"{"os":"linux"}"#.to_vec(), CONFIG));
        blobs.push((br#"{"schemaVersion":2}"#.to_vec(), MANIFEST));
        let manifest = manifest_of(&records(&blobs));
        let json = manifest.to_json_bytes();
        let key = airlock_layout::SigningKey::generate();
        let sig = key.sign(&json);
        let file = write(&json, sign.then_some(sig.as_bytes()), &index_json_of(&manifest), &blobs, frame_size);
        let public = key.verifying_key();
        let r = verify_bundle(&file[..], sign.then_some(&public));
        prop_assert!(r.ok, "{:?}", r.error.map(|e| e.to_string()));
        prop_assert_eq!(r.blobs_verified, manifest.blobs.len() as u64);
    }
}
