//! `airlock serve` (issue 7): bundles served as a read-only registry, pulled by skopeo and
//! containerd (directly and through a `hosts.toml` mirror); a corrupted layer refused while
//! the rest is served; a tampered manifest refused at start-up; the read-only API's errors,
//! names and ranges.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use airlock_testkit::fixtures::FixtureImage;
use airlock_testkit::{Auth, Containerd};
use serde_json::Value;

use crate::support::*;
use crate::verify::key_pair;

/// Canonical host of the fixture images in the bundles: a name with no port, reached through
/// a mirror (the fixture registry) when bundling, as a real upstream would be.
const UPSTREAM: &str = "fixtures.test";

/// A signed bundle of fixture images named `fixtures.test/fixtures/…`, plus
/// `registry.k8s.io/pause:3.9` (bundled from a mirror).
struct Bundle {
    work: tempfile::TempDir,
    file: PathBuf,
    public: PathBuf,
    images: Vec<FixtureImage>,
}

fn make_bundle(with_big: bool) -> Bundle {
    make_bundle_of(
        workdir(),
        "serve",
        &|i| with_big || i != "fixtures/big",
        true,
    )
}

/// A bundle in `work` of the fixture images `keep` accepts, and pause when `pause`.
fn make_bundle_of(
    work: tempfile::TempDir,
    name: &str,
    keep: &dyn Fn(&str) -> bool,
    pause: bool,
) -> Bundle {
    let (key, public) = if work.path().join("signer.key").exists() {
        (
            work.path().join("signer.key"),
            work.path().join("signer.pub"),
        )
    } else {
        key_pair(work.path(), "signer")
    };
    let reg = registry(false, Auth::None);
    let set = fixture_set();
    let images: Vec<FixtureImage> = fixture_images(&set)
        .into_iter()
        .filter(|i| keep(&i.repository))
        .cloned()
        .collect();
    let mut names = Vec::new();
    for i in &images {
        for t in &i.tags {
            names.push(format!("{UPSTREAM}/{}:{t}", i.repository));
        }
    }
    if pause {
        names.push("registry.k8s.io/pause:3.9".into());
    }
    let registries = format!(
        "    {UPSTREAM}: {{mirrors: [{h}]}}\n    registry.k8s.io: {{mirrors: [{h}/k8s]}}\n    {h}: {{plainHttp: true}}\n",
        h = reg.host
    );
    let spec = write_spec(work.path(), name, &names, None, &registries);
    let file = work.path().join(format!("{name}.tar.zst"));
    bundle_signed_ok(work.path(), &key, &spec, &file);
    Bundle {
        work,
        file,
        public,
        images,
    }
}

/// A running `airlock serve`; stopped with SIGTERM (or killed) when dropped.
pub struct Served {
    child: Option<Child>,
    pub port: u16,
    log: PathBuf,
    /// The CA of a TLS listener.
    ca: Option<PathBuf>,
}

impl Served {
    /// `airlock serve BUNDLES --key KEY --listen 127.0.0.1:PORT EXTRA…`, ready when `/v2/`
    /// answers; an empty `KEY` serves with `--insecure-skip-signature`.
    pub fn start(work: &Path, bundles: &[&Path], key: &Path, extra: &[&str]) -> Served {
        Served::start_with(work, bundles, key, extra, None)
    }

    /// Like [`Served::start`]; with `ca`, the listener is TLS (`extra` names the certificate).
    pub fn start_with(
        work: &Path,
        bundles: &[&Path],
        key: &Path,
        extra: &[&str],
        ca: Option<&Path>,
    ) -> Served {
        let mut last = String::new();
        // The port may be taken between `free_port` and the bind: try a few.
        for attempt in 0..3 {
            let port = airlock_testkit::free_port();
            let log = work.join(format!("serve-{port}.log"));
            let mut cmd = airlock(&work.join("cache"));
            cmd.arg("serve").args(bundles);
            // No key: a bundle nobody vouched for (its manifest was edited on purpose).
            if key.as_os_str().is_empty() {
                cmd.arg("--insecure-skip-signature");
            } else {
                cmd.arg("--key").arg(key);
            }
            cmd.args(["--listen", &format!("127.0.0.1:{port}")])
                .args(extra)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap());
            let child = cmd.spawn().expect("spawn airlock serve");
            let mut s = Served {
                child: Some(child),
                port,
                log,
                ca: ca.map(Path::to_path_buf),
            };
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if let Some(st) = s.child.as_mut().unwrap().try_wait().unwrap() {
                    last = format!("airlock serve exited ({st}):\n{}", s.log());
                    s.child = None;
                    break;
                }
                if s.get("/v2/", &[]).status == 200 {
                    return s;
                }
                assert!(
                    Instant::now() < deadline,
                    "serve not ready in 60 s:\n{}",
                    s.log()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            if !last.contains("cannot listen") || attempt == 2 {
                break;
            }
        }
        panic!("{last}");
    }

