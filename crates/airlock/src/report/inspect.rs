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
        .filter(|i| i.is_image())
        .map(|i| {
            let size = inv.sizes.get(&i.digest);
            let mut image = json!({
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
            });
            // Present only when the image carries some (format 2), so the document of a
            // bundle without artifacts is unchanged.
            if !i.artifacts.is_empty() {
                image["artifacts"] = i
                    .artifacts
                    .iter()
                    .map(|a| {
                        json!({
                            "kind": a.kind,
                            "subject": a.subject,
                            "digest": a.digest,
                            "mediaType": a.media_type,
                            "size": a.size,
                            "artifactType": a.artifact_type,
                            "tag": a.tag,
                            "certificate": a.certificate,
                            "verified": a.verified,
                        })
                    })
                    .collect();
            }
            image
        })
        .collect();
    let mut doc = json!({
        "inspectVersion": INSPECT_VERSION,
        "file": path,
        "input": inv.source.as_str(),
        "signature": {"present": inv.signature_present, "verified": false},
        "formatVersion": m.format_version,
        "created": m.created,
        "airlockVersion": m.airlock_version,
        "spec": m.spec,
        "bases": m.bases,
        "images": images,
        "totals": m.totals,
    });
    // Present only when the bundle carries some (format 3), so the document of a bundle of
    // images is unchanged.
    let charts: Vec<serde_json::Value> = m
        .images
        .iter()
        .filter_map(|i| i.chart().map(|c| (i, c)))
        .map(|(i, c)| {
            json!({
                "reference": i.reference,
                "name": c.name,
                "version": c.version,
                "appVersion": c.app_version,
                "origin": c.origin,
                "source": i.source,
                "digest": i.digest,
                "archive": c.archive,
                "repositoryDigest": c.repository_digest,
                "provenance": c.provenance,
                "images": c.images,
            })
        })
        .collect();
    let files: Vec<serde_json::Value> = m
        .images
        .iter()
        .filter_map(|i| i.file().map(|f| (i, f)))
        .map(|(i, f)| {
            json!({
                "reference": i.reference,
                "name": f.name,
                "size": f.size,
                "sha256": f.digest.hex(),
                "digest": f.digest,
                "manifest": i.digest,
                "mode": format!("{:04o}", f.mode),
                "url": f.url,
                "checksum": f.checksum,
            })
        })
        .collect();
    if m.is_delta() {
        doc["delta"] = delta_json(m);
    }
    if !charts.is_empty() {
        doc["charts"] = charts.into();
    }
    if !files.is_empty() {
        doc["files"] = files.into();
    }
    doc
}

fn short(d: &Digest) -> String {
    format!("sha256:{}", &d.hex()[..12])
}

/// How an artifact's subject is shown: `image` for the image itself, else a short digest (a
/// platform manifest, another artifact).
fn subject_text(image: &airlock_layout::ImageRecord, subject: &Digest) -> String {
    if *subject == image.digest {
        "image".to_owned()
    } else {
        short(subject)
    }
}

