//! `consul_sd_configs`: service instances from a Consul agent's catalog, as
//! Prometheus 2.42 discovers them (`discovery/consul`).
//!
//! Without a datacenter in the config it is asked from the agent
//! (`/v1/agent/self`) first. With no `services` listed, or with `tags`, the
//! provider watches the catalog (`/v1/catalog/services`, a blocking query
//! with `index` and a two-minute `wait`) and starts one watcher per service
//! whose name is listed (or any, if none is) and that carries every tag;
//! a service that leaves the catalog has its watcher stopped and its group
//! deleted. With `services` and no `tags`, it watches exactly those. Each
//! service watcher runs blocking queries on `/v1/health/service/<name>`
//! (the tags as `tag` parameters) and sends the service's group when the
//! index moved. After every query, good or not, a watcher waits
//! `refresh_interval`; after a failure it also waits 15 s, as Prometheus
//! does. `node_meta` goes with every query as `node-meta=key:value`,
//! `allow_stale` as `stale`, the datacenter, namespace and partition as
//! `dc`, `ns` and `partition`, and the token as `X-Consul-Token`.
//!
//! The group of service `s` has the source `s` and the labels
//! `__meta_consul_service` and `__meta_consul_dc`; each instance gives a
//! target at the service address (the node's when the service has none)
//! and port, with the `__meta_consul_*` labels Prometheus sets. Bodies over
//! [`MAX_BODY_BYTES`] are refused.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use scrapegrid_common::config::ConsulSdConfig;
use scrapegrid_common::http_client_tls::{OAuth2Tokens, TlsClients};
use scrapegrid_common::Labels;

use super::{
    error_chain, join_host_port, read_body, sanitize_label_name, with_auth, ProviderSender,
    ProviderUpdate, TargetGroup, MIN_REFRESH_INTERVAL,
};
use crate::metrics;

/// How long a blocking query may wait on the server (Prometheus's
/// `watchTimeout`).
pub const WATCH_TIMEOUT: Duration = Duration::from_secs(120);
/// Wait after a failed query (Prometheus's `retryInterval`).
pub const RETRY_INTERVAL: Duration = Duration::from_secs(15);
/// Largest response body accepted.
pub const MAX_BODY_BYTES: usize = 32 << 20;
const USER_AGENT: &str = concat!("scrapegrid/", env!("CARGO_PKG_VERSION"));

/// Why one query failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsulError {
    #[error("{0}")]
    Request(String),
    #[error("Unexpected response code: {status} ({body})")]
    Status { status: StatusCode, body: String },
    #[error("response body larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("invalid json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("invalid value '{0}' for Config.Datacenter")]
    Datacenter(String),
}

