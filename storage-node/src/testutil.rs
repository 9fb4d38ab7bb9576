//! Test fixtures: a database in a temporary directory filled directly with
//! series and samples, bypassing the writer thread.

use crate::db::DbBatch;
use scrapegrid_common::{CompactLabels, Labels};

use crate::db::Db;
use crate::{index, samples};

/// A series for [`TestDb::with_series`]: label pairs and (timestamp ms, value)
/// samples.
pub type SeriesSpec<'a> = (&'a [(&'a str, &'a str)], &'a [(i64, f64)]);

/// A database in a temporary directory, removed on drop.
pub struct TestDb {
    pub db: Db,
    _dir: tempfile::TempDir,
}

impl TestDb {
    /// Opens a database holding `series` (ids 1, 2, ... in order), each
    /// with its samples as (timestamp ms, value).
    pub fn with_series(series: &[SeriesSpec<'_>]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path()).expect("open db");
        let mut wb = DbBatch::default();
        for (i, (labels, points)) in series.iter().enumerate() {
            let id = i as u64 + 1;
            let labels = CompactLabels::from(Labels::from_pairs(labels.iter().copied()));
            index::put_series(&db, &mut wb, id, &labels);
            for &(t, v) in points.iter() {
                samples::append(&db, &mut wb, id, t, v);
            }
        }
        db.write_unsynced(wb).expect("write");
        Self { db, _dir: dir }
    }

    /// Closes the database and opens it again, as a restarted node does.
    pub fn reopen(self) -> Self {
        let Self { db, _dir: dir } = self;
        drop(db);
        let db = Db::open(dir.path()).expect("reopen db");
        Self { db, _dir: dir }
    }
}
