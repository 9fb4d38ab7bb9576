//! Keeps a leader's lease alive and says when the leadership is lost.
//!
//! One task per term refreshes the lease every TTL/3 over a LeaseKeepAlive
//! stream, one request in flight at a time, reopening the stream after an
//! error. A refresh is confirmed by an answer with TTL > 0; the lease then
//! lives at least a TTL from when that request was sent. The task cancels
//! `lost` when:
//! - no refresh was confirmed for a whole TTL since the last confirmed send
//!   (etcd down or unreachable): by then etcd may have let the lease expire
//!   and another candidate may lead. The lease is remembered as stale so the
//!   next campaign revokes it once etcd answers again;
//! - etcd says the lease no longer exists;
//! - the candidate is dropped (`stop`), without revoking: as if the process
//!   died.
//!
//! Resigning cancels `lost` itself, which ends the task. The next request
//! is sent only after the previous one was answered.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use etcd_client::{LeaseKeepAliveStream, LeaseKeeper};
use tokio::time::{sleep_until, Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::client::Client;
use crate::ha::HaError;

/// One term's lease keeper.
pub(super) struct KeepAlive {
    pub(super) client: Client,
    pub(super) lease: i64,
    pub(super) ttl: Duration,
    pub(super) lost: CancellationToken,
    pub(super) stop: CancellationToken,
    pub(super) stale_leases: Arc<Mutex<Vec<i64>>>,
}

/// Why a term ended.
#[derive(Debug, PartialEq)]
enum End {
    Resigned,
    CandidateDropped,
    Unconfirmed,
    Expired,
}

/// An open LeaseKeepAlive stream: requests in, answers out.
type Stream = (LeaseKeeper, LeaseKeepAliveStream);

/// Starts keeping the lease granted at `granted_at` alive.
pub(super) fn spawn(keeper: KeepAlive, granted_at: Instant) {
    tokio::spawn(keeper.run(granted_at));
}

/// Locks the stale-lease list (a plain list, valid whatever a panicking
/// holder did).
pub(super) fn lock(leases: &Mutex<Vec<i64>>) -> MutexGuard<'_, Vec<i64>> {
    leases.lock().unwrap_or_else(PoisonError::into_inner)
}

impl KeepAlive {
    async fn run(mut self, granted_at: Instant) {
        let end = self.keep(granted_at).await;
        let lease = format!("{:x}", self.lease);
        match end {
            End::Resigned => tracing::debug!(%lease, "leadership resigned"),
            End::CandidateDropped => {
                tracing::debug!(%lease, "candidate dropped; its lease will expire")
            }
            End::Unconfirmed => {
                tracing::warn!(
                    %lease,
                    ttl = ?self.ttl,
                    "leadership lost: etcd did not confirm the lease for a whole TTL"
                );
                lock(&self.stale_leases).push(self.lease);
            }
            End::Expired => tracing::warn!(%lease, "leadership lost: the lease expired"),
        }
        self.lost.cancel();
    }

    async fn keep(&mut self, granted_at: Instant) -> End {
        let (lost, stop) = (self.lost.clone(), self.stop.clone());
        let mut confirmed = granted_at;
        let mut tick = tokio::time::interval(self.ttl / 3);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut stream: Option<Stream> = None;
        loop {
            let deadline = confirmed + self.ttl;
            tokio::select! {
                _ = lost.cancelled() => return End::Resigned,
                _ = stop.cancelled() => return End::CandidateDropped,
                _ = sleep_until(deadline) => return End::Unconfirmed,
                _ = tick.tick() => {}
            }
            let sent = Instant::now();
            let answer = tokio::select! {
                _ = lost.cancelled() => return End::Resigned,
                _ = stop.cancelled() => return End::CandidateDropped,
                _ = sleep_until(deadline) => return End::Unconfirmed,
                answer = refresh(&self.client, &mut stream, self.lease) => answer,
            };
            match answer {
                Ok(ttl) if ttl > 0 => confirmed = sent,
                Ok(_) => return End::Expired,
                Err(error) => {
                    stream = None;
                    tracing::debug!(%error, "lease keepalive failed; retrying");
                }
            }
        }
    }
}

/// Sends one refresh and returns the TTL etcd answered (0: no such lease).
async fn refresh(client: &Client, stream: &mut Option<Stream>, lease: i64) -> Result<i64, HaError> {
    let closed = || HaError::Etcd {
        op: "lease keepalive",
        code: tonic::Code::Unavailable,
        message: "lease keepalive stream closed".into(),
    };
    let Some((keeper, answers)) = stream else {
        // Opening the stream confirms the lease once.
        return match client.keep_alive(lease).await? {
            Some(opened) => {
                *stream = Some(opened);
                Ok(1)
            }
            None => Ok(0),
        };
    };
    keeper
        .keep_alive()
        .await
        .map_err(|e| HaError::client("lease keepalive", e))?;
    match answers
        .message()
        .await
        .map_err(|e| HaError::client("lease keepalive", e))?
    {
        Some(answer) => Ok(answer.ttl()),
        None => Err(closed()),
    }
}
