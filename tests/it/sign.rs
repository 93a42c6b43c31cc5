//! `airlock key generate` and `airlock bundle --sign-key`, checked with the real `openssl`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use airlock_testkit::Auth;
use serde_json::Value;

use crate::support::*;

const MANIFEST: &str = "airlock/manifest.json";
const SIGNATURE: &str = "airlock/manifest.json.sig";

/// `airlock` with no passphrase in the environment.
fn airlock_cmd(work: &Path) -> Command {
    let mut cmd = airlock(&work.join("cache"));
    cmd.env_remove("AIRLOCK_KEY_PASSPHRASE");
    cmd
}

fn key_generate(work: &Path, name: &str, extra: &[&str], env_pass: Option<&str>) -> Output {
    let mut cmd = airlock_cmd(work);
    cmd.args(["key", "generate", "--out"])
        .arg(work.join(name))
        .args(extra);
    if let Some(p) = env_pass {
        cmd.env("AIRLOCK_KEY_PASSPHRASE", p);
    }
    run(cmd, None)
}

/// `airlock bundle SPEC -o OUT --sign-key KEY …` with a fixed creation time.
fn bundle_signed(
    work: &Path,
    spec: &Path,
    out: &Path,
    key: Option<&Path>,
    extra: &[&str],
    env_pass: Option<&str>,
    stdin: Option<&str>,
) -> Output {
    let mut cmd = airlock_cmd(work);
    cmd.args(["bundle", "--json", "-o"]).arg(out).arg(spec);
    if let Some(key) = key {
        cmd.arg("--sign-key").arg(key);
    }
    cmd.args(extra).env("SOURCE_DATE_EPOCH", "1700000000");
    if let Some(p) = env_pass {
        cmd.env("AIRLOCK_KEY_PASSPHRASE", p);
    }
    run(cmd, stdin)
}

fn beside(out: &Path, suffix: &str) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// `openssl dgst -sha256 -verify PUB -signature <(base64 -d SIG) DATA`; returns its stdout
/// and whether it succeeded.
pub(crate) fn openssl_verify(public: &Path, data: &Path, signature_b64: &Path) -> (bool, String) {
    let der = signature_b64.with_extension("der");
    let decoded = Command::new("base64")
        .arg("-d")
        .arg(signature_b64)
        .output()
        .expect("run base64 (coreutils)");
    assert!(decoded.status.success(), "base64 -d failed");
    std::fs::write(&der, decoded.stdout).unwrap();
    let o = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(public)
        .arg("-signature")
        .arg(&der)
        .arg(data)
        .output()
        .expect("run openssl (install it: `cargo xtask install`)");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).trim().to_string(),
    )
}

