//! Configuration for the offline side, so that kubeadm, containerd and docker find the images
//! where a load put them (`airlock config kubeadm|containerd|docker`).
//!
//! ```
//! use airlock_load::config;
//!
//! let target = config::registry_target("harbor.lan/k8s").unwrap();
//! let kubeadm = config::kubeadm_config(&target, "v1.28.0").unwrap();
//! assert!(kubeadm.contains("\nimageRepository: harbor.lan/k8s\n"));
//! ```
//!
//! Names follow [`NameMapper`], the mapping `airlock load --names RULE --to registry://…` uses,
//! so the two cannot drift apart: kubeadm's `imageRepository` is the target under `drop-host`,
//! and a containerd `hosts.toml` sends `UPSTREAM/REPO` to the repository the rule gives it.
//! kubeadm's image list comes from [`airlock_kube`], the table `spec.kubernetes` expands.
//! The messages of [`ConfigError`] name the flags of `airlock config`, whose values these
//! functions take as they were given.

use std::path::{Path, PathBuf};

use airlock_kube::{LEGACY_REGISTRY, REGISTRY};
use serde_json::json;

use crate::names::{NameError, NameMapper, NameRule, Target};

/// The registries a cluster commonly pulls from, in `config containerd`'s default set.
pub const UPSTREAMS: &[&str] = &[REGISTRY, LEGACY_REGISTRY, "docker.io", "quay.io", "ghcr.io"];

