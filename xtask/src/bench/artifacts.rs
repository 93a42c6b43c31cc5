//! `cargo xtask bench artifacts`: what finding and carrying signatures, attestations, SBOMs and
//! referrers costs at bundle time, on the many-images corpus (hundreds of small images, where
//! the cost per image decides): the same spec bundled with `artifacts:` on (the default) and
//! off, interleaved, each from an empty cache, with skopeo's per-image copy beside them.

use std::path::Path;
use std::process::Command;

use airlock_testkit::{fixtures, Registry, RegistryOptions};
use anyhow::Context as _;

use super::{mb, measure, median, prepare, skopeo_run, Sample};

/// Images in the corpus.
const IMAGES: usize = 200;

pub fn bench_artifacts(runs: usize) -> anyhow::Result<()> {
    let (airlock, work) = prepare("bench-artifacts")?;
    let set = fixtures::many_images(IMAGES)?;
    let reg = Registry::start(RegistryOptions::default())?;
    fixtures::push(&set, &reg.url(), "").context("pushing the many-images corpus")?;
    let refs: Vec<String> = set.images.iter().map(|i| i.reference(&reg.host)).collect();
    let unique = set.unique_blob_bytes;
    let spec = |name: &str, artifacts: &str| -> anyhow::Result<std::path::PathBuf> {
        let path = work.join(format!("{name}.yaml"));
        let mut text = format!(
            "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {{name: {name}}}\nspec:\n{artifacts}  images:\n"
        );
        for r in &refs {
            text.push_str(&format!("    - {r}\n"));
        }
        text.push_str(&format!(
            "  registries:\n    {}: {{plainHttp: true}}\n",
            reg.host
        ));
        std::fs::write(&path, text)?;
        Ok(path)
    };
    let on = spec("artifacts-on", "")?;
    let off = spec("artifacts-off", "  artifacts: none\n")?;
    eprintln!(
        "corpus: {} images, {:.1} MB unique, unsigned",
        set.images.len(),
        mb(unique)
    );

    let bundle = |spec: &Path, run: usize, label: &str| -> anyhow::Result<Sample> {
        let cache = work.join(format!("cache-{label}-{run}"));
        let out = work.join(format!("{label}-{run}.tar.zst"));
        let mut c = Command::new(&airlock);
        c.arg("bundle")
            .arg(spec)
            .arg("-o")
            .arg(&out)
            .arg("--cache-dir")
            .arg(&cache)
            .arg("--quiet");
        let sample = measure(c).with_context(|| format!("airlock bundle ({label})"))?;
        let _ = std::fs::remove_dir_all(&cache);
        let _ = std::fs::remove_file(&out);
        Ok(sample)
    };
    let mut with = Vec::new();
    let mut without = Vec::new();
    let mut skopeo = Vec::new();
    for run in 0..runs {
        with.push(bundle(&on, run, "on")?);
        without.push(bundle(&off, run, "off")?);
        skopeo.push(skopeo_run(&work.join(format!("skopeo-{run}")), &refs)?);
    }
    let a = median(&mut with);
    let b = median(&mut without);
    let s = median(&mut skopeo);
    println!();
    println!("| {IMAGES} small images | wall time (median of {runs}) | per image | peak RSS |");
    println!("|---|---|---|---|");
    for (label, x) in [
        ("airlock bundle, artifacts on (default)", &a),
        ("airlock bundle, `artifacts: none`", &b),
        ("skopeo copy --all per image, then tar \\| zstd", &s),
    ] {
        println!(
            "| {label} | {:.2} s | {:.1} ms | {:.1} MiB |",
            x.seconds,
            x.seconds * 1000.0 / IMAGES as f64,
            x.max_rss_kib as f64 / 1024.0
        );
    }
    println!();
    println!(
        "artifacts on / off: {:.2}x (the bound is 1.3x); skopeo / airlock (on): {:.2}x",
        a.seconds / b.seconds,
        s.seconds / a.seconds
    );
    Ok(())
}
