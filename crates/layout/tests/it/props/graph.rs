//! The content graph reads documents from registries and bundles: any bytes under any
//! descriptor give a document or a named error, never a panic.

use airlock_layout::graph::{descriptor, walk, Document, WalkError};
use airlock_layout::media::{DOCKER_LIST, OCI_INDEX, OCI_MANIFEST};
use airlock_layout::Digest;
use proptest::prelude::*;

fn media_type() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just(OCI_INDEX),
        Just(OCI_MANIFEST),
        Just(DOCKER_LIST),
        Just("application/json"),
        Just("application/octet-stream"),
    ]
}

/// JSON-ish documents: a few fields of indexes and manifests with arbitrary values.
fn document() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![
        Just("\"schemaVersion\":2".to_string()),
        Just("\"manifests\":[]".to_string()),
        Just(format!(
            "\"config\":{{\"mediaType\":\"x\",\"digest\":\"{}\",\"size\":2}}",
            Digest::of_bytes(b"{}")
        )),
        Just("\"layers\":[]".to_string()),
        "[a-z\"{}:,\\[\\]0-9]{0,24}",
    ];
    prop::collection::vec(field, 0..5).prop_map(|f| format!("{{{}}}", f.join(",")).into_bytes())
}

proptest! {
    #![proptest_config(super::cases(256))]

    #[test]
    fn prop_any_document_parses_or_is_refused_by_digest(
        mt in media_type(),
        bytes in prop_oneof![document(), prop::collection::vec(any::<u8>(), 0..64)],
        lie in any::<bool>(),
    ) {
        let digest = Digest::of_bytes(&bytes);
        let size = bytes.len() as u64 + u64::from(lie);
        let d = descriptor(mt, &digest, size);
        match Document::parse(&d, &bytes) {
            Ok(doc) => prop_assert!(!lie && doc.digest == digest),
            Err(e) => prop_assert!(e.to_string().contains(&digest.to_string()), "{e}"),
        }
        let r = walk(&d, |_| Ok::<_, ()>(bytes.clone()));
        if let Err(WalkError::Graph(e)) = r {
            prop_assert!(!e.digest.is_empty());
        }
    }
}
