//! The `wal` column family's records: the samples one write appended to
//! open chunks.
//!
//! Key: the record's sequence number (u64, big-endian, from 0 since the
//! database was created). Value: a version byte ([`VERSION`]), then per
//! sample the series id (LEB128), the timestamp as the zigzag LEB128
//! difference from the previous sample's in the record (0 before the
//! first), and the value.
//!
//! A value is XORed with its series' **base** when it has one, else
//! written as is; of the 64 bits only the bytes between the leading and
//! trailing zero bytes are written, after a header byte: bit 7 set when
//! XORed, bit 3 set when the bits are all zero (nothing follows), else
//! bits 4-6 the leading and bits 0-2 the trailing zero bytes. A counter
//! that grew by a little, or a value that did not change, takes one to
//! four bytes instead of eight.
//!
//! The base of a series is the value of its previous sample in the WAL
//! since the last checkpoint, or before that the last value of its open
//! chunk in that checkpoint; none when neither exists. Staging and replay
//! both follow that rule ([`super::OpenChunks`]), so replay decodes what
//! staging encoded.

use crate::keys::{put_uvarint, take_uvarint};

/// The record layout version.
pub const VERSION: u8 = 2;

/// Returns the key of record `seq`.
pub fn key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

const XORED: u8 = 0x80;
const ZERO: u8 = 0x08;

/// Builds one record.
pub struct RecordWriter {
    buf: Vec<u8>,
    prev_t: i64,
}

impl RecordWriter {
    pub fn new() -> Self {
        Self {
            buf: vec![VERSION],
            prev_t: 0,
        }
    }

    /// Appends a sample whose series has `base` (the value bits the value
    /// is XORed with), if any.
    pub fn push(&mut self, id: u64, t: i64, v: f64, base: Option<u64>) {
        put_uvarint(&mut self.buf, id);
        let d = t.wrapping_sub(self.prev_t);
        put_uvarint(&mut self.buf, ((d << 1) ^ (d >> 63)) as u64);
        self.prev_t = t;
        let (flag, x) = match base {
            Some(b) => (XORED, v.to_bits() ^ b),
            None => (0, v.to_bits()),
        };
        if x == 0 {
            self.buf.push(flag | ZERO);
            return;
        }
        let lz = x.leading_zeros() / 8;
        let tz = x.trailing_zeros() / 8;
        self.buf.push(flag | (lz as u8) << 4 | tz as u8);
        let bytes = (x >> (tz * 8)).to_le_bytes();
        self.buf.extend_from_slice(&bytes[..(8 - lz - tz) as usize]);
    }

    /// Returns whether no sample was pushed.
    pub fn is_empty(&self) -> bool {
        self.buf.len() == 1
    }

    /// Returns the record.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

impl Default for RecordWriter {
    fn default() -> Self {
        Self::new()
    }
}

/// One sample of a record, its value still relative to its series' base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub id: u64,
    pub t: i64,
    /// XORed with the series' base.
    pub xored: bool,
    pub bits: u64,
}

impl Entry {
    /// Returns the value given the series' base; `None` when the value is
    /// XORed and the series has no base (a record that does not follow
    /// the checkpoint it is replayed after).
    pub fn value(&self, base: Option<u64>) -> Option<f64> {
        match (self.xored, base) {
            (false, _) => Some(f64::from_bits(self.bits)),
            (true, Some(b)) => Some(f64::from_bits(self.bits ^ b)),
            (true, None) => None,
        }
    }
}

