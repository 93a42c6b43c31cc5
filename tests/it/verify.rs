//! `airlock verify`: a good signed bundle passes; every tampered copy (Must show 2 of the
//! trust issue, the tamper matrix) is refused with a message naming the entry, digest or byte
//! offset, and a non-zero exit code. Tampered copies live in the test's temporary directory.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::support::*;

/// A signed bundle of three small fixture images and the signer's public key.
pub struct Signed {
    pub work: tempfile::TempDir,
    pub bundle: PathBuf,
    pub public: PathBuf,
}

/// The small fixture images (no 100 MiB one) on a fresh plain-HTTP registry, bundled with
/// `extra` arguments; the registry stops when this returns.
pub fn small_bundle(work: &Path, name: &str, extra: &[&str]) -> (PathBuf, PathBuf) {
    let reg = registry(false, airlock_testkit::Auth::None);
    let spec = write_spec(
        work,
        name,
        &small_refs(&reg.host),
        None,
        &registry_settings(&reg),
    );
    let out = work.join(format!("{name}.tar.zst"));
    let mut cmd = airlock(&work.join("cache"));
    cmd.args(["bundle", "--quiet", "-o"])
        .arg(&out)
        .arg(&spec)
        .args(extra)
        .env("SOURCE_DATE_EPOCH", "1700000000");
    let o = run(cmd, None);
    assert!(o.status.success(), "bundle failed: {}", stderr(&o));
    (out, spec)
}

pub fn key_pair(work: &Path, name: &str) -> (PathBuf, PathBuf) {
    let mut cmd = airlock(&work.join("cache"));
    cmd.args(["key", "generate", "--no-passphrase", "--quiet", "--out"])
        .arg(work.join(name));
    let o = run(cmd, None);
    assert!(o.status.success(), "key generate failed: {}", stderr(&o));
    (
        work.join(format!("{name}.key")),
        work.join(format!("{name}.pub")),
    )
}

pub fn signed() -> Signed {
    let work = workdir();
    let (key, public) = key_pair(work.path(), "signer");
    let key_arg = key.to_str().unwrap().to_owned();
    let (bundle, _) = small_bundle(work.path(), "small", &["--sign-key", &key_arg]);
    Signed {
        work,
        bundle,
        public,
    }
}

/// `airlock verify FILE --json` with `args`; returns the output and the parsed report.
fn verify(work: &Path, file: &Path, args: &[&str]) -> (Output, Value) {
    let mut cmd = airlock(&work.join("cache"));
    cmd.arg("verify").arg(file).arg("--json").args(args);
    let o = run(cmd, None);
    let text = String::from_utf8_lossy(&o.stdout);
    let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{text}\nstderr:\n{}",
            stderr(&o)
        )
    });
    (o, doc)
}

fn with_key(s: &Signed) -> Vec<String> {
    vec!["--key".into(), s.public.to_str().unwrap().into()]
}

/// Verify with the signer's key must fail with exit code 1, a report saying so, and every
/// needle in the message.
#[track_caller]
fn refused(s: &Signed, file: &Path, kind: &str, needles: &[&str]) -> Value {
    let key = with_key(s);
    let args: Vec<&str> = key.iter().map(String::as_str).collect();
    let (o, doc) = verify(s.work.path(), file, &args);
    let e = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}: expected exit 1\n{e}",
        file.display()
    );
    assert_eq!(doc["ok"], false, "{doc:#}");
    assert_eq!(doc["error"]["kind"], kind, "{}: {doc:#}", file.display());
    for n in needles {
        assert!(
            e.contains(n),
            "{}: `{n}` missing from:\n{e}",
            file.display()
        );
    }
    assert!(e.contains("is BAD"), "{e}");
    doc
}

// ---- the tar and the zstd file, by hand ----

/// One tar entry: its 512-byte header and its data.
#[derive(Clone)]
pub struct Entry {
    pub header: Vec<u8>,
    pub data: Vec<u8>,
}

