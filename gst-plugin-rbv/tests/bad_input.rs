// SPDX-License-Identifier: MPL-2.0
// Rows of the bad-input matrix (docs/reliability.md) that no feature test
// covers: each ends in a clear error or a correct result, never a panic or a
// hang.

use rbv_testkit as common;

use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;

/// Plays `description` to EOS or error; the error text, if any.
fn play(description: &str) -> Option<String> {
    let pipeline = launch(description);
    let _ = pipeline.set_state(gst::State::Playing);
    let err = wait_for_error(&pipeline);
    pipeline.set_state(gst::State::Null).unwrap();
    err
}

#[test]
fn tiny_odd_and_huge_frames_are_cut() {
    init();
    for (w, h, format) in [
        (1, 1, "I420"),
        (3, 3, "I420"),
        (33, 17, "NV12"),
        (1, 720, "RGBA"),
        (1921, 1081, "I420"),
        (7680, 4320, "I420"),
    ] {
        let frames = if w * h > 10_000_000 { 1 } else { 3 };
        let mut got = 0;
        let eos = for_each_sample(
            &format!(
                "videotestsrc num-buffers={frames} ! video/x-raw,format={format},width={w},height={h} ! \
                 rbvremove ! appsink name=sink sync=false"
            ),
            |s| {
                let info = gst_video::VideoInfo::from_caps(s.caps().unwrap()).unwrap();
                assert_eq!((info.width(), info.height()), (w, h));
                got += 1;
                true
            },
        );
        assert!(
            eos && got == frames,
            "{w}x{h} {format}: {got} of {frames} frames"
        );
    }
}

#[test]
fn a_truncated_or_empty_model_file_is_an_error_naming_it() {
    init();
    let dir = scratch("bad-model");
    let whole = std::fs::read(rbv_core::paths::cache_dir().join("models/u2netp.onnx")).unwrap();
    for (name, bytes) in [
        ("truncated.onnx", &whole[..whole.len() / 3]),
        ("empty.onnx", &[][..]),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = play(&format!(
            "videotestsrc num-buffers=2 ! rbvremove model=light model-path={} ! fakesink",
            path.display()
        ))
        .unwrap_or_else(|| panic!("{name}: no error"));
        assert!(err.contains(&path.display().to_string()), "{name}: {err}");
    }
}

#[test]
fn eos_without_a_buffer_ends_cleanly() {
    init();
    for props in [
        "",
        "mode=async",
        "background=blur canvas-width=640 canvas-height=360",
    ] {
        let pipeline = launch(&format!(
            "appsrc name=src caps=video/x-raw,format=I420,width=320,height=240,framerate=30/1 \
             format=time ! rbvremove {props} ! fakesink"
        ));
        let src = pipeline
            .by_name("src")
            .unwrap()
            .downcast::<gst_app::AppSrc>()
            .unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        src.end_of_stream().unwrap();
        assert_eq!(wait_for_error(&pipeline), None, "{props}");
        pipeline.set_state(gst::State::Null).unwrap();
    }
}

#[test]
fn null_during_a_slow_inference_returns_without_a_hang() {
    init();
    // u2net takes about 0.7 s a frame here: NULL lands mid-inference. Sync
    // mode finishes the frame in hand first; async mode does not wait.
    for (props, bound) in [("model=original", 3), ("model=original mode=async", 1)] {
        let pipeline = launch(&format!(
            "videotestsrc is-live=true ! video/x-raw,width=640,height=360,framerate=30/1 ! \
             rbvremove {props} ! fakesink"
        ));
        pipeline.set_state(gst::State::Playing).unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        let t0 = Instant::now();
        pipeline.set_state(gst::State::Null).unwrap();
        let took = t0.elapsed();
        assert!(
            took < Duration::from_secs(bound),
            "{props}: NULL took {took:?}"
        );
    }
}
