//! The per-target scrape state and the pure scrape-to-batch step.
//!
//! [`TargetState`] turns one scrape result into one [`ScrapeBatch`]: parse,
//! attach target labels, metric relabeling, limits, staleness and the report
//! series. It caches, per raw series text, the relabeled series (or that the
//! series is dropped), so steady-state scrapes skip label parsing and
//! relabeling entirely. A scrape is all or nothing: any parse error or limit
//! breach discards its samples and produces the failed-scrape batch instead
//! (`up` 0 and stale markers for every series of the previous scrape), as
//! Prometheus rolls back its appender.

use indexmap::IndexMap;
use rustc_hash::{FxBuildHasher, FxHashSet};
use std::sync::Arc;

use scrapegrid_common::labels::{is_valid_label_name, is_valid_metric_name};
use scrapegrid_common::relabel;
use scrapegrid_common::{CompactLabels, Labels, METRIC_NAME};
use scrapegrid_proto::stale_marker;

use super::metadata::MetadataCache;
use super::sample_labels::attach_target_labels;
use crate::batch::{next_pass, ScrapeBatch, Series, SeriesRef, TargetMetadata};
use crate::target::TargetSpec;
use crate::textparse::{Entry, Format, Parser, ScrapedLabels};

/// A failed scrape flushes the cache only once it holds more than twice the
/// entries of the last successful one plus this many (Prometheus's rule, so
/// a target whose scrapes keep failing with new series cannot grow it).
const CACHE_FORCED_FLUSH_SLACK: usize = 1000;

/// A sample with an explicit timestamp older than the scrape by more than
/// this is refused, as Prometheus's head refuses samples more than half a
/// block (1 h) older than its newest.
const OUT_OF_BOUNDS_MS: i64 = 3_600_000;

/// A series found by its labels: hashed and compared as its label set, so
/// a set of these is a map from labels to series that holds each label
/// set once (in the series).
struct ByLabels(SeriesRef);

impl std::hash::Hash for ByLabels {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.labels.hash(state);
    }
}

impl PartialEq for ByLabels {
    fn eq(&self, other: &Self) -> bool {
        self.0.labels == other.0.labels
    }
}

impl Eq for ByLabels {}

impl std::borrow::Borrow<CompactLabels> for ByLabels {
    fn borrow(&self) -> &CompactLabels {
        &self.0.labels
    }
}

struct CacheEntry {
    /// `None` when metric relabeling drops the series.
    series: Option<SeriesRef>,
    last_seen: u64,
}

/// The report series of a target, in Prometheus's order.
struct ReportSeries {
    up: SeriesRef,
    duration: SeriesRef,
    scraped: SeriesRef,
    post_relabel: SeriesRef,
    added: SeriesRef,
}

impl ReportSeries {
    fn new(target: &Labels) -> Self {
        let s = |name: &str| {
            let mut lb = target.builder();
            lb.set(METRIC_NAME, name);
            Series::new(lb.labels())
        };
        Self {
            up: s("up"),
            duration: s("scrape_duration_seconds"),
            scraped: s("scrape_samples_scraped"),
            post_relabel: s("scrape_samples_post_metric_relabeling"),
            added: s("scrape_series_added"),
        }
    }

    fn all(&self) -> [&SeriesRef; 5] {
        [
            &self.up,
            &self.duration,
            &self.scraped,
            &self.post_relabel,
            &self.added,
        ]
    }
}

/// What a scrape amounted to, for the report series and the target's health.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScrapeReport {
    pub error: Option<String>,
    pub samples_scraped: u64,
    pub samples_post_relabel: u64,
    pub series_added: u64,
}

