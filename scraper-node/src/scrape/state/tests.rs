use std::sync::Arc;

use scrapegrid_proto::{is_stale_marker, v1 as pb};

use super::*;
use crate::target::{PoolConfig, TargetSpec};

fn spec(pool: pb::ScrapePool) -> Arc<TargetSpec> {
    let pool = Arc::new(PoolConfig::try_from(&pool).unwrap());
    let t = pb::Target {
        id: "t1".into(),
        generation: 7,
        pool: "j".into(),
        url: "http://h:1/metrics".into(),
        labels: Labels::from_pairs([("job", "j"), ("instance", "h:1")]).to_proto(),
        scrape_interval_ms: 1000,
        scrape_timeout_ms: 500,
        ..Default::default()
    };
    Arc::new(TargetSpec::from_proto(&t, pool).unwrap())
}

fn default_pool() -> pb::ScrapePool {
    pb::ScrapePool {
        name: "j".into(),
        honor_timestamps: true,
        ..Default::default()
    }
}

/// Returns (series text, timestamp, value) rows of a batch.
fn rows(b: &ScrapeBatch) -> Vec<(String, i64, f64)> {
    (0..b.len())
        .map(|i| {
            (
                b.series[i].labels.to_string(),
                b.timestamps_ms[i],
                b.values[i],
            )
        })
        .collect()
}

fn value_of(b: &ScrapeBatch, name: &str) -> Option<f64> {
    (0..b.len())
        .find(|i| b.series[*i].labels.get("__name__") == Some(name))
        .map(|i| b.values[i])
}

#[test]
fn successful_scrape_has_samples_with_target_labels_and_report_series() {
    let mut st = TargetState::new(spec(default_pool()));
    let (b, r) = st.on_body(
        b"# TYPE a counter\na{x=\"1\"} 3\nb 4 12345\n",
        None,
        1000,
        0.25,
    );
    assert_eq!(r.error, None);
    assert_eq!(b.target_id, "t1");
    assert_eq!(b.generation, 7);
    let rows = rows(&b);
    assert_eq!(
        rows[0],
        (
            r#"{__name__="a", instance="h:1", job="j", x="1"}"#.into(),
            1000,
            3.0
        )
    );
    assert_eq!(
        rows[1].1, 12345,
        "honor_timestamps keeps the explicit timestamp"
    );
    assert_eq!(value_of(&b, "up"), Some(1.0));
    assert_eq!(value_of(&b, "scrape_duration_seconds"), Some(0.25));
    assert_eq!(value_of(&b, "scrape_samples_scraped"), Some(2.0));
    assert_eq!(
        value_of(&b, "scrape_samples_post_metric_relabeling"),
        Some(2.0)
    );
    assert_eq!(value_of(&b, "scrape_series_added"), Some(2.0));
    assert_eq!(b.len(), 7);
}

#[test]
fn vanished_series_get_a_stale_marker_once() {
    let mut st = TargetState::new(spec(default_pool()));
    st.on_body(b"a 1\nb 2\n", None, 1000, 0.1);
    let (b, _) = st.on_body(b"a 1\n", None, 2000, 0.1);
    let stale: Vec<_> = (0..b.len())
        .filter(|i| is_stale_marker(b.values[*i]))
        .collect();
    assert_eq!(stale.len(), 1);
    assert_eq!(b.series[stale[0]].labels.get("__name__"), Some("b"));
    assert_eq!(b.timestamps_ms[stale[0]], 2000);
    assert_eq!(value_of(&b, "scrape_series_added"), Some(0.0));
    let (b, _) = st.on_body(b"a 1\n", None, 3000, 0.1);
    assert!(!b.values.iter().any(|v| is_stale_marker(*v)));
}

#[test]
fn explicit_timestamps_are_not_tracked_for_staleness() {
    let mut st = TargetState::new(spec(default_pool()));
    st.on_body(b"a 1 500\n", None, 1000, 0.1);
    let (b, _) = st.on_body(b"", None, 2000, 0.1);
    assert!(!b.values.iter().any(|v| is_stale_marker(*v)));
}

