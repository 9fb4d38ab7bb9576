//! One scrape loop per target: waits for the target's slot in its interval,
//! fetches, turns the result into a batch, and hands it to the ingest client.
//!
//! The slot is a fixed offset inside the interval derived from the target id
//! only (no per-host seed), so a target that moves to another scraper keeps
//! its phase. A loop stops when its token is cancelled; with
//! [`StopMode::Gone`] it then writes end-of-run stale markers, with
//! Prometheus's timing.
//!
//! Handover (a move between two live scrapers, at a time `H` the control
//! plane picks): the old owner's loop scrapes every slot before `H`
//! ([`LoopControl::hand_over_at`]), then sends the series of its last scrape
//! as a handover batch and ends without stale markers; the new owner's loop
//! starts at the first slot at or after `H` and takes that series set from
//! the storage node ([`super::handover`]), so a series that vanished during
//! the move still gets its stale marker. Every slot is scraped once, also
//! when the storage node is away at the handover.

use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, Notify};
use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use scrapegrid_proto::v1 as pb;

use super::handover;
use super::http_client::TargetClient;
use super::state::{Inherited, TargetState};
use crate::batch::{ScrapeBatch, TargetMetadata};
use crate::ingest::IngestHandle;
use crate::metrics;
use crate::target::TargetSpec;

/// How a loop ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum StopMode {
    /// Shut down or moved elsewhere: no stale markers.
    Quiet = 0,
    /// Left discovery: stale markers for every series.
    Gone = 1,
}

/// Control of a running loop.
pub struct LoopControl {
    pub cancel: CancellationToken,
    pub mode: Arc<AtomicU8>,
    pub health: Arc<Mutex<pb::TargetHealth>>,
    /// Set when a new loop replaces this one: on a quiet stop the loop sends
    /// its series, metadata and next slot there instead of dropping them.
    pub handoff: Mutex<Option<oneshot::Sender<Handoff>>>,
    /// The handover time of a target that moved away (0: none).
    pub stop_at_ms: AtomicI64,
    /// Wakes the loop when `stop_at_ms` is set.
    pub wake: Notify,
}

impl LoopControl {
    pub fn new(cancel: CancellationToken, health: pb::TargetHealth) -> Self {
        Self {
            cancel,
            mode: Arc::new(AtomicU8::new(StopMode::Quiet as u8)),
            health: Arc::new(Mutex::new(health)),
            handoff: Mutex::new(None),
            stop_at_ms: AtomicI64::new(0),
            wake: Notify::new(),
        }
    }

    pub fn stop(&self, mode: StopMode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
        self.cancel.cancel();
    }

    /// Ends the loop at the handover time `at_ms`: it scrapes the slots
    /// before it, then hands its series over. `at_ms <= 0` hands over now.
    pub fn hand_over_at(&self, at_ms: i64) {
        self.stop_at_ms.store(at_ms.max(1), Ordering::SeqCst);
        self.wake.notify_one();
    }
}

/// What a loop hands the loop that replaces it.
pub struct Handoff {
    pub state: Inherited,
    /// The interval the old loop scraped at, and the first of its slots it
    /// did not scrape.
    pub interval: i64,
    pub next_slot: i64,
}

/// Returns the target's offset inside its interval.
pub fn offset_ms(target_id: &str, interval_ms: i64) -> i64 {
    (xxhash_rust::xxh3::xxh3_64(target_id.as_bytes()) % interval_ms as u64) as i64
}

/// How far from its slot a scrape may start and still be stamped with the
/// slot's time (Prometheus's `--scrape.timestamp-tolerance`, 2 ms).
pub const TIMESTAMP_TOLERANCE_MS: i64 = 2;

/// Returns the timestamp of a scrape that starts at `now` for `slot`: the
/// slot itself when within the tolerance and the interval is long enough
/// (over 100 tolerances, as Prometheus's `scrape.adjust-timestamps`), so timer
/// jitter does not cost chunk space; otherwise `now`.
pub fn scrape_timestamp(now: i64, slot: i64, interval: i64) -> i64 {
    if interval > 100 * TIMESTAMP_TOLERANCE_MS && (now - slot).abs() <= TIMESTAMP_TOLERANCE_MS {
        slot
    } else {
        now
    }
}

/// Returns the first slot strictly after `now` (slots are `offset + k*interval`).
pub fn next_slot(now: i64, interval: i64, offset: i64) -> i64 {
    let base = now - now.rem_euclid(interval) + offset;
    if base > now {
        base
    } else {
        base + interval
    }
}

/// Returns the first slot of a loop that starts at `now`: the next slot, or
/// with a handover time the first slot at or after it.
pub fn first_slot(now: i64, interval: i64, offset: i64, start_at: i64) -> i64 {
    next_slot(now.max(start_at - 1), interval, offset)
}

