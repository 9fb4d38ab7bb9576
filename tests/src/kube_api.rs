//! A fake Kubernetes API server on loopback, speaking exactly the part of
//! the API that Prometheus 2.42's kubernetes discovery (client-go v0.26)
//! uses, in JSON, so that scrapegrid's `kubernetes_sd_configs` can be
//! compared with Prometheus's over the same objects and the same changes.
//!
//! [`KubeApi`] holds objects (`serde_json::Value`s as `kubectl get -o json`
//! prints them) of six kinds — Node, Pod, Service, Endpoints (core `v1`),
//! EndpointSlice (`discovery.k8s.io/v1`) and Ingress (`networking.k8s.io/v1`)
//! — and a history of changes, each stamped with the next value of one
//! global resourceVersion counter. It serves:
//!
//! - `GET /version`, v1.26.0 (2.42 wants >= 1.21 for `discovery.k8s.io/v1`
//!   and >= 1.19 for `networking.k8s.io/v1`);
//! - lists, `GET /api/v1/pods`, `/api/v1/namespaces/{ns}/pods`, ... (nodes
//!   are cluster-scoped): every matching object, with the current
//!   resourceVersion; `limit` and `continue` are ignored (one page);
//! - watches, the same paths with `watch=true|1` and `resourceVersion=R`:
//!   a chunked stream of newline-delimited `{"type","object"}` events, every
//!   change after R that matches, then each later one as it happens, until
//!   the client disconnects, `timeoutSeconds` pass or the server stops.
//!   A change that makes an object start (stop) matching the selectors is
//!   sent as ADDED (DELETED), as the real API server does. R older than the
//!   kept history gets one `ERROR` event with a 410 `Expired` Status; R
//!   absent or `0` starts with an ADDED event per current object. With
//!   `allowWatchBookmarks=true` a BOOKMARK is sent every [`BOOKMARK_EVERY`].
//!
//! `labelSelector` (`a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`,
//! `a notin (x)`, comma-separated, all must hold) and `fieldSelector`
//! (`metadata.name`, `metadata.namespace`, and for pods `spec.nodeName` and
//! `status.phase`, with `=`, `==` or `!=`) filter both. Anything else is
//! answered with a Status body: 400 for a bad selector, 404 for an unknown
//! path, 405 for a method other than GET.
//!
//! Every request's path and query, as received, is logged
//! ([`KubeApi::requests`]), so that a test can check what a client asked
//! for. The server stops (and ends every open watch) when the handle is
//! dropped.
//!
//! This file is the HTTP side; `store` keeps the objects and history and
//! decides what each watch sees, and `selector` parses and matches the
//! selectors (both pure, with table tests).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio::time::MissedTickBehavior;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

mod selector;
mod store;

use selector::{parse_field_selector, parse_label_selector};
use store::{Filter, Key, Store};

/// How often a watch that allows bookmarks gets one (a real API server
/// sends them about once a minute; more often here, so a test sees them).
pub const BOOKMARK_EVERY: Duration = Duration::from_secs(1);

/// How long a watch lasts without `timeoutSeconds`.
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

/// The kinds of object the fake serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Node,
    Pod,
    Service,
    Endpoints,
    EndpointSlice,
    Ingress,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Node,
        Kind::Pod,
        Kind::Service,
        Kind::Endpoints,
        Kind::EndpointSlice,
        Kind::Ingress,
    ];

    /// Returns the kind of an object's `kind` field.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Node => "Node",
            Kind::Pod => "Pod",
            Kind::Service => "Service",
            Kind::Endpoints => "Endpoints",
            Kind::EndpointSlice => "EndpointSlice",
            Kind::Ingress => "Ingress",
        }
    }

    pub fn api_version(self) -> &'static str {
        match self {
            Kind::EndpointSlice => "discovery.k8s.io/v1",
            Kind::Ingress => "networking.k8s.io/v1",
            _ => "v1",
        }
    }

    /// The path prefix of its API group and version.
    fn group_path(self) -> &'static str {
        match self {
            Kind::EndpointSlice => "/apis/discovery.k8s.io/v1",
            Kind::Ingress => "/apis/networking.k8s.io/v1",
            _ => "/api/v1",
        }
    }

    /// The resource name in paths.
    fn resource(self) -> &'static str {
        match self {
            Kind::Node => "nodes",
            Kind::Pod => "pods",
            Kind::Service => "services",
            Kind::Endpoints => "endpoints",
            Kind::EndpointSlice => "endpointslices",
            Kind::Ingress => "ingresses",
        }
    }

    fn namespaced(self) -> bool {
        self != Kind::Node
    }
}

