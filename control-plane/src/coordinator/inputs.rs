//! What scrapers tell the coordinator, as domain types: the service
//! converts each `pb::Hello` and `pb::Status` once, at the edge, so the
//! coordinator's rules never read wire structs.

use scrapegrid_proto::v1 as pb;

/// A scraper opening its session.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hello {
    /// Stable identity (its `--id`), never empty.
    pub scraper_id: String,
    /// Its own HTTP address, for visibility only.
    pub http_addr: String,
    /// It drains across a leader change: give it nothing new.
    pub draining: bool,
    /// What it scrapes now, at which generation.
    pub running: Vec<Running>,
}

/// A target a scraper runs when it says Hello.
#[derive(Clone, Debug, PartialEq)]
pub struct Running {
    pub target_id: String,
    pub generation: u64,
}

/// How the last scrape of a target went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Health {
    #[default]
    Unknown,
    Up,
    Down,
}

impl Health {
    /// The name Prometheus's `/api/v1/targets` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// One target's line of a scraper's periodic status (its heartbeat).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TargetReport {
    pub target_id: String,
    pub generation: u64,
    pub health: Health,
    /// Empty when the last scrape succeeded.
    pub last_error: String,
    /// Start of the last scrape, milliseconds since the Unix epoch.
    pub last_scrape_ms: i64,
    pub last_scrape_duration_seconds: f64,
    /// Series in the last successful scrape: the target's weight.
    pub series_count: u64,
}

/// A Hello the coordinator cannot take.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HelloError {
    #[error("hello: scraper_id is empty")]
    EmptyId,
}

impl TryFrom<pb::Hello> for Hello {
    type Error = HelloError;

    fn try_from(h: pb::Hello) -> Result<Self, HelloError> {
        if h.scraper_id.is_empty() {
            return Err(HelloError::EmptyId);
        }
        Ok(Hello {
            scraper_id: h.scraper_id,
            http_addr: h.http_addr,
            draining: h.draining,
            running: h
                .running
                .into_iter()
                .map(|r| Running {
                    target_id: r.target_id,
                    generation: r.generation,
                })
                .collect(),
        })
    }
}

impl From<pb::TargetHealth> for TargetReport {
    fn from(h: pb::TargetHealth) -> Self {
        let health = match pb::Health::try_from(h.health) {
            Ok(pb::Health::Up) => Health::Up,
            Ok(pb::Health::Down) => Health::Down,
            _ => Health::Unknown,
        };
        TargetReport {
            target_id: h.target_id,
            generation: h.generation,
            health,
            last_error: h.last_error,
            last_scrape_ms: h.last_scrape_ms,
            last_scrape_duration_seconds: h.last_scrape_duration_seconds,
            series_count: h.series_count,
        }
    }
}

/// The reports of a status message.
pub fn reports(status: pb::Status) -> Vec<TargetReport> {
    status.targets.into_iter().map(TargetReport::from).collect()
}