#[test]
fn parse_error_discards_the_scrape_and_stales_everything() {
    let mut st = TargetState::new(spec(default_pool()));
    st.on_body(b"a 1\nb 2\n", None, 1000, 0.1);
    let (b, r) = st.on_body(b"a 1\nb{ 2\n", None, 2000, 0.1);
    assert!(r.error.is_some());
    assert_eq!(value_of(&b, "up"), Some(0.0));
    let stale = b.values.iter().filter(|v| is_stale_marker(**v)).count();
    assert_eq!(stale, 2);
    assert_eq!(
        b.len(),
        2 + 5,
        "no scraped sample of the failed scrape is kept"
    );
}

#[test]
fn http_error_reports_down_and_stales() {
    let mut st = TargetState::new(spec(default_pool()));
    st.on_body(b"a 1\n", None, 1000, 0.1);
    let (b, r) = st.on_error("connection refused".into(), 2000, 0.01);
    assert_eq!(r.error.as_deref(), Some("connection refused"));
    assert_eq!(value_of(&b, "up"), Some(0.0));
    assert_eq!(value_of(&b, "scrape_samples_scraped"), Some(0.0));
    assert_eq!(b.values.iter().filter(|v| is_stale_marker(**v)).count(), 1);
}

#[test]
fn metric_relabeling_drops_and_sample_limit_fails() {
    let mut pool = default_pool();
    pool.metric_relabel_rules = vec![pb::RelabelRule {
        source_labels: vec!["__name__".into()],
        separator: ";".into(),
        regex: "drop_.*".into(),
        replacement: "$1".into(),
        action: "drop".into(),
        ..Default::default()
    }];
    pool.sample_limit = 2;
    let mut st = TargetState::new(spec(pool));
    let (b, r) = st.on_body(b"drop_me 1\nkeep 2\n", None, 1000, 0.1);
    assert_eq!(r.error, None);
    assert_eq!(value_of(&b, "scrape_samples_scraped"), Some(2.0));
    assert_eq!(
        value_of(&b, "scrape_samples_post_metric_relabeling"),
        Some(1.0)
    );
    assert!(value_of(&b, "drop_me").is_none());
    let (b, r) = st.on_body(b"a 1\nb 2\nc 3\n", None, 2000, 0.1);
    assert_eq!(r.error.as_deref(), Some("sample limit exceeded"));
    assert_eq!(value_of(&b, "up"), Some(0.0));
    assert!(value_of(&b, "a").is_none());
}

#[test]
fn label_limit_fails_the_scrape() {
    let mut pool = default_pool();
    pool.label_limit = 3;
    let mut st = TargetState::new(spec(pool));
    let (_, r) = st.on_body(b"a{x=\"1\",y=\"2\"} 1\n", None, 1000, 0.1);
    assert!(r.error.unwrap().starts_with("label_limit exceeded"));
}

#[test]
fn end_of_run_stales_every_series_including_report_series() {
    let mut st = TargetState::new(spec(default_pool()));
    st.on_body(b"a 1\nb 2\n", None, 1000, 0.1);
    let b = st.end_of_run(1500);
    assert_eq!(b.len(), 2 + 5);
    assert!(b.values.iter().all(|v| is_stale_marker(*v)));
}

#[test]
fn cache_returns_the_same_series_across_scrapes() {
    let mut st = TargetState::new(spec(default_pool()));
    let (b1, _) = st.on_body(b"a{x=\"1\"} 1\n", None, 1000, 0.1);
    let (b2, _) = st.on_body(b"a{x=\"1\"} 2\n", None, 2000, 0.1);
    assert_eq!(b1.series[0].id, b2.series[0].id);
    assert_eq!(b1.series[5].id, b2.series[5].id, "report series are stable");
}

