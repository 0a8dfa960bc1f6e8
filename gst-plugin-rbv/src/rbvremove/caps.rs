// SPDX-License-Identifier: MPL-2.0
//! What `rbvremove` takes and gives: the formats of its pads, and how caps
//! on one side become caps on the other (the canvas and `background=mask`
//! decide the output).

use gst_video::VideoFormat;

use super::settings::OutputShape;

/// The formats decoders and cameras produce.
pub const INPUT_FORMATS: &[VideoFormat] = &[
    VideoFormat::I420,
    VideoFormat::Yv12,
    VideoFormat::Nv12,
    VideoFormat::Nv21,
    VideoFormat::Y42b,
    VideoFormat::Y444,
    VideoFormat::Yuy2,
    VideoFormat::Uyvy,
    VideoFormat::Ayuv,
    VideoFormat::Rgb,
    VideoFormat::Bgr,
    VideoFormat::Rgba,
    VideoFormat::Bgra,
    VideoFormat::Argb,
    VideoFormat::Abgr,
    VideoFormat::Rgbx,
    VideoFormat::Bgrx,
    VideoFormat::Xrgb,
    VideoFormat::Xbgr,
    VideoFormat::Gray8,
];

/// 4-byte formats with alpha: the foreground with its matte.
pub const OUTPUT_FORMATS: &[VideoFormat] = &[
    VideoFormat::Rgba,
    VideoFormat::Bgra,
    VideoFormat::Argb,
    VideoFormat::Abgr,
];

/// `background=mask` output.
pub const MASK_FORMAT: VideoFormat = VideoFormat::Gray8;

fn format_list(formats: &[VideoFormat]) -> gst::List {
    gst::List::new(formats.iter().map(|f| f.to_str()))
}

pub fn sink_template_caps() -> gst::Caps {
    gst_video::VideoCapsBuilder::new()
        .format_list(INPUT_FORMATS.iter().copied())
        .build()
}

pub fn src_template_caps() -> gst::Caps {
    gst_video::VideoCapsBuilder::new()
        .format_list(OUTPUT_FORMATS.iter().copied().chain([MASK_FORMAT]))
        .build()
}

/// Caps on the other side of the element from `caps` (on the sink side
/// when `to_src`), before any filter.
pub fn transform(caps: &gst::Caps, to_src: bool, shape: OutputShape) -> gst::Caps {
    let formats = match (to_src, shape.mask) {
        (true, true) => &[MASK_FORMAT][..],
        (true, false) => OUTPUT_FORMATS,
        (false, _) => INPUT_FORMATS,
    };
    let mut other = caps.clone();
    for s in other.make_mut().iter_mut() {
        s.set("format", format_list(formats));
        s.remove_fields(["colorimetry", "chroma-site"]);
        if to_src && !shape.mask {
            // What the converter produces from any input matrix.
            s.set("colorimetry", "sRGB");
        }
        // A set canvas side is the output's; the input's is then free.
        for (field, side) in [
            ("width", shape.canvas_width),
            ("height", shape.canvas_height),
        ] {
            if side == 0 {
                continue;
            }
            if to_src {
                s.set(field, side as i32);
            } else {
                s.set(field, gst::IntRange::new(1, i32::MAX));
            }
        }
    }
    other
}

/// Byte of a 4-byte pixel that holds alpha, for the output formats.
pub fn alpha_offset(format: VideoFormat) -> Option<usize> {
    match format {
        VideoFormat::Rgba | VideoFormat::Bgra => Some(3),
        VideoFormat::Argb | VideoFormat::Abgr => Some(0),
        _ => None,
    }
}

/// A straight RGBA colour in the byte order of `format`.
pub fn in_layout(c: [u8; 4], format: VideoFormat) -> [u8; 4] {
    let [r, g, b, a] = c;
    match format {
        VideoFormat::Bgra => [b, g, r, a],
        VideoFormat::Argb => [a, r, g, b],
        VideoFormat::Abgr => [a, b, g, r],
        _ => [r, g, b, a],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(mask: bool, w: u32, h: u32) -> OutputShape {
        OutputShape {
            mask,
            canvas_width: w,
            canvas_height: h,
        }
    }

    #[test]
    fn the_canvas_and_mask_decide_the_output_caps() {
        gst::init().unwrap();
        let input: gst::Caps = "video/x-raw,format=I420,width=640,height=360,\
                                framerate=30/1,colorimetry=bt709"
            .parse()
            .unwrap();
        let out = transform(&input, true, shape(false, 1920, 0));
        let s = out.structure(0).unwrap();
        assert_eq!(s.get::<i32>("width").unwrap(), 1920);
        assert_eq!(s.get::<i32>("height").unwrap(), 360, "unset side kept");
        assert_eq!(s.get::<&str>("colorimetry").unwrap(), "sRGB");
        assert_eq!(s.get::<gst::List>("format").unwrap().len(), 4);
        let mask = transform(&input, true, shape(true, 0, 0));
        let s = mask.structure(0).unwrap();
        assert_eq!(
            s.get::<gst::List>("format")
                .unwrap()
                .iter()
                .next()
                .unwrap()
                .get::<&str>()
                .unwrap(),
            "GRAY8"
        );
        assert!(!s.has_field("colorimetry"));
        // Back upstream: a set canvas side frees the input's.
        let output: gst::Caps = "video/x-raw,format=RGBA,width=1920,height=360"
            .parse()
            .unwrap();
        let back = transform(&output, false, shape(false, 1920, 0));
        let s = back.structure(0).unwrap();
        assert_eq!(
            s.get::<gst::IntRange<i32>>("width").unwrap(),
            gst::IntRange::new(1, i32::MAX)
        );
        assert_eq!(s.get::<i32>("height").unwrap(), 360);
        assert_eq!(
            s.get::<gst::List>("format").unwrap().len(),
            INPUT_FORMATS.len()
        );
    }

    #[test]
    fn colours_follow_the_byte_order() {
        let c = [1, 2, 3, 4];
        assert_eq!(in_layout(c, VideoFormat::Rgba), [1, 2, 3, 4]);
        assert_eq!(in_layout(c, VideoFormat::Bgra), [3, 2, 1, 4]);
        assert_eq!(in_layout(c, VideoFormat::Argb), [4, 1, 2, 3]);
        assert_eq!(in_layout(c, VideoFormat::Abgr), [4, 3, 2, 1]);
        for f in OUTPUT_FORMATS {
            let a = alpha_offset(*f).unwrap();
            assert_eq!(in_layout(c, *f)[a], 4, "{f:?}");
        }
        assert_eq!(alpha_offset(VideoFormat::Rgb), None);
    }
}
