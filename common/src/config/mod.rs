//! The `prometheus.yml` model: what the control plane loads and the scrapers
//! are told.
//!
//! Loading reads YAML into the serde structs of [`raw`] and [`sd`] (unknown
//! fields rejected, value-level checks done while parsing so they carry a
//! line), then [`validate`] fills in Prometheus's defaults and checks what
//! spans fields (timeouts against intervals, unique job names) or needs the
//! file system (credentials files). [`load`] drives both over the main file
//! and the files its `scrape_config_files` name, collecting every error it
//! can: a document with errors is read again part by part ([`parse`]) so a
//! mistake in one job does not hide those in the next. [`error`] holds the
//! error type and takes `yaml_serde`'s errors apart, [`glob`] expands
//! `scrape_config_files` patterns as Go does, and [`scrape_protocols`]
//! builds the Accept header a job's scrapes send.
//!
//! The result follows Prometheus 2.42 (and 2.43 for `scrape_config_files`):
//! a file Prometheus rejects is rejected here, and a file it accepts is
//! accepted, except for the Prometheus features scrapegrid does not implement
//! yet (other service discoveries, HTTP client auth and TLS for scraping, TLS,
//! proxies and OAuth2 for HTTP SD), which are errors that say so. Sections
//! scrapegrid does not act on (`rule_files`, `alerting`, `remote_read`, ...)
//! are accepted and reported in [`Config::warnings`]. [`remote_write`] is
//! the `remote_write` section, which the storage node acts on.
//!
//! Every error names the file, the place (with the job's name) and the
//! reason, with a line and column when the place exists in the file.

mod consul;
mod error;
pub mod glob;
pub mod http_client;
mod integrations;
mod kubernetes;
mod load;
mod parse;
mod raw;
pub mod remote_write;
mod scrape_protocols;
mod sd;
mod validate;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_discovery;
#[cfg(test)]
mod tests_files;
#[cfg(test)]
mod tests_sd_oracle;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use scrapegrid_proto::v1 as pb;

use crate::labels::Labels;
use crate::relabel::RelabelConfig;

pub use error::{ConfigError, ConfigErrorDetail, Result};
pub use integrations::Integration;
pub use kubernetes::{check_selector, KubernetesRole, KubernetesSelector};
pub use remote_write::{MetadataConfig, QueueConfig, RemoteWriteConfig};
pub use scrape_protocols::{
    accept_header, DEFAULT_ACCEPT_HEADER, PROTOBUF_ACCEPT_HEADER, SCRAPE_PROTOCOLS,
};

/// Prometheus's default `global.scrape_interval`.
pub const DEFAULT_SCRAPE_INTERVAL: Duration = Duration::from_secs(60);
/// Prometheus's default `global.scrape_timeout`.
pub const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
/// Prometheus's default `global.evaluation_interval`.
pub const DEFAULT_EVALUATION_INTERVAL: Duration = Duration::from_secs(60);
/// Prometheus's default file SD `refresh_interval`.
pub const DEFAULT_FILE_SD_REFRESH_INTERVAL: Duration = Duration::from_secs(300);
/// Prometheus's default HTTP SD `refresh_interval`.
pub const DEFAULT_HTTP_SD_REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// Prometheus's default DNS SD `refresh_interval`.
pub const DEFAULT_DNS_SD_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// Prometheus's default `refresh_interval` of a `consul_sd_configs` entry.
pub const DEFAULT_CONSUL_SD_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// A loaded and validated `prometheus.yml`, with the jobs of its
/// `scrape_config_files` appended to its own.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub global: GlobalConfig,
    pub scrape_configs: Vec<ScrapeConfig>,
    /// Where the storage node sends what it stores.
    pub remote_write: Vec<RemoteWriteConfig>,
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
    /// The jobs' default `scrape_native_histograms`.
    pub scrape_native_histograms: Option<bool>,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        Self {
            scrape_interval: DEFAULT_SCRAPE_INTERVAL,
            scrape_timeout: DEFAULT_SCRAPE_TIMEOUT,
            evaluation_interval: DEFAULT_EVALUATION_INTERVAL,
            external_labels: Labels::new(),
            scrape_native_histograms: None,
        }
    }
}

