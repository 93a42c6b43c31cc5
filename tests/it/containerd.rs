//! `airlock load --to containerd://…` (issue 5): bundles loaded into a private containerd 1.6
//! (Debian's, with its own root, state and socket), checked with `ctr`: image records with the
//! bundle's digests, `ctr images check` complete, the unpacked snapshot chain, and a container
//! run from an imported image; a rerun and an interrupted import; a corrupted layer; and the
//! errors that stop a load before anything is written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use airlock_testkit::{Auth, Containerd, Registry, RegistryOptions};
use serde_json::Value;

use crate::load::{
    assert_the_base_layer_failed_its_two_images, corrupt_layer, make_bundle, Bundle,
};
use crate::support::*;

const NS: &str = "k8s.io";
/// What the runnable fixture's entrypoint prints.
const RAN: &str = "hello from an image airlock loaded";

fn containerd() -> Containerd {
    Containerd::start()
        .expect("start containerd (needs root; is it installed? run `cargo xtask install`)")
}

/// `airlock load BUNDLE --key PUB --to containerd://SOCKET?namespace=k8s.io --json` + `extra`.
fn load_into(bundle: &Path, public: &Path, socket: &Path, extra: &[&str]) -> (Output, Value) {
    let cache = bundle.parent().unwrap().join("cache");
    let mut cmd = airlock(&cache);
    cmd.arg("load")
        .arg(bundle)
        .arg("--key")
        .arg(public)
        .arg("--to")
        .arg(format!("containerd://{}?namespace={NS}", socket.display()))
        .arg("--json")
        .args(extra);
    let o = run(cmd, None);
    (o.clone(), json_of(&o))
}

fn json_of(o: &Output) -> Value {
    let text = String::from_utf8_lossy(&o.stdout);
    serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{text}\nstderr:\n{}",
            stderr(o)
        )
    })
}

/// `ctr -n k8s.io ARGS`, which must succeed; its stdout.
#[track_caller]
fn ctr(ctrd: &Containerd, args: &[&str]) -> String {
    let o = ctrd
        .ctr()
        .args(["-n", NS])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ctr");
    assert!(
        o.status.success(),
        "ctr {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `ctr images ls`: name to digest.
fn images(ctrd: &Containerd) -> BTreeMap<String, String> {
    ctr(ctrd, &["images", "ls"])
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((f.first()?.to_string(), f.get(2)?.to_string()))
        })
        .collect()
}

/// `ctr images check`: name to the rest of its line (`… complete (N/N) …`).
fn check(ctrd: &Containerd) -> BTreeMap<String, String> {
    ctr(ctrd, &["images", "check"])
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (name, rest) = l.split_once(char::is_whitespace)?;
            Some((name.to_string(), rest.trim().to_string()))
        })
        .collect()
}

/// Every record `airlock load` gives a bundle of fixture images, with their digests.
fn expected_records(b: &Bundle) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for i in &b.images {
        for t in &i.tags {
            out.insert(
                format!("{}/{}:{t}", b.source_host, i.repository),
                i.digest.clone(),
            );
        }
    }
    out
}

#[track_caller]
fn assert_loaded(ctrd: &Containerd, expected: &BTreeMap<String, String>) {
    let listed = images(ctrd);
    let checked = check(ctrd);
    for (name, digest) in expected {
        assert_eq!(
            listed.get(name),
            Some(digest),
            "`ctr images ls` for {name}: {listed:#?}"
        );
        let line = checked
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing from `ctr images check`"));
        assert!(line.contains("complete"), "{name}: {line}");
    }
}

