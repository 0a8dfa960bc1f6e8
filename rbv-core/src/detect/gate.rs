// SPDX-License-Identifier: MPL-2.0
//! The detector's regions and the matting model's mask, combined. The
//! detector says *where* (which instances of the asked-for classes), the
//! matting model says *how much* (its soft alpha, with its edges):
//!
//! - **gate**: the matting model's alpha is kept within `margin` of a
//!   region (a detection's mask above 0.5), falling to zero over `feather`
//!   beyond it; everything farther away (a ghost beside a person, a bus
//!   roof, a lamppost) is cleared;
//! - **fill**: deeper than `inset` inside a region, the alpha is at least
//!   the detector's own mask probability (holes the matting model leaves in
//!   a body are closed; its edges are untouched);
//! - classes the matting model cannot segment (`human` keeps people only: a
//!   chair, a bus) take the detector's mask as their alpha;
//! - a person the matting model finds and the detector does not is
//!   cleared: the gate keeps only what was asked for and found.
//!
//! Regions found on an earlier frame (the detector runs on every Nth frame,
//! or on its own thread) are **moved with the matte**: each region follows
//! the matting model's mask inside its box by mean shift (the box's
//! matte-weighted centroid, against the one it had when the regions came),
//! and is **widened** by its age (margin and inset grow by `grow` per
//! frame), for what moves otherwise (arms, turns, zooms).
//!
//! Distances are fractions of the frame's size (`sqrt(width x height)`),
//! measured on the mask's grid with the frame's pixel aspect, so the same
//! settings work for every model's mask size.

use super::{Detections, MaskScratch};

/// How the gate is shaped (fractions of the frame's size, see the module).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GateParams {
    pub margin: f32,
    pub feather: f32,
    pub inset: f32,
    pub grow: f32,
    /// Margin and inset stop growing at this age (frames).
    pub max_age: u32,
}

impl Default for GateParams {
    fn default() -> Self {
        // Measured with the quality bench (human; VOC, composites, moving
        // clip): a tighter margin and inset clear more of the halo and fill
        // more of the body (VOC IoU 0.842 at 1 % / 1 %, 0.872 at 0.5 % /
        // 0.5 %), a wider feather or inset lose on every set.
        GateParams {
            margin: 0.005,
            feather: 0.01,
            inset: 0.005,
            grow: 0.002,
            max_age: 30,
        }
    }
}

/// One frame's detections of the asked-for classes, and for each whether
/// the matting model segments its class (then gated and filled) or not
/// (then its own mask is the alpha).
#[derive(Debug, Clone)]
pub struct Regions {
    pub detections: Detections,
    pub matted: Vec<bool>,
    /// Tells regions apart, so a gate renders each once.
    pub id: u64,
}

impl Regions {
    /// `detections`, each matted when `matted(class)` says so.
    pub fn new(detections: Detections, matted: impl Fn(usize) -> bool, id: u64) -> Regions {
        let matted = detections.list.iter().map(|d| matted(d.class)).collect();
        Regions {
            detections,
            matted,
            id,
        }
    }

    /// The frame size they were found in.
    pub fn image(&self) -> (u32, u32) {
        self.detections.protos.letterbox.image
    }
}

/// Matte values below this do not pull a region (halo, noise).
const TRACK_FLOOR: f32 = 0.3;
/// A region whose box holds less matte than this many cells' worth is not
/// moved (the matting model does not see it).
const TRACK_MIN_MASS: f32 = 4.0;

/// One detection on the mask's grid: its mask and distance maps over a
/// window (its box, padded by the widest the gate can reach), and where
/// the matte has moved it.
#[derive(Debug, Clone)]
struct Tracked {
    matted: bool,
    /// The window: first column and row, width and height, in cells.
    x0: usize,
    y0: usize,
    w: usize,
    h: usize,
    p: Vec<f32>,
    /// Distance to the region (0 inside it).
    outside: Vec<f32>,
    /// Distance to the cells outside it (0 outside).
    inside: Vec<f32>,
    /// The box in cells: x1, y1, x2, y2 (exclusive).
    bx: [usize; 4],
    /// The matte's centroid in the box when the regions came; `None`: not
    /// moved.
    reference: Option<(f32, f32)>,
    /// Where the matte has moved it, in cells.
    shift: (f32, f32),
}

