//! PromQL differential suite (issue 12): real Prometheus 2.42 and the
//! storage node hold the same samples (one remote-written dataset,
//! `scrapegrid_tests::promql`), and every query of the corpus is run
//! against both, as instant queries at five times and as range queries
//! with two steps; the answers must agree (same series and labels, values
//! within 1e-9 relative, same error type). Every difference is printed;
//! the only ones allowed are declared in [`DEVIATIONS`] with the reason.
//! The corpus is `scrapegrid_tests::promql::corpus`.
//! `PROMQL_PROBE='<query>'` prints both answers to that query first, for
//! chasing a difference.

use anyhow::Result;

use scrapegrid_tests::promql::corpus::corpus;
use scrapegrid_tests::promql::{api, run_queries, secs, Dataset, Outcome, Pair, STEPS, STEP_MS};

/// Queries whose range-query answers may differ, and why. Empty: none may.
const DEVIATIONS: &[(&str, &str)] = &[];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_node_answers_promql_as_prometheus() -> Result<()> {
    let http = reqwest::Client::new();
    let pair = Pair::start(&http).await?;
    let (prometheus, http_addr) = (&pair.prometheus, pair.http_addr.as_str());

    let t0 = Pair::t0();
    let data = Dataset::generate(t0);
    pair.load(&http, &data).await?;
    let end = t0 + STEPS * STEP_MS;
    let at_s = (t0 + 20 * 60_000) as f64 / 1000.0;
    let queries = corpus(at_s);
    let instants = [
        t0 + 15 * 60_000 + 7_300,
        // node_temp{instance="i2"} is NaN here.
        t0 + 25 * 60_000 + 1_000,
        t0 + 31 * 60_000,
        end - 1_000,
        end + 3 * 60_000 + 500,
    ];
    let ranges = [
        (t0 + 10 * 60_000, end + 2 * 60_000, "60"),
        (t0 + 20 * 60_000 + 3_000, t0 + 40 * 60_000, "37"),
    ];

    if let Ok(probe) = std::env::var("PROMQL_PROBE") {
        for (path, params) in [(
            "/api/v1/query",
            vec![("query", probe.clone()), ("time", secs(t0 + 31 * 60_000))],
        )] {
            let want = api(&http, &prometheus.addr, path, &params).await?;
            let got = api(&http, http_addr, path, &params).await?;
            println!("PROBE prometheus: {want}\nPROBE ours:       {got}");
        }
    }
    let Outcome {
        mut compared,
        mut differences,
        declared,
    } = run_queries(
        &http,
        &prometheus.addr,
        http_addr,
        &queries,
        &instants,
        &ranges,
        DEVIATIONS,
    )
    .await?;
    // The metadata endpoints a dashboard uses, over the whole dataset.
    let (from, to) = (secs(t0), secs(end));
    let matchers = [
        r#"up"#,
        r#"{job="api"}"#,
        r#"{__name__=~"node_.*|up", instance!="i1"}"#,
    ];
    let mut meta: Vec<(String, Vec<(&str, String)>)> = Vec::new();
    for m in matchers {
        let p = vec![
            ("match[]", m.to_string()),
            ("start", from.clone()),
            ("end", to.clone()),
        ];
        meta.push(("/api/v1/series".into(), p.clone()));
        meta.push(("/api/v1/labels".into(), p.clone()));
        meta.push(("/api/v1/label/instance/values".into(), p));
    }
    for path in [
        "/api/v1/labels",
        "/api/v1/label/__name__/values",
        "/api/v1/label/job/values",
        "/api/v1/label/nonexistent/values",
    ] {
        meta.push((
            path.into(),
            vec![("start", from.clone()), ("end", to.clone())],
        ));
    }
    meta.push(("/api/v1/series".into(), vec![("start", from.clone())]));
    for (path, params) in &meta {
        let want = api(&http, &prometheus.addr, path, params).await?;
        let got = api(&http, http_addr, path, params).await?;
        compared += 1;
        let same = want["status"] == got["status"]
            && (want["status"] != "success" || sorted(&want["data"]) == sorted(&got["data"]))
            && (want["status"] == "success" || want["errorType"] == got["errorType"]);
        if !same {
            differences.push(format!("{path} {params:?}: {want} vs {got}"));
        }
    }
    Outcome {
        compared,
        differences,
        declared,
    }
    .check("promql differential", queries.len(), 500);
    drop(pair);
    Ok(())
}

/// `data` of a metadata answer with its list sorted (series as their
/// labels), for comparing as sets.
fn sorted(data: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = data
        .as_array()
        .map(|a| a.iter().map(|x| x.to_string()).collect())
        .unwrap_or_default();
    v.sort();
    v
}
