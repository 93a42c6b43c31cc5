//! Bad input and broken servers: a clear error naming the image or registry, a non-zero exit
//! code, and no output file (nor a temporary one) left behind.

use std::path::Path;
use std::process::Output;

use airlock_testkit::{free_port, Auth};

use crate::support::*;

/// Runs `airlock bundle SPEC -o out.tar.zst` in `dir` and checks that nothing was left there
/// but the inputs.
fn bundle_fails(dir: &Path, spec: &Path, stdin: Option<&str>, extra: &[&str]) -> Output {
    let before = listing(dir);
    let out = dir.join("out.tar.zst");
    let mut cmd = airlock(&dir.join("cache"));
    cmd.arg("bundle")
        .args(extra)
        .arg("-o")
        .arg(&out)
        .arg(spec)
        .args(["--retries", "1"]);
    let o = run(cmd, stdin);
    assert!(
        !o.status.success(),
        "bundle unexpectedly succeeded: {}",
        stderr(&o)
    );
    assert!(!out.exists(), "a failed run left its output file");
    let mut after = listing(dir);
    after.retain(|f| f != "cache");
    let mut before = before;
    before.retain(|f| f != "cache");
    assert_eq!(after, before, "a failed run left files behind");
    o
}

fn assert_mentions(o: &Output, needles: &[&str]) {
    let e = stderr(o);
    for n in needles {
        assert!(e.contains(n), "`{n}` missing from the error:\n{e}");
    }
}

