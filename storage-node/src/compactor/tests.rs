use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;

use scrapegrid_common::{CompactLabels, Labels};

use crate::db::DbBatch;

use super::*;
use crate::batch::{self, Batch};
use crate::keys;
use crate::query::select::{DbSource, SeriesSource};
use crate::samples::Sample;
use crate::testutil::TestDb;
use crate::writer;

const START: i64 = 1_700_000_000_000;
const STEP: i64 = 15_000;

fn config() -> CompactorConfig {
    CompactorConfig {
        max_group_samples: 300,
        ..CompactorConfig::default()
    }
}

/// `n` samples every 15s with a few ms of jitter, values of every awkward
/// kind: stale markers, NaN, -0.0, infinities, counters.
fn points(n: usize, seed: i64) -> Vec<(i64, f64)> {
    (0..n as i64)
        .map(|i| {
            let t = START + i * STEP + (i * 7 + seed) % 5;
            let v = match i % 50 {
                13 => scrapegrid_proto::stale_marker(),
                17 => f64::NAN,
                19 => -0.0,
                23 => f64::INFINITY,
                29 => f64::NEG_INFINITY,
                _ => (i * (seed + 1)) as f64 * 0.5,
            };
            (t, v)
        })
        .collect()
}

fn bits(samples: &[Sample]) -> Vec<(i64, u64)> {
    samples.iter().map(|s| (s.t, s.v.to_bits())).collect()
}

fn pbits(points: &[(i64, f64)]) -> Vec<(i64, u64)> {
    points.iter().map(|&(t, v)| (t, v.to_bits())).collect()
}

fn count(db: &Db, cf: &'static str) -> usize {
    db.raw()
        .iterator_cf_opt(
            db.cf(cf),
            Db::total_order_read_options(),
            rocksdb::IteratorMode::Start,
        )
        .count()
}

fn compact_at(db: &Db, now: i64) -> RoundStats {
    compact_once(db, &config(), now, &CancellationToken::new()).unwrap()
}

/// The time at which the last `keep` of `points` are inside the head window.
fn now_keeping(points: &[(i64, f64)], keep: usize) -> i64 {
    points[points.len() - keep].0 + ms(config().head_window) - 1
}

#[test]
fn round_trip_is_bit_exact_across_chunk_and_head() {
    let a = points(500, 1);
    let b = points(130, 2);
    let tdb = TestDb::with_series(&[(&[("__name__", "a")], &a), (&[("__name__", "b")], &b)]);
    let db = &tdb.db;

    let stats = compact_at(db, now_keeping(&a, 8));
    // a: 492 before the cut -> 4 chunks of 123; b: all 130 -> 1 chunk.
    assert_eq!(
        stats,
        RoundStats {
            series: 2,
            samples: 492 + 130,
            chunks_written: 5,
            chunks_rewritten: 0
        }
    );
    assert_eq!(count(db, keys::CF_SAMPLES), 8, "only a's newest 8 stay");
    assert_eq!(count(db, keys::CF_CHUNKS), 5);
    assert_eq!(samples::max_compacted_ts(db, 1).unwrap(), Some(a[491].0));
    assert_eq!(samples::last_ts(db, 1).unwrap(), Some(a[499].0));
    assert_eq!(samples::max_compacted_ts(db, 3).unwrap(), None);

    assert_eq!(
        bits(&samples::read(db, 1, i64::MIN, i64::MAX).unwrap()),
        pbits(&a)
    );
    assert_eq!(
        bits(&samples::read(db, 2, i64::MIN, i64::MAX).unwrap()),
        pbits(&b)
    );
    let stale = samples::read(db, 1, a[13].0, a[13].0).unwrap();
    assert!(scrapegrid_proto::is_stale_marker(stale[0].v));

    // Every window, at sample times and in the gaps between them, spanning
    // chunk boundaries and the chunk/head boundary.
    let times: Vec<i64> = a.iter().flat_map(|&(t, _)| [t - 1, t, t + 1]).collect();
    for (i, &mint) in times.iter().enumerate().step_by(7) {
        for &maxt in times[i..]
            .iter()
            .step_by(53)
            .chain([times[times.len() - 1]].iter())
        {
            let want: Vec<_> = a
                .iter()
                .filter(|p| p.0 >= mint && p.0 <= maxt)
                .copied()
                .collect();
            let got = samples::read(db, 1, mint, maxt).unwrap();
            assert_eq!(bits(&got), pbits(&want), "[{mint}, {maxt}]");
            assert_eq!(
                samples::any_in(db, 1, mint, maxt).unwrap(),
                !want.is_empty(),
                "any_in [{mint}, {maxt}]"
            );
        }
    }

    // The query path sees the same, through one snapshot.
    let m = [crate::index::Matcher::equal("__name__", "a")];
    let got = DbSource::new(db).select(&m, a[480].0, a[495].0).unwrap();
    assert_eq!(bits(&got[0].samples), pbits(&a[480..=495]));
}

