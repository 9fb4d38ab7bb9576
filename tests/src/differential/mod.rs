//! The differential suite: real Prometheus 2.42 and a scrapegrid cluster
//! scrape the same fixture under the same `prometheus.yml`, and what each
//! stores is compared case by case.
//!
//! - [`table`] is the case table and [`cases`] what a case is;
//! - [`fixture`] serves every case from one loopback port, a scrape counter
//!   per (case, client) so both clients see the same body sequence;
//! - [`jobs`] groups cases into jobs and writes the shared config;
//! - [`proto`] encodes protobuf expositions;
//! - [`compare`] turns range queries and the targets API into comparable
//!   token sequences and field views; `api` compares the targets API,
//!   exemplars and scrape headers, `metadata` the metadata APIs; `report`
//!   renders the verdicts.
//!
//! [`run`] starts everything, waits until every case has been scraped
//! `phases x repeats + 2` times by both clients (and the removed file SD
//! target has gone stale), then compares and returns a [`Report`].

pub mod cases;
pub mod compare;
pub mod fixture;
pub mod jobs;
pub mod proto;
pub mod table;

mod api;
mod metadata;
mod report;

use report::shorten;
pub use report::{CaseResult, Report};

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::prometheus::Prometheus;
use crate::{free_addr, now_secs, Cluster};
use cases::Case;
use compare::{SeriesKey, SeriesTokens};
use fixture::{Client, Fixture, RECORDED_HEADERS};

/// Query-range resolution.
const STEP: f64 = 0.25;
/// How long to wait for every case to be scraped enough by both clients.
const SCRAPE_DEADLINE: Duration = Duration::from_secs(70);
/// How long scrapegrid gets to mark the removed target stale after
/// Prometheus did.
const REMOVAL_GRACE: Duration = Duration::from_secs(10);

/// Runs the whole suite.
pub async fn run() -> Result<Report> {
    let started = Instant::now();
    let cases = table::all();
    let fixture = Fixture::start(&cases).await?;
    let dir = tempfile::tempdir()?;
    let closed = free_addr();
    let file_sd = dir.path().join("filesd.json");
    write_atomic(&file_sd, &jobs::file_sd_json(&cases, &fixture.addr, &[]))?;
    let yaml = jobs::config_yaml(&cases, &fixture.addr, &closed, &file_sd);
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, &yaml)?;

    let start = now_secs() - 1.0;
    let prom = Prometheus::start(&config).await?;
    let cluster = Cluster::builder()
        .scrapers(1)
        .config(&yaml)
        .build()
        .await
        .context("starting the scrapegrid cluster with the shared prometheus.yml")?;

    let under_scraped = wait_for_scrapes(&cases, &fixture, &file_sd, &prom, &cluster).await?;

    let end = now_secs();
    let n = ((end - start) / STEP).floor() as usize + 1;
    let query = r#"{__name__=~".+"}"#;
    let prom_series = compare::matrix_tokens(
        &prom.query_range(query, start, end, STEP).await?,
        start,
        STEP,
        n,
    );
    let mut global = Vec::new();
    let sg_series = match cluster.query_range(query, start, end, STEP).await {
        Ok(m) => compare::matrix_tokens(&m, start, STEP, n),
        Err(e) => {
            global.push(format!("scrapegrid query_range failed: {e:#}"));
            SeriesTokens::new()
        }
    };

    let mut results: BTreeMap<&'static str, CaseResult> = cases
        .iter()
        .map(|c| {
            (
                c.name,
                CaseResult {
                    name: c.name,
                    job: c.job.name(),
                    what: c.what,
                    diffs: Vec::new(),
                    suite_errors: Vec::new(),
                    ignored: Vec::new(),
                },
            )
        })
        .collect();
    for (name, (p, s)) in &under_scraped {
        let r = results.get_mut(name).unwrap();
        if *p
            < cases
                .iter()
                .find(|c| c.name == *name)
                .unwrap()
                .scrapes_needed()
        {
            r.suite_errors
                .push(format!("prometheus scraped it only {p} times"));
        }
        r.diffs.push(format!(
            "scraped {s} times by scrapegrid, {p} by prometheus, before the deadline"
        ));
    }

    if std::env::var_os("DIFFERENTIAL_DUMP").is_some() {
        // What Prometheus stored, to check the suite by eye.
        for (key, (labels, tokens)) in &prom_series {
            let case = case_of_series(&cases, labels).map_or("?", |c| c.name);
            println!("prometheus {case}: {} [{}]", shorten(key), tokens.join(" "));
        }
    }
    compare_series(&cases, &prom_series, &sg_series, &mut results, &mut global);
    check_prometheus_up(&cases, &prom_series, &mut results);
    api::compare_targets(&prom, &cluster, &mut results, &mut global).await;
    api::compare_exemplars(
        &cases,
        &prom,
        &cluster,
        start,
        end,
        &mut results,
        &mut global,
    )
    .await;
    metadata::compare(&cases, &prom, &cluster, &mut results, &mut global).await;
    api::compare_headers(&cases, &fixture, &mut global);
    check_deviations(&cases, &mut results);
    let mut headers = Vec::new();
    for h in RECORDED_HEADERS {
        for (who, client) in [
            ("prometheus", Client::Prometheus),
            ("scrapegrid", Client::Scrapegrid),
        ] {
            let values: Vec<String> = fixture.all_header_values(client, h).into_iter().collect();
            headers.push(format!("{h} from {who}: {values:?}"));
        }
    }
    for ua in fixture.strangers() {
        global.push(format!("a request from neither client, User-Agent {ua:?}"));
    }

    let mut order: Vec<CaseResult> = Vec::new();
    for c in &cases {
        order.push(results.remove(c.name).unwrap());
    }
    Ok(Report {
        cases: order,
        global,
        headers,
        elapsed: started.elapsed(),
    })
}

