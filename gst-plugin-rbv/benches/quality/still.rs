// SPDX-License-Identifier: MPL-2.0
//! Two sections of the quality bench:
//!
//! - A static noisy clip with exact truth: a person still for 150 frames, then
//!   walking for 30, over a photo, each frame with fresh sensor-like noise.
//!   Flicker (mean |alpha_t - alpha_t-1| over the whole frame) on the still
//!   part, apart at the frames a new detection is applied from and between
//!   them, beside the same frames run one by one through fresh elements (no
//!   temporal state at all); IoU on both parts. One row per
//!   `detector-interval` (`RBV_QUALITY_STILL=0` skips it, `=only` runs it
//!   alone).
//! - `detector-size`: VOC IoU and boundary F, the 16:9 crop, the composite
//!   set, the per-class rows and the detector's own time at each size
//!   (`RBV_QUALITY_DETECTOR_SIZES=0` skips it).

use std::time::Instant;

use super::metrics::{alpha_errors, boundary_f, flicker, mean};
use super::{Composites, H, Rgba, W, class_ious, common, cut, load, paste, voc_class_truths};

const STILL_FRAMES: usize = 150;
const WALK_FRAMES: usize = 30;
/// The noise's standard deviation, in levels of 255 (a camera's at some
/// gain); `RBV_QUALITY_NOISE` sets another.
const NOISE: f64 = 4.0;

