//! `airlock images from` and `airlock rewrite`: the image references of Kubernetes manifests
//! found (a hand-written corpus under `tests/it/workloads/`, the expected set written here by
//! hand), bundled from the fixture registry, loaded, and the manifests pointed at the target
//! with nothing else in them touched.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use airlock_testkit::{Auth, Registry, RegistryOptions};
use serde_json::Value;

use crate::support::*;

/// The directory of the corpus; commands run there so that the files are named relatively.
fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("it/workloads")
}

/// `airlock ARGS…` run in `dir`, feeding `stdin`.
fn airlock_in(dir: &Path, cache: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = airlock(cache);
    cmd.current_dir(dir).args(args);
    run(cmd, stdin)
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("stdout is UTF-8")
}

/// One place a reference is expected: file (as `images from` names it), line, reference,
/// enclosing kind and name, container, field.
struct Expected {
    file: &'static str,
    line: u64,
    reference: &'static str,
    kind: &'static str,
    name: &'static str,
    container: Option<&'static str>,
    field: &'static str,
}

const fn at(
    file: &'static str,
    line: u64,
    reference: &'static str,
    kind: &'static str,
    name: &'static str,
    container: Option<&'static str>,
    field: &'static str,
) -> Expected {
    Expected {
        file,
        line,
        reference,
        kind,
        name,
        container,
        field,
    }
}

const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

/// Every image field of `tests/it/workloads/corpus`, read off the files by hand.
fn expected() -> Vec<Expected> {
    const C: &str = "containers";
    const I: &str = "initContainers";
    vec![
        at("corpus/apps/statefulset.json", 15, "registry.local:5000/team/app:1.2", "StatefulSet", "ledger", Some("app"), C),
        at("corpus/apps/statefulset.json", 20, "registry.local:5000/team/store@sha256:2222222222222222222222222222222222222222222222222222222222222222", "StatefulSet", "ledger", Some("store"), C),
        at("corpus/cache-multi.yaml", 13, "docker.io/bitnami/redis:7", "Deployment", "cache-primary", Some("redis"), C),
        // `image: *redis`: the alias of line 13 (see `alias_lines`).
        at("corpus/cache-multi.yaml", 16, "docker.io/bitnami/redis:7", "Deployment", "cache-primary", Some("sentinel"), C),
        at("corpus/cache-multi.yaml", 19, "docker.io/example/redis-exporter:v1.58.0", "Deployment", "cache-primary", Some("metrics"), C),
        at("corpus/cache-multi.yaml", 31, "docker.io/bitnami/redis:7", "Deployment", "cache-replica", Some("redis"), C),
        at("corpus/cni-daemonset.yaml", 35, "registry.local:5000/net/cni-plugin:v1.4.0", "DaemonSet", "meshnet-ds", Some("install-cni-plugin"), I),
        at("corpus/cni-daemonset.yaml", 42, "registry.local:5000/net/meshnet:v0.24.2", "DaemonSet", "meshnet-ds", Some("install-cni"), I),
        at("corpus/cni-daemonset.yaml", 47, "registry.local:5000/net/meshnet:v0.24.2", "DaemonSet", "meshnet-ds", Some("meshnet"), C),
        at("corpus/cronjob.yaml", 16, "docker.io/library/busybox:1.36", "CronJob", "nightly-backup", Some("wait-for-db"), I),
        at("corpus/cronjob.yaml", 20, "docker.io/example/pg-backup:2024.05", "CronJob", "nightly-backup", Some("backup"), C),
        at("corpus/database-cr.yaml", 8, "registry.local:5000/dbs/postgres:16.2", "PostgresCluster", "orders-db", None, "spec.image"),
        at("corpus/database-cr.yaml", 11, "docker.io/example/backup-agent:1.0", "PostgresCluster", "orders-db", None, "spec.backup.image"),
        at("corpus/helm-rendered.yaml", 35, "docker.io/example/shop-frontend:3.1.4", "Deployment", "release-shop", Some("shop"), C),
        at("corpus/helm-rendered.yaml", 54, "registry.k8s.io/example/certgen:v1.4.0", "Job", "release-shop-migrate", Some("migrate"), C),
        at("corpus/list.yaml", 11, "docker.io/library/nginx:latest", "Pod", "web-debug", Some("web"), C),
        at("corpus/list.yaml", 14, "docker.io/library/busybox:1.36", "Pod", "web-debug", Some("debugger"), "ephemeralContainers"),
        at("corpus/list.yaml", 29, "registry.k8s.io/pause:3.9", "ReplicaSet", "placeholder", Some("pause"), C),
        at("corpus/operator.yaml", 25, "ghcr.io/example-org/widget-operator:v2.3.1@sha256:1111111111111111111111111111111111111111111111111111111111111111", "Deployment", "widget-operator", Some("manager"), C),
        at("corpus/operator.yaml", 34, "quay.io/example/auth-proxy:v0.15.0", "Deployment", "widget-operator", Some("auth-proxy"), C),
    ]
}

