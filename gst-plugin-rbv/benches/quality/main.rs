// SPDX-License-Identifier: MPL-2.0
//! Cut quality per model, printed as a table: `cargo bench --bench quality`
//! (`RBV_QUALITY_MODELS=human,light` to run fewer). A benchmark, not a test:
//! it prints figures and asserts nothing.
//!
//! - VOC: IoU and boundary F-score against the VOC person ground truth;
//!   IoU of the same photo cropped to 16:9 (its centre 500x281), where
//!   `human-variant=auto` picks the landscape model.
//! - Composite set: people cut out of real photos by `pro` (ISNet) and pasted
//!   onto real photos with nobody in them; the pasted alpha is the truth by
//!   construction. IoU, mean absolute alpha error over the frame and in a
//!   10-pixel band around the true edge, and gradient error in that band.
//! - Moving clip: one cut-out walking across a background (24 frames): the
//!   same metrics, plus flicker: mean absolute frame-to-frame alpha change
//!   over pixels that are background in both frames and do not change.
//! - vtest.avi: flicker over pixels whose input does not change between
//!   frames (luma within 2).
//! - A static noisy clip (a person still, then walking, fresh noise every
//!   frame): flicker at detection frames and between, per
//!   `detector-interval`, and `detector-size`'s rows (see `still.rs`).
//! - Live: a 10 s clip of the same cut-out (2 s still, then walking to and
//!   fro) fed in real time at 30 fps through `mode=async`: IoU over the
//!   frames where the truth moved, and the mean mask age, for `human` and
//!   each heavy model with and without `async-correction`
//!   (`RBV_QUALITY_LIVE=0` leaves it out, `=only` runs it alone).
//!
//! Every model runs alone (`detector=false smoothing=0`: the matting model
//! as it was before the detector and the smoothing default), with the
//! detector but no smoothing (`smoothing=0`), and with the element's
//! defaults (the detector keeping people, smoothing 0.95). Then per-class rows: `text-prompt=chair`, `bottle` and `dining
//! table` against the VOC photo's own ground truth of those objects; and the
//! opaque share of the whole of vtest.avi (distant, slow people: what
//! temporal smoothing may fade) for `human` with the default smoothing and
//! with it off (`RBV_QUALITY_OPAQUE=0` skips it).

use std::time::Instant;

use gst::prelude::*;
use rbv_core::compositor::{Background, Compositor, Cover, Pixels, PixelsMut, Placement};

use rbv_testkit as common;

mod metrics;
mod still;

use metrics::{alpha_errors, boundary_f, flicker, mean, near};

const W: u32 = 960;
const H: u32 = 540;
const MOVING_FRAMES: usize = 24;
const VTEST_FRAMES: usize = 30;
const LIVE_FPS: u64 = 30;
const LIVE_FRAMES: usize = 300;
const LIVE_STILL: usize = 60;

/// The VOC photo's classes the per-class rows keep, each with its truth.
fn voc_class_truths() -> Vec<(&'static str, Vec<u8>)> {
    [
        ("chair", "voc_chair_mask.png"),
        ("bottle", "voc_bottle_mask.png"),
        ("dining table", "voc_table_mask.png"),
    ]
    .into_iter()
    .map(|(class, file)| (class, common::gray(file).channel(0)))
    .collect()
}

/// IoU of each class kept alone (`props text-prompt=<class>`) on the VOC
/// photo, against its truth (alpha >= 0.5).
fn class_ious(props: &str, voc: &Rgba, truths: &[(&str, Vec<u8>)]) -> Vec<f64> {
    truths
        .iter()
        .map(|(class, truth)| {
            let p = format!("{props} text-prompt=\"{class}\"");
            common::iou(&cut(&p, std::slice::from_ref(voc), true)[0].alpha(), truth)
        })
        .collect()
}

/// Frames with their true alpha.
type Composites = Vec<(Rgba, Vec<u8>)>;

/// A packed RGBA image.
#[derive(Clone)]
struct Rgba {
    w: u32,
    h: u32,
    data: Vec<u8>,
}

impl Rgba {
    fn pixels(&self) -> Pixels<'_> {
        Pixels::new(&self.data, self.w, self.h, self.w as usize * 4).unwrap()
    }

    fn alpha(&self) -> Vec<u8> {
        self.data.chunks_exact(4).map(|p| p[3]).collect()
    }
}

