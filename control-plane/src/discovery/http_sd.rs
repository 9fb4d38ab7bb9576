//! `http_sd_configs`: target groups fetched from an HTTP endpoint, as in
//! Prometheus 2.42 (`discovery/http`).
//!
//! Every `refresh_interval` the provider GETs the URL with
//! `Accept: application/json`, a `User-Agent`, the
//! `X-Prometheus-Refresh-Interval-Seconds` header and the configured basic or
//! authorization credentials. The answer must be a 200 with content type
//! `application/json` (optionally `; charset=utf-8`) and a JSON array of
//! `{"targets": [...], "labels": {...}}`. Group `i` gets the source
//! `<url>:<i>` and the label `__meta_url`; when the endpoint returns fewer
//! groups than before, the missing sources are sent as empty groups, which
//! deletes them. Only changed groups are sent; a full channel makes the
//! provider wait.
//!
//! A request times out after `refresh_interval` (as in Prometheus) and a body
//! larger than [`MAX_BODY_BYTES`] (after decompression) is refused, so a
//! slow or hostile endpoint cannot hold the provider or exhaust memory. Any
//! failure keeps the last good groups, logs a warning and counts
//! `scrapegrid_control_sd_refresh_failures_total{mechanism="http"}`.

use std::collections::BTreeMap;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::StatusCode;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use scrapegrid_common::config::http_client::TlsConfig;
use scrapegrid_common::config::HttpSdConfig;
use scrapegrid_common::http_client_tls::{go_tls_error, OAuth2Tokens, TlsClients};
use scrapegrid_common::Labels;

use super::{
    push_changes, read_body, with_auth, ProviderSender, ProviderUpdate, TargetGroup,
    MIN_REFRESH_INTERVAL,
};
use crate::metrics;
use scrapegrid_common::labels::is_valid_label_name;

/// Largest response body accepted.
pub const MAX_BODY_BYTES: usize = 16 << 20;
/// The label naming the URL a group came from.
pub const URL_LABEL: &str = "__meta_url";
/// Sent as `User-Agent`.
pub const USER_AGENT: &str = concat!("scrapegrid/", env!("CARGO_PKG_VERSION"));
/// Header telling the endpoint how often it is asked.
pub const REFRESH_INTERVAL_HEADER: &str = "X-Prometheus-Refresh-Interval-Seconds";

/// Why one refresh failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpSdError {
    #[error("request failed: {}", describe(.0))]
    Request(#[from] reqwest::Error),
    #[error("{0}")]
    Tls(String),
    #[error("{0}")]
    Auth(String),
    #[error("server returned http status {0}")]
    Status(StatusCode),
    #[error("unsupported content type {0:?}")]
    ContentType(String),
    #[error("response body larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("invalid json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("target group {index}: {reason}")]
    Group { index: usize, reason: String },
}

/// A failed request with its causes, a TLS failure as Go words it.
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        if let Some(tls) =
            scrapegrid_common::http_client_tls::as_rustls(inner).and_then(go_tls_error)
        {
            return format!("{text}: {tls}");
        }
        text = format!("{text}: {inner}");
        source = inner.source();
    }
    text
}

