use super::*;
use crate::db::{Db, DbBatch};
use crate::samples::{self, SampleReader};
use crate::testutil::TestDb;

const T0: i64 = 1_700_000_000_000 - 1_700_000_000_000 % CHUNK_RANGE_MS;

/// Writes samples `(t, v)` of series `id` as fresh appends, `per_write` to
/// a write.
fn append(db: &Db, id: u64, points: &[(i64, f64)], per_write: usize) {
    for batch in points.chunks(per_write.max(1)) {
        let mut wb = DbBatch::default();
        for &(t, v) in batch {
            samples::append_fresh(&mut wb, id, t, v);
        }
        db.write_unsynced(wb).unwrap();
    }
}

/// Points every 5 s from `T0`, values that do not repeat.
fn points(n: usize) -> Vec<(i64, f64)> {
    (0..n)
        .map(|i| (T0 + i as i64 * 5_000, (i as f64 * 1.37).sin() * 1e3))
        .collect()
}

fn read_all(db: &Db, id: u64) -> Vec<(i64, u64)> {
    samples::read(db, id, i64::MIN, i64::MAX)
        .unwrap()
        .iter()
        .map(|s| (s.t, s.v.to_bits()))
        .collect()
}

fn bits(points: &[(i64, f64)]) -> Vec<(i64, u64)> {
    points.iter().map(|&(t, v)| (t, v.to_bits())).collect()
}

/// The `chunks` keys of series `id`: (last timestamp, samples).
fn stored_chunks(db: &Db, id: u64) -> Vec<(i64, usize)> {
    let reader = SampleReader::new(db);
    reader
        .chunks(id, i64::MIN, i64::MAX)
        .unwrap()
        .iter()
        .map(|c| {
            let n = crate::chunk::decode_all(c.bytes()).unwrap().len();
            (c.last_ts, n)
        })
        .collect()
}

fn count(db: &Db, cf: &'static str) -> usize {
    let mut it = db.raw().raw_iterator_cf(db.cf(cf));
    it.seek_to_first();
    let mut n = 0;
    while it.valid() {
        n += 1;
        it.next();
    }
    n
}

#[test]
fn samples_append_in_memory_and_cut_every_120() {
    let t = TestDb::with_series(&[]);
    let db = &t.db;
    let pts = points(300);
    append(db, 1, &pts, 7);
    assert_eq!(read_all(db, 1), bits(&pts));
    assert_eq!(
        stored_chunks(db, 1),
        [(pts[119].0, 120), (pts[239].0, 120)],
        "two chunks cut, 60 samples open"
    );
    assert_eq!(count(db, keys::CF_SAMPLES), 0, "no key per sample");
    assert_eq!(db.open_chunks().first_ts(1), Some(pts[240].0));
    assert_eq!(db.open_chunks().last_ts(1), Some(pts[299].0));
    assert_eq!(samples::last_ts(db, 1).unwrap(), Some(pts[299].0));
    // Any range, across the cuts and the open chunk.
    for (a, b) in [(0, 299), (100, 130), (119, 120), (239, 241), (250, 251)] {
        let got = samples::read(db, 1, pts[a].0, pts[b].0).unwrap();
        assert_eq!(got.len(), b - a + 1, "[{a}, {b}]");
        assert_eq!((got[0].t, got[got.len() - 1].t), (pts[a].0, pts[b].0));
        assert!(samples::any_in(db, 1, pts[a].0, pts[b].0).unwrap());
    }
    assert!(!samples::any_in(db, 1, pts[299].0 + 1, i64::MAX).unwrap());
}

#[test]
fn chunks_do_not_cross_the_two_hour_boundary() {
    let t = TestDb::with_series(&[]);
    let db = &t.db;
    // One sample a minute from 50 minutes before a boundary: the first
    // chunk ends before it though it holds fewer than 120.
    let start = T0 + CHUNK_RANGE_MS - 50 * 60_000;
    let pts: Vec<_> = (0..80).map(|i| (start + i * 60_000, i as f64)).collect();
    append(db, 1, &pts, 1);
    assert_eq!(stored_chunks(db, 1), [(pts[49].0, 50)]);
    assert_eq!(read_all(db, 1), bits(&pts));
}

