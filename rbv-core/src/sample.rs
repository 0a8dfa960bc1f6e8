// SPDX-License-Identifier: MPL-2.0
//! The first stage of the model's input for large frames, read straight
//! from the incoming frame: each pixel of an image twice the model's size
//! is the mean of 2x2 source samples spread over its cell, converted to RGB
//! once; GStreamer's linear resampler then halves it (the models are
//! measured to prefer its smoothing). No full-size intermediate: a 1080p
//! frame costs what its 147 thousand samples cost.
//!
//! Any 8-bit raw format whose components GStreamer describes (planar,
//! semi-planar and packed YUV, packed RGB, gray) is read through its
//! component layout; other formats, and sizes that would be enlarged,
//! are left to GStreamer's converter.

use gst_video::prelude::*;
use gst_video::{VideoColorMatrix, VideoColorRange, VideoFrameRef, VideoInfo};

/// YUV to RGB, as f32 coefficients on 0-255 values.
#[derive(Debug, Clone, Copy)]
struct Yuv {
    y_off: f32,
    y_mul: f32,
    c_mul: f32,
    /// R = Y + rv * V'; G = Y - gu * U' - gv * V'; B = Y + bu * U'.
    rv: f32,
    gu: f32,
    gv: f32,
    bu: f32,
}

impl Yuv {
    fn new(kr: f64, kb: f64, full_range: bool) -> Yuv {
        let kg = 1.0 - kr - kb;
        let (y_off, y_mul, c_mul) = if full_range {
            (0.0, 1.0, 1.0)
        } else {
            (16.0, 255.0 / 219.0, 255.0 / 224.0)
        };
        Yuv {
            y_off,
            y_mul: y_mul as f32,
            c_mul: c_mul as f32,
            rv: (2.0 * (1.0 - kr)) as f32,
            gu: (2.0 * (1.0 - kb) * kb / kg) as f32,
            gv: (2.0 * (1.0 - kr) * kr / kg) as f32,
            bu: (2.0 * (1.0 - kb)) as f32,
        }
    }

    #[inline(always)]
    fn rgb(&self, y: f32, u: f32, v: f32) -> [u8; 3] {
        let y = (y - self.y_off) * self.y_mul;
        let u = (u - 128.0) * self.c_mul;
        let v = (v - 128.0) * self.c_mul;
        // SAFETY: clamped to 0..=255 (x is never NaN: it comes from integer
        // sums), which i32 holds: a plain truncation, as `as u8` would give,
        // but one that vectorises.
        // `max`/`min` as measured (`clamp` would pass a NaN through).
        #[allow(clippy::manual_clamp)]
        let px = |x: f32| unsafe { (x + 0.5).max(0.0).min(255.0).to_int_unchecked::<i32>() as u8 };
        [
            px(y + self.rv * v),
            px(y - self.gu * u - self.gv * v),
            px(y + self.bu * u),
        ]
    }
}

/// Where one component's samples are.
#[derive(Debug, Clone)]
struct Comp {
    index: u32,
    plane: usize,
    /// Byte offsets, within a line, of the two sample columns of each cell.
    cols: Vec<[usize; 2]>,
    /// Lines of the two sample rows of each cell.
    rows: Vec<[usize; 2]>,
    /// Subsampled chroma: one sample per cell (already averaged by the
    /// subsampling; 0.3 ms less at 1080p).
    single: bool,
    /// Samples one byte apart (a plane of its own): the two sample rows
    /// are added whole first.
    planar: bool,
}

/// Samples one input layout to packed RGB at a fixed size.
#[derive(Debug, Clone)]
pub struct Sampler {
    comps: Vec<Comp>,
    yuv: Option<Yuv>,
    out: (usize, usize),
    /// One per band of rows (kept between frames).
    scratch: Vec<Scratch>,
}

/// What a band of rows works in.
#[derive(Debug, Clone, Default)]
struct Scratch {
    /// Per-row sums, one run of `ow` per component.
    sums: Vec<u32>,
    /// Two sample rows added; one output row in planar R, G, B.
    pair: Vec<u16>,
    rgb: Vec<u8>,
}

/// Two sample positions in each of `dst` equal cells over `src` samples,
/// at a quarter and three quarters of the cell.
fn samples(src: usize, dst: usize) -> Vec<[usize; 2]> {
    let at = |o: usize, q: f64| (((o as f64 + q) * src as f64 / dst as f64) as usize).min(src - 1);
    (0..dst).map(|o| [at(o, 0.25), at(o, 0.75)]).collect()
}

