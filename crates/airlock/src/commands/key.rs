//! `airlock key generate --out NAME`: a key pair written by [`KeyPairPaths::generate`].

use std::process::ExitCode;

use airlock_layout::KeyPairPaths;
use anyhow::bail;

use crate::cli::{GlobalArgs, KeyCommand, KeyGenerateArgs};
use crate::flags::{self, PASSPHRASE_ENV};

pub fn run(command: KeyCommand, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    match command {
        KeyCommand::Generate(args) => generate(args, global),
    }
}

fn generate(args: KeyGenerateArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let paths = KeyPairPaths::new(&args.out);
    let existing = paths.existing();
    if !existing.is_empty() {
        let named: Vec<String> = existing
            .iter()
            .map(|p| format!("`{}`", p.display()))
            .collect();
        bail!(
            "refusing to overwrite {}\n  hint: choose another --out NAME, or move the old key away first",
            named.join(" and ")
        );
    }
    for p in [&paths.key, &paths.public] {
        airlock_layout::check_output("--out", p, &[])?;
    }
    let passphrase = if args.no_passphrase {
        if std::env::var_os(PASSPHRASE_ENV).is_some() && !global.quiet {
            eprintln!(
                "warning: {PASSPHRASE_ENV} is set but --no-passphrase was given: `{}` is not encrypted",
                paths.key.display()
            );
        }
        None
    } else {
        match flags::read_passphrase(args.passphrase_stdin)? {
            Some(p) => Some(p),
            None => bail!(
                "no passphrase to encrypt `{}`\n  hint: pass --passphrase-stdin, set \
                 {PASSPHRASE_ENV}, or pass --no-passphrase to write it unencrypted",
                paths.key.display()
            ),
        }
    };
    let fingerprint = paths.generate(passphrase.as_deref().map(str::as_bytes))?;
    crate::report::key::generated(
        &paths,
        passphrase.is_some(),
        &fingerprint,
        args.json,
        global.quiet,
    )?;
    Ok(ExitCode::SUCCESS)
}
