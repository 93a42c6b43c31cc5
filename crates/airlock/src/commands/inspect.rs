//! `airlock inspect BUNDLE|BUNDLE.manifest.json [--json]`: the inventory, from the head of
//! the bundle (or the manifest beside it) only ([`airlock_layout::read_inventory`]).

use std::process::ExitCode;

use crate::cli::{GlobalArgs, InspectArgs};
use crate::report::inspect::{table, to_json};

pub fn run(args: InspectArgs, _global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let inv = airlock_layout::read_inventory(&args.bundle)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&to_json(&args.bundle, &inv))?
        );
    } else {
        print!("{}", table(&inv));
    }
    Ok(ExitCode::SUCCESS)
}
