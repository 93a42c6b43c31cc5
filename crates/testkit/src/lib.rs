//! Real test servers (registry variants, token issuer, nginx in front of a registry,
//! containerd) and deterministic fixture images for airlock's tests.
//!
//! ```no_run
//! use airlock_testkit::{fixtures, Auth, Registry};
//!
//! # fn main() -> anyhow::Result<()> {
//! // A Debian `docker-registry` on a free port, serving every fixture image,
//! // behind bearer-token auth with a token issuer of our own.
//! let registry = Registry::with_fixtures(true, Auth::token("alice", "s3cret"))?;
//! let set = fixtures::fixture_set()?;
//! let multi = set.image("fixtures/multi").unwrap();
//! println!("{}/fixtures/multi@{} (CA {:?})", registry.host, multi.digest, registry.ca_file);
//! # Ok(())
//! # }
//! ```
//!
//! Servers are real processes from Debian's packages (`cargo xtask install` installs them);
//! a missing tool is an error naming that command, never a silently skipped test. Every server
//! binds a free loopback port, lives in its own temporary directory, and is stopped when its
//! handle is dropped, so tests start their own and run in parallel.
//!
//! Everything here is blocking; it is safe to call from inside a tokio test (HTTP work runs on
//! a thread of its own, outside the caller's runtime).
#![warn(missing_docs)]

pub mod charts;
mod containerd;
pub mod fixtures;
mod http;
mod latency;
mod nginx;
pub mod oras;
mod pki;
mod process;
mod ratelimit;
mod referrers;
mod registry;
pub mod supply;
mod token;

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

pub use charts::{write_chart_repo, RepoEntry, TestChart};
pub use containerd::Containerd;
pub use latency::Latency;
pub use nginx::Nginx;
pub use oras::Oras;
pub use pki::Pki;
pub use ratelimit::RateLimited;
pub use referrers::{Logged, ReferrersRegistry};
pub use registry::{Auth, Registry, RegistryOptions};
pub use token::TokenIssuer;

/// The workspace root (two levels above this crate's manifest).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/testkit has two ancestors")
        .to_path_buf()
}

/// Where built fixtures and the shared registry storage are cached:
/// `$AIRLOCK_TEST_CACHE`, or `<workspace>/target/airlock-test`.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("AIRLOCK_TEST_CACHE") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join("target").join("airlock-test"),
    }
}

/// A loopback port that was free a moment ago.
///
/// The port is released before returning, so another process may take it before the caller
/// binds it: servers started here retry with a new port when their bind fails.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("binding 127.0.0.1:0")
}

/// The full path of an installed tool, searched in `$PATH` and the sbin directories (which
/// are not in a non-root `$PATH` on Debian, and hold `nginx` and `runc`).
pub fn require_tool(name: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).chain(
        ["/usr/local/sbin", "/usr/sbin", "/sbin"]
            .iter()
            .map(PathBuf::from),
    );
    for dir in dirs {
        let candidate = dir.join(name);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    bail!("`{name}` is not installed: run `cargo xtask install`")
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata()
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Runs `f` on a fresh thread and waits for it: `reqwest::blocking` panics when used on a
/// thread that is inside a tokio runtime, which is where async tests call us from.
pub(crate) fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| match scope.spawn(f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// Runs a command to completion; a non-zero exit becomes an error carrying its stderr.
pub(crate) fn run(cmd: &mut std::process::Command) -> anyhow::Result<std::process::Output> {
    let shown = format!("{cmd:?}");
    let output = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("running {shown}"))?;
    if !output.status.success() {
        bail!(
            "{shown} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        assert!(workspace_root().join("Cargo.toml").is_file());
        assert!(workspace_root().join("crates/testkit").is_dir());
    }

    #[test]
    fn missing_tool_names_the_install_command() {
        let err = require_tool("airlock-no-such-tool").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`airlock-no-such-tool` is not installed: run `cargo xtask install`"
        );
    }

    #[test]
    fn free_port_is_bindable() {
        let port = free_port();
        assert_ne!(port, 0);
        TcpListener::bind(("127.0.0.1", port)).unwrap();
    }
}
