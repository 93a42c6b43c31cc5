//! Credentials, and looking them up in docker/podman auth files and credential helpers.
//!
//! Files are searched in this order, the first one that knows the registry wins:
//! `$REGISTRY_AUTH_FILE`, `$DOCKER_CONFIG/config.json` (else `~/.docker/config.json`),
//! `$XDG_RUNTIME_DIR/containers/auth.json`. Within a file, `credHelpers[host]` and then
//! `credsStore` are asked first (the way the docker CLI does), then the `auths` entry.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use tokio::io::AsyncWriteExt as _;

use crate::error::{Error, HelperError};
use crate::reference::{normalize_registry, DOCKER_HUB};

/// A username and password (or token) for one registry.
///
/// `Debug` shows the username only.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The username.
    pub username: String,
    /// The password or access token. Never logged, never shown.
    pub password: String,
}

impl Credentials {
    /// Credentials from a username and password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"****")
            .finish()
    }
}

/// How long a credential helper may take (it may have to unlock a keychain).
const HELPER_TIMEOUT: Duration = Duration::from_secs(60);

/// The server address docker uses for Docker Hub in auth files and credential helpers.
const DOCKER_HUB_LEGACY: &str = "https://index.docker.io/v1/";

/// The auth files to search, and where to find credential helpers.
#[derive(Debug, Clone, Default)]
pub(crate) struct AuthFiles {
    /// Files in search order; `true` marks a file named explicitly (`REGISTRY_AUTH_FILE`),
    /// which must exist.
    files: Vec<(PathBuf, bool)>,
    /// `PATH` for credential helpers; `None` inherits the process's.
    helper_path: Option<OsString>,
}

impl AuthFiles {
    /// The files named by the environment of this process.
    pub(crate) fn from_env() -> AuthFiles {
        AuthFiles::from_vars(|name| std::env::var_os(name), dirs::home_dir())
    }

    /// The files named by `var` (an environment) and `home`.
    pub(crate) fn from_vars(
        var: impl Fn(&str) -> Option<OsString>,
        home: Option<PathBuf>,
    ) -> AuthFiles {
        let set = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let mut files = Vec::new();
        if let Some(file) = set("REGISTRY_AUTH_FILE") {
            files.push((file, true));
        }
        match set("DOCKER_CONFIG") {
            Some(dir) => files.push((dir.join("config.json"), false)),
            None => {
                if let Some(home) = home {
                    files.push((home.join(".docker").join("config.json"), false));
                }
            }
        }
        if let Some(dir) = set("XDG_RUNTIME_DIR") {
            files.push((dir.join("containers").join("auth.json"), false));
        }
        AuthFiles {
            files,
            helper_path: None,
        }
    }

    /// Only these files, with helpers looked up in `helper_path`.
    #[cfg(test)]
    pub(crate) fn with_files(files: Vec<PathBuf>, helper_path: Option<OsString>) -> AuthFiles {
        AuthFiles {
            files: files.into_iter().map(|f| (f, false)).collect(),
            helper_path,
        }
    }

    /// Credentials for `registry` (`host[:port]`, Docker Hub as `docker.io`), if any file or
    /// helper has some.
    pub(crate) async fn lookup(&self, registry: &str) -> Result<Option<Credentials>, Error> {
        let registry = normalize_registry(registry);
        for (path, required) in &self.files {
            let bytes = match tokio::fs::read(path).await {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => continue,
                Err(e) => return Err(config_error(path, e)),
            };
            let file = AuthFile::parse(&bytes).map_err(|e| config_error(path, e))?;
            if let Some(helper) = file.helper_for(registry) {
                let found = run_helper(helper, registry, self.helper_path.as_deref()).await?;
                if found.is_some() {
                    tracing::debug!(registry, helper, file = %path.display(), "credentials from helper");
                    return Ok(found);
                }
            }
            if let Some(found) = file.auth_for(registry, path)? {
                tracing::debug!(registry, file = %path.display(), "credentials from auth file");
                return Ok(Some(found));
            }
        }
        Ok(None)
    }
}

fn config_error(path: &Path, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::Config {
        what: "auth file",
        path: path.to_owned(),
        source: e.into(),
    }
}

/// The parts of a docker `config.json` / containers `auth.json` that matter here.
/// (No `Debug`: it holds secrets.)
#[derive(Default, Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

