// SPDX-License-Identifier: MPL-2.0
//! Blurred backgrounds.

use super::*;

/// Blurred backgrounds: the frame is averaged down by an integer factor,
/// blurred there with three box passes (close to a Gaussian, see
/// [`blur_plan`]), and scaled up bilinearly to cover the canvas. Cost is about one read of the frame plus
/// one write of the canvas, whatever the radius.
#[derive(Default)]
pub struct Blur {
    small: Vec<u8>,
    /// Scratch: column sums, a padded row, a copy of the reduced image.
    acc: Vec<u16>,
    line: Vec<u8>,
    copy: Vec<u8>,
    scaler: Option<Scaler>,
}

impl std::fmt::Debug for Blur {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blur").finish_non_exhaustive()
    }
}

/// How a blur of `radius` is done: (reduction factor `d`, box radius `r` at
/// reduced size). Three box passes of radius `r` are close to a Gaussian of
/// standard deviation `sqrt(r (r + 1))`, so with `r = 2` the blur is a
/// Gaussian of sigma `2.45 d`, about `radius` (as CSS `blur()` means it).
/// Radii below 12 use `r = 1` (sigma `1.41 d`), and `d` is at least
/// [`MIN_BLUR_REDUCTION`]: the cost grows with the reduced image (at 1080p a
/// radius-5 blur took 17 ms at `d = 2`, 8 at `d = 3`, 4.2 at `d = 4`),
/// so radii below 7 blur like 7.
pub fn blur_plan(radius: u32) -> (u32, usize) {
    let d = |sigma_per_d: f64| {
        (f64::from(radius) / sigma_per_d)
            .round()
            .clamp(MIN_BLUR_REDUCTION as f64, 64.0) as u32
    };
    match radius {
        0 => (1, 0),
        1..12 => (d(2f64.sqrt()), 1),
        _ => (d(6f64.sqrt()), 2),
    }
}

/// The smallest reduction a blur works at (see [`blur_plan`]).
pub const MIN_BLUR_REDUCTION: u32 = 5;

impl Blur {
    pub fn new() -> Self {
        Self::default()
    }

    /// Blurs `frame` with `radius` (canvas pixels), scaled to cover
    /// `canvas`, opaque; [`Blur::with_result`] reads it.
    pub fn run(
        &mut self,
        frame: Pixels,
        alpha: usize,
        radius: u32,
        canvas: (u32, u32),
    ) -> Result<(), String> {
        check_alpha(alpha)?;
        let (d, r) = blur_plan(radius);
        let (sw, sh) = (frame.width.div_ceil(d), frame.height.div_ceil(d));
        downsample(frame, d, sw, sh, &mut self.small, &mut self.acc);
        if r > 0 {
            for _ in 0..3 {
                box_blur(
                    &mut self.small,
                    sw as usize,
                    sh as usize,
                    r,
                    (&mut self.line, &mut self.copy),
                );
            }
        }
        for p in self.small.chunks_exact_mut(4) {
            p[alpha] = 255;
        }
        let crop = cover_crop((sw, sh), canvas);
        let scaler = Scaler::get(
            &mut self.scaler,
            info(VideoFormat::Rgba, sw, sh)?,
            info(VideoFormat::Rgba, canvas.0, canvas.1)?,
            crop,
            VideoResamplerMethod::Linear,
        )?;
        let small = &self.small;
        scaler.with_src(|mut dst| {
            for (y, row) in small.chunks_exact(sw as usize * 4).enumerate() {
                dst.row(y).copy_from_slice(row);
            }
        })?;
        scaler.run()
    }

    /// The last [`Blur::run`]'s result, for `f`.
    pub fn with_result<R>(&self, f: impl FnOnce(Pixels) -> R) -> Result<R, String> {
        self.scaler
            .as_ref()
            .ok_or_else(|| "no blurred frame yet".to_string())?
            .with_dst(f)
    }
}

