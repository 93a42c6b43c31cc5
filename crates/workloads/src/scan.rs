//! The scanner: every image field of a YAML or JSON stream, with the byte span of its value.
//!
//! The stream is read one document at a time through granit-parser's events; each document
//! becomes a flat tree (nodes and their children in two vectors, reused from one document to
//! the next) that is walked once it is complete, because `kind` and `metadata.name` may come
//! after the containers. Nothing is ever re-serialised: a [`Field`] carries the span of the
//! value in the input, which the rewrite replaces.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::ops::Range;

use airlock_registry::Reference;
use granit_parser::{Event, Options, Parser, ScalarStyle, ScanError, Span};

use crate::error::{Error, Problem, ProblemKind};

/// The keys whose sequence items are containers (`spec.containers`, `initContainers`,
/// `ephemeralContainers` of a pod spec, wherever the pod spec is nested).
pub const CONTAINER_KEYS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

/// A walk deeper than this (aliases of aliases) stops descending.
const MAX_DEPTH: usize = 1024;

/// How an image value is written in the input; a rewrite keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quoting {
    /// `image: nginx:1.25`
    Plain,
    /// `image: 'nginx:1.25'`
    Single,
    /// `image: "nginx:1.25"` (and every JSON string)
    Double,
}

/// Where an image field was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The input: as given on the command line (joined with the path found under a
    /// directory), or `-` for stdin.
    pub file: String,
    /// The line of the value, from 1.
    pub line: usize,
    /// The `kind` of the enclosing object (`Deployment`), if it has one.
    pub kind: Option<String>,
    /// The `metadata.name` of the enclosing object, if it has one.
    pub name: Option<String>,
    /// The container's `name`, for a container's image.
    pub container: Option<String>,
    /// `containers`, `initContainers`, `ephemeralContainers`, or the YAML path of another
    /// `image:` field (`spec.image`, `spec.exporters[0].image`).
    pub field: String,
}

/// One image field whose value is a valid reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Where it is.
    pub location: Location,
    /// The bytes of the value in the input, quotes included.
    pub span: Range<usize>,
    /// How the value is written.
    pub quoting: Quoting,
    /// The value (after YAML escapes).
    pub value: String,
    /// The value, parsed and normalised.
    pub reference: Reference,
    /// Whether the value names a tag (`nginx` does not, though it means `latest`).
    pub has_tag: bool,
}

/// What one input holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// The image fields with valid references, in input order.
    pub fields: Vec<Field>,
    /// The image fields that cannot be used, in input order.
    pub problems: Vec<Problem>,
}

/// Scans one input (`file` names it in locations and errors).
///
/// An unrendered template is a [`Problem`], also where it makes a document unreadable (the
/// scan goes on with the next document); text that is not YAML, or a document that is a plain
/// string, is an [`Error`].
pub fn scan(file: &str, text: &str) -> Result<Scan, Error> {
    let mut out = Scan::default();
    let mut doc = Doc::default();
    // Directives and a byte-order mark are left to the full parser, for the whole stream.
    if text.starts_with(['%', '\u{feff}']) || text.contains("\n%") {
        parse(file, text, 0..text.len(), 0, &mut doc, &mut out)?;
        return Ok(out);
    }
    let docs = documents(text);
    if text.len() < PARALLEL_FROM {
        scan_documents(file, text, &docs, &mut doc, &mut out)?;
        return Ok(out);
    }
    // A large stream (`helm template` of a whole platform): its documents are independent
    // (anchors too are per document), so runs of them are scanned on every core.
    let chunk = docs.len().div_ceil(8).max(1);
    let runs: Vec<&[(Range<usize>, u32)]> = docs.chunks(chunk).collect();
    let scans = crate::par::map(&runs, |run| {
        let mut out = Scan::default();
        scan_documents(file, text, run, &mut Doc::default(), &mut out).map(|()| out)
    });
    for scanned in scans {
        let mut scanned = scanned?;
        out.fields.append(&mut scanned.fields);
        out.problems.append(&mut scanned.problems);
    }
    Ok(out)
}

/// Streams at least this large are scanned on every core.
const PARALLEL_FROM: usize = 4 << 20;

