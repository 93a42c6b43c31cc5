//! `airlock`: carry container images across an air gap.
//!
//! The binary parses flags, calls one library function per command and renders the result:
//! data on stdout, messages for people on stderr. Exit codes: 0 all done, 1 some items
//! failed (each reported), 2 usage or fatal error.

// Every line the binary prints goes through these, which shadow std's macros of the same
// name in every module below: std's panic when the stream is closed (`airlock … | head -1`),
// which left a run hanging or exiting 101. A closed stderr silences the messages, never the
// run; a failed write to stdout (data) makes the run exit with 2 once its work is done.
macro_rules! eprintln {
    () => { $crate::report::write_stderr(format_args!("")) };
    ($($arg:tt)*) => { $crate::report::write_stderr(format_args!($($arg)*)) };
}
macro_rules! println {
    () => { $crate::report::write_stdout(format_args!(""), true) };
    ($($arg:tt)*) => { $crate::report::write_stdout(format_args!($($arg)*), true) };
}
macro_rules! print {
    ($($arg:tt)*) => { $crate::report::write_stdout(format_args!($($arg)*), false) };
}

mod cli;
mod commands;
mod flags;
mod report;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_tracing(cli.global.verbose, cli.global.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(commands::run(cli));
    // Blocking threads (the archive writer) finish before the exit code is returned, so an
    // interrupted run has removed its temporary file by then.
    drop(runtime);
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            report::print_error(&e);
            ExitCode::from(2)
        }
    };
    match report::stdout_failure() {
        Some(e) => {
            eprintln!("error: cannot write to standard output: {e}");
            ExitCode::from(2)
        }
        None => code,
    }
}

fn init_tracing(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        // A directive's target matches every target that starts with it (tracing-subscriber's
        // `EnvFilter`): `airlock` is the binary and every `airlock_*` crate (bundle, registry,
        // layout, load, serve, kube); the dependencies stay at info.
        (false, 1) => "info,airlock=debug",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        // Its own complaint about a failed write goes to std's `eprintln!`, which panics on a
        // closed stderr.
        .log_internal_errors(false)
        .compact()
        .init();
}
