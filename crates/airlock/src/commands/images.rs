//! `airlock images kubernetes VERSION [--addons …] [--json]`: a release's image list on stdout
//! ([`airlock_kube::images`]); `airlock images from PATH…`: the images manifests name
//! ([`airlock_workloads::find_images`]).

use std::process::ExitCode;

use airlock_kube::Addon;

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
            let images = airlock_kube::images(&args.version, addons.as_deref())?;
            let (version, _) = airlock_kube::release(&args.version)?;
            crate::report::images::list(&version, &images, args.json)?;
            Ok(ExitCode::SUCCESS)
        }
        ImagesCommand::From(args) => match airlock_workloads::find_images(&args.paths) {
            Ok(found) => crate::report::workloads::images(&found, &args),
            Err(e) => Ok(crate::report::workloads::fatal(e)),
        },
    }
}
