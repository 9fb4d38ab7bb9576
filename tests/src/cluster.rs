//! A scrapegrid cluster on loopback: [`Cluster::builder`] starts a storage
//! node, a control plane and scrapers as real processes in a temporary
//! directory, and [`Cluster`] restarts, stops and queries them.
//! [`start_storage`] starts a storage node alone, for the harnesses and
//! tests that need only one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use serde_json::Value;

use crate::{bin, get_data, set_flag, wait_healthy, Api, Process, ANY_PORT};

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
    start_storage_in(&dir.join("data"), dir, name, extra).await
}

/// Starts a storage node on `data_dir`, logging to `log_dir`.
pub async fn start_storage_in(
    data_dir: &Path,
    log_dir: &Path,
    name: &str,
    extra: &[&str],
) -> Result<StorageNode> {
    let mut args: Vec<String> = [
        "--data-dir",
        &data_dir.display().to_string(),
        "--grpc-addr",
        ANY_PORT,
        "--http-addr",
        ANY_PORT,
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect();
    let mut process = Process::spawn(name, &bin("storage-node"), &args, log_dir)?;
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
        let control = self.control_grpc.clone();
        self.spawn_scraper(id, &control, extra).await
    }

    /// Starts a scraper that reaches the control plane at `control_plane`
    /// (`host:port`, e.g. a [`crate::cut::Cut`] in between); returns its
    /// index.
    pub async fn add_scraper_via(&mut self, id: &str, control_plane: &str) -> Result<usize> {
        let extra = self.scraper_args.clone();
        self.spawn_scraper(id, control_plane, &extra).await
    }

    async fn spawn_scraper(
        &mut self,
        id: &str,
        control_plane: &str,
        extra: &[String],
    ) -> Result<usize> {
        let mut args = vec![
            "--control-plane".into(),
            format!("{}://{control_plane}", self.grpc_scheme),
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

    /// The newest process started with scraper id `id`.
    pub fn scraper_mut(&mut self, id: &str) -> &mut Process {
        self.scrapers
            .iter_mut()
            .rev()
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
