//! Opening RocksDB with the node's column families, and the shared handle.
//!
//! [`Db`] is shared (`Arc<Db>`) by the writer thread, which writes every
//! ingested batch, the [`crate::compactor`], which rewrites head samples into
//! chunks, and the query paths, which only read. RocksDB is safe for that
//! concurrent use; every call here blocks, so async code calls it from
//! `spawn_blocking` or from a dedicated thread.
//!
//! Every write goes through one lock: [`Db::write_unsynced`] takes it for the
//! write alone, [`Db::read_modify_write`] for reading, deciding and writing.
//! So a read-modify-write (the compactor deleting the head keys it encoded)
//! never interleaves with another write (the writer overwriting one of those
//! keys), with no change to the writer.
//!
//! A write is a [`DbBatch`]: a RocksDB `WriteBatch` plus what it does to the
//! head ([`crate::head_bounds`]) and to where chunks end
//! ([`crate::chunk_ends`]), which the lock applies with the write.

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DBCompressionType,
    DBRecoveryMode, Options, ReadOptions, SliceTransform, WriteBatch, WriteOptions, DB,
};

use crate::chunk_ends::ChunkEnds;
use crate::error::{Error, Result};
use crate::head_bounds::HeadBounds;
use crate::keys;
use crate::open_chunks::{self, Fresh, OpenChunks, Staging};

/// The size of the block cache shared by the column families.
const BLOCK_CACHE_BYTES: usize = 128 << 20;
/// The memtable size of every column family. RocksDB's default (64 MiB
/// each) held 100 MB of index memtables for 100,000 series; flushed, the
/// same entries take a fraction of that and are read through the block
/// cache.
const MEMTABLE_BYTES: usize = 8 << 20;
/// WAL bytes past which RocksDB flushes the column families holding the
/// oldest WAL file. The slowly written column families (`meta`, the index)
/// keep every WAL file alive until then, so this is most of the node's disk
/// in its first minutes: at 100,000 series 56 of 72 MB were WAL at 64 MiB.
/// Each forced flush writes a few small files that compaction merges.
const MAX_TOTAL_WAL_BYTES: u64 = 16 << 20;

/// The open database.
pub struct Db {
    inner: DB,
    /// Held by every write; see the module doc.
    write_lock: Mutex<()>,
    /// Where each series' head starts.
    head: HeadBounds,
    /// Where each series' chunks end.
    chunk_ends: ChunkEnds,
    /// Every series' open chunk.
    open: OpenChunks,
    /// Set while the writer's free-space guard refuses writes, so the
    /// compactor waits too.
    writes_refused: std::sync::atomic::AtomicBool,
}

/// One atomic write: the `WriteBatch` (reached through `Deref`) and the head
/// samples it appends or compacts away, which [`Db`] applies to the head
/// bounds with the write. Build head writes with [`crate::samples`] only.
#[derive(Default)]
pub struct DbBatch {
    wb: WriteBatch,
    /// Head samples appended: (series id, timestamp).
    appended: Vec<(u64, i64)>,
    /// Series whose head, once the batch is written, starts at or after a
    /// timestamp: (series id, timestamp).
    compacted: Vec<(u64, i64)>,
    /// Chunks written or deleted: (series id, last timestamp).
    chunks: Vec<(u64, i64)>,
    /// Samples to append to open chunks ([`crate::open_chunks`]).
    fresh: Vec<Fresh>,
}

impl DbBatch {
    /// Records that the batch appends a sample newer than its series'
    /// newest to the series' open chunk ([`crate::open_chunks`]).
    pub(crate) fn appends_fresh(&mut self, id: u64, t: i64, v: f64) {
        self.fresh.push((id, t, v));
    }

    /// Records that the batch appends a head sample of series `id` at `t`.
    pub(crate) fn appends(&mut self, id: u64, t: i64) {
        self.appended.push((id, t));
    }

    /// Records that once the batch is written, series `id` has no head
    /// sample before `t`: the batch was built under the write lock from
    /// what the head held ([`Db::read_modify_write`]), and it appends none
    /// to the series.
    pub(crate) fn head_starts_at(&mut self, id: u64, t: i64) {
        self.compacted.push((id, t));
    }

