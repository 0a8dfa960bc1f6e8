// SPDX-License-Identifier: MPL-2.0
//! The mask's bilinear upscale, written straight into the alpha byte of
//! 4-byte pixels: no full-size alpha plane in between.
//!
//! Each mask row is first interpolated across to the frame's width (a few
//! hundred rows, once per frame); each frame row is then the blend of two of
//! those rows, rounded to 0..255 and put into (or multiplied with) the
//! pixels' alpha. That second step is the same arithmetic on every pixel,
//! so it runs as 8-lane vectors where the CPU has AVX2 (checked at run
//! time), else as SSE2; the results are identical either way (no fused
//! multiply-add: the same rounding in every lane), see the tests.
//!
//! Sampling positions follow the usual centre convention (GStreamer's
//! linear resampler does the same): output pixel `x` reads the mask at
//! `(x + 0.5) * mw / w - 0.5`, clamped to the edges. The mask is used as
//! 0..1 floats, not rounded to 8 bits before the upscale.

use super::AlphaMode;

/// Position tables and the across-interpolated mask rows, kept between
/// frames (rebuilt when a size changes).
#[derive(Debug, Default, Clone)]
pub struct Upscale {
    key: (u32, u32, u32, u32),
    /// Per output column: left mask column, weight of the right one.
    xs: Vec<(u32, f32)>,
    /// Per output row: upper mask row, weight of the lower one.
    ys: Vec<(u32, f32)>,
    /// `mh` rows of `w` values: each mask row interpolated across.
    across: Vec<f32>,
}

/// `n` output positions over `src` source samples: (first sample, weight
/// of the next).
fn positions(src: u32, n: u32) -> Vec<(u32, f32)> {
    let scale = f64::from(src) / f64::from(n);
    (0..n)
        .map(|i| {
            let s = ((f64::from(i) + 0.5) * scale - 0.5).max(0.0);
            let i0 = (s.floor() as u32).min(src - 1);
            let f = if i0 + 1 >= src {
                0.0
            } else {
                (s - f64::from(i0)) as f32
            };
            (i0, f)
        })
        .collect()
}

impl Upscale {
    /// Makes ready for a `mw`x`mh` mask on a `w`x`h` frame, and
    /// interpolates `mask`'s rows across.
    pub fn prepare(&mut self, mask: &[f32], (mw, mh): (u32, u32), (w, h): (u32, u32)) {
        if self.key != (mw, mh, w, h) {
            self.key = (mw, mh, w, h);
            self.xs = positions(mw, w);
            self.ys = positions(mh, h);
            self.across = vec![0.0; mh as usize * w as usize];
        }
        let (mw, w) = (mw as usize, w as usize);
        let xs = &self.xs;
        let across_row = |row: &mut [f32], m: &[f32]| {
            for (o, &(x0, f)) in row.iter_mut().zip(xs) {
                let x0 = x0 as usize;
                let a = m[x0];
                let b = m[(x0 + 1).min(mw - 1)];
                *o = a + (b - a) * f;
            }
        };
        if self.across.len() >= 256 * 1024 {
            use rayon::prelude::*;
            self.across
                .par_chunks_mut(w)
                .zip(mask.par_chunks(mw))
                .for_each(|(row, m)| across_row(row, m));
        } else {
            for (row, m) in self.across.chunks_mut(w).zip(mask.chunks(mw)) {
                across_row(row, m);
            }
        }
    }

    /// Frame row `y` into the alpha of `pixels` (one row of 4-byte pixels,
    /// alpha at byte `offset`, 0 or 3). [`prepare`](Self::prepare) first.
    pub fn row(&self, y: usize, pixels: &mut [u8], offset: usize, mode: AlphaMode) {
        let w = self.key.2 as usize;
        let (y0, f) = self.ys[y];
        let y0 = y0 as usize;
        let y1 = (y0 + 1).min(self.key.1 as usize - 1);
        let r0 = &self.across[y0 * w..][..w];
        let r1 = &self.across[y1 * w..][..w];
        blend_row(r0, r1, f, &mut pixels[..w * 4], offset, mode);
    }
}

