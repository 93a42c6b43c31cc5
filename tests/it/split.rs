//! Split volumes: `bundle --split 50M` of the fixture bundle (its 105 MB layer gives 3
//! parts), each part at most 50 MB and their concatenation the unsplit file; `verify`, `load`
//! and `serve` from the first part and from the part list, reading the parts in place (no
//! temporary file anywhere); a corrupted part and a missing part each named.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use airlock_testkit::fixtures::FixtureImage;
use airlock_testkit::{Auth, Registry, RegistryOptions};
use serde_json::Value;

use crate::serve::{skopeo_pull, Served};
use crate::support::*;
use crate::verify::key_pair;

const EPOCH: &str = "1700000000";
const PREFIX: &str = "mirror";

struct Split {
    work: tempfile::TempDir,
    whole: PathBuf,
    parts_dir: PathBuf,
    public: PathBuf,
    images: Vec<FixtureImage>,
    /// An empty directory every offline command gets as `TMPDIR`.
    tmp: PathBuf,
}

fn bundle(work: &Path, key: &Path, spec: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut cmd = airlock(&work.join("cache"));
    cmd.env("SOURCE_DATE_EPOCH", EPOCH)
        .args(["bundle", "--quiet", "--sign-key"])
        .arg(key)
        .arg("-o")
        .arg(out)
        .args(extra)
        .arg(spec);
    run(cmd, None)
}

fn make() -> Split {
    let work = workdir();
    let (key, public) = key_pair(work.path(), "signer");
    let reg = registry(false, Auth::None);
    let set = fixture_set();
    let images: Vec<FixtureImage> = fixture_images(&set).into_iter().cloned().collect();
    let wanted: Vec<&FixtureImage> = images.iter().collect();
    let spec = write_spec(
        work.path(),
        "split",
        &refs(&reg.host, &wanted),
        None,
        &registry_settings(&reg),
    );
    let whole = work.path().join("split.tar.zst");
    let o = bundle(work.path(), &key, &spec, &whole, &[]);
    assert!(o.status.success(), "bundle failed: {}", stderr(&o));
    let parts_dir = work.path().join("media");
    std::fs::create_dir(&parts_dir).unwrap();
    let o = bundle(
        work.path(),
        &key,
        &spec,
        &parts_dir.join("split.tar.zst"),
        &["--split", "50M"],
    );
    assert!(o.status.success(), "bundle --split failed: {}", stderr(&o));
    let tmp = work.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    Split {
        work,
        whole,
        parts_dir,
        public,
        images,
        tmp,
    }
}

impl Split {
    fn part(&self, i: usize) -> PathBuf {
        self.parts_dir.join(format!("split.tar.zst.{i:03}"))
    }

    fn list(&self) -> PathBuf {
        self.parts_dir.join("split.tar.zst.parts.json")
    }

    fn cmd(&self) -> Command {
        let mut c = airlock(&self.work.path().join("cache"));
        c.env("TMPDIR", &self.tmp);
        c
    }

    fn verify(&self, path: &Path) -> (Output, Value) {
        let mut cmd = self.cmd();
        cmd.arg("verify")
            .arg(path)
            .arg("--key")
            .arg(&self.public)
            .arg("--json");
        let o = run(cmd, None);
        let doc = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
        (o, doc)
    }

    fn load(&self, path: &Path, reg: &Registry) -> Output {
        let mut cmd = self.cmd();
        cmd.arg("load")
            .arg(path)
            .arg("--to")
            .arg(format!("registry://{}/{PREFIX}", reg.host))
            .args(["--plain-http", "--names", "drop-host", "--retries", "1"])
            .arg("--key")
            .arg(&self.public);
        run(cmd, None)
    }

    /// The bundle directory and `TMPDIR`, to see that nothing was written there.
    fn snapshot(&self) -> (Vec<String>, Vec<String>) {
        (listing(&self.parts_dir), listing(&self.tmp))
    }
}

fn empty_registry() -> Registry {
    Registry::start(RegistryOptions {
        tls: false,
        auth: Auth::None,
        storage: None,
    })
    .expect("start the registry (is docker-registry installed? run `cargo xtask install`)")
}

fn skopeo_raw(host: &str, reference: &str) -> Result<String, String> {
    let o = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{host}/{reference}"))
        .stdin(Stdio::null())
        .output()
        .expect("run skopeo (install it: `cargo xtask install`)");
    if !o.status.success() {
        return Err(String::from_utf8_lossy(&o.stderr).into_owned());
    }
    use sha2::Digest as _;
    Ok(format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(&o.stdout))
    ))
}

#[track_caller]
fn assert_loaded(reg: &Registry, images: &[FixtureImage]) {
    for i in images {
        for t in &i.tags {
            let r = format!("{PREFIX}/{}:{t}", i.repository);
            let got = skopeo_raw(&reg.host, &r).unwrap_or_else(|e| panic!("{r}: {e}"));
            assert_eq!(got, i.digest, "{r}");
        }
    }
}

