// SPDX-License-Identifier: MPL-2.0
//! The compositor alone at 1080p, one core: ms per frame for each
//! background mode and for placed (picture-in-picture) output. The frames
//! are real: vtest.avi scaled to 1920x1080 and cut by `rbvremove`, so the
//! alpha has the soft edges and mix of clear and solid areas of real use.
//! Run: `cargo bench --bench compose`. Prints figures, asserts nothing.

use std::time::Instant;

use rbv_core::compositor::{
    self, Anchor, Background, Blur, Compositor, Cover, Pixels, PixelsMut, Placement,
};

use rbv_testkit as common;

const W: u32 = 1920;
const H: u32 = 1080;
const ROUNDS: usize = 200;

/// Real cut frames: vtest.avi at 1080p through rbvremove, RGBA.
fn cut_frames(n: usize) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    common::for_each_sample(
        &format!(
            "filesrc location={} ! decodebin ! videoconvert ! videoscale ! \
             video/x-raw,width={W},height={H},pixel-aspect-ratio=1/1 ! rbvremove ! \
             video/x-raw,format=RGBA ! appsink name=sink sync=false",
            common::data("vtest.avi").display()
        ),
        |s| {
            let map = s.buffer().unwrap().map_readable().unwrap();
            frames.push(map.to_vec());
            frames.len() < n
        },
    );
    frames
}

fn cover_image() -> Cover {
    let img = rbv_core::image::load(&common::data("astronaut.png")).expect("image decodes");
    Cover::new(&img.buffer, &img.info, (W, H), gst_video::VideoFormat::Rgba).unwrap()
}

/// Mean ms over `ROUNDS` calls of `f` on frame copies (the copy is not timed).
fn time(frames: &[Vec<u8>], mut f: impl FnMut(&[u8], &mut Vec<u8>)) -> f64 {
    let mut work = frames[0].clone();
    let mut total = 0.0;
    for i in 0..ROUNDS + 5 {
        let src = &frames[i % frames.len()];
        work.copy_from_slice(src);
        let t0 = Instant::now();
        f(src, &mut work);
        if i >= 5 {
            total += t0.elapsed().as_secs_f64();
        }
    }
    total * 1000.0 / ROUNDS as f64
}

fn px(data: &[u8]) -> Pixels<'_> {
    Pixels::new(data, W, H, W as usize * 4).unwrap()
}

fn px_mut(data: &mut [u8]) -> PixelsMut<'_> {
    PixelsMut::new(data, W, H, W as usize * 4).unwrap()
}

/// The frame in `w` over an opaque canvas-sized picture, in place.
fn under_opaque(w: &mut [u8], pixels: Pixels) {
    compositor::under(
        &mut px_mut(w),
        3,
        &Background::Pixels {
            pixels,
            opaque: true,
        },
    )
    .unwrap()
}

fn main() {
    common::init();
    const CUTS: usize = 20;
    let frames = cut_frames(CUTS);
    let cover = cover_image();
    let mut blur = Blur::new();
    let mut comp = Compositor::new();
    let mut canvas = vec![0u8; (W * H * 4) as usize];
    let mut gray = vec![0u8; (W * H) as usize];
    let green = Background::Color([0, 255, 0, 255]);

    println!(
        "compositor alone, {W}x{H} RGBA, {ROUNDS} frames per row ({CUTS} real cut frames in turn), one thread"
    );
    println!("{:<44} {:>9} {:>8}", "mode", "ms/frame", "target");
    let row = |name: &str, target: &str, ms: f64| {
        println!("{name:<44} {ms:>9.2} {target:>8}");
    };

    row(
        "transparent (in place: nothing to do)",
        "1.5",
        time(&frames, |_, w| {
            compositor::under(&mut px_mut(w), 3, &Background::Transparent).unwrap()
        }),
    );
    row(
        "color (in place)",
        "1.5",
        time(&frames, |_, w| {
            compositor::under(&mut px_mut(w), 3, &green).unwrap()
        }),
    );
    row(
        "color, translucent #00FF0080 (in place)",
        "-",
        time(&frames, |_, w| {
            compositor::under(&mut px_mut(w), 3, &Background::Color([0, 255, 0, 128])).unwrap()
        }),
    );
    row(
        "image (in place, cover cached)",
        "4",
        time(&frames, |_, w| {
            cover.with_pixels(|p| under_opaque(w, p)).unwrap()
        }),
    );
    for radius in [7, 8, 20, 60] {
        row(
            &format!("blur radius {radius} (in place)"),
            "4",
            time(&frames, |_, w| {
                blur.run(px(w), 3, radius, (W, H)).unwrap();
                blur.with_result(|p| under_opaque(w, p)).unwrap()
            }),
        );
    }
    row(
        "mask (alpha to GRAY8)",
        "-",
        time(&frames, |src, _| {
            compositor::alpha_plane(px(src), 3, &mut gray, W as usize).unwrap()
        }),
    );
    let placements = [
        (
            "placed: offset (40, 20), transparent",
            Placement {
                offset_x: 40,
                offset_y: 20,
                ..Placement::default()
            },
            Background::Transparent,
        ),
        (
            "placed: offset (40, 20), color",
            Placement {
                offset_x: 40,
                offset_y: 20,
                ..Placement::default()
            },
            green,
        ),
        (
            "pip: bottom-right scale 0.4, transparent",
            Placement {
                anchor: Anchor::BottomRight,
                scale: 0.4,
                ..Placement::default()
            },
            Background::Transparent,
        ),
        (
            "pip: bottom-right scale 0.4, color",
            Placement {
                anchor: Anchor::BottomRight,
                scale: 0.4,
                ..Placement::default()
            },
            green,
        ),
    ];
    for (name, placement, bg) in placements {
        let rect = placement.rect((W, H), (W, H));
        row(
            name,
            "-",
            time(&frames, |src, _| {
                comp.compose(px(src), 3, rect, &bg, &mut px_mut(&mut canvas))
                    .unwrap()
            }),
        );
    }
}
