//! Followers answer the cluster's HTTP API as the leader does (issue 16,
//! and a hole issue 17 listed): with two control planes on real etcd, the
//! follower's `/api/v1/targets` is the leader's (every target with its
//! owner), `/api/v1/scrapegrid/moves` and a drain request reach the
//! leader, and its `/api/v1/scrapegrid/cluster` says it follows and where
//! the leader is. After the leader is killed, the survivor leads and
//! answers for itself.

use std::time::Duration;

use anyhow::{Context, Result};
use scrapegrid_tests::audit::FleetServer;
use scrapegrid_tests::etcd::Etcd;
use scrapegrid_tests::ha::{counter_body, owners_in, HaCluster};
use scrapegrid_tests::{eventually, get_data};
use serde_json::Value;

const TARGETS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_answers_with_the_leaders_view() -> Result<()> {
    let etcd = Etcd::start().await?;
    let fleet = FleetServer::start(TARGETS, counter_body).await?;
    let mut cluster = HaCluster::builder()
        .control_planes(2)
        .etcd(&etcd)
        .scrapers(2)
        .build(&fleet)
        .await?;
    eventually(Duration::from_secs(20), || cluster.owners(TARGETS))
        .await
        .context("every target owned")?;
    let leader = cluster.leader().await.context("a leader")?;
    let follower = 1 - leader;
    let (lhttp, fhttp) = (
        cluster.controls[leader].http.clone(),
        cluster.controls[follower].http.clone(),
    );

    // Targets: the leader's, through the follower, marked forwarded (read
    // from both until they agree: owners may still move while the second
    // scraper joins).
    let targets = |addr: String| {
        let http = cluster.http.clone();
        async move {
            let resp = http
                .get(format!("http://{addr}/api/v1/targets"))
                .send()
                .await
                .ok()?;
            let forwarded = resp.headers().contains_key("x-scrapegrid-forwarded");
            let body: Value = resp.json().await.ok()?;
            Some((forwarded, owners_in(&body["data"])))
        }
    };
    eventually(Duration::from_secs(20), || async {
        let (forwarded, through) = targets(fhttp.clone()).await?;
        let (direct, own) = targets(lhttp.clone()).await?;
        (forwarded && !direct && through.len() == TARGETS && through == own).then_some(())
    })
    .await
    .context("the follower answers with the leader's targets")?;

    // Its own cluster view: a follower, pointing at the leader.
    let own = get_data(
        &cluster.http,
        &format!("http://{fhttp}/api/v1/scrapegrid/cluster"),
    )
    .await?;
    assert_eq!(own["leader"], false, "{own}");
    assert_eq!(own["leaderHttp"], format!("http://{lhttp}"), "{own}");

    // Moves and drain reach the leader (an unknown scraper: its 404).
    let moves = get_data(
        &cluster.http,
        &format!("http://{fhttp}/api/v1/scrapegrid/moves"),
    )
    .await?;
    assert!(moves.is_array(), "{moves}");
    let drain = cluster
        .http
        .post(format!(
            "http://{fhttp}/api/v1/scrapegrid/drain?scraper=nobody"
        ))
        .send()
        .await?;
    assert_eq!(drain.status().as_u16(), 404);

    // The leader gone, the survivor leads and answers for itself.
    cluster.kill_control(leader);
    eventually(Duration::from_secs(30), || async {
        (cluster.leader().await? == follower).then_some(())
    })
    .await?;
    let after = eventually(Duration::from_secs(30), || async {
        let resp = cluster
            .http
            .get(format!("http://{fhttp}/api/v1/targets"))
            .send()
            .await
            .ok()?;
        let forwarded = resp.headers().contains_key("x-scrapegrid-forwarded");
        let body: Value = resp.json().await.ok()?;
        let o = owners_in(&body["data"]);
        (!forwarded && o.len() == TARGETS).then_some(o)
    })
    .await?;
    assert_eq!(after.len(), TARGETS);
    Ok(())
}
