//! Platform filters: `linux/amd64`, `linux/arm64/v8`, or `all`.

use std::fmt;

/// One platform as written in a spec: `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformSpec {
    /// `linux`, `windows`, …
    pub os: String,
    /// `amd64`, `arm64`, …
    pub architecture: String,
    /// `v8`, `v7`, … (none matches every variant)
    pub variant: Option<String>,
}

impl PlatformSpec {
    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Result<PlatformSpec, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        };
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => Ok(PlatformSpec {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: None,
            }),
            [os, arch, variant] if ok(os) && ok(arch) && ok(variant) => Ok(PlatformSpec {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: Some(variant.to_string()),
            }),
            _ => Err(format!(
                "bad platform `{s}`: expected `os/arch[/variant]` such as `linux/amd64` or `linux/arm64/v8`, or `all`"
            )),
        }
    }

    /// Does a manifest for `os`/`architecture`/`variant` satisfy this platform?
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        if self.os != os || self.architecture != architecture {
            return false;
        }
        match &self.variant {
            None => true,
            // arm64 images usually carry no variant; "v8" is the only arm64 variant in use.
            Some(want) => match variant {
                Some(v) => v == want,
                None => architecture == "arm64" && want == "v8",
            },
        }
    }
}

impl fmt::Display for PlatformSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Which platforms of a multi-platform image to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlatformFilter {
    /// Keep the index as it is.
    All,
    /// Keep only these.
    Only(Vec<PlatformSpec>),
}

impl PlatformFilter {
    /// Parses a spec's `platforms` list; `[all]` (alone) keeps everything.
    pub fn parse_list(list: &[String]) -> Result<PlatformFilter, String> {
        if list.iter().any(|p| p == "all") {
            if list.len() > 1 {
                return Err("`all` cannot be combined with other platforms".to_string());
            }
            return Ok(PlatformFilter::All);
        }
        if list.is_empty() {
            return Err("`platforms` is empty: name at least one, or `all`".to_string());
        }
        let mut out = Vec::new();
        for p in list {
            let spec = PlatformSpec::parse(p)?;
            if !out.contains(&spec) {
                out.push(spec);
            }
        }
        Ok(PlatformFilter::Only(out))
    }

    /// Does this filter keep a manifest of that platform?
    pub fn keeps(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        match self {
            PlatformFilter::All => true,
            PlatformFilter::Only(list) => list.iter().any(|p| p.matches(os, architecture, variant)),
        }
    }
}

impl fmt::Display for PlatformFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlatformFilter::All => f.write_str("all"),
            PlatformFilter::Only(list) => {
                let names: Vec<String> = list.iter().map(|p| p.to_string()).collect();
                f.write_str(&names.join(", "))
            }
        }
    }
}

/// Formats `os/arch[/variant]`.
pub fn platform_string(os: &str, architecture: &str, variant: Option<&str>) -> String {
    match variant {
        Some(v) if !v.is_empty() => format!("{os}/{architecture}/{v}"),
        _ => format!("{os}/{architecture}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_match() {
        let f = PlatformFilter::parse_list(&["linux/amd64".into(), "linux/arm64".into()]).unwrap();
        assert!(f.keeps("linux", "amd64", None));
        assert!(f.keeps("linux", "arm64", Some("v8")));
        assert!(!f.keeps("linux", "arm", Some("v7")));
        assert!(!f.keeps("unknown", "unknown", None));
        let v8 = PlatformFilter::parse_list(&["linux/arm64/v8".into()]).unwrap();
        assert!(v8.keeps("linux", "arm64", None));
        assert!(v8.keeps("linux", "arm64", Some("v8")));
        assert!(!v8.keeps("linux", "amd64", None));
        assert_eq!(
            PlatformFilter::parse_list(&["all".into()]).unwrap(),
            PlatformFilter::All
        );
        assert!(PlatformFilter::parse_list(&["all".into(), "linux/amd64".into()]).is_err());
        assert!(PlatformFilter::parse_list(&["amd64".into()]).is_err());
        assert!(PlatformFilter::parse_list(&[]).is_err());
    }
}
