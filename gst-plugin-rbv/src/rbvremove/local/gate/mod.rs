// SPDX-License-Identifier: MPL-2.0
//! The frame path's detector step: the detector's regions of what
//! `text-prompt` asks for, and the gate that keeps the model's mask in them
//! (`rbv_core::detect::Gate`). Called by `LocalPath::process` between the
//! mask and the composite; without the detector (`detector=false`) it is
//! never made and the frame path is what it was.
//!
//! The detector always runs on its own thread, off the frame's path. A
//! detection starts (see `Kind`): on the first frame after a start, a flush,
//! a discontinuity or a new prompt, which waits for it (a photo is gated
//! like a frame of a clip); when the picture moves far from every region
//! (someone coming in, a cut), at most once a `detector-interval`, applied
//! a few frames later; and as a refresh every `REFRESH` intervals of the
//! stream's own timeline (its timestamps at its rate), applied an interval
//! later. In `mode=sync` the frame a detection is applied from never
//! depends on timing: the detector has those frames to finish beside the
//! frames, and a frame waits only when it is later than that. So a file's
//! output does not depend on timing, and a run over a segment of a file
//! lines up with one over the whole after a warm-up
//! (`SEGMENT_WARM_UP_FRAMES`).
//!
//! Live sources (the element learns it from the latency query) and
//! `mode=async` never wait: their regions are applied when they come, and
//! until the first come the mask passes ungated.
//!
//! Between detections the regions stay where they were found and the
//! picture decides the rest (`rbv_core::detect::Motion`): see the gate.

use std::sync::Arc;
use std::time::Duration;

use gst_video::prelude::*;
use rbv_core::detect::{
    Detector, Gate, GateParams, Letterbox, Motion, NUM_CLASSES, PERSON, Regions,
};
use rbv_core::prompt::{Keeps, Selection};
use rbv_core::sample::Sampler;

#[cfg(test)]
mod tests;

use super::FrameError;
use crate::rbvremove::Mode;
use crate::rbvremove::detector::{self, DetectorThread, Output};
use crate::rbvremove::settings::DetectLook;

/// The longest a frame waits for a detection before the stream fails.
const WAIT_LIMIT: Duration = Duration::from_secs(120);
/// A refresh every this many `detector-interval`s of the timeline, whatever
/// moved (a person the detector missed, a region gone stale).
pub const REFRESH: i64 = 8;
/// A share of the grid that moved on one frame far from every region (a
/// person coming in, a cut): a detection is due, at most one an interval.
const TRIGGER_SHARE: f32 = 0.005;
/// A detection started for such motion is applied at most this many frames
/// later (sooner than a refresh: what came in is cleared until then).
const MOTION_LAG: i64 = 4;

/// Frames to packed RGB of one size: sampled straight from the input's
/// planes where the sampler reads the format, else GStreamer's converter.
struct ToRgb {
    sampler: Option<Sampler>,
    converter: Option<gst_video::VideoConverter>,
    info: gst_video::VideoInfo,
    buffer: gst::Buffer,
}

impl ToRgb {
    fn new(in_info: &gst_video::VideoInfo, w: u32, h: u32, what: &str) -> Result<ToRgb, String> {
        let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, w, h)
            .fps(in_info.fps())
            .interlace_mode(in_info.interlace_mode())
            .build()
            .map_err(|e| e.to_string())?;
        let sampler = Sampler::new(in_info, w, h);
        let converter = match sampler {
            Some(_) => None,
            None => {
                let mut config = gst_video::VideoConverterConfig::new();
                config.set_resampler_method(gst_video::VideoResamplerMethod::Linear);
                config.set_threads(1);
                Some(
                    gst_video::VideoConverter::new(in_info, &info, Some(config)).map_err(|e| {
                        format!("cannot convert {:?} to {what}: {e}", in_info.format())
                    })?,
                )
            }
        };
        let buffer = gst::Buffer::with_size(info.size()).map_err(|e| e.to_string())?;
        Ok(ToRgb {
            sampler,
            converter,
            info,
            buffer,
        })
    }

    fn size(&self) -> (usize, usize) {
        (self.info.width() as usize, self.info.height() as usize)
    }

    /// The frame as RGB, handed to `f` with its stride.
    fn with_rgb<R>(
        &mut self,
        inframe: &gst_video::VideoFrameRef<&gst::BufferRef>,
        f: impl FnOnce(&[u8], usize) -> R,
    ) -> Result<R, String> {
        {
            let mut frame = gst_video::VideoFrameRef::from_buffer_ref_writable(
                self.buffer.make_mut(),
                &self.info,
            )
            .map_err(|e| e.to_string())?;
            match (&mut self.sampler, &self.converter) {
                (Some(sampler), _) => {
                    let stride = frame.plane_stride()[0] as usize;
                    let data = frame.plane_data_mut(0).map_err(|e| e.to_string())?;
                    sampler.run(inframe, data, stride)?;
                }
                (None, Some(converter)) => converter.frame_ref(inframe, &mut frame),
                (None, None) => return Err("no RGB converter".into()),
            }
        }
        let frame =
            gst_video::VideoFrameRef::from_buffer_ref_readable(self.buffer.as_ref(), &self.info)
                .map_err(|e| e.to_string())?;
        let stride = frame.plane_stride()[0] as usize;
        Ok(f(frame.plane_data(0).map_err(|e| e.to_string())?, stride))
    }
}

