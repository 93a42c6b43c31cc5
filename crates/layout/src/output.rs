//! Paths a run is going to write, checked before any other work: a write by rename must
//! never replace a directory, a device, a link or one of the run's own inputs.

use std::path::{Path, PathBuf};

/// Why a path cannot be written. `flag` is how the operator gave it (`-o`, `--lock`).
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The path ends in `..` or `/`.
    #[error("{flag} `{}` is not a file name\n  hint: give a path ending in a file name", .path.display())]
    NotAFileName {
        /// The flag.
        flag: String,
        /// The path.
        path: PathBuf,
    },
    /// Its directory is something else.
    #[error("{flag} `{}`: `{}` is not a directory", .path.display(), .dir.display())]
    ParentNotADirectory {
        /// The flag.
        flag: String,
        /// The path.
        path: PathBuf,
        /// Its directory.
        dir: PathBuf,
    },
    /// Its directory does not exist.
    #[error(
        "{flag} `{}`: the directory `{}` does not exist\n  hint: create it first, or choose another path",
        .path.display(), .dir.display()
    )]
    NoDirectory {
        /// The flag.
        flag: String,
        /// The path.
        path: PathBuf,
        /// Its directory.
        dir: PathBuf,
    },
    /// Its directory cannot be examined.
    #[error(
        "{flag} `{}`: the directory `{}` cannot be used: {cause}\n  hint: create it first, or choose another path",
        .path.display(), .dir.display()
    )]
    DirectoryUnusable {
        /// The flag.
        flag: String,
        /// The path.
        path: PathBuf,
        /// Its directory.
        dir: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// The path cannot be examined.
    #[error("{flag} `{}` cannot be checked: {cause}", .path.display())]
    Unchecked {
        /// The flag.
        flag: String,
        /// The path.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// Something other than a regular file is there.
    #[error(
        "{flag} `{}` exists and is {kind}; refusing to replace it\n  hint: choose the path of a regular file",
        .path.display()
    )]
    NotARegularFile {
        /// The flag.
        flag: String,
        /// The path.
        path: PathBuf,
        /// What is there (`a directory`, `a fifo`, …).
        kind: &'static str,
    },
    /// It is one of the run's inputs.
    #[error(
        "{flag} `{}` is the {what} `{}` itself; refusing to overwrite it\n  hint: choose another output path",
        .path.display(), .input.display()
    )]
    IsAnInput {
        /// The flag.
        flag: String,
        /// The path.
        path: PathBuf,
        /// Which input (`spec`, `lock file`, `signing key`).
        what: String,
        /// The input's path as given.
        input: PathBuf,
    },
}

/// Checks a path a run is going to write, before any other work: its directory must exist;
/// if something is there already it must be a regular file (never a directory, a device, a
/// fifo, a socket or a symbolic link: a write by rename would replace it) and not one of the
/// run's `inputs` (named, compared by device and inode, so another path, a symbolic link or a
/// hard link to the spec is caught too). Returns whether an existing file will be replaced.
pub fn check_output(
    flag: &str,
    path: &Path,
    inputs: &[(&str, &Path)],
) -> Result<bool, OutputError> {
    let flag_s = || flag.to_string();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if path.file_name().is_none() {
        return Err(OutputError::NotAFileName {
            flag: flag_s(),
            path: path.to_path_buf(),
        });
    }
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(OutputError::ParentNotADirectory {
                flag: flag_s(),
                path: path.to_path_buf(),
                dir: dir.to_path_buf(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(OutputError::NoDirectory {
                flag: flag_s(),
                path: path.to_path_buf(),
                dir: dir.to_path_buf(),
            })
        }
        Err(cause) => {
            return Err(OutputError::DirectoryUnusable {
                flag: flag_s(),
                path: path.to_path_buf(),
                dir: dir.to_path_buf(),
                cause,
            })
        }
    }
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(cause) => {
            return Err(OutputError::Unchecked {
                flag: flag_s(),
                path: path.to_path_buf(),
                cause,
            })
        }
    };
    if !meta.is_file() {
        return Err(OutputError::NotARegularFile {
            flag: flag_s(),
            path: path.to_path_buf(),
            kind: kind_of(&meta.file_type()),
        });
    }
    for (what, input) in inputs {
        if same_file(&meta, input) {
            return Err(OutputError::IsAnInput {
                flag: flag_s(),
                path: path.to_path_buf(),
                what: what.to_string(),
                input: input.to_path_buf(),
            });
        }
    }
    Ok(true)
}

fn kind_of(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a fifo";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_char_device() {
            return "a character device";
        }
    }
    if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

#[cfg(unix)]
fn same_file(meta: &std::fs::Metadata, other: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(other).is_ok_and(|o| o.dev() == meta.dev() && o.ino() == meta.ino())
}

#[cfg(not(unix))]
fn same_file(_meta: &std::fs::Metadata, _other: &Path) -> bool {
    false
}

/// Writes `bytes` to `path` through a temporary file in the same directory (`.airlock-*`),
/// fsynced and renamed into place: `path` is never seen half-written, and a failure leaves it
/// as it was.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".airlock-")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Whether two paths (that may not exist yet) name the same file: the same existing file, or
/// the same name in the same directory.
pub fn same_target(a: &Path, b: &Path) -> bool {
    if let (Ok(ma), Ok(_)) = (std::fs::symlink_metadata(a), std::fs::metadata(b)) {
        if same_file(&ma, b) {
            return true;
        }
    }
    let norm = |p: &Path| {
        let dir = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        std::fs::canonicalize(dir)
            .ok()
            .map(|d| d.join(p.file_name().unwrap_or_default()))
    };
    matches!((norm(a), norm(b)), (Some(x), Some(y)) if x == y)
}

/// Device and inode of a file, to tell whether it was replaced (a rename gives a new inode).
pub fn file_id(path: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        std::fs::metadata(path).ok().map(|m| (m.len(), 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_missing_parents_and_inputs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let spec = dir.path().join("spec.yaml");
        std::fs::write(&spec, "x").unwrap();
        let out = dir.path().join("out.tar.zst");
        assert!(!check_output("-o", &out, &[("spec", &spec)]).unwrap());
        std::fs::write(&out, "old").unwrap();
        assert!(check_output("-o", &out, &[("spec", &spec)]).unwrap());
        let e = check_output("-o", &spec, &[("spec", &spec)]).unwrap_err();
        assert!(e.to_string().starts_with("-o `"), "{e}");
        assert!(matches!(e, OutputError::IsAnInput { .. }), "{e}");
        let e = check_output("-o", dir.path(), &[]).unwrap_err();
        assert!(
            matches!(
                e,
                OutputError::NotARegularFile {
                    kind: "a directory",
                    ..
                }
            ),
            "{e}"
        );
        let e = check_output("--lock", &dir.path().join("no/such/x"), &[]).unwrap_err();
        assert!(matches!(e, OutputError::NoDirectory { .. }), "{e}");
        assert!(same_target(&out, &dir.path().join(".").join("out.tar.zst")));
        assert!(file_id(&out).is_some());
    }
}