/// A one-layer image whose entrypoint is a static busybox printing [`RAN`], pushed into a
/// fresh registry with skopeo; returns the registry (keep it alive) and the reference.
fn runnable_image(work: &Path) -> (Registry, String) {
    let busybox = std::fs::read("/bin/busybox")
        .expect("read /bin/busybox (install busybox-static: `cargo xtask install`)");
    let mut layer = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    dir.set_mtime(0);
    dir.set_cksum();
    layer.append_data(&mut dir, "bin/", &[][..]).unwrap();
    let mut file = tar::Header::new_gnu();
    file.set_mode(0o755);
    file.set_size(busybox.len() as u64);
    file.set_mtime(0);
    file.set_cksum();
    layer
        .append_data(&mut file, "bin/busybox", &busybox[..])
        .unwrap();
    let layer = layer.into_inner().unwrap();
    let sha = |b: &[u8]| {
        use sha2::Digest as _;
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(b)))
    };
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": ["/bin/busybox", "echo", RAN]},
        "rootfs": {"type": "layers", "diff_ids": [sha(&layer)]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": sha(&layer), "size": layer.len()}],
    }))
    .unwrap();
    let oci = work.join("runnable-layout");
    let blobs = oci.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    for b in [&layer, &config, &manifest] {
        std::fs::write(blobs.join(&sha(b)[7..]), b).unwrap();
    }
    std::fs::write(oci.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": sha(&manifest), "size": manifest.len(),
                       "annotations": {"org.opencontainers.image.ref.name": "1"}}],
    });
    std::fs::write(oci.join("index.json"), index.to_string()).unwrap();
    let reg = Registry::start(RegistryOptions {
        tls: false,
        auth: Auth::None,
        storage: None,
    })
    .expect("start a registry (`cargo xtask install`)");
    let reference = format!("{}/fixtures/runnable:1", reg.host);
    let o = Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:1", oci.display()))
        .arg(format!("docker://{reference}"))
        .output()
        .expect("run skopeo (`cargo xtask install`)");
    assert!(
        o.status.success(),
        "skopeo push: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    (reg, reference)
}

/// A signed bundle of `references` from `reg`, made with the key of `b`.
fn bundle_of(b: &Bundle, reg: &Registry, name: &str, references: &[String]) -> PathBuf {
    let spec = write_spec(
        b.work.path(),
        name,
        references,
        None,
        &registry_settings(reg),
    );
    let file = b.work.path().join(format!("{name}.tar.zst"));
    bundle_signed_ok(
        b.work.path(),
        &b.work.path().join("signer.key"),
        &spec,
        &file,
    );
    file
}

#[track_caller]
fn assert_ok(o: &Output, doc: &Value) {
    assert_eq!(o.status.code(), Some(0), "load failed:\n{}", stderr(o));
    assert_eq!(doc["failures"], Value::Array(vec![]), "{doc:#}");
    assert_eq!(doc["signature"]["checked"], true, "{doc:#}");
}

// ---- Must show 1: round trip, unpacked, and a container runs ----

