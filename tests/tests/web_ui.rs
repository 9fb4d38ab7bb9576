//! The web UI (issue 16) in headless Chromium against a real cluster on
//! loopback: two scrapers, a target that answers, one that does not and one
//! that relabeling drops. Each page loads (its script marks the body
//! `data-loaded="true"` once the first data is drawn), shows what the APIs
//! say, a query draws a graph and a table, a bad one shows its error, and a
//! screenshot of each page is saved (into `docs/screenshots/` with
//! `UPDATE_SCREENSHOTS=1`, else a temporary directory). A node with a read
//! token shows a token form instead of data.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{ensure, Result};
use scrapegrid_tests::browser::{by_id, elements, with_class, Browser};
use scrapegrid_tests::{eventually, free_addr, get_data, Cluster, TargetServer};

const EXPOSITION: &str = "# TYPE demo gauge\ndemo{kind=\"a\"} 7\ndemo{kind=\"b\"} 3\n\
# TYPE demo_requests_total counter\ndemo_requests_total{code=\"200\"} 10\n";

/// Where screenshots go.
fn screenshot_dir() -> (PathBuf, Option<tempfile::TempDir>) {
    if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        return (dir, None);
    }
    let tmp = tempfile::tempdir().unwrap();
    (tmp.path().to_path_buf(), Some(tmp))
}

/// The body's `data-loaded` says the page drew its data.
fn loaded(dom: &str) -> bool {
    elements(dom, "body")
        .first()
        .is_some_and(|b| b.attr("data-loaded") == Some("true"))
}

