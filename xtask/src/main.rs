//! `cargo xtask <command>`: the project's automation (see `cargo xtask --help`).
//!
//! One file per command; each exposes `run`, which the `ci` command may call directly.

mod bench;
mod ci;
mod demo;
mod fixtures;
mod fuzz;
mod install;
mod man;
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
    /// What CI runs: install, fmt, clippy, fixtures, build, tests (with a short run of the property tests).
    Ci,
    /// The main job offline: build airlock, bundle the fixture images from a local registry, check the bundle.
    Demo(demo::Args),
    /// Benchmarks against skopeo on the same data (numbers for docs/benchmarks.md).
    Bench(bench::Args),
    /// The property tests of every parser of untrusted bytes, with many cases (long run).
    Fuzz(fuzz::Args),
    /// Write the man pages to target/man (airlock.1 and one page per subcommand).
    Man,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Install => install::run().map(|_| ExitCode::SUCCESS),
        Command::Fixtures(args) => fixtures::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Services => services::run().map(|()| ExitCode::SUCCESS),
        Command::Ci => ci::run(),
        Command::Demo(args) => demo::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Bench(args) => bench::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Fuzz(args) => fuzz::run(&args),
        Command::Man => man::run().map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
