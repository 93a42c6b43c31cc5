//! The checking thread of [`verify_bundle`](super::verify_bundle): walks the tar stream the
//! decoder hands over, entry by entry, and checks each against the signed manifest.

use std::collections::HashMap;
use std::io;
use std::sync::mpsc;

use super::content::{check_index_json, check_manifest, check_oci_layout, BlobState};
use super::decode::Msg;
use super::report::{ManifestSummary, SignatureReport, VerifyError, VerifyErrorKind, VerifyReport};
use super::tail::check_index;
use super::{MAX_INDEX_JSON_SIZE, MAX_MANIFEST_SIZE, MAX_OCI_LAYOUT_SIZE, MAX_SIGNATURE_SIZE};
use crate::digest::{Digest, Hasher};
use crate::format::{INDEX_PATH, MANIFEST_PATH, OCI_LAYOUT_PATH, SIGNATURE_PATH, TAR_BLOCK};
use crate::manifest::BundleManifest;
use crate::reader::header::{blob_digest, parse_header, unsafe_path, TarHeaderDefect};
use crate::reader::index::{EntryInfo, FrameInfo};
use crate::sign::VerifyingKey;

enum TarState {
    /// Collecting a 512-byte header block.
    Header {
        block: Box<[u8; TAR_BLOCK as usize]>,
        have: usize,
        /// A first zero block was seen: this one must be the second.
        after_zero: bool,
    },
    /// Inside an entry's data.
    Data { left: u64, padding: u64 },
    /// Inside the padding after an entry's data.
    Padding { left: u64 },
    /// After the two zero blocks: only zeros may follow.
    Ended,
}

enum Sink {
    Collect(Vec<u8>),
    Hash(Hasher),
}

struct Current {
    path: String,
    header_offset: u64,
    frame_offset: u64,
    sink: Sink,
}

pub(super) struct Checker<'k> {
    key: Option<&'k VerifyingKey>,
    pub(super) report: VerifyReport,
    state: TarState,
    pub(super) tar_pos: u64,
    /// Compressed offset of the frame the bytes being checked come from.
    frame_offset: u64,
    /// Where the header being collected started.
    header_start: (u64, u64),
    entries: Vec<EntryInfo>,
    seen: HashMap<String, u64>,
    current: Option<Current>,
    manifest_json: Vec<u8>,
    /// The manifest, once its signature was checked; with the blobs by digest.
    manifest: Option<(BundleManifest, HashMap<Digest, BlobState>)>,
    index_json_seen: bool,
    oci_layout_seen: bool,
}

impl<'k> Checker<'k> {
    pub(super) fn new(key: Option<&'k VerifyingKey>) -> Self {
        Checker {
            key,
            report: VerifyReport {
                ok: false,
                signature: SignatureReport::default(),
                manifest: None,
                entries: 0,
                blobs_verified: 0,
                bytes: 0,
                compressed_bytes: 0,
                seconds: 0.0,
                error: None,
            },
            state: new_header_state(false),
            tar_pos: 0,
            frame_offset: 0,
            header_start: (0, 0),
            entries: Vec::new(),
            seen: HashMap::new(),
            current: None,
            manifest_json: Vec::new(),
            manifest: None,
            index_json_seen: false,
            oci_layout_seen: false,
        }
    }

    pub(super) fn run(
        &mut self,
        data: mpsc::Receiver<Msg>,
        pool: mpsc::Sender<Vec<u8>>,
    ) -> Result<(), VerifyError> {
        for msg in data {
            match msg {
                Msg::Data {
                    buf,
                    len,
                    tar_offset,
                    frame_offset,
                } => {
                    debug_assert_eq!(tar_offset, self.tar_pos);
                    self.frame_offset = frame_offset;
                    let r = self.feed(&buf[..len]);
                    let _ = pool.send(buf);
                    r?;
                }
                Msg::End {
                    frames,
                    tail,
                    tail_offset,
                } => return self.finish(&frames, &tail, tail_offset),
                Msg::Failed(mut e, head) => {
                    // Name the entry the decoder stopped in: the open one, or the one whose
                    // header starts the failed frame (read, not trusted: it only names).
                    if e.path.is_none() {
                        e.path = self.current.as_ref().map(|c| c.path.clone());
                    }
                    let at_header = matches!(self.state, TarState::Header { have: 0, .. });
                    if e.path.is_none() && at_header && head.len() == TAR_BLOCK as usize {
                        let block: &[u8; TAR_BLOCK as usize] =
                            head[..].try_into().expect("one block");
                        e.path = parse_header(block).ok().map(|h| h.path);
                    }
                    return Err(e);
                }
            }
        }
        // The decoder only stops without a message when it panicked.
        Err(VerifyError::new(VerifyErrorKind::Read {
            source: io::Error::other("the decoding thread stopped"),
        }))
    }