/// One `scrape_configs` entry (a job), defaults filled in.
#[derive(Clone, Debug, PartialEq)]
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
    pub http_sd_configs: Vec<HttpSdConfig>,
    pub dns_sd_configs: Vec<DnsSdConfig>,
    pub kubernetes_sd_configs: Vec<KubernetesSdConfig>,
    pub consul_sd_configs: Vec<ConsulSdConfig>,
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
    /// `scrape_protocols` in order; empty: Prometheus 2.42's Accept header.
    pub scrape_protocols: Vec<String>,
    /// `scrape_native_histograms` (the job's, else the global one; false by
    /// default): native histograms in protobuf scrapes are ingested, and
    /// without `scrape_protocols` the Accept header prefers protobuf, as
    /// Prometheus 2.42 with `--enable-feature=native-histograms` (whose
    /// option this is in Prometheus 3). Off, a kept native histogram fails
    /// the scrape as in 2.42 without the flag.
    pub scrape_native_histograms: bool,
    /// How scrapes authenticate and their TLS.
    pub http_client: http_client::HttpClientConfig,
    /// For an `integrations` job: where its targets come from (the cluster
    /// itself, not an SD config).
    pub integration: Option<Integration>,
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
            http_sd_configs: Vec::new(),
            dns_sd_configs: Vec::new(),
            kubernetes_sd_configs: Vec::new(),
            consul_sd_configs: Vec::new(),
            relabel_configs: Vec::new(),
            metric_relabel_configs: Vec::new(),
            sample_limit: 0,
            target_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            body_size_limit: 0,
            scrape_protocols: Vec::new(),
            scrape_native_histograms: false,
            http_client: Default::default(),
            integration: None,
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
    /// [`load_file`], as written after [`load_str`] (relative to the
    /// including file's directory for a job of a `scrape_config_files` file).
    pub files: Vec<PathBuf>,
    pub refresh_interval: Duration,
}

/// An `http_sd_configs` entry (Prometheus 2.42 semantics).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HttpSdConfig {
    /// An `http` or `https` URL with a host, as written.
    pub url: String,
    /// Its `tls_config`; files are read at every refresh.
    pub tls: http_client::TlsConfig,
    /// Follow HTTP redirects (at most 10).
    pub follow_redirects: bool,
    /// Offer HTTP/2 over TLS (`enable_http2`).
    pub enable_http2: bool,
    /// The HTTP proxy of its requests, if any.
    pub proxy_url: Option<String>,
    pub refresh_interval: Duration,
    pub auth: HttpAuth,
}

/// A `kubernetes_sd_configs` entry (Prometheus 2.42 semantics).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KubernetesSdConfig {
    pub role: KubernetesRole,
    /// Where the API server is and how to reach it.
    pub access: KubernetesAccess,
    /// Namespaces to watch; empty: all. `own_namespace` adds the one the
    /// in-cluster service account belongs to.
    pub namespaces: Vec<String>,
    pub own_namespace: bool,
    pub selectors: Vec<KubernetesSelector>,
    /// `attach_metadata: {node: true}`: node labels on pod and endpoint
    /// targets.
    pub attach_node: bool,
}

/// A `consul_sd_configs` entry (Prometheus 2.42 semantics).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConsulSdConfig {
    /// `host:port` of the agent.
    pub server: String,
    /// `http` or `https`.
    pub scheme: String,
    /// Sent as `X-Consul-Token` when not empty.
    pub token: SecretString,
    /// Empty: asked from the agent (`/v1/agent/self`).
    pub datacenter: String,
    pub namespace: String,
    pub partition: String,
    pub tag_separator: String,
    pub allow_stale: bool,
    pub refresh_interval: Duration,
    /// Services to watch; empty: all.
    pub services: Vec<String>,
    /// Tags every instance must carry.
    pub tags: Vec<String>,
    pub node_meta: BTreeMap<String, String>,
    pub auth: HttpAuth,
    pub tls: http_client::TlsConfig,
    pub follow_redirects: bool,
    pub enable_http2: bool,
    pub proxy_url: Option<String>,
}

/// A secret that `Debug` never prints.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct SecretString(pub String);

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "<secret>"
        })
    }
}

