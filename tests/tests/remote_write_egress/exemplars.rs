//! Exemplars by remote write (`send_exemplars`), beside Prometheus 2.42
//! with `--enable-feature=exemplar-storage` doing the same: both scrape one
//! OpenMetrics target whose exemplars change, and send to recording
//! receivers. Each must send the same exemplars (series, labels, value,
//! timestamp), each once, in the TimeSeries of its series; an endpoint
//! without `send_exemplars` gets the samples and no exemplar.

use std::collections::BTreeMap;
use std::time::Duration;

use scrapegrid_tests::remote_receiver::Receiver;
use scrapegrid_tests::{eventually, TargetServer};

use super::side_by_side;

fn body(round: u32) -> String {
    // Explicit exemplar timestamps, so both systems see the same ones.
    let t = 1_700_000_000 + round;
    format!(
        "# TYPE req counter
req_total{{code=\"200\"}} {round} # {{trace_id=\"r{round}\"}} 1.5 {t}.125
# TYPE lat histogram
lat_bucket{{le=\"1\"}} {round} # {{trace_id=\"l{round}\",span_id=\"s\"}} 0.5 {t}
lat_bucket{{le=\"+Inf\"}} {round}
lat_sum {round}
lat_count {round}
# EOF
"
    )
}

fn config(target: &str, rx: &str, quiet_rx: &str) -> String {
    format!(
        "global: {{scrape_interval: 1s, scrape_timeout: 500ms}}
scrape_configs:
  - job_name: ex
    static_configs: [{{targets: [{target:?}]}}]
remote_write:
  - url: {rx}
    name: with_exemplars
    send_exemplars: true
    queue_config: {{batch_send_deadline: 200ms}}
    metadata_config: {{send: false}}
  - url: {quiet_rx}
    name: without
    queue_config: {{batch_send_deadline: 200ms}}
    metadata_config: {{send: false}}
"
    )
}

/// How often each exemplar arrived.
fn tally(rx: &Receiver) -> BTreeMap<(String, String, u64, i64), usize> {
    let mut out = BTreeMap::new();
    for e in rx.exemplars() {
        *out.entry(e).or_default() += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exemplars_are_sent_as_prometheus_sends_them() {
    let target = TargetServer::start_openmetrics(&body(1)).await.unwrap();
    let sbs = side_by_side(
        |rx, quiet| config(&target.addr, rx, quiet),
        &["--enable-feature=exemplar-storage"],
    )
    .await;
    let (p_rx, p_quiet, s_rx, s_quiet) = (&sbs.p_rx, &sbs.p_quiet, &sbs.s_rx, &sbs.s_quiet);

    // Three rounds of exemplars, each served for a few scrapes by both.
    for round in 1..=3 {
        target.set(200, &body(round));
        let want = 2 * round as usize;
        eventually(Duration::from_secs(30), || async {
            (tally(p_rx).len() == want && tally(s_rx).len() == want).then_some(())
        })
        .await
        .unwrap();
    }
    // Let anything late arrive before counting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (p, s) = (tally(p_rx), tally(s_rx));
    assert_eq!(s, p, "scrapegrid's exemplars differ from prometheus's");
    assert!(p.values().all(|n| *n == 1), "each exemplar once: {p:?}");
    let keys: Vec<_> = p.keys().collect();
    assert!(
        keys.iter()
            .any(|(series, labels, _, t)| series.contains("lat_bucket")
                && labels.contains("span_id")
                && *t == 1_700_000_001_000),
        "{keys:?}"
    );
    for (who, rx) in [("prometheus", p_quiet), ("scrapegrid", s_quiet)] {
        assert!(!rx.samples().is_empty(), "{who} sent no samples");
        assert!(rx.exemplars().is_empty(), "{who} sent exemplars unasked");
    }
}
