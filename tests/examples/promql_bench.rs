//! PromQL latency and memory, the storage node beside Prometheus 2.42 on
//! the same data in one run (`bench/promql-vs-prometheus.sh` builds the
//! release binaries and runs this).
//!
//! `QUERIES` (a substring of the query names) runs only some queries.
//!
//! Both receive one remote-written dataset: `COUNTERS` counters (default
//! 10,000) and `HISTOGRAMS` classic histograms of 12 buckets (default
//! 1,000) for `HOURS` (default 24), `GAUGES` gauges in 50 groups (default
//! 100,000) for the last `GAUGE_HOURS` of them (default 2), one sample a
//! minute. Each query then runs `RUNS` times (default 5)
//! against each, alternating between them; printed per query: the median
//! latency with its range, how far the server's RSS rose during the runs
//! above where it was before them (sampled every 5 ms from
//! `/proc/<pid>/status`), the median CPU time the server used per run (all
//! its threads, from `/proc/<pid>/stat`, 10 ms resolution), the highest
//! RSS of the server while the runs went on (what it holds plus what the
//! query needed), and the our/Prometheus latency ratio. The queries start
//! once the storage node's compactor has moved the load into chunks, as a
//! node that has run for the loaded hours would hold it (`SETTLE=0` skips
//! the wait, for the smoke run in CI). `HOLD=1` keeps both servers up
//! after the table, for a profiler, until Ctrl-C.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use scrapegrid_tests::promql::{api, compare, labels, Dataset, GenSeries, Pair};

/// A query to time: its name, the API path and the parameters.
type Query<'a> = (&'a str, &'a str, Vec<(&'a str, String)>);

fn env(name: &str, default: i64) -> i64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU time `pid` has used so far (user + system, all threads).
fn cpu_time(pid: i32) -> Duration {
    // Fields 14 and 15 of /proc/<pid>/stat, after the command in parentheses.
    let ticks = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
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

/// One answer: how long it took, the server's RSS before it and at its
/// peak while it ran (KB), and the answer.
struct Run {
    latency: Duration,
    /// CPU time the server used meanwhile.
    cpu: Duration,
    base_kb: u64,
    peak_kb: u64,
    answer: serde_json::Value,
}

/// Runs `params` against `addr` once, sampling the RSS of `pid` every 5 ms
/// meanwhile.
async fn run_once(
    http: &reqwest::Client,
    addr: &str,
    pid: i32,
    path: &str,
    params: &[(&str, String)],
) -> Result<Run> {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let base = rss_kb(pid);
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let peak = std::sync::Arc::new(AtomicU64::new(base));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kb(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let (start, cpu_start) = (Instant::now(), cpu_time(pid));
    let answer = api(http, addr, path, params).await;
    let latency = start.elapsed();
    let cpu = cpu_time(pid).saturating_sub(cpu_start);
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let answer = answer?;
    anyhow::ensure!(answer["status"] == "success", "{addr}: {answer}");
    Ok(Run {
        latency,
        cpu,
        base_kb: base,
        peak_kb: peak.load(Ordering::Relaxed),
        answer,
    })
}

/// The runs of one system: latencies sorted, the RSS before the first run,
/// the highest RSS of any, the last answer.
#[derive(Default)]
struct Runs {
    latencies: Vec<Duration>,
    cpus: Vec<Duration>,
    base_kb: Option<u64>,
    peak_kb: u64,
    answer: serde_json::Value,
}

impl Runs {
    fn add(&mut self, run: Run) {
        self.latencies.push(run.latency);
        self.latencies.sort();
        self.cpus.push(run.cpu);
        self.cpus.sort();
        self.base_kb.get_or_insert(run.base_kb);
        self.peak_kb = self.peak_kb.max(run.peak_kb);
        self.answer = run.answer;
    }

    /// How far the runs took the RSS above where it was before the first,
    /// in MB: the memory the query needed on top of what the server held.
    /// (A server that keeps freed memory, as Go's runtime does for
    /// minutes, shows only what it needed beyond what earlier queries
    /// left it.)
    fn growth_mb(&self) -> f64 {
        self.peak_kb.saturating_sub(self.base_kb.unwrap_or(0)) as f64 / 1024.0
    }

    fn median_ms(&self) -> f64 {
        self.latencies[self.latencies.len() / 2].as_secs_f64() * 1000.0
    }

    /// The median CPU time per run, in ms (10 ms resolution).
    fn median_cpu_ms(&self) -> f64 {
        self.cpus[self.cpus.len() / 2].as_secs_f64() * 1000.0
    }

    /// "median (min-max)" in ms.
    fn spread(&self) -> String {
        let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
        format!(
            "{:.1} ({:.0}-{:.0})",
            self.median_ms(),
            ms(&self.latencies[0]),
            ms(&self.latencies[self.latencies.len() - 1])
        )
    }
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
    // The gauges serve an instant query: their last hours are enough, and
    // loading 100,000 of them for a day would take most of the run.
    let gauge_points = (env("GAUGE_HOURS", 2) * 60).clamp(1, points);
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
        series.push(GenSeries {
            labels: l,
            samples,
            histograms: Vec::new(),
        });
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
        let samples = (points - gauge_points..points)
            .map(|k| (ts(k), ((k + i) % 97) as f64))
            .collect();
        series.push(GenSeries {
            labels: l,
            samples,
            histograms: Vec::new(),
        });
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
            series.push(GenSeries {
                labels: l,
                samples,
                histograms: Vec::new(),
            });
        }
    }
    let total: usize = series.iter().map(|s| s.samples.len()).sum();
    println!(
        "dataset: {} series, {total} samples ({hours} h at 60 s, gauges the last {} h)",
        series.len(),
        gauge_points / 60
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
    println!(
        "\n| query | prometheus ms, median (min-max) | scrapegrid ms, median (min-max) | latency ratio | prometheus CPU ms | scrapegrid CPU ms | prometheus RSS rise MB | scrapegrid RSS rise MB | prometheus peak RSS MB | scrapegrid peak RSS MB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let only = std::env::var("QUERIES").unwrap_or_default();
    for (name, path, params) in queries.iter().filter(|q| q.0.contains(only.as_str())) {
        // Alternating, so that whatever else the machine does falls on both.
        let (mut p, mut s) = (Runs::default(), Runs::default());
        for _ in 0..runs {
            p.add(run_once(&http, &prometheus.addr, prometheus.pid(), path, params).await?);
            s.add(run_once(&http, http_addr, storage.pid(), path, params).await?);
        }
        // The figures mean something only if both answered the same.
        let series = p.answer["data"]["result"].as_array().map_or(0, Vec::len);
        anyhow::ensure!(series > 0, "{name}: Prometheus found no series");
        if let Some(diff) = compare(&p.answer, &s.answer, false) {
            anyhow::bail!("{name}: the answers differ: {diff}");
        }
        println!(
            "| {name} | {} | {} | {:.2} | {:.0} | {:.0} | {:.1} | {:.1} | {:.0} | {:.0} |",
            p.spread(),
            s.spread(),
            s.median_ms() / p.median_ms().max(1e-6),
            p.median_cpu_ms(),
            s.median_cpu_ms(),
            p.growth_mb(),
            s.growth_mb(),
            p.peak_kb as f64 / 1024.0,
            s.peak_kb as f64 / 1024.0,
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
