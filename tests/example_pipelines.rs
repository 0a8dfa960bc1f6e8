// The runnable examples in pipelines/ (those that need no camera), run as a
// user would run them, with their outputs decoded back and checked.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// The directory holding the plugin (libgstrbv.so) that cargo built with this
/// test: `cargo test` leaves it in target/<profile>/deps beside the test binary,
/// `cargo build` in target/<profile>.
fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    [deps, deps.parent().unwrap()]
        .into_iter()
        .find(|d| d.join("libgstrbv.so").is_file())
        .unwrap_or_else(|| panic!("no libgstrbv.so in or above {}", deps.display()))
        .to_path_buf()
}

fn run_script(script: &str, args: &[&str]) {
    let status = Command::new("bash")
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("pipelines")
                .join(script),
        )
        .args(args)
        .env("GST_PLUGIN_PATH", plugin_dir())
        .status()
        .unwrap();
    assert!(status.success(), "{script} {args:?} failed: {status}");
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rbv-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
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
    let out = dir.join("vtest.mkv");
    run_script(
        "file-to-alpha-mkv.sh",
        &[data("vtest.avi").to_str().unwrap(), out.to_str().unwrap()],
    );
    let (frames, format, clear, opaque) = decode_alpha(&out);
    println!("vtest.mkv: {frames} frames {format}, clear {clear:.2}, opaque {opaque:.3}");
    assert_eq!(frames, 795);
    // Distant pedestrians: the street is most of the frame, the people a small part.
    assert!(clear > 0.8, "clear share {clear:.2}");
    assert!(opaque > 0.002, "opaque share {opaque:.4}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn file_to_png_frames_writes_rgba_pngs_and_preview_renders() {
    init();
    let dir = scratch("png");
    run_script(
        "file-to-png-frames.sh",
        &[
            data("demo_input.webm").to_str().unwrap(),
            dir.to_str().unwrap(),
            "model=human",
        ],
    );
    let mut pngs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    pngs.sort();
    assert_eq!(pngs.len(), 200, "8 s at 25 fps");
    let (frames, format, clear, opaque) = decode_alpha(&pngs[60]);
    println!("frame 60: {format}, clear {clear:.2}, opaque {opaque:.2}");
    assert_eq!((frames, format.as_str()), (1, "RGBA"));
    // A 16:9 close-up of two men: both people and background are large.
    assert!(
        clear > 0.25 && opaque > 0.2,
        "clear {clear:.2} opaque {opaque:.2}"
    );

    // The preview script on a file with alpha.
    let mkv = dir.join("demo.mkv");
    run_script(
        "file-to-alpha-mkv.sh",
        &[
            data("demo_input.webm").to_str().unwrap(),
            mkv.to_str().unwrap(),
        ],
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
