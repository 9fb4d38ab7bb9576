//! The scraper's session with the control plane.
//!
//! One task keeps a `Session` stream open to one of the configured control
//! plane endpoints (rotating on failure, following `NotLeader` hints), sends a
//! Hello with the targets it runs, applies every Assignment to the
//! [`ScrapeManager`], and sends a Status (health per target, also the
//! heartbeat) every status interval. While no control plane is reachable the
//! manager keeps running its last assignment.
//!
//! Shutdown drains: the session says Goodbye and stays open; the control
//! plane moves every target away with a handover time, each loop scrapes up
//! to it and hands over, and once none is left (or after
//! [`HANDOVER_DEADLINE`], or when no control plane answers) the remaining
//! loops stop and the ingest client flushes what they sent.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use scrapegrid_proto::v1 as pb;
use scrapegrid_proto::v1::control_plane_client::ControlPlaneClient;

use crate::manager::ScrapeManager;

/// How long a draining scraper waits for its targets to be handed over.
/// A handover ends within an interval of the handover time, so intervals
/// longer than this are cut short (the new owner starts at its slot anyway).
pub const HANDOVER_DEADLINE: Duration = Duration::from_secs(20);

/// Who this scraper is and where the control planes are.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    pub scraper_id: String,
    pub http_addr: String,
    pub endpoints: Vec<String>,
    pub status_interval: Duration,
}

enum End {
    Shutdown,
    NotLeader(String),
    Failed(String),
}

/// Runs sessions until `cancel`, then stops every scrape loop.
pub async fn run(config: SessionConfig, mut manager: ScrapeManager, cancel: CancellationToken) {
    let mut next = 0usize;
    let mut hint: Option<String> = None;
    let mut backoff = Duration::from_millis(100);
    loop {
        let endpoint = hint.take().unwrap_or_else(|| {
            let e = config.endpoints[next % config.endpoints.len()].clone();
            next += 1;
            e
        });
        match session(&config, &endpoint, &mut manager, &cancel).await {
            End::Shutdown => break,
            End::NotLeader(leader) => {
                tracing::info!(%endpoint, %leader, "control plane is not the leader");
                if !leader.is_empty() {
                    hint = Some(leader);
                }
            }
            End::Failed(error) => {
                tracing::warn!(%endpoint, %error, "control plane session failed; keeping the last assignment");
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        }
        backoff = Duration::from_millis(100);
    }
    manager.stop_all().await;
}

async fn session(
    config: &SessionConfig,
    endpoint: &str,
    manager: &mut ScrapeManager,
    cancel: &CancellationToken,
) -> End {
    let ep = match tonic::transport::Endpoint::from_shared(endpoint.to_string()) {
        Ok(e) => e
            .connect_timeout(Duration::from_secs(2))
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_secs(5))
            .tcp_nodelay(true),
        Err(e) => return End::Failed(format!("invalid endpoint: {e}")),
    };
    let channel = tokio::select! {
        _ = cancel.cancelled() => return End::Shutdown,
        c = ep.connect() => match c {
            Ok(c) => c,
            Err(e) => return End::Failed(format!("connect: {e}")),
        },
    };
    let (tx, rx) = mpsc::channel(16);
    let hello = pb::Hello {
        scraper_id: config.scraper_id.clone(),
        http_addr: config.http_addr.clone(),
        version: env!("CARGO_PKG_VERSION").into(),
        running: manager.running(),
    };
    let _ = tx.try_send(pb::ScraperMessage {
        msg: Some(pb::scraper_message::Msg::Hello(hello)),
    });
    let mut client = ControlPlaneClient::new(channel).max_decoding_message_size(256 << 20);
    let mut inbound = match client.session(ReceiverStream::new(rx)).await {
        Ok(r) => r.into_inner(),
        Err(e) => return End::Failed(format!("session: {e}")),
    };
    tracing::info!(%endpoint, scraper = %config.scraper_id, "control plane session open");
    let mut tick = tokio::time::interval(config.status_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut drain_deadline: Option<tokio::time::Instant> = None;
    loop {
        if drain_deadline.is_some() && manager.is_idle() {
            tracing::info!("every target handed over");
            return End::Shutdown;
        }
        let poll = Duration::from_millis(if drain_deadline.is_some() {
            50
        } else {
            3_600_000
        });
        tokio::select! {
            _ = cancel.cancelled(), if drain_deadline.is_none() => {
                let bye = pb::ScraperMessage { msg: Some(pb::scraper_message::Msg::Goodbye(pb::Goodbye {})) };
                if tx.try_send(bye).is_err() {
                    return End::Shutdown;
                }
                tracing::info!("draining: handing targets over");
                drain_deadline = Some(tokio::time::Instant::now() + HANDOVER_DEADLINE);
            }
            _ = tokio::time::sleep_until(drain_deadline.unwrap_or_else(tokio::time::Instant::now)), if drain_deadline.is_some() => {
                tracing::warn!("draining: handover deadline passed; stopping the remaining loops");
                return End::Shutdown;
            }
            _ = tokio::time::sleep(poll) => {}
            m = inbound.message() => match m {
                Ok(Some(pb::ControlMessage { msg: Some(pb::control_message::Msg::Assignment(a)) })) => manager.apply(a),
                Ok(Some(pb::ControlMessage { msg: Some(pb::control_message::Msg::NotLeader(n)) })) => {
                    return End::NotLeader(n.leader_endpoint)
                }
                Ok(Some(_)) => {}
                Ok(None) if drain_deadline.is_some() => return End::Shutdown,
                Ok(None) => return End::Failed("stream closed by the control plane".into()),
                Err(_) if drain_deadline.is_some() => return End::Shutdown,
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
