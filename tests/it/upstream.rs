//! `airlock verify --upstream-key` / keyless flags, offline: a bundle whose images carry no
//! upstream signature fails, naming every image; bad policy inputs are usage errors.

use serde_json::Value;

use crate::support::*;
use crate::verify::{key_pair, signed};

#[test]
fn images_without_carried_signatures_fail_the_upstream_check_each_named() {
    let s = signed();
    let (_, upstream) = key_pair(s.work.path(), "upstream");
    let mut cmd = airlock(&s.work.path().join("cache"));
    cmd.arg("verify")
        .arg(&s.bundle)
        .arg("--json")
        .arg("--key")
        .arg(&s.public)
        .arg("--upstream-key")
        .arg(&upstream);
    let o = run(cmd, None);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["ok"], false, "{doc:#}");
    assert_eq!(doc["error"], Value::Null, "the bundle itself is good");
    let images = doc["upstream"]["images"].as_array().unwrap();
    assert!(!images.is_empty());
    for image in images {
        let name = image["image"].as_str().unwrap();
        let failure = image["failures"][0].as_str().unwrap();
        assert!(
            failure.starts_with(&format!("{name}: no signature of sha256:"))
                && failure.contains("is carried in the bundle"),
            "{failure}"
        );
        assert!(
            e.contains(&format!("error: upstream signature: {failure}")),
            "{e}"
        );
    }
    assert!(e.contains("upstream signatures (signed with `"), "{e}");
}

#[test]
fn a_bad_upstream_key_or_trusted_root_is_a_usage_error_naming_the_file() {
    let s = signed();
    let missing = s.work.path().join("missing.pub");
    let mut cmd = airlock(&s.work.path().join("cache"));
    cmd.arg("verify")
        .arg(&s.bundle)
        .arg("--key")
        .arg(&s.public)
        .arg("--upstream-key")
        .arg(&missing);
    let o = run(cmd, None);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("missing.pub"), "{}", stderr(&o));

    let root = s.work.path().join("trusted_root.json");
    std::fs::write(&root, "{}").unwrap();
    let mut cmd = airlock(&s.work.path().join("cache"));
    cmd.arg("verify")
        .arg(&s.bundle)
        .arg("--key")
        .arg(&s.public)
        .args(["--upstream-identity", "someone@example.test"])
        .args(["--upstream-issuer", "https://issuer.example.test"])
        .arg("--trusted-root")
        .arg(&root);
    let o = run(cmd, None);
    assert_ne!(o.status.code(), Some(0));
    let e = stderr(&o);
    assert!(
        e.contains("trusted_root.json` is not a usable sigstore trusted root"),
        "{e}"
    );

    // The keyless flags go together.
    let mut cmd = airlock(&s.work.path().join("cache"));
    cmd.arg("verify")
        .arg(&s.bundle)
        .arg("--key")
        .arg(&s.public)
        .args(["--upstream-identity", "someone@example.test"]);
    let o = run(cmd, None);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}
