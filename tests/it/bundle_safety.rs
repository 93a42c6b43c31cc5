//! `airlock bundle` when things go wrong around it: a damaged cache, output paths that must not
//! be written, closed pipes, Ctrl-C and SIGKILL, resumed downloads.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use airlock_testkit::Auth;
use serde_json::Value;

use crate::support::*;

/// Generous: a run on a loaded 2-core machine takes seconds; a hang never ends.
const HANG: Duration = Duration::from_secs(180);

/// Waits for `child`, killing it and failing the test if it runs longer than `limit`.
fn wait_bounded(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {limit:?} (hung)");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Hidden temporary bundle files in `dir`.
fn temps(dir: &Path) -> Vec<String> {
    listing(dir)
        .into_iter()
        .filter(|n| n.starts_with('.') && n.contains(".tmp-"))
        .collect()
}

fn flip_byte(path: &Path, at: u64) {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    f.seek(SeekFrom::Start(at)).unwrap();
    f.read_exact(&mut b).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&[b[0] ^ 0x20]).unwrap();
}

fn verify_with_key(work: &Path, bundle: &Path, key: &Path) -> std::process::Output {
    let mut cmd = airlock(&work.join("cache"));
    cmd.arg("verify").arg(bundle).arg("--key").arg(key);
    run(cmd, None)
}

fn verify_unsigned(work: &Path, bundle: &Path) -> std::process::Output {
    let mut cmd = airlock(&work.join("cache"));
    cmd.arg("verify")
        .arg(bundle)
        .arg("--insecure-skip-signature");
    run(cmd, None)
}

fn key_pair(work: &Path) -> (PathBuf, PathBuf) {
    let mut cmd = airlock(&work.join("cache"));
    cmd.args(["key", "generate", "--no-passphrase", "--out"])
        .arg(work.join("signer"))
        .env_remove("AIRLOCK_KEY_PASSPHRASE");
    let o = run(cmd, None);
    assert!(o.status.success(), "key generate: {}", stderr(&o));
    (work.join("signer.key"), work.join("signer.pub"))
}

// Regression (hardening, defect 1): a cached layer flipped in place (same size) was packed
// into the next bundle and signed; `verify` then refused the bundle. Must show 2.
#[test]
fn a_damaged_cache_entry_is_fetched_again_and_the_signed_bundle_verifies() {
    let set = fixture_set();
    let reg = registry(false, Auth::None);
    let work = workdir();
    let images = small_refs(&reg.host);
    let spec = write_spec(
        work.path(),
        "cached",
        &images,
        None,
        &registry_settings(&reg),
    );
    let (key, public) = key_pair(work.path());
    let cache = work.path().join("cache");
    let first = work.path().join("first.tar.zst");
    let mut cmd = airlock(&cache);
    cmd.args(["bundle", "--quiet", "-o"]).arg(&first).arg(&spec);
    let o = run(cmd, None);
    assert!(o.status.success(), "first bundle: {}", stderr(&o));

    // Two layers (of different images) and one config damaged in place, sizes unchanged.
    let app = find(&set, "fixtures/app-a");
    let base = find(&set, "fixtures/base");
    let app_layer = app.manifests[0].layers.last().unwrap().0.clone();
    let base_layer = base.manifests[0].layers[0].0.clone();
    let app_config = app.manifests[0].config.0.clone();
    assert_ne!(app_layer, base_layer);
    let damaged = [&app_layer, &base_layer, &app_config];
    for d in damaged {
        let path = cache.join("blobs/sha256").join(&d[7..]);
        let len = std::fs::metadata(&path).unwrap().len();
        flip_byte(&path, len / 2);
        assert_ne!(&sha256_file(&path), d, "the flip did not change the file");
    }

    let out = work.path().join("second.tar.zst");
    let mut cmd = airlock(&cache);
    cmd.args(["bundle", "--sign-key"])
        .arg(&key)
        .arg("-o")
        .arg(&out)
        .arg(&spec);
    let o = run(cmd, None);
    let err = stderr(&o);
    assert!(o.status.success(), "second bundle: {err}");
    for d in damaged {
        assert!(
            err.lines()
                .any(|l| l.contains(d.as_str())
                    && l.contains("did not match its digest; fetched again")),
            "the run does not say it fetched {d} again: {err}"
        );
        let path = cache.join("blobs/sha256").join(&d[7..]);
        assert_eq!(
            &sha256_file(&path),
            d,
            "the cache entry of {d} is still damaged"
        );
    }
    let v = verify_with_key(work.path(), &out, &public);
    assert!(
        v.status.success(),
        "verify --key of the new bundle: {}",
        stderr(&v)
    );
    assert_eq!(temps(work.path()), Vec::<String>::new());
}

