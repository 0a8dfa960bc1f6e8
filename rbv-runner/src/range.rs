// SPDX-License-Identifier: MPL-2.0
//! A segment of a long input: the frames a job writes, counted in the order
//! the decoder gives them (presentation order), so segments cut at the same
//! counts neither repeat nor miss a frame whatever the timestamps are.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use gst::prelude::*;

/// Which of the input's frames a job writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRange {
    /// The first frame written (0-based).
    pub first: u64,
    /// The frame after the last one written; `None`: to the input's end.
    pub end: Option<u64>,
    /// Frames before `first` that go through `rbvremove` without being
    /// written, so its temporal state (smoothing) is warm at the cut as it
    /// is in one run over the whole input.
    pub warm_up: u64,
}

impl FrameRange {
    /// The first frame decoded into the element.
    fn from(&self) -> u64 {
        self.first.saturating_sub(self.warm_up)
    }
}

/// Splits `frames` (the input's count, as [`crate::probe`] reads it) into
/// ranges of about `per_segment` frames each, all of one length but the
/// last (which runs to the input's end whatever the count was). One range
/// when the input is not longer than `per_segment`.
pub fn plan(frames: u64, per_segment: u64, warm_up: u64) -> Vec<FrameRange> {
    let per_segment = per_segment.max(1);
    let n = frames.div_ceil(per_segment).max(1);
    let len = frames.div_ceil(n).max(1);
    let mut ranges: Vec<FrameRange> = (0..n)
        .map(|i| FrameRange {
            first: i * len,
            end: Some((i + 1) * len),
            warm_up,
        })
        .take_while(|r| r.first == 0 || r.first < frames)
        .collect();
    if let Some(last) = ranges.last_mut() {
        last.end = None;
    }
    ranges
}

/// Frames before the warm-up are dropped as they leave the decoder
/// (`decoded`), the warm-up's as they leave the element (`processed`); at
/// `end` the stream ends and the decoder is told to stop. What is written
/// starts at time 0, so parts join end to end. The element must put out
/// one frame per frame in, in order (the local backend; `mode=sync` for
/// the warm-up to give what one run gives). `clock` learns where the
/// frames before the first written one end, and the first one's running
/// time, by which the sound is shifted as the frames are.
pub(crate) fn install(
    decoded: &gst::Pad,
    processed: &gst::Pad,
    range: FrameRange,
    clock: &Arc<crate::audio::Clock>,
) {
    let from = range.from();
    let seen = AtomicU64::new(0);
    let decoded_segment = std::sync::Mutex::new(gst::FormattedSegment::<gst::ClockTime>::new());
    let before = clock.clone();
    decoded.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |pad, info| {
            if let Some(gst::PadProbeData::Event(e)) = &info.data {
                if let gst::EventView::Segment(s) = e.view()
                    && let Some(time) = s.segment().downcast_ref::<gst::ClockTime>()
                {
                    *decoded_segment.lock().unwrap_or_else(|e| e.into_inner()) = time.clone();
                }
                return gst::PadProbeReturn::Ok;
            }
            let i = seen.fetch_add(1, Ordering::Relaxed);
            if i < range.first
                && let Some(b) = info.buffer()
                && let Some(pts) = b.pts()
            {
                let end = pts + b.duration().unwrap_or(gst::ClockTime::ZERO);
                let running = decoded_segment
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .to_running_time(end)
                    .unwrap_or(end);
                before.decoded_before_first(running.nseconds());
            }
            if i < from {
                return consume(info);
            }
            match range.end {
                Some(end) if i >= end => {
                    if i == end {
                        pad.send_event(gst::event::Eos::new());
                    }
                    info.flow_res = Err(gst::FlowError::Eos);
                    gst::PadProbeReturn::Handled
                }
                _ => gst::PadProbeReturn::Ok,
            }
        },
    );
    let skip = range.first - from;
    // What is written starts at 0 in a segment of its own: a demuxer's
    // segment may start later (an MP4 edit list, MPEG-TS), and frames
    // before its start would be dropped by the encoder. Frames are stamped
    // with their running time in the input's segment, less the first's.
    let input_segment = Arc::new(std::sync::Mutex::new(
        gst::FormattedSegment::<gst::ClockTime>::new(),
    ));
    let seen = input_segment.clone();
    processed.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
        if let Some(gst::PadProbeData::Event(e)) = &info.data
            && let gst::EventView::Segment(s) = e.view()
        {
            if let Some(time) = s.segment().downcast_ref::<gst::ClockTime>() {
                *seen.lock().unwrap_or_else(|e| e.into_inner()) = time.clone();
            }
            let fresh = gst::FormattedSegment::<gst::ClockTime>::new();
            info.data = Some(gst::PadProbeData::Event(
                gst::event::Segment::builder(&fresh)
                    .seqnum(e.seqnum())
                    .build(),
            ));
        }
        gst::PadProbeReturn::Ok
    });
    let out = AtomicU64::new(0);
    let base = std::sync::Mutex::new(None::<gst::ClockTime>);
    let clock = clock.clone();
    processed.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if out.fetch_add(1, Ordering::Relaxed) < skip {
            return consume(info);
        }
        if let Some(buffer) = info.buffer_mut() {
            let b = buffer.make_mut();
            if let Some(pts) = b.pts() {
                let running = input_segment
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .to_running_time(pts)
                    .unwrap_or(pts);
                let mut base = base.lock().unwrap_or_else(|e| e.into_inner());
                let first = *base.get_or_insert_with(|| {
                    clock.set_base(running.nseconds());
                    running
                });
                b.set_pts(running.saturating_sub(first));
                b.set_dts(gst::ClockTime::NONE);
            }
        }
        gst::PadProbeReturn::Ok
    });
}

