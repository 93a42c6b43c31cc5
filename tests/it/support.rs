//! Helpers shared by the end-to-end tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use airlock_testkit::fixtures::{self, FixtureImage, FixtureSet};
use airlock_testkit::{Auth, Registry};
use anyhow::{bail, Context, Result};
use sha2::{Digest as _, Sha256};

/// The `airlock` binary built beside this test (`cargo xtask ci` builds it first).
pub fn airlock_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("AIRLOCK_BIN") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/it-<hash> -> target/<profile>/airlock
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile directory");
    let bin = dir.join("airlock");
    assert!(
        bin.exists(),
        "`{}` does not exist: run `cargo build -p airlock` first (`cargo xtask ci` does)",
        bin.display()
    );
    bin
}

/// An `airlock` command with a private cache and no ambient credentials.
pub fn airlock(cache: &Path) -> Command {
    let mut c = Command::new(airlock_bin());
    c.env("AIRLOCK_CACHE_DIR", cache)
        .env_remove("REGISTRY_AUTH_FILE")
        .env("DOCKER_CONFIG", cache.join("no-docker-config"))
        .env_remove("SOURCE_DATE_EPOCH")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    c
}

/// Runs a command, feeding `stdin`, and returns its output.
pub fn run(mut cmd: Command, stdin: Option<&str>) -> Output {
    use std::io::Write;
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    child.wait_with_output().expect("wait")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A test's working directory.
pub fn workdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("airlock-e2e-")
        .tempdir()
        .expect("tempdir")
}

/// Every (image, tag) reference of the fixture set on a registry.
pub fn refs(host: &str, images: &[&FixtureImage]) -> Vec<String> {
    let mut out = Vec::new();
    for i in images {
        for t in &i.tags {
            out.push(format!("{host}/{}:{t}", i.repository));
        }
    }
    out
}

/// The fixture images under `fixtures/` (the bundle's test set).
pub fn fixture_images(set: &FixtureSet) -> Vec<&FixtureImage> {
    set.images
        .iter()
        .filter(|i| i.repository.starts_with("fixtures/"))
        .collect()
}

/// A few small fixture images (base, app-a, multi: no 100 MiB one), as references on `host`.
pub fn small_refs(host: &str) -> Vec<String> {
    let set = fixture_set();
    let images: Vec<_> = fixture_images(&set)
        .into_iter()
        .filter(|i| ["fixtures/base", "fixtures/app-a", "fixtures/multi"].contains(&&*i.repository))
        .collect();
    assert_eq!(images.len(), 3, "fixture images missing");
    refs(host, &images)
}

pub fn fixture_set() -> FixtureSet {
    fixtures::fixture_set().expect("fixture set (run `cargo xtask fixtures` to see why it fails)")
}

pub fn find<'a>(set: &'a FixtureSet, repo: &str) -> &'a FixtureImage {
    set.images
        .iter()
        .find(|i| i.repository == repo)
        .unwrap_or_else(|| panic!("fixture `{repo}` is missing"))
}

/// A registry of the given variant serving the fixtures.
pub fn registry(tls: bool, auth: Auth) -> Registry {
    Registry::with_fixtures(tls, auth)
        .expect("start the registry (is docker-registry installed? run `cargo xtask install`)")
}

/// The `registries:` block for a registry.
pub fn registry_settings(reg: &Registry) -> String {
    match &reg.ca_file {
        Some(ca) => format!("    {}: {{caFile: {}}}\n", reg.host, ca.display()),
        None => format!("    {}: {{plainHttp: true}}\n", reg.host),
    }
}

/// Writes a YAML spec.
pub fn write_spec(
    dir: &Path,
    name: &str,
    images: &[String],
    platforms: Option<&str>,
    registries: &str,
) -> PathBuf {
    let mut s =
        format!("apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {{name: {name}}}\nspec:\n");
    if let Some(p) = platforms {
        s.push_str(&format!("  platforms: {p}\n"));
    }
    s.push_str("  images:\n");
    for i in images {
        s.push_str(&format!("    - {i}\n"));
    }
    if !registries.is_empty() {
        s.push_str("  registries:\n");
        s.push_str(registries);
    }
    let p = dir.join(format!("{name}.yaml"));
    std::fs::write(&p, s).unwrap();
    p
}

/// `zstd -d` with the stock tool.
pub fn decompress(bundle: &Path) -> PathBuf {
    let tar = bundle.with_extension("");
    let st = Command::new("zstd")
        .args(["-q", "-f", "-d"])
        .arg(bundle)
        .arg("-o")
        .arg(&tar)
        .status()
        .expect("run zstd (install it: `cargo xtask install`)");
    assert!(st.success(), "zstd -d {} failed", bundle.display());
    tar
}

/// sha256 of a file as "sha256:<hex>".
pub fn sha256_file(p: &Path) -> String {
    let data = std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    format!("sha256:{}", hex::encode(Sha256::digest(&data)))
}

/// Copies `reference` (all platforms) out of an OCI archive with skopeo into a `dir:` and
/// returns the digest of the top manifest skopeo wrote; skopeo checks every blob digest.
pub fn skopeo_digest_from_archive(tar: &Path, reference: &str, out: &Path) -> Result<String> {
    let o = Command::new("skopeo")
        .args(["copy", "--all", "--quiet"])
        .arg(format!("oci-archive:{}:{reference}", tar.display()))
        .arg(format!("dir:{}", out.display()))
        .output()
        .context("run skopeo (install it: `cargo xtask install`)")?;
    if !o.status.success() {
        bail!(
            "skopeo copy of `{reference}` failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok(sha256_file(&out.join("manifest.json")))
}

/// The names and blob paths of a tar, in order.
pub fn tar_entries(tar: &Path) -> Vec<(String, u64)> {
    let f = std::fs::File::open(tar).unwrap();
    let mut a = tar::Archive::new(f);
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.path().unwrap().to_string_lossy().into_owned(),
                e.header().size().unwrap(),
            )
        })
        .collect()
}

/// Reads one entry of a tar.
pub fn tar_read(tar: &Path, name: &str) -> Vec<u8> {
    use std::io::Read;
    let f = std::fs::File::open(tar).unwrap();
    let mut a = tar::Archive::new(f);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_string_lossy() == name {
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            return v;
        }
    }
    panic!("no entry `{name}` in {}", tar.display());
}

/// Files left in a directory (to check that failed runs leave nothing behind).
pub fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// `airlock bundle --sign-key KEY -o OUT SPEC` with `WORK/cache`; the run must succeed.
pub fn bundle_signed_ok(work: &Path, key: &Path, spec: &Path, out: &Path) {
    let mut cmd = airlock(&work.join("cache"));
    cmd.args(["bundle", "--quiet", "--sign-key"])
        .arg(key)
        .arg("-o")
        .arg(out)
        .arg(spec);
    let o = run(cmd, None);
    assert!(o.status.success(), "bundle failed: {}", stderr(&o));
}
