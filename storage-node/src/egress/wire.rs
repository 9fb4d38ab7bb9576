//! The remote-write 1.0 `WriteRequest` encoded by hand: each series' labels
//! are encoded once (when the queue first sends the series, into its
//! [`LabelArena`]) and copied into every request after, so a request costs
//! a copy of bytes per series and a few bytes per sample, not a label set
//! of strings to clone and encode (which was most of the egress's CPU). The bytes are what prost writes for
//! `proto/prometheus/types.proto`, with both fields of every sample written
//! (prost leaves a zero value or timestamp out; receivers read either).

use std::sync::Arc;

/// Field 1 of `WriteRequest` (timeseries), field 1 of `TimeSeries`
/// (labels) and of `Label` (name): length-delimited.
const FIELD_1_BYTES: u8 = 0x0a;
/// Field 2, length-delimited: `TimeSeries.samples`, `Label.value`.
const FIELD_2_BYTES: u8 = 0x12;
/// `Sample.value`: field 1, fixed 64-bit.
const SAMPLE_VALUE: u8 = 0x09;
/// `Sample.timestamp`: field 2, varint.
const SAMPLE_TIMESTAMP: u8 = 0x10;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// The `labels` fields of a `TimeSeries` for `labels` (name, value pairs
/// in order).
pub fn encode_labels<'a>(labels: impl Iterator<Item = (&'a str, &'a str)>) -> Arc<[u8]> {
    let mut out = Vec::new();
    put_labels(&mut out, labels);
    out.into()
}

/// Where one series' encoded labels sit in a [`LabelArena`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    start: usize,
    len: u32,
}

/// The encoded labels of many series, one after another in one buffer: a
/// queue keeps the labels of the series it sends here, so that a request
/// copies them from memory laid out in series order (the order a scrape's
/// series are stored and sent in) instead of from one allocation each.
#[derive(Debug, Default)]
pub struct LabelArena {
    bytes: Vec<u8>,
}

impl LabelArena {
    /// Appends the encoding of `labels` (as [`encode_labels`]).
    pub fn push<'a>(&mut self, labels: impl Iterator<Item = (&'a str, &'a str)>) -> Span {
        let start = self.bytes.len();
        put_labels(&mut self.bytes, labels);
        Span {
            start,
            len: (self.bytes.len() - start) as u32,
        }
    }

    pub fn get(&self, s: Span) -> &[u8] {
        &self.bytes[s.start..s.start + s.len as usize]
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

fn put_labels<'a>(out: &mut Vec<u8>, labels: impl Iterator<Item = (&'a str, &'a str)>) {
    for (name, value) in labels {
        let len = 1
            + varint_len(name.len() as u64)
            + name.len()
            + 1
            + varint_len(value.len() as u64)
            + value.len();
        out.push(FIELD_1_BYTES);
        put_varint(out, len as u64);
        out.push(FIELD_1_BYTES);
        put_varint(out, name.len() as u64);
        out.extend_from_slice(name.as_bytes());
        out.push(FIELD_2_BYTES);
        put_varint(out, value.len() as u64);
        out.extend_from_slice(value.as_bytes());
    }
}

fn sample_len(t: i64) -> usize {
    1 + 8 + 1 + varint_len(t as u64)
}

/// `TimeSeries.exemplars`: field 3, length-delimited.
const FIELD_3_BYTES: u8 = 0x1a;
/// `Exemplar.value`: field 2, fixed 64-bit.
const EXEMPLAR_VALUE: u8 = 0x11;
/// `Exemplar.timestamp`: field 3, varint.
const EXEMPLAR_TIMESTAMP: u8 = 0x18;

/// `TimeSeries.histograms`: field 4, length-delimited.
const FIELD_4_BYTES: u8 = 0x22;

fn exemplar_len(labels: &[u8], t: i64) -> usize {
    labels.len() + 1 + 8 + 1 + varint_len(t as u64)
}

/// Writes a length-delimited field: its tag, length and body.
fn field_len(body: usize) -> usize {
    1 + varint_len(body as u64) + body
}

/// One request being built: series (where their encoded labels are in the
/// queue's [`LabelArena`]), samples (series index, timestamp, value) and
/// exemplars (series index, encoded labels, timestamp, value) in arrival
/// order.
#[derive(Debug, Default)]
pub struct RequestBuilder {
    series: Vec<Span>,
    samples: Vec<(u32, i64, f64)>,
    exemplars: Vec<(u32, Arc<[u8]>, i64, f64)>,
    /// Native histograms: series index and the encoded message.
    histograms: Vec<(u32, Box<[u8]>)>,
}

