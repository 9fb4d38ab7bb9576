//! 2.42's `addBucket`: adding buckets, in increasing index order, into a
//! side's spans and counts, extending or splitting spans as needed.

use super::float::Bucket;
use super::Span;

/// Adds buckets, in increasing index order, into spans and buckets (2.42's
/// `addBucket` with its cursor: where the previous bucket went).
#[derive(Default)]
pub(super) struct BucketAdder {
    started: bool,
    i_span: usize,
    i_bucket: usize,
    i_in_span: i32,
    index: i32,
}

impl BucketAdder {
    pub(super) fn add(&mut self, b: Bucket, spans: &mut Vec<Span>, buckets: &mut Vec<f64>) {
        self.place(b, spans, buckets);
        self.index = b.index;
    }

    fn place(&mut self, b: Bucket, spans: &mut Vec<Span>, buckets: &mut Vec<f64>) {
        if !self.started {
            // First bucket: it may go before the first span.
            if spans.is_empty() || spans[0].offset > b.index {
                buckets.insert(0, b.count);
                self.started = true;
                (self.i_span, self.i_bucket, self.i_in_span) = (0, 0, 0);
                if !spans.is_empty() && spans[0].offset == b.index + 1 {
                    spans[0].length += 1;
                    spans[0].offset -= 1;
                    return;
                }
                spans.insert(
                    0,
                    Span {
                        offset: b.index,
                        length: 1,
                    },
                );
                if spans.len() > 1 {
                    spans[1].offset -= b.index + 1;
                }
                return;
            }
            if spans[0].offset == b.index {
                buckets[0] += b.count;
                self.started = true;
                (self.i_span, self.i_bucket, self.i_in_span) = (0, 0, 0);
                return;
            }
            self.started = true;
            (self.i_span, self.i_bucket, self.i_in_span) = (0, 0, 0);
            self.index = spans[0].offset;
        }
        let mut delta = b.index - self.index;
        loop {
            let remaining = spans[self.i_span].length as i32 - self.i_in_span;
            if delta < remaining {
                self.i_bucket += delta as usize;
                self.i_in_span += delta;
                buckets[self.i_bucket] += b.count;
                return;
            }
            delta -= remaining;
            self.i_bucket += remaining as usize;
            self.i_span += 1;
            if self.i_span == spans.len() || delta < spans[self.i_span].offset {
                // The bucket goes before the next span (or after the last).
                buckets.insert(self.i_bucket, b.count);
                if delta == 0 {
                    // Directly after the previous span: extend it.
                    if self.i_span < spans.len() {
                        spans[self.i_span].offset -= 1;
                    }
                    self.i_span -= 1;
                    self.i_in_span = spans[self.i_span].length as i32;
                    spans[self.i_span].length += 1;
                    return;
                }
                if self.i_span < spans.len() && delta == spans[self.i_span].offset - 1 {
                    // Directly before the next span: extend it.
                    self.i_in_span = 0;
                    spans[self.i_span].offset -= 1;
                    spans[self.i_span].length += 1;
                    return;
                }
                // A new span between the two.
                self.i_in_span = 0;
                if self.i_span < spans.len() {
                    spans[self.i_span].offset -= delta + 1;
                }
                spans.insert(
                    self.i_span,
                    Span {
                        offset: delta,
                        length: 1,
                    },
                );
                return;
            }
            delta -= spans[self.i_span].offset;
            self.i_in_span = 0;
        }
    }
}
