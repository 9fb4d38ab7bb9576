use super::read_many::PARALLEL_SERIES_MIN;
use super::*;

fn s(t: i64, v: f64) -> Sample {
    Sample { t, v }
}

#[test]
fn merge_prefers_newer_and_sorts() {
    let older = vec![s(1, 1.0), s(3, 3.0), s(5, 5.0)];
    let newer = [s(2, 20.0), s(3, 30.0), s(6, 60.0)];
    assert_eq!(
        merge(older, &newer),
        [s(1, 1.0), s(2, 20.0), s(3, 30.0), s(5, 5.0), s(6, 60.0)]
    );
    assert_eq!(merge(vec![], &newer), newer);
    assert_eq!(
        merge(vec![s(2, 1.0), s(1, 1.0)], &[]),
        [s(1, 1.0), s(2, 1.0)]
    );
}

/// A cursor reads each series alone, in any order, whatever lies
/// around it: deleted keys (a compacted head), chunks, absent series.
#[test]
fn cursor_reads_each_series_alone() {
    let t = crate::testutil::TestDb::with_series(&[
        (&[("s", "1")], &[(10, 1.0), (20, 2.0), (30, 3.0)]),
        (&[("s", "2")], &[(10, 4.0), (20, 5.0), (40, 6.0)]),
        (&[("s", "3")], &[(5, 7.0), (50, 8.0)]),
    ]);
    let db = &t.db;
    // Series 2's head goes to chunks up to 20: its head keys up to 20
    // are deleted, series 3's first sample becomes a chunk.
    db.read_modify_write(|| {
        let reader = SampleReader::new(db);
        let mut wb = DbBatch::default();
        compact_series(&reader, &mut wb, 2, 20, 120)?;
        compact_series(&reader, &mut wb, 3, 5, 120)?;
        Ok((wb, ()))
    })
    .unwrap();
    let stored: [&[Sample]; 3] = [
        &[s(10, 1.0), s(20, 2.0), s(30, 3.0)],
        &[s(10, 4.0), s(20, 5.0), s(40, 6.0)],
        &[s(5, 7.0), s(50, 8.0)],
    ];
    let reader = SampleReader::new(db);
    let mut cursor = reader.cursor();
    for (id, mint, maxt) in [
        (3, 0, 100),
        (1, 15, 30),
        (2, 0, 100),
        (4, 0, 100),
        (2, 25, 35),
        (1, 0, 9),
        (2, 20, 40),
        (0, 0, 100),
        (3, 6, 49),
    ] {
        let series: &[Sample] = match id {
            1..=3 => stored[id as usize - 1],
            _ => &[],
        };
        let want: Vec<Sample> = series
            .iter()
            .filter(|p| (mint..=maxt).contains(&p.t))
            .copied()
            .collect();
        assert_eq!(
            cursor.read(id, mint, maxt).unwrap(),
            want,
            "series {id} in [{mint}, {maxt}]"
        );
    }
    assert_eq!(
        cursor.read(2, 0, 100).unwrap(),
        [s(10, 4.0), s(20, 5.0), s(40, 6.0)]
    );
}

#[test]
fn chunk_sizes_stay_near_target() {
    let sizes = |n, t| compact::chunk_sizes(n, t).collect::<Vec<_>>();
    assert_eq!(sizes(5, 120), [5]);
    assert_eq!(sizes(120, 120), [120]);
    assert_eq!(sizes(239, 120), [239]);
    assert_eq!(sizes(250, 120), [125, 125]);
    assert_eq!(sizes(1000, 120), [125; 8]);
    assert_eq!(sizes(361, 120), [121, 120, 120]);
    assert_eq!(sizes(0, 120), [0]);
}

