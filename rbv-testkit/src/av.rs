// SPDX-License-Identifier: MPL-2.0
//! Picture and sound as a player gets them: a clip with a flash and a beep
//! at the same moment, and what a file holds once GStreamer decodes it
//! (where the picture and the sound start and end, when the flash is seen
//! and the beep heard), to check that an output keeps its sound in sync.

use std::path::Path;
use std::sync::{Arc, Mutex};

use gst::prelude::*;

/// The clips' frame rate: one frame is 40 ms.
pub const FPS: u32 = 25;
/// One frame, in seconds.
pub const FRAME: f64 = 1.0 / FPS as f64;

/// `seconds` of 320x240 black at 25 fps with one white frame (the flash)
/// at frame `flash`, and 48 kHz sound silent but for a 1 kHz beep one
/// frame long that starts with it: H.264 and AAC in MP4, as phones write
/// them (made with ffmpeg).
pub fn flash_and_beep(path: &Path, seconds: u32, flash: u32) {
    let at = f64::from(flash) / f64::from(FPS);
    let video = format!(
        "color=c=black:s=320x240:r={FPS}:d={seconds},\
         drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='eq(n\\,{flash})'"
    );
    let audio = format!(
        "aevalsrc='if(between(t\\,{at}\\,{end})\\,0.8*sin(2*PI*1000*t)\\,0)':s=48000:d={seconds}",
        end = at + FRAME
    );
    let st = std::process::Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-f", "lavfi", "-i", &video])
        .args(["-f", "lavfi", "-i", &audio])
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac"])
        .args(["-shortest"])
        .arg(path)
        .status()
        .expect("ffmpeg (installed by setup/setup.sh)");
    assert!(st.success(), "ffmpeg could not make {}", path.display());
}

/// What a decoded file holds; times in seconds of running time.
#[derive(Debug, Default, Clone)]
pub struct Decoded {
    pub frames: usize,
    /// From the first frame's start to the last one's end.
    pub picture: Option<(f64, f64)>,
    /// From the first sample to the end of the last.
    pub sound: Option<(f64, f64)>,
    /// Start of the first frame whose mean luma is over 200 (of 255).
    pub flash: Option<f64>,
    /// The first sample louder than a quarter of full scale.
    pub beep: Option<f64>,
}

/// Asserts that `d`'s sound lasts as long as its picture and its beep is
/// heard with its flash (when both are there), each within one frame;
/// prints the measures.
pub fn assert_in_sync(d: &Decoded, what: &str) {
    let (picture, sound) = (d.picture_seconds(), d.sound_seconds());
    eprintln!(
        "{what}: {} frames, picture {picture:.4} s, sound {sound:.4} s, flash at {:?} s, beep at {:?} s",
        d.frames, d.flash, d.beep
    );
    assert!(d.sound.is_some(), "{what}: no sound: {d:?}");
    assert!(
        (sound - picture).abs() <= FRAME,
        "{what}: sound {sound:.4} s, picture {picture:.4} s"
    );
    if let (Some(f), Some(b)) = (d.flash, d.beep) {
        assert!(
            (b - f).abs() <= FRAME,
            "{what}: flash at {f:.4} s, beep at {b:.4} s"
        );
    }
}

impl Decoded {
    pub fn picture_seconds(&self) -> f64 {
        self.picture.map_or(0.0, |(a, b)| b - a)
    }
    pub fn sound_seconds(&self) -> f64 {
        self.sound.map_or(0.0, |(a, b)| b - a)
    }
}

#[derive(Default)]
struct Seen {
    d: Decoded,
}

fn running(sample: &gst::Sample, pts: gst::ClockTime) -> f64 {
    sample
        .segment()
        .and_then(|s| s.downcast_ref::<gst::ClockTime>().cloned())
        .and_then(|s| s.to_running_time(pts))
        .unwrap_or(pts)
        .nseconds() as f64
        / 1e9
}