/// The gate's state: the regions on the mask's grid, kept (and moved)
/// until new regions or another grid come.
#[derive(Debug, Default)]
pub struct Gate {
    tracked: Vec<Tracked>,
    gate: Vec<f32>,
    fill: Vec<f32>,
    own: Vec<f32>,
    full: Vec<f32>,
    scratch: MaskScratch,
    rendered: Option<(u64, u32, u32)>,
}

/// Chamfer distance transform in place: `d` holds 0 at seeds and a large
/// value elsewhere; afterwards each cell's distance to the nearest seed,
/// with steps of `ax` across, `ay` down and their hypotenuse diagonally.
pub(super) fn chamfer(d: &mut [f32], w: usize, h: usize, ax: f32, ay: f32) {
    let ad = ax.hypot(ay);
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let mut v = d[i];
            if x > 0 {
                v = v.min(d[i - 1] + ax);
            }
            if y > 0 {
                v = v.min(d[i - w] + ay);
                if x > 0 {
                    v = v.min(d[i - w - 1] + ad);
                }
                if x + 1 < w {
                    v = v.min(d[i - w + 1] + ad);
                }
            }
            d[i] = v;
        }
    }
    for y in (0..h).rev() {
        for x in (0..w).rev() {
            let i = y * w + x;
            let mut v = d[i];
            if x + 1 < w {
                v = v.min(d[i + 1] + ax);
            }
            if y + 1 < h {
                v = v.min(d[i + w] + ay);
                if x + 1 < w {
                    v = v.min(d[i + w + 1] + ad);
                }
                if x > 0 {
                    v = v.min(d[i + w - 1] + ad);
                }
            }
            d[i] = v;
        }
    }
}

/// The matte-weighted centroid of `mask` (`mw` wide) in the box `b` moved
/// by `(sx, sy)` cells (clipped to the grid), and the matte's mass there.
fn centroid(
    mask: &[f32],
    (mw, mh): (usize, usize),
    b: [usize; 4],
    (sx, sy): (i64, i64),
) -> (f32, f32, f32) {
    let clip = |v: usize, s: i64, n: usize| (v as i64 + s).clamp(0, n as i64) as usize;
    let (x1, x2) = (clip(b[0], sx, mw), clip(b[2], sx, mw));
    let (y1, y2) = (clip(b[1], sy, mh), clip(b[3], sy, mh));
    let (mut m, mut cx, mut cy) = (0.0f32, 0.0f32, 0.0f32);
    for y in y1..y2 {
        for (x, &v) in mask[y * mw + x1..y * mw + x2].iter().enumerate() {
            if v >= TRACK_FLOOR {
                m += v;
                cx += v * (x1 + x) as f32;
                cy += v * y as f32;
            }
        }
    }
    if m > 0.0 {
        (cx / m, cy / m, m)
    } else {
        (0.0, 0.0, 0.0)
    }
}

