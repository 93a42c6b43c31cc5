//! `airlock serve BUNDLE… --key K.pub --listen 127.0.0.1:5000`.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use airlock_load::{NameRule, Purpose, Trust};
use airlock_serve::{serve, AccessLog, ServeOptions, ServeReporter};

use crate::cli::{GlobalArgs, ServeArgs};

pub async fn run(args: ServeArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let opts = options(&args)?;
    let reporter = Arc::new(Lines {
        quiet: global.quiet,
    });
    serve(opts, reporter, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// Flags into library options.
fn options(args: &ServeArgs) -> anyhow::Result<ServeOptions> {
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

/// SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Plain lines on stderr: start-up, one access line per request, refused blobs.
struct Lines {
    quiet: bool,
}

impl ServeReporter for Lines {
    fn warn(&self, message: &str) {
        eprintln!("warning: {message}");
    }

    fn image(&self, reference: &str, digest: &str) {
        if !self.quiet {
            eprintln!("serving {reference} ({digest})");
        }
    }

    fn listening(&self, addr: SocketAddr, tls: bool, images: usize, repositories: usize) {
        if !self.quiet {
            let scheme = if tls { "https" } else { "http" };
            eprintln!(
                "listening on {scheme}://{addr}: {images} images in {repositories} repositories \
                 (read-only; SIGTERM or Ctrl-C stops)"
            );
        }
    }

    fn access(&self, l: &AccessLog) {
        if !self.quiet {
            eprintln!(
                "{} {} {} {} {} {}ms{}",
                l.peer,
                l.method,
                l.path,
                l.status,
                l.bytes,
                l.millis,
                if l.aborted { " aborted" } else { "" }
            );
        }
    }

    fn blob_refused(&self, digest: &str, bundle: &Path, reason: &str) {
        // Always said, even with --quiet: the bundle is damaged.
        eprintln!(
            "error: blob `{digest}` of `{}` does not match the signed manifest and will not be \
             served: {reason}\n  hint: check the bundle with `airlock verify`",
            bundle.display()
        );
    }

    fn stopping(&self) {
        if !self.quiet {
            eprintln!("stopping: no new connections; finishing responses in flight");
        }
    }
}
