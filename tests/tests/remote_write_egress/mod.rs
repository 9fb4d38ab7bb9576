//! Remote write egress of the storage node (`--config` with a
//! `remote_write` section). `receivers`: what the node stores reaches real
//! receivers (Prometheus 2.42 with `--web.enable-remote-write-receiver`,
//! VictoriaMetrics 1.79) with external labels and `write_relabel_configs`
//! applied, also across an outage of the receiver and a `kill -9` of the
//! node. `queue`: against a recording receiver, every sample arrives
//! exactly once and in order per series across an outage and a `kill -9`;
//! refusals and the disk bound drop samples and count every one; shards
//! grow for a slow endpoint; `remote_write` reloads without a restart.
//! `metadata` and `exemplars`: a cluster sends the targets' metadata and
//! its exemplars as Prometheus does.
//!
//! Samples enter the node through its own remote-write endpoint (each
//! request one atomic write), so a test knows every sample in advance.
//! This file holds what both share.

mod exemplars;
mod histograms;
mod metadata;
mod queue;
mod receivers;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use prost::Message;
use scrapegrid_proto::prometheus as prom;
use scrapegrid_tests::prometheus::Prometheus;
use scrapegrid_tests::remote_receiver::{series_key, Receiver};
use scrapegrid_tests::{eventually, start_storage_with, Process, StorageNode};

pub(super) const DEADLINE: Duration = Duration::from_secs(60);

pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

pub(super) fn labels(pairs: &[(&str, &str)]) -> Vec<prom::Label> {
    pairs
        .iter()
        .map(|(n, v)| prom::Label {
            name: n.to_string(),
            value: v.to_string(),
        })
        .collect()
}

/// The samples of one write: `series` series of metric `name`, `n` samples
/// each from `t0` every second, values that never repeat.
pub(super) fn block(name: &str, series: usize, t0: i64, n: usize) -> Vec<prom::TimeSeries> {
    (0..series)
        .map(|i| prom::TimeSeries {
            labels: labels(&[("__name__", name), ("instance", &i.to_string())]),
            samples: (0..n)
                .map(|k| prom::Sample {
                    timestamp: t0 + 1000 * k as i64,
                    value: value(t0 + 1000 * k as i64, i),
                })
                .collect(),
            ..Default::default()
        })
        .collect()
}

/// The value of series `i` at `t`: never the same twice, and exact in
/// VictoriaMetrics (which keeps about 12 significant digits).
pub(super) fn value(t: i64, i: usize) -> f64 {
    ((t / 1000) % 100_000) as f64 * 1.5 + i as f64
}

/// Remote-writes `series` into the node and expects 204.
pub(super) async fn write(node: &StorageNode, series: Vec<prom::TimeSeries>) {
    let body = prom::WriteRequest {
        timeseries: series,
        ..Default::default()
    }
    .encode_to_vec();
    let body = snap::raw::Encoder::new().compress_vec(&body).unwrap();
    let resp = reqwest::Client::new()
        .post(format!("http://{}/api/v1/write", node.http))
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        204,
        "{}",
        resp.text().await.unwrap()
    );
}

