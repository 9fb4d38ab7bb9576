//! [`HaCluster`]: a cluster for the tests where components fail while a
//! fleet of targets is scraped: the storage node, one or more control
//! planes (on a real etcd when there are several, or when asked), and
//! scrapers that know every control plane. Every part is a real process
//! that a test can `kill -9`, restart or SIGTERM, and the fleet's scrapes
//! are audited from the storage node and from the targets' request logs
//! ([`HaCluster::audit`], in `ha/fleet_audit.rs`). A partitionable cluster
//! ([`HaClusterBuilder::partitionable`]) puts a [`Cut`] between each
//! scraper and the control planes and one between the scrapers and the
//! storage node, so a test can partition them too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::audit::{self, FleetServer};

mod fleet_audit;
mod skew;
use crate::cut::Cut;
use crate::etcd::Etcd;
use crate::process::set_flag;
use crate::{bin, eventually, start_storage_in, wait_healthy, Process, ANY_PORT};
pub use fleet_audit::Audit;
use skew::libfaketime;
pub use skew::Skew;

/// The job every fleet target belongs to.
pub const JOB: &str = "fleet";

/// A fleet target's body: a gauge with its number and a counter of the
/// requests it received (see [`audit::REQUESTS`]).
pub fn counter_body(i: usize) -> String {
    format!(
        "# TYPE fleet_value gauge\nfleet_value {i}\n# TYPE fleet_requests_total counter\nfleet_requests_total {}\n",
        audit::REQUESTS
    )
}

/// Builds an [`HaCluster`].
pub struct HaClusterBuilder {
    control_planes: usize,
    etcd: Option<String>,
    scrapers: usize,
    interval_ms: i64,
    membership_timeout: &'static str,
    scraper_args: Vec<String>,
    partitionable: bool,
    storage_args: Vec<String>,
    storage_data_dir: Option<PathBuf>,
    control_args: Vec<String>,
}

impl HaClusterBuilder {
    /// Flags every control plane gets besides those the cluster sets.
    pub fn control_args(mut self, a: &[&str]) -> Self {
        self.control_args = args(a);
        self
    }

    /// Flags the storage node gets besides its addresses and data directory.
    pub fn storage_args(mut self, a: &[&str]) -> Self {
        self.storage_args = args(a);
        self
    }

    /// Where the storage node keeps its data (default: the cluster's
    /// directory): a filesystem the test controls.
    pub fn storage_data_dir(mut self, dir: &Path) -> Self {
        self.storage_data_dir = Some(dir.to_path_buf());
        self
    }

    /// Scrapers reach the control planes, and everything reaches the
    /// storage node's gRPC, through [`Cut`]s the test can cut
    /// ([`HaCluster::partition_scraper`], [`HaCluster::partition_storage`],
    /// and each scraper's own link, [`HaCluster::partition_scraper_storage`]).
    pub fn partitionable(mut self) -> Self {
        self.partitionable = true;
        self
    }

    pub fn control_planes(mut self, n: usize) -> Self {
        self.control_planes = n;
        self
    }

    /// Control planes elect their leader through this etcd.
    pub fn etcd(mut self, etcd: &Etcd) -> Self {
        self.etcd = Some(etcd.endpoint());
        self
    }

    pub fn scrapers(mut self, n: usize) -> Self {
        self.scrapers = n;
        self
    }

    pub fn interval_ms(mut self, ms: i64) -> Self {
        self.interval_ms = ms;
        self
    }

    pub fn membership_timeout(mut self, t: &'static str) -> Self {
        self.membership_timeout = t;
        self
    }

