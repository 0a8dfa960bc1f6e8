// SPDX-License-Identifier: MPL-2.0
//! The detector on a thread of its own, in both modes: the streaming thread
//! hands over a frame's detector input and goes on with the frames after
//! it. `mode=async` and live sources take the newest regions whenever they
//! come, never waiting; `mode=sync` on a file waits for a detection only
//! when it is due on the frame it is applied from (see `local/gate`), so
//! the output does not depend on timing.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rbv_core::detect::{Detector, Letterbox, NUM_CLASSES, Regions, Stopper, worn};

use super::worker::wait_until;

/// One frame's detector input.
pub struct Input {
    /// Packed RGB at the letterbox's placed size.
    pub rgb: Vec<u8>,
    pub stride: usize,
    pub letterbox: Letterbox,
    pub confidence: f32,
    /// The classes asked for (people also bring what they wear or hold).
    pub wanted: [bool; NUM_CLASSES],
    /// Per class: the matting model segments it (else the detector's mask
    /// is its alpha).
    pub matted: [bool; NUM_CLASSES],
    /// The frame's number, to age the regions by.
    pub frame: u64,
    /// Names the regions (a gate renders each once).
    pub id: u64,
}

/// The newest regions.
pub struct Output {
    pub regions: Arc<Regions>,
    pub frame: u64,
    /// The input's `id`.
    pub id: u64,
    pub took: Duration,
}

#[derive(Default)]
struct Slots {
    pending: Option<Input>,
    /// The thread is running a frame.
    running: bool,
    latest: Option<Output>,
    error: Option<String>,
    stop: bool,
}

#[derive(Default)]
struct Shared {
    slots: Mutex<Slots>,
    cond: Condvar,
}

fn lock(m: &Mutex<Slots>) -> MutexGuard<'_, Slots> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The detector's thread and its hand-over slots.
pub struct DetectorThread {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
    stopper: Stopper,
}

impl DetectorThread {
    pub fn start(detector: Detector) -> std::io::Result<DetectorThread> {
        let shared = Arc::new(Shared::default());
        let theirs = shared.clone();
        let stopper = detector.stopper();
        let thread = std::thread::Builder::new()
            .name("rbv-detect".into())
            .spawn(move || run(&theirs, detector))?;
        Ok(DetectorThread {
            shared,
            thread: Some(thread),
            stopper,
        })
    }

    /// Whether it has nothing to do: a new input would start at once.
    pub fn idle(&self) -> bool {
        let slots = lock(&self.shared.slots);
        !slots.running && slots.pending.is_none()
    }

    /// Waits on the slots until `done` answers, at most `limit`; `None`
    /// when the time ran out.
    fn wait_on<R>(&self, limit: Duration, done: impl FnMut(&mut Slots) -> Option<R>) -> Option<R> {
        wait_until(&self.shared.slots, &self.shared.cond, limit, done)
    }

    /// Waits until it has nothing to do (a frame dropped by a flush may
    /// still be running), at most `limit`.
    pub fn wait_idle(&self, limit: Duration) -> Result<(), String> {
        self.wait_on(limit, |s| (!s.running && s.pending.is_none()).then_some(()))
            .ok_or_else(|| late(limit))
    }

    /// Hands over a frame, replacing one still waiting.
    pub fn submit(&self, input: Input) {
        lock(&self.shared.slots).pending = Some(input);
        self.shared.cond.notify_all();
    }

    /// The regions finished since the last call, if any. Errors from the
    /// model come out here.
    pub fn take(&self) -> Result<Option<Output>, String> {
        let mut slots = lock(&self.shared.slots);
        if let Some(e) = slots.error.take() {
            return Err(e);
        }
        Ok(slots.latest.take())
    }

    /// Waits for the regions of the input `id` (handed over before), at
    /// most `limit`; other finished regions are dropped. Errors from the
    /// model come out here.
    pub fn wait_for(&self, id: u64, limit: Duration) -> Result<Output, String> {
        self.wait_on(limit, |slots| {
            if let Some(e) = slots.error.take() {
                return Some(Err(e));
            }
            match slots.latest.take() {
                Some(out) if out.id == id => return Some(Ok(out)),
                _ => {}
            }
            let queued = slots.pending.as_ref().is_some_and(|p| p.id == id);
            (!slots.running && !queued).then(|| Err(format!("detection {id} was never run")))
        })
        .unwrap_or_else(|| Err(late(limit)))
    }

    /// Forgets finished and waiting work (a flush). A frame being detected
    /// finishes, and its regions are dropped by their id.
    pub fn clear(&self) {
        let mut slots = lock(&self.shared.slots);
        slots.latest = None;
        slots.pending = None;
    }
}

fn late(limit: Duration) -> String {
    format!("the detector did not answer within {} s", limit.as_secs())
}

impl Drop for DetectorThread {
    /// Stops the thread and waits for it, ending a detection in progress
    /// (ONNX Runtime leaves it at its next node: a state change stays
    /// prompt). Left running, the thread could still be inside ONNX Runtime
    /// when the process exits, which then prints an error about a run the
    /// user never sees.
    fn drop(&mut self) {
        lock(&self.shared.slots).stop = true;
        self.stopper.stop();
        self.shared.cond.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The detector's thread runs at a lower priority (nice +10): on a busy
/// machine the streaming thread and the matting model's worker come first,
/// and the detector takes what is left (its regions just get older).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system call on this thread's own scheduling value; on
    // Linux the nice value is per thread, so who = 0 is the calling thread.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}

fn run(shared: &Shared, mut detector: Detector) {
    lower_priority();
    loop {
        let input = {
            let mut slots = lock(&shared.slots);
            loop {
                if slots.stop {
                    return;
                }
                if let Some(input) = slots.pending.take() {
                    slots.running = true;
                    break input;
                }
                slots = shared.cond.wait(slots).unwrap_or_else(|e| e.into_inner());
            }
        };
        let started = Instant::now();
        let result = detector.run(
            &input.rgb,
            input.stride,
            &input.letterbox,
            input.confidence,
            Some(&worn::widened(&input.wanted)),
        );
        let mut slots = lock(&shared.slots);
        slots.running = false;
        match result {
            Ok(found) => {
                let matted = input.matted;
                let regions = Regions::asked(found, &input.wanted, |c| matted[c], input.id);
                slots.latest = Some(Output {
                    regions: Arc::new(regions),
                    frame: input.frame,
                    id: input.id,
                    took: started.elapsed(),
                })
            }
            Err(e) => slots.error = Some(e),
        }
        drop(slots);
        shared.cond.notify_all();
    }
}
