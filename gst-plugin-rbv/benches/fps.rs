// SPDX-License-Identifier: MPL-2.0
//! Throughput of `rbvremove model=human` on real decoded frames (vtest.avi
//! and the demo clip scaled to 720p and 1080p, held in memory), printed as a
//! table; then a live 30 fps source through every model in `mode=async`
//! (output rate, mask age), and memory for one and four `pro` instances.
//! Everything also goes to target/bench/fps.json (benches/plot.py draws it).
//! Beside the throughput:
//! a pass-through baseline (the same frames converted to RGBA, which any
//! element that outputs RGBA must do) and the bare model inference, so the
//! element's own overhead shows. Run: `cargo bench --bench fps`.
//! A benchmark, not a test: it prints figures and asserts nothing about speed.

use std::time::Instant;

use gst::prelude::*;
use rbv_core::model::{self, RunnerOptions, Segmenter};

use rbv_testkit as common;

const FRAMES: usize = 300;

/// Pushes `count` frames through `appsrc ! <chain> ! fakesink`; returns
/// (wall ms, cpu ms) per frame; `fresh`: each frame copied into a newly
/// allocated buffer before it is pushed, as a decoder hands a new buffer
/// every frame (the plain rows cycle the same decoded frames).
fn run_n(
    chain: &str,
    caps: &gst::Caps,
    frames: &[gst::Buffer],
    count: usize,
    fresh: bool,
) -> (f64, f64) {
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
    // Timestamps at the caps' rate (the detector's schedule follows them).
    let fps = gst_video::VideoInfo::from_caps(caps)
        .map(|i| i.fps())
        .ok()
        .filter(|f| f.numer() > 0 && f.denom() > 0)
        .unwrap_or(gst::Fraction::new(25, 1));
    let frame_ns = 1_000_000_000 * fps.denom() as u64 / fps.numer() as u64;
    // Warm up on a few frames first (session, converters, caches).
    let push = |i: usize| {
        let frame = &frames[i % frames.len()];
        let mut b = if fresh {
            let map = frame.map_readable().unwrap();
            let mut b = gst::Buffer::with_size(map.size()).unwrap();
            b.get_mut()
                .unwrap()
                .copy_from_slice(0, map.as_slice())
                .unwrap();
            b
        } else {
            frame.clone()
        };
        let b = b.make_mut();
        b.set_pts(gst::ClockTime::from_nseconds(frame_ns * i as u64));
        // One stream: the decoder marked its first frame DISCONT, and the
        // frames cycle.
        if i > 0 {
            b.unset_flags(gst::BufferFlags::DISCONT);
        }
        b.set_duration(gst::ClockTime::from_nseconds(frame_ns));
        src.push_buffer(b.to_owned()).unwrap();
    };
    for i in 0..10 {
        push(i);
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (t0, c0) = (Instant::now(), common::cpu_seconds());
    for i in 10..10 + count {
        push(i);
    }
    src.end_of_stream().unwrap();
    let bus = pipeline.bus().unwrap();
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(600),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), common::cpu_seconds() - c0);
    if let Some(gst::MessageView::Error(e)) = msg.as_ref().map(|m| m.view()) {
        panic!("{chain}: {}", e.error());
    }
    pipeline.set_state(gst::State::Null).unwrap();
    (wall * 1000.0 / count as f64, cpu * 1000.0 / count as f64)
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

