//! A scraper whose wall clock is off: libfaketime (Debian's `faketime`,
//! installed by scripts/install-deps.sh) preloaded into the scraper
//! process ([`super::HaCluster::add_scraper_skewed`]).

use std::path::Path;

use anyhow::{Context, Result};

/// How far a scraper's wall clock is off ([`HaCluster::add_scraper_skewed`]).
#[derive(Clone, Copy, Debug)]
pub enum Skew<'a> {
    /// By a fixed amount: `+3s`, `-2s`.
    Fixed(&'a str),
    /// By what the file says (the same form), read again every second, so
    /// a test steps the clock by writing it.
    File(&'a Path),
}

/// Where Debian's `faketime` package puts libfaketime.
pub(super) fn libfaketime() -> Result<String> {
    let candidates = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
    ];
    candidates
        .iter()
        .find(|p| std::path::Path::new(p).exists())
        .map(|p| p.to_string())
        .context("libfaketime.so.1 is missing: install Debian's faketime (scripts/install-deps.sh)")
}
