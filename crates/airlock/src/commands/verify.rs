//! `airlock verify BUNDLE --key K.pub [--insecure-skip-signature] [--upstream-key U.pub…]
//! [--base B…] [--json]`: [`airlock_layout::verify_bundle`], then upstream signatures and bases.

use std::process::ExitCode;

use airlock_layout::{verify_bundle, Purpose, Trust};
use airlock_load::delta::verify_bases;
use airlock_load::upstream::{check_bundle, policy_from_flags};
use anyhow::Context;

use crate::cli::{GlobalArgs, VerifyArgs};
use crate::report::verify::{json, render, render_bases, render_upstream, usage_failure};

pub async fn run(args: VerifyArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let trust = match Trust::from_flags(
        args.key.as_deref(),
        args.insecure_skip_signature,
        Purpose::Verify,
    ) {
        Ok(trust) => trust,
        Err(e) => return Err(usage_failure(args.json, "usage", e.into())),
    };
    let policy = policy_from_flags(
        &args.upstream_keys,
        args.upstream_identity.as_deref(),
        args.upstream_issuer.as_deref(),
        args.trusted_root.as_deref(),
    );
    let policy = policy.map_err(|e| usage_failure(args.json, "usage", e.into()))?;
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
    // CPU work, off the async threads; upstream signatures once every blob is known good.
    let (path, bases) = (args.bundle.clone(), args.bases.clone());
    let (report, upstream, base_check) = tokio::task::spawn_blocking(move || {
        let report = verify_bundle(file, trust.key());
        let upstream = match &policy {
            Some(policy) if report.ok => Some(
                airlock_load::offline::open(&path, &trust, Purpose::Verify)
                    .map(|bundle| check_bundle(&bundle, policy)),
            ),
            _ => None,
        };
        let base_check =
            (report.ok && !bases.is_empty()).then(|| verify_bases(&path, &bases, &trust));
        (report, upstream, base_check)
    })
    .await
    .context("the verification thread failed")?;
    let upstream = upstream
        .transpose()
        .map_err(|e| usage_failure(args.json, "read", e.into()))?;
    let base_check = base_check
        .transpose()
        .map_err(|e| usage_failure(args.json, "base", e.into()))?;
    if args.json {
        let doc = json(&report, upstream.as_ref(), base_check.as_ref());
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    render(&args.bundle, &report, global.quiet);
    if let Some(upstream) = &upstream {
        render_upstream(upstream, global.quiet);
    }
    render_bases(base_check.as_ref(), global.quiet);
    Ok(if report.ok && upstream.as_ref().is_none_or(|u| u.ok()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
