//! Turning what each system stores into comparable values, and diffing them.
//!
//! A range-query series becomes a token sequence: one token per step (the
//! value, canonicalised through f64 so `1e3` and `1000` agree and every NaN
//! reads `NaN`, or `_` for a step without a point), leading `_` trimmed and
//! runs of equal tokens collapsed. Timestamps never enter the comparison, so
//! two systems that scrape at different offsets still agree; a series that
//! ends with a stale marker ends in `_`. `scrape_duration_seconds` is
//! compared by presence only.
//!
//! Targets are compared per scrape URL on the fields that do not depend on
//! timing (labels, discoveredLabels, scrapePool, health, lastError,
//! scrapeUrl, and the presence of lastScrape/lastScrapeDuration); dropped
//! targets by their discoveredLabels.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

/// A label set rendered `name{a="b", ...}`-like, sorted, for keys and diffs.
pub type SeriesKey = String;

/// Series of one system: key -> (labels, tokens).
pub type SeriesTokens = BTreeMap<SeriesKey, (BTreeMap<String, String>, Vec<String>)>;

/// Report series compared by presence only.
const PRESENCE_ONLY: [&str; 1] = ["scrape_duration_seconds"];

/// The absent token.
pub const ABSENT: &str = "_";

/// Renders a label set as a stable key.
pub fn key_of(labels: &BTreeMap<String, String>) -> SeriesKey {
    let name = labels.get("__name__").cloned().unwrap_or_default();
    let rest: Vec<String> = labels
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    format!("{name}{{{}}}", rest.join(", "))
}

/// Reads a JSON object of label names to values (the API's `metric`).
fn label_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Canonicalises one value string from the HTTP API.
pub fn value_token(s: &str) -> String {
    match s.parse::<f64>() {
        Ok(f) if f.is_nan() => "NaN".into(),
        Ok(f) if f == f64::INFINITY => "+Inf".into(),
        Ok(f) if f == f64::NEG_INFINITY => "-Inf".into(),
        Ok(f) => format!("{f}"),
        Err(_) => format!("unparsable:{s}"),
    }
}

/// Returns the token sequence of each series of a range-query matrix over
/// `n` steps starting at `start`.
pub fn matrix_tokens(matrix: &[Value], start: f64, step: f64, n: usize) -> SeriesTokens {
    let mut out = SeriesTokens::new();
    for s in matrix {
        let labels = label_map(&s["metric"]);
        let presence = labels
            .get("__name__")
            .is_some_and(|n| PRESENCE_ONLY.contains(&n.as_str()));
        let mut steps = vec![ABSENT.to_string(); n];
        for p in s["values"].as_array().into_iter().flatten() {
            let t = p[0].as_f64().unwrap_or_default();
            let i = ((t - start) / step).round();
            if i < 0.0 || i as usize >= n {
                continue;
            }
            let v = p[1].as_str().unwrap_or_default();
            steps[i as usize] = if presence {
                "present".into()
            } else {
                value_token(v)
            };
        }
        out.insert(key_of(&labels), (labels, collapse(steps)));
    }
    out
}

/// Trims leading absent tokens and collapses runs of equal tokens.
pub fn collapse(steps: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in steps {
        if out.is_empty() && t == ABSENT {
            continue;
        }
        if out.last() != Some(&t) {
            out.push(t);
        }
    }
    out
}

/// Diffs two systems' series of one case; returns one line per difference.
pub fn diff_series(
    prom: &BTreeMap<&SeriesKey, &Vec<String>>,
    sg: &BTreeMap<&SeriesKey, &Vec<String>>,
) -> Vec<String> {
    let mut out = Vec::new();
    let keys: BTreeSet<&&SeriesKey> = prom.keys().chain(sg.keys()).collect();
    for k in keys {
        match (prom.get(*k), sg.get(*k)) {
            (Some(p), Some(s)) if p == s => {}
            (Some(p), Some(s)) => out.push(format!(
                "series {k}: prometheus [{}] scrapegrid [{}]",
                p.join(" "),
                s.join(" ")
            )),
            (Some(p), None) => {
                out.push(format!("series {k}: only in prometheus [{}]", p.join(" ")))
            }
            (None, Some(s)) => {
                out.push(format!("series {k}: only in scrapegrid [{}]", s.join(" ")))
            }
            (None, None) => {}
        }
    }
    out
}

/// The comparable view of an active target.
pub fn active_view(t: &Value) -> Value {
    let present = |f: &str| t.get(f).is_some_and(|v| !v.is_null());
    json!({
        "labels": t["labels"],
        "discoveredLabels": t["discoveredLabels"],
        "scrapePool": t["scrapePool"],
        "health": t["health"],
        "lastError": normalize_error(t["lastError"].as_str().unwrap_or_default()),
        "scrapeUrl": t["scrapeUrl"],
        "lastScrape present": present("lastScrape"),
        "lastScrapeDuration present": present("lastScrapeDuration"),
    })
}

/// Rewrites the part of an error that Prometheus 2.42 fills from a reused
/// scrape buffer: `strconv.ParseFloat: parsing "<yolo string>": ...` (and
/// `ParseInt` for timestamps) shows
/// whatever bytes the buffer holds by the time the API reads it.
pub fn normalize_error(e: &str) -> String {
    for prefix in ["strconv.ParseFloat: parsing ", "strconv.ParseInt: parsing "] {
        if let (Some(i), Some(j)) = (e.find(prefix), e.rfind("\": ")) {
            if j > i + prefix.len() {
                return format!("{}{prefix}<buffer>{}", &e[..i], &e[j + 1..]);
            }
        }
    }
    e.to_string()
}

/// Diffs two views field by field.
pub fn diff_fields(what: &str, prom: &Value, sg: &Value) -> Vec<String> {
    let (Some(p), Some(s)) = (prom.as_object(), sg.as_object()) else {
        return vec![format!("{what}: prometheus {prom} scrapegrid {sg}")];
    };
    let keys: BTreeSet<&String> = p.keys().chain(s.keys()).collect();
    keys.into_iter()
        .filter(|k| p.get(*k) != s.get(*k))
        .map(|k| {
            format!(
                "{what} {k}: prometheus {} scrapegrid {}",
                p.get(k).unwrap_or(&Value::Null),
                s.get(k).unwrap_or(&Value::Null)
            )
        })
        .collect()
}

/// The case a scrape URL or metrics path belongs to (`/case/<name>`).
pub fn case_of_path(url_or_path: &str) -> Option<&str> {
    let rest = &url_or_path[url_or_path.find("/case/")? + "/case/".len()..];
    Some(rest.split(['?', '/']).next().unwrap_or(rest))
}

/// Exemplars of one system as `series -> {exemplar}` lines: labels, value,
/// and the timestamp when it was explicit (before `explicit_before`; an
/// exemplar without one gets the scrape time, which differs).
pub fn exemplar_lines(data: &Value, explicit_before: f64) -> BTreeMap<SeriesKey, BTreeSet<String>> {
    let mut out: BTreeMap<SeriesKey, BTreeSet<String>> = BTreeMap::new();
    for s in data.as_array().into_iter().flatten() {
        let labels = label_map(&s["seriesLabels"]);
        for e in s["exemplars"].as_array().into_iter().flatten() {
            let ts = e["timestamp"].as_f64().unwrap_or_default();
            let ts = if ts < explicit_before {
                format!("{ts}")
            } else {
                "scrape time".into()
            };
            out.entry(key_of(&labels)).or_default().insert(format!(
                "{} {} @ {ts}",
                e["labels"],
                value_token(e["value"].as_str().unwrap_or_default())
            ));
        }
    }
    out
}
