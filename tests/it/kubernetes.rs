//! The Kubernetes air-gap kit: release image sets, `airlock lock`, the k8s.gcr.io alias, and
//! the offline-side configuration checked against kubeadm's rules and a real containerd.

use std::path::Path;
use std::process::Command;

use airlock_load::names::{NameMapper, NameRule};
use airlock_testkit::{Auth, Containerd, Registry, RegistryOptions};
use serde_json::Value;

use crate::support::*;

/// The output of a successful `airlock ARGS…` run.
fn airlock_ok(work: &Path, args: &[&str]) -> String {
    let mut cmd = airlock(&work.join("cache"));
    cmd.args(args);
    let o = run(cmd, None);
    assert!(
        o.status.success(),
        "airlock {args:?} failed: {}",
        stderr(&o)
    );
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn images_kubernetes_prints_kubeadms_list() {
    let work = workdir();
    let out = airlock_ok(work.path(), &["images", "kubernetes", "v1.28.0"]);
    assert_eq!(
        out,
        "registry.k8s.io/kube-apiserver:v1.28.0\n\
         registry.k8s.io/kube-controller-manager:v1.28.0\n\
         registry.k8s.io/kube-scheduler:v1.28.0\n\
         registry.k8s.io/kube-proxy:v1.28.0\n\
         registry.k8s.io/pause:3.9\n\
         registry.k8s.io/etcd:3.5.9-0\n\
         registry.k8s.io/coredns/coredns:v1.10.1\n"
    );
    let doc: Value = serde_json::from_str(&airlock_ok(
        work.path(),
        &[
            "images",
            "kubernetes",
            "1.31.1",
            "--json",
            "--addons",
            "pause",
        ],
    ))
    .unwrap();
    assert_eq!(doc["kubernetesVersion"], "v1.31.1");
    assert_eq!(doc["images"].as_array().unwrap().len(), 5);
    assert_eq!(doc["images"][4], "registry.k8s.io/pause:3.10");

    let mut cmd = airlock(&work.path().join("cache"));
    cmd.args(["images", "kubernetes", "v1.20.0"]);
    let o = run(cmd, None);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("v1.20.0") && err.contains("v1.27.0\u{2013}v1.27.16, v1.28.0"),
        "{err}"
    );
    assert!(err.contains("--kubeadm PATH"), "{err}");
}

/// Must show 1: `airlock images kubernetes vX.Y.Z` for every patch release of every row of the
/// release data (read from the copy the binary embeds) prints kubeadm's list: the four
/// control-plane images at the version, then the row's pause, etcd and CoreDNS.
#[test]
fn images_kubernetes_for_every_patch_of_every_row() {
    let work = workdir();
    let mut n = 0;
    for line in airlock_kube::RELEASE_DATA.lines().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        let (minor, first, last) = (f[0], f[1], f[2]);
        let patch = |v: &str| -> u32 {
            let p = v.strip_prefix(&format!("v{minor}.")).unwrap();
            p.split('-').next().unwrap().parse().unwrap()
        };
        for p in patch(first)..=patch(last) {
            let v = format!("v{minor}.{p}");
            let out = airlock_ok(work.path(), &["images", "kubernetes", &v]);
            let want = format!(
                "registry.k8s.io/kube-apiserver:{v}\n\
                 registry.k8s.io/kube-controller-manager:{v}\n\
                 registry.k8s.io/kube-scheduler:{v}\n\
                 registry.k8s.io/kube-proxy:{v}\n\
                 registry.k8s.io/pause:{}\n\
                 registry.k8s.io/etcd:{}\n\
                 registry.k8s.io/coredns/coredns:{}\n",
                f[3], f[4], f[5]
            );
            assert_eq!(out, want, "{v} ({})", f[6]);
            n += 1;
        }
    }
    assert!(n >= 131, "only {n} patch releases");

    // A bare known minor means its newest known patch, and says so.
    let mut cmd = airlock(&work.path().join("cache"));
    cmd.args(["images", "kubernetes", "v1.35"]);
    let o = run(cmd, None);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout.clone()).unwrap();
    assert!(
        out.starts_with("registry.k8s.io/kube-apiserver:v1.35.7\n"),
        "{out}"
    );
    assert!(stderr(&o).contains("v1.35 means v1.35.7"), "{}", stderr(&o));
    // A patch newer than the data and an unknown minor, bare or not, are refused.
    for (v, says) in [
        ("v1.35.8", "newer than v1.35.7"),
        ("v1.38.0", "not in airlock's release data"),
        ("v1.38", "not in airlock's release data"),
    ] {
        let mut cmd = airlock(&work.path().join("cache"));
        cmd.args(["images", "kubernetes", v]);
        let o = run(cmd, None);
        assert_eq!(o.status.code(), Some(2), "{v}");
        assert!(o.stdout.is_empty(), "{v}");
        let err = stderr(&o);
        assert!(
            err.contains(says) && err.contains("--kubeadm PATH"),
            "{v}: {err}"
        );
        assert!(
            err.contains("v1.36.0\u{2013}v1.36.3, v1.37.0"),
            "{v}: {err}"
        );
    }
}