impl AuthFile {
    fn parse(bytes: &[u8]) -> Result<AuthFile, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The helper to ask for `registry`: `credHelpers[registry]`, else `credsStore`.
    fn helper_for(&self, registry: &str) -> Option<&str> {
        self.cred_helpers
            .iter()
            .filter(|(key, _)| normalize_key(key) == Some(registry))
            .map(|(_, helper)| helper.as_str())
            .min()
            .or(self.creds_store.as_deref())
            .filter(|h| !h.is_empty())
    }

    /// The `auths` entry for `registry`. An entry under the exact key wins over one under
    /// another spelling (`https://index.docker.io/v1/` for `docker.io`).
    fn auth_for(&self, registry: &str, path: &Path) -> Result<Option<Credentials>, Error> {
        let mut keys: Vec<&String> = self
            .auths
            .keys()
            .filter(|key| normalize_key(key) == Some(registry))
            .collect();
        keys.sort_by_key(|key| (key.as_str() != registry, key.as_str()));
        for key in keys {
            let entry = &self.auths[key];
            if let Some(auth) = entry
                .auth
                .as_deref()
                .map(str::trim)
                .filter(|a| !a.is_empty())
            {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth)
                    .ok()
                    .and_then(|d| String::from_utf8(d).ok());
                let Some((user, pass)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
                    return Err(Error::Config {
                        what: "auth file",
                        path: path.to_owned(),
                        source: format!(
                            "the `auth` of `{key}` is not base64 of `username:password`"
                        )
                        .into(),
                    });
                };
                return Ok(Some(Credentials::new(user, pass)));
            }
            if let (Some(user), Some(pass)) = (&entry.username, &entry.password) {
                if !user.is_empty() {
                    return Ok(Some(Credentials::new(user.clone(), pass.clone())));
                }
            }
            if entry
                .identitytoken
                .as_deref()
                .is_some_and(|t| !t.is_empty())
            {
                // An identity token is an OAuth2 refresh token for the token service; the
                // pull flow here uses basic credentials only.
                tracing::debug!(registry, key, "ignoring identitytoken in auth file");
            }
        }
        Ok(None)
    }
}

/// The registry an `auths`/`credHelpers` key stands for: the scheme and a `/v1/` or `/v2/`
/// path are dropped, Docker Hub aliases become `docker.io`. Keys with a repository path
/// (podman's per-namespace credentials) are not supported and yield `None`.
fn normalize_key(key: &str) -> Option<&str> {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let (host, path) = match rest.split_once('/') {
        Some((host, path)) => (host, path),
        None => (rest, ""),
    };
    match path.trim_end_matches('/') {
        "" | "v1" | "v2" => Some(normalize_registry(host)),
        _ => None,
    }
}

#[derive(Deserialize)]
struct HelperOutput {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// Runs `docker-credential-<helper> get` with the server address on stdin.
async fn run_helper(
    helper: &str,
    registry: &str,
    path: Option<&std::ffi::OsStr>,
) -> Result<Option<Credentials>, Error> {
    let program = format!("docker-credential-{helper}");
    let failed = |source| Error::CredentialHelper {
        helper: helper.to_owned(),
        registry: registry.to_owned(),
        source,
    };
    // Docker Hub is stored under its legacy address; other registries under the host.
    let server = if registry == DOCKER_HUB {
        DOCKER_HUB_LEGACY
    } else {
        registry
    };

    let mut command = tokio::process::Command::new(&program);
    command
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    if let Some(path) = path {
        command.env("PATH", path);
    }
    let spawn_error = |source| HelperError::Spawn {
        program: program.clone(),
        source,
    };
    let mut child = command.spawn().map_err(|e| failed(spawn_error(e)))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading its input is not an error by itself.
        let _ = stdin.write_all(server.as_bytes()).await;
    }
    let output = tokio::time::timeout(HELPER_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| failed(HelperError::Timeout(HELPER_TIMEOUT)))?
        .map_err(|e| failed(spawn_error(e)))?;

