//! The second stage of flag handling: raw flags (`cli`) checked and turned into what the
//! library functions take, before any work starts. Everything that can be wrong with a flag,
//! an environment variable or a path given on the command line fails here, naming the flag.

use std::io::Read;
use std::path::{Path, PathBuf};

use airlock_bundle::{
    beside_manifest_path, beside_signature_path, ArchiveOptions, BundleOptions, ClientOptions,
    Credentials, Spec,
};
use airlock_layout::check_output;
use airlock_load::containerd::DEFAULT_SNAPSHOTTER;
use airlock_load::{
    ContainerdOptions, ContainerdTarget, FilesOptions, LoadJob, LoadOptions, LoadTarget, NameRule,
    Purpose, Rewrite, Target, TargetSetting, Trust,
};
use airlock_serve::ServeOptions;
use anyhow::{bail, Context};

use crate::cli::{
    BundleArgs, CheckArgs, InventoryArgs, LoadArgs, NameArgs, RewriteArgs, ServeArgs,
    SourceRegistryArgs, SyncArgs,
};

/// The environment variable that holds a key passphrase when `--passphrase-stdin` is not given.
pub const PASSPHRASE_ENV: &str = "AIRLOCK_KEY_PASSPHRASE";

/// The passphrase from standard input when `stdin`, else from `AIRLOCK_KEY_PASSPHRASE` when
/// set and not empty. Never logged.
pub fn read_passphrase(stdin: bool) -> anyhow::Result<Option<String>> {
    if stdin {
        return Ok(Some(read_secret_stdin("--passphrase-stdin")?));
    }
    match std::env::var(PASSPHRASE_ENV) {
        Ok(p) if !p.is_empty() => Ok(Some(p)),
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => bail!("{PASSPHRASE_ENV} is not valid UTF-8"),
    }
}

/// The private key at `path` for signing (`--sign-key`), with the passphrase from standard
/// input (`stdin`) or `AIRLOCK_KEY_PASSPHRASE`.
pub fn signing_key(path: &Path, stdin: bool) -> anyhow::Result<airlock_layout::SigningKey> {
    let file = airlock_layout::SigningKeyFile::read(path)?;
    let passphrase = read_passphrase(stdin)?;
    Ok(file.decrypt(passphrase.as_deref().map(str::as_bytes))?)
}

/// `SOURCE_DATE_EPOCH`, when set: the time a bundle says it was created.
pub fn source_date_epoch() -> anyhow::Result<Option<u64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => Ok(Some(v.trim().parse::<u64>().with_context(|| {
            format!("SOURCE_DATE_EPOCH=`{v}` is not a number of seconds")
        })?)),
        Err(_) => Ok(None),
    }
}

/// `airlock/<version>`, sent as the HTTP user agent.
pub fn user_agent() -> String {
    format!("airlock/{}", env!("CARGO_PKG_VERSION"))
}

/// Reads a password (or passphrase) from standard input: the first line, without its end.
pub fn read_secret_stdin(flag: &str) -> anyhow::Result<String> {
    let mut secret = String::new();
    std::io::stdin()
        .read_to_string(&mut secret)
        .with_context(|| format!("{flag}: cannot read standard input"))?;
    let secret = secret.trim_end_matches(['\r', '\n']).to_string();
    if secret.is_empty() {
        bail!("{flag}: standard input was empty");
    }
    Ok(secret)
}

/// Registry client options from the source-registry flags of `bundle` and `lock`.
pub fn source_client_options(r: &SourceRegistryArgs) -> anyhow::Result<ClientOptions> {
    let mut client = ClientOptions {
        docker_config: !r.no_docker_config,
        retries: r.retries,
        user_agent: user_agent(),
        ..ClientOptions::default()
    };
    for host in &r.plain_http {
        client.hosts.entry(host.clone()).or_default().plain_http = true;
    }
    for item in &r.ca_file {
        let Some((host, file)) = item.split_once('=') else {
            bail!("--ca-file `{item}`: expected HOST[:PORT]=FILE");
        };
        client.hosts.entry(host.to_string()).or_default().ca_file = Some(PathBuf::from(file));
    }
    if let Some(username) = &r.username {
        client.default_credentials = Some(Credentials {
            username: username.clone(),
            password: read_secret_stdin("--password-stdin")?,
        });
    }
    Ok(client)
}

/// The lock files of a `bundle` run: the one it writes (`--lock`) or the one it checks
/// against (`--locked`, default `SPEC.lock`).
pub struct BundleLocks {
    /// `--lock FILE` without `--locked`.
    pub write: Option<PathBuf>,
    /// `--locked`.
    pub locked: Option<PathBuf>,
}

