// SPDX-License-Identifier: MPL-2.0
//! Where the picture moved, cell by cell, on the mask's grid: what the gate
//! needs to know about the frames between a detection and now. A cell
//! moved on a frame when one of its colour channels changed by more than a
//! threshold since the frame before (the smoother's test); the map keeps,
//! per cell, the last frame it moved on, so "moved since frame N" is one
//! comparison. Whole numbers only: the same frames give the same map on
//! any CPU.

/// A colour change (any channel, of 255) that counts as the picture moving:
/// the same as the smoother's default `smoothing-threshold`, but its own
/// (smoothing with the threshold at 255, "never moving", must not freeze
/// the detector's regions where people walk).
pub const MOTION_THRESHOLD: u8 = 40;

/// Whether a cell that last moved on frame `last` has moved after frame
/// `found`, in a run of frames that began on `since` (a `found` before it
/// counts as moved: nothing is known of that time).
pub fn moved_after(last: u64, since: u64, found: u64) -> bool {
    found < since || last > found
}

/// Per cell of a grid: the last frame the picture there moved on.
#[derive(Debug, Default)]
pub struct Motion {
    /// The previous frame, packed RGB at the grid's size.
    previous: Vec<u8>,
    /// The frame the previous picture was; `None` before the first.
    seen: Option<u64>,
    /// The first frame of this run of frames (before it nothing is known).
    since: u64,
    last_moved: Vec<u64>,
    size: (usize, usize),
}

impl Motion {
    pub fn new() -> Motion {
        Motion::default()
    }

    /// Forgets every frame seen (a flush, a discontinuity, new caps).
    pub fn reset(&mut self) {
        self.previous.clear();
        self.seen = None;
    }

    /// The grid's size.
    pub fn size(&self) -> (usize, usize) {
        self.size
    }

    /// Takes frame `frame`: packed RGB `rgb` (`w` x `h`, `stride` bytes a
    /// row). Cells whose colour changed by more than `threshold` (0..255,
    /// any channel) since the frame before are marked as moved on it. A
    /// frame of another size starts afresh.
    pub fn update(
        &mut self,
        rgb: &[u8],
        stride: usize,
        (w, h): (usize, usize),
        frame: u64,
        threshold: u8,
    ) {
        let n = w * h;
        let fits = n > 0 && stride >= w * 3 && rgb.len() >= stride * (h - 1) + w * 3;
        if !fits {
            self.reset();
            self.size = (0, 0);
            return;
        }
        if self.size != (w, h) || self.previous.len() != n * 3 || self.seen.is_none() {
            self.size = (w, h);
            self.previous.clear();
            for row in rgb.chunks(stride).take(h) {
                self.previous.extend_from_slice(&row[..w * 3]);
            }
            self.last_moved.clear();
            self.last_moved.resize(n, frame);
            self.seen = Some(frame);
            self.since = frame;
            return;
        }
        for (y, row) in rgb.chunks(stride).take(h).enumerate() {
            let before = &mut self.previous[y * w * 3..(y + 1) * w * 3];
            let moved = &mut self.last_moved[y * w..(y + 1) * w];
            for ((p, q), m) in row[..w * 3]
                .chunks_exact(3)
                .zip(before.chunks_exact_mut(3))
                .zip(moved)
            {
                if (p[0].abs_diff(q[0]) > threshold)
                    | (p[1].abs_diff(q[1]) > threshold)
                    | (p[2].abs_diff(q[2]) > threshold)
                {
                    *m = frame;
                }
                q.copy_from_slice(p);
            }
        }
        self.seen = Some(frame);
    }

    /// Per cell of a `size` grid, the last frame it moved on, and the first
    /// frame of this run of frames (nothing is known before it); `None` when
    /// no frame of that size was seen.
    pub fn last_moved(&self, size: (usize, usize)) -> Option<(&[u64], u64)> {
        (self.seen.is_some() && self.size == size).then_some((&self.last_moved[..], self.since))
    }

    /// The share of cells that moved on frame `frame` (0..1).
    pub fn moved_share(&self, frame: u64) -> f32 {
        if self.seen != Some(frame) || self.last_moved.is_empty() || frame == self.since {
            return 0.0;
        }
        let n = self.last_moved.iter().filter(|&&m| m == frame).count();
        n as f32 / self.last_moved.len() as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_remember_the_last_frame_they_moved_on() {
        let mut m = Motion::new();
        // 3x1 grid, stride 12 (padding).
        let frame = |a: u8, b: u8, c: u8| [a, a, a, b, b, b, c, c, c, 0, 0, 0];
        assert!(m.last_moved((3, 1)).is_none(), "nothing seen yet");
        m.update(&frame(10, 10, 10), 12, (3, 1), 5, 8);
        let all = |m: &Motion, n| {
            let (last, since) = m.last_moved((3, 1)).unwrap();
            last.iter()
                .map(|&l| moved_after(l, since, n))
                .collect::<Vec<_>>()
        };
        assert_eq!(all(&m, 5), [false; 3], "the first frame moved nothing");
        assert_eq!(
            all(&m, 4),
            [true; 3],
            "before the first frame: unknown, so moved"
        );
        m.update(&frame(10, 15, 30), 12, (3, 1), 6, 8);
        assert_eq!(
            all(&m, 5),
            [false, false, true],
            "5 is within the threshold"
        );
        assert_eq!(m.moved_share(6), 1.0 / 3.0);
        m.update(&frame(10, 15, 30), 12, (3, 1), 7, 8);
        assert_eq!(all(&m, 5), [false, false, true], "remembered");
        assert_eq!(all(&m, 6), [false; 3], "nothing after 6");
        assert_eq!(m.moved_share(7), 0.0);
        // Another size starts afresh; a reset forgets.
        assert!(m.last_moved((2, 1)).is_none());
        m.reset();
        assert!(m.last_moved((3, 1)).is_none());
        // Too short an input: nothing kept, no panic.
        m.update(&[1, 2], 12, (3, 1), 8, 8);
        assert!(m.last_moved((3, 1)).is_none());
    }
}
