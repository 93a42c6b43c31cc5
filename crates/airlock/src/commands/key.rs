//! `airlock key generate --out NAME`, and reading keys and passphrases for other commands.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use airlock_layout::SigningKey;
use anyhow::{bail, Context};
use serde_json::json;

use crate::cli::{GlobalArgs, KeyCommand, KeyGenerateArgs};

/// The environment variable that holds a key passphrase when `--passphrase-stdin` is not given.
pub const PASSPHRASE_ENV: &str = "AIRLOCK_KEY_PASSPHRASE";

pub fn run(command: KeyCommand, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    match command {
        KeyCommand::Generate(args) => generate(args, global),
    }
}

fn generate(args: KeyGenerateArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let key_path = with_suffix(&args.out, ".key");
    let pub_path = with_suffix(&args.out, ".pub");
    let existing: Vec<String> = [&key_path, &pub_path]
        .into_iter()
        .filter(|p| p.symlink_metadata().is_ok())
        .map(|p| format!("`{}`", p.display()))
        .collect();
    if !existing.is_empty() {
        bail!(
            "refusing to overwrite {}\n  hint: choose another --out NAME, or move the old key away first",
            existing.join(" and ")
        );
    }
    for p in [&key_path, &pub_path] {
        super::common::check_output("--out", p, &[])?;
    }
    let passphrase = if args.no_passphrase {
        if std::env::var_os(PASSPHRASE_ENV).is_some() && !global.quiet {
            eprintln!(
                "warning: {PASSPHRASE_ENV} is set but --no-passphrase was given: `{}` is not encrypted",
                key_path.display()
            );
        }
        None
    } else {
        match read_passphrase(args.passphrase_stdin)? {
            Some(p) => Some(p),
            None => bail!(
                "no passphrase to encrypt `{}`\n  hint: pass --passphrase-stdin, set \
                 {PASSPHRASE_ENV}, or pass --no-passphrase to write it unencrypted",
                key_path.display()
            ),
        }
    };

    let key = SigningKey::generate();
    let key_pem = key.to_pkcs8_pem(passphrase.as_deref().map(str::as_bytes))?;
    let public = key.verifying_key();
    let fingerprint = public.fingerprint();
    write_new(&key_path, key_pem.as_bytes(), 0o600)?;
    if let Err(e) = write_new(&pub_path, public.to_pem().as_bytes(), 0o644) {
        // Half a key pair is of no use; leave nothing behind.
        let _ = std::fs::remove_file(&key_path);
        return Err(e);
    }

    if !global.quiet {
        eprintln!(
            "wrote `{}` ({}) and `{}`\npublic key fingerprint: {fingerprint}",
            key_path.display(),
            if passphrase.is_some() {
                "encrypted"
            } else {
                "NOT encrypted"
            },
            pub_path.display(),
        );
    }
    if args.json {
        let doc = json!({"key": key_path, "pub": pub_path, "fingerprint": fingerprint});
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads the private key at `path` for signing, with the passphrase from standard input
/// (`stdin`) or `AIRLOCK_KEY_PASSPHRASE`.
pub fn load_signing_key(path: &Path, stdin: bool) -> anyhow::Result<SigningKey> {
    let pem = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the signing key `{}`", path.display()))?;
    let passphrase = read_passphrase(stdin)?;
    let key = SigningKey::from_pem(&pem, passphrase.as_deref().map(str::as_bytes), path)?;
    warn_if_readable_by_others(path);
    Ok(key)
}

/// The passphrase from standard input when `stdin`, else from `AIRLOCK_KEY_PASSPHRASE` when
/// set and not empty. Never logged.
fn read_passphrase(stdin: bool) -> anyhow::Result<Option<String>> {
    if stdin {
        return Ok(Some(super::common::read_secret_stdin(
            "--passphrase-stdin",
        )?));
    }
    match std::env::var(PASSPHRASE_ENV) {
        Ok(p) if !p.is_empty() => Ok(Some(p)),
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => bail!("{PASSPHRASE_ENV} is not valid UTF-8"),
    }
}

fn with_suffix(name: &Path, suffix: &str) -> PathBuf {
    let mut s = name.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Writes a new file through a temporary name; fails if `path` exists by then.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let context = || format!("cannot write `{}`", path.display());
    // The temporary file is created with mode 0600, so the key is never readable by others.
    let mut tmp = tempfile::Builder::new()
        .prefix(".airlock-key-")
        .tempfile_in(dir)
        .with_context(context)?;
    tmp.write_all(bytes).with_context(context)?;
    set_mode(tmp.as_file(), mode).with_context(context)?;
    tmp.as_file().sync_all().with_context(context)?;
    tmp.persist_noclobber(path)
        .map_err(|e| e.error)
        .with_context(context)?;
    Ok(())
}

#[cfg(unix)]
fn set_mode(file: &std::fs::File, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_file: &std::fs::File, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                "the signing key `{}` can be read by other users (mode {:o}); hint: chmod 600 it",
                path.display(),
                mode & 0o777
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}
