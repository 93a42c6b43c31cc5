//! `cargo xtask bench split`: the signed fixture bundle as one file and split at 50M, each
//! loaded into a fresh registry and verified, interleaved runs, medians. Reading the parts in
//! place should cost nothing measurable: the target is within 5 % of one file.

use std::process::Command;

use airlock_testkit::{fixtures, Auth, Registry};
use anyhow::{bail, Context as _};

use super::{corpus, mb, measure, median, prepare, signed_fixture_bundle, Sample};

pub fn bench_split(runs: usize) -> anyhow::Result<()> {
    let (airlock, work) = prepare("bench-split")?;
    let set = fixtures::fixture_set()?;
    let (images, _) = corpus(&set);
    let source = Registry::with_fixtures(false, Auth::None)?;
    let refs: Vec<String> = images
        .iter()
        .flat_map(|i| {
            i.tags
                .iter()
                .map(|t| format!("{}/{}:{t}", source.host, i.repository))
        })
        .collect();
    let whole = signed_fixture_bundle(&airlock, &work, &source.host, refs.iter().cloned())?;
    // The same spec split at 50M (the cache was removed: bundled again from the registry).
    let parts_dir = work.join("parts");
    std::fs::create_dir_all(&parts_dir)?;
    let split = parts_dir.join("bench.tar.zst");
    let st = Command::new(&airlock)
        .arg("bundle")
        .arg(work.join("bench.yaml"))
        .arg("-o")
        .arg(&split)
        .args(["--split", "50M", "--quiet", "--cache-dir"])
        .arg(work.join("cache"))
        .arg("--sign-key")
        .arg(work.join("signer.key"))
        .status()?;
    if !st.success() {
        bail!("airlock bundle --split failed");
    }
    drop(source);
    let first = parts_dir.join("bench.tar.zst.000");
    let parts = std::fs::read_dir(&parts_dir)?
        .filter(|e| {
            e.as_ref().is_ok_and(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.rsplit('.')
                    .next()
                    .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            })
        })
        .count();
    eprintln!(
        "bundle {:.1} MB; split at 50M into {parts} parts",
        mb(std::fs::metadata(&whole)?.len())
    );

    let load = |path: &std::path::Path| -> anyhow::Result<Sample> {
        let reg = Registry::start(airlock_testkit::RegistryOptions::default())
            .context("start a fresh registry")?;
        let mut c = Command::new(&airlock);
        c.arg("load")
            .arg(path)
            .arg("--key")
            .arg(work.join("signer.pub"))
            .arg("--to")
            .arg(format!("registry://{}/bench", reg.host))
            .args([
                "--names",
                "drop-host",
                "--plain-http",
                "--no-docker-config",
                "--quiet",
            ]);
        measure(c).context("airlock load")
    };
    let verify = |path: &std::path::Path| -> anyhow::Result<Sample> {
        let mut c = Command::new(&airlock);
        c.arg("verify")
            .arg(path)
            .arg("--key")
            .arg(work.join("signer.pub"))
            .arg("--quiet");
        measure(c).context("airlock verify")
    };
    let (mut lw, mut ls, mut vw, mut vs) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        // Interleaved, and the order alternates, so drift and cache warmth hit both alike.
        if run % 2 == 0 {
            lw.push(load(&whole)?);
            ls.push(load(&first)?);
            vw.push(verify(&whole)?);
            vs.push(verify(&first)?);
        } else {
            ls.push(load(&first)?);
            lw.push(load(&whole)?);
            vs.push(verify(&first)?);
            vw.push(verify(&whole)?);
        }
    }
    let row = |what: &str, w: &mut [Sample], s: &mut [Sample]| {
        let (w, s) = (median(w), median(s));
        eprintln!(
            "{what:<8} one file {:>6.2} s   parts {:>6.2} s   ({:+.1} %)",
            w.seconds,
            s.seconds,
            (s.seconds / w.seconds - 1.0) * 100.0
        );
    };
    eprintln!("median of {runs} interleaved runs:");
    row("load", &mut lw, &mut ls);
    row("verify", &mut vw, &mut vs);
    Ok(())
}
