// SPDX-License-Identifier: MPL-2.0
//! `rbv local`: the file through `rbvremove` on this machine, by the same
//! file-job runner `rbv serve` uses.

use std::path::Path;

use rbv_api::OutputFormat;
use rbv_runner::{Failure, Spec, Target};

use crate::progress::Progress;
use crate::{Args, Fail, REMOTE_ONLY, USAGE, prop};

/// What `-o OUT` asks for.
fn target(out: &str, transparent: bool) -> Result<Target, Fail> {
    if out.contains('%') && out.ends_with(".png") {
        Ok(Target::PngFrames)
    } else if out.ends_with(".mkv") {
        Ok(Target::Ffv1)
    } else if out.ends_with(".webm") {
        if transparent {
            return Err(Fail::Input(
                "VP8/WebM from this GStreamer keeps no alpha: write .mkv or %d.png, or set --background"
                    .into(),
            ));
        }
        Ok(Target::Service(OutputFormat::Webm))
    } else {
        Err(Fail::Input(format!(
            "{out}: write .mkv (alpha), .webm (with a background) or a %d.png pattern"
        )))
    }
}

pub fn run(args: &Args) -> Result<(), Fail> {
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
    let out = args.output.to_string_lossy().into_owned();
    let transparent = matches!(prop(args, "background"), None | Some("transparent"));
    let spec = Spec {
        input: Path::new(&args.input),
        output: &args.output,
        target: target(&out, transparent)?,
        properties: args.props.clone(),
        timeout: None,
    };
    let mut progress = Progress::new();
    rbv_runner::run(&spec, |p| {
        progress.show("removing the background", p.percent())
    })
    .map_err(|f| match f {
        Failure::NoProperty(name) => Fail::Input(format!("--{name}: no such option\n\n{USAGE}")),
        Failure::Property { name, value, why } => Fail::Input(format!("--{name} {value}: {why}")),
        Failure::Refused(why) => Fail::Input(why),
        Failure::Pipeline { ref error, .. }
            if error.is::<gst::LibraryError>() || error.is::<gst::ResourceError>() =>
        {
            Fail::Input(f.to_string())
        }
        other => Fail::Other(other.to_string()),
    })?;
    progress.done(&format!("wrote {out}"));
    Ok(())
}
