//! `scrape_protocols` and the Accept header a scrape sends.
//!
//! Without `scrape_protocols` a scrape sends Prometheus 2.42's header, which
//! prefers OpenMetrics 1.0. The field itself arrived in Prometheus 2.49; with
//! it, the header lists the protocols in the given order with falling
//! weights, as later Prometheus versions build it.

/// The protocols `scrape_protocols` may name, with their media types.
pub const SCRAPE_PROTOCOLS: [(&str, &str); 4] = [
    (
        "PrometheusProto",
        "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited",
    ),
    (
        "OpenMetricsText0.0.1",
        "application/openmetrics-text;version=0.0.1",
    ),
    (
        "OpenMetricsText1.0.0",
        "application/openmetrics-text;version=1.0.0",
    ),
    ("PrometheusText0.0.4", "text/plain;version=0.0.4"),
];

/// The Accept header of Prometheus 2.42 (`scrapeAcceptHeader`).
pub const DEFAULT_ACCEPT_HEADER: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// The Accept header of Prometheus 2.42 with native histograms enabled
/// (`scrapeAcceptHeaderWithProtobuf`).
pub const PROTOBUF_ACCEPT_HEADER: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// Returns the Accept header for `protocols` (names from
/// [`SCRAPE_PROTOCOLS`], validated): when empty, [`DEFAULT_ACCEPT_HEADER`],
/// or [`PROTOBUF_ACCEPT_HEADER`] when native histograms are scraped; else
/// each media type with weight `0.(n+1)`, `0.n`, ..., then `*/*`.
pub fn accept_header(protocols: &[String], native_histograms: bool) -> String {
    if protocols.is_empty() {
        return if native_histograms {
            PROTOBUF_ACCEPT_HEADER
        } else {
            DEFAULT_ACCEPT_HEADER
        }
        .to_string();
    }
    let mut weight = SCRAPE_PROTOCOLS.len() + 1;
    let mut parts = Vec::with_capacity(protocols.len() + 1);
    for p in protocols {
        if let Some((_, media)) = SCRAPE_PROTOCOLS.iter().find(|(name, _)| name == p) {
            parts.push(format!("{media};q=0.{weight}"));
            weight -= 1;
        }
    }
    parts.push(format!("*/*;q=0.{weight}"));
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_follow_the_order_given() {
        assert_eq!(accept_header(&[], false), DEFAULT_ACCEPT_HEADER);
        assert_eq!(accept_header(&[], true), PROTOBUF_ACCEPT_HEADER);
        assert_eq!(
            accept_header(&["PrometheusProto".into(), "PrometheusText0.0.4".into()], true),
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5,\
             text/plain;version=0.0.4;q=0.4,*/*;q=0.3"
        );
        assert_eq!(
            accept_header(&[
                "OpenMetricsText1.0.0".into(),
                "OpenMetricsText0.0.1".into(),
                "PrometheusText0.0.4".into(),
                "PrometheusProto".into(),
            ], false),
            "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,\
             text/plain;version=0.0.4;q=0.3,application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.2,\
             */*;q=0.1"
        );
    }
}
