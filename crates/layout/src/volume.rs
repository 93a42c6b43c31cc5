//! Split volumes: a bundle written as parts `NAME.tar.zst.000`, `.001`, … with a signed part
//! list `NAME.tar.zst.parts.json`, and [`BundleFile`], the one way a bundle file is opened for
//! reading, whether it is one file or parts (docs/split.md).
//!
//! The parts concatenated are byte-identical to the unsplit bundle; they are read in place,
//! never joined and never copied.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, Hasher};

/// The `kind` of a part list.
pub const PARTS_KIND: &str = "airlock-parts";
/// The only `formatVersion` of a part list this version reads and writes.
pub const PARTS_FORMAT_VERSION: u32 = 1;
/// What a part list's file name adds to the bundle's name.
pub const PARTS_SUFFIX: &str = ".parts.json";
/// What a part list's signature's file name adds to the part list's name.
pub const SIGNATURE_SUFFIX: &str = ".sig";
/// The smallest part size `--split` takes: smaller parts would only multiply files.
pub const MIN_PART_SIZE: u64 = 1_000_000;
/// A part list is a few hundred bytes per part; anything much larger is not one.
const MAX_PART_LIST_SIZE: u64 = 16 << 20;

/// The part list `NAME.tar.zst.parts.json`: what the parts of a split bundle are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PartList {
    /// Always [`PARTS_KIND`].
    pub kind: String,
    /// Always [`PARTS_FORMAT_VERSION`].
    pub format_version: u32,
    /// The bundle's file name (`NAME.tar.zst`), which the parts' names extend.
    pub bundle: String,
    /// Length of the whole bundle (the parts together).
    pub size: u64,
    /// sha256 of the whole bundle (the parts concatenated).
    pub sha256: Digest,
    /// sha256 of the bundle's exact `airlock/manifest.json` bytes, which ties this list to the
    /// signed inventory.
    pub manifest_sha256: Digest,
    /// The parts, in order.
    pub parts: Vec<PartRecord>,
}

/// One part in a [`PartList`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PartRecord {
    /// Its file name, `NAME.tar.zst.NNN`, in the part list's directory.
    pub name: String,
    /// Its length.
    pub size: u64,
    /// Its sha256.
    pub sha256: Digest,
}

/// What is wrong with a `--split` size, a part list or a part.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// A size that is not a number with an optional unit.
    #[error(
        "`{input}` is not a size\n  hint: give bytes, or a number with K, M, G, T (powers of \
         ten: 4G = 4000000000) or Ki, Mi, Gi, Ti (powers of two), e.g. `--split 4G` or `4.7G`"
    )]
    BadSize {
        /// The size as given.
        input: String,
    },
    /// A size below [`MIN_PART_SIZE`].
    #[error("part size `{input}` ({bytes} bytes) is too small\n  hint: give at least 1M (1000000 bytes)")]
    SizeTooSmall {
        /// The size as given.
        input: String,
        /// Its value.
        bytes: u64,
    },
    /// A file could not be opened or read.
    #[error("cannot read `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The first part was given but no part list is beside it.
    #[error(
        "the part list `{}` is missing beside the first part `{}`\n  hint: copy it from the \
         first medium into the same directory",
        list.display(), part.display()
    )]
    NoPartList {
        /// Where the part list was expected.
        list: PathBuf,
        /// The first part given.
        part: PathBuf,
    },
    /// The part list is not one.
    #[error("`{}` is not an airlock part list: {reason}", path.display())]
    BadPartList {
        /// The part list.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The part list has another format version.
    #[error(
        "the part list `{}` has formatVersion {found}; this airlock reads only version {}\n  \
         hint: use the airlock release that wrote it, or a newer one",
        path.display(), PARTS_FORMAT_VERSION
    )]
    PartListVersion {
        /// The part list.
        path: PathBuf,
        /// Its version.
        found: u64,
    },
    /// A part is not where the part list says.
    #[error(
        "part `{name}` ({number} of {count}) is missing: expected at `{}`, {size} bytes; copy \
         it from its medium",
        path.display()
    )]
    PartMissing {
        /// Its file name.
        name: String,
        /// Its number, from 1.
        number: usize,
        /// How many parts there are.
        count: usize,
        /// Where it was expected.
        path: PathBuf,
        /// Its listed size.
        size: u64,
    },
    /// A part has another size than listed.
    #[error(
        "part `{name}` ({number} of {count}) at `{}` has {found} bytes, the part list says \
         {size}; copy it again from its medium",
        path.display()
    )]
    PartSize {
        /// Its file name.
        name: String,
        /// Its number, from 1.
        number: usize,
        /// How many parts there are.
        count: usize,
        /// Where it is.
        path: PathBuf,
        /// Its length.
        found: u64,
        /// Its listed size.
        size: u64,
    },
    /// The part list's signature is missing or does not verify.
    #[error("the part list `{}` is not trusted", path.display())]
    Untrusted {
        /// The part list.
        path: PathBuf,
        /// Why.
        #[source]
        source: crate::trust::TrustError,
    },
    /// The part list belongs to another bundle.
    #[error(
        "the part list `{}` names the manifest `{listed}`, but the bundle's \
         `airlock/manifest.json` is `{found}`\n  hint: the parts or the list come from another \
         bundle; copy them again from their media",
        path.display()
    )]
    ManifestMismatch {
        /// The part list.
        path: PathBuf,
        /// The digest it lists.
        listed: Digest,
        /// The digest of the bundle's manifest.
        found: Digest,
    },
}

