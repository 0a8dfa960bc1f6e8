// SPDX-License-Identifier: MPL-2.0
//! `rbvremove`'s properties: their specs, the values they hold and the
//! checks a value passes before it is taken. No element in here: the
//! element locks a [`Settings`] and calls [`Settings::set`] and
//! [`Settings::get`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gst::glib;
use gst::prelude::*;
use rbv_api::api::DEFAULT_API_URL;
use rbv_api::{ApiKey, OutputFormat};
use rbv_core::compositor::{self, parse as composition};
use rbv_core::image::{self, Image};
use rbv_core::matte::MaskControls;
use rbv_core::model::{self, ModelSpec, RunnerOptions};

use super::{
    AnchorPosition, Backend, BackgroundMode, BeforeFirstMask, ExecutionProvider, HumanVariant,
    Mode, Model, OutputFormatProp,
};

pub(crate) mod detect;
mod specs;

pub use detect::{DetectLook, DetectSettings};
pub use specs::properties;

pub const DEFAULT_MODEL: Model = Model::Human;
pub const DEFAULT_BACKEND: Backend = Backend::Local;
pub const DEFAULT_MODE: Mode = Mode::Sync;
pub const DEFAULT_OUTPUT_FORMAT: OutputFormat = OutputFormat::Webm;
/// First poll of a remote job, in ms; later polls back off to five times it.
pub const DEFAULT_POLL_INTERVAL: u32 = 2000;
/// Seconds a whole remote job may take (the official SDKs' default).
pub const DEFAULT_TIMEOUT: u32 = 600;
pub const DEFAULT_STATS_INTERVAL: u32 = 1000;
/// With the threshold below, the quality bench (human, the detector on)
/// measured the moving clip's flicker -51 % with IoU 0.968 -> 0.971, and
/// vtest.avi's distant people keeping 98 % of their opaque share (sure
/// rises are taken at once: `rbv_core::matte::Smoother`).
pub const DEFAULT_SMOOTHING: f64 = 0.95;
/// A model-input pixel whose channels change by more than this between
/// frames counts as moving: smoothing takes the new mask value there (12
/// flickered 0.00143 against 0.00127 at 40 on the moving clip; 255, never
/// moving, lost IoU).
pub const DEFAULT_SMOOTHING_THRESHOLD: u32 = 40;
pub const DEFAULT_REFINE: bool = false;
pub const DEFAULT_REFINE_RADIUS: u32 = 2;
pub const DEFAULT_REFINE_EPS: f64 = 1e-3;
pub const DEFAULT_BACKGROUND: BackgroundMode = BackgroundMode::Transparent;
pub const DEFAULT_COLOR: &str = "green";
pub const DEFAULT_BLUR_RADIUS: u32 = 20;
/// Below this the blur costs more than it shows (see compositor::blur_plan).
pub const MIN_BLUR_RADIUS: u32 = 7;
pub const MAX_BLUR_RADIUS: u32 = 128;
pub const DEFAULT_HUMAN_VARIANT: HumanVariant = HumanVariant::Auto;
pub const DEFAULT_THREADS: u32 = 0;
/// Largest mask-grow / mask-feather, in output pixels.
pub const MAX_MASK_RADIUS: i32 = 64;

