//! The series index: label matchers evaluated over postings, label name
//! and value listings, and the one writer of its entries ([`put_series`]);
//! [`crate::keys`] describes the layout.
//!
//! Matchers follow Prometheus: a missing label has the value "", so a
//! matcher that matches "" also selects series without the label
//! (`{env=""}` selects series without `env`, `{foo!="bar"}` includes series
//! without `foo`). Selection therefore starts from the postings of matchers
//! that do NOT match "" (an equality reads one posting list, the others the
//! union of the matching values' lists), intersects them, and checks every
//! matcher against the candidates' label sets. A matcher set with no such
//! matcher would select everything and is refused, as Prometheus does.

use std::collections::BTreeSet;

use regex::Regex;
use rocksdb::{DBRawIterator, ReadOptions, Snapshot, WriteBatch};
use scrapegrid_common::labels::sort_by_labels;
use scrapegrid_common::{CompactLabels, Labels};
use scrapegrid_proto::v1 as pb;

use crate::db::Db;
use crate::error::{Error, Result};
use crate::{keys, samples};

/// Adds a new series to `wb`: its label set both ways and its postings.
pub(crate) fn put_series(db: &Db, wb: &mut WriteBatch, id: u64, labels: &CompactLabels) {
    // CompactLabels' bytes are keys::encode_labels' encoding.
    let encoded = labels.as_bytes();
    wb.put_cf(db.cf(keys::CF_SERIES), keys::series_key(id), encoded);
    wb.put_cf(
        db.cf(keys::CF_SERIES_BY_LABELS),
        encoded,
        keys::encode_u64(id),
    );
    let postings = db.cf(keys::CF_POSTINGS);
    wb.put_cf(postings, keys::all_postings_key(id), []);
    for (name, value) in labels.iter() {
        wb.put_cf(postings, keys::postings_key(name, value, id), []);
    }
}

/// Adds the removal of series `id` (labelled `labels`) from the index to
/// `wb`: its postings and its `series_by_labels` entry, so no selector or
/// listing finds it. Its labels by id (`series`) stay, for whoever still
/// names the id (a remote write queue): [`forget_series`] removes them.
pub(crate) fn unindex_series(db: &Db, wb: &mut WriteBatch, id: u64, labels: &CompactLabels) {
    wb.delete_cf(db.cf(keys::CF_SERIES_BY_LABELS), labels.as_bytes());
    let postings = db.cf(keys::CF_POSTINGS);
    wb.delete_cf(postings, keys::all_postings_key(id));
    for (name, value) in labels.iter() {
        wb.delete_cf(postings, keys::postings_key(name, value, id));
    }
}

/// Adds the removal of series `id`'s labels by id to `wb`: with
/// [`unindex_series`], the inverse of [`put_series`].
pub(crate) fn forget_series(db: &Db, wb: &mut WriteBatch, id: u64) {
    wb.delete_cf(db.cf(keys::CF_SERIES), keys::series_key(id));
}

/// How a matcher compares a label value.
#[derive(Debug, Clone)]
pub enum MatchOp {
    Equal(String),
    NotEqual(String),
    /// An anchored regex (`^(?:re)$`).
    Regex(Regex),
    NotRegex(Regex),
}

/// One label matcher.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
}

