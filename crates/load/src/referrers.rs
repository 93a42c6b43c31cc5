//! The referrers tag schema kept at a registry that has no referrers API (OCI distribution
//! 1.1, "Referrers tag schema"): the index under the tag `sha256-<hex>` of a subject lists the
//! manifests that name it. `load` and `sync` both keep it when they push a referrer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use airlock_layout::{media, Digest};
use airlock_registry::Client;
use oci_spec::image::Descriptor;

use crate::error::ArtifactError;

/// Held while one referrers tag index is read, changed and written back.
type IndexLock = Arc<tokio::sync::Mutex<()>>;

/// The referrers tag indexes one run writes, one lock each (repository, subject): images of
/// one repository are pushed at once, and two of them may share a subject (a platform
/// manifest, or one digest under two tags); each read-modify-write of an index runs alone,
/// so no entry is lost.
#[derive(Debug, Default)]
pub struct TagIndexes {
    locks: Mutex<HashMap<(String, Digest), IndexLock>>,
}

impl TagIndexes {
    /// Adds `entry` to the referrers tag index of `subject` in `host/repo`: the index there
    /// is read and written back with the descriptor added if absent, every entry and field
    /// already there kept as it was. `Ok(false)` when it was listed already (nothing sent
    /// but the read).
    pub async fn add(
        &self,
        client: &Client,
        host: &str,
        repo: &str,
        subject: &Digest,
        entry: &Descriptor,
    ) -> Result<bool, ArtifactError> {
        let tag = media::referrers_tag(subject);
        let reference = format!("{host}/{repo}:{tag}");
        let manifest_error = |source| ArtifactError::Manifest {
            reference: reference.clone(),
            source: Box::new(source),
        };
        let index_error = |problem| ArtifactError::ReferrersIndex {
            reference: reference.clone(),
            problem,
        };
        let entry = serde_json::to_value(entry).expect("a descriptor serialises");
        let lock = self
            .locks
            .lock()
            .expect("referrer index locks")
            .entry((repo.to_string(), subject.clone()))
            .or_default()
            .clone();
        let _alone = lock.lock().await;
        let mut index = match client.get_manifest(host, repo, &tag).await {
            Ok(found) => {
                // Read as JSON rather than as an `ImageIndex`: fields this version does not
                // know, in the index or its entries, are written back untouched.
                let index: serde_json::Value =
                    serde_json::from_slice(&found.bytes).map_err(index_error)?;
                serde_json::from_value::<oci_spec::image::ImageIndex>(index.clone())
                    .map_err(index_error)?;
                index
            }
            Err(e) if e.is_not_found() => serde_json::json!({
                "schemaVersion": 2,
                "mediaType": media::OCI_INDEX,
                "manifests": [],
            }),
            Err(e) => return Err(manifest_error(e)),
        };
        let manifests = index["manifests"]
            .as_array_mut()
            .expect("an OCI index has `manifests`");
        if manifests.iter().any(|d| d["digest"] == entry["digest"]) {
            return Ok(false);
        }
        manifests.push(entry);
        let bytes = serde_json::to_vec(&index).expect("JSON serialises");
        client
            .put_manifest(host, repo, &tag, media::OCI_INDEX, bytes.into())
            .await
            .map_err(manifest_error)?;
        Ok(true)
    }
}