/// A loopback port nothing listens on: any network attempt fails at once.
fn dead_host() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("127.0.0.1:{port}")
}

fn refused(o: &std::process::Output, needle: &str, what: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{what}: exit code; stderr: {err}");
    assert!(
        err.contains(needle),
        "{what}: `{needle}` missing from: {err}"
    );
    // Refused before any registry was asked: the dead registry would have been named.
    assert!(
        !err.contains("resolved") && !err.contains("not reachable") && !err.contains("connect"),
        "{what}: the run went to the network first: {err}"
    );
}

// Regression (hardening, defect 2): `-o` replaced whatever was at the path by rename (a
// device became a regular file, the spec was overwritten), a directory failed only after
// every download, and a lock into a missing directory failed after the bundle was written.
#[test]
fn output_paths_are_checked_before_any_network_work() {
    let work = workdir();
    let w = work.path();
    let host = dead_host();
    let spec = write_spec(
        w,
        "s",
        &[format!("{host}/fixtures/base:1")],
        None,
        &format!("    {host}: {{plainHttp: true}}\n"),
    );
    let spec_text = std::fs::read(&spec).unwrap();
    let bundle = |out: &Path, extra: &[&str]| {
        let mut cmd = airlock(&w.join("cache"));
        cmd.args(["bundle", "-o"]).arg(out).arg(&spec).args(extra);
        run(cmd, None)
    };

    let dir = w.join("a-directory");
    std::fs::create_dir(&dir).unwrap();
    refused(&bundle(&dir, &[]), "is a directory", "-o DIR");
    assert!(dir.is_dir());

    refused(&bundle(&spec, &[]), "is the spec", "-o SPEC");
    let hard = w.join("hard-link.yaml");
    std::fs::hard_link(&spec, &hard).unwrap();
    refused(&bundle(&hard, &[]), "is the spec", "-o hard link to SPEC");
    let other_path = w.join("a-directory/../s.yaml");
    refused(
        &bundle(&other_path, &[]),
        "is the spec",
        "-o SPEC by another path",
    );
    let link = w.join("link.tar.zst");
    std::os::unix::fs::symlink(&spec, &link).unwrap();
    refused(
        &bundle(&link, &[]),
        "is a symbolic link",
        "-o symlink to SPEC",
    );
    assert_eq!(std::fs::read(&spec).unwrap(), spec_text, "the spec changed");

    let fifo = w.join("fifo.tar.zst");
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
    refused(&bundle(&fifo, &[]), "is a fifo", "-o FIFO");
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());

    refused(
        &bundle(Path::new("/dev/null"), &[]),
        "is a character device",
        "-o /dev/null",
    );
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());

    refused(
        &bundle(&w.join("missing/b.tar.zst"), &[]),
        "does not exist",
        "-o into a missing directory",
    );
    let out = w.join("b.tar.zst");
    refused(
        &bundle(
            &out,
            &["--lock", w.join("missing/s.lock").to_str().unwrap()],
        ),
        "does not exist",
        "--lock into a missing directory",
    );
    refused(
        &bundle(&out, &["--lock", spec.to_str().unwrap()]),
        "is the spec",
        "--lock SPEC",
    );
    refused(
        &bundle(&out, &["--lock", out.to_str().unwrap()]),
        "is the bundle",
        "--lock OUT",
    );

    // `airlock lock -o` and `key generate --out` go through the same check.
    let mut cmd = airlock(&w.join("cache"));
    cmd.args(["lock", "-o"]).arg(&dir).arg(&spec);
    refused(&run(cmd, None), "is a directory", "lock -o DIR");
    let mut cmd = airlock(&w.join("cache"));
    cmd.args(["key", "generate", "--no-passphrase", "--out"])
        .arg(w.join("missing/k"));
    refused(
        &run(cmd, None),
        "does not exist",
        "key generate --out missing/k",
    );

    assert_eq!(
        temps(w),
        Vec::<String>::new(),
        "a refused run left a temporary file"
    );
    assert!(!out.exists());
}