#[test]
fn series_keep_their_identity_when_the_exposition_order_changes() {
    // The cache is looked up by position first: a reordered, grown or
    // shrunk body must still find every series by its text.
    let mut st = TargetState::new(spec(default_pool()));
    let ids = |b: &ScrapeBatch| -> Vec<(String, u64)> {
        let mut v: Vec<_> = (0..b.len())
            .filter(|&i| !is_stale_marker(b.values[i]))
            .map(|i| (b.series[i].labels.to_string(), b.series[i].id))
            .collect();
        v.sort();
        v
    };
    let (b1, r1) = st.on_body(b"a 1\nb 2\nc 3\nd 4\n", None, 1000, 0.1);
    assert_eq!(r1.series_added, 4);
    let (b2, r2) = st.on_body(b"d 1\nb 2\na 3\nc 4\n", None, 2000, 0.1);
    assert_eq!(r2.series_added, 0, "a reordered body adds nothing");
    assert_eq!(ids(&b1), ids(&b2));
    assert!(b2.values.iter().all(|v| !is_stale_marker(*v)));
    // A new series in the middle, one gone: one added, one stale marker,
    // the others the same series.
    let (b3, r3) = st.on_body(b"d 1\ne 9\na 3\nc 4\n", None, 3000, 0.1);
    assert_eq!(r3.series_added, 1);
    let stale: Vec<String> = (0..b3.len())
        .filter(|&i| is_stale_marker(b3.values[i]))
        .map(|i| b3.series[i].labels.get("__name__").unwrap().to_string())
        .collect();
    assert_eq!(stale, ["b"]);
    let before: std::collections::HashMap<_, _> = ids(&b2).into_iter().collect();
    for (labels, id) in ids(&b3) {
        if let Some(old) = before.get(&labels) {
            assert_eq!(*old, id, "{labels} kept its series");
        }
    }
    // A repeated text in one scrape keeps the first sample, found by
    // position or not.
    let (b4, _) = st.on_body(b"d 1\nd 2\ne 9\n", None, 4000, 0.1);
    let d: Vec<f64> = (0..b4.len())
        .filter(|&i| b4.series[i].labels.get("__name__") == Some("d"))
        .map(|i| b4.values[i])
        .collect();
    assert_eq!(d, [1.0]);
}
#[test]
fn raw_series_with_the_same_final_labels_are_one_series() {
    let mut st = TargetState::new(spec(default_pool()));
    let (b1, _) = st.on_body(b"a{x=\"1\",y=\"2\"} 1\n", None, 1000, 0.1);
    // Same labels in another order: the same series, not stale, not added.
    let (b2, r) = st.on_body(b"a{y=\"2\",x=\"1\"} 2\n", None, 2000, 0.1);
    assert_eq!(b1.series[0].id, b2.series[0].id);
    assert!(
        !b2.values.iter().any(|v| is_stale_marker(*v)),
        "{:?}",
        rows(&b2)
    );
    assert_eq!(
        r.series_added, 1,
        "a new raw text is an added series, as Prometheus counts it"
    );
    // Both spellings in one scrape: the first value is kept, once, and both
    // count after relabeling, as in Prometheus.
    let (b3, r) = st.on_body(
        b"a{x=\"1\",y=\"2\"} 3\na{y=\"2\",x=\"1\"} 4\n",
        None,
        3000,
        0.1,
    );
    assert_eq!(r.samples_post_relabel, 2);
    assert_eq!(r.series_added, 1, "the first spelling left the cache");
    assert_eq!(value_of(&b3, "a"), Some(3.0));
    assert_eq!(b3.len(), 1 + 5);
}