/// Extracts the manifest and its signature from a bundle into `dir`.
fn extract_signed(bundle: &Path, dir: &Path) -> (PathBuf, PathBuf) {
    let tar = decompress(bundle);
    let entries = tar_entries(&tar);
    assert_eq!(entries[0].0, MANIFEST, "first entry");
    assert_eq!(entries[1].0, SIGNATURE, "second entry");
    let manifest = dir.join("manifest.json");
    let sig = dir.join("manifest.json.sig");
    std::fs::write(&manifest, tar_read(&tar, MANIFEST)).unwrap();
    std::fs::write(&sig, tar_read(&tar, SIGNATURE)).unwrap();
    (manifest, sig)
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let o = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl (install it: `cargo xtask install`)");
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// Must show 1 of issue 3: `openssl dgst -sha256 -verify NAME.pub -signature <(base64 -d sig)
/// manifest.json` accepts a bundle signed by airlock, inside the tar and beside it.
#[test]
fn openssl_verifies_the_signature_of_a_bundle_signed_with_a_generated_key() {
    let reg = registry(false, Auth::None);
    let work = workdir();
    let w = work.path();

    let o = key_generate(w, "K", &["--no-passphrase", "--json"], None);
    assert!(o.status.success(), "key generate failed: {}", stderr(&o));
    let doc: Value = serde_json::from_slice(&o.stdout).expect("--json prints one document");
    let fingerprint = doc["fingerprint"].as_str().unwrap().to_string();
    assert!(stderr(&o).contains(&fingerprint), "{}", stderr(&o));
    assert_eq!(
        doc["key"].as_str().unwrap(),
        w.join("K.key").to_str().unwrap()
    );
    assert_eq!(
        doc["pub"].as_str().unwrap(),
        w.join("K.pub").to_str().unwrap()
    );
    let key_text = std::fs::read_to_string(w.join("K.key")).unwrap();
    assert!(
        key_text.starts_with("-----BEGIN PRIVATE KEY-----\n"),
        "{key_text}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(w.join("K.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "K.key mode {mode:o}");
    }
    // The fingerprint is the sha256 of the DER SubjectPublicKeyInfo, as openssl sees it.
    let der = openssl(&[
        "pkey",
        "-pubin",
        "-in",
        w.join("K.pub").to_str().unwrap(),
        "-outform",
        "DER",
    ]);
    use sha2::Digest as _;
    assert_eq!(
        fingerprint,
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(&der)))
    );

    let spec = write_spec(
        w,
        "signed",
        &small_refs(&reg.host),
        None,
        &registry_settings(&reg),
    );
    let out = w.join("signed.tar.zst");
    let o = bundle_signed(w, &spec, &out, Some(&w.join("K.key")), &[], None, None);
    assert!(o.status.success(), "bundle failed: {}", stderr(&o));
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["signedBy"].as_str(), Some(fingerprint.as_str()));

    let extracted = w.join("extracted");
    std::fs::create_dir(&extracted).unwrap();
    let (manifest, sig) = extract_signed(&out, &extracted);
    let (ok, said) = openssl_verify(&w.join("K.pub"), &manifest, &sig);
    assert!(ok && said == "Verified OK", "openssl said: {said}");

    // The copies beside the bundle: the same bytes, and they verify too.
    let beside_manifest = beside(&out, ".manifest.json");
    let beside_sig = beside(&out, ".manifest.json.sig");
    assert_eq!(
        std::fs::read(&beside_manifest).unwrap(),
        std::fs::read(&manifest).unwrap()
    );
    assert_eq!(
        std::fs::read(&beside_sig).unwrap(),
        std::fs::read(&sig).unwrap()
    );
    let (ok, said) = openssl_verify(&w.join("K.pub"), &beside_manifest, &beside_sig);
    assert!(ok && said == "Verified OK", "openssl said: {said}");

    // One changed byte of the manifest and openssl refuses.
    let mut tampered = std::fs::read(&manifest).unwrap();
    let at = tampered.len() / 2;
    tampered[at] ^= 1;
    std::fs::write(&manifest, tampered).unwrap();
    let (ok, said) = openssl_verify(&w.join("K.pub"), &manifest, &sig);
    assert!(!ok, "openssl accepted a tampered manifest: {said}");
}