/// The lock flags of `bundle`, and every file the run writes checked before any network work;
/// also whether an existing bundle is replaced.
pub fn bundle_outputs(args: &BundleArgs) -> anyhow::Result<(BundleLocks, bool)> {
    let locks = match (args.lock.clone(), args.locked) {
        (lock, true) => BundleLocks {
            write: None,
            locked: Some(lock.unwrap_or_else(|| airlock_bundle::default_lock_path(&args.spec))),
        },
        (lock, false) => BundleLocks {
            write: lock,
            locked: None,
        },
    };
    let mut inputs: Vec<(&str, &Path)> = vec![("spec", &args.spec)];
    if let Some(l) = &locks.locked {
        inputs.push(("lock file", l));
    }
    if let Some(k) = &args.sign_key {
        inputs.push(("signing key", k));
    }
    for b in &args.bases {
        inputs.push(("base", b));
    }
    let out = &args.output;
    let replaces = check_output("-o", out, &inputs)?;
    let manifest = beside_manifest_path(out);
    check_output("-o", &manifest, &inputs)?;
    check_output("-o", &beside_signature_path(out), &inputs)?;
    if args.split.is_some() {
        // Every part name a run may replace: the first, and those an earlier run left.
        let name = out.file_name().unwrap_or_default().to_string_lossy();
        for i in 0.. {
            let part = out.with_file_name(airlock_layout::volume::part_name(&name, i));
            if i > 0 && std::fs::symlink_metadata(&part).is_err() {
                break;
            }
            check_output("-o", &part, &inputs)?;
        }
        let list = airlock_layout::volume::part_list_path(out);
        check_output("-o", &list, &inputs)?;
        check_output(
            "-o",
            &airlock_layout::volume::part_list_signature_path(&list),
            &inputs,
        )?;
    }
    if let Some(lock) = &locks.write {
        check_output("--lock", lock, &inputs)?;
        for (what, p) in [("bundle", out), ("manifest beside the bundle", &manifest)] {
            if airlock_layout::same_target(lock, p) {
                bail!(
                    "--lock `{}` is the {what} `{}`\n  hint: choose another lock path",
                    lock.display(),
                    p.display()
                );
            }
        }
    }
    Ok((locks, replaces))
}

/// The rest of `bundle`'s flags into its options, the signing key loaded before any network
/// work (a wrong passphrase fails at once).
pub fn bundle_options(
    args: &BundleArgs,
    spec: Spec,
    locks: BundleLocks,
) -> anyhow::Result<BundleOptions> {
    if args.passphrase_stdin && args.registries.password_stdin {
        bail!(
            "--passphrase-stdin and --password-stdin cannot both read standard input\n  hint: \
             give the key passphrase in AIRLOCK_KEY_PASSPHRASE instead"
        );
    }
    let split = args
        .split
        .as_deref()
        .map(airlock_layout::volume::parse_size)
        .transpose()
        .context("--split")?;
    let sign = match &args.sign_key {
        Some(path) => Some(signing_key(path, args.passphrase_stdin)?),
        None => None,
    };
    let cache_dir = match &args.cache_dir {
        Some(d) => d.clone(),
        None => airlock_bundle::default_cache_dir()
            .context("no cache directory: pass --cache-dir DIR")?,
    };
    let bases = airlock_bundle::Base::open_all(
        &args.bases,
        sign.as_ref().map(|k| k.verifying_key()).as_ref(),
    )?;
    Ok(BundleOptions {
        spec,
        output: args.output.clone(),
        cache_dir,
        jobs: usize::from(args.jobs),
        keep_going: args.keep_going,
        write_lock: locks.write,
        locked: locks.locked,
        client: source_client_options(&args.registries)?,
        created: source_date_epoch()?,
        archive: ArchiveOptions {
            level: args.level,
            ..ArchiveOptions::default()
        },
        sign,
        verify_upstream_key: args.verify_upstream_key.clone(),
        trusted_root: args.trusted_root.clone(),
        bases,
        split,
    })
}

// ---- load ----

/// `load`'s flags into the load of one target: everything that can be wrong with them
/// fails here.
pub fn load_job(args: &LoadArgs) -> anyhow::Result<LoadJob> {
    let Some(to) = &args.to else {
        bail!("give --to registry://HOST[:PORT][/PREFIX] or containerd://[SOCKET]")
    };
    let target: LoadTarget = to.parse()?;
    let given = [
        (args.platform.is_some(), TargetSetting::Platform),
        (
            args.snapshotter != DEFAULT_SNAPSHOTTER,
            TargetSetting::Snapshotter,
        ),
        (args.no_unpack, TargetSetting::NoUnpack),
        (args.access.ca_file.is_some(), TargetSetting::CaFile),
        (args.access.plain_http, TargetSetting::PlainHttp),
        (args.access.username.is_some(), TargetSetting::Username),
        (
            args.harbor_create_projects,
            TargetSetting::HarborCreateProjects,
        ),
    ];
    let given: Vec<TargetSetting> = given.iter().filter(|g| g.0).map(|g| g.1).collect();
    target.check_settings(&given)?;
    Ok(match target {
        LoadTarget::Registry(target) => LoadJob::Registry(registry_options(args, target)?),
        LoadTarget::Containerd(target) => LoadJob::Containerd(containerd_options(args, target)?),
    })
}

