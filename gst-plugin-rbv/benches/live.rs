// SPDX-License-Identifier: MPL-2.0
//! Live sources through `rbvremove`, as a broadcast pipeline runs it: the
//! sink renders against the clock (`fakesink sync=true qos=true`), so a
//! frame that comes too late is a late frame (a QoS message) and upstream
//! elements with QoS start dropping. Printed per row: frames out per
//! second, QoS messages (late frames), the element's own time per frame
//! (from its sink pad to its src pad: p50, p95, max) and the latency it
//! answers in the pipeline's LATENCY query. A benchmark, not a test: it
//! prints figures and asserts nothing. Run: `cargo bench --bench live`
//! (`RBV_BENCH_LIVE_SECS=60` by default; `RBV_BENCH_LIVE_ONLY=text` runs the
//! rows whose label holds it).
//!
//! Sources:
//! - `videotestsrc is-live=true ! video/x-raw,width=1280,height=720,
//!   framerate=30/1 ! videoconvert ! rbvremove ...`: the README's live line,
//!   with videoconvert's QoS on (it drops frames when the sink says late).
//! - A live 1080p I420 camera: `appsrc is-live=true` handing frames of
//!   vtest.avi (people walking, decoded beforehand, 300 frames looped) at
//!   30 frames a second of wall-clock time, timestamped with the running
//!   time as a capture source does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;
use rbv_testkit as common;

const FPS: u64 = 30;

/// One row's figures.
struct Row {
    fps: f64,
    late: u64,
    p50: f64,
    p95: f64,
    max: f64,
    answered: f64,
    cpu_ms: f64,
}

fn percentile(v: &mut [f64], p: usize) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() * p).div_ceil(100)).clamp(1, v.len()) - 1]
}

/// Runs `pipeline` (its element `rbv`, its sink `sink`) for `secs` after a
/// 2 s start, `feed` pushing frames when given.
fn measure(
    pipeline: &gst::Pipeline,
    secs: u64,
    feed: Option<Box<dyn FnOnce(Arc<std::sync::atomic::AtomicBool>) + Send>>,
) -> Row {
    let rbv = pipeline.by_name("rbv").unwrap();
    let sink = pipeline.by_name("sink").unwrap();
    // The element's own time per frame: sink pad in, src pad out, by PTS.
    let entered: Arc<Mutex<std::collections::HashMap<u64, Instant>>> = Arc::default();
    let times: Arc<Mutex<Vec<f64>>> = Arc::default();
    let counting = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let entered = entered.clone();
        rbv.static_pad("sink")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(b) = info.buffer()
                    && let Some(pts) = b.pts()
                {
                    entered
                        .lock()
                        .unwrap()
                        .insert(pts.nseconds(), Instant::now());
                }
                gst::PadProbeReturn::Ok
            });
    }
    {
        let (entered, times, counting) = (entered.clone(), times.clone(), counting.clone());
        rbv.static_pad("src")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(b) = info.buffer()
                    && let Some(pts) = b.pts()
                    && let Some(t) = entered.lock().unwrap().remove(&pts.nseconds())
                    && counting.load(Ordering::Relaxed)
                {
                    times
                        .lock()
                        .unwrap()
                        .push(t.elapsed().as_secs_f64() * 1000.0);
                }
                gst::PadProbeReturn::Ok
            });
    }
    let out = Arc::new(AtomicU64::new(0));
    {
        let (out, counting) = (out.clone(), counting.clone());
        sink.static_pad("sink")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                if counting.load(Ordering::Relaxed) {
                    out.fetch_add(1, Ordering::Relaxed);
                }
                gst::PadProbeReturn::Ok
            });
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    pipeline.set_state(gst::State::Playing).unwrap();
    let feeder = feed.map(|f| {
        let stop = stop.clone();
        std::thread::spawn(move || f(stop))
    });
    let bus = pipeline.bus().unwrap();
    let wait = |d: Duration, late: &mut u64, counting: bool| {
        let until = Instant::now() + d;
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(left.as_nanos() as u64))
            else {
                break;
            };
            match msg.view() {
                gst::MessageView::Qos(_) if counting => *late += 1,
                gst::MessageView::Error(e) => panic!("{}", e.error()),
                _ => {}
            }
        }
    };
    let mut late = 0;
    wait(Duration::from_secs(2), &mut late, false);
    counting.store(true, Ordering::Relaxed);
    let (t0, c0) = (Instant::now(), common::cpu_seconds());
    wait(Duration::from_secs(secs), &mut late, true);
    counting.store(false, Ordering::Relaxed);
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), common::cpu_seconds() - c0);
    // What the element adds to the pipeline's latency, as it answers it.
    let answered = {
        let mut ours = gst::query::Latency::new();
        let mut up = gst::query::Latency::new();
        let ok = rbv.static_pad("src").unwrap().query(&mut ours)
            && rbv.static_pad("sink").unwrap().peer_query(&mut up);
        if ok {
            (ours.result().1.nseconds() as f64 - up.result().1.nseconds() as f64) / 1e6
        } else {
            f64::NAN
        }
    };
    stop.store(true, Ordering::Relaxed);
    if let Some(f) = feeder {
        let _ = f.join();
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let frames = out.load(Ordering::Relaxed);
    let mut t = std::mem::take(&mut *times.lock().unwrap());
    Row {
        fps: frames as f64 / wall,
        late,
        p50: percentile(&mut t, 50),
        p95: percentile(&mut t, 95),
        max: t.iter().copied().fold(0.0, f64::max),
        answered,
        cpu_ms: cpu * 1000.0 / frames.max(1) as f64,
    }
}

