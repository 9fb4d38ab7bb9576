//! The protobuf exposition format: length-delimited
//! `io.prometheus.client.MetricFamily` messages, presented as the text parser
//! presents a body, with the behaviour of Prometheus 2.42's
//! `model/textparse/protobufparse.go`.
//!
//! # What a family yields
//!
//! The parser reads one varint length prefix, decodes one `MetricFamily` with
//! prost, and yields, in this order:
//! - `Help` (always, even when the help text is empty) and `Type` (`UNTYPED`
//!   is [`MetricType::Untyped`], as the text parser reports `untyped`; 2.42
//!   reports both as unknown);
//! - per metric, in message order: counters, gauges and untyped metrics one
//!   sample; summaries `_count`, `_sum`, then one sample per quantile with a
//!   `quantile` label; histograms `_count`, `_sum`, then `_bucket` per bucket
//!   with an `le` label, stopping after a `+Inf` bucket and adding one with
//!   the sample count when there is none. Counts are the integer fields
//!   (`sample_count`, `cumulative_count`); the `_float` variants are ignored.
//!
//! Families without metrics are skipped before any check. `le` and `quantile`
//! values are formatted as 2.42's `formatOpenMetricsFloat` (Go's shortest
//! `%v`, then `.0` if that has no `.` or `e`: `1.0`, `0.25`, `1e+06`).
//! A metric's `timestamp_ms` of 0 means no timestamp. Exemplars come from a
//! counter and from real (not added) histogram buckets (a native histogram
//! takes the first one of its classic buckets). Values and exemplar
//! values are passed through bit for bit: 2.42 does not normalize NaN from
//! protobuf (the text parsers do), so a NaN keeps its bits here.
//!
//! Kept 2.42 quirks, so that this scrapes the same series as 2.42:
//! - a `GAUGE_HISTOGRAM` family's series all carry the bare family name:
//!   count and sum become the same series `name{...}` (the first one wins in
//!   the scrape loop) and buckets are `name{...,le="..."}`; Prometheus 2.45
//!   changed that to `_count`, `_sum` and `_bucket`;
//! - whether a histogram family is native is decided by its first metric only.
//!
//! # Native histograms
//!
//! A histogram family whose first metric has native buckets, a zero count or
//! a zero threshold (2.42's `isNativeHistogram`) is a native histogram, which
//! 2.42 ingests only as such, never as classic series (`_bucket` from the
//! same message came in 2.45). After its `Help` and `Type`, each of its
//! metrics is one [`Entry::NativeHistogram`] named after the family, as
//! 2.42's `EntryHistogram`; scrapegrid stores no native histograms, so the
//! scrape loop fails the scrape on the first one that metric relabeling
//! keeps, as 2.42 without `--enable-feature=native-histograms` does.
//!
//! # Series text
//!
//! A sample's series is written in text-format syntax, `name{a="b",le="1.0"}`:
//! the labels in message order, then `le` or `quantile`, values escaped
//! (`\\`, `\"`, `\n`), no braces without labels. It depends only on the
//! message, so it serves as the scrape cache key, and [`super::Sample::labels`]
//! reads it back. A label name that repeats within a series (counting
//! `__name__` and the `le`/`quantile` label) parses, as in 2.42, which fails
//! the scrape on append; [`super::Sample::checked_labels`] reports it.
//!
//! # Errors
//!
//! Errors have line 1 and, as the column, 1 plus the byte offset of the length
//! prefix of the family at fault, which locates it in the body. The framing,
//! name, help, type and label errors read as 2.42's; an ill-formed message
//! is reported with prost's wording (2.42 shows gogo-protobuf's). Lengths are
//! checked against the rest of the body before anything is decoded, so a
//! huge length prefix costs nothing.

use std::borrow::Cow;
use std::ops::Range;

use scrapegrid_common::Labels;
use scrapegrid_proto::prometheus as rw;
use scrapegrid_proto::prometheus_client::{self as pb, MetricType as PbType};
use scrapegrid_proto::prost::Message as _;

use super::{Entry, Exemplar, MetricType, ParseError, Sample};
use scrapegrid_common::labels::{
    is_valid_label_name as is_label_name, is_valid_metric_name as is_metric_name,
};
use series::{push_escaped, push_openmetrics_float};

mod series;
#[cfg(test)]
mod tests;

