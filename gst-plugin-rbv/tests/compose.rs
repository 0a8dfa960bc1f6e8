// SPDX-License-Identifier: MPL-2.0
// Backgrounds and composition through the element (Harness and whole
// pipelines), on a real photo with the real model. Each composite is checked
// against the element's own transparent cut of the same frame, pixel for
// pixel, with the documented blend: (f*a + b*(255-a)) / 255, rounded.

use rbv_testkit as common;

use common::*;
use gst::prelude::*;

const W: usize = 512;
const H: usize = 600;

/// grace_hopper.jpg as one I420 buffer.
fn photo() -> gst::Buffer {
    let img = first_frame(&format!(
        "filesrc location={} ! jpegdec ! videoconvert ! video/x-raw,format=I420 ! appsink name=sink",
        data("grace_hopper.jpg").display()
    ));
    assert_eq!((img.width, img.height), (W, H));
    gst::Buffer::from_mut_slice(img.data)
}

struct Out {
    info: gst_video::VideoInfo,
    data: Vec<u8>,
}

impl Out {
    fn px(&self, x: usize, y: usize) -> [u8; 4] {
        let i = y * self.info.stride()[0] as usize + x * 4;
        self.data[i..i + 4].try_into().unwrap()
    }

    fn gray(&self, x: usize, y: usize) -> u8 {
        self.data[y * self.info.stride()[0] as usize + x]
    }

    fn size(&self) -> (usize, usize) {
        (self.info.width() as usize, self.info.height() as usize)
    }
}

fn harness(props: &[(&str, &str)], sink_caps: &str) -> gst_check::Harness {
    init();
    let mut h = gst_check::Harness::new("rbvremove");
    {
        let el = h.element().unwrap();
        for (k, v) in props {
            el.set_property_from_str(k, v);
        }
    }
    h.set_src_caps_str(&format!(
        "video/x-raw,format=I420,width={W},height={H},framerate=25/1"
    ));
    h.set_sink_caps_str(sink_caps);
    h
}

fn pull(h: &mut gst_check::Harness, buffer: gst::Buffer) -> Out {
    let out = h.push_and_pull(buffer).expect("an output frame");
    let caps = h.sinkpad().unwrap().current_caps().unwrap();
    Out {
        info: gst_video::VideoInfo::from_caps(&caps).unwrap(),
        data: out.map_readable().unwrap().to_vec(),
    }
}

/// The element's output for one photo with `props`.
fn run(props: &[(&str, &str)]) -> Out {
    let mut h = harness(props, "video/x-raw,format={RGBA,GRAY8}");
    pull(&mut h, photo())
}

fn blend(f: u8, a: u8, b: u8) -> u8 {
    ((u32::from(f) * u32::from(a) + u32::from(b) * (255 - u32::from(a)) + 127) / 255) as u8
}

/// Every pixel of `out` is the transparent cut `cut` over `bg(x, y)`.
fn assert_over(out: &Out, cut: &Out, bg: impl Fn(usize, usize) -> [u8; 3], what: &str) {
    assert_eq!(out.size(), cut.size(), "{what}: size");
    let mut soft = 0;
    for y in 0..H {
        for x in 0..W {
            let f = cut.px(x, y);
            let b = bg(x, y);
            let want = [
                blend(f[0], f[3], b[0]),
                blend(f[1], f[3], b[1]),
                blend(f[2], f[3], b[2]),
                255,
            ];
            assert_eq!(
                out.px(x, y),
                want,
                "{what} at {x},{y}: cut {f:?} over {b:?}"
            );
            soft += usize::from(f[3] > 0 && f[3] < 255);
        }
    }
    assert!(soft > 500, "{what}: only {soft} soft edge pixels checked");
}

#[test]
fn colour_background_is_the_cut_over_the_colour() {
    let cut = run(&[]);
    for (colour, rgb) in [
        ("#2040FF", [0x20, 0x40, 0xff]),
        ("green", [0, 255, 0]),
        ("[0.035,0.635,0.274]", [9, 162, 70]),
    ] {
        let out = run(&[("background", "color"), ("background-color", colour)]);
        assert_over(&out, &cut, |_, _| rgb, colour);
    }
    // BGRA output gets the same colours in its own byte order.
    let mut h = harness(
        &[("background", "color"), ("background-color", "#2040FF")],
        "video/x-raw,format=BGRA",
    );
    let bgra = pull(&mut h, photo());
    assert_eq!(bgra.info.format(), gst_video::VideoFormat::Bgra);
    assert_eq!(
        bgra.px(470, 60),
        [0xff, 0x40, 0x20, 255],
        "backdrop is the colour"
    );
}

