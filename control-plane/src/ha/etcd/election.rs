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

use futures::StreamExt;
use tokio::time::Instant;

use scrapegrid_proto::etcd::etcdserverpb::{
    self as pb, compare, request_op, response_op, watch_create_request::FilterType, watch_request,
};
use scrapegrid_proto::etcd::mvccpb::event::EventType;

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
        let read = || pb::RequestOp {
            request: Some(request_op::Request::RequestRange(pb::RangeRequest {
                key: key.clone(),
                ..Default::default()
            })),
        };
        let txn = pb::TxnRequest {
            compare: vec![pb::Compare {
                result: compare::CompareResult::Equal as i32,
                target: compare::CompareTarget::Create as i32,
                key: key.clone(),
                target_union: Some(compare::TargetUnion::CreateRevision(0)),
                range_end: Vec::new(),
            }],
            success: vec![
                pb::RequestOp {
                    request: Some(request_op::Request::RequestPut(pb::PutRequest {
                        key: key.clone(),
                        value: endpoint.as_bytes().to_vec(),
                        lease,
                        prev_kv: false,
                    })),
                },
                read(),
            ],
            failure: vec![read()],
        };
        let response = match self.client.txn(txn).await {
            Ok(r) => r,
            Err(error) => {
                // The put may have been applied; revoking undoes it.
                self.revoke_or_remember(lease).await;
                return Err(error);
            }
        };
        let current = response
            .responses
            .iter()
            .rev()
            .find_map(|r| match &r.response {
                Some(response_op::Response::ResponseRange(range)) => range.kvs.first(),
                _ => None,
            })
            .cloned();
        if !response.succeeded {
            self.revoke_or_remember(lease).await;
            return Ok(Attempt::Held {
                holder: current
                    .map(|kv| String::from_utf8_lossy(&kv.value).into_owned())
                    .unwrap_or_default(),
                revision: response.header.map(|h| h.revision).unwrap_or(0),
            });
        }
        let term = current
            .and_then(|kv| u64::try_from(kv.create_revision).ok())
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
                client: self.client.lease_client(),
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
        let create = pb::WatchRequest {
            request_union: Some(watch_request::RequestUnion::CreateRequest(
                pb::WatchCreateRequest {
                    key: self.keys.leader(),
                    start_revision,
                    filters: vec![FilterType::Noput as i32],
                    ..Default::default()
                },
            )),
        };
        // The request stream stays open: closing it would end the watch.
        let requests = futures::stream::iter([create]).chain(futures::stream::pending());
        let mut watch = self.client.watch_client();
        let deleted = async move {
            let mut responses = watch
                .watch(requests)
                .await
                .map_err(|s| HaError::etcd("watch", s))?
                .into_inner();
            while let Some(r) = responses
                .message()
                .await
                .map_err(|s| HaError::etcd("watch", s))?
            {
                let delete = EventType::Delete as i32;
                // A cancelled watch (its revision was compacted) ends the
                // wait too: the next attempt reads the key afresh.
                if r.canceled || r.events.iter().any(|e| e.r#type == delete) {
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
            .range(pb::RangeRequest {
                key: self.keys.leader(),
                ..Default::default()
            })
            .await?;
        Ok(response
            .kvs
            .first()
            .map(|kv| String::from_utf8_lossy(&kv.value).into_owned()))
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
