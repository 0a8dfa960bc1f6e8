// SPDX-License-Identifier: MPL-2.0
//! The local frame path on plain frames, no element and no pipeline: a
//! real photo through the real `human` model (ONNX Runtime and the models
//! from set-up), each output checked against the photo's own ground truth
//! or against another output of the same run.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use gst_video::{VideoFormat, VideoFrameRef, VideoInfo};
use rbv_core::compositor::{Anchor, Placement};
use rbv_core::model::{self, RunnerOptions, Segmenter};

use super::*;
use crate::rbvremove::BackgroundMode;
use crate::rbvremove::settings::Settings;

fn data(name: &str) -> PathBuf {
    let p = rbv_core::paths::cache_dir().join("data").join(name);
    assert!(p.is_file(), "{} missing: run setup/setup.sh", p.display());
    p
}

fn info(format: VideoFormat, w: u32, h: u32) -> VideoInfo {
    VideoInfo::builder(format, w, h).build().unwrap()
}

/// `buffer` (`from`) converted to `to` by GStreamer's converter.
fn convert(from: &VideoInfo, buffer: &gst::Buffer, to: &VideoInfo) -> gst::Buffer {
    let converter = gst_video::VideoConverter::new(from, to, None).unwrap();
    let mut out = gst::Buffer::with_size(to.size()).unwrap();
    {
        let src = VideoFrameRef::from_buffer_ref_readable(buffer.as_ref(), from).unwrap();
        let mut dst = VideoFrameRef::from_buffer_ref_writable(out.make_mut(), to).unwrap();
        converter.frame_ref(&src, &mut dst);
    }
    out
}

/// A photo of the test data as a frame in `format`.
fn photo(name: &str, format: VideoFormat) -> (VideoInfo, gst::Buffer) {
    gst::init().unwrap();
    let img = rbv_core::image::load(&data(name)).unwrap();
    let to = info(format, img.info.width(), img.info.height());
    let buffer = convert(&img.info, &img.buffer, &to);
    (to, buffer)
}

fn segmenter(spec: model::ModelSpec) -> Segmenter {
    let options = RunnerOptions {
        threads: 1,
        ..Default::default()
    };
    Segmenter::new(spec, None, &options).expect("the model loads (run setup/setup.sh)")
}

fn human(mode: Mode) -> LocalPath {
    LocalPath::new(vec![segmenter(model::HUMAN_SQUARE)], mode).unwrap()
}

fn look(background: BackgroundMode) -> Look {
    Settings {
        background,
        ..Settings::default()
    }
    .look()
}

/// One frame through `path` into a fresh output of `out`.
fn run(
    path: &mut LocalPath,
    look: &Look,
    (in_info, input): (&VideoInfo, &gst::Buffer),
    out: &VideoInfo,
) -> (gst::Buffer, Processed) {
    let mut output = gst::Buffer::with_size(out.size()).unwrap();
    let processed = {
        let inframe = VideoFrameRef::from_buffer_ref_readable(input.as_ref(), in_info).unwrap();
        let mut outframe = VideoFrameRef::from_buffer_ref_writable(output.make_mut(), out).unwrap();
        path.process(look, &inframe, &mut outframe).unwrap()
    };
    (output, processed)
}

/// Packed bytes of plane 0 (no stride padding).
fn packed(buffer: &gst::Buffer, info: &VideoInfo) -> Vec<u8> {
    let frame = VideoFrameRef::from_buffer_ref_readable(buffer.as_ref(), info).unwrap();
    let stride = frame.plane_stride()[0] as usize;
    let row = info.width() as usize * info.format_info().pixel_stride()[0] as usize;
    let data = frame.plane_data(0).unwrap();
    (0..info.height() as usize)
        .flat_map(|y| data[y * stride..][..row].to_vec())
        .collect()
}

fn alpha(rgba: &[u8]) -> Vec<u8> {
    rgba.chunks_exact(4).map(|p| p[3]).collect()
}

