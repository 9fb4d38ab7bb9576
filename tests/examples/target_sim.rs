//! A target simulator for the cluster benchmark (`bench/cluster-vs-peers.sh`),
//! in the spirit of prometheus-community/avalanche: many HTTP targets on
//! loopback whose series look like a service's (counters, gauges and classic
//! 12-bucket histograms with 4 to 6 labels of their own) and whose values
//! change every interval without repeating patterns.
//!
//! ```text
//! target_sim --targets N --series S [--interval 5s] [--churn-every K]
//!            [--churn-share F] [--seed X]
//! ```
//!
//! Each of the N targets serves `GET /metrics` (text format 0.0.4, gzip when
//! asked) with about S/N series. Bodies are rendered once per interval by
//! one background task, plain and gzipped, so serving a scrape is a copy of
//! a reference-counted buffer and the simulator costs little CPU beside the
//! systems measured. Every `--churn-every` intervals a share `--churn-share`
//! of each target's pods is replaced by new ones (new `pod` label values,
//! counters from zero), as a rolling deployment does. Prints `listening
//! http <addr>` per target, `series <total>` on stderr, then `ready`; runs
//! until killed.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use axum::body::Body;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;

use scrapegrid_common::duration::parse_duration;
use scrapegrid_common::xorshift::XorShift;

/// Upper bounds of the histogram buckets (+Inf is added).
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const SERVICES: [&str; 8] = [
    "checkout", "cart", "search", "auth", "payments", "catalog", "shipping", "email",
];
const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
const CODES: [&str; 4] = ["200", "404", "500", "503"];
const REGIONS: [&str; 3] = ["eu-west-1", "us-east-1", "ap-south-1"];
const SENSORS: [&str; 4] = ["cpu", "board", "inlet", "exhaust"];

struct Options {
    targets: usize,
    series: usize,
    interval: Duration,
    churn_every: u64,
    churn_share: f64,
    seed: u64,
}

fn options() -> Result<Options> {
    let mut o = Options {
        targets: 10,
        series: 10_000,
        interval: Duration::from_secs(5),
        churn_every: 0,
        churn_share: 0.0,
        seed: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--targets" => o.targets = value.parse()?,
            "--series" => o.series = value.parse()?,
            "--interval" => o.interval = parse_duration(&value).map_err(anyhow::Error::msg)?,
            "--churn-every" => o.churn_every = value.parse()?,
            "--churn-share" => o.churn_share = value.parse()?,
            "--seed" => o.seed = value.parse::<u64>()?.max(1),
            other => bail!("unknown flag {other}"),
        }
    }
    if o.targets == 0 || o.series < o.targets {
        bail!("need --targets >= 1 and --series >= --targets");
    }
    Ok(o)
}

/// One pod's series of one target: a few counters, gauges and one
/// histogram.
struct Pod {
    id: u64,
    service: &'static str,
    region: &'static str,
    counters: Vec<(usize, usize, f64)>,
    gauges: Vec<(usize, f64)>,
    buckets: [f64; 12],
    sum: f64,
}

/// Series per pod: 8 counters (2 methods x 4 codes), 4 gauges, one
/// histogram (12 buckets, sum, count).
const SERIES_PER_POD: usize = 8 + 4 + 14;

impl Pod {
    fn new(id: u64, rng: &mut XorShift) -> Self {
        let m = rng.index(METHODS.len() - 1);
        Pod {
            id,
            service: SERVICES[rng.index(SERVICES.len())],
            region: REGIONS[rng.index(REGIONS.len())],
            counters: (0..8).map(|i| (m + i / 4, i % 4, 0.0)).collect(),
            gauges: (0..4).map(|i| (i, 20.0 + rng.unit() * 40.0)).collect(),
            buckets: [0.0; 12],
            sum: 0.0,
        }
    }

    /// Moves every value on by one interval.
    fn step(&mut self, rng: &mut XorShift) {
        for c in &mut self.counters {
            c.2 += rng.below(200) as f64;
        }
        for g in &mut self.gauges {
            g.1 = (g.1 + (rng.unit() - 0.5) * 2.0).clamp(-20.0, 120.0);
            g.1 = (g.1 * 1000.0).round() / 1000.0;
        }
        for _ in 0..rng.below(50) {
            let v = rng.unit() * rng.unit() * 12.0;
            self.sum += v;
            let first = BUCKETS.iter().position(|b| v <= *b).unwrap_or(11);
            for b in &mut self.buckets[first..] {
                *b += 1.0;
            }
        }
    }

    fn render_counters(&self, out: &mut String) {
        let (pod, service, region) = (self.id, self.service, self.region);
        for (m, c, v) in &self.counters {
            let _ = writeln!(
                out,
                "bench_requests_total{{service=\"{service}\",method=\"{}\",code=\"{}\",region=\"{region}\",pod=\"pod-{pod}\"}} {v}",
                METHODS[*m], CODES[*c]
            );
        }
    }

