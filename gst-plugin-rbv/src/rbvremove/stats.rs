// SPDX-License-Identifier: MPL-2.0
//! Frame statistics: per-frame times gathered into windows, for the
//! periodic `rbv-stats` message and the latency the element reports.

use std::time::{Duration, Instant};

/// Name of the periodic statistics element message.
pub const STATS_MESSAGE: &str = "rbv-stats";

/// Without messages, the latency is still brought up to date every this
/// many frames (and the window kept bounded).
const LATENCY_FRAMES: usize = 100;
/// A window never holds more frames than this.
const MAX_WINDOW: usize = 100_000;

/// Figures over the frames since the last window closed.
#[derive(Debug, Default)]
pub struct Stats {
    frames: u64,
    inference_ms: Vec<f64>,
    process_ms: Vec<f64>,
    since: Option<Instant>,
}

/// A closed window's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Frames processed since the start.
    pub frames: u64,
    /// Frames in this window.
    pub window_frames: u32,
    pub fps: f64,
    /// `None` when no inference finished in the window (async, heavy model).
    pub inference_p50_ms: Option<f64>,
    pub inference_p95_ms: Option<f64>,
    pub process_p50_ms: f64,
    pub process_p95_ms: f64,
}

/// What booking a frame gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Booked {
    /// The window goes on.
    Open,
    /// No messages are asked for; the latency estimate is new: the p95 of
    /// the frame times, in ms.
    Latency(f64),
    /// The window closed: its figures, to post.
    Closed(Window),
}

impl Stats {
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// One finished inference of `took`.
    pub fn inference(&mut self, took: Duration) {
        self.inference_ms.push(took.as_secs_f64() * 1000.0);
    }

    /// One processed frame that took `took`, at `now`; `interval_ms` between
    /// messages (0: none).
    pub fn frame(&mut self, took: Duration, now: Instant, interval_ms: u32) -> Booked {
        self.frames += 1;
        self.process_ms.push(took.as_secs_f64() * 1000.0);
        let since = *self.since.get_or_insert(now);
        let elapsed = now.duration_since(since);
        if interval_ms == 0 || elapsed < Duration::from_millis(u64::from(interval_ms)) {
            if interval_ms == 0 && self.process_ms.len() >= LATENCY_FRAMES {
                let p95 = percentile(&mut self.process_ms, 95);
                self.clear(None);
                return Booked::Latency(p95);
            }
            if self.process_ms.len() > MAX_WINDOW {
                self.clear(None);
            }
            return Booked::Open;
        }
        let window = Window {
            frames: self.frames,
            window_frames: self.process_ms.len() as u32,
            fps: self.process_ms.len() as f64 / elapsed.as_secs_f64(),
            inference_p50_ms: (!self.inference_ms.is_empty())
                .then(|| percentile(&mut self.inference_ms, 50)),
            inference_p95_ms: (!self.inference_ms.is_empty())
                .then(|| percentile(&mut self.inference_ms, 95)),
            process_p50_ms: percentile(&mut self.process_ms, 50),
            process_p95_ms: percentile(&mut self.process_ms, 95),
        };
        self.clear(Some(now));
        Booked::Closed(window)
    }

    fn clear(&mut self, since: Option<Instant>) {
        self.inference_ms.clear();
        self.process_ms.clear();
        if since.is_some() {
            self.since = since;
        }
    }
}

/// The `p`-th percentile (0-100) of `v`, nearest rank; 0 for none.
pub fn percentile(v: &mut [f64], p: usize) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() * p).div_ceil(100)).clamp(1, v.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let mut v: Vec<f64> = (1..=20).rev().map(f64::from).collect();
        assert_eq!(percentile(&mut v, 50), 10.0);
        assert_eq!(percentile(&mut v, 95), 19.0);
        assert_eq!(percentile(&mut v, 100), 20.0);
        assert_eq!(percentile(&mut [3.0], 95), 3.0);
        assert_eq!(percentile(&mut [], 50), 0.0);
    }

    #[test]
    fn a_window_closes_after_its_interval_with_its_figures() {
        let t0 = Instant::now();
        let mut s = Stats::default();
        let ms = Duration::from_millis;
        for i in 0..10u64 {
            s.inference(ms(2 + i));
            let booked = s.frame(ms(4 + i), t0 + ms(100 * i), 1000);
            assert_eq!(booked, Booked::Open, "frame {i}");
        }
        let Booked::Closed(w) = s.frame(ms(30), t0 + ms(1000), 1000) else {
            panic!("the window closes after 1000 ms");
        };
        assert_eq!((w.frames, w.window_frames), (11, 11));
        assert!((w.fps - 11.0).abs() < 1e-9, "{}", w.fps);
        assert_eq!(w.inference_p50_ms, Some(6.0));
        assert_eq!(w.process_p95_ms, 30.0);
        // The next window starts empty, from the close.
        assert_eq!(s.frame(ms(1), t0 + ms(1500), 1000), Booked::Open);
        let Booked::Closed(w) = s.frame(ms(1), t0 + ms(2000), 1000) else {
            panic!("second window");
        };
        assert_eq!((w.frames, w.window_frames), (13, 2));
        assert_eq!(w.inference_p95_ms, None, "no inference in the window");
    }

    #[test]
    fn without_messages_the_latency_comes_every_hundred_frames() {
        let t0 = Instant::now();
        let mut s = Stats::default();
        let mut latencies = Vec::new();
        for i in 0..250u64 {
            let took = Duration::from_micros(1000 + 10 * (i % 100));
            if let Booked::Latency(p95) = s.frame(took, t0 + Duration::from_secs(i), 0) {
                latencies.push(p95);
            }
        }
        assert_eq!(latencies.len(), 2);
        assert!((latencies[0] - 1.94).abs() < 1e-9, "{latencies:?}");
    }
}
