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
//! walking) is taken as moved as a whole: no fill, and the gate reaches as
//! far around it (its texture moved in some cells and not in others, and
//! a walking body's uniform parts change nowhere). Where nothing moved the gate is
//! what it was on the regions' own frame, so a still picture gets the same
//! cut frame after frame; and there, gate and fill change by at most 1/30 a
//! frame, so new regions of an unchanged scene (the detector's jitter, a
//! person it missed once) blend in instead of showing as a step when they
//! arrive. Every decision is taken on whole pixel values and the detector's
//! regions: the same frames give the same gate on any CPU, whatever tiny
//! differences the matte's floats have.
//!
//! Distances are fractions of the frame's size (`sqrt(width x height)`),
//! measured on the mask's grid with the frame's pixel aspect, so the same
//! settings work for every model's mask size.

use super::motion::moved_after;
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
/// region then takes the matte alone (a fill in the cells that did not
/// change and none in those that did striped a walking body; a gate that
/// reached only into changed cells cut its uniform parts: moving-clip IoU
/// 0.956 against 0.971).
const REGION_MOVED: f32 = 0.2;

/// Where the picture did not move, gate and fill go from one value to the
/// next over at most this many frames (a second at 30 frames a second).
pub const BLEND_FRAMES: u32 = 30;
/// The most the gate or the fill of a cell whose picture did not move
/// changes in one frame.
const BLEND_STEP: f32 = 1.0 / BLEND_FRAMES as f32;

/// One matted region on the mask's grid: its interior, and its distance to
/// the cells outside it over a window (its box and a cell around it).
#[derive(Debug, Clone)]
struct Rendered {
    /// The window: first column and row, width and height, in cells.
    x0: usize,
    y0: usize,
    w: usize,
    h: usize,
    /// Distance to the cells outside it (0 outside), over the window.
    inside: Vec<f32>,
    /// The grid cells inside it.
    interior: Vec<usize>,
}

/// The gate's state: the regions rendered on the mask's grid (kept until
/// new regions or another grid come), the maps made of them, and scratch.
#[derive(Debug, Default)]
pub struct Gate {
    regions: Vec<Rendered>,
    /// Per region: whether it moved as a whole, as the maps below were made.
    walked: Vec<bool>,
    /// Per cell: distance to the nearest region still in place, to the
    /// nearest region that moved, and (0 outside) to the nearest cell
    /// outside the regions still in place; full grid.
    still_outside: Vec<f32>,
    walked_outside: Vec<f32>,
    still_inside: Vec<f32>,
    /// A cell's width and height as fractions of the frame's size.
    step: (f32, f32),
    /// Per cell: the highest mask probability of a region whose class the
    /// matting model cannot segment (its own alpha); empty when none.
    own: Vec<f32>,
    /// Per cell, the last frame the picture moved on there or on a
    /// neighbour (scratch).
    near_last: Vec<u64>,
    /// `last_moved` when no motion map is known, and `near_last` half made
    /// (scratch).
    unknown: Vec<u64>,
    across: Vec<u64>,
    /// The previous frame's gate and fill (empty after a reset).
    last: Vec<(f32, f32)>,
    /// See [`Gate::outside_motion`].
    outside_motion: f32,
    painted: Vec<f32>,
    scratch: MaskScratch,
    rendered: Option<(u64, u32, u32)>,
}

