// SPDX-License-Identifier: MPL-2.0
//! A `/v1` client: each call with retries, timeouts and the request id, the
//! key only ever in the `X-Api-Key` header of API calls.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reqwest::{Method, RequestBuilder, Response, StatusCode, header, redirect};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::api::{self, Job, Upload};
use crate::backoff::{self, RetryPolicy};
use crate::key::ApiKey;

pub use crate::api::DEFAULT_API_URL;
/// A `Retry-After` longer than this is taken as this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// How a failure is best described to a person (and to the `rbv` command's
/// exit code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Settings or a local file are wrong: fix the input.
    Input,
    /// The service answered with an error or the job failed.
    Api,
    /// No usable answer: refused, reset, timed out, truncated.
    Network,
    Cancelled,
}

/// Why a call or a job did not succeed.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// The service answered with an error status.
    Api {
        status: u16,
        code: String,
        message: String,
        request_id: Option<String>,
        job_id: Option<String>,
    },
    /// The job ran and failed.
    JobFailed {
        job_id: String,
        message: String,
        request_id: Option<String>,
    },
    /// An answer that does not follow the contract.
    Protocol {
        what: String,
        request_id: Option<String>,
        job_id: Option<String>,
    },
    /// No usable answer.
    Network {
        what: String,
        job_id: Option<String>,
    },
    /// The job took longer than allowed.
    Timeout {
        after: Duration,
        job_id: Option<String>,
    },
    /// A local file could not be read or written.
    Io {
        path: PathBuf,
        what: String,
    },
    /// Settings refused before any request.
    Invalid(String),
    Cancelled,
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Api { .. } | Error::JobFailed { .. } | Error::Protocol { .. } => ErrorKind::Api,
            Error::Network { .. } | Error::Timeout { .. } => ErrorKind::Network,
            Error::Io { .. } | Error::Invalid(_) => ErrorKind::Input,
            Error::Cancelled => ErrorKind::Cancelled,
        }
    }

    pub fn job_id(&self) -> Option<&str> {
        match self {
            Error::Api { job_id, .. }
            | Error::Protocol { job_id, .. }
            | Error::Network { job_id, .. }
            | Error::Timeout { job_id, .. } => job_id.as_deref(),
            Error::JobFailed { job_id, .. } => Some(job_id),
            _ => None,
        }
    }

    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::Api { request_id, .. }
            | Error::JobFailed { request_id, .. }
            | Error::Protocol { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    /// A short machine-readable code: the service's, or one of ours.
    pub fn code(&self) -> &str {
        match self {
            Error::Api { code, .. } => code,
            Error::JobFailed { .. } => "job_failed",
            Error::Protocol { .. } => "bad_answer",
            Error::Network { .. } => "network",
            Error::Timeout { .. } => "timeout",
            Error::Io { .. } => "io",
            Error::Invalid(_) => "invalid_settings",
            Error::Cancelled => "cancelled",
        }
    }

    /// The human part of the message, without ids.
    pub fn message(&self) -> String {
        match self {
            Error::Api {
                status,
                code,
                message,
                ..
            } => format!("the service answered HTTP {status} {code}: {message}"),
            Error::JobFailed { message, .. } => format!("the job failed: {message}"),
            Error::Protocol { what, .. } => {
                format!("the service's answer is not understood: {what}")
            }
            Error::Network { what, .. } => what.clone(),
            Error::Timeout { after, .. } => {
                format!("the job did not finish within {} s", after.as_secs())
            }
            Error::Io { path, what } => format!("{}: {what}", path.display()),
            Error::Invalid(what) => what.clone(),
            Error::Cancelled => "cancelled".into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())?;
        match (self.job_id(), self.request_id()) {
            (Some(j), Some(r)) => write!(f, " (job {j}, request {r})"),
            (Some(j), None) => write!(f, " (job {j})"),
            (None, Some(r)) => write!(f, " (request {r})"),
            (None, None) => Ok(()),
        }
    }
}

impl std::error::Error for Error {}

/// One HTTP exchange, for the caller's log. Never holds the key.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub job_id: Option<&'a str>,
    /// HTTP status, or `None` when no answer came.
    pub status: Option<u16>,
    pub request_id: Option<&'a str>,
    /// 0 for the first try.
    pub retry: u32,
    pub elapsed: Duration,
    /// What went wrong, or what happens next (a retry and its wait).
    pub note: Option<String>,
}

pub type CallLog = Arc<dyn Fn(&Call) + Send + Sync>;