impl Matcher {
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            op: MatchOp::Equal(value.into()),
        }
    }

    pub fn not_equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            op: MatchOp::NotEqual(value.into()),
        }
    }

    /// Builds a regex matcher; `re` is anchored at both ends.
    pub fn regex(name: impl Into<String>, re: &str) -> Result<Self> {
        Ok(Self {
            name: name.into(),
            op: MatchOp::Regex(anchored(re)?),
        })
    }

    /// Builds a negated regex matcher; `re` is anchored at both ends.
    pub fn not_regex(name: impl Into<String>, re: &str) -> Result<Self> {
        Ok(Self {
            name: name.into(),
            op: MatchOp::NotRegex(anchored(re)?),
        })
    }

    /// Converts a wire matcher, compiling its regex.
    pub fn from_proto(m: &pb::Matcher) -> Result<Self> {
        match pb::MatchType::try_from(m.r#type) {
            Ok(pb::MatchType::Equal) => Ok(Self::equal(&m.name, &m.value)),
            Ok(pb::MatchType::NotEqual) => Ok(Self::not_equal(&m.name, &m.value)),
            Ok(pb::MatchType::Regex) => Self::regex(&m.name, &m.value),
            Ok(pb::MatchType::NotRegex) => Self::not_regex(&m.name, &m.value),
            Err(_) => Err(Error::InvalidMatchers(format!(
                "unknown match type {}",
                m.r#type
            ))),
        }
    }

    /// Converts a parsed PromQL matcher; its regex is anchored already.
    pub fn from_promql(m: &promql_parser::label::Matcher) -> Self {
        use promql_parser::label::MatchOp as P;
        let op = match &m.op {
            P::Equal => MatchOp::Equal(m.value.clone()),
            P::NotEqual => MatchOp::NotEqual(m.value.clone()),
            P::Re(re) => MatchOp::Regex(re.clone()),
            P::NotRe(re) => MatchOp::NotRegex(re.clone()),
        };
        Self {
            name: m.name.clone(),
            op,
        }
    }

    /// Returns whether the matcher accepts `value` ("" for a missing label).
    pub fn matches(&self, value: &str) -> bool {
        match &self.op {
            MatchOp::Equal(v) => v == value,
            MatchOp::NotEqual(v) => v != value,
            MatchOp::Regex(re) => re.is_match(value),
            MatchOp::NotRegex(re) => !re.is_match(value),
        }
    }

    /// Returns whether the matcher accepts a series without the label.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// Returns whether the matcher accepts `labels`.
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name).unwrap_or(""))
    }
}

fn anchored(re: &str) -> Result<Regex> {
    Regex::new(&format!("^(?:{re})$"))
        .map_err(|e| Error::InvalidMatchers(format!("invalid regex {re:?}: {e}")))
}

/// A closed time range in milliseconds; [`TimeRange::ALL`] skips the
/// per-series sample check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub start: i64,
    pub end: i64,
}

impl TimeRange {
    pub const ALL: TimeRange = TimeRange {
        start: i64::MIN,
        end: i64::MAX,
    };

    pub fn is_all(&self) -> bool {
        *self == Self::ALL
    }
}

/// Checks that `matchers` can select series: at least one, and at least one
/// that does not match the empty string.
pub fn check_selectable(matchers: &[Matcher]) -> Result<()> {
    if matchers.iter().all(Matcher::matches_empty) {
        return Err(Error::InvalidMatchers(
            "vector selector must contain at least one non-empty matcher".into(),
        ));
    }
    Ok(())
}

/// Returns the sorted intersection of sorted `a` and `b`.
fn intersect(a: &[u64], b: &[u64]) -> Vec<u64> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// Read access to the series index: of the live database, or of a snapshot
/// (so that a query reads the index and the samples at one point in time).
#[derive(Clone, Copy)]
pub struct Index<'a> {
    db: &'a Db,
    snap: Option<&'a Snapshot<'a>>,
}

impl<'a> Index<'a> {
    /// The index of the live database.
    pub fn new(db: &'a Db) -> Self {
        Self { db, snap: None }
    }

    /// The index as `snap` sees it.
    pub fn at(db: &'a Db, snap: &'a Snapshot<'a>) -> Self {
        Self {
            db,
            snap: Some(snap),
        }
    }

