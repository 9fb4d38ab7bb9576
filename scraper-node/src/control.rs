//! The scraper's session with the control plane.
//!
//! One task keeps a `Session` stream open to one of the configured control
//! plane endpoints (rotating on failure, following `NotLeader` hints except
//! to a control plane whose session just failed: one that hangs is still
//! named leader until its lease runs out), sends a
//! Hello with the targets it runs, applies every Assignment to the
//! [`ScrapeManager`], and sends a Status (health per target, also the
//! heartbeat) every status interval. While no control plane is reachable the
//! manager keeps running its last assignment.
//!
//! Shutdown (SIGTERM, or a `Drain` from the control plane, which cancels
//! the same token) drains: the session says Goodbye and stays open; the control
//! plane moves every target away with a handover time, each loop scrapes up
//! to it and hands over, and once none is left the remaining loops stop and
//! the ingest client flushes what they sent. A drain outlives sessions: when
//! the stream ends before every target is handed over (no leader, a leader
//! change, the leader killed), or no control plane answered when the drain
//! began, the scraper keeps scraping what it runs and opens sessions again,
//! with `Hello.draining`, until a leader has moved everything away. Only
//! the drain deadline stops it earlier; the targets it then stops are logged
//! and counted (`scrapegrid_scraper_drain_targets_abandoned_total`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use scrapegrid_common::telemetry::Progress;
use scrapegrid_proto::v1 as pb;
use scrapegrid_proto::v1::control_plane_client::ControlPlaneClient;

use crate::manager::ScrapeManager;
use crate::metrics;

/// The longest pause between two session attempts after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How long a control plane whose session failed is not taken as the
/// leader on another's word: the others name a leader that hangs (paused,
/// its host gone) until its lease runs out.
const DISTRUST: Duration = Duration::from_secs(5);

/// How long stopped loops may take to hand in their last batch (a fetch in
/// flight) before they are aborted.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Who this scraper is and where the control planes are.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    pub scraper_id: String,
    /// TLS and the join token for the control planes.
    pub security: scrapegrid_common::security::ClientSecurity,
    pub http_addr: String,
    pub endpoints: Vec<String>,
    pub status_interval: Duration,
    /// How long a drain may take in all: handovers and delivery.
    pub drain_timeout: Duration,
    /// Set while the scraper is a member of a leader's shard set (its
    /// session open, its first snapshot applied) and not draining: what
    /// `/-/ready` answers.
    pub ready: Arc<AtomicBool>,
}

enum End {
    /// Shut down with nothing left to hand over.
    Drained,
    /// The drain deadline passed.
    DeadlinePassed,
    NotLeader(String),
    Failed(String),
}

