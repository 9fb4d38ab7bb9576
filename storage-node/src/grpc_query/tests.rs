use std::sync::atomic::{AtomicBool, Ordering};

use crate::db::DbBatch;

use super::*;
use crate::samples;
use crate::testutil::TestDb;

/// A select sees each write batch whole: two series written in one batch at
/// every step always come back with the same samples, however the reads
/// interleave with the writes. (The gRPC select once read each series at
/// its own snapshot, so it could see a batch half-applied.)
#[test]
fn select_reads_every_series_at_one_snapshot() {
    let t = TestDb::with_series(&[
        (&[("__name__", "pair"), ("side", "a")], &[(0, 0.0)]),
        (&[("__name__", "pair"), ("side", "b")], &[(0, 0.0)]),
    ]);
    let db = &t.db;
    let done = AtomicBool::new(false);
    let matchers = [Matcher::equal("__name__", "pair")];
    let mut torn = 0;
    let mut reads = 0;
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for k in 1..=3000i64 {
                let mut wb = DbBatch::default();
                samples::append(db, &mut wb, 1, k, k as f64);
                samples::append(db, &mut wb, 2, k, k as f64);
                db.write_unsynced(wb).unwrap();
            }
            done.store(true, Ordering::SeqCst);
        });
        while !done.load(Ordering::SeqCst) {
            let series = select_series(db, &matchers, 0, i64::MAX).unwrap();
            assert_eq!(series.len(), 2);
            reads += 1;
            if series[0].timestamps_ms != series[1].timestamps_ms {
                torn += 1;
            }
        }
    });
    assert!(reads > 10, "the reads ran beside the writes ({reads})");
    assert_eq!(
        torn, 0,
        "{torn} of {reads} selects saw a batch half-applied"
    );
    let last = select_series(db, &matchers, 0, i64::MAX).unwrap();
    assert_eq!(last[0].timestamps_ms.len(), 3001);
}
