// SPDX-License-Identifier: MPL-2.0
//! The model runner: one ONNX segmentation model, RGB pixels in, a soft
//! foreground mask (0..1 per pixel, at model resolution) out.
//!
//! No GStreamer here: callers hand over packed RGB at the model's input size.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, Weak};

use ort::session::builder::GraphOptimizationLevel;
use ort::session::{HasSelectedOutputs, OutputSelector, RunOptions, Session};
use ort::value::{TensorElementType, TensorRef, ValueType};

use crate::paths;

pub mod ort_env;

/// How the model wants its input tensor laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `[1, H, W, 3]` (TFLite / MediaPipe).
    Nhwc,
    /// `[1, 3, H, W]` (PyTorch exports: u2net, ISNet).
    Nchw,
}

/// How the model's output becomes a 0..1 foreground probability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// Already a probability; clamped to 0..1.
    Probability,
    /// Any range; stretched to 0..1 per frame by its min and max (rembg's u2net post-processing).
    MinMax,
    /// Unbounded scores; a sigmoid makes them probabilities.
    Logits,
}

/// Pixel normalisation: `(x / divisor - mean) / std` per RGB channel, where the
/// divisor is 255 or, with `divide_by_max`, the largest value in the frame
/// (rembg's u2net pre-processing).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalize {
    pub divide_by_max: bool,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Normalize {
    /// `x / 255`: 0..1 input, as MediaPipe's selfie models want.
    pub const UNIT: Normalize = Normalize {
        divide_by_max: false,
        mean: [0.0; 3],
        std: [1.0; 3],
    };
    /// imgly's ISNet: `(x - 128) / 256`, written as `(x / 255 - 128/255) / (256/255)`.
    pub const IMGLY: Normalize = Normalize {
        divide_by_max: false,
        mean: [128.0 / 255.0; 3],
        std: [256.0 / 255.0; 3],
    };
    /// rembg's u2net/u2netp: `x / max(x)` then ImageNet mean and std.
    pub const REMBG: Normalize = Normalize {
        divide_by_max: true,
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };
}

/// Everything needed to run one bundled model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelSpec {
    /// Short name used in logs and errors.
    pub name: &'static str,
    /// File name in the model directory.
    pub file: &'static str,
    /// Input size used when the model leaves it dynamic.
    pub width: u32,
    pub height: u32,
    pub normalize: Normalize,
    pub output: OutputKind,
}

/// MediaPipe selfie segmentation, general (square, 256x256).
pub const HUMAN_SQUARE: ModelSpec = ModelSpec {
    name: "human (MediaPipe selfie, square)",
    file: "selfie_segmentation.onnx",
    width: 256,
    height: 256,
    normalize: Normalize::UNIT,
    output: OutputKind::Probability,
};

/// MediaPipe selfie segmentation, landscape (256x144).
pub const HUMAN_LANDSCAPE: ModelSpec = ModelSpec {
    name: "human (MediaPipe selfie, landscape)",
    file: "selfie_segmentation_landscape.onnx",
    width: 256,
    height: 144,
    normalize: Normalize::UNIT,
    output: OutputKind::Probability,
};

/// u2netp from rembg: the service's `light` model.
pub const LIGHT: ModelSpec = ModelSpec {
    name: "light (u2netp)",
    file: "u2netp.onnx",
    width: 320,
    height: 320,
    normalize: Normalize::REMBG,
    output: OutputKind::MinMax,
};

/// u2net from rembg: the service's `original` model (its default).
pub const ORIGINAL: ModelSpec = ModelSpec {
    name: "original (u2net)",
    file: "u2net.onnx",
    width: 320,
    height: 320,
    normalize: Normalize::REMBG,
    output: OutputKind::MinMax,
};

/// ISNet from the imgly package: the service's `pro` model. Input
/// `(x - 128) / 256` at 1024x1024, output a 0..1 probability.
pub const PRO: ModelSpec = ModelSpec {
    name: "pro (ISNet)",
    file: PRO_FILE,
    width: 1024,
    height: 1024,
    normalize: Normalize::IMGLY,
    output: OutputKind::Probability,
};