#[test]
fn an_encrypted_key_signs_only_with_its_passphrase_and_fails_before_any_download() {
    let reg = registry(false, Auth::None);
    let work = workdir();
    let w = work.path();
    let pass = "correct horse battery staple";

    let o = key_generate(w, "E", &[], Some(pass));
    assert!(o.status.success(), "key generate failed: {}", stderr(&o));
    let key_text = std::fs::read_to_string(w.join("E.key")).unwrap();
    assert!(
        key_text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"),
        "{key_text}"
    );
    assert!(
        !stderr(&o).contains(pass) && !o.stdout.windows(pass.len()).any(|w| w == pass.as_bytes())
    );
    // openssl reads the encrypted key with the passphrase.
    openssl(&[
        "pkey",
        "-in",
        w.join("E.key").to_str().unwrap(),
        "-passin",
        &format!("pass:{pass}"),
        "-noout",
    ]);

    let spec = write_spec(
        w,
        "enc",
        &small_refs(&reg.host),
        None,
        &registry_settings(&reg),
    );
    let key = w.join("E.key");

    // A wrong passphrase fails at once (exit 2), naming the key, and writes nothing. The
    // spec points at a port where nothing listens: the key is read before any network work.
    let unreachable = write_spec(
        w,
        "nowhere",
        &["127.0.0.1:9/fixtures/base:1".to_string()],
        None,
        "    127.0.0.1:9: {plainHttp: true}\n",
    );
    let out = w.join("wrong.tar.zst");
    let wrong = "not-the-passphrase-42";
    let o = bundle_signed(w, &unreachable, &out, Some(&key), &[], Some(wrong), None);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("`{}`", key.display())) && err.contains("wrong passphrase"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
    assert!(!err.contains(wrong), "the passphrase leaked: {err}");
    assert!(!out.exists() && !beside(&out, ".manifest.json").exists());
    assert!(
        !listing(w).iter().any(|f| f.starts_with(".airlock-")),
        "{:?}",
        listing(w)
    );

    // No passphrase at all: exit 2 with the hint.
    let o = bundle_signed(w, &unreachable, &out, Some(&key), &[], None, None);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no passphrase was given"),
        "{}",
        stderr(&o)
    );

    // Both stdin readers at once is a usage error.
    let o = bundle_signed(
        w,
        &unreachable,
        &out,
        Some(&key),
        &["--passphrase-stdin", "--username", "u", "--password-stdin"],
        None,
        Some("x\n"),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cannot both read standard input"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());

    // The right passphrase, from the environment and from standard input.
    let from_env = w.join("env.tar.zst");
    let o = bundle_signed(w, &spec, &from_env, Some(&key), &[], Some(pass), None);
    assert!(o.status.success(), "bundle failed: {}", stderr(&o));
    let from_stdin = w.join("stdin.tar.zst");
    let o = bundle_signed(
        w,
        &spec,
        &from_stdin,
        Some(&key),
        &["--passphrase-stdin"],
        None,
        Some(&format!("{pass}\n")),
    );
    assert!(o.status.success(), "bundle failed: {}", stderr(&o));
    for out in [&from_env, &from_stdin] {
        let (ok, said) = openssl_verify(
            &w.join("E.pub"),
            &beside(out, ".manifest.json"),
            &beside(out, ".manifest.json.sig"),
        );
        assert!(ok && said == "Verified OK", "openssl said: {said}");
        let bytes = std::fs::read(out).unwrap();
        assert!(
            !bytes.windows(pass.len()).any(|w| w == pass.as_bytes()),
            "passphrase in the bundle"
        );
    }
}

#[test]
fn key_generate_needs_a_passphrase_source_and_never_overwrites() {
    let work = workdir();
    let w = work.path();

    let o = key_generate(w, "K", &[], None);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("--passphrase-stdin")
            && err.contains("--no-passphrase")
            && err.contains("hint:"),
        "{err}"
    );
    assert!(!w.join("K.key").exists() && !w.join("K.pub").exists());

    let o = key_generate(w, "K", &["--passphrase-stdin", "--no-passphrase"], None);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));

    let mut cmd = airlock_cmd(w);
    cmd.args(["key", "generate", "--passphrase-stdin", "--out"])
        .arg(w.join("K"));
    let o = run(cmd, Some("from stdin\n"));
    assert!(o.status.success(), "{}", stderr(&o));
    let key = std::fs::read(w.join("K.key")).unwrap();
    let public = std::fs::read(w.join("K.pub")).unwrap();
    openssl(&[
        "pkey",
        "-in",
        w.join("K.key").to_str().unwrap(),
        "-passin",
        "pass:from stdin",
        "-noout",
    ]);

    let o = key_generate(w, "K", &["--no-passphrase"], None);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("refusing to overwrite") && err.contains("K.key") && err.contains("K.pub"),
        "{err}"
    );
    assert_eq!(std::fs::read(w.join("K.key")).unwrap(), key);
    assert_eq!(std::fs::read(w.join("K.pub")).unwrap(), public);
}