/// A cursor reading in id order steps from series to series; whatever the
/// distance (a few chunks or many, series without chunks, ranges before,
/// inside and after the chunks), it finds what a fresh seek finds.
#[test]
fn cursor_steps_in_id_order_as_it_seeks() {
    let series: Vec<Vec<(i64, f64)>> = (0..12)
        .map(|i| match i % 4 {
            0 => Vec::new(),
            n => (0..(i * 7) as i64)
                .map(|k| (k * 10 * n as i64, (k + i as i64) as f64))
                .collect(),
        })
        .collect();
    let labels: Vec<String> = (0..12).map(|i| i.to_string()).collect();
    let pairs: Vec<[(&str, &str); 1]> = labels.iter().map(|l| [("s", l.as_str())]).collect();
    let specs: Vec<crate::testutil::SeriesSpec<'_>> = pairs
        .iter()
        .zip(&series)
        .map(|(l, p)| (l.as_slice(), p.as_slice()))
        .collect();
    let t = crate::testutil::TestDb::with_series(&specs);
    let db = &t.db;
    db.read_modify_write(|| {
        let reader = SampleReader::new(db);
        let mut wb = DbBatch::default();
        for id in 1..=12 {
            // Chunks of 3 samples; the newest few stay in the head.
            compact_series(&reader, &mut wb, id, 500, 3)?;
        }
        Ok((wb, ()))
    })
    .unwrap();
    for (mint, maxt) in [
        (i64::MIN, i64::MAX),
        (0, 0),
        (95, 200),
        (300, 480),
        (450, 900),
        (1000, 2000),
    ] {
        let reader = SampleReader::new(db);
        let mut cursor = reader.cursor();
        for id in 0..=13 {
            let want = read(db, id, mint, maxt).unwrap();
            let got = cursor.read(id, mint, maxt).unwrap();
            assert_eq!(got, want, "series {id} in [{mint}, {maxt}]");
            if let Some(stored) = series.get(id.wrapping_sub(1) as usize) {
                let n = stored
                    .iter()
                    .filter(|p| (mint..=maxt).contains(&p.0))
                    .count();
                assert_eq!(got.len(), n, "series {id} in [{mint}, {maxt}]");
            }
        }
    }
}

/// Compacts series `id`'s head up to `cut` into chunks of `target`.
fn compact(db: &Db, id: u64, cut: i64, target: usize) {
    db.read_modify_write(|| {
        let reader = SampleReader::new(db);
        let mut wb = DbBatch::default();
        compact_series(&reader, &mut wb, id, cut, target)?;
        Ok((wb, ()))
    })
    .unwrap();
}

/// The samples of `points` in `[mint, maxt]`.
fn within(points: &[(i64, f64)], mint: i64, maxt: i64) -> Vec<Sample> {
    points
        .iter()
        .filter(|p| (mint..=maxt).contains(&p.0))
        .map(|&(t, v)| s(t, v))
        .collect()
}

/// Once a read has seen a series' newest chunk, reads fetch that chunk by
/// its key (or skip the chunks when none reaches their range), and they
/// find what a seek finds: in snapshots older than a compaction that
/// rewrote the newest chunk under a later key, after retention deleted it,
/// and for ranges the newest chunk covers only in part.
#[test]
fn newest_chunk_by_key_finds_what_a_seek_finds() {
    let mut points: Vec<(i64, f64)> = (0..50).map(|k| (k * 10, k as f64)).collect();
    let t = crate::testutil::TestDb::with_series(&[(&[("s", "1")], &points)]);
    let db = &t.db;
    // Chunks of 10 up to 440 (the newest: 400..=440, 5 samples); the head
    // keeps 450..=490.
    compact(db, 1, 440, 10);
    assert_eq!(
        db.chunk_ends().view().get(1),
        440,
        "the compactor raised it"
    );
    let windows = [
        (i64::MIN, i64::MAX),
        (395, 500),
        (400, 420),
        (405, 445),
        (441, 449),
        (300, 460),
        (445, 490),
        (0, 0),
    ];
    let check = |reader: &SampleReader<'_>, points: &[(i64, f64)], when: &str| {
        let mut cursor = reader.cursor();
        for (mint, maxt) in windows {
            assert_eq!(
                cursor.read(1, mint, maxt).unwrap(),
                within(points, mint, maxt),
                "{when}: [{mint}, {maxt}]"
            );
        }
    };
    check(&SampleReader::new(db), &points, "after compaction");

    // An older snapshot, then more samples and a compaction that reopens
    // the newest chunk (400..=440) and rewrites it up to 490.
    let old = SampleReader::new(db);
    let old_points = points.clone();
    let more: Vec<(i64, f64)> = (50..60).map(|k| (k * 10, -(k as f64))).collect();
    let mut wb = DbBatch::default();
    for &(t, v) in &more {
        append(db, &mut wb, 1, t, v);
    }
    db.write_unsynced(wb).unwrap();
    points.extend(&more);
    compact(db, 1, 530, 10);
    assert_eq!(db.chunk_ends().view().get(1), 530);
    check(&old, &old_points, "the older snapshot");
    check(&SampleReader::new(db), &points, "after the rewrite");
    drop(old);

    // Retention deletes every chunk: the end names a key that is gone.
    crate::retention::delete_before(db, 1_000, &tokio_util::sync::CancellationToken::new())
        .unwrap();
    assert_eq!(db.chunk_ends().view().get(1), 530, "left where it was");
    check(&SampleReader::new(db), &[], "after retention");
}

