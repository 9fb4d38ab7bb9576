//! The engine's points: a float or a native histogram per timestamp, the
//! selected series merged into them, and the point an instant selector
//! sees.

use scrapegrid_common::histogram::FloatHistogram;
use scrapegrid_proto::is_stale_marker;

use super::Series;

/// A native histogram as queries compute with it, shared between the
/// points that hold it.
pub type Hist = std::sync::Arc<FloatHistogram>;

/// One point of a series: a float, or a native histogram (whose `v` is 0,
/// as in Prometheus 2.42, where code that reads only the float value sees
/// 0 for a histogram).
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub t: i64,
    pub v: f64,
    pub h: Option<Hist>,
}

impl Point {
    pub fn float(t: i64, v: f64) -> Self {
        Self { t, v, h: None }
    }
}

/// The point an instant selector sees at `ref_t`, as [`instant_value`].
pub(super) fn instant_point(points: &[Point], ref_t: i64, lookback_ms: i64) -> Option<&Point> {
    let end = points.partition_point(|s| s.t <= ref_t);
    let last = points[..end].last()?;
    if last.t < ref_t.saturating_sub(lookback_ms) || is_stale_marker(last.v) {
        return None;
    }
    Some(last)
}

/// A selected series as the engine's points: its floats and its native
/// histograms merged by time (a histogram wins a timestamp both have).
pub(super) fn points_of(s: crate::query::select::Series) -> Series {
    let mut points = Vec::with_capacity(s.samples.len() + s.histograms.len());
    let mut hs = s.histograms.into_iter().peekable();
    for f in s.samples {
        while let Some(h) = hs.next_if(|h| h.t <= f.t) {
            let t = h.t;
            points.push(Point {
                t,
                v: 0.0,
                h: Some(Hist::new(scrapegrid_common::histogram::to_float(&h.h))),
            });
        }
        if points.last().is_some_and(|p: &Point| p.t == f.t) {
            continue;
        }
        points.push(Point::float(f.t, f.v));
    }
    points.extend(hs.map(|h| Point {
        t: h.t,
        v: 0.0,
        h: Some(Hist::new(scrapegrid_common::histogram::to_float(&h.h))),
    }));
    Series {
        labels: s.labels,
        points,
    }
}
