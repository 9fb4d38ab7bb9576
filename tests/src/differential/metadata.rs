//! The metadata APIs compared: `/api/v1/targets/metadata` per target (the
//! set of `metric type help unit` of each, filed under the target's case),
//! `/api/v1/metadata` per metric name, and both under a set of parameters
//! (`metric`, `limit`, `match_target`, bad values) whose answers are
//! compared whole: status, error type and message, or the data as sets.
//! Prometheus lists targets and metric names in Go map order, so where
//! `limit` cuts the list only the shape is compared (how many names; whole
//! targets). Parse errors are compared without Prometheus's `line:column`
//! prefix ([`without_position`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;

use super::api::note;
use super::case_of_series;
use super::cases::Case;
use super::report::CaseResult;
use crate::prometheus::Prometheus;
use crate::Cluster;

/// An answer reduced to what both systems must agree on.
#[derive(Debug, PartialEq)]
enum Answer {
    Error(u16, String, String),
    /// `/api/v1/targets/metadata`: target labels -> its entries.
    Targets(BTreeMap<String, BTreeSet<String>>),
    /// `/api/v1/metadata`: metric -> its distinct entries.
    Metrics(BTreeMap<String, BTreeSet<String>>),
}

async fn get(http: &reqwest::Client, addr: &str, path: &str, params: &[(&str, &str)]) -> Answer {
    let url = format!("http://{addr}{path}");
    let r = match http.get(&url).query(params).send().await {
        Ok(r) => r,
        Err(e) => return Answer::Error(0, "transport".into(), e.to_string()),
    };
    let status = r.status().as_u16();
    let body: Value = match r.json().await {
        Ok(v) => v,
        Err(e) => return Answer::Error(status, "not json".into(), e.to_string()),
    };
    if body["status"] != "success" {
        let s = |k: &str| body[k].as_str().unwrap_or_default().to_string();
        return Answer::Error(status, s("errorType"), without_position(&s("error")));
    }
    let entry = |m: &Value| {
        format!(
            "{} {} {:?} {:?}",
            m["metric"].as_str().unwrap_or("-"),
            m["type"].as_str().unwrap_or_default(),
            m["help"].as_str().unwrap_or_default(),
            m["unit"].as_str().unwrap_or_default()
        )
    };
    if path.ends_with("/targets/metadata") {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for m in body["data"].as_array().into_iter().flatten() {
            out.entry(m["target"].to_string())
                .or_default()
                .insert(entry(m));
        }
        Answer::Targets(out)
    } else {
        let mut out = BTreeMap::new();
        for (name, list) in body["data"].as_object().into_iter().flatten() {
            let set = list.as_array().into_iter().flatten().map(entry).collect();
            out.insert(name.clone(), set);
        }
        Answer::Metrics(out)
    }
}

