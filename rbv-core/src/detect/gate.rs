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
//! All distances are fractions of the frame's size (`sqrt(width x
//! height)`), measured on the mask's grid with the frame's pixel aspect, so
//! the same settings work for every model's mask size. Regions computed
//! `age` frames ago (the detector runs on every Nth frame, or on its own
//! thread) are widened: margin and inset both grow by `grow` per frame, so
//! a moving person stays inside the gate and the stale interior never
//! paints where they were.

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
        GateParams {
            margin: 0.01,
            feather: 0.01,
            inset: 0.01,
            grow: 0.004,
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
    /// Tells regions apart, so a gate re-renders only for new ones.
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

/// The gate's state: the regions rendered on the mask's grid and their
/// distance maps, kept until the regions or the grid change.
#[derive(Debug, Default)]
pub struct Gate {
    /// Union of the matted detections' mask probabilities.
    keep: Vec<f32>,
    /// Union of the others' (their own alpha).
    own: Vec<f32>,
    any_own: bool,
    /// Distance to the nearest region cell (0 inside).
    outside: Vec<f32>,
    /// Distance to the nearest cell outside the regions (0 outside).
    inside: Vec<f32>,
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

impl Gate {
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Renders `regions` on a `mw` x `mh` grid, unless already done.
    fn render(&mut self, regions: &Regions, (mw, mh): (usize, usize)) {
        let key = (regions.id, mw as u32, mh as u32);
        if self.rendered == Some(key) {
            return;
        }
        let n = mw * mh;
        for v in [&mut self.keep, &mut self.own] {
            v.clear();
            v.resize(n, 0.0);
        }
        self.any_own = false;
        let protos = &regions.detections.protos;
        for (d, &matted) in regions.detections.list.iter().zip(&regions.matted) {
            let target = if matted {
                &mut self.keep
            } else {
                self.any_own = true;
                &mut self.own
            };
            protos.paint(d, (mw, mh), target, &mut self.scratch);
        }
        // Distances in fractions of the frame's size.
        let (iw, ih) = regions.image();
        let size = (f64::from(iw.max(1)) * f64::from(ih.max(1))).sqrt();
        let ax = (f64::from(iw.max(1)) / mw as f64 / size) as f32;
        let ay = (f64::from(ih.max(1)) / mh as f64 / size) as f32;
        let far = 1e9f32;
        self.outside.clear();
        self.outside
            .extend(self.keep.iter().map(|&p| if p > 0.5 { 0.0 } else { far }));
        chamfer(&mut self.outside, mw, mh, ax, ay);
        self.inside.clear();
        self.inside
            .extend(self.keep.iter().map(|&p| if p > 0.5 { far } else { 0.0 }));
        // The frame's border is no region edge: a body cut by it is filled
        // up to it.
        chamfer(&mut self.inside, mw, mh, ax, ay);
        self.rendered = Some(key);
    }

    /// Gates `mask` (`mw` x `mh`, 0..1, covering the whole frame) with
    /// `regions` found `age` frames ago (see the module).
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
        self.render(regions, (w, h));
        let grown = age.min(p.max_age) as f32 * p.grow;
        let (margin, inset) = (p.margin + grown, p.inset + grown);
        let feather = p.feather.max(1e-6);
        for (i, m) in mask[..n].iter_mut().enumerate() {
            let gate = (1.0 - (self.outside[i] - margin) / feather).clamp(0.0, 1.0);
            let fill = self.keep[i] * ((self.inside[i] - inset) / feather).clamp(0.0, 1.0);
            let mut v = (*m * gate).max(fill);
            if self.any_own {
                v = v.max(self.own[i]);
            }
            *m = v;
        }
    }
}
