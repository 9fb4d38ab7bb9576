//! The `prometheus.yml` model: what the control plane loads and the scrapers
//! are told.
//!
//! Loading reads YAML into the serde structs of [`raw`] (unknown fields
//! rejected, value-level checks done while parsing so they carry a line),
//! then [`validate`] fills in Prometheus's defaults and checks what spans
//! fields (timeouts against intervals, unique job names). The result follows
//! Prometheus 2.42: a file Prometheus rejects is rejected here, and a file it
//! accepts is accepted, except for the Prometheus features scrapegrid does not
//! implement yet (other service discoveries, HTTP client auth and TLS), which
//! are errors that say so. Sections scrapegrid does not act on (`rule_files`,
//! `alerting`, `remote_write`, ...) are accepted and reported in
//! [`Config::warnings`].
//!
//! Every error names the file, the place (with the job's name) and the
//! reason, with a line and column when the place exists in the file.

mod error;
mod raw;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use scrapegrid_proto::v1 as pb;

use crate::labels::Labels;
use crate::relabel::RelabelConfig;

pub use error::{ConfigError, ConfigErrorDetail, Result};

/// Prometheus's default `global.scrape_interval`.
pub const DEFAULT_SCRAPE_INTERVAL: Duration = Duration::from_secs(60);
/// Prometheus's default `global.scrape_timeout`.
pub const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
/// Prometheus's default `global.evaluation_interval`.
pub const DEFAULT_EVALUATION_INTERVAL: Duration = Duration::from_secs(60);
/// Prometheus's default file SD `refresh_interval`.
pub const DEFAULT_FILE_SD_REFRESH_INTERVAL: Duration = Duration::from_secs(300);

/// A loaded and validated `prometheus.yml`.
#[derive(Clone, Debug)]
pub struct Config {
    pub global: GlobalConfig,
    pub scrape_configs: Vec<ScrapeConfig>,
    /// Things that were accepted but that scrapegrid does not act on, one
    /// human-readable line each, for the loader to log.
    pub warnings: Vec<String>,
}

/// The `global` section, defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalConfig {
    pub scrape_interval: Duration,
    pub scrape_timeout: Duration,
    pub evaluation_interval: Duration,
    pub external_labels: Labels,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        Self {
            scrape_interval: DEFAULT_SCRAPE_INTERVAL,
            scrape_timeout: DEFAULT_SCRAPE_TIMEOUT,
            evaluation_interval: DEFAULT_EVALUATION_INTERVAL,
            external_labels: Labels::new(),
        }
    }
}

/// One `scrape_configs` entry (a job), defaults filled in.
#[derive(Clone, Debug)]
pub struct ScrapeConfig {
    pub job_name: String,
    pub scrape_interval: Duration,
    /// At most `scrape_interval`.
    pub scrape_timeout: Duration,
    pub metrics_path: String,
    /// `http` or `https`.
    pub scheme: String,
    /// URL query parameters, each name with its values in order.
    pub params: BTreeMap<String, Vec<String>>,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub track_timestamps_staleness: bool,
    pub static_configs: Vec<StaticConfig>,
    pub file_sd_configs: Vec<FileSdConfig>,
    pub relabel_configs: Vec<RelabelConfig>,
    pub metric_relabel_configs: Vec<RelabelConfig>,
    /// Limits; 0 means no limit.
    pub sample_limit: u64,
    pub target_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    /// Bytes; 0 means no limit.
    pub body_size_limit: u64,
}

impl Default for ScrapeConfig {
    /// Returns a job with Prometheus's defaults and the default global
    /// interval and timeout; `job_name` is empty.
    fn default() -> Self {
        Self {
            job_name: String::new(),
            scrape_interval: DEFAULT_SCRAPE_INTERVAL,
            scrape_timeout: DEFAULT_SCRAPE_TIMEOUT,
            metrics_path: "/metrics".to_string(),
            scheme: "http".to_string(),
            params: BTreeMap::new(),
            honor_labels: false,
            honor_timestamps: true,
            track_timestamps_staleness: false,
            static_configs: Vec::new(),
            file_sd_configs: Vec::new(),
            relabel_configs: Vec::new(),
            metric_relabel_configs: Vec::new(),
            sample_limit: 0,
            target_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            body_size_limit: 0,
        }
    }
}

impl ScrapeConfig {
    /// Returns the job's metric relabel rules in wire form, for scrapers.
    pub fn metric_relabel_rules_proto(&self) -> Vec<pb::RelabelRule> {
        self.metric_relabel_configs
            .iter()
            .map(RelabelConfig::to_proto)
            .collect()
    }

    /// Returns the job's target relabel rules in wire form.
    pub fn relabel_rules_proto(&self) -> Vec<pb::RelabelRule> {
        self.relabel_configs
            .iter()
            .map(RelabelConfig::to_proto)
            .collect()
    }
}

/// A `static_configs` entry: targets (`host:port`) sharing labels.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StaticConfig {
    pub targets: Vec<String>,
    pub labels: Labels,
}

/// A `file_sd_configs` entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FileSdConfig {
    /// Glob patterns (a `*` only in the last element); absolute after
    /// [`load_file`], as written after [`load_str`].
    pub files: Vec<PathBuf>,
    pub refresh_interval: Duration,
}

/// Reads and validates a `prometheus.yml`; relative `file_sd_configs` paths
/// are resolved against the file's directory, as Prometheus does.
pub fn load_file(path: &Path) -> Result<Config> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::whole_file(&name, format!("cannot read config file: {e}")))?;
    let mut config = load_str(&text, &name)?;
    let dir = path.parent().unwrap_or_else(|| Path::new(""));
    let dir = if dir.as_os_str().is_empty() {
        std::env::current_dir().unwrap_or_default()
    } else {
        std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
    };
    for job in &mut config.scrape_configs {
        for sd in &mut job.file_sd_configs {
            for f in &mut sd.files {
                if f.is_relative() {
                    *f = dir.join(&*f);
                }
            }
        }
    }
    Ok(config)
}

/// Parses and validates `prometheus.yml` text; `file` names it in errors.
pub fn load_str(text: &str, file: &str) -> Result<Config> {
    // A loose parse first, only to name jobs in errors.
    let doc: Option<yaml_serde::Value> = yaml_serde::from_str(text).ok();
    let job_name = |index: usize| -> Option<String> {
        let name = doc
            .as_ref()?
            .get("scrape_configs")?
            .get(index)?
            .get("job_name")?;
        match name {
            yaml_serde::Value::String(s) if !s.is_empty() => Some(s.clone()),
            yaml_serde::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let with_job = |mut err: ConfigError| {
        let job = err.job_index().and_then(job_name);
        err.set_job(job);
        err
    };
    let raw: raw::RawConfig = if doc.as_ref().is_some_and(yaml_serde::Value::is_null) {
        // An empty file (or only comments) is a valid, empty config.
        raw::RawConfig::default()
    } else {
        yaml_serde::from_str(text).map_err(|e| with_job(ConfigError::from_yaml(file, &e)))?
    };
    validate::validate(raw, file).map_err(|e| with_job(e.into_config_error(file, text)))
}
