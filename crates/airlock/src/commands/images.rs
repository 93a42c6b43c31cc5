//! `airlock images kubernetes VERSION [--addons …] [--json]`: a release's image list on stdout.

use std::process::ExitCode;

use airlock_kube::{self as kubernetes, Addon};
use serde_json::json;

use crate::cli::ImagesCommand;

pub fn run(command: ImagesCommand) -> anyhow::Result<ExitCode> {
    match command {
        ImagesCommand::Kubernetes(args) => {
            let addons = match &args.addons {
                None => None,
                Some(list) => Some(
                    list.iter()
                        .filter(|a| !a.is_empty())
                        .map(|a| a.parse::<Addon>())
                        .collect::<Result<Vec<_>, _>>()?,
                ),
            };
            let images = kubernetes::images(&args.version, addons.as_deref())?;
            let (version, _) = kubernetes::release(&args.version)?;
            if args.json {
                let doc = json!({"kubernetesVersion": version.to_string(), "images": images});
                println!("{}", serde_json::to_string_pretty(&doc)?);
            } else {
                for i in images {
                    println!("{i}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
