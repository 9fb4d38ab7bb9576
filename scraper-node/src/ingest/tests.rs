use super::*;
use crate::batch::Series;
use std::sync::Arc;

fn batch(ts: i64, series: &[crate::batch::SeriesRef]) -> ScrapeBatch {
    let mut b = ScrapeBatch::new("t", 1, ts);
    for s in series {
        b.push(s, ts, 1.0);
    }
    b
}

#[test]
fn sequences_refs_and_resend_after_reconnect() {
    let a = Series::new(Labels::from_pairs([("__name__", "a")]));
    let mut o = Outbox::default();
    o.push(batch(1, std::slice::from_ref(&a)));
    o.push(batch(2, std::slice::from_ref(&a)));
    o.on_welcome(41);
    let b1 = o.next_to_send().unwrap();
    let b2 = o.next_to_send().unwrap();
    assert!(o.next_to_send().is_none());
    assert_eq!((b1.sequence, b2.sequence), (42, 43));
    assert_eq!(b1.new_series.len(), 1, "labels travel the first time");
    assert!(b2.new_series.is_empty(), "then only the reference");
    assert!(
        b2.timestamps_ms.is_empty(),
        "all samples at the batch timestamp"
    );
    o.on_ack(42);
    assert_eq!(o.pending.len(), 1);
    // Reconnect: the storage node had 43 already.
    o.on_welcome(43);
    assert!(o.pending.is_empty());
    o.push(batch(3, std::slice::from_ref(&a)));
    let b3 = o.next_to_send().unwrap();
    assert_eq!(b3.sequence, 44);
    assert_eq!(b3.new_series.len(), 1, "a new stream defines series again");
}