/// Connection settings.
#[derive(Clone)]
pub struct Config {
    pub api_url: String,
    pub key: ApiKey,
    pub retry: RetryPolicy,
    pub connect_timeout: Duration,
    /// Longest silence within one answer before the call counts as failed.
    pub read_timeout: Duration,
}

impl Config {
    pub fn new(api_url: &str, key: ApiKey) -> Config {
        Config {
            api_url: api_url.trim_end_matches('/').to_owned(),
            key,
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
        }
    }
}

/// A `/v1` client. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    api: reqwest::Client,
    files: reqwest::Client,
    config: Config,
    log: Option<CallLog>,
    deadline: Option<Instant>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("api_url", &self.config.api_url)
            .field("key", &self.config.key)
            .finish()
    }
}

impl Client {
    pub fn new(config: Config) -> Result<Client, Error> {
        if !(config.api_url.starts_with("http://") || config.api_url.starts_with("https://")) {
            return Err(Error::Invalid(format!(
                "api-url `{}` is not an http(s) URL",
                config.api_url
            )));
        }
        // API calls carry the key: a redirect to another host is not
        // followed (it would take the key along).
        let same_host = redirect::Policy::custom(|attempt| {
            let first = attempt
                .previous()
                .first()
                .map(|u| (u.host_str().map(str::to_owned), u.port_or_known_default()));
            let next = (
                attempt.url().host_str().map(str::to_owned),
                attempt.url().port_or_known_default(),
            );
            if attempt.previous().len() > 5 {
                attempt.error("too many redirects")
            } else if first.as_ref() == Some(&next) {
                attempt.follow()
            } else {
                attempt.stop()
            }
        });
        let build = |policy| {
            reqwest::Client::builder()
                .redirect(policy)
                .connect_timeout(config.connect_timeout)
                .read_timeout(config.read_timeout)
                .user_agent(concat!("rbv/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| Error::Invalid(format!("cannot set up HTTP: {e}")))
        };
        Ok(Client {
            api: build(same_host)?,
            files: build(redirect::Policy::limited(5))?,
            config,
            log: None,
            deadline: None,
        })
    }

    /// Sends each exchange to `log`.
    pub fn with_log(mut self, log: CallLog) -> Client {
        self.log = Some(log);
        self
    }

    /// No retry waits past `deadline`: the last failure is returned instead.
    pub fn with_deadline(mut self, deadline: Instant) -> Client {
        self.deadline = Some(deadline);
        self
    }

    pub fn key(&self) -> &ApiKey {
        &self.config.key
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.api_url)
    }

    fn emit(&self, call: Call) {
        if let Some(log) = &self.log {
            log(&call);
        }
    }

    /// Whether a wait of `d` still ends before the deadline.
    fn may_wait(&self, d: Duration) -> bool {
        self.deadline.is_none_or(|end| Instant::now() + d < end)
    }

    /// Sends a request, retrying what may be retried; returns the
    /// successful answer and its request id.
    async fn send(
        &self,
        method: Method,
        path: &str,
        job_id: Option<&str>,
        build: impl Fn(RequestBuilder) -> Result<RequestBuilder, Error>,
    ) -> Result<(Response, Option<String>), Error> {
        let mut retry = 0;
        loop {
            let started = Instant::now();
            let request = build(
                self.api
                    .request(method.clone(), self.url(path))
                    .header("X-Api-Key", self.config.key.expose()),
            )?;
            let mut call = Call {
                method: method.as_str(),
                path,
                job_id,
                status: None,
                request_id: None,
                retry,
                elapsed: Duration::ZERO,
                note: None,
            };
            match request.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let request_id = resp
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    call.status = Some(status);
                    call.request_id = request_id.as_deref();
                    call.elapsed = started.elapsed();
                    if resp.status().is_success() {
                        self.emit(call);
                        return Ok((resp, request_id));
                    }
                    if resp.status().is_redirection() {
                        call.note = Some("redirect to another host not followed".into());
                        self.emit(call);
                        return Err(Error::Protocol {
                            what: format!(
                                "HTTP {status} redirect to another host (not followed: it would carry the API key)"
                            ),
                            request_id,
                            job_id: job_id.map(str::to_owned),
                        });
                    }
                    let wait = resp
                        .headers()
                        .get(header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| backoff::retry_after(v, SystemTime::now()))
                        .map(|d| d.min(MAX_RETRY_AFTER))
                        .unwrap_or_else(|| self.config.retry.delay(retry, fastrand::f64()));
                    if backoff::retryable(status)
                        && retry < self.config.retry.max_retries
                        && self.may_wait(wait)
                    {
                        call.note = Some(format!("retry in {:.1} s", wait.as_secs_f64()));
                        self.emit(call);
                        tokio::time::sleep(wait).await;
                        retry += 1;
                        continue;
                    }
                    let body = read_small(resp).await;
                    let e = api::error_body(status, &body);
                    call.note = Some(format!("{}: {}", e.code, e.message));
                    self.emit(call);
                    return Err(Error::Api {
                        status,
                        code: e.code,
                        message: e.message,
                        request_id: e.request_id.or(request_id),
                        job_id: job_id.map(str::to_owned),
                    });
                }
                Err(err) => {
                    let what = describe(&err, &self.config.api_url);
                    call.elapsed = started.elapsed();
                    let wait = self.config.retry.delay(retry, fastrand::f64());
                    let again = (err.is_connect() || err.is_timeout() || err.is_request())
                        && retry < self.config.retry.max_retries
                        && self.may_wait(wait);
                    call.note = Some(if again {
                        format!("{what}; retry in {:.1} s", wait.as_secs_f64())
                    } else {
                        what.clone()
                    });
                    self.emit(call);
                    if !again {
                        return Err(Error::Network {
                            what,
                            job_id: job_id.map(str::to_owned),
                        });
                    }
                    tokio::time::sleep(wait).await;
                    retry += 1;
                }
            }
        }
    }

    async fn json(
        &self,
        method: Method,
        path: &str,
        job_id: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(Value, Option<String>), Error> {
        let (resp, request_id) = self
            .send(method, path, job_id, |r| {
                Ok(match body {
                    Some(b) => r
                        .header(header::CONTENT_TYPE, "application/json")
                        .body(b.to_string()),
                    None => r,
                })
            })
            .await?;
        let bytes = resp.bytes().await.map_err(|e| Error::Network {
            what: describe(&e, &self.config.api_url),
            job_id: job_id.map(str::to_owned),
        })?;
        let value = serde_json::from_slice(&bytes).map_err(|e| Error::Protocol {
            what: format!("{path}: not JSON ({e})"),
            request_id: request_id.clone(),
            job_id: job_id.map(str::to_owned),
        })?;
        Ok((value, request_id))
    }

    fn protocol(what: String, request_id: Option<String>, job_id: Option<&str>) -> Error {
        Error::Protocol {
            what,
            request_id,
            job_id: job_id.map(str::to_owned),
        }
    }

    /// `POST /v1/uploads`: the file, streamed from disk.
    pub async fn upload(&self, path: &Path) -> Result<(Upload, Option<String>), Error> {
        let io = |e: std::io::Error| Error::Io {
            path: path.to_owned(),
            what: e.to_string(),
        };
        let size = std::fs::metadata(path).map_err(io)?.len();
        if size > api::MAX_UPLOAD_BYTES {
            return Err(Error::Invalid(format!(
                "{} is {} MB; the service takes at most {} MB",
                path.display(),
                size / 1_000_000,
                api::MAX_UPLOAD_BYTES / 1_000_000
            )));
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "input".into());
        let mime = video_mime(path);
        let (resp, request_id) = self
            .send(Method::POST, "/v1/uploads", None, |r| {
                let file = std::fs::File::open(path).map_err(io)?;
                let body = reqwest::Body::from(tokio::fs::File::from_std(file));
                let part = reqwest::multipart::Part::stream_with_length(body, size)
                    .file_name(name.clone())
                    .mime_str(mime)
                    .map_err(|e| Error::Invalid(e.to_string()))?;
                Ok(r.multipart(reqwest::multipart::Form::new().part("file", part)))
            })
            .await?;
        let bytes = resp.bytes().await.map_err(|e| Error::Network {
            what: describe(&e, &self.config.api_url),
            job_id: None,
        })?;
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
            Self::protocol(
                format!("/v1/uploads: not JSON ({e})"),
                request_id.clone(),
                None,
            )
        })?;
        let upload =
            Upload::from_json(&v).map_err(|w| Self::protocol(w, request_id.clone(), None))?;
        Ok((upload, request_id))
    }

    /// `POST /v1/jobs` with `body`.
    pub async fn create(&self, body: &Value) -> Result<(Job, Option<String>), Error> {
        let (v, rid) = self
            .json(Method::POST, "/v1/jobs", None, Some(body))
            .await?;
        let job = Job::from_json(&v, None).map_err(|w| Self::protocol(w, rid.clone(), None))?;
        Ok((job, rid))
    }

    /// `POST /v1/jobs/{id}/start` with `body`.
    pub async fn start(&self, id: &str, body: &Value) -> Result<(Job, Option<String>), Error> {
        let path = format!("/v1/jobs/{}/start", encode(id));
        let (v, rid) = self.json(Method::POST, &path, Some(id), Some(body)).await?;
        let job =
            Job::from_json(&v, Some(id)).map_err(|w| Self::protocol(w, rid.clone(), Some(id)))?;
        Ok((job, rid))
    }

    /// `GET /v1/jobs/{id}`.
    pub async fn get(&self, id: &str) -> Result<(Job, Option<String>), Error> {
        let path = format!("/v1/jobs/{}", encode(id));
        let (v, rid) = self.json(Method::GET, &path, Some(id), None).await?;
        let job =
            Job::from_json(&v, Some(id)).map_err(|w| Self::protocol(w, rid.clone(), Some(id)))?;
        Ok((job, rid))
    }

    /// `GET /v1/jobs?limit&offset[&status]`, as the service answers it.
    pub async fn list(
        &self,
        limit: u32,
        offset: u32,
        status: Option<&str>,
    ) -> Result<Value, Error> {
        let mut path = format!("/v1/jobs?limit={limit}&offset={offset}");
        if let Some(s) = status {
            path += &format!("&status={}", encode(s));
        }
        Ok(self.json(Method::GET, &path, None, None).await?.0)
    }

    /// `GET /v1/usage/summary?days=N` (1-90).
    pub async fn usage_summary(&self, days: u32) -> Result<Value, Error> {
        let path = format!("/v1/usage/summary?days={}", days.clamp(1, 90));
        Ok(self.json(Method::GET, &path, None, None).await?.0)
    }

    /// `GET /v1/usage/events?limit=N` (1-100).
    pub async fn usage_events(&self, limit: u32) -> Result<Value, Error> {
        let path = format!("/v1/usage/events?limit={}", limit.clamp(1, 100));
        Ok(self.json(Method::GET, &path, None, None).await?.0)
    }

    /// Streams `url` (a job's output link; no key is sent with it) to
    /// `dest`, checking the length against Content-Length. Calls `progress`
    /// with bytes so far and the total when known.
    pub async fn download(
        &self,
        url: &str,
        dest: &Path,
        job_id: &str,
        progress: &mut (dyn FnMut(u64, Option<u64>) + Send),
    ) -> Result<u64, Download> {
        let started = Instant::now();
        let net = |what: String| {
            Download::Failed(Error::Network {
                what,
                job_id: Some(job_id.to_owned()),
            })
        };
        let shown = strip_query(url);
        let mut call = Call {
            method: "GET",
            path: &shown,
            job_id: Some(job_id),
            status: None,
            request_id: None,
            retry: 0,
            elapsed: Duration::ZERO,
            note: None,
        };
        let resp = match self.files.get(url).send().await {
            Ok(r) => r,
            Err(e) => {
                let what = format!("output download: {}", describe(&e, &shown));
                call.note = Some(what.clone());
                self.emit(call);
                return Err(match net(what) {
                    Download::Failed(e) => Download::Retry(e),
                    other => other,
                });
            }
        };
        let status = resp.status();
        call.status = Some(status.as_u16());
        call.elapsed = started.elapsed();
        if matches!(status, StatusCode::FORBIDDEN | StatusCode::GONE) {
            call.note = Some("output link expired".into());
            self.emit(call);
            return Err(Download::Expired);
        }
        if !status.is_success() {
            let retry = backoff::retryable(status.as_u16());
            call.note = Some(format!("output download answered HTTP {status}"));
            self.emit(call);
            let e = Error::Api {
                status: status.as_u16(),
                code: "download_failed".into(),
                message: format!("the output download answered HTTP {status}"),
                request_id: None,
                job_id: Some(job_id.to_owned()),
            };
            return Err(if retry {
                Download::Retry(e)
            } else {
                Download::Failed(e)
            });
        }
        self.emit(call);
        let total = resp.content_length();
        let part = dest.with_extension("part");
        let io = |e: std::io::Error| {
            Download::Failed(Error::Io {
                path: part.clone(),
                what: e.to_string(),
            })
        };
        let mut file = tokio::fs::File::create(&part).await.map_err(io)?;
        let mut got = 0u64;
        let mut resp = resp;
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    file.write_all(&chunk).await.map_err(io)?;
                    got += chunk.len() as u64;
                    progress(got, total);
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tokio::fs::remove_file(&part).await;
                    return Err(Download::Retry(Error::Network {
                        what: format!(
                            "output download broke off after {got} bytes{}: {}",
                            total.map(|t| format!(" of {t}")).unwrap_or_default(),
                            describe(&e, &shown)
                        ),
                        job_id: Some(job_id.to_owned()),
                    }));
                }
            }
        }
        file.flush().await.map_err(io)?;
        drop(file);
        if let Some(t) = total
            && got != t
        {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(Download::Retry(Error::Network {
                what: format!("output download truncated: {got} of {t} bytes"),
                job_id: Some(job_id.to_owned()),
            }));
        }
        if got == 0 {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(Download::Failed(Error::Protocol {
                what: "the output file is empty".into(),
                request_id: None,
                job_id: Some(job_id.to_owned()),
            }));
        }
        tokio::fs::rename(&part, dest).await.map_err(|e| {
            Download::Failed(Error::Io {
                path: dest.to_owned(),
                what: e.to_string(),
            })
        })?;
        Ok(got)
    }
}

