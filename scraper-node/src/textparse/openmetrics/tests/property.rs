//! Property tests over seeded pseudo-random bodies:
//! 1. bodies rendered from a model parse back to exactly the model;
//! 2. byte mutations of valid bodies never panic, and the parser reports an
//!    error in range or returns entries, then stays done;
//! 3. any body the parser accepts, re-rendered, parses to the same entries.

use std::fmt::Write as _;

use scrapegrid_common::Labels;

use super::super::super::{Entry, Format, MetricType, Parser, NORMAL_NAN_BITS};
use super::super::seconds_to_millis;
use super::parse;
use scrapegrid_common::xorshift::XorShift as Rng;

const KINDS: [MetricType; 8] = [
    MetricType::Counter,
    MetricType::Gauge,
    MetricType::Histogram,
    MetricType::GaugeHistogram,
    MetricType::Summary,
    MetricType::Info,
    MetricType::StateSet,
    MetricType::Unknown,
];

/// Characters of series label values and HELP texts: escapes, NUL, blanks,
/// punctuation of the syntax, multi-byte UTF-8.
const TEXT_CHARS: &[char] = &[
    'a', 'Z', '0', ' ', '\t', '\r', '"', '\\', '\n', '\0', '{', '}', ',', '=', '#', 'ü', '☃', '😀',
];

/// Characters of exemplar label values, which 2.42 does not unescape and where
/// the lexer does not skip NULs.
const EXEMPLAR_CHARS: &[char] = &['a', 'Z', '9', ' ', '\t', '{', '}', ',', '=', '#', 'é', '☃'];

/// One line of the model, with what the parser must return for it.
struct Line {
    text: String,
    want: String,
}

fn name(rng: &mut Rng, first: &[u8], rest: &[u8]) -> String {
    let mut s = String::from(char::from(rng.choose(first)));
    for _ in 0..rng.index(10) {
        s.push(char::from(rng.choose(rest)));
    }
    s
}

const ALPHA: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_";
const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789";
const ALPHA_COLON: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_:";
const ALNUM_COLON: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_:0123456789";

fn metric_name(rng: &mut Rng) -> String {
    name(rng, ALPHA_COLON, ALNUM_COLON)
}

fn text(rng: &mut Rng, chars: &[char], max: usize) -> String {
    (0..rng.index(max + 1)).map(|_| rng.choose(chars)).collect()
}

