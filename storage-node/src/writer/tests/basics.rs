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
        series,
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
            first_ts: 3000
        })
    );
    assert_eq!(db.get_meta_u64(&keys::seq_key("s")).unwrap(), Some(3));
}
