// SPDX-License-Identifier: MPL-2.0
// `rbvremove backend=remote` in real pipelines against the fake `/v1`
// service on 127.0.0.1: the job's real output decoded and pushed in place of
// the input, failures as element errors with job and request ids, live
// sources refused, and a state change mid-poll ending at once.

use rbv_testkit as common;
use rbv_testkit::fake_api;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Played, play};
use fake_api::{Behaviour, FakeApi, Fault};
use gst::prelude::*;

const KEY: &str = "rbv_test_key_0123456789SECRET";

/// Encodes `description` (ending in a filesink to `path`) to EOS.
fn encode(description: &str) {
    let p = common::launch(description);
    p.set_state(gst::State::Playing).unwrap();
    assert!(common::wait_for_error(&p).is_none(), "{description}");
    p.set_state(gst::State::Null).unwrap();
}

/// The input: 24 frames of a moving ball, 320x240 at 24 fps, VP8/WebM.
fn input(dir: &Path) -> PathBuf {
    let path = dir.join("in put.webm");
    encode(&format!(
        "videotestsrc pattern=ball num-buffers=24 ! video/x-raw,width=320,height=240,framerate=24/1 ! \
         vp8enc deadline=1 ! webmmux ! filesink location=\"{}\"",
        path.display()
    ));
    path
}

/// What the fake service returns: 30 red frames, 160x120 at 24 fps (a real
/// video, unlike the input in size, length and content).
fn output(dir: &Path) -> Vec<u8> {
    let path = dir.join("service-output.webm");
    encode(&format!(
        "videotestsrc pattern=red num-buffers=30 ! video/x-raw,width=160,height=120,framerate=24/1 ! \
         vp8enc deadline=1 ! webmmux ! filesink location={}",
        path.display()
    ));
    std::fs::read(path).unwrap()
}

fn behaviour(dir: &Path) -> Behaviour {
    Behaviour {
        key: KEY.into(),
        output: output(dir),
        polls: 2,
        fail_with: None,
        alt_forms: false,
    }
}

fn pipeline(input: &Path, api: &str, extra: &str) -> gst::Pipeline {
    common::launch(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! rbvremove name=rbv backend=remote \
         api-url={api} api-key={KEY} poll-interval=20 {extra} ! appsink name=sink sync=false",
        input.display()
    ))
}

#[test]
fn plays_the_jobs_output_in_place_of_the_input() {
    common::init();
    let dir = common::scratch("remote-element-ok");
    let b = behaviour(&dir);
    let api = FakeApi::start(b);
    let input = input(&dir);
    let p = pipeline(
        &input,
        &api.url,
        "model=pro text-prompt=\"person, guitar\" background=color background-color=#102030",
    );
    let played = play(&p);
    assert!(played.error.is_none(), "{:?}", played.error);

    // The service's 30 red frames, not the input's 24 balls, at the
    // negotiated size and format, with continuous timestamps.
    assert_eq!(played.frames.len(), 30);
    for (i, s) in played.frames.iter().enumerate() {
        let info = gst_video::VideoInfo::from_caps(s.caps().unwrap()).unwrap();
        assert_eq!((info.width(), info.height()), (320, 240));
        let frame =
            gst_video::VideoFrameRef::from_buffer_ref_readable(s.buffer().unwrap(), &info).unwrap();
        let px = &frame.plane_data(0).unwrap()[(120 * info.stride()[0] as usize) + 160 * 4..][..4];
        let rgba = match info.format() {
            gst_video::VideoFormat::Rgba => [px[0], px[1], px[2], px[3]],
            gst_video::VideoFormat::Bgra => [px[2], px[1], px[0], px[3]],
            gst_video::VideoFormat::Argb => [px[1], px[2], px[3], px[0]],
            _ => [px[3], px[2], px[1], px[0]],
        };
        assert!(
            rgba[0] > 230 && rgba[1] < 30 && rgba[2] < 30 && rgba[3] == 255,
            "frame {i}: {rgba:?}"
        );
        let pts = s.buffer().unwrap().pts().unwrap();
        let want = gst::ClockTime::from_nseconds(i as u64 * 1_000_000_000 / 24);
        assert!(
            pts.nseconds().abs_diff(want.nseconds()) < 1_000_000,
            "frame {i}: {pts} vs {want}"
        );
    }

    // The file found upstream was uploaded; the job started with the settings.
    assert_eq!(
        api.uploads(),
        [(
            "in put.webm".to_string(),
            std::fs::metadata(&input).unwrap().len() as usize,
            "video/webm".to_string()
        )]
    );
    let start = &api.starts()[0];
    assert_eq!(start.body["model"], "pro");
    assert_eq!(start.body["text_prompt"], "person, guitar");
    assert_eq!(start.body["background"]["type"], "color");
    assert_eq!(start.body["output_format"], "webm");

    // Progress on the bus: job id, status, progress and request id.
    let polled: Vec<_> = played
        .jobs
        .iter()
        .filter(|s| s.get::<&str>("phase").unwrap() == "polled")
        .collect();
    assert_eq!(polled.len(), 3, "{:?}", played.jobs);
    for s in &polled {
        assert!(s.get::<&str>("job-id").unwrap().starts_with("job_"));
        assert!(s.get::<&str>("request-id").unwrap().starts_with("req_"));
    }
    assert_eq!(polled[2].get::<&str>("status").unwrap(), "completed");
    assert_eq!(polled[2].get::<f64>("progress").unwrap(), 100.0);
    assert!(
        played
            .jobs
            .iter()
            .any(|s| s.get::<&str>("phase").unwrap() == "downloaded")
    );
}

