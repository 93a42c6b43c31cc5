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

/// What filtering an index by platform gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilteredIndex {
    /// Every entry is kept: the index is used as it is, under its own digest.
    Unchanged,
    /// Some entries are dropped: the index rewritten with only the kept ones, every other
    /// field of the upstream document kept as it was. `bundle` and `sync` both write exactly
    /// these bytes, so a bundle's load and a sync of one spec agree on the digest.
    Rewritten {
        /// The new index.
        bytes: bytes::Bytes,
        /// Its digest.
        digest: airlock_layout::Digest,
    },
    /// No entry is kept; the platforms the index has.
    NothingKept {
        /// `os/arch[/variant]` of each entry that has a platform.
        available: Vec<String>,
    },
}

/// Keeps the entries of the index `bytes` that `filter` wants (an entry without a platform
/// only with `all`).
pub fn filter_index(
    bytes: &[u8],
    filter: &PlatformFilter,
) -> Result<FilteredIndex, serde_json::Error> {
    let index: oci_spec::image::ImageIndex = serde_json::from_slice(bytes)?;
    let all = index.manifests();
    let kept: Vec<&oci_spec::image::Descriptor> = all
        .iter()
        .filter(|d| match d.platform() {
            Some(p) => filter.keeps(&Platform::from_oci(p)),
            None => *filter == PlatformFilter::All,
        })
        .collect();
    if kept.is_empty() {
        let available = all
            .iter()
            .filter_map(|d| d.platform().as_ref())
            .map(|p| Platform::from_oci(p).to_string())
            .collect();
        return Ok(FilteredIndex::NothingKept { available });
    }
    if kept.len() == all.len() {
        return Ok(FilteredIndex::Unchanged);
    }
    let mut value: serde_json::Value = serde_json::from_slice(bytes)?;
    let keep: std::collections::HashSet<String> =
        kept.iter().map(|d| d.digest().to_string()).collect();
    if let Some(serde_json::Value::Array(list)) = value.get_mut("manifests") {
        list.retain(|m| {
            m.get("digest")
                .and_then(|d| d.as_str())
                .is_some_and(|d| keep.contains(d))
        });
    }
    let new_bytes = bytes::Bytes::from(serde_json::to_vec(&value).expect("index serialises"));
    let digest = airlock_layout::Digest::of_bytes(&new_bytes);
    Ok(FilteredIndex::Rewritten {
        bytes: new_bytes,
        digest,
    })
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
    #[test]
    fn filter_index_keeps_every_other_field() {
        let d = |n: u8| format!("sha256:{}", format!("{n:02x}").repeat(32));
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":1,"platform":{{"os":"linux","architecture":"amd64"}}}},{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":1,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}}],"annotations":{{"x":"y"}}}}"#,
            d(1),
            d(2)
        );
        let amd64 = PlatformFilter::parse_list(&["linux/amd64".into()]).unwrap();
        let FilteredIndex::Rewritten { bytes, digest } =
            filter_index(index.as_bytes(), &amd64).unwrap()
        else {
            panic!("not rewritten")
        };
        assert_eq!(digest, airlock_layout::Digest::of_bytes(&bytes));
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["manifests"].as_array().unwrap().len(), 1);
        assert_eq!(v["annotations"]["x"], "y");
        assert_eq!(
            filter_index(index.as_bytes(), &PlatformFilter::All).unwrap(),
            FilteredIndex::Unchanged
        );
        let s390x = PlatformFilter::parse_list(&["linux/s390x".into()]).unwrap();
        assert_eq!(
            filter_index(index.as_bytes(), &s390x).unwrap(),
            FilteredIndex::NothingKept {
                available: vec!["linux/amd64".into(), "linux/arm64/v8".into()]
            }
        );
    }
}