    pub fn url(&self, path: &str) -> String {
        let scheme = if self.ca.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }

    /// `curl` of `path` on this server (trusting its CA).
    pub fn get(&self, path: &str, args: &[&str]) -> Resp {
        let mut all: Vec<&str> = args.to_vec();
        let ca = self.ca.as_ref().map(|c| c.to_string_lossy().into_owned());
        if let Some(ca) = &ca {
            all.extend(["--cacert", ca.as_str()]);
        }
        curl(&self.url(path), &all)
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then wait (at most 20 s) for the exit.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return Some(st);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A response as curl saw it.
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// curl's exit code (18: the body was cut short).
    pub exit: i32,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(400)])
            )
        })
    }

    /// The first error code of an OCI error envelope.
    fn code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

/// `curl -s -i URL ARGS…` (`-I` among `args` for HEAD).
pub fn curl(url: &str, args: &[&str]) -> Resp {
    let o = Command::new("curl")
        .args(["-s", "-i", "--max-time", "120"])
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .expect("run curl");
    let raw = o.stdout;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(raw.len(), |p| p + 4);
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Resp {
        status,
        headers,
        body: raw[split..].to_vec(),
        exit: o.status.code().unwrap_or(-1),
    }
}

fn sha256(data: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// `skopeo copy --all docker://REF dir:OUT`: the digest of the top manifest, or the error.
pub(crate) fn skopeo_pull(reference: &str, out: &Path) -> Result<String, String> {
    let o = Command::new("skopeo")
        .args(["copy", "--all", "--quiet", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("dir:{}", out.display()))
        .stdin(Stdio::null())
        .output()
        .expect("run skopeo (install it: `cargo xtask install`)");
    if !o.status.success() {
        return Err(String::from_utf8_lossy(&o.stderr).into_owned());
    }
    Ok(sha256_file(&out.join("manifest.json")))
}

/// The digest containerd recorded for `reference`.
fn ctr_digest(ctrd: &Containerd, reference: &str) -> Option<String> {
    let o = ctrd.ctr().args(["images", "ls"]).output().unwrap();
    String::from_utf8_lossy(&o.stdout).lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.first() == Some(&reference)).then(|| f[2].to_string())
    })
}

// ---- Must show 1: skopeo and containerd pull every fixture image ----

#[test]
fn skopeo_and_containerd_pull_every_fixture_image_from_serve() {
    let b = make_bundle(true);
    let mut served = Served::start(b.work.path(), &[&b.file], &b.public, &[]);
    let host = served.host();

    // Every image and tag by its canonical name, every platform, with skopeo checking every
    // blob digest; the top manifest keeps the bundle's digest (the Docker list too).
    for i in &b.images {
        for t in &i.tags {
            let r = format!("{host}/{UPSTREAM}/{}:{t}", i.repository);
            let out = b
                .work
                .path()
                .join(format!("pull-{}-{t}", i.repository.replace('/', "_")));
            let got = skopeo_pull(&r, &out).unwrap_or_else(|e| panic!("{r}: {e}"));
            assert_eq!(got, i.digest, "{r}");
        }
    }

    // containerd, plain HTTP, a manifest and an index.
    let ctrd = Containerd::start().expect("start containerd (`cargo xtask install`; needs root)");
    for repo in ["fixtures/base", "fixtures/multi"] {
        let i = b.images.iter().find(|i| i.repository == repo).unwrap();
        let r = format!("{host}/{UPSTREAM}/{repo}:1");
        let o = ctrd
            .ctr()
            .args(["images", "pull", "--plain-http", &r])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "ctr pull {r}: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            served.log()
        );
        assert_eq!(ctr_digest(&ctrd, &r).as_deref(), Some(i.digest.as_str()));
    }

    // registry.k8s.io/pause:3.9 through a hosts.toml mirror: containerd asks
    // `/v2/pause/manifests/3.9?ns=registry.k8s.io`.
    let pause = find(&fixture_set(), "k8s/pause").clone();
    let hosts = b.work.path().join("hosts");
    std::fs::create_dir_all(hosts.join("registry.k8s.io")).unwrap();
    std::fs::write(
        hosts.join("registry.k8s.io/hosts.toml"),
        format!(
            "server = \"https://registry.k8s.io\"\n\n[host.\"http://{host}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
        ),
    )
    .unwrap();
    let o = ctrd
        .ctr()
        .args(["images", "pull", "--hosts-dir"])
        .arg(&hosts)
        .arg("registry.k8s.io/pause:3.9")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "ctr pull through the mirror: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        served.log()
    );
    assert_eq!(
        ctr_digest(&ctrd, "registry.k8s.io/pause:3.9").as_deref(),
        Some(pause.digest.as_str())
    );
    let log = served.log();
    assert!(
        log.contains(" /v2/pause/manifests/3.9?ns=registry.k8s.io 200 "),
        "{log}"
    );
    // One access line per request: method, path, status, bytes, time.
    assert!(
        log.lines()
            .any(|l| l.contains(" GET /v2/") && l.contains(" 200 ") && l.ends_with("ms")),
        "{log}"
    );

    // SIGTERM: a clean exit.
    let st = served.stop().expect("was running");
    assert!(st.success(), "{st}\n{}", served.log());
}

