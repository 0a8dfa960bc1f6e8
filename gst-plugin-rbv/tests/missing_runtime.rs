// SPDX-License-Identifier: MPL-2.0
// Without a usable ONNX Runtime library the element fails to start with an
// error naming the library; nothing panics or hangs. Its own test binary, so
// that no other test has loaded the real library into the process first.

use rbv_testkit as common;

use common::*;
use gst::prelude::*;

fn error_for(library: &std::path::Path) -> String {
    init();
    let pipeline = launch(&format!(
        "videotestsrc num-buffers=3 ! rbvremove ort-library={} ! fakesink",
        library.display()
    ));
    assert!(
        pipeline.set_state(gst::State::Playing).is_err(),
        "start must fail"
    );
    let err = wait_end(&pipeline, END_WAIT).expect_error(&library.display().to_string());
    pipeline.set_state(gst::State::Null).unwrap();
    err
}

#[test]
fn missing_or_broken_onnx_runtime_is_an_element_error() {
    let missing = std::path::Path::new("/nonexistent/libonnxruntime.so.1.31.1");
    let err = error_for(missing);
    assert!(err.contains("ONNX Runtime library not found"), "{err}");
    assert!(err.contains(&missing.display().to_string()), "{err}");

    let dir = std::env::temp_dir().join(format!("rbv-ort-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bogus = dir.join("libonnxruntime.so");
    std::fs::write(&bogus, b"not a shared object").unwrap();
    let err = error_for(&bogus);
    assert!(err.contains("cannot load ONNX Runtime library"), "{err}");
    assert!(err.contains(&bogus.display().to_string()), "{err}");

    // A failed load poisons nothing: the real library still loads afterwards.
    let ok = launch("videotestsrc num-buffers=2 ! rbvremove ! fakesink");
    ok.set_state(gst::State::Playing).unwrap();
    wait_end(&ok, END_WAIT).expect_eos("the real library after a failed load");
    ok.set_state(gst::State::Null).unwrap();
    std::fs::remove_dir_all(&dir).ok();
}
