//! One file per command.

mod bundle;
mod inspect;
mod key;
mod verify;

use std::process::ExitCode;

use crate::cli::{Cli, Command};

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Bundle(args) => bundle::run(args, &cli.global).await,
        Command::Key { command } => key::run(command, &cli.global),
        Command::Verify(args) => verify::run(args, &cli.global).await,
        Command::Inspect(args) => inspect::run(args, &cli.global),
    }
}