/// Every property's value.
#[derive(Debug, Clone)]
pub struct Settings {
    pub backend: Backend,
    pub mode: Mode,
    pub provider: ExecutionProvider,
    pub provider_strict: bool,
    /// The provider the running model uses, once started.
    pub active_provider: Option<&'static str>,
    pub api_url: String,
    /// Never readable back: the property shows its fingerprint.
    pub api_key: Option<ApiKey>,
    pub video_url: Option<String>,
    pub output_format: OutputFormat,
    pub poll_interval: u32,
    pub timeout: u32,
    pub model: Model,
    pub model_path: Option<String>,
    pub human_variant: HumanVariant,
    pub ort_library: Option<String>,
    pub threads: u32,
    pub background: BackgroundMode,
    /// As the user wrote it, and parsed (straight RGBA).
    pub color_text: String,
    pub color: [u8; 4],
    pub image_path: Option<String>,
    pub image: Option<Arc<Image>>,
    /// Why the last `background-image` could not be used.
    pub image_error: Option<String>,
    pub blur_radius: u32,
    pub placement: compositor::Placement,
    /// Milliseconds between `rbv-stats` messages; 0 = none.
    pub stats_interval: u32,
    /// What to keep, as the service's comma-separated prompt.
    pub text_prompt: Option<String>,
    /// Temporal smoothing strength, 0 = off.
    pub smoothing: f64,
    pub smoothing_threshold: u32,
    pub refine: bool,
    /// `mode=async` with a heavy model: correct its stale mask where the
    /// picture moved (local/correct.rs).
    pub async_correction: bool,
    pub refine_radius: u32,
    pub refine_eps: f64,
    /// `detector`, `detector-confidence`, `detector-interval`, and what
    /// `text-prompt` selects.
    pub detect: DetectSettings,
    /// Values refused before the start, by property: the start fails
    /// naming them (a launch line's typo has no bus to warn on yet), unless
    /// a later value of the same property was taken.
    pub refused: std::collections::BTreeMap<String, String>,
    /// `mask-threshold`, `mask-grow`, `mask-feather`.
    pub mask: MaskControls,
    pub before_first_mask: BeforeFirstMask,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            backend: DEFAULT_BACKEND,
            mode: DEFAULT_MODE,
            provider: ExecutionProvider::Auto,
            provider_strict: false,
            active_provider: None,
            api_url: DEFAULT_API_URL.into(),
            api_key: None,
            video_url: None,
            output_format: DEFAULT_OUTPUT_FORMAT,
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
            async_correction: true,
            refine_radius: DEFAULT_REFINE_RADIUS,
            refine_eps: DEFAULT_REFINE_EPS,
            detect: DetectSettings::default(),
            refused: Default::default(),
            mask: MaskControls::default(),
            before_first_mask: BeforeFirstMask::Auto,
        }
    }
}

impl Settings {
    /// The models to load: for `human auto` both selfie models (the frame
    /// shape picks one at caps time), else exactly one.
    pub fn specs(&self) -> Vec<ModelSpec> {
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

/// The settings one frame is composited with, read once per frame.
pub struct Look {
    pub background: BackgroundMode,
    pub color: [u8; 4],
    pub image: Option<Arc<Image>>,
    pub blur_radius: u32,
    pub placement: compositor::Placement,
    pub smoothing: f64,
    pub smoothing_threshold: u8,
    /// Guided-filter refinement: (radius, eps), or none.
    pub refine: Option<(usize, f32)>,
    /// See [`Settings::async_correction`].
    pub async_correction: bool,
    /// What the detector keeps, and how it runs.
    pub detect: DetectLook,
    /// Threshold, grow/shrink and feather of the full-resolution alpha.
    pub mask: MaskControls,
    pub before_first_mask: BeforeFirstMask,
}

impl Settings {
    /// The settings one frame is composited with.
    pub fn look(&self) -> Look {
        Look {
            background: self.background,
            color: self.color,
            image: self.image.clone(),
            blur_radius: self.blur_radius,
            placement: self.placement,
            smoothing: self.smoothing,
            smoothing_threshold: self.smoothing_threshold.min(255) as u8,
            async_correction: self.async_correction,
            refine: self
                .refine
                .then_some((self.refine_radius as usize, self.refine_eps as f32)),
            detect: self.detect.look(),
            mask: self.mask,
            before_first_mask: self.before_first_mask,
        }
    }

    /// What in the settings decides the output caps.
    pub fn output_shape(&self) -> OutputShape {
        OutputShape {
            mask: self.background == BackgroundMode::Mask,
            canvas_width: self.placement.canvas_width,
            canvas_height: self.placement.canvas_height,
        }
    }

    /// How ONNX Runtime runs the models. The selfie models take about 1 ms:
    /// spreading one over two threads only adds hand-off and spinning
    /// (measured with benches/fps.rs: same or better fps at half the CPU
    /// with one thread). Heavier models get ONNX Runtime's own choice (all
    /// cores).
    pub fn runner_options(&self) -> RunnerOptions {
        RunnerOptions {
            ort_library: self.ort_library.as_ref().map(PathBuf::from),
            threads: match (self.threads, self.model) {
                (0, Model::Human) => 1,
                (n, _) => n as usize,
            },
            provider: self.provider.into(),
            strict: self.provider_strict,
        }
    }
}

/// What in the settings decides the output caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputShape {
    /// `background=mask`: GRAY8 out.
    pub mask: bool,
    /// A canvas side that is set, or 0 for the input's.
    pub canvas_width: u32,
    pub canvas_height: u32,
}

/// Whether the element runs, for values that cannot change then.
#[derive(Debug, Clone, Copy, Default)]
pub struct Running {
    /// The local frame path is set up.
    pub local: bool,
    /// A remote job is set up.
    pub remote: bool,
}

impl Running {
    pub fn any(self) -> bool {
        self.local || self.remote
    }
}

/// What the element does after a value was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    None,
    /// `text-prompt` changed: while running, say what the model cannot honour.
    PromptChanged,
}