#[test]
fn a_reader_older_than_a_cut_still_sees_the_cut_chunk() {
    let t = TestDb::with_series(&[]);
    let db = &t.db;
    let pts = points(130);
    append(db, 1, &pts[..119], 119);
    let old = SampleReader::new(db);
    // This write cuts the 120 first samples into a chunk the old reader's
    // snapshot does not hold, and empties the open chunk.
    append(db, 1, &pts[119..], 11);
    let got = old.read(1, i64::MIN, i64::MAX).unwrap();
    assert_eq!(got.len(), 130, "the cut chunk from memory, the rest open");
    assert!(got.windows(2).all(|w| w[0].t < w[1].t));
    // A new reader sees the chunk in its snapshot and in memory: once.
    assert_eq!(read_all(db, 1), bits(&pts));
    drop(old);
    // Once no reader is older than the cut, the next write drops it from
    // memory.
    append(db, 1, &[(pts[129].0 + 5_000, 1.0)], 1);
    let recent = db.open_chunks().with(1, |o| o.recent.len()).unwrap();
    assert_eq!(recent, 0);
}

#[test]
fn restart_replays_the_wal_and_the_checkpoint() {
    let t = TestDb::with_series(&[]);
    let pts = points(400);
    append(&t.db, 1, &pts[..100], 10);
    append(&t.db, 2, &pts[..50], 10);
    let done = t.db.checkpoint_open_chunks().unwrap();
    assert_eq!((done.written, done.idle_cut), (2, 0));
    assert_eq!(count(&t.db, keys::CF_OPEN_CHUNKS), 2);
    // After the checkpoint: series 1's checkpointed chunk is cut (so the
    // checkpoint's copy is stale), series 2 grows, series 3 is new.
    append(&t.db, 1, &pts[100..250], 10);
    append(&t.db, 2, &pts[50..70], 10);
    append(&t.db, 3, &pts[..5], 5);
    // A constant and a slowly growing counter: values XORed to nothing or
    // to a few bytes in the WAL, across the checkpoint and the restart.
    let flat: Vec<_> = pts.iter().map(|&(t, _)| (t, 42.0)).collect();
    let counter: Vec<_> = pts
        .iter()
        .enumerate()
        .map(|(i, &(t, _))| (t, 1e6 + (i * i) as f64))
        .collect();
    append(&t.db, 4, &flat[..150], 10);
    append(&t.db, 5, &counter[..150], 10);
    t.db.checkpoint_open_chunks().unwrap();
    append(&t.db, 4, &flat[150..200], 10);
    append(&t.db, 5, &counter[150..200], 10);
    let t = t.reopen();
    assert_eq!(read_all(&t.db, 4), bits(&flat[..200]));
    assert_eq!(read_all(&t.db, 5), bits(&counter[..200]));
    assert_eq!(read_all(&t.db, 1), bits(&pts[..250]));
    assert_eq!(read_all(&t.db, 2), bits(&pts[..70]));
    assert_eq!(read_all(&t.db, 3), bits(&pts[..5]));
    assert_eq!(
        stored_chunks(&t.db, 1),
        [(pts[119].0, 120), (pts[239].0, 120)]
    );
    assert_eq!(t.db.open_chunks().first_ts(1), Some(pts[240].0));
    // Appends go on where they stopped, and survive a second restart.
    append(&t.db, 1, &pts[250..400], 30);
    let t = t.reopen();
    assert_eq!(read_all(&t.db, 1), bits(&pts));
    assert_eq!(stored_chunks(&t.db, 1).len(), 3);
    // A checkpoint empties the WAL.
    t.db.checkpoint_open_chunks().unwrap();
    assert_eq!(count(&t.db, keys::CF_WAL), 0);
    let t = t.reopen();
    assert_eq!(read_all(&t.db, 1), bits(&pts));
    assert_eq!(read_all(&t.db, 2), bits(&pts[..70]));
}

