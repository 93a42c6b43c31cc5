//! What `airlock verify` prints: the verdict on stderr, and with `--json` one document on
//! stdout even when the pass could not start.

use std::path::Path;

use airlock_layout::{Purpose, Trust, VerifyReport};
use airlock_load::upstream::UpstreamReport;
use serde_json::json;

use super::human_bytes;

/// With `--json`, a fatal error before the pass still prints one document on stdout.
pub fn usage_failure(json: bool, kind: &str, e: anyhow::Error) -> anyhow::Error {
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

/// A bundle that cannot be opened (for a split bundle: a part missing or of the wrong
/// size). With `--json`, the document lists what the part list says and what is there.
pub fn open_failure(json: bool, bundle: &Path, e: airlock_layout::VolumeError) -> anyhow::Error {
    let e = anyhow::Error::new(e).context(format!("cannot open the bundle `{}`", bundle.display()));
    if json {
        let parts = airlock_layout::volume::part_list_of(bundle)
            .map(|list| airlock_layout::volume::survey(&list));
        let doc = json!({
            "ok": false,
            "error": {"kind": "read", "message": airlock_bundle::render_error(e.as_ref())},
            "parts": parts.map(|p| json!({"ok": false, "parts": p})),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("a JSON value serialises")
        );
    }
    e
}

/// The verdict for people, on stderr.
pub fn render(bundle: &Path, r: &VerifyReport, quiet: bool) {
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

/// The `--json` document: the verification report, with `upstream` when upstream signatures
/// were checked (and `ok` false when they fail).
pub fn json(
    report: &VerifyReport,
    upstream: Option<&UpstreamReport>,
    bases: Option<&airlock_load::delta::BaseCheck>,
    parts: Option<&airlock_layout::volume::PartsReport>,
) -> serde_json::Value {
    let mut doc = serde_json::to_value(report).expect("the report serialises");
    if let Some(bases) = bases {
        doc["bases"] = serde_json::to_value(bases).expect("the report serialises");
    }
    if let Some(parts) = parts {
        doc["ok"] = (report.ok && parts.ok).into();
        doc["parts"] = serde_json::to_value(parts).expect("the report serialises");
    }
    if let Some(upstream) = upstream {
        doc["ok"] = (report.ok && upstream.ok()).into();
        doc["upstream"] = serde_json::to_value(upstream).expect("the report serialises");
    }
    doc
}

/// What `--base` found, for people, on stderr: the blobs each base carries for the delta,
/// then what no file given carries.
pub fn render_bases(c: Option<&airlock_load::delta::BaseCheck>, quiet: bool) {
    let Some(c) = c else { return };
    if !quiet {
        for (path, n) in &c.supplied {
            eprintln!(
                "OK base {}: {n} blobs from the base, each listed in its signed manifest and \
                 carried by its file",
                path.display()
            );
        }
    }
    if !c.missing.is_empty() {
        eprintln!(
            "note: {} blobs of the delta's bases are in no file given (a base not given, a \
             base that is itself a delta, or an inventory of a registry, which `load` checks \
             in the target):{}",
            c.missing.len(),
            airlock_load::delta::MissingBaseBlobs(c.missing.clone())
        );
    }
}

/// A split bundle's parts, for people, on stderr: each part's state, then what is wrong
/// (the damaged or unreadable parts are named first: they explain any later error).
pub fn render_parts(parts: Option<&airlock_layout::volume::PartsReport>, quiet: bool) {
    let Some(parts) = parts else {
        return;
    };
    if !quiet {
        eprintln!("parts ({}):", parts.part_list.display());
        for p in &parts.parts {
            let state = match p.problem() {
                None => "ok",
                Some(_) => "FAILED",
            };
            eprintln!("  {:<40} {:>14} bytes  {state}", p.name, p.size);
        }
    }
    for problem in &parts.problems {
        eprintln!("error: {problem}");
    }
}

/// The upstream signatures, for people, on stderr: one line per image, then what failed.
pub fn render_upstream(r: &UpstreamReport, quiet: bool) {
    if !quiet {
        eprintln!("upstream signatures ({}):", r.policy);
        eprintln!("  {:<50} {:>5} {:>7}  STATUS", "IMAGE", "VALID", "INVALID");
        for image in &r.images {
            let status = if image.failures.is_empty() {
                "ok"
            } else {
                "FAILED"
            };
            eprintln!(
                "  {:<50} {:>5} {:>7}  {status}",
                image.image,
                image.valid.len(),
                image.invalid.len()
            );
            for note in &image.notes {
                eprintln!("    note: {note}");
            }
        }
    }
    for failure in r.images.iter().flat_map(|i| &i.failures) {
        eprintln!("error: upstream signature: {failure}");
    }
}
