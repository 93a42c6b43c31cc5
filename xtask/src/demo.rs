//! `cargo xtask demo`: the main job on a machine with no internet access.
//!
//! Builds airlock, starts Debian's docker-registry with the fixture images on a free loopback
//! port, bundles them with `airlock bundle` (one image through a mirror, as an isolated site
//! would), and checks the result with the stock `zstd` and skopeo.

use std::path::{Path, PathBuf};
use std::process::Command;

use airlock_testkit::{fixtures, Auth, Registry, RegistryOptions};
use anyhow::{bail, Context as _};

use crate::install::cargo;

#[derive(clap::Args)]
pub struct Args {
    /// Bundle this spec instead of the fixtures (needs its registries reachable)
    #[arg(long)]
    pub spec: Option<PathBuf>,
    /// Use the dev-profile build (`target/debug/airlock`, the one `cargo xtask ci` has just
    /// built) instead of a release build: the same checks, minutes sooner
    #[arg(long)]
    pub dev: bool,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    crate::install::run()?;
    let root = airlock_testkit::workspace_root();
    let (profile_args, profile_dir): (&[&str], &str) = if args.dev {
        (&[], "debug")
    } else {
        (&["--release"], "release")
    };
    step(&format!("building airlock ({profile_dir})"));
    let st = Command::new(cargo())
        .current_dir(&root)
        .arg("build")
        .args(profile_args)
        .args(["--quiet", "-p", "airlock"])
        .status()
        .context("running cargo build")?;
    if !st.success() {
        bail!("cargo build {} -p airlock failed", profile_args.join(" "));
    }
    let airlock = root.join("target").join(profile_dir).join("airlock");
    let work = root.join("target/demo");
    std::fs::create_dir_all(&work)?;

    if let Some(spec) = &args.spec {
        let out = work.join("bundle.tar.zst");
        step(&format!(
            "airlock bundle {} -o {}",
            spec.display(),
            out.display()
        ));
        let st = Command::new(&airlock)
            .arg("bundle")
            .arg(spec)
            .arg("-o")
            .arg(&out)
            .status()?;
        if !st.success() {
            bail!("airlock bundle failed (see above)");
        }
        return Ok(());
    }

    step("building the fixture images and starting a registry with them");
    let set = fixtures::fixture_set()?;
    let reg = Registry::with_fixtures(false, Auth::None)?;
    let mut images: Vec<String> = Vec::new();
    for i in set
        .images
        .iter()
        .filter(|i| i.repository.starts_with("fixtures/"))
    {
        for t in &i.tags {
            images.push(format!("{}/{}:{t}", reg.host, i.repository));
        }
    }
    images.push("registry.k8s.io/pause:3.9".to_string());
    let spec = work.join("demo.yaml");
    let mut text = String::from(
        "apiVersion: airlock.dev/v1\nkind: Bundle\nmetadata: {name: demo}\nspec:\n  platforms: [linux/amd64, linux/arm64]\n  images:\n",
    );
    for i in &images {
        text.push_str(&format!("    - {i}\n"));
    }
    text.push_str(&format!(
        "  registries:\n    {h}: {{plainHttp: true}}\n    # registry.k8s.io is not reachable here: its mirror is\n    registry.k8s.io: {{mirrors: [{h}/k8s]}}\n",
        h = reg.host
    ));
    std::fs::write(&spec, text)?;

    let out = work.join("demo.tar.zst");
    let key = work.join("demo-signer");
    for f in ["demo-signer.key", "demo-signer.pub"] {
        let _ = std::fs::remove_file(work.join(f));
    }
    step("airlock key generate (a signing key for the demo, without a passphrase)");
    exec(
        Command::new(&airlock)
            .args(["key", "generate", "--no-passphrase", "--out"])
            .arg(&key),
    )?;
    step(&format!(
        "airlock bundle {} -o {} --sign-key {}.key",
        spec.display(),
        out.display(),
        key.display()
    ));
    exec(
        Command::new(&airlock)
            .arg("bundle")
            .arg(&spec)
            .arg("-o")
            .arg(&out)
            .arg("--cache-dir")
            .arg(work.join("cache"))
            .arg("--lock")
            .arg(work.join("demo.lock"))
            .arg("--sign-key")
            .arg(key.with_extension("key")),
    )?;
    step("airlock verify (signature, every digest, the frame index)");
    exec(
        Command::new(&airlock)
            .arg("verify")
            .arg(&out)
            .arg("--key")
            .arg(key.with_extension("pub")),
    )?;

    step("airlock load into an empty registry (the offline side), names without the origin host");
    let target = Registry::start(RegistryOptions::default())?;
    exec(
        Command::new(&airlock)
            .arg("load")
            .arg(&out)
            .arg("--key")
            .arg(key.with_extension("pub"))
            .arg("--to")
            .arg(format!("registry://{}/k8s", target.host))
            .args(["--names", "drop-host", "--plain-http"]),
    )?;
    let pushed = format!("docker://{}/k8s/pause:3.9", target.host);
    let o = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(&pushed)
        .output()?;
    if !o.status.success() {
        bail!(
            "skopeo cannot read `{pushed}` after the load: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    eprintln!("  skopeo read {pushed}: ok");
    drop(target);

    step("checking the bundle with the stock zstd and skopeo");
    let tar = work.join("demo.tar");
    let st = Command::new("zstd")
        .args(["-q", "-f", "-d"])
        .arg(&out)
        .arg("-o")
        .arg(&tar)
        .status()?;
    if !st.success() {
        bail!("zstd -d failed");
    }
    for reference in [images[0].as_str(), "registry.k8s.io/pause:3.9"] {
        let dir = work.join("skopeo-check");
        let _ = std::fs::remove_dir_all(&dir);
        let o = Command::new("skopeo")
            .args(["copy", "--all", "--quiet"])
            .arg(format!("oci-archive:{}:{reference}", tar.display()))
            .arg(format!("dir:{}", dir.display()))
            .output()?;
        if !o.status.success() {
            bail!(
                "skopeo cannot read `{reference}` from the bundle: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        eprintln!("  skopeo read {reference}: ok");
    }
    let _ = std::fs::remove_file(&tar);
    drop(reg);

    println!();
    println!(
        "Bundle written: {} (signed; verified; loaded into a registry)",
        out.display()
    );
    println!("Spec used:      {}", spec.display());
    println!("Signing key:    {}.key / .pub", key.display());
    println!();
    println!("To bundle a real release on a connected machine:");
    println!(
        "  {} bundle bundle-specs/kubernetes-v1.28.yaml -o k8s-v1.28.tar.zst",
        rel(&root, &airlock)
    );
    println!(
        "(or `cargo xtask demo --spec bundle-specs/kubernetes-v1.28.yaml`; add a mirror under"
    );
    println!(" `registries:` in the spec where registry.k8s.io is not reachable)");
    Ok(())
}

/// Runs a command; its output goes to the terminal.
fn exec(cmd: &mut Command) -> anyhow::Result<()> {
    let st = cmd
        .status()
        .with_context(|| format!("running {:?}", cmd.get_program()))?;
    if !st.success() {
        bail!(
            "{:?} failed (see above)",
            cmd.get_args().next().unwrap_or_default()
        );
    }
    Ok(())
}

fn step(s: &str) {
    eprintln!("==> {s}");
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .map(|r| r.display().to_string())
        .unwrap_or_else(|_| p.display().to_string())
}
