//! The three encodings of the benchmark's families, as client_golang 1.14
//! writes them: text 0.0.4, OpenMetrics 1.0 and length-delimited protobuf
//! `MetricFamily` messages.

use std::fmt::Write as _;

use scrapegrid_proto::prometheus_client as pb;
use scrapegrid_proto::prost::Message as _;

use scrapegrid_common::exposition::{escape, go_float};

use super::bodies::*;

/// Formats a float as client_golang's OpenMetrics encoder: Go's shortest
/// form with `.0` added to an integral value.
fn om_float(v: f64) -> String {
    let s = go_float(v);
    if s.bytes().any(|b| matches!(b, b'.' | b'e' | b'I' | b'N')) {
        s
    } else {
        s + ".0"
    }
}

/// Writes `name{labels[,extra]} value\n`.
fn sample(
    out: &mut String,
    name: &str,
    labels: &[(String, String)],
    extra: Option<(&str, &str)>,
    value: &str,
) {
    out.push_str(name);
    let extra = extra.map(|(n, v)| (n.to_string(), v.to_string()));
    let all: Vec<_> = labels.iter().chain(extra.iter()).collect();
    if !all.is_empty() {
        out.push('{');
        for (i, (n, v)) in all.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{n}=\"{}\"", escape(v, true));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

fn kind_str(kind: Kind) -> &'static str {
    match kind {
        Kind::Counter => "counter",
        Kind::Gauge => "gauge",
        Kind::Histogram => "histogram",
        Kind::Summary => "summary",
    }
}

/// Renders the text format 0.0.4 as client_golang's `expfmt` writes it.
pub(super) fn render_text(families: &[Family]) -> Vec<u8> {
    render(families, false)
}

/// Renders OpenMetrics 1.0 as client_golang's OpenMetrics encoder writes it.
pub(super) fn render_openmetrics(families: &[Family]) -> Vec<u8> {
    render(families, true)
}

fn render(families: &[Family], om: bool) -> Vec<u8> {
    let float = if om { om_float } else { go_float };
    // Counts are integers in OpenMetrics, floats in the text format.
    let count = |c: u64| {
        if om {
            c.to_string()
        } else {
            go_float(c as f64)
        }
    };
    let mut out = String::new();
    for f in families {
        let name = f.name.as_str();
        let family_name = match (om, f.kind) {
            (true, Kind::Counter) => name.strip_suffix("_total").unwrap_or(name),
            _ => name,
        };
        let _ = writeln!(out, "# HELP {family_name} {}", escape(&f.help, om));
        let _ = writeln!(out, "# TYPE {family_name} {}", kind_str(f.kind));
        for m in &f.metrics {
            let l = &m.labels;
            match &m.value {
                Value::Single(v) => sample(&mut out, name, l, None, &float(*v)),
                Value::Histogram {
                    buckets,
                    count: n,
                    sum,
                } => {
                    let bucket = format!("{name}_bucket");
                    for (le, c) in buckets {
                        sample(&mut out, &bucket, l, Some(("le", &float(*le))), &count(*c));
                    }
                    sample(&mut out, &bucket, l, Some(("le", "+Inf")), &count(*n));
                    sample(&mut out, &format!("{name}_sum"), l, None, &float(*sum));
                    sample(&mut out, &format!("{name}_count"), l, None, &count(*n));
                }
                Value::Summary {
                    quantiles,
                    count: n,
                    sum,
                } => {
                    for (q, v) in quantiles {
                        sample(
                            &mut out,
                            name,
                            l,
                            Some(("quantile", &float(*q))),
                            &float(*v),
                        );
                    }
                    sample(&mut out, &format!("{name}_sum"), l, None, &float(*sum));
                    sample(&mut out, &format!("{name}_count"), l, None, &count(*n));
                }
            }
        }
    }
    if om {
        out.push_str("# EOF\n");
    }
    out.into_bytes()
}

/// Renders length-delimited `MetricFamily` messages as client_golang's
/// `expfmt` protobuf encoder writes them.
pub(super) fn render_protobuf(families: &[Family]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in families {
        let metric = f
            .metrics
            .iter()
            .map(|m| {
                let mut pm = pb::Metric {
                    label: m
                        .labels
                        .iter()
                        .map(|(n, v)| pb::LabelPair {
                            name: n.as_bytes().to_vec(),
                            value: v.as_bytes().to_vec(),
                        })
                        .collect(),
                    ..Default::default()
                };
                match (&m.value, f.kind) {
                    (Value::Single(v), Kind::Counter) => {
                        pm.counter = Some(Box::new(pb::Counter {
                            value: *v,
                            exemplar: None,
                        }))
                    }
                    (Value::Single(v), _) => pm.gauge = Some(Box::new(pb::Gauge { value: *v })),
                    (
                        Value::Histogram {
                            buckets,
                            count,
                            sum,
                        },
                        _,
                    ) => {
                        pm.histogram = Some(Box::new(pb::Histogram {
                            sample_count: *count,
                            sample_sum: *sum,
                            bucket: buckets
                                .iter()
                                .map(|&(le, c)| pb::Bucket {
                                    cumulative_count: c,
                                    upper_bound: le,
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        }))
                    }
                    (
                        Value::Summary {
                            quantiles,
                            count,
                            sum,
                        },
                        _,
                    ) => {
                        pm.summary = Some(Box::new(pb::Summary {
                            sample_count: *count,
                            sample_sum: *sum,
                            quantile: quantiles
                                .iter()
                                .map(|&(quantile, value)| pb::Quantile { quantile, value })
                                .collect(),
                        }))
                    }
                }
                pm
            })
            .collect();
        let ty = match f.kind {
            Kind::Counter => pb::MetricType::Counter,
            Kind::Gauge => pb::MetricType::Gauge,
            Kind::Histogram => pb::MetricType::Histogram,
            Kind::Summary => pb::MetricType::Summary,
        };
        pb::MetricFamily {
            name: f.name.as_bytes().to_vec(),
            help: f.help.as_bytes().to_vec(),
            r#type: ty as i32,
            metric,
        }
        .encode_length_delimited(&mut out)
        .expect("a Vec grows as needed");
    }
    out
}
