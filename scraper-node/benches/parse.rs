//! Parse benchmark (issue 3): MB/s, samples/s and ns/sample of the three
//! [`Parser`] formats on the same realistic 2,000-sample body.
//!
//! The body is generated here, node_exporter / client_golang shaped: Go and
//! process metrics, a GC summary, `node_cpu_seconds_total` per CPU and mode,
//! network and disk counters, filesystem gauges with escaped mount points,
//! systemd units with `\x2d` in their names, two request histograms with 10
//! buckets, an RPC summary, label-heavy `kube_pod_info`-like series and
//! `node_interrupts_total`. Each metric is rendered three ways, as
//! client_golang 1.14 writes them: text 0.0.4, OpenMetrics 1.0 (counter
//! families without `_total`, `# EOF`) and length-delimited protobuf
//! `MetricFamily` messages (no `+Inf` bucket, labels sorted).
//!
//! Per format it measures two paths, as a scrape uses the parser
//! (`scrape/state.rs`):
//! - steady state: iterate every entry and touch each sample's series text
//!   (the cache key) and value, as a scrape whose series are all cached;
//! - cold: the same plus [`Sample::labels`] for every sample, as a scrape
//!   whose series are all new.
//!
//! A format whose body fails to parse is reported as "not available".
//! Timing: a warm-up, then the median of [`RUNS`] runs of about
//! [`RUN_TARGET`] each, per parse.
//!
//! ```text
//! cargo bench -p scraper-node --bench parse
//! cargo bench -p scraper-node --bench parse -- --write-bodies DIR
//! ```
//!
//! `--write-bodies DIR` writes the bodies to `DIR/text`, `DIR/openmetrics`
//! and `DIR/protobuf`, lists in `DIR/available` the formats that parse to
//! the expected samples, and measures nothing (`bench/scrape-vs-prometheus.sh`
//! serves these bodies to Prometheus and scrapegrid).

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use scrapegrid_proto::prometheus_client as pb;
use scrapegrid_proto::prost::Message as _;
use scraper_node::textparse::{Entry, Format, Parser, Sample};

/// Samples in the generated body.
const SAMPLES: usize = 2_000;
/// Timed runs per format and path; the median is reported.
const RUNS: usize = 31;
/// Wall time of one timed run (enough parses to fill it).
const RUN_TARGET: Duration = Duration::from_millis(20);
/// Warm-up before the timed runs of each format and path.
const WARMUP: Duration = Duration::from_millis(300);

fn main() {
    let families = families();
    let bodies = [
        ("text", Format::PrometheusText, render_text(&families)),
        (
            "openmetrics",
            Format::OpenMetrics,
            render_openmetrics(&families),
        ),
        ("protobuf", Format::Protobuf, render_protobuf(&families)),
    ];
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--write-bodies") {
        let dir = args.get(i + 1).expect("--write-bodies DIR");
        write_bodies(Path::new(dir), &bodies);
        return;
    }

    println!(
        "parse benchmark: one {SAMPLES}-sample body (node_exporter/client_golang shaped) \
         in three formats, median of {RUNS} runs"
    );
    println!("steady = iterate entries, touch series and value; cold = also Sample::labels()\n");
    println!(
        "{:<12} {:>8} {:>7} | {:>8} {:>11} {:>9} | {:>8} {:>11} {:>9}",
        "", "", "", "steady", "", "", "cold", "", ""
    );
    println!(
        "{:<12} {:>8} {:>7} | {:>8} {:>11} {:>9} | {:>8} {:>11} {:>9}",
        "format",
        "bytes",
        "samples",
        "MB/s",
        "samples/s",
        "ns/sample",
        "MB/s",
        "samples/s",
        "ns/sample"
    );
    for (name, format, body) in &bodies {
        let samples = match parse(*format, body, true) {
            Ok(n) => n,
            Err(e) => {
                println!("{name:<12} {:>8} not available ({e})", body.len());
                continue;
            }
        };
        let mut row = format!("{name:<12} {:>8} {samples:>7}", body.len());
        for cold in [false, true] {
            let per_parse = measure(*format, body, cold).as_secs_f64();
            let _ = write!(
                row,
                " | {:>8.1} {:>11.0} {:>9.1}",
                body.len() as f64 / per_parse / 1e6,
                samples as f64 / per_parse,
                per_parse * 1e9 / samples as f64,
            );
        }
        println!("{row}");
    }
}

