//! The scrape manager: runs one scrape loop per assigned target and applies
//! assignments from the control plane.
//!
//! A snapshot replaces the running set (targets missing from it stop without
//! stale markers: they may run elsewhere now); a delta adds or replaces the
//! listed targets and stops the removed ones, writing end-of-run stale markers
//! only for targets that left discovery. A target that moved to another live
//! scraper carries a handover time: its loop keeps scraping until then, hands
//! its series over and ends by itself (it is kept in `handing_over` until
//! it has; a target assigned back before then replaces that loop, as it
//! replaces a running one). A target whose definition or pool changed is
//! restarted. The
//! manager is owned by the control session task, so it needs no lock; loop
//! health is shared through a small mutex per loop.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use scrapegrid_proto::v1 as pb;

use crate::ingest::IngestHandle;
use crate::metrics;
use crate::scrape::http_client::TargetClient;
use crate::scrape::scrape_loop::{self, LoopControl, StopMode};
use crate::target::{self, PoolConfig, TargetSpec};

struct RunningLoop {
    spec: Arc<TargetSpec>,
    control: Arc<LoopControl>,
    task: JoinHandle<()>,
}

pub struct ScrapeManager {
    pools: HashMap<String, Arc<PoolConfig>>,
    loops: HashMap<String, RunningLoop>,
    /// Loops of targets that moved away, until they have handed over.
    handing_over: Vec<RunningLoop>,
    /// Loops told to stop, until they have handed in their last batch (a
    /// scrape in flight, end-of-run stale markers).
    stopping: Vec<JoinHandle<()>>,
    client: TargetClient,
    ingest: IngestHandle,
    storage_endpoint: watch::Sender<String>,
    cancel: CancellationToken,
}

