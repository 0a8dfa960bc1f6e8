// SPDX-License-Identifier: MPL-2.0
// The detector through the element: `text-prompt` keeps the classes it
// names on a real photo (bus.jpg, the real ONNX Runtime and models), terms
// that name no class are warned about once, and prompts changed while
// playing take effect on the next frame. Where things are in bus.jpg comes
// from the numpy reference's fixture (rbv-core/tests/fixtures/yolo), not
// from the element.

use rbv_testkit as common;

use common::*;
use gst::prelude::*;

const W: usize = 810;
const H: usize = 1080;

/// bus.jpg's boxes from the reference: (class name, x1, y1, x2, y2).
fn boxes() -> Vec<(String, [f64; 4])> {
    let path = repo().join("rbv-core/tests/fixtures/yolo/bus_640x640.json");
    let f: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    f["detections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let b = d["box"].as_array().unwrap();
            (
                d["name"].as_str().unwrap().to_string(),
                std::array::from_fn(|i| b[i].as_f64().unwrap()),
            )
        })
        .collect()
}

/// bus.jpg through `rbvremove` with `props`, as a file's frame: the
/// output's alpha plane.
fn cut(props: &[(&str, &str)]) -> Vec<u8> {
    let i420 = first_frame(&format!(
        "filesrc location={} ! jpegdec ! videoconvert ! video/x-raw,format=I420 ! appsink name=sink",
        data("bus.jpg").display()
    ));
    // Set before the start (the harness starts the element).
    let mut el = gst::ElementFactory::make("rbvremove");
    for (k, v) in props {
        el = el.property_from_str(k, v);
    }
    let through = Through::new(&el.build().unwrap(), &i420_caps(), &rgba_caps());
    let out = through.push(gst::Buffer::from_mut_slice(i420.data));
    let map = out.map_readable().unwrap();
    map.chunks_exact(4).map(|p| p[3]).collect()
}

fn i420_caps() -> gst::Caps {
    format!("video/x-raw,format=I420,width={W},height={H},framerate=25/1")
        .parse()
        .unwrap()
}

fn rgba_caps() -> gst::Caps {
    "video/x-raw,format=RGBA".parse().unwrap()
}

/// Mean alpha (0..1) over `rect` (x1, y1, x2, y2).
fn mean(alpha: &[u8], r: [f64; 4]) -> f64 {
    let (x1, y1, x2, y2) = (r[0] as usize, r[1] as usize, r[2] as usize, r[3] as usize);
    let mut sum = 0u64;
    for y in y1..y2 {
        sum += alpha[y * W + x1..y * W + x2]
            .iter()
            .map(|&a| u64::from(a))
            .sum::<u64>();
    }
    sum as f64 / ((x2 - x1) * (y2 - y1)) as f64 / 255.0
}

/// The middle of a box: its central third each way.
fn core(b: [f64; 4]) -> [f64; 4] {
    let (w, h) = (b[2] - b[0], b[3] - b[1]);
    [
        b[0] + w / 3.0,
        b[1] + h / 3.0,
        b[2] - w / 3.0,
        b[3] - h / 3.0,
    ]
}

#[test]
fn text_prompt_bus_keeps_the_bus_and_not_the_people() {
    init();
    let boxes = boxes();
    let bus = boxes.iter().find(|(n, _)| n == "bus").unwrap().1;
    // The two men walking in front of the bus (the best two people).
    let men: Vec<[f64; 4]> = boxes
        .iter()
        .filter(|(n, _)| n == "person")
        .map(|(_, b)| *b)
        .take(2)
        .collect();
    // The bus above everyone's heads: bus only.
    let top = boxes
        .iter()
        .filter(|(n, _)| n == "person")
        .map(|(_, b)| b[1])
        .fold(f64::INFINITY, f64::min);
    let bus_only = [bus[0] + 40.0, bus[1] + 20.0, bus[2] - 40.0, top - 10.0];

    let people = cut(&[]);
    let buses = cut(&[("text-prompt", "bus")]);
    let matte_alone = cut(&[("detector", "false")]);
    let report = |what: &str, a: &[u8]| {
        let men_core: Vec<f64> = men.iter().map(|m| mean(a, core(*m))).collect();
        println!(
            "{what:<14} bus above the people {:.3}, men's cores {men_core:.3?}",
            mean(a, bus_only)
        );
        men_core
    };
    let p = report("default", &people);
    let b = report("text-prompt=bus", &buses);
    report("detector=false", &matte_alone);
    // No prompt: people, not the bus.
    assert!(p.iter().all(|&v| v > 0.8), "{p:?}");
    assert!(mean(&people, bus_only) < 0.05);
    // "bus": the bus, not the people in front of it.
    assert!(mean(&buses, bus_only) > 0.8);
    assert!(b.iter().all(|&v| v < 0.15), "{b:?}");
}

