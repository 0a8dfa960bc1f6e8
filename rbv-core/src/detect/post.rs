// SPDX-License-Identifier: MPL-2.0
//! YOLOv5-seg's pre- and post-processing, as YOLOv5's own
//! `segment/predict.py` does it with retina masks (written out step by step
//! in `setup/yolo_reference.py`, whose outputs the tests compare with):
//! letterbox, candidates, per-class NMS, boxes back to the image, and each
//! detection's mask, `sigmoid(coefficients . protos)`, cropped to its box
//! and sampled bilinearly on any grid that covers the image.

/// Classes the model scores (COCO).
pub const NUM_CLASSES: usize = 80;
/// Mask coefficients per detection (and prototype masks).
pub const NUM_COEFS: usize = 32;
/// Values per candidate row: x, y, w, h, objectness, classes, coefficients.
pub const ROW: usize = 5 + NUM_CLASSES + NUM_COEFS;
/// The letterbox's grey.
pub const PAD_VALUE: u8 = 114;
/// Input sides are multiples of this (the model's largest stride).
pub const STRIDE: u32 = 32;
/// Boxes of overlapping classes never suppress each other: each class's
/// boxes are moved this far apart before NMS.
const MAX_WH: f32 = 7680.0;
/// NMS: a box overlapping a better one of its class by more is dropped.
pub const IOU_THRESHOLD: f32 = 0.45;
/// At most this many detections per frame.
pub const MAX_DETECTIONS: usize = 300;

/// Where the image sits in the model's input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    /// The image's (frame's) width and height.
    pub image: (u32, u32),
    /// The model input's width and height.
    pub input: (u32, u32),
    /// Image pixels to input pixels.
    pub gain: f64,
    /// Half the free space, (x, y), in input pixels (fractional: boxes map
    /// back with it).
    pub pad: (f64, f64),
    /// The resized image in the input: left, top, width, height.
    pub placed: (u32, u32, u32, u32),
}

impl Letterbox {
    /// `image` scaled to fit `input` (aspect kept) and centred, as YOLOv5's
    /// `letterbox()` places it.
    pub fn new(image: (u32, u32), input: (u32, u32)) -> Letterbox {
        let (w0, h0) = (f64::from(image.0.max(1)), f64::from(image.1.max(1)));
        let (w, h) = (f64::from(input.0), f64::from(input.1));
        let gain = (h / h0).min(w / w0);
        let nw = ((w0 * gain).round_ties_even() as u32).clamp(1, input.0.max(1));
        let nh = ((h0 * gain).round_ties_even() as u32).clamp(1, input.1.max(1));
        let (dw, dh) = ((w - f64::from(nw)) / 2.0, (h - f64::from(nh)) / 2.0);
        let left = (dw - 0.1).round_ties_even().max(0.0) as u32;
        let top = (dh - 0.1).round_ties_even().max(0.0) as u32;
        Letterbox {
            image,
            input,
            gain,
            pad: (dw, dh),
            placed: (left, top, nw, nh),
        }
    }

    /// The smallest input (sides multiples of [`STRIDE`]) that holds
    /// `image` scaled so that its longer side is `longest` (rounded down to
    /// a multiple of the stride, at least one stride).
    pub fn fit(image: (u32, u32), longest: u32) -> Letterbox {
        let longest = (longest / STRIDE).max(1) * STRIDE;
        let (w0, h0) = (image.0.max(1), image.1.max(1));
        let r = f64::from(longest) / f64::from(w0.max(h0));
        let side = |s: u32| {
            let n = (f64::from(s) * r).round_ties_even().max(1.0) as u32;
            n.div_ceil(STRIDE) * STRIDE
        };
        Letterbox::new(image, (side(w0), side(h0)))
    }

    /// A box in input pixels (x1, y1, x2, y2) in image pixels, clipped.
    pub fn to_image(&self, b: [f32; 4]) -> [f32; 4] {
        let (dw, dh) = (self.pad.0 as f32, self.pad.1 as f32);
        let g = self.gain as f32;
        let (w, h) = (self.image.0 as f32, self.image.1 as f32);
        [
            ((b[0] - dw) / g).clamp(0.0, w),
            ((b[1] - dh) / g).clamp(0.0, h),
            ((b[2] - dw) / g).clamp(0.0, w),
            ((b[3] - dh) / g).clamp(0.0, h),
        ]
    }
}