fn scan_documents<'a>(
    file: &str,
    text: &'a str,
    docs: &[(Range<usize>, u32)],
    doc: &mut Doc<'a>,
    out: &mut Scan,
) -> Result<(), Error> {
    for (range, line) in docs {
        doc.clear();
        if crate::fast::build(text, range.clone(), *line, doc).is_some() {
            Walker::new(doc, file, text, out).document()?;
        } else {
            doc.clear();
            parse(file, text, range.clone(), line - 1, doc, out)?;
        }
    }
    Ok(())
}

/// [`scan`] through the full parser only (the reference the fast reader is tested against).
#[cfg(test)]
pub(crate) fn scan_full(file: &str, text: &str) -> Result<Scan, Error> {
    let mut out = Scan::default();
    parse(file, text, 0..text.len(), 0, &mut Doc::default(), &mut out)?;
    Ok(out)
}

/// The documents of a stream: each from its `---` line (or the start) to the next one, with
/// the line it starts at. A `---` at the start of a line is always a document marker in YAML,
/// inside block or quoted scalars too.
pub(crate) fn documents(text: &str) -> Vec<(Range<usize>, u32)> {
    let mut out = Vec::new();
    let (mut start, mut start_line) = (0, 1u32);
    let (mut at, mut line) = (0, 1u32);
    let bytes = text.as_bytes();
    while at < bytes.len() {
        let next = text[at..].find('\n').map_or(bytes.len(), |i| at + i + 1);
        let l = &bytes[at..next];
        if at > start && l.starts_with(b"---") && l.get(3).is_none_or(|c| c.is_ascii_whitespace()) {
            out.push((start..at, start_line));
            (start, start_line) = (at, line);
        }
        at = next;
        line += 1;
    }
    out.push((start..bytes.len(), start_line));
    out
}

/// The part `range` of `input` (after line `base_line`) through granit-parser's events, each
/// document walked when it ends.
fn parse<'a>(
    file: &str,
    input: &'a str,
    range: Range<usize>,
    base_line: u32,
    doc: &mut Doc<'a>,
    out: &mut Scan,
) -> Result<(), Error> {
    let mut options = Options::default();
    // Comments (Helm's `# Source:` among them) say nothing about images.
    options.emit_comments = false;
    let (base, text) = (range.start, &input[range]);
    let mut parser = Parser::new_from_str_with_options(text, options);
    let full = |r: Range<usize>| r.start + base..r.end + base;
    let mut doc_line = 1;
    let at = |span: &Span| {
        let r = span.start.byte_offset().unwrap_or(0)..span.end.byte_offset().unwrap_or(0);
        let line = u32::try_from(span.start.line()).unwrap_or(u32::MAX) + base_line;
        (full(r), line)
    };
    while let Some(next) = parser.next_event() {
        let (event, span) = match next {
            Ok(ok) => ok,
            Err(e) => {
                let stop = e.marker().line();
                let Some((line, template)) = template_before(text, doc_line, stop) else {
                    return Err(syntax(file, &e, base_line));
                };
                out.problems.push(Problem {
                    file: file.to_string(),
                    line: line + base_line as usize,
                    value: template.clone(),
                    kind: ProblemKind::Template { text: template },
                });
                doc.clear();
                match parser.proceed_next_document() {
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(e) => return Err(syntax(file, &e, base_line)),
                }
            }
        };
        let (range, line) = at(&span);
        match event {
            Event::DocumentStart(..) => {
                doc.clear();
                doc_line = span.start.line();
            }
            Event::DocumentEnd => {
                Walker::new(doc, file, input, out).document()?;
                doc.clear();
            }
            Event::Scalar(value, style, anchor, _) => doc.scalar(value, style, anchor, range, line),
            Event::SequenceStart(_, anchor, _) => doc.open(false, anchor, range, line),
            Event::MappingStart(_, anchor, _) => doc.open(true, anchor, range, line),
            Event::SequenceEnd | Event::MappingEnd => doc.close(range.end),
            Event::Alias(id) => doc.alias(id),
            _ => {}
        }
    }
    Ok(())
}

fn syntax(file: &str, e: &ScanError, base_line: u32) -> Error {
    Error::Syntax {
        file: file.to_string(),
        line: e.marker().line().max(1) + base_line as usize,
        message: e.info(),
    }
}

