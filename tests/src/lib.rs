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
//! [`storage`] runs a storage node in the test's process and speaks its
//! ingest protocol, for the storage node's own tests
//! (`tests/tests/storage_*.rs`).
//! When a test panics, the nodes' logs are printed.

use std::future::Future;
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

pub mod audit;
pub mod consul_api;
pub mod differential;
pub mod etcd;
pub mod ha;
pub mod kube_api;
pub mod prometheus;
pub mod promql;
pub mod proxy;
pub mod sd_oracle;
pub mod storage;
pub mod tls_targets;

/// Returns the path of a workspace binary built next to the test binary.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (`cargo build --bins`, as scripts/test.sh does)",
        path.display()
    );
    path
}

/// The address scrapegrid's binaries are told to listen on: port 0, so the
/// OS picks a free port and the binary reports it ([`Process::listening`]).
pub const ANY_PORT: &str = "127.0.0.1:0";

/// Returns a loopback address with a port that was free a moment ago: only
/// for programs that cannot report the port they got (etcd, Prometheus);
/// another process may take it before they bind.
pub fn free_addr() -> String {
    let l = StdListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("local addr").to_string()
}

/// A child process that is SIGKILLed when dropped.
pub struct Process {
    pub name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Process {
    pub fn spawn(name: &str, program: &Path, args: &[String], log_dir: &Path) -> Result<Self> {
        let log = log_dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log)?;
        let child = Command::new(program)
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        Ok(Self {
            name: name.into(),
            child: Some(child),
            log,
        })
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(-1)
    }

