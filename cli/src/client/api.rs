//! The HTTP side of the client: requests with the bearer token, retries with
//! backoff for network errors (and 429/502/503/504 on reads), and the sr.ht
//! error envelope turned into readable errors.

use backon::{ExponentialBuilder, Retryable};
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;
use std::fmt;
use std::time::Duration;

/// How long one API call may take (log and artifact bodies are not bound by it).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// How network errors are retried: `retries` more attempts after the first,
/// waiting `first_delay`, then doubling up to `max_delay`.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub retries: usize,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 4,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.first_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_max_times(self.retries)
            .with_jitter()
    }
}

/// One item of the envelope `{"errors":[{"field":…,"reason":…}]}`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Reason {
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub reason: String,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    errors: Vec<Reason>,
}

/// What can go wrong talking to the API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API answered with its error envelope.
    #[error("{}", api_text(*.status, .reasons))]
    Api { status: u16, reasons: Vec<Reason> },
    /// An error status without an envelope (a proxy, a load balancer, …).
    #[error("{what} answered HTTP {status}{}", excerpt(.body))]
    Http {
        what: String,
        status: u16,
        body: String,
    },
    /// No answer: connection refused, DNS, TLS, timeout, reset.
    #[error("cannot reach {what}: {detail}")]
    Network { what: String, detail: String },
    /// An answer that is not what the API sends.
    #[error("{what} sent an unexpected answer: {detail}")]
    Unexpected { what: String, detail: String },
    /// Retries did not help.
    #[error("{last} (gave up after {attempts} attempts)")]
    GaveUp { last: Box<Error>, attempts: usize },
}

fn api_text(status: u16, reasons: &[Reason]) -> String {
    let mut text = match reasons {
        [] => format!("the API answered HTTP {status} without a reason"),
        [one] => one.to_string(),
        many => {
            let lines: Vec<String> = many.iter().map(|r| format!("  {r}")).collect();
            format!("the API refused the request:\n{}", lines.join("\n"))
        }
    };
    if status == 401 {
        text.push_str(" (the token comes from --token, BUILDS_TOKEN or the config file)");
    }
    text
}

fn excerpt(body: &str) -> String {
    let flat: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.is_empty() {
        return String::new();
    }
    let cut: String = flat.chars().take(200).collect();
    if cut.len() < flat.len() {
        format!(": {cut}…")
    } else {
        format!(": {cut}")
    }
}

impl Error {
    /// Whether trying again may help. Writes are retried only when the
    /// request never reached the server (connection refused and the like).
    fn retryable(&self, idempotent: bool) -> bool {
        match self {
            Error::Network { detail, .. } => idempotent || detail_is_connect(detail),
            Error::Http { status, .. } | Error::Api { status, .. } => {
                idempotent && matches!(status, 429 | 502 | 503 | 504)
            }
            Error::Unexpected { .. } | Error::GaveUp { .. } => false,
        }
    }
}

/// Network details start with this when the connection was never made.
const CONNECT_PREFIX: &str = "could not connect";

fn detail_is_connect(detail: &str) -> bool {
    detail.starts_with(CONNECT_PREFIX)
}

/// The innermost cause of a reqwest error, which is the readable one
/// ("Connection refused (os error 111)", "dns error: …").
fn network_detail(err: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = err;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    let root = cause.to_string();
    if err.is_connect() {
        format!("{CONNECT_PREFIX}: {root}")
    } else if err.is_timeout() {
        "the request timed out".to_string()
    } else {
        root
    }
}

/// A client of one API: base URL and token.
#[derive(Clone)]
pub struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
    retry: RetryPolicy,
    quiet_retries: bool,
}

