//! `cargo xtask bench sync`: `airlock sync` against `skopeo sync --src yaml --dest docker` on
//! the same images from the same source registry, each into a fresh target registry, in one
//! run: cold (the target empty) and no-op (the same sync again), on the fixture images and on
//! the many-images corpus; wall time and peak RSS of each process. A third airlock run, the
//! no-op against the lock the cold run wrote (`--locked`), is its own row: it asks the source
//! nothing, which is a different promise from the default no-op's.
//!
//! Every corpus is measured twice: with the source on loopback, and with the same source
//! `--rtt` milliseconds away behind a delay line (`airlock_testkit::Latency`), which is where
//! a mirror's upstream is in practice. On loopback a no-op is bound by the registries' CPU:
//! distribution 2.8 spends about 2 ms on every request, whatever it asks, and both registries
//! and both tools share two cores; at a distance it is bound by round trips, which skopeo
//! makes one image after another and airlock makes for many images at once.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use airlock_testkit::{fixtures, Auth, Latency, Registry, RegistryOptions};
use anyhow::Context as _;

use super::{mb, measure, median, prepare, Sample};

/// Images in the many-images corpus.
const IMAGES: usize = 200;

/// The spec `airlock sync` reads: every tag of every image of `set` at `source`.
fn airlock_spec(path: &Path, set: &fixtures::FixtureSet, source: &str) -> anyhow::Result<()> {
    let mut text = String::from(
        "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {name: bench}\nspec:\n  \
         artifacts: none\n  images:\n",
    );
    for image in &set.images {
        for t in &image.tags {
            text.push_str(&format!("    - {source}/{}:{t}\n", image.repository));
        }
    }
    text.push_str(&format!(
        "  registries:\n    {source}: {{plainHttp: true}}\n"
    ));
    std::fs::write(path, text)?;
    Ok(())
}

/// The YAML `skopeo sync --src yaml` reads: the same images and tags.
fn skopeo_yaml(path: &Path, set: &fixtures::FixtureSet, source: &str) -> anyhow::Result<()> {
    let mut repos: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for image in &set.images {
        repos
            .entry(&image.repository)
            .or_default()
            .extend(image.tags.iter().map(String::as_str));
    }
    let mut text = format!("{source}:\n  tls-verify: false\n  images:\n");
    for (repo, tags) in repos {
        text.push_str(&format!("    {repo}: [{}]\n", tags.join(", ")));
    }
    std::fs::write(path, text)?;
    Ok(())
}

struct Row {
    cold: Sample,
    noop: Sample,
    /// airlock only: the no-op with `--locked`.
    locked: Option<Sample>,
}

