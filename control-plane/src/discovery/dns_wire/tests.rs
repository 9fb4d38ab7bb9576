//! Encoder and decoder tests with hand-made packets.

use super::*;

/// Builds a message: header, then `body` as given.
fn message(flags: u16, qd: u16, an: u16, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0x12, 0x34];
    for w in [flags, qd, an, 0, 0] {
        m.extend_from_slice(&w.to_be_bytes());
    }
    m.extend_from_slice(body);
    m
}

/// `len label ... 0`
fn name(labels: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in labels {
        out.push(l.len() as u8);
        out.extend_from_slice(l.as_bytes());
    }
    out.push(0);
    out
}

/// A resource record: owner bytes, type, class IN, ttl 60, data.
fn rr(owner: &[u8], rtype: u16, data: &[u8]) -> Vec<u8> {
    let mut out = owner.to_vec();
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&60u32.to_be_bytes());
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// A response to `_m._tcp.ex.` SRV with one record of each kind; names
/// after the question use compression pointers into it (offset 12).
fn full_response() -> Vec<u8> {
    let mut body = name(&["_m", "_tcp", "ex"]);
    body.extend_from_slice(&[0, 33, 0, 1]);
    // SRV prio 1 weight 2 port 9100, target "t1" + pointer to "ex." (offset 12 + 3 + 5).
    let mut srv = vec![0, 1, 0, 2, 0x23, 0x8c, 2, b't', b'1', 0xc0, 20];
    body.extend(rr(&[0xc0, 12], 33, &srv));
    srv.clear();
    // MX pref 10, host "mail.ex." with "ex." compressed.
    body.extend(rr(
        &[0xc0, 20],
        15,
        &[0, 10, 4, b'm', b'a', b'i', b'l', 0xc0, 20],
    ));
    body.extend(rr(&[0xc0, 20], 1, &[10, 0, 0, 1]));
    let v6: Ipv6Addr = "fd00::1".parse().unwrap();
    body.extend(rr(&[0xc0, 20], 28, &v6.octets()));
    body.extend(rr(&[0xc0, 20], 5, &[0xc0, 12]));
    body.extend(rr(&[0xc0, 20], 16, b"\x03txt"));
    message(0x8180, 1, 6, &body)
}

#[test]
fn encodes_a_query_with_and_without_edns() {
    let q = encode_query(0xabcd, "a.bc.", RecordType::Srv, None).unwrap();
    let mut want = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    want.extend_from_slice(&[1, b'a', 2, b'b', b'c', 0, 0, 33, 0, 1]);
    assert_eq!(q, want);
    assert_eq!(
        encode_query(0xabcd, "a.bc", RecordType::Srv, None).unwrap(),
        q
    );
    let e = encode_query(1, "a.bc", RecordType::Aaaa, Some(1232)).unwrap();
    assert_eq!(e[11], 1, "arcount");
    assert_eq!(
        &e[e.len() - 11..],
        &[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]
    );
    assert_eq!(encode_query(1, ".", RecordType::A, None).unwrap()[12], 0);
}

#[test]
fn rejects_invalid_names() {
    let long_label = "x".repeat(64);
    let long_name = ["abcdefghi"; 26].join(".");
    for bad in ["a..b", ".a", long_label.as_str(), long_name.as_str()] {
        let err = encode_query(1, bad, RecordType::A, None).unwrap_err();
        assert!(matches!(err, DnsError::InvalidName { .. }), "{bad}: {err}");
    }
    // 63-byte labels up to 255 bytes in all are fine.
    let ok = [&*"y".repeat(63); 3].join(".") + "." + &"z".repeat(61);
    encode_query(1, &ok, RecordType::A, None).unwrap();
}

#[test]
fn decodes_every_record_kind_with_compression() {
    let r = decode_response(&full_response()).unwrap();
    assert_eq!((r.id, r.rcode, r.truncated), (0x1234, 0, false));
    let data: Vec<_> = r.answers.iter().map(|a| a.data.clone()).collect();
    assert_eq!(
        data,
        vec![
            RecordData::Srv {
                port: 9100,
                target: "t1.ex.".into()
            },
            RecordData::Mx {
                preference: 10,
                host: "mail.ex.".into()
            },
            RecordData::A(Ipv4Addr::new(10, 0, 0, 1)),
            RecordData::Aaaa("fd00::1".parse().unwrap()),
            RecordData::Cname("_m._tcp.ex.".into()),
            RecordData::Other(RecordType::Other(16)),
        ]
    );
    assert_eq!(r.answers[0].name, "_m._tcp.ex.");
    assert_eq!(r.answers[1].name, "ex.");
    assert_eq!(r.answers[0].ttl, 60);
}

#[test]
fn reads_header_flags_and_special_names() {
    let m = message(0x8383, 0, 0, &[]);
    let r = decode_response(&m).unwrap();
    assert_eq!((r.rcode, r.truncated), (3, true));
    // The root, and a label holding a dot and a byte outside ASCII: printed
    // as Go prints them.
    let mut body = rr(&[0], 1, &[10, 0, 0, 1]);
    body.extend(rr(&[3, b'a', b'.', 0xff, 0], 1, &[10, 0, 0, 2]));
    let r = decode_response(&message(0x8180, 0, 2, &body)).unwrap();
    let names: Vec<&str> = r.answers.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, [".", "a\\.\\255."]);
}