/// A stand-in kubeadm, written by the test: a shell script that prints `list` for exactly the
/// arguments airlock must pass, or fails.
fn stand_in_kubeadm(dir: &Path, version: &str, list: &[&str]) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join("kubeadm");
    let tmp = dir.join("kubeadm.tmp");
    let mut body = format!(
        "#!/bin/sh\n[ \"$*\" = 'config images list --kubernetes-version {version}' ] || \
         {{ echo \"kubeadm: unexpected arguments: $*\" >&2; exit 3; }}\n\
         echo 'I1201 12:00:00 a log line on stderr' >&2\n"
    );
    for i in list {
        body.push_str(&format!("echo '{i}'\n"));
    }
    std::fs::write(&tmp, body).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(&tmp, &p).unwrap();
    p
}

/// Must show 1: `--kubeadm PATH` asks the executable for a release the data does not know, and
/// prints its list (narrowed by `--addons`, as JSON too); a kubeadm that fails or prints
/// something else than images is refused with its stderr or the bad line.
#[test]
fn images_kubernetes_asks_a_real_kubeadm() {
    let work = workdir();
    let list = [
        "registry.k8s.io/kube-apiserver:v1.38.2",
        "registry.k8s.io/kube-controller-manager:v1.38.2",
        "registry.k8s.io/kube-scheduler:v1.38.2",
        "registry.k8s.io/kube-proxy:v1.38.2",
        "registry.k8s.io/pause:3.10.2",
        "registry.k8s.io/etcd:3.7.1-0",
        "registry.k8s.io/coredns/coredns:v1.14.7",
    ];
    let kubeadm = stand_in_kubeadm(work.path(), "v1.38.2", &list);
    let k = kubeadm.to_str().unwrap();
    let out = airlock_ok(
        work.path(),
        &["images", "kubernetes", "v1.38.2", "--kubeadm", k],
    );
    assert_eq!(out, format!("{}\n", list.join("\n")));
    let doc: Value = serde_json::from_str(&airlock_ok(
        work.path(),
        &[
            "images",
            "kubernetes",
            "1.38.2",
            "--kubeadm",
            k,
            "--json",
            "--addons",
            "etcd",
        ],
    ))
    .unwrap();
    assert_eq!(doc["kubernetesVersion"], "v1.38.2");
    assert_eq!(doc["images"].as_array().unwrap().len(), 5, "{doc}");
    assert_eq!(doc["images"][4], "registry.k8s.io/etcd:3.7.1-0");

    // Another version than the stand-in expects: it fails, and its stderr is in the error.
    let mut cmd = airlock(&work.path().join("cache"));
    cmd.args(["images", "kubernetes", "v1.38.3", "--kubeadm", k]);
    let o = run(cmd, None);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    let err = stderr(&o);
    assert!(
        err.contains("config images list --kubernetes-version v1.38.3` failed")
            && err.contains(
                "kubeadm: unexpected arguments: config images list --kubernetes-version v1.38.3"
            ),
        "{err}"
    );

    // Output that is not an image list is refused, naming the line.
    let kubeadm = stand_in_kubeadm(
        work.path(),
        "v1.38.2",
        &[
            "registry.k8s.io/kube-apiserver:v1.38.2",
            "could not parse version",
        ],
    );
    let mut cmd = airlock(&work.path().join("cache"));
    cmd.args([
        "images",
        "kubernetes",
        "v1.38.2",
        "--kubeadm",
        kubeadm.to_str().unwrap(),
    ]);
    let o = run(cmd, None);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    assert!(
        stderr(&o).contains("line 2: `could not parse version`"),
        "{}",
        stderr(&o)
    );
}

