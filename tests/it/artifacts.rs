//! Signatures, attestations, SBOMs and referrers found at bundle time and carried in the
//! bundle: real cosign-format signatures, a DSSE attestation, an SPDX SBOM and an OCI 1.1
//! referrer pushed beside the fixtures of a writable Debian registry (no referrers API: the
//! tag schema), bundled by the `airlock` binary.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};

use airlock_testkit::supply::{PushedArtifact, SupplyChain, SCAN_ARTIFACT_TYPE};
use airlock_testkit::Registry;
use serde_json::Value;

use crate::support::{
    airlock, decompress, find, fixture_set, run, skopeo_digest_from_archive, stderr, workdir,
};

/// The fixtures with their supply chain, in a registry of their own.
pub(crate) fn signed_registry(dir: &Path) -> (Registry, SupplyChain) {
    Registry::with_supply_chain(&fixture_set(), &dir.join("keys"))
        .expect("start a registry with signed fixtures (is docker-registry installed?)")
}

/// A spec of `repositories` (first tag each) on `reg`, with `extra` lines under `spec:` and
/// `registry` settings added to the registry's.
pub(crate) fn spec(
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
pub(crate) fn bundle(dir: &Path, spec: &Path, extra: &[&str]) -> (Output, PathBuf) {
    let name = spec.file_stem().unwrap().to_string_lossy().into_owned();
    let out = dir.join(format!("{name}.tar.zst"));
    let mut cmd = airlock(&dir.join(format!("cache-{name}")));
    cmd.args(["bundle", "-o"]).arg(&out).arg(spec).args(extra);
    cmd.env("SOURCE_DATE_EPOCH", "1700000000");
    (run(cmd, None), out)
}

/// The manifest written beside a bundle.
pub(crate) fn manifest_of(bundle: &Path) -> Value {
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

    // OCI layout tools see the tagged artifacts: skopeo copies `.sig` out of the archive by
    // its name in index.json, checking every digest.
    let tar = decompress(&out);
    let app_a = find(&fixture_set(), "fixtures/app-a").clone();
    let sig = supply.find(&app_a.digest, "signature").unwrap();
    let name = format!(
        "{}/fixtures/app-a:{}",
        reg.host,
        sig.tag.as_deref().unwrap()
    );
    let copied = skopeo_digest_from_archive(&tar, &name, &work.path().join("sig-out"))
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(copied, sig.digest);

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

    // The trusted root from the command line, for an entry that names none.
    let p = with("flag", &keyless.identity);
    let text = std::fs::read_to_string(&p).unwrap().replace(
        &format!(", trustedRoot: {}", keyless.trusted_root.display()),
        "",
    );
    std::fs::write(&p, text).unwrap();
    let (o, _) = bundle(work.path(), &p, &[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("needs a sigstore trusted root"),
        "{}",
        stderr(&o)
    );
    let root = keyless.trusted_root.display().to_string();
    let (o, _) = bundle(work.path(), &p, &["--trusted-root", &root]);
    assert!(o.status.success(), "bundle failed: {}", stderr(&o));

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

/// What the referrers-API front saw.
#[derive(Default)]
struct FrontLog {
    /// The path and query of every referrers request.
    referrers: Vec<String>,
    /// The path and query of every request.
    all: Vec<String>,
}

/// An in-process stand-in for a registry with the OCI 1.1 referrers API (no packaged
/// registry here has one): a proxy in front of `upstream` that answers
/// `GET /v2/<name>/referrers/<digest>` from the registry's referrers tag-schema index, applying
/// the `artifactType` filter (and saying so in `OCI-Filters-Applied`) when `filters`, and hides
/// the tag schema itself, so that only the API can find referrers. Everything else is passed
/// through.
fn referrers_front(upstream: String, filters: bool) -> (String, Arc<Mutex<FrontLog>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let log: Arc<Mutex<FrontLog>> = Arc::default();
    let seen = log.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let (upstream, seen) = (upstream.clone(), seen.clone());
            std::thread::spawn(move || {
                let _ = front_one(conn, &upstream, filters, &seen);
            });
        }
    });
    (addr, log)
}

fn front_one(
    mut conn: TcpStream,
    upstream: &str,
    filters: bool,
    log: &Mutex<FrontLog>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte)? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let target = text.split(' ').nth(1).unwrap_or_default().to_owned();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    log.lock().unwrap().all.push(target.clone());
    let tag_schema = path
        .rsplit_once("/manifests/sha256-")
        .is_some_and(|(_, hex)| hex.len() == 64);
    if tag_schema {
        let body = r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#;
        let reply = format!(
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        return conn.write_all(reply.as_bytes());
    }
    if let Some((name, digest)) = path
        .strip_prefix("/v2/")
        .and_then(|p| p.split_once("/referrers/"))
    {
        log.lock().unwrap().referrers.push(target.clone());
        let tag = digest.replace(':', "-");
        let (status, body) = upstream_get(
            upstream,
            &format!("/v2/{name}/manifests/{tag}"),
            "application/vnd.oci.image.index.v1+json",
        )?;
        let mut index: Value = if status == 200 {
            serde_json::from_slice(&body).unwrap()
        } else {
            serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [],
            })
        };
        let wanted = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("artifactType="))
            .map(|t| t.replace("%2F", "/").replace("%2B", "+"));
        let mut extra = String::new();
        if let (true, Some(t)) = (filters, &wanted) {
            index["manifests"]
                .as_array_mut()
                .unwrap()
                .retain(|m| m["artifactType"] == t.as_str());
            extra.push_str("OCI-Filters-Applied: artifactType\r\n");
        }
        let body = serde_json::to_vec(&index).unwrap();
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.index.v1+json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        conn.write_all(reply.as_bytes())?;
        return conn.write_all(&body);
    }
    // Anything else: passed through, one request per connection.
    let mut up = TcpStream::connect(upstream)?;
    let mut request = String::new();
    for (i, line) in text.split("\r\n").enumerate() {
        if line.is_empty() {
            continue;
        }
        let lower = line.to_ascii_lowercase();
        if i > 0 && (lower.starts_with("connection:") || lower.starts_with("host:")) {
            continue;
        }
        request.push_str(line);
        request.push_str("\r\n");
        if i == 0 {
            request.push_str(&format!("Host: {upstream}\r\nConnection: close\r\n"));
        }
    }
    request.push_str("\r\n");
    up.write_all(request.as_bytes())?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer)?;
    conn.write_all(&answer)
}