/// Why a configuration cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--registry` was given as a URL.
    #[error(
        "--registry `{registry}`: give HOST[:PORT][/PREFIX] without a scheme\n  hint: \
         `config containerd` and `config docker` take --plain-http for a registry without TLS"
    )]
    Scheme {
        /// As given.
        registry: String,
    },
    /// `--registry` is not a registry host and prefix.
    #[error("--registry `{registry}`")]
    Registry {
        /// As given.
        registry: String,
        /// What is wrong with it.
        #[source]
        source: NameError,
    },
    /// The Kubernetes release is unknown or malformed.
    #[error(transparent)]
    Kubernetes(#[from] airlock_kube::KubernetesError),
    /// `--names flat` has no hosts.toml form.
    #[error(
        "--names flat cannot be expressed in hosts.toml: containerd keeps the whole \
         repository path (`docker.io/library/nginx` asks for `library/nginx`)\n  hint: load \
         with --names keep-host or drop-host for nodes that pull through containerd"
    )]
    FlatHostsToml,
    /// `--upstream` is not a registry host.
    #[error("--upstream {}: expected a registry host such as `quay.io`", json_string(.upstream))]
    Upstream {
        /// As given.
        upstream: String,
    },
    /// docker's mirrors cannot carry a path.
    #[error(
        "docker's `registry-mirrors` take a registry without a path, and `{registry}` has one\n  \
         hint: load Docker Hub images with --names drop-host into registry://{host} (no prefix), \
         or configure containerd with `airlock config containerd`, which takes a path"
    )]
    DockerPrefix {
        /// As given.
        registry: String,
        /// Its host.
        host: String,
    },
    /// A directory for hosts.toml files cannot be created.
    #[error("cannot create `{}`", .dir.display())]
    CreateDir {
        /// The directory.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A hosts.toml file cannot be written.
    #[error("cannot write `{}`", .file.display())]
    Write {
        /// The file.
        file: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

/// `--registry HOST[:PORT][/PREFIX]` as a load target.
pub fn registry_target(registry: &str) -> Result<Target, ConfigError> {
    if registry.contains("://") {
        return Err(ConfigError::Scheme {
            registry: registry.to_string(),
        });
    }
    format!("registry://{registry}")
        .parse::<Target>()
        .map_err(|source| ConfigError::Registry {
            registry: registry.to_string(),
            source,
        })
}

fn join(host: &str, path: &str) -> String {
    if path.is_empty() {
        host.to_string()
    } else {
        format!("{host}/{path}")
    }
}

// ---- kubeadm ----

/// kubeadm's `imageRepository` and `dns.imageRepository` for images loaded with
/// `--names drop-host --to registry://TARGET`.
///
/// kubeadm names every image `<imageRepository>/<name>:<tag>`, except CoreDNS: only for its own
/// default repository does it look one level down (`registry.k8s.io/coredns/coredns`); with a
/// custom repository it asks for `<imageRepository>/coredns`. drop-host keeps the path
/// `coredns/coredns`, so `dns.imageRepository` points kubeadm one level down
/// (kubeadm's `GetDNSImage`, `cmd/kubeadm/app/images/images.go`).
pub fn kubeadm_repositories(target: &Target) -> (String, String) {
    let mapper = NameMapper {
        prefix: target.prefix.clone(),
        rule: NameRule::DropHost,
        rewrites: Vec::new(),
    };
    let repo = |canonical: &str| join(&target.host, &mapper.repository(canonical));
    let pause = repo(&format!("{REGISTRY}/pause"));
    let coredns = repo(&format!("{REGISTRY}/coredns/coredns"));
    let image_repository = pause
        .strip_suffix("/pause")
        .expect("drop-host keeps the name");
    let dns_repository = coredns
        .strip_suffix("/coredns")
        .expect("drop-host keeps the name");
    (image_repository.to_string(), dns_repository.to_string())
}

/// The ClusterConfiguration document (kubeadm.k8s.io/v1beta3, read by kubeadm v1.22 and later).
pub fn kubeadm_config(target: &Target, version: &str) -> Result<String, ConfigError> {
    let (v, release) = airlock_kube::release(version)?;
    let (repo, dns) = kubeadm_repositories(target);
    let drop_host = format!("airlock load --names drop-host --to {target}");
    let mut out = String::new();
    out.push_str(&format!(
        "# kubeadm {v} with the images `{drop_host}` wrote.\n\
         # Use: kubeadm init --config THIS_FILE (add an InitConfiguration and networking as needed);\n\
         # `kubeadm config images list --config THIS_FILE` lists:\n"
    ));
    for image in airlock_kube::image_names(&repo, &dns, &v, release, None) {
        out.push_str(&format!("#   {image}\n"));
    }
    out.push_str(&format!(
        "# The kubelet's sandbox image comes from the container runtime: set containerd's\n\
         # `sandbox_image = \"{repo}/pause:{}\"` (or use `airlock config containerd`).\n",
        release.pause
    ));
    out.push_str(&format!(
        "apiVersion: kubeadm.k8s.io/v1beta3\n\
         kind: ClusterConfiguration\n\
         kubernetesVersion: {v}\n\
         imageRepository: {}\n\
         dns:\n  \
           # kubeadm asks a custom repository for `<imageRepository>/coredns`; drop-host keeps\n  \
           # `coredns/coredns`, so CoreDNS is looked up one level down.\n  \
           imageRepository: {}\n",
        yaml_scalar(&repo),
        yaml_scalar(&dns),
    ));
    Ok(out)
}

/// `s` as a YAML scalar: plain when it is a registry path (`harbor.lan:5000/k8s`), else
/// double-quoted (a JSON string is a valid YAML double-quoted scalar): an IPv6 host's `[`
/// would otherwise open a flow sequence.
fn yaml_scalar(s: &str) -> String {
    let plain = s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:".contains(c));
    if plain {
        s.to_string()
    } else {
        json_string(s)
    }
}

// ---- containerd ----

/// Where containerd's docker resolver reaches an upstream registry's API.
fn upstream_server(upstream: &str) -> String {
    match upstream {
        "docker.io" => "https://registry-1.docker.io".to_string(),
        other => format!("https://{other}"),
    }
}

/// The repository paths under the target that `UPSTREAM/REPO` is looked up at, in order.
///
/// containerd appends the whole repository path to a host's path, so `flat` (which keeps only
/// the last path element) cannot be expressed. Under keep-host, `k8s.gcr.io` is looked up under
/// `registry.k8s.io` first (its other name; the spec's Kubernetes sets use that name), then
/// under its own.
fn host_paths(target: &Target, rule: NameRule, upstream: &str) -> Result<Vec<String>, ConfigError> {
    let mapper = NameMapper {
        prefix: target.prefix.clone(),
        rule,
        rewrites: Vec::new(),
    };
    // The mapper maps names; the path a host needs is the mapping of the upstream with an empty
    // repository, which is the mapping of `UPSTREAM/x` without its `/x`.
    let base = |up: &str| {
        let mapped = mapper.repository(&format!("{up}/x"));
        mapped
            .strip_suffix("x")
            .map(|p| p.trim_end_matches('/').to_string())
            .expect("keep-host and drop-host keep the repository path")
    };
    match rule {
        NameRule::Flat => Err(ConfigError::FlatHostsToml),
        NameRule::KeepHost => {
            let mut paths = Vec::new();
            if let Some(alias) = airlock_kube::alias_of(upstream).filter(|_| upstream != REGISTRY) {
                paths.push(base(alias));
            }
            paths.push(base(upstream));
            Ok(paths)
        }
        NameRule::DropHost => Ok(vec![base(upstream)]),
    }
}

/// `s` as a TOML basic string: `"` and `\\` escaped, and every control character (a newline
/// in a path, say), which TOML forbids unescaped.
pub fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One `hosts.toml` (containerd's `config_path` format, containerd 1.5 and later).
pub fn hosts_toml(
    upstream: &str,
    target: &Target,
    rule: NameRule,
    ca_file: Option<&Path>,
    plain_http: bool,
) -> Result<String, ConfigError> {
    let scheme = if plain_http { "http" } else { "https" };
    let mut out = format!(
        "# {upstream} images from {host} (`airlock load --names {rule} --to {target}`).\n\
         server = {server}\n",
        host = target.host,
        server = toml_string(&upstream_server(upstream)),
    );
    for path in host_paths(target, rule, upstream)? {
        let url = if path.is_empty() {
            format!("{scheme}://{}", target.host)
        } else {
            format!("{scheme}://{}/v2/{path}", target.host)
        };
        out.push_str(&format!("\n[host.{}]\n", toml_string(&url)));
        out.push_str("  capabilities = [\"pull\", \"resolve\"]\n");
        if !path.is_empty() {
            // The URL names the API root itself: containerd must not add `/v2` again.
            out.push_str("  override_path = true\n");
        }
        if let Some(ca) = ca_file {
            out.push_str(&format!("  ca = {}\n", toml_string(&ca.to_string_lossy())));
        }
    }
    Ok(out)
}

/// What `airlock config containerd` writes.
#[derive(Debug, Clone)]
pub struct HostsOptions {
    /// The internal registry and prefix the images were loaded to.
    pub target: Target,
    /// How the load named the images.
    pub rule: NameRule,
    /// The CA file of the internal registry, as a path on the nodes.
    pub ca_file: Option<PathBuf>,
    /// The internal registry talks plain HTTP.
    pub plain_http: bool,
    /// The upstream registries to redirect; empty: [`UPSTREAMS`].
    pub upstreams: Vec<String>,
    /// containerd's `config_path`: each upstream's file is `OUT/UPSTREAM/hosts.toml`.
    pub out: PathBuf,
}

/// Writes one `hosts.toml` per upstream under `opts.out`; the files written, in order.
pub fn write_hosts_tomls(opts: &HostsOptions) -> Result<Vec<PathBuf>, ConfigError> {
    let upstreams: Vec<String> = if opts.upstreams.is_empty() {
        UPSTREAMS.iter().map(|s| s.to_string()).collect()
    } else {
        opts.upstreams.clone()
    };
    let mut written: Vec<PathBuf> = Vec::new();
    for up in &upstreams {
        if up.contains('/') || airlock_registry::reference::validate_host(up).is_err() {
            return Err(ConfigError::Upstream {
                upstream: up.clone(),
            });
        }
        let text = hosts_toml(
            up,
            &opts.target,
            opts.rule,
            opts.ca_file.as_deref(),
            opts.plain_http,
        )?;
        let dir = opts.out.join(up);
        std::fs::create_dir_all(&dir).map_err(|source| ConfigError::CreateDir {
            dir: dir.clone(),
            source,
        })?;
        let file = dir.join("hosts.toml");
        std::fs::write(&file, text).map_err(|source| ConfigError::Write {
            file: file.clone(),
            source,
        })?;
        written.push(file);
    }
    Ok(written)
}

// ---- docker ----

/// The `registry-mirrors` fragment of docker's `daemon.json` for `registry` (as given to
/// `--registry`, parsed into `target`), which must carry no path.
pub fn docker_daemon_json(
    registry: &str,
    target: &Target,
    plain_http: bool,
) -> Result<serde_json::Value, ConfigError> {
    if !target.prefix.is_empty() {
        return Err(ConfigError::DockerPrefix {
            registry: registry.to_string(),
            host: target.host.clone(),
        });
    }
    let scheme = if plain_http { "http" } else { "https" };
    let mut doc = json!({ "registry-mirrors": [format!("{scheme}://{}", target.host)] });
    if plain_http {
        doc["insecure-registries"] = json!([target.host]);
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Target {
        registry_target(s).unwrap()
    }

    /// kubeadm's rules (`cmd/kubeadm/app/images/images.go`), written from its source: every
    /// image `<imageRepository>/<name>:<tag>`; CoreDNS from `dns.imageRepository` if set, with
    /// `/coredns` appended only for the default repository.
    fn kubeadm_pulls(image_repository: &str, dns_repository: Option<&str>, v: &str) -> Vec<String> {
        let (_, r) = airlock_kube::release(v).unwrap();
        let mut dns = dns_repository.unwrap_or(image_repository).to_string();
        if dns == REGISTRY {
            dns.push_str("/coredns");
        }
        let mut out: Vec<String> = [
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kube-proxy",
        ]
        .iter()
        .map(|c| format!("{image_repository}/{c}:{v}"))
        .collect();
        out.push(format!("{image_repository}/pause:{}", r.pause));
        out.push(format!("{image_repository}/etcd:{}", r.etcd));
        out.push(format!("{dns}/coredns:{}", r.coredns));
        out
    }

    /// Where `load --names drop-host --to registry://TARGET` puts each image of the release.
    fn drop_host(target: &Target, v: &str) -> Vec<String> {
        let m = NameMapper {
            prefix: target.prefix.clone(),
            rule: NameRule::DropHost,
            rewrites: vec![],
        };
        airlock_kube::images(v, None)
            .unwrap()
            .iter()
            .map(|i| {
                let (name, tag) = i.rsplit_once(':').unwrap();
                format!("{}/{}:{tag}", target.host, m.repository(name))
            })
            .collect()
    }

    #[test]
    fn kubeadm_names_agree_with_drop_host_for_every_release() {
        for reg in ["harbor.lan/k8s", "harbor.lan", "10.0.0.5:5000/a/b"] {
            let target = t(reg);
            let (repo, dns) = kubeadm_repositories(&target);
            for r in airlock_kube::releases() {
                let v = format!("v1.{}.{}", r.minor, r.from_patch);
                let kubeadm = kubeadm_pulls(&repo, Some(&dns), &v);
                assert_eq!(kubeadm, drop_host(&target, &v), "{reg} {v}");
                // Without dns.imageRepository kubeadm would miss CoreDNS: the rule matters.
                let without = kubeadm_pulls(&repo, None, &v);
                assert_ne!(without[6], drop_host(&target, &v)[6]);
            }
        }
        let cfg = kubeadm_config(&t("harbor.lan/k8s"), "v1.28.0").unwrap();
        assert!(cfg.contains("\nimageRepository: harbor.lan/k8s\n"), "{cfg}");
        assert!(
            cfg.contains("  imageRepository: harbor.lan/k8s/coredns\n"),
            "{cfg}"
        );
        assert!(
            cfg.contains("#   harbor.lan/k8s/coredns/coredns:v1.10.1\n"),
            "{cfg}"
        );
    }

    #[test]
    fn hosts_toml_layouts() {
        let target = t("harbor.lan/mirror");
        let keep = hosts_toml("quay.io", &target, NameRule::KeepHost, None, false).unwrap();
        assert!(keep.contains("server = \"https://quay.io\"\n"), "{keep}");
        assert!(
            keep.contains("[host.\"https://harbor.lan/v2/mirror/quay.io\"]\n  capabilities = [\"pull\", \"resolve\"]\n  override_path = true\n"),
            "{keep}"
        );
        let drop = hosts_toml(
            "docker.io",
            &target,
            NameRule::DropHost,
            Some(Path::new("/etc/ssl/harbor-ca.pem")),
            false,
        )
        .unwrap();
        assert!(
            drop.contains("server = \"https://registry-1.docker.io\""),
            "{drop}"
        );
        assert!(
            drop.contains("[host.\"https://harbor.lan/v2/mirror\"]"),
            "{drop}"
        );
        assert!(
            drop.contains("  ca = \"/etc/ssl/harbor-ca.pem\"\n"),
            "{drop}"
        );
        // No path: containerd adds `/v2` itself.
        let root = hosts_toml(
            "ghcr.io",
            &t("127.0.0.1:5000"),
            NameRule::DropHost,
            None,
            true,
        )
        .unwrap();
        assert!(root.contains("[host.\"http://127.0.0.1:5000\"]"), "{root}");
        assert!(!root.contains("override_path"), "{root}");
        // keep-host: old names find images loaded under the new name first, then their own.
        let legacy = hosts_toml("k8s.gcr.io", &target, NameRule::KeepHost, None, false).unwrap();
        let first = legacy.find("mirror/registry.k8s.io\"]").unwrap();
        let second = legacy.find("mirror/k8s.gcr.io\"]").unwrap();
        assert!(first < second, "{legacy}");
        let e = hosts_toml("quay.io", &target, NameRule::Flat, None, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("flat"), "{e}");
    }

    #[test]
    fn registry_flag_is_checked() {
        assert!(registry_target("https://harbor.lan").is_err());
        assert!(registry_target("harbor.lan/UPPER").is_err());
        assert_eq!(t("harbor.lan:8443/k8s/").prefix, "k8s");
    }
}
