//! Removing empty buckets from a histogram's spans, as Prometheus 2.42's
//! `compactBuckets` does (the scrape parser compacts every histogram before
//! it is stored, and `rate` compacts its result).

use super::Span;

/// A bucket count as a histogram keeps it: `i64` deltas between consecutive
/// buckets (integer histograms) or `f64` absolute counts (float ones).
/// Integer arithmetic wraps, as Go's does, so that the deltas of an
/// unchecked histogram (compaction comes before validation) cannot
/// overflow.
pub(crate) trait BucketValue: Copy + PartialEq {
    const ZERO: Self;
    fn plus(self, other: Self) -> Self;
    fn negated(self) -> Self;
}

impl BucketValue for i64 {
    const ZERO: Self = 0;
    fn plus(self, other: Self) -> Self {
        self.wrapping_add(other)
    }
    fn negated(self) -> Self {
        self.wrapping_neg()
    }
}

impl BucketValue for f64 {
    const ZERO: Self = 0.0;
    fn plus(self, other: Self) -> Self {
        self + other
    }
    fn negated(self) -> Self {
        -self
    }
}

/// Cuts empty buckets from the start and end of spans, and runs of more
/// than `max_empty` from their middle; merges spans with zero offset or
/// zero length, and (with `max_empty > 0`) spans at most `max_empty` apart.
/// `deltas` says whether `buckets` holds deltas or absolute counts.
pub(crate) fn compact_buckets<T: BucketValue>(
    buckets: &mut Vec<T>,
    spans: &mut Vec<Span>,
    max_empty: usize,
    deltas: bool,
) {
    // Fast path: no empty bucket, no span to merge.
    let mut abs = T::ZERO;
    let mut nothing_to_do = true;
    for &b in buckets.iter() {
        abs = if deltas { abs.plus(b) } else { b };
        if abs == T::ZERO {
            nothing_to_do = false;
            break;
        }
    }
    if nothing_to_do
        && spans
            .iter()
            .all(|s| !(s.offset as i64 <= max_empty as i64 || s.length == 0))
    {
        return;
    }

    // Merge spans with zero offset.
    if spans.len() > 1 {
        let mut i_span = 0;
        for i in 1..spans.len() {
            let span = spans[i];
            if span.offset == 0 {
                spans[i_span].length += span.length;
                continue;
            }
            i_span += 1;
            spans[i_span] = span;
        }
        spans.truncate(i_span + 1);
    }
    // Drop spans with zero length, carrying their offset forward.
    let mut i_span = 0;
    for i in 0..spans.len() {
        let span = spans[i];
        if span.length == 0 {
            if i + 1 < spans.len() {
                spans[i + 1].offset += span.offset;
            }
            continue;
        }
        spans[i_span] = span;
        i_span += 1;
    }
    spans.truncate(i_span);

    // Cut empty buckets at the start and end of spans always, and in the
    // middle when more than `max_empty` follow each other.
    let mut i_bucket = 0usize;
    let mut i_span = 0usize;
    let mut pos_in_span = 0u32;
    let mut current = T::ZERO;
    while i_bucket < buckets.len() {
        current = if deltas {
            current.plus(buckets[i_bucket])
        } else {
            buckets[i_bucket]
        };
        // The empty buckets from here to the end of the span.
        let n_empty = {
            let mut i = 0usize;
            let mut a = current;
            while (i as u32) + pos_in_span < spans[i_span].length && a == T::ZERO {
                i += 1;
                if i + i_bucket >= buckets.len() {
                    break;
                }
                a = buckets[i + i_bucket];
            }
            i
        };
        if n_empty > 0 {
            if pos_in_span > 0
                && n_empty < (spans[i_span].length - pos_in_span) as usize
                && n_empty <= max_empty
            {
                // Few enough empty buckets inside a span: keep them.
                i_bucket += n_empty;
                if deltas {
                    current = T::ZERO;
                }
                pos_in_span += n_empty as u32;
                continue;
            }
            if deltas && i_bucket + n_empty < buckets.len() {
                current = buckets[i_bucket].negated();
                let moved = buckets[i_bucket];
                buckets[i_bucket + n_empty] = buckets[i_bucket + n_empty].plus(moved);
            }
            buckets.drain(i_bucket..i_bucket + n_empty);
            if pos_in_span == 0 {
                // At the start of the span.
                if n_empty == spans[i_span].length as usize {
                    let offset = spans[i_span].offset;
                    spans.remove(i_span);
                    if spans.len() > i_span {
                        spans[i_span].offset += offset + n_empty as i32;
                    }
                    continue;
                }
                spans[i_span].length -= n_empty as u32;
                spans[i_span].offset += n_empty as i32;
                continue;
            }
            // In the middle or at the end of the span: split it.
            let new_span = Span {
                offset: n_empty as i32,
                length: spans[i_span].length - pos_in_span - n_empty as u32,
            };
            spans[i_span].length = pos_in_span;
            i_span += 1;
            pos_in_span = 0;
            if new_span.length == 0 {
                if i_span < spans.len() {
                    spans[i_span].offset += n_empty as i32;
                }
                continue;
            }
            spans.insert(i_span, new_span);
            continue;
        }
        i_bucket += 1;
        pos_in_span += 1;
        if pos_in_span >= spans[i_span].length {
            pos_in_span = 0;
            i_span += 1;
        }
    }
    if max_empty == 0 || buckets.is_empty() {
        return;
    }

    // Merge spans whose gap is at most `max_empty`, filling the gap with
    // empty buckets.
    let mut i_bucket = spans[0].length as usize;
    let mut current = T::ZERO;
    if deltas {
        for &b in &buckets[..i_bucket] {
            current = current.plus(b);
        }
    }
    let mut i_span = 1;
    while i_span < spans.len() {
        if spans[i_span].offset as i64 > max_empty as i64 {
            let l = spans[i_span].length as usize;
            if deltas {
                for &b in &buckets[i_bucket..i_bucket + l] {
                    current = current.plus(b);
                }
            }
            i_bucket += l;
            i_span += 1;
            continue;
        }
        let offset = spans[i_span].offset as usize;
        spans[i_span - 1].length += offset as u32 + spans[i_span].length;
        spans.remove(i_span);
        buckets.splice(i_bucket..i_bucket, std::iter::repeat_n(T::ZERO, offset));
        if deltas {
            buckets[i_bucket] = current.negated();
            buckets[i_bucket + offset] = buckets[i_bucket + offset].plus(current);
        }
        i_bucket += offset;
        current = buckets[i_bucket];
    }
}
