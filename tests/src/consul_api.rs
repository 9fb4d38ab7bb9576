//! A fake Consul agent on loopback, speaking the part of Consul's HTTP API
//! that Prometheus 2.42's `consul_sd_configs` (hashicorp/consul/api) uses,
//! so that scrapegrid's Consul discovery can be compared with Prometheus's
//! over the same catalog and the same changes.
//!
//! [`ConsulApi`] holds service instances as `/v1/health/service/<name>`
//! returns them (`{"Node": {...}, "Service": {...}, "Checks": [...]}`) and
//! one index that every change raises. It serves:
//!
//! - `GET /v1/agent/self`: `{"Config": {"Datacenter": "dc1"}}`;
//! - `GET /v1/catalog/services`: every service with the union of its
//!   instances' tags;
//! - `GET /v1/health/service/<name>`: the service's instances carrying every
//!   `tag` parameter;
//!
//! with `X-Consul-Index`, blocking queries (`index` at or past the current
//! one waits until a change or `wait`, e.g. `120000ms`, at most 10 minutes)
//! and `node-meta=key:value` filters (every one must hold) on both lists.
//! Every request's path and query is logged ([`ConsulApi::requests`]) with
//! its `X-Consul-Token`. The server stops when the handle is dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What the server knows.
struct Shared {
    /// Instances, keyed by (service name, service ID, node).
    instances: Mutex<BTreeMap<(String, String, String), Value>>,
    index: watch::Sender<u64>,
    requests: Mutex<Vec<String>>,
    shutdown: CancellationToken,
}

/// A running fake Consul agent; stops when dropped.
pub struct ConsulApi {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

fn key(entry: &Value) -> Result<(String, String, String)> {
    let service = entry["Service"]["Service"]
        .as_str()
        .with_context(|| format!("instance without Service.Service: {entry}"))?;
    let id = entry["Service"]["ID"].as_str().unwrap_or(service);
    let node = entry["Node"]["Node"].as_str().unwrap_or_default();
    Ok((service.into(), id.into(), node.into()))
}

impl ConsulApi {
    /// Starts an empty agent on `127.0.0.1`, on a port the OS picks.
    pub async fn start() -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            instances: Mutex::new(BTreeMap::new()),
            index: watch::channel(1).0,
            requests: Mutex::new(Vec::new()),
            shutdown: CancellationToken::new(),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let stop = shared.shutdown.clone().cancelled_owned();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await;
        });
        Ok(Self { addr, shared })
    }

    /// Replaces every instance with those of the JSON array at `path`.
    pub fn load(&self, path: &Path) -> Result<()> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let entries: Vec<Value> = serde_json::from_str(&text)?;
        let mut map = BTreeMap::new();
        for e in entries {
            map.insert(key(&e)?, e);
        }
        *self.shared.instances.lock().unwrap() = map;
        self.bump();
        Ok(())
    }

    /// Applies `{"op": "put" | "delete", "instance": {...}}` changes, the
    /// JSON array at `path`, as one change.
    pub fn apply_file(&self, path: &Path) -> Result<()> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let events: Vec<Value> = serde_json::from_str(&text)?;
        {
            let mut map = self.shared.instances.lock().unwrap();
            for event in events {
                let instance = &event["instance"];
                let k = key(instance)?;
                match event["op"].as_str() {
                    Some("put") => {
                        map.insert(k, instance.clone());
                    }
                    Some("delete") => {
                        map.remove(&k)
                            .with_context(|| format!("no instance {k:?}"))?;
                    }
                    other => anyhow::bail!("unknown op {other:?} in {event}"),
                }
            }
        }
        self.bump();
        Ok(())
    }

    fn bump(&self) {
        self.shared.index.send_modify(|i| *i += 1);
    }

    /// Every request so far: path and query, then ` token=<X-Consul-Token>`
    /// when one was sent.
    pub fn requests(&self) -> Vec<String> {
        self.shared.requests.lock().unwrap().clone()
    }
}

