//! The HTTP APIs compared beside the stored series: `/api/v1/targets`,
//! `/api/v1/query_exemplars`, and the scrape headers the fixture recorded.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::Value;

use super::cases::Case;
use super::fixture::{Client, Fixture, RECORDED_HEADERS};
use super::jobs::Job;
use super::report::{shorten, CaseResult};
use super::{case_of_series, compare};
use crate::prometheus::Prometheus;
use crate::{get_data, Cluster};

/// Compares `/api/v1/targets`: every field of every target under
/// `state=any`, and for `state=active` / `state=dropped` how many targets of
/// each kind each system lists (so a difference is reported once).
pub(super) async fn compare_targets(
    prom: &Prometheus,
    cluster: &Cluster,
    results: &mut BTreeMap<&'static str, CaseResult>,
    global: &mut Vec<String>,
) {
    let mut shapes = Vec::new();
    for state in ["any", "active", "dropped"] {
        let url = format!(
            "http://{}/api/v1/targets?state={state}",
            cluster.control_http
        );
        let (p, s) = match (
            prom.targets(state).await,
            get_data(&cluster.http, &url).await,
        ) {
            (Ok(p), Ok(s)) => (p, s),
            (p, s) => {
                global.push(format!(
                    "targets?state={state}: prometheus {:?}, scrapegrid {:?}",
                    p.err(),
                    s.err()
                ));
                continue;
            }
        };
        let count = |v: &Value, k: &str| v[k].as_array().map_or(0, Vec::len);
        let (pc, sc) = (
            (count(&p, "activeTargets"), count(&p, "droppedTargets")),
            (count(&s, "activeTargets"), count(&s, "droppedTargets")),
        );
        shapes.push((state, pc, sc));
        if state != "any" {
            continue;
        }
        let active = |v: &Value| -> BTreeMap<String, Value> {
            v["activeTargets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| {
                    (
                        t["scrapeUrl"].as_str().unwrap_or_default().to_string(),
                        compare::active_view(t),
                    )
                })
                .collect()
        };
        let (pa, sa) = (active(&p), active(&s));
        for url in pa.keys().chain(sa.keys()).collect::<BTreeSet<_>>() {
            let case = compare::case_of_path(url);
            match (pa.get(url), sa.get(url)) {
                (Some(a), Some(b)) => {
                    for d in compare::diff_fields(&format!("target {url}"), a, b) {
                        if d.contains(" discoveredLabels: ")
                            && a["scrapePool"] == Job::TargetRelabel.name()
                        {
                            // See PROMETHEUS_BUG_DISCOVERED_LABELS.
                            if let Some(r) = case.and_then(|c| results.get_mut(c)) {
                                r.ignored
                                    .push(format!("{d} ({PROMETHEUS_BUG_DISCOVERED_LABELS})"));
                            }
                            continue;
                        }
                        note(results, global, case, d);
                    }
                }
                (Some(_), None) => note(
                    results,
                    global,
                    case,
                    format!("target {url}: only in prometheus"),
                ),
                (None, Some(_)) => note(
                    results,
                    global,
                    case,
                    format!("target {url}: only in scrapegrid"),
                ),
                (None, None) => {}
            }
        }
        let dropped = |v: &Value| -> BTreeMap<String, usize> {
            let mut m = BTreeMap::new();
            for t in v["droppedTargets"].as_array().into_iter().flatten() {
                *m.entry(t["discoveredLabels"].to_string()).or_default() += 1;
            }
            m
        };
        let (pd, sd) = (dropped(&p), dropped(&s));
        for k in pd.keys().chain(sd.keys()).collect::<BTreeSet<_>>() {
            let (a, b) = (
                pd.get(k).copied().unwrap_or(0),
                sd.get(k).copied().unwrap_or(0),
            );
            if a != b {
                let labels: Value = serde_json::from_str(k).unwrap_or_default();
                let case = labels["__metrics_path__"]
                    .as_str()
                    .and_then(compare::case_of_path);
                note(
                    results,
                    global,
                    case,
                    format!(
                        "dropped target {k}: listed {a} times by prometheus, {b} by scrapegrid"
                    ),
                );
            }
        }
    }
    for (state, p, s) in shapes {
        if p != s {
            global.push(format!(
                "targets?state={state}: (active, dropped) counts: prometheus {p:?}, scrapegrid {s:?}"
            ));
        }
    }
}

