//! Harbor projects, through Harbor's REST API v2.0 (`/api/v2.0`).
//!
//! Harbor only accepts pushes into existing projects (the first path element of a
//! repository). Before pushing, the loader asks `GET /api/v2.0/ping` (Harbor answers `Pong`;
//! a plain registry 404) and, on Harbor, checks every project with
//! `HEAD /api/v2.0/projects?project_name=NAME` (200 exists, 404 missing). Missing ones are
//! created with `POST /api/v2.0/projects {"project_name": NAME, "metadata": {"public":
//! "false"}}` (201 created, 409 already exists) when the operator asked for it, else the load
//! stops with an error naming the project and the flag. Requests use the credentials given for
//! the target, as HTTP basic auth (Harbor's API accepts it for robot and local accounts).
//!
//! The paths, bodies and status codes follow Harbor's published API description
//! (`api/v2.0/swagger.yaml` of goharbor/harbor); the tests run against a fake that follows it.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use airlock_registry::Credentials;
use reqwest::{Method, StatusCode};

/// A Harbor API problem.
#[derive(Debug, thiserror::Error)]
pub enum HarborError {
    /// A Harbor project does not exist and `--harbor-create-projects` was not given.
    #[error(
        "Harbor project `{project}` does not exist on `{host}`; nothing was pushed\n  hint: pass \
         --harbor-create-projects to create it, or create it in Harbor first"
    )]
    MissingProject {
        /// The project.
        project: String,
        /// The Harbor host.
        host: String,
    },
    /// A repository has no project element (Harbor needs `PROJECT/REPOSITORY`).
    #[error(
        "`{repository}` has no project part, which Harbor needs (`PROJECT/NAME`)\n  hint: give \
         the target a prefix: registry://HOST/PROJECT"
    )]
    NoProject {
        /// The repository.
        repository: String,
    },
    /// The request could not be made.
    #[error("Harbor API request `{method} {url}` failed")]
    Request {
        /// The method.
        method: Method,
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The CA file could not be used.
    #[error("cannot use the CA file `{}`", path.display())]
    CaFile {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Harbor answered something else than the API description says.
    #[error("Harbor API `{method} {url}` answered {status}{}{}", if body.is_empty() { "" } else { ": " }, body)]
    Status {
        /// The method.
        method: Method,
        /// The URL.
        url: String,
        /// The status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// Harbor refused the credentials, or the account may not create projects.
    #[error(
        "Harbor API `{method} {url}` answered {status}: the account may not {what}\n  hint: \
         check --username, or create the project `{project}` as a Harbor administrator"
    )]
    Refused {
        /// The method.
        method: Method,
        /// The URL.
        url: String,
        /// 401 or 403.
        status: u16,
        /// What was tried.
        what: &'static str,
        /// The project.
        project: String,
    },
}

/// How to reach Harbor's API.
#[derive(Debug, Clone)]
pub struct HarborApi {
    http: reqwest::Client,
    /// `https://HOST[:PORT]`.
    base: String,
    host: String,
    credentials: Option<Credentials>,
}

/// The projects (first path elements) of `repositories`.
pub fn projects<'a>(
    repositories: impl IntoIterator<Item = &'a str>,
) -> Result<BTreeSet<String>, HarborError> {
    repositories
        .into_iter()
        .map(|r| match r.split_once('/') {
            Some((p, _)) => Ok(p.to_string()),
            None => Err(HarborError::NoProject {
                repository: r.to_string(),
            }),
        })
        .collect()
}

