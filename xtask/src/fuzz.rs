//! `cargo xtask fuzz`: the property tests of every parser that reads untrusted bytes, with many
//! more cases than the short run `cargo xtask ci` (and `cargo test`) makes.
//!
//! Property tests are the `prop_*` tests in the `props` modules of airlock-layout (bundle
//! manifest, frame index, tar walker, head, keys), airlock-bundle (spec and lock),
//! airlock-registry (references) and airlock-serve (request handling). proptest reads
//! the case count from `PROPTEST_CASES`; each run draws new cases from a random seed, and a
//! failure is shrunk to a minimal case, printed, and saved under `proptest-regressions/` next
//! to the test, where it is replayed first by every later run (commit it with the fix).

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::install::cargo;

/// Packages whose `props` modules hold property tests.
const PACKAGES: &[&str] = &[
    "airlock-layout",
    "airlock-bundle",
    "airlock-cosign",
    "airlock-registry",
    "airlock-serve",
];

#[derive(clap::Args)]
pub struct Args {
    /// Cases per property in each round (`PROPTEST_CASES`)
    #[arg(long, default_value_t = 20_000)]
    pub cases: u32,
    /// Keep running rounds, each with new random cases, until this many minutes have passed
    /// (the default is one round)
    #[arg(long)]
    pub minutes: Option<f64>,
    /// Only the property tests of this package (repeatable)
    #[arg(short, long = "package", value_name = "PACKAGE")]
    pub packages: Vec<String>,
    /// Build optimised (`--release`); the dependencies (zstd, sha2, p256) are already
    /// optimised in the default dev profile, so this mostly costs a release build
    #[arg(long)]
    pub release: bool,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let packages: Vec<&str> = if args.packages.is_empty() {
        PACKAGES.to_vec()
    } else {
        args.packages.iter().map(String::as_str).collect()
    };
    let nextest = Command::new(cargo())
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    let mut cmd_args: Vec<String> = Vec::new();
    if nextest {
        cmd_args.extend(["nextest", "run"].map(String::from));
        if args.release {
            cmd_args.extend(["--cargo-profile", "release"].map(String::from));
        }
    } else {
        cmd_args.push("test".into());
        if args.release {
            cmd_args.push("--release".into());
        }
        cmd_args.push("--tests".into());
    }
    for p in &packages {
        cmd_args.extend(["-p".to_owned(), (*p).to_owned()]);
    }
    if nextest {
        // Every `prop_*` test; a package without any only warns.
        cmd_args.extend(
            [
                "-E",
                "test(/(^|::)prop_/)",
                "--no-fail-fast",
                "--no-tests=warn",
            ]
            .map(String::from),
        );
    } else {
        cmd_args.extend(["--no-fail-fast", "--", "prop_"].map(String::from));
    }

    let deadline = args
        .minutes
        .map(|m| Instant::now() + Duration::from_secs_f64(m.max(0.0) * 60.0));
    eprintln!(
        "fuzz: the prop_ tests of {} with {} cases each{}, {}",
        packages.join(", "),
        args.cases,
        match args.minutes {
            Some(m) => format!(", rounds for {m} minutes"),
            None => String::new(),
        },
        if args.release {
            "release build"
        } else {
            "dev build"
        },
    );
    let started = Instant::now();
    let mut round = 0;
    let ok = loop {
        round += 1;
        eprintln!("==> round {round}: cargo {}", cmd_args.join(" "));
        let status = Command::new(cargo())
            .args(&cmd_args)
            .env("PROPTEST_CASES", args.cases.to_string())
            .status()
            .context("running cargo")?;
        if !status.success() {
            break false;
        }
        if deadline.is_none_or(|d| Instant::now() >= d) {
            break true;
        }
    };

    eprintln!(
        "\nfuzz: {round} round(s) of {} cases per property in {:.1?}: {}",
        args.cases,
        started.elapsed(),
        if ok { "no failure" } else { "FAILED" }
    );
    let saved = saved_failures();
    if !saved.is_empty() {
        eprintln!(
            "failing cases saved (replayed first by every later run; commit them with the fix):"
        );
        for path in &saved {
            eprintln!("  {path}");
        }
    }
    if !ok {
        eprintln!(
            "the minimal failing input of each failed property is printed above \
             (`minimal failing input: …`)"
        );
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `proptest-regressions` files that are new or changed in the work tree.
fn saved_failures() -> Vec<String> {
    let Ok(out) = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=all"])
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("proptest-regressions/"))
        .map(|l| l[3.min(l.len())..].to_owned())
        .collect()
}
