//! The gRPC `Ingest` service: one task per `Write` stream.
//!
//! The stream task reads the `WriteHello`, asks the writer for the scraper's
//! durable last sequence (refused when a newer process owns the scraper id:
//! the writer's incarnations) and answers `Welcome`. Then for each `Batch` it
//! resolves stream-scoped series references ([`crate::batch`]) and either
//! queues the batch on the writer or, when it is malformed, answers REFUSED/
//! INVALID at once. Answers leave in request order: the task pushes each
//! answer, ready or pending on the writer, into a bounded queue
//! ([`MAX_IN_FLIGHT`]) that the response stream resolves one by one. When
//! the queue is full, the task stops reading requests. The target metadata
//! a batch carries goes to the [`crate::metadata::MetadataStore`] as it arrives.
//!
//! On shutdown the task stops reading, lets the queued answers resolve and
//! ends the stream with UNAVAILABLE, so the scraper reconnects elsewhere or
//! later and resends what was not acked.
//!
//! [`LocalIngest`] opens the same stream from inside the process, without
//! gRPC: a scraper in direct mode hands its messages to its embedded node
//! as they are, with no encoding, HTTP/2 or socket between them.

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use scrapegrid_proto::v1 as pb;
use scrapegrid_proto::v1::write_request::Msg;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status, Streaming};

use crate::batch::{self, RefTable};
use crate::db::Db;
use crate::keys;
use crate::metadata::MetadataStore;
use crate::metrics;
use crate::writer::ownership::Handover;
use crate::writer::{self, PendingAck, WriterHandle};

/// Answers per stream that may wait for the writer at once.
pub const MAX_IN_FLIGHT: usize = 128;

/// Largest accepted `WriteRequest`: a first scrape of a big target carries
/// every label set.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// The `Ingest` gRPC service.
#[derive(Debug, Clone)]
pub struct IngestService {
    writer: WriterHandle,
    /// Read side, for `TakeHandover`.
    db: Arc<Db>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    /// Where the targets' metadata the batches carry goes.
    metadata: Arc<MetadataStore>,
}

impl IngestService {
    /// `tasks` tracks the stream tasks so shutdown can wait for them.
    pub fn new(
        writer: WriterHandle,
        db: Arc<Db>,
        shutdown: CancellationToken,
        tasks: TaskTracker,
        metadata: Arc<MetadataStore>,
    ) -> Self {
        Self {
            writer,
            db,
            shutdown,
            tasks,
            metadata,
        }
    }

    /// Returns the tonic server for this service.
    /// The gRPC service; with `token`, only writers presenting it are
    /// admitted.
    pub fn into_server(
        self,
        token: Option<scrapegrid_common::security::Token>,
    ) -> tonic::service::interceptor::InterceptedService<
        pb::ingest_server::IngestServer<Self>,
        impl tonic::service::Interceptor + Clone,
    > {
        tonic::service::interceptor::InterceptedService::new(
            pb::ingest_server::IngestServer::new(self).max_decoding_message_size(MAX_MESSAGE_BYTES),
            scrapegrid_common::security::require_token(token),
        )
    }
}

impl IngestService {
    /// Starts the task of one `Write` stream reading `requests`; returns
    /// its answers.
    fn open<S>(&self, requests: S) -> Result<ResponseStream, Status>
    where
        S: Stream<Item = Result<pb::WriteRequest, Status>> + Send + Unpin + 'static,
    {
        if self.shutdown.is_cancelled() {
            return Err(Status::unavailable("storage node is shutting down"));
        }
        let (tx, rx) = mpsc::channel(MAX_IN_FLIGHT);
        let stream = StreamTask {
            writer: self.writer.clone(),
            shutdown: self.shutdown.clone(),
            out: tx,
            metadata: self.metadata.clone(),
        };
        self.tasks.spawn(stream.run(requests));
        Ok(Box::pin(ReceiverStream::new(rx).then(Answer::resolve)))
    }
}

/// The `Write` stream opened from inside the process (direct mode's
/// embedded node), without gRPC and without the write token: the embedder
/// creates it, [`crate::run`] fills it once the node runs and empties it at
/// shutdown (a stream open then ends as a gRPC one does).
#[derive(Clone, Debug, Default)]
pub struct LocalIngest(Arc<std::sync::Mutex<Option<IngestService>>>);

/// The answers of a `Write` stream: the Welcome, then one ack per batch.
pub type ResponseStream = Pin<Box<dyn Stream<Item = Result<pb::WriteResponse, Status>> + Send>>;