    /// An error at the current entry (or at the current position when between entries).
    fn entry_error(&self, kind: VerifyErrorKind) -> VerifyError {
        match &self.current {
            Some(c) => VerifyError::new(kind)
                .entry(&c.path)
                .at(Some(c.header_offset), Some(c.frame_offset)),
            None => VerifyError::new(kind).at(Some(self.tar_pos), Some(self.frame_offset)),
        }
    }

    fn feed(&mut self, mut data: &[u8]) -> Result<(), VerifyError> {
        while !data.is_empty() {
            match &mut self.state {
                TarState::Header {
                    block,
                    have,
                    after_zero,
                } => {
                    if *have == 0 {
                        self.header_start = (self.tar_pos, self.frame_offset);
                    }
                    let n = (block.len() - *have).min(data.len());
                    block[*have..*have + n].copy_from_slice(&data[..n]);
                    *have += n;
                    data = &data[n..];
                    self.tar_pos += n as u64;
                    if *have == block.len() {
                        let block = std::mem::replace(block, Box::new([0; TAR_BLOCK as usize]));
                        let after_zero = *after_zero;
                        self.on_header(&block, after_zero)?;
                    }
                }
                TarState::Data { left, padding } => {
                    let n = (*left).min(data.len() as u64) as usize;
                    let current = self.current.as_mut().expect("an entry is open");
                    match &mut current.sink {
                        Sink::Collect(v) => v.extend_from_slice(&data[..n]),
                        Sink::Hash(h) => h.update(&data[..n]),
                    }
                    *left -= n as u64;
                    data = &data[n..];
                    self.tar_pos += n as u64;
                    if *left == 0 {
                        let padding = *padding;
                        self.state = if padding == 0 {
                            new_header_state(false)
                        } else {
                            TarState::Padding { left: padding }
                        };
                        self.finish_entry()?;
                    }
                }
                TarState::Padding { left } => {
                    let n = (*left).min(data.len() as u64) as usize;
                    *left -= n as u64;
                    data = &data[n..];
                    self.tar_pos += n as u64;
                    if *left == 0 {
                        self.state = new_header_state(false);
                    }
                }
                TarState::Ended => {
                    if let Some(i) = data.iter().position(|&b| b != 0) {
                        let at = self.tar_pos + i as u64;
                        return Err(VerifyError::new(VerifyErrorKind::DataAfterEnd)
                            .at(Some(at), Some(self.frame_offset)));
                    }
                    self.tar_pos += data.len() as u64;
                    data = &[];
                }
            }
        }
        Ok(())
    }

