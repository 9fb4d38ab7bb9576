//! [`SampleReader::read_many`]: many series read by a pool of threads, each
//! with its own cursor over a run of ids, all at the reader's snapshot.

use super::{Sample, SampleReader};
use crate::error::Result;

impl SampleReader<'_> {
    /// Returns the samples of each series of `ids` (in id order) with
    /// `mint <= t <= maxt`, as [`Self::read`] does, in the order of `ids`.
    /// Many series are read by several threads at once (a pool kept for
    /// it), each with its own cursor over a run of `ids`, all at this
    /// reader's snapshot: a query over many series waits for a share of
    /// them.
    pub fn read_many(&self, ids: &[u64], mint: i64, maxt: i64) -> Result<Vec<Vec<Sample>>> {
        let read_run = |run: &[u64]| -> Result<Vec<Vec<Sample>>> {
            let mut cursor = self.cursor();
            run.iter().map(|&id| cursor.read(id, mint, maxt)).collect()
        };
        let pool = read_pool();
        let threads = pool
            .current_num_threads()
            .min(ids.len() / PARALLEL_SERIES_MIN);
        if threads <= 1 {
            return read_run(ids);
        }
        let per = ids.len().div_ceil(threads);
        let mut runs: Vec<Option<Result<Vec<Vec<Sample>>>>> = Vec::new();
        runs.resize_with(ids.len().div_ceil(per), || None);
        pool.scope(|scope| {
            for (slot, run) in runs.iter_mut().zip(ids.chunks(per)) {
                let read_run = &read_run;
                scope.spawn(move |_| *slot = Some(read_run(run)));
            }
        });
        let mut out = Vec::with_capacity(ids.len());
        for run in runs {
            out.extend(run.expect("every run is read in the scope")?);
        }
        Ok(out)
    }
}

/// The threads that read series for [`SampleReader::read_many`]: one per
/// core, at most [`MAX_READ_THREADS`], started on first use and kept (each
/// keeps its allocator heap warm between queries).
fn read_pool() -> &'static rayon_core::ThreadPool {
    static POOL: std::sync::OnceLock<rayon_core::ThreadPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, MAX_READ_THREADS);
        rayon_core::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("series-read-{i}"))
            .build()
            .expect("starting the series read threads")
    })
}

/// Threads [`SampleReader::read_many`] uses at most.
const MAX_READ_THREADS: usize = 4;
/// Series each of those threads reads at least.
pub(super) const PARALLEL_SERIES_MIN: usize = 2048;
