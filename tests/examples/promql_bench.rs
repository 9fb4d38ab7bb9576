//! PromQL latency and memory, the storage node beside Prometheus 2.42 on
//! the same data in one run (`bench/promql-vs-prometheus.sh` builds the
//! release binaries and runs this).
//!
//! `QUERIES` (a substring of the query names) runs only some queries.
//!
//! Both receive one remote-written dataset: `COUNTERS` counters (default
//! 10,000), `GAUGES` gauges in 50 groups (default 100,000), `HISTOGRAMS`
//! classic histograms of 12 buckets (default 1,000), one sample a minute
//! for `HOURS` (default 24). Each query then runs `RUNS` times (default 5)
//! against each; printed per query: the median latency, the peak RSS
//! growth of the server while it ran (sampled every 5 ms from
//! `/proc/<pid>/status`), and our/Prometheus ratios. The queries start
//! once the storage node's compactor has moved the load into chunks, as a
//! node that has run for the loaded hours would hold it (`SETTLE=0` skips
//! the wait, for the smoke run in CI). `HOLD=1` keeps both servers up
//! after the table, for a profiler, until Ctrl-C.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use scrapegrid_tests::promql::{api, compare, Dataset, GenSeries, Pair};

/// A query to time: its name, the API path and the parameters.
type Query<'a> = (&'a str, &'a str, Vec<(&'a str, String)>);

fn env(name: &str, default: i64) -> i64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn labels(name: &str, pairs: &[(&str, String)]) -> Vec<(String, String)> {
    let mut l: Vec<(String, String)> = pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.clone()))
        .collect();
    l.push(("__name__".into(), name.into()));
    l.sort();
    l
}

