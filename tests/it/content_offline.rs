//! Charts and files on the offline side, with the signed content bundle of
//! `airlock_layout::testing::content`: loaded into an empty registry and fetched back by the
//! ORAS Python SDK (an independent client), written to a directory with `--files-to`, served
//! at `/files/NAME` (curl, with and without `Range`), and left out of containerd.

use std::path::{Path, PathBuf};
use std::process::Output;

use airlock_layout::content::chart_tag;
use airlock_layout::testing::content::{
    content_bundle, ContentBundle, CHART, CHART_VERSION, HELLO, IMAGE, KUBEADM, KUBEADM_FILE,
};
use airlock_layout::SigningKey;
use airlock_testkit::{Oras, Registry, RegistryOptions};
use serde_json::Value;

use crate::serve::Served;
use crate::support::*;

/// A work directory, the signer's public key and the content bundle.
struct Work {
    work: tempfile::TempDir,
    public: PathBuf,
    bundle: ContentBundle,
}

fn work() -> Work {
    let work = workdir();
    let signer = SigningKey::generate();
    let public = work.path().join("signer.pub");
    std::fs::write(&public, signer.verifying_key().to_pem()).unwrap();
    let bundle = content_bundle(&work.path().join("bundle"), &signer);
    Work {
        work,
        public,
        bundle,
    }
}

impl Work {
    /// `airlock load BUNDLE --key PUB --json ARGS…`: the output and its JSON.
    fn load(&self, args: &[&str]) -> (Output, Value) {
        let mut cmd = airlock(&self.work.path().join("cache"));
        cmd.arg("load")
            .arg(&self.bundle.path)
            .arg("--key")
            .arg(&self.public)
            .arg("--json")
            .args(args);
        let o = run(cmd, None);
        let text = String::from_utf8_lossy(&o.stdout);
        let doc = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!("stdout is not JSON ({e}):\n{text}\nstderr:\n{}", stderr(&o))
        });
        (o, doc)
    }
}

fn sha256(data: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// The ORAS SDK, or `None` (the test says why it skips) when this machine has no Python.
fn oras() -> Option<Oras> {
    match Oras::find().expect("the ORAS Python SDK (run `cargo xtask install`)") {
        Some(o) => Some(o),
        None => {
            eprintln!("SKIPPED: python3 is not installed; the ORAS client checks need it");
            None
        }
    }
}

/// `Chart.yaml` of a chart archive (`.tgz`).
fn chart_yaml_of(tgz: &[u8]) -> String {
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().ends_with("Chart.yaml") {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut e, &mut s).unwrap();
            return s;
        }
    }
    panic!("no Chart.yaml in the chart archive");
}

