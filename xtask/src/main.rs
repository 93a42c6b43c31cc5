//! `cargo xtask <command>`: the project's automation (see `cargo xtask --help`).
//!
//! One file per command; each exposes `run`, which the `ci` command may call directly.

mod ci;
mod fixtures;
mod install;
mod services;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// airlock's project automation.
#[derive(Parser)]
#[command(name = "cargo xtask", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install the Debian packages the tests need (only the missing ones).
    Install,
    /// Build the fixture images and the registry storage holding them (cached).
    Fixtures(fixtures::Args),
    /// Run every registry variant with the fixtures, and a containerd, until Ctrl-C.
    Services,
    /// What CI runs: install, fmt, clippy, fixtures, tests.
    Ci,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Install => install::run().map(|_| ExitCode::SUCCESS),
        Command::Fixtures(args) => fixtures::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Services => services::run().map(|()| ExitCode::SUCCESS),
        Command::Ci => ci::run(),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
