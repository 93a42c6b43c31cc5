use std::fs;
use std::io::Read;

use super::*;
use crate::digest::Digest;
use crate::reader::entries::{open_entry, open_entry_owned, read_entry};
use crate::reader::index::FrameIndex;

const FRAME: usize = 16 * 1024;

/// Deterministic bytes that zstd cannot shrink much.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: BlobStore,
    out_dir: PathBuf,
    blobs: Vec<BlobRecord>,
    data: Vec<Vec<u8>>,
}

const MANIFEST: &[u8] = b"{\"formatVersion\":1}\n";
const SIG: &[u8] = b"MEUCIQDsignature==";
const INDEX: &[u8] = br#"{"schemaVersion":2,"manifests":[]}"#;

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path().join("cache")).unwrap();
    let out_dir = dir.path().join("out");
    fs::create_dir(&out_dir).unwrap();
    let items: Vec<(&str, Vec<u8>)> = vec![
        // Larger than 3 frames and not a multiple of 512.
        (
            "application/vnd.oci.image.layer.v1.tar+gzip",
            noise(3 * FRAME + 5001, 1),
        ),
        (
            "application/vnd.oci.image.config.v1+json",
            br#"{"architecture":"amd64","os":"linux","rootfs":{}}"#.to_vec(),
        ),
        (
            "application/vnd.oci.image.layer.v1.tar",
            b"uncompressed layer ".repeat(2000),
        ),
        (
            "application/vnd.oci.image.manifest.v1+json",
            br#"{"schemaVersion":2,"layers":[]}"#.to_vec(),
        ),
        ("application/octet-stream", Vec::new()),
        // Exactly one frame of data: header + data spill into a second frame.
        (
            "application/vnd.oci.image.layer.v1.tar+zstd",
            noise(FRAME, 2),
        ),
    ];
    let mut blobs = Vec::new();
    let mut data = Vec::new();
    for (mt, bytes) in items {
        let digest = Digest::of_bytes(&bytes);
        store.put_bytes(&digest, &bytes).unwrap();
        blobs.push(BlobRecord {
            digest,
            size: bytes.len() as u64,
            media_type: mt.to_owned(),
        });
        data.push(bytes);
    }
    Fixture {
        _dir: dir,
        store,
        out_dir,
        blobs,
        data,
    }
}

impl Fixture {
    fn contents(&self) -> BundleContents<'_> {
        BundleContents {
            manifest_json: MANIFEST,
            signature: Some(SIG),
            index_json: INDEX,
            blobs: &self.blobs,
            store: &self.store,
            gate: None,
        }
    }

    /// (path, data) in the order the bundle must have them.
    fn expected(&self) -> Vec<(String, Vec<u8>)> {
        let blob = |i: usize| (self.blobs[i].digest.blob_path(), self.data[i].clone());
        vec![
            (MANIFEST_PATH.to_owned(), MANIFEST.to_vec()),
            (SIGNATURE_PATH.to_owned(), SIG.to_vec()),
            (OCI_LAYOUT_PATH.to_owned(), OCI_LAYOUT_JSON.to_vec()),
            blob(1), // config
            blob(3), // manifest
            blob(0),
            blob(2),
            blob(4),
            blob(5),
            (INDEX_PATH.to_owned(), INDEX.to_vec()),
        ]
    }
}

fn opts(threads: usize) -> ArchiveOptions {
    ArchiveOptions {
        frame_size: FRAME,
        threads,
        ..ArchiveOptions::default()
    }
}

fn dir_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn tar_stream_has_entries_in_order() {
    let f = fixture();
    let out = f.out_dir.join("b.tar.zst");
    let stats = write_bundle(&out, &f.contents(), &opts(2)).unwrap();
    assert_eq!(dir_names(&f.out_dir), vec!["b.tar.zst"]);

    let tar_bytes = zstd::stream::decode_all(fs::File::open(&out).unwrap()).unwrap();
    assert_eq!(tar_bytes.len() as u64, stats.tar_bytes);
    assert_eq!(stats.compressed_bytes, fs::metadata(&out).unwrap().len());
    assert!(tar_bytes.ends_with(&[0; 1024]));

    let expected = f.expected();
    assert_eq!(stats.entries, expected.len() as u64);
    let mut archive = tar::Archive::new(tar_bytes.as_slice());
    let mut got = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let h = entry.header();
        assert_eq!(h.entry_type(), tar::EntryType::Regular);
        assert_eq!(h.mode().unwrap(), 0o644);
        assert_eq!(h.mtime().unwrap(), 0);
        assert_eq!(h.uid().unwrap(), 0);
        assert_eq!(h.gid().unwrap(), 0);
        assert_eq!(h.username_bytes(), Some(&b""[..]));
        assert_eq!(h.groupname_bytes(), Some(&b""[..]));
        assert!(h.as_ustar().is_some());
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        got.push((path, data));
    }
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g.0, e.0);
        assert!(g.1 == e.1, "contents of {}", g.0);
    }
}

