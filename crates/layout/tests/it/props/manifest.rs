//! `airlock/manifest.json` (`BundleManifest::from_json_bytes`): round trips, and any bytes
//! are parsed or refused without panicking.

use airlock_layout::{
    BaseBundle, BaseKind, BlobRecord, BundleManifest, Digest, ImageRecord, SpecInfo, Totals,
    FORMAT_VERSION,
};
use proptest::prelude::*;

use super::cases;

fn digest() -> impl Strategy<Value = Digest> {
    any::<[u8; 8]>().prop_map(|b| Digest::of_bytes(&b))
}

fn image() -> impl Strategy<Value = ImageRecord> {
    (
        (
            any::<String>(),
            any::<String>(),
            prop::collection::vec(any::<String>(), 0..3),
        ),
        (digest(), any::<String>(), any::<u64>(), any::<String>()),
        (
            prop::collection::vec(any::<String>(), 0..3),
            prop::option::of(digest()),
        ),
    )
        .prop_map(
            |(
                (name, reference, tags),
                (digest, media_type, size, source),
                (platforms, original_digest),
            )| {
                ImageRecord {
                    name,
                    reference,
                    tags,
                    digest,
                    media_type,
                    size,
                    source,
                    platforms,
                    original_digest,
                    artifacts: Vec::new(),
                    content: None,
                }
            },
        )
}

fn blob() -> impl Strategy<Value = BlobRecord> {
    (digest(), any::<u64>(), any::<String>()).prop_map(|(digest, size, media_type)| BlobRecord {
        digest,
        size,
        media_type,
    })
}

fn manifest() -> impl Strategy<Value = BundleManifest> {
    (
        (any::<String>(), any::<String>(), any::<String>()),
        prop::collection::vec(image(), 0..4),
        prop::collection::vec(blob(), 0..6),
        (any::<u64>(), any::<u64>(), any::<u64>()),
        prop::option::of((digest(), prop::option::of(any::<String>()))),
    )
        .prop_map(
            |((created, airlock_version, spec_name), images, blobs, totals, base)| BundleManifest {
                format_version: FORMAT_VERSION,
                created,
                airlock_version,
                spec: SpecInfo {
                    name: spec_name,
                    sha256: Digest::of_bytes(b"spec").hex().into(),
                },
                images,
                blobs,
                totals: Totals {
                    images: totals.0,
                    blobs: totals.1,
                    bytes: totals.2,
                },
                bases: base
                    .map(|(digest, name)| BaseBundle {
                        kind: BaseKind::Bundle,
                        digest,
                        name,
                        blobs: Vec::new(),
                    })
                    .into_iter()
                    .collect(),
            },
        )
}

proptest! {
    #![proptest_config(cases(256))]

    /// Serialised then parsed is equal, and serialising again gives the same bytes.
    #[test]
    fn prop_manifest_round_trips(m in manifest()) {
        let bytes = m.to_json_bytes();
        let back = BundleManifest::from_json_bytes(&bytes).unwrap();
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(back.to_json_bytes(), bytes);
    }

    /// Any byte of a valid manifest changed, or the manifest cut: parsed or refused, and what
    /// parses serialises back to a manifest that parses equal.
    #[test]
    fn prop_mutated_manifest_never_panics(
        m in manifest(),
        at in any::<prop::sample::Index>(),
        xor in 1..=255u8,
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = m.to_json_bytes();
        let at = at.index(bytes.len());
        bytes[at] ^= xor;
        for b in [&bytes[..], &bytes[..cut.index(bytes.len())]] {
            if let Ok(parsed) = BundleManifest::from_json_bytes(b) {
                prop_assert_eq!(
                    BundleManifest::from_json_bytes(&parsed.to_json_bytes()).unwrap(),
                    parsed
                );
            }
        }
    }

    /// Any bytes, and any JSON-ish text.
    #[test]
    fn prop_arbitrary_manifest_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        text in any::<String>(),
    ) {
        let _ = BundleManifest::from_json_bytes(&bytes);
        let _ = BundleManifest::from_json_bytes(text.as_bytes());
        let _ = BundleManifest::from_json_bytes(format!("{{\"formatVersion\":{text}}}").as_bytes());
    }

    /// Deeply nested JSON is refused, not a stack overflow.
    #[test]
    fn prop_nested_manifest_is_refused(depth in 1..100_000usize, open in prop_oneof![Just(b'['), Just(b'{')]) {
        let mut bytes = b"{\"images\":".to_vec();
        bytes.extend(std::iter::repeat_n(open, depth));
        prop_assert!(BundleManifest::from_json_bytes(&bytes).is_err());
    }
}