/// Why a detection starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The first after a start, a flush, a discontinuity or a new prompt:
    /// applied on its own frame.
    Urgent,
    /// Every `REFRESH` intervals of the timeline: applied `interval - 1`
    /// frames later.
    Refresh,
    /// The picture moved where no region is (someone coming in), at least
    /// an interval after the last start: applied `MOTION_LAG` frames later.
    Motion,
}

/// A detection handed to the thread and not applied yet.
struct Pending {
    id: u64,
    /// The frame it was made of (the frame path's count).
    frame: u64,
    /// Applied from this frame of the schedule's timeline on.
    apply_at: i64,
    /// Its regions, once finished.
    done: Option<Output>,
}

/// One frame as the detector step sees it.
pub struct Frame<'a, 'b> {
    pub inframe: &'a gst_video::VideoFrameRef<&'b gst::BufferRef>,
    /// The frame path's count of frames since the start.
    pub number: u64,
    /// Nothing before this frame counts (a flush-like discontinuity).
    pub discont: bool,
    /// Whether the stream comes from a live source (never wait).
    pub live: bool,
    /// Colour change (0..255, any channel) that counts as the picture
    /// moving (`rbv_core::detect::MOTION_THRESHOLD`).
    pub motion_threshold: u8,
    /// This frame's model input, packed RGB with its stride and size, when
    /// the frame path made one for it (`mode=sync`): read for the motion
    /// map when it is the mask's size, instead of sampling the frame again.
    pub model_rgb: Option<(&'a [u8], usize, (usize, usize))>,
}

/// The detector step of the local frame path.
pub struct LocalGate {
    thread: DetectorThread,
    mode: Mode,
    /// The detector input's longer side (`detector-size`), and the input
    /// size its file fixes, if it does.
    size: u32,
    fixed: Option<(u32, u32)>,
    /// Per class: whether the matting model segments it.
    matted: [bool; NUM_CLASSES],
    in_info: Option<gst_video::VideoInfo>,
    input: Option<(Letterbox, ToRgb)>,
    /// The frame at the mask's grid, for the motion map.
    thumb: Option<ToRgb>,
    motion: Motion,
    /// The regions applied now, and the frame they were found in.
    regions: Option<(Arc<Regions>, u64)>,
    pending: Option<Pending>,
    /// What the current regions (or the pending ones) were asked with.
    asked: Option<(Arc<Selection>, f32)>,
    /// The refresh slot (timeline index / (interval x REFRESH)) of the
    /// last start.
    slot: Option<i64>,
    /// The timeline index of the last start.
    last_start: Option<i64>,
    /// The share of the grid that moved far from every region on the last
    /// frame (see `Gate::outside_motion`).
    outside_motion: f32,
    /// The previous frame's place on the schedule's timeline.
    last_index: Option<i64>,
    next_id: u64,
    /// Detections handed to the thread since the start.
    started: u64,
    gate: Gate,
    pub params: GateParams,
}

impl LocalGate {
    /// The detector step for a matting model that keeps `keeps`, on frames
    /// fitted into `size` pixels (the longer side).
    pub fn new(
        detector: Detector,
        mode: Mode,
        keeps: Keeps,
        size: u32,
    ) -> std::io::Result<LocalGate> {
        let fixed = detector.fixed_input();
        Ok(LocalGate {
            thread: DetectorThread::start(detector)?,
            mode,
            size,
            fixed,
            matted: std::array::from_fn(|c| keeps == Keeps::SalientSubject || c == PERSON),
            in_info: None,
            input: None,
            thumb: None,
            motion: Motion::new(),
            regions: None,
            pending: None,
            asked: None,
            slot: None,
            last_start: None,
            outside_motion: 0.0,
            last_index: None,
            next_id: 1,
            started: 0,
            gate: Gate::new(),
            params: GateParams::default(),
        })
    }

