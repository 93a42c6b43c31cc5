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

/// Two versions of the fixture spec on a writable registry of their own: the setup of the
/// delta tests.
///
/// v1 names every fixture image but [`DeltaVersions::new_image`]; v2 names v1's images plus
/// that one, and [`DeltaVersions::moved_tag`] is moved to a new digest (an image of its own:
/// a new layer, config and manifest) by [`DeltaVersions::move_tag`], which a test calls after
/// it bundled v1.
pub struct DeltaVersions {
    /// The source registry (plain HTTP, no auth, writable), holding every fixture image and
    /// the image the moved tag moves to.
    pub registry: Registry,
    /// Spec v1 (`NAME.yaml` in the directory given).
    pub v1: PathBuf,
    /// Spec v2.
    pub v2: PathBuf,
    /// The reference only v2 names (`HOST/fixtures/app-b:1`).
    pub new_image: String,
    /// The reference both name whose digest moves (`HOST/fixtures/app-a:latest`).
    pub moved_tag: String,
    /// Its digest in v1.
    pub moved_from: String,
    /// Its digest in v2 (after [`DeltaVersions::move_tag`]).
    pub moved_to: String,
    /// Where the moved tag's new content comes from on the registry.
    moved_source: String,
}

/// Starts a writable registry with the fixtures (a copy of the cached storage) plus one more
/// image, and writes specs `v1.yaml` and `v2.yaml` into `dir` (see [`DeltaVersions`]).
pub fn delta_versions(dir: &Path) -> DeltaVersions {
    let storage = dir.join("registry-storage");
    let cached = fixtures::registry_storage().expect("fixture registry storage");
    let st = Command::new("cp")
        .arg("-a")
        .arg(&cached)
        .arg(&storage)
        .status()
        .expect("run cp");
    assert!(st.success(), "copying the fixture registry storage failed");
    let registry = Registry::start(airlock_testkit::RegistryOptions {
        storage: Some(storage),
        ..Default::default()
    })
    .expect("start the registry (is docker-registry installed? run `cargo xtask install`)");
    let next = fixtures::many_images(1).expect("the many-images corpus");
    registry
        .push_fixtures(&next, "delta", &[])
        .expect("push the image the moved tag moves to");
    let moved_source = next.images[0].reference(&format!("{}/delta", registry.host));
    let set = fixture_set();
    let new_repo = "fixtures/app-b";
    let v1_images: Vec<_> = fixture_images(&set)
        .into_iter()
        .filter(|i| i.repository != new_repo)
        .collect();
    let v1_refs = refs(&registry.host, &v1_images);
    let new_image = find(&set, new_repo).reference(&registry.host);
    let mut v2_refs = v1_refs.clone();
    v2_refs.push(new_image.clone());
    let settings = registry_settings(&registry);
    let v1 = write_spec(dir, "v1", &v1_refs, None, &settings);
    let v2 = write_spec(dir, "v2", &v2_refs, None, &settings);
    let app_a = find(&set, "fixtures/app-a");
    assert!(app_a.tags.iter().any(|t| t == "latest"));
    DeltaVersions {
        moved_tag: format!("{}/fixtures/app-a:latest", registry.host),
        moved_from: app_a.digest.clone(),
        moved_to: next.images[0].digest.clone(),
        moved_source,
        new_image,
        v1,
        v2,
        registry,
    }
}

impl DeltaVersions {
    /// Moves [`DeltaVersions::moved_tag`] to [`DeltaVersions::moved_to`] with skopeo (which
    /// keeps the manifest bytes).
    pub fn move_tag(&self) {
        let o = Command::new("skopeo")
            .args([
                "copy",
                "--quiet",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
            ])
            .arg(format!("docker://{}", self.moved_source))
            .arg(format!("docker://{}", self.moved_tag))
            .output()
            .expect("run skopeo (install it: `cargo xtask install`)");
        assert!(
            o.status.success(),
            "skopeo copy {} {}: {}",
            self.moved_source,
            self.moved_tag,
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// `airlock bundle [ARGS] -o OUT SPEC` with `WORK/cache`; the run must succeed. Returns
    /// its standard output.
    pub fn bundle(&self, work: &Path, spec: &Path, out: &Path, args: &[&str]) -> Vec<u8> {
        let mut cmd = airlock(&work.join("cache"));
        cmd.arg("bundle").args(args).arg("-o").arg(out).arg(spec);
        let o = run(cmd, None);
        assert!(
            o.status.success(),
            "bundle {} failed: {}",
            spec.display(),
            stderr(&o)
        );
        o.stdout
    }
}