#[test]
fn no_signature_entry_when_unsigned() {
    let f = fixture();
    let out = f.out_dir.join("b.tar.zst");
    let contents = BundleContents {
        signature: None,
        ..f.contents()
    };
    write_bundle(&out, &contents, &opts(1)).unwrap();
    let mut file = fs::File::open(&out).unwrap();
    let index = FrameIndex::read_from(&mut file).unwrap();
    let paths: Vec<&str> = index.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(&paths[..2], [MANIFEST_PATH, OCI_LAYOUT_PATH]);
}

#[test]
fn frame_index_has_a_frame_per_entry_start() {
    let f = fixture();
    let out = f.out_dir.join("b.tar.zst");
    let stats = write_bundle(&out, &f.contents(), &opts(3)).unwrap();
    let mut file = fs::File::open(&out).unwrap();
    let index = FrameIndex::read_from(&mut file).unwrap();

    let expected = f.expected();
    let paths: Vec<&str> = index.entries.iter().map(|e| e.path.as_str()).collect();
    let want: Vec<&str> = expected.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, want);

    // Frames: one per `FRAME` bytes of each entry (header, data, padding), plus the end.
    let mut want_frames = Vec::new();
    let mut offset = 0;
    for ((_, data), entry) in expected.iter().zip(&index.entries) {
        assert_eq!(entry.offset, offset);
        assert_eq!(entry.size, data.len() as u64);
        let mut left = (512 + data.len()).div_ceil(512) * 512;
        while left > 0 {
            let n = left.min(FRAME);
            want_frames.push((offset, n as u64));
            offset += n as u64;
            left -= n;
        }
    }
    want_frames.push((offset, 1024));
    let got_frames: Vec<(u64, u64)> = index
        .frames
        .iter()
        .map(|f| (f.decompressed_offset, f.decompressed_size))
        .collect();
    assert_eq!(got_frames, want_frames);
    assert_eq!(stats.frames, want_frames.len() as u64);
    assert_eq!(index.tar_len(), stats.tar_bytes);
    // The big layer spans more than three frames.
    let big = index.entry(&f.blobs[0].digest.blob_path()).unwrap();
    let big_frames = index
        .frames
        .iter()
        .filter(|fr| {
            fr.decompressed_offset >= big.offset
                && fr.decompressed_offset < big.offset + 512 + big.size
        })
        .count();
    assert_eq!(big_frames, 4);

    // Compressed frames are contiguous from byte 0, and each decodes on its own.
    let bytes = fs::read(&out).unwrap();
    let mut c = 0;
    for fr in &index.frames {
        assert_eq!(fr.compressed_offset, c);
        let start = fr.compressed_offset as usize;
        let frame = &bytes[start..start + fr.compressed_size as usize];
        let decoded = zstd::bulk::decompress(frame, FRAME).unwrap();
        assert_eq!(decoded.len() as u64, fr.decompressed_size);
        c += fr.compressed_size;
    }
    // Then the entry table frame, then the seek table, then nothing.
    assert_eq!(
        &bytes[c as usize..c as usize + 4],
        &[0x5A, 0x2A, 0x4D, 0x18]
    );
    let seek_len = 8 + index.frames.len() * 8 + 9;
    let seek_at = bytes.len() - seek_len;
    assert_eq!(&bytes[seek_at..seek_at + 4], &[0x5E, 0x2A, 0x4D, 0x18]);
    assert_eq!(&bytes[bytes.len() - 4..], &[0xB1, 0xEA, 0x92, 0x8F]);
    assert_eq!(bytes[bytes.len() - 5], 0);
    let table: serde_json::Value = serde_json::from_slice(&bytes[c as usize + 8..seek_at]).unwrap();
    assert_eq!(table["version"], 1);
    assert_eq!(table["entries"][0]["path"], MANIFEST_PATH);
}

