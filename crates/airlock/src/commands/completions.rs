//! `airlock completions SHELL` and the hidden `airlock generate-man`: shell completion
//! scripts and man pages generated from the clap definitions, the way ripgrep
//! (`rg --generate`) and uv (`uv generate-shell-completion`) ship theirs.
//!
//! Both are rendered in memory first: a closed stdout (`| head`) is an error, never a panic,
//! and a page is written under its final name only once complete.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::CommandFactory as _;

use crate::cli::Cli;

pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "airlock", &mut script);
    to_stdout(&script)
}

/// Without `out_dir`: the top page on stdout. With it: every page, one per (visible)
/// subcommand, named `airlock-SUBCOMMAND.1` as `man airlock-bundle` expects.
pub fn man(out_dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let Some(dir) = out_dir else {
        return to_stdout(&page(cmd)?.1);
    };
    let mut pages = Vec::new();
    collect(cmd, &mut pages)?;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create directory `{}`", dir.display()))?;
    let mut written = String::new();
    for (name, roff) in &pages {
        let path = dir.join(name);
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("cannot create a temporary file in `{}`", dir.display()))?;
        tmp.write_all(roff)
            .and_then(|()| tmp.flush())
            .with_context(|| format!("cannot write `{}`", path.display()))?;
        tmp.persist(&path)
            .with_context(|| format!("cannot write `{}`", path.display()))?;
        written.push_str(&format!("{}\n", path.display()));
    }
    // The paths written, one a line (data, so on stdout).
    to_stdout(written.as_bytes())
}

fn collect(cmd: clap::Command, pages: &mut Vec<(String, Vec<u8>)>) -> anyhow::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect(sub.clone(), pages)?;
    }
    pages.push(page(cmd)?);
    Ok(())
}

/// One page: its file name and roff text; the title is the upper-case name, as man pages
/// have it (`AIRLOCK-BUNDLE`).
fn page(cmd: clap::Command) -> anyhow::Result<(String, Vec<u8>)> {
    let name = cmd
        .get_display_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_owned();
    let man = clap_mangen::Man::new(cmd).title(name.to_uppercase());
    let mut roff = Vec::new();
    man.render(&mut roff)
        .with_context(|| format!("cannot render the man page of `{name}`"))?;
    Ok((man.get_filename(), roff))
}

fn to_stdout(bytes: &[u8]) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .context("cannot write to stdout")?;
    Ok(ExitCode::SUCCESS)
}
