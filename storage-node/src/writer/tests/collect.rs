//! Series collection ([`super::super::collect`]): series retention left
//! without samples leave the index; one that comes back, even named by an
//! ingest stream that learnt its old id, is stored under a new one.

use super::super::*;
use crate::batch::{resolve, RefTable};
use crate::index::{Index, MatchOp, Matcher, TimeRange};
use crate::retention::{self, RetentionConfig};
use scrapegrid_proto::v1 as pb;
use tokio_util::sync::CancellationToken;

const DAY: i64 = 24 * 3600 * 1000;

fn names(db: &Db) -> Vec<String> {
    Index::new(db)
        .label_values("__name__", &[], TimeRange::ALL)
        .unwrap()
}

fn ids_of(db: &Db, name: &str) -> Vec<u64> {
    let m = Matcher {
        name: "__name__".into(),
        op: MatchOp::Equal(name.into()),
    };
    Index::new(db)
        .select(&[m])
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

fn exemplar_keys(db: &Db) -> usize {
    db.raw()
        .iterator_cf(db.cf(keys::CF_EXEMPLARS), rocksdb::IteratorMode::Start)
        .count()
}

/// A batch of one stream: `defs` defines a (ref 1) and b (ref 2), `refs`
/// names which series get a sample (value = sequence) at `ts`.
fn wire(seq: u64, ts: i64, defs: bool, refs: &[u64]) -> pb::Batch {
    let def = |r: u64, name: &str| pb::SeriesDef {
        r#ref: r,
        labels: vec![pb::Label {
            name: "__name__".into(),
            value: name.into(),
        }],
    };
    pb::Batch {
        sequence: seq,
        target_id: "t".into(),
        target_generation: 1,
        timestamp_ms: ts,
        new_series: match defs {
            true => vec![def(1, "a"), def(2, "b")],
            false => Vec::new(),
        },
        refs: refs.to_vec(),
        values: vec![seq as f64; refs.len()],
        ..Default::default()
    }
}

/// A writer with one stream that stored a and b at time 1 s and b alone
/// 10 days later (b's first chunk is cut at the range boundary, a's open
/// chunk goes idle and is cut at the checkpoint), then a retention pass
/// that keeps one day: both lose their old chunk, only a is left with
/// nothing, and the pass lists it.
struct Aged {
    _dir: tempfile::TempDir,
    db: Arc<Db>,
    writer: WriterHandle,
    thread: std::thread::JoinHandle<()>,
    refs: RefTable,
    unsampled: Vec<u64>,
    a: u64,
    b: u64,
}

impl Aged {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(dir.path()).unwrap());
        let (writer, thread) = spawn(db.clone()).unwrap();
        writer.hello("s".into()).await.unwrap();
        let mut t = Self {
            _dir: dir,
            db,
            writer,
            thread,
            refs: RefTable::default(),
            unsampled: Vec::new(),
            a: 0,
            b: 0,
        };
        // a's sample carries an exemplar; the samples are stamped at 1 s
        // in a scrape nearly 10 days later, so retention keeps the
        // exemplar (it goes by the time of the scrape that brought it).
        let mut first = wire(1, 10 * DAY - 1000, true, &[1, 2]);
        first.timestamps_ms = vec![1000, 1000];
        first.exemplars = vec![pb::Exemplar {
            r#ref: 1,
            labels: vec![pb::Label {
                name: "trace_id".into(),
                value: "x".into(),
            }],
            value: 1.0,
            timestamp_ms: 1000,
            ..Default::default()
        }];
        t.apply(first).await;
        t.apply(wire(2, 10 * DAY, false, &[2])).await;
        t.db.checkpoint_open_chunks().unwrap();
        let (a, b) = (ids_of(&t.db, "a"), ids_of(&t.db, "b"));
        assert_eq!((a.len(), b.len()), (1, 1));
        (t.a, t.b) = (a[0], b[0]);
        assert_eq!(names(&t.db), ["a", "b"]);
        let config = RetentionConfig {
            time: Duration::from_secs(24 * 3600),
            size: 0,
            interval: Duration::from_secs(60),
        };
        let report =
            retention::run_pass(&t.db, &config, 10 * DAY, &CancellationToken::new()).unwrap();
        assert_eq!(report.unsampled, [t.a], "b holds its open chunk");
        t.unsampled = report.unsampled;
        t
    }

    async fn apply(&mut self, b: pb::Batch) {
        let b = resolve(&mut self.refs, b).unwrap();
        let ack = self.writer.submit("s".into(), b).await.unwrap();
        let ack = ack.await.unwrap().unwrap();
        assert_eq!(ack.status(), pb::AckStatus::Applied, "{ack:?}");
    }

    async fn collect(&self) -> usize {
        let stop = CancellationToken::new();
        retention::collect_unsampled(&self.writer, &self.unsampled, &stop)
            .await
            .unwrap()
    }

    fn stop(self) {
        drop(self.writer);
        self.thread.join().unwrap();
    }
}

#[tokio::test]
async fn series_retention_left_without_samples_leave_the_index_and_come_back_anew() {
    let mut t = Aged::new().await;
    assert_eq!(exemplar_keys(&t.db), 1, "a's exemplar");
    assert_eq!(t.collect().await, 1, "a holds nothing");
    assert_eq!(exemplar_keys(&t.db), 0, "removed with a");
    assert_eq!(names(&t.db), ["b"], "a left the label values");
    assert_eq!(Index::new(&t.db).stats().unwrap().num_series, 1);
    assert_eq!(Index::new(&t.db).find_series_labels(t.a).unwrap(), None);
    assert_eq!(ids_of(&t.db, "b"), [t.b], "b kept its id");
    assert_eq!(t.collect().await, 0, "nothing left to remove");

    // The stream's entry for a learnt a's old id; a comes back under a
    // new one, indexed, with its sample readable.
    t.apply(wire(3, 10 * DAY + 1000, false, &[1, 2])).await;
    let a_again = ids_of(&t.db, "a");
    assert_eq!(a_again.len(), 1);
    assert!(a_again[0] > t.b, "a new id: {a_again:?}");
    let read = samples::read(&t.db, a_again[0], i64::MIN, i64::MAX).unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!((read[0].t, read[0].v), (10 * DAY + 1000, 3.0));
    assert!(samples::read(&t.db, t.a, i64::MIN, i64::MAX)
        .unwrap()
        .is_empty());
    assert_eq!(names(&t.db), ["a", "b"]);
    // b's entry kept its id through the collection (found by labels once).
    let read_b = samples::read(&t.db, t.b, i64::MIN, i64::MAX).unwrap();
    assert_eq!(
        read_b.iter().map(|s| s.t).collect::<Vec<_>>(),
        [10 * DAY, 10 * DAY + 1000]
    );
    t.stop();
}

/// A series that gets a sample between the retention pass that listed it
/// and the collection keeps its id.
#[tokio::test]
async fn a_series_written_after_the_pass_is_kept() {
    let mut t = Aged::new().await;
    t.apply(wire(3, 10 * DAY + 1000, false, &[1])).await;
    assert_eq!(t.collect().await, 0);
    assert_eq!(ids_of(&t.db, "a"), [t.a]);
    assert_eq!(names(&t.db), ["a", "b"]);
    t.stop();
}
