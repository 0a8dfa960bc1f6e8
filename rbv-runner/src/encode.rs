// SPDX-License-Identifier: MPL-2.0
//! What a job writes: the GStreamer encoder tail of each target, and the
//! steps after the pipeline (ffmpeg for what GStreamer 1.22 cannot encode,
//! the .zip of PNG frames).

use std::io::Write;
use std::path::{Path, PathBuf};

use rbv_api::OutputFormat;

/// What a job's output file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// FFV1 in Matroska: lossless, alpha kept (`rbv local x.mkv`).
    Ffv1,
    /// One PNG per frame; the output path is a `%d` pattern.
    PngFrames,
    /// One of the service's formats (`rbv serve`, `rbv local x.webm`).
    Service(OutputFormat),
}

impl Target {
    /// Whether the pipeline writes an intermediate for ffmpeg to encode.
    pub fn needs_ffmpeg(self, transparent: bool) -> bool {
        match self {
            Target::Service(f) => needs_ffmpeg(f, transparent),
            _ => false,
        }
    }
}

/// Whether `format` goes through ffmpeg (GStreamer 1.22 cannot encode it).
pub fn needs_ffmpeg(format: OutputFormat, transparent: bool) -> bool {
    matches!(format, OutputFormat::Gif | OutputFormat::Webp)
        || (format == OutputFormat::Webm && transparent)
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

const FFV1: &str = "videoconvert ! avenc_ffv1 ! matroskamux ! filesink name=sink";

/// The pipeline's tail after `rbvremove`, ending in an element named `sink`
/// with a `location`.
pub fn tail(target: Target, transparent: bool) -> &'static str {
    let format = match target {
        Target::Ffv1 => return FFV1,
        Target::PngFrames => {
            return "videoconvert ! pngenc compression-level=3 ! multifilesink name=sink";
        }
        Target::Service(f) => f,
    };
    if needs_ffmpeg(format, transparent) {
        // Lossless with alpha, for ffmpeg to encode.
        return FFV1;
    }
    match format {
        // ProRes 4444 keeps alpha; 422 HQ when the background is opaque.
        OutputFormat::Mov if transparent => {
            "videoconvert ! video/x-raw,format=A444_10LE ! avenc_prores_ks profile=4444 ! qtmux ! filesink name=sink"
        }
        OutputFormat::Mov => {
            "videoconvert ! video/x-raw,format=I422_10LE ! avenc_prores_ks profile=hq ! qtmux ! filesink name=sink"
        }
        OutputFormat::Mp4 => {
            "videoconvert ! video/x-raw,format=I420 ! openh264enc bitrate=8000000 complexity=low ! h264parse ! \
             mp4mux ! filesink name=sink"
        }
        OutputFormat::PngSequence => {
            "videoconvert ! pngenc compression-level=3 ! multifilesink name=sink"
        }
        OutputFormat::Webm | OutputFormat::Gif | OutputFormat::Webp => {
            "videoconvert ! vp8enc deadline=1 cpu-used=4 target-bitrate=8000000 ! webmmux ! filesink name=sink"
        }
    }
}

/// ffmpeg's arguments from the lossless intermediate to `format`.
fn ffmpeg_args(format: OutputFormat) -> &'static [&'static str] {
    match format {
        // VP9 with an alpha plane: GStreamer decodes it back with alpha
        // (vp9alphadecodebin).
        OutputFormat::Webm => &[
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
        OutputFormat::Gif => &[
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

/// Encodes the lossless `input` to `output` in `format` with ffmpeg; stops
/// it at `deadline`.
pub fn ffmpeg(
    input: &Path,
    output: &Path,
    format: OutputFormat,
    deadline: Option<std::time::Instant>,
) -> Result<(), String> {
    use std::io::Read;
    let mut child = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i"])
        .arg(input)
        .arg("-an")
        .args(ffmpeg_args(format))
        .arg(output)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run ffmpeg for {format}: {e}"))?;
    let mut stderr = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if deadline.is_some_and(|d| std::time::Instant::now() > d) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("ffmpeg did not finish {format} in time"));
            }
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(20)),
            Err(e) => return Err(format!("ffmpeg for {format}: {e}")),
        }
    };
    let err = reader.join().unwrap_or_default();
    if !status.success() {
        let last = err.lines().last().unwrap_or("no message");
        return Err(format!("ffmpeg could not write {format}: {last}"));
    }
    Ok(())
}

/// The frames' PNGs in one .zip (stored: PNG is already compressed).
pub fn zip_dir(dir: &Path, out: &Path) -> Result<(), String> {
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
