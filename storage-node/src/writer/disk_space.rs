//! The free-space guard: the writer stops writing before the disk is full.
//!
//! A write RocksDB cannot finish (`ENOSPC`) leaves the writer's memory
//! ahead of the disk (open chunks are staged before the write), so the
//! writer refuses everything after it until a restart. The guard keeps that
//! from happening when the disk fills: before each group it reads the space
//! available on the data directory's filesystem (`statvfs`, about a
//! microsecond), and while it is below `--storage.min-free-disk-space` every
//! write is refused with [`Error::DiskFull`] (gRPC `RESOURCE_EXHAUSTED`,
//! HTTP 503), which the scrapers treat as they treat a restart: they keep
//! their batches and send them again. Nothing is written, so nothing acked
//! can be lost; the reserve is left to RocksDB's flushes and compactions.
//!
//! When space returns, a probe write (one meta key, no samples) is made
//! first: RocksDB stops every write after a background write (a flush, say)
//! failed for want of space, and resumes by itself once its space manager
//! sees room again. Until the probe succeeds, writes stay refused; a new
//! background error (RocksDB's count of them grew) makes the writer probe
//! again before its next write, whatever the free space. The compactor
//! skips its rounds while writes are refused ([`Db::writes_refused`]).
//!
//! What this does not cover: a disk that fills between the check and the
//! write (the check runs before each group of batches, microseconds before
//! its writes), and a reserve too small for RocksDB's own flushes and
//! compactions. Then the write fails, and the writer refuses everything
//! until a restart, as before.
//!
//! A stream whose batch was refused has later batches queued behind it
//! (and a stream that ends may still deliver a few after the scraper has
//! opened the next); none of them may be applied before the refused one is
//! sent again, or the resend would be dropped as already stored. So
//! [`Refused`] keeps, per scraper, the range of sequences refused: a batch
//! past the lowest one not yet applied is refused too, until the scraper
//! has sent them all again (in order, as it does after a reconnect).

use std::path::PathBuf;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::db::Db;
use crate::error::{Error, Result};
use crate::metrics;

/// The guard's state.
#[derive(Debug)]
pub(super) struct DiskGuard {
    dir: PathBuf,
    /// Bytes that must stay available; 0 turns the guard off.
    min_free: u64,
    /// Whether writes are refused now.
    low: bool,
    /// RocksDB's background errors seen so far.
    background_errors: u64,
}

impl DiskGuard {
    pub(super) fn new(dir: PathBuf, min_free: u64) -> Self {
        Self {
            dir,
            min_free,
            low: false,
            background_errors: 0,
        }
    }

    /// Returns `Err(DiskFull)` while writes must be refused.
    pub(super) fn check(&mut self, db: &Db) -> Result<()> {
        if self.min_free == 0 {
            return Ok(());
        }
        let res = self.check_space(db);
        db.set_writes_refused(self.low);
        res
    }

    fn check_space(&mut self, db: &Db) -> Result<()> {
        let background_errors = db.background_errors();
        if background_errors > self.background_errors {
            // A flush or compaction failed (the reserve was too small, or
            // something else filled the disk): RocksDB may refuse writes
            // until it recovers, and a write it refuses fails the writer.
            // Writes wait for a probe to succeed.
            tracing::warn!(
                background_errors,
                "the database met a background error; writes wait until it takes one again"
            );
            self.background_errors = background_errors;
            self.low = true;
        }
        let free = match available_bytes(&self.dir) {
            Ok(free) => free,
            Err(err) => {
                // The guard cannot tell: the write goes on, and the writer
                // still fails safe if RocksDB meets a full disk.
                tracing::warn!(dir = %self.dir.display(), error = %err, "cannot read the free space of the data directory");
                return Ok(());
            }
        };
        metrics::disk_available(free);
        if free < self.min_free {
            let why = format!(
                "disk full: {free} bytes available on the filesystem of {}, below --storage.min-free-disk-space ({} bytes); writes resume once space is freed",
                self.dir.display(),
                self.min_free
            );
            if !self.low {
                tracing::error!("{why}; refusing writes");
                self.low = true;
            }
            return Err(Error::DiskFull(why));
        }
        if self.low {
            if let Err(err) = db.probe_write() {
                return Err(Error::DiskFull(format!(
                    "{free} bytes available on the filesystem of {} again, but the database does not take writes yet: {err}",
                    self.dir.display()
                )));
            }
            tracing::info!(free, dir = %self.dir.display(), "space available again; accepting writes");
            self.low = false;
        }
        Ok(())
    }

