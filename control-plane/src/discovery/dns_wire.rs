//! The DNS wire format (RFC 1035) as far as `dns_sd_configs` needs it: a
//! query encoder and a response decoder for A, AAAA, SRV, MX and CNAME.
//!
//! Pure functions over byte slices, no IO, so hostile input is tested with
//! hand-made packets. Decoding checks every length against the message: a
//! malformed or truncated message, a compression pointer that does not point
//! strictly backwards (the only way a pointer loop can be excluded), or a name
//! longer than 255 bytes is a [`DnsError::Malformed`], never a panic.
//! Records of other types are kept as [`RecordData::Other`].

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use std::net::SocketAddr;

/// Errors of a DNS lookup.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("malformed dns message: {0}")]
    Malformed(&'static str),
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
    Rcode { server: SocketAddr, rcode: u8 },
    #[error("no nameserver in {path}: {reason}")]
    NoResolver { path: String, reason: String },
}

/// Size of the fixed message header.
pub const HEADER_LEN: usize = 12;
/// Largest name in wire form, length octets included (RFC 1035 2.3.4).
const MAX_NAME_LEN: usize = 255;
/// Largest label (RFC 1035 2.3.4).
const MAX_LABEL_LEN: usize = 63;
const CLASS_IN: u16 = 1;
const TYPE_OPT: u16 = 41;
const FLAG_QR: u16 = 0x8000;
const FLAG_TC: u16 = 0x0200;
const FLAG_RD: u16 = 0x0100;

/// Response codes the caller distinguishes.
pub const RCODE_NOERROR: u8 = 0;
pub const RCODE_NXDOMAIN: u8 = 3;

/// A record type, by its wire number.
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

/// The data of one answer record. Names are in presentation form with the
/// trailing dot (`host.example.`), as Prometheus's DNS library gives them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Srv { port: u16, target: String },
    Mx { preference: u16, host: String },
    Cname(String),
    Other(RecordType),
}

/// One answer record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub name: String,
    pub ttl: u32,
    pub data: RecordData,
}

/// A decoded response: the header fields that matter and the answer section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub id: u16,
    pub rcode: u8,
    pub truncated: bool,
    pub answers: Vec<Record>,
}

fn malformed(what: &'static str) -> DnsError {
    DnsError::Malformed(what)
}

/// Encodes a recursive (RD) query for `name` (with or without the trailing
/// dot); `edns_udp_size` adds an EDNS0 OPT record advertising that UDP size.
pub fn encode_query(
    id: u16,
    name: &str,
    qtype: RecordType,
    edns_udp_size: Option<u16>,
) -> Result<Vec<u8>, DnsError> {
    let mut out = Vec::with_capacity(HEADER_LEN + name.len() + 2 + 4 + 11);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&FLAG_RD.to_be_bytes());
    let arcount = u16::from(edns_udp_size.is_some());
    for count in [1, 0, 0, arcount] {
        out.extend_from_slice(&count.to_be_bytes());
    }
    encode_name(name, &mut out)?;
    out.extend_from_slice(&qtype.code().to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    if let Some(size) = edns_udp_size {
        // Root owner, type OPT, class = UDP payload size, TTL = flags, no data.
        out.push(0);
        out.extend_from_slice(&TYPE_OPT.to_be_bytes());
        out.extend_from_slice(&size.to_be_bytes());
        out.extend_from_slice(&[0; 6]);
    }
    Ok(out)
}

