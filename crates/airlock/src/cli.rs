//! Command-line flags (clap). Validation into library options happens in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Carry container images across an air gap.
#[derive(Debug, Parser)]
#[command(name = "airlock", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// More log output (-v: debug for airlock; -vv: everything); RUST_LOG overrides
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// No progress and no messages but errors
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Online side: resolve a spec's images and write them into one bundle file
    Bundle(BundleArgs),
    /// Make signing keys for bundle manifests
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Offline side: check a bundle's signature and every blob in it, in one pass
    Verify(VerifyArgs),
    /// Show a bundle's inventory (images, sources, digests, sizes) from its head only
    Inspect(InspectArgs),
}

#[derive(Debug, Args)]
pub struct BundleArgs {
    /// The spec: a YAML `kind: Bundle` document, or a text file with one image reference a line
    pub spec: PathBuf,
    /// The bundle file to write (conventionally NAME.tar.zst)
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Content-addressed blob cache, reused by later runs [default: the user's cache directory]
    #[arg(long, value_name = "DIR", env = "AIRLOCK_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Registry requests and downloads at once
    #[arg(short, long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// Write the bundle with the images that worked when some fail (exit code 1)
    #[arg(long)]
    pub keep_going: bool,
    /// Write the resolved digests to this lock file (with --locked: read it instead)
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,
    /// Refuse any image whose digest differs from the lock file (--lock, default SPEC.lock)
    #[arg(long)]
    pub locked: bool,
    /// Username for every registry that has no credentials of its own
    #[arg(long, requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the password for --username from standard input
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// Talk plain HTTP to this registry host (repeatable; a spec can say `plainHttp: true`)
    #[arg(long, value_name = "HOST[:PORT]")]
    pub plain_http: Vec<String>,
    /// Trust this CA file for a registry host (repeatable; a spec can say `caFile:`)
    #[arg(long, value_name = "HOST[:PORT]=FILE")]
    pub ca_file: Vec<String>,
    /// Do not read docker/podman auth files and credential helpers
    #[arg(long)]
    pub no_docker_config: bool,
    /// Retries of a failed request (connection errors, 5xx, 429)
    #[arg(long, default_value_t = 4)]
    pub retries: u32,
    /// zstd level for everything but compressed layers
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=19))]
    pub level: i32,
    /// Sign the bundle's manifest with this private key (PEM: `airlock key generate`, openssl, cosign)
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
    /// Read the passphrase of --sign-key from standard input [default: AIRLOCK_KEY_PASSPHRASE]
    #[arg(long, requires = "sign_key")]
    pub passphrase_stdin: bool,
    /// Print a JSON summary on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The bundle file (NAME.tar.zst)
    pub bundle: PathBuf,
    /// The signer's public key (PEM), e.g. from `airlock key generate`
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Check every digest but not who made the bundle (no key): authenticity is NOT checked
    #[arg(long, conflicts_with = "key")]
    pub insecure_skip_signature: bool,
    /// Print the report as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The bundle file (NAME.tar.zst), or the manifest beside it (NAME.tar.zst.manifest.json)
    pub bundle: PathBuf,
    /// Print the inventory as JSON on stdout (format: docs/inspect.md)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Make an ECDSA P-256 key pair: NAME.key (PKCS#8 PEM, encrypted) and NAME.pub
    Generate(KeyGenerateArgs),
}

#[derive(Debug, Args)]
pub struct KeyGenerateArgs {
    /// Write NAME.key (mode 0600) and NAME.pub; existing files are never overwritten
    #[arg(long, value_name = "NAME")]
    pub out: PathBuf,
    /// Read the passphrase that encrypts NAME.key from standard input [default: AIRLOCK_KEY_PASSPHRASE]
    #[arg(long, conflicts_with = "no_passphrase")]
    pub passphrase_stdin: bool,
    /// Write NAME.key unencrypted (protect it some other way)
    #[arg(long)]
    pub no_passphrase: bool,
    /// Print {"key", "pub", "fingerprint"} as JSON on stdout
    #[arg(long)]
    pub json: bool,
}