#[test]
fn young_series_stay_in_the_head_and_idle_ones_are_flushed() {
    let a = points(50, 1);
    let tdb = TestDb::with_series(&[(&[("__name__", "a")], &a)]);
    let db = &tdb.db;
    let age = ms(config().max_head_age);
    // Fewer than 120 samples before the cut, none older than max_head_age.
    assert_eq!(compact_at(db, a[0].0 + age - 1), RoundStats::default());
    assert_eq!(count(db, keys::CF_SAMPLES), 50);
    // Once the oldest is that old, the series is flushed into a short chunk.
    let stats = compact_at(db, a[49].0 + ms(config().head_window) + age);
    assert_eq!((stats.samples, stats.chunks_written), (50, 1));
    assert_eq!(count(db, keys::CF_SAMPLES), 0);
    assert_eq!(
        bits(&samples::read(db, 1, i64::MIN, i64::MAX).unwrap()),
        pbits(&a)
    );
}

#[test]
fn late_samples_are_read_at_once_and_merged_into_their_chunk() {
    let a = points(400, 3);
    let tdb = TestDb::with_series(&[(&[("__name__", "a")], &a)]);
    let db = &tdb.db;
    compact_at(db, a[399].0 + 7_200_000);
    assert_eq!(count(db, keys::CF_SAMPLES), 0);
    assert_eq!(count(db, keys::CF_CHUNKS), 3);

    // Late: before the first chunk, in a gap inside one, overwriting a
    // compacted sample, and in the gap between two chunks.
    let late = [
        (START - 5, 1.5),
        (a[10].0 + 1, 2.5),
        (a[200].0, scrapegrid_proto::stale_marker()),
        (a[132].0 + 2, 4.5),
        (a[300].0 + 3, 5.5),
    ];
    let mut wb = DbBatch::default();
    for &(t, v) in &late {
        samples::append(db, &mut wb, 1, t, v);
    }
    db.write_unsynced(wb).unwrap();

    let mut want: std::collections::BTreeMap<i64, f64> = a.iter().copied().collect();
    want.extend(late);
    let want: Vec<_> = want.into_iter().collect();
    assert_eq!(
        bits(&samples::read(db, 1, i64::MIN, i64::MAX).unwrap()),
        pbits(&want)
    );

    let stats = compact_at(db, a[399].0 + 7_200_000);
    assert_eq!(stats.samples, 5);
    assert_eq!(stats.chunks_rewritten, 3, "every chunk took a late sample");
    assert_eq!(count(db, keys::CF_SAMPLES), 0);
    assert_eq!(
        count(db, keys::CF_CHUNKS),
        3,
        "keys stay: last timestamps do"
    );
    assert_eq!(
        bits(&samples::read(db, 1, i64::MIN, i64::MAX).unwrap()),
        pbits(&want)
    );
    for (i, w) in want.windows(2).enumerate().step_by(11) {
        let got = samples::read(db, 1, w[0].0, w[1].0).unwrap();
        assert_eq!(bits(&got), pbits(w), "window {i}");
    }
}