/// Work done before the settings are locked, so the streaming thread never
/// waits on it: a `background-image` is decoded.
pub enum Prepared {
    None,
    Image(Result<Option<Arc<Image>>, String>),
}

/// Whether `s` is an http(s) URL.
pub fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

const CHECKED: &str = "type checked by GObject";

/// Decodes a `background-image` value on the caller's thread; other
/// properties need nothing.
pub fn prepare(name: &str, value: &glib::Value) -> Prepared {
    if name != "background-image" {
        return Prepared::None;
    }
    let path: Option<String> = value.get().expect(CHECKED);
    let local = path.as_deref().filter(|p| !p.is_empty() && !is_url(p));
    Prepared::Image(match local {
        Some(p) => image::load(Path::new(p)).map(|img| Some(Arc::new(img))),
        None => Ok(None),
    })
}

/// A value as a launch line would write it (`model=human`).
fn value_text(v: &glib::Value) -> String {
    if let Ok(Some(s)) = v.get::<Option<String>>() {
        return format!("'{s}'");
    }
    if let Some(e) = glib::EnumValue::from_value(v) {
        return e.1.nick().to_owned();
    }
    v.transform::<String>()
        .ok()
        .and_then(|s| s.get::<Option<String>>().ok().flatten())
        .unwrap_or_else(|| format!("{v:?}"))
}

/// The element's properties, made once.
pub fn property_specs() -> &'static [glib::ParamSpec] {
    static SPECS: std::sync::LazyLock<Vec<glib::ParamSpec>> = std::sync::LazyLock::new(properties);
    &SPECS
}

/// Whether `name` may change while the element runs (its spec says
/// "changeable in PLAYING"); the others need NULL or READY.
pub fn changeable_while_running(name: &str) -> bool {
    property_specs()
        .iter()
        .find(|p| p.name() == name)
        .is_some_and(|p| p.flags().contains(gst::PARAM_FLAG_MUTABLE_PLAYING))
}