/// `a + (b - a) * f` as 0..255, rounded (as [`super::to_u8`]).
#[inline(always)]
fn level(a: f32, b: f32, f: f32) -> u32 {
    let v = a + (b - a) * f;
    // `max` first turns NaN into 0, as `clamp` then `as` would (`clamp`
    // keeps NaN, which the unchecked conversion below must not see).
    #[allow(clippy::manual_clamp)]
    let v = v.max(0.0).min(1.0) * 255.0 + 0.5;
    // SAFETY: v is within 0.5..=255.5, which i32 holds: a plain truncation
    // (the checked conversion does not vectorise).
    unsafe { v.to_int_unchecked::<i32>() as u32 }
}

/// Blends two across rows with weight `f` into the alpha of a pixel row.
fn blend_row(r0: &[f32], r1: &[f32], f: f32, pixels: &mut [u8], offset: usize, mode: AlphaMode) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        unsafe { blend_row_avx2(r0, r1, f, pixels, offset, mode) };
        return;
    }
    blend_row_generic(r0, r1, f, pixels, offset, mode);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn blend_row_avx2(
    r0: &[f32],
    r1: &[f32],
    f: f32,
    pixels: &mut [u8],
    offset: usize,
    mode: AlphaMode,
) {
    blend_row_generic(r0, r1, f, pixels, offset, mode);
}

/// One body for every instruction set: pixels as little-endian u32 lanes,
/// so the compiler vectorises it as f32 lanes of the same width.
#[inline(always)]
fn blend_row_generic(
    r0: &[f32],
    r1: &[f32],
    f: f32,
    pixels: &mut [u8],
    offset: usize,
    mode: AlphaMode,
) {
    let shift = 8 * offset as u32;
    let keep = !(0xFFu32 << shift);
    // The pixels as u32 lanes where the row is aligned for it (GStreamer's
    // buffers are), else byte by byte (same results).
    // SAFETY: any 4 bytes are a valid u32.
    let (head, words, tail) = unsafe { pixels.align_to_mut::<u32>() };
    if !head.is_empty() || !tail.is_empty() {
        for (p, (&a, &b)) in pixels.chunks_exact_mut(4).zip(r0.iter().zip(r1)) {
            let v = u32::from_le_bytes([p[0], p[1], p[2], p[3]]);
            p.copy_from_slice(&alpha_into(v, level(a, b, f), shift, keep, mode).to_le_bytes());
        }
        return;
    }
    match mode {
        AlphaMode::Replace => blend_words::<false>(words, r0, r1, f, shift, keep),
        AlphaMode::Multiply => blend_words::<true>(words, r0, r1, f, shift, keep),
    }
}

/// [`blend_row_generic`] on u32 pixels, one mode per instance.
#[inline(always)]
fn blend_words<const MULTIPLY: bool>(
    words: &mut [u32],
    r0: &[f32],
    r1: &[f32],
    f: f32,
    shift: u32,
    keep: u32,
) {
    let mode = if MULTIPLY {
        AlphaMode::Multiply
    } else {
        AlphaMode::Replace
    };
    let n = words.len().min(r0.len()).min(r1.len());
    let (words, r0, r1) = (&mut words[..n], &r0[..n], &r1[..n]);
    // Blocks of 8 lanes (one AVX2 register of f32 or u32), then the rest.
    let mut blocks = words.chunks_exact_mut(8);
    let mut a8 = r0.chunks_exact(8);
    let mut b8 = r1.chunks_exact(8);
    for ((w, a), b) in (&mut blocks).zip(&mut a8).zip(&mut b8) {
        let mut lv = [0u32; 8];
        for k in 0..8 {
            lv[k] = level(a[k], b[k], f);
        }
        for k in 0..8 {
            w[k] = alpha_into(u32::from_le(w[k]), lv[k], shift, keep, mode).to_le();
        }
    }
    let rest = blocks.into_remainder().iter_mut();
    for ((w, &a), &b) in rest.zip(a8.remainder()).zip(b8.remainder()) {
        *w = alpha_into(u32::from_le(*w), level(a, b, f), shift, keep, mode).to_le();
    }
}

