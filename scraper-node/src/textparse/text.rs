//! The Prometheus text exposition format 0.0.4 as Prometheus 2.42 parses it:
//! `promparse.go` on top of the `promlex.l` automaton, reimplemented in
//! [`lexer`]. The grammar and the quirks it keeps are described in the
//! parent module.
//!
//! The parser asks the lexer for tokens, skipping WHITESPACE, and checks
//! each against what 2.42's `Next` expects there; an error names the token
//! it got (`expected label name, got "COMMA"`). Label names are not checked
//! for repeats here: 2.42 accepts such a line and fails on append, which
//! [`super::Sample::checked_labels`] reproduces on the scrape's cache-miss
//! path.
//!
//! This file also holds what the text and OpenMetrics parsers share: value
//! parsing with Go's error texts, label-value unescaping, Go-style quoting,
//! and the name character classes (re-exported from
//! [`scrapegrid_common::labels`], their one definition).

pub(super) mod lexer;

use std::borrow::Cow;
use std::fmt::Write as _;

use scrapegrid_common::go_quote;

use super::token::Token;
use super::{Entry, MetricType, ParseError, Sample, NORMAL_NAN_BITS};
use lexer::Lexer;

/// The text-format state: the body and the lexer's cursor into it.
#[derive(Debug)]
pub(super) struct TextParser<'a> {
    body: &'a [u8],
    lex: Lexer<'a>,
    /// Whether label blocks in the plain form are read in one pass
    /// ([`Lexer::plain_label_block`]); off only in the test that compares
    /// both ways.
    plain_blocks: bool,
}

impl<'a> TextParser<'a> {
    pub(super) fn new(body: &'a [u8]) -> Self {
        TextParser {
            body,
            lex: Lexer::new(body),
            plain_blocks: true,
        }
    }

    /// A parser that lexes every label block token by token.
    #[cfg(test)]
    pub(super) fn token_by_token(body: &'a [u8]) -> Self {
        TextParser {
            plain_blocks: false,
            ..Self::new(body)
        }
    }

    /// Reads one entry (2.42's `Next`), skipping blank lines.
    pub(super) fn entry(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        loop {
            // A series starts where the line does, blanks included.
            let line_start = self.lex.pos;
            match self.next_token() {
                Token::Eof => return Ok(None),
                Token::Linebreak => {}
                t @ (Token::Help | Token::Type) => return self.metadata(t).map(Some),
                Token::Comment => {
                    let t = self.next_token();
                    if t != Token::Linebreak {
                        return Err(self.unexpected("linebreak expected after comment", t));
                    }
                    return Ok(Some(Entry::Comment));
                }
                Token::MName => return self.sample(line_start).map(|s| Some(Entry::Sample(s))),
                t => {
                    let message = format!("{} is not a valid start token", go_quote(t.as_str()));
                    return Err(self.error(self.lex.start, message));
                }
            }
        }
    }