#[test]
fn a_replacing_loop_adopts_series_and_stales_the_vanished_ones() {
    let mut old = TargetState::new(spec(default_pool()));
    let (b1, _) = old.on_body(b"keep 1\ngone 2\n", None, 1000, 0.1);
    let keep_id = b1.series[0].id;
    let mut new = TargetState::new(spec(default_pool()));
    new.inherit(old.into_inherited());
    let (b2, r) = new.on_body(b"keep 1\n", None, 2000, 0.1);
    assert_eq!(
        b2.series[0].id, keep_id,
        "the kept series stays the same series"
    );
    assert_eq!(r.series_added, 0);
    let stale: Vec<_> = (0..b2.len())
        .filter(|i| is_stale_marker(b2.values[*i]))
        .collect();
    assert_eq!(stale.len(), 1);
    assert_eq!(b2.series[stale[0]].labels.get("__name__"), Some("gone"));
}

#[test]
fn failed_scrapes_report_the_counts_prometheus_reports() {
    let mut pool = default_pool();
    pool.sample_limit = 2;
    let mut st = TargetState::new(spec(pool));
    // A parse error: the counts reached before it, nothing stored.
    let (b, r) = st.on_body(b"a 1\nb 2\nc{ 3\n", None, 1000, 0.1);
    assert!(r.error.is_some());
    assert_eq!(
        (r.samples_scraped, r.samples_post_relabel, r.series_added),
        (2, 2, 2)
    );
    assert_eq!(
        value_of(&b, "scrape_samples_post_metric_relabeling"),
        Some(2.0)
    );
    assert!(value_of(&b, "a").is_none());
    // The failed scrape's series stay cached, as in Prometheus: not added.
    let (_, r) = st.on_body(b"a 1\nb 2\n", None, 2000, 0.1);
    assert_eq!((r.error, r.series_added), (None, 0));
    // Over the sample limit: every sample counted, series added only up to
    // the limit.
    let (b, r) = st.on_body(b"a 1\nx 2\ny 3\nz 4\n", None, 3000, 0.1);
    assert_eq!(r.error.as_deref(), Some("sample limit exceeded"));
    assert_eq!(
        (r.samples_scraped, r.samples_post_relabel, r.series_added),
        (4, 4, 1)
    );
    assert_eq!(value_of(&b, "up"), Some(0.0));
    // A series that left the last successful scrape is added again.
    let (_, r) = st.on_body(b"a 1\n", None, 4000, 0.1);
    assert_eq!(r.series_added, 0);
    let (_, r) = st.on_body(b"a 1\nb 2\n", None, 5000, 0.1);
    assert_eq!(r.series_added, 1);
}

#[test]
fn invalid_names_fail_the_scrape_as_in_prometheus() {
    let mut pool = default_pool();
    pool.metric_relabel_rules = vec![pb::RelabelRule {
        source_labels: vec!["__name__".into()],
        separator: ";".into(),
        regex: "(.*)".into(),
        target_label: "__name__".into(),
        replacement: "1$1".into(),
        action: "replace".into(),
        ..Default::default()
    }];
    let mut st = TargetState::new(spec(pool));
    let (_, r) = st.on_body(b"a 1\n", None, 1000, 0.1);
    let e = r.error.unwrap();
    assert!(
        e.starts_with("invalid metric name or label names: {__name__=\"1a\""),
        "{e}"
    );
    assert_eq!((r.samples_scraped, r.samples_post_relabel), (1, 0));
}

#[test]
fn a_repeated_label_fails_on_append_unless_a_target_label_replaces_it() {
    let mut st = TargetState::new(spec(default_pool()));
    let (b, r) = st.on_body(b"a{x=\"1\",x=\"2\"} 1\n", None, 1000, 0.1);
    assert_eq!(
        r.error.as_deref(),
        Some("label name \"x\" is not unique: invalid sample")
    );
    assert_eq!((r.samples_scraped, r.samples_post_relabel), (1, 0));
    assert!(value_of(&b, "a").is_none());
    // The target's job replaces both exposed ones (honor_labels false).
    let (b, r) = st.on_body(b"b{job=\"1\",job=\"2\"} 1\n", None, 2000, 0.1);
    assert_eq!(r.error, None);
    let row = rows(&b)
        .into_iter()
        .find(|(s, _, _)| s.starts_with("{__name__=\"b\""))
        .unwrap();
    assert!(row.0.contains("job=\"j\""), "{row:?}");
    // Validity comes first, as in Prometheus.
    let (_, r) = st.on_body(b"  w{x=\"1\",x=\"2\"} 1\n", None, 3000, 0.1);
    assert!(
        r.error
            .as_deref()
            .unwrap()
            .starts_with("invalid metric name or label names"),
        "{r:?}"
    );
}

