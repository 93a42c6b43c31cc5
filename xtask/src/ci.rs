//! `cargo xtask ci`: everything CI checks, in order, with the time of each step.
//!
//! Tests start their own servers through airlock-testkit, so this starts none.

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::install::cargo;

struct Step {
    name: &'static str,
    elapsed: Duration,
    ok: bool,
}

pub fn run() -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let mut steps = Vec::new();

    // Without the tools nothing else can run: stop at once.
    let installed = timed(&mut steps, "install", crate::install::run)?;

    let mut failed = false;
    failed |= !command(&mut steps, "fmt", &["fmt", "--all", "--", "--check"]);
    failed |= !command(
        &mut steps,
        "clippy",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    );
    // Built once here rather than by the first tests that need them, in parallel.
    if let Err(err) = timed(&mut steps, "fixtures", || {
        crate::fixtures::run(&crate::fixtures::Args { rebuild: false })
    }) {
        summary(&steps, started);
        return Err(err);
    }
    // The end-to-end tests run this binary.
    failed |= !command(&mut steps, "build", &["build", "--workspace"]);
    // This includes the property tests (`prop_*`, proptest) with their default case counts
    // (a short run); `cargo xtask fuzz` is the long one.
    let test: &[&str] = if installed.nextest {
        &["nextest", "run", "--workspace", "--no-fail-fast"]
    } else {
        &["test", "--workspace", "--no-fail-fast"]
    };
    failed |= !command(&mut steps, "test", test);

    summary(&steps, started);
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn summary(steps: &[Step], started: Instant) {
    eprintln!("\nci summary:");
    for step in steps {
        eprintln!(
            "  {:<9} {:>8.1?}  {}",
            step.name,
            step.elapsed,
            if step.ok { "ok" } else { "FAILED" }
        );
    }
    eprintln!("  total     {:>8.1?}", started.elapsed());
}

/// Runs a step given as a function; its error ends the run.
fn timed<T>(
    steps: &mut Vec<Step>,
    name: &'static str,
    f: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    eprintln!("==> {name}");
    let started = Instant::now();
    let result = f();
    let elapsed = started.elapsed();
    steps.push(Step {
        name,
        elapsed,
        ok: result.is_ok(),
    });
    eprintln!(
        "<== {name}: {} in {elapsed:.1?}",
        if result.is_ok() { "ok" } else { "FAILED" }
    );
    result.with_context(|| format!("ci step `{name}`"))
}

/// Runs `cargo ARGS` as a step; returns whether it succeeded.
fn command(steps: &mut Vec<Step>, name: &'static str, args: &[&str]) -> bool {
    eprintln!("==> {name}: cargo {}", args.join(" "));
    let started = Instant::now();
    let ok = match Command::new(cargo()).args(args).status() {
        Ok(status) => status.success(),
        Err(err) => {
            eprintln!("running cargo: {err}");
            false
        }
    };
    let elapsed = started.elapsed();
    eprintln!(
        "<== {name}: {} in {elapsed:.1?}",
        if ok { "ok" } else { "FAILED" }
    );
    steps.push(Step { name, elapsed, ok });
    ok
}
