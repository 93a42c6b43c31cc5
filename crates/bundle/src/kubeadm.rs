//! Asking a real kubeadm for a release's images, for releases the release data
//! ([`crate::kubernetes`]) does not know: `PATH config images list --kubernetes-version V`.
//!
//! kubeadm prints the control-plane images at the version asked for and pause, etcd and
//! CoreDNS at the pins of its own release, so the binary should be the kubeadm of that release.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use airlock_registry::Reference;

use crate::kubernetes::{Addon, Version};

/// kubeadm could not be run, failed, or printed something that is not an image list.
#[derive(Debug, thiserror::Error)]
pub enum KubeadmError {
    /// The executable could not be started.
    #[error("cannot run kubeadm `{}`\n  hint: pass the path of a kubeadm executable to --kubeadm", path.display())]
    Spawn {
        /// The executable.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It exited with a failure.
    #[error(
        "`{} config images list --kubernetes-version {version}` failed ({status}){}",
        path.display(),
        stderr_text(stderr)
    )]
    Failed {
        /// The executable.
        path: PathBuf,
        /// The version asked for.
        version: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it wrote on stderr (trimmed, at most 4 KiB).
        stderr: String,
    },
    /// It printed no image.
    #[error(
        "`{} config images list --kubernetes-version {version}` printed no image",
        path.display()
    )]
    Empty {
        /// The executable.
        path: PathBuf,
        /// The version asked for.
        version: String,
    },
    /// A line of its output is not an image reference with a tag.
    #[error(
        "`{} config images list --kubernetes-version {version}`, line {line}: `{text}` is not an image reference with a tag",
        path.display()
    )]
    Malformed {
        /// The executable.
        path: PathBuf,
        /// The version asked for.
        version: String,
        /// 1-based line of its output.
        line: usize,
        /// The line.
        text: String,
    },
}

fn stderr_text(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}

/// The images `kubeadm config images list --kubernetes-version VERSION` prints, one a line, in
/// its order; `addons` (`None`: all) narrows pause, etcd and coredns as for
/// [`crate::kubernetes::images`]. The executable runs directly (no shell), with no stdin.
pub fn kubeadm_images(
    kubeadm: &Path,
    version: &Version,
    addons: Option<&[Addon]>,
) -> Result<Vec<String>, KubeadmError> {
    let v = version.to_string();
    let out = Command::new(kubeadm)
        .args(["config", "images", "list", "--kubernetes-version", &v])
        .stdin(Stdio::null())
        .output()
        .map_err(|source| KubeadmError::Spawn {
            path: kubeadm.to_path_buf(),
            source,
        })?;
    if !out.status.success() {
        let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if stderr.len() > 4096 {
            let mut cut = 4096;
            while !stderr.is_char_boundary(cut) {
                cut -= 1;
            }
            stderr.truncate(cut);
            stderr.push('…');
        }
        return Err(KubeadmError::Failed {
            path: kubeadm.to_path_buf(),
            version: v,
            status: out.status,
            stderr,
        });
    }
    parse_list(kubeadm, &v, &String::from_utf8_lossy(&out.stdout), addons)
}