/// Polls the fixture's counters until every counted case was scraped enough
/// by both clients; removes the file SD case when due and waits for its
/// end-of-run staleness. Returns the cases still short at the deadline.
async fn wait_for_scrapes(
    cases: &[Arc<Case>],
    fixture: &Fixture,
    file_sd: &Path,
    prom: &Prometheus,
    cluster: &Cluster,
) -> Result<BTreeMap<&'static str, (u64, u64)>> {
    let t0 = Instant::now();
    let mut removed: Vec<&'static str> = Vec::new();
    let mut prom_stale: BTreeMap<&'static str, Instant> = BTreeMap::new();
    let mut sg_stale: BTreeSet<&'static str> = BTreeSet::new();
    loop {
        for c in cases {
            let Some(after) = c.remove_after else {
                continue;
            };
            if !removed.contains(&c.name)
                && fixture.count(c.name, Client::Prometheus) >= after
                && fixture.count(c.name, Client::Scrapegrid) >= after
            {
                removed.push(c.name);
                write_atomic(file_sd, &jobs::file_sd_json(cases, &fixture.addr, &removed))?;
            }
        }
        for name in &removed {
            let q = format!("up{{instance=\"{name}\"}}");
            if !prom_stale.contains_key(name) && prom.query(&q).await.is_ok_and(|r| r.is_empty()) {
                prom_stale.insert(name, Instant::now());
            }
            if !sg_stale.contains(name) && cluster.query(&q).await.is_ok_and(|r| r.is_empty()) {
                sg_stale.insert(name);
            }
        }
        let short: BTreeMap<&'static str, (u64, u64)> = cases
            .iter()
            .filter(|c| c.counted)
            .map(|c| {
                (
                    c.name,
                    (
                        fixture.count(c.name, Client::Prometheus),
                        fixture.count(c.name, Client::Scrapegrid),
                    ),
                    c.scrapes_needed(),
                )
            })
            .filter(|(_, (p, s), need)| p < need || s < need)
            .map(|(name, counts, _)| (name, counts))
            .collect();
        let removals_due = cases.iter().filter(|c| c.remove_after.is_some()).count();
        let removals_done = removed.len() == removals_due
            && removed.iter().all(|n| {
                sg_stale.contains(n)
                    || prom_stale
                        .get(n)
                        .is_some_and(|t| t.elapsed() > REMOVAL_GRACE)
            });
        if (short.is_empty() && removals_done) || t0.elapsed() > SCRAPE_DEADLINE {
            return Ok(short);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The case a series belongs to, by its `instance` label: the case name,
/// an alias, or the longest case name that prefixes it.
fn case_of_series<'a>(
    cases: &'a [Arc<Case>],
    labels: &BTreeMap<String, String>,
) -> Option<&'a Case> {
    let instance = labels.get("instance")?;
    cases
        .iter()
        .find(|c| c.name == instance || c.aliases.contains(instance))
        .or_else(|| {
            cases
                .iter()
                .filter(|c| instance.starts_with(c.name))
                .max_by_key(|c| c.name.len())
        })
        .or_else(|| {
            // tr_address: instance is the fixture's address.
            cases.iter().find(|c| {
                !c.static_instance && c.aliases.is_empty() && instance.starts_with("127.0.0.1:")
            })
        })
        .map(|c| &**c)
}

