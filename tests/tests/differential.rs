//! Differential: real Prometheus 2.42 (Debian's `prometheus`) and a
//! scrapegrid cluster scrape one fixture under one `prometheus.yml`; what
//! each stores (`/api/v1/query_range`) and shows (`/api/v1/targets`) must
//! be the same, case by case. The case table is
//! `tests/src/differential/table/`.

use scrapegrid_tests::differential;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapegrid_stores_what_prometheus_stores() -> anyhow::Result<()> {
    let report = differential::run().await?;
    let text = report.render();
    println!("{text}");
    assert!(
        report.all_pass(),
        "scrapegrid differs from Prometheus (every difference listed above):\n{text}"
    );
    Ok(())
}