#[test]
fn round_trip_into_containerd_checks_complete_unpacks_and_runs() {
    let b = make_bundle(true);
    let ctrd = containerd();
    let (o, doc) = load_into(&b.file, &b.public, &ctrd.socket, &[]);
    eprintln!("{}", stderr(&o));
    assert_ok(&o, &doc);
    assert_eq!(doc["totals"]["images"], b.images.len() as u64, "{doc:#}");
    assert_eq!(doc["totals"]["blobsSkipped"], 0, "{doc:#}");
    let expected = expected_records(&b);
    assert_eq!(
        doc["totals"]["recordsCreated"],
        expected.len() as u64,
        "{doc:#}"
    );
    assert_loaded(&ctrd, &expected);
    // `ctr images check` looks at the host platform only. The lease was deleted with a
    // synchronous garbage collection: every blob of every platform (the arm64 children of the
    // index and the manifest list included) still being there shows the
    // `containerd.io/gc.ref.content.*` labels hold them.
    let content = ctr(&ctrd, &["content", "ls", "-q"]);
    let content: std::collections::BTreeSet<&str> = content.lines().map(str::trim).collect();
    for i in &b.images {
        for (digest, _) in &i.blobs {
            assert!(
                content.contains(digest.as_str()),
                "{digest} of {} is not in the content store",
                i.repository
            );
        }
    }

    // Every image has an amd64 manifest: each is unpacked, its chain in `ctr snapshots ls`.
    let snapshots = ctr(&ctrd, &["snapshots", "--snapshotter", "overlayfs", "ls"]);
    for i in doc["images"].as_array().unwrap() {
        assert_eq!(i["unpacked"]["state"], "done", "{i:#}");
        let chain = i["unpacked"]["chainId"].as_str().unwrap();
        let line = snapshots
            .lines()
            .find(|l| l.starts_with(chain))
            .unwrap_or_else(|| panic!("{chain} not in `ctr snapshots ls`:\n{snapshots}"));
        assert!(line.contains("Committed"), "{line}");
    }
    // The multi-platform index: its record is the index, the amd64 child was unpacked.
    let multi = find(&fixture_set(), "fixtures/multi").clone();
    let m = doc["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["image"].as_str().unwrap().contains("fixtures/multi"))
        .unwrap();
    assert_eq!(m["digest"], multi.digest.as_str());
    let amd64 = multi
        .manifests
        .iter()
        .find(|x| x.platform == "linux/amd64")
        .unwrap();
    assert_eq!(m["unpacked"]["manifest"], amd64.digest.as_str(), "{m:#}");

    // A container runs from an imported image.
    let (reg, reference) = runnable_image(b.work.path());
    let runnable = bundle_of(&b, &reg, "runnable", std::slice::from_ref(&reference));
    drop(reg);
    let (o, doc) = load_into(&runnable, &b.public, &ctrd.socket, &[]);
    assert_ok(&o, &doc);
    let out = ctr(&ctrd, &["run", "--rm", &reference, "airlock-e2e-run"]);
    assert_eq!(out.trim(), RAN, "the container printed {out:?}");
}

// ---- Must show 2: rerun, and an import killed halfway ----

#[test]
fn a_rerun_skips_everything_and_a_killed_import_completes() {
    let b = make_bundle(true);
    let ctrd = containerd();
    let (o, doc) = load_into(&b.file, &b.public, &ctrd.socket, &[]);
    assert_ok(&o, &doc);
    let full = doc["totals"]["bytesWritten"].as_u64().unwrap();
    let (o, doc) = load_into(&b.file, &b.public, &ctrd.socket, &[]);
    eprintln!("rerun:\n{}", stderr(&o));
    assert_ok(&o, &doc);
    let t = &doc["totals"];
    assert_eq!(t["blobsWritten"], 0, "{doc:#}");
    assert_eq!(t["bytesWritten"], 0, "{doc:#}");
    assert_eq!(t["snapshotsCreated"], 0, "{doc:#}");
    assert_eq!(t["recordsCreated"], 0, "{doc:#}");
    assert_eq!(t["recordsUpdated"], 0, "{doc:#}");
    assert_eq!(
        t["recordsUnchanged"],
        expected_records(&b).len() as u64,
        "{doc:#}"
    );
    assert!(t["blobsSkipped"].as_u64().unwrap() > 0, "{doc:#}");

    // A fresh containerd; the import is killed while the largest layer (written first) is
    // partly in containerd's ingest.
    let ctrd = containerd();
    let mut cmd = airlock(&b.work.path().join("cache"));
    cmd.arg("load")
        .arg(&b.file)
        .arg("--key")
        .arg(&b.public)
        .arg("--to")
        .arg(format!(
            "containerd://{}?namespace={NS}",
            ctrd.socket.display()
        ))
        .args(["--jobs", "1", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // `ctr content active`: REF, SIZE (human: `501B`, `12.3MB`), AGE.
        let active = ctr(&ctrd, &["content", "active"]);
        let partial = active.lines().skip(1).any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.first().is_some_and(|r| r.starts_with("airlock-"))
                && f.get(1)
                    .is_some_and(|size| size.ends_with("MB") || size.ends_with("MiB"))
        });
        if partial {
            eprintln!("killing with an ingest in progress:\n{active}");
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import ended before the largest layer was seen half written"
        );
        assert!(Instant::now() < deadline, "no content arrived in 60 s");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the import finished before the kill");
    let committed = ctr(&ctrd, &["content", "ls", "-q"]).lines().count() as u64;
    eprintln!(
        "killed with {committed} blobs committed and {} image records",
        images(&ctrd).len()
    );

    let (o, doc) = load_into(&b.file, &b.public, &ctrd.socket, &[]);
    eprintln!("after the kill:\n{}", stderr(&o));
    assert_ok(&o, &doc);
    assert!(
        doc["totals"]["blobsSkipped"].as_u64().unwrap() >= committed,
        "what the killed run committed was written again: {doc:#}"
    );
    // Committed blobs are skipped and the partial ingest resumes: less than a full import.
    let after = doc["totals"]["bytesWritten"].as_u64().unwrap();
    assert!(
        after < full,
        "{after} bytes written after the kill, {full} in a full import"
    );
    assert_loaded(&ctrd, &expected_records(&b));
}

// ---- Must show 3: a corrupted layer ----

#[test]
fn a_corrupted_layer_is_named_and_no_image_using_it_is_recorded() {
    let b = make_bundle(false);
    let set = fixture_set();
    let base = find(&set, "fixtures/base");
    let layer = base.manifests[0].layers[0].0.clone();
    let bad = b.work.path().join("corrupt.tar.zst");
    corrupt_layer(&b.file, &layer, &bad);

    let ctrd = containerd();
    let (o, doc) = load_into(&bad, &b.public, &ctrd.socket, &[]);
    assert_the_base_layer_failed_its_two_images(&o, &doc, &layer);
    let listed = images(&ctrd);
    assert!(
        !listed
            .keys()
            .any(|n| n.contains("fixtures/base") || n.contains("fixtures/app-a")),
        "a record of an image using the corrupted layer: {listed:#?}"
    );
    let content = ctr(&ctrd, &["content", "ls", "-q"]);
    assert!(
        !content.lines().any(|l| l.trim() == layer),
        "the corrupted blob was committed"
    );
    // The image that does not use it is there, whole.
    let multi: BTreeMap<String, String> = expected_records(&b)
        .into_iter()
        .filter(|(n, _)| n.contains("fixtures/multi"))
        .collect();
    assert_eq!(multi.len(), 1);
    assert_loaded(&ctrd, &multi);
}

// ---- Must show 4: socket errors ----

#[test]
fn wrong_socket_daemon_down_and_permission_denied_say_what_to_do() {
    let b = make_bundle(false);

    // A path where no socket is.
    let missing = b.work.path().join("no-such.sock");
    let (o, doc) = load_into(&b.file, &b.public, &missing, &[]);
    let e = stderr(&o);
    eprintln!("{e}");
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(
        e.contains("no containerd socket") && e.contains(&*missing.to_string_lossy()),
        "{e}"
    );
    assert!(e.contains("hint:"), "{e}");
    assert_eq!(doc["ok"], false);

    // Permission denied: airlock as `nobody` against root's socket (in a 0700 directory).
    let ctrd = containerd();
    let shared = tempfile::Builder::new()
        .prefix("airlock-e2e-ctd-")
        .tempdir()
        .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // Copies `nobody` can read and run, wherever the work tree is.
    let file = shared.path().join("b.tar.zst");
    let public = shared.path().join("signer.pub");
    let bin = shared.path().join("airlock");
    std::fs::copy(&b.file, &file).unwrap();
    std::fs::copy(&b.public, &public).unwrap();
    std::fs::copy(airlock_bin(), &bin).unwrap();
    for (f, mode) in [(&file, 0o644), (&public, 0o644), (&bin, 0o755)] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let o = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(&bin)
        .arg("load")
        .arg(&file)
        .arg("--key")
        .arg(&public)
        .arg("--to")
        .arg(format!("containerd://{}", ctrd.socket.display()))
        .env("AIRLOCK_CACHE_DIR", shared.path().join("cache"))
        .env("HOME", shared.path())
        .stdin(Stdio::null())
        .output()
        .expect("run setpriv (util-linux)");
    let e = stderr(&o);
    eprintln!("{e}");
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("permission denied"), "{e}");
    assert!(e.contains("hint:") && e.contains("root"), "{e}");
    let listed = images(&ctrd);
    assert!(listed.is_empty(), "{listed:#?}");

    // The daemon is down: killed, its socket file left behind.
    let pid = ctrd.pid().expect("containerd runs");
    let st = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}/stat")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
    {
        assert!(Instant::now() < deadline, "containerd did not die");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(ctrd.socket.exists(), "the socket file is gone");
    // The kernel closes the listening socket a moment after the process is gone: until then a
    // connection may still be accepted and reset. Wait until connecting is refused.
    while std::os::unix::net::UnixStream::connect(&ctrd.socket).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the dead containerd's socket still accepts"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (o, _) = load_into(&b.file, &b.public, &ctrd.socket, &[]);
    let e = stderr(&o);
    eprintln!("{e}");
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("containerd is not running"), "{e}");
    assert!(e.contains("hint: start containerd"), "{e}");
}