/// Returns the kind and namespace of a list or watch path.
fn route(path: &str) -> Option<(Kind, Option<String>)> {
    Kind::ALL.into_iter().find_map(|kind| {
        let rest = path.strip_prefix(kind.group_path())?.strip_prefix('/')?;
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            [r] if *r == kind.resource() => Some((kind, None)),
            ["namespaces", ns, r]
                if *r == kind.resource() && kind.namespaced() && !ns.is_empty() =>
            {
                Some((kind, Some(ns.to_string())))
            }
            _ => None,
        }
    })
}

/// State shared by the handle, the HTTP handler and the watches.
struct Shared {
    store: Mutex<Store>,
    /// The latest resourceVersion, for watches to wait on.
    changed: watch::Sender<u64>,
    requests: Mutex<Vec<String>>,
    /// The `Authorization` header of every request ("" when absent).
    authorizations: Mutex<Vec<String>>,
    /// Cancelled when the handle is dropped: ends the server and watches.
    shutdown: CancellationToken,
}

impl Shared {
    /// Applies `f` to the store, then wakes the watches.
    fn change(&self, f: impl FnOnce(&mut Store) -> Result<()>) -> Result<()> {
        let rv = {
            let mut store = self.store.lock().unwrap();
            f(&mut store)?;
            store.rv()
        };
        self.changed.send_replace(rv);
        Ok(())
    }
}

/// A running fake API server; stops when dropped.
pub struct KubeApi {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl KubeApi {
    /// Starts an empty server on `127.0.0.1`, on a port the OS picks.
    pub async fn start() -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::default()),
            changed: watch::channel(0).0,
            requests: Mutex::new(Vec::new()),
            authorizations: Mutex::new(Vec::new()),
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

    /// `http://127.0.0.1:<port>`, for `api_server`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds an object (its `kind` says which); fails if it exists.
    pub fn add(&self, object: Value) -> Result<()> {
        self.shared.change(|s| s.add(object))
    }

    /// Replaces an existing object.
    pub fn modify(&self, object: Value) -> Result<()> {
        self.shared.change(|s| s.modify(object))
    }

    /// Deletes an object; `namespace` is empty for a node.
    pub fn delete(&self, kind: &str, namespace: &str, name: &str) -> Result<()> {
        let kind = Kind::from_name(kind).with_context(|| format!("unsupported kind {kind:?}"))?;
        let key = Key::new(kind, namespace, name);
        self.shared.change(|s| s.delete(&key))
    }

    /// Deletes every object, one change each.
    pub fn clear(&self) -> Result<()> {
        self.shared.change(Store::clear)
    }

    /// Adds the objects of a fixture: a JSON file holding one object, an
    /// array of them or a `List` (`{"items": [...]}`), or a directory of
    /// such `*.json` files (in name order).
    pub fn load(&self, path: &Path) -> Result<()> {
        if path.is_dir() {
            let mut files: Vec<_> = std::fs::read_dir(path)?
                .map(|e| e.map(|e| e.path()))
                .collect::<std::io::Result<_>>()?;
            files.retain(|p| p.extension().is_some_and(|e| e == "json"));
            files.sort();
            return files.iter().try_for_each(|f| self.load(f));
        }
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let value: Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let objects = match value {
            Value::Array(items) => items,
            Value::Object(list) if list.contains_key("items") => {
                list["items"].as_array().cloned().unwrap_or_default()
            }
            object => vec![object],
        };
        objects
            .into_iter()
            .try_for_each(|o| self.add(o))
            .with_context(|| format!("loading {}", path.display()))
    }

    /// Applies one change written as a watch event: `{"type": "ADDED" |
    /// "MODIFIED" | "DELETED", "object": {...}}` (for a deletion, the
    /// object's kind, namespace and name are enough).
    pub fn apply(&self, event: &Value) -> Result<()> {
        let object = event["object"].clone();
        match event["type"].as_str() {
            Some("ADDED") => self.add(object),
            Some("MODIFIED") => self.modify(object),
            Some("DELETED") => {
                let meta = &object["metadata"];
                self.delete(
                    object["kind"].as_str().unwrap_or_default(),
                    meta["namespace"].as_str().unwrap_or_default(),
                    meta["name"].as_str().unwrap_or_default(),
                )
            }
            _ => bail!("not a change: {event}"),
        }
    }

