//! The `wal` column family's records: the samples one write appended to
//! open chunks.
//!
//! Key: the record's sequence number (u64, big-endian, from 0 since the
//! database was created). Value: a version byte ([`VERSION`]), then per
//! sample the series id (LEB128), the timestamp as the zigzag LEB128
//! difference from the previous sample's (0 before the first) and the
//! value's bits (u64, little-endian). Scrape batches are one target's
//! samples at one timestamp, so most timestamps take one byte.

/// The record layout version.
pub const VERSION: u8 = 1;

/// Returns the key of record `seq`.
pub fn key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// Appends the record of `samples` to `out`.
pub fn encode(samples: &[super::Fresh], out: &mut Vec<u8>) {
    out.reserve(1 + samples.len() * 12);
    out.push(VERSION);
    let mut prev = 0i64;
    for &(id, t, v) in samples {
        put_uvarint(out, id);
        let d = t.wrapping_sub(prev);
        put_uvarint(out, ((d << 1) ^ (d >> 63)) as u64);
        out.extend_from_slice(&v.to_bits().to_le_bytes());
        prev = t;
    }
}

/// Returns the samples of a record; an item is `None` (and the last) when
/// the record is malformed.
pub fn decode(record: &[u8]) -> impl Iterator<Item = Option<super::Fresh>> + '_ {
    let mut rest = match record.split_first() {
        Some((&VERSION, rest)) => Some(rest),
        _ => None,
    };
    let mut bad = rest.is_none();
    let mut prev = 0i64;
    std::iter::from_fn(move || {
        if bad {
            bad = false;
            rest = None;
            return Some(None);
        }
        let b = rest.as_mut()?;
        if b.is_empty() {
            return None;
        }
        let sample = (|| {
            let id = take_uvarint(b)?;
            let z = take_uvarint(b)?;
            let d = ((z >> 1) as i64) ^ -((z & 1) as i64);
            let t = prev.wrapping_add(d);
            let (bits, tail) = b.split_first_chunk::<8>()?;
            *b = tail;
            Some((id, t, f64::from_bits(u64::from_le_bytes(*bits))))
        })();
        match sample {
            Some(s) => {
                prev = s.1;
                Some(Some(s))
            }
            None => {
                rest = None;
                Some(None)
            }
        }
    })
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take_uvarint(b: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            *b = &b[i + 1..];
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_bit_exactly() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let samples = vec![
            (1, 1_700_000_000_000, 1.5),
            (u64::MAX, i64::MIN, stale),
            (7, i64::MAX, -0.0),
            (300, -5, f64::NAN),
        ];
        let mut rec = Vec::new();
        encode(&samples, &mut rec);
        let back: Vec<_> = decode(&rec).collect::<Option<Vec<_>>>().unwrap();
        assert_eq!(back.len(), samples.len());
        for (a, b) in samples.iter().zip(&back) {
            assert_eq!((a.0, a.1, a.2.to_bits()), (b.0, b.1, b.2.to_bits()));
        }
    }

    #[test]
    fn malformed_records_end_with_none() {
        let mut rec = Vec::new();
        encode(&[(1, 10, 1.0), (2, 10, 2.0)], &mut rec);
        let cut: Vec<_> = decode(&rec[..rec.len() - 3]).collect();
        assert_eq!(cut.len(), 2);
        assert!(cut[0].is_some() && cut[1].is_none());
        assert_eq!(decode(&[9, 1, 2]).collect::<Vec<_>>(), vec![None]);
        assert_eq!(decode(&[]).collect::<Vec<_>>(), vec![None]);
        assert_eq!(decode(&[VERSION]).count(), 0);
    }
}