/// One entry of the endpoint's answer; unknown fields are ignored, as Go's
/// JSON decoder does.
#[derive(Debug, Deserialize)]
struct HttpGroup {
    #[serde(default)]
    targets: Option<Vec<String>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

/// Runs one http_sd provider until `cancel` fires.
pub async fn run(
    provider: usize,
    mut config: HttpSdConfig,
    tx: mpsc::Sender<ProviderUpdate>,
    cancel: CancellationToken,
) {
    config.refresh_interval = config.refresh_interval.max(MIN_REFRESH_INTERVAL);
    let timeout = config.refresh_interval;
    let builder = move || {
        reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(timeout)
            .no_proxy()
    };
    // With a tls_config, the client is rebuilt when a file changed.
    let tls_clients = TlsClients::default();
    let tokens = OAuth2Tokens::default();
    let plain = match builder().build() {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(url = %config.url, %error, "http_sd: cannot build http client, provider stopped");
            return;
        }
    };
    let mut last: Vec<TargetGroup> = Vec::new();
    let mut sender = ProviderSender::new(provider, tx);
    let mut tick = tokio::time::interval(config.refresh_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let own = config.tls != TlsConfig::default()
            || !config.follow_redirects
            || !config.enable_http2
            || config.proxy_url.is_some();
        let client = if !own {
            Ok(plain.clone())
        } else {
            tls_clients.client(
                &config.tls,
                config.follow_redirects,
                config.enable_http2,
                config.proxy_url.as_deref(),
                builder,
            )
        };
        let result = match client {
            Ok(client) => tokio::select! {
                _ = cancel.cancelled() => return,
                result = fetch(&client, &config, &tokens) => result,
            },
            Err(reason) => Err(HttpSdError::Tls(reason)),
        };
        let groups = match result {
            Ok(groups) => groups,
            Err(error) => {
                ::metrics::counter!(metrics::SD_REFRESH_FAILURES, "mechanism" => "http")
                    .increment(1);
                tracing::warn!(url = %config.url, %error, "http_sd: refresh failed, keeping last good groups");
                continue;
            }
        };
        let mut changed = Vec::new();
        push_changes(&mut changed, &last, &groups);
        last = groups;
        if !sender.send(changed).await {
            return;
        }
    }
}

/// Fetches and parses the endpoint's groups once.
async fn fetch(
    client: &reqwest::Client,
    config: &HttpSdConfig,
    tokens: &OAuth2Tokens,
) -> Result<Vec<TargetGroup>, HttpSdError> {
    let mut request = client
        .get(&config.url)
        .header(ACCEPT, "application/json")
        .header(
            REFRESH_INTERVAL_HEADER,
            config.refresh_interval.as_secs_f64().to_string(),
        );
    request = with_auth(request, &config.auth, tokens)
        .await
        .map_err(HttpSdError::Auth)?;
    let mut response = request.send().await?;
    if response.status() != StatusCode::OK {
        return Err(HttpSdError::Status(response.status()));
    }
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    if !is_json_content_type(&content_type) {
        return Err(HttpSdError::ContentType(content_type));
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(HttpSdError::TooLarge);
    }
    let body = read_body(&mut response, MAX_BODY_BYTES)
        .await?
        .ok_or(HttpSdError::TooLarge)?;
    parse_groups(&config.url, &body)
}

/// Returns whether a Content-Type is JSON as Prometheus accepts it:
/// `application/json`, optionally with `; charset=utf-8` (quoted or not),
/// case-insensitively, surrounding whitespace ignored.
pub fn is_json_content_type(value: &str) -> bool {
    let value = value.trim().to_ascii_lowercase();
    let Some(rest) = value.strip_prefix("application/json") else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let Some(params) = rest.strip_prefix(';') else {
        return false;
    };
    matches!(
        params.trim_start().strip_prefix("charset="),
        Some("utf-8" | "\"utf-8\"")
    )
}

/// Parses the endpoint's JSON body into groups with sources `<url>:<i>`.
pub fn parse_groups(url: &str, body: &[u8]) -> Result<Vec<TargetGroup>, HttpSdError> {
    let groups: Vec<Option<HttpGroup>> = serde_json::from_slice(body)?;
    let mut out = Vec::with_capacity(groups.len());
    for (index, group) in groups.into_iter().enumerate() {
        let group_error = |reason: String| HttpSdError::Group { index, reason };
        let group = group.ok_or_else(|| group_error("null target group".into()))?;
        let mut labels = group.labels.unwrap_or_default();
        if let Some(name) = labels.keys().find(|n| !is_valid_label_name(n)) {
            return Err(group_error(format!("invalid label name {name:?}")));
        }
        labels.insert(URL_LABEL.to_string(), url.to_string());
        out.push(TargetGroup {
            source: format!("{url}:{index}"),
            targets: group
                .targets
                .unwrap_or_default()
                .into_iter()
                .map(|t| Labels::from_pairs([("__address__", t)]))
                .collect(),
            labels: Labels::from_pairs(labels),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
