//! The collectors on fixture trees, line by line.
use std::cell::RefCell;

use super::*;

/// A root holding `files`: (path under the root, contents).
fn fixture(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

fn lines_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.contains(needle)).collect()
}

#[test]
fn families_sort_as_client_golang_and_escape() {
    let mut f = Families::default();
    let b = f.family("b", "B.", GAUGE);
    b.set(&[("x", "2"), ("a", "z")], 2.0);
    b.set(&[("x", "10"), ("a", "z")], 10.0);
    b.set(&[("x", "10"), ("a", "z")], 99.0); // a duplicate: dropped
    let a = f.family("a", "Back\\slash\nline \"q\".", COUNTER);
    a.set(&[("l", "q\"b\\n\nl")], 1.0);
    let want = r#"# HELP a Back\\slash\nline "q".
# TYPE a counter
a{l="q\"b\\n\nl"} 1
# HELP b B.
# TYPE b gauge
b{a="z",x="10"} 10
b{a="z",x="2"} 2
"#;
    assert_eq!(f.render(), want);
}

const LOADAVG: &str = "0.39 1.08 1.2 1/118 23918\n";
const STAT: &str = "cpu  2095382 657 318706 3665213 13935 6 8046 13835 25 3
cpu0 2095381 655 318703 3665209 13930 0 8039 13827 25 3
cpu1 1 2 3 4 5 6 7 8
cpu2 1 x 3
cpuX 1 2 3
intr 58439791 0 0 1
ctxt 108389698
btime 1796573520
processes 1711828
procs_running 3
procs_blocked x
";

#[test]
fn cpu_seconds_keep_guest_time_in_user() {
    let root = fixture(&[("proc/stat", STAT)]);
    let want = r#"# HELP node_cpu_guest_seconds_total Seconds the CPUs spent in guests (VMs) for each mode.
# TYPE node_cpu_guest_seconds_total counter
node_cpu_guest_seconds_total{cpu="0",mode="nice"} 0.03
node_cpu_guest_seconds_total{cpu="0",mode="user"} 0.25
node_cpu_guest_seconds_total{cpu="1",mode="nice"} 0
node_cpu_guest_seconds_total{cpu="1",mode="user"} 0
# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu="0",mode="idle"} 36652.09
node_cpu_seconds_total{cpu="0",mode="iowait"} 139.3
node_cpu_seconds_total{cpu="0",mode="irq"} 0
node_cpu_seconds_total{cpu="0",mode="nice"} 6.55
node_cpu_seconds_total{cpu="0",mode="softirq"} 80.39
node_cpu_seconds_total{cpu="0",mode="steal"} 138.27
node_cpu_seconds_total{cpu="0",mode="system"} 3187.03
node_cpu_seconds_total{cpu="0",mode="user"} 20953.81
node_cpu_seconds_total{cpu="1",mode="idle"} 0.04
node_cpu_seconds_total{cpu="1",mode="iowait"} 0.05
node_cpu_seconds_total{cpu="1",mode="irq"} 0.06
node_cpu_seconds_total{cpu="1",mode="nice"} 0.02
node_cpu_seconds_total{cpu="1",mode="softirq"} 0.07
node_cpu_seconds_total{cpu="1",mode="steal"} 0.08
node_cpu_seconds_total{cpu="1",mode="system"} 0.03
node_cpu_seconds_total{cpu="1",mode="user"} 0.01
"#;
    assert_eq!(cpu(root.path()).render(), want);
}

