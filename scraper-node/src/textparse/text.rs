//! The Prometheus text exposition format 0.0.4: a single-pass parser over the
//! body's bytes and the label re-scan behind [`Sample::labels`]. The grammar and
//! the Prometheus quirks it keeps are described in the parent module.

use std::borrow::Cow;

use scrapegrid_common::{Label, Labels, METRIC_NAME};

use super::{Entry, MetricType, ParseError, Sample, NORMAL_NAN_BITS};

/// Longest excerpt of the input quoted in an error message.
const MAX_EXCERPT: usize = 32;

/// Label blocks with more names than this check uniqueness by sorting instead
/// of comparing every pair.
const MAX_PAIRWISE_NAMES: usize = 16;

/// The text-format state: the body and a cursor into it.
#[derive(Debug)]
pub(super) struct TextParser<'a> {
    body: &'a [u8],
    pos: usize,
    done: bool,
    /// Offsets of the label names of the current series; reused from line to
    /// line so that the duplicate check does not allocate per sample.
    label_names: Vec<(usize, usize)>,
    /// Scratch space for the duplicate check of large label blocks.
    sorted_names: Vec<(usize, usize)>,
}

#[derive(Clone, Copy)]
enum Keyword {
    Help,
    Type,
}

pub(super) enum FloatError {
    /// `p`, `P` or `_`: Go 1.13 spellings that Prometheus refuses.
    Unsupported,
    Syntax,
    Range,
}

impl<'a> TextParser<'a> {
    pub(super) fn new(body: &'a [u8]) -> Self {
        TextParser {
            body,
            pos: 0,
            done: false,
            label_names: Vec::new(),
            sorted_names: Vec::new(),
        }
    }

    pub(super) fn next_entry(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        if self.done {
            return Ok(None);
        }
        let entry = self.entry();
        if !matches!(entry, Ok(Some(_))) {
            self.done = true;
        }
        entry
    }

    fn entry(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        loop {
            self.skip_blanks();
            match self.peek() {
                // Prometheus's lexer treats a NUL where a token starts a line as
                // the end of the input.
                None | Some(0) => return Ok(None),
                Some(b'\n') => self.pos += 1,
                Some(b'#') => return self.comment().map(Some),
                Some(c) if is_metric_name_start(c) => {
                    return self.sample().map(|s| Some(Entry::Sample(s)))
                }
                Some(_) => return Err(self.unexpected("expected a valid start token", self.pos)),
            }
        }
    }