    if !output.status.success() {
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        // docker-credential-helpers' `credentials.ErrCredentialsNotFound`.
        if stdout.contains("credentials not found") || stderr.contains("credentials not found") {
            return Ok(None);
        }
        return Err(failed(HelperError::Failed {
            status: output.status,
            stderr: stderr.trim().chars().take(500).collect(),
        }));
    }
    let out: HelperOutput =
        serde_json::from_slice(&output.stdout).map_err(|e| failed(HelperError::Output(e)))?;
    if out.username == "<token>" {
        // An identity token (see `auth_for`), unusable for basic auth.
        tracing::debug!(
            registry,
            helper,
            "ignoring identity token from credential helper"
        );
        return Ok(None);
    }
    if out.username.is_empty() && out.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials::new(out.username, out.secret)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn debug_redacts_password() {
        let c = Credentials::new("alice", "s3cr3t-pw");
        let shown = format!("{c:?} {c:#?}");
        assert!(!shown.contains("s3cr3t-pw"), "{shown}");
        assert!(shown.contains("alice"));
    }

    #[test]
    fn file_search_order() {
        let env: HashMap<&str, &str> = [
            ("REGISTRY_AUTH_FILE", "/a/auth.json"),
            ("DOCKER_CONFIG", "/d"),
            ("XDG_RUNTIME_DIR", "/run/user/1"),
        ]
        .into();
        let files = AuthFiles::from_vars(|k| env.get(k).map(OsString::from), Some("/h".into()));
        let paths: Vec<_> = files.files.iter().map(|(p, r)| (p.clone(), *r)).collect();
        assert_eq!(
            paths,
            vec![
                (PathBuf::from("/a/auth.json"), true),
                (PathBuf::from("/d/config.json"), false),
                (PathBuf::from("/run/user/1/containers/auth.json"), false),
            ]
        );
        let files = AuthFiles::from_vars(|_| None, Some("/h".into()));
        assert_eq!(
            files.files,
            vec![(PathBuf::from("/h/.docker/config.json"), false)]
        );
    }

    #[test]
    fn key_normalisation() {
        assert_eq!(
            normalize_key("https://index.docker.io/v1/"),
            Some("docker.io")
        );
        assert_eq!(normalize_key("docker.io"), Some("docker.io"));
        assert_eq!(normalize_key("registry-1.docker.io"), Some("docker.io"));
        assert_eq!(
            normalize_key("http://127.0.0.1:5000/v2/"),
            Some("127.0.0.1:5000")
        );
        assert_eq!(normalize_key("quay.io"), Some("quay.io"));
        assert_eq!(normalize_key("quay.io/team"), None);
    }

