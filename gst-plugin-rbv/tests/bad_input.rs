// SPDX-License-Identifier: MPL-2.0
// Rows of the bad-input matrix (docs/reliability.md) that no feature test
// covers: each ends in a clear error or a correct result, never a panic or a
// hang.

use rbv_testkit as common;

use std::time::{Duration, Instant};

use common::*;
use gst::glib;
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
    // grace_hopper.jpg (512x600) stretched to each size: her face at (0.5,
    // 0.45) of the frame is the person, the blue backdrop at (0.92, 0.1) is
    // background; where the frame is big enough for a person to be seen in
    // it (both sides at least the model's 256), the matte must say so (a
    // matte of all one value, or of the wrong places, fails). In the tiny
    // frames no model sees a person: they must pass, sized, no more.
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
        let mut last = None;
        let eos = for_each_sample(
            &format!(
                "filesrc location={} ! jpegdec ! imagefreeze num-buffers={frames} ! videoconvert ! \
                 videoscale add-borders=false ! video/x-raw,format={format},width={w},height={h} ! \
                 rbvremove ! video/x-raw,format=RGBA ! appsink name=sink sync=false",
                data("grace_hopper.jpg").display()
            ),
            |s| {
                let info = gst_video::VideoInfo::from_caps(s.caps().unwrap()).unwrap();
                assert_eq!((info.width(), info.height()), (w, h));
                got += 1;
                last = Some(s.clone());
                true
            },
        );
        assert!(
            eos && got == frames,
            "{w}x{h} {format}: {got} of {frames} frames"
        );
        let sample = last.unwrap();
        let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
        let map = sample.buffer().unwrap().map_readable().unwrap();
        let stride = info.stride()[0] as usize;
        let alpha = |fx: f64, fy: f64| {
            let (x, y) = ((fx * w as f64) as usize, (fy * h as f64) as usize);
            map[y * stride + x * 4 + 3]
        };
        let (face, backdrop) = (alpha(0.5, 0.45), alpha(0.92, 0.1));
        println!("{w}x{h} {format}: face alpha {face}, backdrop alpha {backdrop}");
        if w >= 256 && h >= 256 {
            assert!(
                face >= 200 && backdrop <= 50,
                "{w}x{h} {format}: face alpha {face}, backdrop alpha {backdrop}"
            );
        }
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
    // A model-path that is not there is named as the model-path (not "or
    // set model-path", which was set).
    let missing = dir.join("nope/model.onnx");
    let err = play(&format!(
        "videotestsrc num-buffers=2 ! rbvremove model=light model-path={} ! fakesink",
        missing.display()
    ))
    .expect("a missing model-path fails the start");
    assert!(
        err.contains(&format!("model-path {}: not found", missing.display())),
        "{err}"
    );
    assert!(!err.contains("or set model-path"), "{err}");
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
        wait_end(&pipeline, END_WAIT).expect_eos(&format!("EOS first with `{props}`"));
        pipeline.set_state(gst::State::Null).unwrap();
    }
}

/// One u2net inference on this machine, timed after a warm-up run.
fn original_model_frame_time() -> Duration {
    use rbv_core::model::{self, RunnerOptions, Segmenter};
    let mut s = Segmenter::new(model::ORIGINAL, None, &RunnerOptions::default()).unwrap();
    let (w, h) = s.input_size();
    let rgb = vec![128u8; (w * h * 3) as usize];
    s.run(&rgb, w as usize * 3).unwrap();
    let t0 = Instant::now();
    s.run(&rgb, w as usize * 3).unwrap();
    t0.elapsed()
}