/// A file decoded to RGBA at its own size, or covering `size`.
fn load(name: &str, size: Option<(u32, u32)>) -> Rgba {
    let img = rbv_core::image::load(&common::data(name)).unwrap();
    let (w, h) = size.unwrap_or((img.info.width(), img.info.height()));
    let cover = Cover::new(&img.buffer, &img.info, (w, h), gst_video::VideoFormat::Rgba).unwrap();
    let data = cover
        .with_pixels(|p| {
            (0..h as usize)
                .flat_map(|y| p.data[y * p.stride..][..w as usize * 4].to_vec())
                .collect()
        })
        .unwrap();
    Rgba { w, h, data }
}

/// The element's RGBA output for each frame with `props`. `independent`:
/// the frames are separate pictures, not a clip (each is marked DISCONT, so
/// nothing carries over between them).
fn cut(props: &str, frames: &[Rgba], independent: bool) -> Vec<Rgba> {
    let (w, h) = (frames[0].w, frames[0].h);
    let pipeline = common::launch(&format!(
        "appsrc name=src format=time ! rbvremove {props} stats-interval=0 ! \
         video/x-raw,format=RGBA ! appsink name=sink sync=false"
    ));
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    src.set_caps(Some(
        &gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgba, w, h)
            .fps(gst::Fraction::new(25, 1))
            .build()
            .unwrap()
            .to_caps()
            .unwrap(),
    ));
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut out = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let mut b = gst::Buffer::from_slice(f.data.clone());
        let bm = b.get_mut().unwrap();
        bm.set_pts(gst::ClockTime::from_mseconds(40 * i as u64));
        if independent {
            bm.set_flags(gst::BufferFlags::DISCONT);
        }
        src.push_buffer(b).unwrap();
        let s = sink
            .try_pull_sample(gst::ClockTime::from_seconds(120))
            .expect("a cut frame");
        let map = s.buffer().unwrap().map_readable().unwrap();
        out.push(Rgba {
            w,
            h,
            data: map.to_vec(),
        });
    }
    pipeline.set_state(gst::State::Null).unwrap();
    out
}

/// `fg` (with its alpha) scaled to `height_share` of the canvas height,
/// bottom-centre, `dx` pixels off centre: (composite over `bg`, true alpha).
fn paste(fg: &Rgba, bg: &Rgba, height_share: f64, dx: i32) -> (Rgba, Vec<u8>) {
    let scale =
        (f64::from(bg.h) * height_share / f64::from(fg.h)).min(f64::from(bg.w) / f64::from(fg.w));
    let placement = Placement {
        anchor: rbv_core::compositor::Anchor::BottomCenter,
        scale,
        offset_x: dx,
        ..Placement::default()
    };
    let rect = placement.rect((fg.w, fg.h), (bg.w, bg.h));
    let mut comp = Compositor::new();
    let mut over = bg.clone();
    let mut truth = bg.clone();
    let bg_px = bg.pixels();
    comp.compose(
        fg.pixels(),
        3,
        rect,
        &Background::Pixels {
            pixels: bg_px,
            opaque: true,
        },
        &mut PixelsMut::new(&mut over.data, bg.w, bg.h, bg.w as usize * 4).unwrap(),
    )
    .unwrap();
    comp.compose(
        fg.pixels(),
        3,
        rect,
        &Background::Transparent,
        &mut PixelsMut::new(&mut truth.data, bg.w, bg.h, bg.w as usize * 4).unwrap(),
    )
    .unwrap();
    (over, truth.alpha())
}

