// SPDX-License-Identifier: MPL-2.0
//! Helpers shared by the tests and benches of rbv's crates: plugin
//! registration, test data, small real pipelines that decode files with
//! GStreamer, the fake `/v1` service ([`fake_api`]), `rbv serve` in the test
//! process ([`serve`], feature `server`) or from its binary, and bounded
//! fuzzing on the stable toolchain ([`fuzz`]).

use std::path::{Path, PathBuf};
use std::sync::Once;

use gst::prelude::*;

pub mod av;
pub mod fake_api;
pub mod fuzz;
#[cfg(feature = "server")]
pub mod serve;

/// The repository's root (the workspace), for its scripts, docs and examples.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("rbv-testkit sits in the workspace")
}

pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstrbv::plugin_register_static().expect("rbv plugin registers");
    });
}

/// A file from the set-up's test data (run setup/setup.sh first).
pub fn data(name: &str) -> PathBuf {
    let p = rbv_core::paths::cache_dir().join("data").join(name);
    assert!(p.is_file(), "{} missing: run setup/setup.sh", p.display());
    p
}

/// An 8-bit plane or packed image read back from a pipeline.
pub struct Image {
    pub width: usize,
    pub height: usize,
    pub stride: usize,
    pub bytes_per_pixel: usize,
    pub data: Vec<u8>,
}

impl Image {
    pub fn at(&self, x: usize, y: usize, c: usize) -> u8 {
        self.data[y * self.stride + x * self.bytes_per_pixel + c]
    }

    /// Channel `c` of every pixel, packed.
    pub fn channel(&self, c: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.width * self.height);
        for y in 0..self.height {
            for x in 0..self.width {
                out.push(self.at(x, y, c));
            }
        }
        out
    }
}

/// The first `n` frames of the test clip `clip` at `width`x`height` in
/// `format`, decoded into memory (deep copies), with their caps.
pub fn decoded_frames(
    clip: &str,
    width: u32,
    height: u32,
    format: &str,
    n: usize,
) -> (gst::Caps, Vec<gst::Buffer>) {
    let mut caps = None;
    let mut buffers = Vec::new();
    for_each_sample(
        &format!(
            "filesrc location={} ! decodebin ! videoconvert ! videoscale ! \
             video/x-raw,format={format},width={width},height={height},pixel-aspect-ratio=1/1 ! \
             appsink name=sink sync=false",
            data(clip).display()
        ),
        |s| {
            caps.get_or_insert_with(|| s.caps().unwrap().to_owned());
            buffers.push(s.buffer().unwrap().copy_deep().unwrap());
            buffers.len() < n
        },
    );
    (caps.expect("frames decoded"), buffers)
}

/// Parses a pipeline description.
pub fn launch(description: &str) -> gst::Pipeline {
    gst::parse::launch(description)
        .unwrap_or_else(|e| panic!("{description}: {e}"))
        .downcast::<gst::Pipeline>()
        .unwrap()
}

/// Frames through an element as a file's frames go: `appsrc ! element !
/// appsink`, not live. (GStreamer's test harness answers the latency query
/// as a live source does, and `rbvremove` never waits for its detector on
/// a live stream.) Stopped when dropped.
pub struct Through {
    pipeline: gst::Pipeline,
    element: gst::Element,
    src: gst_app::AppSrc,
    sink: gst_app::AppSink,
}

impl Through {
    /// `element` between an appsrc of `in_caps` and an appsink of
    /// `out_caps`, playing.
    pub fn new(element: &gst::Element, in_caps: &gst::Caps, out_caps: &gst::Caps) -> Through {
        let pipeline = gst::Pipeline::new();
        let src = gst_app::AppSrc::builder()
            .caps(in_caps)
            .format(gst::Format::Time)
            .build();
        let sink = gst_app::AppSink::builder()
            .caps(out_caps)
            .sync(false)
            .build();
        let chain = [src.upcast_ref(), element, sink.upcast_ref()];
        pipeline.add_many(chain).unwrap();
        gst::Element::link_many(chain).unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        Through {
            pipeline,
            element: element.clone(),
            src,
            sink,
        }
    }