/// A series whose chunk end is not known yet (a node that just started)
/// learns it from a read that reaches its newest chunk, and only then.
#[test]
fn reads_learn_where_chunks_end() {
    let points: Vec<(i64, f64)> = (0..30).map(|k| (k * 10, k as f64)).collect();
    let t =
        crate::testutil::TestDb::with_series(&[(&[("s", "1")], &points), (&[("s", "2")], &points)]);
    compact(&t.db, 1, 290, 10);
    compact(&t.db, 2, 200, 10);
    let t = t.reopen();
    let db = &t.db;
    let ends = || {
        let view = db.chunk_ends().view();
        (view.get(1), view.get(2))
    };
    let unknown = crate::chunk_ends::UNKNOWN;
    assert_eq!(ends(), (unknown, unknown), "not kept on disk");
    let reader = SampleReader::new(db);
    let mut cursor = reader.cursor();
    // Stops before the newest chunk: nothing learnt.
    assert_eq!(cursor.read(1, 0, 50).unwrap(), within(&points, 0, 50));
    assert_eq!(ends(), (unknown, unknown));
    // Reaches it (the head follows it in series 2).
    assert_eq!(cursor.read(1, 280, 300).unwrap(), within(&points, 280, 300));
    assert_eq!(
        cursor.read(2, 0, 300).unwrap(),
        points.iter().map(|&(t, v)| s(t, v)).collect::<Vec<_>>()
    );
    assert_eq!(ends(), (290, 200));
    // And later reads fetch the newest chunk by key.
    assert_eq!(cursor.read(2, 195, 205).unwrap(), within(&points, 195, 205));
    assert_eq!(cursor.read(1, 285, 290).unwrap(), within(&points, 285, 290));
}

/// Many series are read by several threads at once (on a machine with more
/// than one core), each series exactly as one cursor reads it, in the
/// order asked, absent series included.
#[test]
fn read_many_reads_each_series_as_a_cursor_does() {
    let n = 3 * PARALLEL_SERIES_MIN + 7;
    let points: Vec<Vec<(i64, f64)>> = (0..n as i64)
        .map(|i| {
            (0..(i % 5))
                .map(|k| (k * 10 + i % 3, (i * 100 + k) as f64))
                .collect()
        })
        .collect();
    let names: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let pairs: Vec<[(&str, &str); 1]> = names.iter().map(|l| [("s", l.as_str())]).collect();
    let specs: Vec<crate::testutil::SeriesSpec<'_>> = pairs
        .iter()
        .zip(&points)
        .map(|(l, p)| (l.as_slice(), p.as_slice()))
        .collect();
    let t = crate::testutil::TestDb::with_series(&specs);
    let db = &t.db;
    for id in (1..=n as u64).step_by(3) {
        compact(db, id, 15, 2);
    }
    let ids: Vec<u64> = (0..=n as u64 + 2).collect();
    let reader = SampleReader::new(db);
    for (mint, maxt) in [(i64::MIN, i64::MAX), (5, 25), (0, 0)] {
        let got = reader.read_many(&ids, mint, maxt).unwrap();
        assert_eq!(got.len(), ids.len());
        for (&id, samples) in ids.iter().zip(&got) {
            let want = match id.checked_sub(1).and_then(|i| points.get(i as usize)) {
                Some(p) => within(p, mint, maxt),
                None => Vec::new(),
            };
            assert_eq!(samples, &want, "series {id} in [{mint}, {maxt}]");
        }
    }
}

/// Retention deleting chunks an older snapshot still holds raises the
/// series' chunk end to them, so a chunk written later, ending before
/// them, does not make that snapshot's reads skip them.
#[test]
fn retention_raises_chunk_ends_for_older_snapshots() {
    let points: Vec<(i64, f64)> = (0..50).map(|k| (k * 10, k as f64)).collect();
    let t = crate::testutil::TestDb::with_series(&[(&[("s", "1")], &points)]);
    compact(&t.db, 1, 490, 10);
    let t = t.reopen();
    let db = &t.db;
    assert_eq!(db.chunk_ends().view().get(1), crate::chunk_ends::UNKNOWN);
    let old = SampleReader::new(db);
    crate::retention::delete_before(db, 1_000, &tokio_util::sync::CancellationToken::new())
        .unwrap();
    // A backfilled sample, compacted into a chunk ending before the
    // deleted ones.
    let mut wb = DbBatch::default();
    append(db, &mut wb, 1, 100, -1.0);
    db.write_unsynced(wb).unwrap();
    compact(db, 1, 100, 10);
    assert_eq!(db.chunk_ends().view().get(1), 490);
    assert_eq!(
        old.cursor().read(1, 450, 490).unwrap(),
        within(&points, 450, 490),
        "the older snapshot still reads what it held"
    );
    assert_eq!(
        SampleReader::new(db).read(1, 0, 1_000).unwrap(),
        [s(100, -1.0)]
    );
}
