//! Retention passes against a real database with a fixed "now".

use std::sync::Arc;

use crate::db::DbBatch;
use scrapegrid_common::{CompactLabels, Labels};

use super::*;
use crate::batch::{Batch, Sample};
use crate::samples;
use crate::testutil::TestDb;

const DAY: i64 = 24 * 3600 * 1000;
const NOW: i64 = 1_700_000_000_000;

fn stored_ts(db: &Db, id: u64) -> Vec<i64> {
    samples::read(db, id, i64::MIN, i64::MAX)
        .unwrap()
        .into_iter()
        .map(|s| s.t)
        .collect()
}

fn raw_keys(db: &Db, cf: &'static str) -> Vec<Vec<u8>> {
    db.raw()
        .iterator_cf_opt(
            db.cf(cf),
            Db::total_order_read_options(),
            rocksdb::IteratorMode::Start,
        )
        .map(|kv| kv.unwrap().0.to_vec())
        .collect()
}

fn config(time_days: u64, size: u64) -> RetentionConfig {
    RetentionConfig {
        time: Duration::from_secs(time_days * 24 * 3600),
        size,
        interval: Duration::from_secs(60),
    }
}

#[test]
fn time_retention_deletes_old_samples_and_keeps_new_ones() {
    let old = NOW - 20 * DAY;
    let edge = NOW - 15 * DAY;
    let t = TestDb::with_series(&[
        (
            &[("__name__", "a")],
            &[(old, 1.0), (edge - 1, 2.0), (edge, 3.0), (NOW, 4.0)],
        ),
        (&[("__name__", "b")], &[(old, 1.0)]),
        (&[("__name__", "c")], &[(NOW - DAY, 1.0)]),
    ]);
    // Chunks are keyed by their last timestamp: one wholly old, one that
    // straddles the cut-off (kept whole). The value is not decoded here.
    let mut wb = DbBatch::default();
    let chunks = t.db.cf(keys::CF_CHUNKS);
    wb.put_cf(chunks, keys::chunk_key(1, old + 10), b"x");
    wb.put_cf(chunks, keys::chunk_key(1, edge + 10), b"x");
    wb.put_cf(chunks, keys::chunk_key(3, old), b"x");
    t.db.write_unsynced(wb).unwrap();

    let stop = CancellationToken::new();
    let report = run_pass(&t.db, &config(15, 0), NOW, &stop).unwrap();
    assert_eq!(report.time_cutoff_ms, Some(edge));
    // a and b in the head, 1 and 3 in chunks.
    assert_eq!(report.time_ranges, 4);
    assert_eq!(
        raw_keys(&t.db, keys::CF_SAMPLES)
            .iter()
            .map(|k| keys::decode_sample_key(k).unwrap())
            .collect::<Vec<_>>(),
        [(1, edge), (1, NOW), (3, NOW - DAY)]
    );
    assert_eq!(
        raw_keys(&t.db, keys::CF_CHUNKS),
        [keys::chunk_key(1, edge + 10).to_vec()]
    );
    // A second pass finds nothing more to delete (no new tombstones).
    let again = run_pass(&t.db, &config(15, 0), NOW, &stop).unwrap();
    assert_eq!(again.time_ranges, 0);
    // The cut-off counts back from the newest sample, not the wall clock.
    let later = run_pass(&t.db, &config(15, 0), NOW + 100 * DAY, &stop).unwrap();
    assert_eq!((later.time_cutoff_ms, later.time_ranges), (Some(edge), 0));
    // Zero keeps everything.
    let off = run_pass(&t.db, &config(0, 0), NOW + 100 * DAY, &stop).unwrap();
    assert_eq!((off.time_cutoff_ms, off.time_ranges), (None, 0));
}

#[test]
fn exemplars_go_with_the_scrape_that_brought_them() {
    use crate::exemplars::{self, Exemplar};
    let edge = NOW - 15 * DAY;
    let t = TestDb::with_series(&[
        (&[("__name__", "a")], &[(edge - DAY, 1.0), (NOW, 2.0)]),
        (&[("__name__", "b")], &[(edge - DAY, 1.0)]),
    ]);
    let ex = |ts_ms: i64| Exemplar {
        labels: Labels::from_pairs([("trace_id", "x")]),
        value: 1.0,
        ts_ms,
        has_ts: true,
    };
    let mut wb = DbBatch::default();
    // Arrived before the cut-off: deleted, whatever its own timestamp.
    exemplars::put(&t.db, &mut wb, 1, edge - DAY, &ex(edge + DAY));
    exemplars::put(&t.db, &mut wb, 2, edge - DAY, &ex(edge - DAY));
    // Arrived after it: kept, an explicit timestamp from 2020 too.
    exemplars::put(&t.db, &mut wb, 1, NOW, &ex(1_600_000_000_000));
    t.db.write_unsynced(wb).unwrap();

    let stop = CancellationToken::new();
    let report = run_pass(&t.db, &config(15, 0), NOW, &stop).unwrap();
    assert_eq!(report.time_cutoff_ms, Some(edge));
    assert_eq!(report.time_ranges, 4, "two series' samples and exemplars");
    assert_eq!(
        raw_keys(&t.db, keys::CF_EXEMPLARS),
        [keys::exemplar_key(1, NOW, 1_600_000_000_000).to_vec()]
    );
    // The exemplars' timestamps do not move the cut-off.
    let mut wb = DbBatch::default();
    exemplars::put(&t.db, &mut wb, 1, NOW + 100 * DAY, &ex(NOW + 100 * DAY));
    t.db.write_unsynced(wb).unwrap();
    let again = run_pass(&t.db, &config(15, 0), NOW + 200 * DAY, &stop).unwrap();
    assert_eq!((again.time_cutoff_ms, again.time_ranges), (Some(edge), 0));
}

