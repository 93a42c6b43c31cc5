//! Flag handling shared by several commands.

use std::io::Read;
use std::path::PathBuf;

use airlock_bundle::{ClientOptions, Credentials};
use anyhow::{bail, Context};

use crate::cli::SourceRegistryArgs;

/// The signer's public key (PEM) from `path`.
pub fn read_public_key(path: &std::path::Path) -> anyhow::Result<airlock_layout::VerifyingKey> {
    let pem = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the public key `{}`", path.display()))?;
    Ok(airlock_layout::VerifyingKey::from_pem(&pem, path)?)
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
