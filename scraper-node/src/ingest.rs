//! The ingest client: delivers batches to the storage node exactly once.
//!
//! Scrape loops `submit` batches into a bounded channel (capacity
//! [`SUBMIT_CAPACITY`]; a full channel makes the loop wait). One task owns the
//! outbox and the `Write` stream (gRPC, or in direct mode the embedded
//! node's [`LocalIngest`]: the same messages, handed over in the process). On every (re)connect it sends a WriteHello,
//! learns from the Welcome the last sequence the storage node has durably
//! applied for this scraper id, drops what is already stored, and (re)sends
//! the rest in order. Sequence numbers are assigned at first send and never
//! change, so a resend is recognised as a duplicate. At most [`WINDOW`]
//! batches are unacked at once. Series travel as labels the first time on a
//! stream and as references (the scraper's series id) after that;
//! exemplars travel beside the samples with the same references. A target's
//! metadata travels whole, on the first batch that carries a snapshot of it
//! the stream has not carried yet.
//!
//! A batch refused as FENCED (a newer generation of its target, another
//! scraper's, is stored) fences the target at its generation ([`Fences`]):
//! its scrape loop stops, so a scraper cut off from the control planes does
//! not keep scraping a target that has moved.
//!
//! Each process draws a random incarnation for its `WriteHello`: when a
//! second process is started with the same `--id`, the storage node gives
//! the id's sequence numbers to the newer one and refuses the older one
//! (with an error that says so), rather than acking one's batches as
//! duplicates of the other's.
//!
//! The storage node keeps a stream's references until the stream ends, so
//! with series churn (new series replacing old ones) its table grows. Once
//! a stream has defined more than [`ROTATE_FACTOR`] times the series the
//! scraper's targets produce now (and at least [`ROTATE_FLOOR`]), the task
//! sends nothing more on it and starts a new stream once what it sent is
//! acked: the old table goes,
//! and live series are defined again, once (counted in
//! `scrapegrid_scraper_ingest_rotations_total`).
//!
//! The outbox holds [`OutboxConfig::memory_batches`] batches in memory;
//! when the storage node is away longer, the rest goes to disk in order
//! ([`spill`], `--outbox.dir`) and comes back as acks make room. Without a
//! spill directory, or over its limit, batches are dropped and counted in
//! `scrapegrid_scraper_batches_dropped_total`.
//!
//! Shutdown drains: once the scrape loops have stopped, [`start`]'s `drain`
//! says until when; the task keeps (re)connecting and resending until the
//! storage node has acked every batch, so a storage node that restarts
//! during a drain loses nothing. What is still unacked at the deadline is
//! given up with one error log and counted in
//! `scrapegrid_scraper_drain_batches_abandoned_total` and
//! `scrapegrid_scraper_drain_samples_abandoned_total`.

use scrapegrid_common::security::ClientSecurity;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;

use scrapegrid_proto::v1 as pb;
use scrapegrid_proto::v1::ingest_client::IngestClient;

use scrapegrid_common::Labels;
use storage_node::ingest::{LocalIngest, ResponseStream};

use crate::batch::ScrapeBatch;
use crate::metrics;
pub use fences::Fences;
use outbox::Outbox;

pub const SUBMIT_CAPACITY: usize = 1024;
pub const WINDOW: usize = 128;
pub const MAX_PENDING: usize = 20_000;
/// A stream that defined this many times the live series is replaced.
pub const ROTATE_FACTOR: usize = 4;
/// ... and at least this many.
pub const ROTATE_FLOOR: usize = 10_000;
/// A target whose latest batch is this much older than the newest batch no
/// longer counts as live (it stopped, or left discovery).
pub(super) const LIVE_HORIZON_MS: i64 = 15 * 60 * 1000;
/// The least time a drain gives delivery once the loops have stopped, even
/// when the handovers took the whole drain deadline.
pub const FLUSH_FLOOR: Duration = Duration::from_secs(5);

/// Where the outbox keeps what memory does not hold.
#[derive(Clone, Debug)]
pub struct OutboxConfig {
    /// Batches held in memory.
    pub memory_batches: usize,
    /// The spill directory of this scraper (`None`: drop instead).
    pub spill_dir: Option<std::path::PathBuf>,
    /// Bytes the spill may take before its oldest batches are dropped
    /// (0: no limit).
    pub max_disk_bytes: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            memory_batches: MAX_PENDING,
            spill_dir: None,
            max_disk_bytes: 0,
        }
    }
}

