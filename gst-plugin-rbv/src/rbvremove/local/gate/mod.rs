// SPDX-License-Identifier: MPL-2.0
//! The frame path's detector step: the detector's regions of what
//! `text-prompt` asks for, and the gate that keeps the model's mask in them
//! (`rbv_core::detect::Gate`). Called by `LocalPath::process` between the
//! mask and the composite; without the detector (`detector=false`) it is
//! never made and the frame path is what it was.
//!
//! `mode=sync` runs the detector here, on every `detector-interval`-th
//! frame (and the first after a flush, a discontinuity, new caps, or a new
//! prompt or confidence), so a file's output does not depend on timing.
//! `mode=async` hands frames to the detector's own thread whenever it is
//! idle and uses the newest regions; until the first arrive, the mask
//! passes ungated. Regions `age` frames old move with the matte and are
//! widened by their age (see `rbv_core::detect::Gate`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use gst_video::prelude::*;
use rbv_core::detect::{Detector, Gate, GateParams, Letterbox, NUM_CLASSES, PERSON, Regions};
use rbv_core::prompt::{Keeps, Selection};
use rbv_core::sample::Sampler;

#[cfg(test)]
mod tests;

use super::FrameError;
use crate::rbvremove::Mode;
use crate::rbvremove::detector::{self, DetectorThread};
use crate::rbvremove::settings::DetectLook;

/// Where the detector runs.
enum Runner {
    Here(Box<Detector>),
    Thread(DetectorThread),
}

/// Frame to the detector's RGB input, per caps.
struct Input {
    letterbox: Letterbox,
    /// Sampled straight from the input's planes where it can be.
    sampler: Option<Sampler>,
    converter: Option<gst_video::VideoConverter>,
    info: gst_video::VideoInfo,
    buffer: gst::Buffer,
}

impl Input {
    /// For frames of `in_info`, fitted into `size` pixels (or the
    /// detector file's `fixed` input).
    fn new(
        in_info: &gst_video::VideoInfo,
        size: u32,
        fixed: Option<(u32, u32)>,
    ) -> Result<Input, String> {
        let image = (in_info.width(), in_info.height());
        let letterbox = match fixed {
            Some(input) => Letterbox::new(image, input),
            None => Letterbox::fit(image, size),
        };
        let (_, _, w, h) = letterbox.placed;
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
                        format!(
                            "cannot convert {:?} to the detector input: {e}",
                            in_info.format()
                        )
                    })?,
                )
            }
        };
        let buffer = gst::Buffer::with_size(info.size()).map_err(|e| e.to_string())?;
        Ok(Input {
            letterbox,
            sampler,
            converter,
            info,
            buffer,
        })
    }

    /// The frame as the detector's RGB, handed to `f` with its stride.
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
                (None, None) => return Err("no detector input converter".into()),
            }
        }
        let frame =
            gst_video::VideoFrameRef::from_buffer_ref_readable(self.buffer.as_ref(), &self.info)
                .map_err(|e| e.to_string())?;
        let stride = frame.plane_stride()[0] as usize;
        Ok(f(frame.plane_data(0).map_err(|e| e.to_string())?, stride))
    }
}

/// The detector step of the local frame path.
pub struct LocalGate {
    runner: Runner,
    /// The detector input's longer side (`detector-size`), and the input
    /// size its file fixes, if it does.
    size: u32,
    fixed: Option<(u32, u32)>,
    /// Per class: whether the matting model segments it.
    matted: [bool; NUM_CLASSES],
    input: Option<Input>,
    regions: Option<(Arc<Regions>, u64)>,
    /// What the current regions were asked with.
    asked: Option<(Arc<Selection>, f32)>,
    /// The frame of the last detection run or handed over.
    last: Option<u64>,
    /// Regions from frames before this one belong before a flush.
    since: u64,
    /// The newest frame seen (a flush drops what the thread finds in it
    /// and before it).
    seen: Option<u64>,
    next_id: u64,
    gate: Gate,
    pub params: GateParams,
}

impl LocalGate {
    /// The detector step for a matting model that keeps `keeps`, run here
    /// (`mode=sync`) or on its own thread (`mode=async`), on frames fitted
    /// into `size` pixels (the longer side).
    pub fn new(
        detector: Detector,
        mode: Mode,
        keeps: Keeps,
        size: u32,
    ) -> std::io::Result<LocalGate> {
        let fixed = detector.fixed_input();
        let runner = match mode {
            Mode::Sync => Runner::Here(Box::new(detector)),
            Mode::Async => Runner::Thread(DetectorThread::start(detector)?),
        };
        Ok(LocalGate {
            runner,
            size,
            fixed,
            matted: std::array::from_fn(|c| keeps == Keeps::SalientSubject || c == PERSON),
            input: None,
            regions: None,
            asked: None,
            last: None,
            since: 0,
            seen: None,
            next_id: 1,
            gate: Gate::new(),
            params: GateParams::default(),
        })
    }