#[test]
fn the_person_is_kept_the_background_cleared_and_colours_untouched() {
    let (in_info, input) = photo("voc_rgb.jpg", VideoFormat::I420);
    let (w, h) = (in_info.width(), in_info.height());
    let out = info(VideoFormat::Rgba, w, h);
    let mut path = human(Mode::Sync);
    assert_eq!(
        path.set_caps(&in_info, &out).unwrap(),
        model::HUMAN_SQUARE.name
    );
    let (output, processed) = run(
        &mut path,
        &look(BackgroundMode::Transparent),
        (&in_info, &input),
        &out,
    );
    assert!(processed.inference.is_some());
    assert_eq!(processed.mask_age, Some(0));
    let px = packed(&output, &out);

    // The VOC ground truth: person pixels mostly solid, the rest mostly clear.
    let (gt_info, gt) = photo("voc_person_mask.png", VideoFormat::Gray8);
    assert_eq!((gt_info.width(), gt_info.height()), (w, h));
    let gt = packed(&gt, &gt_info);
    let a = alpha(&px);
    let person = gt.iter().filter(|&&g| g > 127).count();
    let solid = gt
        .iter()
        .zip(&a)
        .filter(|(g, a)| **g > 127 && **a > 127)
        .count();
    let clear = gt
        .iter()
        .zip(&a)
        .filter(|(g, a)| **g <= 127 && **a <= 127)
        .count();
    let kept = solid as f64 / person as f64;
    let cleared = clear as f64 / (gt.len() - person) as f64;
    println!("voc: person kept {kept:.3}, background cleared {cleared:.3}");
    // Measured 0.731 and 0.854 (human keeps a chair back and a ghost here:
    // the region errors the detector work is about).
    assert!(kept > 0.65, "person kept {kept:.3}");
    assert!(cleared > 0.75, "background cleared {cleared:.3}");

    // Colour is straight and untouched: the input converted (by the
    // foreground's SIMD conversion, rbv_core::convert), alpha aside; and
    // within a few levels of GStreamer's converter (which is itself up to 4
    // off the exact colour, see rbv_core::convert's tests).
    let fast = rbv_core::convert::ToRgba::new(&in_info, VideoFormat::Rgba).unwrap();
    let mut plain = vec![0u8; (w * h * 4) as usize];
    let frame = VideoFrameRef::from_buffer_ref_readable(input.as_ref(), &in_info).unwrap();
    fast.run(&frame, &mut plain, w as usize * 4, 1).unwrap();
    let gst_plain = packed(&convert(&in_info, &input, &out), &out);
    for ((o, p), g) in px
        .chunks_exact(4)
        .zip(plain.chunks_exact(4))
        .zip(gst_plain.chunks_exact(4))
    {
        assert_eq!(o[..3], p[..3]);
        for c in 0..3 {
            assert!(o[c].abs_diff(g[c]) <= 8, "{o:?} vs GStreamer's {g:?}");
        }
    }
}

#[test]
fn colour_and_mask_outputs_agree_with_the_transparent_one() {
    let (in_info, input) = photo("zidane.jpg", VideoFormat::Nv12);
    let (w, h) = (in_info.width(), in_info.height());
    let rgba = info(VideoFormat::Rgba, w, h);
    let mut path = human(Mode::Sync);
    path.set_caps(&in_info, &rgba).unwrap();
    let (cut, _) = run(
        &mut path,
        &look(BackgroundMode::Transparent),
        (&in_info, &input),
        &rgba,
    );
    let cut = packed(&cut, &rgba);
    let a = alpha(&cut);
    assert!(a.contains(&255) && a.contains(&0));

    // Over green: each pixel the rounded blend of the cut-out and green.
    let mut green = look(BackgroundMode::Color);
    green.color = [0, 255, 0, 255];
    let (over, _) = run(&mut path, &green, (&in_info, &input), &rgba);
    let over = packed(&over, &rgba);
    let mut worst = 0;
    for (o, c) in over.chunks_exact(4).zip(cut.chunks_exact(4)) {
        let a = u32::from(c[3]);
        for (i, g) in [0u32, 255, 0].into_iter().enumerate() {
            let want = (u32::from(c[i]) * a + g * (255 - a) + 127) / 255;
            worst = worst.max((i64::from(o[i]) - want as i64).unsigned_abs());
        }
        assert_eq!(o[3], 255);
    }
    assert!(worst <= 1, "colour blend off by {worst}");

    // background=mask: the alpha alone, as GRAY8, byte for byte.
    let gray = info(VideoFormat::Gray8, w, h);
    path.set_caps(&in_info, &gray).unwrap();
    let (mask, _) = run(
        &mut path,
        &look(BackgroundMode::Mask),
        (&in_info, &input),
        &gray,
    );
    assert_eq!(packed(&mask, &gray), a);
}

