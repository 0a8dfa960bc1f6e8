// SPDX-License-Identifier: MPL-2.0
//! One job's processing: a GStreamer pipeline that decodes the input, runs
//! `rbvremove` (the local backend) with the job's model, background and
//! composition, and encodes the requested format. Blocking; run it on a
//! blocking thread.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gst::prelude::*;

use rbv_api::Background;

pub struct Spec<'a> {
    pub input: &'a Path,
    /// The file to write (a .zip for png_sequence).
    pub output: &'a Path,
    pub format: &'a str,
    pub model: &'a str,
    pub background: &'a Background,
    /// The downloaded image of a `Background::Image`.
    pub background_image: Option<&'a Path>,
    pub text_prompt: Option<&'a str>,
    pub composition: Option<String>,
    /// Longest a job may run.
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub duration_seconds: f64,
    pub frames: u64,
    /// The input's frame size.
    pub width: u32,
    pub height: u32,
}

/// File extension and MIME type of a format's output.
pub fn output_kind(format: &str) -> (&'static str, &'static str) {
    match format {
        "mov" => ("mov", "video/quicktime"),
        "mp4" => ("mp4", "video/mp4"),
        "png_sequence" => ("zip", "application/zip"),
        "gif" => ("gif", "image/gif"),
        "webp" => ("webp", "image/webp"),
        _ => ("webm", "video/webm"),
    }
}

/// Whether `format` goes through ffmpeg (GStreamer 1.22 cannot encode it).
pub fn needs_ffmpeg(format: &str, transparent: bool) -> bool {
    matches!(format, "gif" | "webp") || (format == "webm" && transparent)
}

/// Whether ffmpeg runs on this machine.
pub fn ffmpeg_available() -> bool {
    std::process::Command::new("ffmpeg")
        .arg("-version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// ffmpeg's arguments from the lossless intermediate to `format`.
fn ffmpeg_args(format: &str) -> &'static [&'static str] {
    match format {
        // VP9 with an alpha plane: GStreamer decodes it back with alpha
        // (vp9alphadecodebin).
        "webm" => &[
            "-c:v",
            "libvpx-vp9",
            "-pix_fmt",
            "yuva420p",
            "-b:v",
            "0",
            "-crf",
            "32",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-row-mt",
            "1",
        ],
        // One palette for the clip, one colour kept for transparency.
        "gif" => &[
            "-vf",
            "split[a][b];[a]palettegen=reserve_transparent=1[p];[b][p]paletteuse=alpha_threshold=128",
            "-loop",
            "0",
        ],
        _ => &[
            "-c:v",
            "libwebp_anim",
            "-pix_fmt",
            "yuva420p",
            "-q:v",
            "80",
            "-loop",
            "0",
        ],
    }
}

fn tail(format: &str, transparent: bool) -> &'static str {
    if needs_ffmpeg(format, transparent) {
        // Lossless with alpha, for ffmpeg to encode.
        return "videoconvert ! avenc_ffv1 ! matroskamux ! filesink name=sink";
    }
    match format {
        // ProRes 4444 keeps alpha; 422 HQ when the background is opaque.
        "mov" if transparent => {
            "videoconvert ! video/x-raw,format=A444_10LE ! avenc_prores_ks profile=4444 ! qtmux ! filesink name=sink"
        }
        "mov" => {
            "videoconvert ! video/x-raw,format=I422_10LE ! avenc_prores_ks profile=hq ! qtmux ! filesink name=sink"
        }
        "mp4" => {
            "videoconvert ! video/x-raw,format=I420 ! openh264enc bitrate=8000000 complexity=low ! h264parse ! \
             mp4mux ! filesink name=sink"
        }
        "png_sequence" => "videoconvert ! pngenc compression-level=3 ! multifilesink name=sink",
        _ => {
            "videoconvert ! vp8enc deadline=1 cpu-used=4 target-bitrate=8000000 ! webmmux ! filesink name=sink"
        }
    }
}

fn gst_error(e: impl std::fmt::Display) -> String {
    format!("cannot build the processing pipeline: {e}")
}

