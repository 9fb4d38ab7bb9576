//! The `labelSelector` and `fieldSelector` of a list or watch, parsed
//! as the Kubernetes API server parses them and matched against objects.
//! A parse error is the message of the 400 answer.

use serde_json::Value;

use super::Kind;

/// One requirement of a `labelSelector`.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum LabelRequirement {
    Exists(String),
    NotExists(String),
    Equals(String, String),
    /// Also holds when the label is absent.
    NotEquals(String, String),
    In(String, Vec<String>),
    /// Also holds when the label is absent.
    NotIn(String, Vec<String>),
}

impl LabelRequirement {
    pub(super) fn matches(&self, labels: &Value) -> bool {
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        match self {
            Self::Exists(k) => get(k).is_some(),
            Self::NotExists(k) => get(k).is_none(),
            Self::Equals(k, v) => get(k) == Some(v.as_str()),
            Self::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Self::In(k, vs) => get(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Self::NotIn(k, vs) => !get(k).is_some_and(|l| vs.iter().any(|v| v == l)),
        }
    }
}

/// Parses a `labelSelector`; the error is the API server's message.
pub(super) fn parse_label_selector(s: &str) -> Result<Vec<LabelRequirement>, String> {
    if s.trim().is_empty() {
        return Ok(Vec::new());
    }
    // Split on the commas outside a set's parentheses.
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&s[start..]);
    terms.into_iter().map(parse_label_term).collect()
}

fn parse_label_term(term: &str) -> Result<LabelRequirement, String> {
    let term = term.trim();
    let key = |k: &str| -> Result<String, String> {
        let k = k.trim();
        if k.is_empty() || k.contains(char::is_whitespace) || k.contains(['!', '=', '(', ')']) {
            return Err(format!("invalid label key {k:?} in selector term {term:?}"));
        }
        Ok(k.to_string())
    };
    if let Some(open) = term.find('(') {
        let Some(inner) = term[open + 1..].strip_suffix(')') else {
            return Err(format!("unclosed set in selector term {term:?}"));
        };
        let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
        if values.iter().all(String::is_empty) {
            return Err(format!("empty set in selector term {term:?}"));
        }
        let head: Vec<&str> = term[..open].split_whitespace().collect();
        return match head.as_slice() {
            [k, "in"] => Ok(LabelRequirement::In(key(k)?, values)),
            [k, "notin"] => Ok(LabelRequirement::NotIn(key(k)?, values)),
            _ => Err(format!("unknown set operator in selector term {term:?}")),
        };
    }
    if let Some(k) = term.strip_prefix('!') {
        return Ok(LabelRequirement::NotExists(key(k)?));
    }
    for (op, not) in [("!=", true), ("==", false), ("=", false)] {
        if let Some((k, v)) = term.split_once(op) {
            let (k, v) = (key(k)?, v.trim().to_string());
            return Ok(if not {
                LabelRequirement::NotEquals(k, v)
            } else {
                LabelRequirement::Equals(k, v)
            });
        }
    }
    if term.contains(['<', '>']) {
        return Err(format!("unsupported operator in selector term {term:?}"));
    }
    Ok(LabelRequirement::Exists(key(term)?))
}

/// One requirement of a `fieldSelector`.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct FieldRequirement {
    /// A dotted JSON path, e.g. `spec.nodeName`.
    field: String,
    value: String,
    equal: bool,
}

impl FieldRequirement {
    pub(super) fn matches(&self, object: &Value) -> bool {
        let actual = self
            .field
            .split('.')
            .fold(object, |v, part| &v[part])
            .as_str()
            .unwrap_or_default();
        (actual == self.value) == self.equal
    }
}

