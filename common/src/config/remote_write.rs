//! The `remote_write` section: where the storage node sends what it
//! stores (Prometheus's `RemoteWriteConfig`), with Prometheus 2.42's
//! defaults and checks.
//!
//! Each entry is read on its own ([`super::parse`]), so an error in one
//! names its index and line without hiding the others. The HTTP client
//! settings are the ones a scrape job has ([`HttpClientConfig`]): secrets
//! stay file paths, read per request. `sigv4` (AWS) is rejected as not
//! supported; `azuread` is not a 2.42 field.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Deserialize;

use super::http_client::{
    http_client_config, HttpClientConfig, RawAuthorization, RawBasicAuth, RawHttpClient, RawOAuth2,
    RawTlsConfig,
};
use super::raw::{RelabelRuleYaml, Unsupported};
use super::validate::{Context, Seg};
use crate::duration::serde_duration_opt;
use crate::relabel::RelabelConfig;

/// One `remote_write` entry, defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteWriteConfig {
    pub url: String,
    /// As written; empty when unset (see [`RemoteWriteConfig::queue_name`]).
    pub name: String,
    pub remote_timeout: Duration,
    /// Extra request headers (none of [`RESERVED_HEADERS`]).
    pub headers: BTreeMap<String, String>,
    pub write_relabel_configs: Vec<RelabelConfig>,
    pub http_client: HttpClientConfig,
    pub queue: QueueConfig,
    pub metadata: MetadataConfig,
    pub send_exemplars: bool,
    pub send_native_histograms: bool,
}

impl RemoteWriteConfig {
    /// The name of the queue in metrics and logs: `name`, or, as in
    /// Prometheus, a hash of the entry when it has none (here of its URL,
    /// headers and relabeling, the settings that decide what is sent where).
    pub fn queue_name(&self) -> String {
        if !self.name.is_empty() {
            return self.name.clone();
        }
        let mut text = self.url.clone();
        for (k, v) in &self.headers {
            text.push_str(&format!("\n{k}: {v}"));
        }
        for r in &self.write_relabel_configs {
            text.push_str(&format!("\n{r:?}"));
        }
        // FNV-1a: stable across builds and platforms, unlike `DefaultHasher`.
        let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        format!("{:06x}", hash & 0xff_ffff)
    }
}

/// `queue_config`, Prometheus 2.42's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    /// Samples buffered per shard.
    pub capacity: usize,
    pub max_shards: usize,
    pub min_shards: usize,
    pub max_samples_per_send: usize,
    pub batch_send_deadline: Duration,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Retry a 429 (Too Many Requests) as a 5xx; off: drop the request.
    pub retry_on_http_429: bool,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            capacity: 2500,
            max_shards: 200,
            min_shards: 1,
            max_samples_per_send: 500,
            batch_send_deadline: Duration::from_secs(5),
            min_backoff: Duration::from_millis(30),
            max_backoff: Duration::from_secs(5),
            retry_on_http_429: false,
        }
    }
}

/// `metadata_config`, Prometheus 2.42's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataConfig {
    pub send: bool,
    pub send_interval: Duration,
    pub max_samples_per_send: usize,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        Self {
            send: true,
            send_interval: Duration::from_secs(60),
            max_samples_per_send: 500,
        }
    }
}

/// Prometheus's default `remote_timeout`.
pub const DEFAULT_REMOTE_TIMEOUT: Duration = Duration::from_secs(30);

/// Headers a `headers` map may not set (Prometheus 2.42's
/// `reservedHeaders`), compared without case.
pub const RESERVED_HEADERS: [&str; 12] = [
    "Authorization",
    "X-Prometheus-Remote-Write-Version",
    "Host",
    "Content-Encoding",
    "Content-Length",
    "Content-Type",
    "User-Agent",
    "Connection",
    "Keep-Alive",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Www-Authenticate",
];

