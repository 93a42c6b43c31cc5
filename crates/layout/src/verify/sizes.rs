//! How many unique blobs each image of a bundle uses, and their size, from the documents
//! read in its head.

use std::collections::{HashMap, HashSet};

use crate::digest::Digest;
use crate::graph;
use crate::manifest::BundleManifest;
use crate::reader::head::ImageSize;

/// For each image whose documents were all read and walk as the content graph's rules say:
/// its unique blobs (documents, configs and layers) and their size as the manifest lists them.
pub(crate) fn image_sizes(
    m: &BundleManifest,
    docs: &HashMap<Digest, Vec<u8>>,
) -> HashMap<Digest, ImageSize> {
    let sizes: HashMap<&Digest, u64> = m.blobs.iter().map(|b| (&b.digest, b.size)).collect();
    let mut out = HashMap::new();
    for image in &m.images {
        let top = graph::descriptor(&image.media_type, &image.digest, image.size);
        let Ok(walked) = graph::walk(&top, |node| docs.get(&node.digest).ok_or(())) else {
            continue;
        };
        let used: HashSet<&Digest> = walked.children_first().iter().map(|n| &n.digest).collect();
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
