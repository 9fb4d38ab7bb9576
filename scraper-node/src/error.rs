//! The scraper node's errors.

/// Errors that stop the scraper node from starting or serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("http server: {0}")]
    Http(#[from] std::io::Error),
    #[error("building the scrape HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("control session task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

pub type Result<T> = std::result::Result<T, Error>;
