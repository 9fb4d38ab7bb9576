//! `scrapegridctl` (issue 16) against a real cluster on loopback: two
//! scrapers, a target that answers and one that does not. Each command's
//! table and JSON output, the filters, a remote drain, and the documented
//! exit codes (0 done, 1 refused, 2 usage, 3 no such target or scraper, 4
//! unreachable).

use std::process::{Command, Output};
use std::time::Duration;

use scrapegrid_tests::{bin, eventually, free_addr, now_secs, Cluster, TargetServer};
use serde_json::Value;

struct Ctl {
    control_plane: String,
    storage: String,
}

impl Ctl {
    fn new(cluster: &Cluster) -> Self {
        Ctl {
            control_plane: format!("http://{}", cluster.control_http),
            storage: format!("http://{}", cluster.storage_http),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(bin("scrapegridctl"))
            .arg("--control-plane")
            .arg(&self.control_plane)
            .arg("--storage")
            .arg(&self.storage)
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs a command that must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_lists_shows_queries_and_reloads_with_documented_exit_codes() -> anyhow::Result<()>
{
    let good = TargetServer::start("# TYPE demo gauge\ndemo{kind=\"a\"} 7\n").await?;
    // Nothing listens there: the target is down with a connection error.
    let dead = free_addr();
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: web\n    static_configs:\n      - targets: ['{}']\n  - job_name: gone\n    static_configs:\n      - targets: ['{dead}']\n",
        good.addr
    );
    let mut cluster = Cluster::builder()
        .scrapers(2)
        .config(&config)
        .build()
        .await?;
    let ctl = Ctl::new(&cluster);
    let ids: Vec<String> = cluster.scrapers.iter().map(|s| s.0.clone()).collect();

    // Members: both scrapers, in the table and in JSON.
    let members = eventually(Duration::from_secs(30), || async {
        let m = ctl.json(&["members"]);
        (m["members"].as_array()?.len() == 2 && m["unassigned"] == 0).then_some(m)
    })
    .await?;
    let table = ctl.ok(&["members"]);
    assert!(table.starts_with("ID"), "{table}");
    for id in &ids {
        assert!(table.contains(id.as_str()), "{table}");
    }
    assert_eq!(members["targets"], 2);

    // Targets: wait until both have been scraped.
    eventually(Duration::from_secs(30), || async {
        let t = ctl.json(&["targets"]);
        let t = t.as_array()?;
        (t.len() == 2 && t.iter().all(|t| t["health"] != "unknown")).then_some(())
    })
    .await?;
    let down = ctl.json(&["targets", "--health", "down"]);
    let down = down.as_array().unwrap();
    assert_eq!(down.len(), 1, "{down:?}");
    assert_eq!(down[0]["labels"]["instance"], dead.as_str());
    assert!(
        down[0]["lastError"]
            .as_str()
            .unwrap()
            .contains("connection refused"),
        "{down:?}"
    );
    let web = ctl.ok(&["targets", "--job", "web"]);
    assert_eq!(web.lines().count(), 2, "a header and one target: {web}");
    assert!(web.contains(&good.addr) && web.contains(" up "), "{web}");
    let owner = down[0]["scraper"].as_str().unwrap().to_string();
    let owned = ctl.json(&["targets", "--owner", &owner]);
    assert!(owned
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["scraper"] == owner.as_str()));
    let nobody = ctl.json(&["targets", "--owner", "no-such-scraper"]);
    assert_eq!(nobody, Value::Array(Vec::new()));

    // One target: owner, labels, last error.
    let one = ctl.ok(&["target", &dead]);
    assert!(one.contains(&format!("owner             {owner}")), "{one}");
    assert!(one.contains("job=\"gone\""), "{one}");
    assert!(one.contains("connection refused"), "{one}");
    let missing = ctl.run(&["target", "127.0.0.1:1"]);
    assert_eq!(missing.status.code(), Some(3));

    // Queries.
    let up = eventually(Duration::from_secs(30), || async {
        let v = ctl.json(&["query", "up"]);
        (v["result"].as_array()?.len() >= 2).then_some(v)
    })
    .await?;
    assert_eq!(up["resultType"], "vector");
    let table = ctl.ok(&["query", "demo"]);
    assert!(
        table.contains("demo{") && table.contains("kind=\"a\""),
        "{table}"
    );
    assert!(
        table.lines().nth(1).unwrap().trim_end().ends_with('7'),
        "{table}"
    );
    // A range with points at several steps (the series is new: wait).
    let range = eventually(Duration::from_secs(30), || async {
        let now = now_secs();
        let (start, end) = (format!("{}", now - 5.0), format!("{now}"));
        let r = ctl.ok(&[
            "query-range",
            "demo",
            "--start",
            &start,
            "--end",
            &end,
            "--step",
            "1s",
        ]);
        (r.lines().count() >= 4).then_some(r)
    })
    .await?;
    assert!(range.starts_with("SERIES"), "{range}");
    assert!(
        range.lines().skip(1).all(|l| l.trim_end().ends_with(" 7")),
        "{range}"
    );
    let bad = ctl.run(&["query", "sum(("]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("error"));

    // Check and reload: a valid file, then an invalid one the control plane
    // refuses (exit 1, the config in force unchanged).
    let checked = ctl.run(&["check-config", cluster.config.to_str().unwrap()]);
    assert_eq!(checked.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&checked.stdout).contains("SUCCESS"));
    assert!(ctl.ok(&["reload"]).contains("reloaded"));
    std::fs::write(
        &cluster.config,
        "scrape_configs:\n  - job_name: web\n    scrape_timeout: 20s\n    scrape_interval: 10s\n",
    )?;
    let refused = ctl.run(&["reload"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("scrape_timeout"));
    let invalid = ctl.run(&[
        "--output",
        "json",
        "check-config",
        cluster.config.to_str().unwrap(),
    ]);
    assert_eq!(invalid.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&invalid.stdout)?;
    assert_eq!(report[0]["valid"], false);

    // Drain: an unknown scraper is exit 3 (gRPC: NOT_FOUND); a member hands
    // its targets to the other one and exits 0, as on SIGTERM.
    let unknown = ctl.run(&["drain", "no-such-scraper"]);
    assert_eq!(unknown.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no-such-scraper"));
    let mut grpc = scrapegrid_proto::v1::control_plane_client::ControlPlaneClient::connect(
        format!("http://{}", cluster.control_grpc),
    )
    .await?;
    let status = grpc
        .drain(scrapegrid_proto::v1::DrainRequest {
            scraper_id: "no-such-scraper".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    drop(grpc);
    // A browser page on another site cannot drain (no token here).
    let drain_url = format!("http://{}/api/v1/scrapegrid/drain", cluster.control_http);
    let cross = cluster
        .http
        .post(&drain_url)
        .query(&[("scraper", ids[0].as_str())])
        .header("origin", "http://elsewhere.example")
        .send()
        .await?;
    assert_eq!(cross.status().as_u16(), 403);
    let same = cluster
        .http
        .post(&drain_url)
        .query(&[("scraper", "no-such-scraper")])
        .header("origin", format!("http://{}", cluster.control_http))
        .send()
        .await?;
    assert_eq!(same.status().as_u16(), 404, "the same origin passes");
    let (gone, kept) = (&ids[0], &ids[1]);
    assert!(ctl
        .ok(&["drain", gone])
        .contains(&format!("draining {gone}")));
    let code = cluster.scrapers[0]
        .2
        .as_mut()
        .expect("running")
        .wait_exit(Duration::from_secs(60))?;
    assert_eq!(code, Some(0), "a drained scraper exits 0");
    let members = eventually(Duration::from_secs(30), || async {
        let m = ctl.json(&["members"]);
        (m["members"].as_array()?.len() == 1 && m["unassigned"] == 0).then_some(m)
    })
    .await?;
    assert_eq!(members["members"][0]["id"], kept.as_str());
    let owned = ctl.json(&["targets", "--owner", kept]);
    assert_eq!(owned.as_array().map(Vec::len), Some(2), "{owned}");
    let log = cluster.scrapers[0].2.as_ref().expect("kept").log();
    assert!(log.contains("asked this scraper to drain"), "{log}");

    // Usage and unreachable servers.
    assert_eq!(ctl.run(&["no-such-command"]).status.code(), Some(2));
    let unreachable = Command::new(bin("scrapegridctl"))
        .args([
            "--storage",
            &format!("http://{}", free_addr()),
            "query",
            "up",
        ])
        .output()?;
    assert_eq!(unreachable.status.code(), Some(4));
    Ok(())
}