/// Parses `body` once; returns the number of samples.
fn parse(format: Format, body: &[u8], cold: bool) -> Result<usize, String> {
    let mut parser = Parser::new(format, black_box(body));
    let mut samples = 0;
    while let Some(entry) = parser.next_entry().map_err(|e| e.to_string())? {
        if let Entry::Sample(s) = entry {
            touch(&s, cold);
            samples += 1;
        }
    }
    Ok(samples)
}

fn touch(s: &Sample<'_>, cold: bool) {
    black_box(s.series.as_ref());
    black_box(s.value);
    if cold {
        black_box(s.labels());
    }
}

/// Returns the median time of one parse.
fn measure(format: Format, body: &[u8], cold: bool) -> Duration {
    let start = Instant::now();
    let mut parses = 0u32;
    while start.elapsed() < WARMUP {
        let _ = black_box(parse(format, body, cold));
        parses += 1;
    }
    let per_parse = start.elapsed() / parses.max(1);
    let iters = (RUN_TARGET.as_nanos() / per_parse.as_nanos().max(1)).max(1) as u32;
    let mut runs: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                let _ = black_box(parse(format, body, cold));
            }
            t.elapsed() / iters
        })
        .collect();
    runs.sort();
    runs[RUNS / 2]
}

fn write_bodies(dir: &Path, bodies: &[(&str, Format, Vec<u8>)]) {
    std::fs::create_dir_all(dir).expect("create the bodies directory");
    let mut available = String::new();
    for (name, format, body) in bodies {
        std::fs::write(dir.join(name), body).expect("write a body");
        match parse(*format, body, true) {
            Ok(n) if n == SAMPLES => available.push_str(&format!("{name}\n")),
            Ok(n) => eprintln!("{name}: {n} samples parsed, {SAMPLES} expected"),
            Err(e) => eprintln!("{name}: not available ({e})"),
        }
    }
    std::fs::write(dir.join("available"), available).expect("write the available list");
}

// --- the metrics -----------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
}

enum Value {
    Single(f64),
    /// Cumulative buckets without `+Inf`, as client_golang keeps them.
    Histogram {
        buckets: Vec<(f64, u64)>,
        count: u64,
        sum: f64,
    },
    Summary {
        quantiles: Vec<(f64, f64)>,
        count: u64,
        sum: f64,
    },
}

struct Metric {
    /// Sorted by name, as client_golang sorts them.
    labels: Vec<(String, String)>,
    value: Value,
}

struct Family {
    name: String,
    help: String,
    kind: Kind,
    metrics: Vec<Metric>,
}

impl Family {
    fn samples(&self) -> usize {
        self.metrics
            .iter()
            .map(|m| match &m.value {
                Value::Single(_) => 1,
                Value::Histogram { buckets, .. } => buckets.len() + 3,
                Value::Summary { quantiles, .. } => quantiles.len() + 2,
            })
            .sum()
    }
}

/// A deterministic xorshift64* generator, so every run sees the same body.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A value with `decimals` decimal places below `10^digits`.
    fn value(&mut self, digits: u32, decimals: u32) -> f64 {
        let scale = 10u64.pow(decimals);
        self.below(10u64.pow(digits) * scale) as f64 / scale as f64
    }

    fn histogram(&mut self, bounds: &[f64]) -> Value {
        let count = 1 + self.below(2_000_000);
        let mut cumulative = 0.0;
        let buckets = bounds
            .iter()
            .map(|&le| {
                cumulative += (1.0 - cumulative) * (0.2 + self.below(50) as f64 / 100.0);
                (le, (count as f64 * cumulative) as u64)
            })
            .collect();
        let sum = count as f64 * bounds[bounds.len() / 3] * (0.5 + self.value(0, 3));
        Value::Histogram {
            buckets,
            count,
            sum,
        }
    }

    fn summary(&mut self, quantiles: &[f64]) -> Value {
        let mut v = self.value(0, 6) / 1000.0;
        let quantiles = quantiles
            .iter()
            .map(|&q| {
                v *= 1.0 + self.value(0, 3);
                (q, v)
            })
            .collect();
        let count = 1 + self.below(100_000);
        Value::Summary {
            quantiles,
            count,
            sum: count as f64 * v / 3.0,
        }
    }
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut l: Vec<_> = pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    l.sort();
    l
}

fn metric(pairs: &[(&str, &str)], value: Value) -> Metric {
    Metric {
        labels: labels(pairs),
        value,
    }
}

