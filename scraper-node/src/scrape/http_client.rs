//! The HTTP side of a scrape: GET with Prometheus's headers, timeout, gzip,
//! and a body size limit enforced while reading, so a hostile target cannot
//! make the scraper buffer more than the limit.

use std::time::Duration;

use bytes::BytesMut;
use scrapegrid_common::go_quote;

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
        accept: &http::HeaderValue,
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
            .header(http::header::ACCEPT, accept.clone())
            .header(
                "X-Prometheus-Scrape-Timeout-Seconds",
                format!("{}", timeout.as_secs_f64()),
            )
            .timeout(timeout);
        // Go reports a deadline hit while reading the body without the request.
        let reading_body = std::sync::atomic::AtomicBool::new(false);
        let fut = async {
            let mut response = request.send().await.map_err(|e| describe(url, e))?;
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
            reading_body.store(true, std::sync::atomic::Ordering::Relaxed);
            while let Some(chunk) = response.chunk().await.map_err(|e| describe(url, e))? {
                if (body.len() + chunk.len()) as u64 > limit {
                    return Err("body size limit exceeded".into());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Fetched { body, content_type })
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) if reading_body.load(std::sync::atomic::Ordering::Relaxed) => {
                Err(DEADLINE_EXCEEDED.into())
            }
            Err(_) => Err(format!("Get {}: {DEADLINE_EXCEEDED}", go_quote(url))),
        }
    }
}

/// Go's `context.DeadlineExceeded`, which Prometheus shows for a timeout.
const DEADLINE_EXCEEDED: &str = "context deadline exceeded";

/// Describes a failed request as Go's HTTP client does (`Get "url": dial tcp
/// host:port: connect: connection refused`), so a target's last error reads
/// as in Prometheus; other errors keep reqwest's chain of causes.
fn describe(url: &str, e: reqwest::Error) -> String {
    let get = format!("Get {}", go_quote(url));
    if e.is_timeout() {
        return format!("{get}: {DEADLINE_EXCEEDED}");
    }
    let mut chain = Vec::new();
    let mut source = std::error::Error::source(&e);
    while let Some(inner) = source {
        if let Some(io) = inner.downcast_ref::<std::io::Error>() {
            if e.is_connect() && io.kind() == std::io::ErrorKind::ConnectionRefused {
                let addr = reqwest::Url::parse(url)
                    .ok()
                    .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
                    .unwrap_or_default();
                return format!("{get}: dial tcp {addr}: connect: connection refused");
            }
        }
        chain.push(inner.to_string());
        source = inner.source();
    }
    let mut s = format!("{get}: {e}");
    for c in chain {
        s.push_str(": ");
        s.push_str(&c);
    }
    s
}
