// SPDX-License-Identifier: MPL-2.0
//! The mask controls users of OBS's background-removal plugin and rembg
//! know, applied to the full-resolution alpha in output pixels: a cut-off
//! threshold, grow or shrink (dilate/erode) and feather. All off by
//! default: the model's soft alpha is kept as it is.
//!
//! In that order: the threshold makes the alpha hard (at or over it:
//! opaque, under: clear), grow/shrink moves the edge by whole pixels (a
//! square window's maximum or minimum, separable, O(1) per pixel whatever
//! the radius: van Herk / Gil-Werman), and feather softens the edge again
//! (two box blurs of the radius, O(1) per pixel, close to a Gaussian).

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MaskControls {
    /// 0 = off; else alpha at or over `threshold` (0-1) becomes opaque and
    /// the rest clear.
    pub threshold: f64,
    /// Pixels the opaque part grows by (negative: shrinks by).
    pub grow: i32,
    /// Pixels of softened edge (0 = off).
    pub feather: u32,
}

impl MaskControls {
    pub fn is_off(&self) -> bool {
        self.threshold <= 0.0 && self.grow == 0 && self.feather == 0
    }
}

/// Scratch planes, kept between frames: nothing is allocated per frame once
/// the size is stable.
#[derive(Debug, Default)]
pub struct MaskShaper {
    plane: Vec<u8>,
    tmp: Vec<u8>,
    line_a: Vec<u8>,
    line_b: Vec<u8>,
    col: Vec<u8>,
    out: Vec<u8>,
}

impl MaskShaper {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies `c` to the alpha byte at `offset` of each 4-byte pixel of a
    /// `width`x`height` frame with `stride` bytes per row.
    pub fn apply(
        &mut self,
        c: &MaskControls,
        pixels: &mut [u8],
        (width, height): (usize, usize),
        stride: usize,
        offset: usize,
    ) {
        if c.is_off() || width == 0 || height == 0 {
            return;
        }
        self.plane.resize(width * height, 0);
        for y in 0..height {
            let row = &pixels[y * stride..];
            for (x, a) in self.plane[y * width..(y + 1) * width]
                .iter_mut()
                .enumerate()
            {
                *a = row[x * 4 + offset];
            }
        }
        self.shape(c, width, height);
        for y in 0..height {
            let row = &mut pixels[y * stride..];
            for (x, a) in self.plane[y * width..(y + 1) * width].iter().enumerate() {
                row[x * 4 + offset] = *a;
            }
        }
    }

    /// Applies `c` to a plain `width`x`height` alpha plane.
    pub fn apply_plane(&mut self, c: &MaskControls, plane: &mut [u8], width: usize, height: usize) {
        if c.is_off() || width == 0 || height == 0 {
            return;
        }
        self.plane.clear();
        self.plane.extend_from_slice(&plane[..width * height]);
        self.shape(c, width, height);
        plane[..width * height].copy_from_slice(&self.plane);
    }

    fn shape(&mut self, c: &MaskControls, w: usize, h: usize) {
        if c.threshold > 0.0 {
            // At or over the threshold: opaque (alpha 255 * threshold, rounded up).
            let cut = (c.threshold.clamp(0.0, 1.0) * 255.0).ceil() as u8;
            for a in &mut self.plane {
                *a = if *a >= cut.max(1) { 255 } else { 0 };
            }
        }
        if c.grow != 0 {
            let r = c.grow.unsigned_abs() as usize;
            let grow = c.grow > 0;
            self.separable(w, h, |line, out, a, b| morph_line(line, out, r, grow, a, b));
        }
        if c.feather > 0 {
            let r = c.feather as usize;
            for _ in 0..2 {
                self.separable(w, h, |line, out, _, _| box_line(line, out, r));
            }
        }
    }

    /// Runs `f` over every row, then every column, of the plane.
    fn separable(
        &mut self,
        w: usize,
        h: usize,
        mut f: impl FnMut(&[u8], &mut [u8], &mut Vec<u8>, &mut Vec<u8>),
    ) {
        let MaskShaper {
            plane,
            tmp,
            line_a,
            line_b,
            col,
            out,
        } = self;
        tmp.resize(w * h, 0);
        for y in 0..h {
            f(
                &plane[y * w..(y + 1) * w],
                &mut tmp[y * w..(y + 1) * w],
                line_a,
                line_b,
            );
        }
        col.resize(h, 0);
        out.resize(h, 0);
        for x in 0..w {
            for (y, c) in col.iter_mut().enumerate() {
                *c = tmp[y * w + x];
            }
            f(col, out, line_a, line_b);
            for (y, o) in out.iter().enumerate() {
                plane[y * w + x] = *o;
            }
        }
    }
}

/// `out[i]` = the maximum (`grow`) or minimum of `line[i - r ..= i + r]`,
/// the line's ends held (van Herk / Gil-Werman: a prefix and a suffix
/// extreme per block of `2r + 1`, three comparisons a value).
fn morph_line(
    line: &[u8],
    out: &mut [u8],
    r: usize,
    grow: bool,
    g: &mut Vec<u8>,
    hh: &mut Vec<u8>,
) {
    let n = line.len();
    let pick = |a: u8, b: u8| if grow { a.max(b) } else { a.min(b) };
    let edge = if grow { 0 } else { 255 };
    // Padded by r of the identity on both sides: out of the frame neither
    // grows the edge nor eats into it.
    let k = 2 * r + 1;
    let len = n + 2 * r;
    let padded = |i: usize| {
        if i < r || i >= r + n {
            edge
        } else {
            line[i - r]
        }
    };
    g.resize(len, 0);
    hh.resize(len, 0);
    for i in 0..len {
        g[i] = if i % k == 0 {
            padded(i)
        } else {
            pick(g[i - 1], padded(i))
        };
    }
    for i in (0..len).rev() {
        hh[i] = if i % k == k - 1 || i == len - 1 {
            padded(i)
        } else {
            pick(hh[i + 1], padded(i))
        };
    }
    for (i, o) in out.iter_mut().enumerate().take(n) {
        // Window [i, i + 2r] of the padded line, centred on line[i].
        *o = pick(hh[i], g[i + 2 * r]);
    }
}

