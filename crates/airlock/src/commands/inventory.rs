//! `airlock inventory registry://HOST[:PORT][/PREFIX] -o site.inventory.json`:
//! [`airlock_load::inventory()`].

use std::process::ExitCode;

use crate::cli::{GlobalArgs, InventoryArgs};
use crate::report::inventory::{fatal, finished};

pub async fn run(args: InventoryArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let opts = match crate::flags::inventory_options(&args) {
        Ok(opts) => opts,
        Err(e) => return Err(fatal(args.json, e)),
    };
    let report = airlock_load::inventory(opts)
        .await
        .map_err(|e| fatal(args.json, e.into()))?;
    finished(&report, args.json, global.quiet)
}
