//! The fast reader: the YAML most manifests are written in (block mappings and sequences,
//! plain and quoted one-line scalars, block scalars, flow collections and JSON, comments),
//! read straight into the scanner's tree at several times granit-parser's speed. Anything
//! else in a document (anchors, aliases, tags, complex keys, multi-line plain or quoted
//! scalars, tabs in indentation, templates that break the syntax) makes it give up on that
//! document (`None`), which the full parser then reads: the fast reader never decides
//! anything the full parser would decide differently (the tests compare the two).

use std::borrow::Cow;
use std::ops::Range;

use granit_parser::ScalarStyle;

use crate::scan::Doc;

/// Deeper flow collections are left to the full parser.
const MAX_FLOW_DEPTH: usize = 128;

/// Builds `doc` from the document at `range` of `text`, which starts at line `line`.
pub(crate) fn build<'a>(
    text: &'a str,
    range: Range<usize>,
    line: u32,
    doc: &mut Doc<'a>,
) -> Option<()> {
    let mut r = Reader {
        text,
        bytes: text.as_bytes(),
        pos: range.start,
        end: range.end,
        line,
        doc,
        stack: Vec::new(),
        pending: None,
        deepest: None,
        ended: false,
    };
    r.run()
}

#[derive(Clone, Copy)]
struct Frame {
    indent: usize,
    map: bool,
}

/// A key or `-` whose value starts on a later line.
#[derive(Clone, Copy)]
struct Pending {
    indent: usize,
    key: bool,
    /// The line of the key or `-`: an empty value is there.
    line: u32,
}

struct Reader<'a, 'd> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    end: usize,
    /// The line `pos` is on.
    line: u32,
    doc: &'d mut Doc<'a>,
    stack: Vec<Frame>,
    pending: Option<Pending>,
    /// After a one-line value, the next line may not be indented more than this (it would
    /// continue the scalar).
    deepest: Option<usize>,
    /// After `...`: only comments may follow.
    ended: bool,
}

fn blank_or_comment(s: &[u8]) -> bool {
    let s = trim_start(s);
    s.is_empty() || s[0] == b'#'
}

fn trim_start(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&c| c == b' ' || c == b'\t').count();
    &s[n..]
}

