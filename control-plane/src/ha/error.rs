//! Errors of leader election and state persistence.

use std::time::Duration;

/// Why an election or state operation failed.
#[derive(Debug, thiserror::Error)]
pub enum HaError {
    /// The leadership used for a save is no longer the current term: it was
    /// resigned, it expired, or another candidate leads now. Nothing of the
    /// refused change was written.
    #[error("not the leader: term {term} has ended")]
    NotLeader { term: u64 },
    /// The change itself is malformed.
    #[error("invalid state change: {0}")]
    InvalidChange(String),
    /// The etcd options cannot work.
    #[error("invalid etcd option {option}: {reason}")]
    InvalidOption {
        option: &'static str,
        reason: String,
    },
    /// etcd answered with an error (or could not be reached).
    #[error("etcd {op} failed ({code:?}): {message}")]
    Etcd {
        op: &'static str,
        code: tonic::Code,
        message: String,
    },
    /// etcd did not answer in time.
    #[error("etcd {op} timed out after {after:?}")]
    Timeout { op: &'static str, after: Duration },
    /// A key under the prefix does not hold what scrapegrid writes there.
    #[error("corrupt value at etcd key {key:?}: {reason}")]
    Corrupt { key: String, reason: String },
}

pub type Result<T> = std::result::Result<T, HaError>;

impl HaError {
    /// Wraps an etcd error status of operation `op`.
    pub(crate) fn etcd(op: &'static str, status: tonic::Status) -> Self {
        Self::Etcd {
            op,
            code: status.code(),
            message: status.message().to_string(),
        }
    }

    /// Wraps an error of the etcd client in operation `op`.
    pub(crate) fn client(op: &'static str, error: etcd_client::Error) -> Self {
        match error {
            etcd_client::Error::GRpcStatus(status) => Self::etcd(op, status),
            etcd_client::Error::TransportError(e) => Self::Etcd {
                op,
                code: tonic::Code::Unavailable,
                message: e.to_string(),
            },
            other => Self::Etcd {
                op,
                code: tonic::Code::Unknown,
                message: other.to_string(),
            },
        }
    }

    /// Returns whether etcd said the lease does not exist (any more).
    pub(crate) fn is_lease_not_found(&self) -> bool {
        matches!(
            self,
            Self::Etcd {
                code: tonic::Code::NotFound,
                ..
            }
        )
    }
}