/// `out[i]` = the mean of `line[i - r ..= i + r]`, the line's ends repeated.
fn box_line(line: &[u8], out: &mut [u8], r: usize) {
    let n = line.len() as isize;
    let ri = r as isize;
    let at = |i: isize| u32::from(line[i.clamp(0, n - 1) as usize]);
    let mut sum: u32 = (-ri..=ri).map(at).sum();
    let k = (2 * r + 1) as u32;
    for i in 0..n {
        out[i as usize] = ((sum + k / 2) / k) as u8;
        sum = sum + at(i + ri + 1) - at(i - ri);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `w`x`h` plane, opaque inside the rectangle `x0..x1`, `y0..y1`.
    fn square(w: usize, h: usize, (x0, y0, x1, y1): (usize, usize, usize, usize)) -> Vec<u8> {
        (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                if (x0..x1).contains(&x) && (y0..y1).contains(&y) {
                    255
                } else {
                    0
                }
            })
            .collect()
    }

    fn opaque(plane: &[u8]) -> usize {
        plane.iter().filter(|&&a| a == 255).count()
    }

    #[test]
    fn off_changes_nothing() {
        let mut p: Vec<u8> = (0..=255).collect();
        let before = p.clone();
        MaskShaper::new().apply_plane(&MaskControls::default(), &mut p, 16, 16);
        assert_eq!(p, before);
    }

    #[test]
    fn the_threshold_makes_the_alpha_hard_at_its_value() {
        let mut p: Vec<u8> = vec![0, 60, 127, 128, 200, 255];
        let c = MaskControls {
            threshold: 0.5,
            ..Default::default()
        };
        MaskShaper::new().apply_plane(&c, &mut p, 6, 1);
        assert_eq!(p, vec![0, 0, 0, 255, 255, 255]);
    }

    #[test]
    fn grow_and_shrink_move_the_edge_by_whole_pixels() {
        let (w, h) = (40, 30);
        let base = square(w, h, (10, 10, 20, 18)); // 10x8
        let mut grown = base.clone();
        let c = |grow| MaskControls {
            grow,
            ..Default::default()
        };
        MaskShaper::new().apply_plane(&c(3), &mut grown, w, h);
        assert_eq!(grown, square(w, h, (7, 7, 23, 21)), "16x14 after +3");
        let mut shrunk = base.clone();
        MaskShaper::new().apply_plane(&c(-2), &mut shrunk, w, h);
        assert_eq!(shrunk, square(w, h, (12, 12, 18, 16)), "6x4 after -2");
        // Shrinking past the size leaves nothing; the frame's edge is no edge.
        let mut gone = base.clone();
        MaskShaper::new().apply_plane(&c(-5), &mut gone, w, h);
        assert_eq!(opaque(&gone), 0);
        let mut full = vec![255u8; w * h];
        MaskShaper::new().apply_plane(&c(-3), &mut full, w, h);
        assert_eq!(opaque(&full), w * h, "an all-opaque frame stays opaque");
    }

    #[test]
    fn feather_softens_the_edge_over_its_radius_and_keeps_the_inside() {
        let (w, h) = (60, 40);
        let mut p = square(w, h, (20, 10, 40, 30));
        let c = MaskControls {
            feather: 4,
            ..Default::default()
        };
        MaskShaper::new().apply_plane(&c, &mut p, w, h);
        let at = |x: usize, y: usize| p[y * w + x];
        // Deep inside and far outside unchanged; the edge about half.
        assert_eq!(at(30, 20), 255);
        assert_eq!(at(5, 20), 0);
        assert!((100..=160).contains(&at(20, 20)), "edge {}", at(20, 20));
        // A ramp: monotonic across the edge, over about twice the radius.
        let row: Vec<u8> = (10..30).map(|x| at(x, 20)).collect();
        assert!(row.windows(2).all(|v| v[0] <= v[1]), "{row:?}");
        let soft = row.iter().filter(|&&a| a > 0 && a < 255).count();
        assert!((6..=16).contains(&soft), "{soft} soft pixels: {row:?}");
    }

    #[test]
    fn four_byte_pixels_change_only_their_alpha() {
        let (w, h) = (8, 4);
        let stride = w * 4 + 4; // padded rows
        let mut px = vec![7u8; stride * h];
        for y in 0..h {
            for x in 0..w {
                px[y * stride + x * 4 + 3] = if x >= 4 { 200 } else { 40 };
            }
        }
        let c = MaskControls {
            threshold: 0.5,
            grow: 1,
            feather: 0,
        };
        MaskShaper::new().apply(&c, &mut px, (w, h), stride, 3);
        for y in 0..h {
            for x in 0..w {
                let a = px[y * stride + x * 4 + 3];
                assert_eq!(a, if x >= 3 { 255 } else { 0 }, "({x},{y})");
                assert_eq!(&px[y * stride + x * 4..y * stride + x * 4 + 3], &[7, 7, 7]);
            }
            assert!(
                px[y * stride + w * 4..(y + 1) * stride]
                    .iter()
                    .all(|&b| b == 7)
            );
        }
    }
}
