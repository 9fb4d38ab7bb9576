//! URLs written as Go's `net/url` writes them: the scrape URL Prometheus
//! builds from a target's labels is a `url.URL{Scheme, Host, Path,
//! RawQuery}` turned into a string by `URL.String()`, with the query from
//! `url.Values.Encode()`. Matching its escaping byte for byte keeps the
//! `scrapeUrl` of `/api/v1/targets`, the target's identity, its error
//! messages and the request on the wire as Prometheus has them, whatever
//! characters relabeling put in `__address__`, `__metrics_path__` or
//! `__param_<name>`.

use std::collections::BTreeMap;

/// The parts of a URL that Go escapes differently (`net/url`'s
/// `encoding`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Path,
    Host,
    QueryComponent,
}

/// Go's `shouldEscape`, for the modes used here.
fn should_escape(c: u8, mode: Mode) -> bool {
    if c.is_ascii_alphanumeric() {
        return false;
    }
    if mode == Mode::Host
        && matches!(
            c,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'['
                | b']'
                | b'<'
                | b'>'
                | b'"'
        )
    {
        return false;
    }
    match c {
        b'-' | b'_' | b'.' | b'~' => false,
        b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?' | b'@' => match mode {
            // Go's path escaping leaves the reserved characters but `?`.
            Mode::Path => c == b'?',
            Mode::Host | Mode::QueryComponent => true,
        },
        _ => true,
    }
}

/// Go's `escape`.
fn escape(s: &str, mode: Mode) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if c == b' ' && mode == Mode::QueryComponent {
            out.push('+');
        } else if should_escape(c, mode) {
            out.push('%');
            out.push(char::from(HEX[usize::from(c >> 4)]));
            out.push(char::from(HEX[usize::from(c & 15)]));
        } else {
            out.push(char::from(c));
        }
    }
    out
}

/// Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    escape(s, Mode::QueryComponent)
}

/// Go's `url.Values.Encode`: `name=value` pairs sorted by name, each value
/// of a name in order, joined by `&`.
pub fn encode_values(values: &BTreeMap<String, Vec<String>>) -> String {
    let mut out = String::new();
    for (name, vs) in values {
        let name = query_escape(name);
        for v in vs {
            if !out.is_empty() {
                out.push('&');
            }
            out.push_str(&name);
            out.push('=');
            out.push_str(&query_escape(v));
        }
    }
    out
}

/// Go's `URL.String()` for a URL with only a scheme, host, path and raw
/// query (no user, opaque part, raw path or fragment).
pub fn url_string(scheme: &str, host: &str, path: &str, raw_query: &str) -> String {
    let mut out = String::new();
    if !scheme.is_empty() {
        out.push_str(scheme);
        out.push(':');
    }
    if (!scheme.is_empty() || !host.is_empty()) && (!host.is_empty() || !path.is_empty()) {
        out.push_str("//");
    }
    out.push_str(&escape(host, Mode::Host));
    // `EscapedPath`: "*" is left alone.
    let path = if path == "*" {
        path.to_string()
    } else {
        escape(path, Mode::Path)
    };
    if !path.is_empty() && !path.starts_with('/') && !host.is_empty() {
        out.push('/');
    }
    if out.is_empty() {
        // A first segment with a colon would read as a scheme.
        let segment = path.split('/').next().unwrap_or_default();
        if segment.contains(':') {
            out.push_str("./");
        }
    }
    out.push_str(&path);
    if !raw_query.is_empty() {
        out.push('?');
        out.push_str(raw_query);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cases whose answers Go 1.19's `net/url` gives (Prometheus 2.42's).
    #[test]
    fn writes_urls_as_go_does() {
        let cases = [
            (("http", "h:80", "/metrics", ""), "http://h:80/metrics"),
            (("http", "h:80", "", ""), "http://h:80"),
            (("http", "h:80", "metrics", ""), "http://h:80/metrics"),
            (("", "h:80", "/metrics", ""), "//h:80/metrics"),
            (("http", "", "", ""), "http:"),
            (("http", "", "/p", ""), "http:///p"),
            (("", "", "a:b/c", ""), "./a:b/c"),
            (("http", "h", "*", ""), "http://h/*"),
            (
                ("http", "h:80", "/a b?c#d%e", "x=1"),
                "http://h:80/a%20b%3Fc%23d%25e?x=1",
            ),
            (
                ("http", "h:80", "/$&+,/:;=@-_.~!'()*", ""),
                "http://h:80/$&+,/:;=@-_.~%21%27%28%29%2A",
            ),
            (
                ("http", "h:80", "/é|^`{}", ""),
                "http://h:80/%C3%A9%7C%5E%60%7B%7D",
            ),
            (("http", "[::1]:80", "/", ""), "http://[::1]:80/"),
            (
                ("https", "a b%c!$&'()*+,;=:<>\"é/?#@", "/", ""),
                "https://a%20b%25c!$&'()*+,;=:<>\"%C3%A9%2F%3F%23%40/",
            ),
        ];
        for ((scheme, host, path, query), want) in cases {
            assert_eq!(
                url_string(scheme, host, path, query),
                want,
                "{scheme:?} {host:?} {path:?} {query:?}"
            );
        }
    }

    #[test]
    fn encodes_query_values_as_go_does() {
        let mut v = BTreeMap::new();
        v.insert("b".to_string(), vec!["2 3".to_string(), "é&=+".to_string()]);
        v.insert("a~-._".to_string(), vec!["*!'()/?:@$,;".to_string()]);
        v.insert("empty".to_string(), vec![]);
        v.insert("z".to_string(), vec![String::new()]);
        assert_eq!(
            encode_values(&v),
            "a~-._=%2A%21%27%28%29%2F%3F%3A%40%24%2C%3B&b=2+3&b=%C3%A9%26%3D%2B&z="
        );
    }
}
