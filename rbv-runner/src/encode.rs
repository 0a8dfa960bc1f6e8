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

    /// Whether the format can hold sound: MOV (PCM), MP4 (AAC), WebM and
    /// Matroska (Opus) do; GIF, WebP and PNG do not.
    pub fn holds_audio(self) -> bool {
        match self {
            Target::Ffv1 => true,
            Target::PngFrames => false,
            Target::Service(f) => matches!(
                f,
                OutputFormat::Mov | OutputFormat::Mp4 | OutputFormat::Webm
            ),
        }
    }

    /// What the format is, as a user names it (in "cannot hold sound").
    pub fn kind(self) -> &'static str {
        match self {
            Target::Ffv1 => "Matroska (FFV1)",
            Target::PngFrames => "PNG",
            Target::Service(OutputFormat::Gif) => "GIF",
            Target::Service(OutputFormat::Webp) => "WebP",
            Target::Service(OutputFormat::PngSequence) => "a zip of PNG frames",
            Target::Service(OutputFormat::Mov) => "MOV",
            Target::Service(OutputFormat::Mp4) => "MP4",
            Target::Service(OutputFormat::Webm) => "WebM",
        }
    }
}

/// What the sound becomes after the audio branch's raw 16-bit PCM, into
/// the muxer named `mux`: `None` where the target holds no sound, `""`
/// where the PCM goes in as it is. `part`: a segment's lossless part (the
/// join encodes it), which keeps PCM.
pub(crate) fn audio_tail(target: Target, transparent: bool, part: bool) -> Option<&'static str> {
    const OPUS: &str = "audioconvert ! opusenc bitrate=128000";
    const AAC: &str = "audioconvert ! avenc_aac bitrate=192000";
    if !target.holds_audio() {
        return None;
    }
    Some(match target {
        Target::Ffv1 if part => "",
        Target::Ffv1 => OPUS,
        // PCM in the intermediate; ffmpeg makes it Opus.
        _ if target.needs_ffmpeg(transparent) => "",
        Target::Service(OutputFormat::Mov) => "",
        Target::Service(OutputFormat::Mp4) => AAC,
        _ => OPUS,
    })
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

/// Encoded frames wait here for the muxer: it takes the streams in turns
/// (qtmux in chunks of 250 ms), so the picture must be able to run that
/// far ahead of what it has taken, or the sound's gate, which waits for the
/// picture, and the muxer, which waits for the sound, wait for each other.
macro_rules! to_mux {
    () => {
        "queue max-size-buffers=0 max-size-bytes=0 max-size-time=1000000000 ! "
    };
}

const FFV1: &str = concat!(
    "videoconvert ! avenc_ffv1 ! ",
    to_mux!(),
    "matroskamux name=mux ! filesink name=sink"
);

/// The pipeline's tail after `rbvremove`, ending in an element named `sink`
/// with a `location`; the muxer, where there is one, is named `mux` (the
/// sound goes into it).
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
        OutputFormat::Mov if transparent => concat!(
            "videoconvert ! video/x-raw,format=A444_10LE ! avenc_prores_ks profile=4444 ! ",
            to_mux!(),
            "qtmux name=mux ! filesink name=sink"
        ),
        OutputFormat::Mov => concat!(
            "videoconvert ! video/x-raw,format=I422_10LE ! avenc_prores_ks profile=hq ! ",
            to_mux!(),
            "qtmux name=mux ! filesink name=sink"
        ),
        OutputFormat::Mp4 => concat!(
            "videoconvert ! video/x-raw,format=I420 ! openh264enc bitrate=8000000 complexity=low ! h264parse ! ",
            to_mux!(),
            "mp4mux name=mux ! filesink name=sink"
        ),
        OutputFormat::PngSequence => {
            "videoconvert ! pngenc compression-level=3 ! multifilesink name=sink"
        }
        OutputFormat::Webm | OutputFormat::Gif | OutputFormat::Webp => concat!(
            "videoconvert ! vp8enc deadline=1 cpu-used=4 target-bitrate=8000000 ! ",
            to_mux!(),
            "webmmux name=mux ! filesink name=sink"
        ),
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

/// ffmpeg's arguments for the sound: the intermediate's PCM to Opus in
/// WebM (when there is any: `?`), none in GIF and WebP.
fn ffmpeg_audio_args(format: OutputFormat) -> &'static [&'static str] {
    match format {
        OutputFormat::Webm => &[
            "-map", "0:v:0", "-map", "0:a:0?", "-c:a", "libopus", "-b:a", "128k",
        ],
        _ => &["-an"],
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
        .args(ffmpeg_audio_args(format))
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
