//! Errors of the registry client.
//!
//! Every variant names its subject (registry URL, repository, reference or digest) and keeps
//! the cause in `source`. Where a fix exists the message ends with a `hint:` line.

use std::path::PathBuf;
use std::time::Duration;

use crate::envelope::ErrorCode;

/// Everything the registry client can fail with.
///
/// Callers that try several sources in turn (mirrors, then the origin) decide with
/// [`Error::is_not_found`], [`Error::is_unreachable`] and [`Error::is_retryable`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The registry could not be reached: connection refused, DNS failure, timeout.
    #[error(
        "cannot reach `{url}`\n  hint: check the address, that the registry runs, and the \
         proxy settings (HTTPS_PROXY, NO_PROXY)"
    )]
    Unreachable {
        /// The URL requested.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The TLS handshake failed: an untrusted or invalid certificate, or no TLS at all.
    #[error("{}", tls_message(url, host, ca_file.as_deref(), *problem))]
    Tls {
        /// The URL requested.
        url: String,
        /// The registry (`host[:port]`) whose configuration can fix it.
        host: String,
        /// The CA file configured for the host, if any (its certificates did not help).
        ca_file: Option<PathBuf>,
        /// What went wrong, as far as it can be told.
        problem: TlsProblem,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The registry (or its token service) refused access after the credentials, if any,
    /// had been tried.
    #[error("{}", unauthorized_message(registry, repository, *credentials, message))]
    Unauthorized {
        /// The registry (`host[:port]`).
        registry: String,
        /// The repository, empty for requests that concern no repository (`/v2/`).
        repository: String,
        /// Whether credentials were sent.
        credentials: bool,
        /// What the registry said, if anything.
        message: String,
    },
    /// The registry answered 403: the credentials are valid but lack a permission.
    #[error(
        "`{}`: access denied{}\n  hint: the account used for `{registry}` lacks permission \
         for this repository",
        subject(registry, repository),
        colon(message)
    )]
    Denied {
        /// The registry (`host[:port]`).
        registry: String,
        /// The repository.
        repository: String,
        /// What the registry said, if anything.
        message: String,
    },
    /// The registry refused a push (403, or a token granted without `push`): the account
    /// lacks push rights, or (Harbor) the project does not exist.
    #[error(
        "`{registry}/{repository}`: push of {what} denied{}\n  hint: the account needs push \
         rights to `{repository}`; on Harbor the project must exist (--harbor-create-projects)",
        colon(message)
    )]
    PushDenied {
        /// The registry (`host[:port]`).
        registry: String,
        /// The repository pushed to.
        repository: String,
        /// What was pushed: "blob `sha256:…`" or "manifest `…`".
        what: String,
        /// What the registry said, if anything.
        message: String,
    },
    /// Pushing a blob failed; the cause says how (the retries, if it was worth retrying, are
    /// spent).
    #[error("cannot push blob `{digest}` to `{registry}/{repository}`")]
    BlobPush {
        /// The registry (`host[:port]`).
        registry: String,
        /// The repository pushed to.
        repository: String,
        /// The blob.
        digest: String,
        /// The cause.
        #[source]
        source: Box<Error>,
    },
    /// The bytes of a blob being pushed could not be read: the stream given to
    /// [`Client::push_blob`](crate::Client::push_blob) failed or ended early.
    #[error("cannot read blob `{digest}` to push it to `{registry}/{repository}`")]
    BlobSource {
        /// The registry (`host[:port]`).
        registry: String,
        /// The repository pushed to.
        repository: String,
        /// The blob.
        digest: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A manifest, blob or repository does not exist (404, or the error codes
    /// `MANIFEST_UNKNOWN`, `BLOB_UNKNOWN`, `NAME_UNKNOWN`).
    #[error("{}", not_found_message(what, registry, repository, reference))]
    NotFound {
        /// `"manifest"`, `"blob"`, `"repository"` or `"catalog"`.
        what: &'static str,
        /// The registry (`host[:port]`).
        registry: String,
        /// The repository.
        repository: String,
        /// The tag or digest asked for (empty when the repository itself is unknown).
        reference: String,
    },
    /// The registry kept answering 429 until the retries ran out.
    #[error(
        "`{url}`: too many requests (429), retries exhausted{}\n  hint: try again later, use a \
         mirror, or authenticate (anonymous pulls often have lower rate limits)",
        asked.map(|d| format!("; the registry asked to wait {}", crate::ratelimit::duration(d))).unwrap_or_default()
    )]
    TooManyRequests {
        /// The URL requested.
        url: String,
        /// How long the next attempt waits for it (`Retry-After`, capped).
        retry_after: Option<Duration>,
        /// How long the registry asked to wait (`Retry-After` as sent).
        asked: Option<Duration>,
    },
    /// Any other unexpected status.
    #[error("`{url}` answered {status}{}{}", code.as_ref().map(|c| format!(" {c}")).unwrap_or_default(), colon(message))]
    Server {
        /// The URL requested.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The first error code of the OCI error envelope, if the body had one.
        code: Option<ErrorCode>,
        /// The error message(s) of the envelope, or the start of the body.
        message: String,
        /// How long the registry asked to wait (`Retry-After`), honoured by retries.
        retry_after: Option<Duration>,
    },
    /// Content does not hash to the digest it was asked for or announced with.
    #[error("{what}: digest mismatch: expected `{expected}`, got `{actual}`")]
    DigestMismatch {
        /// What was fetched (e.g. "manifest `docker.io/library/nginx:1.25`").
        what: String,
        /// The digest asked for or announced.
        expected: String,
        /// The digest of the bytes received.
        actual: String,
    },
    /// A response is larger than the limit set for it.
    #[error("{what} is larger than the limit of {limit} bytes{}", size.map(|s| format!(" ({s} bytes)")).unwrap_or_default())]
    TooLarge {
        /// What was fetched.
        what: String,
        /// The limit in bytes.
        limit: u64,
        /// The announced size, if the server sent one.
        size: Option<u64>,
    },
    /// A configuration file (CA file, auth file) is missing or malformed.
    #[error("cannot use the {what} `{}`", path.display())]
    Config {
        /// `"CA file"` or `"auth file"`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A docker credential helper (`docker-credential-<name>`) failed; the cause tells a
    /// helper that is not installed from one that ran and failed, and carries the hint.
    #[error("credential helper `docker-credential-{helper}` failed for `{registry}`")]
    CredentialHelper {
        /// The helper's name (the part after `docker-credential-`).
        helper: String,
        /// The registry looked up.
        registry: String,
        /// The cause.
        #[source]
        source: HelperError,
    },
    /// An image reference, repository name or digest is malformed.
    #[error(transparent)]
    InvalidReference(#[from] ReferenceError),
    /// The registry or its token service answered something this client cannot use.
    #[error("`{url}`: unexpected response: {message}")]
    Protocol {
        /// The URL requested.
        url: String,
        /// What is wrong with the response.
        message: String,
    },
    /// A response body broke off (the connection dropped, the server stalled).
    #[error("reading the response from `{url}` failed")]
    Body {
        /// The URL requested.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// A download URL does not exist (404 or 410).
    #[error("`{url}` does not exist ({status})")]
    UrlNotFound {
        /// The URL requested (never with credentials).
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// A download server refused access (401 or 403).
    #[error(
        "`{url}`: access refused ({status}){}",
        if *credentials {
            format!("\n  hint: check the credentials for `{host}` in the auth file")
        } else {
            format!("\n  hint: add credentials for `{host}` to the docker or podman auth file")
        }
    )]
    UrlRefused {
        /// The URL requested (never with credentials).
        url: String,
        /// Its `host[:port]`, where credentials are looked up.
        host: String,
        /// The HTTP status.
        status: u16,
        /// Whether credentials were sent.
        credentials: bool,
    },
    /// A download URL is not an `http://` or `https://` URL.
    #[error("`{url}` is not an http:// or https:// URL")]
    BadUrl {
        /// The URL as given (without credentials).
        url: String,
    },
    /// The HTTP client could not be set up (the system's TLS roots could not be loaded).
    #[error("cannot set up the HTTP client")]
    ClientSetup(#[source] reqwest::Error),
    /// The request could not be sent for another reason (e.g. too many redirects).
    #[error("request to `{url}` failed")]
    Request {
        /// The URL requested.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
}

impl Error {
    /// The registry says the manifest, blob or repository does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::BlobPush { source, .. } => source.is_not_found(),
            _ => matches!(self, Error::NotFound { .. } | Error::UrlNotFound { .. }),
        }
    }

    /// The registry could not be reached at all (connection, DNS, timeout).
    ///
    /// TLS failures are not counted: a mirror with a bad certificate is a configuration
    /// error to report, not a source to skip silently.
    pub fn is_unreachable(&self) -> bool {
        match self {
            Error::BlobPush { source, .. } => source.is_unreachable(),
            _ => matches!(self, Error::Unreachable { .. }),
        }
    }

    /// Trying again later may succeed: connection failures, 5xx, 429, a body that broke off.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Unreachable { .. } | Error::TooManyRequests { .. } | Error::Body { .. } => true,
            // 501 and 505 say the server will never do it.
            Error::Server { status, .. } => *status >= 500 && !matches!(status, 501 | 505),
            // A connection reset after connecting, a protocol hiccup: worth another try;
            // a redirect loop or an unbuildable request is not.
            Error::Request { source, .. } => !(source.is_redirect() || source.is_builder()),
            Error::BlobPush { source, .. } => source.is_retryable(),
            _ => false,
        }
    }

    /// How long the registry asked to wait before the next attempt, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::TooManyRequests { retry_after, .. } | Error::Server { retry_after, .. } => {
                *retry_after
            }
            Error::BlobPush { source, .. } => source.retry_after(),
            _ => None,
        }
    }
}