/// Returns the samples of a record; an item is `None` (and the last) when
/// the record is malformed.
pub fn decode(record: &[u8]) -> impl Iterator<Item = Option<Entry>> + '_ {
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
        let entry = (|| {
            let id = take_uvarint(b)?;
            let z = take_uvarint(b)?;
            let d = ((z >> 1) as i64) ^ -((z & 1) as i64);
            let t = prev.wrapping_add(d);
            let (&h, tail) = b.split_first()?;
            *b = tail;
            let bits = if h & ZERO != 0 {
                0
            } else {
                let (lz, tz) = (u32::from(h >> 4 & 0x7), u32::from(h & 0x7));
                let n = 8usize.checked_sub((lz + tz) as usize).filter(|&n| n > 0)?;
                if b.len() < n {
                    return None;
                }
                let mut bytes = [0u8; 8];
                bytes[..n].copy_from_slice(&b[..n]);
                *b = &b[n..];
                u64::from_le_bytes(bytes) << (tz * 8)
            };
            Some(Entry {
                id,
                t,
                xored: h & XORED != 0,
                bits,
            })
        })();
        match entry {
            Some(e) => {
                prev = e.t;
                Some(Some(e))
            }
            None => {
                rest = None;
                Some(None)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes `samples` with each series' base as the rule says (its
    /// previous value in the record), decodes them back the same way.
    fn round_trip(samples: &[(u64, i64, f64)]) -> (Vec<u8>, Vec<(u64, i64, u64)>) {
        let mut bases = std::collections::HashMap::new();
        let mut w = RecordWriter::new();
        for &(id, t, v) in samples {
            w.push(id, t, v, bases.get(&id).copied());
            bases.insert(id, v.to_bits());
        }
        let rec = w.finish();
        let mut bases = std::collections::HashMap::new();
        let back = decode(&rec)
            .map(|e| {
                let e = e.unwrap();
                let v = e.value(bases.get(&e.id).copied()).unwrap();
                bases.insert(e.id, v.to_bits());
                (e.id, e.t, v.to_bits())
            })
            .collect();
        (rec, back)
    }

    #[test]
    fn records_round_trip_bit_exactly() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let samples = vec![
            (1, 1_700_000_000_000, 1.5),
            (u64::MAX, i64::MIN, stale),
            (7, i64::MAX, -0.0),
            (300, -5, f64::NAN),
            (1, 1_700_000_005_000, 1.5),
            (1, 1_700_000_010_000, 2.0),
            (7, 0, 0.0),
            (7, 1, f64::MIN_POSITIVE),
            (7, 2, f64::MAX),
            (300, 3, stale),
            (300, 4, 123_456_789.25),
            (0, 0, 0.0),
        ];
        let (_, back) = round_trip(&samples);
        let want: Vec<_> = samples
            .iter()
            .map(|&(i, t, v)| (i, t, v.to_bits()))
            .collect();
        assert_eq!(back, want);
    }

    #[test]
    fn unchanged_and_slowly_growing_values_are_short() {
        // 1000 series, 10 scrapes: counters growing by small integers.
        let mut samples = Vec::new();
        for k in 0..10 {
            for id in 0..1000u64 {
                let v = 1e6 + (id * 37 + k * (id % 5)) as f64;
                samples.push((id, 1_700_000_000_000 + k as i64 * 5_000, v));
            }
        }
        let (rec, back) = round_trip(&samples);
        assert_eq!(back.len(), samples.len());
        let per_sample = rec.len() as f64 / samples.len() as f64;
        assert!(per_sample < 6.0, "{per_sample} bytes per sample");
    }

    #[test]
    fn malformed_records_end_with_none() {
        let mut w = RecordWriter::new();
        w.push(1, 10, 1.0, None);
        w.push(2, 10, 2.5, None);
        let rec = w.finish();
        let cut: Vec<_> = decode(&rec[..rec.len() - 1]).collect();
        assert_eq!(cut.len(), 2);
        assert!(cut[0].is_some() && cut[1].is_none());
        assert_eq!(decode(&[9, 1, 2]).collect::<Vec<_>>(), vec![None]);
        assert_eq!(decode(&[]).collect::<Vec<_>>(), vec![None]);
        assert_eq!(decode(&[VERSION]).count(), 0);
        // A header claiming more zero bytes than a value has.
        assert_eq!(
            decode(&[VERSION, 1, 0, 0x44]).collect::<Vec<_>>(),
            vec![None]
        );
        // A XORed value without a base cannot be read.
        let mut w = RecordWriter::new();
        w.push(1, 10, 1.0, Some(0));
        let e = decode(&w.finish()).next().unwrap().unwrap();
        assert_eq!(e.value(None), None);
        assert_eq!(e.value(Some(0)), Some(1.0));
    }
}