/// Averages `d`x`d` blocks of `frame` into a packed `sw`x`sh` image
/// (blocks at the right and bottom edges may be partial). Blocks use two of
/// their rows only (every `d / 2`-th): the result is blurred over several
/// blocks anyway, and rows are what memory traffic costs.
fn downsample(frame: Pixels, d: u32, sw: u32, sh: u32, out: &mut Vec<u8>, acc: &mut Vec<u16>) {
    let (d, sw, sh) = (d as usize, sw as usize, sh as usize);
    let (w, h) = (frame.width as usize, frame.height as usize);
    out.resize(sw * sh * 4, 0);
    let step = (d / 2).max(1);
    // One reduced row: column sums of its sampled rows (at most 3 rows of
    // 255: fits u16), then each block's mean.
    let reduce = |by: usize, orow: &mut [u8], acc: &mut Vec<u16>| {
        acc.clear();
        acc.resize(w * 4, 0);
        let (y0, y1) = (by * d, (by * d + d).min(h));
        let rows = (y0..y1).step_by(step).len();
        for y in (y0..y1).step_by(step) {
            for (a, &v) in acc.iter_mut().zip(frame.row(y)) {
                *a += u16::from(v);
            }
        }
        let full = Divider::new((rows * d) as u32);
        for (o, block) in orow.chunks_exact_mut(4).zip(acc.chunks(d * 4)) {
            let mut s = [0u32; 4];
            for p in block.chunks_exact(4) {
                for c in 0..4 {
                    s[c] += u32::from(p[c]);
                }
            }
            let div = if block.len() == d * 4 {
                full
            } else {
                Divider::new((rows * block.len() / 4) as u32)
            };
            for c in 0..4 {
                o[c] = div.div(s[c]);
            }
        }
    };
    // Large frames: bands of reduced rows on every core (a read of the
    // whole frame is most of the blur's cost).
    if w * h >= 1024 * 1024 {
        use rayon::prelude::*;
        out.par_chunks_exact_mut(sw * 4 * 8)
            .enumerate()
            .for_each_init(Vec::new, |acc, (band, rows)| {
                for (i, orow) in rows.chunks_exact_mut(sw * 4).enumerate() {
                    reduce(band * 8 + i, orow, acc);
                }
            });
        // The rows past the last whole band.
        let done = sh / 8 * 8;
        for (i, orow) in out[done * sw * 4..].chunks_exact_mut(sw * 4).enumerate() {
            reduce(done + i, orow, acc);
        }
        return;
    }
    for (by, orow) in out.chunks_exact_mut(sw * 4).enumerate().take(sh) {
        reduce(by, orow, acc);
    }
}

/// `sum / n` rounded, by a multiply (a division per value is what made the
/// first version of this blur slow). For sums up to `255 * n`, `n <= 256`.
#[derive(Clone, Copy)]
struct Divider(u32);

impl Divider {
    fn new(n: u32) -> Self {
        Divider(((1 << 16) + n / 2) / n)
    }

    #[inline(always)]
    fn div(self, sum: u32) -> u8 {
        ((sum * self.0 + (1 << 15)) >> 16) as u8
    }
}

/// `out[k]`: the rounded mean of `N` bytes of the padded `line`, 4 apart.
#[inline(always)]
fn taps<const N: usize>(line: &[u8], out: &mut [u8], div: Divider) {
    for (k, o) in out.iter_mut().enumerate() {
        let mut s = 0u32;
        for j in 0..N {
            s += u32::from(line[k + 4 * j]);
        }
        *o = div.div(s);
    }
}

