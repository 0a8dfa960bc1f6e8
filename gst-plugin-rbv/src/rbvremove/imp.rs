// SPDX-License-Identifier: MPL-2.0
//! `rbvremove`: GStreamer glue around the model runner and the matte core.

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;
use gst_video::subclass::prelude::*;

use rbv_api::job::{Request, Source};
use rbv_api::{self as remote, ApiKey, Client};
use rbv_core::compositor::{
    self, Anchor, Background, Blur, Compositor, Cover, Pixels, PixelsMut, parse as composition,
};
use rbv_core::image::{self, Image};
use rbv_core::matte::{self, AlphaMode, Matte, Refiner, Smoother};
use rbv_core::model::{self, ModelSpec, RunnerOptions, Segmenter};
use rbv_core::prompt;

use super::remote::{Decoder, Run, Shared};
use super::worker::{self, Worker};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "rbvremove",
        gst::DebugColorFlags::empty(),
        Some("rbv background removal"),
    )
});

/// Where the work is done.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstRbvBackend")]
pub enum Backend {
    #[enum_value(
        name = "Local: every frame through a model here (ONNX Runtime)",
        nick = "local"
    )]
    Local = 0,
    #[enum_value(
        name = "Remote: the whole file as a job of the /v1 service; its output is played",
        nick = "remote"
    )]
    Remote = 1,
}

/// Where inference runs (ONNX Runtime execution providers).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstRbvExecutionProvider")]
pub enum ExecutionProvider {
    #[enum_value(
        name = "Auto: CUDA where the loaded ONNX Runtime has it and a GPU answers, else CPU",
        nick = "auto"
    )]
    Auto = 0,
    #[enum_value(name = "CPU", nick = "cpu")]
    Cpu = 1,
    #[enum_value(name = "CUDA (NVIDIA GPU)", nick = "cuda")]
    Cuda = 2,
    #[enum_value(
        name = "TensorRT, with CUDA for the rest (NVIDIA GPU)",
        nick = "tensorrt"
    )]
    TensorRt = 3,
}

impl From<ExecutionProvider> for model::Provider {
    fn from(p: ExecutionProvider) -> Self {
        match p {
            ExecutionProvider::Auto => model::Provider::Auto,
            ExecutionProvider::Cpu => model::Provider::Cpu,
            ExecutionProvider::Cuda => model::Provider::Cuda,
            ExecutionProvider::TensorRt => model::Provider::TensorRt,
        }
    }
}

/// When inference runs.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstRbvMode")]
pub enum Mode {
    #[enum_value(
        name = "Sync: every frame inferred before it leaves (files, fast models)",
        nick = "sync"
    )]
    Sync = 0,
    #[enum_value(
        name = "Async: inference on its own thread; frames leave at once with the newest mask (live, heavy models)",
        nick = "async"
    )]
    Async = 1,
}

/// Model names as the hosted service knows them.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstRbvModel")]
pub enum Model {
    #[enum_value(
        name = "Human: MediaPipe selfie segmentation, people only, fast",
        nick = "human"
    )]
    Human = 0,
    #[enum_value(name = "Light: u2netp, salient objects, slow on CPU", nick = "light")]
    Light = 1,
    #[enum_value(
        name = "Original: u2net, salient objects, the service's default, slow on CPU",
        nick = "original"
    )]
    Original = 2,
    #[enum_value(
        name = "Pro: ISNet, best edges, about 2 s per frame on CPU",
        nick = "pro"
    )]
    Pro = 3,
}

/// Which MediaPipe selfie model `model=human` runs.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstRbvHumanVariant")]
pub enum HumanVariant {
    #[enum_value(
        name = "Auto: landscape model for wide frames (aspect >= 16:10), square model otherwise",
        nick = "auto"
    )]
    Auto = 0,
    #[enum_value(
        name = "Square model (256x256): robust for small and distant people",
        nick = "square"
    )]
    Square = 1,
    #[enum_value(
        name = "Landscape model (256x144): for 16:9 close-ups",
        nick = "landscape"
    )]
    Landscape = 2,
}

/// What the foreground is laid over (the service's `background`).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstRbvBackground")]
pub enum BackgroundMode {
    #[enum_value(name = "Transparent: alpha out", nick = "transparent")]
    Transparent = 0,
    #[enum_value(name = "Colour: background-color", nick = "color")]
    Color = 1,
    #[enum_value(
        name = "Image: background-image, scaled to cover the canvas",
        nick = "image"
    )]
    Image = 2,
    #[enum_value(name = "Blur: the frame's own background, blurred", nick = "blur")]
    Blur = 3,
    #[enum_value(name = "Mask: the alpha alone, as GRAY8", nick = "mask")]
    Mask = 4,
}

/// The service's nine anchors.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstRbvAnchor")]
pub enum AnchorPosition {
    #[enum_value(name = "Top left", nick = "top-left")]
    TopLeft = 0,
    #[enum_value(name = "Top centre", nick = "top-center")]
    TopCenter = 1,
    #[enum_value(name = "Top right", nick = "top-right")]
    TopRight = 2,
    #[enum_value(name = "Centre left", nick = "center-left")]
    CenterLeft = 3,
    #[enum_value(name = "Centre", nick = "center")]
    Center = 4,
    #[enum_value(name = "Centre right", nick = "center-right")]
    CenterRight = 5,
    #[enum_value(name = "Bottom left", nick = "bottom-left")]
    BottomLeft = 6,
    #[enum_value(name = "Bottom centre", nick = "bottom-center")]
    BottomCenter = 7,
    #[enum_value(name = "Bottom right", nick = "bottom-right")]
    BottomRight = 8,
}

impl From<AnchorPosition> for Anchor {
    fn from(a: AnchorPosition) -> Anchor {
        Anchor::ALL[a as usize]
    }
}

impl From<Anchor> for AnchorPosition {
    fn from(a: Anchor) -> AnchorPosition {
        use AnchorPosition::*;
        const POSITIONS: [AnchorPosition; 9] = [
            TopLeft,
            TopCenter,
            TopRight,
            CenterLeft,
            Center,
            CenterRight,
            BottomLeft,
            BottomCenter,
            BottomRight,
        ];
        let i = Anchor::ALL.iter().position(|&x| x == a).unwrap_or(4);
        POSITIONS[i]
    }
}

const DEFAULT_MODEL: Model = Model::Human;
const DEFAULT_BACKEND: Backend = Backend::Local;
const DEFAULT_MODE: Mode = Mode::Sync;
const DEFAULT_OUTPUT_FORMAT: &str = "webm";
/// First poll of a remote job, in ms; later polls back off to five times it.
const DEFAULT_POLL_INTERVAL: u32 = 2000;
/// Seconds a whole remote job may take (the official SDKs' default).
const DEFAULT_TIMEOUT: u32 = 600;
const DEFAULT_STATS_INTERVAL: u32 = 1000;
/// Off: 0.95 halves flicker on the quality benchmark's moving clip (human),
/// but fades slow, distant people (vtest.avi's opaque share 0.0006 against
/// 0.007 off), so it is for users who choose it.
const DEFAULT_SMOOTHING: f64 = 0.0;
/// A model-input pixel whose channels change by more than this between
/// frames counts as moving: smoothing takes the new mask value there.
const DEFAULT_SMOOTHING_THRESHOLD: u32 = 12;
const DEFAULT_REFINE: bool = false;
const DEFAULT_REFINE_RADIUS: u32 = 2;
const DEFAULT_REFINE_EPS: f64 = 1e-3;
/// Name of the periodic statistics element message.
pub const STATS_MESSAGE: &str = "rbv-stats";
const DEFAULT_BACKGROUND: BackgroundMode = BackgroundMode::Transparent;
const DEFAULT_COLOR: &str = "green";
const DEFAULT_BLUR_RADIUS: u32 = 20;
/// Below this the blur costs more than it shows (see compositor::blur_plan).
const MIN_BLUR_RADIUS: u32 = 7;
const MAX_BLUR_RADIUS: u32 = 128;
const DEFAULT_HUMAN_VARIANT: HumanVariant = HumanVariant::Auto;
const DEFAULT_THREADS: u32 = 0;
/// Frames at least this wide (relative to their height) count as wide for `human-variant=auto`.
const WIDE_ASPECT: f64 = 1.6;