impl<'a> Reader<'a, '_> {
    fn run(&mut self) -> Option<()> {
        let mut first = true;
        while self.pos < self.end {
            let eol = self.text[self.pos..self.end]
                .find('\n')
                .map_or(self.end, |i| self.pos + i);
            let next = (eol + 1).min(self.end);
            let mut stop = eol;
            if stop > self.pos && self.bytes[stop - 1] == b'\r' {
                stop -= 1;
            }
            let line = &self.bytes[self.pos..stop];
            if first && line.starts_with(b"---") {
                first = false;
                if !blank_or_comment(&line[3..]) {
                    return None;
                }
                self.advance(next);
                continue;
            }
            first = false;
            if line == b"..." {
                self.ended = true;
                self.advance(next);
                continue;
            }
            let indent = line.iter().take_while(|&&c| c == b' ').count();
            let rest = &line[indent..];
            if rest.is_empty() || rest[0] == b'#' {
                self.advance(next);
                continue;
            }
            if self.ended || rest[0] == b'\t' {
                return None;
            }
            if self.deepest.take().is_some_and(|d| indent > d) {
                return None;
            }
            let line_start = self.pos;
            self.content_line(indent, line_start + indent, stop)?;
            // A flow collection or a block scalar over several lines moved on already.
            if self.pos == line_start {
                self.advance(next);
            }
        }
        self.finish_pending(self.end);
        while self.stack.pop().is_some() {
            self.doc.close(self.end);
        }
        Some(())
    }

    /// Moves to `to`, counting the lines passed.
    fn advance(&mut self, to: usize) {
        self.line += bytecount(&self.bytes[self.pos..to]);
        self.pos = to;
    }

    fn finish_pending(&mut self, at: usize) {
        if let Some(p) = self.pending.take() {
            self.doc
                .scalar(Cow::Borrowed("~"), ScalarStyle::Plain, 0, at..at, p.line);
        }
    }

    /// A line with content at column `indent` (byte `at`), ending at `stop`.
    fn content_line(&mut self, indent: usize, at: usize, stop: usize) -> Option<()> {
        let item = is_item(&self.bytes[at..stop]);
        let line_start = self.pos;
        if let Some(p) = self.pending {
            if indent > p.indent || (p.key && item && indent == p.indent) {
                self.pending = None;
                return self.value(indent, at, stop);
            }
            self.finish_pending(line_start);
        }
        while let Some(top) = self.stack.last() {
            if top.indent > indent || (top.indent == indent && !top.map && !item) {
                self.stack.pop();
                self.doc.close(line_start);
            } else {
                break;
            }
        }
        match self.stack.last() {
            Some(top) if top.indent == indent && top.map && !item => self.entry(indent, at, stop),
            Some(top) if top.indent == indent && !top.map && item => self.item(indent, at, stop),
            None if self.doc.is_empty() => self.value(indent, at, stop),
            _ => None,
        }
    }

    /// A node starting at column `col` (byte `at`) where a value may start.
    fn value(&mut self, col: usize, at: usize, stop: usize) -> Option<()> {
        let s = &self.bytes[at..stop];
        if is_item(s) {
            self.doc.open(false, 0, at..at, self.line);
            self.stack.push(Frame {
                indent: col,
                map: false,
            });
            return self.item(col, at, stop);
        }
        if key_end(s).is_some() {
            self.doc.open(true, 0, at..at, self.line);
            self.stack.push(Frame {
                indent: col,
                map: true,
            });
            return self.entry(col, at, stop);
        }
        let owner = match self.stack.last() {
            Some(frame) => frame.indent,
            // A JSON document.
            None if matches!(s[0], b'{' | b'[') => 0,
            // A root scalar (text that is not a manifest, say) is left to the full parser.
            None => return None,
        };
        self.inline(owner, at, stop)
    }

    /// `- …` of the sequence at column `col`.
    fn item(&mut self, col: usize, at: usize, stop: usize) -> Option<()> {
        let after = at + 1;
        let spaces = self.bytes[after..stop]
            .iter()
            .take_while(|&&c| c == b' ')
            .count();
        let inner = after + spaces;
        if blank_or_comment(&self.bytes[after..stop]) {
            self.pending = Some(Pending {
                indent: col,
                key: false,
                line: self.line,
            });
            return Some(());
        }
        if self.bytes[inner] == b'\t' {
            return None;
        }
        self.value(col + 1 + spaces, inner, stop)
    }

    /// `key: …` of the mapping at column `col`.
    fn entry(&mut self, col: usize, at: usize, stop: usize) -> Option<()> {
        let s = &self.bytes[at..stop];
        let colon = key_end(s)?;
        let key = &self.text[at..at + colon];
        let key_trimmed = key.trim_end_matches(' ');
        let (value, style, span) = if key.starts_with('"') || key.starts_with('\'') {
            let (v, style, len) = quoted(&self.text[at..at + colon])?;
            if !self.text[at + len..at + colon].trim().is_empty() {
                return None;
            }
            (v, style, at..at + len)
        } else {
            if !plain_start(key.as_bytes()) || key_trimmed.contains(" #") || key.contains('\t') {
                return None;
            }
            let end = at + key_trimmed.len();
            (Cow::Borrowed(key_trimmed), ScalarStyle::Plain, at..end)
        };
        self.doc.scalar(value, style, 0, span, self.line);
        let after = at + colon + 1;
        if blank_or_comment(&self.bytes[after..stop]) {
            self.pending = Some(Pending {
                indent: col,
                key: true,
                line: self.line,
            });
            return Some(());
        }
        let spaces = self.bytes[after..stop]
            .iter()
            .take_while(|&&c| c == b' ')
            .count();
        let v = after + spaces;
        if self.bytes[v] == b'\t'
            || is_item(&self.bytes[v..stop])
            || key_end(&self.bytes[v..stop]).is_some()
        {
            return None;
        }
        self.inline(col, v, stop)
    }

    /// A value that starts on this line, inside the collection at column `owner`.
    fn inline(&mut self, owner: usize, at: usize, stop: usize) -> Option<()> {
        let s = &self.bytes[at..stop];
        match s[0] {
            b'"' | b'\'' => {
                let (v, style, len) = quoted(&self.text[at..stop])?;
                if !blank_or_comment(&s[len..]) || (len < s.len() && s[len] == b'#') {
                    return None;
                }
                self.doc.scalar(v, style, 0, at..at + len, self.line);
            }
            b'{' | b'[' => {
                let line_start = self.pos;
                self.pos = at;
                let start_line = self.line;
                self.flow(0)?;
                // The rest of the line the collection ends on.
                let eol = self.text[self.pos..self.end]
                    .find('\n')
                    .map_or(self.end, |i| self.pos + i);
                if !blank_or_comment(&self.bytes[self.pos..eol]) {
                    return None;
                }
                if self.line == start_line {
                    // Rewind: the line loop advances past this line itself.
                    self.pos = line_start;
                } else {
                    let next = (eol + 1).min(self.end);
                    self.advance(next);
                }
            }
            b'|' | b'>' => return self.block(owner, at, stop),
            _ => {
                if !plain_start(s) {
                    return None;
                }
                let len = plain_len(s);
                let v = self.text[at..at + len].trim_end_matches(' ');
                if v.contains('\t') || v.contains(": ") || v.ends_with(':') {
                    return None;
                }
                let end = at + v.len();
                self.doc
                    .scalar(Cow::Borrowed(v), ScalarStyle::Plain, 0, at..end, self.line);
            }
        }
        self.deepest = Some(owner);
        Some(())
    }

    /// `|` or `>` and its lines: every following line that is blank or indented more than
    /// `owner`. The value is the lines as written (an image in a block scalar is refused).
    fn block(&mut self, owner: usize, at: usize, stop: usize) -> Option<()> {
        let header = &self.bytes[at + 1..stop];
        let indicators = header
            .iter()
            .take_while(|c| matches!(c, b'+' | b'-' | b'1'..=b'9'))
            .count();
        if !blank_or_comment(&header[indicators..])
            || (indicators < header.len() && header[indicators] == b'#')
        {
            return None;
        }
        let style = if self.bytes[at] == b'|' {
            ScalarStyle::Literal
        } else {
            ScalarStyle::Folded
        };
        let (start_line, first) = (self.line, (stop + 1).min(self.end));
        let mut p = first;
        let mut last = first;
        // The full parser puts a block scalar on its first line of content.
        let (mut lines, mut content_line) = (1, None);
        while p < self.end {
            let eol = self.text[p..self.end]
                .find('\n')
                .map_or(self.end, |i| p + i);
            let l = &self.bytes[p..eol];
            let blank = l.iter().all(|&c| c == b' ' || c == b'\r');
            let indent = l.iter().take_while(|&&c| c == b' ').count();
            if !blank && indent <= owner {
                break;
            }
            p = (eol + 1).min(self.end);
            if !blank {
                last = p;
                content_line.get_or_insert(start_line + lines);
            }
            lines += 1;
        }
        let value = self.text[first..last].trim();
        self.doc.scalar(
            Cow::Borrowed(value),
            style,
            0,
            at..last.max(at),
            content_line.unwrap_or(start_line + 1),
        );
        self.advance(first);
        self.advance(p);
        // The line loop goes on at `p` (it does not advance past this line again).
        Some(())
    }

    fn skip_space(&mut self) -> Option<()> {
        while self.pos < self.end {
            match self.bytes[self.pos] {
                b' ' | b'\t' | b'\r' => self.pos += 1,
                b'\n' => {
                    self.pos += 1;
                    self.line += 1;
                    // A document marker ends a flow collection in error: the full parser says so.
                    if self.bytes[self.pos..self.end].starts_with(b"---")
                        || self.bytes[self.pos..self.end].starts_with(b"...")
                    {
                        return None;
                    }
                }
                b'#' => {
                    if self.pos > 0 && !matches!(self.bytes[self.pos - 1], b' ' | b'\t' | b'\n') {
                        return None;
                    }
                    let eol = self.text[self.pos..self.end]
                        .find('\n')
                        .map_or(self.end, |i| self.pos + i);
                    self.pos = eol;
                }
                _ => break,
            }
        }
        Some(())
    }

    fn peek(&self) -> Option<u8> {
        self.bytes
            .get(self.pos)
            .copied()
            .filter(|_| self.pos < self.end)
    }

    /// A flow collection or scalar at `pos` (JSON included).
    fn flow(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_FLOW_DEPTH {
            return None;
        }
        self.skip_space()?;
        let at = self.pos;
        match self.peek()? {
            open @ (b'{' | b'[') => {
                let map = open == b'{';
                let close = if map { b'}' } else { b']' };
                self.doc.open(map, 0, at..at + 1, self.line);
                self.pos += 1;
                loop {
                    self.skip_space()?;
                    if self.peek()? == close {
                        self.pos += 1;
                        self.doc.close(self.pos);
                        return Some(());
                    }
                    if map {
                        self.flow_scalar()?;
                        self.skip_space()?;
                        if self.peek()? != b':' {
                            return None;
                        }
                        self.pos += 1;
                        self.skip_space()?;
                        if matches!(self.peek()?, b',' | b'}') {
                            let p = self.pos;
                            self.doc.scalar(
                                Cow::Borrowed(""),
                                ScalarStyle::Plain,
                                0,
                                p..p,
                                self.line,
                            );
                        } else {
                            self.flow(depth + 1)?;
                        }
                    } else {
                        self.flow(depth + 1)?;
                        self.skip_space()?;
                        // `[a: b]`, a mapping in a sequence, is left to the full parser.
                        if self.peek()? == b':' {
                            return None;
                        }
                    }
                    self.skip_space()?;
                    match self.peek()? {
                        b',' => self.pos += 1,
                        c if c == close => {}
                        _ => return None,
                    }
                }
            }
            _ => self.flow_scalar(),
        }
    }

    /// A quoted or plain scalar in a flow collection.
    fn flow_scalar(&mut self) -> Option<()> {
        let at = self.pos;
        let c = self.peek()?;
        if c == b'"' || c == b'\'' {
            let eol = self.text[at..self.end]
                .find('\n')
                .map_or(self.end, |i| at + i);
            let (v, style, len) = quoted(&self.text[at..eol])?;
            self.doc.scalar(v, style, 0, at..at + len, self.line);
            self.pos = at + len;
            return Some(());
        }
        if !plain_start(&self.bytes[at..self.end]) {
            return None;
        }
        let mut p = at;
        while p < self.end {
            match self.bytes[p] {
                b',' | b'[' | b']' | b'{' | b'}' | b'\n' | b'\r' => break,
                b':' if self.bytes.get(p + 1).is_none_or(|c| {
                    matches!(c, b' ' | b'\n' | b'\r' | b',' | b']' | b'}' | b'\t')
                }) =>
                {
                    break
                }
                b'#' if matches!(self.bytes[p - 1], b' ' | b'\t') => break,
                b'\t' => return None,
                _ => p += 1,
            }
        }
        let v = self.text[at..p].trim_end_matches(' ');
        if v.is_empty() {
            return None;
        }
        let end = at + v.len();
        self.pos = p;
        // A plain scalar that goes on on the next line is left to the full parser.
        if p < self.end && matches!(self.bytes[p], b'\n' | b'\r') {
            let save = (self.pos, self.line);
            self.skip_space()?;
            if !matches!(self.peek()?, b',' | b']' | b'}' | b':') {
                return None;
            }
            (self.pos, self.line) = save;
        }
        self.doc
            .scalar(Cow::Borrowed(v), ScalarStyle::Plain, 0, at..end, self.line);
        Some(())
    }
}