/// The artifact rows under an image: kind, tag or "referrer", subject, artifact type,
/// certificate, verified.
fn artifact_lines(image: &airlock_layout::ImageRecord) -> Vec<String> {
    image
        .artifacts
        .iter()
        .map(|a| {
            let mut line = format!(
                "  {} {} on {}",
                a.kind,
                a.tag.as_deref().unwrap_or("referrer"),
                subject_text(image, &a.subject)
            );
            if let Some(t) = &a.artifact_type {
                line.push_str(&format!(" type {t}"));
            }
            if let Some(c) = &a.certificate {
                line.push_str(&format!(" cert {} ({})", c.identity, c.issuer));
            }
            line.push_str(match &a.verified {
                Some(airlock_layout::UpstreamVerification::Key { .. }) => " verified (key)",
                Some(airlock_layout::UpstreamVerification::Keyless { .. }) => " verified (keyless)",
                None => " not verified",
            });
            line
        })
        .collect()
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
    let images: Vec<&airlock_layout::ImageRecord> =
        m.images.iter().filter(|i| i.is_image()).collect();
    for i in &images {
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
    let mut out = columns(&rows, |n| {
        if n > 0 {
            artifact_lines(images[n - 1])
        } else {
            Vec::new()
        }
    });
    let (charts, files) = content_tables(m);
    out.push_str(&charts);
    out.push_str(&files);
    out.push('\n');
    if charts.is_empty() && files.is_empty() {
        out.push_str(&format!(
            "{} images, {} unique blobs, {}\n",
            m.totals.images,
            m.totals.blobs,
            human_bytes(m.totals.bytes)
        ));
    } else {
        let count =
            |f: fn(&airlock_layout::ImageRecord) -> bool| m.images.iter().filter(|i| f(i)).count();
        out.push_str(&format!(
            "{} images, {} charts, {} files, {} unique blobs, {}\n",
            count(|i| i.is_image()),
            count(|i| i.chart().is_some()),
            count(|i| i.file().is_some()),
            m.totals.blobs,
            human_bytes(m.totals.bytes)
        ));
    }
    out.push_str(&format!(
        "spec {} (sha256 {}), created {} by airlock {}\n",
        m.spec.name,
        &m.spec.sha256[..m.spec.sha256.len().min(12)],
        m.created,
        m.airlock_version
    ));
    out.push_str(&delta_text(m));
    out.push_str(if inv.signature_present {
        "signature: present, NOT verified here (run `airlock verify BUNDLE --key SIGNER.pub`)\n"
    } else {
        "signature: none (the bundle is not signed)\n"
    });
    out
}

/// Rows as aligned columns (the last one unpadded); `under(n)` gives the lines printed under
/// row `n`.
fn columns<const N: usize>(rows: &[[String; N]], under: impl Fn(usize) -> Vec<String>) -> String {
    let mut widths = [0; N];
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for (n, r) in rows.iter().enumerate() {
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
        for a in under(n) {
            out.push_str(&a);
            out.push('\n');
        }
    }
    out
}

/// The charts and the files of a bundle, each a table after a blank line (empty when there
/// are none).
fn content_tables(m: &airlock_layout::BundleManifest) -> (String, String) {
    let charts: Vec<(&airlock_layout::ImageRecord, &airlock_layout::ChartInfo)> = m
        .images
        .iter()
        .filter_map(|i| i.chart().map(|c| (i, c)))
        .collect();
    let mut chart_text = String::new();
    if !charts.is_empty() {
        let mut rows = vec![[
            "CHART".to_owned(),
            "VERSION".to_owned(),
            "APP VERSION".to_owned(),
            "DIGEST".to_owned(),
            "PROVENANCE".to_owned(),
            "ORIGIN".to_owned(),
        ]];
        for (i, c) in &charts {
            rows.push([
                c.name.clone(),
                c.version.clone(),
                c.app_version.clone().unwrap_or_else(|| "-".into()),
                short(&i.digest),
                if c.provenance { "yes" } else { "no" }.into(),
                c.origin.clone(),
            ]);
        }
        chart_text.push('\n');
        chart_text.push_str(&columns(&rows, |n| match n {
            0 => Vec::new(),
            n => charts[n - 1]
                .1
                .images
                .iter()
                .map(|img| format!("  names image {img}"))
                .collect(),
        }));
    }
    let files: Vec<&airlock_layout::FileInfo> = m.images.iter().filter_map(|i| i.file()).collect();
    let mut file_text = String::new();
    if !files.is_empty() {
        let mut rows = vec![[
            "FILE".to_owned(),
            "SIZE".to_owned(),
            "SHA256".to_owned(),
            "MODE".to_owned(),
            "FROM".to_owned(),
        ]];
        for f in &files {
            let from = match (&f.url, &f.checksum) {
                (Some(u), airlock_layout::FileChecksum::Url { url }) => {
                    format!("{u} (checksum {url})")
                }
                (Some(u), _) => format!("{u} (sha256 from the spec)"),
                (None, _) => "local file".to_owned(),
            };
            rows.push([
                f.name.clone(),
                human_bytes(f.size),
                f.digest.hex().to_owned(),
                format!("{:04o}", f.mode),
                from,
            ]);
        }
        file_text.push('\n');
        file_text.push_str(&columns(&rows, |_| Vec::new()));
    }
    (chart_text, file_text)
}

/// Each base of a delta with the blobs and bytes it supplies.
fn base_sizes(m: &airlock_layout::BundleManifest) -> Vec<(&airlock_layout::BaseBundle, u64)> {
    let sizes: std::collections::HashMap<&Digest, u64> =
        m.blobs.iter().map(|b| (&b.digest, b.size)).collect();
    m.bases
        .iter()
        .map(|b| {
            let bytes = b.blobs.iter().fold(0u64, |s, d| {
                s.saturating_add(sizes.get(d).copied().unwrap_or(0))
            });
            (b, bytes)
        })
        .collect()
}

fn kind_str(kind: airlock_layout::BaseKind) -> &'static str {
    match kind {
        airlock_layout::BaseKind::Bundle => "bundle",
        airlock_layout::BaseKind::Inventory => "inventory",
    }
}