impl OutboxConfig {
    /// The outbox, with what an earlier process spilled. A spill directory
    /// that cannot be opened (another process with this id holds it) is
    /// logged and done without.
    fn open(&self) -> Outbox {
        let spill = self.spill_dir.as_ref().and_then(|dir| {
            spill::Spill::open(dir, self.max_disk_bytes)
                .map_err(|error| {
                    tracing::error!(dir = %dir.display(), %error, "outbox: the spill directory cannot be used; batches over --outbox.memory-batches will be dropped");
                })
                .ok()
        });
        Outbox::new(self.memory_batches, spill)
    }
}

/// Where scrape loops put their batches.
#[derive(Clone)]
pub struct IngestHandle {
    tx: mpsc::Sender<ScrapeBatch>,
    endpoint: watch::Receiver<String>,
    security: ClientSecurity,
    fences: Arc<Fences>,
}

impl IngestHandle {
    /// Whether the storage node fenced `target_id` at `generation`
    /// ([`Fences`]).
    pub fn is_fenced(&self, target_id: &str, generation: u64) -> bool {
        self.fences.is_fenced(target_id, generation)
    }

    pub async fn submit(&self, batch: ScrapeBatch) {
        // Fails only after shutdown, when the batch can no longer be delivered.
        let _ = self.tx.send(batch).await;
    }

    /// Returns a reader of handover records on the storage node now in use.
    /// It connects on first use and keeps the connection for its polls.
    pub fn handover_reader(&self) -> Result<HandoverReader, String> {
        let endpoint = self.endpoint.borrow().clone();
        let channel = self
            .security
            .endpoint(&endpoint)?
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(2))
            .connect_lazy();
        Ok(HandoverReader(
            IngestClient::new(channel).max_decoding_message_size(64 << 20),
            self.security.clone(),
        ))
    }
}

/// Reads what a target's previous owner handed over (`Ingest/TakeHandover`).
pub struct HandoverReader(IngestClient<tonic::transport::Channel>, ClientSecurity);

impl HandoverReader {
    /// Returns the series the previous owner of `target_id` handed over
    /// under a generation older than `generation` with a scrape at or after
    /// `not_before_ms`; `Ok(None)` while there is none (the storage node
    /// keeps one record per target: an older one is an earlier move's).
    pub async fn take(
        &mut self,
        target_id: &str,
        generation: u64,
        not_before_ms: i64,
    ) -> Result<Option<Vec<Labels>>, String> {
        let mut request = tonic::Request::new(pb::HandoverRequest {
            target_id: target_id.to_string(),
            generation,
        });
        self.1.authorize(&mut request);
        let response = self
            .0
            .take_handover(request)
            .await
            .map_err(|e| e.to_string())?
            .into_inner();
        let this_move = response.found && response.timestamp_ms >= not_before_ms;
        Ok(this_move.then(|| {
            response
                .series
                .iter()
                .map(|s| Labels::from_proto(&s.labels))
                .collect()
        }))
    }
}

/// Starts the ingest task. `endpoint` is the storage node's gRPC endpoint as
/// the control plane last said; the task follows its changes. Once `drain`
/// delivers a deadline (or is dropped), every scrape loop has stopped: the
/// task delivers what is unacked, retrying until the deadline (at least
/// [`FLUSH_FLOOR`] from then), and ends.
pub fn start(
    scraper_id: String,
    endpoint: watch::Receiver<String>,
    security: ClientSecurity,
    drain: oneshot::Receiver<tokio::time::Instant>,
    local: Option<LocalIngest>,
    outbox: &OutboxConfig,
) -> (IngestHandle, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(SUBMIT_CAPACITY);
    let fences = Arc::new(Fences::default());
    let handle = IngestHandle {
        tx,
        endpoint: endpoint.clone(),
        security: security.clone(),
        fences: fences.clone(),
    };
    let task = Task {
        scraper_id,
        incarnation: incarnation(),
        fences,
        local,
        security,
        endpoint,
        rx,
        drain: Some(drain),
        deadline: None,
        outbox: outbox.open(),
    };
    (handle, tokio::spawn(task.run()))
}

/// This process's incarnation (`WriteHello.incarnation`): random, never 0.
fn incarnation() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut x = nanos ^ (u64::from(std::process::id()) << 32) ^ 0x9e37_79b9_7f4a_7c15;
    // splitmix64's finalizer spreads close seeds apart.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (x ^ (x >> 31)).max(1)
}

enum SessionEnd {
    Shutdown,
    EndpointChanged,
    /// The stream defined too many series beyond the live ones.
    Rotate,
    Failed(String),
}