    /// One buffer in, its output buffer out.
    pub fn push(&self, buffer: gst::Buffer) -> gst::Buffer {
        self.src.push_buffer(buffer).unwrap();
        let sample = self
            .sink
            .try_pull_sample(gst::ClockTime::from_seconds(120))
            .unwrap_or_else(|| {
                let err = wait_for_error(&self.pipeline);
                panic!("no output buffer: {err:?}")
            });
        sample.buffer_owned().unwrap()
    }

    /// The element messages posted on the bus so far (their structures),
    /// taken off it.
    pub fn messages(&self) -> Vec<gst::Structure> {
        let bus = self.pipeline.bus().unwrap();
        std::iter::from_fn(|| bus.pop_filtered(&[gst::MessageType::Element]))
            .filter_map(|m| m.structure().map(|s| s.to_owned()))
            .collect()
    }

    /// The caps the element negotiated on its sink and its src pad.
    pub fn caps(&self) -> (gst::Caps, gst::Caps) {
        let caps = |name: &str| {
            self.element
                .static_pad(name)
                .unwrap()
                .current_caps()
                .unwrap()
        };
        (caps("sink"), caps("src"))
    }
}

impl Drop for Through {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Plays `description` (which must end in `appsink name=sink`) and hands each
/// sample to `f` until `f` returns false or the stream ends; then stops the
/// pipeline. Returns whether the stream reached EOS.
pub fn for_each_sample(description: &str, mut f: impl FnMut(&gst::Sample) -> bool) -> bool {
    let pipeline = launch(description);
    let sink = pipeline
        .by_name("sink")
        .expect("an appsink named sink")
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    while let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_seconds(60)) {
        if !f(&sample) {
            break;
        }
    }
    let eos = sink.is_eos();
    pipeline.set_state(gst::State::Null).unwrap();
    eos
}

/// The first frame of `description` (see [`for_each_sample`]).
pub fn first_frame(description: &str) -> Image {
    let mut first = None;
    for_each_sample(description, |s| {
        first = Some(s.clone());
        false
    });
    let sample = first.expect("a frame within 60 s");
    let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
    let map = sample.buffer().unwrap().map_readable().unwrap();
    Image {
        width: info.width() as usize,
        height: info.height() as usize,
        stride: info.stride()[0] as usize,
        bytes_per_pixel: info.format_info().pixel_stride()[0] as usize,
        data: map.as_slice().to_vec(),
    }
}

/// The RGBA output of `rbvremove <props>` on an image file, with the input
/// converted to `format` first.
pub fn remove_background(file: &str, format: &str, props: &str) -> Image {
    let path = data(file);
    first_frame(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format={format} ! \
         rbvremove {props} ! video/x-raw,format=RGBA ! appsink name=sink",
        path.display()
    ))
}

/// A grey image file as a packed plane.
pub fn gray(file: &str) -> Image {
    let path = data(file);
    first_frame(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=GRAY8 ! appsink name=sink",
        path.display()
    ))
}

/// Intersection over union of two masks thresholded at 128.
pub fn iou(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let (mut inter, mut union) = (0u64, 0u64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x >= 128, y >= 128);
        inter += u64::from(x && y);
        union += u64::from(x || y);
    }
    inter as f64 / union.max(1) as f64
}

/// How long a pipeline may take to end before the wait calls it a hang.
pub const END_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// How a pipeline's stream ended, as its bus told it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    Eos,
    /// The error text, with its debug details in brackets.
    Error(String),
    /// Neither EOS nor an error within the wait: a hang.
    TimedOut(std::time::Duration),
}

impl Ended {
    /// Panics unless the stream reached EOS; a timeout says it hung.
    #[track_caller]
    pub fn expect_eos(self, what: &str) {
        match self {
            Ended::Eos => {}
            Ended::Error(e) => panic!("{what}: an error instead of EOS: {e}"),
            Ended::TimedOut(d) => panic!("{what}: no EOS and no error within {d:?}: it hangs"),
        }
    }

