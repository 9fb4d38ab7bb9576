//! Harness for scrapegrid's end-to-end tests, which `tests/tests/main.rs` links
//! into one test binary (`e2e`).
//!
//! [`Cluster`] starts the real binaries (`storage-node`, `control-plane`,
//! `scraper-node`, built by `cargo build --bins` next to this test binary,
//! [`bin`]) on loopback with a temporary data directory and config, and
//! kills them when dropped. Every binary is told to listen on port 0
//! ([`ANY_PORT`]) and prints `listening <grpc|http> <addr>` once bound,
//! which [`Process::listening`] reads; [`free_addr`] is only for what cannot
//! report its port (etcd, Prometheus) or must find nobody listening.
//! [`start_storage`] starts the real storage node that way, for every
//! harness here and for the tests of the storage-node binary itself.
//! [`Api`] reads the Prometheus HTTP API of a storage node or of Prometheus
//! itself the same way ([`get_data`] for any other API path).
//! [`TargetServer`] is a real HTTP target whose exposition a test
//! can change. [`eventually`] polls with a deadline instead of sleeping;
//! [`consistently`] checks that something holds for a whole window, and
//! [`hold_for`] names a window in which the cluster just runs.
//! [`audit`] reads raw samples from the storage node and counts missed
//! intervals, duplicates and stale markers; its [`audit::FleetServer`] serves
//! many targets from one port and logs every request.
//! [`prometheus`] starts the real Prometheus 2.42 (Debian's package) on
//! loopback, and [`differential`] runs it beside a cluster on one fixture
//! and one `prometheus.yml` and compares what both store; [`promql`] loads
//! one dataset into both and compares their PromQL answers. [`ha::HaCluster`]
//! runs several control planes (on [`etcd`]) and scrapers over one fleet,
//! for the tests where components fail, and audits what the fleet lost.
//! [`kube_api`] is a fake Kubernetes API server (lists and watches, as
//! client-go asks for them) for the `kubernetes_sd_configs` tests, and
//! [`consul_api`] a fake Consul agent (blocking queries) for the
//! `consul_sd_configs` ones; [`sd_oracle`] runs both kinds against a
//! Prometheus 2.42 built with that discovery, records its answers and
//! compares the control plane's targets with them.
//! [`remote_receiver`] records what a remote-write sender sends (every
//! sample, so a test counts losses, duplicates and order), and [`victoria`]
//! runs the real VictoriaMetrics as a receiver.
//! [`storage`] runs a storage node in the test's process and speaks its
//! ingest protocol, for the storage node's own tests
//! (`tests/tests/storage_*.rs`).
//! [`browser`] drives headless Chromium for the web UI tests; [`cut`] is a
//! TCP forwarder a test cuts to partition two components; [`tmpfs`] a small
//! filesystem a test fills up. [`chaos`] runs a
//! whole cluster under random overlapping faults and judges what it stored
//! against what the targets served.
//! When a test panics, the nodes' logs are printed.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

pub mod audit;
pub mod browser;
pub mod chaos;
mod cluster;
pub mod consul_api;
pub mod cut;
pub mod differential;
pub mod etcd;
pub mod ha;
pub mod kube_api;
mod process;
pub mod prometheus;
pub mod promql;
pub mod proxy;
pub mod remote_receiver;
pub mod sd_oracle;
pub mod storage;
pub mod tls_targets;
pub mod tmpfs;
pub mod victoria;

pub use cluster::{
    start_storage, start_storage_in, start_storage_with, Cluster, ClusterBuilder, StorageNode,
};
pub use process::{bin, free_addr, set_flag, wait_healthy, Process, ANY_PORT};

/// GETs `url` and returns the JSON `data` of a `success` answer.
pub async fn get_data(http: &reqwest::Client, url: &str) -> Result<Value> {
    let body: Value = http.get(url).send().await?.json().await?;
    if body["status"] != "success" {
        bail!("GET {url}: {body}");
    }
    Ok(body["data"].clone())
}

