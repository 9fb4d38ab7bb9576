//! The host's metrics as node_exporter exposes them: [`render`] reads
//! `proc/...`, `sys/...` and the mounted filesystems under a root directory
//! (`/` in production) and returns the Prometheus text exposition (format
//! 0.0.4) of the scraper's `host` integration.
//!
//! It follows Debian bookworm's `prometheus-node-exporter` 1.5.0 with its
//! default flags (names, HELP texts, types, labels, units, which devices
//! count), collector by collector:
//!
//! - `cpu`: `node_cpu_seconds_total` and `node_cpu_guest_seconds_total` from
//!   `proc/stat` (USER_HZ 100); as in 1.5, guest time also stays in `user`
//!   and `nice`. Left out: the thermal throttle counters, `node_cpu_isolated`,
//!   and node_exporter's memory of the last scrape that keeps counters from
//!   going backwards (each render reads afresh).
//! - `loadavg`: `node_load1`, `node_load5`, `node_load15` from `proc/loadavg`.
//! - `meminfo`: `node_memory_<field>` from `proc/meminfo`: `kB` fields ×1024
//!   with `_bytes`, `Active(anon)` as `Active_anon`.
//! - `stat`: boot time, context switches, forks, interrupts, running and
//!   blocked processes from `proc/stat`.
//! - `netdev`: the 17 `node_network_{receive,transmit}_*_total` families. 1.5
//!   reads them over netlink and folds the detailed error counters as
//!   `/proc/net/dev` does, so `proc/net/dev` gives the same values;
//!   `receive_nohandler` comes from `sys/class/net/<dev>/statistics/rx_nohandler`
//!   (0 when absent). Debian's `--collector.netdev.device-exclude=^lo$` drops
//!   `lo` (upstream 1.5.0 has no default).
//! - `diskstats`: the `node_disk_*` families of `proc/diskstats`, as many as
//!   the kernel's lines have fields (11, 15 or 17), with the default
//!   `--collector.diskstats.device-exclude`. Left out: `node_disk_info` and
//!   the other families built from udev's data.
//! - `filesystem`: `node_filesystem_*` for the mounts in `proc/1/mounts`
//!   (else `proc/mounts`), statvfs on each mount point under the root, with
//!   Debian's mount point excludes (upstream's plus `run`, `mnt`, `media`)
//!   and the default fs type excludes. Left out: the timeout that marks a
//!   hanging mount as stuck; statvfs on it blocks the caller.
//!
//! Families come sorted by name and samples by label values, values
//! formatted as client_golang writes them. A file that cannot be read
//! leaves its collector's families out; a malformed line is skipped (where
//! node_exporter fails the whole collector).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io;
use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;

use crate::exposition::{escape, go_float};
use crate::labels::is_valid_metric_name;

/// The unit of the times in `/proc/stat`.
const USER_HZ: f64 = 100.0;
/// `/proc/diskstats` counts 512-byte sectors and milliseconds.
const SECTOR: f64 = 512.0;
const MS: f64 = 0.001;
/// A bound on `cpuN` numbers, so a corrupt line cannot allocate without end.
const MAX_CPUS: usize = 1 << 16;

const COUNTER: &str = "counter";
const GAUGE: &str = "gauge";

/// Debian's default `--collector.netdev.device-exclude`.
static NETDEV_EXCLUDE: LazyLock<Regex> = LazyLock::new(|| fixed_regex("^lo$"));
/// The default `--collector.diskstats.device-exclude` (`\d` as `[0-9]`:
/// Go's `\d` is ASCII only).
static DISK_EXCLUDE: LazyLock<Regex> =
    LazyLock::new(|| fixed_regex("^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme[0-9]+n[0-9]+p)[0-9]+$"));
/// Debian's default `--collector.filesystem.mount-points-exclude`.
static MOUNT_POINTS_EXCLUDE: LazyLock<Regex> = LazyLock::new(|| {
    fixed_regex(
        "^/(dev|proc|run|sys|mnt|media|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)",
    )
});
/// The default `--collector.filesystem.fs-types-exclude`.
static FS_TYPES_EXCLUDE: LazyLock<Regex> = LazyLock::new(|| {
    fixed_regex(
        "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|\
         iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|\
         squashfs|sysfs|tracefs)$",
    )
});
/// `Active(anon)` -> `Active_anon`.
static PARENS: LazyLock<Regex> = LazyLock::new(|| fixed_regex(r"\((.*)\)"));

