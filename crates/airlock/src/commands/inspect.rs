//! `airlock inspect BUNDLE|BUNDLE.manifest.json [--json]`: the inventory, from the head of
//! the bundle (or the manifest beside it) only. The JSON document is described in
//! `docs/inspect.md`; its field names are stable.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use airlock_layout::{read_head, BundleManifest, Digest, ImageSize, MAX_MANIFEST_SIZE};
use anyhow::{bail, Context};
use serde_json::json;

use crate::cli::{GlobalArgs, InspectArgs};
use crate::report::human_bytes;

/// Version of the `--json` document (docs/inspect.md).
const INSPECT_VERSION: u32 = 1;

/// First bytes of a zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

struct Inventory {
    input: &'static str,
    manifest: BundleManifest,
    signature_present: bool,
    sizes: HashMap<Digest, ImageSize>,
}

pub fn run(args: InspectArgs, _global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let inv = load(&args.bundle)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&to_json(&args.bundle, &inv))?
        );
    } else {
        print!("{}", table(&inv));
    }
    Ok(ExitCode::SUCCESS)
}

fn load(path: &Path) -> anyhow::Result<Inventory> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot open `{}`", path.display()))?;
    let mut magic = [0; 4];
    let n = read_up_to(&mut file, &mut magic)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    if n == 4 && magic == ZSTD_MAGIC {
        let file = std::fs::File::open(path)
            .with_context(|| format!("cannot open `{}`", path.display()))?;
        let head = read_head(std::io::BufReader::new(file))
            .with_context(|| format!("cannot read the head of the bundle `{}`", path.display()))?;
        return Ok(Inventory {
            input: "bundle",
            manifest: head.manifest,
            signature_present: head.signature.is_some(),
            sizes: head.image_sizes,
        });
    }
    // The manifest beside the bundle (`NAME.tar.zst.manifest.json`), and its `.sig`: JSON
    // that starts with `{`, read no further than the largest manifest airlock reads, so that
    // a device or a huge file is refused at once with bounded memory.
    let neither = || {
        format!(
            "`{}` is neither a bundle nor a bundle manifest",
            path.display()
        )
    };
    let first = magic[..n].iter().find(|b| !b.is_ascii_whitespace());
    if n > 0 && first.is_some_and(|&b| b != b'{') {
        bail!(
            "{}: it starts with neither the zstd magic nor a JSON object\n  hint: give a \
             `.tar.zst` bundle or its `.manifest.json`",
            neither()
        );
    }
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > MAX_MANIFEST_SIZE {
        bail!(
            "{}: it is larger than the {} MiB a bundle manifest may have",
            neither(),
            MAX_MANIFEST_SIZE >> 20
        );
    }
    let mut bytes = magic[..n].to_vec();
    (&mut file)
        .take(MAX_MANIFEST_SIZE + 1 - n as u64)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    if bytes.len() as u64 > MAX_MANIFEST_SIZE {
        bail!(
            "{}: it is larger than the {} MiB a bundle manifest may have",
            neither(),
            MAX_MANIFEST_SIZE >> 20
        );
    }
    let manifest = BundleManifest::from_json_bytes(&bytes).with_context(neither)?;
    let mut sig = path.as_os_str().to_owned();
    sig.push(".sig");
    Ok(Inventory {
        input: "manifest",
        manifest,
        signature_present: PathBuf::from(sig).is_file(),
        sizes: HashMap::new(),
    })
}

/// Reads until `buf` is full or the input ends; the number of bytes read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn to_json(path: &Path, inv: &Inventory) -> serde_json::Value {
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
        "input": inv.input,
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

fn table(inv: &Inventory) -> String {
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
