// SPDX-License-Identifier: MPL-2.0
//! Bounded job queues with their own worker pools: `pro` and `original`
//! (heavy models) never hold up `light` and `human`. The database is the
//! durable record; a queue only orders the ids of pending jobs.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;

use rbv_api::ModelName;
use tokio::sync::Notify;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool {
    Heavy,
    Light,
}

impl Pool {
    pub fn for_model(model: ModelName) -> Pool {
        if model.is_heavy() {
            Pool::Heavy
        } else {
            Pool::Light
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Pool::Heavy => "heavy",
            Pool::Light => "light",
        }
    }
}

/// The queue is full.
#[derive(Debug, PartialEq)]
pub struct Full;

pub struct Queue {
    items: Mutex<VecDeque<String>>,
    notify: Notify,
    capacity: usize,
    pub busy: AtomicUsize,
    pub workers: usize,
}

impl Queue {
    pub fn new(capacity: usize, workers: usize) -> Queue {
        Queue {
            items: Mutex::new(VecDeque::new()),
            notify: Notify::new(),
            capacity,
            busy: AtomicUsize::new(0),
            workers,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<String>> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a job, or refuses when `capacity` jobs already wait.
    pub fn push(&self, id: String) -> Result<(), Full> {
        {
            let mut q = self.lock();
            if q.len() >= self.capacity {
                return Err(Full);
            }
            q.push_back(id);
        }
        self.notify.notify_one();
        Ok(())
    }

    /// Adds a job whatever the length (jobs recovered at start were admitted
    /// before).
    pub fn push_recovered(&self, id: String) {
        self.lock().push_back(id);
        self.notify.notify_one();
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits for the next job.
    pub async fn pop(&self) -> String {
        loop {
            let notified = self.notify.notified();
            if let Some(id) = self.lock().pop_front() {
                return id;
            }
            notified.await;
        }
    }
}

pub struct Queues {
    pub heavy: Queue,
    pub light: Queue,
}

impl Queues {
    pub fn get(&self, pool: Pool) -> &Queue {
        match pool {
            Pool::Heavy => &self.heavy,
            Pool::Light => &self.light,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_by_model() {
        assert_eq!(Pool::for_model(ModelName::Pro), Pool::Heavy);
        assert_eq!(Pool::for_model(ModelName::Original), Pool::Heavy);
        assert_eq!(Pool::for_model(ModelName::Light), Pool::Light);
        assert_eq!(Pool::for_model(ModelName::Human), Pool::Light);
    }

    #[test]
    fn bounded_fifo() {
        let q = Queue::new(2, 1);
        q.push("a".into()).unwrap();
        q.push("b".into()).unwrap();
        assert_eq!(q.push("c".into()), Err(Full));
        q.push_recovered("r".into());
        assert_eq!(q.len(), 3);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(q.pop()), "a");
        assert_eq!(rt.block_on(q.pop()), "b");
        assert_eq!(rt.block_on(q.pop()), "r");
        assert!(q.is_empty());
    }

    #[test]
    fn pop_waits_for_a_push() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let q = std::sync::Arc::new(Queue::new(4, 1));
        let q2 = q.clone();
        let got = rt.spawn(async move { q2.pop().await });
        rt.block_on(async { tokio::time::sleep(std::time::Duration::from_millis(50)).await });
        q.push("late".into()).unwrap();
        assert_eq!(rt.block_on(got).unwrap(), "late");
    }
}