/// A `remote_write` entry as serde reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRemoteWriteConfig {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, with = "serde_duration_opt")]
    remote_timeout: Option<Duration>,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    write_relabel_configs: Option<Vec<Option<RelabelRuleYaml>>>,
    #[serde(default)]
    queue_config: Option<RawQueueConfig>,
    #[serde(default)]
    metadata_config: Option<RawMetadataConfig>,
    #[serde(default)]
    send_exemplars: Option<bool>,
    #[serde(default)]
    send_native_histograms: Option<bool>,
    #[serde(default)]
    basic_auth: Option<RawBasicAuth>,
    #[serde(default)]
    authorization: Option<RawAuthorization>,
    #[serde(default)]
    bearer_token: Option<String>,
    #[serde(default)]
    bearer_token_file: Option<String>,
    #[serde(default)]
    oauth2: Option<RawOAuth2>,
    #[serde(default)]
    tls_config: Option<RawTlsConfig>,
    #[serde(default)]
    proxy_url: Option<String>,
    #[serde(default)]
    follow_redirects: Option<bool>,
    #[serde(default)]
    enable_http2: Option<bool>,
    #[serde(default)]
    #[allow(dead_code)]
    sigv4: Option<Unsupported>,
    #[serde(default)]
    #[allow(dead_code)]
    proxy_connect_header: Option<Unsupported>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueueConfig {
    #[serde(default)]
    capacity: Option<usize>,
    #[serde(default)]
    max_shards: Option<usize>,
    #[serde(default)]
    min_shards: Option<usize>,
    #[serde(default)]
    max_samples_per_send: Option<usize>,
    #[serde(default, with = "serde_duration_opt")]
    batch_send_deadline: Option<Duration>,
    #[serde(default, with = "serde_duration_opt")]
    min_backoff: Option<Duration>,
    #[serde(default, with = "serde_duration_opt")]
    max_backoff: Option<Duration>,
    #[serde(default)]
    retry_on_http_429: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetadataConfig {
    #[serde(default)]
    send: Option<bool>,
    #[serde(default, with = "serde_duration_opt")]
    send_interval: Option<Duration>,
    #[serde(default)]
    max_samples_per_send: Option<usize>,
}

/// Validates one entry at `at` (`remote_write[i]`), filling in defaults.
/// Problems are pushed to `ctx`; the entry is still returned.
pub(super) fn remote_write_config(
    raw: RawRemoteWriteConfig,
    at: &[Seg],
    ctx: &mut Context,
) -> RemoteWriteConfig {
    let field = |name: &'static str| [at, &[Seg::Key(name)]].concat();
    let url = raw.url.unwrap_or_default();
    if url.is_empty() {
        ctx.invalid(at, "url for remote_write is empty");
    }
    let headers = raw.headers.unwrap_or_default();
    for name in headers.keys() {
        if name.eq_ignore_ascii_case("Authorization") {
            ctx.invalid(
                &field("headers"),
                "authorization header must be changed via the basic_auth, authorization, oauth2, or sigv4 parameter",
            );
        } else if RESERVED_HEADERS
            .iter()
            .any(|r| r.eq_ignore_ascii_case(name))
        {
            ctx.invalid(
                &field("headers"),
                format!("{name} is a reserved header. It must not be changed"),
            );
        }
    }
    let mut write_relabel_configs = Vec::new();
    let rules = raw.write_relabel_configs.unwrap_or_default();
    for (k, rule) in rules.into_iter().enumerate() {
        match rule {
            Some(r) => write_relabel_configs.push(r.0),
            None => ctx.invalid(
                &[field("write_relabel_configs"), vec![Seg::Index(k)]].concat(),
                "empty or null relabeling rule in remote write config",
            ),
        }
    }
    let http_client = http_client_config(
        RawHttpClient {
            basic_auth: raw.basic_auth,
            authorization: raw.authorization,
            oauth2: raw.oauth2,
            bearer_token: raw.bearer_token,
            bearer_token_file: raw.bearer_token_file,
            tls_config: raw.tls_config,
            proxy_url: raw.proxy_url,
            follow_redirects: raw.follow_redirects,
            enable_http2: raw.enable_http2,
        },
        at,
        ctx,
    );
    let q = raw.queue_config.unwrap_or_default();
    let d = QueueConfig::default();
    let queue = QueueConfig {
        capacity: q.capacity.unwrap_or(d.capacity),
        max_shards: q.max_shards.unwrap_or(d.max_shards),
        min_shards: q.min_shards.unwrap_or(d.min_shards),
        max_samples_per_send: q.max_samples_per_send.unwrap_or(d.max_samples_per_send),
        batch_send_deadline: q.batch_send_deadline.unwrap_or(d.batch_send_deadline),
        min_backoff: q.min_backoff.unwrap_or(d.min_backoff),
        max_backoff: q.max_backoff.unwrap_or(d.max_backoff),
        retry_on_http_429: q.retry_on_http_429.unwrap_or(d.retry_on_http_429),
    };
    let m = raw.metadata_config.unwrap_or_default();
    let dm = MetadataConfig::default();
    RemoteWriteConfig {
        url,
        name: raw.name.unwrap_or_default(),
        remote_timeout: raw.remote_timeout.unwrap_or(DEFAULT_REMOTE_TIMEOUT),
        headers,
        write_relabel_configs,
        http_client,
        queue,
        metadata: MetadataConfig {
            send: m.send.unwrap_or(dm.send),
            send_interval: m.send_interval.unwrap_or(dm.send_interval),
            max_samples_per_send: m.max_samples_per_send.unwrap_or(dm.max_samples_per_send),
        },
        send_exemplars: raw.send_exemplars.unwrap_or(false),
        send_native_histograms: raw.send_native_histograms.unwrap_or(false),
    }
}

/// Validates the section's entries (each read on its own: `None` for a
/// null entry, or its parse error), and checks what spans them: names
/// unique (empty names aside), as Prometheus does.
pub(super) fn remote_write_section(
    entries: Vec<Result<Option<RawRemoteWriteConfig>, super::ConfigError>>,
    ctx: &mut Context,
    parse_errors: &mut Vec<super::ConfigError>,
) -> Vec<RemoteWriteConfig> {
    let mut list = Vec::new();
    let mut names = BTreeSet::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let at = [Seg::Key("remote_write"), Seg::Index(i)];
        let raw = match entry {
            Ok(Some(raw)) => raw,
            Ok(None) => {
                ctx.invalid(&at, "empty or null remote write config section");
                continue;
            }
            Err(e) => {
                parse_errors.push(e);
                continue;
            }
        };
        let config = remote_write_config(raw, &at, ctx);
        if !config.name.is_empty() && !names.insert(config.name.clone()) {
            ctx.invalid(
                &[at[0].clone(), at[1].clone(), Seg::Key("name")],
                format!(
                    "found multiple remote write configs with job name {:?}",
                    config.name
                ),
            );
        }
        list.push(config);
    }
    list
}