#[test]
fn entries_read_back_exactly() {
    let f = fixture();
    let out = f.out_dir.join("b.tar.zst");
    write_bundle(&out, &f.contents(), &opts(2)).unwrap();
    let mut file = fs::File::open(&out).unwrap();
    let index = FrameIndex::read_from(&mut file).unwrap();
    for (path, data) in f.expected() {
        assert!(
            read_entry(&mut file, &index, &path).unwrap() == data,
            "{path}"
        );

        // Streamed in odd-sized pieces.
        let mut reader = open_entry(&mut file, &index, &path).unwrap();
        assert_eq!(reader.size(), data.len() as u64);
        let mut got = Vec::new();
        let mut buf = [0; 1000];
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got == data, "{path}");
    }
    let big = f.blobs[0].digest.blob_path();
    let owned = open_entry_owned(fs::File::open(&out).unwrap(), &index, &big).unwrap();
    let got = std::thread::spawn(move || {
        let mut v = Vec::new();
        let mut r = owned;
        r.read_to_end(&mut v).unwrap();
        v
    })
    .join()
    .unwrap();
    assert!(got == f.data[0]);

    let err = read_entry(&mut file, &index, "blobs/sha256/nope").unwrap_err();
    assert!(matches!(err, Error::UnknownEntry { .. }), "{err:?}");
    assert!(err.to_string().contains("`blobs/sha256/nope`"), "{err}");
}

#[test]
fn output_does_not_depend_on_threads() {
    let f = fixture();
    let one = f.out_dir.join("one.tar.zst");
    let four = f.out_dir.join("four.tar.zst");
    let s1 = write_bundle(&one, &f.contents(), &opts(1)).unwrap();
    let s4 = write_bundle(&four, &f.contents(), &opts(4)).unwrap();
    assert_eq!(s1, s4);
    assert!(fs::read(&one).unwrap() == fs::read(&four).unwrap());
}

#[test]
fn missing_blob_leaves_no_file() {
    let mut f = fixture();
    let ghost = b"not in the store";
    f.blobs.push(BlobRecord {
        digest: Digest::of_bytes(ghost),
        size: ghost.len() as u64,
        media_type: "application/vnd.oci.image.layer.v1.tar".into(),
    });
    let out = f.out_dir.join("b.tar.zst");
    let err = write_bundle(&out, &f.contents(), &opts(2)).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(
        err.to_string().contains(Digest::of_bytes(ghost).hex()),
        "{err}"
    );
    assert!(dir_names(&f.out_dir).is_empty());
}

#[test]
fn failure_mid_stream_leaves_old_file_untouched() {
    let f = fixture();
    let out = f.out_dir.join("b.tar.zst");
    fs::write(&out, b"previous bundle").unwrap();
    // Checked up front, then removed: the failure happens while frames are in flight.
    let last = f.blobs.last().unwrap();
    let contents = f.contents();
    let entries = plan(&contents, &opts(2)).unwrap();
    fs::remove_file(f.store.path(&last.digest)).unwrap();
    let (file, temp) = tempfile::NamedTempFile::new_in(&f.out_dir)
        .unwrap()
        .into_parts();
    let cancel = AtomicBool::new(false);
    let ctl = Control {
        out: &out,
        cancel: &cancel,
    };
    let shown = temp.to_path_buf();
    let err = run_pipeline(Sink::One(file, temp), &shown, &entries, &opts(2), 2, &ctl)
        .map(|_| ())
        .unwrap_err();
    assert!(err.to_string().contains(last.digest.hex()), "{err}");
    assert_eq!(dir_names(&f.out_dir), vec!["b.tar.zst"]);

    let err = write_bundle(&out, &contents, &opts(2)).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert_eq!(fs::read(&out).unwrap(), b"previous bundle");
    assert_eq!(dir_names(&f.out_dir), vec!["b.tar.zst"]);
}

