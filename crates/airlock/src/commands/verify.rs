//! `airlock verify BUNDLE --key K.pub [--insecure-skip-signature] [--upstream-key U.pub…]
//! [--json]`: [`airlock_layout::verify_bundle`], then [`airlock_load::upstream::check_bundle`].

use std::process::ExitCode;

use airlock_layout::{verify_bundle, Purpose, Trust};
use airlock_load::upstream::{check_bundle, policy_from_flags};
use anyhow::Context;

use crate::cli::{GlobalArgs, VerifyArgs};
use crate::report::verify::{
    json, open_failure, render, render_parts, render_upstream, usage_failure,
};

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
    let file = airlock_layout::BundleFile::open(&args.bundle)
        .map_err(|e| open_failure(args.json, &args.bundle, e))?;
    // Decoding and hashing are CPU work: off the async threads. Upstream signatures are
    // checked from the small blobs once every blob is known good. A split bundle's parts are
    // each hashed on the way.
    let path = args.bundle.clone();
    let (report, upstream, parts) = tokio::task::spawn_blocking(move || {
        let (report, parts) =
            airlock_layout::volume::verify_parts(file, &trust, |r| verify_bundle(r, trust.key()));
        let upstream = match &policy {
            Some(policy) if report.ok => Some(
                airlock_load::offline::open(&path, &trust, Purpose::Verify)
                    .map(|bundle| check_bundle(&bundle, policy)),
            ),
            _ => None,
        };
        (report, upstream, parts)
    })
    .await
    .context("the verification thread failed")?;
    let upstream = upstream
        .transpose()
        .map_err(|e| usage_failure(args.json, "read", e.into()))?;

    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json(&report, upstream.as_ref(), parts.as_ref()))?
        );
    }
    render_parts(parts.as_ref(), global.quiet);
    render(&args.bundle, &report, global.quiet);
    if let Some(upstream) = &upstream {
        render_upstream(upstream, global.quiet);
    }
    Ok(
        if report.ok
            && upstream.as_ref().is_none_or(|u| u.ok())
            && parts.as_ref().is_none_or(|p| p.ok)
        {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        },
    )
}