    /// Applies, in order, the changes of a JSON file holding an array of
    /// them (see [`KubeApi::apply`]).
    pub fn apply_file(&self, path: &Path) -> Result<()> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let events: Vec<Value> =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        events
            .iter()
            .try_for_each(|e| self.apply(e))
            .with_context(|| format!("applying {}", path.display()))
    }

    /// Forgets the history of changes: a watch from any earlier
    /// resourceVersion gets 410 Gone, and its client must list again.
    pub fn compact(&self) {
        self.shared.store.lock().unwrap().compact();
    }

    /// Ends every open watch with 410 Gone, even those that have seen the
    /// latest change (as after an API server's watch cache is reset): each
    /// client must list again.
    pub fn expire_watches(&self) -> Result<()> {
        self.shared.change(|store| {
            store.expire();
            Ok(())
        })
    }

    /// The resourceVersion of the latest change.
    pub fn resource_version(&self) -> u64 {
        self.shared.store.lock().unwrap().rv()
    }

    /// The path and query of every request so far, as received (e.g.
    /// `/api/v1/pods?labelSelector=app%3Dweb&limit=500&resourceVersion=0`).
    pub fn requests(&self) -> Vec<String> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// The `Authorization` header of every request so far, in order
    /// (empty when a request had none).
    pub fn authorizations(&self) -> Vec<String> {
        self.shared.authorizations.lock().unwrap().clone()
    }

    /// Forgets the requests logged so far.
    pub fn clear_requests(&self) {
        self.shared.requests.lock().unwrap().clear();
    }
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
    }
}

/// The one handler: logs the request, then routes it.
async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    headers: header::HeaderMap,
    uri: Uri,
) -> Response {
    let path_and_query = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_string(), |pq| pq.to_string());
    shared.requests.lock().unwrap().push(path_and_query);
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    shared.authorizations.lock().unwrap().push(authorization);
    if method != Method::GET {
        return status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("{method} is not supported"),
        );
    }
    if uri.path() == "/version" {
        return json_response(StatusCode::OK, &version());
    }
    let Some((kind, namespace)) = route(uri.path()) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!(
                "the server could not find the requested resource ({})",
                uri.path()
            ),
        );
    };
    let params = query_params(&uri);
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let selectors =
        parse_label_selector(param("labelSelector").unwrap_or_default()).and_then(|labels| {
            Ok((
                labels,
                parse_field_selector(kind, param("fieldSelector").unwrap_or_default())?,
            ))
        });
    let (labels, fields) = match selectors {
        Ok(s) => s,
        Err(message) => return status(StatusCode::BAD_REQUEST, "BadRequest", message),
    };
    let filter = Filter {
        kind,
        namespace,
        labels,
        fields,
    };
    if !matches!(param("watch"), Some("true" | "1")) {
        let store = shared.store.lock().unwrap();
        let list = json!({
            "kind": format!("{}List", kind.name()),
            "apiVersion": kind.api_version(),
            "metadata": {"resourceVersion": store.rv().to_string()},
            "items": store.list(&filter),
        });
        return json_response(StatusCode::OK, &list);
    }
    let since = match param("resourceVersion").unwrap_or_default() {
        "" | "0" => None,
        rv => match rv.parse::<u64>() {
            Ok(rv) => Some(rv),
            Err(_) => {
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    format!("invalid resourceVersion {rv:?}"),
                );
            }
        },
    };
    let timeout = param("timeoutSeconds")
        .and_then(|s| s.parse().ok())
        .map_or(DEFAULT_WATCH_TIMEOUT, Duration::from_secs);
    let bookmarks = param("allowWatchBookmarks") == Some("true");
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(run_watch(shared, filter, since, timeout, bookmarks, tx));
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(ReceiverStream::new(rx)))
        .expect("valid response")
}

type Chunk = Result<Bytes, Infallible>;

