//! `cargo xtask bench bundle`: airlock against skopeo on the same fixtures from the same
//! registry, in one run, with airlock's peak RSS.
//!
//! skopeo's path is what people script today: `skopeo copy --all docker://… oci:LAYOUT:…` for
//! every image into one shared layout, then `tar | zstd -T0`. Both start from an empty cache
//! and end with a `.tar.zst` on disk. Throughput counts unique blob bytes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use airlock_testkit::{fixtures, Auth, Registry};
use anyhow::{bail, Context as _};

use crate::install::cargo;

#[derive(clap::Args)]
pub struct Args {
    /// What to measure
    #[arg(value_enum)]
    pub what: What,
    /// Runs of each tool (the median is reported)
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum What {
    /// `airlock bundle` vs `skopeo copy --all` + tar + zstd
    Bundle,
}

struct Sample {
    seconds: f64,
    max_rss_kib: u64,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    crate::install::run()?;
    match args.what {
        What::Bundle => bench_bundle(args.runs.max(1)),
    }
}

fn bench_bundle(runs: usize) -> anyhow::Result<()> {
    let root = airlock_testkit::workspace_root();
    let st = Command::new(cargo())
        .current_dir(&root)
        .args(["build", "--release", "--quiet", "-p", "airlock"])
        .status()?;
    if !st.success() {
        bail!("cargo build --release -p airlock failed");
    }
    let airlock = root.join("target/release/airlock");
    let work = root.join("target/bench");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;

    let set = fixtures::fixture_set()?;
    let reg = Registry::with_fixtures(false, Auth::None)?;
    let images: Vec<_> = set
        .images
        .iter()
        .filter(|i| i.repository.starts_with("fixtures/"))
        .collect();
    let mut refs = Vec::new();
    let mut unique = std::collections::BTreeMap::new();
    let mut counted = 0u64;
    for i in &images {
        for t in &i.tags {
            refs.push(format!("{}/{}:{t}", reg.host, i.repository));
        }
        for (d, s) in &i.blobs {
            unique.insert(d.clone(), *s);
            counted += s;
        }
    }
    let unique_bytes: u64 = unique.values().sum();
    let spec = work.join("bench.yaml");
    let mut text = String::from(
        "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {name: bench}\nspec:\n  images:\n",
    );
    for r in &refs {
        text.push_str(&format!("    - {r}\n"));
    }
    text.push_str(&format!(
        "  registries:\n    {}: {{plainHttp: true}}\n",
        reg.host
    ));
    std::fs::write(&spec, text)?;

    eprintln!(
        "corpus: {} images ({} references), {} unique blobs, {:.1} MB unique ({:.1} MB counted per image)",
        images.len(),
        refs.len(),
        unique.len(),
        mb(unique_bytes),
        mb(counted)
    );

    let mut airlock_cold = Vec::new();
    let mut airlock_warm = Vec::new();
    let mut skopeo = Vec::new();
    for run in 0..runs {
        let cache = work.join(format!("cache-{run}"));
        let out = work.join(format!("airlock-{run}.tar.zst"));
        let mut c = Command::new(&airlock);
        c.arg("bundle")
            .arg(&spec)
            .arg("-o")
            .arg(&out)
            .arg("--cache-dir")
            .arg(&cache)
            .arg("--quiet");
        airlock_cold.push(measure(c).context("airlock bundle (cold cache)")?);
        let _ = std::fs::remove_file(&out);
        let mut c = Command::new(&airlock);
        c.arg("bundle")
            .arg(&spec)
            .arg("-o")
            .arg(&out)
            .arg("--cache-dir")
            .arg(&cache)
            .arg("--quiet");
        airlock_warm.push(measure(c).context("airlock bundle (warm cache)")?);
        let _ = std::fs::remove_dir_all(&cache);
        let _ = std::fs::remove_file(&out);

        skopeo.push(skopeo_run(&work.join(format!("skopeo-{run}")), &refs)?);
    }
    let a = median(&mut airlock_cold);
    let w = median(&mut airlock_warm);
    let s = median(&mut skopeo);
    let rate = |x: &Sample| mb(unique_bytes) / x.seconds;
    println!();
    println!("| tool | wall time (median of {runs}) | throughput (unique MB/s) | peak RSS |");
    println!("|---|---|---|---|");
    println!(
        "| airlock bundle, empty cache | {:.2} s | {:.0} MB/s | {:.1} MiB |",
        a.seconds,
        rate(&a),
        a.max_rss_kib as f64 / 1024.0
    );
    println!(
        "| airlock bundle, warm cache (rebuild) | {:.2} s | {:.0} MB/s | {:.1} MiB |",
        w.seconds,
        rate(&w),
        w.max_rss_kib as f64 / 1024.0
    );
    println!("| skopeo copy --all to one OCI layout, then tar \\| zstd -T0 | {:.2} s | {:.0} MB/s | {:.1} MiB (largest process) |", s.seconds, rate(&s), s.max_rss_kib as f64 / 1024.0);
    println!();
    println!("airlock / skopeo throughput: {:.2}x", s.seconds / a.seconds);
    Ok(())
}

fn skopeo_run(dir: &Path, refs: &[String]) -> anyhow::Result<Sample> {
    let layout = dir.join("layout");
    std::fs::create_dir_all(&layout)?;
    let started = Instant::now();
    let mut rss = 0;
    for r in refs {
        let mut c = Command::new("skopeo");
        c.args(["copy", "--all", "--quiet", "--src-tls-verify=false"])
            .arg(format!("docker://{r}"))
            .arg(format!("oci:{}:{r}", layout.display()));
        rss = rss.max(
            measure(c)
                .with_context(|| format!("skopeo copy {r}"))?
                .max_rss_kib,
        );
    }
    let out = dir.join("skopeo.tar.zst");
    let mut c = Command::new("sh");
    c.arg("-c").arg(format!(
        "tar -C '{}' -cf - . | zstd -q -T0 -3 -o '{}'",
        layout.display(),
        out.display()
    ));
    rss = rss.max(measure(c).context("tar | zstd")?.max_rss_kib);
    let seconds = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(dir);
    Ok(Sample {
        seconds,
        max_rss_kib: rss,
    })
}

/// Runs a command under GNU time for its wall time and peak RSS.
fn measure(cmd: Command) -> anyhow::Result<Sample> {
    let report = tempfile_path();
    let mut timed = Command::new("/usr/bin/time");
    timed
        .arg("-f")
        .arg("%e %M")
        .arg("-o")
        .arg(&report)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => timed.env(k, v),
            None => timed.env_remove(k),
        };
    }
    let started = Instant::now();
    let st = timed
        .status()
        .context("running /usr/bin/time (install the `time` package: `cargo xtask install`)")?;
    let seconds = started.elapsed().as_secs_f64();
    if !st.success() {
        bail!("{:?} failed", cmd.get_program());
    }
    let text = std::fs::read_to_string(&report)?;
    let _ = std::fs::remove_file(&report);
    let max_rss_kib = text
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok(Sample {
        seconds,
        max_rss_kib,
    })
}

fn tempfile_path() -> PathBuf {
    std::env::temp_dir().join(format!(
        "airlock-bench-{}-{}",
        std::process::id(),
        rand_suffix()
    ))
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn median(v: &mut [Sample]) -> Sample {
    v.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    let m = &v[v.len() / 2];
    Sample {
        seconds: m.seconds,
        max_rss_kib: v.iter().map(|s| s.max_rss_kib).max().unwrap_or(0),
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}
