//! Everything the binary prints: data on stdout, progress bars on a terminal and plain lines
//! elsewhere on stderr, error chains. One file per command below; the writers every line
//! goes through here.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

pub mod bundle;
pub mod check;
pub mod config;
pub mod images;
pub mod inspect;
pub mod inventory;
pub mod key;
pub mod load;
pub mod outdated;
pub mod serve;
pub mod sync;
pub mod verify;
pub mod workloads;

/// Set once a write to stderr failed: messages for people stop there, the run goes on.
static STDERR_CLOSED: AtomicBool = AtomicBool::new(false);
/// The first failed write to stdout: the run's data did not all arrive, so it exits with 2.
static STDOUT_FAILED: OnceLock<String> = OnceLock::new();

/// One line on stderr (what `eprintln!` expands to in this crate); never panics.
pub fn write_stderr(args: std::fmt::Arguments<'_>) {
    if STDERR_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut err = std::io::stderr().lock();
    if writeln!(err, "{args}").and_then(|()| err.flush()).is_err() {
        STDERR_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Text on stdout, with a line end or without (what `println!` and `print!` expand to in this
/// crate); never panics. After a failure nothing more is written and [`stdout_failure`] says
/// why.
pub fn write_stdout(args: std::fmt::Arguments<'_>, line: bool) {
    if STDOUT_FAILED.get().is_some() {
        return;
    }
    let mut out = std::io::stdout().lock();
    let end = if line { "\n" } else { "" };
    if let Err(e) = write!(out, "{args}{end}").and_then(|()| out.flush()) {
        let _ = STDOUT_FAILED.set(e.to_string());
    }
}

/// Why a write to stdout failed, if one did.
pub fn stdout_failure() -> Option<&'static str> {
    STDOUT_FAILED.get().map(String::as_str)
}

/// Prints an error and its causes on stderr.
pub fn print_error(e: &anyhow::Error) {
    let root: &dyn std::error::Error = e.as_ref();
    eprintln!("error: {}", error_chain(root));
}

/// Formats a byte count with binary units.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// An error and its causes on one line, hints after it.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    airlock_bundle::render_error(e)
}