/// Runs sessions until `cancel` and the drain that follows, then stops
/// every scrape loop; returns the drain deadline, for the delivery of what
/// the loops sent (now when there was no drain).
pub async fn run(
    config: SessionConfig,
    mut manager: ScrapeManager,
    cancel: CancellationToken,
) -> Instant {
    let mut next = 0usize;
    let mut hint: Option<String> = None;
    let mut backoff = Duration::from_millis(100);
    let mut drain: Option<Instant> = None;
    let mut failed: HashMap<String, Instant> = HashMap::new();
    loop {
        if let Some(deadline) = drain {
            if manager.is_idle() {
                tracing::info!("every target handed over");
                break;
            }
            if Instant::now() >= deadline {
                abandon(&manager);
                break;
            }
        }
        let endpoint = hint.take().unwrap_or_else(|| {
            let e = config.endpoints[next % config.endpoints.len()].clone();
            next += 1;
            e
        });
        let ended = session(&config, &endpoint, &mut manager, &cancel, &mut drain).await;
        config.ready.store(false, Ordering::Relaxed);
        match ended {
            End::Drained => break,
            End::DeadlinePassed => {
                abandon(&manager);
                break;
            }
            End::NotLeader(leader) => {
                tracing::info!(%endpoint, %leader, "control plane is not the leader");
                // A leader is being elected: ask again soon, so that every
                // scraper is back within the new leader's startup grace.
                backoff = Duration::from_millis(100);
                let distrusted = failed
                    .get(&leader)
                    .is_some_and(|at| at.elapsed() < DISTRUST);
                if distrusted {
                    tracing::info!(%leader, "that leader's session just failed; asking the next control plane");
                } else if !leader.is_empty() && leader != endpoint {
                    hint = Some(leader);
                    continue;
                }
            }
            End::Failed(error) => {
                tracing::warn!(%endpoint, %error, draining = drain.is_some(), "control plane session failed; keeping the last assignment");
                failed.insert(endpoint.clone(), Instant::now());
                // Go on after the endpoint that failed, so a leader that
                // stopped answering (the hint other control planes still
                // give until its lease runs out) is not asked twice in a row.
                if let Some(p) = config.endpoints.iter().position(|e| *e == endpoint) {
                    next = p + 1;
                }
            }
        }
        tokio::select! {
            _ = cancel.cancelled(), if drain.is_none() => {
                drain = Some(start_drain(&config));
                backoff = Duration::from_millis(100);
            }
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    let deadline = drain.unwrap_or_else(Instant::now);
    manager
        .stop_all(deadline.max(Instant::now()) + STOP_GRACE)
        .await;
    deadline
}

/// Starts a drain now; returns its deadline.
fn start_drain(config: &SessionConfig) -> Instant {
    tracing::info!(deadline = ?config.drain_timeout, "draining: handing targets over");
    Instant::now() + config.drain_timeout
}

/// Logs and counts the targets a drain stops at its deadline.
fn abandon(manager: &ScrapeManager) {
    let targets = manager.unfinished();
    ::metrics::counter!(metrics::DRAIN_TARGETS_ABANDONED).increment(targets as u64);
    tracing::error!(
        targets,
        "drain deadline passed before a leader moved these targets away; stopping them"
    );
}

async fn session(
    config: &SessionConfig,
    endpoint: &str,
    manager: &mut ScrapeManager,
    cancel: &CancellationToken,
    drain: &mut Option<Instant>,
) -> End {
    // A control plane that stops answering without closing the connection
    // (paused, or its host gone) must be noticed long before a new leader
    // gives up on this scraper (the membership timeout, many status
    // intervals): an HTTP/2 ping every status interval, answered within
    // one (at least a second), or the session ends and the next endpoint
    // is tried.
    let ping = config.status_interval;
    let ep = match config.security.endpoint(endpoint) {
        Ok(e) => e
            .connect_timeout(Duration::from_secs(2))
            .http2_keep_alive_interval(ping)
            .keep_alive_timeout(ping.max(Duration::from_secs(1)))
            .keep_alive_while_idle(true)
            .tcp_nodelay(true),
        Err(e) => return End::Failed(e),
    };
    let channel = loop {
        tokio::select! {
            _ = cancel.cancelled(), if drain.is_none() => *drain = Some(start_drain(config)),
            _ = until(*drain) => return End::DeadlinePassed,
            c = ep.connect() => match c {
                Ok(c) => break c,
                Err(e) => return End::Failed(format!("connect: {e}")),
            },
        }
    };
    let (tx, rx) = mpsc::channel(16);
    let hello = pb::Hello {
        scraper_id: config.scraper_id.clone(),
        http_addr: config.http_addr.clone(),
        version: env!("CARGO_PKG_VERSION").into(),
        running: manager.running(),
        draining: drain.is_some(),
    };
    let _ = tx.try_send(pb::ScraperMessage {
        msg: Some(pb::scraper_message::Msg::Hello(hello)),
    });
    if drain.is_some() {
        // For a control plane that does not read `Hello.draining`.
        let _ = tx.try_send(goodbye());
    }
    let mut client = ControlPlaneClient::new(channel).max_decoding_message_size(256 << 20);
    let opened = tokio::select! {
        _ = until(*drain) => return End::DeadlinePassed,
        r = client.session({
            let mut request = tonic::Request::new(ReceiverStream::new(rx));
            config.security.authorize(&mut request);
            request
        }) => r,
    };
    let mut inbound = match opened {
        Ok(r) => r.into_inner(),
        Err(e) => return End::Failed(format!("session: {e}")),
    };
    tracing::info!(%endpoint, scraper = %config.scraper_id, draining = drain.is_some(), "control plane session open");
    let mut tick = tokio::time::interval(config.status_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut progress: Option<(Progress, u64)> = None;
    loop {
        if drain.is_some() && manager.is_idle() {
            tracing::info!("every target handed over");
            return End::Drained;
        }
        if drain.is_some() {
            let left = manager.unfinished() as u64;
            let (p, total) = progress.get_or_insert_with(|| {
                (
                    Progress::new("draining: handing targets over (targets)"),
                    left,
                )
            });
            p.tick(total.saturating_sub(left), Some(*total));
        }
        let poll = Duration::from_millis(if drain.is_some() { 50 } else { 3_600_000 });
        tokio::select! {
            _ = cancel.cancelled(), if drain.is_none() => {
                if tx.try_send(goodbye()).is_err() {
                    return End::Failed("goodbye could not be sent".into());
                }
                config.ready.store(false, Ordering::Relaxed);
                *drain = Some(start_drain(config));
            }
            _ = until(*drain) => return End::DeadlinePassed,
            _ = tokio::time::sleep(poll) => {}
            m = inbound.message() => match m {
                Ok(Some(pb::ControlMessage { msg: Some(pb::control_message::Msg::Assignment(a)) })) => {
                    crate::clock::observe(a.sent_at_ms);
                    if a.full && drain.is_none() {
                        config.ready.store(true, Ordering::Relaxed);
                    }
                    manager.apply(a)
                }
                Ok(Some(pb::ControlMessage { msg: Some(pb::control_message::Msg::NotLeader(n)) })) => {
                    return End::NotLeader(n.leader_endpoint)
                }
                Ok(Some(pb::ControlMessage { msg: Some(pb::control_message::Msg::Clock(c)) })) => {
                    crate::clock::observe(c.sent_at_ms);
                }
                Ok(Some(pb::ControlMessage { msg: Some(pb::control_message::Msg::Drain(_)) })) => {
                    // As SIGTERM: the same token, so the node stops when
                    // the drain ends; the next turn of the loop says Goodbye.
                    tracing::info!(%endpoint, "the control plane asked this scraper to drain");
                    cancel.cancel();
                }
                Ok(Some(_)) => {}
                Ok(None) => return End::Failed("stream closed by the control plane".into()),
                Err(e) => return End::Failed(e.to_string()),
            },
            _ = tick.tick() => {
                let status = pb::Status { targets: manager.health() };
                let msg = pb::ScraperMessage { msg: Some(pb::scraper_message::Msg::Status(status)) };
                if tx.try_send(msg).is_err() {
                    return End::Failed("status could not be sent".into());
                }
            }
        }
    }
}

fn goodbye() -> pb::ScraperMessage {
    pb::ScraperMessage {
        msg: Some(pb::scraper_message::Msg::Goodbye(pb::Goodbye {})),
    }
}

/// Resolves at `deadline`; never without one.
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
