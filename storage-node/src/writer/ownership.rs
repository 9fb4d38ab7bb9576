//! Who may write a target's samples: generation fencing, and the series set
//! a target's previous owner hands over to the next (kept
//! [`HANDOVER_KEPT_MS`] after the handover: [`prune_handovers`], which the
//! compactor runs each round).
//!
//! **Fencing.** Every assignment of a target to a scraper carries a
//! generation that only grows. Per target the writer keeps a [`Fence`]: the
//! highest generation seen and the timestamp of that generation's first
//! batch. A batch of an older generation is refused (FENCED) when its
//! timestamp is at or after that first timestamp: the newer owner scrapes
//! from then on, so the batch could only double it (a partitioned old owner
//! that still runs its last assignment). An older batch from before that
//! time is the old owner's last scrape still in flight, and is stored: a move
//! loses no interval to a race between the two owners' streams.
//!
//! **Overrun.** The fence can only refuse what reaches the node after the
//! newer generation's first batch. An old owner that did not hear of the
//! move (paused, or cut off from the control planes) may store scrapes from
//! after that time first, while the new owner's batches wait (its link to
//! this node is down, or this node was). Those scrapes are kept, and the
//! fence records how far they reach ([`Fence::overrun_until`]); the new
//! generation's samples up to there, older than what its series hold, are
//! written out of order instead of being refused, so the slots the old
//! owner missed (it was paused, say) are not lost. A slot both scraped
//! keeps the sample stored first when both have the slot's timestamp; an
//! old owner that woke late stamps its scrape off the slot, and then both
//! are kept (a double scrape, as the partition made it).
//!
//! **Handover.** A scraper that gives a target to another live scraper sends
//! a last batch marked `handover` listing the series of its last successful
//! scrape. The writer stores that set as the target's [`Handover`] record in
//! the same `WriteBatch`; the new owner reads it (`Ingest/TakeHandover`),
//! normally before its first commit, so a series that vanished during the
//! move gets its stale marker from the new owner, as it would have from the
//! old one (stamped with the new owner's first scrape, also when the record
//! arrives late because this node was down at the handover).

use scrapegrid_common::Labels;

use crate::keys;

/// The fence of one target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fence {
    pub generation: u64,
    /// Timestamp of the first batch of `generation`.
    pub first_ts: i64,
    /// The newest batch timestamp stored for the target, of any generation.
    pub newest_ts: i64,
    /// When `generation`'s first batch came, the newest timestamp an older
    /// generation had stored at or after `first_ts` (its overrun);
    /// `i64::MIN` when none had.
    pub overrun_until: i64,
}

impl Default for Fence {
    /// No batch seen: nothing is refused.
    fn default() -> Self {
        Self {
            generation: 0,
            first_ts: i64::MIN,
            newest_ts: i64::MIN,
            overrun_until: i64::MIN,
        }
    }
}

impl Fence {
    /// Returns whether a batch of `generation` at `ts_ms` is refused.
    pub fn refuses(&self, generation: u64, ts_ms: i64) -> bool {
        generation < self.generation && ts_ms >= self.first_ts
    }

    /// Returns the fence after a batch of `generation` at `ts_ms` is stored.
    pub fn after(self, generation: u64, ts_ms: i64) -> Self {
        let newest_ts = self.newest_ts.max(ts_ms);
        if generation > self.generation {
            Self {
                generation,
                first_ts: ts_ms,
                newest_ts,
                overrun_until: match self.newest_ts >= ts_ms {
                    true => self.newest_ts,
                    false => i64::MIN,
                },
            }
        } else {
            Self { newest_ts, ..self }
        }
    }

    /// Returns which samples of a batch of `generation` may be written out
    /// of order (older than their series' newest) rather than refused: all
    /// of an older generation's batch (it passed [`Self::refuses`], so it is
    /// from before the newer owner's first scrape), the current
    /// generation's up to an old owner's overrun.
    pub fn late_writes(&self, generation: u64) -> LateWrites {
        if generation < self.generation {
            LateWrites::BeforeSuccessor
        } else if generation == self.generation && self.overrun_until != i64::MIN {
            LateWrites::AfterOverrun {
                from: self.first_ts,
                until: self.overrun_until,
            }
        } else {
            LateWrites::None
        }
    }

    /// Generation, first timestamp, newest timestamp and overrun,
    /// big-endian.
    pub fn encode(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out[..8].copy_from_slice(&self.generation.to_be_bytes());
        out[8..16].copy_from_slice(&self.first_ts.to_be_bytes());
        out[16..24].copy_from_slice(&self.newest_ts.to_be_bytes());
        out[24..].copy_from_slice(&self.overrun_until.to_be_bytes());
        out
    }

