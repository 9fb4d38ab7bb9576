//! Writer basics: applying, deduplicating and fencing batches.

use crate::batch::Sample;
use crate::writer::*;
use scrapegrid_common::Labels;

fn labels(name: &str) -> Arc<CompactLabels> {
    Arc::new(CompactLabels::from(Labels::from_pairs([(
        "__name__", name,
    )])))
}

fn batch(seq: u64, generation: u64, series: Vec<Arc<CompactLabels>>) -> Batch {
    let samples = (0..series.len() as u32)
        .map(|i| Sample {
            series: i,
            ts_ms: 1000 * seq as i64,
            value: 1.0,
        })
        .collect();
    Batch {
        sequence: seq,
        target_id: "t".into(),
        target_generation: generation,
        timestamp_ms: 1000 * seq as i64,
        series: series.into_iter().map(Into::into).collect(),
        samples,
        handover: None,
        exemplars: Vec::new(),
        histograms: Vec::new(),
    }
}

#[tokio::test]
async fn applies_deduplicates_and_fences() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path()).unwrap());
    let (writer, thread) = spawn(db.clone()).unwrap();
    let s: Arc<str> = "s".into();
    assert_eq!(writer.hello(s.clone()).await.unwrap(), 0);

    // Queue several jobs at once so they share a group.
    let pending = [
        // Two references to the same labels make one series.
        batch(1, 5, vec![labels("a"), labels("a"), labels("b")]),
        batch(1, 5, vec![labels("a")]),
        batch(2, 4, vec![labels("a")]),
        batch(3, 6, vec![labels("c")]),
    ];
    let mut rxs = Vec::new();
    for b in pending {
        rxs.push(writer.submit(s.clone(), b).await.unwrap());
    }
    let mut got = Vec::new();
    for rx in rxs {
        let ack = rx.await.unwrap().unwrap();
        got.push((ack.sequence, ack.status(), ack.reason()));
    }
    use pb::{AckStatus as A, RefuseReason as R};
    assert_eq!(
        got,
        [
            (1, A::Applied, R::Unspecified),
            (1, A::Duplicate, R::Unspecified),
            (2, A::Refused, R::Fenced),
            (3, A::Applied, R::Unspecified),
        ]
    );
    assert_eq!(writer.hello(s.clone()).await.unwrap(), 3);
    drop(writer);
    thread.join().unwrap();

    let index = crate::index::Index::new(&db);
    assert_eq!(index.all_postings().unwrap(), [1, 2, 3], "a, b, c");
    assert_eq!(db.get_meta_u64(keys::META_NEXT_SERIES_ID).unwrap(), Some(4));
    let fence = db.get(keys::CF_META, &keys::gen_key("t")).unwrap().unwrap();
    assert_eq!(
        Fence::decode(&fence),
        Some(Fence {
            generation: 6,
            first_ts: 3000,
            newest_ts: 3000,
            overrun_until: i64::MIN,
        })
    );
    assert_eq!(db.get_meta_u64(&keys::seq_key("s")).unwrap(), Some(3));
}

/// A stream's entries learn their series ids from a write that succeeded,
/// so its later batches name series by id, and samples by id land in the
/// series the labels made; a refused batch teaches nothing.
#[tokio::test]
async fn stream_entries_learn_series_ids_from_applied_writes() {
    use crate::batch::{resolve, RefTable};
    use scrapegrid_proto::v1 as pb;
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path()).unwrap());
    let (writer, thread) = spawn(db.clone()).unwrap();
    let s: Arc<str> = "s".into();
    writer.hello(s.clone()).await.unwrap();
    let wire = |seq: u64, generation: u64, defs: bool| pb::Batch {
        sequence: seq,
        target_id: "t".into(),
        target_generation: generation,
        timestamp_ms: 1000 * seq as i64,
        new_series: if defs {
            ["a", "b"]
                .iter()
                .enumerate()
                .map(|(i, n)| pb::SeriesDef {
                    r#ref: i as u64 + 1,
                    labels: vec![pb::Label {
                        name: "__name__".into(),
                        value: n.to_string(),
                    }],
                })
                .collect()
        } else {
            Vec::new()
        },
        refs: vec![2, 1],
        values: vec![seq as f64, seq as f64],
        ..Default::default()
    };
    let mut refs = RefTable::default();
    let apply = |b: Batch| {
        let writer = writer.clone();
        let s = s.clone();
        async move { writer.submit(s, b).await.unwrap().await.unwrap().unwrap() }
    };
    let ack = apply(resolve(&mut refs, wire(1, 5, true)).unwrap()).await;
    assert_eq!(ack.status(), pb::AckStatus::Applied);
    let b = resolve(&mut refs, wire(2, 5, false)).unwrap();
    // b, named first, was created first.
    assert_eq!(
        b.series.iter().map(|s| s.0.id_at(0)).collect::<Vec<_>>(),
        [Some(1), Some(2)],
        "b then a"
    );
    assert_eq!(apply(b).await.status(), pb::AckStatus::Applied);
    // A duplicate (a resend) teaches nothing either.
    let mut resent = RefTable::default();
    let dup = resolve(&mut resent, wire(2, 5, true)).unwrap();
    assert_eq!(apply(dup).await.status(), pb::AckStatus::Duplicate);
    assert!(resolve(&mut resent, wire(5, 5, false))
        .unwrap()
        .series
        .iter()
        .all(|s| s.0.id_at(0).is_none()));
    // Another stream's write under an older generation: fenced.
    let mut fresh = RefTable::default();
    let refused = resolve(&mut fresh, wire(3, 4, true)).unwrap();
    assert_eq!(
        apply(refused).await.status(),
        pb::AckStatus::Refused,
        "fenced"
    );
    let b = resolve(&mut fresh, wire(4, 5, false)).unwrap();
    assert!(
        b.series.iter().all(|s| s.0.id_at(0).is_none()),
        "a refused write teaches no id: {:?}",
        b.series
    );
    drop(writer);
    thread.join().unwrap();
    let got: Vec<(i64, f64)> = crate::samples::read(&db, 2, 0, i64::MAX)
        .unwrap()
        .iter()
        .map(|p| (p.t, p.v))
        .collect();
    assert_eq!(
        got,
        [(1000, 1.0), (2000, 2.0)],
        "series a, by labels then by id"
    );
}
