//! Rendering for people: progress bars on a terminal, plain lines elsewhere, error chains.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use airlock_bundle::{ImageError, Reporter};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

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

    /// Clears the bars.
    pub fn finish(&self) {
        let mut st = self.state.lock().expect("reporter lock");
        if let Some(t) = st.total.take() {
            t.finish_and_clear();
        }
        for (_, b) in st.images.drain() {
            b.finish_and_clear();
        }
    }

    /// Every failure reported so far: (image, error with causes).
    pub fn failures(&self) -> Vec<(String, String)> {
        self.state.lock().expect("reporter lock").failures.clone()
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
        self.state
            .lock()
            .expect("reporter lock")
            .failures
            .push((image.to_string(), text));
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
        let mut st = self.state.lock().expect("reporter lock");
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

    fn download_progress(&self, bytes: u64) {
        let mut st = self.state.lock().expect("reporter lock");
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
        let mut st = self.state.lock().expect("reporter lock");
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