#[test]
fn compaction_moves_every_sample_exactly_once() {
    let series: Vec<Vec<(i64, f64)>> = (0..20).map(|i| points(150 + 37 * i, i as i64)).collect();
    let labels: Vec<Vec<(String, String)>> = (0..20)
        .map(|i| vec![("__name__".to_string(), format!("m{i}"))])
        .collect();
    let label_refs: Vec<Vec<(&str, &str)>> = labels
        .iter()
        .map(|l| l.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect())
        .collect();
    let specs: Vec<crate::testutil::SeriesSpec<'_>> = label_refs
        .iter()
        .zip(&series)
        .map(|(l, p)| (l.as_slice(), p.as_slice()))
        .collect();
    let tdb = TestDb::with_series(&specs);
    let db = &tdb.db;
    let total: usize = series.iter().map(Vec::len).sum();
    let now = START + 150 * STEP + ms(config().head_window);
    let stats = compact_at(db, now);

    // Whatever a crash would have cut, each sample is in the head or in a
    // chunk: every head key left is newer than the cut, and the chunks hold
    // exactly the rest.
    let cut = now - ms(config().head_window);
    let head_left = count(db, keys::CF_SAMPLES);
    assert_eq!(head_left + stats.samples, total);
    assert!(stats.samples > 0 && head_left > 0);
    let reader = SampleReader::new(db);
    let mut in_chunks = 0;
    for id in 1..=20u64 {
        assert!(reader.head(id, i64::MIN, cut).unwrap().is_empty());
        for c in reader.chunks(id, i64::MIN, i64::MAX).unwrap() {
            assert!(c.last_ts <= cut);
            in_chunks += crate::chunk::decode_all(c.bytes()).unwrap().len();
        }
        let got = samples::read(db, id, i64::MIN, i64::MAX).unwrap();
        assert_eq!(bits(&got), pbits(&series[id as usize - 1]), "series {id}");
    }
    assert_eq!(in_chunks, stats.samples);
    // A second round at the same time has nothing to do.
    assert_eq!(compact_at(db, now), RoundStats::default());
}

fn batch(seq: u64, series: &[Arc<CompactLabels>], t: i64) -> Batch {
    Batch {
        sequence: seq,
        target_id: String::new(),
        target_generation: 0,
        timestamp_ms: 0,
        handover: None,
        exemplars: Vec::new(),
        histograms: Vec::new(),
        series: series.iter().cloned().map(Into::into).collect(),
        samples: (0..series.len() as u32)
            .map(|i| batch::Sample {
                series: i,
                ts_ms: t,
                value: if seq.is_multiple_of(40) {
                    scrapegrid_proto::stale_marker()
                } else {
                    seq as f64 * (i + 1) as f64
                },
            })
            .collect(),
    }
}

/// [`batch`] plus, every third batch after the tenth, a late sample per
/// series (off the grid, ten steps back): written out of order to the
/// head while the writer cuts chunks from the open ones.
fn batch_with_late(seq: u64, series: &[Arc<CompactLabels>]) -> Batch {
    let mut b = batch(seq, series, START + seq as i64 * STEP);
    if seq > 10 && seq.is_multiple_of(3) {
        let t = START + (seq as i64 - 10) * STEP + 1;
        b.samples
            .extend((0..series.len() as u32).map(|i| batch::Sample {
                series: i,
                ts_ms: t,
                value: -(seq as f64),
            }));
    }
    b
}