#[test]
fn two_signed_bundles_of_one_spec_are_identical() {
    let reg = registry(false, Auth::None);
    let work = workdir();
    let w = work.path();
    let o = key_generate(w, "K", &["--no-passphrase"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let refs = small_refs(&reg.host);
    let key = w.join("K.key");

    let mut outs = Vec::new();
    for (dir, jobs) in [("one", "1"), ("two", "16")] {
        let d = w.join(dir);
        std::fs::create_dir(&d).unwrap();
        let spec = write_spec(&d, "repro", &refs, None, &registry_settings(&reg));
        let out = d.join("repro.tar.zst");
        let o = bundle_signed(&d, &spec, &out, Some(&key), &["--jobs", jobs], None, None);
        assert!(o.status.success(), "bundle failed: {}", stderr(&o));
        outs.push(out);
    }
    let (a, b) = (
        std::fs::read(&outs[0]).unwrap(),
        std::fs::read(&outs[1]).unwrap(),
    );
    assert!(
        a == b,
        "two signed bundles differ ({} vs {} bytes)",
        a.len(),
        b.len()
    );
    assert_eq!(
        std::fs::read(beside(&outs[0], ".manifest.json.sig")).unwrap(),
        std::fs::read(beside(&outs[1], ".manifest.json.sig")).unwrap()
    );
}

#[test]
fn a_key_made_by_openssl_signs_a_bundle_that_openssl_verifies() {
    let reg = registry(false, Auth::None);
    let work = workdir();
    let w = work.path();
    let key = w.join("o.key");
    let public = w.join("o.pub");
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        key.to_str().unwrap(),
    ]);
    openssl(&[
        "pkey",
        "-in",
        key.to_str().unwrap(),
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);

    let spec = write_spec(
        w,
        "ossl",
        &small_refs(&reg.host),
        None,
        &registry_settings(&reg),
    );
    let out = w.join("ossl.tar.zst");
    let o = bundle_signed(w, &spec, &out, Some(&key), &[], None, None);
    assert!(o.status.success(), "bundle failed: {}", stderr(&o));
    let extracted = w.join("x");
    std::fs::create_dir(&extracted).unwrap();
    let (manifest, sig) = extract_signed(&out, &extracted);
    let (ok, said) = openssl_verify(&public, &manifest, &sig);
    assert!(ok && said == "Verified OK", "openssl said: {said}");
}

#[test]
fn an_unsigned_bundle_has_the_manifest_beside_it_and_no_signature() {
    let reg = registry(false, Auth::None);
    let work = workdir();
    let w = work.path();
    let spec = write_spec(
        w,
        "plain",
        &small_refs(&reg.host),
        None,
        &registry_settings(&reg),
    );
    let out = w.join("plain.tar.zst");
    // A stale signature from an earlier signed run must not survive next to a new manifest.
    std::fs::write(beside(&out, ".manifest.json.sig"), "stale").unwrap();
    let o = bundle_signed(w, &spec, &out, None, &[], None, None);
    assert!(o.status.success(), "bundle failed: {}", stderr(&o));
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(summary["signedBy"].is_null(), "{summary}");
    let tar = decompress(&out);
    let names: Vec<String> = tar_entries(&tar).into_iter().map(|(n, _)| n).collect();
    assert!(!names.iter().any(|n| n == SIGNATURE), "{names:?}");
    assert_eq!(
        std::fs::read(beside(&out, ".manifest.json")).unwrap(),
        tar_read(&tar, MANIFEST)
    );
    assert!(!beside(&out, ".manifest.json.sig").exists());
}
