//! Exemplars as Prometheus 2.42 keeps them with
//! `--enable-feature=exemplar-storage` (`tsdb/exemplar.go`), stored in the
//! `exemplars` column family ([`crate::keys`] documents the layout).
//!
//! [`check`] is Prometheus's `validateExemplar`: an exemplar whose label set
//! has more than [`MAX_LABEL_SET_RUNES`] characters is rejected; per
//! series, one equal to the newest stored exemplar is a duplicate (a no-op)
//! and one not newer than it is out of order. Neither fails the batch. The
//! writer thread keeps the newest exemplar of each series and the arrival
//! order of everything stored (loaded with [`load`] at start) to decide, and
//! writes with [`put`] into the batch's own `WriteBatch`, so exemplars are
//! as atomic and as durable as the samples they came with.
//!
//! How many are kept: like Prometheus's circular buffer
//! (`storage.exemplars.max_exemplars`, 100000 by default), at most a fixed
//! number in total; the writer deletes the oldest arrivals beyond it in the
//! same `WriteBatch` that adds new ones. And like samples, exemplars are
//! deleted by [`crate::retention`] once the scrape that brought them is
//! older than the retention cut-off.
//!
//! [`select`] answers `/api/v1/query_exemplars` from one snapshot.

use std::collections::HashMap;

use rocksdb::WriteBatch;
use scrapegrid_common::Labels;

use crate::db::Db;
use crate::error::{Error, Result};
use crate::index::Matcher;
use crate::keys;

/// Characters (UTF-8 runes) an exemplar's label names and values may have
/// together, as OpenMetrics and Prometheus's `ExemplarMaxLabelSetLength`.
pub const MAX_LABEL_SET_RUNES: usize = 128;

/// Exemplars kept at most by default: Prometheus's default
/// `storage.exemplars.max_exemplars`.
pub const DEFAULT_MAX_EXEMPLARS: usize = 100_000;

/// One exemplar.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    pub labels: Labels,
    pub value: f64,
    /// Milliseconds since the epoch: the exposition's, or its sample's.
    pub ts_ms: i64,
    /// Whether the exposition gave `ts_ms`.
    pub has_ts: bool,
}

impl Exemplar {
    /// Returns whether `self` and `other` are the same exemplar, as
    /// Prometheus's `Exemplar.Equals`: same labels and value, and the same
    /// timestamp unless neither has an explicit one (an exemplar without a
    /// timestamp gets each scrape's, yet repeating it is no new exemplar).
    pub fn same_as(&self, other: &Exemplar) -> bool {
        self.labels == other.labels
            && (!(self.has_ts || other.has_ts) || self.ts_ms == other.ts_ms)
            && self.value == other.value
    }
}

/// What happens to an incoming exemplar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Stored; it becomes the series' newest.
    Append,
    /// The same as the series' newest: nothing to store (no error).
    Duplicate,
    /// Not newer than the series' newest: dropped
    /// (`ErrOutOfOrderExemplar`).
    OutOfOrder,
    /// Label set longer than [`MAX_LABEL_SET_RUNES`]: dropped
    /// (`ErrExemplarLabelLength`).
    LabelsTooLong,
}

/// Decides on exemplar `e` of a series whose newest stored exemplar is
/// `newest`, in the order Prometheus's `validateExemplar` checks.
pub fn check(newest: Option<&Exemplar>, e: &Exemplar) -> Verdict {
    if label_set_runes(&e.labels) > MAX_LABEL_SET_RUNES {
        return Verdict::LabelsTooLong;
    }
    let Some(newest) = newest else {
        return Verdict::Append;
    };
    if newest.same_as(e) {
        Verdict::Duplicate
    } else if e.ts_ms <= newest.ts_ms {
        Verdict::OutOfOrder
    } else {
        Verdict::Append
    }
}

/// Returns the characters of every label name and value together.
pub fn label_set_runes(labels: &Labels) -> usize {
    labels
        .iter()
        .map(|l| l.name.chars().count() + l.value.chars().count())
        .sum()
}

/// Adds exemplar `e` of series `id`, arrived with the scrape at
/// `ingest_ms`, to `wb`; returns its key.
pub fn put(db: &Db, wb: &mut WriteBatch, id: u64, ingest_ms: i64, e: &Exemplar) -> [u8; 24] {
    let key = keys::exemplar_key(id, ingest_ms, e.ts_ms);
    wb.put_cf(
        db.cf(keys::CF_EXEMPLARS),
        key,
        keys::encode_exemplar_value(&e.labels, e.value, e.has_ts),
    );
    key
}