#[test]
fn replacing_an_existing_bundle_is_said() {
    let reg = registry(false, Auth::None);
    let work = workdir();
    let spec = write_spec(
        work.path(),
        "r",
        &[format!("{}/fixtures/base:1", reg.host)],
        None,
        &registry_settings(&reg),
    );
    let out = work.path().join("r.tar.zst");
    for round in 0..2 {
        let mut cmd = airlock(&work.path().join("cache"));
        cmd.args(["bundle", "-o"]).arg(&out).arg(&spec);
        let o = run(cmd, None);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(
            stderr(&o).contains("will be replaced once the new bundle is complete"),
            round == 1,
            "{}",
            stderr(&o)
        );
    }
}

// Regression (hardening, defect 4): with stderr closed early (`2>&1 | head -1`) a run with an
// empty cache hung for good (the archive writer waited for layers after a progress line
// panicked) or exited 101, leaving `.NAME.tmp-*`; `--json | head -c 10` panicked.
#[test]
fn closed_pipes_never_hang_panic_or_leave_a_temporary_file() {
    let set = fixture_set();
    let reg = registry(false, Auth::None);
    let work = workdir();
    // The 100 MiB layer keeps the writer waiting while progress lines are printed.
    let mut images = small_refs(&reg.host);
    images.push(find(&set, "fixtures/big").reference(&reg.host));
    let spec = write_spec(
        work.path(),
        "pipes",
        &images,
        None,
        &registry_settings(&reg),
    );

    for round in 0..3 {
        let out = work.path().join(format!("err-{round}.tar.zst"));
        let mut cmd = airlock(&work.path().join(format!("cache-err-{round}")));
        cmd.args(["bundle", "-o"])
            .arg(&out)
            .arg(&spec)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut first = String::new();
        BufReader::new(child.stderr.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        // The reading end is dropped here: every later write to stderr fails with EPIPE.
        let st = wait_bounded(&mut child, HANG, "bundle with a closed stderr");
        assert_ne!(st.code(), Some(101), "round {round}: the run panicked");
        assert!(
            st.code().is_some(),
            "round {round}: killed by a signal: {st:?}"
        );
        if st.success() {
            let v = verify_unsigned(work.path(), &out);
            assert!(v.status.success(), "round {round}: {}", stderr(&v));
        } else {
            assert!(!out.exists(), "round {round}: a failed run left a bundle");
        }
        assert_eq!(temps(work.path()), Vec::<String>::new(), "round {round}");
    }

    // stdout closed before the summary: the bundle is complete, the run says so and exits 2.
    for flags in [&["--json"][..], &["--json", "--quiet"][..]] {
        let out = work.path().join("json.tar.zst");
        let mut cmd = airlock(&work.path().join("cache-json"));
        cmd.args(["bundle", "-o"])
            .arg(&out)
            .arg(&spec)
            .args(flags)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        drop(child.stdout.take());
        let mut err = String::new();
        let mut pipe = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            let _ = pipe.read_to_string(&mut err);
            err
        });
        let st = wait_bounded(&mut child, HANG, "bundle --json with a closed stdout");
        let err = reader.join().unwrap();
        assert_eq!(st.code(), Some(2), "{flags:?}: {err}");
        assert!(!err.contains("panicked"), "{flags:?}: {err}");
        assert!(
            err.contains("cannot write to standard output"),
            "{flags:?}: {err}"
        );
        let v = verify_unsigned(work.path(), &out);
        assert!(v.status.success(), "{flags:?}: {}", stderr(&v));
        assert_eq!(temps(work.path()), Vec::<String>::new());
    }
}

/// A byte-level TCP proxy in front of `upstream` that sends the answers slowly (about
/// 2 MiB/s), so a large layer takes long enough to interrupt a run mid-download.
fn slow_proxy(upstream: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let (mut c_read, mut s_write) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c_read, &mut s_write);
                let _ = s_write.shutdown(std::net::Shutdown::Write);
            });
            let (mut s_read, mut c_write) = (server, client);
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                loop {
                    match s_read.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if c_write.write_all(&buf[..n]).is_err() {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(8));
                        }
                    }
                }
                let _ = c_write.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    addr
}