const FAR: f32 = 1e9;

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
    fn render(&mut self, regions: &Regions, (mw, mh): (usize, usize)) {
        let key = (regions.id, mw as u32, mh as u32);
        if self.rendered == Some(key) {
            return;
        }
        self.rendered = Some(key);
        self.regions.clear();
        self.walked.clear();
        self.own.clear();
        let n = mw * mh;
        let (iw, ih) = regions.image();
        let (iw, ih) = (f64::from(iw.max(1)), f64::from(ih.max(1)));
        let size = (iw * ih).sqrt();
        let (ax, ay) = (
            (iw / mw as f64 / size) as f32,
            (ih / mh as f64 / size) as f32,
        );
        self.step = (ax, ay);
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
            let (x0, y0) = (
                cell(d.bbox[0], mw, iw).saturating_sub(1),
                cell(d.bbox[1], mh, ih).saturating_sub(1),
            );
            let (x1, y1) = (
                (cell(d.bbox[2], mw, iw) + 1).min(mw),
                (cell(d.bbox[3], mh, ih) + 1).min(mh),
            );
            if x1 <= x0 || y1 <= y0 {
                continue;
            }
            let (w, h) = (x1 - x0, y1 - y0);
            let mut inside = Vec::with_capacity(w * h);
            let mut interior = Vec::new();
            for y in y0..y1 {
                for x in x0..x1 {
                    let on = self.painted[y * mw + x] > 0.5;
                    inside.push(if on { FAR } else { 0.0 });
                    if on {
                        interior.push(y * mw + x);
                    }
                }
            }
            // A window cut by the frame's border: the border is no region
            // edge (a body cut by it is filled up to it).
            chamfer(&mut inside, w, h, ax, ay);
            self.regions.push(Rendered {
                x0,
                y0,
                w,
                h,
                inside,
                interior,
            });
        }
        // Made for the regions' first frame: none has moved yet.
        self.walked = vec![false; self.regions.len()];
        self.maps((mw, mh));
    }

    /// The distance maps for the regions as `walked` says they are.
    fn maps(&mut self, (mw, mh): (usize, usize)) {
        let n = mw * mh;
        let (ax, ay) = self.step;
        for (map, walked) in [
            (&mut self.still_outside, false),
            (&mut self.walked_outside, true),
        ] {
            map.clear();
            map.resize(n, FAR);
            let mut any = false;
            for (r, _) in self
                .regions
                .iter()
                .zip(&self.walked)
                .filter(|&(_, &w)| w == walked)
            {
                any = true;
                for &i in &r.interior {
                    map[i] = 0.0;
                }
            }
            if any {
                chamfer(map, mw, mh, ax, ay);
            }
        }
        self.still_inside.clear();
        self.still_inside.resize(n, 0.0);
        for (r, _) in self.regions.iter().zip(&self.walked).filter(|(_, w)| !**w) {
            for y in 0..r.h {
                let row = &mut self.still_inside[(r.y0 + y) * mw + r.x0..][..r.w];
                for (o, &v) in row.iter_mut().zip(&r.inside[y * r.w..][..r.w]) {
                    *o = o.max(v);
                }
            }
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
        self.render(regions, (w, h));
        let age = now.saturating_sub(found);
        let reach = (age.min(1 << 20) as f32 * p.grow).min(p.max_reach);
        // Per cell, the last frame the picture moved on there, and on any
        // of its 8 neighbours (texture inside a moving body does not
        // change in every cell). Unknown (no frame of this grid seen):
        // every cell moved once a frame has passed.
        let mut unknown = std::mem::take(&mut self.unknown);
        let (last_moved, since) = match motion.last_moved((w, h)) {
            Some((m, since)) => (m, since),
            None => {
                unknown.clear();
                unknown.resize(n, if age > 0 { u64::MAX } else { 0 });
                (&unknown[..], 0)
            }
        };
        let before = found < since;
        let moved_since = |m: u64| moved_after(m, since, found);
        // A region moves as a whole once a share of its interior moved
        // (it only ever grows until the next regions come).
        let walked: Vec<bool> = self
            .regions
            .iter()
            .zip(&self.walked)
            .map(|(r, &was)| {
                was || r
                    .interior
                    .iter()
                    .filter(|&&i| moved_since(last_moved[i]))
                    .count() as f32
                    > REGION_MOVED * r.interior.len() as f32
            })
            .collect();
        let now_moved = |i: usize| last_moved[i] == now && now > since;
        let mut near = std::mem::take(&mut self.near_last);
        widen_max(last_moved, &mut near, &mut self.across, w, h);
        let near_last = &near[..];
        if walked != self.walked {
            self.walked = walked;
            self.maps((w, h));
        }
        // Moved since the regions' frame (near a cell), or, for regions of
        // this very frame, on it: where the blend does not hold back.
        let dynamic_after = found.min(now.saturating_sub(1));
        let mut outside = 0usize;
        let feather = p.feather.max(1e-6);
        let blend = self.last.len() == n;
        self.last.resize(n, (0.0, 0.0));
        let own = (!self.own.is_empty()).then(|| &self.own[..n]);
        // Beyond these distances from every region no gate reaches: a
        // region still in place, where the picture did not move or did;
        // one that moved.
        let (far_still, far_moved) = (p.margin + feather, p.margin + reach + feather);
        let inv = 1.0 / feather;
        let gate = |outside: f32, margin: f32| (1.0 - (outside - margin) * inv).clamp(0.0, 1.0);
        for (i, m) in mask[..n].iter_mut().enumerate() {
            let own_here = own.map_or(0.0, |o| o[i]);
            let last = &mut self.last[i];
            let moved = age > 0 && moved_after(near_last[i], since, found);
            if self.walked_outside[i] >= far_moved
                && self.still_outside[i] >= if moved { far_moved } else { far_still }
                && *last == (0.0, 0.0)
                && own_here <= 0.0
            {
                // Far from everything (most of a frame): cleared.
                *m = 0.0;
                outside += usize::from(now_moved(i));
                continue;
            }
            let still = gate(
                self.still_outside[i],
                if moved { p.margin + reach } else { p.margin },
            );
            let walked = gate(self.walked_outside[i], p.margin + reach);
            let mut g = still.max(walked);
            if now_moved(i) && g <= 0.0 && own_here <= 0.0 {
                outside += 1;
            }
            // The interior of a region still in place is the person's:
            // opaque, where the picture has not changed since it was found.
            let mut f = if moved {
                0.0
            } else {
                ((self.still_inside[i] - p.inset) * inv).clamp(0.0, 1.0)
            };
            // Where the picture has not moved, gate and fill change by at
            // most BLEND_STEP a frame: new regions of an unchanged scene
            // (the detector's own jitter) blend in over a few frames
            // instead of showing as a step at the frame they arrive.
            let dynamic = before || near_last[i] > dynamic_after;
            if blend && !dynamic && walked <= 0.0 {
                g = step_towards(last.0, g);
                f = step_towards(last.1, f);
            }
            *last = (g, f);
            *m = (*m * g).max(f).max(own_here);
        }
        self.near_last = near;
        self.unknown = unknown;
        self.outside_motion = outside as f32 / n as f32;
    }

    /// The share of the grid's cells that moved on the last frame gated,
    /// far from every region (where the gate cleared the matte): something
    /// the regions do not know of, such as a person coming in.
    pub fn outside_motion(&self) -> f32 {
        self.outside_motion
    }
}