#[test]
fn stat_and_loadavg() {
    let root = fixture(&[("proc/stat", STAT), ("proc/loadavg", LOADAVG)]);
    let want = "# HELP node_boot_time_seconds Node boot time, in unixtime.
# TYPE node_boot_time_seconds gauge
node_boot_time_seconds 1.79657352e+09
# HELP node_context_switches_total Total number of context switches.
# TYPE node_context_switches_total counter
node_context_switches_total 1.08389698e+08
# HELP node_forks_total Total number of forks.
# TYPE node_forks_total counter
node_forks_total 1.711828e+06
# HELP node_intr_total Total number of interrupts serviced.
# TYPE node_intr_total counter
node_intr_total 5.8439791e+07
# HELP node_procs_blocked Number of processes blocked waiting for I/O to complete.
# TYPE node_procs_blocked gauge
node_procs_blocked 0
# HELP node_procs_running Number of processes in runnable state.
# TYPE node_procs_running gauge
node_procs_running 3
";
    assert_eq!(stat(root.path()).render(), want);
    let want = "# HELP node_load1 1m load average.
# TYPE node_load1 gauge
node_load1 0.39
# HELP node_load15 15m load average.
# TYPE node_load15 gauge
node_load15 1.2
# HELP node_load5 5m load average.
# TYPE node_load5 gauge
node_load5 1.08
";
    assert_eq!(loadavg(root.path()).render(), want);
}

#[test]
fn meminfo_units_and_names() {
    let text = "MemTotal:       24683772 kB\nActive(anon):         24 kB\n\
        HugePages_Total:       0\nBroken:  x kB\nOdd: 1 2 3\n\nHugepagesize:       2048 kB\n";
    let root = fixture(&[("proc/meminfo", text)]);
    let want = "# HELP node_memory_Active_anon_bytes Memory information field Active_anon_bytes.
# TYPE node_memory_Active_anon_bytes gauge
node_memory_Active_anon_bytes 24576
# HELP node_memory_HugePages_Total Memory information field HugePages_Total.
# TYPE node_memory_HugePages_Total gauge
node_memory_HugePages_Total 0
# HELP node_memory_Hugepagesize_bytes Memory information field Hugepagesize_bytes.
# TYPE node_memory_Hugepagesize_bytes gauge
node_memory_Hugepagesize_bytes 2.097152e+06
# HELP node_memory_MemTotal_bytes Memory information field MemTotal_bytes.
# TYPE node_memory_MemTotal_bytes gauge
node_memory_MemTotal_bytes 2.5276182528e+10
";
    assert_eq!(meminfo(root.path()).render(), want);
}

#[test]
fn netdev_names_values_and_lo_excluded() {
    let dev = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
lo: 17137901281 9815587    0    0    0     0          0         0 17137901281 9815587    0    0    0     0       0          0
  eth0: 356901779   15007    1    2    3     4          5         6   993030   11512    7    8    9    10      11         12
  ifb0:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  bad0: 1 2 3
";
    let nohandler = "sys/class/net/eth0/statistics/rx_nohandler";
    let root = fixture(&[("proc/net/dev", dev), (nohandler, "7\n")]);
    let out = netdev(root.path()).render();
    let want = r#"node_network_receive_bytes_total{device="eth0"} 3.56901779e+08
node_network_receive_compressed_total{device="eth0"} 5
node_network_receive_drop_total{device="eth0"} 2
node_network_receive_errs_total{device="eth0"} 1
node_network_receive_fifo_total{device="eth0"} 3
node_network_receive_frame_total{device="eth0"} 4
node_network_receive_multicast_total{device="eth0"} 6
node_network_receive_nohandler_total{device="eth0"} 7
node_network_receive_packets_total{device="eth0"} 15007
node_network_transmit_bytes_total{device="eth0"} 993030
node_network_transmit_carrier_total{device="eth0"} 11
node_network_transmit_colls_total{device="eth0"} 10
node_network_transmit_compressed_total{device="eth0"} 12
node_network_transmit_drop_total{device="eth0"} 8
node_network_transmit_errs_total{device="eth0"} 7
node_network_transmit_fifo_total{device="eth0"} 9
node_network_transmit_packets_total{device="eth0"} 11512"#;
    assert_eq!(lines_with(&out, "eth0"), want.lines().collect::<Vec<_>>());
    assert_eq!(lines_with(&out, "ifb0").len(), 17);
    assert!(out.contains("node_network_receive_nohandler_total{device=\"ifb0\"} 0\n"));
    assert!(!out.contains("\"lo\"") && !out.contains("bad0"), "{out}");
    assert!(out.starts_with(
        "# HELP node_network_receive_bytes_total Network device statistic receive_bytes.\n\
         # TYPE node_network_receive_bytes_total counter\n"
    ));
}

