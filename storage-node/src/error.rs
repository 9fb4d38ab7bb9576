//! The storage node's error type and its one mapping to gRPC status codes.

/// Errors of the storage node.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// RocksDB failed (IO error, corruption detected by RocksDB, ...).
    #[error("rocksdb: {0}")]
    Storage(#[from] rocksdb::Error),
    /// The database in `path` could not be opened (damaged files, a
    /// missing directory, another process holding its lock).
    #[error("cannot open the database in {path}: {reason}{}", damaged_hint(reason))]
    Open { path: String, reason: String },
    /// A stored record could not be decoded.
    #[error("corrupt {what} record")]
    Corrupt { what: &'static str },
    /// A matcher set is unusable: invalid regex, no matchers, or only
    /// matchers that match the empty string.
    #[error("{0}")]
    InvalidMatchers(String),
    /// A request parameter or expression is invalid.
    #[error("{0}")]
    BadData(String),
    /// A query failed while it ran (many-to-many matching, an invalid
    /// argument value, too many samples): Prometheus's `execution` error.
    #[error("{0}")]
    Execution(String),
    /// A query ran past its deadline (`query.timeout`).
    #[error("query timed out in {0}")]
    QueryTimeout(&'static str),
    /// The writer thread has stopped (shutdown, or an earlier sync failure).
    #[error("writer is not running: {0}")]
    WriterUnavailable(String),
    /// The node is shutting down.
    #[error("shutting down")]
    ShuttingDown,
    /// Writes are refused until space is freed (the writer's free-space
    /// guard, `--storage.min-free-disk-space`).
    #[error("{0}")]
    DiskFull(String),
    /// A Hello from a scraper process that a newer one with the same id
    /// replaced ([`crate::writer`]'s incarnations).
    #[error(
        "scraper id {scraper_id:?} is owned by a newer process; give each scraper its own --id"
    )]
    Superseded { scraper_id: String },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("grpc server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The TLS flags cannot work (a missing file, a certificate without key).
    #[error("tls: {0}")]
    Tls(String),
}

/// What to do about a damaged database.
fn damaged_hint(reason: &str) -> &'static str {
    if reason.contains("Corruption") {
        " (the files are damaged: restore the directory from a backup, or move it \
         away to start empty, losing what it held)"
    } else {
        ""
    }
}

/// Storage node result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for tonic::Status {
    fn from(err: Error) -> Self {
        let msg = err.to_string();
        match err {
            Error::InvalidMatchers(_) | Error::BadData(_) => tonic::Status::invalid_argument(msg),
            Error::Execution(_) | Error::Superseded { .. } => {
                tonic::Status::failed_precondition(msg)
            }
            Error::QueryTimeout(_) => tonic::Status::deadline_exceeded(msg),
            Error::WriterUnavailable(_) | Error::ShuttingDown => tonic::Status::unavailable(msg),
            Error::DiskFull(_) => tonic::Status::resource_exhausted(msg),
            Error::Storage(_)
            | Error::Open { .. }
            | Error::Corrupt { .. }
            | Error::Io(_)
            | Error::Transport(_)
            | Error::Tls(_) => tonic::Status::internal(msg),
        }
    }
}