/// kubeadm's image names for a ClusterConfiguration, by kubeadm's rules
/// (`cmd/kubeadm/app/images/images.go`): `<imageRepository>/<component>:<tag>`, etcd and pause
/// likewise, CoreDNS from `dns.imageRepository` when set (else `imageRepository`), with
/// `/coredns` appended only for kubeadm's default repository.
fn kubeadm_pulls(config: &str, pause: &str, etcd: &str, coredns: &str) -> Vec<String> {
    let doc: Value = serde_saphyr::from_str(config).unwrap();
    assert_eq!(doc["apiVersion"].as_str(), Some("kubeadm.k8s.io/v1beta3"));
    assert_eq!(doc["kind"].as_str(), Some("ClusterConfiguration"));
    let repo = doc["imageRepository"].as_str().unwrap().to_string();
    let v = doc["kubernetesVersion"].as_str().unwrap();
    let mut dns = doc["dns"]["imageRepository"]
        .as_str()
        .map_or(repo.clone(), str::to_string);
    if dns == "registry.k8s.io" {
        dns.push_str("/coredns");
    }
    vec![
        format!("{repo}/kube-apiserver:{v}"),
        format!("{repo}/kube-controller-manager:{v}"),
        format!("{repo}/kube-scheduler:{v}"),
        format!("{repo}/kube-proxy:{v}"),
        format!("{repo}/pause:{pause}"),
        format!("{repo}/etcd:{etcd}"),
        format!("{dns}/coredns:{coredns}"),
    ]
}

#[test]
fn kubeadm_config_names_are_where_load_drop_host_puts_the_images() {
    let work = workdir();
    for (registry, host, prefix) in [
        ("harbor.lan/k8s", "harbor.lan", "k8s"),
        ("harbor.lan", "harbor.lan", ""),
        (
            "10.0.0.5:5000/platform/k8s",
            "10.0.0.5:5000",
            "platform/k8s",
        ),
    ] {
        // The first release of every row of the release data, v1.27.0 to v1.37.0.
        for row in airlock_kube::releases() {
            let version = &row.first().to_string();
            let images = airlock_ok(work.path(), &["images", "kubernetes", version]);
            let images: Vec<&str> = images.lines().collect();
            // Where `airlock load --names drop-host --to registry://REGISTRY` puts each one.
            let mapper = NameMapper {
                prefix: prefix.into(),
                rule: NameRule::DropHost,
                rewrites: vec![],
            };
            let loaded: Vec<String> = images
                .iter()
                .map(|i| {
                    let (name, tag) = i.rsplit_once(':').unwrap();
                    format!("{host}/{}:{tag}", mapper.repository(name))
                })
                .collect();
            let tag = |i: usize| images[i].rsplit_once(':').unwrap().1;
            let config = airlock_ok(
                work.path(),
                &[
                    "config",
                    "kubeadm",
                    "--registry",
                    registry,
                    "--kubernetes",
                    version,
                ],
            );
            let pulled = kubeadm_pulls(&config, tag(4), tag(5), tag(6));
            for (k, l) in pulled.iter().zip(&loaded) {
                assert_eq!(k, l, "{registry} {version}:\n{config}");
            }
            assert_eq!(pulled.len(), loaded.len());
        }
    }
}

/// Must show 2: a Debian containerd, configured only by the generated hosts.toml, pulls
/// `registry.k8s.io/pause:3.9` from the local registry (loaded there with drop-host under `k8s`).
#[test]
fn containerd_pulls_the_original_name_through_generated_hosts_toml() {
    let set = fixture_set();
    let pause = find(&set, "k8s/pause");
    let reg = registry(false, Auth::None);
    let work = workdir();
    let hosts = work.path().join("certs.d");
    let written = airlock_ok(
        work.path(),
        &[
            "config",
            "containerd",
            "--registry",
            &format!("{}/k8s", reg.host),
            "--plain-http",
            "--names",
            "drop-host",
            "--out",
            hosts.to_str().unwrap(),
        ],
    );
    for up in [
        "registry.k8s.io",
        "k8s.gcr.io",
        "docker.io",
        "quay.io",
        "ghcr.io",
    ] {
        let f = hosts.join(up).join("hosts.toml");
        assert!(written.contains(f.to_str().unwrap()), "{written}");
        assert!(f.is_file(), "{}", f.display());
    }
    let toml = std::fs::read_to_string(hosts.join("registry.k8s.io/hosts.toml")).unwrap();
    assert!(
        toml.contains(&format!("[host.\"http://{}/v2/k8s\"]", reg.host)),
        "{toml}"
    );

    let ctd =
        Containerd::start().expect("start containerd (is it installed? run `cargo xtask install`)");
    let ns = "airlock-k8s";
    for name in ["registry.k8s.io/pause:3.9", "k8s.gcr.io/pause:3.9"] {
        let o = ctd
            .ctr()
            .args(["-n", ns, "images", "pull", "--hosts-dir"])
            .arg(&hosts)
            .arg(name)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "ctr pull {name} failed: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let o = ctd.ctr().args(["-n", ns, "images", "ls"]).output().unwrap();
    let list = String::from_utf8_lossy(&o.stdout);
    for name in ["registry.k8s.io/pause:3.9", "k8s.gcr.io/pause:3.9"] {
        let line = list
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("`{name}` not in:\n{list}"));
        let digest = line.split_whitespace().nth(2).unwrap();
        assert_eq!(digest, pause.digest, "{line}");
    }
}