impl RequestBuilder {
    /// Adds the series whose labels are at `labels`; returns its index for
    /// [`Self::push`].
    pub fn add_series(&mut self, labels: Span) -> u32 {
        self.series.push(labels);
        (self.series.len() - 1) as u32
    }

    pub fn push(&mut self, series: u32, t: i64, v: f64) {
        self.samples.push((series, t, v));
    }

    /// Adds an exemplar of `series` with its labels encoded by
    /// [`encode_labels`].
    pub fn push_exemplar(&mut self, series: u32, labels: Arc<[u8]>, t: i64, v: f64) {
        self.exemplars.push((series, labels, t, v));
    }

    /// Adds a native histogram of `series`, its `Histogram` message encoded.
    pub fn push_histogram(&mut self, series: u32, encoded: Box<[u8]>) {
        self.histograms.push((series, encoded));
    }

    pub fn samples(&self) -> usize {
        self.samples.len()
    }

    pub fn histograms(&self) -> usize {
        self.histograms.len()
    }

    pub fn exemplars(&self) -> usize {
        self.exemplars.len()
    }

    /// The encoded `WriteRequest`: each series once (its labels from
    /// `arena`), with its samples, then its exemplars, then its histograms
    /// in the order they were pushed.
    pub fn encode(mut self, arena: &LabelArena) -> Vec<u8> {
        // Stable: a series' samples, exemplars and histograms keep their order.
        self.samples.sort_by_key(|s| s.0);
        self.exemplars.sort_by_key(|e| e.0);
        self.histograms.sort_by_key(|h| h.0);
        let mut out = Vec::with_capacity(
            self.series
                .iter()
                .map(|l| l.len as usize + 4)
                .sum::<usize>()
                + self.samples.len() * 16
                + self.exemplars.iter().map(|e| e.1.len() + 20).sum::<usize>()
                + self.histograms.iter().map(|h| h.1.len() + 6).sum::<usize>(),
        );
        let (mut samples, mut exemplars) = (&self.samples[..], &self.exemplars[..]);
        let mut histograms = &self.histograms[..];
        loop {
            let firsts = [
                samples.first().map(|s| s.0),
                exemplars.first().map(|e| e.0),
                histograms.first().map(|h| h.0),
            ];
            let Some(idx) = firsts.into_iter().flatten().min() else {
                break;
            };
            let n = samples.iter().take_while(|s| s.0 == idx).count();
            let (these, rest) = samples.split_at(n);
            samples = rest;
            let m = exemplars.iter().take_while(|e| e.0 == idx).count();
            let (these_ex, rest) = exemplars.split_at(m);
            exemplars = rest;
            let h = histograms.iter().take_while(|h| h.0 == idx).count();
            let (these_h, rest) = histograms.split_at(h);
            histograms = rest;
            let labels = arena.get(self.series[idx as usize]);
            let ts_len = labels.len()
                + these
                    .iter()
                    .map(|&(_, t, _)| field_len(sample_len(t)))
                    .sum::<usize>()
                + these_ex
                    .iter()
                    .map(|(_, l, t, _)| field_len(exemplar_len(l, *t)))
                    .sum::<usize>()
                + these_h
                    .iter()
                    .map(|(_, b)| field_len(b.len()))
                    .sum::<usize>();
            out.push(FIELD_1_BYTES);
            put_varint(&mut out, ts_len as u64);
            out.extend_from_slice(labels);
            for &(_, t, v) in these {
                out.push(FIELD_2_BYTES);
                put_varint(&mut out, sample_len(t) as u64);
                out.push(SAMPLE_VALUE);
                out.extend_from_slice(&v.to_bits().to_le_bytes());
                out.push(SAMPLE_TIMESTAMP);
                put_varint(&mut out, t as u64);
            }
            for (_, l, t, v) in these_ex {
                out.push(FIELD_3_BYTES);
                put_varint(&mut out, exemplar_len(l, *t) as u64);
                out.extend_from_slice(l);
                out.push(EXEMPLAR_VALUE);
                out.extend_from_slice(&v.to_bits().to_le_bytes());
                out.push(EXEMPLAR_TIMESTAMP);
                put_varint(&mut out, *t as u64);
            }
            for (_, b) in these_h {
                out.push(FIELD_4_BYTES);
                put_varint(&mut out, b.len() as u64);
                out.extend_from_slice(b);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use scrapegrid_proto::prometheus as prom;

    #[test]
    fn decodes_as_the_protobuf_it_stands_for() {
        let long = "v".repeat(300);
        let mut arena = LabelArena::default();
        let a = arena.push([("__name__", "up"), ("job", "a")].into_iter());
        let b = arena.push([("__name__", "x"), ("long", long.as_str())].into_iter());
        assert_eq!(
            arena.get(a),
            &*encode_labels([("__name__", "up"), ("job", "a")].into_iter())
        );
        let mut r = RequestBuilder::default();
        let (ia, ib) = (r.add_series(a), r.add_series(b));
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        r.push(ia, 1_700_000_000_000, 1.0);
        r.push(ib, -5, stale);
        r.push(ia, 1_700_000_015_000, 0.0);
        r.push(ib, 0, -2.5);
        assert_eq!(r.samples(), 4);
        let got = prom::WriteRequest::decode(r.encode(&arena).as_slice()).unwrap();
        let label = |n: &str, v: &str| prom::Label {
            name: n.into(),
            value: v.into(),
        };
        assert_eq!(got.timeseries.len(), 2);
        assert_eq!(
            got.timeseries[0].labels,
            vec![label("__name__", "up"), label("job", "a")]
        );
        let samples = |ts: &prom::TimeSeries| -> Vec<(i64, u64)> {
            ts.samples
                .iter()
                .map(|s| (s.timestamp, s.value.to_bits()))
                .collect()
        };
        assert_eq!(
            samples(&got.timeseries[0]),
            vec![(1_700_000_000_000, 1f64.to_bits()), (1_700_000_015_000, 0)]
        );
        assert_eq!(got.timeseries[1].labels[1].value, long);
        assert_eq!(
            samples(&got.timeseries[1]),
            vec![(-5, stale.to_bits()), (0, (-2.5f64).to_bits())]
        );
        // Exemplars join their series' TimeSeries, or make one of their own.
        let mut r = RequestBuilder::default();
        let (ia, ib) = (
            r.add_series(arena.push([("__name__", "a")].into_iter())),
            r.add_series(arena.push([("__name__", "b")].into_iter())),
        );
        let trace = encode_labels([("trace_id", "t1")].into_iter());
        r.push(ia, 1000, 1.0);
        r.push_exemplar(ia, trace.clone(), 990, 0.5);
        r.push_exemplar(ib, trace, -3, 7.0);
        assert_eq!((r.samples(), r.exemplars()), (1, 2));
        let got = prom::WriteRequest::decode(r.encode(&arena).as_slice()).unwrap();
        assert_eq!(got.timeseries.len(), 2);
        assert_eq!(samples(&got.timeseries[0]), vec![(1000, 1f64.to_bits())]);
        let ex = |ts: &prom::TimeSeries| -> Vec<(Vec<prom::Label>, f64, i64)> {
            ts.exemplars
                .iter()
                .map(|e| (e.labels.clone(), e.value, e.timestamp))
                .collect()
        };
        assert_eq!(
            ex(&got.timeseries[0]),
            vec![(vec![label("trace_id", "t1")], 0.5, 990)]
        );
        assert!(got.timeseries[1].samples.is_empty());
        assert_eq!(
            ex(&got.timeseries[1]),
            vec![(vec![label("trace_id", "t1")], 7.0, -3)]
        );

        // Histograms join their series' TimeSeries after its exemplars.
        let mut r = RequestBuilder::default();
        let ia = r.add_series(arena.push([("__name__", "h")].into_iter()));
        let h = |t: i64| prom::Histogram {
            count: Some(prom::histogram::Count::CountInt(3)),
            sum: 1.5,
            schema: 2,
            positive_spans: vec![prom::BucketSpan {
                offset: -1,
                length: 2,
            }],
            positive_deltas: vec![1, 1],
            timestamp: t,
            ..Default::default()
        };
        r.push(ia, 10, 2.0);
        r.push_histogram(ia, h(20).encode_to_vec().into());
        r.push_histogram(ia, h(30).encode_to_vec().into());
        assert_eq!(r.histograms(), 2);
        let got = prom::WriteRequest::decode(r.encode(&arena).as_slice()).unwrap();
        assert_eq!(got.timeseries.len(), 1);
        assert_eq!(samples(&got.timeseries[0]), vec![(10, 2f64.to_bits())]);
        assert_eq!(got.timeseries[0].histograms, vec![h(20), h(30)]);

        for v in [0u64, 1, 127, 128, 16_383, 16_384, u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(b.len(), varint_len(v), "{v}");
        }
    }
}
