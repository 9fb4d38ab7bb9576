//! Exemplars through the real writer and database: Prometheus's duplicate,
//! out-of-order and label-length rules, atomicity with the batch, the
//! limit, and what survives a restart.

use std::sync::Arc;

use scrapegrid_common::{CompactLabels, Labels};
use scrapegrid_proto::v1 as pb;

use crate::batch::{Batch, BatchExemplar, Sample};
use crate::exemplars::{self, Exemplar};
use crate::index::Matcher;
use crate::writer::*;

fn ex(trace: &str, value: f64, ts_ms: i64, has_ts: bool) -> Exemplar {
    Exemplar {
        labels: Labels::from_pairs([("trace_id", trace)]),
        value,
        ts_ms,
        has_ts,
    }
}

/// A scrape at `ts` of one sample per series in `series`, with `exemplars`
/// as (series index, exemplar).
fn batch(seq: u64, ts: i64, series: &[&str], exemplars: Vec<(u32, Exemplar)>) -> Batch {
    Batch {
        sequence: seq,
        target_id: "t".into(),
        target_generation: 1,
        timestamp_ms: ts,
        series: series
            .iter()
            .map(|n| Arc::new(CompactLabels::from(Labels::from_pairs([("__name__", *n)]))).into())
            .collect(),
        samples: (0..series.len() as u32)
            .map(|series| Sample {
                series,
                ts_ms: ts,
                value: 1.0,
            })
            .collect(),
        handover: None,
        exemplars: exemplars
            .into_iter()
            .map(|(series, exemplar)| BatchExemplar { series, exemplar })
            .collect(),
        histograms: Vec::new(),
    }
}