/// `frames` fed in real time at `LIVE_FPS` (each pushed at its time) through
/// `rbvremove {props}` once its model has made a first mask: each frame's
/// output alpha (by timestamp) and the mean `mask-age` of the rbv-stats
/// messages during the clip.
fn live(props: &str, frames: &[Rgba]) -> (Vec<Vec<u8>>, f64) {
    use std::sync::{Arc, Mutex};
    let (w, h) = (frames[0].w, frames[0].h);
    let pipeline = common::launch(&format!(
        "appsrc name=src format=time is-live=true ! rbvremove {props} stats-interval=500 ! \
         video/x-raw,format=RGBA ! appsink name=sink sync=false"
    ));
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    src.set_caps(Some(
        &gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgba, w, h)
            .fps(gst::Fraction::new(LIVE_FPS as i32, 1))
            .build()
            .unwrap()
            .to_caps()
            .unwrap(),
    ));
    let period = 1_000_000_000 / LIVE_FPS;
    let out: Arc<Mutex<Vec<Option<Vec<u8>>>>> = Arc::new(Mutex::new(vec![None; frames.len()]));
    let store = out.clone();
    // Frames of the warm-up before the clip (not stored).
    let offset = Arc::new(Mutex::new(u64::MAX));
    let first = offset.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let s = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let b = s.buffer().ok_or(gst::FlowError::Error)?;
                let n = b.pts().map_or(0, |p| p.nseconds()) / period;
                let Some(i) = n.checked_sub(*first.lock().unwrap()) else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let i = i as usize;
                let map = b.map_readable().map_err(|_| gst::FlowError::Error)?;
                let alpha = map.chunks_exact(4).map(|p| p[3]).collect();
                if let Some(slot) = store.lock().unwrap().get_mut(i) {
                    *slot = Some(alpha);
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    // Warm-up, as a live source that has been running a while: the first
    // frame, repeated at the frame rate, until the model's first mask is
    // out (an rbv-stats message with an inference time), at most 120 s.
    // Its output is not counted.
    let t0 = Instant::now();
    let mut warm = 0u64;
    let push = |i: u64, f: &Rgba| {
        let mut b = gst::Buffer::from_slice(f.data.clone());
        let bm = b.get_mut().unwrap();
        bm.set_pts(gst::ClockTime::from_nseconds(period * i));
        bm.set_duration(gst::ClockTime::from_nseconds(period));
        let due = std::time::Duration::from_nanos(period * i);
        if let Some(wait) = due.checked_sub(t0.elapsed()) {
            std::thread::sleep(wait);
        }
        src.push_buffer(b).unwrap();
    };
    'warm: loop {
        assert!(warm < 120 * LIVE_FPS, "{props}: no mask after 120 s");
        push(warm, &frames[0]);
        warm += 1;
        while let Some(msg) = bus.pop() {
            if let gst::MessageView::Element(e) = msg.view()
                && let Some(s) = e.structure().filter(|s| s.name() == "rbv-stats")
                && s.get::<f64>("inference-p50-ms").unwrap_or(0.0) > 0.0
            {
                break 'warm;
            }
            if let gst::MessageView::Error(e) = msg.view() {
                panic!("{props}: {}", e.error());
            }
        }
    }
    *offset.lock().unwrap() = warm;
    for (i, f) in frames.iter().enumerate() {
        push(warm + i as u64, f);
    }
    src.end_of_stream().unwrap();
    let mut ages = Vec::new();
    while let Some(msg) = bus.timed_pop(gst::ClockTime::from_seconds(120)) {
        match msg.view() {
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure().filter(|s| s.name() == "rbv-stats") {
                    ages.push(f64::from(s.get::<u32>("mask-age").unwrap_or(0)));
                }
            }
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{props}: {}", e.error()),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let alphas = std::mem::take(&mut *out.lock().unwrap())
        .into_iter()
        .map(|a| a.unwrap_or_else(|| vec![0; (w * h) as usize]))
        .collect();
    (alphas, mean(&ages))
}

