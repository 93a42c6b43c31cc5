//! `airlock images kubernetes VERSION [--addons …] [--kubeadm PATH] [--json]`: a release's
//! image list on stdout ([`airlock_kube::images`], or a real kubeadm through
//! [`airlock_bundle::kubeadm::kubeadm_images`]); `airlock images from PATH…`: the images
//! manifests name ([`airlock_workloads::find_images`]).

use std::process::ExitCode;

use airlock_kube::{Addon, Version};

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
            if let Some(kubeadm) = &args.kubeadm {
                let version: Version = args.version.parse()?;
                let images =
                    airlock_bundle::kubeadm::kubeadm_images(kubeadm, &version, addons.as_deref())?;
                if let Ok(known) = airlock_kube::images(&args.version, addons.as_deref()) {
                    if known != images {
                        eprintln!(
                            "warning: `{}` lists other images for {version} than airlock's release data (is it the kubeadm of {version}?); printing kubeadm's list",
                            kubeadm.display()
                        );
                    }
                }
                crate::report::images::list(&version, &images, args.json)?;
                return Ok(ExitCode::SUCCESS);
            }
            let (version, release) = airlock_kube::release(&args.version)?;
            let images = airlock_kube::images(&args.version, addons.as_deref())?;
            if args.version.parse::<Version>().is_err() {
                eprintln!(
                    "note: {} means {version}, the newest patch release of v1.{} airlock knows",
                    args.version, version.minor
                );
            }
            if release.inferred() {
                eprintln!(
                    "note: the pins of {version} are inferred: airlock's release data checked them at {} only",
                    release.checked
                );
            }
            crate::report::images::list(&version, &images, args.json)?;
            Ok(ExitCode::SUCCESS)
        }
        ImagesCommand::From(args) => match airlock_workloads::find_images(&args.paths) {
            Ok(found) => crate::report::workloads::images(&found, &args),
            Err(e) => Ok(crate::report::workloads::fatal(e)),
        },
    }
}
