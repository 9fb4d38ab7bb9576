//! Metadata by remote write, beside Prometheus 2.42 doing the same: both
//! scrape the same two targets under one `prometheus.yml` and send to
//! recording receivers. Each must send the same set of (metric, type,
//! help, unit) entries, every interval all of them once (an entry two
//! targets share is sent once), in requests of at most
//! `max_samples_per_send` entries that carry no samples; an endpoint with
//! `send: false` gets samples and no metadata.

use std::collections::BTreeSet;
use std::time::Duration;

use scrapegrid_tests::remote_receiver::Receiver;
use scrapegrid_tests::{eventually, TargetServer};

use super::side_by_side;

const PER_REQUEST: usize = 3;

const BODY_A: &str = "\
# HELP req_total Requests served.
# TYPE req_total counter
req_total{code=\"200\"} 5
# HELP temp_celsius Temperature \\\\ in C.\\nSecond line.
# TYPE temp_celsius gauge
temp_celsius 21.5
# TYPE lat histogram
lat_bucket{le=\"1\"} 1
lat_bucket{le=\"+Inf\"} 2
lat_sum 3
lat_count 2
# TYPE summ summary
summ{quantile=\"0.5\"} 1
summ_sum 1
summ_count 1
# TYPE thing untyped
thing 1
# HELP only_help No TYPE line.
only_help 3
# TYPE no_samples gauge
";

/// Shares most entries with A; `temp_celsius` has another HELP.
const BODY_B: &str = "\
# HELP req_total Requests served.
# TYPE req_total counter
req_total{code=\"500\"} 1
# HELP temp_celsius Another help.
# TYPE temp_celsius gauge
temp_celsius 20
";

fn config(targets: &[&str], rx: &str, quiet_rx: &str) -> String {
    format!(
        "global: {{scrape_interval: 1s, scrape_timeout: 500ms}}
scrape_configs:
  - job_name: md
    static_configs: [{{targets: {targets:?}}}]
remote_write:
  - url: {rx}
    name: with_metadata
    metadata_config: {{send_interval: 1s, max_samples_per_send: {PER_REQUEST}}}
  - url: {quiet_rx}
    name: without
    metadata_config: {{send: false}}
"
    )
}

/// Every entry a receiver got.
fn entries(rx: &Receiver) -> BTreeSet<String> {
    rx.metadata_requests()
        .into_iter()
        .flat_map(|(e, _)| e)
        .collect()
}

/// Checks the requests of one sender; returns what is wrong.
fn check(who: &str, rx: &Receiver, want: &BTreeSet<String>) -> Vec<String> {
    let reqs = rx.metadata_requests();
    let mut wrong = Vec::new();
    for (e, with_samples) in &reqs {
        if *with_samples {
            wrong.push(format!("{who}: a metadata request carried samples"));
        }
        if e.len() > PER_REQUEST {
            wrong.push(format!("{who}: a request of {} entries", e.len()));
        }
    }
    // Some interval sent every entry exactly once, in full requests.
    let k = want.len().div_ceil(PER_REQUEST);
    let whole = reqs.windows(k).any(|w| {
        let all: Vec<&String> = w.iter().flat_map(|(e, _)| e).collect();
        let set: BTreeSet<String> = all.iter().map(|s| s.to_string()).collect();
        all.len() == want.len() && set == *want
    });
    if !whole {
        wrong.push(format!(
            "{who}: no {k} consecutive requests hold every entry once: {reqs:?}"
        ));
    }
    wrong
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_is_sent_as_prometheus_sends_it() {
    let a = TargetServer::start(BODY_A).await.unwrap();
    let b = TargetServer::start(BODY_B).await.unwrap();
    let targets = [a.addr.as_str(), b.addr.as_str()];
    let sbs = side_by_side(|rx, quiet| config(&targets, rx, quiet), &[]).await;
    let (p_rx, p_quiet, s_rx, s_quiet) = (&sbs.p_rx, &sbs.p_quiet, &sbs.s_rx, &sbs.s_quiet);

    // Both targets' metadata, as Prometheus sends it once both are scraped.
    let want = eventually(Duration::from_secs(30), || async {
        let e = entries(p_rx);
        (e.len() == 8 && e.iter().any(|x| x.contains("Another help"))).then_some(e)
    })
    .await
    .unwrap();
    assert!(
        want.contains(r#"temp_celsius GAUGE "Temperature \\ in C.\nSecond line." """#),
        "{want:?}"
    );
    assert!(want.contains(r#"thing UNKNOWN "" """#), "{want:?}");
    assert!(want.contains(r#"no_samples GAUGE "" """#), "{want:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while entries(s_rx) != want || !check("scrapegrid", s_rx, &want).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "scrapegrid sent {:?}; prometheus {want:?}; {:?}",
            entries(s_rx),
            check("scrapegrid", s_rx, &want)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Prometheus itself passes the same checks: they are its behaviour.
    assert_eq!(check("prometheus", p_rx, &want), Vec::<String>::new());

    // `send: false`: samples, no metadata, for both.
    for (who, rx) in [("prometheus", p_quiet), ("scrapegrid", s_quiet)] {
        // Prometheus sends samples once its WAL watcher caught up (seconds).
        eventually(Duration::from_secs(30), || async {
            (!rx.samples().is_empty()).then_some(())
        })
        .await
        .unwrap_or_else(|_| panic!("{who} sent no samples"));
        assert!(
            rx.metadata_requests().is_empty(),
            "{who} sent metadata with send: false"
        );
    }
}