    fn render_gauges(&self, out: &mut String) {
        let (pod, service, region) = (self.id, self.service, self.region);
        for (s, v) in &self.gauges {
            let _ = writeln!(
                out,
                "bench_temperature_celsius{{service=\"{service}\",region=\"{region}\",pod=\"pod-{pod}\",sensor=\"{}\"}} {v}",
                SENSORS[*s]
            );
        }
    }

    fn render_histogram(&self, out: &mut String) {
        let (pod, service, region) = (self.id, self.service, self.region);
        let labels =
            format!("service=\"{service}\",method=\"GET\",region=\"{region}\",pod=\"pod-{pod}\"");
        for (i, count) in self.buckets.iter().enumerate() {
            let le = BUCKETS.get(i).map_or("+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(
                out,
                "bench_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "bench_request_duration_seconds_sum{{{labels}}} {}",
            self.sum
        );
        let _ = writeln!(
            out,
            "bench_request_duration_seconds_count{{{labels}}} {}",
            self.buckets[11]
        );
    }
}

/// A target's current body, plain and gzipped.
#[derive(Clone, Default)]
struct Rendered {
    plain: Bytes,
    gzip: Bytes,
}

struct Target {
    pods: Vec<Pod>,
    body: Arc<RwLock<Rendered>>,
}

/// Writes one metric family's lines of a pod.
type RenderFamily = fn(&Pod, &mut String);

/// Renders a target's body, each metric family in one group as exporters
/// write them.
fn render(pods: &[Pod]) -> Rendered {
    let mut text = String::with_capacity(pods.len() * SERIES_PER_POD * 110);
    let families: [(&str, RenderFamily); 3] = [
        (COUNTER_HELP, Pod::render_counters),
        (GAUGE_HELP, Pod::render_gauges),
        (HISTOGRAM_HELP, Pod::render_histogram),
    ];
    for (help, write) in families {
        text.push_str(help);
        for p in pods {
            write(p, &mut text);
        }
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = gz.write_all(text.as_bytes());
    Rendered {
        gzip: Bytes::from(gz.finish().unwrap_or_default()),
        plain: Bytes::from(text),
    }
}

const COUNTER_HELP: &str =
    "# HELP bench_requests_total Requests served.\n# TYPE bench_requests_total counter\n";
const GAUGE_HELP: &str =
    "# HELP bench_temperature_celsius Sensor temperature.\n# TYPE bench_temperature_celsius gauge\n";
const HISTOGRAM_HELP: &str = "# HELP bench_request_duration_seconds Request latency.\n# TYPE bench_request_duration_seconds histogram\n";

async fn metrics(State(body): State<Arc<RwLock<Rendered>>>, headers: HeaderMap) -> Response {
    let rendered = body.read().unwrap_or_else(|e| e.into_inner()).clone();
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("gzip"));
    let mut response = Response::builder().status(StatusCode::OK).header(
        header::CONTENT_TYPE,
        "text/plain; version=0.0.4; charset=utf-8",
    );
    let bytes = if gzip {
        response = response.header(header::CONTENT_ENCODING, "gzip");
        rendered.gzip
    } else {
        rendered.plain
    };
    response
        .body(Body::from(bytes))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let o = options()?;
    let mut rng = XorShift::new(o.seed);
    let per_target = o.series / o.targets;
    let pods_per_target = (per_target / SERIES_PER_POD).max(1);
    let mut next_pod = 0u64;
    let mut targets = Vec::with_capacity(o.targets);
    for _ in 0..o.targets {
        let pods: Vec<Pod> = (0..pods_per_target)
            .map(|_| {
                next_pod += 1;
                Pod::new(next_pod, &mut rng)
            })
            .collect();
        let body = Arc::new(RwLock::new(render(&pods)));
        targets.push(Target { pods, body });
    }
    let mut stdout = std::io::stdout();
    for t in &targets {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        writeln!(stdout, "listening http {}", listener.local_addr()?)?;
        let app = axum::Router::new()
            .route("/metrics", axum::routing::get(metrics))
            .with_state(t.body.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
    }
    eprintln!("series {}", o.targets * pods_per_target * SERIES_PER_POD);
    writeln!(stdout, "ready")?;
    stdout.flush()?;

    // Every interval: move the values on, churn now and then, render again.
    let mut tick = tokio::time::interval(o.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut round = 0u64;
    loop {
        tick.tick().await;
        round += 1;
        let churn = o.churn_every > 0 && round.is_multiple_of(o.churn_every);
        for t in &mut targets {
            for p in &mut t.pods {
                if churn && rng.unit() < o.churn_share {
                    next_pod += 1;
                    *p = Pod::new(next_pod, &mut rng);
                }
                p.step(&mut rng);
            }
            let rendered = render(&t.pods);
            *t.body.write().unwrap_or_else(|e| e.into_inner()) = rendered;
        }
    }
}
