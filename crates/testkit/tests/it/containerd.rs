use std::time::Instant;

use airlock_testkit::{fixtures, Auth, Containerd, Registry};

use crate::succeed;

#[test]
fn containerd_starts_and_answers_ctr_version() {
    let started = Instant::now();
    let containerd = Containerd::start().unwrap();
    eprintln!("containerd started in {:?}", started.elapsed());
    let out = String::from_utf8(succeed(containerd.ctr().arg("version"))).unwrap();
    assert!(out.contains("Server:"), "{out}");
    let dir = containerd.dir.clone();
    assert!(containerd.socket.as_os_str().len() < 100);
    drop(containerd);
    assert!(!dir.exists(), "containerd's directory is removed on drop");
}

/// containerd's resolver against the token registry (it tries the OAuth2 POST form first)
/// over TLS with a hosts.toml naming the CA.
#[test]
fn containerd_pulls_through_token_auth_and_tls() {
    let set = fixtures::fixture_set().unwrap();
    let registry = Registry::with_fixtures(true, Auth::token("alice", "wonderland")).unwrap();
    let containerd = Containerd::start().unwrap();
    let hosts = containerd.hosts_dir_for(&registry).unwrap();
    let image = set.image("fixtures/multi").unwrap();
    let reference = image.reference(&registry.host);
    succeed(
        containerd
            .ctr()
            .args([
                "images",
                "pull",
                "--all-platforms",
                "--user",
                "alice:wonderland",
            ])
            .arg("--hosts-dir")
            .arg(&hosts)
            .arg(&reference),
    );
    let listed = String::from_utf8(succeed(containerd.ctr().args(["images", "ls"]))).unwrap();
    assert!(
        listed.contains(&reference) && listed.contains(&image.digest),
        "{listed}"
    );
    assert!(registry.token_issuer().unwrap().tokens_issued() > 0);
}

/// Dropping a Containerd with a running task leaves no shim, mount or directory behind.
#[test]
fn drop_kills_tasks_and_cleans_up() {
    let containerd = Containerd::start().unwrap();
    // A minimal rootfs: the host's `sleep` and the libraries it loads.
    let rootfs = containerd.dir.join("sleep-rootfs");
    let ldd =
        String::from_utf8(succeed(std::process::Command::new("ldd").arg("/bin/sleep"))).unwrap();
    let mut files = vec!["/bin/sleep".to_string()];
    files.extend(
        ldd.split_whitespace()
            .filter(|word| word.starts_with('/'))
            .map(str::to_string),
    );
    for file in files {
        let target = rootfs.join(file.trim_start_matches('/'));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&file, &target).unwrap();
    }
    succeed(
        containerd
            .ctr()
            .args(["run", "-d", "--rootfs"])
            .arg(&rootfs)
            .args(["sleeper", "/bin/sleep", "600"]),
    );
    let tasks = String::from_utf8(succeed(containerd.ctr().args(["tasks", "ls"]))).unwrap();
    assert!(
        tasks.contains("sleeper") && tasks.contains("RUNNING"),
        "{tasks}"
    );
    let dir = containerd.dir.clone();
    let socket = containerd.socket.to_string_lossy().into_owned();
    drop(containerd);
    assert!(!dir.exists(), "directory removed");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(dir.to_str().unwrap()), "{mounts}");
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        assert!(!cmdline.contains(&socket), "still running: {cmdline}");
    }
}
