// SPDX-License-Identifier: MPL-2.0
//! The foreground's pixels: the incoming frame converted to 4-byte RGBA or
//! BGRA at its own size, by the `yuv` crate's SIMD kernels (AVX2/SSE4.1,
//! picked at run time), in bands of rows that can run on several cores.
//!
//! Why not GStreamer's converter for these: at 1080p its I420 -> RGBA took
//! 1.9 ms on one thread of the development machine, the largest single
//! cost of a frame beside the model; the `yuv` crate does the same
//! conversion (13-bit fixed point, nearest chroma as GStreamer's fast
//! paths do) several times faster (`cargo bench -p gst-plugin-rbv --bench
//! profile` prints both). Formats it does not cover (ARGB/ABGR output,
//! packed 4:2:2, 10-bit, interlaced or cropped frames) stay with GStreamer.

use gst_video::prelude::*;
use gst_video::{VideoColorMatrix, VideoColorRange, VideoFormat, VideoFrameRef, VideoInfo};
use yuv::{YuvBiPlanarImage, YuvConversionMode, YuvPlanarImage, YuvRange, YuvStandardMatrix};

/// The input layouts converted here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// Three planes; (chroma halved horizontally, vertically); U and V swapped (YV12).
    Planar {
        h_sub: bool,
        v_sub: bool,
        swap: bool,
    },
    /// NV12 / NV21.
    BiPlanar { nv21: bool },
    /// Packed RGB or BGR (3 bytes).
    Rgb { bgr: bool },
    /// Packed 4 bytes in RGBA or BGRA order, alpha byte ignored or kept.
    Rgba4 { bgra: bool },
}

/// Converts frames of one input layout to RGBA or BGRA of the same size.
#[derive(Debug, Clone)]
pub struct ToRgba {
    source: Source,
    /// Output in BGRA order (else RGBA).
    bgra: bool,
    range: YuvRange,
    matrix: YuvStandardMatrix,
    width: u32,
    height: u32,
}

impl ToRgba {
    /// A converter from `info` to `out` (RGBA or BGRA, same size), or `None`
    /// where this module does not cover the pair (GStreamer's converter
    /// does it then).
    pub fn new(info: &VideoInfo, out: VideoFormat) -> Option<ToRgba> {
        let bgra = match out {
            VideoFormat::Rgba => false,
            VideoFormat::Bgra => true,
            _ => return None,
        };
        if info.is_interlaced() || info.width() == 0 || info.height() == 0 {
            return None;
        }
        let source = match info.format() {
            VideoFormat::I420 => Source::Planar {
                h_sub: true,
                v_sub: true,
                swap: false,
            },
            VideoFormat::Yv12 => Source::Planar {
                h_sub: true,
                v_sub: true,
                swap: true,
            },
            VideoFormat::Y42b => Source::Planar {
                h_sub: true,
                v_sub: false,
                swap: false,
            },
            VideoFormat::Y444 => Source::Planar {
                h_sub: false,
                v_sub: false,
                swap: false,
            },
            VideoFormat::Nv12 => Source::BiPlanar { nv21: false },
            VideoFormat::Nv21 => Source::BiPlanar { nv21: true },
            VideoFormat::Rgb => Source::Rgb { bgr: false },
            VideoFormat::Bgr => Source::Rgb { bgr: true },
            // Alpha-carrying inputs are copied as they are (the matte
            // multiplies their alpha later); padding bytes become 255.
            VideoFormat::Rgba | VideoFormat::Rgbx => Source::Rgba4 { bgra: false },
            VideoFormat::Bgra | VideoFormat::Bgrx => Source::Rgba4 { bgra: true },
            _ => return None,
        };
        let c = info.colorimetry();
        let range = if c.range() == VideoColorRange::Range0_255 {
            YuvRange::Full
        } else {
            YuvRange::Limited
        };
        // GStreamer's own rule for YUV without a known matrix.
        let matrix = match c.matrix() {
            VideoColorMatrix::Unknown | VideoColorMatrix::Rgb => {
                if info.height() >= 720 {
                    VideoColorMatrix::Bt709
                } else {
                    VideoColorMatrix::Bt601
                }
            }
            m => m,
        };
        let (kr, kb) = matrix.kr_kb().unwrap_or((0.2126, 0.0722));
        Some(ToRgba {
            source,
            bgra,
            range,
            matrix: YuvStandardMatrix::Custom(kr as f32, kb as f32),
            width: info.width(),
            height: info.height(),
        })
    }

