//! The bucket layout a native histogram sample has when Prometheus 2.42
//! reads it back, worked out at read time.
//!
//! Prometheus stores a series' histograms in head chunks, and all samples
//! of a chunk share one bucket layout: when a sample brings buckets the
//! chunk lacks, every earlier sample of the chunk is re-coded with them
//! (empty), and a gauge histogram's sample takes the chunk's buckets too.
//! So a sample read back can carry empty buckets it was not written with,
//! which `histogram_quantile(0, ...)` sees (rank 0 falls in the first,
//! possibly empty, bucket). The storage node keeps each sample as written;
//! [`align`] replays 2.42's chunk cutting (`memSeries.appendPreprocessor`,
//! `HistogramAppender.Appendable`/`AppendableGauge`) over a window of the
//! series and gives each histogram its chunk's union of buckets.
//!
//! Chunks never cross a multiple of [`CHUNK_RANGE_MS`] (2.42's
//! `rangeForTimestamp`), so replaying from the last such multiple at or
//! before a read, up to the next one after it, finds the same chunks
//! ([`window`]).

use std::collections::{BTreeMap, BTreeSet};

use scrapegrid_common::histogram::{self, is_float};
use scrapegrid_proto::is_stale_marker;
use scrapegrid_proto::prometheus::{self as rw, histogram as rwh};

use super::{HistogramSample, Sample};

/// The head's chunk range: 2.42's default block duration, 2 h.
pub const CHUNK_RANGE_MS: i64 = 2 * 3600 * 1000;
/// 2.42's `samplesPerChunk`.
const SAMPLES_PER_CHUNK: usize = 120;

/// The range to replay for a read of `[mint, maxt]`: from the chunk range
/// boundary at or before `mint` to the last millisecond before the one
/// after `maxt`.
pub fn window(mint: i64, maxt: i64) -> (i64, i64) {
    (range_bounds(mint).0, range_bounds(maxt).1)
}

/// 2.42's `rangeForTimestamp`: the end of the chunk range holding `t`.
fn range_end(t: i64) -> i64 {
    (t / CHUNK_RANGE_MS)
        .saturating_mul(CHUNK_RANGE_MS)
        .saturating_add(CHUNK_RANGE_MS)
}

/// The first and last timestamps whose chunk range is `t`'s. Go's division
/// truncates toward zero: the range ending at one chunk range holds
/// `-w+1 ..= w-1`, and a negative range `k*w` (k <= 0) holds
/// `(k-2)*w+1 ..= (k-1)*w`.
fn range_bounds(t: i64) -> (i64, i64) {
    const W: i64 = CHUNK_RANGE_MS;
    let end = range_end(t);
    match end {
        W => (-W + 1, W - 1),
        e if e > W => (e - W, e - 1),
        e => (e.saturating_sub(2 * W) + 1, e - W),
    }
}

