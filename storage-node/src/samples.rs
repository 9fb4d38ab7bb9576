//! Sample storage: how samples are appended and read back.
//!
//! Today each sample is one key in the `samples` CF ([`keys::sample_key`]).
//! Compressed chunks will replace that layout behind these three functions;
//! nothing else reads or writes the `samples` CF.

use rocksdb::{ReadOptions, WriteBatch};

use crate::db::Db;
use crate::error::{Error, Result};
use crate::keys;

/// One stored sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub t: i64,
    pub v: f64,
}

/// Adds a sample of series `id` to `wb`; a sample at the same timestamp is
/// overwritten.
pub fn append(db: &Db, wb: &mut WriteBatch, id: u64, ts_ms: i64, value: f64) {
    wb.put_cf(
        db.cf(keys::CF_SAMPLES),
        keys::sample_key(id, ts_ms),
        keys::encode_sample_value(value),
    );
}

fn range_iter(db: &Db, id: u64, mint: i64, maxt: i64) -> rocksdb::DBRawIterator<'_> {
    let mut ro = ReadOptions::default();
    // Exclusive bound: the key after (id, maxt).
    let upper = match maxt.checked_add(1) {
        Some(t) => keys::sample_key(id, t).to_vec(),
        None => keys::sample_key(id.wrapping_add(1), i64::MIN).to_vec(),
    };
    if id != u64::MAX || maxt != i64::MAX {
        ro.set_iterate_upper_bound(upper);
    }
    let mut it = db.raw().raw_iterator_cf_opt(db.cf(keys::CF_SAMPLES), ro);
    it.seek(keys::sample_key(id, mint));
    it
}

/// Returns the samples of series `id` with `mint <= t <= maxt`, oldest
/// first, stale markers included.
pub fn read(db: &Db, id: u64, mint: i64, maxt: i64) -> Result<Vec<Sample>> {
    let mut out = Vec::new();
    if mint > maxt {
        return Ok(out);
    }
    let mut it = range_iter(db, id, mint, maxt);
    while it.valid() {
        let (Some(k), Some(v)) = (it.key(), it.value()) else {
            break;
        };
        let corrupt = || Error::Corrupt { what: "sample" };
        let (sid, t) = keys::decode_sample_key(k).ok_or_else(corrupt)?;
        if sid != id || t > maxt {
            break;
        }
        let v = keys::decode_sample_value(v).ok_or_else(corrupt)?;
        out.push(Sample { t, v });
        it.next();
    }
    it.status()?;
    Ok(out)
}

/// Returns whether series `id` has any sample with `mint <= t <= maxt`.
pub fn any_in(db: &Db, id: u64, mint: i64, maxt: i64) -> Result<bool> {
    if mint > maxt {
        return Ok(false);
    }
    let it = range_iter(db, id, mint, maxt);
    let found = it.valid()
        && it
            .key()
            .and_then(keys::decode_sample_key)
            .is_some_and(|(sid, t)| sid == id && t <= maxt);
    it.status()?;
    Ok(found)
}