    #[tokio::test]
    async fn auths_entries() {
        let dir = tempfile::tempdir().unwrap();
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let file = write(
            dir.path(),
            "config.json",
            &format!(
                r#"{{"auths": {{
                    "https://index.docker.io/v1/": {{"auth": "{}"}},
                    "r.example:5000": {{"username": "bob", "password": "pw:with:colons"}},
                    "empty.example": {{}},
                    "token.example": {{"identitytoken": "abc"}}
                }}, "HttpHeaders": {{"X": "y"}}}}"#,
                b64("alice:pa:ss")
            ),
        );
        let files = AuthFiles::with_files(vec![file], None);
        let hub = files.lookup("docker.io").await.unwrap().unwrap();
        assert_eq!(hub, Credentials::new("alice", "pa:ss"));
        assert_eq!(files.lookup("index.docker.io").await.unwrap(), Some(hub));
        let r = files.lookup("r.example:5000").await.unwrap().unwrap();
        assert_eq!(r, Credentials::new("bob", "pw:with:colons"));
        assert_eq!(files.lookup("r.example").await.unwrap(), None);
        assert_eq!(files.lookup("empty.example").await.unwrap(), None);
        assert_eq!(files.lookup("token.example").await.unwrap(), None);
    }

    #[tokio::test]
    async fn first_file_that_knows_the_registry_wins() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(
            dir.path(),
            "a.json",
            r#"{"auths": {"a.example": {"username": "a", "password": "1"}}}"#,
        );
        let b = write(
            dir.path(),
            "b.json",
            r#"{"auths": {"a.example": {"username": "b", "password": "2"}, "b.example": {"username": "b", "password": "2"}}}"#,
        );
        let missing = dir.path().join("missing.json");
        let files = AuthFiles::with_files(vec![missing, a, b], None);
        assert_eq!(
            files.lookup("a.example").await.unwrap().unwrap().username,
            "a"
        );
        assert_eq!(
            files.lookup("b.example").await.unwrap().unwrap().username,
            "b"
        );
    }

    #[tokio::test]
    async fn malformed_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let bad_json = write(dir.path(), "bad.json", "{\"auths\": ");
        let err = AuthFiles::with_files(vec![bad_json.clone()], None)
            .lookup("x.example")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Config { path, .. } if *path == bad_json),
            "{err:?}"
        );
        assert!(err.to_string().contains("bad.json"), "{err}");

        let bad_auth = write(
            dir.path(),
            "auth.json",
            r#"{"auths": {"x.example": {"auth": "bm9jb2xvbg=="}}}"#,
        );
        let err = AuthFiles::with_files(vec![bad_auth], None)
            .lookup("x.example")
            .await
            .unwrap_err();
        let chain = format!("{err} / {}", std::error::Error::source(&err).unwrap());
        assert!(
            chain.contains("auth.json") && chain.contains("x.example"),
            "{chain}"
        );
        assert!(!chain.contains("nocolon"), "{chain}");

        // REGISTRY_AUTH_FILE named explicitly must exist.
        let files = AuthFiles {
            files: vec![(dir.path().join("nope.json"), true)],
            helper_path: None,
        };
        assert!(matches!(files.lookup("x").await, Err(Error::Config { .. })));
    }

    /// Credential helpers, through a script on a private `PATH` (never the process's).
    #[cfg(unix)]
    #[tokio::test]
    async fn credential_helpers() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let script = write(
            dir.path(),
            "docker-credential-test",
            r#"#!/bin/sh
[ "$1" = get ] || exit 3
read -r server
case "$server" in
  https://index.docker.io/v1/) echo '{"ServerURL":"x","Username":"hubuser","Secret":"hubsecret"}' ;;
  helper.example:5000) echo '{"ServerURL":"helper.example:5000","Username":"u","Secret":"s"}' ;;
  token.example) echo '{"ServerURL":"token.example","Username":"<token>","Secret":"t"}' ;;
  broken.example) echo 'not json' ;;
  locked.example) echo '{"Username":"u","Secret":"stdout-secret"}'; echo 'error: the keychain is locked' >&2; exit 1 ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
"#,
        );
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let config = write(
            dir.path(),
            "config.json",
            r#"{"credsStore": "test",
                "credHelpers": {"other.example": "absent"},
                "auths": {"fallback.example": {"username": "f", "password": "p"}}}"#,
        );
        let path = OsString::from(format!("{}:/usr/bin:/bin", dir.path().display()));
        let files = AuthFiles::with_files(vec![config], Some(path));

        let hub = files.lookup("docker.io").await.unwrap().unwrap();
        assert_eq!(hub, Credentials::new("hubuser", "hubsecret"));
        let h = files.lookup("helper.example:5000").await.unwrap().unwrap();
        assert_eq!(h, Credentials::new("u", "s"));
        assert_eq!(files.lookup("token.example").await.unwrap(), None);
        assert_eq!(files.lookup("unknown.example").await.unwrap(), None);
        // The helper knows nothing: the `auths` entry of the same file is used.
        let f = files.lookup("fallback.example").await.unwrap().unwrap();
        assert_eq!(f, Credentials::new("f", "p"));

        let err = files.lookup("broken.example").await.unwrap_err();
        assert!(matches!(&err, Error::CredentialHelper { helper, .. } if helper == "test"));
        let err = files.lookup("other.example").await.unwrap_err();
        let shown = crate::render_error(&err);
        assert!(shown.contains("docker-credential-absent"), "{shown}");
        assert!(shown.contains("is not installed"), "{shown}");
        assert!(shown.contains("hint: install it"), "{shown}");

        // Regression: a helper that is installed but fails was told to install it. Its
        // stderr is shown; its stdout (which may hold a secret) never.
        let err = files.lookup("locked.example").await.unwrap_err();
        let shown = crate::render_error(&err);
        assert!(shown.contains("ran and exited with"), "{shown}");
        assert!(shown.contains("the keychain is locked"), "{shown}");
        assert!(!shown.contains("install it"), "{shown}");
        assert!(!shown.contains("stdout-secret"), "{shown}");
    }
}