/// Resident and peak memory of this process, in MiB (VmRSS, VmHWM).
fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A live 30 fps source (1280x720, moving) through `rbvremove model=M
/// mode=async` to a clock-synced sink for `secs`: output fps and mean mask age.
fn live_async(model: &str, secs: u64) -> (f64, f64) {
    let frames = secs * 30;
    let pipeline = common::launch(&format!(
        "videotestsrc is-live=true pattern=ball num-buffers={frames} ! \
         video/x-raw,format=I420,width=1280,height=720,framerate=30/1 ! \
         rbvremove model={model} mode=async stats-interval=500 ! fakesink name=sink sync=true"
    ));
    let sink = pipeline.by_name("sink").unwrap();
    sink.set_property("signal-handoffs", true);
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let c = count.clone();
    sink.connect("handoff", false, move |_| {
        c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        None
    });
    pipeline.set_state(gst::State::Playing).unwrap();
    let t0 = Instant::now();
    let bus = pipeline.bus().unwrap();
    let mut ages = Vec::new();
    while let Some(msg) = bus.timed_pop(gst::ClockTime::from_seconds(secs + 30)) {
        match msg.view() {
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure().filter(|s| s.name() == "rbv-stats") {
                    let age = s.get::<u32>("mask-age").unwrap_or(0);
                    if age > 0 {
                        ages.push(f64::from(age));
                    }
                }
            }
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{model}: {}", e.error()),
            _ => {}
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    pipeline.set_state(gst::State::Null).unwrap();
    let out = count.load(std::sync::atomic::Ordering::Relaxed) as f64;
    let age = if ages.is_empty() {
        0.0
    } else {
        ages.iter().sum::<f64>() / ages.len() as f64
    };
    (out / wall, age)
}

/// In a fresh process (this bench run again): RSS before any instance and
/// with `n` started instances of `model` (each prerolled on one frame),
/// each with its own thread count when `distinct` (so no session can be
/// shared), in MiB.
fn instances_rss(model: &str, n: usize, distinct: bool) -> (f64, f64) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env("RBV_BENCH_MEMORY", format!("{model}:{n}:{distinct}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<f64> = text
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    assert_eq!(
        v.len(),
        2,
        "memory probe said: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (v[0], v[1])
}

/// The child side of [`instances_rss`].
fn memory_probe(spec: &str) {
    let mut parts = spec.split(':');
    let (model, n, distinct) = (
        parts.next().unwrap(),
        parts.next().unwrap().parse::<usize>().unwrap(),
        parts.next() == Some("true"),
    );
    common::init();
    let before = memory_mib().0;
    let pipelines: Vec<gst::Pipeline> = (0..n)
        .map(|i| {
            let threads = if distinct { i + 1 } else { 0 };
            let p = common::launch(&format!(
                "videotestsrc num-buffers=2 ! video/x-raw,width=640,height=360 ! \
                 rbvremove model={model} threads={threads} ! fakesink"
            ));
            p.set_state(gst::State::Paused).unwrap();
            let _ = p.state(gst::ClockTime::from_seconds(120));
            p
        })
        .collect();
    println!("{before} {}", memory_mib().0);
    for p in pipelines {
        p.set_state(gst::State::Null).unwrap();
    }
}

/// `RBV_BENCH_PROVIDERS=cpu,cuda,tensorrt` (benches/gpu.sh): `pro` and
/// `original` at 1080p I420 on each execution provider, strict, so a provider
/// that cannot run is reported and never replaced by the CPU.
fn providers(list: &str) {
    common::init();
    let (caps, frames) = common::decoded_frames("vtest.avi", 1920, 1080, "I420", 50);
    // A CPU row would take minutes at 300 frames: it runs 10.
    const CPU_FRAMES: usize = 10;
    println!(
        "1080p I420 vtest.avi, {FRAMES} frames per row ({CPU_FRAMES} on the cpu provider), full job (transparent output)"
    );
    for model in ["pro", "original"] {
        for provider in list.split(',') {
            let chain = format!(
                "rbvremove model={model} execution-provider={provider} execution-provider-strict=true"
            );
            // One frame first: a provider that cannot run fails here, named.
            let probe = common::launch(&format!(
                "videotestsrc num-buffers=1 ! video/x-raw,width=64,height=64 ! {chain} ! fakesink"
            ));
            let _ = probe.set_state(gst::State::Playing);
            let failed = common::wait_for_error(&probe);
            probe.set_state(gst::State::Null).unwrap();
            if let Some(why) = failed {
                println!("{model:<9} {provider:<9} cannot run: {why}");
                continue;
            }
            let n = if provider == "cpu" {
                CPU_FRAMES
            } else {
                FRAMES
            };
            let (ms, cpu) = run_n(&chain, &caps, &frames, n, false);
            println!(
                "{model:<9} {provider:<9} {:>8.1} fps {ms:>9.2} ms/frame {cpu:>9.2} CPU ms/frame ({n} frames)",
                1000.0 / ms
            );
        }
    }
}

/// `RBV_BENCH_DETECTOR=1`: only what the detector costs, side by side:
/// 1080p I420 vtest.avi through `model=human` without and with it, sync
/// and async, interleaved over `rounds` rounds (median per chain), then the
/// live 30 fps source with and without it.
fn detector_rows(rounds: usize) {
    let (caps, frames) = common::decoded_frames("vtest.avi", 1920, 1080, "I420", 50);
    let mut chains = vec![
        "rbvremove model=human detector=false".to_string(),
        "rbvremove model=human".into(),
        "rbvremove model=human mode=async detector=false".into(),
        "rbvremove model=human mode=async".into(),
    ];
    // RBV_BENCH_DETECTOR="props;props": rows of `rbvremove props` instead
    // (each against the first).
    if let Ok(list) = std::env::var("RBV_BENCH_DETECTOR")
        && list != "1"
    {
        chains = list.split(';').map(|p| format!("rbvremove {p}")).collect();
    }
    let mut ms = vec![Vec::new(); chains.len()];
    for _ in 0..rounds {
        for (chain, out) in chains.iter().zip(&mut ms) {
            out.push(run_n(chain, &caps, &frames, FRAMES, false).0);
        }
    }
    println!("1080p I420 vtest.avi, {FRAMES} frames a row, median of {rounds} interleaved rounds");
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let base: Vec<f64> = ms.iter_mut().map(median).collect();
    let custom = std::env::var("RBV_BENCH_DETECTOR").is_ok_and(|v| v != "1");
    for (i, chain) in chains.iter().enumerate() {
        let off = if custom { base[0] } else { base[i - i % 2] };
        println!(
            "{chain:<52} {:>7.1} fps {:>8.2} ms/frame  (+{:.2} ms against {})",
            1000.0 / base[i],
            base[i],
            base[i] - off,
            if custom {
                "the first row"
            } else {
                "detector=false"
            }
        );
    }
    for (model, secs) in [("human detector=false", 10), ("human", 10)] {
        if custom {
            break;
        }
        let (fps, age) = live_async(model, secs);
        println!(
            "live 720p 30 fps, mode=async, {model:<22} output {fps:>5.1} fps, mask age {age:>4.1} frames"
        );
    }
}

fn main() {
    if std::env::var_os("RBV_BENCH_DETECTOR").is_some() {
        common::init();
        return detector_rows(3);
    }
    if let Ok(spec) = std::env::var("RBV_BENCH_MEMORY") {
        return memory_probe(&spec);
    }
    if let Ok(list) = std::env::var("RBV_BENCH_PROVIDERS") {
        return providers(&list);
    }
    common::init();
    let mut rows = Vec::new();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("rbvremove throughput, {FRAMES} frames per row held in memory, {cores} CPU cores");
    let (square, landscape) = (
        bare_inference(model::HUMAN_SQUARE),
        bare_inference(model::HUMAN_LANDSCAPE),
    );
    println!("bare inference: selfie square {square:.2} ms, selfie landscape {landscape:.2} ms");
    println!(
        "{:<6} {:<5} {:<10} {:<58} {:>8} {:>9} {:>9}",
        "size", "input", "clip", "chain", "fps", "ms/frame", "CPU ms/f"
    );
    // RBV_BENCH_ONLY=text: only the chains containing it (=text: only the
    // chain that is text) and no live or memory rows, for quick comparisons
    // while working.
    let only = std::env::var("RBV_BENCH_ONLY").ok();
    let skip = |chain: &str| match only.as_deref() {
        Some(o) => match o.strip_prefix('=') {
            Some(exact) => chain != exact,
            None => !chain.contains(o),
        },
        None => false,
    };
    // RBV_BENCH_SIZES=720p,1080p: only those sizes (likewise).
    let sizes = std::env::var("RBV_BENCH_SIZES").ok();
    for (w, h, label) in [
        (1280, 720, "720p"),
        (1920, 1080, "1080p"),
        (3840, 2160, "4K"),
    ] {
        for format in ["I420", "RGBA"] {
            for clip in ["vtest.avi", "demo_input.webm"] {
                if label == "4K" && (format != "I420" || clip != "vtest.avi") {
                    continue;
                }
                if sizes
                    .as_deref()
                    .is_some_and(|s| !s.split(',').any(|s| s.trim() == label))
                {
                    continue;
                }
                // (chain, fresh buffers every frame). The matting frame path
                // alone (detector=false), then with the detector (the
                // default): sync (a detection every 5th frame, waited for)
                // and async (its own thread).
                let chains: &[(&str, bool)] = if label == "4K" {
                    &[
                        ("videoconvert ! video/x-raw,format=RGBA", false),
                        ("rbvremove model=human detector=false", false),
                        ("rbvremove model=human detector=false", true),
                    ]
                } else if clip == "vtest.avi" {
                    &[
                        ("videoconvert ! video/x-raw,format=RGBA", false),
                        ("rbvremove model=human detector=false", false),
                        ("rbvremove model=human detector=false", true),
                        (
                            "rbvremove model=human detector=false human-variant=square",
                            false,
                        ),
                        ("rbvremove model=human detector=false threads=2", false),
                        (
                            "rbvremove model=human detector=false background=color",
                            false,
                        ),
                        (
                            "rbvremove model=human detector=false background=blur",
                            false,
                        ),
                        ("rbvremove model=human", false),
                        ("rbvremove model=human mode=async detector=false", false),
                        ("rbvremove model=human mode=async", false),
                    ]
                } else {
                    &[
                        ("videoconvert ! video/x-raw,format=RGBA", false),
                        ("rbvremove model=human detector=false", false),
                        (
                            "rbvremove model=human detector=false background=color",
                            false,
                        ),
                        ("rbvremove model=human", false),
                    ]
                };
                if chains.iter().all(|(c, _)| skip(c)) {
                    continue;
                }
                let n = if label == "4K" { 20 } else { 50 };
                let (caps, frames) = common::decoded_frames(clip, w, h, format, n);
                for &(chain, fresh) in chains {
                    if skip(chain) {
                        continue;
                    }
                    let (ms, cpu) = run_n(chain, &caps, &frames, FRAMES, fresh);
                    let shown = if fresh {
                        format!("{chain} (fresh buffers)")
                    } else {
                        chain.to_string()
                    };
                    println!(
                        "{label:<6} {format:<5} {clip:<10.10} {shown:<58} {:>8.1} {ms:>9.2} {cpu:>9.2}",
                        1000.0 / ms
                    );
                    rows.push(serde_json::json!({
                        "size": label, "input": format, "clip": clip, "chain": chain,
                        "fresh_buffers": fresh,
                        "fps": 1000.0 / ms, "ms_per_frame": ms, "cpu_ms_per_frame": cpu,
                    }));
                }
            }
        }
    }

    if only.is_some() || sizes.is_some() {
        return;
    }
    println!(
        "\nlive 30 fps source, 1280x720, mode=async (output rate and mask age), with the \
         detector (the default) and without"
    );
    let mut live = Vec::new();
    for (model, secs) in [
        ("human detector=false", 6),
        ("human", 6),
        ("light", 6),
        ("original", 8),
        ("pro", 12),
    ] {
        let (fps, age) = live_async(model, secs);
        println!("{model:<22} output {fps:>5.1} fps, mask age {age:>5.1} frames");
        live.push(serde_json::json!({"model": model, "output_fps": fps, "mask_age_frames": age}));
    }

    let (base, one) = instances_rss("pro", 1, false);
    let (_, four) = instances_rss("pro", 4, false);
    let (_, four_own) = instances_rss("pro", 4, true);
    println!(
        "\nmemory, model=pro, each in a fresh process: {base:.0} MiB before any instance; \
         one instance {one:.0} MiB; four instances {four:.0} MiB (one shared session); \
         four with distinct thread counts, so four sessions {four_own:.0} MiB"
    );
    let peak = memory_mib().1;
    println!("peak RSS of the whole run: {peak:.0} MiB");

    let out = common::repo().join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    let json = serde_json::json!({
        "cores": cores,
        "frames_per_row": FRAMES,
        "bare_inference_ms": {"selfie_square": square, "selfie_landscape": landscape},
        "throughput": rows,
        "live_async": live,
        "memory_mib": {"before": base, "pro_one_instance": one, "pro_four_instances_shared": four, "pro_four_instances_unshared": four_own, "peak_of_the_run": peak},
    });
    std::fs::write(
        out.join("fps.json"),
        serde_json::to_string_pretty(&json).unwrap(),
    )
    .unwrap();
    println!("wrote {}", out.join("fps.json").display());
}
