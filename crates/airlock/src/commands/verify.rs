//! `airlock verify BUNDLE --key K.pub [--insecure-skip-signature] [--json]`.

use std::path::Path;
use std::process::ExitCode;

use airlock_layout::{verify_bundle, Purpose, Trust, VerifyReport};
use anyhow::Context;
use serde_json::json;

use crate::cli::{GlobalArgs, VerifyArgs};
use crate::report::human_bytes;

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

/// With `--json`, a fatal error before the pass still prints one document on stdout.
fn usage_failure(json: bool, kind: &str, e: anyhow::Error) -> anyhow::Error {
    if json {
        let doc = json!({
            "ok": false,
            "error": {"kind": kind, "message": airlock_bundle::render_error(e.as_ref())},
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("a JSON value serialises")
        );
    }
    e
}

/// The verdict for people, on stderr.
fn render(bundle: &Path, r: &VerifyReport, quiet: bool) {
    let rate = if r.seconds > 0.0 {
        r.bytes as f64 / 1e6 / r.seconds
    } else {
        0.0
    };
    match &r.error {
        None => {
            if !quiet {
                let who = match &r.signature.key {
                    Some(k) => format!("signature valid (key {k})"),
                    None => "signature NOT checked".to_owned(),
                };
                let totals = r.manifest.as_ref().map(|m| m.totals).unwrap_or_default();
                eprintln!(
                    "OK {}: {who}; {} images, {} blobs ({}) match the manifest; {} entries, \
                     frame index consistent; {} read in {:.1}s ({rate:.0} MB/s of tar)",
                    bundle.display(),
                    totals.images,
                    r.blobs_verified,
                    human_bytes(totals.bytes),
                    r.entries,
                    human_bytes(r.compressed_bytes),
                    r.seconds,
                );
            }
            if !r.signature.checked {
                let warning = Trust::InsecureSkipSignature.warning(Purpose::Verify);
                eprintln!("WARNING: {}", warning.unwrap_or_default());
            }
        }
        Some(e) => {
            eprintln!(
                "error: bundle `{}` is BAD: {}",
                bundle.display(),
                airlock_bundle::render_error(e)
            );
        }
    }
}
