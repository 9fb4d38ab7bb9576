//! Leader election with one leased key.
//!
//! A campaign attempt grants a lease of the configured TTL and runs one
//! transaction: if the leader key does not exist (create_revision 0), put it
//! with the candidate's endpoint, attached to the lease, and read it back;
//! otherwise read the current holder. The winner's term is the key's
//! create_revision, which etcd makes strictly larger for every new key. A
//! loser revokes its lease and watches the key from the revision after its
//! read until a DELETE (resign, lease expiry), then tries again; the watch is
//! bounded, so a missed event costs at most a few TTLs. etcd errors are
//! retried with a capped backoff, so a campaign survives an etcd outage.

use std::time::Duration;

use etcd_client::{
    Compare, CompareOp, EventType, GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse,
    WatchFilterType, WatchOptions,
};
use tokio::time::Instant;

use super::keepalive::{self, KeepAlive};
use super::EtcdCandidate;
use crate::ha::{HaError, Leadership, Result};

/// What one campaign attempt found.
enum Attempt {
    Won(Leadership),
    /// Another candidate leads; `revision` is the store revision of the read.
    Held {
        holder: String,
        revision: i64,
    },
}

impl EtcdCandidate {
    pub(super) async fn campaign_until_leading(&self, endpoint: &str) -> Result<Leadership> {
        let mut backoff = Backoff::default();
        loop {
            self.revoke_stale_leases().await;
            match self.try_acquire(endpoint).await {
                Ok(Attempt::Won(leadership)) => {
                    tracing::info!(term = leadership.term, %endpoint, "won the etcd election");
                    return Ok(leadership);
                }
                Ok(Attempt::Held { holder, revision }) => {
                    backoff.reset();
                    tracing::debug!(leader = %holder, "waiting for the leader key to be released");
                    if let Err(error) = self.wait_for_release(revision + 1).await {
                        tracing::warn!(%error, "watching the etcd leader key failed; retrying");
                        backoff.wait().await;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "etcd campaign attempt failed; retrying");
                    backoff.wait().await;
                }
            }
        }
    }

    /// Runs one campaign attempt.
    async fn try_acquire(&self, endpoint: &str) -> Result<Attempt> {
        let granted_at = Instant::now();
        let lease = self.client.lease_grant(self.ttl).await?;
        let key = self.keys.leader();
        let read = || TxnOp::get(key.clone(), None);
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([
                TxnOp::put(
                    key.clone(),
                    endpoint.as_bytes(),
                    Some(PutOptions::new().with_lease(lease)),
                ),
                read(),
            ])
            .or_else([read()]);
        let response = match self.client.txn(txn).await {
            Ok(r) => r,
            Err(error) => {
                self.revoke_or_remember(lease).await;
                return Err(error);
            }
        };
        let current = response
            .op_responses()
            .into_iter()
            .rev()
            .find_map(|r| match r {
                TxnOpResponse::Get(range) => range.kvs().first().cloned(),
                _ => None,
            });
        if !response.succeeded() {
            self.revoke_or_remember(lease).await;
            return Ok(Attempt::Held {
                holder: current
                    .map(|kv| String::from_utf8_lossy(kv.value()).into_owned())
                    .unwrap_or_default(),
                revision: response.header().map(|h| h.revision()).unwrap_or(0),
            });
        }
        let term = current
            .and_then(|kv| u64::try_from(kv.create_revision()).ok())
            .filter(|&t| t > 0);
        let Some(term) = term else {
            self.revoke_or_remember(lease).await;
            return Err(HaError::Corrupt {
                key: String::from_utf8_lossy(&key).into_owned(),
                reason: "the leader key was not read back after it was created".into(),
            });
        };
        let leadership = Leadership {
            term,
            lost: tokio_util::sync::CancellationToken::new(),
            lease,
        };
        keepalive::spawn(
            KeepAlive {
                client: self.client.clone(),
                lease,
                ttl: self.ttl,
                lost: leadership.lost.clone(),
                stop: self.stop.clone(),
                stale_leases: self.stale_leases.clone(),
            },
            granted_at,
        );
        Ok(Attempt::Won(leadership))
    }

    /// Waits until the leader key is deleted at or after `start_revision`,
    /// or for at most three TTLs.
    async fn wait_for_release(&self, start_revision: i64) -> Result<()> {
        let options = WatchOptions::new()
            .with_start_revision(start_revision)
            .with_filters([WatchFilterType::NoPut]);
        let client = self.client.clone();
        let key = self.keys.leader();
        let deleted = async move {
            let mut watch = client.watch(key, options).await?;
            while let Some(r) = watch
                .message()
                .await
                .map_err(|e| HaError::client("watch", e))?
            {
                if r.canceled()
                    || r.events()
                        .iter()
                        .any(|e| e.event_type() == EventType::Delete)
                {
                    break;
                }
            }
            Ok(())
        };
        match tokio::time::timeout(self.ttl * 3, deleted).await {
            Ok(result) => result,
            Err(_) => Ok(()),
        }
    }

    pub(super) async fn current_leader(&self) -> Result<Option<String>> {
        let response = self
            .client
            .get(self.keys.leader(), GetOptions::new())
            .await?;
        Ok(response
            .kvs()
            .first()
            .map(|kv| String::from_utf8_lossy(kv.value()).into_owned()))
    }

    pub(super) async fn give_up(&self, leadership: &Leadership) -> Result<()> {
        leadership.lost.cancel();
        match self.client.lease_revoke(leadership.lease).await {
            Ok(()) => Ok(()),
            Err(error) if error.is_lease_not_found() => Ok(()),
            Err(error) => {
                self.remember_stale(leadership.lease);
                Err(error)
            }
        }
    }

    /// Revokes `lease`, or keeps it for the next campaign when etcd cannot
    /// be reached.
    async fn revoke_or_remember(&self, lease: i64) {
        match self.client.lease_revoke(lease).await {
            Ok(()) => {}
            Err(error) if error.is_lease_not_found() => {}
            Err(error) => {
                tracing::debug!(%error, "cannot revoke an unused lease; retrying later");
                self.remember_stale(lease);
            }
        }
    }

    fn remember_stale(&self, lease: i64) {
        keepalive::lock(&self.stale_leases).push(lease);
    }

    /// Revokes the leases of terms that ended while etcd was unreachable,
    /// so their leader key does not block this campaign until it expires.
    async fn revoke_stale_leases(&self) {
        let stale = std::mem::take(&mut *keepalive::lock(&self.stale_leases));
        for lease in stale {
            self.revoke_or_remember(lease).await;
        }
    }
}

/// Delays between failed campaign attempts: 100 ms doubling up to 1 s.
struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(1);

    async fn wait(&mut self) {
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(Self::MAX);
    }

    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: Self::FIRST }
    }
}