/// 2.42's `computeChunkEndTime`.
fn chunk_end(start: i64, cur: i64, max: i64) -> i64 {
    let n = (max - start) / ((cur - start + 1) * 4);
    if n <= 1 {
        max
    } else {
        start + (max - start) / n
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Float,
    Histogram,
    FloatHistogram,
}

/// Absolute bucket counts by index, per side.
#[derive(Default)]
struct Buckets {
    positive: BTreeMap<i32, f64>,
    negative: BTreeMap<i32, f64>,
}

fn side(
    spans: &[rw::BucketSpan],
    deltas: &[i64],
    counts: &[f64],
    float: bool,
) -> BTreeMap<i32, f64> {
    let mut out = BTreeMap::new();
    let (mut idx, mut k, mut abs) = (0i32, 0usize, 0i64);
    for (n, s) in spans.iter().enumerate() {
        idx = if n == 0 { s.offset } else { idx + s.offset };
        for _ in 0..s.length {
            let c = if float {
                counts.get(k).copied().unwrap_or(0.0)
            } else {
                abs = abs.wrapping_add(deltas.get(k).copied().unwrap_or(0));
                abs as f64
            };
            out.insert(idx, c);
            idx += 1;
            k += 1;
        }
    }
    out
}

impl Buckets {
    fn of(h: &rw::Histogram) -> Self {
        let float = is_float(h);
        Self {
            positive: side(
                &h.positive_spans,
                &h.positive_deltas,
                &h.positive_counts,
                float,
            ),
            negative: side(
                &h.negative_spans,
                &h.negative_deltas,
                &h.negative_counts,
                float,
            ),
        }
    }
}

/// What the appender remembers of the chunk's last sample.
struct Last {
    stale: bool,
    count: f64,
    zero: f64,
    schema: i32,
    zero_threshold: f64,
    buckets: Buckets,
}

fn zero_count(h: &rw::Histogram) -> f64 {
    match h.zero_count {
        Some(rwh::ZeroCount::ZeroCountInt(c)) => c as f64,
        Some(rwh::ZeroCount::ZeroCountFloat(c)) => c,
        None => 0.0,
    }
}

/// The head chunk being replayed.
struct Chunk {
    encoding: Encoding,
    gauge: bool,
    min_t: i64,
    max_t: i64,
    samples: usize,
    next_at: i64,
    /// The histograms (indexes into the caller's slice) in the chunk.
    members: Vec<usize>,
    union_positive: BTreeSet<i32>,
    union_negative: BTreeSet<i32>,
    last: Option<Last>,
}

impl Chunk {
    fn new(t: i64, encoding: Encoding) -> Self {
        Self {
            encoding,
            gauge: false,
            min_t: t,
            max_t: i64::MIN,
            samples: 0,
            next_at: range_end(t),
            members: Vec::new(),
            union_positive: BTreeSet::new(),
            union_negative: BTreeSet::new(),
            last: None,
        }
    }

    /// 2.42's `Appendable` for a counter histogram.
    fn appendable(&self, h: &rw::Histogram, b: &Buckets) -> bool {
        if self.samples > 0 && self.gauge {
            return false;
        }
        let Some(last) = &self.last else {
            return true;
        };
        if last.stale
            || scrapegrid_common::histogram::count(h) < last.count
            || h.schema != last.schema
            || h.zero_threshold != last.zero_threshold
            || zero_count(h) < last.zero
        {
            return false;
        }
        // No bucket of the chunk may be missing, none may have shrunk.
        let covers = |union: &BTreeSet<i32>, new: &BTreeMap<i32, f64>| {
            union.iter().all(|i| new.contains_key(i))
        };
        let grows = |old: &BTreeMap<i32, f64>, new: &BTreeMap<i32, f64>| {
            // A reset only where a count fell (NaN never compares).
            old.iter().all(|(i, c)| {
                new.get(i)
                    .is_none_or(|n| n.partial_cmp(c) != Some(std::cmp::Ordering::Less))
            })
        };
        covers(&self.union_positive, &b.positive)
            && covers(&self.union_negative, &b.negative)
            && grows(&last.buckets.positive, &b.positive)
            && grows(&last.buckets.negative, &b.negative)
    }

    /// 2.42's `AppendableGauge`.
    fn appendable_gauge(&self, h: &rw::Histogram) -> bool {
        if self.samples > 0 && !self.gauge {
            return false;
        }
        match &self.last {
            None => true,
            Some(last) => {
                !last.stale && h.schema == last.schema && h.zero_threshold == last.zero_threshold
            }
        }
    }
}

/// A finished chunk's histograms and its buckets.
type Union = (Vec<usize>, BTreeSet<i32>, BTreeSet<i32>);

fn finish(c: Chunk, unions: &mut Vec<Union>) {
    if !c.members.is_empty() {
        unions.push((c.members, c.union_positive, c.union_negative));
    }
}

/// Gives each histogram in `histograms` the buckets of the 2.42 head chunk
/// it would be in, replaying the series' `floats` (stale markers included)
/// and histograms in time order. Both must cover the same [`window`].
pub fn align(floats: &[Sample], histograms: &mut [HistogramSample]) {
    let mut chunk: Option<Chunk> = None;
    let mut unions: Vec<Union> = Vec::new();
    // The encoding of the series' last histogram, while its last value is
    // one: a stale marker then goes into the histogram chunk, as 2.42's
    // appender turns it into a stale histogram.
    let mut last_histogram: Option<Encoding> = None;
    let (mut fi, mut hi) = (0usize, 0usize);
    loop {
        let next_float = floats.get(fi).map(|s| s.t);
        let next_hist = histograms.get(hi).map(|s| s.t);
        let (t, float) = match (next_float, next_hist) {
            (Some(f), Some(h)) if f < h => (f, true),
            (Some(f), Some(h)) if f == h => {
                // The histogram wins a timestamp both have.
                fi += 1;
                (h, false)
            }
            (_, Some(h)) => (h, false),
            (Some(f), None) => (f, true),
            (None, None) => break,
        };
        // 2.42's `appendPreprocessor`: a new chunk on a change of
        // encoding, at the predicted end, or at twice the samples.
        let mut preprocess = |chunk: &mut Option<Chunk>, encoding: Encoding| -> bool {
            let mut created = false;
            let c = match chunk {
                Some(c) if c.encoding == encoding => c,
                _ => {
                    if let Some(old) = chunk.take() {
                        finish(old, &mut unions);
                    }
                    created = true;
                    chunk.insert(Chunk::new(t, encoding))
                }
            };
            if c.samples == SAMPLES_PER_CHUNK / 4 {
                c.next_at = chunk_end(c.min_t, c.max_t, c.next_at);
            }
            if t >= c.next_at || c.samples >= SAMPLES_PER_CHUNK * 2 {
                let old = chunk.take().expect("a chunk");
                finish(old, &mut unions);
                *chunk = Some(Chunk::new(t, encoding));
                created = true;
            }
            created
        };
        if float {
            let v = floats[fi].v;
            fi += 1;
            match last_histogram {
                Some(encoding) if is_stale_marker(v) => {
                    let created = preprocess(&mut chunk, encoding);
                    let c = chunk.as_mut().expect("a chunk");
                    // A stale histogram goes through the counter check:
                    // a gauge chunk refuses it.
                    if !created && c.samples > 0 && c.gauge {
                        let old = chunk.take().expect("a chunk");
                        finish(old, &mut unions);
                        chunk = Some(Chunk::new(t, encoding));
                    }
                    let c = chunk.as_mut().expect("a chunk");
                    c.samples += 1;
                    c.max_t = t;
                    if let Some(last) = &mut c.last {
                        last.stale = true;
                    } else {
                        c.last = Some(Last {
                            stale: true,
                            count: 0.0,
                            zero: 0.0,
                            schema: 0,
                            zero_threshold: 0.0,
                            buckets: Buckets::default(),
                        });
                    }
                }
                _ => {
                    preprocess(&mut chunk, Encoding::Float);
                    let c = chunk.as_mut().expect("a chunk");
                    c.samples += 1;
                    c.max_t = t;
                    last_histogram = None;
                }
            }
            continue;
        }
        let i = hi;
        hi += 1;
        let h = &histograms[i].h;
        let encoding = if is_float(h) {
            Encoding::FloatHistogram
        } else {
            Encoding::Histogram
        };
        let buckets = Buckets::of(h);
        let hint = rwh::ResetHint::try_from(h.reset_hint).unwrap_or(rwh::ResetHint::Unknown);
        let gauge = hint == rwh::ResetHint::Gauge;
        let mut created = preprocess(&mut chunk, encoding);
        if !created {
            let c = chunk.as_ref().expect("a chunk");
            let ok = match hint {
                rwh::ResetHint::Gauge => c.appendable_gauge(h),
                rwh::ResetHint::Yes => false,
                _ => c.appendable(h, &buckets),
            };
            if !ok {
                let old = chunk.take().expect("a chunk");
                finish(old, &mut unions);
                chunk = Some(Chunk::new(t, encoding));
                created = true;
            }
        }
        let c = chunk.as_mut().expect("a chunk");
        if created {
            c.gauge = gauge;
        }
        c.union_positive.extend(buckets.positive.keys());
        c.union_negative.extend(buckets.negative.keys());
        c.members.push(i);
        c.samples += 1;
        c.max_t = t;
        c.last = Some(Last {
            stale: false,
            count: scrapegrid_common::histogram::count(h),
            zero: zero_count(h),
            schema: h.schema,
            zero_threshold: h.zero_threshold,
            buckets,
        });
        last_histogram = Some(encoding);
    }
    if let Some(c) = chunk {
        finish(c, &mut unions);
    }
    for (members, pos, neg) in unions {
        for i in members {
            widen(&mut histograms[i].h, &pos, &neg);
        }
    }
}

/// Rewrites `h` with every bucket of `pos`/`neg` (absent ones empty).
fn widen(h: &mut rw::Histogram, pos: &BTreeSet<i32>, neg: &BTreeSet<i32>) {
    let float = is_float(h);
    let b = Buckets::of(h);
    if b.positive.len() == pos.len() && b.negative.len() == neg.len() {
        return;
    }
    let rebuild = |have: &BTreeMap<i32, f64>, all: &BTreeSet<i32>| {
        histogram::spans_of(
            all.iter()
                .map(|&i| (i, have.get(&i).copied().unwrap_or(0.0))),
        )
    };
    let deltas = |counts: &[f64]| histogram::deltas_of(counts.iter().map(|&c| c as i64));
    let (ps, pc) = rebuild(&b.positive, pos);
    let (ns, nc) = rebuild(&b.negative, neg);
    h.positive_spans = ps;
    h.negative_spans = ns;
    if float {
        h.positive_counts = pc;
        h.negative_counts = nc;
    } else {
        h.positive_deltas = deltas(&pc);
        h.negative_deltas = deltas(&nc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(t: i64, count: u64, buckets: &[(i32, i64)]) -> HistogramSample {
        let (spans, counts) = histogram::spans_of(buckets.iter().copied());
        let deltas = histogram::deltas_of(counts);
        HistogramSample {
            t,
            h: rw::Histogram {
                count: Some(rwh::Count::CountInt(count)),
                zero_count: Some(rwh::ZeroCount::ZeroCountInt(0)),
                positive_spans: spans,
                positive_deltas: deltas,
                timestamp: t,
                ..Default::default()
            },
        }
    }

    fn indexes(h: &rw::Histogram) -> Vec<i32> {
        Buckets::of(h).positive.keys().copied().collect()
    }

    #[test]
    fn samples_of_a_chunk_share_its_buckets() {
        let mut hs = vec![
            int(1_000, 1, &[(2, 1)]),
            int(2_000, 3, &[(0, 1), (2, 2)]),
            int(3_000, 4, &[(0, 1), (2, 2), (5, 1)]),
        ];
        align(&[], &mut hs);
        for h in &hs {
            assert_eq!(indexes(&h.h), vec![0, 2, 5]);
        }
        // The counts are kept.
        assert_eq!(Buckets::of(&hs[0].h).positive[&2], 1.0);
        assert_eq!(Buckets::of(&hs[0].h).positive[&0], 0.0);
    }

    #[test]
    fn resets_missing_buckets_staleness_and_floats_cut_chunks() {
        let mut hs = vec![
            int(1_000, 2, &[(1, 2)]),
            // A bucket shrank: a counter reset, a new chunk.
            int(2_000, 3, &[(0, 2), (1, 1)]),
            // Bucket 0 went missing: a new chunk.
            int(4_000, 4, &[(1, 1), (3, 3)]),
            int(6_000, 5, &[(1, 1), (3, 3), (4, 1)]),
        ];
        let stale = f64::from_bits(scrapegrid_proto::STALE_NAN_BITS);
        // A stale marker between the last two: they are in two chunks.
        let floats = [Sample { t: 5_000, v: stale }];
        align(&floats, &mut hs);
        assert_eq!(indexes(&hs[0].h), vec![1]);
        assert_eq!(indexes(&hs[1].h), vec![0, 1]);
        assert_eq!(indexes(&hs[2].h), vec![1, 3]);
        assert_eq!(indexes(&hs[3].h), vec![1, 3, 4]);
        // Without the stale marker the last two share a chunk.
        let mut hs2 = hs[2..].to_vec();
        hs2[0] = int(4_000, 4, &[(1, 1), (3, 3)]);
        align(&[], &mut hs2);
        assert_eq!(indexes(&hs2[0].h), vec![1, 3, 4]);
    }

    #[test]
    fn chunks_end_at_the_chunk_range_and_at_the_predicted_end() {
        // Two samples across a 2 h boundary are in two chunks.
        let b = CHUNK_RANGE_MS * 100;
        let mut hs = vec![int(b - 1, 1, &[(0, 1)]), int(b, 2, &[(0, 1), (1, 1)])];
        align(&[], &mut hs);
        assert_eq!(indexes(&hs[0].h), vec![0]);
        // 15 s apart from a boundary: the 30th sample predicts the end at
        // the range's quarter-way points, so sample 120 starts a chunk.
        let mut hs: Vec<HistogramSample> = (0..125)
            .map(|k| {
                let mut buckets = vec![(0, 1)];
                if k == 124 {
                    buckets.push((7, 1));
                }
                int(b + 15_000 * k, 1 + k as u64 / 124, &buckets)
            })
            .collect();
        align(&[], &mut hs);
        assert_eq!(indexes(&hs[119].h), vec![0], "an earlier chunk");
        assert_eq!(
            indexes(&hs[120].h),
            vec![0, 7],
            "the chunk of the new bucket"
        );
        assert_eq!(window(b + 5, b + 10), (b, b + CHUNK_RANGE_MS - 1));
        // Go's truncating division: one range holds -2h+1 .. 2h-1.
        assert_eq!(
            window(-5_000, -1_000),
            (-CHUNK_RANGE_MS + 1, CHUNK_RANGE_MS - 1)
        );
        assert_eq!(
            window(5_000, 6_000),
            (-CHUNK_RANGE_MS + 1, CHUNK_RANGE_MS - 1)
        );
        assert_eq!(
            window(-CHUNK_RANGE_MS, -CHUNK_RANGE_MS),
            (-2 * CHUNK_RANGE_MS + 1, -CHUNK_RANGE_MS)
        );
        // Every timestamp of a window is in a range the window covers.
        for t in [
            -3 * CHUNK_RANGE_MS,
            -CHUNK_RANGE_MS - 1,
            -1,
            0,
            1,
            CHUNK_RANGE_MS,
        ] {
            let (a, b) = window(t, t);
            assert!(a <= t && t <= b, "{t}: {a}..{b}");
            assert_eq!(range_end(a), range_end(t));
            assert_eq!(range_end(b), range_end(t));
        }
    }
}
