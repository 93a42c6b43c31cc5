//! `airlock inventory registry://…`: a bundle loaded into an empty registry, then listed;
//! the inventory must hold exactly the bundle's blobs and the tags the load pushed, read
//! through catalog pages, by names, with credentials, and signed; a refused catalog says to
//! pass `--names`; a repository that cannot be read keeps the file from being written; and
//! a delta made against the inventory carries what one made against the loaded bundle does.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use airlock_testkit::{Auth, Nginx, Registry, RegistryOptions};
use serde_json::Value;

use crate::load::{make_bundle, Bundle};
use crate::support::*;

const PREFIX: &str = "site";
const USER: &str = "inventory-user";
const PASS: &str = "Inv3ntory-s3cret";

fn empty_registry(auth: Auth) -> Registry {
    Registry::start(RegistryOptions {
        tls: false,
        auth,
        storage: None,
    })
    .expect("start the registry (is docker-registry installed? run `cargo xtask install`)")
}

/// `airlock load` of `b` into `reg` under [`PREFIX`], names without the source host.
fn load_into(b: &Bundle, reg: &Registry) {
    let mut cmd = airlock(&b.work.path().join("cache"));
    cmd.arg("load")
        .arg(&b.file)
        .arg("--to")
        .arg(format!("registry://{}/{PREFIX}", reg.host))
        .args(["--names", "drop-host", "--plain-http", "--retries", "1"])
        .arg("--key")
        .arg(&b.public);
    let stdin = reg.credentials.as_ref().map(|(u, p)| {
        cmd.args(["--username", u, "--password-stdin"]);
        format!("{p}\n")
    });
    let o = run(cmd, stdin.as_deref());
    assert!(o.status.success(), "load failed:\n{}", stderr(&o));
}

/// `airlock inventory registry://HOST/PREFIX -o OUT --plain-http --json EXTRA…`.
fn inventory(work: &Path, host: &str, out: &Path, extra: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = airlock(&work.join("cache"));
    cmd.arg("inventory")
        .arg(format!("registry://{host}/{PREFIX}"))
        .arg("-o")
        .arg(out)
        .args(["--json", "--retries", "0"])
        .args(extra);
    if !extra.contains(&"--ca-file") {
        cmd.arg("--plain-http");
    }
    run(cmd, stdin)
}

/// The `--json` report on stdout.
fn report(o: &Output) -> Value {
    let text = String::from_utf8_lossy(&o.stdout);
    serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{text}\nstderr:\n{}",
            stderr(o)
        )
    })
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// Every digest of the bundle's signed manifest (the copy beside the bundle).
fn bundle_blobs(b: &Bundle) -> BTreeSet<String> {
    let mut beside = b.file.as_os_str().to_owned();
    beside.push(".manifest.json");
    read_json(Path::new(&beside))["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["digest"].as_str().unwrap().to_string())
        .collect()
}

/// Every manifest and blob digest the inventory lists, over all repositories.
fn inventory_digests(inv: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for r in inv["repositories"].as_array().unwrap() {
        for key in ["manifests", "blobs"] {
            for d in r[key].as_array().unwrap() {
                out.insert(d.as_str().unwrap().to_string());
            }
        }
    }
    out
}

/// `(repository, tag) → digest` as the inventory lists them.
fn inventory_tags(inv: &Value) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for r in inv["repositories"].as_array().unwrap() {
        let name = r["name"].as_str().unwrap();
        for (tag, d) in r["tags"].as_object().unwrap() {
            out.insert(
                (name.to_string(), tag.clone()),
                d.as_str().unwrap().to_string(),
            );
        }
    }
    out
}

/// `(repository, tag) → digest` as the registry's own storage records them: what the load
/// pushed, read without the registry's API.
fn stored_tags(storage: &Path) -> BTreeMap<(String, String), String> {
    let root = storage.join("docker/registry/v2/repositories");
    let mut out = BTreeMap::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let s = p
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let Some((repo, rest)) = s.split_once("/_manifests/tags/") else {
                continue;
            };
            if let Some(tag) = rest.strip_suffix("/current/link") {
                let digest = std::fs::read_to_string(&p).unwrap();
                out.insert((repo.to_string(), tag.to_string()), digest);
            }
        }
    }
    out
}

/// `openssl dgst -sha256 -verify PUB -signature <(base64 -d SIG) DATA` succeeds.
fn openssl_verifies(public: &Path, data: &Path, sig_b64: &Path) -> bool {
    use base64::Engine as _;
    let text: String = std::fs::read_to_string(sig_b64)
        .unwrap()
        .split_whitespace()
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("the signature is base64");
    let der_path = sig_b64.with_extension("der");
    std::fs::write(&der_path, der).unwrap();
    let o = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(public)
        .arg("-signature")
        .arg(&der_path)
        .arg(data)
        .output()
        .expect("run openssl (install it: `cargo xtask install`)");
    o.status.success()
}

