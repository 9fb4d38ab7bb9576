//! One remote-write 1.0 request: the protobuf `WriteRequest` ([`super::wire`]), snappy block
//! compressed, POSTed with Prometheus's headers, and what its answer means
//! for the queue (Prometheus 2.42's `storage/remote` client): 2xx sent; 5xx,
//! a transport error or a timeout retried; 429 retried only with
//! `retry_on_http_429`; any other status refused for good.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use scrapegrid_common::config::http_client::Auth;
use scrapegrid_common::config::RemoteWriteConfig;
use scrapegrid_common::error_chain::error_chain;
use scrapegrid_common::http_client_tls::{authorization, OAuth2Tokens, TlsClients};
use scrapegrid_common::xorshift::XorShift;
use tokio_util::sync::CancellationToken;

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("scrapegrid/", env!("CARGO_PKG_VERSION"));

/// Bytes of an error answer's body kept for the log (Prometheus keeps 256).
const ERROR_BODY_BYTES: usize = 256;

/// How a request ended.
#[derive(Debug)]
pub enum Outcome {
    Sent,
    /// Worth retrying after a backoff (at least `retry_after` when the
    /// server said so).
    Retry {
        error: String,
        retry_after: Option<Duration>,
    },
    /// Refused for good: the samples are dropped and counted as failed.
    Refused(String),
}

/// Sends requests to one endpoint.
pub struct Client {
    config: RemoteWriteConfig,
    tls: TlsClients,
    oauth2: Arc<OAuth2Tokens>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

thread_local! {
    /// Each thread's snappy encoder and output buffer, reused:
    /// `compress_vec` zeroes a fresh buffer of the worst-case size per
    /// request (a memset larger than the request).
    static SNAPPY: RefCell<(snap::raw::Encoder, Vec<u8>)> =
        RefCell::new((snap::raw::Encoder::new(), Vec::new()));
}

/// Compresses a request body (snappy's raw format, as remote write 1.0
/// sends it) into a buffer of its exact size.
fn compress(request: &[u8]) -> Result<Vec<u8>, snap::Error> {
    SNAPPY.with_borrow_mut(|(encoder, buf)| {
        let max = snap::raw::max_compress_len(request.len());
        if buf.len() < max {
            buf.resize(max, 0);
        }
        let n = encoder.compress(request, buf)?;
        Ok(buf[..n].to_vec())
    })
}

fn base_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .pool_max_idle_per_host(4)
        .tcp_nodelay(true)
        // As Prometheus 2.42: only `proxy_url`, never the environment's.
        .no_proxy()
}

impl Client {
    /// A client for `config`; fails on a header that cannot be sent.
    pub fn new(config: RemoteWriteConfig) -> Result<Self, String> {
        let mut headers = Vec::new();
        for (k, v) in &config.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| format!("remote_write header {k:?}: {e}"))?;
            let value =
                HeaderValue::from_str(v).map_err(|e| format!("remote_write header {k:?}: {e}"))?;
            headers.push((name, value));
        }
        Ok(Self {
            config,
            tls: TlsClients::default(),
            oauth2: Arc::new(OAuth2Tokens::default()),
            headers,
        })
    }

    /// Compresses and sends an encoded `WriteRequest`; returns the outcome
    /// and the compressed size.
    pub async fn send(&self, request: &[u8]) -> (Outcome, usize) {
        let body = match compress(request) {
            Ok(b) => b,
            Err(e) => return (Outcome::Refused(format!("snappy: {e}")), 0),
        };
        let len = body.len();
        (self.post(body).await, len)
    }

    async fn post(&self, body: Vec<u8>) -> Outcome {
        let http = &self.config.http_client;
        let client = match self.tls.client(
            &http.tls,
            http.follow_redirects,
            http.enable_http2,
            http.proxy_url.as_deref(),
            base_builder,
        ) {
            Ok(c) => c,
            // A TLS file may be back at the next try.
            Err(error) => {
                return Outcome::Retry {
                    error,
                    retry_after: None,
                }
            }
        };
        let auth = match &http.auth {
            Auth::OAuth2(o) => Some(self.oauth2.authorization(o, base_builder).await),
            other => authorization(other).transpose(),
        };
        let mut req = client
            .post(&self.config.url)
            .timeout(self.config.remote_timeout)
            .header(CONTENT_ENCODING, "snappy")
            .header(CONTENT_TYPE, "application/x-protobuf")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0");
        match auth.transpose() {
            Ok(Some(v)) => req = req.header(AUTHORIZATION, v),
            Ok(None) => {}
            Err(error) => {
                return Outcome::Retry {
                    error,
                    retry_after: None,
                }
            }
        }
        for (k, v) in &self.headers {
            req = req.header(k, v.clone());
        }
        let resp = match req.body(body).send().await {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Retry {
                    error: error_chain(&e),
                    retry_after: None,
                }
            }
        };
        let status = resp.status();
        if status.is_success() {
            return Outcome::Sent;
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = resp.bytes().await.unwrap_or_default();
        let text = String::from_utf8_lossy(&text[..text.len().min(ERROR_BODY_BYTES)]);
        let error = format!("server returned HTTP status {status}: {}", text.trim_end());
        if status.is_server_error()
            || (status == reqwest::StatusCode::TOO_MANY_REQUESTS
                && self.config.queue.retry_on_http_429)
        {
            Outcome::Retry { error, retry_after }
        } else {
            Outcome::Refused(error)
        }
    }
}

/// How [`Client::deliver`] ended.
#[derive(Debug)]
pub enum Delivery {
    /// Sent; the compressed size.
    Sent(usize),
    /// Refused for good.
    Refused(String),
    /// The node is stopping.
    Stopped,
    /// The caller gave up between two tries.
    Abandoned,
}

impl Client {
    /// Sends `request` until it is sent or refused for good, waiting
    /// between tries with a jittered backoff from `min_backoff` doubling to
    /// `max_backoff` (at least what a `Retry-After` asked for).
    /// `failed(error, backoff)` hears of each failed try before its wait,
    /// and gives up by returning false.
    pub async fn deliver(
        &self,
        request: &[u8],
        rng: &mut XorShift,
        stop: &CancellationToken,
        mut failed: impl FnMut(&str, Duration) -> bool,
    ) -> Delivery {
        let queue = &self.config.queue;
        let mut backoff = queue.min_backoff;
        loop {
            let (outcome, bytes) = tokio::select! {
                _ = stop.cancelled() => return Delivery::Stopped,
                r = self.send(request) => r,
            };
            let (error, retry_after) = match outcome {
                Outcome::Sent => return Delivery::Sent(bytes),
                Outcome::Refused(error) => return Delivery::Refused(error),
                Outcome::Retry { error, retry_after } => (error, retry_after),
            };
            if !failed(&error, backoff) {
                return Delivery::Abandoned;
            }
            let jitter = backoff.mul_f64(rng.unit() * 0.25);
            let wait = (backoff + jitter).max(retry_after.unwrap_or_default());
            tokio::select! {
                _ = stop.cancelled() => return Delivery::Stopped,
                _ = tokio::time::sleep(wait) => {}
            }
            backoff = (backoff * 2).min(queue.max_backoff);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::compress;

    /// The reused buffer gives each body its own bytes: a large request,
    /// then smaller ones, each decompresses to itself.
    #[test]
    fn compressed_bodies_round_trip_through_the_reused_buffer() {
        let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for request in [&big[..], b"short request", b"", &big[..1000]] {
            let body = compress(request).unwrap();
            let back = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
            assert_eq!(back, request);
        }
    }
}