/// Reads the value of the unlabelled sample `name` from `http://{addr}/metrics`.
pub async fn metric_value(http: &reqwest::Client, addr: &str, name: &str) -> Result<f64> {
    let text = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let prefix = format!("{name} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("no {name} on http://{addr}/metrics"))
}

/// The Prometheus HTTP API at `addr`: a storage node's or Prometheus's own,
/// read the same way.
pub struct Api<'a> {
    pub http: &'a reqwest::Client,
    pub addr: &'a str,
}

impl Api<'_> {
    /// GETs `path` with `params`; returns the JSON `data` of a `success`
    /// answer.
    pub async fn get(&self, path: &str, params: &[(&str, String)]) -> Result<Value> {
        let url = format!("http://{}{path}", self.addr);
        let body: Value = self
            .http
            .get(&url)
            .query(params)
            .send()
            .await?
            .json()
            .await?;
        if body["status"] != "success" {
            bail!("GET {url} {params:?}: {body}");
        }
        Ok(body["data"].clone())
    }

    /// Runs an instant query now; returns the result vector.
    pub async fn query(&self, q: &str) -> Result<Vec<Value>> {
        let data = self
            .get("/api/v1/query", &[("query", q.to_string())])
            .await?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }

    /// Runs a range query; returns the result matrix.
    pub async fn query_range(
        &self,
        q: &str,
        start: f64,
        end: f64,
        step: f64,
    ) -> Result<Vec<Value>> {
        let params = [
            ("query", q.to_string()),
            ("start", start.to_string()),
            ("end", end.to_string()),
            ("step", step.to_string()),
        ];
        let data = self.get("/api/v1/query_range", &params).await?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }
}

/// Polls `f` until it returns `Some`; panics after `deadline` (so the nodes'
/// logs are printed).
pub async fn eventually<T, F, Fut>(deadline: Duration, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if start.elapsed() > deadline {
            panic!("condition not met within {deadline:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Lets the cluster run for `d`: a named observation window. What the test
/// waits for happens during it (steady scraping an audit will check, a
/// fault that lasts a while), and is checked after it; the name says which.
pub async fn hold_for(d: Duration, what: &str) {
    println!("holding {d:?}: {what}");
    tokio::time::sleep(d).await;
}

/// Checks `f` throughout `d` (every 100 ms, and once at the end); fails,
/// naming `what`, the first time it does not hold.
pub async fn consistently<F, Fut>(d: Duration, what: &str, mut f: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        let done = start.elapsed() >= d;
        if !f().await {
            bail!("{what} stopped holding after {:?}", start.elapsed());
        }
        if done {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100).min(d.saturating_sub(start.elapsed()))).await;
    }
}

/// A real HTTP target serving a settable exposition on `/metrics`.
pub struct TargetServer {
    pub addr: String,
    body: Arc<Mutex<(u16, String)>>,
    requests: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl TargetServer {
    /// Serves `body` in the text format.
    pub async fn start(body: &str) -> Result<Self> {
        Self::start_typed(body, "text/plain; version=0.0.4").await
    }

    /// Serves `body` as OpenMetrics.
    pub async fn start_openmetrics(body: &str) -> Result<Self> {
        Self::start_typed(
            body,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )
        .await
    }

    async fn start_typed(body: &str, content_type: &'static str) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let body = Arc::new(Mutex::new((200u16, body.to_string())));
        let requests = Arc::new(AtomicU64::new(0));
        let (b, r) = (body.clone(), requests.clone());
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let (b, r) = (b.clone(), r.clone());
                async move {
                    r.fetch_add(1, Ordering::Relaxed);
                    let (status, text) = b.lock().unwrap().clone();
                    (
                        axum::http::StatusCode::from_u16(status).unwrap(),
                        [("content-type", content_type)],
                        text,
                    )
                }
            }),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            body,
            requests,
            task,
        })
    }

    pub fn set(&self, status: u16, body: &str) {
        *self.body.lock().unwrap() = (status, body.to_string());
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for TargetServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Returns the value of an instant-vector sample as f64.
pub fn sample_value(v: &Value) -> f64 {
    v["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Returns seconds since the Unix epoch.
pub fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}