#[test]
fn a_placed_foreground_lands_where_the_anchor_says() {
    let (in_info, input) = photo("zidane.jpg", VideoFormat::I420);
    let (w, h) = (in_info.width() / 2, in_info.height() / 2);
    let (in_info, input) = {
        let small = info(VideoFormat::I420, w, h);
        (small.clone(), convert(&in_info, &input, &small))
    };
    let same = info(VideoFormat::Rgba, w, h);
    let mut path = human(Mode::Sync);
    path.set_caps(&in_info, &same).unwrap();
    let (cut, _) = run(
        &mut path,
        &look(BackgroundMode::Transparent),
        (&in_info, &input),
        &same,
    );
    let cut = packed(&cut, &same);

    // Bottom-right of a canvas twice the size: the cut-out there, clear elsewhere.
    let canvas = info(VideoFormat::Rgba, 2 * w, 2 * h);
    let mut placed = look(BackgroundMode::Transparent);
    placed.placement = Placement {
        canvas_width: 2 * w,
        canvas_height: 2 * h,
        anchor: Anchor::BottomRight,
        ..Placement::default()
    };
    path.set_caps(&in_info, &canvas).unwrap();
    let (out, _) = run(&mut path, &placed, (&in_info, &input), &canvas);
    let out = packed(&out, &canvas);
    let row = (2 * w * 4) as usize;
    let mut worst = 0u8;
    for y in 0..(2 * h) as usize {
        for x in 0..(2 * w) as usize {
            let o = &out[y * row + x * 4..][..4];
            if x < w as usize || y < h as usize {
                assert_eq!(o[3], 0, "outside the foreground at {x},{y}");
                continue;
            }
            let c = &cut[((y - h as usize) * w as usize + x - w as usize) * 4..][..4];
            assert_eq!(o[3], c[3], "alpha at {x},{y}");
            if c[3] > 0 {
                for i in 0..3 {
                    worst = worst.max(o[i].abs_diff(c[i]));
                }
            }
        }
    }
    assert!(worst <= 1, "placed colour off by {worst}");
}

#[test]
fn an_input_with_alpha_keeps_its_transparency() {
    let (in_info, mut input) = photo("grace_hopper.jpg", VideoFormat::Rgba);
    {
        let data = input.make_mut();
        let mut map = data.map_writable().unwrap();
        for p in map.chunks_exact_mut(4) {
            p[3] = 128;
        }
    }
    let out = info(VideoFormat::Rgba, in_info.width(), in_info.height());
    let mut path = human(Mode::Sync);
    path.set_caps(&in_info, &out).unwrap();
    let (output, _) = run(
        &mut path,
        &look(BackgroundMode::Transparent),
        (&in_info, &input),
        &out,
    );
    let a = alpha(&packed(&output, &out));
    assert!(
        a.iter().all(|&v| v <= 128),
        "alpha is multiplied, never raised"
    );
    assert!(
        a.iter().filter(|&&v| v == 128).count() > a.len() / 10,
        "the person keeps 128"
    );
}

