//! `airlock rewrite`: the image fields [`scan`] finds, pointed at where `airlock load` puts
//! the images; every other byte kept.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use airlock_load::{NameMapper, NameRule, Rewrite, Target};

use crate::error::{Error, Problem, ProblemKind};
use crate::input::{sources, Input, Source};
use crate::pin::Pins;
use crate::scan::{scan, Field, Quoting};

/// Where the images are, as `airlock load --to … --names … --rewrite …` put them.
#[derive(Debug, Clone)]
pub struct RewriteOptions {
    /// `registry://HOST[:PORT][/PREFIX]`.
    pub target: Target,
    /// `--names`.
    pub rule: NameRule,
    /// `--rewrite` and `--rewrite-file`, as `load` takes them.
    pub rewrites: Vec<Rewrite>,
    /// `--pin`: digests added to tagged references it knows.
    pub pins: Option<Pins>,
}

/// One reference changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The line of the value, from 1.
    pub line: usize,
    /// The value before.
    pub old: String,
    /// The value after.
    pub new: String,
}

/// One input and its rewritten text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewrittenFile {
    /// The input.
    pub source: Source,
    /// The text after the rewrite (the input's own when nothing changed).
    pub text: String,
    /// What changed, in input order.
    pub changes: Vec<Change>,
}

/// A tagged reference `--pin` does not know, left without a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpinned {
    /// The input.
    pub file: String,
    /// The line, from 1.
    pub line: usize,
    /// The reference as written.
    pub value: String,
}

/// What a rewrite would do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rewritten {
    /// Every input; empty when there are problems: nothing is rewritten then.
    pub files: Vec<RewrittenFile>,
    /// The values that cannot be rewritten, in input order.
    pub problems: Vec<Problem>,
    /// References `--pin` does not know.
    pub unpinned: Vec<Unpinned>,
}

impl Rewritten {
    /// The files with changes.
    pub fn changed(&self) -> impl Iterator<Item = &RewrittenFile> {
        self.files.iter().filter(|f| !f.changes.is_empty())
    }

    /// The number of references changed.
    pub fn change_count(&self) -> usize {
        self.files.iter().map(|f| f.changes.len()).sum()
    }
}

/// Reads every input of `paths` and rewrites its image fields in memory; nothing is written.
/// Two images landing on one repository are refused as `load` refuses them.
pub fn rewrite(paths: &[PathBuf], opts: &RewriteOptions) -> Result<Rewritten, Error> {
    let inputs = crate::par::map(&sources(paths)?, Source::read)
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    rewrite_inputs(inputs, opts)
}

/// [`rewrite`] of inputs already read.
pub fn rewrite_inputs(inputs: Vec<Input>, opts: &RewriteOptions) -> Result<Rewritten, Error> {
    let scans = crate::par::map(&inputs, |input| scan(&input.source.file, &input.text));
    let mut scanned = Vec::new();
    let mut problems = Vec::new();
    for (input, found) in inputs.into_iter().zip(scans) {
        let mut found = found?;
        problems.append(&mut found.problems);
        scanned.push((input, found.fields));
    }
    let rewriter = Rewriter::new(opts);
    let names: BTreeSet<String> = scanned
        .iter()
        .flat_map(|(_, fields)| fields)
        .filter(|f| !rewriter.at_target(f))
        .map(|f| f.reference.name())
        .collect();
    rewriter.mapper.map_all(names.iter().map(String::as_str))?;
    let mut out = Rewritten::default();
    for (input, fields) in scanned {
        let file = rewriter.file(input, &fields, &mut out);
        out.files.push(file);
    }
    out.problems.splice(0..0, problems);
    if !out.problems.is_empty() {
        out.files.clear();
    }
    Ok(out)
}

struct Rewriter<'o> {
    opts: &'o RewriteOptions,
    mapper: NameMapper,
}

impl<'o> Rewriter<'o> {
    fn new(opts: &'o RewriteOptions) -> Self {
        let mapper = NameMapper {
            prefix: opts.target.prefix.clone(),
            rule: opts.rule,
            rewrites: opts.rewrites.clone(),
        };
        Rewriter { opts, mapper }
    }

    /// A reference that already names the target (a second run changes nothing).
    fn at_target(&self, field: &Field) -> bool {
        let (r, t) = (&field.reference, &self.opts.target);
        r.registry == t.host
            && (t.prefix.is_empty()
                || r.repository
                    .strip_prefix(&t.prefix)
                    .is_some_and(|rest| rest.starts_with('/')))
    }

