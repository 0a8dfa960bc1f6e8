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
//! Regions found on an earlier frame (the detector runs every Nth frame, on
//! its own thread) stay where they were found, and the picture decides what
//! changes ([`Motion`]): where it has **moved** since their frame (an arm
//! raised, a turn) the gate reaches `grow` farther each frame, up to
//! `max_reach`, and nothing is filled: the matting model alone says what is
//! there now. A region a fifth of whose interior has moved (a person
//! walking) is taken as moved as a whole. Where nothing moved the gate is
//! what it was on the regions' own frame, so a still picture gets the same
//! cut frame after frame; and there, gate and fill change by at most 0.1 a
//! frame, so new regions of an unchanged scene (the detector's jitter, a
//! person it missed once) blend in instead of showing as a step when they
//! arrive. Every decision is taken on whole pixel values and the detector's
//! regions: the same frames give the same gate on any CPU, whatever tiny
//! differences the matte's floats have.
//!
//! Distances are fractions of the frame's size (`sqrt(width x height)`),
//! measured on the mask's grid with the frame's pixel aspect, so the same
//! settings work for every model's mask size.

use super::{Detections, MaskScratch, Motion, NUM_CLASSES, PERSON, worn};

/// How the gate is shaped (fractions of the frame's size, see the module).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GateParams {
    pub margin: f32,
    pub feather: f32,
    pub inset: f32,
    /// How much farther the gate reaches into moved cells per frame of the
    /// regions' age.
    pub grow: f32,
    /// The farthest it reaches into them.
    pub max_reach: f32,
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
            grow: 0.04,
            max_reach: 1.0,
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

    /// What the detector found for `asked` classes (run with
    /// [`worn::widened`]): the asked ones, each matted when `matted(class)`
    /// says so, and the things worn or held by an asked person, matted as
    /// the person is (see [`worn`]).
    pub fn asked(
        mut detections: Detections,
        asked: &[bool; NUM_CLASSES],
        matted: impl Fn(usize) -> bool,
        id: u64,
    ) -> Regions {
        let attached = worn::attach(&mut detections.list, asked);
        let matted = detections
            .list
            .iter()
            .zip(attached)
            .map(|(d, worn)| {
                if worn {
                    matted(PERSON)
                } else {
                    matted(d.class)
                }
            })
            .collect();
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

/// A matted region's interior counts as moved (the person walked, turned)
/// once this share of its cells has moved since it was found: the whole
/// region then takes the matte alone, as a region reaches into moved cells.
const REGION_MOVED: f32 = 0.2;

/// The most the gate or the fill of a cell whose picture did not move
/// changes in one frame.
const BLEND_STEP: f32 = 0.1;

/// One matted region on the mask's grid: its distance maps over a window
/// (its box, padded by the farthest the gate reaches), and its interior.
#[derive(Debug, Clone)]
struct Rendered {
    /// The window: first column and row, width and height, in cells.
    x0: usize,
    y0: usize,
    w: usize,
    h: usize,
    /// Distance to the region (0 inside it).
    outside: Vec<f32>,
    /// Distance to the cells outside it (0 outside).
    inside: Vec<f32>,
    /// The grid cells inside it.
    interior: Vec<usize>,
}

/// The gate's state: the regions rendered on the mask's grid (kept until
/// new regions or another grid come), and its scratch maps.
#[derive(Debug, Default)]
pub struct Gate {
    regions: Vec<Rendered>,
    /// Per cell: the highest mask probability of a region whose class the
    /// matting model cannot segment (its own alpha); empty when none.
    own: Vec<f32>,
    moved: Vec<bool>,
    /// `moved`, widened by a cell (texture inside a moving body does not
    /// change in every cell), and every cell of a region that moved as a
    /// whole.
    near_moved: Vec<bool>,
    gate: Vec<f32>,
    fill: Vec<f32>,
    /// The previous frame's gate and fill (empty after a reset).
    last: Vec<(f32, f32)>,
    painted: Vec<f32>,
    scratch: MaskScratch,
    rendered: Option<(u64, u32, u32)>,
}

impl Gate {
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Forgets the previous frame's gate (a flush, a discontinuity): the
    /// next one is taken whole.
    pub fn reset(&mut self) {
        self.last.clear();
    }

    /// Renders `regions` on a `mw` x `mh` grid, unless already done.
    fn render(&mut self, regions: &Regions, (mw, mh): (usize, usize), p: &GateParams) {
        let key = (regions.id, mw as u32, mh as u32);
        if self.rendered == Some(key) {
            return;
        }
        self.rendered = Some(key);
        self.regions.clear();
        self.own.clear();
        let n = mw * mh;
        let (iw, ih) = regions.image();
        let (iw, ih) = (f64::from(iw.max(1)), f64::from(ih.max(1)));
        let size = (iw * ih).sqrt();
        let ax = (iw / mw as f64 / size) as f32;
        let ay = (ih / mh as f64 / size) as f32;
        // The farthest the gate reaches beyond a region, in cells.
        let reach = p.margin.max(p.inset) + p.max_reach + p.feather;
        let (px, py) = (
            (reach / ax).ceil() as usize + 1,
            (reach / ay).ceil() as usize + 1,
        );
        let far = 1e9f32;
        for (d, &matted) in regions.detections.list.iter().zip(&regions.matted) {
            self.painted.clear();
            self.painted.resize(n, 0.0);
            regions
                .detections
                .protos
                .paint(d, (mw, mh), &mut self.painted, &mut self.scratch);
            if !matted {
                if self.own.is_empty() {
                    self.own.resize(n, 0.0);
                }
                for (o, &v) in self.own.iter_mut().zip(&self.painted) {
                    *o = o.max(v);
                }
                continue;
            }
            let cell =
                |v: f32, n: usize, i: f64| ((f64::from(v) * n as f64 / i).round() as usize).min(n);
            let (bx0, by0) = (cell(d.bbox[0], mw, iw), cell(d.bbox[1], mh, ih));
            let (bx1, by1) = (cell(d.bbox[2], mw, iw), cell(d.bbox[3], mh, ih));
            let (x0, y0) = (bx0.saturating_sub(px), by0.saturating_sub(py));
            let (x1, y1) = ((bx1 + px).min(mw), (by1 + py).min(mh));
            if x1 <= x0 || y1 <= y0 {
                continue;
            }
            let (w, h) = (x1 - x0, y1 - y0);
            let mut outside = Vec::with_capacity(w * h);
            let mut inside = Vec::with_capacity(w * h);
            let mut interior = Vec::new();
            for y in y0..y1 {
                for x in x0..x1 {
                    let on = self.painted[y * mw + x] > 0.5;
                    outside.push(if on { 0.0 } else { far });
                    inside.push(if on { far } else { 0.0 });
                    if on {
                        interior.push(y * mw + x);
                    }
                }
            }
            chamfer(&mut outside, w, h, ax, ay);
            // A window cut by the frame's border: the border is no region
            // edge (a body cut by it is filled up to it).
            chamfer(&mut inside, w, h, ax, ay);
            self.regions.push(Rendered {
                x0,
                y0,
                w,
                h,
                outside,
                inside,
                interior,
            });
        }
    }

    /// Gates `mask` (`mw` x `mh`, 0..1, covering the whole frame, frame
    /// `now`) with `regions` found on frame `found`, given where the
    /// picture moved since (`motion`, on the same grid; without it every
    /// cell counts as moved once a frame has passed). See the module.
    #[allow(clippy::too_many_arguments)]
    pub fn apply(
        &mut self,
        mask: &mut [f32],
        (mw, mh): (u32, u32),
        regions: &Regions,
        found: u64,
        now: u64,
        motion: &Motion,
        p: &GateParams,
    ) {
        let (w, h) = (mw as usize, mh as usize);
        let n = w * h;
        if n == 0 || mask.len() < n {
            return;
        }
        self.render(regions, (w, h), p);
        let age = now.saturating_sub(found);
        let reach = (age.min(1 << 20) as f32 * p.grow).min(p.max_reach);
        self.moved.clear();
        match motion.moved_since(found, (w, h)) {
            Some(moved) => self.moved.extend(moved),
            None => self.moved.resize(n, age > 0),
        }
        widen(&self.moved, &mut self.near_moved, w, h);
        let feather = p.feather.max(1e-6);
        for v in [&mut self.gate, &mut self.fill] {
            v.clear();
            v.resize(n, 0.0);
        }
        for r in &self.regions {
            let moved = r.interior.iter().filter(|&&i| self.moved[i]).count();
            let walked = moved as f32 > REGION_MOVED * r.interior.len() as f32;
            for y in 0..r.h {
                for x in 0..r.w {
                    let k = y * r.w + x;
                    let i = (r.y0 + y) * w + r.x0 + x;
                    let moved = walked || self.near_moved[i];
                    if walked {
                        self.near_moved[i] = true;
                    }
                    let margin = if moved { p.margin + reach } else { p.margin };
                    let g = (1.0 - (r.outside[k] - margin) / feather).clamp(0.0, 1.0);
                    // The region's interior is the person's: opaque, where
                    // the picture has not changed since it was found.
                    let f = if moved {
                        0.0
                    } else {
                        ((r.inside[k] - p.inset) / feather).clamp(0.0, 1.0)
                    };
                    self.gate[i] = self.gate[i].max(g);
                    self.fill[i] = self.fill[i].max(f);
                }
            }
        }
        // Where the picture has not moved since the regions' frame, gate and
        // fill change by at most BLEND_STEP a frame: new regions of an
        // unchanged scene (the detector's own jitter) blend in over a few
        // frames instead of showing as a step at the frame they arrive.
        // Where it moved, they follow it at once.
        if self.last.len() == n {
            // Also where it moved on this very frame (regions found on it).
            if found >= now
                && let Some(moved) = motion.moved_since(now.saturating_sub(1), (w, h))
            {
                self.moved.clear();
                self.moved.extend(moved);
                let near = std::mem::take(&mut self.near_moved);
                widen(&self.moved, &mut self.near_moved, w, h);
                for (a, b) in self.near_moved.iter_mut().zip(near) {
                    *a |= b;
                }
            }
            let cells = self.gate.iter_mut().zip(&mut self.fill).zip(&self.last);
            for (((g, f), last), &moved) in cells.zip(&self.near_moved) {
                if !moved {
                    *g = last.0 + (*g - last.0).clamp(-BLEND_STEP, BLEND_STEP);
                    *f = last.1 + (*f - last.1).clamp(-BLEND_STEP, BLEND_STEP);
                }
            }
        }
        self.last.clear();
        self.last
            .extend(self.gate.iter().zip(&self.fill).map(|(&g, &f)| (g, f)));
        let own = (!self.own.is_empty()).then(|| &self.own[..n]);
        for (i, m) in mask[..n].iter_mut().enumerate() {
            let mut v = (*m * self.gate[i]).max(self.fill[i]);
            if let Some(own) = own {
                v = v.max(own[i]);
            }
            *m = v;
        }
    }
}

/// `out`: `moved` (`w` x `h`) with each set cell's 8 neighbours set too.
fn widen(moved: &[bool], out: &mut Vec<bool>, w: usize, h: usize) {
    out.clear();
    out.resize(w * h, false);
    for y in 0..h {
        for x in 0..w {
            if moved[y * w + x] {
                for yy in y.saturating_sub(1)..(y + 2).min(h) {
                    out[yy * w + x.saturating_sub(1)..yy * w + (x + 2).min(w)].fill(true);
                }
            }
        }
    }
}