/// The ISNet weights `pro` runs: imgly's fp16 file turned to float32 by
/// set-up (setup/fp16to32.py; masks within 1e-3). ONNX Runtime's CPU
/// provider has no fast float16 kernels: the float32 file ran in 0.81-0.97
/// of the fp16 file's time, run against run (benches/ort_options.py).
pub const PRO_FILE: &str = "isnet_fp32.onnx";

impl ModelSpec {
    /// The bundled file of this model in the model directory.
    pub fn default_path(&self) -> PathBuf {
        paths::model_dir().join(self.file)
    }
}

/// Session settings.
#[derive(Debug, Clone, Default)]
pub struct RunnerOptions {
    /// ONNX Runtime library to load; `None` for the default search.
    pub ort_library: Option<PathBuf>,
    /// Intra-op threads; 0 lets ONNX Runtime choose.
    pub threads: usize,
    /// Where the model runs.
    pub provider: Provider,
    /// Fail instead of falling back to the CPU when `provider` cannot be had.
    pub strict: bool,
}

/// ONNX Runtime execution providers rbv asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Provider {
    /// CUDA where the loaded ONNX Runtime has it and a GPU answers, else the CPU.
    #[default]
    Auto,
    Cpu,
    Cuda,
    TensorRt,
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Provider::Auto => "auto",
            Provider::Cpu => "cpu",
            Provider::Cuda => "cuda",
            Provider::TensorRt => "tensorrt",
        }
    }
}

/// Registers `wanted` on `builder`; returns the provider the session will
/// run on, or why the wanted one cannot be had when `strict`.
fn register_provider(
    builder: &mut ort::session::builder::SessionBuilder,
    wanted: Provider,
    strict: bool,
) -> Result<Provider, String> {
    use ort::ep::{CUDA, ExecutionProvider, TensorRT};
    let attempt =
        |p: Provider, builder: &mut ort::session::builder::SessionBuilder| -> Result<(), String> {
            let available = match p {
                Provider::Cuda => CUDA::is_available(),
                Provider::TensorRt => TensorRT::is_available(),
                _ => return Ok(()),
            }
            .unwrap_or(false);
            if !available {
                return Err(format!(
                    "the loaded ONNX Runtime has no {} execution provider (a GPU build is needed: \
                 setup/gpu.sh fetches one)",
                    p.name()
                ));
            }
            let result = match p {
                // TensorRT first, CUDA for what TensorRT does not take.
                Provider::TensorRt => TensorRT::default()
                    .register(builder)
                    .and_then(|()| CUDA::default().register(builder)),
                _ => CUDA::default().register(builder),
            };
            result.map_err(|e| format!("{} execution provider: {e}", p.name()))
        };
    match wanted {
        Provider::Cpu => Ok(Provider::Cpu),
        Provider::Auto => Ok(match attempt(Provider::Cuda, builder) {
            Ok(()) => Provider::Cuda,
            Err(_) => Provider::Cpu,
        }),
        p => match attempt(p, builder) {
            Ok(()) => Ok(p),
            Err(e) if strict => Err(e),
            Err(_) => Ok(Provider::Cpu),
        },
    }
}

/// Sessions in use, by model file and thread count: every element instance
/// (and the async worker) running the same model shares one session, so its
/// weights are in memory once (`cargo bench --bench fps` prints the RSS of
/// one against four instances). A session runs one frame at a time: sharers
/// take turns.
type SessionKey = (PathBuf, usize, Provider, bool);
type SharedSession = (Weak<Mutex<Session>>, Provider);
static SESSIONS: LazyLock<Mutex<HashMap<SessionKey, SharedSession>>> =
    LazyLock::new(Default::default);

