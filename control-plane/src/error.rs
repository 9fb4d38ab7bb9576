//! The control plane's errors.

/// Errors that stop the control plane from starting or serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] scrapegrid_common::config::ConfigError),
    #[error("grpc server: {0}")]
    Grpc(#[from] tonic::transport::Error),
    #[error("http server: {0}")]
    Http(#[from] std::io::Error),
    #[error("etcd: {0}")]
    Ha(#[from] crate::ha::HaError),
    #[error("tls: {0}")]
    Tls(String),
}

pub type Result<T> = std::result::Result<T, Error>;