/// What kind of TLS failure, if any, is in the source chain of `err`.
///
/// rustls errors reach here wrapped in `std::io::Error`, whose `source()` skips the inner
/// error, so each `io::Error` is unwrapped by hand.
pub(crate) fn tls_problem(err: &(dyn std::error::Error + 'static)) -> Option<TlsProblem> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(match tls {
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
                    TlsProblem::Certificate
                }
                rustls::Error::InvalidMessage(_) => TlsProblem::NotTls,
                _ => TlsProblem::Handshake,
            });
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if let Some(problem) = tls_problem(inner) {
                return Some(problem);
            }
        }
        current = e.source();
    }
    None
}

/// What went wrong in a TLS handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsProblem {
    /// The server's certificate is not trusted or not valid for the host.
    Certificate,
    /// The server does not speak TLS (most likely plain HTTP).
    NotTls,
    /// Another handshake failure.
    Handshake,
}

/// Why a docker credential helper failed.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    /// The program could not be started (not installed, not on `PATH`, not executable).
    #[error("{}", spawn_message(program, source))]
    Spawn {
        /// The program.
        program: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// It ran and exited with an error.
    #[error(
        "it ran and exited with {status}: {}\n  hint: the helper is installed but failed: fix \
         what it says (log in again, unlock the keychain), or remove it from \
         `credHelpers`/`credsStore` in the auth file",
        if stderr.is_empty() { "(no error output)" } else { stderr }
    )]
    Failed {
        /// The exit status.
        status: std::process::ExitStatus,
        /// Its error output (helpers never print secrets there).
        stderr: String,
    },
    /// It did not answer in time.
    #[error("it did not answer within {0:?}")]
    Timeout(Duration),
    /// Its output is not the expected `{"Username": …, "Secret": …}` JSON.
    #[error("its output is not credentials JSON")]
    Output(#[source] serde_json::Error),
}

