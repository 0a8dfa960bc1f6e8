// SPDX-License-Identifier: MPL-2.0
//! `rbv local`: the file through `rbvremove` on this machine, by the same
//! file-job runner `rbv serve` uses.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rbv_api::OutputFormat;
use rbv_runner::{Failure, Spec, Target};

use crate::progress::{Progress, job_line, megabytes};
use crate::{Args, Fail, LOCAL_OPTIONS, REMOTE_ONLY, USAGE, prop};

/// What `-o OUT` asks for, by its extension.
fn target(out: &str, transparent: bool) -> Result<Target, Fail> {
    let ext = Path::new(out)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    Ok(match ext.as_str() {
        // One PNG per frame with a %d pattern; a single picture without.
        "png" => Target::PngFrames,
        "mkv" => Target::Ffv1,
        // ProRes 4444 with alpha (422 HQ over a background): what editors open.
        "mov" => Target::Service(OutputFormat::Mov),
        // VP9 with alpha (by ffmpeg), VP8 over a background.
        "webm" => Target::Service(OutputFormat::Webm),
        "gif" => Target::Service(OutputFormat::Gif),
        "webp" => Target::Service(OutputFormat::Webp),
        "mp4" if transparent => {
            return Err(Fail::Input(format!(
                "{out}: MP4 (H.264) keeps no alpha: write .mov, .webm or .mkv, or set --background"
            )));
        }
        "mp4" => Target::Service(OutputFormat::Mp4),
        _ => {
            return Err(Fail::Input(format!(
                "{out}: write .mov (ProRes 4444, alpha), .webm (VP9, alpha), .mkv (FFV1, \
                 alpha), .gif, .webp, .mp4 (with a background), a .png for a picture or a \
                 %d.png pattern (one PNG per frame)"
            )));
        }
    })
}

/// `-o cut.png` (no %d) writes one picture: the input must be one.
fn check_single_picture(input: &Path, out: &str) -> Result<(), Fail> {
    // A picture has no video stream to the probe (image/jpeg, image/png):
    // only a stream of more than one frame is refused; other failures are
    // the job's to report.
    let Ok(probe) = rbv_runner::probe(input, std::time::Duration::from_secs(60)) else {
        return Ok(());
    };
    if probe.frames > 1 {
        return Err(Fail::Input(format!(
            "{}: {} frames, and {out} is one picture: write a pattern such as \
             {} (one PNG per frame), or a video file",
            input.display(),
            probe.frames,
            out.trim_end_matches(".png").to_owned() + "_%05d.png"
        )));
    }
    Ok(())
}

pub fn run(args: &Args) -> Result<(), Fail> {
    for (name, _) in &args.props {
        if REMOTE_ONLY.contains(&name.as_str()) {
            return Err(Fail::Input(format!("--{name} is for rbv remote")));
        }
        if !LOCAL_OPTIONS.contains(&name.as_str()) {
            return Err(Fail::Input(format!("--{name}: no such option\n\n{USAGE}")));
        }
    }
    check_input(Path::new(&args.input))?;
    let out = args.output.to_string_lossy().into_owned();
    if args.output.is_dir() {
        return Err(Fail::Input(format!(
            "{out} is a folder: -o names the file to write, such as {}",
            args.output.join("cut.mov").display()
        )));
    }
    let transparent = matches!(prop(args, "background"), None | Some("transparent"));
    let target = target(&out, transparent)?;
    if target == Target::PngFrames && !out.contains('%') {
        check_single_picture(Path::new(&args.input), &out)?;
    }
    // Said before the work: a format that cannot hold the input's sound.
    let with_sound =
        rbv_runner::streams(Path::new(&args.input), std::time::Duration::from_secs(20))
            .is_ok_and(|s| s.audio);
    if with_sound && !target.holds_audio() {
        eprintln!(
            "rbv: {out} is {}, which holds no sound: the input's sound is left out \
             (write .mov, .mp4, .webm or .mkv to keep it)",
            article(target.kind())
        );
    }
    let existed = args.output.exists();
    let stop = Arc::new(AtomicBool::new(false));
    let spec = Spec {
        input: Path::new(&args.input),
        output: &args.output,
        target,
        properties: args.props.clone(),
        timeout: None,
        stop: Some(stop.clone()),
        frames: None,
    };
    on_ctrl_c(
        stop,
        args.output.clone(),
        existed,
        std::time::SystemTime::now(),
        spec.written(),
    );
    let started = Instant::now();
    let progress = std::cell::RefCell::new(Progress::new());
    let outcome = rbv_runner::run_warned(
        &spec,
        &rbv_runner::Limits::default(),
        |p| {
            let line = job_line(
                p.frames,
                p.position.seconds_f64(),
                p.duration.seconds_f64(),
                started.elapsed().as_secs_f64(),
            );
            progress
                .borrow_mut()
                .show_detail("removing the background", &line, p.percent())
        },
        |warning| progress.borrow().note(&format!("rbv: warning: {warning}")),
    )
    .map_err(
        |f| match spec.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
            // Ctrl-C, and the job did not finish a file: the input's
            // readers stop with errors of their own. Nothing was written
            // at OUT (the job writes beside it).
            true => Fail::Interrupted(format!(
                "interrupted: nothing written ({})",
                left_as(&out, existed)
            )),
            false => failure(f, &args.input, &out),
        },
    )?;
    let progress = progress.into_inner();
    let size = std::fs::metadata(&args.output).map_or(0, |m| m.len());
    let took = started.elapsed().as_secs_f64();
    let mut summary = format!(
        "wrote {out}: {} frame{} in {took:.1} s ({:.1} fps){}",
        outcome.frames,
        if outcome.frames == 1 { "" } else { "s" },
        outcome.frames as f64 / took.max(1e-3),
        if size > 0 {
            format!(", {}", megabytes(size))
        } else {
            String::new()
        }
    );
    if outcome.audio_kept {
        summary.push_str(", with the input's sound");
    }
    progress.done(&summary);
    if outcome.interrupted {
        return Err(Fail::Interrupted(format!(
            "interrupted: {out} is complete with the {} frame{} done before Ctrl-C",
            outcome.frames,
            if outcome.frames == 1 { "" } else { "s" }
        )));
    }
    Ok(())
}