/// `airlock load --files-to DIR [--force]`: where the files go, with the load's trust.
pub fn files_options(args: &LoadArgs) -> anyhow::Result<Option<FilesOptions>> {
    let Some(dir) = &args.files_to else {
        return Ok(None);
    };
    let trust = Trust::from_flags(
        args.key.as_deref(),
        args.insecure_skip_signature,
        Purpose::Load,
    )?;
    Ok(Some(FilesOptions {
        bundle: args.bundle.clone(),
        trust,
        dir: dir.clone(),
        force: args.force,
    }))
}

/// `airlock check`: the options of a load into the same registry, with the same trust and
/// name flags (a check reads the bundle as a load does).
pub fn check_options(args: &CheckArgs) -> anyhow::Result<LoadOptions> {
    let load = LoadArgs {
        bundle: args.bundle.clone(),
        to: Some(args.against.clone()),
        files_to: None,
        bases: Vec::new(),
        force: false,
        platform: None,
        snapshotter: DEFAULT_SNAPSHOTTER.into(),
        no_unpack: false,
        key: args.key.clone(),
        insecure_skip_signature: args.insecure_skip_signature,
        naming: args.naming.clone(),
        access: args.access.clone(),
        jobs: args.jobs,
        retries: args.retries,
        harbor_create_projects: false,
        json: args.json,
    };
    match load_job(&load)? {
        LoadJob::Registry(mut opts) => {
            opts.trust = Trust::from_flags(
                args.key.as_deref(),
                args.insecure_skip_signature,
                Purpose::Verify,
            )?;
            Ok(opts)
        }
        LoadJob::Containerd(_) => bail!(
            "`airlock check` checks a registry: give --against registry://HOST[:PORT][/PREFIX]"
        ),
    }
}

/// Flags into library options: everything that can be wrong with them fails here.
/// The key (or none, on purpose) and the name mapping: the same for every target.
fn trust_and_names(args: &LoadArgs) -> anyhow::Result<(Trust, NameRule, Vec<Rewrite>)> {
    let (rule, rewrites) = names(&args.naming)?;
    let trust = Trust::from_flags(
        args.key.as_deref(),
        args.insecure_skip_signature,
        Purpose::Load,
    )?;
    Ok((trust, rule, rewrites))
}

/// `--names`, `--rewrite` and `--rewrite-file`: the rule and the rewrites, the file's first.
pub fn names(args: &NameArgs) -> anyhow::Result<(NameRule, Vec<Rewrite>)> {
    let rule: NameRule = args.names.parse()?;
    let mut rewrites = Vec::new();
    if let Some(path) = &args.rewrite_file {
        rewrites = airlock_load::names::read_rewrite_file(path)?;
    }
    for r in &args.rewrite {
        rewrites.push(r.parse::<Rewrite>()?);
    }
    Ok((rule, rewrites))
}

/// `rewrite`'s flags: the target, names and rewrites exactly as `load` reads them, and `--pin`.
pub fn rewrite_options(args: &RewriteArgs) -> anyhow::Result<airlock_workloads::RewriteOptions> {
    let pins = match &args.pin {
        Some(path) => Some(airlock_workloads::Pins::read(path)?),
        None => None,
    };
    let (rule, rewrites) = names(&args.naming)?;
    Ok(airlock_workloads::RewriteOptions {
        target: args.to.parse()?,
        rule,
        rewrites,
        pins,
    })
}

/// The client options of a command that talks to one target registry (`load`, `sync`,
/// `inventory`): its CA file (checked before anything else), plain HTTP, the user and the
/// password read from stdin, the docker/podman auth files unless refused.
fn target_client(
    access: &crate::cli::TargetAccessArgs,
    host: &str,
    retries: u32,
) -> anyhow::Result<ClientOptions> {
    if let Some(ca) = &access.ca_file {
        if !ca.is_file() {
            bail!("cannot read the CA file `{}`", ca.display());
        }
    }
    let mut client = ClientOptions {
        docker_config: !access.no_docker_config,
        retries,
        user_agent: user_agent(),
        ..ClientOptions::default()
    };
    let entry = client.hosts.entry(host.to_owned()).or_default();
    entry.plain_http = access.plain_http;
    entry.ca_file = access.ca_file.clone();
    if let Some(username) = &access.username {
        entry.credentials = Some(Credentials {
            username: username.clone(),
            password: read_secret_stdin("--password-stdin")?,
        });
    }
    Ok(client)
}