/// Ingest through the writer while rounds run, then restart: nothing is
/// lost or doubled, and compacted data survives reopening. Late samples go
/// to the head and are compacted into the chunks the writer cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_and_compactor_run_concurrently_and_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path()).unwrap());
    let options = writer::WriterOptions {
        out_of_order_time_window: Duration::from_secs(3600),
        ..Default::default()
    };
    let (w, thread) = writer::spawn_with(db.clone(), options).unwrap();
    let series: Vec<Arc<CompactLabels>> = (0..10)
        .map(|i| {
            Arc::new(CompactLabels::from(Labels::from_pairs([(
                "__name__",
                format!("s{i}").as_str(),
            )])))
        })
        .collect();

    let stop = CancellationToken::new();
    let compactor = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut rounds = RoundStats::default();
            let mut seq_seen = 0;
            while !stop.is_cancelled() {
                // Pretend the clock is just ahead of what was written.
                let last = samples::last_ts(&db, 1).unwrap().unwrap_or(START);
                let cfg = CompactorConfig {
                    chunk_target: 30,
                    max_group_samples: 64,
                    head_window: Duration::from_millis(5 * STEP as u64),
                    ..CompactorConfig::default()
                };
                let r = compact_once(&db, &cfg, last, &stop).unwrap();
                rounds.samples += r.samples;
                rounds.chunks_written += r.chunks_written;
                seq_seen += 1;
            }
            (rounds, seq_seen)
        })
    };
    let s: Arc<str> = "s".into();
    const N: u64 = 600;
    for seq in 1..=N {
        let rx = w
            .submit(s.clone(), batch_with_late(seq, &series))
            .await
            .unwrap();
        if seq % 50 == 0 {
            rx.await.unwrap().unwrap();
        }
    }
    assert_eq!(w.hello(s.clone()).await.unwrap(), N);
    stop.cancel();
    let (rounds, _) = compactor.join().unwrap();
    assert!(rounds.samples > 0, "compaction ran during ingest");
    drop(w);
    tokio::task::spawn_blocking(move || thread.join().unwrap())
        .await
        .unwrap();

    let check = |db: &Db| {
        for (i, _) in series.iter().enumerate() {
            let got = samples::read(db, i as u64 + 1, i64::MIN, i64::MAX).unwrap();
            let mut want: Vec<(i64, f64)> = (1..=N)
                .flat_map(|seq| batch_with_late(seq, &series).samples)
                .filter(|p| p.series as usize == i)
                .map(|p| (p.ts_ms, p.value))
                .collect();
            want.sort_by_key(|p| p.0);
            assert_eq!(bits(&got), pbits(&want), "series {i}");
        }
    };
    check(&db);
    let chunks_before = count(&db, keys::CF_CHUNKS);
    assert!(chunks_before > 0);
    drop(Arc::try_unwrap(db).expect("sole owner"));

    let db = Db::open(dir.path()).unwrap();
    check(&db);
    assert_eq!(count(&db, keys::CF_CHUNKS), chunks_before);
}

/// What step `j` of [`readers_see_every_sample_while_head_bounds_rise`]
/// writes to each series: its sample, and every 5th step a late one, 20
/// steps back (compacted by then) and off the 15 s grid.
fn step_points(j: i64) -> Vec<(i64, f64)> {
    let mut out = vec![(START + j * STEP, j as f64)];
    if j % 5 == 0 && j > 20 {
        out.push((START + (j - 20) * STEP + 1, -(j as f64)));
    }
    out
}

