// SPDX-License-Identifier: MPL-2.0
//! Bounded job queues with their own worker pools: `pro` and `original`
//! (heavy models) never hold up `light` and `human`. The queue itself is
//! the store's pending jobs, so a job queued on one node can be run by a
//! worker on any node; this module bounds it and wakes idle workers.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use rbv_api::ModelName;
use tokio::sync::Notify;

use crate::store::Store;

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

/// `--pools` with `--heavy-workers` / `--light-workers` (`None`: not
/// given, 1 by default): the workers per pool, (heavy, light). A pool not
/// named gets none; a count given for a pool not named, or 0 for a pool
/// named, is a contradiction and refused.
pub fn workers_for_pools(
    pools: Option<&str>,
    heavy: Option<usize>,
    light: Option<usize>,
) -> Result<(usize, usize), String> {
    let Some(pools) = pools else {
        return Ok((heavy.unwrap_or(1), light.unwrap_or(1)));
    };
    let (mut want_heavy, mut want_light) = (false, false);
    for p in pools.split(',').map(str::trim) {
        match p {
            "heavy" => want_heavy = true,
            "light" => want_light = true,
            _ => {
                return Err(format!(
                    "--pools {pools}: `{p}` is not a pool: heavy (pro, original), light (human, light)"
                ));
            }
        }
    }
    let count = |want: bool, given: Option<usize>, name: &str| match (want, given) {
        (true, Some(0)) => Err(format!(
            "--pools {pools} names {name} but --{name}-workers is 0"
        )),
        (true, n) => Ok(n.unwrap_or(1)),
        (false, Some(n)) if n > 0 => Err(format!(
            "--{name}-workers {n} but --pools {pools} leaves {name} out"
        )),
        (false, _) => Ok(0),
    };
    Ok((
        count(want_heavy, heavy, "heavy")?,
        count(want_light, light, "light")?,
    ))
}

/// A worker pool's side of the queue, which lives in the store: how many
/// may wait (a job is refused when `capacity` already wait, across every
/// node), the wake-up of this node's idle workers when a job is queued
/// (here, or on another node through PostgreSQL's NOTIFY), and the counts
/// `/health` and `/metrics` show.
pub struct Queue {
    pool: Pool,
    store: Arc<Store>,
    notify: Notify,
    capacity: usize,
    pub busy: AtomicUsize,
    pub workers: usize,
}

impl Queue {
    pub fn new(pool: Pool, store: Arc<Store>, capacity: usize, workers: usize) -> Queue {
        Queue {
            pool,
            store,
            notify: Notify::new(),
            capacity,
            busy: AtomicUsize::new(0),
            workers,
        }
    }

    /// Jobs waiting in this pool, on every node (0 when the store fails).
    pub fn len(&self) -> usize {
        self.store
            .pending_count(self.pool.name())
            .map_or(0, |n| n.max(0) as usize)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether another job may be queued. Two API nodes admitting at the
    /// same moment can each see room for the last place: the cap may be
    /// passed by the number of requests in flight, never more.
    pub fn has_room(&self) -> bool {
        self.len() < self.capacity
    }

    /// Wakes one idle worker of this node (a job was queued).
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    /// Wakes every idle worker of this node (a long job's segments).
    pub fn wake_all(&self) {
        self.notify.notify_waiters();
        // And one permit for a worker between its look and its wait.
        self.notify.notify_one();
    }

    /// Waits until woken or `at_most` has passed (then the worker looks for
    /// jobs whose lease ran out).
    pub async fn wait(&self, at_most: Duration) {
        let _ = tokio::time::timeout(at_most, self.notify.notified()).await;
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

    /// A pool by the name the store keeps.
    pub fn named(&self, pool: &str) -> Option<&Queue> {
        match pool {
            "heavy" => Some(&self.heavy),
            "light" => Some(&self.light),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pools_name_what_a_worker_node_takes() {
        use super::workers_for_pools as w;
        assert_eq!(w(None, None, None), Ok((1, 1)));
        assert_eq!(w(None, Some(2), Some(0)), Ok((2, 0)));
        assert_eq!(w(Some("heavy"), None, None), Ok((1, 0)));
        assert_eq!(w(Some("light"), None, Some(3)), Ok((0, 3)));
        assert_eq!(w(Some("heavy, light"), Some(2), None), Ok((2, 1)));
        for (pools, heavy, light, says) in [
            (
                "gpu",
                None,
                None,
                "`gpu` is not a pool: heavy (pro, original), light (human, light)",
            ),
            ("", None, None, "`` is not a pool"),
            (
                "heavy",
                None,
                Some(2),
                "--light-workers 2 but --pools heavy leaves light out",
            ),
            (
                "light",
                Some(0),
                Some(0),
                "--pools light names light but --light-workers is 0",
            ),
        ] {
            let e = w(Some(pools), heavy, light).unwrap_err();
            assert!(e.contains(says), "{pools}: {e}");
        }
    }

    use super::*;

    #[test]
    fn pools_by_model() {
        assert_eq!(Pool::for_model(ModelName::Pro), Pool::Heavy);
        assert_eq!(Pool::for_model(ModelName::Original), Pool::Heavy);
        assert_eq!(Pool::for_model(ModelName::Light), Pool::Light);
        assert_eq!(Pool::for_model(ModelName::Human), Pool::Light);
    }

    #[test]
    fn bounded_by_what_waits_in_the_store() {
        let store = Arc::new(crate::store::tests::store());
        let (key, _) = store.create_key("k", None).unwrap();
        let q = Queue::new(Pool::Light, store.clone(), 2, 1);
        assert!(q.has_room() && q.is_empty());
        for _ in 0..2 {
            crate::store::tests::job(&store, &key, "pending");
        }
        assert_eq!(q.len(), 2);
        assert!(!q.has_room());
        let heavy = Queue::new(Pool::Heavy, store, 2, 1);
        assert!(heavy.has_room(), "pools are counted apart");
    }

    #[test]
    fn wait_ends_on_a_wake_or_after_the_timeout() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let store = Arc::new(crate::store::tests::store());
        let q = Arc::new(Queue::new(Pool::Light, store, 4, 1));
        let q2 = q.clone();
        let woken = rt.spawn(async move {
            let t = std::time::Instant::now();
            q2.wait(Duration::from_secs(30)).await;
            t.elapsed()
        });
        rt.block_on(async { tokio::time::sleep(Duration::from_millis(50)).await });
        q.wake();
        assert!(rt.block_on(woken).unwrap() < Duration::from_secs(10));
        let t = std::time::Instant::now();
        rt.block_on(q.wait(Duration::from_millis(100)));
        assert!(t.elapsed() >= Duration::from_millis(100));
    }
}