/// A flat-colour PNG written by GStreamer's own encoder.
fn flat_png(name: &str, argb: u32) -> std::path::PathBuf {
    init();
    let path = std::env::temp_dir().join(format!("rbv-{}-{name}.png", std::process::id()));
    let p = launch(&format!(
        "videotestsrc num-buffers=1 pattern=solid-color foreground-color={argb} ! \
         video/x-raw,width=320,height=240 ! pngenc ! filesink location={}",
        path.display()
    ));
    p.set_state(gst::State::Playing).unwrap();
    assert!(wait_for_error(&p).is_none());
    p.set_state(gst::State::Null).unwrap();
    path
}

#[test]
fn image_background_is_the_cut_over_the_image() {
    let cut = run(&[]);
    let png = flat_png("flat", 0xff3080c0);
    // The image first: the Harness element is already playing, and
    // background=image without an image is refused.
    let out = run(&[
        ("background-image", png.to_str().unwrap()),
        ("background", "image"),
    ]);
    assert_over(&out, &cut, |_, _| [0x30, 0x80, 0xc0], "flat image");
    // A real photo as background: where the cut is clear the background
    // shows, where it is solid the person does.
    let out = run(&[
        ("background-image", data("astronaut.png").to_str().unwrap()),
        ("background", "image"),
    ]);
    let (mut shown, mut kept) = (0, 0);
    for y in (0..H).step_by(7) {
        for x in (0..W).step_by(7) {
            let f = cut.px(x, y);
            let o = out.px(x, y);
            assert_eq!(o[3], 255);
            if f[3] == 255 {
                assert_eq!(o[..3], f[..3], "person kept at {x},{y}");
                kept += 1;
            } else if f[3] == 0 && o[..3] != f[..3] {
                shown += 1;
            }
        }
    }
    assert!(kept > 500 && shown > 500, "kept {kept}, shown {shown}");
    std::fs::remove_file(png).unwrap();
}

#[test]
fn blur_background_keeps_the_person_and_softens_the_rest() {
    let cut = run(&[]);
    let out = run(&[("background", "blur"), ("blur-radius", "24")]);
    // Roughness: mean absolute difference between horizontal neighbours,
    // over the pixels the cut made fully transparent.
    let rough = |img: &Out| {
        let (mut sum, mut n) = (0u64, 0u64);
        for y in 0..H {
            for x in 0..W - 1 {
                if cut.px(x, y)[3] == 0 && cut.px(x + 1, y)[3] == 0 {
                    let (a, b) = (img.px(x, y), img.px(x + 1, y));
                    sum += (0..3).map(|c| u64::from(a[c].abs_diff(b[c]))).sum::<u64>();
                    n += 1;
                }
            }
        }
        sum as f64 / n as f64
    };
    let (before, after) = (rough(&cut), rough(&out));
    assert!(after < before / 3.0, "roughness {before:.2} -> {after:.2}");
    for y in 0..H {
        for x in 0..W {
            let (f, o) = (cut.px(x, y), out.px(x, y));
            assert_eq!(o[3], 255, "opaque at {x},{y}");
            if f[3] == 255 {
                assert_eq!(o[..3], f[..3], "person kept at {x},{y}");
            }
        }
    }
}

#[test]
fn mask_output_is_the_alpha_as_gray8() {
    let cut = run(&[]);
    let mask = run(&[("background", "mask")]);
    assert_eq!(mask.info.format(), gst_video::VideoFormat::Gray8);
    assert_eq!(mask.size(), (W, H));
    for y in 0..H {
        for x in 0..W {
            assert_eq!(mask.gray(x, y), cut.px(x, y)[3], "{x},{y}");
        }
    }
    // Placed on a canvas: the alpha of the placed cut.
    let placed = run(&[
        ("background", "mask"),
        ("canvas-width", "700"),
        ("anchor", "top-right"),
    ]);
    assert_eq!(placed.size(), (700, H));
    for y in (0..H).step_by(3) {
        for x in (0..700).step_by(3) {
            let want = if x < 188 { 0 } else { cut.px(x - 188, y)[3] };
            assert_eq!(placed.gray(x, y), want, "{x},{y}");
        }
    }
}