/// Longest length prefix Prometheus accepts (`binary.MaxVarintLen32`).
const MAX_PREFIX_LEN: usize = 5;

/// Longest varint of the wire format.
const MAX_VARINT_LEN: usize = 10;

/// The protobuf-format state: the body, a cursor to the next length prefix
/// and the family being yielded.
#[derive(Debug)]
pub(super) struct ProtobufParser<'a> {
    body: &'a [u8],
    pos: usize,
    family: Option<Family<'a>>,
}

/// A decoded, validated family and where its entries stand.
#[derive(Debug)]
struct Family<'a> {
    mf: pb::MetricFamily,
    /// Offset of the family's length prefix in the body, for errors.
    offset: usize,
    /// The name and help as they lie in the body.
    name: &'a str,
    help: &'a str,
    kind: Kind,
    next: Step,
    /// The escaped label pairs of the current metric, `a="b",c="d"`.
    labels: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Summary,
    Untyped,
    Histogram,
    GaugeHistogram,
}

/// The next entry of a family.
#[derive(Debug, Clone, Copy)]
enum Step {
    Help,
    Type,
    /// Metric `m` of a native histogram family.
    Native(usize),
    /// The first sample of metric `m`, after checking its labels.
    Metric(usize),
    /// A later sample of metric `m`.
    Field(usize, Field),
}

/// Which sample of a metric.
#[derive(Debug, Clone, Copy)]
enum Field {
    /// The one sample of a counter, gauge or untyped metric.
    Value,
    Count,
    Sum,
    Quantile(usize),
    Bucket(usize),
    /// The `+Inf` bucket added when the buckets have none.
    InfBucket,
}

impl<'a> ProtobufParser<'a> {
    pub(super) fn new(body: &'a [u8]) -> Self {
        ProtobufParser {
            body,
            pos: 0,
            family: None,
        }
    }

    pub(super) fn entry(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        loop {
            match &mut self.family {
                Some(family) => match family.next_entry()? {
                    Some(entry) => return Ok(Some(entry)),
                    None => self.family = None,
                },
                None if self.pos == self.body.len() => return Ok(None),
                None => self.family = self.read_family()?,
            }
        }
    }

    /// Reads the family at the cursor, as 2.42's `readDelimited`; returns
    /// None for a family without metrics.
    fn read_family(&mut self) -> Result<Option<Family<'a>>, ParseError> {
        let offset = self.pos;
        let rest = &self.body[offset..];
        let (len, prefix_len) = match uvarint(rest) {
            Some((len, n)) if n <= MAX_PREFIX_LEN => (len, n),
            _ => {
                return Err(error(
                    offset,
                    "protobufparse: invalid varint encountered".into(),
                ))
            }
        };
        // At most 5 + 2^35 - 1: no overflow, and no allocation before this.
        let total = prefix_len as u64 + len;
        let Some(total) = usize::try_from(total).ok().filter(|&t| t <= rest.len()) else {
            let message = format!(
                "protobufparse: insufficient length of buffer, expected at least {total} bytes, got {} bytes",
                rest.len()
            );
            return Err(error(offset, message));
        };
        let msg = &rest[prefix_len..total];
        self.pos += total;
        let mf = pb::MetricFamily::decode(msg).map_err(|e| error(offset, e.to_string()))?;
        if mf.metric.is_empty() {
            return Ok(None);
        }
        Family::new(mf, msg, offset).map(Some)
    }
}