    /// Parses a line starting with `#`: HELP, TYPE or a plain comment.
    fn comment(&mut self) -> Result<Entry<'a>, ParseError> {
        self.pos += 1;
        if self.skip_blanks() > 0 {
            let rest = &self.body[self.pos..];
            let keyword = match rest.get(..4) {
                Some(b"HELP") => Some(Keyword::Help),
                Some(b"TYPE") => Some(Keyword::Type),
                _ => None,
            };
            if let Some(keyword) = keyword {
                if matches!(rest.get(4), Some(b' ' | b'\t')) {
                    self.pos += 4;
                    self.skip_blanks();
                    return self.metadata(keyword);
                }
            }
        }
        self.finish_line();
        Ok(Entry::Comment)
    }

    /// Parses the metric name and text of a HELP or TYPE line.
    fn metadata(&mut self, keyword: Keyword) -> Result<Entry<'a>, ParseError> {
        if !self.peek().is_some_and(is_metric_name_start) {
            let expected = match keyword {
                Keyword::Help => "expected metric name after HELP",
                Keyword::Type => "expected metric name after TYPE",
            };
            return Err(self.unexpected(expected, self.pos));
        }
        let name = self.metric_name();
        let rest_start = self.pos;
        let rest_end = self.finish_line();
        let rest = &self.body[rest_start..rest_end];
        // Prometheus lexes the rest of the line as one token and drops its
        // first byte, unless the rest is only blanks (then it is whitespace
        // and the text is empty).
        let text_start = if rest.len() <= 1 || rest.iter().all(|&c| is_blank(c)) {
            rest_end
        } else {
            rest_start + 1
        };
        let text = &self.body[text_start..rest_end];
        match keyword {
            Keyword::Type => {
                let kind = match text {
                    b"counter" => MetricType::Counter,
                    b"gauge" => MetricType::Gauge,
                    b"histogram" => MetricType::Histogram,
                    b"summary" => MetricType::Summary,
                    b"untyped" => MetricType::Untyped,
                    _ => {
                        let message = format!("invalid metric type {}", quote(text));
                        return Err(self.error(text_start, message));
                    }
                };
                Ok(Entry::Type { name, kind })
            }
            Keyword::Help => match std::str::from_utf8(text) {
                Ok(help) => Ok(Entry::Help {
                    name,
                    help: unescape(help, false),
                }),
                Err(e) => Err(self.error(
                    text_start + e.valid_up_to(),
                    "help text is not a valid utf8 string".to_owned(),
                )),
            },
        }
    }

    /// Parses a sample line whose metric name starts at the cursor.
    fn sample(&mut self) -> Result<Sample<'a>, ParseError> {
        let start = self.pos;
        self.metric_name();
        let mut series_end = self.pos;
        self.skip_blanks();
        if self.peek() == Some(b'{') {
            self.label_block()?;
            series_end = self.pos;
            self.skip_blanks();
        }
        // Label values were checked to be UTF-8 and everything else is ASCII,
        // so this cannot fail; it is the safe way to get the `&str`.
        let series = std::str::from_utf8(&self.body[start..series_end]).map_err(|e| {
            self.error(
                start + e.valid_up_to(),
                "invalid UTF-8 label value".to_owned(),
            )
        })?;

        let value_start = self.pos;
        while self
            .peek()
            .is_some_and(|c| !matches!(c, b'{' | b' ' | b'\t' | b'\n'))
        {
            self.pos += 1;
        }
        if self.pos == value_start {
            return Err(self.unexpected("expected value after metric", value_start));
        }
        let raw = &self.body[value_start..self.pos];
        let value = parse_float(raw).map_err(|e| {
            let message = match e {
                FloatError::Unsupported => format!("unsupported character in float {}", quote(raw)),
                FloatError::Syntax => format!("parsing value {}: invalid syntax", quote(raw)),
                FloatError::Range => format!("parsing value {}: value out of range", quote(raw)),
            };
            self.error(value_start, message)
        })?;

        self.skip_blanks();
        let timestamp_ms = match self.peek() {
            None | Some(b'\n') => None,
            Some(c) if c.is_ascii_digit() => Some(self.timestamp()?),
            Some(_) => {
                return Err(self.unexpected("expected timestamp or new record", self.pos));
            }
        };
        if self.peek() == Some(b'\n') {
            self.pos += 1;
        }
        Ok(Sample {
            series: Cow::Borrowed(series),
            value,
            timestamp_ms,
            exemplar: None,
        })
    }

    /// Parses `{...}` from its opening brace, checks label names are unique,
    /// and leaves the cursor after the closing brace.
    fn label_block(&mut self) -> Result<(), ParseError> {
        self.pos += 1;
        self.label_names.clear();
        loop {
            self.skip_blanks();
            match self.peek() {
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                Some(c) if is_label_name_start(c) => {}
                _ => return Err(self.unexpected("expected label name", self.pos)),
            }
            let name_start = self.pos;
            while self.peek().is_some_and(is_label_name_char) {
                self.pos += 1;
            }
            self.label_names.push((name_start, self.pos));
            self.skip_blanks();
            if self.peek() != Some(b'=') {
                return Err(self.unexpected("expected equal", self.pos));
            }
            self.pos += 1;
            self.skip_blanks();
            if self.peek() != Some(b'"') {
                return Err(self.unexpected("expected label value", self.pos));
            }
            self.label_value()?;
            self.skip_blanks();
            if self.peek() == Some(b',') {
                self.pos += 1;
            }
        }
        match self.duplicate_label_name() {
            Some((start, end)) => {
                let message = format!("label name {} is not unique", quote(&self.body[start..end]));
                Err(self.error(start, message))
            }
            None => Ok(()),
        }
    }

    /// Scans a quoted label value from its opening quote to after its closing
    /// quote, and checks that it is UTF-8.
    fn label_value(&mut self) -> Result<(), ParseError> {
        let open = self.pos;
        self.pos += 1;
        let mut high_bits = 0u8;
        loop {
            match self.peek() {
                Some(b'"') => break,
                Some(b'\\') => match self.body.get(self.pos + 1) {
                    None => {
                        return Err(self.error(open, "unterminated label value".to_owned()));
                    }
                    Some(b'\n') => {
                        let message = "invalid escape: backslash at end of line".to_owned();
                        return Err(self.error(self.pos, message));
                    }
                    Some(&c) => {
                        high_bits |= c;
                        self.pos += 2;
                    }
                },
                Some(c) => {
                    high_bits |= c;
                    self.pos += 1;
                }
                None => return Err(self.error(open, "unterminated label value".to_owned())),
            }
        }
        let value = &self.body[open + 1..self.pos];
        self.pos += 1;
        if high_bits.is_ascii() {
            return Ok(());
        }
        match std::str::from_utf8(value) {
            Ok(_) => Ok(()),
            Err(e) => Err(self.error(
                open + 1 + e.valid_up_to(),
                "invalid UTF-8 label value".to_owned(),
            )),
        }
    }

    /// Returns the first repeated label name of the current block, or a label
    /// named `__name__` (which repeats the metric name).
    fn duplicate_label_name(&mut self) -> Option<(usize, usize)> {
        duplicate_label_name(self.body, &self.label_names, &mut self.sorted_names)
    }

    /// Parses the digits of a timestamp and checks that the line ends after it.
    fn timestamp(&mut self) -> Result<i64, ParseError> {
        let start = self.pos;
        let mut ts = Some(0i64);
        while let Some(c @ b'0'..=b'9') = self.peek() {
            ts = ts
                .and_then(|t| t.checked_mul(10))
                .and_then(|t| t.checked_add(i64::from(c - b'0')));
            self.pos += 1;
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            let message = format!(
                "invalid timestamp {}: expected integer milliseconds",
                self.excerpt(start)
            );
            return Err(self.error(start, message));
        }
        let Some(ts) = ts else {
            let message = format!(
                "parsing timestamp {}: value out of range",
                quote(&self.body[start..self.pos])
            );
            return Err(self.error(start, message));
        };
        self.skip_blanks();
        if !matches!(self.peek(), None | Some(b'\n')) {
            return Err(self.unexpected("expected next entry after timestamp", self.pos));
        }
        Ok(ts)
    }

    /// Consumes a metric name (the caller checked its first byte).
    fn metric_name(&mut self) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(is_metric_name_char) {
            self.pos += 1;
        }
        ascii(&self.body[start..self.pos])
    }

    fn peek(&self) -> Option<u8> {
        self.body.get(self.pos).copied()
    }

    /// Skips spaces and tabs; returns how many.
    fn skip_blanks(&mut self) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(is_blank) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// Moves past the end of the current line; returns where its content ends.
    fn finish_line(&mut self) -> usize {
        let rest = &self.body[self.pos..];
        match rest.iter().position(|&c| c == b'\n') {
            Some(i) => {
                let end = self.pos + i;
                self.pos = end + 1;
                end
            }
            None => {
                self.pos = self.body.len();
                self.pos
            }
        }
    }

    fn error(&self, at: usize, message: String) -> ParseError {
        ParseError::at(self.body, at, message)
    }

    /// Returns `"{expected}, got {what is at offset at}"` as an error there.
    fn unexpected(&self, expected: &str, at: usize) -> ParseError {
        let got = match self.body.get(at) {
            None | Some(b'\n') => "end of line".to_owned(),
            Some(_) => self.excerpt(at),
        };
        self.error(at, format!("{expected}, got {got}"))
    }

    /// Quotes the word at `at`: up to the next blank, line end or label-block
    /// punctuation, at least one byte, at most [`MAX_EXCERPT`] bytes.
    fn excerpt(&self, at: usize) -> String {
        let rest = &self.body[at.min(self.body.len())..];
        let rest = &rest[..rest.len().min(MAX_EXCERPT)];
        let len = rest
            .iter()
            .position(|c| b" \t\n\r{}=,\"".contains(c))
            .unwrap_or(rest.len())
            .max(1)
            .min(rest.len());
        quote(&rest[..len])
    }
}