/// The last line holding `{{` from the document's start to the line the parser stopped at
/// (a template breaks YAML at or before that line), with that line's text.
fn template_before(text: &str, from: usize, to: usize) -> Option<(usize, String)> {
    text.lines()
        .enumerate()
        .skip(from.saturating_sub(1))
        .take((to + 1).saturating_sub(from))
        .filter(|(_, l)| l.contains("{{"))
        .last()
        .map(|(i, l)| (i + 1, l.trim().to_string()))
}

/// Whether a reference names a tag: a `:` after the last `/` of the part before any `@`
/// (the `:` of a registry port is always followed by a `/`).
pub fn has_tag(value: &str) -> bool {
    let name = value.split('@').next().unwrap_or(value);
    let last = name.rfind('/').map_or(0, |i| i + 1);
    name[last..].contains(':')
}

type Id = u32;

#[derive(Debug)]
enum Node<'a> {
    Scalar {
        value: Cow<'a, str>,
        style: ScalarStyle,
        span: Range<usize>,
        line: u32,
    },
    Collection {
        map: bool,
        first: u32,
        len: u32,
        span: Range<usize>,
        line: u32,
    },
    Alias(Id),
}

/// One document as a flat tree.
#[derive(Debug, Default)]
pub(crate) struct Doc<'a> {
    nodes: Vec<Node<'a>>,
    /// Children of every collection, each collection's in one run (a mapping's as key, value).
    children: Vec<Id>,
    /// Children of the collections still open.
    pending: Vec<Id>,
    /// The open collections: node and where its children start in `pending`.
    open: Vec<(Id, usize)>,
    anchors: HashMap<usize, Id>,
}

impl<'a> Doc<'a> {
    pub(crate) fn clear(&mut self) {
        self.nodes.clear();
        self.children.clear();
        self.pending.clear();
        self.open.clear();
        self.anchors.clear();
    }

    fn push(&mut self, node: Node<'a>, anchor: usize) -> Id {
        let id = Id::try_from(self.nodes.len()).unwrap_or(Id::MAX);
        self.nodes.push(node);
        if anchor != 0 {
            self.anchors.insert(anchor, id);
        }
        if !self.open.is_empty() {
            self.pending.push(id);
        }
        id
    }

    pub(crate) fn scalar(
        &mut self,
        value: Cow<'a, str>,
        style: ScalarStyle,
        anchor: usize,
        span: Range<usize>,
        line: u32,
    ) {
        let node = Node::Scalar {
            value,
            style,
            span,
            line,
        };
        self.push(node, anchor);
    }

    pub(crate) fn open(&mut self, map: bool, anchor: usize, span: Range<usize>, line: u32) {
        let node = Node::Collection {
            map,
            first: 0,
            len: 0,
            span,
            line,
        };
        let id = self.push(node, anchor);
        self.open.push((id, self.pending.len()));
    }

    pub(crate) fn close(&mut self, end: usize) {
        let Some((id, from)) = self.open.pop() else {
            return;
        };
        let first = u32::try_from(self.children.len()).unwrap_or(u32::MAX);
        let len = u32::try_from(self.pending.len() - from).unwrap_or(u32::MAX);
        self.children.extend(self.pending.drain(from..));
        if let Some(Node::Collection {
            first: f,
            len: l,
            span: s,
            ..
        }) = self.nodes.get_mut(id as usize)
        {
            (*f, *l) = (first, len);
            s.end = end.max(s.start);
        }
    }

    fn alias(&mut self, id: usize) {
        // The parser refuses an alias without its anchor; a missing one is skipped.
        if let Some(&target) = self.anchors.get(&id) {
            self.push(Node::Alias(target), 0);
        }
    }

    /// The node an alias stands for (a node for itself otherwise).
    fn resolve(&self, id: Id) -> Id {
        match self.nodes[id as usize] {
            Node::Alias(target) => target,
            _ => id,
        }
    }

    fn kids(&self, id: Id) -> &[Id] {
        match self.nodes[id as usize] {
            Node::Collection { first, len, .. } => {
                &self.children[first as usize..(first + len) as usize]
            }
            _ => &[],
        }
    }

