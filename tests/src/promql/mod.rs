//! The PromQL differential harness: the same samples in real Prometheus 2.42
//! and in the storage node, the same queries to both, the answers compared.
//!
//! [`Dataset`] generates 50 minutes of deterministic series at 15 s (with a
//! few milliseconds of per-series jitter, as scrapes have): counters that
//! grow unevenly, reset, appear late and go stale; gauges with negative
//! values, a NaN and values in [-1, 1]; a classic histogram with `_sum` and
//! `_count`; `up`; an info metric. [`Dataset::push`] remote-writes it, in
//! time order, to Prometheus (`--web.enable-remote-write-receiver`) and to
//! the storage node, so both hold exactly the same samples, stale markers
//! included.
//!
//! [`compare`] judges two `/api/v1/query[_range]` answers: the same status
//! and error type; the same result type; the same series (by labels, as
//! sets, but in order after `sort`/`sort_desc`); the same timestamps; values
//! equal within 1e-9 relative (NaN equals NaN, infinities by sign).

mod compare;
pub mod corpus;
pub mod native;

pub use compare::compare;

use anyhow::{bail, Context, Result};
use scrapegrid_proto::prometheus as prom;
use scrapegrid_proto::prost::Message;
use serde_json::Value;

use crate::prometheus::Prometheus;
use crate::{start_storage, wait_healthy, Process};

/// Steps of the dataset, 15 s apart.
pub const STEPS: i64 = 200;
pub const STEP_MS: i64 = 15_000;

/// The bit pattern of a Prometheus stale marker.
const STALE_NAN: u64 = scrapegrid_proto::STALE_NAN_BITS;

/// One generated series.
pub struct GenSeries {
    pub labels: Vec<(String, String)>,
    /// (timestamp ms, value) in time order.
    pub samples: Vec<(i64, f64)>,
    /// Native histograms (each with its timestamp), in time order.
    pub histograms: Vec<prom::Histogram>,
}

/// The generated series and where they start.
pub struct Dataset {
    /// Timestamp of step 0.
    pub t0: i64,
    pub series: Vec<GenSeries>,
}

/// The sorted label pairs of series `name` with `pairs`.
pub fn labels<V: AsRef<str>>(name: &str, pairs: &[(&str, V)]) -> Vec<(String, String)> {
    let mut l: Vec<(String, String)> = pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.as_ref().to_string()))
        .collect();
    l.push(("__name__".into(), name.into()));
    l.sort();
    l
}

