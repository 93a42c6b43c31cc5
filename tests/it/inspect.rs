//! `airlock inspect`: the inventory from the head of a bundle or from the manifest beside it.
//! Must show 4 of the trust issue: the `--json` document (docs/inspect.md) is a snapshot.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::support::*;
use crate::verify::signed;

fn inspect(work: &Path, file: &Path, json: bool) -> Output {
    let mut cmd = airlock(&work.join("cache"));
    cmd.arg("inspect").arg(file);
    if json {
        cmd.arg("--json");
    }
    let o = run(cmd, None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    o
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).expect("stdout is one JSON document")
}

/// Replaces what changes between runs: the registry's port, paths, the time and versions.
fn normalise(v: &mut Value, host: &str, file: &str) {
    match v {
        Value::String(s) => {
            *s = s.replace(file, "[FILE]").replace(host, "[REGISTRY]");
        }
        Value::Array(a) => a.iter_mut().for_each(|x| normalise(x, host, file)),
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                match k.as_str() {
                    "created" => *x = "[CREATED]".into(),
                    "airlockVersion" => *x = "[VERSION]".into(),
                    // The spec file names the registry's port.
                    "sha256" => *x = "[SPEC_SHA256]".into(),
                    _ => normalise(x, host, file),
                }
            }
        }
        _ => {}
    }
}

/// The registry host recorded in the bundle (`127.0.0.1:PORT`).
fn host_of(doc: &Value) -> String {
    let source = doc["images"][0]["source"].as_str().unwrap();
    source.split('/').next().unwrap().to_owned()
}

#[test]
fn inspect_json_document_snapshot() {
    let s = signed();
    let o = inspect(s.work.path(), &s.bundle, true);
    let mut doc = json_of(&o);
    let host = host_of(&doc);
    assert!(host.starts_with("127.0.0.1:"), "{host}");
    normalise(&mut doc, &host, s.bundle.to_str().unwrap());
    insta::assert_json_snapshot!("inspect_json", doc);
}

#[test]
fn inspect_reads_the_head_or_the_manifest_beside_the_bundle() {
    let s = signed();
    let work = s.work.path();
    let from_bundle = json_of(&inspect(work, &s.bundle, true));

    // The human table: one row per image, totals, and what is known of the signature.
    let o = inspect(work, &s.bundle, false);
    let table = String::from_utf8(o.stdout).unwrap();
    let first = table.lines().next().unwrap();
    for col in ["REFERENCE", "DIGEST", "SOURCE", "PLATFORMS", "SIZE"] {
        assert!(first.contains(col), "{table}");
    }
    for image in from_bundle["images"].as_array().unwrap() {
        let reference = image["reference"].as_str().unwrap();
        let row = table
            .lines()
            .find(|l| l.starts_with(reference))
            .unwrap_or_else(|| panic!("no row for {reference}:\n{table}"));
        let digest = image["digest"].as_str().unwrap();
        assert!(row.contains(&digest[..19]), "{row}");
        assert!(row.contains(image["source"].as_str().unwrap()), "{row}");
        assert!(!row.ends_with(" -"), "size known from the head: {row}");
    }
    assert!(table.contains("3 images"), "{table}");
    assert!(
        table.contains("signature: present, NOT verified here"),
        "{table}"
    );
    assert!(table.contains("airlock verify"), "{table}");

    // The manifest beside the bundle says the same (sizes need the bundle's manifests).
    let mut beside = s.bundle.as_os_str().to_owned();
    beside.push(".manifest.json");
    let beside = std::path::PathBuf::from(beside);
    assert!(
        beside.exists(),
        "`bundle --sign-key` writes {}",
        beside.display()
    );
    let from_file = json_of(&inspect(work, &beside, true));
    assert_eq!(from_file["input"], "manifest");
    assert_eq!(from_bundle["input"], "bundle");
    assert_eq!(from_file["signature"]["present"], true);
    assert_eq!(from_file["signature"]["verified"], false);
    assert_eq!(from_file["totals"], from_bundle["totals"]);
    assert_eq!(from_file["spec"], from_bundle["spec"]);
    for (a, b) in from_file["images"]
        .as_array()
        .unwrap()
        .iter()
        .zip(from_bundle["images"].as_array().unwrap())
    {
        for field in ["reference", "digest", "source", "platforms", "tags"] {
            assert_eq!(a[field], b[field]);
        }
        assert_eq!(a["size"], Value::Null);
        assert!(b["size"].as_u64().unwrap() > 0);
    }

    // Only the head is read: a bundle cut in half still shows its inventory.
    let bytes = std::fs::read(&s.bundle).unwrap();
    let half = work.join("half.tar.zst");
    std::fs::write(&half, &bytes[..bytes.len() / 2]).unwrap();
    let from_half = json_of(&inspect(work, &half, true));
    assert_eq!(from_half["totals"], from_bundle["totals"]);
    for (a, b) in from_half["images"]
        .as_array()
        .unwrap()
        .iter()
        .zip(from_bundle["images"].as_array().unwrap())
    {
        assert_eq!(a["reference"], b["reference"]);
        assert_eq!(a["digest"], b["digest"]);
    }
}

/// Runs `airlock inspect FILE` under `/usr/bin/time` and returns the output and the peak
/// resident memory in KiB.
fn inspect_measured(work: &Path, file: &Path) -> (Output, u64) {
    let report = work.join("time.txt");
    let mut cmd = std::process::Command::new("/usr/bin/time");
    cmd.arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&report)
        .arg(airlock_bin())
        .arg("inspect")
        .arg(file)
        .env("XDG_CACHE_HOME", work.join("cache"));
    let o = cmd
        .output()
        .expect("run /usr/bin/time (`apt-get install time`)");
    let kib = std::fs::read_to_string(&report).unwrap();
    let kib = kib.lines().last().unwrap().trim().parse().unwrap();
    (o, kib)
}

/// Regression: `inspect /dev/zero` grew to 7 GB and a 2 GiB sparse file took 2.1 GB before
/// "neither a bundle nor a bundle manifest". Every input is read no further than the 64 MiB
/// a manifest may have, and refused with a clear error naming the file.
#[test]
fn inspect_refuses_devices_and_huge_files_with_bounded_memory() {
    let work = workdir();
    let sparse = work.path().join("sparse.json");
    let f = std::fs::File::create(&sparse).unwrap();
    f.set_len(2 << 30).unwrap();
    drop(f);
    // A sparse file that starts like JSON: only its size tells.
    let brace = work.path().join("brace.json");
    let mut f = std::fs::File::create(&brace).unwrap();
    std::io::Write::write_all(&mut f, b"{\"formatVersion\": 1").unwrap();
    f.set_len(2 << 30).unwrap();
    drop(f);
    for file in [Path::new("/dev/zero"), &sparse, &brace] {
        let (o, kib) = inspect_measured(work.path(), file);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{}: {}",
            file.display(),
            stderr(&o)
        );
        let e = stderr(&o);
        assert!(
            e.contains(&format!(
                "`{}` is neither a bundle nor a bundle manifest",
                file.display()
            )),
            "{e}"
        );
        assert!(o.stdout.is_empty());
        // The cap is 64 MiB of input; the binary itself needs a few MiB more.
        assert!(kib < 200 * 1024, "{}: peak RSS {kib} KiB", file.display());
    }
}