    /// The error text; panics at EOS or on a timeout.
    #[track_caller]
    pub fn expect_error(self, what: &str) -> String {
        match self {
            Ended::Error(e) => e,
            Ended::Eos => panic!("{what}: EOS, where an error was expected"),
            Ended::TimedOut(d) => panic!("{what}: no error and no EOS within {d:?}: it hangs"),
        }
    }
}

/// Waits up to `timeout` for an error or EOS on the pipeline's bus.
pub fn wait_end(pipeline: &gst::Pipeline, timeout: std::time::Duration) -> Ended {
    let bus = pipeline.bus().unwrap();
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_nseconds(timeout.as_nanos() as u64),
        &[gst::MessageType::Error, gst::MessageType::Eos],
    );
    match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Error(err)) => Ended::Error(format!(
            "{} ({})",
            err.error(),
            err.debug().map(|d| d.to_string()).unwrap_or_default()
        )),
        Some(_) => Ended::Eos,
        None => Ended::TimedOut(timeout),
    }
}

/// Waits for an error or EOS on the bus: the error text, or None at EOS.
/// Panics when neither comes within [`END_WAIT`]: a hang is a failure, never
/// a clean end.
#[track_caller]
pub fn wait_for_error(pipeline: &gst::Pipeline) -> Option<String> {
    match wait_end(pipeline, END_WAIT) {
        Ended::Eos => None,
        Ended::Error(e) => Some(e),
        Ended::TimedOut(d) => panic!(
            "{}: no EOS and no error within {d:?}: it hangs",
            pipeline.name()
        ),
    }
}

/// Each frame's alpha plane and timestamp (ns) of a video with alpha;
/// asserts it decodes to its end.
pub fn alpha_frames(file: &Path) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let eos = for_each_sample(
        &format!(
            "filesrc location=\"{}\" ! decodebin ! videoconvert ! video/x-raw,format=RGBA ! \
             appsink name=sink sync=false",
            file.display()
        ),
        |s| {
            let b = s.buffer().unwrap();
            let map = b.map_readable().unwrap();
            let a = map.iter().skip(3).step_by(4).copied().collect();
            out.push((b.pts().map_or(0, |t| t.nseconds()), a));
            true
        },
    );
    assert!(eos, "{} decodes to its end", file.display());
    out
}

/// An alpha difference a viewer could see: 16 of 255 (about 6 % opacity,
/// a step an edge shows against a contrasting background).
pub const VISIBLE: u8 = 16;

/// How two cuts of one frame (alpha planes) differ: the mean difference
/// (levels of 255) and the share of pixels that differ visibly.
pub fn alpha_difference(a: &[u8], b: &[u8]) -> (f64, f64) {
    let visible = a
        .iter()
        .zip(b)
        .filter(|(x, y)| x.abs_diff(**y) > VISIBLE)
        .count();
    (mean_abs_diff(a, b), visible as f64 / a.len().max(1) as f64)
}

/// No viewer could tell two cuts apart: under half a level on average, and
/// at most one pixel in a thousand visibly different. (A bound by what can
/// be seen, not by a figure one machine's floats give.)
pub fn invisible((mean, share): (f64, f64)) -> bool {
    mean < 0.5 && share <= 0.001
}

/// Mean absolute difference of two planes of one size, 0-255.
pub fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len(), "planes of one size");
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(x.abs_diff(*y)))
        .sum::<f64>()
        / a.len().max(1) as f64
}

/// Decodes `file` to RGB; returns (frame count, width, height, the middle frame).
pub fn decode_rgb(file: &Path) -> (usize, usize, usize, Image) {
    let mut n = 0;
    let mut frames = Vec::new();
    let eos = for_each_sample(
        &format!(
            "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=RGB ! \
             appsink name=sink sync=false",
            file.display()
        ),
        |s| {
            n += 1;
            frames.push(s.clone());
            true
        },
    );
    assert!(eos, "{} did not decode to EOS", file.display());
    let mid = &frames[frames.len() / 2];
    let info = gst_video::VideoInfo::from_caps(mid.caps().unwrap()).unwrap();
    let map = mid.buffer().unwrap().map_readable().unwrap();
    let img = Image {
        width: info.width() as usize,
        height: info.height() as usize,
        stride: info.stride()[0] as usize,
        bytes_per_pixel: 3,
        data: map.to_vec(),
    };
    (n, img.width, img.height, img)
}