    fn on_header(
        &mut self,
        block: &[u8; TAR_BLOCK as usize],
        after_zero: bool,
    ) -> Result<(), VerifyError> {
        let (offset, frame_offset) = self.header_start;
        let header_error = |reason: TarHeaderDefect| {
            VerifyError::new(VerifyErrorKind::TarHeader { reason })
                .at(Some(offset), Some(frame_offset))
        };
        if block.iter().all(|&b| b == 0) {
            if after_zero {
                self.state = TarState::Ended;
                return self.end_of_archive();
            }
            self.state = new_header_state(true);
            return Ok(());
        }
        if after_zero {
            return Err(header_error(TarHeaderDefect::LoneZeroBlock));
        }
        let header = parse_header(block).map_err(header_error)?;
        let path = header.path;
        let at = |kind| {
            VerifyError::new(kind)
                .entry(&path)
                .at(Some(offset), Some(frame_offset))
        };

        // Structure first: nothing about an unsafe entry is looked at further.
        if let Some(reason) = unsafe_path(&path) {
            return Err(at(VerifyErrorKind::UnsafePath {
                path: path.clone(),
                reason,
            }));
        }
        if let Some(kind) = header.not_regular {
            return Err(at(VerifyErrorKind::NotRegularFile {
                path: path.clone(),
                kind,
                target: header.link,
            }));
        }
        let size = header.size;

        if self.entries.is_empty() {
            if path != MANIFEST_PATH {
                return Err(at(VerifyErrorKind::FirstEntryNotManifest {
                    found: path.clone(),
                }));
            }
            check_size(&path, size, MAX_MANIFEST_SIZE).map_err(at)?;
            return self.open(path, offset, frame_offset, size, collect(size));
        }
        if self.manifest.is_none() {
            // The entry after the manifest: its signature, or the manifest is unsigned.
            if path == SIGNATURE_PATH {
                self.report.signature.present = true;
                check_size(&path, size, MAX_SIGNATURE_SIZE).map_err(at)?;
                return self.open(path, offset, frame_offset, size, collect(size));
            }
            self.trust_manifest(None)?;
        }
        if let Some(&first_offset) = self.seen.get(&path) {
            return Err(at(VerifyErrorKind::DuplicateEntry {
                path: path.clone(),
                first_offset,
            }));
        }
        match path.as_str() {
            SIGNATURE_PATH => Err(at(VerifyErrorKind::SignatureOutOfPlace)),
            OCI_LAYOUT_PATH => {
                check_size(&path, size, MAX_OCI_LAYOUT_SIZE).map_err(at)?;
                self.open(path, offset, frame_offset, size, collect(size))
            }
            INDEX_PATH => {
                check_size(&path, size, MAX_INDEX_JSON_SIZE).map_err(at)?;
                self.open(path, offset, frame_offset, size, collect(size))
            }
            _ => {
                let Some(digest) = blob_digest(&path) else {
                    return Err(at(VerifyErrorKind::UnexpectedEntry { path: path.clone() }));
                };
                let (_, blobs) = self.manifest.as_ref().expect("trusted above");
                let Some(blob) = blobs.get(&digest) else {
                    return Err(at(VerifyErrorKind::UnlistedBlob { path: path.clone() }));
                };
                if let Some(base) = &blob.from_base {
                    return Err(at(VerifyErrorKind::BlobFromBase {
                        path: path.clone(),
                        base: base.clone(),
                    }));
                }
                if blob.size != size {
                    return Err(at(VerifyErrorKind::BlobSize {
                        path: path.clone(),
                        expected: blob.size,
                        actual: size,
                    }));
                }
                self.open(path, offset, frame_offset, size, Sink::Hash(Hasher::new()))
            }
        }
    }

