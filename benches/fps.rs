//! Throughput of `rbvremove model=human` on real decoded frames (vtest.avi
//! scaled to 720p and 1080p, held in memory), printed as a table. Beside it:
//! a pass-through baseline (the same frames converted to RGBA, which any
//! element that outputs RGBA must do) and the bare model inference, so the
//! element's own overhead shows. Run: `cargo bench --bench fps`.
//! A benchmark, not a test: it prints figures and asserts nothing about speed.

use std::time::Instant;

use gst::prelude::*;
use gstrbv::model::{self, RunnerOptions, Segmenter};

#[path = "../tests/common/mod.rs"]
mod common;

const FRAMES: usize = 300;

fn cpu_seconds() -> f64 {
    // utime + stime of this process, in clock ticks (100 Hz on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// The first `n` frames of vtest.avi at `width`x`height` in `format`.
fn decode(width: u32, height: u32, format: &str, n: usize) -> (gst::Caps, Vec<gst::Buffer>) {
    let mut caps = None;
    let mut buffers = Vec::new();
    common::for_each_sample(
        &format!(
            "filesrc location={} ! decodebin ! videoconvert ! videoscale ! \
             video/x-raw,format={format},width={width},height={height},pixel-aspect-ratio=1/1 ! \
             appsink name=sink sync=false",
            common::data("vtest.avi").display()
        ),
        |s| {
            caps.get_or_insert_with(|| s.caps().unwrap().to_owned());
            buffers.push(s.buffer().unwrap().copy_deep().unwrap());
            buffers.len() < n
        },
    );
    (caps.expect("frames decoded"), buffers)
}

/// Pushes `FRAMES` frames through `appsrc ! <chain> ! fakesink`; returns (wall ms, cpu ms) per frame.
fn run(chain: &str, caps: &gst::Caps, frames: &[gst::Buffer]) -> (f64, f64) {
    let pipeline = common::launch(&format!(
        "appsrc name=src format=time ! {chain} ! fakesink sync=false"
    ));
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    src.set_caps(Some(caps));
    src.set_max_bytes(0);
    src.set_block(true);
    src.set_property("max-buffers", 4u64);
    pipeline.set_state(gst::State::Playing).unwrap();
    // Warm up on a few frames first (session, converters, caches).
    let push = |i: usize| {
        let mut b = frames[i % frames.len()].clone();
        let b = b.make_mut();
        b.set_pts(gst::ClockTime::from_mseconds(40 * i as u64));
        src.push_buffer(b.to_owned()).unwrap();
    };
    for i in 0..10 {
        push(i);
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (t0, c0) = (Instant::now(), cpu_seconds());
    for i in 10..10 + FRAMES {
        push(i);
    }
    src.end_of_stream().unwrap();
    let bus = pipeline.bus().unwrap();
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(600),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
    if let Some(gst::MessageView::Error(e)) = msg.as_ref().map(|m| m.view()) {
        panic!("{chain}: {}", e.error());
    }
    pipeline.set_state(gst::State::Null).unwrap();
    (wall * 1000.0 / FRAMES as f64, cpu * 1000.0 / FRAMES as f64)
}

fn bare_inference(spec: model::ModelSpec) -> f64 {
    // One thread, as the element runs the selfie models by default.
    let options = RunnerOptions {
        threads: 1,
        ..RunnerOptions::default()
    };
    let mut seg = Segmenter::new(spec, None, &options).expect("model loads");
    let (w, h) = seg.input_size();
    let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect();
    for _ in 0..10 {
        seg.run(&rgb, w as usize * 3).unwrap();
    }
    let t0 = Instant::now();
    for _ in 0..FRAMES {
        seg.run(&rgb, w as usize * 3).unwrap();
    }
    t0.elapsed().as_secs_f64() * 1000.0 / FRAMES as f64
}

fn main() {
    common::init();
    println!(
        "rbvremove throughput, {FRAMES} vtest.avi frames per row, {} CPU cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "bare inference: selfie square {:.2} ms, selfie landscape {:.2} ms",
        bare_inference(model::HUMAN_SQUARE),
        bare_inference(model::HUMAN_LANDSCAPE)
    );
    println!(
        "{:<6} {:<5} {:<40} {:>8} {:>9} {:>9}",
        "size", "input", "chain", "fps", "ms/frame", "CPU ms/f"
    );
    for (w, h, label) in [(1280, 720, "720p"), (1920, 1080, "1080p")] {
        for format in ["I420", "RGBA"] {
            let (caps, frames) = decode(w, h, format, 50);
            for chain in [
                "videoconvert ! video/x-raw,format=RGBA",
                "rbvremove model=human",
                "rbvremove model=human human-variant=square",
                "rbvremove model=human threads=2",
                "rbvremove model=human background=color",
                "rbvremove model=human background=blur",
            ] {
                let (ms, cpu) = run(chain, &caps, &frames);
                println!(
                    "{label:<6} {format:<5} {chain:<40} {:>8.1} {ms:>9.2} {cpu:>9.2}",
                    1000.0 / ms
                );
            }
        }
    }
}
