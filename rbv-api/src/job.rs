// SPDX-License-Identifier: MPL-2.0
//! A whole remote job: upload when needed, create a draft, start it with the
//! settings, poll with back-off, download the output.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::api::{Job, JobSettings};
use crate::backoff::Poll;
use crate::client::{Client, Download, Error};
use crate::names::JobStatus;

/// What the job works on.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Passed to the service as `video_url`.
    Url(String),
    /// Uploaded first.
    File(PathBuf),
}

impl Source {
    /// http(s) URLs as they are, `file://` URIs and plain paths as files.
    pub fn parse(s: &str) -> Source {
        if s.starts_with("http://") || s.starts_with("https://") {
            Source::Url(s.to_owned())
        } else if let Some(path) = s.strip_prefix("file://") {
            Source::File(PathBuf::from(percent_decode(path)))
        } else {
            Source::File(PathBuf::from(s))
        }
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        if b[i] == b'%'
            && let Some(Ok(v)) = hex.map(|h| u8::from_str_radix(h, 16))
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A job to run.
#[derive(Debug, Clone)]
pub struct Request {
    pub source: Source,
    pub settings: JobSettings,
    /// The first poll interval; later ones grow to five times it.
    pub poll_interval: Duration,
    /// The whole job, upload to download.
    pub timeout: Duration,
}

/// What happened, for progress reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Uploading {
        bytes: u64,
    },
    Uploaded {
        video_url: String,
        request_id: Option<String>,
    },
    Created {
        job_id: String,
        request_id: Option<String>,
    },
    Started {
        job_id: String,
        request_id: Option<String>,
    },
    /// A poll's answer.
    Polled {
        job_id: String,
        status: JobStatus,
        progress: f64,
        request_id: Option<String>,
    },
    Downloading {
        job_id: String,
        bytes: u64,
        total: Option<u64>,
    },
    Downloaded {
        job_id: String,
        bytes: u64,
    },
}

/// Tries at the output download (expired links, broken transfers).
const DOWNLOAD_TRIES: u32 = 4;

/// Runs the job to the end and writes its output to `dest`. Returns the
/// finished job. `on_event` is called from the task running the job.
pub async fn run(
    client: &Client,
    req: &Request,
    dest: &Path,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<Job, Error> {
    req.settings.check().map_err(Error::Invalid)?;
    let deadline = Instant::now() + req.timeout;
    let client = client.clone().with_deadline(deadline);
    let job_id = Arc::new(Mutex::new(None::<String>));
    let flow = flow(&client, req, dest, on_event, &job_id);
    match tokio::time::timeout_at(deadline.into(), flow).await {
        Ok(result) => result,
        Err(_) => Err(Error::Timeout {
            after: req.timeout,
            job_id: job_id.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }),
    }
}

async fn flow(
    client: &Client,
    req: &Request,
    dest: &Path,
    on_event: &mut (dyn FnMut(Event) + Send),
    job_slot: &Mutex<Option<String>>,
) -> Result<Job, Error> {
    let video_url = match &req.source {
        Source::Url(u) => u.clone(),
        Source::File(path) => {
            let bytes = std::fs::metadata(path)
                .map_err(|e| Error::Io {
                    path: path.clone(),
                    what: e.to_string(),
                })?
                .len();
            on_event(Event::Uploading { bytes });
            let (upload, request_id) = client.upload(path).await?;
            on_event(Event::Uploaded {
                video_url: upload.video_url.clone(),
                request_id,
            });
            upload.video_url
        }
    };
    let (job, request_id) = client.create(&req.settings.create_body(&video_url)).await?;
    let id = job.id.clone();
    *job_slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(id.clone());
    on_event(Event::Created {
        job_id: id.clone(),
        request_id,
    });
    let (_, request_id) = client.start(&id, &req.settings.start_body()).await?;
    on_event(Event::Started {
        job_id: id.clone(),
        request_id,
    });

    let mut poll = Poll::new(req.poll_interval);
    let (job, request_id) = loop {
        tokio::time::sleep(poll.next_delay(fastrand::f64())).await;
        let (job, request_id) = client.get(&id).await?;
        on_event(Event::Polled {
            job_id: id.clone(),
            status: job.status.clone(),
            progress: job.progress,
            request_id: request_id.clone(),
        });
        if job.status.is_terminal() {
            break (job, request_id);
        }
    };
    if job.status == JobStatus::Failed {
        return Err(Error::JobFailed {
            job_id: id,
            message: job
                .error
                .clone()
                .unwrap_or_else(|| "no reason given".into()),
            request_id,
        });
    }

    let mut job = job;
    let mut tries = 0;
    loop {
        tries += 1;
        let Some(url) = job.output_url.clone() else {
            return Err(Error::Protocol {
                what: "the job is completed but has no output_url".into(),
                request_id,
                job_id: Some(id),
            });
        };
        let mut progress = |bytes, total| {
            on_event(Event::Downloading {
                job_id: id.clone(),
                bytes,
                total,
            })
        };
        match client.download(&url, dest, &id, &mut progress).await {
            Ok(bytes) => {
                on_event(Event::Downloaded {
                    job_id: id.clone(),
                    bytes,
                });
                return Ok(job);
            }
            Err(Download::Failed(e)) => return Err(e),
            Err(Download::Retry(e)) if tries >= DOWNLOAD_TRIES => return Err(e),
            Err(Download::Expired) if tries >= DOWNLOAD_TRIES => {
                return Err(Error::Api {
                    status: 403,
                    code: "output_expired".into(),
                    message: "the output link stayed expired after asking for a fresh one".into(),
                    request_id: None,
                    job_id: Some(id),
                });
            }
            Err(Download::Retry(_)) => {
                tokio::time::sleep(client_retry_wait(tries)).await;
            }
            Err(Download::Expired) => {
                // A fresh link comes with the job.
                job = client.get(&id).await?.0;
            }
        }
    }
}

fn client_retry_wait(tries: u32) -> Duration {
    Duration::from_millis(250 * u64::from(tries))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources() {
        assert_eq!(
            Source::parse("https://cdn.example/in.mp4?x=1"),
            Source::Url("https://cdn.example/in.mp4?x=1".into())
        );
        assert_eq!(
            Source::parse("file:///tmp/my%20clip.mp4"),
            Source::File("/tmp/my clip.mp4".into())
        );
        assert_eq!(Source::parse("clip.webm"), Source::File("clip.webm".into()));
        assert_eq!(percent_decode("a%2"), "a%2");
    }
}