/// Returns the first slot of a loop that replaces another one which had
/// not scraped `handed` yet (`(interval, next_slot)`): that slot, even if it
/// is a moment past (the old loop's timer fired as it was replaced), when
/// the interval is unchanged, it is not more than an interval ago, and it is
/// not before the new loop's handover time. Otherwise [`first_slot`].
pub fn resume_slot(
    now: i64,
    interval: i64,
    offset: i64,
    start_at: i64,
    handed: Option<(i64, i64)>,
) -> i64 {
    let first = first_slot(now, interval, offset, start_at);
    match handed {
        Some((old_interval, next))
            if old_interval == interval
                && next < first
                && next > now - interval
                && next >= start_at =>
        {
            next
        }
        _ => first,
    }
}

/// Runs the loop until cancelled. `inherit` delivers the series and metadata of the loop
/// this one replaces, once that loop has handed in its last batch.
pub async fn run(
    spec: Arc<TargetSpec>,
    client: TargetClient,
    ingest: IngestHandle,
    control: Arc<LoopControl>,
    inherit: Option<oneshot::Receiver<Handoff>>,
) {
    let interval = spec.interval.as_millis().max(1) as i64;
    let offset = offset_ms(&spec.id, interval);
    let mut state = TargetState::new(spec.clone());
    let mut handed = None;
    if let Some(rx) = inherit {
        // The old loop finishes its scrape in flight first (at most a timeout).
        let wait = spec.timeout + Duration::from_secs(1);
        tokio::select! {
            _ = control.cancel.cancelled() => {}
            r = tokio::time::timeout(wait, rx) => {
                if let Ok(Ok(h)) = r {
                    state.inherit(h.state);
                    handed = Some((h.interval, h.next_slot));
                }
            }
        }
    }
    let mut slot = resume_slot(now_ms(), interval, offset, spec.start_at_ms, handed);
    let mut incoming = spec
        .await_handover
        .then(|| handover::Incoming::start(&spec, &ingest));
    let mut last_ts = None;
    loop {
        if control.cancel.is_cancelled() {
            // Stopped (replaced, say) while it scraped: what it holds goes
            // to its successor below, not into a handover.
            break;
        }
        let stop_at = control.stop_at_ms.load(Ordering::SeqCst);
        if stop_at > 0 && slot >= stop_at {
            // Moved: the new owner scrapes from `stop_at` on.
            let ts = last_ts.unwrap_or(stop_at - 1);
            let series = state.series();
            let mut handover = ScrapeBatch::handover(&spec.id, spec.generation, ts, series);
            // The next owner sends the target's metadata (a newer
            // generation); this node's copy must not outlive the move.
            handover.metadata = Some(TargetMetadata::forgotten(&spec.labels));
            ingest.submit(handover).await;
            ::metrics::counter!(metrics::HANDOVERS, "outcome" => "sent").increment(1);
            return;
        }
        let wait = Duration::from_millis((slot - now_ms()).max(0) as u64);
        tokio::select! {
            _ = control.cancel.cancelled() => break,
            _ = control.wake.notified() => continue,
            _ = tokio::time::sleep(wait) => {}
        }
        if ingest.is_fenced(&spec.id, spec.generation) {
            // Moved while no control plane could tell this scraper: the
            // new owner's batches are stored, so stop without stale
            // markers (as a move does).
            tracing::warn!(target = %spec.url, generation = spec.generation, "the storage node fenced this target (another scraper owns a newer generation); stopping it until a control plane assigns it again");
            ::metrics::counter!(metrics::LOOPS_FENCED).increment(1);
            if let Ok(mut h) = control.health.lock() {
                h.health = pb::Health::Unknown as i32;
                h.last_error = "fenced: another scraper owns this target now".into();
            }
            return;
        }
        let ts = scrape_timestamp(now_ms(), slot, interval);
        let started = Instant::now();
        let fetched = match &spec.forced_error {
            Some(error) => Err(error.clone()),
            None => {
                client
                    .fetch(
                        &spec.url,
                        &spec.pool.accept_header,
                        spec.timeout,
                        spec.pool.body_size_limit,
                        &spec.pool.http,
                    )
                    .await
            }
        };
        let duration = started.elapsed().as_secs_f64();
        if let Some(h) = incoming.as_mut() {
            h.before_commit(&mut state, slot + interval).await;
        }
        last_ts = Some(ts);
        let (batch, report) = match fetched {
            Ok(f) => state.on_body(&f.body, f.content_type.as_deref(), ts, duration),
            Err(e) => state.on_error(e, ts, duration),
        };
        let result = if report.error.is_none() {
            "success"
        } else {
            "failure"
        };
        ::metrics::counter!(metrics::SCRAPES, "result" => result).increment(1);
        ::metrics::counter!(metrics::SAMPLES_SCRAPED).increment(report.samples_scraped);
        if let Some(e) = &report.error {
            tracing::debug!(target = %spec.url, error = %e, "scrape failed");
        }
        ingest.submit(batch).await;
        if let Some(h) = incoming.as_mut() {
            if let Some(stale) = h.after_commit(&spec, &state, ts) {
                ingest.submit(stale).await;
            }
            if h.is_done() {
                incoming = None;
            }
        }
        if let Ok(mut h) = control.health.lock() {
            *h = pb::TargetHealth {
                target_id: spec.id.clone(),
                generation: spec.generation,
                health: if report.error.is_none() {
                    pb::Health::Up
                } else {
                    pb::Health::Down
                } as i32,
                last_error: report.error.unwrap_or_default(),
                last_scrape_ms: ts,
                last_scrape_duration_seconds: duration,
                series_count: state.series_count() as u64,
            };
        }
        let now = now_ms();
        slot += interval;
        if slot <= now {
            // Missed slots (a scrape longer than the interval) are skipped.
            slot = next_slot(now, interval, offset);
        }
    }
    if control.mode.load(Ordering::SeqCst) == StopMode::Gone as u8 {
        if last_ts.is_some() {
            end_of_run(&mut state, &ingest, slot, interval).await;
        } else if state.has_metadata() {
            // Never scraped, but inherited metadata the storage node holds.
            let mut forget = ScrapeBatch::new(&spec.id, spec.generation, now_ms());
            forget.metadata = Some(TargetMetadata::forgotten(&spec.labels));
            ingest.submit(forget).await;
        }
    } else if let Some(tx) = control.handoff.lock().ok().and_then(|mut h| h.take()) {
        let _ = tx.send(Handoff {
            state: state.into_inherited(),
            interval,
            next_slot: slot,
        });
    }
}