impl HarborApi {
    /// An API client for `host`.
    pub fn new(
        host: &str,
        plain_http: bool,
        ca_file: Option<&Path>,
        credentials: Option<Credentials>,
    ) -> Result<HarborApi, HarborError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("airlock/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .timeout(Duration::from_secs(60));
        if let Some(path) = ca_file {
            let fail = |source: Box<dyn std::error::Error + Send + Sync>| HarborError::CaFile {
                path: path.to_owned(),
                source,
            };
            let pem = std::fs::read(path).map_err(|e| fail(e.into()))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| fail(e.into()))? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| HarborError::CaFile {
            path: ca_file.map(Path::to_owned).unwrap_or_default(),
            source: e.into(),
        })?;
        let scheme = if plain_http { "http" } else { "https" };
        Ok(HarborApi {
            http,
            base: format!("{scheme}://{host}/api/v2.0"),
            host: host.to_string(),
            credentials,
        })
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        json: Option<serde_json::Value>,
    ) -> Result<(StatusCode, String, String), HarborError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(c) = &self.credentials {
            req = req.basic_auth(&c.username, Some(&c.password));
        }
        if let Some(j) = json {
            req = req.json(&j);
        }
        let resp = req.send().await.map_err(|source| HarborError::Request {
            method: method.clone(),
            url: url.clone(),
            source,
        })?;
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        let body: String = body.trim().chars().take(300).collect();
        Ok((status, url, body))
    }

    /// Whether the target is Harbor: `GET /api/v2.0/ping` answers 200 (`Pong`).
    pub async fn is_harbor(&self) -> Result<bool, HarborError> {
        let (status, _, _) = self.send(Method::GET, "/ping", None).await?;
        Ok(status.is_success())
    }

    /// Whether `project` exists (`HEAD /api/v2.0/projects?project_name=NAME`).
    pub async fn project_exists(&self, project: &str) -> Result<bool, HarborError> {
        let path = format!("/projects?project_name={}", query_escape(project));
        let (status, url, body) = self.send(Method::HEAD, &path, None).await?;
        match status {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(HarborError::Refused {
                method: Method::HEAD,
                url,
                status: status.as_u16(),
                what: "look up projects",
                project: project.to_string(),
            }),
            s => Err(HarborError::Status {
                method: Method::HEAD,
                url,
                status: s.as_u16(),
                body,
            }),
        }
    }

    /// Creates `project`, private; true when it was created, false when it existed (409).
    pub async fn create_project(&self, project: &str) -> Result<bool, HarborError> {
        let body = serde_json::json!({"project_name": project, "metadata": {"public": "false"}});
        let (status, url, text) = self.send(Method::POST, "/projects", Some(body)).await?;
        match status {
            StatusCode::CREATED => Ok(true),
            StatusCode::CONFLICT => Ok(false),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(HarborError::Refused {
                method: Method::POST,
                url,
                status: status.as_u16(),
                what: "create projects",
                project: project.to_string(),
            }),
            s => Err(HarborError::Status {
                method: Method::POST,
                url,
                status: s.as_u16(),
                body: text,
            }),
        }
    }

    /// Checks every project; missing ones are created when `create`, else the first is an
    /// error. Returns the projects created.
    pub async fn ensure_projects(
        &self,
        projects: &BTreeSet<String>,
        create: bool,
    ) -> Result<Vec<String>, HarborError> {
        let mut created = Vec::new();
        for p in projects {
            if self.project_exists(p).await? {
                continue;
            }
            if !create {
                return Err(HarborError::MissingProject {
                    project: p.clone(),
                    host: self.host.clone(),
                });
            }
            if self.create_project(p).await? {
                created.push(p.clone());
            }
        }
        Ok(created)
    }
}

