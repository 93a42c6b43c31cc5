//! Progress of `bundle` and `lock` (the online side's [`Reporter`]), and their summaries.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use airlock_bundle::{
    beside_manifest_path, beside_signature_path, BaseSignature, BundleOutcome, Error, ImageError,
    LockOutcome, Reporter,
};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use super::{error_chain, human_bytes};

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

/// An interrupted `bundle`: whether the bundle file was replaced by then (`written`).
pub fn interrupted(output: &Path, written: bool) {
    if !written {
        eprintln!("interrupted; no bundle was written");
    } else {
        // The signal came in the instant between the rename and the files beside it.
        eprintln!(
            "interrupted just after `{}` was written; the manifest beside it may be missing or old\n  hint: run the same bundle again",
            output.display()
        );
    }
}

/// A `bundle` run that wrote a bundle: the summary on stderr, the `--json` document on
/// stdout; exit code 1 when images failed (with `--keep-going`).
pub fn finished(
    outcome: &BundleOutcome,
    signed_by: Option<&str>,
    started: Instant,
    reporter: &ProgressReporter,
    json: bool,
    quiet: bool,
) -> anyhow::Result<std::process::ExitCode> {
    let m = &outcome.manifest;
    if !quiet {
        eprintln!(
            "wrote {}: {} images, {} unique blobs, {} ({} on disk) in {:.1}s; downloaded {}{}, from cache {}",
            outcome.output.display(),
            m.totals.images,
            m.totals.blobs,
            human_bytes(m.totals.bytes),
            human_bytes(outcome.archive.compressed_bytes),
            started.elapsed().as_secs_f64(),
            human_bytes(outcome.downloaded_bytes),
            match outcome.resumed_bytes {
                0 => String::new(),
                n => format!(" (and {} resumed)", human_bytes(n)),
            },
            human_bytes(outcome.cached_bytes),
        );
        match signed_by {
            Some(fp) => eprintln!(
                "signed with key {fp}; manifest and signature also beside the bundle: {}, {}",
                beside_manifest_path(&outcome.output).display(),
                beside_signature_path(&outcome.output).display()
            ),
            None => eprintln!(
                "not signed (pass --sign-key KEY to sign); manifest also beside the bundle: {}",
                beside_manifest_path(&outcome.output).display()
            ),
        }
        for (host, limit) in &outcome.rate_limits {
            eprintln!("rate limit: {host}: {limit}");
        }
        for line in delta_lines(outcome) {
            eprintln!("{line}");
        }
    }
    if json {
        let mut doc = json!({
            "output": outcome.output,
            "spec": {"name": m.spec.name, "sha256": m.spec.sha256},
            "images": m.images,
            "totals": m.totals,
            "archive": {
                "entries": outcome.archive.entries,
                "frames": outcome.archive.frames,
                "tarBytes": outcome.archive.tar_bytes,
                "compressedBytes": outcome.archive.compressed_bytes,
            },
            "downloadedBytes": outcome.downloaded_bytes,
            "resumedBytes": outcome.resumed_bytes,
            "cachedBytes": outcome.cached_bytes,
            "warnings": outcome.warnings,
            "failures": failures_json(reporter),
            "manifest": beside_manifest_path(&outcome.output),
            "signature": signed_by.map(|_| beside_signature_path(&outcome.output)),
            "signedBy": signed_by,
        });
        if !outcome.bases.is_empty() {
            doc["delta"] = delta_json(outcome);
        }
        if !outcome.rate_limits.is_empty() {
            doc["rateLimits"] = outcome
                .rate_limits
                .iter()
                .map(|(host, l)| json!({"host": host, "limit": l.limit, "remaining": l.remaining, "text": format!("{host}: {l}")}))
                .collect();
        }
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    if outcome.failures.is_empty() {
        Ok(std::process::ExitCode::SUCCESS)
    } else {
        eprintln!(
            "error: {} images failed (named above); the bundle holds the rest",
            outcome.failures.len()
        );
        Ok(std::process::ExitCode::from(1))
    }
}

/// A `bundle` run that wrote nothing because images failed: exit code 1.
pub fn nothing_written(
    e: &Error,
    reporter: &ProgressReporter,
    json: bool,
) -> anyhow::Result<std::process::ExitCode> {
    if json {
        let doc =
            json!({ "output": null, "error": e.to_string(), "failures": failures_json(reporter) });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    eprintln!("error: {e}");
    Ok(std::process::ExitCode::from(1))
}

fn failures_json(reporter: &ProgressReporter) -> serde_json::Value {
    reporter
        .failures()
        .into_iter()
        .map(|(image, error)| json!({"image": image, "error": error}))
        .collect()
}

/// A lock written: the summary on stderr, the lock on stdout with `--json`.
pub fn locked(
    outcome: &LockOutcome,
    spec: &Path,
    json: bool,
    quiet: bool,
) -> anyhow::Result<std::process::ExitCode> {
    if !quiet {
        eprintln!(
            "wrote {}: {} images locked; `airlock bundle {} --locked` checks every source against it",
            outcome.output.display(),
            outcome.lock.images.len(),
            spec.display(),
        );
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&outcome.lock)?);
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// The carried part of a delta: blobs and bytes carried, of all.
fn carried(m: &airlock_bundle::BundleManifest) -> (u64, u64) {
    m.carried_blobs()
        .fold((0, 0), |(n, b), r| (n + 1, b.saturating_add(r.size)))
}

/// What the summary says of a delta: one line for the bases and the carried share, one for
/// each base's signature and each base that supplies nothing.
fn delta_lines(outcome: &BundleOutcome) -> Vec<String> {
    let m = &outcome.manifest;
    if outcome.bases.is_empty() {
        return Vec::new();
    }
    let mut lines = Vec::new();
    let (n, bytes) = carried(m);
    let against: Vec<String> = outcome
        .bases
        .iter()
        .map(|b| format!("{} ({})", b.path.display(), b.digest))
        .collect();
    lines.push(format!(
        "delta against {}: {n} of {} blobs carried, {} of {}",
        against.join(", "),
        m.totals.blobs,
        human_bytes(bytes),
        human_bytes(m.totals.bytes),
    ));
    for b in &outcome.bases {
        let supplied = m
            .bases
            .iter()
            .find(|r| r.digest == b.digest)
            .map_or(0, |r| r.blobs.len());
        if supplied == 0 {
            lines.push(format!(
                "note: base {} holds none of this bundle's blobs",
                b.path.display()
            ));
        }
        match &b.signature {
            BaseSignature::Verified { key } => lines.push(format!(
                "base {}: signature verified with key {key}",
                b.path.display()
            )),
            BaseSignature::OtherKey { key } => lines.push(format!(
                "note: base {} is signed, but not by key {key} (another key, or changed since); a base only decides what is left out, and load checks that the target has it",
                b.path.display()
            )),
            BaseSignature::NotChecked => lines.push(format!(
                "base {}: signed, not checked (pass --sign-key to check it with that key)",
                b.path.display()
            )),
            BaseSignature::Unsigned => {}
        }
    }
    lines
}

/// `delta` of the `--json` summary.
fn delta_json(outcome: &BundleOutcome) -> serde_json::Value {
    let m = &outcome.manifest;
    let (n, bytes) = carried(m);
    let bases: Vec<serde_json::Value> = outcome
        .bases
        .iter()
        .map(|b| {
            let record = m.bases.iter().find(|r| r.digest == b.digest);
            let (signature, key) = match &b.signature {
                BaseSignature::Unsigned => ("unsigned", None),
                BaseSignature::NotChecked => ("not-checked", None),
                BaseSignature::Verified { key } => ("verified", Some(key)),
                BaseSignature::OtherKey { key } => ("other-key", Some(key)),
            };
            json!({
                "path": b.path,
                "name": b.name,
                "kind": b.kind,
                "digest": b.digest,
                "blobs": record.map_or(0, |r| r.blobs.len()),
                "signature": signature,
                "checkedWith": key,
            })
        })
        .collect();
    json!({
        "carriedBlobs": n,
        "carriedBytes": bytes,
        "totalBlobs": m.totals.blobs,
        "totalBytes": m.totals.bytes,
        "bases": bases,
    })
}