/// `lock --kubeadm PATH` (and `bundle`, which reads the spec the same way): a
/// `spec.kubernetes` release the data does not know takes its images from the kubeadm given,
/// and without one the spec is refused at the version's line, naming `--kubeadm`.
#[test]
fn lock_asks_the_given_kubeadm_for_an_unknown_release() {
    let set = fixture_set();
    let pause = find(&set, "k8s/pause");
    let reg = registry(false, Auth::None);
    let work = workdir();
    // The stand-in lists one image the fixture registry has.
    let image = format!("{}/k8s/pause:3.9", reg.host);
    let kubeadm = stand_in_kubeadm(work.path(), "v1.38.2", &[image.as_str()]);
    let spec = work.path().join("next.yaml");
    std::fs::write(
        &spec,
        format!(
            "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {{name: next}}\nspec:\n  \
             kubernetes: {{version: v1.38.2}}\n  registries:\n{}",
            registry_settings(&reg)
        ),
    )
    .unwrap();
    let lock_path = work.path().join("next.lock");
    let args = |with: bool| {
        let mut a = vec![
            "lock".to_string(),
            spec.to_str().unwrap().to_string(),
            "-o".to_string(),
            lock_path.to_str().unwrap().to_string(),
        ];
        if with {
            a.extend([
                "--kubeadm".to_string(),
                kubeadm.to_str().unwrap().to_string(),
            ]);
        }
        a
    };
    let mut cmd = airlock(&work.path().join("cache"));
    cmd.args(args(false));
    let o = run(cmd, None);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("next.yaml:5:25:") && err.contains("--kubeadm PATH"),
        "{err}"
    );
    assert!(!lock_path.exists());

    let a = args(true);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    airlock_ok(work.path(), &a);
    let lock = read_lock(&lock_path);
    assert_eq!(
        lock["images"][&image]["digest"],
        pause.digest.as_str(),
        "{lock:#}"
    );
    assert_eq!(lock["images"].as_object().unwrap().len(), 1, "{lock:#}");
}

fn copy_image(from: &str, to: &str) {
    let o = Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ])
        .arg(format!("docker://{from}"))
        .arg(format!("docker://{to}"))
        .output()
        .expect("run skopeo (install it: `cargo xtask install`)");
    assert!(
        o.status.success(),
        "skopeo copy {from} {to}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn read_lock(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[test]
fn lock_then_bundle_locked_and_a_tampered_lock_is_refused() {
    let set = fixture_set();
    let pause = find(&set, "k8s/pause");
    let base = find(&set, "fixtures/base");
    let reg = registry(false, Auth::None);
    let work = workdir();
    let images = vec![
        format!("{}/k8s/pause:3.9", reg.host),
        format!("{}/fixtures/base:1", reg.host),
    ];
    let spec = write_spec(work.path(), "app", &images, None, &registry_settings(&reg));

    // Default output: SPEC.lock, beside the spec, where `bundle --locked` looks.
    let printed = airlock_ok(work.path(), &["lock", spec.to_str().unwrap(), "--json"]);
    let lock_path = work.path().join("app.yaml.lock");
    let lock = read_lock(&lock_path);
    assert_eq!(serde_json::from_str::<Value>(&printed).unwrap(), lock);
    assert_eq!(lock["lockVersion"], 1);
    assert_eq!(lock["spec"], "app");
    assert_eq!(lock["images"][&images[0]]["digest"], pause.digest.as_str());
    assert_eq!(
        lock["images"][&images[0]]["source"],
        format!("{}/k8s/pause", reg.host).as_str()
    );
    assert_eq!(lock["images"][&images[1]]["digest"], base.digest.as_str());
    // Nothing but manifests was fetched: no blob cache was even created.
    assert!(!work.path().join("cache").exists());

    let out = work.path().join("app.tar.zst");
    let mut cmd = airlock(&work.path().join("cache"));
    cmd.args(["bundle", "--locked", "-o"]).arg(&out).arg(&spec);
    let o = run(cmd, None);
    assert!(o.status.success(), "bundle --locked: {}", stderr(&o));

    let forged = format!("sha256:{}", "1".repeat(64));
    let text = std::fs::read_to_string(&lock_path).unwrap();
    std::fs::write(&lock_path, text.replace(&pause.digest, &forged)).unwrap();
    let out2 = work.path().join("app2.tar.zst");
    let mut cmd = airlock(&work.path().join("cache"));
    cmd.args(["bundle", "--locked", "-o"]).arg(&out2).arg(&spec);
    let o = run(cmd, None);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    for needle in [images[0].as_str(), &pause.digest, &forged] {
        assert!(err.contains(needle), "`{needle}` missing from: {err}");
    }
    assert!(!out2.exists());

    // An image no source serves: nothing is written, the image is named, exit code 1.
    let bad = write_spec(
        work.path(),
        "bad",
        &[format!("{}/k8s/pause:9.9", reg.host)],
        None,
        &registry_settings(&reg),
    );
    let bad_lock = work.path().join("bad.lock");
    let mut cmd = airlock(&work.path().join("cache"));
    cmd.args(["lock", "-o"]).arg(&bad_lock).arg(&bad);
    let o = run(cmd, None);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("k8s/pause:9.9"), "{}", stderr(&o));
    assert!(!bad_lock.exists());
}