// ---- Must show 3: a corrupted blob is refused, a tampered manifest stops the start ----

#[test]
fn a_corrupted_blob_is_refused_and_logged_while_the_rest_is_served() {
    let b = make_bundle(false);
    let set = fixture_set();
    let base = find(&set, "fixtures/base");
    let layer = base.manifests[0].layers[0].0.clone();
    let bad = b.work.path().join("corrupt.tar.zst");
    crate::load::corrupt_layer(&b.file, &layer, &bad);
    let served = Served::start(b.work.path(), &[&bad], &b.public, &[]);
    let url = served.url(&format!("/v2/{UPSTREAM}/fixtures/base/blobs/{layer}"));

    // The first read streams until the hash fails, then the connection is cut before the
    // blob's end (a small blob is hashed before its answer starts, and refused): never the
    // whole (bad) blob.
    let size = base.manifests[0].layers[0].1;
    let first = curl(&url, &[]);
    assert!(
        (first.status == 500 && first.code() == "BLOB_UNKNOWN")
            || (first.exit != 0 && (first.body.len() as u64) < size),
        "status {} exit {} body {} of {size}",
        first.status,
        first.exit,
        first.body.len()
    );
    // Later reads, whole or ranges: an error status with the OCI envelope, no bytes.
    for args in [&[][..], &["-H", "Range: bytes=0-99"][..]] {
        let r = curl(&url, args);
        assert_eq!(r.status, 500, "{args:?}");
        assert_eq!(r.code(), "BLOB_UNKNOWN");
        let msg = r.json()["errors"][0]["message"].to_string();
        assert!(
            msg.contains(&layer) && msg.contains("airlock verify"),
            "{msg}"
        );
    }
    let log = served.log();
    assert!(
        log.contains(&format!("error: blob `{layer}`")) && log.contains("signed manifest"),
        "{log}"
    );
    // Images that use the blob cannot be pulled; the others are served whole.
    let host = served.host();
    assert!(skopeo_pull(
        &format!("{host}/{UPSTREAM}/fixtures/app-a:1"),
        &b.work.path().join("a")
    )
    .is_err());
    let multi = find(&set, "fixtures/multi");
    let got = skopeo_pull(
        &format!("{host}/{UPSTREAM}/fixtures/multi:1"),
        &b.work.path().join("m"),
    )
    .unwrap();
    assert_eq!(got, multi.digest);
}

/// A copy of `bundle` whose `airlock/manifest.json` says `to` where it said `from` (same
/// length): the first frame is recompressed and the seek table updated, so only the
/// signature can tell.
fn tamper_manifest(bundle: &Path, from: &str, to: &str, out: &Path) {
    assert_eq!(from.len(), to.len());
    let file = std::fs::read(bundle).unwrap();
    let n = file.len();
    let count = u32::from_le_bytes(file[n - 9..n - 5].try_into().unwrap()) as usize;
    let table = n - 9 - 8 * count;
    let c = u32::from_le_bytes(file[table..table + 4].try_into().unwrap()) as usize;
    let mut content = zstd::decode_all(&file[..c]).unwrap();
    let at = content
        .windows(from.len())
        .position(|w| w == from.as_bytes())
        .expect("text in the manifest");
    content[at..at + to.len()].copy_from_slice(to.as_bytes());
    let frame = zstd::encode_all(&content[..], 3).unwrap();
    let mut new = frame.clone();
    new.extend_from_slice(&file[c..]);
    let at = table + frame.len() - c;
    new[at..at + 4].copy_from_slice(&(frame.len() as u32).to_le_bytes());
    std::fs::write(out, new).unwrap();
}