    /// New caps: the detector input for this frame size; old regions go.
    pub fn set_caps(&mut self, in_info: &gst_video::VideoInfo) -> Result<(), String> {
        self.input = Some(Input::new(in_info, self.size, self.fixed)?);
        self.forget();
        Ok(())
    }

    /// A flush: the regions belong to another place in the stream.
    pub fn flush(&mut self) {
        self.forget();
    }

    fn forget(&mut self) {
        self.regions = None;
        self.last = None;
        if let Some(seen) = self.seen {
            self.since = seen + 1;
        }
        if let Runner::Thread(t) = &self.runner {
            t.clear();
        }
    }

    /// The detector's step for frame `frame` (`discont`: nothing before it
    /// counts): detections as due, then `mask` (`mask_size`, over the whole
    /// frame) gated by the newest regions. Returns how long a detection that
    /// finished for this frame took.
    pub fn apply(
        &mut self,
        look: &DetectLook,
        inframe: &gst_video::VideoFrameRef<&gst::BufferRef>,
        frame: u64,
        discont: bool,
        mask: &mut [f32],
        mask_size: (u32, u32),
    ) -> Result<Option<Duration>, FrameError> {
        if discont {
            self.forget();
            self.since = frame;
        }
        self.seen = Some(frame);
        if look.selection.salient {
            // "object", "product": the matting model's own choice.
            return Ok(None);
        }
        let asked = (look.selection.clone(), look.confidence);
        let same_ask = self
            .asked
            .as_ref()
            .is_some_and(|(s, c)| Arc::ptr_eq(s, &asked.0) && *c == asked.1);
        let due = !same_ask
            || self
                .last
                .is_none_or(|l| frame.saturating_sub(l) >= u64::from(look.interval));
        let mut took = None;
        let fail = |e: String| FrameError::new("detection failed", e);
        match &mut self.runner {
            Runner::Here(detector) => {
                if due {
                    let input = self
                        .input
                        .as_mut()
                        .ok_or_else(|| fail("not negotiated".into()))?;
                    let t0 = Instant::now();
                    let wanted = look.selection.wanted();
                    let letterbox = input.letterbox;
                    let found = input
                        .with_rgb(inframe, |rgb, stride| {
                            detector.run(rgb, stride, &letterbox, look.confidence, Some(&wanted))
                        })
                        .and_then(|r| r)
                        .map_err(fail)?;
                    let matted = self.matted;
                    let regions = Regions::new(found, |c| matted[c], self.next_id);
                    self.next_id += 1;
                    self.regions = Some((Arc::new(regions), frame));
                    self.last = Some(frame);
                    self.asked = Some(asked);
                    took = Some(t0.elapsed());
                }
            }
            Runner::Thread(thread) => {
                if let Some(out) = thread.take().map_err(fail)?
                    && out.frame >= self.since
                {
                    self.regions = Some((out.regions, out.frame));
                    took = Some(out.took);
                }
                if due && thread.idle() {
                    let input = self
                        .input
                        .as_mut()
                        .ok_or_else(|| fail("not negotiated".into()))?;
                    let letterbox = input.letterbox;
                    let (_, _, w, h) = letterbox.placed;
                    let (rgb, stride) = input
                        .with_rgb(inframe, |rgb, stride| {
                            let used = stride * (h as usize - 1) + w as usize * 3;
                            (rgb[..used].to_vec(), stride)
                        })
                        .map_err(fail)?;
                    thread.submit(detector::Input {
                        rgb,
                        stride,
                        letterbox,
                        confidence: look.confidence,
                        wanted: look.selection.wanted(),
                        matted: self.matted,
                        frame,
                        id: self.next_id,
                    });
                    self.next_id += 1;
                    self.last = Some(frame);
                    self.asked = Some(asked);
                }
            }
        }
        if let Some((regions, at)) = &self.regions {
            let age = frame.saturating_sub(*at).min(u64::from(u32::MAX)) as u32;
            self.gate.apply(mask, mask_size, regions, age, &self.params);
        }
        Ok(took)
    }
}