impl Drop for ConsulApi {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
    }
}

/// The query parameters, in order.
fn params(uri: &Uri) -> Vec<(String, String)> {
    uri.query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Go's `time.ParseDuration` for the `wait` parameter's forms (`120000ms`,
/// `2m`, `30s`).
fn parse_wait(s: &str) -> Option<Duration> {
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = number.parse().ok()?;
    Some(match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(60 * n),
        _ => return None,
    })
}

fn node_meta_matches(entry: &Value, filters: &[(String, String)]) -> bool {
    filters
        .iter()
        .all(|(k, v)| entry["Node"]["Meta"][k].as_str() == Some(v))
}

async fn handle(State(shared): State<Arc<Shared>>, headers: HeaderMap, uri: Uri) -> Response {
    let token = headers
        .get("X-Consul-Token")
        .and_then(|v| v.to_str().ok())
        .map(|t| format!(" token={t}"))
        .unwrap_or_default();
    let logged = match uri.query() {
        Some(q) => format!("{}?{q}{token}", uri.path()),
        None => format!("{}{token}", uri.path()),
    };
    shared.requests.lock().unwrap().push(logged);
    let params = params(&uri);
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let node_meta: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k == "node-meta")
        .filter_map(|(_, v)| {
            v.split_once(':')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        })
        .collect();
    let path = uri.path().to_string();
    if path == "/v1/agent/self" {
        return reply(
            0,
            json!({"Config": {"Datacenter": "dc1", "NodeName": "agent"}}),
        );
    }
    // A blocking query waits for a change past its index.
    let mut changes = shared.index.subscribe();
    let asked: u64 = get("index").and_then(|i| i.parse().ok()).unwrap_or(0);
    let wait = get("wait")
        .and_then(|w| parse_wait(&w))
        .unwrap_or(Duration::from_secs(300))
        .min(Duration::from_secs(600));
    if asked > 0 && *changes.borrow() <= asked {
        let _ = tokio::time::timeout(wait, async {
            while *changes.borrow_and_update() <= asked {
                tokio::select! {
                    _ = shared.shutdown.cancelled() => return,
                    r = changes.changed() => if r.is_err() { return },
                }
            }
        })
        .await;
    }
    let index = *shared.index.borrow();
    let instances = shared.instances.lock().unwrap().clone();
    let visible = instances
        .values()
        .filter(|e| node_meta_matches(e, &node_meta));
    if path == "/v1/catalog/services" {
        let mut services: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for e in visible {
            let name = e["Service"]["Service"].as_str().unwrap_or_default();
            let tags = services.entry(name.to_string()).or_default();
            for t in e["Service"]["Tags"].as_array().into_iter().flatten() {
                tags.insert(t.as_str().unwrap_or_default().to_string());
            }
        }
        return reply(index, json!(services));
    }
    if let Some(name) = path.strip_prefix("/v1/health/service/") {
        let name = decode(name);
        let tags: Vec<String> = params
            .iter()
            .filter(|(k, _)| k == "tag")
            .map(|(_, v)| v.clone())
            .collect();
        let entries: Vec<Value> = visible
            .filter(|e| e["Service"]["Service"].as_str() == Some(name.as_str()))
            .filter(|e| {
                let have: Vec<&str> = e["Service"]["Tags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                tags.iter().all(|t| have.contains(&t.as_str()))
            })
            .cloned()
            .collect();
        return reply(index, Value::Array(entries));
    }
    Response::builder()
        .status(StatusCode::NOT_FOUND)
        .body(Body::from(format!("no handler for {path}")))
        .unwrap()
}

fn reply(index: u64, body: Value) -> Response {
    let mut b = Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "application/json");
    if index > 0 {
        b = b.header("X-Consul-Index", index.to_string());
    }
    b.body(Body::from(body.to_string())).unwrap()
}
