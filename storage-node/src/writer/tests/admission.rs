//! Sample admission through the real writer and database: Prometheus's
//! out-of-order, duplicate and stale-marker rules.

use std::sync::Arc;
use std::time::Duration;

use scrapegrid_common::{CompactLabels, Labels};
use scrapegrid_proto::v1 as pb;

use crate::batch::{Batch, Sample};
use crate::writer::*;

const STALE: u64 = scrapegrid_proto::STALE_NAN_BITS;

fn labels(name: &str) -> Arc<CompactLabels> {
    Arc::new(CompactLabels::from(Labels::from_pairs([(
        "__name__", name,
    )])))
}

/// A batch of `(series index, ts, value)` samples over `series`.
fn batch(seq: u64, series: &[&str], points: &[(u32, i64, f64)]) -> Batch {
    Batch {
        sequence: seq,
        target_id: String::new(),
        target_generation: 0,
        timestamp_ms: 0,
        handover: None,
        exemplars: Vec::new(),
        histograms: Vec::new(),
        series: series.iter().map(|n| labels(n).into()).collect(),
        samples: points
            .iter()
            .map(|&(series, ts_ms, value)| Sample {
                series,
                ts_ms,
                value,
            })
            .collect(),
    }
}

/// Returns the current value of `scrapegrid_storage_samples_rejected_total`
/// for `reason`. The recorder is process-wide, so tests compare deltas.
fn rejected(reason: &str) -> u64 {
    let text = metrics::handle().render();
    let prefix = format!("{}{{reason=\"{reason}\"}} ", metrics::SAMPLES_REJECTED);
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
}

/// Returns the current value of the unlabelled counter `name`.
fn counted(name: &str) -> u64 {
    let prefix = format!("{name} ");
    let text = metrics::handle().render();
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
}