#[test]
fn idle_series_are_cut_at_a_checkpoint() {
    let t = TestDb::with_series(&[]);
    let db = &t.db;
    append(db, 1, &[(T0, 1.0), (T0 + 5_000, 2.0)], 2);
    append(db, 2, &[(T0 + IDLE_MS + 10_000, 3.0)], 1);
    db.checkpoint_open_chunks().unwrap();
    let done = db.checkpoint_open_chunks().unwrap();
    assert_eq!(done.idle_cut, 0, "cut once");
    assert_eq!(stored_chunks(db, 1), [(T0 + 5_000, 2)]);
    assert_eq!(db.open_chunks().first_ts(1), None);
    assert_eq!(db.open_chunks().series(), 1);
    assert_eq!(count(db, keys::CF_OPEN_CHUNKS), 1, "only series 2's");
    let t = t.reopen();
    assert_eq!(read_all(&t.db, 1), bits(&[(T0, 1.0), (T0 + 5_000, 2.0)]));
    assert_eq!(t.db.open_chunks().series(), 1);
}

#[test]
fn late_head_samples_are_not_compacted_into_the_open_chunks_span() {
    let t = TestDb::with_series(&[]);
    let db = &t.db;
    let pts = points(130);
    append(db, 1, &pts, 130);
    // Late samples (out of order) between the cut chunk and the open
    // chunk, and inside the open chunk's span.
    let late = [(pts[121].0 + 1, 7.0), (pts[125].0 + 1, 8.0)];
    let mut wb = DbBatch::default();
    for &(t, v) in &late {
        samples::append(db, &mut wb, 1, t, v);
    }
    db.write_unsynced(wb).unwrap();
    db.read_modify_write(|| {
        let reader = SampleReader::new(db);
        let mut wb = DbBatch::default();
        samples::compact_series(&reader, &mut wb, 1, i64::MAX, 120)?;
        Ok((wb, ()))
    })
    .unwrap();
    assert_eq!(
        stored_chunks(db, 1),
        [(pts[119].0, 120)],
        "the late samples wait: the open chunk starts before them"
    );
    assert_eq!(count(db, keys::CF_SAMPLES), 2);
    let mut want = pts.clone();
    want.extend_from_slice(&late);
    want.sort_by_key(|p| p.0);
    assert_eq!(read_all(db, 1), bits(&want));
}

#[test]
fn superseded_checkpoints_are_compacted_away() {
    let t = TestDb::with_series(&[]);
    let db = &t.db;
    let sst = || {
        db.raw()
            .property_int_value_cf(db.cf(keys::CF_OPEN_CHUNKS), "rocksdb.total-sst-files-size")
            .unwrap()
            .unwrap_or(0)
    };
    // 2,000 series, each checkpointed 30 times (flushed to a file each
    // time): several versions of every open chunk on disk, as many as
    // RocksDB's own compactions leave.
    for round in 0..30i64 {
        let mut wb = DbBatch::default();
        for id in 1..=2_000u64 {
            for k in 0..3 {
                let t = T0 + (round * 3 + k) * 5_000;
                samples::append_fresh(&mut wb, id, t, (id as f64).sqrt() * t as f64);
            }
        }
        db.write_unsynced(wb).unwrap();
        db.checkpoint_open_chunks().unwrap();
        db.raw().flush_cf(db.cf(keys::CF_OPEN_CHUNKS)).unwrap();
    }
    let before = sst();
    let live = db.open_chunks().checkpointed_bytes();
    assert!(before > 2 * live, "{before} bytes on disk for {live} live");
    assert!(!db.compact_superseded_checkpoints().unwrap(), "small: left");
    assert!(db.compact_checkpoints_beyond(0).unwrap());
    // RocksDB deletes the compacted files in the background (and its own
    // compactions may still be finishing on a loaded machine): give it a
    // few seconds to get there.
    let mut after = sst();
    for _ in 0..50 {
        if after < before / 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        after = sst();
    }
    assert!(after < before / 2, "{after} of {before} bytes left");
    // Every series still reads back whole after a restart.
    let t = t.reopen();
    for id in [1u64, 777, 2_000] {
        assert_eq!(
            samples::read(&t.db, id, i64::MIN, i64::MAX).unwrap().len(),
            90
        );
    }
}