#[test]
fn canvas_anchor_and_offset_place_the_cut_exactly() {
    let cut = run(&[]);
    let out = run(&[
        ("canvas-width", "640"),
        ("canvas-height", "720"),
        ("anchor", "bottom-right"),
        ("offset-x", "-20"),
        ("offset-y", "30"),
    ]);
    assert_eq!(out.size(), (640, 720));
    // Bottom-right: x0 = 640 - 512 - 20 = 108, y0 = 720 - 600 + 30 = 150;
    // the bottom 30 rows are pushed off the canvas.
    for y in 0..720 {
        for x in 0..640 {
            let inside = (108..620).contains(&x) && y >= 150;
            // Over a transparent canvas a clear pixel is [0; 4], whatever
            // colour it had; every other pixel is the cut's own.
            let f = if inside {
                cut.px(x - 108, y - 150)
            } else {
                [0; 4]
            };
            let want = if f[3] == 0 { [0; 4] } else { f };
            assert_eq!(out.px(x, y), want, "{x},{y}");
        }
    }
    // The same through the service's composition object, on a colour.
    let json = r#"{"canvas":{"width":640,"height":720},"foreground":{"anchor":"bottom-right","offset":{"x":-20,"y":30}}}"#;
    let out = run(&[
        ("composition", json),
        ("background", "color"),
        ("background-color", "black"),
    ]);
    assert_eq!(out.size(), (640, 720));
    assert_eq!(out.px(5, 5), [0, 0, 0, 255]);
    let f = cut.px(256, 270);
    assert_eq!(out.px(108 + 256, 150 + 270), [f[0], f[1], f[2], 255]);
}

#[test]
fn picture_in_picture_scales_the_foreground() {
    let out = run(&[
        ("canvas-width", "1920"),
        ("canvas-height", "1080"),
        ("anchor", "bottom-right"),
        ("scale", "0.4"),
    ]);
    assert_eq!(out.size(), (1920, 1080));
    // 512x600 * 0.4 = 205x240 at (1715, 840).
    let mut opaque = 0;
    for y in 0..1080 {
        for x in 0..1920 {
            let p = out.px(x, y);
            let inside = x >= 1715 && y >= 840;
            if !inside {
                assert_eq!(p, [0; 4], "outside at {x},{y}");
            }
            opaque += usize::from(p[3] == 255);
        }
    }
    // The person covers roughly half of the photo.
    assert!((10_000..40_000).contains(&opaque), "{opaque} opaque pixels");
    // Her face (256, 270 in the photo) lands at 1715 + 102, 840 + 108.
    assert_eq!(out.px(1715 + 102, 840 + 108)[3], 255);
}

#[test]
fn output_caps_keep_pixel_aspect_and_say_srgb() {
    init();
    let mut h = gst_check::Harness::new("rbvremove");
    h.element()
        .unwrap()
        .set_property_from_str("canvas-width", "1024");
    h.set_src_caps_str(
        "video/x-raw,format=I420,width=720,height=576,framerate=25/1,\
         pixel-aspect-ratio=16/15,colorimetry=bt601",
    );
    h.set_sink_caps_str("video/x-raw,format=RGBA");
    let frame = gst::Buffer::with_size(720 * 576 * 3 / 2).unwrap();
    h.push_and_pull(frame).expect("a frame");
    let caps = h.sinkpad().unwrap().current_caps().unwrap();
    let info = gst_video::VideoInfo::from_caps(&caps).unwrap();
    assert_eq!((info.width(), info.height()), (1024, 576));
    assert_eq!(info.par(), gst::Fraction::new(16, 15), "{caps}");
    // Stated in the caps, not left for downstream to guess.
    let s = caps.structure(0).unwrap();
    assert_eq!(s.get::<&str>("colorimetry"), Ok("sRGB"), "{caps}");
}