/// Lines of an alias whose value is written at the anchor: either line may be reported, or
/// none (the reference is listed at the anchor's line).
fn alias_lines(file: &str, line: u64) -> Option<u64> {
    (file == "corpus/cache-multi.yaml" && line == 16).then_some(13)
}

/// Must show 1: the set, one reference a line, sorted, each once; nothing from the env
/// variable or the README.
#[test]
fn images_from_a_directory_finds_exactly_the_expected_set() {
    let work = workdir();
    let cache = work.path().join("cache");
    let o = airlock_in(&corpus_dir(), &cache, &["images", "from", "corpus"], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let want: BTreeSet<&str> = expected().iter().map(|e| e.reference).collect();
    let mut text = String::new();
    for r in &want {
        text.push_str(r);
        text.push('\n');
    }
    assert_eq!(stdout(&o), text);
    assert!(want.iter().any(|r| r.ends_with(D1)) && want.iter().any(|r| r.ends_with(D2)));
    assert!(!stderr(&o).contains("error"), "{}", stderr(&o));
}

/// Must show 1: `--json` names file:line, kind/name, container and field of every place.
#[test]
fn images_from_json_names_file_line_kind_name_container_of_each() {
    let work = workdir();
    let cache = work.path().join("cache");
    let o = airlock_in(
        &corpus_dir(),
        &cache,
        &["images", "from", "--json", "corpus"],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let doc: Value = serde_json::from_str(&stdout(&o)).expect("one JSON document");
    assert_eq!(doc["problems"].as_array().map(Vec::len), Some(0), "{doc:#}");
    let images = doc["images"].as_array().expect("images");

    // (reference, file, line, container) -> the location object.
    let mut got: BTreeMap<(String, String, u64, Option<String>), Value> = BTreeMap::new();
    let mut refs = Vec::new();
    for image in images {
        let reference = image["reference"].as_str().unwrap().to_string();
        refs.push(reference.clone());
        for l in image["locations"].as_array().expect("locations") {
            let key = (
                reference.clone(),
                l["file"].as_str().unwrap().to_string(),
                l["line"].as_u64().unwrap(),
                l["container"].as_str().map(str::to_string),
            );
            assert!(
                got.insert(key.clone(), l.clone()).is_none(),
                "twice: {key:?}"
            );
        }
    }
    let want: BTreeSet<&str> = expected().iter().map(|e| e.reference).collect();
    let unique: BTreeSet<&str> = refs.iter().map(String::as_str).collect();
    assert_eq!(unique, want);
    assert_eq!(
        refs.len(),
        unique.len(),
        "a reference listed twice: {refs:?}"
    );

    let mut seen = BTreeSet::new();
    for e in expected() {
        let container = e.container.map(str::to_string);
        let key = |line| {
            (
                e.reference.to_string(),
                e.file.to_string(),
                line,
                container.clone(),
            )
        };
        let (line, l) = match got.get(&key(e.line)) {
            Some(l) => (e.line, l),
            None => {
                let other = alias_lines(e.file, e.line).unwrap_or_else(|| {
                    panic!(
                        "{}:{}: `{}` not found in {doc:#}",
                        e.file, e.line, e.reference
                    )
                });
                // The alias's container may be listed (at either line) or left out: its
                // value is the anchor's, listed once already.
                match got.get(&key(other)) {
                    Some(l) => (other, l),
                    None => continue,
                }
            }
        };
        seen.insert(key(line));
        let here = format!("{}:{}", e.file, e.line);
        assert_eq!(l["kind"], e.kind, "{here}: {l}");
        assert_eq!(l["name"], e.name, "{here}: {l}");
        assert_eq!(l["field"], e.field, "{here}: {l}");
    }
    let extra: Vec<_> = got.keys().filter(|k| !seen.contains(*k)).collect();
    assert!(
        extra.is_empty(),
        "found where nothing was expected: {extra:?}"
    );
}

/// Must show 1: stdin (`helm template … | airlock images from -`), named `-`.
#[test]
fn images_from_stdin_reads_a_rendered_stream() {
    let work = workdir();
    let cache = work.path().join("cache");
    let dir = corpus_dir();
    let text = std::fs::read_to_string(dir.join("corpus/helm-rendered.yaml")).unwrap();
    let o = airlock_in(&dir, &cache, &["images", "from", "-"], Some(&text));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "docker.io/example/shop-frontend:3.1.4\nregistry.k8s.io/example/certgen:v1.4.0\n"
    );
    let o = airlock_in(
        &dir,
        &cache,
        &["images", "from", "--json", "-"],
        Some(&text),
    );
    let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let shop = doc["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["reference"] == "docker.io/example/shop-frontend:3.1.4")
        .unwrap_or_else(|| panic!("{doc:#}"));
    let l = &shop["locations"][0];
    assert_eq!(
        (l["file"].as_str(), l["line"].as_u64()),
        (Some("-"), Some(35))
    );
    // A List on stdin too.
    let text = std::fs::read_to_string(dir.join("corpus/list.yaml")).unwrap();
    let o = airlock_in(&dir, &cache, &["images", "from", "-"], Some(&text));
    assert_eq!(
        stdout(&o),
        "docker.io/library/busybox:1.36\ndocker.io/library/nginx:latest\nregistry.k8s.io/pause:3.9\n"
    );
}

// ---- the round trip through the fixture registry ----

const PREFIX: &str = "mirror";

/// Manifests naming fixture images on `host`, in the shapes people write: comments, quoting
/// of three kinds, flow mappings, a digest pin, JSON, several documents.
fn write_manifests(dir: &Path, host: &str, base_digest: &str) -> Vec<String> {
    std::fs::create_dir_all(dir.join("more")).unwrap();
    std::fs::write(
        dir.join("deploy.yaml"),
        format!(
            "# The shop, as written by hand.\n\
             apiVersion: apps/v1\n\
             kind: Deployment\n\
             metadata:\n  name: shop   # comment after a value\n\
             spec:\n  template:\n    spec:\n\
             \x20     initContainers:\n\
             \x20       - name: init\n          image: '{host}/fixtures/multi:1'\n\
             \x20     containers:\n\
             \x20       - name: app\n          image: \"{host}/fixtures/app-a:1\"   # the app\n\
             \x20       - {{name: side, image: {host}/fixtures/app-a:latest, imagePullPolicy: Always}}\n\
             \x20       - image: {host}/fixtures/base:1\n          name: base\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("more/jobs.yml"),
        format!(
            "---\n# Source: jobs/templates/cron.yaml\n\
             apiVersion: batch/v1\nkind: CronJob\nmetadata: {{name: tick}}\n\
             spec:\n  schedule: \"*/5 * * * *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n\
             \x20         containers:\n\
             \x20           - name: tick\n              image: {host}/fixtures/base@{base_digest}\n\
             ---\n\
             apiVersion: v1\nkind: Pod\nmetadata:\n  name: probe\nspec:\n  containers:\n\
             \x20 - name: probe\n    image: \"{host}/fixtures/multi:1\"\n\
             ...\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("more/sts.json"),
        format!(
            "{{\n  \"apiVersion\": \"apps/v1\",\n  \"kind\": \"StatefulSet\",\n  \"metadata\": {{\"name\": \"ledger\"}},\n  \"spec\": {{\"template\": {{\"spec\": {{\"containers\": [\n    {{\"name\": \"a\", \"image\": \"{host}/fixtures/app-a:1\"}}\n  ]}}}}}}\n}}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("more/agent-cr.yaml"),
        format!(
            "apiVersion: agents.example.com/v1\nkind: Agent\nmetadata:\n  name: a1\nspec:\n  image: {host}/fixtures/base:1\n  sidecar:\n    image: {host}/fixtures/app-a:latest\n"
        ),
    )
    .unwrap();
    // Every image value written above, as written.
    vec![
        format!("{host}/fixtures/multi:1"),
        format!("{host}/fixtures/app-a:1"),
        format!("{host}/fixtures/app-a:latest"),
        format!("{host}/fixtures/base:1"),
        format!("{host}/fixtures/base@{base_digest}"),
    ]
}

/// Every file under `dir` (relative name -> bytes).
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let name = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(name, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn copy_tree(from: &Path, to: &Path) {
    for (name, bytes) in tree(from) {
        let p = to.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
}

/// The diff-based check: `new` has the lines of `old`, and each line that differs differs
/// only by one old value replaced with its new one (`pairs`): with the values cut out, the
/// two lines are the same bytes. Returns the number of changed lines.
fn differs_only_in_values(name: &str, old: &str, new: &str, pairs: &[(String, String)]) -> usize {
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    assert_eq!(
        a.len(),
        b.len(),
        "{name}: the number of lines changed:\n{new}"
    );
    let mut changed = 0;
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        if x == y {
            continue;
        }
        changed += 1;
        let ok = pairs.iter().any(|(from, to)| {
            let (Some(p), Some(q)) = (x.find(from.as_str()), y.find(to.as_str())) else {
                return false;
            };
            // The value is followed by what followed it (a quote, a comma, a space or the end).
            let rest_ok = !x[p + from.len()..]
                .starts_with(|c: char| c == '@' || c == '/' || c.is_alphanumeric());
            p == q && rest_ok && x[..p] == y[..q] && x[p + from.len()..] == y[q + to.len()..]
        });
        assert!(
            ok,
            "{name}:{}: more than an image value changed:\n- {x}+ {y}",
            i + 1
        );
    }
    changed
}

/// skopeo's sha256 of the manifest `reference` names on the target, or its error.
fn skopeo_digest(reference: &str) -> Result<String, String> {
    // skopeo refuses a reference with both a tag and a digest: the digest decides.
    let shown = match reference.split_once('@') {
        Some((name, digest)) => {
            let slash = name.rfind('/').unwrap();
            let name = match name[slash..].rfind(':') {
                Some(i) => &name[..slash + i],
                None => name,
            };
            format!("{name}@{digest}")
        }
        None => reference.to_string(),
    };
    let o = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{shown}"))
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

/// Must show 2: `images from` → `bundle` → `load --names drop-host` → `rewrite` with the same
/// options: every rewritten reference resolves in the target with the source's digest, and
/// the files differ from the originals only inside the image values.
#[test]
fn bundle_load_rewrite_round_trip_resolves_in_the_target() {
    let set = fixture_set();
    let source = registry(false, Auth::None);
    let target = Registry::start(RegistryOptions::default())
        .expect("start the registry (is docker-registry installed? run `cargo xtask install`)");
    let work = workdir();
    let w = work.path();
    let cache = w.join("cache");
    let digest_of = |repo: &str| find(&set, repo).digest.clone();
    let base = digest_of("fixtures/base");
    let originals = w.join("manifests");
    let values = write_manifests(&originals, &source.host, &base);
    let before = tree(&originals);
    let to = format!("registry://{}/{PREFIX}", target.host);
    let moved = |v: &str| v.replace(&source.host, &format!("{}/{PREFIX}", target.host));
    let pairs: Vec<(String, String)> = values.iter().map(|v| (v.clone(), moved(v))).collect();

    // images from: exactly the five references, as images.txt.
    let o = airlock_in(w, &cache, &["images", "from", "manifests"], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let listed: BTreeSet<String> = stdout(&o).lines().map(str::to_string).collect();
    assert_eq!(listed, values.iter().cloned().collect::<BTreeSet<_>>());
    std::fs::write(w.join("images.txt"), stdout(&o)).unwrap();

    // --spec is a spec `airlock lock` reads, and the lock has the source's digests.
    let o = airlock_in(
        w,
        &cache,
        &["images", "from", "--spec", "--name", "shop", "manifests"],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    std::fs::write(w.join("shop.yaml"), stdout(&o)).unwrap();
    let o = airlock_in(
        w,
        &cache,
        &[
            "lock",
            "shop.yaml",
            "-o",
            "shop.lock",
            "--plain-http",
            &source.host,
        ],
        None,
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "lock of the --spec output: {}",
        stderr(&o)
    );
    let lock = std::fs::read_to_string(w.join("shop.lock")).unwrap();
    for repo in ["fixtures/base", "fixtures/app-a", "fixtures/multi"] {
        assert!(
            lock.contains(&digest_of(repo)),
            "{repo} not in the lock:\n{lock}"
        );
    }

    // bundle the list, load it with drop-host.
    let o = airlock_in(
        w,
        &cache,
        &[
            "bundle",
            "images.txt",
            "-o",
            "shop.tar.zst",
            "--plain-http",
            &source.host,
            "--quiet",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "bundle: {}", stderr(&o));
    let o = airlock_in(
        w,
        &cache,
        &[
            "load",
            "shop.tar.zst",
            "--to",
            &to,
            "--names",
            "drop-host",
            "--plain-http",
            "--insecure-skip-signature",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "load: {}", stderr(&o));

    // --check before: exit 1, nothing written.
    let rw = |extra: &[&str], paths: &[&str]| {
        let mut args = vec!["rewrite", "--to", &to, "--names", "drop-host"];
        args.extend_from_slice(extra);
        args.extend_from_slice(paths);
        airlock_in(w, &cache, &args, None)
    };
    let o = rw(&["--check"], &["manifests"]);
    assert_eq!(o.status.code(), Some(1), "--check before: {}", stderr(&o));
    assert!(o.stdout.is_empty());
    assert_eq!(tree(&originals), before, "--check wrote");

    // To stdout: one file.
    let o = rw(&[], &["manifests/deploy.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let deploy_out = stdout(&o);
    assert!(
        stderr(&o).contains("rewrote 4 references in 1 file"),
        "{}",
        stderr(&o)
    );

    // In place, on a copy.
    let copy = w.join("rewritten");
    copy_tree(&originals, &copy);
    let o = rw(&["--in-place"], &["rewritten"]);
    assert_eq!(o.status.code(), Some(0), "--in-place: {}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("rewrote 9 references in 4 files"), "{err}");
    assert!(
        err.contains(&format!(
            "rewritten/deploy.yaml:11: {}/fixtures/multi:1 -> {}/{PREFIX}/fixtures/multi:1",
            source.host, target.host
        )),
        "{err}"
    );
    assert_eq!(tree(&originals), before, "the originals changed");
    let after = tree(&copy);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>(),
        "files added or left behind"
    );
    assert_eq!(
        String::from_utf8_lossy(&after["deploy.yaml"]),
        deploy_out,
        "stdout and --in-place differ"
    );
    let mut changed = 0;
    for (name, old) in &before {
        let old = String::from_utf8_lossy(old);
        let new = String::from_utf8_lossy(&after[name]);
        changed += differs_only_in_values(name, &old, &new, &pairs);
    }
    // One line per image value (the flow mapping holds one).
    assert_eq!(changed, 9);

    // --check after: nothing to do.
    let o = rw(&["--check"], &["rewritten"]);
    assert_eq!(o.status.code(), Some(0), "--check after: {}", stderr(&o));

    // Every rewritten reference resolves in the target, digest as in the source.
    let o = airlock_in(w, &cache, &["images", "from", "rewritten"], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let now: BTreeSet<String> = stdout(&o).lines().map(str::to_string).collect();
    assert_eq!(
        now,
        values.iter().map(|v| moved(v)).collect::<BTreeSet<_>>()
    );
    for r in &now {
        let repo = r.split_once(&format!("/{PREFIX}/")).unwrap().1;
        let repo = repo.split(['@', ':']).next().unwrap();
        let got = skopeo_digest(r).unwrap_or_else(|e| panic!("`{r}` is not in the target: {e}"));
        assert_eq!(got, digest_of(repo), "{r}");
    }

    // --pin from the bundle: tags kept, the source digest added; those resolve too.
    let o = rw(&["--pin", "shop.tar.zst"], &["manifests/deploy.yaml"]);
    assert_eq!(o.status.code(), Some(0), "--pin: {}", stderr(&o));
    let pinned = stdout(&o);
    for (repo, tag) in [
        ("fixtures/multi", "1"),
        ("fixtures/app-a", "1"),
        ("fixtures/app-a", "latest"),
        ("fixtures/base", "1"),
    ] {
        let r = format!("{}/{PREFIX}/{repo}:{tag}@{}", target.host, digest_of(repo));
        assert!(pinned.contains(&r), "`{r}` not in:\n{pinned}");
        assert_eq!(skopeo_digest(&r).unwrap(), digest_of(repo));
    }
    let pin_pairs: Vec<(String, String)> = values
        .iter()
        .map(|v| {
            let repo = v
                .split_once('/')
                .unwrap()
                .1
                .split(['@', ':'])
                .next()
                .unwrap();
            let new = moved(v);
            let new = if new.contains('@') {
                new
            } else {
                format!("{new}@{}", digest_of(repo))
            };
            (v.clone(), new)
        })
        .collect();
    let old = String::from_utf8_lossy(&before["deploy.yaml"]);
    assert_eq!(
        differs_only_in_values("deploy.yaml --pin", &old, &pinned, &pin_pairs),
        4
    );
}

// ---- the bad set ----

/// Must show 3: an unrendered template and invalid references: each named FILE:LINE, exit 1,
/// the valid references still printed.
#[test]
fn images_from_names_templates_and_invalid_references_with_file_line() {
    let work = workdir();
    let cache = work.path().join("cache");
    let dir = corpus_dir();
    let o = airlock_in(&dir, &cache, &["images", "from", "bad/template.yaml"], None);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("bad/template.yaml:11: error:"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stdout(&o), "docker.io/example/fine:1\n");

    let o = airlock_in(&dir, &cache, &["images", "from", "bad/invalid.yaml"], None);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    for l in [8, 10] {
        assert!(
            err.contains(&format!("bad/invalid.yaml:{l}: error:")),
            "line {l}: {err}"
        );
    }
    assert_eq!(err.matches(": error:").count(), 2, "{err}");
    assert_eq!(stdout(&o), "docker.io/library/busybox:1.36\n");

    // --json lists the problems with file, line and value.
    let o = airlock_in(
        &dir,
        &cache,
        &[
            "images",
            "from",
            "--json",
            "bad/template.yaml",
            "bad/invalid.yaml",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let problems: BTreeSet<(String, u64, String)> = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert!(p["problem"].as_str().is_some_and(|s| !s.is_empty()), "{p}");
            (
                p["file"].as_str().unwrap().to_string(),
                p["line"].as_u64().unwrap(),
                p["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: BTreeSet<(String, u64, String)> = [
        (
            "bad/template.yaml",
            11,
            "{{ .Values.image.repository }}:{{ .Values.image.tag }}",
        ),
        ("bad/invalid.yaml", 8, "Nginx:Latest"),
        ("bad/invalid.yaml", 10, "app:tag with space"),
    ]
    .into_iter()
    .map(|(f, l, v)| (f.to_string(), l, v.to_string()))
    .collect();
    assert_eq!(problems, want);
    assert_eq!(doc["images"].as_array().unwrap().len(), 2, "{doc:#}");
}

/// Must show 3: a file that is not YAML: FILE:LINE, exit 2, nothing on stdout, alone or in a
/// directory with good files.
#[test]
fn images_from_a_file_that_is_not_yaml_exits_2_with_file_line() {
    let work = workdir();
    let cache = work.path().join("cache");
    let dir = corpus_dir();
    for args in [
        &["images", "from", "bad/not-yaml.yaml"][..],
        &["images", "from", "corpus", "bad"][..],
        &["images", "from", "--json", "bad/not-yaml.yaml"][..],
    ] {
        let o = airlock_in(&dir, &cache, args, None);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{args:?}: {}", stdout(&o));
        let err = stderr(&o);
        let at = err
            .find("bad/not-yaml.yaml:")
            .unwrap_or_else(|| panic!("{args:?}: {err}"));
        let rest = &err[at + "bad/not-yaml.yaml:".len()..];
        assert!(
            rest.starts_with(|c: char| c.is_ascii_digit()),
            "{args:?}: no line: {err}"
        );
    }
    // An input that does not exist is named too.
    let o = airlock_in(&dir, &cache, &["images", "from", "bad/missing.yaml"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bad/missing.yaml"), "{}", stderr(&o));
}

/// Must show 3: `rewrite --in-place` over a tree with one bad file rewrites no file at all.
#[test]
fn rewrite_in_place_with_one_bad_file_changes_nothing() {
    let work = workdir();
    let w = work.path();
    let cache = w.join("cache");
    for (bad, code) in [
        ("template.yaml", 1),
        ("invalid.yaml", 1),
        ("not-yaml.yaml", 2),
    ] {
        let tree_dir = w.join(format!("tree-{bad}"));
        copy_tree(&corpus_dir().join("corpus"), &tree_dir);
        std::fs::copy(
            corpus_dir().join("bad").join(bad),
            tree_dir.join("zz-bad.yaml"),
        )
        .unwrap();
        let before = tree(&tree_dir);
        let o = airlock_in(
            w,
            &cache,
            &[
                "rewrite",
                "--to",
                "registry://harbor.lan/mirror",
                "--names",
                "drop-host",
                "--in-place",
                &format!("tree-{bad}"),
            ],
            None,
        );
        assert_eq!(o.status.code(), Some(code), "{bad}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!("tree-{bad}/zz-bad.yaml:")),
            "{bad}: {}",
            stderr(&o)
        );
        // Same names (no temporary file left) and same bytes.
        assert_eq!(tree(&tree_dir), before, "{bad}: a file changed");
    }
}

/// The good corpus rewritten in place to `harbor.lan/mirror` with drop-host: every image field
/// and nothing else (the env variable and the README keep their text).
#[test]
fn rewrite_of_the_corpus_touches_only_image_fields() {
    let work = workdir();
    let w = work.path();
    let cache = w.join("cache");
    copy_tree(&corpus_dir().join("corpus"), &w.join("c"));
    let before = tree(&w.join("c"));
    let o = airlock_in(
        w,
        &cache,
        &[
            "rewrite",
            "--to",
            "registry://harbor.lan/mirror",
            "--names",
            "drop-host",
            "--in-place",
            "c",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let after = tree(&w.join("c"));
    assert_eq!(after["apps/README.md"], before["apps/README.md"]);
    let text = |m: &BTreeMap<String, Vec<u8>>, f: &str| String::from_utf8(m[f].clone()).unwrap();
    // (file, old value as written, new value): drop-host keeps the path, docker.io's
    // `library/` included, and tags and digests.
    let h = "harbor.lan/mirror";
    let changes: Vec<(&str, String, String)> = vec![
        (
            "cni-daemonset.yaml",
            "registry.local:5000/net/cni-plugin:v1.4.0".into(),
            format!("{h}/net/cni-plugin:v1.4.0"),
        ),
        (
            "cni-daemonset.yaml",
            "registry.local:5000/net/meshnet:v0.24.2".into(),
            format!("{h}/net/meshnet:v0.24.2"),
        ),
        (
            "cronjob.yaml",
            "library/busybox:1.36".into(),
            format!("{h}/library/busybox:1.36"),
        ),
        (
            "cronjob.yaml",
            "docker.io/example/pg-backup:2024.05".into(),
            format!("{h}/example/pg-backup:2024.05"),
        ),
        (
            "cache-multi.yaml",
            "bitnami/redis:7".into(),
            format!("{h}/bitnami/redis:7"),
        ),
        (
            "cache-multi.yaml",
            "docker.io/example/redis-exporter:v1.58.0".into(),
            format!("{h}/example/redis-exporter:v1.58.0"),
        ),
        (
            "database-cr.yaml",
            "registry.local:5000/dbs/postgres:16.2".into(),
            format!("{h}/dbs/postgres:16.2"),
        ),
        (
            "database-cr.yaml",
            "docker.io/example/backup-agent:1.0".into(),
            format!("{h}/example/backup-agent:1.0"),
        ),
        (
            "apps/statefulset.json",
            "registry.local:5000/team/app:1.2".into(),
            format!("{h}/team/app:1.2"),
        ),
        (
            "apps/statefulset.json",
            format!("registry.local:5000/team/store@{D2}"),
            format!("{h}/team/store@{D2}"),
        ),
        (
            "operator.yaml",
            format!("ghcr.io/example-org/widget-operator:v2.3.1@{D1}"),
            format!("{h}/example-org/widget-operator:v2.3.1@{D1}"),
        ),
        (
            "operator.yaml",
            "quay.io/example/auth-proxy:v0.15.0".into(),
            format!("{h}/example/auth-proxy:v0.15.0"),
        ),
        (
            "helm-rendered.yaml",
            "docker.io/example/shop-frontend:3.1.4".into(),
            format!("{h}/example/shop-frontend:3.1.4"),
        ),
        (
            "helm-rendered.yaml",
            "registry.k8s.io/example/certgen:v1.4.0".into(),
            format!("{h}/example/certgen:v1.4.0"),
        ),
        ("list.yaml", "nginx".into(), format!("{h}/library/nginx")),
        (
            "list.yaml",
            "library/busybox:1.36".into(),
            format!("{h}/library/busybox:1.36"),
        ),
        (
            "list.yaml",
            "registry.k8s.io/pause:3.9".into(),
            format!("{h}/pause:3.9"),
        ),
    ];
    let mut changed = 0;
    for name in before.keys().filter(|n| *n != "apps/README.md") {
        let pairs: Vec<(String, String)> = changes
            .iter()
            .filter(|(f, _, _)| f == name)
            .map(|(_, a, b)| (a.clone(), b.clone()))
            .collect();
        changed += differs_only_in_values(name, &text(&before, name), &text(&after, name), &pairs);
    }
    // 20 image values; the alias `*redis` follows its anchor, it is not a value of its own.
    assert_eq!(changed, 19);
    let cache_multi = text(&after, "cache-multi.yaml");
    assert!(cache_multi.contains("image: *redis\n"), "{cache_multi}");
    assert!(
        text(&after, "operator.yaml").contains("value: ghcr.io/example-org/widget-agent:v2.3.1\n")
    );
}

/// `image:` under a ConfigMap's `data` is a setting of the application, not an image field of
/// a workload or a custom resource: neither listed nor rewritten.
#[test]
fn configmap_data_is_not_an_image_field() {
    let work = workdir();
    let cache = work.path().join("cache");
    let dir = corpus_dir();
    let o = airlock_in(
        &dir,
        &cache,
        &["images", "from", "config/configmap.yaml"],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "", "ConfigMap data listed as an image");
    let o = airlock_in(
        &dir,
        &cache,
        &[
            "rewrite",
            "--to",
            "registry://harbor.lan/mirror",
            "config/configmap.yaml",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        o.stdout,
        std::fs::read(dir.join("config/configmap.yaml")).unwrap(),
        "ConfigMap data rewritten"
    );
}

/// The other name rules: `load` and `rewrite` with a `--rewrite` rule, and with `--names flat`,
/// agree on every name (both use load's `NameMapper`). keep-host cannot carry the fixture
/// registry's `HOST:PORT` as a path element, so it is not one of them.
#[test]
fn rewrite_follows_load_for_rewrite_rules_and_flat() {
    let set = fixture_set();
    let source = registry(false, Auth::None);
    let work = workdir();
    let w = work.path();
    let cache = w.join("cache");
    let digest_of = |repo: &str| find(&set, repo).digest.clone();
    let values = write_manifests(
        &w.join("manifests"),
        &source.host,
        &digest_of("fixtures/base"),
    );
    let o = airlock_in(w, &cache, &["images", "from", "manifests"], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    std::fs::write(w.join("images.txt"), stdout(&o)).unwrap();
    let o = airlock_in(
        w,
        &cache,
        &[
            "bundle",
            "images.txt",
            "-o",
            "b.tar.zst",
            "--plain-http",
            &source.host,
            "--quiet",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "bundle: {}", stderr(&o));
    let rule = format!("--rewrite={}/fixtures/app-a=apps/a", source.host);
    for (label, options) in [
        ("rule", vec!["--names", "drop-host", rule.as_str()]),
        ("flat", vec!["--names", "flat"]),
    ] {
        let target = Registry::start(RegistryOptions::default()).expect("start the registry");
        let to = format!("registry://{}/{PREFIX}", target.host);
        let mut args = vec![
            "load",
            "b.tar.zst",
            "--to",
            &to,
            "--plain-http",
            "--insecure-skip-signature",
        ];
        args.extend(&options);
        let o = airlock_in(w, &cache, &args, None);
        assert_eq!(o.status.code(), Some(0), "{label}: load: {}", stderr(&o));
        let tree_dir = format!("rewritten-{label}");
        copy_tree(&w.join("manifests"), &w.join(&tree_dir));
        let mut args = vec!["rewrite", "--to", &to, "--in-place"];
        args.extend(&options);
        args.push(&tree_dir);
        let o = airlock_in(w, &cache, &args, None);
        assert_eq!(o.status.code(), Some(0), "{label}: rewrite: {}", stderr(&o));
        let o = airlock_in(w, &cache, &["images", "from", &tree_dir], None);
        let now: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
        assert_eq!(now.len(), values.len(), "{label}: {now:?}");
        for r in &now {
            assert!(
                r.starts_with(&format!("{}/{PREFIX}/", target.host)),
                "{label}: {r}"
            );
            let repo = ["fixtures/base", "fixtures/app-a", "fixtures/multi"]
                .into_iter()
                .find(|repo| {
                    let last = repo.rsplit('/').next().unwrap();
                    r.contains(&format!("/{last}:"))
                        || r.contains(&format!("/{last}@"))
                        || (*repo == "fixtures/app-a" && r.contains("/apps/a:"))
                })
                .unwrap_or_else(|| panic!("{label}: `{r}` names no fixture"));
            let got = skopeo_digest(r)
                .unwrap_or_else(|e| panic!("{label}: `{r}` is not in the target: {e}"));
            assert_eq!(got, digest_of(repo), "{label}: {r}");
        }
        if label == "rule" {
            let a = format!("{}/{PREFIX}/apps/a:1", target.host);
            let b = format!("{}/{PREFIX}/fixtures/base:1", target.host);
            assert!(now.contains(&a) && now.contains(&b), "{label}: {now:?}");
        } else {
            assert!(
                now.contains(&format!("{}/{PREFIX}/multi:1", target.host)),
                "{label}: {now:?}"
            );
        }
    }
}
