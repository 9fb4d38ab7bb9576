//! The HTTP APIs the CLI calls: the control plane's (`/api/v1/targets`,
//! `/api/v1/scrapegrid/cluster`, `/-/reload`, `/api/v1/scrapegrid/drain`) and the storage node's
//! Prometheus API (`/api/v1/query`, `/api/v1/query_range`), with the read
//! token as a bearer token when one is given.

use scrapegrid_common::error_chain::error_chain;
use serde_json::Value;

/// Why a call failed, each with its exit code.
#[derive(Debug)]
pub enum Failure {
    /// The server could not be reached (exit 4).
    Unreachable(String),
    /// The server answered with an error (exit 1).
    Refused(String),
    /// The server knows no such thing (HTTP 404; exit 3).
    NotFound(String),
}

impl Failure {
    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::Unreachable(_) => 4,
            Failure::Refused(_) => 1,
            Failure::NotFound(_) => 3,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Unreachable(e) | Failure::Refused(e) | Failure::NotFound(e) => f.write_str(e),
        }
    }
}

pub struct Api {
    http: reqwest::Client,
    token: Option<String>,
}

impl Api {
    pub fn new(token: Option<String>) -> Self {
        Self {
            http: reqwest::Client::new(),
            token,
        }
    }

    fn authorized(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// GETs a Prometheus-style API (`{"status": ..., "data": ...}`) and
    /// returns `data`.
    pub async fn data(&self, url: &str, query: &[(&str, String)]) -> Result<Value, Failure> {
        let resp = self
            .authorized(self.http.get(url).query(query))
            .send()
            .await
            .map_err(|e| Failure::Unreachable(format!("GET {url}: {}", error_chain(&e))))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| Failure::Unreachable(format!("GET {url}: {}", error_chain(&e))))?;
        let body: Value = serde_json::from_str(&text)
            .map_err(|_| Failure::Refused(format!("GET {url}: HTTP {status}: {}", text.trim())))?;
        if body["status"] != "success" {
            let error = body["error"].as_str().unwrap_or(text.trim());
            return Err(Failure::Refused(format!(
                "GET {url}: HTTP {status}: {error}"
            )));
        }
        Ok(body["data"].clone())
    }

    /// POSTs to `url` with `query`, expecting 200; returns the body. A
    /// JSON error body gives its `error`.
    pub async fn post(&self, url: &str, query: &[(&str, String)]) -> Result<String, Failure> {
        let resp = self
            .authorized(self.http.post(url).query(query))
            .send()
            .await
            .map_err(|e| Failure::Unreachable(format!("POST {url}: {}", error_chain(&e))))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            let body = serde_json::from_str::<Value>(&text).ok();
            let error = body
                .as_ref()
                .and_then(|b| b["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| text.trim().to_string());
            let message = format!("POST {url}: HTTP {status}: {error}");
            // Only an API's "no such thing", not a route an older server lacks.
            let not_found = body.is_some_and(|b| b["errorType"] == "not_found");
            return Err(if not_found {
                Failure::NotFound(message)
            } else {
                Failure::Refused(message)
            });
        }
        Ok(text)
    }
}
