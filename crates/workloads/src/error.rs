//! What can go wrong: [`Problem`]s in image fields (the run goes on, exit 1) and [`Error`]s
//! that stop it (exit 2).

use std::fmt;
use std::path::PathBuf;

use airlock_registry::ReferenceError;

/// A value in an image field that cannot be used as it is. Every one is reported with its file
/// and line; none is dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The input: as given on the command line (joined with the path found under a
    /// directory), or `-` for stdin.
    pub file: String,
    /// The line of the value, from 1.
    pub line: usize,
    /// The value as written (a credential in it is shown as `***`).
    pub value: String,
    /// What is wrong with it.
    pub kind: ProblemKind,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: error: {}", self.file, self.line, self.kind)
    }
}

/// What is wrong with an image value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProblemKind {
    /// A template left unrendered (`{{ .Values.image }}`).
    #[error("unrendered template `{text}`\n  hint: render the chart or overlay first: `helm template … | airlock images from -`")]
    Template {
        /// The template text (the value, or the line the YAML parser stopped at).
        text: String,
    },
    /// Not an image reference.
    #[error("{0}")]
    InvalidReference(#[source] ReferenceError),
    /// A container whose `image` is empty or null.
    #[error("the image of this container is empty")]
    Empty,
    /// A container whose `image` is a mapping or a sequence.
    #[error("the image of this container is not a string")]
    NotAString,
    /// A literal or folded block scalar (`image: |`).
    #[error("the image `{0}` is a block scalar\n  hint: write it as a plain or quoted string")]
    BlockScalar(String),
    /// The rewritten reference cannot be written in the value's style without changing it.
    #[error("`{0}` cannot be written as a plain YAML scalar\n  hint: quote the value in the input (`image: \"…\"`)")]
    NeedsQuoting(String),
}

impl ProblemKind {
    /// A short name for machine output: `template`, `invalid-reference`, `empty`,
    /// `not-a-string`, `block-scalar`, `needs-quoting`.
    pub fn code(&self) -> &'static str {
        match self {
            ProblemKind::Template { .. } => "template",
            ProblemKind::InvalidReference(_) => "invalid-reference",
            ProblemKind::Empty => "empty",
            ProblemKind::NotAString => "not-a-string",
            ProblemKind::BlockScalar(_) => "block-scalar",
            ProblemKind::NeedsQuoting(_) => "needs-quoting",
        }
    }
}

/// Why a run stops before printing or writing anything.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or stdin cannot be read.
    #[error("cannot read `{file}`")]
    Read {
        /// The input.
        file: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A directory cannot be walked.
    #[error("cannot read the directory `{file}`")]
    Walk {
        /// The directory or the entry below it.
        file: String,
        /// The cause.
        #[source]
        source: walkdir::Error,
    },
    /// An input that is not UTF-8 text.
    #[error("{file}:{line}: error: not YAML or JSON: the file is not UTF-8 text")]
    NotText {
        /// The input.
        file: String,
        /// The line of the first byte that is not UTF-8.
        line: usize,
    },
    /// An input the YAML parser cannot read (and no template explains why).
    #[error("{file}:{line}: error: not YAML or JSON: {message}")]
    Syntax {
        /// The input.
        file: String,
        /// The line the parser stopped at.
        line: usize,
        /// The parser's message.
        message: String,
    },
    /// A document that is text, not a mapping.
    #[error("{file}:{line}: error: not a Kubernetes manifest: the document is a plain string, not an object with `kind`")]
    NotAManifest {
        /// The input.
        file: String,
        /// The line the document starts at.
        line: usize,
    },
    /// Stdin (`-`) given more than once, or beside `--in-place`.
    #[error("{0}")]
    Usage(&'static str),
    /// Two images would land on one repository of the target.
    #[error(transparent)]
    Names(#[from] airlock_load::NameError),
    /// A rewritten file cannot be written.
    #[error("cannot write `{}`", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A `--pin` file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// The file cannot be read.
    #[error("cannot read the pin file `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A bundle or bundle manifest whose inventory cannot be read.
    #[error("cannot read the images of `{}`", path.display())]
    Inventory {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Box<airlock_layout::InventoryError>,
    },
    /// A lock file that cannot be read.
    #[error("cannot read the lock `{}`", path.display())]
    Lock {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Box<airlock_bundle::Error>,
    },
}
