//! Platform filters: `linux/amd64`, `linux/arm64/v8`, or `all`.

use std::fmt;

use airlock_layout::{Platform, PlatformError};

/// Which platforms of a multi-platform image to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlatformFilter {
    /// Keep the index as it is.
    All,
    /// Keep only these (matched by [`Platform::matches`]).
    Only(Vec<Platform>),
}

/// A spec's `platforms` list that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// An entry is not `os/arch[/variant]`.
    #[error("{0}, or `all`")]
    Platform(#[from] PlatformError),
    /// `all` with other entries.
    #[error("`all` cannot be combined with other platforms")]
    AllWithOthers,
    /// No entry.
    #[error("`platforms` is empty: name at least one, or `all`")]
    Empty,
}

impl PlatformFilter {
    /// Parses a spec's `platforms` list; `[all]` (alone) keeps everything.
    pub fn parse_list(list: &[String]) -> Result<PlatformFilter, FilterError> {
        if list.iter().any(|p| p == "all") {
            if list.len() > 1 {
                return Err(FilterError::AllWithOthers);
            }
            return Ok(PlatformFilter::All);
        }
        if list.is_empty() {
            return Err(FilterError::Empty);
        }
        let mut out = Vec::new();
        for p in list {
            let spec = Platform::parse(p)?;
            if !out.contains(&spec) {
                out.push(spec);
            }
        }
        Ok(PlatformFilter::Only(out))
    }

    /// Does this filter keep a manifest of that platform?
    pub fn keeps(&self, platform: &Platform) -> bool {
        match self {
            PlatformFilter::All => true,
            PlatformFilter::Only(list) => list.iter().any(|p| p.matches(platform)),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn p(os: &str, arch: &str, variant: Option<&str>) -> Platform {
        Platform {
            variant: variant.map(str::to_string),
            ..Platform::new(os, arch)
        }
    }

    #[test]
    fn parse_and_match() {
        let f = PlatformFilter::parse_list(&["linux/amd64".into(), "linux/arm64".into()]).unwrap();
        assert!(f.keeps(&p("linux", "amd64", None)));
        assert!(f.keeps(&p("linux", "arm64", Some("v8"))));
        assert!(!f.keeps(&p("linux", "arm", Some("v7"))));
        assert!(!f.keeps(&p("unknown", "unknown", None)));
        let v8 = PlatformFilter::parse_list(&["linux/arm64/v8".into()]).unwrap();
        assert!(v8.keeps(&p("linux", "arm64", None)));
        assert!(v8.keeps(&p("linux", "arm64", Some("v8"))));
        assert!(!v8.keeps(&p("linux", "amd64", None)));
        assert_eq!(
            PlatformFilter::parse_list(&["all".into()]).unwrap(),
            PlatformFilter::All
        );
        assert!(PlatformFilter::parse_list(&["all".into(), "linux/amd64".into()]).is_err());
        assert!(PlatformFilter::parse_list(&["amd64".into()]).is_err());
        assert!(PlatformFilter::parse_list(&[]).is_err());
    }

    #[test]
    fn messages_are_as_before() {
        assert_eq!(
            PlatformFilter::parse_list(&["amd64".into()]).unwrap_err().to_string(),
            "bad platform `amd64`: expected `os/arch[/variant]` such as `linux/amd64` or `linux/arm64/v8`, or `all`"
        );
    }
}