    /// New caps: the detector input for this frame size; old regions go.
    pub fn set_caps(&mut self, in_info: &gst_video::VideoInfo) -> Result<(), String> {
        let image = (in_info.width(), in_info.height());
        let letterbox = match self.fixed {
            Some(input) => Letterbox::new(image, input),
            None => Letterbox::fit(image, self.size),
        };
        let (_, _, w, h) = letterbox.placed;
        self.input = Some((letterbox, ToRgb::new(in_info, w, h, "the detector input")?));
        self.in_info = Some(in_info.clone());
        self.thumb = None;
        self.forget();
        Ok(())
    }

    /// A flush: the regions belong to another place in the stream.
    pub fn flush(&mut self) {
        self.forget();
    }

    /// Detections handed to the detector since the start.
    pub fn detections(&self) -> u64 {
        self.started
    }

    fn forget(&mut self) {
        self.regions = None;
        self.pending = None;
        self.slot = None;
        self.last_start = None;
        self.outside_motion = 0.0;
        self.last_index = None;
        self.motion.reset();
        self.gate.reset();
        self.thread.clear();
    }

    /// The frame's place on the schedule's timeline: its timestamp in
    /// frames of the stream's rate (the same in one run over a file and in
    /// a run over a segment of it), else the frame path's count.
    fn index(frame: &Frame) -> i64 {
        let fps = frame.inframe.info().fps();
        match frame.inframe.buffer().pts() {
            Some(pts) if fps.numer() > 0 && fps.denom() > 0 => {
                let num = u128::from(pts.nseconds()) * fps.numer() as u128;
                let den = 1_000_000_000u128 * fps.denom() as u128;
                ((num + den / 2) / den).min(i64::MAX as u128) as i64
            }
            _ => frame.number.min(i64::MAX as u64) as i64,
        }
    }

    /// The detector's step for one frame: detections as due, then `mask`
    /// (`mask_size`, over the whole frame) gated by the regions that apply.
    /// Returns how long a detection applied from this frame took.
    pub fn apply(
        &mut self,
        look: &DetectLook,
        frame: &Frame,
        mask: &mut [f32],
        mask_size: (u32, u32),
    ) -> Result<Option<Duration>, FrameError> {
        let fail = |e: String| FrameError::new("detection failed", e);
        let index = Self::index(frame);
        if frame.discont || self.last_index.is_some_and(|last| index < last) {
            self.forget();
        }
        self.last_index = Some(index);
        self.observe(frame, mask_size).map_err(fail)?;
        if look.selection.salient {
            // "object", "product": the matting model's own choice.
            return Ok(None);
        }
        let interval = i64::from(look.interval.max(1));
        let refresh = interval.saturating_mul(REFRESH);
        let asked = (look.selection.clone(), look.confidence);
        let same_ask = self
            .asked
            .as_ref()
            .is_some_and(|(s, c)| Arc::ptr_eq(s, &asked.0) && *c == asked.1);
        let first = self.regions.is_none() && self.pending.is_none();
        let kind = if first || !same_ask {
            Some(Kind::Urgent)
        } else if self.slot.is_none_or(|s| index.div_euclid(refresh) > s) {
            Some(Kind::Refresh)
        } else if self.pending.is_none()
            && self.last_start.is_none_or(|s| index - s >= interval)
            && self.outside_motion >= TRIGGER_SHARE
        {
            Some(Kind::Motion)
        } else {
            None
        };
        // Sync on a file waits; live sources and async never do.
        let waits = self.mode == Mode::Sync && !frame.live;

        if let Some(t) = self.thread.take().map_err(fail)?
            && let Some(p) = self.pending.as_mut().filter(|p| p.id == t.id)
        {
            p.done = Some(t);
        }
        let mut took = None;
        if kind.is_some() && waits && self.pending.is_some() {
            // Due again before the last was applied (a refresh): the last
            // one first, unless it was asked otherwise.
            if same_ask {
                took = self.take_pending(true)?;
            } else {
                self.pending = None;
                self.thread.clear();
            }
        }
        if let Some(kind) = kind
            && self.pending.is_none()
        {
            if waits {
                // A detection a flush dropped may still be running.
                self.thread.wait_idle(WAIT_LIMIT).map_err(fail)?;
            }
            if self.thread.idle() {
                let lag = match kind {
                    Kind::Urgent => 0,
                    Kind::Refresh => interval - 1,
                    Kind::Motion => (interval - 1).min(MOTION_LAG),
                };
                self.submit(look, frame, index, lag).map_err(fail)?;
                self.slot = Some(index.div_euclid(refresh));
            }
        }
        let ready = self.pending.as_ref().is_some_and(|p| {
            if waits {
                index >= p.apply_at
            } else {
                p.done.is_some()
            }
        });
        if ready {
            took = self.take_pending(waits)?.or(took);
        }
        if let Some((regions, at)) = &self.regions {
            self.gate.apply(
                mask,
                mask_size,
                regions,
                *at,
                frame.number,
                &self.motion,
                &self.params,
            );
            self.outside_motion = self.gate.outside_motion();
        } else {
            self.outside_motion = self.motion.moved_share(frame.number);
        }
        Ok(took)
    }

