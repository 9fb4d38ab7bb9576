//! `scrapegridctl`: the scrapegrid command line. It checks configs and
//! talks to a running cluster over the same HTTP APIs a user would curl:
//! the control plane's (members, targets, reload, drain) and the storage node's
//! Prometheus API (queries). Tables for people by default, `--output json`
//! for scripts (the API's `data`, filtered as asked).
//!
//! Exit codes: 0 done; 1 the server refused (an invalid config, a query
//! error, a control plane that is not the leader, a refused reload); 2 bad
//! usage; 3 no such target (or scraper, for `drain`); 4 a server could not
//! be reached.

mod api;
mod table;

use std::path::PathBuf;

use api::{Api, Failure};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(name = "scrapegridctl", version, about = "The scrapegrid command line")]
struct Cli {
    /// The control plane's HTTP address (the leader's, for members and
    /// targets).
    #[arg(
        long,
        env = "SCRAPEGRID_CONTROL_PLANE",
        default_value = "http://127.0.0.1:9092",
        global = true
    )]
    control_plane: String,
    /// The storage node's HTTP address (the Prometheus API).
    #[arg(
        long,
        env = "SCRAPEGRID_STORAGE",
        default_value = "http://127.0.0.1:9090",
        global = true
    )]
    storage: String,
    /// A file holding the read token (the nodes' --read-token-file), sent
    /// as a bearer token.
    #[arg(long, global = true)]
    token_file: Option<PathBuf>,
    /// `table` for people, `json` for scripts.
    #[arg(long, short, value_enum, default_value_t = Output::Table, global = true)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Checks prometheus.yml files as the control plane loads them (every
    /// error with file, job and field); exit 1 when one is invalid.
    CheckConfig {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// The scrapers the leading control plane shards targets over.
    Members,
    /// The active targets: job, instance, health, owner, last scrape.
    Targets {
        /// Only this job.
        #[arg(long)]
        job: Option<String>,
        /// Only targets in this health: up, down or unknown.
        #[arg(long)]
        health: Option<String>,
        /// Only targets this scraper owns.
        #[arg(long)]
        owner: Option<String>,
    },
    /// One target by its instance label or scrape URL: owner, labels,
    /// discovered labels, last error; exit 3 when there is none.
    Target { instance: String },
    /// An instant query (`/api/v1/query`).
    Query {
        expr: String,
        /// Evaluation time (RFC 3339 or Unix seconds); now by default.
        #[arg(long)]
        time: Option<String>,
    },
    /// A range query (`/api/v1/query_range`).
    QueryRange {
        expr: String,
        #[arg(long)]
        start: String,
        #[arg(long)]
        end: String,
        /// Seconds or a duration (`15s`).
        #[arg(long)]
        step: String,
    },
    /// Makes the control plane re-read its configuration (`POST /-/reload`).
    Reload,
    /// Tells one scraper to drain, as its SIGTERM would: it hands every
    /// target over, delivers what it scraped and exits. Ask the leader;
    /// exit 3 when no member has that id.
    Drain {
        /// The scraper's --id (see `members`).
        scraper: String,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cli = Cli::parse();
    let code = match run(cli).await {
        Ok(code) => code,
        Err(f) => {
            eprintln!("error: {f}");
            f.exit_code()
        }
    };
    std::process::exit(code);
}

async fn run(cli: Cli) -> Result<i32, Failure> {
    let token = match &cli.token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| Failure::Refused(format!("--token-file {}: {e}", path.display())))?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    let api = Api::new(token);
    let cp = cli.control_plane.trim_end_matches('/');
    let storage = cli.storage.trim_end_matches('/');
    let json_out = cli.output == Output::Json;
    match cli.command {
        Command::CheckConfig { files } => Ok(check_config(&files, json_out)),
        Command::Members => {
            let mut data = api
                .data(&format!("{cp}/api/v1/scrapegrid/cluster"), &[])
                .await?;
            // A follower names the leader: ask it, over the same scheme
            // (the token is not sent on in the clear).
            let same_scheme = |l: &&str| l.split("://").next() == cp.split("://").next();
            let named = data["leaderHttp"].as_str().filter(same_scheme);
            if let (false, Some(leader)) = (data["leader"] == true, named) {
                let leader = leader.trim_end_matches('/').to_string();
                data = api
                    .data(&format!("{leader}/api/v1/scrapegrid/cluster"), &[])
                    .await?;
            }
            if data["leader"] != true {
                return Err(Failure::Refused(format!(
                    "the control plane at {cp} is not the leader and knows none: ask the \
                     one whose scrapegrid_control_leader is 1"
                )));
            }
            if json_out {
                print_json(&data);
            } else {
                let rows: Vec<Vec<String>> = members(&data)
                    .iter()
                    .map(|m| {
                        ["id", "targets", "series", "draining", "httpAddr"]
                            .iter()
                            .map(|k| table::text(&m[k]))
                            .collect()
                    })
                    .collect();
                table::print(&["ID", "TARGETS", "SERIES", "DRAINING", "HTTP"], &rows);
                println!(
                    "generation {}, {} targets, {} unassigned",
                    table::text(&data["generation"]),
                    data["targets"],
                    data["unassigned"]
                );
            }
            Ok(0)
        }
        Command::Targets { job, health, owner } => {
            let all = targets(&api, cp).await?;
            let chosen: Vec<&Value> = all
                .iter()
                .filter(|t| job.as_ref().is_none_or(|j| t["scrapePool"] == **j))
                .filter(|t| health.as_ref().is_none_or(|h| t["health"] == **h))
                .filter(|t| owner.as_ref().is_none_or(|o| t["scraper"] == **o))
                .collect();
            if json_out {
                print_json(&json!(chosen));
            } else {
                let rows: Vec<Vec<String>> = chosen
                    .iter()
                    .map(|t| {
                        vec![
                            table::text(&t["scrapePool"]),
                            table::text(&t["labels"]["instance"]),
                            table::text(&t["health"]),
                            table::text(&t["scraper"]),
                            table::text(&t["lastScrape"]),
                            format!("{:.3}s", t["lastScrapeDuration"].as_f64().unwrap_or(0.0)),
                            table::text(&t["lastError"]),
                        ]
                    })
                    .collect();
                table::print(
                    &[
                        "JOB",
                        "INSTANCE",
                        "HEALTH",
                        "OWNER",
                        "LAST SCRAPE",
                        "DURATION",
                        "LAST ERROR",
                    ],
                    &rows,
                );
            }
            Ok(0)
        }
        Command::Target { instance } => {
            let all = targets(&api, cp).await?;
            let found: Vec<&Value> = all
                .iter()
                .filter(|t| t["labels"]["instance"] == *instance || t["scrapeUrl"] == *instance)
                .collect();
            if found.is_empty() {
                eprintln!("error: no active target has instance or scrape URL {instance:?}");
                return Ok(3);
            }
            if json_out {
                print_json(&json!(found));
                return Ok(0);
            }
            for (i, t) in found.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                for (name, key) in [
                    ("job", "scrapePool"),
                    ("scrape url", "scrapeUrl"),
                    ("owner", "scraper"),
                    ("health", "health"),
                    ("last scrape", "lastScrape"),
                    ("duration", "lastScrapeDuration"),
                    ("last error", "lastError"),
                    ("interval", "scrapeInterval"),
                ] {
                    println!("{name:<18}{}", table::text(&t[key]));
                }
                println!("{:<18}{}", "labels", table::labels(&t["labels"]));
                println!(
                    "{:<18}{}",
                    "discovered labels",
                    table::labels(&t["discoveredLabels"])
                );
            }
            Ok(0)
        }
        Command::Query { expr, time } => {
            let mut q = vec![("query", expr)];
            if let Some(t) = time {
                q.push(("time", t));
            }
            let data = api.data(&format!("{storage}/api/v1/query"), &q).await?;
            print_result(&data, json_out);
            Ok(0)
        }
        Command::QueryRange {
            expr,
            start,
            end,
            step,
        } => {
            let q = [
                ("query", expr),
                ("start", start),
                ("end", end),
                ("step", step),
            ];
            let data = api
                .data(&format!("{storage}/api/v1/query_range"), &q)
                .await?;
            print_result(&data, json_out);
            Ok(0)
        }
        Command::Reload => {
            api.post(&format!("{cp}/-/reload"), &[]).await?;
            if json_out {
                print_json(&json!({"reloaded": true}));
            } else {
                println!("reloaded: the new configuration is in force");
            }
            Ok(0)
        }
        Command::Drain { scraper } => {
            let url = format!("{cp}/api/v1/scrapegrid/drain");
            api.post(&url, &[("scraper", scraper.clone())]).await?;
            if json_out {
                print_json(&json!({"draining": scraper}));
            } else {
                println!("draining {scraper}: it hands its targets over and exits (see `members`)");
            }
            Ok(0)
        }
    }
}

