//! `airlock serve BUNDLE… --key K.pub --listen 127.0.0.1:5000`: [`airlock_serve::serve`].

use std::process::ExitCode;
use std::sync::Arc;

use crate::cli::{GlobalArgs, ServeArgs};
use crate::report::serve::Lines;

pub async fn run(args: ServeArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let opts = crate::flags::serve_options(&args)?;
    let reporter = Arc::new(Lines {
        quiet: global.quiet,
    });
    airlock_serve::serve(opts, reporter, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
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