#[test]
fn charts_and_files_load_into_a_registry_and_oras_pulls_them() {
    let w = work();
    let Some(oras) = oras() else { return };
    let reg = Registry::start(RegistryOptions::default()).expect("start a registry");
    let to = format!("registry://{}/mirror", reg.host);
    let (o, doc) = w.load(&["--to", &to, "--plain-http"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(doc["totals"]["images"], 4, "{doc:#}");
    assert_eq!(doc["failures"].as_array().unwrap().len(), 0, "{doc:#}");
    // In the order they completed.
    let mut kinds: Vec<String> = doc["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["content"].as_str().unwrap_or("image").to_string())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["chart", "file", "file", "image"]);
    assert!(
        stderr(&o).contains("loaded 1 images, 1 charts, 2 files into"),
        "{}",
        stderr(&o)
    );

    // Each file, pulled by ORAS under the name load gives it, hashes to the bundle's digest.
    for (name, (info, bytes)) in [HELLO, KUBEADM].iter().zip(&w.bundle.files) {
        let record = w.bundle.record(name);
        let target = format!("{}/mirror/{name}:{}", reg.host, record.tags[0]);
        let out = w.work.path().join("pulled").join(name.replace('/', "_"));
        std::fs::create_dir_all(&out).unwrap();
        let pulled = oras.pull(&reg.host, &target, &out).unwrap();
        assert_eq!(pulled.len(), 1, "{pulled:?}");
        let title = info.name.rsplit('/').next().unwrap();
        assert!(pulled[0].ends_with(title), "{pulled:?}");
        let got = std::fs::read(&pulled[0]).unwrap();
        assert_eq!(sha256(&got), info.digest.to_string(), "{name}");
        assert_eq!(&got, bytes);
    }

    // The chart: its manifest as `helm push` writes it, its content layer untars to its
    // Chart.yaml, its provenance is there.
    let repo = format!("mirror/{CHART}");
    let m = oras
        .manifest(&reg.host, &repo, &chart_tag(CHART_VERSION))
        .unwrap();
    assert_eq!(m["config"]["mediaType"], airlock_layout::media::HELM_CONFIG);
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2, "{m:#}");
    let tgz = oras
        .blob(&reg.host, &repo, layers[0]["digest"].as_str().unwrap())
        .unwrap();
    assert_eq!(sha256(&tgz), layers[0]["digest"].as_str().unwrap());
    assert_eq!(tgz, w.bundle.chart_archive);
    assert_eq!(chart_yaml_of(&tgz), w.bundle.chart_yaml);
    let prov = oras
        .blob(&reg.host, &repo, layers[1]["digest"].as_str().unwrap())
        .unwrap();
    assert_eq!(prov, w.bundle.provenance);

    // `airlock check` finds every chart and file as it finds images.
    let mut cmd = airlock(&w.work.path().join("cache"));
    cmd.arg("check")
        .arg(&w.bundle.path)
        .arg("--key")
        .arg(&w.public)
        .args(["--against", &to, "--plain-http", "--json"]);
    let o = run(cmd, None);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["totals"]["images"], 4, "{doc:#}");
}

fn mode_of(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn files_to_writes_each_file_then_leaves_it_and_refuses_a_different_one() {
    let w = work();
    let dir = w.work.path().join("files");
    let dir_arg = dir.to_string_lossy().into_owned();
    let (o, doc) = w.load(&["--files-to", &dir_arg]);
    assert!(o.status.success(), "{}", stderr(&o));
    let states: Vec<&str> = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["written", "written"], "{doc:#}");
    for (info, bytes) in &w.bundle.files {
        let p = dir.join(&info.name);
        let got = std::fs::read(&p).unwrap();
        assert_eq!(sha256(&got), info.digest.to_string());
        assert_eq!(&got, bytes);
        assert_eq!(mode_of(&p), info.mode, "{}", info.name);
    }
    assert_eq!(mode_of(&dir.join(KUBEADM_FILE)), 0o755);

    // A rerun leaves them.
    let (o, doc) = w.load(&["--files-to", &dir_arg]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("unchanged"), "{}", stderr(&o));
    assert!(doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["state"] == "unchanged"));

    // A different file in the way is refused, named, with the hint; nothing is written.
    let kubeadm = dir.join(KUBEADM_FILE);
    std::fs::write(&kubeadm, b"not kubeadm").unwrap();
    std::fs::remove_file(dir.join("hello.txt")).unwrap();
    let (o, doc) = w.load(&["--files-to", &dir_arg]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = doc["error"].as_str().unwrap();
    assert!(e.contains(KUBEADM_FILE) && e.contains("--force"), "{e}");
    assert!(!dir.join("hello.txt").exists());
    assert_eq!(std::fs::read(&kubeadm).unwrap(), b"not kubeadm");

    // With --force it is replaced.
    let (o, doc) = w.load(&["--files-to", &dir_arg, "--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let states: Vec<&str> = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["written", "replaced"], "{doc:#}");
    assert_eq!(std::fs::read(&kubeadm).unwrap(), w.bundle.files[1].1);
    // No temporary file left anywhere.
    let leftovers: Vec<_> = walk(&dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Neither --to nor --files-to: a usage error.
    let (o, _) = {
        let mut cmd = airlock(&w.work.path().join("cache"));
        cmd.arg("load")
            .arg(&w.bundle.path)
            .arg("--key")
            .arg(&w.public);
        let o = run(cmd, None);
        (o, ())
    };
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--to"), "{}", stderr(&o));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[test]
fn serve_answers_files_with_and_without_range() {
    let w = work();
    let served = Served::start(w.work.path(), &[&w.bundle.path], &w.public, &[]);
    let list = served.get("/files/", &[]);
    assert_eq!(list.status, 200);
    assert_eq!(
        String::from_utf8_lossy(&list.body),
        format!("hello.txt\n{KUBEADM_FILE}\n")
    );
    for (info, bytes) in &w.bundle.files {
        let path = format!("/files/{}", info.name);
        let r = served.get(&path, &[]);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(&r.body, bytes, "{path}");
        assert_eq!(r.header("Content-Type"), Some("application/octet-stream"));
        assert_eq!(r.header("Accept-Ranges"), Some("bytes"));
        assert_eq!(
            r.header("Content-Length"),
            Some(bytes.len().to_string().as_str())
        );
        let h = served.get(&path, &["-I"]);
        assert_eq!(h.status, 200);
        assert!(h.body.is_empty());
        let n = bytes.len();
        for (range, (s, e)) in [
            (format!("bytes=3-{}", n / 2), (3, n / 2 + 1)),
            (format!("bytes={}-", n - 7), (n - 7, n)),
            ("bytes=-5".to_string(), (n - 5, n)),
        ] {
            let r = served.get(&path, &["-H", &format!("Range: {range}")]);
            assert_eq!(r.status, 206, "{path} {range}");
            assert_eq!(r.body, bytes[s..e], "{path} {range}");
            assert_eq!(
                r.header("Content-Range"),
                Some(format!("bytes {s}-{}/{n}", e - 1).as_str())
            );
        }
        let r = served.get(&path, &["-H", &format!("Range: bytes={n}-")]);
        assert_eq!(r.status, 416, "{path}");
    }
    // A range across several frames of the large file.
    let (info, bytes) = &w.bundle.files[1];
    let r = served.get(
        &format!("/files/{}", info.name),
        &["-H", "Range: bytes=60000-250000"],
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, bytes[60000..250001]);
    assert_eq!(served.get("/files/nothing-here", &[]).status, 404);
    assert_eq!(served.get("/files/kubernetes", &[]).status, 404);
    assert!(
        served.log().contains("serving /files/hello.txt"),
        "{}",
        served.log()
    );
}

#[test]
fn containerd_loads_the_image_and_leaves_charts_and_files_out() {
    let w = work();
    let ctrd = airlock_testkit::Containerd::start()
        .expect("start containerd (needs root; is it installed? run `cargo xtask install`)");
    let to = format!("containerd://{}?namespace=k8s.io", ctrd.socket.display());
    let (o, doc) = w.load(&["--to", &to, "--no-unpack"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(doc["totals"]["images"], 1, "{doc:#}");
    assert_eq!(doc["chartsNotLoaded"], 1, "{doc:#}");
    assert_eq!(doc["filesNotLoaded"], 2, "{doc:#}");
    assert_eq!(doc["images"][0]["image"], format!("{IMAGE}:1.0"));
    let e = stderr(&o);
    assert!(e.contains("1 charts and 2 files not loaded"), "{e}");
    let list = ctrd
        .ctr()
        .args(["-n", "k8s.io", "images", "ls", "-q"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(list.contains(IMAGE), "{list}");
    assert!(!list.contains(CHART) && !list.contains(KUBEADM), "{list}");
}

#[test]
fn inspect_lists_charts_and_files_apart_from_the_images() {
    let w = work();
    let mut cmd = airlock(&w.work.path().join("cache"));
    cmd.arg("inspect").arg(&w.bundle.path);
    let o = run(cmd, None);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    for want in [
        "CHART",
        CHART_VERSION,
        "oci://registry.example/charts/demo",
        "names image registry.example/demo/app:1.0",
        "FILE",
        KUBEADM_FILE,
        "0755",
        "https://dl.k8s.io/release/v1.35.2/bin/linux/amd64/kubeadm",
        "1 images, 1 charts, 2 files",
    ] {
        assert!(text.contains(want), "{want} in\n{text}");
    }
    let mut cmd = airlock(&w.work.path().join("cache"));
    cmd.arg("inspect").arg(&w.bundle.path).arg("--json");
    let o = run(cmd, None);
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["images"].as_array().unwrap().len(), 1, "{doc:#}");
    assert_eq!(doc["charts"][0]["version"], CHART_VERSION);
    assert_eq!(doc["charts"][0]["provenance"], true);
    assert_eq!(doc["files"][1]["name"], KUBEADM_FILE);
    assert_eq!(doc["files"][1]["mode"], "0755");
    assert_eq!(doc["files"][1]["sha256"], w.bundle.files[1].0.digest.hex());
}

/// The host a spec names as the files' origin; it does not resolve, so only the mirror serves.
const ORIGIN: &str = "dl.airlock-test.invalid";

/// A spec with a fixture image, an OCI chart, a classic-repository chart and three files (by
/// sha256, by checksum URL, local), bundled through the nginx mirror of the download site and
/// chart repository, then loaded into an empty registry and pulled back by ORAS (each file,
/// each chart's content layer untarred to its `Chart.yaml`), written with `--files-to`, and
/// served at `/files/` with ranges.
#[test]
fn a_spec_with_images_charts_and_files_goes_through_bundle_load_files_to_and_serve() {
    let work = workdir();
    let w = work.path();
    let Some(oras) = oras() else { return };
    let (key, public) = crate::verify::key_pair(w, "signer");
    let source = registry(false, airlock_testkit::Auth::None);
    let base = format!("{}/fixtures/base", source.host);
    let set = fixture_set();
    let base_fixture = find(&set, "fixtures/base");

    let site = w.join("site");
    let rel = site.join(ORIGIN).join("rel");
    std::fs::create_dir_all(&rel).unwrap();
    let tool: Vec<u8> = airlock_layout::testing::noise(3 << 20);
    let kubeadm = b"#!/bin/sh\necho kubeadm\n".to_vec();
    std::fs::write(rel.join("tool-1.0.tar.gz"), &tool).unwrap();
    std::fs::write(rel.join("kubeadm"), &kubeadm).unwrap();
    let kubeadm_hex = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&kubeadm));
    std::fs::write(
        rel.join("kubeadm.sha256"),
        format!("{kubeadm_hex}  kubeadm\n"),
    )
    .unwrap();
    let notes = b"notes for the nodes\n".to_vec();
    std::fs::write(w.join("notes.txt"), &notes).unwrap();
    let demo = airlock_testkit::TestChart::new("demo", "0.1.0", &["ghcr.io/example/demo:0.1.0"]);
    airlock_testkit::write_chart_repo(
        &site.join(ORIGIN).join("charts"),
        &[airlock_testkit::RepoEntry {
            provenance: true,
            ..airlock_testkit::RepoEntry::plain(&demo)
        }],
    )
    .unwrap();
    let charts_reg = Registry::start(RegistryOptions::default()).expect("start a registry");
    let podinfo = airlock_testkit::TestChart::new("podinfo", "6.5.0+b1", &[]);
    charts_reg
        .push_chart("charts/podinfo", &podinfo, false)
        .unwrap();
    let nginx = airlock_testkit::Nginx::start_static(&site, false)
        .expect("start nginx (cargo xtask install)");
    let tool_hex = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&tool));
    let spec = format!(
        "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {{name: offline}}\nspec:\n  \
         images:\n    - {base}:{tag}\n  files:\n    - url: https://{ORIGIN}/rel/tool-1.0.tar.gz\n      \
         sha256: {tool_hex}\n      name: tools/tool-1.0.tar.gz\n    - url: https://{ORIGIN}/rel/kubeadm\n      \
         checksumUrl: https://{ORIGIN}/rel/kubeadm.sha256\n      mode: \"0755\"\n    - path: notes.txt\n  \
         charts:\n    - {{chart: 'oci://{cr}/charts/podinfo', version: 6.5.0+b1}}\n    \
         - {{repoURL: 'https://{ORIGIN}/charts', name: demo, version: 0.1.0}}\n  \
         registries:\n{reg}    {cr}: {{plainHttp: true}}\n    {ORIGIN}: {{mirrors: ['{ng}/{ORIGIN}']}}\n    {ng}: {{plainHttp: true}}\n",
        tag = base_fixture.tags[0],
        reg = registry_settings(&source),
        ng = nginx.host,
        cr = charts_reg.host,
    );
    let spec_path = w.join("offline.yaml");
    std::fs::write(&spec_path, spec).unwrap();
    let bundle = w.join("offline.tar.zst");
    bundle_signed_ok(w, &key, &spec_path, &bundle);
    let wanted: Vec<(&str, &[u8], u32)> = vec![
        ("tools/tool-1.0.tar.gz", &tool, 0o644),
        ("kubeadm", &kubeadm, 0o755),
        ("notes.txt", &notes, 0o644),
    ];

    // Into an empty registry; ORAS pulls each file back, bytes as bundled.
    let target = Registry::start(RegistryOptions::default()).expect("start a registry");
    let mut cmd = airlock(&w.join("cache"));
    cmd.arg("load")
        .arg(&bundle)
        .arg("--key")
        .arg(&public)
        .args([
            "--to",
            &format!("registry://{}/mirror", target.host),
            "--names",
            "drop-host",
            "--plain-http",
            "--json",
        ]);
    let o = run(cmd, None);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["totals"]["images"], 6, "{doc:#}");
    let loaded = doc["images"].as_array().unwrap();
    for chart in [&podinfo, &demo] {
        let repo = format!("mirror/charts/{}", chart.name);
        let m = oras
            .manifest(&target.host, &repo, &chart_tag(&chart.version))
            .unwrap();
        assert_eq!(m["config"]["mediaType"], airlock_layout::media::HELM_CONFIG);
        let layer = m["layers"][0]["digest"].as_str().unwrap();
        assert_eq!(layer, format!("sha256:{}", chart.sha256()));
        let tgz = oras.blob(&target.host, &repo, layer).unwrap();
        assert_eq!(sha256(&tgz), layer);
        assert_eq!(chart_yaml_of(&tgz), chart.chart_yaml, "{}", chart.name);
    }
    // The classic repository's provenance is carried.
    let m = oras
        .manifest(&target.host, "mirror/charts/demo", "0.1.0")
        .unwrap();
    let prov = oras
        .blob(
            &target.host,
            "mirror/charts/demo",
            m["layers"][1]["digest"].as_str().unwrap(),
        )
        .unwrap();
    assert_eq!(prov, demo.provenance());
    for (name, bytes, _) in &wanted {
        let title = name.rsplit('/').next().unwrap();
        let reference = loaded
            .iter()
            .flat_map(|i| i["references"].as_array().unwrap())
            .filter_map(Value::as_str)
            .find(|r| r.contains(&format!("/files/{title}:")))
            .unwrap_or_else(|| panic!("{name} not loaded: {doc:#}"));
        let out = w.join("pulled").join(title);
        std::fs::create_dir_all(&out).unwrap();
        let pulled = oras.pull(&target.host, reference, &out).unwrap();
        assert_eq!(pulled.len(), 1);
        assert_eq!(std::fs::read(&pulled[0]).unwrap(), *bytes, "{name}");
    }
    let image = loaded
        .iter()
        .find(|i| i["image"].as_str().unwrap().contains("fixtures/base"))
        .unwrap();
    assert_eq!(image["digest"], base_fixture.digest.as_str());

    // --files-to: each file with its sha256 and mode.
    let dir = w.join("files");
    let mut cmd = airlock(&w.join("cache"));
    cmd.arg("load")
        .arg(&bundle)
        .arg("--key")
        .arg(&public)
        .arg("--files-to")
        .arg(&dir);
    let o = run(cmd, None);
    assert!(o.status.success(), "{}", stderr(&o));
    for (name, bytes, mode) in &wanted {
        let p = dir.join(name);
        assert_eq!(sha256(&std::fs::read(&p).unwrap()), sha256(bytes), "{name}");
        assert_eq!(mode_of(&p), *mode, "{name}");
    }

    // serve: each file, whole and by range.
    let served = Served::start(w, &[&bundle], &public, &[]);
    for (name, bytes, _) in &wanted {
        let path = format!("/files/{name}");
        let r = served.get(&path, &[]);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(&r.body, bytes, "{path}");
        let n = bytes.len();
        let r = served.get(&path, &["-H", &format!("Range: bytes=1-{}", n - 2)]);
        assert_eq!(r.status, 206, "{path}");
        assert_eq!(r.body, bytes[1..n - 1], "{path}");
    }
}
