// SPDX-License-Identifier: MPL-2.0
//! Where a 1080p frame's time goes in `rbvremove model=human`: each stage of
//! the element's frame path timed alone on real frames (vtest.avi scaled to
//! 1920x1080, I420), one thread unless said. Run: `cargo bench --bench profile`.
//! A benchmark: it prints figures and asserts nothing.

use std::time::Instant;

use gst_video::prelude::*;
use rbv_core::matte::{AlphaMode, Matte};
use rbv_core::model::{self, RunnerOptions, Segmenter};

use rbv_testkit as common;

const N: usize = 200;

/// CPU time of every thread of this process so far, in ns (the scheduler's
/// own count, /proc/self/task/*/schedstat: on a busy machine it moves far
/// less than wall time, which includes waiting for a core).
fn cpu_ns() -> u64 {
    std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn time(label: &str, mut f: impl FnMut(usize)) -> f64 {
    for i in 0..10 {
        f(i);
    }
    let (t0, c0) = (Instant::now(), cpu_ns());
    for i in 0..N {
        f(i);
    }
    let ms = t0.elapsed().as_secs_f64() * 1000.0 / N as f64;
    let cpu = (cpu_ns() - c0) as f64 / 1e6 / N as f64;
    println!("{label:<70} {ms:>7.3} ms {cpu:>7.3} CPU ms");
    ms
}

fn main() {
    common::init();
    let (caps, frames) = common::decoded_frames("vtest.avi", 1920, 1080, "I420", 20);
    let in_info = gst_video::VideoInfo::from_caps(&caps).unwrap();
    let spec = model::HUMAN_LANDSCAPE;
    let mut seg = Segmenter::new(
        spec,
        None,
        &RunnerOptions {
            threads: 1,
            ..RunnerOptions::default()
        },
    )
    .unwrap();
    let (mw, mh) = seg.input_size();
    let model_info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, mw, mh)
        .fps(in_info.fps())
        .build()
        .unwrap();
    let rgba_info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgba, 1920, 1080)
        .fps(in_info.fps())
        .build()
        .unwrap();
    println!(
        "1080p I420 frame path, stage by stage, {N} frames each (wall, and CPU of all threads)"
    );

    let mut cfg = gst_video::VideoConverterConfig::new();
    cfg.set_resampler_method(gst_video::VideoResamplerMethod::Linear);
    let to_model = gst_video::VideoConverter::new(&in_info, &model_info, Some(cfg)).unwrap();
    let mut model_buf = gst::Buffer::with_size(model_info.size()).unwrap();
    time(
        "1 model input: GStreamer converter, I420 1080p -> RGB 256x144",
        |i| {
            let inf = gst_video::VideoFrameRef::from_buffer_ref_readable(&frames[i % 20], &in_info)
                .unwrap();
            let mut out = gst_video::VideoFrameRef::from_buffer_ref_writable(
                model_buf.make_mut(),
                &model_info,
            )
            .unwrap();
            to_model.frame_ref(&inf, &mut out);
        },
    );
    let (sw, sh) = rbv_core::sample::Sampler::stage(&in_info, mw, mh).unwrap();
    let mut sampler = rbv_core::sample::Sampler::new(&in_info, sw, sh).unwrap();
    let stage_info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, sw, sh)
        .fps(in_info.fps())
        .build()
        .unwrap();
    let mut stage_buf = gst::Buffer::with_size(stage_info.size()).unwrap();
    let mut cfg = gst_video::VideoConverterConfig::new();
    cfg.set_resampler_method(gst_video::VideoResamplerMethod::Linear);
    let halve = gst_video::VideoConverter::new(&stage_info, &model_info, Some(cfg)).unwrap();
    time(
        &format!(
            "1 model input: the element's: 2x2 samples per pixel of {sw}x{sh}, then converter"
        ),
        |i| {
            let inf = gst_video::VideoFrameRef::from_buffer_ref_readable(&frames[i % 20], &in_info)
                .unwrap();
            sample(&mut sampler, &inf, &mut stage_buf, &stage_info, 1);
            let st =
                gst_video::VideoFrameRef::from_buffer_ref_readable(stage_buf.as_ref(), &stage_info)
                    .unwrap();
            let mut out = gst_video::VideoFrameRef::from_buffer_ref_writable(
                model_buf.make_mut(),
                &model_info,
            )
            .unwrap();
            halve.frame_ref(&st, &mut out);
        },
    );
    let bands = rayon::current_num_threads();
    for (label, n) in [
        ("   of which the sampling alone".to_string(), 1),
        (
            format!("   the sampling in {bands} bands (as the frame path runs it)"),
            bands,
        ),
    ] {
        time(&label, |i| {
            let inf = gst_video::VideoFrameRef::from_buffer_ref_readable(&frames[i % 20], &in_info)
                .unwrap();
            sample(&mut sampler, &inf, &mut stage_buf, &stage_info, n);
        });
    }
    let rgb: Vec<u8> = {
        let f = gst_video::VideoFrameRef::from_buffer_ref_readable(model_buf.as_ref(), &model_info)
            .unwrap();
        f.plane_data(0).unwrap().to_vec()
    };
    let stride = (mw as usize * 3).next_multiple_of(4);
    let mut mask = Vec::new();
    time("2 inference: selfie landscape, 1 thread", |_| {
        let (m, _, _) = seg.run(&rgb, stride).unwrap();
        mask = m.to_vec();
    });
    let mut out_buf = gst::Buffer::with_size(rgba_info.size()).unwrap();
    for threads in [1u32, 2] {
        let mut cfg = gst_video::VideoConverterConfig::new();
        cfg.set_threads(threads);
        let to_fg = gst_video::VideoConverter::new(&in_info, &rgba_info, Some(cfg)).unwrap();
        time(
            &format!("3 foreground: I420 -> RGBA 1080p, {threads} thread(s)"),
            |i| {
                let inf =
                    gst_video::VideoFrameRef::from_buffer_ref_readable(&frames[i % 20], &in_info)
                        .unwrap();
                let mut out = gst_video::VideoFrameRef::from_buffer_ref_writable(
                    out_buf.make_mut(),
                    &rgba_info,
                )
                .unwrap();
                to_fg.frame_ref(&inf, &mut out);
            },
        );
    }
    let fast = rbv_core::convert::ToRgba::new(&in_info, gst_video::VideoFormat::Rgba).unwrap();
    for bands in [1usize, 2] {
        time(
            &format!("3 foreground: the element's (yuv crate, SIMD), {bands} band(s)"),
            |i| {
                let inf =
                    gst_video::VideoFrameRef::from_buffer_ref_readable(&frames[i % 20], &in_info)
                        .unwrap();
                let mut out = gst_video::VideoFrameRef::from_buffer_ref_writable(
                    out_buf.make_mut(),
                    &rgba_info,
                )
                .unwrap();
                let st = out.plane_stride()[0] as usize;
                fast.run(&inf, out.plane_data_mut(0).unwrap(), st, bands)
                    .unwrap();
            },
        );
    }
    let mut matte = Matte::new();
    time(
        "4 matte: mask 256x144 -> 1080p alpha, written into RGBA (both cores)",
        |_| {
            let mut out =
                gst_video::VideoFrameRef::from_buffer_ref_writable(out_buf.make_mut(), &rgba_info)
                    .unwrap();
            let st = out.plane_stride()[0] as usize;
            let data = out.plane_data_mut(0).unwrap();
            matte
                .apply(
                    &mask,
                    (mw, mh),
                    (1920, 1080),
                    data,
                    st,
                    3,
                    AlphaMode::Replace,
                )
                .unwrap();
        },
    );

    // `refine=true`: the guided filter at full resolution instead of the
    // plain upscale (the element's defaults: radius 2, eps 0.001), then the
    // alpha written.
    let mut refiner = rbv_core::matte::Refiner::new();
    time(
        "4 matte with refine=true: guided filter, 1080p alpha written into RGBA",
        |_| {
            let mut out =
                gst_video::VideoFrameRef::from_buffer_ref_writable(out_buf.make_mut(), &rgba_info)
                    .unwrap();
            let st = out.plane_stride()[0] as usize;
            let data = out.plane_data_mut(0).unwrap();
            let plane = refiner
                .refine(&mask, (mw, mh), data, st, (1920, 1080), 3, 2, 0.001)
                .unwrap();
            rbv_core::matte::write_alpha(plane, 1920, 1920, 1080, data, st, 3, AlphaMode::Replace);
        },
    );

    detector_stages(&in_info, &frames, &mut seg, &rgb, stride);
}

