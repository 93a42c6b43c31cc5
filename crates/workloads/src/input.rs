//! The inputs: files, directories walked for `*.yaml`, `*.yml` and `*.json`, and stdin (`-`).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// The extensions a directory walk takes (any case).
pub const EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];

/// One input to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// How locations and errors name it: the path as given joined with the path found under a
    /// directory, or `-`.
    pub file: String,
    /// The file, or `None` for stdin.
    pub path: Option<PathBuf>,
}

/// An input and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// Where it comes from.
    pub source: Source,
    /// Its text.
    pub text: String,
}

/// The inputs `paths` name, in order: a file as it is (whatever its name), a directory's
/// `*.yaml`, `*.yml` and `*.json` files at any depth sorted by path (hidden entries skipped),
/// `-` for stdin (at most once).
pub fn sources(paths: &[PathBuf]) -> Result<Vec<Source>, Error> {
    let mut out = Vec::new();
    let mut stdin = false;
    for path in paths {
        if path.as_os_str() == "-" {
            if stdin {
                return Err(Error::Usage("`-` (stdin) can be given once"));
            }
            stdin = true;
            out.push(Source {
                file: "-".into(),
                path: None,
            });
            continue;
        }
        let meta = std::fs::metadata(path).map_err(|source| Error::Read {
            file: path.display().to_string(),
            source,
        })?;
        if !meta.is_dir() {
            out.push(Source {
                file: path.display().to_string(),
                path: Some(path.clone()),
            });
            continue;
        }
        let walk = walkdir::WalkDir::new(path)
            .follow_links(true)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
        for entry in walk {
            let entry = entry.map_err(|source| Error::Walk {
                file: source.path().unwrap_or(path).display().to_string(),
                source,
            })?;
            if entry.file_type().is_file() && wanted(entry.path()) {
                out.push(Source {
                    file: entry.path().display().to_string(),
                    path: Some(entry.path().to_owned()),
                });
            }
        }
    }
    Ok(out)
}

fn wanted(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.iter().any(|w| e.eq_ignore_ascii_case(w)))
}

impl Source {
    /// Reads the text (stdin to its end). Text that is not UTF-8 is an error naming the line
    /// of the first bad byte.
    pub fn read(&self) -> Result<Input, Error> {
        let io = |source| Error::Read {
            file: self.file.clone(),
            source,
        };
        let bytes = match &self.path {
            Some(path) => std::fs::read(path).map_err(io)?,
            None => {
                let mut bytes = Vec::new();
                std::io::stdin()
                    .lock()
                    .read_to_end(&mut bytes)
                    .map_err(io)?;
                bytes
            }
        };
        let text = String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
            Error::NotText {
                file: self.file.clone(),
                line,
            }
        })?;
        Ok(Input {
            source: self.clone(),
            text,
        })
    }
}
