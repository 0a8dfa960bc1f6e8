// SPDX-License-Identifier: MPL-2.0
//! `rbvremove`'s GStreamer callbacks. The work is done elsewhere: the
//! settings in `settings`, the local frame path in `local`, the remote path
//! in `remote`, the statistics in `stats`; this file only glues them to
//! the element.

use std::path::PathBuf;
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;
use gst_video::subclass::prelude::*;
use rbv_api::ApiKey;
use rbv_core::detect::Detector;
use rbv_core::model::{self, Segmenter};
use rbv_core::prompt::{self, Selection};

use super::local::{LocalGate, LocalPath};
#[cfg(feature = "remote")]
use super::remote::{self, Next, RemotePath, Shared, StartError};
use super::settings::{self, Effect, Running, Settings};
use super::stats::{Booked, STATS_MESSAGE, Stats};
use super::{Backend, BackgroundMode, Mode, Model, caps};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "rbvremove",
        gst::DebugColorFlags::empty(),
        Some("rbv background removal"),
    )
});

/// `backend=local`, from the start to the stop.
struct State {
    path: LocalPath,
    stats: Stats,
    /// Frames between the applied mask's frame and the current one; `None`
    /// before the first mask.
    mask_age: Option<u32>,
    /// The latency answered once frames took longer than a frame's
    /// duration (see [`RbvRemove::latency`]).
    added_latency: Option<gst::ClockTime>,
    /// Whether upstream is live (asked once frames flow).
    live: Option<bool>,
}

/// The element answers at least one frame's duration as its latency (the
/// stream's rate; this before caps): a frame is processed well within it
/// (the detector never delays a live stream), and a pipeline gets one
/// figure that holds, not one that follows every window.
const DEFAULT_FRAME_LATENCY: gst::ClockTime = gst::ClockTime::from_mseconds(40);
/// A window whose 95th percentile goes past the answered latency raises it
/// to that much more than the percentile, and the element posts a LATENCY
/// message so the pipeline takes it.
const LATENCY_HEADROOM: f64 = 1.25;

