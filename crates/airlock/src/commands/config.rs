//! `airlock config kubeadm|containerd|docker`: configuration for the offline side, so that
//! kubeadm, containerd and docker find the images where `airlock load` put them
//! ([`airlock_load::config`] writes it; this prints it).

use std::process::ExitCode;

use airlock_load::config::{self, HostsOptions};

use crate::cli::{ConfigCommand, GlobalArgs};

pub fn run(command: ConfigCommand, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    match command {
        ConfigCommand::Kubeadm(args) => {
            let target = config::registry_target(&args.registry)?;
            print!("{}", config::kubeadm_config(&target, &args.kubernetes)?);
        }
        ConfigCommand::Containerd(args) => {
            let opts = HostsOptions {
                target: config::registry_target(&args.registry)?,
                rule: args.names.parse()?,
                ca_file: args.ca_file,
                plain_http: args.plain_http,
                upstreams: args.upstream,
                out: args.out,
            };
            let written = config::write_hosts_tomls(&opts)?;
            crate::report::config::containerd_written(&written, &opts.out, global.quiet);
        }
        ConfigCommand::Docker(args) => {
            let target = config::registry_target(&args.registry)?;
            let doc = config::docker_daemon_json(&args.registry, &target, args.plain_http)?;
            println!("{}", serde_json::to_string_pretty(&doc)?);
            crate::report::config::docker_written(global.quiet);
        }
    }
    Ok(ExitCode::SUCCESS)
}
