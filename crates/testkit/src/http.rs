//! The hand-rolled HTTP/1.1 of the in-process test servers (the token issuer, the referrers
//! registry): a std `TcpListener`, one thread per connection, `Connection: close`.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};

/// One request as read off the connection.
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) query: String,
    /// Every header, names as sent.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Request {
    /// The first header named `name` (any case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one request: the request line, the headers, and a body by `Content-Length` or
/// chunked, of at most `max_body` bytes.
pub(crate) fn read_request(
    stream: &TcpStream,
    timeout: Duration,
    max_body: usize,
) -> anyhow::Result<Request> {
    stream.set_read_timeout(Some(timeout))?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target, String::new()),
    };
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 {
            break;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.to_string(), value.trim().to_string()));
        }
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _): &&(String, String)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let chunked = find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let length: usize = match find("content-length") {
        Some(v) => v.parse().context("bad content-length")?,
        None => 0,
    };
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .context("bad chunk size")?;
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
            if body.len() > max_body {
                bail!("request body too large");
            }
        }
    } else {
        if length > max_body {
            bail!("request body too large");
        }
        body = vec![0; length];
        reader.read_exact(&mut body)?;
    }
    Ok(Request {
        method,
        path,
        query,
        headers,
        body,
    })
}

/// Accepts connections until `stop` is set (the owner sets it, then connects once to wake
/// this loop), each handled by `handle` on a thread of its own named `name`.
pub(crate) fn accept_loop<S: Send + Sync + 'static>(
    listener: TcpListener,
    state: Arc<S>,
    stop: impl Fn(&S) -> &AtomicBool,
    name: &str,
    handle: fn(TcpStream, &S) -> anyhow::Result<()>,
) {
    for stream in listener.incoming() {
        if stop(&state).load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let state = Arc::clone(&state);
        let _ = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let _ = handle(stream, &state);
            });
    }
}

/// Writes one answer and its body (none to a `HEAD`), with `Connection: close` and a
/// `Content-Length` of the body unless `headers` has one (a `HEAD` names the length of the
/// body a `GET` would have).
pub(crate) fn write_answer(
    stream: &mut TcpStream,
    method: &str,
    status: u16,
    headers: &[(impl AsRef<str>, String)],
    body: &[u8],
) -> anyhow::Result<()> {
    let mut head = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
    let mut has_length = false;
    for (name, value) in headers {
        let name = name.as_ref();
        has_length |= name.eq_ignore_ascii_case("content-length");
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !has_length {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if method != "HEAD" {
        stream.write_all(body)?;
    }
    stream.flush()?;
    Ok(())
}