/// Returns the first repeated name among `names` (offsets into `body`), or a
/// name `__name__` (which repeats the metric name); `sorted` is scratch space.
pub(super) fn duplicate_label_name(
    body: &[u8],
    names: &[(usize, usize)],
    sorted: &mut Vec<(usize, usize)>,
) -> Option<(usize, usize)> {
    let text = |(start, end): (usize, usize)| &body[start..end];
    if let Some(&n) = names.iter().find(|&&n| text(n) == METRIC_NAME.as_bytes()) {
        return Some(n);
    }
    if names.len() <= MAX_PAIRWISE_NAMES {
        return names
            .iter()
            .enumerate()
            .skip(1)
            .find(|&(i, &n)| names[..i].iter().any(|&m| text(m) == text(n)))
            .map(|(_, &n)| n);
    }
    sorted.clear();
    sorted.extend_from_slice(names);
    sorted.sort_unstable_by(|&a, &b| text(a).cmp(text(b)).then(a.0.cmp(&b.0)));
    sorted
        .windows(2)
        .filter(|w| text(w[0]) == text(w[1]))
        .map(|w| w[1])
        .min()
}

/// Returns the label set of a series written as `name{label="value",...}`.
pub(super) fn series_labels(series: &str) -> Labels {
    let b = series.as_bytes();
    let name_end = b
        .iter()
        .position(|&c| !is_metric_name_char(c))
        .unwrap_or(b.len());
    // An upper bound: every label has an `=`, values may have more.
    let capacity = 1 + b[name_end..].iter().filter(|&&c| c == b'=').count();
    let mut labels = Vec::with_capacity(capacity);
    if name_end > 0 {
        labels.push(Label {
            name: METRIC_NAME.to_owned(),
            value: series[..name_end].to_owned(),
        });
    }
    let mut pos = skip_blanks(b, name_end);
    if b.get(pos) == Some(&b'{') {
        pos += 1;
        while let Some((name, raw)) = next_label(series, &mut pos) {
            let value = unescape(raw, true);
            if !value.is_empty() {
                labels.push(Label {
                    name: name.to_owned(),
                    value: value.into_owned(),
                });
            }
        }
    }
    // Stable, so that a repeated name keeps its first value; only a hand-made
    // series can repeat one, the parser rejects it. Small inputs sort in place.
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    labels.dedup_by(|a, b| a.name == b.name);
    Labels::from_sorted_unchecked(labels)
}

