//! Authentication: `WWW-Authenticate` challenges, token scopes and token responses.
//!
//! The flow is the one of the distribution "token authentication specification": a request
//! is answered 401 with a challenge; `Basic` asks for the credentials on every request,
//! `Bearer realm=…,service=…,scope=…` sends the client to a token service (`GET realm?service=…
//! &scope=…`, with the credentials as basic auth if there are any) whose token then goes into
//! `Authorization: Bearer …`.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// Lifetime of a token whose response has no `expires_in` (the token spec's default).
pub(crate) const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// What a token is asked for: `repository:<name>:<actions>`.
///
/// Pulls ask `pull`; a push asks `pull,push` on the target and, to mount a blob from another
/// repository, `pull` on the source as a second scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope(String);

impl Scope {
    /// `repository:<repository>:pull`.
    pub fn pull(repository: &str) -> Scope {
        Scope(format!("repository:{repository}:pull"))
    }

    /// `repository:<repository>:pull,push`.
    pub fn push(repository: &str) -> Scope {
        Scope(format!("repository:{repository}:pull,push"))
    }

    /// A scope as the token service spells it (e.g. from a challenge's `scope`).
    pub fn raw(scope: impl Into<String>) -> Scope {
        Scope(scope.into())
    }

    /// The scope string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The key a token is cached under: the scopes, sorted and deduplicated.
pub(crate) fn scope_key(scopes: &[Scope]) -> String {
    let mut s: Vec<&str> = scopes.iter().map(Scope::as_str).collect();
    s.sort_unstable();
    s.dedup();
    s.join(" ")
}

/// One challenge of a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// `Basic realm="…"`.
    Basic,
    /// `Bearer realm="…",service="…",scope="…"`.
    Bearer {
        /// The token service URL.
        realm: String,
        /// The `service` parameter to pass on.
        service: Option<String>,
        /// The scope the registry wants, if it said.
        scope: Option<String>,
        /// `error="insufficient_scope"` and the like.
        error: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` header value into its challenges (RFC 7235 section 4.1).
///
/// Parameter values may be quoted and contain commas and escaped quotes; several challenges
/// may share one header. Unknown schemes and malformed bits are skipped.
pub(crate) fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out = Vec::new();
    for (scheme, params) in parse_raw(header) {
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        if scheme.eq_ignore_ascii_case("basic") {
            out.push(Challenge::Basic);
        } else if scheme.eq_ignore_ascii_case("bearer") {
            if let Some(realm) = get("realm").filter(|r| !r.is_empty()) {
                out.push(Challenge::Bearer {
                    realm,
                    service: get("service"),
                    scope: get("scope"),
                    error: get("error"),
                });
            }
        }
    }
    out
}

type RawChallenge = (String, Vec<(String, String)>);

fn parse_raw(header: &str) -> Vec<RawChallenge> {
    let mut p = Parser {
        s: header.as_bytes(),
        i: 0,
    };
    let mut out: Vec<RawChallenge> = Vec::new();
    loop {
        p.skip_separators();
        let Some(token) = p.token() else {
            // Not a token: skip one byte to make progress, or stop at the end.
            if p.i >= p.s.len() {
                break;
            }
            p.i += 1;
            continue;
        };
        p.skip_ws();
        if p.peek() == Some(b'=') {
            // `name=value`: a parameter of the current challenge.
            p.i += 1;
            p.skip_ws();
            let value = p.value();
            if let Some((_, params)) = out.last_mut() {
                params.push((token, value));
            }
        } else {
            // A new scheme (`Bearer`, `Basic`).
            out.push((token, Vec::new()));
        }
    }
    out
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn skip_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }

    /// An RFC 7230 token (token68's trailing `=` are left for the caller).
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while let Some(c) = self.peek() {
            let tchar = c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:".contains(&c);
            if !tchar {
                break;
            }
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    /// A quoted string (with `\` escapes) or a token.
    fn value(&mut self) -> String {
        if self.peek() != Some(b'"') {
            return self.token().unwrap_or_default();
        }
        self.i += 1;
        let mut v = Vec::new();
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    if let Some(next) = self.peek() {
                        v.push(next);
                        self.i += 1;
                    }
                }
                _ => v.push(c),
            }
        }
        String::from_utf8_lossy(&v).into_owned()
    }
}

/// The answer of a token service. Docker's spec says `token`, OAuth2 says `access_token`.
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl TokenResponse {
    /// The token and how long it lives, or `None` if the response has no token.
    pub(crate) fn into_token(self) -> Option<(String, Duration)> {
        let token = self
            .token
            .filter(|t| !t.is_empty())
            .or(self.access_token.filter(|t| !t.is_empty()))?;
        let lifetime = self
            .expires_in
            .filter(|&s| s > 0)
            .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs);
        Some((token, lifetime))
    }
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token", &self.token.as_ref().map(|_| "****"))
            .field("access_token", &self.access_token.as_ref().map(|_| "****"))
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(realm: &str, service: Option<&str>, scope: Option<&str>) -> Challenge {
        Challenge::Bearer {
            realm: realm.into(),
            service: service.map(Into::into),
            scope: scope.map(Into::into),
            error: None,
        }
    }

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenges(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#
            ),
            vec![bearer(
                "https://auth.docker.io/token",
                Some("registry.docker.io"),
                Some("repository:library/nginx:pull")
            )]
        );
        // Quoted commas (two scopes joined by a space or a comma), odd spacing, case.
        assert_eq!(
            parse_challenges(
                r#"bearer  realm = "http://127.0.0.1:9/token" , scope="repository:a:pull,push repository:b:pull", service=svc"#
            ),
            vec![bearer(
                "http://127.0.0.1:9/token",
                Some("svc"),
                Some("repository:a:pull,push repository:b:pull")
            )]
        );
        assert_eq!(
            parse_challenges(r#"Basic realm="Registry Realm""#),
            vec![Challenge::Basic]
        );
        assert_eq!(parse_challenges("Basic"), vec![Challenge::Basic]);
        // Two challenges in one header, an escaped quote, an error parameter.
        let got = parse_challenges(
            r#"Basic realm="a \"quoted\", realm", Bearer realm="https://r/t",error="insufficient_scope""#,
        );
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], Challenge::Basic);
        assert!(
            matches!(&got[1], Challenge::Bearer { realm, error: Some(e), .. }
            if realm == "https://r/t" && e == "insufficient_scope")
        );
        // Junk and a bearer without a realm yield nothing usable.
        assert_eq!(parse_challenges(""), vec![]);
        assert_eq!(parse_challenges("Bearer service=x"), vec![]);
        assert_eq!(parse_challenges(r#"Negotiate, "#), vec![]);
    }

    #[test]
    fn scopes() {
        assert_eq!(Scope::pull("a/b").as_str(), "repository:a/b:pull");
        assert_eq!(Scope::push("a").to_string(), "repository:a:pull,push");
        let k = scope_key(&[Scope::push("b"), Scope::pull("a"), Scope::pull("a")]);
        assert_eq!(k, "repository:a:pull repository:b:pull,push");
    }

    #[test]
    fn token_responses() {
        let t: TokenResponse =
            serde_json::from_str(r#"{"token":"abc","expires_in":300,"issued_at":"x"}"#).unwrap();
        assert_eq!(
            t.into_token(),
            Some(("abc".into(), Duration::from_secs(300)))
        );
        let t: TokenResponse = serde_json::from_str(r#"{"access_token":"xyz"}"#).unwrap();
        assert_eq!(t.into_token(), Some(("xyz".into(), DEFAULT_TOKEN_LIFETIME)));
        let t: TokenResponse = serde_json::from_str(r#"{"token":""}"#).unwrap();
        assert_eq!(t.into_token(), None);
        let t: TokenResponse = serde_json::from_str(r#"{"token":"sekrit"}"#).unwrap();
        assert!(!format!("{t:?}").contains("sekrit"));
    }
}
