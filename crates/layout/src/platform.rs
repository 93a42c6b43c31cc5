//! The platform an image runs on (`linux/amd64`, `linux/arm64/v8`), and the one rule by which
//! a wanted platform matches what an index entry or a config says.

use std::fmt;

/// An `os/arch[/variant]` platform, as a spec or a flag writes it and as an index entry or an
/// image config states it.
///
/// Matching ([`Platform::matches`], a wanted platform against what content offers) compares
/// the OS and the architecture exactly; then a wanted platform without a variant takes every
/// variant (`linux/arm` keeps `arm/v6` and `arm/v7`, `linux/amd64` keeps `amd64/v3`), and a
/// wanted variant must equal the offered one after normalisation, the rule containerd
/// applies ([`Platform::same_as`]):
///
/// - `arm64` without a variant is `arm64/v8` (arm64 images mostly leave it out);
/// - `arm` without a variant is `arm/v7`;
/// - `amd64/v1` is `amd64` (v1 is the baseline every amd64 CPU runs);
/// - for every other architecture no variant and an empty variant are the same, and a
///   variant matches only itself.
///
/// Where one manifest of an index must be chosen (unpacking into containerd), an entry that
/// is the [`same_as`](Platform::same_as) the wanted platform wins over one that only matches.
///
/// Display writes `os/arch[/variant]` as given, not normalised.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    /// `linux`, `windows`, …
    pub os: String,
    /// `amd64`, `arm64`, … (Go's `GOARCH` names)
    pub architecture: String,
    /// `v8`, `v7`, …
    pub variant: Option<String>,
}

/// A platform string that is not `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad platform `{input}`: expected `os/arch[/variant]` such as `linux/amd64` or `linux/arm64/v8`"
)]
pub struct PlatformError {
    /// What was given.
    pub input: String,
}

impl Platform {
    /// A platform without a variant.
    pub fn new(os: impl Into<String>, architecture: impl Into<String>) -> Platform {
        Platform {
            os: os.into(),
            architecture: architecture.into(),
            variant: None,
        }
    }

    /// Parses `os/arch[/variant]`: two or three non-empty parts of ASCII letters, digits,
    /// `_` and `.`.
    pub fn parse(s: &str) -> Result<Platform, PlatformError> {
        let ok = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        };
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => Ok(Platform::new(*os, *arch)),
            [os, arch, variant] if ok(os) && ok(arch) && ok(variant) => Ok(Platform {
                variant: Some(variant.to_string()),
                ..Platform::new(*os, *arch)
            }),
            _ => Err(PlatformError {
                input: s.to_owned(),
            }),
        }
    }

    /// The platform of an index entry.
    pub fn from_oci(p: &oci_spec::image::Platform) -> Platform {
        Platform {
            os: p.os().to_string(),
            architecture: p.architecture().to_string(),
            variant: p.variant().clone().filter(|v| !v.is_empty()),
        }
    }

    /// The platform an image config states (`os`, `architecture`, `variant`), if it names an
    /// OS and an architecture; any other config (an artifact's, or not JSON) has none.
    pub fn from_config(config: &[u8]) -> Option<Platform> {
        #[derive(serde::Deserialize)]
        struct Cfg {
            os: Option<String>,
            architecture: Option<String>,
            variant: Option<String>,
        }
        let Cfg {
            os: Some(os),
            architecture: Some(architecture),
            variant,
        } = serde_json::from_slice::<Cfg>(config).ok()?
        else {
            return None;
        };
        Some(Platform {
            os,
            architecture,
            variant: variant.filter(|v| !v.is_empty()),
        })
    }

    /// This machine, in OCI's words (always `linux`: images are loaded for Linux nodes).
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform {
            os: "linux".into(),
            architecture: arch.into(),
            variant: (arch == "arm64").then(|| "v8".to_string()),
        }
    }

    /// The variant after normalisation (see the type's documentation).
    fn normalised_variant(&self) -> Option<&str> {
        let v = self.variant.as_deref().filter(|v| !v.is_empty());
        match (self.architecture.as_str(), v) {
            ("arm64", None) => Some("v8"),
            ("arm", None) => Some("v7"),
            ("amd64", Some("v1")) => None,
            (_, v) => v,
        }
    }

    /// Whether content for `offered` satisfies this wanted platform (the rule of the type's
    /// documentation: no wanted variant takes every variant).
    pub fn matches(&self, offered: &Platform) -> bool {
        let any_variant = self.variant.as_deref().is_none_or(str::is_empty);
        self.os == offered.os
            && self.architecture == offered.architecture
            && (any_variant || self.normalised_variant() == offered.normalised_variant())
    }

    /// Whether both name the same platform once variants are normalised (symmetric).
    pub fn same_as(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && self.normalised_variant() == other.normalised_variant()
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(v) if !v.is_empty() => write!(f, "/{v}"),
            _ => Ok(()),
        }
    }
}

impl std::str::FromStr for Platform {
    type Err = PlatformError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    #[test]
    fn the_matching_rule() {
        assert!(p("linux/arm64").matches(&p("linux/arm64/v8")));
        assert!(p("linux/arm64/v8").matches(&p("linux/arm64")));
        assert!(p("linux/arm").matches(&p("linux/arm/v7")));
        // No wanted variant takes every variant, as a spec's `linux/arm` always did.
        assert!(p("linux/arm").matches(&p("linux/arm/v6")));
        assert!(p("linux/amd64").matches(&p("linux/amd64/v3")));
        assert!(!p("linux/arm/v7").matches(&p("linux/arm/v6")));
        assert!(p("linux/arm/v7").matches(&p("linux/arm")));
        assert!(!p("linux/amd64/v3").matches(&p("linux/amd64")));
        assert!(p("linux/amd64/v1").matches(&p("linux/amd64")));
        // The exact rule, for choosing one entry of an index.
        assert!(p("linux/arm64").same_as(&p("linux/arm64/v8")));
        assert!(p("linux/arm").same_as(&p("linux/arm/v7")));
        assert!(!p("linux/arm").same_as(&p("linux/arm/v6")));
        assert!(p("linux/amd64").same_as(&p("linux/amd64/v1")));
        assert!(!p("linux/amd64").same_as(&p("linux/amd64/v3")));
        assert!(!p("linux/amd64").matches(&p("linux/arm64")));
        assert!(!p("linux/amd64").matches(&p("windows/amd64")));
        assert!(!p("unknown/unknown").matches(&p("linux/amd64")));
    }

    #[test]
    fn parse_display_and_refusals() {
        assert_eq!(p("linux/arm64/v8").to_string(), "linux/arm64/v8");
        assert_eq!(p("linux/amd64").to_string(), "linux/amd64");
        for bad in [
            "linux",
            "linux/",
            "/amd64",
            "linux/amd64/v8/x",
            "linux/am d64",
            "",
        ] {
            let e = Platform::parse(bad).unwrap_err();
            assert!(e.to_string().contains(&format!("`{bad}`")), "{e}");
        }
    }

    #[test]
    fn from_a_config_and_an_index_entry() {
        let c = br#"{"architecture":"arm64","os":"linux","variant":"v8","rootfs":{}}"#;
        assert_eq!(Platform::from_config(c), Some(p("linux/arm64/v8")));
        assert_eq!(Platform::from_config(br#"{"os":"linux"}"#), None);
        assert_eq!(Platform::from_config(b"not json"), None);
        let oci: oci_spec::image::Platform =
            serde_json::from_str(r#"{"architecture":"arm","os":"linux","variant":"v7"}"#).unwrap();
        assert_eq!(Platform::from_oci(&oci), p("linux/arm/v7"));
    }
}
