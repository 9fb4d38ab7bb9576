//! The records of the `egress` column family: the samples and exemplars one
//! write stored.
//!
//! Key: the record's sequence number (u64, big-endian). Value: a version
//! byte, the number of samples (LEB128), then per sample the series id
//! (LEB128), the timestamp as the zigzag LEB128 difference from the
//! previous sample's in the record (0 before the first), and the value's 8
//! bytes little-endian, bit-exact (stale markers included). Version 1 ends
//! there; version 2 (written when the write stored exemplars) goes on with
//! the number of exemplars, then per exemplar its series id, its timestamp
//! (zigzag LEB128), its value's 8 bytes, the number of its labels and each
//! label's name and value (LEB128 length, bytes). Version 3 (written when
//! the write stored native histograms and some endpoint sends them) has the
//! exemplar part (possibly 0 of them), then the number of histograms and
//! per histogram its series id (LEB128) and its remote-write `Histogram`
//! message, timestamp included (LEB128 length, bytes).
//!
//! A record's items are its samples, then its exemplars, then its
//! histograms: a queue's position counts them in that order, and
//! `max_samples_per_send` counts them all, as Prometheus counts exemplars
//! and histograms toward it.

use scrapegrid_common::Labels;

use crate::keys::{put_uvarint, take_uvarint};

/// The layout of a record without exemplars.
pub const VERSION: u8 = 1;
/// The layout of a record with exemplars.
pub const VERSION_EXEMPLARS: u8 = 2;
/// The layout of a record with native histograms.
pub const VERSION_HISTOGRAMS: u8 = 3;

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
    exemplars: Vec<u8>,
    exemplar_count: u32,
    histograms: Vec<u8>,
    histogram_count: u32,
}

