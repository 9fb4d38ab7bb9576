//! Judging two `/api/v1/query[_range]` answers as the module doc says:
//! status and error type, result type, series as sets (in order after
//! `sort`), timestamps, values within 1e-9 relative, native histograms by
//! count, sum and every bucket.

use std::collections::BTreeMap;

use serde_json::Value;

fn value_of(v: &Value) -> f64 {
    match v.as_str() {
        Some("NaN") => f64::NAN,
        Some("+Inf") => f64::INFINITY,
        Some("-Inf") => f64::NEG_INFINITY,
        Some(s) => s.parse().unwrap_or(f64::NAN),
        None => f64::NAN,
    }
}

fn same_value(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a.is_infinite() || b.is_infinite() {
        return a == b;
    }
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// Whether two `[t, "v"]` or `[t, {histogram}]` points agree: histograms
/// by count, sum and every bucket (boundary rule, bounds, count).
fn same_point(a: &Value, b: &Value) -> bool {
    if a[0].as_f64() != b[0].as_f64() {
        return false;
    }
    match (&a[1], &b[1]) {
        (Value::Object(x), Value::Object(y)) => same_histogram(x, y),
        (x, y) => !x.is_object() && !y.is_object() && same_value(value_of(x), value_of(y)),
    }
}

fn same_histogram(a: &serde_json::Map<String, Value>, b: &serde_json::Map<String, Value>) -> bool {
    let num = |m: &serde_json::Map<String, Value>, k: &str| value_of(&m[k]);
    if !same_value(num(a, "count"), num(b, "count")) || !same_value(num(a, "sum"), num(b, "sum")) {
        return false;
    }
    let empty = Vec::new();
    let (ba, bb) = (
        a.get("buckets").and_then(Value::as_array).unwrap_or(&empty),
        b.get("buckets").and_then(Value::as_array).unwrap_or(&empty),
    );
    ba.len() == bb.len()
        && ba.iter().zip(bb).all(|(x, y)| {
            x[0] == y[0] && (1..4).all(|i| same_value(value_of(&x[i]), value_of(&y[i])))
        })
}

fn metric_key(m: &Value) -> String {
    let map: BTreeMap<String, String> = m
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    format!("{map:?}")
}

/// Compares Prometheus's answer (`want`) with ours (`got`); `ordered` when
/// the order of an instant vector matters. Returns the first difference.
pub fn compare(want: &Value, got: &Value, ordered: bool) -> Option<String> {
    if want["status"] != got["status"] {
        return Some(format!(
            "status {} vs {} (prometheus error: {}, ours: {})",
            want["status"], got["status"], want["error"], got["error"]
        ));
    }
    if want["status"] != "success" {
        return (want["errorType"] != got["errorType"]).then(|| {
            format!(
                "error type {} vs {} ({} / {})",
                want["errorType"], got["errorType"], want["error"], got["error"]
            )
        });
    }
    let (w, g) = (&want["data"], &got["data"]);
    if w["resultType"] != g["resultType"] {
        return Some(format!(
            "result type {} vs {}",
            w["resultType"], g["resultType"]
        ));
    }
    match w["resultType"].as_str() {
        Some("scalar") | Some("string") => {
            let ok = if w["resultType"] == "string" {
                w["result"] == g["result"]
            } else {
                same_point(&w["result"], &g["result"])
            };
            (!ok).then(|| format!("{} vs {}", w["result"], g["result"]))
        }
        _ => {
            let empty = Vec::new();
            let wr = w["result"].as_array().unwrap_or(&empty);
            let gr = g["result"].as_array().unwrap_or(&empty);
            if wr.len() != gr.len() {
                return Some(format!(
                    "{} series vs {}: {} / {}",
                    wr.len(),
                    gr.len(),
                    short(&w["result"]),
                    short(&g["result"])
                ));
            }
            let index = |r: &[Value]| -> BTreeMap<String, Value> {
                r.iter()
                    .map(|s| (metric_key(&s["metric"]), s.clone()))
                    .collect()
            };
            if ordered {
                let wk: Vec<String> = wr.iter().map(|s| metric_key(&s["metric"])).collect();
                let gk: Vec<String> = gr.iter().map(|s| metric_key(&s["metric"])).collect();
                if wk != gk {
                    return Some(format!("order {wk:?} vs {gk:?}"));
                }
            }
            let (wi, gi) = (index(wr), index(gr));
            for (k, ws) in &wi {
                let Some(gs) = gi.get(k) else {
                    return Some(format!(
                        "series {k} missing; ours: {:?}",
                        gi.keys().collect::<Vec<_>>()
                    ));
                };
                if ws.get("value").is_some() || ws.get("histogram").is_some() {
                    for key in ["value", "histogram"] {
                        match (ws.get(key), gs.get(key)) {
                            (None, None) => {}
                            (Some(wv), Some(gv)) if same_point(wv, gv) => {}
                            (wv, gv) => return Some(format!("{k}: {key} {wv:?} vs {gv:?}")),
                        }
                    }
                } else {
                    for key in ["values", "histograms"] {
                        let (wv, gv) = (
                            ws[key].as_array().unwrap_or(&empty),
                            gs[key].as_array().unwrap_or(&empty),
                        );
                        if wv.len() != gv.len() {
                            return Some(format!(
                                "{k}: {} {key} vs {}: {} / {}",
                                wv.len(),
                                gv.len(),
                                short(&ws[key]),
                                short(&gs[key])
                            ));
                        }
                        if let Some((a, b)) = wv.iter().zip(gv).find(|(a, b)| !same_point(a, b)) {
                            return Some(format!("{k}: {a} vs {b}"));
                        }
                    }
                }
            }
            None
        }
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 300 {
        format!("{}...", &s[..300])
    } else {
        s
    }
}
