// SPDX-License-Identifier: MPL-2.0
//! `backend=remote`: the whole input file becomes a job of the `/v1`
//! service (rbv-api), and the job's output is decoded and pushed in place
//! of the input. The streaming thread only waits on the job's outcome; the
//! network is on the client's runtime. No element in here: the element
//! passes in what it knows (upstream's URI, its output caps) and pushes what
//! [`RemotePath::next`] gives.

mod decoder;
mod run;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rbv_api::job::{Request, Source};
use rbv_api::{self as api, ApiKey, Client, JobSettings};
use rbv_core::compositor::{self, parse as composition};

pub use decoder::Decoder;
pub use run::{ERROR_DETAILS, JOB_MESSAGE, Run, Shared, error_message};

use super::BackgroundMode;
use super::settings::{Settings, is_url};

/// A remote job from the start to the stop: its request, the run once the
/// first buffer came, and the decoder of its output.
pub struct RemotePath {
    pub client: Client,
    pub request: Request,
    run: Option<Run>,
    pub shared: Arc<Shared>,
    decoder: Option<Decoder>,
    /// The first input timestamp since the start or the last flush: output
    /// frames before it are skipped (a seek), the rest keep their times.
    first_pts: Option<gst::ClockTime>,
    /// Output frames pushed since the start or the last flush.
    pushed: u64,
    eos: bool,
}

/// What the job is started with, from the element's settings: refused here
/// when the service would refuse it.
pub fn job_settings(s: &Settings) -> Result<JobSettings, String> {
    let background = match s.background {
        BackgroundMode::Transparent => api::Background::Transparent,
        BackgroundMode::Color => api::Background::Color([s.color[0], s.color[1], s.color[2]]),
        BackgroundMode::Image => match s.image_path.as_deref() {
            Some(u) if is_url(u) => api::Background::Image(u.to_owned()),
            other => {
                return Err(format!(
                    "background-image must be an http(s) URL the service can fetch, not {}",
                    other
                        .map(|p| format!("'{p}'"))
                        .unwrap_or_else(|| "unset".into())
                ));
            }
        },
        BackgroundMode::Blur | BackgroundMode::Mask => {
            return Err(format!(
                "background={} is local only; the service offers transparent, color and image",
                if s.background == BackgroundMode::Blur {
                    "blur"
                } else {
                    "mask"
                }
            ));
        }
    };
    let composition = (s.placement != compositor::Placement::default())
        .then(|| serde_json::from_str(&composition::composition_to_json(&s.placement)).ok())
        .flatten();
    let settings = JobSettings {
        model: s.model.into(),
        text_prompt: s.text_prompt.clone(),
        background,
        composition,
        output_format: s.output_format,
        webhook_url: None,
    };
    settings.check()?;
    Ok(settings)
}

/// What upstream reads from, by its URI: a local file (uploaded) or an
/// http(s) URL (passed to the service).
pub fn source_from_uri(uri: Option<&str>) -> Result<Source, String> {
    match uri {
        Some(u) if is_url(u) => Ok(Source::Url(u.to_owned())),
        Some(u) if u.starts_with("file://") => gst::glib::filename_from_uri(u)
            .map(|(path, _)| Source::File(path))
            .map_err(|e| format!("backend=remote: cannot read the file URI {u}: {e}")),
        other => Err(format!(
            "backend=remote sends whole files to the service, and upstream is not one \
             ({}): use a file or http(s) source, set video-url, or use backend=local for \
             live sources",
            other
                .map(|u| format!("it reads {u}"))
                .unwrap_or_else(|| "no URI".into())
        )),
    }
}

/// Why a remote start is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartError {
    /// A setting the job cannot run with.
    Settings(String),
    /// Upstream is not a file or URL the service can take.
    Source(String),
}

/// A source still to be asked of upstream at the first buffer.
fn unknown_source() -> Source {
    Source::Url(String::new())
}

/// What the streaming thread pushes next.
pub enum Next {
    /// An output frame; `first` after the start or a flush.
    Buffer { buffer: gst::Buffer, first: bool },
    /// The output ended.
    End,
    /// A flush or stop interrupted.
    Flushing,
}

impl RemotePath {
    /// Everything that can be checked before the job, checked. `upstream`
    /// is the URI upstream reads, when it can tell yet.
    pub fn new(s: &Settings, upstream: Option<String>) -> Result<RemotePath, StartError> {
        let refuse = |e: String| StartError::Settings(format!("backend=remote: {e}"));
        let key =
            s.api_key.clone().or_else(ApiKey::from_env).ok_or_else(|| {
                refuse(format!("no API key: set api-key or {}", api::key::ENV_VAR))
            })?;
        let settings = job_settings(s).map_err(refuse)?;
        let client =
            Client::new(api::Config::new(&s.api_url, key)).map_err(|e| refuse(e.to_string()))?;
        let source = match &s.video_url {
            Some(u) => Source::Url(u.clone()),
            None => {
                // Upstream that already names what it reads (v4l2://,
                // rtsp://, ...) is refused now; one that cannot answer yet
                // (decodebin before its pads appear) is asked again at the
                // first buffer.
                if let Some(uri) = upstream {
                    source_from_uri(Some(&uri)).map_err(StartError::Source)?;
                }
                unknown_source()
            }
        };
        Ok(RemotePath {
            client,
            request: Request {
                source,
                settings,
                poll_interval: Duration::from_millis(u64::from(s.poll_interval)),
                timeout: Duration::from_secs(u64::from(s.timeout)),
            },
            run: None,
            shared: Arc::new(Shared::default()),
            decoder: None,
            first_pts: None,
            pushed: 0,
            eos: false,
        })
    }