#[test]
fn bad_spec_names_file_line_and_column() {
    let work = workdir();
    let spec = work.path().join("bad.yaml");
    std::fs::write(
        &spec,
        "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {name: x}\nspec:\n  images:\n    - 127.0.0.1:1/a:1\n  platfroms: [linux/amd64]\n",
    )
    .unwrap();
    let o = bundle_fails(work.path(), &spec, None, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert_mentions(&o, &["bad.yaml:7:", "platfroms"]);

    std::fs::write(
        &spec,
        "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {name: x}\nspec:\n  images:\n    - 127.0.0.1:1/a:1\n    - 127.0.0.1:1/Bad:1\n",
    )
    .unwrap();
    let o = bundle_fails(work.path(), &spec, None, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert_mentions(&o, &["bad.yaml:7:", "127.0.0.1:1/Bad:1"]);

    std::fs::write(
        &spec,
        "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {name: x}\nspec:\n  images:\n    - 127.0.0.1:1/a:1\n    - 127.0.0.1:1/a:1\n",
    )
    .unwrap();
    let o = bundle_fails(work.path(), &spec, None, &[]);
    assert_mentions(
        &o,
        &["bad.yaml:7:", "duplicate image `127.0.0.1:1/a:1`", "line 6"],
    );
}

#[test]
fn unknown_image_is_named() {
    let reg = registry(false, Auth::None);
    let work = workdir();
    let image = format!("{}/fixtures/no-such-image:1", reg.host);
    let spec = write_spec(
        work.path(),
        "s",
        &[image.clone(), format!("{}/fixtures/base:1", reg.host)],
        None,
        &registry_settings(&reg),
    );
    let o = bundle_fails(work.path(), &spec, None, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert_mentions(&o, &[&image, "not found", "1 of 2 images failed"]);
}

#[test]
fn wrong_credentials_are_named_with_a_hint_and_never_printed() {
    for auth in [
        Auth::Basic {
            username: "airlock".into(),
            password: "right-password".into(),
        },
        Auth::Token {
            username: "airlock".into(),
            password: "right-password".into(),
        },
    ] {
        let reg = registry(true, auth);
        let work = workdir();
        let image = format!("{}/fixtures/base:1", reg.host);
        let spec = write_spec(
            work.path(),
            "s",
            std::slice::from_ref(&image),
            None,
            &registry_settings(&reg),
        );
        let o = bundle_fails(
            work.path(),
            &spec,
            Some("Wrong-Pa55word\n"),
            &["--username", "airlock", "--password-stdin"],
        );
        assert_eq!(o.status.code(), Some(1));
        assert_mentions(&o, &[&image, &reg.host, "hint:"]);
        let e = stderr(&o).to_lowercase();
        assert!(
            e.contains("unauthorized") || e.contains("authentication"),
            "{e}"
        );
        assert!(
            !stderr(&o).contains("Wrong-Pa55word"),
            "the password leaked: {}",
            stderr(&o)
        );
    }
}

#[test]
fn unknown_ca_is_named_with_a_hint() {
    let reg = registry(true, Auth::None);
    let work = workdir();
    let image = format!("{}/fixtures/base:1", reg.host);
    // No caFile for the registry: its certificate is signed by an unknown CA.
    let spec = write_spec(work.path(), "s", std::slice::from_ref(&image), None, "");
    let o = bundle_fails(work.path(), &spec, None, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert_mentions(&o, &[&image, &reg.host, "caFile"]);
}

/// Regression: a `caFile` that holds another CA gave the same message as no CA at all, and did
/// not name the file.
#[test]
fn wrong_ca_file_is_named_with_a_hint() {
    let reg = registry(true, Auth::None);
    let work = workdir();
    let other = airlock_testkit::Pki::generate(&work.path().join("other-ca")).unwrap();
    let image = format!("{}/fixtures/base:1", reg.host);
    let spec = write_spec(
        work.path(),
        "s",
        std::slice::from_ref(&image),
        None,
        &format!(
            "    {}: {{caFile: {}}}\n",
            reg.host,
            other.ca_cert.display()
        ),
    );
    let o = bundle_fails(work.path(), &spec, None, &[]);
    assert_eq!(o.status.code(), Some(1));
    let ca = other.ca_cert.display().to_string();
    assert_mentions(
        &o,
        &[
            &image,
            &reg.host,
            &format!("not trusted by the CA file `{ca}`"),
        ],
    );
    assert_mentions(&o, &[&format!("hint: check that `{ca}` holds the CA")]);
    assert!(!stderr(&o).contains("hint: set caFile"), "{}", stderr(&o));
}

/// Regression: a credential helper that is installed but fails got "hint: install it". The
/// run now says it ran and failed, shows its stderr and never its stdout (a secret).
#[test]
fn failing_credential_helper_is_told_from_a_missing_one() {
    use std::os::unix::fs::PermissionsExt as _;
    let reg = registry(
        true,
        Auth::Basic {
            username: "airlock".into(),
            password: "right-password".into(),
        },
    );
    let work = workdir();
    let bin = work.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let helper = bin.join("docker-credential-locked");
    std::fs::write(
        &helper,
        "#!/bin/sh\necho '{\"Username\":\"airlock\",\"Secret\":\"Helper-Secret-42\"}'\necho 'error: the keychain is locked' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let image = format!("{}/fixtures/base:1", reg.host);
    let spec = write_spec(
        work.path(),
        "s",
        std::slice::from_ref(&image),
        None,
        &registry_settings(&reg),
    );
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for (store, needles, absent) in [
        (
            "locked",
            &[
                "docker-credential-locked",
                "ran and exited",
                "the keychain is locked",
            ][..],
            &["install it", "Helper-Secret-42"][..],
        ),
        (
            "absent",
            &[
                "docker-credential-absent",
                "is not installed",
                "hint: install it",
            ][..],
            &[][..],
        ),
    ] {
        let auth = work.path().join(format!("{store}.json"));
        std::fs::write(&auth, format!(r#"{{"credsStore": "{store}"}}"#)).unwrap();
        let mut cmd = airlock(&work.path().join("cache"));
        cmd.env("REGISTRY_AUTH_FILE", &auth)
            .env("PATH", &path)
            .args(["bundle", "--retries", "1", "-o"])
            .arg(work.path().join("out.tar.zst"))
            .arg(&spec);
        let o = run(cmd, None);
        assert!(!o.status.success(), "{}", stderr(&o));
        assert!(!work.path().join("out.tar.zst").exists());
        assert_mentions(&o, needles);
        for a in absent {
            assert!(!stderr(&o).contains(a), "`{a}` in:\n{}", stderr(&o));
        }
    }
}

#[test]
fn registry_down_is_named() {
    let work = workdir();
    // A port nothing listens on (picked free, then left closed).
    let host = format!("127.0.0.1:{}", free_port());
    let image = format!("{host}/fixtures/base:1");
    let spec = write_spec(
        work.path(),
        "s",
        std::slice::from_ref(&image),
        None,
        &format!("    {host}: {{plainHttp: true}}\n"),
    );
    let o = bundle_fails(work.path(), &spec, None, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert_mentions(&o, &[&image, &host]);
    let e = stderr(&o).to_lowercase();
    assert!(e.contains("unreachable") || e.contains("connect"), "{e}");
}

#[test]
fn missing_output_directory_fails_before_any_download() {
    let work = workdir();
    let spec = write_spec(work.path(), "s", &["127.0.0.1:1/a:1".to_string()], None, "");
    let mut cmd = airlock(&work.path().join("cache"));
    cmd.args(["bundle", "-o"])
        .arg(work.path().join("no/such/dir/out.tar.zst"))
        .arg(&spec);
    let o = run(cmd, None);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_mentions(&o, &["no/such/dir/out.tar.zst"]);
}

/// Regression: `UPPER/case` was taken for the host `UPPER` and became a DNS lookup of
/// `upper`; it is a spec error with its line and column, before any request.
#[test]
fn uppercase_first_component_is_a_spec_error() {
    let work = workdir();
    for (name, text, at) in [
        (
            "u.yaml",
            "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {name: x}\nspec:\n  images:\n    - UPPER/case:1\n",
            "u.yaml:6:7",
        ),
        ("u.txt", "# list\nUPPER/case\n", "u.txt:2:1"),
    ] {
        let spec = work.path().join(name);
        std::fs::write(&spec, text).unwrap();
        let o = bundle_fails(work.path(), &spec, None, &[]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert_mentions(&o, &[at, "UPPER/case", "uppercase letter `U`"]);
        let e = stderr(&o);
        assert!(!e.contains("cannot reach") && !e.contains("`upper`"), "{e}");
    }
}

/// Regression: a reference with userinfo (`user:pw@host/…`) was echoed back, password and
/// all, in the error. It is refused with where to put credentials instead.
#[test]
fn userinfo_in_a_reference_is_refused_and_never_echoed() {
    let work = workdir();
    let spec = work.path().join("s.yaml");
    std::fs::write(
        &spec,
        "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {name: x}\nspec:\n  images:\n    - name: bob:Hunter2-Secret@127.0.0.1:1/team/app:1\n",
    )
    .unwrap();
    let o = bundle_fails(work.path(), &spec, None, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_mentions(
        &o,
        &[
            "s.yaml:6:13",
            "cannot carry credentials",
            "hint: give credentials",
        ],
    );
    assert!(!stderr(&o).contains("Hunter2"), "{}", stderr(&o));

    let mut cmd = airlock(&work.path().join("cache"));
    cmd.args(["load", "--insecure-skip-signature", "--to"])
        .arg("registry://bob:Hunter2-Secret@127.0.0.1:1/k8s")
        .arg(work.path().join("none.tar.zst"));
    let o = run(cmd, None);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!stderr(&o).contains("Hunter2"), "{}", stderr(&o));
}

/// Regression: a lock whose digest is not a digest (`sha256:ZZZ…`) was taken as a changed
/// image ("serves X but the lock says sha256:ZZZ…"); it is a malformed lock, named with its
/// line, column and image, before any request.
#[test]
fn malformed_lock_digest_is_a_malformed_lock() {
    let reg = registry(false, Auth::None);
    let work = workdir();
    let image = format!("{}/fixtures/base:1", reg.host);
    let spec = write_spec(
        work.path(),
        "s",
        std::slice::from_ref(&image),
        None,
        &registry_settings(&reg),
    );
    let lock = work.path().join("s.lock");
    let mut cmd = airlock(&work.path().join("cache"));
    cmd.args(["lock", "-o"]).arg(&lock).arg(&spec);
    let o = run(cmd, None);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&lock).unwrap();
    let digest = text
        .split('"')
        .find(|s| s.starts_with("sha256:"))
        .unwrap()
        .to_string();
    let bad = format!("sha256:{}", "Z".repeat(64));
    std::fs::write(&lock, text.replace(&digest, &bad)).unwrap();
    let line = text.lines().position(|l| l.contains(&digest)).unwrap() + 1;
    let o = bundle_fails(
        work.path(),
        &spec,
        None,
        &["--locked", "--lock", lock.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_mentions(
        &o,
        &[
            &format!("s.lock:{line}:"),
            "not a valid airlock lock file",
            &format!("image `{image}`"),
            &bad,
        ],
    );
    assert!(!stderr(&o).contains("serves"), "{}", stderr(&o));
}