/// Escapes a label value as OpenMetrics writes it.
fn escape_label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Escapes HELP text; a quote is written raw or escaped at random.
fn escape_help(rng: &mut Rng, v: &str) -> String {
    let mut out = String::new();
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if rng.one_in(2) => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

/// Returns a value and one of its spellings.
fn value(rng: &mut Rng) -> (f64, String) {
    let v = match rng.index(6) {
        0 => f64::from_bits(rng.next_u64()),
        1 => rng.index(1000) as f64,
        2 => f64::INFINITY,
        3 => f64::NEG_INFINITY,
        4 => f64::NAN,
        _ => (rng.next_u64() as i64 as f64) / 1e6,
    };
    let spelling = if v.is_nan() {
        rng.choose(&["NaN", "nan", "NAN"]).to_owned()
    } else if v == f64::INFINITY {
        rng.choose(&["+Inf", "Inf", "inf", "Infinity", "+INFINITY"])
            .to_owned()
    } else if v == f64::NEG_INFINITY {
        rng.choose(&["-Inf", "-inf", "-Infinity"]).to_owned()
    } else if rng.one_in(2) {
        format!("{v:e}")
    } else {
        format!("{v:?}")
    };
    (v, spelling)
}

/// Returns milliseconds that seconds spell exactly (multiples of 1/8 s), and
/// a spelling in seconds.
fn timestamp(rng: &mut Rng) -> (i64, String) {
    let seconds = match rng.index(3) {
        0 => rng.index(2_000_000_000) as i64,
        1 => (rng.next_u64() >> 24) as i64,
        _ => rng.index(100) as i64,
    };
    let abs = seconds * 1000 + 125 * rng.index(8) as i64;
    let negative = rng.one_in(4);
    let ms = if negative { -abs } else { abs };
    let sign = if negative { "-" } else { "" };
    let spelling = match rng.index(3) {
        0 => format!("{sign}{abs}e-3"),
        1 => format!("{sign}{}.{:03}", abs / 1000, abs % 1000),
        _ if abs % 1000 == 0 => format!("{sign}{}", abs / 1000),
        _ => format!("{sign}{}", abs as f64 / 1000.0),
    };
    (ms, spelling)
}

fn bits(v: f64) -> u64 {
    if v.is_nan() {
        NORMAL_NAN_BITS
    } else {
        v.to_bits()
    }
}

/// Describes an entry with everything that must survive a round trip.
fn describe(e: &Entry<'_>) -> String {
    match e {
        Entry::Sample(s) => {
            let mut out = format!(
                "S {} {} {:#x} {:?}",
                s.series,
                s.labels(),
                s.value.to_bits(),
                s.timestamp_ms
            );
            if let Some(ex) = &s.exemplar {
                let v = ex.value.to_bits();
                write!(out, " # {} {v:#x} {:?}", ex.labels, ex.timestamp_ms).unwrap();
            }
            out
        }
        Entry::Type { name, kind } => format!("T {name} {}", kind.as_str()),
        Entry::Help { name, help } => format!("H {name} {help:?}"),
        Entry::Unit { name, unit } => format!("U {name} {unit}"),
        Entry::Comment => "C".to_owned(),
        Entry::NativeHistogram(..) => unreachable!("protobuf only"),
    }
}

fn sample_line(rng: &mut Rng) -> Line {
    let mut metric = metric_name(rng);
    let exemplar = rng.one_in(2);
    if exemplar {
        metric.push_str(rng.choose(&["_total", "_bucket"]));
    }
    let mut label_names: Vec<String> = Vec::new();
    for _ in 0..rng.index(5) {
        let n = name(rng, ALPHA, ALNUM);
        if n != "__name__" && !label_names.contains(&n) {
            label_names.push(n);
        }
    }
    let pairs: Vec<(String, String)> = label_names
        .into_iter()
        .map(|n| (n, text(rng, TEXT_CHARS, 6)))
        .collect();
    let mut series = metric.clone();
    if !pairs.is_empty() || rng.one_in(4) {
        let block: Vec<String> = pairs
            .iter()
            .map(|(n, v)| format!("{n}=\"{}\"", escape_label_value(v)))
            .collect();
        write!(series, "{{{}}}", block.join(",")).unwrap();
    }
    let labels = Labels::from_pairs(
        std::iter::once(("__name__".to_owned(), metric))
            .chain(pairs.iter().map(|(n, v)| (n.clone(), v.clone()))),
    );
    let (v, v_text) = value(rng);
    let mut line = format!("{series} {v_text}");
    let mut ts = None;
    if rng.one_in(2) {
        let (ms, ts_text) = timestamp(rng);
        write!(line, " {ts_text}").unwrap();
        ts = Some(ms);
    }
    let mut want = format!("S {series} {labels} {:#x} {ts:?}", bits(v));
    if exemplar && rng.index(3) > 0 {
        let mut pairs = Vec::new();
        for _ in 0..rng.index(4) {
            pairs.push((name(rng, ALPHA, ALNUM), text(rng, EXEMPLAR_CHARS, 5)));
        }
        let block: Vec<String> = pairs.iter().map(|(n, v)| format!("{n}=\"{v}\"")).collect();
        let (ev, ev_text) = value(rng);
        write!(line, " # {{{}}} {ev_text}", block.join(",")).unwrap();
        let mut ets = None;
        if rng.one_in(2) {
            let (ms, ts_text) = timestamp(rng);
            write!(line, " {ts_text}").unwrap();
            ets = Some(ms);
        }
        let ex_labels = Labels::from_pairs(pairs);
        write!(want, " # {ex_labels} {:#x} {ets:?}", bits(ev)).unwrap();
    }
    Line { text: line, want }
}

fn metadata_line(rng: &mut Rng) -> Line {
    let metric = metric_name(rng);
    match rng.index(3) {
        0 => {
            let help = text(rng, TEXT_CHARS, 12);
            Line {
                text: format!("# HELP {metric} {}", escape_help(rng, &help)),
                want: format!("H {metric} {help:?}"),
            }
        }
        1 => {
            let kind = rng.choose(&KINDS);
            Line {
                text: format!("# TYPE {metric} {}", kind.as_str()),
                want: format!("T {metric} {}", kind.as_str()),
            }
        }
        _ => {
            let unit = if rng.one_in(4) {
                String::new()
            } else {
                name(
                    rng,
                    b"abcdefghijklmnopqrstuvwxyz",
                    b"abcdefghijklmnopqrstuvwxyz_",
                )
            };
            let metric = if unit.is_empty() {
                metric
            } else {
                format!("{metric}_{unit}")
            };
            Line {
                text: format!("# UNIT {metric} {unit}"),
                want: format!("U {metric} {unit}"),
            }
        }
    }
}

/// Returns a valid body and the descriptions of its entries.
fn model_body(rng: &mut Rng) -> (Vec<u8>, Vec<String>) {
    let mut body = String::new();
    let mut want = Vec::new();
    for _ in 0..rng.index(25) {
        let line = if rng.one_in(3) {
            metadata_line(rng)
        } else {
            sample_line(rng)
        };
        body.push_str(&line.text);
        body.push('\n');
        want.push(line.want);
    }
    body.push_str("# EOF");
    if rng.one_in(2) {
        body.push('\n');
    }
    (body.into_bytes(), want)
}

#[test]
fn bodies_from_a_model_parse_back_to_the_model() {
    let mut rng = Rng::new(0x0e11_5eed);
    for round in 0..1500 {
        let (body, want) = model_body(&mut rng);
        let (entries, err) = parse(&body);
        let context = || format!("round {round}: {:?}", String::from_utf8_lossy(&body));
        assert_eq!(err, None, "{}", context());
        let got: Vec<String> = entries.iter().map(describe).collect();
        assert_eq!(got, want, "{}", context());
    }
}

/// Applies 1 to 4 random edits that favour the bytes of the syntax.
fn mutate(rng: &mut Rng, body: &mut Vec<u8>) {
    const BYTES: &[u8] = b"\0\n\r\t \"\\{}=,#_.-+eE1aZ\xff\xc3\x80";
    for _ in 0..1 + rng.index(4) {
        if body.is_empty() {
            body.push(rng.choose(BYTES));
            continue;
        }
        let at = rng.index(body.len());
        let byte = if rng.one_in(8) {
            rng.next_u64() as u8
        } else {
            rng.choose(BYTES)
        };
        match rng.index(5) {
            0 => body[at] = byte,
            1 => body.insert(at, byte),
            2 => {
                body.remove(at);
            }
            3 => body.truncate(at),
            _ => {
                let end = (at + 1 + rng.index(16)).min(body.len());
                let piece = body[at..end].to_vec();
                body.splice(at..at, piece);
            }
        }
    }
}

/// Parses a body to the end, checking the invariants that hold for any
/// input; returns the entries if it was accepted.
fn parse_checked(body: &[u8]) -> Option<Vec<String>> {
    let mut parser = Parser::new(Format::OpenMetrics, body);
    let mut entries = Vec::new();
    let accepted = loop {
        match parser.next_entry() {
            Ok(Some(e)) => {
                if let Entry::Sample(s) = &e {
                    let labels = s.labels();
                    let metric = labels.get("__name__").expect("metric name");
                    assert!(s.series.starts_with(metric), "{s:?}");
                }
                entries.push(describe(&e));
            }
            Ok(None) => break true,
            Err(err) => {
                let lines = body.iter().filter(|&&b| b == b'\n').count() + 1;
                assert!(
                    err.line >= 1 && err.line <= lines && err.column >= 1,
                    "{err:?}"
                );
                assert!(!err.message.is_empty());
                break false;
            }
        }
    };
    assert_eq!(parser.next_entry(), Ok(None), "parser not done");
    accepted.then_some(entries)
}

/// Renders entries as an OpenMetrics body.
fn render_body(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut out = String::new();
    for e in entries {
        match e {
            Entry::Sample(s) => {
                write!(out, "{} {:?}", s.series, s.value).unwrap();
                if let Some(ms) = s.timestamp_ms {
                    write!(out, " {}", seconds_spelling(ms)).unwrap();
                }
                if let Some(ex) = &s.exemplar {
                    let block: Vec<String> = ex
                        .labels
                        .iter()
                        .map(|l| format!("{}=\"{}\"", l.name, l.value))
                        .collect();
                    write!(out, " # {{{}}} {:?}", block.join(","), ex.value).unwrap();
                    if let Some(ms) = ex.timestamp_ms {
                        write!(out, " {}", seconds_spelling(ms)).unwrap();
                    }
                }
            }
            Entry::Type { name, kind } => write!(out, "# TYPE {name} {}", kind.as_str()).unwrap(),
            Entry::Help { name, help } => {
                let help = help.replace('\\', "\\\\").replace('\n', "\\n");
                write!(out, "# HELP {name} {help}").unwrap();
            }
            Entry::Unit { name, unit } => write!(out, "# UNIT {name} {unit}").unwrap(),
            Entry::Comment => panic!("OpenMetrics has no plain comments"),
            Entry::NativeHistogram(..) => panic!("protobuf only"),
        }
        out.push('\n');
    }
    out.push_str("# EOF\n");
    out.into_bytes()
}

/// Returns seconds that parse back to `ms`: the float nearest `ms / 1000`, or
/// a neighbour when the truncating conversion lands one below.
fn seconds_spelling(ms: i64) -> String {
    if ms == i64::MIN {
        return "1e300".to_owned();
    }
    let nearest = ms as f64 / 1000.0;
    let mut candidates = vec![nearest];
    let (mut up, mut down) = (nearest, nearest);
    for _ in 0..64 {
        up = step(up, 1);
        down = step(down, -1);
        candidates.extend([up, down]);
    }
    let seconds = candidates
        .into_iter()
        .find(|&s| seconds_to_millis(s) == ms)
        .unwrap_or_else(|| panic!("no seconds for {ms} ms"));
    format!("{seconds:?}")
}

/// Returns the adjacent float in direction `dir` (finite, non-zero input
/// or zero).
fn step(x: f64, dir: i64) -> f64 {
    if x == 0.0 {
        return f64::from_bits(1) * dir as f64;
    }
    let toward_larger_magnitude = (x > 0.0) == (dir > 0);
    let b = x.to_bits();
    f64::from_bits(if toward_larger_magnitude {
        b + 1
    } else {
        b - 1
    })
}

/// Checks that `body`, if accepted, re-renders to a body with the same
/// entries; returns whether it was accepted.
fn check_rerender(body: &[u8]) -> bool {
    let Some(want) = parse_checked(body) else {
        return false;
    };
    let (entries, err) = parse(body);
    assert_eq!(err, None);
    let rendered = render_body(&entries);
    let again = parse_checked(&rendered).unwrap_or_else(|| {
        let (_, err) = parse(&rendered);
        panic!(
            "re-rendered body rejected: {err:?}\noriginal: {:?}\nrendered: {:?}",
            String::from_utf8_lossy(body),
            String::from_utf8_lossy(&rendered)
        )
    });
    assert_eq!(again, want, "{:?}", String::from_utf8_lossy(body));
    true
}

#[test]
fn mutated_bodies_never_panic_and_accepted_ones_rerender() {
    let mut rng = Rng::new(0xbad_b0d1);
    let (mut accepted, mut rejected) = (0, 0);
    for _ in 0..6000 {
        let (mut body, _) = model_body(&mut rng);
        mutate(&mut rng, &mut body);
        if check_rerender(&body) {
            accepted += 1;
        } else {
            rejected += 1;
        }
    }
    // Both outcomes must be exercised for the property to mean something.
    assert!(
        accepted > 100 && rejected > 100,
        "{accepted} accepted, {rejected} rejected"
    );
}

#[test]
fn model_bodies_rerender_to_the_same_entries() {
    let mut rng = Rng::new(0x4e4e_4e4e);
    for _ in 0..1000 {
        let (body, _) = model_body(&mut rng);
        assert!(check_rerender(&body));
    }
}

#[test]
fn tricky_accepted_bodies_rerender() {
    for body in [
        &b"# HELP a x\n\0\0# EOF"[..],
        b"a_total 1 # {t=\"x\\\"y\"} 2 1e300\n# EOF",
        b"a 1 9223372036854775.807\nb 2 -0.0005\nc 3 1520879607.789\n# EOF",
        b"a{b=\"\0\\\\\0\"} -0\n# EOF",
    ] {
        assert!(check_rerender(body), "{:?}", String::from_utf8_lossy(body));
    }
}
