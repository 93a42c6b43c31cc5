//! Signatures, attestations, SBOMs and referrers found at bundle time and carried in the
//! bundle: real cosign-format signatures, a DSSE attestation, an SPDX SBOM and an OCI 1.1
//! referrer pushed beside the fixtures of a writable Debian registry (no referrers API: the
//! tag schema), bundled by the `airlock` binary.

use std::path::{Path, PathBuf};
use std::process::Output;

use airlock_testkit::supply::{PushedArtifact, SupplyChain, SCAN_ARTIFACT_TYPE};
use airlock_testkit::Registry;
use serde_json::Value;

use crate::support::{airlock, find, fixture_set, run, stderr, workdir};

/// The fixtures with their supply chain, in a registry of their own.
fn signed_registry(dir: &Path) -> (Registry, SupplyChain) {
    Registry::with_supply_chain(&fixture_set(), &dir.join("keys"))
        .expect("start a registry with signed fixtures (is docker-registry installed?)")
}

/// A spec of `repositories` (first tag each) on `reg`, with `extra` lines under `spec:` and
/// `registry` settings added to the registry's.
fn spec(
    dir: &Path,
    name: &str,
    reg: &Registry,
    images: &[&str],
    extra: &str,
    registry: &str,
) -> PathBuf {
    let set = fixture_set();
    let mut s = format!(
        "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {{name: {name}}}\nspec:\n{extra}  images:\n"
    );
    for repo in images {
        s.push_str(&format!(
            "    - {}\n",
            find(&set, repo).reference(&reg.host)
        ));
    }
    s.push_str(&format!(
        "  registries:\n    {}: {{plainHttp: true{registry}}}\n",
        reg.host
    ));
    let p = dir.join(format!("{name}.yaml"));
    std::fs::write(&p, s).unwrap();
    p
}

/// Runs `airlock bundle SPEC -o NAME.tar.zst` with a fresh cache.
fn bundle(dir: &Path, spec: &Path, extra: &[&str]) -> (Output, PathBuf) {
    let name = spec.file_stem().unwrap().to_string_lossy().into_owned();
    let out = dir.join(format!("{name}.tar.zst"));
    let mut cmd = airlock(&dir.join(format!("cache-{name}")));
    cmd.args(["bundle", "-o"]).arg(&out).arg(spec).args(extra);
    cmd.env("SOURCE_DATE_EPOCH", "1700000000");
    (run(cmd, None), out)
}

/// The manifest written beside a bundle.
fn manifest_of(bundle: &Path) -> Value {
    let mut p = bundle.as_os_str().to_owned();
    p.push(".manifest.json");
    serde_json::from_slice(&std::fs::read(PathBuf::from(p)).unwrap()).unwrap()
}

fn image<'a>(m: &'a Value, repository: &str) -> &'a Value {
    m["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"].as_str().unwrap().ends_with(repository))
        .unwrap_or_else(|| panic!("no image {repository} in {m:#}"))
}

fn pushed<'a>(supply: &'a SupplyChain, repository: &'a str) -> Vec<&'a PushedArtifact> {
    supply.in_repository(repository).collect()
}

fn artifacts(image: &Value) -> Vec<Value> {
    image["artifacts"].as_array().cloned().unwrap_or_default()
}

