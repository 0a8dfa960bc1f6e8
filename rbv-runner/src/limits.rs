// SPDX-License-Identifier: MPL-2.0
//! Resource caps for a job on untrusted input: the decoded frame size is
//! checked from the stream's caps (and, for VP8, which GStreamer 1.22 has no
//! parser for, from each keyframe's header) before a decoder sees a byte of
//! it, so a decompression bomb costs kilobytes; frames and media time are
//! counted as they leave the decoder.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gst::prelude::*;

/// What a job may decode. `None`: no cap.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    /// Largest frame, width x height, of the input.
    pub max_pixels: Option<u64>,
    /// Most frames read from the input.
    pub max_frames: Option<u64>,
    /// Longest media time read from the input (frame timestamps).
    pub max_duration: Option<Duration>,
}

impl Limits {
    /// Why a frame of `width` x `height` is refused, if it is.
    pub fn check_size(&self, width: u64, height: u64) -> Result<(), String> {
        match self.max_pixels {
            Some(max) if width.saturating_mul(height) > max => Err(format!(
                "the video is {width}x{height} ({} pixels a frame); the limit is {max} pixels",
                width.saturating_mul(height)
            )),
            _ => Ok(()),
        }
    }
}

/// The size a VP8 keyframe's header declares (RFC 6386, 9.1): a 3-byte
/// frame tag whose lowest bit is 0 for keyframes, the start code 9d 01 2a,
/// then 14-bit width and height (2 bits of scaling above each).
pub fn vp8_keyframe_size(data: &[u8]) -> Option<(u64, u64)> {
    if data.len() < 10 || data[0] & 1 != 0 || data[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let w = u16::from_le_bytes([data[6], data[7]]) & 0x3fff;
    let h = u16::from_le_bytes([data[8], data[9]]) & 0x3fff;
    Some((u64::from(w), u64::from(h)))
}

/// The width and height a caps structure names, if both are fixed.
fn caps_size(caps: &gst::CapsRef) -> Option<(u64, u64)> {
    let s = caps.structure(0)?;
    let w = s.get::<i32>("width").ok()?;
    let h = s.get::<i32>("height").ok()?;
    Some((w.max(0) as u64, h.max(0) as u64))
}

/// Stops what a probe holds from going on, with an error flow upstream so
/// the source stops reading.
fn refuse(info: &mut gst::PadProbeInfo) -> gst::PadProbeReturn {
    info.flow_res = Err(gst::FlowError::Error);
    gst::PadProbeReturn::Handled
}

/// The caps installed on one pipeline; `tripped` holds the first refusal.
#[derive(Clone)]
pub(crate) struct Guard {
    limits: Arc<Limits>,
    tripped: Arc<Mutex<Option<String>>>,
    frames: Arc<AtomicU64>,
    first_pts: Arc<AtomicU64>,
}

const NONE: u64 = u64::MAX;

impl Guard {
    /// Checks every video decoder `decodebin` plugs (its input caps, and
    /// VP8 keyframe headers) and what leaves it at `decoded` (the caps, the
    /// frame count and the media time).
    pub(crate) fn install(decodebin: &gst::Element, decoded: &gst::Pad, limits: &Limits) -> Guard {
        let guard = Guard {
            limits: Arc::new(limits.clone()),
            tripped: Arc::default(),
            frames: Arc::default(),
            first_pts: Arc::new(AtomicU64::new(NONE)),
        };
        if let Some(bin) = decodebin.downcast_ref::<gst::Bin>() {
            let g = guard.clone();
            bin.connect_deep_element_added(move |_, _, element| {
                let is_video_decoder = element.factory().is_some_and(|f| {
                    let k = f.klass();
                    k.contains("Decoder") && k.contains("Video")
                });
                if is_video_decoder {
                    for pad in element.sink_pads() {
                        g.watch_decoder_input(element, &pad);
                    }
                }
            });
        }
        let g = guard.clone();
        let element = decoded.parent_element().map(|e| e.downgrade());
        decoded.add_probe(
            gst::PadProbeType::EVENT_DOWNSTREAM | gst::PadProbeType::BUFFER,
            move |_, info| match element.as_ref().and_then(|e| e.upgrade()) {
                Some(element) => g.on_decoded(&element, info),
                None => gst::PadProbeReturn::Remove,
            },
        );
        guard
    }

    /// The first refusal, if a cap was hit.
    pub(crate) fn tripped(&self) -> Option<String> {
        self.tripped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn trip(&self, element: &gst::Element, why: String) {
        let mut slot = self.tripped.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(why);
            // Wakes the job's bus loop, which stops the pipeline.
            let _ = element.post_message(
                gst::message::Application::builder(gst::Structure::new_empty("rbv-limit"))
                    .src(element)
                    .build(),
            );
        }
    }

    fn is_tripped(&self) -> bool {
        self.tripped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    fn watch_decoder_input(&self, element: &gst::Element, pad: &gst::Pad) {
        let g = self.clone();
        let element = element.downgrade();
        let vp8 = Arc::new(AtomicBool::new(false));
        pad.add_probe(
            gst::PadProbeType::EVENT_DOWNSTREAM | gst::PadProbeType::BUFFER,
            move |_, info| {
                let Some(element) = element.upgrade() else {
                    return gst::PadProbeReturn::Remove;
                };
                if g.is_tripped() && info.buffer().is_some() {
                    return refuse(info);
                }
                let size = match &info.data {
                    Some(gst::PadProbeData::Event(ev)) => match ev.view() {
                        gst::EventView::Caps(c) => {
                            let caps = c.caps();
                            vp8.store(
                                caps.structure(0).is_some_and(|s| s.name() == "video/x-vp8"),
                                Ordering::Relaxed,
                            );
                            caps_size(caps)
                        }
                        _ => None,
                    },
                    Some(gst::PadProbeData::Buffer(b)) if vp8.load(Ordering::Relaxed) => {
                        b.map_readable().ok().and_then(|m| vp8_keyframe_size(&m))
                    }
                    _ => None,
                };
                if let Some((w, h)) = size
                    && let Err(why) = g.limits.check_size(w, h)
                {
                    g.trip(&element, why);
                    return refuse(info);
                }
                gst::PadProbeReturn::Ok
            },
        );
    }

    fn on_decoded(
        &self,
        element: &gst::Element,
        info: &mut gst::PadProbeInfo,
    ) -> gst::PadProbeReturn {
        if self.is_tripped() && info.buffer().is_some() {
            return refuse(info);
        }
        let why = match &info.data {
            Some(gst::PadProbeData::Event(ev)) => match ev.view() {
                gst::EventView::Caps(c) => {
                    caps_size(c.caps()).and_then(|(w, h)| self.limits.check_size(w, h).err())
                }
                _ => None,
            },
            Some(gst::PadProbeData::Buffer(b)) => self.count(b),
            _ => None,
        };
        match why {
            Some(why) => {
                self.trip(element, why);
                refuse(info)
            }
            None => gst::PadProbeReturn::Ok,
        }
    }

    /// Counts one decoded frame against the frame and duration caps.
    fn count(&self, b: &gst::BufferRef) -> Option<String> {
        let n = self.frames.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(max) = self.limits.max_frames
            && n > max
        {
            return Some(format!("the video has more than {max} frames, the limit"));
        }
        let max = self.limits.max_duration?;
        let pts = b.pts()?.nseconds();
        let _ = self
            .first_pts
            .compare_exchange(NONE, pts, Ordering::Relaxed, Ordering::Relaxed);
        let first = self.first_pts.load(Ordering::Relaxed);
        let end = pts + b.duration().map_or(0, |d| d.nseconds());
        let span = Duration::from_nanos(end.saturating_sub(first));
        // A frame's length of slack: the last frame ends at the limit.
        (span > max + Duration::from_millis(500)).then(|| {
            format!(
                "the video runs longer than {:.1} s, the limit for this job",
                max.as_secs_f64()
            )
        })
    }
}

/// The media time frames passing `pad` cover: (frames, seconds from the
/// first timestamp to the end of the last frame).
#[derive(Clone, Default)]
pub(crate) struct Span {
    frames: Arc<AtomicU64>,
    first: Arc<AtomicU64>,
    end: Arc<AtomicU64>,
}

impl Span {
    pub(crate) fn watch(pad: &gst::Pad) -> Span {
        let span = Span {
            frames: Arc::default(),
            first: Arc::new(AtomicU64::new(NONE)),
            end: Arc::default(),
        };
        let s = span.clone();
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(b) = info.buffer() {
                s.frames.fetch_add(1, Ordering::Relaxed);
                if let Some(pts) = b.pts().or(b.dts()).map(|t| t.nseconds()) {
                    s.first.fetch_min(pts, Ordering::Relaxed);
                    let end = pts + b.duration().map_or(0, |d| d.nseconds());
                    s.end.fetch_max(end, Ordering::Relaxed);
                }
            }
            gst::PadProbeReturn::Ok
        });
        span
    }

    pub(crate) fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    pub(crate) fn seconds(&self) -> f64 {
        let first = self.first.load(Ordering::Relaxed);
        if first == NONE {
            return 0.0;
        }
        self.end.load(Ordering::Relaxed).saturating_sub(first) as f64 / 1e9
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_keyframe_headers_give_their_size() {
        // Key frame tag, start code, 16000 x 16000 with no scaling.
        let mut kf = vec![0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a];
        kf.extend_from_slice(&16000u16.to_le_bytes());
        kf.extend_from_slice(&(16000u16 | 0xc000).to_le_bytes());
        assert_eq!(vp8_keyframe_size(&kf), Some((16000, 16000)));
        // An inter frame (lowest bit set) and a short buffer say nothing.
        let mut inter = kf.clone();
        inter[0] |= 1;
        assert_eq!(vp8_keyframe_size(&inter), None);
        assert_eq!(vp8_keyframe_size(&kf[..8]), None);
    }

    #[test]
    fn sizes_over_the_cap_are_named() {
        let l = Limits {
            max_pixels: Some(1920 * 1080),
            ..Limits::default()
        };
        assert!(l.check_size(1920, 1080).is_ok());
        let e = l.check_size(16000, 16000).unwrap_err();
        assert!(e.contains("16000x16000") && e.contains("2073600"), "{e}");
        assert!(Limits::default().check_size(u64::MAX, 2).is_ok());
    }
}