fn fixed_regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("a fixed pattern compiles")
}

/// Returns the host's metrics, read from the files under `root`, as the
/// body of a `text/plain; version=0.0.4` response.
pub fn render(root: &Path) -> String {
    let mut all = Families::default();
    for part in [
        cpu(root),
        loadavg(root),
        meminfo(root),
        stat(root),
        netdev(root),
        diskstats(root),
        filesystems(root, statvfs),
    ] {
        all.0.extend(part.0);
    }
    all.render()
}

/// Metric families by name.
#[derive(Default)]
struct Families(BTreeMap<String, Family>);

struct Family {
    help: String,
    kind: &'static str,
    /// Values by labels (sorted by name), so samples come out sorted by
    /// label values as client_golang sorts them.
    samples: BTreeMap<Vec<(&'static str, String)>, f64>,
}

impl Family {
    /// Adds a sample; client_golang keeps the first of two with the same labels.
    fn set(&mut self, labels: &[(&'static str, &str)], value: f64) {
        let mut labels: Vec<_> = labels.iter().map(|&(n, v)| (n, v.to_owned())).collect();
        labels.sort_by(|a, b| a.0.cmp(b.0));
        self.samples.entry(labels).or_insert(value);
    }
}

impl Families {
    /// The family `name`, created empty if new.
    fn family(&mut self, name: &str, help: &str, kind: &'static str) -> &mut Family {
        self.0.entry(name.to_owned()).or_insert_with(|| Family {
            help: help.to_owned(),
            kind,
            samples: BTreeMap::new(),
        })
    }

    /// Writes the text exposition.
    fn render(&self) -> String {
        let mut out = String::new();
        for (name, family) in &self.0 {
            let _ = writeln!(out, "# HELP {name} {}", escape(&family.help, false));
            let _ = writeln!(out, "# TYPE {name} {}", family.kind);
            for (labels, value) in &family.samples {
                out.push_str(name);
                for (i, (label, v)) in labels.iter().enumerate() {
                    out.push(if i == 0 { '{' } else { ',' });
                    let _ = write!(out, "{label}=\"{}\"", escape(v, true));
                }
                if !labels.is_empty() {
                    out.push('}');
                }
                let _ = writeln!(out, " {}", go_float(*value));
            }
        }
        out
    }
}

/// Reads `rel` under `root`; `None` when it cannot be read.
fn read(root: &Path, rel: &str) -> Option<String> {
    let bytes = std::fs::read(root.join(rel)).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// The modes of `node_cpu_seconds_total` in `/proc/stat`'s column order;
/// `guest` and `guest_nice` follow.
const CPU_MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];

/// The `cpu` collector.
fn cpu(root: &Path) -> Families {
    let mut out = Families::default();
    let Some(text) = read(root, "proc/stat") else {
        return out;
    };
    // By CPU number: a CPU missing from the file reads as zeros, as in 1.5.
    let mut cpus: Vec<[f64; 10]> = Vec::new();
    for (id, times) in text.lines().filter_map(cpu_line) {
        if cpus.len() <= id {
            cpus.resize(id + 1, [0.0; 10]);
        }
        cpus[id] = times;
    }
    for (id, times) in cpus.iter().enumerate() {
        let cpu = id.to_string();
        let help = "Seconds the CPUs spent in each mode.";
        let seconds = out.family("node_cpu_seconds_total", help, COUNTER);
        for (mode, v) in CPU_MODES.into_iter().zip(times.iter().copied()) {
            seconds.set(&[("cpu", cpu.as_str()), ("mode", mode)], v);
        }
        let help = "Seconds the CPUs spent in guests (VMs) for each mode.";
        let guest = out.family("node_cpu_guest_seconds_total", help, COUNTER);
        for (mode, v) in [("user", times[8]), ("nice", times[9])] {
            guest.set(&[("cpu", cpu.as_str()), ("mode", mode)], v);
        }
    }
    out
}

/// Parses a `cpuN` line of `/proc/stat`: the CPU's number and its ten
/// times in seconds (missing trailing fields are 0).
fn cpu_line(line: &str) -> Option<(usize, [f64; 10])> {
    let mut fields = line.split_whitespace();
    let id: usize = fields.next()?.strip_prefix("cpu")?.parse().ok()?;
    if id >= MAX_CPUS {
        return None;
    }
    let mut times = [0.0; 10];
    for (time, field) in times.iter_mut().zip(fields) {
        *time = field.parse::<f64>().ok()? / USER_HZ;
    }
    Some((id, times))
}

/// The `loadavg` collector.
fn loadavg(root: &Path) -> Families {
    let mut out = Families::default();
    let Some(text) = read(root, "proc/loadavg") else {
        return out;
    };
    let loads: Option<Vec<f64>> = text
        .split_whitespace()
        .take(3)
        .map(|f| f.parse().ok())
        .collect();
    let Some(loads) = loads.filter(|l| l.len() == 3) else {
        return out;
    };
    for (minutes, load) in ["1", "5", "15"].into_iter().zip(loads) {
        let help = format!("{minutes}m load average.");
        out.family(&format!("node_load{minutes}"), &help, GAUGE)
            .set(&[], load);
    }
    out
}

/// The `meminfo` collector.
fn meminfo(root: &Path) -> Families {
    let mut out = Families::default();
    let Some(text) = read(root, "proc/meminfo") else {
        return out;
    };
    let mut fields = BTreeMap::new();
    for (field, value) in text.lines().filter_map(meminfo_line) {
        // A field given twice keeps its last value, as in node_exporter's map.
        fields.insert(field, value);
    }
    for (field, value) in fields {
        let name = format!("node_memory_{field}");
        let kind = if field.ends_with("_total") {
            COUNTER
        } else {
            GAUGE
        };
        if is_valid_metric_name(&name) {
            let help = format!("Memory information field {field}.");
            out.family(&name, &help, kind).set(&[], value);
        }
    }
    out
}

/// Parses `Active(anon):   24 kB` into `("Active_anon_bytes", 24576.0)`; a
/// field without a unit keeps its name (`HugePages_Total:   0`).
fn meminfo_line(line: &str) -> Option<(String, f64)> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (key, value, has_unit) = match fields[..] {
        [key, value] => (key, value, false),
        [key, value, _unit] => (key, value, true),
        _ => return None,
    };
    let mut value: f64 = value.parse().ok()?;
    let mut key = key.chars();
    key.next_back(); // the colon
    let mut field = PARENS.replace_all(key.as_str(), "_${1}").into_owned();
    if has_unit {
        value *= 1024.0;
        field.push_str("_bytes");
    }
    Some((field, value))
}

/// The `stat` collector's metrics: `/proc/stat` key, name, type, HELP.
#[rustfmt::skip]
const STAT_METRICS: [(&str, &str, &str, &str); 6] = [
    ("btime", "node_boot_time_seconds", GAUGE, "Node boot time, in unixtime."),
    ("ctxt", "node_context_switches_total", COUNTER, "Total number of context switches."),
    ("processes", "node_forks_total", COUNTER, "Total number of forks."),
    ("intr", "node_intr_total", COUNTER, "Total number of interrupts serviced."),
    ("procs_blocked", "node_procs_blocked", GAUGE, "Number of processes blocked waiting for I/O to complete."),
    ("procs_running", "node_procs_running", GAUGE, "Number of processes in runnable state."),
];

/// The `stat` collector: a key missing from the file reads as 0.
fn stat(root: &Path) -> Families {
    let mut out = Families::default();
    let Some(text) = read(root, "proc/stat") else {
        return out;
    };
    let mut values: BTreeMap<&str, u64> = BTreeMap::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        if let (Some(key), Some(Ok(value))) = (fields.next(), fields.next().map(str::parse)) {
            values.insert(key, value);
        }
    }
    for (key, name, kind, help) in STAT_METRICS {
        let value = values.get(key).copied().unwrap_or(0);
        out.family(name, help, kind).set(&[], value as f64);
    }
    out
}

/// `/proc/net/dev`'s columns, named as node_exporter names them.
#[rustfmt::skip]
const NETDEV_COLUMNS: [&str; 16] = [
    "receive_bytes", "receive_packets", "receive_errs", "receive_drop",
    "receive_fifo", "receive_frame", "receive_compressed", "receive_multicast",
    "transmit_bytes", "transmit_packets", "transmit_errs", "transmit_drop",
    "transmit_fifo", "transmit_colls", "transmit_carrier", "transmit_compressed",
];

/// The `netdev` collector.
fn netdev(root: &Path) -> Families {
    let mut out = Families::default();
    let Some(text) = read(root, "proc/net/dev") else {
        return out;
    };
    for (device, counters) in text.lines().filter_map(netdev_line) {
        if NETDEV_EXCLUDE.is_match(device) {
            continue;
        }
        let nohandler = read(
            root,
            &format!("sys/class/net/{device}/statistics/rx_nohandler"),
        );
        let nohandler = nohandler
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let stats = NETDEV_COLUMNS.into_iter().zip(counters);
        for (stat, value) in stats.chain([("receive_nohandler", nohandler)]) {
            let help = format!("Network device statistic {stat}.");
            let family = out.family(&format!("node_network_{stat}_total"), &help, COUNTER);
            family.set(&[("device", device)], value as f64);
        }
    }
    out
}

/// Parses a device's line of `/proc/net/dev`: `  eth0: 123 45 ...`.
fn netdev_line(line: &str) -> Option<(&str, [u64; 16])> {
    let (device, rest) = line.split_once(':')?;
    let device = device.trim();
    if device.is_empty() || device.contains('/') {
        return None;
    }
    let mut counters = [0; 16];
    let mut fields = rest.split_whitespace();
    for counter in &mut counters {
        *counter = fields.next()?.parse().ok()?;
    }
    Some((device, counters))
}

/// The `node_disk_*` families in `/proc/diskstats`' column order after the
/// device name: name, type, factor to the exposed unit, HELP as 1.5 writes
/// it (discards in sectors; no full stop after the flush requests).
#[rustfmt::skip]
const DISK_STATS: [(&str, &str, f64, &str); 17] = [
    ("reads_completed_total", COUNTER, 1.0, "The total number of reads completed successfully."),
    ("reads_merged_total", COUNTER, 1.0, "The total number of reads merged."),
    ("read_bytes_total", COUNTER, SECTOR, "The total number of bytes read successfully."),
    ("read_time_seconds_total", COUNTER, MS, "The total number of seconds spent by all reads."),
    ("writes_completed_total", COUNTER, 1.0, "The total number of writes completed successfully."),
    ("writes_merged_total", COUNTER, 1.0, "The number of writes merged."),
    ("written_bytes_total", COUNTER, SECTOR, "The total number of bytes written successfully."),
    ("write_time_seconds_total", COUNTER, MS, "This is the total number of seconds spent by all writes."),
    ("io_now", GAUGE, 1.0, "The number of I/Os currently in progress."),
    ("io_time_seconds_total", COUNTER, MS, "Total seconds spent doing I/Os."),
    ("io_time_weighted_seconds_total", COUNTER, MS, "The weighted # of seconds spent doing I/Os."),
    ("discards_completed_total", COUNTER, 1.0, "The total number of discards completed successfully."),
    ("discards_merged_total", COUNTER, 1.0, "The total number of discards merged."),
    ("discarded_sectors_total", COUNTER, 1.0, "The total number of sectors discarded successfully."),
    ("discard_time_seconds_total", COUNTER, MS, "This is the total number of seconds spent by all discards."),
    ("flush_requests_total", COUNTER, 1.0, "The total number of flush requests completed successfully"),
    ("flush_requests_time_seconds_total", COUNTER, MS, "This is the total number of seconds spent by all flush requests."),
];

/// The `diskstats` collector.
fn diskstats(root: &Path) -> Families {
    let mut out = Families::default();
    let Some(text) = read(root, "proc/diskstats") else {
        return out;
    };
    for (device, counters) in text.lines().filter_map(diskstats_line) {
        if DISK_EXCLUDE.is_match(device) {
            continue;
        }
        for ((name, kind, factor, help), value) in DISK_STATS.into_iter().zip(counters) {
            let family = out.family(&format!("node_disk_{name}"), help, kind);
            family.set(&[("device", device)], value as f64 * factor);
        }
    }
    out
}

/// Parses a line of `/proc/diskstats`: `major minor device` and 11 (kernels
/// before 4.18), 15 (before 5.5) or 17 counters.
fn diskstats_line(line: &str) -> Option<(&str, Vec<u64>)> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() < 14 || fields[0].parse::<u32>().is_err() || fields[1].parse::<u32>().is_err() {
        return None;
    }
    let counters = fields[3..fields.len().min(20)]
        .iter()
        .map(|f| f.parse().ok());
    Some((fields[2], counters.collect::<Option<Vec<u64>>>()?))
}