impl Gate {
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Renders `regions` on a `mw` x `mh` grid, unless already done; new
    /// regions start where they were found.
    fn render(&mut self, regions: &Regions, (mw, mh): (usize, usize), p: &GateParams) -> bool {
        let key = (regions.id, mw as u32, mh as u32);
        if self.rendered == Some(key) {
            return false;
        }
        self.rendered = Some(key);
        self.tracked.clear();
        let (iw, ih) = regions.image();
        let (iw, ih) = (f64::from(iw.max(1)), f64::from(ih.max(1)));
        let size = (iw * ih).sqrt();
        let ax = (iw / mw as f64 / size) as f32;
        let ay = (ih / mh as f64 / size) as f32;
        // The widest the gate reaches beyond a region, in cells.
        let reach = p.margin.max(p.inset) + p.max_age as f32 * p.grow + p.feather;
        let (px, py) = (
            (reach / ax).ceil() as usize + 1,
            (reach / ay).ceil() as usize + 1,
        );
        self.full.clear();
        self.full.resize(mw * mh, 0.0);
        let far = 1e9f32;
        for (d, &matted) in regions.detections.list.iter().zip(&regions.matted) {
            let cell =
                |v: f32, n: usize, i: f64| ((f64::from(v) * n as f64 / i).round() as usize).min(n);
            let bx = [
                cell(d.bbox[0], mw, iw),
                cell(d.bbox[1], mh, ih),
                cell(d.bbox[2], mw, iw),
                cell(d.bbox[3], mh, ih),
            ];
            let (x0, y0) = (bx[0].saturating_sub(px), bx[1].saturating_sub(py));
            let (x1, y1) = ((bx[2] + px).min(mw), (bx[3] + py).min(mh));
            if x1 <= x0 || y1 <= y0 {
                continue;
            }
            let (w, h) = (x1 - x0, y1 - y0);
            regions
                .detections
                .protos
                .paint(d, (mw, mh), &mut self.full, &mut self.scratch);
            let mut pw = Vec::with_capacity(w * h);
            for y in y0..y1 {
                let row = &mut self.full[y * mw + x0..y * mw + x1];
                pw.extend_from_slice(row);
                row.fill(0.0);
            }
            let mut outside: Vec<f32> = pw
                .iter()
                .map(|&v| if v > 0.5 { 0.0 } else { far })
                .collect();
            chamfer(&mut outside, w, h, ax, ay);
            let mut inside: Vec<f32> = pw
                .iter()
                .map(|&v| if v > 0.5 { far } else { 0.0 })
                .collect();
            // A window cut by the frame's border: the border is no region
            // edge (a body cut by it is filled up to it).
            chamfer(&mut inside, w, h, ax, ay);
            self.tracked.push(Tracked {
                matted,
                x0,
                y0,
                w,
                h,
                p: pw,
                outside,
                inside,
                bx,
                reference: None,
                shift: (0.0, 0.0),
            });
        }
        true
    }

    /// Moves each matted region with `mask` (mean shift of its box onto
    /// the matte), from where it was; on new regions, takes the references.
    /// Regions found on this very frame (`late` false) take the matte's
    /// centroid in their box. Regions that arrive late (found `age` frames
    /// ago, by the detector's own thread) take their own mask's centroid:
    /// where the person was on the frame they were found in; the matte of
    /// this frame has moved on, and the box follows it at once.
    fn track(&mut self, mask: &[f32], grid: (usize, usize), fresh: bool, late: bool) {
        for t in self.tracked.iter_mut().filter(|t| t.matted) {
            if fresh {
                let (cx, cy, m) = if late {
                    let b = t.bx;
                    let own: Vec<f32> = (b[1]..b[3])
                        .flat_map(|y| (b[0]..b[2]).map(move |x| (x, y)))
                        .map(|(x, y)| t.p[(y - t.y0) * t.w + x - t.x0])
                        .collect();
                    let (cx, cy, m) = centroid(
                        &own,
                        (b[2] - b[0], b[3] - b[1]),
                        [0, 0, b[2] - b[0], b[3] - b[1]],
                        (0, 0),
                    );
                    (cx + b[0] as f32, cy + b[1] as f32, m)
                } else {
                    centroid(mask, grid, t.bx, (0, 0))
                };
                t.reference = (m >= TRACK_MIN_MASS).then_some((cx, cy));
                if !late {
                    continue;
                }
            }
            let Some((rx, ry)) = t.reference else {
                continue;
            };
            let limit = ((t.bx[2] - t.bx[0]).max(t.bx[3] - t.bx[1])) as f32;
            for _ in 0..4 {
                let s = (t.shift.0.round() as i64, t.shift.1.round() as i64);
                let (cx, cy, m) = centroid(mask, grid, t.bx, s);
                if m < TRACK_MIN_MASS {
                    break;
                }
                // The content's centroid moved this far from the reference;
                // the box follows, until it sits on the same content.
                let next = (
                    (cx - rx).clamp(-limit, limit),
                    (cy - ry).clamp(-limit, limit),
                );
                let moved = (next.0 - t.shift.0).abs().max((next.1 - t.shift.1).abs());
                t.shift = next;
                if moved < 0.5 {
                    break;
                }
            }
        }
    }

