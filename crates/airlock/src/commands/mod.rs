//! One file per command.

mod bundle;
mod check;
mod completions;
mod config;
mod images;
mod inspect;
mod inventory;
mod key;
mod load;
mod lock;
mod outdated;
mod rewrite;
mod serve;
mod sync;
mod verify;

use std::process::ExitCode;

use crate::cli::{Cli, Command};

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Bundle(args) => bundle::run(args, &cli.global).await,
        Command::Key { command } => key::run(command, &cli.global),
        Command::Verify(args) => verify::run(args, &cli.global).await,
        Command::Inspect(args) => inspect::run(args, &cli.global),
        Command::Load(args) => load::run(args, &cli.global).await,
        Command::Lock(args) => lock::run(args, &cli.global).await,
        Command::Outdated(args) => outdated::run(args, &cli.global).await,
        Command::Serve(args) => serve::run(args, &cli.global).await,
        Command::Sync(args) => sync::run(args, &cli.global).await,
        Command::Check(args) => check::run(args, &cli.global).await,
        Command::Inventory(args) => inventory::run(args, &cli.global).await,
        Command::Images { command } => images::run(command),
        Command::Rewrite(args) => rewrite::run(args, &cli.global),
        Command::Config { command } => config::run(command, &cli.global),
        Command::Completions { shell } => completions::completions(shell),
        Command::GenerateMan { out_dir } => completions::man(out_dir.as_deref()),
    }
}
