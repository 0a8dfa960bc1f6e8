// SPDX-License-Identifier: MPL-2.0
//! `rbv`: background removal for files, with the local backend (this
//! machine, the rbvremove element) or the remote one (the `/v1` job API).
//!
//! Exit codes: 0 done, 1 other failure, 2 bad input or options, 3 the
//! service refused or the job failed, 4 network failure or timeout.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use gst::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use rbv_api::job::{self, Event, Request, Source};
use rbv_api::{self as remote, ApiKey, Background, Client, Config, ErrorKind, JobSettings};

const USAGE: &str = "\
usage:
  rbv local IN -o OUT [options]        remove the background here (rbvremove)
  rbv remote IN|URL -o OUT [options]   run a job on the /v1 service and download it
  rbv serve [options]                  run the /v1 service here (feature `server`)
  rbv keys create|list|revoke          manage the server's API keys (`rbv serve --help`)

OUT for local: .mkv (FFV1, alpha kept), .webm (VP8, opaque: needs a background),
or a pattern with %d ending in .png (one PNG per frame, alpha kept).
OUT for remote: the service's file as it comes (format from --output-format, or
from OUT's extension: webm, mov, mp4, gif, webp, zip for png_sequence).

options (the element's property names):
  --model human|light|original|pro   --text-prompt TEXT
  --background transparent|color|image|blur|mask (remote: transparent|color|image)
  --background-color COLOR  --background-image PATH|URL  --blur-radius N
  --canvas-width N --canvas-height N --anchor A --scale F --offset-x N --offset-y N
  --composition JSON
  local only:  --smoothing F --refine --human-variant V --model-path FILE --threads N
  remote only: --api-url URL --api-key KEY (else RBV_API_KEY; prefer the variable:
               a command line is visible to other users) --output-format F
               --poll-interval MS --timeout S

exit codes: 0 done, 1 other failure, 2 bad input, 3 service/job error, 4 network";

enum Fail {
    Input(String),
    Api(String),
    Network(String),
    Other(String),
}

impl Fail {
    fn code(&self) -> u8 {
        match self {
            Fail::Other(_) => 1,
            Fail::Input(_) => 2,
            Fail::Api(_) => 3,
            Fail::Network(_) => 4,
        }
    }
    fn text(&self) -> &str {
        match self {
            Fail::Input(s) | Fail::Api(s) | Fail::Network(s) | Fail::Other(s) => s,
        }
    }
}

struct Args {
    command: String,
    input: String,
    output: PathBuf,
    /// (property, value) in the order given.
    props: Vec<(String, String)>,
}

/// Options that are not element properties.
const REMOTE_ONLY: [&str; 5] = [
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
        "local" => local(&args),
        _ => remote_job(&args),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("rbv: {}", f.text());
            ExitCode::from(f.code())
        }
    }
}

/// A progress display: a bar on a terminal, plain lines otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    last_line: Option<(String, u64)>,
}

impl Progress {
    fn new() -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(100);
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg:30} [{bar:40}] {pos:>3}%")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            last_line: None,
        }
    }

    fn show(&mut self, what: &str, percent: f64) {
        let pos = percent.clamp(0.0, 100.0) as u64;
        match &self.bar {
            Some(bar) => {
                bar.set_message(what.to_owned());
                bar.set_position(pos);
            }
            None => {
                // Plain lines: one per change of phase or each 10 %.
                let step = pos / 10;
                if self.last_line.as_ref() != Some(&(what.to_owned(), step)) {
                    eprintln!("{what}: {pos}%");
                    self.last_line = Some((what.to_owned(), step));
                }
            }
        }
    }

    fn done(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.finish_with_message(line.to_owned()),
            None => eprintln!("{line}"),
        }
    }
}

