// SPDX-License-Identifier: MPL-2.0
//! The input's sound in the output, in sync with the picture and trimmed
//! with it. The first audio stream `decodebin` finds goes through a branch
//! of its own (raw 16-bit PCM in 10 ms buffers, then the target's encoder,
//! [`crate::encode::audio_tail`]) into the picture's muxer. A gate at the
//! branch's head lets sound through only as far as the picture written so
//! far reaches, so when the picture ends early (Ctrl-C, the end of a
//! segment, a cap) the sound ends with it, within one 10 ms buffer; sound
//! before the first frame written is cut off. A segment's part is shifted
//! as its frames are ([`crate::range`]): it starts at 0 with its first frame.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use gst::prelude::*;

/// The audio branch's raw format, whose samples the gate cuts.
const RAW: &str = "audio/x-raw,format=S16LE,layout=interleaved,channels=[1,2]";

/// Where the written picture is, in its output timeline (running time; in
/// a segment, less the running time of its first frame).
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Timeline {
    /// A segment's part: the sound is shifted by `base`.
    pub ranged: bool,
    /// Running time in the input of a segment's first written frame.
    pub base: Option<u64>,
    /// A segment's part before `base` is known: the end of the latest frame
    /// decoded before its first (sound that ends before it is dropped).
    pub before: Option<u64>,
    /// Start of the first frame written.
    pub first: Option<u64>,
    /// End of the last frame written.
    pub end: Option<u64>,
    /// The picture ended: no frame follows.
    pub done: bool,
    /// The job is being torn down: nothing waits any more.
    pub closing: bool,
}

/// What the gate does with a buffer of sound.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict {
    /// The picture has not got there yet.
    Wait,
    /// Before the picture: dropped.
    Drop,
    /// After the picture's end: the sound ends here.
    Eos,
    /// The job is being torn down.
    Flush,
    /// Written, cut to [start, stop) of the output timeline (`shift`: what
    /// to subtract from a running time to get there).
    Pass {
        start: i128,
        stop: i128,
        shift: i128,
    },
}

impl Timeline {
    /// The verdict on sound covering running times [a, b).
    pub(crate) fn judge(&self, a: u64, b: u64) -> Verdict {
        if self.closing {
            return Verdict::Flush;
        }
        let shift = match (self.ranged, self.base) {
            (false, _) => 0,
            (true, Some(base)) => i128::from(base),
            (true, None) if self.before.is_some_and(|d| b <= d) => return Verdict::Drop,
            (true, None) if self.done => return Verdict::Eos,
            (true, None) => return Verdict::Wait,
        };
        let (a, b) = (i128::from(a) - shift, i128::from(b) - shift);
        let Some(first) = self.first.map(i128::from) else {
            return if self.done {
                Verdict::Eos
            } else {
                Verdict::Wait
            };
        };
        if b <= first {
            return Verdict::Drop;
        }
        let end = self.end.map_or(first, i128::from);
        if self.done {
            if a >= end {
                return Verdict::Eos;
            }
            return Verdict::Pass {
                start: a.max(first),
                stop: b.min(end),
                shift,
            };
        }
        // Sound the picture reaches passes whole: its buffers are 10 ms,
        // so it runs past the picture's end by less than one.
        if a < end {
            return Verdict::Pass {
                start: a.max(first),
                stop: b,
                shift,
            };
        }
        Verdict::Wait
    }
}

/// The timeline shared by the picture's watchers and the gate.
#[derive(Default)]
pub(crate) struct Clock {
    timeline: Mutex<Timeline>,
    moved: Condvar,
}

impl Clock {
    pub(crate) fn new(ranged: bool) -> Arc<Clock> {
        Arc::new(Clock {
            timeline: Mutex::new(Timeline {
                ranged,
                ..Timeline::default()
            }),
            moved: Condvar::new(),
        })
    }

    fn update(&self, f: impl FnOnce(&mut Timeline)) {
        f(&mut self.timeline.lock().unwrap_or_else(|e| e.into_inner()));
        self.moved.notify_all();
    }

    /// A frame before a segment's first was decoded, ending at `end`.
    pub(crate) fn decoded_before_first(&self, end: u64) {
        self.update(|t| t.before = Some(t.before.map_or(end, |d| d.max(end))));
    }

    /// A segment's first frame is at this running time of the input.
    pub(crate) fn set_base(&self, base: u64) {
        self.update(|t| t.base = Some(base));
    }

    /// Nothing waits any more (the pipeline is being stopped).
    pub(crate) fn close(&self) {
        self.update(|t| t.closing = true);
    }

    fn wait(&self, a: u64, b: u64) -> Verdict {
        let mut t = self.timeline.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match t.judge(a, b) {
                Verdict::Wait => {
                    t = self
                        .moved
                        .wait_timeout(t, Duration::from_millis(100))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                v => return v,
            }
        }
    }
}

