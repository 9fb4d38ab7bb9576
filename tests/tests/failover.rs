//! Control-plane HA on real etcd: three control planes campaign through an
//! etcd started by the test; scrapers know all three.
//!
//! - `kill -9` of the leader while scraping: a new leader within 5 s,
//!   scraping never stops (no missed interval, no duplicate), and no target
//!   changes owner (the new leader restores the assignment from etcd).
//! - etcd stopped for a while: scraping goes on, nothing moves, and once
//!   etcd is back a leader keeps every target where it was.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::Value;

use scrapegrid_tests::audit::{self, Coverage, FleetServer, Window};
use scrapegrid_tests::etcd::Etcd;
use scrapegrid_tests::{bin, eventually, free_addr, wait_healthy, Process};

const INTERVAL_MS: i64 = 500;
const TARGETS: usize = 12;

struct ControlPlane {
    grpc: String,
    http: String,
    process: Option<Process>,
}

/// Storage, three control planes on etcd, two scrapers, one fleet of targets.
struct HaCluster {
    _storage: Process,
    storage_grpc: String,
    controls: Vec<ControlPlane>,
    _scrapers: Vec<Process>,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

impl HaCluster {
    async fn start(etcd: &Etcd, fleet: &FleetServer) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: {INTERVAL_MS}ms\n  scrape_timeout: 400ms\nscrape_configs:\n  - job_name: fleet\n{}",
                fleet.static_configs()
            ),
        )?;
        let http = reqwest::Client::new();
        let storage_grpc = free_addr();
        let storage_http = free_addr();
        let storage = Process::spawn(
            "storage-node",
            &bin("storage-node"),
            &args(&[
                "--data-dir",
                &dir.path().join("data").display().to_string(),
                "--grpc-addr",
                &storage_grpc,
                "--http-addr",
                &storage_http,
            ]),
            dir.path(),
        )?;
        wait_healthy(&http, &storage_http).await?;
        let mut controls = Vec::new();
        for i in 0..3 {
            let grpc = free_addr();
            let http_addr = free_addr();
            let process = spawn_control(
                dir.path(),
                &config,
                i,
                (&grpc, &http_addr),
                &storage_grpc,
                etcd,
            )?;
            wait_healthy(&http, &http_addr).await?;
            controls.push(ControlPlane {
                grpc,
                http: http_addr,
                process: Some(process),
            });
        }
        let endpoints: Vec<String> = controls
            .iter()
            .map(|c| format!("http://{}", c.grpc))
            .collect();
        let mut scrapers = Vec::new();
        for i in 0..2 {
            let http_addr = free_addr();
            let id = format!("scraper-{i}");
            scrapers.push(Process::spawn(
                &id,
                &bin("scraper-node"),
                &args(&[
                    "--control-plane",
                    &endpoints.join(","),
                    "--http-addr",
                    &http_addr,
                    "--id",
                    &id,
                    "--status-interval",
                    "500ms",
                ]),
                dir.path(),
            )?);
            wait_healthy(&http, &http_addr).await?;
        }
        Ok(Self {
            _storage: storage,
            storage_grpc,
            controls,
            _scrapers: scrapers,
            http,
            dir,
        })
    }

    /// Returns the index of the control plane that leads now, if any.
    async fn leader(&self) -> Option<usize> {
        for (i, c) in self.controls.iter().enumerate() {
            if c.process.is_none() {
                continue;
            }
            let url = format!("http://{}/api/v1/scrapegrid/cluster", c.http);
            let Ok(r) = self.http.get(&url).send().await else {
                continue;
            };
            let Ok(v) = r.json::<Value>().await else {
                continue;
            };
            if v["data"]["leader"] == Value::Bool(true) {
                return Some(i);
            }
        }
        None
    }

    /// Returns target label `t` -> owning scraper, from the leader's
    /// `/api/v1/targets`, once every target has an owner.
    async fn owners(&self) -> Option<BTreeMap<String, String>> {
        let leader = self.leader().await?;
        let url = format!("http://{}/api/v1/targets", self.controls[leader].http);
        let v: Value = self.http.get(&url).send().await.ok()?.json().await.ok()?;
        let active = v["data"]["activeTargets"].as_array()?;
        let owners: BTreeMap<String, String> = active
            .iter()
            .filter_map(|t| {
                Some((
                    t["labels"]["t"].as_str()?.to_string(),
                    t["scraper"].as_str()?.to_string(),
                ))
            })
            .collect();
        (owners.len() == TARGETS).then_some(owners)
    }

    /// Returns the leader's log of moves.
    async fn moves(&self) -> Result<Vec<Value>> {
        let leader = self.leader().await.context("no leader")?;
        let url = format!(
            "http://{}/api/v1/scrapegrid/moves",
            self.controls[leader].http
        );
        let v: Value = self.http.get(&url).send().await?.json().await?;
        Ok(v["data"].as_array().cloned().unwrap_or_default())
    }

    /// Audits `up` of every target over `window`, from the storage node.
    async fn audit_up(&self, window: Window) -> Result<Coverage> {
        let series = audit::select(
            &self.storage_grpc,
            &[("__name__", "up"), ("job", "fleet")],
            window.start_ms - 2 * INTERVAL_MS,
            window.end_ms + 2 * INTERVAL_MS,
        )
        .await?;
        anyhow::ensure!(series.len() == TARGETS, "{} up series", series.len());
        let mut total = Coverage::default();
        for s in &series {
            total.add(&audit::coverage(&s.samples, INTERVAL_MS, window));
        }
        Ok(total)
    }

    /// Asserts that over `window` every target was scraped once per slot
    /// and stored once per slot, with no stale marker.
    async fn assert_nothing_lost(
        &self,
        what: &str,
        fleet: &FleetServer,
        window: Window,
    ) -> Result<()> {
        let stored = self.audit_up(window).await?;
        let requests = Self::audit_requests(fleet, window);
        println!("{what} window: stored up: {stored}; requests: {requests}");
        assert_eq!(stored.missed, 0, "{what}: stored: {stored}");
        assert_eq!(stored.duplicates, 0, "{what}: stored: {stored}");
        assert!(stored.stale.is_empty(), "{what}: stored: {stored}");
        assert_eq!(requests.missed, 0, "{what}: requests: {requests}");
        assert_eq!(requests.duplicates, 0, "{what}: requests: {requests}");
        Ok(())
    }

    /// Audits the requests every target received over `window`.
    fn audit_requests(fleet: &FleetServer, window: Window) -> Coverage {
        let mut total = Coverage::default();
        for i in 0..fleet.len() {
            total.add(&audit::request_coverage(
                &fleet.requests(i),
                INTERVAL_MS,
                window,
            ));
        }
        total
    }
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn spawn_control(
    dir: &Path,
    config: &Path,
    i: usize,
    addrs: (&str, &str),
    storage_grpc: &str,
    etcd: &Etcd,
) -> Result<Process> {
    let (grpc, http) = addrs;
    Process::spawn(
        &format!("control-plane-{i}"),
        &bin("control-plane"),
        &args(&[
            "--config",
            &config.display().to_string(),
            "--grpc-addr",
            grpc,
            "--http-addr",
            http,
            "--storage",
            &format!("http://{storage_grpc}"),
            "--discovery-update-interval",
            "100ms",
            "--membership-timeout",
            "5s",
            "--startup-grace",
            "1s",
            "--etcd-endpoints",
            &etcd.endpoint(),
            "--etcd-lease-ttl",
            "2s",
        ]),
        dir,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_failover_and_etcd_outage_move_nothing_and_lose_nothing() -> Result<()> {
    let mut etcd = Etcd::start().await?;
    let fleet = FleetServer::start(TARGETS, |i| format!("m{{t=\"{i}\"}} {i}\n")).await?;
    let cluster = HaCluster::start(&etcd, &fleet).await?;

    let owners = eventually(Duration::from_secs(20), || cluster.owners())
        .await
        .context("every target owned")?;
    // Steady scraping before the failover.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = cluster.leader().await.context("a leader")?;

    // kill -9 the leader.
    let mut cluster = cluster;
    let killed_at = audit::now_ms();
    let started = Instant::now();
    cluster.controls[before]
        .process
        .as_mut()
        .context("leader process")?
        .kill9();
    cluster.controls[before].process = None;
    let after = eventually(Duration::from_secs(10), || cluster.leader())
        .await
        .context("a new leader")?;
    let failover = started.elapsed();
    println!(
        "failover: control-plane-{before} killed, control-plane-{after} leads after {} ms",
        failover.as_millis()
    );
    assert_ne!(before, after);
    assert!(
        failover < Duration::from_secs(5),
        "new leader after {failover:?}"
    );
    let owners_after = eventually(Duration::from_secs(10), || cluster.owners())
        .await
        .context("owners after the failover")?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        owners, owners_after,
        "no target moves because of a failover"
    );
    let moves = cluster.moves().await?;
    assert!(moves.is_empty(), "the new leader moved targets: {moves:?}");

    let window = Window {
        start_ms: killed_at - 2_000,
        end_ms: audit::now_ms() - 1_000,
    };
    cluster
        .assert_nothing_lost("failover", &fleet, window)
        .await?;

    // etcd away for a while: scraping goes on, nothing moves.
    let stopped_at = audit::now_ms();
    etcd.kill9();
    let lost = eventually(Duration::from_secs(10), || async {
        cluster.leader().await.is_none().then_some(())
    })
    .await;
    println!(
        "etcd killed: leadership {} after {} ms",
        if lost.is_ok() { "lost" } else { "kept" },
        audit::now_ms() - stopped_at
    );
    lost.context("the leader steps down without etcd")?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    etcd.start_again().await?;
    let back = Instant::now();
    eventually(Duration::from_secs(15), || cluster.leader())
        .await
        .context("a leader after etcd is back")?;
    println!(
        "etcd back: a leader after {} ms",
        back.elapsed().as_millis()
    );
    let owners_back = eventually(Duration::from_secs(10), || cluster.owners())
        .await
        .context("owners after etcd is back")?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(owners, owners_back, "nothing moves across an etcd outage");
    let moves = cluster.moves().await?;
    assert!(moves.is_empty(), "moves after the outage: {moves:?}");
    let window = Window {
        start_ms: stopped_at - 1_000,
        end_ms: audit::now_ms() - 1_000,
    };
    cluster
        .assert_nothing_lost("etcd outage", &fleet, window)
        .await?;
    drop(cluster.dir);
    Ok(())
}