fn family(name: &str, help: &str, kind: Kind, metrics: Vec<Metric>) -> Family {
    Family {
        name: name.into(),
        help: help.into(),
        kind,
        metrics,
    }
}

/// Returns the benchmark's metrics: exactly [`SAMPLES`] samples.
fn families() -> Vec<Family> {
    use Kind::*;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut f = Vec::new();
    let single = |v: f64| Value::Single(v);

    f.push(family(
        "go_gc_duration_seconds",
        "A summary of the pause duration of garbage collection cycles.",
        Summary,
        vec![metric(&[], rng.summary(&[0.0, 0.25, 0.5, 0.75, 1.0]))],
    ));
    for (name, help, kind, v) in [
        (
            "go_goroutines",
            "Number of goroutines that currently exist.",
            Gauge,
            87.0,
        ),
        ("go_threads", "Number of OS threads created.", Gauge, 14.0),
        (
            "go_memstats_alloc_bytes",
            "Number of bytes allocated and still in use.",
            Gauge,
            2.1374216e7,
        ),
        (
            "go_memstats_mallocs_total",
            "Total number of mallocs.",
            Counter,
            8.4211753e8,
        ),
        (
            "go_memstats_heap_objects",
            "Number of allocated objects.",
            Gauge,
            118_397.0,
        ),
        (
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            Counter,
            31_452.87,
        ),
        (
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            Gauge,
            4.4716032e7,
        ),
        (
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            Gauge,
            1.70812311648e9,
        ),
        (
            "process_open_fds",
            "Number of open file descriptors.",
            Gauge,
            12.0,
        ),
    ] {
        f.push(family(name, help, kind, vec![metric(&[], single(v))]));
    }
    f.push(family(
        "go_info",
        "Information about the Go environment.",
        Gauge,
        vec![metric(&[("version", "go1.19.8")], single(1.0))],
    ));
    f.push(family(
        "node_uname_info",
        "Labeled system information as provided by the uname system call.",
        Gauge,
        vec![metric(
            &[
                ("domainname", "(none)"),
                ("machine", "x86_64"),
                ("nodename", "worker-17.eu-west-1.compute.internal"),
                ("release", "6.1.0-18-amd64"),
                ("sysname", "Linux"),
                (
                    "version",
                    "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)",
                ),
            ],
            single(1.0),
        )],
    ));

    let modes = [
        "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
    ];
    let cpu = (0..16)
        .flat_map(|c| modes.iter().map(move |m| (c.to_string(), *m)))
        .map(|(c, m)| metric(&[("cpu", &c), ("mode", m)], single(rng.value(6, 2))))
        .collect();
    f.push(family(
        "node_cpu_seconds_total",
        "Seconds the CPUs spent in each mode.",
        Counter,
        cpu,
    ));

    let devices = [
        "eth0",
        "eth1",
        "lo",
        "docker0",
        "veth3f2a91c",
        "cali8d2c41a07e1",
    ];
    for dir in ["receive", "transmit"] {
        for (what, digits) in [("bytes", 12), ("packets", 9), ("errs", 3), ("drop", 4)] {
            let ms = devices
                .iter()
                .map(|d| metric(&[("device", d)], single(rng.value(digits, 0))))
                .collect();
            f.push(family(
                &format!("node_network_{dir}_{what}_total"),
                &format!("Network device statistic {dir}_{what}."),
                Counter,
                ms,
            ));
        }
    }

    let disks = ["nvme0n1", "nvme1n1", "sda", "sdb", "dm-0", "dm-1"];
    for (what, digits, decimals) in [
        ("reads_completed", 8, 0),
        ("writes_completed", 9, 0),
        ("read_bytes", 12, 0),
        ("written_bytes", 13, 0),
        ("io_time_seconds", 6, 3),
        ("read_time_seconds", 5, 3),
        ("write_time_seconds", 6, 3),
        ("discarded_sectors", 7, 0),
    ] {
        let ms = disks
            .iter()
            .map(|d| metric(&[("device", d)], single(rng.value(digits, decimals))))
            .collect();
        f.push(family(
            &format!("node_disk_{what}_total"),
            &format!("The total number of {what} (from /proc/diskstats)."),
            Counter,
            ms,
        ));
    }

    // Mount points with a quote, a backslash and a space: escaped in text.
    let mounts = [
        ("/dev/nvme0n1p2", "ext4", "/"),
        ("/dev/nvme0n1p1", "vfat", "/boot/efi"),
        ("tmpfs", "tmpfs", "/run"),
        ("tmpfs", "tmpfs", "/run/lock"),
        ("/dev/sda1", "xfs", "/var/lib/docker"),
        ("/dev/sdb1", "ext4", "/media/backup/Disk \"Archive\" 2023"),
        ("//fileserver/share", "cifs", "/mnt/fileserver\\share$"),
        ("/dev/mapper/vg0-data", "ext4", "/srv/data"),
        ("overlay", "overlay", "/var/lib/docker/overlay2/7c1f0e2b9a4d/merged"),
        ("/dev/nvme1n1", "ext4", "/var/lib/kubelet/pods/3f2a6c1e-8d4b-4e9a-b1c7-2f6e5d4c3b2a/volumes/kubernetes.io~csi/pvc-91d2/mount"),
    ];
    for (what, help, digits) in [
        (
            "avail_bytes",
            "Filesystem space available to non-root users in bytes.",
            11,
        ),
        ("size_bytes", "Filesystem size in bytes.", 12),
        ("files", "Filesystem total file nodes.", 8),
        ("readonly", "Filesystem read-only status.", 0),
    ] {
        let ms = mounts
            .iter()
            .map(|(d, t, m)| {
                let v = if digits == 0 {
                    0.0
                } else {
                    rng.value(digits, 0)
                };
                metric(
                    &[("device", d), ("fstype", t), ("mountpoint", m)],
                    single(v),
                )
            })
            .collect();
        f.push(family(&format!("node_filesystem_{what}"), help, Gauge, ms));
    }

    // systemd escapes "-" and " " in unit names as \x2d and \x20.
    let states = ["activating", "active", "deactivating", "failed", "inactive"];
    let units = (0..30)
        .map(|i| match i % 3 {
            0 => format!(
                "dev-disk-by\\x2duuid-{:08x}\\x2d{:04x}.device",
                rng.next() as u32,
                i
            ),
            1 => format!("systemd-fsck@dev-disk-by\\x2dlabel-DATA\\x20{i}.service"),
            _ => format!("app-worker-{i}.service"),
        })
        .collect::<Vec<_>>();
    let ms = units
        .iter()
        .flat_map(|u| states.iter().map(move |s| (u, *s)))
        .map(|(u, s)| {
            let ty = if u.ends_with(".device") {
                "device"
            } else {
                "simple"
            };
            let v = if s == "active" { 1.0 } else { 0.0 };
            metric(&[("name", u), ("state", s), ("type", ty)], single(v))
        })
        .collect();
    f.push(family(
        "node_systemd_unit_state",
        "Systemd unit state, e.g. \"active\"; names escaped as by systemd-escape (\\x2d).",
        Gauge,
        ms,
    ));

    let bounds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
    let handlers = [
        "/",
        "/api/v1/query",
        "/api/v1/query_range",
        "/api/v1/series",
        "/api/v1/labels",
        "/api/v1/write",
        "/metrics",
        "/-/healthy",
        "/-/ready",
        "/static/*filepath",
    ];
    let ms = handlers
        .iter()
        .flat_map(|h| ["GET", "POST"].map(|m| (*h, m)))
        .flat_map(|(h, m)| ["200", "400", "500"].map(|c| (h, m, c)))
        .map(|(h, m, c)| {
            metric(
                &[("code", c), ("handler", h), ("method", m)],
                rng.histogram(&bounds),
            )
        })
        .collect();
    f.push(family(
        "http_request_duration_seconds",
        "Histogram of latencies for HTTP requests.",
        Histogram,
        ms,
    ));
    let size_bounds = [100.0, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11];
    let ms = handlers
        .iter()
        .map(|h| metric(&[("handler", h)], rng.histogram(&size_bounds)))
        .collect();
    f.push(family(
        "http_response_size_bytes",
        "Histogram of response size for HTTP requests.",
        Histogram,
        ms,
    ));
    let ms = ["exponential", "normal", "uniform"]
        .iter()
        .map(|s| metric(&[("service", s)], rng.summary(&[0.5, 0.9, 0.99])))
        .collect();
    f.push(family(
        "rpc_durations_seconds",
        "RPC latency distributions.",
        Summary,
        ms,
    ));

    // Label-heavy: ten labels, long values.
    let ms = (0..150)
        .map(|i| {
            let uid = format!(
                "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
                rng.next() as u32,
                rng.below(1 << 16),
                rng.below(1 << 12),
                rng.below(1 << 12),
                rng.below(1 << 48)
            );
            let ns = ["default", "kube-system", "monitoring", "payments-prod"][i % 4];
            let owner = format!("checkout-api-7d9f8c6b{}", i % 7);
            let pod = format!("{owner}-{:05x}", rng.below(1 << 20));
            let host_ip = format!("10.0.{}.{}", i / 40, 10 + i % 40);
            let pod_ip = format!("10.244.{}.{}", i / 50, 2 + i % 200);
            let node = format!("worker-{}.eu-west-1.compute.internal", i % 12);
            metric(
                &[
                    ("created_by_kind", "ReplicaSet"),
                    ("created_by_name", &owner),
                    ("host_ip", &host_ip),
                    ("host_network", "false"),
                    ("namespace", ns),
                    ("node", &node),
                    ("pod", &pod),
                    ("pod_ip", &pod_ip),
                    ("priority_class", "production-high"),
                    ("uid", &uid),
                ],
                single(1.0),
            )
        })
        .collect();
    f.push(family("kube_pod_info", "Information about pod.", Gauge, ms));

    // Fill up to SAMPLES with node_interrupts_total, as node_exporter lists
    // one series per interrupt line and CPU (16 CPUs, as above).
    let so_far: usize = f.iter().map(Family::samples).sum();
    let named = [
        ("LOC", "Local timer interrupts"),
        ("RES", "Rescheduling interrupts"),
        ("CAL", "Function call interrupts"),
        ("TLB", "TLB shootdowns"),
        ("NMI", "Non-maskable interrupts"),
        ("PMI", "Performance monitoring interrupts"),
    ];
    let ms = (0..SAMPLES - so_far)
        .map(|i| {
            let (line, cpu) = (i / 16, (i % 16).to_string());
            let number = (line - named.len().min(line)).to_string();
            let (irq, devices, info, ty) = match named.get(line) {
                Some(&(irq, info)) => (irq, "", info, ""),
                None if line % 2 == 0 => (number.as_str(), "acpi", "9-fasteoi", "IO-APIC"),
                None => (
                    number.as_str(),
                    "nvme0q0, ehci_hcd:usb1",
                    "1-edge",
                    "PCI-MSI",
                ),
            };
            metric(
                &[
                    ("cpu", &cpu),
                    ("devices", devices),
                    ("info", info),
                    ("irq", irq),
                    ("type", ty),
                ],
                single(rng.value(8, 0)),
            )
        })
        .collect();
    f.push(family(
        "node_interrupts_total",
        "Interrupt details.",
        Counter,
        ms,
    ));
    assert_eq!(f.iter().map(Family::samples).sum::<usize>(), SAMPLES);
    f
}

