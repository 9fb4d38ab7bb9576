//! OpenMetrics 1.0 as Prometheus 2.42 parses it (`openmetricsparse.go` on top
//! of the `openmetricslex.l` automaton, reimplemented in [`lexer`]).
//!
//! # Grammar (what 2.42 accepts, which is stricter than the text format)
//!
//! ```text
//! body        = { line } "# EOF" [ "\n" ] ;       (nothing after it)
//! line        = ( sample | help | type | unit ) "\n" ;
//! help        = "# HELP " metric-name " " text ;  (any bytes but "\n", UTF-8)
//! type        = "# TYPE " metric-name " " kind ;
//! kind        = "counter" | "gauge" | "histogram" | "gaugehistogram"
//!             | "summary" | "info" | "stateset" | "unknown" ;
//! unit        = "# UNIT " metric-name " " [ unit-text ] ;
//! sample      = metric-name [ labels ] " " value [ " " timestamp ]
//!               [ " # " labels " " value [ " " timestamp ] ] ;
//! labels      = "{" [ label { "," label } ] "}" ;     (no trailing comma)
//! label       = label-name "=" '"' { "\" any-but-newline | any-but-quote-backslash-newline } '"' ;
//! value       = Go strconv.ParseFloat without "p", "P", "_" (as the text format) ;
//! timestamp   = the same float syntax, in seconds ;
//! ```
//!
//! Exactly one space separates tokens; tabs, blank lines, leading blanks,
//! trailing blanks and plain `# comments` are errors, and so is a body without
//! `# EOF` or with anything after it. There is no `untyped` type. A non-empty
//! unit must be the metric name's suffix after a `_`. Names, label names and
//! kinds are not checked against each other: `_created`, `_total`, `_info`
//! samples are ordinary samples, and a sample need not follow its family's
//! TYPE. An exemplar is allowed on any sample whose metric name ends in
//! `_total` or `_bucket`, whatever its type, and on no other.
//!
//! Values and timestamps: NaN has the bits [`super::NORMAL_NAN_BITS`]
//! (Go's `math.NaN()` bits); a timestamp is `int64(seconds * 1000)` as Go
//! computes it on amd64: truncated toward zero, and `i64::MIN` when the
//! product does not fit; NaN and ±Inf timestamps are errors. Errors read exactly as 2.42's
//! (`expected label name, got "BCLOSE"`, `strconv.ParseFloat: parsing "1z":
//! invalid syntax`), with a line and column added.
//!
//! HELP text unescapes `\\`, `\n` and `\"` (2.42 uses its label-value
//! replacer there); UNIT text is as written. Exemplar label values are *not*
//! unescaped, as in 2.42, and empty ones are dropped (they are absent in
//! [`scrapegrid_common::Labels`]); a repeated exemplar label name keeps its
//! last value. The 128-rune limit on exemplar labels is not the parser's: in
//! 2.42 the TSDB rejects such an exemplar on append and the scrape goes on.
//!
//! NUL bytes follow the lexer: one ends a token (and so fails the line),
//! except where the lexer skips NULs: within and right after a keyword once
//! past `# ` (`# E\0OF` and `# EOF\0` end a body), inside HELP/TYPE/UNIT text
//! and right after its final newline (they become part of the text), and
//! inside series label values, also right after a backslash or the closing
//! quote: as 2.42, the value is then the token minus its first and last byte,
//! so `"c"\0` has the value `c"`.
//!
//! A label name repeated within a series, or `__name__` in its label block,
//! parses, as in 2.42, which refuses such a series on append;
//! [`super::Sample::checked_labels`] reports it.
//!
//! # Zero-copy design
//!
//! As [`super::text`]: a sample's series is the slice `name{labels}` of the
//! body, label offsets go to scratch vectors reused from line to line (for
//! an exemplar's labels), and only an exemplar allocates (its box and owned
//! label set).

mod lexer;

#[cfg(test)]
mod tests;

use std::borrow::Cow;

use scrapegrid_common::{go_quote, Labels};

use super::text::{float_value, go_quote_bytes, unescape};
use super::token::Token;
use super::{Entry, Exemplar, MetricType, ParseError, Sample};
use lexer::Lexer;

/// Metric-name suffixes that may carry an exemplar (2.42 `allowedSuffixes`).
const EXEMPLAR_SUFFIXES: [&str; 2] = ["_total", "_bucket"];

/// The OpenMetrics parser state: the lexer and scratch space.
#[derive(Debug)]
pub(super) struct OpenMetricsParser<'a> {
    body: &'a [u8],
    lex: Lexer<'a>,
    /// Offsets of the label names of the current label block.
    label_names: Vec<(usize, usize)>,
    /// Offsets of the label values (inside the quotes) of the current block.
    label_values: Vec<(usize, usize)>,
}

impl<'a> OpenMetricsParser<'a> {
    pub(super) fn new(body: &'a [u8]) -> Self {
        OpenMetricsParser {
            body,
            lex: Lexer::new(body),
            label_names: Vec::new(),
            label_values: Vec::new(),
        }
    }

