// SPDX-License-Identifier: MPL-2.0
//! `mode=async`: inference on a thread of its own. The streaming thread
//! hands over a frame's model input when the worker is free (see
//! [`Worker::idle`]: the heavy model's input is not made for frames it
//! would never run) and takes the newest mask, never waiting for the model.
//! A heavy model's stale mask is corrected where the picture moved by
//! `local/correct.rs`; its age in frames is reported.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rbv_core::matte::Smoother;
use rbv_core::model::Segmenter;

/// One frame's model input.
pub struct Input {
    pub rgb: Vec<u8>,
    pub stride: usize,
    /// Which of the segmenters runs it.
    pub active: usize,
    /// The frame's number, to age the mask by.
    pub frame: u64,
    pub model_size: (u32, u32),
    pub smoothing: f32,
    pub smoothing_threshold: u8,
    /// Drop the smoother's history first (flush, discontinuity, caps).
    pub reset: bool,
}

/// The newest mask.
pub struct Output {
    pub mask: Vec<f32>,
    pub size: (u32, u32),
    /// The frame it was computed on, and by which segmenter.
    pub frame: u64,
    pub active: usize,
    pub took: Duration,
    /// Set until the streaming thread has read it once.
    pub fresh: bool,
}

#[derive(Default)]
struct Slots {
    pending: Option<Input>,
    latest: Option<Output>,
    error: Option<String>,
    stop: bool,
    /// A frame is in the model.
    busy: bool,
}

#[derive(Default)]
struct Shared {
    slots: Mutex<Slots>,
    cond: Condvar,
}

/// Waits on `cond` for `slots` until `done` answers, at most `limit`;
/// `None` when the time ran out. (The async worker's and the detector
/// thread's hand-over slots both wait this way.)
pub fn wait_until<S, R>(
    slots: &Mutex<S>,
    cond: &Condvar,
    limit: Duration,
    mut done: impl FnMut(&mut S) -> Option<R>,
) -> Option<R> {
    let deadline = Instant::now() + limit;
    let mut guard = slots.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if let Some(r) = done(&mut guard) {
            return Some(r);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        guard = cond
            .wait_timeout(guard, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

fn lock(m: &Mutex<Slots>) -> MutexGuard<'_, Slots> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The worker thread and its hand-over slots.
pub struct Worker {
    shared: Arc<Shared>,
}

impl Worker {
    /// Starts the worker thread; it runs `segmenters` (shared with the
    /// element, locked only while a frame is inferred).
    pub fn start(segmenters: Arc<Mutex<Vec<Segmenter>>>) -> std::io::Result<Worker> {
        let shared = Arc::new(Shared::default());
        let theirs = shared.clone();
        std::thread::Builder::new()
            .name("rbv-inference".into())
            .spawn(move || run(&theirs, &segmenters))?;
        Ok(Worker { shared })
    }

    /// Hands over a frame's model input, replacing one still waiting.
    pub fn submit(&self, input: Input) {
        lock(&self.shared.slots).pending = Some(input);
        self.shared.cond.notify_all();
    }

    /// Whether the worker waits for a frame (none running, none waiting).
    pub fn idle(&self) -> bool {
        let slots = lock(&self.shared.slots);
        !slots.busy && slots.pending.is_none()
    }

    /// Calls `f` with the newest mask (none before the first), and marks it
    /// read. Errors from the model come out here.
    pub fn with_latest<R>(&self, f: impl FnOnce(Option<&mut Output>) -> R) -> Result<R, String> {
        let mut slots = lock(&self.shared.slots);
        if let Some(e) = slots.error.take() {
            return Err(e);
        }
        Ok(f(slots.latest.as_mut()))
    }

    /// Waits until there is a mask (or an error, or the worker stops), at
    /// most `limit`.
    pub fn wait_latest(&self, limit: Duration) {
        wait_until(&self.shared.slots, &self.shared.cond, limit, |s| {
            (s.latest.is_some() || s.error.is_some() || s.stop).then_some(())
        });
    }

    /// Forgets the mask and any waiting input (after a flush: the old mask
    /// belongs to another place in the stream).
    pub fn clear(&self) {
        let mut slots = lock(&self.shared.slots);
        slots.latest = None;
        slots.pending = None;
    }
}

impl Drop for Worker {
    /// Stops the thread without waiting for it: a frame in the model
    /// finishes (up to 2 s with `pro`) on its own, then the thread ends.
    fn drop(&mut self) {
        lock(&self.shared.slots).stop = true;
        self.shared.cond.notify_all();
    }
}

fn run(shared: &Shared, segmenters: &Mutex<Vec<Segmenter>>) {
    let mut smoother = Smoother::new();
    loop {
        let input = {
            let mut slots = lock(&shared.slots);
            loop {
                if slots.stop {
                    return;
                }
                if let Some(input) = slots.pending.take() {
                    slots.busy = true;
                    break input;
                }
                slots = shared.cond.wait(slots).unwrap_or_else(|e| e.into_inner());
            }
        };
        if input.reset {
            smoother.reset();
        }
        let started = Instant::now();
        let mut segs = segmenters.lock().unwrap_or_else(|e| e.into_inner());
        let Some(segmenter) = segs.get_mut(input.active) else {
            lock(&shared.slots).busy = false;
            continue;
        };
        let result = segmenter.run(&input.rgb, input.stride).map(|(mask, w, h)| {
            let mask = smoother.apply(
                mask,
                (w, h),
                &input.rgb,
                input.stride,
                input.model_size,
                input.smoothing,
                input.smoothing_threshold,
            );
            (mask.to_vec(), (w, h))
        });
        drop(segs);
        let mut slots = lock(&shared.slots);
        slots.busy = false;
        match result {
            Ok((mask, size)) => {
                slots.latest = Some(Output {
                    mask,
                    size,
                    frame: input.frame,
                    active: input.active,
                    took: started.elapsed(),
                    fresh: true,
                })
            }
            Err(e) => slots.error = Some(e),
        }
        // For a frame waiting on the first mask (before-first-mask=wait).
        shared.cond.notify_all();
    }
}
