//! What `airlock load` prints: progress on stderr (a bar on a terminal, a line every few
//! seconds elsewhere), each image as it is loaded or fails, the summary, and the `--json`
//! report on stdout.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use airlock_load::{
    render_error, ContainerdReport, ContentKind, FileState, FilesReport, ImageReport, LoadOutcome,
    LoadReport, LoadReporter,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use super::human_bytes;

/// The end of a load that ran: the report on stdout with `--json`, the summary on stderr,
/// exit code 1 when an image failed.
///
/// With `--files-to`, the files are said first; in `--json` they are the `files` member of
/// the load's report (or the whole document without `--to`).
pub fn finished(
    outcome: Option<&LoadOutcome>,
    files: Option<&FilesReport>,
    json: bool,
    quiet: bool,
) -> anyhow::Result<ExitCode> {
    if json {
        let doc = match (outcome, files) {
            (Some(o), None) => serde_json::to_value(o)?,
            (None, Some(f)) => serde_json::to_value(f)?,
            (Some(o), Some(f)) => {
                let mut doc = serde_json::to_value(o)?;
                doc["files"] = serde_json::to_value(f)?;
                doc
            }
            (None, None) => json!({}),
        };
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    if let Some(f) = files {
        render_files(f, quiet);
    }
    match outcome {
        Some(LoadOutcome::Registry(r)) => render(r, quiet),
        Some(LoadOutcome::Containerd(r)) => render_containerd(r, quiet),
        None => {}
    }
    Ok(if outcome.is_none_or(LoadOutcome::all_loaded) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn render_files(r: &FilesReport, quiet: bool) {
    if quiet {
        return;
    }
    let mut counts = [0usize; 3];
    for f in &r.files {
        counts[f.state as usize] += 1;
        eprintln!(
            "{} {} ({}, {} bytes, mode {})",
            f.state.as_str(),
            f.path.display(),
            f.digest,
            f.size,
            f.mode
        );
    }
    eprintln!(
        "files under {}: {} written, {} unchanged, {} replaced",
        r.dir.display(),
        counts[FileState::Written as usize],
        counts[FileState::Unchanged as usize],
        counts[FileState::Replaced as usize],
    );
}

fn render_containerd(r: &ContainerdReport, quiet: bool) {
    if !quiet {
        for i in &r.images {
            let unpacked = match &i.unpacked {
                airlock_load::containerd::Unpacked::Skipped => "not unpacked".to_string(),
                airlock_load::containerd::Unpacked::NoPlatform => {
                    "no manifest for the platform, not unpacked".to_string()
                }
                airlock_load::containerd::Unpacked::Done {
                    snapshots_created,
                    snapshots_skipped,
                    ..
                } => format!(
                    "{snapshots_created} snapshots unpacked, {snapshots_skipped} already there"
                ),
            };
            eprintln!(
                "loaded {} -> {} ({}; {unpacked})",
                i.image,
                i.names.join(", "),
                i.digest
            );
        }
        let t = &r.totals;
        eprintln!(
            "loaded {} images into {} (containerd {}) in {:.1}s: {} blobs written ({}), {} \
             already there; {} snapshots unpacked, {} already there; image records: {} \
             created, {} updated, {} unchanged",
            t.images,
            r.target,
            r.containerd_version,
            r.seconds,
            t.blobs_written,
            human_bytes(t.bytes_written),
            t.blobs_skipped,
            t.snapshots_created,
            t.snapshots_skipped,
            t.records_created,
            t.records_updated,
            t.records_unchanged,
        );
        if r.charts_not_loaded + r.files_not_loaded > 0 {
            eprintln!(
                "left out: {} charts and {} files (containerd holds images only)",
                r.charts_not_loaded, r.files_not_loaded
            );
        }
    }
    // Each failure was said as it happened (`Progress::image_failed`).
    if !r.failures.is_empty() {
        let names: Vec<&str> = r.failures.iter().map(|f| f.image.as_str()).collect();
        eprintln!(
            "error: {} images failed, no image record of them was written: {}",
            names.len(),
            names.join(", ")
        );
    }
}

/// With `--json`, a fatal error still prints one document on stdout.
pub fn fatal(json: bool, e: anyhow::Error) -> anyhow::Error {
    if json {
        let doc =
            json!({"ok": false, "error": render_error(e.as_ref()), "images": [], "failures": []});
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("a JSON value serialises")
        );
    }
    e
}

fn render(r: &LoadReport, quiet: bool) {
    if !quiet {
        let t = &r.totals;
        let rate = if r.seconds > 0.0 {
            t.bytes_sent as f64 / 1e6 / r.seconds
        } else {
            0.0
        };
        let of = |k| r.images.iter().filter(|i| i.content == Some(k)).count();
        let (charts, files) = (of(ContentKind::Chart), of(ContentKind::File));
        let what = if charts + files == 0 {
            format!("{} images", t.images)
        } else {
            format!(
                "{} images, {charts} charts, {files} files",
                t.images as usize - charts - files
            )
        };
        eprintln!(
            "loaded {what} into {} in {:.1}s: {} blobs sent ({}, {rate:.0} MB/s), {} already \
             there, {} mounted",
            r.target,
            r.seconds,
            t.blobs_sent,
            human_bytes(t.bytes_sent),
            t.blobs_skipped,
            t.blobs_mounted,
        );
    }
    let (artifacts, images): (Vec<_>, Vec<_>) =
        r.failures.iter().partition(|f| f.artifact.is_some());
    if !images.is_empty() {
        let names: Vec<&str> = images.iter().map(|f| f.image.as_str()).collect();
        eprintln!(
            "error: {} images failed, no tag of them was pushed: {}",
            names.len(),
            names.join(", ")
        );
    }
    if !artifacts.is_empty() {
        let names: Vec<&str> = artifacts.iter().map(|f| f.image.as_str()).collect();
        eprintln!(
            "error: {} images are in the target without all their artifacts (see above): {}",
            names.len(),
            names.join(", ")
        );
    }
}

/// Progress on stderr: a bar on a terminal, a line every few seconds elsewhere.
pub struct Progress {
    quiet: bool,
    bar: Option<ProgressBar>,
    state: Mutex<State>,
}

struct State {
    total: u64,
    sent: u64,
    last_line: Instant,
}

impl Progress {
    /// Progress for a run; none but failures with `quiet`.
    pub fn new(quiet: bool) -> Progress {
        let tty = std::io::stderr().is_terminal();
        let bar = (tty && !quiet).then(|| {
            let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "{prefix:>8} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .expect("template")
                .progress_chars("=> "),
            );
            b.set_prefix("sent");
            b
        });
        Progress {
            quiet,
            bar,
            state: Mutex::new(State {
                total: 0,
                sent: 0,
                last_line: Instant::now(),
            }),
        }
    }

    fn say(&self, line: &str) {
        match &self.bar {
            Some(b) => b.println(line),
            None => eprintln!("{line}"),
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl LoadReporter for Progress {
    fn warn(&self, message: &str) {
        self.say(&format!("warning: {message}"));
    }

    fn start(&self, images: usize, blobs: u64, bytes: u64) {
        if !self.quiet {
            self.say(&format!(
                "loading {images} images: {blobs} unique blobs ({})",
                human_bytes(bytes)
            ));
        }
        self.state.lock().expect("progress lock").total = bytes;
        if let Some(b) = &self.bar {
            b.set_length(bytes);
            b.enable_steady_tick(Duration::from_millis(200));
        }
    }

    fn bytes_sent(&self, bytes: u64) {
        if let Some(b) = &self.bar {
            b.inc(bytes);
            return;
        }
        let mut st = self.state.lock().expect("progress lock");
        st.sent += bytes;
        if !self.quiet && st.last_line.elapsed() >= Duration::from_secs(5) {
            st.last_line = Instant::now();
            eprintln!(
                "sent {} of at most {}",
                human_bytes(st.sent),
                human_bytes(st.total)
            );
        }
    }

    fn image_loaded(&self, r: &ImageReport) {
        if !self.quiet {
            self.say(&format!(
                "loaded {} -> {} ({}; {} blobs sent, {} already there, {} mounted)",
                r.image,
                r.references.join(", "),
                r.digest,
                r.blobs_sent,
                r.blobs_skipped,
                r.blobs_mounted
            ));
            for a in &r.artifacts {
                let listed = match a.listed_by {
                    Some(airlock_load::ListedBy::Api) => ", listed by the referrers API",
                    Some(airlock_load::ListedBy::TagSchema) => {
                        ", listed in the referrers tag index"
                    }
                    None => "",
                };
                self.say(&format!(
                    "  {} {} of {}{listed}",
                    a.kind, a.reference, a.subject
                ));
            }
        }
    }

    fn image_failed(&self, _image: &str, error: &(dyn std::error::Error + 'static)) {
        // Failures are printed even with --quiet: they are the result.
        self.say(&format!("error: {}", render_error(error)));
    }
}
