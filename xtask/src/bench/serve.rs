//! `cargo xtask bench serve`: the largest fixture (`fixtures/big`) bundled and signed, served
//! by `airlock serve` to 16 parallel pulls (the manifest, then the layer), beside nginx
//! serving the same layer as a static file (sendfile) to the same clients, and `zstd -d` of
//! the bundle for the decode speed of this machine.
//!
//! Every pull is checked, two ways:
//! - throughput rounds: each client compares every byte it receives with the layer (read
//!   from the bundle once and checked against its digest first), which costs the clients
//!   little, so the rounds measure the server and the loopback rather than the clients;
//! - a digest round: each client hashes what it received (SHA-256) and compares it with the
//!   digest, as a registry client does. The clients' hashing, on the same 2 cores, then
//!   bounds the round's speed.
//!
//! Each run starts a fresh `airlock serve`: its first round finds the layer unchecked (the
//! server hashes it once while streaming), its second round finds it verified. The server's
//! peak RSS (`VmHWM`) and CPU time come from `/proc`.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use airlock_layout::Digest;
use airlock_testkit::{fixtures, Auth, Registry};
use anyhow::{bail, Context as _};

use super::{mb, measure, median, prepare, signed_fixture_bundle};

/// Parallel pulls in each round.
const CLIENTS: usize = 16;

