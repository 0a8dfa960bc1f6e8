// SPDX-License-Identifier: MPL-2.0
// The API key never reaches a log line, at the most detailed level
// (GST_DEBUG=*:9 here, beyond the *:6 asked for), nor an error message:
// every line GStreamer and rbv log while remote jobs run, succeed and fail
// is captured and searched. A test binary of its own: it turns all logging on.
//
// The key is set as a property from code or through RBV_API_KEY: GStreamer's
// own parser logs a whole gst-launch description (at INFO), so a key written
// into one is in GStreamer's log, whatever the element does. The README says so.

use rbv_testkit as common;
use rbv_testkit::fake_api;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fake_api::{Behaviour, FakeApi};
use gst::prelude::*;

const KEY: &str = "rbv_live_9f8e7d6c5b4a3210SECRET";

#[test]
fn the_key_is_in_no_log_line_and_no_error() {
    common::init();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let kept = lines.clone();
    gst::log::remove_default_log_function();
    gst::log::set_active(true);
    gst::log::set_default_threshold(gst::DebugLevel::Memdump);
    gst::log::add_log_function(move |cat, level, file, function, line, obj, msg| {
        let text = format!(
            "{level:?} {} {file}:{line}:{function} {:?} {}",
            cat.name(),
            obj.map(|o| o.to_string()),
            msg.get().map(|m| m.to_string()).unwrap_or_default()
        );
        kept.lock().unwrap_or_else(|e| e.into_inner()).push(text);
    });

    let dir = common::scratch("remote-secrets");
    let out = dir.join("out.webm");
    let p = common::launch(&format!(
        "videotestsrc pattern=red num-buffers=10 ! video/x-raw,width=64,height=48,framerate=10/1 ! \
         vp8enc deadline=1 ! webmmux ! filesink location={}",
        out.display()
    ));
    p.set_state(gst::State::Playing).unwrap();
    assert!(common::wait_for_error(&p).is_none());
    p.set_state(gst::State::Null).unwrap();
    let input = dir.join("in.webm");
    std::fs::copy(&out, &input).unwrap();

    let mut errors = Vec::new();
    for (key_on_server, how) in [
        (KEY, "property"),
        ("another-key-000000000000", "property"),
        (KEY, "env"),
    ] {
        let api = FakeApi::start(Behaviour {
            key: key_on_server.into(),
            output: std::fs::read(&out).unwrap(),
            polls: 1,
            fail_with: None,
            alt_forms: false,
        });
        // SAFETY: set before the pipeline starts; nothing else reads it concurrently.
        unsafe { std::env::set_var("RBV_API_KEY", KEY) };
        let p = common::launch(&format!(
            "filesrc location={} ! decodebin ! videoconvert ! rbvremove backend=remote api-url={} \
             poll-interval=20 name=rbv ! fakesink",
            input.display(),
            api.url
        ));
        if how == "property" {
            p.by_name("rbv").unwrap().set_property("api-key", KEY);
        }
        p.set_state(gst::State::Playing).unwrap();
        let bus = p.bus().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let Some(m) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
                continue;
            };
            match m.view() {
                gst::MessageView::Error(e) => {
                    errors.push(format!("{} {:?} {:?}", e.error(), e.debug(), e.details()));
                    break;
                }
                gst::MessageView::Eos(_) => break,
                _ => {}
            }
        }
        p.set_state(gst::State::Null).unwrap();
        assert!(
            api.seen()
                .iter()
                .all(|s| !s.path.starts_with("/v1/") || s.key.as_deref() == Some(KEY))
        );
    }
    assert_eq!(errors.len(), 1, "only the wrong-key run fails: {errors:?}");

    let lines = lines.lock().unwrap_or_else(|e| e.into_inner()).clone();
    gst::log::set_active(false);
    assert!(
        lines.len() > 10_000,
        "logging was not on: {} lines",
        lines.len()
    );
    let leaks: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("9f8e7d6c5b4a3210"))
        .collect();
    assert!(
        leaks.is_empty(),
        "the key is in {} log lines, e.g. {:?}",
        leaks.len(),
        leaks.first()
    );
    for e in &errors {
        assert!(!e.contains("9f8e7d6c5b4a3210"), "{e}");
    }
    // The calls were logged, with job and request ids and the fingerprint.
    assert!(
        lines
            .iter()
            .any(|l| l.contains("GET /v1/jobs/job_") && l.contains("request req_"))
    );
    assert!(lines.iter().any(|l| l.contains("key ...CRET")));
}
