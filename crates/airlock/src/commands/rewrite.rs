//! `airlock rewrite --to registry://HOST[/PREFIX] [--names …] [--pin BUNDLE] PATH…`: the image
//! fields of manifests pointed at where `airlock load` put the images
//! ([`airlock_workloads::rewrite`]).

use std::process::ExitCode;

use anyhow::bail;

use crate::cli::{GlobalArgs, RewriteArgs};
use crate::report::workloads::{fatal, rewritten};

pub fn run(args: RewriteArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let opts = crate::flags::rewrite_options(&args)?;
    if args.in_place && args.paths.iter().any(|p| p.as_os_str() == "-") {
        bail!("--in-place rewrites files: stdin (-) has none\n  hint: without --in-place the result of - goes to stdout");
    }
    if !args.in_place && !args.check {
        let sources = match airlock_workloads::sources(&args.paths) {
            Ok(s) => s,
            Err(e) => return Ok(fatal(e)),
        };
        if sources.len() != 1 {
            bail!(
                "without --in-place, `airlock rewrite` prints one file: give one file or - \
                 (here {} inputs)\n  hint: add --in-place to rewrite files and directories, \
                 or --check to see what would change",
                sources.len()
            );
        }
    }
    let done = match airlock_workloads::rewrite(&args.paths, &opts) {
        Ok(done) => done,
        Err(e) => return Ok(fatal(e)),
    };
    if !rewritten(&done, args.check, global.quiet) {
        return Ok(ExitCode::from(1));
    }
    if args.check {
        return Ok(ExitCode::from(u8::from(done.change_count() > 0)));
    }
    if args.in_place {
        if let Err(e) = airlock_workloads::write_in_place(&done) {
            return Ok(fatal(e));
        }
    } else if let Some(file) = done.files.first() {
        print!("{}", file.text);
    }
    Ok(ExitCode::SUCCESS)
}