#[derive(Default)]
pub struct RbvRemove {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    /// `backend=remote`: the job and the decoded output.
    #[cfg(feature = "remote")]
    remote: Mutex<Option<RemotePath>>,
    /// Wakes the streaming thread's wait for a remote job; kept apart from
    /// `remote` so flushes and state changes never wait on the frame path.
    #[cfg(feature = "remote")]
    remote_wake: Mutex<Option<std::sync::Arc<Shared>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl RbvRemove {
    fn running(&self) -> Running {
        Running {
            local: lock(&self.state).is_some(),
            #[cfg(feature = "remote")]
            remote: lock(&self.remote).is_some(),
            #[cfg(not(feature = "remote"))]
            remote: false,
        }
    }

    /// The URI upstream reads, when it can tell.
    #[cfg(feature = "remote")]
    fn upstream_uri(&self) -> Option<String> {
        let mut q = gst::query::Uri::new();
        if self.obj().sink_pad().peer_query(&mut q) {
            q.uri().map(|u| u.to_string())
        } else {
            None
        }
    }

    #[cfg(feature = "remote")]
    fn remote_start(&self, settings: &Settings) -> Result<(), gst::ErrorMessage> {
        let state = RemotePath::new(settings, self.upstream_uri()).map_err(|e| match e {
            StartError::Settings(e) => gst::error_msg!(gst::LibraryError::Settings, ("{}", e)),
            StartError::Source(e) => gst::error_msg!(gst::StreamError::Failed, ("{}", e)),
        })?;
        if settings.model_path.is_some() {
            gst::warning!(
                CAT,
                imp = self,
                "backend=remote: model-path is ignored (the service runs its own models)"
            );
        }
        *lock(&self.remote_wake) = Some(state.shared.clone());
        *lock(&self.remote) = Some(state);
        Ok(())
    }

    fn load_segmenters(&self, settings: &Settings) -> Result<Vec<Segmenter>, gst::ErrorMessage> {
        let options = settings.runner_options();
        let path = settings.model_path.as_ref().map(PathBuf::from);
        // model=human loads two files: one fallback warning, not two.
        let mut warned = false;
        settings
            .specs()
            .into_iter()
            .map(|spec| {
                let seg = Segmenter::new(spec, path.as_deref(), &options)
                    .map_err(|err| gst::error_msg!(gst::LibraryError::Settings, ("{}", err)))?;
                gst::info!(
                    CAT,
                    imp = self,
                    "loaded {} from {} (input {:?}, {} execution provider (asked: {}), ONNX Runtime {})",
                    spec.name,
                    seg.path().display(),
                    seg.input_size(),
                    seg.provider().name(),
                    options.provider.name(),
                    seg.ort_library().display()
                );
                if options.provider != model::Provider::Auto
                    && seg.provider() != options.provider
                    && !std::mem::replace(&mut warned, true)
                {
                    let msg = format!(
                        "execution-provider={} is not available: running on {} (set \
                         execution-provider-strict=true to fail instead)",
                        options.provider.name(),
                        seg.provider().name()
                    );
                    gst::warning!(CAT, imp = self, "{msg}");
                    gst::element_imp_warning!(self, gst::LibraryError::Settings, ("{}", msg));
                }
                lock(&self.settings).active_provider = Some(seg.provider().name());
                if let Some(asked) = options.ort_library.as_deref()
                    && asked != seg.ort_library()
                {
                    gst::warning!(
                        CAT,
                        imp = self,
                        "ort-library {} ignored: ONNX Runtime is loaded once per process and \
                         {} is already in use",
                        asked.display(),
                        seg.ort_library().display()
                    );
                }
                Ok(seg)
            })
            .collect()
    }

    /// Books one processed frame; every `stats-interval` posts `rbv-stats`.
    fn count_frame(&self, took: Duration) {
        let (interval, provider) = {
            let s = lock(&self.settings);
            (s.stats_interval, s.active_provider.unwrap_or("cpu"))
        };
        let raised;
        let msg = {
            let mut guard = lock(&self.state);
            let Some(state) = guard.as_mut() else {
                return;
            };
            gst::log!(
                CAT,
                imp = self,
                "frame {} done in {:.2} ms",
                state.stats.frames() + 1,
                took.as_secs_f64() * 1000.0
            );
            match state.stats.frame(took, Instant::now(), interval) {
                Booked::Open => return,
                Booked::Latency(p95) => {
                    raised = self.raise_latency(state, p95);
                    None
                }
                Booked::Closed(w) => {
                    raised = self.raise_latency(state, w.process_p95_ms);
                    // What is not known is left out, not posted as 0.
                    let s = gst::Structure::builder(STATS_MESSAGE)
                        .field("frames", w.frames)
                        .field("window-frames", w.window_frames)
                        .field("fps", w.fps)
                        .field_if_some("inference-p50-ms", w.inference_p50_ms)
                        .field_if_some("inference-p95-ms", w.inference_p95_ms)
                        .field("process-p50-ms", w.process_p50_ms)
                        .field("process-p95-ms", w.process_p95_ms)
                        .field_if_some("mask-age", state.mask_age)
                        .field_if_some("detections", state.path.detections())
                        .field("model", state.path.model_name())
                        .field("execution-provider", provider)
                        .build();
                    Some(gst::message::Element::builder(s).src(&*self.obj()).build())
                }
            }
        };
        // Posted without the state lock: bus handlers may call back in.
        if let Some(msg) = msg {
            let _ = self.obj().post_message(msg);
        }
        if raised {
            let _ = self
                .obj()
                .post_message(gst::message::Latency::builder().src(&*self.obj()).build());
        }
    }

    /// The latency the element answers: one frame's duration (a frame is
    /// converted and composited well within it in both modes; the models
    /// never hold a live stream up), or more once a window's frame times
    /// needed more.
    fn latency(&self, state: &State) -> gst::ClockTime {
        let frame = self
            .obj()
            .sink_pad()
            .current_caps()
            .and_then(|c| gst_video::VideoInfo::from_caps(&c).ok())
            .map(|info| info.fps())
            .filter(|f| f.numer() > 0 && f.denom() > 0)
            .and_then(|f| gst::ClockTime::SECOND.mul_div_ceil(f.denom() as u64, f.numer() as u64))
            .unwrap_or(DEFAULT_FRAME_LATENCY);
        state
            .added_latency
            .map_or(frame, |raised| raised.max(frame))
    }

    /// A window's 95th-percentile frame time (ms): raises the answered
    /// latency when it went past it; answers whether it did.
    fn raise_latency(&self, state: &mut State, p95_ms: f64) -> bool {
        let answered = self.latency(state);
        let needed = gst::ClockTime::from_nseconds((p95_ms * 1e6) as u64);
        if needed <= answered {
            return false;
        }
        let raised = gst::ClockTime::from_nseconds((p95_ms * LATENCY_HEADROOM * 1e6) as u64);
        gst::info!(
            CAT,
            imp = self,
            "frames took up to {needed} (95th percentile), more than the {answered} answered: \
             latency now {raised}"
        );
        state.added_latency = Some(raised);
        true
    }

    fn check_selection(&self, prompt: Option<&str>, selection: &Selection) {
        let keeping = if selection.salient {
            let mut what = "whatever stands out".to_string();
            if !selection.classes.is_empty() {
                what = format!(
                    "{what} ({} asked too: the model decides)",
                    selection.names()
                );
            }
            what
        } else {
            selection.names()
        };
        if selection.unknown.is_empty() {
            gst::info!(CAT, imp = self, "text-prompt {prompt:?}: keeping {keeping}");
            return;
        }
        let list = selection
            .unknown
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let msg = format!(
            "text-prompt: {list} name no class the local detector knows (COCO's 80: person, \
             dog, car, chair, bottle, ...); keeping {keeping}. backend=remote takes open prompts"
        );
        gst::warning!(CAT, imp = self, "{msg}");
        gst::element_imp_warning!(self, gst::LibraryError::Settings, ("{}", msg));
    }

    /// An invalid value: named in a warning on the bus; the old value stays.
    fn reject(&self, property: &str, why: &str) {
        gst::warning!(CAT, imp = self, "{property} not changed: {why}");
        gst::element_imp_warning!(
            self,
            gst::LibraryError::Settings,
            ("{} not changed: {}", property, why)
        );
    }

    /// With the detector: loads it for the frame path (`mode=sync` runs it
    /// on the streaming thread, `mode=async` on its own).
    fn load_detector(&self, settings: &Settings) -> Result<LocalGate, gst::ErrorMessage> {
        let options = model::RunnerOptions {
            // One: the detector runs beside the frames on its own thread (in
            // both modes); the frame path keeps the other core.
            threads: 1,
            ..settings.runner_options()
        };
        let detector = Detector::new(None, &options)
            .map_err(|e| gst::error_msg!(gst::LibraryError::Settings, ("{}", e)))?;
        gst::info!(
            CAT,
            imp = self,
            "detector {} on {} ({} mode)",
            detector.path().display(),
            detector.provider().name(),
            if settings.mode == Mode::Sync {
                "sync"
            } else {
                "async"
            }
        );
        let keeps = match settings.model {
            Model::Human => prompt::Keeps::People,
            _ => prompt::Keeps::SalientSubject,
        };
        LocalGate::new(detector, settings.mode, keeps, settings.detect.size).map_err(|e| {
            gst::error_msg!(
                gst::CoreError::Thread,
                ("cannot start the detector thread: {}", e)
            )
        })
    }

    /// With the detector: names, in one warning, the prompt terms that name
    /// no class it knows; without: the terms the model cannot honour.
    fn check_prompt(&self, prompt: Option<&str>, model: Model, detect: Option<&Selection>) {
        if let Some(selection) = detect {
            self.check_selection(prompt, selection);
            return;
        }
        let Some(prompt) = prompt else { return };
        let keeps = match model {
            Model::Human => prompt::Keeps::People,
            _ => prompt::Keeps::SalientSubject,
        };
        let missed = prompt::unmatched(prompt, keeps);
        if missed.is_empty() {
            gst::info!(
                CAT,
                imp = self,
                "text-prompt '{prompt}' matches what the model keeps"
            );
            return;
        }
        let what = match keeps {
            prompt::Keeps::People => "people",
            prompt::Keeps::SalientSubject => "the salient subject",
        };
        let list = missed
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let msg = format!(
            "text-prompt: the local model keeps {what} only and cannot honour {list}; \
             use backend=remote (the hosted pro model takes open prompts)"
        );
        gst::warning!(CAT, imp = self, "{msg}");
        gst::element_imp_warning!(self, gst::LibraryError::Settings, ("{}", msg));
    }
}

#[glib::object_subclass]
impl ObjectSubclass for RbvRemove {
    const NAME: &'static str = "GstRbvRemove";
    type Type = super::RbvRemove;
    type ParentType = gst_video::VideoFilter;
}

impl ObjectImpl for RbvRemove {
    fn properties() -> &'static [glib::ParamSpec] {
        settings::property_specs()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let name = pspec.name();
        // Decoded here, on the application's thread, never per frame nor
        // under the settings' lock.
        let prepared = settings::prepare(name, value);
        let running = self.running();
        let (result, before, after, prompt) = {
            let mut s = lock(&self.settings);
            let before = s.output_shape();
            let result = s.set(name, value, prepared, running);
            (
                result,
                before,
                s.output_shape(),
                (
                    s.text_prompt.clone(),
                    s.model,
                    s.detect.enabled.then(|| s.detect.selection.clone()),
                ),
            )
        };
        match result {
            Ok(Effect::PromptChanged) => {
                if running.local {
                    self.check_prompt(prompt.0.as_deref(), prompt.1, prompt.2.as_deref());
                }
            }
            Ok(Effect::None) if name == "api-key" => {
                let shown = lock(&self.settings)
                    .api_key
                    .as_ref()
                    .map(ApiKey::fingerprint);
                gst::debug!(CAT, imp = self, "api-key set ({shown:?})")
            }
            Ok(Effect::None) if name == "background-image" => {
                if let Some(img) = &lock(&self.settings).image {
                    gst::info!(
                        CAT,
                        imp = self,
                        "background image {:?}: {}x{}",
                        value.get::<Option<String>>().ok().flatten(),
                        img.info.width(),
                        img.info.height()
                    );
                }
            }
            Ok(Effect::None) => gst::debug!(CAT, imp = self, "{name} set to {value:?}"),
            Err(why) => self.reject(name, &why),
        }
        if after != before {
            gst::debug!(CAT, imp = self, "output caps change: renegotiating");
            self.obj().reconfigure_src();
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        lock(&self.settings).get(pspec.name())
    }
}

impl GstObjectImpl for RbvRemove {}

impl ElementImpl for RbvRemove {
    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        #[cfg(feature = "remote")]
        if transition == gst::StateChange::PausedToReady
            && let Some(shared) = lock(&self.remote_wake).as_ref()
        {
            // Before the pads go down: the streaming thread may be waiting
            // on the job, and the job's connections close now.
            shared.stop();
        }
        self.parent_change_state(transition)
    }

    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Background removal",
                "Filter/Effect/Video",
                "Removes the background of video with a segmentation model (ONNX Runtime): \
                 the foreground keeps a soft alpha channel, over transparency, a colour, an \
                 image or its own blurred background, placed on a canvas. Posts rbv-stats \
                 element messages (see stats-interval); warnings name refused property values",
                "rbv developers",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            vec![
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &caps::src_template_caps(),
                )
                .expect("valid template"),
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &caps::sink_template_caps(),
                )
                .expect("valid template"),
            ]
        });
        PAD_TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for RbvRemove {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::NeverInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = lock(&self.settings).clone();
        if let Some(refused) = settings.refusals() {
            // Set before the element had a bus (a launch line): the warning
            // went nowhere, so the start says it.
            return Err(gst::error_msg!(
                gst::LibraryError::Settings,
                ("refused property values: {}", refused)
            ));
        }
        if settings.backend == Backend::Remote {
            #[cfg(feature = "remote")]
            {
                self.remote_start(&settings)?;
                gst::debug!(CAT, imp = self, "started (remote)");
                return Ok(());
            }
            #[cfg(not(feature = "remote"))]
            return Err(gst::error_msg!(
                gst::LibraryError::Settings,
                ("backend=remote: this build of the rbv plugin has no remote backend (feature `remote`)")
            ));
        }
        if settings.background == BackgroundMode::Image && settings.image.is_none() {
            return Err(gst::error_msg!(
                gst::LibraryError::Settings,
                (
                    "background=image needs a readable background-image: {}",
                    settings.image_error.as_deref().unwrap_or("none set")
                )
            ));
        }
        let segmenters = self.load_segmenters(&settings)?;
        let detect = settings.detect.enabled;
        self.check_prompt(
            settings.text_prompt.as_deref(),
            settings.model,
            detect.then_some(settings.detect.selection.as_ref()),
        );
        let mut path = LocalPath::new(segmenters, settings.mode).map_err(|e| {
            gst::error_msg!(
                gst::CoreError::Thread,
                ("cannot start the inference thread: {}", e)
            )
        })?;
        if detect {
            path.set_detector(self.load_detector(&settings)?);
        }
        *lock(&self.state) = Some(State {
            path,
            stats: Stats::default(),
            mask_age: None,
            added_latency: None,
            live: None,
        });
        gst::debug!(CAT, imp = self, "started");
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *lock(&self.state) = None;
        #[cfg(feature = "remote")]
        {
            if let Some(shared) = lock(&self.remote_wake).take() {
                shared.stop();
            }
            *lock(&self.remote) = None;
        }
        gst::debug!(CAT, imp = self, "stopped");
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        match event.view() {
            #[cfg(feature = "remote")]
            gst::EventView::FlushStart(_) => {
                if let Some(shared) = lock(&self.remote_wake).as_ref() {
                    shared.set_flushing(true);
                }
            }
            gst::EventView::FlushStop(_) => {
                if let Some(state) = lock(&self.state).as_mut() {
                    state.path.flush();
                }
                #[cfg(feature = "remote")]
                {
                    if let Some(shared) = lock(&self.remote_wake).as_ref() {
                        shared.set_flushing(false);
                    }
                    if let Some(r) = lock(&self.remote).as_mut() {
                        r.flush();
                    }
                }
            }
            #[cfg(feature = "remote")]
            gst::EventView::Eos(_) if lock(&self.remote).as_ref().is_some_and(|r| r.ended()) => {
                // The job's output already ended the stream.
                return true;
            }
            _ => {}
        }
        self.parent_sink_event(event)
    }

    #[cfg(feature = "remote")]
    fn submit_input_buffer(
        &self,
        is_discont: bool,
        inbuf: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut guard = lock(&self.remote);
        let Some(r) = guard.as_mut() else {
            drop(guard);
            return self.parent_submit_input_buffer(is_discont, inbuf);
        };
        r.input(inbuf.pts());
        if r.started() {
            return Ok(gst::FlowSuccess::Ok);
        }
        if r.needs_source() {
            drop(guard);
            let source = remote::source_from_uri(self.upstream_uri().as_deref()).map_err(|e| {
                gst::element_imp_error!(self, gst::StreamError::Failed, ("{}", e));
                gst::FlowError::Error
            })?;
            guard = lock(&self.remote);
            let r = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
            r.request.source = source;
        }
        let r = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        gst::info!(
            CAT,
            imp = self,
            "remote job for {:?} ({})",
            r.request.source,
            r.client.key()
        );
        r.start(self.obj().upcast_ref(), *CAT).map_err(|e| {
            let _ = self
                .obj()
                .post_message(remote::error_message(self.obj().upcast_ref(), &e));
            gst::FlowError::Error
        })?;
        Ok(gst::FlowSuccess::Ok)
    }

    #[cfg(feature = "remote")]
    fn generate_output(
        &self,
    ) -> Result<gst_base::subclass::base_transform::GenerateOutputSuccess, gst::FlowError> {
        use gst_base::subclass::base_transform::GenerateOutputSuccess;
        let shared = match lock(&self.remote).as_ref() {
            None => None,
            Some(r) if r.ended() => return Err(gst::FlowError::Eos),
            Some(r) if !r.started() => return Ok(GenerateOutputSuccess::NoOutput),
            Some(r) => Some(r.shared.clone()),
        };
        let Some(shared) = shared else {
            return self.parent_generate_output();
        };
        // Waits on the job without touching the network; flushes and state
        // changes end the wait at once.
        let path = match shared.wait() {
            None => return Err(gst::FlowError::Flushing),
            Some(Ok(path)) => path,
            Some(Err(e)) => {
                gst::warning!(CAT, imp = self, "remote job: {e}");
                let _ = self
                    .obj()
                    .post_message(remote::error_message(self.obj().upcast_ref(), &e));
                return Err(gst::FlowError::Error);
            }
        };
        let caps = self
            .obj()
            .src_pad()
            .current_caps()
            .ok_or(gst::FlowError::NotNegotiated)?;
        let mut guard = lock(&self.remote);
        let r = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        let next = r.next(&path, &caps).map_err(|e| {
            gst::element_imp_error!(
                self,
                gst::StreamError::Decode,
                (
                    "backend=remote: the job's output is not a playable video: {}",
                    e
                )
            );
            gst::FlowError::Error
        })?;
        match next {
            Next::Flushing => Err(gst::FlowError::Flushing),
            Next::End => {
                gst::info!(
                    CAT,
                    imp = self,
                    "remote output: {} frames pushed, end",
                    r.pushed()
                );
                drop(guard);
                self.obj().src_pad().push_event(gst::event::Eos::new());
                Err(gst::FlowError::Eos)
            }
            Next::Buffer { buffer, first } => {
                drop(guard);
                if first {
                    // The output's length is the job's, not the input's:
                    // the input segment's stop (a seek sets it to the
                    // input's duration) must not cut it.
                    if let Ok(mut segment) = self.obj().segment().downcast::<gst::ClockTime>()
                        && segment.stop().is_some()
                    {
                        segment.set_stop(gst::ClockTime::NONE);
                        self.obj()
                            .src_pad()
                            .push_event(gst::event::Segment::new(&segment));
                    }
                }
                Ok(GenerateOutputSuccess::Buffer(buffer))
            }
        }
    }

    fn query(&self, direction: gst::PadDirection, query: &mut gst::QueryRef) -> bool {
        let answered = BaseTransformImplExt::parent_query(self, direction, query);
        if answered
            && direction == gst::PadDirection::Src
            && let gst::QueryViewMut::Latency(q) = query.view_mut()
        {
            let ours = lock(&self.state)
                .as_ref()
                .map_or(gst::ClockTime::ZERO, |s| self.latency(s));
            let (live, min, max) = q.result();
            gst::debug!(CAT, imp = self, "adding {ours} of latency to {min}-{max:?}");
            q.set(live, min + ours, max.map(|m| m + ours));
        }
        answered
    }

    fn transform_caps(
        &self,
        direction: gst::PadDirection,
        caps: &gst::Caps,
        filter: Option<&gst::Caps>,
    ) -> Option<gst::Caps> {
        let shape = lock(&self.settings).output_shape();
        let other = caps::transform(caps, direction == gst::PadDirection::Sink, shape);
        gst::debug!(
            CAT,
            imp = self,
            "transformed {caps} to {other} ({direction:?})"
        );
        match filter {
            Some(filter) => Some(filter.intersect_with_mode(&other, gst::CapsIntersectMode::First)),
            None => Some(other),
        }
    }
}