/// What a client checks the body of one GET against.
#[derive(Clone, Copy)]
enum Expect<'a> {
    /// Hashes the body (SHA-256) and compares digest and length.
    Digest(&'a str, u64),
    /// Compares the body byte by byte.
    Bytes(&'a [u8]),
}

/// One round's outcome.
struct Round {
    seconds: f64,
    /// CPU seconds of the server during the round (None for nginx).
    server_cpu: Option<f64>,
}

pub(super) fn bench_serve(runs: usize) -> anyhow::Result<()> {
    let (airlock, work) = prepare("bench-serve")?;

    let set = fixtures::fixture_set()?;
    let big = set
        .image("fixtures/big")
        .context("fixture `fixtures/big` is missing")?
        .clone();
    let source = Registry::with_fixtures(false, Auth::None)?;
    let bundle = signed_fixture_bundle(
        &airlock,
        &work,
        &source.host,
        std::iter::once(format!("{}/fixtures/big:{}", source.host, big.tags[0])),
    )?;
    drop(source);
    let (layer, layer_size) = big.manifests[0].layers[0].clone();
    let layer_bytes = read_layer(&bundle, &layer)?;
    if layer_bytes.len() as u64 != layer_size {
        bail!(
            "the bundle's layer `{layer}` has {} bytes, not {layer_size}",
            layer_bytes.len()
        );
    }
    let www = work.join("www");
    std::fs::create_dir_all(&www)?;
    std::fs::write(www.join("layer"), &layer_bytes)?;

    // zstd -d of the whole bundle, for the decode speed of this machine.
    let tar_bytes = {
        let o = Command::new("sh")
            .arg("-c")
            .arg(format!("zstd -q -d -c '{}' | wc -c", bundle.display()))
            .output()?;
        String::from_utf8_lossy(&o.stdout).trim().parse::<u64>()?
    };
    eprintln!(
        "corpus: `fixtures/big` ({:.1} MB layer), bundle {:.1} MB ({:.1} MB of tar); {CLIENTS} \
         clients each pull the manifest and the layer",
        mb(layer_size),
        mb(std::fs::metadata(&bundle)?.len()),
        mb(tar_bytes)
    );

    let manifest_path = format!("/v2/fixtures/big/manifests/{}", big.tags[0]);
    let layer_path = format!("/v2/fixtures/big/blobs/{layer}");
    let compared = [
        (
            manifest_path.as_str(),
            Expect::Digest(&big.digest, big.size),
        ),
        (layer_path.as_str(), Expect::Bytes(&layer_bytes)),
    ];
    let hashed = [
        (
            manifest_path.as_str(),
            Expect::Digest(&big.digest, big.size),
        ),
        (layer_path.as_str(), Expect::Digest(&layer, layer_size)),
    ];
    // The same bytes the pulls carry: the bundle decoded once per client, one after another
    // (one core; a single 0.03 s decode is too short to time).
    let zstd_cmd = || {
        let mut c = Command::new("sh");
        c.arg("-c").arg(format!(
            "for i in $(seq {CLIENTS}); do zstd -q -d -c '{}'; done > /dev/null",
            bundle.display()
        ));
        c
    };
    // Interleaved, so that a slower moment of the machine touches every path alike.
    let mut nginx = StaticNginx::start(&work, &www)?;
    let (mut first, mut verified, mut digests) = (Vec::new(), Vec::new(), Vec::new());
    let (mut zstd, mut plain) = (Vec::new(), Vec::new());
    let mut hwm_kib = 0u64;
    for _ in 0..runs {
        zstd.push(measure(zstd_cmd()).context("zstd -d")?);
        let mut server = ServeProcess::start(&airlock, &bundle, &work)?;
        first.push(round(&server.addr, Some(server.pid()), &compared)?);
        verified.push(round(&server.addr, Some(server.pid()), &compared)?);
        digests.push(round(&server.addr, Some(server.pid()), &hashed)?);
        hwm_kib = hwm_kib.max(server.peak_rss_kib()?);
        server.stop()?;
        plain.push(round(
            &nginx.addr,
            None,
            &[("/layer", Expect::Bytes(&layer_bytes))],
        )?);
    }
    nginx.stop();
    let z = median(&mut zstd);
    let zrate = mb(tar_bytes * CLIENTS as u64) / z.seconds;

    let pull_bytes = (layer_size + big.size) * CLIENTS as u64;
    let rate = |r: &Round| mb(pull_bytes) / r.seconds;
    let (f, v, d) = (mid(&mut first), mid(&mut verified), mid(&mut digests));
    let n = mid(&mut plain);
    let nginx_rate = mb(layer_size * CLIENTS as u64) / n.seconds;
    let cpu = |r: &Round| r.server_cpu.unwrap_or(f64::NAN);
    let per_cpu = |r: &Round| mb(pull_bytes) / cpu(r).max(0.01);
    println!();
    println!(
        "| path ({CLIENTS} parallel pulls) | wall time (median of {runs}) | throughput | of zstd -d | server CPU | MB per server CPU-second | peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (what, r) in [
        (
            "airlock serve, first read (the server checks the layer once), bytes compared",
            &f,
        ),
        ("airlock serve, layer verified, bytes compared", &v),
        (
            "airlock serve, layer verified, every pull hashed by its client (SHA-256)",
            &d,
        ),
    ] {
        println!(
            "| {what} | {:.2} s | {:.0} MB/s | {:.2} | {:.2} s | {:.0} | {} |",
            r.seconds,
            rate(r),
            rate(r) / zrate,
            cpu(r),
            per_cpu(r),
            if std::ptr::eq(r, &f) {
                format!("{:.1} MiB (VmHWM, whole run)", hwm_kib as f64 / 1024.0)
            } else {
                String::new()
            }
        );
    }
    println!(
        "| nginx 1.22 (2 workers, sendfile), the layer as a static file, bytes compared | {:.2} s | {nginx_rate:.0} MB/s | {:.2} | | | |",
        n.seconds,
        nginx_rate / zrate
    );
    println!(
        "| zstd -d -c BUNDLE > /dev/null, {CLIENTS} times in a row (one core) | {:.2} s | {zrate:.0} MB/s | 1.00 | {:.2} s | {zrate:.0} | {:.1} MiB |",
        z.seconds,
        z.seconds,
        z.max_rss_kib as f64 / 1024.0
    );
    println!();
    println!(
        "all {} pulls were checked (every byte compared, or hashed to the digest); serve / zstd -d \
         throughput: {:.2} first read, {:.2} verified (target >= 0.70); serve / nginx: {:.2} \
         verified; peak RSS {:.1} MiB (target <= 128)",
        CLIENTS * runs * 3,
        rate(&f) / zrate,
        rate(&v) / zrate,
        rate(&v) / nginx_rate,
        hwm_kib as f64 / 1024.0
    );
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// The median round (by wall time).
fn mid(v: &mut [Round]) -> Round {
    v.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    let r = &v[v.len() / 2];
    Round {
        seconds: r.seconds,
        server_cpu: r.server_cpu,
    }
}

/// The layer's bytes read from the bundle through its frame index, checked against `digest`.
fn read_layer(bundle: &Path, digest: &str) -> anyhow::Result<Vec<u8>> {
    let d: Digest = digest.parse()?;
    let mut file = std::fs::File::open(bundle)?;
    let index = airlock_layout::FrameIndex::read_from(&mut file)?;
    let bytes = airlock_layout::read_entry(&mut file, &index, &d.blob_path())?;
    if Digest::of_bytes(&bytes) != d {
        bail!("the bundle's layer does not hash to `{digest}`");
    }
    Ok(bytes)
}

/// `CLIENTS` clients at once, each GETting `items` in order on fresh connections and checking
/// every body; fails on the first wrong body.
fn round(addr: &str, server: Option<u32>, items: &[(&str, Expect<'_>)]) -> anyhow::Result<Round> {
    let cpu_before = server.map(cpu_seconds).transpose()?;
    let started = Instant::now();
    let results: Vec<anyhow::Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|_| s.spawn(|| items.iter().try_for_each(|(p, e)| pull(addr, p, *e))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client thread"))
            .collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    for r in results {
        r?;
    }
    let server_cpu = match (server, cpu_before) {
        (Some(pid), Some(before)) => Some(cpu_seconds(pid)? - before),
        _ => None,
    };
    Ok(Round {
        seconds,
        server_cpu,
    })
}

/// One GET of `path`, its body checked against `expect`.
fn pull(addr: &str, path: &str, expect: Expect<'_>) -> anyhow::Result<()> {
    match expect {
        Expect::Digest(want, size) => {
            let mut h = airlock_layout::Hasher::new();
            let n = http_get(addr, path, &mut |b| h.update(b))?;
            let got: Digest = h.finish();
            if got.to_string() != want || n != size {
                bail!("{path}: {n} bytes hashing to {got}, want {want} ({size} bytes)");
            }
        }
        Expect::Bytes(want) => {
            let (mut at, mut differs) = (0usize, None);
            let n = http_get(addr, path, &mut |b| {
                if differs.is_none() && want.get(at..at + b.len()) != Some(b) {
                    differs = Some(at);
                }
                at += b.len();
            })?;
            if let Some(at) = differs {
                bail!("{path}: the body differs from the layer in the piece read at byte {at}");
            }
            if n != want.len() as u64 {
                bail!("{path}: {n} bytes, want {}", want.len());
            }
        }
    }
    Ok(())
}

/// `airlock serve BUNDLE --names drop-host` on a free loopback port, until stopped.
struct ServeProcess {
    child: Child,
    addr: String,
    log: std::path::PathBuf,
}

impl ServeProcess {
    fn start(airlock: &Path, bundle: &Path, work: &Path) -> anyhow::Result<ServeProcess> {
        let port = airlock_testkit::free_port();
        let log = work.join("serve.log");
        let mut child = Command::new(airlock)
            .arg("serve")
            .arg(bundle)
            .arg("--key")
            .arg(work.join("signer.pub"))
            .args([
                "--names",
                "drop-host",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .context("start airlock serve")?;
        let addr = format!("127.0.0.1:{port}");
        wait_ready(&addr, "/v2/", &mut child, &log)?;
        Ok(ServeProcess { child, addr, log })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn peak_rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        Ok(status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0))
    }

    /// SIGTERM, and a clean exit expected.
    fn stop(&mut self) -> anyhow::Result<()> {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM)?;
        let st = self.child.wait()?;
        if !st.success() {
            bail!(
                "airlock serve did not stop cleanly ({st}):\n{}",
                std::fs::read_to_string(&self.log)?
            );
        }
        Ok(())
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Debian's nginx serving `root` as static files with sendfile, two workers (one per core),
/// on a free loopback port; everything it writes stays under `work/nginx`.
struct StaticNginx {
    child: Child,
    addr: String,
}

impl StaticNginx {
    fn start(work: &Path, root: &Path) -> anyhow::Result<StaticNginx> {
        let nginx = airlock_testkit::require_tool("nginx")?;
        let dir = work.join("nginx");
        std::fs::create_dir_all(&dir)?;
        let port = airlock_testkit::free_port();
        let addr = format!("127.0.0.1:{port}");
        let d = dir.display();
        let config = format!(
            "daemon off;\nworker_processes 2;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n\
             \x20 client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
             \x20 fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n\
             \x20 scgi_temp_path {d}/scgi;\n\
             \x20 server {{ listen {addr}; root {}; }}\n}}\n",
            root.display()
        );
        std::fs::write(dir.join("nginx.conf"), config)?;
        let log = dir.join("stderr.log");
        let mut child = Command::new(nginx)
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .context("start nginx")?;
        wait_ready(&addr, "/layer", &mut child, &dir.join("error.log"))?;
        Ok(StaticNginx { child, addr })
    }

    /// SIGQUIT: nginx's graceful stop; the master waits for its workers.
    fn stop(&mut self) {
        let pid = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::QUIT);
        let _ = self.child.wait();
    }
}

impl Drop for StaticNginx {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

/// Waits until `GET path` on `addr` answers 200, or fails with the server's log.
fn wait_ready(addr: &str, path: &str, child: &mut Child, log: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    while http_get(addr, path, &mut |_| {}).is_err() {
        if started.elapsed() > Duration::from_secs(60) || child.try_wait()?.is_some() {
            let _ = child.kill();
            bail!(
                "the server on {addr} did not start:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// User and system CPU time of a process so far.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    let ticks = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(100.0);
    Ok(f.iter().sum::<u64>() as f64 / ticks)
}

/// A minimal HTTP/1.1 GET on a fresh connection: the body goes to `sink` as it arrives;
/// returns its length. Errors on a status other than 200 or a short body.
fn http_get(addr: &str, path: &str, sink: &mut dyn FnMut(&[u8])) -> anyhow::Result<u64> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr)?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = vec![0u8; 256 << 10];
    let mut head = Vec::new();
    let body_start = loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            bail!("{path}: connection closed in the headers");
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(p) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let text = String::from_utf8_lossy(&head[..body_start]).to_ascii_lowercase();
    if !text.starts_with("http/1.1 200") {
        bail!("{path}: {}", text.lines().next().unwrap_or(""));
    }
    let len: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .context("no Content-Length")?;
    let mut got = (head.len() - body_start) as u64;
    sink(&head[body_start..]);
    while got < len {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        sink(&buf[..n]);
        got += n as u64;
    }
    if got != len {
        bail!("{path}: {got} of {len} bytes");
    }
    Ok(got)
}
