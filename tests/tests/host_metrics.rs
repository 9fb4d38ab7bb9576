//! The `host` integration against the real node_exporter 1.5 (Debian's
//! `prometheus-node-exporter`, started on loopback with the collectors the
//! integration covers): a scraper node's `/integrations/host/metrics` and
//! node_exporter's `/metrics`, read on the same host a moment apart, have
//! the same families (name, type, help), the same series, and values that
//! agree: exactly where they cannot move (total memory, boot time,
//! filesystem sizes), else within what the host did between the reads
//! (node_exporter is read before and after, and ours must lie between,
//! with a small margin for gauges that wander).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use scrapegrid_tests::{eventually, free_addr, Cluster};

const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";
const COLLECTORS: [&str; 7] = [
    "cpu",
    "meminfo",
    "loadavg",
    "stat",
    "netdev",
    "diskstats",
    "filesystem",
];
/// node_exporter's families the integration leaves out: its own
/// bookkeeping, and `node_disk_info` (udev).
const LEFT_OUT: [&str; 4] = [
    "node_scrape_collector_",
    "node_exporter_build_info",
    "node_disk_info",
    "node_textfile_",
];
/// Families whose values cannot change between two reads.
const EXACT: [&str; 5] = [
    "node_memory_MemTotal_bytes",
    "node_boot_time_seconds",
    "node_filesystem_size_bytes",
    "node_filesystem_files",
    "node_filesystem_readonly",
];

#[derive(Debug, Default)]
struct Family {
    kind: String,
    help: String,
    samples: BTreeMap<String, f64>,
}

/// The `node_*` families of a text exposition.
fn parse(text: &str) -> Result<BTreeMap<String, Family>> {
    let mut out: BTreeMap<String, Family> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            out.entry(name.into()).or_default().help = help.into();
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').context("TYPE line")?;
            out.entry(name.into()).or_default().kind = kind.into();
        } else if !line.is_empty() && !line.starts_with('#') {
            let (series, value) = line.rsplit_once(' ').context("sample line")?;
            let name = series.split('{').next().unwrap_or(series);
            let value: f64 = value.parse().with_context(|| format!("value of {line}"))?;
            out.entry(name.into())
                .or_default()
                .samples
                .insert(series.into(), value);
        }
    }
    out.retain(|name, _| {
        name.starts_with("node_") && !LEFT_OUT.iter().any(|p| name.starts_with(p))
    });
    Ok(out)
}

async fn get(http: &reqwest::Client, url: &str) -> Result<BTreeMap<String, Family>> {
    let resp = http.get(url).send().await?;
    if !resp.status().is_success() {
        bail!("GET {url}: {}", resp.status());
    }
    parse(&resp.text().await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_metrics_match_node_exporter() -> Result<()> {
    if !Path::new(NODE_EXPORTER).exists() {
        bail!(
            "{NODE_EXPORTER} is missing: this test needs Debian's `prometheus-node-exporter` \
             (scripts/install-deps.sh installs it)"
        );
    }
    let cluster = Cluster::builder()
        .config("scrape_configs: []\n")
        .build()
        .await?;
    let ours_url = format!("http://{}/integrations/host/metrics", cluster.scrapers[0].1);
    let addr = free_addr();
    let mut args = vec![
        format!("--web.listen-address={addr}"),
        "--collector.disable-defaults".to_string(),
    ];
    args.extend(COLLECTORS.iter().map(|c| format!("--collector.{c}")));
    let dir = tempfile::tempdir()?;
    let log = std::fs::File::create(dir.path().join("node_exporter.log"))?;
    let mut exporter = std::process::Command::new(NODE_EXPORTER)
        .args(&args)
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    let theirs_url = format!("http://{addr}/metrics");
    let result = async {
        eventually(Duration::from_secs(20), || async {
            get(&cluster.http, &theirs_url).await.ok()
        })
        .await?;
        let before = get(&cluster.http, &theirs_url).await?;
        let ours = get(&cluster.http, &ours_url).await?;
        let after = get(&cluster.http, &theirs_url).await?;
        compare(&ours, &before, &after)
    }
    .await;
    unsafe { libc::kill(exporter.id() as i32, libc::SIGTERM) };
    let _ = exporter.wait();
    result
}

fn compare(
    ours: &BTreeMap<String, Family>,
    before: &BTreeMap<String, Family>,
    after: &BTreeMap<String, Family>,
) -> Result<()> {
    let names = |m: &BTreeMap<String, Family>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(ours), names(after), "families");
    assert!(ours.len() > 40, "{:?}", names(ours));
    let mut failures = Vec::new();
    for (name, family) in ours {
        let (b, a) = (&before[name], &after[name]);
        if (family.kind.as_str(), family.help.as_str()) != (a.kind.as_str(), a.help.as_str()) {
            failures.push(format!(
                "{name}: ours {} {:?}, node_exporter's {} {:?}",
                family.kind, family.help, a.kind, a.help
            ));
        }
        let series = |f: &Family| f.samples.keys().cloned().collect::<Vec<_>>();
        if series(family) != series(a) {
            failures.push(format!(
                "{name}: series ours {:?}\nnode_exporter's {:?}",
                series(family),
                series(a)
            ));
            continue;
        }
        for (s, &v) in &family.samples {
            let (x, y) = (b.samples.get(s).copied().unwrap_or(f64::NAN), a.samples[s]);
            let ok = if EXACT.contains(&name.as_str()) {
                v == y
            } else {
                let (lo, hi) = (x.min(y), x.max(y));
                let margin = if family.kind == "counter" {
                    0.5
                } else {
                    16.0 + 0.05 * hi.abs()
                };
                v >= lo - margin && v <= hi + margin
            };
            if !ok {
                failures.push(format!("{s}: ours {v}, node_exporter's {x} then {y}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}