#[test]
fn native_histograms_are_retained_as_samples_are() {
    let edge = NOW - 15 * DAY;
    let t = TestDb::with_series(&[(&[("__name__", "f")], &[(NOW, 1.0)])]);
    let h = scrapegrid_proto::prometheus::Histogram {
        count: Some(scrapegrid_proto::prometheus::histogram::Count::CountInt(1)),
        ..Default::default()
    };
    let mut wb = DbBatch::default();
    // Series 2 holds only histograms: old, at the edge, new.
    for ts in [edge - DAY, edge, NOW - DAY] {
        samples::append_histogram(&t.db, &mut wb, 2, ts, &h);
    }
    samples::append_histogram(&t.db, &mut wb, 3, edge - 1, &h);
    t.db.write_unsynced(wb).unwrap();

    let stop = CancellationToken::new();
    let report = run_pass(&t.db, &config(15, 0), NOW, &stop).unwrap();
    assert_eq!(report.time_cutoff_ms, Some(edge));
    assert_eq!(report.time_ranges, 2, "both histogram series");
    assert_eq!(
        raw_keys(&t.db, keys::CF_HISTOGRAMS)
            .iter()
            .map(|k| keys::decode_sample_key(k).unwrap())
            .collect::<Vec<_>>(),
        [(2, edge), (2, NOW - DAY)]
    );
    // What is left reads back with its timestamps.
    let reader = samples::SampleReader::new(&t.db);
    let read = reader.histograms(2, i64::MIN, i64::MAX).unwrap();
    assert_eq!(
        read.iter().map(|h| h.t).collect::<Vec<_>>(),
        [edge, NOW - DAY]
    );
    assert_eq!(
        read[0].h.timestamp, edge,
        "the timestamp comes back from the key"
    );
}

#[test]
fn size_retention_deletes_oldest_first_until_under_the_limit() {
    let t = TestDb::with_series(&[]);
    let db = &t.db;
    // 50 series x 200 samples, one a minute.
    let mut wb = DbBatch::default();
    for id in 1..=50u64 {
        crate::index::put_series(
            db,
            &mut wb,
            id,
            &CompactLabels::from(Labels::from_pairs([(
                "__name__",
                format!("m{id}").as_str(),
            )])),
        );
        for i in 0..200 {
            samples::append(db, &mut wb, id, NOW - (200 - i) * 60_000, i as f64);
        }
    }
    db.write_unsynced(wb).unwrap();
    // Flushed, so the index's memtables (an arena each) do not dominate.
    for cf in keys::ALL_CFS {
        db.raw().flush_cf(db.cf(cf)).unwrap();
    }
    let full = total_bytes(db).unwrap();
    let limit = full / 2;

    let stop = CancellationToken::new();
    let report = run_pass(db, &config(0, limit), NOW, &stop).unwrap();
    assert!(report.size_ranges > 0, "{report:?}");
    assert!(
        report.bytes_after.unwrap() <= limit,
        "{report:?} limit {limit}"
    );
    let cutoff = report.size_cutoff_ms.unwrap();
    for id in 1..=50 {
        let ts = stored_ts(db, id);
        assert!(
            ts.iter().all(|&t| t >= cutoff),
            "series {id} keeps only new samples"
        );
        assert_eq!(ts.last(), Some(&(NOW - 60_000)), "newest kept");
        assert!(ts.len() < 200 && ts.len() > 20, "{} samples left", ts.len());
    }

    // A limit that cannot be met keeps the newest samples.
    let report = run_pass(db, &config(0, 1), NOW, &stop).unwrap();
    assert_eq!(report.size_cutoff_ms, Some(NOW - 60_000));
    for id in 1..=50 {
        assert_eq!(stored_ts(db, id), [NOW - 60_000]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_keeps_working_during_a_pass() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path()).unwrap());
    // Many series with old data, so the pass takes a while.
    let mut wb = DbBatch::default();
    for id in 1..=20_000u64 {
        crate::index::put_series(
            &db,
            &mut wb,
            id,
            &CompactLabels::from(Labels::from_pairs([(
                "__name__",
                format!("old{id}").as_str(),
            )])),
        );
        samples::append(&db, &mut wb, id, NOW - 30 * DAY, 1.0);
    }
    // The newest sample, which the cut-off counts back from.
    samples::append(&db, &mut wb, 1, NOW, 1.0);
    db.write_unsynced(wb).unwrap();
    // The series-id counter, as the writer would have written it.
    db.raw()
        .put_cf(
            db.cf(keys::CF_META),
            keys::META_NEXT_SERIES_ID,
            keys::encode_u64(20_001),
        )
        .unwrap();
    let (writer, thread) = crate::writer::spawn(db.clone()).unwrap();

    let pass = {
        let db = db.clone();
        tokio::task::spawn_blocking(move || {
            run_pass(&db, &config(15, 0), NOW, &CancellationToken::new())
        })
    };
    let fresh = Arc::new(CompactLabels::from(Labels::from_pairs([(
        "__name__", "fresh",
    )])));
    for seq in 1..=50u64 {
        let b = Batch {
            sequence: seq,
            target_id: String::new(),
            target_generation: 0,
            timestamp_ms: 0,
            handover: None,
            exemplars: Vec::new(),
            histograms: Vec::new(),
            series: vec![fresh.clone().into()],
            samples: vec![Sample {
                series: 0,
                ts_ms: NOW + seq as i64,
                value: seq as f64,
            }],
        };
        let ack = writer
            .submit("s".into(), b)
            .await
            .unwrap()
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ack.status(), scrapegrid_proto::v1::AckStatus::Applied);
    }
    let report = pass.await.unwrap().unwrap();
    assert_eq!(report.time_ranges, 20_000);
    drop(writer);
    thread.join().unwrap();
    assert_eq!(
        stored_ts(&db, 20_001).len(),
        50,
        "every fresh sample stored"
    );
    assert_eq!(stored_ts(&db, 1), [NOW]);
    assert!(stored_ts(&db, 20_000).is_empty());
}

