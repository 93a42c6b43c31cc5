//! `airlock bundle SPEC -o FILE`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use airlock_bundle::{
    beside_manifest_path, beside_signature_path, ArchiveOptions, BundleOptions, Error, Spec,
};
use anyhow::{bail, Context};
use serde_json::json;

use crate::cli::{BundleArgs, GlobalArgs};
use crate::report::{human_bytes, ProgressReporter};

pub async fn run(args: BundleArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let spec = Spec::load(&args.spec)?;
    let (write_lock, locked) = match (args.lock.clone(), args.locked) {
        (lock, true) => (None, Some(lock.unwrap_or_else(|| default_lock(&args.spec)))),
        (lock, false) => (lock, None),
    };
    let replaces = check_outputs(&args, write_lock.as_deref(), locked.as_deref())?;
    if replaces && !global.quiet {
        eprintln!(
            "`{}` exists: it will be replaced once the new bundle is complete",
            args.output.display()
        );
    }
    if args.passphrase_stdin && args.registries.password_stdin {
        bail!(
            "--passphrase-stdin and --password-stdin cannot both read standard input\n  hint: \
             give the key passphrase in AIRLOCK_KEY_PASSPHRASE instead"
        );
    }
    // Loaded before any network work, so a wrong passphrase fails at once.
    let sign = match &args.sign_key {
        Some(path) => Some(super::key::load_signing_key(path, args.passphrase_stdin)?),
        None => None,
    };
    let signed_by = sign.as_ref().map(|k| k.verifying_key().fingerprint());
    let cache_dir = match args.cache_dir {
        Some(d) => d,
        None => dirs_cache().context("no cache directory: pass --cache-dir DIR")?,
    };
    let client = super::common::source_client_options(&args.registries)?;
    let created = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => Some(
            v.trim()
                .parse::<u64>()
                .with_context(|| format!("SOURCE_DATE_EPOCH=`{v}` is not a number of seconds"))?,
        ),
        Err(_) => None,
    };
    let opts = BundleOptions {
        spec,
        output: args.output.clone(),
        cache_dir,
        jobs: usize::from(args.jobs),
        keep_going: args.keep_going,
        write_lock,
        locked,
        client,
        created,
        archive: ArchiveOptions {
            level: args.level,
            ..ArchiveOptions::default()
        },
        sign,
    };

    let reporter = Arc::new(ProgressReporter::new(global.quiet));
    let started = std::time::Instant::now();
    let before = file_id(&args.output);
    let result = tokio::select! {
        r = airlock_bundle::bundle(opts, reporter.clone()) => r,
        // Dropping the run stops its archive writer, which removes its temporary file before
        // the process exits (`main` waits for it).
        Ok(()) = tokio::signal::ctrl_c() => {
            reporter.finish();
            if file_id(&args.output) == before {
                eprintln!("interrupted; no bundle was written");
            } else {
                // The signal came in the instant between the rename and the files beside it.
                eprintln!(
                    "interrupted just after `{}` was written; the manifest beside it may be missing or old\n  hint: run the same bundle again",
                    args.output.display()
                );
            }
            return Ok(ExitCode::from(130));
        }
    };
    reporter.finish();
    match result {
        Ok(outcome) => {
            let m = &outcome.manifest;
            if !global.quiet {
                eprintln!(
                    "wrote {}: {} images, {} unique blobs, {} ({} on disk) in {:.1}s; downloaded {}{}, from cache {}",
                    outcome.output.display(),
                    m.totals.images,
                    m.totals.blobs,
                    human_bytes(m.totals.bytes),
                    human_bytes(outcome.archive.compressed_bytes),
                    started.elapsed().as_secs_f64(),
                    human_bytes(outcome.downloaded_bytes),
                    match outcome.resumed_bytes {
                        0 => String::new(),
                        n => format!(" (and {} resumed)", human_bytes(n)),
                    },
                    human_bytes(outcome.cached_bytes),
                );
                match &signed_by {
                    Some(fp) => eprintln!(
                        "signed with key {fp}; manifest and signature also beside the bundle: {}, {}",
                        beside_manifest_path(&outcome.output).display(),
                        beside_signature_path(&outcome.output).display()
                    ),
                    None => eprintln!(
                        "not signed (pass --sign-key KEY to sign); manifest also beside the bundle: {}",
                        beside_manifest_path(&outcome.output).display()
                    ),
                }
            }
            if args.json {
                let doc = json!({
                    "output": outcome.output,
                    "spec": {"name": m.spec.name, "sha256": m.spec.sha256},
                    "images": m.images,
                    "totals": m.totals,
                    "archive": {
                        "entries": outcome.archive.entries,
                        "frames": outcome.archive.frames,
                        "tarBytes": outcome.archive.tar_bytes,
                        "compressedBytes": outcome.archive.compressed_bytes,
                    },
                    "downloadedBytes": outcome.downloaded_bytes,
                    "resumedBytes": outcome.resumed_bytes,
                    "cachedBytes": outcome.cached_bytes,
                    "warnings": outcome.warnings,
                    "failures": failures_json(&reporter),
                    "manifest": beside_manifest_path(&outcome.output),
                    "signature": signed_by.as_ref().map(|_| beside_signature_path(&outcome.output)),
                    "signedBy": signed_by,
                });
                println!("{}", serde_json::to_string_pretty(&doc)?);
            }
            if outcome.failures.is_empty() {
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!(
                    "error: {} images failed (named above); the bundle holds the rest",
                    outcome.failures.len()
                );
                Ok(ExitCode::from(1))
            }
        }
        Err(e @ (Error::ImagesFailed { .. } | Error::NothingToBundle)) => {
            if args.json {
                let doc = json!({ "output": null, "error": e.to_string(), "failures": failures_json(&reporter) });
                println!("{}", serde_json::to_string_pretty(&doc)?);
            }
            eprintln!("error: {e}");
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}

/// Every file the run writes, checked before any network work; returns whether an existing
/// bundle is replaced.
fn check_outputs(
    args: &BundleArgs,
    write_lock: Option<&std::path::Path>,
    locked: Option<&std::path::Path>,
) -> anyhow::Result<bool> {
    use super::common::{check_output, same_target};
    let mut inputs: Vec<(&str, &std::path::Path)> = vec![("spec", &args.spec)];
    if let Some(l) = locked {
        inputs.push(("lock file", l));
    }
    if let Some(k) = &args.sign_key {
        inputs.push(("signing key", k));
    }
    let out = &args.output;
    let replaces = check_output("-o", out, &inputs)?;
    let manifest = beside_manifest_path(out);
    check_output("-o", &manifest, &inputs)?;
    check_output("-o", &beside_signature_path(out), &inputs)?;
    if let Some(lock) = write_lock {
        check_output("--lock", lock, &inputs)?;
        for (what, p) in [("bundle", out), ("manifest beside the bundle", &manifest)] {
            if same_target(lock, p) {
                bail!(
                    "--lock `{}` is the {what} `{}`\n  hint: choose another lock path",
                    lock.display(),
                    p.display()
                );
            }
        }
    }
    Ok(replaces)
}

/// Device and inode of a file, to tell whether it was replaced (a rename gives a new inode).
fn file_id(path: &std::path::Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        std::fs::metadata(path).ok().map(|m| (m.len(), 0))
    }
}

fn failures_json(reporter: &ProgressReporter) -> serde_json::Value {
    reporter
        .failures()
        .into_iter()
        .map(|(image, error)| json!({"image": image, "error": error}))
        .collect()
}

fn default_lock(spec: &std::path::Path) -> PathBuf {
    let mut s = spec.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

fn dirs_cache() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("airlock"))
}
