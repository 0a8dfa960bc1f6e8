// SPDX-License-Identifier: MPL-2.0
//! `rbv`: background removal for files, with the local backend (this
//! machine, the rbvremove element) or the remote one (the `/v1` job API).
//!
//! Exit codes: 0 done, 1 other failure, 2 bad input or options, 3 the
//! service refused or the job failed, 4 network failure or timeout.

mod local;
mod noise;
mod progress;
mod remote;
#[cfg(feature = "server")]
mod serve;

use std::io::Write;
use std::path::PathBuf;

const USAGE: &str = "\
usage:
  rbv local IN -o OUT [options]        remove the background here (rbvremove)
  rbv remote IN|URL -o OUT [options]   run a job on the /v1 service and download it
  rbv serve [options]                  run the /v1 service here (feature `server`)
  rbv keys create|list|revoke          manage the server's API keys (`rbv serve --help`)

OUT for local, by its extension: .mov (ProRes 4444 with alpha; 422 HQ over a
background), .webm (VP9 with alpha, by ffmpeg; VP8 over a background), .mkv (FFV1,
lossless, alpha), .gif, .webp, .mp4 (H.264: needs a background), cut.png for a
single picture in, or a %d pattern ending in .png (one PNG per frame, alpha).
The input's sound is kept in .mov (PCM), .mp4 (AAC), .webm and .mkv (Opus); .gif,
.webp and .png hold none (said before the work starts). OUT is written under a
hidden name beside it and renamed at the end: a failure leaves a file there as
it was; OUT may not be the input.
OUT for remote: the service's file as it comes (format from --output-format, or
from OUT's extension: webm, mov, mp4, gif, webp, zip for png_sequence).

options (the element's property names; `gst-inspect-1.0 rbvremove` says more):
  --model human|light|original|pro
  --text-prompt TEXT       what to keep: \"person, dog\" (\"and\", \"&\", \"+\", \"with\"
                           split terms too); terms that name nothing known are said
  --background transparent|color|image|blur|mask (remote: transparent|color|image)
  --background-color COLOR  --background-image PATH|URL  --blur-radius N (7-128)
  --canvas-width N --canvas-height N --anchor A --scale F --offset-x N --offset-y N
  --composition JSON
  local only:
  --detector true|false    keep only what --text-prompt names, found by the
                           detector (default true; false: the model alone)
  --detector-confidence F (0.01-0.99)  --detector-interval N  --detector-size N
  --mode sync|async        async: frames do not wait for the model (live use)
  --before-first-mask auto|transparent|input|wait  --async-correction true|false
  --smoothing F (0-0.95)  --smoothing-threshold N (0-255)
  --mask-threshold F (0-1: hard cut)  --mask-grow N (pixels; negative shrinks)
  --mask-feather N (pixels of soft edge)
  --refine (a flag)  --refine-radius N  --refine-eps F
  --human-variant auto|square|landscape  --model-path FILE  --threads N
  --execution-provider auto|cpu|cuda|tensorrt  --execution-provider-strict true|false
  --ort-library FILE
  remote only:
  --api-url URL --api-key KEY (else RBV_API_KEY; prefer the variable: a command
  line is visible to other users) --output-format F --poll-interval MS --timeout S
  -v, --verbose            show what GStreamer's libraries print themselves
                           (OpenH264's and ONNX Runtime's own lines, hidden otherwise)

exit codes: 0 done, 1 other failure, 2 bad input, 3 service/job error, 4 network,
130 stopped by Ctrl-C (rbv local: the output is complete up to there; twice: nothing
written, a file that was at OUT left as it was)
rbv --version prints the version.";

/// The element's properties `rbv local` takes as options, each in [`USAGE`].
pub const LOCAL_OPTIONS: [&str; 34] = [
    "model",
    "text-prompt",
    "background",
    "background-color",
    "background-image",
    "blur-radius",
    "canvas-width",
    "canvas-height",
    "anchor",
    "scale",
    "offset-x",
    "offset-y",
    "composition",
    "detector",
    "detector-confidence",
    "detector-interval",
    "detector-size",
    "mode",
    "before-first-mask",
    "async-correction",
    "smoothing",
    "smoothing-threshold",
    "mask-threshold",
    "mask-grow",
    "mask-feather",
    "refine",
    "refine-radius",
    "refine-eps",
    "human-variant",
    "model-path",
    "threads",
    "execution-provider",
    "execution-provider-strict",
    "ort-library",
];

pub enum Fail {
    Input(String),
    Api(String),
    Network(String),
    Other(String),
    /// Ctrl-C: the output was finished early (exit 130, as for SIGINT).
    Interrupted(String),
}

