//! Rendering for people: progress bars on a terminal, plain lines elsewhere, error chains.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use airlock_bundle::{ImageError, Reporter};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub mod config;
pub mod inspect;

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

fn error_chain(e: &dyn std::error::Error) -> String {
    airlock_bundle::render_error(e)
}

fn layers(n: usize) -> String {
    if n == 1 {
        "1 layer".to_string()
    } else {
        format!("{n} layers")
    }
}

/// Progress for `bundle`.
pub struct ProgressReporter {
    quiet: bool,
    tty: bool,
    multi: MultiProgress,
    state: Mutex<State>,
}

struct State {
    total: Option<ProgressBar>,
    images: std::collections::HashMap<String, ProgressBar>,
    bytes_total: u64,
    bytes_done: u64,
    /// Downloads that resume an earlier one, and the bytes they start at.
    resumed: std::collections::HashMap<String, u64>,
    last_line: Instant,
    failures: Vec<(String, String)>,
}

impl ProgressReporter {
    pub fn new(quiet: bool) -> ProgressReporter {
        let tty = std::io::stderr().is_terminal();
        let multi = MultiProgress::with_draw_target(if tty && !quiet {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        ProgressReporter {
            quiet,
            tty,
            multi,
            state: Mutex::new(State {
                total: None,
                images: Default::default(),
                bytes_total: 0,
                bytes_done: 0,
                resumed: Default::default(),
                last_line: Instant::now(),
                failures: Vec::new(),
            }),
        }
    }

    fn say(&self, line: &str) {
        if self.quiet {
            return;
        }
        if self.tty {
            let _ = self.multi.println(line);
        } else {
            eprintln!("{line}");
        }
    }

    /// The state; a panic elsewhere while it was held does not make every later call panic.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Clears the bars.
    pub fn finish(&self) {
        let mut st = self.state();
        if let Some(t) = st.total.take() {
            t.finish_and_clear();
        }
        for (_, b) in st.images.drain() {
            b.finish_and_clear();
        }
    }

    /// Every failure reported so far: (image, error with causes).
    pub fn failures(&self) -> Vec<(String, String)> {
        self.state().failures.clone()
    }
}

impl Reporter for ProgressReporter {
    fn resolved(&self, image: &str, source: &str, digest: &str) {
        self.say(&format!("resolved {image} -> {digest} (from {source})"));
    }

    fn image_failed(&self, image: &str, error: &ImageError) {
        let text = error_chain(error);
        // Failures are printed even with --quiet: they are the result.
        if self.tty && !self.quiet {
            let _ = self.multi.println(format!("error: {text}"));
        } else {
            eprintln!("error: {text}");
        }
        self.state().failures.push((image.to_string(), text));
    }

    fn warn(&self, message: &str) {
        if self.tty && !self.quiet {
            let _ = self.multi.println(format!("warning: {message}"));
        } else {
            eprintln!("warning: {message}");
        }
    }

    fn download_start(&self, blobs: u64, bytes: u64, cached_blobs: u64, cached_bytes: u64) {
        self.say(&format!(
            "downloading {blobs} blobs ({}); {cached_blobs} blobs ({}) already in the cache",
            human_bytes(bytes),
            human_bytes(cached_bytes)
        ));
        let mut st = self.state();
        st.bytes_total = bytes;
        if self.tty && !self.quiet {
            let bar = self.multi.add(ProgressBar::new(bytes));
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .expect("template")
                .progress_chars("=> "),
            );
            bar.set_prefix("total");
            bar.enable_steady_tick(Duration::from_millis(200));
            st.total = Some(bar);
        }
    }

    fn download_resumed(&self, digest: &str, offset: u64, size: u64) {
        let mut st = self.state();
        // Resumed bytes are not downloaded: out of the total (back in if the server sends the
        // whole blob after all).
        let before = st.resumed.insert(digest.to_string(), offset).unwrap_or(0);
        st.bytes_total = (st.bytes_total + before).saturating_sub(offset);
        let total = st.bytes_total;
        if let Some(b) = &st.total {
            b.set_length(total);
        }
        drop(st);
        if offset > 0 {
            self.say(&format!(
                "resuming {digest} at {} of {}",
                human_bytes(offset),
                human_bytes(size)
            ));
        } else {
            self.say(&format!(
                "{digest}: the registry ignored the range request; downloading all {}",
                human_bytes(size)
            ));
        }
    }

    fn download_progress(&self, bytes: u64) {
        let mut st = self.state();
        st.bytes_done += bytes;
        if let Some(b) = &st.total {
            b.inc(bytes);
        } else if !self.quiet && st.last_line.elapsed() >= Duration::from_secs(5) {
            st.last_line = Instant::now();
            eprintln!(
                "downloaded {} of {}",
                human_bytes(st.bytes_done),
                human_bytes(st.bytes_total)
            );
        }
    }

    fn image_progress(&self, image: &str, done: usize, total: usize) {
        if !self.tty || self.quiet {
            if done == total && !self.quiet {
                eprintln!("complete {image} ({})", layers(total));
            }
            return;
        }
        let mut st = self.state();
        let bar = st.images.entry(image.to_string()).or_insert_with(|| {
            let b = self.multi.insert(0, ProgressBar::new(total as u64));
            b.set_style(
                ProgressStyle::with_template("{msg} [{bar:20}] {pos}/{len} layers")
                    .expect("template")
                    .progress_chars("=> "),
            );
            b.set_message(image.to_string());
            b
        });
        bar.set_position(done as u64);
        if done >= total {
            bar.finish_and_clear();
            let _ = self
                .multi
                .println(format!("complete {image} ({})", layers(total)));
        }
    }

    fn writing(&self, entries: u64, bytes: u64) {
        self.say(&format!(
            "writing the bundle: {entries} entries, {}",
            human_bytes(bytes)
        ));
    }
}