    /// Gates `mask` (`mw` x `mh`, 0..1, covering the whole frame) with
    /// `regions` found `age` frames ago (see the module). The regions move
    /// with the masks of successive calls until new regions come.
    pub fn apply(
        &mut self,
        mask: &mut [f32],
        (mw, mh): (u32, u32),
        regions: &Regions,
        age: u32,
        p: &GateParams,
    ) {
        let (w, h) = (mw as usize, mh as usize);
        let n = w * h;
        if n == 0 || mask.len() < n {
            return;
        }
        let fresh = self.render(regions, (w, h), p);
        self.track(&mask[..n], (w, h), fresh, age > 0);
        let grown = age.min(p.max_age) as f32 * p.grow;
        let (margin, inset) = (p.margin + grown, p.inset + grown);
        let feather = p.feather.max(1e-6);
        for v in [&mut self.gate, &mut self.fill, &mut self.own] {
            v.clear();
            v.resize(n, 0.0);
        }
        let mut any_own = false;
        for t in &self.tracked {
            any_own |= !t.matted;
            // Moved by a fraction of a cell too: the maps are sampled
            // bilinearly, so a region glides instead of jumping cell by cell.
            let (sx, sy) = if t.matted { t.shift } else { (0.0, 0.0) };
            let (fx, fy) = (sx - sx.floor(), sy - sy.floor());
            let (ix, iy) = (sx.floor() as i64, sy.floor() as i64);
            let at = |m: &[f32], wx: i64, wy: i64| {
                let cx = wx.clamp(0, t.w as i64 - 1) as usize;
                let cy = wy.clamp(0, t.h as i64 - 1) as usize;
                m[cy * t.w + cx]
            };
            let sample = |m: &[f32], wx: i64, wy: i64| {
                let top = at(m, wx - 1, wy - 1) * fx + at(m, wx, wy - 1) * (1.0 - fx);
                let bottom = at(m, wx - 1, wy) * fx + at(m, wx, wy) * (1.0 - fx);
                top * fy + bottom * (1.0 - fy)
            };
            let xs = (t.x0 as i64 + ix).max(0)..(t.x0 as i64 + ix + t.w as i64 + 1).min(w as i64);
            let ys = (t.y0 as i64 + iy).max(0)..(t.y0 as i64 + iy + t.h as i64 + 1).min(h as i64);
            for y in ys {
                let wy = y - t.y0 as i64 - iy;
                for x in xs.clone() {
                    let wx = x - t.x0 as i64 - ix;
                    let i = y as usize * w + x as usize;
                    if t.matted {
                        let outside = sample(&t.outside, wx, wy);
                        let inside = sample(&t.inside, wx, wy);
                        let g = (1.0 - (outside - margin) / feather).clamp(0.0, 1.0);
                        // The region's interior is the person's: opaque.
                        let f = ((inside - inset) / feather).clamp(0.0, 1.0);
                        self.gate[i] = self.gate[i].max(g);
                        self.fill[i] = self.fill[i].max(f);
                    } else {
                        self.own[i] = self.own[i].max(sample(&t.p, wx, wy));
                    }
                }
            }
        }
        for (i, m) in mask[..n].iter_mut().enumerate() {
            let mut v = (*m * self.gate[i]).max(self.fill[i]);
            if any_own {
                v = v.max(self.own[i]);
            }
            *m = v;
        }
    }
}