/// Percent-encodes a project name for a query (names are `[a-z0-9._-]`; this is belt and
/// braces).
fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'_' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod fake {
    //! A small in-process stand-in for Harbor's project API, following
    //! `api/v2.0/swagger.yaml`: `GET /api/v2.0/ping`, `HEAD /api/v2.0/projects?project_name=`,
    //! `POST /api/v2.0/projects`, basic auth on the project calls.

    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    /// A running fake; it stops with the test's runtime.
    pub(crate) struct FakeHarbor {
        pub(crate) host: String,
        pub(crate) projects: Arc<Mutex<BTreeSet<String>>>,
        pub(crate) requests: Arc<Mutex<Vec<String>>>,
    }

    /// `Basic base64("admin:Harbor12345")`.
    const AUTH: &str = "Basic YWRtaW46SGFyYm9yMTIzNDU=";

    pub(crate) async fn start(existing: &[&str]) -> FakeHarbor {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let projects = Arc::new(Mutex::new(
            existing
                .iter()
                .map(|s| s.to_string())
                .collect::<BTreeSet<_>>(),
        ));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (p, r) = (projects.clone(), requests.clone());
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let (p, r) = (p.clone(), r.clone());
                tokio::spawn(async move {
                    let (rd, mut wr) = sock.into_split();
                    let mut rd = BufReader::new(rd);
                    loop {
                        let mut line = String::new();
                        if rd.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let mut parts = line.split_whitespace();
                        let (method, target) = (
                            parts.next().unwrap_or("").to_string(),
                            parts.next().unwrap_or("").to_string(),
                        );
                        let (mut len, mut auth) = (0usize, String::new());
                        loop {
                            let mut h = String::new();
                            rd.read_line(&mut h).await.unwrap();
                            let h = h.trim_end();
                            if h.is_empty() {
                                break;
                            }
                            let (k, v) = h.split_once(':').unwrap_or((h, ""));
                            match k.to_ascii_lowercase().as_str() {
                                "content-length" => len = v.trim().parse().unwrap_or(0),
                                "authorization" => auth = v.trim().to_string(),
                                _ => {}
                            }
                        }
                        let mut body = vec![0; len];
                        rd.read_exact(&mut body).await.unwrap();
                        r.lock().unwrap().push(format!("{method} {target}"));
                        let authed = auth == AUTH;
                        let (status, text) = match (method.as_str(), target.as_str()) {
                            ("GET", "/api/v2.0/ping") => ("200 OK", "Pong".to_string()),
                            (_, t) if t.starts_with("/api/v2.0/projects") && !authed => (
                                "401 Unauthorized",
                                r#"{"errors":[{"code":"UNAUTHORIZED","message":"unauthorized"}]}"#
                                    .to_string(),
                            ),
                            ("HEAD", t) if t.starts_with("/api/v2.0/projects?project_name=") => {
                                let name = &t["/api/v2.0/projects?project_name=".len()..];
                                if p.lock().unwrap().contains(name) {
                                    ("200 OK", String::new())
                                } else {
                                    ("404 Not Found", String::new())
                                }
                            }
                            ("POST", "/api/v2.0/projects") => {
                                let v: serde_json::Value =
                                    serde_json::from_slice(&body).unwrap_or_default();
                                let name = v["project_name"].as_str().unwrap_or("").to_string();
                                if name.is_empty() || v["metadata"]["public"] != "false" {
                                    ("400 Bad Request", "bad request".to_string())
                                } else if p.lock().unwrap().insert(name) {
                                    ("201 Created", String::new())
                                } else {
                                    (
                                        "409 Conflict",
                                        r#"{"errors":[{"code":"CONFLICT","message":"exists"}]}"#
                                            .to_string(),
                                    )
                                }
                            }
                            _ => ("404 Not Found", "404 page not found".to_string()),
                        };
                        let resp = format!(
                            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{}",
                            text.len(),
                            if method == "HEAD" { "" } else { &text }
                        );
                        if wr.write_all(resp.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        FakeHarbor {
            host,
            projects,
            requests,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin() -> Option<Credentials> {
        Some(Credentials::new("admin", "Harbor12345"))
    }

    #[tokio::test]
    async fn creates_missing_projects_only() {
        let h = fake::start(&["library"]).await;
        let api = HarborApi::new(&h.host, true, None, admin()).unwrap();
        assert!(api.is_harbor().await.unwrap());
        let want: BTreeSet<String> = ["library", "mirror"].map(String::from).into();
        let created = api.ensure_projects(&want, true).await.unwrap();
        assert_eq!(created, ["mirror"]);
        assert!(h.projects.lock().unwrap().contains("mirror"));
        let reqs = h.requests.lock().unwrap().clone();
        assert_eq!(
            reqs,
            [
                "GET /api/v2.0/ping",
                "HEAD /api/v2.0/projects?project_name=library",
                "HEAD /api/v2.0/projects?project_name=mirror",
                "POST /api/v2.0/projects",
            ]
        );
        // A second run finds them.
        assert!(api.ensure_projects(&want, true).await.unwrap().is_empty());
        // 409 from a concurrent creation counts as existing.
        assert!(!api.create_project("mirror").await.unwrap());
    }

    #[tokio::test]
    async fn missing_project_without_the_flag_names_it_and_the_flag() {
        let h = fake::start(&[]).await;
        let api = HarborApi::new(&h.host, true, None, admin()).unwrap();
        let want: BTreeSet<String> = ["k8s".to_string()].into();
        let e = api.ensure_projects(&want, false).await.unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("`k8s`") && text.contains("--harbor-create-projects"),
            "{text}"
        );
        assert!(h.projects.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn bad_credentials_are_refused_with_a_hint() {
        let h = fake::start(&[]).await;
        let api = HarborApi::new(
            &h.host,
            true,
            None,
            Some(Credentials::new("admin", "wrong")),
        )
        .unwrap();
        let want: BTreeSet<String> = ["k8s".to_string()].into();
        let e = api.ensure_projects(&want, true).await.unwrap_err();
        assert!(
            matches!(e, HarborError::Refused { status: 401, .. }),
            "{e:?}"
        );
    }

    #[test]
    fn projects_are_first_path_elements() {
        let p = projects(["mirror/a/b", "mirror/c", "k8s/pause"]).unwrap();
        assert_eq!(p.into_iter().collect::<Vec<_>>(), ["k8s", "mirror"]);
        assert!(projects(["pause"]).is_err());
    }
}
