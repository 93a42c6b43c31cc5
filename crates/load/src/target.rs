//! Where `airlock load` puts a bundle: `registry://…` or `containerd://…`, parsed once into a
//! [`LoadTarget`], and [`load`], the one entry point that dispatches on it.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::Serialize;

use crate::containerd::{load_to_containerd, BadTarget, ContainerdOptions, ContainerdReport};
use crate::names::{NameError, Target};
use crate::{load_to_registry, ContainerdTarget, LoadOptions, LoadReport, LoadReporter};

/// The scheme of a registry target.
const REGISTRY: &str = "registry://";
/// The scheme of a containerd target.
const CONTAINERD: &str = "containerd://";

/// A target of `airlock load --to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadTarget {
    /// `registry://HOST[:PORT][/PREFIX]`.
    Registry(Target),
    /// `containerd://[/path/to/containerd.sock][?namespace=NS]`.
    Containerd(ContainerdTarget),
}

/// A `--to` value that is not a load target.
#[derive(Debug, thiserror::Error)]
pub enum BadLoadTarget {
    /// A `registry://` target that cannot be parsed.
    #[error(transparent)]
    Registry(#[from] NameError),
    /// A `containerd://` target that cannot be parsed.
    #[error(transparent)]
    Containerd(#[from] BadTarget),
    /// Neither scheme.
    #[error(
        "`{text}` is not a load target: expected registry://HOST[:PORT][/PREFIX] or \
         containerd://[/path/to/containerd.sock][?namespace=NS]"
    )]
    Scheme {
        /// The value given.
        text: String,
    },
}

impl FromStr for LoadTarget {
    type Err = BadLoadTarget;
    fn from_str(s: &str) -> Result<Self, BadLoadTarget> {
        if s.starts_with(CONTAINERD) {
            Ok(LoadTarget::Containerd(s.parse()?))
        } else if s.starts_with(REGISTRY) {
            Ok(LoadTarget::Registry(s.parse()?))
        } else {
            Err(BadLoadTarget::Scheme {
                text: s.to_string(),
            })
        }
    }
}

impl fmt::Display for LoadTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadTarget::Registry(t) => t.fmt(f),
            LoadTarget::Containerd(t) => t.fmt(f),
        }
    }
}

/// A setting that only one kind of target takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetSetting {
    /// `--platform`: the platform containerd unpacks.
    Platform,
    /// `--snapshotter`, other than containerd's default.
    Snapshotter,
    /// `--no-unpack`.
    NoUnpack,
    /// `--ca-file`: the registry's CA.
    CaFile,
    /// `--plain-http`.
    PlainHttp,
    /// `--username`.
    Username,
    /// `--harbor-create-projects`.
    HarborCreateProjects,
}

impl TargetSetting {
    /// Whether a containerd target takes it (else a registry target does).
    fn for_containerd(self) -> bool {
        matches!(
            self,
            TargetSetting::Platform | TargetSetting::Snapshotter | TargetSetting::NoUnpack
        )
    }
}

/// A setting given for a kind of target that does not take it.
#[derive(Debug, thiserror::Error)]
pub enum WrongTargetSetting {
    /// `--platform`, `--snapshotter` or `--no-unpack` with a registry.
    #[error(
        "--platform, --snapshotter and --no-unpack are for containerd:// targets; a registry \
         keeps every platform and unpacks nothing"
    )]
    ContainerdOnly,
    /// `--ca-file`, `--plain-http` or `--username` with containerd.
    #[error(
        "--ca-file, --plain-http and --username are for registry:// targets; containerd is \
         reached through its socket"
    )]
    RegistryConnection,
    /// `--harbor-create-projects` with containerd.
    #[error("--harbor-create-projects is for registry:// targets")]
    Harbor,
}

