// SPDX-License-Identifier: MPL-2.0
//! `backend=local`: the frame path. Each frame's model input is made and
//! run (here in `mode=sync`, on the inference thread in `mode=async`), its
//! mask becomes the foreground's alpha, and the foreground is laid on the
//! output. No element in here: it works on plain video frames, so it is
//! tested on frames without a pipeline (`tests` below).

mod composite;
mod correct;
mod frames;
mod gate;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gst_video::prelude::*;
use rbv_core::matte::Smoother;
use rbv_core::model::{ModelSpec, Segmenter};

use super::settings::Look;
use super::worker::{self, Worker};
use super::{BeforeFirstMask, Mode};
use composite::Composite;
use correct::Corrector;
use frames::{Frames, foreground, model_input};
pub use gate::{LocalGate, REFRESH};

/// Frames at least this wide (relative to their height) count as wide for
/// `human-variant=auto`.
const WIDE_ASPECT: f64 = 1.6;
/// before-first-mask=wait: the longest a frame waits for the first mask.
const FIRST_MASK_WAIT: Duration = Duration::from_secs(30);

/// Why a frame could not be made: what failed, and the detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    pub what: &'static str,
    pub detail: String,
}

impl FrameError {
    pub fn new(what: &'static str, detail: impl Into<String>) -> FrameError {
        FrameError {
            what,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.detail)
    }
}

/// What one frame gave, for the statistics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Processed {
    /// A new inference finished for this frame (sync: its own; async: the
    /// newest one, the first time it is applied), and how long it took.
    pub inference: Option<Duration>,
    /// Frames between the applied mask's frame and this one; `None` before
    /// the model's first mask (async), when nothing or only the correction's
    /// human mask is applied.
    pub mask_age: Option<u32>,
}

/// The local frame path, from the start to the stop.
pub struct LocalPath {
    /// Shared with the async worker, which locks it while it infers.
    segmenters: Arc<Mutex<Vec<Segmenter>>>,
    /// Each segmenter's spec and input size, readable without the lock.
    models: Vec<(ModelSpec, (u32, u32))>,
    active: usize,
    /// `mode=async`: the inference thread.
    worker: Option<Worker>,
    /// `mode=async` with a heavy model: its stale mask corrected each frame.
    corrector: Option<Corrector>,
    /// Frames seen since the start, to age async masks by.
    frame_no: u64,
    /// The async worker must reset its smoother with the next frame.
    worker_reset: bool,
    /// The mask applied to the current frame.
    mask: Vec<f32>,
    frames: Option<Frames>,
    smoother: Smoother,
    composite: Composite,
    /// The detector's step (`detector=true`): what to keep.
    gate: Option<LocalGate>,
    /// The stream comes from a live source: nothing waits for the detector.
    live: bool,
    /// The previous frame's timestamp and duration, to tell a frame that
    /// follows a few dropped ones (QoS) from a new start.
    last_pts: Option<(gst::ClockTime, gst::ClockTime)>,
}

/// A DISCONT frame whose timestamp lies this far or less after the
/// previous frame's end follows dropped frames (QoS, a lost packet): the
/// temporal state goes on. Any other DISCONT starts it anew.
const DROPPED_FRAMES_GAP: gst::ClockTime = gst::ClockTime::from_seconds(1);

/// Whether `buffer` starts the stream anew (see [`DROPPED_FRAMES_GAP`]):
/// a DISCONT whose timestamp is not a short step forward from the frame
/// before. A short step forward is data lost on the way (upstream QoS drops
/// mark the next frame DISCONT): the picture goes on, and redoing the
/// temporal state's work there would only make the next frame late too.
fn starts_anew(buffer: &gst::BufferRef, last: Option<(gst::ClockTime, gst::ClockTime)>) -> bool {
    if !buffer.flags().contains(gst::BufferFlags::DISCONT) {
        return false;
    }
    let (Some(pts), Some((prev, duration))) = (buffer.pts(), last) else {
        return true;
    };
    let expected = prev + duration;
    // At least half a frame missing, and no more than the gap.
    let half = duration / 2;
    let skipped = pts >= expected + half;
    !(skipped && pts <= expected + DROPPED_FRAMES_GAP)
}