/// Fills the model's input (NCHW, 0..1) from packed RGB of the placed size
/// (`placed` width x height, `stride` bytes per row): the image where the
/// letterbox puts it, [`PAD_VALUE`] around it.
pub fn fill_input(out: &mut Vec<f32>, lb: &Letterbox, rgb: &[u8], stride: usize) {
    let (w, h) = (lb.input.0 as usize, lb.input.1 as usize);
    let (left, top, pw, ph) = (
        lb.placed.0 as usize,
        lb.placed.1 as usize,
        lb.placed.2 as usize,
        lb.placed.3 as usize,
    );
    let plane = w * h;
    out.clear();
    out.resize(plane * 3, f32::from(PAD_VALUE) / 255.0);
    for y in 0..ph.min(h.saturating_sub(top)) {
        let row = &rgb[y * stride..][..pw * 3];
        let at = (top + y) * w + left;
        for (x, px) in row.chunks_exact(3).take(w.saturating_sub(left)).enumerate() {
            for c in 0..3 {
                out[c * plane + at + x] = f32::from(px[c]) / 255.0;
            }
        }
    }
}

/// One detection, in image pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// COCO class (index into [`super::COCO`]).
    pub class: usize,
    /// Objectness times the class's score.
    pub score: f32,
    /// x1, y1, x2, y2 in image pixels.
    pub bbox: [f32; 4],
    /// x1, y1, x2, y2 in input pixels.
    pub bbox_input: [f32; 4],
    /// Its mask's coefficients over the prototypes.
    pub coefs: [f32; NUM_COEFS],
}

/// The detections of one frame from the model's raw outputs: candidates
/// whose objectness and best-class score (objectness x class score) pass
/// `conf`, of the `wanted` classes (all when `None`), best first, after
/// per-class NMS; boxes mapped back to the image through `lb`.
/// `pred` holds rows of [`ROW`] values.
pub fn detections(
    pred: &[f32],
    lb: &Letterbox,
    conf: f32,
    wanted: Option<&[bool; NUM_CLASSES]>,
) -> Vec<Detection> {
    let mut cands: Vec<(f32, usize, [f32; 4], usize)> = Vec::new();
    for (i, row) in pred.chunks_exact(ROW).enumerate() {
        let obj = row[4];
        if obj.is_nan() || obj <= conf {
            continue;
        }
        // The best class; the first of equal scores, as numpy's argmax.
        let (class, best) = row[5..5 + NUM_CLASSES].iter().enumerate().fold(
            (0, f32::NEG_INFINITY),
            |(bi, bv), (j, &v)| {
                if v * obj > bv { (j, v * obj) } else { (bi, bv) }
            },
        );
        if best.is_nan() || best <= conf || wanted.is_some_and(|w| !w[class]) {
            continue;
        }
        let (x, y, w, h) = (row[0], row[1], row[2] / 2.0, row[3] / 2.0);
        cands.push((best, class, [x - w, y - h, x + w, y + h], i));
    }
    // Best first; equal scores keep the model's order (a stable sort).
    cands.sort_by(|a, b| b.0.total_cmp(&a.0));
    let area = |b: &[f32; 4]| (b[2] - b[0]) * (b[3] - b[1]);
    let mut suppressed = vec![false; cands.len()];
    let mut kept = Vec::new();
    for i in 0..cands.len() {
        if suppressed[i] {
            continue;
        }
        kept.push(i);
        if kept.len() == MAX_DETECTIONS {
            break;
        }
        let off = |k: usize| cands[k].1 as f32 * MAX_WH;
        let a = cands[i].2.map(|v| v + off(i));
        for j in i + 1..cands.len() {
            if suppressed[j] {
                continue;
            }
            let b = cands[j].2.map(|v| v + off(j));
            let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
            let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
            let inter = iw * ih;
            let iou = inter / (area(&a) + area(&b) - inter);
            if iou > IOU_THRESHOLD {
                suppressed[j] = true;
            }
        }
    }
    kept.into_iter()
        .map(|k| {
            let (score, class, b, row) = cands[k];
            let coefs = std::array::from_fn(|c| pred[row * ROW + 5 + NUM_CLASSES + c]);
            Detection {
                class,
                score,
                bbox: lb.to_image(b),
                bbox_input: b,
                coefs,
            }
        })
        .collect()
}