fn main() {
    common::init();
    let t0 = Instant::now();
    let models: Vec<String> = std::env::var("RBV_QUALITY_MODELS")
        .unwrap_or_else(|_| "human,light,original,pro".into())
        .split(',')
        .map(str::to_string)
        .collect();

    // Ground truth: VOC, and people cut out by pro from two photos.
    let voc = load("voc_rgb.jpg", None);
    let voc_truth = common::gray("voc_person_mask.png").channel(0);
    // The centre 500x281 of it: a 16:9 frame.
    let (crop_y, crop_h) = ((375 - 281) / 2, 281usize);
    let voc_wide = Rgba {
        w: 500,
        h: crop_h as u32,
        data: voc.data[crop_y * 500 * 4..(crop_y + crop_h) * 500 * 4].to_vec(),
    };
    let voc_wide_truth = voc_truth[crop_y * 500..(crop_y + crop_h) * 500].to_vec();
    let foregrounds: Vec<Rgba> = ["grace_hopper.jpg", "zidane.jpg"]
        .iter()
        .map(|f| {
            let img = load(f, None);
            cut("model=pro detector=false", &[img], true).remove(0)
        })
        .collect();
    let backgrounds: Vec<Rgba> = [
        "rocket.jpg",
        "coffee.png",
        "motorcycle_left.png",
        "brick.png",
    ]
    .iter()
    .map(|f| load(f, Some((W, H))))
    .collect();
    let mut stills = Vec::new();
    for fg in &foregrounds {
        for bg in &backgrounds {
            stills.push(paste(fg, bg, 0.85, 0));
        }
    }
    let moving: Vec<(Rgba, Vec<u8>)> = (0..MOVING_FRAMES)
        .map(|i| {
            let dx = -(W as i32) / 3 + (i as i32 * 2 * W as i32 / 3) / MOVING_FRAMES as i32;
            paste(&foregrounds[0], &backgrounds[0], 0.8, dx)
        })
        .collect();
    let mut vtest = Vec::new();
    common::for_each_sample(
        &format!(
            "filesrc location={} ! decodebin ! videoconvert ! videoscale ! \
             video/x-raw,format=RGBA,width={W},height={H},pixel-aspect-ratio=1/1 ! \
             appsink name=sink sync=false",
            common::data("vtest.avi").display()
        ),
        |s| {
            let map = s.buffer().unwrap().map_readable().unwrap();
            vtest.push(Rgba {
                w: W,
                h: H,
                data: map.to_vec(),
            });
            vtest.len() < VTEST_FRAMES
        },
    );
    println!(
        "quality set ready in {:.0} s: VOC 500x375; {} composites and a {MOVING_FRAMES}-frame \
         moving clip at {W}x{H} (truth: ISNet cut-outs); {VTEST_FRAMES} vtest.avi frames",
        t0.elapsed().as_secs_f64(),
        stills.len()
    );
    println!(
        "{:<44} {:>7} {:>7} {:>7} | {:>7} {:>7} {:>8} {:>7} | {:>7} {:>7} {:>8} | {:>8} {:>6}",
        "model",
        "VOC IoU",
        "VOC BF",
        "16:9 IoU",
        "IoU",
        "MAE",
        "edge MAE",
        "grad",
        "mv IoU",
        "mv MAE",
        "mv flick",
        "vt flick",
        "s"
    );
    // Extra property sets to compare, run for every model after its defaults:
    // RBV_QUALITY_VARIANTS="smoothing=0.5;smoothing=0.8".
    let variants: Vec<String> = std::env::var("RBV_QUALITY_VARIANTS")
        .map(|v| {
            v.split(';')
                .filter(|v| !v.trim().is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    // RBV_QUALITY_STILL=0: no static noisy clip; =only: it alone.
    let still_env = std::env::var("RBV_QUALITY_STILL").unwrap_or_default();
    if still_env == "only" {
        still::static_clip(&foregrounds[0], &backgrounds[0]);
        return;
    }
    // RBV_QUALITY_LIVE=0: no live rows; =only: the live rows alone.
    let live_env = std::env::var("RBV_QUALITY_LIVE").unwrap_or_default();
    let live_on = live_env != "0";
    for model in models.iter().filter(|_| live_env != "only") {
        let base = format!("model={model}");
        // The model alone (as before the detector and the smoothing
        // default), the detector without smoothing, the element's defaults.
        let runs = [
            format!("{base} detector=false smoothing=0"),
            format!("{base} smoothing=0"),
            base.clone(),
        ]
        .into_iter()
        .chain(variants.iter().map(|v| format!("{base} {v}")));
        for props in runs {
            let t = Instant::now();
            let voc_a = cut(&props, std::slice::from_ref(&voc), true)[0].alpha();
            let voc_iou = common::iou(&voc_a, &voc_truth);
            let voc_bf = boundary_f(&voc_a, &voc_truth, 500, 375);
            let wide_a = cut(&props, std::slice::from_ref(&voc_wide), true)[0].alpha();
            let wide_iou = common::iou(&wide_a, &voc_wide_truth);
            let frames: Vec<Rgba> = stills.iter().map(|(f, _)| f.clone()).collect();
            let (mut ious, mut maes, mut edges, mut grads) = (vec![], vec![], vec![], vec![]);
            for (out, (_, truth)) in cut(&props, &frames, true).iter().zip(&stills) {
                let a = out.alpha();
                ious.push(common::iou(&a, truth));
                let (m, e, g) = alpha_errors(&a, truth, W as usize, H as usize);
                maes.push(m);
                edges.push(e);
                grads.push(g);
            }
            let frames: Vec<Rgba> = moving.iter().map(|(f, _)| f.clone()).collect();
            let mv: Vec<Vec<u8>> = cut(&props, &frames, false)
                .iter()
                .map(Rgba::alpha)
                .collect();
            let mv_iou = mean(
                &mv.iter()
                    .zip(&moving)
                    .map(|(a, (_, t))| common::iou(a, t))
                    .collect::<Vec<_>>(),
            );
            let mv_mae = mean(
                &mv.iter()
                    .zip(&moving)
                    .map(|(a, (_, t))| alpha_errors(a, t, W as usize, H as usize).0)
                    .collect::<Vec<_>>(),
            );
            let mv_flicker = flicker(&mv, |t, i| moving[t].1[i] == 0 && moving[t - 1].1[i] == 0);
            // The same split by distance from the person (16 px, either frame):
            // where the model's halo moves with them, and the still background.
            let reach: Vec<Vec<bool>> = moving
                .iter()
                .map(|(_, t)| near(t, W as usize, 16))
                .collect();
            let bg = |t: usize, i: usize| moving[t].1[i] == 0 && moving[t - 1].1[i] == 0;
            let mv_near = flicker(&mv, |t, i| bg(t, i) && (reach[t][i] || reach[t - 1][i]));
            let mv_far = flicker(&mv, |t, i| bg(t, i) && !reach[t][i] && !reach[t - 1][i]);
            let vt: Vec<Vec<u8>> = cut(&props, &vtest, false).iter().map(Rgba::alpha).collect();
            let luma = |f: &Rgba, i: usize| {
                let p = &f.data[i * 4..i * 4 + 3];
                (u32::from(p[0]) * 77 + u32::from(p[1]) * 150 + u32::from(p[2]) * 29) >> 8
            };
            let vt_flicker = flicker(&vt, |t, i| {
                luma(&vtest[t], i).abs_diff(luma(&vtest[t - 1], i)) <= 2
            });
            println!(
                "{:<44} {:>7.3} {:>7.3} {:>8.3} | {:>7.3} {:>7.4} {:>8.4} {:>7.4} | {:>7.3} {:>7.4} {:>8.5} | {:>8.5} {:>6.0}",
                props,
                voc_iou,
                voc_bf,
                wide_iou,
                mean(&ious),
                mean(&maes),
                mean(&edges),
                mean(&grads),
                mv_iou,
                mv_mae,
                mv_flicker,
                vt_flicker,
                t.elapsed().as_secs_f64()
            );
            println!(
                "{:<44} moving-clip flicker within 16 px of the person {mv_near:.5}, farther {mv_far:.5}",
                ""
            );
        }
    }

    if still_env != "0" && live_env != "only" && models.iter().any(|m| m == "human") {
        still::static_clip(&foregrounds[0], &backgrounds[0]);
    }
    if std::env::var("RBV_QUALITY_DETECTOR_SIZES").as_deref() != Ok("0")
        && live_env != "only"
        && models.iter().any(|m| m == "human")
    {
        // The composites again with the person smaller: detector-size
        // decides whether medium and small people are found.
        let smaller: Vec<(f64, Composites)> = [0.25, 0.4, 0.6]
            .into_iter()
            .map(|share| {
                let set = foregrounds
                    .iter()
                    .flat_map(|fg| backgrounds.iter().map(move |bg| paste(fg, bg, share, 0)))
                    .collect();
                (share, set)
            })
            .collect();
        still::detector_sizes(
            (&voc, &voc_truth),
            (&voc_wide, &voc_wide_truth),
            &stills,
            &smaller,
        );
    }

    if live_on {
        // Live: 2 s still, then to and fro across two thirds of the width at
        // about 7 px a frame, fed in real time.
        let clip: Vec<(Rgba, Vec<u8>)> = (0..LIVE_FRAMES)
            .map(|i| {
                let span = 2 * W as i32 / 3;
                let t = i.saturating_sub(LIVE_STILL) as i32 * 7;
                let tri = t % (2 * span);
                let x = if tri < span { tri } else { 2 * span - tri };
                paste(&foregrounds[0], &backgrounds[0], 0.8, x - span / 2)
            })
            .collect();
        let moving: Vec<usize> = (1..LIVE_FRAMES)
            .filter(|&i| clip[i].1 != clip[i - 1].1)
            .collect();
        let frames: Vec<Rgba> = clip.iter().map(|(f, _)| f.clone()).collect();
        println!(
            "\nlive: {LIVE_FRAMES} frames at {LIVE_FPS} fps in real time ({} moving), {W}x{H}, mode=async; \
             IoU over the moving frames, all frames; mean mask age in frames",
            moving.len()
        );
        let mut rows = vec!["model=human mode=async".to_string()];
        for m in models.iter().filter(|m| m.as_str() != "human") {
            rows.push(format!("model={m} mode=async"));
            rows.push(format!("model={m} mode=async async-correction=false"));
        }
        // The variants after the defaults, for every model.
        let extra: Vec<String> = models
            .iter()
            .flat_map(|m| {
                variants
                    .iter()
                    .map(move |v| format!("model={m} mode=async {v}"))
            })
            .collect();
        rows.extend(extra);
        for props in rows {
            let (alphas, age) = live(&props, &frames);
            let iou_of = |i: usize| common::iou(&alphas[i], &clip[i].1);
            let mv = mean(&moving.iter().map(|&i| iou_of(i)).collect::<Vec<_>>());
            let all = mean(&(0..LIVE_FRAMES).map(iou_of).collect::<Vec<_>>());
            println!("{props:<48} moving IoU {mv:.3}, all {all:.3}, mask age {age:.1}");
        }
    }
    if live_env == "only" {
        return;
    }

    // What text-prompt keeps: each class against the photo's own truth.
    println!("\nVOC photo, one class kept (IoU against that class's ground truth, alpha >= 0.5)");
    let truths = voc_class_truths();
    for model in &models {
        let mut row = format!("{:<16}", format!("model={model}"));
        let ious = class_ious(&format!("model={model}"), &voc, &truths);
        for ((class, _), iou) in truths.iter().zip(ious) {
            row += &format!("  {class} {iou:.3}");
        }
        println!("{row}");
    }

    if std::env::var("RBV_QUALITY_SIZES").as_deref() != Ok("0")
        && models.iter().any(|m| m == "human")
    {
        // Which selfie model for wide frames, by the people's size: the
        // composites again, the person pasted at several heights.
        println!(
            "\n16:9 composites ({W}x{H}), the person at a share of the frame's height: \
             IoU / alpha error per selfie model, with the detector"
        );
        for share in [0.25, 0.4, 0.6, 0.85] {
            let set: Vec<(Rgba, Vec<u8>)> = foregrounds
                .iter()
                .flat_map(|fg| backgrounds.iter().map(move |bg| paste(fg, bg, share, 0)))
                .collect();
            let frames: Vec<Rgba> = set.iter().map(|(f, _)| f.clone()).collect();
            let mut row = format!("height {share:<5}");
            for variant in ["square", "landscape"] {
                let out = cut(
                    &format!("model=human human-variant={variant}"),
                    &frames,
                    true,
                );
                let (mut ious, mut maes) = (vec![], vec![]);
                for (o, (_, truth)) in out.iter().zip(&set) {
                    let a = o.alpha();
                    ious.push(common::iou(&a, truth));
                    maes.push(alpha_errors(&a, truth, W as usize, H as usize).0);
                }
                row += &format!("  {variant} {:.3} / {:.4}", mean(&ious), mean(&maes));
            }
            println!("{row}");
        }
    }

    if std::env::var("RBV_QUALITY_OPAQUE").as_deref() != Ok("0")
        && models.iter().any(|m| m == "human")
    {
        println!(
            "\nvtest.avi, all 795 frames at 768x576, model=human: mean share of opaque pixels \
             (alpha > 240), the distant people"
        );
        let runs = [
            "model=human detector=false smoothing=0".to_string(),
            "model=human smoothing=0".into(),
            "model=human".into(),
        ]
        .into_iter()
        .chain(variants.iter().map(|v| format!("model=human {v}")));
        for props in runs {
            let t = Instant::now();
            let share = opaque_share(&props);
            println!(
                "{props:<44} {share:.5}  ({:.0} s)",
                t.elapsed().as_secs_f64()
            );
        }
    }
}

/// The mean share of opaque pixels (alpha > 240) over the whole of
/// vtest.avi through `rbvremove props`, decoded as a file pipeline does.
fn opaque_share(props: &str) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    common::for_each_sample(
        &format!(
            "filesrc location={} ! decodebin ! videoconvert ! rbvremove {props} \
             stats-interval=0 ! video/x-raw,format=RGBA ! appsink name=sink sync=false",
            common::data("vtest.avi").display()
        ),
        |s| {
            let map = s.buffer().unwrap().map_readable().unwrap();
            let px = map.len() / 4;
            let opaque = map.chunks_exact(4).filter(|p| p[3] > 240).count();
            sum += opaque as f64 / px as f64;
            n += 1;
            true
        },
    );
    sum / n.max(1) as f64
}