#[test]
fn diskstats_units_fields_and_excludes() {
    let text = "   7       0 loop0 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 254       0 vda 8138730 195387 367847802 15206922 4228693 1017027 755688128 3595158 2 974028 18991509 787556 57 1269000648 130729 1173237 58700
 254       1 vda1 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17
   8       0 sda 1 2 3 4 5 6 7 8 9 10 11
   8       1 sdb x 2 3 4 5 6 7 8 9 10 11
   8       2 sdc 1 2 3 4 5 6 7 8 9 10
 259       0 nvme0n1 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15
 259       1 nvme0n1p1 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15
";
    let root = fixture(&[("proc/diskstats", text)]);
    let out = diskstats(root.path()).render();
    let want = r#"node_disk_discard_time_seconds_total{device="vda"} 130.729
node_disk_discarded_sectors_total{device="vda"} 1.269000648e+09
node_disk_discards_completed_total{device="vda"} 787556
node_disk_discards_merged_total{device="vda"} 57
node_disk_flush_requests_time_seconds_total{device="vda"} 58.7
node_disk_flush_requests_total{device="vda"} 1.173237e+06
node_disk_io_now{device="vda"} 2
node_disk_io_time_seconds_total{device="vda"} 974.028
node_disk_io_time_weighted_seconds_total{device="vda"} 18991.509000000002
node_disk_read_bytes_total{device="vda"} 1.88338074624e+11
node_disk_read_time_seconds_total{device="vda"} 15206.922
node_disk_reads_completed_total{device="vda"} 8.13873e+06
node_disk_reads_merged_total{device="vda"} 195387
node_disk_write_time_seconds_total{device="vda"} 3595.158
node_disk_writes_completed_total{device="vda"} 4.228693e+06
node_disk_writes_merged_total{device="vda"} 1.017027e+06
node_disk_written_bytes_total{device="vda"} 3.86912321536e+11"#;
    assert_eq!(
        lines_with(&out, "\"vda\""),
        want.lines().collect::<Vec<_>>()
    );
    // Kernels before 4.18 have no discard fields, before 5.5 no flush fields.
    assert_eq!(lines_with(&out, "\"sda\"").len(), 11);
    assert_eq!(lines_with(&out, "\"nvme0n1\"").len(), 15);
    for gone in ["loop0", "vda1", "nvme0n1p1", "sdb", "sdc"] {
        assert!(!out.contains(&format!("\"{gone}\"")), "{gone}: {out}");
    }
    assert!(out.contains(
        "# HELP node_disk_flush_requests_total The total number of flush requests completed successfully\n\
         # TYPE node_disk_flush_requests_total counter\n"
    ));
    assert!(out.contains("# TYPE node_disk_io_now gauge\n"));
}

const MOUNTS: &str = r"/dev/vda / ext4 rw,relatime 0 0
/dev/vdb /srv/my\040data xfs ro,noatime 0 0
proc /proc proc rw 0 0
tmpfs /run tmpfs rw 0 0
tmpfs /dev/shm tmpfs rw 0 0
overlay /var/lib/x overlay rw 0 0
/dev/vdc /mnt/backup ext4 rw 0 0
/dev/vda / ext4 rw,relatime 0 0
short line
/dev/vdd /missing ext4 rw 0 0
";