/// A frame's duration: its own, else the stream's rate's.
fn frame_duration(buffer: &gst::BufferRef, fps: gst::Fraction) -> gst::ClockTime {
    buffer.duration().unwrap_or_else(|| {
        if fps.numer() > 0 && fps.denom() > 0 {
            gst::ClockTime::SECOND
                .mul_div_round(fps.denom() as u64, fps.numer() as u64)
                .unwrap_or(gst::ClockTime::ZERO)
        } else {
            gst::ClockTime::ZERO
        }
    })
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl LocalPath {
    /// The path over `segmenters` (for `human-variant=auto` the square and
    /// the landscape model; else one), with its inference thread in
    /// `mode=async`.
    pub fn new(segmenters: Vec<Segmenter>, mode: Mode) -> std::io::Result<LocalPath> {
        let models = segmenters
            .iter()
            .map(|seg| (*seg.spec(), seg.input_size()))
            .collect();
        let heavy = !segmenters
            .first()
            .is_some_and(|s| s.spec().name.starts_with("human"));
        let corrector = match (mode, segmenters.first()) {
            (Mode::Async, Some(seg)) if heavy => {
                Some(Corrector::new(seg).map_err(std::io::Error::other)?)
            }
            _ => None,
        };
        let segmenters = Arc::new(Mutex::new(segmenters));
        let worker = match mode {
            Mode::Sync => None,
            Mode::Async => Some(Worker::start(segmenters.clone())?),
        };
        Ok(LocalPath {
            segmenters,
            models,
            active: 0,
            worker,
            corrector,
            frame_no: 0,
            worker_reset: true,
            mask: Vec::new(),
            frames: None,
            smoother: Smoother::new(),
            composite: Composite::default(),
            gate: None,
            live: false,
            last_pts: None,
        })
    }

    /// Adds the detector's step: the mask is kept only in and around the
    /// regions of what `text-prompt` asks for (see `gate.rs`).
    pub fn set_detector(&mut self, gate: LocalGate) {
        self.gate = Some(gate);
    }

    /// New caps: the model for the frame's shape, and the buffers for the
    /// sizes and formats. Returns the model's name.
    pub fn set_caps(
        &mut self,
        in_info: &gst_video::VideoInfo,
        out_info: &gst_video::VideoInfo,
    ) -> Result<&'static str, String> {
        let wide = f64::from(in_info.width()) >= WIDE_ASPECT * f64::from(in_info.height());
        self.active = if self.models.len() > 1 && wide { 1 } else { 0 };
        let (spec, input_size) = self.models[self.active];
        self.frames = Some(Frames::new(input_size, in_info, out_info)?);
        if let Some(c) = self.corrector.as_mut() {
            c.set_caps(in_info, wide)?;
        }
        if let Some(gate) = &mut self.gate {
            gate.set_caps(in_info)?;
        }
        self.flush();
        Ok(spec.name)
    }

    /// Whether the stream comes from a live source (the element asks
    /// upstream): the detector is then never waited for.
    pub fn set_live(&mut self, live: bool) {
        self.live = live;
    }

    /// Detections handed to the detector since the start.
    pub fn detections(&self) -> Option<u64> {
        self.gate.as_ref().map(LocalGate::detections)
    }

    /// Whether caps were set: frames can be processed.
    pub fn negotiated(&self) -> bool {
        self.frames.is_some()
    }

    /// The model that runs for the current caps.
    pub fn model_name(&self) -> &'static str {
        self.models[self.active].0.name
    }

    /// Whether the model input is sampled in two stages (for the log).
    pub fn staged(&self) -> bool {
        self.frames.as_ref().is_some_and(Frames::staged)
    }

    /// Whether inference runs on its own thread (`mode=async`).
    #[cfg(test)]
    pub fn is_async(&self) -> bool {
        self.worker.is_some()
    }

    /// A flush: temporal state starts anew with the next frame.
    pub fn flush(&mut self) {
        self.last_pts = None;
        self.smoother.reset();
        self.composite.forget_ahead();
        self.worker_reset = true;
        if let Some(c) = self.corrector.as_mut() {
            c.reset();
        }
        if let Some(worker) = &self.worker {
            worker.clear();
        }
        if let Some(gate) = &mut self.gate {
            gate.flush();
        }
    }

    /// One frame: model input, inference, matte, composite.
    pub fn process(
        &mut self,
        look: &Look,
        inframe: &gst_video::VideoFrameRef<&gst::BufferRef>,
        outframe: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
    ) -> Result<Processed, FrameError> {
        let LocalPath {
            segmenters,
            active,
            worker,
            corrector,
            frame_no,
            worker_reset,
            mask,
            frames,
            smoother,
            composite,
            gate,
            live,
            last_pts,
            ..
        } = self;
        let frames = frames
            .as_mut()
            .ok_or_else(|| FrameError::new("not negotiated", "no caps were set"))?;
        let fail = FrameError::new;

        // 1. The model's input (sampled straight from the incoming format,
        // on all cores) and inference, on a second thread while this one
        // converts the input to the foreground's pixels: the largest costs,
        // side by side on two cores (benches/profile.rs).
        let in_place = composite::in_place(frames, look, outframe.info());
        let model_size = (frames.model_info.width(), frames.model_info.height());
        let fps = inframe.info().fps();
        let discont = starts_anew(inframe.buffer(), *last_pts);
        *last_pts = inframe
            .buffer()
            .pts()
            .map(|pts| (pts, frame_duration(inframe.buffer(), fps)));
        let this_frame = *frame_no;
        *frame_no += 1;
        let (mask_size, processed) = match worker {
            None => {
                // Sync: this frame's own mask.
                let Frames {
                    to_model,
                    staged,
                    model_info,
                    model_buffer,
                    to_fg,
                    fast,
                    fg_info,
                    fg_buffer,
                    alpha_offset,
                    ..
                } = frames;
                // A sampled model input first, in bands on all cores (the
                // inference waits for it; nothing would run beside it).
                // GStreamer's converter, where the sampler does not apply,
                // runs on one thread: beside the conversion, as before.
                let sample_first = staged.is_some();
                if sample_first {
                    model_input(
                        staged,
                        to_model,
                        model_buffer,
                        model_info,
                        inframe,
                        rayon::current_num_threads(),
                    )
                    .map_err(|e| fail("cannot make the model input", e))?;
                }
                // On this thread only: the other core runs the model. A
                // blurred background needs only the foreground's colours,
                // so it is made here too, beside the inference.
                let canvas = (outframe.width(), outframe.height());
                let out_format = outframe.format();
                let convert = || {
                    let ahead = if in_place {
                        foreground(fast.as_ref(), to_fg, inframe, outframe, 1)
                            .map_err(|e| fail("cannot convert the foreground", e))?;
                        composite.background_ahead(
                            look,
                            *alpha_offset,
                            out_format,
                            canvas,
                            outframe,
                        )
                    } else {
                        let mut fg = gst_video::VideoFrameRef::from_buffer_ref_writable(
                            fg_buffer.make_mut(),
                            fg_info,
                        )
                        .map_err(|e| fail("cannot map the foreground", e.to_string()))?;
                        foreground(fast.as_ref(), to_fg, inframe, &mut fg, 1)
                            .map_err(|e| fail("cannot convert the foreground", e))?;
                        composite.background_ahead(look, *alpha_offset, out_format, canvas, &fg)
                    };
                    ahead.map_err(|e| fail("compositing failed", e))
                };
                let (inference, converted) = rayon::join(
                    || {
                        if !sample_first {
                            model_input(staged, to_model, model_buffer, model_info, inframe, 1)?;
                        }
                        let model = gst_video::VideoFrameRef::from_buffer_ref_readable(
                            model_buffer.as_ref(),
                            model_info,
                        )
                        .map_err(|e| e.to_string())?;
                        let stride = model.plane_stride()[0] as usize;
                        let rgb = model.plane_data(0).map_err(|e| e.to_string())?;
                        let t0 = Instant::now();
                        let mut segs = lock(segmenters);
                        let segmenter = segs
                            .get_mut(*active)
                            .ok_or_else(|| "no model for these caps".to_string())?;
                        let (raw, mw, mh) = segmenter.run(rgb, stride)?;
                        if discont {
                            smoother.reset();
                        }
                        let smoothed = smoother.apply(
                            raw,
                            (mw, mh),
                            rgb,
                            stride,
                            model_size,
                            look.smoothing as f32,
                            look.smoothing_threshold,
                        );
                        mask.clear();
                        mask.extend_from_slice(smoothed);
                        Ok::<_, String>(((mw, mh), t0.elapsed()))
                    },
                    convert,
                );
                converted?;
                let (size, took) = inference.map_err(|e| fail("inference failed", e))?;
                (
                    size,
                    Processed {
                        inference: Some(took),
                        mask_age: Some(0),
                    },
                )
            }
            Some(worker) => {
                // Async: hand this frame to the worker when it is free,
                // apply the newest mask (corrected where the picture moved).
                // The human model runs only while the correction is on (a
                // live property); off, what it kept is dropped, so turning
                // it on again never compares with an old frame.
                let correcting = look.async_correction;
                if let Some(c) = corrector.as_mut() {
                    if correcting {
                        c.observe(inframe)
                            .map_err(|e| fail("inference failed", e))?;
                    } else {
                        c.reset();
                    }
                }
                if worker.idle() {
                    model_input(
                        &mut frames.staged,
                        &frames.to_model,
                        &mut frames.model_buffer,
                        &frames.model_info,
                        inframe,
                        1,
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
                        rgb: rgb
                            [..stride * (model_size.1 as usize - 1) + model_size.0 as usize * 3]
                            .to_vec(),
                        stride,
                        active: *active,
                        frame: this_frame,
                        model_size,
                        smoothing: look.smoothing as f32,
                        smoothing_threshold: look.smoothing_threshold,
                        reset: std::mem::take(worker_reset) || discont,
                    });
                    if let Some(c) = corrector.as_mut().filter(|_| correcting) {
                        c.handed(this_frame);
                    }
                }
                // Nothing else runs now: the conversion takes both cores.
                let bands = rayon::current_num_threads();
                let fast = frames.fast.as_ref();
                if in_place {
                    foreground(fast, &frames.to_fg, inframe, outframe, bands)
                        .map_err(|e| fail("cannot convert the foreground", e))?;
                } else {
                    let mut fg = gst_video::VideoFrameRef::from_buffer_ref_writable(
                        frames.fg_buffer.make_mut(),
                        &frames.fg_info,
                    )
                    .map_err(|e| fail("cannot map the foreground", e.to_string()))?;
                    foreground(fast, &frames.to_fg, inframe, &mut fg, bands)
                        .map_err(|e| fail("cannot convert the foreground", e))?;
                }
                if look.before_first_mask == BeforeFirstMask::Wait {
                    // Bounded by one inference (the worker has this frame
                    // or an earlier one); at once once there is a mask.
                    worker.wait_latest(FIRST_MASK_WAIT);
                }
                let latest = worker
                    .with_latest(|latest| match latest {
                        Some(out) if out.active == *active => {
                            mask.clear();
                            mask.extend_from_slice(&out.mask);
                            let fresh = std::mem::take(&mut out.fresh);
                            Some((out.size, out.frame, out.took, fresh))
                        }
                        _ => None,
                    })
                    .map_err(|e| fail("inference failed", e))?;
                let correction = corrector.as_mut().filter(|_| correcting);
                match latest {
                    Some((size, frame, took, fresh)) => {
                        if let Some(c) = correction {
                            c.correct(mask, size, frame);
                        }
                        (
                            size,
                            Processed {
                                inference: fresh.then_some(took),
                                mask_age: Some((this_frame - frame).min(u64::from(u32::MAX)) as u32),
                            },
                        )
                    }
                    None if correction.is_some()
                        && look.before_first_mask == BeforeFirstMask::Auto =>
                    {
                        // Before the first heavy mask: the human model's.
                        let size = correction.map_or(model_size, |c| c.alone(mask));
                        (
                            size,
                            Processed {
                                inference: None,
                                mask_age: None,
                            },
                        )
                    }
                    None => {
                        // No mask yet: nothing is kept until the first, or
                        // all of the frame (before-first-mask=input).
                        let fill = match look.before_first_mask {
                            BeforeFirstMask::Input => 1.0,
                            _ => 0.0,
                        };
                        mask.clear();
                        mask.resize((model_size.0 * model_size.1) as usize, fill);
                        (
                            model_size,
                            Processed {
                                inference: None,
                                mask_age: None,
                            },
                        )
                    }
                }
            }
        };

        // What to keep: the detector's regions gate the mask (gate.rs).
        // (Not on a frame let through whole before the first mask.)
        let whole =
            processed.mask_age.is_none() && look.before_first_mask == BeforeFirstMask::Input;
        if let Some(gate) = gate.as_mut().filter(|_| !whole) {
            // Sync: this frame's model input is at hand, and on the mask's
            // grid for the bundled models: the motion map reads it.
            let model = worker
                .is_none()
                .then(|| {
                    gst_video::VideoFrameRef::from_buffer_ref_readable(
                        frames.model_buffer.as_ref(),
                        &frames.model_info,
                    )
                    .ok()
                })
                .flatten();
            let model_rgb = model.as_ref().and_then(|m| {
                let stride = m.plane_stride()[0] as usize;
                let size = (m.width() as usize, m.height() as usize);
                m.plane_data(0).ok().map(|rgb| (rgb, stride, size))
            });
            let frame = gate::Frame {
                inframe,
                number: this_frame,
                discont,
                live: *live,
                motion_threshold: rbv_core::detect::MOTION_THRESHOLD,
                model_rgb,
            };
            gate.apply(&look.detect, &frame, mask, mask_size)?;
        }

        // 2. The foreground (input pixels with the upscaled matte as alpha),
        // then the background under it on the canvas.
        composite.run(frames, look, mask, mask_size, outframe)?;
        Ok(processed)
    }
}