/// How a Kubernetes SD config reaches its API server.
// A config holds a handful of these for its lifetime: size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KubernetesAccess {
    /// `api_server` with the config's own HTTP client settings.
    ApiServer {
        url: String,
        auth: HttpAuth,
        tls: http_client::TlsConfig,
        follow_redirects: bool,
        enable_http2: bool,
        proxy_url: Option<String>,
    },
    /// `kubeconfig_file`: its current context (absolute path).
    KubeConfig(PathBuf),
    /// Neither: the pod's service account (`KUBERNETES_SERVICE_HOST`,
    /// `/var/run/secrets/kubernetes.io/serviceaccount`).
    InCluster,
}

/// How an HTTP SD request authenticates. Credentials files are read when the
/// config is loaded, so a reload picks up a rotated secret.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub enum HttpAuth {
    #[default]
    None,
    /// From `basic_auth: {username, password | password_file}`; a file's
    /// content has surrounding whitespace trimmed, as in Prometheus.
    Basic { username: String, password: String },
    /// From `authorization: {type, credentials | credentials_file}` (type
    /// `Bearer` when left out) or the older `bearer_token` /
    /// `bearer_token_file`; sent as `Authorization: <scheme> <credentials>`.
    Authorization { scheme: String, credentials: String },
    /// From `oauth2`: a client-credentials token, fetched when needed (the
    /// client secret file is read then).
    OAuth2(Box<http_client::OAuth2>),
}

impl std::fmt::Debug for HttpAuth {
    /// Writes the variant without the secret, so configs can be logged.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpAuth::None => f.write_str("None"),
            HttpAuth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<secret>")
                .finish(),
            HttpAuth::OAuth2(o) => f.debug_tuple("OAuth2").field(o).finish(),
            HttpAuth::Authorization { scheme, .. } => f
                .debug_struct("Authorization")
                .field("scheme", scheme)
                .field("credentials", &"<secret>")
                .finish(),
        }
    }
}

/// A `dns_sd_configs` entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DnsSdConfig {
    /// Names to look up; at least one.
    pub names: Vec<String>,
    /// `type`, `SRV` when left out; accepted in any case.
    pub record_type: DnsRecordType,
    /// The port of the targets of A, AAAA and MX lookups (never 0 for them);
    /// 0 for SRV, whose records carry the port (Prometheus ignores `port` there).
    pub port: u16,
    pub refresh_interval: Duration,
}

/// The record type a [`DnsSdConfig`] looks up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DnsRecordType {
    Srv,
    A,
    Aaaa,
    Mx,
}

impl DnsRecordType {
    /// Returns the name Prometheus uses (`SRV`, `A`, `AAAA`, `MX`).
    pub fn as_str(self) -> &'static str {
        match self {
            DnsRecordType::Srv => "SRV",
            DnsRecordType::A => "A",
            DnsRecordType::Aaaa => "AAAA",
            DnsRecordType::Mx => "MX",
        }
    }
}

/// Reads and validates a `prometheus.yml`, returning its first error.
///
/// Relative paths (`file_sd_configs` files, credentials files,
/// `scrape_config_files` patterns) are resolved against the file's
/// directory, and those in a file named by `scrape_config_files` against
/// that file's directory, as Prometheus does.
pub fn load_file(path: &Path) -> Result<Config> {
    first_error(load::load_file(path))
}

/// Reads and validates a `prometheus.yml` and returns every error found,
/// in document order, main file first; empty when the file is valid.
///
/// A YAML syntax error stops the reading of the file it is in; otherwise each
/// job is checked even when another one is invalid.
pub fn check_file(path: &Path) -> Vec<ConfigError> {
    load::load_file(path).1
}

/// Parses and validates `prometheus.yml` text; `file` names it in errors.
///
/// Without a file there is no directory: `file_sd_configs` paths are kept as
/// written, and credentials files and `scrape_config_files` patterns are
/// resolved against the current directory, as Prometheus's own `config.Load`
/// does.
pub fn load_str(text: &str, file: &str) -> Result<Config> {
    first_error(load::load_text(text, file, None))
}

fn first_error((config, errors): (Config, Vec<ConfigError>)) -> Result<Config> {
    match errors.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(config),
    }
}