/// Parses a `--split` size: plain bytes, or a number (decimals allowed) with `K`, `M`, `G`,
/// `T` (powers of ten) or `Ki`, `Mi`, `Gi`, `Ti` (powers of two), optionally followed by `B`.
/// Sizes below [`MIN_PART_SIZE`] are refused.
pub fn parse_size(input: &str) -> Result<u64, VolumeError> {
    let bad = || VolumeError::BadSize {
        input: input.to_owned(),
    };
    let s = input.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let unit = unit.trim_start();
    let multiplier: u64 = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" => 1_000,
        "M" | "MB" => 1_000_000,
        "G" | "GB" => 1_000_000_000,
        "T" | "TB" => 1_000_000_000_000,
        "KI" | "KIB" => 1 << 10,
        "MI" | "MIB" => 1 << 20,
        "GI" | "GIB" => 1 << 30,
        "TI" | "TIB" => 1 << 40,
        _ => return Err(bad()),
    };
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return Err(bad());
    }
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if frac.contains('.') || frac.len() > 12 {
        return Err(bad());
    }
    let whole: u64 = whole.parse().map_err(|_| bad())?;
    let mut bytes = whole.checked_mul(multiplier).ok_or_else(bad)?;
    if !frac.is_empty() {
        let digits: u128 = frac.parse().map_err(|_| bad())?;
        let scale = 10u128.pow(frac.len() as u32);
        let part = u64::try_from(digits * u128::from(multiplier) / scale).map_err(|_| bad())?;
        bytes = bytes.checked_add(part).ok_or_else(bad)?;
    }
    if bytes < MIN_PART_SIZE {
        return Err(VolumeError::SizeTooSmall {
            input: input.to_owned(),
            bytes,
        });
    }
    Ok(bytes)
}

/// The file name of part `index` (from 0) of the bundle named `bundle`: `NAME.tar.zst.000`.
pub fn part_name(bundle: &str, index: usize) -> String {
    format!("{bundle}.{index:03}")
}

/// The path of the part list of the bundle at `bundle`: `NAME.tar.zst.parts.json`.
pub fn part_list_path(bundle: &Path) -> PathBuf {
    let mut s = bundle.as_os_str().to_owned();
    s.push(PARTS_SUFFIX);
    PathBuf::from(s)
}

/// The path of the signature of the part list at `list`.
pub fn part_list_signature_path(list: &Path) -> PathBuf {
    let mut s = list.as_os_str().to_owned();
    s.push(SIGNATURE_SUFFIX);
    PathBuf::from(s)
}