    fn iter(&self, cf: &'static str, ro: ReadOptions) -> DBRawIterator<'a> {
        match self.snap {
            Some(snap) => snap.raw_iterator_cf_opt(self.db.cf(cf), ro),
            None => self.db.raw().raw_iterator_cf_opt(self.db.cf(cf), ro),
        }
    }

    fn get(&self, cf: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(match self.snap {
            Some(snap) => snap.get_cf(self.db.cf(cf), key)?,
            None => self.db.get(cf, key)?,
        })
    }

    /// Calls `f` with every postings key starting with `prefix`.
    fn scan_postings(
        &self,
        prefix: &[u8],
        mut f: impl FnMut(keys::PostingsKey<'_>) -> Result<()>,
    ) -> Result<()> {
        let mut ro = ReadOptions::default();
        if let Some(end) = keys::prefix_end(prefix) {
            ro.set_iterate_upper_bound(end);
        }
        let mut it = self.iter(keys::CF_POSTINGS, ro);
        it.seek(prefix);
        while let Some(k) = it.key() {
            if !k.starts_with(prefix) {
                break;
            }
            f(keys::decode_postings_key(k).ok_or(Error::Corrupt { what: "postings" })?)?;
            it.next();
        }
        it.status()?;
        Ok(())
    }

    /// Returns the sorted ids of the series with `name="value"`.
    pub fn postings(&self, name: &str, value: &str) -> Result<Vec<u64>> {
        let prefix = keys::postings_prefix(name, value);
        let mut ids = Vec::new();
        self.scan_postings(&prefix, |k| {
            // A longer key belongs to a value that has `value\0` as a prefix.
            if k.value == value.as_bytes() {
                ids.push(k.id);
            }
            Ok(())
        })?;
        Ok(ids)
    }

    /// Returns the sorted ids of every series.
    pub fn all_postings(&self) -> Result<Vec<u64>> {
        let mut ids = Vec::new();
        self.scan_postings(&keys::all_postings_prefix(), |k| {
            if k.name.is_empty() && k.value.is_empty() {
                ids.push(k.id);
            }
            Ok(())
        })?;
        Ok(ids)
    }

    /// Returns the sorted ids of the series whose `name` value passes `keep`.
    fn postings_where(&self, name: &str, keep: impl Fn(&str) -> bool) -> Result<Vec<u64>> {
        let mut ids = Vec::new();
        self.scan_postings(&keys::postings_name_prefix(name), |k| {
            let value =
                std::str::from_utf8(k.value).map_err(|_| Error::Corrupt { what: "postings" })?;
            if keep(value) {
                ids.push(k.id);
            }
            Ok(())
        })?;
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    /// Returns the label set of series `id`.
    pub fn series_labels(&self, id: u64) -> Result<Labels> {
        let mut labels = self.labels_of(&[id])?;
        labels.pop().ok_or(Error::Corrupt { what: "series" })
    }

    /// Returns the label set of series `id`, `None` when no such series
    /// is indexed (never was, or was collected with its last sample).
    pub fn find_series_labels(&self, id: u64) -> Result<Option<Labels>> {
        let Some(v) = self.get(keys::CF_SERIES, &keys::series_key(id))? else {
            return Ok(None);
        };
        keys::decode_labels(&v)
            .map(Some)
            .ok_or(Error::Corrupt { what: "series" })
    }

    /// Returns the label sets of series `ids` (sorted ascending), in order.
    /// One iterator walks the `series` CF: it steps to a near id and seeks
    /// to a far one, so ids created together cost a step each.
    fn labels_of(&self, ids: &[u64]) -> Result<Vec<Labels>> {
        /// Ids closer than this are reached by stepping, not seeking.
        const STEP_MAX: u64 = 8;
        let mut out = Vec::with_capacity(ids.len());
        let mut it = self.iter(keys::CF_SERIES, ReadOptions::default());
        let mut at: Option<u64> = None;
        for &id in ids {
            match at {
                Some(cur) if cur < id && id - cur <= STEP_MAX => loop {
                    it.next();
                    match it.key().and_then(keys::decode_u64) {
                        Some(k) if k < id => continue,
                        _ => break,
                    }
                },
                Some(cur) if cur == id => {}
                _ => it.seek(keys::series_key(id)),
            }
            it.status()?;
            let key = it.key().and_then(keys::decode_u64);
            at = key;
            let v = it
                .value()
                .filter(|_| key == Some(id))
                .ok_or(Error::Corrupt { what: "series" })?;
            out.push(keys::decode_labels(v).ok_or(Error::Corrupt { what: "series" })?);
        }
        Ok(out)
    }

    /// Returns the series matching every matcher, sorted by labels.
    pub fn select(&self, matchers: &[Matcher]) -> Result<Vec<(u64, Labels)>> {
        let mut out = self.select_by_id(matchers)?;
        sort_by_labels(&mut out, |s| &s.1);
        Ok(out)
    }

    /// Returns the series matching every matcher in id order: the order
    /// their samples are stored in, so reading them in it steps rather
    /// than seeks.
    pub fn select_by_id(&self, matchers: &[Matcher]) -> Result<Vec<(u64, Labels)>> {
        check_selectable(matchers)?;
        let mut candidates: Option<Vec<u64>> = None;
        for m in matchers.iter().filter(|m| !m.matches_empty()) {
            let ids = match &m.op {
                MatchOp::Equal(v) => self.postings(&m.name, v)?,
                _ => self.postings_where(&m.name, |v| m.matches(v))?,
            };
            let next = match candidates {
                None => ids,
                Some(c) => intersect(&c, &ids),
            };
            if next.is_empty() {
                return Ok(Vec::new());
            }
            candidates = Some(next);
        }
        let ids = candidates.unwrap_or_default();
        Ok(ids
            .iter()
            .copied()
            .zip(self.labels_of(&ids)?)
            .filter(|(_, labels)| matchers.iter().all(|m| m.matches_labels(labels)))
            .collect())
    }

    /// Returns the series matching `matchers` (every series when empty) that
    /// have a sample in `range`.
    pub fn series_in_range(
        &self,
        matchers: &[Matcher],
        range: TimeRange,
    ) -> Result<Vec<(u64, Labels)>> {
        let series = if matchers.is_empty() {
            let ids = self.all_postings()?;
            let mut all: Vec<(u64, Labels)> =
                ids.iter().copied().zip(self.labels_of(&ids)?).collect();
            sort_by_labels(&mut all, |s| &s.1);
            all
        } else {
            self.select(matchers)?
        };
        if range.is_all() {
            return Ok(series);
        }
        let mut out = Vec::with_capacity(series.len());
        let reader = samples::SampleReader::new(self.db);
        for (id, labels) in series {
            if reader.any_in(id, range.start, range.end)? {
                out.push((id, labels));
            }
        }
        Ok(out)
    }

    /// Returns the sorted label names of the series matching `matchers` (all
    /// series when empty) with a sample in `range`.
    pub fn label_names(&self, matchers: &[Matcher], range: TimeRange) -> Result<Vec<String>> {
        if matchers.is_empty() && range.is_all() {
            return self.all_label_names();
        }
        let mut names = BTreeSet::new();
        for (_, labels) in self.series_in_range(matchers, range)? {
            names.extend(labels.iter().map(|l| l.name.clone()));
        }
        Ok(names.into_iter().collect())
    }

    /// Returns the sorted values of label `name` over the series matching
    /// `matchers` (all series when empty) with a sample in `range`.
    pub fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        range: TimeRange,
    ) -> Result<Vec<String>> {
        if matchers.is_empty() && range.is_all() {
            let mut values = Vec::new();
            self.scan_postings(&keys::postings_name_prefix(name), |k| {
                if values.last().map(|v: &String| v.as_bytes()) != Some(k.value) {
                    let v = std::str::from_utf8(k.value)
                        .map_err(|_| Error::Corrupt { what: "postings" })?;
                    values.push(v.to_string());
                }
                Ok(())
            })?;
            // Keys sort by value bytes, which is also string order; values
            // containing NUL may interleave, so sort and dedup to be sure.
            values.sort();
            values.dedup();
            return Ok(values);
        }
        let mut values = BTreeSet::new();
        for (_, labels) in self.series_in_range(matchers, range)? {
            if let Some(v) = labels.get(name) {
                values.insert(v.to_string());
            }
        }
        Ok(values.into_iter().collect())
    }

    /// Returns every label name, skipping from one name to the next.
    fn all_label_names(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let mut it = self.iter(keys::CF_POSTINGS, ReadOptions::default());
        // The all-series posting (empty name) sorts first; names start at 0x01.
        it.seek([0x01]);
        while let Some(k) = it.key() {
            let p = keys::decode_postings_key(k).ok_or(Error::Corrupt { what: "postings" })?;
            let name =
                std::str::from_utf8(p.name).map_err(|_| Error::Corrupt { what: "postings" })?;
            names.push(name.to_string());
            // Past every key of this name: `name 0x01` (names hold no NUL).
            let mut next = p.name.to_vec();
            next.push(0x01);
            it.seek(&next);
        }
        it.status()?;
        Ok(names)
    }
}

/// How many of each the index holds, as Prometheus's postings statistics
/// (`/api/v1/status/tsdb`): every series stored, the top ten of each list.
#[derive(Debug, Default, PartialEq)]
pub struct PostingsStats {
    pub num_series: u64,
    /// Distinct label name and value pairs.
    pub num_label_pairs: u64,
    /// Series per metric name.
    pub series_by_metric: Vec<(String, u64)>,
    /// Distinct values per label name.
    pub values_by_label: Vec<(String, u64)>,
    /// Bytes of the distinct values per label name.
    pub bytes_by_label: Vec<(String, u64)>,
    /// Series per `name=value` pair.
    pub series_by_pair: Vec<(String, u64)>,
}

/// Entries of each list in [`PostingsStats`].
const STATS_TOP: usize = 10;

impl Index<'_> {
    /// Counts the postings: one pass over every postings key. Memory: the
    /// distinct values of one label at a time, and ten entries per list.
    pub fn stats(&self) -> Result<PostingsStats> {
        let (mut metrics, mut labels, mut bytes, mut pairs) = (
            TopK::default(),
            TopK::default(),
            TopK::default(),
            TopK::default(),
        );
        let mut num_label_pairs = 0;
        // The values of the label whose keys are being read (names are
        // contiguous in key order; a value's keys may not be, when another
        // value extends it with a NUL byte).
        let mut name: Vec<u8> = Vec::new();
        let mut values: std::collections::HashMap<Vec<u8>, u64> = Default::default();
        let mut flush = |name: &[u8], values: &mut std::collections::HashMap<Vec<u8>, u64>| {
            if name.is_empty() {
                values.clear();
                return;
            }
            let name = String::from_utf8_lossy(name);
            num_label_pairs += values.len() as u64;
            labels.offer(values.len() as u64, || name.to_string());
            bytes.offer(values.keys().map(|v| v.len() as u64).sum(), || {
                name.to_string()
            });
            for (value, n) in values.drain() {
                let value = || String::from_utf8_lossy(&value).into_owned();
                if name == "__name__" {
                    metrics.offer(n, value);
                }
                pairs.offer(n, || format!("{name}={}", value()));
            }
        };
        let mut all = 0;
        self.scan_postings(&[], |k| {
            if k.name.is_empty() {
                all += u64::from(k.value.is_empty());
                return Ok(());
            }
            if k.name != name.as_slice() {
                flush(&name, &mut values);
                name = k.name.to_vec();
            }
            match values.get_mut(k.value) {
                Some(n) => *n += 1,
                None => {
                    values.insert(k.value.to_vec(), 1);
                }
            }
            Ok(())
        })?;
        flush(&name, &mut values);
        Ok(PostingsStats {
            num_series: all,
            num_label_pairs,
            series_by_metric: metrics.into_sorted(),
            values_by_label: labels.into_sorted(),
            bytes_by_label: bytes.into_sorted(),
            series_by_pair: pairs.into_sorted(),
        })
    }
}

/// The [`STATS_TOP`] largest counts seen, ties by name: a min-heap of the
/// kept ones, so an entry that cannot enter costs no name.
#[derive(Default)]
struct TopK {
    heap: std::collections::BinaryHeap<std::cmp::Reverse<(u64, std::cmp::Reverse<String>)>>,
}

impl TopK {
    /// Offers `count` under the name `name()` builds.
    fn offer(&mut self, count: u64, name: impl FnOnce() -> String) {
        use std::cmp::Reverse;
        if self.heap.len() == STATS_TOP {
            let Some(Reverse((least, _))) = self.heap.peek() else {
                return;
            };
            if count < *least {
                return;
            }
        }
        self.heap.push(Reverse((count, Reverse(name()))));
        if self.heap.len() > STATS_TOP {
            self.heap.pop();
        }
    }

    /// Largest first, ties by name.
    fn into_sorted(self) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = self
            .heap
            .into_iter()
            .map(|std::cmp::Reverse((n, std::cmp::Reverse(name)))| (name, n))
            .collect();
        out.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out
    }
}

#[cfg(test)]
mod tests;