/// Rows a filter left visible.
fn shown<'a>(
    rows: &[scrapegrid_tests::browser::Element<'a>],
) -> Vec<scrapegrid_tests::browser::Element<'a>> {
    rows.iter()
        .filter(|r| {
            r.attr("hidden").is_none() && !r.attr("style").unwrap_or("").contains("display: none")
        })
        .copied()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_load_show_the_cluster_and_draw_a_query() -> Result<()> {
    let good = TargetServer::start(EXPOSITION).await?;
    let dead = free_addr();
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: web\n    static_configs:\n      - targets: ['{good}']\n  - job_name: gone\n    static_configs:\n      - targets: ['{dead}']\n      - targets: ['{good}']\n        labels: {{env: dev}}\n    relabel_configs:\n      - source_labels: [env]\n        regex: dev\n        action: drop\n",
        good = good.addr
    );
    let cluster = Cluster::builder()
        .scrapers(2)
        .config(&config)
        .build()
        .await?;
    let ids: BTreeSet<String> = cluster.scrapers.iter().map(|s| s.0.clone()).collect();
    let cp = format!("http://{}", cluster.control_http);
    let st = format!("http://{}", cluster.storage_http);
    eventually(Duration::from_secs(30), || async {
        let t = get_data(&cluster.http, &format!("{cp}/api/v1/targets"))
            .await
            .ok()?;
        let active = t["activeTargets"].as_array()?;
        (active.len() == 2 && active.iter().all(|t| t["health"] != "unknown")).then_some(())
    })
    .await?;
    eventually(Duration::from_secs(30), || async {
        let d = get_data(&cluster.http, &format!("{st}/api/v1/query?query=demo"))
            .await
            .ok()?;
        (d["result"].as_array()?.len() == 2).then_some(())
    })
    .await?;
    let browser = Browser::new()?;
    let (shots, _keep) = screenshot_dir();

    // Targets: one section per job, one row per target with its health,
    // owner, generation and error; the health filter from the URL.
    let dom = browser.dom(&format!("{cp}/targets")).await?;
    ensure!(loaded(&dom), "targets page not loaded: {dom}");
    let pools: BTreeSet<&str> = with_class(&dom, "section", "pool")
        .iter()
        .filter_map(|s| s.attr("data-job"))
        .collect();
    assert_eq!(pools, BTreeSet::from(["gone", "web"]));
    let rows = with_class(&dom, "tr", "target");
    assert_eq!(rows.len(), 2, "{dom}");
    let health: BTreeSet<&str> = rows.iter().filter_map(|r| r.attr("data-health")).collect();
    assert_eq!(health, BTreeSet::from(["down", "up"]));
    for row in &rows {
        let owner = with_class(row.inner, "td", "owner")[0].text();
        assert!(
            ids.contains(owner.trim()),
            "owner {owner:?} of {}",
            row.inner
        );
        let generation = with_class(row.inner, "td", "generation")[0].text();
        assert!(generation.trim().parse::<u64>().is_ok(), "{generation:?}");
        let error = with_class(row.inner, "td", "error")[0].text();
        if row.attr("data-health") == Some("down") {
            assert!(error.contains("connection refused"), "{error}");
            assert!(row.text().contains(&dead), "{}", row.text());
        } else {
            assert!(error.trim().is_empty(), "{error}");
            assert!(row.text().contains("job=\"web\""), "{}", row.text());
        }
    }
    let dom = browser.dom(&format!("{cp}/targets?health=down")).await?;
    ensure!(loaded(&dom), "filtered targets page not loaded");
    let down = shown(&with_class(&dom, "tr", "target"));
    assert_eq!(down.len(), 1, "{dom}");
    assert_eq!(down[0].attr("data-health"), Some("down"));

    // Service discovery: discovered and final labels, and the dropped
    // target with the rule that dropped it.
    let dom = browser.dom(&format!("{cp}/service-discovery")).await?;
    ensure!(loaded(&dom), "service discovery page not loaded: {dom}");
    assert_eq!(with_class(&dom, "tr", "sd-active").len(), 2, "{dom}");
    let dropped = with_class(&dom, "tr", "sd-dropped");
    assert_eq!(dropped.len(), 1, "{dom}");
    let reason = with_class(dropped[0].inner, "td", "reason")[0].text();
    assert!(
        reason.contains("relabel_configs[0] (action: drop)"),
        "{reason}"
    );
    assert!(
        dropped[0].text().contains("env=\"dev\""),
        "{}",
        dropped[0].text()
    );

    // Cluster: this control plane leads; both members with their load.
    let dom = browser.dom(&format!("{cp}/cluster")).await?;
    ensure!(loaded(&dom), "cluster page not loaded: {dom}");
    let leader = elements(&dom, "span")
        .into_iter()
        .chain(elements(&dom, "div"))
        .chain(elements(&dom, "td"))
        .find(|e| e.attr("id") == Some("leader"))
        .map(|e| e.text());
    assert_eq!(leader.as_deref().map(str::trim), Some("leader"), "{dom}");
    let members: BTreeSet<String> = with_class(&dom, "tr", "member")
        .iter()
        .filter_map(|m| m.attr("data-id").map(str::to_string))
        .collect();
    assert_eq!(members, ids);
    assert_eq!(with_class(&dom, "div", "load-bar").len(), 2, "{dom}");
    // The moves table: rows, or its empty state (both scrapers may have
    // joined within the startup grace).
    let moves = by_id(&dom, "table", "moves").expect("table#moves");
    assert!(
        !with_class(moves.inner, "tr", "move").is_empty() || moves.text().contains("no moves yet"),
        "{}",
        moves.text()
    );

    // Graph: a range query draws one line per series and a legend; the
    // table tab lists the instant result; a bad query shows its error.
    let dom = browser
        .dom(&format!("{st}/graph?expr=demo&range=5m"))
        .await?;
    ensure!(loaded(&dom), "graph page not loaded: {dom}");
    let lines = with_class(&dom, "path", "series-line");
    assert_eq!(lines.len(), 2, "{dom}");
    assert!(lines
        .iter()
        .all(|l| l.attr("d").is_some_and(|d| d.len() > 10)));
    let legend = with_class(&dom, "li", "legend-item");
    assert_eq!(legend.len(), 2);
    assert!(legend.iter().any(|l| l.text().contains("kind=\"a\"")));
    let dom = browser
        .dom(&format!("{st}/graph?expr=demo&tab=table"))
        .await?;
    ensure!(loaded(&dom), "table tab not loaded: {dom}");
    let table = by_id(&dom, "table", "result").expect("table#result");
    let text = table.text();
    assert!(text.contains("kind=\"a\"") && text.contains('7'), "{text}");
    assert!(text.contains("kind=\"b\"") && text.contains('3'), "{text}");
    let dom = browser
        .dom(&format!("{st}/graph?expr=sum%28%28&range=5m"))
        .await?;
    ensure!(loaded(&dom), "graph page with an error not loaded: {dom}");
    let error = by_id(&dom, "div", "error").expect("div#error").text();
    assert!(
        error.contains("bad_data") && error.contains("unclosed left parenthesis"),
        "{error}"
    );

    // TSDB status: the series per metric name.
    let dom = browser.dom(&format!("{st}/tsdb-status")).await?;
    ensure!(loaded(&dom), "TSDB status page not loaded: {dom}");
    let by_metric = by_id(&dom, "table", "by-metric").expect("table#by-metric");
    let demo = with_class(by_metric.inner, "tr", "row")
        .into_iter()
        .find(|r| {
            r.all("td")
                .first()
                .is_some_and(|c| c.text().trim() == "demo")
        })
        .expect("a row for demo");
    assert_eq!(demo.all("td")[1].text().trim(), "2");
    let head = by_id(&dom, "table", "head-stats").expect("table#head-stats");
    assert!(head.text().contains("Number of series"), "{}", head.text());

    for (name, url) in [
        ("targets", format!("{cp}/targets")),
        ("service-discovery", format!("{cp}/service-discovery")),
        ("cluster", format!("{cp}/cluster")),
        (
            "graph",
            format!("{st}/graph?expr=demo%20or%20rate%28demo_requests_total%5B1m%5D%29&range=5m"),
        ),
        ("tsdb-status", format!("{st}/tsdb-status")),
    ] {
        browser
            .screenshot(&url, &shots.join(format!("{name}.png")))
            .await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_a_read_token_asks_for_it() -> Result<()> {
    let tokens = tempfile::tempdir()?;
    let read = tokens.path().join("read");
    std::fs::write(&read, "s3cret\n")?;
    let read = read.display().to_string();
    let cluster = Cluster::builder()
        .config("scrape_configs: []\n")
        .extra_args(
            &["--read-token-file", &read],
            &["--read-token-file", &read],
            &[],
        )
        .build()
        .await?;
    let browser = Browser::new()?;
    for url in [
        format!("http://{}/targets", cluster.control_http),
        format!("http://{}/tsdb-status", cluster.storage_http),
    ] {
        let dom = browser.dom(&url).await?;
        assert!(
            elements(&dom, "input")
                .iter()
                .any(|i| i.attr("id") == Some("token")),
            "{url}: no token form: {dom}"
        );
        assert!(!loaded(&dom), "{url} drew data without its token");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_scrape_url_is_shown_but_is_no_link() -> Result<()> {
    let good = TargetServer::start(EXPOSITION).await?;
    // Relabeling may make any scheme of an address with a port (as in
    // Prometheus); the page must not turn it into a script link.
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: web\n    static_configs:\n      - targets: ['{good}']\n  - job_name: evil\n    static_configs:\n      - targets: ['{good}']\n    relabel_configs:\n      - target_label: __scheme__\n        replacement: javascript\n",
        good = good.addr
    );
    let cluster = Cluster::builder().config(&config).build().await?;
    let cp = format!("http://{}", cluster.control_http);
    eventually(Duration::from_secs(30), || async {
        let t = get_data(&cluster.http, &format!("{cp}/api/v1/targets"))
            .await
            .ok()?;
        (t["activeTargets"].as_array()?.len() == 2).then_some(())
    })
    .await?;
    let dom = Browser::new()?.dom(&format!("{cp}/targets")).await?;
    ensure!(loaded(&dom), "targets page not loaded: {dom}");
    let links: Vec<_> = with_class(&dom, "td", "endpoint")
        .iter()
        .flat_map(|td| td.all("a"))
        .collect();
    assert_eq!(links.len(), 2, "{dom}");
    for link in links {
        let text = link.text();
        if text.starts_with("javascript:") {
            assert_eq!(link.attr("href"), None, "{}", link.open);
        } else {
            assert_eq!(link.attr("href"), Some(text.as_str()), "{}", link.open);
        }
    }
    Ok(())
}
