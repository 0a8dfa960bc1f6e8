// SPDX-License-Identifier: MPL-2.0
//! A cached video scaler between two 4-byte images.

use super::*;

/// A cached video scaler between two 4-byte images (optionally cropping the
/// source), with its own source and destination buffers.
pub(super) struct Scaler {
    pub(super) key: (VideoInfo, VideoInfo, [u32; 4]),
    pub(super) converter: VideoConverter,
    pub(super) src: gst::Buffer,
    pub(super) dst: gst::Buffer,
}

pub(super) fn info(format: VideoFormat, width: u32, height: u32) -> Result<VideoInfo, String> {
    VideoInfo::builder(format, width, height)
        .build()
        .map_err(|e| format!("{width}x{height} {format:?}: {e}"))
}

impl Scaler {
    pub(super) fn get(
        cache: &mut Option<Scaler>,
        src: VideoInfo,
        dst: VideoInfo,
        crop: [u32; 4],
        method: VideoResamplerMethod,
    ) -> Result<&mut Scaler, String> {
        let key = (src, dst, crop);
        if cache.as_ref().is_none_or(|s| s.key != key) {
            let mut config = VideoConverterConfig::new();
            config.set_resampler_method(method);
            // Both cores (the blurred background's and the placed
            // foreground's scaling ran on one).
            config.set_threads(
                std::thread::available_parallelism()
                    .map_or(1, |n| n.get())
                    .min(2) as u32,
            );
            config.set_src_x(crop[0] as i32);
            config.set_src_y(crop[1] as i32);
            config.set_src_width(Some(crop[2] as i32));
            config.set_src_height(Some(crop[3] as i32));
            let converter =
                VideoConverter::new(&key.0, &key.1, Some(config)).map_err(|e| e.to_string())?;
            let src = gst::Buffer::with_size(key.0.size()).map_err(|e| e.to_string())?;
            let dst = gst::Buffer::with_size(key.1.size()).map_err(|e| e.to_string())?;
            *cache = Some(Scaler {
                key,
                converter,
                src,
                dst,
            });
        }
        Ok(cache.as_mut().expect("set above"))
    }

    /// Runs the converter from `src` to `dst`.
    pub(super) fn run(&mut self) -> Result<(), String> {
        let src = VideoFrameRef::from_buffer_ref_readable(self.src.as_ref(), &self.key.0)
            .map_err(|e| e.to_string())?;
        let mut dst = VideoFrameRef::from_buffer_ref_writable(self.dst.make_mut(), &self.key.1)
            .map_err(|e| e.to_string())?;
        self.converter.frame_ref(&src, &mut dst);
        Ok(())
    }

    /// Gives a writable view of the source buffer to `f`.
    pub(super) fn with_src<R>(&mut self, f: impl FnOnce(PixelsMut) -> R) -> Result<R, String> {
        let info = self.key.0.clone();
        let mut frame = VideoFrameRef::from_buffer_ref_writable(self.src.make_mut(), &info)
            .map_err(|e| e.to_string())?;
        let stride = frame.plane_stride()[0] as usize;
        let data = frame.plane_data_mut(0).map_err(|e| e.to_string())?;
        Ok(f(PixelsMut::new(
            data,
            info.width(),
            info.height(),
            stride,
        )?))
    }

    /// Gives a view of the destination buffer to `f`.
    pub(super) fn with_dst<R>(&self, f: impl FnOnce(Pixels) -> R) -> Result<R, String> {
        let info = &self.key.1;
        let frame = VideoFrameRef::from_buffer_ref_readable(self.dst.as_ref(), info)
            .map_err(|e| e.to_string())?;
        let stride = frame.plane_stride()[0] as usize;
        let data = frame.plane_data(0).map_err(|e| e.to_string())?;
        Ok(f(Pixels::new(data, info.width(), info.height(), stride)?))
    }
}
