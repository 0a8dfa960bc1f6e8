// SPDX-License-Identifier: MPL-2.0
//! `rbv remote`: a whole file as a job of the /v1 service, the output
//! written as the service made it.

use std::time::Duration;

use rbv_api::job::{self, Event, Request, Source};
use rbv_api::{
    self as remote, ApiKey, Background, Client, Config, ErrorKind, JobSettings, OutputFormat,
};
use rbv_core::compositor;

use crate::progress::Progress;
use crate::{Args, Fail, prop};

/// `rbv remote`: the job flow, output written as the service made it.
pub fn run(args: &Args) -> Result<(), Fail> {
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
        Some(f) => f
            .parse()
            .map_err(|e| Fail::Input(format!("--output-format: {e}")))?,
        None => args
            .output
            .extension()
            .and_then(|e| e.to_str())
            .and_then(OutputFormat::from_extension)
            .unwrap_or_default(),
    };
    let background = match prop(args, "background").unwrap_or("transparent") {
        "transparent" => Background::Transparent,
        "color" => {
            let c = compositor::parse_color(prop(args, "background-color").unwrap_or("green"))
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
        Some(j) => compositor::parse_composition(j)
            .map_err(|e| Fail::Input(format!("--composition: {e}")))?,
        None => compositor::Placement::default(),
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
        placement.anchor = compositor::parse_composition(&json)
            .map_err(|e| Fail::Input(format!("--anchor: {e}")))?
            .anchor;
    }
    let composition = (placement != compositor::Placement::default())
        .then(|| serde_json::from_str(&compositor::composition_to_json(&placement)).ok())
        .flatten();
    let settings = JobSettings {
        model: prop(args, "model")
            .map(str::parse)
            .transpose()
            .map_err(|e: String| Fail::Input(format!("--model: {e}")))?
            .unwrap_or_default(),
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
    let api_url = prop(args, "api-url").unwrap_or(remote::api::DEFAULT_API_URL);
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
                "job {} completed: wrote {} ({})",
                job.id,
                args.output.display(),
                holds(&args.output, output_format)
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

/// What the service's file holds, read from its header: whether the
/// input's sound came back (the service decides; a format without sound
/// cannot have it).
fn holds(output: &std::path::Path, format: OutputFormat) -> String {
    if format == OutputFormat::PngSequence {
        return "a zip of PNG frames: no sound".into();
    }
    match rbv_runner::streams(output, Duration::from_secs(20)) {
        Ok(s) if s.audio => "picture and sound".into(),
        Ok(_) => format!(
            "picture only: the service's {} has no sound",
            format.as_str()
        ),
        Err(e) => format!("its streams cannot be read here: {e}"),
    }
}
