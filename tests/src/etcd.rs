//! A real single-member etcd for the HA tests: Debian's `etcd-server`
//! (`/usr/bin/etcd`, installed by scripts/install-deps.sh) on two free
//! loopback ports with its data in a temporary directory.
//!
//! A test can kill it (`kill9`) or stop it (`stop`) and start it again on
//! the same ports and data (`start_again`), to check what the control plane
//! does while etcd is away and after it is back. Raft timings are short so
//! it elects itself quickly after each start.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::{free_addr, Process};

/// Where Debian's `etcd-server` package installs etcd.
pub const ETCD_BINARY: &str = "/usr/bin/etcd";

/// How long etcd may take to answer `/health` after a start.
const START_DEADLINE: Duration = Duration::from_secs(20);

/// A running (or stopped) etcd on loopback; killed when dropped.
pub struct Etcd {
    client_addr: String,
    args: Vec<String>,
    process: Option<Process>,
    /// How many times it was started, to name each run's log.
    starts: usize,
    http: reqwest::Client,
    /// Last, so it is removed after the process is gone.
    dir: tempfile::TempDir,
}

impl Etcd {
    /// Starts etcd and waits until it is healthy (has elected itself).
    pub async fn start() -> Result<Self> {
        if !Path::new(ETCD_BINARY).exists() {
            bail!(
                "{ETCD_BINARY} is missing: install Debian's etcd-server (scripts/install-deps.sh)"
            );
        }
        let dir = tempfile::tempdir()?;
        let client_addr = free_addr();
        let peer_addr = free_addr();
        let name = "scrapegrid-test";
        let args = [
            ("--name", name.to_string()),
            ("--data-dir", dir.path().join("data").display().to_string()),
            ("--listen-client-urls", format!("http://{client_addr}")),
            ("--advertise-client-urls", format!("http://{client_addr}")),
            ("--listen-peer-urls", format!("http://{peer_addr}")),
            (
                "--initial-advertise-peer-urls",
                format!("http://{peer_addr}"),
            ),
            ("--initial-cluster", format!("{name}=http://{peer_addr}")),
            ("--initial-cluster-state", "new".into()),
            ("--heartbeat-interval", "50".into()),
            ("--election-timeout", "500".into()),
            ("--logger", "zap".into()),
            ("--log-outputs", "stderr".into()),
        ]
        .into_iter()
        .map(|(flag, value)| format!("{flag}={value}"))
        .collect();
        let mut etcd = Self {
            client_addr,
            args,
            process: None,
            starts: 0,
            http: reqwest::Client::new(),
            dir,
        };
        etcd.start_again().await?;
        Ok(etcd)
    }

    /// The client URL, `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.client_addr)
    }

    /// Kills etcd with SIGKILL (no chance to flush or say goodbye).
    pub fn kill9(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill9();
        }
    }

    /// Stops etcd with SIGTERM and waits for it to exit. Blocks the thread,
    /// so it needs a multi-threaded test runtime.
    pub fn stop(&mut self) -> Result<()> {
        let Some(mut p) = self.process.take() else {
            bail!("etcd is not running");
        };
        tokio::task::block_in_place(|| p.terminate(Duration::from_secs(10))).map(drop)
    }

    /// Starts etcd (again) on the same ports and data directory and waits
    /// until it is healthy.
    pub async fn start_again(&mut self) -> Result<()> {
        if self.process.is_some() {
            bail!("etcd is already running");
        }
        self.starts += 1;
        let name = match self.starts {
            1 => "etcd".to_string(),
            n => format!("etcd-{n}"),
        };
        let p = Process::spawn(&name, Path::new(ETCD_BINARY), &self.args, self.dir.path())?;
        self.process = Some(p);
        self.wait_healthy()
            .await
            .with_context(|| format!("etcd at {} did not become healthy", self.endpoint()))
    }

    /// Whether etcd is running (not killed or stopped by the test).
    pub fn is_running(&self) -> bool {
        self.process.is_some()
    }

    async fn wait_healthy(&self) -> Result<()> {
        let url = format!("{}/health", self.endpoint());
        let start = Instant::now();
        loop {
            let healthy = match self.http.get(&url).send().await {
                Ok(r) if r.status().is_success() => r
                    .json::<serde_json::Value>()
                    .await
                    .is_ok_and(|v| v["health"] == "true"),
                _ => false,
            };
            if healthy {
                return Ok(());
            }
            if start.elapsed() > START_DEADLINE {
                bail!("{url} not healthy within {START_DEADLINE:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