#[test]
fn a_tampered_manifest_or_a_wrong_key_stops_serve_from_starting() {
    let b = make_bundle(false);
    let tampered = b.work.path().join("tampered.tar.zst");
    // Another airlock version: valid JSON, same length, not what was signed.
    let version = format!("\"{}\"", env!("CARGO_PKG_VERSION"));
    let forged = format!("\"{}\"", "x".repeat(version.len() - 2));
    tamper_manifest(&b.file, &version, &forged, &tampered);
    let (_, other) = key_pair(b.work.path(), "other");
    let port = airlock_testkit::free_port().to_string();
    for (file, key, needle) in [
        (&tampered, &b.public, "does not verify"),
        (&b.file, &other, "does not verify"),
    ] {
        let mut cmd = airlock(&b.work.path().join("cache"));
        cmd.arg("serve")
            .arg(file)
            .arg("--key")
            .arg(key)
            .args(["--listen", &format!("127.0.0.1:{port}")]);
        let o = run(cmd, None);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{e}");
        assert!(e.contains(needle), "{e}");
        assert!(e.contains(&*file.to_string_lossy()), "{e}");
    }
    // A good bundle with a tampered one: nothing is served either.
    let mut cmd = airlock(&b.work.path().join("cache"));
    cmd.arg("serve")
        .arg(&b.file)
        .arg(&tampered)
        .arg("--key")
        .arg(&b.public)
        .args(["--listen", &format!("127.0.0.1:{port}")]);
    assert_eq!(run(cmd, None).status.code(), Some(2));

    // No key at all, and a non-loopback address without --allow-remote.
    let mut cmd = airlock(&b.work.path().join("cache"));
    cmd.arg("serve").arg(&b.file);
    let o = run(cmd, None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--insecure-skip-signature"));
    let mut cmd = airlock(&b.work.path().join("cache"));
    cmd.arg("serve")
        .arg(&b.file)
        .arg("--key")
        .arg(&b.public)
        .args(["--listen", "0.0.0.0:0"]);
    let o = run(cmd, None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--allow-remote"), "{}", stderr(&o));
}

// ---- The API: read-only, OCI errors, names, ranges ----

#[test]
fn the_api_is_read_only_with_oci_errors_names_and_ranges() {
    let b = make_bundle(false);
    let set = fixture_set();
    let base = find(&set, "fixtures/base");
    let served = Served::start(b.work.path(), &[&b.file], &b.public, &[]);
    let name = format!("{UPSTREAM}/fixtures/base");

    let r = curl(&served.url("/v2/"), &[]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("Docker-Distribution-API-Version"),
        Some("registry/2.0")
    );

    // Manifests by tag and by digest, GET and HEAD.
    for reference in ["1", base.digest.as_str()] {
        let url = served.url(&format!("/v2/{name}/manifests/{reference}"));
        let get = curl(&url, &[]);
        assert_eq!(get.status, 200);
        assert_eq!(sha256(&get.body), base.digest);
        assert_eq!(get.header("Content-Type"), Some(base.media_type.as_str()));
        assert_eq!(
            get.header("Docker-Content-Digest"),
            Some(base.digest.as_str())
        );
        let head = curl(&url, &["-I"]);
        assert_eq!(head.status, 200);
        assert!(head.body.is_empty());
        assert_eq!(
            head.header("Content-Length"),
            Some(get.body.len().to_string().as_str())
        );
        assert_eq!(
            head.header("Docker-Content-Digest"),
            Some(base.digest.as_str())
        );
    }

    // A layer: whole, then ranges (before and after it was verified).
    let (layer, size) = base.manifests[0].layers[0].clone();
    let blob_url = served.url(&format!("/v2/{name}/blobs/{layer}"));
    let app = find(&set, "fixtures/app-a");
    let (own, own_size) = app.manifests[0].layers[1].clone();
    let own_url = served.url(&format!("/v2/{UPSTREAM}/fixtures/app-a/blobs/{own}"));
    // A range of a blob nobody read yet: verified first, then the range.
    let r = curl(&own_url, &["-H", "Range: bytes=10-19"]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body.len(), 10);
    assert_eq!(
        r.header("Content-Range"),
        Some(format!("bytes 10-19/{own_size}").as_str())
    );
    let whole_own = curl(&own_url, &[]).body;
    assert_eq!(sha256(&whole_own), own);
    assert_eq!(r.body, whole_own[10..20]);

    let whole = curl(&blob_url, &[]);
    assert_eq!(whole.status, 200);
    assert_eq!(sha256(&whole.body), layer);
    assert_eq!(whole.body.len() as u64, size);
    for (range, start, end) in [
        ("bytes=0-0", 0, 1),
        (&*format!("bytes={}-", size - 5), size - 5, size),
        ("bytes=-7", size - 7, size),
    ] {
        let r = curl(&blob_url, &["-H", &format!("Range: {range}")]);
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(r.body, whole.body[start as usize..end as usize], "{range}");
        assert_eq!(
            r.header("Content-Range"),
            Some(format!("bytes {start}-{}/{size}", end - 1).as_str())
        );
    }
    let r = curl(&blob_url, &["-H", &format!("Range: bytes={size}-")]);
    assert_eq!(r.status, 416);
    let head = curl(&blob_url, &["-I"]);
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("Content-Length"),
        Some(size.to_string().as_str())
    );

    // tags/list and _catalog.
    let tags = curl(
        &served.url(&format!("/v2/{UPSTREAM}/fixtures/app-a/tags/list")),
        &[],
    )
    .json();
    assert_eq!(tags["tags"], serde_json::json!(["1", "latest"]));
    let catalog = curl(&served.url("/v2/_catalog"), &[]).json();
    let repos = catalog["repositories"].as_array().unwrap();
    assert!(repos.contains(&Value::from(name.as_str())), "{catalog}");
    assert!(
        repos.contains(&Value::from("registry.k8s.io/pause")),
        "{catalog}"
    );

    // containerd's mirror form: the repository is `ns` + `/` + the path.
    let r = curl(
        &served.url("/v2/fixtures/base/manifests/1?ns=fixtures.test"),
        &[],
    );
    assert_eq!(r.status, 200);
    assert_eq!(sha256(&r.body), base.digest);

    // Writes: 405 with the envelope.
    for (method, path) in [
        ("POST", format!("/v2/{name}/blobs/uploads/")),
        ("PUT", format!("/v2/{name}/manifests/1")),
        ("PATCH", format!("/v2/{name}/blobs/uploads/x")),
        ("DELETE", format!("/v2/{name}/manifests/1")),
        ("DELETE", format!("/v2/{name}/blobs/{layer}")),
    ] {
        let r = curl(&served.url(&path), &["-X", method]);
        assert_eq!(r.status, 405, "{method} {path}");
        assert_eq!(r.code(), "UNSUPPORTED", "{method} {path}");
    }

    // Unknown names, tags, blobs.
    let missing = format!("sha256:{}", "0".repeat(64));
    for (path, code) in [
        ("/v2/nope/manifests/1".to_string(), "NAME_UNKNOWN"),
        ("/v2/nope/tags/list".to_string(), "NAME_UNKNOWN"),
        (format!("/v2/{name}/manifests/9"), "MANIFEST_UNKNOWN"),
        (
            format!("/v2/{name}/manifests/{missing}"),
            "MANIFEST_UNKNOWN",
        ),
        (format!("/v2/{name}/blobs/{missing}"), "BLOB_UNKNOWN"),
        // A blob of another repository is not in this one.
        (format!("/v2/{name}/blobs/{own}"), "BLOB_UNKNOWN"),
    ] {
        let r = curl(&served.url(&path), &[]);
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.code(), code, "{path}");
    }
    drop(served);

    // --names drop-host: `HOST:PORT/fixtures/base`, `HOST:PORT/pause`.
    let served = Served::start(
        b.work.path(),
        &[&b.file],
        &b.public,
        &["--names", "drop-host"],
    );
    let got = skopeo_pull(
        &format!("{}/fixtures/base:1", served.host()),
        &b.work.path().join("drop"),
    )
    .unwrap();
    assert_eq!(got, base.digest);
    let r = curl(
        &served.url("/v2/pause/manifests/3.9?ns=registry.k8s.io"),
        &[],
    );
    assert_eq!(r.status, 200);
    let mut log = String::new();
    std::fs::File::open(&served.log)
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(log.contains("serving pause:3.9"), "{log}");
    drop(served);

    // TLS, with a private CA.
    let pki = airlock_testkit::Pki::generate(&b.work.path().join("pki")).unwrap();
    let (cert, key) = (
        pki.server_cert.to_string_lossy().into_owned(),
        pki.server_key.to_string_lossy().into_owned(),
    );
    let served = Served::start_with(
        b.work.path(),
        &[&b.file],
        &b.public,
        &["--tls-cert", &cert, "--tls-key", &key],
        Some(&pki.ca_cert),
    );
    let r = served.get(&format!("/v2/{name}/manifests/1"), &[]);
    assert_eq!(r.status, 200);
    assert_eq!(sha256(&r.body), base.digest);
    let r = served.get(&format!("/v2/{name}/blobs/{layer}"), &[]);
    assert_eq!(sha256(&r.body), layer);
}