/// `to`, or `BLEND_STEP` from `from` towards it when farther (exactly `to`
/// once there, whatever the path: two runs that started apart end alike).
fn step_towards(from: f32, to: f32) -> f32 {
    if (to - from).abs() <= BLEND_STEP {
        to
    } else if to > from {
        from + BLEND_STEP
    } else {
        from - BLEND_STEP
    }
}

/// `out`: each cell of `last` (`w` x `h`) the highest of itself and its 8
/// neighbours.
fn widen_max(last: &[u64], out: &mut Vec<u64>, across: &mut Vec<u64>, w: usize, h: usize) {
    across.clear();
    across.resize(w * h, 0);
    out.clear();
    out.resize(w * h, 0);
    // Across, then down.
    for (row, o) in last.chunks_exact(w).zip(across.chunks_exact_mut(w)) {
        for x in 0..w {
            let a = row[x.saturating_sub(1)];
            let b = row[(x + 1).min(w - 1)];
            o[x] = row[x].max(a).max(b);
        }
    }
    for y in 0..h {
        let (up, down) = (y.saturating_sub(1), (y + 1).min(h - 1));
        for x in 0..w {
            let i = y * w + x;
            out[i] = across[i].max(across[up * w + x]).max(across[down * w + x]);
        }
    }
}
