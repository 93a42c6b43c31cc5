//! What `airlock check` prints: each thing missing, different or unreachable on stderr, the
//! summary, and the `--json` report on stdout.

use std::process::ExitCode;

use airlock_load::check::Found;
use airlock_load::{render_error, CheckReport};
use serde_json::json;

/// The end of a check that ran: the report on stdout with `--json`, every problem and the
/// summary on stderr; exit code 1 when anything is not in the target as the bundle has it.
pub fn finished(r: &CheckReport, json: bool, quiet: bool) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
    }
    // Problems are printed even with --quiet: they are the result.
    for p in &r.problems {
        let found = match &p.found {
            Found::Missing => "missing".to_string(),
            Found::Different { actual } => format!("different (found {actual})"),
            Found::Unreachable { error } => format!("unreachable: {error}"),
        };
        let artifact = p
            .artifact
            .as_deref()
            .map(|a| format!("for {a}"))
            .unwrap_or_default();
        // A reference by digest says the digest already: only the size is left to say.
        let expected = match p.expected.split_once(' ') {
            Some((digest, size)) if p.reference.ends_with(digest) => size.to_string(),
            None if p.reference.ends_with(&p.expected) => String::new(),
            _ => format!("(expected {})", p.expected),
        };
        let what = [expected, artifact]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        eprintln!(
            "{}: {} `{}`{}{what}: {found}",
            p.image,
            p.what.as_str(),
            p.reference,
            if what.is_empty() { "" } else { " " },
        );
    }
    for u in &r.unreadable {
        eprintln!("error: {}", u.error);
    }
    let t = &r.totals;
    if !quiet || !r.complete() {
        eprintln!(
            "{} {} images against {} in {:.1}s: {} things asked for, {} missing, {} different, \
             {} unreachable{}",
            if r.complete() {
                "complete:"
            } else {
                "incomplete:"
            },
            t.images,
            r.target,
            r.seconds,
            t.checked,
            t.missing,
            t.different,
            t.unreachable,
            if r.unreadable.is_empty() {
                String::new()
            } else {
                format!(", {} images unreadable in the bundle", r.unreadable.len())
            }
        );
    }
    Ok(if r.complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A check that could not run: with `--json`, a document saying so on stdout.
pub fn fatal(json: bool, e: anyhow::Error) -> anyhow::Error {
    if json {
        let doc = json!({"ok": false, "error": render_error(e.as_ref()), "problems": []});
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("a JSON value serialises")
        );
    }
    e
}