    /// Converts rows `rows` (for 4:2:0 sources a band starts on an even
    /// row) of `frame` into `out`, whose first byte is that of row
    /// `rows.start`, `stride` bytes per row.
    pub fn run_rows(
        &self,
        frame: &VideoFrameRef<&gst::BufferRef>,
        rows: std::ops::Range<u32>,
        out: &mut [u8],
        stride: usize,
    ) -> Result<(), String> {
        let (w, y0) = (self.width, rows.start);
        let h = rows.end.min(self.height).saturating_sub(y0);
        if h == 0 {
            return Ok(());
        }
        if out.len() < stride * (h as usize - 1) + w as usize * 4 {
            return Err(format!("{} bytes cannot hold {w}x{h} RGBA", out.len()));
        }
        let plane = |i: u32, row: u32| -> Result<(&[u8], usize), String> {
            let st = frame.plane_stride()[i as usize] as usize;
            let data = frame.plane_data(i).map_err(|e| e.to_string())?;
            let at = st * row as usize;
            if at > data.len() {
                return Err(format!("plane {i} is too small"));
            }
            Ok((&data[at..], st))
        };
        let stride32 = stride as u32;
        let err = |e: yuv::YuvError| e.to_string();
        match self.source {
            Source::Planar { h_sub, v_sub, swap } => {
                if v_sub && y0 % 2 == 1 {
                    return Err("a 4:2:0 band must start on an even row".into());
                }
                let cy = if v_sub { y0 / 2 } else { y0 };
                let (yp, ys) = plane(0, y0)?;
                let (mut up, mut us) = plane(1, cy)?;
                let (mut vp, mut vs) = plane(2, cy)?;
                if swap {
                    std::mem::swap(&mut up, &mut vp);
                    std::mem::swap(&mut us, &mut vs);
                }
                let image = YuvPlanarImage {
                    y_plane: yp,
                    y_stride: ys as u32,
                    u_plane: up,
                    u_stride: us as u32,
                    v_plane: vp,
                    v_stride: vs as u32,
                    width: w,
                    height: h,
                };
                let (r, m) = (self.range, self.matrix);
                match (h_sub, v_sub, self.bgra) {
                    (true, true, false) => yuv::yuv420_to_rgba(&image, out, stride32, r, m),
                    (true, true, true) => yuv::yuv420_to_bgra(&image, out, stride32, r, m),
                    (true, false, false) => yuv::yuv422_to_rgba(&image, out, stride32, r, m),
                    (true, false, true) => yuv::yuv422_to_bgra(&image, out, stride32, r, m),
                    (_, _, false) => yuv::yuv444_to_rgba(&image, out, stride32, r, m),
                    (_, _, true) => yuv::yuv444_to_bgra(&image, out, stride32, r, m),
                }
                .map_err(err)
            }
            Source::BiPlanar { nv21 } => {
                if y0 % 2 == 1 {
                    return Err("a 4:2:0 band must start on an even row".into());
                }
                let (yp, ys) = plane(0, y0)?;
                let (uv, uvs) = plane(1, y0 / 2)?;
                let image = YuvBiPlanarImage {
                    y_plane: yp,
                    y_stride: ys as u32,
                    uv_plane: uv,
                    uv_stride: uvs as u32,
                    width: w,
                    height: h,
                };
                let (r, m, mode) = (self.range, self.matrix, YuvConversionMode::default());
                match (nv21, self.bgra) {
                    (false, false) => yuv::yuv_nv12_to_rgba(&image, out, stride32, r, m, mode),
                    (false, true) => yuv::yuv_nv12_to_bgra(&image, out, stride32, r, m, mode),
                    (true, false) => yuv::yuv_nv21_to_rgba(&image, out, stride32, r, m, mode),
                    (true, true) => yuv::yuv_nv21_to_bgra(&image, out, stride32, r, m, mode),
                }
                .map_err(err)
            }
            Source::Rgb { bgr } => {
                let (src, st) = plane(0, y0)?;
                let st = st as u32;
                match (bgr, self.bgra) {
                    (false, false) => yuv::rgb_to_rgba(src, st, out, stride32, w, h),
                    (false, true) => yuv::rgb_to_bgra(src, st, out, stride32, w, h),
                    (true, false) => yuv::bgr_to_rgba(src, st, out, stride32, w, h),
                    (true, true) => yuv::bgr_to_bgra(src, st, out, stride32, w, h),
                }
                .map_err(err)
            }
            Source::Rgba4 { bgra } => {
                let (src, st) = plane(0, y0)?;
                let n = w as usize * 4;
                if bgra != self.bgra {
                    let sh = st as u32;
                    if bgra {
                        yuv::bgra_to_rgba(src, sh, out, stride32, w, h)
                    } else {
                        yuv::rgba_to_bgra(src, sh, out, stride32, w, h)
                    }
                    .map_err(err)?;
                } else {
                    if src.len() < st * (h as usize - 1) + n {
                        return Err("plane 0 is too small".into());
                    }
                    for (o, s) in out.chunks_mut(stride).zip(src.chunks(st)).take(h as usize) {
                        o[..n].copy_from_slice(&s[..n]);
                    }
                }
                // RGBx/BGRx: the padding byte becomes opaque alpha.
                if matches!(frame.format(), VideoFormat::Rgbx | VideoFormat::Bgrx) {
                    for o in out.chunks_mut(stride).take(h as usize) {
                        o[..n].chunks_exact_mut(4).for_each(|p| p[3] = 255);
                    }
                }
                Ok(())
            }
        }
    }

