//! Go's `filepath.Glob` and `filepath.Match`, which Prometheus uses to expand
//! `scrape_config_files` and `file_sd_configs` files: `*` (any run of characters but `/`), `?`, classes
//! such as `[a-z]` and `[^0-9]`, and `\` to escape. Dot files are matched
//! like any other; I/O errors and missing directories match nothing.

use std::path::{Path, PathBuf};

/// The one error Go's glob reports.
pub const BAD_PATTERN: &str = "syntax error in pattern";

/// Returns the paths matching `pattern`, each directory's entries in byte
/// order, or [`BAD_PATTERN`].
pub fn glob(pattern: &str) -> Result<Vec<PathBuf>, &'static str> {
    check(pattern)?;
    if !has_meta(pattern) {
        return Ok(match std::fs::symlink_metadata(pattern) {
            Ok(_) => vec![PathBuf::from(pattern)],
            Err(_) => Vec::new(),
        });
    }
    let (dir, file) = match pattern.rfind('/') {
        Some(i) => (&pattern[..=i], &pattern[i + 1..]),
        None => ("", pattern),
    };
    let dir = match dir {
        "" => ".",
        "/" => "/",
        d => d.trim_end_matches('/'),
    };
    if !has_meta(dir) {
        return Ok(matches_in(Path::new(dir), file));
    }
    if dir == pattern {
        return Err(BAD_PATTERN);
    }
    Ok(glob(dir)?
        .iter()
        .flat_map(|d| matches_in(d, file))
        .collect())
}

/// Returns the entries of `dir` whose names match `pattern` (already checked).
fn matches_in(dir: &Path, pattern: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
        .into_iter()
        .filter(|n| matches(pattern, n))
        .map(|n| {
            if dir == Path::new(".") {
                PathBuf::from(n)
            } else {
                dir.join(n)
            }
        })
        .collect()
}

fn has_meta(s: &str) -> bool {
    s.contains(['*', '?', '[', '\\'])
}

/// Fails on what Go's `Match` calls a syntax error: an unclosed or empty
/// class, a class range missing an end, a trailing `\`.
fn check(pattern: &str) -> Result<(), &'static str> {
    let p: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => {
                if i + 1 >= p.len() {
                    return Err(BAD_PATTERN);
                }
                i += 2;
            }
            '[' => i = class(&p, i + 1, None).ok_or(BAD_PATTERN)?.1,
            _ => i += 1,
        }
    }
    Ok(())
}

/// Reads the class starting after `[` at `i`; returns whether `c` is in it
/// (false when `c` is `None`) and the index after `]`, or `None` if the class
/// is malformed.
fn class(p: &[char], mut i: usize, c: Option<char>) -> Option<(bool, usize)> {
    let negated = p.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut found = false;
    let mut ranges = 0;
    loop {
        if p.get(i) == Some(&']') && ranges > 0 {
            i += 1;
            break;
        }
        let (lo, next) = class_char(p, i)?;
        i = next;
        let mut hi = lo;
        if p.get(i) == Some(&'-') {
            (hi, i) = class_char(p, i + 1)?;
        }
        if c.is_some_and(|c| lo <= c && c <= hi) {
            found = true;
        }
        ranges += 1;
    }
    Some((c.is_some() && found != negated, i))
}

/// Go's `getEsc`: one possibly escaped class character, which must be followed by more pattern.
fn class_char(p: &[char], mut i: usize) -> Option<(char, usize)> {
    match p.get(i)? {
        '-' | ']' => return None,
        '\\' => i += 1,
        _ => {}
    }
    let c = *p.get(i)?;
    (i + 1 < p.len()).then_some((c, i + 1))
}

/// Go's `filepath.Match` for a checked pattern and one path element.
pub(super) fn matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    match_from(&p, &n)
}

fn match_from(p: &[char], n: &[char]) -> bool {
    let Some((&first, rest)) = p.split_first() else {
        return n.is_empty();
    };
    match first {
        '*' => (0..=n.len())
            .take_while(|&k| k == 0 || n[k - 1] != '/')
            .any(|k| match_from(rest, &n[k..])),
        '?' => n.first().is_some_and(|&c| c != '/') && match_from(rest, &n[1..]),
        '[' => match n.first() {
            Some(&c) => match class(p, 1, Some(c)) {
                Some((true, end)) => match_from(&p[end..], &n[1..]),
                _ => false,
            },
            None => false,
        },
        '\\' => n.first() == rest.first() && !n.is_empty() && match_from(&rest[1..], &n[1..]),
        c => n.first() == Some(&c) && match_from(rest, &n[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_like_go_filepath_match() {
        // (pattern, name, match) from Go's filepath match_test.go.
        for (p, n, want) in [
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ab/c", false),
            ("a*/b", "abc/b", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("[a-ζ]*", "α", true),
            ("*[a-ζ]", "A", false),
            ("a?b", "a/b", false),
            ("a*b", "a/b", false),
            ("[\\]a]", "]", true),
            ("[\\-]", "-", true),
            ("[x\\-]", "x", true),
            ("[x\\-]", "-", true),
            ("[x\\-]", "z", false),
            ("[\\-x]", "x", true),
            ("*x", "xxx", true),
            (".*", "..json", true),
        ] {
            assert_eq!(check(p), Ok(()), "{p}");
            assert_eq!(matches(p, n), want, "{p} {n}");
        }
        for bad in [
            "[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a[", "[\\", "*x\\",
        ] {
            assert_eq!(check(bad), Err(BAD_PATTERN), "{bad}");
        }
    }
}