impl Fail {
    fn code(&self) -> u8 {
        match self {
            Fail::Other(_) => 1,
            Fail::Input(_) => 2,
            Fail::Api(_) => 3,
            Fail::Network(_) => 4,
            Fail::Interrupted(_) => 130,
        }
    }
    fn text(&self) -> &str {
        match self {
            Fail::Input(s)
            | Fail::Api(s)
            | Fail::Network(s)
            | Fail::Other(s)
            | Fail::Interrupted(s) => s,
        }
    }
}

pub struct Args {
    pub command: String,
    pub input: String,
    pub output: PathBuf,
    /// (property, value) in the order given.
    pub props: Vec<(String, String)>,
}

/// Options that are not element properties.
pub const REMOTE_ONLY: [&str; 5] = [
    "api-url",
    "api-key",
    "output-format",
    "poll-interval",
    "timeout",
];
const FLAGS: [&str; 1] = ["refine"];

fn parse_args() -> Result<Args, Fail> {
    use lexopt::prelude::*;
    let bad = |e: lexopt::Error| Fail::Input(format!("{e}\n\n{USAGE}"));
    let mut parser = lexopt::Parser::from_env();
    let mut command = None;
    let mut input = None;
    let mut output = None;
    let mut props = Vec::new();
    while let Some(arg) = parser.next().map_err(bad)? {
        match arg {
            Short('h') | Long("help") => {
                say(USAGE);
                exit(0);
            }
            // Read in main, before anything runs.
            Short('v') | Long("verbose") => {}
            Short('o') | Long("output") => {
                output = Some(PathBuf::from(parser.value().map_err(bad)?))
            }
            Long(name) if FLAGS.contains(&name) => props.push((name.to_owned(), "true".into())),
            Long(name) => {
                let name = name.to_owned();
                let value = parser.value().map_err(bad)?.string().map_err(bad)?;
                props.push((name, value));
            }
            Value(v) if command.is_none() => command = Some(v.string().map_err(bad)?),
            Value(v) if input.is_none() => input = Some(v.string().map_err(bad)?),
            other => return Err(bad(other.unexpected())),
        }
    }
    let command = command.ok_or_else(|| Fail::Input(USAGE.into()))?;
    if command != "local" && command != "remote" {
        return Err(Fail::Input(format!(
            "unknown command `{command}`\n\n{USAGE}"
        )));
    }
    Ok(Args {
        command,
        input: input.ok_or_else(|| Fail::Input(format!("no input given\n\n{USAGE}")))?,
        output: output
            .ok_or_else(|| Fail::Input(format!("no output given (-o OUT)\n\n{USAGE}")))?,
        props,
    })
}

/// Prints `text` and a newline to stdout; a reader that went away
/// (`rbv --help | head -1`) is no error.
pub fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// Ends the process with `code` once stderr's filter has passed on every
/// line, without running exit handlers: ONNX Runtime's, run as a process
/// ends, print errors of a library being torn down (every file the job
/// wrote is closed and renamed by now).
pub fn exit(code: u8) -> ! {
    let _ = std::io::stdout().flush();
    noise::finish();
    // SAFETY: _exit ends the process; nothing runs after it.
    unsafe { libc::_exit(i32::from(code)) }
}

fn main() {
    let verbose = std::env::args()
        .skip(1)
        .any(|a| a == "-v" || a == "--verbose");
    if !verbose {
        noise::install();
    }
    let first = std::env::args().nth(1);
    if matches!(first.as_deref(), Some("--version" | "-V" | "version")) {
        say(&format!("rbv {}", env!("CARGO_PKG_VERSION")));
        exit(0);
    }
    let result = if matches!(first.as_deref(), Some("serve" | "keys")) {
        #[cfg(feature = "server")]
        let result = serve::main(
            std::env::args()
                .skip(1)
                .filter(|a| a != "-v" && a != "--verbose")
                .collect(),
        );
        #[cfg(not(feature = "server"))]
        let result: Result<(), Fail> = Err(Fail::Input(
            "this rbv was built without the server: build rbv-cli with its default feature `server`".into(),
        ));
        result
    } else {
        parse_args().and_then(|args| match args.command.as_str() {
            "local" => local::run(&args),
            _ => remote::run(&args),
        })
    };
    match result {
        Ok(()) => exit(0),
        Err(f) => {
            eprintln!("rbv: {}", f.text());
            exit(f.code())
        }
    }
}

pub fn prop<'a>(args: &'a Args, name: &str) -> Option<&'a str> {
    args.props
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}