/// Streams one watch's events into `tx` until the client goes away, the
/// timeout passes or the server stops.
async fn run_watch(
    shared: Arc<Shared>,
    filter: Filter,
    since: Option<u64>,
    timeout: Duration,
    bookmarks: bool,
    tx: mpsc::Sender<Chunk>,
) {
    let mut changed = shared.changed.subscribe();
    let mut cursor = match since {
        Some(rv) => rv,
        None => {
            // From "any" version: the current state first, as additions.
            let (objects, rv) = {
                let store = shared.store.lock().unwrap();
                (store.list(&filter), store.rv())
            };
            for object in objects {
                if !send(&tx, &json!({"type": "ADDED", "object": object})).await {
                    return;
                }
            }
            rv
        }
    };
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut bookmark =
        tokio::time::interval_at(tokio::time::Instant::now() + BOOKMARK_EVERY, BOOKMARK_EVERY);
    bookmark.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        // Marked seen before reading, so a change made meanwhile wakes us.
        changed.borrow_and_update();
        let events = shared.store.lock().unwrap().events_after(cursor, &filter);
        let (events, rv) = match events {
            Ok(e) => e,
            Err(oldest) => {
                let message = format!("too old resource version: {cursor} ({oldest})");
                let gone = status_body(410, "Expired", &message);
                send(&tx, &json!({"type": "ERROR", "object": gone})).await;
                return;
            }
        };
        for event in &events {
            if !send(&tx, event).await {
                return;
            }
        }
        cursor = rv;
        tokio::select! {
            r = changed.changed() => {
                if r.is_err() {
                    return;
                }
            }
            _ = tx.closed() => return,
            _ = &mut deadline => return,
            _ = shared.shutdown.cancelled() => return,
            _ = bookmark.tick(), if bookmarks => {
                let object = json!({
                    "kind": filter.kind.name(),
                    "apiVersion": filter.kind.api_version(),
                    "metadata": {"resourceVersion": cursor.to_string()},
                });
                if !send(&tx, &json!({"type": "BOOKMARK", "object": object})).await {
                    return;
                }
            }
        }
    }
}

/// Sends one event as a JSON line; false once the client is gone.
async fn send(tx: &mpsc::Sender<Chunk>, event: &Value) -> bool {
    let mut line = serde_json::to_vec(event).expect("serializable event");
    line.push(b'\n');
    tx.send(Ok(Bytes::from(line))).await.is_ok()
}

/// The decoded query parameters of a request.
fn query_params(uri: &Uri) -> Vec<(String, String)> {
    let url = format!(
        "http://fake{}",
        uri.path_and_query().map_or("/", |pq| pq.as_str())
    );
    reqwest::Url::parse(&url)
        .map(|u| {
            u.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn version() -> Value {
    json!({
        "major": "1",
        "minor": "26",
        "gitVersion": "v1.26.0",
        "gitCommit": "b46a3f887ca979b1a5d14fd39cb1af43e7e5d12d",
        "gitTreeState": "clean",
        "buildDate": "2022-12-08T19:51:43Z",
        "goVersion": "go1.19.4",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn status_body(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
}

fn status(code: StatusCode, reason: &str, message: String) -> Response {
    json_response(code, &status_body(code.as_u16(), reason, &message))
}

fn json_response(code: StatusCode, body: &Value) -> Response {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("valid response")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let cases = [
            ("/api/v1/nodes", Some((Kind::Node, None))),
            ("/api/v1/pods", Some((Kind::Pod, None))),
            (
                "/api/v1/namespaces/a/pods",
                Some((Kind::Pod, Some("a".to_string()))),
            ),
            (
                "/api/v1/namespaces/b/endpoints",
                Some((Kind::Endpoints, Some("b".to_string()))),
            ),
            (
                "/apis/discovery.k8s.io/v1/endpointslices",
                Some((Kind::EndpointSlice, None)),
            ),
            (
                "/apis/networking.k8s.io/v1/namespaces/c/ingresses",
                Some((Kind::Ingress, Some("c".to_string()))),
            ),
            ("/api/v1/namespaces/a/nodes", None),
            ("/api/v1/ingresses", None),
            ("/apis/discovery.k8s.io/v1beta1/endpointslices", None),
            ("/api/v1/namespaces/a/pods/web-1", None),
            ("/api/v1/namespaces//pods", None),
        ];
        for (path, want) in cases {
            assert_eq!(route(path), want, "{path}");
        }
    }
}