    /// Returns whether writes are refused now (checkpoints wait too).
    pub(super) fn is_low(&self) -> bool {
        self.low
    }
}

/// Per scraper, the sequences refused for want of space and not yet sent
/// again: `(lowest, highest)`.
#[derive(Debug, Default)]
pub(super) struct Refused(FxHashMap<Arc<str>, (u64, u64)>);

impl Refused {
    /// Returns whether batch `seq` of `scraper` must wait: an earlier one
    /// was refused and has not been sent again.
    pub(super) fn blocks(&self, scraper: &str, seq: u64) -> bool {
        self.0.get(scraper).is_some_and(|&(lowest, _)| seq > lowest)
    }

    /// Records that batch `seq` of `scraper` was refused.
    pub(super) fn refuse(&mut self, scraper: &Arc<str>, seq: u64) {
        let e = self.0.entry(scraper.clone()).or_insert((seq, seq));
        *e = (e.0.min(seq), e.1.max(seq));
    }

    /// Records that batch `seq` of `scraper` was taken (applied, or
    /// answered for another reason): the next one may follow.
    pub(super) fn taken(&mut self, scraper: &str, seq: u64) {
        if let Some((lowest, highest)) = self.0.get_mut(scraper) {
            if seq == *lowest {
                *lowest += 1;
                if *lowest > *highest {
                    self.0.remove(scraper);
                }
            }
        }
    }
}

/// Bytes an unprivileged process may still write on `dir`'s filesystem.
pub fn available_bytes(dir: &std::path::Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `st` is a valid out pointer.
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Steps of one scraper: (sequence, disk full now) -> refused?
    #[test]
    fn later_batches_wait_for_the_refused_ones_to_be_sent_again() {
        let s: Arc<str> = "s".into();
        let mut r = Refused::default();
        let mut step = |seq: u64, full: bool| {
            let refused = full || r.blocks(&s, seq);
            match refused {
                true => r.refuse(&s, seq),
                false => r.taken(&s, seq),
            }
            refused
        };
        let steps = [
            (4, false, false),
            (5, true, true),   // the disk fills
            (6, false, true),  // space again, but 5 is not stored yet
            (8, false, true),  // a late one of the old stream
            (5, false, false), // the resends, in order
            (6, false, false),
            (9, false, true), // the old stream again: 7 and 8 first
            (7, false, false),
            (8, false, false),
            (9, false, false),
            (10, false, false),
        ];
        for (i, (seq, full, want)) in steps.into_iter().enumerate() {
            assert_eq!(step(seq, full), want, "step {i}: sequence {seq}");
        }
        assert!(r.0.is_empty());
    }

    #[test]
    fn refuses_below_the_reserve_and_resumes_above_it() {
        let t = crate::testutil::TestDb::with_series(&[]);
        let dir = t.db.path().to_path_buf();
        let free = available_bytes(&dir).unwrap();
        assert!(free > 0);
        let mut off = DiskGuard::new(dir.clone(), 0);
        assert!(off.check(&t.db).is_ok(), "0 turns it off");
        let mut guard = DiskGuard::new(dir.clone(), u64::MAX);
        let err = guard.check(&t.db).unwrap_err().to_string();
        assert!(
            err.contains("disk full") && err.contains("min-free-disk-space"),
            "{err}"
        );
        assert!(guard.is_low());
        guard.min_free = 1;
        guard.check(&t.db).unwrap();
        assert!(!guard.is_low(), "the probe write went through");
    }
}
