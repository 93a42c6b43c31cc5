//! Debian's nginx as a TLS-terminating reverse proxy in front of a [`Registry`] (the setup
//! that gives Harbor users 413 answers when `client_max_body_size` is small), and as a static
//! file server standing in for download sites and chart repositories ([`Nginx::start_static`]).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use tempfile::TempDir;

use crate::process::Server;
use crate::{free_port, off_runtime, require_tool, Pki, Registry};

/// How long nginx gets to answer `GET /v2/` after it was started.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How many fresh ports to try when another process took the chosen one first.
const BIND_ATTEMPTS: usize = 5;

/// A running nginx proxying `https://HOST/v2/` to a registry. Dropping it stops nginx and
/// removes its temporary directory (config, certificates, logs, temp paths).
pub struct Nginx {
    /// `127.0.0.1:PORT`, where nginx listens (HTTPS).
    pub host: String,
    /// The CA that signed nginx's certificate (PEM), what clients must trust.
    pub ca_file: PathBuf,
    /// Whether it answers HTTPS (always for the proxy).
    pub tls: bool,
    server: Option<Server>,
    // Last: removed after the server has stopped.
    dir: TempDir,
}

impl std::fmt::Debug for Nginx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nginx")
            .field("host", &self.host)
            .field("ca_file", &self.ca_file)
            .field("pid", &self.pid())
            .finish_non_exhaustive()
    }
}

impl Nginx {
    /// Starts nginx on a free port: TLS with a certificate for `127.0.0.1` from a fresh
    /// [`Pki`], `/v2/` proxied to `upstream` with the settings distribution's documentation
    /// recommends for a proxy, and request bodies limited to `client_max_body_size` (an nginx
    /// size: `"1m"`, `"512k"`, `"0"` for none).
    ///
    /// nginx runs in the foreground as one process (`master_process off`), with its logs,
    /// pid file and every temporary path inside its own directory, so it never touches
    /// `/var/lib/nginx` or `/var/log/nginx`. The upstream sees the client's `Host`, so the
    /// `Location`s it answers point back through nginx.
    pub fn start_tls_proxy(
        upstream: &Registry,
        client_max_body_size: &str,
    ) -> anyhow::Result<Nginx> {
        if client_max_body_size.is_empty()
            || !client_max_body_size
                .chars()
                .all(|c| c.is_ascii_alphanumeric())
        {
            bail!("`{client_max_body_size}` is not an nginx size");
        }
        Nginx::start(true, |dir, host, pki| {
            config(dir, host, pki, upstream, client_max_body_size)
        })
    }

    /// Starts nginx on a free port serving the files under `root` as they are (`GET`,
    /// `HEAD`, `Range`; a missing file is 404), over HTTPS with a fresh [`Pki`] when `tls`,
    /// else plain HTTP: the stand-in for dl.k8s.io, a release download server or a classic
    /// chart repository. Every request is in [`Nginx::access_log`].
    pub fn start_static(root: &Path, tls: bool) -> anyhow::Result<Nginx> {
        let root = root
            .canonicalize()
            .with_context(|| format!("nginx root `{}`", root.display()))?;
        Nginx::start(tls, |dir, host, pki| {
            static_config(dir, host, pki, &root, tls)
        })
    }

    fn start(tls: bool, config: impl Fn(&Path, &str, &Pki) -> String) -> anyhow::Result<Nginx> {
        let nginx = require_tool("nginx")?;
        let dir = tempfile::Builder::new()
            .prefix("airlock-nginx-")
            .tempdir()
            .context("creating nginx's temporary directory")?;
        let pki = Pki::generate(&dir.path().join("pki"))?;
        let mut last_error = None;
        for _ in 0..BIND_ATTEMPTS {
            let port = free_port();
            let host = format!("127.0.0.1:{port}");
            let config = config(dir.path(), &host, &pki);
            let config_file = dir.path().join("nginx.conf");
            std::fs::write(&config_file, config)
                .with_context(|| format!("writing `{}`", config_file.display()))?;
            let mut cmd = Command::new(&nginx);
            // `-e`: the error log before the config is read (the build default may be
            // /var/log/nginx/error.log).
            cmd.arg("-p")
                .arg(dir.path())
                .arg("-e")
                .arg(dir.path().join("error.log"))
                .arg("-c")
                .arg(&config_file);
            let mut server = Server::spawn("nginx", cmd, &dir.path().join("error.log"))?;
            match wait_ready(&host, tls.then_some(pki.ca_cert.as_path()), &mut server) {
                Ok(()) => {
                    return Ok(Nginx {
                        host,
                        ca_file: pki.ca_cert.clone(),
                        tls,
                        server: Some(server),
                        dir,
                    })
                }
                Err(err) => {
                    let tail = server.log_tail();
                    server.kill();
                    let err = err.context(tail);
                    if format!("{err:#}").contains("Address already in use") {
                        last_error = Some(err);
                        continue;
                    }
                    return Err(err);
                }
            }
        }
        Err(last_error.expect("at least one attempt"))
    }