impl PartList {
    /// Parses a part list's bytes; `path` names it in errors. The kind and version are
    /// checked before anything else, so a later format is refused by its version.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<PartList, VolumeError> {
        let bad = |reason: String| VolumeError::BadPartList {
            path: path.to_owned(),
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        match value.get("kind").and_then(|k| k.as_str()) {
            Some(PARTS_KIND) => {}
            Some(other) => return Err(bad(format!("its kind is `{other}`, not `{PARTS_KIND}`"))),
            None => return Err(bad(format!("no kind `{PARTS_KIND}`"))),
        }
        match value.get("formatVersion").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(PARTS_FORMAT_VERSION) => {}
            Some(found) => {
                return Err(VolumeError::PartListVersion {
                    path: path.to_owned(),
                    found,
                })
            }
            None => return Err(bad("no formatVersion".into())),
        }
        let list: PartList = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
        if list.parts.is_empty() {
            return Err(bad("it lists no part".into()));
        }
        for (i, p) in list.parts.iter().enumerate() {
            if p.name != part_name(&list.bundle, i) {
                return Err(bad(format!(
                    "part {} is named `{}`, expected `{}`",
                    i + 1,
                    p.name,
                    part_name(&list.bundle, i)
                )));
            }
        }
        if !plain_name(&list.bundle) {
            return Err(bad(format!("`{}` is not a plain file name", list.bundle)));
        }
        let total = list
            .parts
            .iter()
            .try_fold(0u64, |a, p| a.checked_add(p.size));
        if total != Some(list.size) {
            return Err(bad(format!(
                "its parts do not add up to its size {}",
                list.size
            )));
        }
        Ok(list)
    }

    /// The bytes written to disk: pretty JSON with a final newline (reproducible).
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("a part list always serializes");
        v.push(b'\n');
        v
    }
}

fn plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

/// One part of an open [`BundleFile`].
#[derive(Debug)]
struct Part {
    path: PathBuf,
    file: File,
    /// Where it starts in the whole.
    start: u64,
    len: u64,
}

/// The part list a [`BundleFile`] was opened through.
#[derive(Debug)]
pub struct OpenPartList {
    /// Where it is.
    pub path: PathBuf,
    /// Its exact bytes.
    pub bytes: Vec<u8>,
    /// Its content.
    pub list: PartList,
    /// The bytes of its signature `NAME.tar.zst.parts.json.sig`, when there is one.
    pub signature: Option<Vec<u8>>,
}

/// A bundle opened for reading: one file, or the parts of a split bundle presented as one
/// file (`Read + Seek`, positional reads across part boundaries). Every reader of bundles
/// opens them through this type.
///
/// Clones share the open files and have a position of their own.
#[derive(Debug, Clone)]
pub struct BundleFile {
    parts: Arc<[Part]>,
    list: Option<Arc<OpenPartList>>,
    len: u64,
    pos: u64,
}

impl BundleFile {
    /// Opens the bundle at `path`: a bundle file, the first part `NAME.tar.zst.000` of a
    /// split bundle, its part list `NAME.tar.zst.parts.json`, or `NAME.tar.zst` when only its
    /// parts are there. A part's size is checked against the part list at once: a missing or
    /// short part is named, with where it was expected.
    pub fn open(path: &Path) -> Result<BundleFile, VolumeError> {
        match BundleFile::find_part_list(path)? {
            Some(list) => BundleFile::open_parts(&list),
            None => BundleFile::open_single(path),
        }
    }

