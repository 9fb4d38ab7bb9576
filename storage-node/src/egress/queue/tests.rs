use prost::Message;
use scrapegrid_common::CompactLabels;
use scrapegrid_proto::prometheus as prom;

use super::*;
use crate::db::DbBatch;
use crate::egress::{Egress, EgressConfig};
use crate::exemplars::Exemplar;

/// A node's database with series 1 and 2, and the egress of queue `q`
/// (`max_samples_per_send: 3`) and queue `p`, each sending exemplars or
/// not; the log holds one record: a sample of each series, then an
/// exemplar of each (when any queue sends them). Returns queue `q`.
fn setup(q_sends: bool, p_sends: bool) -> (tempfile::TempDir, Queue) {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path()).unwrap());
    let mut wb = DbBatch::default();
    for id in [1u64, 2] {
        let labels = Labels::from_pairs([("__name__", format!("s{id}"))]);
        crate::index::put_series(&db, &mut wb, id, &CompactLabels::from(labels));
    }
    // As the writer counts the ids it created.
    wb.put_cf(
        db.cf(keys::CF_META),
        keys::META_NEXT_SERIES_ID,
        keys::encode_u64(3),
    );
    db.write_unsynced(wb).unwrap();
    let file = scrapegrid_common::config::load_str(
        &format!(
            "remote_write: [{{url: 'http://127.0.0.1:9/w', name: q, send_exemplars: {q_sends}, queue_config: {{max_samples_per_send: 3}}}}, {{url: 'http://127.0.0.1:9/p', name: p, send_exemplars: {p_sends}}}]"
        ),
        "prometheus.yml",
    )
    .unwrap();
    let config = EgressConfig {
        remote_write: file.remote_write,
        ..Default::default()
    };
    let mut egress = Egress::open(db.clone(), &config).unwrap().unwrap();
    let mut a = egress.appender();
    a.begin();
    a.push(1, 1000, 1.0);
    a.push(2, 1000, 2.0);
    for id in [1u64, 2] {
        a.push_exemplar(
            id,
            &Exemplar {
                labels: Labels::from_pairs([("trace_id", format!("t{id}"))]),
                value: 0.5,
                ts_ms: 990,
                has_ts: true,
            },
        );
    }
    let mut wb = DbBatch::default();
    a.stage(&db, &mut wb);
    db.write_unsynced(wb).unwrap();
    a.committed();
    a.publish();
    let q = egress.queues.remove(0);
    (dir, q)
}

/// The samples and exemplars of a round's requests.
fn contents(round: &Round) -> (usize, usize) {
    let reqs = round.shards.iter().flatten();
    let decoded: Vec<_> = reqs
        .map(|r| prom::WriteRequest::decode(r.body.as_slice()).unwrap())
        .collect();
    let n =
        |f: fn(&prom::TimeSeries) -> usize| decoded.iter().flat_map(|w| &w.timeseries).map(f).sum();
    (n(|t| t.samples.len()), n(|t| t.exemplars.len()))
}

#[test]
fn exemplars_follow_their_samples_and_count_toward_a_request() {
    let (_dir, mut q) = setup(true, false);
    q.shards = 1;
    let end = q.log.end();
    let r1 = q.next_round(end, 3).unwrap().unwrap();
    assert_eq!(
        contents(&r1),
        (2, 1),
        "three items: two samples, one exemplar"
    );
    assert_eq!(r1.after, Position { seq: 0, offset: 3 });
    q.position = r1.after;
    let r2 = q.next_round(end, 3).unwrap().unwrap();
    assert_eq!(
        contents(&r2),
        (0, 1),
        "the round goes on inside the exemplars"
    );
    assert_eq!(r2.after, Position { seq: 1, offset: 0 });
    q.position = r2.after;
    assert!(q.next_round(end, 3).unwrap().is_none());
}

#[test]
fn without_send_exemplars_they_are_passed_over() {
    let (_dir, mut q) = setup(false, false);
    q.shards = 1;
    assert_eq!(
        q.log.samples_of(0),
        Some(2),
        "no endpoint sends exemplars: none are queued"
    );
    let end = q.log.end();
    let r1 = q.next_round(end, 3).unwrap().unwrap();
    assert_eq!(contents(&r1), (2, 0));
    assert_eq!(r1.after, Position { seq: 1, offset: 0 });

    // Another endpoint sends them: they are queued, and this one skips
    // them, the position moving past them.
    let (_dir, mut q) = setup(false, true);
    q.shards = 1;
    assert_eq!(q.log.samples_of(0), Some(4));
    let r1 = q.next_round(end, 3).unwrap().unwrap();
    assert_eq!(contents(&r1), (2, 0));
    assert_eq!(r1.after, Position { seq: 0, offset: 3 });
    q.position = r1.after;
    let r2 = q.next_round(end, 3).unwrap().unwrap();
    assert_eq!(contents(&r2), (0, 0), "a round of nothing to send");
    assert_eq!(r2.after, Position { seq: 1, offset: 0 });
}

#[test]
fn the_series_table_grows_only_to_ids_that_exist() {
    let (_dir, mut q) = setup(false, false);
    assert!(q.slot(2).is_ok());
    assert!(
        matches!(q.slot(3), Err(Error::Corrupt { .. })),
        "id 3 was never created"
    );
    assert!(matches!(q.slot(1 << 40), Err(Error::Corrupt { .. })));
    assert_eq!(q.series.len(), 3, "ids 0 to 2");
}
