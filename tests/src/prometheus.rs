//! A real Prometheus for the differential tests: Debian's `prometheus`
//! package (2.42, `/usr/bin/prometheus`, installed by
//! scripts/install-deps.sh) on a free loopback port, with its TSDB in a
//! temporary directory, the lifecycle API and exemplar storage on.
//!
//! It loads the `prometheus.yml` the test wrote (the same file the
//! scrapegrid cluster loads) and is stopped by PID: SIGTERM from
//! [`Prometheus::stop`], or SIGKILL when dropped. A missing binary fails the
//! test; it is never skipped. [`Prometheus::start_binary`] starts another
//! build the same way (the kubernetes discovery tests' oracle, which Debian's
//! build cannot be: it leaves kubernetes discovery out).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::{free_addr, Api, Process};

/// Where Debian's `prometheus` package installs the server.
pub const PROMETHEUS_BINARY: &str = "/usr/bin/prometheus";

/// How long Prometheus may take to answer `/-/ready` after its start.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// A running Prometheus on loopback; killed when dropped.
pub struct Prometheus {
    /// `127.0.0.1:<port>` of its web API.
    pub addr: String,
    process: Option<Process>,
    /// What it was started with, to start it again on the same data.
    binary: std::path::PathBuf,
    args: Vec<String>,
    http: reqwest::Client,
    /// Last, so it is removed after the process is gone.
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus with `config` and waits until it is ready.
    pub async fn start(config: &Path) -> Result<Self> {
        Self::start_with(config, &[]).await
    }

    /// Starts Prometheus with `config` and `extra` flags (e.g.
    /// `--web.enable-remote-write-receiver`) and waits until it is ready.
    pub async fn start_with(config: &Path, extra: &[&str]) -> Result<Self> {
        if !Path::new(PROMETHEUS_BINARY).exists() {
            bail!(
                "{PROMETHEUS_BINARY} is missing: the differential tests need Debian's \
                 `prometheus` package (scripts/install-deps.sh installs it)"
            );
        }
        Self::start_binary(Path::new(PROMETHEUS_BINARY), config, extra).await
    }

    /// Starts the Prometheus server at `binary` (another build than
    /// Debian's, e.g. one with the service discoveries Debian leaves out)
    /// the same way, and waits until it is ready.
    pub async fn start_binary(binary: &Path, config: &Path, extra: &[&str]) -> Result<Self> {
        if !binary.exists() {
            bail!("{} is missing: no Prometheus to start", binary.display());
        }
        let dir = tempfile::tempdir()?;
        let addr = free_addr();
        let args: Vec<String> = [
            ("--config.file", config.display().to_string()),
            (
                "--storage.tsdb.path",
                dir.path().join("data").display().to_string(),
            ),
            ("--web.listen-address", addr.clone()),
            ("--log.level", "info".into()),
        ]
        .into_iter()
        .map(|(flag, value)| format!("{flag}={value}"))
        .chain([
            "--web.enable-lifecycle".to_string(),
            // Exemplars are kept (and served by /api/v1/query_exemplars)
            // only with this feature on.
            "--enable-feature=exemplar-storage".to_string(),
        ])
        .chain(extra.iter().map(|s| s.to_string()))
        .collect();
        let process = Process::spawn("prometheus", binary, &args, dir.path())?;
        let prometheus = Self {
            addr,
            process: Some(process),
            binary: binary.to_path_buf(),
            args,
            http: reqwest::Client::new(),
            dir,
        };
        prometheus
            .wait_ready()
            .await
            .with_context(|| format!("prometheus at {} did not become ready", prometheus.addr))?;
        Ok(prometheus)
    }

    /// The PID of the running process, or -1 once stopped.
    pub fn pid(&self) -> i32 {
        self.process.as_ref().map_or(-1, Process::pid)
    }

    /// Stops Prometheus with SIGTERM (by PID) and waits for it to exit.
    /// Blocks the thread, so it needs a multi-threaded test runtime.
    pub fn stop(&mut self) -> Result<()> {
        let Some(mut p) = self.process.take() else {
            bail!("prometheus is not running");
        };
        tokio::task::block_in_place(|| p.terminate(Duration::from_secs(20))).map(drop)
    }

    /// Starts it again after [`Self::stop`], on the same address and data,
    /// and waits until it is ready.
    pub async fn start_again(&mut self) -> Result<()> {
        if self.process.is_some() {
            bail!("prometheus is running");
        }
        let process = Process::spawn("prometheus", &self.binary, &self.args, self.dir.path())?;
        self.process = Some(process);
        self.wait_ready().await
    }

    /// Whether the process is alive (not exited, not reaped, not a zombie).
    pub fn is_running(&self) -> bool {
        let Some(p) = &self.process else { return false };
        std::fs::read_to_string(format!("/proc/{}/stat", p.pid()))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, rest)| rest.trim_start().to_string())
            })
            .is_some_and(|rest| !rest.starts_with('Z') && !rest.starts_with('X'))
    }

    /// Returns the server's log so far.
    pub fn log(&self) -> String {
        self.process.as_ref().map(Process::log).unwrap_or_else(|| {
            std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
        })
    }

    /// Its HTTP API.
    pub fn api(&self) -> Api<'_> {
        Api {
            http: &self.http,
            addr: &self.addr,
        }
    }

    /// Runs a range query; returns the result matrix.
    pub async fn query_range(
        &self,
        q: &str,
        start: f64,
        end: f64,
        step: f64,
    ) -> Result<Vec<Value>> {
        self.api().query_range(q, start, end, step).await
    }

    /// Runs an instant query now; returns the result vector.
    pub async fn query(&self, q: &str) -> Result<Vec<Value>> {
        self.api().query(q).await
    }

    /// `/api/v1/targets?state=<state>` (`active`, `dropped` or `any`).
    pub async fn targets(&self, state: &str) -> Result<Value> {
        self.get("/api/v1/targets", &[("state", state.to_string())])
            .await
    }

    /// GETs an API path and returns the JSON `data`.
    pub async fn get(&self, path: &str, params: &[(&str, String)]) -> Result<Value> {
        self.api().get(path, params).await
    }

    async fn wait_ready(&self) -> Result<()> {
        let url = format!("http://{}/-/ready", self.addr);
        let start = Instant::now();
        loop {
            if let Ok(r) = self.http.get(&url).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if !self.is_running() {
                bail!("prometheus exited; log:\n{}", self.log());
            }
            if start.elapsed() > START_DEADLINE {
                bail!(
                    "{url} not ready within {START_DEADLINE:?}; log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
