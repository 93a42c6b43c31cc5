//! `airlock verify BUNDLE --key K.pub [--insecure-skip-signature] [--upstream-key U.pub…]
//! [--json]`: [`airlock_layout::verify_bundle`], then [`airlock_load::upstream::check_bundle`].

use std::process::ExitCode;

use airlock_layout::{verify_bundle, Purpose, Trust};
use airlock_load::upstream::{check_bundle, policy_from_flags};
use anyhow::Context;

use crate::cli::{GlobalArgs, VerifyArgs};
use crate::report::verify::{json, render, render_bases, render_upstream, usage_failure};

/// `--base`: each base verified on its own under the same trust, then matched to the delta's
/// bases ([`airlock_load::delta::check_bases`]). Blocking.
fn check_bases(
    delta: &std::path::Path,
    bases: &[std::path::PathBuf],
    trust: &Trust,
) -> anyhow::Result<airlock_load::delta::BaseCheck> {
    let mut opened = Vec::new();
    for base in bases {
        let file = std::fs::File::open(base)
            .with_context(|| format!("cannot open the base `{}`", base.display()))?;
        let report = verify_bundle(file, trust.key());
        if let Some(e) = report.error {
            return Err(
                anyhow::Error::new(e).context(format!("the base `{}` is BAD", base.display()))
            );
        }
        opened.push(airlock_load::offline::open(base, trust, Purpose::Verify)?);
    }
    let mut delta = airlock_load::offline::open(delta, trust, Purpose::Verify)?;
    Ok(airlock_load::delta::check_bases(&mut delta, &opened)?)
}

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
    // Decoding and hashing are CPU work: off the async threads. Upstream signatures are
    // checked from the small blobs once every blob is known good.
    let path = args.bundle.clone();
    let bases = args.bases.clone();
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
            (report.ok && !bases.is_empty()).then(|| check_bases(&path, &bases, &trust));
        (report, upstream, base_check)
    })
    .await
    .context("the verification thread failed")?;
    let upstream = upstream
        .transpose()
        .map_err(|e| usage_failure(args.json, "read", e.into()))?;
    let base_check = base_check
        .transpose()
        .map_err(|e| usage_failure(args.json, "base", e))?;

    if args.json {
        let mut doc = json(&report, upstream.as_ref());
        if let Some(c) = &base_check {
            doc["bases"] = serde_json::to_value(c)?;
        }
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    render(&args.bundle, &report, global.quiet);
    if let Some(upstream) = &upstream {
        render_upstream(upstream, global.quiet);
    }
    if let Some(c) = &base_check {
        render_bases(c, global.quiet);
    }
    Ok(if report.ok && upstream.as_ref().is_none_or(|u| u.ok()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
