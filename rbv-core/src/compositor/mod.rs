// SPDX-License-Identifier: MPL-2.0
//! Compositor: the cut-out foreground (4-byte pixels, straight alpha) placed
//! on a canvas over a background, with the hosted service's composition
//! semantics (canvas size, anchor, scale, offset).
//!
//! Pixels are 4 bytes with the alpha at byte 0 or 3; the three colour bytes
//! are treated alike, so any of RGBA, BGRA, ARGB, ABGR works as long as the
//! background is in the same order. Alpha is straight (not premultiplied) on
//! the way in and out, as in GStreamer's RGBA formats. When the foreground
//! is resampled it is premultiplied first, so transparent pixels do not
//! bleed their colour into the edge (no dark fringes).
//!
//! Blending, rounded to nearest: over an opaque background,
//! `out = (f * a + b * (255 - a)) / 255`, alpha 255; over a translucent one,
//! Porter-Duff "over" in straight alpha.

use gst_video::prelude::*;
use gst_video::{
    VideoConverter, VideoConverterConfig, VideoFormat, VideoFrameRef, VideoInfo,
    VideoResamplerMethod,
};

mod blend;
mod blur;
mod cover;
pub mod parse;
mod scaler;

pub use blend::under;
use blend::{blend, check_alpha, div255, px};
pub use blur::{Blur, MIN_BLUR_REDUCTION, blur_plan, box_blur};
pub use cover::{Cover, cover_crop};
pub use parse::{
    MAX_CANVAS, MAX_OFFSET, MAX_SCALE, MIN_SCALE, color_to_string, composition_to_json,
    parse_color, parse_composition,
};
use scaler::{Scaler, info};

/// Where the foreground sits on the canvas (the service's nine anchors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Anchor {
    TopLeft,
    TopCenter,
    TopRight,
    CenterLeft,
    #[default]
    Center,
    CenterRight,
    BottomLeft,
    BottomCenter,
    BottomRight,
}

impl Anchor {
    pub const ALL: [Anchor; 9] = [
        Anchor::TopLeft,
        Anchor::TopCenter,
        Anchor::TopRight,
        Anchor::CenterLeft,
        Anchor::Center,
        Anchor::CenterRight,
        Anchor::BottomLeft,
        Anchor::BottomCenter,
        Anchor::BottomRight,
    ];

    /// The service's name: `top-left` ... `bottom-right`.
    pub fn name(self) -> &'static str {
        match self {
            Anchor::TopLeft => "top-left",
            Anchor::TopCenter => "top-center",
            Anchor::TopRight => "top-right",
            Anchor::CenterLeft => "center-left",
            Anchor::Center => "center",
            Anchor::CenterRight => "center-right",
            Anchor::BottomLeft => "bottom-left",
            Anchor::BottomCenter => "bottom-center",
            Anchor::BottomRight => "bottom-right",
        }
    }

    pub fn parse(name: &str) -> Option<Anchor> {
        Anchor::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Horizontal and vertical position in halves: 0 = left/top,
    /// 1 = centre, 2 = right/bottom.
    fn halves(self) -> (i64, i64) {
        let i = Anchor::ALL.iter().position(|&a| a == self).unwrap_or(4) as i64;
        (i % 3, i / 3)
    }
}

/// Composition settings, as the service's `composition` object.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    /// Canvas size; 0 = the input frame's width or height.
    pub canvas_width: u32,
    pub canvas_height: u32,
    pub anchor: Anchor,
    /// Size of the foreground relative to the input frame.
    pub scale: f64,
    /// Pixels from the anchored position, x to the right, y down.
    pub offset_x: i32,
    pub offset_y: i32,
}

impl Default for Placement {
    fn default() -> Self {
        Placement {
            canvas_width: 0,
            canvas_height: 0,
            anchor: Anchor::Center,
            scale: 1.0,
            offset_x: 0,
            offset_y: 0,
        }
    }
}

/// A rectangle on the canvas; may reach outside it (it is clipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: i64,
    pub y: i64,
    pub width: u32,
    pub height: u32,
}

