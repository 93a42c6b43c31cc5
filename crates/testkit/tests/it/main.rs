//! The testkit against the real tools: fixtures are deterministic and valid, every registry
//! variant serves them to skopeo, nginx proxies a registry, containerd starts.

mod containerd;
mod fixtures;
mod nginx;
mod registry;
mod supply;

use std::process::{Command, Output};

use sha2::{Digest as _, Sha256};

/// Runs a command, returning its output whatever the exit status.
fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|err| panic!("running {cmd:?}: {err}"))
}

/// Runs a command that must succeed; returns its stdout.
fn succeed(cmd: &mut Command) -> Vec<u8> {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn tool(name: &str) -> std::path::PathBuf {
    airlock_testkit::require_tool(name).unwrap_or_else(|err| panic!("{err}"))
}