/// One reference a line (blank lines skipped), each with a tag.
fn parse_list(
    kubeadm: &Path,
    version: &str,
    text: &str,
    addons: Option<&[Addon]>,
) -> Result<Vec<String>, KubeadmError> {
    let mut images = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let malformed = || KubeadmError::Malformed {
            path: kubeadm.to_path_buf(),
            version: version.to_string(),
            line: i + 1,
            text: line.to_string(),
        };
        if line.contains(char::is_whitespace) {
            return Err(malformed());
        }
        let r = Reference::parse(line).map_err(|_| malformed())?;
        // `Reference::parse` reads a bare name as `:latest`; kubeadm always prints the tag.
        if r.digest.is_some() || !line.rsplit('/').next().is_some_and(|l| l.contains(':')) {
            return Err(malformed());
        }
        let addon = match r.repository.rsplit('/').next() {
            Some("pause") => Some(Addon::Pause),
            Some("etcd") => Some(Addon::Etcd),
            Some("coredns") => Some(Addon::CoreDns),
            _ => None,
        };
        let wanted = match (addon, addons) {
            (Some(a), Some(list)) => list.contains(&a),
            _ => true,
        };
        if wanted {
            images.push(line.to_string());
        }
    }
    if images.is_empty() && !text.lines().any(|l| !l.trim().is_empty()) {
        return Err(KubeadmError::Empty {
            path: kubeadm.to_path_buf(),
            version: version.to_string(),
        });
    }
    Ok(images)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, body: &str) -> PathBuf {
        let p = dir.join("kubeadm");
        // Written under another name and renamed: a script still open for writing cannot be
        // executed (ETXTBSY) while other tests fork.
        let tmp = dir.join("kubeadm.tmp");
        std::fs::write(&tmp, format!("#!/bin/sh\n{body}")).unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::rename(&tmp, &p).unwrap();
        p
    }

    const V: Version = Version {
        major: 1,
        minor: 38,
        patch: 1,
    };

    #[test]
    fn a_kubeadm_that_prints_a_list_is_used() {
        let dir = tempfile::tempdir().unwrap();
        // The arguments are checked by the stand-in: it prints only for the expected ones.
        let k = script(
            dir.path(),
            "[ \"$*\" = 'config images list --kubernetes-version v1.38.1' ] || { echo \"bad args: $*\" >&2; exit 3; }\n\
             echo W1201 a warning >&2\n\
             for c in kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do echo registry.k8s.io/$c:v1.38.1; done\n\
             echo registry.k8s.io/pause:3.10.2\necho\necho registry.k8s.io/etcd:3.7.1-0\necho registry.k8s.io/coredns/coredns:v1.14.7\n",
        );
        let all = kubeadm_images(&k, &V, None).unwrap();
        assert_eq!(all.len(), 7, "{all:?}");
        assert_eq!(all[0], "registry.k8s.io/kube-apiserver:v1.38.1");
        assert_eq!(all[6], "registry.k8s.io/coredns/coredns:v1.14.7");
        let some = kubeadm_images(&k, &V, Some(&[Addon::Etcd])).unwrap();
        assert_eq!(some.len(), 5, "{some:?}");
        assert_eq!(some[4], "registry.k8s.io/etcd:3.7.1-0");
    }

    #[test]
    fn a_failing_empty_or_malformed_kubeadm_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let k = script(
            dir.path(),
            "echo 'unknown flag: --kubernetes-version' >&2\nexit 1\n",
        );
        let e = kubeadm_images(&k, &V, None).unwrap_err();
        assert!(matches!(e, KubeadmError::Failed { .. }), "{e}");
        let e = e.to_string();
        assert!(e.contains("unknown flag: --kubernetes-version"), "{e}");
        assert!(e.contains("--kubernetes-version v1.38.1` failed"), "{e}");

        let k = script(dir.path(), "echo\n");
        let e = kubeadm_images(&k, &V, None).unwrap_err();
        assert!(matches!(e, KubeadmError::Empty { .. }), "{e}");

        let k = script(
            dir.path(),
            "echo registry.k8s.io/kube-apiserver:v1.38.1\necho 'this version is not supported'\n",
        );
        let e = kubeadm_images(&k, &V, None).unwrap_err().to_string();
        assert!(e.contains("line 2: `this version is not supported`"), "{e}");
        let k = script(dir.path(), "echo registry.k8s.io/kube-apiserver\n");
        let e = kubeadm_images(&k, &V, None).unwrap_err().to_string();
        assert!(
            e.contains("line 1: `registry.k8s.io/kube-apiserver`"),
            "{e}"
        );

        let e = kubeadm_images(&dir.path().join("missing"), &V, None).unwrap_err();
        assert!(matches!(e, KubeadmError::Spawn { .. }), "{e}");
    }
}
