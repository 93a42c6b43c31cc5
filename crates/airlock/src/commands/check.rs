//! `airlock check BUNDLE --key K.pub --against registry://HOST[:PORT][/PREFIX]`:
//! [`airlock_load::check`].

use std::process::ExitCode;

use crate::cli::{CheckArgs, GlobalArgs};
use crate::report::check::{fatal, finished};

pub async fn run(args: CheckArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let opts = match crate::flags::check_options(&args) {
        Ok(opts) => opts,
        Err(e) => return Err(fatal(args.json, e)),
    };
    if let Some(warning) = opts.trust.warning(airlock_load::Purpose::Verify) {
        if !global.quiet {
            eprintln!("warning: {warning}");
        }
    }
    let report = airlock_load::check(opts)
        .await
        .map_err(|e| fatal(args.json, e.into()))?;
    finished(&report, args.json, global.quiet)
}