struct Task {
    scraper_id: String,
    /// This process's incarnation: the storage node refuses it once a
    /// newer process with the same id has said Hello.
    incarnation: u64,
    /// Targets whose batches came back FENCED.
    fences: Arc<Fences>,
    /// The embedded storage node of direct mode, written to without gRPC.
    local: Option<LocalIngest>,
    /// TLS and the write token for the storage node.
    security: ClientSecurity,
    endpoint: watch::Receiver<String>,
    rx: mpsc::Receiver<ScrapeBatch>,
    /// Says when the loops have stopped and until when to deliver.
    drain: Option<oneshot::Receiver<Instant>>,
    /// Set once draining: deliver what is pending until then.
    deadline: Option<Instant>,
    outbox: Outbox,
}

/// Resolves to the drain deadline once `drain` says it (or its sender is
/// gone); never while `drain` is `None`.
async fn drain_signal(drain: &mut Option<oneshot::Receiver<Instant>>) -> Instant {
    let Some(rx) = drain.as_mut() else {
        return std::future::pending().await;
    };
    let at = rx.await.unwrap_or_else(|_| Instant::now());
    *drain = None;
    at
}

/// Resolves at `deadline`; never without one.
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Task {
    async fn run(mut self) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let endpoint = self.endpoint.borrow_and_update().clone();
            let end = if endpoint.is_empty() {
                self.idle(Duration::from_secs(3600)).await
            } else {
                self.session(&endpoint).await
            };
            match end {
                SessionEnd::Shutdown => return,
                SessionEnd::EndpointChanged => backoff = Duration::from_millis(100),
                SessionEnd::Rotate => {
                    ::metrics::counter!(metrics::INGEST_ROTATIONS).increment(1);
                    tracing::info!(%endpoint, defined = self.outbox.defined, live = self.outbox.live_total, "ingest stream replaced: it defined many more series than are live");
                    backoff = Duration::from_millis(100);
                }
                SessionEnd::Failed(error) => {
                    ::metrics::counter!(metrics::INGEST_RECONNECTS).increment(1);
                    tracing::warn!(%endpoint, %error, pending = self.outbox.pending.len(), draining = self.deadline.is_some(), "ingest stream failed; retrying");
                    if let SessionEnd::Shutdown = self.idle(backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// Starts the drain: takes what the loops submitted before they stopped;
    /// returns whether everything is delivered already.
    fn start_drain(&mut self, at: Instant) -> bool {
        while let Ok(b) = self.rx.try_recv() {
            self.outbox.push(b);
        }
        self.deadline = Some(at.max(Instant::now() + FLUSH_FLOOR));
        tracing::info!(
            pending = self.outbox.pending.len(),
            on_disk = self.outbox.on_disk(),
            "draining: delivering unacked batches"
        );
        self.drained()
    }

    /// Whether a drain has delivered everything.
    fn drained(&self) -> bool {
        self.deadline.is_some() && self.outbox.is_empty()
    }

    /// Gives up what is still unacked at the drain deadline.
    fn give_up(&mut self) -> SessionEnd {
        let (batches, samples) = self.outbox.memory_only();
        ::metrics::counter!(metrics::DRAIN_BATCHES_ABANDONED).increment(batches as u64);
        ::metrics::counter!(metrics::DRAIN_SAMPLES_ABANDONED).increment(samples as u64);
        tracing::error!(
            batches,
            samples,
            on_disk = self.outbox.on_disk(),
            "drain deadline passed: giving up batches the storage node has not acked (what is on disk is sent by the next process with this --id)"
        );
        SessionEnd::Shutdown
    }

    /// Queues batches while not connected, for up to `wait`.
    async fn idle(&mut self, wait: Duration) -> SessionEnd {
        let retry = tokio::time::sleep(wait);
        tokio::pin!(retry);
        loop {
            tokio::select! {
                at = drain_signal(&mut self.drain) => if self.start_drain(at) {
                    return SessionEnd::Shutdown;
                },
                _ = until(self.deadline) => return self.give_up(),
                _ = &mut retry => return SessionEnd::Failed("retry".into()),
                Ok(()) = self.endpoint.changed() => return SessionEnd::EndpointChanged,
                Some(b) = self.rx.recv() => self.outbox.push(b),
            }
        }
    }

    async fn session(&mut self, endpoint: &str) -> SessionEnd {
        if self.drained() {
            return SessionEnd::Shutdown;
        }
        let (req_tx, req_rx) = mpsc::channel(WINDOW + 2);
        let hello = pb::WriteRequest {
            msg: Some(pb::write_request::Msg::Hello(pb::WriteHello {
                scraper_id: self.scraper_id.clone(),
                incarnation: self.incarnation,
            })),
        };
        let _ = req_tx.try_send(hello);
        let requests = ReceiverStream::new(req_rx);
        let opened = match &self.local {
            Some(local) => local.write(requests),
            None => match self.open_grpc(endpoint, requests).await {
                Ok(r) => r,
                Err(end) => return end,
            },
        };
        let mut responses = match opened {
            Ok(r) => r,
            Err(e) => return SessionEnd::Failed(format!("write: {e}")),
        };
        match tokio::time::timeout(Duration::from_secs(10), responses.next()).await {
            Ok(Some(Ok(pb::WriteResponse {
                msg: Some(pb::write_response::Msg::Welcome(w)),
            }))) => {
                self.outbox.on_welcome(w.last_sequence);
                tracing::info!(%endpoint, last_sequence = w.last_sequence, pending = self.outbox.pending.len(), "ingest stream open");
            }
            other => return SessionEnd::Failed(format!("no welcome: {other:?}")),
        }
        loop {
            while let Some(batch) = self.outbox.next_to_send() {
                let req = pb::WriteRequest {
                    msg: Some(pb::write_request::Msg::Batch(batch)),
                };
                // Never full: at most WINDOW batches are unacked.
                if req_tx.try_send(req).is_err() {
                    return SessionEnd::Failed("request stream closed".into());
                }
            }
            if self.drained() {
                return SessionEnd::Shutdown;
            }
            if self.outbox.rotation_due() && self.outbox.sent == 0 {
                return SessionEnd::Rotate;
            }
            tokio::select! {
                biased;
                r = responses.next() => match r {
                    Some(Ok(pb::WriteResponse { msg: Some(pb::write_response::Msg::Ack(ack)) })) => self.on_ack(ack),
                    Some(Ok(_)) => {}
                    None => return SessionEnd::Failed("stream closed by storage".into()),
                    Some(Err(e)) => return SessionEnd::Failed(e.to_string()),
                },
                Some(b) = self.rx.recv() => self.outbox.push(b),
                at = drain_signal(&mut self.drain) => {
                    self.start_drain(at);
                }
                _ = until(self.deadline) => return self.give_up(),
                Ok(()) = self.endpoint.changed() => return SessionEnd::EndpointChanged,
            }
        }
    }

    /// Connects to the storage node at `endpoint` and opens a `Write`
    /// stream of `requests`; `Err` ends the session.
    async fn open_grpc(
        &mut self,
        endpoint: &str,
        requests: ReceiverStream<pb::WriteRequest>,
    ) -> Result<Result<ResponseStream, tonic::Status>, SessionEnd> {
        let channel = match self.security.endpoint(endpoint) {
            Ok(e) => e.connect_timeout(Duration::from_secs(2)).tcp_nodelay(true),
            Err(e) => return Err(SessionEnd::Failed(format!("invalid storage endpoint: {e}"))),
        };
        let connect = tokio::select! {
            _ = until(self.deadline) => return Err(self.give_up()),
            c = channel.connect() => c,
        };
        let channel = match connect {
            Ok(c) => c,
            Err(e) => return Err(SessionEnd::Failed(format!("connect: {e}"))),
        };
        let mut client = IngestClient::new(channel)
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20);
        let mut request = tonic::Request::new(requests);
        self.security.authorize(&mut request);
        Ok(client
            .write(request)
            .await
            .map(|r| Box::pin(r.into_inner()) as ResponseStream))
    }

    fn on_ack(&mut self, ack: pb::Ack) {
        let status = pb::AckStatus::try_from(ack.status).unwrap_or(pb::AckStatus::Unspecified);
        let label = match status {
            pb::AckStatus::Applied => "applied",
            pb::AckStatus::Duplicate => "duplicate",
            pb::AckStatus::Refused => "refused",
            pb::AckStatus::Unspecified => "unspecified",
        };
        ::metrics::counter!(metrics::BATCHES_ACKED, "status" => label).increment(1);
        if status == pb::AckStatus::Refused {
            tracing::warn!(sequence = ack.sequence, reason = ack.reason, message = %ack.message, "batch refused by storage");
            if ack.reason == pb::RefuseReason::Fenced as i32 {
                let refused = self
                    .outbox
                    .pending
                    .iter()
                    .find(|p| p.seq == Some(ack.sequence));
                if let Some(p) = refused {
                    let (target, generation) = p.item.target();
                    self.fences.fence(target, generation);
                }
            }
        }
        self.outbox.on_ack(ack.sequence);
    }
}

mod fences;
mod outbox;
mod spill;
#[cfg(test)]
mod tests;
