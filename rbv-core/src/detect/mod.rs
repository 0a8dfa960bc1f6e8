// SPDX-License-Identifier: MPL-2.0
//! The class-aware detector: YOLOv5s-seg (COCO, 80 classes, an instance
//! mask per detection) on ONNX Runtime. It tells the matting models what to
//! keep: [`Gate`] turns its detections of the classes a text prompt asks for
//! ([`crate::prompt::select`]) into the region the matting model's soft
//! alpha is kept in.
//!
//! No GStreamer here: callers hand over packed RGB at the letterbox's
//! placed size ([`Letterbox::fit`]); the model input is any multiple of 32
//! on both sides (the converter, `setup/yolo2onnx.py`, leaves H and W
//! dynamic).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ort::logging::LogLevel;
use ort::session::{RunOptions, Session};
use ort::value::{TensorElementType, TensorRef, ValueType};

use crate::model::{Provider, RunnerOptions, shared_session};
use crate::paths;

mod gate;
mod motion;
mod post;
#[cfg(test)]
mod tests;
pub mod worn;

pub use gate::{BLEND_FRAMES, Gate, GateParams, Regions};
pub use motion::{MOTION_THRESHOLD, Motion};
pub use post::{
    Detection, Letterbox, MaskScratch, NUM_CLASSES, NUM_COEFS, PAD_VALUE, Protos, ROW, STRIDE,
    detections, fill_input, resize_rgb,
};

/// The detector's file in the model directory (fetched and converted by
/// set-up; GPL-3.0 weights, never bundled).
pub const FILE: &str = "yolov5s-seg.onnx";

/// The COCO class names, in the model's order (its `names` metadata).
pub const COCO: [&str; NUM_CLASSES] = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
];

/// The COCO class of people.
pub const PERSON: usize = 0;

/// One frame's detections and the prototype masks their masks are made of.
#[derive(Debug, Clone)]
pub struct Detections {
    /// Best first.
    pub list: Vec<Detection>,
    pub protos: Protos,
}

/// A loaded detector, ready to run frame after frame.
pub struct Detector {
    session: Arc<Mutex<Session>>,
    provider: Provider,
    path: PathBuf,
    /// Input width and height when the file fixes them.
    fixed: Option<(u32, u32)>,
    input: Vec<f32>,
    /// Its runs' options: a [`Stopper`] ends one in progress.
    run_options: Arc<RunOptions>,
}

/// Ends a detector's run in progress (a stop): ONNX Runtime leaves it at
/// the next node, and the run returns an error.
#[derive(Clone)]
pub struct Stopper(Arc<RunOptions>);

impl std::fmt::Debug for Stopper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stopper")
    }
}

impl Stopper {
    pub fn stop(&self) {
        let _ = self.0.terminate();
    }
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("path", &self.path)
            .field("fixed", &self.fixed)
            .finish_non_exhaustive()
    }
}

/// The bundled detector's path in the model directory.
pub fn default_path() -> PathBuf {
    paths::model_dir().join(FILE)
}

fn fixed(d: i64) -> Option<u32> {
    u32::try_from(d).ok().filter(|&d| d > 0)
}

