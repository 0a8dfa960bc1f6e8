// SPDX-License-Identifier: MPL-2.0
//! What an uploaded file is, by GStreamer's type finder.

/// What GStreamer's type finder says a file is, as one of the upload types
/// the service takes: (MIME type, file extension).
pub fn sniff_video(head: &[u8]) -> Option<(&'static str, &'static str)> {
    let caps = gst_base::functions::type_find_helper_for_data(None::<&gst::Object>, head)
        .ok()?
        .0;
    let name = caps.structure(0)?.name().to_string();
    match name.as_str() {
        "video/quicktime" => {
            // mp4 and mov share the container; the brand tells them apart.
            let variant = caps
                .structure(0)
                .and_then(|s| s.get::<String>("variant").ok())
                .unwrap_or_default();
            if variant == "apple" {
                Some(("video/quicktime", "mov"))
            } else {
                Some(("video/mp4", "mp4"))
            }
        }
        "video/webm" => Some(("video/webm", "webm")),
        "video/x-matroska" => Some(("video/x-matroska", "mkv")),
        "video/x-msvideo" => Some(("video/x-msvideo", "avi")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gst::prelude::*;

    #[test]
    fn sniffing_takes_video_containers_only() {
        gst::init().unwrap();
        let path = std::env::temp_dir().join(format!("rbv-sniff-{}.webm", std::process::id()));
        let p = gst::parse::launch(&format!(
            "videotestsrc num-buffers=2 ! video/x-raw,width=64,height=48 ! vp8enc ! webmmux ! \
             filesink location={}",
            path.display()
        ))
        .unwrap();
        p.set_state(gst::State::Playing).unwrap();
        let bus = p.bus().unwrap();
        bus.timed_pop_filtered(gst::ClockTime::from_seconds(10), &[gst::MessageType::Eos])
            .expect("encoded");
        p.set_state(gst::State::Null).unwrap();
        let webm = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(sniff_video(&webm), Some(("video/webm", "webm")));
        assert_eq!(
            sniff_video(b"#!/bin/sh\necho hello, this is not a video\n"),
            None
        );
        let png =
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
        assert_eq!(sniff_video(png), None);
    }
}
