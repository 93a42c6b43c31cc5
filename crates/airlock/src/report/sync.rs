//! What `airlock sync` prints: one line per image on stderr (`unchanged`, `copied N blobs,
//! X`, `moved TAG from D1 to D2`, `failed: …`), the summary and the registries' request
//! budgets; the `--json` report on stdout.

use std::process::ExitCode;

use airlock_sync::{Change, ImageSync, SyncReport};
use serde_json::json;

use super::{error_chain, human_bytes};

/// The end of a sync that ran: exit code 1 when an image failed.
pub fn finished(r: &SyncReport, json: bool, quiet: bool) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
    }
    let would = if r.dry_run { "would be " } else { "" };
    if !quiet {
        for i in &r.images {
            eprintln!("{}: {}", i.image, line(i, would));
        }
    }
    for f in &r.failures {
        eprintln!("{}: failed: {}", f.image, f.error);
    }
    if !quiet {
        for n in &r.notes {
            eprintln!("note: {n}");
        }
        let t = &r.totals;
        eprintln!(
            "{}{} images into {} in {:.1}s: {} unchanged, {} {would}changed, {} failed; {} blobs \
             {would}copied ({}), {} mounted, {} already there",
            if r.dry_run { "dry run: " } else { "synced " },
            t.images + t.failed,
            r.target,
            r.seconds,
            t.unchanged,
            t.images - t.unchanged,
            t.failed,
            t.blobs_copied,
            human_bytes(t.bytes_copied),
            t.blobs_mounted,
            t.blobs_present,
        );
        for l in &r.rate_limits {
            eprintln!("rate limit: {}", l.text);
        }
    }
    if r.failures.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let names: Vec<&str> = r.failures.iter().map(|f| f.image.as_str()).collect();
    eprintln!(
        "error: {} image(s) failed: {}",
        names.len(),
        names.join(", ")
    );
    Ok(ExitCode::from(1))
}

fn line(i: &ImageSync, would: &str) -> String {
    let copied = format!(
        "{would}copied {} blobs, {}",
        i.blobs_copied,
        human_bytes(i.bytes_copied)
    );
    let artifacts = if i.artifacts_copied.is_empty() {
        String::new()
    } else {
        format!("; artifacts: {}", i.artifacts_copied.join(", "))
    };
    let tag = i.target.rsplit_once([':', '@']).map_or("", |(_, t)| t);
    match &i.change {
        Change::Unchanged => format!("unchanged{artifacts}"),
        Change::Created => format!(
            "{copied}; {would}created {} at {}{artifacts}",
            i.target, i.digest
        ),
        Change::Moved { from } => {
            format!(
                "{copied}; {would}moved {tag} from {from} to {}{artifacts}",
                i.digest
            )
        }
    }
}

/// A sync that could not run: with `--json`, still one document on stdout.
pub fn fatal(json: bool, e: anyhow::Error) -> anyhow::Error {
    if json {
        let doc =
            json!({"ok": false, "error": error_chain(e.as_ref()), "images": [], "failures": []});
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("a JSON value serialises")
        );
    }
    e
}