    /// The new value of a field, and whether `--pin` knew its tag.
    fn value(&self, field: &Field) -> (String, bool) {
        let r = &field.reference;
        let at_target = self.at_target(field);
        let repository = if at_target {
            r.repository.clone()
        } else {
            self.mapper.repository(&r.name())
        };
        let name = format!("{}/{repository}", self.opts.target.host);
        let mut value = name.clone();
        if let (true, Some(tag)) = (field.has_tag, &r.tag) {
            value.push(':');
            value.push_str(tag);
        }
        let mut known = true;
        let digest = match (&r.digest, &self.opts.pins, &r.tag) {
            (Some(d), _, _) => Some(d.as_str()),
            (None, Some(pins), Some(tag)) => {
                let d = pins
                    .digest(&r.name(), tag)
                    .or_else(|| pins.digest(&name, tag));
                known = d.is_some();
                d
            }
            _ => None,
        };
        if let Some(d) = digest {
            value.push('@');
            value.push_str(d);
        }
        (value, known)
    }

    fn file(&self, input: Input, fields: &[Field], out: &mut Rewritten) -> RewrittenFile {
        let Input { source, text } = input;
        let mut fields: Vec<&Field> = fields.iter().collect();
        fields.sort_by_key(|f| f.span.start);
        let mut edits = Vec::new();
        for field in fields {
            let (new, known) = self.value(field);
            if !known {
                out.unpinned.push(Unpinned {
                    file: source.file.clone(),
                    line: field.location.line,
                    value: field.value.clone(),
                });
            }
            if new == field.value {
                continue;
            }
            let Some(written) = quote(&new, field.quoting) else {
                out.problems.push(Problem {
                    file: source.file.clone(),
                    line: field.location.line,
                    value: field.value.clone(),
                    kind: ProblemKind::NeedsQuoting(new),
                });
                continue;
            };
            edits.push((field, new, written));
        }
        let mut changes = Vec::with_capacity(edits.len());
        let text = if edits.is_empty() {
            text
        } else {
            let mut s = String::with_capacity(text.len() + edits.len() * 32);
            let mut at = 0;
            for (field, new, written) in edits {
                s.push_str(&text[at..field.span.start]);
                s.push_str(&written);
                at = field.span.end;
                changes.push(Change {
                    line: field.location.line,
                    old: field.value.clone(),
                    new,
                });
            }
            s.push_str(&text[at..]);
            s
        };
        RewrittenFile {
            source,
            text,
            changes,
        }
    }
}

/// `value` written in `quoting`, or `None` when that would change what it reads as.
fn quote(value: &str, quoting: Quoting) -> Option<String> {
    let ok = !value.is_empty() && !value.chars().any(|c| c.is_whitespace() || c.is_control());
    match quoting {
        Quoting::Plain => (ok && plain_safe(value)).then(|| value.to_string()),
        Quoting::Single => (ok && !value.contains('\'')).then(|| format!("'{value}'")),
        Quoting::Double => (ok && !value.contains(['"', '\\'])).then(|| format!("\"{value}\"")),
    }
}

/// A plain scalar that reads back as this string, in block and flow context alike.
fn plain_safe(value: &str) -> bool {
    const FIRST: &[char] = &[
        '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@',
        '`',
    ];
    !value.starts_with(FIRST)
        && !value.ends_with(':')
        && !value.contains(": ")
        && !value.contains(" #")
        && !value.contains([',', '[', ']', '{', '}'])
}

/// Writes every changed file of `rewritten` in place: each to a temporary file beside it
/// (same permissions), then all renamed over the originals. Unchanged files are not touched.
/// Stdin cannot be rewritten in place. Returns the number of files written.
pub fn write_in_place(rewritten: &Rewritten) -> Result<usize, Error> {
    let changed: Vec<&RewrittenFile> = rewritten.changed().collect();
    if changed.iter().any(|f| f.source.path.is_none()) {
        return Err(Error::Usage("--in-place cannot rewrite stdin"));
    }
    let staged = crate::par::map_on(16, &changed, |file| {
        let path = file.source.path.as_deref().unwrap_or(Path::new("-"));
        // A symlink stays one: its target is rewritten.
        let real = std::fs::canonicalize(path).map_err(|source| Error::Write {
            path: path.to_owned(),
            source,
        })?;
        Ok((stage(&real, &file.text)?, real))
    })
    .into_iter()
    .collect::<Result<Vec<_>, Error>>()?;
    let count = staged.len();
    for (temp, real) in staged {
        temp.persist(&real).map_err(|e| Error::Write {
            path: real.clone(),
            source: e.error,
        })?;
    }
    Ok(count)
}

fn stage(real: &Path, text: &str) -> Result<tempfile::NamedTempFile, Error> {
    let err = |source| Error::Write {
        path: real.to_owned(),
        source,
    };
    let dir = real.parent().unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(".airlock-rewrite-")
        .tempfile_in(dir)
        .map_err(err)?;
    temp.write_all(text.as_bytes()).map_err(err)?;
    let perms = std::fs::metadata(real).map_err(err)?.permissions();
    std::fs::set_permissions(temp.path(), perms).map_err(err)?;
    temp.as_file().sync_all().map_err(err)?;
    Ok(temp)
}