/// The sum of every series of metric `name` on the node's `/metrics`.
pub(super) async fn metric(node: &StorageNode, name: &str) -> f64 {
    let text = reqwest::get(format!("http://{}/metrics", node.http))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The result vector of instant query `q` on Prometheus at `at`.
pub(super) async fn prometheus_query(
    prometheus: &Prometheus,
    q: &str,
    at: &str,
) -> Vec<serde_json::Value> {
    let r = prometheus
        .api()
        .get(
            "/api/v1/query",
            &[("query", q.to_string()), ("time", at.to_string())],
        )
        .await
        .unwrap();
    r["result"].as_array().unwrap().clone()
}

/// Waits until Prometheus holds `series` series of `metric`, each with
/// `samples` samples in the hour before `at`; returns them.
pub(super) async fn series_with_counts(
    prometheus: &Prometheus,
    metric: &str,
    at: &str,
    series: usize,
    samples: i64,
) -> Vec<serde_json::Value> {
    let want = samples.to_string();
    eventually(DEADLINE, || async {
        let q = format!("count_over_time({metric}[1h])");
        let r = prometheus
            .api()
            .get("/api/v1/query", &[("query", q), ("time", at.to_string())])
            .await
            .ok()?;
        let r = r["result"].as_array()?.clone();
        let all = r.len() == series && r.iter().all(|s| s["value"][1] == want.as_str());
        all.then_some(r)
    })
    .await
    .unwrap()
}

pub(super) async fn start_node(dir: &Path, config: &str, extra: &[&str]) -> StorageNode {
    let file = dir.join("storage.yml");
    std::fs::write(&file, config).unwrap();
    let file = file.display().to_string();
    let mut args = vec!["--config", file.as_str()];
    args.extend_from_slice(extra);
    start_storage_with(dir, "storage-node", &args)
        .await
        .unwrap()
}

/// Starts the node again on its data and addresses after a `kill -9`.
pub(super) async fn restart(dir: &Path, node: &mut StorageNode) {
    node.process.kill9();
    let mut p = Process::spawn(
        "storage-node",
        &scrapegrid_tests::bin("storage-node"),
        &node.args,
        dir,
    )
    .unwrap();
    p.listening("http").await.unwrap();
    scrapegrid_tests::wait_healthy(&reqwest::Client::new(), &node.http)
        .await
        .unwrap();
    node.process = p;
}

pub(super) fn recorder_config(url: &str, queue: &str) -> String {
    format!("remote_write:\n  - url: {url}\n    name: recorder\n    queue_config: {{{queue}}}\n")
}

/// Every (series, timestamp) of `series` as the recorder keys it.
pub(super) fn keys_of(series: &[prom::TimeSeries]) -> BTreeSet<(String, i64)> {
    series
        .iter()
        .flat_map(|s| {
            let k = series_key(&s.labels);
            s.samples.iter().map(move |x| (k.clone(), x.timestamp))
        })
        .collect()
}

/// Prometheus 2.42 and a scrapegrid cluster (its storage node sending by
/// `--config`) scraping under the same config, each sending to a receiver
/// of its own (`rx`) and to a second one (`quiet`) with other settings.
pub(super) struct SideBySide {
    /// Kept running for the test's length.
    _prom: Prometheus,
    _cluster: scrapegrid_tests::Cluster,
    /// Prometheus's receivers.
    pub p_rx: Receiver,
    pub p_quiet: Receiver,
    /// scrapegrid's receivers.
    pub s_rx: Receiver,
    pub s_quiet: Receiver,
    _dir: tempfile::TempDir,
}

/// Starts a [`SideBySide`]; `config(rx, quiet)` writes the config of each
/// side, `prom_flags` are Prometheus's extra flags.
pub(super) async fn side_by_side(
    config: impl Fn(&str, &str) -> String,
    prom_flags: &[&str],
) -> SideBySide {
    let receiver = || async { Receiver::start().await.unwrap() };
    let (p_rx, p_quiet, s_rx, s_quiet) = (
        receiver().await,
        receiver().await,
        receiver().await,
        receiver().await,
    );
    let dir = tempfile::tempdir().unwrap();
    let p_file = dir.path().join("prometheus.yml");
    std::fs::write(&p_file, config(&p_rx.url, &p_quiet.url)).unwrap();
    let prom = Prometheus::start_with(&p_file, prom_flags).await.unwrap();
    let s_yaml = config(&s_rx.url, &s_quiet.url);
    let s_file = dir.path().join("scrapegrid.yml");
    std::fs::write(&s_file, &s_yaml).unwrap();
    let s_path = s_file.display().to_string();
    let cluster = scrapegrid_tests::Cluster::builder()
        .config(&s_yaml)
        .extra_args(&["--config", &s_path], &[], &[])
        .build()
        .await
        .unwrap();
    SideBySide {
        _prom: prom,
        _cluster: cluster,
        p_rx,
        p_quiet,
        s_rx,
        s_quiet,
        _dir: dir,
    }
}