/// Decodes `path` (every stream, as a player does) and measures it.
pub fn decode_av(path: &Path) -> Decoded {
    crate::init();
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("filesrc")
        .property("location", path)
        .build()
        .unwrap();
    let dec = gst::ElementFactory::make("decodebin").build().unwrap();
    pipeline.add_many([&src, &dec]).unwrap();
    src.link(&dec).unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let weak = pipeline.downgrade();
    let kept = seen.clone();
    dec.connect_pad_added(move |_, pad| {
        let Some(pipeline) = weak.upgrade() else {
            return;
        };
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let name = caps
            .structure(0)
            .map(|s| s.name().to_string())
            .unwrap_or_default();
        let video = name.starts_with("video/");
        let desc = if video {
            "videoconvert ! video/x-raw,format=GRAY8 ! appsink name=s sync=false"
        } else if name.starts_with("audio/") {
            "audioconvert ! audioresample ! audio/x-raw,format=S16LE,channels=1,rate=48000,\
             layout=interleaved ! appsink name=s sync=false"
        } else {
            return;
        };
        let bin = gst::parse::bin_from_description(desc, true).unwrap();
        let sink = bin
            .by_name("s")
            .unwrap()
            .downcast::<gst_app::AppSink>()
            .unwrap();
        let seen = kept.clone();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |s| {
                    let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let mut seen = seen.lock().unwrap();
                    if video {
                        on_frame(&mut seen.d, &sample);
                    } else {
                        on_sound(&mut seen.d, &sample);
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        pipeline.add(&bin).unwrap();
        bin.sync_state_with_parent().unwrap();
        pad.link(&bin.static_pad("sink").unwrap()).unwrap();
    });
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(120),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    pipeline.set_state(gst::State::Null).unwrap();
    match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => {}
        Some(gst::MessageView::Error(e)) => {
            panic!("{}: {} ({:?})", path.display(), e.error(), e.debug())
        }
        _ => panic!("{}: no end within 120 s", path.display()),
    }
    seen.lock().unwrap().d.clone()
}

fn on_frame(d: &mut Decoded, sample: &gst::Sample) {
    let (Some(buffer), Some(caps)) = (sample.buffer(), sample.caps()) else {
        return;
    };
    let Some(pts) = buffer.pts() else { return };
    let info = gst_video::VideoInfo::from_caps(caps).unwrap();
    let map = buffer.map_readable().unwrap();
    let (w, h, stride) = (
        info.width() as usize,
        info.height() as usize,
        info.stride()[0] as usize,
    );
    let sum: u64 = (0..h)
        .flat_map(|y| map[y * stride..y * stride + w].iter())
        .map(|&v| u64::from(v))
        .sum();
    let luma = sum as f64 / (w * h) as f64;
    let start = running(sample, pts);
    let end = start
        + buffer
            .duration()
            .map_or(FRAME, |d| d.nseconds() as f64 / 1e9);
    d.frames += 1;
    d.picture = Some(match d.picture {
        Some((a, b)) => (a.min(start), b.max(end)),
        None => (start, end),
    });
    if luma > 200.0 && d.flash.is_none_or(|f| start < f) {
        d.flash = Some(start);
    }
}

fn on_sound(d: &mut Decoded, sample: &gst::Sample) {
    let Some(buffer) = sample.buffer() else {
        return;
    };
    let Some(pts) = buffer.pts() else { return };
    let map = buffer.map_readable().unwrap();
    let samples: Vec<i16> = map
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect();
    let start = running(sample, pts);
    let end = start + samples.len() as f64 / 48_000.0;
    d.sound = Some(match d.sound {
        Some((a, b)) => (a.min(start), b.max(end)),
        None => (start, end),
    });
    if let Some(i) = samples.iter().position(|s| s.unsigned_abs() > 8192) {
        let at = start + i as f64 / 48_000.0;
        if d.beep.is_none_or(|b| at < b) {
            d.beep = Some(at);
        }
    }
}
