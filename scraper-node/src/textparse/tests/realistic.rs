//! A realistic 2,000-series exposition (node_exporter and client_golang
//! shaped) through the text parser: every family and sample comes out, and
//! repeated parses agree.

use std::fmt::Write as _;

use super::super::*;
use super::parse;

/// Returns a realistic exposition of exactly 2,000 series (node_exporter and
/// client_golang shaped: counters, gauges, histograms, a summary with NaN
/// quantiles, escaped label values, some timestamps) and the number of samples
/// of each family.
fn realistic_body() -> (String, Vec<(&'static str, usize)>) {
    let mut b = String::new();
    let mut families = Vec::new();
    let family = |b: &mut String, name: &'static str, kind: &str, help: &str| {
        writeln!(b, "# HELP {name} {help}").unwrap();
        writeln!(b, "# TYPE {name} {kind}").unwrap();
        name
    };

    let name = family(
        &mut b,
        "http_requests_total",
        "counter",
        "Total HTTP requests.",
    );
    let mut n = 0;
    for handler in 0..10 {
        for method in ["get", "post", "put", "delete", "patch"] {
            for code in [200, 201, 204, 301, 400, 404, 500, 503] {
                writeln!(b, "{name}{{handler=\"/api/v1/h{handler}\",method=\"{method}\",code=\"{code}\"}} {}", n * 7).unwrap();
                n += 1;
            }
        }
    }
    families.push((name, n));

    let name = family(
        &mut b,
        "http_request_duration_seconds",
        "histogram",
        "Latency.",
    );
    let buckets = [
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
    ];
    let mut n = 0;
    for handler in 0..10 {
        for method in ["get", "post", "put"] {
            for (i, le) in buckets.iter().enumerate() {
                writeln!(
                    b,
                    "{name}_bucket{{handler=\"/h{handler}\",method=\"{method}\",le=\"{le}\"}} {}",
                    i * 3
                )
                .unwrap();
            }
            writeln!(
                b,
                "{name}_sum{{handler=\"/h{handler}\",method=\"{method}\"}} 12.5e-1"
            )
            .unwrap();
            writeln!(
                b,
                "{name}_count{{handler=\"/h{handler}\",method=\"{method}\"}} 33"
            )
            .unwrap();
            n += buckets.len() + 2;
        }
    }
    families.push((name, n));

    let name = family(&mut b, "rpc_duration_seconds", "summary", "RPC latency.");
    let mut n = 0;
    for service in 0..20 {
        for q in ["0.5", "0.9", "0.99"] {
            let value = if service % 4 == 0 { "NaN" } else { "0.0123" };
            writeln!(
                b,
                "{name}{{service=\"svc-{service}\",quantile=\"{q}\"}} {value}"
            )
            .unwrap();
        }
        writeln!(b, "{name}_sum{{service=\"svc-{service}\"}} 1.7560473e+07").unwrap();
        writeln!(b, "{name}_count{{service=\"svc-{service}\"}} 2693").unwrap();
        n += 5;
    }
    families.push((name, n));

    let name = family(
        &mut b,
        "node_cpu_seconds_total",
        "counter",
        "Seconds the CPUs spent in each mode.",
    );
    let mut n = 0;
    for cpu in 0..32 {
        for mode in [
            "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
        ] {
            writeln!(b, "{name}{{cpu=\"{cpu}\",mode=\"{mode}\"}} 1.23456789e+06").unwrap();
            n += 1;
        }
    }
    families.push((name, n));

    let name = family(
        &mut b,
        "node_filesystem_avail_bytes",
        "gauge",
        "Filesystem space available.\\nIn bytes.",
    );
    for i in 0..100 {
        writeln!(b, "{name}{{device=\"C:\\\\vol\\\"{i}\\\"\",fstype=\"ntfs\",mountpoint=\"/mnt/d{i}\"}} 4.2e+10 1700000000{i:03}").unwrap();
    }
    families.push((name, 100));

    b.push_str("# Untyped filler, no HELP or TYPE.\n\n");
    let name = "kube_pod_status_ready";
    let used: usize = families.iter().map(|f| f.1).sum();
    let n = 2000 - used - 1;
    for i in 0..n {
        writeln!(
            b,
            "{name}{{namespace=\"ns-{}\",pod=\"pod-{i}\",condition=\"true\",}}\t1",
            i % 13
        )
        .unwrap();
    }
    families.push((name, n));
    b.push_str("process_start_time_seconds 1.7e9"); // No final newline.
    families.push(("process_start_time_seconds", 1));
    (b, families)
}

#[test]
fn realistic_body_of_2000_series_parses() {
    let (body, families) = realistic_body();
    let (entries, err) = parse(body.as_bytes());
    assert_eq!(err, None);

    let mut samples = 0;
    let mut per_family = std::collections::HashMap::<String, usize>::new();
    let mut types = 0;
    let mut helps = 0;
    for e in &entries {
        match e {
            Entry::Sample(s) => {
                samples += 1;
                let labels = s.labels();
                let metric = labels.get("__name__").unwrap().to_owned();
                assert!(s.series.starts_with(&metric));
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| metric.strip_suffix(suffix))
                    .filter(|f| families.iter().any(|(n, _)| n == f))
                    .unwrap_or(metric.as_str());
                *per_family.entry(family.to_owned()).or_default() += 1;
                if metric == "node_filesystem_avail_bytes" {
                    let device = labels.get("device").unwrap();
                    assert!(
                        device.starts_with("C:\\vol\"") && device.ends_with('"'),
                        "{device}"
                    );
                    assert!(s.timestamp_ms.is_some());
                }
                if labels.get("quantile").is_some() && labels.get("service") == Some("svc-4") {
                    assert_eq!(s.value.to_bits(), NORMAL_NAN_BITS);
                }
            }
            Entry::Type { .. } => types += 1,
            Entry::Help { name, help } => {
                helps += 1;
                if *name == "node_filesystem_avail_bytes" {
                    assert_eq!(&**help, "Filesystem space available.\nIn bytes.");
                }
            }
            Entry::Unit { .. } | Entry::Comment => {}
            Entry::NativeHistogram(..) => panic!("a text body has no native histograms"),
        }
    }
    assert_eq!(samples, 2000);
    assert_eq!((types, helps), (5, 5));
    for (name, n) in &families {
        assert_eq!(per_family.get(*name), Some(n), "family {name}");
    }
}

/// A sanity check for the hot path, not a benchmark: parses the realistic body
/// many times, touching every sample, and checks every round sees the same.
#[test]
fn throughput_sanity() {
    let (body, _) = realistic_body();
    let round = || {
        let (mut samples, mut series_bytes, mut timestamps, mut value_sum) = (0, 0, 0, 0.0);
        let mut p = Parser::new(Format::PrometheusText, body.as_bytes());
        while let Some(e) = p.next_entry().unwrap() {
            if let Entry::Sample(s) = e {
                samples += 1;
                series_bytes += s.series.len();
                timestamps += usize::from(s.timestamp_ms.is_some());
                if s.value.is_finite() {
                    value_sum += s.value;
                }
            }
        }
        (samples, series_bytes, timestamps, value_sum.to_bits())
    };
    let first = round();
    assert_eq!((first.0, first.2), (2000, 100));
    for _ in 0..50 {
        assert_eq!(round(), first);
    }
}
