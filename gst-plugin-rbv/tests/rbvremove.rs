// SPDX-License-Identifier: MPL-2.0
// The element on real photos, with the real ONNX Runtime and real models.

use rbv_testkit as common;

use common::*;
use gst::prelude::*;

/// Alpha at points of grace_hopper.jpg (512x600): the face, the cap, the
/// uniform and the collar are the person; the blue backdrop at the top right
/// and right edge and the flag at the left are background.
const PERSON_POINTS: &[(usize, usize)] =
    &[(256, 270), (260, 330), (260, 100), (250, 500), (120, 450)];
const BACKGROUND_POINTS: &[(usize, usize)] = &[(470, 60), (470, 250), (40, 150), (60, 300)];

fn check_points(img: &Image, what: &str) {
    for &(x, y) in PERSON_POINTS {
        let a = img.at(x, y, 3);
        assert!(a >= 230, "{what}: alpha {a} at person point ({x},{y})");
    }
    for &(x, y) in BACKGROUND_POINTS {
        let a = img.at(x, y, 3);
        assert!(a <= 25, "{what}: alpha {a} at background point ({x},{y})");
    }
}

#[test]
fn harness_keeps_the_person_and_clears_the_background() {
    init();
    // Decode the real photo to I420 (what decoders produce) and push it through a Harness.
    let i420 = first_frame(&format!(
        "filesrc location={} ! jpegdec ! videoconvert ! video/x-raw,format=I420 ! appsink name=sink",
        data("grace_hopper.jpg").display()
    ));
    let mut h = gst_check::Harness::new("rbvremove");
    h.set_src_caps_str("video/x-raw,format=I420,width=512,height=600,framerate=25/1");
    h.set_sink_caps_str("video/x-raw,format=RGBA");
    let mut buffer = gst::Buffer::from_mut_slice(i420.data.clone());
    buffer
        .get_mut()
        .unwrap()
        .set_pts(gst::ClockTime::from_mseconds(40));
    let out = h.push_and_pull(buffer).expect("one output frame");
    assert_eq!(out.pts(), Some(gst::ClockTime::from_mseconds(40)));
    let caps = h.sinkpad().unwrap().current_caps().unwrap();
    let info = gst_video::VideoInfo::from_caps(&caps).unwrap();
    assert_eq!(
        (info.format(), info.width(), info.height()),
        (gst_video::VideoFormat::Rgba, 512, 600)
    );
    let map = out.map_readable().unwrap();
    let img = Image {
        width: 512,
        height: 600,
        stride: info.stride()[0] as usize,
        bytes_per_pixel: 4,
        data: map.to_vec(),
    };
    check_points(&img, "harness");
    // Soft alpha: the edge between person and backdrop has intermediate values.
    let soft = img
        .channel(3)
        .iter()
        .filter(|&&a| (16..240).contains(&a))
        .count();
    assert!(
        soft > 500,
        "only {soft} soft-alpha pixels: the matte was thresholded"
    );
}

#[test]
fn every_input_format_gives_the_same_cut() {
    init();
    let reference = remove_background("grace_hopper.jpg", "RGB", "").channel(3);
    for format in [
        "I420", "NV12", "YUY2", "BGR", "RGBA", "BGRA", "RGBx", "BGRx", "xRGB", "AYUV",
    ] {
        let img = remove_background("grace_hopper.jpg", format, "");
        check_points(&img, format);
        let alpha = img.channel(3);
        let agree = iou(&alpha, &reference);
        assert!(
            agree > 0.97,
            "{format}: IoU {agree:.3} against the RGB input's matte"
        );
    }
}