/// Mirrors with real registries: the lock is taken at the origin, so a mirror serving another
/// digest under the same tag is caught by `bundle --locked`; a mirror lacking the tag falls
/// through to the next source.
#[test]
fn lock_asks_the_origin_first_and_a_diverging_mirror_is_refused() {
    let set = fixture_set();
    let pause = find(&set, "k8s/pause");
    let base = find(&set, "fixtures/base");
    let origin = registry(false, Auth::None);
    let mirror = Registry::start(RegistryOptions::default()).expect("start a registry");
    // The mirror serves another image under the same name and tag.
    copy_image(
        &format!("{}/fixtures/base:1", origin.host),
        &format!("{}/k8s/pause:3.9", mirror.host),
    );
    let work = workdir();
    let image = format!("{}/k8s/pause:3.9", origin.host);
    let registries = format!(
        "    {o}: {{plainHttp: true, mirrors: [{m}/stale, {m}]}}\n    {m}: {{plainHttp: true}}\n",
        o = origin.host,
        m = mirror.host
    );
    let spec = write_spec(
        work.path(),
        "m",
        std::slice::from_ref(&image),
        None,
        &registries,
    );
    let lock_path = work.path().join("m.lock");

    airlock_ok(
        work.path(),
        &[
            "lock",
            spec.to_str().unwrap(),
            "-o",
            lock_path.to_str().unwrap(),
        ],
    );
    let lock = read_lock(&lock_path);
    assert_eq!(lock["images"][&image]["digest"], pause.digest.as_str());
    assert_eq!(
        lock["images"][&image]["source"],
        format!("{}/k8s/pause", origin.host).as_str()
    );

    let out = work.path().join("m.tar.zst");
    let mut cmd = airlock(&work.path().join("cache"));
    cmd.args(["bundle", "--locked", "--lock"])
        .arg(&lock_path)
        .arg("-o")
        .arg(&out)
        .arg(&spec);
    let o = run(cmd, None);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    for needle in [
        image.as_str(),
        &format!("`{}/k8s/pause`", mirror.host),
        &pause.digest,
        &base.digest,
    ] {
        assert!(err.contains(needle), "`{needle}` missing from: {err}");
    }
    assert!(!out.exists());

    // --via-mirrors locks what the mirrors serve (the stale one lacks the tag and is skipped).
    let via = work.path().join("via.lock");
    airlock_ok(
        work.path(),
        &[
            "lock",
            "--via-mirrors",
            spec.to_str().unwrap(),
            "-o",
            via.to_str().unwrap(),
        ],
    );
    let lock = read_lock(&via);
    assert_eq!(lock["images"][&image]["digest"], base.digest.as_str());
    assert_eq!(
        lock["images"][&image]["source"],
        format!("{}/k8s/pause", mirror.host).as_str()
    );
}

