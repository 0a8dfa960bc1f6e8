// SPDX-License-Identifier: MPL-2.0
//! Soak: 100k frames through `rbvremove model=human` (vtest.avi frames at
//! 320x240 held in memory, pushed as fast as the element takes them), with
//! the background changed every 1000 frames (transparent, colour, blur, image,
//! a placed canvas, smoothing on and off), printing RSS every 5000 frames and,
//! at the end, how far RSS moved after the warm-up (the first 10k frames).
//! Run: `cargo bench --bench soak` (RBV_SOAK_FRAMES to change the count).
//! A benchmark: it prints figures; it fails loudly (exit 1, no summary) when
//! a push is refused, an error reaches the bus or the end does not come.

use std::time::Instant;

use gst::prelude::*;

use rbv_testkit as common;

fn main() {
    common::init();
    let total: usize = std::env::var("RBV_SOAK_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let (caps, frames) = common::decoded_frames("vtest.avi", 320, 240, "I420", 50);
    let pipeline = common::launch(
        "appsrc name=src format=time ! rbvremove name=rbv model=human stats-interval=0 ! \
         fakesink sync=false",
    );
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    let rbv = pipeline.by_name("rbv").unwrap();
    rbv.set_property(
        "background-image",
        common::data("coffee.png").to_str().unwrap(),
    );
    src.set_caps(Some(&caps));
    src.set_block(true);
    src.set_property("max-buffers", 4u64);
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();

    let looks: [&[(&str, &str)]; 6] = [
        &[
            ("background", "transparent"),
            ("canvas-width", "0"),
            ("canvas-height", "0"),
        ],
        &[("background", "color"), ("background-color", "#102030")],
        &[("background", "blur"), ("blur-radius", "16")],
        &[("background", "image")],
        &[
            ("background", "color"),
            ("canvas-width", "640"),
            ("canvas-height", "360"),
            ("anchor", "bottom-right"),
            ("scale", "0.5"),
        ],
        &[
            ("background", "transparent"),
            ("canvas-width", "0"),
            ("canvas-height", "0"),
            ("smoothing", "0.5"),
            ("scale", "1"),
        ],
    ];
    println!(
        "soak: {total} frames, 320x240 I420, rbvremove model=human, a new look every 1000 frames"
    );
    println!("{:>8} {:>9} {:>9}", "frames", "RSS MiB", "fps");
    let started = Instant::now();
    let mut window = Instant::now();
    let mut after_warmup = Vec::new();
    for i in 0..total {
        if i % 1000 == 0 {
            for (name, value) in looks[(i / 1000) % looks.len()] {
                rbv.set_property_from_str(name, value);
            }
        }
        let mut b = frames[i % frames.len()].clone();
        b.make_mut()
            .set_pts(gst::ClockTime::from_mseconds(40 * i as u64));
        if let Err(flow) = src.push_buffer(b) {
            let why = bus
                .pop_filtered(&[gst::MessageType::Error])
                .map_or(String::new(), |m| format!(": {m:?}"));
            eprintln!("FAILED: frame {i} refused ({flow:?}){why}");
            std::process::exit(1);
        }
        if let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error, gst::MessageType::Warning]) {
            println!("bus: {msg:?}");
            if msg.type_() == gst::MessageType::Error {
                eprintln!("FAILED: an error at frame {i}");
                std::process::exit(1);
            }
        }
        if (i + 1) % 5000 == 0 {
            let rss = common::rss_mib(None);
            println!(
                "{:>8} {rss:>9.1} {:>9.0}",
                i + 1,
                5000.0 / window.elapsed().as_secs_f64()
            );
            window = Instant::now();
            if i + 1 > 10_000 {
                after_warmup.push(rss);
            }
        }
    }
    src.end_of_stream().unwrap();
    // Panics (exit 101, no summary) on an error or no end within a minute.
    common::wait_end(&pipeline, std::time::Duration::from_secs(60)).expect_eos("soak: the end");
    pipeline.set_state(gst::State::Null).unwrap();
    if let (Some(lo), Some(hi)) = (
        after_warmup.iter().copied().reduce(f64::min),
        after_warmup.iter().copied().reduce(f64::max),
    ) {
        println!(
            "after warm-up: RSS {lo:.1}-{hi:.1} MiB, spread {:.2} % of the lowest; {:.0} s in all",
            (hi - lo) / lo * 100.0,
            started.elapsed().as_secs_f64()
        );
    }
}