/// What the detector adds: its input sampled from the frame (once per
/// detection), its inference (on its own thread in async mode, once per
/// `detector-interval` frames in sync mode), and the gate (every frame).
fn detector_stages(
    in_info: &gst_video::VideoInfo,
    frames: &[gst::Buffer],
    seg: &mut Segmenter,
    model_rgb: &[u8],
    model_stride: usize,
) {
    use rbv_core::detect::{Detector, Gate, GateParams, Letterbox, Motion, PERSON, Regions};
    // The element's default detector-size.
    let lb = Letterbox::fit((in_info.width(), in_info.height()), 640);
    let (_, _, pw, ph) = lb.placed;
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, pw, ph)
        .build()
        .unwrap();
    let mut sampler = rbv_core::sample::Sampler::new(in_info, pw, ph).unwrap();
    let mut buf = gst::Buffer::with_size(info.size()).unwrap();
    let input_ms = time(
        &format!("5 detector input: 2x2 samples, I420 1080p -> RGB {pw}x{ph}"),
        |i| {
            let inf = gst_video::VideoFrameRef::from_buffer_ref_readable(&frames[i % 20], in_info)
                .unwrap();
            let mut out =
                gst_video::VideoFrameRef::from_buffer_ref_writable(buf.make_mut(), &info).unwrap();
            let st = out.plane_stride()[0] as usize;
            sampler
                .run(&inf, out.plane_data_mut(0).unwrap(), st)
                .unwrap();
        },
    );
    let rgb = {
        let f = gst_video::VideoFrameRef::from_buffer_ref_readable(buf.as_ref(), &info).unwrap();
        (
            f.plane_data(0).unwrap().to_vec(),
            f.plane_stride()[0] as usize,
        )
    };
    let mut wanted = [false; rbv_core::detect::NUM_CLASSES];
    wanted[PERSON] = true;
    let mut found = None;
    for threads in [1usize, 2] {
        let mut det = Detector::new(
            None,
            &RunnerOptions {
                threads,
                ..RunnerOptions::default()
            },
        )
        .unwrap();
        det.run(&rgb.0, rgb.1, &lb, 0.25, Some(&wanted)).unwrap();
        let t0 = Instant::now();
        let runs = 10;
        for _ in 0..runs {
            found = Some(det.run(&rgb.0, rgb.1, &lb, 0.25, Some(&wanted)).unwrap());
        }
        let ms = t0.elapsed().as_secs_f64() * 1000.0 / runs as f64;
        println!(
            "{:<58} {ms:>7.3} ms",
            format!(
                "6 detector inference {}x{}, {threads} thread(s) ({runs} runs)",
                lb.input.0, lb.input.1
            )
        );
    }
    let found = found.unwrap();
    println!("  ({} people in the frame)", found.list.len());
    let regions = Regions::new(found, |c| c == PERSON, 1);
    let (mw, mh) = seg.input_size();
    let (mask, _, _) = seg.run(model_rgb, model_stride).unwrap();
    let mask = mask.to_vec();
    let mut gate = Gate::new();
    let params = GateParams::default();
    let mut m = mask.clone();
    // The motion map, on the mask's grid (here the model input: the same
    // size for the selfie models), a frame after frame.
    let mut motion = Motion::new();
    let grid = (mw as usize, mh as usize);
    motion.update(model_rgb, model_stride, grid, 0, 40);
    let motion_ms = time(&format!("7 motion map: {mw}x{mh} RGB"), |i| {
        motion.update(model_rgb, model_stride, grid, 1 + i as u64, 40);
    });
    gate.apply(&mut m, (mw, mh), &regions, 0, 0, &motion, &params);
    let frame = 1000;
    let gate_ms = time(
        &format!("7 gate: {mw}x{mh} mask, regions of an earlier frame"),
        |_| {
            m.copy_from_slice(&mask);
            gate.apply(
                &mut m,
                (mw, mh),
                &regions,
                frame - 10,
                frame,
                &motion,
                &params,
            );
        },
    );
    let fresh_ms = time(
        &format!("7 gate: {mw}x{mh} mask, new regions (rendered, then gated)"),
        |i| {
            let fresh = Regions {
                id: 2 + i as u64,
                ..regions.clone()
            };
            m.copy_from_slice(&mask);
            gate.apply(&mut m, (mw, mh), &fresh, frame, frame, &motion, &params);
        },
    );
    for every in [5.0, 15.0] {
        println!(
            "detector's cost to the frame path, a detection every {every} frames: {:.3} ms \
             per frame (motion + (gate x {} + new regions + input) / {every}), inference \
             apart (on its own thread)",
            motion_ms + (gate_ms * (every - 1.0) + fresh_ms + input_ms) / every,
            every - 1.0
        );
    }
}

/// `inf` sampled into `buf` (`info`) in `bands` bands.
fn sample(
    sampler: &mut rbv_core::sample::Sampler,
    inf: &gst_video::VideoFrameRef<&gst::BufferRef>,
    buf: &mut gst::Buffer,
    info: &gst_video::VideoInfo,
    bands: usize,
) {
    let mut st = gst_video::VideoFrameRef::from_buffer_ref_writable(buf.make_mut(), info).unwrap();
    let stride = st.plane_stride()[0] as usize;
    sampler
        .run_bands(inf, st.plane_data_mut(0).unwrap(), stride, bands)
        .unwrap();
}