/// One plain HTTP/1.0 GET to `upstream`: the status and the body.
fn upstream_get(upstream: &str, path: &str, accept: &str) -> std::io::Result<(u16, Vec<u8>)> {
    let mut up = TcpStream::connect(upstream)?;
    up.write_all(
        format!("GET {path} HTTP/1.0\r\nHost: {upstream}\r\nAccept: {accept}\r\n\r\n").as_bytes(),
    )?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer)?;
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(answer.len(), |i| i + 4);
    let status = String::from_utf8_lossy(&answer[..end])
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, answer[end..].to_vec()))
}

/// A spec of `images` on the front `host` (plain HTTP), with `extra` lines under `spec:`.
fn front_spec(dir: &Path, name: &str, host: &str, images: &[&str], extra: &str) -> PathBuf {
    let set = fixture_set();
    let mut s = format!(
        "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {{name: {name}}}\nspec:\n{extra}  images:\n"
    );
    for repo in images {
        s.push_str(&format!("    - {}\n", find(&set, repo).reference(host)));
    }
    s.push_str(&format!("  registries:\n    {host}: {{plainHttp: true}}\n"));
    let p = dir.join(format!("{name}.yaml"));
    std::fs::write(&p, s).unwrap();
    p
}

#[test]
fn referrers_are_found_through_the_referrers_api_where_there_is_one() {
    let work = workdir();
    let (reg, supply) = signed_registry(work.path());
    let set = fixture_set();
    let multi = find(&set, "fixtures/multi");
    let referrer = supply
        .in_repository("fixtures/multi")
        .find(|a| a.kind == "referrer")
        .expect("the fixtures have a referrer")
        .clone();

    // Every referrer, through the API only (the tag schema is hidden).
    let (front, log) = referrers_front(reg.host.clone(), true);
    let all = front_spec(work.path(), "api", &front, &["fixtures/multi"], "");
    let (o, out) = bundle(work.path(), &all, &[]);
    assert!(o.status.success(), "bundle failed: {}", stderr(&o));
    let carried = artifacts(image(&manifest_of(&out), "fixtures/multi"));
    let found = carried
        .iter()
        .find(|a| a["digest"] == referrer.digest.as_str())
        .unwrap_or_else(|| panic!("the referrer was not found through the API: {carried:#?}"));
    assert_eq!(found["subject"], referrer.subject.as_str());
    assert_eq!(found["kind"], "referrer");
    assert_eq!(found["artifactType"], SCAN_ARTIFACT_TYPE);
    assert!(found.get("tag").is_none());
    let asked = log.lock().unwrap().referrers.clone();
    assert!(
        asked
            .iter()
            .any(|p| p.ends_with(&format!("/referrers/{}", referrer.subject))),
        "{asked:?}"
    );
    assert!(
        asked.len() > multi.manifests.len(),
        "every subject is asked: {asked:?}"
    );

    // One type named: the registry is asked to filter, and says it did.
    let one = front_spec(
        work.path(),
        "api-one",
        &front,
        &["fixtures/multi"],
        &format!("  artifacts: {{referrers: [{SCAN_ARTIFACT_TYPE}]}}\n"),
    );
    let (o, out) = bundle(work.path(), &one, &[]);
    assert!(o.status.success(), "bundle failed: {}", stderr(&o));
    let carried = artifacts(image(&manifest_of(&out), "fixtures/multi"));
    assert!(carried
        .iter()
        .any(|a| a["digest"] == referrer.digest.as_str()));
    assert!(log
        .lock()
        .unwrap()
        .referrers
        .iter()
        .any(|p| p.contains("artifactType=")));

    // A registry that ignores the filter: airlock filters itself.
    let (lax, _) = referrers_front(reg.host.clone(), false);
    let other = front_spec(
        work.path(),
        "api-lax",
        &lax,
        &["fixtures/multi"],
        "  artifacts: {referrers: [application/vnd.example.other+json]}\n",
    );
    let (o, out) = bundle(work.path(), &other, &[]);
    assert!(o.status.success(), "bundle failed: {}", stderr(&o));
    let carried = artifacts(image(&manifest_of(&out), "fixtures/multi"));
    assert!(
        carried.iter().all(|a| a["kind"] != "referrer"),
        "{carried:#?}"
    );
}
