//! VictoriaMetrics single node (Debian's `victoria-metrics` 1.79, installed
//! by scripts/install-deps.sh) on loopback, as a remote-write receiver whose
//! raw samples a test reads back with `/api/v1/export`.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::{eventually, free_addr, Process};

const BINARY: &str = "/usr/bin/victoria-metrics";

pub struct VictoriaMetrics {
    /// `127.0.0.1:<port>`.
    pub addr: String,
    process: Process,
    args: Vec<String>,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

impl VictoriaMetrics {
    /// Starts it with an empty data directory and waits until it is ready.
    pub async fn start() -> Result<Self> {
        if !Path::new(BINARY).exists() {
            bail!("{BINARY} is missing: install Debian's `victoria-metrics` (scripts/install-deps.sh)");
        }
        let dir = tempfile::tempdir()?;
        let addr = free_addr();
        let args = vec![
            format!("-storageDataPath={}", dir.path().join("data").display()),
            format!("-httpListenAddr={addr}"),
            // Samples are searchable at once instead of after a second.
            "-search.latencyOffset=0s".to_string(),
            "-retentionPeriod=100y".to_string(),
        ];
        let process = Process::spawn("victoria-metrics", Path::new(BINARY), &args, dir.path())?;
        let vm = Self {
            addr,
            process,
            args,
            http: reqwest::Client::new(),
            dir,
        };
        vm.wait_healthy().await?;
        Ok(vm)
    }

    async fn wait_healthy(&self) -> Result<()> {
        let health = format!("http://{}/health", self.addr);
        eventually(Duration::from_secs(20), || async {
            let r = self.http.get(&health).send().await.ok()?;
            r.status().is_success().then_some(())
        })
        .await
        .context("victoria-metrics never became healthy")
    }

    /// Starts it again on its data and address after [`Self::stop`].
    pub async fn start_again(&mut self) -> Result<()> {
        self.process = Process::spawn(
            "victoria-metrics",
            Path::new(BINARY),
            &self.args,
            self.dir.path(),
        )?;
        self.wait_healthy().await
    }

    /// The remote-write URL.
    pub fn write_url(&self) -> String {
        format!("http://{}/api/v1/write", self.addr)
    }

    /// The raw samples of the series `selector` matches, after a flush of
    /// what was just written: (labels as `name="value"` pairs sorted, then
    /// timestamps and values).
    pub async fn export(&self, selector: &str) -> Result<Vec<(String, Vec<i64>, Vec<f64>)>> {
        self.http
            .get(format!("http://{}/internal/force_flush", self.addr))
            .send()
            .await?;
        let text = self
            .http
            .get(format!("http://{}/api/v1/export", self.addr))
            .query(&[("match[]", selector)])
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        let mut out = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line)?;
            let mut pairs: Vec<String> = v["metric"]
                .as_object()
                .context("metric")?
                .iter()
                .map(|(k, v)| format!("{k}={:?}", v.as_str().unwrap_or_default()))
                .collect();
            pairs.sort();
            let ts = v["timestamps"]
                .as_array()
                .context("timestamps")?
                .iter()
                .map(|t| t.as_i64().unwrap_or_default())
                .collect();
            let values = v["values"]
                .as_array()
                .context("values")?
                .iter()
                .map(|x| match x {
                    Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
                    _ => f64::NAN,
                })
                .collect();
            out.push((pairs.join(","), ts, values));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    pub fn kill9(&mut self) {
        self.process.kill9();
    }

    /// Stops it with SIGTERM (it flushes what it acked; after `kill -9` it
    /// loses the last second of acked samples, which it keeps in memory).
    pub fn stop(&mut self) -> Result<()> {
        tokio::task::block_in_place(|| self.process.terminate(Duration::from_secs(20))).map(drop)
    }
}
