//! Flag handling shared by several commands.

use std::io::Read;
use std::path::{Path, PathBuf};

use airlock_bundle::{ClientOptions, Credentials};
use anyhow::{bail, Context};

use crate::cli::SourceRegistryArgs;

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

/// Checks a path the command is going to write, before any other work: its directory must
/// exist; if something is there already it must be a regular file (never a directory, a
/// device, a fifo, a socket or a symbolic link: a write by rename would replace it) and not
/// one of the command's `inputs` (compared by device and inode, so another path, a symbolic
/// link or a hard link to the spec is caught too). Returns whether an existing file will be
/// replaced.
pub fn check_output(flag: &str, path: &Path, inputs: &[(&str, &Path)]) -> anyhow::Result<bool> {
    let shown = path.display();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if path.file_name().is_none() {
        bail!("{flag} `{shown}` is not a file name\n  hint: give a path ending in a file name");
    }
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => bail!("{flag} `{shown}`: `{}` is not a directory", dir.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "{flag} `{shown}`: the directory `{}` does not exist\n  hint: create it first, or choose another path",
            dir.display()
        ),
        Err(e) => bail!(
            "{flag} `{shown}`: the directory `{}` cannot be used: {e}\n  hint: create it first, or choose another path",
            dir.display()
        ),
    }
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => bail!("{flag} `{shown}` cannot be checked: {e}"),
    };
    if !meta.is_file() {
        bail!(
            "{flag} `{shown}` exists and is {}; refusing to replace it\n  hint: choose the path of a regular file",
            kind_of(&meta.file_type())
        );
    }
    for (what, input) in inputs {
        if same_file(&meta, input) {
            bail!(
                "{flag} `{shown}` is the {what} `{}` itself; refusing to overwrite it\n  hint: choose another output path",
                input.display()
            );
        }
    }
    Ok(true)
}

fn kind_of(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a fifo";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_char_device() {
            return "a character device";
        }
    }
    if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

#[cfg(unix)]
fn same_file(meta: &std::fs::Metadata, other: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(other).is_ok_and(|o| o.dev() == meta.dev() && o.ino() == meta.ino())
}

#[cfg(not(unix))]
fn same_file(_meta: &std::fs::Metadata, _other: &Path) -> bool {
    false
}

/// Whether two paths (that may not exist yet) name the same file: the same existing file, or
/// the same name in the same directory.
pub fn same_target(a: &Path, b: &Path) -> bool {
    if let (Ok(ma), Ok(_)) = (std::fs::symlink_metadata(a), std::fs::metadata(b)) {
        if same_file(&ma, b) {
            return true;
        }
    }
    let norm = |p: &Path| {
        let dir = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        std::fs::canonicalize(dir)
            .ok()
            .map(|d| d.join(p.file_name().unwrap_or_default()))
    };
    matches!((norm(a), norm(b)), (Some(x), Some(y)) if x == y)
}