impl Placement {
    /// The canvas for a `width`x`height` input.
    pub fn canvas(&self, width: u32, height: u32) -> (u32, u32) {
        let pick = |c: u32, v: u32| if c == 0 { v } else { c };
        (
            pick(self.canvas_width, width),
            pick(self.canvas_height, height),
        )
    }

    /// Where a `width`x`height` foreground lands on a `canvas` sized canvas:
    /// scaled (rounded, at least 1 pixel), anchored (centre positions round
    /// down), then offset.
    pub fn rect(&self, (width, height): (u32, u32), (cw, ch): (u32, u32)) -> Rect {
        let size = |v: u32| ((f64::from(v) * self.scale).round() as u32).max(1);
        let (w, h) = (size(width), size(height));
        let (hx, hy) = self.anchor.halves();
        Rect {
            x: ((i64::from(cw) - i64::from(w)) * hx).div_euclid(2) + i64::from(self.offset_x),
            y: ((i64::from(ch) - i64::from(h)) * hy).div_euclid(2) + i64::from(self.offset_y),
            width: w,
            height: h,
        }
    }

    /// Whether the foreground exactly covers a canvas of its own size, so it
    /// can be composited in place.
    pub fn is_identity(&self, width: u32, height: u32) -> bool {
        let canvas = self.canvas(width, height);
        canvas == (width, height)
            && self.rect((width, height), canvas)
                == Rect {
                    x: 0,
                    y: 0,
                    width,
                    height,
                }
    }
}

/// 4-byte pixels, read-only.
#[derive(Debug, Clone, Copy)]
pub struct Pixels<'a> {
    pub data: &'a [u8],
    pub width: u32,
    pub height: u32,
    pub stride: usize,
}

/// 4-byte pixels, writable.
#[derive(Debug)]
pub struct PixelsMut<'a> {
    pub data: &'a mut [u8],
    pub width: u32,
    pub height: u32,
    pub stride: usize,
}

fn check(len: usize, width: u32, height: u32, stride: usize, bpp: usize) -> Result<(), String> {
    let row = width as usize * bpp;
    if width == 0 || height == 0 || stride < row || len < stride * (height as usize - 1) + row {
        return Err(format!(
            "{len} bytes with stride {stride} cannot hold {width}x{height} pixels of {bpp} bytes"
        ));
    }
    Ok(())
}

impl<'a> Pixels<'a> {
    pub fn new(data: &'a [u8], width: u32, height: u32, stride: usize) -> Result<Self, String> {
        check(data.len(), width, height, stride, 4)?;
        Ok(Pixels {
            data,
            width,
            height,
            stride,
        })
    }

    fn row(&self, y: usize) -> &'a [u8] {
        &self.data[y * self.stride..][..self.width as usize * 4]
    }

    /// Whether every alpha byte is 255.
    pub fn is_opaque(&self, alpha: usize) -> bool {
        (0..self.height as usize).all(|y| self.row(y).chunks_exact(4).all(|p| p[alpha] == 255))
    }
}

impl<'a> PixelsMut<'a> {
    pub fn new(data: &'a mut [u8], width: u32, height: u32, stride: usize) -> Result<Self, String> {
        check(data.len(), width, height, stride, 4)?;
        Ok(PixelsMut {
            data,
            width,
            height,
            stride,
        })
    }

    fn row(&mut self, y: usize) -> &mut [u8] {
        &mut self.data[y * self.stride..][..self.width as usize * 4]
    }

    pub fn as_pixels(&self) -> Pixels<'_> {
        Pixels {
            data: self.data,
            width: self.width,
            height: self.height,
            stride: self.stride,
        }
    }
}

/// What the foreground is laid over.
#[derive(Debug, Clone, Copy)]
pub enum Background<'a> {
    /// Fully transparent: the output keeps the foreground's alpha.
    Transparent,
    /// One colour, in the pixels' byte order, straight alpha.
    Color([u8; 4]),
    /// A canvas-sized picture (image or blurred frame), in the pixels' byte
    /// order; `opaque` when every alpha byte is 255 (the fast path).
    Pixels { pixels: Pixels<'a>, opaque: bool },
}