impl Dataset {
    /// Generates the dataset with step 0 at `t0` (ms).
    pub fn generate(t0: i64) -> Self {
        let mut series = Vec::new();
        let mut add = |name: &str, pairs: &[(&str, &str)], f: &dyn Fn(i64) -> Option<f64>| {
            let jitter = (series.len() as i64 * 7) % 13;
            let samples = (0..=STEPS)
                .filter_map(|k| f(k).map(|v| (t0 + k * STEP_MS + jitter, v)))
                .collect();
            series.push(GenSeries {
                labels: labels(name, pairs),
                samples,
                histograms: Vec::new(),
            });
        };
        let stale = f64::from_bits(STALE_NAN);
        // Counters.
        add(
            "http_requests_total",
            &[
                ("job", "api"),
                ("instance", "i0"),
                ("code", "200"),
                ("method", "get"),
            ],
            &|k| Some((0..=k).map(|j| (j % 7 + 1) as f64).sum()),
        );
        add(
            "http_requests_total",
            &[
                ("job", "api"),
                ("instance", "i0"),
                ("code", "500"),
                ("method", "get"),
            ],
            &|k| Some((k / 10) as f64),
        );
        add(
            "http_requests_total",
            &[
                ("job", "api"),
                ("instance", "i1"),
                ("code", "200"),
                ("method", "get"),
            ],
            &|k| {
                // Resets at steps 80 and 150.
                let base = if k >= 150 {
                    k - 150
                } else if k >= 80 {
                    k - 80
                } else {
                    k
                };
                Some(3.0 * base as f64 + (base % 4) as f64)
            },
        );
        add(
            "http_requests_total",
            &[
                ("job", "api"),
                ("instance", "i1"),
                ("code", "500"),
                ("method", "post"),
            ],
            &|k| {
                // Appears late.
                (k >= 60).then(|| 0.5 * (k - 60) as f64)
            },
        );
        add(
            "http_requests_total",
            &[
                ("job", "api"),
                ("instance", "i2"),
                ("code", "200"),
                ("method", "get"),
            ],
            &|k| {
                // Goes stale after step 120.
                match k {
                    0..=120 => Some(2.0 * k as f64),
                    121 => Some(stale),
                    _ => None,
                }
            },
        );
        add(
            "http_requests_total",
            &[
                ("job", "batch"),
                ("instance", "b0"),
                ("code", "200"),
                ("method", "put"),
            ],
            &|k| Some(0.25 * k as f64 + ((k * k) % 5) as f64 * 0.1 + 100.0),
        );
        // Gauges.
        for (n, inst) in ["i0", "i1", "i2", "i3"].iter().enumerate() {
            let n = n as f64;
            add(
                "node_temp",
                &[("job", "node"), ("instance", inst)],
                &move |k| {
                    if n == 2.0 && k == 100 {
                        return Some(f64::NAN);
                    }
                    let v = 20.0 + 10.0 * ((k as f64) / 7.0 + n).sin();
                    Some(if n == 3.0 { v - 35.0 } else { v })
                },
            );
            add(
                "node_load",
                &[("job", "node"), ("instance", inst)],
                &move |k| Some(((k as f64) / 11.0 + n).cos() * 0.9),
            );
        }
        // A classic histogram for two instances.
        let bounds = ["0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"];
        for (n, inst) in ["i0", "i1"].iter().enumerate() {
            for (b, le) in bounds.iter().enumerate() {
                let (n, b) = (n as i64, b as i64);
                add(
                    "req_duration_seconds_bucket",
                    &[("job", "api"), ("instance", inst), ("le", le)],
                    &move |k| {
                        // Observations per step in bucket b (not cumulative).
                        let per = |j: i64, bb: i64| ((j + bb * 3 + n) % 5 + bb) as f64;
                        Some(
                            (0..=k)
                                .map(|j| (0..=b).map(|bb| per(j, bb)).sum::<f64>())
                                .sum(),
                        )
                    },
                );
            }
            let n = n as i64;
            add(
                "req_duration_seconds_count",
                &[("job", "api"), ("instance", inst)],
                &move |k| {
                    Some(
                        (0..=k)
                            .map(|j| {
                                (0..7)
                                    .map(|bb| ((j + bb * 3 + n) % 5 + bb) as f64)
                                    .sum::<f64>()
                            })
                            .sum(),
                    )
                },
            );
            add(
                "req_duration_seconds_sum",
                &[("job", "api"), ("instance", inst)],
                &move |k| Some(0.37 * k as f64 + n as f64),
            );
        }
        for (n, inst) in ["i0", "i1", "i2"].iter().enumerate() {
            add("up", &[("job", "api"), ("instance", inst)], &move |k| {
                Some(if (k + n as i64) % 37 == 0 { 0.0 } else { 1.0 })
            });
        }
        add(
            "build_info",
            &[("job", "api"), ("instance", "i0"), ("version", "1.2.3")],
            &|_| Some(1.0),
        );
        Self { t0, series }
    }