#[test]
fn output_formats_put_alpha_in_the_right_byte() {
    init();
    let path = data("grace_hopper.jpg");
    for (format, alpha_byte) in [("BGRA", 3), ("ARGB", 0), ("ABGR", 0)] {
        let img = first_frame(&format!(
            "filesrc location={} ! decodebin ! videoconvert ! rbvremove ! \
             video/x-raw,format={format} ! appsink name=sink",
            path.display()
        ));
        for &(x, y) in PERSON_POINTS {
            assert!(img.at(x, y, alpha_byte) >= 230, "{format} person ({x},{y})");
        }
        for &(x, y) in BACKGROUND_POINTS {
            assert!(
                img.at(x, y, alpha_byte) <= 25,
                "{format} background ({x},{y})"
            );
        }
    }
}

#[test]
fn colour_is_kept_under_the_alpha() {
    init();
    // Straight alpha: RGB is the input's colour, untouched by the matte.
    let path = data("grace_hopper.jpg");
    let input = first_frame(&format!(
        "filesrc location={} ! jpegdec ! videoconvert ! video/x-raw,format=RGBA ! appsink name=sink",
        path.display()
    ));
    let output = remove_background("grace_hopper.jpg", "RGBA", "");
    for y in (0..600).step_by(37) {
        for x in (0..512).step_by(41) {
            for c in 0..3 {
                assert_eq!(
                    input.at(x, y, c),
                    output.at(x, y, c),
                    "({x},{y}) channel {c}"
                );
            }
        }
    }
}

#[test]
fn human_iou_on_voc_ground_truth() {
    init();
    let truth = gray("voc_person_mask.png");
    assert_eq!((truth.width, truth.height), (500, 375));
    let truth = truth.channel(0);
    let alpha = remove_background("voc_rgb.jpg", "I420", "model=human").channel(3);
    let score = iou(&alpha, &truth);
    println!("human IoU vs VOC person ground truth: {score:.3}");
    // 0.879 in the quality bench with the detector (the default); the
    // floor is the selfie model's alone (0.586 with detector=false), so
    // it holds on another ONNX Runtime build, provider or CPU.
    assert!(score >= 0.55, "IoU {score:.3} < 0.55");
}

#[test]
fn original_and_pro_models_cut_the_portrait_and_the_voc_people() {
    init();
    let truth = gray("voc_person_mask.png").channel(0);
    let voc = |props: &str| {
        let alpha = remove_background("voc_rgb.jpg", "I420", props).channel(3);
        let score = iou(&alpha, &truth);
        println!("{props}: IoU vs VOC person ground truth {score:.3}");
        score
    };
    // Each model alone (the detector would hide a broken matte), against
    // the small u2netp model measured in this run: the quality bench has
    // light 0.586, original (u2net) 0.595, pro (ISNet) 0.642.
    let light = voc("model=light detector=false");
    for (model, above) in [("original", -0.01), ("pro", 0.03)] {
        let img = remove_background("grace_hopper.jpg", "I420", &format!("model={model}"));
        check_points(&img, model);
        let alone = voc(&format!("model={model} detector=false"));
        assert!(
            alone >= light + above,
            "{model} alone: IoU {alone:.3}, below light's {light:.3} {above:+}"
        );
        // With the detector (the default) the region errors go: 0.892 and
        // 0.885 in the bench.
        let gated = voc(&format!("model={model}"));
        assert!(
            gated >= alone + 0.15,
            "{model} with the detector: IoU {gated:.3}, not clearly above alone ({alone:.3})"
        );
    }
}