impl Api {
    pub fn new(base: &str, token: &str, retry: RetryPolicy) -> anyhow::Result<Api> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .user_agent(concat!("builds/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Api {
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            http,
            retry,
            quiet_retries: false,
        })
    }

    /// Retries without a notice on standard error (for `builds run`).
    pub fn quiet_retries(mut self) -> Self {
        self.quiet_retries = true;
        self
    }

    /// The API URL of a job.
    pub fn job_url(&self, id: u64) -> String {
        format!("{}/api/jobs/{id}", self.base)
    }

    /// Runs `attempt` with the retry policy; notes each retry on stderr.
    async fn with_retries<T, F, Fut>(&self, idempotent: bool, attempt: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        let quiet = self.quiet_retries;
        let result = attempt
            .retry(self.retry.backoff())
            .when(|err: &Error| err.retryable(idempotent))
            .notify(|err: &Error, wait: Duration| {
                if !quiet {
                    eprintln!("builds: {err}; retrying in {:.1}s", wait.as_secs_f64());
                }
            })
            .await;
        result.map_err(|err| {
            if self.retry.retries > 0 && err.retryable(idempotent) {
                Error::GaveUp {
                    last: Box::new(err),
                    attempts: self.retry.retries + 1,
                }
            } else {
                err
            }
        })
    }

    /// One API request; the answer when its status is a success.
    async fn request_once(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<reqwest::Response, Error> {
        let url = format!("{}{path}", self.base);
        let what = || format!("the API at {}", self.base);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(&self.token)
            .timeout(REQUEST_TIMEOUT);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|err| Error::Network {
            what: what(),
            detail: network_detail(&err),
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        match serde_json::from_str::<Envelope>(&text) {
            Ok(envelope) => Err(Error::Api {
                status: status.as_u16(),
                reasons: envelope.errors,
            }),
            Err(_) => Err(Error::Http {
                what: format!("{method} {url}"),
                status: status.as_u16(),
                body: text,
            }),
        }
    }

    async fn json_once(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, Error> {
        let response = self.request_once(method.clone(), path, body).await?;
        let text = response.text().await.map_err(|err| Error::Network {
            what: format!("the API at {}", self.base),
            detail: network_detail(&err),
        })?;
        serde_json::from_str(&text).map_err(|err| Error::Unexpected {
            what: format!("{method} {path}"),
            detail: format!("not JSON ({err}){}", excerpt(&text)),
        })
    }

    pub async fn get_json(&self, path: &str) -> Result<Value, Error> {
        self.with_retries(true, || self.json_once(Method::GET, path, None))
            .await
    }

    pub async fn get_text(&self, path: &str) -> Result<String, Error> {
        self.with_retries(true, || async {
            let response = self.request_once(Method::GET, path, None).await?;
            response.text().await.map_err(|err| Error::Network {
                what: format!("the API at {}", self.base),
                detail: network_detail(&err),
            })
        })
        .await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Result<Value, Error> {
        self.with_retries(false, || self.json_once(Method::POST, path, Some(body)))
            .await
    }

    /// A DELETE; not tried again after a network error (a second try of one
    /// that worked would answer 404).
    pub async fn delete(&self, path: &str) -> Result<(), Error> {
        self.with_retries(false, || async {
            self.request_once(Method::DELETE, path, None)
                .await
                .map(drop)
        })
        .await
    }

    /// Reads the bytes of a log link past `offset` (links are signed: no token
    /// is sent, they may point at another host).
    pub async fn read_log(&self, url: &str, offset: u64) -> Result<Vec<u8>, Error> {
        self.with_retries(true, || async {
            let what = || format!("the log at {}", strip_query(url));
            let response = self
                .http
                .get(url)
                .header("Range", format!("bytes={offset}-"))
                .timeout(REQUEST_TIMEOUT)
                .send()
                .await
                .map_err(|err| Error::Network {
                    what: what(),
                    detail: network_detail(&err),
                })?;
            let status = response.status().as_u16();
            let body = |response: reqwest::Response| async move {
                response.bytes().await.map_err(|err| Error::Network {
                    what: what(),
                    detail: network_detail(&err),
                })
            };
            match status {
                206 => Ok(body(response).await?.to_vec()),
                // A server that ignores Range sends it all.
                200 => Ok(body(response)
                    .await?
                    .get(offset as usize..)
                    .unwrap_or_default()
                    .to_vec()),
                416 => Ok(Vec::new()),
                _ => Err(Error::Http {
                    what: what(),
                    status,
                    body: response.text().await.unwrap_or_default(),
                }),
            }
        })
        .await
    }

    /// Downloads a (signed) artifact link into `file`; returns its size.
    pub async fn download(&self, url: &str, file: &std::path::Path) -> anyhow::Result<u64> {
        use anyhow::Context;
        use tokio::io::AsyncWriteExt;
        let result = self
            .with_retries(true, || async {
                let what = || format!("the artifact at {}", strip_query(url));
                let network = |err: reqwest::Error| Error::Network {
                    what: what(),
                    detail: network_detail(&err),
                };
                let mut response = self.http.get(url).send().await.map_err(network)?;
                let status = response.status().as_u16();
                if !response.status().is_success() {
                    return Err(Error::Http {
                        what: what(),
                        status,
                        body: response.text().await.unwrap_or_default(),
                    });
                }
                let mut out = tokio::fs::File::create(file)
                    .await
                    .map_err(|err| local(file, err))?;
                let mut size = 0u64;
                while let Some(chunk) = response.chunk().await.map_err(network)? {
                    out.write_all(&chunk)
                        .await
                        .map_err(|err| local(file, err))?;
                    size += chunk.len() as u64;
                }
                out.flush().await.map_err(|err| local(file, err))?;
                Ok(size)
            })
            .await;
        result.with_context(|| format!("downloading to {}", file.display()))
    }
}

/// A job as the API describes it (fields sr.ht may leave out are optional).
#[derive(Debug, Clone, Deserialize)]
pub struct Job {
    pub id: u64,
    pub status: String,
    pub created: Option<String>,
    pub updated: Option<String>,
    pub image: Option<String>,
    pub note: Option<String>,
    pub runner: Option<String>,
    /// Tags joined with `/`.
    pub tags: Option<String>,
    pub owner: Option<Owner>,
    pub setup_log: Option<String>,
    #[serde(default)]
    pub tasks: Vec<Task>,
    pub group_id: Option<u64>,
    /// `ssh://ID@host:port` while the guest is held for SSH.
    #[serde(default)]
    pub shell: Option<String>,
}

impl Job {
    pub fn tag_list(&self) -> Vec<&str> {
        self.tags
            .as_deref()
            .map(|t| t.split('/').filter(|t| !t.is_empty()).collect())
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Owner {
    pub canonical_name: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Task {
    pub name: String,
    pub status: String,
    pub log: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Artifact {
    pub id: u64,
    #[serde(default)]
    pub path: String,
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub size: u64,
}

/// Reads a typed resource out of an answer.
pub fn parse<T: serde::de::DeserializeOwned>(what: &str, value: &Value) -> Result<T, Error> {
    T::deserialize(value).map_err(|err| Error::Unexpected {
        what: what.to_string(),
        detail: err.to_string(),
    })
}

/// The `?start=` of the next page, if any (a string, or a number from some servers).
pub fn next_page(page: &Value) -> Option<String> {
    match &page["next"] {
        Value::String(next) if !next.is_empty() => Some(next.clone()),
        Value::Number(next) => Some(next.to_string()),
        _ => None,
    }
}

/// The items of a page.
pub fn page_results(what: &str, page: &Value) -> Result<Vec<Value>, Error> {
    page["results"]
        .as_array()
        .cloned()
        .ok_or_else(|| Error::Unexpected {
            what: what.to_string(),
            detail: "no `results` list".to_string(),
        })
}

/// A local file error, not worth retrying.
fn local(file: &std::path::Path, err: std::io::Error) -> Error {
    Error::Unexpected {
        what: file.display().to_string(),
        detail: err.to_string(),
    }
}

/// A signed link without its signature, for messages.
fn strip_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_errors_read_as_field_and_reason() {
        let one = Error::Api {
            status: 400,
            reasons: vec![Reason {
                field: Some("manifest".into()),
                reason: "image is required".into(),
            }],
        };
        assert_eq!(one.to_string(), "manifest: image is required");
        let many = Error::Api {
            status: 400,
            reasons: vec![
                Reason {
                    field: Some("manifest".into()),
                    reason: "a".into(),
                },
                Reason {
                    field: None,
                    reason: "b".into(),
                },
            ],
        };
        assert_eq!(
            many.to_string(),
            "the API refused the request:\n  manifest: a\n  b"
        );
        let denied = Error::Api {
            status: 401,
            reasons: vec![Reason {
                field: None,
                reason: "Invalid or expired OAuth token".into(),
            }],
        };
        assert!(denied
            .to_string()
            .starts_with("Invalid or expired OAuth token ("));
    }

    #[test]
    fn what_is_retried() {
        let refused = Error::Network {
            what: "x".into(),
            detail: format!("{CONNECT_PREFIX}: refused"),
        };
        let reset = Error::Network {
            what: "x".into(),
            detail: "connection reset".into(),
        };
        assert!(refused.retryable(false) && refused.retryable(true));
        assert!(reset.retryable(true) && !reset.retryable(false));
        let busy = Error::Http {
            what: "x".into(),
            status: 503,
            body: String::new(),
        };
        assert!(busy.retryable(true) && !busy.retryable(false));
        let bad = Error::Api {
            status: 400,
            reasons: vec![],
        };
        assert!(!bad.retryable(true));
    }

    #[test]
    fn bodies_are_cut_for_messages() {
        assert_eq!(excerpt(""), "");
        assert_eq!(excerpt("<h1>Bad\n gateway</h1>"), ": <h1>Bad gateway</h1>");
        assert!(excerpt(&"x".repeat(500)).ends_with('…'));
    }
}