/// Waits until `dir` holds a temporary bundle file other than `except`; returns its name.
fn wait_for_temp(dir: &Path, except: &[String], child: &mut Child) -> String {
    let start = Instant::now();
    loop {
        if let Some(t) = temps(dir).into_iter().find(|t| !except.contains(t)) {
            return t;
        }
        if let Some(st) = child.try_wait().unwrap() {
            panic!("the run ended ({st:?}) before its temporary file was seen");
        }
        assert!(start.elapsed() < HANG, "no temporary file appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: &str) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(st.success());
}

// Regression (hardening, defect 8): Ctrl-C left a `.NAME.tar.zst.tmp-*` that no later run
// removed; so did SIGKILL (which cannot be caught: the next run must clean up, without ever
// touching the temporary file of a run that is still alive).
#[test]
fn ctrl_c_removes_the_temporary_file_and_a_later_run_removes_a_killed_ones() {
    let set = fixture_set();
    let reg = registry(false, Auth::None);
    let slow = slow_proxy(reg.host.clone());
    let work = workdir();
    let w = work.path();
    let big = find(&set, "fixtures/big");
    let slow_spec = write_spec(
        w,
        "slow",
        &[big.reference(&slow)],
        None,
        &format!("    {slow}: {{plainHttp: true}}\n"),
    );
    let fast_spec = write_spec(
        w,
        "fast",
        &[format!("{}/fixtures/base:1", reg.host)],
        None,
        &registry_settings(&reg),
    );
    let out = w.join("b.tar.zst");
    let spawn_slow = || {
        let mut cmd = airlock(&w.join("cache-slow"));
        cmd.args(["bundle", "-o"])
            .arg(&out)
            .arg(&slow_spec)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd.spawn().unwrap()
    };

    // SIGKILL mid-download: the temporary file stays behind (nothing can remove it then).
    let mut killed = spawn_slow();
    let killed_temp = wait_for_temp(w, &[], &mut killed);
    signal(&killed, "KILL");
    killed.wait().unwrap();
    assert_eq!(temps(w), vec![killed_temp.clone()]);

    // The next run removes it, and keeps its own while it lives.
    let mut live = spawn_slow();
    let live_temp = wait_for_temp(w, std::slice::from_ref(&killed_temp), &mut live);
    let start = Instant::now();
    while temps(w).contains(&killed_temp) {
        assert!(
            start.elapsed() < HANG,
            "the killed run's temporary file was not removed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // A third run to the same path while the second is alive: the live file is kept.
    let mut cmd = airlock(&w.join("cache-fast"));
    cmd.args(["bundle", "-o"]).arg(&out).arg(&fast_spec);
    let o = run(cmd, None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        temps(w),
        vec![live_temp.clone()],
        "a live run's temporary file was removed"
    );
    let finished = std::fs::read(&out).unwrap();

    // Ctrl-C: the run removes its temporary file, says so and exits 130.
    signal(&live, "INT");
    let mut err = String::new();
    live.stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let st = wait_bounded(&mut live, HANG, "bundle after SIGINT");
    assert_eq!(st.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert_eq!(
        temps(w),
        Vec::<String>::new(),
        "SIGINT left a temporary file"
    );
    assert_eq!(
        std::fs::read(&out).unwrap(),
        finished,
        "the interrupted run changed `-o`"
    );
}

// Regression (hardening, defect 8): a download resumed from an earlier interrupted one was
// reported as downloaded whole.
#[test]
fn a_resumed_download_counts_only_the_bytes_it_downloaded() {
    let set = fixture_set();
    let reg = registry(false, Auth::None);
    let work = workdir();
    let big = find(&set, "fixtures/big");
    let spec = write_spec(
        work.path(),
        "resume",
        &[big.reference(&reg.host)],
        None,
        &registry_settings(&reg),
    );
    let layers: Vec<(String, u64)> = big
        .manifests
        .iter()
        .flat_map(|m| m.layers.clone())
        .collect();
    let (digest, size) = layers.iter().max_by_key(|l| l.1).unwrap().clone();
    let total: u64 = layers.iter().map(|l| l.1).sum();
    // The first 40 MiB of the large layer, as an interrupted run leaves them.
    let have = 40u64 << 20;
    assert!(size > have);
    let cache = work.path().join("cache");
    std::fs::create_dir_all(cache.join("tmp")).unwrap();
    let data = std::fs::read(set.blob_path(&digest)).unwrap();
    std::fs::write(
        cache.join("tmp").join(format!("{}.partial", &digest[7..])),
        &data[..have as usize],
    )
    .unwrap();

    let out = work.path().join("resume.tar.zst");
    let mut cmd = airlock(&cache);
    cmd.args(["bundle", "--json", "-o"]).arg(&out).arg(&spec);
    let o = run(cmd, None);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        summary["downloadedBytes"].as_u64(),
        Some(total - have),
        "{summary}"
    );
    assert_eq!(summary["resumedBytes"].as_u64(), Some(have), "{summary}");
    assert!(
        err.contains(&format!("resuming {digest} at 40.0 MiB")),
        "the resume is not reported: {err}"
    );
    assert!(err.contains("(and 40.0 MiB resumed)"), "{err}");
}