fn prop<'a>(args: &'a Args, name: &str) -> Option<&'a str> {
    args.props
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// `rbv local`: filesrc ! decodebin ! videoconvert ! rbvremove ! encoder.
fn local(args: &Args) -> Result<(), Fail> {
    if let Some((name, _)) = args
        .props
        .iter()
        .find(|(n, _)| REMOTE_ONLY.contains(&n.as_str()))
    {
        return Err(Fail::Input(format!("--{name} is for rbv remote")));
    }
    if !Path::new(&args.input).is_file() {
        return Err(Fail::Input(format!("{}: no such file", args.input)));
    }
    gst::init().map_err(|e| Fail::Other(format!("GStreamer: {e}")))?;
    gstrbv::plugin_register_static().map_err(|e| Fail::Other(format!("rbv plugin: {e}")))?;

    let out = args.output.to_string_lossy().into_owned();
    let transparent = matches!(prop(args, "background"), None | Some("transparent"));
    let tail = if out.contains('%') && out.ends_with(".png") {
        "videoconvert ! pngenc ! multifilesink name=sink"
    } else if out.ends_with(".mkv") {
        "videoconvert ! avenc_ffv1 ! matroskamux ! filesink name=sink"
    } else if out.ends_with(".webm") {
        if transparent {
            return Err(Fail::Input(
                "VP8/WebM from this GStreamer keeps no alpha: write .mkv or %d.png, or set --background"
                    .into(),
            ));
        }
        "videoconvert ! vp8enc deadline=1 cpu-used=4 target-bitrate=6000000 ! webmmux ! filesink name=sink"
    } else {
        return Err(Fail::Input(format!(
            "{out}: write .mkv (alpha), .webm (with a background) or a %d.png pattern"
        )));
    };
    let pipeline = gst::parse::launch(&format!(
        "filesrc name=src ! decodebin ! videoconvert ! queue ! rbvremove name=rbv ! {tail}"
    ))
    .map_err(|e| Fail::Other(format!("cannot build the pipeline: {e}")))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| Fail::Other("not a pipeline".into()))?;
    let by = |n: &str| pipeline.by_name(n).expect("named in the description");
    by("src").set_property("location", &args.input);
    by("sink").set_property("location", &out);
    let rbv = by("rbv");
    for (name, value) in &args.props {
        let Some(pspec) = rbv.find_property(name) else {
            return Err(Fail::Input(format!("--{name}: no such option\n\n{USAGE}")));
        };
        let v =
            glib_value(&pspec, value).map_err(|e| Fail::Input(format!("--{name} {value}: {e}")))?;
        rbv.set_property_from_value(name, &v);
    }
    // The element refuses bad strings with a warning and keeps its value.
    let bus = pipeline.bus().expect("a pipeline has a bus");
    if let Some(msg) = bus.pop_filtered(&[gst::MessageType::Warning])
        && let gst::MessageView::Warning(w) = msg.view()
    {
        return Err(Fail::Input(w.error().to_string()));
    }

    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| Fail::Other("the pipeline does not start".into()))?;
    let mut progress = Progress::new();
    let result = loop {
        if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(250)) {
            match msg.view() {
                gst::MessageView::Eos(_) => break Ok(()),
                gst::MessageView::Error(e) => {
                    let text = e.error().to_string();
                    break Err(
                        if e.error().is::<gst::LibraryError>()
                            || e.error().is::<gst::ResourceError>()
                        {
                            Fail::Input(text)
                        } else {
                            Fail::Other(text)
                        },
                    );
                }
                gst::MessageView::Warning(w) => eprintln!("rbv: warning: {}", w.error()),
                _ => {}
            }
        }
        let pos = pipeline.query_position::<gst::ClockTime>();
        let dur = pipeline.query_duration::<gst::ClockTime>();
        if let (Some(p), Some(d)) = (pos, dur)
            && d.nseconds() > 0
        {
            progress.show(
                "removing the background",
                100.0 * p.nseconds() as f64 / d.nseconds() as f64,
            );
        }
    };
    let _ = pipeline.set_state(gst::State::Null);
    result?;
    progress.done(&format!("wrote {out}"));
    Ok(())
}