/// The colour of a plain background (transparent is [0; 4]).
fn plain_color(background: &Background) -> [u8; 4] {
    match *background {
        Background::Color(c) => c,
        _ => [0; 4],
    }
}

/// Pixels `x0..x1` of canvas row `y` from the background.
fn fill_span(row: &mut [u8], background: &Background, y: usize, x0: usize, x1: usize) {
    let dst = &mut row[x0 * 4..x1 * 4];
    match *background {
        Background::Pixels { pixels, .. } => dst.copy_from_slice(&pixels.row(y)[x0 * 4..x1 * 4]),
        _ => {
            let color = plain_color(background);
            for o in dst.chunks_exact_mut(4) {
                o.copy_from_slice(&color);
            }
        }
    }
}

/// The part of a `rect` inside a `cw`x`ch` canvas, as
/// (canvas x, canvas y, source x, source y, width, height).
fn clip(rect: Rect, cw: u32, ch: u32) -> Option<(usize, usize, usize, usize, usize, usize)> {
    let x0 = rect.x.max(0);
    let y0 = rect.y.max(0);
    let x1 = (rect.x + i64::from(rect.width)).min(i64::from(cw));
    let y1 = (rect.y + i64::from(rect.height)).min(i64::from(ch));
    if x1 <= x0 || y1 <= y0 {
        return None;
    }
    Some((
        x0 as usize,
        y0 as usize,
        (x0 - rect.x) as usize,
        (y0 - rect.y) as usize,
        (x1 - x0) as usize,
        (y1 - y0) as usize,
    ))
}

/// Places foregrounds on canvases; keeps its scaler and buffers between
/// frames, so nothing is allocated per frame once sizes are stable.
#[derive(Default)]
pub struct Compositor {
    scaler: Option<Scaler>,
}

impl std::fmt::Debug for Compositor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compositor").finish_non_exhaustive()
    }
}

impl Compositor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Fills `out` (the canvas) with `background`, then lays `fg` over it at
    /// `rect`, clipped to the canvas. A foreground of another size than
    /// `rect` is premultiplied and resampled (bicubic) first.
    pub fn compose(
        &mut self,
        fg: Pixels,
        alpha: usize,
        rect: Rect,
        background: &Background,
        out: &mut PixelsMut,
    ) -> Result<(), String> {
        check_alpha(alpha)?;
        let (cw, ch) = (out.width as usize, out.height as usize);
        if let Background::Pixels { pixels, .. } = background
            && (pixels.width, pixels.height) != (out.width, out.height)
        {
            return Err(format!(
                "background {}x{} does not match the {cw}x{ch} canvas",
                pixels.width, pixels.height
            ));
        }
        let (cx, cy, sx, sy, w, h) = clip(rect, out.width, out.height).unwrap_or_default();
        // The background where the foreground does not reach.
        for y in 0..ch {
            let row = out.row(y);
            if (cy..cy + h).contains(&y) {
                fill_span(row, background, y, 0, cx);
                fill_span(row, background, y, cx + w, cw);
            } else {
                fill_span(row, background, y, 0, cw);
            }
        }
        if w == 0 || h == 0 {
            return Ok(());
        }
        let opaque = match *background {
            Background::Transparent => false,
            Background::Color(c) => c[alpha] == 255,
            Background::Pixels { opaque, .. } => opaque,
        };
        let color = plain_color(background);
        // The foreground over the background where it does.
        let place = |fg: Pixels, out: &mut PixelsMut, premul: bool| {
            let f = blend(alpha, premul, opaque);
            for y in 0..h {
                let src = &fg.row(sy + y)[sx * 4..][..w * 4];
                let bg = match background {
                    Background::Pixels { pixels, .. } => {
                        Some(&pixels.row(cy + y)[cx * 4..][..w * 4])
                    }
                    _ => None,
                };
                let dst = &mut out.row(cy + y)[cx * 4..][..w * 4];
                f(Some(src), bg, color, dst);
            }
        };
        if (rect.width, rect.height) == (fg.width, fg.height) {
            place(fg, out, false);
            return Ok(());
        }
        // Premultiply, resample, then blend premultiplied.
        let scaler = Scaler::get(
            &mut self.scaler,
            info(VideoFormat::Rgba, fg.width, fg.height)?,
            info(VideoFormat::Rgba, rect.width, rect.height)?,
            [0, 0, fg.width, fg.height],
            VideoResamplerMethod::Cubic,
        )?;
        scaler.with_src(|mut dst| {
            for y in 0..fg.height as usize {
                premultiply(fg.row(y), dst.row(y), alpha);
            }
        })?;
        scaler.run()?;
        scaler.with_dst(|scaled| place(scaled, out, true))?;
        Ok(())
    }
}