/// Compares `/api/v1/query_exemplars` over the run (explicit exemplar
/// timestamps reach back to 2020).
pub(super) async fn compare_exemplars(
    cases: &[Arc<Case>],
    prom: &Prometheus,
    cluster: &Cluster,
    start: f64,
    end: f64,
    results: &mut BTreeMap<&'static str, CaseResult>,
    global: &mut Vec<String>,
) {
    let params = [
        ("query", r#"{__name__=~".+"}"#.to_string()),
        ("start", "1500000000".to_string()),
        ("end", (end + 1.0).to_string()),
    ];
    let p = match prom.get("/api/v1/query_exemplars", &params).await {
        Ok(v) => compare::exemplar_lines(&v, start),
        Err(e) => {
            global.push(format!("prometheus query_exemplars: {e:#}"));
            return;
        }
    };
    let url = format!("http://{}/api/v1/query_exemplars", cluster.storage_http);
    let s = match get_json(&cluster.http, &url, &params).await {
        Ok(v) => compare::exemplar_lines(&v, start),
        Err(e) => {
            // Reported once here; each case then shows what Prometheus kept.
            global.push(format!("scrapegrid query_exemplars: {e:#}"));
            BTreeMap::new()
        }
    };
    let empty = BTreeSet::new();
    for key in p.keys().chain(s.keys()).collect::<BTreeSet<_>>() {
        let (a, b) = (p.get(key).unwrap_or(&empty), s.get(key).unwrap_or(&empty));
        if a == b {
            continue;
        }
        let instance = key
            .split("instance=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_default()
            .to_string();
        let case = case_of_series(cases, &BTreeMap::from([("instance".to_string(), instance)]))
            .map(|c| c.name);
        note(
            results,
            global,
            case,
            format!("exemplars of {key}: prometheus {a:?} scrapegrid {b:?}"),
        );
    }
}

async fn get_json(http: &reqwest::Client, url: &str, params: &[(&str, String)]) -> Result<Value> {
    let r = http.get(url).query(params).send().await?;
    let status = r.status();
    let text = r.text().await?;
    let body: Value = serde_json::from_str(&text)
        .with_context(|| format!("GET {url}: HTTP {status}: {}", shorten(&text)))?;
    anyhow::ensure!(body["status"] == "success", "GET {url}: {body}");
    Ok(body["data"].clone())
}

/// Files a difference under its case, or globally.
pub(super) fn note(
    results: &mut BTreeMap<&'static str, CaseResult>,
    global: &mut Vec<String>,
    case: Option<&str>,
    line: String,
) {
    match case.and_then(|c| results.get_mut(c)) {
        Some(r) => r.diffs.push(line),
        None => global.push(line),
    }
}

/// Prometheus 2.42 shows relabeled values in an active target's
/// discoveredLabels (relabeling overwrites the discovered label set in
/// place: `rl` vanishes, `__tmp_hash` and the new `instance` appear), so
/// those are not compared for the relabeling job.
const PROMETHEUS_BUG_DISCOVERED_LABELS: &str =
    "ignored: Prometheus 2.42 overwrites discoveredLabels with relabeling output";

/// Both clients must send the same scrape headers to each case. A
/// difference is reported once (globally) with the cases it concerns, not on
/// every case.
pub(super) fn compare_headers(cases: &[Arc<Case>], fixture: &Fixture, global: &mut Vec<String>) {
    let mut summary: BTreeMap<(String, String, String), Vec<&str>> = BTreeMap::new();
    for c in cases.iter().filter(|c| c.counted) {
        for h in RECORDED_HEADERS {
            let p = fixture.header_values(Client::Prometheus, c.name, h);
            let s = fixture.header_values(Client::Scrapegrid, c.name, h);
            if p != s && !s.is_empty() {
                let fmt = |v: &BTreeSet<String>| v.iter().cloned().collect::<Vec<_>>().join(" | ");
                summary
                    .entry((h.to_string(), fmt(&p), fmt(&s)))
                    .or_default()
                    .push(c.name);
            }
        }
    }
    for ((h, p, s), names) in summary {
        global.push(format!(
            "header {h} differs on {} cases ({}...): prometheus {p:?}, scrapegrid {s:?}",
            names.len(),
            names.iter().take(3).copied().collect::<Vec<_>>().join(", ")
        ));
    }
}