    /// The part list `path` leads to, if it leads to one.
    pub fn find_part_list(path: &Path) -> Result<Option<PathBuf>, VolumeError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.ends_with(PARTS_SUFFIX) {
            return Ok(Some(path.to_owned()));
        }
        if let Some(bundle) = name.strip_suffix(".000") {
            let list = part_list_path(&path.with_file_name(bundle));
            if list.exists() {
                return Ok(Some(list));
            }
            return Err(VolumeError::NoPartList {
                list,
                part: path.to_owned(),
            });
        }
        let list = part_list_path(path);
        if !path.exists() && list.exists() {
            return Ok(Some(list));
        }
        Ok(None)
    }

    fn open_single(path: &Path) -> Result<BundleFile, VolumeError> {
        let read = |source| VolumeError::Read {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(read)?;
        let len = file.metadata().map_err(read)?.len();
        Ok(BundleFile {
            parts: Arc::from(vec![Part {
                path: path.to_owned(),
                file,
                start: 0,
                len,
            }]),
            list: None,
            len,
            pos: 0,
        })
    }

    /// Reads and parses the part list at `path`, and its signature if there is one.
    pub fn read_part_list(path: &Path) -> Result<OpenPartList, VolumeError> {
        let read = |source| VolumeError::Read {
            path: path.to_owned(),
            source,
        };
        let mut bytes = Vec::new();
        File::open(path)
            .map_err(read)?
            .take(MAX_PART_LIST_SIZE)
            .read_to_end(&mut bytes)
            .map_err(read)?;
        let list = PartList::parse(&bytes, path)?;
        let sig_path = part_list_signature_path(path);
        let signature = match std::fs::read(&sig_path) {
            Ok(s) => Some(s),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(VolumeError::Read {
                    path: sig_path,
                    source,
                })
            }
        };
        Ok(OpenPartList {
            path: path.to_owned(),
            bytes,
            list,
            signature,
        })
    }

    fn open_parts(list_path: &Path) -> Result<BundleFile, VolumeError> {
        let open = BundleFile::read_part_list(list_path)?;
        let dir = list_path.parent().unwrap_or(Path::new(""));
        let count = open.list.parts.len();
        let mut parts = Vec::with_capacity(count);
        let mut start = 0;
        for (i, p) in open.list.parts.iter().enumerate() {
            let path = dir.join(&p.name);
            let missing = || VolumeError::PartMissing {
                name: p.name.clone(),
                number: i + 1,
                count,
                path: path.clone(),
                size: p.size,
            };
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(missing()),
                Err(source) => return Err(VolumeError::Read { path, source }),
            };
            let found = file
                .metadata()
                .map_err(|source| VolumeError::Read {
                    path: path.clone(),
                    source,
                })?
                .len();
            if found != p.size {
                return Err(VolumeError::PartSize {
                    name: p.name.clone(),
                    number: i + 1,
                    count,
                    path,
                    found,
                    size: p.size,
                });
            }
            parts.push(Part {
                path,
                file,
                start,
                len: p.size,
            });
            start += p.size;
        }
        Ok(BundleFile {
            parts: Arc::from(parts),
            list: Some(Arc::new(open)),
            len: start,
            pos: 0,
        })
    }

    /// Length of the whole bundle.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the bundle has no byte (never a valid bundle).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The part list, when the bundle is split.
    pub fn part_list(&self) -> Option<&OpenPartList> {
        self.list.as_deref()
    }

    /// The files the bundle is read from, in order, with their lengths.
    pub fn files(&self) -> impl Iterator<Item = (&Path, u64)> {
        self.parts.iter().map(|p| (p.path.as_path(), p.len))
    }

    /// Another handle on the same files, with its own position (at the start).
    pub fn try_clone(&self) -> io::Result<BundleFile> {
        Ok(BundleFile {
            pos: 0,
            ..self.clone()
        })
    }

    /// Reads up to `buf.len()` bytes at `offset` of the whole; short only at a part's end or
    /// the bundle's end (like `pread`).
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let i = self.parts.partition_point(|p| p.start + p.len <= offset);
        let part = &self.parts[i];
        let within = offset - part.start;
        let n = (buf.len() as u64).min(part.len - within) as usize;
        part.file.read_at(&mut buf[..n], within)
    }

    /// Fills `buf` from `offset` of the whole, across part boundaries.
    pub fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, offset) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the bundle ends at byte {} (a part shrank?)", self.len),
                    ))
                }
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Checks the part list against the trust and the bundle's manifest: with a key, its
    /// signature must verify; always, the manifest digest it lists must be the sha256 of the
    /// bundle's exact `airlock/manifest.json`. A bundle of one file passes.
    pub fn check_part_list(
        &self,
        trust: &crate::trust::Trust,
        manifest_json: &[u8],
        purpose: crate::trust::Purpose,
    ) -> Result<(), VolumeError> {
        let Some(open) = self.part_list() else {
            return Ok(());
        };
        check_list(open, trust, manifest_json, purpose)
    }

    /// A reader that streams the whole bundle from the start and hashes each part against
    /// its listed sha256 on the way, and the handle that reports what it found.
    pub fn checked(self) -> (CheckedReader, PartChecker) {
        let state = Arc::new(Mutex::new(CheckState {
            hasher: Hasher::new(),
            part: 0,
            states: vec![PartState::Unread; self.parts.len()],
            file: self,
        }));
        (CheckedReader(state.clone()), PartChecker(state))
    }
}

