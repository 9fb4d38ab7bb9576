//! What the parsers' table tests share: parsing a whole body and rendering
//! entries compactly, so that every format's tables read alike.

use std::fmt::Write as _;

use super::{Entry, Format, ParseError, Parser};

/// Parses the whole body, collecting entries until the end or an error, and
/// checks that the parser stays stopped after an error.
pub(super) fn parse(format: Format, body: &[u8]) -> (Vec<Entry<'_>>, Option<ParseError>) {
    let mut parser = Parser::new(format, body);
    let mut entries = Vec::new();
    loop {
        match parser.next_entry() {
            Ok(Some(e)) => entries.push(e),
            Ok(None) => return (entries, None),
            Err(e) => {
                assert_eq!(
                    parser.next_entry(),
                    Ok(None),
                    "the parser stops after an error"
                );
                return (entries, Some(e));
            }
        }
    }
}

/// Parses a body that must parse; returns its rendered entries.
pub(super) fn parse_ok(format: Format, body: &[u8]) -> Vec<String> {
    let (entries, err) = parse(format, body);
    if let Some(err) = err {
        panic!(
            "{:?}: unexpected error: {err}",
            String::from_utf8_lossy(body)
        );
    }
    entries.iter().map(render).collect()
}

/// Checks that each `(name, body, line, column, message)` case fails to
/// parse with exactly that error.
pub(super) fn assert_rejects(format: Format, cases: &[(&str, &[u8], usize, usize, &str)]) {
    for (name, body, line, column, message) in cases {
        let (_, err) = parse(format, body);
        let err = err.unwrap_or_else(|| panic!("case {name:?}: accepted"));
        assert_eq!(
            (err.line, err.column, err.message.as_str()),
            (*line, *column, *message),
            "case {name:?}"
        );
    }
}

/// Renders a value with NaN's bits, so that renders compare bit-exactly.
pub(super) fn value(v: f64) -> String {
    if v.is_nan() {
        format!("NaN:{:#x}", v.to_bits())
    } else {
        format!("{v:?}")
    }
}

/// Renders an entry compactly: `S series value @ts # {exemplar labels} value
/// @ts`, `T name kind`, `H name "help"`, `U name unit`, `C`, `N series @ts`
/// (a native histogram).
pub(super) fn render(e: &Entry<'_>) -> String {
    match e {
        Entry::Sample(s) => {
            let mut out = format!("S {} {}", s.series, value(s.value));
            if let Some(ts) = s.timestamp_ms {
                write!(out, " @{ts}").unwrap();
            }
            if let Some(x) = &s.exemplar {
                write!(out, " # {} {}", x.labels, value(x.value)).unwrap();
                if let Some(ts) = x.timestamp_ms {
                    write!(out, " @{ts}").unwrap();
                }
            }
            out
        }
        Entry::Type { name, kind } => format!("T {name} {}", kind.as_str()),
        Entry::Help { name, help } => format!("H {name} {help:?}"),
        Entry::Unit { name, unit } => format!("U {name} {unit}"),
        Entry::Comment => "C".to_owned(),
        Entry::NativeHistogram(s, _) => match s.timestamp_ms {
            Some(ts) => format!("N {} @{ts}", s.series),
            None => format!("N {}", s.series),
        },
    }
}