#[test]
fn every_pushed_artifact_is_carried_under_its_subject_with_identical_digests() {
    let work = workdir();
    let (reg, supply) = signed_registry(work.path());
    let repos = [
        "fixtures/app-a",
        "fixtures/app-b",
        "fixtures/multi",
        "fixtures/base",
    ];
    let spec = spec(work.path(), "signed", &reg, &repos, "", "");
    let (o, out) = bundle(work.path(), &spec, &[]);
    assert!(o.status.success(), "bundle failed: {}", stderr(&o));
    let m = manifest_of(&out);
    assert_eq!(m["formatVersion"], 2, "a bundle with artifacts is format 2");
    let blobs: Vec<(String, u64)> = m["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["digest"].as_str().unwrap().to_owned(),
                b["size"].as_u64().unwrap(),
            )
        })
        .collect();
    for repo in repos {
        let img = image(&m, repo);
        let carried = artifacts(img);
        let pushed = pushed(&supply, repo);
        assert_eq!(
            carried.len(),
            pushed.len(),
            "{repo}: carried {carried:#?}, pushed {pushed:#?}"
        );
        for p in pushed {
            let a = carried
                .iter()
                .find(|a| a["digest"] == p.digest.as_str())
                .unwrap_or_else(|| panic!("{repo}: {p:?} is not carried: {carried:#?}"));
            assert_eq!(a["subject"], p.subject.as_str(), "{p:?}");
            assert_eq!(a["kind"], p.kind, "{p:?}");
            assert_eq!(a["tag"].as_str(), p.tag.as_deref(), "{p:?}");
            if let Some(t) = &p.artifact_type {
                assert_eq!(a["artifactType"], t.as_str(), "{p:?}");
            }
            for b in &p.blobs {
                assert!(
                    blobs.contains(b),
                    "{repo}: blob {b:?} of {p:?} is not in the bundle"
                );
            }
            // Subjects come before what refers to them.
            let at = carried.iter().position(|x| x == a).unwrap();
            if let Some(s) = carried.iter().position(|x| x["digest"] == a["subject"]) {
                assert!(s < at, "{repo}: {a} comes before its subject");
            }
        }
    }
    assert!(artifacts(image(&m, "fixtures/base")).is_empty());
    // The signature on the SBOM (a referrer of a referrer) is there.
    let app_a = artifacts(image(&m, "fixtures/app-a"));
    let sbom = app_a.iter().find(|a| a["kind"] == "sbom").unwrap();
    assert!(
        app_a
            .iter()
            .any(|a| a["kind"] == "signature" && a["subject"] == sbom["digest"]),
        "{app_a:#?}"
    );

    // The bundle verifies (index.json names the artifact tags; every digest is listed).
    let mut cmd = airlock(&work.path().join("cache-verify"));
    cmd.args(["verify", "--insecure-skip-signature"]).arg(&out);
    let v = run(cmd, None);
    assert!(v.status.success(), "verify failed: {}", stderr(&v));

    // inspect shows them, in the table and in --json.
    let mut cmd = airlock(&work.path().join("cache-inspect"));
    cmd.args(["inspect", "--json"]).arg(&out);
    let i = run(cmd, None);
    assert!(i.status.success(), "{}", stderr(&i));
    let doc: Value = serde_json::from_slice(&i.stdout).unwrap();
    for repo in repos {
        assert_eq!(
            artifacts(image(&doc, repo)).len(),
            pushed(&supply, repo).len(),
            "{repo}: {doc:#}"
        );
    }
    let mut cmd = airlock(&work.path().join("cache-inspect"));
    cmd.arg("inspect").arg(&out);
    let t = run(cmd, None);
    let table = String::from_utf8_lossy(&t.stdout);
    let sig = supply.find(&find(&fixture_set(), "fixtures/app-a").digest, "signature");
    let tag = sig.unwrap().tag.clone().unwrap();
    assert!(
        table.contains(&format!("signature {tag} on image")),
        "{table}"
    );
    assert!(table.contains("referrer referrer on"), "{table}");
    assert!(table.contains(SCAN_ARTIFACT_TYPE), "{table}");
}