    /// The frame at the mask's grid into the motion map.
    fn observe(&mut self, frame: &Frame, (mw, mh): (u32, u32)) -> Result<(), String> {
        let grid = (mw as usize, mh as usize);
        if let Some((rgb, stride, size)) = frame.model_rgb
            && size == grid
        {
            self.motion
                .update(rgb, stride, grid, frame.number, frame.motion_threshold);
            return Ok(());
        }
        if self.thumb.as_ref().is_none_or(|t| t.size() != grid) {
            let Some(info) = &self.in_info else {
                return Err("not negotiated".into());
            };
            // A grid larger than the frame (a small frame, a big model):
            // no motion map, every cell counts as moved between detections.
            self.thumb = ToRgb::new(info, mw, mh, "the motion map").ok();
            self.motion.reset();
        }
        let Some(thumb) = self.thumb.as_mut() else {
            return Ok(());
        };
        let motion = &mut self.motion;
        thumb.with_rgb(frame.inframe, |rgb, stride| {
            motion.update(rgb, stride, grid, frame.number, frame.motion_threshold)
        })
    }

    /// Hands the frame to the detector.
    fn submit(
        &mut self,
        look: &DetectLook,
        frame: &Frame,
        index: i64,
        lag: i64,
    ) -> Result<(), String> {
        let (letterbox, rgb) = self.input.as_mut().ok_or("not negotiated")?;
        let letterbox = *letterbox;
        let (_, _, w, h) = letterbox.placed;
        let (rgb, stride) = rgb.with_rgb(frame.inframe, |rgb, stride| {
            let used = stride * (h as usize - 1) + w as usize * 3;
            (rgb[..used].to_vec(), stride)
        })?;
        let id = self.next_id;
        self.next_id += 1;
        self.thread.submit(detector::Input {
            rgb,
            stride,
            letterbox,
            confidence: look.confidence,
            wanted: look.selection.wanted(),
            matted: self.matted,
            frame: frame.number,
            id,
        });
        self.started += 1;
        self.pending = Some(Pending {
            id,
            frame: frame.number,
            apply_at: index.saturating_add(lag),
            done: None,
        });
        self.last_start = Some(index);
        self.asked = Some((look.selection.clone(), look.confidence));
        Ok(())
    }

    /// Applies the pending detection's regions (waiting for them when
    /// `wait`); answers how long it took.
    fn take_pending(&mut self, wait: bool) -> Result<Option<Duration>, FrameError> {
        let Some(p) = self.pending.take() else {
            return Ok(None);
        };
        let out = match p.done {
            Some(out) => out,
            None if wait => self
                .thread
                .wait_for(p.id, WAIT_LIMIT)
                .map_err(|e| FrameError::new("detection failed", e))?,
            None => {
                self.pending = Some(p);
                return Ok(None);
            }
        };
        debug_assert_eq!(out.frame, p.frame);
        self.regions = Some((out.regions, out.frame));
        Ok(Some(out.took))
    }
}
