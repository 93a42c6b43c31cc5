//! The ORAS Python SDK (`oras` from PyPI) as an independent OCI client: what a registry holds
//! after a load, fetched by code that is not airlock's. `cargo xtask install` makes its
//! virtual environment ([`venv_dir`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _};

/// Where the virtual environment with `oras` lives: `$AIRLOCK_ORAS_VENV`, or
/// `<workspace>/target/tools/oras-venv`.
pub fn venv_dir() -> PathBuf {
    match std::env::var_os("AIRLOCK_ORAS_VENV") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => crate::workspace_root()
            .join("target")
            .join("tools")
            .join("oras-venv"),
    }
}

/// The ORAS Python SDK, through the Python of its virtual environment.
#[derive(Debug, Clone)]
pub struct Oras {
    python: PathBuf,
}

/// The client script: `pull HOST TARGET OUTDIR` pulls a file artifact into a directory
/// (`OrasClient.pull`); `blob HOST REPO REF OUT` fetches a manifest by tag or digest and
/// writes it to `OUT`, `blob HOST REPO DIGEST OUT` a blob (for charts, whose layers have no
/// title). Plain HTTP (`insecure`), as the test registries speak it.
const SCRIPT: &str = r#"
import sys, json
import oras.client, oras.provider
cmd, host = sys.argv[1], sys.argv[2]
client = oras.client.OrasClient(hostname=host, insecure=True)
if cmd == "pull":
    files = client.pull(target=sys.argv[3], outdir=sys.argv[4])
    print(json.dumps(files))
elif cmd == "manifest":
    repo, ref, out = sys.argv[3], sys.argv[4], sys.argv[5]
    m = client.get_manifest(f"{host}/{repo}:{ref}" if not ref.startswith("sha256:") else f"{host}/{repo}@{ref}")
    open(out, "w").write(json.dumps(m))
elif cmd == "blob":
    repo, digest, out = sys.argv[3], sys.argv[4], sys.argv[5]
    r = client.get_blob(f"{host}/{repo}", digest)
    r.raise_for_status()
    open(out, "wb").write(r.content)
else:
    sys.exit("unknown command " + cmd)
"#;

impl Oras {
    /// The SDK, or an error naming the command that installs it. `Ok(None)` when there is
    /// no `python3` on this machine at all (the caller skips, saying so).
    pub fn find() -> anyhow::Result<Option<Oras>> {
        let python = venv_dir().join("bin").join("python");
        if !python.exists() {
            if Command::new("python3").arg("--version").output().is_err() {
                return Ok(None);
            }
            bail!(
                "the ORAS Python SDK is not installed in `{}`\nhint: run `cargo xtask install`",
                venv_dir().display()
            );
        }
        Ok(Some(Oras { python }))
    }

    fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(&self.python)
            .arg("-c")
            .arg(SCRIPT)
            .args(args)
            .output()
            .with_context(|| format!("running `{}`", self.python.display()))?;
        if !out.status.success() {
            bail!(
                "oras {} failed ({}):\n{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `oras pull HOST/REPO:TAG` into `outdir` (plain HTTP): the paths it wrote.
    pub fn pull(&self, host: &str, target: &str, outdir: &Path) -> anyhow::Result<Vec<PathBuf>> {
        let text = self.run(&["pull", host, target, &outdir.to_string_lossy()])?;
        let files: Vec<String> = serde_json::from_str(text.trim())
            .with_context(|| format!("oras pull printed {text}"))?;
        Ok(files.into_iter().map(PathBuf::from).collect())
    }

    /// The manifest `reference` (a tag or a digest) of `repo`, as JSON.
    pub fn manifest(
        &self,
        host: &str,
        repo: &str,
        reference: &str,
    ) -> anyhow::Result<serde_json::Value> {
        let dir = tempfile::tempdir()?;
        let out = dir.path().join("manifest.json");
        self.run(&["manifest", host, repo, reference, &out.to_string_lossy()])?;
        Ok(serde_json::from_slice(&std::fs::read(&out)?)?)
    }

    /// The blob `digest` of `repo`, its bytes.
    pub fn blob(&self, host: &str, repo: &str, digest: &str) -> anyhow::Result<Vec<u8>> {
        let dir = tempfile::tempdir()?;
        let out = dir.path().join("blob");
        self.run(&["blob", host, repo, digest, &out.to_string_lossy()])?;
        Ok(std::fs::read(&out)?)
    }
}
