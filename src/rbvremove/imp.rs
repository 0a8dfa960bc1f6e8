// SPDX-License-Identifier: MPL-2.0
//! `rbvremove`: GStreamer glue around the model runner and the matte core.

use std::path::PathBuf;
use std::sync::{LazyLock, Mutex, MutexGuard};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;
use gst_video::subclass::prelude::*;

use crate::matte::{AlphaMode, Matte};
use crate::model::{self, ModelSpec, RunnerOptions, Segmenter};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "rbvremove",
        gst::DebugColorFlags::empty(),
        Some("rbv background removal"),
    )
});

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

const DEFAULT_MODEL: Model = Model::Human;
const DEFAULT_HUMAN_VARIANT: HumanVariant = HumanVariant::Auto;
const DEFAULT_THREADS: u32 = 0;
/// Frames at least this wide (relative to their height) count as wide for `human-variant=auto`.
const WIDE_ASPECT: f64 = 1.6;

#[derive(Debug, Clone)]
struct Settings {
    model: Model,
    model_path: Option<String>,
    human_variant: HumanVariant,
    ort_library: Option<String>,
    threads: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            model: DEFAULT_MODEL,
            model_path: None,
            human_variant: DEFAULT_HUMAN_VARIANT,
            ort_library: None,
            threads: DEFAULT_THREADS,
        }
    }
}

impl Settings {
    /// The models to load: for `human auto` both selfie models (the frame
    /// shape picks one at caps time), else exactly one.
    fn specs(&self) -> Vec<ModelSpec> {
        match (self.model, self.human_variant) {
            (Model::Light, _) => vec![model::LIGHT],
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
    model_info: gst_video::VideoInfo,
    model_buffer: gst::Buffer,
    /// Input format to the output format at full size.
    to_output: gst_video::VideoConverter,
    /// Output size: the matte is scaled to it.
    width: u32,
    height: u32,
    alpha_offset: usize,
    /// Replace, or multiply the input's own alpha when it has one.
    alpha_mode: AlphaMode,
}

struct State {
    segmenters: Vec<Segmenter>,
    active: usize,
    matte: Matte,
    frames: Option<Frames>,
}

#[derive(Default)]
pub struct RbvRemove {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
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

fn alpha_offset(format: gst_video::VideoFormat) -> Option<usize> {
    match format {
        gst_video::VideoFormat::Rgba | gst_video::VideoFormat::Bgra => Some(3),
        gst_video::VideoFormat::Argb | gst_video::VideoFormat::Abgr => Some(0),
        _ => None,
    }
}

fn format_list(formats: &[gst_video::VideoFormat]) -> gst::List {
    gst::List::new(formats.iter().map(|f| f.to_str()))
}

impl RbvRemove {
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
                    "loaded {} from {} (input {:?}, CPU execution provider, ONNX Runtime {})",
                    spec.name,
                    seg.path().display(),
                    seg.input_size(),
                    seg.ort_library().display()
                );
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
        segmenter: &Segmenter,
        in_info: &gst_video::VideoInfo,
        out_info: &gst_video::VideoInfo,
    ) -> Result<Frames, String> {
        let (mw, mh) = segmenter.input_size();
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
        let to_output = gst_video::VideoConverter::new(in_info, out_info, None).map_err(|e| {
            format!(
                "cannot convert {:?} to {:?}: {e}",
                in_info.format(),
                out_info.format()
            )
        })?;
        let model_buffer = gst::Buffer::with_size(model_info.size()).map_err(|e| e.to_string())?;
        let alpha_offset = alpha_offset(out_info.format())
            .ok_or_else(|| format!("output format {:?} has no alpha", out_info.format()))?;
        Ok(Frames {
            to_model,
            model_info,
            model_buffer,
            to_output,
            width: out_info.width(),
            height: out_info.height(),
            alpha_offset,
            alpha_mode: if in_info.has_alpha() {
                AlphaMode::Multiply
            } else {
                AlphaMode::Replace
            },
        })
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
                         selfie, people) or light (u2netp, salient objects)",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("model-path")
                    .nick("Model path")
                    .blurb(
                        "ONNX file to run instead of the bundled file of 'model' (its pre- and \
                         post-processing follow 'model'; input size and layout are read from the \
                         file). Unset: the bundled model from RBV_MODEL_DIR or the rbv cache",
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
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = lock(&self.settings);
        match pspec.name() {
            "model" => settings.model = value.get().expect("type checked upstream"),
            "model-path" => settings.model_path = value.get().expect("type checked upstream"),
            "human-variant" => settings.human_variant = value.get().expect("type checked upstream"),
            "ort-library" => settings.ort_library = value.get().expect("type checked upstream"),
            "threads" => settings.threads = value.get().expect("type checked upstream"),
            _ => unimplemented!(),
        }
        gst::debug!(CAT, imp = self, "{} set to {:?}", pspec.name(), value);
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = lock(&self.settings);
        match pspec.name() {
            "model" => settings.model.to_value(),
            "model-path" => settings.model_path.to_value(),
            "human-variant" => settings.human_variant.to_value(),
            "ort-library" => settings.ort_library.to_value(),
            "threads" => settings.threads.to_value(),
            _ => unimplemented!(),
        }
    }
}

impl GstObjectImpl for RbvRemove {}

impl ElementImpl for RbvRemove {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Background removal",
                "Filter/Effect/Video",
                "Removes the background of video with a segmentation model (ONNX Runtime), \
                 leaving the foreground with a soft alpha channel",
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
                .format_list(OUTPUT_FORMATS.iter().copied())
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
        let segmenters = self.load_segmenters(&settings)?;
        *lock(&self.state) = Some(State {
            segmenters,
            active: 0,
            matte: Matte::new(),
            frames: None,
        });
        gst::debug!(CAT, imp = self, "started");
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *lock(&self.state) = None;
        gst::debug!(CAT, imp = self, "stopped");
        Ok(())
    }