/// The prototype masks: [`NUM_COEFS`] planes of `width` x `height`, a
/// quarter of the input's size, with the letterbox that made them.
#[derive(Debug, Clone)]
pub struct Protos {
    pub data: Vec<f32>,
    pub width: usize,
    pub height: usize,
    pub letterbox: Letterbox,
}

/// Which prototype cells the image covers: left, top, right, bottom
/// (exclusive), as YOLOv5 crops the padding (`int()` of the padding at
/// prototype scale).
fn crop(p: &Protos) -> (usize, usize, usize, usize) {
    let (w0, h0) = (
        f64::from(p.letterbox.image.0.max(1)),
        f64::from(p.letterbox.image.1.max(1)),
    );
    let (mw, mh) = (p.width as f64, p.height as f64);
    let gain = (mh / h0).min(mw / w0);
    let (pw, ph) = ((mw - w0 * gain) / 2.0, (mh - h0 * gain) / 2.0);
    let (left, top) = (pw.max(0.0) as usize, ph.max(0.0) as usize);
    let (right, bottom) = ((mw - pw) as usize, (mh - ph) as usize);
    (
        left.min(p.width.saturating_sub(1)),
        top.min(p.height.saturating_sub(1)),
        right.clamp(left + 1, p.width.max(left + 1)),
        bottom.clamp(top + 1, p.height.max(top + 1)),
    )
}

/// Source index pair and weight of a half-pixel bilinear resize from `n_in`
/// to `n_out` samples, for output sample `o` (OpenCV's INTER_LINEAR and
/// PyTorch's `align_corners=False`).
#[inline]
fn tap(o: usize, n_out: usize, n_in: usize) -> (usize, usize, f32) {
    let src = ((o as f64 + 0.5) * (n_in as f64 / n_out as f64) - 0.5).max(0.0);
    let i0 = (src.floor() as usize).min(n_in - 1);
    let i1 = (i0 + 1).min(n_in - 1);
    (i0, i1, (src - i0 as f64) as f32)
}

/// Scratch space for [`Protos::paint`], kept between calls.
#[derive(Debug, Default, Clone)]
pub struct MaskScratch {
    probs: Vec<f32>,
    cols: Vec<(usize, usize, f32)>,
}

