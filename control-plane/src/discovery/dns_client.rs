//! A small stub resolver for `dns_sd_configs`: one query to one recursive
//! server, over UDP with a TCP retry when the answer is truncated.
//!
//! Why not hickory-resolver: Prometheus asks one server afresh on every
//! refresh and maps each response code itself (NXDOMAIN is an empty group,
//! SERVFAIL keeps the last one); hickory-resolver caches answers (its
//! `moka` cache is not optional), follows its own search, rotation and
//! retry rules, and folds NXDOMAIN into an error. The exchange here is about
//! a hundred lines over hickory-proto's codec ([`dns_wire`](super::dns_wire)).
//!
//! A query goes over a connected UDP socket (so only the server's datagrams
//! arrive) with a random id and an EDNS0 OPT record. Datagrams whose id or
//! question does not match the query, or that do not decode, are ignored and
//! the wait goes on; after [`DnsClient::timeout`] the query is sent again, up
//! to [`DnsClient::attempts`] times, and then the lookup fails. A response
//! with the TC bit is asked again over TCP. [`DnsClient::lookup`] maps the
//! response code as Prometheus does: NOERROR gives the answers, NXDOMAIN no
//! answers, anything else an error (the caller keeps what it had).

use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

use super::dns_wire::{
    decode_response, encode_query, is_reply_to, DnsError, Record, RecordType, Response,
    RCODE_NOERROR, RCODE_NXDOMAIN,
};

/// The system's resolver configuration.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";
/// UDP payload size advertised with EDNS0 (the DNS flag day 2020 value, which
/// avoids IP fragmentation).
pub const EDNS_UDP_SIZE: u16 = 1232;

/// A client for one DNS server.
#[derive(Clone, Debug)]
pub struct DnsClient {
    pub server: SocketAddr,
    /// Wait for one UDP attempt, and for the whole TCP exchange.
    pub timeout: Duration,
    /// UDP sends before giving up.
    pub attempts: u32,
    /// Whether UDP queries carry an EDNS0 OPT record.
    pub edns: bool,
}

impl DnsClient {
    /// Returns a client for `server` with a 2 s timeout and 3 attempts.
    pub fn new(server: SocketAddr) -> Self {
        Self {
            server,
            timeout: Duration::from_secs(2),
            attempts: 3,
            edns: true,
        }
    }

    /// Returns the answer records for `name`: the answers of a NOERROR
    /// response (possibly none), none for NXDOMAIN, an error otherwise.
    pub async fn lookup(&self, name: &str, qtype: RecordType) -> Result<Vec<Record>, DnsError> {
        let response = self.query(name, qtype).await?;
        match response.rcode {
            RCODE_NOERROR => Ok(response.answers),
            RCODE_NXDOMAIN => Ok(Vec::new()),
            rcode => Err(DnsError::Rcode {
                server: self.server,
                rcode,
            }),
        }
    }

    /// Sends one query and returns the server's response, whatever its code.
    pub async fn query(&self, name: &str, qtype: RecordType) -> Result<Response, DnsError> {
        let edns = self.edns.then_some(EDNS_UDP_SIZE);
        let query = encode_query(random_id(), name, qtype, edns)?;
        let response = self.exchange_udp(&query).await?;
        if !response.truncated {
            return Ok(response);
        }
        tracing::debug!(server = %self.server, name, "dns answer truncated, retrying over tcp");
        let response = tokio::time::timeout(self.timeout, self.exchange_tcp(&query))
            .await
            .map_err(|_| DnsError::Timeout {
                server: self.server,
                attempts: 1,
            })??;
        if response.truncated {
            return Err(DnsError::TruncatedOverTcp {
                server: self.server,
            });
        }
        Ok(response)
    }

    fn io(&self, source: std::io::Error) -> DnsError {
        DnsError::Io {
            server: self.server,
            source,
        }
    }

