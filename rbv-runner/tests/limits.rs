// SPDX-License-Identifier: MPL-2.0
// The runner's caps on untrusted input, on bombs made here with ffmpeg:
// a 16000x16000 VP8 clip is refused from its caps (and, with a container
// that lies about the size, from the VP8 keyframe header) before a frame is
// decoded; the probe reads size, frames and media time without decoding,
// whatever the container's header claims.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rbv_runner::{Failure, Limits, Spec, Target};

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rbv-runner-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn ffmpeg(args: &[&str], out: &Path) {
    let st = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y"])
        .args(args)
        .arg(out)
        .status()
        .expect("ffmpeg (installed by setup/setup.sh)");
    assert!(st.success());
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap()
        / 1024.0
}

/// Replaces the only occurrence of `from` with `to` (same length).
fn patch(bytes: &mut [u8], from: &[u8], to: &[u8]) {
    let at: Vec<usize> = bytes
        .windows(from.len())
        .enumerate()
        .filter(|(_, w)| *w == from)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 1, "{from:x?} found {} times", at.len());
    bytes[at[0]..at[0] + to.len()].copy_from_slice(to);
}

fn job(input: &Path, dir: &Path, limits: &Limits) -> Result<rbv_runner::Outcome, Failure> {
    let out = dir.join("out.mkv");
    let spec = Spec {
        input,
        output: &out,
        target: Target::Ffv1,
        properties: vec![("model".into(), "human".into())],
        timeout: Some(Duration::from_secs(120)),
        stop: None,
        frames: None,
    };
    rbv_runner::run_limited(&spec, limits, |_| {})
}

const CAP: Limits = Limits {
    max_pixels: Some(4096 * 2160),
    max_frames: None,
    max_duration: None,
};

#[test]
fn a_decoded_size_bomb_costs_kilobytes() {
    let dir = scratch("bomb");
    let bomb = rbv_testkit::vp8_bomb(&dir);
    assert!(std::fs::metadata(&bomb).unwrap().len() < 1_000_000);
    let p = rbv_runner::probe(&bomb, Duration::from_secs(30)).unwrap();
    assert_eq!((p.width, p.height, p.frames), (16000, 16000, 2), "{p:?}");

    let before = rss_mib();
    let e = job(&bomb, &dir, &CAP).unwrap_err();
    let grew = rss_mib() - before;
    assert!(matches!(e, Failure::Limit(_)), "{e:?}");
    assert!(e.to_string().contains("16000x16000"), "{e}");
    println!("16000x16000 VP8 refused from its caps: RSS +{grew:.1} MiB");
    // The process's first job loads the plugin, ONNX Runtime, the human
    // model and the detector (about 135 MB); one decoded 16000x16000 frame
    // would be 384 MB.
    assert!(grew < 300.0, "RSS grew {grew:.1} MiB");

    // The same frames in a container that says 320x240: the VP8 keyframe
    // header is read before the decoder sees it.
    let mut bytes = std::fs::read(&bomb).unwrap();
    patch(
        &mut bytes,
        &[0xb0, 0x82, 0x3e, 0x80],
        &[0xb0, 0x82, 0x01, 0x40],
    );
    patch(
        &mut bytes,
        &[0xba, 0x82, 0x3e, 0x80],
        &[0xba, 0x82, 0x00, 0xf0],
    );
    let liar = dir.join("liar.webm");
    std::fs::write(&liar, bytes).unwrap();
    let p = rbv_runner::probe(&liar, Duration::from_secs(30)).unwrap();
    assert_eq!(
        (p.width, p.height),
        (16000, 16000),
        "the keyframe tells: {p:?}"
    );
    let before = rss_mib();
    let e = job(&liar, &dir, &CAP).unwrap_err();
    let grew = rss_mib() - before;
    assert!(e.to_string().contains("16000x16000"), "{e}");
    println!("a container claiming 320x240 over 16000x16000 VP8: RSS +{grew:.1} MiB");
    assert!(grew < 100.0, "RSS grew {grew:.1} MiB");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn frames_and_media_time_are_measured_not_claimed() {
    let dir = scratch("claim");
    let clip = dir.join("clip.webm");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=s=64x48:r=25",
            "-frames:v",
            "25",
            "-c:v",
            "libvpx",
            "-b:v",
            "200k",
        ],
        &clip,
    );
    // The header's Duration (ms, a double) says 10 hours.
    let mut bytes = std::fs::read(&clip).unwrap();
    let at = bytes
        .windows(3)
        .position(|w| w == [0x44, 0x89, 0x88])
        .expect("a Duration element");
    bytes[at + 3..at + 11].copy_from_slice(&36_000_000f64.to_be_bytes());
    std::fs::write(&clip, &bytes).unwrap();
    let p = rbv_runner::probe(&clip, Duration::from_secs(30)).unwrap();
    assert_eq!(p.frames, 25);
    assert!((p.seconds - 1.0).abs() < 0.01, "{p:?}");
    assert!(p.claimed_seconds.unwrap() > 35_000.0, "{p:?}");

    let o = job(&clip, &dir, &Limits::default()).unwrap();
    assert_eq!(o.frames, 25);
    assert!((o.processed_seconds - 1.0).abs() < 0.01, "{o:?}");

    // Frame and media-time caps stop a job as frames pass.
    let e = job(
        &clip,
        &dir,
        &Limits {
            max_frames: Some(10),
            ..Limits::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("more than 10 frames"), "{e}");
    let e = job(
        &clip,
        &dir,
        &Limits {
            max_duration: Some(Duration::from_millis(400)),
            ..Limits::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("longer than 0.4 s"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn what_is_not_a_video_is_named_by_the_probe() {
    let dir = scratch("probe-bad");
    let clip = dir.join("clip.webm");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=s=64x48:r=25",
            "-frames:v",
            "5",
            "-c:v",
            "libvpx",
        ],
        &clip,
    );
    // Zero padding after real frames: the demuxer has to read it.
    let mut bytes = std::fs::read(&clip).unwrap();
    bytes.resize(4_900_000, 0);
    let padded = dir.join("padded.webm");
    std::fs::write(&padded, &bytes).unwrap();
    let p = rbv_runner::probe(&padded, Duration::from_secs(30)).unwrap();
    assert_eq!(p.frames, 5);
    assert!(p.media_bytes < 100_000, "the padding is no media: {p:?}");
    // A header and nothing after it.
    let head = dir.join("head.webm");
    std::fs::write(&head, &std::fs::read(&clip).unwrap()[..300]).unwrap();
    assert!(rbv_runner::probe(&head, Duration::from_secs(30)).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_video_with_sound_is_probed_to_its_end() {
    // Two streams: each gets its own sink; one that waited to preroll would
    // hold the demuxer before the other could, and the probe would run out
    // its time instead of counting the frames.
    let dir = scratch("probe-audio");
    let clip = dir.join("clip.webm");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=s=64x48:r=25:d=2",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=2",
            "-c:v",
            "libvpx",
            "-c:a",
            "libopus",
            "-shortest",
        ],
        &clip,
    );
    let p = rbv_runner::probe(&clip, Duration::from_secs(20)).unwrap();
    assert_eq!((p.width, p.height), (64, 48), "{p:?}");
    assert!((49..=51).contains(&p.frames), "{p:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