impl Protos {
    /// Paints detection `d`'s mask probability onto a `gw` x `gh` grid
    /// that covers the image (cell centres at image coordinates
    /// `(gx + 0.5) * w / gw - 0.5`): `sigmoid(coefs . protos)` on the
    /// cropped prototype map, sampled bilinearly, zero outside the box
    /// (`x1 <= x < x2`, rows alike). Each cell keeps the larger of its value
    /// and the mask's (several detections paint one map).
    pub fn paint(
        &self,
        d: &Detection,
        (gw, gh): (usize, usize),
        out: &mut [f32],
        scratch: &mut MaskScratch,
    ) {
        if gw == 0 || gh == 0 || out.len() < gw * gh || self.width == 0 || self.height == 0 {
            return;
        }
        let (left, top, right, bottom) = crop(self);
        let (cw, ch) = (right - left, bottom - top);
        let (iw, ih) = (
            f64::from(self.letterbox.image.0.max(1)),
            f64::from(self.letterbox.image.1.max(1)),
        );
        // The grid cells whose centres fall in the box.
        let centre = |g: usize, n: usize, size: f64| (g as f64 + 0.5) * size / n as f64 - 0.5;
        let range = |lo: f32, hi: f32, n: usize, size: f64| {
            let first = (0..n).position(|g| centre(g, n, size) >= f64::from(lo));
            let first = match first {
                Some(f) => f,
                None => return 0..0,
            };
            let end = (first..n)
                .find(|&g| centre(g, n, size) >= f64::from(hi))
                .unwrap_or(n);
            first..end
        };
        let xs = range(d.bbox[0], d.bbox[2], gw, iw);
        let ys = range(d.bbox[1], d.bbox[3], gh, ih);
        if xs.is_empty() || ys.is_empty() {
            return;
        }
        // Bilinear taps into the cropped map, and the span of cells they read.
        scratch.cols.clear();
        scratch.cols.extend(xs.clone().map(|gx| tap(gx, gw, cw)));
        let rows: Vec<(usize, usize, f32)> = ys.clone().map(|gy| tap(gy, gh, ch)).collect();
        let (cx0, cx1) = (
            scratch.cols[0].0,
            scratch.cols[scratch.cols.len() - 1].1 + 1,
        );
        let (cy0, cy1) = (rows[0].0, rows[rows.len() - 1].1 + 1);
        let span = cx1 - cx0;
        // sigmoid(coefs . protos) over that span only.
        let plane = self.width * self.height;
        scratch.probs.clear();
        scratch.probs.resize(span * (cy1 - cy0), 0.0);
        for (k, &c) in d.coefs.iter().enumerate() {
            let base = &self.data[k * plane..(k + 1) * plane];
            for y in cy0..cy1 {
                let src = &base[(top + y) * self.width + left + cx0..][..span];
                let dst = &mut scratch.probs[(y - cy0) * span..][..span];
                for (o, &p) in dst.iter_mut().zip(src) {
                    *o += c * p;
                }
            }
        }
        for v in &mut scratch.probs {
            *v = 1.0 / (1.0 + (-*v).exp());
        }
        let at = |x: usize, y: usize| scratch.probs[(y - cy0) * span + x - cx0];
        for (gy, &(y0, y1, fy)) in ys.zip(&rows) {
            let row = &mut out[gy * gw..][..gw];
            for (gx, &(x0, x1, fx)) in xs.clone().zip(&scratch.cols) {
                let top_v = at(x0, y0) * (1.0 - fx) + at(x1, y0) * fx;
                let bottom_v = at(x0, y1) * (1.0 - fx) + at(x1, y1) * fx;
                let v = top_v * (1.0 - fy) + bottom_v * fy;
                if v > row[gx] {
                    row[gx] = v;
                }
            }
        }
    }
}

/// Packed RGB resized with half-pixel bilinear weights and no
/// antialiasing, rounded to 8 bits (OpenCV's INTER_LINEAR, as YOLOv5's
/// letterbox resizes): the reference's resize, for tests and tools. `src`
/// has `bpp` bytes per pixel (RGB first) and `stride` bytes per row.
pub fn resize_rgb(
    src: &[u8],
    (sw, sh): (usize, usize),
    stride: usize,
    bpp: usize,
    (dw, dh): (usize, usize),
) -> Vec<u8> {
    let mut out = vec![0u8; dw * dh * 3];
    if sw == 0 || sh == 0 {
        return out;
    }
    let cols: Vec<_> = (0..dw).map(|x| tap(x, dw, sw)).collect();
    for y in 0..dh {
        let (y0, y1, fy) = tap(y, dh, sh);
        let (fy, r0, r1) = (f64::from(fy), &src[y0 * stride..], &src[y1 * stride..]);
        for (x, &(x0, x1, fx)) in cols.iter().enumerate() {
            let fx = f64::from(fx);
            for c in 0..3 {
                let p = |r: &[u8], i: usize| f64::from(r[i * bpp + c]);
                let t = p(r0, x0) * (1.0 - fx) + p(r0, x1) * fx;
                let b = p(r1, x0) * (1.0 - fx) + p(r1, x1) * fx;
                let v = t * (1.0 - fy) + b * fy;
                out[(y * dw + x) * 3 + c] = v.round_ties_even().clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}