/// A writer over a database in a directory that outlives it, so the node
/// can be closed and opened again.
struct Node {
    dir: tempfile::TempDir,
    db: Option<Arc<Db>>,
    writer: Option<WriterHandle>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Node {
    fn open(max_exemplars: usize) -> Node {
        let mut n = Node {
            dir: tempfile::tempdir().unwrap(),
            db: None,
            writer: None,
            thread: None,
        };
        n.start(max_exemplars);
        n
    }

    fn start(&mut self, max_exemplars: usize) {
        let db = Arc::new(Db::open(self.dir.path()).unwrap());
        let options = WriterOptions {
            max_exemplars,
            ..Default::default()
        };
        let (w, t) = spawn_with(db.clone(), options).unwrap();
        self.db = Some(db);
        self.writer = Some(w);
        self.thread = Some(t);
    }

    /// Stops the writer, closes RocksDB and opens both again: only what is
    /// on disk remains.
    fn reopen(&mut self, max_exemplars: usize) {
        self.stop();
        self.start(max_exemplars);
    }

    fn stop(&mut self) {
        drop(self.writer.take());
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        if let Some(db) = self.db.take() {
            Arc::try_unwrap(db).expect("only the node holds the database");
        }
    }

    fn db(&self) -> &Db {
        self.db.as_ref().unwrap()
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

    /// Returns the stored exemplars per metric name.
    fn stored(&self) -> Vec<(String, Vec<Exemplar>)> {
        let all = vec![Matcher::regex("__name__", ".+").unwrap()];
        exemplars::select(self.db(), &[all], i64::MIN, i64::MAX)
            .unwrap()
            .into_iter()
            .map(|s| (s.labels.get("__name__").unwrap().to_string(), s.exemplars))
            .collect()
    }

    fn sample_count(&self, id: u64) -> usize {
        samples::read(self.db(), id, i64::MIN, i64::MAX)
            .unwrap()
            .len()
    }
}

/// Stops the writer and closes the database before the directory goes.
impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}

fn raw_exemplar_keys(db: &Db) -> usize {
    db.raw()
        .iterator_cf(db.cf(keys::CF_EXEMPLARS), rocksdb::IteratorMode::Start)
        .count()
}

fn applied(ack: &pb::Ack) -> bool {
    ack.status() == pb::AckStatus::Applied
}

#[tokio::test]
async fn duplicates_are_stored_once_and_out_of_order_is_dropped() {
    let n = Node::open(100);
    // The same exemplar without a timestamp on every scrape: one stored.
    for (seq, ts) in [(1, 1_000), (2, 2_000)] {
        let ack = n
            .send(batch(seq, ts, &["a"], vec![(0, ex("x", 1.0, ts, false))]))
            .await;
        assert!(applied(&ack));
    }
    // An explicit timestamp equal to the newest, other labels: out of order.
    // Then an older one: out of order. Then a newer one: stored.
    let ack = n
        .send(batch(
            3,
            3_000,
            &["a"],
            vec![
                (0, ex("y", 1.0, 1_000, true)),
                (0, ex("z", 1.0, 500, true)),
                (0, ex("w", 2.0, 3_000, true)),
            ],
        ))
        .await;
    assert!(applied(&ack), "dropped exemplars do not fail the batch");
    // The same explicit exemplar again: a duplicate, even at a later scrape.
    let ack = n
        .send(batch(
            4,
            4_000,
            &["a"],
            vec![(0, ex("w", 2.0, 3_000, true))],
        ))
        .await;
    assert!(applied(&ack));
    assert_eq!(
        n.stored(),
        [(
            "a".to_string(),
            vec![ex("x", 1.0, 1_000, false), ex("w", 2.0, 3_000, true)]
        )]
    );
    assert_eq!(n.sample_count(1), 4, "every scrape's sample is stored");
}

#[tokio::test]
async fn later_exemplars_of_one_batch_are_checked_against_earlier_ones() {
    let n = Node::open(100);
    let ack = n
        .send(batch(
            1,
            1_000,
            &["a", "b"],
            vec![
                (0, ex("x", 1.0, 10, true)),
                (1, ex("y", 1.0, 10, true)),
                // Same series again in one batch: equal is a duplicate,
                // not newer is out of order.
                (0, ex("x", 1.0, 10, true)),
                (0, ex("x2", 1.0, 10, true)),
                (0, ex("x3", 1.0, 11, true)),
            ],
        ))
        .await;
    assert!(applied(&ack));
    assert_eq!(
        n.stored(),
        [
            (
                "a".to_string(),
                vec![ex("x", 1.0, 10, true), ex("x3", 1.0, 11, true)]
            ),
            ("b".to_string(), vec![ex("y", 1.0, 10, true)]),
        ]
    );
}

#[tokio::test]
async fn labels_over_128_runes_are_dropped_and_the_scrape_is_stored() {
    let n = Node::open(100);
    let long = Exemplar {
        labels: Labels::from_pairs([("trace_id", "x".repeat(121))]),
        ..ex("", 1.0, 1_000, false)
    };
    let fits = Exemplar {
        labels: Labels::from_pairs([("trace_id", "x".repeat(120))]),
        ..ex("", 1.0, 1_000, false)
    };
    let ack = n
        .send(batch(
            1,
            1_000,
            &["a", "b"],
            vec![(0, long), (1, fits.clone())],
        ))
        .await;
    assert!(applied(&ack));
    assert_eq!(n.stored(), [("b".to_string(), vec![fits])]);
    assert_eq!(n.sample_count(1), 1, "the sample of the dropped exemplar");
}

#[tokio::test]
async fn exemplars_are_written_with_their_batch_or_not_at_all() {
    let n = Node::open(100);
    assert!(applied(
        &n.send(batch(
            1,
            1_000,
            &["a"],
            vec![(0, ex("x", 1.0, 1_000, true))]
        ))
        .await
    ));
    // A resent batch (same sequence) is a duplicate: nothing of it is
    // written, its exemplar included.
    let ack = n
        .send(batch(
            1,
            1_000,
            &["a"],
            vec![(0, ex("resent", 1.0, 5_000, true))],
        ))
        .await;
    assert_eq!(ack.status(), pb::AckStatus::Duplicate);
    // A fenced batch (older generation than one seen, not older than its
    // first scrape) stores neither samples nor exemplars.
    let mut newer = batch(2, 2_000, &["a"], vec![]);
    newer.target_generation = 2;
    assert!(applied(&n.send(newer).await));
    let fenced = batch(3, 3_000, &["b"], vec![(0, ex("fenced", 1.0, 6_000, true))]);
    let ack = n.send(fenced).await;
    assert_eq!(ack.reason(), pb::RefuseReason::Fenced);
    assert_eq!(
        n.stored(),
        [("a".to_string(), vec![ex("x", 1.0, 1_000, true)])]
    );
    assert_eq!(raw_exemplar_keys(n.db()), 1);
    let b_exists = crate::index::Index::new(n.db())
        .select(&[Matcher::equal("__name__", "b")])
        .unwrap();
    assert!(
        b_exists.is_empty(),
        "the fenced batch's series is not created"
    );
}

#[tokio::test]
async fn exemplars_and_their_state_survive_a_restart() {
    let mut n = Node::open(100);
    let ack = n
        .send(batch(
            1,
            1_000,
            &["a", "b"],
            vec![
                (0, ex("x", 1.0, 1_000, false)),
                (1, ex("y", 2.0, 900, true)),
            ],
        ))
        .await;
    assert!(applied(&ack));
    n.reopen(100);
    let before = vec![
        ("a".to_string(), vec![ex("x", 1.0, 1_000, false)]),
        ("b".to_string(), vec![ex("y", 2.0, 900, true)]),
    ];
    assert_eq!(n.stored(), before, "acked exemplars are on disk");
    // The newest per series is known again: the same exemplar is a
    // duplicate, an older one is out of order.
    let ack = n
        .send(batch(
            2,
            2_000,
            &["a", "b"],
            vec![
                (0, ex("x", 1.0, 2_000, false)),
                (1, ex("old", 2.0, 899, true)),
            ],
        ))
        .await;
    assert!(applied(&ack));
    assert_eq!(n.stored(), before);
    assert_eq!(
        n.writer.as_ref().unwrap().hello("s".into()).await.unwrap(),
        2
    );
}

#[tokio::test]
async fn the_oldest_arrivals_go_beyond_the_limit() {
    let mut n = Node::open(3);
    for seq in 1..=4 {
        let ts = seq as i64 * 1_000;
        let ack = n
            .send(batch(
                seq,
                ts,
                &["a", "b"],
                // Values differ, or they would be duplicates.
                vec![
                    (0, ex("a", ts as f64, ts, false)),
                    (1, ex("b", ts as f64, ts, false)),
                ],
            ))
            .await;
        assert!(applied(&ack));
    }
    // 8 arrived, the last 3 are kept: a@4, b@3, b@4 (a@3 went first).
    assert_eq!(
        n.stored(),
        [
            ("a".to_string(), vec![ex("a", 4e3, 4_000, false)]),
            (
                "b".to_string(),
                vec![ex("b", 3e3, 3_000, false), ex("b", 4e3, 4_000, false)]
            ),
        ]
    );
    assert_eq!(raw_exemplar_keys(n.db()), 3);

    // A smaller limit after a restart deletes the oldest at start.
    n.reopen(1);
    assert_eq!(
        n.stored(),
        [("b".to_string(), vec![ex("b", 4e3, 4_000, false)])]
    );
    // Series a has none left, so any exemplar of it is accepted again, an
    // older one too (Prometheus drops the series' index entry).
    let ack = n
        .send(batch(
            5,
            5_000,
            &["a"],
            vec![(0, ex("a-old", 1.0, 10, true))],
        ))
        .await;
    assert!(applied(&ack));
    assert_eq!(
        n.stored(),
        [("a".to_string(), vec![ex("a-old", 1.0, 10, true)])]
    );

    // Zero keeps none: the stored one goes at start, new ones are dropped.
    n.reopen(0);
    let ack = n
        .send(batch(
            6,
            6_000,
            &["a"],
            vec![(0, ex("z", 1.0, 6_000, true))],
        ))
        .await;
    assert!(applied(&ack));
    assert!(n.stored().is_empty());
    assert_eq!(raw_exemplar_keys(n.db()), 0);
}

#[test]
fn load_orders_by_arrival() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let mut wb = DbBatch::default();
    exemplars::put(&db, &mut wb, 2, 100, &ex("b", 1.0, 5, true));
    exemplars::put(&db, &mut wb, 1, 200, &ex("a2", 1.0, 7, true));
    exemplars::put(&db, &mut wb, 1, 50, &ex("a1", 1.0, 6, true));
    db.write_unsynced(wb).unwrap();
    let loaded = exemplars::load(&db).unwrap();
    let order: Vec<_> = loaded
        .keys
        .iter()
        .map(|k| keys::decode_exemplar_key(k).unwrap())
        .collect();
    assert_eq!(order, [(1, 50, 6), (2, 100, 5), (1, 200, 7)]);
    assert_eq!(loaded.newest[&1].1, ex("a2", 1.0, 7, true));
    assert_eq!(loaded.newest[&2].1, ex("b", 1.0, 5, true));
}