    fn open(
        &mut self,
        path: String,
        header_offset: u64,
        frame_offset: u64,
        size: u64,
        sink: Sink,
    ) -> Result<(), VerifyError> {
        self.seen.insert(path.clone(), header_offset);
        self.entries.push(EntryInfo {
            path: path.clone(),
            offset: header_offset,
            size,
        });
        self.report.entries += 1;
        self.current = Some(Current {
            path,
            header_offset,
            frame_offset,
            sink,
        });
        let padding = (TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK;
        if size == 0 {
            self.state = if padding == 0 {
                new_header_state(false)
            } else {
                TarState::Padding { left: padding }
            };
            self.finish_entry()
        } else {
            self.state = TarState::Data {
                left: size,
                padding,
            };
            Ok(())
        }
    }

    /// An entry's data is complete.
    fn finish_entry(&mut self) -> Result<(), VerifyError> {
        let current = self.current.take().expect("an entry is open");
        let err = |kind| {
            VerifyError::new(kind)
                .entry(&current.path)
                .at(Some(current.header_offset), Some(current.frame_offset))
        };
        match current.sink {
            Sink::Hash(h) => {
                let actual = h.finish();
                let expected = blob_digest(&current.path).expect("checked when opened");
                if actual != expected {
                    return Err(err(VerifyErrorKind::BlobDigest {
                        path: current.path.clone(),
                        expected,
                        actual,
                    }));
                }
                let (_, blobs) = self.manifest.as_mut().expect("trusted before any blob");
                if let Some(b) = blobs.get_mut(&expected) {
                    b.seen = true;
                }
                self.report.blobs_verified += 1;
                Ok(())
            }
            Sink::Collect(bytes) => match current.path.as_str() {
                MANIFEST_PATH => {
                    self.manifest_json = bytes;
                    Ok(())
                }
                SIGNATURE_PATH => {
                    // Kept in `current` until checked so errors can name it.
                    self.current = Some(Current {
                        sink: Sink::Collect(Vec::new()),
                        ..current
                    });
                    let r = self.trust_manifest(Some(&bytes));
                    self.current = None;
                    r
                }
                OCI_LAYOUT_PATH => {
                    self.oci_layout_seen = true;
                    check_oci_layout(&bytes)
                        .map_err(|reason| err(VerifyErrorKind::OciLayout { reason }))
                }
                INDEX_PATH => {
                    self.index_json_seen = true;
                    let (manifest, _) = self.manifest.as_ref().expect("trusted before index.json");
                    check_index_json(&bytes, manifest)
                        .map_err(|reason| err(VerifyErrorKind::IndexJson { reason }))
                }
                _ => unreachable!("only known entries are collected"),
            },
        }
    }

    /// Checks the signature over the manifest's exact bytes, then parses the manifest.
    fn trust_manifest(&mut self, signature: Option<&[u8]>) -> Result<(), VerifyError> {
        match (self.key, signature) {
            (Some(key), Some(sig)) => {
                let fingerprint = key.fingerprint();
                key.verify(&self.manifest_json, sig).map_err(|source| {
                    self.entry_error(VerifyErrorKind::BadSignature {
                        key: fingerprint.clone(),
                        source,
                    })
                })?;
                self.report.signature.checked = true;
                self.report.signature.key = Some(fingerprint);
            }
            (Some(_), None) => {
                return Err(VerifyError::new(VerifyErrorKind::Unsigned)
                    .entry(MANIFEST_PATH)
                    .at(Some(0), Some(0)));
            }
            (None, _) => {}
        }
        let manifest_err = |kind| {
            VerifyError::new(kind)
                .entry(MANIFEST_PATH)
                .at(Some(0), Some(0))
        };
        let manifest = BundleManifest::from_json_bytes(&self.manifest_json)
            .map_err(|source| manifest_err(VerifyErrorKind::Manifest { source }))?;
        let blobs = check_manifest(&manifest)
            .map_err(|reason| manifest_err(VerifyErrorKind::ManifestInconsistent { reason }))?;
        self.report.manifest = Some(ManifestSummary {
            spec: manifest.spec.clone(),
            created: manifest.created.clone(),
            airlock_version: manifest.airlock_version.clone(),
            totals: manifest.totals,
            bases: manifest.bases.clone(),
        });
        self.manifest = Some((manifest, blobs));
        Ok(())
    }

    /// The second zero block was read: every required entry must have been seen.
    fn end_of_archive(&mut self) -> Result<(), VerifyError> {
        let end = Some(self.tar_pos);
        if self.entries.is_empty() {
            return Err(VerifyError::new(VerifyErrorKind::MissingEntry {
                path: MANIFEST_PATH,
            })
            .at(end, None));
        }
        if self.manifest.is_none() {
            self.trust_manifest(None)?;
        }
        let (manifest, blobs) = self.manifest.as_ref().expect("trusted above");
        let mut missing = manifest.blobs.iter().filter(|b| {
            blobs
                .get(&b.digest)
                .is_some_and(|s| !s.seen && s.from_base.is_none())
        });
        if let Some(first) = missing.next() {
            return Err(VerifyError::new(VerifyErrorKind::MissingBlob {
                digest: first.digest.clone(),
                more: missing.count(),
            })
            .entry(&first.digest.blob_path())
            .at(end, None));
        }
        for (seen, path) in [
            (self.oci_layout_seen, OCI_LAYOUT_PATH),
            (self.index_json_seen, INDEX_PATH),
        ] {
            if !seen {
                return Err(VerifyError::new(VerifyErrorKind::MissingEntry { path }).at(end, None));
            }
        }
        Ok(())
    }

    /// The data frames are over: the tar must be complete and the index must describe it.
    fn finish(
        &mut self,
        frames: &[FrameInfo],
        tail: &[u8],
        tail_offset: u64,
    ) -> Result<(), VerifyError> {
        if !matches!(self.state, TarState::Ended) {
            let inside = self.current.as_ref().map(|c| c.path.clone());
            let kind = if tail.is_empty() {
                VerifyErrorKind::Truncated {
                    file_len: tail_offset,
                    what: match &inside {
                        Some(p) => format!("the tar stream stops inside entry `{p}`"),
                        None => "the tar stream stops before its end blocks".to_owned(),
                    },
                }
            } else {
                VerifyErrorKind::NoEndOfArchive {
                    inside: inside.clone(),
                }
            };
            let mut e = VerifyError::new(kind).at(Some(self.tar_pos), Some(tail_offset));
            e.path = inside;
            return Err(e);
        }
        check_index(frames, &self.entries, tail, tail_offset)
    }
}

fn new_header_state(after_zero: bool) -> TarState {
    TarState::Header {
        block: Box::new([0; TAR_BLOCK as usize]),
        have: 0,
        after_zero,
    }
}

fn collect(size: u64) -> Sink {
    // Sizes were capped by the caller.
    Sink::Collect(Vec::with_capacity(size as usize))
}

pub(crate) fn check_size(path: &str, size: u64, limit: u64) -> Result<(), VerifyErrorKind> {
    if size > limit {
        return Err(VerifyErrorKind::EntryTooLarge {
            path: path.to_owned(),
            size,
            limit,
        });
    }
    Ok(())
}