    /// `https://127.0.0.1:PORT` (`http://` for a plain static server).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.host)
    }

    /// nginx's error log.
    pub fn error_log(&self) -> PathBuf {
        self.dir.path().join("error.log")
    }

    /// nginx's access log (one line per request, with status and body size).
    pub fn access_log(&self) -> PathBuf {
        self.dir.path().join("access.log")
    }

    /// nginx's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.server.as_ref().and_then(|s| s.pid())
    }

    /// Stops nginx: SIGTERM (a fast shutdown), then SIGKILL after 5 s. Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.stop();
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The configuration, after distribution's "NGINX authentication" recipe (minus the auth,
/// which stays with the registry).
fn config(dir: &Path, host: &str, pki: &Pki, upstream: &Registry, body_limit: &str) -> String {
    let (scheme, upstream_tls) = match &upstream.ca_file {
        Some(ca) => (
            "https",
            format!(
                "      proxy_ssl_trusted_certificate {};\n      proxy_ssl_verify on;\n      proxy_ssl_name 127.0.0.1;\n",
                quoted(ca)
            ),
        ),
        None => ("http", String::new()),
    };
    format!(
        r#"{common}

  upstream docker-registry {{
    server {upstream_host};
  }}

  # Docker expects this header on every answer, errors from nginx included.
  map $upstream_http_docker_distribution_api_version $docker_distribution_api_version {{
    '' 'registry/2.0';
  }}

  server {{
    listen {host} ssl;
    server_name localhost 127.0.0.1;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;

    client_max_body_size {body_limit};
    # Large layers: send them on as they come instead of writing them to disk first.
    proxy_request_buffering off;
    chunked_transfer_encoding on;

    location /v2/ {{
      add_header 'Docker-Distribution-Api-Version' $docker_distribution_api_version always;
      proxy_pass {scheme}://docker-registry;
{upstream_tls}      proxy_set_header Host $http_host;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_read_timeout 900;
    }}
  }}
}}
"#,
        common = common(dir),
        upstream_host = upstream.host,
        cert = quoted(&pki.server_cert),
        key = quoted(&pki.server_key),
    )
}

/// What both configurations start with: one foreground process, and its pid file, lock, logs
/// and temporary paths inside `dir`; the `http` block is left open.
fn common(dir: &Path) -> String {
    let d = |name: &str| quoted(&dir.join(name));
    format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {pid};
lock_file {lock};
error_log {error_log} info;

events {{
  worker_connections 256;
}}

http {{
  access_log {access_log};
  client_body_temp_path {body_temp};
  proxy_temp_path {proxy_temp};
  fastcgi_temp_path {fastcgi_temp};
  uwsgi_temp_path {uwsgi_temp};
  scgi_temp_path {scgi_temp};"#,
        pid = d("nginx.pid"),
        lock = d("nginx.lock"),
        error_log = d("error.log"),
        access_log = d("access.log"),
        body_temp = d("client_body_temp"),
        proxy_temp = d("proxy_temp"),
        fastcgi_temp = d("fastcgi_temp"),
        uwsgi_temp = d("uwsgi_temp"),
        scgi_temp = d("scgi_temp"),
    )
}

/// A static file server's configuration.
fn static_config(dir: &Path, host: &str, pki: &Pki, root: &Path, tls: bool) -> String {
    let listen = if tls {
        format!(
            "listen {host} ssl;\n    ssl_certificate {};\n    ssl_certificate_key {};\n    ssl_protocols TLSv1.2 TLSv1.3;",
            quoted(&pki.server_cert),
            quoted(&pki.server_key)
        )
    } else {
        format!("listen {host};")
    };
    format!(
        r#"{common}
  default_type application/octet-stream;

  server {{
    {listen}
    server_name localhost 127.0.0.1;
    root {root};
  }}
}}
"#,
        common = common(dir),
        root = quoted(root),
    )
}

/// A path as an nginx string: double-quoted, with `"` and `\` escaped.
fn quoted(path: &Path) -> String {
    let s = path.to_string_lossy();
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn wait_ready(host: &str, ca_file: Option<&Path>, server: &mut Server) -> anyhow::Result<()> {
    off_runtime(|| {
        let mut builder = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .no_proxy();
        let url = match ca_file {
            Some(ca_file) => {
                let pem = std::fs::read(ca_file)?;
                builder = builder
                    .tls_built_in_root_certs(false)
                    .add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
                format!("https://{host}/v2/")
            }
            None => format!("http://{host}/"),
        };
        let client = builder.build()?;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = server.exited() {
                bail!("`nginx` on {host} exited early ({status})");
            }
            // Any status will do: nginx answers, and the upstream (or a 502) is its business.
            let last = match client.get(&url).send() {
                Ok(_) => return Ok(()),
                Err(err) => format!("GET {url}: {err:#}"),
            };
            if Instant::now() > deadline {
                bail!("`nginx` on {host} not ready after {READY_TIMEOUT:?}: {last}");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_static_server_answers_files_and_ranges() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("release/v1")).unwrap();
        std::fs::write(root.path().join("release/v1/tool"), b"0123456789").unwrap();
        for tls in [false, true] {
            let nginx = Nginx::start_static(root.path(), tls).unwrap();
            let mut builder = reqwest::blocking::Client::builder().no_proxy();
            if tls {
                let pem = std::fs::read(&nginx.ca_file).unwrap();
                builder =
                    builder.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
            }
            let client = builder.build().unwrap();
            let url = format!("{}/release/v1/tool", nginx.url());
            assert_eq!(
                client.get(&url).send().unwrap().bytes().unwrap().as_ref(),
                b"0123456789"
            );
            let part = client.get(&url).header("Range", "bytes=4-").send().unwrap();
            assert_eq!(part.status().as_u16(), 206);
            assert_eq!(part.bytes().unwrap().as_ref(), b"456789");
            let missing = client.get(format!("{}/nope", nginx.url())).send().unwrap();
            assert_eq!(missing.status().as_u16(), 404);
            assert!(std::fs::read_to_string(nginx.access_log())
                .unwrap()
                .contains("/release/v1/tool"));
        }
    }
}