#[test]
fn a_url_source_is_passed_not_uploaded() {
    common::init();
    let dir = common::scratch("remote-element-url");
    let api = FakeApi::start(behaviour(&dir));
    let input = input(&dir);
    let p = pipeline(
        &input,
        &api.url,
        "video-url=https://cdn.example/talk.mp4 background=color",
    );
    let played = play(&p);
    assert!(played.error.is_none(), "{:?}", played.error);
    assert_eq!(played.frames.len(), 30);
    assert!(api.uploads().is_empty());
    let create = &api.creates()[0];
    assert_eq!(create.body["video_url"], "https://cdn.example/talk.mp4");
}

fn details(played: &Played) -> gst::Structure {
    let (text, details) = played.error.clone().expect("an error");
    assert!(!text.contains("SECRET"), "{text}");
    details.unwrap_or_else(|| panic!("no details on: {text}"))
}

#[test]
fn a_failed_job_is_an_element_error_with_its_ids() {
    common::init();
    let dir = common::scratch("remote-element-failed");
    let api = FakeApi::start(Behaviour {
        fail_with: Some("no person found".into()),
        ..behaviour(&dir)
    });
    let played = play(&pipeline(&input(&dir), &api.url, ""));
    let d = details(&played);
    assert_eq!(d.get::<&str>("code").unwrap(), "job_failed");
    assert!(d.get::<&str>("job-id").unwrap().starts_with("job_"));
    assert!(d.get::<&str>("request-id").unwrap().starts_with("req_"));
    assert!(played.error.unwrap().0.contains("no person found"));
    assert!(played.frames.is_empty());
}

#[test]
fn a_bad_key_is_refused_once_and_clearly() {
    common::init();
    let dir = common::scratch("remote-element-401");
    let api = FakeApi::start(Behaviour {
        key: "the-right-key-0000000000".into(),
        ..behaviour(&dir)
    });
    let played = play(&pipeline(&input(&dir), &api.url, ""));
    let d = details(&played);
    assert_eq!(d.get::<&str>("code").unwrap(), "invalid_api_key");
    assert!(d.get::<&str>("request-id").unwrap().starts_with("req_"));
    assert_eq!(api.requests(), 1, "401 is not retried");
}

#[test]
fn out_of_credits_names_the_job() {
    common::init();
    let dir = common::scratch("remote-element-402");
    let api = FakeApi::start(behaviour(&dir));
    api.fault("start", &[Fault::Status(402)]);
    let played = play(&pipeline(&input(&dir), &api.url, ""));
    let d = details(&played);
    assert_eq!(d.get::<&str>("code").unwrap(), "insufficient_credits");
    assert!(d.get::<&str>("job-id").unwrap().starts_with("job_"));
}

#[test]
fn no_server_is_a_network_error() {
    common::init();
    let dir = common::scratch("remote-element-refused");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let played = play(&pipeline(
        &input(&dir),
        &format!("http://127.0.0.1:{port}"),
        "timeout=3",
    ));
    let d = details(&played);
    assert_eq!(d.get::<&str>("code").unwrap(), "network", "{d}");
    assert!(played.error.unwrap().0.contains("cannot connect"));
    assert!(started.elapsed() < Duration::from_secs(6));
}

#[test]
fn an_undecodable_output_is_named() {
    common::init();
    let dir = common::scratch("remote-element-junk");
    let api = FakeApi::start(Behaviour {
        output: b"this is not a video at all".repeat(100),
        ..behaviour(&dir)
    });
    let played = play(&pipeline(&input(&dir), &api.url, ""));
    let (text, _) = played.error.expect("an error");
    assert!(text.contains("not a playable video"), "{text}");
}