#[test]
fn filesystems_labels_values_and_excludes() {
    let root = fixture(&[
        ("proc/1/mounts", MOUNTS),
        ("proc/mounts", "/dev/x /x ext4 rw 0 0"),
    ]);
    let under = |p: &str| root.path().join(p);
    let calls = RefCell::new(Vec::new());
    let fake_statvfs = |path: &Path| -> io::Result<FsStats> {
        calls.borrow_mut().push(path.to_owned());
        let n = match path {
            p if p == root.path() => 1_000_000,
            p if p == under("srv/my data") => 10,
            _ => return Err(io::ErrorKind::NotFound.into()),
        };
        let (blocks, blocks_free, blocks_avail, files, files_free) =
            (3 * n, 2 * n, n, 5 * n, 4 * n);
        Ok(FsStats {
            block_size: 4096,
            blocks,
            blocks_free,
            blocks_avail,
            files,
            files_free,
        })
    };
    let out = filesystems(root.path(), fake_statvfs).render();
    let vda = r#"{device="/dev/vda",fstype="ext4",mountpoint="/"}"#;
    let vdb = r#"{device="/dev/vdb",fstype="xfs",mountpoint="/srv/my data"}"#;
    let vdd = r#"{device="/dev/vdd",fstype="ext4",mountpoint="/missing"}"#;
    let want = format!(
        "# HELP node_filesystem_avail_bytes Filesystem space available to non-root users in bytes.
# TYPE node_filesystem_avail_bytes gauge
node_filesystem_avail_bytes{vda} 4.096e+09
node_filesystem_avail_bytes{vdb} 40960
# HELP node_filesystem_device_error Whether an error occurred while getting statistics for the given device.
# TYPE node_filesystem_device_error gauge
node_filesystem_device_error{vda} 0
node_filesystem_device_error{vdb} 0
node_filesystem_device_error{vdd} 1
# HELP node_filesystem_files Filesystem total file nodes.
# TYPE node_filesystem_files gauge
node_filesystem_files{vda} 5e+06
node_filesystem_files{vdb} 50
# HELP node_filesystem_files_free Filesystem total free file nodes.
# TYPE node_filesystem_files_free gauge
node_filesystem_files_free{vda} 4e+06
node_filesystem_files_free{vdb} 40
# HELP node_filesystem_free_bytes Filesystem free space in bytes.
# TYPE node_filesystem_free_bytes gauge
node_filesystem_free_bytes{vda} 8.192e+09
node_filesystem_free_bytes{vdb} 81920
# HELP node_filesystem_readonly Filesystem read-only status.
# TYPE node_filesystem_readonly gauge
node_filesystem_readonly{vda} 0
node_filesystem_readonly{vdb} 1
# HELP node_filesystem_size_bytes Filesystem size in bytes.
# TYPE node_filesystem_size_bytes gauge
node_filesystem_size_bytes{vda} 1.2288e+10
node_filesystem_size_bytes{vdb} 122880
"
    );
    assert_eq!(out, want);
    // Each included mount point once, under the root.
    let want = [under(""), under("srv/my data"), under("missing")];
    assert_eq!(calls.into_inner(), want);
}

#[test]
fn filesystems_fall_back_to_proc_mounts() {
    let root = fixture(&[("proc/mounts", "/dev/x /x ext4 rw 0 0\n")]);
    let out = filesystems(root.path(), |_| Err(io::ErrorKind::NotFound.into())).render();
    let want = r#"node_filesystem_device_error{device="/dev/x",fstype="ext4",mountpoint="/x"} 1"#;
    assert_eq!(lines_with(&out, "/dev/x"), [want]);
}

#[test]
fn missing_files_leave_their_collectors_out() {
    assert_eq!(render(fixture(&[]).path()), "");
    let root = fixture(&[("proc/loadavg", LOADAVG), ("proc/meminfo", "")]);
    assert_eq!(render(root.path()), loadavg(root.path()).render());
}

#[test]
fn render_and_statvfs_read_this_host() {
    let out = render(Path::new("/"));
    for family in ["node_cpu_seconds_total", "node_load1", "node_procs_running"] {
        assert!(
            out.contains(&format!("# TYPE {family} ")),
            "{family}: {out}"
        );
    }
    let root = statvfs(Path::new("/")).unwrap();
    assert!(root.block_size > 0 && root.blocks > 0 && root.blocks_avail <= root.blocks);
    assert!(statvfs(Path::new("/no/such/mount")).is_err());
}
