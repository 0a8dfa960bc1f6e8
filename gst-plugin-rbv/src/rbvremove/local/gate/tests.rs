// SPDX-License-Identifier: MPL-2.0
//! The detector step on real frames: with the detector off the element's
//! output is the frame path's as it was, byte for byte; `detector-interval`
//! and flushes decide when the detector runs in `mode=sync`; in
//! `mode=async` frames pass before its first regions and are gated after.

use std::time::{Duration, Instant};

use gst::prelude::*;
use gst_video::{VideoFormat, VideoFrameRef, VideoInfo};
use rbv_core::model::{self, RunnerOptions, Segmenter};
use rbv_core::prompt::Keeps;

use super::super::{LocalPath, Mode};
use super::*;
use crate::rbvremove::settings::{Look, Settings};

fn info(format: VideoFormat, w: u32, h: u32) -> VideoInfo {
    VideoInfo::builder(format, w, h).build().unwrap()
}

/// A photo of the test data as an I420 frame.
fn photo(name: &str) -> (VideoInfo, gst::Buffer) {
    gst::init().unwrap();
    let path = rbv_core::paths::cache_dir().join("data").join(name);
    let img = rbv_core::image::load(&path).expect("test photo (run setup/setup.sh)");
    let to = info(VideoFormat::I420, img.info.width(), img.info.height());
    let converter = gst_video::VideoConverter::new(&img.info, &to, None).unwrap();
    let mut out = gst::Buffer::with_size(to.size()).unwrap();
    {
        let src = VideoFrameRef::from_buffer_ref_readable(img.buffer.as_ref(), &img.info).unwrap();
        let mut dst = VideoFrameRef::from_buffer_ref_writable(out.make_mut(), &to).unwrap();
        converter.frame_ref(&src, &mut dst);
    }
    (to, out)
}

fn options() -> RunnerOptions {
    RunnerOptions {
        threads: 1,
        ..Default::default()
    }
}

fn square() -> LocalPath {
    let seg = Segmenter::new(model::HUMAN_SQUARE, None, &options()).expect("model");
    LocalPath::new(vec![seg], Mode::Sync).unwrap()
}

fn detector() -> Detector {
    Detector::new(None, &options()).expect("detector model (run setup/setup.sh)")
}

fn look() -> Look {
    Settings::default().look()
}

/// One frame through `path`: the output's bytes.
fn run(
    path: &mut LocalPath,
    look: &Look,
    (in_info, input): (&VideoInfo, &gst::Buffer),
    out: &VideoInfo,
) -> Vec<u8> {
    let mut output = gst::Buffer::with_size(out.size()).unwrap();
    {
        let inframe = VideoFrameRef::from_buffer_ref_readable(input.as_ref(), in_info).unwrap();
        let mut outframe = VideoFrameRef::from_buffer_ref_writable(output.make_mut(), out).unwrap();
        path.process(look, &inframe, &mut outframe).unwrap();
    }
    output.map_readable().unwrap().to_vec()
}

/// The element's RGBA output for one I420 frame with `props` (a file's
/// frame: not live), and the caps it negotiated on both sides.
fn element(
    props: &[(&str, &str)],
    (in_info, input): (&VideoInfo, &gst::Buffer),
) -> (Vec<u8>, VideoInfo, VideoInfo) {
    crate::plugin_register_static().unwrap();
    let mut el = gst::ElementFactory::make("rbvremove");
    for (k, v) in props {
        el = el.property_from_str(k, v);
    }
    let element = el.build().unwrap();
    let pipeline = gst::Pipeline::new();
    let src = gst_app::AppSrc::builder()
        .caps(&in_info.to_caps().unwrap())
        .format(gst::Format::Time)
        .build();
    let sink = gst_app::AppSink::builder()
        .caps(
            &gst::Caps::builder("video/x-raw")
                .field("format", "RGBA")
                .build(),
        )
        .sync(false)
        .build();
    let chain = [src.upcast_ref(), &element, sink.upcast_ref()];
    pipeline.add_many(chain).unwrap();
    gst::Element::link_many(chain).unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    src.push_buffer(input.clone()).unwrap();
    let out = sink
        .try_pull_sample(gst::ClockTime::from_seconds(120))
        .expect("a frame");
    let caps = |name: &str| {
        let c = element.static_pad(name).unwrap().current_caps().unwrap();
        VideoInfo::from_caps(&c).unwrap()
    };
    let (sink_info, src_info) = (caps("sink"), caps("src"));
    pipeline.set_state(gst::State::Null).unwrap();
    let bytes = out.buffer().unwrap().map_readable().unwrap().to_vec();
    (bytes, sink_info, src_info)
}

#[test]
fn detector_off_is_the_frame_path_as_it_was_byte_for_byte() {
    let frame = photo("voc_rgb.jpg");
    let (off, in_info, out_info) = element(&[("detector", "false")], (&frame.0, &frame.1));
    // The frame path with no detector step (what the element ran before
    // it), on the caps the element negotiated.
    let mut plain = square();
    plain.set_caps(&in_info, &out_info).unwrap();
    let before = run(&mut plain, &look(), (&in_info, &frame.1), &out_info);
    assert!(off == before, "detector=false changed the output");
    let (on, ..) = element(&[], (&frame.0, &frame.1));
    let changed = on
        .chunks_exact(4)
        .zip(before.chunks_exact(4))
        .filter(|(a, b)| a[3] != b[3])
        .count();
    println!(
        "detector on: {changed} of {} alpha values differ",
        on.len() / 4
    );
    assert!(changed > 1000, "the detector changed nothing ({changed})");
}