// ---- Several bundles at once: a base and an update ----

#[test]
fn several_bundles_are_served_together() {
    let base = make_bundle_of(workdir(), "base", &|i| i == "fixtures/base", false);
    let Bundle { work, file, .. } = base;
    let update = make_bundle_of(work, "update", &|i| i == "fixtures/app-a", true);
    let served = Served::start(
        update.work.path(),
        &[&file, &update.file],
        &update.public,
        &[],
    );
    let set = fixture_set();
    let host = served.host();
    for (r, repo) in [
        (
            format!("{host}/{UPSTREAM}/fixtures/base:1"),
            "fixtures/base",
        ),
        (
            format!("{host}/{UPSTREAM}/fixtures/app-a:latest"),
            "fixtures/app-a",
        ),
        (format!("{host}/registry.k8s.io/pause:3.9"), "k8s/pause"),
    ] {
        let out = update.work.path().join(repo.replace('/', "_"));
        assert_eq!(
            skopeo_pull(&r, &out).unwrap_or_else(|e| panic!("{r}: {e}")),
            find(&set, repo).digest,
            "{r}"
        );
    }
    let catalog = served.get("/v2/_catalog", &[]).json();
    assert_eq!(
        catalog["repositories"],
        serde_json::json!([
            format!("{UPSTREAM}/fixtures/app-a"),
            format!("{UPSTREAM}/fixtures/base"),
            "registry.k8s.io/pause"
        ])
    );
}

