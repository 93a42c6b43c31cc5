//! `airlock bundle SPEC -o FILE`: [`airlock_bundle::bundle`].

use std::process::ExitCode;
use std::sync::Arc;

use airlock_bundle::{Error, Spec};

use crate::cli::{BundleArgs, GlobalArgs};
use crate::flags;
use crate::report::bundle::{self as report, ProgressReporter};

pub async fn run(args: BundleArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let spec = Spec::load_with(
        &args.spec,
        &airlock_bundle::spec::SpecOptions {
            kubeadm: args.kubeadm.clone(),
        },
    )?;
    let (locks, replaces) = flags::bundle_outputs(&args)?;
    if replaces && !global.quiet {
        eprintln!(
            "`{}` exists: it will be replaced once the new bundle is complete",
            args.output.display()
        );
    }
    let opts = flags::bundle_options(&args, spec, locks)?;
    let signed_by = opts.sign.as_ref().map(|k| k.verifying_key().fingerprint());

    let reporter = Arc::new(ProgressReporter::new(global.quiet));
    let started = std::time::Instant::now();
    let before = airlock_layout::file_id(&args.output);
    let result = tokio::select! {
        r = airlock_bundle::bundle(opts, reporter.clone()) => r,
        // Dropping the run stops its archive writer, which removes its temporary file before
        // the process exits (`main` waits for it).
        Ok(()) = tokio::signal::ctrl_c() => {
            reporter.finish();
            report::interrupted(&args.output, airlock_layout::file_id(&args.output) != before);
            return Ok(ExitCode::from(130));
        }
    };
    reporter.finish();
    match result {
        Ok(outcome) => report::finished(
            &outcome,
            signed_by.as_deref(),
            started,
            &reporter,
            args.json,
            global.quiet,
        ),
        Err(e @ (Error::ImagesFailed { .. } | Error::NothingToBundle)) => {
            report::nothing_written(&e, &reporter, args.json)
        }
        Err(e) => Err(e.into()),
    }
}
