// SPDX-License-Identifier: MPL-2.0
// The input's sound in every output format that can hold it, through the
// real element and encoders, measured from the decoded output: the sound
// lasts as long as the picture (within one frame) and a beep made with a
// flash is heard when the flash is seen (within one frame), also when the
// job is stopped early, composed, or cut into segments and joined. And the
// output is written whole or not at all: a failing job leaves the file
// that was there byte for byte, and the input is never the output.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rbv_api::OutputFormat;
use rbv_runner::{Failure, Outcome, Spec, Target, plan_segments};
use rbv_testkit::av::{assert_in_sync, decode_av, flash_and_beep};

fn spec<'a>(input: &'a Path, output: &'a Path, target: Target, props: &[(&str, &str)]) -> Spec<'a> {
    Spec {
        input,
        output,
        target,
        properties: std::iter::once(("model", "human"))
            .chain(props.iter().copied())
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        timeout: Some(Duration::from_secs(300)),
        stop: None,
        frames: None,
    }
}

fn run(s: &Spec) -> Outcome {
    rbv_runner::run(s, |_| {}).unwrap_or_else(|f| panic!("{}: {f}", s.output.display()))
}

fn scratch(name: &str) -> (PathBuf, PathBuf) {
    rbv_testkit::init();
    rbv_runner::init().unwrap();
    let dir = rbv_testkit::scratch(name);
    let input = dir.join("in.mp4");
    // 3 s, the flash and the beep at 2.0 s (frame 50).
    flash_and_beep(&input, 3, 50);
    (dir, input)
}