fn bytecount(s: &[u8]) -> u32 {
    u32::try_from(s.iter().filter(|&&c| c == b'\n').count()).unwrap_or(u32::MAX)
}

/// `- x` or `-` alone.
fn is_item(s: &[u8]) -> bool {
    s.first() == Some(&b'-') && s.get(1).is_none_or(|&c| c == b' ')
}

/// Where the `:` of `key: …` is, when the line is one (a plain or one-line quoted key).
fn key_end(s: &[u8]) -> Option<usize> {
    let mut i = 0;
    if matches!(s.first(), Some(b'"' | b'\'')) {
        let q = s[0];
        i = 1;
        while i < s.len() {
            if s[i] == b'\\' && q == b'"' {
                i += 2;
                continue;
            }
            if s[i] == q {
                if q == b'\'' && s.get(i + 1) == Some(&b'\'') {
                    i += 2;
                    continue;
                }
                break;
            }
            i += 1;
        }
        i += 1;
    } else if matches!(
        s.first(),
        Some(b'[' | b'{' | b'#' | b'&' | b'*' | b'!' | b'|' | b'>' | b'%' | b'@' | b'`')
    ) {
        return None;
    }
    while i < s.len() {
        match s[i] {
            b':' if s
                .get(i + 1)
                .is_none_or(|&c| c == b' ' || c == b'\t' || c == b'\r') =>
            {
                return Some(i)
            }
            b'#' if i > 0 && (s[i - 1] == b' ' || s[i - 1] == b'\t') => return None,
            _ => i += 1,
        }
    }
    None
}

