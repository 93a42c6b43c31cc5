//! `airlock load BUNDLE --key K.pub --to registry://HOST[:PORT][/PREFIX]`, or
//! `--to containerd://[SOCKET][?namespace=NS]`.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use airlock_load::containerd::DEFAULT_SNAPSHOTTER;
use airlock_load::{
    load, render_error, ClientOptions, ContainerdOptions, ContainerdReport, ContainerdTarget,
    Credentials, ImageReport, LoadJob, LoadOptions, LoadOutcome, LoadReport, LoadReporter,
    LoadTarget, NameRule, Purpose, Rewrite, Target, Trust,
};
use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::cli::{GlobalArgs, LoadArgs};
use crate::report::human_bytes;

pub async fn run(args: LoadArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let job = match job(&args) {
        Ok(job) => job,
        Err(e) => return Err(fatal(args.json, e)),
    };
    let reporter = Arc::new(Progress::new(global.quiet));
    let result = load(job, reporter.clone()).await;
    reporter.finish();
    let outcome = result.map_err(|e| fatal(args.json, e.into()))?;
    conclude(
        &outcome,
        args.json,
        outcome.all_loaded(),
        || match &outcome {
            LoadOutcome::Registry(r) => render(r, global.quiet),
            LoadOutcome::Containerd(r) => render_containerd(r, global.quiet),
        },
    )
}

/// Flags into the load of one target: everything that can be wrong with them fails here.
fn job(args: &LoadArgs) -> anyhow::Result<LoadJob> {
    let target: LoadTarget = args.to.parse()?;
    Ok(match target {
        LoadTarget::Registry(target) => LoadJob::Registry(options(args, target)?),
        LoadTarget::Containerd(target) => LoadJob::Containerd(containerd_options(args, target)?),
    })
}

/// The end of a load that ran: the report on stdout with `--json`, the summary on stderr,
/// exit code 1 when an image failed.
fn conclude(
    report: &impl serde::Serialize,
    json: bool,
    all_loaded: bool,
    render: impl FnOnce(),
) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    }
    render();
    Ok(if all_loaded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Flags into library options: everything that can be wrong with them fails here.
/// The key (or none, on purpose) and the name mapping: the same for every target.
fn trust_and_names(args: &LoadArgs) -> anyhow::Result<(Trust, NameRule, Vec<Rewrite>)> {
    let rule: NameRule = args.names.parse()?;
    let mut rewrites = Vec::new();
    if let Some(path) = &args.rewrite_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the rewrite file `{}`", path.display()))?;
        rewrites = airlock_load::names::parse_rewrite_file(&text)
            .map_err(|(line, e)| anyhow::anyhow!("{}:{line}: {e}", path.display()))?;
    }
    for r in &args.rewrite {
        rewrites.push(r.parse::<Rewrite>()?);
    }
    let trust = Trust::from_flags(
        args.key.as_deref(),
        args.insecure_skip_signature,
        Purpose::Load,
    )?;
    Ok((trust, rule, rewrites))
}

fn options(args: &LoadArgs, target: Target) -> anyhow::Result<LoadOptions> {
    if args.platform.is_some() || args.no_unpack || args.snapshotter != DEFAULT_SNAPSHOTTER {
        bail!(
            "--platform, --snapshotter and --no-unpack are for containerd:// targets; a \
             registry keeps every platform and unpacks nothing"
        );
    }
    let (trust, rule, rewrites) = trust_and_names(args)?;
    let mut client = ClientOptions {
        docker_config: !args.no_docker_config,
        retries: args.retries,
        user_agent: super::common::user_agent(),
        ..ClientOptions::default()
    };
    let host = client.hosts.entry(target.host.clone()).or_default();
    host.plain_http = args.plain_http;
    host.ca_file = args.ca_file.clone();
    if let Some(username) = &args.username {
        host.credentials = Some(Credentials {
            username: username.clone(),
            password: super::common::read_secret_stdin("--password-stdin")?,
        });
    }
    if let Some(ca) = &args.ca_file {
        if !ca.is_file() {
            bail!("cannot read the CA file `{}`", ca.display());
        }
    }
    Ok(LoadOptions {
        bundle: args.bundle.clone(),
        trust,
        target,
        rule,
        rewrites,
        client,
        jobs: usize::from(args.jobs),
        harbor_create_projects: args.harbor_create_projects,
    })
}

/// `--to containerd://…`: the same bundle, key and name flags; the registry's connection
/// flags do not apply.
fn containerd_options(
    args: &LoadArgs,
    target: ContainerdTarget,
) -> anyhow::Result<ContainerdOptions> {
    if args.ca_file.is_some() || args.plain_http || args.username.is_some() {
        bail!(
            "--ca-file, --plain-http and --username are for registry:// targets; containerd \
             is reached through its socket"
        );
    }
    if args.harbor_create_projects {
        bail!("--harbor-create-projects is for registry:// targets");
    }
    let (trust, rule, rewrites) = trust_and_names(args)?;
    Ok(ContainerdOptions {
        bundle: args.bundle.clone(),
        trust,
        target,
        rule,
        rewrites,
        platform: args.platform.clone(),
        snapshotter: args.snapshotter.clone(),
        unpack: !args.no_unpack,
        jobs: usize::from(args.jobs),
    })
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
    }
    for f in &r.failures {
        eprintln!("error: {}", f.error);
    }
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
fn fatal(json: bool, e: anyhow::Error) -> anyhow::Error {
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
        eprintln!(
            "loaded {} images into {} in {:.1}s: {} blobs sent ({}, {rate:.0} MB/s), {} already \
             there, {} mounted",
            t.images,
            r.target,
            r.seconds,
            t.blobs_sent,
            human_bytes(t.bytes_sent),
            t.blobs_skipped,
            t.blobs_mounted,
        );
    }
    if !r.failures.is_empty() {
        let names: Vec<&str> = r.failures.iter().map(|f| f.image.as_str()).collect();
        eprintln!(
            "error: {} images failed, no tag of them was pushed: {}",
            names.len(),
            names.join(", ")
        );
    }
}

/// Progress on stderr: a bar on a terminal, a line every few seconds elsewhere.
struct Progress {
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
    fn new(quiet: bool) -> Progress {
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

    fn finish(&self) {
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
        }
    }

    fn image_failed(&self, _image: &str, error: &(dyn std::error::Error + 'static)) {
        // Failures are printed even with --quiet: they are the result.
        self.say(&format!("error: {}", render_error(error)));
    }
}