#[test]
fn artifacts_none_and_unsigned_images_give_a_format_1_bundle() {
    let work = workdir();
    let (reg, _supply) = signed_registry(work.path());
    let off = spec(
        work.path(),
        "off",
        &reg,
        &["fixtures/app-a", "fixtures/multi"],
        "  artifacts: none\n",
        "",
    );
    let (o, out) = bundle(work.path(), &off, &[]);
    assert!(o.status.success(), "bundle failed: {}", stderr(&o));
    let m = manifest_of(&out);
    assert_eq!(m["formatVersion"], 1);
    assert!(m["images"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i.get("artifacts").is_none()));
    let set = fixture_set();
    let expected: std::collections::BTreeMap<String, u64> = ["fixtures/app-a", "fixtures/multi"]
        .iter()
        .flat_map(|r| find(&set, r).blobs.iter().cloned())
        .collect();
    assert_eq!(m["blobs"].as_array().unwrap().len(), expected.len());

    // Unsigned images with artifacts on (the default): exactly as before.
    let unsigned = spec(work.path(), "unsigned", &reg, &["fixtures/base"], "", "");
    let (o, out) = bundle(work.path(), &unsigned, &[]);
    assert!(o.status.success(), "bundle failed: {}", stderr(&o));
    let m = manifest_of(&out);
    assert_eq!(m["formatVersion"], 1);
    assert_eq!(
        m["blobs"].as_array().unwrap().len(),
        find(&set, "fixtures/base").blobs.len()
    );
}

#[test]
fn a_referrers_filter_keeps_only_the_types_named() {
    let work = workdir();
    let (reg, supply) = signed_registry(work.path());
    let kept = spec(
        work.path(),
        "scan",
        &reg,
        &["fixtures/multi"],
        &format!("  artifacts: {{referrers: [{SCAN_ARTIFACT_TYPE}]}}\n"),
        "",
    );
    let (o, out) = bundle(work.path(), &kept, &[]);
    assert!(o.status.success(), "bundle failed: {}", stderr(&o));
    let carried = artifacts(image(&manifest_of(&out), "fixtures/multi"));
    assert_eq!(carried.len(), pushed(&supply, "fixtures/multi").len());
    assert!(carried.iter().any(|a| a["kind"] == "referrer"));

    let other = spec(
        work.path(),
        "other",
        &reg,
        &["fixtures/multi"],
        "  artifacts: {referrers: [application/vnd.example.other+json], signatures: true}\n",
        "",
    );
    let (o, out) = bundle(work.path(), &other, &[]);
    assert!(o.status.success(), "bundle failed: {}", stderr(&o));
    let carried = artifacts(image(&manifest_of(&out), "fixtures/multi"));
    assert!(
        carried.iter().all(|a| a["kind"] == "signature"),
        "{carried:#?}"
    );
    assert_eq!(
        carried.len(),
        pushed(&supply, "fixtures/multi").len() - 1,
        "every signature, not the referrer"
    );
}

