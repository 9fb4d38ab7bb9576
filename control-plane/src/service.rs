//! The gRPC `ControlPlane` service: thin glue between scraper streams and the
//! coordinator. Each `Session` stream becomes a member session: the Hello
//! joins, every Status is a heartbeat, a Goodbye drains, and the end of the
//! stream leaves. A control plane that does not lead answers `NotLeader`
//! with the leader's endpoint. `Reload` re-reads the configuration file.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use scrapegrid_proto::v1 as pb;
use scrapegrid_proto::v1::scraper_message::Msg;

use crate::coordinator::{inputs, Coordinator, Event, Hello, OUTBOUND_CAPACITY};
use crate::ha::Election;
use crate::reload::Reloader;

pub struct ControlPlaneService {
    coordinator: Coordinator,
    reloader: Reloader,
    election: Arc<dyn Election>,
    sessions: AtomicU64,
}

impl ControlPlaneService {
    pub fn new(coordinator: Coordinator, reloader: Reloader, election: Arc<dyn Election>) -> Self {
        Self {
            coordinator,
            reloader,
            election,
            sessions: AtomicU64::new(1),
        }
    }

    /// The answer of a control plane that does not lead.
    async fn not_leader(&self) -> ControlStream {
        let leader = match self.election.leader().await {
            Ok(l) => l.unwrap_or_default(),
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

    async fn session(
        &self,
        request: Request<Streaming<pb::ScraperMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
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
        let hello = Hello::try_from(hello).map_err(|e| Status::invalid_argument(e.to_string()))?;
        if !self.coordinator.is_leading() {
            return Ok(Response::new(self.not_leader().await));
        }
        let scraper_id = hello.scraper_id.clone();
        let session = self.sessions.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(OUTBOUND_CAPACITY);
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
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
