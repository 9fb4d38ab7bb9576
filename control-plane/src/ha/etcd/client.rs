//! The connection to etcd: the `etcd-client` crate's client, connected on
//! first use (so a control plane starts while etcd is down) and shared by
//! every request, with each request under a deadline and its errors mapped
//! to [`HaError`].
//!
//! No HTTP/2 keepalive pings: etcd answers clients that ping more often than
//! every 5 s with GOAWAY, and every wait in this backend has its own
//! deadline anyway.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use etcd_client as etcd;
use tokio::sync::OnceCell;

use crate::ha::{HaError, Result};

/// The etcd client and the request deadline; cheap to clone.
#[derive(Clone)]
pub(super) struct Client {
    endpoints: Arc<[String]>,
    timeout: Duration,
    connected: Arc<OnceCell<etcd::Client>>,
}

impl Client {
    /// Checks the endpoints without connecting; fails only on a malformed
    /// one.
    pub(super) fn new(endpoints: &[String], timeout: Duration) -> Result<Self> {
        for url in endpoints {
            url.parse::<tonic::transport::Uri>()
                .map_err(|error| HaError::InvalidOption {
                    option: "endpoints",
                    reason: format!("{url:?}: {error}"),
                })?;
        }
        Ok(Self {
            endpoints: endpoints.into(),
            timeout,
            connected: Arc::default(),
        })
    }

    /// The client, connected on the first call (balanced over the
    /// endpoints when there are several).
    async fn client(&self, op: &'static str) -> Result<etcd::Client> {
        let connect = || async {
            let options = etcd::ConnectOptions::new().with_connect_timeout(self.timeout);
            etcd::Client::connect(self.endpoints.as_ref(), Some(options)).await
        };
        self.within(op, self.connected.get_or_try_init(connect))
            .await
            .cloned()
    }

    pub(super) async fn get(
        &self,
        key: Vec<u8>,
        options: etcd::GetOptions,
    ) -> Result<etcd::GetResponse> {
        let mut c = self.client("range").await?;
        self.within("range", c.get(key, Some(options))).await
    }

    pub(super) async fn txn(&self, txn: etcd::Txn) -> Result<etcd::TxnResponse> {
        let mut c = self.client("txn").await?;
        self.within("txn", c.txn(txn)).await
    }

    /// Grants a lease of `ttl` (whole seconds); returns its id.
    pub(super) async fn lease_grant(&self, ttl: Duration) -> Result<i64> {
        let mut c = self.client("lease grant").await?;
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        let response = self.within("lease grant", c.lease_grant(ttl, None)).await?;
        if !response.error().is_empty() {
            return Err(HaError::Etcd {
                op: "lease grant",
                code: tonic::Code::Unknown,
                message: response.error().to_string(),
            });
        }
        Ok(response.id())
    }

    /// Revokes a lease, deleting the keys attached to it.
    pub(super) async fn lease_revoke(&self, id: i64) -> Result<()> {
        let mut c = self.client("lease revoke").await?;
        self.within("lease revoke", c.lease_revoke(id))
            .await
            .map(drop)
    }

    /// Opens a watch of `key` (the stream itself has no deadline).
    pub(super) async fn watch(
        &self,
        key: Vec<u8>,
        options: etcd::WatchOptions,
    ) -> Result<etcd::WatchStream> {
        let mut c = self.client("watch").await?;
        self.within("watch", c.watch(key, Some(options))).await
    }

    /// Opens the keepalive stream of lease `id`, which confirms the lease
    /// once; `None` when the lease is gone.
    pub(super) async fn keep_alive(
        &self,
        id: i64,
    ) -> Result<Option<(etcd::LeaseKeeper, etcd::LeaseKeepAliveStream)>> {
        let mut c = self.client("lease keepalive").await?;
        match tokio::time::timeout(self.timeout, c.lease_keep_alive(id)).await {
            Err(_) => Err(HaError::Timeout {
                op: "lease keepalive",
                after: self.timeout,
            }),
            // The crate's word for a keepalive answered with TTL 0.
            Ok(Err(etcd::Error::LeaseKeepAliveError(m))) if m == "lease not found" => Ok(None),
            Ok(Err(error)) => Err(HaError::client("lease keepalive", error)),
            Ok(Ok(stream)) => Ok(Some(stream)),
        }
    }

    /// Awaits `call` under the request deadline.
    async fn within<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = std::result::Result<T, etcd::Error>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.timeout, call).await {
            Err(_) => Err(HaError::Timeout {
                op,
                after: self.timeout,
            }),
            Ok(Err(error)) => Err(HaError::client(op, error)),
            Ok(Ok(response)) => Ok(response),
        }
    }
}
