//! Live reload: re-reads the configuration file on request (SIGHUP,
//! `POST /-/reload`, the gRPC `Reload` call). A file that fails to load
//! changes nothing: the error goes back to the caller and into the log, and
//! the configuration in force keeps running. A valid file goes to the
//! discovery manager (which restarts only changed providers) and to the
//! coordinator (which rebuilds targets and re-sends only what changed).
//! Reloads are serialized by a mutex so two callers never interleave.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, Mutex};

use scrapegrid_common::config::{load_file, Config, ConfigError};

use crate::coordinator::Coordinator;
use crate::metrics;

/// Handle that performs reloads; cheap to clone.
#[derive(Clone)]
pub struct Reloader {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    discovery: mpsc::Sender<Arc<Config>>,
    coordinator: Coordinator,
    lock: Mutex<()>,
}

impl Reloader {
    pub fn new(
        path: PathBuf,
        discovery: mpsc::Sender<Arc<Config>>,
        coordinator: Coordinator,
    ) -> Self {
        record(true);
        Self {
            inner: Arc::new(Inner {
                path,
                discovery,
                coordinator,
                lock: Mutex::new(()),
            }),
        }
    }

    /// Re-reads the file; returns the configuration now in force.
    pub async fn reload(&self) -> Result<Arc<Config>, ConfigError> {
        let _guard = self.inner.lock.lock().await;
        let path = self.inner.path.clone();
        let loaded = tokio::task::spawn_blocking(move || load_file(&path))
            .await
            .unwrap_or_else(|e| panic!("config loading panicked: {e}"));
        let config = match loaded {
            Ok(c) => Arc::new(c),
            Err(error) => {
                record(false);
                tracing::error!(%error, "reload refused; the running configuration stays");
                return Err(error);
            }
        };
        for warning in &config.warnings {
            tracing::warn!(file = %self.inner.path.display(), "{warning}");
        }
        let _ = self.inner.discovery.send(config.clone()).await;
        self.inner.coordinator.reload(config.clone()).await;
        record(true);
        tracing::info!(file = %self.inner.path.display(), jobs = config.scrape_configs.len(), "reloaded configuration");
        Ok(config)
    }
}

fn record(success: bool) {
    ::metrics::gauge!(metrics::CONFIG_LAST_RELOAD_SUCCESSFUL).set(if success { 1.0 } else { 0.0 });
    ::metrics::counter!(metrics::CONFIG_RELOADS, "result" => if success { "success" } else { "failure" })
        .increment(1);
    if success {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        ::metrics::gauge!(metrics::CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP).set(now);
    }
}