/// Scrape state of one target.
pub struct TargetState {
    spec: Arc<TargetSpec>,
    /// Raw series text to series, in the order the texts were first seen:
    /// a target that exposes its series in the same order every time is
    /// looked up by position (one comparison, no hashing), see
    /// [`Self::append`].
    cache: IndexMap<Box<str>, CacheEntry, FxBuildHasher>,
    /// One series per final label set: raw texts that differ (label order,
    /// labels that relabeling drops) but end in the same labels share it, so
    /// staleness and duplicate detection see one series.
    by_labels: FxHashSet<ByLabels>,
    /// Staleness-tracked series of the last successful scrape, each once.
    previous: Vec<SeriesRef>,
    /// Those of the scrape being built (its pass marks them, see
    /// [`Series::mark_seen`]); swapped into `previous` when it succeeds.
    current: Vec<SeriesRef>,
    /// Series taken over from the loop this one replaces: not "added" on
    /// the first scrape that yields them again.
    adopted: FxHashSet<u64>,
    report: ReportSeries,
    iteration: u64,
    /// Cache size (series and metadata entries) after the last successful
    /// scrape.
    successful_cache_len: usize,
    /// HELP, TYPE and UNIT per metric family.
    metadata: MetadataCache,
}

/// What a loop leaves to the loop that replaces it on a config change:
/// the series of its last successful scrape and its metadata, as Prometheus
/// keeps its scrape cache across a reload.
pub struct Inherited {
    pub series: Vec<SeriesRef>,
    pub metadata: MetadataCache,
}

impl TargetState {
    pub fn new(spec: Arc<TargetSpec>) -> Self {
        let report = ReportSeries::new(&spec.labels);
        Self {
            spec,
            cache: IndexMap::default(),
            by_labels: FxHashSet::default(),
            previous: Vec::new(),
            current: Vec::new(),
            adopted: Default::default(),
            report,
            iteration: 0,
            successful_cache_len: 0,
            metadata: MetadataCache::default(),
        }
    }

    /// Takes over what the loop this one replaces left: its series
    /// ([`Self::adopt`]) and its metadata.
    pub fn inherit(&mut self, inherited: Inherited) {
        self.adopt(inherited.series);
        self.metadata = inherited.metadata;
    }

    /// Takes over the series of the loop this one replaces (a restart on a
    /// config change), as Prometheus reuses its scrape cache on reload: a
    /// series that the first scrape no longer yields gets its stale marker,
    /// and one it still yields stays the same series.
    pub fn adopt(&mut self, series: Vec<SeriesRef>) {
        for s in series {
            self.adopted.insert(s.id);
            self.by_labels.insert(ByLabels(s.clone()));
            self.previous.push(s);
        }
    }

    /// Returns the series of the last successful scrape, to hand over to a
    /// target's next owner.
    pub fn series(&self) -> Vec<SeriesRef> {
        self.previous.clone()
    }

    /// Gives up what the loop's successor inherits ([`Self::inherit`]).
    pub fn into_inherited(self) -> Inherited {
        Inherited {
            series: self.previous,
            metadata: self.metadata,
        }
    }

    /// Number of series in the last successful scrape.
    pub fn series_count(&self) -> usize {
        self.previous.len()
    }

    /// Builds the batch of a scrape whose HTTP part succeeded.
    pub fn on_body(
        &mut self,
        body: &[u8],
        content_type: Option<&str>,
        timestamp_ms: i64,
        duration_seconds: f64,
    ) -> (ScrapeBatch, ScrapeReport) {
        self.iteration += 1;
        let mut batch = self.new_batch(timestamp_ms);
        // `current` is empty between scrapes (cleared on both ways out), so
        // it holds no series alive past [`Self::evict`].
        let pass = next_pass();
        let outcome = self.append(body, content_type, timestamp_ms, &mut batch, pass);
        let report = match outcome {
            Ok(report) => {
                for s in &self.previous {
                    if !s.seen_in(pass) {
                        batch.push(s, timestamp_ms, stale_marker());
                    }
                }
                std::mem::swap(&mut self.previous, &mut self.current);
                self.current.clear();
                self.adopted.clear();
                // An empty body flushes nothing, as in Prometheus (which
                // treats it as the failed scrape it usually is).
                self.evict(!body.is_empty());
                report
            }
            Err(report) => {
                // Nothing of the scrape is kept, but the report carries the
                // counts reached before the failure, as Prometheus's does.
                batch = self.new_batch(timestamp_ms);
                self.current.clear();
                self.stale_all_previous(&mut batch, timestamp_ms);
                self.evict(false);
                report
            }
        };
        self.push_report(&mut batch, timestamp_ms, duration_seconds, &report);
        batch.metadata = Some(self.metadata.snapshot(&self.spec.labels));
        (batch, report)
    }