/// Writes the stale markers of a target that left discovery, as Prometheus's
/// `endOfRunStaleness`: they carry the time of the scrape that would have
/// come next, and are written a tenth of an interval after the one after
/// it, so that a target which comes back meanwhile keeps its series (its
/// newer samples make the markers out of order).
async fn end_of_run(state: &mut TargetState, ingest: &IngestHandle, slot: i64, interval: i64) {
    let now = now_ms();
    let stale_at = if slot > now {
        slot
    } else {
        next_slot(now, interval, slot.rem_euclid(interval))
    };
    let write_at = stale_at + interval + interval / 10;
    tokio::time::sleep(Duration::from_millis((write_at - now).max(0) as u64)).await;
    let batch = state.end_of_run(stale_at);
    if !batch.is_empty() {
        ingest.submit(batch).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_snap_to_the_slot_within_the_tolerance() {
        assert_eq!(scrape_timestamp(10_002, 10_000, 15_000), 10_000);
        assert_eq!(scrape_timestamp(9_999, 10_000, 15_000), 10_000);
        assert_eq!(scrape_timestamp(10_003, 10_000, 15_000), 10_003);
        assert_eq!(
            scrape_timestamp(10_001, 10_000, 150),
            10_001,
            "short intervals are not aligned"
        );
    }

    #[test]
    fn a_replacing_loop_scrapes_the_slot_its_predecessor_did_not() {
        // interval 1000, offset 200; the old loop's next slot was 10_200.
        let cases = [
            // (now, start_at, handed, expected, why)
            (
                10_202,
                0,
                Some((1000, 10_200)),
                10_200,
                "replaced 2 ms after its slot: scraped at once",
            ),
            (
                10_100,
                0,
                Some((1000, 10_200)),
                10_200,
                "replaced before its slot: the same slot",
            ),
            (10_202, 0, None, 11_200, "nothing handed: the next slot"),
            (
                10_202,
                0,
                Some((2000, 10_200)),
                11_200,
                "another interval: its own grid",
            ),
            (
                11_300,
                0,
                Some((1000, 10_200)),
                12_200,
                "more than an interval ago: skipped",
            ),
            (
                10_202,
                11_200,
                Some((1000, 10_200)),
                11_200,
                "before its handover time: not its slot",
            ),
            (
                10_202,
                10_200,
                Some((1000, 10_200)),
                10_200,
                "at its handover time: its slot",
            ),
        ];
        for (now, start_at, handed, expected, why) in cases {
            assert_eq!(
                resume_slot(now, 1000, 200, start_at, handed),
                expected,
                "{why}"
            );
        }
    }

    #[test]
    fn slots_follow_the_offset() {
        assert_eq!(next_slot(10_500, 1000, 200), 11_200);
        assert_eq!(next_slot(10_100, 1000, 200), 10_200);
        assert_eq!(next_slot(10_200, 1000, 200), 11_200);
        assert_eq!(first_slot(10_100, 1000, 200, 0), 10_200);
        assert_eq!(
            first_slot(10_100, 1000, 200, 11_200),
            11_200,
            "a handover slot itself is the first"
        );
        assert_eq!(first_slot(10_100, 1000, 200, 11_201), 12_200);
        assert_eq!(
            first_slot(12_500, 1000, 200, 11_200),
            13_200,
            "a handover time already past: the next slot"
        );
        let o = offset_ms("abc", 15_000);
        assert!((0..15_000).contains(&o));
        assert_eq!(
            o,
            offset_ms("abc", 15_000),
            "the phase depends only on the target"
        );
    }
}
