//! `airlock sync SPEC --to registry://HOST[:PORT][/PREFIX]`: [`airlock_sync::sync`].

use std::process::ExitCode;

use crate::cli::{GlobalArgs, SyncArgs};
use crate::report::sync::{fatal, finished};

pub async fn run(args: SyncArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let opts = match crate::flags::sync_options(&args) {
        Ok(opts) => opts,
        Err(e) => return Err(fatal(args.json, e)),
    };
    let report = airlock_sync::sync(opts)
        .await
        .map_err(|e| fatal(args.json, e.into()))?;
    finished(&report, args.json, global.quiet)
}