// --- the encodings ---------------------------------------------------------

/// Formats a float as Go's `strconv.FormatFloat(v, 'g', -1, 64)`, as the
/// text format writes values and `le`/`quantile` labels (`1e+06`, `0.005`).
fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let e = format!("{v:e}");
    let (mantissa, exp) = e.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent");
    // Go switches to the exponent form for the shortest 'g' at 1e+06.
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{v}")
    }
}

/// Formats a float as client_golang's OpenMetrics encoder: Go's shortest
/// form with `.0` added to an integral value.
fn om_float(v: f64) -> String {
    let s = go_float(v);
    if s.bytes().any(|b| matches!(b, b'.' | b'e' | b'I' | b'N')) {
        s
    } else {
        s + ".0"
    }
}

fn escape(s: &str, quotes: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quotes => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

/// Writes `name{labels[,extra]} value\n`.
fn sample(
    out: &mut String,
    name: &str,
    labels: &[(String, String)],
    extra: Option<(&str, &str)>,
    value: &str,
) {
    out.push_str(name);
    let extra = extra.map(|(n, v)| (n.to_string(), v.to_string()));
    let all: Vec<_> = labels.iter().chain(extra.iter()).collect();
    if !all.is_empty() {
        out.push('{');
        for (i, (n, v)) in all.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{n}=\"{}\"", escape(v, true));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

fn kind_str(kind: Kind) -> &'static str {
    match kind {
        Kind::Counter => "counter",
        Kind::Gauge => "gauge",
        Kind::Histogram => "histogram",
        Kind::Summary => "summary",
    }
}

/// Renders the text format 0.0.4 as client_golang's `expfmt` writes it.
fn render_text(families: &[Family]) -> Vec<u8> {
    render(families, false)
}

/// Renders OpenMetrics 1.0 as client_golang's OpenMetrics encoder writes it.
fn render_openmetrics(families: &[Family]) -> Vec<u8> {
    render(families, true)
}

fn render(families: &[Family], om: bool) -> Vec<u8> {
    let float = if om { om_float } else { go_float };
    // Counts are integers in OpenMetrics, floats in the text format.
    let count = |c: u64| {
        if om {
            c.to_string()
        } else {
            go_float(c as f64)
        }
    };
    let mut out = String::new();
    for f in families {
        let name = f.name.as_str();
        let family_name = match (om, f.kind) {
            (true, Kind::Counter) => name.strip_suffix("_total").unwrap_or(name),
            _ => name,
        };
        let _ = writeln!(out, "# HELP {family_name} {}", escape(&f.help, om));
        let _ = writeln!(out, "# TYPE {family_name} {}", kind_str(f.kind));
        for m in &f.metrics {
            let l = &m.labels;
            match &m.value {
                Value::Single(v) => sample(&mut out, name, l, None, &float(*v)),
                Value::Histogram {
                    buckets,
                    count: n,
                    sum,
                } => {
                    let bucket = format!("{name}_bucket");
                    for (le, c) in buckets {
                        sample(&mut out, &bucket, l, Some(("le", &float(*le))), &count(*c));
                    }
                    sample(&mut out, &bucket, l, Some(("le", "+Inf")), &count(*n));
                    sample(&mut out, &format!("{name}_sum"), l, None, &float(*sum));
                    sample(&mut out, &format!("{name}_count"), l, None, &count(*n));
                }
                Value::Summary {
                    quantiles,
                    count: n,
                    sum,
                } => {
                    for (q, v) in quantiles {
                        sample(
                            &mut out,
                            name,
                            l,
                            Some(("quantile", &float(*q))),
                            &float(*v),
                        );
                    }
                    sample(&mut out, &format!("{name}_sum"), l, None, &float(*sum));
                    sample(&mut out, &format!("{name}_count"), l, None, &count(*n));
                }
            }
        }
    }
    if om {
        out.push_str("# EOF\n");
    }
    out.into_bytes()
}

/// Renders length-delimited `MetricFamily` messages as client_golang's
/// `expfmt` protobuf encoder writes them.
fn render_protobuf(families: &[Family]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in families {
        let metric = f
            .metrics
            .iter()
            .map(|m| {
                let mut pm = pb::Metric {
                    label: m
                        .labels
                        .iter()
                        .map(|(n, v)| pb::LabelPair {
                            name: n.as_bytes().to_vec(),
                            value: v.as_bytes().to_vec(),
                        })
                        .collect(),
                    ..Default::default()
                };
                match (&m.value, f.kind) {
                    (Value::Single(v), Kind::Counter) => {
                        pm.counter = Some(Box::new(pb::Counter {
                            value: *v,
                            exemplar: None,
                        }))
                    }
                    (Value::Single(v), _) => pm.gauge = Some(Box::new(pb::Gauge { value: *v })),
                    (
                        Value::Histogram {
                            buckets,
                            count,
                            sum,
                        },
                        _,
                    ) => {
                        pm.histogram = Some(Box::new(pb::Histogram {
                            sample_count: *count,
                            sample_sum: *sum,
                            bucket: buckets
                                .iter()
                                .map(|&(le, c)| pb::Bucket {
                                    cumulative_count: c,
                                    upper_bound: le,
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        }))
                    }
                    (
                        Value::Summary {
                            quantiles,
                            count,
                            sum,
                        },
                        _,
                    ) => {
                        pm.summary = Some(Box::new(pb::Summary {
                            sample_count: *count,
                            sample_sum: *sum,
                            quantile: quantiles
                                .iter()
                                .map(|&(quantile, value)| pb::Quantile { quantile, value })
                                .collect(),
                        }))
                    }
                }
                pm
            })
            .collect();
        let ty = match f.kind {
            Kind::Counter => pb::MetricType::Counter,
            Kind::Gauge => pb::MetricType::Gauge,
            Kind::Histogram => pb::MetricType::Histogram,
            Kind::Summary => pb::MetricType::Summary,
        };
        pb::MetricFamily {
            name: f.name.as_bytes().to_vec(),
            help: f.help.as_bytes().to_vec(),
            r#type: ty as i32,
            metric,
        }
        .encode_length_delimited(&mut out)
        .expect("a Vec grows as needed");
    }
    out
}