impl Sampler {
    /// The size to sample `info` down to on the way to `width`x`height`:
    /// twice the target (GStreamer's linear resampler does the last halving,
    /// whose smoothing the models are measured to prefer), or `None` when
    /// the source is not at least four times larger on both axes (then the
    /// converter alone is cheap enough).
    pub fn stage(info: &VideoInfo, width: u32, height: u32) -> Option<(u32, u32)> {
        (info.width() >= 4 * width && info.height() >= 4 * height)
            .then_some((2 * width, 2 * height))
    }

    /// A sampler from frames of `info` to `width`x`height` RGB; `None` for
    /// formats it does not read (not 8-bit, or no components described)
    /// and for enlargements.
    pub fn new(info: &VideoInfo, width: u32, height: u32) -> Option<Sampler> {
        let f = info.format_info();
        let (iw, ih) = (info.width() as usize, info.height() as usize);
        let (ow, oh) = (width as usize, height as usize);
        if ow == 0 || oh == 0 || iw < ow || ih < oh {
            return None;
        }
        let n = if f.is_gray() { 1 } else { 3 };
        if f.n_components() < n
            || f.depth()[..n as usize].iter().any(|&d| d != 8)
            || f.bits() != 8
            || f.flags().contains(gst_video::VideoFormatFlags::TILED)
        {
            return None;
        }
        let comps = (0..n)
            .map(|c| {
                let pstride = info.comp_pstride(c as u8);
                if pstride <= 0 {
                    return None;
                }
                let (wsub, hsub) = (f.w_sub()[c as usize], f.h_sub()[c as usize]);
                let (cw, ch) = (iw.div_ceil(1 << wsub), ih.div_ceil(1 << hsub));
                if cw < ow || ch < oh {
                    return None;
                }
                Some(Comp {
                    index: c,
                    plane: f.plane()[c as usize] as usize,
                    single: wsub > 0 && hsub > 0,
                    planar: pstride == 1,
                    cols: samples(cw, ow)
                        .into_iter()
                        .map(|[a, b]| [a * pstride as usize, b * pstride as usize])
                        .collect(),
                    rows: samples(ch, oh),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let yuv = if f.is_yuv() {
            let c = info.colorimetry();
            let matrix = match c.matrix() {
                VideoColorMatrix::Unknown | VideoColorMatrix::Rgb => {
                    if ih >= 720 {
                        VideoColorMatrix::Bt709
                    } else {
                        VideoColorMatrix::Bt601
                    }
                }
                m => m,
            };
            let (kr, kb) = matrix.kr_kb().unwrap_or((0.2126, 0.0722));
            Some(Yuv::new(kr, kb, c.range() == VideoColorRange::Range0_255))
        } else {
            None
        };
        Some(Sampler {
            scratch: Vec::new(),
            comps,
            yuv,
            out: (ow, oh),
        })
    }

    /// Samples a mapped frame into packed RGB (`stride` bytes per row).
    pub fn run(
        &mut self,
        frame: &VideoFrameRef<&gst::BufferRef>,
        out: &mut [u8],
        stride: usize,
    ) -> Result<(), String> {
        self.run_bands(frame, out, stride, 1)
    }

    /// [`run`](Self::run) in `bands` bands of rows over rayon's threads
    /// (the same result: each output row is made alone).
    pub fn run_bands(
        &mut self,
        frame: &VideoFrameRef<&gst::BufferRef>,
        out: &mut [u8],
        stride: usize,
        bands: usize,
    ) -> Result<(), String> {
        let (ow, oh) = self.out;
        if stride < ow * 3 || out.len() < stride * (oh - 1) + ow * 3 {
            return Err(format!("{} bytes cannot hold {ow}x{oh} RGB", out.len()));
        }
        let mut planes: [(&[u8], usize); 3] = [(&[], 0); 3];
        for (slot, c) in planes.iter_mut().zip(&self.comps) {
            let data = frame.comp_data(c.index).map_err(|e| e.to_string())?;
            let st = frame.plane_stride()[c.plane] as usize;
            // Every sample read lies inside the component's data.
            let last = c.rows[oh - 1][1] * st + c.cols[ow - 1][1];
            if last >= data.len() {
                return Err(format!("the frame's component {} is too small", c.index));
            }
            *slot = (data, st);
        }
        let bands = bands.clamp(1, oh);
        if self.scratch.len() < bands {
            self.scratch.resize_with(bands, Scratch::default);
        }
        let per = oh.div_ceil(bands);
        let out = &mut out[..stride * (oh - 1) + ow * 3];
        let rows = Rows {
            comps: &self.comps,
            yuv: self.yuv,
            planes,
            ow,
        };
        if bands == 1 {
            rows.run(0, oh, out, stride, &mut self.scratch[0]);
        } else {
            use rayon::prelude::*;
            out.par_chunks_mut(stride * per)
                .zip(self.scratch.par_iter_mut())
                .enumerate()
                .for_each(|(i, (band, scratch))| {
                    let first = i * per;
                    rows.run(first, per.min(oh - first), band, stride, scratch);
                });
        }
        Ok(())
    }
}

/// What every band reads: the layout and the frame's components.
struct Rows<'a> {
    comps: &'a [Comp],
    yuv: Option<Yuv>,
    planes: [(&'a [u8], usize); 3],
    ow: usize,
}

impl Rows<'_> {
    /// Output rows `first..first + count` into `out` (which starts at row
    /// `first`).
    fn run(&self, first: usize, count: usize, out: &mut [u8], stride: usize, s: &mut Scratch) {
        let (ow, n) = (self.ow, self.comps.len());
        let Scratch { sums, pair, rgb } = s;
        sums.resize(ow * n, 0);
        rgb.resize(ow * 3, 0);
        for (oy, row) in (first..).zip(out.chunks_mut(stride).take(count)) {
            for (ci, c) in self.comps.iter().enumerate() {
                let (data, st) = self.planes[ci];
                let [r0, r1] = c.rows[oy];
                let sums = &mut sums[ci * ow..(ci + 1) * ow];
                if c.single {
                    let l0 = &data[r0 * st..];
                    for (sum, &[x0, _]) in sums.iter_mut().zip(&c.cols) {
                        *sum = 4 * u32::from(l0[x0]);
                    }
                } else if !c.planar {
                    let (l0, l1) = (&data[r0 * st..], &data[r1 * st..]);
                    for (sum, &[x0, x1]) in sums.iter_mut().zip(&c.cols) {
                        *sum = u32::from(l0[x0])
                            + u32::from(l0[x1])
                            + u32::from(l1[x0])
                            + u32::from(l1[x1]);
                    }
                } else {
                    // The two sample rows added first (a vector add), so
                    // each cell gathers two values instead of four.
                    let len = c.cols[ow - 1][1] + 1;
                    add_rows(&data[r0 * st..][..len], &data[r1 * st..][..len], pair);
                    for (sum, &[x0, x1]) in sums.iter_mut().zip(&c.cols) {
                        *sum = u32::from(pair[x0]) + u32::from(pair[x1]);
                    }
                }
            }
            let (s0, rest) = sums.split_at(ow);
            let (s1, s2) = if n == 3 { rest.split_at(ow) } else { (s0, s0) };
            let (r, rest) = rgb.split_at_mut(ow);
            let (g, b) = rest.split_at_mut(ow);
            match &self.yuv {
                Some(m) => to_rgb(m, s0, s1, &s2[..ow], r, g, b),
                None => {
                    to_levels(s0, r);
                    to_levels(s1, g);
                    to_levels(&s2[..ow], b);
                }
            }
            for (((px, &r), &g), &b) in row[..ow * 3].chunks_exact_mut(3).zip(&*r).zip(&*g).zip(&*b)
            {
                px.copy_from_slice(&[r, g, b]);
            }
        }
    }
}

/// `out[i] = a[i] + b[i]` (a vector add).
fn add_rows(a: &[u8], b: &[u8], out: &mut Vec<u16>) {
    out.clear();
    out.extend(a.iter().zip(b).map(|(&x, &y)| u16::from(x) + u16::from(y)));
}

/// Sums of four samples to levels, rounded (gray and RGB input).
fn to_levels(sums: &[u32], out: &mut [u8]) {
    for (o, &s) in out.iter_mut().zip(sums) {
        // SAFETY: 0.5..=255.5 (a sum of four bytes over 4, plus 0.5).
        *o = unsafe { (s as f32 * 0.25 + 0.5).to_int_unchecked::<i32>() as u8 };
    }
}

/// Sums of four Y, U and V samples to planar RGB: the same arithmetic on
/// every pixel, vectorised (AVX2 where the CPU has it, checked at run
/// time; no fused multiply-add, so every instruction set rounds alike).
fn to_rgb(m: &Yuv, y: &[u32], u: &[u32], v: &[u32], r: &mut [u8], g: &mut [u8], b: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        unsafe { to_rgb_avx2(m, y, u, v, r, g, b) };
        return;
    }
    to_rgb_generic(m, y, u, v, r, g, b);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn to_rgb_avx2(m: &Yuv, y: &[u32], u: &[u32], v: &[u32], r: &mut [u8], g: &mut [u8], b: &mut [u8]) {
    to_rgb_generic(m, y, u, v, r, g, b);
}

#[inline(always)]
fn to_rgb_generic(
    m: &Yuv,
    y: &[u32],
    u: &[u32],
    v: &[u32],
    r: &mut [u8],
    g: &mut [u8],
    b: &mut [u8],
) {
    let n = r
        .len()
        .min(g.len())
        .min(b.len())
        .min(y.len())
        .min(u.len())
        .min(v.len());
    for i in 0..n {
        let [pr, pg, pb] = m.rgb(y[i] as f32 * 0.25, u[i] as f32 * 0.25, v[i] as f32 * 0.25);
        r[i] = pr;
        g[i] = pg;
        b[i] = pb;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gst_video::VideoFormat;

    fn frame_of(
        format: VideoFormat,
        w: u32,
        h: u32,
        fill: impl Fn(&mut VideoFrameRef<&mut gst::BufferRef>),
    ) -> (VideoInfo, gst::Buffer) {
        gst::init().unwrap();
        let info = VideoInfo::builder(format, w, h).build().unwrap();
        let mut buf = gst::Buffer::with_size(info.size()).unwrap();
        {
            let mut f =
                VideoFrameRef::from_buffer_ref_writable(buf.get_mut().unwrap(), &info).unwrap();
            fill(&mut f);
        }
        (info, buf)
    }

    /// What GStreamer's own converter makes of the same frame, linear
    /// resampling, as the element used before (its fixed-point YUV maths is
    /// a few levels off the exact colour).
    fn reference(info: &VideoInfo, buf: &gst::Buffer, w: u32, h: u32) -> Vec<u8> {
        let out_info = VideoInfo::builder(VideoFormat::Rgb, w, h).build().unwrap();
        let mut cfg = gst_video::VideoConverterConfig::new();
        cfg.set_resampler_method(gst_video::VideoResamplerMethod::Linear);
        let conv = gst_video::VideoConverter::new(info, &out_info, Some(cfg)).unwrap();
        let mut out = gst::Buffer::with_size(out_info.size()).unwrap();
        {
            let inf = VideoFrameRef::from_buffer_ref_readable(buf.as_ref(), info).unwrap();
            let mut of =
                VideoFrameRef::from_buffer_ref_writable(out.get_mut().unwrap(), &out_info).unwrap();
            conv.frame_ref(&inf, &mut of);
        }
        let of = VideoFrameRef::from_buffer_ref_readable(out.as_ref(), &out_info).unwrap();
        let st = of.plane_stride()[0] as usize;
        of.plane_data(0)
            .unwrap()
            .chunks(st)
            .take(h as usize)
            .flat_map(|r| r[..w as usize * 3].to_vec())
            .collect()
    }

    /// `src` painted into a frame of `format` by GStreamer's converter.
    fn converted(
        src_info: &VideoInfo,
        src: &gst::Buffer,
        format: VideoFormat,
    ) -> (VideoInfo, gst::Buffer) {
        let info = VideoInfo::builder(format, src_info.width(), src_info.height())
            .build()
            .unwrap();
        let conv = gst_video::VideoConverter::new(src_info, &info, None).unwrap();
        let mut buf = gst::Buffer::with_size(info.size()).unwrap();
        {
            let sf = VideoFrameRef::from_buffer_ref_readable(src.as_ref(), src_info).unwrap();
            let mut df =
                VideoFrameRef::from_buffer_ref_writable(buf.get_mut().unwrap(), &info).unwrap();
            conv.frame_ref(&sf, &mut df);
        }
        (info, buf)
    }

    fn sampled(info: &VideoInfo, buf: &gst::Buffer, w: u32, h: u32) -> Vec<u8> {
        let mut s = Sampler::new(info, w, h).unwrap();
        let mut out = vec![0u8; (w * h * 3) as usize];
        let f = VideoFrameRef::from_buffer_ref_readable(buf.as_ref(), info).unwrap();
        s.run(&f, &mut out, w as usize * 3).unwrap();
        out
    }

    #[test]
    fn flat_colours_come_out_as_the_converter_makes_them() {
        // A flat colour in every layout family: same RGB as GStreamer's converter.
        for format in [
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
            VideoFormat::Bgrx,
            VideoFormat::Argb,
            VideoFormat::Gray8,
        ] {
            // Paint through GStreamer's converter from an RGBA orange.
            let (src_info, src) = frame_of(VideoFormat::Rgba, 64, 36, |f| {
                for p in f.plane_data_mut(0).unwrap().chunks_exact_mut(4) {
                    p.copy_from_slice(&[230, 120, 40, 255]);
                }
            });
            let (info, buf) = converted(&src_info, &src, format);
            // The colour comes back (within YUV rounding), and within the
            // converter's own fixed-point error of what it makes.
            let a = sampled(&info, &buf, 16, 9);
            let b = reference(&info, &buf, 16, 9);
            let want: [u8; 3] = if format == VideoFormat::Gray8 {
                [b[0]; 3]
            } else {
                [230, 120, 40]
            };
            for p in a.chunks(3) {
                let worst = p
                    .iter()
                    .zip(&want)
                    .map(|(x, y)| x.abs_diff(*y))
                    .max()
                    .unwrap();
                assert!(worst <= 3, "{format:?}: {p:?} vs {want:?}");
            }
            let worst = a.iter().zip(&b).map(|(x, y)| x.abs_diff(*y)).max().unwrap();
            assert!(
                worst <= 6,
                "{format:?}: {:?} vs converter {:?}",
                &a[..3],
                &b[..3]
            );
        }
    }

    #[test]
    fn each_model_pixel_is_its_areas_mean() {
        // A vertical edge in RGBA, 8x downscale: columns fully on either side
        // are exact, the grid averages the covered area.
        let (info, buf) = frame_of(VideoFormat::Rgba, 64, 8, |f| {
            let st = f.plane_stride()[0] as usize;
            let d = f.plane_data_mut(0).unwrap();
            for y in 0..8 {
                for x in 0..64 {
                    let v = if x < 20 { 0 } else { 200 };
                    d[y * st + x * 4..][..4].copy_from_slice(&[v, v, v, 255]);
                }
            }
        });
        let out = sampled(&info, &buf, 8, 1);
        let r: Vec<u8> = out.chunks(3).map(|p| p[0]).collect();
        // Pixel 2 covers x 16..24: samples at 18 (dark) and 22 (light).
        assert_eq!(r, [0, 0, 100, 200, 200, 200, 200, 200]);
    }

    #[test]
    fn bands_give_what_one_band_gives() {
        // A gradient with detail, in a planar, a semi-planar and a packed
        // layout; 37 output rows, so the bands are uneven.
        for format in [VideoFormat::I420, VideoFormat::Nv12, VideoFormat::Rgba] {
            let (src_info, src) = frame_of(VideoFormat::Rgba, 300, 160, |f| {
                let st = f.plane_stride()[0] as usize;
                let d = f.plane_data_mut(0).unwrap();
                for y in 0..160 {
                    for x in 0..300 {
                        let v = [(x * 7 + y) as u8, (y * 5) as u8, (x ^ y) as u8, 255];
                        d[y * st + x * 4..][..4].copy_from_slice(&v);
                    }
                }
            });
            let (info, buf) = converted(&src_info, &src, format);
            let one = sampled(&info, &buf, 70, 37);
            assert!(one.iter().any(|&v| v != one[0]), "{format:?}: flat");
            let f = VideoFrameRef::from_buffer_ref_readable(buf.as_ref(), &info).unwrap();
            let mut s = Sampler::new(&info, 70, 37).unwrap();
            for bands in [2, 3, 8, 100] {
                // A stride wider than the row: the padding is left alone.
                let stride = 70 * 3 + 5;
                let mut out = vec![7u8; stride * 37];
                s.run_bands(&f, &mut out, stride, bands).unwrap();
                for (y, row) in out.chunks(stride).enumerate() {
                    assert_eq!(
                        row[..210],
                        one[y * 210..][..210],
                        "{format:?} {bands}: row {y}"
                    );
                    assert!(row[210..].iter().all(|&v| v == 7), "{format:?}: padding");
                }
            }
        }
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        gst::init().unwrap();
        let info = VideoInfo::builder(VideoFormat::I42010le, 64, 36)
            .build()
            .unwrap();
        assert!(Sampler::new(&info, 16, 9).is_none());
    }
}
