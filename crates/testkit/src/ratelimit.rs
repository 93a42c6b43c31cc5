//! A rate-limited registry: a real registry behind a front that answers as Docker Hub does
//! when a pull budget runs low, for what no server here does (a 429 storm).
//!
//! Every answer carries Docker Hub's budget headers (`RateLimit-Limit: N;w=21600`,
//! `RateLimit-Remaining: M;w=21600`); each manifest `GET` passed on spends one request of the
//! budget (a `HEAD` spends none, as on Docker Hub). The first `refuse` requests for a
//! repository (a manifest, a tag list, a blob: anything but `/v2/`) are answered
//! `429 Too Many Requests` with `Retry-After` and the
//! distribution error envelope (`TOOMANYREQUESTS`); every other request is passed on to the
//! registry behind and its answer sent back, headers and body unchanged. For pulls: the
//! front forwards `Location` headers as the registry wrote them. Hand-rolled HTTP/1.1 on a
//! std listener, one thread per connection, `Connection: close`; every request is logged.

use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;

use crate::http::{accept_loop, read_request, write_answer};
use crate::referrers::Logged;

/// Status, headers, body.
type Answer = (u16, Vec<(String, String)>, Vec<u8>);

/// Docker Hub's window: 6 hours.
const WINDOW: u64 = 21_600;

struct State {
    upstream: String,
    client: reqwest::blocking::Client,
    limit: u64,
    remaining: AtomicU64,
    refuse: AtomicUsize,
    retry_after: u64,
    log: Mutex<Vec<Logged>>,
    stop: AtomicBool,
}

/// A running rate-limited front; dropping it stops its thread.
pub struct RateLimited {
    /// `127.0.0.1:PORT`, plain HTTP.
    pub host: String,
    state: Arc<State>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RateLimited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimited")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl RateLimited {
    /// A front to the plain-HTTP registry at `upstream` (`HOST:PORT`) with a budget of
    /// `limit` manifest `GET`s, `remaining` of them left, refusing the first `refuse`
    /// repository requests with 429 and `Retry-After: retry_after` seconds.
    pub fn start(
        upstream: &str,
        (limit, remaining): (u64, u64),
        refuse: usize,
        retry_after: u64,
    ) -> anyhow::Result<RateLimited> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the rate limiter")?;
        let host = listener.local_addr()?.to_string();
        let client = reqwest::blocking::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()?;
        let state = Arc::new(State {
            upstream: upstream.to_string(),
            client,
            limit,
            remaining: AtomicU64::new(remaining),
            refuse: AtomicUsize::new(refuse),
            retry_after,
            log: Mutex::default(),
            stop: AtomicBool::new(false),
        });
        let thread = {
            let state = Arc::clone(&state);
            std::thread::Builder::new()
                .name("rate-limited".into())
                .spawn(move || accept_loop(listener, state, |s| &s.stop, "rate-conn", handle))?
        };
        Ok(RateLimited {
            host,
            state,
            thread: Some(thread),
        })
    }

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<Logged> {
        self.state.log.lock().unwrap().clone()
    }

    /// Requests left of the budget.
    pub fn remaining(&self) -> u64 {
        self.state.remaining.load(Ordering::SeqCst)
    }
}

impl Drop for RateLimited {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.host);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn handle(mut stream: TcpStream, state: &State) -> anyhow::Result<()> {
    let r = read_request(&stream, Duration::from_secs(30), 64 << 20)?;
    let target = if r.query.is_empty() {
        r.path.clone()
    } else {
        format!("{}?{}", r.path, r.query)
    };
    let manifest = r.path.starts_with("/v2/") && r.path.contains("/manifests/");
    let repository = r.path.starts_with("/v2/") && r.path.len() > "/v2/".len();
    let refused = repository
        && state
            .refuse
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
    let (status, mut headers, body) = if refused {
        let body =
            br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}"#;
        let headers = vec![
            ("Retry-After".to_string(), state.retry_after.to_string()),
            ("Content-Type".to_string(), "application/json".to_string()),
        ];
        (429, headers, body.to_vec())
    } else {
        if manifest && r.method == "GET" {
            let _ = state
                .remaining
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        }
        forward(state, &r, &target)?
    };
    headers.push((
        "RateLimit-Limit".to_string(),
        format!("{};w={WINDOW}", state.limit),
    ));
    headers.push((
        "RateLimit-Remaining".to_string(),
        format!("{};w={WINDOW}", state.remaining.load(Ordering::SeqCst)),
    ));
    state.log.lock().unwrap().push(Logged {
        method: r.method.clone(),
        target,
        status,
    });
    write_answer(&mut stream, &r.method, status, &headers, &body)
}

/// The registry's answer to `r`: status, headers (but those of the connection), body.
fn forward(state: &State, r: &crate::http::Request, target: &str) -> anyhow::Result<Answer> {
    let method = reqwest::Method::from_bytes(r.method.as_bytes())?;
    let mut req = state
        .client
        .request(method, format!("http://{}{target}", state.upstream))
        .body(r.body.clone());
    for (name, value) in &r.headers {
        if !matches!(
            name.to_ascii_lowercase().as_str(),
            "host" | "connection" | "content-length" | "transfer-encoding"
        ) {
            req = req.header(name, value);
        }
    }
    let resp = req.send().context("the registry behind the rate limiter")?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .filter(|(n, _)| match n.as_str() {
            "connection" | "transfer-encoding" | "keep-alive" => false,
            // A `HEAD` names the length a `GET` would have; a body's is written anew.
            "content-length" => r.method == "HEAD",
            _ => true,
        })
        .filter_map(|(n, v)| Some((n.to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let body = resp.bytes()?.to_vec();
    Ok((status, headers, body))
}
