//! The gRPC `ControlPlane` service: thin glue between scraper streams and the
//! coordinator. Each `Session` stream becomes a member session: the Hello
//! joins, every Status is a heartbeat, a Goodbye drains, and the end of the
//! stream leaves. A control plane that does not lead answers `NotLeader`
//! with the leader's endpoint. `Reload` re-reads the configuration file;
//! `Drain` tells one member to drain.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use scrapegrid_proto::v1 as pb;
use scrapegrid_proto::v1::scraper_message::Msg;

use crate::coordinator::{inputs, Coordinator, DrainRequest, Event, Hello, OUTBOUND_CAPACITY};
use crate::ha::advertised::Advertised;
use crate::ha::Election;
use crate::reload::Reloader;

pub struct ControlPlaneService {
    coordinator: Coordinator,
    reloader: Reloader,
    election: Arc<dyn Election>,
    sessions: AtomicU64,
    /// Whether the gRPC server speaks TLS.
    tls: bool,
}

impl ControlPlaneService {
    pub fn new(
        coordinator: Coordinator,
        reloader: Reloader,
        election: Arc<dyn Election>,
        tls: bool,
    ) -> Self {
        Self {
            coordinator,
            reloader,
            election,
            sessions: AtomicU64::new(1),
            tls,
        }
    }

    /// The answer of a control plane that does not lead.
    async fn not_leader(&self) -> ControlStream {
        let leader = match self.election.leader().await {
            Ok(l) => l.map(|v| Advertised::decode(&v).grpc).unwrap_or_default(),
            Err(error) => {
                tracing::debug!(%error, "leader unknown");
                String::new()
            }
        };
        let msg = pb::ControlMessage {
            msg: Some(pb::control_message::Msg::NotLeader(pb::NotLeader {
                leader_endpoint: leader,
            })),
        };
        Box::pin(tokio_stream::once(Ok(msg)))
    }
}

type ControlStream = Pin<Box<dyn Stream<Item = Result<pb::ControlMessage, Status>> + Send>>;

#[tonic::async_trait]
impl pb::control_plane_server::ControlPlane for ControlPlaneService {
    type SessionStream = ControlStream;

    async fn reload(
        &self,
        _request: Request<pb::ReloadRequest>,
    ) -> Result<Response<pb::ReloadResponse>, Status> {
        match self.reloader.reload().await {
            Ok(config) => Ok(Response::new(pb::ReloadResponse {
                jobs: config.scrape_configs.len() as u32,
                warnings: config.warnings.clone(),
            })),
            Err(error) => Err(Status::invalid_argument(error.to_string())),
        }
    }

    async fn drain(
        &self,
        request: Request<pb::DrainRequest>,
    ) -> Result<Response<pb::DrainResponse>, Status> {
        let id = request.into_inner().scraper_id;
        match self.coordinator.request_drain(&id).await {
            DrainRequest::Sent => Ok(Response::new(pb::DrainResponse {})),
            DrainRequest::UnknownMember => {
                Err(Status::not_found(format!("no scraper {id:?} is a member")))
            }
            DrainRequest::NotLeading => Err(Status::unavailable(
                "this control plane does not lead; ask the leader",
            )),
            DrainRequest::Busy => Err(Status::unavailable(format!(
                "scraper {id:?} could not be told (its stream is full or closed); try again"
            ))),
        }
    }

    async fn session(
        &self,
        request: Request<Streaming<pb::ScraperMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        // Inline secrets go only over TLS or to a scraper on this host.
        let remote = request.remote_addr();
        let withhold = !self.tls && !remote.is_some_and(|a| a.ip().is_loopback());
        let mut inbound = request.into_inner();
        let hello = match inbound.message().await? {
            Some(pb::ScraperMessage {
                msg: Some(Msg::Hello(h)),
            }) => h,
            _ => {
                return Err(Status::invalid_argument(
                    "the first message must be a hello",
                ))
            }
        };
        let mut hello =
            Hello::try_from(hello).map_err(|e| Status::invalid_argument(e.to_string()))?;
        if let Some(peer) = remote {
            hello.http_addr = reachable_http_addr(&hello.http_addr, peer.ip());
        }
        if !self.coordinator.is_leading() {
            return Ok(Response::new(self.not_leader().await));
        }
        let scraper_id = hello.scraper_id.clone();
        let session = self.sessions.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(OUTBOUND_CAPACITY);
        send_clock(tx.downgrade());
        self.coordinator
            .send(Event::Join { hello, session, tx })
            .await;
        let coordinator = self.coordinator.clone();
        tokio::spawn(async move {
            loop {
                match inbound.message().await {
                    Ok(Some(pb::ScraperMessage {
                        msg: Some(Msg::Status(status)),
                    })) => {
                        let scraper_id = scraper_id.clone();
                        coordinator
                            .send(Event::Status {
                                scraper_id,
                                session,
                                reports: inputs::reports(status),
                            })
                            .await;
                    }
                    Ok(Some(pb::ScraperMessage {
                        msg: Some(Msg::Goodbye(_)),
                    })) => {
                        let scraper_id = scraper_id.clone();
                        coordinator
                            .send(Event::Drain {
                                scraper_id,
                                session,
                            })
                            .await;
                    }
                    Ok(None) => break,
                    Ok(Some(_)) => {
                        tracing::warn!(scraper = %scraper_id, "unexpected message on session stream");
                    }
                    Err(error) => {
                        tracing::info!(scraper = %scraper_id, %error, "scraper stream ended");
                        break;
                    }
                }
            }
            coordinator
                .send(Event::Leave {
                    scraper_id,
                    session,
                })
                .await;
        });
        let outbound = ReceiverStream::new(rx).map(move |m| match m {
            Ok(m) if withhold => Ok(stamp(withhold_secrets(m))),
            Ok(m) => Ok(stamp(m)),
            other => other,
        });
        Ok(Response::new(Box::pin(outbound)))
    }
}

