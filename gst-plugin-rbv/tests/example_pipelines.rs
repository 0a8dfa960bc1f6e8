// SPDX-License-Identifier: MPL-2.0
// The runnable examples in pipelines/ (those that need no camera), run as a
// user would run them, with their outputs decoded back and checked.

use rbv_testkit as common;

use std::path::Path;
use std::process::Command;

use common::*;

fn run_script(script: &str, args: &[&str]) {
    let status = Command::new("bash")
        .arg(common::repo().join("pipelines").join(script))
        .args(args)
        .env("GST_PLUGIN_PATH", plugin_dir())
        .status()
        .unwrap();
    assert!(status.success(), "{script} {args:?} failed: {status}");
}

/// Decodes every frame of `file`; returns (frame count, caps format, share of
/// clear (alpha < 16) and opaque (alpha > 240) pixels in the middle frame).
fn decode_alpha(file: &Path) -> (usize, String, f64, f64) {
    let mut samples = Vec::new();
    let eos = for_each_sample(
        &format!(
            "filesrc location={} ! decodebin ! appsink name=sink sync=false",
            file.display()
        ),
        |s| {
            samples.push(s.clone());
            true
        },
    );
    assert!(eos, "{} did not decode to EOS", file.display());
    let mid = &samples[samples.len() / 2];
    let info = gst_video::VideoInfo::from_caps(mid.caps().unwrap()).unwrap();
    assert!(
        info.has_alpha(),
        "{} decodes without alpha ({:?})",
        file.display(),
        info.format()
    );
    let alpha_byte = match info.format() {
        gst_video::VideoFormat::Argb | gst_video::VideoFormat::Abgr => 0,
        _ => 3,
    };
    let map = mid.buffer().unwrap().map_readable().unwrap();
    let px: Vec<u8> = map.chunks_exact(4).map(|p| p[alpha_byte]).collect();
    let n = px.len() as f64;
    let clear = px.iter().filter(|&&a| a < 16).count() as f64 / n;
    let opaque = px.iter().filter(|&&a| a > 240).count() as f64 / n;
    (
        samples.len(),
        info.format().to_str().to_string(),
        clear,
        opaque,
    )
}