struct Node {
    db: Arc<Db>,
    writer: Option<WriterHandle>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

/// Stops the writer and waits for it, so the database closes before the test
/// process exits (a thread still closing RocksDB while librocksdb's static
/// destructors run crashes the process).
impl Drop for Node {
    fn drop(&mut self) {
        drop(self.writer.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Node {
    fn open(window: Duration) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(dir.path()).unwrap());
        let mut n = Node {
            db,
            writer: None,
            thread: None,
            _dir: Some(dir),
        };
        n.start(window);
        n
    }

    fn start(&mut self, window: Duration) {
        let (w, t) = spawn_with(
            self.db.clone(),
            WriterOptions {
                out_of_order_time_window: window,
                ..Default::default()
            },
        )
        .unwrap();
        self.writer = Some(w);
        self.thread = Some(t);
    }

    /// Stops the writer thread and starts a new one on the same database:
    /// the in-memory state is gone.
    fn restart(&mut self, window: Duration) {
        drop(self.writer.take());
        self.thread.take().unwrap().join().unwrap();
        self.start(window);
    }

    async fn send(&self, b: Batch) -> pb::Ack {
        let w = self.writer.as_ref().unwrap();
        w.submit("s".into(), b)
            .await
            .unwrap()
            .await
            .unwrap()
            .unwrap()
    }

    /// Returns (ts, value bits) of every stored sample of series `id`.
    fn stored(&self, id: u64) -> Vec<(i64, u64)> {
        samples::read(&self.db, id, i64::MIN, i64::MAX)
            .unwrap()
            .into_iter()
            .map(|s| (s.t, s.v.to_bits()))
            .collect()
    }
}

fn bits(v: f64) -> u64 {
    v.to_bits()
}

#[test]
fn check_follows_prometheus_appendable() {
    use Verdict::*;
    let h = |t, v: f64| Some(Head { t, v: v.to_bits() });
    let stale = Some(Head { t: 10, v: STALE });
    let nan = f64::NAN.to_bits();
    #[rustfmt::skip]
    let cases = [
        // (newest, t, value bits, head max t, window) -> verdict
        (None,          5,  bits(1.0), i64::MIN, 0,  Append),
        (h(10, 1.0),    11, bits(1.0), 10,       0,  Append),
        (h(10, 1.0),    10, bits(1.0), 10,       0,  NoOp),
        (h(10, 1.0),    10, bits(2.0), 10,       0,  Duplicate),
        (h(10, 0.0),    10, bits(-0.0), 10,      0,  Duplicate),
        (h(10, 1.0),    9,  bits(1.0), 10,       0,  OutOfOrder),
        (stale,         10, STALE,     10,       0,  NoOp),
        (stale,         10, nan,       10,       0,  Duplicate),
        (stale,         10, bits(1.0), 10,       0,  Duplicate),
        (h(10, 1.0),    10, STALE,     10,       0,  Duplicate),
        (stale,         9,  STALE,     10,       0,  OutOfOrder),
        // Window: relative to the newest timestamp written to any series.
        (h(10, 1.0),    5,  bits(1.0), 10,       5,  AppendOutOfOrder),
        (h(10, 1.0),    4,  bits(1.0), 10,       5,  TooOld),
        (h(10, 1.0),    8,  bits(1.0), 20,       5,  TooOld),
        (h(10, 1.0),    10, bits(2.0), 20,       5,  Duplicate),
        (h(i64::MIN + 1, 1.0), i64::MIN, bits(1.0), i64::MIN + 1, 5, AppendOutOfOrder),
    ];
    for (newest, t, v, max_t, window, want) in cases {
        assert_eq!(
            check(newest, t, v, max_t, window),
            want,
            "{newest:?} t={t} v={v:#x} max_t={max_t} window={window}"
        );
    }
}

#[tokio::test]
async fn out_of_order_rejected_and_counted_rest_stored() {
    let n = Node::open(Duration::ZERO);
    let ack = n
        .send(batch(1, &["a", "b"], &[(0, 1000, 1.0), (1, 1000, 1.0)]))
        .await;
    assert_eq!(ack.status(), pb::AckStatus::Applied);

    let before = rejected(metrics::REJECT_OUT_OF_ORDER);
    // a goes back in time, b moves on: the batch is applied, a's sample
    // dropped, b's stored.
    let ack = n
        .send(batch(2, &["a", "b"], &[(0, 500, 9.0), (1, 2000, 2.0)]))
        .await;
    assert_eq!(ack.status(), pb::AckStatus::Applied);
    assert_eq!(n.stored(1), [(1000, bits(1.0))]);
    assert_eq!(n.stored(2), [(1000, bits(1.0)), (2000, bits(2.0))]);
    assert!(rejected(metrics::REJECT_OUT_OF_ORDER) > before);
    // The sequence was applied: a resend is a duplicate batch.
    let ack = n.send(batch(2, &["a"], &[(0, 3000, 1.0)])).await;
    assert_eq!(ack.status(), pb::AckStatus::Duplicate);

    // Within one batch, samples are checked in order.
    let ack = n
        .send(batch(
            3,
            &["a"],
            &[(0, 3000, 3.0), (0, 2500, 2.5), (0, 4000, 4.0)],
        ))
        .await;
    assert_eq!(ack.status(), pb::AckStatus::Applied);
    assert_eq!(
        n.stored(1),
        [(1000, bits(1.0)), (3000, bits(3.0)), (4000, bits(4.0))]
    );
}

#[tokio::test]
async fn duplicate_timestamp_same_value_is_a_no_op_different_value_rejected() {
    let n = Node::open(Duration::ZERO);
    n.send(batch(1, &["a"], &[(0, 1000, 1.5)])).await;
    let before = rejected(metrics::REJECT_DUPLICATE);
    let ack = n.send(batch(2, &["a"], &[(0, 1000, 1.5)])).await;
    assert_eq!(ack.status(), pb::AckStatus::Applied);
    assert_eq!(rejected(metrics::REJECT_DUPLICATE), before);
    let ack = n
        .send(batch(3, &["a", "b"], &[(0, 1000, 7.0), (1, 1000, 7.0)]))
        .await;
    assert_eq!(ack.status(), pb::AckStatus::Applied);
    assert_eq!(n.stored(1), [(1000, bits(1.5))], "never overwritten");
    assert_eq!(n.stored(2), [(1000, bits(7.0))], "the rest is stored");
    assert!(rejected(metrics::REJECT_DUPLICATE) > before);
    // The same timestamp twice in one batch: the second is checked
    // against the first.
    n.send(batch(4, &["c"], &[(0, 5, 1.0), (0, 5, 1.0), (0, 5, 2.0)]))
        .await;
    assert_eq!(n.stored(3), [(5, bits(1.0))]);
}

#[tokio::test]
async fn stale_markers_follow_the_same_rules_bit_exactly() {
    let n = Node::open(Duration::ZERO);
    let stale = f64::from_bits(STALE);
    n.send(batch(1, &["a"], &[(0, 1000, 1.0), (0, 2000, stale)]))
        .await;
    // The same stale marker again: accepted, nothing changes.
    n.send(batch(2, &["a"], &[(0, 2000, stale)])).await;
    // A value, or another NaN, at the stale marker's timestamp: rejected.
    n.send(batch(3, &["a"], &[(0, 2000, 5.0), (0, 2000, f64::NAN)]))
        .await;
    // A stale marker older than the newest: out of order.
    n.send(batch(4, &["a"], &[(0, 1500, stale)])).await;
    assert_eq!(n.stored(1), [(1000, bits(1.0)), (2000, STALE)]);
    // A stale marker at a value's timestamp: rejected as a duplicate.
    n.send(batch(5, &["a"], &[(0, 3000, 3.0), (0, 3000, stale)]))
        .await;
    assert_eq!(n.stored(1).last(), Some(&(3000, bits(3.0))));
}

#[tokio::test]
async fn state_is_loaded_lazily_after_a_restart() {
    let mut n = Node::open(Duration::ZERO);
    n.send(batch(
        1,
        &["a", "b"],
        &[(0, 1000, 1.0), (0, 2000, 2.0), (1, 1000, 1.0)],
    ))
    .await;
    n.restart(Duration::ZERO);
    n.send(batch(
        2,
        &["a", "b", "c"],
        &[
            (0, 1500, 9.0), // older than a's newest (2000): out of order
            (0, 2000, 8.0), // a's newest with another value: duplicate
            (1, 1000, 1.0), // b's newest again: no-op
            (1, 3000, 3.0), // newer: stored
            (2, 10, 1.0),   // new series
        ],
    ))
    .await;
    assert_eq!(n.stored(1), [(1000, bits(1.0)), (2000, bits(2.0))]);
    assert_eq!(n.stored(2), [(1000, bits(1.0)), (3000, bits(3.0))]);
    assert_eq!(n.stored(3), [(10, bits(1.0))]);
    // A first sample newer than everything stored after a restart.
    n.restart(Duration::ZERO);
    n.send(batch(3, &["a"], &[(0, 5000, 5.0), (0, 4000, 4.0)]))
        .await;
    assert_eq!(n.stored(1).last(), Some(&(5000, bits(5.0))));
    assert_eq!(n.stored(1).len(), 3, "4000 came after 5000: out of order");
}

#[tokio::test]
async fn out_of_order_window_accepts_recent_samples() {
    let n = Node::open(Duration::from_secs(10));
    n.send(batch(
        1,
        &["a", "b"],
        &[(0, 100_000, 1.0), (1, 50_000, 1.0)],
    ))
    .await;
    let too_old = rejected(metrics::REJECT_TOO_OLD);
    n.send(batch(
        2,
        &["a", "b"],
        &[
            (0, 95_000, 2.0), // within 10s of the newest: stored
            (0, 80_000, 3.0), // too old
            (0, 95_000, 4.0), // already stored: dropped, not overwritten
            (1, 45_000, 5.0), // b is behind, but the window is relative
                              // to the newest written (100s): too old
        ],
    ))
    .await;
    assert_eq!(n.stored(1), [(95_000, bits(2.0)), (100_000, bits(1.0))]);
    assert_eq!(n.stored(2), [(50_000, bits(1.0))]);
    assert!(rejected(metrics::REJECT_TOO_OLD) >= too_old + 2);
    // The newest is unchanged: its timestamp with another value is still a
    // duplicate.
    n.send(batch(3, &["a"], &[(0, 100_000, 7.0)])).await;
    assert_eq!(n.stored(1).last(), Some(&(100_000, bits(1.0))));
}

/// A moved target: the previous owner's last scrape (generation 1, before the
/// handover time) reaches the node after the successor's first batch
/// (generation 2). It is written out of order, not lost; the successor's
/// samples stay as they are, and the same scrape from the successor's
/// generation would still be refused as out of order.
#[tokio::test]
async fn a_previous_owners_late_scrape_is_written_out_of_order() {
    let node = Node::open(Duration::ZERO);
    let late = || counted(metrics::SAMPLES_BEFORE_SUCCESSOR);
    let late_before = late();
    let target = |mut b: Batch, generation: u64, ts: i64| {
        b.target_id = "t".into();
        b.target_generation = generation;
        b.timestamp_ms = ts;
        b
    };
    let ack = node
        .send(target(batch(1, &["m"], &[(0, 2000, 2.0)]), 2, 2000))
        .await;
    assert_eq!(ack.status(), pb::AckStatus::Applied);
    let ack = node
        .send(target(batch(2, &["m"], &[(0, 1500, 1.5)]), 1, 1500))
        .await;
    assert_eq!(ack.status(), pb::AckStatus::Applied, "{}", ack.message);
    assert_eq!(node.stored(1), [(1500, bits(1.5)), (2000, bits(2.0))]);
    assert_eq!(late(), late_before + 1);

    // The successor's own late sample is out of order as ever.
    let ooo = rejected(metrics::REJECT_OUT_OF_ORDER);
    let ack = node
        .send(target(batch(3, &["m"], &[(0, 1000, 1.0)]), 2, 1000))
        .await;
    assert_eq!(ack.status(), pb::AckStatus::Applied);
    assert_eq!(rejected(metrics::REJECT_OUT_OF_ORDER), ooo + 1);
    assert_eq!(node.stored(1), [(1500, bits(1.5)), (2000, bits(2.0))]);

    // And the previous owner at or after the successor's first batch is fenced.
    let ack = node
        .send(target(batch(4, &["m"], &[(0, 2500, 9.0)]), 1, 2500))
        .await;
    assert_eq!(ack.reason(), pb::RefuseReason::Fenced);
}

/// An old owner that did not hear of the move (paused, then cut off from
/// the control planes) stores a scrape from after the move before the new
/// owner's first batch comes (its link to the node was down). The new
/// owner's scrapes of the slots the old owner missed are written out of
/// order, not lost; a slot both scraped keeps the sample stored first; the
/// old owner is fenced from the new owner's first scrape on, and the new
/// owner's own out-of-order samples past the overrun are refused as ever.
#[tokio::test]
async fn a_new_owners_scrapes_behind_an_old_owners_overrun_are_written() {
    let node = Node::open(Duration::ZERO);
    let behind = || counted(metrics::SAMPLES_AFTER_OVERRUN);
    let behind_before = behind();
    let seq = std::cell::Cell::new(0);
    let send = |generation: u64, ts: i64, v: f64| {
        seq.set(seq.get() + 1);
        let mut b = batch(seq.get(), &["m"], &[(0, ts, v)]);
        b.target_id = "t".into();
        b.target_generation = generation;
        b.timestamp_ms = ts;
        node.send(b)
    };
    // The old owner, then paused through 2000 and 3000; it resumes at 4000.
    for (ts, v) in [(1000, 1.0), (4000, 4.1)] {
        assert_eq!(send(1, ts, v).await.status(), pb::AckStatus::Applied);
    }
    // The new owner's backlog: 2000 and 3000 are the slots the old owner
    // missed; at 4000 both scraped.
    let duplicates = rejected(metrics::REJECT_DUPLICATE);
    for (ts, v) in [(2000, 2.0), (3000, 3.0), (4000, 4.0), (5000, 5.0)] {
        let ack = send(2, ts, v).await;
        assert_eq!(ack.status(), pb::AckStatus::Applied, "{}", ack.message);
    }
    assert_eq!(
        node.stored(1),
        [
            (1000, bits(1.0)),
            (2000, bits(2.0)),
            (3000, bits(3.0)),
            (4000, bits(4.1)),
            (5000, bits(5.0)),
        ]
    );
    assert_eq!(behind(), behind_before + 2);
    assert_eq!(rejected(metrics::REJECT_DUPLICATE), duplicates + 1);

    let ack = send(1, 6000, 6.1).await;
    assert_eq!(ack.reason(), pb::RefuseReason::Fenced, "the old owner");
    let ooo = rejected(metrics::REJECT_OUT_OF_ORDER);
    assert_eq!(send(2, 4500, 4.5).await.status(), pb::AckStatus::Applied);
    assert_eq!(
        rejected(metrics::REJECT_OUT_OF_ORDER),
        ooo + 1,
        "past the overrun"
    );
    assert_eq!(node.stored(1).len(), 5);
}

/// A remote write is all or nothing: one rejected sample refuses the
/// request, and the heads its other samples set are given back, so the
/// same samples, sent again without the bad one, are all written.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_refused_write_leaves_no_heads_behind() {
    let n = Node::open(Duration::ZERO);
    let w = n.writer.as_ref().unwrap();
    let pt = |series, ts_ms, value| Sample {
        series,
        ts_ms,
        value,
    };
    let series = || vec![labels("a"), labels("b")];
    w.write(series(), vec![pt(0, 10, 1.0), pt(1, 20, 1.0)], Vec::new())
        .await
        .unwrap();
    // a at 30 (twice: the second undo restores the first's), then b out of order.
    let refused = w
        .write(
            series(),
            vec![pt(0, 30, 2.0), pt(0, 40, 3.0), pt(1, 15, 2.0)],
            Vec::new(),
        )
        .await;
    assert!(matches!(refused, Err(Error::BadData(_))), "{refused:?}");
    // a at 30 with another value: a duplicate had the refused write's head
    // for a stayed, accepted now.
    w.write(series(), vec![pt(0, 30, 5.0), pt(0, 35, 6.0)], Vec::new())
        .await
        .unwrap();
    assert_eq!(
        n.stored(1),
        vec![(10, bits(1.0)), (30, bits(5.0)), (35, bits(6.0))]
    );
    assert_eq!(n.stored(2), vec![(20, bits(1.0))]);
}