fn warnings(bus: &gst::Bus) -> Vec<String> {
    std::iter::from_fn(|| bus.pop_filtered(&[gst::MessageType::Warning]))
        .filter_map(|m| match m.view() {
            gst::MessageView::Warning(w) => Some(w.error().to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn live_changes_apply_on_the_next_frame_and_bad_values_are_refused() {
    let mut h = harness(
        &[("background", "color"), ("background-color", "red")],
        "video/x-raw,format={RGBA,GRAY8}",
    );
    let el = h.element().unwrap();
    let bus = gst::Bus::new();
    el.set_bus(Some(&bus));
    let backdrop = |o: &Out| o.px(470, 60);

    assert_eq!(backdrop(&pull(&mut h, photo())), [255, 0, 0, 255]);
    el.set_property("background-color", "#0000FF");
    assert_eq!(backdrop(&pull(&mut h, photo())), [0, 0, 255, 255]);

    // Refused: the warning names the value; the old setting stays.
    let bad = [
        ("background-color", "not-a-colour", "not-a-colour"),
        ("composition", r#"{"foreground":{"scale":-2}}"#, "-2"),
        ("composition", "{bad json", "invalid JSON"),
        (
            "background-image",
            "/nonexistent/bg.png",
            "/nonexistent/bg.png",
        ),
    ];
    for (prop, value, needle) in bad {
        let before = el.property_value(prop);
        el.set_property_from_str(prop, value);
        let w = warnings(&bus);
        assert!(
            w.iter().any(|m| m.contains(needle) && m.contains(prop)),
            "{prop}={value}: warnings {w:?}"
        );
        assert_eq!(
            format!("{:?}", el.property_value(prop)),
            format!("{before:?}"),
            "{prop} kept"
        );
    }
    // background=image with no image is refused while playing.
    el.set_property_from_str("background", "image");
    assert!(
        warnings(&bus)
            .iter()
            .any(|m| m.contains("background-image"))
    );
    assert_eq!(
        el.property_value("background")
            .get::<gstrbv::rbvremove::BackgroundMode>()
            .unwrap(),
        gstrbv::rbvremove::BackgroundMode::Color
    );
    assert_eq!(
        backdrop(&pull(&mut h, photo())),
        [0, 0, 255, 255],
        "still blue"
    );

    // Canvas, anchor and mode changes renegotiate on the next frame.
    el.set_property_from_str(
        "composition",
        r#"{"canvas":{"width":800,"height":600},"foreground":{"anchor":"top-left"}}"#,
    );
    assert_eq!(el.property::<u32>("canvas-width"), 800);
    let out = pull(&mut h, photo());
    assert_eq!(out.size(), (800, 600));
    assert_eq!(
        out.px(700, 10),
        [0, 0, 255, 255],
        "uncovered canvas is the colour"
    );
    el.set_property_from_str("anchor", "top-right");
    let out = pull(&mut h, photo());
    assert_eq!(out.px(10, 10), [0, 0, 255, 255]);
    el.set_property_from_str("background", "mask");
    let out = pull(&mut h, photo());
    assert_eq!(out.info.format(), gst_video::VideoFormat::Gray8);
    assert_eq!(out.gray(10, 10), 0);
    assert!(out.gray(288 + 256, 270) >= 230, "her face is foreground");
    el.set_property_from_str("background", "transparent");
    el.set_property("canvas-width", 0u32);
    let out = pull(&mut h, photo());
    assert_eq!(
        (out.info.format(), out.size()),
        (gst_video::VideoFormat::Rgba, (W, H))
    );
    assert_eq!(backdrop(&out)[3], 0);
    assert!(warnings(&bus).is_empty());
}

#[test]
fn a_playing_pipeline_survives_background_anchor_and_canvas_changes() {
    init();
    // 120 frames of a real clip; settings change every 10 frames from the
    // streaming thread's point of view (the app sets them while frames flow).
    let pipeline = launch(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! videoscale ! \
         video/x-raw,width=320,height=240 ! rbvremove name=rbv ! videoconvert ! \
         video/x-raw,format=RGBA ! appsink name=sink sync=false max-buffers=2",
        data("vtest.avi").display()
    ));
    let rbv = pipeline.by_name("rbv").unwrap();
    let png = flat_png("live", 0xff204060);
    rbv.set_property_from_str("background-image", png.to_str().unwrap());
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let steps: &[&[(&str, &str)]] = &[
        &[("background", "color"), ("background-color", "blue")],
        &[("background", "blur"), ("blur-radius", "12")],
        &[("background", "image")],
        &[("anchor", "top-left"), ("scale", "0.5")],
        &[("canvas-width", "640"), ("canvas-height", "360")],
        &[("anchor", "bottom-right"), ("offset-x", "-10")],
        &[("background", "transparent"), ("scale", "1.5")],
        &[("composition", "{}")],
        &[("background", "color"), ("background-color", "#FFFFFF80")],
    ];
    let mut sizes = Vec::new();
    let mut last_pts = None;
    for i in 0..120 {
        if i % 10 == 5 {
            for (k, v) in steps[(i / 10) % steps.len()] {
                rbv.set_property_from_str(k, v);
            }
        }
        let sample = sink
            .try_pull_sample(gst::ClockTime::from_seconds(30))
            .unwrap_or_else(|| panic!("frame {i} missing"));
        let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
        let pts = sample.buffer().unwrap().pts().unwrap();
        assert!(last_pts.is_none_or(|p| pts > p), "pts order at {i}");
        last_pts = Some(pts);
        if sizes.last() != Some(&(info.width(), info.height())) {
            sizes.push((info.width(), info.height()));
        }
    }
    let bus = pipeline.bus().unwrap();
    let problem = bus.pop_filtered(&[gst::MessageType::Error, gst::MessageType::Warning]);
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(problem.is_none(), "{problem:?}");
    assert_eq!(sizes, [(320, 240), (640, 360), (320, 240)]);
    std::fs::remove_file(png).unwrap();
}