    /// Sends SIGKILL and reaps the process.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGKILL) };
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM and waits for a clean exit; returns its exit status code.
    pub fn terminate(&mut self, deadline: Duration) -> Result<Option<i32>> {
        let Some(mut c) = self.child.take() else {
            bail!("{} not running", self.name)
        };
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        loop {
            if let Some(status) = c.try_wait()? {
                return Ok(status.code());
            }
            if start.elapsed() > deadline {
                let _ = c.kill();
                bail!("{} did not exit within {deadline:?} of SIGTERM", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (up to 20 s) for the `listening <kind> <addr>` line that our
    /// binaries print once bound; returns the address.
    pub async fn listening(&mut self, kind: &str) -> Result<String> {
        let prefix = format!("listening {kind} ");
        let start = Instant::now();
        loop {
            let log = self.log();
            if let Some(addr) = log.lines().find_map(|l| l.strip_prefix(&prefix)) {
                return Ok(addr.trim().to_string());
            }
            let exited = match self.child.as_mut() {
                Some(c) => c.try_wait()?,
                None => None,
            };
            if let Some(status) = exited {
                bail!(
                    "{} exited ({status}) before listening on {kind}:\n{log}",
                    self.name
                );
            }
            if start.elapsed() > Duration::from_secs(20) {
                bail!(
                    "{} did not report its {kind} address in 20 s:\n{log}",
                    self.name
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Sets the value after `flag` in `args` (a restart passes the addresses the
/// OS picked for the first run).
pub fn set_flag(args: &mut [String], flag: &str, value: &str) {
    let i = args
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("{flag} is not among {args:?}"));
    args[i + 1] = value.to_string();
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("----- {} log (last {} lines) -----", self.name, tail.len());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// Builds a [`Cluster`].
pub struct ClusterBuilder {
    scrapers: usize,
    config: String,
    membership_timeout: &'static str,
    grpc_scheme: &'static str,
    storage_args: Vec<String>,
    control_args: Vec<String>,
    scraper_args: Vec<String>,
}

impl ClusterBuilder {
    pub fn scrapers(mut self, n: usize) -> Self {
        self.scrapers = n;
        self
    }

    /// The prometheus.yml to load; `{dir}` is replaced by the cluster's directory.
    pub fn config(mut self, yaml: &str) -> Self {
        self.config = yaml.into();
        self
    }

    pub fn membership_timeout(mut self, t: &'static str) -> Self {
        self.membership_timeout = t;
        self
    }

    /// The components speak gRPC over TLS: endpoints are `https://` (the
    /// TLS flags themselves go in the extra arguments).
    pub fn grpc_tls(mut self) -> Self {
        self.grpc_scheme = "https";
        self
    }

    /// Extra arguments of the storage node, the control plane and every
    /// scraper.
    pub fn extra_args(mut self, storage: &[&str], control: &[&str], scraper: &[&str]) -> Self {
        let own = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        self.storage_args = own(storage);
        self.control_args = own(control);
        self.scraper_args = own(scraper);
        self
    }

    pub async fn build(self) -> Result<Cluster> {
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            self.config
                .replace("{dir}", &dir.path().display().to_string()),
        )?;
        let extra: Vec<&str> = self.storage_args.iter().map(String::as_str).collect();
        let storage = start_storage_with(dir.path(), "storage-node", &extra).await?;
        let scheme = self.grpc_scheme;
        let mut control_args = vec![
            "--config".into(),
            config.display().to_string(),
            "--grpc-addr".into(),
            ANY_PORT.into(),
            "--http-addr".into(),
            ANY_PORT.into(),
            "--storage".into(),
            format!("{scheme}://{}", storage.grpc),
            "--discovery-update-interval".into(),
            "100ms".into(),
            "--membership-timeout".into(),
            self.membership_timeout.into(),
            "--startup-grace".into(),
            "1s".into(),
        ];
        control_args.extend(self.control_args.iter().cloned());
        let mut control = Process::spawn(
            "control-plane",
            &bin("control-plane"),
            &control_args,
            dir.path(),
        )?;
        let control_grpc = control.listening("grpc").await?;
        let control_http = control.listening("http").await?;
        set_flag(&mut control_args, "--grpc-addr", &control_grpc);
        set_flag(&mut control_args, "--http-addr", &control_http);
        let mut cluster = Cluster {
            dir,
            config,
            grpc_scheme: scheme,
            scraper_args: self.scraper_args.clone(),
            storage: Some(storage.process),
            storage_args: storage.args,
            storage_http: storage.http,
            storage_grpc: storage.grpc,
            control: Some(control),
            control_args,
            control_grpc,
            control_http,
            scrapers: Vec::new(),
            http: reqwest::Client::new(),
        };
        wait_healthy(&cluster.http, &cluster.control_http).await?;
        for i in 0..self.scrapers {
            cluster.add_scraper(&format!("scraper-{i}")).await?;
        }
        Ok(cluster)
    }
}

/// A storage node process started by a test.
pub struct StorageNode {
    pub process: Process,
    /// Its arguments with the addresses it got, to start it again on them.
    pub args: Vec<String>,
    pub grpc: String,
    pub http: String,
}

/// Starts a storage node named `name` (its log is `dir/<name>.log`) with
/// its data in `dir/data`, on ports the OS picks; waits until it is healthy.
pub async fn start_storage(dir: &Path, name: &str) -> Result<StorageNode> {
    start_storage_with(dir, name, &[]).await
}

/// Starts a storage node as [`start_storage`] does, with `extra` flags
/// after the usual ones (e.g. `--retention.time 1h`).
pub async fn start_storage_with(dir: &Path, name: &str, extra: &[&str]) -> Result<StorageNode> {
    let mut args: Vec<String> = [
        "--data-dir",
        &dir.join("data").display().to_string(),
        "--grpc-addr",
        ANY_PORT,
        "--http-addr",
        ANY_PORT,
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect();
    let mut process = Process::spawn(name, &bin("storage-node"), &args, dir)?;
    let grpc = process.listening("grpc").await?;
    let http = process.listening("http").await?;
    set_flag(&mut args, "--grpc-addr", &grpc);
    set_flag(&mut args, "--http-addr", &http);
    wait_healthy(&reqwest::Client::new(), &http).await?;
    Ok(StorageNode {
        process,
        args,
        grpc,
        http,
    })
}

/// Waits (up to 20 s) until `http://{addr}/-/healthy` answers 200.
pub async fn wait_healthy(http: &reqwest::Client, addr: &str) -> Result<()> {
    let url = format!("http://{addr}/-/healthy");
    eventually(Duration::from_secs(20), || async {
        let r = http.get(&url).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await
    .with_context(|| format!("{url} never became healthy"))
}

/// A running scrapegrid cluster on loopback.
pub struct Cluster {
    pub config: PathBuf,
    pub storage: Option<Process>,
    storage_args: Vec<String>,
    pub storage_http: String,
    pub storage_grpc: String,
    pub control: Option<Process>,
    control_args: Vec<String>,
    pub control_grpc: String,
    pub control_http: String,
    pub scrapers: Vec<(String, String, Option<Process>)>,
    /// `http` or `https`, for gRPC endpoints.
    grpc_scheme: &'static str,
    /// Extra arguments of every scraper.
    scraper_args: Vec<String>,
    pub http: reqwest::Client,
    /// Last, so it is removed after the processes (and their logs) are gone.
    pub dir: tempfile::TempDir,
}

impl Cluster {
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder {
            scrapers: 1,
            config: String::new(),
            membership_timeout: "5s",
            grpc_scheme: "http",
            storage_args: Vec::new(),
            control_args: Vec::new(),
            scraper_args: Vec::new(),
        }
    }

    /// Starts a scraper with the given id; returns its index.
    pub async fn add_scraper(&mut self, id: &str) -> Result<usize> {
        let extra = self.scraper_args.clone();
        self.add_scraper_with(id, &extra).await
    }

    /// Starts a scraper with the given id and extra arguments (instead of
    /// the cluster's); returns its index.
    pub async fn add_scraper_with(&mut self, id: &str, extra: &[String]) -> Result<usize> {
        let mut args = vec![
            "--control-plane".into(),
            format!("{}://{}", self.grpc_scheme, self.control_grpc),
            "--http-addr".into(),
            ANY_PORT.into(),
            "--id".into(),
            id.into(),
            "--status-interval".into(),
            "500ms".into(),
        ];
        args.extend(extra.iter().cloned());
        let mut p = Process::spawn(id, &bin("scraper-node"), &args, self.dir.path())?;
        let http_addr = p.listening("http").await?;
        wait_healthy(&self.http, &http_addr).await?;
        self.scrapers.push((id.into(), http_addr, Some(p)));
        Ok(self.scrapers.len() - 1)
    }

    /// Starts the storage node again on the same ports and data directory
    /// (after a `kill9` of the old one) and waits until it is healthy.
    pub async fn restart_storage(&mut self) -> Result<()> {
        let name = "storage-node-restarted";
        let p = Process::spawn(
            name,
            &bin("storage-node"),
            &self.storage_args,
            self.dir.path(),
        )?;
        // The old process's log stays in storage-node.log.
        self.storage = Some(p);
        wait_healthy(&self.http, &self.storage_http).await
    }

    /// Starts the control plane again on the same ports and config (after a
    /// `kill9` of the old one) and waits until it is healthy.
    pub async fn restart_control(&mut self) -> Result<()> {
        let name = "control-plane-restarted";
        let p = Process::spawn(
            name,
            &bin("control-plane"),
            &self.control_args,
            self.dir.path(),
        )?;
        self.control = Some(p);
        wait_healthy(&self.http, &self.control_http).await
    }

    /// Sends SIGTERM to a scraper and waits for it to exit (its drain);
    /// returns its exit code. Other tasks of the (multi-threaded) test runtime
    /// keep running meanwhile.
    pub fn terminate_scraper(&mut self, id: &str, deadline: Duration) -> Result<Option<i32>> {
        let p = self.scraper_mut(id);
        tokio::task::block_in_place(|| p.terminate(deadline))
    }

    pub fn scraper_mut(&mut self, id: &str) -> &mut Process {
        self.scrapers
            .iter_mut()
            .find(|(i, _, _)| i == id)
            .and_then(|(_, _, p)| p.as_mut())
            .expect("scraper running")
    }

    /// GETs a storage-node API path and returns the JSON `data`.
    pub async fn api(&self, path_and_query: &str) -> Result<Value> {
        get_data(
            &self.http,
            &format!("http://{}{}", self.storage_http, path_and_query),
        )
        .await
    }

    /// The storage node's Prometheus HTTP API.
    pub fn storage_api(&self) -> Api<'_> {
        Api {
            http: &self.http,
            addr: &self.storage_http,
        }
    }

    /// Runs an instant query now; returns the result vector.
    pub async fn query(&self, q: &str) -> Result<Vec<Value>> {
        self.storage_api().query(q).await
    }

    /// Runs a range query; returns the result matrix.
    pub async fn query_range(
        &self,
        q: &str,
        start: f64,
        end: f64,
        step: f64,
    ) -> Result<Vec<Value>> {
        self.storage_api().query_range(q, start, end, step).await
    }

    /// The control plane's `/api/v1/targets` data.
    pub async fn targets(&self) -> Result<Value> {
        get_data(
            &self.http,
            &format!("http://{}/api/v1/targets", self.control_http),
        )
        .await
    }
}

/// GETs `url` and returns the JSON `data` of a `success` answer.
pub async fn get_data(http: &reqwest::Client, url: &str) -> Result<Value> {
    let body: Value = http.get(url).send().await?.json().await?;
    if body["status"] != "success" {
        bail!("GET {url}: {body}");
    }
    Ok(body["data"].clone())
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
    pub async fn start(body: &str) -> Result<Self> {
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
                        [("content-type", "text/plain; version=0.0.4")],
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