#[test]
fn duplicate_and_wrong_size_blobs_are_refused() {
    let mut f = fixture();
    f.blobs.push(f.blobs[1].clone());
    let out = f.out_dir.join("b.tar.zst");
    let err = write_bundle(&out, &f.contents(), &opts(1)).unwrap_err();
    assert!(matches!(err, Error::DuplicateBlob { .. }), "{err:?}");

    f.blobs.pop();
    f.blobs[2].size += 1;
    let err = write_bundle(&out, &f.contents(), &opts(1)).unwrap_err();
    assert!(matches!(err, Error::BlobSize { .. }), "{err:?}");
    assert!(dir_names(&f.out_dir).is_empty());
}

#[test]
fn options_are_checked() {
    let f = fixture();
    let out = f.out_dir.join("b.tar.zst");
    for bad in [
        ArchiveOptions {
            frame_size: 100,
            ..opts(1)
        },
        ArchiveOptions {
            level: 99,
            ..opts(1)
        },
    ] {
        let err = write_bundle(&out, &f.contents(), &bad).unwrap_err();
        assert!(matches!(err, Error::InvalidOption { .. }), "{err:?}");
    }
    // Zero threads means one.
    write_bundle(&out, &f.contents(), &opts(0)).unwrap();
}

#[test]
fn header_fields() {
    let h = tar_header("blobs/sha256/abc", 1234).unwrap();
    let h = tar::Header::from_byte_slice(&h);
    assert_eq!(h.path().unwrap().to_str(), Some("blobs/sha256/abc"));
    assert_eq!(h.size().unwrap(), 1234);
    assert_eq!(h.cksum().unwrap(), {
        let mut sum: u32 = h.as_bytes().iter().map(|&b| u32::from(b)).sum();
        sum -= h.as_bytes()[148..156]
            .iter()
            .map(|&b| u32::from(b))
            .sum::<u32>();
        sum + 8 * u32::from(b' ')
    });
    let long = "x".repeat(101);
    assert!(matches!(
        tar_header(&long, 0),
        Err(Error::EntryPathTooLong { .. })
    ));
    assert!(tar_header(&"y".repeat(100), 0).is_ok());
}

#[test]
fn default_options() {
    let o = ArchiveOptions::default();
    assert_eq!((o.level, o.fast_level, o.frame_size), (3, 1, 4 << 20));
    assert!(o.threads >= 1);
}

#[test]
fn gate_lets_blobs_arrive_while_the_bundle_is_written() {
    let f = fixture();
    // The large layer is not in the store yet: another thread puts it there later, and the
    // gate blocks until it has.
    let late = noise(2 * FRAME + 7, 9);
    let late_digest = Digest::of_bytes(&late);
    let mut blobs = f.blobs.clone();
    blobs.push(BlobRecord {
        digest: late_digest.clone(),
        size: late.len() as u64,
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
    });
    let arrived = std::sync::Mutex::new(false);
    let cv = std::sync::Condvar::new();
    let asked = std::sync::atomic::AtomicUsize::new(0);
    let gate = |d: &Digest| -> Result<Arrival, Error> {
        asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if *d == late_digest {
            let mut ok = arrived.lock().unwrap();
            while !*ok {
                ok = cv.wait(ok).unwrap();
            }
        }
        Ok(Arrival::Cached)
    };
    let out = f.out_dir.join("gated.tar.zst");
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            f.store.put_bytes(&late_digest, &late).unwrap();
            *arrived.lock().unwrap() = true;
            cv.notify_all();
        });
        let contents = BundleContents {
            blobs: &blobs,
            gate: Some(BlobGate(&gate)),
            ..f.contents()
        };
        write_bundle(&out, &contents, &opts(2)).unwrap();
    });
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), blobs.len());
    let mut file = fs::File::open(&out).unwrap();
    let index = FrameIndex::read_from(&mut file).unwrap();
    assert_eq!(
        read_entry(&mut file, &index, &late_digest.blob_path()).unwrap(),
        late
    );

    // A gate that says a blob will not come: no file, no temporary file.
    let refuse = |d: &Digest| -> Result<Arrival, Error> {
        if *d == late_digest {
            Err(Error::NotArrived { digest: d.clone() })
        } else {
            Ok(Arrival::Cached)
        }
    };
    let out2 = f.out_dir.join("refused.tar.zst");
    let contents = BundleContents {
        blobs: &blobs,
        gate: Some(BlobGate(&refuse)),
        ..f.contents()
    };
    let err = write_bundle(&out2, &contents, &opts(2)).unwrap_err();
    assert!(matches!(err, Error::NotArrived { .. }), "{err:?}");
    assert_eq!(dir_names(&f.out_dir), vec!["gated.tar.zst".to_string()]);
}