impl<'a> Family<'a> {
    /// Checks the name, help and type of a decoded family, in 2.42's order.
    fn new(mf: pb::MetricFamily, msg: &'a [u8], offset: usize) -> Result<Self, ParseError> {
        // The entries borrow the name and help from the body: find them there.
        let spans = text_spans(msg).filter(|(name, help)| {
            msg[name.clone()] == mf.name[..] && msg[help.clone()] == mf.help[..]
        });
        debug_assert!(spans.is_some(), "prost and text_spans disagree");
        let Some((name, help)) = spans else {
            return Err(error(offset, "protobufparse: metric name not found".into()));
        };
        let (name, help) = (&msg[name], &msg[help]);
        let Some(name) = std::str::from_utf8(name).ok().filter(|n| is_metric_name(n)) else {
            return Err(error(
                offset,
                format!("invalid metric name: {}", lossy(name)),
            ));
        };
        let Ok(help) = std::str::from_utf8(help) else {
            let message = format!("invalid help for metric {name:?}: {}", lossy(help));
            return Err(error(offset, message));
        };
        let kind = match PbType::try_from(mf.r#type) {
            Ok(PbType::Counter) => Kind::Counter,
            Ok(PbType::Gauge) => Kind::Gauge,
            Ok(PbType::Summary) => Kind::Summary,
            Ok(PbType::Untyped) => Kind::Untyped,
            Ok(PbType::Histogram) => Kind::Histogram,
            Ok(PbType::GaugeHistogram) => Kind::GaugeHistogram,
            Err(_) => {
                let message = format!("unknown metric type for metric {name:?}: {}", mf.r#type);
                return Err(error(offset, message));
            }
        };
        Ok(Family {
            mf,
            offset,
            name,
            help,
            kind,
            next: Step::Help,
            labels: String::new(),
        })
    }

    /// Returns the family's next entry, or None after its last sample.
    fn next_entry(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        match self.next {
            Step::Help => {
                self.next = Step::Type;
                let help = Cow::Borrowed(self.help);
                Ok(Some(Entry::Help {
                    name: self.name,
                    help,
                }))
            }
            Step::Type => {
                let histogram = matches!(self.kind, Kind::Histogram | Kind::GaugeHistogram);
                let first = self.mf.metric[0].histogram.as_deref();
                self.next = if histogram && first.is_some_and(is_native) {
                    Step::Native(0)
                } else {
                    Step::Metric(0)
                };
                let kind = match self.kind {
                    Kind::Counter => MetricType::Counter,
                    Kind::Gauge => MetricType::Gauge,
                    Kind::Summary => MetricType::Summary,
                    Kind::Untyped => MetricType::Untyped,
                    Kind::Histogram => MetricType::Histogram,
                    Kind::GaugeHistogram => MetricType::GaugeHistogram,
                };
                Ok(Some(Entry::Type {
                    name: self.name,
                    kind,
                }))
            }
            Step::Native(m) if m == self.mf.metric.len() => Ok(None),
            Step::Native(m) => {
                self.start_metric(m)?;
                let metric = &self.mf.metric[m];
                self.next = Step::Native(m + 1);
                let gauge = self.kind == Kind::GaugeHistogram;
                let h = metric.histogram.as_deref().map(|h| native(h, gauge));
                // 2.42 gives a native histogram the first exemplar of its
                // classic buckets.
                let exemplar = metric
                    .histogram
                    .as_deref()
                    .and_then(|h| h.bucket.iter().find_map(|b| b.exemplar.as_deref()))
                    .map(convert_exemplar);
                Ok(Some(Entry::NativeHistogram(
                    Sample {
                        series: Cow::Owned(self.series("", None)),
                        value: f64::NAN,
                        timestamp_ms: (metric.timestamp_ms != 0).then_some(metric.timestamp_ms),
                        exemplar,
                    },
                    Box::new(h.unwrap_or_default()),
                )))
            }
            Step::Metric(m) if m == self.mf.metric.len() => Ok(None),
            Step::Metric(m) => {
                self.start_metric(m)?;
                let first = match self.kind {
                    Kind::Counter | Kind::Gauge | Kind::Untyped => Field::Value,
                    _ => Field::Count,
                };
                self.sample(m, first).map(Some)
            }
            Step::Field(m, field) => self.sample(m, field).map(Some),
        }
    }

    /// Checks the labels of metric `m` as 2.42 does (names, then UTF-8
    /// values, pair by pair) and writes them out.
    fn start_metric(&mut self, m: usize) -> Result<(), ParseError> {
        let pairs = &self.mf.metric[m].label;
        self.labels.clear();
        for pair in pairs {
            let Some(name) = std::str::from_utf8(&pair.name)
                .ok()
                .filter(|n| is_label_name(n))
            else {
                let message = format!("invalid label name: {}", lossy(&pair.name));
                return Err(error(self.offset, message));
            };
            let Ok(value) = std::str::from_utf8(&pair.value) else {
                let message = format!("invalid label value: {}", lossy(&pair.value));
                return Err(error(self.offset, message));
            };
            if !self.labels.is_empty() {
                self.labels.push(',');
            }
            self.labels.push_str(name);
            self.labels.push_str("=\"");
            push_escaped(&mut self.labels, value);
            self.labels.push('"');
        }
        Ok(())
    }

    /// Returns sample `field` of metric `m` and moves to the next one.
    fn sample(&mut self, m: usize, field: Field) -> Result<Entry<'a>, ParseError> {
        let metric = &self.mf.metric[m];
        let summary = metric.summary.as_deref();
        let histogram = metric.histogram.as_deref();
        let quantiles = summary.map_or(&[][..], |s| &s.quantile);
        let buckets = histogram.map_or(&[][..], |h| &h.bucket);
        let is_summary = self.kind == Kind::Summary;
        let done = Step::Metric(m + 1);
        let count = if is_summary {
            summary.map_or(0, |s| s.sample_count)
        } else {
            histogram.map_or(0, |h| h.sample_count)
        };
        let mut exemplar = None;
        let mut magic = None;
        let (suffix, value, next) = match field {
            Field::Value => {
                let value = match self.kind {
                    Kind::Counter => {
                        let counter = metric.counter.as_deref();
                        exemplar = counter.and_then(|c| c.exemplar.as_deref());
                        counter.map_or(0.0, |c| c.value)
                    }
                    Kind::Gauge => metric.gauge.as_deref().map_or(0.0, |g| g.value),
                    _ => metric.untyped.as_deref().map_or(0.0, |u| u.value),
                };
                ("", value, done)
            }
            Field::Count => ("_count", count as f64, Step::Field(m, Field::Sum)),
            Field::Sum => {
                let sum = if is_summary {
                    summary.map_or(0.0, |s| s.sample_sum)
                } else {
                    histogram.map_or(0.0, |h| h.sample_sum)
                };
                let next = match (is_summary, quantiles.is_empty(), buckets.is_empty()) {
                    (true, true, _) => done,
                    (true, false, _) => Step::Field(m, Field::Quantile(0)),
                    (false, _, true) => Step::Field(m, Field::InfBucket),
                    (false, _, false) => Step::Field(m, Field::Bucket(0)),
                };
                ("_sum", sum, next)
            }
            Field::Quantile(i) => {
                let q = &quantiles[i];
                magic = Some(("quantile", q.quantile));
                let next = if i + 1 == quantiles.len() {
                    done
                } else {
                    Step::Field(m, Field::Quantile(i + 1))
                };
                ("", q.value, next)
            }
            Field::Bucket(i) => {
                let b = &buckets[i];
                magic = Some(("le", b.upper_bound));
                exemplar = b.exemplar.as_deref();
                let next = if b.upper_bound == f64::INFINITY {
                    done
                } else if i + 1 == buckets.len() {
                    Step::Field(m, Field::InfBucket)
                } else {
                    Step::Field(m, Field::Bucket(i + 1))
                };
                ("_bucket", b.cumulative_count as f64, next)
            }
            Field::InfBucket => {
                magic = Some(("le", f64::INFINITY));
                ("_bucket", count as f64, done)
            }
        };
        // 2.42 names every series of a gauge histogram after the family.
        let suffix = if self.kind == Kind::GaugeHistogram {
            ""
        } else {
            suffix
        };
        let sample = Sample {
            series: Cow::Owned(self.series(suffix, magic)),
            value,
            timestamp_ms: (metric.timestamp_ms != 0).then_some(metric.timestamp_ms),
            exemplar: exemplar.map(convert_exemplar),
        };
        self.next = next;
        Ok(Entry::Sample(sample))
    }