#[test]
fn split_parts_are_the_bundle_and_are_read_in_place() {
    let s = make();
    let whole = std::fs::read(&s.whole).unwrap();

    // Three parts of at most 50 MB whose concatenation is the unsplit bundle.
    let mut joined = Vec::new();
    for i in 0..3 {
        let part = std::fs::read(s.part(i)).unwrap();
        assert!(part.len() <= 50_000_000, "part {i}: {} bytes", part.len());
        joined.extend_from_slice(&part);
    }
    assert!(!s.part(3).exists());
    assert!(
        joined == whole,
        "the parts concatenated differ from the unsplit bundle"
    );

    // The part list: its fields, and its signature checked by openssl.
    let list: Value = serde_json::from_slice(&std::fs::read(s.list()).unwrap()).unwrap();
    assert_eq!(list["kind"], "airlock-parts");
    assert_eq!(list["formatVersion"], 1);
    assert_eq!(list["bundle"], "split.tar.zst");
    assert_eq!(list["size"], whole.len() as u64);
    assert_eq!(list["sha256"], sha256_file(&s.whole));
    assert_eq!(list["parts"].as_array().unwrap().len(), 3);
    assert_eq!(list["parts"][1]["sha256"], sha256_file(&s.part(1)));
    let beside = s.parts_dir.join("split.tar.zst.manifest.json");
    assert_eq!(list["manifestSha256"], sha256_file(&beside));
    let sig = s.parts_dir.join("split.tar.zst.parts.json.sig");
    let (ok, out) = crate::sign::openssl_verify(&s.public, &s.list(), &sig);
    assert!(ok, "openssl: {out}");

    let before = s.snapshot();
    // verify from the first part and from the part list.
    for path in [s.part(0), s.list()] {
        let (o, doc) = s.verify(&path);
        assert!(
            o.status.success(),
            "verify {}: {}",
            path.display(),
            stderr(&o)
        );
        assert_eq!(doc["ok"], true, "{doc:#}");
        let parts = doc["parts"]["parts"].as_array().unwrap();
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p["state"] == "ok"), "{doc:#}");
    }
    // inspect shows the parts.
    let mut cmd = s.cmd();
    cmd.arg("inspect").arg(s.part(0));
    let o = run(cmd, None);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("parts: 3"), "{table}");

    // load from the first part and from the part list, into empty registries.
    for path in [s.part(0), s.list()] {
        let reg = empty_registry();
        let o = s.load(&path, &reg);
        assert!(
            o.status.success(),
            "load {}: {}",
            path.display(),
            stderr(&o)
        );
        assert_loaded(&reg, &s.images);
    }

    // serve from the part list: skopeo copies every image.
    let served = Served::start(
        s.work.path(),
        &[&s.list()],
        &s.public,
        &["--names", "drop-host"],
    );
    for i in &s.images {
        let t = &i.tags[0];
        let r = format!("{}/{}:{t}", served.host(), i.repository);
        let out = s
            .work
            .path()
            .join(format!("pull-{}", i.repository.replace('/', "_")));
        assert_eq!(
            skopeo_pull(&r, &out).unwrap_or_else(|e| panic!("{r}: {e}")),
            i.digest
        );
    }
    drop(served);
    // Nothing was written beside the parts nor into TMPDIR: no joined copy, no temporary file.
    assert_eq!(s.snapshot(), before);

    // One corrupted byte in `.001`: verify names that part.
    let p1 = s.part(1);
    let good = std::fs::read(&p1).unwrap();
    let mut bad = good.clone();
    bad[1_000_000] ^= 0x40;
    std::fs::write(&p1, &bad).unwrap();
    let (o, doc) = s.verify(&s.part(0));
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("part `split.tar.zst.001` is damaged"), "{err}");
    assert!(err.contains("copy it again from its medium"), "{err}");
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["parts"]["parts"][1]["state"], "damaged", "{doc:#}");
    assert_eq!(doc["parts"]["parts"][0]["state"], "ok", "{doc:#}");
    std::fs::write(&p1, &good).unwrap();

    // `.002` removed: verify, load and serve each name it before doing anything.
    let p2 = s.part(2);
    std::fs::rename(&p2, s.work.path().join("away")).unwrap();
    let missing = "part `split.tar.zst.002` (3 of 3) is missing";
    let (o, doc) = s.verify(&s.part(0));
    assert!(!o.status.success());
    assert!(stderr(&o).contains(missing), "{}", stderr(&o));
    assert_eq!(doc["parts"]["parts"][2]["state"], "missing", "{doc:#}");
    assert_eq!(doc["parts"]["parts"][1]["state"], "present", "{doc:#}");
    let reg = empty_registry();
    let o = s.load(&s.list(), &reg);
    assert!(!o.status.success());
    assert!(stderr(&o).contains(missing), "{}", stderr(&o));
    let repos = reg.storage.join("docker/registry/v2/repositories");
    assert!(!repos.exists(), "something was pushed");
    let mut cmd = s.cmd();
    cmd.arg("serve")
        .arg(s.part(0))
        .arg("--key")
        .arg(&s.public)
        .args([
            "--listen",
            &format!("127.0.0.1:{}", airlock_testkit::free_port()),
        ]);
    let o = run(cmd, None);
    assert!(!o.status.success());
    assert!(stderr(&o).contains(missing), "{}", stderr(&o));
}

#[test]
fn split_sizes_are_checked_before_any_work() {
    let work = workdir();
    let spec = write_spec(work.path(), "s", &["example.invalid/x:1".into()], None, "");
    for (size, what) in [("999K", "too small"), ("4X", "is not a size")] {
        let mut cmd = airlock(&work.path().join("cache"));
        cmd.args(["bundle", "--quiet", "--split", size, "-o"])
            .arg(work.path().join("s.tar.zst"))
            .arg(&spec);
        let o = run(cmd, None);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains(what), "{}", stderr(&o));
    }
    assert_eq!(listing(work.path()), vec!["s.yaml".to_string()]);
}