#[test]
fn disk_usage_covers_every_column_family() {
    let t = TestDb::with_series(&[(&[("__name__", "a")], &[(1, 1.0)])]);
    let usage = disk_usage(&t.db).unwrap();
    assert_eq!(usage.len(), keys::ALL_CFS.len());
    assert!(total_bytes(&t.db).unwrap() > 0, "memtables hold the writes");
    record_usage(&t.db).unwrap();
}

/// A pass reaches the head through its bounds, so the samples the
/// compactor deleted (which RocksDB keeps as tombstones until its own
/// compaction) are never stepped over: a walk of the head's keys stepped
/// over every one of them, and on a node at rest that was a core's worth
/// of CPU.
#[test]
fn passes_do_not_step_over_compacted_head_samples() {
    use crate::compactor::{compact_once, CompactorConfig};
    use rocksdb::perf::{set_perf_stats, PerfContext, PerfMetric, PerfStatsLevel};

    let points: Vec<(i64, f64)> = (0..600)
        .map(|k| (NOW - 16 * DAY + k * 60_000, k as f64))
        .collect();
    let t = TestDb::with_series(&[
        (&[("__name__", "a")], &points),
        (&[("__name__", "b")], &points),
    ]);
    let config = CompactorConfig::default();
    let keep_from = points[590].0;
    let now = keep_from + i64::try_from(config.head_window.as_millis()).unwrap() - 1;
    let stats = compact_once(&t.db, &config, now, &CancellationToken::new()).unwrap();
    assert_eq!(
        stats.samples,
        2 * 590,
        "the compactor deleted the older head"
    );

    set_perf_stats(PerfStatsLevel::EnableCount);
    let mut perf = PerfContext::default();
    perf.reset();
    let bounds = time_bounds(&t.db).unwrap();
    let stop = CancellationToken::new();
    // Old enough that the head is kept and half of the chunks go.
    let ranges = delete_before(&t.db, points[300].0, &stop).unwrap();
    let skipped = perf.metric(PerfMetric::InternalDeleteSkippedCount);
    set_perf_stats(PerfStatsLevel::Disable);

    // Key timestamps: the oldest is the first chunk's last sample.
    let (oldest, newest) = bounds.unwrap();
    assert_eq!(newest, points[599].0);
    assert!(oldest > points[0].0 && oldest < points[300].0, "{oldest}");
    assert_eq!(
        ranges, 2,
        "one range of chunks per series, none in the head"
    );
    assert_eq!(skipped, 0, "deleted head samples stepped over");
    for id in [1, 2] {
        let left = stored_ts(&t.db, id);
        assert_eq!(left.last(), Some(&points[599].0));
        assert!(left[0] <= points[300].0, "a straddling chunk is kept whole");
        assert!(left[0] > points[0].0);
    }
}
