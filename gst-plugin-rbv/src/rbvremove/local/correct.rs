// SPDX-License-Identifier: MPL-2.0
//! `mode=async` with a heavy model (`light`, `original`, `pro`): the newest
//! heavy mask is seconds old (`pro`: 1.5-4 s on 2 cores), so on its own the
//! cut stays where the person was. Each frame, the `human` model (about
//! 2 ms) also runs on the frame itself, on the streaming thread; where its
//! fresh mask disagrees with its own mask of the frame the heavy mask was
//! made from, something moved, and there the fresh `human` mask is taken;
//! everywhere else the heavy mask stays, with its finer edges and the
//! objects `human` does not know.
//!
//! With `h_then`, `h_now` the human masks of the heavy frame and of this
//! frame, per pixel: `w = clamp((|h_now - h_then| - LOW) / (HIGH - LOW),
//! 0, 1)` (widened by one human-mask pixel so an edge that moved is covered
//! on both sides), and `out = heavy + (h_now - heavy) * w`, computed at the
//! heavy mask's resolution (both human masks resampled bilinearly). Before
//! the first heavy mask the fresh human mask is used alone.
//!
//! Limits: motion of things `human` does not see (objects without a person)
//! is not followed; and the heavy mask's detail is lost where the person
//! moved, until the next heavy mask (`benches/quality.rs` measures it).

use rbv_core::model::{self, RunnerOptions, Segmenter};

use super::frames::ModelInput;

/// Differences below this are the human model's own noise.
const LOW: f32 = 0.08;
/// Differences above this are motion.
const HIGH: f32 = 0.3;

/// The per-frame correction of a stale heavy mask.
pub struct Corrector {
    /// The square and the landscape selfie model.
    segs: [Segmenter; 2],
    active: usize,
    input: Option<ModelInput>,
    /// This frame's human mask and its size.
    now: Vec<f32>,
    size: (u32, u32),
    /// The human masks of the last two frames handed to the heavy model:
    /// the one whose mask is in use and the one in the model (a frame is
    /// handed only when the model is free, so the newest heavy mask is
    /// always of one of them).
    then: Vec<(u64, Vec<f32>)>,
    /// Scratch: the weight and the fresh mask at the heavy resolution.
    weight: Vec<f32>,
    fresh: Vec<f32>,
    across: Vec<f32>,
}

impl Corrector {
    /// Loads the selfie models on the same runtime as the heavy one.
    pub fn new(heavy: &Segmenter) -> Result<Corrector, String> {
        let options = RunnerOptions {
            ort_library: Some(heavy.ort_library().to_path_buf()),
            threads: 1,
            provider: heavy.provider(),
            strict: false,
        };
        let load = |spec| {
            Segmenter::new(spec, None, &options).map_err(|e| {
                format!("mode=async corrects the heavy model's mask with the human model: {e}")
            })
        };
        Ok(Corrector {
            segs: [load(model::HUMAN_SQUARE)?, load(model::HUMAN_LANDSCAPE)?],
            active: 0,
            input: None,
            now: Vec::new(),
            size: (0, 0),
            then: Vec::new(),
            weight: Vec::new(),
            fresh: Vec::new(),
            across: Vec::new(),
        })
    }

    /// New caps: the landscape model for wide frames (as `human-variant=auto`).
    pub fn set_caps(&mut self, in_info: &gst_video::VideoInfo, wide: bool) -> Result<(), String> {
        self.active = usize::from(wide);
        self.input = Some(ModelInput::new(
            self.segs[self.active].input_size(),
            in_info,
        )?);
        self.reset();
        Ok(())
    }

    /// Forgets what belongs to another place in the stream (flush, caps).
    pub fn reset(&mut self) {
        self.then.clear();
    }

    /// Runs the human model on this frame.
    pub fn observe(
        &mut self,
        inframe: &gst_video::VideoFrameRef<&gst::BufferRef>,
    ) -> Result<(), String> {
        let input = self.input.as_mut().ok_or("not negotiated")?;
        let seg = &mut self.segs[self.active];
        let (mask, size) = input.with(inframe, |rgb, stride| {
            seg.run(rgb, stride).map(|(m, w, h)| (m.to_vec(), (w, h)))
        })??;
        self.now = mask;
        self.size = size;
        Ok(())
    }

    /// This frame is handed to the heavy model: keep its human mask.
    pub fn handed(&mut self, frame: u64) {
        if self.then.len() >= 2 {
            self.then.remove(0);
        }
        self.then.push((frame, self.now.clone()));
    }

    /// Before the first heavy mask: this frame's human mask and its size.
    pub fn alone(&self, mask: &mut Vec<f32>) -> (u32, u32) {
        mask.clear();
        mask.extend_from_slice(&self.now);
        self.size
    }