/// The README's live line at 720p, `rbvremove {props}`.
fn test_source(props: &str, secs: u64) -> Row {
    let pipeline = common::launch(&format!(
        "videotestsrc is-live=true ! video/x-raw,width=1280,height=720,framerate={FPS}/1 ! \
         videoconvert ! rbvremove name=rbv {props} stats-interval=0 ! \
         fakesink name=sink sync=true qos=true"
    ));
    measure(&pipeline, secs, None)
}

/// A live 1080p I420 camera of people walking, `rbvremove {props}`.
fn camera(props: &str, secs: u64, frames: &Arc<(gst::Caps, Vec<gst::Buffer>)>) -> Row {
    let pipeline = common::launch(&format!(
        "appsrc name=src is-live=true format=time ! rbvremove name=rbv {props} \
         stats-interval=0 ! fakesink name=sink sync=true qos=true"
    ));
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    let caps = frames.0.clone();
    let mut s = caps.structure(0).unwrap().to_owned();
    s.set("framerate", gst::Fraction::new(FPS as i32, 1));
    src.set_caps(Some(&gst::Caps::builder_full().structure(s).build()));
    src.set_property("max-buffers", 2u64);
    src.set_property("leaky-type", gst_app::AppLeakyType::Downstream);
    let frames = frames.clone();
    let pipe = pipeline.clone();
    let feed = Box::new(move |stop: Arc<std::sync::atomic::AtomicBool>| {
        let period = Duration::from_nanos(1_000_000_000 / FPS);
        let start = Instant::now();
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let due = period * i as u32;
            if let Some(w) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(w);
            }
            // Stamped as a capture source stamps: the running time now.
            let now = pipe
                .clock()
                .map(|c| c.time())
                .zip(pipe.base_time())
                .map(|(t, b)| t.saturating_sub(b));
            let mut b = frames.1[i as usize % frames.1.len()].copy();
            {
                let bm = b.make_mut();
                bm.set_pts(now);
                bm.set_duration(gst::ClockTime::from_nseconds(period.as_nanos() as u64));
                bm.unset_flags(gst::BufferFlags::DISCONT);
            }
            if src.push_buffer(b).is_err() {
                break;
            }
            i += 1;
        }
    });
    measure(&pipeline, secs, Some(feed))
}

fn main() {
    common::init();
    let secs: u64 = std::env::var("RBV_BENCH_LIVE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let only = std::env::var("RBV_BENCH_LIVE_ONLY").ok();
    let frames = Arc::new(common::decoded_frames("vtest.avi", 1920, 1080, "I420", 300));
    println!(
        "live sources through rbvremove into fakesink sync=true qos=true, {secs} s a row after a \
         2 s start, {} CPU cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<62} {:>6} {:>5} {:>9} {:>9} {:>9} {:>9} {:>8}",
        "source and settings", "fps", "late", "p50 ms", "p95 ms", "max ms", "answered", "CPU ms/f"
    );
    let rows: [(&str, &str, bool); 6] = [
        ("videotestsrc 720p30 ! videoconvert ! rbvremove", "", false),
        (
            "videotestsrc 720p30 ! videoconvert ! rbvremove detector=false",
            "detector=false",
            false,
        ),
        (
            "videotestsrc 720p30 ! videoconvert ! rbvremove mode=async",
            "mode=async",
            false,
        ),
        ("live camera 1080p30 I420, people ! rbvremove", "", true),
        (
            "live camera 1080p30 I420, people ! rbvremove detector=false",
            "detector=false",
            true,
        ),
        (
            "live camera 1080p30 I420, people ! rbvremove mode=async",
            "mode=async",
            true,
        ),
    ];
    for (label, props, cam) in rows {
        if only.as_ref().is_some_and(|o| !label.contains(o.as_str())) {
            continue;
        }
        let r = if cam {
            camera(props, secs, &frames)
        } else {
            test_source(props, secs)
        };
        println!(
            "{label:<62} {:>6.1} {:>5} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>8.2}",
            r.fps, r.late, r.p50, r.p95, r.max, r.answered, r.cpu_ms
        );
    }
}
