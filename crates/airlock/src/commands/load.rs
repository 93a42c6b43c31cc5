//! `airlock load BUNDLE --key K.pub --to registry://HOST[:PORT][/PREFIX]`, or
//! `--to containerd://[SOCKET][?namespace=NS]`: [`airlock_load::load`].

use std::process::ExitCode;
use std::sync::Arc;

use crate::cli::{GlobalArgs, LoadArgs};
use crate::report::load::{fatal, finished, Progress};

pub async fn run(args: LoadArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let job = match crate::flags::load_job(&args) {
        Ok(job) => job,
        Err(e) => return Err(fatal(args.json, e)),
    };
    let reporter = Arc::new(Progress::new(global.quiet));
    let result = airlock_load::load(job, reporter.clone()).await;
    reporter.finish();
    let outcome = result.map_err(|e| fatal(args.json, e.into()))?;
    finished(&outcome, args.json, global.quiet)
}