impl Entry {
    pub fn path(&self) -> String {
        let end = self.header[..100]
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(100);
        String::from_utf8_lossy(&self.header[..end]).into_owned()
    }
}

/// The entries of a decompressed bundle, in order (ustar, as airlock writes it).
pub fn entries(tar: &[u8]) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 512 <= tar.len() && tar[at..at + 512].iter().any(|&b| b != 0) {
        let header = tar[at..at + 512].to_vec();
        let size_text = String::from_utf8_lossy(&header[124..136]).into_owned();
        let size = u64::from_str_radix(size_text.trim_matches(|c: char| c == '\0' || c == ' '), 8)
            .unwrap() as usize;
        let data = tar[at + 512..at + 512 + size].to_vec();
        out.push(Entry { header, data });
        at += 512 + size.div_ceil(512) * 512;
    }
    out
}

/// Tar offsets of each entry's header.
fn offsets(entries: &[Entry]) -> Vec<u64> {
    let mut at = 0u64;
    entries
        .iter()
        .map(|e| {
            let o = at;
            at += 512 + (e.data.len() as u64).div_ceil(512) * 512;
            o
        })
        .collect()
}

/// A ustar header written byte by byte (the `tar` crate refuses `..` and absolute names).
fn header(path: &str, size: u64, kind: tar::EntryType, link: Option<&str>) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_size(size);
    h.set_entry_type(kind);
    if let Some(l) = link {
        h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
    }
    if kind == tar::EntryType::Char {
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
    }
    h.set_cksum();
    h.as_bytes().to_vec()
}

fn file_entry(path: &str, data: &[u8]) -> Entry {
    Entry {
        header: header(path, data.len() as u64, tar::EntryType::Regular, None),
        data: data.to_vec(),
    }
}

/// A tar of `entries` with its two end blocks, compressed into one zstd frame (no index).
pub fn write_bundle_file(path: &Path, entries: &[Entry]) {
    let mut tar = Vec::new();
    for e in entries {
        tar.extend_from_slice(&e.header);
        tar.extend_from_slice(&e.data);
        tar.resize(tar.len().div_ceil(512) * 512, 0);
    }
    tar.resize(tar.len() + 1024, 0);
    std::fs::write(path, zstd::encode_all(&tar[..], 3).unwrap()).unwrap();
}

/// The seek table: (file offset of the table frame, frames as (compressed, decompressed)).
fn seek_table(file: &[u8]) -> (usize, Vec<(u32, u32)>) {
    let n = file.len();
    let count = u32::from_le_bytes(file[n - 9..n - 5].try_into().unwrap()) as usize;
    let start = n - 9 - 8 * count - 8;
    let frames = (0..count)
        .map(|i| {
            let at = start + 8 + 8 * i;
            (
                u32::from_le_bytes(file[at..at + 4].try_into().unwrap()),
                u32::from_le_bytes(file[at + 4..at + 8].try_into().unwrap()),
            )
        })
        .collect();
    (start, frames)
}