impl Settings {
    /// Sets one property; `Err` names why the value is refused (the old one
    /// then stays). `prepared` is [`prepare`]'s answer for the same value.
    /// A refusal before the start is remembered in `refused` until the
    /// property takes a value ([`Settings::refusals`]).
    pub fn set(
        &mut self,
        name: &str,
        value: &glib::Value,
        prepared: Prepared,
        running: Running,
    ) -> Result<Effect, String> {
        let result = if running.any() && !changeable_while_running(name) {
            Err(format!(
                "cannot change while the element runs (changeable only in NULL or READY): \
                 set it before the start, or stop the pipeline first; {} stays",
                value_text(&self.get(name))
            ))
        } else {
            self.apply(name, value, prepared, running)
        };
        match &result {
            Ok(_) => {
                self.refused.remove(name);
            }
            Err(why) if !running.any() => {
                self.refused.insert(name.to_owned(), why.clone());
            }
            Err(_) => {}
        }
        result
    }

    /// The values refused before the start, as one message, if any. With
    /// backend=remote a local background-image is left to the remote start,
    /// which refuses every local path with what to give instead (a URL).
    pub fn refusals(&self) -> Option<String> {
        let all: Vec<String> = self
            .refused
            .iter()
            .filter(|(name, _)| !(self.backend == Backend::Remote && *name == "background-image"))
            .map(|(name, why)| format!("{name}: {why}"))
            .collect();
        (!all.is_empty()).then(|| all.join("; "))
    }

    fn apply(
        &mut self,
        name: &str,
        value: &glib::Value,
        prepared: Prepared,
        running: Running,
    ) -> Result<Effect, String> {
        match name {
            "background-color" => {
                let text: Option<String> = value.get().expect(CHECKED);
                let text = text.unwrap_or_default();
                self.color = composition::parse_color(&text)?;
                self.color_text = text;
            }
            "background-image" => {
                let path: Option<String> = value.get().expect(CHECKED);
                let loaded = match prepared {
                    Prepared::Image(Ok(img)) => img,
                    Prepared::Image(Err(e)) => {
                        self.image_error = Some(e.clone());
                        return Err(e);
                    }
                    Prepared::None => unreachable!("background-image values are prepared"),
                };
                if loaded.is_none() && running.local && self.background == BackgroundMode::Image {
                    return Err("background=image is playing; set another background first".into());
                }
                self.image = loaded;
                self.image_error = path
                    .as_deref()
                    .filter(|p| is_url(p))
                    .map(|u| format!("{u} is a URL: only backend=remote takes URLs"));
                self.image_path = path;
            }
            "background" => {
                let mode: BackgroundMode = value.get().expect(CHECKED);
                if mode == BackgroundMode::Image && running.local && self.image.is_none() {
                    return Err(format!(
                        "background=image needs a readable background-image first{}",
                        self.image_error
                            .as_deref()
                            .map(|e| format!(" ({e})"))
                            .unwrap_or_default()
                    ));
                }
                self.background = mode;
            }
            "composition" => {
                let json: Option<String> = value.get().expect(CHECKED);
                self.placement = composition::parse_composition(json.as_deref().unwrap_or("{}"))
                    .map_err(|e| {
                        format!(
                            "'{}': {e} (expected the service's composition object, e.g. \
                             {{\"canvas\":{{\"width\":1920,\"height\":1080}},\
                             \"foreground\":{{\"anchor\":\"bottom-right\",\"scale\":0.4}}}})",
                            json.unwrap_or_default()
                        )
                    })?;
            }
            "backend" => self.backend = value.get().expect(CHECKED),
            "api-url" => {
                let url: Option<String> = value.get().expect(CHECKED);
                let url = url.unwrap_or_else(|| DEFAULT_API_URL.into());
                if !is_url(&url) {
                    return Err(format!("'{url}' is not an http(s) URL"));
                }
                self.api_url = url;
            }
            "api-key" => {
                let key: Option<String> = value.get().expect(CHECKED);
                self.api_key = key.as_deref().and_then(ApiKey::new);
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
                self.video_url = url;
            }
            "output-format" => {
                self.output_format = value.get::<OutputFormatProp>().expect(CHECKED).into()
            }
            "poll-interval" => self.poll_interval = value.get().expect(CHECKED),
            "mode" => self.mode = value.get().expect(CHECKED),
            "execution-provider" => self.provider = value.get().expect(CHECKED),
            "execution-provider-strict" => self.provider_strict = value.get().expect(CHECKED),
            "timeout" => self.timeout = value.get().expect(CHECKED),
            "model" => self.model = value.get().expect(CHECKED),
            "model-path" => self.model_path = value.get().expect(CHECKED),
            "human-variant" => self.human_variant = value.get().expect(CHECKED),
            "ort-library" => self.ort_library = value.get().expect(CHECKED),
            "threads" => self.threads = value.get().expect(CHECKED),
            "blur-radius" => self.blur_radius = value.get().expect(CHECKED),
            "canvas-width" => self.placement.canvas_width = value.get().expect(CHECKED),
            "canvas-height" => self.placement.canvas_height = value.get().expect(CHECKED),
            "anchor" => {
                self.placement.anchor = value.get::<AnchorPosition>().expect(CHECKED).into()
            }
            "scale" => self.placement.scale = value.get().expect(CHECKED),
            "offset-x" => self.placement.offset_x = value.get().expect(CHECKED),
            "offset-y" => self.placement.offset_y = value.get().expect(CHECKED),
            "stats-interval" => self.stats_interval = value.get().expect(CHECKED),
            "smoothing" => self.smoothing = value.get().expect(CHECKED),
            "refine" => self.refine = value.get().expect(CHECKED),
            "async-correction" => self.async_correction = value.get().expect(CHECKED),
            "refine-radius" => self.refine_radius = value.get().expect(CHECKED),
            "refine-eps" => self.refine_eps = value.get().expect(CHECKED),
            "smoothing-threshold" => self.smoothing_threshold = value.get().expect(CHECKED),
            "mask-threshold" => self.mask.threshold = value.get().expect(CHECKED),
            "mask-grow" => self.mask.grow = value.get().expect(CHECKED),
            "mask-feather" => self.mask.feather = value.get().expect(CHECKED),
            "before-first-mask" => self.before_first_mask = value.get().expect(CHECKED),
            "text-prompt" => {
                self.text_prompt = value.get().expect(CHECKED);
                self.detect.prompt(self.text_prompt.as_deref());
                return Ok(Effect::PromptChanged);
            }
            name if DetectSettings::owns(name) => self.detect.set(name, value),
            _ => unreachable!("every property is matched: {name}"),
        }
        Ok(Effect::None)
    }

