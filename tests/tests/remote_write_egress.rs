//! Remote write egress of the storage node (`--config` with a
//! `remote_write` section): what the node stores reaches real receivers
//! (Prometheus 2.42 with `--web.enable-remote-write-receiver`,
//! VictoriaMetrics 1.79) with external labels and `write_relabel_configs`
//! applied, and reaches a recording receiver exactly once and in order per
//! series across a receiver outage and a `kill -9` of the node; refusals
//! and the disk bound drop samples and count every one.
//!
//! Samples enter the node through its own remote-write endpoint (each
//! request one atomic write), so a test knows every sample in advance.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use prost::Message;
use scrapegrid_proto::prometheus as prom;
use scrapegrid_proto::STALE_NAN_BITS;
use scrapegrid_tests::prometheus::Prometheus;
use scrapegrid_tests::remote_receiver::{series_key, Receiver};
use scrapegrid_tests::victoria::VictoriaMetrics;
use scrapegrid_tests::{eventually, start_storage_with, Process, StorageNode};

const DEADLINE: Duration = Duration::from_secs(60);

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn labels(pairs: &[(&str, &str)]) -> Vec<prom::Label> {
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
fn block(name: &str, series: usize, t0: i64, n: usize) -> Vec<prom::TimeSeries> {
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
fn value(t: i64, i: usize) -> f64 {
    ((t / 1000) % 100_000) as f64 * 1.5 + i as f64
}

/// The HTTP address of a storage node, for writes that outlive a borrow.
struct StorageNodeAddr(String);

impl From<&StorageNode> for StorageNodeAddr {
    fn from(n: &StorageNode) -> Self {
        Self(n.http.clone())
    }
}

/// Remote-writes `series` into the node and expects 204.
async fn write(node: impl Into<StorageNodeAddr>, series: Vec<prom::TimeSeries>) {
    let node = node.into();
    let body = prom::WriteRequest {
        timeseries: series,
        ..Default::default()
    }
    .encode_to_vec();
    let body = snap::raw::Encoder::new().compress_vec(&body).unwrap();
    let resp = reqwest::Client::new()
        .post(format!("http://{}/api/v1/write", node.0))
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
async fn metric(node: &StorageNode, name: &str) -> f64 {
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

/// Waits until Prometheus holds `series` series of `metric`, each with
/// `samples` samples in the hour before `at`; returns them.
async fn series_with_counts(
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

async fn start_node(dir: &Path, config: &str, extra: &[&str]) -> StorageNode {
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
async fn restart(dir: &Path, node: &mut StorageNode) {
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

fn recorder_config(url: &str, queue: &str) -> String {
    format!("remote_write:\n  - url: {url}\n    name: recorder\n    queue_config: {{{queue}}}\n")
}

/// Every (series, timestamp) of `series` as the recorder keys it.
fn keys_of(series: &[prom::TimeSeries]) -> BTreeSet<(String, i64)> {
    series
        .iter()
        .flat_map(|s| {
            let k = series_key(&s.labels);
            s.samples.iter().map(move |x| (k.clone(), x.timestamp))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_samples_reach_prometheus_and_victoriametrics() {
    let dir = tempfile::tempdir().unwrap();
    let prom_config = dir.path().join("receiver.yml");
    std::fs::write(&prom_config, "global: {}\n").unwrap();
    let prometheus = Prometheus::start_with(&prom_config, &["--web.enable-remote-write-receiver"])
        .await
        .unwrap();
    let vm = VictoriaMetrics::start().await.unwrap();
    let config = format!(
        "global:\n  external_labels: {{cluster: c1, instance: from_global}}\nremote_write:\n\
         \x20 - url: http://{}/api/v1/write\n    name: prometheus\n    queue_config: {{batch_send_deadline: 200ms}}\n\
         \x20   write_relabel_configs:\n      - {{source_labels: [__name__], regex: 'dropme_.*', action: drop}}\n\
         \x20 - url: {}\n    name: vm\n    queue_config: {{max_samples_per_send: 7, batch_send_deadline: 200ms}}\n",
        prometheus.addr,
        vm.write_url()
    );
    let node = start_node(dir.path(), &config, &[]).await;

    let t0 = now_ms() / 1000 * 1000 - 600_000;
    let mut expected = Vec::new();
    for part in 0..4 {
        let b = block("egress_a", 5, t0 + part * 10_000, 10);
        expected.extend(b.clone());
        write(&node, b).await;
    }
    write(&node, block("dropme_x", 2, t0, 10)).await;
    // A stale marker ends instance 0.
    let mut stale = block("egress_a", 1, t0 + 40_000, 1);
    stale[0].samples[0].value = f64::from_bits(STALE_NAN_BITS);
    write(&node, stale).await;

    // Prometheus: 40 samples per series, the exact sums, the external
    // label added where the series has none, nothing of dropme_x.
    let at = (now_ms() / 1000).to_string();
    let expected_sum = |i: usize| -> f64 { (0..40).map(|k| value(t0 + 1000 * k as i64, i)).sum() };
    let got = series_with_counts(&prometheus, "egress_a", &at, 5, 40).await;
    for s in &got {
        assert_eq!(s["metric"]["cluster"], "c1", "{s}");
        assert_ne!(s["metric"]["instance"], "from_global", "{s}");
    }
    let sums = prometheus
        .api()
        .get(
            "/api/v1/query",
            &[
                ("query", "sum_over_time(egress_a[1h])".into()),
                ("time", at.clone()),
            ],
        )
        .await
        .unwrap();
    for s in sums["result"].as_array().unwrap() {
        let i: usize = s["metric"]["instance"].as_str().unwrap().parse().unwrap();
        let v: f64 = s["value"][1].as_str().unwrap().parse().unwrap();
        assert_eq!(v, expected_sum(i), "{s}");
    }
    let dropped = prometheus
        .api()
        .get(
            "/api/v1/query",
            &[
                ("query", "count_over_time(dropme_x[1h])".into()),
                ("time", at.clone()),
            ],
        )
        .await
        .unwrap();
    assert_eq!(dropped["result"].as_array().unwrap().len(), 0, "{dropped}");

    // VictoriaMetrics (no relabeling there): every sample, bit for bit,
    // through requests of at most 7 samples.
    let exported = eventually(DEADLINE, || async {
        let e = vm.export(r#"{__name__=~"egress_a|dropme_x"}"#).await.ok()?;
        let complete = e.len() == 7
            && e.iter()
                .all(|(k, ts, _)| ts.len() >= if k.contains("dropme") { 10 } else { 40 });
        complete.then_some(e)
    })
    .await
    .unwrap();
    for s in &expected {
        let mut with_cluster = s.labels.clone();
        with_cluster.extend(labels(&[("cluster", "c1")]));
        let want = series_key(&with_cluster);
        let (_, ts, vs) = exported
            .iter()
            .find(|(k, _, _)| *k == want)
            .unwrap_or_else(|| panic!("{want} missing from {exported:?}"));
        let want_ts: Vec<i64> = expected
            .iter()
            .filter(|x| x.labels == s.labels)
            .flat_map(|x| x.samples.iter().map(|p| p.timestamp))
            .collect();
        assert_eq!(&ts[..40], want_ts.as_slice(), "{want}");
        let want_v: Vec<f64> = expected
            .iter()
            .filter(|x| x.labels == s.labels)
            .flat_map(|x| x.samples.iter().map(|p| p.value))
            .collect();
        assert_eq!(&vs[..40], want_v.as_slice(), "{want}");
    }
    assert_eq!(
        metric(
            &node,
            "scrapegrid_storage_remote_write_failed_samples_total"
        )
        .await,
        0.0
    );
    assert_eq!(
        metric(
            &node,
            "scrapegrid_storage_remote_write_dropped_samples_total"
        )
        .await,
        0.0
    );
    // Prometheus got 201 (5 x 40 and the stale marker; dropme_x is
    // relabeled away before sending), VictoriaMetrics 221.
    let sent = metric(&node, "scrapegrid_storage_remote_write_samples_total").await;
    assert_eq!(sent, 201.0 + 221.0, "samples sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acked_sample_arrives_once_in_order_across_an_outage_and_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start().await.unwrap();
    let config = recorder_config(
        &rx.url,
        "max_samples_per_send: 50, batch_send_deadline: 100ms, min_backoff: 10ms, max_backoff: 200ms",
    );
    let mut node = start_node(dir.path(), &config, &[]).await;
    let t0 = now_ms() / 1000 * 1000 - 1_800_000;
    let mut all = BTreeSet::new();
    let mut next = 0i64;
    let mut write_some = |n: usize| {
        let blocks: Vec<_> = (0..n)
            .map(|_| {
                let b = block("outage", 4, t0 + next * 10_000, 10);
                next += 1;
                b
            })
            .collect();
        for b in &blocks {
            all.extend(keys_of(b));
        }
        blocks
    };

    for b in write_some(3) {
        write(&node, b).await;
    }
    eventually(DEADLINE, || async {
        (rx.samples().len() == 120).then_some(())
    })
    .await
    .unwrap();
    let headers = rx.last_headers().unwrap();
    assert_eq!(headers["content-encoding"], "snappy");
    assert_eq!(headers["x-prometheus-remote-write-version"], "0.1.0");
    assert!(headers["user-agent"]
        .to_str()
        .unwrap()
        .starts_with("scrapegrid/"));

    // The receiver goes down; the node keeps storing and retrying.
    rx.set_status(503);
    let answered = rx.requests().1;
    for b in write_some(3) {
        write(&node, b).await;
    }
    eventually(DEADLINE, || async {
        (rx.requests().1 >= answered + 3).then_some(())
    })
    .await
    .unwrap();
    assert!(
        metric(
            &node,
            "scrapegrid_storage_remote_write_retried_samples_total"
        )
        .await
            > 0.0
    );

    // kill -9 with the queue full of unsent samples, then more writes.
    restart(dir.path(), &mut node).await;
    for b in write_some(3) {
        write(&node, b).await;
    }
    let answered = rx.requests().1;
    eventually(DEADLINE, || async {
        (rx.requests().1 > answered).then_some(())
    })
    .await
    .unwrap();
    rx.set_status(204);

    eventually(DEADLINE, || async {
        (rx.tally().0.len() == all.len()).then_some(())
    })
    .await
    .unwrap();
    // Nothing more comes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (count, unordered) = rx.tally();
    let got: BTreeSet<_> = count.keys().cloned().collect();
    assert_eq!(got, all, "lost or unexpected samples");
    let twice: Vec<_> = count.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "samples sent twice: {twice:?}");
    assert!(unordered.is_empty(), "series out of order: {unordered:?}");
    assert_eq!(rx.samples().len(), 360);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_the_disk_bound_drop_samples_and_count_them() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start().await.unwrap();
    let config = recorder_config(
        &rx.url,
        "max_samples_per_send: 1000, batch_send_deadline: 50ms, min_backoff: 10ms, max_backoff: 50ms",
    );
    let node = start_node(
        dir.path(),
        &config,
        &["--remote-write.max-disk-usage-per-url", "2KB"],
    )
    .await;
    let t0 = now_ms() / 1000 * 1000 - 1_800_000;

    // A 400 is final: the samples are counted as failed, and the queue
    // moves on to what comes next.
    rx.set_status(400);
    write(&node, block("refused", 4, t0, 10)).await;
    eventually(DEADLINE, || async {
        let failed = metric(
            &node,
            "scrapegrid_storage_remote_write_failed_samples_total",
        )
        .await;
        (failed == 40.0).then_some(())
    })
    .await
    .unwrap();
    rx.set_status(204);
    let b = block("accepted", 4, t0, 10);
    let want = keys_of(&b);
    write(&node, b).await;
    eventually(DEADLINE, || async {
        (rx.samples().len() == 40).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(rx.tally().0.keys().cloned().collect::<BTreeSet<_>>(), want);

    // Down, with 20 writes of about 450 bytes waiting: past 2 KiB the
    // oldest are dropped and counted; the rest arrive.
    rx.set_status(503);
    let mut written = BTreeSet::new();
    for k in 0..20 {
        let b = block("bounded", 4, t0 + k * 10_000, 10);
        written.extend(keys_of(&b));
        write(&node, b).await;
    }
    eventually(DEADLINE, || async {
        let dropped = metric(
            &node,
            "scrapegrid_storage_remote_write_dropped_samples_total",
        )
        .await;
        (dropped > 0.0).then_some(())
    })
    .await
    .unwrap();
    rx.set_status(204);
    let arrived = |rx: &Receiver| -> BTreeSet<(String, i64)> {
        rx.tally()
            .0
            .into_keys()
            .filter(|(k, _)| k.contains("bounded"))
            .collect()
    };
    eventually(DEADLINE, || async {
        let dropped = metric(
            &node,
            "scrapegrid_storage_remote_write_dropped_samples_total",
        )
        .await;
        (arrived(&rx).len() as f64 + dropped == written.len() as f64).then_some(())
    })
    .await
    .unwrap();
    let got = arrived(&rx);
    assert!(got.is_subset(&written));
    // What arrived is the newest: every dropped sample is older.
    let oldest_arrived = got.iter().map(|(_, t)| *t).min().unwrap();
    let dropped_newest = written.difference(&got).map(|(_, t)| *t).max().unwrap();
    assert!(
        dropped_newest < oldest_arrived,
        "{dropped_newest} >= {oldest_arrived}"
    );
    let bytes = metric(&node, "scrapegrid_storage_remote_write_pending_bytes").await;
    assert!(bytes <= 2048.0, "{bytes} pending bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_endpoint_gets_more_shards_and_each_series_stays_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start().await.unwrap();
    rx.set_delay(Duration::from_millis(40));
    let config = recorder_config(
        &rx.url,
        "max_samples_per_send: 20, min_shards: 1, max_shards: 8, batch_send_deadline: 50ms",
    );
    let node = start_node(dir.path(), &config, &[]).await;
    let t0 = now_ms() / 1000 * 1000 - 3_600_000;
    let mut all = BTreeSet::new();
    // 60 writes of 16 series x 5 samples: 4,800 samples, 240 requests of
    // 20, 9.6 s one at a time.
    for k in 0..60 {
        let b = block("slow", 16, t0 + k * 5_000, 5);
        all.extend(keys_of(&b));
        write(&node, b).await;
    }
    let most = std::sync::Mutex::new(0.0f64);
    eventually(DEADLINE, || async {
        let shards = metric(&node, "scrapegrid_storage_remote_write_shards").await;
        let mut m = most.lock().unwrap();
        *m = m.max(shards);
        (rx.tally().0.len() == all.len()).then_some(())
    })
    .await
    .unwrap();
    let most_shards = *most.lock().unwrap();
    assert!(most_shards >= 4.0, "shards never grew past {most_shards}");
    let (count, unordered) = rx.tally();
    assert!(count.values().all(|&n| n == 1), "a sample arrived twice");
    assert!(unordered.is_empty(), "series out of order: {unordered:?}");
    // With the backlog gone the queue shrinks back.
    eventually(DEADLINE, || async {
        (metric(&node, "scrapegrid_storage_remote_write_shards").await < most_shards).then_some(())
    })
    .await
    .unwrap();
}

/// A receiver process the outage tests stop and start again.
trait Outage {
    fn stop(&mut self);
    fn start_again(&mut self) -> impl std::future::Future<Output = ()>;
}

impl Outage for VictoriaMetrics {
    fn stop(&mut self) {
        VictoriaMetrics::stop(self).unwrap();
    }
    async fn start_again(&mut self) {
        VictoriaMetrics::start_again(self).await.unwrap();
    }
}

impl Outage for Prometheus {
    fn stop(&mut self) {
        Prometheus::stop(self).unwrap();
    }
    async fn start_again(&mut self) {
        Prometheus::start_again(self).await.unwrap();
    }
}

/// The outage choreography: a node with `config` takes writes of 8 series
/// x 10 samples of `name` (20 ms apart) while the receiver is up, stopped
/// (the node retries), after a `kill -9` and restart of the node, and with
/// the receiver back. Returns how many writes there were (their
/// timestamps start at `t0 + 10 s`, 10 s apart) and the node.
async fn outage_and_kill_9(
    dir: &Path,
    config: &str,
    name: &str,
    t0: i64,
    receiver: &mut impl Outage,
) -> (i64, StorageNode) {
    let mut node = start_node(dir, config, &[]).await;
    let mut k = 0i64;
    async fn write_for(node: &StorageNode, name: &str, t0: i64, k: &mut i64, rounds: usize) {
        for _ in 0..rounds {
            *k += 1;
            write(node, block(name, 8, t0 + *k * 10_000, 10)).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    write_for(&node, name, t0, &mut k, 10).await;
    receiver.stop();
    write_for(&node, name, t0, &mut k, 20).await;
    // Retries pile up against the stopped receiver, then kill -9.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let retried = metric(
        &node,
        "scrapegrid_storage_remote_write_retried_samples_total",
    )
    .await;
    assert!(retried > 0.0);
    restart(dir, &mut node).await;
    write_for(&node, name, t0, &mut k, 10).await;
    receiver.start_again().await;
    write_for(&node, name, t0, &mut k, 10).await;
    (k, node)
}

/// The issue's proof with a real receiver: VictoriaMetrics stops under
/// load, the node is killed with `kill -9` while VictoriaMetrics is down,
/// both come back, and VictoriaMetrics then holds every acked sample once,
/// in order (it keeps repeats of a timestamp, so a duplicate would show).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn victoriametrics_gets_every_sample_after_its_outage_and_a_kill_9_of_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let mut vm = VictoriaMetrics::start().await.unwrap();
    let config = recorder_config(
        &vm.write_url(),
        "max_samples_per_send: 100, batch_send_deadline: 100ms, min_backoff: 20ms, max_backoff: 300ms",
    );
    let t0 = now_ms() / 1000 * 1000 - 3_000_000;
    // The node stays up until the end: it still sends after the last write.
    let (k, _node) = outage_and_kill_9(dir.path(), &config, "vm_outage", t0, &mut vm).await;
    let written = 80 * k as usize;

    let exported = eventually(DEADLINE, || async {
        let e = vm.export("vm_outage").await.ok()?;
        let n: usize = e.iter().map(|(_, ts, _)| ts.len()).sum();
        (e.len() == 8 && n >= written).then_some(e)
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let exported = vm.export("vm_outage").await.unwrap_or(exported);
    for (series, ts, vs) in &exported {
        let i: usize = series
            .split("instance=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        let want: Vec<i64> = (1..=k)
            .flat_map(|k| (0..10).map(move |j| t0 + k * 10_000 + 1000 * j))
            .collect();
        assert_eq!(ts, &want, "{series}: lost, repeated or out of order");
        for (t, v) in ts.iter().zip(vs) {
            assert_eq!(*v, value(*t, i), "{series} at {t}");
        }
    }
}

/// The same with Prometheus 2.42 as the receiver: stopped under load, the
/// node killed with `kill -9` meanwhile, both back. Prometheus refuses a
/// sample out of order (400, which the node would count as failed) and
/// keeps one of exact repeats, so the proof is: nothing failed, and every
/// series holds exactly its samples with the exact sum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_gets_every_sample_after_its_outage_and_a_kill_9_of_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let receiver_config = dir.path().join("receiver.yml");
    std::fs::write(&receiver_config, "global: {}\n").unwrap();
    let mut prometheus =
        Prometheus::start_with(&receiver_config, &["--web.enable-remote-write-receiver"])
            .await
            .unwrap();
    let config = recorder_config(
        &format!("http://{}/api/v1/write", prometheus.addr),
        "max_samples_per_send: 100, batch_send_deadline: 100ms, min_backoff: 20ms, max_backoff: 300ms",
    );
    let t0 = now_ms() / 1000 * 1000 - 1_200_000;
    let (k, node) =
        outage_and_kill_9(dir.path(), &config, "prom_outage", t0, &mut prometheus).await;
    let at = (now_ms() / 1000).to_string();
    let counts = series_with_counts(&prometheus, "prom_outage", &at, 8, k * 10).await;
    assert_eq!(counts.len(), 8);
    let sums = prometheus
        .api()
        .get(
            "/api/v1/query",
            &[
                ("query", "sum_over_time(prom_outage[1h])".into()),
                ("time", at),
            ],
        )
        .await
        .unwrap();
    for s in sums["result"].as_array().unwrap() {
        let i: usize = s["metric"]["instance"].as_str().unwrap().parse().unwrap();
        let want: f64 = (1..=k)
            .flat_map(|k| (0..10).map(move |j| t0 + k * 10_000 + 1000 * j))
            .map(|t| value(t, i))
            .sum();
        let got: f64 = s["value"][1].as_str().unwrap().parse().unwrap();
        assert_eq!(got, want, "{s}");
    }
    assert_eq!(
        metric(
            &node,
            "scrapegrid_storage_remote_write_failed_samples_total"
        )
        .await,
        0.0
    );
}

/// `remote_write` changes without a restart: SIGHUP moves the queue to a
/// new endpoint (which gets what is stored from then on; the old one gets
/// nothing more), and `POST /-/reload` of an invalid file answers 500 with
/// the file, field and reason and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_write_reloads_on_sighup_and_post() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        Receiver::start().await.unwrap(),
        Receiver::start().await.unwrap(),
    );
    let queue = "batch_send_deadline: 50ms";
    let node = start_node(dir.path(), &recorder_config(&a.url, queue), &[]).await;
    let file = dir.path().join("storage.yml");
    let t0 = now_ms() / 1000 * 1000 - 600_000;
    write(&node, block("reload", 2, t0, 5)).await;
    eventually(DEADLINE, || async {
        (a.samples().len() == 10).then_some(())
    })
    .await
    .unwrap();

    let http = reqwest::Client::new();
    let reload = |h: &reqwest::Client| h.post(format!("http://{}/-/reload", node.http)).send();
    let r = reload(&http).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().await.unwrap().contains("unchanged"));

    std::fs::write(
        &file,
        recorder_config(&b.url, queue).replace("name: recorder", "name: b"),
    )
    .unwrap();
    unsafe { libc::kill(node.process.pid(), libc::SIGHUP) };
    eventually(DEADLINE, || async {
        let text = reqwest::get(format!("http://{}/metrics", node.http))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.contains("remote_name=\"b\"").then_some(())
    })
    .await
    .unwrap();
    write(&node, block("reload", 2, t0 + 10_000, 5)).await;
    eventually(DEADLINE, || async {
        (b.samples().len() == 10).then_some(())
    })
    .await
    .unwrap();
    assert!(
        b.samples().iter().all(|(_, t, _)| *t >= t0 + 10_000),
        "b got older samples"
    );
    assert_eq!(a.samples().len(), 10, "the removed endpoint got more");

    std::fs::write(&file, "remote_write:\n  - name: broken\n").unwrap();
    let r = reload(&http).await.unwrap();
    assert_eq!(r.status().as_u16(), 500);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("storage.yml")
            && text.contains("remote_write[0]")
            && text.contains("url for remote_write is empty"),
        "{text}"
    );
    write(&node, block("reload", 2, t0 + 20_000, 5)).await;
    eventually(DEADLINE, || async {
        (b.samples().len() == 20).then_some(())
    })
    .await
    .unwrap();
}
