//! `cargo xtask bench artifacts`: what finding and carrying signatures, attestations, SBOMs and
//! referrers costs at bundle time, on the many-images corpus (hundreds of small images, where
//! the cost per image decides): the same spec bundled with `artifacts:` on (the default) and
//! off, interleaved, each from an empty cache, with skopeo's per-image copy beside them. Two
//! registries hold the corpus: one unsigned (what discovery alone costs), one where every
//! fourth image carries a cosign signature (discovery plus carrying what it finds).

use std::path::{Path, PathBuf};
use std::process::Command;

use airlock_testkit::{fixtures, Registry, RegistryOptions};
use anyhow::Context as _;

use super::{mb, measure, median, prepare, skopeo_run, Sample};

/// Images in the corpus.
const IMAGES: usize = 200;

/// A spec of every image of `set` on `reg`, with `artifacts` lines under `spec:`.
fn write_spec(
    path: &Path,
    set: &fixtures::FixtureSet,
    reg: &Registry,
    artifacts: &str,
) -> anyhow::Result<()> {
    let mut text = format!(
        "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {{name: many}}\nspec:\n{artifacts}  images:\n"
    );
    for image in &set.images {
        text.push_str(&format!("    - {}\n", image.reference(&reg.host)));
    }
    text.push_str(&format!(
        "  registries:\n    {}: {{plainHttp: true}}\n",
        reg.host
    ));
    std::fs::write(path, text)?;
    Ok(())
}

pub fn bench_artifacts(runs: usize) -> anyhow::Result<()> {
    let (airlock, work) = prepare("bench-artifacts")?;
    let set = fixtures::many_images(IMAGES)?;
    let unsigned = Registry::start(RegistryOptions::default())?;
    let signed = Registry::start(RegistryOptions::default())?;
    for reg in [&unsigned, &signed] {
        fixtures::push(&set, &reg.url(), "").context("pushing the many-images corpus")?;
    }
    let to_sign: Vec<&fixtures::FixtureImage> = set.images.iter().step_by(4).collect();
    let key = airlock_layout::SigningKey::generate();
    airlock_testkit::supply::sign_images(&signed.url(), &to_sign, &key)
        .context("signing a share of the corpus")?;
    eprintln!(
        "corpus: {} images, {:.1} MB unique; the second registry has {} of them signed (cosign .sig)",
        set.images.len(),
        mb(set.unique_blob_bytes),
        to_sign.len()
    );

    let bundle = |spec: &Path, label: &str| -> anyhow::Result<Sample> {
        let cache = work.join(format!("cache-{label}"));
        let out = work.join(format!("{label}.tar.zst"));
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
    let mut rows = Vec::new();
    let mut ratios = Vec::new();
    for (name, reg) in [("unsigned", &unsigned), ("a quarter signed", &signed)] {
        let on: PathBuf = work.join(format!("{}-on.yaml", name.replace(' ', "-")));
        let off: PathBuf = work.join(format!("{}-off.yaml", name.replace(' ', "-")));
        write_spec(&on, &set, reg, "")?;
        write_spec(&off, &set, reg, "  artifacts: none\n")?;
        let (mut with, mut without) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            with.push(bundle(&on, "on")?);
            without.push(bundle(&off, "off")?);
        }
        let (a, b) = (median(&mut with), median(&mut without));
        ratios.push((name, a.seconds / b.seconds));
        rows.push((format!("airlock bundle, {name}, artifacts on (default)"), a));
        rows.push((format!("airlock bundle, {name}, `artifacts: none`"), b));
    }
    let refs: Vec<String> = set
        .images
        .iter()
        .map(|i| i.reference(&unsigned.host))
        .collect();
    let mut skopeo = Vec::new();
    for run in 0..runs {
        skopeo.push(skopeo_run(&work.join(format!("skopeo-{run}")), &refs)?);
    }
    rows.push((
        "skopeo copy --all per image (unsigned corpus), then tar \\| zstd".into(),
        median(&mut skopeo),
    ));
    println!();
    println!("| {IMAGES} small images | wall time (median of {runs}) | per image | peak RSS |");
    println!("|---|---|---|---|");
    for (label, x) in &rows {
        println!(
            "| {label} | {:.2} s | {:.1} ms | {:.1} MiB |",
            x.seconds,
            x.seconds * 1000.0 / IMAGES as f64,
            x.max_rss_kib as f64 / 1024.0
        );
    }
    println!();
    for (name, r) in ratios {
        println!("artifacts on / off, {name}: {r:.2}x (the bound is 1.3x)");
    }
    Ok(())
}