    fn transform_caps(
        &self,
        direction: gst::PadDirection,
        caps: &gst::Caps,
        filter: Option<&gst::Caps>,
    ) -> Option<gst::Caps> {
        let formats = if direction == gst::PadDirection::Sink {
            OUTPUT_FORMATS
        } else {
            INPUT_FORMATS
        };
        let mut other = caps.clone();
        for s in other.make_mut().iter_mut() {
            s.set("format", format_list(formats));
            s.remove_fields(["colorimetry", "chroma-site"]);
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
        let mut guard = lock(&self.state);
        let state = guard
            .as_mut()
            .ok_or_else(|| gst::loggable_error!(CAT, "caps set before start"))?;
        let wide = f64::from(in_info.width()) >= WIDE_ASPECT * f64::from(in_info.height());
        state.active = if state.segmenters.len() > 1 && wide {
            1
        } else {
            0
        };
        let segmenter = &state.segmenters[state.active];
        gst::info!(
            CAT,
            imp = self,
            "{}x{} {:?} -> {:?} with {}",
            in_info.width(),
            in_info.height(),
            in_info.format(),
            out_info.format(),
            segmenter.spec().name
        );
        let frames = self
            .make_frames(segmenter, in_info, out_info)
            .map_err(|e| gst::loggable_error!(CAT, "{}", e))?;
        state.frames = Some(frames);
        Ok(())
    }

    fn transform_frame(
        &self,
        inframe: &gst_video::VideoFrameRef<&gst::BufferRef>,
        outframe: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut guard = lock(&self.state);
        let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        let frames = state.frames.as_mut().ok_or(gst::FlowError::NotNegotiated)?;
        let segmenter = &mut state.segmenters[state.active];

        let fail = |what: &str, err: String| {
            gst::element_imp_error!(self, gst::StreamError::Failed, ("{}: {}", what, err));
            gst::FlowError::Error
        };

        // 1. The model's input, sampled straight from the incoming format.
        let model_buffer = frames.model_buffer.make_mut();
        let mut model_frame =
            gst_video::VideoFrameRef::from_buffer_ref_writable(model_buffer, &frames.model_info)
                .map_err(|e| fail("cannot map the model input", e.to_string()))?;
        frames.to_model.frame_ref(inframe, &mut model_frame);
        let stride = model_frame.plane_stride()[0] as usize;
        let rgb = model_frame
            .plane_data(0)
            .map_err(|e| fail("cannot read the model input", e.to_string()))?;

        // 2. Inference.
        let (mask, mw, mh) = segmenter
            .run(rgb, stride)
            .map_err(|e| fail("inference failed", e))?;

        // 3. The output pixels, then the upscaled matte into their alpha.
        frames.to_output.frame_ref(inframe, outframe);
        let out_stride = outframe.plane_stride()[0] as usize;
        let pixels = outframe
            .plane_data_mut(0)
            .map_err(|e| fail("cannot write the output", e.to_string()))?;
        state
            .matte
            .apply(
                mask,
                (mw, mh),
                (frames.width, frames.height),
                pixels,
                out_stride,
                frames.alpha_offset,
                frames.alpha_mode,
            )
            .map_err(|e| fail("matte failed", e))?;
        Ok(gst::FlowSuccess::Ok)
    }
}
