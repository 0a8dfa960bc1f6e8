// SPDX-License-Identifier: MPL-2.0
//! The blending kernels: straight-alpha "over", rounded to nearest, one
//! row at a time, monomorphised per alpha position and background kind.

use super::*;

/// `x / 255` rounded to nearest, exact for `x <= 255 * 255`.
#[inline(always)]
pub(super) fn div255(x: u32) -> u32 {
    let t = x + 128;
    (t + (t >> 8)) >> 8
}

/// Straight `f` over opaque `b`.
#[inline(always)]
fn over_opaque<const AI: usize, const PREMUL: bool>(f: [u8; 4], b: [u8; 4]) -> [u8; 4] {
    let a = u32::from(f[AI]);
    let na = 255 - a;
    let mut o = [0u8; 4];
    for c in 0..4 {
        o[c] = if PREMUL {
            (u32::from(f[c]).min(a) + div255(u32::from(b[c]) * na)) as u8
        } else {
            div255(u32::from(f[c]) * a + u32::from(b[c]) * na) as u8
        };
    }
    o[AI] = 255;
    o
}

/// Porter-Duff "over" for any background alpha, straight in and out.
#[inline(always)]
fn over_any<const AI: usize, const PREMUL: bool>(f: [u8; 4], b: [u8; 4]) -> [u8; 4] {
    let fa = u32::from(f[AI]);
    let bw = u32::from(b[AI]) * (255 - fa);
    // The result's alpha, times 255.
    let total = fa * 255 + bw;
    if total == 0 {
        return [0; 4];
    }
    let mut o = [0u8; 4];
    for c in 0..4 {
        let fc = if PREMUL {
            u32::from(f[c]).min(fa) * 255 * 255
        } else {
            u32::from(f[c]) * fa * 255
        };
        o[c] = ((fc + u32::from(b[c]) * bw + total / 2) / total).min(255) as u8;
    }
    o[AI] = ((total + 127) / 255) as u8;
    o
}

#[inline(always)]
pub(super) fn px(s: &[u8]) -> [u8; 4] {
    [s[0], s[1], s[2], s[3]]
}

/// `fg` over `bg` into `out`, one row; `out` may be `fg` (`None`).
/// Solid and clear pixels (most of a real matte) skip the arithmetic; the
/// results are the same as the formulas give.
#[inline(always)]
fn blend_row<const AI: usize, const PREMUL: bool, const OPAQUE: bool>(
    fg: Option<&[u8]>,
    bg: Option<&[u8]>,
    color: [u8; 4],
    out: &mut [u8],
) {
    let k = |f: [u8; 4], b: [u8; 4]| match f[AI] {
        255 => f,
        0 if OPAQUE || b[AI] > 0 => b,
        0 => [0; 4],
        _ if OPAQUE => over_opaque::<AI, PREMUL>(f, b),
        _ => over_any::<AI, PREMUL>(f, b),
    };
    match (fg, bg) {
        (None, None) => {
            for o in out.chunks_exact_mut(4) {
                match o[AI] {
                    255 => {}
                    0 if OPAQUE => o.copy_from_slice(&color),
                    _ => o.copy_from_slice(&k(px(o), color)),
                }
            }
        }
        (None, Some(bg)) => {
            for (o, b) in out.chunks_exact_mut(4).zip(bg.chunks_exact(4)) {
                match o[AI] {
                    255 => {}
                    0 if OPAQUE => o.copy_from_slice(b),
                    _ => o.copy_from_slice(&k(px(o), px(b))),
                }
            }
        }
        (Some(fg), None) => {
            for (o, f) in out.chunks_exact_mut(4).zip(fg.chunks_exact(4)) {
                o.copy_from_slice(&k(px(f), color));
            }
        }
        (Some(fg), Some(bg)) => {
            for ((o, f), b) in out
                .chunks_exact_mut(4)
                .zip(fg.chunks_exact(4))
                .zip(bg.chunks_exact(4))
            {
                o.copy_from_slice(&k(px(f), px(b)));
            }
        }
    }
}

/// Blends one row: (foreground, or none: it is in the output row;
/// background row, or none: the colour; the colour; the output row).
pub(super) type RowBlender = fn(Option<&[u8]>, Option<&[u8]>, [u8; 4], &mut [u8]);

/// Dispatches to the monomorphised row blender.
pub(super) fn blend(alpha: usize, premul: bool, opaque: bool) -> RowBlender {
    match (alpha, premul, opaque) {
        (0, false, false) => blend_row::<0, false, false>,
        (0, false, true) => blend_row::<0, false, true>,
        (0, true, false) => blend_row::<0, true, false>,
        (0, true, true) => blend_row::<0, true, true>,
        (_, false, false) => blend_row::<3, false, false>,
        (_, false, true) => blend_row::<3, false, true>,
        (_, true, false) => blend_row::<3, true, false>,
        (_, true, true) => blend_row::<3, true, true>,
    }
}

pub(super) fn check_alpha(alpha: usize) -> Result<(), String> {
    if alpha == 0 || alpha == 3 {
        Ok(())
    } else {
        Err(format!("alpha byte {alpha}: must be 0 or 3"))
    }
}

