//! `cargo xtask install`: the Debian packages behind the tests' real servers and validators.

use std::process::Command;

use anyhow::{bail, Context as _};

/// Every package the tests use. protobuf-compiler: the containerd client crate (tonic) needs
/// `protoc` at build time. busybox-static: the one binary of the image that
/// `tests/it/containerd.rs` runs with `ctr run`. python3-venv: the virtual environment of
/// the ORAS Python SDK ([`oras_venv`]).
pub const PACKAGES: &[&str] = &[
    "docker-registry",
    "skopeo",
    "umoci",
    "containerd",
    "oci-image-tool",
    "apache2-utils",
    "nginx",
    "zstd",
    "openssl",
    "protobuf-compiler",
    "time",
    "busybox-static",
    "python3-venv",
];

/// What the machine has after installing.
pub struct Installed {
    /// `cargo nextest` runs.
    pub nextest: bool,
}

pub fn run() -> anyhow::Result<Installed> {
    let missing = missing_packages()?;
    if missing.is_empty() {
        eprintln!("packages: all {} installed", PACKAGES.len());
    } else if !rustix::process::geteuid().is_root() {
        bail!(
            "missing packages: {}\nhint: run `sudo apt-get update && sudo apt-get install -y --no-install-recommends {}`",
            missing.join(" "),
            missing.join(" ")
        );
    } else {
        eprintln!("packages: installing {}", missing.join(" "));
        apt(&["update"])?;
        let mut args = vec![
            "install",
            "-y",
            "--no-install-recommends",
            "-o",
            "DPkg::Lock::Timeout=300",
        ];
        args.extend(missing.iter().map(String::as_str));
        apt(&args)?;
        let still = missing_packages()?;
        if !still.is_empty() {
            bail!("still missing after apt-get install: {}", still.join(" "));
        }
    }
    oras_venv()?;
    let nextest = Command::new(cargo())
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    if nextest {
        eprintln!("cargo-nextest: found");
    } else {
        eprintln!("cargo-nextest: not found; `cargo xtask ci` uses `cargo test`");
    }
    Ok(Installed { nextest })
}

/// The ORAS Python SDK (PyPI `oras`) in its own virtual environment
/// (`airlock_testkit::oras::venv_dir`): the independent client of the chart and file tests.
/// Skipped when it imports already.
fn oras_venv() -> anyhow::Result<()> {
    let venv = airlock_testkit::oras::venv_dir();
    let python = venv.join("bin").join("python");
    let present = Command::new(&python)
        .args(["-c", "import oras.client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        eprintln!("oras (Python SDK): found in {}", venv.display());
        return Ok(());
    }
    eprintln!("oras (Python SDK): installing into {}", venv.display());
    let status = Command::new("python3")
        .arg("-m")
        .arg("venv")
        .arg(&venv)
        .status()
        .context("running `python3 -m venv`")?;
    if !status.success() {
        bail!("`python3 -m venv {}` failed ({status})", venv.display());
    }
    let status = Command::new(venv.join("bin").join("pip"))
        .args(["install", "--quiet", "oras"])
        .status()
        .context("running pip")?;
    if !status.success() {
        bail!(
            "`pip install oras` into {} failed ({status})",
            venv.display()
        );
    }
    Ok(())
}

/// The `cargo` that runs us (so the same toolchain), or the one in `$PATH`.
pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

fn missing_packages() -> anyhow::Result<Vec<String>> {
    let mut missing = Vec::new();
    for package in PACKAGES {
        // dpkg-query exits 1 for a package it has never heard of: that is "missing" too.
        let out = Command::new("dpkg-query")
            .args(["-W", "-f=${Status}", package])
            .output()
            .context("running `dpkg-query` (this needs a Debian-based machine)")?;
        if String::from_utf8_lossy(&out.stdout).trim() != "install ok installed" {
            missing.push(package.to_string());
        }
    }
    Ok(missing)
}

fn apt(args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("running `apt-get`")?;
    if !status.success() {
        bail!("`apt-get {}` failed ({status})", args.join(" "));
    }
    Ok(())
}
