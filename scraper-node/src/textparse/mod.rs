//! Parsers for scrape bodies, with the acceptance rules of Prometheus 2.42
//! (`model/textparse/`):
//! - the Prometheus text format 0.0.4 (`text.rs`, `promparse.go`);
//! - OpenMetrics 1.0 (`openmetrics.rs`, `openmetricsparse.go`);
//! - the protobuf format, length-delimited `io.prometheus.client.MetricFamily`
//!   messages, classic types (`protobuf.rs`, `protobufparse.go`).
//!
//! [`Format::from_content_type`] picks the parser from the response's
//! `Content-Type` with Prometheus's fallback rules.
//!
//! # Text format grammar
//!
//! ```text
//! body        = { line } ;                      (the last "\n" is optional)
//! line        = blanks [ sample | comment ] "\n" ;
//! comment     = "#" blanks ( help | type | rest-of-line ) ;
//! help        = "HELP" blank blanks metric-name [ text ] ;
//! type        = "TYPE" blank blanks metric-name blank kind ;
//! kind        = "counter" | "gauge" | "histogram" | "summary" | "untyped" ;
//! sample      = metric-name blanks [ "{" blanks labels "}" blanks ] value
//!               [ blank blanks timestamp ] blanks ;
//! labels      = { label-name blanks "=" blanks label-value blanks [ "," blanks ] } ;
//! metric-name = [a-zA-Z_:] [a-zA-Z0-9_:]* ;
//! label-name  = [a-zA-Z_] [a-zA-Z0-9_]* ;
//! label-value = '"' { "\" any-byte-but-newline | any-byte-but-quote-or-backslash } '"' ;
//! value       = a Go strconv.ParseFloat spelling without "p", "P" or "_":
//!               decimal with optional exponent, [+-]Inf/Infinity, NaN (any case) ;
//! timestamp   = [0-9]+ ;                        (int64 milliseconds, no sign)
//! blanks      = { " " | "\t" } ;
//! ```
//!
//! `# HELP` and `# TYPE` need the single `#` then blanks; any other line
//! starting with `#` (`#HELP`, `# HELPER`, `# EOF`, `# UNIT`) is a plain
//! comment. As in Prometheus, the byte right after the metric name of a HELP or
//! TYPE line is dropped and the rest of the line is the text, so a TYPE kind
//! may not carry trailing blanks. HELP text unescapes `\\` and `\n`; label
//! values also unescape `\"`; any other escape (`\t`) is kept as written.
//!
//! Prometheus quirks kept on purpose, because a target that Prometheus scrapes
//! must scrape here too (and the other way round):
//! - commas between labels are optional and a trailing comma is allowed;
//! - blanks are allowed between all tokens, including between the metric name
//!   and `{`, and may be absent between `}` and the value;
//! - blanks before a metric name are part of it and of the series (`  a 1`
//!   has the metric name `"  a"`, which the scrape then refuses as an invalid
//!   metric name); blank lines and blanks before `#` are harmless;
//! - a label value may contain a raw newline, `}` or `#`;
//! - `\r` is not a line ending: `a 1\r\n` fails on the value `"1\r"`;
//! - NUL bytes follow 2.42's lexer: one where a line's first token starts
//!   (after blanks too), right after `# ` and its blanks, or anywhere in a
//!   comment that starts `#` without a blank, ends the input without an
//!   error; in other comments, in HELP text and in label values NULs are
//!   skipped over and kept in the text; anywhere else a NUL ends the token
//!   and fails the line;
//! - hex floats, `_` digit separators, values that overflow `f64`, signed or
//!   fractional timestamps are errors; NaN is normalized to Prometheus's
//!   [`NORMAL_NAN_BITS`];
//! - a label name repeated within one series, or `__name__` in the label
//!   block, parses; as 2.42 refuses such a series only on append,
//!   [`Sample::scraped_labels`] names it on a scrape's cache-miss path
//!   and the scrape decides after relabeling (`scrape/state.rs`).
//!
//! # Zero-copy design
//!
//! [`Parser::next_entry`] walks the body once with a byte-level port of
//! 2.42's lexer, and returns entries that borrow from the body: the series of
//! a [`Sample`] is the slice `name{labels}` as written, so a scrape loop can
//! use it as a cache key and skip label parsing for series it has seen before.
//! Samples allocate nothing, and HELP text is borrowed unless it contains an
//! escape. [`Sample::labels`] and [`Sample::scraped_labels`], called on a
//! cache miss, re-read the already-validated series and allocate exactly the
//! label strings and one vector.
//!
//! Errors read exactly as 2.42's (`expected label name, got "INVALID"`,
//! `strconv.ParseFloat: parsing "1z": invalid syntax`): 2.42 names the token
//! it got, not the input. They also carry a 1-based line and a 1-based
//! column counted in bytes. The parser stops at the first error.

