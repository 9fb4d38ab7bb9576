//! The gRPC connection to etcd: one lazily connected channel (balanced over
//! the endpoints when there are several) shared by the KV, Lease and Watch
//! clients, and unary calls under a deadline with etcd errors mapped to
//! [`HaError`].
//!
//! No HTTP/2 keepalive pings: etcd answers clients that ping more often than
//! every 5 s with GOAWAY, and every wait in this backend has its own
//! deadline anyway.

use std::future::Future;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use scrapegrid_proto::etcd::etcdserverpb as pb;
use scrapegrid_proto::etcd::etcdserverpb::{
    kv_client::KvClient, lease_client::LeaseClient, watch_client::WatchClient,
};

use crate::ha::{HaError, Result};

/// Clients of the etcd services scrapegrid uses; cheap to clone.
#[derive(Clone)]
pub(super) struct Client {
    kv: KvClient<Channel>,
    lease: LeaseClient<Channel>,
    watch: WatchClient<Channel>,
    timeout: Duration,
}

impl Client {
    /// Creates the channel without connecting; fails only on a malformed
    /// endpoint.
    pub(super) fn new(endpoints: &[String], timeout: Duration) -> Result<Self> {
        let endpoints = endpoints
            .iter()
            .map(|url| {
                Endpoint::from_shared(url.clone())
                    .map(|e| e.connect_timeout(timeout).tcp_nodelay(true))
                    .map_err(|error| HaError::InvalidOption {
                        option: "endpoints",
                        reason: format!("{url:?}: {error}"),
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let channel = match endpoints.as_slice() {
            [one] => one.connect_lazy(),
            _ => Channel::balance_list(endpoints.into_iter()),
        };
        Ok(Self {
            kv: KvClient::new(channel.clone()),
            lease: LeaseClient::new(channel.clone()),
            watch: WatchClient::new(channel),
            timeout,
        })
    }

    /// A Lease client for streams, which take no per-request deadline.
    pub(super) fn lease_client(&self) -> LeaseClient<Channel> {
        self.lease.clone()
    }

    /// A Watch client for streams.
    pub(super) fn watch_client(&self) -> WatchClient<Channel> {
        self.watch.clone()
    }

    pub(super) async fn range(&self, request: pb::RangeRequest) -> Result<pb::RangeResponse> {
        let mut kv = self.kv.clone();
        self.unary("range", kv.range(request)).await
    }

    pub(super) async fn txn(&self, request: pb::TxnRequest) -> Result<pb::TxnResponse> {
        let mut kv = self.kv.clone();
        self.unary("txn", kv.txn(request)).await
    }

    /// Grants a lease of `ttl` (whole seconds); returns its id.
    pub(super) async fn lease_grant(&self, ttl: Duration) -> Result<i64> {
        let mut lease = self.lease.clone();
        let request = pb::LeaseGrantRequest {
            ttl: i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX),
            id: 0,
        };
        let response = self
            .unary("lease grant", lease.lease_grant(request))
            .await?;
        if !response.error.is_empty() {
            return Err(HaError::Etcd {
                op: "lease grant",
                code: tonic::Code::Unknown,
                message: response.error,
            });
        }
        Ok(response.id)
    }

    /// Revokes a lease, deleting the keys attached to it.
    pub(super) async fn lease_revoke(&self, id: i64) -> Result<()> {
        let mut lease = self.lease.clone();
        let request = pb::LeaseRevokeRequest { id };
        self.unary("lease revoke", lease.lease_revoke(request))
            .await
            .map(drop)
    }

    /// Awaits one unary call under the request deadline.
    async fn unary<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.timeout, call).await {
            Err(_) => Err(HaError::Timeout {
                op,
                after: self.timeout,
            }),
            Ok(Err(status)) => Err(HaError::etcd(op, status)),
            Ok(Ok(response)) => Ok(response.into_inner()),
        }
    }
}
