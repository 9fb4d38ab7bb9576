//! The benchmark's body: a node_exporter / client_golang shaped set of
//! metric families ([`families`]); [`super::render`] encodes them.

use scrapegrid_common::xorshift::XorShift;

use super::SAMPLES;

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
}

pub(super) enum Value {
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

pub(super) struct Metric {
    /// Sorted by name, as client_golang sorts them.
    pub(super) labels: Vec<(String, String)>,
    pub(super) value: Value,
}

pub(super) struct Family {
    pub(super) name: String,
    pub(super) help: String,
    pub(super) kind: Kind,
    pub(super) metrics: Vec<Metric>,
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

/// The shared deterministic generator, so every run sees the same body,
/// with the value shapes of this body.
pub(super) struct Rng(XorShift);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0.below(n)
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

pub(super) fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut l: Vec<_> = pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    l.sort();
    l
}

pub(super) fn metric(pairs: &[(&str, &str)], value: Value) -> Metric {
    Metric {
        labels: labels(pairs),
        value,
    }
}

pub(super) fn family(name: &str, help: &str, kind: Kind, metrics: Vec<Metric>) -> Family {
    Family {
        name: name.into(),
        help: help.into(),
        kind,
        metrics,
    }
}

/// Returns the benchmark's metrics: exactly [`SAMPLES`] samples.
pub(super) fn families() -> Vec<Family> {
    use Kind::*;
    let mut rng = Rng(XorShift::new(0x9e37_79b9_7f4a_7c15));
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
