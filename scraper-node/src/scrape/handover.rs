//! The new owner's side of a handover: the series set its predecessor
//! handed over, read from the storage node without ever holding up a slot.
//!
//! The predecessor's handover batch follows its last scrape on its own
//! ordered ingest stream, so it is normally stored before the new owner's
//! first slot. [`Incoming`] polls for it (`Ingest/TakeHandover`) in a task
//! of its own from the moment the loop starts. Before the first commit the
//! loop waits for it only as long as the next slot allows; then:
//!
//! - **taken**: the set arrived in time; the first scrape's staleness is
//!   judged against it ([`TargetState::adopt`]), exactly as the predecessor
//!   would have judged it.
//! - **late**: the storage node, or the predecessor's stream to it, was away
//!   at the handover (a storage restart, a drain during one). The loop goes
//!   on scraping every slot; when the set arrives, the series in it that no
//!   scrape since the handover has yielded get their stale marker at the
//!   first scrape's timestamp, in a batch of their own. (Unlike the taken
//!   case, the first scrape then counts every series in
//!   `scrape_series_added`.)
//! - **missed**: nothing came within [`PATIENCE`] (the predecessor died
//!   before it handed over): series that vanished during the move get no
//!   stale marker.

use std::collections::HashSet;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::clock::now_ms;
use scrapegrid_common::Labels;
use scrapegrid_proto::stale_marker;

use super::state::TargetState;
use crate::batch::{ScrapeBatch, Series};
use crate::ingest::IngestHandle;
use crate::metrics;
use crate::target::TargetSpec;

/// How long the first commit may wait for the set, at most (and never past
/// half the time left until the next slot).
const FIRST_COMMIT_WAIT: Duration = Duration::from_secs(1);

/// How long the set is polled for before the handover counts as missed:
/// more than a drain deadline (`--drain-timeout`, 60 s by default) during
/// which the predecessor keeps retrying its delivery.
pub const PATIENCE: Duration = Duration::from_secs(90);

/// A handover on its way to a target's new owner.
pub struct Incoming {
    rx: oneshot::Receiver<Option<Vec<Labels>>>,
    poller: JoinHandle<()>,
    /// Once a scrape was committed without the set: its timestamp, and the
    /// labels of every series a scrape has yielded since.
    committed: Option<(i64, HashSet<Labels>)>,
    done: bool,
}

impl Drop for Incoming {
    fn drop(&mut self) {
        self.poller.abort();
    }
}

impl Incoming {
    /// Starts polling the storage node for the set `spec`'s predecessor
    /// handed over.
    pub fn start(spec: &TargetSpec, ingest: &IngestHandle) -> Self {
        let (tx, rx) = oneshot::channel();
        // The predecessor's handover batch carries its last scrape, in the
        // last slot before the handover time; a record older than that is
        // an earlier move's.
        let interval = spec.interval.as_millis() as i64;
        let not_before = spec.start_at_ms.saturating_sub(interval);
        let poller = tokio::spawn(poll(
            spec.id.clone(),
            spec.generation,
            not_before,
            ingest.clone(),
            tx,
        ));
        Self {
            rx,
            poller,
            committed: None,
            done: false,
        }
    }

    /// Whether the handover is settled (taken, late or missed).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Called before a scrape is turned into its batch. Before the first
    /// commit, waits for the set until at most half-way to `next_slot_ms`
    /// and, if it came, lets `state` judge staleness against it.
    pub async fn before_commit(&mut self, state: &mut TargetState, next_slot_ms: i64) {
        if self.done || self.committed.is_some() {
            return;
        }
        let room = ((next_slot_ms - now_ms()) / 2).max(0) as u64;
        let wait = FIRST_COMMIT_WAIT.min(Duration::from_millis(room));
        match tokio::time::timeout(wait, &mut self.rx).await {
            Ok(Ok(Some(series))) => {
                ::metrics::counter!(metrics::HANDOVERS, "outcome" => "taken").increment(1);
                state.adopt(series.into_iter().map(Series::new).collect());
                self.done = true;
            }
            Ok(_) => self.missed(),
            Err(_) => {}
        }
    }

    /// Called after a scrape of `timestamp_ms` was committed. Returns the
    /// stale markers of a set that arrived late.
    pub fn after_commit(
        &mut self,
        spec: &TargetSpec,
        state: &TargetState,
        timestamp_ms: i64,
    ) -> Option<ScrapeBatch> {
        if self.done {
            return None;
        }
        let (first_ts, seen) = self
            .committed
            .get_or_insert_with(|| (timestamp_ms, HashSet::new()));
        seen.extend(state.series().iter().map(|s| s.labels.to_labels()));
        match self.rx.try_recv() {
            Ok(Some(series)) => {
                ::metrics::counter!(metrics::HANDOVERS, "outcome" => "late").increment(1);
                let vanished: Vec<Labels> =
                    series.into_iter().filter(|l| !seen.contains(l)).collect();
                tracing::info!(target = %spec.id, vanished = vanished.len(), "handover arrived after the first commit");
                let mut batch = ScrapeBatch::new(&spec.id, spec.generation, *first_ts);
                for labels in vanished {
                    batch.push(&Series::new(labels), *first_ts, stale_marker());
                }
                self.done = true;
                (!batch.is_empty()).then_some(batch)
            }
            Ok(None) | Err(oneshot::error::TryRecvError::Closed) => {
                ::metrics::counter!(metrics::HANDOVERS, "outcome" => "missed").increment(1);
                self.done = true;
                None
            }
            Err(oneshot::error::TryRecvError::Empty) => None,
        }
    }

    fn missed(&mut self) {
        ::metrics::counter!(metrics::HANDOVERS, "outcome" => "missed").increment(1);
        self.done = true;
    }
}

/// Polls `Ingest/TakeHandover` until the set is there (`Some`) or
/// [`PATIENCE`] has passed (`None`): every 50 ms for the first second, then
/// every 500 ms.
async fn poll(
    target_id: String,
    generation: u64,
    not_before_ms: i64,
    ingest: IngestHandle,
    tx: oneshot::Sender<Option<Vec<Labels>>>,
) {
    let start = tokio::time::Instant::now();
    let mut reader = None;
    loop {
        if reader.is_none() {
            match ingest.handover_reader() {
                Ok(r) => reader = Some(r),
                Err(error) => {
                    tracing::debug!(target = %target_id, %error, "handover not readable yet")
                }
            }
        }
        if let Some(r) = reader.as_mut() {
            match r.take(&target_id, generation, not_before_ms).await {
                Ok(Some(series)) => {
                    let _ = tx.send(Some(series));
                    return;
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::debug!(target = %target_id, %error, "handover not readable yet")
                }
            }
        }
        let waited = start.elapsed();
        if waited >= PATIENCE {
            tracing::warn!(target = %target_id, "no handover from the previous owner; series that vanished during the move get no stale marker");
            let _ = tx.send(None);
            return;
        }
        let pause = if waited < Duration::from_secs(1) {
            50
        } else {
            500
        };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}