impl LoadTarget {
    /// Refuses the settings `given` that this kind of target does not take.
    pub fn check_settings(&self, given: &[TargetSetting]) -> Result<(), WrongTargetSetting> {
        match self {
            LoadTarget::Registry(_) => {
                if given.iter().any(|s| s.for_containerd()) {
                    return Err(WrongTargetSetting::ContainerdOnly);
                }
            }
            LoadTarget::Containerd(_) => {
                use TargetSetting::{CaFile, HarborCreateProjects, PlainHttp, Username};
                // The connection flags are named first, as they always were.
                if given
                    .iter()
                    .any(|s| matches!(s, CaFile | PlainHttp | Username))
                {
                    return Err(WrongTargetSetting::RegistryConnection);
                }
                if given.contains(&HarborCreateProjects) {
                    return Err(WrongTargetSetting::Harbor);
                }
            }
        }
        Ok(())
    }
}

/// A load, into one kind of target.
#[derive(Debug, Clone)]
pub enum LoadJob {
    /// Into a registry.
    Registry(LoadOptions),
    /// Into containerd.
    Containerd(ContainerdOptions),
}

/// What a load did; serialises as the `--json` report of `airlock load` for its target.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum LoadOutcome {
    /// A load into a registry.
    Registry(LoadReport),
    /// A load into containerd.
    Containerd(ContainerdReport),
}

impl LoadOutcome {
    /// Whether every image was loaded (else each failure is in the report).
    pub fn all_loaded(&self) -> bool {
        match self {
            LoadOutcome::Registry(r) => r.failures.is_empty(),
            LoadOutcome::Containerd(r) => r.failures.is_empty(),
        }
    }
}

/// Why a load stopped as a whole, whatever its target.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A load into a registry.
    #[error(transparent)]
    Registry(#[from] crate::Error),
    /// A load into containerd.
    #[error(transparent)]
    Containerd(#[from] crate::ContainerdError),
}

/// Loads a bundle into the target of `job`; see [`load_to_registry`] and
/// [`load_to_containerd`] for what each does and when each fails as a whole.
pub async fn load(job: LoadJob, reporter: Arc<dyn LoadReporter>) -> Result<LoadOutcome, LoadError> {
    Ok(match job {
        LoadJob::Registry(opts) => LoadOutcome::Registry(load_to_registry(opts, reporter).await?),
        LoadJob::Containerd(opts) => {
            LoadOutcome::Containerd(load_to_containerd(opts, reporter).await?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_by_scheme() {
        let r: LoadTarget = "registry://harbor.lan/k8s".parse().unwrap();
        assert!(matches!(&r, LoadTarget::Registry(t) if t.host == "harbor.lan"));
        assert_eq!(r.to_string(), "registry://harbor.lan/k8s");
        let c: LoadTarget = "containerd://?namespace=x".parse().unwrap();
        assert!(matches!(&c, LoadTarget::Containerd(t) if t.namespace == "x"));
        let e = "harbor.lan/k8s".parse::<LoadTarget>().unwrap_err();
        assert!(
            e.to_string().contains("`harbor.lan/k8s`")
                && e.to_string().contains("registry://")
                && e.to_string().contains("containerd://"),
            "{e}"
        );
        use TargetSetting::*;
        assert!(r
            .check_settings(&[CaFile, Username, HarborCreateProjects])
            .is_ok());
        let e = r.check_settings(&[CaFile, Snapshotter]).unwrap_err();
        assert!(matches!(e, WrongTargetSetting::ContainerdOnly), "{e}");
        assert!(c.check_settings(&[Platform, NoUnpack, Snapshotter]).is_ok());
        let e = c
            .check_settings(&[HarborCreateProjects, PlainHttp])
            .unwrap_err();
        assert!(matches!(e, WrongTargetSetting::RegistryConnection), "{e}");
        let e = c.check_settings(&[HarborCreateProjects]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--harbor-create-projects is for registry:// targets"
        );
        // Each scheme keeps its own message.
        let e = "containerd://relative".parse::<LoadTarget>().unwrap_err();
        assert!(e.to_string().contains("must be absolute"), "{e}");
    }
}
