//! A minimal bearer-token issuer for distribution's `auth.token` (the Docker Hub / Harbor flow).
//!
//! Hand-rolled HTTP/1.1 on a std `TcpListener`, one thread per connection, `Connection: close`.
//! It answers `GET /token?service=S&scope=A&scope=B` with basic credentials, and the OAuth2
//! `POST /token` form (`grant_type=password`) that containerd tries first.

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;

use crate::http::{accept_loop, read_request, Request};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::{SecureRandom as _, SystemRandom};
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use serde::Serialize;

use crate::{require_tool, run};

/// Lifetime of issued tokens, in seconds.
const EXPIRES_IN: u64 = 300;

/// A running token issuer; dropping it stops its thread.
pub struct TokenIssuer {
    /// `http://127.0.0.1:PORT/token`: what the registry names as `realm`.
    pub realm: String,
    /// The `service` (the token's `aud`).
    pub service: String,
    /// The `issuer` (the token's `iss`).
    pub issuer: String,
    /// The self-signed certificate whose key signs the tokens (the registry's `rootcertbundle`).
    pub cert_file: PathBuf,
    state: Arc<State>,
    addr: std::net::SocketAddr,
    thread: Option<JoinHandle<()>>,
}

struct State {
    username: String,
    password: String,
    service: String,
    issuer: String,
    key: RsaKeyPair,
    cert_der: Vec<u8>,
    stop: AtomicBool,
    issued: AtomicUsize,
    requests: AtomicUsize,
    /// Repositories the user has no rights on: their scopes are left out of tokens.
    denied: Mutex<Vec<String>>,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("realm", &self.realm)
            .field("service", &self.service)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// Starts an issuer that accepts only `username`/`password`, writing its certificate
    /// (`token.crt`) into `dir`.
    pub fn start(dir: &Path, username: &str, password: &str) -> anyhow::Result<TokenIssuer> {
        let (pkcs8, cert_pem) = signing_key()?;
        let cert_file = dir.join("token.crt");
        std::fs::write(&cert_file, cert_pem)?;
        let cert_der = pem_to_der(cert_pem)?;
        let key = RsaKeyPair::from_pkcs8(pkcs8)
            .map_err(|err| anyhow::anyhow!("token signing key rejected by ring: {err}"))?;
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the token issuer")?;
        let addr = listener.local_addr()?;
        let service = "airlock-test-registry".to_string();
        let issuer = "airlock-test-issuer".to_string();
        let state = Arc::new(State {
            username: username.to_string(),
            password: password.to_string(),
            service: service.clone(),
            issuer: issuer.clone(),
            key,
            cert_der,
            stop: AtomicBool::new(false),
            issued: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            denied: Mutex::default(),
        });
        let thread = {
            let state = Arc::clone(&state);
            std::thread::Builder::new()
                .name("token-issuer".into())
                .spawn(move || accept_loop(listener, state, |s| &s.stop, "token-conn", handle))?
        };
        Ok(TokenIssuer {
            realm: format!("http://{addr}/token"),
            service,
            issuer,
            cert_file,
            state,
            addr,
            thread: Some(thread),
        })
    }

    /// How many requests reached the issuer so far (any path, any outcome).
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// How many tokens were issued so far.
    pub fn tokens_issued(&self) -> usize {
        self.state.issued.load(Ordering::SeqCst)
    }

    /// From now on, tokens grant nothing on `repository`: its scopes are left out of the
    /// token's `access`, as Harbor's token service leaves out what a user may not do (the
    /// token is still issued, and the registry answers 401 `insufficient_scope`).
    pub fn deny(&self, repository: &str) {
        self.state
            .denied
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(repository.to_string());
    }

    /// A token for `scopes` (e.g. `repository:fixtures/app-a:pull`), as the issuer would grant it.
    pub fn token_for(&self, scopes: &[&str]) -> anyhow::Result<String> {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        make_token(&self.state, &self.state.username, &scopes)
    }
}