    /// Extra flags for every scraper.
    pub fn scraper_args(mut self, args: &[&str]) -> Self {
        self.scraper_args = args.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Starts everything for `fleet` (scrape timeout four fifths of the
    /// interval) and waits until each process is healthy.
    pub async fn build(self, fleet: &FleetServer) -> Result<HaCluster> {
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: {}ms\n  scrape_timeout: {}ms\nscrape_configs:\n  - job_name: {JOB}\n{}",
                self.interval_ms,
                self.interval_ms * 4 / 5,
                fleet.static_configs()
            ),
        )?;
        // A paused process must not hang a test's question forever.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .build()?;
        let data_dir = self
            .storage_data_dir
            .clone()
            .unwrap_or_else(|| dir.path().join("data"));
        let extra: Vec<&str> = self.storage_args.iter().map(String::as_str).collect();
        let storage = start_storage_in(&data_dir, dir.path(), "storage-node", &extra).await?;
        let storage_cut = match self.partitionable {
            true => Some(Cut::start(&storage.grpc).await?),
            false => None,
        };
        let storage_for_controls = storage_cut
            .as_ref()
            .map_or(storage.grpc.clone(), |c| c.addr.clone());
        let mut cluster = HaCluster {
            storage: Some(storage.process),
            storage_args: storage.args,
            storage_restarts: 0,
            storage_grpc: storage.grpc,
            storage_http: storage.http,
            controls: Vec::new(),
            scrapers: Vec::new(),
            scraper_args: self.scraper_args,
            control_args: Vec::new(),
            starts: 0,
            partitionable: self.partitionable,
            storage_cut,
            scraper_cuts: BTreeMap::new(),
            scraper_storage_cuts: BTreeMap::new(),
            interval_ms: self.interval_ms,
            http,
            config,
            dir,
        };
        for i in 0..self.control_planes {
            let mut a = args(&[
                "--config",
                &cluster.config.display().to_string(),
                "--grpc-addr",
                ANY_PORT,
                "--http-addr",
                ANY_PORT,
                "--storage",
                &format!("http://{storage_for_controls}"),
                "--discovery-update-interval",
                "100ms",
                "--membership-timeout",
                self.membership_timeout,
                "--startup-grace",
                "1s",
            ]);
            if let Some(etcd) = &self.etcd {
                a.extend(args(&["--etcd-endpoints", etcd, "--etcd-lease-ttl", "2s"]));
            }
            a.extend(self.control_args.iter().cloned());
            let name = format!("control-plane-{i}");
            let mut process = Process::spawn(&name, &bin("control-plane"), &a, cluster.dir.path())?;
            let grpc = process.listening("grpc").await?;
            let http_addr = process.listening("http").await?;
            wait_healthy(&cluster.http, &http_addr).await?;
            // A restart listens where this run did.
            set_flag(&mut a, "--grpc-addr", &grpc);
            set_flag(&mut a, "--http-addr", &http_addr);
            cluster.control_args.push(a);
            cluster.controls.push(ControlPlane {
                grpc,
                http: http_addr,
                process: Some(process),
            });
        }
        for i in 0..self.scrapers {
            cluster.add_scraper(&format!("scraper-{i}")).await?;
        }
        Ok(cluster)
    }
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// One control plane of an [`HaCluster`].
pub struct ControlPlane {
    pub grpc: String,
    pub http: String,
    /// `None` once killed.
    pub process: Option<Process>,
}

/// A scraper that was sent SIGTERM, until [`HaCluster::drained`].
pub struct Draining {
    id: String,
    sent_ms: i64,
    /// Its exit code, the process, and when it exited (ms since the epoch).
    task: tokio::task::JoinHandle<(Result<Option<i32>>, Process, i64)>,
}

impl Draining {
    /// The scraper that drains.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether it has exited (or the wait for it has given up).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// One scraper of an [`HaCluster`].
pub struct Scraper {
    pub id: String,
    pub http: String,
    /// `None` once it exited or was killed.
    pub process: Option<Process>,
}

/// Storage node, control planes and scrapers on loopback, scraping one fleet.
/// Target label `t` -> owning scraper, from the `data` of an
/// `/api/v1/targets` answer (targets without an owner left out).
pub fn owners_in(data: &Value) -> BTreeMap<String, String> {
    data["activeTargets"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| {
                    Some((
                        t["labels"]["t"].as_str()?.to_string(),
                        t["scraper"].as_str().filter(|s| !s.is_empty())?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

pub struct HaCluster {
    pub storage: Option<Process>,
    storage_args: Vec<String>,
    storage_restarts: usize,
    pub storage_grpc: String,
    pub storage_http: String,
    pub controls: Vec<ControlPlane>,
    pub scrapers: Vec<Scraper>,
    scraper_args: Vec<String>,
    /// Each control plane's flags, with the addresses of its first run.
    control_args: Vec<Vec<String>>,
    /// Processes started after the first ones, to name their logs.
    starts: usize,
    partitionable: bool,
    storage_cut: Option<Cut>,
    /// Scraper id -> its links to each control plane.
    scraper_cuts: BTreeMap<String, Vec<Cut>>,
    /// Each scraper's link to the storage node (`--storage`), behind
    /// `storage_cut`.
    scraper_storage_cuts: BTreeMap<String, Cut>,
    pub interval_ms: i64,
    pub http: reqwest::Client,
    pub config: PathBuf,
    /// Last, so it is removed after the processes (and their logs) are gone.
    pub dir: tempfile::TempDir,
}

impl HaCluster {
    pub fn builder() -> HaClusterBuilder {
        HaClusterBuilder {
            control_planes: 1,
            etcd: None,
            scrapers: 2,
            interval_ms: 500,
            membership_timeout: "5s",
            scraper_args: Vec::new(),
            partitionable: false,
            storage_args: Vec::new(),
            storage_data_dir: None,
            control_args: Vec::new(),
        }
    }

    /// Starts a scraper that knows every control plane and waits until it
    /// is healthy.
    pub async fn add_scraper(&mut self, id: &str) -> Result<()> {
        self.add_scraper_skewed(id, None).await
    }

    /// Starts a scraper as [`Self::add_scraper`] does, with its wall clock
    /// `skew` off when one is given (libfaketime, from Debian's `faketime`,
    /// installed by scripts/install-deps.sh).
    pub async fn add_scraper_skewed(&mut self, id: &str, skew: Option<Skew<'_>>) -> Result<()> {
        let (process, http) = self.spawn_scraper(id, id, skew).await?;
        self.scrapers.push(Scraper {
            id: id.into(),
            http,
            process: Some(process),
        });
        Ok(())
    }

    /// Starts scraper `id` again (after a `kill -9`, or after it drained)
    /// with the same id and flags, and waits until it is healthy.
    pub async fn restart_scraper(&mut self, id: &str) -> Result<()> {
        self.starts += 1;
        let name = format!("{id}-{}", self.starts + 1);
        let (process, http) = self.spawn_scraper(id, &name, None).await?;
        let s = self.scraper_mut(id);
        s.http = http;
        s.process = Some(process);
        Ok(())
    }

    async fn spawn_scraper(
        &mut self,
        id: &str,
        name: &str,
        skew: Option<Skew<'_>>,
    ) -> Result<(Process, String)> {
        let mut endpoints = Vec::new();
        for c in &self.controls {
            endpoints.push(format!("http://{}", c.grpc));
        }
        if self.partitionable {
            if !self.scraper_cuts.contains_key(id) {
                let mut cuts = Vec::new();
                for c in &self.controls {
                    cuts.push(Cut::start(&c.grpc).await?);
                }
                self.scraper_cuts.insert(id.to_string(), cuts);
            }
            endpoints = self.scraper_cuts[id]
                .iter()
                .map(|c| format!("http://{}", c.addr))
                .collect();
        }
        // Its own link to the storage node, behind the one every link
        // passes.
        let mut storage = Vec::new();
        if let Some(shared) = &self.storage_cut {
            if !self.scraper_storage_cuts.contains_key(id) {
                let cut = Cut::start(&shared.addr).await?;
                self.scraper_storage_cuts.insert(id.to_string(), cut);
            }
            let addr = &self.scraper_storage_cuts[id].addr;
            storage = args(&["--storage", &format!("http://{addr}")]);
        }
        let mut a = args(&[
            "--control-plane",
            &endpoints.join(","),
            "--http-addr",
            ANY_PORT,
            "--id",
            id,
            "--status-interval",
            "500ms",
        ]);
        a.extend(storage);
        a.extend(self.scraper_args.iter().cloned());
        let mut p = match skew {
            None => Process::spawn(name, &bin("scraper-node"), &a, self.dir.path())?,
            // libfaketime preloaded into the scraper itself (the `faketime`
            // wrapper would stand between it and the signals a test sends).
            Some(skew) => {
                let lib = libfaketime()?;
                let mut env = vec![
                    ("LD_PRELOAD", lib.as_str()),
                    ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
                ];
                let file;
                match skew {
                    Skew::Fixed(s) => env.push(("FAKETIME", s)),
                    Skew::File(path) => {
                        file = path.display().to_string();
                        env.push(("FAKETIME_TIMESTAMP_FILE", &file));
                        // Read again every second: the test steps it.
                        env.push(("FAKETIME_CACHE_DURATION", "1"));
                    }
                }
                Process::spawn_with_env(name, &bin("scraper-node"), &a, self.dir.path(), &env)?
            }
        };
        let http_addr = p.listening("http").await?;
        wait_healthy(&self.http, &http_addr).await?;
        Ok((p, http_addr))
    }

    fn scraper_mut(&mut self, id: &str) -> &mut Scraper {
        self.scrapers
            .iter_mut()
            .find(|s| s.id == id)
            .unwrap_or_else(|| panic!("no scraper {id}"))
    }

    /// `kill -9` of scraper `id`.
    pub fn kill_scraper(&mut self, id: &str) {
        if let Some(mut p) = self.scraper_mut(id).process.take() {
            p.kill9();
        }
    }

    /// Cuts (or heals) every link between scraper `id` and the control planes.
    pub fn partition_scraper(&self, id: &str, cut: bool) {
        for c in self.scraper_cuts.get(id).into_iter().flatten() {
            match cut {
                true => c.cut(),
                false => c.heal(),
            }
        }
    }

    /// Cuts (or heals) the link between scraper `id` and the storage node.
    pub fn partition_scraper_storage(&self, id: &str, cut: bool) {
        if let Some(c) = self.scraper_storage_cuts.get(id) {
            match cut {
                true => c.cut(),
                false => c.heal(),
            }
        }
    }

    /// Cuts (or heals) every link to the storage node's gRPC.
    pub fn partition_storage(&self, cut: bool) {
        if let Some(c) = &self.storage_cut {
            match cut {
                true => c.cut(),
                false => c.heal(),
            }
        }
    }

    /// Starts control plane `i` again (after a `kill -9`) on the ports of
    /// its first run and waits until it is healthy.
    pub async fn restart_control(&mut self, i: usize) -> Result<()> {
        self.starts += 1;
        let name = format!("control-plane-{i}-{}", self.starts + 1);
        let p = Process::spawn(
            &name,
            &bin("control-plane"),
            &self.control_args[i],
            self.dir.path(),
        )?;
        self.controls[i].process = Some(p);
        wait_healthy(&self.http, &self.controls[i].http).await
    }

    /// Sends SIGTERM to a scraper and returns at once; [`Self::drained`]
    /// waits for its exit.
    pub fn terminate_scraper(&mut self, id: &str, deadline: Duration) -> Draining {
        let s = self
            .scrapers
            .iter_mut()
            .find(|s| s.id == id)
            .expect("a scraper with this id");
        let mut p = s.process.take().expect("scraper running");
        let sent_ms = audit::now_ms();
        let task = tokio::task::spawn_blocking(move || {
            let code = p.terminate(deadline);
            (code, p, audit::now_ms())
        });
        Draining {
            id: id.to_string(),
            sent_ms,
            task,
        }
    }

    /// Waits until a SIGTERMed scraper has exited; returns its exit code and
    /// how long it took. Its log stays with the cluster.
    pub async fn drained(&mut self, d: Draining) -> Result<(Option<i32>, Duration)> {
        let (code, p, exited_ms) = d.task.await?;
        let took = Duration::from_millis((exited_ms - d.sent_ms).max(0) as u64);
        let log = p.log();
        if let Some(s) = self.scrapers.iter_mut().find(|s| s.id == d.id) {
            s.process = Some(p);
        }
        let code = code.with_context(|| format!("{} did not drain:\n{log}", d.id))?;
        Ok((code, took))
    }

    /// The log of scraper `id` so far.
    pub fn scraper_log(&self, id: &str) -> String {
        self.scrapers
            .iter()
            .find(|s| s.id == id)
            .and_then(|s| s.process.as_ref())
            .map(Process::log)
            .unwrap_or_default()
    }

    /// `kill -9` of the storage node.
    pub fn kill_storage(&mut self) {
        if let Some(mut p) = self.storage.take() {
            p.kill9();
        }
    }

    /// Starts the storage node again on the same ports and data directory,
    /// without waiting for it.
    pub fn start_storage_again(&mut self) -> Result<()> {
        self.storage_restarts += 1;
        let name = format!("storage-node-{}", self.storage_restarts + 1);
        let p = Process::spawn(
            &name,
            &bin("storage-node"),
            &self.storage_args,
            self.dir.path(),
        )?;
        self.storage = Some(p);
        Ok(())
    }

    /// `kill -9` of control plane `i`.
    pub fn kill_control(&mut self, i: usize) {
        if let Some(mut p) = self.controls[i].process.take() {
            p.kill9();
        }
    }

    /// Returns the index of the control plane that leads now, if any.
    pub async fn leader(&self) -> Option<usize> {
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

    /// Returns target label `t` -> owning scraper from the leader's
    /// `/api/v1/targets`, once all `targets` are listed with an owner.
    pub async fn owners(&self, targets: usize) -> Option<BTreeMap<String, String>> {
        let leader = self.leader().await?;
        let url = format!("http://{}/api/v1/targets", self.controls[leader].http);
        let v: Value = self.http.get(&url).send().await.ok()?.json().await.ok()?;
        let owners = owners_in(&v["data"]);
        (owners.len() == targets).then_some(owners)
    }

    /// Waits (up to 30 s) until every one of `targets` has an owner among
    /// `live`, and each of `live` owns one.
    pub async fn settled(&self, targets: usize, live: &[&str]) -> Result<()> {
        eventually(Duration::from_secs(30), || async {
            let o = self.owners(targets).await?;
            let ok = o.values().all(|s| live.contains(&s.as_str()))
                && live.iter().all(|l| o.values().any(|s| s == l));
            ok.then_some(())
        })
        .await
        .with_context(|| format!("every target owned by {live:?}"))
    }

    /// Returns the leader's log of moves.
    pub async fn moves(&self) -> Result<Vec<Value>> {
        let leader = self.leader().await.context("no leader")?;
        let url = format!(
            "http://{}/api/v1/scrapegrid/moves",
            self.controls[leader].http
        );
        let v: Value = self.http.get(&url).send().await?.json().await?;
        Ok(v["data"].as_array().cloned().unwrap_or_default())
    }
}