    /// Remote-writes every sample of the dataset to `url` in time order,
    /// `window_ms` of samples per request.
    pub async fn push(&self, http: &reqwest::Client, url: &str, window_ms: i64) -> Result<()> {
        let mut from = self.t0;
        let end = self
            .series
            .iter()
            .filter_map(|s| {
                let floats = s.samples.iter().map(|&(t, _)| t);
                floats.chain(s.histograms.iter().map(|h| h.timestamp)).max()
            })
            .max()
            .map_or(from, |last| last + 1);
        // Where each series' next window starts (samples are in time order).
        let mut next = vec![0usize; self.series.len()];
        let mut next_h = vec![0usize; self.series.len()];
        while from < end {
            let to = from + window_ms.max(1);
            let timeseries = self
                .series
                .iter()
                .zip(next.iter_mut().zip(next_h.iter_mut()))
                .filter_map(|(s, (next, next_h))| {
                    let rest = &s.samples[*next..];
                    let n = rest.partition_point(|(t, _)| *t < to);
                    *next += n;
                    let samples: Vec<prom::Sample> = rest[..n]
                        .iter()
                        .filter(|(t, _)| *t >= from)
                        .map(|&(timestamp, value)| prom::Sample { value, timestamp })
                        .collect();
                    let rest_h = &s.histograms[*next_h..];
                    let n = rest_h.partition_point(|h| h.timestamp < to);
                    *next_h += n;
                    let histograms: Vec<prom::Histogram> = rest_h[..n].to_vec();
                    (!samples.is_empty() || !histograms.is_empty()).then(|| prom::TimeSeries {
                        labels: s
                            .labels
                            .iter()
                            .map(|(name, value)| prom::Label {
                                name: name.clone(),
                                value: value.clone(),
                            })
                            .collect(),
                        samples,
                        histograms,
                        ..Default::default()
                    })
                })
                .collect();
            let body = prom::WriteRequest {
                timeseries,
                ..Default::default()
            }
            .encode_to_vec();
            let compressed = snap::raw::Encoder::new().compress_vec(&body)?;
            let send = || {
                http.post(url)
                    .header("Content-Encoding", "snappy")
                    .header("Content-Type", "application/x-protobuf")
                    .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                    .body(compressed.clone())
                    .send()
            };
            // A pooled connection the server has just closed fails before
            // the request is read: sent again once on a new connection, as
            // Prometheus's own remote-write client retries.
            let r = match send().await {
                Err(e) if e.is_request() || e.is_connect() => send().await,
                r => r,
            }
            .with_context(|| format!("remote write to {url}"))?;
            if !r.status().is_success() {
                bail!(
                    "remote write to {url}: {} {}",
                    r.status(),
                    r.text().await.unwrap_or_default()
                );
            }
            from = to;
        }
        Ok(())
    }
}

/// GETs `path` with `params` from `addr`; returns the whole JSON answer.
pub async fn api(
    http: &reqwest::Client,
    addr: &str,
    path: &str,
    params: &[(&str, String)],
) -> Result<Value> {
    let url = format!("http://{addr}{path}");
    let r = http.get(&url).query(params).send().await?;
    r.json()
        .await
        .with_context(|| format!("GET {url} {params:?}"))
}

/// What [`run_queries`] found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Evaluations compared.
    pub compared: usize,
    /// Differences, one line each.
    pub differences: Vec<String>,
    /// Differences of range queries the caller declared, one line each.
    pub declared: Vec<String>,
}

