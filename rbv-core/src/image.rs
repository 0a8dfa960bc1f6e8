// SPDX-License-Identifier: MPL-2.0
//! Background images: decoded with whatever GStreamer has a decoder for
//! (PNG, JPEG, WebP, TIFF, ...; the first frame of anything else), as RGBA.

use std::path::Path;
use std::time::Duration;

use gst::prelude::*;
use gst_video::VideoInfo;

/// A decoded picture.
#[derive(Debug)]
pub struct Image {
    pub info: VideoInfo,
    pub buffer: gst::Buffer,
}

/// How long decoding may take before it counts as failed.
const TIMEOUT: Duration = Duration::from_secs(20);

/// Decodes the image at `path` to RGBA. Errors name the file and the reason.
pub fn load(path: &Path) -> Result<Image, String> {
    let fail = |why: String| format!("cannot use '{}' as an image: {why}", path.display());
    let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
    if !meta.is_file() {
        return Err(fail("not a file".into()));
    }
    let pipeline = gst::parse::launch(
        "filesrc name=src ! decodebin ! videoconvert ! \
         appsink name=sink caps=video/x-raw,format=RGBA max-buffers=1 sync=false",
    )
    .map_err(|e| fail(format!("GStreamer elements missing: {e}")))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| fail("not a pipeline".into()))?;
    let result = decode(&pipeline, path);
    let _ = pipeline.set_state(gst::State::Null);
    result.map_err(fail)
}

fn decode(pipeline: &gst::Pipeline, path: &Path) -> Result<Image, String> {
    let src = pipeline.by_name("src").ok_or("no filesrc")?;
    src.set_property("location", path.to_string_lossy().as_ref());
    let sink = pipeline
        .by_name("sink")
        .and_then(|s| s.downcast::<gst_app::AppSink>().ok())
        .ok_or("no appsink")?;
    let bus = pipeline.bus().ok_or("no bus")?;
    pipeline
        .set_state(gst::State::Paused)
        .map_err(|_| bus_error(&bus).unwrap_or_else(|| "cannot start decoding".into()))?;
    // Prerolled (a picture is waiting in the sink) or failed, whichever first.
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_nseconds(TIMEOUT.as_nanos() as u64),
            &[gst::MessageType::AsyncDone, gst::MessageType::Error],
        )
        .ok_or_else(|| format!("no picture decoded within {} s", TIMEOUT.as_secs()))?;
    if let gst::MessageView::Error(e) = msg.view() {
        return Err(e.error().to_string());
    }
    let sample = sink
        .try_pull_preroll(gst::ClockTime::ZERO)
        .ok_or("no picture decoded")?;
    let caps = sample.caps().ok_or("decoded picture without caps")?;
    let info = VideoInfo::from_caps(caps).map_err(|e| e.to_string())?;
    let buffer = sample
        .buffer_owned()
        .ok_or("decoded picture without data")?;
    // A second frame makes it a video (or an animation): its first frame
    // alone would be a silent choice of the user's background.
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| bus_error(&bus).unwrap_or_else(|| "cannot go on decoding".into()))?;
    let wait = gst::ClockTime::from_nseconds(TIMEOUT.as_nanos() as u64);
    let _first = sink.try_pull_sample(wait);
    if sink.try_pull_sample(wait).is_some() {
        return Err(
            "it is a video or an animation, and background-image takes one still picture \
             (PNG, JPEG, ...): lay the cut over a video with GStreamer's compositor \
             (pipelines/over-video.sh)"
                .into(),
        );
    }
    Ok(Image { info, buffer })
}

/// The first error on `bus`, as text.
fn bus_error(bus: &gst::Bus) -> Option<String> {
    let msg = bus.timed_pop_filtered(gst::ClockTime::ZERO, &[gst::MessageType::Error])?;
    match msg.view() {
        gst::MessageView::Error(e) => Some(e.error().to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init() {
        gst::init().unwrap();
    }

    #[test]
    fn decodes_a_png_written_by_gstreamer() {
        init();
        // A real PNG made by a real encoder: 32x16 red.
        let dir = std::env::temp_dir().join(format!("rbv-image-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let png = dir.join("red.png");
        let p = gst::parse::launch(&format!(
            "videotestsrc num-buffers=1 pattern=red ! video/x-raw,width=32,height=16 ! \
             pngenc ! filesink location={}",
            png.display()
        ))
        .unwrap();
        p.set_state(gst::State::Playing).unwrap();
        let bus = p.bus().unwrap();
        bus.timed_pop_filtered(gst::ClockTime::from_seconds(10), &[gst::MessageType::Eos])
            .expect("png written");
        p.set_state(gst::State::Null).unwrap();

        let img = load(&png).unwrap();
        assert_eq!((img.info.width(), img.info.height()), (32, 16));
        assert_eq!(img.info.format(), gst_video::VideoFormat::Rgba);
        let map = img.buffer.map_readable().unwrap();
        assert_eq!(&map[..4], &[255, 0, 0, 255]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_files_are_named_errors() {
        init();
        let err = load(Path::new("/nonexistent/bg.png")).unwrap_err();
        assert!(err.contains("/nonexistent/bg.png"), "{err}");
        let err = load(Path::new("/")).unwrap_err();
        assert!(err.contains("not a file"), "{err}");
        let junk = std::env::temp_dir().join(format!("rbv-junk-{}.png", std::process::id()));
        std::fs::write(&junk, b"this is not a picture at all").unwrap();
        let err = load(&junk).unwrap_err();
        assert!(err.contains(&junk.display().to_string()), "{err}");
        std::fs::remove_file(&junk).unwrap();
        // A video is not taken for its first frame.
        let clip = std::env::temp_dir().join(format!("rbv-clip-{}.webm", std::process::id()));
        let p = gst::parse::launch(&format!(
            "videotestsrc num-buffers=5 ! video/x-raw,width=32,height=16 ! vp8enc ! webmmux ! \
             filesink location={}",
            clip.display()
        ))
        .unwrap();
        p.set_state(gst::State::Playing).unwrap();
        p.bus()
            .unwrap()
            .timed_pop_filtered(gst::ClockTime::from_seconds(10), &[gst::MessageType::Eos])
            .expect("clip written");
        p.set_state(gst::State::Null).unwrap();
        let err = load(&clip).unwrap_err();
        assert!(
            err.contains(&clip.display().to_string()) && err.contains("is a video"),
            "{err}"
        );
        std::fs::remove_file(&clip).unwrap();
    }
}