// ---- Hardening: stalled clients, checks at start-up, blob bounds, pagination ----

/// A client that asks for `path` and never reads the answer.
fn stalled_client(port: u16, path: &str) -> std::net::TcpStream {
    use std::io::Write as _;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to serve");
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").unwrap();
    s.flush().unwrap();
    s
}

/// `curl` of `path`, timed; the answer must be `200` and come within `bound`.
fn answered_within(served: &Served, path: &str, bound: Duration, what: &str) -> Resp {
    let started = Instant::now();
    let r = curl(&served.url(path), &["--max-time", "60"]);
    let took = started.elapsed();
    eprintln!("{what}: `{path}` answered in {took:?}");
    assert_eq!(
        r.status,
        200,
        "{what}: `{path}` got status {} (curl exit {}) after {took:?}\n{}",
        r.status,
        r.exit,
        served.log()
    );
    assert!(
        took < bound,
        "{what}: `{path}` took {took:?} (bound {bound:?}) behind stalled clients\n{}",
        served.log()
    );
    r
}

// Regression (hardening: defect 5): four sockets that `GET` a large layer and never read
// kept every reading slot (a slot was held while the connection's socket did not drain), so a
// tiny layer of another repository got no answer until they left.
#[test]
fn clients_that_never_read_a_large_layer_do_not_starve_small_requests() {
    let b = make_bundle(true);
    let set = fixture_set();
    let big = find(&set, "fixtures/big");
    let (layer, size) = big.manifests[0].layers[0].clone();
    let pause = find(&set, "k8s/pause");
    let (tiny, tiny_size) = pause.manifests[0].layers[0].clone();
    let many = find(&set, "fixtures/many-layers");
    let (small, _) = many.manifests[0].layers[3].clone();
    let served = Served::start(b.work.path(), &[&b.file], &b.public, &[]);
    let big_path = format!("/v2/{UPSTREAM}/fixtures/big/blobs/{layer}");
    // Generous: a loaded 2-core machine answers these in milliseconds; the defect made them
    // wait for as long as the stalled clients stayed.
    let bound = Duration::from_secs(10);
    let check = |phase: &str| {
        // The default `--jobs` (4) and one more.
        let stalled: Vec<_> = (0..5)
            .map(|_| stalled_client(served.port, &big_path))
            .collect();
        // Let them fill every buffer between the bundle and their sockets.
        std::thread::sleep(Duration::from_secs(3));
        let r = answered_within(
            &served,
            &format!("/v2/registry.k8s.io/pause/blobs/{tiny}"),
            bound,
            phase,
        );
        assert_eq!(r.body.len() as u64, tiny_size);
        assert_eq!(sha256(&r.body), tiny);
        let r = answered_within(
            &served,
            &format!("/v2/{UPSTREAM}/fixtures/many-layers/blobs/{small}"),
            bound,
            phase,
        );
        assert_eq!(sha256(&r.body), small);
        let r = answered_within(
            &served,
            &format!("/v2/{UPSTREAM}/fixtures/big/manifests/1"),
            bound,
            phase,
        );
        assert_eq!(sha256(&r.body), big.digest);
        let (config, _) = &big.manifests[0].config;
        answered_within(
            &served,
            &format!("/v2/{UPSTREAM}/fixtures/big/blobs/{config}"),
            bound,
            phase,
        );
        answered_within(&served, "/v2/", bound, phase);
        drop(stalled);
    };
    // While the layer's first read and its checking pass run.
    check("first read");
    // The layer checked: it now streams without a check.
    let whole = curl(&served.url(&big_path), &[]);
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body.len() as u64, size);
    assert_eq!(sha256(&whole.body), layer);
    check("after the check");
}