impl LocalIngest {
    /// Opens a `Write` stream of `requests`; UNAVAILABLE before the node
    /// runs and after it stopped.
    pub fn write<S>(&self, requests: S) -> Result<ResponseStream, Status>
    where
        S: Stream<Item = pb::WriteRequest> + Send + Unpin + 'static,
    {
        let service = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match service {
            Some(s) => s.open(requests.map(Ok)),
            None => Err(Status::unavailable(
                "the embedded storage node is not running",
            )),
        }
    }

    /// Serves `service` until the returned guard drops.
    pub(crate) fn serve(&self, service: IngestService) -> LocalServing {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(service);
        LocalServing(self.clone())
    }
}

/// Empties its [`LocalIngest`] when dropped, so that the writer handle it
/// held does not keep the writer running.
pub(crate) struct LocalServing(LocalIngest);

impl Drop for LocalServing {
    fn drop(&mut self) {
        *self.0 .0.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// An answer in the response queue.
enum Answer {
    Ready(Result<pb::WriteResponse, Status>),
    Pending(PendingAck),
}

impl Answer {
    async fn resolve(self) -> Result<pb::WriteResponse, Status> {
        let ack = match self {
            Answer::Ready(r) => return r,
            Answer::Pending(rx) => rx
                .await
                .map_err(|_| Status::unavailable("writer stopped before acking"))??,
        };
        Ok(ack_response(ack))
    }
}

fn ack_response(ack: pb::Ack) -> pb::WriteResponse {
    pb::WriteResponse {
        msg: Some(pb::write_response::Msg::Ack(ack)),
    }
}

#[tonic::async_trait]
impl pb::ingest_server::Ingest for IngestService {
    type WriteStream = ResponseStream;

    async fn write(
        &self,
        request: Request<Streaming<pb::WriteRequest>>,
    ) -> Result<Response<Self::WriteStream>, Status> {
        self.open(request.into_inner()).map(Response::new)
    }

    async fn take_handover(
        &self,
        request: Request<pb::HandoverRequest>,
    ) -> Result<Response<pb::HandoverResponse>, Status> {
        let req = request.into_inner();
        let db = self.db.clone();
        let key = keys::handover_key(&req.target_id);
        let stored = tokio::task::spawn_blocking(move || db.get(keys::CF_META, &key))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| Status::internal(e.to_string()))?;
        let record = match stored {
            Some(v) => {
                Handover::decode(&v).ok_or_else(|| Status::internal("corrupt handover record"))?
            }
            None => return Ok(Response::new(pb::HandoverResponse::default())),
        };
        if record.generation >= req.generation {
            return Ok(Response::new(pb::HandoverResponse::default()));
        }
        Ok(Response::new(pb::HandoverResponse {
            found: true,
            generation: record.generation,
            timestamp_ms: record.timestamp_ms,
            series: record
                .series
                .iter()
                .map(|l| pb::LabelSet {
                    labels: l.to_proto(),
                })
                .collect(),
        }))
    }
}

/// The state of one `Write` stream.
struct StreamTask {
    writer: WriterHandle,
    shutdown: CancellationToken,
    out: mpsc::Sender<Answer>,
    metadata: Arc<MetadataStore>,
}

impl StreamTask {
    async fn run<S>(self, mut requests: S)
    where
        S: Stream<Item = Result<pb::WriteRequest, Status>> + Unpin,
    {
        metrics::ingest_stream_opened();
        let (scraper_id, incarnation) = match self.hello(&mut requests).await {
            Ok(hello) => hello,
            Err(status) => {
                self.push(Answer::Ready(Err(status))).await;
                metrics::ingest_stream_closed();
                return;
            }
        };
        self.metadata.stream_opened(&scraper_id);
        let end = self.batches(&scraper_id, incarnation, &mut requests).await;
        self.metadata.stream_ended(&scraper_id);
        if let Err(status) = end {
            tracing::debug!(scraper = %scraper_id, status = %status, "ingest stream ended");
            self.push(Answer::Ready(Err(status))).await;
        } else {
            tracing::debug!(scraper = %scraper_id, "ingest stream closed by the scraper");
        }
        metrics::ingest_stream_closed();
    }