/// Parses a `fieldSelector` for `kind`, supporting the fields the real API
/// server supports for the kinds served here (and that discovery uses).
pub(super) fn parse_field_selector(kind: Kind, s: &str) -> Result<Vec<FieldRequirement>, String> {
    let mut out = Vec::new();
    for term in split_unescaped(s, ',') {
        let term = term.trim();
        if term.is_empty() {
            continue;
        }
        let (field, value, equal) = if let Some((f, v)) = term.split_once("!=") {
            (f, v, false)
        } else if let Some((f, v)) = term.split_once("==") {
            (f, v, true)
        } else if let Some((f, v)) = term.split_once('=') {
            (f, v, true)
        } else {
            return Err(format!("invalid field selector term {term:?}: no operator"));
        };
        let field = field.trim();
        let supported = matches!(field, "metadata.name" | "metadata.namespace")
            || (kind == Kind::Pod && matches!(field, "spec.nodeName" | "status.phase"));
        if !supported {
            return Err(format!(
                "field label not supported: {field} (for {})",
                kind.resource()
            ));
        }
        out.push(FieldRequirement {
            field: field.to_string(),
            value: unescape(value),
            equal,
        });
    }
    Ok(out)
}

/// Splits `s` on `sep` not preceded by a backslash.
fn split_unescaped(s: &str, sep: char) -> Vec<&str> {
    let (mut parts, mut start, mut escaped) = (Vec::new(), 0, false);
    for (i, c) in s.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            c if c == sep && !escaped => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => escaped = false,
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Undoes a field selector value's `\,`, `\=` and `\\` escapes.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn label_selectors_parse_and_match() {
        let web = json!({"app": "web", "tier": "", "zone": "a"});
        let none = json!({});
        // (selector, matches `web`, matches an object without labels)
        let cases = [
            ("", true, true),
            ("app=web", true, false),
            ("app==web", true, false),
            ("app = web", true, false),
            ("app!=web", false, true),
            ("app!=db", true, true),
            ("app", true, false),
            ("!app", false, true),
            ("tier=", true, false),
            ("tier", true, false),
            ("app in (web,db)", true, false),
            ("app in (db)", false, false),
            ("app notin (db)", true, true),
            ("app notin ( web )", false, true),
            ("app=web,zone in (a,b),!missing", true, false),
            ("app=web,zone=b", false, false),
        ];
        for (selector, on_web, on_none) in cases {
            let reqs = parse_label_selector(selector).unwrap_or_else(|e| panic!("{selector}: {e}"));
            assert_eq!(
                reqs.iter().all(|r| r.matches(&web)),
                on_web,
                "{selector} on web"
            );
            assert_eq!(
                reqs.iter().all(|r| r.matches(&none)),
                on_none,
                "{selector} on none"
            );
        }
        for bad in [
            "app in ()",
            "app in (a",
            "a b",
            "app<3",
            "=web",
            "app has (x)",
        ] {
            assert!(
                parse_label_selector(bad).is_err(),
                "{bad} should be rejected"
            );
        }
    }

    #[test]
    fn field_selectors_parse_and_match() {
        let pod = json!({
            "metadata": {"name": "web-1", "namespace": "a"},
            "spec": {"nodeName": "node-1"},
        });
        let cases = [
            ("spec.nodeName=node-1", true),
            ("spec.nodeName==node-1", true),
            ("spec.nodeName!=node-1", false),
            ("metadata.name=web-1,metadata.namespace=a", true),
            ("metadata.namespace=b", false),
            ("status.phase!=Running", true),
        ];
        for (selector, want) in cases {
            let reqs = parse_field_selector(Kind::Pod, selector).unwrap();
            assert_eq!(reqs.iter().all(|r| r.matches(&pod)), want, "{selector}");
        }
        assert!(parse_field_selector(Kind::Service, "spec.nodeName=node-1").is_err());
        assert!(parse_field_selector(Kind::Pod, "spec.hostname=x").is_err());
        assert!(parse_field_selector(Kind::Pod, "spec.nodeName").is_err());
        let escaped =
            parse_field_selector(Kind::Pod, r"metadata.name=a\,b,metadata.namespace=c").unwrap();
        assert_eq!(escaped[0].value, "a,b");
        assert_eq!(escaped[1].value, "c");
    }
}