#[test]
fn file_to_alpha_mkv_keeps_alpha_through_a_file_round_trip() {
    init();
    let dir = scratch("mkv");
    // 10 s of vtest.avi (the whole file, every frame, is pipeline.rs's).
    let clip = dir.join("vtest.webm");
    short_clip("vtest.avi", 100, &clip);
    let out = dir.join("vtest.mkv");
    run_script(
        "file-to-alpha-mkv.sh",
        &[clip.to_str().unwrap(), out.to_str().unwrap()],
    );
    let (frames, format, clear, opaque) = decode_alpha(&out);
    println!("vtest.mkv: {frames} frames {format}, clear {clear:.2}, opaque {opaque:.4}");
    assert_eq!(frames, 100);
    // Distant pedestrians: the street is most of the frame, the people a
    // small part (0.34 % solid in the middle frame with the detector, which
    // clears the street between them; 0 for an all-clear matte).
    assert!(clear > 0.8, "clear share {clear:.2}");
    assert!(opaque > 0.0008, "opaque share {opaque:.4}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn file_to_png_frames_writes_rgba_pngs_and_preview_renders() {
    init();
    let dir = scratch("png");
    // 2 s of the demo clip.
    let clip = dir.join("clip.webm");
    short_clip("demo_input.webm", 50, &clip);
    let frames_dir = dir.join("frames");
    run_script(
        "file-to-png-frames.sh",
        &[
            clip.to_str().unwrap(),
            frames_dir.to_str().unwrap(),
            "model=human",
        ],
    );
    let mut pngs: Vec<_> = std::fs::read_dir(&frames_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    pngs.sort();
    assert_eq!(pngs.len(), 50, "a PNG per frame");
    let (frames, format, clear, opaque) = decode_alpha(&pngs[40]);
    println!("frame 40: {format}, clear {clear:.2}, opaque {opaque:.2}");
    assert_eq!((frames, format.as_str()), (1, "RGBA"));
    // A 16:9 close-up of two men: both people and background are large.
    assert!(
        clear > 0.25 && opaque > 0.2,
        "clear {clear:.2} opaque {opaque:.2}"
    );

    // The preview script on a file with alpha (it shows 0, 2, 4 and 6 s:
    // 6.4 s of the demo clip, small).
    let small = dir.join("small.webm");
    scaled_clip("demo_input.webm", 160, 320, 180, &small);
    let mkv = dir.join("demo.mkv");
    run_script(
        "file-to-alpha-mkv.sh",
        &[small.to_str().unwrap(), mkv.to_str().unwrap()],
    );
    let preview = dir.join("preview.png");
    run_script(
        "preview.sh",
        &[mkv.to_str().unwrap(), preview.to_str().unwrap()],
    );
    let img = first_frame(&format!(
        "filesrc location={} ! pngdec ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink",
        preview.display()
    ));
    assert_eq!((img.width, img.height), (1280, 720));
    std::fs::remove_dir_all(&dir).ok();
}

/// Share of pixels within `tol` of `rgb` on every channel.
fn share_near(img: &Image, rgb: [u8; 3], tol: u8) -> f64 {
    let mut near = 0;
    for y in 0..img.height {
        for x in 0..img.width {
            near += usize::from((0..3).all(|c| img.at(x, y, c).abs_diff(rgb[c]) <= tol));
        }
    }
    near as f64 / (img.width * img.height) as f64
}

/// Mean horizontal gradient of `img` over the pixels where `keep(x, y)`.
fn detail(img: &Image, keep: &dyn Fn(usize, usize) -> bool) -> f64 {
    let (mut sum, mut n) = (0u64, 0u64);
    for y in 0..img.height {
        for x in 0..img.width - 1 {
            if keep(x, y) && keep(x + 1, y) {
                sum += (0..3)
                    .map(|c| u64::from(img.at(x + 1, y, c).abs_diff(img.at(x, y, c))))
                    .sum::<u64>();
                n += 3;
            }
        }
    }
    sum as f64 / n.max(1) as f64
}

#[test]
fn background_and_composition_examples_make_the_pictures_they_promise() {
    init();
    let dir = scratch("compose");
    let clip = dir.join("clip.webm");
    short_clip("demo_input.webm", 12, &clip);
    assert_eq!(decode_rgb(&clip).0, 12);
    let clip = clip.to_str().unwrap();
    let out = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let run = run_script;

    run(
        "presenter-on-color.sh",
        &[clip, &out("color.webm"), "#0000FF"],
    );
    let (n, w, h, img) = decode_rgb(&dir.join("color.webm"));
    assert_eq!((n, w, h), (12, 1280, 720));
    let on_blue = img;
    // Two men in a 16:9 close-up: a large part of the frame is background.
    let blue = share_near(&on_blue, [0, 0, 255], 40);
    assert!((0.25..0.8).contains(&blue), "blue share {blue:.2}");

    let image = data("astronaut.png");
    run(
        "presenter-on-image.sh",
        &[clip, image.to_str().unwrap(), &out("image.webm")],
    );
    let (n, w, h, img) = decode_rgb(&dir.join("image.webm"));
    assert_eq!((n, w, h), (12, 1280, 720));
    // The astronaut's orange suit shows where the background was.
    let orange = share_near(&img, [230, 110, 60], 50);
    assert!(orange > 0.02, "orange share {orange:.3}");

    run("blurred-background.sh", &[clip, &out("blur.webm"), "30"]);
    let (n, w, h, blurred) = decode_rgb(&dir.join("blur.webm"));
    assert_eq!((n, w, h), (12, 1280, 720));
    // The background's detail is gone and the people's kept: compared with
    // the same frame of the input, where the colour example put blue (the
    // background) and where it kept the people (far from blue).
    let (_, _, _, original) = decode_rgb(Path::new(clip));
    let near_blue =
        |x: usize, y: usize| (0..3).all(|c| on_blue.at(x, y, c).abs_diff([0, 0, 255][c]) <= 40);
    let person = |x: usize, y: usize| on_blue.at(x, y, 2) < 128;
    let (bg_in, bg_out) = (detail(&original, &near_blue), detail(&blurred, &near_blue));
    let (fg_in, fg_out) = (detail(&original, &person), detail(&blurred, &person));
    println!(
        "blurred background: detail {bg_in:.2} -> {bg_out:.2} in the background, \
         {fg_in:.2} -> {fg_out:.2} on the people"
    );
    assert!(
        bg_out < 0.6 * bg_in && fg_out > 0.8 * fg_in,
        "background detail {bg_in:.2} -> {bg_out:.2}, people {fg_in:.2} -> {fg_out:.2}"
    );

    run("picture-in-picture.sh", &[clip, &out("pip.webm")]);
    let (n, w, h, img) = decode_rgb(&dir.join("pip.webm"));
    assert_eq!((n, w, h), (12, 1920, 1080));
    // Slate everywhere but the 512x288 corner at (1360, 744).
    assert!(share_near(&img, [0x20, 0x28, 0x30], 12) > 0.9);
    let corner = (744..1032)
        .flat_map(|y| (1360..1872).map(move |x| (x, y)))
        .filter(|&(x, y)| (0..3).any(|c| img.at(x, y, c).abs_diff([0x20, 0x28, 0x30][c]) > 40))
        .count();
    assert!(
        corner > 512 * 288 / 5,
        "{corner} presenter pixels in the corner"
    );

    let other = dir.join("other.webm");
    short_clip("vtest.avi", 12, &other);
    run(
        "over-video.sh",
        &[clip, other.to_str().unwrap(), &out("over.webm")],
    );
    let (n, w, h, img) = decode_rgb(&dir.join("over.webm"));
    // As long as the presenter (12 frames at 25 fps: 0.48 s, at 30 fps),
    // not the longer other video (12 frames of 10 fps vtest.avi: 1.2 s).
    assert_eq!((w, h), (1280, 720));
    // (0.48 s is 14.4 frames at 30 fps; the last may be repeated once.)
    assert!(
        (14..=16).contains(&n),
        "{n} frames at 30 fps for a 0.48 s presenter"
    );
    // No checkerboard or black: the other video fills what the presenter
    // does not (above it: the presenter, at 60 %, takes the bottom 432 rows;
    // their dark suits are no gap).
    let black = (0..720 - 432)
        .flat_map(|y| (0..1280).map(move |x| (x, y)))
        .filter(|&(x, y)| (0..3).all(|c| img.at(x, y, c) <= 8))
        .count();
    assert!(
        black * 20 < 1280 * (720 - 432),
        "{black} black pixels above the presenter"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn presenter_on_color_keeps_the_sound_in_sync() {
    init();
    let dir = scratch("example-sound");
    let input = dir.join("talk.mp4");
    // 3 s of H.264 and AAC; a beep at 2.0 s.
    common::av::flash_and_beep(&input, 3, 50);
    let out = dir.join("talk.webm");
    run_script(
        "presenter-on-color.sh",
        &[input.to_str().unwrap(), out.to_str().unwrap(), "#0000FF"],
    );
    let d = common::av::decode_av(&out);
    eprintln!("presenter-on-color.sh with sound: {d:?}");
    assert_eq!(d.frames, 75);
    let (start, _) = d.picture.unwrap();
    assert!(
        (d.sound_seconds() - d.picture_seconds()).abs() <= common::av::FRAME,
        "{d:?}"
    );
    // The flash is under the blue (no one is in it): the beep is heard
    // where the input has it, 2 s into the picture.
    assert!(
        (d.beep.unwrap() - start - 2.0).abs() <= common::av::FRAME,
        "{d:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
