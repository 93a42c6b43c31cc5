//! A real Debian `docker-registry` (CNCF distribution 2.8): plain, TLS, basic auth or token auth.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use tempfile::TempDir;

use crate::process::Server;
use crate::{fixtures, free_port, off_runtime, require_tool, Pki, TokenIssuer};

/// How long a registry gets to answer `GET /v2/` after it was started.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How many fresh ports to try when another process took the chosen one first.
const BIND_ATTEMPTS: usize = 5;

/// How clients must authenticate to a [`Registry`]. `Debug` does not show the password.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Auth {
    /// Anonymous access, pull and push.
    #[default]
    None,
    /// `htpasswd` basic auth (bcrypt file) with one user.
    Basic {
        /// The one user name accepted.
        username: String,
        /// Its password.
        password: String,
    },
    /// Bearer tokens from a [`TokenIssuer`] that accepts one user (anonymous requests get 401).
    Token {
        /// The one user name accepted by the issuer.
        username: String,
        /// Its password.
        password: String,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, username) = match self {
            Auth::None => return f.write_str("None"),
            Auth::Basic { username, .. } => ("Basic", username),
            Auth::Token { username, .. } => ("Token", username),
        };
        f.debug_struct(kind)
            .field("username", username)
            .field("password", &format_args!("<redacted>"))
            .finish()
    }
}

impl Auth {
    /// `Auth::Basic` from string slices.
    pub fn basic(username: &str, password: &str) -> Auth {
        Auth::Basic {
            username: username.into(),
            password: password.into(),
        }
    }

    /// `Auth::Token` from string slices.
    pub fn token(username: &str, password: &str) -> Auth {
        Auth::Token {
            username: username.into(),
            password: password.into(),
        }
    }

    fn credentials(&self) -> Option<(String, String)> {
        match self {
            Auth::None => None,
            Auth::Basic { username, password } | Auth::Token { username, password } => {
                Some((username.clone(), password.clone()))
            }
        }
    }
}

/// How to start a [`Registry`].
#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    /// Serve HTTPS with a certificate from a fresh private CA ([`Registry::ca_file`]).
    pub tls: bool,
    /// Authentication required from clients.
    pub auth: Auth,
    /// Storage root directory; `None`: a fresh empty directory removed on drop.
    pub storage: Option<PathBuf>,
}

/// A running `docker-registry serve`; dropping it stops the registry (and its token issuer)
/// and removes its temporary directory (but never a storage directory it was given).
pub struct Registry {
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// The CA that signed the registry's certificate (TLS only): `ca.crt` in PEM.
    pub ca_file: Option<PathBuf>,
    /// `(username, password)` accepted by the registry (basic) or its token issuer (token).
    pub credentials: Option<(String, String)>,
    /// The storage root directory.
    pub storage: PathBuf,
    tls: bool,
    server: Option<Server>,
    config: PathBuf,
    port: u16,
    settings: Settings,
    token: Option<TokenIssuer>,
    // Last: removed after the server has stopped.
    dir: TempDir,
}