    /// Writes `name{labels,magic="v"}` for the current metric.
    fn series(&self, suffix: &str, magic: Option<(&str, f64)>) -> String {
        let mut s = String::with_capacity(self.name.len() + suffix.len() + self.labels.len() + 32);
        s.push_str(self.name);
        s.push_str(suffix);
        if !self.labels.is_empty() || magic.is_some() {
            s.push('{');
            s.push_str(&self.labels);
            if let Some((name, v)) = magic {
                if !self.labels.is_empty() {
                    s.push(',');
                }
                s.push_str(name);
                s.push_str("=\"");
                push_openmetrics_float(&mut s, v);
                s.push('"');
            }
            s.push('}');
        }
        s
    }
}

/// Returns whether 2.42 takes a histogram for a native one
/// (`isNativeHistogram`). Float buckets alone do not count.
fn is_native(h: &pb::Histogram) -> bool {
    !h.negative_delta.is_empty()
        || !h.positive_delta.is_empty()
        || h.zero_count > 0
        || h.zero_threshold > 0.0
}

/// Returns the native histogram of `h` as 2.42's `Histogram()` reads it: a
/// float histogram when a float count is set, else an integer one;
/// compacted.
fn native(h: &pb::Histogram, gauge: bool) -> rw::Histogram {
    let spans = |s: &[pb::BucketSpan]| {
        s.iter()
            .map(|s| rw::BucketSpan {
                offset: s.offset,
                length: s.length,
            })
            .collect()
    };
    let float = h.sample_count_float > 0.0 || h.zero_count_float > 0.0;
    let mut out = rw::Histogram {
        sum: h.sample_sum,
        schema: h.schema,
        zero_threshold: h.zero_threshold,
        negative_spans: spans(&h.negative_span),
        positive_spans: spans(&h.positive_span),
        reset_hint: if gauge {
            rw::histogram::ResetHint::Gauge as i32
        } else {
            rw::histogram::ResetHint::Unknown as i32
        },
        ..Default::default()
    };
    if float {
        out.count = Some(rw::histogram::Count::CountFloat(h.sample_count_float));
        out.zero_count = Some(rw::histogram::ZeroCount::ZeroCountFloat(h.zero_count_float));
        out.negative_counts = h.negative_count.clone();
        out.positive_counts = h.positive_count.clone();
    } else {
        out.count = Some(rw::histogram::Count::CountInt(h.sample_count));
        out.zero_count = Some(rw::histogram::ZeroCount::ZeroCountInt(h.zero_count));
        out.negative_deltas = h.negative_delta.clone();
        out.positive_deltas = h.positive_delta.clone();
    }
    scrapegrid_common::histogram::compact(&mut out);
    out
}

