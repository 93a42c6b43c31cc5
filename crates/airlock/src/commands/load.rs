//! `airlock load BUNDLE --key K.pub --to registry://HOST[:PORT][/PREFIX]`, or
//! `--to containerd://[SOCKET][?namespace=NS]`: [`airlock_load::load`]; with `--files-to DIR`
//! (alone or with `--to`), the bundle's files written first: [`airlock_load::write_files`].

use std::process::ExitCode;
use std::sync::Arc;

use crate::cli::{GlobalArgs, LoadArgs};
use crate::report::load::{fatal, finished, Progress};

pub async fn run(args: LoadArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let (job, files) = match (
        args.to
            .as_ref()
            .map(|_| crate::flags::load_job(&args))
            .transpose(),
        crate::flags::files_options(&args),
    ) {
        (Ok(job), Ok(files)) => (job, files),
        (Err(e), _) | (_, Err(e)) => return Err(fatal(args.json, e)),
    };
    let reporter = Arc::new(Progress::new(global.quiet));
    // The files first: a file in the way refuses the run before anything is pushed.
    let files = match files {
        None => None,
        Some(opts) => Some(
            airlock_load::write_files(opts, reporter.clone())
                .await
                .map_err(|e| fatal(args.json, e.into()))?,
        ),
    };
    let outcome = match job {
        None => None,
        Some(job) => {
            let result = airlock_load::load(job, reporter.clone()).await;
            reporter.finish();
            Some(result.map_err(|e| fatal(args.json, e.into()))?)
        }
    };
    finished(outcome.as_ref(), files.as_ref(), args.json, global.quiet)
}