/// Flips one byte of a committed store blob in place (same size, so only a hash notices).
fn corrupt_in_place(store: &BlobStore, d: &Digest, at: u64) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(store.path(d))
        .unwrap();
    let mut b = [0u8];
    f.seek(SeekFrom::Start(at)).unwrap();
    f.read_exact(&mut b).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&[b[0] ^ 0x01]).unwrap();
}

// Regression: a store blob changed in place after it was committed (same size) was copied
// into the bundle unchecked, and the bundle signed.
#[test]
fn a_damaged_store_blob_fails_the_write_naming_it_and_leaves_no_file() {
    let f = fixture();
    // The large layer (several frames) in its last frame, and an exact-one-frame layer.
    for (i, at) in [(0, 3 * FRAME as u64 + 4000), (5, 0)] {
        let d = f.blobs[i].digest.clone();
        corrupt_in_place(&f.store, &d, at);
        for threads in [1, 3] {
            let out = f.out_dir.join("bad.tar.zst");
            let err = write_bundle(&out, &f.contents(), &opts(threads)).unwrap_err();
            match &err {
                Error::CachedBlobMismatch {
                    digest,
                    path,
                    actual,
                } => {
                    assert_eq!(digest, &d);
                    assert_eq!(path, &f.store.path(&d));
                    assert_ne!(actual, &d);
                }
                other => panic!("unexpected error {other:?}"),
            }
            let msg = err.to_string();
            assert!(msg.contains(&d.to_string()), "{msg}");
            assert!(
                msg.contains(&f.store.path(&d).display().to_string()),
                "{msg}"
            );
            assert!(
                dir_names(&f.out_dir).is_empty(),
                "{:?}",
                dir_names(&f.out_dir)
            );
        }
        corrupt_in_place(&f.store, &d, at); // flipped back
    }
    let out = f.out_dir.join("good.tar.zst");
    write_bundle(&out, &f.contents(), &opts(2)).unwrap();
    assert_eq!(dir_names(&f.out_dir), vec!["good.tar.zst".to_string()]);
}

// A blob downloaded and hashed by this run is not hashed a second time on its way into the
// bundle; one the gate reports as cached before the run is.
#[test]
fn the_gate_says_which_blobs_are_hashed_again() {
    let f = fixture();
    let d = f.blobs[5].digest.clone();
    // Changed after its commit: only a second hash would notice.
    corrupt_in_place(&f.store, &d, 0);
    for (arrival, hashed) in [(Arrival::Cached, true), (Arrival::Verified, false)] {
        let gate = |_: &Digest| -> Result<Arrival, Error> { Ok(arrival) };
        let contents = BundleContents {
            gate: Some(BlobGate(&gate)),
            ..f.contents()
        };
        let out = f.out_dir.join("gated.tar.zst");
        let r = write_bundle(&out, &contents, &opts(2));
        assert_eq!(
            matches!(r, Err(Error::CachedBlobMismatch { .. })),
            hashed,
            "{arrival:?}: {r:?}"
        );
        let _ = fs::remove_file(&out);
    }
}

// Regression: a run killed mid-write left `.NAME.tmp-*` behind for good.
#[test]
fn stale_temporary_files_are_removed_but_a_live_one_is_kept() {
    let f = fixture();
    let out = f.out_dir.join("b.tar.zst");
    // Left by a killed run: nobody holds it.
    let stale = f.out_dir.join(".b.tar.zst.tmp-AbC123");
    fs::write(&stale, b"").unwrap();
    // A live run's file: locked.
    let live = f.out_dir.join(".b.tar.zst.tmp-LiVe00");
    fs::write(&live, b"partial").unwrap();
    let held = fs::File::open(&live).unwrap();
    held.lock().unwrap();
    // Another bundle's temporary file is not ours to judge.
    let other = f.out_dir.join(".c.tar.zst.tmp-XyZ999");
    fs::write(&other, b"").unwrap();

    write_bundle(&out, &f.contents(), &opts(2)).unwrap();
    assert!(!stale.exists(), "the stale temporary file is still there");
    assert!(live.exists(), "a live run's temporary file was removed");
    assert!(other.exists());
    drop(held);
}