/// The HTTP side: one agent, its credentials and TLS.
struct Agent {
    config: ConsulSdConfig,
    clients: TlsClients,
    tokens: OAuth2Tokens,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ServiceEntry {
    #[serde(default)]
    node: Option<Node>,
    #[serde(default)]
    service: Option<Service>,
    #[serde(default)]
    checks: Option<Vec<Check>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Node {
    node: String,
    address: String,
    tagged_addresses: Option<BTreeMap<String, String>>,
    meta: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Service {
    #[serde(rename = "ID")]
    id: String,
    tags: Option<Vec<String>>,
    address: String,
    port: i64,
    meta: Option<BTreeMap<String, String>>,
    namespace: String,
    partition: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Check {
    #[serde(rename = "CheckID")]
    check_id: String,
    status: String,
}

impl Agent {
    /// GETs `path` with the common query options; returns the body and the
    /// `X-Consul-Index`.
    async fn get(
        &self,
        path: &str,
        mut query: Vec<(&'static str, String)>,
        index: u64,
    ) -> Result<(Vec<u8>, u64), ConsulError> {
        let c = &self.config;
        let client = self
            .clients
            .client(
                &c.tls,
                c.follow_redirects,
                c.enable_http2,
                c.proxy_url.as_deref(),
                || {
                    reqwest::Client::builder()
                        .user_agent(USER_AGENT)
                        .no_proxy()
                        .timeout(WATCH_TIMEOUT + Duration::from_secs(15))
                },
            )
            .map_err(ConsulError::Request)?;
        for (name, value) in [
            ("ns", &c.namespace),
            ("partition", &c.partition),
            ("dc", &c.datacenter),
        ] {
            if !value.is_empty() {
                query.push((name, value.clone()));
            }
        }
        if c.allow_stale {
            query.push(("stale", String::new()));
        }
        if index != 0 {
            query.push(("index", index.to_string()));
        }
        query.push(("wait", format!("{}ms", WATCH_TIMEOUT.as_millis())));
        for (key, value) in &c.node_meta {
            query.push(("node-meta", format!("{key}:{value}")));
        }
        let url = format!("{}://{}{path}", c.scheme, c.server);
        let mut request = client.get(url).query(&query);
        if !c.token.0.is_empty() {
            request = request.header("X-Consul-Token", &c.token.0);
        }
        request = with_auth(request, &c.auth, &self.tokens)
            .await
            .map_err(ConsulError::Request)?;
        let mut response = request.send().await.map_err(request_error)?;
        let status = response.status();
        let index = response
            .headers()
            .get("X-Consul-Index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let body = read_body(&mut response, MAX_BODY_BYTES)
            .await
            .map_err(request_error)?
            .ok_or(ConsulError::TooLarge)?;
        if status != StatusCode::OK {
            let body = String::from_utf8_lossy(&body).chars().take(200).collect();
            return Err(ConsulError::Status { status, body });
        }
        Ok((body, index))
    }

    /// The agent's datacenter (`/v1/agent/self`, `Config.Datacenter`).
    async fn datacenter(&self) -> Result<String, ConsulError> {
        let (body, _) = self.get("/v1/agent/self", Vec::new(), 0).await?;
        let value: serde_json::Value = serde_json::from_slice(&body)?;
        let dc = value.pointer("/Config/Datacenter");
        match dc.and_then(serde_json::Value::as_str) {
            Some(dc) => Ok(dc.to_string()),
            None => Err(ConsulError::Datacenter(
                dc.map_or("<nil>".into(), |v| v.to_string()),
            )),
        }
    }
}

fn request_error(e: reqwest::Error) -> ConsulError {
    ConsulError::Request(error_chain(&e))
}

fn failed(what: &str, error: &ConsulError) {
    ::metrics::counter!(metrics::SD_REFRESH_FAILURES, "mechanism" => "consul").increment(1);
    tracing::warn!(%error, "consul_sd: {what} failed");
}

/// Runs one consul_sd provider until `cancel` fires.
pub async fn run(
    provider: usize,
    mut config: ConsulSdConfig,
    tx: mpsc::Sender<ProviderUpdate>,
    cancel: CancellationToken,
) {
    config.refresh_interval = config.refresh_interval.max(MIN_REFRESH_INTERVAL);
    let configured_dc = config.datacenter.clone();
    let agent = std::sync::Arc::new(Agent {
        config,
        clients: TlsClients::default(),
        tokens: OAuth2Tokens::default(),
    });
    // The datacenter for the labels; queries carry `dc` only when configured.
    let dc = if !configured_dc.is_empty() {
        configured_dc
    } else {
        loop {
            let asked = tokio::select! {
                _ = cancel.cancelled() => return,
                r = agent.datacenter() => r,
            };
            match asked {
                Ok(dc) => break dc,
                Err(e) => {
                    failed("asking the agent for its datacenter", &e);
                    if !pause(&cancel, RETRY_INTERVAL).await {
                        return;
                    }
                }
            }
        }
    };
    let (group_tx, mut groups) = mpsc::channel::<TargetGroup>(64);
    let watchers = cancel.child_token();
    let _stop = watchers.clone().drop_guard();
    let c = &agent.config;
    if c.services.is_empty() || !c.tags.is_empty() {
        tokio::spawn(watch_catalog(agent.clone(), dc, group_tx, watchers.clone()));
    } else {
        for name in &c.services {
            tokio::spawn(watch_service(
                agent.clone(),
                name.clone(),
                dc.clone(),
                group_tx.clone(),
                watchers.clone(),
            ));
        }
        drop(group_tx);
    }
    let mut sender = ProviderSender::new(provider, tx);
    loop {
        let group = tokio::select! {
            _ = cancel.cancelled() => return,
            g = groups.recv() => match g {
                Some(g) => g,
                None => return,
            },
        };
        if !sender.send(vec![group]).await {
            return;
        }
    }
}

/// Waits `d`; false if cancelled.
async fn pause(cancel: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

/// Prometheus's `shouldWatch`: the name is listed (or none is) and the
/// service carries every configured tag.
fn should_watch(config: &ConsulSdConfig, name: &str, tags: &[String]) -> bool {
    (config.services.is_empty() || config.services.iter().any(|s| s == name))
        && config.tags.iter().all(|t| tags.contains(t))
}

/// Watches the catalog's service list and runs a watcher per service.
async fn watch_catalog(
    agent: std::sync::Arc<Agent>,
    dc: String,
    tx: mpsc::Sender<TargetGroup>,
    cancel: CancellationToken,
) {
    let mut index = 0u64;
    let mut watched: HashMap<String, CancellationToken> = HashMap::new();
    let mut tick = tokio::time::interval(agent.config.refresh_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let result = tokio::select! {
            _ = cancel.cancelled() => return,
            r = agent.get("/v1/catalog/services", Vec::new(), index) => r,
        };
        let (body, new_index) = match result {
            Ok(r) => r,
            Err(e) => {
                failed("refreshing the service list", &e);
                if !pause(&cancel, RETRY_INTERVAL).await {
                    return;
                }
                continue;
            }
        };
        let services: BTreeMap<String, Option<Vec<String>>> = match serde_json::from_slice(&body) {
            Ok(s) => s,
            Err(e) => {
                failed("reading the service list", &e.into());
                continue;
            }
        };
        if new_index == index {
            continue;
        }
        index = new_index;
        for (name, tags) in &services {
            let tags = tags.as_deref().unwrap_or_default();
            if !should_watch(&agent.config, name, tags) || watched.contains_key(name) {
                continue;
            }
            let token = cancel.child_token();
            tokio::spawn(watch_service(
                agent.clone(),
                name.clone(),
                dc.clone(),
                tx.clone(),
                token.clone(),
            ));
            watched.insert(name.clone(), token);
        }
        let gone: Vec<String> = watched
            .keys()
            .filter(|name| !services.contains_key(*name))
            .cloned()
            .collect();
        for name in gone {
            if let Some(token) = watched.remove(&name) {
                token.cancel();
            }
            let empty = TargetGroup {
                source: name,
                ..Default::default()
            };
            if tx.send(empty).await.is_err() {
                return;
            }
        }
    }
}

/// Watches one service's healthy and unhealthy instances.
async fn watch_service(
    agent: std::sync::Arc<Agent>,
    name: String,
    dc: String,
    tx: mpsc::Sender<TargetGroup>,
    cancel: CancellationToken,
) {
    let mut index = 0u64;
    let mut tick = tokio::time::interval(agent.config.refresh_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let path = format!("/v1/health/service/{}", escape_path(&name));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let query = agent
            .config
            .tags
            .iter()
            .map(|t| ("tag", t.clone()))
            .collect();
        let result = tokio::select! {
            _ = cancel.cancelled() => return,
            r = agent.get(&path, query, index) => r,
        };
        let (body, new_index) = match result {
            Ok(r) => r,
            Err(e) => {
                failed(&format!("refreshing service {name:?}"), &e);
                if !pause(&cancel, RETRY_INTERVAL).await {
                    return;
                }
                continue;
            }
        };
        let entries: Vec<ServiceEntry> = match serde_json::from_slice(&body) {
            Ok(e) => e,
            Err(e) => {
                failed(&format!("reading service {name:?}"), &e.into());
                continue;
            }
        };
        if new_index == index {
            continue;
        }
        index = new_index;
        let group = service_group(&name, &dc, &agent.config.tag_separator, &entries);
        if tx.send(group).await.is_err() {
            return;
        }
    }
}

/// Escapes a service name for a URL path segment.
fn escape_path(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The group of one service, as Prometheus builds it.
fn service_group(name: &str, dc: &str, separator: &str, entries: &[ServiceEntry]) -> TargetGroup {
    let mut targets = Vec::with_capacity(entries.len());
    for entry in entries {
        let (Some(node), Some(service)) = (&entry.node, &entry.service) else {
            continue;
        };
        let tags = service.tags.as_deref().unwrap_or_default();
        let tags = format!("{separator}{}{separator}", tags.join(separator));
        let host = if service.address.is_empty() {
            &node.address
        } else {
            &service.address
        };
        let mut labels = Labels::new().builder();
        labels
            .set(
                "__address__",
                join_host_port(host, &service.port.to_string()),
            )
            .set("__meta_consul_address", node.address.clone())
            .set("__meta_consul_node", node.node.clone())
            .set("__meta_consul_namespace", service.namespace.clone())
            .set("__meta_consul_partition", service.partition.clone())
            .set("__meta_consul_tags", tags)
            .set("__meta_consul_service_address", service.address.clone())
            .set("__meta_consul_service_port", service.port.to_string())
            .set("__meta_consul_service_id", service.id.clone())
            .set(
                "__meta_consul_health",
                aggregated_status(entry.checks.as_deref().unwrap_or_default()),
            );
        let maps = [
            ("__meta_consul_metadata_", &node.meta),
            ("__meta_consul_service_metadata_", &service.meta),
            ("__meta_consul_tagged_address_", &node.tagged_addresses),
        ];
        for (prefix, map) in maps {
            for (k, v) in map.iter().flatten() {
                labels.set(format!("{prefix}{}", sanitize_label_name(k)), v.clone());
            }
        }
        targets.push(labels.labels());
    }
    TargetGroup {
        source: name.to_string(),
        targets,
        labels: Labels::from_pairs([("__meta_consul_service", name), ("__meta_consul_dc", dc)]),
    }
}

/// Consul's `HealthChecks.AggregatedStatus`: maintenance, then critical,
/// warning, passing; an unknown status gives "".
fn aggregated_status(checks: &[Check]) -> &'static str {
    let (mut warning, mut critical, mut maintenance) = (false, false, false);
    for check in checks {
        if check.check_id == "_node_maintenance"
            || check.check_id.starts_with("_service_maintenance:")
        {
            maintenance = true;
            continue;
        }
        match check.status.as_str() {
            "passing" => {}
            "warning" => warning = true,
            "critical" => critical = true,
            _ => return "",
        }
    }
    if maintenance {
        "maintenance"
    } else if critical {
        "critical"
    } else if warning {
        "warning"
    } else {
        "passing"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(id: &str, status: &str) -> Check {
        Check {
            check_id: id.into(),
            status: status.into(),
        }
    }

    #[test]
    fn health_is_aggregated_as_consul_does() {
        assert_eq!(aggregated_status(&[]), "passing");
        assert_eq!(
            aggregated_status(&[check("a", "passing"), check("b", "warning")]),
            "warning"
        );
        assert_eq!(
            aggregated_status(&[check("a", "critical"), check("b", "warning")]),
            "critical"
        );
        assert_eq!(
            aggregated_status(&[
                check("_service_maintenance:x", "critical"),
                check("b", "passing")
            ]),
            "maintenance"
        );
        assert_eq!(
            aggregated_status(&[check("a", "bogus"), check("_node_maintenance", "")]),
            ""
        );
    }

    #[test]
    fn a_service_group_has_prometheus_labels() {
        let entries: Vec<ServiceEntry> = serde_json::from_str(
            r#"[{"Node": {"Node": "n1", "Address": "10.0.0.1", "Meta": {"rack-id": "r1"},
                          "TaggedAddresses": {"lan": "10.0.0.1", "wan_ipv4": "1.2.3.4"}},
                 "Service": {"ID": "web-1", "Service": "web", "Tags": ["a", "b"], "Address": "",
                             "Port": 8080, "Meta": {"version": "2"}},
                 "Checks": [{"CheckID": "serfHealth", "Status": "passing"}]},
                {"Node": {"Node": "n2", "Address": "10.0.0.2"},
                 "Service": {"ID": "web-2", "Tags": null, "Address": "fd00::2", "Port": 80},
                 "Checks": []}]"#,
        )
        .unwrap();
        let group = service_group("web", "dc1", ",", &entries);
        assert_eq!(group.source, "web");
        assert_eq!(
            group.labels,
            Labels::from_pairs([
                ("__meta_consul_dc", "dc1"),
                ("__meta_consul_service", "web")
            ])
        );
        assert_eq!(
            group.targets[0],
            Labels::from_pairs([
                ("__address__", "10.0.0.1:8080"),
                ("__meta_consul_address", "10.0.0.1"),
                ("__meta_consul_health", "passing"),
                ("__meta_consul_metadata_rack_id", "r1"),
                ("__meta_consul_namespace", ""),
                ("__meta_consul_node", "n1"),
                ("__meta_consul_partition", ""),
                ("__meta_consul_service_address", ""),
                ("__meta_consul_service_id", "web-1"),
                ("__meta_consul_service_metadata_version", "2"),
                ("__meta_consul_service_port", "8080"),
                ("__meta_consul_tagged_address_lan", "10.0.0.1"),
                ("__meta_consul_tagged_address_wan_ipv4", "1.2.3.4"),
                ("__meta_consul_tags", ",a,b,"),
            ])
        );
        assert_eq!(group.targets[1].get("__address__"), Some("[fd00::2]:80"));
        assert_eq!(group.targets[1].get("__meta_consul_tags"), Some(",,"));
    }
}
