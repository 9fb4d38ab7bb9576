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
            let mut body = CappedBody::new(usize::try_from(announced).unwrap_or(usize::MAX), limit);
            reading_body.store(true, std::sync::atomic::Ordering::Relaxed);
            // As in Go, a deadline hit while reading the body is reported
            // without the request (reqwest's own timeout ends the read).
            let read_failed = |e: reqwest::Error| match e.is_timeout() {
                true => DEADLINE_EXCEEDED.to_string(),
                false => describe(url, e),
            };
            while let Some(chunk) = response.chunk().await.map_err(read_failed)? {
                // A compressed body is held to the limit too.
                body.push(&chunk)?;
            }
            let body = match gzipped {
                true => gunzip(&body.into_vec(), limit)?,
                false => body.into_body(),
            };
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
    // As Prometheus: reaching `limit` bytes fails the scrape. Decompressed
    // into the body, a guess of its size reserved (texts compress about
    // tenfold).
    let mut body = CappedBody::new(compressed.len().saturating_mul(8), limit);
    let mut decoder = flate2::bufread::MultiGzDecoder::new(compressed);
    let mut chunk = vec![0u8; GUNZIP_CHUNK];
    loop {
        let n = match decoder.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
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
        };
        body.push(&chunk[..n])?;
    }
    Ok(body.into_body())
}

/// Bytes decompressed per read.
const GUNZIP_CHUNK: usize = 64 << 10;

/// A body held to its limit as it is read, in blocks that are never
/// reallocated (each twice the one before, up to [`BLOCK_MAX`]), joined
/// once at the end (without a copy when it fit in one). A buffer that grew
/// by doubling copied itself at each step and left the allocator holding
/// every size it passed through: a target sending up to the 256 MiB cap
/// cost the scraper about three times the cap.
struct CappedBody {
    blocks: Vec<Vec<u8>>,
    len: usize,
    limit: usize,
}

/// The first block's size when the length is not announced.
const BLOCK_MIN: usize = 64 << 10;
/// The largest block.
const BLOCK_MAX: usize = 8 << 20;

impl CappedBody {
    /// An empty body whose first block holds `expected` bytes, at most
    /// [`GUNZIP_RESERVE_MAX`] (a target can announce any length) and below
    /// `limit`.
    fn new(expected: usize, limit: u64) -> Self {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let first = match expected {
            0 => BLOCK_MIN,
            n => n.min(GUNZIP_RESERVE_MAX),
        };
        Self {
            blocks: vec![Vec::with_capacity(first.min(limit))],
            len: 0,
            limit,
        }
    }

    /// Appends `bytes`. A body that reaches the limit fails, as in
    /// Prometheus (it reads at most `limit` bytes, then checks `n >= limit`).
    fn push(&mut self, mut bytes: &[u8]) -> Result<(), String> {
        if self.len + bytes.len() >= self.limit {
            return Err(BODY_SIZE_LIMIT_EXCEEDED.into());
        }
        self.len += bytes.len();
        while !bytes.is_empty() {
            let last = self.blocks.last().expect("a body has a block");
            if last.len() == last.capacity() {
                let size = (last.capacity() * 2).clamp(BLOCK_MIN, BLOCK_MAX);
                let room = self.limit - (self.len - bytes.len());
                self.blocks.push(Vec::with_capacity(size.min(room)));
            }
            let last = self.blocks.last_mut().expect("a body has a block");
            let n = (last.capacity() - last.len()).min(bytes.len());
            last.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
        Ok(())
    }

    /// The bytes in one piece.
    fn into_vec(mut self) -> Vec<u8> {
        if self.blocks.len() == 1 {
            return self.blocks.pop().expect("a body has a block");
        }
        let mut out = Vec::with_capacity(self.len);
        for block in self.blocks.drain(..) {
            out.extend_from_slice(&block);
        }
        out
    }

    /// The body (without a copy when it fit in one block).
    fn into_body(self) -> BytesMut {
        BytesMut::from(bytes::Bytes::from(self.into_vec()))
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const MIB: usize = 1 << 20;

    /// A target that sends its headers, then a byte now and then, times
    /// out with Go's text for a deadline hit while reading the body
    /// (Prometheus: `context deadline exceeded`, without the request).
    #[tokio::test]
    async fn a_body_that_trickles_times_out_as_in_prometheus() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            while !request.ends_with(b"\r\n\r\n") {
                let mut byte = [0u8];
                if conn.read_exact(&mut byte).await.is_err() {
                    return;
                }
                request.push(byte[0]);
            }
            let head =
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n";
            conn.write_all(head).await.unwrap();
            for _ in 0..20 {
                if conn.write_all(b"#").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let client = TargetClient::new().unwrap();
        let accept = http::HeaderValue::from_static("text/plain");
        let url = format!("http://{addr}/metrics");
        let http = HttpClientConfig::default();
        let err = client
            .fetch(&url, &accept, Duration::from_millis(500), 0, &http)
            .await
            .err()
            .expect("the scrape times out");
        assert_eq!(err, DEADLINE_EXCEEDED);
        server.abort();
    }

    /// A body read up to just under its limit holds no more than it read
    /// (plus the last block's room): doubling took a 10 MiB body's buffer
    /// to 16 MiB, and left every smaller size with the allocator.
    #[test]
    fn bodies_hold_what_they_read_within_their_limit() {
        let limit = 10 * MIB as u64;
        let mut body = CappedBody::new(0, limit);
        let chunk = vec![b'x'; 60_000];
        while body.len + chunk.len() < limit as usize {
            body.push(&chunk).unwrap();
        }
        let held: usize = body.blocks.iter().map(Vec::capacity).sum();
        assert!(held <= limit as usize, "{held}");
        assert!(held - body.len <= BLOCK_MAX, "{held} for {}", body.len);
        assert!(body.blocks.iter().all(|b| b.capacity() <= BLOCK_MAX));
        assert_eq!(
            body.push(&chunk).unwrap_err(),
            BODY_SIZE_LIMIT_EXCEEDED,
            "reaching the limit fails"
        );
        let n = body.len;
        let joined = body.into_vec();
        assert_eq!(joined.len(), n);
        assert!(joined.iter().all(|&b| b == b'x'));

        // Nearly the limit, gzipped: decompressed within it.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&vec![b'a'; 10 * MIB - 1]).unwrap();
        let compressed = gz.finish().unwrap();
        let body = gunzip(&compressed, limit).unwrap();
        assert_eq!(body.len(), 10 * MIB - 1);
        assert!(body.iter().all(|&b| b == b'a'));
        // One byte more reaches it.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&vec![b'a'; 10 * MIB]).unwrap();
        let bomb = gz.finish().unwrap();
        assert_eq!(gunzip(&bomb, limit).unwrap_err(), BODY_SIZE_LIMIT_EXCEEDED);
        // A body announcing more than it sends reserves at most the cap; a
        // small one fits its first block and is not copied.
        let body = CappedBody::new(usize::MAX, limit);
        assert_eq!(
            body.blocks[0].capacity(),
            GUNZIP_RESERVE_MAX.min(limit as usize)
        );
        let mut small = CappedBody::new(5, limit);
        small.push(b"up 1\n").unwrap();
        let ptr = small.blocks[0].as_ptr();
        assert_eq!(small.into_body().as_ptr(), ptr);
    }
}