/// `k8s.gcr.io` is the old name of `registry.k8s.io`: its images use `registry.k8s.io`'s
/// mirrors and keep the name they were given.
#[test]
fn legacy_k8s_gcr_io_names_use_registry_k8s_io_mirrors() {
    let set = fixture_set();
    let pause = find(&set, "k8s/pause");
    let reg = registry(false, Auth::None);
    let work = workdir();
    let registries = format!(
        "    registry.k8s.io: {{mirrors: [{h}/k8s]}}\n    {h}: {{plainHttp: true}}\n",
        h = reg.host
    );
    let spec = write_spec(
        work.path(),
        "legacy",
        &["k8s.gcr.io/pause:3.9".to_string()],
        None,
        &registries,
    );
    let out = work.path().join("legacy.tar.zst");
    let summary = airlock_ok(
        work.path(),
        &[
            "bundle",
            "--json",
            spec.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    let summary: Value = serde_json::from_str(&summary).unwrap();
    let rec = &summary["images"][0];
    assert_eq!(rec["name"], "k8s.gcr.io/pause");
    assert_eq!(rec["source"], format!("{}/k8s/pause", reg.host).as_str());
    assert_eq!(rec["digest"], pause.digest.as_str());
}

/// The ready-made specs are valid for `airlock` itself (the unit test parses them too).
#[test]
fn bundled_kubernetes_specs_list_kubeadms_images() {
    let work = workdir();
    let root = airlock_testkit::workspace_root().join("bundle-specs");
    for minor in 27..=37 {
        let spec = root.join(format!("kubernetes-v1.{minor}.yaml"));
        let text = std::fs::read_to_string(&spec).unwrap();
        // v1.27 to v1.31 name their first release; the later ones the newest known patch.
        let version = if minor <= 31 {
            format!("v1.{minor}.0")
        } else {
            airlock_kube::newest_patch(minor).unwrap().to_string()
        };
        assert!(
            text.contains(&format!("version: {version}\n")),
            "{}",
            spec.display()
        );
        assert!(text.contains("platforms: [linux/amd64, linux/arm64]"));
        assert!(text.contains("# registries:"), "a commented mirror example");
        let list = airlock_ok(work.path(), &["images", "kubernetes", &version]);
        assert_eq!(list.lines().count(), 7);
    }
}

/// Parses a TOML file with Python's `tomllib` (a TOML 1.0 parser) and returns it as JSON.
fn parse_toml(path: &Path) -> Value {
    let o = Command::new("python3")
        .args([
            "-c",
            "import json, sys, tomllib; print(json.dumps(tomllib.load(open(sys.argv[1], 'rb'))))",
        ])
        .arg(path)
        .output()
        .expect("run python3 (3.11 or later, for tomllib; `apt-get install python3`)");
    assert!(
        o.status.success(),
        "`{}` is not valid TOML: {}",
        path.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Regression: `config kubeadm --registry 'a b: c'` and a `--ca-file` path with a newline
/// wrote YAML and TOML that do not parse, with exit 0. Every value `config` writes is
/// either refused (not a registry name) or written so that a YAML/TOML parser reads it back.
#[test]
fn config_outputs_parse_back_or_the_value_is_refused() {
    let work = workdir();
    for args in [
        &[
            "config",
            "kubeadm",
            "--kubernetes",
            "v1.28.0",
            "--registry",
            "a b: c",
        ][..],
        &[
            "config",
            "kubeadm",
            "--kubernetes",
            "v1.28.0",
            "--registry",
            "h\nkind: Pod",
        ],
        &["config", "docker", "--registry", "a b: c"],
        &["config", "containerd", "--registry", "a b: c", "--out", "x"],
        &[
            "config",
            "containerd",
            "--registry",
            "harbor.lan",
            "--upstream",
            "quay.io\n[evil]",
            "--out",
            "x",
        ],
    ] {
        let mut cmd = airlock(&work.path().join("cache"));
        cmd.current_dir(work.path()).args(args);
        let o = run(cmd, None);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("host"), "{args:?}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{args:?} printed a config");
        assert!(!work.path().join("x").exists(), "{args:?} wrote a config");
    }

    // An IPv6 target: a plain `[` would open a YAML flow sequence.
    let config = airlock_ok(
        work.path(),
        &[
            "config",
            "kubeadm",
            "--kubernetes",
            "v1.28.0",
            "--registry",
            "[fd00::1]:5000/k8s",
        ],
    );
    let doc: Value = serde_saphyr::from_str(&config).unwrap_or_else(|e| panic!("{e}\n{config}"));
    assert_eq!(doc["imageRepository"], "[fd00::1]:5000/k8s", "{config}");
    assert_eq!(doc["dns"]["imageRepository"], "[fd00::1]:5000/k8s/coredns");

    // A CA file whose path has a newline, a quote and a backslash is escaped, not cut.
    let ca = "/etc/ssl/odd\nname \"ca\" \\ x.pem";
    let out = work.path().join("certs.d");
    airlock_ok(
        work.path(),
        &[
            "config",
            "containerd",
            "--registry",
            "[fd00::1]:5000/k8s",
            "--ca-file",
            ca,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    for up in [
        "registry.k8s.io",
        "k8s.gcr.io",
        "docker.io",
        "quay.io",
        "ghcr.io",
    ] {
        let doc = parse_toml(&out.join(up).join("hosts.toml"));
        let hosts = doc["host"].as_object().unwrap();
        assert!(!hosts.is_empty(), "{doc}");
        for (url, h) in hosts {
            assert!(url.starts_with("https://[fd00::1]:5000/v2/k8s"), "{url}");
            assert_eq!(h["ca"], ca, "{doc}");
        }
    }
}

/// A file served by the download stand-in, with its `.sha256` beside it: bare hex as dl.k8s.io
/// publishes it, or `HEX  NAME` as `sha256sum` writes it (the CNI plugins' releases).
fn publish(root: &Path, url_path: &str, bytes: &[u8], sha256sum_style: bool) -> String {
    use sha2::{Digest as _, Sha256};
    let p = root.join(url_path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, bytes).unwrap();
    let hex = hex::encode(Sha256::digest(bytes));
    let line = if sha256sum_style {
        format!("{hex}  {}\n", p.file_name().unwrap().to_str().unwrap())
    } else {
        hex.clone()
    };
    let mut sum = p.as_os_str().to_owned();
    sum.push(".sha256");
    std::fs::write(std::path::PathBuf::from(sum), line).unwrap();
    format!("sha256:{hex}")
}

/// Must show 4: the node kit of one release (v1.35.2, linux/amd64: kubeadm, kubelet, kubectl,
/// crictl, the CNI plugins) bundles the release's images from the fixture registry, through a
/// registry.k8s.io mirror, and its binaries from nginx standing in for dl.k8s.io and GitHub
/// releases, through mirrors of those hosts, each checked against its published `.sha256`.
/// After `load` into an empty registry, `airlock config kubeadm` for the release names where
/// the images landed, and says nothing of the files.
#[test]
fn node_kit_bundles_images_and_binaries_and_kubeadm_finds_the_images() {
    let version = "v1.35.2";
    let set = fixture_set();
    let pause = find(&set, "k8s/pause");
    let fixtures = registry(false, Auth::None);
    // The mirror of registry.k8s.io: kubeadm's images of the release (the fixture pause image
    // under each name) below its `k8s` prefix.
    let reg = Registry::start(RegistryOptions::default()).expect("start a registry");
    let kubeadm_images = airlock_kube::images(version, None).unwrap();
    for i in &kubeadm_images {
        let path = i.strip_prefix("registry.k8s.io/").unwrap();
        copy_image(
            &format!("{}/k8s/pause:3.9", fixtures.host),
            &format!("{}/k8s/{path}", reg.host),
        );
    }

    let work = workdir();
    let site = work.path().join("site");
    let mut want_files: Vec<(String, String, u32, String)> = Vec::new();
    for bin in ["kubeadm", "kubelet", "kubectl"] {
        let path = format!("release/{version}/bin/linux/amd64/{bin}");
        let body = format!("#!/bin/sh\necho {bin} {version}\n{}", "x".repeat(1000));
        let digest = publish(&site.join("dl.k8s.io"), &path, body.as_bytes(), false);
        want_files.push((
            format!("kubernetes/{version}/linux/amd64/{bin}"),
            digest,
            0o755,
            format!("https://dl.k8s.io/{path}"),
        ));
    }
    let crictl =
        "kubernetes-sigs/cri-tools/releases/download/v1.35.0/crictl-v1.35.0-linux-amd64.tar.gz";
    let digest = publish(&site.join("github.com"), crictl, b"crictl archive", false);
    want_files.push((
        "crictl/v1.35.0/crictl-v1.35.0-linux-amd64.tar.gz".into(),
        digest,
        0o644,
        format!("https://github.com/{crictl}"),
    ));
    let cni =
        "containernetworking/plugins/releases/download/v1.8.0/cni-plugins-linux-amd64-v1.8.0.tgz";
    let digest = publish(&site.join("github.com"), cni, b"cni plugins archive", true);
    want_files.push((
        "cni/v1.8.0/cni-plugins-linux-amd64-v1.8.0.tgz".into(),
        digest,
        0o644,
        format!("https://github.com/{cni}"),
    ));
    let nginx = airlock_testkit::Nginx::start_static(&site, false)
        .expect("start nginx (is it installed? run `cargo xtask install`)");

    let spec = work.path().join("node-kit.yaml");
    std::fs::write(
        &spec,
        format!(
            "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {{name: node-kit}}\nspec:\n  \
             kubernetes:\n    version: {version}\n    platforms: [linux/amd64]\n    \
             binaries: [kubeadm, kubelet, kubectl]\n    crictl: v1.35.0\n    cni: v1.8.0\n  \
             registries:\n    registry.k8s.io: {{mirrors: [{r}/k8s]}}\n    {r}: {{plainHttp: true}}\n    \
             dl.k8s.io: {{mirrors: [{n}/dl.k8s.io]}}\n    github.com: {{mirrors: [{n}/github.com]}}\n    \
             {n}: {{plainHttp: true}}\n",
            r = reg.host,
            n = nginx.host
        ),
    )
    .unwrap();
    let out = work.path().join("node-kit.tar.zst");
    airlock_ok(
        work.path(),
        &[
            "bundle",
            spec.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
    );

    // The inventory: every image of the release, every file with its sha256, mode and origin.
    let m = crate::artifacts::manifest_of(&out);
    let records = m["images"].as_array().unwrap();
    for i in &kubeadm_images {
        let r = records
            .iter()
            .find(|r| r["reference"] == i.as_str())
            .unwrap_or_else(|| panic!("`{i}` not in the bundle: {m:#}"));
        assert_eq!(r["digest"], pause.digest.as_str(), "{i}");
        assert!(r.get("content").is_none_or(Value::is_null), "{r:#}");
    }
    for (name, digest, mode, url) in &want_files {
        let r = records
            .iter()
            .find(|r| r["content"]["name"] == name.as_str())
            .unwrap_or_else(|| panic!("file `{name}` not in the bundle: {m:#}"));
        let f = &r["content"];
        assert_eq!(f["type"], "file", "{r:#}");
        assert_eq!(f["digest"], digest.as_str(), "{name}");
        assert_eq!(f["mode"], *mode, "{name}");
        assert_eq!(f["url"], url.as_str(), "{name}");
        assert_eq!(f["checksum"]["from"], "url", "{name}");
        assert_eq!(
            f["checksum"]["url"],
            format!("{url}.sha256").as_str(),
            "{name}"
        );
        // Fetched through the mirror, never from the origin.
        assert!(
            r["source"].as_str().unwrap().starts_with(&nginx.host),
            "{r:#}"
        );
    }
    assert_eq!(records.len(), kubeadm_images.len() + want_files.len());

    // Offline: load into an empty registry, then kubeadm's configuration for the release.
    let target = Registry::start(RegistryOptions::default()).expect("start a registry");
    let mut cmd = airlock(&work.path().join("cache"));
    cmd.arg("load")
        .arg(&out)
        .arg("--to")
        .arg(format!("registry://{}/k8s", target.host))
        .args([
            "--plain-http",
            "--names",
            "drop-host",
            "--insecure-skip-signature",
        ]);
    let o = run(cmd, None);
    assert!(o.status.success(), "load: {}", stderr(&o));
    let config = airlock_ok(
        work.path(),
        &[
            "config",
            "kubeadm",
            "--registry",
            &format!("{}/k8s", target.host),
            "--kubernetes",
            version,
        ],
    );
    for word in [
        "files/",
        "crictl",
        "cni-plugins",
        "dl.k8s.io",
        "github.com",
        "kubernetes/v1.35.2",
    ] {
        assert!(!config.contains(word), "`{word}` in:\n{config}");
    }
    let tag = |i: usize| kubeadm_images[i].rsplit_once(':').unwrap().1;
    let pulled = kubeadm_pulls(&config, tag(4), tag(5), tag(6));
    assert_eq!(pulled.len(), 7);
    for name in pulled {
        let o = Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{name}"))
            .output()
            .expect("run skopeo (install it: `cargo xtask install`)");
        assert!(
            o.status.success(),
            "kubeadm would pull `{name}`, which is not in the target: {}\n{config}",
            String::from_utf8_lossy(&o.stderr)
        );
        use sha2::{Digest as _, Sha256};
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&o.stdout)));
        assert_eq!(digest, pause.digest, "{name}");
    }
}
