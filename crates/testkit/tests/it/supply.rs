//! The signed fixtures are real: skopeo reads every pushed artifact with its digest, openssl
//! verifies the cosign signatures, and the other key's signature is refused.

use std::collections::BTreeMap;
use std::process::Command;

use airlock_cosign::{verify_image, Policy, SignatureLayer};
use airlock_layout::Digest;
use airlock_testkit::fixtures;
use airlock_testkit::supply::{openssl_verify_cosign, KEYLESS_IDENTITY, SCAN_ARTIFACT_TYPE};
use airlock_testkit::Registry;

use crate::{sha256, succeed, tool};

fn raw(registry: &Registry, repository: &str, reference: &str) -> Vec<u8> {
    let sep = if reference.starts_with("sha256:") {
        "@"
    } else {
        ":"
    };
    succeed(
        Command::new(tool("skopeo"))
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!(
                "docker://{}/{repository}{sep}{reference}",
                registry.host
            )),
    )
}

#[test]
fn supply_chain_is_pushed_and_verifies_with_openssl_only_for_the_right_key() {
    let set = fixtures::fixture_set().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (registry, supply) = Registry::with_supply_chain(&set, dir.path()).unwrap();
    let url = registry.url();

    // Every artifact is there under its tag (or digest) with the digest recorded.
    let kinds: Vec<_> = supply.artifacts.iter().map(|a| a.kind).collect();
    assert_eq!(
        kinds,
        [
            "signature",
            "attestation",
            "sbom",
            "signature",
            "signature",
            "signature",
            "signature",
            "referrer",
            "signature",
            "signature",
        ]
    );
    for artifact in &supply.artifacts {
        let reference = artifact.tag.as_deref().unwrap_or(&artifact.digest);
        let bytes = raw(&registry, &artifact.repository, reference);
        assert_eq!(sha256(&bytes), artifact.digest, "{artifact:?}");
        assert!(artifact.blobs.iter().any(|(d, _)| *d == artifact.digest));
    }

    // app-a and each platform (and the index) of multi verify with the main key.
    let app_a = set.image("fixtures/app-a").unwrap();
    openssl_verify_cosign(&url, "fixtures/app-a", &app_a.digest, &supply.public_key).unwrap();
    let multi = set.image("fixtures/multi").unwrap();
    openssl_verify_cosign(&url, "fixtures/multi", &multi.digest, &supply.public_key).unwrap();
    for manifest in &multi.manifests {
        openssl_verify_cosign(&url, "fixtures/multi", &manifest.digest, &supply.public_key)
            .unwrap();
    }
    // The signature on the SBOM verifies too.
    let sbom = supply.find(&app_a.digest, "sbom").unwrap();
    openssl_verify_cosign(&url, "fixtures/app-a", &sbom.digest, &supply.public_key).unwrap();

    // app-b is signed with the other key: refused with the main one, accepted with its own.
    let app_b = set.image("fixtures/app-b").unwrap();
    let err = openssl_verify_cosign(&url, "fixtures/app-b", &app_b.digest, &supply.public_key)
        .unwrap_err();
    assert!(format!("{err:#}").contains("no signature of"), "{err:#}");
    openssl_verify_cosign(
        &url,
        "fixtures/app-b",
        &app_b.digest,
        &supply.other_public_key,
    )
    .unwrap();
    // base is unsigned.
    let base = set.image("fixtures/base").unwrap();
    assert!(
        openssl_verify_cosign(&url, "fixtures/base", &base.digest, &supply.public_key).is_err()
    );

    // The referrer is found through the tag schema, with its subject and artifactType.
    let amd64 = &multi.manifests[0];
    assert_eq!(amd64.platform, "linux/amd64");
    let tag = amd64.digest.replacen(':', "-", 1);
    let index: serde_json::Value =
        serde_json::from_slice(&raw(&registry, "fixtures/multi", &tag)).unwrap();
    let referrer = supply.find(&amd64.digest, "referrer").unwrap();
    assert_eq!(index["manifests"][0]["digest"], referrer.digest.as_str());
    assert_eq!(index["manifests"][0]["artifactType"], SCAN_ARTIFACT_TYPE);
    let manifest: serde_json::Value =
        serde_json::from_slice(&raw(&registry, "fixtures/multi", &referrer.digest)).unwrap();
    assert_eq!(manifest["subject"]["digest"], amd64.digest.as_str());
    assert_eq!(supply.referrers_indexes.len(), 1);
    assert_eq!(supply.referrers_indexes[0].tag, tag);
}

#[test]
fn the_keyless_signature_chains_to_its_test_ca_for_openssl_and_verifies_offline() {
    let set = fixtures::fixture_set().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (registry, supply) = Registry::with_supply_chain(&set, dir.path()).unwrap();
    let keyless = supply.keyless.clone().unwrap();
    let many = set.image(&keyless.repository).unwrap();
    let sig = supply.find(&many.digest, "signature").unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&raw(
        &registry,
        &keyless.repository,
        sig.tag.as_deref().unwrap(),
    ))
    .unwrap();
    let layer = &manifest["layers"][0];
    let annotations: BTreeMap<String, String> =
        serde_json::from_value(layer["annotations"].clone()).unwrap();

    // openssl: the leaf chains to the CA of the chain annotation.
    let leaf = dir.path().join("leaf.pem");
    let chain = dir.path().join("chain.pem");
    std::fs::write(&leaf, &annotations["dev.sigstore.cosign/certificate"]).unwrap();
    std::fs::write(&chain, &annotations["dev.sigstore.cosign/chain"]).unwrap();
    let out = succeed(
        Command::new(tool("openssl"))
            .args(["verify", "-CAfile"])
            .arg(&chain)
            .arg(&leaf),
    );
    assert!(String::from_utf8_lossy(&out).contains(": OK"));
    let text = String::from_utf8(succeed(
        Command::new(tool("openssl"))
            .args(["x509", "-noout", "-text", "-in"])
            .arg(&leaf),
    ))
    .unwrap();
    assert!(
        text.contains(&format!("URI:{}", keyless.identity)),
        "{text}"
    );

    // The same bytes verify offline against the trusted root, with the identity asked.
    let payload_digest = layer["digest"].as_str().unwrap();
    let payload = std::fs::read(
        registry
            .storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&payload_digest[7..9])
            .join(&payload_digest[7..])
            .join("data"),
    )
    .unwrap();
    let digest = Digest::parse(payload_digest).unwrap();
    let layer = SignatureLayer {
        digest: &digest,
        payload: &payload,
        annotations: &annotations,
    };
    let image = Digest::parse(&many.digest).unwrap();
    let policy =
        Policy::keyless(&keyless.trusted_root, &keyless.identity, &keyless.issuer).unwrap();
    let verified = verify_image(&image, &[layer], &policy).unwrap();
    assert_eq!(
        verified.certificate.unwrap().identity,
        KEYLESS_IDENTITY.to_string()
    );
    let wrong = Policy::keyless(
        &keyless.trusted_root,
        "someone@example.test",
        &keyless.issuer,
    )
    .unwrap();
    assert!(verify_image(&image, &[layer], &wrong).is_err());
}
