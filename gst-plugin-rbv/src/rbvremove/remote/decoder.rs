// SPDX-License-Identifier: MPL-2.0
//! The finished job's output file, decoded to the element's output caps.

use std::path::Path;

use gst::prelude::*;

/// Decodes the job's output file to the negotiated caps.
pub struct Decoder {
    pipeline: gst::Pipeline,
    sink: gst_app::AppSink,
}

impl Decoder {
    pub fn open(path: &Path, caps: &gst::Caps) -> Result<Decoder, String> {
        let pipeline = gst::parse::launch(
            "filesrc name=src ! decodebin ! videoconvert ! videoscale ! videorate ! \
             capsfilter name=caps ! appsink name=sink sync=false max-buffers=8",
        )
        .map_err(|e| format!("cannot build the output decoder: {e}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "the output decoder is not a pipeline".to_string())?;
        let by_name = |n: &str| {
            pipeline
                .by_name(n)
                .ok_or_else(|| format!("the output decoder has no {n}"))
        };
        by_name("src")?.set_property("location", path.to_string_lossy().as_ref());
        let mut caps = caps.clone();
        if let Some(s) = caps.make_mut().structure_mut(0)
            && s.get::<gst::Fraction>("framerate")
                .is_ok_and(|f| f.numer() == 0)
        {
            s.remove_field("framerate");
        }
        by_name("caps")?.set_property("caps", &caps);
        let sink = by_name("sink")?
            .downcast::<gst_app::AppSink>()
            .map_err(|_| "the output decoder has no appsink".to_string())?;
        if pipeline.set_state(gst::State::Playing).is_err() {
            let why = decode_error(&pipeline);
            let _ = pipeline.set_state(gst::State::Null);
            return Err(why);
        }
        Ok(Decoder { pipeline, sink })
    }

    /// The next frame; `Ok(None)` at the end. Returns `Err` on a decoding
    /// failure and `Ok(None)` early when `interrupted` says so.
    pub fn next(&self, interrupted: &dyn Fn() -> bool) -> Result<Option<gst::Sample>, String> {
        loop {
            if interrupted() {
                return Ok(None);
            }
            if let Some(sample) = self
                .sink
                .try_pull_sample(gst::ClockTime::from_mseconds(100))
            {
                return Ok(Some(sample));
            }
            if self.sink.is_eos() {
                return Ok(None);
            }
            let why = decode_error(&self.pipeline);
            if why != NO_ERROR {
                return Err(why);
            }
        }
    }
}

const NO_ERROR: &str = "it cannot be decoded";

/// The decoder's first error, read off its bus.
fn decode_error(pipeline: &gst::Pipeline) -> String {
    let found = pipeline.bus().and_then(|bus| {
        bus.pop_filtered(&[gst::MessageType::Error])
            .and_then(|m| match m.view() {
                gst::MessageView::Error(e) => Some(e.error().to_string()),
                _ => None,
            })
    });
    found.unwrap_or_else(|| NO_ERROR.into())
}

impl Drop for Decoder {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