/// One box blur of radius `r` (at most 32) over packed 4-byte pixels,
/// horizontal then vertical, edges clamped; each output is the rounded mean
/// of `2r + 1`.
/// `scratch` is (a padded row, a copy of the image), kept by the caller so
/// nothing is allocated per frame.
pub fn box_blur(
    pixels: &mut [u8],
    width: usize,
    height: usize,
    r: usize,
    (line, copy): (&mut Vec<u8>, &mut Vec<u8>),
) {
    let r = r.min(32);
    let n = 2 * r + 1;
    let div = Divider::new(n as u32);
    // Horizontal: a running sum along each row, padded with copies of the
    // edge pixels so the loop has no bounds to clamp.
    line.resize((width + 2 * r + 1) * 4, 0);
    for row in pixels.chunks_exact_mut(width * 4).take(height) {
        let (first, last) = (px(row), px(&row[(width - 1) * 4..]));
        let (head, rest) = line.split_at_mut(r * 4);
        let (body, tail) = rest.split_at_mut(width * 4);
        body.copy_from_slice(row);
        for p in head.chunks_exact_mut(4) {
            p.copy_from_slice(&first);
        }
        for p in tail.chunks_exact_mut(4) {
            p.copy_from_slice(&last);
        }
        match r {
            // The radii the blur uses: direct taps over the bytes, which
            // vectorise (a running sum carries a dependency from pixel to pixel).
            1 => taps::<3>(line, row, div),
            2 => taps::<5>(line, row, div),
            _ => {
                let mut sum = [0u32; 4];
                for p in line[..n * 4].chunks_exact(4) {
                    for c in 0..4 {
                        sum[c] += u32::from(p[c]);
                    }
                }
                for (i, o) in row.chunks_exact_mut(4).enumerate() {
                    let (add, sub) = (&line[(i + n) * 4..][..4], &line[i * 4..][..4]);
                    for c in 0..4 {
                        o[c] = div.div(sum[c]);
                        sum[c] = sum[c] + u32::from(add[c]) - u32::from(sub[c]);
                    }
                }
            }
        }
    }
    // Vertical: a running sum of whole rows (vectorises across the row).
    copy.clear();
    copy.extend_from_slice(&pixels[..width * height * 4]);
    let row = |y: usize| &copy[y.min(height - 1) * width * 4..][..width * 4];
    let mut sums: Vec<u32> = row(0)
        .iter()
        .map(|&v| (r as u32 + 1) * u32::from(v))
        .collect();
    for y in 1..=r {
        for (s, &v) in sums.iter_mut().zip(row(y)) {
            *s += u32::from(v);
        }
    }
    for y in 0..height {
        let out = &mut pixels[y * width * 4..][..width * 4];
        for (o, &s) in out.iter_mut().zip(&sums) {
            *o = div.div(s);
        }
        let (add, sub) = (row(y + r + 1), row(y.saturating_sub(r)));
        for ((s, &a), &b) in sums.iter_mut().zip(add).zip(sub) {
            *s = *s + u32::from(a) - u32::from(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compositor::tests::image;

    #[test]
    fn box_blur_is_a_rounded_mean() {
        // One row: an impulse of 90 spreads to 30 over three pixels.
        let mut px = image(5, 1, |x, _| {
            if x == 2 {
                [90, 0, 0, 255]
            } else {
                [0, 0, 0, 255]
            }
        });
        let (mut line, mut copy) = (Vec::new(), Vec::new());
        box_blur(&mut px, 5, 1, 1, (&mut line, &mut copy));
        let red: Vec<u8> = px.chunks(4).map(|p| p[0]).collect();
        assert_eq!(red, [0, 30, 30, 30, 0]);
        assert!(px.chunks(4).all(|p| p[3] == 255));
        // Edges clamp: a flat image stays flat.
        let mut flat = image(7, 5, |_, _| [13, 200, 77, 255]);
        box_blur(&mut flat, 7, 5, 3, (&mut line, &mut copy));
        assert!(flat.chunks(4).all(|p| p == [13, 200, 77, 255]));
    }

    #[test]
    fn blurred_background_of_a_flat_frame_is_flat_and_opaque() {
        gst::init().unwrap();
        let frame = image(64, 36, |_, _| [40, 80, 120, 0]);
        let mut blur = Blur::new();
        for radius in [0, 3, 24, 200] {
            blur.run(
                Pixels::new(&frame, 64, 36, 256).unwrap(),
                3,
                radius,
                (100, 100),
            )
            .unwrap();
            let px = blur
                .with_result(|p| {
                    assert_eq!((p.width, p.height), (100, 100));
                    (0..100)
                        .flat_map(|y| p.row(y).to_vec())
                        .collect::<Vec<u8>>()
                })
                .unwrap();
            assert!(
                px.chunks(4).all(|p| p == [40, 80, 120, 255]),
                "radius {radius}"
            );
        }
    }

    #[test]
    fn blur_plan_matches_the_radius_as_a_gaussian_sigma() {
        assert_eq!(blur_plan(0), (1, 0));
        assert_eq!(blur_plan(1), (5, 1), "small radii blur like 7");
        for radius in [7u32, 8, 11, 12, 20, 60, 128] {
            let (d, r) = blur_plan(radius);
            let sigma = f64::from(d) * ((r * (r + 1)) as f64).sqrt();
            let err = (sigma - f64::from(radius)).abs() / f64::from(radius);
            assert!(err < 0.25, "radius {radius}: d {d}, sigma {sigma:.1}");
        }
    }

    #[test]
    fn blur_spreads_an_edge() {
        gst::init().unwrap();
        // Left half black, right half white; blurred, the middle is grey and
        // the far sides keep their colour.
        let frame = image(64, 8, |x, _| if x < 32 { [0, 0, 0, 255] } else { [255; 4] });
        let mut blur = Blur::new();
        blur.run(Pixels::new(&frame, 64, 8, 256).unwrap(), 3, 8, (64, 8))
            .unwrap();
        let row = blur
            .with_result(|p| p.row(4).chunks(4).map(|p| p[0]).collect::<Vec<u8>>())
            .unwrap();
        assert_eq!(row[0], 0);
        assert_eq!(row[63], 255);
        assert!((64..192).contains(&row[32]), "{row:?}");
        assert!(row.windows(2).all(|w| w[0] <= w[1]), "{row:?}");
    }
}