    /// Decodes [`Self::encode`]; eight bytes are a generation stored before
    /// first timestamps were kept, which fences every older batch; sixteen
    /// a fence stored before overruns were kept.
    pub fn decode(b: &[u8]) -> Option<Self> {
        let i64_at = |at: usize| Some(i64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?));
        match b.len() {
            8 => Some(Self {
                generation: keys::decode_u64(b)?,
                ..Self::default()
            }),
            16 | 32 => Some(Self {
                generation: keys::decode_u64(&b[..8])?,
                first_ts: i64_at(8)?,
                newest_ts: if b.len() == 32 { i64_at(16)? } else { i64::MIN },
                overrun_until: if b.len() == 32 { i64_at(24)? } else { i64::MIN },
            }),
            _ => None,
        }
    }
}

/// Which samples of a batch the writer writes out of order rather than
/// refuse ([`Fence::late_writes`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LateWrites {
    /// The usual rules.
    None,
    /// The last scrapes of a target's previous owner: every sample.
    BeforeSuccessor,
    /// The new owner's scrapes behind an old owner's overrun: samples from
    /// its first scrape (`from`) up to the overrun's end (`until`); older
    /// samples (a target's own timestamps going back) are refused as ever.
    AfterOverrun { from: i64, until: i64 },
}

impl LateWrites {
    /// Returns whether a sample at `ts_ms` that the usual rules refuse as
    /// out of order or too old is written.
    pub fn admits(self, ts_ms: i64) -> bool {
        match self {
            Self::None => false,
            Self::BeforeSuccessor => true,
            Self::AfterOverrun { from, until } => (from..=until).contains(&ts_ms),
        }
    }
}

/// The series set a target's previous owner handed over.
#[derive(Clone, Debug, PartialEq)]
pub struct Handover {
    pub generation: u64,
    pub timestamp_ms: i64,
    pub series: Vec<Labels>,
}

impl Handover {
    /// Generation, timestamp, then each label set as a u32 length and
    /// [`keys::encode_labels`].
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.series.len() * 64);
        out.extend_from_slice(&self.generation.to_be_bytes());
        out.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        for labels in &self.series {
            let enc = keys::encode_labels(labels);
            out.extend_from_slice(&(enc.len() as u32).to_be_bytes());
            out.extend_from_slice(&enc);
        }
        out
    }

    /// Decodes [`Self::encode`]; `None` when the bytes are not a record.
    pub fn decode(b: &[u8]) -> Option<Self> {
        let generation = keys::decode_u64(b.get(..8)?)?;
        let timestamp_ms = i64::from_be_bytes(b.get(8..16)?.try_into().ok()?);
        let mut rest = &b[16..];
        let mut series = Vec::new();
        while !rest.is_empty() {
            let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
            let enc = rest.get(4..4 + len)?;
            series.push(keys::decode_labels(enc)?);
            rest = &rest[4 + len..];
        }
        Some(Self {
            generation,
            timestamp_ms,
            series,
        })
    }
}

/// How long a handover record is kept after its handover: the new owner
/// reads it at its first scrape; past Prometheus's 5 minute lookback a
/// vanished series reads as gone anyway.
pub const HANDOVER_KEPT_MS: i64 = 3_600_000;

