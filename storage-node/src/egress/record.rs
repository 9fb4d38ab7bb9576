//! The records of the `egress` column family: the samples one write stored.
//!
//! Key: the record's sequence number (u64, big-endian). Value: a version
//! byte ([`VERSION`]), the number of samples (LEB128), then per sample the
//! series id (LEB128), the timestamp as the zigzag LEB128 difference from
//! the previous sample's in the record (0 before the first), and the value's
//! 8 bytes little-endian, bit-exact (stale markers included).

use crate::keys::{put_uvarint, take_uvarint};

/// The record layout version.
pub const VERSION: u8 = 1;

/// Returns the key of record `seq`.
pub fn key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// Returns the sequence of a record's key.
pub fn seq_of(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
}

/// Builds one record; reused from write to write.
#[derive(Debug, Default)]
pub struct RecordWriter {
    body: Vec<u8>,
    samples: u32,
    prev_t: i64,
}

impl RecordWriter {
    /// Forgets what was pushed.
    pub fn clear(&mut self) {
        self.body.clear();
        self.samples = 0;
        self.prev_t = 0;
    }

    /// Appends a sample.
    pub fn push(&mut self, id: u64, t: i64, v: f64) {
        put_uvarint(&mut self.body, id);
        let d = t.wrapping_sub(self.prev_t);
        put_uvarint(&mut self.body, ((d << 1) ^ (d >> 63)) as u64);
        self.prev_t = t;
        self.body.extend_from_slice(&v.to_bits().to_le_bytes());
        self.samples += 1;
    }

    /// Returns the number of samples pushed.
    pub fn samples(&self) -> u32 {
        self.samples
    }

    /// Returns the record, leaving the writer empty.
    pub fn take(&mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 6);
        out.push(VERSION);
        put_uvarint(&mut out, u64::from(self.samples));
        out.extend_from_slice(&self.body);
        self.clear();
        out
    }
}

/// One sample of a record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Entry {
    pub id: u64,
    pub t: i64,
    pub v: f64,
}

/// Returns the number of samples a record announces; `None` when it is
/// malformed.
pub fn count(record: &[u8]) -> Option<u32> {
    let (&VERSION, mut rest) = record.split_first()? else {
        return None;
    };
    u32::try_from(take_uvarint(&mut rest)?).ok()
}

/// Returns the samples of a record; `None` when it is malformed.
pub fn decode(record: &[u8]) -> Option<Vec<Entry>> {
    let (&VERSION, mut b) = record.split_first()? else {
        return None;
    };
    let n = usize::try_from(take_uvarint(&mut b)?).ok()?;
    // Each sample takes at least 10 bytes: a hostile count cannot allocate.
    let mut out = Vec::with_capacity(n.min(b.len() / 10));
    let mut prev = 0i64;
    for _ in 0..n {
        let id = take_uvarint(&mut b)?;
        let z = take_uvarint(&mut b)?;
        let t = prev.wrapping_add(((z >> 1) as i64) ^ -((z & 1) as i64));
        prev = t;
        let (bits, rest) = b.split_first_chunk::<8>()?;
        b = rest;
        out.push(Entry {
            id,
            t,
            v: f64::from_bits(u64::from_le_bytes(*bits)),
        });
    }
    b.is_empty().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_bit_exact_and_rejects_damage() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let samples = [
            Entry {
                id: 1,
                t: 1_700_000_000_000,
                v: 1.5,
            },
            Entry {
                id: 300_000,
                t: 1_699_999_999_000,
                v: stale,
            },
            Entry {
                id: 2,
                t: i64::MIN,
                v: -0.0,
            },
            Entry {
                id: u64::MAX,
                t: i64::MAX,
                v: f64::INFINITY,
            },
        ];
        let mut w = RecordWriter::default();
        w.push(9, 9, 9.0);
        w.clear();
        for s in samples {
            w.push(s.id, s.t, s.v);
        }
        assert_eq!(w.samples(), 4);
        let record = w.take();
        assert_eq!(w.samples(), 0);
        assert_eq!(count(&record), Some(4));
        let back = decode(&record).unwrap();
        assert_eq!(back.len(), 4);
        for (a, b) in back.iter().zip(samples) {
            assert_eq!((a.id, a.t, a.v.to_bits()), (b.id, b.t, b.v.to_bits()));
        }
        for cut in 0..record.len() {
            assert_eq!(decode(&record[..cut]), None, "cut at {cut}");
        }
        let mut longer = record.clone();
        longer.push(0);
        assert_eq!(decode(&longer), None);
        let mut other_version = record;
        other_version[0] = 9;
        assert_eq!(decode(&other_version), None);
        assert_eq!(count(&other_version), None);
    }
}