#[test]
fn every_prefix_of_a_response_is_an_error() {
    let full = full_response();
    for len in 0..full.len() {
        assert!(decode_response(&full[..len]).is_err(), "prefix {len}");
    }
}

#[test]
fn corrupted_bytes_never_panic() {
    let full = full_response();
    for i in 0..full.len() {
        for v in [0x00, 0x01, 0x3f, 0x40, 0x80, 0xc0, 0xc1, 0xff] {
            let mut m = full.clone();
            m[i] = v;
            let _ = decode_response(&m);
        }
    }
}

#[test]
fn rejects_pointer_loops_and_forward_pointers() {
    let malformed = |body: &[u8]| {
        let m = message(0x8180, 1, 0, body);
        matches!(decode_response(&m), Err(DnsError::Malformed(_)))
    };
    // A pointer to itself.
    assert!(malformed(&[0xc0, 12, 0, 1, 0, 1]));
    // Two pointers at each other: 14 -> 16, 16 -> 12, whose name goes on
    // at 14.
    assert!(malformed(&[1, b'a', 0xc0, 16, 0xc0, 12, 0, 1, 0, 1]));
    // A pointer forwards, to a name after it.
    assert!(malformed(&[0xc0, 14, 1, b'a', 0, 0, 1, 0, 1]));
    // A pointer into the header.
    assert!(malformed(&[0xc0, 2, 0, 1, 0, 1]));
    // Reserved label types 0x40 and 0x80.
    for t in [0x41, 0x81] {
        assert!(malformed(&[t, b'a', 0, 0, 1, 0, 1]));
    }
}

#[test]
fn rejects_names_longer_than_255_bytes_even_through_pointers() {
    // Answers whose owners are a 63-byte label and a pointer to the
    // previous owner: the n-th owner spells n * 64 + 1 bytes.
    let owners = |n: usize| {
        let mut body = Vec::new();
        let mut prev: Option<usize> = None;
        for _ in 0..n {
            let at = 12 + body.len();
            let mut owner = vec![63];
            owner.extend_from_slice(&[b'x'; 63]);
            match prev {
                Some(p) => owner.extend_from_slice(&[0xc0 | (p >> 8) as u8, p as u8]),
                None => owner.push(0),
            }
            body.extend(rr(&owner, 1, &[10, 0, 0, 1]));
            prev = Some(at);
        }
        message(0x8180, 0, n as u16, &body)
    };
    let three = decode_response(&owners(3)).expect("three labels fit");
    assert_eq!(three.answers[2].name.len(), 3 * 64);
    assert!(
        matches!(decode_response(&owners(4)), Err(DnsError::Malformed(_))),
        "four do not"
    );
}

#[test]
fn rejects_record_data_of_the_wrong_size() {
    let q = {
        let mut q = name(&["ex"]);
        q.extend_from_slice(&[0, 1, 0, 1]);
        q
    };
    let cases: [(u16, &[u8]); 6] = [
        (1, &[10, 0, 0, 1, 9]),
        (28, &[0; 15]),
        (33, &[0, 1, 0, 2, 0, 80]),
        (33, &[0, 1, 0, 2, 0, 80, 0, 0]),
        (15, &[0, 10, 1, b'm', 0, 7]),
        (5, &[1, b'c']),
    ];
    for (rtype, data) in cases {
        let mut body = q.clone();
        body.extend(rr(&[0xc0, 12], rtype, data));
        let m = message(0x8180, 1, 1, &body);
        assert!(decode_response(&m).is_err(), "type {rtype} data {data:?}");
    }
    // Record data longer than the message.
    let mut body = q.clone();
    let mut bad = rr(&[0xc0, 12], 1, &[10, 0, 0, 1]);
    bad[11] = 200;
    body.extend(bad);
    assert!(decode_response(&message(0x8180, 1, 1, &body)).is_err());
    // Not a response.
    assert!(decode_response(&message(0x0100, 0, 0, &[])).is_err());
}

#[test]
fn answer_counts_beyond_the_message_are_errors_not_allocations() {
    let m = message(0x8180, 0, u16::MAX, &[]);
    assert!(decode_response(&m).is_err());
    let m = message(0x8180, u16::MAX, 0, &[]);
    assert!(decode_response(&m).is_err());
}

#[test]
fn matches_replies_to_their_query() {
    let q = encode_query(0x0102, "Svc.Ex", RecordType::A, Some(1232)).unwrap();
    let mut r = q.clone();
    r[2] |= 0x80;
    assert!(is_reply_to(&q, &r));
    // Case differences are fine (0x20 randomisation).
    r[13] = b's';
    assert!(is_reply_to(&q, &r));
    let mut other_id = r.clone();
    other_id[1] = 9;
    assert!(!is_reply_to(&q, &other_id));
    let mut other_type = r.clone();
    other_type[12 + 8 + 1] = 28;
    assert!(!is_reply_to(&q, &other_type));
    assert!(!is_reply_to(&q, &r[..15]));
}