/// Compares the metadata APIs.
pub(super) async fn compare(
    cases: &[Arc<Case>],
    prom: &Prometheus,
    cluster: &Cluster,
    results: &mut BTreeMap<&'static str, CaseResult>,
    global: &mut Vec<String>,
) {
    let http = &cluster.http;
    let (p_addr, s_addr) = (prom.addr.as_str(), cluster.storage_http.as_str());
    let targets = "/api/v1/targets/metadata";
    let metadata = "/api/v1/metadata";

    // Every target's metadata, filed under its case.
    let (p, s) = (
        get(http, p_addr, targets, &[]).await,
        get(http, s_addr, targets, &[]).await,
    );
    let (Answer::Targets(p), Answer::Targets(s)) = (&p, &s) else {
        global.push(format!("{targets}: prometheus {p:?}, scrapegrid {s:?}"));
        return;
    };
    let empty = BTreeSet::new();
    for target in p.keys().chain(s.keys()).collect::<BTreeSet<_>>() {
        let (a, b) = (
            p.get(target).unwrap_or(&empty),
            s.get(target).unwrap_or(&empty),
        );
        if a == b {
            continue;
        }
        let labels: BTreeMap<String, String> = serde_json::from_str(target).unwrap_or_default();
        let case = case_of_series(cases, &labels).map(|c| c.name);
        let only = |x: &BTreeSet<String>, y: &BTreeSet<String>| {
            x.difference(y).cloned().collect::<Vec<_>>()
        };
        note(
            results,
            global,
            case,
            format!(
                "metadata of target {target}: only in prometheus {:?}, only in scrapegrid {:?}",
                only(a, b),
                only(b, a)
            ),
        );
    }
    let Some((metric, job)) = p.iter().find_map(|(t, entries)| {
        let labels: BTreeMap<String, String> = serde_json::from_str(t).ok()?;
        let metric = entries.iter().next()?.split(' ').next()?.to_string();
        Some((metric, labels.get("job")?.clone()))
    }) else {
        global.push("prometheus shows no target metadata at all".into());
        return;
    };
    let selector = format!("{{job={job:?}}}");

    // Whole answers under parameters.
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (metadata, vec![]),
        (metadata, vec![("metric", &metric)]),
        (metadata, vec![("metric", "no_such_metric")]),
        (metadata, vec![("limit", "0")]),
        (metadata, vec![("limit", "-1")]),
        (metadata, vec![("limit", "abc")]),
        (metadata, vec![("limit", "1.5")]),
        (targets, vec![("metric", &metric)]),
        (targets, vec![("match_target", &selector)]),
        (
            targets,
            vec![("match_target", &selector), ("metric", &metric)],
        ),
        (targets, vec![("match_target", "{job=~\"no.*such\"}")]),
        (targets, vec![("limit", "0")]),
        (targets, vec![("limit", "-5")]),
        (targets, vec![("limit", "x")]),
        (targets, vec![("match_target", "{job=")]),
        (targets, vec![("match_target", "{}")]),
        (targets, vec![("match_target", "up")]),
    ];
    for (path, params) in &cases {
        let (a, b) = (
            get(http, p_addr, path, params).await,
            get(http, s_addr, path, params).await,
        );
        if a != b {
            global.push(format!(
                "{path} {params:?}: prometheus {}, scrapegrid {}",
                short(&a),
                short(&b)
            ));
        }
    }

    // Where `limit` cuts: the shape.
    for n in [1usize, 3] {
        let limit = n.to_string();
        let shape = |a: &Answer| match a {
            Answer::Metrics(m) => format!("{} names", m.len()),
            other => short(other),
        };
        let (a, b) = (
            get(http, p_addr, metadata, &[("limit", &limit)]).await,
            get(http, s_addr, metadata, &[("limit", &limit)]).await,
        );
        if shape(&a) != shape(&b) {
            global.push(format!(
                "{metadata} limit={n}: prometheus {}, scrapegrid {}",
                shape(&a),
                shape(&b)
            ));
        }
        let b = get(http, s_addr, targets, &[("limit", &limit)]).await;
        let whole = match &b {
            Answer::Targets(t) => {
                t.len() <= n
                    && t.iter().all(|(k, v)| s.get(k) == Some(v))
                    && t.values().map(BTreeSet::len).sum::<usize>()
                        >= n.min(s.values().map(BTreeSet::len).sum())
            }
            _ => false,
        };
        if !whole {
            global.push(format!(
                "{targets} limit={n}: scrapegrid {} is not whole targets reaching the limit",
                short(&b)
            ));
        }
    }
}

/// Drops the `1:6: parse error: ` that Prometheus's parser puts before a
/// selector's parse error: the PromQL parser here reports no positions
/// (the same holds for every query parameter, see the PromQL
/// differential), so only the message after it is compared.
fn without_position(e: &str) -> String {
    let Some(at) = e.find(": parse error: ") else {
        return e.to_string();
    };
    let head = &e[..at];
    let pos_start = head.rfind(' ').map_or(0, |i| i + 1);
    let pos = &head[pos_start..];
    if pos
        .split(':')
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        format!("{}{}", &e[..pos_start], &e[at + ": parse error: ".len()..])
    } else {
        e.to_string()
    }
}

fn short(a: &Answer) -> String {
    let s = format!("{a:?}");
    if s.chars().count() > 400 {
        format!("{}...", s.chars().take(400).collect::<String>())
    } else {
        s
    }
}