/// Running time of `pts` in `segment`, in nanoseconds.
fn running(segment: &gst::FormattedSegment<gst::ClockTime>, pts: gst::ClockTime) -> u64 {
    segment.to_running_time(pts).unwrap_or(pts).nseconds()
}

/// Watches the written picture at `processed` (rbvremove's source pad,
/// after a segment's probes): where its frames start and end, and its end.
pub(crate) fn watch_picture(processed: &gst::Pad, clock: &Arc<Clock>) {
    let clock = clock.clone();
    let segment = Mutex::new(gst::FormattedSegment::<gst::ClockTime>::new());
    processed.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_, info| {
            match &info.data {
                Some(gst::PadProbeData::Event(e)) => match e.view() {
                    gst::EventView::Segment(s) => {
                        if let Some(time) = s.segment().downcast_ref::<gst::ClockTime>() {
                            *segment.lock().unwrap_or_else(|e| e.into_inner()) = time.clone();
                        }
                    }
                    gst::EventView::Eos(_) => clock.update(|t| t.done = true),
                    _ => {}
                },
                Some(gst::PadProbeData::Buffer(b)) => {
                    if let Some(pts) = b.pts() {
                        let seg = segment.lock().unwrap_or_else(|e| e.into_inner());
                        let start = running(&seg, pts);
                        let end = running(&seg, pts + b.duration().unwrap_or(gst::ClockTime::ZERO));
                        clock.update(|t| {
                            t.first.get_or_insert(start);
                            t.end = Some(t.end.map_or(end, |e| e.max(end)));
                        });
                    }
                }
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
}

/// What became of the input's sound.
#[derive(Clone, Default)]
pub(crate) struct Seen {
    /// The input has sound.
    pub present: Arc<AtomicBool>,
    /// It goes into the output.
    pub kept: Arc<AtomicBool>,
}

/// The branch from raw sound to the muxer: `gate` adds the element whose
/// sink pad the gate watches (`agate`).
fn branch(tail: &str, gate: bool) -> String {
    // A capsfilter by name: caps last in a description would be read as an
    // element's name.
    let mut d = format!("audioconvert ! audioresample ! capsfilter caps=\"{RAW}\"");
    if gate {
        d.push_str(
            " ! audiobuffersplit output-buffer-duration=1/100 ! identity name=agate silent=true",
        );
    }
    if !tail.is_empty() {
        d.push_str(" ! ");
        d.push_str(tail);
    }
    d
}

/// A branch made, added and linked to the muxer; removed again when any
/// step fails.
fn add_branch(pipeline: &gst::Pipeline, mux: &gst::Element, desc: &str) -> Option<gst::Bin> {
    let bin = gst::parse::bin_from_description(desc, true).ok()?;
    pipeline.add(&bin).ok()?;
    if bin.link(mux).is_err() {
        let _ = pipeline.remove(&bin);
        return None;
    }
    let _ = bin.sync_state_with_parent();
    Some(bin)
}

/// Links the first audio stream `decodebin` exposes to a gated branch into
/// `mux` (`tail`: the target's encoder; `None`: the target holds no sound,
/// which is only noted).
pub(crate) fn keep_decoded(
    pipeline: &gst::Pipeline,
    decodebin: &gst::Element,
    tail: Option<&'static str>,
    clock: &Arc<Clock>,
) -> Seen {
    let seen = Seen::default();
    let (s, clock) = (seen.clone(), clock.clone());
    let weak = pipeline.downgrade();
    decodebin.connect_pad_added(move |_, pad| {
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        if !caps
            .structure(0)
            .is_some_and(|st| st.name().starts_with("audio/"))
        {
            return;
        }
        // One stream: a second (another language) is not linked.
        if s.present.swap(true, Ordering::SeqCst) {
            return;
        }
        let (Some(tail), Some(pipeline)) = (tail, weak.upgrade()) else {
            return;
        };
        let Some(mux) = pipeline.by_name("mux") else {
            return;
        };
        let Some(bin) = add_branch(&pipeline, &mux, &branch(tail, true)) else {
            return;
        };
        if let Some(gate) = bin.by_name("agate").and_then(|g| g.static_pad("sink")) {
            install_gate(&gate, &clock);
        }
        let linked = bin
            .static_pad("sink")
            .is_some_and(|sink| pad.link(&sink).is_ok());
        s.kept.store(linked, Ordering::SeqCst);
    });
    seen
}

/// The gate on the audio branch's `pad` (a sink pad of raw PCM in 10 ms
/// buffers): each buffer waits until the picture reaches it, then passes
/// cut to the picture's span, is dropped, or ends the sound.
fn install_gate(pad: &gst::Pad, clock: &Arc<Clock>) {
    let clock = clock.clone();
    let segment = Mutex::new(gst::FormattedSegment::<gst::ClockTime>::new());
    let ended = AtomicBool::new(false);
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |pad, info| {
            let ranged = clock
                .timeline
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .ranged;
            if let Some(gst::PadProbeData::Event(e)) = &info.data {
                if let gst::EventView::Segment(s) = e.view() {
                    if let Some(time) = s.segment().downcast_ref::<gst::ClockTime>() {
                        *segment.lock().unwrap_or_else(|e| e.into_inner()) = time.clone();
                    }
                    // A segment's sound starts at 0, as its frames do.
                    if ranged {
                        let fresh = gst::FormattedSegment::<gst::ClockTime>::new();
                        info.data = Some(gst::PadProbeData::Event(
                            gst::event::Segment::builder(&fresh)
                                .seqnum(e.seqnum())
                                .build(),
                        ));
                    }
                }
                return gst::PadProbeReturn::Ok;
            }
            if ended.load(Ordering::SeqCst) {
                info.flow_res = Err(gst::FlowError::Eos);
                return gst::PadProbeReturn::Handled;
            }
            let Some(buffer) = info.buffer() else {
                return gst::PadProbeReturn::Ok;
            };
            let Some((rate, bpf)) = raw_format(pad) else {
                return gst::PadProbeReturn::Ok;
            };
            let Some(pts) = buffer.pts() else {
                return gst::PadProbeReturn::Ok;
            };
            let samples = (buffer.size() / bpf) as u64;
            let length = buffer
                .duration()
                .map_or(samples * 1_000_000_000 / rate, |d| d.nseconds());
            let seg = segment.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let a = running(&seg, pts);
            if std::env::var_os("RBV_AUDIO_DEBUG").is_some() {
                eprintln!(
                    "gate a={a} len={length} t={:?}",
                    clock.timeline.lock().unwrap()
                );
            }
            match clock.wait(a, a + length) {
                Verdict::Wait => unreachable!("wait returns a decision"),
                Verdict::Drop => {
                    info.flow_res = Ok(gst::FlowSuccess::Ok);
                    gst::PadProbeReturn::Handled
                }
                Verdict::Flush => {
                    info.flow_res = Err(gst::FlowError::Flushing);
                    gst::PadProbeReturn::Handled
                }
                Verdict::Eos => {
                    if !ended.swap(true, Ordering::SeqCst) {
                        pad.send_event(gst::event::Eos::new());
                    }
                    info.flow_res = Err(gst::FlowError::Eos);
                    gst::PadProbeReturn::Handled
                }
                Verdict::Pass { start, stop, shift } => {
                    let a = i128::from(a) - shift;
                    let ns_to_samples =
                        |ns: i128| (ns.max(0) * i128::from(rate) / 1_000_000_000) as u64;
                    let skip = ns_to_samples(start - a).min(samples);
                    let keep = ns_to_samples(stop - a).min(samples);
                    if keep <= skip {
                        info.flow_res = Ok(gst::FlowSuccess::Ok);
                        return gst::PadProbeReturn::Handled;
                    }
                    let cut = skip > 0 || keep < samples;
                    let moved = ranged || cut;
                    if !moved {
                        return gst::PadProbeReturn::Ok;
                    }
                    let range = (skip as usize * bpf)..(keep as usize * bpf);
                    let Ok(mut out) = buffer.copy_region(gst::BufferCopyFlags::all(), range) else {
                        return gst::PadProbeReturn::Ok;
                    };
                    let skipped = gst::ClockTime::from_nseconds(skip * 1_000_000_000 / rate);
                    let b = out.make_mut();
                    b.set_pts(if ranged {
                        gst::ClockTime::from_nseconds(
                            (a + i128::from(skipped.nseconds())).max(0) as u64
                        )
                    } else {
                        pts + skipped
                    });
                    b.set_duration(gst::ClockTime::from_nseconds(
                        (keep - skip) * 1_000_000_000 / rate,
                    ));
                    info.data = Some(gst::PadProbeData::Buffer(out));
                    gst::PadProbeReturn::Ok
                }
            }
        },
    );
}

/// Sample rate and bytes per frame of the raw PCM on `pad`.
fn raw_format(pad: &gst::Pad) -> Option<(u64, usize)> {
    let caps = pad.current_caps()?;
    let s = caps.structure(0)?;
    let rate = s.get::<i32>("rate").ok()?;
    let channels = s.get::<i32>("channels").ok()?;
    (rate > 0 && channels > 0).then(|| (rate as u64, 2 * channels as usize))
}

/// The join's sound: when the parts carry sound (the first one tells), a
/// queue and an `audioconvert` per part (the queues are answered, to link
/// the parts' sound to), in order into a `concat` whose output goes into
/// `mux`; `None` when there is none or the target holds none.
pub(crate) fn join_branch(
    pipeline: &gst::Pipeline,
    parts: usize,
    tail: Option<&'static str>,
) -> Option<Vec<gst::Element>> {
    let mux = pipeline.by_name("mux")?;
    let concat = gst::ElementFactory::make("concat")
        .name("aconcat")
        .build()
        .ok()?;
    pipeline.add(&concat).ok()?;
    let bin = add_branch(pipeline, &mux, &branch(tail?, false))?;
    concat.link(&bin).ok()?;
    let _ = concat.sync_state_with_parent();
    let mut inputs = Vec::with_capacity(parts);
    for i in 0..parts {
        // A part's demuxer pushes its frames and its sound from one thread:
        // the sound waits here for its turn in its concat, while the frames
        // go on into theirs (the muxer takes the streams in turns).
        let queue = gst::ElementFactory::make("queue")
            .name(format!("aqueue{i}"))
            .property("max-size-buffers", 0u32)
            .property("max-size-bytes", 0u32)
            .property("max-size-time", 5_000_000_000u64)
            .build()
            .ok()?;
        let conv = gst::ElementFactory::make("audioconvert")
            .name(format!("aconv{i}"))
            .build()
            .ok()?;
        pipeline.add_many([&queue, &conv]).ok()?;
        queue.link(&conv).ok()?;
        // Requested in order: the parts play in this order.
        let sink = concat.request_pad_simple("sink_%u")?;
        conv.static_pad("src")?.link(&sink).ok()?;
        let _ = conv.sync_state_with_parent();
        let _ = queue.sync_state_with_parent();
        inputs.push(queue);
    }
    Some(inputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn t(first: u64, end: u64, done: bool) -> Timeline {
        Timeline {
            first: Some(first * MS),
            end: Some(end * MS),
            done,
            ..Timeline::default()
        }
    }

    fn pass(start: u64, stop: u64) -> Verdict {
        Verdict::Pass {
            start: i128::from(start * MS),
            stop: i128::from(stop * MS),
            shift: 0,
        }
    }

    #[test]
    fn sound_waits_for_the_picture_and_ends_with_it() {
        // No frame written yet: wait; the picture ended with none: end.
        assert_eq!(Timeline::default().judge(0, 10 * MS), Verdict::Wait);
        let none = Timeline {
            done: true,
            ..Timeline::default()
        };
        assert_eq!(none.judge(0, 10 * MS), Verdict::Eos);
        // Frames written from 100 to 200 ms.
        let going = t(100, 200, false);
        assert_eq!(going.judge(0, 10 * MS), Verdict::Drop, "before the picture");
        assert_eq!(
            going.judge(95 * MS, 105 * MS),
            pass(100, 105),
            "cut at its start"
        );
        assert_eq!(going.judge(190 * MS, 200 * MS), pass(190, 200));
        assert_eq!(
            going.judge(195 * MS, 205 * MS),
            pass(195, 205),
            "whole: 10 ms"
        );
        assert_eq!(
            going.judge(200 * MS, 210 * MS),
            Verdict::Wait,
            "not there yet"
        );
        // The picture ended at 200 ms (Ctrl-C): cut there, then the end.
        let ended = t(100, 200, true);
        assert_eq!(ended.judge(195 * MS, 205 * MS), pass(195, 200));
        assert_eq!(ended.judge(200 * MS, 210 * MS), Verdict::Eos);
        let closing = Timeline {
            closing: true,
            ..going
        };
        assert_eq!(closing.judge(150 * MS, 160 * MS), Verdict::Flush);
    }

    #[test]
    fn a_segments_sound_starts_with_its_first_frame() {
        // A segment whose first frame is at 3 s of the input; its frames
        // are written from 0.
        let mut seg = Timeline {
            ranged: true,
            before: Some(2_000 * MS),
            ..Timeline::default()
        };
        assert_eq!(seg.judge(1_990 * MS, 2_000 * MS), Verdict::Drop, "warm-up");
        assert_eq!(seg.judge(2_995 * MS, 3_005 * MS), Verdict::Wait);
        seg.base = Some(3_000 * MS);
        seg.first = Some(0);
        seg.end = Some(40 * MS);
        let shift = i128::from(3_000 * MS);
        assert_eq!(
            seg.judge(2_995 * MS, 3_005 * MS),
            Verdict::Pass {
                start: 0,
                stop: i128::from(5 * MS),
                shift
            }
        );
        assert_eq!(seg.judge(3_040 * MS, 3_050 * MS), Verdict::Wait);
        seg.done = true;
        assert_eq!(seg.judge(3_040 * MS, 3_050 * MS), Verdict::Eos);
    }
}