    /// A property's value as it reads back (`api-key` as its fingerprint).
    pub fn get(&self, name: &str) -> glib::Value {
        let s = self;
        match name {
            "backend" => s.backend.to_value(),
            "mode" => s.mode.to_value(),
            "execution-provider" => s.provider.to_value(),
            "execution-provider-strict" => s.provider_strict.to_value(),
            "active-execution-provider" => s.active_provider.to_value(),
            "api-url" => s.api_url.to_value(),
            "api-key" => s.api_key.as_ref().map(ApiKey::fingerprint).to_value(),
            "video-url" => s.video_url.to_value(),
            "output-format" => OutputFormatProp::from(s.output_format).to_value(),
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
            "async-correction" => s.async_correction.to_value(),
            "refine-radius" => s.refine_radius.to_value(),
            "refine-eps" => s.refine_eps.to_value(),
            "smoothing-threshold" => s.smoothing_threshold.to_value(),
            "mask-threshold" => s.mask.threshold.to_value(),
            "mask-grow" => s.mask.grow.to_value(),
            "mask-feather" => s.mask.feather.to_value(),
            "before-first-mask" => s.before_first_mask.to_value(),
            "text-prompt" => s.text_prompt.to_value(),
            name if DetectSettings::owns(name) => s.detect.get(name),
            _ => unimplemented!(),
        }
    }
}

#[cfg(test)]
mod tests;