#[test]
fn sound_is_kept_in_sync_in_every_format_that_holds_it() {
    let (dir, input) = scratch("runner-audio");
    let source = decode_av(&input);
    assert_in_sync(&source, "the input");
    assert!(
        source.flash.is_some() && source.beep.is_some(),
        "{source:?}"
    );
    let composition =
        r#"{"canvas":{"width":400,"height":300},"foreground":{"anchor":"top-left","scale":0.5}}"#;
    let blur = ("background", "blur");
    type Case<'a> = (&'a str, Target, Vec<(&'a str, &'a str)>);
    let cases: [Case; 6] = [
        ("out.mkv", Target::Ffv1, vec![]),
        ("out.mov", Target::Service(OutputFormat::Mov), vec![]),
        // VP9 with alpha, by ffmpeg from the lossless intermediate.
        ("out.webm", Target::Service(OutputFormat::Webm), vec![]),
        // VP8 by GStreamer over a background (the blurred frame keeps the
        // flash white).
        (
            "opaque.webm",
            Target::Service(OutputFormat::Webm),
            vec![blur],
        ),
        ("out.mp4", Target::Service(OutputFormat::Mp4), vec![blur]),
        // A composition changes nothing to the sound.
        (
            "composed.mov",
            Target::Service(OutputFormat::Mov),
            vec![("composition", composition), blur],
        ),
    ];
    for (name, target, props) in cases {
        let out = dir.join(name);
        let o = run(&spec(&input, &out, target, &props));
        assert!(o.audio_kept && !o.audio_dropped, "{name}: {o:?}");
        let d = decode_av(&out);
        assert_eq!(d.frames, 75, "{name}");
        assert_in_sync(&d, name);
        // The flash is in the picture (the composition's is a smaller
        // white square on a blurred, mostly white canvas, at the same frame).
        assert!(d.flash.is_some(), "{name}: {d:?}");
    }
    // Formats that hold no sound say so and have none.
    for (name, target) in [
        ("out.gif", Target::Service(OutputFormat::Gif)),
        ("out.webp", Target::Service(OutputFormat::Webp)),
        ("out.zip", Target::Service(OutputFormat::PngSequence)),
        ("f_%03d.png", Target::PngFrames),
    ] {
        let out = dir.join(name);
        let o = run(&spec(&input, &out, target, &[]));
        assert!(o.audio_dropped && !o.audio_kept, "{name}: {o:?}");
        assert!(!target.holds_audio(), "{name}");
    }
    let gif = decode_av(&dir.join("out.gif"));
    assert!(gif.sound.is_none() && gif.frames == 75, "{gif:?}");
    assert!(dir.join("f_074.png").is_file());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_sound_ends_with_a_stopped_picture_and_survives_the_segment_join() {
    let (dir, input) = scratch("runner-audio-trim");
    // Stopped (as Ctrl-C stops rbv local) once frames are out: the first
    // progress report comes after 200 ms; with `light` (tens of ms a frame,
    // not the selfie model's 2) that is well before the 75th frame on a
    // much faster machine too.
    let out = dir.join("stopped.mov");
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let s = Spec {
        stop: Some(stop),
        ..spec(
            &input,
            &out,
            Target::Service(OutputFormat::Mov),
            &[("model", "light")],
        )
    };
    let o = rbv_runner::run(&s, |p| {
        if p.frames >= 1 {
            stopping.store(true, Ordering::SeqCst);
        }
    })
    .unwrap();
    assert!(o.interrupted && o.audio_kept, "{o:?}");
    let d = decode_av(&out);
    assert!(
        d.frames < 75 && d.picture_seconds() < 2.9,
        "not stopped early: {d:?}"
    );
    assert_in_sync(&d, "stopped");

    // Three segments of 25 frames (the flash is the first frame of the
    // third), each with a warm-up, processed out of order, then joined.
    let plan = plan_segments(75, 25, 10);
    assert_eq!(plan.len(), 3);
    let mut parts = Vec::new();
    for (i, range) in plan.iter().enumerate().rev() {
        let part = dir.join(format!("part{i}.mkv"));
        let s = Spec {
            frames: Some(*range),
            ..spec(&input, &part, Target::Ffv1, &[])
        };
        let o = run(&s);
        assert!(o.audio_kept, "part {i}: {o:?}");
        let d = decode_av(&part);
        assert_eq!(d.frames, 25, "part {i}");
        assert_in_sync(&d, &format!("part {i}"));
        assert!(
            d.sound.unwrap().0.abs() < 0.001,
            "part {i} starts at 0: {d:?}"
        );
        parts.insert(0, part);
    }
    for (name, format) in [
        ("joined.mov", OutputFormat::Mov),
        ("joined.webm", OutputFormat::Webm),
    ] {
        let out = dir.join(name);
        let o = rbv_runner::join(
            &parts,
            &spec(&out, &out, Target::Service(format), &[]),
            |_| {},
        )
        .unwrap();
        assert_eq!(o.frames, 75, "{name}");
        assert!(o.audio_kept, "{name}: {o:?}");
        let d = decode_av(&out);
        assert_in_sync(&d, name);
        // The flash is frame 50 of the picture, as in the input.
        let start = d.picture.unwrap().0;
        assert!(
            (d.flash.unwrap() - start - 2.0).abs() < 0.001,
            "{name}: {d:?}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_failed_job_leaves_the_output_as_it_was_and_never_writes_the_input() {
    let (dir, input) = scratch("runner-atomic");
    let out = dir.join("keep.mov");
    let before = b"the user's earlier output, kept byte for byte".to_vec();
    std::fs::write(&out, &before).unwrap();
    let notes = dir.join("notes.txt");
    std::fs::write(&notes, "not a video\n".repeat(100)).unwrap();
    let mov = Target::Service(OutputFormat::Mov);
    let failures: Vec<(&str, Result<Outcome, Failure>)> = vec![
        (
            "unreadable input",
            rbv_runner::run(&spec(&notes, &out, mov, &[]), |_| {}),
        ),
        (
            "missing model",
            rbv_runner::run(
                &spec(&input, &out, mov, &[("model-path", "/nonexistent/m.onnx")]),
                |_| {},
            ),
        ),
        (
            "timeout",
            rbv_runner::run(
                &Spec {
                    timeout: Some(Duration::from_millis(1)),
                    ..spec(&input, &out, mov, &[])
                },
                |_| {},
            ),
        ),
        (
            "a transparent webm (with its intermediate)",
            rbv_runner::run(
                &spec(
                    &input,
                    &dir.join("keep.webm"),
                    Target::Service(OutputFormat::Webm),
                    &[("model-path", "/nonexistent/m.onnx")],
                ),
                |_| {},
            ),
        ),
    ];
    for (what, result) in failures {
        assert!(result.is_err(), "{what}: {result:?}");
        assert_eq!(
            std::fs::read(&out).unwrap(),
            before,
            "{what}: the output changed"
        );
    }
    // Nothing left beside it.
    let mut left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["in.mp4", "keep.mov", "notes.txt"]);

    // The input as the output, also through links: refused, input intact.
    let original = std::fs::read(&input).unwrap();
    let link = dir.join("link.mp4");
    std::os::unix::fs::symlink(&input, &link).unwrap();
    let hard = dir.join("hard.mp4");
    std::fs::hard_link(&input, &hard).unwrap();
    for (from, to) in [(&input, &input), (&link, &input), (&input, &hard)] {
        let e = rbv_runner::run(
            &spec(
                from,
                to,
                Target::Service(OutputFormat::Mp4),
                &[("background", "blur")],
            ),
            |_| {},
        )
        .unwrap_err();
        assert!(
            matches!(&e, Failure::Output(m) if m.contains("is the input file")),
            "{} -> {}: {e}",
            from.display(),
            to.display()
        );
    }
    assert_eq!(std::fs::read(&input).unwrap(), original);
    // A folder is not a file to write.
    let e = rbv_runner::run(&spec(&input, &dir, Target::Ffv1, &[]), |_| {}).unwrap_err();
    assert!(
        matches!(&e, Failure::Output(m) if m.contains("is a folder")),
        "{e}"
    );
    // A job that succeeds replaces the file whole.
    let o = run(&spec(&input, &out, mov, &[]));
    assert_eq!(o.frames, 75);
    assert_eq!(decode_av(&out).frames, 75);
    std::fs::remove_dir_all(&dir).ok();
}