/// A plain scalar may start here: no indicator (YAML 1.2, 7.3.3) but a `-` before a
/// character that is not a space (`--flag`); `?` and `:` are left to the full parser.
fn plain_start(s: &[u8]) -> bool {
    if s.first() == Some(&b'-') {
        return s
            .get(1)
            .is_some_and(|c| !matches!(c, b' ' | b'\t' | b'\r' | b'\n'));
    }
    s.first().is_some_and(|c| {
        !matches!(
            c,
            b'-' | b'?'
                | b':'
                | b','
                | b'['
                | b']'
                | b'{'
                | b'}'
                | b'#'
                | b'&'
                | b'*'
                | b'!'
                | b'|'
                | b'>'
                | b'\''
                | b'"'
                | b'%'
                | b'@'
                | b'`'
                | b' '
                | b'\t'
        )
    })
}

/// The length of a one-line plain scalar in block context: to ` #` or the end.
fn plain_len(s: &[u8]) -> usize {
    (1..s.len())
        .find(|&i| s[i] == b'#' && matches!(s[i - 1], b' ' | b'\t'))
        .unwrap_or(s.len())
}

/// A quoted scalar at the start of `s` (one line): its value, style and length in bytes.
fn quoted(s: &str) -> Option<(Cow<'_, str>, ScalarStyle, usize)> {
    let b = s.as_bytes();
    let q = *b.first()?;
    if q == b'\'' {
        let mut owned: Option<String> = None;
        let mut i = 1;
        let mut from = 1;
        while i < b.len() {
            if b[i] == b'\'' {
                if b.get(i + 1) == Some(&b'\'') {
                    let o = owned.get_or_insert_with(String::new);
                    o.push_str(&s[from..=i]);
                    i += 2;
                    from = i;
                    continue;
                }
                let v = match owned {
                    Some(mut o) => {
                        o.push_str(&s[from..i]);
                        Cow::Owned(o)
                    }
                    None => Cow::Borrowed(&s[1..i]),
                };
                return Some((v, ScalarStyle::SingleQuoted, i + 1));
            }
            i += 1;
        }
        return None;
    }
    let mut i = 1;
    let mut escaped = false;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                escaped = true;
                i += 2;
            }
            b'"' => {
                let inner = &s[1..i];
                let v = if escaped {
                    Cow::Owned(unescape(inner)?)
                } else {
                    Cow::Borrowed(inner)
                };
                return Some((v, ScalarStyle::DoubleQuoted, i + 1));
            }
            _ => i += 1,
        }
    }
    None
}

/// The escapes of JSON and the common ones of YAML; any other is left to the full parser.
fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = chars.next()?;
        out.push(match e {
            '"' => '"',
            '\\' => '\\',
            '/' => '/',
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            'b' => '\u{8}',
            'f' => '\u{c}',
            '0' => '\0',
            ' ' => ' ',
            'u' => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = u32::from_str_radix(&hex, 16).ok()?;
                if (0xD800..0xE000).contains(&code) {
                    // A surrogate pair: the full parser joins the halves.
                    return None;
                }
                char::from_u32(code)?
            }
            _ => return None,
        });
    }
    Some(out)
}
