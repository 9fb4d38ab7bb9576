//! The Kubernetes API as discovery uses it: list then watch one kind of
//! object in one namespace (or all), as client-go's reflector does for
//! Prometheus's informers.
//!
//! [`watch_objects`] lists (500 objects a page, following `continue`),
//! hands the items over as a [`Change::Replace`], then watches from the
//! list's `resourceVersion` with bookmarks, handing each event over. A watch
//! that ends (the server's `timeoutSeconds`, a dropped connection) is
//! resumed from the last version seen; a `410 Gone` (the version is too
//! old) or any list failure starts again with a list, after a backoff that
//! doubles from 1 s to 30 s. Label and field selectors go with every list
//! and watch. Responses are JSON; a list body or one watch event larger than
//! [`MAX_BODY_BYTES`] is refused, so a hostile server cannot exhaust memory.
//! There is no periodic resync: Prometheus disables it too.

use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use scrapegrid_common::http_client_tls::{OAuth2Tokens, TlsClients};

use super::access::{ApiAuth, ApiEndpoint};
use super::store::Kind;
use crate::metrics;

/// Largest list body or single watch event accepted.
pub const MAX_BODY_BYTES: usize = 64 << 20;
/// Objects per list page.
const PAGE_SIZE: usize = 500;
/// Sent as `User-Agent`.
const USER_AGENT: &str = concat!("scrapegrid/", env!("CARGO_PKG_VERSION"));
const MIN_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What one watcher hands to the provider.
#[derive(Debug)]
pub enum Change {
    /// A fresh list: every object of `kind` in `namespace` (None: all).
    Replace {
        kind: Kind,
        namespace: Option<String>,
        items: Vec<Value>,
    },
    /// An object added or modified.
    Upsert { kind: Kind, object: Value },
    /// An object deleted.
    Delete { kind: Kind, object: Value },
}

/// One list-and-watch: a kind, a namespace and the selectors.
#[derive(Clone, Debug)]
pub struct Watch {
    pub kind: Kind,
    /// `None`: all namespaces (always for nodes).
    pub namespace: Option<String>,
    pub label_selector: String,
    pub field_selector: String,
}

impl Watch {
    /// The collection's path, e.g. `/api/v1/namespaces/a/pods`.
    pub fn path(&self) -> String {
        let (group, resource) = match self.kind {
            Kind::Node => ("/api/v1", "nodes"),
            Kind::Pod => ("/api/v1", "pods"),
            Kind::Service => ("/api/v1", "services"),
            Kind::Endpoints => ("/api/v1", "endpoints"),
            Kind::EndpointSlice => ("/apis/discovery.k8s.io/v1", "endpointslices"),
            Kind::Ingress => ("/apis/networking.k8s.io/v1", "ingresses"),
        };
        match (&self.namespace, self.kind) {
            (Some(ns), k) if k != Kind::Node => format!("{group}/namespaces/{ns}/{resource}"),
            _ => format!("{group}/{resource}"),
        }
    }

    fn selectors(&self) -> Vec<(&'static str, String)> {
        let mut query = Vec::new();
        if !self.label_selector.is_empty() {
            query.push(("labelSelector", self.label_selector.clone()));
        }
        if !self.field_selector.is_empty() {
            query.push(("fieldSelector", self.field_selector.clone()));
        }
        query
    }
}

/// Why a list or watch failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Request(String),
    #[error("server returned http status {status}: {message}")]
    Status { status: StatusCode, message: String },
    #[error("the resource version is too old (410 Gone)")]
    Gone,
    #[error("response larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("invalid json: {0}")]
    Json(#[from] serde_json::Error),
}

/// An HTTP client for one API server.
pub struct ApiClient {
    endpoint: ApiEndpoint,
    clients: TlsClients,
    tokens: OAuth2Tokens,
}