fn sig_of(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".sig");
    PathBuf::from(s)
}

/// The loop closed on the far side: a bundle loaded into an empty registry, listed through
/// catalog pages of two (the bundle has three repositories); the inventory's digests are
/// exactly the signed manifest's blobs, its tags exactly those in the registry's storage, and
/// its signature verifies with openssl. Nothing but manifests is fetched: no blob `GET`.
#[test]
fn an_inventory_of_a_loaded_registry_holds_exactly_the_bundle() {
    let b = make_bundle(false);
    let reg = empty_registry(Auth::None);
    load_into(&b, &reg);
    // nginx in front, to see every request the inventory makes.
    let proxy = Nginx::start_tls_proxy(&reg, "1m").expect("start nginx");
    let (key, public) = crate::verify::key_pair(b.work.path(), "site");
    let out = b.work.path().join("site.inventory.json");
    let ca = proxy.ca_file.to_str().unwrap();
    let o = inventory(
        b.work.path(),
        &proxy.host,
        &out,
        &[
            "--page-size",
            "2",
            "--sign-key",
            key.to_str().unwrap(),
            "--ca-file",
            ca,
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let doc = report(&o);
    let inv = read_json(&out);
    assert_eq!(inv["kind"], "airlock-inventory");
    assert_eq!(inv["registry"], proxy.host.as_str());

    let log = std::fs::read_to_string(proxy.access_log()).unwrap();
    let asked: Vec<&str> = log.lines().filter(|l| l.contains("/v2/")).collect();
    assert!(
        asked.iter().all(|l| !l.contains("/blobs/")),
        "a blob was asked for: {asked:#?}"
    );
    assert!(
        asked.iter().filter(|l| l.contains("/v2/_catalog")).count() >= 2,
        "one catalog page only: {asked:#?}"
    );
    let by_digest: Vec<&str> = asked
        .iter()
        .filter_map(|l| l.split_once("/manifests/sha256:").map(|(_, d)| &d[..64]))
        .collect();
    let distinct: BTreeSet<&str> = by_digest.iter().copied().collect();
    assert_eq!(
        by_digest.len(),
        distinct.len(),
        "a document fetched twice: {asked:#?}"
    );
    assert_eq!(inv["prefix"], PREFIX);

    let names: Vec<&str> = inv["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "site/fixtures/app-a",
            "site/fixtures/base",
            "site/fixtures/multi"
        ],
        "every repository over more than one catalog page"
    );
    assert_eq!(inventory_digests(&inv), bundle_blobs(&b));
    assert_eq!(inventory_tags(&inv), stored_tags(&reg.storage));
    for i in &b.images {
        for t in &i.tags {
            let key = (format!("{PREFIX}/{}", i.repository), t.clone());
            assert_eq!(inventory_tags(&inv).get(&key), Some(&i.digest), "{key:?}");
        }
    }

    assert_eq!(doc["totals"]["repositories"], 3, "{doc:#}");
    assert_eq!(
        doc["totals"]["blobs"].as_u64().unwrap() + doc["totals"]["manifests"].as_u64().unwrap(),
        bundle_blobs(&b).len() as u64,
        "{doc:#}"
    );
    assert_eq!(
        doc["digest"].as_str().unwrap(),
        sha256_file(&out),
        "the report names the file's digest"
    );
    assert!(openssl_verifies(&public, &out, &sig_of(&out)));
    let text = stderr(&o);
    assert!(text.contains("3 repositories"), "{text}");

    // Taken again, the same registry gives the same file (but for when it was taken).
    let again = b.work.path().join("again.json");
    let o = inventory(b.work.path(), &proxy.host, &again, &["--ca-file", ca], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut a = read_json(&again);
    a["created"] = inv["created"].clone();
    assert_eq!(a, inv);
    assert!(!sig_of(&again).exists(), "no key, no signature");
}

/// `--names` lists exactly the given repositories (relative to the prefix); a name the
/// registry does not hold fails the run and nothing is written, `--keep-going` writes the
/// rest and still exits 1; an htpasswd registry is read with credentials, which appear in
/// neither the file nor the output.
#[test]
fn names_take_a_subset_and_credentials_stay_out_of_the_file() {
    let b = make_bundle(false);
    let reg = empty_registry(Auth::basic(USER, PASS));
    load_into(&b, &reg);
    let creds = ["--username", USER, "--password-stdin"];
    let stdin = format!("{PASS}\n");

    let out = b.work.path().join("subset.json");
    let mut args = vec!["--names", "fixtures/base", "fixtures/multi"];
    args.extend(creds);
    let o = inventory(b.work.path(), &reg.host, &out, &args, Some(&stdin));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let inv = read_json(&out);
    let names: Vec<&str> = inv["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["site/fixtures/base", "site/fixtures/multi"]);
    let expected: BTreeSet<String> = b
        .images
        .iter()
        .filter(|i| i.repository != "fixtures/app-a")
        .flat_map(|i| i.blobs.iter().map(|(d, _)| d.clone()))
        .collect();
    assert_eq!(inventory_digests(&inv), expected);
    let file = std::fs::read_to_string(&out).unwrap();
    let printed = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    for secret in [PASS, USER] {
        assert!(!file.contains(secret), "`{secret}` in the file:\n{file}");
        assert!(!printed.contains(secret), "`{secret}` printed:\n{printed}");
    }

    // A repository that is not there: named, exit 1, nothing written.
    let out = b.work.path().join("missing.json");
    let mut args = vec!["--names", "fixtures/base", "fixtures/gone"];
    args.extend(creds);
    let o = inventory(b.work.path(), &reg.host, &out, &args, Some(&stdin));
    let text = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(text.contains("site/fixtures/gone"), "{text}");
    assert!(text.contains("--keep-going"), "{text}");
    assert!(!out.exists(), "an incomplete inventory was written");
    assert_eq!(report(&o)["output"], Value::Null);

    // With --keep-going: what was read is written, and what is missing is still named.
    args.push("--keep-going");
    let o = inventory(b.work.path(), &reg.host, &out, &args, Some(&stdin));
    let text = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(text.contains("site/fixtures/gone"), "{text}");
    let names: Vec<String> = read_json(&out)["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["site/fixtures/base"]);

    // Without credentials the registry refuses: nothing is written.
    let out = b.work.path().join("anonymous.json");
    let o = inventory(b.work.path(), &reg.host, &out, &[], None);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!out.exists());
}

/// A registry that refuses its catalog (Harbor gives it to administrators only; a tiny
/// in-process fake answering 403 to `/v2/_catalog`): the run stops naming the registry and
/// saying to pass `--names`, and writes nothing.
#[test]
fn a_refused_catalog_says_to_pass_names() {
    use std::io::{BufRead as _, BufReader, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            loop {
                let mut l = String::new();
                if reader.read_line(&mut l).unwrap_or(0) == 0 || l.trim().is_empty() {
                    break;
                }
            }
            let answer = if first.starts_with("GET /v2/ ") {
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".to_string()
            } else {
                let body =
                    r#"{"errors":[{"code":"DENIED","message":"catalog is for administrators"}]}"#;
                format!(
                    "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            };
            let mut conn = conn;
            let _ = conn.write_all(answer.as_bytes());
        }
    });
    let work = workdir();
    let out = work.path().join("site.inventory.json");
    let o = inventory(work.path(), &host, &out, &[], None);
    let text = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{text}");
    assert!(text.contains(&host), "{text}");
    assert!(text.contains("--names"), "{text}");
    assert_eq!(report(&o)["ok"], false);
    assert!(!out.exists());
}

/// Referrers are listed as a site holds them: by the referrers API where the registry has
/// one (an in-process stand-in: the referrer has no tag there, so only the API finds it),
/// else under the referrers tag schema of distribution 2.8 (the tag index itself is the one
/// document the site holds beyond the bundle). Cosign tags are tags like any other.
#[test]
fn referrers_are_found_by_the_api_or_by_their_tags() {
    use airlock_layout::testing::artifacts::Carried;
    let s = crate::restore::Signed::new();
    let all = s.bundle(Carried::All);
    let bundle: BTreeSet<String> = all
        .manifest
        .blobs
        .iter()
        .map(|b| b.digest.to_string())
        .collect();
    let referrer = all.referrer().digest.to_string();

    let api = airlock_testkit::ReferrersRegistry::start().unwrap();
    let debian = empty_registry(Auth::None);
    for host in [&api.host, &debian.host] {
        let to = format!("registry://{host}/{PREFIX}");
        let (o, _) = s.airlock(
            "load",
            &all.path,
            &["--to", &to, "--names", "drop-host", "--plain-http"],
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }

    let before = api.requests().len();
    let out = s.work.path().join("api.json");
    let o = inventory(
        s.work.path(),
        &api.host,
        &out,
        &["--names", "signed/app"],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let inv = read_json(&out);
    assert_eq!(inventory_digests(&inv), bundle, "through the referrers API");
    assert!(
        !inventory_tags(&inv).values().any(|d| *d == referrer),
        "the referrer has no tag there: only the API can have found it"
    );
    let asked = api.requests().split_off(before);
    assert!(
        asked.iter().any(|l| l.target.contains("/referrers/")),
        "{asked:#?}"
    );
    assert!(
        !asked.iter().any(|l| l.target.contains("/blobs/")),
        "a blob was read: {asked:#?}"
    );

    let out = s.work.path().join("tags.json");
    let o = inventory(s.work.path(), &debian.host, &out, &[], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let inv = read_json(&out);
    let listed = inventory_digests(&inv);
    assert!(listed.is_superset(&bundle), "{listed:#?}");
    let tags = inventory_tags(&inv);
    let extra: Vec<&String> = listed.difference(&bundle).collect();
    let tag_indexes: Vec<&String> = tags
        .iter()
        .filter(|((_, t), _)| t.starts_with("sha256-") && !t.contains('.'))
        .map(|(_, d)| d)
        .collect();
    assert_eq!(extra, tag_indexes, "only the referrers tag index is extra");
    assert!(
        tags.keys().any(|(_, t)| t.ends_with(".sig")),
        "the cosign tag: {tags:#?}"
    );
}

/// The signed manifest inside a bundle (`airlock/manifest.json`).
fn manifest_in(bundle: &Path) -> Value {
    let tar = decompress(bundle);
    let v = serde_json::from_slice(&tar_read(&tar, "airlock/manifest.json")).unwrap();
    std::fs::remove_file(&tar).unwrap();
    v
}

/// Every blob a delta leaves out (over all its bases), and every blob its tar carries.
fn left_out_and_carried(bundle: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let m = manifest_in(bundle);
    let left_out = m["bases"]
        .as_array()
        .expect("a delta names its bases")
        .iter()
        .flat_map(|b| b["blobs"].as_array().unwrap().iter())
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    let tar = decompress(bundle);
    let carried = tar_entries(&tar)
        .into_iter()
        .filter_map(|(name, _)| {
            name.strip_prefix("blobs/sha256/")
                .map(|hex| format!("sha256:{hex}"))
        })
        .collect();
    std::fs::remove_file(&tar).unwrap();
    (left_out, carried)
}

/// The loop closed: v1 loaded into an empty registry, `airlock inventory` of that registry,
/// then `bundle v2 --base site.inventory.json` carries exactly the blobs `bundle v2 --base
/// v1.tar.zst` carries, and leaves out the same ones, naming the inventory by its digest.
#[test]
fn a_delta_against_the_sites_inventory_equals_one_against_v1() {
    let work = workdir();
    let w = work.path();
    let versions = delta_versions(w);
    let (key, public) = crate::verify::key_pair(w, "release");
    let key = key.to_str().unwrap();
    let v1 = w.join("v1.tar.zst");
    versions.bundle(w, &versions.v1, &v1, &["--quiet", "--sign-key", key]);
    versions.move_tag();

    // The far side: v1 loaded, the registry listed.
    let site = empty_registry(Auth::None);
    let mut cmd = airlock(&w.join("cache"));
    cmd.arg("load")
        .arg(&v1)
        .arg("--to")
        .arg(format!("registry://{}/{PREFIX}", site.host))
        .args(["--names", "drop-host", "--plain-http", "--quiet", "--key"])
        .arg(&public);
    let o = run(cmd, None);
    assert!(o.status.success(), "load v1: {}", stderr(&o));
    let inv = w.join("site.inventory.json");
    let o = inventory(w, &site.host, &inv, &[], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // The online side: v2 against the inventory, and against v1.
    let by_inventory = w.join("d-inventory.tar.zst");
    let base = format!("--base={}", inv.display());
    versions.bundle(w, &versions.v2, &by_inventory, &["--quiet", &base]);
    let by_v1 = w.join("d-v1.tar.zst");
    let base = format!("--base={}", v1.display());
    versions.bundle(w, &versions.v2, &by_v1, &["--quiet", &base]);

    let (inv_out, inv_carried) = left_out_and_carried(&by_inventory);
    let (v1_out, v1_carried) = left_out_and_carried(&by_v1);
    assert!(!inv_carried.is_empty() && !inv_out.is_empty());
    assert_eq!(inv_carried, v1_carried, "the same blobs carried");
    assert_eq!(inv_out, v1_out, "the same blobs left out");
    let m = manifest_in(&by_inventory);
    assert_eq!(m["bases"][0]["kind"], "inventory");
    assert_eq!(m["bases"][0]["digest"].as_str().unwrap(), sha256_file(&inv));
}