/// Drops a buffer. (`PadProbeReturn::Drop` leaves GStreamer 1.22 unref
/// a null pointer, with a critical warning, once the binding took the buffer.)
fn consume(info: &mut gst::PadProbeInfo) -> gst::PadProbeReturn {
    info.flow_res = Ok(gst::FlowSuccess::Ok);
    gst::PadProbeReturn::Handled
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_cover_every_frame_once() {
        for frames in [0, 1, 29, 30, 31, 299, 300, 301, 1800, 1801] {
            for per in [1, 7, 30, 450, 10_000] {
                let p = plan(frames, per, 5);
                assert!(!p.is_empty());
                assert_eq!(p[0].first, 0, "{frames}/{per}");
                assert_eq!(p.last().unwrap().end, None, "{frames}/{per}: to the end");
                for w in p.windows(2) {
                    assert_eq!(w[0].end, Some(w[1].first), "{frames}/{per}: no gap");
                    assert!(w[0].end.unwrap() > w[0].first, "{frames}/{per}: not empty");
                }
                // Never longer than asked, and never a sliver at the end.
                let len = p[0].end.unwrap_or(frames.max(1));
                assert!(len <= per.max(1), "{frames}/{per}: {len}");
                if p.len() > 1 {
                    let last = frames - p.last().unwrap().first;
                    assert!(last > 0 && last <= len, "{frames}/{per}: last {last}");
                    assert_eq!(p.len() as u64, frames.div_ceil(per));
                }
            }
        }
        // One range when the input fits.
        assert_eq!(plan(300, 300, 30).len(), 1);
        assert_eq!(plan(301, 300, 30).len(), 2);
        let p = plan(1800, 450, 30);
        assert_eq!(
            p.iter().map(|r| (r.first, r.end)).collect::<Vec<_>>(),
            [
                (0, Some(450)),
                (450, Some(900)),
                (900, Some(1350)),
                (1350, None)
            ]
        );
        assert_eq!(p[1].from(), 420);
        assert_eq!(p[0].from(), 0, "nothing before the first frame");
    }
}