#[derive(Deserialize)]
struct List {
    #[serde(default)]
    metadata: ListMeta,
    #[serde(default)]
    items: Option<Vec<Value>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ListMeta {
    #[serde(default)]
    resource_version: String,
    #[serde(default, rename = "continue")]
    continue_token: String,
}

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    object: Value,
}

impl ApiClient {
    pub fn new(endpoint: ApiEndpoint) -> Self {
        Self {
            endpoint,
            clients: TlsClients::default(),
            tokens: OAuth2Tokens::default(),
        }
    }

    async fn request(
        &self,
        path: &str,
        timeout: Duration,
    ) -> Result<reqwest::RequestBuilder, ApiError> {
        let client = self
            .clients
            .client(
                &self.endpoint.tls,
                self.endpoint.follow_redirects,
                self.endpoint.enable_http2,
                self.endpoint.proxy_url.as_deref(),
                || {
                    reqwest::Client::builder()
                        .user_agent(USER_AGENT)
                        .no_proxy()
                        .connect_timeout(Duration::from_secs(10))
                },
            )
            .map_err(ApiError::Request)?;
        let url = format!("{}{path}", self.endpoint.base);
        let request = client
            .get(url)
            .header(ACCEPT, "application/json")
            .timeout(timeout);
        Ok(match &self.endpoint.auth {
            ApiAuth::Http(auth) => crate::discovery::with_auth(request, auth, &self.tokens)
                .await
                .map_err(ApiError::Request)?,
            ApiAuth::BearerFile(path) => {
                let token = std::fs::read_to_string(path)
                    .map_err(|e| ApiError::Request(format!("{}: {e}", path.display())))?;
                request.header(AUTHORIZATION, format!("Bearer {}", token.trim()))
            }
        })
    }

    /// Lists every object of `watch`; returns them and the list's version.
    pub async fn list(&self, watch: &Watch) -> Result<(Vec<Value>, String), ApiError> {
        let mut items = Vec::new();
        let mut token = String::new();
        loop {
            let mut query = watch.selectors();
            query.push(("limit", PAGE_SIZE.to_string()));
            if !token.is_empty() {
                query.push(("continue", token.clone()));
            }
            let request = self
                .request(&watch.path(), Duration::from_secs(60))
                .await?
                .query(&query);
            let mut response = send(request).await?;
            let body = crate::discovery::read_body(&mut response, MAX_BODY_BYTES)
                .await
                .map_err(request_error)?
                .ok_or(ApiError::TooLarge)?;
            let page: List = serde_json::from_slice(&body)?;
            items.extend(page.items.unwrap_or_default());
            if page.metadata.continue_token.is_empty() {
                return Ok((items, page.metadata.resource_version));
            }
            token = page.metadata.continue_token;
        }
    }

    /// Watches `watch` from `version`, handing each event to `tx`; returns
    /// the last version seen when the server ends the watch.
    pub async fn watch(
        &self,
        watch: &Watch,
        mut version: String,
        tx: &mpsc::Sender<Change>,
    ) -> Result<String, ApiError> {
        // client-go picks 5 to 10 minutes so that watches do not all end
        // together.
        let jitter = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() as u64);
        let seconds = 300 + jitter % 300;
        let mut query = watch.selectors();
        query.extend([
            ("watch", "true".to_string()),
            ("allowWatchBookmarks", "true".to_string()),
            ("resourceVersion", version.clone()),
            ("timeoutSeconds", seconds.to_string()),
        ]);
        let request = self
            .request(&watch.path(), Duration::from_secs(seconds + 30))
            .await?
            .query(&query);
        let mut response = send(request).await?;
        let mut buffer: Vec<u8> = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(request_error)? {
            buffer.extend_from_slice(&chunk);
            while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=end).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let event: Event = serde_json::from_slice(&line)?;
                if let Some(v) = event_version(&event.object) {
                    version = v;
                }
                let change = match event.kind.as_str() {
                    "ADDED" | "MODIFIED" => Change::Upsert {
                        kind: watch.kind,
                        object: event.object,
                    },
                    "DELETED" => Change::Delete {
                        kind: watch.kind,
                        object: event.object,
                    },
                    "BOOKMARK" => continue,
                    "ERROR" => return Err(status_error(&event.object)),
                    other => {
                        return Err(ApiError::Request(format!(
                            "unknown watch event type {other:?}"
                        )))
                    }
                };
                if tx.send(change).await.is_err() {
                    return Ok(version);
                }
            }
            if buffer.len() > MAX_BODY_BYTES {
                return Err(ApiError::TooLarge);
            }
        }
        Ok(version)
    }
}