/// The first `n` frames of a test video as a WebM of exactly `n` frames
/// (decoded into memory, then encoded through appsrc: cutting a file with
/// an EOS injected mid-stream loses a frame now and then).
pub fn short_clip(name: &str, n: usize, path: &Path) {
    let mut caps = None;
    let mut frames = Vec::new();
    for_each_sample(
        &format!(
            "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=I420 ! \
             appsink name=sink sync=false",
            data(name).display()
        ),
        |s| {
            caps.get_or_insert_with(|| s.caps().unwrap().to_owned());
            frames.push(s.buffer().unwrap().to_owned());
            frames.len() < n
        },
    );
    encode_webm(caps.as_ref().expect("frames decoded"), frames, path);
}

/// The first `n` frames of a test video scaled to `width`x`height`, as WebM.
pub fn scaled_clip(name: &str, n: usize, width: u32, height: u32, path: &Path) {
    let (caps, frames) = decoded_frames(name, width, height, "I420", n);
    encode_webm(&caps, frames, path);
}

/// Raw frames to a VP8 WebM file.
pub fn encode_webm(caps: &gst::Caps, frames: Vec<gst::Buffer>, path: &Path) {
    let pipeline = launch(&format!(
        "appsrc name=src format=time ! videoconvert ! vp8enc deadline=1 ! webmmux ! \
         filesink location={}",
        path.display()
    ));
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    src.set_caps(Some(caps));
    pipeline.set_state(gst::State::Playing).unwrap();
    for f in frames {
        src.push_buffer(f).unwrap();
    }
    src.end_of_stream().unwrap();
    wait_end(&pipeline, END_WAIT).expect_eos(&format!("encoding {}", path.display()));
    pipeline.set_state(gst::State::Null).unwrap();
}

/// The directory holding the plugin (libgstrbv.so) that cargo built with this
/// test: `cargo test` leaves it in target/<profile>/deps beside the test binary,
/// `cargo build` in target/<profile>.
pub fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    [deps, deps.parent().unwrap()]
        .into_iter()
        .find(|d| d.join("libgstrbv.so").is_file())
        .unwrap_or_else(|| panic!("no libgstrbv.so in or above {}", deps.display()))
        .to_path_buf()
}

/// CPU time this process has used (user and system, all threads), in
/// seconds: utime + stime from /proc/self/stat, in clock ticks (100 Hz on
/// Linux).
pub fn cpu_seconds() -> f64 {
    // utime + stime of this process, in clock ticks (100 Hz on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rbv-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Resident memory of a process (this one when `pid` is None), in MiB.
pub fn rss_mib(pid: Option<u32>) -> f64 {
    let path = pid.map_or("/proc/self/status".to_string(), |p| {
        format!("/proc/{p}/status")
    });
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// What a pipeline ending in `appsink name=sink` gave: its frames, the
/// `rbv-job` messages and the error (with its details), if any.
pub struct Played {
    pub frames: Vec<gst::Sample>,
    pub jobs: Vec<gst::Structure>,
    pub error: Option<(String, Option<gst::Structure>)>,
}

/// Plays to EOS or error, keeping frames and `rbv-job` messages.
pub fn play(p: &gst::Pipeline) -> Played {
    let sink = p
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    let frames = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = frames.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                kept.lock().unwrap().push(s.pull_sample().unwrap());
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    p.set_state(gst::State::Playing).unwrap();
    let bus = p.bus().unwrap();
    let mut jobs = Vec::new();
    let mut error = None;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        // A hang is a failure, not an end.
        assert!(
            std::time::Instant::now() < deadline,
            "no EOS and no error within 60 s: it hangs"
        );
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Element(e)
                if e.structure().is_some_and(|s| s.name() == "rbv-job") =>
            {
                jobs.push(e.structure().unwrap().to_owned());
            }
            gst::MessageView::Error(e) => {
                error = Some((e.error().to_string(), e.details().map(|d| d.to_owned())));
                break;
            }
            gst::MessageView::Eos(_) => break,
            _ => {}
        }
    }
    p.set_state(gst::State::Null).unwrap();
    let frames = frames.lock().unwrap().clone();
    Played {
        frames,
        jobs,
        error,
    }
}