fn digest_of(data: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

// ---- the tests ----

#[test]
fn a_good_signed_bundle_verifies() {
    let s = signed();
    let key = with_key(&s);
    let args: Vec<&str> = key.iter().map(String::as_str).collect();
    let (o, doc) = verify(s.work.path(), &s.bundle, &args);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{e}");
    assert_eq!(doc["ok"], true, "{doc:#}");
    assert_eq!(doc["error"], Value::Null);
    assert_eq!(doc["signature"]["present"], true);
    assert_eq!(doc["signature"]["checked"], true);
    let fingerprint = doc["signature"]["key"].as_str().unwrap();
    assert!(fingerprint.starts_with("sha256:"), "{fingerprint}");
    assert!(e.contains("OK ") && e.contains(fingerprint), "{e}");
    assert!(!e.contains("NOT checked"), "{e}");
    let blobs = doc["manifest"]["totals"]["blobs"].as_u64().unwrap();
    assert!(blobs > 5);
    assert_eq!(doc["blobsVerified"], blobs);
    // manifest, signature, oci-layout, index.json and the blobs.
    assert_eq!(doc["entries"], blobs + 4);
    assert_eq!(doc["manifest"]["spec"]["name"], "small");
    assert_eq!(
        doc["compressedBytes"].as_u64().unwrap(),
        std::fs::metadata(&s.bundle).unwrap().len()
    );
    assert!(doc["bytes"].as_u64().unwrap() > doc["manifest"]["totals"]["bytes"].as_u64().unwrap());
    assert!(doc["seconds"].as_f64().unwrap() >= 0.0);
}

#[test]
fn without_a_key_verify_refuses_unless_told_to_skip_the_signature() {
    let work = workdir();
    let (bundle, _) = small_bundle(work.path(), "unsigned", &[]);

    // No key, no flag: a usage error with the way out.
    let mut cmd = airlock(&work.path().join("cache"));
    cmd.arg("verify").arg(&bundle);
    let o = run(cmd, None);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("--key") && e.contains("--insecure-skip-signature") && e.contains("hint:"),
        "{e}"
    );

    // The flag: every digest checked, and a loud word that authenticity was not.
    let (o, doc) = verify(work.path(), &bundle, &["--insecure-skip-signature"]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{e}");
    assert!(e.contains("authenticity NOT checked"), "{e}");
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["signature"]["present"], false);
    assert_eq!(doc["signature"]["checked"], false);
    assert_eq!(doc["signature"]["key"], Value::Null);
    assert_eq!(doc["blobsVerified"], doc["manifest"]["totals"]["blobs"]);

    // A key on an unsigned bundle: refused.
    let (_, public) = key_pair(work.path(), "k");
    let (o, doc) = verify(work.path(), &bundle, &["--key", public.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(doc["error"]["kind"], "unsigned");
    assert!(stderr(&o).contains("the bundle is not signed"));
}

/// Must show 2: every kind of tampering is refused, naming what and where.
#[test]
fn tamper_matrix() {
    let s = signed();
    let dir = s.work.path();
    let good = std::fs::read(&s.bundle).unwrap();
    let tar_path = decompress(&s.bundle);
    let tar = std::fs::read(&tar_path).unwrap();
    let all = entries(&tar);
    let at = offsets(&all);
    assert_eq!(all[0].path(), "airlock/manifest.json");
    assert_eq!(all[1].path(), "airlock/manifest.json.sig");
    assert_eq!(all[2].path(), "oci-layout");
    // A layer (gzip), the last one: after every small blob.
    let (li, layer) = all
        .iter()
        .enumerate()
        .rfind(|(_, e)| e.path().starts_with("blobs/") && e.data.starts_with(&[0x1f, 0x8b]))
        .expect("a gzip layer");
    let layer_path = layer.path();
    let layer_digest = format!("sha256:{}", layer_path.trim_start_matches("blobs/sha256/"));
    let file = |name: &str| dir.join(name);
    let with = |name: &str, entries: &[Entry]| {
        let p = file(name);
        write_bundle_file(&p, entries);
        p
    };

    // 1. One flipped byte inside a layer (decompressed, flipped, recompressed).
    let mut t = all.clone();
    let mid = t[li].data.len() / 2;
    t[li].data[mid] ^= 0x01;
    let actual = digest_of(&t[li].data);
    let p = with("layer-flip.tar.zst", &t);
    let doc = refused(
        &s,
        &p,
        "blobDigest",
        &[
            &format!("blob `{layer_path}` does not match its digest"),
            &format!("expected `{layer_digest}`, got `{actual}`"),
            &format!("tar offset {}", at[li]),
        ],
    );
    assert_eq!(doc["error"]["path"], layer_path.as_str());
    assert_eq!(doc["error"]["expected"], layer_digest.as_str());
    assert_eq!(doc["error"]["actual"], actual.as_str());
    assert_eq!(doc["error"]["tarOffset"], at[li]);

    // 1b. One flipped byte inside the layer's zstd frame in the bundle file itself.
    let (seek_at, frames) = seek_table(&good);
    let mut c = 0u64;
    let mut d = 0u64;
    let mut hit = None;
    for &(cs, ds) in &frames {
        let data_start = at[li] + 512;
        if d <= data_start && data_start < d + u64::from(ds) {
            hit = Some((c, cs));
            break;
        }
        c += u64::from(cs);
        d += u64::from(ds);
    }
    let (frame_at, frame_len) = hit.expect("a frame holds the layer");
    let mut bad = good.clone();
    bad[(frame_at + u64::from(frame_len) / 2) as usize] ^= 0x01;
    let p = file("frame-flip.tar.zst");
    std::fs::write(&p, &bad).unwrap();
    refused(
        &s,
        &p,
        "decompress",
        &[
            "corrupt zstd frame",
            &format!("zstd frame at byte offset {frame_at}"),
            &format!("in entry `{layer_path}`"),
        ],
    );

    // 2. One flipped byte in the manifest: its signature no longer holds.
    let mut t = all.clone();
    let i = t[0].data.len() / 3;
    t[0].data[i] ^= 0x01;
    let p = with("manifest-flip.tar.zst", &t);
    refused(
        &s,
        &p,
        "badSignature",
        &["`airlock/manifest.json.sig` is not a valid signature of `airlock/manifest.json` by key `sha256:"],
    );

    // 3. A signature by another key, over the same manifest bytes (`cosign sign-blob`
    // format, made with openssl from a second airlock key).
    let (other_key, _) = key_pair(dir, "other");
    let sig = openssl_sign(dir, &other_key, &all[0].data);
    let mut t = all.clone();
    t[1] = file_entry("airlock/manifest.json.sig", sig.as_bytes());
    let p = with("other-key.tar.zst", &t);
    let public_fp = {
        let (_, doc) = verify(dir, &s.bundle, &["--key", s.public.to_str().unwrap()]);
        doc["signature"]["key"].as_str().unwrap().to_owned()
    };
    refused(
        &s,
        &p,
        "badSignature",
        &[&format!("by key `{public_fp}`"), "signed with another key"],
    );

    // 4. The signature removed.
    let mut t = all.clone();
    t.remove(1);
    let p = with("no-sig.tar.zst", &t);
    refused(
        &s,
        &p,
        "unsigned",
        &["the bundle is not signed: no `airlock/manifest.json.sig`"],
    );

    // 5. Truncated at several offsets, and just before the seek table.
    let len = good.len();
    for cut in [len / 10, len * 4 / 10, len * 9 / 10] {
        let p = file(&format!("cut-{cut}.tar.zst"));
        std::fs::write(&p, &good[..cut]).unwrap();
        refused(
            &s,
            &p,
            "truncated",
            &[&format!("the bundle ends early, after {cut} bytes")],
        );
    }
    let p = file("cut-before-seek-table.tar.zst");
    std::fs::write(&p, &good[..seek_at]).unwrap();
    refused(
        &s,
        &p,
        "truncated",
        &[&format!(
            "the bundle ends early, after {seek_at} bytes: the seek table is missing"
        )],
    );

    // 6. An extra entry, and an extra blob the manifest does not list.
    let mut t = all.clone();
    t.insert(3, file_entry("extra.txt", b"hello"));
    let p = with("extra.tar.zst", &t);
    refused(
        &s,
        &p,
        "unexpectedEntry",
        &[
            "entry `extra.txt` is not part of an airlock bundle",
            &format!("tar offset {}", at[3]),
        ],
    );
    let mut t = all.clone();
    let stray = digest_of(b"stray");
    let stray_path = format!("blobs/sha256/{}", stray.trim_start_matches("sha256:"));
    t.insert(3, file_entry(&stray_path, b"stray"));
    let p = with("extra-blob.tar.zst", &t);
    refused(
        &s,
        &p,
        "unlistedBlob",
        &[&format!(
            "blob `{stray_path}` is not listed in `airlock/manifest.json`"
        )],
    );

    // 7. A duplicated entry.
    let mut t = all.clone();
    t.insert(li + 1, all[li].clone());
    let p = with("duplicate.tar.zst", &t);
    let second = at[li] + 512 + (all[li].data.len() as u64).div_ceil(512) * 512;
    refused(
        &s,
        &p,
        "duplicateEntry",
        &[
            &format!(
                "entry `{layer_path}` appears twice (first at tar offset {})",
                at[li]
            ),
            &format!("tar offset {second}"),
        ],
    );

    // 8. Names that escape: `../x` and `/x`.
    for (name, needle) in [
        ("../x", "entry `../x` climbs out of the bundle with `..`"),
        ("/x", "entry `/x` has an absolute path"),
    ] {
        let mut t = all.clone();
        t.insert(3, file_entry(name, b"x"));
        let p = with(&format!("escape-{}.tar.zst", name.len()), &t);
        refused(&s, &p, "unsafePath", &[needle]);
    }

    // 9. A symlink, a hard link and a device.
    let blob = all[3].path();
    for (kind, link, needle) in [
        (
            tar::EntryType::Symlink,
            Some("/etc/passwd"),
            format!("entry `{blob}` is a symbolic link to `/etc/passwd`"),
        ),
        (
            tar::EntryType::Link,
            Some("oci-layout"),
            format!("entry `{blob}` is a hard link to `oci-layout`"),
        ),
        (
            tar::EntryType::Char,
            None,
            format!("entry `{blob}` is a character device"),
        ),
    ] {
        let mut t = all.clone();
        t[3] = Entry {
            header: header(&blob, 0, kind, link),
            data: Vec::new(),
        };
        let p = with(&format!("special-{}.tar.zst", kind.as_byte() as char), &t);
        refused(&s, &p, "notRegularFile", &[&needle, "regular files only"]);
    }

    // 10. A frame index pointing elsewhere: two frames' sizes swapped in the seek table
    // (same total, so the table still fits the file)...
    let mut bad = good.clone();
    let (a, b) = (frames[0], frames[1]);
    assert_ne!(a, b);
    let e0 = seek_at + 8;
    bad[e0..e0 + 4].copy_from_slice(&b.0.to_le_bytes());
    bad[e0 + 4..e0 + 8].copy_from_slice(&b.1.to_le_bytes());
    bad[e0 + 8..e0 + 12].copy_from_slice(&a.0.to_le_bytes());
    bad[e0 + 12..e0 + 16].copy_from_slice(&a.1.to_le_bytes());
    let p = file("seek-swapped.tar.zst");
    std::fs::write(&p, &bad).unwrap();
    refused(
        &s,
        &p,
        "frameIndex",
        &[&format!(
            "the seek table says frame 0 has {} compressed and {} decompressed bytes, the frame at byte offset 0 has {} and {}",
            b.0, b.1, a.0, a.1
        )],
    );
    // ... and an entry table moving `index.json` by one block.
    let needle = format!("\"path\":\"index.json\",\"offset\":{}", at[at.len() - 1]);
    let pos = good
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
        .expect("index.json in the entry table");
    let mut bad = good.clone();
    let digit = pos + needle.len() - 1;
    bad[digit] = if bad[digit] == b'0' { b'1' } else { b'0' };
    let p = file("entry-moved.tar.zst");
    std::fs::write(&p, &bad).unwrap();
    refused(
        &s,
        &p,
        "frameIndex",
        &[
            "the entry table lists `index.json` at tar offset",
            &format!(
                "the tar has `index.json` at tar offset {}",
                at[at.len() - 1]
            ),
        ],
    );

    // Nothing was written beside the inputs but the tampered copies made here.
    let _ = std::fs::remove_file(&tar_path);
}

/// `openssl dgst -sha256 -sign KEY` over `data`, base64: the signature format of the bundle.
fn openssl_sign(dir: &Path, key: &Path, data: &[u8]) -> String {
    let input = dir.join("to-sign");
    std::fs::write(&input, data).unwrap();
    let o = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .arg(&input)
        .output()
        .expect("run openssl (install it: `cargo xtask install`)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let _ = std::fs::remove_file(&input);
    base64(&o.stdout)
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
