// SPDX-License-Identifier: MPL-2.0
/**
 * SECTION:element-rbvremove
 *
 * `rbvremove` removes the background of video. Each frame runs through a
 * segmentation model (ONNX Runtime) and leaves as RGBA (or BGRA/ARGB/ABGR)
 * with a soft alpha channel: opaque where the person is, transparent where
 * the background was.
 *
 * ## Example launch line
 * ```bash
 * gst-launch-1.0 filesrc location=in.webm ! decodebin ! videoconvert ! \
 *     rbvremove model=human ! videoconvert ! avenc_ffv1 ! matroskamux ! \
 *     filesink location=out.mkv
 * ```
 *
 * The person can also be laid over a colour, an image or the frame's own
 * blurred background, and placed on a canvas of another size with the hosted
 * service's composition semantics (all changeable while playing):
 * ```bash
 * gst-launch-1.0 v4l2src ! videoconvert ! rbvremove background=blur blur-radius=20 ! \
 *     videoconvert ! autovideosink
 * gst-launch-1.0 filesrc location=in.webm ! decodebin ! videoconvert ! \
 *     rbvremove canvas-width=1920 canvas-height=1080 anchor=bottom-right scale=0.4 \
 *     background=color background-color=#202830 ! videoconvert ! autovideosink
 * ```
 * `background=mask` outputs the matte alone as GRAY8.
 *
 * The ONNX Runtime library and the models are found in the rbv cache
 * (`setup/setup.sh` puts them there), or where `ort-library` and
 * `model-path` (or `RBV_ORT_LIBRARY`, `RBV_MODEL_DIR`, `RBV_CACHE_DIR`) say.
 */
use gst::glib;
use gst::prelude::*;

mod caps;
mod detector;
mod imp;
mod local;
#[cfg(feature = "remote")]
mod remote;
mod settings;
mod stats;
mod worker;

use rbv_api::{ModelName, OutputFormat};
use rbv_core::compositor::Anchor;
use rbv_core::model;

#[cfg(feature = "remote")]
pub use remote::{ERROR_DETAILS, JOB_MESSAGE};
pub use stats::STATS_MESSAGE;

/// Frames of a file a run over a segment of it (from frame K on) must see
/// before K for its output from K on to be what one run over the whole file
/// gives there, with the default settings: the detector's refreshes come on
/// the same frames of the timeline in both runs (every `REFRESH` intervals),
/// the first after the warm-up's start is applied an interval later at
/// most, and the gate's blend settles within `BLEND_FRAMES` more.
pub const SEGMENT_WARM_UP_FRAMES: u64 = (local::REFRESH as u64 + 1)
    * settings::detect::DEFAULT_INTERVAL as u64
    + rbv_core::detect::BLEND_FRAMES as u64;

glib::wrapper! {
    pub struct RbvRemove(ObjectSubclass<imp::RbvRemove>) @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    Backend::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    Mode::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    BeforeFirstMask::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    OutputFormatProp::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    ExecutionProvider::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    Model::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    HumanVariant::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    BackgroundMode::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    AnchorPosition::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "rbvremove",
        gst::Rank::NONE,
        RbvRemove::static_type(),
    )
}

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

/// `mode=async`: what leaves before the model's first mask.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstRbvBeforeFirstMask")]
pub enum BeforeFirstMask {
    #[enum_value(
        name = "Auto: with async-correction the human model's mask of each frame, else transparent",
        nick = "auto"
    )]
    Auto = 0,
    #[enum_value(
        name = "Transparent: nothing is kept until the first mask",
        nick = "transparent"
    )]
    Transparent = 1,
    #[enum_value(
        name = "Input: the frame leaves unchanged (opaque) until the first mask",
        nick = "input"
    )]
    Input = 2,
    #[enum_value(
        name = "Wait: the first frame waits for its own mask (once, and after a flush)",
        nick = "wait"
    )]
    Wait = 3,
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

impl From<Model> for ModelName {
    fn from(m: Model) -> ModelName {
        match m {
            Model::Human => ModelName::Human,
            Model::Light => ModelName::Light,
            Model::Original => ModelName::Original,
            Model::Pro => ModelName::Pro,
        }
    }
}

impl From<ModelName> for Model {
    fn from(m: ModelName) -> Model {
        match m {
            ModelName::Human => Model::Human,
            ModelName::Light => Model::Light,
            ModelName::Original => Model::Original,
            ModelName::Pro => Model::Pro,
        }
    }
}

/// `backend=remote`: the job's output format, as the service names them.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstRbvOutputFormat")]
pub enum OutputFormatProp {
    #[enum_value(
        name = "WebM: VP9 with alpha when transparent, VP8 otherwise",
        nick = "webm"
    )]
    Webm = 0,
    #[enum_value(name = "MOV: ProRes 4444 with alpha, 422 HQ when opaque", nick = "mov")]
    Mov = 1,
    #[enum_value(
        name = "MP4: H.264, no alpha (needs a colour or image background)",
        nick = "mp4"
    )]
    Mp4 = 2,
    #[enum_value(name = "GIF", nick = "gif")]
    Gif = 3,
    #[enum_value(name = "WebP: animated", nick = "webp")]
    Webp = 4,
    #[enum_value(
        name = "PNG sequence: one PNG a frame in a .zip",
        nick = "png_sequence"
    )]
    PngSequence = 5,
}

impl From<OutputFormatProp> for OutputFormat {
    fn from(f: OutputFormatProp) -> OutputFormat {
        match f {
            OutputFormatProp::Webm => OutputFormat::Webm,
            OutputFormatProp::Mov => OutputFormat::Mov,
            OutputFormatProp::Mp4 => OutputFormat::Mp4,
            OutputFormatProp::Gif => OutputFormat::Gif,
            OutputFormatProp::Webp => OutputFormat::Webp,
            OutputFormatProp::PngSequence => OutputFormat::PngSequence,
        }
    }
}

impl From<OutputFormat> for OutputFormatProp {
    fn from(f: OutputFormat) -> OutputFormatProp {
        match f {
            OutputFormat::Webm => OutputFormatProp::Webm,
            OutputFormat::Mov => OutputFormatProp::Mov,
            OutputFormat::Mp4 => OutputFormatProp::Mp4,
            OutputFormat::Gif => OutputFormatProp::Gif,
            OutputFormat::Webp => OutputFormatProp::Webp,
            OutputFormat::PngSequence => OutputFormatProp::PngSequence,
        }
    }
}