    /// The output ended: the end of the input is not passed on.
    pub fn ended(&self) -> bool {
        self.eos
    }

    /// Whether the job runs (or ran).
    pub fn started(&self) -> bool {
        self.run.is_some()
    }

    /// Whether the source must still be asked of upstream.
    pub fn needs_source(&self) -> bool {
        self.request.source == unknown_source()
    }

    /// An input buffer came: only its time matters (the job has the file).
    pub fn input(&mut self, pts: Option<gst::ClockTime>) {
        if self.first_pts.is_none() {
            self.first_pts = Some(pts.unwrap_or(gst::ClockTime::ZERO));
        }
    }

    /// Starts the job; progress goes to `element`'s bus.
    pub fn start(
        &mut self,
        element: &gst::Element,
        cat: gst::DebugCategory,
    ) -> Result<(), api::Error> {
        let run = Run::start(
            element,
            cat,
            self.client.clone(),
            self.request.clone(),
            self.shared.clone(),
        )?;
        self.run = Some(run);
        Ok(())
    }

    /// A flush: the output plays again from the next input's time.
    pub fn flush(&mut self) {
        self.decoder = None;
        self.first_pts = None;
        self.pushed = 0;
        self.eos = false;
    }

    /// Frames pushed since the start or the last flush.
    pub fn pushed(&self) -> u64 {
        self.pushed
    }

    /// The next output frame from the job's finished output at `path`,
    /// decoded to `caps`; frames before the first input's time are skipped.
    /// `Err` when the output cannot be decoded.
    pub fn next(&mut self, path: &Path, caps: &gst::Caps) -> Result<Next, String> {
        if self.decoder.is_none() {
            self.decoder = Some(Decoder::open(path, caps)?);
        }
        let decoder = self.decoder.as_ref().expect("opened above");
        let shared = &self.shared;
        loop {
            let Some(sample) = decoder.next(&|| shared.interrupted())? else {
                if shared.interrupted() {
                    return Ok(Next::Flushing);
                }
                self.eos = true;
                return Ok(Next::End);
            };
            let Some(mut buffer) = sample.buffer_owned() else {
                continue;
            };
            if let (Some(pts), Some(first)) = (buffer.pts(), self.first_pts)
                && pts < first
            {
                continue;
            }
            let first = self.pushed == 0;
            if first {
                buffer.make_mut().set_flags(gst::BufferFlags::DISCONT);
            }
            self.pushed += 1;
            return Ok(Next::Buffer { buffer, first });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbvremove::settings::Settings;
    use rbv_api::{Background, ModelName, OutputFormat};

    #[test]
    fn settings_become_the_job_the_service_takes() {
        let mut s = Settings {
            model: crate::rbvremove::Model::Pro,
            background: BackgroundMode::Color,
            color: [9, 162, 70, 255],
            text_prompt: Some("person, guitar".into()),
            output_format: OutputFormat::Mov,
            ..Settings::default()
        };
        s.placement.canvas_width = 1920;
        let job = job_settings(&s).unwrap();
        assert_eq!(job.model, ModelName::Pro);
        assert_eq!(job.background, Background::Color([9, 162, 70]));
        assert_eq!(job.output_format, OutputFormat::Mov);
        assert_eq!(job.composition.unwrap()["canvas"]["width"], 1920);
        // Identity placement sends no composition.
        s.placement = compositor::Placement::default();
        assert_eq!(job_settings(&s).unwrap().composition, None);
        s.background = BackgroundMode::Blur;
        assert!(
            job_settings(&s)
                .unwrap_err()
                .contains("background=blur is local only")
        );
        s.background = BackgroundMode::Image;
        s.image_path = Some("/tmp/bg.png".into());
        assert!(job_settings(&s).unwrap_err().contains("not '/tmp/bg.png'"));
        s.image_path = Some("https://x/bg.png".into());
        assert_eq!(
            job_settings(&s).unwrap().background,
            Background::Image("https://x/bg.png".into())
        );
        s.background = BackgroundMode::Transparent;
        s.output_format = OutputFormat::Mp4;
        assert!(job_settings(&s).unwrap_err().contains("mp4 has no alpha"));
    }

    #[test]
    fn upstream_uris_name_the_source() {
        assert_eq!(
            source_from_uri(Some("https://x/in.mp4")),
            Ok(Source::Url("https://x/in.mp4".into()))
        );
        assert_eq!(
            source_from_uri(Some("file:///tmp/in%20a.webm")),
            Ok(Source::File("/tmp/in a.webm".into()))
        );
        let live = source_from_uri(Some("v4l2:///dev/video0")).unwrap_err();
        assert!(live.contains("it reads v4l2:///dev/video0"), "{live}");
        assert!(source_from_uri(None).unwrap_err().contains("no URI"));
    }
}