// Regression (hardening: defect 5): a client that never read kept its connection (and what
// was queued for it) for as long as it stayed; a write the client accepts nothing of for
// `--write-timeout` seconds now ends the connection.
#[test]
fn a_client_that_stops_reading_is_disconnected_after_the_write_timeout() {
    use std::io::Read as _;
    let b = make_bundle(true);
    let set = fixture_set();
    let big = find(&set, "fixtures/big");
    let (layer, size) = big.manifests[0].layers[0].clone();
    let served = Served::start(
        b.work.path(),
        &[&b.file],
        &b.public,
        &["--write-timeout", "2"],
    );
    let mut s = stalled_client(
        served.port,
        &format!("/v2/{UPSTREAM}/fixtures/big/blobs/{layer}"),
    );
    // Long past the timeout: the server gave up on this client.
    std::thread::sleep(Duration::from_secs(8));
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut got = Vec::new();
    let end = s.read_to_end(&mut got);
    // The end of the stream (or a reset), not the 60 s read timeout.
    assert!(
        match &end {
            Ok(_) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        },
        "the connection was not closed: {end:?} after {} bytes\n{}",
        got.len(),
        served.log()
    );
    assert!(
        (got.len() as u64) < size,
        "got {} of {size} bytes: the connection was not cut",
        got.len()
    );
    let log = served.log();
    assert!(
        log.lines()
            .any(|l| l.contains(&layer) && l.contains(" 200 ") && l.ends_with(" aborted")),
        "{log}"
    );
    // A client that does read gets the whole layer.
    let whole = curl(
        &served.url(&format!("/v2/{UPSTREAM}/fixtures/big/blobs/{layer}")),
        &[],
    );
    assert_eq!(sha256(&whole.body), layer);
}

/// `airlock serve BUNDLE --insecure-skip-signature` (for bundles whose manifest was edited).
fn serve_unsigned(work: &Path, bundle: &Path) -> Served {
    Served::start_with(work, &[bundle], Path::new(""), &[], None)
}

// Regression (hardening: defect 6): a config changed in place (same size) was served with
// `200` and cut after 0 bytes, though start-up is said to check configs; the image is now
// left out at start-up with a warning naming the config.
#[test]
fn a_config_changed_in_place_is_found_at_start_up_and_its_image_not_served() {
    let b = make_bundle(false);
    let set = fixture_set();
    let base = find(&set, "fixtures/base");
    let (config, _) = base.manifests[0].config.clone();
    let bad = b.work.path().join("config.tar.zst");
    crate::load::corrupt_layer(&b.file, &config, &bad);
    let served = Served::start(b.work.path(), &[&bad], &b.public, &[]);
    let name = format!("{UPSTREAM}/fixtures/base");
    for path in [
        format!("/v2/{name}/blobs/{config}"),
        format!("/v2/{name}/manifests/1"),
    ] {
        let r = served.get(&path, &[]);
        assert_eq!(
            r.status,
            404,
            "{path}: never `200` then a cut (curl exit {}, {} bytes)",
            r.exit,
            r.body.len()
        );
    }
    let log = served.log();
    assert!(
        log.contains("warning: not serving it:") && log.contains(&config),
        "{log}"
    );
    // The other images are served.
    let multi = find(&set, "fixtures/multi");
    let got = skopeo_pull(
        &format!("{}/{UPSTREAM}/fixtures/multi:1", served.host()),
        &b.work.path().join("m"),
    )
    .unwrap();
    assert_eq!(got, multi.digest);
}

/// A copy of `bundle` whose (unsigned) manifest lists `digest` with `size`: its record's
/// size digits replaced by as many nines.
fn overstate_size(bundle: &Path, digest: &str, size: u64, out: &Path) -> u64 {
    let file = std::fs::read(bundle).unwrap();
    let tar = zstd::decode_all(&file[..]).unwrap();
    let text = String::from_utf8_lossy(&tar[..tar.len().min(1 << 20)]).into_owned();
    let at = text
        .find(&format!("\"digest\": \"{digest}\""))
        .expect("the blob's record in the manifest");
    let size_text = format!("\"size\": {size}");
    let rel = text[at..].find(&size_text).expect("its size");
    let from = &text[at..at + rel + size_text.len()];
    let nines = "9".repeat(size.to_string().len());
    let to = format!("{}\"size\": {nines}", &from[..from.len() - size_text.len()]);
    tamper_manifest(bundle, from, &to, out);
    nines.parse().unwrap()
}

// Regression (hardening: defect 7): a manifest that states a wrong size for a blob made serve
// answer past the blob's end (`Content-Length` from the manifest, then the next tar header);
// such an image is now left out at start-up, and no byte outside an entry is ever sent.
#[test]
fn a_blob_whose_signed_size_disagrees_with_its_entry_is_never_served() {
    let b = make_bundle(false);
    let set = fixture_set();
    let pause = find(&set, "k8s/pause");
    let (tiny, tiny_size) = pause.manifests[0].layers[0].clone();
    let base = find(&set, "fixtures/base");
    let (layer, size) = base.manifests[0].layers[0].clone();
    let edited = b.work.path().join("sizes.tar.zst");
    let between = b.work.path().join("sizes-1.tar.zst");
    let said = overstate_size(&b.file, &tiny, tiny_size, &between);
    let said_big = overstate_size(&between, &layer, size, &edited);
    let served = serve_unsigned(b.work.path(), &edited);
    for path in [
        format!("/v2/registry.k8s.io/pause/blobs/{tiny}"),
        format!("/v2/{UPSTREAM}/fixtures/base/blobs/{layer}"),
        format!("/v2/{UPSTREAM}/fixtures/app-a/blobs/{layer}"),
    ] {
        for args in [&[][..], &["-I"][..], &["-H", "Range: bytes=0-"][..]] {
            let r = served.get(&path, args);
            assert_eq!(
                r.status,
                404,
                "{path} {args:?}: Content-Length {:?}, {} bytes",
                r.header("Content-Length"),
                r.body.len()
            );
            assert!(
                r.body.len() < 400,
                "{path} {args:?}: {} bytes",
                r.body.len()
            );
        }
    }
    let log = served.log();
    for (digest, real, said) in [(&tiny, tiny_size, said), (&layer, size, said_big)] {
        assert!(
            log.lines().any(|l| l.contains("not serving it")
                && l.contains(digest.as_str())
                && l.contains(&format!("holds {real} bytes"))
                && l.contains(&said.to_string())),
            "{log}"
        );
    }
    // The images whose sizes hold are served.
    let multi = find(&set, "fixtures/multi");
    let got = skopeo_pull(
        &format!("{}/{UPSTREAM}/fixtures/multi:1", served.host()),
        &b.work.path().join("m"),
    )
    .unwrap();
    assert_eq!(got, multi.digest);
}

