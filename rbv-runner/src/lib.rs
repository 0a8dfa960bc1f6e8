// SPDX-License-Identifier: MPL-2.0
//! One file job through `rbvremove`: the input decoded, the background
//! removed with the element's properties, the output encoded in the target
//! format. The `rbv` command (`rbv local`) and the server (`rbv serve`)
//! both run their jobs through [`run`], so a job is written once.
//! Blocking: run it on a thread of its own.
//!
//! The output is written whole or not at all ([`staging`]), and carries
//! the input's sound where its format can hold it ([`audio`]).

mod audio;
mod encode;
mod limits;
mod probe;
mod range;
mod sniff;
mod staging;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;

pub use encode::{Target, ffmpeg_available, needs_ffmpeg};
pub use limits::{Limits, vp8_keyframe_size};
pub use probe::{Probe, Streams, probe, streams};
pub use range::{FrameRange, plan as plan_segments};
pub use sniff::sniff_video;

/// One job.
#[derive(Debug, Clone)]
pub struct Spec<'a> {
    pub input: &'a Path,
    /// The file to write: a `%d` pattern for [`Target::PngFrames`], a .zip
    /// for png_sequence.
    pub output: &'a Path,
    pub target: Target,
    /// `rbvremove`'s properties as (name, text), set in order: strings as
    /// they are, other types read as gst-launch reads them.
    pub properties: Vec<(String, String)>,
    /// Longest the job may run.
    pub timeout: Option<Duration>,
    /// Set to end the job early (Ctrl-C): the input is ended where it is
    /// and the output finished as a complete, shorter file.
    pub stop: Option<Arc<AtomicBool>>,
    /// Only these frames (a segment of a long input); `None`: all.
    pub frames: Option<FrameRange>,
}

/// Where a job writes while it runs: hidden names beside its output,
/// never the output itself until the end.
struct Scratch {
    /// The output has no background (the properties leave it transparent).
    transparent: bool,
    /// The output's own file (or, for frames, folder) until it is renamed
    /// over the output.
    staged: staging::Staged,
    /// The PNG frames a png_sequence zip is made of.
    frames_dir: Option<PathBuf>,
    /// The lossless FFV1 file ffmpeg encodes the output from.
    intermediate: Option<PathBuf>,
}

impl Spec<'_> {
    fn scratch(&self) -> Scratch {
        let transparent = self
            .properties
            .iter()
            .rev()
            .find(|(n, _)| n == "background")
            .is_none_or(|(_, v)| v == "transparent");
        let png_zip = self.target == Target::Service(rbv_api::OutputFormat::PngSequence);
        Scratch {
            transparent,
            staged: staging::Staged::new(self.output, self.pattern()),
            frames_dir: png_zip.then(|| staging::beside(self.output, "frames", Some("d"))),
            intermediate: self
                .target
                .needs_ffmpeg(transparent)
                .then(|| staging::beside(self.output, "ffv1", Some("mkv"))),
        }
    }

    /// The output is a `%d` pattern of PNG frames, not one file.
    fn pattern(&self) -> bool {
        self.target == Target::PngFrames && self.output.to_string_lossy().contains('%')
    }

    /// Every path the job writes while it runs: the hidden file (or folder
    /// of frames) renamed over the output at the end, and the intermediate
    /// file or folder it is made from; all removed when the job ends. What
    /// a caller that ends the process mid-job (a second Ctrl-C) removes:
    /// never the output itself, which is only ever replaced whole.
    pub fn written(&self) -> Vec<PathBuf> {
        let scratch = self.scratch();
        std::iter::once(scratch.staged.temp)
            .chain(scratch.intermediate)
            .chain(scratch.frames_dir)
            .collect()
    }
}

/// Removes what a job wrote beside its output when it ends, whichever way
/// (what was renamed over the output is gone from here already).
struct Leftovers(Vec<PathBuf>);

impl Drop for Leftovers {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = match p.is_dir() {
                true => std::fs::remove_dir_all(p),
                false => std::fs::remove_file(p),
            };
        }
    }
}