/// What is needed to rewrite the config for another port.
struct Settings {
    storage: PathBuf,
    readonly: bool,
    tls: Option<Pki>,
    auth_yaml: String,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("host", &self.host)
            .field("ca_file", &self.ca_file)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|(u, _)| (u, "<redacted>")),
            )
            .field("storage", &self.storage)
            .field("pid", &self.pid())
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// Starts a registry on a free port and waits until `GET /v2/` answers (200, or 401 with auth).
    pub fn start(opts: RegistryOptions) -> anyhow::Result<Registry> {
        Registry::start_inner(opts, false)
    }

    /// A registry serving every fixture image from the shared, cached storage
    /// ([`fixtures::registry_storage`]), built on first use.
    ///
    /// The storage is shared by every such registry of every test process, so the registry is
    /// started in distribution's read-only mode: pushes answer 405. Start one with
    /// [`Registry::start`] (and [`fixtures::push`]) to write.
    pub fn with_fixtures(tls: bool, auth: Auth) -> anyhow::Result<Registry> {
        let storage = fixtures::registry_storage()?;
        Registry::start_inner(
            RegistryOptions {
                tls,
                auth,
                storage: Some(storage),
            },
            true,
        )
    }

    fn start_inner(opts: RegistryOptions, readonly: bool) -> anyhow::Result<Registry> {
        require_tool("docker-registry")?;
        let dir = tempfile::Builder::new()
            .prefix("airlock-registry-")
            .tempdir()
            .context("creating the registry's temporary directory")?;
        let storage = match &opts.storage {
            Some(storage) => storage.clone(),
            None => dir.path().join("storage"),
        };
        std::fs::create_dir_all(&storage)
            .with_context(|| format!("creating `{}`", storage.display()))?;
        let tls = if opts.tls {
            Some(Pki::generate(&dir.path().join("pki"))?)
        } else {
            None
        };
        let mut token = None;
        let auth_yaml = match &opts.auth {
            Auth::None => String::new(),
            Auth::Basic { username, password } => {
                let htpasswd = require_tool("htpasswd")?;
                let out = crate::run(
                    Command::new(htpasswd)
                        .arg("-Bbn")
                        .arg(username)
                        .arg(password),
                )?;
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, out.stdout)?;
                format!(
                    "auth:\n  htpasswd:\n    realm: airlock-test\n    path: {}\n",
                    yaml_path(&file)
                )
            }
            Auth::Token { username, password } => {
                let issuer = TokenIssuer::start(dir.path(), username, password)?;
                let yaml = format!(
                    "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    issuer.realm,
                    issuer.service,
                    issuer.issuer,
                    yaml_path(&issuer.cert_file)
                );
                token = Some(issuer);
                yaml
            }
        };
        let mut registry = Registry {
            host: String::new(),
            ca_file: tls.as_ref().map(|pki| pki.ca_cert.clone()),
            credentials: opts.auth.credentials(),
            storage: storage.clone(),
            tls: opts.tls,
            server: None,
            config: dir.path().join("config.yml"),
            port: 0,
            settings: Settings {
                storage,
                readonly,
                tls,
                auth_yaml,
            },
            token,
            dir,
        };
        let mut last_error = None;
        for _ in 0..BIND_ATTEMPTS {
            registry.port = free_port();
            registry.host = format!("127.0.0.1:{}", registry.port);
            match registry.launch() {
                Ok(()) => return Ok(registry),
                Err(err) if is_bind_error(&err) => last_error = Some(err),
                Err(err) => return Err(err),
            }
        }
        Err(last_error.expect("at least one attempt"))
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.host)
    }

    /// The token issuer (token auth only).
    pub fn token_issuer(&self) -> Option<&TokenIssuer> {
        self.token.as_ref()
    }

    /// The registry's log file (its stdout and stderr).
    pub fn log_file(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    /// The registry's temporary directory (config, PKI, htpasswd, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the registry: SIGTERM, then SIGKILL after 5 s. Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.stop();
        }
    }

    /// SIGKILL now (crash tests). Idempotent.
    pub fn kill(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.kill();
        }
    }

    /// Stops the registry if it runs and starts it again on the same port and storage.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        // The old socket is closed but the port may be held briefly by someone else: retry.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.launch() {
                Ok(()) => return Ok(()),
                Err(err) if is_bind_error(&err) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// The registry's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.server.as_ref().and_then(Server::pid)
    }

    fn write_config(&self) -> anyhow::Result<()> {
        let s = &self.settings;
        let mut yaml = format!(
            "version: 0.1\n\
             log:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             \x20 maintenance:\n    uploadpurging:\n      enabled: false\n    readonly:\n      enabled: {}\n\
             http:\n  addr: {}\n  secret: airlock-test-secret\n",
            yaml_path(&s.storage),
            s.readonly,
            self.host,
        );
        if let Some(pki) = &s.tls {
            yaml.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                yaml_path(&pki.server_cert),
                yaml_path(&pki.server_key)
            ));
        }
        yaml.push_str(&s.auth_yaml);
        std::fs::write(&self.config, yaml)
            .with_context(|| format!("writing `{}`", self.config.display()))
    }

    /// Writes the config for the current port, spawns the process, waits until ready.
    fn launch(&mut self) -> anyhow::Result<()> {
        self.write_config()?;
        let mut cmd = Command::new(require_tool("docker-registry")?);
        cmd.arg("serve").arg(&self.config);
        // Environment variables override the config file (REGISTRY_HTTP_ADDR, ...).
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("REGISTRY_") {
                cmd.env_remove(key);
            }
        }
        let mut server = Server::spawn("docker-registry", cmd, &self.log_file())?;
        match self.wait_ready(&mut server) {
            Ok(()) => {
                self.server = Some(server);
                Ok(())
            }
            Err(err) => {
                let tail = server.log_tail();
                server.kill();
                Err(err.context(tail))
            }
        }
    }

    fn wait_ready(&self, server: &mut Server) -> anyhow::Result<()> {
        off_runtime(|| self.wait_ready_blocking(server))
    }

    fn wait_ready_blocking(&self, server: &mut Server) -> anyhow::Result<()> {
        let url = format!("{}/v2/", self.url());
        let client = {
            let mut builder = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(2))
                .no_proxy();
            if let Some(ca) = &self.ca_file {
                let pem = std::fs::read(ca)?;
                builder = builder
                    .tls_built_in_root_certs(false)
                    .add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
            }
            builder.build()?
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = server.exited() {
                bail!("`docker-registry` on {} exited early ({status})", self.host);
            }
            let last = match client.get(&url).send() {
                Ok(resp) if matches!(resp.status().as_u16(), 200 | 401) => return Ok(()),
                Ok(resp) => format!("GET {url} answered {}", resp.status()),
                Err(err) => format!("GET {url}: {err:#}"),
            };
            if Instant::now() > deadline {
                bail!(
                    "`docker-registry` on {} not ready after {:?}: {last}",
                    self.host,
                    READY_TIMEOUT
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn is_bind_error(err: &anyhow::Error) -> bool {
    format!("{err:#}").contains("address already in use")
}

/// A path as a YAML scalar: a JSON string is a valid YAML double-quoted scalar.
fn yaml_path(path: &Path) -> String {
    serde_json::to_string(&path.to_string_lossy()).expect("a string serialises")
}