type CaseSeries<'a> = BTreeMap<&'static str, BTreeMap<&'a SeriesKey, &'a Vec<String>>>;

fn by_case<'a>(
    cases: &[Arc<Case>],
    series: &'a SeriesTokens,
    unattributed: &mut BTreeMap<&'a SeriesKey, &'a Vec<String>>,
) -> CaseSeries<'a> {
    let mut out = CaseSeries::new();
    for (key, (labels, tokens)) in series {
        match case_of_series(cases, labels) {
            Some(c) => {
                out.entry(c.name).or_default().insert(key, tokens);
            }
            None => {
                unattributed.insert(key, tokens);
            }
        }
    }
    out
}

fn compare_series(
    cases: &[Arc<Case>],
    prom: &SeriesTokens,
    sg: &SeriesTokens,
    results: &mut BTreeMap<&'static str, CaseResult>,
    global: &mut Vec<String>,
) {
    let (mut pu, mut su) = (BTreeMap::new(), BTreeMap::new());
    let p = by_case(cases, prom, &mut pu);
    let s = by_case(cases, sg, &mut su);
    let empty = BTreeMap::new();
    for c in cases {
        let d = compare::diff_series(
            p.get(c.name).unwrap_or(&empty),
            s.get(c.name).unwrap_or(&empty),
        );
        results.get_mut(c.name).unwrap().diffs.extend(d);
    }
    global.extend(
        compare::diff_series(&pu, &su)
            .into_iter()
            .map(|d| format!("unattributed {d}")),
    );
}

/// Accepts exactly the declared deviation of each case: its differences are
/// then shown as such; anything else, or a declared difference that did not
/// happen, stays a failure.
fn check_deviations(cases: &[Arc<Case>], results: &mut BTreeMap<&'static str, CaseResult>) {
    for c in cases {
        let Some((why, expected)) = &c.deviation else {
            continue;
        };
        let r = results.get_mut(c.name).unwrap();
        let got: BTreeSet<String> = r.diffs.iter().cloned().collect();
        let want: BTreeSet<String> = expected.iter().cloned().collect();
        if got == want {
            let diffs = std::mem::take(&mut r.diffs);
            r.ignored
                .extend(diffs.into_iter().map(|d| format!("deviation ({why}): {d}")));
        } else {
            for missing in want.difference(&got) {
                r.diffs
                    .push(format!("declared deviation did not happen: {missing}"));
            }
        }
    }
}

/// Checks the suite against Prometheus: its `up` tokens for each case.
fn check_prometheus_up(
    cases: &[Arc<Case>],
    prom: &SeriesTokens,
    results: &mut BTreeMap<&'static str, CaseResult>,
) {
    for c in cases {
        let ups: Vec<String> = prom
            .values()
            .filter(|(l, _)| {
                l.get("__name__").map(String::as_str) == Some("up")
                    && case_of_series(cases, l).is_some_and(|x| x.name == c.name)
            })
            .map(|(_, t)| t.join(" "))
            .collect();
        let got = ups.join(" | ");
        if got != c.expect_up {
            results.get_mut(c.name).unwrap().suite_errors.push(format!(
                "prometheus stored up [{got}], the case expects [{}]",
                c.expect_up
            ));
        }
    }
}

fn write_atomic(path: &Path, content: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