fn frame<'a, 'b>(
    inframe: &'a VideoFrameRef<&'b gst::BufferRef>,
    number: u64,
    discont: bool,
    live: bool,
) -> Frame<'a, 'b> {
    Frame {
        inframe,
        number,
        discont,
        live,
        motion_threshold: 40,
        model_rgb: None,
    }
}

/// `photo` with a grey block painted over its top-left corner (I420: the
/// luma plane only), far from every person in bus.jpg.
fn with_block((info, buffer): (&VideoInfo, &gst::Buffer)) -> gst::Buffer {
    let mut out = buffer.copy_deep().unwrap();
    {
        let mut frame = VideoFrameRef::from_buffer_ref_writable(out.make_mut(), info).unwrap();
        let stride = frame.plane_stride()[0] as usize;
        let luma = frame.plane_data_mut(0).unwrap();
        for y in 0..120 {
            let v = if luma[y * stride] > 128 { 0 } else { 255 };
            luma[y * stride..y * stride + 120].fill(v);
        }
    }
    out
}

/// Frames through a sync path with the detector: which ones start a
/// detection, and which frame each is applied from.
#[test]
fn sync_detects_on_a_fixed_schedule_and_where_something_comes_in() {
    let photo = photo("bus.jpg");
    let (in_info, input) = (&photo.0, &photo.1);
    let block = with_block((in_info, input));
    let mut gate = LocalGate::new(detector(), Mode::Sync, Keeps::People, 640).unwrap();
    gate.set_caps(in_info).unwrap();
    let mut look = look().detect;
    look.interval = 3;
    let (mut started, mut applied) = (Vec::new(), Vec::new());
    let mut step = |gate: &mut LocalGate, look: &DetectLook, n: u64, b: &gst::Buffer, discont| {
        let inframe = VideoFrameRef::from_buffer_ref_readable(b.as_ref(), in_info).unwrap();
        let mut mask = vec![0.5f32; 64 * 64];
        let before = gate.detections();
        let took = gate
            .apply(
                look,
                &frame(&inframe, n, discont, false),
                &mut mask,
                (64, 64),
            )
            .unwrap();
        if gate.detections() > before {
            started.push(n);
        }
        if took.is_some() {
            applied.push(n);
        }
    };
    for n in 0..28u64 {
        // Something comes in on frame 5 (and goes on frame 6).
        let b = if n == 5 { &block } else { input };
        step(&mut gate, &look, n, b, n == 27);
    }
    gate.flush();
    step(&mut gate, &look, 28, input, false);
    step(&mut gate, &look, 29, input, false);
    let mut other = look.clone();
    other.selection = std::sync::Arc::new(rbv_core::prompt::select(Some("bus")));
    step(&mut gate, &other, 30, input, false);
    // The first frame (and the first after a discontinuity, a flush or a
    // new prompt) waits for its own. Motion far from every region starts
    // one on the next frame, applied min(interval - 1, 4) frames later; a
    // refresh every REFRESH intervals of the timeline is applied
    // interval - 1 frames later: whatever the detector's speed.
    assert_eq!(REFRESH * 3, 24);
    assert_eq!(started, [0, 6, 24, 27, 28, 30]);
    assert_eq!(applied, [0, 8, 26, 27, 28, 30]);
}

#[test]
fn a_live_stream_never_waits_for_the_detector() {
    let photo = photo("bus.jpg");
    let (in_info, input) = (&photo.0, &photo.1);
    let mut gate = LocalGate::new(detector(), Mode::Sync, Keeps::People, 640).unwrap();
    gate.set_caps(in_info).unwrap();
    let look = look().detect;
    let inframe = VideoFrameRef::from_buffer_ref_readable(input.as_ref(), in_info).unwrap();
    let mut mask = vec![0.5f32; 64 * 64];
    let t0 = Instant::now();
    let took = gate
        .apply(&look, &frame(&inframe, 0, false, true), &mut mask, (64, 64))
        .unwrap();
    assert!(took.is_none() && mask.iter().all(|&v| v == 0.5), "ungated");
    assert_eq!(gate.detections(), 1, "the detection runs beside the frames");
    println!("a live frame took {:?} beside a detection", t0.elapsed());
}

#[test]
fn async_frames_pass_before_the_first_regions_and_are_gated_after() {
    let photo = photo("bus.jpg");
    let (in_info, input) = (&photo.0, &photo.1);
    let mut gate = LocalGate::new(detector(), Mode::Async, Keeps::People, 640).unwrap();
    gate.set_caps(in_info).unwrap();
    let look = look().detect;
    let inframe = VideoFrameRef::from_buffer_ref_readable(input.as_ref(), in_info).unwrap();
    let mut mask = vec![0.5f32; 64 * 64];
    // Frame 0 hands the frame over and passes ungated.
    assert!(
        gate.apply(
            &look,
            &frame(&inframe, 0, false, false),
            &mut mask,
            (64, 64)
        )
        .unwrap()
        .is_none()
    );
    assert!(mask.iter().all(|&v| v == 0.5));
    let t0 = Instant::now();
    let mut n = 1;
    loop {
        let mut m = vec![0.5f32; 64 * 64];
        if gate
            .apply(&look, &frame(&inframe, n, false, false), &mut m, (64, 64))
            .unwrap()
            .is_some()
        {
            // Gated: the sky above the bus is cleared, people are kept.
            assert_eq!(m[2 * 64 + 32], 0.0);
            assert!(m.iter().any(|&v| v > 0.9));
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no regions after 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
        n += 1;
    }
}
