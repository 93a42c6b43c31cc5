//! `airlock verify BUNDLE --key K.pub [--insecure-skip-signature] [--json]`:
//! [`airlock_layout::verify_bundle`].

use std::process::ExitCode;

use airlock_layout::{verify_bundle, Purpose, Trust};
use anyhow::Context;

use crate::cli::{GlobalArgs, VerifyArgs};
use crate::report::verify::{render, usage_failure};

pub async fn run(args: VerifyArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let trust = match Trust::from_flags(
        args.key.as_deref(),
        args.insecure_skip_signature,
        Purpose::Verify,
    ) {
        Ok(trust) => trust,
        Err(e) => return Err(usage_failure(args.json, "usage", e.into())),
    };
    if let Some(warning) = trust.warning(Purpose::Verify) {
        eprintln!("WARNING: {warning}");
    }
    let file = match std::fs::File::open(&args.bundle) {
        Ok(f) => f,
        Err(e) => {
            let e = anyhow::Error::new(e).context(format!(
                "cannot open the bundle `{}`",
                args.bundle.display()
            ));
            return Err(usage_failure(args.json, "read", e));
        }
    };
    // Decoding and hashing are CPU work: off the async threads.
    let report = tokio::task::spawn_blocking(move || verify_bundle(file, trust.key()))
        .await
        .context("the verification thread failed")?;

    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    render(&args.bundle, &report, global.quiet);
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