impl Drop for TokenIssuer {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept().
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One RSA key and self-signed certificate per process: RSA key generation takes a noticeable
/// fraction of a second, and nothing requires issuers to have distinct keys.
fn signing_key() -> anyhow::Result<(&'static [u8], &'static str)> {
    static KEY: OnceLock<(Vec<u8>, String)> = OnceLock::new();
    if let Some((der, pem)) = KEY.get() {
        return Ok((der, pem));
    }
    let made = make_signing_key()?;
    let (der, pem) = KEY.get_or_init(|| made);
    Ok((der, pem))
}

fn make_signing_key() -> anyhow::Result<(Vec<u8>, String)> {
    let openssl = require_tool("openssl")?;
    let dir = tempfile::Builder::new().prefix("airlock-tok").tempdir()?;
    let key = dir.path().join("token.key");
    let der = dir.path().join("token.pk8");
    let crt = dir.path().join("token.crt");
    run(Command::new(&openssl)
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .arg("-out")
        .arg(&key))?;
    run(Command::new(&openssl)
        .args(["pkcs8", "-topk8", "-nocrypt", "-outform", "DER"])
        .arg("-in")
        .arg(&key)
        .arg("-out")
        .arg(&der))?;
    run(Command::new(&openssl)
        .args(["req", "-x509", "-new", "-sha256", "-days", "3650"])
        .args(["-subj", "/CN=airlock test token issuer"])
        .arg("-key")
        .arg(&key)
        .arg("-out")
        .arg(&crt))?;
    Ok((std::fs::read(&der)?, std::fs::read_to_string(&crt)?))
}

fn pem_to_der(pem: &str) -> anyhow::Result<Vec<u8>> {
    let body: String = pem
        .lines()
        .skip_while(|line| !line.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|line| !line.starts_with("-----END"))
        .collect();
    STANDARD
        .decode(body.trim())
        .context("decoding the token certificate PEM")
}

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("system random source");
    bytes
}

fn handle(mut stream: TcpStream, state: &State) -> anyhow::Result<()> {
    let request = read_request(&stream, Duration::from_secs(10), 1 << 20)?;
    if state.stop.load(Ordering::SeqCst) {
        return Ok(());
    }
    state.requests.fetch_add(1, Ordering::SeqCst);
    let (status, body) = respond(&request, state);
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Method Not Allowed",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if status == 401 {
        head.push_str("WWW-Authenticate: Basic realm=\"airlock-test-token\"\r\n");
    }
    if status == 405 {
        head.push_str("Allow: GET, POST\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()?;
    Ok(())
}

fn error(status: u16, message: &str) -> (u16, String) {
    (
        status,
        serde_json::json!({ "errors": [{ "code": "DENIED", "message": message }] }).to_string(),
    )
}

fn respond(request: &Request, state: &State) -> (u16, String) {
    if request.path != "/token" {
        return error(404, "not found");
    }
    let (params, username, password) = match request.method.as_str() {
        "GET" => {
            let params = form(request.query.as_bytes());
            let (user, pass) = match request.header("authorization").and_then(basic_credentials) {
                Some((user, pass)) => (Some(user), Some(pass)),
                None => (None, None),
            };
            (params, user, pass)
        }
        "POST" => {
            let params = form(&request.body);
            let grant = param(&params, "grant_type").unwrap_or_default();
            if grant != "password" {
                return error(400, "only grant_type=password is supported");
            }
            let user = param(&params, "username");
            let pass = param(&params, "password");
            (params, user, pass)
        }
        _ => return error(405, "method not allowed"),
    };
    if let Some(service) = param(&params, "service") {
        if service != state.service {
            return error(400, "unknown service");
        }
    }
    match (username, password) {
        (Some(user), Some(pass)) if user == state.username && pass == state.password => {}
        (None, _) | (_, None) => return error(401, "authentication required"),
        _ => return error(401, "invalid username or password"),
    }
    let scopes: Vec<String> = params
        .iter()
        .filter(|(key, _)| key == "scope")
        .flat_map(|(_, value)| value.split(' ').map(str::to_string).collect::<Vec<_>>())
        .filter(|scope| !scope.is_empty())
        .collect();
    match make_token(state, &state.username, &scopes) {
        Ok(token) => {
            state.issued.fetch_add(1, Ordering::SeqCst);
            let body = TokenResponse {
                token: &token,
                access_token: &token,
                expires_in: EXPIRES_IN,
                issued_at: rfc3339(unix_now()),
            };
            (200, serde_json::to_string(&body).expect("serialisable"))
        }
        Err(err) => error(400, &err.to_string()),
    }
}

fn form(bytes: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(bytes).into_owned().collect()
}

fn param(params: &[(String, String)], name: &str) -> Option<String> {
    params
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.clone())
}

fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, value) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(value.trim()).ok()?).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

#[derive(Serialize)]
struct TokenResponse<'a> {
    token: &'a str,
    access_token: &'a str,
    expires_in: u64,
    issued_at: String,
}

#[derive(Serialize)]
struct Header<'a> {
    typ: &'static str,
    alg: &'static str,
    x5c: [&'a str; 1],
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: u64,
    nbf: u64,
    iat: u64,
    jti: String,
    access: Vec<Access>,
}

#[derive(Serialize)]
struct Access {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    actions: Vec<String>,
}

/// `type:name:actions`; the name may itself hold colons (a `host:port/...` name), so the type
/// ends at the first colon and the actions start after the last one.
fn parse_scope(scope: &str) -> anyhow::Result<Access> {
    let (kind, rest) = scope
        .split_once(':')
        .with_context(|| format!("bad scope `{scope}`"))?;
    let (name, actions) = rest
        .rsplit_once(':')
        .with_context(|| format!("bad scope `{scope}`"))?;
    Ok(Access {
        kind: kind.to_string(),
        name: name.to_string(),
        actions: actions
            .split(',')
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

fn make_token(state: &State, subject: &str, scopes: &[String]) -> anyhow::Result<String> {
    let x5c = STANDARD.encode(&state.cert_der);
    let header = Header {
        typ: "JWT",
        alg: "RS256",
        x5c: [&x5c],
    };
    let now = unix_now();
    let claims = Claims {
        iss: &state.issuer,
        sub: subject,
        aud: &state.service,
        exp: now + EXPIRES_IN,
        // A little slack for clocks read at different moments.
        nbf: now.saturating_sub(10),
        iat: now,
        jti: hex::encode(random_bytes::<16>()),
        access: {
            let denied = state.denied.lock().unwrap_or_else(|e| e.into_inner());
            scopes
                .iter()
                .map(|scope| parse_scope(scope))
                .filter(|access| {
                    access.as_ref().map_or(true, |a| {
                        !(a.kind == "repository" && denied.contains(&a.name))
                    })
                })
                .collect::<anyhow::Result<_>>()?
        },
    };
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims)?)
    );
    let mut signature = vec![0; state.key.public().modulus_len()];
    state
        .key
        .sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            signing_input.as_bytes(),
            &mut signature,
        )
        .map_err(|_| anyhow::anyhow!("signing the token failed"))?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a Unix time (Howard Hinnant's civil-from-days).
fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn scopes_split_at_first_and_last_colon() {
        let access = parse_scope("repository:fixtures/app-a:pull,push").unwrap();
        assert_eq!(
            (access.kind.as_str(), access.name.as_str()),
            ("repository", "fixtures/app-a")
        );
        assert_eq!(access.actions, ["pull", "push"]);
        let access = parse_scope("repository:localhost:5000/a:pull").unwrap();
        assert_eq!(access.name, "localhost:5000/a");
    }
}
