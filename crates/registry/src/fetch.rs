//! Plain HTTP(S) downloads outside the distribution API: files on download sites and chart
//! repositories (`index.yaml`, `.tgz`, `.prov`, checksum files).
//!
//! The same client settings apply as for registries, by the URL's `host[:port]`: its CA file,
//! and its credentials (configured, or from the docker and podman auth files), sent as basic
//! auth only once the server asks (401). Retries with backoff as for registries; a download
//! resumes with `Range: bytes=N-`.

use bytes::Bytes;
use futures_util::StreamExt as _;
use reqwest::header::{HeaderValue, CONTENT_RANGE, RANGE};
use reqwest::StatusCode;
use url::Url;

use crate::client::{content_range, error_body, transport_error, BlobResponse, Client};
use crate::credentials::Credentials;
use crate::error::Error;

impl Client {
    /// Starts downloading `url` (`http://` or `https://`) from `offset` (0 for all of it);
    /// follows redirects. The stream is not verified: the caller hashes what it writes.
    ///
    /// [`BlobResponse::offset`] says where the body starts: `offset` when the server honoured
    /// the range, 0 when it sent the whole file (the caller then starts over). Retries cover
    /// getting the response; a failure mid-stream is an `Err` item, after which the caller
    /// asks again from where it got to. A 404 (or 410) is [`Error::UrlNotFound`].
    pub async fn fetch(&self, url: &str, offset: u64) -> Result<BlobResponse, Error> {
        let url = parse_url(url)?;
        self.retrying(&url, || self.fetch_once(&url, offset)).await
    }

    /// Downloads `url` into memory: at most `limit` bytes (more is [`Error::TooLarge`]).
    pub async fn fetch_bytes(&self, url: &str, limit: u64) -> Result<Bytes, Error> {
        let parsed = parse_url(url)?;
        let what = format!("`{}`", shown(&parsed));
        self.retrying(&parsed, || async {
            let resp = self.fetch_once(&parsed, 0).await?;
            if let Some(size) = resp.total_size.filter(|&s| s > limit) {
                return Err(Error::TooLarge {
                    what: what.clone(),
                    limit,
                    size: Some(size),
                });
            }
            let mut buf = Vec::new();
            let mut stream = resp.stream;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                if (buf.len() + chunk.len()) as u64 > limit {
                    return Err(Error::TooLarge {
                        what: what.clone(),
                        limit,
                        size: None,
                    });
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(Bytes::from(buf))
        })
        .await
    }

    async fn fetch_once(&self, url: &Url, offset: u64) -> Result<BlobResponse, Error> {
        let host = host_key(url);
        let mut resp = self.get_url(url, &host, offset, None).await?;
        let mut sent_credentials = false;
        if resp.status() == StatusCode::UNAUTHORIZED {
            let credentials = match embedded_credentials(url) {
                Some(c) => Some(c),
                None => self.credentials_for(&host).await?,
            };
            if let Some(c) = credentials {
                drop(resp);
                resp = self.get_url(url, &host, offset, Some(&c)).await?;
                sent_credentials = true;
            }
        }
        let status = resp.status();
        let shown_url = shown(url);
        if status == StatusCode::RANGE_NOT_SATISFIABLE && offset > 0 {
            // Asked from exactly the end: nothing is left to send.
            if let Some((None, Some(total))) = content_range(resp.headers()) {
                if total == offset {
                    return Ok(BlobResponse {
                        offset,
                        total_size: Some(total),
                        stream: Box::pin(futures_util::stream::empty()),
                    });
                }
            }
        }
        if !status.is_success() {
            let retry_after = crate::retry::retry_after(resp.headers());
            let asked = crate::retry::asked_wait(Some(resp.headers()));
            return Err(match status {
                StatusCode::NOT_FOUND | StatusCode::GONE => Error::UrlNotFound {
                    url: shown_url,
                    status: status.as_u16(),
                },
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::UrlRefused {
                    url: shown_url,
                    host,
                    status: status.as_u16(),
                    credentials: sent_credentials,
                },
                StatusCode::TOO_MANY_REQUESTS => Error::TooManyRequests {
                    url: shown_url,
                    retry_after,
                    asked,
                },
                _ => {
                    let (_, message) = error_body(resp).await;
                    Error::Server {
                        url: shown_url,
                        status: status.as_u16(),
                        code: None,
                        message,
                        retry_after,
                    }
                }
            });
        }
        let (start, total_size) = if status == StatusCode::PARTIAL_CONTENT {
            match content_range(resp.headers()) {
                Some((Some(start), total)) if start == offset => (start, total),
                _ => {
                    return Err(Error::Protocol {
                        url: shown_url,
                        message: format!(
                            "asked for bytes from {offset}, got `Content-Range: {}`",
                            resp.headers()
                                .get(CONTENT_RANGE)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                        ),
                    })
                }
            }
        } else {
            (0, resp.content_length())
        };
        let stream = resp.bytes_stream().map(move |chunk| {
            chunk.map_err(|source| Error::Body {
                url: shown_url.clone(),
                source: crate::client::without_query(source),
            })
        });
        Ok(BlobResponse {
            offset: start,
            total_size,
            stream: Box::pin(stream),
        })
    }

    async fn get_url(
        &self,
        url: &Url,
        host: &str,
        offset: u64,
        credentials: Option<&Credentials>,
    ) -> Result<reqwest::Response, Error> {
        let mut clean = url.clone();
        // Credentials in the URL go in the header, and only when asked for.
        let _ = clean.set_username("");
        let _ = clean.set_password(None);
        let mut request = self.http_for_host(host).get(clean.clone());
        if offset > 0 {
            request = request.header(
                RANGE,
                HeaderValue::from_str(&format!("bytes={offset}-")).expect("ASCII"),
            );
        }
        if let Some(c) = credentials {
            request = request.basic_auth(&c.username, Some(&c.password));
        }
        let resp = request
            .send()
            .await
            .map_err(|e| transport_error(e, &clean, host, self.ca_file_for_host(host)))?;
        tracing::debug!(url = %shown(url), status = resp.status().as_u16(), "response");
        Ok(resp)
    }
}

/// `url` parsed; only `http` and `https` are fetched.
fn parse_url(url: &str) -> Result<Url, Error> {
    match Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(u),
        _ => Err(Error::BadUrl {
            url: redact_text(url),
        }),
    }
}

/// `host[:port]` of a URL: the key of its host settings and credentials.
pub fn host_key(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        (None, _) => String::new(),
    }
}

/// The URL as errors and logs show it: without credentials.
fn shown(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

/// A URL that did not parse, with anything before an `@` in its authority dropped.
fn redact_text(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

fn embedded_credentials(url: &Url) -> Option<Credentials> {
    if url.username().is_empty() {
        return None;
    }
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some(Credentials::new(
        decode(url.username()),
        decode(url.password().unwrap_or("")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_credentials() {
        let u = Url::parse("https://user:secret@dl.example.org/a/b?x=1").unwrap();
        assert_eq!(shown(&u), "https://dl.example.org/a/b?x=1");
        assert_eq!(host_key(&u), "dl.example.org");
        assert_eq!(
            host_key(&Url::parse("http://127.0.0.1:8081/x").unwrap()),
            "127.0.0.1:8081"
        );
        assert_eq!(
            redact_text("ftp://user:secret@host/x"),
            "ftp://host/x".to_string()
        );
        let e = parse_url("ftp://user:secret@host/x").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
        assert!(parse_url("file:///etc/passwd").is_err());
        let c = embedded_credentials(&u).unwrap();
        assert_eq!(c.username, "user");
    }
}