    pub(super) fn entry(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        let start = self.lex.pos;
        match self.lex.lex() {
            Token::EofWord => {
                let after = self.lex.pos;
                match self.lex.lex() {
                    Token::Eof => Ok(None),
                    _ => Err(self.error(after, "unexpected data after # EOF")),
                }
            }
            Token::Eof => Err(self.no_eof()),
            t @ (Token::Help | Token::Type | Token::Unit) => self.metadata(t).map(Some),
            Token::MName => self.sample(start).map(|s| Some(Entry::Sample(s))),
            t => {
                let cur = char::from(self.lex.cur()).to_string();
                let message = format!(
                    "{} {} is not a valid start token",
                    go_quote(t.as_str()),
                    go_quote(&cur)
                );
                Err(self.error(self.lex.pos, message))
            }
        }
    }

    /// Parses the rest of a HELP, TYPE or UNIT line after its keyword.
    fn metadata(&mut self, keyword: Token) -> Result<Entry<'a>, ParseError> {
        let t = self.lex.lex();
        if t != Token::MName {
            let expected = format!("expected metric name after {}", keyword.as_str());
            return Err(self.unexpected(&expected, t));
        }
        let name = utf8(&self.body[self.lex.start..self.lex.pos]);
        if self.lex.lex() != Token::Text {
            let message = format!("expected text in {}", keyword.as_str());
            return Err(self.error(self.lex.pos, message));
        }
        // The token is " text\n": drop the blank and the last byte.
        let text_start = self.lex.start + 1;
        let text = &self.body[text_start..self.lex.pos - 1];
        match keyword {
            Token::Type => match metric_type(text) {
                Some(kind) => Ok(Entry::Type { name, kind }),
                None => {
                    let message = format!("invalid metric type {}", go_quote_bytes(text));
                    Err(self.error(text_start, message))
                }
            },
            Token::Help => match std::str::from_utf8(text) {
                Ok(help) => Ok(Entry::Help {
                    name,
                    help: unescape(help, true),
                }),
                Err(e) => Err(self.error(
                    text_start + e.valid_up_to(),
                    "help text is not a valid utf8 string",
                )),
            },
            // UNIT
            _ => {
                let suffix_ok = text.is_empty()
                    || (name.len() > text.len()
                        && name.as_bytes().ends_with(text)
                        && name.as_bytes()[name.len() - text.len() - 1] == b'_');
                if !suffix_ok {
                    let message = format!("unit not a suffix of metric {}", go_quote(name));
                    return Err(self.error(text_start, message));
                }
                let unit = &name[name.len() - text.len()..];
                Ok(Entry::Unit { name, unit })
            }
        }
    }

    /// Parses a sample line whose metric name was just read.
    fn sample(&mut self, start: usize) -> Result<Sample<'a>, ParseError> {
        let name_end = self.lex.pos;
        let mut series_end = name_end;
        let mut t = self.lex.lex();
        if t == Token::BraceOpen {
            self.label_pairs()?;
            series_end = self.lex.pos;
            t = self.lex.lex();
        }
        // Label values were checked to be UTF-8 and everything else is ASCII.
        let series = std::str::from_utf8(&self.body[start..series_end])
            .map_err(|e| self.error(start + e.valid_up_to(), "invalid UTF-8 label value"))?;
        let mut sample = Sample {
            series: Cow::Borrowed(series),
            value: self.value(t, "metric")?,
            timestamp_ms: None,
            exemplar: None,
        };
        let name = utf8(&self.body[start..name_end]);
        match self.lex.lex() {
            Token::Eof => return Err(self.no_eof()),
            Token::Linebreak => {}
            Token::Comment => sample.exemplar = Some(self.exemplar(name)?),
            Token::Timestamp => {
                sample.timestamp_ms = Some(self.timestamp("invalid timestamp")?);
                match self.lex.lex() {
                    Token::Linebreak => {}
                    Token::Comment => sample.exemplar = Some(self.exemplar(name)?),
                    t => return Err(self.unexpected("expected next entry after timestamp", t)),
                }
            }
            t => return Err(self.unexpected("expected timestamp or # symbol", t)),
        }
        Ok(sample)
    }

    /// Parses an exemplar after its ` # {`, up to the end of the line.
    fn exemplar(&mut self, metric: &str) -> Result<Box<Exemplar>, ParseError> {
        if !EXEMPLAR_SUFFIXES.iter().any(|s| metric.ends_with(s)) {
            let message = format!("metric name {metric} does not support exemplars");
            return Err(self.error(self.lex.start + 1, message));
        }
        self.label_pairs()?;
        let t = self.lex.lex();
        let value = self.value(t, "exemplar labels")?;
        let timestamp_ms = match self.lex.lex() {
            Token::Eof => return Err(self.no_eof()),
            Token::Linebreak => None,
            Token::Timestamp => {
                let ts = self.timestamp("invalid exemplar timestamp")?;
                match self.lex.lex() {
                    Token::Linebreak => Some(ts),
                    t => {
                        return Err(
                            self.unexpected("expected next entry after exemplar timestamp", t)
                        )
                    }
                }
            }
            t => return Err(self.unexpected("expected timestamp or comment", t)),
        };
        let body = self.body;
        let text = |(start, end): (usize, usize)| utf8(&body[start..end]);
        let labels = Labels::from_pairs(
            self.label_names
                .iter()
                .zip(&self.label_values)
                .map(|(&n, &v)| (text(n), text(v))),
        );
        Ok(Box::new(Exemplar {
            labels,
            value,
            timestamp_ms,
        }))
    }

    /// Parses the label pairs of a block whose `{` was just read, through its
    /// `}`, into `label_names` and `label_values` (2.42 `parseLVals`).
    fn label_pairs(&mut self) -> Result<(), ParseError> {
        self.label_names.clear();
        self.label_values.clear();
        let mut first = true;
        loop {
            let t = self.lex.lex();
            match t {
                Token::BraceClose => return Ok(()),
                Token::Comma if !first => {
                    let t = self.lex.lex();
                    if t != Token::LName {
                        return Err(self.unexpected("expected label name", t));
                    }
                }
                Token::LName if first => {}
                Token::LName => return Err(self.unexpected("expected comma", t)),
                _ if first => return Err(self.unexpected("expected label name or left brace", t)),
                _ => return Err(self.unexpected("expected comma or left brace", t)),
            }
            first = false;
            self.label_names.push((self.lex.start, self.lex.pos));
            let t = self.lex.lex();
            if t != Token::Equal {
                return Err(self.unexpected("expected equal", t));
            }
            let t = self.lex.lex();
            if t != Token::LValue {
                return Err(self.unexpected("expected label value", t));
            }
            let (open, end) = (self.lex.start, self.lex.pos);
            let value = &self.body[open..end];
            if !value.is_ascii() {
                if let Err(e) = std::str::from_utf8(value) {
                    return Err(self.error(open + e.valid_up_to(), "invalid UTF-8 label value"));
                }
            }
            self.label_values.push((open + 1, end - 1));
        }
    }

    /// Parses the value token `t` (2.42 `getFloatValue`).
    fn value(&self, t: Token, after: &str) -> Result<f64, ParseError> {
        if t != Token::Value {
            return Err(self.unexpected(&format!("expected value after {after}"), t));
        }
        self.float()
    }

    /// Parses the timestamp token just read: seconds to milliseconds.
    fn timestamp(&self, invalid: &str) -> Result<i64, ParseError> {
        let seconds = self.float()?;
        if !seconds.is_finite() {
            return Err(self.error(self.lex.start + 1, invalid));
        }
        Ok(seconds_to_millis(seconds))
    }

    /// Parses the float of the value or timestamp token just read (after its
    /// leading blank), with Go's error messages.
    fn float(&self) -> Result<f64, ParseError> {
        let from = self.lex.start + 1;
        float_value(&self.body[from..self.lex.pos]).map_err(|m| self.error(from, m))
    }

    fn no_eof(&self) -> ParseError {
        self.error(self.body.len(), "data does not end with # EOF")
    }

    fn error(&self, at: usize, message: impl Into<String>) -> ParseError {
        ParseError::at(self.body, at, message.into())
    }

    /// Returns `"{expected}, got "TOKEN""` (2.42 `parseError`), placed where
    /// the token starts, or where the lexer stopped for an invalid one.
    fn unexpected(&self, expected: &str, got: Token) -> ParseError {
        let at = match got {
            Token::Eof => self.body.len(),
            Token::Invalid => self.lex.pos,
            _ => self.lex.start,
        };
        self.error(at, format!("{expected}, got \"{}\"", got.as_str()))
    }
}

/// Returns the kind a TYPE line names.
fn metric_type(text: &[u8]) -> Option<MetricType> {
    Some(match text {
        b"counter" => MetricType::Counter,
        b"gauge" => MetricType::Gauge,
        b"histogram" => MetricType::Histogram,
        b"gaugehistogram" => MetricType::GaugeHistogram,
        b"summary" => MetricType::Summary,
        b"info" => MetricType::Info,
        b"stateset" => MetricType::StateSet,
        b"unknown" => MetricType::Unknown,
        _ => return None,
    })
}

/// Returns Go's `int64(seconds * 1000)` as amd64 computes it: truncated
/// toward zero, and `i64::MIN` (the "integer indefinite" of `CVTTSD2SQ`) when
/// out of range.
fn seconds_to_millis(seconds: f64) -> i64 {
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    let ms = seconds * 1000.0;
    if (-TWO_POW_63..TWO_POW_63).contains(&ms) {
        ms as i64
    } else {
        i64::MIN
    }
}

/// Returns bytes known to be UTF-8 (names, checked label values) as a `&str`.
fn utf8(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}