/// Runs one job; `progress` gets 0-100 as the input is read.
pub fn run(spec: &Spec, mut progress: impl FnMut(f64)) -> Result<Outcome, String> {
    let transparent = *spec.background == Background::Transparent;
    let frames_dir = (spec.format == "png_sequence").then(|| spec.output.with_extension("frames"));
    let via_ffmpeg = needs_ffmpeg(spec.format, transparent);
    let intermediate = spec.output.with_extension("ffv1.mkv");
    let pipeline = gst::parse::launch(&format!(
        "filesrc name=src ! decodebin name=dec ! videoconvert ! queue ! rbvremove name=rbv ! {}",
        tail(spec.format, transparent)
    ))
    .map_err(gst_error)?
    .downcast::<gst::Pipeline>()
    .map_err(|_| gst_error("not a pipeline"))?;
    let by = |n: &str| pipeline.by_name(n).expect("named in the description");
    by("src").set_property("location", spec.input);
    match &frames_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            by("sink").set_property("location", dir.join("frame_%05d.png"));
        }
        None if via_ffmpeg => by("sink").set_property("location", &intermediate),
        None => by("sink").set_property("location", spec.output),
    }
    let rbv = by("rbv");
    rbv.set_property_from_str("model", spec.model);
    match spec.background {
        Background::Transparent => rbv.set_property_from_str("background", "transparent"),
        Background::Color(c) => {
            rbv.set_property_from_str("background", "color");
            rbv.set_property(
                "background-color",
                format!("#{:02X}{:02X}{:02X}", c[0], c[1], c[2]),
            );
        }
        Background::Image(_) => {
            let path = spec
                .background_image
                .ok_or("the background image was not fetched")?;
            rbv.set_property_from_str("background", "image");
            rbv.set_property("background-image", path.to_string_lossy().as_ref());
        }
    }
    if let Some(p) = spec.text_prompt {
        rbv.set_property("text-prompt", p);
    }
    if let Some(c) = &spec.composition {
        rbv.set_property("composition", c.as_str());
    }
    // Frames out of the element, and the input's size.
    let frames = Arc::new(AtomicU64::new(0));
    let counter = frames.clone();
    let src_pad = rbv.static_pad("src").expect("rbvremove has a src pad");
    src_pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        counter.fetch_add(1, Ordering::Relaxed);
        gst::PadProbeReturn::Ok
    });
    let bus = pipeline.bus().expect("a pipeline has a bus");
    // The element refuses bad strings with a warning and keeps its value:
    // a job must not run with settings it did not ask for.
    if let Some(msg) = bus.pop_filtered(&[gst::MessageType::Warning])
        && let gst::MessageView::Warning(w) = msg.view()
    {
        return Err(w.error().to_string());
    }

    let result = (|| {
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| "the processing pipeline does not start".to_string())?;
        let start = Instant::now();
        let mut last = -1.0;
        loop {
            if start.elapsed() > spec.timeout {
                return Err(format!(
                    "processing took longer than {} s",
                    spec.timeout.as_secs()
                ));
            }
            if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(200)) {
                match msg.view() {
                    gst::MessageView::Eos(_) => break,
                    gst::MessageView::Error(e) => {
                        let src = e.src().map(|s| s.name().to_string()).unwrap_or_default();
                        return Err(
                            if src.starts_with("dec")
                                || src.starts_with("src")
                                || src.contains("demux")
                                || src.contains("typefind")
                            {
                                format!("the input video cannot be read: {}", e.error())
                            } else {
                                e.error().to_string()
                            },
                        );
                    }
                    _ => {}
                }
            }
            let pos = pipeline.query_position::<gst::ClockTime>();
            let dur = pipeline.query_duration::<gst::ClockTime>();
            if let (Some(p), Some(d)) = (pos, dur)
                && d.nseconds() > 0
            {
                let pct = (100.0 * p.nseconds() as f64 / d.nseconds() as f64).clamp(0.0, 99.0);
                if pct - last >= 1.0 {
                    last = pct;
                    progress(pct);
                }
            }
        }
        let caps = rbv
            .static_pad("sink")
            .and_then(|p| p.current_caps())
            .ok_or("the input has no video stream")?;
        let info = gst_video::VideoInfo::from_caps(&caps).map_err(|e| e.to_string())?;
        let duration = pipeline
            .query_duration::<gst::ClockTime>()
            .or_else(|| pipeline.query_position::<gst::ClockTime>())
            .map_or(0.0, |d| d.nseconds() as f64 / 1e9);
        Ok(Outcome {
            duration_seconds: duration,
            frames: frames.load(Ordering::Relaxed),
            width: info.width(),
            height: info.height(),
        })
    })();
    let _ = pipeline.set_state(gst::State::Null);
    let outcome = result?;
    if outcome.frames == 0 {
        return Err("the input has no video frames".into());
    }
    if let Some(dir) = frames_dir {
        let zipped = zip_dir(&dir, spec.output);
        let _ = std::fs::remove_dir_all(&dir);
        zipped?;
    }
    if via_ffmpeg {
        let encoded = ffmpeg(&intermediate, spec.output, spec.format);
        let _ = std::fs::remove_file(&intermediate);
        encoded?;
    }
    Ok(outcome)
}