#[test]
fn async_frames_leave_at_once_with_the_newest_mask_and_its_age() {
    let (in_info, input) = photo("voc_rgb.jpg", VideoFormat::I420);
    let out = info(VideoFormat::Rgba, in_info.width(), in_info.height());
    let transparent = look(BackgroundMode::Transparent);
    let mut sync = human(Mode::Sync);
    sync.set_caps(&in_info, &out).unwrap();
    let (want, _) = run(&mut sync, &transparent, (&in_info, &input), &out);
    let want = alpha(&packed(&want, &out));

    let mut path = human(Mode::Async);
    assert!(path.is_async());
    path.set_caps(&in_info, &out).unwrap();
    // The first frame has no mask yet: nothing kept, and no age. (The models'
    // lock held meanwhile keeps the 3 ms model from finishing while the
    // frame is converted.)
    let held = path.segmenters.clone();
    let models = lock(&held);
    let (first, processed) = run(&mut path, &transparent, (&in_info, &input), &out);
    drop(models);
    assert_eq!(processed.inference, None);
    assert_eq!(
        processed.mask_age, None,
        "no mask yet is not a mask of age 0"
    );
    assert!(alpha(&packed(&first, &out)).iter().all(|&v| v == 0));
    // Frames go on leaving while the worker infers; once its mask is there
    // it is the sync one (the same picture), of this frame or an earlier one,
    // and ages by one a frame.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut pushed = 1;
    let (frames, got) = loop {
        assert!(Instant::now() < deadline, "no async mask within 30 s");
        std::thread::sleep(Duration::from_millis(5));
        let (output, processed) = run(&mut path, &transparent, (&in_info, &input), &out);
        pushed += 1;
        if processed.inference.is_some() {
            break (
                processed.mask_age.expect("a fresh mask has an age"),
                alpha(&packed(&output, &out)),
            );
        }
    };
    assert!(frames < pushed, "age {frames} of {pushed} frames");
    assert_eq!(got, want, "the worker's mask is the sync one");
    let (_, next) = run(&mut path, &transparent, (&in_info, &input), &out);
    if next.inference.is_none() {
        assert_eq!(
            next.mask_age,
            Some(frames + 1),
            "the same mask, one frame older"
        );
    }
}

#[test]
fn the_frame_shape_picks_the_selfie_model() {
    gst::init().unwrap();
    let mut path = LocalPath::new(
        vec![
            segmenter(model::HUMAN_SQUARE),
            segmenter(model::HUMAN_LANDSCAPE),
        ],
        Mode::Sync,
    )
    .unwrap();
    let pick = |path: &mut LocalPath, w, h| {
        path.set_caps(
            &info(VideoFormat::I420, w, h),
            &info(VideoFormat::Rgba, w, h),
        )
        .unwrap()
    };
    assert_eq!(pick(&mut path, 1280, 720), model::HUMAN_LANDSCAPE.name);
    assert_eq!(pick(&mut path, 640, 480), model::HUMAN_SQUARE.name);
    assert_eq!(
        pick(&mut path, 1920, 1200),
        model::HUMAN_LANDSCAPE.name,
        "16:10 is wide"
    );
    assert!(path.negotiated());
    assert_eq!(path.model_name(), model::HUMAN_LANDSCAPE.name);
}

#[test]
fn mask_controls_shape_the_alpha_in_output_pixels() {
    let (in_info, input) = photo("voc_rgb.jpg", VideoFormat::I420);
    let (w, h) = (in_info.width(), in_info.height());
    let out = info(VideoFormat::Rgba, w, h);
    let mut path = human(Mode::Sync);
    path.set_caps(&in_info, &out).unwrap();
    let mut with = |threshold: f64, grow: i32, feather: u32| {
        let mut look = look(BackgroundMode::Transparent);
        look.mask = rbv_core::matte::MaskControls {
            threshold,
            grow,
            feather,
        };
        let (output, _) = run(&mut path, &look, (&in_info, &input), &out);
        alpha(&packed(&output, &out))
    };
    let kept = |a: &[u8]| a.iter().filter(|&&v| v > 127).count();
    let soft = |a: &[u8]| a.iter().filter(|&&v| v > 0 && v < 255).count();
    let plain = with(0.0, 0, 0);
    let hard = with(0.5, 0, 0);
    // The threshold: no soft alpha, and the same cut as the soft one at half.
    assert_eq!(soft(&hard), 0);
    assert!(
        kept(&hard).abs_diff(kept(&plain)) * 100 < kept(&plain),
        "{} vs {}",
        kept(&hard),
        kept(&plain)
    );
    // Grow and shrink: more and less kept, by about the edge's length times
    // the pixels (the person's outline is some hundreds of pixels long).
    let (grown, shrunk) = (with(0.5, 4, 0), with(0.5, -4, 0));
    assert!(
        kept(&grown) > kept(&hard) + 400,
        "{} vs {}",
        kept(&grown),
        kept(&hard)
    );
    assert!(
        kept(&shrunk) + 400 < kept(&hard),
        "{} vs {}",
        kept(&shrunk),
        kept(&hard)
    );
    // Feather: a soft edge again, the inside as it was.
    let feathered = with(0.5, 0, 6);
    assert!(soft(&feathered) > 400, "{} soft pixels", soft(&feathered));
    // Two box blurs of 6 reach 12 pixels: 13 inside the edge nothing changes.
    let deep = with(0.5, -13, 0);
    let inside = deep
        .iter()
        .zip(&feathered)
        .filter(|(d, _)| **d == 255)
        .all(|(_, f)| *f == 255);
    assert!(inside && kept(&deep) > 0, "feathering changed the inside");
}