/// The metadata a batch carries, as `name type help unit` lines.
fn metadata_of(b: &ScrapeBatch) -> Vec<String> {
    b.metadata
        .as_ref()
        .expect("a scrape batch carries the metadata")
        .metrics
        .iter()
        .map(|m| format!("{} {} {:?} {:?}", m.metric, m.kind, m.help, m.unit))
        .collect()
}

#[test]
fn metadata_is_kept_per_family_and_survives_a_failed_scrape() {
    let mut st = TargetState::new(spec(default_pool()));
    let body = b"# HELP a_total Requests \\ served.\n# TYPE a_total counter\na_total 1\n# TYPE b untyped\nb 2\n";
    let (b1, _) = st.on_body(body, None, 1000, 0.1);
    assert_eq!(
        metadata_of(&b1),
        [
            r#"a_total counter "Requests \\ served." """#,
            r#"b unknown "" """#
        ]
    );
    // A HELP that changes, then a parse error: what was read before the
    // error is kept (Prometheus does not roll metadata back).
    let (b2, r) = st.on_body(b"# HELP b now\nb{ 1\n", None, 2000, 0.1);
    assert!(r.error.is_some());
    assert_eq!(
        metadata_of(&b2),
        [
            r#"a_total counter "Requests \\ served." """#,
            r#"b unknown "now" """#
        ]
    );
    let (b3, _) = st.on_error("down".into(), 3000, 0.1);
    assert!(Arc::ptr_eq(
        b2.metadata.as_ref().unwrap(),
        b3.metadata.as_ref().unwrap()
    ));
    let end = st.end_of_run(4000);
    assert!(
        end.metadata.as_ref().unwrap().metrics.is_empty(),
        "a target that left forgets its metadata"
    );
}