impl Read for BundleFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for BundleFile {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let target = target.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the bundle's start",
            )
        })?;
        self.pos = target;
        Ok(target)
    }
}

impl From<File> for BundleFile {
    /// One file, already open (its name is unknown: errors name it `-`).
    fn from(file: File) -> BundleFile {
        let len = file.metadata().map_or(0, |m| m.len());
        BundleFile {
            parts: Arc::from(vec![Part {
                path: PathBuf::from("-"),
                file,
                start: 0,
                len,
            }]),
            list: None,
            len,
            pos: 0,
        }
    }
}

/// What a streaming check found of one part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum PartState {
    /// Not read (yet).
    Unread,
    /// It hashed to its listed sha256.
    Ok,
    /// It did not.
    Damaged {
        /// What it hashed to.
        found: Digest,
    },
    /// It could not be read to its end.
    Unreadable {
        /// Why.
        error: String,
    },
}

/// One part and what a check found of it (see [`PartChecker::finish`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartStatus {
    /// The part's file name.
    pub name: String,
    /// Where it was read.
    pub path: PathBuf,
    /// Its listed size.
    pub size: u64,
    /// Its listed sha256.
    pub sha256: Digest,
    /// What was found.
    #[serde(flatten)]
    pub state: PartState,
}

impl PartStatus {
    /// What an operator is told of a part that is not ok; `None` when it is.
    pub fn problem(&self) -> Option<String> {
        match &self.state {
            PartState::Ok => None,
            PartState::Damaged { found } => Some(format!(
                "part `{}` is damaged: sha256 {found}, expected {}; copy it again from its medium",
                self.name, self.sha256
            )),
            PartState::Unreadable { error } => Some(format!(
                "part `{}` cannot be read at `{}`: {error}; copy it again from its medium",
                self.name,
                self.path.display()
            )),
            PartState::Unread => Some(format!("part `{}` was not checked", self.name)),
        }
    }
}

#[derive(Debug)]
struct CheckState {
    file: BundleFile,
    hasher: Hasher,
    part: usize,
    states: Vec<PartState>,
}

impl CheckState {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(list) = self.file.list.clone() else {
            return self.file.read(buf);
        };
        let Some(part) = self.file.parts.get(self.part) else {
            return Ok(0);
        };
        let end = part.start + part.len;
        let want = (buf.len() as u64).min(end - self.file.pos) as usize;
        let n = match self.file.read(&mut buf[..want]) {
            Ok(0) if want > 0 => {
                let e = io::Error::new(io::ErrorKind::UnexpectedEof, "the part is shorter");
                self.states[self.part] = PartState::Unreadable {
                    error: e.to_string(),
                };
                return Err(e);
            }
            Ok(n) => n,
            Err(e) => {
                self.states[self.part] = PartState::Unreadable {
                    error: e.to_string(),
                };
                return Err(e);
            }
        };
        self.hasher.update(&buf[..n]);
        if self.file.pos == end {
            let found = std::mem::replace(&mut self.hasher, Hasher::new()).finish();
            let listed = &list.list.parts[self.part].sha256;
            self.states[self.part] = match &found == listed {
                true => PartState::Ok,
                false => PartState::Damaged { found },
            };
            self.part += 1;
        }
        Ok(n)
    }
}

/// Streams a bundle from its start, hashing each part (see [`BundleFile::checked`]).
#[derive(Debug)]
pub struct CheckedReader(Arc<Mutex<CheckState>>);

impl Read for CheckedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).read(buf)
    }
}

/// Reports what a [`CheckedReader`] found of each part.
#[derive(Debug, Clone)]
pub struct PartChecker(Arc<Mutex<CheckState>>);

impl PartChecker {
    /// Reads the rest of the parts (whatever the reader's consumer left unread, e.g. after it
    /// stopped at an error) and says what each part is; empty for a bundle of one file.
    pub fn finish(&self) -> Vec<PartStatus> {
        let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let Some(list) = state.file.list.clone() else {
            return Vec::new();
        };
        let mut buf = vec![0; 1 << 20];
        while state.part < state.states.len() {
            if state.read(&mut buf).is_err() {
                // Go on with the next part: each is hashed on its own.
                let next = state.part + 1;
                if let Some(p) = state.file.parts.get(next) {
                    state.file.pos = p.start;
                }
                state.hasher = Hasher::new();
                state.part = next;
            }
        }
        list.list
            .parts
            .iter()
            .zip(state.file.parts.iter())
            .zip(&state.states)
            .map(|((r, p), s)| PartStatus {
                name: r.name.clone(),
                path: p.path.clone(),
                size: r.size,
                sha256: r.sha256.clone(),
                state: s.clone(),
            })
            .collect()
    }
}