#[test]
fn a_platform_filtered_signed_index_says_which_signatures_stay_valid() {
    let work = workdir();
    let (reg, supply) = signed_registry(work.path());
    let set = fixture_set();
    let multi = find(&set, "fixtures/multi");
    let amd64 = multi
        .manifests
        .iter()
        .find(|m| m.platform == "linux/amd64")
        .unwrap();
    let filtered = spec(
        work.path(),
        "amd64",
        &reg,
        &["fixtures/multi"],
        "  platforms: [linux/amd64]\n",
        "",
    );
    let (o, out) = bundle(work.path(), &filtered, &[]);
    assert!(o.status.success(), "bundle failed: {}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains(&multi.digest), "{err}");
    assert!(err.contains("stay valid"), "{err}");
    assert!(
        err.contains(&format!("linux/amd64 ({})", amd64.digest)),
        "{err}"
    );
    let m = manifest_of(&out);
    let img = image(&m, "fixtures/multi");
    assert_eq!(img["originalDigest"], multi.digest.as_str());
    let carried = artifacts(img);
    assert!(
        carried
            .iter()
            .all(|a| a["subject"] != multi.digest.as_str()),
        "the upstream index's signature is not carried: {carried:#?}"
    );
    let sig = supply.find(&amd64.digest, "signature").unwrap();
    assert!(
        carried.iter().any(|a| a["digest"] == sig.digest.as_str()),
        "{carried:#?}"
    );
    for other in multi
        .manifests
        .iter()
        .filter(|m| m.platform != "linux/amd64")
    {
        assert!(carried
            .iter()
            .all(|a| a["subject"] != other.digest.as_str()));
    }
}

#[test]
fn verify_key_refuses_another_key_and_unsigned_images_naming_them() {
    let work = workdir();
    let (reg, supply) = signed_registry(work.path());
    let set = fixture_set();
    let key = supply.public_key.display().to_string();
    let strict = spec(
        work.path(),
        "strict",
        &reg,
        &["fixtures/app-a", "fixtures/app-b", "fixtures/base"],
        "",
        &format!(", verify: {{key: {key}}}"),
    );
    let (o, out) = bundle(work.path(), &strict, &[]);
    let err = stderr(&o);
    assert!(!o.status.success(), "{err}");
    assert!(!out.exists());
    for (repo, refused) in [
        ("fixtures/app-a", false),
        ("fixtures/app-b", true),
        ("fixtures/base", true),
    ] {
        let named = err
            .lines()
            .any(|l| l.contains("refused") && l.contains(&format!("/{repo}:")));
        assert_eq!(named, refused, "{repo}: {err}");
    }
    assert!(
        err.contains("no signature found"),
        "base is unsigned: {err}"
    );

    // With the key on the command line, app-a alone bundles and its signature is verified.
    let one = spec(work.path(), "one", &reg, &["fixtures/app-a"], "", "");
    let (o, out) = bundle(work.path(), &one, &["--verify-upstream-key", &key]);
    assert!(o.status.success(), "bundle failed: {}", stderr(&o));
    let app_a = find(&set, "fixtures/app-a");
    let carried = artifacts(image(&manifest_of(&out), "fixtures/app-a"));
    let sig = carried
        .iter()
        .find(|a| a["kind"] == "signature" && a["subject"] == app_a.digest.as_str())
        .unwrap();
    assert_eq!(sig["verified"]["method"], "key", "{sig:#}");
}

#[test]
fn keyless_signatures_record_their_certificate_and_a_wrong_identity_is_refused() {
    let work = workdir();
    let (reg, supply) = signed_registry(work.path());
    let keyless = supply
        .keyless
        .clone()
        .expect("the supply chain has a keyless signature");
    let repo = keyless.repository.as_str();
    let digest = find(&fixture_set(), repo).digest.clone();
    let verify = |identity: &str| {
        format!(
            "      verify: {{identity: \"{identity}\", issuer: \"{}\", trustedRoot: {}}}\n",
            keyless.issuer,
            keyless.trusted_root.display()
        )
    };
    let with = |name: &str, identity: &str| {
        let p = spec(work.path(), name, &reg, &[repo], "", "");
        // The image as a map, with its own `verify:`.
        let text = std::fs::read_to_string(&p).unwrap();
        let reference = find(&fixture_set(), repo).reference(&reg.host);
        let text = text.replace(
            &format!("    - {reference}\n"),
            &format!("    - name: {reference}\n{}", verify(identity)),
        );
        std::fs::write(&p, text).unwrap();
        p
    };

    let good = with("keyless", &keyless.identity);
    let (o, out) = bundle(work.path(), &good, &[]);
    assert!(o.status.success(), "bundle failed: {}", stderr(&o));
    let carried = artifacts(image(&manifest_of(&out), repo));
    let sig = carried
        .iter()
        .find(|a| a["kind"] == "signature" && a["subject"] == digest.as_str())
        .unwrap_or_else(|| panic!("{carried:#?}"));
    assert_eq!(sig["certificate"]["identity"], keyless.identity.as_str());
    assert_eq!(sig["certificate"]["issuer"], keyless.issuer.as_str());
    assert_eq!(sig["verified"]["method"], "keyless", "{sig:#}");

    let wrong = with("wrong", "https://example.com/someone-else");
    let (o, out) = bundle(work.path(), &wrong, &[]);
    let err = stderr(&o);
    assert!(!o.status.success(), "{err}");
    assert!(!out.exists());
    assert!(
        err.lines()
            .any(|l| l.contains("refused") && l.contains(&format!("/{repo}:"))),
        "{err}"
    );
}
