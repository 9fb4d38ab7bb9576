//! The HTTP side of a scrape: GET with Prometheus's headers, timeout, gzip,
//! and a body size limit enforced while reading, so a hostile target cannot
//! make the scraper buffer more than the limit.

use std::time::Duration;

use std::sync::Arc;

use bytes::BytesMut;
use scrapegrid_common::config::http_client::{HttpClientConfig, TlsConfig};
use scrapegrid_common::go_quote;

use scrapegrid_common::config::http_client::Auth;
use scrapegrid_common::http_client_tls::{
    as_rustls, authorization, go_tls_error, OAuth2Tokens, TlsClients,
};

/// Bodies are never buffered beyond this, even with no body_size_limit set.
pub const MAX_BODY_BYTES: u64 = 256 << 20;

/// A fetched exposition.
pub struct Fetched {
    pub body: BytesMut,
    pub content_type: Option<String>,
}

/// Shared HTTP clients for all scrape loops (connection pooling per target
/// host): one for jobs without a `tls_config`, one per distinct
/// `tls_config` ([`TlsClients`]).
#[derive(Clone)]
pub struct TargetClient {
    client: reqwest::Client,
    tls: Arc<TlsClients>,
    oauth2: Arc<OAuth2Tokens>,
}

/// Every scrape client's settings but TLS.
fn base_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("scrapegrid/", env!("CARGO_PKG_VERSION")))
        // Bodies are decompressed here, under the body limit and with Go's
        // error texts (`gunzip`).
        .gzip(false)
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90))
        // Only proxy_url proxies, as in Prometheus 2.42: never the
        // environment's HTTP_PROXY.
        .no_proxy()
}

impl TargetClient {
    pub fn new() -> Result<Self, reqwest::Error> {
        Ok(Self {
            client: base_builder().build()?,
            tls: Arc::default(),
            oauth2: Arc::default(),
        })
    }

    /// Fetches `url` with the job's HTTP client settings `http`; the error
    /// text is what the target's last error shows.
    pub async fn fetch(
        &self,
        url: &str,
        accept: &http::HeaderValue,
        timeout: Duration,
        body_limit: u64,
        http: &HttpClientConfig,
    ) -> Result<Fetched, String> {
        // Go's client refuses any scheme but http and https before dialing
        // (a `__scheme__` relabeled to empty leaves none).
        let scheme = url
            .split_once(':')
            .map(|(s, _)| s)
            .filter(|s| !s.contains('/'))
            .unwrap_or_default();
        // Go's URL parser lowercases the scheme.
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return Err(format!(
                "Get {}: unsupported protocol scheme {}",
                go_quote(url),
                go_quote(scheme)
            ));
        }
        let limit = if body_limit == 0 {
            MAX_BODY_BYTES
        } else {
            body_limit.min(MAX_BODY_BYTES)
        };
        let get = || format!("Get {}", go_quote(url));
        let own = http.tls != TlsConfig::default()
            || !http.follow_redirects
            || !http.enable_http2
            || http.proxy_url.is_some();
        let client = if !own {
            self.client.clone()
        } else {
            self.tls
                .client(
                    &http.tls,
                    http.follow_redirects,
                    http.enable_http2,
                    http.proxy_url.as_deref(),
                    base_builder,
                )
                .map_err(|e| format!("{}: {e}", get()))?
        };
        let mut request = client.get(url);
        let value = match &http.auth {
            Auth::OAuth2(o) => Some(self.oauth2.authorization(o, base_builder).await),
            other => authorization(other).transpose(),
        };
        if let Some(value) = value.transpose().map_err(|e| format!("{}: {e}", get()))? {
            request = request.header(http::header::AUTHORIZATION, value);
        }
        let request = request
            .header(http::header::ACCEPT, accept.clone())
            .header(http::header::ACCEPT_ENCODING, "gzip")
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
            // Prometheus takes nothing but 200 OK.
            if status != http::StatusCode::OK {
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
            let gzipped = response
                .headers()
                .get(http::header::CONTENT_ENCODING)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
            // The announced length, within the limit and a bound (a hostile
            // target can announce anything), saves regrowing the buffer.
            let announced = response.content_length().unwrap_or(0).min(limit);
            let mut body = BytesMut::with_capacity(
                usize::try_from(announced)
                    .map_or(GUNZIP_RESERVE_MAX, |n| n.min(GUNZIP_RESERVE_MAX)),
            );
            reading_body.store(true, std::sync::atomic::Ordering::Relaxed);
            while let Some(chunk) = response.chunk().await.map_err(|e| describe(url, e))? {
                // A body that reaches the limit fails, as in Prometheus
                // (it reads at most `limit` bytes, then checks `n >= limit`).
                // A compressed body is held to the limit too.
                if (body.len() + chunk.len()) as u64 >= limit {
                    return Err(BODY_SIZE_LIMIT_EXCEEDED.into());
                }
                body.extend_from_slice(&chunk);
            }
            let body = if gzipped { gunzip(&body, limit)? } else { body };
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

/// Prometheus's `errBodySizeLimit`.
const BODY_SIZE_LIMIT_EXCEEDED: &str = "body size limit exceeded";

/// Decompresses a gzip body (several members, as Go's reader), failing once
/// the output reaches `limit`, with the errors Go's `compress/gzip` gives.
fn gunzip(compressed: &[u8], limit: u64) -> Result<BytesMut, String> {
    use std::io::Read;
    // Go reads the 10-byte header first: a shorter body is an unexpected EOF.
    if compressed.len() < 10 {
        return Err("unexpected EOF".into());
    }
    if compressed[..2] != [0x1f, 0x8b] || compressed[2] != 8 {
        return Err("gzip: invalid header".into());
    }
    // As Prometheus: at most `limit` bytes are read (`io.LimitReader`), and
    // reaching it fails the scrape. Decompressed straight into the body, a
    // guess of its size reserved (texts compress about tenfold).
    let guess = compressed.len().saturating_mul(8).min(GUNZIP_RESERVE_MAX);
    let mut body = Vec::with_capacity(guess.min(usize::try_from(limit).unwrap_or(usize::MAX)));
    let decoder = flate2::bufread::MultiGzDecoder::new(compressed);
    match decoder.take(limit).read_to_end(&mut body) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err("unexpected EOF".into())
        }
        Err(e) if e.to_string().contains("checksum") || e.to_string().contains("crc") => {
            return Err("gzip: invalid checksum".into())
        }
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            return Err("gzip: invalid header".into())
        }
        Err(_) => return Err("flate: corrupt input".into()),
    }
    if body.len() as u64 >= limit {
        return Err(BODY_SIZE_LIMIT_EXCEEDED.into());
    }
    // No copy: the vector becomes the buffer.
    Ok(BytesMut::from(bytes::Bytes::from(body)))
}

/// The most a body's buffer reserves before its bytes arrive, whatever a
/// target claims its size is.
const GUNZIP_RESERVE_MAX: usize = 16 << 20;

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
        if let Some(text) = as_rustls(inner).and_then(go_tls_error) {
            return format!("{get}: {text}");
        }
        // rustls meeting a plain HTTP answer; Go recognises the answer.
        if inner.to_string().contains("InvalidContentType") {
            return format!("{get}: http: server gave HTTP response to HTTPS client");
        }
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
