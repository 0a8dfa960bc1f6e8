// SPDX-License-Identifier: MPL-2.0
//! `rbv`: background removal for files, with the local backend (this
//! machine, the rbvremove element) or the remote one (the `/v1` job API).
//!
//! Exit codes: 0 done, 1 other failure, 2 bad input or options, 3 the
//! service refused or the job failed, 4 network failure or timeout.

mod local;
mod progress;
mod remote;
#[cfg(feature = "server")]
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

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
OUT for remote: the service's file as it comes (format from --output-format, or
from OUT's extension: webm, mov, mp4, gif, webp, zip for png_sequence).

options (the element's property names):
  --model human|light|original|pro   --text-prompt TEXT
  --background transparent|color|image|blur|mask (remote: transparent|color|image)
  --background-color COLOR  --background-image PATH|URL  --blur-radius N
  --canvas-width N --canvas-height N --anchor A --scale F --offset-x N --offset-y N
  --composition JSON
  local only:  --smoothing F --refine --human-variant V --model-path FILE --threads N
               --mask-threshold F (0-1: hard cut) --mask-grow N (pixels; negative
               shrinks) --mask-feather N (pixels of soft edge)
  remote only: --api-url URL --api-key KEY (else RBV_API_KEY; prefer the variable:
               a command line is visible to other users) --output-format F
               --poll-interval MS --timeout S

exit codes: 0 done, 1 other failure, 2 bad input, 3 service/job error, 4 network,
130 stopped by Ctrl-C (rbv local: the output is complete up to there; twice: removed)
rbv --version prints the version.";

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
                println!("{USAGE}");
                std::process::exit(0);
            }
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

fn main() -> ExitCode {
    let first = std::env::args().nth(1);
    if matches!(first.as_deref(), Some("--version" | "-V" | "version")) {
        println!("rbv {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if matches!(first.as_deref(), Some("serve" | "keys")) {
        #[cfg(feature = "server")]
        let result = serve::main(std::env::args().skip(1).collect());
        #[cfg(not(feature = "server"))]
        let result: Result<(), Fail> = Err(Fail::Input(
            "this rbv was built without the server: build rbv-cli with its default feature `server`".into(),
        ));
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(f) => {
                eprintln!("rbv: {}", f.text());
                ExitCode::from(f.code())
            }
        };
    }
    let result = parse_args().and_then(|args| match args.command.as_str() {
        "local" => local::run(&args),
        _ => remote::run(&args),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("rbv: {}", f.text());
            ExitCode::from(f.code())
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
