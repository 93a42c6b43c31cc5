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
    /// Offline side: check a bundle's signature and every blob in it, in one pass (and the
    /// upstream signatures it carries, with --upstream-key or the keyless flags)
    Verify(VerifyArgs),
    /// Show a bundle's inventory (images, sources, digests, sizes) from its head only
    Inspect(InspectArgs),
    /// Offline side: push a bundle's images into a registry (Harbor or any OCI registry)
    Load(LoadArgs),
    /// Offline side: serve bundles as a read-only registry, straight from the compressed files
    Serve(ServeArgs),
    /// Offline side: check that a registry holds everything of a bundle (HEAD only, no layer read)
    Check(CheckArgs),
    /// Offline side: list what a registry holds (tags, manifest and blob digests; no layer read) into a file to carry out as the base of a delta bundle
    Inventory(InventoryArgs),
    /// Online side: resolve a spec's images to digests and write the lock, fetching nothing else
    Lock(LockArgs),
    /// Connected mirror: copy a spec's images registry to registry; a no-op run asks HEADs only
    Sync(SyncArgs),
    /// Online side: newer patch and minor releases of a spec's or lock's images, and mirrors
    /// that lag behind their origin (tag lists and HEAD only; exit 1 when anything is behind)
    Outdated(OutdatedArgs),
    /// List image sets, such as the images kubeadm of a Kubernetes release pulls
    Images {
        #[command(subcommand)]
        command: ImagesCommand,
    },
    /// Offline side: point the image fields of Kubernetes manifests at where `airlock load` put the images
    Rewrite(RewriteArgs),
    /// Offline side: configuration for kubeadm, containerd and docker to use the internal registry
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print the completion script for a shell (bash, zsh, fish, elvish, powershell)
    Completions {
        /// The shell to complete in
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page in roff, or write every page (airlock.1, airlock-SUBCOMMAND.1) to a directory
    #[command(hide = true)]
    GenerateMan {
        /// Write airlock.1 and one page per subcommand into this directory instead of stdout
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

/// How to reach the registries a spec names (`bundle`, `lock`).
#[derive(Debug, Args)]
pub struct SourceRegistryArgs {
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
}

#[derive(Debug, Args)]
pub struct BundleArgs {
    /// The spec: a YAML `kind: Bundle` document, or a text file with one image reference a line
    pub spec: PathBuf,
    /// Ask this kubeadm executable for the images of a `spec.kubernetes` release airlock's release data does not know (`PATH config images list --kubernetes-version V`)
    #[arg(long, value_name = "PATH")]
    pub kubeadm: Option<PathBuf>,
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
    #[command(flatten)]
    pub registries: SourceRegistryArgs,
    /// zstd level for everything but compressed layers
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=19))]
    pub level: i32,
    /// Sign the bundle's manifest with this private key (PEM: `airlock key generate`, openssl, cosign)
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
    /// Read the passphrase of --sign-key from standard input [default: AIRLOCK_KEY_PASSPHRASE]
    #[arg(long, requires = "sign_key")]
    pub passphrase_stdin: bool,
    /// Refuse every image without a `verify:` of its own unless its upstream cosign signature verifies with this public key (cosign or PEM)
    #[arg(long, value_name = "FILE")]
    pub verify_upstream_key: Option<PathBuf>,
    /// The sigstore trusted_root.json for keyless `verify:` entries that name no `trustedRoot`
    #[arg(long, value_name = "FILE")]
    pub trusted_root: Option<PathBuf>,
    /// Make a delta: leave out every blob this earlier bundle, its `.manifest.json` or a site inventory already has (repeatable)
    #[arg(long = "base", value_name = "BASE")]
    pub bases: Vec<PathBuf>,
    /// Write parts NAME.tar.zst.000, .001, … of at most SIZE each (K/M/G/T powers of ten, Ki/Mi/Gi/Ti powers of two, e.g. 4G, 4.7G, 50M) and a signed part list NAME.tar.zst.parts.json
    #[arg(long, value_name = "SIZE")]
    pub split: Option<String>,
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
    /// Also check the carried upstream (cosign) signatures: each image must be signed with
    /// this public key (cosign or PEM); repeatable, any one key will do
    #[arg(long = "upstream-key", value_name = "FILE")]
    pub upstream_keys: Vec<PathBuf>,
    /// Keyless upstream signatures: the certificate identity (e-mail or URI) they must name
    #[arg(long, value_name = "IDENTITY", conflicts_with = "upstream_keys",
          requires_all = ["upstream_issuer", "trusted_root"])]
    pub upstream_identity: Option<String>,
    /// Keyless upstream signatures: the OIDC issuer their certificates must name
    #[arg(long, value_name = "URL", requires = "upstream_identity")]
    pub upstream_issuer: Option<String>,
    /// Keyless upstream signatures: the sigstore trusted_root.json (Fulcio CAs, Rekor keys)
    #[arg(long, value_name = "FILE", requires = "upstream_identity")]
    pub trusted_root: Option<PathBuf>,
    /// A delta's base bundle (repeatable): verified too, and checked to be the base the delta
    /// names and to carry every blob the delta takes from it
    #[arg(long = "base", value_name = "BASE.tar.zst")]
    pub bases: Vec<PathBuf>,
    /// Print the report as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The bundle file (NAME.tar.zst)
    pub bundle: PathBuf,
    /// Where to load: registry://HOST[:PORT][/PREFIX], or
    /// containerd://[/path/to/containerd.sock][?namespace=k8s.io]
    #[arg(
        long,
        required_unless_present = "files_to",
        value_name = "registry://HOST[:PORT][/PREFIX] | containerd://[SOCKET][?namespace=NS]"
    )]
    pub to: Option<String>,
    /// Write the bundle's files under this directory (DIR/NAME), verified, each renamed into
    /// place when complete
    #[arg(long, value_name = "DIR")]
    pub files_to: Option<PathBuf>,
    /// A delta's base bundle (repeatable): what the target lacks of the blobs the delta takes
    /// from its bases is read from it, its signature checked like the delta's
    #[arg(long = "base", value_name = "BASE.tar.zst")]
    pub bases: Vec<PathBuf>,
    /// With --files-to: replace existing files whose contents differ
    #[arg(long, requires = "files_to")]
    pub force: bool,
    /// containerd: the platform to unpack, OS/ARCH[/VARIANT] (default: this machine's)
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// containerd: the snapshotter to unpack into
    #[arg(long, default_value = "overlayfs", value_name = "NAME")]
    pub snapshotter: String,
    /// containerd: import the content and image records only, unpack nothing
    #[arg(long)]
    pub no_unpack: bool,
    /// The signer's public key (PEM), e.g. from `airlock key generate`
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Load without checking who made the bundle (blobs are still checked against its manifest)
    #[arg(long, conflicts_with = "key")]
    pub insecure_skip_signature: bool,
    #[command(flatten)]
    pub naming: NameArgs,
    #[command(flatten)]
    pub access: TargetAccessArgs,
    /// Images and uploads at once
    #[arg(short, long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// Retries of a failed request (connection errors, 5xx, 429)
    #[arg(long, default_value_t = 4)]
    pub retries: u32,
    /// Create missing Harbor projects (first path element) through Harbor's API, private
    #[arg(long)]
    pub harbor_create_projects: bool,
    /// Print the report as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The spec: a YAML `kind: Bundle` document, or a text file with one image reference a line
    pub spec: PathBuf,
    /// The registry to keep current: registry://HOST[:PORT][/PREFIX]
    #[arg(long, value_name = "registry://HOST[:PORT][/PREFIX]")]
    pub to: String,
    #[command(flatten)]
    pub naming: NameArgs,
    #[command(flatten)]
    pub access: TargetAccessArgs,
    /// Write the upstream digests to this lock file (with --locked: read it instead)
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,
    /// Take the lock's digests as the truth (--lock, default SPEC.lock); sources are asked only for missing content
    #[arg(long)]
    pub locked: bool,
    /// Say what would change; send nothing to the target but HEAD requests
    #[arg(long)]
    pub dry_run: bool,
    /// Uploads at once (images are compared with HEAD four times as many at once)
    #[arg(short, long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// Retries of a failed request (connection errors, 5xx, 429)
    #[arg(long, default_value_t = 4)]
    pub retries: u32,
    /// Print the report as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