/// The part list `path` leads to (see [`BundleFile::find_part_list`]), when it leads to one
/// that can be read.
pub fn part_list_of(path: &Path) -> Option<OpenPartList> {
    let list = BundleFile::find_part_list(path).ok()??;
    BundleFile::read_part_list(&list).ok()
}

/// What `airlock verify` found of a split bundle's parts (see [`verify_parts`]).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartsReport {
    /// Every part is there, of its size and sha256; the part list is trusted and belongs to
    /// the bundle.
    pub ok: bool,
    /// The part list.
    pub part_list: PathBuf,
    /// Each part and what was found.
    pub parts: Vec<PartStatus>,
    /// What is wrong, for people, one line each (the damaged parts first).
    pub problems: Vec<String>,
}

/// Streams the bundle `file` through `verify` (e.g. `verify_bundle` with the key of `trust`)
/// and, for a split bundle, hashes each part against the part list on the way, then checks
/// the part list's signature and manifest digest. `None` for a bundle of one file.
pub fn verify_parts<T>(
    file: BundleFile,
    trust: &crate::trust::Trust,
    verify: impl FnOnce(CheckedReader) -> T,
) -> (T, Option<PartsReport>) {
    let list = file.list.clone();
    let head_file = file
        .try_clone()
        .expect("a clone of a BundleFile never fails");
    let (reader, checker) = file.checked();
    let outcome = verify(reader);
    let Some(list) = list else {
        return (outcome, None);
    };
    let parts = checker.finish();
    let mut problems: Vec<String> = parts.iter().filter_map(PartStatus::problem).collect();
    if problems.is_empty() {
        // The parts are what the list says; now whether the list is the bundle's.
        match crate::reader::read_head(io::BufReader::new(head_file)) {
            Ok(head) => {
                let purpose = crate::trust::Purpose::Verify;
                if let Err(e) = check_list(&list, trust, &head.manifest_json, purpose) {
                    problems.push(chain(&e));
                }
            }
            Err(e) => problems.push(format!("cannot read the bundle's manifest: {e}")),
        }
    }
    let report = PartsReport {
        ok: problems.is_empty(),
        part_list: list.path.clone(),
        parts,
        problems,
    };
    (outcome, Some(report))
}

/// An error and its causes, `: `-joined.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

fn check_list(
    open: &OpenPartList,
    trust: &crate::trust::Trust,
    manifest_json: &[u8],
    purpose: crate::trust::Purpose,
) -> Result<(), VolumeError> {
    trust
        .check_signature(&open.bytes, open.signature.as_deref(), &open.path, purpose)
        .map_err(|source| VolumeError::Untrusted {
            path: open.path.clone(),
            source,
        })?;
    let found = Digest::of_bytes(manifest_json);
    if found != open.list.manifest_sha256 {
        return Err(VolumeError::ManifestMismatch {
            path: open.path.clone(),
            listed: open.list.manifest_sha256.clone(),
            found,
        });
    }
    Ok(())
}

/// What a part list says is present where, without reading the parts: for a report of a
/// split bundle that could not be opened (a part missing or of the wrong size).
pub fn survey(list: &OpenPartList) -> Vec<PartSurvey> {
    let dir = list.path.parent().unwrap_or(Path::new(""));
    list.list
        .parts
        .iter()
        .map(|p| {
            let path = dir.join(&p.name);
            let found = std::fs::metadata(&path).ok().map(|m| m.len());
            PartSurvey {
                name: p.name.clone(),
                size: p.size,
                sha256: p.sha256.clone(),
                state: match found {
                    None => "missing",
                    Some(n) if n != p.size => "wrongSize",
                    Some(_) => "present",
                },
                found_size: found,
                path,
            }
        })
        .collect()
}