#[test]
fn metadata_travels_once_per_stream_and_version() {
    use crate::batch::{MetricMetadata, TargetMetadata};
    let v1 = Arc::new(TargetMetadata::new(
        Labels::from_pairs([("job", "j")]),
        vec![MetricMetadata {
            metric: "a".into(),
            kind: "gauge",
            help: "h".into(),
            unit: "".into(),
        }],
    ));
    let v2 = Arc::new(TargetMetadata::new(Labels::default(), Vec::new()));
    let with = |ts, m: &Arc<TargetMetadata>| ScrapeBatch {
        metadata: Some(m.clone()),
        ..batch(ts, &[])
    };
    let mut o = Outbox::default();
    o.push(with(1, &v1));
    o.push(with(2, &v1));
    o.push(with(3, &v2));
    o.on_welcome(0);
    let sent: Vec<_> = std::iter::from_fn(|| o.next_to_send()).collect();
    let m = sent[0].metadata.as_ref().expect("the first carries it");
    assert_eq!(m.metrics[0].metric, "a");
    assert_eq!(m.metrics[0].r#type, "gauge");
    assert_eq!(m.target_labels.len(), 1);
    assert!(sent[1].metadata.is_none(), "the same version is not resent");
    assert!(sent[2].metadata.as_ref().unwrap().metrics.is_empty());
    // A new stream resends what its unacked batches carry.
    o.on_ack(1);
    o.on_welcome(1);
    let again = o.next_to_send().unwrap();
    assert_eq!(again.sequence, 2);
    assert!(again.metadata.is_some(), "a new stream carries it again");
}

#[test]
fn exemplars_use_stream_refs_and_define_their_series() {
    use crate::textparse::Exemplar;
    let a = Series::new(Labels::from_pairs([("__name__", "a_total")]));
    let only_exemplar = Series::new(Labels::from_pairs([("__name__", "b_bucket")]));
    let exemplar = |trace: &str, ts: Option<i64>| Exemplar {
        labels: Labels::from_pairs([("trace_id", trace)]),
        value: 0.5,
        timestamp_ms: ts,
    };
    let mut o = Outbox::default();
    o.on_welcome(0);
    let mut b = batch(1000, std::slice::from_ref(&a));
    b.push_exemplar(&a, 1000, exemplar("x", None));
    b.push_exemplar(&only_exemplar, 1000, exemplar("y", Some(7)));
    o.push(b);
    let sent = o.next_to_send().unwrap();
    let defined: Vec<u64> = sent.new_series.iter().map(|d| d.r#ref).collect();
    assert_eq!(
        defined,
        [a.id, only_exemplar.id],
        "a series referenced only by an exemplar is defined too"
    );
    assert_eq!(
        sent.exemplars,
        [
            pb::Exemplar {
                r#ref: a.id,
                labels: vec![pb::Label {
                    name: "trace_id".into(),
                    value: "x".into()
                }],
                value: 0.5,
                timestamp_ms: 1000,
                has_timestamp: false,
            },
            pb::Exemplar {
                r#ref: only_exemplar.id,
                labels: vec![pb::Label {
                    name: "trace_id".into(),
                    value: "y".into()
                }],
                value: 0.5,
                timestamp_ms: 7,
                has_timestamp: true,
            },
        ]
    );
    // Defined once per stream.
    let mut b = batch(2000, std::slice::from_ref(&a));
    b.push_exemplar(&only_exemplar, 2000, exemplar("z", None));
    o.push(b);
    let sent = o.next_to_send().unwrap();
    assert!(sent.new_series.is_empty());
    assert_eq!(sent.exemplars[0].r#ref, only_exemplar.id);
}

#[test]
fn unacked_batches_are_resent_with_the_same_sequence() {
    let a = Series::new(Labels::from_pairs([("__name__", "a")]));
    let mut o = Outbox::default();
    o.on_welcome(0);
    o.push(batch(1, std::slice::from_ref(&a)));
    assert_eq!(o.next_to_send().unwrap().sequence, 1);
    o.on_welcome(0);
    let again = o.next_to_send().unwrap();
    assert_eq!(again.sequence, 1);
    assert_eq!(again.new_series.len(), 1);
}

#[test]
fn past_memory_batches_wait_on_disk_in_order_and_define_their_series() {
    let dir = tempfile::tempdir().unwrap();
    let a = Series::new(Labels::from_pairs([("__name__", "a")]));
    let open = || Outbox::new(2, Some(spill::Spill::open(dir.path(), 0).unwrap()));
    let mut o = open();
    for ts in 1..=5 {
        o.push(batch(ts, std::slice::from_ref(&a)));
    }
    assert_eq!((o.pending.len(), o.on_disk()), (2, 3));
    o.on_welcome(0);
    let sent: Vec<pb::Batch> = std::iter::from_fn(|| o.next_to_send()).collect();
    assert_eq!(sent.len(), 2, "what memory holds");
    o.on_ack(sent[1].sequence);
    // Room again: the disk comes back, in order, before anything newer.
    o.push(batch(6, std::slice::from_ref(&a)));
    let mut order = Vec::new();
    while !o.is_empty() {
        let batches: Vec<pb::Batch> = std::iter::from_fn(|| o.next_to_send()).collect();
        assert!(!batches.is_empty());
        for b in &batches {
            order.push(b.timestamp_ms);
            if b.timestamp_ms > 2 {
                // Read back whole: its series defined in it, in a
                // reference space of its own.
                assert_eq!(b.new_series.len(), 1);
                assert_eq!(b.refs, vec![a.id | spill::SPILLED_REF]);
                assert_eq!(b.new_series[0].r#ref, b.refs[0]);
            }
        }
        o.on_ack(batches.last().unwrap().sequence);
    }
    assert_eq!(order, vec![3, 4, 5, 6]);

    // A process that dies with batches on disk leaves them to the next.
    for ts in 7..=10 {
        o.push(batch(ts, std::slice::from_ref(&a)));
    }
    assert_eq!(o.on_disk(), 2);
    drop(o);
    let mut o = open();
    o.on_welcome(0);
    let left: Vec<i64> = std::iter::from_fn(|| o.next_to_send())
        .map(|b| b.timestamp_ms)
        .collect();
    assert_eq!(left, vec![9, 10], "the two in memory died with the process");
}

#[test]
fn without_a_spill_directory_the_newest_are_dropped() {
    let mut o = Outbox::new(2, None);
    for ts in 1..=3 {
        o.push(batch(ts, &[]));
    }
    assert_eq!(o.pending.len(), 2);
    assert_eq!(o.on_disk(), 0);
}