mod labels;
mod media_type;
mod openmetrics;
mod protobuf;
mod text;
mod token;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

use std::borrow::Cow;

/// Bits of the NaN that Prometheus stores for a sample value of NaN
/// (`value.NormalNaN`), distinct from the stale marker.
pub const NORMAL_NAN_BITS: u64 = 0x7ff8_0000_0000_0001;

/// One line of a scrape body that carries meaning.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry<'a> {
    /// A sample line.
    Sample(Sample<'a>),
    /// `# TYPE name kind`
    Type { name: &'a str, kind: MetricType },
    /// `# HELP name text`, with `\\` and `\n` unescaped; borrowed unless the
    /// text contains an escape.
    Help { name: &'a str, help: Cow<'a, str> },
    /// `# UNIT name unit` (OpenMetrics only).
    Unit { name: &'a str, unit: &'a str },
    /// A native histogram (protobuf only): its series (the value is NaN)
    /// and the histogram as 2.42's parser reads it (compacted; a float
    /// histogram when a float count is set).
    NativeHistogram(Sample<'a>, Box<scrapegrid_proto::prometheus::Histogram>),
    /// Any other comment line.
    Comment,
}

/// The kind declared by a `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
    /// OpenMetrics `info`.
    Info,
    /// OpenMetrics `stateset`.
    StateSet,
    /// OpenMetrics `gaugehistogram` (also protobuf `GAUGE_HISTOGRAM`).
    GaugeHistogram,
    /// OpenMetrics `unknown`.
    Unknown,
}

impl MetricType {
    /// Returns the kind as the text format spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::Summary => "summary",
            MetricType::Untyped => "untyped",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Unknown => "unknown",
        }
    }
}

/// A sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    /// The series in text-format syntax, metric name plus label block
    /// (`http_requests_total{code="200"}`), without trailing whitespace; the
    /// scrape loop uses it as a cache key. The text and OpenMetrics parsers
    /// borrow it from the body as written (zero-copy), for the text format
    /// from the start of its line, so with the blanks before the name, as
    /// 2.42's series; the protobuf parser writes it out, with label values
    /// escaped as in the text format.
    pub series: Cow<'a, str>,
    /// The value. The text formats give NaN the bits [`NORMAL_NAN_BITS`];
    /// protobuf values keep their bits, as in Prometheus 2.42.
    pub value: f64,
    /// Milliseconds; OpenMetrics seconds are converted as Prometheus does.
    pub timestamp_ms: Option<i64>,
    /// The sample's exemplar (OpenMetrics, protobuf), if it has one.
    pub exemplar: Option<Box<Exemplar>>,
}

/// An exemplar attached to a sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    /// The exemplar's labels (`trace_id`, ...), without `__name__`.
    pub labels: scrapegrid_common::Labels,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
}

impl Sample<'_> {
    /// Returns the parsed label set including `__name__`, as 2.42 builds it
    /// (see the `labels` module): label values unescaped, the labels of a name with an
    /// empty value absent, a repeated name with its first value. The scrape
    /// path uses [`Sample::scraped_labels`], which also names a repeat.
    ///
    /// Allocates one vector and the label strings. For a series that did not
    /// come from [`Parser`] it returns the labels it can read up to the first
    /// syntax error.
    pub fn labels(&self) -> scrapegrid_common::Labels {
        labels::series_labels(&self.series).labels
    }

    /// Returns [`Sample::labels`], or 2.42's append error when a label name
    /// repeats in the series (`__name__` in the label block included):
    /// `label name "x" is not unique: invalid sample`.
    pub fn checked_labels(&self) -> Result<scrapegrid_common::Labels, String> {
        let read = self.scraped_labels();
        match read.repeated {
            None => Ok(read.labels),
            Some(name) => Err(repeated_label_error(&name)),
        }
    }

    /// Returns what a scrape's cache-miss path needs of the series: its
    /// [`Sample::labels`], the first label name (in sorted order) that
    /// repeats, if one does (the scrape decides later, as Prometheus's append
    /// does, whether the repeat survives), and the names given an empty
    /// value (with `honor_labels` they keep a target label off).
    pub fn scraped_labels(&self) -> ScrapedLabels {
        labels::series_labels(&self.series)
    }
}