/// "a GIF", "a zip of PNG frames" (the formats that hold no sound).
fn article(kind: &str) -> String {
    match kind.starts_with("a ") {
        true => kind.to_owned(),
        false => format!("a {kind}"),
    }
}

/// What is at the output path after a job that wrote nothing.
fn left_as(out: &str, existed: bool) -> String {
    match existed {
        true => format!("{out} is as it was"),
        false => format!("{out} was not created"),
    }
}

/// Ctrl-C once: the input is ended where it is and the output finished (a
/// complete, shorter file). Twice: what the job was writing beside the
/// output (`written`) is removed and rbv exits at once; the output path is
/// as it was before (the job renames its file there only when done, so a
/// second Ctrl-C just after that rename says the file is complete).
fn on_ctrl_c(
    stop: Arc<AtomicBool>,
    output: PathBuf,
    existed: bool,
    started: std::time::SystemTime,
    written: Vec<PathBuf>,
) {
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            while tokio::signal::ctrl_c().await.is_ok() {
                if !stop.swap(true, Ordering::SeqCst) {
                    eprintln!(
                        "\nrbv: stopping: finishing {} with the frames done so far \
                         (Ctrl-C again to abort: then nothing is written)",
                        output.display()
                    );
                } else {
                    let renamed = written.first().is_some_and(|t| !t.exists())
                        && std::fs::metadata(&output)
                            .and_then(|m| m.modified())
                            .is_ok_and(|t| t >= started);
                    remove(&written, &output);
                    match renamed {
                        true => eprintln!(
                            "\nrbv: aborted, but {} was complete already (written before the second Ctrl-C)",
                            output.display()
                        ),
                        false => eprintln!(
                            "\nrbv: aborted: nothing written ({})",
                            left_as(&output.to_string_lossy(), existed)
                        ),
                    }
                    // At once: the job's threads, stopped mid-frame, would
                    // only add errors of their own.
                    crate::exit(130);
                }
            }
        });
    });
}

/// Removes what a job wrote (`Spec::written`); the output is never a
/// folder of the user's to empty.
fn remove(written: &[PathBuf], output: &Path) {
    for path in written {
        let _ = match path.is_dir() && path != output {
            true => std::fs::remove_dir_all(path),
            false => std::fs::remove_file(path),
        };
    }
}

/// The input must be a readable file: named when it is not.
fn check_input(input: &Path) -> Result<(), Fail> {
    let shown = input.display();
    let meta = std::fs::metadata(input).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Fail::Input(format!("{shown}: no such file")),
        _ => Fail::Input(format!("{shown}: {e}")),
    })?;
    if meta.is_dir() {
        return Err(Fail::Input(format!(
            "{shown}: is a directory, not a video or image file"
        )));
    }
    std::fs::File::open(input).map_err(|e| Fail::Input(format!("{shown}: {e}")))?;
    Ok(())
}

/// A runner failure as the user reads it: which file or option, GStreamer's
/// own text and its debug detail; bad input (exit 2) when the input, the
/// output path or an option is at fault.
fn failure(f: Failure, input: &str, out: &str) -> Fail {
    let unreadable = f.input_unreadable();
    match f {
        Failure::NoProperty(name) => Fail::Input(format!("--{name}: no such option\n\n{USAGE}")),
        Failure::Property { name, value, why } => Fail::Input(format!("--{name} {value}: {why}")),
        Failure::Refused(why) => Fail::Input(why),
        Failure::NoFrames => Fail::Input(format!("{input}: has no video frames")),
        Failure::Output(why) => Fail::Input(why),
        Failure::Pipeline {
            error,
            source,
            debug,
        } => {
            let detail = debug
                .map(|d| format!("\n  (GStreamer: {d})"))
                .unwrap_or_default();
            if unreadable {
                Fail::Input(format!(
                    "{input}: cannot be read as a video or image: {error}{detail}"
                ))
            } else if source == "sink" {
                Fail::Input(format!("{out}: cannot be written: {error}{detail}"))
            } else if error.is::<gst::LibraryError>() || error.is::<gst::ResourceError>() {
                Fail::Input(format!("{error}{detail}"))
            } else {
                Fail::Other(format!("{input}: {error}{detail}"))
            }
        }
        other => Fail::Other(other.to_string()),
    }
}