/// Warnings posted while `props` run on a few test frames.
fn warnings(props: &str) -> Vec<String> {
    let pipeline = launch(&format!(
        "videotestsrc num-buffers=3 ! video/x-raw,width=64,height=48 ! rbvremove {props} ! \
         fakesink"
    ));
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let mut out = Vec::new();
    while let Some(msg) = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(60),
        &[
            gst::MessageType::Warning,
            gst::MessageType::Eos,
            gst::MessageType::Error,
        ],
    ) {
        match msg.view() {
            gst::MessageView::Warning(w) => out.push(w.error().to_string()),
            gst::MessageView::Error(e) => panic!("{props}: {}", e.error()),
            _ => break,
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    out
}

#[test]
fn terms_that_name_no_class_are_named_in_one_warning() {
    init();
    let w = warnings(r#"text-prompt="person, clothing accessories, glowing ring, puppies, sky""#);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("'glowing ring', 'sky'")
            && w[0].contains("keeping person, dog, backpack, umbrella, handbag, tie.")
            && !w[0].contains("'puppies'"),
        "{w:?}"
    );
    for ok in [
        "people, faces",
        "a dog, cats",
        "Clothing Accessories",
        "product",
    ] {
        assert!(
            warnings(&format!("model=light text-prompt=\"{ok}\"")).is_empty(),
            "{ok}"
        );
    }
    // Nothing that maps: still people, and said so.
    let w = warnings(r#"text-prompt="glowing ring""#);
    assert!(w.len() == 1 && w[0].contains("keeping person"), "{w:?}");
}

#[test]
fn a_prompt_set_while_playing_applies_to_the_next_frame() {
    init();
    let i420 = first_frame(&format!(
        "filesrc location={} ! jpegdec ! videoconvert ! video/x-raw,format=I420 ! appsink name=sink",
        data("bus.jpg").display()
    ));
    // A long interval: only the prompt's change can cause a new detection.
    let el = gst::ElementFactory::make("rbvremove")
        .property("detector-interval", 1000u32)
        .build()
        .unwrap();
    let through = Through::new(&el, &i420_caps(), &rgba_caps());
    let bus_box = boxes().iter().find(|(n, _)| n == "bus").unwrap().1;
    let bus_only = [
        bus_box[0] + 40.0,
        bus_box[1] + 20.0,
        bus_box[2] - 40.0,
        380.0,
    ];
    let push = || {
        let out = through.push(gst::Buffer::from_mut_slice(i420.data.clone()));
        let map = out.map_readable().unwrap();
        let a: Vec<u8> = map.chunks_exact(4).map(|p| p[3]).collect();
        mean(&a, bus_only)
    };
    let before = push();
    el.set_property("text-prompt", "bus");
    let after = push();
    assert!(before < 0.05 && after > 0.8, "{before} -> {after}");
}

#[test]
fn a_missing_detector_model_fails_the_start_naming_it() {
    init();
    let dir = scratch("no-detector");
    // The matting models are there, the detector is not.
    for f in [
        "selfie_segmentation.onnx",
        "selfie_segmentation_landscape.onnx",
    ] {
        std::os::unix::fs::symlink(rbv_core::paths::model_dir().join(f), dir.join(f)).unwrap();
    }
    let out = std::process::Command::new("gst-launch-1.0")
        .args([
            "videotestsrc",
            "num-buffers=1",
            "!",
            "rbvremove",
            "!",
            "fakesink",
        ])
        .env("RBV_MODEL_DIR", &dir)
        .env("GST_PLUGIN_PATH", plugin_dir())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("yolov5s-seg.onnx") && text.contains("detector=false"),
        "{text}"
    );
    let out = std::process::Command::new("gst-launch-1.0")
        .args([
            "videotestsrc",
            "num-buffers=1",
            "!",
            "rbvremove",
            "detector=false",
            "!",
            "fakesink",
        ])
        .env("RBV_MODEL_DIR", &dir)
        .env("GST_PLUGIN_PATH", plugin_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// What a person wears stays with them: Zidane's tie, with the element's
/// defaults (people kept). "Inside the tie" is the detector's own tie mask
/// (`text-prompt=tie`: a class `human` cannot segment takes the detector's
/// mask as its alpha), 4 px in from its edge, within the reference's tie box.
#[test]
fn a_persons_tie_stays_with_them() {
    init();
    let defaults = remove_background("zidane.jpg", "I420", "");
    let tie = remove_background("zidane.jpg", "I420", "text-prompt=tie");
    let (w, h) = (defaults.width, defaults.height);
    assert_eq!((w, h), (1280, 720));
    // The reference's tie box (rbv-core/tests/fixtures/yolo/zidane_640x640.json).
    let tie_box = [433.686, 435.689, 501.71, 710.418];
    let tie_alpha = tie.channel(3);
    let on = |x: usize, y: usize| tie_alpha[y * w + x] >= 128;
    let r = 4usize;
    let mut inside = Vec::new();
    for y in (tie_box[1] as usize + r)..(tie_box[3] as usize).min(h - r) {
        for x in (tie_box[0] as usize + r)..(tie_box[2] as usize - r) {
            let core = (y - r..=y + r).all(|yy| (x - r..=x + r).all(|xx| on(xx, yy)));
            if core {
                inside.push(y * w + x);
            }
        }
    }
    assert!(
        inside.len() > 2000,
        "the tie's mask: {} pixels",
        inside.len()
    );
    let alpha = defaults.channel(3);
    let kept: Vec<u8> = inside.iter().map(|&i| alpha[i]).collect();
    let min = kept.iter().copied().min().unwrap();
    let mean = kept.iter().map(|&v| f64::from(v)).sum::<f64>() / kept.len() as f64;
    println!(
        "the tie: {} pixels inside, alpha min {min}, mean {mean:.1}",
        kept.len()
    );
    assert!(
        min >= 240,
        "the tie is cut out of the person: alpha down to {min}"
    );
}

/// A `mode=async` run to its end on a file says nothing but what
/// gst-launch says: the detector's thread is done before the process
/// exits (it was still inside ONNX Runtime at the exit, which printed
/// "[E:onnxruntime ... GetElementType is not implemented]" after every
/// such run).
#[test]
fn an_async_run_ends_without_a_runtime_error() {
    for _ in 0..2 {
        let out = std::process::Command::new("gst-launch-1.0")
            .args([
                "filesrc",
                &format!("location={}", data("vtest.avi").display()),
            ])
            .args(["!", "decodebin", "!", "videoconvert", "!"])
            .args(["rbvremove", "mode=async", "!", "fakesink"])
            .env("GST_PLUGIN_PATH", plugin_dir())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
        assert!(!text.contains("onnxruntime"), "{text}");
    }
}

/// `n` frames of bus.jpg through `rbvremove` (stats after every frame),
/// with timestamps `pts(i)` (ms) and DISCONT where `discont(i)`: the
/// `detections` count after each.
fn detections_per_frame(
    n: u64,
    pts: impl Fn(u64) -> u64,
    discont: impl Fn(u64) -> bool,
) -> Vec<u64> {
    let i420 = first_frame(&format!(
        "filesrc location={} ! jpegdec ! videoconvert ! video/x-raw,format=I420 ! appsink name=sink",
        data("bus.jpg").display()
    ));
    let el = gst::ElementFactory::make("rbvremove")
        .property("stats-interval", 1u32)
        .build()
        .unwrap();
    let through = Through::new(&el, &i420_caps(), &rgba_caps());
    let mut counts = Vec::new();
    for i in 0..n {
        let mut b = gst::Buffer::from_mut_slice(i420.data.clone());
        let bm = b.get_mut().unwrap();
        bm.set_pts(gst::ClockTime::from_mseconds(pts(i)));
        bm.set_duration(gst::ClockTime::from_mseconds(40));
        if discont(i) {
            bm.set_flags(gst::BufferFlags::DISCONT);
        }
        through.push(b);
        // The message of the frame after a millisecond's interval carries it.
        std::thread::sleep(std::time::Duration::from_millis(3));
        let last = through
            .messages()
            .into_iter()
            .filter_map(|s| s.get::<u64>("detections").ok())
            .next_back();
        counts.push(last.unwrap_or(counts.last().copied().unwrap_or(0)));
    }
    counts
}

/// Upstream QoS drops frames and marks the next one DISCONT: that frame
/// starts no detection the frames around it do not (a new start would, and
/// it made the next frame late, and so on). A DISCONT that is no short step
/// forward (a new stream, a seek without a flush) does start anew.
#[test]
fn a_frame_after_a_qos_drop_starts_no_work_of_its_own() {
    init();
    // 25 fps; frames 5 and 6 dropped upstream, frame 7 marked DISCONT.
    let dropped = detections_per_frame(
        10,
        |i| if i < 5 { i * 40 } else { (i + 2) * 40 },
        |i| i == 5,
    );
    println!("after a QoS drop: detections {dropped:?}");
    assert_eq!(
        dropped.last(),
        Some(&1),
        "one detection, on the first frame: {dropped:?}"
    );
    // The same DISCONT with no frame missing: a new start.
    let anew = detections_per_frame(10, |i| i * 40, |i| i == 5);
    println!("after a DISCONT with no gap: detections {anew:?}");
    assert_eq!(anew.last(), Some(&2), "{anew:?}");
}
