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
