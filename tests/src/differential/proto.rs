//! A tiny protobuf encoder for the fixture's `io.prometheus.client`
//! expositions: length-delimited `MetricFamily` messages written field by
//! field with Prometheus's field numbers (those of
//! `proto/proto/prometheus/client/metrics.proto`, which the scraper decodes
//! with).

/// `io.prometheus.client.MetricType`.
#[derive(Clone, Copy)]
pub enum MetricType {
    Counter = 0,
    Gauge = 1,
    Summary = 2,
    Untyped = 3,
    Histogram = 4,
    GaugeHistogram = 5,
}

/// A message being encoded.
#[derive(Clone, Default)]
pub struct Msg(Vec<u8>);

impl Msg {
    pub fn new() -> Msg {
        Msg::default()
    }

    fn key(&mut self, field: u32, wire: u8) {
        varint(&mut self.0, (u64::from(field) << 3) | u64::from(wire));
    }

    pub fn varint(mut self, field: u32, v: u64) -> Msg {
        self.key(field, 0);
        varint(&mut self.0, v);
        self
    }

    pub fn double(mut self, field: u32, v: f64) -> Msg {
        self.key(field, 1);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn bytes(mut self, field: u32, b: &[u8]) -> Msg {
        self.key(field, 2);
        varint(&mut self.0, b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }

    pub fn string(self, field: u32, s: &str) -> Msg {
        self.bytes(field, s.as_bytes())
    }

    pub fn msg(self, field: u32, m: Msg) -> Msg {
        self.bytes(field, &m.0)
    }
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Returns the messages, each prefixed with its varint length.
pub fn delimited(families: &[Msg]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in families {
        varint(&mut out, f.0.len() as u64);
        out.extend_from_slice(&f.0);
    }
    out
}

/// A `MetricFamily`.
pub fn family(name: &str, help: &str, t: MetricType, metrics: Vec<Msg>) -> Msg {
    let mut m = Msg::new().string(1, name);
    if !help.is_empty() {
        m = m.string(2, help);
    }
    m = m.varint(3, t as u64);
    for metric in metrics {
        m = m.msg(4, metric);
    }
    m
}

/// A `Metric` with its labels.
pub fn metric(labels: &[(&str, &str)]) -> Msg {
    labels.iter().fold(Msg::new(), |m, (n, v)| {
        m.msg(1, Msg::new().string(1, n).string(2, v))
    })
}

/// An `Exemplar` with labels, value and a timestamp in milliseconds.
pub fn exemplar(labels: &[(&str, &str)], value: f64, ts_ms: i64) -> Msg {
    let ts = Msg::new()
        .varint(1, (ts_ms / 1000) as u64)
        .varint(2, ((ts_ms % 1000) * 1_000_000) as u64);
    labels
        .iter()
        .fold(Msg::new(), |m, (n, v)| {
            m.msg(1, Msg::new().string(1, n).string(2, v))
        })
        .double(2, value)
        .msg(3, ts)
}

impl Msg {
    /// `Metric.gauge`.
    pub fn gauge(self, v: f64) -> Msg {
        self.msg(2, Msg::new().double(1, v))
    }

    /// `Metric.counter`, optionally with an exemplar.
    pub fn counter(self, v: f64, ex: Option<Msg>) -> Msg {
        let mut c = Msg::new().double(1, v);
        if let Some(ex) = ex {
            c = c.msg(2, ex);
        }
        self.msg(3, c)
    }

    /// `Metric.untyped`.
    pub fn untyped(self, v: f64) -> Msg {
        self.msg(5, Msg::new().double(1, v))
    }

    /// `Metric.summary` with (quantile, value) pairs.
    pub fn summary(self, count: u64, sum: f64, quantiles: &[(f64, f64)]) -> Msg {
        let s = quantiles
            .iter()
            .fold(Msg::new().varint(1, count).double(2, sum), |s, (q, v)| {
                s.msg(3, Msg::new().double(1, *q).double(2, *v))
            });
        self.msg(4, s)
    }

    /// `Metric.histogram` (classic) with (upper bound, cumulative count) buckets.
    pub fn histogram(self, count: u64, sum: f64, buckets: &[(f64, u64)]) -> Msg {
        let h = buckets
            .iter()
            .fold(Msg::new().varint(1, count).double(2, sum), |h, (le, c)| {
                h.msg(3, Msg::new().varint(1, *c).double(2, *le))
            });
        self.msg(7, h)
    }

    /// `Metric.histogram` as a native histogram (schema 0, a zero bucket
    /// and one span of positive buckets with these absolute counts), the
    /// way client_golang exposes one: 2.42 ingests it as a native histogram
    /// only, whatever classic buckets come with it.
    pub fn native_histogram(self, count: u64, sum: f64, zero_count: u64, positive: &[i64]) -> Msg {
        let zigzag = |v: i64| ((v << 1) ^ (v >> 63)) as u64;
        let span = Msg::new()
            .varint(1, zigzag(0))
            .varint(2, positive.len() as u64);
        let mut h = Msg::new()
            .varint(1, count)
            .double(2, sum)
            .varint(5, zigzag(0))
            .double(6, 0.001)
            .varint(7, zero_count)
            .msg(12, span);
        let mut prev = 0;
        for &c in positive {
            h = h.varint(13, zigzag(c - prev));
            prev = c;
        }
        self.msg(7, h)
    }

    /// `Metric.timestamp_ms`.
    pub fn timestamp_ms(self, ts: i64) -> Msg {
        self.varint(6, ts as u64)
    }
}
