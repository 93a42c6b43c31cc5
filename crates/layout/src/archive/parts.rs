//! Where the writer's bytes go: one temporary file, or temporary parts of at most a given
//! size, each hashed on the way, renamed together only when the whole run succeeded.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::locked_temp;
use crate::digest::{Digest, Hasher};
use crate::error::Error;
use crate::sign::SigningKey;
use crate::volume::{
    part_list_path, part_list_signature_path, part_name, PartList, PartRecord,
    PARTS_FORMAT_VERSION, PARTS_KIND,
};

/// How to split a bundle into parts (see [`crate::write_split_bundle_until`]).
#[derive(Debug, Clone, Copy)]
pub struct SplitOptions<'a> {
    /// The largest part, in bytes (at least [`crate::volume::MIN_PART_SIZE`]).
    pub part_size: u64,
    /// The key that signs the part list (the bundle's key), if the bundle is signed.
    pub key: Option<&'a SigningKey>,
}

/// The bytes of the bundle file being written.
pub(super) enum Sink {
    /// One temporary file.
    One(File, tempfile::TempPath),
    /// Temporary parts.
    Parts(Box<Parts>),
}

/// Temporary parts being written; each stays open (locked) until renamed or removed.
pub(super) struct Parts {
    dir: PathBuf,
    prefix: String,
    part_size: u64,
    done: Vec<(File, tempfile::TempPath, u64, Digest)>,
    current: Option<(File, tempfile::TempPath, u64, Hasher)>,
    whole: Hasher,
    len: u64,
}

impl Parts {
    pub(super) fn new(dir: &Path, prefix: &str, part_size: u64) -> Parts {
        Parts {
            dir: dir.to_owned(),
            prefix: prefix.to_owned(),
            part_size,
            done: Vec::new(),
            current: None,
            whole: Hasher::new(),
            len: 0,
        }
    }

    fn close_current(&mut self) {
        if let Some((file, path, len, hasher)) = self.current.take() {
            self.done.push((file, path, len, hasher.finish()));
        }
    }
}

impl Write for Parts {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.current.as_ref().is_some_and(|c| c.2 == self.part_size) {
            self.close_current();
        }
        if self.current.is_none() {
            let (file, path) = locked_temp(&self.dir, &self.prefix)
                .map_err(|e| io::Error::other(e.to_string()))?;
            self.current = Some((file, path, 0, Hasher::new()));
        }
        let (file, _, len, hasher) = self.current.as_mut().expect("opened above");
        let room = (self.part_size - *len) as usize;
        let n = file.write(&buf[..buf.len().min(room)])?;
        hasher.update(&buf[..n]);
        self.whole.update(&buf[..n]);
        *len += n as u64;
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.current {
            Some((file, ..)) => file.flush(),
            None => Ok(()),
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::One(f, _) => f.write(buf),
            Sink::Parts(p) => p.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::One(f, _) => f.flush(),
            Sink::Parts(p) => p.flush(),
        }
    }
}

impl Sink {
    /// fsyncs everything written; returns the length of the whole.
    pub(super) fn sync(&mut self) -> io::Result<u64> {
        match self {
            Sink::One(f, _) => {
                f.sync_all()?;
                Ok(f.metadata()?.len())
            }
            Sink::Parts(p) => {
                p.close_current();
                for (f, ..) in &p.done {
                    f.sync_all()?;
                }
                Ok(p.len)
            }
        }
    }

    /// Renames everything into place: the file as `out`, or the parts as `out.000`, … and
    /// the part list (signed with `key`) beside them; then removes what an earlier run of the
    /// same name left that is no longer part of the bundle (higher-numbered parts, a part
    /// list's signature this run did not write). Returns the part list of a split bundle.
    pub(super) fn persist(
        self,
        out: &Path,
        manifest_json: &[u8],
        key: Option<&SigningKey>,
    ) -> Result<Option<PartList>, Error> {
        let parts = match self {
            Sink::One(_file, temp) => {
                temp.persist(out)
                    .map_err(|e| Error::io("rename into place", out, e.error))?;
                return Ok(None);
            }
            Sink::Parts(p) => p,
        };
        let bundle = out
            .file_name()
            .expect("checked by the caller")
            .to_string_lossy()
            .into_owned();
        let list = PartList {
            kind: PARTS_KIND.into(),
            format_version: PARTS_FORMAT_VERSION,
            bundle: bundle.clone(),
            size: parts.len,
            sha256: parts.whole.finish(),
            manifest_sha256: Digest::of_bytes(manifest_json),
            parts: parts
                .done
                .iter()
                .enumerate()
                .map(|(i, (_, _, size, sha256))| PartRecord {
                    name: part_name(&bundle, i),
                    size: *size,
                    sha256: sha256.clone(),
                })
                .collect(),
        };
        let json = list.to_json();
        let list_path = part_list_path(out);
        let sig_path = part_list_signature_path(&list_path);
        let mut extra = vec![(list_path.clone(), json.clone())];
        if let Some(key) = key {
            extra.push((sig_path.clone(), key.sign(&json).into_bytes()));
        }
        // The list and its signature as temporary files too, so all renames come last.
        let mut small = Vec::new();
        for (path, bytes) in extra {
            let (mut f, temp) = locked_temp(&parts.dir, &parts.prefix)?;
            f.write_all(&bytes)
                .and_then(|()| f.sync_all())
                .map_err(|e| Error::io("write", &temp, e))?;
            small.push((f, temp, path));
        }
        let count = parts.done.len();
        let mut renamed: Vec<PathBuf> = Vec::new();
        let targets = parts
            .done
            .into_iter()
            .enumerate()
            .map(|(i, (f, temp, ..))| (f, temp, parts.dir.join(part_name(&bundle, i))))
            .chain(small);
        for (_file, temp, path) in targets {
            if let Err(e) = temp.persist(&path) {
                // Leave no part of a half-renamed set under a final name.
                for p in &renamed {
                    let _ = std::fs::remove_file(p);
                }
                return Err(Error::io("rename into place", &path, e.error));
            }
            renamed.push(path);
        }
        for i in count.. {
            let stale = parts.dir.join(part_name(&bundle, i));
            match std::fs::symlink_metadata(&stale) {
                Ok(m) if m.is_file() => {
                    if std::fs::remove_file(&stale).is_ok() {
                        tracing::info!(path = %stale.display(), "removed a part of an earlier bundle of the same name");
                    }
                }
                _ => break,
            }
        }
        if key.is_none() && std::fs::symlink_metadata(&sig_path).is_ok_and(|m| m.is_file()) {
            let _ = std::fs::remove_file(&sig_path);
        }
        Ok(Some(list))
    }
}
