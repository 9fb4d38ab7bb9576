//! Native histograms in PromQL (issue 15): Prometheus 2.42 with
//! `--enable-feature=native-histograms` and the storage node hold the same
//! native histogram series (remote-written, `scrapegrid_tests::promql::native`),
//! and every query of the native corpus is run against both as instant
//! queries at five times and range queries with two steps: raw selections,
//! `rate`/`increase`/`delta`, `sum`, `histogram_quantile`,
//! `histogram_count`, `histogram_sum`, `histogram_fraction`, and the
//! operations that read a histogram as its float value. Answers must agree
//! (histograms by count, sum and every bucket within 1e-9 relative). The
//! storage node's remote read must return the histograms it was written.

use anyhow::Result;
use scrapegrid_common::histogram::{self, FloatHistogram};
use scrapegrid_proto::prometheus as prom;
use scrapegrid_proto::prost::Message;

use scrapegrid_tests::promql::native;
use scrapegrid_tests::promql::{run_queries, Pair, STEPS, STEP_MS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_histograms_answer_promql_as_prometheus() -> Result<()> {
    let http = reqwest::Client::new();
    let pair = Pair::start_with(&http, &["--enable-feature=native-histograms"]).await?;
    let (prometheus, http_addr) = (&pair.prometheus, pair.http_addr.as_str());

    let t0 = Pair::t0();
    let data = native::generate(t0);
    pair.load(&http, &data).await?;

    let end = t0 + STEPS * STEP_MS;
    let queries = native::corpus();
    let instants = [
        t0 + 8 * 60_000 + 7_300,
        t0 + 25 * 60_000 + 1_000,
        // Just after i0's counter reset and the mixed series' switch.
        t0 + 30 * 60_000 + 20_000,
        t0 + 38 * 60_000,
        end - 1_000,
    ];
    let ranges = [
        (t0 + 5 * 60_000, end + 2 * 60_000, "60"),
        (t0 + 20 * 60_000 + 3_000, t0 + 40 * 60_000, "37"),
    ];
    run_queries(
        &http,
        &prometheus.addr,
        http_addr,
        &queries,
        &instants,
        &ranges,
        &[],
    )
    .await?
    .check("native histogram differential", queries.len(), 1000);

    // Remote read gives back the histograms as written.
    let req = prom::ReadRequest {
        queries: vec![prom::Query {
            start_timestamp_ms: t0,
            end_timestamp_ms: end + 60_000,
            matchers: vec![prom::LabelMatcher {
                r#type: prom::label_matcher::Type::Eq as i32,
                name: "__name__".into(),
                value: "nh_latency_seconds".into(),
            }],
            hints: None,
        }],
        ..Default::default()
    };
    let body = snap::raw::Encoder::new().compress_vec(&req.encode_to_vec())?;
    let r = http
        .post(format!("http://{http_addr}/api/v1/read"))
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .body(body)
        .send()
        .await?;
    assert!(r.status().is_success(), "remote read: {}", r.status());
    let bytes = snap::raw::Decoder::new().decompress_vec(&r.bytes().await?)?;
    let resp = prom::ReadResponse::decode(&bytes[..])?;
    let got: Vec<&prom::TimeSeries> = resp.results[0].timeseries.iter().collect();
    let written: Vec<_> = data
        .series
        .iter()
        .filter(|s| {
            s.labels
                .iter()
                .any(|(n, v)| n == "__name__" && v == "nh_latency_seconds")
        })
        .collect();
    assert_eq!(got.len(), written.len());
    // The same histograms, laid out as Prometheus reads them back (empty
    // buckets of their chunk added): equal once compacted.
    let compacted = |hs: &[prom::Histogram]| -> Vec<FloatHistogram> {
        hs.iter()
            .map(|h| {
                let mut f = histogram::to_float(h);
                f.compact();
                f
            })
            .collect()
    };
    for (g, w) in got.iter().zip(&written) {
        assert_eq!(g.histograms.len(), w.histograms.len());
        assert_eq!(
            compacted(&g.histograms),
            compacted(&w.histograms),
            "remote read returns what was written"
        );
    }
    drop(pair);
    Ok(())
}
