//! `airlock outdated SPEC|LOCK [--json]`: newer releases and lagging mirrors
//! ([`airlock_bundle::outdated`]).

use std::process::ExitCode;

use airlock_bundle::OutdatedOptions;

use crate::cli::{GlobalArgs, OutdatedArgs};
use crate::report::outdated::{fatal, finished};

pub async fn run(args: OutdatedArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let client =
        crate::flags::source_client_options(&args.registries).map_err(|e| fatal(args.json, e))?;
    let opts = OutdatedOptions {
        input: args.input.clone(),
        jobs: usize::from(args.jobs),
        client,
    };
    let report = airlock_bundle::outdated(opts)
        .await
        .map_err(|e| fatal(args.json, e.into()))?;
    finished(&report, args.json, global.quiet)
}
