//! Native histograms by remote write (`send_native_histograms`): native
//! histograms written into the storage node reach an endpoint that sends
//! them each once, in order per series, as they were stored (a recording
//! receiver) and Prometheus 2.42 with native histograms enabled, which
//! then answers queries over them as the node does; an endpoint without
//! `send_native_histograms` gets the float samples and no histogram.

use std::collections::BTreeMap;

use scrapegrid_proto::prometheus as prom;
use scrapegrid_tests::eventually;
use scrapegrid_tests::prometheus::Prometheus;
use scrapegrid_tests::remote_receiver::{series_key, Receiver};

use super::{labels, metric, now_ms, start_node, write, DEADLINE};

/// Histogram `k` of series `i`: counts grow with `k`, a bucket appears at
/// `k == 3`, series 1 is a float histogram.
fn histogram(i: usize, k: i64, t: i64) -> prom::Histogram {
    let n = (k + 1) as u64;
    let mut h = prom::Histogram {
        sum: 1.25 * n as f64,
        schema: 1,
        zero_threshold: 0.001,
        positive_spans: vec![prom::BucketSpan {
            offset: -1,
            length: if k >= 3 { 3 } else { 2 },
        }],
        timestamp: t,
        ..Default::default()
    };
    let buckets: Vec<u64> = (0..h.positive_spans[0].length as u64)
        .map(|b| n * (b + 1))
        .collect();
    let total: u64 = buckets.iter().sum::<u64>() + n;
    if i == 1 {
        h.count = Some(prom::histogram::Count::CountFloat(total as f64 / 2.0));
        h.zero_count = Some(prom::histogram::ZeroCount::ZeroCountFloat(n as f64 / 2.0));
        h.positive_counts = buckets.iter().map(|&c| c as f64 / 2.0).collect();
    } else {
        h.count = Some(prom::histogram::Count::CountInt(total));
        h.zero_count = Some(prom::histogram::ZeroCount::ZeroCountInt(n));
        h.positive_deltas =
            scrapegrid_common::histogram::deltas_of(buckets.iter().map(|&c| c as i64));
    }
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_histograms_are_sent_when_asked() {
    let with = Receiver::start().await.unwrap();
    let without = Receiver::start().await.unwrap();
    let pdir = tempfile::tempdir().unwrap();
    let pconfig = pdir.path().join("prometheus.yml");
    std::fs::write(&pconfig, "global: {}\n").unwrap();
    let prometheus = Prometheus::start_with(
        &pconfig,
        &[
            "--web.enable-remote-write-receiver",
            "--enable-feature=native-histograms",
        ],
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "remote_write:
  - url: {}
    name: with
    send_native_histograms: true
    queue_config: {{batch_send_deadline: 200ms, max_samples_per_send: 4}}
    metadata_config: {{send: false}}
  - url: http://{}/api/v1/write
    name: prometheus
    send_native_histograms: true
    queue_config: {{batch_send_deadline: 200ms}}
    metadata_config: {{send: false}}
  - url: {}
    name: without
    queue_config: {{batch_send_deadline: 200ms}}
    metadata_config: {{send: false}}
",
        with.url, prometheus.addr, without.url
    );
    let node = start_node(dir.path(), &config, &[]).await;

    // Three writes of two histogram series and a float series, one
    // sample each per 15 s.
    let t0 = now_ms() / 1000 * 1000 - 10 * 60_000;
    let mut sent: BTreeMap<String, Vec<prom::Histogram>> = BTreeMap::new();
    for w in 0..3 {
        let mut series = Vec::new();
        for i in 0..2 {
            let hs: Vec<prom::Histogram> = (0..4)
                .map(|k| {
                    let k = w * 4 + k;
                    histogram(i, k, t0 + 15_000 * k)
                })
                .collect();
            let l = labels(&[("__name__", "nh_egress"), ("series", &i.to_string())]);
            sent.entry(series_key(&l)).or_default().extend(hs.clone());
            series.push(prom::TimeSeries {
                labels: l,
                histograms: hs,
                ..Default::default()
            });
        }
        series.push(prom::TimeSeries {
            labels: labels(&[("__name__", "plain")]),
            samples: (0..4)
                .map(|k| prom::Sample {
                    timestamp: t0 + 15_000 * (w * 4 + k),
                    value: (w * 4 + k) as f64,
                })
                .collect(),
            ..Default::default()
        });
        write(&node, series).await;
    }

    let by_series = |rx: &Receiver| {
        let mut m: BTreeMap<String, Vec<prom::Histogram>> = BTreeMap::new();
        for (k, h) in rx.histograms() {
            m.entry(k).or_default().push(h);
        }
        m
    };
    eventually(DEADLINE, || async {
        (by_series(&with) == sent && without.samples().len() == 12).then_some(())
    })
    .await
    .unwrap_or_else(|_| panic!("received {:?}", by_series(&with).keys()));
    assert!(without.histograms().is_empty(), "histograms sent unasked");
    assert_eq!(
        metric(&node, "scrapegrid_storage_histograms_appended_total").await,
        24.0,
        "every histogram written is counted"
    );
    // The two endpoints that send histograms accept 24 each.
    eventually(DEADLINE, || async {
        let sent = metric(&node, "scrapegrid_storage_remote_write_histograms_total").await;
        (sent == 48.0).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(with.samples().len(), 12, "the float samples go too");

    // Prometheus stored what it was sent: its answers equal the node's.
    let at = format!("{:.3}", (t0 + 15_000 * 11) as f64 / 1000.0);
    for q in [
        "nh_egress",
        "nh_egress[3m]",
        "histogram_quantile(0.9, rate(nh_egress[1m]))",
        "sum(nh_egress)",
    ] {
        let params = [("query", q.to_string()), ("time", at.clone())];
        let node_answer = reqwest::Client::new()
            .get(format!("http://{}/api/v1/query", node.http))
            .query(&params)
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap();
        let prom_answer = eventually(DEADLINE, || async {
            let a = prometheus.api().get("/api/v1/query", &params).await.ok()?;
            (a == node_answer["data"]).then_some(a)
        })
        .await;
        assert!(
            prom_answer.is_ok(),
            "{q}: prometheus differs from the node's {node_answer}"
        );
    }
}
