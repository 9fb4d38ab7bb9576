//! Opening RocksDB with the node's column families, and the shared handle.
//!
//! [`Db`] is shared (`Arc<Db>`) by the writer thread, which is the only
//! writer, and by the query paths, which only read. RocksDB is safe for that
//! concurrent use; every call here blocks, so async code calls it from
//! `spawn_blocking` or from the writer thread.

use std::path::Path;

use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, Options, WriteBatch, WriteOptions, DB};

use crate::error::{Error, Result};
use crate::keys;

/// The open database.
pub struct Db {
    inner: DB,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("path", &self.inner.path())
            .finish()
    }
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
        let cfs = keys::ALL_CFS
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, Options::default()));
        let inner = DB::open_cf_descriptors(&opts, path, cfs)?;
        Ok(Self { inner })
    }

    /// Returns the handle of column family `name`, one of [`keys::ALL_CFS`].
    pub fn cf(&self, name: &'static str) -> &ColumnFamily {
        self.inner
            .cf_handle(name)
            .unwrap_or_else(|| panic!("column family {name} is opened with the database"))
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
    pub fn write_unsynced(&self, batch: WriteBatch) -> Result<()> {
        let mut wo = WriteOptions::default();
        wo.set_sync(false);
        Ok(self.inner.write_opt(batch, &wo)?)
    }

    /// Flushes and fsyncs the WAL: every write before it is durable after it.
    pub fn sync_wal(&self) -> Result<()> {
        Ok(self.inner.flush_wal(true)?)
    }
}