    /// Builds the batch of a scrape that failed before a body arrived.
    pub fn on_error(
        &mut self,
        error: String,
        timestamp_ms: i64,
        duration_seconds: f64,
    ) -> (ScrapeBatch, ScrapeReport) {
        self.iteration += 1;
        let mut batch = self.new_batch(timestamp_ms);
        self.stale_all_previous(&mut batch, timestamp_ms);
        let report = ScrapeReport {
            error: Some(error),
            ..Default::default()
        };
        self.push_report(&mut batch, timestamp_ms, duration_seconds, &report);
        batch.metadata = Some(self.metadata.snapshot(&self.spec.labels));
        (batch, report)
    }

    /// Builds the end-of-run batch of a target that left discovery: stale
    /// markers for every series, report series included.
    pub fn end_of_run(&mut self, timestamp_ms: i64) -> ScrapeBatch {
        let mut batch = self.new_batch(timestamp_ms);
        self.stale_all_previous(&mut batch, timestamp_ms);
        for s in self.report.all() {
            batch.push(s, timestamp_ms, stale_marker());
        }
        // The target is gone: so is its metadata.
        batch.metadata = Some(TargetMetadata::forgotten(&self.spec.labels));
        batch
    }

    /// Whether the target has metadata (for a loop that ends before its
    /// first scrape, whose inherited metadata the storage node holds).
    pub fn has_metadata(&self) -> bool {
        !self.metadata.is_empty()
    }

    fn new_batch(&self, timestamp_ms: i64) -> ScrapeBatch {
        ScrapeBatch::new(&self.spec.id, self.spec.generation, timestamp_ms)
    }

    fn stale_all_previous(&mut self, batch: &mut ScrapeBatch, timestamp_ms: i64) {
        for s in &self.previous {
            batch.push(s, timestamp_ms, stale_marker());
        }
        self.previous.clear();
    }

