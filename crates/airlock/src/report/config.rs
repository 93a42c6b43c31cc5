//! What `airlock config` says on stderr.

use std::path::{Path, PathBuf};

/// The files `config containerd` wrote (data, on stdout) and how containerd reads them.
pub fn containerd_written(written: &[PathBuf], out: &Path, quiet: bool) {
    for f in written {
        println!("{}", f.display());
    }
    if !quiet {
        eprintln!(
            "wrote {} hosts.toml files; containerd reads them with\n  \
             [plugins.\"io.containerd.grpc.v1.cri\".registry]\n    config_path = {}\n\
             in /etc/containerd/config.toml (restart containerd after changing it)",
            written.len(),
            airlock_load::config::toml_string(&out.to_string_lossy())
        );
    }
}

/// Where `config docker`'s fragment goes and what it covers.
pub fn docker_written(quiet: bool) {
    if !quiet {
        eprintln!(
            "merge this into /etc/docker/daemon.json and restart docker. docker uses \
             registry-mirrors for Docker Hub images only (`nginx`, `docker.io/calico/node`), \
             asked for at the mirror's root as `library/nginx`: load them with --names drop-host \
             and no prefix. Images of registry.k8s.io, quay.io or ghcr.io must be pulled by their \
             internal names."
        );
    }
}
