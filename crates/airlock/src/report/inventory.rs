//! What `airlock inventory` prints: each repository or tag that could not be read, the
//! summary on stderr, and the `--json` report on stdout.

use std::process::ExitCode;

use airlock_load::{render_error, InventoryReport};
use serde_json::json;

/// The end of an inventory that ran: the report on stdout with `--json`, every failure and
/// the summary on stderr; exit code 1 when anything could not be read.
pub fn finished(r: &InventoryReport, json: bool, quiet: bool) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
    }
    // Failures are printed even with --quiet: they are the result.
    for f in &r.failures {
        match &f.tag {
            Some(tag) => eprintln!("{}:{tag}: {}", f.repository, f.error),
            None => eprintln!("{}: {}", f.repository, f.error),
        }
    }
    let t = &r.totals;
    if !quiet || !r.complete() {
        let written = match (&r.output, &r.digest) {
            (Some(path), Some(digest)) => format!(
                "wrote `{}` ({digest}){}",
                path.display(),
                r.signature
                    .as_ref()
                    .map(|s| format!(", signed in `{}`", s.display()))
                    .unwrap_or_default()
            ),
            _ => "nothing written".to_string(),
        };
        eprintln!(
            "{} {} in {:.1}s: {} repositories, {} tags, {} manifests, {} blobs (no layer \
             read); {written}",
            if r.complete() {
                "inventory of"
            } else {
                "incomplete inventory of"
            },
            r.target,
            r.seconds,
            t.repositories,
            t.tags,
            t.manifests,
            t.blobs,
        );
    }
    if r.complete() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "error: {} repositories or tags could not be read{}",
        r.failures.len(),
        if r.output.is_some() {
            "; the file leaves them out (a delta against it is only larger)"
        } else {
            "\n  hint: fix access to them, leave them out with --names, or pass --keep-going to \
             write what was read"
        }
    );
    Ok(ExitCode::from(1))
}

/// An inventory that could not run: with `--json`, a document saying so on stdout.
pub fn fatal(json: bool, e: anyhow::Error) -> anyhow::Error {
    if json {
        let doc = json!({"ok": false, "error": render_error(e.as_ref()), "failures": []});
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("a JSON value serialises")
        );
    }
    e
}