/// `delta` of the JSON document: full and carried sizes, each base, what loading needs.
fn delta_json(m: &airlock_layout::BundleManifest) -> serde_json::Value {
    let (blobs, bytes) = m
        .carried_blobs()
        .fold((0u64, 0u64), |(n, s), b| (n + 1, s.saturating_add(b.size)));
    let bases: Vec<serde_json::Value> = base_sizes(m)
        .into_iter()
        .map(|(b, bytes)| {
            json!({
                "kind": kind_str(b.kind),
                "name": b.name,
                "digest": b.digest,
                "blobs": b.blobs.len(),
                "bytes": bytes,
            })
        })
        .collect();
    json!({
        "fullBlobs": m.totals.blobs,
        "fullBytes": m.totals.bytes,
        "carriedBlobs": blobs,
        "carriedBytes": bytes,
        "bases": bases,
        "needsBase": true,
    })
}

/// The lines of `table` about a delta (empty for a full bundle).
fn delta_text(m: &airlock_layout::BundleManifest) -> String {
    if !m.is_delta() {
        return String::new();
    }
    let (blobs, bytes) = m
        .carried_blobs()
        .fold((0u64, 0u64), |(n, s), b| (n + 1, s.saturating_add(b.size)));
    let mut out = format!(
        "delta: carries {blobs} of {} blobs, {} of {} (full size)\n",
        m.totals.blobs,
        human_bytes(bytes),
        human_bytes(m.totals.bytes)
    );
    for (b, bytes) in base_sizes(m) {
        out.push_str(&format!(
            "  base ({}) {} {}: {} blobs, {}\n",
            kind_str(b.kind),
            b.name.as_deref().unwrap_or("(unnamed)"),
            b.digest,
            b.blobs.len(),
            human_bytes(bytes)
        ));
    }
    out.push_str(
        "  loading it into an empty target needs the base: load the base first, or pass `--base BASE.tar.zst`\n",
    );
    out
}

/// The parts of a split bundle: count, total, each part's size.
pub fn parts_table(p: &airlock_layout::volume::OpenPartList) -> String {
    let mut out = format!(
        "\nparts: {} ({} in all), listed in {}\n",
        p.list.parts.len(),
        super::human_bytes(p.list.size),
        p.path.display()
    );
    for part in &p.list.parts {
        out.push_str(&format!(
            "  {:<40} {:>10}  {}\n",
            part.name,
            super::human_bytes(part.size),
            part.sha256
        ));
    }
    out
}