    /// Parses the rest of a HELP or TYPE line after its keyword.
    fn metadata(&mut self, keyword: Token) -> Result<Entry<'a>, ParseError> {
        let t = self.next_token();
        if t != Token::MName {
            let expected = format!("expected metric name after {}", keyword.as_str());
            return Err(self.unexpected(&expected, t));
        }
        let name = ascii(self.lex.token());
        if self.next_token() != Token::Text {
            let message = format!("expected text in {}", keyword.as_str());
            return Err(self.error(self.lex.start, message));
        }
        // 2.42 drops the first byte of the rest of the line.
        let token = self.lex.token();
        let skip = usize::from(!token.is_empty());
        let (text_start, text) = (self.lex.start + skip, &token[skip..]);
        let entry = match keyword {
            Token::Type => {
                let kind = match text {
                    b"counter" => MetricType::Counter,
                    b"gauge" => MetricType::Gauge,
                    b"histogram" => MetricType::Histogram,
                    b"summary" => MetricType::Summary,
                    b"untyped" => MetricType::Untyped,
                    _ => {
                        let message = format!("invalid metric type {}", go_quote_bytes(text));
                        return Err(self.error(text_start, message));
                    }
                };
                Entry::Type { name, kind }
            }
            _ => match std::str::from_utf8(text) {
                Ok(help) => Entry::Help {
                    name,
                    help: unescape(help, false),
                },
                Err(e) => {
                    let message = "help text is not a valid utf8 string".to_owned();
                    return Err(self.error(text_start + e.valid_up_to(), message));
                }
            },
        };
        let t = self.next_token();
        if t != Token::Linebreak {
            return Err(self.unexpected("linebreak expected after metadata", t));
        }
        Ok(entry)
    }

    /// Parses a sample line whose metric name was just read; `line_start` is
    /// where its line starts.
    fn sample(&mut self, line_start: usize) -> Result<Sample<'a>, ParseError> {
        let mut series_end = self.lex.pos;
        let mut t;
        if self.plain_blocks && self.lex.plain_label_block() {
            series_end = self.lex.pos;
            t = self.next_token();
        } else {
            t = self.next_token();
            if t == Token::BraceOpen {
                self.label_pairs()?;
                series_end = self.lex.pos;
                t = self.next_token();
            }
        }
        if t != Token::Value {
            return Err(self.unexpected("expected value after metric", t));
        }
        let value = float_value(self.lex.token()).map_err(|m| self.error(self.lex.start, m))?;
        let timestamp_ms = match self.next_token() {
            Token::Linebreak => None,
            Token::Timestamp => {
                let ts = int_value(self.lex.token()).map_err(|m| self.error(self.lex.start, m))?;
                let t = self.next_token();
                if t != Token::Linebreak {
                    return Err(self.unexpected("expected next entry after timestamp", t));
                }
                Some(ts)
            }
            t => return Err(self.unexpected("expected timestamp or new record", t)),
        };
        // Label values were checked to be UTF-8 and everything else is ASCII,
        // so this cannot fail; it is the safe way to get the `&str`.
        let series = std::str::from_utf8(&self.body[line_start..series_end]).map_err(|e| {
            let message = "invalid UTF-8 label value".to_owned();
            self.error(line_start + e.valid_up_to(), message)
        })?;
        Ok(Sample {
            series: Cow::Borrowed(series),
            value,
            timestamp_ms,
            exemplar: None,
        })
    }

    /// Parses the label pairs of a block whose `{` was just read, through its
    /// `}` (2.42's `parseLVals`).
    fn label_pairs(&mut self) -> Result<(), ParseError> {
        let mut t = self.next_token();
        loop {
            match t {
                Token::BraceClose => return Ok(()),
                Token::LName => {}
                t => return Err(self.unexpected("expected label name", t)),
            }
            let t2 = self.next_token();
            if t2 != Token::Equal {
                return Err(self.unexpected("expected equal", t2));
            }
            let t3 = self.next_token();
            if t3 != Token::LValue {
                return Err(self.unexpected("expected label value", t3));
            }
            let value = self.lex.token();
            if !value.is_ascii() {
                if let Err(e) = std::str::from_utf8(value) {
                    let message = "invalid UTF-8 label value".to_owned();
                    return Err(self.error(self.lex.start + e.valid_up_to(), message));
                }
            }
            t = self.next_token();
            if t == Token::Comma {
                t = self.next_token();
            }
        }
    }

    /// Returns the next token that is not WHITESPACE.
    fn next_token(&mut self) -> Token {
        loop {
            let t = self.lex.lex();
            if t != Token::Whitespace {
                return t;
            }
        }
    }

    fn error(&self, at: usize, message: String) -> ParseError {
        ParseError::at(self.body, at, message)
    }

    /// Returns `{expected}, got "TOKEN"` (2.42's `parseError`), placed where
    /// the token starts, or where the lexer gave up on an invalid one.
    fn unexpected(&self, expected: &str, got: Token) -> ParseError {
        let at = match got {
            Token::Invalid => self.lex.pos,
            _ => self.lex.start,
        };
        self.error(at, format!("{expected}, got {}", go_quote(got.as_str())))
    }
}

/// Parses a sample value as 2.42's `parseFloat`: Go's `strconv.ParseFloat`
/// without the Go 1.13 spellings, with Go's error texts.
pub(super) fn float_value(raw: &[u8]) -> Result<f64, String> {
    parse_float(raw).map_err(|e| match e {
        FloatError::Unsupported => "unsupported character in float".to_owned(),
        FloatError::Syntax => format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            go_quote_bytes(raw)
        ),
        FloatError::Range => format!(
            "strconv.ParseFloat: parsing {}: value out of range",
            go_quote_bytes(raw)
        ),
    })
}

/// Parses the digits of a timestamp as Go's `strconv.ParseInt(s, 10, 64)`,
/// which can only fail on overflow here.
fn int_value(digits: &[u8]) -> Result<i64, String> {
    digits
        .iter()
        .try_fold(0i64, |n, &d| {
            n.checked_mul(10)?.checked_add(i64::from(d - b'0'))
        })
        .ok_or_else(|| {
            format!(
                "strconv.ParseInt: parsing {}: value out of range",
                go_quote_bytes(digits)
            )
        })
}

enum FloatError {
    /// `p`, `P` or `_`: Go 1.13 spellings that Prometheus refuses.
    Unsupported,
    Syntax,
    Range,
}

/// Parses a value as Prometheus does: Go's `strconv.ParseFloat` without the
/// Go 1.13 additions (hex mantissas, `_` separators). NaN gets
/// [`NORMAL_NAN_BITS`].
fn parse_float(raw: &[u8]) -> Result<f64, FloatError> {
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

/// Quotes bytes as Go's `%q` does, invalid UTF-8 as `\xNN`.
pub(super) fn go_quote_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        let quoted = go_quote(chunk.valid());
        out.push_str(&quoted[1..quoted.len() - 1]);
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out.push('"');
    out
}

/// Returns bytes known to be ASCII as a `&str`.
fn ascii(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

pub(super) use scrapegrid_common::labels::{
    is_label_name_char, is_label_name_start, is_metric_name_char, is_metric_name_start,
};