#[derive(Debug, Clone)]
struct Settings {
    backend: Backend,
    mode: Mode,
    provider: ExecutionProvider,
    provider_strict: bool,
    /// The provider the running model uses, once started.
    active_provider: Option<&'static str>,
    api_url: String,
    /// Never readable back: the property shows its fingerprint.
    api_key: Option<ApiKey>,
    video_url: Option<String>,
    output_format: String,
    poll_interval: u32,
    timeout: u32,
    model: Model,
    model_path: Option<String>,
    human_variant: HumanVariant,
    ort_library: Option<String>,
    threads: u32,
    background: BackgroundMode,
    /// As the user wrote it, and parsed (straight RGBA).
    color_text: String,
    color: [u8; 4],
    image_path: Option<String>,
    image: Option<Arc<Image>>,
    /// Why the last `background-image` could not be used.
    image_error: Option<String>,
    blur_radius: u32,
    placement: compositor::Placement,
    /// Milliseconds between `rbv-stats` messages; 0 = none.
    stats_interval: u32,
    /// What to keep, as the service's comma-separated prompt.
    text_prompt: Option<String>,
    /// Temporal smoothing strength, 0 = off.
    smoothing: f64,
    smoothing_threshold: u32,
    refine: bool,
    refine_radius: u32,
    refine_eps: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            backend: DEFAULT_BACKEND,
            mode: DEFAULT_MODE,
            provider: ExecutionProvider::Auto,
            provider_strict: false,
            active_provider: None,
            api_url: remote::client::DEFAULT_API_URL.into(),
            api_key: None,
            video_url: None,
            output_format: DEFAULT_OUTPUT_FORMAT.into(),
            poll_interval: DEFAULT_POLL_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            model: DEFAULT_MODEL,
            model_path: None,
            human_variant: DEFAULT_HUMAN_VARIANT,
            ort_library: None,
            threads: DEFAULT_THREADS,
            background: DEFAULT_BACKGROUND,
            color_text: DEFAULT_COLOR.into(),
            color: composition::parse_color(DEFAULT_COLOR).expect("valid default"),
            image_path: None,
            image: None,
            image_error: None,
            blur_radius: DEFAULT_BLUR_RADIUS,
            placement: compositor::Placement::default(),
            stats_interval: DEFAULT_STATS_INTERVAL,
            text_prompt: None,
            smoothing: DEFAULT_SMOOTHING,
            smoothing_threshold: DEFAULT_SMOOTHING_THRESHOLD,
            refine: DEFAULT_REFINE,
            refine_radius: DEFAULT_REFINE_RADIUS,
            refine_eps: DEFAULT_REFINE_EPS,
        }
    }
}

impl Settings {
    /// The models to load: for `human auto` both selfie models (the frame
    /// shape picks one at caps time), else exactly one.
    fn specs(&self) -> Vec<ModelSpec> {
        match (self.model, self.human_variant) {
            (Model::Light, _) => vec![model::LIGHT],
            (Model::Original, _) => vec![model::ORIGINAL],
            (Model::Pro, _) => vec![model::PRO],
            (Model::Human, HumanVariant::Square) => vec![model::HUMAN_SQUARE],
            (Model::Human, HumanVariant::Landscape) => vec![model::HUMAN_LANDSCAPE],
            (Model::Human, HumanVariant::Auto) if self.model_path.is_some() => {
                vec![model::HUMAN_SQUARE]
            }
            (Model::Human, HumanVariant::Auto) => vec![model::HUMAN_SQUARE, model::HUMAN_LANDSCAPE],
        }
    }
}

/// Per-caps conversion state.
struct Frames {
    /// Input format to packed RGB at the model's input size, in one pass.
    to_model: gst_video::VideoConverter,
    /// For large frames: sampled straight from the input's components to
    /// twice the model size, then the converter's last halving (4.3 -> 1.5
    /// ms at 1080p, benches/profile.rs; same cut quality, measured). Used
    /// instead of `to_model` where it applies.
    staged: Option<Staged>,
    model_info: gst_video::VideoInfo,
    model_buffer: gst::Buffer,
    /// Input format to 4-byte pixels at the input size: the foreground.
    to_fg: gst_video::VideoConverter,
    fg_info: gst_video::VideoInfo,
    /// The foreground when it cannot be written straight into the output.
    fg_buffer: gst::Buffer,
    /// Whether the output frame can hold the foreground (same size, 4-byte
    /// format), so the in-place path needs no copy.
    fg_is_output: bool,
    /// Byte of the foreground's pixels that holds alpha.
    alpha_offset: usize,
    /// Replace, or multiply the input's own alpha when it has one.
    alpha_mode: AlphaMode,
    /// For `mask` output of a placed foreground: a canvas in the
    /// foreground's format, made on first use.
    canvas: Option<(gst_video::VideoInfo, gst::Buffer)>,
}

/// Fills `buffer` (the model's RGB input, `info`) from `inframe`: sampled
/// in two stages where that applies, else by the converter.
fn model_input(
    staged: &mut Option<Staged>,
    to_model: &gst_video::VideoConverter,
    buffer: &mut gst::Buffer,
    info: &gst_video::VideoInfo,
    inframe: &gst_video::VideoFrameRef<&gst::BufferRef>,
) -> Result<(), String> {
    let mut frame = gst_video::VideoFrameRef::from_buffer_ref_writable(buffer.make_mut(), info)
        .map_err(|e| format!("cannot map the model input: {e}"))?;
    match staged {
        Some(staged) => staged.run(inframe, &mut frame),
        None => {
            to_model.frame_ref(inframe, &mut frame);
            Ok(())
        }
    }
}

/// The two-stage model input (see `Frames::staged`).
struct Staged {
    sampler: rbv_core::sample::Sampler,
    info: gst_video::VideoInfo,
    buffer: gst::Buffer,
    to_model: gst_video::VideoConverter,
}

impl Staged {
    fn new(
        in_info: &gst_video::VideoInfo,
        model_info: &gst_video::VideoInfo,
    ) -> Option<Result<Staged, String>> {
        let (w, h) =
            rbv_core::sample::Sampler::stage(in_info, model_info.width(), model_info.height())?;
        let sampler = rbv_core::sample::Sampler::new(in_info, w, h)?;
        Some((|| {
            let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, w, h)
                .fps(model_info.fps())
                .build()
                .map_err(|e| e.to_string())?;
            let mut config = gst_video::VideoConverterConfig::new();
            config.set_resampler_method(gst_video::VideoResamplerMethod::Linear);
            let to_model = gst_video::VideoConverter::new(&info, model_info, Some(config))
                .map_err(|e| e.to_string())?;
            let buffer = gst::Buffer::with_size(info.size()).map_err(|e| e.to_string())?;
            Ok(Staged {
                sampler,
                info,
                buffer,
                to_model,
            })
        })())
    }

    /// Samples `inframe` down, then converts it into `model_frame`.
    fn run(
        &mut self,
        inframe: &gst_video::VideoFrameRef<&gst::BufferRef>,
        model_frame: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
    ) -> Result<(), String> {
        {
            let mut frame = gst_video::VideoFrameRef::from_buffer_ref_writable(
                self.buffer.make_mut(),
                &self.info,
            )
            .map_err(|e| e.to_string())?;
            let stride = frame.plane_stride()[0] as usize;
            let data = frame.plane_data_mut(0).map_err(|e| e.to_string())?;
            self.sampler.run(inframe, data, stride)?;
        }
        let frame =
            gst_video::VideoFrameRef::from_buffer_ref_readable(self.buffer.as_ref(), &self.info)
                .map_err(|e| e.to_string())?;
        self.to_model.frame_ref(&frame, model_frame);
        Ok(())
    }
}

/// A background image prepared for one canvas size and pixel format.
struct CoverCache {
    image: Arc<Image>,
    size: (u32, u32),
    cover: Cover,
    opaque: bool,
}

struct State {
    /// Shared with the async worker, which locks it while it infers.
    segmenters: Arc<Mutex<Vec<Segmenter>>>,
    /// Each segmenter's spec and input size, readable without the lock.
    models: Vec<(ModelSpec, (u32, u32))>,
    active: usize,
    /// `mode=async`: the inference thread.
    worker: Option<Worker>,
    /// Frames seen since start, to age async masks by.
    frame_no: u64,
    /// The async worker must reset its smoother with the next frame.
    worker_reset: bool,
    /// Frames between the applied mask's frame and the current one.
    mask_age: u32,
    /// The async mask applied to the current frame.
    async_mask: Vec<f32>,
    /// What the element adds to latency, answered to LATENCY queries: in
    /// sync mode the last window's 95th-percentile frame time; in async
    /// mode nothing (frames leave at once).
    added_latency: gst::ClockTime,
    matte: Matte,
    frames: Option<Frames>,
    compositor: Compositor,
    blur: Blur,
    cover: Option<CoverCache>,
    stats: Stats,
    smoother: Smoother,
    refiner: Refiner,
}

/// Figures for the periodic `rbv-stats` message, over the frames since the
/// last one.
#[derive(Default)]
struct Stats {
    frames: u64,
    inference_ms: Vec<f64>,
    process_ms: Vec<f64>,
    since: Option<Instant>,
}

/// The `p`-th percentile (0-100) of `v`, nearest rank; 0 for none.
fn percentile(v: &mut [f64], p: usize) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() * p).div_ceil(100)).clamp(1, v.len()) - 1]
}

/// The settings one frame is composited with, read once per frame.
struct Look {
    background: BackgroundMode,
    color: [u8; 4],
    image: Option<Arc<Image>>,
    blur_radius: u32,
    placement: compositor::Placement,
    smoothing: f64,
    smoothing_threshold: u8,
    /// Guided-filter refinement: (radius, eps), or none.
    refine: Option<(usize, f32)>,
}

#[derive(Default)]
pub struct RbvRemove {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    /// `backend=remote`: the job and the decoded output.
    remote: Mutex<Option<RemoteState>>,
    /// Wakes the streaming thread's wait for a remote job; kept apart from
    /// `remote` so flushes and state changes never wait on the frame path.
    remote_wake: Mutex<Option<Arc<Shared>>>,
}

