//! Reloading `remote_write` without a restart (SIGHUP, `POST /-/reload`),
//! as Prometheus does: the file is read again; an invalid one changes
//! nothing and its error is returned. When the section changed, the running
//! queues stop (their positions are kept), the writer opens the egress of
//! the new config between two writes (an endpoint still configured keeps
//! its position, a removed one's is deleted, a new one starts with what is
//! stored from then on) and the new queues start.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::metadata::MetadataSender;
use super::{Egress, EgressConfig};
use crate::db::Db;
use crate::metadata::MetadataStore;
use crate::writer::{EgressOpener, WriterHandle};

/// Reads the egress config again (the `--config` file); the error names
/// the file, the field and the reason.
#[derive(Clone)]
pub struct EgressSource(pub Arc<dyn Fn() -> Result<EgressConfig, String> + Send + Sync>);

impl EgressSource {
    /// Reads `remote_write` and `global.external_labels` from the
    /// `prometheus.yml` at `path`, validated as a whole (a file the control
    /// plane would refuse is refused here too).
    pub fn from_file(path: std::path::PathBuf, max_disk_bytes_per_url: u64) -> Self {
        Self(Arc::new(move || {
            let file = scrapegrid_common::config::load_file(&path).map_err(|e| e.to_string())?;
            Ok(EgressConfig {
                remote_write: file.remote_write,
                external_labels: file.global.external_labels,
                max_disk_bytes_per_url,
            })
        }))
    }

    /// Reads the config now.
    pub fn read(&self) -> Result<EgressConfig, String> {
        (self.0)()
    }
}

impl std::fmt::Debug for EgressSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EgressSource")
    }
}

/// The running queues and the config they run.
struct Running {
    stop: CancellationToken,
    tasks: TaskTracker,
    config: EgressConfig,
    progress: Option<super::Progress>,
}

impl Running {
    /// Starts the queues of `egress` and the metadata senders of `config`.
    fn start(
        egress: Option<Egress>,
        config: EgressConfig,
        metadata: &Arc<MetadataStore>,
        node: &CancellationToken,
    ) -> Self {
        let stop = node.child_token();
        let tasks = TaskTracker::new();
        let progress = egress.map(|e| e.spawn(&tasks, stop.clone()));
        for rw in &config.remote_write {
            match MetadataSender::new(metadata.clone(), rw) {
                Ok(Some(sender)) => {
                    tasks.spawn(sender.run(stop.clone()));
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::error!(url = %rw.url, %error, "remote_write metadata cannot be sent");
                }
            }
        }
        tasks.close();
        Self {
            stop,
            tasks,
            config,
            progress,
        }
    }

    async fn stop(&self) {
        self.stop.cancel();
        self.tasks.wait().await;
    }
}

/// Owns the running queues; reloads them.
pub struct Reloader {
    db: Arc<Db>,
    writer: WriterHandle,
    source: Option<EgressSource>,
    node: CancellationToken,
    metadata: Arc<MetadataStore>,
    running: tokio::sync::Mutex<Running>,
}

impl Reloader {
    /// Starts the queues of `egress` (opened from `config`); `source`
    /// reads the config again on reload (`None`: nothing to reload from);
    /// `metadata` is what the metadata senders send. The queues run until
    /// [`Self::stop`] or `node` is cancelled.
    pub fn start(
        db: Arc<Db>,
        writer: WriterHandle,
        egress: Option<Egress>,
        config: EgressConfig,
        source: Option<EgressSource>,
        metadata: Arc<MetadataStore>,
        node: CancellationToken,
    ) -> Self {
        let running = Running::start(egress, config, &metadata, &node);
        Self {
            db,
            writer,
            source,
            node,
            metadata,
            running: tokio::sync::Mutex::new(running),
        }
    }

    /// Reads the config again and applies it; returns what it did.
    pub async fn reload(&self) -> Result<String, String> {
        let Some(source) = &self.source else {
            return Err("the storage node was started without --config".into());
        };
        let config = source.read()?;
        let mut running = self.running.lock().await;
        if config == running.config {
            return Ok("remote_write unchanged".into());
        }
        running.stop().await;
        match self.swap(config.clone()).await {
            Ok(egress) => {
                let n = config.remote_write.len();
                *running = Running::start(egress, config, &self.metadata, &self.node);
                tracing::info!(queues = n, "remote_write reloaded");
                Ok(format!("remote_write reloaded: {n} queues"))
            }
            Err(e) => {
                // Back to what ran before, so nothing is left unsent.
                let old = running.config.clone();
                let egress = self.swap(old.clone()).await.unwrap_or_else(|e| {
                    tracing::error!(error = %e, "reopening the previous remote_write queues failed");
                    None
                });
                *running = Running::start(egress, old, &self.metadata, &self.node);
                Err(format!("opening the remote_write queues failed: {e}"))
            }
        }
    }

    async fn swap(&self, config: EgressConfig) -> Result<Option<Egress>, String> {
        let db = self.db.clone();
        self.writer
            .swap_egress(EgressOpener(Box::new(move || Egress::open(db, &config))))
            .await
            .map_err(|e| e.to_string())
    }

    /// Waits until the queues have sent everything written so far, at most
    /// `timeout` (Prometheus's `--storage.remote.flush-deadline`, at
    /// shutdown); returns whether they did.
    pub async fn flush(&self, timeout: std::time::Duration) -> bool {
        let Some(progress) = self.running.lock().await.progress.clone() else {
            return true;
        };
        let until = tokio::time::Instant::now() + timeout;
        progress.start_flush();
        loop {
            if progress.sent_everything() {
                return true;
            }
            if tokio::time::Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Stops the queues (at shutdown).
    pub async fn stop(&self) {
        self.running.lock().await.stop().await;
    }
}
