// SPDX-License-Identifier: MPL-2.0
// A long input cut into segments, each processed on its own with a warm-up
// before its first frame, then joined: every frame once, in order, with
// steady timestamps, and the mattes at the cuts as one run over the whole
// input makes them (the warm-up lines the detector's schedule up and
// settles the smoothing). Both runs are on the same machine, so nothing
// here depends on one CPU's float results; the bound is what a viewer
// could see, not a figure one machine gives.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gstrbv::rbvremove::SEGMENT_WARM_UP_FRAMES;
use rbv_api::OutputFormat;
use rbv_runner::{FrameRange, Spec, Target, plan_segments};
use rbv_testkit::{
    VISIBLE, alpha_difference as difference, alpha_frames, invisible, mean_abs_diff,
};

fn spec<'a>(
    input: &'a Path,
    output: &'a Path,
    target: Target,
    frames: Option<FrameRange>,
) -> Spec<'a> {
    Spec {
        input,
        output,
        target,
        properties: vec![("model".into(), "human".into())],
        timeout: Some(Duration::from_secs(300)),
        stop: None,
        frames,
    }
}

/// Frames of the test clip, and of a segment: 3 segments, the second and
/// third with a full warm-up before them.
const FRAMES: usize = 300;
const SEGMENT: u64 = 100;

/// Cuts `input` (`FRAMES` frames) into 3 segments, runs them out of order, as
/// workers may, and joins them; checks every frame is there once with one
/// run's timestamps and alpha. Answers (the parts, one run's frames, the
/// joined frames).
#[allow(clippy::type_complexity)]
fn cut_and_join(
    input: &Path,
    dir: &Path,
    tag: &str,
) -> (Vec<PathBuf>, Vec<(u64, Vec<u8>)>, Vec<(u64, Vec<u8>)>) {
    let n = FRAMES;
    let probed = rbv_runner::probe(input, Duration::from_secs(30)).unwrap();
    assert_eq!(probed.frames, n as u64, "{tag}");
    let whole = dir.join(format!("{tag}-whole.mkv"));
    let o = rbv_runner::run(&spec(input, &whole, Target::Ffv1, None), |_| {}).unwrap();
    assert_eq!(o.frames, n as u64, "{tag}");

    let plan = plan_segments(probed.frames, SEGMENT, SEGMENT_WARM_UP_FRAMES);
    assert_eq!(plan.len(), 3);
    let mut parts: Vec<PathBuf> = Vec::new();
    for (i, range) in plan.iter().enumerate().rev() {
        let part = dir.join(format!("{tag}-part{i}.mkv"));
        let o = rbv_runner::run(&spec(input, &part, Target::Ffv1, Some(*range)), |_| {}).unwrap();
        assert_eq!(
            o.frames, SEGMENT,
            "{tag} segment {i}: its frames, no warm-up frame"
        );
        let a = alpha_frames(&part);
        assert_eq!(
            a.len(),
            SEGMENT as usize,
            "{tag} segment {i}: every frame written"
        );
        assert_eq!(a[0].0, 0, "{tag} segment {i} starts at time 0");
        parts.insert(0, part);
    }

    let expected = alpha_frames(&whole);
    let joined = dir.join(format!("{tag}-joined.mkv"));
    let o = rbv_runner::join(&parts, &spec(input, &joined, Target::Ffv1, None), |_| {}).unwrap();
    assert_eq!(o.frames, n as u64, "{tag}");
    let got = alpha_frames(&joined);
    assert_eq!(got.len(), n, "{tag}: every frame once");
    let mut worst = ((0.0f64, 0.0f64), 0);
    for (i, ((t, a), (t0, b))) in got.iter().zip(&expected).enumerate() {
        assert_eq!(
            t - got[0].0,
            t0 - expected[0].0,
            "{tag} frame {i}: timestamps go on across the joins"
        );
        let d = difference(a, b);
        if d > worst.0 {
            worst = (d, i);
        }
    }
    let ((mean, share), i) = worst;
    eprintln!(
        "{tag}: worst frame {i}: {mean:.4} of 255 on average, {:.3} % of pixels off by more than {VISIBLE}",
        share * 100.0
    );
    assert!(
        invisible(worst.0),
        "{tag} frame {i} differs from one run's by {mean:.3} of 255 on average, {:.3} % of \
         its pixels visibly: a seam",
        share * 100.0
    );
    (parts, expected, got)
}

#[test]
fn segments_joined_give_the_whole_runs_frames() {
    rbv_testkit::init();
    rbv_runner::init().unwrap();
    let dir = rbv_testkit::scratch("runner-segments");
    let input = dir.join("in.webm");
    // 30 s of people walking (vtest.avi is 10 frames a second).
    let n = FRAMES;
    rbv_testkit::scaled_clip("vtest.avi", n, 320, 240, &input);
    let (parts, expected, got) = cut_and_join(&input, &dir, "webm");
    // H.264 with B-frames in MP4, as ffmpeg and phones write it: its edit
    // list starts the demuxer's segment after 0.
    let mp4 = dir.join("in.mp4");
    let st = std::process::Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-i"])
        .arg(&input)
        .args(["-c:v", "libx264", "-bf", "2", "-pix_fmt", "yuv420p"])
        .arg(&mp4)
        .status()
        .expect("ffmpeg (installed by setup/setup.sh)");
    assert!(st.success());
    cut_and_join(&mp4, &dir, "mp4");
    let plan = plan_segments(n as u64, SEGMENT, SEGMENT_WARM_UP_FRAMES);
    let first = plan[1].first as usize;

    // Without the warm-up the cut shows.
    let cold = dir.join("cold.mkv");
    let range = FrameRange {
        warm_up: 0,
        ..plan[1]
    };
    rbv_runner::run(&spec(&input, &cold, Target::Ffv1, Some(range)), |_| {}).unwrap();
    let cold = alpha_frames(&cold);
    let (d_cold, d_warm) = (
        mean_abs_diff(&cold[0].1, &expected[first].1),
        mean_abs_diff(&got[first].1, &expected[first].1),
    );
    eprintln!("first frame of a segment without warm-up: {d_cold:.4} (with: {d_warm:.4})");
    assert!(d_warm < d_cold / 4.0, "the warm-up brings the state close");
    // The bound sees a real seam: without the warm-up some frame of the
    // segment differs visibly.
    let seen = cold
        .iter()
        .zip(&expected[first..first + SEGMENT as usize])
        .any(|((_, a), (_, b))| !invisible(difference(a, b)));
    assert!(seen, "a segment without warm-up passes as seamless");

    // Every format of the service from the same parts: every frame.
    for format in OutputFormat::ALL {
        let out = dir.join(format!("joined.{}", format.extension()));
        rbv_runner::join(
            &parts,
            &spec(&input, &out, Target::Service(format), None),
            |_| {},
        )
        .unwrap();
        let frames = match format {
            OutputFormat::PngSequence => {
                let zip = std::fs::File::open(&out).unwrap();
                zip::ZipArchive::new(zip).unwrap().len()
            }
            // Neither GStreamer 1.22 nor ffmpeg decodes animated WebP: one
            // ANMF chunk per frame.
            OutputFormat::Webp => std::fs::read(&out)
                .unwrap()
                .windows(4)
                .filter(|w| w == b"ANMF")
                .count(),
            _ => alpha_frames(&out).len(),
        };
        assert_eq!(frames, n, "{format}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