/// What a finished job did.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The input's duration as the pipeline reports it (the container's
    /// claim when it has one).
    pub duration_seconds: f64,
    pub frames: u64,
    /// Media time of the frames `rbvremove` put out: from the first
    /// timestamp to the end of the last frame (what was processed).
    pub processed_seconds: f64,
    /// The input's frame size.
    pub width: u32,
    pub height: u32,
    /// `stop` ended the input before its end.
    pub interrupted: bool,
    /// The input has sound, which the output does not carry (its format
    /// cannot hold it: GIF, WebP, PNG).
    pub audio_dropped: bool,
    /// The output carries the input's sound, in sync and trimmed with the
    /// picture.
    pub audio_kept: bool,
    /// What rbvremove warned about (a prompt's terms that name nothing it
    /// knows, a setting it could not honour), each once.
    pub warnings: Vec<String>,
}

/// Where a job stands, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub position: gst::ClockTime,
    pub duration: gst::ClockTime,
    /// Frames out of `rbvremove` so far.
    pub frames: u64,
}

impl Progress {
    /// 0-100.
    pub fn percent(&self) -> f64 {
        100.0 * self.position.nseconds() as f64 / self.duration.nseconds().max(1) as f64
    }
}

/// Why a job failed.
#[derive(Debug, Clone)]
pub enum Failure {
    /// A property `rbvremove` does not have.
    NoProperty(String),
    /// A value the property cannot take.
    Property {
        name: String,
        value: String,
        why: String,
    },
    /// A value the element refused with a warning (the text names it and why).
    Refused(String),
    /// The pipeline could not be made or started, or a step after it failed.
    Setup(String),
    /// An element posted an error.
    Pipeline {
        error: glib::Error,
        /// The element that posted it.
        source: String,
        debug: Option<String>,
    },
    Timeout(Duration),
    /// The input ended without a video frame.
    NoFrames,
    /// The input is over one of the job's [`Limits`] (the text says which).
    Limit(String),
    /// The output path cannot be written: it is the input, a folder, or in
    /// a folder that does not exist (the text says which). Nothing ran.
    Output(String),
}