#[test]
fn live_sources_and_bad_settings_are_refused_at_start() {
    common::init();
    for (desc, want) in [
        (
            format!(
                "videotestsrc is-live=true ! rbvremove backend=remote api-key={KEY} ! fakesink"
            ),
            "use backend=local for live sources",
        ),
        (
            format!(
                "videotestsrc ! rbvremove backend=remote api-key={KEY} background=blur ! fakesink"
            ),
            "background=blur is local only",
        ),
        (
            format!(
                "videotestsrc ! rbvremove backend=remote api-key={KEY} output-format=mp4 video-url=https://x/a.mp4 ! fakesink"
            ),
            "mp4 has no alpha",
        ),
        (
            format!(
                "videotestsrc ! rbvremove backend=remote api-key={KEY} background=image background-image=/tmp/x.jpg video-url=https://x/a.mp4 ! fakesink"
            ),
            "must be an http(s) URL",
        ),
    ] {
        let p = common::launch(&desc);
        let _ = p.set_state(gst::State::Playing);
        let err = common::wait_for_error(&p).unwrap_or_else(|| panic!("no error for {desc}"));
        assert!(err.contains(want), "{desc}: {err}");
        p.set_state(gst::State::Null).unwrap();
    }
    // No key anywhere.
    // SAFETY: this test binary reads RBV_API_KEY nowhere else.
    unsafe { std::env::remove_var("RBV_API_KEY") };
    let p = common::launch(
        "videotestsrc ! rbvremove backend=remote video-url=https://x/a.mp4 ! fakesink",
    );
    let _ = p.set_state(gst::State::Playing);
    let err = common::wait_for_error(&p).unwrap();
    assert!(
        err.contains("no API key: set api-key or RBV_API_KEY"),
        "{err}"
    );
    p.set_state(gst::State::Null).unwrap();
}

#[test]
fn stopping_mid_poll_returns_at_once() {
    common::init();
    let dir = common::scratch("remote-element-stop");
    let api = FakeApi::start(Behaviour {
        polls: 100_000,
        ..behaviour(&dir)
    });
    let p = pipeline(&input(&dir), &api.url, "");
    p.set_state(gst::State::Playing).unwrap();
    let bus = p.bus().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut polls = 0;
    while polls < 3 && Instant::now() < deadline {
        if let Some(m) = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(100),
            &[gst::MessageType::Element],
        ) && m
            .structure()
            .is_some_and(|s| s.get::<&str>("phase").ok() == Some("polled"))
        {
            polls += 1;
        }
    }
    assert_eq!(polls, 3, "the job never got to polling");
    let started = Instant::now();
    p.set_state(gst::State::Null).unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "NULL took {took:?}");
    // And the polling really stopped.
    let before = api.requests();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(api.requests(), before);
}

#[test]
fn the_key_reads_back_as_a_fingerprint() {
    common::init();
    let e = gst::ElementFactory::make("rbvremove")
        .property("api-key", KEY)
        .build()
        .unwrap();
    let shown: Option<String> = e.property("api-key");
    assert_eq!(shown.as_deref(), Some("key ...CRET"));
}

#[test]
fn the_remote_example_pipeline_runs_against_a_v1_server() {
    common::init();
    let dir = common::scratch("remote-element-example");
    let api = FakeApi::start(behaviour(&dir));
    let input = input(&dir);
    let out = dir.join("out.mkv");
    let status = std::process::Command::new("bash")
        .arg(common::repo().join("pipelines/remote.sh"))
        .args([
            input.to_str().unwrap(),
            out.to_str().unwrap(),
            "model=light",
            "poll-interval=20",
        ])
        .env("GST_PLUGIN_PATH", common::plugin_dir())
        .env("RBV_API_KEY", KEY)
        .env("RBV_API_URL", &api.url)
        .status()
        .unwrap();
    assert!(status.success());
    let mut frames = 0;
    let eos = common::for_each_sample(
        &format!(
            "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=RGBA ! appsink name=sink sync=false",
            out.display()
        ),
        |s| {
            let map = s.buffer().unwrap().map_readable().unwrap();
            let mid = &map[(120 * 320 + 160) * 4..][..4];
            assert!(mid[0] > 230 && mid[1] < 30, "{mid:?}");
            frames += 1;
            true
        },
    );
    assert!(eos);
    assert_eq!(frames, 30);
    let start = &api.starts()[0];
    assert_eq!(start.body["model"], "light");
}

#[test]
fn a_flushing_seek_ends_the_wait_and_the_job_carries_on() {
    common::init();
    let dir = common::scratch("remote-element-seek");
    let api = FakeApi::start(Behaviour {
        polls: 12,
        ..behaviour(&dir)
    });
    let p = pipeline(&input(&dir), &api.url, "");
    let sink = p
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let bus = p.bus().unwrap();
    let mut polls = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while polls < 2 && Instant::now() < deadline {
        if let Some(m) = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(100),
            &[gst::MessageType::Element],
        ) && m
            .structure()
            .is_some_and(|s| s.get::<&str>("phase").ok() == Some("polled"))
        {
            polls += 1;
        }
    }
    assert_eq!(polls, 2);
    let started = Instant::now();
    assert!(
        p.seek_simple(gst::SeekFlags::FLUSH, gst::ClockTime::ZERO)
            .is_ok()
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the seek took {:?}",
        started.elapsed()
    );
    // The same job finishes and its output plays from the seek position.
    let mut frames = 0;
    while let Some(_s) = sink.try_pull_sample(gst::ClockTime::from_seconds(20)) {
        frames += 1;
    }
    assert!(sink.is_eos());
    assert_eq!(frames, 30);
    assert_eq!(
        api.creates().len(),
        1,
        "a seek does not start another (billed) job"
    );
    p.set_state(gst::State::Null).unwrap();
}