/// What statvfs tells of a filesystem: block counts in `block_size` units
/// (`f_bsize`, which node_exporter multiplies them by).
struct FsStats {
    block_size: u64,
    blocks: u64,
    blocks_free: u64,
    blocks_avail: u64,
    files: u64,
    files_free: u64,
}

/// The `filesystem` collector: `statvfs` gets each included mount point
/// joined under `root`.
fn filesystems(root: &Path, statvfs: impl Fn(&Path) -> io::Result<FsStats>) -> Families {
    let mut out = Families::default();
    let Some(text) = read(root, "proc/1/mounts").or_else(|| read(root, "proc/mounts")) else {
        return out;
    };
    let mut seen = BTreeSet::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [device, mount_point, fs_type, options, ..] = fields[..] else {
            continue;
        };
        // fstab(5)'s escapes for a space and a tab: the two node_exporter undoes.
        let mount_point = mount_point.replace("\\040", " ").replace("\\011", "\t");
        if MOUNT_POINTS_EXCLUDE.is_match(&mount_point) || FS_TYPES_EXCLUDE.is_match(fs_type) {
            continue;
        }
        // A filesystem mounted twice alike is exposed once.
        if !seen.insert((device, mount_point.clone(), fs_type)) {
            continue;
        }
        let labels = [
            ("device", device),
            ("fstype", fs_type),
            ("mountpoint", mount_point.as_str()),
        ];
        let stats = statvfs(&root.join(mount_point.trim_start_matches('/')));
        let help = "Whether an error occurred while getting statistics for the given device.";
        let error = if stats.is_err() { 1.0 } else { 0.0 };
        out.family("node_filesystem_device_error", help, GAUGE)
            .set(&labels, error);
        let Ok(s) = stats else {
            continue;
        };
        let (block, read_only) = (s.block_size as f64, options.split(',').any(|o| o == "ro"));
        #[rustfmt::skip]
        let metrics = [
            ("size_bytes", "Filesystem size in bytes.", s.blocks as f64 * block),
            ("free_bytes", "Filesystem free space in bytes.", s.blocks_free as f64 * block),
            ("avail_bytes", "Filesystem space available to non-root users in bytes.", s.blocks_avail as f64 * block),
            ("files", "Filesystem total file nodes.", s.files as f64),
            ("files_free", "Filesystem total free file nodes.", s.files_free as f64),
            ("readonly", "Filesystem read-only status.", if read_only { 1.0 } else { 0.0 }),
        ];
        for (name, help, value) in metrics {
            out.family(&format!("node_filesystem_{name}"), help, GAUGE)
                .set(&labels, value);
        }
    }
    out
}

/// `statvfs(3)` on `path`.
#[allow(clippy::unnecessary_cast)] // the field types differ between targets
fn statvfs(path: &Path) -> io::Result<FsStats> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut buf = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is NUL-terminated and `buf` has room for one `statvfs`.
    if unsafe { libc::statvfs(path.as_ptr(), buf.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled `buf`.
    let s = unsafe { buf.assume_init() };
    Ok(FsStats {
        block_size: s.f_bsize as u64,
        blocks: s.f_blocks as u64,
        blocks_free: s.f_bfree as u64,
        blocks_avail: s.f_bavail as u64,
        files: s.f_files as u64,
        files_free: s.f_ffree as u64,
    })
}

#[cfg(test)]
mod tests;