#[test]
fn before_the_first_mask_frames_leave_as_asked() {
    use crate::rbvremove::BeforeFirstMask;
    let (in_info, input) = photo("voc_rgb.jpg", VideoFormat::I420);
    let out = info(VideoFormat::Rgba, in_info.width(), in_info.height());
    let mut look = look(BackgroundMode::Transparent);

    // input: the frame whole (opaque) while the model has not answered
    // (its lock held), and no mask age.
    let mut path = human(Mode::Async);
    path.set_caps(&in_info, &out).unwrap();
    look.before_first_mask = BeforeFirstMask::Input;
    let held = path.segmenters.clone();
    let models = lock(&held);
    let (first, processed) = run(&mut path, &look, (&in_info, &input), &out);
    drop(models);
    assert_eq!(processed.mask_age, None);
    assert!(alpha(&packed(&first, &out)).iter().all(|&v| v == 255));

    // wait: the first frame waits for its own mask, then leaves cut.
    let mut path = human(Mode::Async);
    path.set_caps(&in_info, &out).unwrap();
    look.before_first_mask = BeforeFirstMask::Wait;
    let (first, processed) = run(&mut path, &look, (&in_info, &input), &out);
    assert_eq!(processed.mask_age, Some(0));
    assert!(processed.inference.is_some());
    let a = alpha(&packed(&first, &out));
    let share = |f: fn(u8) -> bool| a.iter().filter(|&&v| f(v)).count() as f64 / a.len() as f64;
    assert!(
        share(|v| v < 16) > 0.2 && share(|v| v > 240) > 0.05,
        "clear {:.3}, solid {:.3}",
        share(|v| v < 16),
        share(|v| v > 240)
    );
}

#[test]
fn a_blur_made_beside_the_inference_is_the_blur_of_the_cut_frame() {
    // Sync mode makes the blurred background while the model runs, before
    // the frame has its alpha: it must be what blurring the finished cut
    // gives (the blur reads colours only).
    let (in_info, input) = photo("voc_rgb.jpg", VideoFormat::I420);
    let (w, h) = (in_info.width(), in_info.height());
    let out = info(VideoFormat::Rgba, w, h);
    let blur_look = look(BackgroundMode::Blur);
    let mut path = human(Mode::Sync);
    path.set_caps(&in_info, &out).unwrap();
    let blurred = packed(
        &run(&mut path, &blur_look, (&in_info, &input), &out).0,
        &out,
    );
    let mut path = human(Mode::Sync);
    path.set_caps(&in_info, &out).unwrap();
    let transparent = look(BackgroundMode::Transparent);
    let (mut cut, _) = run(&mut path, &transparent, (&in_info, &input), &out);
    assert!(alpha(&packed(&cut, &out)).iter().any(|&a| a < 128));
    {
        use rbv_core::compositor::{self, Background, Blur, PixelsMut};
        let mut frame = VideoFrameRef::from_buffer_ref_writable(cut.make_mut(), &out).unwrap();
        let stride = frame.plane_stride()[0] as usize;
        let mut px = PixelsMut::new(frame.plane_data_mut(0).unwrap(), w, h, stride).unwrap();
        let mut blur = Blur::new();
        blur.run(px.as_pixels(), 3, blur_look.blur_radius, (w, h))
            .unwrap();
        blur.with_result(|p| {
            compositor::under(
                &mut px,
                3,
                &Background::Pixels {
                    pixels: p,
                    opaque: true,
                },
            )
        })
        .unwrap()
        .unwrap();
    }
    assert!(alpha(&blurred).iter().all(|&a| a == 255));
    assert!(blurred == packed(&cut, &out), "the blur made ahead differs");
}