fn rss_kb(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// What one system answered and how fast: the median latency, the peak RSS
/// growth in MB, and the last answer.
struct Measured {
    latency: Duration,
    peak_mb: f64,
    answer: serde_json::Value,
}

/// Runs `params` against `addr` `runs` times, timing each answer and
/// sampling the RSS of `pid` meanwhile.
async fn measure(
    http: &reqwest::Client,
    addr: &str,
    pid: i32,
    path: &str,
    params: &[(&str, String)],
    runs: usize,
) -> Result<Measured> {
    let mut times = Vec::new();
    let mut answer = serde_json::Value::Null;
    let base = rss_kb(pid);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(base));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(rss_kb(pid), std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    for _ in 0..runs {
        let start = Instant::now();
        let v = api(http, addr, path, params).await?;
        times.push(start.elapsed());
        anyhow::ensure!(v["status"] == "success", "{addr}: {v}");
        answer = v;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = sampler.join();
    times.sort();
    let growth = peak
        .load(std::sync::atomic::Ordering::Relaxed)
        .saturating_sub(base);
    Ok(Measured {
        latency: times[times.len() / 2],
        peak_mb: growth as f64 / 1024.0,
        answer,
    })
}

/// Reads a counter from the storage node's `/metrics`.
async fn counter(http: &reqwest::Client, addr: &str, name: &str) -> Result<f64> {
    let body = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .with_context(|| format!("{name} not on /metrics"))
}

/// Waits until the storage node is at rest as after hours of running: two
/// compaction rounds finished since now, the last of them with nothing
/// left to move (the load compacted into chunks, as a backfill would be).
async fn settle(http: &reqwest::Client, addr: &str) -> Result<()> {
    const ROUNDS: &str = "scrapegrid_storage_compaction_rounds_total";
    const SAMPLES: &str = "scrapegrid_storage_compacted_samples_total";
    let first = counter(http, addr, ROUNDS).await?;
    let (mut rounds, mut moved) = (first, counter(http, addr, SAMPLES).await?);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (r, m) = (
            counter(http, addr, ROUNDS).await?,
            counter(http, addr, SAMPLES).await?,
        );
        if r > rounds && r >= first + 2.0 && m == moved {
            return Ok(());
        }
        (rounds, moved) = (r, m);
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let (counters, gauges, histograms) = (
        env("COUNTERS", 10_000),
        env("GAUGES", 100_000),
        env("HISTOGRAMS", 1_000),
    );
    let (hours, runs) = (env("HOURS", 24), env("RUNS", 5) as usize);
    let step = 60_000;
    let points = hours * 60;
    let now = scrapegrid_tests::audit::now_ms();
    let t0 = (now - (hours * 60 + 10) * 60_000) / 60_000 * 60_000;
    let ts = |k: i64| t0 + k * step;
    let mut series = Vec::new();
    for i in 0..counters {
        let l = labels(
            "bench_requests_total",
            &[
                ("job", "bench".into()),
                ("instance", format!("i{i}")),
                ("shard", format!("s{}", i % 100)),
            ],
        );
        let samples = (0..points)
            .map(|k| (ts(k), (k * (i % 7 + 1)) as f64))
            .collect();
        series.push(GenSeries { labels: l, samples });
    }
    for i in 0..gauges {
        let l = labels(
            "bench_gauge",
            &[
                ("job", "bench".into()),
                ("instance", format!("g{i}")),
                ("group", format!("g{}", i % 50)),
            ],
        );
        let samples = (0..points)
            .map(|k| (ts(k), ((k + i) % 97) as f64))
            .collect();
        series.push(GenSeries { labels: l, samples });
    }
    let bounds = [
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
    ];
    for i in 0..histograms {
        for (b, le) in bounds.iter().enumerate() {
            let l = labels(
                "bench_latency_bucket",
                &[
                    ("job", "bench".into()),
                    ("instance", format!("h{i}")),
                    ("le", le.to_string()),
                ],
            );
            let samples = (0..points)
                .map(|k| (ts(k), (k * (b as i64 + 1) * (i % 3 + 1)) as f64))
                .collect();
            series.push(GenSeries { labels: l, samples });
        }
    }
    let total: usize = series.iter().map(|s| s.samples.len()).sum();
    println!(
        "dataset: {} series, {total} samples ({hours} h at 60 s)",
        series.len()
    );
    let data = Dataset { t0, series };

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()?;
    let pair = Pair::start(&http).await?;
    let (prometheus, storage, http_addr) =
        (&pair.prometheus, &pair.storage, pair.http_addr.as_str());
    for (name, url) in [
        (
            "prometheus",
            format!("http://{}/api/v1/write", prometheus.addr),
        ),
        ("scrapegrid", format!("http://{http_addr}/api/v1/write")),
    ] {
        let start = Instant::now();
        data.push(&http, &url, 5 * step)
            .await
            .with_context(|| format!("loading {name}"))?;
        println!("loaded {name} in {:.1} s", start.elapsed().as_secs_f64());
    }
    drop(data);
    if env("SETTLE", 1) != 0 {
        let start = Instant::now();
        settle(&http, http_addr).await?;
        println!(
            "storage node compacted the load in {:.1} s",
            start.elapsed().as_secs_f64()
        );
    }
    let end = t0 + (points - 1) * step;
    let at = ((end as f64) / 1000.0).to_string();
    let queries: Vec<Query<'_>> = vec![
        (
            "rate over counters",
            "/api/v1/query",
            vec![
                ("query", "rate(bench_requests_total[5m])".into()),
                ("time", at.clone()),
            ],
        ),
        (
            "sum by over gauges",
            "/api/v1/query",
            vec![
                ("query", "sum by (group) (bench_gauge)".into()),
                ("time", at.clone()),
            ],
        ),
        (
            "histogram_quantile",
            "/api/v1/query",
            vec![
                (
                    "query",
                    "histogram_quantile(0.9, rate(bench_latency_bucket[5m]))".into(),
                ),
                ("time", at.clone()),
            ],
        ),
        (
            "range sum by rate, 60 s step",
            "/api/v1/query_range",
            vec![
                (
                    "query",
                    "sum by (shard) (rate(bench_requests_total[5m]))".into(),
                ),
                ("start", ((t0 + 10 * 60_000) as f64 / 1000.0).to_string()),
                ("end", at.clone()),
                ("step", "60".into()),
            ],
        ),
    ];
    println!("\n| query | prometheus ms | scrapegrid ms | latency ratio | prometheus peak MB | scrapegrid peak MB |");
    println!("|---|---|---|---|---|---|");
    let only = std::env::var("QUERIES").unwrap_or_default();
    for (name, path, params) in queries.iter().filter(|q| q.0.contains(only.as_str())) {
        let p = measure(
            &http,
            &prometheus.addr,
            prometheus.pid(),
            path,
            params,
            runs,
        )
        .await?;
        let s = measure(&http, http_addr, storage.pid(), path, params, runs).await?;
        // The figures mean something only if both answered the same.
        let series = p.answer["data"]["result"].as_array().map_or(0, Vec::len);
        anyhow::ensure!(series > 0, "{name}: Prometheus found no series");
        if let Some(diff) = compare(&p.answer, &s.answer, false) {
            anyhow::bail!("{name}: the answers differ: {diff}");
        }
        println!(
            "| {name} | {:.1} | {:.1} | {:.2} | {:.1} | {:.1} |",
            p.latency.as_secs_f64() * 1000.0,
            s.latency.as_secs_f64() * 1000.0,
            s.latency.as_secs_f64() / p.latency.as_secs_f64().max(1e-9),
            p.peak_mb,
            s.peak_mb,
        );
    }
    if env("HOLD", 0) != 0 {
        // For profiling: keep both servers up with the data loaded.
        println!(
            "holding: prometheus {} (pid {}), storage node {http_addr} (pid {}); Ctrl-C ends",
            prometheus.addr,
            prometheus.pid(),
            storage.pid()
        );
        tokio::signal::ctrl_c().await?;
    }
    Ok(())
}