/// Pixel `v` (as a little-endian u32) with alpha `a` put in (or multiplied).
#[inline(always)]
fn alpha_into(v: u32, a: u32, shift: u32, keep: u32, mode: AlphaMode) -> u32 {
    let a = match mode {
        AlphaMode::Replace => a,
        AlphaMode::Multiply => (((v >> shift) & 0xFF) * a + 127) / 255,
    };
    (v & keep) | (a << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain per-pixel formula, written out without tables or lanes.
    fn reference(mask: &[f32], (mw, mh): (u32, u32), (w, h): (u32, u32)) -> Vec<u8> {
        let at = |src: u32, n: u32, i: u32| {
            let s = ((f64::from(i) + 0.5) * f64::from(src) / f64::from(n) - 0.5).max(0.0);
            let i0 = (s.floor() as u32).min(src - 1);
            let i1 = (i0 + 1).min(src - 1);
            let f = if i1 == i0 {
                0.0
            } else {
                (s - f64::from(i0)) as f32
            };
            (i0 as usize, i1 as usize, f)
        };
        let mut out = Vec::new();
        for y in 0..h {
            let (y0, y1, fy) = at(mh, h, y);
            for x in 0..w {
                let (x0, x1, fx) = at(mw, w, x);
                let m = |yy: usize, xx: usize| mask[yy * mw as usize + xx];
                let top = m(y0, x0) + (m(y0, x1) - m(y0, x0)) * fx;
                let bottom = m(y1, x0) + (m(y1, x1) - m(y1, x0)) * fx;
                out.push(level(top, bottom, fy) as u8);
            }
        }
        out
    }

    fn run(mask: &[f32], m: (u32, u32), (w, h): (u32, u32), generic: bool) -> Vec<u8> {
        let mut up = Upscale::default();
        up.prepare(mask, m, (w, h));
        let mut px = vec![9u8; (w * h * 4) as usize];
        for (y, row) in px.chunks_mut(w as usize * 4).enumerate() {
            if generic {
                let (y0, f) = up.ys[y];
                let y1 = (y0 + 1).min(m.1 - 1) as usize;
                let r0 = up.across[y0 as usize * w as usize..][..w as usize].to_vec();
                let r1 = up.across[y1 * w as usize..][..w as usize].to_vec();
                blend_row_generic(&r0, &r1, f, row, 3, AlphaMode::Replace);
            } else {
                up.row(y, row, 3, AlphaMode::Replace);
            }
        }
        assert!(px.chunks(4).all(|p| p[..3] == [9, 9, 9]), "colour touched");
        px.chunks(4).map(|p| p[3]).collect()
    }

    #[test]
    fn vector_rows_equal_the_scalar_reference_exactly() {
        let mut rng = fastrand::Rng::with_seed(11);
        for (m, size) in [
            ((256, 144), (1920, 1080)),
            ((7, 5), (61, 37)),
            ((320, 320), (333, 190)),
            ((16, 16), (16, 16)),
            ((1, 1), (9, 4)),
        ] {
            // Soft values, hard 0/1 and out-of-range values alike.
            let mask: Vec<f32> = (0..m.0 * m.1)
                .map(|_| match rng.u8(..4) {
                    0 => 0.0,
                    1 => 1.0,
                    2 => rng.f32() * 1.4 - 0.2,
                    _ => rng.f32(),
                })
                .collect();
            let want = reference(&mask, m, size);
            assert_eq!(run(&mask, m, size, false), want, "{m:?} -> {size:?}");
            assert_eq!(run(&mask, m, size, true), want, "{m:?} -> {size:?} generic");
        }
    }

    #[test]
    fn multiply_keeps_the_inputs_transparency() {
        let mut up = Upscale::default();
        up.prepare(&[1.0, 0.5], (2, 1), (2, 1));
        let mut px = [1, 2, 3, 200, 4, 5, 6, 200];
        up.row(0, &mut px, 3, AlphaMode::Multiply);
        // 1.0 keeps 200; the second pixel reads 0.75 at x = 1.25 - 0.5 ... clamped
        // to the last sample, 0.5 -> 128: 200 * 128 / 255 = 100.4 -> 100.
        assert_eq!(px, [1, 2, 3, 200, 4, 5, 6, 100]);
        let mut argb = [200, 1, 2, 3];
        up.prepare(&[0.0], (1, 1), (1, 1));
        up.row(0, &mut argb, 0, AlphaMode::Replace);
        assert_eq!(argb, [0, 1, 2, 3]);
    }
}