fn premultiply(src: &[u8], dst: &mut [u8], alpha: usize) {
    for (d, s) in dst.chunks_exact_mut(4).zip(src.chunks_exact(4)) {
        match s[alpha] {
            255 => d.copy_from_slice(s),
            0 => d.fill(0),
            a => {
                let a = u32::from(a);
                for c in 0..4 {
                    d[c] = div255(u32::from(s[c]) * a) as u8;
                }
                d[alpha] = s[alpha];
            }
        }
    }
}

/// Copies the alpha of 4-byte pixels into a GRAY8 plane (`mask` output).
pub fn alpha_plane(
    src: Pixels,
    alpha: usize,
    dst: &mut [u8],
    dst_stride: usize,
) -> Result<(), String> {
    check_alpha(alpha)?;
    check(dst.len(), src.width, src.height, dst_stride, 1)?;
    for (y, row) in dst
        .chunks_mut(dst_stride)
        .take(src.height as usize)
        .enumerate()
    {
        for (d, p) in row.iter_mut().zip(src.row(y).chunks_exact(4)) {
            *d = p[alpha];
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const RED: [u8; 4] = [255, 0, 0, 255];

    /// A `w`x`h` RGBA image, packed, from a function of (x, y).
    pub(crate) fn image(w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 4]) -> Vec<u8> {
        (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .flat_map(|(x, y)| f(x, y))
            .collect()
    }

    pub(crate) fn at(data: &[u8], w: u32, x: u32, y: u32) -> [u8; 4] {
        px(&data[((y * w + x) * 4) as usize..])
    }

    fn compose(
        fg: &[u8],
        (fw, fh): (u32, u32),
        placement: &Placement,
        bg: &Background,
    ) -> (Vec<u8>, u32, u32) {
        gst::init().unwrap();
        let (cw, ch) = placement.canvas(fw, fh);
        let mut out = vec![7u8; (cw * ch * 4) as usize];
        let rect = placement.rect((fw, fh), (cw, ch));
        Compositor::new()
            .compose(
                Pixels::new(fg, fw, fh, fw as usize * 4).unwrap(),
                3,
                rect,
                bg,
                &mut PixelsMut::new(&mut out, cw, ch, cw as usize * 4).unwrap(),
            )
            .unwrap();
        (out, cw, ch)
    }

    #[test]
    fn each_anchor_places_exactly() {
        // A 2x2 opaque red foreground on a 6x4 transparent canvas.
        let fg = image(2, 2, |_, _| RED);
        let expect = [
            (Anchor::TopLeft, (0, 0)),
            (Anchor::TopCenter, (2, 0)),
            (Anchor::TopRight, (4, 0)),
            (Anchor::CenterLeft, (0, 1)),
            (Anchor::Center, (2, 1)),
            (Anchor::CenterRight, (4, 1)),
            (Anchor::BottomLeft, (0, 2)),
            (Anchor::BottomCenter, (2, 2)),
            (Anchor::BottomRight, (4, 2)),
        ];
        for (anchor, (x0, y0)) in expect {
            let placement = Placement {
                canvas_width: 6,
                canvas_height: 4,
                anchor,
                ..Placement::default()
            };
            let (out, w, h) = compose(&fg, (2, 2), &placement, &Background::Transparent);
            for y in 0..h {
                for x in 0..w {
                    let inside = (x0..x0 + 2).contains(&x) && (y0..y0 + 2).contains(&y);
                    let want = if inside { RED } else { [0; 4] };
                    assert_eq!(at(&out, w, x, y), want, "{} at {x},{y}", anchor.name());
                }
            }
            assert_eq!(Anchor::parse(anchor.name()), Some(anchor));
        }
        assert_eq!(Anchor::parse("middle"), None);
    }

    #[test]
    fn offsets_move_and_clip() {
        let fg = image(2, 2, |x, y| [x as u8 + 1, y as u8 + 1, 9, 255]);
        let placement = |anchor, offset_x, offset_y| Placement {
            canvas_width: 4,
            canvas_height: 3,
            anchor,
            offset_x,
            offset_y,
            ..Placement::default()
        };
        // Bottom-right anchor, offset (1, 1): only the top-left source pixel
        // stays on the canvas, at (3, 2).
        let (out, w, _) = compose(
            &fg,
            (2, 2),
            &placement(Anchor::BottomRight, 1, 1),
            &Background::Color([0, 0, 0, 255]),
        );
        for y in 0..3 {
            for x in 0..4 {
                let want = if (x, y) == (3, 2) {
                    [1, 1, 9, 255]
                } else {
                    [0, 0, 0, 255]
                };
                assert_eq!(at(&out, w, x, y), want, "{x},{y}");
            }
        }
        // Top-left, offset (-1, 0): the right column of the source at x = 0.
        let (out, w, _) = compose(
            &fg,
            (2, 2),
            &placement(Anchor::TopLeft, -1, 0),
            &Background::Transparent,
        );
        assert_eq!(at(&out, w, 0, 0), [2, 1, 9, 255]);
        assert_eq!(at(&out, w, 0, 1), [2, 2, 9, 255]);
        assert_eq!(at(&out, w, 1, 0), [0; 4]);
        // Pushed off the canvas entirely: background only.
        let (out, _, _) = compose(
            &fg,
            (2, 2),
            &placement(Anchor::TopLeft, 100, -100),
            &Background::Color([1, 2, 3, 255]),
        );
        assert!(out.chunks(4).all(|p| p == [1, 2, 3, 255]));
        // Centre positions round down: a 2-wide foreground on a 5-wide canvas at x = 1.
        let p = Placement {
            canvas_width: 5,
            canvas_height: 2,
            ..Placement::default()
        };
        assert_eq!(p.rect((2, 2), (5, 2)).x, 1);
    }

    #[test]
    fn foreground_alpha_blends_over_canvas_background() {
        let fg = image(2, 1, |x, _| [255, 255, 255, [255, 51][x as usize]]);
        let placement = Placement {
            canvas_width: 3,
            canvas_height: 1,
            anchor: Anchor::TopRight,
            ..Placement::default()
        };
        let (out, w, _) = compose(
            &fg,
            (2, 1),
            &placement,
            &Background::Color([0, 0, 100, 255]),
        );
        assert_eq!(at(&out, w, 0, 0), [0, 0, 100, 255]);
        assert_eq!(at(&out, w, 1, 0), [255, 255, 255, 255]);
        // 255*51/255 = 51; (255*51 + 100*204)/255 = 131
        assert_eq!(at(&out, w, 2, 0), [51, 51, 131, 255]);
        // Image background: each canvas pixel shows through by 1 - alpha.
        let bg = image(3, 1, |x, _| [0, x as u8 * 100, 0, 255]);
        let (out, w, _) = compose(
            &fg,
            (2, 1),
            &placement,
            &Background::Pixels {
                pixels: Pixels::new(&bg, 3, 1, 12).unwrap(),
                opaque: true,
            },
        );
        assert_eq!(at(&out, w, 0, 0), [0, 0, 0, 255]);
        // (255*51 + 200*204)/255 = 211
        assert_eq!(at(&out, w, 2, 0), [51, 211, 51, 255]);
    }

    #[test]
    fn identity_placement_is_detected() {
        assert!(Placement::default().is_identity(640, 480));
        let p = |f: fn(&mut Placement)| {
            let mut p = Placement::default();
            f(&mut p);
            p.is_identity(640, 480)
        };
        assert!(p(|p| p.canvas_width = 640));
        assert!(p(|p| p.anchor = Anchor::BottomRight));
        assert!(!p(|p| p.canvas_width = 641));
        assert!(!p(|p| p.scale = 0.5));
        assert!(!p(|p| p.offset_y = 1));
    }

    #[test]
    fn scaled_foreground_has_no_dark_fringe() {
        // Red where opaque, black where transparent (as a cut-out is): a
        // straight-alpha resample would mix in the black and darken the edge.
        let fg = image(8, 8, |x, _| if x < 4 { RED } else { [0, 0, 0, 0] });
        let placement = Placement {
            scale: 0.5,
            anchor: Anchor::TopLeft,
            ..Placement::default()
        };
        let (out, w, h) = compose(&fg, (8, 8), &placement, &Background::Transparent);
        assert_eq!((w, h), (8, 8), "canvas stays the input size");
        let mut soft = 0;
        for y in 0..4 {
            for x in 0..4 {
                let p = at(&out, w, x, y);
                if p[3] > 0 {
                    assert!(p[0] >= 254 && p[1] == 0 && p[2] == 0, "{x},{y}: {p:?}");
                }
                soft += usize::from(p[3] > 0 && p[3] < 255);
            }
        }
        assert!(soft > 0, "the resampled edge is soft");
        assert_eq!(at(&out, w, 0, 0), RED);
        assert_eq!(at(&out, w, 5, 5), [0; 4], "outside the scaled foreground");
        // Over an opaque colour, the edge mixes red and the colour only.
        let (out, w, _) = compose(
            &fg,
            (8, 8),
            &placement,
            &Background::Color([0, 0, 255, 255]),
        );
        for x in 0..4 {
            let p = at(&out, w, x, 1);
            assert_eq!(p[1], 0);
            assert!(u32::from(p[0]) + u32::from(p[2]) >= 254, "{x}: {p:?}");
        }
    }

    #[test]
    fn scale_sizes_round_and_upscaling_works() {
        let p = Placement {
            scale: 0.4,
            canvas_width: 1920,
            canvas_height: 1080,
            anchor: Anchor::BottomRight,
            ..Placement::default()
        };
        assert_eq!(
            p.rect((1920, 1080), (1920, 1080)),
            Rect {
                x: 1152,
                y: 648,
                width: 768,
                height: 432
            }
        );
        let fg = image(2, 2, |_, _| [10, 20, 30, 255]);
        let big = Placement {
            scale: 2.0,
            ..Placement::default()
        };
        let (out, w, h) = compose(&fg, (2, 2), &big, &Background::Transparent);
        assert_eq!((w, h), (2, 2));
        // The centre 2x2 of the 4x4 upscaled image: flat colour stays flat.
        assert!(out.chunks(4).all(|p| p == [10, 20, 30, 255]), "{out:?}");
    }

    #[test]
    fn mask_plane_copies_alpha() {
        let px = image(3, 2, |x, y| [1, 2, 3, (x + 10 * y) as u8]);
        let mut gray = vec![99u8; 4 * 2];
        alpha_plane(Pixels::new(&px, 3, 2, 12).unwrap(), 3, &mut gray, 4).unwrap();
        assert_eq!(gray, [0, 1, 2, 99, 10, 11, 12, 99]);
        assert!(alpha_plane(Pixels::new(&px, 3, 2, 12).unwrap(), 3, &mut gray, 2).is_err());
        assert!(alpha_plane(Pixels::new(&px, 3, 2, 12).unwrap(), 1, &mut gray, 4).is_err());
    }
}
