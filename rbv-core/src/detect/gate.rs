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
//! changes ([`Motion`]): where it has **moved** since their frame (a person
//! walking, an arm raised, a turn, a zoom) the gate reaches `grow` farther
//! each frame, up to `max_reach`, and nothing is filled: the matting model
//! alone says what is there now. Where nothing moved the gate is what it
//! was on the regions' own frame, so a still picture gets the same cut
//! frame after frame, and a new detection of an unchanged scene changes
//! nothing but the detector's own jitter. Every decision is taken on whole
//! pixel values and the detector's regions: the same frames give the same
//! gate on any CPU, whatever tiny differences the matte's floats have.
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
            max_reach: 0.3,
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

/// The gate's state: the regions rendered on the mask's grid (kept until
/// new regions or another grid come), and its scratch maps.
#[derive(Debug, Default)]
pub struct Gate {
    /// Per cell: distance to the nearest matted region (0 inside one).
    outside: Vec<f32>,
    /// Per cell: distance to the nearest cell outside every matted region.
    inside: Vec<f32>,
    /// Per cell: the highest mask probability of a region whose class the
    /// matting model cannot segment (its own alpha); empty when none.
    own: Vec<f32>,
    moved: Vec<bool>,
    painted: Vec<f32>,
    scratch: MaskScratch,
    rendered: Option<(u64, u32, u32)>,
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
        self.rendered = Some(key);
        let n = mw * mh;
        let (iw, ih) = regions.image();
        let (iw, ih) = (f64::from(iw.max(1)), f64::from(ih.max(1)));
        let size = (iw * ih).sqrt();
        let ax = (iw / mw as f64 / size) as f32;
        let ay = (ih / mh as f64 / size) as f32;
        let mut matted = vec![0.0f32; n];
        self.own.clear();
        for (d, &is_matted) in regions.detections.list.iter().zip(&regions.matted) {
            self.painted.clear();
            self.painted.resize(n, 0.0);
            regions
                .detections
                .protos
                .paint(d, (mw, mh), &mut self.painted, &mut self.scratch);
            let into = if is_matted {
                &mut matted
            } else {
                if self.own.is_empty() {
                    self.own.resize(n, 0.0);
                }
                &mut self.own
            };
            for (o, &v) in into.iter_mut().zip(&self.painted) {
                *o = o.max(v);
            }
        }
        let far = 1e9f32;
        self.outside.clear();
        self.outside
            .extend(matted.iter().map(|&v| if v > 0.5 { 0.0 } else { far }));
        chamfer(&mut self.outside, mw, mh, ax, ay);
        // The frame's border is no region edge: a body cut by it is filled
        // up to it.
        self.inside.clear();
        self.inside
            .extend(matted.iter().map(|&v| if v > 0.5 { far } else { 0.0 }));
        chamfer(&mut self.inside, mw, mh, ax, ay);
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
        self.moved.clear();
        match motion.moved_since(found, (w, h)) {
            Some(moved) => self.moved.extend(moved),
            None => self.moved.resize(n, age > 0),
        }
        let feather = p.feather.max(1e-6);
        let own = (!self.own.is_empty()).then(|| &self.own[..n]);
        for i in 0..n {
            let moved = self.moved[i];
            let margin = if moved { p.margin + reach } else { p.margin };
            let g = (1.0 - (self.outside[i] - margin) / feather).clamp(0.0, 1.0);
            // The region's interior is the person's: opaque, where the
            // picture has not changed since it was found.
            let f = if moved {
                0.0
            } else {
                ((self.inside[i] - p.inset) / feather).clamp(0.0, 1.0)
            };
            let mut v = (mask[i] * g).max(f);
            if let Some(own) = own {
                v = v.max(own[i]);
            }
            mask[i] = v;
        }
    }
}