fn noise() -> f64 {
    std::env::var("RBV_QUALITY_NOISE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(NOISE)
}

/// `frame` with fresh noise (seeded by `seed`: the same clip every run).
fn noisy(frame: &Rgba, seed: u64, sd: f64) -> Rgba {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out = frame.clone();
    for px in out.data.chunks_exact_mut(4) {
        for c in &mut px[..3] {
            // A sum of four uniforms: close to a normal distribution.
            let n: f64 = (0..4).map(|_| rng.f64() - 0.5).sum::<f64>() * sd * 3.0f64.sqrt();
            *c = (f64::from(*c) + n).round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// The frames a new detection is applied from with `detector-interval=n`
/// on a still picture (nothing moves, so only the refreshes: the first
/// frame; then a refresh started every 8n frames of the timeline is applied
/// n - 1 frames later).
fn detection_frames(n: usize, len: usize) -> Vec<bool> {
    let refresh = 8 * n;
    (0..len)
        .map(|t| t == 0 || (n > 0 && t >= refresh && (t + 1 - n).is_multiple_of(refresh)))
        .collect()
}

/// The static noisy clip's rows.
pub fn static_clip(foreground: &Rgba, background: &Rgba) {
    let sd = noise();
    let clip: Vec<(Rgba, Vec<u8>)> = (0..STILL_FRAMES + WALK_FRAMES)
        .map(|i| {
            let dx = i.saturating_sub(STILL_FRAMES) as i32 * 6;
            let (frame, truth) = paste(foreground, background, 0.8, dx - 90);
            (noisy(&frame, 1 + i as u64, sd), truth)
        })
        .collect();
    let frames: Vec<Rgba> = clip.iter().map(|(f, _)| f.clone()).collect();
    println!(
        "\nstatic noisy clip: {STILL_FRAMES} frames of a still person, then {WALK_FRAMES} walking \
         (6 px a frame), {W}x{H}, noise sd {sd} levels, model=human; flicker over the whole \
         frame on the still part: all, at the frames a new detection is applied from, between \
         them, and the two's ratio; IoU still / walking"
    );
    println!(
        "{:<44} {:>9} {:>9} {:>9} {:>6} {:>7} {:>7} {:>6}",
        "run", "flicker", "at det", "between", "ratio", "IoU st", "IoU wk", "s"
    );
    // (props, independent frames, detector-interval in effect)
    let rows: [(&str, bool, usize); 7] = [
        ("defaults (detector-interval=15)", false, 15),
        ("defaults, each frame alone (fresh state)", true, 0),
        ("detector=false", false, 0),
        ("detector-interval=1", false, 1),
        ("detector-interval=5", false, 5),
        ("detector-interval=30", false, 30),
        ("smoothing=0", false, 15),
    ];
    for (label, independent, interval) in rows {
        let props = match label {
            l if l.starts_with("defaults") => "",
            l => l,
        };
        let t0 = Instant::now();
        let alphas: Vec<Vec<u8>> = cut(props, &frames, independent)
            .iter()
            .map(Rgba::alpha)
            .collect();
        let still = &alphas[..STILL_FRAMES];
        let at = detection_frames(interval, STILL_FRAMES);
        let all = flicker(still, |_, _| true);
        let fmt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.5}"));
        let (at_det, between) = if interval == 0 || independent {
            (None, None)
        } else {
            let on = flicker(still, |t, _| at[t]);
            let off = flicker(still, |t, _| !at[t]);
            (Some(on), (interval > 1).then_some(off))
        };
        let iou = |range: std::ops::Range<usize>| {
            mean(
                &range
                    .map(|i| common::iou(&alphas[i], &clip[i].1))
                    .collect::<Vec<_>>(),
            )
        };
        let ratio = match (at_det, between) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
            _ => "-".into(),
        };
        println!(
            "{label:<44} {all:>9.5} {:>9} {:>9} {ratio:>6} {:>7.3} {:>7.3} {:>6.0}",
            fmt(at_det),
            fmt(between),
            iou(0..STILL_FRAMES),
            iou(STILL_FRAMES..STILL_FRAMES + WALK_FRAMES),
            t0.elapsed().as_secs_f64()
        );
    }
}

/// What `detector-size` gives: the quality rows and the detector's time.
pub fn detector_sizes(
    voc: (&Rgba, &[u8]),
    voc_wide: (&Rgba, &[u8]),
    stills: &[(Rgba, Vec<u8>)],
    smaller: &[(f64, Composites)],
) {
    use rbv_core::detect::{Detector, Letterbox, NUM_CLASSES, PERSON, resize_rgb};
    println!(
        "\ndetector-size (model=human, the other settings default): VOC person IoU and boundary F, \
         the 16:9 crop, composites IoU / alpha error (the person at 0.85 of the frame's height), \
         composites IoU with the person at 0.6, 0.4 and 0.25 of it, one class kept (IoU), and one \
         detection's time on a 1920x1080 frame (1 thread, as the element runs it; median of 9)"
    );
    println!(
        "{:<6} {:>7} {:>7} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>9}",
        "size",
        "VOC IoU",
        "VOC BF",
        "16:9 IoU",
        "IoU",
        "MAE",
        "IoU .6",
        "IoU .4",
        "IoU .25",
        "chair",
        "bottle",
        "table",
        "ms"
    );
    let truths = voc_class_truths();
    let photo = load("zidane.jpg", Some((1920, 1080)));
    let options = rbv_core::model::RunnerOptions {
        threads: 1,
        ..Default::default()
    };
    let mut detector = Detector::new(None, &options).expect("detector model");
    let mut wanted = [false; NUM_CLASSES];
    wanted[PERSON] = true;
    for size in [256u32, 320, 384, 448, 512, 640] {
        let props = format!("detector-size={size}");
        let voc_a = cut(&props, std::slice::from_ref(voc.0), true)[0].alpha();
        let wide_a = cut(&props, std::slice::from_ref(voc_wide.0), true)[0].alpha();
        let frames: Vec<Rgba> = stills.iter().map(|(f, _)| f.clone()).collect();
        let (mut ious, mut maes) = (vec![], vec![]);
        for (out, (_, truth)) in cut(&props, &frames, true).iter().zip(stills) {
            let a = out.alpha();
            ious.push(common::iou(&a, truth));
            maes.push(alpha_errors(&a, truth, W as usize, H as usize).0);
        }
        let by_height: Vec<f64> = smaller
            .iter()
            .rev()
            .map(|(_, set)| {
                let frames: Vec<Rgba> = set.iter().map(|(f, _)| f.clone()).collect();
                let ious: Vec<f64> = cut(&props, &frames, true)
                    .iter()
                    .zip(set)
                    .map(|(out, (_, truth))| common::iou(&out.alpha(), truth))
                    .collect();
                mean(&ious)
            })
            .collect();
        let per_class = class_ious(&props, voc.0, &truths);
        let lb = Letterbox::fit((photo.w, photo.h), size);
        let (_, _, pw, ph) = lb.placed;
        let rgb = resize_rgb(
            &photo.data,
            (photo.w as usize, photo.h as usize),
            photo.w as usize * 4,
            4,
            (pw as usize, ph as usize),
        );
        let mut times = Vec::new();
        for _ in 0..10 {
            let t = Instant::now();
            detector
                .run(&rgb, pw as usize * 3, &lb, 0.25, Some(&wanted))
                .unwrap();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.remove(0);
        times.sort_by(f64::total_cmp);
        println!(
            "{size:<6} {:>7.3} {:>7.3} {:>8.3} {:>7.3} {:>7.4} {:>7.3} {:>7.3} {:>7.3} {:>7.3} {:>7.3} {:>7.3} {:>9.1}",
            common::iou(&voc_a, voc.1),
            boundary_f(&voc_a, voc.1, 500, 375),
            common::iou(&wide_a, voc_wide.1),
            mean(&ious),
            mean(&maes),
            by_height[0],
            by_height[1],
            by_height[2],
            per_class[0],
            per_class[1],
            per_class[2],
            times[times.len() / 2]
        );
    }
}