/// Readers, the compactor and late samples at once: every read sees exactly
/// the samples of the steps written before its snapshot, never a head
/// sample hidden by a head bound risen too early (a compaction newer than
/// the snapshot, or a late sample written after the compaction).
#[test]
fn readers_see_every_sample_while_head_bounds_rise() {
    const SERIES: u64 = 8;
    const STEPS: i64 = 1500;
    let tdb = TestDb::with_series(&[]);
    let db = &tdb.db;
    let written = AtomicI64::new(0);
    // Reads done so far: the writer waits for the readers now and then, so
    // that reads interleave with the writes however loaded the machine is.
    let reads_done = AtomicUsize::new(0);
    let stop = CancellationToken::new();
    let cfg = CompactorConfig {
        chunk_target: 8,
        max_group_samples: 20,
        head_window: Duration::from_millis(3 * STEP as u64),
        ..CompactorConfig::default()
    };
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for j in 1..=STEPS {
                let mut wb = DbBatch::default();
                for id in 1..=SERIES {
                    for (t, v) in step_points(j) {
                        samples::append(db, &mut wb, id, t, v);
                    }
                }
                db.write_unsynced(wb).unwrap();
                written.store(j, Ordering::Release);
                if j % 100 == 0 {
                    let want = 2 * (j as usize / 100);
                    let deadline = std::time::Instant::now() + Duration::from_secs(10);
                    while reads_done.load(Ordering::Acquire) < want
                        && std::time::Instant::now() < deadline
                    {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
            stop.cancel();
        });
        scope.spawn(|| {
            while !stop.is_cancelled() {
                let now = START + written.load(Ordering::Acquire) * STEP;
                compact_once(db, &cfg, now, &CancellationToken::new()).unwrap();
            }
        });
        let readers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    let mut reads = 0;
                    while !stop.is_cancelled() {
                        // Every step written before the snapshot, maybe more.
                        let at_least = written.load(Ordering::Acquire);
                        let reader = SampleReader::new(db);
                        let mut cursor = reader.cursor();
                        let got: Vec<_> = (1..=SERIES)
                            .map(|id| cursor.read(id, i64::MIN, i64::MAX).unwrap())
                            .collect();
                        // The newest on-grid sample says which step the
                        // snapshot is at; every series must be exactly there.
                        let j = got[0].iter().map(|s| s.v as i64).max().unwrap_or(0);
                        assert!(j >= at_least, "a read lost steps: {j} < {at_least}");
                        let mut want: Vec<(i64, f64)> = (1..=j).flat_map(step_points).collect();
                        want.sort_by_key(|p| p.0);
                        for (id, got) in (1..=SERIES).zip(&got) {
                            assert_eq!(bits(got), pbits(&want), "series {id} at step {j}");
                        }
                        reads += 1;
                        reads_done.fetch_add(1, Ordering::AcqRel);
                    }
                    reads
                })
            })
            .collect();
        let reads: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
        assert!(reads >= 30, "the readers ran: {reads} reads");
    });
    assert!(count(db, keys::CF_CHUNKS) > 0, "the compactor ran");
    // A last round at the end: with no reader left its narrowings apply,
    // and each bound is at or before the oldest head sample and past the
    // cut of a round at most one chunk (8 steps) before the last (3 steps
    // before the end), or at a late (off-grid) sample written after the
    // rounds had passed its time: too few to be due, it waits in the head
    // (seen once in a full run on a loaded machine).
    let now = START + STEPS * STEP;
    compact_once(db, &cfg, now, &CancellationToken::new()).unwrap();
    assert_eq!(db.head_bounds().pending_narrowings(), 0);
    let reader = SampleReader::new(db);
    for id in 1..=SERIES {
        let oldest = reader.head(id, i64::MIN, i64::MAX).unwrap()[0].t;
        let bound = db.head_bounds().head_min(id);
        let late = (oldest - START) % STEP == 1;
        assert!(
            bound <= oldest && (bound > START + (STEPS - 3 - 8) * STEP || late),
            "series {id}: bound {bound}, oldest head sample {oldest}"
        );
    }
}