/// Adds the deletion of the exemplar at `key` to `wb`.
pub fn delete(db: &Db, wb: &mut WriteBatch, key: &[u8; 24]) {
    wb.delete_cf(db.cf(keys::CF_EXEMPLARS), key);
}

fn corrupt() -> Error {
    Error::Corrupt { what: "exemplar" }
}

fn decode(key: &[u8], value: &[u8]) -> Result<(u64, Exemplar)> {
    let (id, _, ts_ms) = keys::decode_exemplar_key(key).ok_or_else(corrupt)?;
    let (labels, value, has_ts) = keys::decode_exemplar_value(value).ok_or_else(corrupt)?;
    Ok((
        id,
        Exemplar {
            labels,
            value,
            ts_ms,
            has_ts,
        },
    ))
}

/// What the writer needs of the stored exemplars at start.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Every key, in arrival order (ingest time, then series, then
    /// timestamp), oldest first.
    pub keys: Vec<[u8; 24]>,
    /// The newest exemplar of each series (its last key) with its key.
    pub newest: HashMap<u64, ([u8; 24], Exemplar)>,
}

/// Reads every stored exemplar's key, and the newest of each series.
/// Blocking; the count is bounded by the writer's limit.
pub fn load(db: &Db) -> Result<Loaded> {
    let mut out = Loaded::default();
    let mut it = db.raw().raw_iterator_cf(db.cf(keys::CF_EXEMPLARS));
    it.seek_to_first();
    let mut arrivals = Vec::new();
    while let Some(k) = it.key() {
        let (id, ingest, ts) = keys::decode_exemplar_key(k).ok_or_else(corrupt)?;
        let key: [u8; 24] = k.try_into().map_err(|_| corrupt())?;
        arrivals.push((ingest, id, ts, key));
        // Keys of a series are contiguous and in arrival order: the last
        // one seen is its newest.
        let value = it.value().ok_or_else(corrupt)?;
        let (_, e) = decode(k, value)?;
        out.newest.insert(id, (key, e));
        it.next();
    }
    it.status()?;
    arrivals.sort_unstable();
    out.keys = arrivals.into_iter().map(|(_, _, _, k)| k).collect();
    Ok(out)
}

/// The exemplars of one series, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesExemplars {
    pub labels: Labels,
    pub exemplars: Vec<Exemplar>,
}

/// Returns, sorted by series labels, the series matching every matcher of
/// at least one of `matcher_sets` with their exemplars timestamped within
/// `[start, end]`; series without such exemplars are left out. As
/// Prometheus's `CircularExemplarStorage.Select`, it walks the stored
/// exemplars (bounded by the writer's limit), not the series index.
pub fn select(
    db: &Db,
    matcher_sets: &[Vec<Matcher>],
    start: i64,
    end: i64,
) -> Result<Vec<SeriesExemplars>> {
    let snap = db.raw().snapshot();
    let mut it = snap.raw_iterator_cf(db.cf(keys::CF_EXEMPLARS));
    it.seek_to_first();
    let mut out = Vec::new();
    // The series being read: its id, whether it matches, its exemplars.
    let mut current: Option<(u64, Option<Labels>, Vec<Exemplar>)> = None;
    let mut flush = |current: Option<(u64, Option<Labels>, Vec<Exemplar>)>| {
        if let Some((_, Some(labels), exemplars)) = current {
            if !exemplars.is_empty() {
                out.push(SeriesExemplars { labels, exemplars });
            }
        }
    };
    while let Some(k) = it.key() {
        let (id, _, ts) = keys::decode_exemplar_key(k).ok_or_else(corrupt)?;
        if current.as_ref().is_none_or(|(cur, _, _)| *cur != id) {
            flush(current.take());
            current = Some((id, None, Vec::new()));
        }
        let Some((_, labels, exemplars)) = current.as_mut() else {
            unreachable!("set above");
        };
        if ts < start || ts > end {
            it.next();
            continue;
        }
        if labels.is_none() {
            let v = snap
                .get_cf(db.cf(keys::CF_SERIES), keys::series_key(id))?
                .ok_or(Error::Corrupt { what: "series" })?;
            let series = keys::decode_labels(&v).ok_or(Error::Corrupt { what: "series" })?;
            if !matcher_sets
                .iter()
                .any(|set| set.iter().all(|m| m.matches_labels(&series)))
            {
                // Skip the rest of this series.
                match id.checked_add(1) {
                    Some(next) => it.seek(keys::exemplar_prefix(next, i64::MIN)),
                    None => break,
                }
                current = None;
                continue;
            }
            *labels = Some(series);
        }
        exemplars.push(decode(k, it.value().ok_or_else(corrupt)?)?.1);
        it.next();
    }
    it.status()?;
    flush(current);
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(out)
}

#[cfg(test)]
mod tests;
