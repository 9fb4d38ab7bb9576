//! The media type of a `Content-Type` value as Go 1.19's
//! `mime.ParseMediaType` reads it (Prometheus 2.42 is built with Go 1.19),
//! for [`super::Format::from_content_type`]: 2.42 uses the text parser
//! whenever that function fails, even when the media type itself is fine.
//!
//! The rules (RFC 2045 tokens and quoted strings, as Go implements them):
//! - everything before the first `;` is the media type, lowercased as Go's
//!   `strings.ToLower` does and trimmed of Unicode white space; it is a token,
//!   or two tokens around a `/`;
//! - each parameter is `; name = value`, with optional white space around
//!   every part; `name` is a token, `value` a non-empty token or a quoted
//!   string (which may be empty: `""`) where `\` escapes only a tspecial, and
//!   a CR or LF ends the parse;
//! - a parameter without `=` or without a value, or anything else after the
//!   media type, is an error, except one trailing `;` (white space around
//!   it allowed);
//! - a repeated parameter name (case-insensitive) is an error, even with the
//!   same value (Go 1.20 changed that).
//!
//! A token is one or more ASCII characters above space, below DEL, other
//! than the tspecials `()<>@,;:\"/[]?=`.

/// Returns the media type of `v`, lowercased and trimmed, or None where Go
/// 1.19's `mime.ParseMediaType` returns an error.
pub(super) fn parse_media_type(v: &str) -> Option<String> {
    let (base, mut params) = v.split_at(v.find(';').unwrap_or(v.len()));
    let media_type = go_to_lower(base).trim().to_owned();
    check_media_type(&media_type)?;
    let mut names: Vec<String> = Vec::new();
    loop {
        params = params.trim_start();
        if params.is_empty() {
            break;
        }
        match consume_param(params) {
            Some((name, rest)) => {
                if names.contains(&name) {
                    return None;
                }
                names.push(name);
                params = rest;
            }
            // A trailing `;` ends the parameters.
            None if params.trim() == ";" => break,
            None => return None,
        }
    }
    Some(media_type)
}

/// Checks `type/subtype` or a lone `type` (Go's `checkMediaTypeDisposition`).
fn check_media_type(s: &str) -> Option<()> {
    let (ty, rest) = consume_token(s);
    if ty.is_empty() {
        return None;
    }
    if rest.is_empty() {
        return Some(());
    }
    let (subtype, rest) = consume_token(rest.strip_prefix('/')?);
    (!subtype.is_empty() && rest.is_empty()).then_some(())
}

/// Reads `; name = value` from the start of `v`; returns the lowercased name
/// and the rest, or None where Go's `consumeMediaParam` fails.
fn consume_param(v: &str) -> Option<(String, &str)> {
    let rest = v.trim_start().strip_prefix(';')?.trim_start();
    let (name, rest) = consume_token(rest);
    if name.is_empty() {
        return None;
    }
    let rest = rest.trim_start().strip_prefix('=')?.trim_start();
    let rest = consume_value(rest)?;
    Some((name.to_ascii_lowercase(), rest))
}

/// Reads a non-empty token or a quoted string (maybe empty) from the start
/// of `v`; returns the rest.
fn consume_value(v: &str) -> Option<&str> {
    let b = v.as_bytes();
    if b.first() != Some(&b'"') {
        let (token, rest) = consume_token(v);
        return (!token.is_empty()).then_some(rest);
    }
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'"' => return Some(&v[i + 1..]),
            // Go keeps a backslash before anything but a tspecial (MSIE
            // sends unescaped Windows paths).
            b'\\' if b.get(i + 1).is_some_and(|&c| is_tspecial(c)) => i += 2,
            b'\r' | b'\n' => return None,
            _ => i += 1,
        }
    }
    None
}

/// Splits `v` after its leading token (maybe empty).
fn consume_token(v: &str) -> (&str, &str) {
    let n = v.bytes().position(|c| !is_token_char(c)).unwrap_or(v.len());
    v.split_at(n)
}

fn is_token_char(c: u8) -> bool {
    c > b' ' && c < 0x7f && !is_tspecial(c)
}

fn is_tspecial(c: u8) -> bool {
    b"()<>@,;:\\\"/[]?=".contains(&c)
}

/// Lowercases as Go's `strings.ToLower`: each character's simple lowercase
/// mapping, which differs from Rust's full one only for U+0130 (`İ` is `i`).
fn go_to_lower(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '\u{130}' {
            out.push('i');
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}
