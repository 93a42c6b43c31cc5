//! `cargo xtask man`: the man pages, `target/man/airlock.1` and one page per subcommand
//! (`airlock-bundle.1`, …), rendered by the binary itself (`airlock generate-man`) from its
//! clap definitions, so they always match the flags.

use std::process::Command;

use anyhow::{bail, Context as _};

use crate::install::cargo;

pub fn run() -> anyhow::Result<()> {
    let root = airlock_testkit::workspace_root();
    let status = Command::new(cargo())
        .args(["build", "--quiet", "-p", "airlock"])
        .current_dir(&root)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("`cargo build -p airlock` failed");
    }
    let out = root.join("target/man");
    let status = Command::new(root.join("target/debug/airlock"))
        .arg("generate-man")
        .arg("--out-dir")
        .arg(&out)
        .status()
        .context("running target/debug/airlock")?;
    if !status.success() {
        bail!("`airlock generate-man` failed");
    }
    eprintln!(
        "man pages in {}; read one with `man -l {}`",
        out.display(),
        out.join("airlock.1").display()
    );
    Ok(())
}