impl Failure {
    /// Whether the input could not be read (the source, the type finder, a
    /// demuxer or a decoder failed).
    pub fn input_unreadable(&self) -> bool {
        match self {
            Failure::Pipeline { source, .. } => {
                source.starts_with("dec")
                    || source.starts_with("src")
                    || source.contains("demux")
                    || source.contains("typefind")
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::NoProperty(name) => write!(f, "rbvremove has no property `{name}`"),
            Failure::Property { name, value, why } => write!(f, "{name}={value}: {why}"),
            Failure::Refused(s) | Failure::Setup(s) => f.write_str(s),
            Failure::Pipeline { error, .. } => write!(f, "{error}"),
            Failure::Timeout(t) => write!(f, "processing took longer than {} s", t.as_secs()),
            Failure::NoFrames => f.write_str("the input has no video frames"),
            Failure::Limit(s) | Failure::Output(s) => f.write_str(s),
        }
    }
}

fn setup(e: impl std::fmt::Display) -> Failure {
    Failure::Setup(format!("cannot build the processing pipeline: {e}"))
}

/// A property value from its text: strings as they are, other types as
/// gst-launch reads them, numbers checked against the property's range.
pub fn property_value(pspec: &glib::ParamSpec, text: &str) -> Result<glib::Value, String> {
    let t = pspec.value_type();
    if t == glib::Type::STRING {
        return Ok(text.to_value());
    }
    use glib::{ParamSpecBoolean, ParamSpecDouble, ParamSpecEnum, ParamSpecInt, ParamSpecUInt};
    let expected = if let Some(p) = pspec.downcast_ref::<ParamSpecEnum>() {
        let names = p
            .enum_class()
            .values()
            .iter()
            .map(|v| v.nick())
            .collect::<Vec<_>>()
            .join(", ");
        format!("one of {names}")
    } else if pspec.downcast_ref::<ParamSpecBoolean>().is_some() {
        "true or false".into()
    } else if let Some(p) = pspec.downcast_ref::<ParamSpecUInt>() {
        format!("a whole number from {} to {}", p.minimum(), p.maximum())
    } else if let Some(p) = pspec.downcast_ref::<ParamSpecInt>() {
        format!("a whole number from {} to {}", p.minimum(), p.maximum())
    } else if let Some(p) = pspec.downcast_ref::<ParamSpecDouble>() {
        format!("a number from {} to {}", p.minimum(), p.maximum())
    } else {
        format!("a {} value", t.name())
    };
    let bad = || format!("'{text}' is not {expected}");
    let v = glib::Value::deserialize(text, t).map_err(|_| bad())?;
    let in_range = if let (Some(p), Ok(x)) = (pspec.downcast_ref::<ParamSpecUInt>(), v.get::<u32>())
    {
        (p.minimum()..=p.maximum()).contains(&x)
    } else if let (Some(p), Ok(x)) = (pspec.downcast_ref::<ParamSpecInt>(), v.get::<i32>()) {
        (p.minimum()..=p.maximum()).contains(&x)
    } else if let (Some(p), Ok(x)) = (pspec.downcast_ref::<ParamSpecDouble>(), v.get::<f64>()) {
        (p.minimum()..=p.maximum()).contains(&x)
    } else {
        true
    };
    in_range.then_some(v).ok_or_else(bad)
}

/// GStreamer with the rbv plugin, once per process.
pub fn init() -> Result<(), String> {
    gst::init().map_err(|e| format!("GStreamer: {e}"))?;
    if gst::ElementFactory::find("rbvremove").is_none() {
        gstrbv::plugin_register_static().map_err(|e| format!("rbv plugin: {e}"))?;
    }
    Ok(())
}

/// Runs one job; `progress` is called as the input is read.
pub fn run(spec: &Spec, progress: impl FnMut(Progress)) -> Result<Outcome, Failure> {
    run_limited(spec, &Limits::default(), progress)
}

/// [`run_limited`], with rbvremove's warnings given to `warned` as they
/// come (they are in [`Outcome::warnings`] too): a caller that shows them
/// says what its request did before the work is done.
pub fn run_warned(
    spec: &Spec,
    limits: &Limits,
    progress: impl FnMut(Progress),
    warned: impl FnMut(&str),
) -> Result<Outcome, Failure> {
    run_head(spec, limits, progress, warned, Head::Remove)
}

/// [`run`] within `limits`: the input's frame size is checked before it is
/// decoded, its frames and media time as they are; the job's `timeout`
/// covers the encoding after the pipeline too.
pub fn run_limited(
    spec: &Spec,
    limits: &Limits,
    progress: impl FnMut(Progress),
) -> Result<Outcome, Failure> {
    run_head(spec, limits, progress, |_| {}, Head::Remove)
}

/// Joins `parts`, the lossless files of a long input's segments in order
/// (FFV1 in Matroska, each from time 0, as a [`Spec`] with
/// [`Target::Ffv1`] and a [`FrameRange`] writes them), into `spec.output`
/// in `spec.target`: every frame once, nothing processed again.
/// `spec.input` and `spec.frames` are not read; `spec.properties` only say
/// whether the output is transparent.
pub fn join(
    parts: &[PathBuf],
    spec: &Spec,
    progress: impl FnMut(Progress),
) -> Result<Outcome, Failure> {
    if parts.is_empty() {
        return Err(Failure::NoFrames);
    }
    run_head(
        spec,
        &Limits::default(),
        progress,
        |_| {},
        Head::Join(parts),
    )
}

/// What feeds a job's encoder tail.
#[derive(Clone, Copy)]
enum Head<'a> {
    /// The input, decoded, through `rbvremove`.
    Remove,
    /// Lossless parts, decoded and played one after another.
    Join(&'a [PathBuf]),
}

fn run_head(
    spec: &Spec,
    limits: &Limits,
    mut progress: impl FnMut(Progress),
    mut warned: impl FnMut(&str),
    head: Head,
) -> Result<Outcome, Failure> {
    let started = Instant::now();
    init().map_err(Failure::Setup)?;
    let joining = matches!(head, Head::Join(_));
    // The join reads no input: only the output's own checks apply.
    let input = if joining { Path::new("") } else { spec.input };
    staging::check(input, spec.output, spec.pattern()).map_err(Failure::Output)?;
    staging::sweep(spec.output);
    let Scratch {
        transparent,
        staged,
        frames_dir,
        intermediate,
    } = spec.scratch();
    let _leftovers = Leftovers(
        std::iter::once(staged.temp.clone())
            .chain(intermediate.clone())
            .chain(frames_dir.clone())
            .collect(),
    );
    let front = match head {
        Head::Remove => {
            "filesrc name=src ! decodebin name=dec ! videoconvert name=conv ! queue ! rbvremove name=rbv"
        }
        Head::Join(_) => "concat name=dec ! videoconvert name=conv ! queue ! identity name=rbv",
    };
    let pipeline = gst::parse::launch(&format!(
        "{front} ! {}",
        encode::tail(spec.target, transparent)
    ))
    .map_err(setup)?
    .downcast::<gst::Pipeline>()
    .map_err(|_| setup("not a pipeline"))?;
    let by = |n: &str| pipeline.by_name(n).expect("named in the description");
    let audio_tail = encode::audio_tail(spec.target, transparent, spec.frames.is_some());
    let clock = audio::Clock::new(spec.frames.is_some() && !joining);
    let audio = match head {
        Head::Remove => {
            by("src").set_property("location", spec.input);
            audio::keep_decoded(&pipeline, &by("dec"), audio_tail, &clock)
        }
        Head::Join(parts) => join_parts(&pipeline, &by("dec"), parts, audio_tail)?,
    };
    let location = match &frames_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| Failure::Setup(format!("{}: {e}", dir.display())))?;
            dir.join("frame_%05d.png")
        }
        None => match &intermediate {
            Some(file) => file.clone(),
            None => staged.location().map_err(Failure::Setup)?,
        },
    };
    by("sink").set_property("location", &location);
    let rbv = by("rbv");
    if spec.frames.is_some()
        && spec
            .properties
            .iter()
            .any(|(n, v)| n == "backend" && v == "remote")
    {
        return Err(Failure::Setup(
            "a frame range needs backend=local: the remote backend returns the whole file".into(),
        ));
    }
    for (name, text) in spec.properties.iter().filter(|_| !joining) {
        let refused = |why: String| Failure::Property {
            name: name.clone(),
            value: text.clone(),
            why,
        };
        let pspec = rbv
            .find_property(name)
            .ok_or_else(|| Failure::NoProperty(name.clone()))?;
        let value = property_value(&pspec, text).map_err(refused)?;
        rbv.set_property_from_value(name, &value);
    }
    let processed = rbv.static_pad("src").expect("rbvremove has a src pad");
    let decoded = by("conv")
        .static_pad("sink")
        .expect("videoconvert has a sink pad");
    let guard = limits::Guard::install(&by("dec"), &decoded, limits);
    if let (Some(range), false) = (spec.frames, joining) {
        // Before the span's probe: frames it drops are not counted.
        range::install(&decoded, &processed, range, &clock);
    }
    // Frames out of the element, and the media time they cover.
    let out = limits::Span::watch(&processed);
    audio::watch_picture(&processed, &clock);
    let bus = pipeline.bus().expect("a pipeline has a bus");
    // The element refuses bad strings with a warning and keeps its value:
    // a job must not run with settings it did not ask for.
    if let Some(msg) = bus.pop_filtered(&[gst::MessageType::Warning])
        && let gst::MessageView::Warning(w) = msg.view()
    {
        return Err(Failure::Refused(w.error().to_string()));
    }

    let mut warnings: Vec<String> = Vec::new();
    let result = (|| {
        pipeline.set_state(gst::State::Playing).map_err(|_| {
            first_error(&bus)
                .unwrap_or_else(|| Failure::Setup("the processing pipeline does not start".into()))
        })?;
        let mut interrupted = false;
        loop {
            if let Some(limit) = spec.timeout
                && started.elapsed() > limit
            {
                return Err(Failure::Timeout(limit));
            }
            if !interrupted
                && spec
                    .stop
                    .as_ref()
                    .is_some_and(|s| s.load(Ordering::Relaxed))
            {
                // The stream ends at the element: the frame it is on is
                // finished and written, the frames queued before it are
                // dropped (upstream sees EOS and stops), so a slow model
                // stops after one frame, not after the whole queue; the
                // sound's gate ends the sound where the picture ended.
                // Before the element has its segment (a stop in the first
                // moments) EOS there would come before it: the sources end.
                interrupted = true;
                let sink = rbv.static_pad("sink").expect("rbvremove has a sink pad");
                if sink.sticky_event::<gst::event::Segment>(0).is_some() {
                    sink.send_event(gst::event::Eos::new());
                } else {
                    pipeline.send_event(gst::event::Eos::new());
                }
            }
            let msg = bus.timed_pop(gst::ClockTime::from_mseconds(200));
            // A cap hit comes first: the errors it causes downstream are its echo.
            if let Some(why) = guard.tripped() {
                return Err(Failure::Limit(why));
            }
            if let Some(msg) = msg {
                match msg.view() {
                    gst::MessageView::Eos(_) => break,
                    gst::MessageView::Error(e) => return Err(pipeline_failure(e)),
                    gst::MessageView::Warning(w)
                        if w.src()
                            .is_some_and(|s| s == rbv.upcast_ref::<gst::Object>()) =>
                    {
                        let text = w.error().to_string();
                        if !warnings.contains(&text) {
                            warned(&text);
                            warnings.push(text);
                        }
                    }
                    _ => {}
                }
            }
            let pos = pipeline.query_position::<gst::ClockTime>();
            let dur = pipeline.query_duration::<gst::ClockTime>();
            if let (Some(position), Some(duration)) = (pos, dur)
                && duration.nseconds() > 0
            {
                progress(Progress {
                    position,
                    duration,
                    frames: out.frames(),
                });
            }
        }
        let caps = rbv
            .static_pad("sink")
            .and_then(|p| p.current_caps())
            .ok_or_else(|| Failure::Setup("the input has no video stream".into()))?;
        let info =
            gst_video::VideoInfo::from_caps(&caps).map_err(|e| Failure::Setup(e.to_string()))?;
        let duration = pipeline
            .query_duration::<gst::ClockTime>()
            .or_else(|| pipeline.query_position::<gst::ClockTime>())
            .map_or(0.0, |d| d.nseconds() as f64 / 1e9);
        let kept = audio.kept.load(Ordering::SeqCst);
        Ok(Outcome {
            duration_seconds: duration,
            frames: out.frames(),
            processed_seconds: out.seconds(),
            width: info.width(),
            height: info.height(),
            interrupted,
            audio_dropped: audio.present.load(Ordering::SeqCst) && !kept,
            audio_kept: kept,
            warnings: Vec::new(),
        })
    })();
    // Nothing may wait on the picture while the pipeline stops.
    clock.close();
    let _ = pipeline.set_state(gst::State::Null);
    let mut outcome = result?;
    outcome.warnings = warnings;
    if outcome.frames == 0 {
        return Err(Failure::NoFrames);
    }
    if let Some(dir) = &frames_dir {
        encode::zip_dir(dir, &staged.temp).map_err(Failure::Setup)?;
    }
    if let (Some(intermediate), Target::Service(format)) = (&intermediate, spec.target) {
        let deadline = spec.timeout.map(|t| started + t);
        encode::ffmpeg(intermediate, &staged.temp, format, deadline).map_err(|e| {
            match spec.timeout {
                Some(t) if started.elapsed() > t => Failure::Timeout(t),
                _ => Failure::Setup(e),
            }
        })?;
    }
    staged.commit().map_err(Failure::Output)?;
    Ok(outcome)
}