impl ScrapeManager {
    pub fn new(
        client: TargetClient,
        ingest: IngestHandle,
        storage_endpoint: watch::Sender<String>,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            pools: HashMap::new(),
            loops: HashMap::new(),
            handing_over: Vec::new(),
            stopping: Vec::new(),
            client,
            ingest,
            storage_endpoint,
            cancel,
        }
    }

    /// Applies one assignment message.
    pub fn apply(&mut self, a: pb::Assignment) {
        if !a.storage_endpoint.is_empty() {
            self.storage_endpoint.send_if_modified(|e| {
                let changed = *e != a.storage_endpoint;
                if changed {
                    e.clone_from(&a.storage_endpoint);
                }
                changed
            });
        }
        for p in &a.pools {
            if self.pools.get(&p.name).is_some_and(|old| old.source == *p) {
                continue;
            }
            match PoolConfig::try_from(p) {
                Ok(pool) => {
                    self.pools.insert(p.name.clone(), Arc::new(pool));
                }
                Err(error) => {
                    tracing::error!(pool = %p.name, %error, "invalid scrape pool; its targets are not scraped")
                }
            }
        }
        for r in &a.removals {
            match pb::RemovalReason::try_from(r.reason) {
                Ok(pb::RemovalReason::Gone) => self.stop(&r.target_id, StopMode::Gone),
                Ok(pb::RemovalReason::Moved) if r.stop_at_ms > 0 => {
                    if let Some(l) = self.loops.remove(&r.target_id) {
                        l.control.hand_over_at(r.stop_at_ms);
                        self.handing_over.push(l);
                    }
                }
                _ => self.stop(&r.target_id, StopMode::Quiet),
            }
        }
        if a.full {
            let keep: std::collections::HashSet<&str> =
                a.targets.iter().map(|t| t.id.as_str()).collect();
            let gone: Vec<String> = self
                .loops
                .keys()
                .filter(|id| !keep.contains(id.as_str()))
                .cloned()
                .collect();
            for id in gone {
                self.stop(&id, StopMode::Quiet);
            }
        }
        self.handing_over.retain(|l| !l.task.is_finished());
        for t in &a.targets {
            self.upsert(t, false);
        }
        // Restart loops whose pool definition changed under them.
        let stale: Vec<pb::Target> = self
            .loops
            .values()
            .filter(|l| {
                self.pools
                    .get(&l.spec.pool.name)
                    .is_some_and(|p| !Arc::ptr_eq(p, &l.spec.pool))
            })
            .map(|l| l.spec.source.clone())
            .collect();
        for t in stale {
            self.upsert(&t, true);
        }
        ::metrics::gauge!(metrics::TARGETS).set(self.loops.len() as f64);
        tracing::info!(
            generation = a.generation,
            full = a.full,
            targets = self.loops.len(),
            "applied assignment"
        );
    }

    /// Starts the loop of `t`, replacing a running one that differs (or any
    /// running one with `force`, when its pool changed).
    fn upsert(&mut self, t: &pb::Target, force: bool) {
        // A loop that ended on its own (fenced) runs again when assigned.
        if !force
            && self
                .loops
                .get(&t.id)
                .is_some_and(|l| l.spec.source == target::definition(t) && !l.task.is_finished())
        {
            return;
        }
        let Some(pool) = self.pools.get(&t.pool).cloned() else {
            tracing::error!(target = %t.id, pool = %t.pool, "target refers to an unknown pool");
            return;
        };
        let mut spec = match TargetSpec::from_proto(t, pool) {
            Ok(s) => s,
            Err(error) => {
                tracing::error!(target = %t.id, %error, "invalid target");
                return;
            }
        };
        // A loop that replaces a running one inherits its series. That
        // includes one still handing the target over when the new loop
        // starts before the handover time (the target came back by
        // failover: the scraper it was moving to died): left running, it
        // would scrape every slot the new loop scrapes until then. One
        // handing over before the new loop's start (the target comes back
        // by a later handover) runs on: the slots between are the other
        // scraper's.
        let running = self.loops.remove(&t.id).or_else(|| {
            let i = self.handing_over.iter().position(|l| {
                l.spec.id == t.id
                    && !l.task.is_finished()
                    && spec.start_at_ms
                        < l.control
                            .stop_at_ms
                            .load(std::sync::atomic::Ordering::SeqCst)
            })?;
            Some(self.handing_over.swap_remove(i))
        });
        // One replaced before its first slot awaits a handover from
        // another scraper then, which scrapes until that time: the new loop
        // starts no earlier (the target came back here before it began:
        // the scraper it was moving on to died).
        if let Some(old) = &running {
            if old.spec.start_at_ms > crate::clock::now_ms()
                && old.spec.start_at_ms > spec.start_at_ms
            {
                spec.start_at_ms = old.spec.start_at_ms;
                spec.await_handover |= old.spec.await_handover;
            }
        }
        let spec = Arc::new(spec);
        let inherit = running.map(|old| {
            let (tx, rx) = tokio::sync::oneshot::channel();
            if let Ok(mut h) = old.control.handoff.lock() {
                *h = Some(tx);
            }
            old.control.stop(StopMode::Quiet);
            rx
        });
        ::metrics::counter!(metrics::LOOPS_STARTED).increment(1);
        let control = Arc::new(LoopControl::new(
            self.cancel.child_token(),
            pb::TargetHealth {
                target_id: t.id.clone(),
                generation: t.generation,
                ..Default::default()
            },
        ));
        let task = tokio::spawn(scrape_loop::run(
            spec.clone(),
            self.client.clone(),
            self.ingest.clone(),
            control.clone(),
            inherit,
        ));
        self.loops.insert(
            t.id.clone(),
            RunningLoop {
                spec,
                control,
                task,
            },
        );
    }

    fn stop(&mut self, id: &str, mode: StopMode) {
        if let Some(l) = self.loops.remove(id) {
            l.control.stop(mode);
            self.stopping.push(l.task);
        }
        // Gone from discovery while this scraper still hands it over: the
        // new owner has not scraped it yet, so this loop writes the stale
        // markers now (handed over, nobody would; and back in discovery
        // before the handover time, its next owner would scrape beside it).
        if mode == StopMode::Gone {
            let (gone, handing): (Vec<_>, Vec<_>) = std::mem::take(&mut self.handing_over)
                .into_iter()
                .partition(|l| l.spec.id == id);
            self.handing_over = handing;
            for l in gone {
                l.control.stop(mode);
                self.stopping.push(l.task);
            }
        }
    }

    /// Returns the health of every running target.
    pub fn health(&self) -> Vec<pb::TargetHealth> {
        self.loops
            .values()
            .filter_map(|l| l.control.health.lock().ok().map(|h| h.clone()))
            .collect()
    }

    /// Returns the running targets and their generations.
    pub fn running(&self) -> Vec<pb::RunningTarget> {
        self.loops
            .values()
            .map(|l| pb::RunningTarget {
                target_id: l.spec.id.clone(),
                generation: l.spec.generation,
            })
            .collect()
    }

    /// Returns how many targets still run or have not handed over yet.
    pub fn unfinished(&self) -> usize {
        self.loops.len() + self.handing_over.len()
    }

    /// Returns true when no loop runs, every moved target has handed over
    /// and every stopped loop has handed in its last batch.
    pub fn is_idle(&mut self) -> bool {
        self.handing_over.retain(|l| !l.task.is_finished());
        self.stopping.retain(|t| !t.is_finished());
        self.loops.is_empty() && self.handing_over.is_empty() && self.stopping.is_empty()
    }

    /// Stops every loop and waits for them to hand in their last batch:
    /// running loops stop quietly, loops of moved targets hand over now.
    /// Loops that are not done by `until` (a fetch that outlasts it, a
    /// target's end-of-run stale markers) are aborted.
    pub async fn stop_all(&mut self, until: tokio::time::Instant) {
        let mut tasks: Vec<JoinHandle<()>> = std::mem::take(&mut self.stopping);
        for (_, l) in self.loops.drain() {
            l.control.stop(StopMode::Quiet);
            tasks.push(l.task);
        }
        for l in self.handing_over.drain(..) {
            l.control.hand_over_at(1);
            tasks.push(l.task);
        }
        for mut task in tasks {
            if tokio::time::timeout_at(until, &mut task).await.is_err() {
                tracing::warn!("a scrape loop did not stop in time; aborting it");
                task.abort();
            }
        }
    }
}
