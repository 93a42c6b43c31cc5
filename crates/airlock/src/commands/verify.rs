//! `airlock verify BUNDLE --key K.pub [--insecure-skip-signature] [--upstream-key U.pub…]
//! [--base B…] [--json]`: [`airlock_layout::verify_bundle`], then upstream signatures and bases.

use std::process::ExitCode;

use airlock_layout::{verify_bundle, Purpose, Trust};
use airlock_load::delta::verify_bases;
use airlock_load::upstream::{check_bundle, policy_from_flags};
use anyhow::Context;

use crate::cli::{GlobalArgs, VerifyArgs};
use crate::report::verify::{self as out, json, open_failure, usage_failure};

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
    // CPU work, off the async threads; upstream signatures and bases once every blob is known
    // good. A split bundle's parts are each hashed on the way.
    let (path, bases) = (args.bundle.clone(), args.bases.clone());
    let (report, upstream, base_check, parts) = tokio::task::spawn_blocking(move || {
        let (report, parts) =
            airlock_layout::volume::verify_parts(file, &trust, |r| verify_bundle(r, trust.key()));
        let upstream = match &policy {
            Some(policy) if report.ok => Some(
                airlock_load::offline::open(&path, &trust, Purpose::Verify)
                    .map(|bundle| check_bundle(&bundle, policy)),
            ),
            _ => None,
        };
        let base_check =
            (report.ok && !bases.is_empty()).then(|| verify_bases(&path, &bases, &trust));
        (report, upstream, base_check, parts)
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
        let doc = json(
            &report,
            upstream.as_ref(),
            base_check.as_ref(),
            parts.as_ref(),
        );
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    out::render_parts(parts.as_ref(), global.quiet);
    out::render(&args.bundle, &report, global.quiet);
    if let Some(upstream) = &upstream {
        out::render_upstream(upstream, global.quiet);
    }
    out::render_bases(base_check.as_ref(), global.quiet);
    let ok = upstream.as_ref().is_none_or(|u| u.ok()) && parts.as_ref().is_none_or(|p| p.ok);
    // 0 when everything checked out, 1 when anything failed.
    Ok(ExitCode::from(u8::from(!(report.ok && ok))))
}
