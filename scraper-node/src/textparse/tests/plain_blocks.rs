//! The one-pass read of plain label blocks
//! ([`super::super::text::lexer::Lexer::plain_label_block`]) changes no
//! outcome: seeded pseudo-random bodies, built from the syntax's pieces and
//! the bytes that matter to it (blanks, escapes, quotes, NUL, newlines,
//! multi-byte UTF-8), give the same entries and the same error, at the same
//! place, with it as token by token.

use scrapegrid_common::xorshift::XorShift as Rng;

use super::super::text::TextParser;
use super::super::{Entry, ParseError};

/// Pieces a line is assembled from: mostly well-formed label blocks, with
/// every near miss the one-pass read must hand back.
const PIECES: &[&str] = &[
    "a",
    "le",
    "__name__",
    "_x9",
    "9",
    "=",
    "\"",
    "\"v\"",
    "\"\"",
    "\"a\\\"b\"",
    "\"a\\\\\"",
    "\"a\\nb\"",
    "\"ü\"",
    "\"\0\"",
    "\"x\ny\"",
    ",",
    ",}",
    "}",
    "{",
    " ",
    "\t",
    "\0",
    "\n",
    "\"}\"",
    "\"{,=\"",
    "#",
];

fn block(rng: &mut Rng) -> String {
    let mut b = String::from("{");
    for i in 0..rng.index(5) {
        if rng.one_in(6) {
            // A near miss: any piece at all.
            b.push_str(rng.choose(PIECES));
            continue;
        }
        if i > 0 {
            b.push(',');
        }
        b.push_str(rng.choose(&["a", "le", "job", "_x9", "instance"]));
        b.push('=');
        b.push_str(rng.choose(&["\"v\"", "\"\"", "\"/api/v1\"", "\"0.5\"", "\"a b\""]));
    }
    if rng.one_in(4) {
        b.push(',');
    }
    if !rng.one_in(12) {
        b.push('}');
    }
    b
}

fn body(rng: &mut Rng) -> String {
    let mut b = String::new();
    for _ in 0..1 + rng.index(6) {
        b.push_str(rng.choose(&["m", "http_requests_total", "a:b", "x_bucket"]));
        if !rng.one_in(8) {
            b.push_str(&block(rng));
        }
        for _ in 0..rng.index(3) {
            if rng.one_in(3) {
                b.push_str(rng.choose(PIECES));
            }
        }
        b.push_str(rng.choose(&[" 1", " 1.5 1000", "\t-Inf", " NaN", " 2 ", " x", ""]));
        if !rng.one_in(10) {
            b.push('\n');
        }
    }
    b
}

fn entries(mut p: TextParser<'_>) -> Vec<Result<Entry<'_>, ParseError>> {
    let mut out = Vec::new();
    loop {
        match p.entry() {
            Ok(Some(e)) => out.push(Ok(e)),
            Ok(None) => return out,
            Err(e) => {
                out.push(Err(e));
                return out;
            }
        }
    }
}

#[test]
fn plain_blocks_in_one_pass_change_no_outcome() {
    let mut rng = Rng::new(0x5eed_b10c);
    let (mut plain, mut errors) = (0, 0);
    for _ in 0..20_000 {
        let b = body(&mut rng);
        let fast = entries(TextParser::new(b.as_bytes()));
        let slow = entries(TextParser::token_by_token(b.as_bytes()));
        // By their Debug text: NaN values are equal there.
        assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "body {b:?}");
        errors += usize::from(fast.last().is_some_and(|e| e.is_err()));
        plain += fast.iter().filter(|e| e.is_ok()).count();
    }
    // Both kinds of outcome were compared, many times each.
    assert!(
        plain > 5_000 && errors > 5_000,
        "{plain} entries, {errors} errors"
    );
}

#[test]
fn the_one_pass_read_takes_plain_blocks_and_hands_back_the_rest() {
    use super::super::text::lexer::Lexer;
    let cases: &[(&str, Option<usize>)] = &[
        ("{}", Some(2)),
        ("{a=\"b\"}", Some(7)),
        ("{a=\"b\",}", Some(8)),
        ("{a=\"b\",c=\"\"} 1", Some(12)),
        ("{a=\"x\ny\0{\"}", Some(11)),
        ("{,}", None),
        ("{a=\"b\" }", None),
        ("{a = \"b\"}", None),
        ("{a=\"b\"c=\"d\"}", None),
        ("{a=\"\\\\\"}", None),
        ("{a=\"ü\"}", None),
        ("{a=\"b\"\0}", None),
        ("{a=\"b", None),
        ("{a=\"b\"", None),
        ("{9=\"b\"}", None),
    ];
    for &(block, want) in cases {
        // As after a metric name: the cursor on the `{` in state Value.
        let line = format!("m{block}");
        let mut lex = Lexer::new(line.as_bytes());
        lex.lex();
        assert_eq!(lex.pos, 1);
        let taken = lex.plain_label_block();
        assert_eq!(taken.then_some(lex.pos - 1), want, "{block:?}");
        if !taken {
            assert_eq!(lex.pos, 1, "{block:?}: the cursor moved");
        }
    }
}