    /// Corrects `mask` (`size`, made from frame `frame`) in place where the
    /// picture moved since. Returns whether anything moved.
    pub fn correct(&mut self, mask: &mut [f32], size: (u32, u32), frame: u64) -> bool {
        let Some((_, then)) = self.then.iter().find(|(f, _)| *f == frame) else {
            return false;
        };
        let (hw, hh) = (self.size.0 as usize, self.size.1 as usize);
        let n = hw * hh;
        if then.len() != n || self.now.len() != n || mask.len() < (size.0 * size.1) as usize {
            return false;
        }
        // The weight at the human resolution, widened by one pixel.
        let raw: Vec<f32> = then
            .iter()
            .zip(&self.now)
            .map(|(a, b)| (((b - a).abs() - LOW) / (HIGH - LOW)).clamp(0.0, 1.0))
            .collect();
        if raw.iter().all(|&w| w == 0.0) {
            return false;
        }
        let mut wide = vec![0.0f32; n];
        for y in 0..hh {
            for x in 0..hw {
                let mut m = 0.0f32;
                for yy in y.saturating_sub(1)..(y + 2).min(hh) {
                    for xx in x.saturating_sub(1)..(x + 2).min(hw) {
                        m = m.max(raw[yy * hw + xx]);
                    }
                }
                wide[y * hw + x] = m;
            }
        }
        resample(&wide, self.size, size, &mut self.weight, &mut self.across);
        resample(
            &self.now,
            self.size,
            size,
            &mut self.fresh,
            &mut self.across,
        );
        for ((m, &w), &f) in mask.iter_mut().zip(&self.weight).zip(&self.fresh) {
            *m += (f - *m) * w;
        }
        true
    }
}

/// Bilinear resample of `src` (`sw`x`sh`) to `dw`x`dh` into `out`, centre
/// convention, edges clamped (the same positions as the matte's upscale).
fn resample(
    src: &[f32],
    (sw, sh): (u32, u32),
    (dw, dh): (u32, u32),
    out: &mut Vec<f32>,
    across: &mut Vec<f32>,
) {
    let pos = |s: u32, d: u32| -> Vec<(usize, usize, f32)> {
        let scale = f64::from(s) / f64::from(d);
        (0..d)
            .map(|i| {
                let p = ((f64::from(i) + 0.5) * scale - 0.5).clamp(0.0, f64::from(s - 1));
                let i0 = p.floor() as usize;
                let i1 = (i0 + 1).min(s as usize - 1);
                (i0, i1, (p - i0 as f64) as f32)
            })
            .collect()
    };
    let (sw_, dw_) = (sw as usize, dw as usize);
    let xs = pos(sw, dw);
    across.clear();
    for row in src.chunks_exact(sw_).take(sh as usize) {
        across.extend(xs.iter().map(|&(a, b, f)| row[a] + (row[b] - row[a]) * f));
    }
    out.clear();
    for (a, b, f) in pos(sh, dh) {
        let (r0, r1) = (&across[a * dw_..][..dw_], &across[b * dw_..][..dw_]);
        out.extend(r0.iter().zip(r1).map(|(&p, &q)| p + (q - p) * f));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moved_regions_take_the_fresh_mask_and_the_rest_stays() {
        gst::init().unwrap();
        let options = RunnerOptions {
            threads: 1,
            ..RunnerOptions::default()
        };
        let heavy = Segmenter::new(model::LIGHT, None, &options).unwrap();
        let mut c = Corrector::new(&heavy).unwrap();
        // Human masks 8x4: a person at columns 1-2 then, 5-6 now.
        let person = |x0: usize| -> Vec<f32> {
            (0..32)
                .map(|i| {
                    if (x0..x0 + 2).contains(&(i % 8)) {
                        1.0
                    } else {
                        0.0
                    }
                })
                .collect()
        };
        c.size = (8, 4);
        c.now = person(1);
        c.handed(7);
        c.now = person(5);
        // The heavy mask (16x8) saw the person at columns 2-5 and an object
        // the human model does not know at columns 12-13... of row 0 only.
        let mut heavy_mask: Vec<f32> = (0..128)
            .map(|i| if (2..6).contains(&(i % 16)) { 1.0 } else { 0.0 })
            .collect();
        heavy_mask[12] = 0.7;
        // Another heavy frame: nothing is corrected.
        assert!(!c.correct(&mut heavy_mask.clone(), (16, 8), 6));
        let mut m = heavy_mask.clone();
        assert!(c.correct(&mut m, (16, 8), 7));
        let at = |x: usize, y: usize| m[y * 16 + x];
        // Where the person was: cleared; where they are: filled.
        assert!(at(3, 4) < 0.05, "old place {}", at(3, 4));
        assert!(at(11, 4) > 0.95, "new place {}", at(11, 4));
        // Far from the motion the heavy mask is kept as it was.
        assert_eq!(at(15, 7), 0.0);
        // The frame in the model now is another: frame 7's mask still
        // gets corrected.
        c.handed(8);
        let mut again = heavy_mask.clone();
        assert!(c.correct(&mut again, (16, 8), 7));
        assert_eq!(again, m);
        // No motion at all: nothing to correct.
        assert!(!c.correct(&mut heavy_mask, (16, 8), 8));
        // Before any heavy mask: the human mask alone.
        let mut alone = Vec::new();
        assert_eq!(c.alone(&mut alone), (8, 4));
        assert_eq!(alone, person(5));
    }

    #[test]
    fn resample_keeps_flat_values_and_interpolates_edges() {
        let (mut out, mut across) = (Vec::new(), Vec::new());
        resample(&[0.25; 6], (3, 2), (7, 5), &mut out, &mut across);
        assert_eq!(out.len(), 35);
        assert!(out.iter().all(|&v| (v - 0.25).abs() < 1e-6));
        resample(&[0.0, 1.0], (2, 1), (4, 1), &mut out, &mut across);
        assert_eq!(out, vec![0.0, 0.25, 0.75, 1.0]);
    }
}