/// Sends `request`; any status but 200 is an error (410 is [`ApiError::Gone`]).
async fn send(request: reqwest::RequestBuilder) -> Result<reqwest::Response, ApiError> {
    let response = request.send().await.map_err(request_error)?;
    let status = response.status();
    if status == StatusCode::OK {
        return Ok(response);
    }
    if status == StatusCode::GONE {
        return Err(ApiError::Gone);
    }
    let body = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| body.chars().take(200).collect());
    Err(ApiError::Status { status, message })
}

fn request_error(e: reqwest::Error) -> ApiError {
    ApiError::Request(crate::discovery::error_chain(&e))
}

/// An ERROR event's Status object as an error.
fn status_error(status: &Value) -> ApiError {
    let code = status.get("code").and_then(Value::as_u64).unwrap_or(0);
    if code == 410 {
        return ApiError::Gone;
    }
    let message = status
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("watch error")
        .to_string();
    ApiError::Status {
        status: StatusCode::from_u16(code as u16).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        message,
    }
}

fn event_version(object: &Value) -> Option<String> {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Lists then watches `watch` until `cancel` fires or `tx` closes, relisting
/// after a `410 Gone` or a failure.
pub async fn watch_objects(
    client: std::sync::Arc<ApiClient>,
    watch: Watch,
    tx: mpsc::Sender<Change>,
    cancel: CancellationToken,
) {
    let mut backoff = MIN_BACKOFF;
    'relist: loop {
        let listed = tokio::select! {
            _ = cancel.cancelled() => return,
            r = client.list(&watch) => r,
        };
        let mut version = match listed {
            Ok((items, version)) => {
                let change = Change::Replace {
                    kind: watch.kind,
                    namespace: watch.namespace.clone(),
                    items,
                };
                if tx.send(change).await.is_err() {
                    return;
                }
                version
            }
            Err(error) => {
                failed(&watch, &error);
                if !sleep(&cancel, &mut backoff).await {
                    return;
                }
                continue 'relist;
            }
        };
        loop {
            let watched = tokio::select! {
                _ = cancel.cancelled() => return,
                r = client.watch(&watch, version.clone(), &tx) => r,
            };
            if tx.is_closed() {
                return;
            }
            match watched {
                Ok(last) => {
                    version = last;
                    backoff = MIN_BACKOFF;
                }
                Err(ApiError::Gone) => {
                    tracing::debug!(path = %watch.path(), "kubernetes_sd: watch expired, listing again");
                    continue 'relist;
                }
                Err(error) => {
                    failed(&watch, &error);
                    if !sleep(&cancel, &mut backoff).await {
                        return;
                    }
                }
            }
        }
    }
}

fn failed(watch: &Watch, error: &ApiError) {
    ::metrics::counter!(metrics::SD_REFRESH_FAILURES, "mechanism" => "kubernetes").increment(1);
    tracing::warn!(path = %watch.path(), %error, "kubernetes_sd: list or watch failed, retrying");
}

/// Waits `backoff` (then doubles it up to the maximum); false if cancelled.
async fn sleep(cancel: &CancellationToken, backoff: &mut Duration) -> bool {
    let wait = *backoff;
    *backoff = (*backoff * 2).min(MAX_BACKOFF);
    tokio::select! {
        _ = cancel.cancelled() => false,
        _ = tokio::time::sleep(wait) => true,
    }
}