/// A series' labels as a scrape reads them on a series-cache miss.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapedLabels {
    pub labels: scrapegrid_common::Labels,
    /// The first repeated label name, in sorted order.
    pub repeated: Option<String>,
    /// Label names the series gives an empty value.
    pub empty: Vec<String>,
}

/// Prometheus 2.42's append error for a label name that repeats in a series.
pub fn repeated_label_error(name: &str) -> String {
    format!("label name \"{name}\" is not unique: invalid sample")
}

/// Where and why a body failed to parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, counted in bytes from the start of the line.
    pub column: usize,
    pub message: String,
}

impl ParseError {
    /// Returns an error at byte `offset` of `body`.
    fn at(body: &[u8], offset: usize, message: String) -> ParseError {
        let before = &body[..offset.min(body.len())];
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        ParseError {
            line: before.iter().filter(|&&b| b == b'\n').count() + 1,
            column: before.len() - line_start + 1,
            message,
        }
    }
}

/// The exposition format of a scrape body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// The Prometheus text format 0.0.4 (`text/plain; version=0.0.4`).
    PrometheusText,
    /// OpenMetrics 1.0 (`application/openmetrics-text`).
    OpenMetrics,
    /// Length-delimited protobuf `MetricFamily` messages
    /// (`application/vnd.google.protobuf`).
    Protobuf,
}

impl Format {
    /// Returns the format for a response's `Content-Type`, as Prometheus
    /// 2.42's `textparse.New`: the media type (case insensitive) picks
    /// OpenMetrics or protobuf; anything else, a missing or empty header or
    /// one that Go's `mime.ParseMediaType` refuses (parameters included, see
    /// the `media_type` module) is the text format.
    pub fn from_content_type(ct: Option<&str>) -> Format {
        let media_type = ct
            .filter(|ct| !ct.is_empty())
            .and_then(media_type::parse_media_type);
        match media_type.as_deref() {
            Some("application/openmetrics-text") => Format::OpenMetrics,
            Some("application/vnd.google.protobuf") => Format::Protobuf,
            _ => Format::PrometheusText,
        }
    }
}

/// A pull parser over one scrape body.
#[derive(Debug)]
pub struct Parser<'a> {
    inner: Inner<'a>,
    /// Set at the end of the input or at the first error.
    done: bool,
}

#[derive(Debug)]
enum Inner<'a> {
    Text(text::TextParser<'a>),
    OpenMetrics(openmetrics::OpenMetricsParser<'a>),
    Protobuf(protobuf::ProtobufParser<'a>),
}

impl<'a> Parser<'a> {
    /// Returns a parser over `body` in `format`.
    pub fn new(format: Format, body: &'a [u8]) -> Parser<'a> {
        let inner = match format {
            Format::PrometheusText => Inner::Text(text::TextParser::new(body)),
            Format::OpenMetrics => Inner::OpenMetrics(openmetrics::OpenMetricsParser::new(body)),
            Format::Protobuf => Inner::Protobuf(protobuf::ProtobufParser::new(body)),
        };
        Parser { inner, done: false }
    }

    /// Returns the next entry, Ok(None) at end of input, or the first error
    /// (then stops: later calls return Ok(None)).
    pub fn next_entry(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        if self.done {
            return Ok(None);
        }
        let entry = match &mut self.inner {
            Inner::Text(p) => p.entry(),
            Inner::OpenMetrics(p) => p.entry(),
            Inner::Protobuf(p) => p.entry(),
        };
        if !matches!(entry, Ok(Some(_))) {
            self.done = true;
        }
        entry
    }
}

impl<'a> Iterator for Parser<'a> {
    type Item = Result<Entry<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_entry().transpose()
    }
}