/// Each part read, decoded and linked to the `concat` element, in order;
/// their sound, when they carry it and the target holds it, to a `concat`
/// of its own into the muxer.
fn join_parts(
    pipeline: &gst::Pipeline,
    concat: &gst::Element,
    parts: &[PathBuf],
    audio_tail: Option<&'static str>,
) -> Result<audio::Seen, Failure> {
    let seen = audio::Seen::default();
    let with_sound = probe::streams(&parts[0], Duration::from_secs(30)).is_ok_and(|s| s.audio);
    seen.present.store(with_sound, Ordering::SeqCst);
    let sound = audio_tail
        .filter(|_| with_sound)
        .and_then(|tail| audio::join_branch(pipeline, parts.len(), Some(tail)));
    seen.kept.store(sound.is_some(), Ordering::SeqCst);
    for (i, part) in parts.iter().enumerate() {
        let make = |factory: &str| {
            gst::ElementFactory::make(factory)
                .name(format!("{factory}{i}"))
                .build()
                .map_err(setup)
        };
        let (src, demux, dec) = (
            make("filesrc")?,
            make("matroskademux")?,
            make("avdec_ffv1")?,
        );
        src.set_property("location", part);
        pipeline.add_many([&src, &demux, &dec]).map_err(setup)?;
        src.link(&demux).map_err(setup)?;
        dec.link(concat).map_err(setup)?;
        let sink = dec.static_pad("sink").expect("a decoder has a sink pad");
        let sound_in = sound.as_ref().and_then(|s| s[i].static_pad("sink"));
        let sound_pad = sound_in.clone();
        demux.connect_pad_added(move |_, pad| {
            let audio = pad
                .current_caps()
                .unwrap_or_else(|| pad.query_caps(None))
                .structure(0)
                .is_some_and(|s| s.name().starts_with("audio/"));
            let to = if audio {
                sound_pad.as_ref()
            } else {
                Some(&sink)
            };
            if let Some(to) = to
                && !to.is_linked()
            {
                let _ = pad.link(to);
            }
        });
        // A part without sound (the input's ended before it) ends its turn
        // in the sound's concat at once.
        if let Some(pad) = sound_in {
            demux.connect_no_more_pads(move |_| {
                if !pad.is_linked() {
                    pad.send_event(gst::event::Eos::new());
                }
            });
        }
    }
    Ok(seen)
}

