//! `airlock lock SPEC [-o SPEC.lock]`: every image resolved to a digest, nothing downloaded.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use airlock_bundle::{ClientOptions, Credentials, Error, LockOptions, Spec};
use anyhow::{bail, Context};

use crate::cli::{GlobalArgs, LockArgs};
use crate::report::ProgressReporter;

pub async fn run(args: LockArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let spec = Spec::load(&args.spec)?;
    let output = args.output.clone().unwrap_or_else(|| {
        let mut s = args.spec.as_os_str().to_owned();
        s.push(".lock");
        PathBuf::from(s)
    });
    let mut client = ClientOptions {
        docker_config: !args.no_docker_config,
        retries: args.retries,
        user_agent: format!("airlock/{}", env!("CARGO_PKG_VERSION")),
        ..ClientOptions::default()
    };
    for host in &args.plain_http {
        client.hosts.entry(host.clone()).or_default().plain_http = true;
    }
    for item in &args.ca_file {
        let Some((host, file)) = item.split_once('=') else {
            bail!("--ca-file `{item}`: expected HOST[:PORT]=FILE");
        };
        client.hosts.entry(host.to_string()).or_default().ca_file = Some(PathBuf::from(file));
    }
    if let Some(username) = args.username {
        let mut password = String::new();
        std::io::stdin()
            .read_to_string(&mut password)
            .context("cannot read the password from standard input")?;
        let password = password.trim_end_matches(['\r', '\n']).to_string();
        if password.is_empty() {
            bail!("--password-stdin: standard input was empty");
        }
        client.default_credentials = Some(Credentials { username, password });
    }
    let opts = LockOptions {
        spec,
        output,
        jobs: usize::from(args.jobs),
        client,
        via_mirrors: args.via_mirrors,
    };
    let reporter = Arc::new(ProgressReporter::new(global.quiet));
    let result = airlock_bundle::resolve_lock(opts, reporter.clone()).await;
    reporter.finish();
    match result {
        Ok(outcome) => {
            if !global.quiet {
                eprintln!(
                    "wrote {}: {} images locked; `airlock bundle {} --locked` checks every source against it",
                    outcome.output.display(),
                    outcome.lock.images.len(),
                    args.spec.display(),
                );
            }
            if args.json {
                println!("{}", serde_json::to_string_pretty(&outcome.lock)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ Error::LockFailed { .. }) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}
