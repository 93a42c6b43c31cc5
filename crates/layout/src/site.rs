//! What a registry on the far side already holds (`airlock inventory`): for each repository
//! under a prefix, its tags and the digests of every manifest and blob they reach. Carried
//! back out of the isolated network, it is the base of a delta bundle (`bundle --base`), so
//! the delta is made against what the site really has. A wrong inventory can only make a
//! delta too small, and `load` checks every blob a delta leaves out before it pushes.
//!
//! The file is JSON (`site.inventory.json`); its identity is the sha256 of its exact bytes
//! ([`SiteInventory::digest_of`]), which a delta records in its [`crate::BaseBundle`]. It may
//! be signed like a bundle manifest (`site.inventory.json.sig`, the `cosign sign-blob`
//! format over the exact bytes).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// The only format version of an inventory this crate writes and reads.
pub const SITE_INVENTORY_VERSION: u32 = 1;

/// The value of [`SiteInventory::kind`], which tells an inventory from a bundle manifest.
pub const SITE_INVENTORY_KIND: &str = "airlock-inventory";

/// The contents of `site.inventory.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SiteInventory {
    /// Always [`SITE_INVENTORY_KIND`].
    pub kind: String,
    /// Always [`SITE_INVENTORY_VERSION`].
    pub format_version: u32,
    /// When it was taken, RFC 3339 UTC.
    pub created: String,
    /// The airlock version that took it.
    pub airlock_version: String,
    /// The registry it describes, `host[:port]` (never a credential).
    pub registry: String,
    /// The repository prefix it covers (empty for the whole registry).
    pub prefix: String,
    /// Each repository, sorted by name.
    pub repositories: Vec<SiteRepository>,
}

/// One repository of a [`SiteInventory`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SiteRepository {
    /// Its full name in the registry, prefix included (`k8s/pause`).
    pub name: String,
    /// Each tag and the digest it points at.
    pub tags: BTreeMap<String, Digest>,
    /// Every manifest and index reached from the tags (children and referrers included),
    /// sorted.
    pub manifests: Vec<Digest>,
    /// Every other blob those manifests name (configs and layers), sorted. Nothing was
    /// downloaded to list them.
    pub blobs: Vec<Digest>,
}

impl SiteInventory {
    /// Every digest the site holds, manifests and blobs, in any repository.
    pub fn digests(&self) -> BTreeSet<&Digest> {
        self.repositories
            .iter()
            .flat_map(|r| r.manifests.iter().chain(&r.blobs))
            .collect()
    }

    /// The repositories that hold `digest`.
    pub fn holders<'a>(&'a self, digest: &'a Digest) -> impl Iterator<Item = &'a str> + 'a {
        self.repositories
            .iter()
            .filter(move |r| r.manifests.contains(digest) || r.blobs.contains(digest))
            .map(|r| r.name.as_str())
    }

    /// Pretty JSON with a trailing newline; the same inventory always gives the same bytes.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        let mut out =
            serde_json::to_vec_pretty(self).expect("an inventory always serializes to JSON");
        out.push(b'\n');
        out
    }

    /// The identity of an inventory file: the sha256 of its exact bytes.
    pub fn digest_of(bytes: &[u8]) -> Digest {
        Digest::of_bytes(bytes)
    }

    /// Whether `bytes` look like an inventory rather than a bundle manifest (its `kind`).
    pub fn is_inventory(bytes: &[u8]) -> bool {
        #[derive(Deserialize)]
        struct Probe {
            kind: Option<String>,
        }
        serde_json::from_slice::<Probe>(bytes)
            .is_ok_and(|p| p.kind.as_deref() == Some(SITE_INVENTORY_KIND))
    }

    /// Parses an inventory file, refusing another kind or format version.
    pub fn from_json_bytes(bytes: &[u8]) -> Result<Self, SiteInventoryError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Probe {
            kind: Option<String>,
            format_version: Option<u32>,
        }
        let probe: Probe =
            serde_json::from_slice(bytes).map_err(|source| SiteInventoryError::Json { source })?;
        if probe.kind.as_deref() != Some(SITE_INVENTORY_KIND) {
            return Err(SiteInventoryError::NotAnInventory);
        }
        if let Some(found) = probe.format_version {
            if found != SITE_INVENTORY_VERSION {
                return Err(SiteInventoryError::UnsupportedVersion { found });
            }
        }
        serde_json::from_slice(bytes).map_err(|source| SiteInventoryError::Json { source })
    }
}

/// Why an inventory cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SiteInventoryError {
    /// Not JSON, or not of this form.
    #[error("not a valid airlock inventory")]
    Json {
        /// The parser's error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// JSON, but not an inventory (no `"kind": "airlock-inventory"`).
    #[error(
        "not an airlock inventory (no \"kind\": \"{SITE_INVENTORY_KIND}\"); \
         hint: make one with `airlock inventory registry://HOST/PREFIX -o FILE`"
    )]
    NotAnInventory,
    /// Another format version.
    #[error(
        "inventory format version {found} is not supported (this airlock reads version \
         {SITE_INVENTORY_VERSION}); hint: take the inventory with the same airlock release"
    )]
    UnsupportedVersion {
        /// The version in the file.
        found: u32,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SiteInventory {
        let m = Digest::of_bytes(b"manifest");
        let l = Digest::of_bytes(b"layer");
        SiteInventory {
            kind: SITE_INVENTORY_KIND.into(),
            format_version: SITE_INVENTORY_VERSION,
            created: "2026-12-01T00:00:00Z".into(),
            airlock_version: "0.0.0".into(),
            registry: "harbor.lan".into(),
            prefix: "k8s".into(),
            repositories: vec![SiteRepository {
                name: "k8s/pause".into(),
                tags: BTreeMap::from([("3.9".into(), m.clone())]),
                manifests: vec![m],
                blobs: vec![l],
            }],
        }
    }

    #[test]
    fn round_trips_and_is_told_from_a_manifest() {
        let inv = sample();
        let bytes = inv.to_json_bytes();
        assert!(SiteInventory::is_inventory(&bytes));
        assert_eq!(SiteInventory::from_json_bytes(&bytes).unwrap(), inv);
        assert_eq!(inv.digests().len(), 2);
        let layer = Digest::of_bytes(b"layer");
        assert_eq!(inv.holders(&layer).collect::<Vec<_>>(), ["k8s/pause"]);
        assert!(!SiteInventory::is_inventory(br#"{"formatVersion": 1}"#));
        assert!(matches!(
            SiteInventory::from_json_bytes(br#"{"formatVersion": 1}"#),
            Err(SiteInventoryError::NotAnInventory)
        ));
    }

    #[test]
    fn another_version_is_refused_by_name() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v["formatVersion"] = serde_json::json!(2);
        let err = SiteInventory::from_json_bytes(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(err.to_string().contains("version 2"), "{err}");
    }
}
