// SPDX-License-Identifier: MPL-2.0
//! A small application around `rbvremove`: cuts the people out of a video
//! file, writes the result over a colour to WebM, changes the background and
//! the composition while playing, prints the element's `rbv-stats` messages,
//! and stops cleanly on EOS or on an error.
//!
//! Run: `cargo run --release --example app -- IN OUT.webm`
//! (uses an installed rbv plugin if GStreamer finds one, else the one linked in).

use std::process::ExitCode;

use gst::prelude::*;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, input, output] = &args[..] else {
        eprintln!("usage: app IN OUT.webm");
        return ExitCode::from(2);
    };
    match run(input, output) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("app: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(input: &str, output: &str) -> Result<(), String> {
    gst::init().map_err(|e| e.to_string())?;
    if gst::ElementFactory::find("rbvremove").is_none() {
        gstrbv::plugin_register_static().map_err(|e| e.to_string())?;
    }
    // Elements made one by one, so file names need no quoting.
    let pipeline = gst::parse::launch(
        "filesrc name=src ! decodebin ! videoconvert ! \
         rbvremove name=rbv background=color background-color=#202830 stats-interval=250 ! \
         videoconvert ! vp8enc deadline=1 ! webmmux ! filesink name=sink",
    )
    .map_err(|e| e.to_string())?
    .downcast::<gst::Pipeline>()
    .map_err(|_| "not a pipeline")?;
    let by_name = |n: &str| pipeline.by_name(n).ok_or(format!("no {n}"));
    by_name("src")?.set_property("location", input);
    by_name("sink")?.set_property("location", output);
    let rbv = by_name("rbv")?;

    let bus = pipeline.bus().ok_or("no bus")?;
    if let Err(e) = pipeline.set_state(gst::State::Playing) {
        // The element that failed says why on the bus.
        let why = bus
            .timed_pop_filtered(gst::ClockTime::from_seconds(1), &[gst::MessageType::Error])
            .and_then(|m| match m.view() {
                gst::MessageView::Error(err) => Some(format!(
                    "{} ({})",
                    err.error(),
                    err.debug().map(|d| d.to_string()).unwrap_or_default()
                )),
                _ => None,
            })
            .unwrap_or_else(|| e.to_string());
        let _ = pipeline.set_state(gst::State::Null);
        return Err(format!("cannot start: {why}"));
    }
    let mut step = 0;
    let result = loop {
        // Settings change from the application's thread while frames flow.
        let position = pipeline
            .query_position::<gst::ClockTime>()
            .unwrap_or(gst::ClockTime::ZERO);
        if step == 0 && position >= gst::ClockTime::from_mseconds(200) {
            rbv.set_property_from_str("background-color", "#00B140");
            println!("app: background-color -> #00B140 at {position}");
            step = 1;
        } else if step == 1 && position >= gst::ClockTime::from_mseconds(400) {
            rbv.set_property(
                "composition",
                r#"{"foreground":{"anchor":"bottom-right","scale":0.5,"offset":{"x":-16,"y":-16}}}"#,
            );
            println!("app: composition -> bottom-right, scale 0.5 at {position}");
            step = 2;
        }
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(50)) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => break Ok(()),
            gst::MessageView::Error(e) => {
                break Err(format!(
                    "{} ({})",
                    e.error(),
                    e.debug().map(|d| d.to_string()).unwrap_or_default()
                ));
            }
            gst::MessageView::Warning(w) => println!("app: warning: {}", w.error()),
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure().filter(|s| s.name() == "rbv-stats") {
                    // Fields with nothing to report are absent (no inference
                    // finished in the window, no mask yet): shown as "-".
                    let ms = |f: &str| s.get::<f64>(f).map_or("-".into(), |v| format!("{v:.2}"));
                    println!(
                        "app: rbv-stats frames={} fps={:.1} inference p50={} ms p95={} ms \
                         mask-age={} model={} provider={}",
                        s.get::<u64>("frames").unwrap_or(0),
                        s.get::<f64>("fps").unwrap_or(0.0),
                        ms("inference-p50-ms"),
                        ms("inference-p95-ms"),
                        s.get::<u32>("mask-age")
                            .map_or("-".into(), |a| a.to_string()),
                        s.get::<&str>("model").unwrap_or("?"),
                        s.get::<&str>("execution-provider").unwrap_or("?"),
                    );
                }
            }
            _ => {}
        }
    };
    pipeline
        .set_state(gst::State::Null)
        .map_err(|e| format!("cannot stop: {e}"))?;
    result
}
