//! Live reload end to end: an invalid config changes nothing; a valid one
//! restarts only what changed (unchanged targets keep their scraper and their
//! scrape loop, with no gap in their samples); SIGHUP, `POST /-/reload` and
//! the gRPC `Reload` call all reload.

use std::collections::BTreeMap;
use std::time::Duration;

use scrapegrid_proto::v1 as pb;
use scrapegrid_tests::{eventually, now_secs, sample_value, Cluster, TargetServer};

fn config(keep: &[&str], change: &str, change_relabel: bool, added: Option<&str>) -> String {
    let keep: Vec<String> = keep.iter().map(|a| format!("'{a}'")).collect();
    let mut c = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: keep\n    static_configs:\n      - targets: [{}]\n  - job_name: change\n    static_configs:\n      - targets: ['{change}']\n",
        keep.join(", ")
    );
    if change_relabel {
        c.push_str("    metric_relabel_configs:\n      - target_label: reloaded\n        replacement: 'yes'\n      - source_labels: [__name__]\n        regex: c_dropped\n        action: drop\n");
    }
    if let Some(a) = added {
        c.push_str(&format!(
            "  - job_name: added\n    static_configs:\n      - targets: ['{a}']\n"
        ));
    }
    c
}

async fn owners(cluster: &Cluster) -> BTreeMap<String, String> {
    let t = cluster.targets().await.unwrap();
    t["activeTargets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let instance = t["labels"]["instance"].as_str().unwrap().to_string();
            (
                instance,
                t["scraper"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Sums a counter over every scraper's /metrics.
async fn scraper_counter(cluster: &Cluster, name: &str) -> f64 {
    let mut total = 0.0;
    for (_, addr, p) in &cluster.scrapers {
        if p.is_none() {
            continue;
        }
        let text = cluster
            .http
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        total += text
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_restarts_only_what_changed() -> anyhow::Result<()> {
    let t1 = TargetServer::start("k 1\n").await?;
    let t2 = TargetServer::start("k 2\n").await?;
    let t3 = TargetServer::start("c 3\nc_dropped 1\n").await?;
    let t4 = TargetServer::start("a 4\n").await?;
    let v1 = config(&[&t1.addr, &t2.addr], &t3.addr, false, None);
    let cluster = Cluster::builder().scrapers(2).config(&v1).build().await?;
    eventually(Duration::from_secs(30), || async {
        let up = cluster.query("up").await.ok()?;
        (up.len() == 3 && up.iter().all(|s| sample_value(s) == 1.0)).then_some(())
    })
    .await?;
    assert_eq!(cluster.query("c_dropped").await?.len(), 1);
    let owners_before = owners(&cluster).await;
    let loops_before = scraper_counter(&cluster, "scrapegrid_scraper_loops_started_total").await;
    assert!(loops_before >= 3.0, "loops started: {loops_before}");

    // An invalid config is refused with its error; nothing changes.
    let broken = v1.replace(
        "  - job_name: change\n",
        "  - job_name: change\n    scrape_intervl: 5s\n",
    );
    std::fs::write(&cluster.config, &broken)?;
    let r = cluster
        .http
        .post(format!("http://{}/-/reload", cluster.control_http))
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 500);
    let body = r.text().await?;
    for part in ["prometheus.yml", "job \"change\"", "scrape_intervl"] {
        assert!(body.contains(part), "reload error lacks {part:?}: {body}");
    }
    let mut grpc = pb::control_plane_client::ControlPlaneClient::connect(format!(
        "http://{}",
        cluster.control_grpc
    ))
    .await?;
    let err = grpc.reload(pb::ReloadRequest {}).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("scrape_intervl"));
    assert_eq!(owners(&cluster).await, owners_before);

    // A valid change: job `change` gets metric relabeling, job `added` is new,
    // job `keep` is untouched.
    let reload_at = now_secs();
    let v2 = config(&[&t1.addr, &t2.addr], &t3.addr, true, Some(&t4.addr));
    std::fs::write(&cluster.config, &v2)?;
    let r = grpc.reload(pb::ReloadRequest {}).await?.into_inner();
    assert_eq!(r.jobs, 3);
    eventually(Duration::from_secs(15), || async {
        let relabeled = cluster.query("c{reloaded=\"yes\"}").await.ok()?;
        let added = cluster.query("up{job=\"added\"}").await.ok()?;
        (relabeled.len() == 1 && added.len() == 1 && sample_value(&added[0]) == 1.0).then_some(())
    })
    .await?;
    // The restarted loop inherited its series: the one the new rule drops got
    // a stale marker at once instead of lingering for the 5-minute lookback.
    eventually(Duration::from_secs(10), || async {
        cluster
            .query("c_dropped")
            .await
            .ok()?
            .is_empty()
            .then_some(())
    })
    .await?;
    let owners_after = owners(&cluster).await;
    for t in [&t1.addr, &t2.addr] {
        assert_eq!(
            owners_after[t.as_str()],
            owners_before[t.as_str()],
            "target {t} moved on reload"
        );
    }
    let loops_after = scraper_counter(&cluster, "scrapegrid_scraper_loops_started_total").await;
    assert_eq!(
        loops_after - loops_before,
        2.0,
        "only the changed and the new target's loops started"
    );

    // Once three scrapes after the reload are stored (ingest may lag on a
    // loaded machine), the unchanged targets must show no pause.
    for t in [&t1.addr, &t2.addr] {
        let ts = eventually(Duration::from_secs(15), || async {
            let window = (now_secs() - reload_at + 5.0).ceil() as u64;
            let raw = cluster
                .query(&format!("up{{instance=\"{t}\"}}[{window}s]"))
                .await
                .ok()?;
            let ts: Vec<f64> = raw.first()?["values"]
                .as_array()?
                .iter()
                .filter_map(|v| v[0].as_f64())
                .collect();
            (ts.iter().filter(|x| **x > reload_at).count() >= 3).then_some(ts)
        })
        .await?;
        let max_gap = ts.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
        assert!(
            max_gap < 1.5,
            "samples of {t} around the reload at {reload_at}: {ts:?}"
        );
    }

    // SIGHUP reloads too: removing job `added` stales its series.
    let v3 = config(&[&t1.addr, &t2.addr], &t3.addr, true, None);
    std::fs::write(&cluster.config, &v3)?;
    let pid = cluster.control.as_ref().unwrap().pid();
    unsafe { libc::kill(pid, libc::SIGHUP) };
    eventually(Duration::from_secs(15), || async {
        let added = cluster.query("up{job=\"added\"}").await.ok()?;
        added.is_empty().then_some(())
    })
    .await?;
    assert!(!owners(&cluster).await.contains_key(t4.addr.as_str()));
    assert_eq!(owners(&cluster).await.len(), 3);
    Ok(())
}
