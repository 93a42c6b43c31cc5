//! What `airlock images from` and `airlock rewrite` print: references on stdout (a list, a
//! `kind: Bundle` spec or JSON), problems as `FILE:LINE: error: …` and changes as
//! `FILE:LINE: OLD -> NEW` on stderr.

use std::fmt::Write as _;
use std::process::ExitCode;

use airlock_workloads::{Error, Findings, Location, Problem, Rewritten};
use serde_json::{json, Value};

use crate::cli::ImagesFromArgs;

/// An error that stops the run (exit 2): an input named with its line when it is not YAML.
pub fn fatal(e: Error) -> ExitCode {
    match e {
        Error::Syntax { .. } | Error::NotText { .. } | Error::NotAManifest { .. } => {
            eprintln!("{e}");
        }
        e => super::print_error(&anyhow::Error::new(e)),
    }
    ExitCode::from(2)
}

fn problems(problems: &[Problem]) {
    for p in problems {
        eprintln!("{p}");
    }
}

fn location(l: &Location) -> Value {
    json!({"file": l.file, "line": l.line, "kind": l.kind, "name": l.name,
           "container": l.container, "field": l.field})
}

/// `images from`'s output; exit 1 when any value is not a usable reference.
pub fn images(found: &Findings, args: &ImagesFromArgs) -> anyhow::Result<ExitCode> {
    if args.json {
        let images: Vec<Value> = found
            .images
            .iter()
            .map(|i| {
                let locations: Vec<Value> = i.locations.iter().map(location).collect();
                json!({"reference": i.reference, "locations": locations})
            })
            .collect();
        let problems: Vec<Value> = found
            .problems
            .iter()
            .map(|p| {
                json!({"file": p.file, "line": p.line, "value": p.value,
                       "problem": p.kind.to_string(), "code": p.kind.code()})
            })
            .collect();
        let doc = json!({"images": images, "problems": problems});
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else if args.spec {
        // JSON strings are YAML double-quoted scalars: any name and reference reads back as is.
        let mut out = format!(
            "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata:\n  name: {}\nspec:\n  images:\n",
            serde_json::to_string(&args.name)?
        );
        for i in &found.images {
            writeln!(out, "    - {}", serde_json::to_string(&i.reference)?)?;
        }
        print!("{out}");
    } else {
        let mut out = String::new();
        for i in &found.images {
            writeln!(out, "{}", i.reference)?;
        }
        print!("{out}");
    }
    problems(&found.problems);
    Ok(ExitCode::from(u8::from(!found.problems.is_empty())))
}

/// A rewrite's report on stderr; `false` when it has problems (nothing is written then).
pub fn rewritten(done: &Rewritten, check: bool, quiet: bool) -> bool {
    if !done.problems.is_empty() {
        problems(&done.problems);
        eprintln!(
            "nothing rewritten: {} problem{} to fix first",
            done.problems.len(),
            if done.problems.len() == 1 { "" } else { "s" }
        );
        return false;
    }
    for u in &done.unpinned {
        eprintln!(
            "{}:{}: warning: `{}` is not in the --pin file: left without a digest",
            u.file, u.line, u.value
        );
    }
    if quiet {
        return true;
    }
    // One write for all the lines: a large tree has a change a line per image.
    let mut lines = String::new();
    for file in done.changed() {
        for c in &file.changes {
            let _ = writeln!(
                lines,
                "{}:{}: {} -> {}",
                file.source.file, c.line, c.old, c.new
            );
        }
    }
    let (n, m) = (done.change_count(), done.changed().count());
    let verb = if check { "would rewrite" } else { "rewrote" };
    let plural =
        |k: usize, one: &str, many: &str| format!("{k} {}", if k == 1 { one } else { many });
    eprintln!(
        "{lines}{verb} {} in {}",
        plural(n, "reference", "references"),
        plural(m, "file", "files")
    );
    true
}