/// How a download failed.
#[derive(Debug)]
pub enum Download {
    /// 403 or 410: the time-bound link has expired; ask for a fresh one.
    Expired,
    /// Broke off, truncated or a passing server fault: worth another try.
    Retry(Error),
    Failed(Error),
}

/// Reads at most 64 KiB of an error answer.
async fn read_small(mut resp: Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() > 64 * 1024 {
            body.truncate(64 * 1024);
            break;
        }
    }
    body
}

/// A reqwest error in words, without its URL (which may carry a signed
/// link's token); `host` says where instead.
pub fn describe(err: &reqwest::Error, host: &str) -> String {
    use std::error::Error as _;
    let mut cause = String::new();
    let mut source = err.source();
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    let what = if err.is_timeout() {
        "no answer in time".to_owned()
    } else if err.is_connect() {
        "cannot connect".to_owned()
    } else if err.is_body() || err.is_decode() {
        "the answer broke off".to_owned()
    } else {
        "request failed".to_owned()
    };
    if cause.is_empty() {
        format!("{what} ({host})")
    } else {
        format!("{what} ({host}): {cause}")
    }
}

/// A URL without its query string (signed links carry their token there).
fn strip_query(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or(url).to_owned()
}

/// Percent-encodes a path segment or query value.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out += &format!("%{b:02X}");
        }
    }
    out
}