/// The output of `control-plane check-config`, or a JSON list of files and
/// their errors; returns the exit code.
fn check_config(files: &[PathBuf], json_out: bool) -> i32 {
    let mut code = 0;
    let mut report = Vec::new();
    for file in files {
        let errors = scrapegrid_common::config::check_file(file);
        if !errors.is_empty() {
            code = 1;
        }
        if json_out {
            let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
            report.push(json!({"file": file.display().to_string(), "valid": errors.is_empty(), "errors": errors}));
            continue;
        }
        println!("Checking {}", file.display());
        if errors.is_empty() {
            println!(
                "  SUCCESS: {} is a valid prometheus config file",
                file.display()
            );
        }
        for e in &errors {
            println!("  FAILED: {e}");
        }
    }
    if json_out {
        print_json(&json!(report));
    }
    code
}

fn members(data: &Value) -> Vec<Value> {
    data["members"].as_array().cloned().unwrap_or_default()
}

async fn targets(api: &Api, cp: &str) -> Result<Vec<Value>, Failure> {
    let data = api
        .data(
            &format!("{cp}/api/v1/targets"),
            &[("state", "active".into())],
        )
        .await?;
    Ok(data["activeTargets"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// A query result: a table of series and values (a matrix one row per
/// point), or the API's `data` as JSON.
fn print_result(data: &Value, json_out: bool) {
    if json_out {
        print_json(data);
        return;
    }
    let result = &data["result"];
    match data["resultType"].as_str() {
        Some("vector") => {
            let rows: Vec<Vec<String>> = result
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| vec![table::labels(&s["metric"]), table::text(&s["value"][1])])
                .collect();
            table::print(&["SERIES", "VALUE"], &rows);
        }
        Some("matrix") => {
            let mut rows = Vec::new();
            for s in result.as_array().into_iter().flatten() {
                let series = table::labels(&s["metric"]);
                for p in s["values"].as_array().into_iter().flatten() {
                    rows.push(vec![series.clone(), table::text(&p[0]), table::text(&p[1])]);
                }
            }
            table::print(&["SERIES", "TIME", "VALUE"], &rows);
        }
        // Scalars and strings: `[time, value]`.
        _ => println!("{}", table::text(&result[1])),
    }
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}
