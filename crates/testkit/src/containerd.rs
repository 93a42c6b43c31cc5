//! A private containerd 1.6 daemon (needs root), with its own root, state and socket.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::process::Server;
use crate::require_tool;

/// How long containerd gets to answer `ctr version`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running containerd. Dropping it kills its tasks, stops the daemon, unmounts what it left
/// mounted under [`Containerd::dir`] and removes that directory.
pub struct Containerd {
    /// Its directory (`root/`, `state/`, sockets, config, log). Short, under `/tmp`: unix socket
    /// paths are limited to 108 bytes.
    pub dir: PathBuf,
    /// The gRPC socket (`ctr -a SOCKET`, `CONTAINERD_ADDRESS`).
    pub socket: PathBuf,
    ctr: PathBuf,
    server: Option<Server>,
}

impl std::fmt::Debug for Containerd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Containerd")
            .field("dir", &self.dir)
            .field("socket", &self.socket)
            .field("pid", &self.pid())
            .finish_non_exhaustive()
    }
}

impl Containerd {
    /// Starts `containerd --config DIR/config.toml` and waits until `ctr version` answers.
    pub fn start() -> anyhow::Result<Containerd> {
        let binary = require_tool("containerd")?;
        let ctr = require_tool("ctr")?;
        require_tool("runc")?;
        // Not $TMPDIR: it may be long, and the ttrpc socket path must stay under 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("alk-ctd-")
            .tempdir_in("/tmp")
            .context("creating containerd's directory under /tmp")?
            .keep();
        let mut containerd = Containerd {
            socket: dir.join("containerd.sock"),
            dir,
            ctr,
            server: None,
        };
        let config = containerd.dir.join("config.toml");
        std::fs::write(&config, config_toml(&containerd.dir))?;
        let mut cmd = Command::new(binary);
        cmd.arg("--config").arg(&config);
        let server = Server::spawn("containerd", cmd, &containerd.dir.join("containerd.log"))?;
        containerd.server = Some(server);
        containerd.wait_ready()?;
        Ok(containerd)
    }

    /// `ctr -a SOCKET`, ready for more arguments.
    pub fn ctr(&self) -> Command {
        let mut cmd = Command::new(&self.ctr);
        cmd.arg("-a").arg(&self.socket);
        cmd
    }

    /// Writes `DIR/hosts/HOST/hosts.toml` for `registry` (its URL, and its CA for TLS) and
    /// returns `DIR/hosts`, for `ctr images pull --hosts-dir`: ctr 1.6 treats `127.0.0.1` as
    /// plain HTTP unless a hosts.toml says otherwise.
    pub fn hosts_dir_for(&self, registry: &crate::Registry) -> anyhow::Result<PathBuf> {
        let hosts = self.dir.join("hosts");
        let dir = hosts.join(&registry.host);
        std::fs::create_dir_all(&dir)?;
        let url = registry.url();
        let mut toml = format!(
            "server = \"{url}\"\n[host.\"{url}\"]\n  capabilities = [\"pull\", \"resolve\", \"push\"]\n"
        );
        if let Some(ca) = &registry.ca_file {
            toml.push_str(&format!("  ca = {:?}\n", ca.display().to_string()));
        }
        std::fs::write(dir.join("hosts.toml"), toml)?;
        Ok(hosts)
    }

    /// The daemon's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.server.as_ref().and_then(Server::pid)
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let out = self.ctr().arg("version").output();
            let server = self.server.as_mut().expect("started");
            if let Some(status) = server.exited() {
                bail!(
                    "`containerd` exited early ({status}); it needs root\n{}",
                    server.log_tail()
                );
            }
            if matches!(&out, Ok(out) if out.status.success()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "`containerd` not ready after {READY_TIMEOUT:?}\n{}",
                    server.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn lines(&self, args: &[&str]) -> Vec<String> {
        match self.ctr().args(args).output() {
            Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|line| line.trim().to_string())
                .filter(|line| !line.is_empty())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Kills and deletes every task in every namespace, so that no shim outlives the daemon.
    fn kill_tasks(&self) {
        for namespace in self.lines(&["namespaces", "ls", "-q"]) {
            for task in self.lines(&["-n", &namespace, "tasks", "ls", "-q"]) {
                let _ = self
                    .ctr()
                    .args([
                        "-n", &namespace, "tasks", "kill", "-a", "-s", "SIGKILL", &task,
                    ])
                    .output();
                let _ = self
                    .ctr()
                    .args(["-n", &namespace, "tasks", "delete", "-f", &task])
                    .output();
            }
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if self.server.is_some() {
            self.kill_tasks();
        }
        if let Some(mut server) = self.server.take() {
            server.stop();
        }
        unmount_under(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn config_toml(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs"]
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[debug]
  address = "{d}/debug.sock"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
"#
    )
}

/// Lazily unmounts every mount point under `dir`, deepest first.
fn unmount_under(dir: &Path) {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|point| PathBuf::from(unescape_mountinfo(point)))
        .filter(|point| point.starts_with(dir))
        .collect();
    points.sort_by_key(|point| std::cmp::Reverse(point.as_os_str().len()));
    points.dedup();
    for point in points {
        let _ = Command::new("umount").arg("-l").arg(&point).output();
    }
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4].iter().all(u8::is_ascii_digit)
        {
            let octal = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("0");
            out.push(u8::from_str_radix(octal, 8).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_mountinfo(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }
}