pub fn bench_sync(runs: usize, rtt_ms: u64) -> anyhow::Result<()> {
    let (airlock, work) = prepare("bench-sync")?;
    let fixture_set = fixtures::fixture_set()?;
    let many = fixtures::many_images(IMAGES)?;
    let fixture_source = Registry::with_fixtures(false, Auth::None)?;
    let many_source = Registry::start(RegistryOptions::default())?;
    fixtures::push(&many, &many_source.url(), "").context("pushing the many-images corpus")?;
    // The same sources again behind a delay line: an upstream as far away as a public
    // registry is from a DMZ. The targets stay on loopback, as a mirror is beside its users.
    let rtt = Duration::from_millis(rtt_ms);
    let far = |r: &Registry| {
        (rtt_ms > 0)
            .then(|| Latency::start(&r.host, rtt))
            .transpose()
    };
    let (fixture_far, many_far) = (far(&fixture_source)?, far(&many_source)?);
    let far_label = format!("{rtt_ms} ms away");

    let mut cases = vec![
        (
            "fixtures",
            &fixture_set,
            fixture_source.host.clone(),
            "loopback",
        ),
        ("many-images", &many, many_source.host.clone(), "loopback"),
    ];
    if let (Some(f), Some(m)) = (&fixture_far, &many_far) {
        cases.push(("fixtures", &fixture_set, f.host.clone(), &far_label));
        cases.push(("many-images", &many, m.host.clone(), &far_label));
    }
    let mut table = Vec::new();
    for (case, (name, set, source, distance)) in cases.into_iter().enumerate() {
        let tags: usize = set.images.iter().map(|i| i.tags.len()).sum();
        eprintln!(
            "{name}: {} images ({tags} tags), {:.1} MB unique, source {distance}",
            set.images.len(),
            mb(set.unique_blob_bytes)
        );
        let spec = work.join(format!("{name}-{case}.yaml"));
        let yaml = work.join(format!("{name}-{case}-skopeo.yaml"));
        airlock_spec(&spec, set, &source)?;
        skopeo_yaml(&yaml, set, &source)?;
        let (mut a, mut s) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            // Fresh targets each run, the two tools interleaved.
            let target = Registry::start(RegistryOptions::default())?;
            let lock = work.join(format!("{name}-{case}.lock"));
            let sync = |mode: &[&str]| {
                let mut c = Command::new(&airlock);
                c.arg("sync")
                    .arg(&spec)
                    .arg("--to")
                    .arg(format!("registry://{}/mirror", target.host))
                    .args(["--plain-http", "--names", "drop-host", "--jobs", "8"])
                    .arg("--quiet")
                    .args(mode)
                    .env("DOCKER_CONFIG", work.join("no-docker-config"));
                measure(c).context("airlock sync")
            };
            let lock = lock.to_str().context("a lock path in UTF-8")?;
            let cold = sync(&["--lock", lock])?;
            let noop = sync(&[])?;
            let locked = Some(sync(&["--locked", "--lock", lock])?);
            a.push(Row { cold, noop, locked });
            drop(target);

            let target = Registry::start(RegistryOptions::default())?;
            let skopeo = || {
                let mut c = Command::new("skopeo");
                c.args(["sync", "--all", "--src", "yaml", "--dest", "docker"])
                    .arg("--dest-tls-verify=false")
                    .arg(&yaml)
                    .arg(format!("{}/mirror", target.host));
                c.stdout(std::process::Stdio::null());
                measure(c).context("skopeo sync")
            };
            let cold = skopeo()?;
            let noop = skopeo()?;
            s.push(Row {
                cold,
                noop,
                locked: None,
            });
        }
        let pick = |rows: &mut Vec<Row>| {
            let mut cold: Vec<Sample> = rows.iter().map(|r| copy(&r.cold)).collect();
            let mut noop: Vec<Sample> = rows.iter().map(|r| copy(&r.noop)).collect();
            (median(&mut cold), median(&mut noop))
        };
        let (ac, an) = pick(&mut a);
        let (sc, sn) = pick(&mut s);
        let mut locked: Vec<Sample> = a
            .iter()
            .filter_map(|r| r.locked.as_ref())
            .map(copy)
            .collect();
        let al = median(&mut locked);
        table.push((name, tags, distance, ac, an, al, sc, sn));
    }
    println!();
    println!(
        "| corpus | source | airlock cold | skopeo cold | cold speed-up | airlock no-op | skopeo \
         no-op | no-op speed-up | airlock peak RSS | skopeo peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (name, tags, distance, ac, an, al, sc, sn) in &table {
        println!(
            "| {name} ({tags} tags) | {distance} | {:.2} s | {:.2} s | {:.1}× | {:.3} s | {:.2} s \
             | {:.1}× | {:.1} MiB | {:.1} MiB |",
            ac.seconds,
            sc.seconds,
            sc.seconds / ac.seconds,
            an.seconds,
            sn.seconds,
            sn.seconds / an.seconds,
            ac.max_rss_kib.max(an.max_rss_kib) as f64 / 1024.0,
            sc.max_rss_kib.max(sn.max_rss_kib) as f64 / 1024.0,
        );
        println!(
            "| {name} ({tags} tags), `--locked` | {distance} | | | | {:.3} s | {:.2} s | {:.1}× \
             | {:.1} MiB | |",
            al.seconds,
            sn.seconds,
            sn.seconds / al.seconds,
            al.max_rss_kib as f64 / 1024.0,
        );
    }
    println!();
    println!(
        "median of {runs}; targets: cold ≥ 2×, no-op ≥ 10× faster than skopeo, airlock peak \
         RSS ≤ 64 MiB"
    );
    Ok(())
}

fn copy(s: &Sample) -> Sample {
    Sample {
        seconds: s.seconds,
        max_rss_kib: s.max_rss_kib,
    }
}