/// Sessions kept loaded after their last user goes (see [`keep_sessions_loaded`]).
static PINNED: Mutex<Vec<Arc<Mutex<Session>>>> = Mutex::new(Vec::new());
static PIN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// From now on, keep every session loaded for the life of the process
/// instead of dropping it with its last element. For servers that run one
/// short pipeline after another (`rbv serve`): without it, each job loads
/// its model again (u2netp: about 2.5 s of a 3 s job on 2 cores).
pub fn keep_sessions_loaded() {
    PIN.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// The session for `path` with `options`, loaded or shared; with the ONNX
/// Runtime library it runs on. `memory_pattern: false` for ISNet (below).
pub(crate) fn shared_session(
    path: &Path,
    options: &RunnerOptions,
    memory_pattern: bool,
) -> Result<(Arc<Mutex<Session>>, PathBuf, Provider), String> {
    let key = (
        path.canonicalize().unwrap_or_else(|_| path.to_path_buf()),
        options.threads,
        options.provider,
        options.strict,
    );
    // Held while loading, so two instances starting together load once.
    let mut sessions = SESSIONS.lock().unwrap_or_else(|e| e.into_inner());
    sessions.retain(|_, (s, _)| s.strong_count() > 0);
    let (session, ort_library, provider) =
        ort_env::with_environment(options.ort_library.as_deref(), |env, lib| {
            if let Some((s, p)) = sessions
                .get(&key)
                .and_then(|(s, p)| s.upgrade().map(|s| (s, *p)))
            {
                return Ok::<_, String>((s, lib.to_path_buf(), p));
            }
            let builder = Session::builder(env).map_err(|e| e.to_string())?;
            let builder = builder
                .with_optimization_level(GraphOptimizationLevel::All)
                .map_err(|e| e.to_string())?;
            // ISNet: ONNX Runtime's memory pattern kept the first run's arena
            // chunks beside its ~820 MB planned block, so a second run (a
            // second instance on the shared session, or the next frame)
            // added about 300 MB resident; without it the runs reuse the
            // arena, at the same speed (benches/pro_memory.py,
            // benches/ort_options.py).
            let builder = if !memory_pattern {
                builder
                    .with_memory_pattern(false)
                    .map_err(|e| e.to_string())?
            } else {
                builder
            };
            let mut builder = if options.threads > 0 {
                builder
                    .with_intra_threads(options.threads)
                    .map_err(|e| e.to_string())?
            } else {
                builder
            };
            let provider = register_provider(&mut builder, options.provider, options.strict)?;
            let session = builder.commit_from_file(path).map_err(|e| e.to_string())?;
            Ok((Arc::new(Mutex::new(session)), lib.to_path_buf(), provider))
        })?
        .map_err(|e| format!("cannot load model {}: {e}", path.display()))?;
    if PIN.load(std::sync::atomic::Ordering::Relaxed) {
        let mut pinned = PINNED.lock().unwrap_or_else(|e| e.into_inner());
        if !pinned.iter().any(|p| Arc::ptr_eq(p, &session)) {
            pinned.push(session.clone());
        }
    }
    sessions.insert(key, (Arc::downgrade(&session), provider));
    Ok((session, ort_library, provider))
}

/// A loaded model, ready to run frame after frame without allocating.
pub struct Segmenter {
    /// Shared by every segmenter of the process that runs the same file
    /// with the same thread count (see [`shared_session`]).
    session: Arc<Mutex<Session>>,
    /// The execution provider the session runs on.
    provider: Provider,
    spec: ModelSpec,
    path: PathBuf,
    ort_library: PathBuf,
    layout: Layout,
    input_name: String,
    /// Asks for the mask output alone: ISNet has 12 outputs (side outputs
    /// at every scale), and fetching them all kept about 300 MB more
    /// resident (benches/pro_memory.py) for values nobody reads.
    run_options: RunOptions<HasSelectedOutputs>,
    width: u32,
    height: u32,
    input: Vec<f32>,
    mask: Vec<f32>,
}

impl std::fmt::Debug for Segmenter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segmenter")
            .field("model", &self.spec.name)
            .field("path", &self.path)
            .field("layout", &self.layout)
            .field("input", &(self.width, self.height))
            .finish()
    }
}

fn fixed(d: i64) -> Option<u32> {
    u32::try_from(d).ok().filter(|&d| d > 0)
}