    async fn exchange_udp(&self, query: &[u8]) -> Result<Response, DnsError> {
        let local: IpAddr = match self.server {
            SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
            SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
        };
        let socket = UdpSocket::bind((local, 0)).await.map_err(|e| self.io(e))?;
        socket.connect(self.server).await.map_err(|e| self.io(e))?;
        let mut buf = vec![0u8; usize::from(u16::MAX)];
        let mut last_error = None;
        for _ in 0..self.attempts.max(1) {
            socket.send(query).await.map_err(|e| self.io(e))?;
            let deadline = Instant::now() + self.timeout;
            loop {
                let n = match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
                    Err(_) => break,
                    Ok(received) => received.map_err(|e| self.io(e))?,
                };
                let packet = &buf[..n];
                if !is_reply_to(query, packet) {
                    tracing::debug!(server = %self.server, "ignoring a datagram that does not answer the query");
                    continue;
                }
                match decode_response(packet) {
                    Ok(response) => return Ok(response),
                    Err(e) => last_error = Some(e),
                }
            }
        }
        Err(last_error.unwrap_or(DnsError::Timeout {
            server: self.server,
            attempts: self.attempts.max(1),
        }))
    }

    async fn exchange_tcp(&self, query: &[u8]) -> Result<Response, DnsError> {
        let mut stream = TcpStream::connect(self.server)
            .await
            .map_err(|e| self.io(e))?;
        let len =
            u16::try_from(query.len()).map_err(|_| DnsError::Malformed("query too long".into()))?;
        let mut framed = Vec::with_capacity(query.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(query);
        stream.write_all(&framed).await.map_err(|e| self.io(e))?;
        let len = stream.read_u16().await.map_err(|e| self.io(e))?;
        let mut buf = vec![0u8; usize::from(len)];
        stream.read_exact(&mut buf).await.map_err(|e| self.io(e))?;
        if !is_reply_to(query, &buf) {
            return Err(DnsError::Malformed(
                "tcp answer does not match the query".into(),
            ));
        }
        decode_response(&buf)
    }
}

/// Returns a random query id (std's per-process random hash keys, mixed with
/// a counter and the clock).
fn random_id() -> u16 {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.finish() as u16
}

/// Returns the first `nameserver` of `/etc/resolv.conf`, port 53.
pub async fn system_resolver() -> Result<SocketAddr, DnsError> {
    let no_resolver = |reason: String| DnsError::NoResolver {
        path: RESOLV_CONF.to_string(),
        reason,
    };
    let text = tokio::fs::read_to_string(RESOLV_CONF)
        .await
        .map_err(|e| no_resolver(e.to_string()))?;
    first_nameserver(&text).ok_or_else(|| no_resolver("no usable nameserver line".into()))
}

/// Returns the first parseable `nameserver` address of resolv.conf text; an
/// IPv6 zone (`%eth0`) is dropped.
pub fn first_nameserver(text: &str) -> Option<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next()? == "nameserver").then(|| words.next())?
        })
        .find_map(|addr| {
            let addr = addr.split('%').next()?;
            addr.parse::<IpAddr>()
                .ok()
                .map(|ip| SocketAddr::new(ip, 53))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_nameserver_skips_comments_and_bad_lines() {
        let conf = "# nameserver 1.1.1.1\nsearch x\nnameserver bogus\nnameserver fe80::1%eth0\nnameserver 9.9.9.9\n";
        assert_eq!(
            first_nameserver(conf),
            Some("[fe80::1]:53".parse().unwrap())
        );
        assert_eq!(
            first_nameserver("nameserver 10.0.0.2"),
            Some("10.0.0.2:53".parse().unwrap())
        );
        assert_eq!(first_nameserver("search x\n"), None);
    }

    #[test]
    fn ids_vary() {
        let ids: std::collections::HashSet<u16> = (0..64).map(|_| random_id()).collect();
        assert!(ids.len() > 32, "{ids:?}");
    }

    /// A UDP responder on loopback that first sends a datagram with the
    /// wrong id, then garbage, then the right answer: the client must skip
    /// the first two.
    #[tokio::test]
    async fn udp_ignores_stray_datagrams() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let (n, peer) = server.recv_from(&mut buf).await.unwrap();
            let mut reply = buf[..n].to_vec();
            reply[2] |= 0x80; // QR
            reply[7] = 1; // ANCOUNT
            reply[11] = 0; // no OPT record in the answer
            reply.truncate(n - 11);
            reply.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 1, 2, 3]);
            let mut wrong = reply.clone();
            wrong[0] ^= 0xff;
            server.send_to(&wrong, peer).await.unwrap();
            // The question matches but the answer is cut: does not decode.
            server
                .send_to(&reply[..reply.len() - 3], peer)
                .await
                .unwrap();
            server.send_to(&reply, peer).await.unwrap();
        });
        let client = DnsClient::new(addr);
        let records = client.lookup("x.test", RecordType::A).await.unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(
            records[0].data,
            super::super::dns_wire::RecordData::A(Ipv4Addr::new(10, 1, 2, 3))
        );
    }

    #[tokio::test]
    async fn silent_server_times_out_after_the_attempts() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut client = DnsClient::new(server.local_addr().unwrap());
        client.timeout = Duration::from_millis(50);
        client.attempts = 2;
        let started = std::time::Instant::now();
        let err = client.lookup("x.test", RecordType::A).await.unwrap_err();
        assert!(
            matches!(err, DnsError::Timeout { attempts: 2, .. }),
            "{err}"
        );
        assert!(started.elapsed() >= Duration::from_millis(100));
        // Both attempts reached the server.
        let mut buf = [0u8; 512];
        for _ in 0..2 {
            let (n, _) = server.try_recv_from(&mut buf).unwrap();
            assert!(n > 12);
        }
    }
}