    /// Records that the batch writes a chunk of series `id` whose last
    /// sample is at `last_ts`, or deletes chunks up to the one ending there
    /// (retention: an older snapshot still holds them, so the series' chunk
    /// end must not stay below them). Either way the chunk end rises to it.
    pub(crate) fn touches_chunk(&mut self, id: u64, last_ts: i64) {
        self.chunks.push((id, last_ts));
    }
}

impl Deref for DbBatch {
    type Target = WriteBatch;
    fn deref(&self) -> &WriteBatch {
        &self.wb
    }
}

impl DerefMut for DbBatch {
    fn deref_mut(&mut self) -> &mut WriteBatch {
        &mut self.wb
    }
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("path", &self.inner.path())
            .finish()
    }
}

/// Turns off RocksDB's per-thread perf counters on the calling thread.
/// They are on (counts) by default, and with the shared librocksdb every
/// key comparison then reaches them through `__tls_get_addr`: a sixth of
/// the node's CPU under a scrape load. Every thread that reads or writes
/// calls this first (the writer thread, and the runtime's threads through
/// `on_thread_start`).
pub fn disable_perf_counters() {
    rocksdb::perf::set_perf_stats(rocksdb::perf::PerfStatsLevel::Disable);
}

impl Db {
    /// Opens (creating if missing) the database in `path` with every column
    /// family of [`keys::ALL_CFS`].
    pub fn open(path: &Path) -> Result<Self> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        // Acks wait for an explicit WAL sync; never let RocksDB skip the WAL.
        opts.set_manual_wal_flush(false);
        // A WAL cut short at its end (a crash during an unsynced write) is
        // replayed up to the cut; damage anywhere else fails the open. The
        // default, point-in-time recovery, would replay up to the damage
        // and drop every synced (acked) write after it without a word.
        opts.set_wal_recovery_mode(DBRecoveryMode::TolerateCorruptedTailRecords);
        // A column family written slowly (chunks, the index) keeps every
        // WAL file since its last flush alive until its memtable fills:
        // loading 32 M samples left 1.5 GB of WAL to replay at the next
        // start, and every chunk in a memtable. Past this size RocksDB
        // flushes the column families that hold the oldest WAL file.
        opts.set_max_total_wal_size(MAX_TOTAL_WAL_BYTES);
        // One block cache for every column family: queries re-read the
        // index and the recent chunks of many series; RocksDB's default
        // (8 MiB per table factory) thrashes on them.
        let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES)?;
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        // Readers fetch a series' newest chunk by its key
        // ([`crate::chunk_ends`]): a bloom filter over whole keys (and one in
        // the memtable) lets each fetch skip the files and the memtable
        // that do not hold it.
        let mut chunks_table = BlockBasedOptions::default();
        chunks_table.set_block_cache(&cache);
        chunks_table.set_bloom_filter(10.0, false);
        chunks_table.set_whole_key_filtering(true);
        let cfs = keys::ALL_CFS.iter().map(|name| {
            let mut cf_opts = Options::default();
            cf_opts.set_write_buffer_size(MEMTABLE_BYTES);
            if *name == keys::CF_WAL || *name == keys::CF_OPEN_CHUNKS {
                // Short-lived and rewritten at every checkpoint.
                cf_opts.set_compression_type(DBCompressionType::None);
            }
            if *name == keys::CF_CHUNKS {
                cf_opts.set_block_based_table_factory(&chunks_table);
                cf_opts.set_memtable_whole_key_filtering(true);
                cf_opts.set_memtable_prefix_bloom_ratio(0.05);
            } else {
                cf_opts.set_block_based_table_factory(&table);
            }
            if keys::SERIES_PREFIXED_CFS.contains(name) {
                // Chunks are compressed already and the head is short-lived:
                // block compression would cost every read for little space.
                cf_opts.set_compression_type(DBCompressionType::None);
                // Keys start with the series id: a cursor reading one series
                // stops at its last key instead of stepping on through the
                // next series' deleted keys ([`Db::series_read_options`]).
                cf_opts.set_prefix_extractor(SliceTransform::create_fixed_prefix(
                    keys::SERIES_PREFIX_LEN,
                ));
            }
            ColumnFamilyDescriptor::new(*name, cf_opts)
        });
        let inner = DB::open_cf_descriptors(&opts, path, cfs).map_err(|e| Error::Open {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let head = HeadBounds::load(head_oldest(&inner)?);
        let chunk_ends = ChunkEnds::default();
        let (open, recovered) = {
            let cf = |name| {
                inner
                    .cf_handle(name)
                    .expect("every column family is opened with the database")
            };
            let cfs = open_chunks::Cfs {
                chunks: cf(keys::CF_CHUNKS),
                wal: cf(keys::CF_WAL),
                open: cf(keys::CF_OPEN_CHUNKS),
            };
            let (mut wb, mut chunks, mut cut) = (WriteBatch::default(), Vec::new(), Vec::new());
            let (open, recovered) = OpenChunks::recover(
                &inner,
                &mut Staging {
                    cfs: &cfs,
                    wb: &mut wb,
                    chunks: &mut chunks,
                    cut: &mut cut,
                },
            )?;
            chunk_ends.raise(&chunks);
            if !wb.is_empty() {
                let mut wo = WriteOptions::default();
                wo.set_sync(true);
                inner.write_opt(wb, &wo)?;
            }
            (open, recovered)
        };
        tracing::info!(
            checkpointed = recovered.checkpointed,
            cut_since_checkpoint = recovered.cut_since,
            wal_records = recovered.wal_records,
            wal_samples = recovered.wal_samples,
            "open chunks recovered"
        );
        Ok(Self {
            inner,
            write_lock: Mutex::new(()),
            head,
            chunk_ends,
            open,
            writes_refused: Default::default(),
        })
    }

    /// Returns every series' open chunk ([`crate::open_chunks`]).
    pub fn open_chunks(&self) -> &OpenChunks {
        &self.open
    }

    fn open_cfs(&self) -> open_chunks::Cfs<'_> {
        open_chunks::Cfs {
            chunks: self.cf(keys::CF_CHUNKS),
            wal: self.cf(keys::CF_WAL),
            open: self.cf(keys::CF_OPEN_CHUNKS),
        }
    }

    /// Writes a checkpoint of the open chunks when one is due
    /// ([`OpenChunks::checkpoint_due`]), unsynced like every write; returns
    /// what it wrote.
    pub fn checkpoint_if_due(&self) -> Result<Option<open_chunks::Checkpoint>> {
        if !self.open.checkpoint_due() {
            return Ok(None);
        }
        self.checkpoint_open_chunks().map(Some)
    }

    /// Compacts the `open_chunks` and `wal` column families when their
    /// files hold much more than the last checkpoint: every checkpoint
    /// supersedes most of the one before and deletes the records before
    /// it, and RocksDB's own compactions leave that in its files for long
    /// (68 MB of superseded checkpoints after an hour at 100,000 series).
    /// Returns whether it compacted. Runs beside writes; call it off the
    /// writer thread.
    pub fn compact_superseded_checkpoints(&self) -> Result<bool> {
        self.compact_checkpoints_beyond(2 * MEMTABLE_BYTES as u64)
    }

    /// [`Self::compact_superseded_checkpoints`] when the files hold more
    /// than twice the live bytes plus `slack`.
    pub(crate) fn compact_checkpoints_beyond(&self, slack: u64) -> Result<bool> {
        let on_disk = self.sst_bytes(keys::CF_OPEN_CHUNKS)? + self.sst_bytes(keys::CF_WAL)?;
        let live = self.open.checkpointed_bytes();
        if on_disk <= 2 * live + slack {
            return Ok(false);
        }
        // Bottommost too: a file RocksDB would move down as is keeps the
        // superseded versions this is meant to drop.
        let mut opts = rocksdb::CompactOptions::default();
        opts.set_bottommost_level_compaction(rocksdb::BottommostLevelCompaction::Force);
        for cf in [keys::CF_OPEN_CHUNKS, keys::CF_WAL] {
            self.inner
                .compact_range_cf_opt(self.cf(cf), None::<&[u8]>, None::<&[u8]>, &opts);
        }
        Ok(true)
    }

    /// The bytes of column family `cf`'s files.
    pub fn sst_bytes(&self, cf: &'static str) -> Result<u64> {
        Ok(self
            .inner
            .property_int_value_cf(self.cf(cf), "rocksdb.total-sst-files-size")?
            .unwrap_or(0))
    }

    /// Flushes every column family and rewrites all of its files, the
    /// bottommost level too (else a lone flushed file is moved down as is,
    /// deleted keys and all): what measurements of size on disk want.
    pub fn compact_fully(&self) -> Result<()> {
        let mut opts = rocksdb::CompactOptions::default();
        opts.set_bottommost_level_compaction(rocksdb::BottommostLevelCompaction::Force);
        for cf in keys::ALL_CFS {
            self.inner.flush_cf(self.cf(cf))?;
            self.inner
                .compact_range_cf_opt(self.cf(cf), None::<&[u8]>, None::<&[u8]>, &opts);
        }
        Ok(())
    }

    /// Writes a checkpoint of the open chunks now (unsynced).
    pub fn checkpoint_open_chunks(&self) -> Result<open_chunks::Checkpoint> {
        let _guard = self.lock_writes();
        let cfs = self.open_cfs();
        let (mut wb, mut chunks, mut cut) = (WriteBatch::default(), Vec::new(), Vec::new());
        let done = self.open.checkpoint(
            self.head.safe_epoch(),
            &mut Staging {
                cfs: &cfs,
                wb: &mut wb,
                chunks: &mut chunks,
                cut: &mut cut,
            },
        );
        self.chunk_ends.raise(&chunks);
        let mut wo = WriteOptions::default();
        wo.set_sync(false);
        self.inner.write_opt(wb, &wo)?;
        if !cut.is_empty() {
            self.open.cuts_applied(&cut, self.head.new_epoch());
        }
        // The records the checkpoint deleted: whole files of them go now,
        // the rest with RocksDB's compactions. Dropping files is durable at
        // once, so the checkpoint that makes them unneeded is made durable
        // first (a power loss must not leave neither).
        self.sync_wal()?;
        self.inner.delete_file_in_range_cf(
            cfs.wal,
            open_chunks::wal::key(0),
            open_chunks::wal::key(done.wal_end),
        )?;
        Ok(done)
    }

    /// Returns where each series' chunks end ([`crate::chunk_ends`]).
    pub fn chunk_ends(&self) -> &ChunkEnds {
        &self.chunk_ends
    }

    /// Returns the head bounds ([`crate::head_bounds`]).
    pub fn head_bounds(&self) -> &HeadBounds {
        &self.head
    }

    /// Returns the handle of column family `name`, one of [`keys::ALL_CFS`].
    pub fn cf(&self, name: &'static str) -> &ColumnFamily {
        self.inner
            .cf_handle(name)
            .unwrap_or_else(|| panic!("column family {name} is opened with the database"))
    }

    /// Read options for an iterator over several series of a
    /// [`keys::SERIES_PREFIXED_CFS`] column family: total key order, as the
    /// prefix extractor would otherwise only promise order within a series.
    pub fn total_order_read_options() -> ReadOptions {
        let mut ro = ReadOptions::default();
        ro.set_total_order_seek(true);
        ro
    }

    /// Read options for an iterator that reads one series per seek of a
    /// [`keys::SERIES_PREFIXED_CFS`] column family: it ends at the last key
    /// of the series it was sought into.
    pub fn series_read_options() -> ReadOptions {
        let mut ro = ReadOptions::default();
        ro.set_prefix_same_as_start(true);
        ro
    }

    /// Returns the raw RocksDB handle.
    pub fn raw(&self) -> &DB {
        &self.inner
    }

    /// Reads one key.
    pub fn get(&self, cf: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.inner.get_cf(self.cf(cf), key)?)
    }

    /// Reads a u64 record from `meta`.
    pub fn get_meta_u64(&self, key: &[u8]) -> Result<Option<u64>> {
        match self.get(keys::CF_META, key)? {
            None => Ok(None),
            Some(v) => keys::decode_u64(&v)
                .map(Some)
                .ok_or(Error::Corrupt { what: "meta" }),
        }
    }

    /// Applies `batch` atomically without syncing the WAL; the caller syncs
    /// with [`Db::sync_wal`] before it acknowledges.
    pub fn write_unsynced(&self, batch: DbBatch) -> Result<()> {
        let _guard = self.lock_writes();
        self.write_locked(batch)
    }

    /// Runs `f` while no other write can happen and writes the batch it
    /// returns (unsynced, like [`Db::write_unsynced`]) before any other
    /// write. What `f` reads therefore stays true until its batch is applied.
    /// Keep `f` short: ingest waits for it.
    pub fn read_modify_write<T>(&self, f: impl FnOnce() -> Result<(DbBatch, T)>) -> Result<T> {
        let _guard = self.lock_writes();
        let (batch, out) = f()?;
        self.write_locked(batch)?;
        Ok(out)
    }

    /// Raises the head bounds that compactions have earned, as far as the
    /// readers still running allow ([`HeadBounds::apply_ready`]). Every
    /// write does this too; the compactor calls it at the end of a round so
    /// an idle node's bounds rise as well.
    pub fn apply_head_narrowings(&self) {
        let _guard = self.lock_writes();
        self.head.apply_ready();
        self.open.prune_recent(self.head.safe_epoch());
    }

    fn lock_writes(&self) -> MutexGuard<'_, ()> {
        // The lock guards no data, so a panic while holding it leaves
        // nothing inconsistent.
        self.write_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_locked(&self, batch: DbBatch) -> Result<()> {
        let DbBatch {
            mut wb,
            mut appended,
            compacted,
            mut chunks,
            fresh,
        } = batch;
        let mut cut = Vec::new();
        if !fresh.is_empty() {
            let cfs = self.open_cfs();
            let late = self.open.stage(
                &fresh,
                self.head.safe_epoch(),
                &mut Staging {
                    cfs: &cfs,
                    wb: &mut wb,
                    chunks: &mut chunks,
                    cut: &mut cut,
                },
            );
            // Not after the newest in memory (the writer checks against
            // the newest stored, so only a race with nothing): kept as
            // head samples rather than lost.
            let cf = self.cf(keys::CF_SAMPLES);
            for (id, t, v) in late {
                wb.put_cf(cf, keys::sample_key(id, t), keys::encode_sample_value(v));
                appended.push((id, t));
            }
        }
        // Before the write: no snapshot may hold a head sample its series'
        // bound is above, or a chunk past its series' chunk end.
        self.head.widen(&appended);
        self.chunk_ends.raise(&chunks);
        if !wb.is_empty() {
            let mut wo = WriteOptions::default();
            wo.set_sync(false);
            self.inner.write_opt(wb, &wo)?;
        }
        if !cut.is_empty() {
            self.open.cuts_applied(&cut, self.head.new_epoch());
        }
        self.open.prune_recent(self.head.safe_epoch());
        self.head.compacted(&compacted);
        self.head.apply_ready();
        Ok(())
    }

    /// The database's directory.
    pub fn path(&self) -> &Path {
        self.inner.path()
    }

    /// Whether the writer refuses writes for want of space now.
    pub fn writes_refused(&self) -> bool {
        self.writes_refused
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn set_writes_refused(&self, refused: bool) {
        self.writes_refused
            .store(refused, std::sync::atomic::Ordering::Relaxed);
    }

    /// Returns how many background errors (failed flushes and compactions)
    /// RocksDB has met since the database was opened.
    pub fn background_errors(&self) -> u64 {
        self.inner
            .property_int_value("rocksdb.background-errors")
            .ok()
            .flatten()
            .unwrap_or(0)
    }

    /// Writes one meta key and nothing else (no samples, nothing staged in
    /// memory): whether RocksDB takes writes, without any risk to the
    /// state a failed write would leave behind.
    pub fn probe_write(&self) -> Result<()> {
        let mut wb = DbBatch::default();
        wb.put_cf(self.cf(keys::CF_META), keys::META_DISK_PROBE, []);
        self.write_unsynced(wb)
    }

    /// Flushes and fsyncs the WAL: every write before it is durable after it.
    pub fn sync_wal(&self) -> Result<()> {
        Ok(self.inner.flush_wal(true)?)
    }
}

/// Returns the oldest head sample of every series with one: (series id,
/// timestamp), in id order. One seek per series.
fn head_oldest(db: &DB) -> Result<Vec<(u64, i64)>> {
    let cf = db
        .cf_handle(keys::CF_SAMPLES)
        .expect("the samples column family is opened with the database");
    let mut it = db.raw_iterator_cf_opt(cf, Db::total_order_read_options());
    it.seek_to_first();
    let mut out = Vec::new();
    while let Some(k) = it.key() {
        let (id, t) = keys::decode_sample_key(k).ok_or(Error::Corrupt { what: "sample" })?;
        out.push((id, t));
        match id.checked_add(1) {
            Some(next) => it.seek(keys::sample_key(next, i64::MIN)),
            None => break,
        }
    }
    it.status()?;
    Ok(out)
}