impl Segmenter {
    /// Loads `path` (or the spec's bundled file) and checks that it is a
    /// single-image mask model: one float input of shape `[1,3,H,W]` or
    /// `[1,H,W,3]`, and a float output with one channel.
    pub fn new(
        spec: ModelSpec,
        path: Option<&Path>,
        options: &RunnerOptions,
    ) -> Result<Self, String> {
        let given = path.is_some();
        let path = path
            .map(Path::to_path_buf)
            .unwrap_or_else(|| spec.default_path());
        if given && !path.is_file() {
            return Err(format!(
                "model-path {}: not found (no such file, or not a file)",
                path.display()
            ));
        }
        if !path.is_file() {
            return Err(format!(
                "model file {} not found for {} (run setup/setup.sh, set RBV_MODEL_DIR, or \
                 set model-path)",
                path.display(),
                spec.name
            ));
        }
        // A file of the user's may say how to feed it and read it.
        let spec = if given {
            with_sidecar(spec, &path)?
        } else {
            spec
        };
        let (session, ort_library, provider) =
            shared_session(&path, options, spec.file != PRO.file)?;
        let guard = session.lock().unwrap_or_else(|e| e.into_inner());
        let inputs = guard.inputs();
        if inputs.len() != 1 {
            return Err(format!(
                "model {} has {} inputs; a mask model takes one image",
                path.display(),
                inputs.len()
            ));
        }
        let input_name = inputs[0].name().to_string();
        let (layout, width, height) = match inputs[0].dtype() {
            ValueType::Tensor {
                ty: TensorElementType::Float32,
                shape,
                ..
            } if shape.len() == 4 && (shape[0] == 1 || shape[0] < 0) => {
                let size = |h: i64, w: i64| {
                    (
                        fixed(w).unwrap_or(spec.width),
                        fixed(h).unwrap_or(spec.height),
                    )
                };
                if shape[1] == 3 {
                    let (w, h) = size(shape[2], shape[3]);
                    (Layout::Nchw, w, h)
                } else if shape[3] == 3 {
                    let (w, h) = size(shape[1], shape[2]);
                    (Layout::Nhwc, w, h)
                } else {
                    return Err(format!(
                        "model {} input '{input_name}' has shape {:?}: expected [1,3,H,W] or [1,H,W,3]",
                        path.display(),
                        &shape[..]
                    ));
                }
            }
            other => {
                return Err(format!(
                    "model {} input '{input_name}' is {other}: expected a float32 image tensor \
                     [1,3,H,W] or [1,H,W,3]",
                    path.display()
                ));
            }
        };
        let outputs = guard.outputs();
        match outputs.first().map(|o| o.dtype()) {
            Some(ValueType::Tensor {
                ty: TensorElementType::Float32,
                ..
            }) => {}
            Some(other) => {
                return Err(format!(
                    "model {} output '{}' is {other}: expected a float32 mask",
                    path.display(),
                    outputs[0].name()
                ));
            }
            None => return Err(format!("model {} has no outputs", path.display())),
        }

        let run_options = RunOptions::new()
            .map_err(|e| e.to_string())?
            .with_outputs(OutputSelector::no_default().with(outputs[0].name()));
        drop(guard);
        let pixels = width as usize * height as usize;
        Ok(Segmenter {
            session,
            provider,
            spec,
            path,
            ort_library,
            layout,
            input_name,
            run_options,
            width,
            height,
            input: vec![0.0; pixels * 3],
            mask: Vec::with_capacity(pixels),
        })
    }

    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// The execution provider the model runs on (never `Auto`).
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// Whether `other` runs on the same ONNX Runtime session.
    pub fn shares_session_with(&self, other: &Segmenter) -> bool {
        Arc::ptr_eq(&self.session, &other.session)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The ONNX Runtime library this session runs on (the one loaded first in
    /// this process, which may differ from the one asked for).
    pub fn ort_library(&self) -> &Path {
        &self.ort_library
    }

    /// Input width and height the model runs at.
    pub fn input_size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Runs the model on packed RGB pixels (`stride` bytes per row) at
    /// [`input_size`](Self::input_size) and returns the foreground mask, 0..1,
    /// with its width and height.
    pub fn run(&mut self, rgb: &[u8], stride: usize) -> Result<(&[f32], u32, u32), String> {
        let (w, h) = (self.width as usize, self.height as usize);
        if stride < w * 3 || rgb.len() < stride * (h - 1) + w * 3 {
            return Err(format!(
                "input image is {} bytes with stride {stride}; {w}x{h} RGB needs more",
                rgb.len()
            ));
        }
        fill_input(
            &mut self.input,
            rgb,
            stride,
            w,
            h,
            self.layout,
            &self.spec.normalize,
        );

        let shape: [i64; 4] = match self.layout {
            Layout::Nhwc => [1, h as i64, w as i64, 3],
            Layout::Nchw => [1, 3, h as i64, w as i64],
        };
        let tensor =
            TensorRef::from_array_view((shape, &self.input[..])).map_err(|e| e.to_string())?;
        let mut session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        let outputs = session
            .run_with_options(
                ort::inputs![self.input_name.as_str() => tensor],
                &self.run_options,
            )
            .map_err(|e| format!("model {} failed: {e}", self.path.display()))?;
        let (out_shape, data) = outputs[0]
            .try_extract_tensor::<f32>()
            .map_err(|e| e.to_string())?;
        let (mw, mh) = mask_size(out_shape).ok_or_else(|| {
            format!(
                "model {} output has shape {:?}: expected one channel, [1,1,H,W], [1,H,W,1] or [1,H,W]",
                self.path.display(),
                &out_shape[..]
            )
        })?;
        let n = mw as usize * mh as usize;
        let values = data
            .get(..n)
            .ok_or_else(|| format!("model {} returned a short mask", self.path.display()))?;
        self.mask.clear();
        self.mask.extend_from_slice(values);
        drop(outputs);
        to_probability(&mut self.mask, self.spec.output);
        Ok((&self.mask, mw, mh))
    }
}

/// Width and height of a one-channel mask tensor.
fn mask_size(shape: &[i64]) -> Option<(u32, u32)> {
    let (h, w) = match *shape {
        [1, 1, h, w] | [1, h, w, 1] | [1, h, w] | [h, w] => (h, w),
        _ => return None,
    };
    Some((fixed(w)?, fixed(h)?))
}

/// Packed RGB bytes to the model's float input, normalised and laid out.
pub fn fill_input(
    out: &mut [f32],
    rgb: &[u8],
    stride: usize,
    w: usize,
    h: usize,
    layout: Layout,
    norm: &Normalize,
) {
    let divisor = if norm.divide_by_max {
        let max = (0..h)
            .map(|y| {
                rgb[y * stride..y * stride + w * 3]
                    .iter()
                    .copied()
                    .max()
                    .unwrap_or(0)
            })
            .max()
            .unwrap_or(0);
        f32::from(max.max(1))
    } else {
        255.0
    };
    let scale: [f32; 3] = std::array::from_fn(|c| 1.0 / (divisor * norm.std[c]));
    let bias: [f32; 3] = std::array::from_fn(|c| -norm.mean[c] / norm.std[c]);
    let plane = w * h;
    for y in 0..h {
        let row = &rgb[y * stride..y * stride + w * 3];
        match layout {
            Layout::Nhwc => {
                let dst = &mut out[y * w * 3..(y + 1) * w * 3];
                for (d, s) in dst.chunks_exact_mut(3).zip(row.chunks_exact(3)) {
                    for c in 0..3 {
                        d[c] = f32::from(s[c]) * scale[c] + bias[c];
                    }
                }
            }
            Layout::Nchw => {
                for (x, s) in row.chunks_exact(3).enumerate() {
                    for c in 0..3 {
                        out[c * plane + y * w + x] = f32::from(s[c]) * scale[c] + bias[c];
                    }
                }
            }
        }
    }
}

/// Model output to 0..1 foreground probability, in place.
pub fn to_probability(mask: &mut [f32], kind: OutputKind) {
    match kind {
        OutputKind::Probability => mask.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0)),
        OutputKind::MinMax => {
            let (lo, hi) = mask
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                    (lo.min(v), hi.max(v))
                });
            let range = hi - lo;
            if range > f32::EPSILON {
                mask.iter_mut().for_each(|v| *v = (*v - lo) / range);
            } else {
                mask.fill(0.0);
            }
        }
        OutputKind::Logits => mask.iter_mut().for_each(|v| *v = 1.0 / (1.0 + (-*v).exp())),
    }
}

