//! Target metadata through the cluster's life: the storage node serves each
//! target's HELP/TYPE/UNIT (`/api/v1/targets/metadata`, `/api/v1/metadata`)
//! after a `kill -9` and restart of the storage node (the scrapers send it
//! again on their new streams), after a scraper drains and its targets move
//! (the new owner sends it), and a target that leaves the config loses its
//! metadata while the others keep theirs. (What the metadata is, case by
//! case, is compared with Prometheus in the differential suite.)

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use scrapegrid_tests::{consistently, eventually, Cluster, TargetServer};

fn config(a: &[&str], b: Option<&str>) -> String {
    let mut c = format!(
        "global: {{scrape_interval: 1s, scrape_timeout: 500ms}}
scrape_configs:
  - job_name: a
    static_configs: [{{targets: {a:?}}}]
"
    );
    if let Some(b) = b {
        c.push_str(&format!(
            "  - job_name: b\n    static_configs: [{{targets: [{b:?}]}}]\n"
        ));
    }
    c
}

/// instance -> its `metric type help` entries.
async fn by_target(cluster: &Cluster) -> Option<BTreeMap<String, BTreeSet<String>>> {
    let data = cluster.api("/api/v1/targets/metadata").await.ok()?;
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in data.as_array()? {
        out.entry(m["target"]["instance"].as_str()?.to_string())
            .or_default()
            .insert(format!(
                "{} {} {}",
                m["metric"].as_str()?,
                m["type"].as_str()?,
                m["help"].as_str()?
            ));
    }
    Some(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_survives_a_storage_crash_and_a_move_and_leaves_with_its_target() {
    let body =
        |help: &str| format!("# HELP m {help}\n# TYPE m counter\nm_total 1\n# TYPE g gauge\ng 2\n");
    let t1 = TargetServer::start(&body("one")).await.unwrap();
    let t2 = TargetServer::start(&body("two")).await.unwrap();
    let t3 = TargetServer::start(&body("three")).await.unwrap();
    let mut cluster = Cluster::builder()
        .scrapers(2)
        .config(&config(&[&t1.addr, &t2.addr], Some(&t3.addr)))
        .build()
        .await
        .unwrap();
    let want: BTreeMap<String, BTreeSet<String>> = [(&t1, "one"), (&t2, "two"), (&t3, "three")]
        .iter()
        .map(|(t, h)| {
            (
                t.addr.clone(),
                BTreeSet::from([format!("m counter {h}"), "g gauge ".to_string()]),
            )
        })
        .collect();
    let complete = || async {
        let got = by_target(&cluster).await?;
        (got == want).then_some(())
    };
    eventually(Duration::from_secs(30), complete).await.unwrap();
    let metric = cluster.api("/api/v1/metadata?metric=m").await.unwrap();
    assert_eq!(
        metric["m"].as_array().map(Vec::len),
        Some(3),
        "three distinct HELP texts of m: {metric}"
    );

    // The storage node forgets everything in a kill -9; the scrapers send it
    // again on their new streams.
    cluster.storage.as_mut().unwrap().kill9();
    cluster.restart_storage().await.unwrap();
    eventually(Duration::from_secs(30), || async {
        let got = by_target(&cluster).await?;
        (got == want).then_some(())
    })
    .await
    .unwrap();

    // A scraper drains: its targets move, and their new owner sends them
    // (a changed HELP shows it is the new owner's, not a copy left over).
    cluster
        .terminate_scraper("scraper-0", Duration::from_secs(30))
        .unwrap();
    for (t, h) in [(&t1, "one"), (&t2, "two"), (&t3, "three")] {
        t.set(200, &body(&format!("{h} now")));
    }
    let want: BTreeMap<String, BTreeSet<String>> = want
        .into_iter()
        .map(|(k, v)| {
            let v = v
                .into_iter()
                .map(|e| {
                    if e.starts_with("m ") {
                        format!("{e} now")
                    } else {
                        e
                    }
                })
                .collect();
            (k, v)
        })
        .collect();
    eventually(Duration::from_secs(20), || async {
        (by_target(&cluster).await? == want).then_some(())
    })
    .await
    .unwrap();
    consistently(
        Duration::from_secs(2),
        "metadata kept after the move",
        || async { by_target(&cluster).await.is_some_and(|got| got == want) },
    )
    .await
    .unwrap();

    // Job b leaves the config: its target's metadata goes, the rest stays.
    std::fs::write(&cluster.config, config(&[&t1.addr, &t2.addr], None)).unwrap();
    let r = cluster
        .http
        .post(format!("http://{}/-/reload", cluster.control_http))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
    let mut rest = want.clone();
    rest.remove(&t3.addr);
    eventually(Duration::from_secs(20), || async {
        let got = by_target(&cluster).await?;
        (got == rest).then_some(())
    })
    .await
    .unwrap();
}