/// A property value from its text, as gst-launch reads it.
fn glib_value(pspec: &gst::glib::ParamSpec, text: &str) -> Result<gst::glib::Value, String> {
    let t = pspec.value_type();
    let v = gst::glib::Value::deserialize(text, t)
        .map_err(|_| format!("not a valid {} value", t.name()))?;
    use gst::glib::{ParamSpecDouble, ParamSpecInt, ParamSpecUInt};
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
    in_range
        .then_some(v)
        .ok_or_else(|| "out of range".to_string())
}

/// `rbv remote`: the job flow, output written as the service made it.
fn remote_job(args: &Args) -> Result<(), Fail> {
    const REMOTE_PROPS: [&str; 15] = [
        "model",
        "text-prompt",
        "background",
        "background-color",
        "background-image",
        "canvas-width",
        "canvas-height",
        "anchor",
        "scale",
        "offset-x",
        "offset-y",
        "composition",
        "api-url",
        "api-key",
        "output-format",
    ];
    for (name, _) in &args.props {
        if !REMOTE_PROPS.contains(&name.as_str()) && name != "poll-interval" && name != "timeout" {
            return Err(Fail::Input(format!(
                "--{name} is not an option of rbv remote"
            )));
        }
    }
    let source = Source::parse(&args.input);
    if let Source::File(p) = &source
        && !p.is_file()
    {
        return Err(Fail::Input(format!("{}: no such file", p.display())));
    }
    let key = prop(args, "api-key")
        .and_then(ApiKey::new)
        .or_else(ApiKey::from_env)
        .ok_or_else(|| {
            Fail::Input(format!(
                "no API key: set {} or --api-key",
                remote::key::ENV_VAR
            ))
        })?;
    let output_format = match prop(args, "output-format") {
        Some(f) => f.to_owned(),
        None => match args.output.extension().and_then(|e| e.to_str()) {
            Some("zip") => "png_sequence".into(),
            Some(e @ ("webm" | "mov" | "mp4" | "gif" | "webp")) => e.into(),
            _ => "webm".into(),
        },
    };
    let background = match prop(args, "background").unwrap_or("transparent") {
        "transparent" => Background::Transparent,
        "color" => {
            let c = rbv_core::compositor::parse_color(
                prop(args, "background-color").unwrap_or("green"),
            )
            .map_err(|e| Fail::Input(format!("--background-color: {e}")))?;
            Background::Color([c[0], c[1], c[2]])
        }
        "image" => Background::Image(
            prop(args, "background-image")
                .ok_or_else(|| {
                    Fail::Input("--background image needs --background-image URL".into())
                })?
                .to_owned(),
        ),
        other => {
            return Err(Fail::Input(format!(
                "--background {other}: the service offers transparent, color and image"
            )));
        }
    };
    // Placement options are folded into the service's composition object.
    let mut placement = match prop(args, "composition") {
        Some(j) => rbv_core::compositor::parse_composition(j)
            .map_err(|e| Fail::Input(format!("--composition: {e}")))?,
        None => rbv_core::compositor::Placement::default(),
    };
    let num = |name: &str| -> Result<Option<f64>, Fail> {
        prop(args, name)
            .map(|v| {
                v.parse::<f64>()
                    .map_err(|_| Fail::Input(format!("--{name} {v}: not a number")))
            })
            .transpose()
    };
    if let Some(v) = num("canvas-width")? {
        placement.canvas_width = v as u32;
    }
    if let Some(v) = num("canvas-height")? {
        placement.canvas_height = v as u32;
    }
    if let Some(v) = num("scale")? {
        placement.scale = v;
    }
    if let Some(v) = num("offset-x")? {
        placement.offset_x = v as i32;
    }
    if let Some(v) = num("offset-y")? {
        placement.offset_y = v as i32;
    }
    if let Some(a) = prop(args, "anchor") {
        let json = format!("{{\"foreground\":{{\"anchor\":\"{a}\"}}}}");
        placement.anchor = rbv_core::compositor::parse_composition(&json)
            .map_err(|e| Fail::Input(format!("--anchor: {e}")))?
            .anchor;
    }
    let composition = (placement != rbv_core::compositor::Placement::default())
        .then(|| serde_json::from_str(&rbv_core::compositor::composition_to_json(&placement)).ok())
        .flatten();
    let settings = JobSettings {
        model: prop(args, "model").unwrap_or("original").to_owned(),
        text_prompt: prop(args, "text-prompt").map(str::to_owned),
        background,
        composition,
        output_format,
        webhook_url: None,
    };
    let ms = num("poll-interval")?.unwrap_or(2000.0).max(10.0);
    let secs = num("timeout")?.unwrap_or(600.0).max(1.0);
    let request = Request {
        source,
        settings,
        poll_interval: Duration::from_millis(ms as u64),
        timeout: Duration::from_secs_f64(secs),
    };
    let api_url = prop(args, "api-url").unwrap_or(remote::client::DEFAULT_API_URL);
    let client = Client::new(Config::new(api_url, key)).map_err(|e| Fail::Input(e.to_string()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Fail::Other(e.to_string()))?;
    let mut progress = Progress::new();
    let mut on_event = |e: Event| match e {
        Event::Uploading { bytes } => {
            progress.show(&format!("uploading {} MB", bytes / 1_000_000), 0.0)
        }
        Event::Created { job_id, .. } => progress.show(&format!("job {job_id} created"), 0.0),
        Event::Started { job_id, .. } => progress.show(&format!("job {job_id} started"), 0.0),
        Event::Polled {
            job_id,
            status,
            progress: p,
            ..
        } => progress.show(&format!("job {job_id} {}", status.as_str()), p),
        Event::Downloading {
            bytes,
            total: Some(t),
            ..
        } => progress.show("downloading", 100.0 * bytes as f64 / t.max(1) as f64),
        _ => {}
    };
    let result = rt.block_on(job::run(&client, &request, &args.output, &mut on_event));
    match result {
        Ok(job) => {
            progress.done(&format!(
                "job {} completed: wrote {}",
                job.id,
                args.output.display()
            ));
            Ok(())
        }
        Err(e) => Err(match e.kind() {
            ErrorKind::Input => Fail::Input(e.to_string()),
            ErrorKind::Api => Fail::Api(e.to_string()),
            ErrorKind::Network => Fail::Network(e.to_string()),
            ErrorKind::Cancelled => Fail::Other(e.to_string()),
        }),
    }
}

#[cfg(feature = "server")]
mod serve {
    use super::Fail;
    use rbv_server::{self as server, Config};
    use std::time::Duration;

    const USAGE: &str = "\
usage:
  rbv serve [options]                 the /v1 job API on this machine
  rbv keys create [--name N] [--credits C] [--data-dir DIR]   prints a new key once
  rbv keys list [--data-dir DIR]
  rbv keys revoke KEY_ID [--data-dir DIR]

serve options (defaults in brackets):
  --listen ADDR            [127.0.0.1:8080]
  --data-dir DIR           database, uploads, outputs [$RBV_DATA_DIR or ./rbv-data]
  --public-url URL         base of the links handed out [http://ADDR]
  --heavy-workers N        workers for pro and original [1]
  --light-workers N        workers for light and human [1]
  --queue-size N           jobs waiting per pool before 429 [100]
  --rate-limit N           requests per minute per key, 0 = none [600]
  --link-ttl SECONDS       lifetime of output links [86400]
  --max-upload-mb N        largest upload [500]
  --job-timeout SECONDS    longest a job may process [3600]
  --max-attempts N         runs of a job a stop interrupted before it fails [3]
  --webhook-retry-delay S  seconds between webhook retries [10]
The webhook signing secret comes from $RBV_WEBHOOK_SECRET (not an option: a
command line is visible to other users).";

    fn bad(e: impl std::fmt::Display) -> Fail {
        Fail::Input(format!("{e}\n\n{USAGE}"))
    }

    fn num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, Fail> {
        v.parse()
            .map_err(|_| Fail::Input(format!("--{name} {v}: not a valid number")))
    }

    pub fn main(args: Vec<String>) -> Result<(), Fail> {
        use lexopt::prelude::*;
        let mut parser = lexopt::Parser::from_args(args);
        let mut words = Vec::new();
        let mut config = Config::default();
        if let Ok(d) = std::env::var("RBV_DATA_DIR") {
            config.data_dir = d.into();
        }
        config.webhook_secret = std::env::var("RBV_WEBHOOK_SECRET")
            .ok()
            .filter(|s| !s.is_empty());
        let mut name = "default".to_string();
        let mut credits = None;
        while let Some(arg) = parser.next().map_err(bad)? {
            match arg {
                Short('h') | Long("help") => {
                    println!("{USAGE}");
                    return Ok(());
                }
                Value(v) => words.push(v.string().map_err(bad)?),
                Long(opt) => {
                    let opt = opt.to_owned();
                    let v = parser.value().map_err(bad)?.string().map_err(bad)?;
                    match opt.as_str() {
                        "listen" => config.listen = num("listen", &v)?,
                        "data-dir" => config.data_dir = v.into(),
                        "public-url" => config.public_url = Some(v),
                        "heavy-workers" => config.heavy_workers = num(&opt, &v)?,
                        "light-workers" => config.light_workers = num(&opt, &v)?,
                        "queue-size" => config.queue_size = num(&opt, &v)?,
                        "rate-limit" => config.rate_limit = num(&opt, &v)?,
                        "link-ttl" => config.link_ttl = Duration::from_secs(num(&opt, &v)?),
                        "max-upload-mb" => {
                            config.max_upload_bytes = num::<u64>(&opt, &v)? * 1_000_000
                        }
                        "job-timeout" => config.job_timeout = Duration::from_secs(num(&opt, &v)?),
                        "max-attempts" => config.max_attempts = num(&opt, &v)?,
                        "webhook-retry-delay" => {
                            config.webhook_retry_delay = Duration::from_secs_f64(num(&opt, &v)?)
                        }
                        "name" => name = v,
                        "credits" => credits = Some(num::<f64>(&opt, &v)?),
                        _ => return Err(bad(format!("unknown option --{opt}"))),
                    }
                }
                other => return Err(bad(other.unexpected())),
            }
        }
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        match words.as_slice() {
            ["serve"] => serve(config),
            ["keys", rest @ ..] => keys(&config, rest, &name, credits),
            _ => Err(bad("expected `serve` or `keys create|list|revoke`")),
        }
    }

    fn serve(config: Config) -> Result<(), Fail> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| Fail::Other(e.to_string()))?;
        rt.block_on(async {
            let server = server::start(config).await.map_err(Fail::Input)?;
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .map_err(|e| Fail::Other(e.to_string()))?;
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            server::log::line(&[("event", "stopping")]);
            server.stop().await;
            Ok(())
        })
    }

    fn keys(config: &Config, rest: &[&str], name: &str, credits: Option<f64>) -> Result<(), Fail> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| Fail::Input(format!("{}: {e}", config.data_dir.display())))?;
        let db = config.data_dir.join("rbv.db");
        let store = server::store::Store::open(&db)
            .map_err(|e| Fail::Input(format!("{}: {e}", db.display())))?;
        let fail = |e: server::store::Error| Fail::Other(e.to_string());
        match rest {
            ["create"] => {
                let (id, secret) = store.create_key(name, credits).map_err(fail)?;
                eprintln!("created {id} ({name}); the key is shown once, store it now:");
                println!("{secret}");
                Ok(())
            }
            ["list"] => {
                for (id, name, credits, revoked, created) in store.list_keys().map_err(fail)? {
                    println!(
                        "{id}\t{name}\tcredits={}\t{}\tcreated {}",
                        credits.map_or("unlimited".into(), |c| c.to_string()),
                        if revoked { "revoked" } else { "active" },
                        server::store::iso(created)
                    );
                }
                Ok(())
            }
            ["revoke", id] => {
                if store.revoke_key(id).map_err(fail)? {
                    eprintln!("revoked {id}");
                    Ok(())
                } else {
                    Err(Fail::Input(format!("no key {id}")))
                }
            }
            _ => Err(bad("keys: expected create, list or revoke KEY_ID")),
        }
    }
}
