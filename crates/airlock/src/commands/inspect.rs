//! `airlock inspect BUNDLE|BUNDLE.manifest.json [--json]`: the inventory, from the head of
//! the bundle (or the manifest beside it) only ([`airlock_layout::read_inventory`]).

use std::process::ExitCode;

use crate::cli::{GlobalArgs, InspectArgs};
use crate::report::inspect::{parts_table, table, to_json};

pub fn run(args: InspectArgs, _global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let inv = airlock_layout::read_inventory(&args.bundle)?;
    let parts = airlock_layout::volume::part_list_of(&args.bundle);
    if args.json {
        let mut doc = to_json(&args.bundle, &inv);
        if let Some(p) = &parts {
            doc["parts"] = serde_json::to_value(&p.list)?;
        }
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", table(&inv));
        if let Some(p) = &parts {
            print!("{}", parts_table(p));
        }
    }
    Ok(ExitCode::SUCCESS)
}