/// A scraper's HTTP address as others reach it: one bound to every
/// interface (`0.0.0.0:9093`, `[::]:9093`) gets the address its session
/// came from.
fn reachable_http_addr(addr: &str, peer: std::net::IpAddr) -> String {
    match addr.parse::<std::net::SocketAddr>() {
        Ok(a) if a.ip().is_unspecified() => std::net::SocketAddr::new(peer, a.port()).to_string(),
        _ => addr.to_string(),
    }
}

/// `m` with the time it leaves, when it is an assignment or a clock
/// reading: the clock the scraper reads slots and timestamps on
/// (`Assignment.sent_at_ms`, `Clock.sent_at_ms`).
fn stamp(mut m: pb::ControlMessage) -> pb::ControlMessage {
    match &mut m.msg {
        Some(pb::control_message::Msg::Assignment(a)) => {
            a.sent_at_ms = scrapegrid_common::clock::now_ms();
        }
        Some(pb::control_message::Msg::Clock(c)) => {
            c.sent_at_ms = scrapegrid_common::clock::now_ms();
        }
        _ => {}
    }
    m
}

/// How often a session carries the control plane's clock between
/// assignments.
pub const CLOCK_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Sends a [`pb::Clock`] on the session every [`CLOCK_EVERY`] while the
/// session lasts (the coordinator holds its sender; this task holds only a
/// weak one, so the session still ends when the coordinator drops it).
fn send_clock(tx: mpsc::WeakSender<Result<pb::ControlMessage, Status>>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CLOCK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(tx) = tx.upgrade() else { return };
            let clock = pb::ControlMessage {
                msg: Some(pb::control_message::Msg::Clock(pb::Clock::default())),
            };
            // A full stream skips a reading; the next one comes.
            if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(Ok(clock)) {
                return;
            }
        }
    });
}

/// Why a scrape has no inline secret: the scrape error its target shows.
const WITHHELD: &str = "the control plane withheld an inline secret: it sends them only over TLS \
(--grpc-tls-cert) or to a scraper on its own host; use password_file or credentials_file";

/// `m` with every inline secret of its pools replaced by [`WITHHELD`].
fn withhold_secrets(mut m: pb::ControlMessage) -> pb::ControlMessage {
    let Some(pb::control_message::Msg::Assignment(a)) = &mut m.msg else {
        return m;
    };
    for pool in &mut a.pools {
        let Some(auth) = pool.http_client.as_mut().and_then(|h| h.auth.as_mut()) else {
            continue;
        };
        let secret = match auth {
            pb::http_client::Auth::BasicAuth(b) => &mut b.password,
            pb::http_client::Auth::Authorization(a) => &mut a.credentials,
            pb::http_client::Auth::Oauth2(o) => &mut o.client_secret,
        };
        if let Some(s) = secret.as_mut() {
            if matches!(s.value, Some(pb::secret::Value::Inline(_))) {
                s.value = Some(pb::secret::Value::Withheld(WITHHELD.into()));
            }
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_http_addr_takes_the_sessions_address() {
        let peer = "10.1.2.3".parse().unwrap();
        assert_eq!(reachable_http_addr("0.0.0.0:9093", peer), "10.1.2.3:9093");
        assert_eq!(reachable_http_addr("[::]:9093", peer), "10.1.2.3:9093");
        let v6 = "fd00::5".parse().unwrap();
        assert_eq!(reachable_http_addr("[::]:9093", v6), "[fd00::5]:9093");
        assert_eq!(reachable_http_addr("10.9.9.9:9093", peer), "10.9.9.9:9093");
        assert_eq!(reachable_http_addr("", peer), "");
    }

    #[test]
    fn inline_secrets_are_withheld_and_files_kept() {
        let secret = |v| Some(pb::Secret { value: Some(v) });
        let pool = |auth| pb::ScrapePool {
            http_client: Some(pb::HttpClient {
                auth: Some(auth),
                tls: None,
                no_follow_redirects: false,
                no_http2: false,
                proxy_url: String::new(),
            }),
            ..Default::default()
        };
        let m = pb::ControlMessage {
            msg: Some(pb::control_message::Msg::Assignment(pb::Assignment {
                pools: vec![
                    pool(pb::http_client::Auth::BasicAuth(pb::BasicAuth {
                        username: "u".into(),
                        password: secret(pb::secret::Value::Inline("p".into())),
                    })),
                    pool(pb::http_client::Auth::Authorization(pb::Authorization {
                        r#type: "Bearer".into(),
                        credentials: secret(pb::secret::Value::File("/t".into())),
                    })),
                ],
                ..Default::default()
            })),
        };
        let Some(pb::control_message::Msg::Assignment(a)) = withhold_secrets(m).msg else {
            panic!("an assignment");
        };
        let auth = |i: usize| a.pools[i].http_client.as_ref().and_then(|h| h.auth.clone());
        match auth(0) {
            Some(pb::http_client::Auth::BasicAuth(b)) => assert_eq!(
                b.password.and_then(|s| s.value),
                Some(pb::secret::Value::Withheld(WITHHELD.into()))
            ),
            other => panic!("{other:?}"),
        }
        match auth(1) {
            Some(pb::http_client::Auth::Authorization(a)) => assert_eq!(
                a.credentials.and_then(|s| s.value),
                Some(pb::secret::Value::File("/t".into()))
            ),
            other => panic!("{other:?}"),
        }
    }
}
