//! `airlock load BUNDLE --files-to DIR`: every file a bundle carries written to `DIR/NAME`.
//!
//! Each file is streamed from the bundle through [`BundleSource`] (hashed as it goes, its
//! last chunk withheld until the digest matched) into a temporary name in its final
//! directory, fsynced, given its mode and renamed. A file already there with the same sha256
//! is left as it is; a different one is refused before anything is written, unless
//! `force`. A failed run leaves no temporary file behind.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use airlock_layout::{Digest, FileInfo, Hasher, Purpose, SignatureCheck, Trust};
use serde::Serialize;

use crate::offline::{open_all, OpenBundle};
use crate::source::BundleSource;
use crate::LoadReporter;

/// What `--files-to` needs.
#[derive(Debug, Clone)]
pub struct FilesOptions {
    /// The bundle file.
    pub bundle: PathBuf,
    /// Who vouches for the bundle (every file is checked against its manifest either way).
    pub trust: Trust,
    /// The directory the files are written under (created when missing).
    pub dir: PathBuf,
    /// Replace existing files whose contents differ.
    pub force: bool,
}

/// What writing the files did; the `files` part of `airlock load --json`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FilesReport {
    /// The bundle file.
    pub bundle: PathBuf,
    /// The directory written to.
    pub dir: PathBuf,
    /// Whether the signature was checked, and with which key.
    pub signature: SignatureCheck,
    /// Every file of the bundle, in its manifest's order.
    pub files: Vec<FileReport>,
    /// Wall time.
    pub seconds: f64,
}

/// One file written (or found in place).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileReport {
    /// Its name in the bundle.
    pub name: String,
    /// Where it is now.
    pub path: PathBuf,
    /// Its digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// Its mode, octal (`0755`).
    pub mode: String,
    /// What was done.
    pub state: FileState,
}

/// What was done with one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileState {
    /// It was not there: written.
    Written,
    /// The same bytes were there already: left (its mode set).
    Unchanged,
    /// Other bytes were there: replaced (`force`).
    Replaced,
}

impl FileState {
    /// `written`, `unchanged` or `replaced`.
    pub fn as_str(self) -> &'static str {
        match self {
            FileState::Written => "written",
            FileState::Unchanged => "unchanged",
            FileState::Replaced => "replaced",
        }
    }
}