/// `rbv serve` started from its binary (`rbv`, the path cargo gives tests and
/// benches) on a free port of 127.0.0.1; every stderr line is kept.
pub struct ServeProcess {
    pub child: std::process::Child,
    pub url: String,
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// A test that fails part-way leaves no server running.
impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn spawn_serve(rbv: &str, data: &Path, args: &[&str]) -> ServeProcess {
    spawn_serve_env(rbv, data, args, &[])
}

/// As [`spawn_serve`], with environment variables set for it.
pub fn spawn_serve_env(
    rbv: &str,
    data: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> ServeProcess {
    use std::io::BufRead;
    let mut child = std::process::Command::new(rbv)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .envs(env.iter().copied())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let kept = log.clone();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(url) = line.split(" url=").nth(1) {
                let _ = tx.send(url.split(' ').next().unwrap().to_owned());
            }
            kept.lock().unwrap().push(line);
        }
    });
    let url = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("no listening line: {:?}", log.lock().unwrap()));
    ServeProcess { child, url, log }
}

/// A count from the environment variable `name`, else `default` (the
/// benches' knobs).
pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A new API key from `rbv keys create` on `data`.
pub fn create_key(rbv: &str, data: &Path, name: &str) -> String {
    create_key_in(rbv, &["--data-dir".as_ref(), data.as_os_str()], name)
}

/// Runs `cmd` to its end; its output, trimmed. A failure fails the test
/// with what the command said.
pub fn run_ok(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A new API key from `rbv keys create` on the store `store` names
/// (`--data-dir DIR` or `--database URL`).
pub fn create_key_in<S: AsRef<std::ffi::OsStr>>(rbv: &str, store: &[S], name: &str) -> String {
    let key = run_ok(
        std::process::Command::new(rbv)
            .args(["keys", "create", "--name", name])
            .args(store),
    );
    assert!(key.starts_with("rbv_"), "a key: {key}");
    key
}

/// The decoded-size bomb of issue 20: two 16000x16000 VP8 frames in WebM,
/// about 430 KB, that a decoder would expand to 384 MB a frame. Making it
/// takes ffmpeg's encoder about 11 GB and half a minute, so it is made once
/// per machine (in the rbv cache) and copied into `dir`; several test
/// binaries share it.
pub fn vp8_bomb(dir: &Path) -> PathBuf {
    let cache = rbv_core::paths::cache_dir().join("test");
    std::fs::create_dir_all(&cache).unwrap();
    let made = cache.join("vp8-bomb-16000x16000-2f.webm");
    let ok = |p: &Path| std::fs::metadata(p).is_ok_and(|m| (100_000..1_000_000).contains(&m.len()));
    if !ok(&made) {
        // Written under a private name and renamed, so a killed ffmpeg or a
        // second test binary never leaves or reads half a file.
        let part = cache.join(format!("vp8-bomb.{}.part.webm", std::process::id()));
        let out = std::process::Command::new("ffmpeg")
            .args(["-loglevel", "error", "-y", "-f", "lavfi"])
            .args(["-i", "color=s=16000x16000:r=1", "-frames:v", "2"])
            .args(["-c:v", "libvpx", "-b:v", "10k"])
            .arg(&part)
            .output()
            .expect("ffmpeg (installed by setup/setup.sh)");
        assert!(
            out.status.success(),
            "ffmpeg making the 16000x16000 bomb: {} (it needs about 11 GB of memory): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::rename(&part, &made).unwrap();
    }
    assert!(ok(&made), "{} is not the bomb", made.display());
    let p = dir.join("bomb.webm");
    std::fs::copy(&made, &p).unwrap();
    p
}