/// A round raises each head bound it looks at to the series' first head
/// sample after the cut, and to none for a head that retention emptied.
#[test]
fn compaction_raises_head_bounds_to_what_is_left() {
    let a = points(50, 1);
    let old: Vec<(i64, f64)> = (0..10)
        .map(|k| (START - 3_600_000 + k * STEP, 1.0))
        .collect();
    let tdb = TestDb::with_series(&[(&[("__name__", "a")], &a), (&[("__name__", "b")], &old)]);
    let db = &tdb.db;
    let bounds = db.head_bounds();
    assert_eq!((bounds.head_min(1), bounds.head_min(2)), (a[0].0, old[0].0));
    crate::retention::delete_before(db, START, &CancellationToken::new()).unwrap();
    assert_eq!(bounds.head_min(2), old[0].0, "retention leaves bounds low");

    let stats = compact_at(db, a[20].0 + ms(config().head_window));
    assert_eq!(stats.samples, 21);
    assert_eq!(bounds.head_min(1), a[21].0);
    assert_eq!(bounds.head_min(2), i64::MAX);
    assert_eq!(
        bits(&samples::read(db, 1, i64::MIN, i64::MAX).unwrap()),
        pbits(&a)
    );
    assert!(samples::read(db, 2, i64::MIN, i64::MAX).unwrap().is_empty());
    // A series whose head is all compacted has none.
    compact_at(db, a[49].0 + ms(config().head_window));
    assert_eq!(bounds.head_min(1), i64::MAX);
    assert_eq!(
        bits(&samples::read(db, 1, i64::MIN, i64::MAX).unwrap()),
        pbits(&a)
    );
}

/// A series that scrapes slowly is compacted by age, a few samples at a
/// time: its last chunk is reopened and grows to the target instead of the
/// series collecting small chunks, and every sample reads back exactly.
#[test]
fn slow_series_grow_their_last_chunk() {
    const MINUTE: i64 = 60_000;
    let tdb = TestDb::with_series(&[(&[("__name__", "slow")], &[])]);
    let db = &tdb.db;
    let cfg = CompactorConfig {
        chunk_target: 30,
        max_head_age: Duration::from_secs(300),
        ..config()
    };
    let mut want = Vec::new();
    // One sample a minute for 100 minutes; a round every 5 minutes.
    for m in 0..100i64 {
        let p = (START + m * MINUTE, (m * m) as f64 * 0.25);
        let mut wb = DbBatch::default();
        samples::append(db, &mut wb, 1, p.0, p.1);
        db.write_unsynced(wb).unwrap();
        want.push(p);
        if m % 5 == 4 {
            compact_once(db, &cfg, p.0, &CancellationToken::new()).unwrap();
        }
    }
    let reader = SampleReader::new(db);
    let sizes: Vec<usize> = reader
        .chunks(1, i64::MIN, i64::MAX)
        .unwrap()
        .iter()
        .map(|c| crate::chunk::decode_all(c.bytes()).unwrap().len())
        .collect();
    // The head keeps the last few minutes; chunks are full but the last.
    assert!(sizes.len() >= 3, "{sizes:?}");
    let (last, full) = sizes.split_last().unwrap();
    assert!(full.iter().all(|&n| n >= 30), "{sizes:?}");
    assert!(*last <= 30 * 2, "{sizes:?}");
    let in_head = reader.head(1, i64::MIN, i64::MAX).unwrap().len();
    assert!(in_head <= 8, "{in_head} samples still in the head");
    assert_eq!(sizes.iter().sum::<usize>() + in_head, want.len());
    assert_eq!(
        bits(&samples::read(db, 1, i64::MIN, i64::MAX).unwrap()),
        pbits(&want)
    );
}

#[test]
fn groups_hold_whole_series() {
    let s = |id, n| HeadStats {
        id,
        before_cut: n,
        oldest: 0,
    };
    let due = [s(1, 100), s(2, 150), s(3, 500), s(4, 10), s(5, 10)];
    let sizes: Vec<Vec<u64>> = groups(&due, 300)
        .map(|g| g.iter().map(|h| h.id).collect())
        .collect();
    assert_eq!(sizes, [vec![1, 2], vec![3], vec![4, 5]]);
    assert_eq!(groups(&[], 300).count(), 0);
}