// Regression (hardening: defect 8): `_catalog?n=abc` and `n=-1` returned the whole list; an
// `n` that is not a number from 0 to 1000 is now `400 PAGINATION_NUMBER_INVALID` (as
// distribution answers for more than 1000), `n=0` an empty page, and a cut list says where
// the next page starts (`Link`).
#[test]
fn list_pagination_refuses_a_bad_n_and_links_the_next_page() {
    let b = make_bundle(false);
    let served = Served::start(b.work.path(), &[&b.file], &b.public, &[]);
    let tags = format!("/v2/{UPSTREAM}/fixtures/app-a/tags/list");
    for list in ["/v2/_catalog", tags.as_str()] {
        for n in ["abc", "-1", "1001", "99999999999999999999", "1.5", "+2"] {
            let r = served.get(&format!("{list}?n={n}"), &[]);
            assert_eq!(r.status, 400, "{list}?n={n}");
            assert_eq!(r.code(), "PAGINATION_NUMBER_INVALID", "{list}?n={n}");
        }
        let field = if list == "/v2/_catalog" {
            "repositories"
        } else {
            "tags"
        };
        let all = served.get(list, &[]).json()[field].clone();
        let all = all.as_array().unwrap();
        assert!(all.len() >= 2, "{all:?}");
        let zero = served.get(&format!("{list}?n=0"), &[]);
        assert_eq!(zero.status, 200);
        assert_eq!(zero.json()[field], serde_json::json!([]));
        let first = served.get(&format!("{list}?n=1"), &[]);
        assert_eq!(first.status, 200);
        assert_eq!(first.json()[field], serde_json::json!([all[0]]));
        let link = first.header("Link").unwrap_or_default().to_string();
        assert!(
            link.starts_with(&format!("<{list}?last=")) && link.ends_with(">; rel=\"next\""),
            "{link}"
        );
        let next = &link[1..link.find('>').unwrap()];
        let second = served.get(next, &[]);
        assert_eq!(second.json()[field], serde_json::json!([all[1]]), "{next}");
        // Query values are percent-decoded, as clients' URL libraries encode them.
        let encoded = served.get(
            &format!(
                "{list}?n=1&last={}",
                all[0].as_str().unwrap().replace('/', "%2F")
            ),
            &[],
        );
        assert_eq!(encoded.json()[field], serde_json::json!([all[1]]));
        let whole = served.get(&format!("{list}?n=1000"), &[]);
        assert_eq!(whole.json()[field].as_array().unwrap(), all);
        assert_eq!(whole.header("Link"), None);
    }
}

/// `-v` shows the debug lines of serve's own crate (here: a failed TLS handshake), not only
/// those of the binary and the online side.
#[test]
fn verbose_shows_serves_own_debug_lines() {
    let b = make_bundle_of(workdir(), "verbose", &|i| i == "fixtures/base", false);
    let pki = airlock_testkit::Pki::generate(&b.work.path().join("pki")).unwrap();
    let (cert, key) = (
        pki.server_cert.to_string_lossy().into_owned(),
        pki.server_key.to_string_lossy().into_owned(),
    );
    let served = Served::start_with(
        b.work.path(),
        &[&b.file],
        &b.public,
        &["-v", "--tls-cert", &cert, "--tls-key", &key],
        Some(&pki.ca_cert),
    );
    // Plain HTTP to the TLS listener: the handshake fails, which serve logs at debug level.
    let _ = curl(&format!("http://127.0.0.1:{}/v2/", served.port), &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !served.log().contains("TLS handshake failed") {
        assert!(
            Instant::now() < deadline,
            "no debug line of serve with -v:\n{}",
            served.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(served.log().contains("DEBUG"), "{}", served.log());
}