fn spawn_message(program: &str, source: &std::io::Error) -> String {
    if source.kind() == std::io::ErrorKind::NotFound {
        format!(
            "`{program}` is not installed (not found on PATH)\n  hint: install it, or remove it \
             from `credHelpers`/`credsStore` in the auth file"
        )
    } else {
        format!("cannot run `{program}`")
    }
}

/// A malformed image reference, repository name, tag or digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference `{reference}`: {reason}")]
pub struct ReferenceError {
    /// The input as given.
    pub reference: String,
    /// What is wrong and where.
    pub reason: ReferenceProblem,
}

const CREDENTIALS_HINT: &str = "\n  hint: give credentials in an auth file (`docker login HOST`, \
                                `REGISTRY_AUTH_FILE`) or with --username and --password-stdin";

/// What is wrong with an image reference, repository name, tag, digest or registry host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceProblem {
    /// Nothing was given.
    #[error("the reference is empty")]
    Empty,
    /// A space or control character.
    #[error("it contains the character {0:?}")]
    Character(char),
    /// Nothing before the tag or digest.
    #[error("the repository name is empty")]
    EmptyRepository,
    /// `registry/repository` is longer than the distribution spec allows.
    #[error("the name `{name}` is longer than {limit} characters")]
    NameTooLong {
        /// `registry/repository`.
        name: String,
        /// The limit.
        limit: usize,
    },
    /// `user:password@` in front of the name (never echoed).
    #[error("an image reference cannot carry credentials (`user:password@`){CREDENTIALS_HINT}")]
    Credentials,
    /// `something:else@not-a-digest`: the part before `@` may be a password.
    #[error(
        "what follows `@` is not a digest (`sha256:` and 64 lowercase hex digits); the part \
         before it is not shown, as it may be `user:password` (an image reference cannot \
         carry credentials){CREDENTIALS_HINT}"
    )]
    NoDigestAfterAt,
    /// `[` without `]`.
    #[error("the registry `{registry}` opens `[` for an IPv6 address but does not close it")]
    UnclosedIpv6 {
        /// The registry.
        registry: String,
    },
    /// Between `[` and `]` is no IPv6 address.
    #[error("`{address}` in the registry `{registry}` is not an IPv6 address")]
    NotIpv6 {
        /// What is between the brackets.
        address: String,
        /// The registry.
        registry: String,
    },
    /// Something other than `:port` after `]`.
    #[error("unexpected `{after}` after the IPv6 address in the registry `{registry}`")]
    AfterIpv6 {
        /// What follows `]`.
        after: String,
        /// The registry.
        registry: String,
    },
    /// `:5000` alone.
    #[error("the registry `{registry}` has an empty host name")]
    EmptyHost {
        /// The registry.
        registry: String,
    },
    /// A host name component with other characters than letters, digits and inner `-`.
    #[error(
        "the registry host `{host}` is invalid at `{component}`: components are letters, \
         digits and inner `-`, separated by `.`"
    )]
    HostComponent {
        /// The host.
        host: String,
        /// The component.
        component: String,
    },
    /// The port is not a number.
    #[error("the port `{port}` of the registry `{registry}` is not a number")]
    Port {
        /// The port as given.
        port: String,
        /// The registry.
        registry: String,
    },
    /// `a//b`.
    #[error("the repository `{repository}` has an empty path component")]
    EmptyComponent {
        /// The repository.
        repository: String,
    },
    /// A path component breaks the distribution spec's grammar.
    #[error(
        "the repository path component `{component}` {defect}; components are lowercase \
         letters and digits, separated by `.`, `_`, `__` or `-`{}",
        if *.looks_like_host { " (a registry host needs a `.` or a `:port`, or is `localhost`)" } else { "" }
    )]
    Component {
        /// The component.
        component: String,
        /// What is wrong with it.
        defect: ComponentDefect,
        /// It has an uppercase letter and comes first: meant as a registry host, perhaps.
        looks_like_host: bool,
    },
    /// A tag outside `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    #[error(
        "the tag `{0}` is invalid: a tag is 1 to 128 of `A-Za-z0-9_.-` and does not start \
         with `.` or `-`"
    )]
    Tag(String),
    /// A digest without `algorithm:`.
    #[error("the digest `{0}` has no algorithm: expected `sha256:<64 hex digits>`")]
    NoAlgorithm(String),
    /// Another algorithm than sha256.
    #[error("the digest algorithm `{0}` is not supported: expected `sha256`")]
    Algorithm(String),
    /// Not 64 lowercase hex digits.
    #[error("the digest `{0}` is invalid: expected `sha256:` and 64 lowercase hex digits")]
    DigestHex(String),
    /// Not something a URL can be made of.
    #[error("`{registry}` is not a registry host{}", .url.map(|e| format!(": {e}")).unwrap_or_default())]
    NotHost {
        /// The registry.
        registry: String,
        /// Why a URL cannot be made of it, when that is the reason.
        url: Option<url::ParseError>,
    },
}