fn registry_options(args: &LoadArgs, target: Target) -> anyhow::Result<LoadOptions> {
    let (trust, rule, rewrites) = trust_and_names(args)?;
    let access = &args.access;
    let client = target_client(access, &target.host, args.retries)?;
    Ok(LoadOptions {
        bundle: args.bundle.clone(),
        trust,
        target,
        rule,
        rewrites,
        client,
        jobs: usize::from(args.jobs),
        harbor_create_projects: args.harbor_create_projects,
        bases: args.bases.clone(),
    })
}

/// `--to containerd://…`: the same bundle, key and name flags; the registry's connection
/// flags do not apply.
fn containerd_options(
    args: &LoadArgs,
    target: ContainerdTarget,
) -> anyhow::Result<ContainerdOptions> {
    let (trust, rule, rewrites) = trust_and_names(args)?;
    Ok(ContainerdOptions {
        bundle: args.bundle.clone(),
        trust,
        target,
        rule,
        rewrites,
        platform: args.platform.clone(),
        snapshotter: args.snapshotter.clone(),
        unpack: !args.no_unpack,
        jobs: usize::from(args.jobs),
        bases: args.bases.clone(),
    })
}

// ---- inventory ----

/// `inventory`'s flags into its options: the target and names checked, the output and its
/// signature path checked, the signing key loaded, all before any network work.
pub fn inventory_options(args: &InventoryArgs) -> anyhow::Result<airlock_load::InventoryOptions> {
    let target: Target = args.target.parse()?;
    if args.passphrase_stdin && args.access.password_stdin {
        bail!(
            "--passphrase-stdin and --password-stdin cannot both read standard input\n  hint: \
             give the key passphrase in AIRLOCK_KEY_PASSPHRASE instead"
        );
    }
    let mut inputs: Vec<(&str, &Path)> = Vec::new();
    if let Some(k) = &args.sign_key {
        inputs.push(("signing key", k));
    }
    if let Some(ca) = &args.access.ca_file {
        inputs.push(("CA file", ca));
    }
    check_output("-o", &args.output, &inputs)?;
    check_output(
        "-o",
        &airlock_load::inventory::signature_path(&args.output),
        &inputs,
    )?;
    let sign = match &args.sign_key {
        Some(path) => Some(signing_key(path, args.passphrase_stdin)?),
        None => None,
    };
    let access = &args.access;
    let client = target_client(access, &target.host, args.retries)?;
    let mut opts = airlock_load::InventoryOptions::new(target, args.output.clone());
    opts.names = args.names.clone();
    opts.client = client;
    opts.jobs = usize::from(args.jobs);
    opts.page_size = args.page_size;
    opts.keep_going = args.keep_going;
    opts.sign = sign;
    opts.created = source_date_epoch()?;
    Ok(opts)
}

// ---- serve ----

/// `serve`'s flags into its options.
pub fn serve_options(args: &ServeArgs) -> anyhow::Result<ServeOptions> {
    let rule: NameRule = args.names.parse()?;
    let trust = Trust::from_flags(
        args.key.as_deref(),
        args.insecure_skip_signature,
        Purpose::Serve,
    )?;
    let mut opts = ServeOptions::new(args.bundles.clone(), args.listen, trust);
    opts.allow_remote = args.allow_remote;
    opts.tls = args.tls_cert.clone().zip(args.tls_key.clone());
    opts.rule = rule;
    opts.readers = usize::from(args.jobs);
    opts.write_timeout = std::time::Duration::from_secs(args.write_timeout);
    Ok(opts)
}

// ---- sync ----

/// `sync`'s flags into its options: the spec read, the target and names checked, the
/// target's access settings; the sources are reached as the spec's `registries:` and the
/// docker/podman auth files say.
pub fn sync_options(args: &SyncArgs) -> anyhow::Result<airlock_sync::SyncOptions> {
    let target: Target = args.to.parse()?;
    let (rule, rewrites) = names(&args.naming)?;
    let lock = match (&args.lock, args.locked) {
        (lock, true) => airlock_sync::LockMode::Locked(
            lock.clone()
                .unwrap_or_else(|| airlock_bundle::default_lock_path(&args.spec)),
        ),
        (Some(lock), false) => {
            check_output("--lock", lock, &[("spec", &args.spec)])?;
            airlock_sync::LockMode::Write(lock.clone())
        }
        (None, false) => airlock_sync::LockMode::None,
    };
    let spec = Spec::load(&args.spec)?;
    let access = &args.access;
    let client = target_client(access, &target.host, args.retries)?;
    Ok(airlock_sync::SyncOptions {
        spec,
        target,
        rule,
        rewrites,
        client,
        lock,
        dry_run: args.dry_run,
        jobs: usize::from(args.jobs),
    })
}