impl VideoFilterImpl for RbvRemove {
    fn set_info(
        &self,
        _incaps: &gst::Caps,
        in_info: &gst_video::VideoInfo,
        _outcaps: &gst::Caps,
        out_info: &gst_video::VideoInfo,
    ) -> Result<(), gst::LoggableError> {
        #[cfg(feature = "remote")]
        if lock(&self.remote).is_some() {
            // The job's output is decoded straight to the output caps.
            return Ok(());
        }
        let mut guard = lock(&self.state);
        let state = guard
            .as_mut()
            .ok_or_else(|| gst::loggable_error!(CAT, "caps set before start"))?;
        let model = state
            .path
            .set_caps(in_info, out_info)
            .map_err(|e| gst::loggable_error!(CAT, "{}", e))?;
        gst::info!(
            CAT,
            imp = self,
            "{}x{} {:?} -> {:?} with {model}; model input {}",
            in_info.width(),
            in_info.height(),
            in_info.format(),
            out_info.format(),
            if state.path.staged() {
                "sampled to twice the size, then converted"
            } else {
                "converted"
            }
        );
        Ok(())
    }

    fn transform_frame(
        &self,
        inframe: &gst_video::VideoFrameRef<&gst::BufferRef>,
        outframe: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let started = Instant::now();
        let look = lock(&self.settings).look();
        if lock(&self.state).as_ref().is_some_and(|s| s.live.is_none()) {
            // Asked once, without the state lock (the query goes upstream).
            let mut q = gst::query::Latency::new();
            let live = self.obj().sink_pad().peer_query(&mut q) && q.result().0;
            gst::info!(CAT, imp = self, "upstream is live: {live}");
            if let Some(state) = lock(&self.state).as_mut() {
                state.live = Some(live);
                state.path.set_live(live);
            }
        }
        {
            let mut guard = lock(&self.state);
            let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
            if !state.path.negotiated() {
                return Err(gst::FlowError::NotNegotiated);
            }
            let processed = state.path.process(&look, inframe, outframe).map_err(|e| {
                gst::element_imp_error!(self, gst::StreamError::Failed, ("{}", e));
                gst::FlowError::Error
            })?;
            if let Some(took) = processed.inference {
                state.stats.inference(took);
            }
            state.mask_age = processed.mask_age;
        }
        self.count_frame(started.elapsed());
        Ok(gst::FlowSuccess::Ok)
    }
}