/// Reads the next `name="raw value"` of a label block at `*pos`; returns None
/// at the closing brace or on anything unexpected. All slicing happens at ASCII
/// bytes, so it cannot split a character.
fn next_label<'s>(series: &'s str, pos: &mut usize) -> Option<(&'s str, &'s str)> {
    let b = series.as_bytes();
    let mut i = skip_blanks(b, *pos);
    if !b.get(i).copied().is_some_and(is_label_name_start) {
        return None;
    }
    let name_start = i;
    while b.get(i).copied().is_some_and(is_label_name_char) {
        i += 1;
    }
    let name = &series[name_start..i];
    i = skip_blanks(b, i);
    if b.get(i) != Some(&b'=') {
        return None;
    }
    i = skip_blanks(b, i + 1);
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let value_start = i + 1;
    i = value_start;
    loop {
        match b.get(i)? {
            b'"' => break,
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    let raw = series.get(value_start..i)?;
    i = skip_blanks(b, i + 1);
    if b.get(i) == Some(&b',') {
        i += 1;
    }
    *pos = i;
    Some((name, raw))
}

/// Replaces `\\` and `\n` (and `\"` when `quotes`) as Prometheus does; other
/// escapes stay as written. Borrows when there is nothing to replace.
pub(super) fn unescape(raw: &str, quotes: bool) -> Cow<'_, str> {
    if !raw.contains('\\') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let replacement = match after.as_bytes().first() {
            Some(b'\\') => Some('\\'),
            Some(b'n') => Some('\n'),
            Some(b'"') if quotes => Some('"'),
            _ => None,
        };
        match replacement {
            Some(c) => {
                out.push(c);
                rest = &after[1..];
            }
            None => {
                out.push('\\');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Parses a sample value as Prometheus does: Go's `strconv.ParseFloat`
/// without the Go 1.13 additions (hex mantissas, `_` separators).
pub(super) fn parse_float(raw: &[u8]) -> Result<f64, FloatError> {
    if raw.iter().any(|c| matches!(c, b'p' | b'P' | b'_')) {
        return Err(FloatError::Unsupported);
    }
    let (negative, unsigned) = match raw {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, raw),
    };
    if unsigned.eq_ignore_ascii_case(b"inf") || unsigned.eq_ignore_ascii_case(b"infinity") {
        return Ok(if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    // Go accepts no sign on NaN.
    if raw.eq_ignore_ascii_case(b"nan") {
        return Ok(f64::from_bits(NORMAL_NAN_BITS));
    }
    if !is_decimal(unsigned) {
        return Err(FloatError::Syntax);
    }
    let value: f64 = ascii(raw).parse().map_err(|_| FloatError::Syntax)?;
    if value.is_infinite() {
        // Go reports overflow as an error rather than returning ±Inf.
        return Err(FloatError::Range);
    }
    Ok(value)
}

/// Returns whether `s` is `digits [. digits] [(e|E) [+-] digits]` with at
/// least one mantissa digit (`1.`, `.5` and `1e3` are fine, `.`, `1e` are not).
fn is_decimal(s: &[u8]) -> bool {
    let digits = |from: usize| s[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let int = digits(0);
    let mut i = int;
    let mut frac = 0;
    if s.get(i) == Some(&b'.') {
        frac = digits(i + 1);
        i += 1 + frac;
    }
    if int + frac == 0 {
        return false;
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(s.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp = digits(i);
        if exp == 0 {
            return false;
        }
        i += exp;
    }
    i == s.len()
}

/// Quotes bytes for an error message, Go `%q` style.
fn quote(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => format!("{s:?}"),
        Err(_) => format!("\"{}\"", bytes.escape_ascii()),
    }
}

/// Returns bytes known to be ASCII as a `&str`.
fn ascii(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

fn skip_blanks(b: &[u8], mut i: usize) -> usize {
    while b.get(i).copied().is_some_and(is_blank) {
        i += 1;
    }
    i
}

fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

pub(super) fn is_metric_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

pub(super) fn is_metric_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

pub(super) fn is_label_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

pub(super) fn is_label_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}
