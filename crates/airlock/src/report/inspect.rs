//! What `airlock inspect` prints: the inventory as a table, or as the JSON document of
//! `docs/inspect.md` (its field names are stable).

use std::path::Path;

use airlock_layout::{Digest, Inventory};
use serde_json::json;

use super::human_bytes;

/// Version of the `--json` document (docs/inspect.md).
const INSPECT_VERSION: u32 = 1;

/// The `--json` document of the inventory of `path`.
pub fn to_json(path: &Path, inv: &Inventory) -> serde_json::Value {
    let m = &inv.manifest;
    let images: Vec<serde_json::Value> = m
        .images
        .iter()
        .map(|i| {
            let size = inv.sizes.get(&i.digest);
            json!({
                "reference": i.reference,
                "name": i.name,
                "tags": i.tags,
                "digest": i.digest,
                "mediaType": i.media_type,
                "source": i.source,
                "platforms": i.platforms,
                "originalDigest": i.original_digest,
                "blobs": size.map(|s| s.blobs),
                "size": size.map(|s| s.bytes),
            })
        })
        .collect();
    json!({
        "inspectVersion": INSPECT_VERSION,
        "file": path,
        "input": inv.source.as_str(),
        "signature": {"present": inv.signature_present, "verified": false},
        "formatVersion": m.format_version,
        "created": m.created,
        "airlockVersion": m.airlock_version,
        "spec": m.spec,
        "base": m.base,
        "images": images,
        "totals": m.totals,
    })
}

fn short(d: &Digest) -> String {
    format!("sha256:{}", &d.hex()[..12])
}

/// The inventory for people: one row per image, then the totals.
pub fn table(inv: &Inventory) -> String {
    let m = &inv.manifest;
    let mut rows = vec![[
        "REFERENCE".to_owned(),
        "DIGEST".to_owned(),
        "SOURCE".to_owned(),
        "PLATFORMS".to_owned(),
        "SIZE".to_owned(),
    ]];
    for i in &m.images {
        let platforms = if i.platforms.is_empty() {
            "-".to_owned()
        } else {
            i.platforms.join(",")
        };
        let size = inv
            .sizes
            .get(&i.digest)
            .map_or("-".to_owned(), |s| human_bytes(s.bytes));
        rows.push([
            i.reference.clone(),
            short(&i.digest),
            i.source.clone(),
            platforms,
            size,
        ]);
    }
    let mut widths = [0; 5];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (k, (w, c)) in widths.iter().zip(r).enumerate() {
            if k + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&format!(
        "{} images, {} unique blobs, {}\n",
        m.totals.images,
        m.totals.blobs,
        human_bytes(m.totals.bytes)
    ));
    out.push_str(&format!(
        "spec {} (sha256 {}), created {} by airlock {}\n",
        m.spec.name,
        &m.spec.sha256[..m.spec.sha256.len().min(12)],
        m.created,
        m.airlock_version
    ));
    out.push_str(if inv.signature_present {
        "signature: present, NOT verified here (run `airlock verify BUNDLE --key SIGNER.pub`)\n"
    } else {
        "signature: none (the bundle is not signed)\n"
    });
    out
}
