//! The whole chain, through the real paths: signed fixtures (cosign `.sig`/`.att`/`.sbom`, a
//! signature on the SBOM, an OCI 1.1 referrer, a keyless signature) bundled from Debian's
//! registry, checked offline, loaded into an empty one, checked there with openssl and skopeo
//! (never airlock's code), and proved complete by `airlock check`.

use std::path::Path;
use std::process::Output;

use airlock_testkit::supply::{openssl_verify_cosign, SupplyChain};
use airlock_testkit::{Registry, RegistryOptions};
use serde_json::Value;

use crate::artifacts::{bundle, manifest_of, signed_registry, spec};
use crate::restore::{skopeo_raw, tag_index};
use crate::support::*;
use crate::verify::key_pair;

const PREFIX: &str = "mirror";

/// `airlock CMD BUNDLE --key PUB --json ARGS…`: the output and its JSON.
fn airlock_json(
    work: &Path,
    cmd_name: &str,
    file: &Path,
    public: &Path,
    args: &[&str],
) -> (Output, Value) {
    let mut cmd = airlock(&work.join("cache"));
    cmd.arg(cmd_name)
        .arg(file)
        .arg("--key")
        .arg(public)
        .arg("--json")
        .args(args);
    let o = run(cmd, None);
    let doc = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{cmd_name}: not JSON ({e}): {}", stderr(&o)));
    (o, doc)
}

fn to(target: &Registry) -> [String; 5] {
    [
        "--to".into(),
        format!("registry://{}/{PREFIX}", target.host),
        "--names".into(),
        "drop-host".into(),
        "--plain-http".into(),
    ]
}

/// The upstream report of `verify`: each image's name (last path element) and failure count.
fn upstream(doc: &Value) -> Vec<(String, usize)> {
    let mut v: Vec<(String, usize)> = doc["upstream"]["images"]
        .as_array()
        .unwrap_or_else(|| panic!("no upstream report: {doc:#}"))
        .iter()
        .map(|i| {
            let name = i["image"].as_str().unwrap();
            let repo = name.split('/').skip(1).collect::<Vec<_>>().join("/");
            let repo = repo.split(':').next().unwrap().to_string();
            (repo, i["failures"].as_array().unwrap().len())
        })
        .collect();
    v.sort();
    v
}

fn signed_bundle(
    work: &Path,
    reg: &Registry,
    name: &str,
    images: &[&str],
    (extra, registry): (&str, &str),
) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let (key, public) = key_pair(work, &format!("{name}-signer"));
    let spec = spec(work, name, reg, images, extra, registry);
    let (o, file) = bundle(work, &spec, &["--sign-key", key.to_str().unwrap()]);
    assert!(o.status.success(), "bundle failed: {}", stderr(&o));
    (file, public, stderr(&o))
}