fn encode_name(name: &str, out: &mut Vec<u8>) -> Result<(), DnsError> {
    let invalid = |reason| DnsError::InvalidName {
        name: name.to_string(),
        reason,
    };
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    let start = out.len();
    if !trimmed.is_empty() {
        for label in trimmed.split('.') {
            if label.is_empty() {
                return Err(invalid("empty label"));
            }
            if label.len() > MAX_LABEL_LEN {
                return Err(invalid("label longer than 63 bytes"));
            }
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
    }
    out.push(0);
    if out.len() - start > MAX_NAME_LEN {
        return Err(invalid("name longer than 255 bytes"));
    }
    Ok(())
}

/// Returns whether `response` answers `query`: same id, one question, and
/// the same question bytes (ASCII case aside). Used to drop stray or spoofed
/// datagrams.
pub fn is_reply_to(query: &[u8], response: &[u8]) -> bool {
    let Some(qlen) = question_len(query) else {
        return false;
    };
    let end = HEADER_LEN + qlen;
    response.len() >= end
        && response[..2] == query[..2]
        && response[4..6] == [0, 1]
        && response[HEADER_LEN..end].eq_ignore_ascii_case(&query[HEADER_LEN..end])
}

/// Length of the first question of a message we encoded (uncompressed).
fn question_len(query: &[u8]) -> Option<usize> {
    let mut pos = HEADER_LEN;
    loop {
        let len = usize::from(*query.get(pos)?);
        pos += 1 + len;
        if len == 0 {
            break;
        }
    }
    (pos + 4 <= query.len()).then_some(pos + 4 - HEADER_LEN)
}

/// Decodes a response; the question section is skipped, the answer section
/// decoded, the authority and additional sections ignored.
pub fn decode_response(msg: &[u8]) -> Result<Response, DnsError> {
    if msg.len() < HEADER_LEN {
        return Err(malformed("message shorter than its header"));
    }
    let word = |i: usize| u16::from_be_bytes([msg[i], msg[i + 1]]);
    let flags = word(2);
    if flags & FLAG_QR == 0 {
        return Err(malformed("message is a query, not a response"));
    }
    let (qdcount, ancount) = (word(4), word(6));
    let mut pos = HEADER_LEN;
    for _ in 0..qdcount {
        let (_, end) = read_name(msg, pos)?;
        pos = end + 4;
        if pos > msg.len() {
            return Err(malformed("message ends inside a question"));
        }
    }
    // Every record takes at least 11 bytes; do not trust the count alone.
    let mut answers = Vec::with_capacity(usize::from(ancount).min(msg.len() / 11));
    for _ in 0..ancount {
        let (record, end) = read_record(msg, pos)?;
        answers.push(record);
        pos = end;
    }
    Ok(Response {
        id: word(0),
        rcode: (flags & 0x000f) as u8,
        truncated: flags & FLAG_TC != 0,
        answers,
    })
}

fn read_u16(msg: &[u8], pos: usize) -> Result<u16, DnsError> {
    msg.get(pos..pos + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or(malformed("message ends inside a record"))
}

fn read_record(msg: &[u8], pos: usize) -> Result<(Record, usize), DnsError> {
    let (name, pos) = read_name(msg, pos)?;
    let rtype = RecordType::from_code(read_u16(msg, pos)?);
    let class = read_u16(msg, pos + 2)?;
    let ttl = (u32::from(read_u16(msg, pos + 4)?) << 16) | u32::from(read_u16(msg, pos + 6)?);
    let rdlen = usize::from(read_u16(msg, pos + 8)?);
    let start = pos + 10;
    let end = start + rdlen;
    let rdata = msg
        .get(start..end)
        .ok_or(malformed("record data runs past the message"))?;
    // A name inside the data must end inside the data.
    let name_in_data = |at: usize| -> Result<String, DnsError> {
        let (n, name_end) = read_name(msg, at)?;
        if name_end != end {
            return Err(malformed("name in record data does not fill the data"));
        }
        Ok(n)
    };
    let data = match (rtype, class) {
        (_, c) if c != CLASS_IN => RecordData::Other(rtype),
        (RecordType::A, _) => RecordData::A(Ipv4Addr::from(
            <[u8; 4]>::try_from(rdata).map_err(|_| malformed("a record data is not 4 bytes"))?,
        )),
        (RecordType::Aaaa, _) => RecordData::Aaaa(Ipv6Addr::from(
            <[u8; 16]>::try_from(rdata)
                .map_err(|_| malformed("aaaa record data is not 16 bytes"))?,
        )),
        (RecordType::Srv, _) if rdlen > 6 => RecordData::Srv {
            port: read_u16(msg, start + 4)?,
            target: name_in_data(start + 6)?,
        },
        (RecordType::Mx, _) if rdlen > 2 => RecordData::Mx {
            preference: read_u16(msg, start)?,
            host: name_in_data(start + 2)?,
        },
        (RecordType::Cname, _) => RecordData::Cname(name_in_data(start)?),
        (RecordType::Srv | RecordType::Mx, _) => {
            return Err(malformed("srv or mx record data too short"))
        }
        (t, _) => RecordData::Other(t),
    };
    Ok((Record { name, ttl, data }, end))
}

/// Reads the (possibly compressed) name at `start`; returns it in
/// presentation form with a trailing dot and the offset just after the name
/// where it starts (after its first pointer, if any).
pub fn read_name(msg: &[u8], start: usize) -> Result<(String, usize), DnsError> {
    let mut name = String::new();
    let mut pos = start;
    // Every pointer must point before the segment that holds it, so each jump
    // moves strictly backwards and the walk ends.
    let mut segment_start = start;
    let mut end = None;
    let mut wire_len = 1;
    loop {
        let len = *msg
            .get(pos)
            .ok_or(malformed("message ends inside a name"))?;
        match len & 0xc0 {
            0x00 if len == 0 => break,
            0x00 => {
                let len = usize::from(len);
                let label = msg
                    .get(pos + 1..pos + 1 + len)
                    .ok_or(malformed("message ends inside a label"))?;
                wire_len += 1 + len;
                if wire_len > MAX_NAME_LEN {
                    return Err(malformed("name longer than 255 bytes"));
                }
                push_label(&mut name, label);
                pos += 1 + len;
            }
            0xc0 => {
                let low = *msg
                    .get(pos + 1)
                    .ok_or(malformed("message ends inside a pointer"))?;
                let target = (usize::from(len & 0x3f) << 8) | usize::from(low);
                if target >= segment_start || target < HEADER_LEN {
                    return Err(malformed("compression pointer does not point backwards"));
                }
                end.get_or_insert(pos + 2);
                segment_start = target;
                pos = target;
            }
            _ => return Err(malformed("reserved label type")),
        }
    }
    if name.is_empty() {
        name.push('.');
    }
    Ok((name, end.unwrap_or(pos + 1)))
}

/// Appends a label and its dot, escaping as DNS presentation form does.
fn push_label(name: &mut String, label: &[u8]) {
    for &b in label {
        match b {
            b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                name.push('\\');
                name.push(char::from(b));
            }
            0x21..=0x7e => name.push(char::from(b)),
            _ => {
                let _ = write!(name, "\\{b:03}");
            }
        }
    }
    name.push('.');
}

#[cfg(test)]
mod tests;
