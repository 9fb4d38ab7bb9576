//! The DNS messages `dns_sd_configs` sends and reads, over hickory-proto's
//! codec: a query for one name and type, and a response reduced to what
//! discovery uses (A, AAAA, SRV, MX and CNAME answers, the response code and
//! the TC bit). Pure functions over byte slices, no IO, so hostile input is
//! tested with hand-made packets: whatever does not decode is a
//! [`DnsError::Malformed`], never a panic.
//!
//! Names come out as Go's `miekg/dns` (which Prometheus uses) prints them,
//! from the raw labels: fully qualified with a trailing dot, the characters
//! `.\"();@$` escaped with a backslash and bytes outside printable ASCII as
//! `\DDD`, so `__meta_dns_srv_record_target` matches Prometheus's.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, RData};

/// Errors of a DNS lookup.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("malformed dns message: {0}")]
    Malformed(String),
    #[error("invalid dns name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("no answer from {server} after {attempts} attempts")]
    Timeout { server: SocketAddr, attempts: u32 },
    #[error("dns transport to {server}: {source}")]
    Io {
        server: SocketAddr,
        source: std::io::Error,
    },
    #[error("answer from {server} truncated even over tcp")]
    TruncatedOverTcp { server: SocketAddr },
    #[error("{server} answered with response code {rcode}")]
    Rcode { server: SocketAddr, rcode: u16 },
    #[error("no nameserver in {path}: {reason}")]
    NoResolver { path: String, reason: String },
}

/// Largest name in wire form, length octets included (RFC 1035 2.3.4).
const MAX_NAME_LEN: usize = 255;
/// Largest label (RFC 1035 2.3.4).
const MAX_LABEL_LEN: usize = 63;

pub const RCODE_NOERROR: u16 = 0;
pub const RCODE_NXDOMAIN: u16 = 3;

/// The record types discovery asks for or meets in answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordType {
    A,
    Aaaa,
    Srv,
    Mx,
    Cname,
    Other(u16),
}

impl RecordType {
    /// The type's code on the wire.
    pub fn code(self) -> u16 {
        match self {
            Self::A => 1,
            Self::Cname => 5,
            Self::Mx => 15,
            Self::Aaaa => 28,
            Self::Srv => 33,
            Self::Other(c) => c,
        }
    }

    fn from_code(code: u16) -> Self {
        match code {
            1 => Self::A,
            5 => Self::Cname,
            15 => Self::Mx,
            28 => Self::Aaaa,
            33 => Self::Srv,
            c => Self::Other(c),
        }
    }
}

/// The data of an answer record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Srv {
        port: u16,
        target: String,
    },
    Mx {
        preference: u16,
        host: String,
    },
    Cname(String),
    /// A type discovery does not use, or a class other than IN.
    Other(RecordType),
}

/// One answer record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The owner name, as Go prints it.
    pub name: String,
    pub ttl: u32,
    pub data: RecordData,
}

/// What discovery reads from a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub id: u16,
    /// The response code, extended by EDNS when the answer has an OPT record.
    pub rcode: u16,
    /// The TC bit: the answer did not fit and must be asked over TCP.
    pub truncated: bool,
    pub answers: Vec<Record>,
}

/// Encodes a recursive query for `name` (with or without its trailing dot)
/// and `qtype`, with an EDNS0 OPT record advertising `edns_udp_size` when
/// given.
pub fn encode_query(
    id: u16,
    name: &str,
    qtype: RecordType,
    edns_udp_size: Option<u16>,
) -> Result<Vec<u8>, DnsError> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(
        query_name(name)?,
        hickory_proto::rr::RecordType::from(qtype.code()),
    ));
    if let Some(size) = edns_udp_size {
        let mut edns = Edns::new();
        edns.set_max_payload(size).set_version(0);
        message.set_edns(edns);
    }
    message
        .to_vec()
        .map_err(|e| DnsError::Malformed(format!("encoding the query: {e}")))
}

/// Checks `name` as RFC 1035 limits it and returns it fully qualified; the
/// labels are taken as bytes, without escapes.
fn query_name(name: &str) -> Result<Name, DnsError> {
    let invalid = |reason| DnsError::InvalidName {
        name: name.to_string(),
        reason,
    };
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    let labels: Vec<&str> = if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('.').collect()
    };
    if labels.iter().any(|l| l.is_empty()) {
        return Err(invalid("empty label"));
    }
    if labels.iter().any(|l| l.len() > MAX_LABEL_LEN) {
        return Err(invalid("label longer than 63 bytes"));
    }
    if labels.iter().map(|l| l.len() + 1).sum::<usize>() + 1 > MAX_NAME_LEN {
        return Err(invalid("name longer than 255 bytes"));
    }
    let mut name = Name::from_labels(labels.iter().map(|l| l.as_bytes()))
        .map_err(|_| invalid("not a domain name"))?;
    name.set_fqdn(true);
    Ok(name)
}

/// Returns whether `response` answers `query`: the same id and the same
/// question (names compared without regard to case, as resolvers that
/// randomise it expect).
pub fn is_reply_to(query: &[u8], response: &[u8]) -> bool {
    match (Message::from_vec(query), Message::from_vec(response)) {
        (Ok(q), Ok(r)) => q.metadata.id == r.metadata.id && q.queries == r.queries,
        _ => false,
    }
}

/// Decodes a response.
pub fn decode_response(msg: &[u8]) -> Result<Response, DnsError> {
    let message = Message::from_vec(msg).map_err(|e| DnsError::Malformed(e.to_string()))?;
    if message.metadata.message_type != MessageType::Response {
        return Err(DnsError::Malformed(
            "message is a query, not a response".into(),
        ));
    }
    let answers = message
        .answers
        .iter()
        .map(|r| {
            let rtype = RecordType::from_code(u16::from(r.record_type()));
            let data = match &r.data {
                _ if r.dns_class != DNSClass::IN => RecordData::Other(rtype),
                RData::A(a) => RecordData::A(a.0),
                RData::AAAA(a) => RecordData::Aaaa(a.0),
                RData::SRV(srv) => RecordData::Srv {
                    port: srv.port,
                    target: go_name(&srv.target),
                },
                RData::MX(mx) => RecordData::Mx {
                    preference: mx.preference,
                    host: go_name(&mx.exchange),
                },
                RData::CNAME(c) => RecordData::Cname(go_name(&c.0)),
                _ => RecordData::Other(rtype),
            };
            Record {
                name: go_name(&r.name),
                ttl: r.ttl,
                data,
            }
        })
        .collect();
    Ok(Response {
        id: message.metadata.id,
        rcode: u16::from(message.metadata.response_code),
        truncated: message.metadata.truncation,
        answers,
    })
}

/// Returns `name` as Go's miekg/dns prints a name from the wire.
pub fn go_name(name: &Name) -> String {
    let mut out = String::new();
    for label in name.iter() {
        for &b in label {
            match b {
                b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                    out.push('\\');
                    out.push(char::from(b));
                }
                0x21..=0x7e => out.push(char::from(b)),
                _ => {
                    let _ = write!(out, "\\{b:03}");
                }
            }
        }
        out.push('.');
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests;