/// Where names land under the target's prefix: the same flags for `load`, `check` and
/// `rewrite`, read by the same code.
#[derive(Debug, Clone, Args)]
pub struct NameArgs {
    /// How names land under the prefix: keep-host, drop-host, or flat (last path element)
    #[arg(long, default_value = "keep-host", value_name = "RULE")]
    pub names: String,
    /// Prefix rewrite FROM=TO applied before --names (repeatable; the longest FROM wins)
    #[arg(long, value_name = "FROM=TO")]
    pub rewrite: Vec<String>,
    /// A file of FROM=TO rewrites, one a line, `#` comments
    #[arg(long, value_name = "FILE")]
    pub rewrite_file: Option<PathBuf>,
}

/// How to reach a target registry (`load`, `check`, `inventory`).
#[derive(Debug, Clone, Args)]
pub struct TargetAccessArgs {
    /// Trust this CA file (PEM) for the target
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Talk plain HTTP to the target
    #[arg(long)]
    pub plain_http: bool,
    /// Username for the target (docker/podman auth files are used otherwise)
    #[arg(long, requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the password for --username from standard input
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// Do not read docker/podman auth files and credential helpers
    #[arg(long)]
    pub no_docker_config: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The bundle file (NAME.tar.zst)
    pub bundle: PathBuf,
    /// The registry the bundle was loaded into: registry://HOST[:PORT][/PREFIX]
    #[arg(long, value_name = "registry://HOST[:PORT][/PREFIX]")]
    pub against: String,
    /// The signer's public key (PEM), e.g. from `airlock key generate`
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Check without checking who made the bundle (its small blobs are still checked against its manifest)
    #[arg(long, conflicts_with = "key")]
    pub insecure_skip_signature: bool,
    #[command(flatten)]
    pub naming: NameArgs,
    #[command(flatten)]
    pub access: TargetAccessArgs,
    /// Requests at once
    #[arg(short, long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// Retries of a failed request (connection errors, 5xx, 429)
    #[arg(long, default_value_t = 2)]
    pub retries: u32,
    /// Print the report as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// The registry and the prefix to list: registry://HOST[:PORT][/PREFIX]
    #[arg(value_name = "registry://HOST[:PORT][/PREFIX]")]
    pub target: String,
    /// The inventory file to write (conventionally site.inventory.json)
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// List these repositories (relative to the prefix) instead of the catalog's
    #[arg(long, value_name = "REPO", num_args = 1..)]
    pub names: Vec<String>,
    /// Repositories asked for per catalog page [default: the registry's page size]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub page_size: Option<u32>,
    #[command(flatten)]
    pub access: TargetAccessArgs,
    /// Sign the file (FILE.sig) with this private key (PEM: `airlock key generate`, openssl, cosign)
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
    /// Read the passphrase of --sign-key from standard input [default: AIRLOCK_KEY_PASSPHRASE]
    #[arg(long, requires = "sign_key")]
    pub passphrase_stdin: bool,
    /// Write what was read when some repositories or tags fail (exit code 1)
    #[arg(long)]
    pub keep_going: bool,
    /// Requests at once
    #[arg(short, long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// Retries of a failed request (connection errors, 5xx, 429)
    #[arg(long, default_value_t = 2)]
    pub retries: u32,
    /// Print the report as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The bundle files (NAME.tar.zst); for a tag in several bundles, the last one wins
    #[arg(required = true)]
    pub bundles: Vec<PathBuf>,
    /// The signer's public key (PEM), e.g. from `airlock key generate`
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Serve without checking who made the bundles (blobs are still checked against their manifests)
    #[arg(long, conflicts_with = "key")]
    pub insecure_skip_signature: bool,
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:5000", value_name = "IP:PORT")]
    pub listen: std::net::SocketAddr,
    /// Allow a --listen address other than loopback
    #[arg(long)]
    pub allow_remote: bool,
    /// Serve HTTPS with this certificate chain (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Repository names: keep-host (HOST:PORT/registry.k8s.io/pause) or drop-host (HOST:PORT/pause)
    #[arg(long, default_value = "keep-host", value_name = "RULE")]
    pub names: String,
    /// Frames read from the bundles at once (a slot is held while a frame is read, never while a client drains it)
    #[arg(short, long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// Close a connection whose client has accepted no bytes for this many seconds
    #[arg(long, default_value_t = 60, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub write_timeout: u64,
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

#[derive(Debug, Args)]
pub struct LockArgs {
    /// The spec: a YAML `kind: Bundle` document, or a text file with one image reference a line
    pub spec: PathBuf,
    /// Ask this kubeadm executable for the images of a `spec.kubernetes` release airlock's release data does not know (`PATH config images list --kubernetes-version V`)
    #[arg(long, value_name = "PATH")]
    pub kubeadm: Option<PathBuf>,
    /// The lock file to write [default: SPEC.lock, where `bundle --locked` looks]
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Ask the spec's mirrors first, as `bundle` does [default: the origin first, mirrors only
    /// when it cannot be reached]
    #[arg(long)]
    pub via_mirrors: bool,
    /// Registry requests at once
    #[arg(short, long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    #[command(flatten)]
    pub registries: SourceRegistryArgs,
    /// Print the lock on stdout too
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct OutdatedArgs {
    /// A spec (YAML or one image reference a line) or a lock file (`airlock lock`), told apart by content
    pub input: PathBuf,
    /// Images checked at once
    #[arg(short, long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    #[command(flatten)]
    pub registries: SourceRegistryArgs,
    /// Print the report as one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// The images kubeadm of a release pulls, one a line (as `kubeadm config images list`)
    Kubernetes(ImagesKubernetesArgs),
    /// Every image Kubernetes manifests name (containers, init and ephemeral containers, `image:` fields), one a line
    From(ImagesFromArgs),
}

#[derive(Debug, Args)]
pub struct ImagesFromArgs {
    /// Manifests: files, directories (their *.yaml, *.yml and *.json at any depth), or - for stdin
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Print {"images": [{"reference", "locations"}], "problems"} as JSON
    #[arg(long, conflicts_with = "spec")]
    pub json: bool,
    /// Print a `kind: Bundle` spec with the images, for `airlock bundle`
    #[arg(long)]
    pub spec: bool,
    /// The spec's metadata.name (with --spec)
    #[arg(
        long,
        requires = "spec",
        default_value = "workloads",
        value_name = "NAME"
    )]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct RewriteArgs {
    /// Manifests: one file or - (the result on stdout), or with --in-place files and directories
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// The registry and prefix the images were loaded to, as given to `airlock load --to`
    #[arg(long, value_name = "registry://HOST[:PORT][/PREFIX]")]
    pub to: String,
    /// The same --names, --rewrite and --rewrite-file as given to `airlock load`
    #[command(flatten)]
    pub naming: NameArgs,
    /// Add the digest of each tagged image this bundle (.tar.zst or its .manifest.json) or lock knows
    #[arg(long, value_name = "BUNDLE|LOCK")]
    pub pin: Option<PathBuf>,
    /// Write each changed file in place (a temporary file beside it, then renamed)
    #[arg(long, conflicts_with = "check")]
    pub in_place: bool,
    /// Write nothing; exit 1 when something would change
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct ImagesKubernetesArgs {
    /// The Kubernetes release, e.g. v1.35.2 (every patch release of v1.27 to v1.37 airlock knows; a bare v1.35 means its newest known patch)
    pub version: String,
    /// Only these of pause, etcd and coredns (comma-separated; the four control-plane images are always listed)
    #[arg(long, value_delimiter = ',', value_name = "ADDON,...")]
    pub addons: Option<Vec<String>>,
    /// Ask this kubeadm executable (`PATH config images list --kubernetes-version VERSION`) instead of airlock's release data, e.g. for a release airlock does not know
    #[arg(long, value_name = "PATH")]
    pub kubeadm: Option<std::path::PathBuf>,
    /// Print {"kubernetesVersion", "images"} as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print a kubeadm ClusterConfiguration whose image names are where `load --names drop-host` puts them
    Kubeadm(ConfigKubeadmArgs),
    /// Write containerd hosts.toml files so nodes pull the original names from the internal registry
    Containerd(ConfigContainerdArgs),
    /// Print the `registry-mirrors` fragment of docker's daemon.json (Docker Hub images only)
    Docker(ConfigDockerArgs),
}

#[derive(Debug, Args)]
pub struct ConfigKubeadmArgs {
    /// The internal registry and prefix the images were loaded to, e.g. harbor.lan/k8s
    #[arg(long, value_name = "HOST[:PORT][/PREFIX]")]
    pub registry: String,
    /// The Kubernetes release, e.g. v1.28.0
    #[arg(long, value_name = "VERSION")]
    pub kubernetes: String,
}

#[derive(Debug, Args)]
pub struct ConfigContainerdArgs {
    /// The internal registry and prefix the images were loaded to, e.g. harbor.lan/mirror
    #[arg(long, value_name = "HOST[:PORT][/PREFIX]")]
    pub registry: String,
    /// How `airlock load` named the images (keep-host, drop-host, flat)
    #[arg(long, default_value = "keep-host", value_name = "RULE")]
    pub names: String,
    /// The CA file that signed the internal registry's certificate, as a path on the nodes
    #[arg(long, value_name = "FILE", conflicts_with = "plain_http")]
    pub ca_file: Option<PathBuf>,
    /// The internal registry talks plain HTTP
    #[arg(long)]
    pub plain_http: bool,
    /// Upstream registries to redirect (repeatable) [default: registry.k8s.io, k8s.gcr.io, docker.io, quay.io, ghcr.io]
    #[arg(long, value_name = "HOST")]
    pub upstream: Vec<String>,
    /// The directory to write UPSTREAM/hosts.toml into (containerd's config_path, e.g. /etc/containerd/certs.d)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ConfigDockerArgs {
    /// The internal registry serving Docker Hub's repositories at its root, e.g. harbor.lan
    #[arg(long, value_name = "HOST[:PORT]")]
    pub registry: String,
    /// The internal registry talks plain HTTP (adds it to `insecure-registries`)
    #[arg(long)]
    pub plain_http: bool,
}