/// One part as [`survey`] found it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartSurvey {
    /// Its file name.
    pub name: String,
    /// Where it was looked for.
    pub path: PathBuf,
    /// Its listed size.
    pub size: u64,
    /// Its listed sha256.
    pub sha256: Digest,
    /// `missing`, `wrongSize` or `present` (not hashed).
    pub state: &'static str,
    /// The size found, if it is there.
    pub found_size: Option<u64>,
}

/// Free space of the file system holding `dir`, in bytes available to this user.
pub fn free_space(dir: &Path) -> io::Result<u64> {
    let st = rustix::fs::statvfs(dir)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// The margin [`check_free_space`] adds to an estimate: 2 % plus 16 MiB.
pub fn with_margin(estimate: u64) -> u64 {
    estimate
        .saturating_add(estimate / 50)
        .saturating_add(16 << 20)
}

/// Not enough room for a bundle.
#[derive(Debug, thiserror::Error)]
#[error(
    "not enough free space in `{}`: the bundle needs about {} ({needed} bytes: its blobs, the \
     archive's overhead and a margin of 2% + 16 MiB), {} ({free} bytes) are free\n  hint: free \
     some space, or write to another directory (-o)",
    dir.display(), human(*needed), human(*free)
)]
pub struct NoSpace {
    /// The output directory.
    pub dir: PathBuf,
    /// What it needs, margin included.
    pub needed: u64,
    /// What is free.
    pub free: u64,
}

/// Refuses when the directory `dir` has less free space than `estimate` plus the margin of
/// [`with_margin`]. An unknown free space (statvfs failed) passes.
pub fn check_free_space(dir: &Path, estimate: u64) -> Result<(), NoSpace> {
    let Ok(free) = free_space(dir) else {
        return Ok(());
    };
    check_free(dir, estimate, free)
}

fn check_free(dir: &Path, estimate: u64, free: u64) -> Result<(), NoSpace> {
    let needed = with_margin(estimate);
    if free < needed {
        return Err(NoSpace {
            dir: dir.to_owned(),
            needed,
            free,
        });
    }
    Ok(())
}

fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    match u {
        0 => format!("{n} B"),
        _ => format!("{v:.1} {}", UNITS[u]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4G").unwrap(), 4_000_000_000);
        assert_eq!(parse_size("50M").unwrap(), 50_000_000);
        assert_eq!(parse_size("4000M").unwrap(), 4_000_000_000);
        assert_eq!(parse_size("4.7G").unwrap(), 4_700_000_000);
        assert_eq!(parse_size("1Gi").unwrap(), 1 << 30);
        assert_eq!(parse_size("2MiB").unwrap(), 2 << 20);
        assert_eq!(parse_size("25gb").unwrap(), 25_000_000_000);
        assert_eq!(parse_size("1000000").unwrap(), 1_000_000);
        assert_eq!(parse_size("1.5Ti").unwrap(), 3 << 39);
        for bad in ["", "G", "4X", "-4G", "4..7G", ".5G", "4.G", "4 G B", "1e9"] {
            assert!(
                matches!(parse_size(bad), Err(VolumeError::BadSize { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_size("999K"),
            Err(VolumeError::SizeTooSmall { bytes: 999_000, .. })
        ));
        assert!(parse_size("99999999999999T").is_err());
    }

    #[test]
    fn free_space_message_names_both_sizes() {
        let e = check_free(Path::new("/out"), 100_000_000, 50_000_000).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("/out"), "{msg}");
        assert!(msg.contains("50.0 MB"), "{msg}");
        assert!(msg.contains("margin"), "{msg}");
        assert!(check_free(Path::new("/out"), 100, 1 << 30).is_ok());
        assert!(free_space(Path::new(".")).unwrap() > 0);
    }

    fn write_parts(dir: &Path, data: &[u8], cuts: &[usize]) -> PathBuf {
        let mut parts = Vec::new();
        let mut start = 0;
        let mut bounds: Vec<usize> = cuts.to_vec();
        bounds.push(data.len());
        for (i, end) in bounds.into_iter().enumerate() {
            let name = part_name("b.tar.zst", i);
            std::fs::write(dir.join(&name), &data[start..end]).unwrap();
            parts.push(PartRecord {
                name,
                size: (end - start) as u64,
                sha256: Digest::of_bytes(&data[start..end]),
            });
            start = end;
        }
        let list = PartList {
            kind: PARTS_KIND.into(),
            format_version: PARTS_FORMAT_VERSION,
            bundle: "b.tar.zst".into(),
            size: data.len() as u64,
            sha256: Digest::of_bytes(data),
            manifest_sha256: Digest::of_bytes(b"m"),
            parts,
        };
        let path = dir.join("b.tar.zst.parts.json");
        std::fs::write(&path, list.to_json()).unwrap();
        path
    }

    proptest! {
        #[test]
        fn reads_across_parts(
            data in proptest::collection::vec(any::<u8>(), 1..600),
            cuts in proptest::collection::vec(0usize..600, 0..5),
            offset in 0usize..600,
            len in 0usize..700,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % data.len()).collect();
            cuts.sort();
            let list = write_parts(dir.path(), &data, &cuts);
            for path in [list.clone(), dir.path().join("b.tar.zst.000"), dir.path().join("b.tar.zst")] {
                let mut f = BundleFile::open(&path).unwrap();
                prop_assert_eq!(f.len(), data.len() as u64);
                let offset = offset % data.len();
                let len = len.min(data.len() - offset);
                let mut buf = vec![0; len];
                f.read_exact_at(&mut buf, offset as u64).unwrap();
                prop_assert_eq!(&buf[..], &data[offset..offset + len]);
                f.seek(SeekFrom::Start(offset as u64)).unwrap();
                let mut rest = Vec::new();
                f.try_clone().unwrap().read_to_end(&mut rest).unwrap();
                prop_assert_eq!(&rest[..], &data[..]);
                let mut rest = Vec::new();
                f.read_to_end(&mut rest).unwrap();
                prop_assert_eq!(&rest[..], &data[offset..]);
            }
        }
    }

    #[test]
    fn missing_short_and_damaged_parts_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let list = write_parts(dir.path(), &data, &[1000, 2000]);

        let f = BundleFile::open(&list).unwrap();
        let (mut r, check) = f.checked();
        std::io::copy(&mut r, &mut std::io::sink()).unwrap();
        assert!(check.finish().iter().all(|s| s.state == PartState::Ok));

        let p1 = dir.path().join("b.tar.zst.001");
        let mut bytes = std::fs::read(&p1).unwrap();
        bytes[10] ^= 1;
        std::fs::write(&p1, &bytes).unwrap();
        let (mut r, check) = BundleFile::open(&list).unwrap().checked();
        let mut some = [0; 10];
        r.read_exact(&mut some).unwrap();
        drop(r);
        let states = check.finish();
        assert_eq!(states[0].state, PartState::Ok);
        assert!(matches!(states[1].state, PartState::Damaged { .. }));
        assert!(states[1].problem().unwrap().contains("b.tar.zst.001"));
        assert_eq!(states[2].state, PartState::Ok);

        std::fs::remove_file(dir.path().join("b.tar.zst.002")).unwrap();
        let e = BundleFile::open(&dir.path().join("b.tar.zst.000")).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("part `b.tar.zst.002` (3 of 3) is missing"),
            "{msg}"
        );
        assert!(msg.contains("1000 bytes"), "{msg}");

        std::fs::write(dir.path().join("b.tar.zst.002"), b"short").unwrap();
        let e = BundleFile::open(&list).unwrap_err();
        assert!(matches!(e, VolumeError::PartSize { found: 5, .. }), "{e}");
    }

    #[test]
    fn part_list_version_and_fields_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let list = write_parts(dir.path(), b"abc", &[]);
        let text = std::fs::read_to_string(&list).unwrap();
        let v2 = text.replace("\"formatVersion\": 1", "\"formatVersion\": 2");
        assert!(matches!(
            PartList::parse(v2.as_bytes(), &list),
            Err(VolumeError::PartListVersion { found: 2, .. })
        ));
        let extra = text.replacen('{', "{\"extra\": 1,", 1);
        assert!(matches!(
            PartList::parse(extra.as_bytes(), &list),
            Err(VolumeError::BadPartList { .. })
        ));
        let e = BundleFile::open(&dir.path().join("x.tar.zst.000")).unwrap_err();
        assert!(matches!(e, VolumeError::NoPartList { .. }), "{e}");
    }
}