#[test]
fn a_cancelled_write_leaves_nothing() {
    let f = fixture();
    let out = f.out_dir.join("c.tar.zst");
    let cancel = AtomicBool::new(true);
    let err = write_bundle_until(&out, &f.contents(), &opts(2), &cancel).unwrap_err();
    assert!(matches!(err, Error::Cancelled { .. }), "{err:?}");
    assert!(dir_names(&f.out_dir).is_empty());
}

#[test]
fn split_parts_concatenate_to_the_unsplit_file() {
    let f = fixture();
    let whole = f.out_dir.join("b.tar.zst");
    write_bundle(&whole, &f.contents(), &opts(2)).unwrap();
    let bytes = fs::read(&whole).unwrap();
    let split_dir = f.out_dir.join("split");
    fs::create_dir(&split_dir).unwrap();
    let out = split_dir.join("b.tar.zst");
    // A stale part of an earlier, longer run, and a stale temporary file of a killed one.
    fs::write(split_dir.join("b.tar.zst.099"), b"old").unwrap();
    let part_size = bytes.len() as u64 / 3 + 1;
    let last = (bytes.len() as u64).div_ceil(part_size) as usize;
    fs::write(
        split_dir.join(crate::volume::part_name("b.tar.zst", last)),
        b"old",
    )
    .unwrap();
    fs::write(split_dir.join(".b.tar.zst.tmp-stale"), b"old").unwrap();
    let key = crate::SigningKey::generate();
    let split = SplitOptions {
        part_size,
        key: Some(&key),
    };
    let (_, list) = write_to(
        &out,
        &f.contents(),
        &opts(1),
        &AtomicBool::new(false),
        Some(&split),
    )
    .unwrap()
    .clone();
    let list = list.unwrap();
    assert_eq!(list.parts.len(), 3);
    let mut joined = Vec::new();
    for p in &list.parts {
        let part = fs::read(split_dir.join(&p.name)).unwrap();
        assert!(part.len() as u64 <= part_size);
        assert_eq!(Digest::of_bytes(&part), p.sha256);
        joined.extend_from_slice(&part);
    }
    assert_eq!(joined, bytes);
    assert_eq!(list.sha256, Digest::of_bytes(&bytes));
    assert_eq!(list.manifest_sha256, Digest::of_bytes(MANIFEST));
    let json = fs::read(split_dir.join("b.tar.zst.parts.json")).unwrap();
    let sig = fs::read(split_dir.join("b.tar.zst.parts.json.sig")).unwrap();
    key.verifying_key().verify(&json, &sig).unwrap();
    // The higher-numbered stale part is gone, `.099` (not next in line) is left alone.
    assert_eq!(
        dir_names(&split_dir),
        vec![
            "b.tar.zst.000",
            "b.tar.zst.002",
            "b.tar.zst.001",
            "b.tar.zst.099",
            "b.tar.zst.parts.json",
            "b.tar.zst.parts.json.sig"
        ]
        .into_iter()
        .map(String::from)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
    );
    // Read back in place through the part list.
    let mut file = crate::BundleFile::open(&split_dir.join("b.tar.zst.000")).unwrap();
    let index = crate::FrameIndex::read_from(&mut file).unwrap();
    let data = crate::read_entry(&mut file, &index, &f.blobs[0].digest.blob_path()).unwrap();
    assert_eq!(data, f.data[0]);
}

#[test]
fn a_cancelled_split_run_leaves_no_part() {
    let f = fixture();
    let out = f.out_dir.join("b.tar.zst");
    let split = SplitOptions {
        part_size: 100_000,
        key: None,
    };
    let err = write_to(
        &out,
        &f.contents(),
        &opts(2),
        &AtomicBool::new(true),
        Some(&split),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Cancelled { .. }), "{err}");
    assert!(
        dir_names(&f.out_dir).is_empty(),
        "{:?}",
        dir_names(&f.out_dir)
    );
}