fn put_zigzag(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn take_zigzag(b: &mut &[u8]) -> Option<i64> {
    let z = take_uvarint(b)?;
    Some(((z >> 1) as i64) ^ -((z & 1) as i64))
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_uvarint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn take_str(b: &mut &[u8]) -> Option<String> {
    let n = usize::try_from(take_uvarint(b)?).ok()?;
    let (s, rest) = b.split_at_checked(n)?;
    *b = rest;
    String::from_utf8(s.to_vec()).ok()
}

impl RecordWriter {
    /// Forgets what was pushed.
    pub fn clear(&mut self) {
        self.body.clear();
        self.samples = 0;
        self.prev_t = 0;
        self.exemplars.clear();
        self.exemplar_count = 0;
        self.histograms.clear();
        self.histogram_count = 0;
    }

    /// Appends a native histogram of series `id` (its message encoded,
    /// timestamp included).
    pub fn push_histogram(&mut self, id: u64, encoded: &[u8]) {
        put_uvarint(&mut self.histograms, id);
        put_uvarint(&mut self.histograms, encoded.len() as u64);
        self.histograms.extend_from_slice(encoded);
        self.histogram_count += 1;
    }

    /// Appends an exemplar of series `id`.
    pub fn push_exemplar(&mut self, id: u64, t: i64, v: f64, labels: &Labels) {
        put_uvarint(&mut self.exemplars, id);
        put_zigzag(&mut self.exemplars, t);
        self.exemplars.extend_from_slice(&v.to_bits().to_le_bytes());
        put_uvarint(&mut self.exemplars, labels.len() as u64);
        for l in labels.iter() {
            put_str(&mut self.exemplars, &l.name);
            put_str(&mut self.exemplars, &l.value);
        }
        self.exemplar_count += 1;
    }

    /// Returns the number of items (samples, exemplars, histograms) pushed.
    pub fn items(&self) -> u32 {
        self.samples + self.exemplar_count + self.histogram_count
    }

    /// Appends a sample.
    pub fn push(&mut self, id: u64, t: i64, v: f64) {
        put_uvarint(&mut self.body, id);
        put_zigzag(&mut self.body, t.wrapping_sub(self.prev_t));
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
        let mut out =
            Vec::with_capacity(self.body.len() + self.exemplars.len() + self.histograms.len() + 18);
        let version = if self.histogram_count > 0 {
            VERSION_HISTOGRAMS
        } else if self.exemplar_count > 0 {
            VERSION_EXEMPLARS
        } else {
            VERSION
        };
        out.push(version);
        put_uvarint(&mut out, u64::from(self.samples));
        out.extend_from_slice(&self.body);
        if version >= VERSION_EXEMPLARS {
            put_uvarint(&mut out, u64::from(self.exemplar_count));
            out.extend_from_slice(&self.exemplars);
        }
        if version == VERSION_HISTOGRAMS {
            put_uvarint(&mut out, u64::from(self.histogram_count));
            out.extend_from_slice(&self.histograms);
        }
        self.clear();
        out
    }
}

/// One item of a record: a sample, an exemplar with its labels, or a
/// native histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub id: u64,
    pub t: i64,
    pub v: f64,
    /// The labels of an exemplar; `None` for a sample.
    pub exemplar: Option<Box<Labels>>,
    /// The encoded `Histogram` message (timestamp included) of a native
    /// histogram; `None` otherwise.
    pub histogram: Option<Box<[u8]>>,
}

/// Returns the number of items (samples, exemplars, histograms) of a
/// record; `None` when it is malformed.
pub fn count(record: &[u8]) -> Option<u32> {
    let (&version, mut rest) = record.split_first()?;
    let samples = u32::try_from(take_uvarint(&mut rest)?).ok()?;
    match version {
        VERSION => Some(samples),
        // The exemplar count follows the samples: read past them.
        VERSION_EXEMPLARS => {
            let mut b = rest;
            for _ in 0..samples {
                take_uvarint(&mut b)?;
                take_uvarint(&mut b)?;
                b = b.get(8..)?;
            }
            samples.checked_add(u32::try_from(take_uvarint(&mut b)?).ok()?)
        }
        VERSION_HISTOGRAMS => u32::try_from(decode(record)?.len()).ok(),
        _ => None,
    }
}

/// Returns the items of a record, samples then exemplars; `None` when it
/// is malformed.
pub fn decode(record: &[u8]) -> Option<Vec<Entry>> {
    let (&version, mut b) = record.split_first()?;
    if !matches!(version, VERSION | VERSION_EXEMPLARS | VERSION_HISTOGRAMS) {
        return None;
    }
    let n = usize::try_from(take_uvarint(&mut b)?).ok()?;
    // Each sample takes at least 10 bytes: a hostile count cannot allocate.
    let mut out = Vec::with_capacity(n.min(b.len() / 10));
    let mut prev = 0i64;
    for _ in 0..n {
        let id = take_uvarint(&mut b)?;
        let t = prev.wrapping_add(take_zigzag(&mut b)?);
        prev = t;
        let (bits, rest) = b.split_first_chunk::<8>()?;
        b = rest;
        out.push(Entry {
            id,
            t,
            v: f64::from_bits(u64::from_le_bytes(*bits)),
            exemplar: None,
            histogram: None,
        });
    }
    if version >= VERSION_EXEMPLARS {
        let m = take_uvarint(&mut b)?;
        for _ in 0..m {
            let id = take_uvarint(&mut b)?;
            let t = take_zigzag(&mut b)?;
            let (bits, rest) = b.split_first_chunk::<8>()?;
            b = rest;
            let k = take_uvarint(&mut b)?;
            let mut pairs = Vec::new();
            for _ in 0..k {
                let name = take_str(&mut b)?;
                let value = take_str(&mut b)?;
                pairs.push((name, value));
            }
            out.push(Entry {
                id,
                t,
                v: f64::from_bits(u64::from_le_bytes(*bits)),
                exemplar: Some(Box::new(Labels::from_pairs(pairs))),
                histogram: None,
            });
        }
    }
    if version == VERSION_HISTOGRAMS {
        let m = take_uvarint(&mut b)?;
        for _ in 0..m {
            let id = take_uvarint(&mut b)?;
            let n = usize::try_from(take_uvarint(&mut b)?).ok()?;
            let (bytes, rest) = b.split_at_checked(n)?;
            b = rest;
            // The timestamp, for the queue's newest-sample bookkeeping.
            let h =
                <scrapegrid_proto::prometheus::Histogram as prost::Message>::decode(bytes).ok()?;
            out.push(Entry {
                id,
                t: h.timestamp,
                v: 0.0,
                exemplar: None,
                histogram: Some(bytes.into()),
            });
        }
    }
    b.is_empty().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_bit_exact_and_rejects_damage() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let sample = |id, t, v| Entry {
            id,
            t,
            v,
            exemplar: None,
            histogram: None,
        };
        let samples = [
            sample(1, 1_700_000_000_000, 1.5),
            sample(300_000, 1_699_999_999_000, stale),
            sample(2, i64::MIN, -0.0),
            sample(u64::MAX, i64::MAX, f64::INFINITY),
        ];
        let exemplar = Entry {
            id: 300_000,
            t: -7,
            v: 0.25,
            exemplar: Some(Box::new(Labels::from_pairs([
                ("span_id", "é"),
                ("trace_id", "ab"),
            ]))),
            histogram: None,
        };
        for with_exemplar in [false, true] {
            let mut w = RecordWriter::default();
            w.push(9, 9, 9.0);
            w.push_exemplar(9, 9, 9.0, &Labels::default());
            w.clear();
            for s in &samples {
                w.push(s.id, s.t, s.v);
            }
            let mut want = samples.to_vec();
            if with_exemplar {
                let e = exemplar.clone();
                w.push_exemplar(e.id, e.t, e.v, e.exemplar.as_deref().unwrap());
                want.push(e);
            }
            assert_eq!(w.samples(), 4);
            assert_eq!(w.items() as usize, want.len());
            let record = w.take();
            assert_eq!(w.samples(), 0);
            assert_eq!(
                record[0],
                if with_exemplar {
                    VERSION_EXEMPLARS
                } else {
                    VERSION
                }
            );
            assert_eq!(count(&record), Some(want.len() as u32));
            let back = decode(&record).unwrap();
            assert_eq!(back.len(), want.len());
            if with_exemplar {
                assert_eq!(back.last().unwrap().exemplar.as_ref().unwrap().len(), 2);
            }
            for (a, b) in back.iter().zip(&want) {
                assert_eq!((a.id, a.t, a.v.to_bits()), (b.id, b.t, b.v.to_bits()));
                assert_eq!(a.exemplar, b.exemplar);
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

    #[test]
    fn histograms_follow_samples_and_exemplars() {
        use prost::Message;
        let h = scrapegrid_proto::prometheus::Histogram {
            count: Some(scrapegrid_proto::prometheus::histogram::Count::CountInt(2)),
            sum: 0.5,
            timestamp: 1_700_000_000_123,
            ..Default::default()
        };
        let mut w = RecordWriter::default();
        w.push(1, 10, 1.0);
        w.push_histogram(7, &h.encode_to_vec());
        assert_eq!(w.items(), 2);
        let record = w.take();
        assert_eq!(record[0], VERSION_HISTOGRAMS);
        assert_eq!(count(&record), Some(2));
        let back = decode(&record).unwrap();
        assert_eq!(back[0].histogram, None);
        assert_eq!((back[1].id, back[1].t), (7, h.timestamp));
        let bytes = back[1].histogram.as_deref().unwrap();
        assert_eq!(
            scrapegrid_proto::prometheus::Histogram::decode(bytes).unwrap(),
            h
        );
        for cut in 0..record.len() {
            assert_eq!(decode(&record[..cut]), None, "cut at {cut}");
        }
    }
}