    /// Appends the parsed samples, marking the staleness-tracked series
    /// with `pass` and collecting them in `current`; on error returns the
    /// partial report.
    fn append(
        &mut self,
        body: &[u8],
        content_type: Option<&str>,
        timestamp_ms: i64,
        batch: &mut ScrapeBatch,
        pass: u64,
    ) -> Result<ScrapeReport, ScrapeReport> {
        let pool = self.spec.pool.clone();
        let mut report = ScrapeReport::default();
        let mut limit_exceeded = false;
        let mut limited: u64 = 0;
        let mut parser = Parser::new(Format::from_content_type(content_type), body);
        // Where the next sample's text is expected in the cache: after the
        // previous one's.
        let mut guess = 0;
        loop {
            let (sample, native) = match parser.next_entry() {
                Ok(Some(Entry::Sample(s))) => (s, None),
                Ok(Some(Entry::NativeHistogram(s, h))) => (s, Some(h)),
                Ok(Some(Entry::Type { name, kind })) => {
                    self.metadata.set_type(name, kind);
                    continue;
                }
                Ok(Some(Entry::Help { name, help })) => {
                    self.metadata.set_help(name, &help);
                    continue;
                }
                Ok(Some(Entry::Unit { name, unit })) => {
                    self.metadata.set_unit(name, unit);
                    continue;
                }
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(e) => {
                    // Prometheus's text; the position goes to the log.
                    tracing::debug!(target = %self.spec.url, error = %e, "scrape body does not parse");
                    report.error = Some(e.message);
                    return Err(report);
                }
            };
            report.samples_scraped += 1;
            let at_guess = self
                .cache
                .get_index(guess)
                .is_some_and(|(text, _)| **text == *sample.series);
            let found = if at_guess {
                Some(guess)
            } else {
                self.cache.get_index_of(&*sample.series)
            };
            let (series, cache_miss) = match found {
                Some(i) => {
                    guess = i + 1;
                    let entry = &mut self.cache[i];
                    entry.last_seen = self.iteration;
                    (entry.series.clone(), false)
                }
                None => {
                    let series = match self.new_series(sample.scraped_labels()) {
                        Ok(s) => s,
                        Err(e) => {
                            report.error = Some(e);
                            return Err(report);
                        }
                    };
                    let entry = CacheEntry {
                        series: series.clone(),
                        last_seen: self.iteration,
                    };
                    self.cache.insert(sample.series.as_ref().into(), entry);
                    guess = self.cache.len();
                    (series, true)
                }
            };
            let Some(series) = series else { continue };
            if let Some(h) = &native {
                // 2.42's appender refuses it without
                // --enable-feature=native-histograms, or when the head's
                // validation fails; either fails the scrape, and it counts
                // as scraped, not as kept.
                let refused = if pool.native_histograms {
                    scrapegrid_common::histogram::validate(h).err()
                } else {
                    Some("native histograms are disabled".into())
                };
                if let Some(e) = refused {
                    report.error = Some(e);
                    return Err(report);
                }
            }
            // As Prometheus: every sample that survives relabeling counts,
            // repeats and samples over the limit included.
            report.samples_post_relabel += 1;
            // 2.42's sample limit wraps `Append` only: native histograms
            // do not count toward it.
            if native.is_none() {
                limited += 1;
            }
            if pool.sample_limit > 0 && native.is_none() && limited > pool.sample_limit {
                // Keep parsing so the report counts every sample.
                limit_exceeded = true;
                continue;
            }
            let explicit_ts = pool.honor_timestamps && sample.timestamp_ms.is_some();
            let ts = if explicit_ts {
                sample.timestamp_ms.unwrap_or(timestamp_ms)
            } else {
                timestamp_ms
            };
            if ts < timestamp_ms - OUT_OF_BOUNDS_MS {
                // Prometheus's head refuses it (out of bounds); the scrape
                // goes on and the series does not count as added.
                continue;
            }
            // A series is added when its raw text is new to the cache, as
            // Prometheus counts it, unless it came from the loop this one took
            // over (Prometheus keeps its cache across a reload).
            if cache_miss && !self.adopted.contains(&series.id) {
                report.series_added += 1;
            }
            if series.seen_in(pass) {
                // Prometheus drops a repeated series in one scrape on commit
                // and keeps the first.
                continue;
            }
            match native {
                Some(mut h) => {
                    h.timestamp = ts;
                    batch.push_histogram(&series, *h);
                }
                None => batch.push(&series, ts, sample.value),
            }
            if let Some(e) = sample.exemplar {
                batch.push_exemplar(&series, ts, *e);
            }
            if !explicit_ts || pool.track_timestamps_staleness {
                series.mark_seen(pass);
                self.current.push(series);
            }
        }
        if limit_exceeded {
            report.error = Some("sample limit exceeded".into());
            return Err(report);
        }
        Ok(report)
    }

    /// Labels a scraped series for storage; `Ok(None)` when relabeling drops it.
    /// A label name that repeats in the scraped series fails the scrape
    /// after the validity and limit checks, as on Prometheus's append,
    /// unless a target label replaced it (`honor_labels: false`).
    fn new_series(&mut self, scraped: ScrapedLabels) -> Result<Option<SeriesRef>, String> {
        let pool = &self.spec.pool;
        let mut lb = attach_target_labels(&scraped, &self.spec.labels, pool.honor_labels);
        if !relabel::process(&mut lb, &pool.metric_relabel) {
            return Ok(None);
        }
        let labels = lb.labels();
        if labels.is_empty() {
            return Ok(None);
        }
        check_valid(&labels)?;
        check_limits(&labels, pool)?;
        if let Some(name) = scraped.repeated {
            let replaced = !pool.honor_labels && self.spec.labels.get(&name).is_some();
            if labels.get(&name).is_some() && !replaced {
                return Err(crate::textparse::repeated_label_error(&name));
            }
        }
        let labels = CompactLabels::new(&labels);
        if let Some(s) = self.by_labels.get(&labels) {
            return Ok(Some(s.0.clone()));
        }
        let series = Series::from_compact(labels);
        self.by_labels.insert(ByLabels(series.clone()));
        Ok(Some(series))
    }