/// One evaluation: what it is, the API path, the parameters.
type Run<'a> = (String, &'a str, Vec<(&'a str, String)>);

impl Outcome {
    /// Prints the figures and every difference under `what`, then fails
    /// unless at least `min` evaluations were compared and none differ.
    pub fn check(&self, what: &str, queries: usize, min: usize) {
        println!(
            "{what}: {queries} queries, {} evaluations compared, {} differ ({} declared)",
            self.compared,
            self.differences.len() + self.declared.len(),
            self.declared.len()
        );
        for d in &self.differences {
            println!("DIFF {d}");
        }
        for d in &self.declared {
            println!("DECLARED {d}");
        }
        assert!(self.compared >= min, "at least {min} evaluations");
        assert!(
            self.differences.is_empty(),
            "{} of {} evaluations differ from Prometheus 2.42 (first: {})",
            self.differences.len(),
            self.compared,
            self.differences[0]
        );
    }
}

/// Formats milliseconds as the API's seconds.
pub fn secs(ms: i64) -> String {
    format!("{:.3}", ms as f64 / 1000.0)
}

/// Runs every query against Prometheus (`want`) and the storage node
/// (`got`) as instant queries at each of `instants` and as range queries
/// over each of `ranges` (start, end, step in seconds), and compares the
/// answers. A range-query difference of a query in `deviations` is
/// declared rather than counted.
pub async fn run_queries(
    http: &reqwest::Client,
    want: &str,
    got: &str,
    queries: &[String],
    instants: &[i64],
    ranges: &[(i64, i64, &str)],
    deviations: &[(&str, &str)],
) -> Result<Outcome> {
    let mut out = Outcome::default();
    for q in queries {
        let ordered = q.starts_with("sort");
        let mut runs: Vec<Run<'_>> = Vec::new();
        for &t in instants {
            runs.push((
                format!("instant @{}", secs(t)),
                "/api/v1/query",
                vec![("query", q.clone()), ("time", secs(t))],
            ));
        }
        for &(s, e, step) in ranges {
            runs.push((
                format!("range {}..{} step {step}", secs(s), secs(e)),
                "/api/v1/query_range",
                vec![
                    ("query", q.clone()),
                    ("start", secs(s)),
                    ("end", secs(e)),
                    ("step", step.to_string()),
                ],
            ));
        }
        for (what, path, params) in runs {
            let w = api(http, want, path, &params).await?;
            let g = api(http, got, path, &params).await?;
            out.compared += 1;
            if let Some(diff) = compare(&w, &g, ordered) {
                let line = format!("{q}  [{what}]: {diff}");
                let range = what.starts_with("range");
                match deviations.iter().find(|(d, _)| range && q == d) {
                    Some(_) => out.declared.push(line),
                    None => out.differences.push(line),
                }
            }
        }
    }
    Ok(out)
}

/// Prometheus 2.42 (remote-write receiver on) and a storage node, both
/// empty and running, ready to receive one [`Dataset`].
pub struct Pair {
    pub prometheus: Prometheus,
    pub storage: Process,
    /// The storage node's HTTP address.
    pub http_addr: String,
    _dir: tempfile::TempDir,
}

impl Pair {
    /// Starts both and waits until the storage node answers.
    pub async fn start(http: &reqwest::Client) -> Result<Self> {
        Self::start_with(http, &[]).await
    }

    /// Starts both, Prometheus with `extra` flags too (e.g.
    /// `--enable-feature=native-histograms`).
    pub async fn start_with(http: &reqwest::Client, extra: &[&str]) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, "global: {}\n")?;
        let mut flags = vec!["--web.enable-remote-write-receiver"];
        flags.extend_from_slice(extra);
        let prometheus = Prometheus::start_with(&config, &flags).await?;
        let storage = start_storage(dir.path(), "storage-node").await?;
        wait_healthy(http, &storage.http).await?;
        Ok(Self {
            prometheus,
            storage: storage.process,
            http_addr: storage.http,
            _dir: dir,
        })
    }

    /// Remote-writes `data` into both, ten steps of samples per request.
    pub async fn load(&self, http: &reqwest::Client, data: &Dataset) -> Result<()> {
        data.push(
            http,
            &format!("http://{}/api/v1/write", self.prometheus.addr),
            10 * STEP_MS,
        )
        .await
        .context("writing to prometheus")?;
        data.push(
            http,
            &format!("http://{}/api/v1/write", self.http_addr),
            10 * STEP_MS,
        )
        .await
        .context("writing to the storage node")
    }

    /// Step 0 of a dataset: fifty-five minutes ago, on a minute boundary,
    /// so fifty minutes of data end a few minutes ago.
    pub fn t0() -> i64 {
        (crate::audit::now_ms() - 55 * 60_000) / 60_000 * 60_000
    }
}
