//! The etcd backend: control planes campaign with a leased key and the
//! leader persists state under a key prefix ([`super::keys`] has the layout).
//!
//! - `election`: campaign with a transaction that creates the leader key
//!   only if absent, attached to a fresh lease; otherwise watch the key until
//!   it is deleted and try again. The key's create_revision is the term.
//! - `keepalive`: the leader refreshes its lease every TTL/3 and cancels
//!   `lost` when it cannot confirm the lease for a whole TTL or the lease is
//!   gone, so a leader cut off from etcd steps down no later than etcd lets
//!   another candidate win.
//! - `state`: saves are transactions of at most [`MAX_TXN_OPS`] operations,
//!   each guarded by "the leader key's create_revision is still my term";
//!   load reads the prefix in pages at one revision.
//! - `client`: the `etcd-client` crate's client, connected on first use,
//!   with per-request deadlines.
//!
//! With the default TTL of 2 s, a leader that dies without resigning is
//! replaced within about 2.5 s (the TTL since its last keepalive, plus
//! etcd's 0.5 s expiry check; measured 1.8-2.0 s); a resigning leader at
//! once. A leader cut off from etcd cancels `lost` within one TTL.

mod client;
mod election;
mod keepalive;
mod state;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::keys::{Keys, DEFAULT_PREFIX};
use super::{Election, HaError, Leadership, PersistedState, Result, StateChange, StateStore};
use client::Client;

/// Most operations scrapegrid puts in one etcd transaction; etcd refuses
/// more than `--max-txn-ops` (128 by default).
pub const MAX_TXN_OPS: usize = 100;

/// How to reach etcd and how to use it.
#[derive(Clone, Debug)]
pub struct EtcdOptions {
    /// etcd client URLs, `http://host:port` (TLS is not supported).
    pub endpoints: Vec<String>,
    /// Prefix of every key scrapegrid writes; control planes that should
    /// compete must share it. Default `/scrapegrid/`.
    pub prefix: String,
    /// Time to live of the leader's lease, whole seconds. A leader that dies
    /// is replaced after about this long; a leader cut off from etcd steps
    /// down after it. Default 2 s.
    pub lease_ttl: Duration,
    /// Deadline of each etcd request. Default 2 s.
    pub request_timeout: Duration,
}

impl EtcdOptions {
    /// Options for a comma-separated list of endpoints (the
    /// `--etcd-endpoints` flag), with defaults for the rest.
    pub fn new(endpoints: &str) -> Self {
        Self {
            endpoints: endpoints
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(String::from)
                .collect(),
            ..Self::default()
        }
    }

    fn validate(&self) -> Result<()> {
        let invalid = |option, reason: &str| HaError::InvalidOption {
            option,
            reason: reason.to_string(),
        };
        if self.endpoints.is_empty() {
            return Err(invalid("endpoints", "no endpoint given"));
        }
        if let Some(e) = self.endpoints.iter().find(|e| !e.starts_with("http://")) {
            return Err(invalid(
                "endpoints",
                &format!("{e:?} is not an http:// URL (TLS is not supported)"),
            ));
        }
        if self.lease_ttl < Duration::from_secs(1) || self.lease_ttl.subsec_nanos() != 0 {
            return Err(invalid(
                "lease_ttl",
                &format!("{:?} is not a whole number of seconds >= 1", self.lease_ttl),
            ));
        }
        if self.request_timeout.is_zero() {
            return Err(invalid("request_timeout", "must be positive"));
        }
        Ok(())
    }
}

/// No endpoint (set them), the default prefix, TTL and request timeout.
impl Default for EtcdOptions {
    fn default() -> Self {
        Self {
            endpoints: Vec::new(),
            prefix: DEFAULT_PREFIX.to_string(),
            lease_ttl: Duration::from_secs(2),
            request_timeout: Duration::from_secs(2),
        }
    }
}

/// A control plane's candidacy and state access in etcd.
///
/// Dropping it stops its lease keepalives without revoking the lease, as if
/// the process had died: its term ends when the lease expires.
pub struct EtcdCandidate {
    client: Client,
    keys: Keys,
    ttl: Duration,
    /// Cancelled on drop; stops the keepalive tasks.
    stop: CancellationToken,
    /// Leases of terms that ended while etcd was unreachable; they may still
    /// hold the leader key, so the next campaign revokes them first.
    stale_leases: Arc<Mutex<Vec<i64>>>,
}

impl EtcdCandidate {
    /// Checks `options` and creates the candidate. Connects lazily: this
    /// succeeds while etcd is down, and must be called inside a Tokio
    /// runtime.
    pub fn new(options: EtcdOptions) -> Result<Self> {
        options.validate()?;
        Ok(Self {
            client: Client::new(&options.endpoints, options.request_timeout)?,
            keys: Keys::new(&options.prefix),
            ttl: options.lease_ttl,
            stop: CancellationToken::new(),
            stale_leases: Arc::default(),
        })
    }
}

impl Election for EtcdCandidate {
    fn campaign(&self, endpoint: &str) -> BoxFuture<'_, Result<Leadership>> {
        let endpoint = endpoint.to_string();
        Box::pin(async move { self.campaign_until_leading(&endpoint).await })
    }

    fn leader(&self) -> BoxFuture<'_, Result<Option<String>>> {
        Box::pin(self.current_leader())
    }

    fn resign(&self, leadership: &Leadership) -> BoxFuture<'_, Result<()>> {
        let leadership = leadership.clone();
        Box::pin(async move { self.give_up(&leadership).await })
    }
}

impl StateStore for EtcdCandidate {
    fn load(&self) -> BoxFuture<'_, Result<PersistedState>> {
        Box::pin(self.load_state())
    }

    fn save<'a>(
        &'a self,
        leadership: &'a Leadership,
        change: StateChange,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.save_change(leadership, change))
    }
}

impl Drop for EtcdCandidate {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_flag_is_a_comma_list() {
        let o = EtcdOptions::new("http://127.0.0.1:2379, http://127.0.0.1:22379,");
        assert_eq!(
            o.endpoints,
            ["http://127.0.0.1:2379", "http://127.0.0.1:22379"]
        );
        assert_eq!(o.prefix, "/scrapegrid/");
        assert_eq!(o.lease_ttl, Duration::from_secs(2));
        o.validate().expect("valid");
    }

    #[test]
    fn bad_options_are_named() {
        let cases = [
            (EtcdOptions::new(""), "endpoints"),
            (EtcdOptions::new("127.0.0.1:2379"), "endpoints"),
            (EtcdOptions::new("https://127.0.0.1:2379"), "endpoints"),
            (
                EtcdOptions {
                    lease_ttl: Duration::from_millis(1500),
                    ..EtcdOptions::new("http://127.0.0.1:2379")
                },
                "lease_ttl",
            ),
            (
                EtcdOptions {
                    lease_ttl: Duration::ZERO,
                    ..EtcdOptions::new("http://127.0.0.1:2379")
                },
                "lease_ttl",
            ),
        ];
        for (options, field) in cases {
            let err = options.validate().expect_err("invalid");
            assert!(
                matches!(err, HaError::InvalidOption { option, .. } if option == field),
                "{options:?}: {err}"
            );
        }
    }
}