    fn is_map(&self, id: Id) -> bool {
        matches!(self.nodes[id as usize], Node::Collection { map: true, .. })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    fn is_seq(&self, id: Id) -> bool {
        matches!(self.nodes[id as usize], Node::Collection { map: false, .. })
    }

    fn str(&self, id: Id) -> Option<&str> {
        match &self.nodes[self.resolve(id) as usize] {
            Node::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// The value of `key` in the mapping `map` (aliases resolved).
    fn get(&self, map: Id, key: &str) -> Option<Id> {
        self.kids(map)
            .chunks_exact(2)
            .find(|kv| self.str(kv[0]) == Some(key))
            .map(|kv| self.resolve(kv[1]))
    }

    fn get_str(&self, map: Id, key: &str) -> Option<String> {
        let id = self.get(map, key)?;
        match &self.nodes[id as usize] {
            Node::Scalar { value, style, .. } if !is_null(value, *style) => Some(value.to_string()),
            _ => None,
        }
    }
}

fn is_null(value: &str, style: ScalarStyle) -> bool {
    style == ScalarStyle::Plain && matches!(value, "" | "~" | "null" | "Null" | "NULL")
}

/// The object an image belongs to.
struct Object {
    kind: Option<String>,
    name: Option<String>,
}

#[derive(Clone, Copy)]
enum Seg<'d> {
    Key(&'d str),
    Index(usize),
}

struct Walker<'d, 'a, 'o> {
    doc: &'d Doc<'a>,
    file: &'d str,
    text: &'a str,
    out: &'o mut Scan,
    /// The image values reported (an alias does not report its anchor's value again).
    seen: HashSet<Id>,
    /// The collections walked through an alias (each once: no cycles, no alias bombs).
    expanded: HashSet<Id>,
    path: Vec<Seg<'d>>,
}

impl<'d, 'a, 'o> Walker<'d, 'a, 'o> {
    fn new(doc: &'d Doc<'a>, file: &'d str, text: &'a str, out: &'o mut Scan) -> Self {
        Walker {
            doc,
            file,
            text,
            out,
            seen: HashSet::new(),
            expanded: HashSet::new(),
            path: Vec::new(),
        }
    }

    fn document(mut self) -> Result<(), Error> {
        let Some(root) = self.doc.nodes.first() else {
            return Ok(());
        };
        match root {
            Node::Scalar {
                value, style, line, ..
            } => {
                if is_null(value, *style) {
                    return Ok(());
                }
                Err(Error::NotAManifest {
                    file: self.file.to_string(),
                    line: *line as usize,
                })
            }
            Node::Collection { map: true, .. } => {
                self.object(0, 0);
                Ok(())
            }
            // A JSON array of objects.
            Node::Collection { map: false, .. } => {
                for (i, &item) in self.doc.kids(0).iter().enumerate() {
                    self.path.push(Seg::Index(i));
                    self.object(self.doc.resolve(item), 0);
                    self.path.pop();
                }
                Ok(())
            }
            Node::Alias(_) => Ok(()),
        }
    }

    /// An object: a `List`'s items each on its own, anything else walked for image fields.
    fn object(&mut self, id: Id, depth: usize) {
        let doc = self.doc;
        if !doc.is_map(id) || depth > MAX_DEPTH {
            return;
        }
        let kind = doc.get_str(id, "kind");
        if kind.as_deref().is_some_and(|k| k.ends_with("List")) {
            if let Some(items) = doc.get(id, "items").filter(|&i| doc.is_seq(i)) {
                self.path.push(Seg::Key("items"));
                for (i, &item) in doc.kids(items).iter().enumerate() {
                    self.path.push(Seg::Index(i));
                    self.object(doc.resolve(item), depth + 1);
                    self.path.pop();
                }
                self.path.pop();
                return;
            }
        }
        // A ConfigMap's or Secret's data are the application's settings: an `image` key there
        // is not an image field (and neither kind holds a pod spec).
        if matches!(kind.as_deref(), Some("ConfigMap" | "Secret")) {
            return;
        }
        let name = doc.get(id, "metadata").and_then(|m| doc.get_str(m, "name"));
        // Paths of `image:` fields start at the object, also for a `List`'s items.
        let outer = std::mem::take(&mut self.path);
        let object = Object { kind, name };
        self.walk(id, &object, depth);
        self.path = outer;
    }

    /// Follows an alias to a collection once per document.
    fn through(&mut self, id: Id) -> Option<Id> {
        let target = self.doc.resolve(id);
        if target != id && !self.expanded.insert(target) {
            return None;
        }
        Some(target)
    }

    fn walk(&mut self, id: Id, object: &Object, depth: usize) {
        let doc = self.doc;
        let Some(id) = self.through(id) else { return };
        if depth > MAX_DEPTH {
            return;
        }
        if doc.is_seq(id) {
            for (i, &item) in doc.kids(id).iter().enumerate() {
                self.path.push(Seg::Index(i));
                self.walk(item, object, depth + 1);
                self.path.pop();
            }
            return;
        }
        for kv in doc.kids(id).chunks_exact(2) {
            let Some(key) = doc.str(kv[0]) else { continue };
            let value = kv[1];
            if let Some(&field) = CONTAINER_KEYS.iter().find(|&&k| k == key) {
                let items = doc.resolve(value);
                if doc.is_seq(items) {
                    for &item in doc.kids(items) {
                        let item = doc.resolve(item);
                        if !doc.is_map(item) {
                            continue;
                        }
                        if let Some(image) = doc.get(item, "image") {
                            let container = doc.get_str(item, "name");
                            self.image(image, object, field.to_string(), container, true);
                        }
                    }
                    continue;
                }
            }
            if key == "image" {
                self.path.push(Seg::Key(key));
                let field = self.path_string();
                self.path.pop();
                self.image(doc.resolve(value), object, field, None, false);
                continue;
            }
            self.path.push(Seg::Key(key));
            self.walk(value, object, depth + 1);
            self.path.pop();
        }
    }

    fn path_string(&self) -> String {
        let mut s = String::new();
        for seg in &self.path {
            match seg {
                Seg::Key(k) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(k);
                }
                Seg::Index(i) => {
                    s.push('[');
                    s.push_str(&i.to_string());
                    s.push(']');
                }
            }
        }
        s
    }

    /// An image value. `container`: a container's `image`, which must be a reference; any
    /// other `image:` field is one when it is a non-empty string.
    fn image(
        &mut self,
        id: Id,
        object: &Object,
        field: String,
        container: Option<String>,
        strict: bool,
    ) {
        if !self.seen.insert(id) {
            return;
        }
        let location = |line: u32| Location {
            file: self.file.to_string(),
            line: line as usize,
            kind: object.kind.clone(),
            name: object.name.clone(),
            container: container.clone(),
            field: field.clone(),
        };
        let (value, style, span, line) = match &self.doc.nodes[id as usize] {
            Node::Scalar {
                value,
                style,
                span,
                line,
            } => (value.as_ref(), *style, span.clone(), *line),
            Node::Collection { span, line, .. } => {
                let source = self.text.get(span.clone()).unwrap_or("");
                if source.contains("{{") {
                    let text = source.trim().to_string();
                    self.problem(*line, text.clone(), ProblemKind::Template { text });
                } else if strict {
                    let value = source.trim().chars().take(80).collect();
                    self.problem(*line, value, ProblemKind::NotAString);
                }
                return;
            }
            Node::Alias(_) => return,
        };
        if value.contains("{{") {
            let text = value.trim().to_string();
            return self.problem(line, text.clone(), ProblemKind::Template { text });
        }
        let quoting = match style {
            ScalarStyle::Plain => Quoting::Plain,
            ScalarStyle::SingleQuoted => Quoting::Single,
            ScalarStyle::DoubleQuoted => Quoting::Double,
            _ => {
                let value = value.trim().to_string();
                return self.problem(line, value.clone(), ProblemKind::BlockScalar(value));
            }
        };
        if is_null(value, style) || value.is_empty() {
            if strict {
                self.problem(line, String::new(), ProblemKind::Empty);
            }
            return;
        }
        match Reference::parse(value) {
            Ok(reference) => {
                let field = Field {
                    location: location(line),
                    span,
                    quoting,
                    value: value.to_string(),
                    has_tag: has_tag(value),
                    reference,
                };
                self.out.fields.push(field);
            }
            Err(e) => {
                let shown = e.reference.clone();
                self.problem(line, shown, ProblemKind::InvalidReference(e));
            }
        }
    }

    fn problem(&mut self, line: u32, value: String, kind: ProblemKind) {
        self.out.problems.push(Problem {
            file: self.file.to_string(),
            line: line as usize,
            value,
            kind,
        });
    }
}