/// Returns an exemplar as 2.42 reads it: labels unchecked (here decoded
/// lossily, since ours are strings), the timestamp in milliseconds with Go's
/// integer arithmetic.
fn convert_exemplar(e: &pb::Exemplar) -> Box<Exemplar> {
    let labels = e.label.iter().map(|p| (lossy(&p.name), lossy(&p.value)));
    Box::new(Exemplar {
        labels: Labels::from_pairs(labels),
        value: e.value,
        timestamp_ms: e.timestamp.as_ref().map(|t| {
            t.seconds
                .wrapping_mul(1000)
                .wrapping_add(i64::from(t.nanos / 1_000_000))
        }),
    })
}

/// Returns the last spans of fields 1 (`name`) and 2 (`help`) of an encoded
/// `MetricFamily`, or empty spans when absent; None if `msg` is not
/// well-formed (prost has checked it before, so that does not happen).
fn text_spans(msg: &[u8]) -> Option<(Range<usize>, Range<usize>)> {
    let (mut name, mut help) = (0..0, 0..0);
    let mut groups = 0usize;
    let mut i = 0;
    while i < msg.len() {
        let (key, n) = uvarint(&msg[i..])?;
        i += n;
        match key & 7 {
            0 => i += uvarint(&msg[i..])?.1,
            1 => i += 8,
            2 => {
                let (len, n) = uvarint(&msg[i..])?;
                let start = i + n;
                let end = start.checked_add(usize::try_from(len).ok()?)?;
                match key >> 3 {
                    1 if groups == 0 => name = start..end,
                    2 if groups == 0 => help = start..end,
                    _ => {}
                }
                i = end;
            }
            3 => groups += 1,
            4 => groups = groups.checked_sub(1)?,
            5 => i += 4,
            _ => return None,
        }
    }
    (i == msg.len() && groups == 0).then_some((name, help))
}

/// Decodes a varint as gogo-protobuf's `DecodeVarint`: None when `b` ends
/// inside it or it runs past 10 bytes; bits beyond 64 are dropped.
fn uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut x = 0u64;
    for (i, &byte) in b.iter().take(MAX_VARINT_LEN).enumerate() {
        x |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Some((x, i + 1));
        }
    }
    None
}

fn lossy(b: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(b)
}

fn error(offset: usize, message: String) -> ParseError {
    ParseError {
        line: 1,
        column: offset + 1,
        message,
    }
}