/// Why a repository path component is not `[a-z0-9]+ ( ( [_.] | __ | -+ ) [a-z0-9]+ )*`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComponentDefect {
    /// An uppercase letter.
    #[error("has the uppercase letter `{0}`")]
    Uppercase(char),
    /// A character outside the grammar.
    #[error("has the character `{0}`")]
    Character(char),
    /// It starts or ends with a separator.
    #[error("must start and end with a letter or digit")]
    Ends,
    /// A separator other than `.`, `_`, `__` or dashes.
    #[error("has the separator `{0}`")]
    Separator(String),
}

fn subject(registry: &str, repository: &str) -> String {
    if repository.is_empty() {
        registry.to_owned()
    } else {
        format!("{registry}/{repository}")
    }
}

fn colon(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

fn tls_message(
    url: &str,
    host: &str,
    ca_file: Option<&std::path::Path>,
    problem: TlsProblem,
) -> String {
    match (problem, ca_file) {
        (TlsProblem::Certificate, Some(ca)) => format!(
            "the TLS certificate of `{url}` is not trusted by the CA file `{}` (nor by the \
             system's roots)\n  hint: check that `{}` holds the CA that issued `{host}`'s \
             certificate (`openssl s_client -connect {host} -CAfile {}` shows the chain), and \
             that the certificate names `{host}`",
            ca.display(),
            ca.display(),
            ca.display()
        ),
        (TlsProblem::Handshake, Some(ca)) => format!(
            "the TLS handshake with `{url}` failed (CA file `{}`)\n  hint: check the server's \
             TLS setup and that `{}` holds the CA that issued `{host}`'s certificate",
            ca.display(),
            ca.display()
        ),
        (TlsProblem::Certificate, None) => format!(
            "the TLS certificate of `{url}` is not trusted\n  hint: set caFile for `{host}` \
             in the spec or pass --ca-file"
        ),
        (TlsProblem::NotTls, _) => format!(
            "`{url}` does not answer with TLS\n  hint: if `{host}` serves plain HTTP, set \
             plainHttp for it in the spec"
        ),
        (TlsProblem::Handshake, None) => format!(
            "the TLS handshake with `{url}` failed\n  hint: check the server's TLS setup; for \
             a private CA set caFile for `{host}` in the spec or pass --ca-file"
        ),
    }
}

fn unauthorized_message(
    registry: &str,
    repository: &str,
    credentials: bool,
    message: &str,
) -> String {
    let subject = subject(registry, repository);
    if credentials {
        format!(
            "`{subject}`: unauthorized{}\n  hint: check the username and password, or run \
             `docker login {registry}`",
            colon(message)
        )
    } else {
        // distribution's own message says the same as the headline.
        let message = if message.eq_ignore_ascii_case("authentication required") {
            ""
        } else {
            message
        };
        format!(
            "`{subject}`: authentication required{}\n  hint: give credentials for `{registry}` \
             (in the spec, or with --username and --password-stdin), or run `docker login \
             {registry}`; some registries (Docker Hub) also answer this for a repository that \
             does not exist",
            colon(message)
        )
    }
}

fn not_found_message(what: &str, registry: &str, repository: &str, reference: &str) -> String {
    match what {
        "repository" => format!("repository `{registry}/{repository}` not found"),
        "catalog" => format!("the catalog of `{registry}` (`/v2/_catalog`) not found"),
        "blob" => format!("blob `{reference}` not found in `{registry}/{repository}`"),
        _ if reference.starts_with("sha256:") => {
            format!("{what} `{registry}/{repository}@{reference}` not found")
        }
        _ => format!("{what} `{registry}/{repository}:{reference}` not found"),
    }
}

/// Renders an error and its causes on one line, `: `-separated, with every `hint:` of the
/// chain moved to lines of its own at the end.
pub fn render_error(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut hints: Vec<String> = Vec::new();
    let mut cur = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        let mut segs = text.split("\n  hint: ");
        if let Some(main) = segs.next() {
            // Some causes repeat their own source's text; keep the shorter story.
            if !main.is_empty() && !parts.last().is_some_and(|p| p.contains(main)) {
                parts.push(main.to_string());
            }
        }
        for h in segs {
            if !hints.iter().any(|x| x == h) {
                hints.push(h.to_string());
            }
        }
        cur = err.source();
    }
    let mut s = parts.join(": ");
    for h in hints {
        s.push_str("\n  hint: ");
        s.push_str(&h);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_puts_causes_on_one_line_and_hints_last() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot reach `x`\n  hint: check the address")]
        struct Inner;
        #[derive(Debug, thiserror::Error)]
        #[error("`img`: manifest failed\n  hint: check the address")]
        struct Outer(#[source] Inner);
        assert_eq!(
            render_error(&Outer(Inner)),
            "`img`: manifest failed: cannot reach `x`\n  hint: check the address"
        );
    }

    #[test]
    fn messages_name_their_subject() {
        let e = Error::NotFound {
            what: "manifest",
            registry: "r.io".into(),
            repository: "a/b".into(),
            reference: "1.0".into(),
        };
        assert_eq!(e.to_string(), "manifest `r.io/a/b:1.0` not found");
        assert!(e.is_not_found() && !e.is_retryable());

        let e = Error::Unauthorized {
            registry: "r.io".into(),
            repository: "a".into(),
            credentials: true,
            message: "authentication required".into(),
        };
        let s = e.to_string();
        assert!(s.starts_with("`r.io/a`: unauthorized: authentication required\n  hint: "));
        assert!(s.contains("docker login r.io"));

        let e = Error::Server {
            url: "https://r.io/v2/".into(),
            status: 503,
            code: Some(ErrorCode::Unavailable),
            message: "later".into(),
            retry_after: None,
        };
        assert_eq!(
            e.to_string(),
            "`https://r.io/v2/` answered 503 UNAVAILABLE: later"
        );
        assert!(e.is_retryable());
    }

    #[test]
    fn push_errors_name_blob_and_repository() {
        let e = Error::PushDenied {
            registry: "harbor.lan".into(),
            repository: "mirror/pause".into(),
            what: "blob `sha256:ab`".into(),
            message: String::new(),
        };
        assert_eq!(
            e.to_string(),
            "`harbor.lan/mirror/pause`: push of blob `sha256:ab` denied\n  hint: the account \
             needs push rights to `mirror/pause`; on Harbor the project must exist \
             (--harbor-create-projects)"
        );
        let e = Error::BlobPush {
            registry: "r.io".into(),
            repository: "a".into(),
            digest: "sha256:ab".into(),
            source: Box::new(Error::Server {
                url: "https://r.io/v2/a/blobs/uploads/1".into(),
                status: 502,
                code: None,
                message: String::new(),
                retry_after: Some(Duration::from_secs(2)),
            }),
        };
        assert_eq!(e.to_string(), "cannot push blob `sha256:ab` to `r.io/a`");
        assert!(e.is_retryable() && !e.is_not_found());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));
    }
}