    /// Converts the whole frame into `out` (`stride` bytes per row), split
    /// in `bands` bands of rows over rayon's pool (1: on this thread).
    pub fn run(
        &self,
        frame: &VideoFrameRef<&gst::BufferRef>,
        out: &mut [u8],
        stride: usize,
        bands: usize,
    ) -> Result<(), String> {
        let h = self.height as usize;
        // Even band heights keep 4:2:0 chroma rows whole.
        let band = h.div_ceil(bands.max(1)).next_multiple_of(2).max(2);
        if bands <= 1 || h <= band {
            return self.run_rows(frame, 0..self.height, out, stride);
        }
        use rayon::prelude::*;
        let end = (stride * (h - 1) + self.width as usize * 4).min(out.len());
        out[..end]
            .par_chunks_mut(stride * band)
            .enumerate()
            .try_for_each(|(i, chunk)| {
                let y0 = (i * band) as u32;
                self.run_rows(frame, y0..y0 + band as u32, chunk, stride)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `format` frame of a smooth picture (gradients and a soft disc,
    /// as camera frames are: chroma siting only moves edges a little), or of
    /// random bytes (`noise`).
    fn frame_of(format: VideoFormat, w: u32, h: u32, noise: bool) -> (VideoInfo, gst::Buffer) {
        gst::init().unwrap();
        let info = VideoInfo::builder(format, w, h).build().unwrap();
        let mut buf = gst::Buffer::with_size(info.size()).unwrap();
        if noise {
            let mut map = buf.get_mut().unwrap().map_writable().unwrap();
            let mut rng = fastrand::Rng::with_seed(u64::from(w * h));
            // YUV samples within their legal range (16-235), as video has.
            let yuv = info.is_yuv();
            map.iter_mut()
                .for_each(|b| *b = if yuv { rng.u8(16..=235) } else { rng.u8(..) });
            drop(map);
            return (info, buf);
        }
        let src_info = VideoInfo::builder(VideoFormat::Rgba, w, h).build().unwrap();
        let mut src = gst::Buffer::with_size(src_info.size()).unwrap();
        {
            let mut map = src.get_mut().unwrap().map_writable().unwrap();
            for (i, p) in map.chunks_exact_mut(4).enumerate() {
                let (x, y) = ((i as u32 % w) as f32, (i as u32 / w) as f32);
                let d = ((x - w as f32 / 2.0).powi(2) + (y - h as f32 / 2.0).powi(2)).sqrt();
                let disc = (1.0 - (d / h as f32)).clamp(0.0, 1.0);
                p.copy_from_slice(&[
                    (x * 100.0 / w as f32 + 60.0) as u8,
                    (y * 60.0 / h as f32 + 90.0) as u8,
                    (disc * 50.0 + 100.0) as u8,
                    (i % 256) as u8,
                ]);
            }
        }
        let conv = gst_video::VideoConverter::new(&src_info, &info, None).unwrap();
        {
            let sf = VideoFrameRef::from_buffer_ref_readable(src.as_ref(), &src_info).unwrap();
            let mut df =
                VideoFrameRef::from_buffer_ref_writable(buf.get_mut().unwrap(), &info).unwrap();
            conv.frame_ref(&sf, &mut df);
        }
        (info, buf)
    }

    fn ours(info: &VideoInfo, buf: &gst::Buffer, out: VideoFormat, bands: usize) -> Vec<u8> {
        let conv = ToRgba::new(info, out).unwrap();
        let stride = info.width() as usize * 4;
        let mut o = vec![0u8; stride * info.height() as usize];
        let f = VideoFrameRef::from_buffer_ref_readable(buf.as_ref(), info).unwrap();
        conv.run(&f, &mut o, stride, bands).unwrap();
        o
    }

    /// The exact colour of pixel (x, y): the matrix in floating point,
    /// nearest chroma sample (as the crate and GStreamer's fast paths).
    fn exact(info: &VideoInfo, buf: &gst::Buffer, x: u32, y: u32) -> [u8; 3] {
        let f = VideoFrameRef::from_buffer_ref_readable(buf.as_ref(), info).unwrap();
        let fi = info.format_info();
        let sample = |c: u8| {
            let (ws, hs) = (fi.w_sub()[c as usize], fi.h_sub()[c as usize]);
            let plane = fi.plane()[c as usize] as usize;
            let st = f.plane_stride()[plane] as usize;
            let ps = info.comp_pstride(c) as usize;
            let d = f.comp_data(u32::from(c)).unwrap();
            f32::from(d[(y >> hs) as usize * st + (x >> ws) as usize * ps])
        };
        let (a, b, c) = (sample(0), sample(1), sample(2));
        if fi.is_rgb() {
            return [a as u8, b as u8, c as u8];
        }
        let (kr, kb) = info.colorimetry().matrix().kr_kb().unwrap();
        let (kr, kb) = (kr as f32, kb as f32);
        let kg = 1.0 - kr - kb;
        let yy = (a - 16.0) * 255.0 / 219.0;
        let (u, v) = ((b - 128.0) * 255.0 / 224.0, (c - 128.0) * 255.0 / 224.0);
        let px = |v: f32| (v + 0.5).clamp(0.0, 255.0) as u8;
        [
            px(yy + 2.0 * (1.0 - kr) * v),
            px(yy - 2.0 * (1.0 - kb) * kb / kg * u - 2.0 * (1.0 - kr) * kr / kg * v),
            px(yy + 2.0 * (1.0 - kb) * u),
        ]
    }

    #[test]
    fn gives_the_exact_colour_within_rounding() {
        // Random (legal) pixels in every covered layout, both orders, odd sizes:
        // each channel within one level of the exact colour (13-bit fixed
        // point), alpha opaque (or the input's); RGB layouts exactly.
        // (GStreamer's own converter is up to 4 levels off it here.)
        for format in [
            VideoFormat::I420,
            VideoFormat::Yv12,
            VideoFormat::Nv12,
            VideoFormat::Nv21,
            VideoFormat::Y42b,
            VideoFormat::Y444,
            VideoFormat::Rgb,
            VideoFormat::Bgr,
            VideoFormat::Rgba,
            VideoFormat::Bgra,
            VideoFormat::Bgrx,
        ] {
            for out in [VideoFormat::Rgba, VideoFormat::Bgra] {
                let (info, buf) = frame_of(format, 66, 38, true);
                let got = ours(&info, &buf, out, 1);
                let limit = if info.format_info().is_rgb() { 0 } else { 1 };
                let order: [usize; 3] = if out == VideoFormat::Bgra {
                    [2, 1, 0]
                } else {
                    [0, 1, 2]
                };
                let alpha_in = ours(&info, &buf, VideoFormat::Rgba, 1);
                for y in 0..38 {
                    for x in 0..66 {
                        let i = (y * 66 + x) as usize * 4;
                        let want = exact(&info, &buf, x, y);
                        for c in 0..3 {
                            let d = got[i + order[c]].abs_diff(want[c]);
                            assert!(
                                d <= limit,
                                "{format:?} -> {out:?} ({x},{y}) channel {c}: off by {d}"
                            );
                        }
                        let a = got[i + 3];
                        if info.has_alpha() {
                            assert_eq!(a, alpha_in[i + 3]);
                        } else {
                            assert_eq!(a, 255, "{format:?} -> {out:?} alpha");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn bands_give_the_same_pixels() {
        for format in [VideoFormat::I420, VideoFormat::Nv12, VideoFormat::Rgb] {
            let (info, buf) = frame_of(format, 130, 97, true);
            let one = ours(&info, &buf, VideoFormat::Rgba, 1);
            for bands in [2, 3, 8] {
                assert_eq!(
                    one,
                    ours(&info, &buf, VideoFormat::Rgba, bands),
                    "{format:?}"
                );
            }
        }
    }

    #[test]
    fn refuses_what_it_does_not_cover() {
        gst::init().unwrap();
        let info = VideoInfo::builder(VideoFormat::Yuy2, 64, 36)
            .build()
            .unwrap();
        assert!(ToRgba::new(&info, VideoFormat::Rgba).is_none());
        let info = VideoInfo::builder(VideoFormat::I420, 64, 36)
            .build()
            .unwrap();
        assert!(ToRgba::new(&info, VideoFormat::Argb).is_none());
    }
}