/// The MIME type the service expects for a video file.
fn video_mime(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("mp4" | "m4v") => "video/mp4",
        Some("mov" | "qt") => "video/quicktime",
        Some("webm") => "video/webm",
        Some("avi") => "video/x-msvideo",
        Some("mkv") => "video/x-matroska",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_well() {
        let e = Error::Api {
            status: 402,
            code: "insufficient_credits".into(),
            message: "Top up".into(),
            request_id: Some("req_1".into()),
            job_id: Some("job_7".into()),
        };
        assert_eq!(
            e.to_string(),
            "the service answered HTTP 402 insufficient_credits: Top up (job job_7, request req_1)"
        );
        assert_eq!(e.kind(), ErrorKind::Api);
        let n = Error::Network {
            what: "cannot connect (http://127.0.0.1:9)".into(),
            job_id: None,
        };
        assert_eq!((n.kind(), n.code()), (ErrorKind::Network, "network"));
        assert_eq!(Error::Invalid("x".into()).kind(), ErrorKind::Input);
    }

    #[test]
    fn helpers() {
        assert_eq!(encode("job_1/../x y"), "job_1%2F..%2Fx%20y");
        assert_eq!(
            strip_query("https://h/o.webm?sig=abc#x"),
            "https://h/o.webm"
        );
        assert_eq!(video_mime(Path::new("/a/B.MOV")), "video/quicktime");
        assert_eq!(video_mime(Path::new("/a/b")), "application/octet-stream");
        assert!(Client::new(Config::new("ftp://x", ApiKey::new("k").unwrap())).is_err());
        let c = Client::new(Config::new(
            "http://127.0.0.1:1/",
            ApiKey::new("secret-key-0123456789").unwrap(),
        ))
        .unwrap();
        assert!(!format!("{c:?}").contains("secret"));
        assert_eq!(c.url("/v1/jobs"), "http://127.0.0.1:1/v1/jobs");
    }
}