#[test]
fn signed_fixtures_cross_the_gap_and_verify_in_the_target_with_openssl() {
    let work = workdir();
    let w = work.path();
    let (reg, supply): (Registry, SupplyChain) = signed_registry(w);
    let set = fixture_set();
    let repos = [
        "fixtures/app-a",
        "fixtures/multi",
        "fixtures/many-layers",
        "fixtures/base",
    ];
    let (file, public, _) = signed_bundle(w, &reg, "chain", &repos, ("", ""));
    let carried: Vec<String> = manifest_of(&file)["images"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["artifacts"].as_array().cloned().unwrap_or_default())
        .map(|a| a["digest"].as_str().unwrap().to_string())
        .collect();
    let pushed: Vec<_> = supply
        .artifacts
        .iter()
        .filter(|a| repos.contains(&a.repository.as_str()))
        .collect();
    assert_eq!(carried.len(), pushed.len(), "{carried:#?}");

    // Offline, no network: the key-signed images pass, the keyless and unsigned ones do not;
    // with the keyless policy, the keyless one passes.
    let key = supply.public_key.to_str().unwrap();
    let (o, doc) = airlock_json(w, "verify", &file, &public, &["--upstream-key", key]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let expect = |failing: &[&str]| -> Vec<(String, usize)> {
        let mut v: Vec<(String, usize)> = repos
            .iter()
            .map(|r| (r.to_string(), usize::from(failing.contains(r))))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        upstream(&doc),
        expect(&["fixtures/many-layers", "fixtures/base"]),
        "{doc:#}"
    );
    let keyless = supply.keyless.as_ref().expect("a keyless fixture");
    let root = keyless.trusted_root.to_str().unwrap();
    let flags = [
        "--upstream-identity",
        &keyless.identity,
        "--upstream-issuer",
        &keyless.issuer,
        "--trusted-root",
        root,
    ];
    let (_, doc) = airlock_json(w, "verify", &file, &public, &flags);
    assert_eq!(
        upstream(&doc),
        expect(&["fixtures/app-a", "fixtures/multi", "fixtures/base"]),
        "{doc:#}"
    );

    // Loaded into an empty registry without the referrers API.
    let target = Registry::start(RegistryOptions::default()).unwrap();
    let (o, _) = airlock_json(
        w,
        "load",
        &file,
        &public,
        &to(&target).each_ref().map(|s| s.as_str()),
    );
    assert!(o.status.success(), "load failed: {}", stderr(&o));
    let base = |repo: &str| format!("{}/v2/{PREFIX}/{repo}", target.url());
    for a in &pushed {
        let name = format!("{PREFIX}/{}", a.repository);
        match &a.tag {
            Some(tag) => assert_eq!(
                skopeo_raw(&target.host, &format!("{name}:{tag}")),
                a.digest,
                "{} {tag}",
                a.repository
            ),
            None => {
                let listed: Vec<String> = tag_index(&base(&a.repository), &a.subject)
                    .into_iter()
                    .map(|(d, _)| d)
                    .collect();
                assert!(
                    listed.contains(&a.digest),
                    "referrer {} not in {listed:?}",
                    a.digest
                );
            }
        }
    }
    // Every key-signed digest verifies in the target with openssl: images, each platform of
    // the index, and the SBOM's own signature.
    let signed: Vec<_> = pushed
        .iter()
        .filter(|a| a.kind == "signature" && a.repository != keyless.repository)
        .collect();
    assert!(signed.len() >= 5, "{signed:#?}");
    for sig in &signed {
        openssl_verify_cosign(
            &target.url(),
            &format!("{PREFIX}/{}", sig.repository),
            &sig.subject,
            &supply.public_key,
        )
        .unwrap_or_else(|e| panic!("{} {}: {e:#}", sig.repository, sig.subject));
    }
    let app_b = find(&set, "fixtures/app-b");
    assert!(openssl_verify_cosign(
        &target.url(),
        &format!("{PREFIX}/fixtures/app-b"),
        &app_b.digest,
        &supply.public_key
    )
    .is_err());

    // The proof on the far side, then one artifact blob and the referrer taken away.
    let args = [
        "--against",
        &format!("registry://{}/{PREFIX}", target.host),
        "--names",
        "drop-host",
        "--plain-http",
    ];
    let (o, doc) = airlock_json(w, "check", &file, &public, &args);
    assert!(o.status.success(), "{}\n{doc:#}", stderr(&o));
    let sbom = pushed.iter().find(|a| a.kind == "sbom").unwrap();
    let sbom_layer = sbom
        .blobs
        .iter()
        .map(|(d, _)| d.clone())
        .find(|d| {
            *d != sbom.digest
                && !set
                    .images
                    .iter()
                    .any(|i| i.blobs.iter().any(|(b, _)| b == d))
        })
        .unwrap();
    let referrer = pushed.iter().find(|a| a.kind == "referrer").unwrap();
    let storage = target.storage.join("docker/registry/v2");
    let blob_hex = &sbom_layer["sha256:".len()..];
    let blob_dir = storage
        .join("blobs/sha256")
        .join(&blob_hex[..2])
        .join(blob_hex);
    std::fs::remove_dir_all(&blob_dir).unwrap_or_else(|e| panic!("{}: {e}", blob_dir.display()));
    let revision = storage
        .join("repositories")
        .join(PREFIX)
        .join(&referrer.repository)
        .join("_manifests/revisions/sha256")
        .join(&referrer.digest["sha256:".len()..]);
    std::fs::remove_dir_all(&revision).unwrap_or_else(|e| panic!("{}: {e}", revision.display()));
    let (o, doc) = airlock_json(w, "check", &file, &public, &args);
    assert_eq!(o.status.code(), Some(1), "{}\n{doc:#}", stderr(&o));
    let named: Vec<String> = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["reference"].as_str().unwrap().to_string())
        .collect();
    assert!(
        named.iter().any(|r| r.ends_with(&format!("@{sbom_layer}"))),
        "{named:#?}"
    );
    assert!(
        named
            .iter()
            .any(|r| r.ends_with(&format!("@{}", referrer.digest))),
        "{named:#?}"
    );
}

#[test]
fn a_filtered_signed_index_keeps_its_per_platform_signatures_valid_after_load() {
    let work = workdir();
    let w = work.path();
    let (reg, supply) = signed_registry(w);
    let set = fixture_set();
    let multi = find(&set, "fixtures/multi");
    let amd64 = multi
        .manifests
        .iter()
        .find(|m| m.platform == "linux/amd64")
        .unwrap();
    let key = supply.public_key.display().to_string();
    let (file, public, err) = signed_bundle(
        w,
        &reg,
        "amd64",
        &["fixtures/multi"],
        (
            "  platforms: [linux/amd64]\n",
            &format!(", verify: {{key: {key}}}"),
        ),
    );
    assert!(
        err.contains("stay valid") && err.contains(&amd64.digest),
        "{err}"
    );
    let m = manifest_of(&file);
    let filtered = m["images"][0]["digest"].as_str().unwrap().to_string();
    assert_ne!(filtered, multi.digest);

    let (o, doc) = airlock_json(w, "verify", &file, &public, &["--upstream-key", &key]);
    assert!(o.status.success(), "{}\n{doc:#}", stderr(&o));

    let target = Registry::start(RegistryOptions::default()).unwrap();
    let (o, _) = airlock_json(
        w,
        "load",
        &file,
        &public,
        &to(&target).each_ref().map(|s| s.as_str()),
    );
    assert!(o.status.success(), "load failed: {}", stderr(&o));
    let repo = format!("{PREFIX}/fixtures/multi");
    openssl_verify_cosign(&target.url(), &repo, &amd64.digest, &supply.public_key).unwrap();
    assert!(
        openssl_verify_cosign(&target.url(), &repo, &filtered, &supply.public_key).is_err(),
        "the rewritten index has no signature of its own"
    );
}
