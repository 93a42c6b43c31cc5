//! `airlock lock SPEC [-o SPEC.lock]`: every image resolved to a digest, nothing downloaded
//! ([`airlock_bundle::resolve_lock`]).

use std::process::ExitCode;
use std::sync::Arc;

use airlock_bundle::{Error, LockOptions, Spec};

use crate::cli::{GlobalArgs, LockArgs};
use crate::report::bundle::{self as report, ProgressReporter};

pub async fn run(args: LockArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let spec = Spec::load_with(
        &args.spec,
        &airlock_bundle::spec::SpecOptions {
            kubeadm: args.kubeadm.clone(),
        },
    )?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| airlock_bundle::default_lock_path(&args.spec));
    airlock_layout::check_output("-o", &output, &[("spec", &args.spec)])?;
    let client = crate::flags::source_client_options(&args.registries)?;
    let opts = LockOptions {
        spec,
        output,
        jobs: usize::from(args.jobs),
        client,
        via_mirrors: args.via_mirrors,
    };
    let reporter = Arc::new(ProgressReporter::new(global.quiet));
    let result = airlock_bundle::resolve_lock(opts, reporter.clone()).await;
    reporter.finish();
    match result {
        Ok(outcome) => report::locked(&outcome, &args.spec, args.json, global.quiet),
        Err(e @ Error::LockFailed { .. }) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}
