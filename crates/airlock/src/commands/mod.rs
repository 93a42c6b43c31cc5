//! One file per command.

mod bundle;

use std::process::ExitCode;

use crate::cli::{Cli, Command};

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Bundle(args) => bundle::run(args, &cli.global).await,
    }
}