impl Detector {
    /// Loads `path` (or the set-up's file) and checks that it is a
    /// YOLOv5-seg model: one float input `[1,3,H,W]`, outputs `[1,N,117]`
    /// and `[1,32,H/4,W/4]`, and (when the file names its classes) COCO's
    /// 80 classes in COCO's order.
    pub fn new(path: Option<&Path>, options: &RunnerOptions) -> Result<Detector, String> {
        let path = path.map(Path::to_path_buf).unwrap_or_else(default_path);
        if !path.is_file() {
            return Err(format!(
                "detector model {} not found (run setup/setup.sh, or set detector=false)",
                path.display()
            ));
        }
        let (session, _, provider) = shared_session(&path, options, true)?;
        let guard = session.lock().unwrap_or_else(|e| e.into_inner());
        let bad = |why: String| format!("detector model {}: {why}", path.display());
        let fixed = match guard.inputs() {
            [input] => match input.dtype() {
                ValueType::Tensor {
                    ty: TensorElementType::Float32,
                    shape,
                    ..
                } if shape.len() == 4 && shape[1] == 3 => {
                    match (fixed(shape[3]), fixed(shape[2])) {
                        (Some(w), Some(h)) if w % STRIDE == 0 && h % STRIDE == 0 => Some((w, h)),
                        (Some(w), Some(h)) => {
                            return Err(bad(format!(
                                "input size {w}x{h} is not a multiple of {STRIDE}"
                            )));
                        }
                        _ => None,
                    }
                }
                other => {
                    return Err(bad(format!(
                        "input '{}' is {other}: expected a float32 image [1,3,H,W]",
                        input.name()
                    )));
                }
            },
            inputs => {
                return Err(bad(format!(
                    "{} inputs: a YOLOv5-seg model takes one image",
                    inputs.len()
                )));
            }
        };
        let outputs = guard.outputs();
        let rank = |i: usize| match outputs.get(i).map(|o| o.dtype()) {
            Some(ValueType::Tensor {
                ty: TensorElementType::Float32,
                shape,
                ..
            }) => Some(shape.clone()),
            _ => None,
        };
        match (rank(0), rank(1)) {
            (Some(p), Some(m))
                if outputs.len() == 2
                    && p.len() == 3
                    && (p[2] == ROW as i64 || p[2] < 0)
                    && m.len() == 4
                    && (m[1] == NUM_COEFS as i64 || m[1] < 0) => {}
            _ => {
                return Err(bad(format!(
                    "outputs {:?}: expected detections [1,N,{ROW}] and prototypes \
                     [1,{NUM_COEFS},H/4,W/4] (YOLOv5-seg, 80 classes)",
                    outputs
                        .iter()
                        .map(|o| format!("{} {}", o.name(), o.dtype()))
                        .collect::<Vec<_>>()
                )));
            }
        }
        if let Some(names) = guard.metadata().ok().and_then(|m| m.custom("names")) {
            let names: Vec<String> = serde_json::from_str(&names)
                .map_err(|e| bad(format!("its class names are no JSON list: {e}")))?;
            if names.iter().map(String::as_str).ne(COCO) {
                return Err(bad(format!(
                    "its classes are not COCO's 80 in order (found {} names, first {:?})",
                    names.len(),
                    names.first()
                )));
            }
        }
        drop(guard);
        let mut run_options = RunOptions::new().map_err(|e| e.to_string())?;
        // A run ended by its Stopper is no error worth a line on stderr;
        // a real failure comes back as the run's result.
        run_options
            .set_log_level(LogLevel::Fatal)
            .map_err(|e| e.to_string())?;
        Ok(Detector {
            session,
            provider,
            path,
            fixed,
            input: Vec::new(),
            run_options: Arc::new(run_options),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The execution provider it runs on (never `Auto`).
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// What ends a run of this detector in progress, from another thread.
    pub fn stopper(&self) -> Stopper {
        Stopper(self.run_options.clone())
    }

    /// The input size the file fixes, if it does.
    pub fn fixed_input(&self) -> Option<(u32, u32)> {
        self.fixed
    }

    /// The letterbox for an image of `image` size: fitted to `longest`
    /// pixels on its longer side, or to the file's fixed input size.
    pub fn letterbox(&self, image: (u32, u32), longest: u32) -> Letterbox {
        match self.fixed {
            Some(size) => Letterbox::new(image, size),
            None => Letterbox::fit(image, longest),
        }
    }

    /// Runs the model on packed RGB of `lb`'s placed size (`stride` bytes
    /// per row): the detections of the `wanted` classes (all when `None`)
    /// whose score passes `conf`, with the prototype masks.
    pub fn run(
        &mut self,
        rgb: &[u8],
        stride: usize,
        lb: &Letterbox,
        conf: f32,
        wanted: Option<&[bool; NUM_CLASSES]>,
    ) -> Result<Detections, String> {
        let (pw, ph) = (lb.placed.2 as usize, lb.placed.3 as usize);
        let (w, h) = (lb.input.0 as usize, lb.input.1 as usize);
        if w == 0 || h == 0 || w % STRIDE as usize != 0 || h % STRIDE as usize != 0 {
            return Err(format!(
                "detector input {w}x{h} is not a multiple of {STRIDE}"
            ));
        }
        if self.fixed.is_some_and(|f| f != lb.input) {
            return Err(format!(
                "detector input {w}x{h}: the model takes {:?} only",
                self.fixed
            ));
        }
        if stride < pw * 3 || rgb.len() < stride * ph.saturating_sub(1) + pw * 3 {
            return Err(format!(
                "detector image is {} bytes with stride {stride}; {pw}x{ph} RGB needs more",
                rgb.len()
            ));
        }
        fill_input(&mut self.input, lb, rgb, stride);
        let shape = [1i64, 3, h as i64, w as i64];
        let tensor =
            TensorRef::from_array_view((shape, &self.input[..])).map_err(|e| e.to_string())?;
        let mut session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        let outputs = session
            .run_with_options(ort::inputs!["images" => tensor], &*self.run_options)
            .map_err(|e| format!("detector {} failed: {e}", self.path.display()))?;
        let bad = |what: &str, shape: &[i64]| {
            format!(
                "detector {} returned {what} of shape {shape:?}",
                self.path.display()
            )
        };
        let (pshape, pred) = outputs[0]
            .try_extract_tensor::<f32>()
            .map_err(|e| e.to_string())?;
        if pshape.len() != 3 || pshape[2] != ROW as i64 {
            return Err(bad("detections", pshape));
        }
        let list = detections(pred, lb, conf, wanted);
        let (mshape, protos) = outputs[1]
            .try_extract_tensor::<f32>()
            .map_err(|e| e.to_string())?;
        let (mw, mh) = match mshape[..] {
            [1, c, mh, mw] if c == NUM_COEFS as i64 && mh > 0 && mw > 0 => {
                (mw as usize, mh as usize)
            }
            _ => return Err(bad("prototypes", mshape)),
        };
        let protos = Protos {
            data: if list.is_empty() {
                Vec::new()
            } else {
                protos[..NUM_COEFS * mw * mh].to_vec()
            },
            width: mw,
            height: mh,
            letterbox: *lb,
        };
        Ok(Detections { list, protos })
    }
}
