// SPDX-License-Identifier: MPL-2.0
//! What a video file holds, read without decoding a frame: `parsebin`
//! demuxes and parses the whole file, and the video stream's caps (the size
//! the container or the codec's parser declares), its packets and their
//! timestamps are counted. Cheap on any input, bombs included.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

use crate::limits::{Span, vp8_keyframe_size};
use crate::{Failure, init, setup};

/// A file's video stream, as its packets tell.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// The largest frame size declared (caps, and VP8 keyframe headers).
    pub width: u32,
    pub height: u32,
    /// Video packets (frames) in the file.
    pub frames: u64,
    /// From the first packet's timestamp to the end of the last one.
    pub seconds: f64,
    /// What the container's header claims, if anything.
    pub claimed_seconds: Option<f64>,
    /// Bytes of audio and video packets (the rest is the container, or
    /// padding).
    pub media_bytes: u64,
}

#[derive(Default)]
struct Seen {
    width: u64,
    height: u64,
    span: Option<Span>,
    bytes: Arc<std::sync::atomic::AtomicU64>,
}

/// Reads `path` to its end without decoding; fails when it holds no video
/// stream or cannot be demuxed, or after `timeout`.
pub fn probe(path: &Path, timeout: Duration) -> Result<Probe, Failure> {
    let (pipeline, parse) = parsed(path)?;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let kept = seen.clone();
    let weak = pipeline.downgrade();
    parse.connect_pad_added(move |_, pad| {
        let Some(pipeline) = weak.upgrade() else {
            return;
        };
        // Not part of the preroll (async=false): a sink that prerolled on
        // one stream would block the demuxer's thread before another
        // stream's sink could preroll, and the file would never end.
        let Ok(sink) = gst::ElementFactory::make("fakesink")
            .property("sync", false)
            .property("async", false)
            .build()
        else {
            return;
        };
        let _ = pipeline.add(&sink);
        let _ = sink.sync_state_with_parent();
        let Some(sink_pad) = sink.static_pad("sink") else {
            return;
        };
        let bytes = kept.lock().unwrap_or_else(|e| e.into_inner()).bytes.clone();
        sink_pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(b) = info.buffer() {
                bytes.fetch_add(b.size() as u64, std::sync::atomic::Ordering::Relaxed);
            }
            gst::PadProbeReturn::Ok
        });
        let caps = pad.current_caps().or_else(|| Some(pad.query_caps(None)));
        let video = caps
            .as_ref()
            .and_then(|c| c.structure(0).map(|s| s.name().starts_with("video/")))
            .unwrap_or(false);
        if video {
            let mut s = kept.lock().unwrap_or_else(|e| e.into_inner());
            // The first video stream is the one a job reads.
            if s.span.is_none() {
                s.span = Some(Span::watch(&sink_pad));
                let kept = kept.clone();
                sink_pad.add_probe(
                    gst::PadProbeType::EVENT_DOWNSTREAM | gst::PadProbeType::BUFFER,
                    move |_, info| {
                        let size = match &info.data {
                            Some(gst::PadProbeData::Event(ev)) => match ev.view() {
                                gst::EventView::Caps(c) => c.caps().structure(0).and_then(|s| {
                                    Some((
                                        s.get::<i32>("width").ok()?.max(0) as u64,
                                        s.get::<i32>("height").ok()?.max(0) as u64,
                                    ))
                                }),
                                _ => None,
                            },
                            Some(gst::PadProbeData::Buffer(b)) => {
                                b.map_readable().ok().and_then(|m| vp8_keyframe_size(&m))
                            }
                            _ => None,
                        };
                        if let Some((w, h)) = size {
                            let mut s = kept.lock().unwrap_or_else(|e| e.into_inner());
                            if w * h > s.width * s.height {
                                (s.width, s.height) = (w, h);
                            }
                        }
                        gst::PadProbeReturn::Ok
                    },
                );
            }
        }
        let _ = pad.link(&sink_pad);
    });
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let result = (|| {
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| unreadable(&bus))?;
        let start = Instant::now();
        loop {
            let left = timeout.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Err(Failure::Timeout(timeout));
            }
            let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(
                left.as_millis().min(200) as u64
            )) else {
                continue;
            };
            match msg.view() {
                gst::MessageView::Eos(_) => break,
                gst::MessageView::Error(e) => return Err(crate::pipeline_failure(e)),
                _ => {}
            }
        }
        Ok(pipeline
            .query_duration::<gst::ClockTime>()
            .map(|d| d.nseconds() as f64 / 1e9))
    })();
    let _ = pipeline.set_state(gst::State::Null);
    let claimed_seconds = result?;
    let s = seen.lock().unwrap_or_else(|e| e.into_inner());
    let span = s
        .span
        .as_ref()
        .filter(|s| s.frames() > 0)
        .ok_or(Failure::NoFrames)?;
    Ok(Probe {
        width: s.width.min(u64::from(u32::MAX)) as u32,
        height: s.height.min(u64::from(u32::MAX)) as u32,
        frames: span.frames(),
        seconds: span.seconds(),
        claimed_seconds,
        media_bytes: s.bytes.load(std::sync::atomic::Ordering::Relaxed),
    })
}

