// SPDX-License-Identifier: MPL-2.0
//! Background images scaled to cover the canvas.

use super::*;

/// The source crop that scales to cover a `dw`x`dh` canvas with the aspect
/// kept, centred: (x, y, width, height) in the `sw`x`sh` source.
pub fn cover_crop((sw, sh): (u32, u32), (dw, dh): (u32, u32)) -> [u32; 4] {
    let (sw64, sh64, dw64, dh64) = (u64::from(sw), u64::from(sh), u64::from(dw), u64::from(dh));
    if sw64 * dh64 > dw64 * sh64 {
        // Wider than the canvas: crop the sides.
        let w = ((dw64 * sh64 + dh64 / 2) / dh64).clamp(1, sw64) as u32;
        [(sw - w) / 2, 0, w, sh]
    } else {
        let h = ((dh64 * sw64 + dw64 / 2) / dw64).clamp(1, sh64) as u32;
        [0, (sh - h) / 2, sw, h]
    }
}

/// An image scaled to cover a canvas (aspect kept, centred crop) and
/// converted to the output's pixel format, ready as a [`Background`].
#[derive(Debug)]
pub struct Cover {
    pub info: VideoInfo,
    pub buffer: gst::Buffer,
}

impl Cover {
    /// `image` is a decoded picture described by `image_info` (any format
    /// GStreamer converts); the result is `canvas` sized, in `format`.
    pub fn new(
        image: &gst::Buffer,
        image_info: &VideoInfo,
        (cw, ch): (u32, u32),
        format: VideoFormat,
    ) -> Result<Cover, String> {
        let crop = cover_crop((image_info.width(), image_info.height()), (cw, ch));
        let info = info(format, cw, ch)?;
        let mut config = VideoConverterConfig::new();
        config.set_resampler_method(VideoResamplerMethod::Cubic);
        config.set_src_x(crop[0] as i32);
        config.set_src_y(crop[1] as i32);
        config.set_src_width(Some(crop[2] as i32));
        config.set_src_height(Some(crop[3] as i32));
        let converter =
            VideoConverter::new(image_info, &info, Some(config)).map_err(|e| e.to_string())?;
        let mut buffer = gst::Buffer::with_size(info.size()).map_err(|e| e.to_string())?;
        {
            let src = VideoFrameRef::from_buffer_ref_readable(image.as_ref(), image_info)
                .map_err(|e| format!("image does not match its caps: {e}"))?;
            let mut dst = VideoFrameRef::from_buffer_ref_writable(buffer.make_mut(), &info)
                .map_err(|e| e.to_string())?;
            converter.frame_ref(&src, &mut dst);
        }
        Ok(Cover { info, buffer })
    }

    /// A view of the pixels for `f`.
    pub fn with_pixels<R>(&self, f: impl FnOnce(Pixels) -> R) -> Result<R, String> {
        let frame = VideoFrameRef::from_buffer_ref_readable(self.buffer.as_ref(), &self.info)
            .map_err(|e| e.to_string())?;
        let stride = frame.plane_stride()[0] as usize;
        let data = frame.plane_data(0).map_err(|e| e.to_string())?;
        Ok(f(Pixels::new(
            data,
            self.info.width(),
            self.info.height(),
            stride,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compositor::tests::{RED, image};

    #[test]
    fn cover_crops_to_the_canvas_aspect() {
        assert_eq!(cover_crop((1000, 500), (100, 100)), [250, 0, 500, 500]);
        assert_eq!(cover_crop((500, 1000), (160, 90)), [0, 359, 500, 281]);
        assert_eq!(cover_crop((640, 360), (1920, 1080)), [0, 0, 640, 360]);
        // An image as background: left half red, right half blue, 4:1, onto a
        // square canvas: the centre square shows both halves.
        gst::init().unwrap();
        let img = image(16, 4, |x, _| if x < 8 { RED } else { [0, 0, 255, 255] });
        let info = info(VideoFormat::Rgba, 16, 4).unwrap();
        let buffer = gst::Buffer::from_slice(img);
        let cover = Cover::new(&buffer, &info, (8, 8), VideoFormat::Bgra).unwrap();
        cover
            .with_pixels(|p| {
                assert_eq!((p.width, p.height), (8, 8));
                // BGRA: red is [0, 0, 255, 255].
                assert_eq!(px(p.row(4)), [0, 0, 255, 255]);
                assert_eq!(px(&p.row(4)[7 * 4..]), [255, 0, 0, 255]);
                assert!(p.is_opaque(3));
            })
            .unwrap();
    }
}