struct RemoteState {
    client: Client,
    request: Request,
    run: Option<Run>,
    shared: Arc<Shared>,
    decoder: Option<Decoder>,
    /// The first input timestamp since start or the last flush: output
    /// frames before it are skipped (a seek), the rest keep their times.
    first_pts: Option<gst::ClockTime>,
    /// Output frames pushed since start or the last flush.
    pushed: u64,
    eos: bool,
}

/// Whether `s` is an http(s) URL.
fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// The service's name for a model.
fn model_name(m: Model) -> &'static str {
    match m {
        Model::Human => "human",
        Model::Light => "light",
        Model::Original => "original",
        Model::Pro => "pro",
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

const INPUT_FORMATS: &[gst_video::VideoFormat] = &[
    gst_video::VideoFormat::I420,
    gst_video::VideoFormat::Yv12,
    gst_video::VideoFormat::Nv12,
    gst_video::VideoFormat::Nv21,
    gst_video::VideoFormat::Y42b,
    gst_video::VideoFormat::Y444,
    gst_video::VideoFormat::Yuy2,
    gst_video::VideoFormat::Uyvy,
    gst_video::VideoFormat::Ayuv,
    gst_video::VideoFormat::Rgb,
    gst_video::VideoFormat::Bgr,
    gst_video::VideoFormat::Rgba,
    gst_video::VideoFormat::Bgra,
    gst_video::VideoFormat::Argb,
    gst_video::VideoFormat::Abgr,
    gst_video::VideoFormat::Rgbx,
    gst_video::VideoFormat::Bgrx,
    gst_video::VideoFormat::Xrgb,
    gst_video::VideoFormat::Xbgr,
    gst_video::VideoFormat::Gray8,
];

const OUTPUT_FORMATS: &[gst_video::VideoFormat] = &[
    gst_video::VideoFormat::Rgba,
    gst_video::VideoFormat::Bgra,
    gst_video::VideoFormat::Argb,
    gst_video::VideoFormat::Abgr,
];

/// `background=mask` output.
const MASK_FORMAT: gst_video::VideoFormat = gst_video::VideoFormat::Gray8;

fn alpha_offset(format: gst_video::VideoFormat) -> Option<usize> {
    match format {
        gst_video::VideoFormat::Rgba | gst_video::VideoFormat::Bgra => Some(3),
        gst_video::VideoFormat::Argb | gst_video::VideoFormat::Abgr => Some(0),
        _ => None,
    }
}

/// A straight RGBA colour in the byte order of `format`.
fn in_layout(c: [u8; 4], format: gst_video::VideoFormat) -> [u8; 4] {
    let [r, g, b, a] = c;
    match format {
        gst_video::VideoFormat::Bgra => [b, g, r, a],
        gst_video::VideoFormat::Argb => [a, r, g, b],
        gst_video::VideoFormat::Abgr => [a, b, g, r],
        _ => [r, g, b, a],
    }
}

/// The upscaled mask into the alpha of `data`: plain (bilinear), or refined
/// by the guided filter when `refine` is set.
#[allow(clippy::too_many_arguments)]
fn apply_matte(
    plain: &mut Matte,
    refiner: &mut Refiner,
    refine: Option<(usize, f32)>,
    mask: &[f32],
    mask_size: (u32, u32),
    (w, h): (u32, u32),
    data: &mut [u8],
    stride: usize,
    alpha: usize,
    mode: AlphaMode,
) -> Result<(), String> {
    match refine {
        None => plain.apply(mask, mask_size, (w, h), data, stride, alpha, mode),
        Some((radius, eps)) => {
            let plane =
                refiner.refine(mask, mask_size, data, stride, (w, h), alpha, radius, eps)?;
            matte::write_alpha(
                plane, w as usize, w as usize, h as usize, data, stride, alpha, mode,
            );
            Ok(())
        }
    }
}

/// The background image prepared for this canvas and format (cached until
/// the image, the canvas or the format changes).
fn prepare_cover<'c>(
    cache: &'c mut Option<CoverCache>,
    image: Option<&Arc<Image>>,
    canvas: (u32, u32),
    format: gst_video::VideoFormat,
    alpha: usize,
) -> Result<Option<&'c CoverCache>, String> {
    let Some(image) = image else {
        return Ok(None);
    };
    let fresh = cache.as_ref().is_some_and(|c| {
        Arc::ptr_eq(&c.image, image) && c.size == canvas && c.cover.info.format() == format
    });
    if !fresh {
        let cover = Cover::new(&image.buffer, &image.info, canvas, format)?;
        let opaque = cover.with_pixels(|p| p.is_opaque(alpha))?;
        *cache = Some(CoverCache {
            image: image.clone(),
            size: canvas,
            cover,
            opaque,
        });
    }
    Ok(cache.as_ref())
}

fn format_list(formats: &[gst_video::VideoFormat]) -> gst::List {
    gst::List::new(formats.iter().map(|f| f.to_str()))
}