/// Composites in place: `frame` holds the foreground and receives the
/// result (canvas = frame, scale 1, no offset).
pub fn under(frame: &mut PixelsMut, alpha: usize, background: &Background) -> Result<(), String> {
    check_alpha(alpha)?;
    let (f, color, bg) = match *background {
        Background::Transparent => return Ok(()),
        Background::Color(color) => (blend(alpha, false, color[alpha] == 255), color, None),
        Background::Pixels { pixels: bg, opaque } => {
            if (bg.width, bg.height) != (frame.width, frame.height) {
                return Err(format!(
                    "background {}x{} does not match the {}x{} frame",
                    bg.width, bg.height, frame.width, frame.height
                ));
            }
            (blend(alpha, false, opaque), [0; 4], Some(bg))
        }
    };
    // Rows are independent: large frames are blended on all cores (1080p:
    // about half the time on two).
    use rayon::prelude::*;
    let (w, h, stride) = (
        frame.width as usize * 4,
        frame.height as usize,
        frame.stride,
    );
    let rows = frame.data[..stride * (h - 1) + w].par_chunks_mut(stride);
    let min_rows = if w * h < 1024 * 1024 { h } else { 64 };
    rows.with_min_len(min_rows)
        .enumerate()
        .for_each(|(y, row)| f(None, bg.map(|b| b.row(y)), color, &mut row[..w]));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compositor::tests::{at, image};

    #[test]
    fn blend_formulas_are_exact() {
        // Opaque background: (f*a + b*(255-a)) / 255, rounded.
        let o = over_opaque::<3, false>([200, 100, 0, 64], [0, 50, 255, 255]);
        // 200*64/255 = 50.2; (100*64 + 50*191)/255 = 62.5; 255*191/255 = 191
        assert_eq!(o, [50, 63, 191, 255]);
        // Straight alpha at the front (ARGB order).
        assert_eq!(
            over_opaque::<0, false>([255, 10, 20, 30], [255, 90, 90, 90]),
            [255, 10, 20, 30]
        );
        assert_eq!(
            over_opaque::<0, false>([0, 10, 20, 30], [255, 90, 90, 90]),
            [255, 90, 90, 90]
        );
        // Translucent background: Porter-Duff over.
        // fa=128, ba=128: out a = 128 + 128*127/255 = 191.75 -> 192.
        let o = over_any::<3, false>([255, 0, 0, 128], [0, 0, 255, 128]);
        assert_eq!(o[3], 192);
        // red = 255*128*255 / (128*255 + 128*127) = 170.3 -> 170; blue = 255*128*127/(...) = 84.7 -> 85
        assert_eq!(o, [170, 0, 85, 192]);
        // Over nothing: the foreground unchanged (straight), or unpremultiplied.
        assert_eq!(
            over_any::<3, false>([9, 80, 200, 3], [0; 4]),
            [9, 80, 200, 3]
        );
        assert_eq!(
            over_any::<3, true>([64, 0, 0, 128], [0; 4]),
            [128, 0, 0, 128]
        );
        assert_eq!(over_any::<3, false>([9, 9, 9, 0], [0; 4]), [0; 4]);
        // Opaque fast path agrees with the general formula.
        for a in [0u8, 1, 17, 128, 254, 255] {
            for (f, b) in [(0u8, 255u8), (255, 0), (37, 201), (128, 128)] {
                let ff = [f, 255 - f, f / 2, a];
                let bb = [b, b / 3, 255 - b, 255];
                assert_eq!(
                    over_opaque::<3, false>(ff, bb),
                    over_any::<3, false>(ff, bb),
                    "{ff:?} over {bb:?}"
                );
            }
        }
    }

    #[test]
    fn div255_rounds_to_nearest() {
        for x in 0..=255 * 255 {
            assert_eq!(div255(x), (x + 127) / 255, "{x}");
        }
    }

    #[test]
    fn under_each_background_in_place() {
        gst::init().unwrap();
        // Alpha 0, 128, 255 across.
        let fg = image(3, 2, |x, _| [200, 100, 50, [0, 128, 255][x as usize]]);
        let run = |bg: &Background| {
            let mut px = fg.clone();
            under(&mut PixelsMut::new(&mut px, 3, 2, 12).unwrap(), 3, bg).unwrap();
            px
        };
        assert_eq!(run(&Background::Transparent), fg);
        let green = run(&Background::Color([0, 255, 0, 255]));
        assert_eq!(at(&green, 3, 0, 0), [0, 255, 0, 255]);
        // 200*128/255 = 100.4 -> 100; (100*128 + 255*127)/255 = 177.2 -> 177; 50*128/255 = 25.1 -> 25
        assert_eq!(at(&green, 3, 1, 1), [100, 177, 25, 255]);
        assert_eq!(at(&green, 3, 2, 0), [200, 100, 50, 255]);
        let bg = image(3, 2, |x, y| [x as u8 * 10, y as u8 * 10, 255, 255]);
        let pic = run(&Background::Pixels {
            pixels: Pixels::new(&bg, 3, 2, 12).unwrap(),
            opaque: true,
        });
        assert_eq!(at(&pic, 3, 0, 1), [0, 10, 255, 255]);
        // (200*128 + 10*127)/255 = 105.4 -> 105; (100*128+10*127)/255 = 55.2 -> 55; (50*128+255*127)/255 = 152.1 -> 152
        assert_eq!(at(&pic, 3, 1, 1), [105, 55, 152, 255]);
        // A translucent colour: over in straight alpha.
        let half = run(&Background::Color([0, 0, 255, 128]));
        assert_eq!(at(&half, 3, 0, 0), [0, 0, 255, 128]);
        assert_eq!(at(&half, 3, 2, 0), [200, 100, 50, 255]);
        // A background of the wrong size is an error, not a panic.
        let small = [0u8; 4];
        let mut px = fg.clone();
        let r = under(
            &mut PixelsMut::new(&mut px, 3, 2, 12).unwrap(),
            3,
            &Background::Pixels {
                pixels: Pixels::new(&small, 1, 1, 4).unwrap(),
                opaque: false,
            },
        );
        assert!(r.unwrap_err().contains("does not match"));
    }
}
