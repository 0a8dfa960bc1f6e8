// SPDX-License-Identifier: MPL-2.0
// Whole pipelines: vtest.avi to EOS, and errors that must stop a pipeline cleanly.

use rbv_testkit as common;

use common::*;
use gst::prelude::*;

#[test]
fn vtest_runs_to_eos_with_every_frame_and_timestamp() {
    init();
    let mut pts = Vec::new();
    // (frame, clear share, solid share) of every 100th frame.
    let mut shares = Vec::new();
    let eos = for_each_sample(
        &format!(
            "filesrc location={} ! decodebin ! videoconvert ! rbvremove ! appsink name=sink sync=false",
            data("vtest.avi").display()
        ),
        |sample| {
            let buffer = sample.buffer().unwrap();
            pts.push(buffer.pts().expect("timestamped"));
            if pts.len() % 100 == 1 {
                let map = buffer.map_readable().unwrap();
                let n = (map.len() / 4) as f64;
                let share = |f: &dyn Fn(u8) -> bool| {
                    map.chunks_exact(4).filter(|p| f(p[3])).count() as f64 / n
                };
                shares.push((pts.len() - 1, share(&|a| a < 16), share(&|a| a > 240)));
            }
            true
        },
    );
    assert!(eos, "stopped before EOS");
    assert_eq!(pts.len(), 795, "frame count");
    for (i, t) in pts.iter().enumerate() {
        // 10 fps: frame i at i * 100 ms.
        assert_eq!(t.mseconds(), i as u64 * 100, "pts of frame {i}");
    }
    // Distant pedestrians on a big street: most of each frame is clear
    // background but not all of it, and people are solid (the detector
    // clears the street: a sparse frame is above 99 % clear, so the bound
    // is 99.9 %, as in the command's test): an all-clear or an all-solid
    // matte fails.
    println!("(frame, clear, solid): {shares:.4?}");
    assert_eq!(shares.len(), 8);
    for &(i, clear, solid) in &shares {
        assert!(
            (0.5..0.999).contains(&clear),
            "frame {i}: clear {clear:.4} solid {solid:.4}: not a cut of a few people"
        );
    }
    let solid = shares.iter().map(|s| s.2).sum::<f64>() / 8.0;
    assert!(solid > 0.001, "solid share {solid:.4}: no one kept");
}

fn start_and_expect_error(description: &str) -> String {
    init();
    let pipeline = launch(description);
    let res = pipeline.set_state(gst::State::Playing);
    let err = wait_for_error(&pipeline);
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(
        res.is_err() || err.is_some(),
        "no failure for {description}"
    );
    err.expect("an error message on the bus")
}

#[test]
fn missing_model_file_is_an_element_error_naming_it() {
    let err = start_and_expect_error(
        "videotestsrc num-buffers=3 ! rbvremove model-path=/nonexistent/dir/person.onnx ! fakesink",
    );
    assert!(err.contains("/nonexistent/dir/person.onnx"), "{err}");
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn model_file_that_is_not_onnx_is_an_element_error() {
    let dir = std::env::temp_dir().join(format!("rbv-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bogus = dir.join("garbage.onnx");
    std::fs::write(&bogus, b"this is not a protobuf").unwrap();
    let err = start_and_expect_error(&format!(
        "videotestsrc num-buffers=3 ! rbvremove model-path={} ! fakesink",
        bogus.display()
    ));
    assert!(err.contains("cannot load model"), "{err}");
    assert!(err.contains(&bogus.display().to_string()), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn model_that_is_not_a_mask_model_is_rejected_with_what_was_found() {
    // setup/make_test_models.py: a valid ONNX file whose input is a [1,10] vector.
    let path = data("not_a_mask.onnx");
    let err = start_and_expect_error(&format!(
        "videotestsrc num-buffers=3 ! rbvremove model-path={} ! fakesink",
        path.display()
    ));
    assert!(err.contains("(1, 10)"), "{err}");
    assert!(err.contains("[1,3,H,W] or [1,H,W,3]"), "{err}");
}

#[test]
fn model_path_layout_is_read_from_the_file() {
    // The NHWC selfie model under model=light (whose own model is NCHW) runs:
    // layout and size come from the file, not from the model name.
    init();
    let pipeline = launch(&format!(
        "videotestsrc num-buffers=2 ! rbvremove model=light model-path={} ! fakesink",
        rbv_core::paths::model_dir()
            .join("selfie_segmentation.onnx")
            .display()
    ));
    pipeline.set_state(gst::State::Playing).unwrap();
    wait_end(&pipeline, END_WAIT).expect_eos("selfie model under model=light");
    pipeline.set_state(gst::State::Null).unwrap();
}
