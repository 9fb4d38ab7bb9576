//! The HTTP side of a scrape: GET with Prometheus's headers, timeout, gzip,
//! and a body size limit enforced while reading, so a hostile target cannot
//! make the scraper buffer more than the limit.

use std::time::Duration;

use bytes::BytesMut;

/// The Accept header Prometheus 2.42 sends when only the text format is enabled.
pub const ACCEPT_HEADER: &str = "text/plain;version=0.0.4;q=1,*/*;q=0.1";

/// Bodies are never buffered beyond this, even with no body_size_limit set.
pub const MAX_BODY_BYTES: u64 = 256 << 20;

/// A fetched exposition.
pub struct Fetched {
    pub body: BytesMut,
    pub content_type: Option<String>,
}

/// Shared HTTP client for all scrape loops (connection pooling per target host).
#[derive(Clone)]
pub struct TargetClient {
    client: reqwest::Client,
}

impl TargetClient {
    pub fn new() -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("scrapegrid/", env!("CARGO_PKG_VERSION")))
            .gzip(true)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .build()?;
        Ok(Self { client })
    }

    /// Fetches `url`; the error text is what the target's last error shows.
    pub async fn fetch(
        &self,
        url: &str,
        timeout: Duration,
        body_limit: u64,
    ) -> Result<Fetched, String> {
        let limit = if body_limit == 0 {
            MAX_BODY_BYTES
        } else {
            body_limit.min(MAX_BODY_BYTES)
        };
        let request = self
            .client
            .get(url)
            .header(http::header::ACCEPT, ACCEPT_HEADER)
            .header(
                "X-Prometheus-Scrape-Timeout-Seconds",
                format!("{}", timeout.as_secs_f64()),
            )
            .timeout(timeout);
        let fut = async {
            let mut response = request.send().await.map_err(describe)?;
            let status = response.status();
            if !status.is_success() {
                return Err(format!(
                    "server returned HTTP status {} {}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("")
                ));
            }
            let content_type = response
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let mut body = BytesMut::new();
            while let Some(chunk) = response.chunk().await.map_err(describe)? {
                if (body.len() + chunk.len()) as u64 > limit {
                    return Err("body size limit exceeded".into());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Fetched { body, content_type })
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(format!("context deadline exceeded (timeout {timeout:?})")),
        }
    }
}

/// Flattens a reqwest error and its sources into one readable line.
fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        return "context deadline exceeded".into();
    }
    let mut s = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}
