//! `cargo xtask bench delta`: the monthly update. v1 is the fixture spec but one image; v2
//! adds that image and moves one tag to a new image. Timed: the full v1, the full v2, and v2
//! as a delta against v1 (`bundle --base v1.tar.zst`), each from an empty cache (cold) and
//! with the cache of an earlier run (warm), with the size of each file.

use std::path::Path;
use std::process::Command;

use airlock_testkit::{fixtures, Registry, RegistryOptions};
use anyhow::{bail, Context as _};

use super::{mb, measure, median, prepare, Sample};

/// The repository only v2 names.
const NEW: &str = "fixtures/app-b";

fn write_spec(path: &Path, reg: &Registry, refs: &[String]) -> anyhow::Result<()> {
    let mut text = String::from(
        "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {name: update}\nspec:\n  images:\n",
    );
    for r in refs {
        text.push_str(&format!("    - {r}\n"));
    }
    text.push_str(&format!(
        "  registries:\n    {}: {{plainHttp: true}}\n",
        reg.host
    ));
    std::fs::write(path, text)?;
    Ok(())
}

pub fn bench_delta(runs: usize) -> anyhow::Result<()> {
    let (airlock, work) = prepare("bench-delta")?;
    let storage = work.join("registry-storage");
    let st = Command::new("cp")
        .arg("-a")
        .arg(fixtures::registry_storage()?)
        .arg(&storage)
        .status()?;
    if !st.success() {
        bail!("copying the fixture registry storage failed");
    }
    let reg = Registry::start(RegistryOptions {
        storage: Some(storage),
        ..RegistryOptions::default()
    })?;
    let next = fixtures::many_images(1)?;
    reg.push_fixtures(&next, "delta", &[])
        .context("pushing the image the moved tag moves to")?;
    let set = fixtures::fixture_set()?;
    let mut v1_refs = Vec::new();
    for image in set
        .images
        .iter()
        .filter(|i| i.repository.starts_with("fixtures/") && i.repository != NEW)
    {
        for tag in &image.tags {
            v1_refs.push(format!("{}/{}:{tag}", reg.host, image.repository));
        }
    }
    let mut v2_refs = v1_refs.clone();
    let new = set
        .image(NEW)
        .context("the fixture set lacks fixtures/app-b")?;
    v2_refs.push(new.reference(&reg.host));
    let (v1, v2) = (work.join("v1.yaml"), work.join("v2.yaml"));
    write_spec(&v1, &reg, &v1_refs)?;
    write_spec(&v2, &reg, &v2_refs)?;

    // One run: `label` names the file and (cold) the cache, removed after.
    let bundle = |spec: &Path, label: &str, cache: &Path, base: Option<&Path>| {
        let out = work.join(format!("{label}.tar.zst"));
        let mut c = Command::new(&airlock);
        c.arg("bundle")
            .arg(spec)
            .arg("-o")
            .arg(&out)
            .arg("--cache-dir")
            .arg(cache)
            .arg("--quiet");
        if let Some(b) = base {
            c.arg("--base").arg(b);
        }
        let sample = measure(c).with_context(|| format!("airlock bundle ({label})"))?;
        let size = std::fs::metadata(&out)?.len();
        anyhow::Ok((sample, size))
    };
    let cold = |spec: &Path, label: &str, base: Option<&Path>| {
        let cache = work.join(format!("cache-{label}"));
        let _ = std::fs::remove_dir_all(&cache);
        let r = bundle(spec, label, &cache, base);
        let _ = std::fs::remove_dir_all(&cache);
        r
    };
    let mut rows: Vec<(String, Sample, u64)> = Vec::new();
    let series = |rows: &mut Vec<(String, Sample, u64)>,
                  name: String,
                  f: &dyn Fn() -> anyhow::Result<(Sample, u64)>|
     -> anyhow::Result<()> {
        let mut samples = Vec::new();
        let mut size = 0;
        for _ in 0..runs {
            let (s, n) = f()?;
            samples.push(s);
            size = n;
        }
        rows.push((name, median(&mut samples), size));
        Ok(())
    };

    // v1, before the tag moves; the last file stays as the base.
    let warm_v1 = work.join("cache-warm-v1");
    series(&mut rows, "full v1, cold cache".into(), &|| {
        cold(&v1, "v1", None)
    })?;
    bundle(&v1, "v1-warmup", &warm_v1, None)?;
    series(&mut rows, "full v1, warm cache".into(), &|| {
        bundle(&v1, "v1", &warm_v1, None)
    })?;
    let base = work.join("v1.tar.zst");

    // The update: the tag moves.
    let from = next.images[0].reference(&format!("{}/delta", reg.host));
    let to = format!("{}/fixtures/app-a:latest", reg.host);
    let o = Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ])
        .arg(format!("docker://{from}"))
        .arg(format!("docker://{to}"))
        .output()
        .context("run skopeo")?;
    if !o.status.success() {
        bail!(
            "skopeo copy {from} {to}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    series(&mut rows, "full v2, cold cache".into(), &|| {
        cold(&v2, "v2", None)
    })?;
    bundle(&v2, "v2-warmup", &warm_v1, None)?;
    series(&mut rows, "full v2, warm cache".into(), &|| {
        bundle(&v2, "v2", &warm_v1, None)
    })?;
    series(
        &mut rows,
        "v2 `--base v1.tar.zst`, cold cache".into(),
        &|| cold(&v2, "delta", Some(&base)),
    )?;
    series(
        &mut rows,
        "v2 `--base v1.tar.zst`, warm cache".into(),
        &|| bundle(&v2, "delta", &warm_v1, Some(&base)),
    )?;

    println!();
    println!("| bundle | wall time (median of {runs}) | file size | peak RSS |");
    println!("|---|---|---|---|");
    for (label, s, size) in &rows {
        println!(
            "| {label} | {:.2} s | {:.2} MB | {:.1} MiB |",
            s.seconds,
            mb(*size),
            s.max_rss_kib as f64 / 1024.0
        );
    }
    let size_of = |label: &str| rows.iter().find(|r| r.0 == label).map(|r| r.2);
    if let (Some(full), Some(delta)) = (
        size_of("full v2, cold cache"),
        size_of("v2 `--base v1.tar.zst`, cold cache"),
    ) {
        println!();
        println!(
            "delta / full v2: {:.4} of the size ({} of {} bytes)",
            delta as f64 / full as f64,
            delta,
            full
        );
    }
    Ok(())
}
