//! The label set of a sample's series, read back from its text-format
//! spelling for [`super::Sample::labels`] and
//! [`super::Sample::scraped_labels`], on a scrape's series-cache miss.
//!
//! The series is re-read with the text format's lexer, so that the metric
//! name and the label values are exactly the slices 2.42's parsers take: the
//! name includes the blanks before it on its line (`  w3` is the name
//! `"  w3"`), and a value is the token between its quotes, which after a NUL
//! that the lexer skipped past a closing quote includes that quote. Values
//! are unescaped as 2.42's `lvalReplacer` does. The text, OpenMetrics and
//! protobuf series all read back this way (OpenMetrics series are a subset of
//! the text syntax; protobuf series are written in it).
//!
//! Then what 2.42 does on the cache-miss path before the append: its
//! `labels.Builder` drops every label of a name that has an empty value
//! (also every `__name__`, when one of them is empty), and the head refuses a
//! label set whose name repeats (`label name "x" is not unique`), naming the
//! first repeated name in sorted order.

use scrapegrid_common::{Label, Labels, METRIC_NAME};

use super::ScrapedLabels;

use super::text::lexer::Lexer;
use super::text::unescape;
use super::token::Token;

/// Returns the label set of `series`, its first repeated label name, if a
/// name repeats (a repeated name keeps its first value), and the names with
/// an empty value. A series that does not lex as a text-format series gives
/// the labels read up to the first token that does not fit.
pub(super) fn series_labels(series: &str) -> ScrapedLabels {
    let mut lex = Lexer::new(series.as_bytes());
    if next_token(&mut lex) != Token::MName {
        return ScrapedLabels {
            labels: Labels::new(),
            repeated: None,
            empty: Vec::new(),
        };
    }
    // An upper bound: every label has an `=`, values may have more.
    let capacity = 1 + series.bytes().filter(|&c| c == b'=').count();
    let mut labels = Vec::with_capacity(capacity);
    labels.push(Label {
        name: METRIC_NAME.to_owned(),
        value: series[..lex.pos].to_owned(),
    });
    if next_token(&mut lex) == Token::BraceOpen {
        let mut t = next_token(&mut lex);
        while t == Token::LName {
            let name = &series[lex.start..lex.pos];
            if next_token(&mut lex) != Token::Equal || next_token(&mut lex) != Token::LValue {
                break;
            }
            // Every offset here is at an ASCII byte (a quote or a NUL).
            let Some(raw) = series.get(lex.start + 1..lex.pos - 1) else {
                break;
            };
            labels.push(Label {
                name: name.to_owned(),
                value: unescape(raw, true).into_owned(),
            });
            t = next_token(&mut lex);
            if t == Token::Comma {
                t = next_token(&mut lex);
            }
        }
    }
    finish(labels)
}

/// Sorts the labels, drops empty ones as 2.42's `labels.Builder` does and
/// finds the first repeated name.
fn finish(mut labels: Vec<Label>) -> ScrapedLabels {
    // Stable, so that a repeated name keeps its first value.
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    let mut empty: Vec<String> = Vec::new();
    for l in &labels {
        if l.value.is_empty() && !empty.contains(&l.name) {
            empty.push(l.name.clone());
        }
    }
    labels.retain(|l| !empty.contains(&l.name));
    let repeated = labels
        .windows(2)
        .find(|w| w[0].name == w[1].name)
        .map(|w| w[0].name.clone());
    if repeated.is_some() {
        labels.dedup_by(|later, first| later.name == first.name);
    }
    ScrapedLabels {
        labels: Labels::from_sorted_unchecked(labels),
        repeated,
        empty,
    }
}

/// Returns the next token that is not WHITESPACE.
fn next_token(lex: &mut Lexer<'_>) -> Token {
    loop {
        let t = lex.lex();
        if t != Token::Whitespace {
            return t;
        }
    }
}