impl RbvRemove {
    /// `backend=remote` start: everything that can be checked before the
    /// job, checked.
    fn remote_start(&self, s: &Settings) -> Result<RemoteState, gst::ErrorMessage> {
        let settings_error = |what: String| {
            gst::error_msg!(gst::LibraryError::Settings, ("backend=remote: {}", what))
        };
        let key = s.api_key.clone().or_else(ApiKey::from_env).ok_or_else(|| {
            settings_error(format!(
                "no API key: set api-key or {}",
                remote::key::ENV_VAR
            ))
        })?;
        let background = match s.background {
            BackgroundMode::Transparent => remote::Background::Transparent,
            BackgroundMode::Color => {
                remote::Background::Color([s.color[0], s.color[1], s.color[2]])
            }
            BackgroundMode::Image => match s.image_path.as_deref() {
                Some(u) if is_url(u) => remote::Background::Image(u.to_owned()),
                other => {
                    return Err(settings_error(format!(
                        "background-image must be an http(s) URL the service can fetch, not {}",
                        other
                            .map(|p| format!("'{p}'"))
                            .unwrap_or_else(|| "unset".into())
                    )));
                }
            },
            BackgroundMode::Blur | BackgroundMode::Mask => {
                return Err(settings_error(format!(
                    "background={} is local only; the service offers transparent, color and image",
                    if s.background == BackgroundMode::Blur {
                        "blur"
                    } else {
                        "mask"
                    }
                )));
            }
        };
        let composition = (s.placement != compositor::Placement::default())
            .then(|| serde_json::from_str(&composition::composition_to_json(&s.placement)).ok())
            .flatten();
        let settings = remote::JobSettings {
            model: model_name(s.model).into(),
            text_prompt: s.text_prompt.clone(),
            background,
            composition,
            output_format: s.output_format.clone(),
            webhook_url: None,
        };
        settings.check().map_err(settings_error)?;
        if s.model_path.is_some() {
            gst::warning!(
                CAT,
                imp = self,
                "backend=remote: model-path is ignored (the service runs its own models)"
            );
        }
        let client = Client::new(remote::Config::new(&s.api_url, key))
            .map_err(|e| settings_error(e.to_string()))?;
        let source = match &s.video_url {
            Some(u) => Source::Url(u.clone()),
            // Known once upstream answers (see submit_input_buffer).
            None => Source::Url(String::new()),
        };
        if source == Source::Url(String::new()) {
            // Upstream that already names what it reads (v4l2://, rtsp://,
            // ...) is refused now; one that cannot answer yet (decodebin
            // before its pads appear) is asked again at the first buffer.
            let mut q = gst::query::Uri::new();
            if self.obj().sink_pad().peer_query(&mut q) && q.uri().is_some() {
                self.source_from_upstream()
                    .map_err(|e| gst::error_msg!(gst::StreamError::Failed, ("{}", e)))?;
            }
        }
        Ok(RemoteState {
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

    /// What upstream reads from, by a URI query: a local file (uploaded) or
    /// an http(s) URL (passed to the service).
    fn source_from_upstream(&self) -> Result<Source, String> {
        let mut q = gst::query::Uri::new();
        let uri = if self.obj().sink_pad().peer_query(&mut q) {
            q.uri().map(|u| u.to_string())
        } else {
            None
        };
        match uri.as_deref() {
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

    fn load_segmenters(&self, settings: &Settings) -> Result<Vec<Segmenter>, gst::ErrorMessage> {
        // The selfie models take about 1 ms: spreading one over two threads
        // only adds hand-off and spinning (measured with benches/fps.rs: same
        // or better fps at half the CPU with one thread). Heavier models get
        // ONNX Runtime's own choice (all cores).
        let threads = match (settings.threads, settings.model) {
            (0, Model::Human) => 1,
            (n, _) => n as usize,
        };
        let options = RunnerOptions {
            ort_library: settings.ort_library.as_ref().map(PathBuf::from),
            threads,
            provider: settings.provider.into(),
            strict: settings.provider_strict,
        };
        let path = settings.model_path.as_ref().map(PathBuf::from);
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
                if options.provider != model::Provider::Auto && seg.provider() != options.provider {
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

    fn make_frames(
        &self,
        (mw, mh): (u32, u32),
        in_info: &gst_video::VideoInfo,
        out_info: &gst_video::VideoInfo,
    ) -> Result<Frames, String> {
        let model_info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, mw, mh)
            .fps(in_info.fps())
            .interlace_mode(in_info.interlace_mode())
            .build()
            .map_err(|e| e.to_string())?;
        let mut config = gst_video::VideoConverterConfig::new();
        config.set_resampler_method(gst_video::VideoResamplerMethod::Linear);
        let to_model =
            gst_video::VideoConverter::new(in_info, &model_info, Some(config)).map_err(|e| {
                format!(
                    "cannot convert {:?} to the model input: {e}",
                    in_info.format()
                )
            })?;
        let out_format = out_info.format();
        let fg_format = match alpha_offset(out_format) {
            Some(_) => out_format,
            None => gst_video::VideoFormat::Rgba,
        };
        let fg_is_output = fg_format == out_format
            && (in_info.width(), in_info.height()) == (out_info.width(), out_info.height());
        let fg_info = if fg_is_output {
            out_info.clone()
        } else {
            gst_video::VideoInfo::builder(fg_format, in_info.width(), in_info.height())
                .fps(in_info.fps())
                .par(in_info.par())
                .build()
                .map_err(|e| e.to_string())?
        };
        // The full-size conversion is the frame path's largest cost: it
        // runs on two threads where there are two cores (measured: 1.9 ->
        // 1.2 ms at 1080p, benches/profile.rs).
        let mut fg_config = gst_video::VideoConverterConfig::new();
        fg_config.set_threads(
            std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(1) as u32,
        );
        let to_fg =
            gst_video::VideoConverter::new(in_info, &fg_info, Some(fg_config)).map_err(|e| {
                format!(
                    "cannot convert {:?} to {:?}: {e}",
                    in_info.format(),
                    fg_info.format()
                )
            })?;
        let model_buffer = gst::Buffer::with_size(model_info.size()).map_err(|e| e.to_string())?;
        let fg_buffer = gst::Buffer::with_size(fg_info.size()).map_err(|e| e.to_string())?;
        let staged = Staged::new(in_info, &model_info).transpose()?;
        gst::info!(
            CAT,
            imp = self,
            "model input: {}",
            if staged.is_some() {
                "sampled to twice the size, then converted"
            } else {
                "converted"
            }
        );
        Ok(Frames {
            to_model,
            staged,
            model_info,
            model_buffer,
            to_fg,
            alpha_offset: alpha_offset(fg_format).expect("4-byte format"),
            fg_info,
            fg_buffer,
            fg_is_output,
            alpha_mode: if in_info.has_alpha() {
                AlphaMode::Multiply
            } else {
                AlphaMode::Replace
            },
            canvas: None,
        })
    }

    /// Books one processed frame; every `stats-interval` posts `rbv-stats`.
    fn count_frame(&self, took: Duration) {
        let interval = lock(&self.settings).stats_interval;
        let msg = {
            let mut guard = lock(&self.state);
            let Some(state) = guard.as_mut() else {
                return;
            };
            let now = Instant::now();
            let stats = &mut state.stats;
            stats.frames += 1;
            stats.process_ms.push(took.as_secs_f64() * 1000.0);
            gst::log!(
                CAT,
                imp = self,
                "frame {} done in {:.2} ms",
                stats.frames,
                took.as_secs_f64() * 1000.0
            );
            let since = *stats.since.get_or_insert(now);
            let elapsed = now.duration_since(since);
            let sync = state.worker.is_none();
            let latency = |p95_ms: f64| {
                if sync {
                    gst::ClockTime::from_nseconds((p95_ms * 1e6) as u64)
                } else {
                    gst::ClockTime::ZERO
                }
            };
            if interval == 0 || elapsed < Duration::from_millis(u64::from(interval)) {
                // Without messages, the latency is still kept current (every
                // 100 frames), and the window bounded.
                if interval == 0 && stats.process_ms.len() >= 100 {
                    state.added_latency = latency(percentile(&mut stats.process_ms, 95));
                    stats.process_ms.clear();
                    stats.inference_ms.clear();
                } else if stats.process_ms.len() > 100_000 {
                    stats.process_ms.clear();
                    stats.inference_ms.clear();
                }
                return;
            }
            let window = stats.process_ms.len();
            let process_p95 = percentile(&mut stats.process_ms, 95);
            state.added_latency = latency(process_p95);
            let s = gst::Structure::builder(STATS_MESSAGE)
                .field("frames", stats.frames)
                .field("window-frames", window as u32)
                .field("fps", window as f64 / elapsed.as_secs_f64())
                .field("inference-p50-ms", percentile(&mut stats.inference_ms, 50))
                .field("inference-p95-ms", percentile(&mut stats.inference_ms, 95))
                .field("process-p50-ms", percentile(&mut stats.process_ms, 50))
                .field("process-p95-ms", process_p95)
                .field("mask-age", state.mask_age)
                .field("model", state.models[state.active].0.name)
                .field(
                    "execution-provider",
                    lock(&self.settings).active_provider.unwrap_or("cpu"),
                )
                .build();
            stats.inference_ms.clear();
            stats.process_ms.clear();
            stats.since = Some(now);
            gst::message::Element::builder(s).src(&*self.obj()).build()
        };
        // Posted without the state lock: bus handlers may call back in.
        let _ = self.obj().post_message(msg);
    }

    fn look(&self) -> Look {
        let s = lock(&self.settings);
        Look {
            background: s.background,
            color: s.color,
            image: s.image.clone(),
            blur_radius: s.blur_radius,
            placement: s.placement,
            smoothing: s.smoothing,
            smoothing_threshold: s.smoothing_threshold.min(255) as u8,
            refine: s
                .refine
                .then_some((s.refine_radius as usize, s.refine_eps as f32)),
        }
    }

    /// What in the settings decides the output caps: (mask, canvas width, canvas height).
    fn caps_settings(&self) -> (bool, u32, u32) {
        let s = lock(&self.settings);
        (
            s.background == BackgroundMode::Mask,
            s.placement.canvas_width,
            s.placement.canvas_height,
        )
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

    /// Names, in a warning, the prompt terms the local model cannot honour.
    fn check_prompt(&self, prompt: Option<&str>, model: Model) {
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

    fn running(&self) -> bool {
        lock(&self.state).is_some()
    }

    /// Sets one property; `Err` names why the value is refused.
    fn apply_property(&self, name: &str, value: &glib::Value) -> Result<(), String> {
        const CHECKED: &str = "type checked upstream";
        match name {
            "background-color" => {
                let text: Option<String> = value.get().expect(CHECKED);
                let text = text.unwrap_or_default();
                let color = composition::parse_color(&text)?;
                let mut s = lock(&self.settings);
                s.color = color;
                s.color_text = text;
            }
            "background-image" => {
                let path: Option<String> = value.get().expect(CHECKED);
                let running = self.running();
                // Decoded here, on the application's thread, never per frame.
                let local = path.as_deref().filter(|p| !p.is_empty() && !is_url(p));
                let loaded = match local {
                    Some(p) => Some(image::load(Path::new(p)).inspect_err(|e| {
                        lock(&self.settings).image_error = Some(e.clone());
                    })?),
                    None => None,
                };
                let mut s = lock(&self.settings);
                if loaded.is_none() && running && s.background == BackgroundMode::Image {
                    return Err("background=image is playing; set another background first".into());
                }
                if let Some(img) = &loaded {
                    gst::info!(
                        CAT,
                        imp = self,
                        "background image {}: {}x{}",
                        path.as_deref().unwrap_or_default(),
                        img.info.width(),
                        img.info.height()
                    );
                }
                s.image = loaded.map(Arc::new);
                s.image_error = path
                    .as_deref()
                    .filter(|p| is_url(p))
                    .map(|u| format!("{u} is a URL: only backend=remote takes URLs"));
                s.image_path = path;
            }
            "background" => {
                let mode: BackgroundMode = value.get().expect(CHECKED);
                let running = self.running();
                let mut s = lock(&self.settings);
                if mode == BackgroundMode::Image && running && s.image.is_none() {
                    return Err(format!(
                        "background=image needs a readable background-image first{}",
                        s.image_error
                            .as_deref()
                            .map(|e| format!(" ({e})"))
                            .unwrap_or_default()
                    ));
                }
                s.background = mode;
            }
            "composition" => {
                let json: Option<String> = value.get().expect(CHECKED);
                let placement = composition::parse_composition(json.as_deref().unwrap_or("{}"))
                    .map_err(|e| format!("'{}': {e}", json.unwrap_or_default()))?;
                lock(&self.settings).placement = placement;
            }
            "backend" => {
                if self.running() || lock(&self.remote).is_some() {
                    return Err("the backend cannot change while running".into());
                }
                lock(&self.settings).backend = value.get().expect(CHECKED);
            }
            "api-url" => {
                let url: Option<String> = value.get().expect(CHECKED);
                let url = url.unwrap_or_else(|| remote::client::DEFAULT_API_URL.into());
                if !is_url(&url) {
                    return Err(format!("'{url}' is not an http(s) URL"));
                }
                lock(&self.settings).api_url = url;
            }
            "api-key" => {
                let key: Option<String> = value.get().expect(CHECKED);
                lock(&self.settings).api_key = key.as_deref().and_then(ApiKey::new);
            }
            "video-url" => {
                let url: Option<String> = value.get().expect(CHECKED);
                let url = url.filter(|u| !u.is_empty());
                if let Some(u) = &url
                    && !is_url(u)
                {
                    return Err(format!(
                        "'{u}' is not an http(s) URL (local files are found upstream and uploaded)"
                    ));
                }
                lock(&self.settings).video_url = url;
            }
            "output-format" => {
                let f: Option<String> = value.get().expect(CHECKED);
                let f = f.unwrap_or_else(|| DEFAULT_OUTPUT_FORMAT.into());
                if !remote::api::OUTPUT_FORMATS.contains(&f.as_str()) {
                    return Err(format!(
                        "'{f}' is not one of {}",
                        remote::api::OUTPUT_FORMATS.join(", ")
                    ));
                }
                lock(&self.settings).output_format = f;
            }
            _ => {
                let mut s = lock(&self.settings);
                match name {
                    "poll-interval" => s.poll_interval = value.get().expect(CHECKED),
                    "mode" => s.mode = value.get().expect(CHECKED),
                    "execution-provider" => s.provider = value.get().expect(CHECKED),
                    "execution-provider-strict" => s.provider_strict = value.get().expect(CHECKED),
                    "timeout" => s.timeout = value.get().expect(CHECKED),
                    "model" => s.model = value.get().expect(CHECKED),
                    "model-path" => s.model_path = value.get().expect(CHECKED),
                    "human-variant" => s.human_variant = value.get().expect(CHECKED),
                    "ort-library" => s.ort_library = value.get().expect(CHECKED),
                    "threads" => s.threads = value.get().expect(CHECKED),
                    "blur-radius" => s.blur_radius = value.get().expect(CHECKED),
                    "canvas-width" => s.placement.canvas_width = value.get().expect(CHECKED),
                    "canvas-height" => s.placement.canvas_height = value.get().expect(CHECKED),
                    "anchor" => {
                        s.placement.anchor = value.get::<AnchorPosition>().expect(CHECKED).into()
                    }
                    "scale" => s.placement.scale = value.get().expect(CHECKED),
                    "offset-x" => s.placement.offset_x = value.get().expect(CHECKED),
                    "offset-y" => s.placement.offset_y = value.get().expect(CHECKED),
                    "stats-interval" => s.stats_interval = value.get().expect(CHECKED),
                    "smoothing" => s.smoothing = value.get().expect(CHECKED),
                    "refine" => s.refine = value.get().expect(CHECKED),
                    "refine-radius" => s.refine_radius = value.get().expect(CHECKED),
                    "refine-eps" => s.refine_eps = value.get().expect(CHECKED),
                    "smoothing-threshold" => s.smoothing_threshold = value.get().expect(CHECKED),
                    "text-prompt" => {
                        s.text_prompt = value.get().expect(CHECKED);
                        let (prompt, model) = (s.text_prompt.clone(), s.model);
                        drop(s);
                        if self.running() {
                            self.check_prompt(prompt.as_deref(), model);
                        }
                    }
                    _ => unimplemented!(),
                }
            }
        }
        Ok(())
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
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecEnum::builder_with_default("model", DEFAULT_MODEL)
                    .nick("Model")
                    .blurb(
                        "Segmentation model, by the hosted service's names: human (MediaPipe \
                         selfie, people, real time), light (u2netp), original (u2net) or pro \
                         (ISNet; salient objects, seconds per frame on CPU)",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("model-path")
                    .nick("Model path")
                    .blurb(
                        "ONNX file to run instead of the bundled file of 'model'. Input size \
                         and layout are read from the file; pre- and post-processing follow \
                         'model', or the JSON beside the file (x.onnx -> x.json: normalize \
                         {scale 255|\"max\", mean, std}, output probability|logits|min-max, \
                         input_size [w,h]). Unset: the bundled model from RBV_MODEL_DIR or the \
                         rbv cache",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("human-variant", DEFAULT_HUMAN_VARIANT)
                    .nick("Human variant")
                    .blurb("Which MediaPipe selfie model model=human runs")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("ort-library")
                    .nick("ONNX Runtime library")
                    .blurb(
                        "Path of libonnxruntime.so to load (once per process). Unset: \
                         RBV_ORT_LIBRARY, ORT_DYLIB_PATH, then the rbv cache",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("threads")
                    .nick("Threads")
                    .blurb(
                        "Inference threads (ONNX Runtime intra-op). 0 = automatic: 1 for \
                         model=human (a 1 ms model gains nothing from more), ONNX Runtime's \
                         choice (all cores) for heavier models",
                    )
                    .minimum(0)
                    .maximum(64)
                    .default_value(DEFAULT_THREADS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("background", DEFAULT_BACKGROUND)
                    .nick("Background")
                    .blurb(
                        "What replaces the background: transparent (alpha out), color, image, \
                         blur (the frame's own background blurred), or mask (the alpha alone, \
                         GRAY8). Changeable while playing",
                    )
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("background-color")
                    .nick("Background colour")
                    .blurb(
                        "Colour for background=color: #RRGGBB, #RRGGBBAA, a name (green = \
                         #00FF00, white, black, blue, ...), or the service's 0-1 floats \
                         [0.035,0.635,0.274]",
                    )
                    .default_value(Some(DEFAULT_COLOR))
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("background-image")
                    .nick("Background image")
                    .blurb(
                        "Image file for background=image (any format GStreamer decodes), \
                         scaled to cover the canvas with its aspect kept",
                    )
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("blur-radius")
                    .nick("Blur radius")
                    .blurb(
                        "Blur strength for background=blur: about the standard deviation, in \
                         output pixels, of a Gaussian blur (as CSS blur() means it)",
                    )
                    .minimum(MIN_BLUR_RADIUS)
                    .maximum(MAX_BLUR_RADIUS)
                    .default_value(DEFAULT_BLUR_RADIUS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("canvas-width")
                    .nick("Canvas width")
                    .blurb("Output width; 0 = the input's width. Renegotiates when changed")
                    .maximum(composition::MAX_CANVAS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("canvas-height")
                    .nick("Canvas height")
                    .blurb("Output height; 0 = the input's height. Renegotiates when changed")
                    .maximum(composition::MAX_CANVAS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("anchor", AnchorPosition::Center)
                    .nick("Anchor")
                    .blurb("Where the foreground sits on the canvas")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("scale")
                    .nick("Scale")
                    .blurb("Size of the foreground relative to the input frame")
                    .minimum(composition::MIN_SCALE)
                    .maximum(composition::MAX_SCALE)
                    .default_value(1.0)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecInt::builder("offset-x")
                    .nick("Offset x")
                    .blurb("Pixels to the right of the anchored position (negative: left)")
                    .minimum(-composition::MAX_OFFSET)
                    .maximum(composition::MAX_OFFSET)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecInt::builder("offset-y")
                    .nick("Offset y")
                    .blurb("Pixels below the anchored position (negative: above)")
                    .minimum(-composition::MAX_OFFSET)
                    .maximum(composition::MAX_OFFSET)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("text-prompt")
                    .nick("Text prompt")
                    .blurb(
                        "What to keep, comma-separated, as the hosted service's pro model \
                         takes it (\"person, glowing ring\"). Local models are not promptable: \
                         human keeps people, light/original/pro the salient subject; terms they \
                         cannot honour are named in a warning on the bus that suggests the \
                         remote backend",
                    )
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("smoothing")
                    .nick("Temporal smoothing")
                    .blurb(
                        "Steadies the mask over time (0 = off): where the picture is still, \
                         a rising mask value keeps this share of its previous value each frame \
                         and a falling one is taken at once; where the picture moved, the new \
                         value is taken at once (no trailing). Reset on flush and discontinuities",
                    )
                    .minimum(0.0)
                    .maximum(0.95)
                    .default_value(DEFAULT_SMOOTHING)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("smoothing-threshold")
                    .nick("Smoothing motion threshold")
                    .blurb(
                        "Change (0-255, per channel, at the model's resolution) above which a \
                         pixel counts as moving and smoothing takes the new mask value there: \
                         lower follows motion more closely, higher tolerates camera noise",
                    )
                    .maximum(255)
                    .default_value(DEFAULT_SMOOTHING_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("refine")
                    .nick("Refine edges")
                    .blurb(
                        "Refine the mask's edges at full resolution with a guided filter that \
                         follows the picture's own edges (soft alpha kept)",
                    )
                    .default_value(DEFAULT_REFINE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("refine-radius")
                    .nick("Refinement radius")
                    .blurb(
                        "Guided-filter window radius, in pixels of the working size (about 270 \
                         rows): larger follows edges further from the model's",
                    )
                    .minimum(1)
                    .maximum(32)
                    .default_value(DEFAULT_REFINE_RADIUS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("refine-eps")
                    .nick("Refinement regularisation")
                    .blurb(
                        "Guided-filter regularisation: smaller follows the picture's edges \
                         more tightly, larger stays closer to the model's mask",
                    )
                    .minimum(1e-6)
                    .maximum(1.0)
                    .default_value(DEFAULT_REFINE_EPS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("stats-interval")
                    .nick("Statistics interval")
                    .blurb(
                        "Milliseconds (wall clock) between rbv-stats element messages on the \
                         bus; 0 = none. Fields: frames (guint64, processed so far), \
                         window-frames (guint), fps (gdouble), inference-p50-ms, \
                         inference-p95-ms, process-p50-ms, process-p95-ms (gdouble, over the \
                         window), mask-age (guint, frames between the mask and the frame it is \
                         applied to), model (string), execution-provider (string)",
                    )
                    .maximum(3_600_000)
                    .default_value(DEFAULT_STATS_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("composition")
                    .nick("Composition")
                    .blurb(
                        "The service's composition object, e.g. {\"canvas\":{\"width\":1920,\
                         \"height\":1080},\"foreground\":{\"anchor\":\"bottom-right\",\"scale\":0.4,\
                         \"offset\":{\"x\":0,\"y\":0}}}; sets canvas-*, anchor, scale and offset-* \
                         at once (left-out parts take their defaults)",
                    )
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("execution-provider", ExecutionProvider::Auto)
                    .nick("Execution provider")
                    .blurb(
                        "Where ONNX Runtime runs the model: auto (CUDA where the loaded library \
                         has it and a GPU answers, else CPU), cpu, cuda, tensorrt. A provider \
                         that cannot be had falls back to the CPU with a warning, unless \
                         execution-provider-strict. Needs READY",
                    )
                    .build(),
                glib::ParamSpecBoolean::builder("execution-provider-strict")
                    .nick("Strict execution provider")
                    .blurb("Fail the start instead of falling back to the CPU")
                    .default_value(false)
                    .build(),
                glib::ParamSpecString::builder("active-execution-provider")
                    .nick("Active execution provider")
                    .blurb("The execution provider the model runs on (cpu, cuda, tensorrt); unset before the start")
                    .read_only()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("mode", DEFAULT_MODE)
                    .nick("Mode")
                    .blurb(
                        "sync: every frame waits for its own mask (files; real time with human). \
                         async: inference on its own thread, frames leave at once with the \
                         newest mask, no motion compensation (live sources, heavy models); the \
                         mask's age in frames is in rbv-stats. Needs READY",
                    )
                    .build(),
                glib::ParamSpecEnum::builder_with_default("backend", DEFAULT_BACKEND)
                    .nick("Backend")
                    .blurb(
                        "local: every frame through a model here; remote: the whole input \
                         file (found upstream, or video-url) becomes a job of the /v1 service, \
                         whose output is decoded and pushed in place of the input. Remote \
                         needs a file or http(s) source, not a live one",
                    )
                    .build(),
                glib::ParamSpecString::builder("api-url")
                    .nick("API URL")
                    .blurb("backend=remote: the /v1 service's base URL")
                    .default_value(Some(remote::client::DEFAULT_API_URL))
                    .build(),
                glib::ParamSpecString::builder("api-key")
                    .nick("API key")
                    .blurb(
                        "backend=remote: the service's API key (else RBV_API_KEY). Never \
                         logged; reads back as a fingerprint only",
                    )
                    .build(),
                glib::ParamSpecString::builder("video-url")
                    .nick("Video URL")
                    .blurb(
                        "backend=remote: an http(s) URL the service fetches the input from, \
                         instead of the file found upstream (which is uploaded)",
                    )
                    .build(),
                glib::ParamSpecString::builder("output-format")
                    .nick("Output format")
                    .blurb(
                        "backend=remote: the job's output, webm, mov, mp4 (no alpha: needs a \
                         colour or image background), gif, webp or png_sequence",
                    )
                    .default_value(Some(DEFAULT_OUTPUT_FORMAT))
                    .build(),
                glib::ParamSpecUInt::builder("poll-interval")
                    .nick("Poll interval")
                    .blurb(
                        "backend=remote: ms before the first status poll; later polls back \
                         off to five times it, with jitter",
                    )
                    .minimum(10)
                    .maximum(60_000)
                    .default_value(DEFAULT_POLL_INTERVAL)
                    .build(),
                glib::ParamSpecUInt::builder("timeout")
                    .nick("Timeout")
                    .blurb("backend=remote: seconds the whole job may take, upload to download")
                    .minimum(1)
                    .maximum(24 * 3600)
                    .default_value(DEFAULT_TIMEOUT)
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let before = self.caps_settings();
        match self.apply_property(pspec.name(), value) {
            Ok(()) if pspec.name() == "api-key" => {
                let shown = lock(&self.settings)
                    .api_key
                    .as_ref()
                    .map(ApiKey::fingerprint);
                gst::debug!(CAT, imp = self, "api-key set ({shown:?})")
            }
            Ok(()) => gst::debug!(CAT, imp = self, "{} set to {:?}", pspec.name(), value),
            Err(why) => self.reject(pspec.name(), &why),
        }
        if self.caps_settings() != before {
            gst::debug!(CAT, imp = self, "output caps change: renegotiating");
            self.obj().reconfigure_src();
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = lock(&self.settings);
        match pspec.name() {
            "backend" => s.backend.to_value(),
            "mode" => s.mode.to_value(),
            "execution-provider" => s.provider.to_value(),
            "execution-provider-strict" => s.provider_strict.to_value(),
            "active-execution-provider" => s.active_provider.to_value(),
            "api-url" => s.api_url.to_value(),
            "api-key" => s.api_key.as_ref().map(ApiKey::fingerprint).to_value(),
            "video-url" => s.video_url.to_value(),
            "output-format" => s.output_format.to_value(),
            "poll-interval" => s.poll_interval.to_value(),
            "timeout" => s.timeout.to_value(),
            "model" => s.model.to_value(),
            "model-path" => s.model_path.to_value(),
            "human-variant" => s.human_variant.to_value(),
            "ort-library" => s.ort_library.to_value(),
            "threads" => s.threads.to_value(),
            "background" => s.background.to_value(),
            "background-color" => s.color_text.to_value(),
            "background-image" => s.image_path.to_value(),
            "blur-radius" => s.blur_radius.to_value(),
            "canvas-width" => s.placement.canvas_width.to_value(),
            "canvas-height" => s.placement.canvas_height.to_value(),
            "anchor" => AnchorPosition::from(s.placement.anchor).to_value(),
            "scale" => s.placement.scale.to_value(),
            "offset-x" => s.placement.offset_x.to_value(),
            "offset-y" => s.placement.offset_y.to_value(),
            "composition" => composition::composition_to_json(&s.placement).to_value(),
            "stats-interval" => s.stats_interval.to_value(),
            "smoothing" => s.smoothing.to_value(),
            "refine" => s.refine.to_value(),
            "refine-radius" => s.refine_radius.to_value(),
            "refine-eps" => s.refine_eps.to_value(),
            "smoothing-threshold" => s.smoothing_threshold.to_value(),
            "text-prompt" => s.text_prompt.to_value(),
            _ => unimplemented!(),
        }
    }
}

impl GstObjectImpl for RbvRemove {}

impl ElementImpl for RbvRemove {
    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
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
            let sink_caps = gst_video::VideoCapsBuilder::new()
                .format_list(INPUT_FORMATS.iter().copied())
                .build();
            let src_caps = gst_video::VideoCapsBuilder::new()
                .format_list(OUTPUT_FORMATS.iter().copied().chain([MASK_FORMAT]))
                .build();
            vec![
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &src_caps,
                )
                .expect("valid template"),
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &sink_caps,
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
        if settings.backend == Backend::Remote {
            let state = self.remote_start(&settings)?;
            *lock(&self.remote_wake) = Some(state.shared.clone());
            *lock(&self.remote) = Some(state);
            gst::debug!(CAT, imp = self, "started (remote)");
            return Ok(());
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
        self.check_prompt(settings.text_prompt.as_deref(), settings.model);
        let models = segmenters
            .iter()
            .map(|seg| (*seg.spec(), seg.input_size()))
            .collect();
        let segmenters = Arc::new(Mutex::new(segmenters));
        let worker = match settings.mode {
            Mode::Sync => None,
            Mode::Async => Some(Worker::start(segmenters.clone()).map_err(|e| {
                gst::error_msg!(
                    gst::CoreError::Thread,
                    ("cannot start the inference thread: {}", e)
                )
            })?),
        };
        *lock(&self.state) = Some(State {
            segmenters,
            models,
            active: 0,
            worker,
            frame_no: 0,
            worker_reset: true,
            mask_age: 0,
            async_mask: Vec::new(),
            added_latency: gst::ClockTime::ZERO,
            matte: Matte::new(),
            frames: None,
            compositor: Compositor::new(),
            blur: Blur::new(),
            cover: None,
            stats: Stats::default(),
            smoother: Smoother::new(),
            refiner: Refiner::new(),
        });
        gst::debug!(CAT, imp = self, "started");
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *lock(&self.state) = None;
        if let Some(shared) = lock(&self.remote_wake).take() {
            shared.stop();
        }
        *lock(&self.remote) = None;
        gst::debug!(CAT, imp = self, "stopped");
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        match event.view() {
            gst::EventView::FlushStart(_) => {
                if let Some(shared) = lock(&self.remote_wake).as_ref() {
                    shared.set_flushing(true);
                }
            }
            gst::EventView::FlushStop(_) => {
                if let Some(state) = lock(&self.state).as_mut() {
                    state.smoother.reset();
                    state.worker_reset = true;
                    if let Some(worker) = &state.worker {
                        worker.clear();
                    }
                }
                if let Some(shared) = lock(&self.remote_wake).as_ref() {
                    shared.set_flushing(false);
                }
                if let Some(r) = lock(&self.remote).as_mut() {
                    r.decoder = None;
                    r.first_pts = None;
                    r.pushed = 0;
                    r.eos = false;
                }
            }
            gst::EventView::Eos(_) if lock(&self.remote).as_ref().is_some_and(|r| r.eos) => {
                // The job's output already ended the stream.
                return true;
            }
            _ => {}
        }
        self.parent_sink_event(event)
    }

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
        // The input only tells when the output starts; the job has the file.
        if r.first_pts.is_none() {
            r.first_pts = Some(inbuf.pts().unwrap_or(gst::ClockTime::ZERO));
        }
        if r.run.is_some() {
            return Ok(gst::FlowSuccess::Ok);
        }
        if r.request.source == Source::Url(String::new()) {
            drop(guard);
            let source = self.source_from_upstream().map_err(|e| {
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
        let run = Run::start(
            self.obj().upcast_ref(),
            *CAT,
            r.client.clone(),
            r.request.clone(),
            r.shared.clone(),
        )
        .map_err(|e| {
            let _ = self
                .obj()
                .post_message(super::remote::error_message(self.obj().upcast_ref(), &e));
            gst::FlowError::Error
        })?;
        r.run = Some(run);
        Ok(gst::FlowSuccess::Ok)
    }

    fn generate_output(
        &self,
    ) -> Result<gst_base::subclass::base_transform::GenerateOutputSuccess, gst::FlowError> {
        use gst_base::subclass::base_transform::GenerateOutputSuccess;
        let shared = match lock(&self.remote).as_ref() {
            None => None,
            Some(r) if r.eos => return Err(gst::FlowError::Eos),
            Some(r) if r.run.is_none() => return Ok(GenerateOutputSuccess::NoOutput),
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
                    .post_message(super::remote::error_message(self.obj().upcast_ref(), &e));
                return Err(gst::FlowError::Error);
            }
        };
        let mut guard = lock(&self.remote);
        let r = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        if r.decoder.is_none() {
            let caps = self
                .obj()
                .src_pad()
                .current_caps()
                .ok_or(gst::FlowError::NotNegotiated)?;
            let decoder = Decoder::open(&path, &caps).map_err(|e| {
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
            r.decoder = Some(decoder);
        }
        let decoder = r.decoder.as_ref().expect("opened above");
        loop {
            let sample = decoder.next(&|| shared.interrupted()).map_err(|e| {
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
            let Some(sample) = sample else {
                if shared.interrupted() {
                    return Err(gst::FlowError::Flushing);
                }
                gst::info!(
                    CAT,
                    imp = self,
                    "remote output: {} frames pushed, end",
                    r.pushed
                );
                r.eos = true;
                drop(guard);
                self.obj().src_pad().push_event(gst::event::Eos::new());
                return Err(gst::FlowError::Eos);
            };
            let Some(mut buffer) = sample.buffer_owned() else {
                continue;
            };
            if let (Some(pts), Some(first)) = (buffer.pts(), r.first_pts)
                && pts < first
            {
                continue;
            }
            if r.pushed == 0 {
                buffer.make_mut().set_flags(gst::BufferFlags::DISCONT);
                // The output's length is the job's, not the input's: the
                // input segment's stop (a seek sets it to the input's
                // duration) must not cut it.
                if let Ok(mut segment) = self.obj().segment().downcast::<gst::ClockTime>()
                    && segment.stop().is_some()
                {
                    segment.set_stop(gst::ClockTime::NONE);
                    self.obj()
                        .src_pad()
                        .push_event(gst::event::Segment::new(&segment));
                }
            }
            r.pushed += 1;
            return Ok(GenerateOutputSuccess::Buffer(buffer));
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
                .map_or(gst::ClockTime::ZERO, |s| s.added_latency);
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
        let (mask, cw, ch) = self.caps_settings();
        let to_src = direction == gst::PadDirection::Sink;
        let formats = match (to_src, mask) {
            (true, true) => &[MASK_FORMAT][..],
            (true, false) => OUTPUT_FORMATS,
            (false, _) => INPUT_FORMATS,
        };
        let mut other = caps.clone();
        for s in other.make_mut().iter_mut() {
            s.set("format", format_list(formats));
            s.remove_fields(["colorimetry", "chroma-site"]);
            if to_src && !mask {
                // What the converter produces from any input matrix.
                s.set("colorimetry", "sRGB");
            }
            // A set canvas side is the output's; the input's is then free.
            for (field, side) in [("width", cw), ("height", ch)] {
                if side == 0 {
                    continue;
                }
                if to_src {
                    s.set(field, side as i32);
                } else {
                    s.set(field, gst::IntRange::new(1, i32::MAX));
                }
            }
        }
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
        if lock(&self.remote).is_some() {
            // The job's output is decoded straight to the output caps.
            return Ok(());
        }
        let mut guard = lock(&self.state);
        let state = guard
            .as_mut()
            .ok_or_else(|| gst::loggable_error!(CAT, "caps set before start"))?;
        let wide = f64::from(in_info.width()) >= WIDE_ASPECT * f64::from(in_info.height());
        state.active = if state.models.len() > 1 && wide { 1 } else { 0 };
        let (spec, input_size) = state.models[state.active];
        gst::info!(
            CAT,
            imp = self,
            "{}x{} {:?} -> {:?} with {}",
            in_info.width(),
            in_info.height(),
            in_info.format(),
            out_info.format(),
            spec.name
        );
        let frames = self
            .make_frames(input_size, in_info, out_info)
            .map_err(|e| gst::loggable_error!(CAT, "{}", e))?;
        state.frames = Some(frames);
        state.smoother.reset();
        state.worker_reset = true;
        Ok(())
    }

    fn transform_frame(
        &self,
        inframe: &gst_video::VideoFrameRef<&gst::BufferRef>,
        outframe: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let started = Instant::now();
        let result = self.process(inframe, outframe);
        if result.is_ok() {
            self.count_frame(started.elapsed());
        }
        result
    }
}

impl RbvRemove {
    /// One frame: model input, inference, matte, composite.
    fn process(
        &self,
        inframe: &gst_video::VideoFrameRef<&gst::BufferRef>,
        outframe: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let look = self.look();
        let mut guard = lock(&self.state);
        let State {
            segmenters,
            active,
            worker,
            frame_no,
            worker_reset,
            mask_age,
            async_mask: mask_buf,
            matte,
            frames,
            compositor,
            blur,
            cover,
            stats,
            smoother,
            refiner,
            ..
        } = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        let frames = frames.as_mut().ok_or(gst::FlowError::NotNegotiated)?;

        let fail = |what: &str, err: String| {
            gst::element_imp_error!(self, gst::StreamError::Failed, ("{}: {}", what, err));
            gst::FlowError::Error
        };

        // 1. The model's input (sampled straight from the incoming format)
        // and inference, on a second thread while this one converts the input
        // to the foreground's pixels: the largest costs, side by side on two
        // cores (benches/profile.rs).
        let (w, h) = (frames.fg_info.width(), frames.fg_info.height());
        let canvas = (outframe.width(), outframe.height());
        let out_format = outframe.format();
        let mask_out = out_format == MASK_FORMAT;
        let rect = look.placement.rect((w, h), canvas);
        let full = compositor::Rect {
            x: 0,
            y: 0,
            width: w,
            height: h,
        };
        let in_place = frames.fg_is_output && rect == full && !mask_out;
        let mut convert = || {
            if in_place {
                frames.to_fg.frame_ref(inframe, outframe);
                Ok(())
            } else {
                gst_video::VideoFrameRef::from_buffer_ref_writable(
                    frames.fg_buffer.make_mut(),
                    &frames.fg_info,
                )
                .map(|mut fg| frames.to_fg.frame_ref(inframe, &mut fg))
                .map_err(|e| e.to_string())
            }
        };
        let model_size = (frames.model_info.width(), frames.model_info.height());
        let discont = inframe.buffer().flags().contains(gst::BufferFlags::DISCONT);
        let this_frame = *frame_no;
        *frame_no += 1;
        let (mw, mh) = match worker {
            None => {
                // Sync: this frame's own mask.
                let (inference, converted) = rayon::join(
                    || {
                        model_input(
                            &mut frames.staged,
                            &frames.to_model,
                            &mut frames.model_buffer,
                            &frames.model_info,
                            inframe,
                        )?;
                        let model = gst_video::VideoFrameRef::from_buffer_ref_readable(
                            frames.model_buffer.as_ref(),
                            &frames.model_info,
                        )
                        .map_err(|e| e.to_string())?;
                        let stride = model.plane_stride()[0] as usize;
                        let rgb = model.plane_data(0).map_err(|e| e.to_string())?;
                        let t0 = Instant::now();
                        let mut segs = lock(segmenters);
                        let segmenter = segs
                            .get_mut(*active)
                            .ok_or_else(|| "no model for these caps".to_string())?;
                        let (mask, mw, mh) = segmenter.run(rgb, stride)?;
                        if discont {
                            smoother.reset();
                        }
                        let mask = smoother.apply(
                            mask,
                            (mw, mh),
                            rgb,
                            stride,
                            model_size,
                            look.smoothing as f32,
                            look.smoothing_threshold,
                        );
                        mask_buf.clear();
                        mask_buf.extend_from_slice(mask);
                        Ok::<_, String>(((mw, mh), t0.elapsed()))
                    },
                    convert,
                );
                converted.map_err(|e| fail("cannot map the foreground", e))?;
                let (size, took) = inference.map_err(|e| fail("inference failed", e))?;
                stats.inference_ms.push(took.as_secs_f64() * 1000.0);
                *mask_age = 0;
                size
            }
            Some(worker) => {
                // Async: hand this frame to the worker, apply the newest mask.
                model_input(
                    &mut frames.staged,
                    &frames.to_model,
                    &mut frames.model_buffer,
                    &frames.model_info,
                    inframe,
                )
                .map_err(|e| fail("cannot make the model input", e))?;
                let model = gst_video::VideoFrameRef::from_buffer_ref_readable(
                    frames.model_buffer.as_ref(),
                    &frames.model_info,
                )
                .map_err(|e| fail("cannot read the model input", e.to_string()))?;
                let stride = model.plane_stride()[0] as usize;
                let rgb = model
                    .plane_data(0)
                    .map_err(|e| fail("cannot read the model input", e.to_string()))?;
                worker.submit(worker::Input {
                    rgb: rgb[..stride * (model_size.1 as usize - 1) + model_size.0 as usize * 3]
                        .to_vec(),
                    stride,
                    active: *active,
                    frame: this_frame,
                    model_size,
                    smoothing: look.smoothing as f32,
                    smoothing_threshold: look.smoothing_threshold,
                    reset: std::mem::take(worker_reset) || discont,
                });
                convert().map_err(|e| fail("cannot map the foreground", e))?;
                let latest = worker
                    .with_latest(|latest| match latest {
                        Some(out) if out.active == *active => {
                            mask_buf.clear();
                            mask_buf.extend_from_slice(&out.mask);
                            let fresh = std::mem::take(&mut out.fresh);
                            Some((out.size, out.frame, out.took, fresh))
                        }
                        _ => None,
                    })
                    .map_err(|e| fail("inference failed", e))?;
                match latest {
                    Some((size, frame, took, fresh)) => {
                        if fresh {
                            stats.inference_ms.push(took.as_secs_f64() * 1000.0);
                        }
                        *mask_age = (this_frame - frame).min(u64::from(u32::MAX)) as u32;
                        size
                    }
                    None => {
                        // No mask yet: nothing is kept until the first.
                        mask_buf.clear();
                        mask_buf.resize((model_size.0 * model_size.1) as usize, 0.0);
                        *mask_age = 0;
                        model_size
                    }
                }
            }
        };
        let mask = mask_buf.as_slice();

        // 3. The foreground (input pixels with the upscaled matte as alpha),
        // then the background under it on the canvas.
        let ai = frames.alpha_offset;
        let mode = match look.background {
            _ if mask_out => BackgroundMode::Transparent,
            BackgroundMode::Mask => BackgroundMode::Transparent,
            m => m,
        };

        let image = look
            .image
            .as_ref()
            .filter(|_| mode == BackgroundMode::Image);
        // The upscaled (or refined) mask into the alpha of a converted frame.
        let alpha_mode = frames.alpha_mode;
        let mut matte_into = |data: &mut [u8], stride: usize| {
            apply_matte(
                matte,
                refiner,
                look.refine,
                mask,
                (mw, mh),
                (w, h),
                data,
                stride,
                ai,
                alpha_mode,
            )
        };

        if frames.fg_is_output && rect == full && !mask_out {
            // In place: the output frame holds the foreground and receives the result.
            let stride = outframe.plane_stride()[0] as usize;
            let data = outframe
                .plane_data_mut(0)
                .map_err(|e| fail("cannot write the output", e.to_string()))?;
            matte_into(data, stride).map_err(|e| fail("matte failed", e))?;
            let mut px =
                PixelsMut::new(data, w, h, stride).map_err(|e| fail("bad output frame", e))?;
            let result = match mode {
                BackgroundMode::Color => compositor::under(
                    &mut px,
                    ai,
                    &Background::Color(in_layout(look.color, out_format)),
                ),
                BackgroundMode::Image => {
                    match prepare_cover(cover, image, canvas, out_format, ai) {
                        Ok(Some(c)) => c
                            .cover
                            .with_pixels(|p| {
                                compositor::under(
                                    &mut px,
                                    ai,
                                    &Background::Pixels {
                                        pixels: p,
                                        opaque: c.opaque,
                                    },
                                )
                            })
                            .and_then(|r| r),
                        Ok(None) => Err("background=image without a background-image".into()),
                        Err(e) => Err(e),
                    }
                }
                BackgroundMode::Blur => blur
                    .run(px.as_pixels(), ai, look.blur_radius, canvas)
                    .and_then(|()| {
                        blur.with_result(|p| {
                            compositor::under(
                                &mut px,
                                ai,
                                &Background::Pixels {
                                    pixels: p,
                                    opaque: true,
                                },
                            )
                        })
                    })
                    .and_then(|r| r),
                _ => Ok(()),
            };
            result.map_err(|e| fail("compositing failed", e))?;
            return Ok(gst::FlowSuccess::Ok);
        }

        // Placed: the foreground goes to its own buffer first.
        {
            let mut fg = gst_video::VideoFrameRef::from_buffer_ref_writable(
                frames.fg_buffer.make_mut(),
                &frames.fg_info,
            )
            .map_err(|e| fail("cannot map the foreground", e.to_string()))?;
            let stride = fg.plane_stride()[0] as usize;
            let data = fg
                .plane_data_mut(0)
                .map_err(|e| fail("cannot write the foreground", e.to_string()))?;
            matte_into(data, stride).map_err(|e| fail("matte failed", e))?;
        }
        let fg_frame = gst_video::VideoFrameRef::from_buffer_ref_readable(
            frames.fg_buffer.as_ref(),
            &frames.fg_info,
        )
        .map_err(|e| fail("cannot map the foreground", e.to_string()))?;
        let fg = Pixels::new(
            fg_frame
                .plane_data(0)
                .map_err(|e| fail("cannot read the foreground", e.to_string()))?,
            w,
            h,
            fg_frame.plane_stride()[0] as usize,
        )
        .map_err(|e| fail("bad foreground", e))?;
        let out_stride = outframe.plane_stride()[0] as usize;
        let out_data = outframe
            .plane_data_mut(0)
            .map_err(|e| fail("cannot write the output", e.to_string()))?;

        if mask_out {
            let result = if rect == full && canvas == (w, h) {
                compositor::alpha_plane(fg, ai, out_data, out_stride)
            } else {
                // Placed on a transparent canvas, then its alpha.
                let fits = frames
                    .canvas
                    .as_ref()
                    .is_some_and(|(info, _)| (info.width(), info.height()) == canvas);
                if !fits {
                    let info =
                        gst_video::VideoInfo::builder(frames.fg_info.format(), canvas.0, canvas.1)
                            .build()
                            .map_err(|e| fail("canvas", e.to_string()))?;
                    let buffer = gst::Buffer::with_size(info.size())
                        .map_err(|e| fail("canvas", e.to_string()))?;
                    frames.canvas = Some((info, buffer));
                }
                let (info, buffer) = frames.canvas.as_mut().expect("made above");
                let mut frame =
                    gst_video::VideoFrameRef::from_buffer_ref_writable(buffer.make_mut(), info)
                        .map_err(|e| fail("cannot map the canvas", e.to_string()))?;
                let stride = frame.plane_stride()[0] as usize;
                let data = frame
                    .plane_data_mut(0)
                    .map_err(|e| fail("cannot write the canvas", e.to_string()))?;
                PixelsMut::new(data, canvas.0, canvas.1, stride).and_then(|mut px| {
                    compositor.compose(fg, ai, rect, &Background::Transparent, &mut px)?;
                    compositor::alpha_plane(px.as_pixels(), ai, out_data, out_stride)
                })
            };
            result.map_err(|e| fail("mask failed", e))?;
            return Ok(gst::FlowSuccess::Ok);
        }

        let mut out = PixelsMut::new(out_data, canvas.0, canvas.1, out_stride)
            .map_err(|e| fail("bad output frame", e))?;
        let result = match mode {
            BackgroundMode::Color => compositor.compose(
                fg,
                ai,
                rect,
                &Background::Color(in_layout(look.color, out_format)),
                &mut out,
            ),
            BackgroundMode::Image => match prepare_cover(cover, image, canvas, out_format, ai) {
                Ok(Some(c)) => c
                    .cover
                    .with_pixels(|p| {
                        compositor.compose(
                            fg,
                            ai,
                            rect,
                            &Background::Pixels {
                                pixels: p,
                                opaque: c.opaque,
                            },
                            &mut out,
                        )
                    })
                    .and_then(|r| r),
                Ok(None) => Err("background=image without a background-image".into()),
                Err(e) => Err(e),
            },
            BackgroundMode::Blur => blur
                .run(fg, ai, look.blur_radius, canvas)
                .and_then(|()| {
                    blur.with_result(|p| {
                        compositor.compose(
                            fg,
                            ai,
                            rect,
                            &Background::Pixels {
                                pixels: p,
                                opaque: true,
                            },
                            &mut out,
                        )
                    })
                })
                .and_then(|r| r),
            _ => compositor.compose(fg, ai, rect, &Background::Transparent, &mut out),
        };
        result.map_err(|e| fail("compositing failed", e))?;
        Ok(gst::FlowSuccess::Ok)
    }
}