#[test]
fn null_during_a_slow_inference_returns_without_a_hang() {
    init();
    // u2net's frame time, measured here first: after the first frame, NULL
    // lands mid-inference (a live 30 fps source keeps the model busy). Sync
    // mode finishes the frame in hand first (one frame time, plus a second
    // for the teardown); async mode does not wait for it (under half a frame
    // time, where a frame is slow enough to tell).
    let frame = original_model_frame_time();
    let sync_bound = frame * 2 + Duration::from_secs(1);
    let async_bound = (frame / 2).max(Duration::from_millis(300));
    println!("u2net frame {frame:?}: NULL bounds sync {sync_bound:?}, async {async_bound:?}");
    for (props, bound) in [
        ("model=original", sync_bound),
        ("model=original mode=async", async_bound),
    ] {
        let pipeline = launch(&format!(
            "videotestsrc is-live=true ! video/x-raw,width=640,height=360,framerate=30/1 ! \
             rbvremove {props} ! fakesink name=sink"
        ));
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        pipeline
            .by_name("sink")
            .unwrap()
            .static_pad("sink")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                let _ = tx.try_send(());
                gst::PadProbeReturn::Remove
            });
        pipeline.set_state(gst::State::Playing).unwrap();
        rx.recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("{props}: no frame within 30 s"));
        std::thread::sleep(frame / 2);
        let t0 = Instant::now();
        pipeline.set_state(gst::State::Null).unwrap();
        let took = t0.elapsed();
        println!("{props}: NULL took {took:?}");
        assert!(took < bound, "{props}: NULL took {took:?}, bound {bound:?}");
    }
}

/// `gst-launch-1.0` with `args` between `videotestsrc num-buffers=3 !` and
/// `! fakesink`: whether it succeeded, and what it printed.
fn gst_launch(args: &[&str]) -> (bool, String) {
    let mut line = vec!["videotestsrc", "num-buffers=3", "!", "rbvremove"];
    line.extend_from_slice(args);
    line.extend_from_slice(&["!", "fakesink"]);
    let out = std::process::Command::new("gst-launch-1.0")
        .args(&line)
        .env("GST_PLUGIN_PATH", plugin_dir())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn a_refused_value_on_a_launch_line_fails_the_start_naming_it() {
    // Set while the line is parsed, before the element has a bus: the
    // refusal is remembered and the start fails with it (exit 0 with the
    // default colour before).
    for (args, names) in [
        (
            &["background=color", "background-color=notacolour"][..],
            &["background-color", "'notacolour'", "#RRGGBB"][..],
        ),
        (&["composition={bad"], &["composition", "'{bad'", "canvas"]),
        (&["api-url=ftp://x"], &["api-url", "'ftp://x'", "http(s)"]),
        // An enum's wrong name is GStreamer's own parse error.
        (&["output-format=avi"], &["output-format", "avi"]),
        (
            &["background-image=/nonexistent/bg.png"],
            &["background-image", "/nonexistent/bg.png"],
        ),
    ] {
        let (ok, text) = gst_launch(args);
        assert!(!ok, "{args:?} was taken:\n{text}");
        for n in names {
            assert!(text.contains(n), "{args:?}: no {n} in\n{text}");
        }
    }
    // A later right value of the same property is what the element runs with.
    let (ok, text) = gst_launch(&[
        "background=color",
        "background-color=notacolour",
        "background-color=white",
    ]);
    assert!(ok, "{text}");
}

#[test]
fn start_only_properties_are_refused_while_playing_with_a_warning() {
    init();
    let pipeline = launch(
        "videotestsrc is-live=true ! video/x-raw,width=320,height=240 ! rbvremove name=r ! fakesink",
    );
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let started = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(30),
        &[gst::MessageType::AsyncDone, gst::MessageType::Error],
    );
    assert!(
        matches!(
            started.as_ref().map(|m| m.view()),
            Some(gst::MessageView::AsyncDone(_))
        ),
        "{started:?}"
    );
    let r = pipeline.by_name("r").unwrap();
    let nick = |name: &str| {
        let v = r.property_value(name);
        glib::EnumValue::from_value(&v).unwrap().1.nick().to_owned()
    };
    for (name, value, kept) in [("model", "light", "human"), ("mode", "async", "sync")] {
        r.set_property_from_str(name, value);
        let msg = bus
            .timed_pop_filtered(
                gst::ClockTime::from_seconds(5),
                &[gst::MessageType::Warning],
            )
            .unwrap_or_else(|| panic!("no warning for {name}={value} while playing"));
        let gst::MessageView::Warning(w) = msg.view() else {
            unreachable!()
        };
        let text = w.error().to_string();
        assert!(
            text.contains(name) && text.contains("NULL or READY") && text.contains(kept),
            "{text}"
        );
        assert_eq!(nick(name), kept);
    }
    // What may change live still does, without a word.
    r.set_property_from_str("background", "color");
    assert_eq!(nick("background"), "color");
    assert!(
        bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(300),
            &[gst::MessageType::Warning]
        )
        .is_none()
    );
    pipeline.set_state(gst::State::Null).unwrap();
}