/// Deletes the handover records of handovers before `before_ms`; returns
/// how many. Read and delete under the database's write lock, so a record
/// the writer replaces meanwhile is never deleted.
pub fn prune_handovers(db: &crate::db::Db, before_ms: i64) -> crate::error::Result<usize> {
    db.read_modify_write(|| {
        let cf = db.cf(keys::CF_META);
        let mut ro = rocksdb::ReadOptions::default();
        if let Some(end) = keys::prefix_end(keys::META_HANDOVER_PREFIX) {
            ro.set_iterate_upper_bound(end);
        }
        let mut it = db.raw().raw_iterator_cf_opt(cf, ro);
        it.seek(keys::META_HANDOVER_PREFIX);
        let mut wb = crate::db::DbBatch::default();
        let mut deleted = 0;
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            // An undecodable record helps nobody either.
            if Handover::decode(v).is_none_or(|h| h.timestamp_ms < before_ms) {
                wb.delete_cf(cf, k);
                deleted += 1;
            }
            it.next();
        }
        it.status()?;
        Ok((wb, deleted))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_handover_records_are_pruned() {
        let t = crate::testutil::TestDb::with_series(&[]);
        let record = |ts| Handover {
            generation: 3,
            timestamp_ms: ts,
            series: vec![Labels::from_pairs([("__name__", "up")])],
        };
        let mut wb = crate::db::DbBatch::default();
        let cf = t.db.cf(keys::CF_META);
        wb.put_cf(cf, keys::handover_key("old"), record(1_000).encode());
        wb.put_cf(cf, keys::handover_key("new"), record(9_000).encode());
        wb.put_cf(cf, keys::handover_key("junk"), b"x");
        wb.put_cf(cf, keys::seq_key("scraper"), keys::encode_u64(5));
        t.db.write_unsynced(wb).unwrap();
        assert_eq!(prune_handovers(&t.db, 5_000).unwrap(), 2);
        let get = |k: &[u8]| t.db.get(keys::CF_META, k).unwrap();
        assert!(get(&keys::handover_key("old")).is_none());
        assert!(get(&keys::handover_key("junk")).is_none());
        assert!(get(&keys::handover_key("new")).is_some());
        assert!(
            get(&keys::seq_key("scraper")).is_some(),
            "other records stay"
        );
        assert_eq!(prune_handovers(&t.db, 5_000).unwrap(), 0);
    }

    #[test]
    fn older_generations_are_fenced_from_the_newer_first_batch_on() {
        let f = Fence::default();
        assert!(!f.refuses(0, 0));
        let f = f.after(5, 10_000);
        assert_eq!(
            f.after(5, 11_000),
            Fence {
                newest_ts: 11_000,
                ..f
            },
            "same generation keeps the fence"
        );
        assert!(!f.refuses(5, 11_000));
        assert!(!f.refuses(6, 9_000), "newer generations always pass");
        assert!(f.refuses(4, 10_000), "old owner at the new owner's slot");
        assert!(f.refuses(4, 12_000));
        assert!(!f.refuses(4, 9_000), "old owner's last scrape in flight");
        assert_eq!(f.after(4, 9_000), f, "an older batch leaves the fence");
        assert_eq!(f.late_writes(4), LateWrites::BeforeSuccessor);
        assert_eq!(f.late_writes(5), LateWrites::None, "no overrun");
    }

    /// The old owner stored scrapes up to 14,000 before the new owner's
    /// first batch (10,000) came: the new owner may write out of order up
    /// to there, and the old owner is fenced from 10,000 on.
    #[test]
    fn an_old_owners_overrun_lets_the_new_owner_write_before_it() {
        let f = Fence::default().after(4, 9_000).after(4, 14_000);
        assert_eq!(f.late_writes(4), LateWrites::None);
        let f = f.after(5, 10_000);
        assert_eq!(f.overrun_until, 14_000);
        let late = f.late_writes(5);
        assert_eq!(
            late,
            LateWrites::AfterOverrun {
                from: 10_000,
                until: 14_000
            }
        );
        assert!(late.admits(10_000) && late.admits(14_000));
        assert!(!late.admits(14_001) && !late.admits(9_999));
        assert!(f.refuses(4, 15_000));
        let f = f.after(5, 16_000);
        assert_eq!(
            (f.newest_ts, f.overrun_until, f.first_ts),
            (16_000, 14_000, 10_000)
        );
        // A newer owner whose first batch is past everything: no overrun.
        let f = f.after(6, 20_000);
        assert_eq!(f.late_writes(6), LateWrites::None);
    }

    #[test]
    fn fences_round_trip_and_read_old_records() {
        let f = Fence {
            generation: 7,
            first_ts: -3,
            newest_ts: 12,
            overrun_until: 11,
        };
        assert_eq!(Fence::decode(&f.encode()), Some(f));
        let before_overruns = Fence::decode(&f.encode()[..16]).unwrap();
        assert_eq!(
            before_overruns,
            Fence {
                newest_ts: i64::MIN,
                overrun_until: i64::MIN,
                ..f
            }
        );
        let old = Fence::decode(&keys::encode_u64(9)).unwrap();
        assert_eq!(old.generation, 9);
        assert!(
            old.refuses(8, i64::MIN),
            "an old record fences everything older"
        );
        assert_eq!(Fence::decode(b"short"), None);
    }

    #[test]
    fn handovers_round_trip_and_reject_garbage() {
        let h = Handover {
            generation: 3,
            timestamp_ms: 1_700_000_000_000,
            series: vec![
                Labels::from_pairs([("__name__", "a"), ("job", "j")]),
                Labels::from_pairs([("__name__", "b")]),
            ],
        };
        let enc = h.encode();
        assert_eq!(Handover::decode(&enc), Some(h.clone()));
        for cut in 1..enc.len() {
            if let Some(d) = Handover::decode(&enc[..cut]) {
                assert!(d.series.len() < h.series.len(), "cut at {cut}");
            }
        }
        let empty = Handover {
            series: vec![],
            ..h
        };
        assert_eq!(Handover::decode(&empty.encode()), Some(empty));
    }
}