#[test]
fn any_onnx_file_runs_as_its_json_sidecar_says() {
    init();
    // u2netp under another name, with rembg's processing described beside it:
    // under model=human (whose own processing differs) it must cut exactly as
    // model=light does.
    let dir = std::env::temp_dir().join(format!("rbv-sidecar-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("salient.onnx");
    std::fs::copy(rbv_core::paths::model_dir().join("u2netp.onnx"), &model).unwrap();
    std::fs::write(
        dir.join("salient.json"),
        r#"{"normalize":{"scale":"max","mean":[0.485,0.456,0.406],"std":[0.229,0.224,0.225]},
            "output":"min-max"}"#,
    )
    .unwrap();
    let props = format!("model=human model-path={}", model.display());
    let described = remove_background("grace_hopper.jpg", "I420", &props).channel(3);
    let light = remove_background("grace_hopper.jpg", "I420", "model=light").channel(3);
    assert_eq!(
        described, light,
        "sidecar processing differs from model=light"
    );

    // Without the sidecar it runs with model=human's processing: a different cut.
    std::fs::remove_file(dir.join("salient.json")).unwrap();
    let plain = remove_background("grace_hopper.jpg", "I420", &props).channel(3);
    let differ = plain
        .iter()
        .zip(&light)
        .filter(|(a, b)| a.abs_diff(**b) > 8)
        .count();
    assert!(
        differ > 1000,
        "only {differ} pixels differ without the sidecar"
    );

    // A broken sidecar stops the start with an error naming it.
    std::fs::write(dir.join("salient.json"), r#"{"output":"softmax"}"#).unwrap();
    let pipeline = launch(&format!(
        "videotestsrc num-buffers=2 ! rbvremove {props} ! fakesink"
    ));
    let _ = pipeline.set_state(gst::State::Playing);
    let err = wait_for_error(&pipeline).expect("an error");
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(
        err.contains("salient.json") && err.contains("softmax"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn light_model_cuts_the_portrait() {
    init();
    let img = remove_background("grace_hopper.jpg", "I420", "model=light");
    for &(x, y) in &PERSON_POINTS[..3] {
        assert!(
            img.at(x, y, 3) >= 200,
            "light: person ({x},{y}) alpha {}",
            img.at(x, y, 3)
        );
    }
    for &(x, y) in &BACKGROUND_POINTS[..2] {
        assert!(
            img.at(x, y, 3) <= 50,
            "light: background ({x},{y}) alpha {}",
            img.at(x, y, 3)
        );
    }
}

#[test]
fn properties_round_trip_with_documented_defaults() {
    init();
    let e = gst::ElementFactory::make("rbvremove").build().unwrap();
    assert_eq!(
        e.property_value("model")
            .get::<gstrbv::rbvremove::Model>()
            .unwrap(),
        gstrbv::rbvremove::Model::Human
    );
    assert_eq!(e.property::<Option<String>>("model-path"), None);
    assert_eq!(e.property::<u32>("threads"), 0);
    e.set_property_from_str("model", "light");
    e.set_property("model-path", "/tmp/x.onnx");
    assert_eq!(
        e.property_value("model")
            .get::<gstrbv::rbvremove::Model>()
            .unwrap(),
        gstrbv::rbvremove::Model::Light
    );
    assert_eq!(
        e.property::<Option<String>>("model-path").as_deref(),
        Some("/tmp/x.onnx")
    );
}

#[test]
fn human_auto_picks_landscape_for_wide_frames_and_square_otherwise() {
    init();
    // zidane.jpg is 16:9, grace_hopper.jpg is portrait.
    for (file, chosen, other) in [
        ("zidane.jpg", "landscape", "square"),
        ("grace_hopper.jpg", "square", "landscape"),
    ] {
        let auto = remove_background(file, "I420", "human-variant=auto").channel(3);
        let picked = remove_background(file, "I420", &format!("human-variant={chosen}")).channel(3);
        let not_picked =
            remove_background(file, "I420", &format!("human-variant={other}")).channel(3);
        assert_eq!(auto, picked, "{file}: auto must run the {chosen} model");
        assert_ne!(
            auto, not_picked,
            "{file}: the two models must differ for this check to mean anything"
        );
    }
}

/// The alpha plane of `rbvremove <props>` on one RGBx frame, run through a
/// fresh element.
fn alpha_of_fresh_cut(props: &[(&str, &str)], caps: &gst::Caps, frame: &gst::Buffer) -> Vec<u8> {
    // Properties set before the harness starts the element.
    let e = gst::ElementFactory::make("rbvremove").build().unwrap();
    for &(k, v) in props {
        e.set_property_from_str(k, v);
    }
    let mut h = gst_check::Harness::with_element(&e, Some("sink"), Some("src"));
    h.set_src_caps(caps.clone());
    h.set_sink_caps_str("video/x-raw,format=RGBA");
    let out = h.push_and_pull(frame.clone()).expect("one output frame");
    out.map_readable()
        .unwrap()
        .chunks_exact(4)
        .map(|p| p[3])
        .collect()
}

#[test]
fn caps_change_mid_stream_renegotiates() {
    init();
    // A 4:3, a 16:9 and a tiny odd stream through one element, each with a
    // real frame of the demo clip: output follows each size, and
    // human-variant=auto picks its model anew with the shape: its cut is the
    // one a fresh element with that variant fixed makes, not the other's.
    let mut h = gst_check::Harness::new("rbvremove");
    h.set_sink_caps_str("video/x-raw,format=RGBA");
    let mut told_apart = false;
    for (w, hgt, picked, other) in [
        (320u32, 240u32, "square", "landscape"),
        (640, 360, "landscape", "square"),
        (33, 17, "landscape", "square"),
    ] {
        // Frame 60 (2.4 s in): both men in view.
        let (caps, mut frames) = decoded_frames("demo_input.webm", w, hgt, "RGBx", 61);
        let frames = frames.split_off(60);
        h.set_src_caps(caps.clone());
        let out = h
            .push_and_pull(frames[0].clone())
            .expect("a frame after the caps change");
        let sink_caps = h.sinkpad().unwrap().current_caps().unwrap();
        let out_info = gst_video::VideoInfo::from_caps(&sink_caps).unwrap();
        assert_eq!((out_info.width(), out_info.height()), (w, hgt));
        assert_eq!(out.size(), out_info.size());
        let alpha: Vec<u8> = out
            .map_readable()
            .unwrap()
            .chunks_exact(4)
            .map(|p| p[3])
            .collect();
        let variant = |v| alpha_of_fresh_cut(&[("human-variant", v)], &caps, &frames[0]);
        assert!(
            alpha == variant(picked),
            "{w}x{hgt}: after the caps change the cut is not the {picked} model's"
        );
        if w > 100 {
            // The two men: a real cut, and one the other model would make differently.
            let solid = alpha.iter().filter(|&&a| a > 240).count() as f64 / alpha.len() as f64;
            let clear = alpha.iter().filter(|&&a| a < 16).count() as f64 / alpha.len() as f64;
            println!("{w}x{hgt}: solid {solid:.2} clear {clear:.2}");
            assert!(
                solid > 0.1 && clear > 0.1,
                "{w}x{hgt}: solid {solid:.2} clear {clear:.2}"
            );
            let differs = alpha != variant(other);
            println!("{w}x{hgt}: the {other} model cuts it differently: {differs}");
            told_apart |= differs;
        }
    }
    assert!(
        told_apart,
        "the two models cut these frames the same: the check means nothing"
    );
}

/// Warnings posted while `description` plays to EOS.
fn warnings_of(description: &str) -> Vec<String> {
    let pipeline = launch(description);
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let mut out = Vec::new();
    while let Some(msg) = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(30),
        &[
            gst::MessageType::Warning,
            gst::MessageType::Eos,
            gst::MessageType::Error,
        ],
    ) {
        match msg.view() {
            gst::MessageView::Warning(w) => out.push(w.error().to_string()),
            gst::MessageView::Error(e) => panic!("{description}: {}", e.error()),
            _ => break,
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    out
}

#[test]
fn text_prompt_terms_a_local_model_cannot_honour_are_named() {
    // Without the detector (with it: tests/detector.rs).
    init();
    let run = |props: &str| {
        warnings_of(&format!(
            "videotestsrc num-buffers=3 ! video/x-raw,width=64,height=48 ! \
             rbvremove detector=false {props} ! fakesink"
        ))
    };
    let w = run(r#"model=human text-prompt="person, clothing accessories, glowing ring""#);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("'clothing accessories', 'glowing ring'")
            && w[0].contains("backend=remote")
            && !w[0].contains("'person'"),
        "{w:?}"
    );
    assert!(run(r#"model=human text-prompt="people, faces""#).is_empty());
    // Salient-object models keep things too.
    assert!(run(r#"model=light text-prompt="person, product""#).is_empty());
    let w = run(r#"model=light text-prompt="product, sky""#);
    assert!(
        w.len() == 1 && w[0].contains("'sky'") && !w[0].contains("'product'"),
        "{w:?}"
    );

    // Set while playing: checked at once.
    let el = gst::ElementFactory::make("rbvremove")
        .property("detector", false)
        .build()
        .unwrap();
    let mut h = gst_check::Harness::with_element(&el, Some("sink"), Some("src"));
    let bus = gst::Bus::new();
    el.set_bus(Some(&bus));
    h.set_src_caps_str("video/x-raw,format=RGBA,width=64,height=48,framerate=25/1");
    h.push_and_pull(gst::Buffer::with_size(64 * 48 * 4).unwrap())
        .unwrap();
    el.set_property("text-prompt", "woman, umbrella");
    let msg = bus
        .pop_filtered(&[gst::MessageType::Warning])
        .expect("a warning");
    let gst::MessageView::Warning(w) = msg.view() else {
        unreachable!()
    };
    assert!(
        w.error().to_string().contains("'umbrella'"),
        "{}",
        w.error()
    );
    assert_eq!(
        el.property::<Option<String>>("text-prompt").as_deref(),
        Some("woman, umbrella"),
        "kept as set (the remote backend will send it)"
    );
}

#[test]
fn smoothing_blends_still_frames_and_resets_on_discont_and_flush() {
    init();
    let frame = |delta: u8| {
        let img = first_frame(&format!(
            "filesrc location={} ! jpegdec ! videoconvert ! video/x-raw,format=RGBA ! appsink name=sink",
            data("grace_hopper.jpg").display()
        ));
        // A slightly brighter copy: below the motion threshold everywhere.
        let data: Vec<u8> = img
            .data
            .chunks_exact(4)
            .flat_map(|p| {
                [
                    p[0].saturating_add(delta),
                    p[1].saturating_add(delta),
                    p[2].saturating_add(delta),
                    255,
                ]
            })
            .collect();
        gst::Buffer::from_mut_slice(data)
    };
    let alpha = |b: &gst::Buffer| -> Vec<u8> {
        b.map_readable()
            .unwrap()
            .chunks_exact(4)
            .map(|p| p[3])
            .collect()
    };
    let harness = |smoothing: &str| {
        let mut h = gst_check::Harness::new("rbvremove");
        h.element()
            .unwrap()
            .set_property_from_str("smoothing", smoothing);
        h.set_src_caps_str("video/x-raw,format=RGBA,width=512,height=600,framerate=25/1");
        h.set_sink_caps_str("video/x-raw,format=RGBA");
        h
    };
    // Unsmoothed cut of the brighter frame.
    let mut plain = harness("0");
    let want = alpha(&plain.push_and_pull(frame(8)).unwrap());

    let mut h = harness("0.9");
    h.push_and_pull(frame(0)).unwrap();
    let smoothed = alpha(&h.push_and_pull(frame(8)).unwrap());
    let differ = smoothed.iter().zip(&want).filter(|(a, b)| a != b).count();
    assert!(differ > 1000, "smoothing changed only {differ} pixels");

    // A discontinuity forgets the past: exactly the unsmoothed cut.
    let mut b = frame(8);
    b.get_mut().unwrap().set_flags(gst::BufferFlags::DISCONT);
    assert_eq!(alpha(&h.push_and_pull(b).unwrap()), want, "after DISCONT");

    // So does a flush.
    h.push_and_pull(frame(0)).unwrap();
    assert!(h.push_event(gst::event::FlushStart::new()));
    assert!(h.push_event(gst::event::FlushStop::new(true)));
    h.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
        gst::ClockTime,
    >::new()));
    assert_eq!(
        alpha(&h.push_and_pull(frame(8)).unwrap()),
        want,
        "after a flush"
    );
}

#[test]
fn large_frames_cut_as_well_through_the_sampled_model_input() {
    // Frames at least 4x the model's size (256x256) take the sampled
    // two-stage model input; the cut must stay as good as through the
    // converter, measured here on the same photo at 1000x750 (below 4x);
    // both compared in one run (0.672 there and 0.654-0.674 sampled before
    // the detector; the test prints today's).
    init();
    let cut_iou = |w: u32, h: u32, format: &str| {
        let truth = first_frame(&format!(
            "filesrc location={} ! decodebin ! videoconvert ! videoscale ! \
             video/x-raw,format=GRAY8,width={w},height={h} ! appsink name=sink",
            data("voc_person_mask.png").display()
        ))
        .channel(0);
        let alpha = first_frame(&format!(
            "filesrc location={} ! jpegdec ! videoconvert ! videoscale ! \
             video/x-raw,width={w},height={h} ! videoconvert ! video/x-raw,format={format} ! \
             rbvremove model=human human-variant=square ! video/x-raw,format=RGBA ! \
             appsink name=sink",
            data("voc_rgb.jpg").display()
        ))
        .channel(3);
        iou(&alpha, &truth)
    };
    let converter = cut_iou(1000, 750, "I420");
    println!("1000x750 I420 through the converter: IoU {converter:.3}");
    assert!(
        converter >= 0.5,
        "the reference cut itself: IoU {converter:.3}"
    );
    for (w, h) in [(1600, 1200), (2000, 1500)] {
        for format in ["I420", "NV12", "RGBA", "BGR"] {
            let score = cut_iou(w, h, format);
            println!("{w}x{h} {format} sampled: IoU {score:.3}");
            assert!(
                score >= converter - 0.04,
                "{w}x{h} {format}: IoU {score:.3}, through the converter {converter:.3}"
            );
        }
    }
}

/// Plays a live `fps` source through `props` to a clock-synced sink;
/// returns (frames out, the last rbv-stats mask-age, the pipeline latency).
fn live_run(props: &str, frames: u32, fps: u32) -> (u32, u32, gst::ClockTime) {
    let pipeline = launch(&format!(
        "videotestsrc is-live=true pattern=ball num-buffers={frames} ! \
         video/x-raw,width=640,height=360,framerate={fps}/1 ! rbvremove {props} stats-interval=200 ! \
         fakesink name=sink sync=true qos=true"
    ));
    let sink = pipeline.by_name("sink").unwrap();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let c = count.clone();
    sink.set_property("signal-handoffs", true);
    sink.connect("handoff", false, move |_| {
        c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        None
    });
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let mut age = 0;
    let mut latency = gst::ClockTime::ZERO;
    while let Some(msg) = bus.timed_pop(gst::ClockTime::from_seconds(30)) {
        match msg.view() {
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure().filter(|s| s.name() == "rbv-stats") {
                    // Absent until the first mask.
                    if let Ok(a) = s.get::<u32>("mask-age") {
                        age = a;
                    }
                    let mut q = gst::query::Latency::new();
                    if pipeline.query(&mut q) {
                        latency = q.result().1;
                    }
                }
            }
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{props}: {}", e.error()),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    (
        count.load(std::sync::atomic::Ordering::Relaxed),
        age,
        latency,
    )
}

/// One u2netp (model=light) inference on this machine, after a warm-up
/// run: the fastest of three, since other tests share the cores (one
/// sample once read 1.5 s for a 0.23 s model, and the latency bound derived
/// from it failed).
fn light_model_frame_time() -> std::time::Duration {
    use rbv_core::model::{self, RunnerOptions, Segmenter};
    let mut s = Segmenter::new(model::LIGHT, None, &RunnerOptions::default()).unwrap();
    let (w, h) = s.input_size();
    let rgb = vec![128u8; (w * h * 3) as usize];
    s.run(&rgb, w as usize * 3).unwrap();
    (0..3)
        .map(|_| {
            let t0 = std::time::Instant::now();
            s.run(&rgb, w as usize * 3).unwrap();
            t0.elapsed()
        })
        .min()
        .unwrap()
}

#[test]
fn async_mode_keeps_a_live_source_flowing_with_a_slow_model() {
    init();
    // The model's frame time is measured here first, and the live source
    // runs fast enough that a frame takes at least 3 frame intervals (30 fps
    // for u2netp's ~230 ms on a 2-core CPU, up to 240 fps on a fast host):
    // synced to that clock, sync mode can pass only a fraction of the frames
    // in time; async mode passes them all, with a mask some frames old. The
    // correction is off here: it runs the human model on the streaming
    // thread every frame (about 2 ms), which is not what this test is about;
    // async_correction_cuts_the_frames_before_the_first_heavy_mask covers it.
    let frame = light_model_frame_time();
    let fps = ((3.0 / frame.as_secs_f64()).ceil() as u32).clamp(30, 240);
    let intervals = frame.as_secs_f64() * f64::from(fps);
    println!(
        "u2netp frame {frame:?}: live source at {fps} fps, {intervals:.1} frame intervals a frame"
    );
    let (out, age, async_latency) =
        live_run("model=light mode=async async-correction=false", 75, fps);
    assert!(out >= 72, "async passed {out} of 75 frames");
    assert!(
        age >= 2,
        "mask age {age}: the mask cannot be this fresh at {frame:?} a frame and {fps} fps"
    );
    let (sync_out, sync_age, sync_latency) = live_run("model=light mode=sync", 75, fps);
    assert_eq!(sync_age, 0);
    assert!(sync_out < out, "sync passed {sync_out}, async {out}");
    // Sync mode answers the LATENCY query with its frame time; async adds none.
    let half_frame = gst::ClockTime::from_nseconds(frame.as_nanos() as u64 / 2);
    assert!(
        sync_latency >= async_latency + half_frame,
        "latency sync {sync_latency} async {async_latency}, frame {frame:?}"
    );
}

#[test]
fn async_correction_cuts_the_frames_before_the_first_heavy_mask() {
    init();
    // u2net takes about 700 ms a frame here, the human model about 2 ms: the
    // first frame leaves long before the heavy model's first mask. With the
    // correction it carries the human model's cut; without, nothing (fully
    // transparent until the first heavy mask).
    let first_alpha = |props: &str| {
        let pipeline = launch(&format!(
            "filesrc location={} ! jpegdec ! videoconvert ! imagefreeze num-buffers=1 ! \
             rbvremove model=original mode=async {props} ! video/x-raw,format=RGBA ! \
             appsink name=sink",
            data("grace_hopper.jpg").display()
        ));
        pipeline.set_state(gst::State::Playing).unwrap();
        let sink = pipeline
            .by_name("sink")
            .unwrap()
            .downcast::<gst_app::AppSink>()
            .unwrap();
        let sample = sink
            .try_pull_sample(gst::ClockTime::from_seconds(60))
            .unwrap_or_else(|| panic!("{props}: no frame within 60 s"));
        let map = sample.buffer().unwrap().map_readable().unwrap();
        let alpha: Vec<u8> = map.chunks_exact(4).map(|p| p[3]).collect();
        drop(map);
        pipeline.set_state(gst::State::Null).unwrap();
        alpha
    };
    let corrected = first_alpha("async-correction=true");
    assert!(
        corrected.iter().filter(|&&v| v > 200).count() > corrected.len() / 10
            && corrected.iter().filter(|&&v| v < 50).count() > corrected.len() / 10,
        "with the correction the first frame is the human model's cut"
    );
    let plain = first_alpha("async-correction=false");
    assert!(
        plain.iter().all(|&v| v == 0),
        "without it the first frame is fully transparent"
    );
}

#[test]
fn instances_of_one_model_share_a_session_and_both_work() {
    init();
    use rbv_core::model::{self, RunnerOptions, Segmenter};
    let options = RunnerOptions {
        threads: 1,
        ..RunnerOptions::default()
    };
    let a = Segmenter::new(model::LIGHT, None, &options).unwrap();
    let b = Segmenter::new(model::LIGHT, None, &options).unwrap();
    let c = Segmenter::new(model::HUMAN_SQUARE, None, &options).unwrap();
    let d = Segmenter::new(
        model::LIGHT,
        None,
        &RunnerOptions {
            threads: 2,
            ..RunnerOptions::default()
        },
    )
    .unwrap();
    assert!(a.shares_session_with(&b));
    assert!(!a.shares_session_with(&c), "another model");
    assert!(!a.shares_session_with(&d), "another thread count");
    drop((a, b));
    // Two elements with the same model in one pipeline, side by side: both cut.
    let pipeline = launch(&format!(
        "filesrc location={} ! jpegdec ! videoconvert ! tee name=t \
         t. ! queue ! rbvremove model=human ! video/x-raw,format=RGBA ! appsink name=a \
         t. ! queue ! rbvremove model=human ! video/x-raw,format=RGBA ! appsink name=b",
        data("grace_hopper.jpg").display()
    ));
    pipeline.set_state(gst::State::Playing).unwrap();
    let pull = |n: &str| {
        let sink = pipeline
            .by_name(n)
            .unwrap()
            .downcast::<gst_app::AppSink>()
            .unwrap();
        let s = sink.pull_sample().unwrap();
        let map = s.buffer().unwrap().map_readable().unwrap();
        map.chunks_exact(4).map(|p| p[3]).collect::<Vec<u8>>()
    };
    let (x, y) = (pull("a"), pull("b"));
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(x, y, "the same frame cut twice on one session");
    assert!(x.iter().any(|&v| v > 200) && x.iter().any(|&v| v < 50));
}

#[test]
fn execution_providers_fall_back_or_fail_as_asked() {
    init();
    // The CPU build of ONNX Runtime that set-up installs has no CUDA.
    let run = |props: &str| {
        let pipeline = launch(&format!(
            "videotestsrc num-buffers=3 ! video/x-raw,width=320,height=240 ! \
             rbvremove name=r {props} ! fakesink"
        ));
        let _ = pipeline.set_state(gst::State::Playing);
        let bus = pipeline.bus().unwrap();
        let mut warnings = Vec::new();
        let mut error = None;
        while let Some(msg) = bus.timed_pop(gst::ClockTime::from_seconds(30)) {
            match msg.view() {
                gst::MessageView::Warning(w) => warnings.push(w.error().to_string()),
                gst::MessageView::Error(e) => {
                    error = Some(format!("{} {:?}", e.error(), e.debug()));
                    break;
                }
                gst::MessageView::Eos(_) => break,
                _ => {}
            }
        }
        let active: Option<String> = pipeline
            .by_name("r")
            .unwrap()
            .property("active-execution-provider");
        pipeline.set_state(gst::State::Null).unwrap();
        (active, warnings, error)
    };
    let (active, _, error) = run("");
    assert_eq!(
        (active.as_deref(), error),
        (Some("cpu"), None),
        "auto on a CPU build"
    );
    let (active, warnings, error) = run("execution-provider=cuda");
    assert_eq!(active.as_deref(), Some("cpu"));
    assert!(error.is_none(), "{error:?}");
    // One warning, though model=human loads two files.
    assert_eq!(
        warnings
            .iter()
            .filter(|w| w.contains("execution-provider=cuda is not available: running on cpu"))
            .count(),
        1,
        "{warnings:?}"
    );
    let (_, _, error) = run("execution-provider=tensorrt execution-provider-strict=true");
    let error = error.expect("strict fails");
    assert!(error.contains("no tensorrt execution provider"), "{error}");
}