#[test]
fn openmetrics_units_and_a_replacing_loop_keep_metadata() {
    let mut old = TargetState::new(spec(default_pool()));
    let om = "application/openmetrics-text; version=1.0.0";
    let body = b"# TYPE d_seconds gauge\n# UNIT d_seconds seconds\nd_seconds 1\n# EOF\n";
    let (b1, _) = old.on_body(body, Some(om), 1000, 0.1);
    assert_eq!(metadata_of(&b1), [r#"d_seconds gauge "" "seconds""#]);
    let mut new = TargetState::new(spec(default_pool()));
    new.inherit(old.into_inherited());
    let (b2, _) = new.on_body(b"d_seconds 2\n", None, 2000, 0.1);
    assert!(
        Arc::ptr_eq(b1.metadata.as_ref().unwrap(), b2.metadata.as_ref().unwrap()),
        "unchanged: the same snapshot, not sent again"
    );
}

#[test]
fn an_empty_body_flushes_no_cache() {
    let mut st = TargetState::new(spec(default_pool()));
    st.on_body(b"a 1\n", None, 1000, 0.1);
    let (_, r) = st.on_body(b"", None, 2000, 0.1);
    assert_eq!(r.error, None);
    let (_, r) = st.on_body(b"a 1\n", None, 3000, 0.1);
    assert_eq!(
        r.series_added, 0,
        "Prometheus flushes its scrape cache only after a non-empty scrape"
    );
}

/// A protobuf body: a native histogram family (`n`, one metric per count
/// given; counts below 3 fail 2.42's validation, the buckets holding 3)
/// and a gauge.
fn native_body(counts: &[u64]) -> Vec<u8> {
    use scrapegrid_proto::prometheus_client as cpb;
    use scrapegrid_proto::prost::Message;
    let metric = |i: usize, count: u64| cpb::Metric {
        label: vec![cpb::LabelPair {
            name: b"i".to_vec(),
            value: i.to_string().into_bytes(),
        }],
        histogram: Some(Box::new(cpb::Histogram {
            sample_count: count,
            sample_sum: 1.0,
            schema: 0,
            zero_threshold: 0.001,
            positive_span: vec![cpb::BucketSpan {
                offset: 0,
                length: 2,
            }],
            positive_delta: vec![1, 1],
            ..Default::default()
        })),
        ..Default::default()
    };
    let families = [
        cpb::MetricFamily {
            name: b"n".to_vec(),
            help: Vec::new(),
            r#type: cpb::MetricType::Histogram as i32,
            metric: counts
                .iter()
                .enumerate()
                .map(|(i, &c)| metric(i, c))
                .collect(),
        },
        cpb::MetricFamily {
            name: b"g".to_vec(),
            help: Vec::new(),
            r#type: cpb::MetricType::Gauge as i32,
            metric: vec![cpb::Metric {
                gauge: Some(Box::new(cpb::Gauge { value: 1.0 })),
                ..Default::default()
            }],
        },
    ];
    families
        .iter()
        .flat_map(|f| f.encode_length_delimited_to_vec())
        .collect()
}

const PROTOBUF: Option<&str> = Some(
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
);

#[test]
fn native_histograms_go_into_the_batch_when_scraped() {
    let mut pool = default_pool();
    pool.native_histograms = true;
    // The sample limit counts float samples only, as 2.42's.
    pool.sample_limit = 1;
    let mut st = TargetState::new(spec(pool));
    let (b, r) = st.on_body(&native_body(&[3, 4]), PROTOBUF, 1000, 0.1);
    assert_eq!(r.error, None);
    assert_eq!(b.histograms.len(), 2);
    let (series, h) = &b.histograms[1];
    assert_eq!(
        series.labels.to_string(),
        r#"{__name__="n", i="1", instance="h:1", job="j"}"#
    );
    assert_eq!(h.timestamp, 1000);
    assert_eq!(value_of(&b, "g"), Some(1.0));
    assert_eq!(value_of(&b, "scrape_samples_scraped"), Some(3.0));
    assert_eq!(
        value_of(&b, "scrape_samples_post_metric_relabeling"),
        Some(3.0)
    );
    assert_eq!(value_of(&b, "scrape_series_added"), Some(3.0));

    // A histogram that fails validation fails the scrape with 2.42's text;
    // the series of the last good scrape go stale, histograms included.
    let (b, r) = st.on_body(&native_body(&[3, 2]), PROTOBUF, 2000, 0.1);
    assert_eq!(
        r.error.as_deref(),
        Some("3 observations found in buckets, but the Count field is 2: histogram's observation count should be at least the number of observations found in the buckets")
    );
    assert_eq!(value_of(&b, "up"), Some(0.0));
    assert!(b.histograms.is_empty());
    let stale: Vec<String> = (0..b.len())
        .filter(|&i| is_stale_marker(b.values[i]))
        .map(|i| b.series[i].labels.get("__name__").unwrap().to_string())
        .collect();
    assert_eq!(stale.iter().filter(|n| *n == "n").count(), 2, "{stale:?}");
}

#[test]
fn native_histograms_fail_the_scrape_when_not_scraped() {
    let mut st = TargetState::new(spec(default_pool()));
    let (b, r) = st.on_body(&native_body(&[3]), PROTOBUF, 1000, 0.1);
    assert_eq!(r.error.as_deref(), Some("native histograms are disabled"));
    assert!(b.histograms.is_empty());
    assert_eq!(value_of(&b, "up"), Some(0.0));
}