fn ffmpeg(input: &Path, output: &Path, format: &str) -> Result<(), String> {
    let out = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i"])
        .arg(input)
        .arg("-an")
        .args(ffmpeg_args(format))
        .arg(output)
        .output()
        .map_err(|e| format!("cannot run ffmpeg for {format}: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or("no message");
        return Err(format!("ffmpeg could not write {format}: {last}"));
    }
    Ok(())
}

/// The frames' PNGs in one .zip (stored: PNG is already compressed).
fn zip_dir(dir: &Path, out: &Path) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("writing {}: {e}", out.display());
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| err(&e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    names.sort();
    let file = std::fs::File::create(out).map_err(|e| err(&e))?;
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(false);
    for p in names {
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("frame.png");
        zip.start_file(name, options).map_err(|e| err(&e))?;
        let bytes = std::fs::read(&p).map_err(|e| err(&e))?;
        zip.write_all(&bytes).map_err(|e| err(&e))?;
    }
    zip.finish().map_err(|e| err(&e))?;
    Ok(())
}

/// What GStreamer's type finder says a file is, as one of the upload types
/// the service takes: (MIME type, file extension).
pub fn sniff_video(head: &[u8]) -> Option<(&'static str, &'static str)> {
    let caps = gst_base::functions::type_find_helper_for_data(None::<&gst::Object>, head)
        .ok()?
        .0;
    let name = caps.structure(0)?.name().to_string();
    match name.as_str() {
        "video/quicktime" => {
            // mp4 and mov share the container; the brand tells them apart.
            let variant = caps
                .structure(0)
                .and_then(|s| s.get::<String>("variant").ok())
                .unwrap_or_default();
            if variant == "apple" {
                Some(("video/quicktime", "mov"))
            } else {
                Some(("video/mp4", "mp4"))
            }
        }
        "video/webm" => Some(("video/webm", "webm")),
        "video/x-matroska" => Some(("video/x-matroska", "mkv")),
        "video/x-msvideo" => Some(("video/x-msvideo", "avi")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing_takes_video_containers_only() {
        gst::init().unwrap();
        let path = std::env::temp_dir().join(format!("rbv-sniff-{}.webm", std::process::id()));
        let p = gst::parse::launch(&format!(
            "videotestsrc num-buffers=2 ! video/x-raw,width=64,height=48 ! vp8enc ! webmmux ! \
             filesink location={}",
            path.display()
        ))
        .unwrap();
        p.set_state(gst::State::Playing).unwrap();
        let bus = p.bus().unwrap();
        bus.timed_pop_filtered(gst::ClockTime::from_seconds(10), &[gst::MessageType::Eos])
            .expect("encoded");
        p.set_state(gst::State::Null).unwrap();
        let webm = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(sniff_video(&webm), Some(("video/webm", "webm")));
        assert_eq!(
            sniff_video(b"#!/bin/sh\necho hello, this is not a video\n"),
            None
        );
        let png =
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
        assert_eq!(sniff_video(png), None);
    }

    #[test]
    fn every_offered_format_has_an_encoder_tail() {
        for f in rbv_api::api::OUTPUT_FORMATS {
            for transparent in [false, true] {
                assert!(tail(f, transparent).contains("name=sink"));
            }
            assert!(!output_kind(f).0.is_empty());
        }
    }
}
