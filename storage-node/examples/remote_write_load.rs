//! A remote-write load generator for side-by-side storage benchmarks.
//!
//! Generates a deterministic set of series shaped like real scrapes (counters,
//! gauges, histogram buckets; 15 s interval with ±5 ms of jitter) and either
//! writes them as an OpenMetrics file (for `promtool tsdb
//! create-blocks-from openmetrics`) or pushes them, one scrape round at a
//! time, to a Prometheus remote-write endpoint: the storage node's
//! `/api/v1/write` or Prometheus's own receiver. The same seed gives the same
//! samples in both modes, so both stores get the same input.
//!
//! ```text
//! remote_write_load --series N --samples M --openmetrics FILE
//! remote_write_load --series N --samples M --url http://HOST:PORT/api/v1/write
//! ```
//! `--jitter-ms J` (default 5) moves each timestamp off the 15 s grid by up
//! to ±J ms; 0 gives the aligned timestamps scrapers write when a scrape
//! starts within 2 ms of its slot.
//! Prints one line: `samples=… seconds=… samples_per_second=…`.

use std::io::Write;
use std::time::Instant;

use prost::Message;
use scrapegrid_common::xorshift::XorShift as Rng;
use scrapegrid_proto::prometheus as prompb;

const INTERVAL_MS: i64 = 15_000;
/// Series per remote-write request, as Prometheus's default max_samples_per_send is 500-2000.
const SERIES_PER_REQUEST: usize = 2_000;

struct Args {
    series: usize,
    samples: usize,
    url: Option<String>,
    openmetrics: Option<String>,
    end_ms: i64,
    jitter_ms: i64,
}

fn parse_args() -> Args {
    let mut a = Args {
        series: 1_000,
        samples: 120,
        url: None,
        openmetrics: None,
        end_ms: 0,
        jitter_ms: 5,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--series" => a.series = value().parse().expect("--series"),
            "--samples" => a.samples = value().parse().expect("--samples"),
            "--url" => a.url = Some(value()),
            "--openmetrics" => a.openmetrics = Some(value()),
            "--end-ms" => a.end_ms = value().parse().expect("--end-ms"),
            "--jitter-ms" => a.jitter_ms = value().parse().expect("--jitter-ms"),
            other => panic!("unknown flag {other}"),
        }
    }
    if a.end_ms == 0 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        a.end_ms = now.as_millis() as i64 / INTERVAL_MS * INTERVAL_MS;
    }
    a
}

/// One synthetic series: its labels and the state of its value walk.
struct SeriesGen {
    family: &'static str,
    labels: Vec<(String, String)>,
    kind: usize,
    value: f64,
    rng: Rng,
    jitter_ms: i64,
}

const FAMILIES: [&str; 4] = [
    "bench_http_requests_total",
    "bench_process_cpu_seconds_total",
    "bench_memory_bytes",
    "bench_request_duration_seconds_bucket",
];
const LE: [&str; 10] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf",
];

impl SeriesGen {
    fn new(i: usize, jitter_ms: i64) -> Self {
        let kind = i % 4;
        let mut labels = vec![
            ("__name__".to_string(), FAMILIES[kind].to_string()),
            ("instance".to_string(), format!("host-{}:9100", i / 40)),
            ("job".to_string(), "bench".to_string()),
        ];
        match kind {
            0 => labels.push(("code".into(), ["200", "404", "500"][i / 4 % 3].into())),
            3 => labels.push(("le".into(), LE[i / 4 % LE.len()].into())),
            _ => {}
        }
        labels.push(("series".into(), format!("{i}")));
        labels.sort();
        Self {
            family: FAMILIES[kind],
            labels,
            kind,
            value: 0.0,
            rng: Rng::new(0x9e37_79b9 ^ (i as u64 + 1)),
            jitter_ms,
        }
    }

    /// Returns the next (timestamp offset jitter, value).
    fn next(&mut self) -> (i64, f64) {
        self.value = match self.kind {
            0 => self.value + self.rng.range(0, 30) as f64,
            1 => self.value + self.rng.range(1, 50) as f64 / 100.0,
            2 => (1u64 << 30) as f64 + (self.rng.range(-4096, 4096) * 4096) as f64,
            _ => self.value + self.rng.range(0, 5) as f64,
        };
        let j = self.jitter_ms;
        let jitter = if j > 0 { self.rng.range(-j, j) } else { 0 };
        (jitter, self.value)
    }
}

fn main() {
    let args = parse_args();
    let mut gens: Vec<SeriesGen> = (0..args.series)
        .map(|i| SeriesGen::new(i, args.jitter_ms))
        .collect();
    let start_ms = args.end_ms - (args.samples as i64 - 1) * INTERVAL_MS;
    let started = Instant::now();
    if let Some(path) = &args.openmetrics {
        write_openmetrics(path, &mut gens, args.samples, start_ms);
    } else if let Some(url) = &args.url {
        push(url, &mut gens, args.samples, start_ms);
    } else {
        panic!("give --openmetrics FILE or --url URL");
    }
    let secs = started.elapsed().as_secs_f64();
    let total = args.series * args.samples;
    println!(
        "samples={total} seconds={secs:.3} samples_per_second={:.0}",
        total as f64 / secs
    );
}

/// Writes every series, family by family, in OpenMetrics text.
fn write_openmetrics(path: &str, gens: &mut [SeriesGen], samples: usize, start_ms: i64) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create file"));
    for family in FAMILIES {
        writeln!(out, "# TYPE {family} gauge").unwrap();
        for g in gens.iter_mut().filter(|g| g.family == family) {
            let labels: Vec<String> = g
                .labels
                .iter()
                .filter(|(n, _)| n != "__name__")
                .map(|(n, v)| format!("{n}=\"{v}\""))
                .collect();
            let series = format!("{family}{{{}}}", labels.join(","));
            for k in 0..samples {
                let (jitter, v) = g.next();
                let t = start_ms + k as i64 * INTERVAL_MS + jitter;
                writeln!(
                    out,
                    "{series} {v} {}.{:03}",
                    t.div_euclid(1000),
                    t.rem_euclid(1000)
                )
                .unwrap();
            }
        }
    }
    writeln!(out, "# EOF").unwrap();
}

/// Pushes one scrape round at a time (every series' next sample).
fn push(url: &str, gens: &mut [SeriesGen], samples: usize, start_ms: i64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    rt.block_on(async {
        for k in 0..samples {
            for chunk in gens.chunks_mut(SERIES_PER_REQUEST) {
                let timeseries = chunk
                    .iter_mut()
                    .map(|g| {
                        let (jitter, value) = g.next();
                        prompb::TimeSeries {
                            labels: g
                                .labels
                                .iter()
                                .map(|(n, v)| prompb::Label {
                                    name: n.clone(),
                                    value: v.clone(),
                                })
                                .collect(),
                            samples: vec![prompb::Sample {
                                value,
                                timestamp: start_ms + k as i64 * INTERVAL_MS + jitter,
                            }],
                            ..Default::default()
                        }
                    })
                    .collect();
                let req = prompb::WriteRequest {
                    timeseries,
                    ..Default::default()
                };
                let body = snap::raw::Encoder::new()
                    .compress_vec(&req.encode_to_vec())
                    .unwrap();
                let r = client
                    .post(url)
                    .header("Content-Encoding", "snappy")
                    .header("Content-Type", "application/x-protobuf")
                    .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                    .body(body)
                    .send()
                    .await
                    .expect("remote write request");
                assert!(
                    r.status().is_success(),
                    "remote write: {} {}",
                    r.status(),
                    r.text().await.unwrap_or_default()
                );
            }
        }
    });
}