/// Why the files were not written.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// The bundle could not be opened or is not trusted.
    #[error(transparent)]
    Open(#[from] crate::Error),
    /// The bundle carries no file.
    #[error("the bundle `{}` carries no files; nothing was written", bundle.display())]
    NoFiles {
        /// The bundle file.
        bundle: PathBuf,
    },
    /// A file's name is not a relative path of plain components.
    #[error(
        "file `{name}` of the bundle has a name that is not a relative path of plain \
         components; nothing was written"
    )]
    BadName {
        /// The name.
        name: String,
    },
    /// The signed manifest does not list a file's bytes as a blob of that size.
    #[error(
        "file `{name}`: its digest `{digest}` is not listed in the signed manifest with its \
         size; nothing was written"
    )]
    NotListed {
        /// The file's name.
        name: String,
        /// Its digest.
        digest: Digest,
    },
    /// A different file is in the way.
    #[error(
        "`{}` exists with other contents than file `{name}` of the bundle; nothing was \
         written\n  hint: use --force to replace it",
        path.display()
    )]
    Different {
        /// The file's name.
        name: String,
        /// The path in the way.
        path: PathBuf,
    },
    /// Something other than a regular file is in the way.
    #[error(
        "`{}` exists and is not a regular file, so file `{name}` cannot be written there; \
         nothing was written",
        path.display()
    )]
    NotAFile {
        /// The file's name.
        name: String,
        /// The path in the way.
        path: PathBuf,
    },
    /// Reading, writing or renaming failed.
    #[error("file `{name}`: cannot {action} `{}`", path.display())]
    Io {
        /// The file's name.
        name: String,
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The bytes read from the bundle do not match the signed manifest.
    #[error("file `{name}`: not written")]
    Bundle {
        /// The file's name.
        name: String,
        /// The cause (the digest mismatch, a damaged frame).
        #[source]
        source: io::Error,
    },
    /// A blocking task panicked.
    #[error("internal task failed")]
    Join(#[from] tokio::task::JoinError),
}

/// Writes every file of the bundle under `opts.dir`; see the module docs.
pub async fn write_files(
    opts: FilesOptions,
    reporter: Arc<dyn LoadReporter>,
) -> Result<FilesReport, FilesError> {
    let started = Instant::now();
    let mut opened = open_all(vec![opts.bundle.clone()], &opts.trust, Purpose::Load).await?;
    if let Some(warning) = opts.trust.warning(Purpose::Load) {
        reporter.warn(warning);
    }
    let bundle = opened.pop().expect("one bundle opened");
    let signature = bundle.signature.clone();
    let FilesOptions {
        bundle: path,
        dir,
        force,
        ..
    } = opts;
    let files =
        tokio::task::spawn_blocking(move || write_all(&bundle, &dir, force).map(|f| (f, dir)))
            .await??;
    Ok(FilesReport {
        bundle: path,
        dir: files.1,
        signature,
        files: files.0,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Every file's checks first (names, listed digests, what is in the way), then each written.
fn write_all(bundle: &OpenBundle, dir: &Path, force: bool) -> Result<Vec<FileReport>, FilesError> {
    let files: Vec<&FileInfo> = bundle
        .manifest
        .images
        .iter()
        .filter_map(|i| i.file())
        .collect();
    if files.is_empty() {
        return Err(FilesError::NoFiles {
            bundle: bundle.path.clone(),
        });
    }
    let mut todo = Vec::new();
    for f in &files {
        if !plain_relative(&f.name) {
            return Err(FilesError::BadName {
                name: f.name.clone(),
            });
        }
        if !bundle
            .manifest
            .blobs
            .iter()
            .any(|b| b.digest == f.digest && b.size == f.size)
        {
            return Err(FilesError::NotListed {
                name: f.name.clone(),
                digest: f.digest.clone(),
            });
        }
        let path = dir.join(&f.name);
        let state = match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => FileState::Written,
            Err(source) => return Err(io_error(f, "read", &path, source)),
            Ok(m) if !m.file_type().is_file() => {
                return Err(FilesError::NotAFile {
                    name: f.name.clone(),
                    path,
                })
            }
            Ok(m) => {
                let same = m.len() == f.size
                    && hash_file(&path).map_err(|e| io_error(f, "read", &path, e))? == f.digest;
                match (same, force) {
                    (true, _) => FileState::Unchanged,
                    (false, true) => FileState::Replaced,
                    (false, false) => {
                        return Err(FilesError::Different {
                            name: f.name.clone(),
                            path,
                        })
                    }
                }
            }
        };
        todo.push((*f, path, state));
    }
    let source = bundle.source();
    let mut out = Vec::new();
    for (f, path, state) in todo {
        let mode = f.mode & 0o777;
        if state == FileState::Unchanged {
            set_mode(&path, mode).map_err(|e| io_error(f, "set the mode of", &path, e))?;
        } else {
            write_one(&source, f, &path, mode)?;
        }
        out.push(FileReport {
            name: f.name.clone(),
            path,
            digest: f.digest.clone(),
            size: f.size,
            mode: format!("{mode:04o}"),
            state,
        });
    }
    Ok(out)
}

/// A name of plain `/`-separated components: no root, `.`, `..` or empty component.
fn plain_relative(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('\\')
        && name
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
        && Path::new(name)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

fn io_error(f: &FileInfo, action: &'static str, path: &Path, source: io::Error) -> FilesError {
    FilesError::Io {
        name: f.name.clone(),
        action,
        path: path.to_owned(),
        source,
    }
}

fn hash_file(path: &Path) -> io::Result<Digest> {
    let mut file = File::open(path)?;
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(hasher.finish())
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}

/// A temporary file removed when dropped, unless it was renamed into place.
struct Temporary(Option<PathBuf>);

impl Drop for Temporary {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

/// Streams one file from the bundle into a temporary name beside `path`, then renames it.
fn write_one(
    source: &BundleSource,
    f: &FileInfo,
    path: &Path,
    mode: u32,
) -> Result<(), FilesError> {
    let parent = path.parent().expect("a path under the directory");
    fs::create_dir_all(parent).map_err(|e| io_error(f, "create the directory", parent, e))?;
    let base = path.file_name().expect("a plain name").to_string_lossy();
    let (mut file, tmp) = (0..100u32)
        .find_map(|i| {
            let tmp = parent.join(format!(".{base}.airlock-{}-{i}.tmp", std::process::id()));
            match OpenOptions::new().write(true).create_new(true).open(&tmp) {
                Ok(file) => Some(Ok((file, Temporary(Some(tmp))))),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => None,
                Err(e) => Some(Err(io_error(f, "create a temporary file in", parent, e))),
            }
        })
        .unwrap_or_else(|| {
            Err(io_error(
                f,
                "create a temporary file in",
                parent,
                io::Error::from(io::ErrorKind::AlreadyExists),
            ))
        })?;
    let tmp_path = tmp.0.clone().expect("held");
    let mut write_err = None;
    source
        .read_verified(&f.digest, f.size, |chunk| match file.write_all(&chunk) {
            Ok(()) => true,
            Err(e) => {
                write_err = Some(e);
                false
            }
        })
        .map_err(|source| FilesError::Bundle {
            name: f.name.clone(),
            source,
        })?;
    if let Some(e) = write_err {
        return Err(io_error(f, "write", &tmp_path, e));
    }
    file.sync_all()
        .map_err(|e| io_error(f, "write", &tmp_path, e))?;
    drop(file);
    // The whole blob hashed to its digest, or the last chunk was never written: check the
    // length too before the name is given.
    let len = fs::metadata(&tmp_path)
        .map_err(|e| io_error(f, "read", &tmp_path, e))?
        .len();
    if len != f.size {
        return Err(FilesError::Bundle {
            name: f.name.clone(),
            source: io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{len} bytes written, the signed manifest lists {}", f.size),
            ),
        });
    }
    set_mode(&tmp_path, mode).map_err(|e| io_error(f, "set the mode of", &tmp_path, e))?;
    fs::rename(&tmp_path, path).map_err(|e| io_error(f, "rename into", path, e))?;
    let mut tmp = tmp;
    tmp.0 = None;
    // The rename itself is durable once the directory is.
    if let Ok(d) = File::open(parent) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_layout::testing::content::{content_bundle, KUBEADM_FILE};
    use airlock_layout::SigningKey;

    fn opts(bundle: &Path, key: &SigningKey, dir: &Path, force: bool) -> FilesOptions {
        FilesOptions {
            bundle: bundle.to_owned(),
            trust: Trust::Key(key.verifying_key()),
            dir: dir.to_owned(),
            force,
        }
    }

    fn temporaries(dir: &Path) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut stack = vec![dir.to_owned()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                } else if e.file_name().to_string_lossy().ends_with(".tmp") {
                    found.push(e.path());
                }
            }
        }
        found
    }

    #[tokio::test]
    async fn files_are_written_then_unchanged_and_a_different_one_needs_force() {
        use std::os::unix::fs::PermissionsExt as _;
        let work = tempfile::tempdir().unwrap();
        let key = SigningKey::generate();
        let b = content_bundle(&work.path().join("b"), &key);
        let out = work.path().join("out");
        let r = write_files(opts(&b.path, &key, &out, false), Arc::new(crate::NoReport))
            .await
            .unwrap();
        assert_eq!(r.files.len(), 2);
        assert!(r.files.iter().all(|f| f.state == FileState::Written));
        for (info, bytes) in &b.files {
            let p = out.join(&info.name);
            assert_eq!(&fs::read(&p).unwrap(), bytes);
            let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, info.mode, "{}", info.name);
        }
        let r = write_files(opts(&b.path, &key, &out, false), Arc::new(crate::NoReport))
            .await
            .unwrap();
        assert!(r.files.iter().all(|f| f.state == FileState::Unchanged));

        let kubeadm = out.join(KUBEADM_FILE);
        fs::write(&kubeadm, b"another kubeadm").unwrap();
        let hello = out.join("hello.txt");
        fs::remove_file(&hello).unwrap();
        let e = write_files(opts(&b.path, &key, &out, false), Arc::new(crate::NoReport))
            .await
            .unwrap_err();
        assert!(matches!(e, FilesError::Different { .. }), "{e}");
        let text = e.to_string();
        assert!(
            text.contains(KUBEADM_FILE) && text.contains("--force"),
            "{text}"
        );
        // Refused before anything was written.
        assert!(!hello.exists());
        assert_eq!(fs::read(&kubeadm).unwrap(), b"another kubeadm");
        let r = write_files(opts(&b.path, &key, &out, true), Arc::new(crate::NoReport))
            .await
            .unwrap();
        let states: Vec<FileState> = r.files.iter().map(|f| f.state).collect();
        assert_eq!(states, [FileState::Written, FileState::Replaced]);
        assert_eq!(fs::read(&kubeadm).unwrap(), b.files[1].1);
        assert!(temporaries(&out).is_empty());
    }

    #[test]
    fn a_damaged_file_leaves_no_temporary_file() {
        let work = tempfile::tempdir().unwrap();
        let key = SigningKey::generate();
        let b = content_bundle(&work.path().join("b"), &key);
        let opened =
            crate::offline::open(&b.path, &Trust::Key(key.verifying_key()), Purpose::Load).unwrap();
        let source = opened.source();
        let (info, _) = &b.files[1];
        let mut wrong = info.clone();
        // The same entry, but the manifest would list another digest for it.
        let mut index = (*source.index).clone();
        let other = Digest::of_bytes(b"other");
        for e in &mut index.entries {
            if e.path == info.digest.blob_path() {
                e.path = other.blob_path();
            }
        }
        wrong.digest = other;
        let source = BundleSource {
            path: source.path.clone(),
            index: Arc::new(index),
        };
        let out = work.path().join("out");
        let path = out.join(&wrong.name);
        let e = write_one(&source, &wrong, &path, 0o755).unwrap_err();
        assert!(matches!(e, FilesError::Bundle { .. }), "{e}");
        assert!(!path.exists());
        assert!(temporaries(&out).is_empty());
    }

    #[test]
    fn names_are_plain_relative_paths() {
        for good in ["kubeadm", "a/b/c.tgz", "hello.txt"] {
            assert!(plain_relative(good), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "./a",
            "a/",
            "a\\b",
        ] {
            assert!(!plain_relative(bad), "{bad}");
        }
    }
}