    fn push_report(
        &self,
        batch: &mut ScrapeBatch,
        ts: i64,
        duration_seconds: f64,
        r: &ScrapeReport,
    ) {
        let up = if r.error.is_none() { 1.0 } else { 0.0 };
        batch.push(&self.report.up, ts, up);
        batch.push(&self.report.duration, ts, duration_seconds);
        batch.push(&self.report.scraped, ts, r.samples_scraped as f64);
        batch.push(&self.report.post_relabel, ts, r.samples_post_relabel as f64);
        batch.push(&self.report.added, ts, r.series_added as f64);
    }

    /// Forgets cache entries the last scrape did not see, after a successful
    /// scrape with a non-empty body, as Prometheus flushes its scrape cache
    /// (so a series that comes back counts as added again); after a failed
    /// or empty one only when the cache has grown past
    /// [`CACHE_FORCED_FLUSH_SLACK`].
    fn evict(&mut self, successful: bool) {
        let len = self.cache.len() + self.metadata.len();
        if successful {
            self.successful_cache_len = len;
        } else if len <= self.successful_cache_len * 2 + CACHE_FORCED_FLUSH_SLACK {
            return;
        }
        self.metadata.flush();
        let iteration = self.iteration;
        self.cache.retain(|_, e| e.last_seen == iteration);
        // A series nothing else holds (no cache entry, not in the last scrape,
        // no batch in flight) is forgotten.
        self.by_labels.retain(|s| Arc::strong_count(&s.0) > 1);
    }
}

/// Checks what Prometheus checks of a new series before appending it.
fn check_valid(labels: &Labels) -> Result<(), String> {
    let Some(name) = labels.get(METRIC_NAME) else {
        return Err("missing metric name (__name__ label)".into());
    };
    if !is_valid_metric_name(name) || !labels.iter().all(|l| is_valid_label_name(&l.name)) {
        return Err(format!("invalid metric name or label names: {labels}"));
    }
    Ok(())
}

/// Checks label_limit, label_name_length_limit and label_value_length_limit,
/// with Prometheus's messages (`%.50s` and `%.50q` cut names and values to
/// 50 characters).
fn check_limits(labels: &Labels, pool: &crate::target::PoolConfig) -> Result<(), String> {
    let name = cut50(labels.get(METRIC_NAME).unwrap_or_default());
    if pool.label_limit > 0 && labels.len() as u64 > pool.label_limit {
        return Err(format!(
            "label_limit exceeded (metric: {name}, number of labels: {}, limit: {})",
            labels.len(),
            pool.label_limit
        ));
    }
    for l in labels.iter() {
        if pool.label_name_length_limit > 0 && l.name.len() as u64 > pool.label_name_length_limit {
            return Err(format!(
                "label_name_length_limit exceeded (metric: {name}, label name: {}, length: {}, limit: {})",
                cut50(&l.name),
                l.name.len(),
                pool.label_name_length_limit
            ));
        }
        if pool.label_value_length_limit > 0 && l.value.len() as u64 > pool.label_value_length_limit
        {
            return Err(format!(
                "label_value_length_limit exceeded (metric: {name}, label name: {}, value: {}, length: {}, limit: {})",
                cut50(&l.name),
                scrapegrid_common::go_quote(cut50(&l.value)),
                l.value.len(),
                pool.label_value_length_limit
            ));
        }
    }
    Ok(())
}

/// Returns the first 50 characters of `s`, as Go's `%.50s`.
fn cut50(s: &str) -> &str {
    s.char_indices().nth(50).map_or(s, |(i, _)| &s[..i])
}

#[cfg(test)]
mod tests;