    /// Reads the `WriteHello` and answers `Welcome`.
    async fn hello<S>(&self, requests: &mut S) -> Result<(Arc<str>, u64), Status>
    where
        S: Stream<Item = Result<pb::WriteRequest, Status>> + Unpin,
    {
        let first = tokio::select! {
            m = requests.next() => m.transpose()?,
            _ = self.shutdown.cancelled() => {
                return Err(Status::unavailable("storage node is shutting down"));
            }
        };
        let hello = match first.and_then(|r| r.msg) {
            Some(Msg::Hello(h)) => h,
            _ => {
                return Err(Status::invalid_argument(
                    "the first message must be a WriteHello",
                ))
            }
        };
        if hello.scraper_id.is_empty() {
            return Err(Status::invalid_argument("WriteHello.scraper_id is empty"));
        }
        let scraper_id: Arc<str> = hello.scraper_id.into();
        let incarnation = hello.incarnation;
        let last_sequence = match self.writer.hello_as(scraper_id.clone(), incarnation).await {
            Err(e @ crate::error::Error::Superseded { .. }) => {
                tracing::warn!(scraper = %scraper_id, incarnation, "ingest stream refused: a newer process owns this scraper id");
                return Err(e.into());
            }
            other => other?,
        };
        tracing::info!(scraper = %scraper_id, incarnation, last_sequence, "ingest stream opened");
        let welcome = pb::WriteResponse {
            msg: Some(pb::write_response::Msg::Welcome(pb::Welcome {
                last_sequence,
            })),
        };
        if !self.push(Answer::Ready(Ok(welcome))).await {
            return Err(Status::cancelled("response stream closed"));
        }
        Ok((scraper_id, incarnation))
    }

    /// Handles batches until the scraper closes the stream (`Ok`) or the
    /// stream must end with a status (`Err`).
    async fn batches<S>(
        &self,
        scraper_id: &Arc<str>,
        incarnation: u64,
        requests: &mut S,
    ) -> Result<(), Status>
    where
        S: Stream<Item = Result<pb::WriteRequest, Status>> + Unpin,
    {
        let mut refs = RefTable::default();
        let mut counted = CountedRefs(0);
        loop {
            let msg = tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => {
                    return Err(Status::unavailable("storage node is shutting down"));
                }
                m = requests.next() => m.transpose(),
            };
            let mut batch = match msg {
                Ok(None) => return Ok(()),
                Err(status) => return Err(status),
                Ok(Some(pb::WriteRequest {
                    msg: Some(Msg::Batch(b)),
                })) => b,
                Ok(Some(_)) => {
                    return Err(Status::invalid_argument(
                        "expected a Batch: WriteHello is sent once, first",
                    ))
                }
            };
            metrics::batch_received();
            let sequence = batch.sequence;
            // Metadata is not part of the stored batch: it is kept whatever
            // the batch's fate (a resent duplicate carries it too).
            if let Some(m) = batch.metadata.take() {
                self.metadata
                    .apply(&batch.target_id, batch.target_generation, scraper_id, m);
            }
            let resolved = batch::resolve(&mut refs, batch);
            counted.update(refs.len());
            let answer = match resolved {
                Ok(batch) => Answer::Pending(
                    self.writer
                        .submit_as(scraper_id.clone(), incarnation, batch)
                        .await?,
                ),
                Err(invalid) => {
                    metrics::batch_refused("invalid");
                    tracing::debug!(scraper = %scraper_id, sequence, error = %invalid, "batch refused");
                    Answer::Ready(Ok(ack_response(writer::ack(
                        sequence,
                        pb::AckStatus::Refused,
                        pb::RefuseReason::Invalid,
                        invalid.0,
                    ))))
                }
            };
            if !self.push(answer).await {
                return Err(Status::cancelled("response stream closed"));
            }
        }
    }

    /// Queues an answer; returns false when the response stream is gone (or
    /// blocked at shutdown).
    async fn push(&self, answer: Answer) -> bool {
        tokio::select! {
            biased;
            r = self.out.send(answer) => r.is_ok(),
            _ = self.shutdown.cancelled() => false,
        }
    }
}

/// Keeps `scrapegrid_storage_ingest_stream_refs` in step with one stream's
/// reference table, and takes the table's count back when the stream ends.
struct CountedRefs(usize);

impl CountedRefs {
    fn update(&mut self, len: usize) {
        if len != self.0 {
            metrics::ingest_stream_refs(len as f64 - self.0 as f64);
            self.0 = len;
        }
    }
}

impl Drop for CountedRefs {
    fn drop(&mut self) {
        metrics::ingest_stream_refs(-(self.0 as f64));
    }
}