/// `filesrc ! parsebin` on `path`: the file demuxed and parsed, nothing
/// decoded; the caller links parsebin's pads.
fn parsed(path: &Path) -> Result<(gst::Pipeline, gst::Element), Failure> {
    init().map_err(Failure::Setup)?;
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("filesrc")
        .property("location", path)
        .build()
        .map_err(setup)?;
    let parse = gst::ElementFactory::make("parsebin")
        .build()
        .map_err(setup)?;
    pipeline.add_many([&src, &parse]).map_err(setup)?;
    src.link(&parse).map_err(setup)?;
    Ok((pipeline, parse))
}

fn unreadable(bus: &gst::Bus) -> Failure {
    crate::first_error(bus)
        .unwrap_or_else(|| Failure::Setup("the file cannot be read as a video".into()))
}

/// Which kinds of stream a file holds, from its container's header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Streams {
    pub video: bool,
    pub audio: bool,
}

/// What streams `path` holds, read from its header (the demuxer's pads;
/// nothing is decoded, the file is not read to its end); fails when it
/// cannot be demuxed, or after `timeout`. A picture (JPEG, PNG) is video.
pub fn streams(path: &Path, timeout: Duration) -> Result<Streams, Failure> {
    let (pipeline, parse) = parsed(path)?;
    let found = Arc::new(Mutex::new((Streams::default(), false)));
    let seen = found.clone();
    let weak = pipeline.downgrade();
    parse.connect_pad_added(move |_, pad| {
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let name = caps
            .structure(0)
            .map(|s| s.name().to_string())
            .unwrap_or_default();
        {
            let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
            s.0.video |= name.starts_with("video/") || name.starts_with("image/");
            s.0.audio |= name.starts_with("audio/");
        }
        // Each stream to a sink that takes it without waiting.
        if let Some(pipeline) = weak.upgrade()
            && let Ok(sink) = gst::ElementFactory::make("fakesink")
                .property("sync", false)
                .property("async", false)
                .build()
            && pipeline.add(&sink).is_ok()
        {
            let _ = sink.sync_state_with_parent();
            if let Some(p) = sink.static_pad("sink") {
                let _ = pad.link(&p);
            }
        }
    });
    let done = found.clone();
    parse.connect_no_more_pads(move |_| {
        done.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
    });
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let result = (|| {
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| unreadable(&bus))?;
        let start = Instant::now();
        loop {
            if found.lock().unwrap_or_else(|e| e.into_inner()).1 {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(Failure::Timeout(timeout));
            }
            if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(20)) {
                match msg.view() {
                    gst::MessageView::Eos(_) => return Ok(()),
                    gst::MessageView::Error(e) => return Err(crate::pipeline_failure(e)),
                    _ => {}
                }
            }
        }
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result?;
    let streams = found.lock().unwrap_or_else(|e| e.into_inner()).0;
    Ok(streams)
}
