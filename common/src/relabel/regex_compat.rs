//! Go (RE2) regex syntax on top of Rust's `regex` crate.
//!
//! The two dialects agree on almost everything; where they differ on input
//! that Prometheus users write, this module rewrites the pattern so it means
//! what Go means:
//!
//! - `\d`, `\w`, `\s` and `\b` are ASCII-only in Go, Unicode-aware in Rust.
//! - a `{` that does not start a repetition (`a{`, `{foo}`) is a literal in
//!   Go and an error in Rust.
//! - inside a class, `[` (other than `[:alpha:]`), `&&`, `--` and `~~` are
//!   literals in Go; Rust reads nested classes and set operations.
//! - `\Q...\E` quotes literal text in Go; Rust has no such syntax.

use regex::Regex;

/// Compiles a Prometheus relabel regex: rewrites Go syntax for Rust and
/// anchors it as `^(?:...)$`. The error is a one-line reason.
pub fn compile_go_regex(pattern: &str) -> Result<Regex, String> {
    let translated = translate(pattern);
    Regex::new(&format!("^(?:{translated})$")).map_err(|e| one_line(&e))
}

fn one_line(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().trim_start_matches("error: ").to_string())
        .unwrap_or(text)
}

const ASCII_DIGIT: &str = "0-9";
const ASCII_WORD: &str = "0-9A-Za-z_";
const ASCII_SPACE: &str = r"\t\n\x0C\r ";

/// Returns the ASCII class body for Go's Perl classes, and whether negated.
fn perl_class(c: char) -> Option<(&'static str, bool)> {
    match c {
        'd' => Some((ASCII_DIGIT, false)),
        'D' => Some((ASCII_DIGIT, true)),
        'w' => Some((ASCII_WORD, false)),
        'W' => Some((ASCII_WORD, true)),
        's' => Some((ASCII_SPACE, false)),
        'S' => Some((ASCII_SPACE, true)),
        _ => None,
    }
}

fn translate(p: &str) -> String {
    let chars: Vec<char> = p.chars().collect();
    let mut out = String::with_capacity(p.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' if i + 1 < chars.len() => {
                let e = chars[i + 1];
                i += 2;
                if e == 'Q' {
                    let start = i;
                    while i < chars.len() && !(chars[i] == '\\' && chars.get(i + 1) == Some(&'E')) {
                        i += 1;
                    }
                    let quoted: String = chars[start..i].iter().collect();
                    out.push_str(&regex::escape(&quoted));
                    if i < chars.len() {
                        i += 2;
                    }
                } else if let Some((body, neg)) = perl_class(e) {
                    out.push_str(if neg { "[^" } else { "[" });
                    out.push_str(body);
                    out.push(']');
                } else if e == 'b' || e == 'B' {
                    out.push_str(if e == 'b' { r"(?-u:\b)" } else { r"(?-u:\B)" });
                } else {
                    out.push('\\');
                    out.push(e);
                }
            }
            '[' => i = translate_class(&chars, i, &mut out),
            '{' => {
                if let Some(len) = repetition_len(&chars[i..]) {
                    out.extend(&chars[i..i + len]);
                    i += len;
                } else {
                    out.push_str(r"\{");
                    i += 1;
                }
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Returns the length of `{n}`, `{n,}` or `{n,m}` at the start of `s`.
fn repetition_len(s: &[char]) -> Option<usize> {
    let mut i = 1;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < s.len() && s[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > start
    };
    if !digits(&mut i) {
        return None;
    }
    if s.get(i) == Some(&',') {
        i += 1;
        digits(&mut i);
    }
    (s.get(i) == Some(&'}')).then_some(i + 1)
}

/// Translates the class starting at `chars[start] == '['`; returns the index
/// after it. An unterminated class is copied as is, so Rust reports it.
fn translate_class(chars: &[char], start: usize, out: &mut String) -> usize {
    let mut i = start + 1;
    let mut body = String::from("[");
    if chars.get(i) == Some(&'^') {
        body.push('^');
        i += 1;
    }
    // A `]` first in the class is a literal.
    if chars.get(i) == Some(&']') {
        body.push_str(r"\]");
        i += 1;
    }
    while i < chars.len() {
        let c = chars[i];
        match c {
            ']' => {
                body.push(']');
                out.push_str(&body);
                return i + 1;
            }
            '\\' if i + 1 < chars.len() => {
                let e = chars[i + 1];
                match perl_class(e) {
                    Some((b, false)) => body.push_str(b),
                    Some((b, true)) => {
                        body.push_str("[^");
                        body.push_str(b);
                        body.push(']');
                    }
                    None => {
                        body.push('\\');
                        body.push(e);
                    }
                }
                i += 2;
            }
            '[' => {
                // `[:alpha:]` is an ASCII class in both dialects.
                let rest: String = chars[i..].iter().take(12).collect();
                let posix = rest.starts_with("[:")
                    && rest[2..].find(":]").is_some_and(|end| {
                        rest[2..2 + end]
                            .chars()
                            .all(|c| c.is_ascii_alphabetic() || c == '^')
                    });
                if posix {
                    let end = rest[2..].find(":]").map_or(0, |e| e + 4);
                    body.push_str(&rest[..end]);
                    i += rest[..end].chars().count();
                } else {
                    body.push_str(r"\[");
                    i += 1;
                }
            }
            '&' | '~' => {
                body.push('\\');
                body.push(c);
                i += 1;
            }
            '-' if chars.get(i + 1) == Some(&'-') => {
                body.push_str(r"-\-");
                i += 2;
            }
            _ => {
                body.push(c);
                i += 1;
            }
        }
    }
    out.push_str(&body);
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_like_go() {
        // (pattern, input, matches)
        let cases: &[(&str, &str, bool)] = &[
            (r"\d+", "123", true),
            (r"\d+", "١٢٣", false),
            (r"\w+", "héllo", false),
            (r"\w+", "hello_1", true),
            (r"[\w.]+", "a.b", true),
            (r"[^\d]+", "abc", true),
            (r"[\D]+", "abc", true),
            (r"\s", "\u{a0}", false),
            (r"a{", "a{", true),
            (r"{foo}", "{foo}", true),
            (r"a{2}", "aa", true),
            (r"a{1,}", "aaa", true),
            (r"a{,2}", "a{,2}", true),
            (r"[[a]+", "[a[", true),
            (r"[a&&b]+", "a&&b", true),
            (r"[!--]+", "!#-", true),
            (r"[[:alpha:]]+", "abc", true),
            (r"[]a]+", "]a", true),
            (r"\Qa.b\E", "a.b", true),
            (r"\Qa.b\E", "axb", false),
            (r".*\bfoo", "é foo", true),
            (r"(?i)FOO", "foo", true),
            (r"(?P<n>a)b", "ab", true),
        ];
        for (pattern, input, want) in cases {
            let re = compile_go_regex(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
            assert_eq!(re.is_match(input), *want, "{pattern} on {input:?}");
        }
    }

    #[test]
    fn reports_invalid_patterns_on_one_line() {
        for p in ["(", "[a", "(?z)"] {
            let err = compile_go_regex(p).unwrap_err();
            assert!(!err.contains('\n') && !err.is_empty(), "{p}: {err}");
        }
    }
}