/// The JSON file that describes a model file's pre- and post-processing:
/// `person.onnx` -> `person.json`.
pub fn sidecar_path(model: &Path) -> PathBuf {
    model.with_extension("json")
}

/// `spec` with what the JSON beside `model` says, if there is one:
/// ```json
/// {"normalize": {"scale": 255, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
///  "output": "probability", "input_size": [320, 320]}
/// ```
/// `scale` is 255 or `"max"` (divide by the frame's largest value); `output` is
/// `probability`, `logits` or `min-max`; `input_size` (width, height) is used
/// where the model leaves its size dynamic. Every key is optional; unknown
/// keys and bad values are errors naming them.
pub fn with_sidecar(mut spec: ModelSpec, model: &Path) -> Result<ModelSpec, String> {
    let path = sidecar_path(model);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(spec),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let fail = |why: String| format!("{}: {why}", path.display());
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| fail(format!("invalid JSON: {e}")))?;
    let root = v
        .as_object()
        .ok_or_else(|| fail("expected a JSON object".into()))?;
    let known =
        |map: &serde_json::Map<String, serde_json::Value>, keys: &[&str], what: &str| match map
            .keys()
            .find(|k| !keys.contains(&k.as_str()))
        {
            Some(k) => Err(fail(format!(
                "unknown key '{k}' in {what} (known: {})",
                keys.join(", ")
            ))),
            None => Ok(()),
        };
    known(
        root,
        &["normalize", "output", "input_size"],
        "the model description",
    )?;
    let triple = |v: &serde_json::Value, what: &str| -> Result<[f32; 3], String> {
        let a = v
            .as_array()
            .filter(|a| a.len() == 3)
            .and_then(|a| {
                let f: Vec<f32> = a
                    .iter()
                    .filter_map(|x| x.as_f64())
                    .map(|x| x as f32)
                    .collect();
                <[f32; 3]>::try_from(f).ok()
            })
            .ok_or_else(|| fail(format!("{what} must be three numbers, found {v}")))?;
        Ok(a)
    };
    if let Some(n) = root.get("normalize") {
        let n = n
            .as_object()
            .ok_or_else(|| fail(format!("normalize must be an object, found {n}")))?;
        known(n, &["scale", "mean", "std"], "normalize")?;
        let mut norm = Normalize::UNIT;
        match n.get("scale") {
            None => {}
            Some(serde_json::Value::String(s)) if s == "max" => norm.divide_by_max = true,
            Some(x) if x.as_f64() == Some(255.0) => {}
            Some(x) => {
                return Err(fail(format!(
                    "normalize.scale must be 255 or \"max\", found {x}"
                )));
            }
        }
        if let Some(m) = n.get("mean") {
            norm.mean = triple(m, "normalize.mean")?;
        }
        if let Some(sd) = n.get("std") {
            norm.std = triple(sd, "normalize.std")?;
            if norm.std.contains(&0.0) {
                return Err(fail("normalize.std must not be 0".into()));
            }
        }
        spec.normalize = norm;
    }
    if let Some(o) = root.get("output") {
        spec.output = match o.as_str() {
            Some("probability") => OutputKind::Probability,
            Some("logits") => OutputKind::Logits,
            Some("min-max") => OutputKind::MinMax,
            _ => {
                return Err(fail(format!(
                    "output must be \"probability\", \"logits\" or \"min-max\", found {o}"
                )));
            }
        };
    }
    if let Some(sz) = root.get("input_size") {
        let wh = sz
            .as_array()
            .filter(|a| a.len() == 2)
            .map(|a| a.iter().filter_map(|x| x.as_u64()).collect::<Vec<_>>())
            .filter(|a| a.len() == 2 && a.iter().all(|&x| (1..=8192).contains(&x)))
            .ok_or_else(|| {
                fail(format!(
                    "input_size must be [width, height] within 1..8192, found {sz}"
                ))
            })?;
        spec.width = wh[0] as u32;
        spec.height = wh[1] as u32;
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sidecar(json: &str) -> Result<ModelSpec, String> {
        let dir =
            std::env::temp_dir().join(format!("rbv-sidecar-{}-{}", std::process::id(), json.len()));
        std::fs::create_dir_all(&dir).unwrap();
        let model = dir.join("m.onnx");
        std::fs::write(sidecar_path(&model), json).unwrap();
        let r = with_sidecar(HUMAN_SQUARE, &model);
        std::fs::remove_dir_all(&dir).unwrap();
        r
    }

    #[test]
    fn sidecar_sets_normalisation_output_and_size() {
        let s = sidecar(
            r#"{"normalize":{"scale":"max","mean":[0.5,0.5,0.5],"std":[0.25,0.25,0.25]},
                "output":"logits","input_size":[512,288]}"#,
        )
        .unwrap();
        assert!(s.normalize.divide_by_max);
        assert_eq!(s.normalize.mean, [0.5; 3]);
        assert_eq!(s.normalize.std, [0.25; 3]);
        assert_eq!(s.output, OutputKind::Logits);
        assert_eq!((s.width, s.height), (512, 288));
        // Nothing beside the model: the spec as it was.
        let none = with_sidecar(LIGHT, Path::new("/nonexistent/x.onnx")).unwrap();
        assert_eq!(none, LIGHT);
        assert_eq!(sidecar("{}").unwrap(), HUMAN_SQUARE);
    }

    #[test]
    fn bad_sidecars_name_the_problem() {
        for (json, needle) in [
            ("{", "invalid JSON"),
            (r#"{"outputs":"logits"}"#, "'outputs'"),
            (r#"{"output":"softmax"}"#, "softmax"),
            (r#"{"normalize":{"scale":1}}"#, "normalize.scale"),
            (r#"{"normalize":{"mean":[1,2]}}"#, "normalize.mean"),
            (r#"{"normalize":{"std":[1,0,1]}}"#, "must not be 0"),
            (r#"{"input_size":[0,10]}"#, "input_size"),
        ] {
            let err = sidecar(json).unwrap_err();
            assert!(
                err.contains(needle) && err.contains("m.json"),
                "{json}: {err}"
            );
        }
    }

    #[test]
    fn logits_become_probabilities() {
        let mut m = [0.0f32, 10.0, -10.0];
        to_probability(&mut m, OutputKind::Logits);
        assert!(
            (m[0] - 0.5).abs() < 1e-6 && m[1] > 0.9999 && m[2] < 1e-4,
            "{m:?}"
        );
    }

    #[test]
    fn nhwc_unit_normalisation() {
        let rgb = [0u8, 255, 51, 102, 0, 255, /* row pad */ 9, 9];
        let mut out = vec![0.0; 6];
        fill_input(&mut out, &rgb, 8, 2, 1, Layout::Nhwc, &Normalize::UNIT);
        let want = [0.0, 1.0, 0.2, 0.4, 0.0, 1.0];
        assert!(
            out.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6),
            "{out:?}"
        );
    }

    #[test]
    fn nchw_rembg_normalisation_divides_by_frame_max() {
        // max is 200, so 200 -> 1.0 and 100 -> 0.5 before mean/std.
        let rgb = [200u8, 100, 0, 100, 200, 0];
        let mut out = vec![0.0; 6];
        fill_input(&mut out, &rgb, 6, 2, 1, Layout::Nchw, &Normalize::REMBG);
        let n = Normalize::REMBG;
        let want = [
            (1.0 - n.mean[0]) / n.std[0],
            (0.5 - n.mean[0]) / n.std[0],
            (0.5 - n.mean[1]) / n.std[1],
            (1.0 - n.mean[1]) / n.std[1],
            (0.0 - n.mean[2]) / n.std[2],
            (0.0 - n.mean[2]) / n.std[2],
        ];
        for (a, b) in out.iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{out:?} vs {want:?}");
        }
    }

    #[test]
    fn min_max_stretches_and_handles_flat_output() {
        let mut m = vec![-2.0, 0.0, 2.0];
        to_probability(&mut m, OutputKind::MinMax);
        assert_eq!(m, vec![0.0, 0.5, 1.0]);
        let mut flat = vec![3.0; 4];
        to_probability(&mut flat, OutputKind::MinMax);
        assert_eq!(flat, vec![0.0; 4]);
        let mut p = vec![-0.1, 0.3, 1.2];
        to_probability(&mut p, OutputKind::Probability);
        assert_eq!(p, vec![0.0, 0.3, 1.0]);
    }

    #[test]
    fn mask_shapes() {
        assert_eq!(mask_size(&[1, 1, 320, 300]), Some((300, 320)));
        assert_eq!(mask_size(&[1, 144, 256, 1]), Some((256, 144)));
        assert_eq!(mask_size(&[1, 2, 320, 320]), None);
        assert_eq!(mask_size(&[1, 3, 8, 8, 1]), None);
    }
}