fn pipeline_failure(e: &gst::message::Error) -> Failure {
    Failure::Pipeline {
        error: e.error(),
        source: e.src().map(|s| s.name().to_string()).unwrap_or_default(),
        debug: e.debug().map(|d| d.to_string()),
    }
}

/// The first error a failed start left on the bus.
fn first_error(bus: &gst::Bus) -> Option<Failure> {
    let msg = bus.pop_filtered(&[gst::MessageType::Error])?;
    match msg.view() {
        gst::MessageView::Error(e) => Some(pipeline_failure(e)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn written_names_hidden_files_beside_the_output_never_the_output() {
        use rbv_api::OutputFormat;
        let spec = |output: &'static str, format, props: &[(&str, &str)]| Spec {
            input: Path::new("in.mp4"),
            output: Path::new(output),
            target: Target::Service(format),
            properties: props
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            timeout: None,
            stop: None,
            frames: None,
        };
        let paths = |s: Spec| s.written();
        let pid = std::process::id();
        let p = |x: &str| PathBuf::from(x.replace("PID", &pid.to_string()));
        // Transparent WebM and every GIF/WebP: ffmpeg encodes an FFV1 file;
        // all beside the output under hidden names, never the output.
        assert_eq!(
            paths(spec("d/o.webm", OutputFormat::Webm, &[])),
            [p("d/.o.rbv-partial-PID.webm"), p("d/.o.rbv-ffv1-PID.mkv")]
        );
        assert_eq!(
            paths(spec("o.gif", OutputFormat::Gif, &[("background", "blur")])),
            [p(".o.rbv-partial-PID.gif"), p(".o.rbv-ffv1-PID.mkv")]
        );
        // An opaque WebM and a MOV are written straight.
        assert_eq!(
            paths(spec(
                "o.webm",
                OutputFormat::Webm,
                &[("background", "color")]
            )),
            [p(".o.rbv-partial-PID.webm")]
        );
        // The last `background` counts.
        assert_eq!(
            paths(spec(
                "o.webm",
                OutputFormat::Webm,
                &[("background", "color"), ("background", "transparent")]
            )),
            [p(".o.rbv-partial-PID.webm"), p(".o.rbv-ffv1-PID.mkv")]
        );
        assert_eq!(
            paths(spec("o.mov", OutputFormat::Mov, &[])),
            [p(".o.rbv-partial-PID.mov")]
        );
        // A PNG zip is made from a folder of frames.
        assert_eq!(
            paths(spec("o.zip", OutputFormat::PngSequence, &[])),
            [p(".o.rbv-partial-PID.zip"), p(".o.rbv-frames-PID.d")]
        );
    }

    #[test]
    fn property_values_read_as_gst_launch_reads_them() {
        init().unwrap();
        let rbv = gst::ElementFactory::make("rbvremove").build().unwrap();
        let pspec = |n: &str| rbv.find_property(n).unwrap();
        let v = property_value(&pspec("blur-radius"), "24").unwrap();
        assert_eq!(v.get::<u32>().unwrap(), 24);
        assert_eq!(
            property_value(&pspec("blur-radius"), "2000").unwrap_err(),
            "'2000' is not a whole number from 7 to 128"
        );
        // A wrong name lists the right ones.
        assert_eq!(
            property_value(&pspec("model"), "bogus").unwrap_err(),
            "'bogus' is not one of human, light, original, pro"
        );
        assert_eq!(
            property_value(&pspec("refine"), "maybe").unwrap_err(),
            "'maybe' is not true or false"
        );
        // Strings are taken as they are, quotes and commas included.
        let prompt = property_value(&pspec("text-prompt"), "\"person\", hat").unwrap();
        assert_eq!(prompt.get::<String>().unwrap(), "\"person\", hat");
    }

    /// Plays `description` to EOS (an error or 30 s without an end fails);
    /// `f` gets the pipeline first.
    fn play_to_eos(description: &str, f: impl FnOnce(&gst::Pipeline)) {
        let p = gst::parse::launch(description)
            .unwrap_or_else(|e| panic!("{description}: {e}"))
            .downcast::<gst::Pipeline>()
            .unwrap();
        f(&p);
        p.set_state(gst::State::Playing).unwrap();
        let msg = p.bus().unwrap().timed_pop_filtered(
            gst::ClockTime::from_seconds(30),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        p.set_state(gst::State::Null).unwrap();
        match msg.as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Eos(_)) => {}
            Some(gst::MessageView::Error(e)) => {
                panic!("{description}: {} ({:?})", e.error(), e.debug())
            }
            _ => panic!("{description}: no EOS and no error within 30 s: it hangs"),
        }
    }

    #[test]
    fn every_target_encodes_frames_that_decode_back() {
        init().unwrap();
        let dir = std::env::temp_dir().join(format!("rbv-tails-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut targets = vec![Target::Ffv1, Target::PngFrames];
        targets.extend(rbv_api::OutputFormat::ALL.map(Target::Service));
        for (i, target) in targets.into_iter().enumerate() {
            for transparent in [false, true] {
                let tail = encode::tail(target, transparent);
                let what = format!("{target:?} (transparent {transparent})");
                // Three RGBA frames, as rbvremove gives them, through the tail.
                let out = dir.join(format!("{i}-{transparent}"));
                std::fs::create_dir_all(&out).unwrap();
                let png = tail.contains("multifilesink");
                let location = out.join(if png { "frame-%05d.png" } else { "out" });
                play_to_eos(
                    &format!(
                        "videotestsrc num-buffers=3 pattern=ball ! \
                         video/x-raw,format=RGBA,width=64,height=48,framerate=25/1 ! {tail}"
                    ),
                    |p| {
                        p.by_name("sink")
                            .unwrap_or_else(|| panic!("{what}: no sink named sink: {tail}"))
                            .set_property("location", location.to_str().unwrap());
                    },
                );
                // What was written decodes back to the three frames.
                let files: Vec<_> = if png {
                    (0..3)
                        .map(|n| out.join(format!("frame-{n:05}.png")))
                        .collect()
                } else {
                    vec![location]
                };
                let mut frames = 0;
                for file in &files {
                    let count = Arc::new(AtomicU64::new(0));
                    let c = count.clone();
                    play_to_eos(
                        &format!(
                            "filesrc location={} ! decodebin ! fakesink name=sink",
                            file.display()
                        ),
                        |p| {
                            p.by_name("sink")
                                .unwrap()
                                .static_pad("sink")
                                .unwrap()
                                .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                                    c.fetch_add(1, Ordering::Relaxed);
                                    gst::PadProbeReturn::Ok
                                });
                        },
                    );
                    frames += count.load(Ordering::Relaxed);
                }
                assert_eq!(frames, 3, "{what}: {tail}");
            }
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
