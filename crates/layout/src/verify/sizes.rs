//! How many unique blobs each image of a bundle uses, and their size, from the documents
//! read in its head.

use std::collections::HashMap;

use serde::Deserialize;

use crate::digest::Digest;
use crate::manifest::BundleManifest;
use crate::reader::head::ImageSize;

/// For each image whose manifests were all read: its unique blobs and their size.
pub(crate) fn image_sizes(
    m: &BundleManifest,
    docs: &HashMap<Digest, Vec<u8>>,
) -> HashMap<Digest, ImageSize> {
    #[derive(Deserialize)]
    struct Doc {
        #[serde(default)]
        manifests: Vec<Ref>,
        config: Option<Ref>,
        #[serde(default)]
        layers: Vec<Ref>,
    }
    #[derive(Deserialize)]
    struct Ref {
        digest: Digest,
    }
    let sizes: HashMap<&Digest, u64> = m.blobs.iter().map(|b| (&b.digest, b.size)).collect();
    let mut out = HashMap::new();
    'images: for image in &m.images {
        let mut used = std::collections::HashSet::new();
        let mut todo = vec![(image.digest.clone(), 0)];
        while let Some((d, depth)) = todo.pop() {
            if !used.insert(d.clone()) || depth > 2 {
                continue;
            }
            let Some(doc) = docs
                .get(&d)
                .and_then(|b| serde_json::from_slice::<Doc>(b).ok())
            else {
                continue 'images;
            };
            for r in doc.manifests {
                todo.push((r.digest, depth + 1));
            }
            for r in doc.config.into_iter().chain(doc.layers) {
                used.insert(r.digest);
            }
        }
        out.insert(
            image.digest.clone(),
            ImageSize {
                blobs: used.len() as u64,
                // Saturating: the sizes are not checked here (nothing in the head is).
                bytes: used
                    .iter()
                    .filter_map(|d| sizes.get(d))
                    .fold(0u64, |sum, &s| sum.saturating_add(s)),
            },
        );
    }
    out
}
