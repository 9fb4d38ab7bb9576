//! Admission of samples as Prometheus's appender decides (`memSeries.appendable`):
//! out-of-order, too-old and duplicate samples are rejected and counted, the
//! rest of the batch goes on; the newest sample per series is kept in memory.

use super::*;

/// The newest stored sample of a series: what a new sample is checked
/// against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub t: i64,
    /// The value's bits: "same value" is a bit-exact comparison, so stale
    /// markers (one NaN bit pattern) compare equal only to stale markers.
    pub v: u64,
}

/// What happens to one incoming sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Newer than the newest: appended, and becomes the newest.
    Append,
    /// Older than the newest but within the out-of-order window: written,
    /// the newest stays.
    AppendOutOfOrder,
    /// Same timestamp and bit-identical value as the newest: accepted,
    /// nothing written.
    NoOp,
    /// Older than the newest (no out-of-order window): rejected.
    OutOfOrder,
    /// Older than the out-of-order window allows: rejected.
    TooOld,
    /// Same timestamp as the newest, different value: rejected.
    Duplicate,
}

/// Decides on sample `(t, v_bits)` of a series whose newest stored sample is
/// `newest` (`None`: none at or after `t`), as Prometheus's
/// `memSeries.appendable` does. `head_max_t` is the newest timestamp
/// written to any series; `window_ms` the out-of-order window (0: off).
pub fn check(
    newest: Option<Head>,
    t: i64,
    v_bits: u64,
    head_max_t: i64,
    window_ms: i64,
) -> Verdict {
    let Some(h) = newest else {
        return Verdict::Append;
    };
    if t > h.t {
        return Verdict::Append;
    }
    if t == h.t {
        return if h.v == v_bits {
            Verdict::NoOp
        } else {
            Verdict::Duplicate
        };
    }
    if window_ms > 0 {
        let max_t = head_max_t.max(h.t);
        return if t >= max_t.saturating_sub(window_ms) {
            Verdict::AppendOutOfOrder
        } else {
            Verdict::TooOld
        };
    }
    Verdict::OutOfOrder
}

/// The outcome of admitting one batch's samples. The batch's new heads are
/// already in the writer's [`Heads`] (a dense array: no per-batch map to
/// hash each sample into); a batch that is not written gives them back
/// with [`State::undo_admitted`].
#[derive(Debug, Default)]
pub(super) struct Admitted {
    /// Each head the batch replaced, in order: `(series id, previous)`.
    undo: Vec<(u64, Option<Head>)>,
    pub(super) max_t: Option<i64>,
    /// Samples written.
    pub(super) appended: usize,
    pub(super) out_of_order: u64,
    pub(super) too_old: u64,
    pub(super) duplicate: u64,
    /// Samples of a previous owner's last scrapes written out of order.
    pub(super) before_successor: u64,
    /// Samples of a new owner written out of order behind an old owner's
    /// overrun ([`super::ownership`]).
    pub(super) after_overrun: u64,
}

impl Admitted {
    pub(super) fn log_rejections(&self, sequence: u64) {
        let rejected = self.out_of_order + self.too_old + self.duplicate;
        if rejected == 0 {
            return;
        }
        // Prometheus warns once per scrape with the counts, too.
        tracing::warn!(
            sequence,
            out_of_order = self.out_of_order,
            too_old = self.too_old,
            duplicate = self.duplicate,
            "samples rejected; the rest of the batch is stored"
        );
    }
}

/// The newest stored sample of each series seen lately, by series id
/// (ids are dense from 1): two arrays, no hashing per sample.
#[derive(Debug, Default)]
pub(super) struct Heads {
    t: Vec<i64>,
    v: Vec<u64>,
    len: usize,
}

/// A timestamp no head has: the slot is empty. (A sample at `i64::MIN`
/// is then reloaded from the database each time: correct, and rare.)
const NO_HEAD: i64 = i64::MIN;

impl Heads {
    pub(super) fn get(&self, id: u64) -> Option<Head> {
        let i = usize::try_from(id).ok()?;
        match *self.t.get(i)? {
            NO_HEAD => None,
            t => Some(Head { t, v: self.v[i] }),
        }
    }

    pub(super) fn insert(&mut self, id: u64, h: Head) {
        self.set(id, Some(h));
    }

    /// Empties series `id`'s slot.
    pub(super) fn remove(&mut self, id: u64) {
        self.set(id, None);
    }

    /// Sets series `id`'s head, or empties its slot; returns the head it
    /// had.
    fn set(&mut self, id: u64, h: Option<Head>) -> Option<Head> {
        let Ok(i) = usize::try_from(id) else {
            return None;
        };
        if i >= self.t.len() {
            // Emptying a slot past the end: it is empty already.
            h?;
            let n = (i + 1).next_power_of_two();
            self.t.resize(n, NO_HEAD);
            self.v.resize(n, 0);
        }
        let (t, v) = h.map_or((NO_HEAD, 0), |h| (h.t, h.v));
        let old = match self.t[i] {
            NO_HEAD => None,
            t => Some(Head { t, v: self.v[i] }),
        };
        self.len = self.len + usize::from(t != NO_HEAD) - usize::from(old.is_some());
        self.t[i] = t;
        self.v[i] = v;
        old
    }

    /// Returns how many series have a head.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Returns how many series have a head newer than `cutoff`.
    pub(super) fn count_newer(&self, cutoff: i64) -> usize {
        self.t
            .iter()
            .filter(|&&t| t != NO_HEAD && t >= cutoff)
            .count()
    }

    /// Drops the heads older than `cutoff`.
    pub(super) fn retain_newer(&mut self, cutoff: i64) {
        for t in &mut self.t {
            if *t != NO_HEAD && *t < cutoff {
                *t = NO_HEAD;
                self.len -= 1;
            }
        }
    }
}

impl State {
    /// Checks `batch_samples` (series indexing `ids`) in order and adds the
    /// accepted ones to `wb`. Series with ids from `self.next_series_id` on
    /// are created by this batch and have no samples yet.
    ///
    /// `late` ([`super::ownership`]) marks the last scrapes of a target's
    /// previous owner that reach the node after its successor's first batch
    /// (the fence lets them through: they are from before the handover
    /// time), and the new owner's scrapes behind an old owner's overrun.
    /// Their samples are older than what their series hold because two
    /// owners' streams raced, so they are written out of order, as within
    /// an out-of-order window, instead of being lost.
    pub(super) fn admit_samples(
        &mut self,
        wb: &mut DbBatch,
        ids: &[u64],
        batch_samples: &[Sample],
        late: LateWrites,
    ) -> Result<Admitted> {
        let mut out = Admitted::default();
        // A scrape names each series once: one head per sample.
        out.undo.reserve(batch_samples.len());
        match self.admit_into(&mut out, wb, ids, batch_samples, late) {
            Ok(()) => Ok(out),
            Err(e) => {
                self.undo_admitted(out);
                Err(e)
            }
        }
    }

    fn admit_into(
        &mut self,
        out: &mut Admitted,
        wb: &mut DbBatch,
        ids: &[u64],
        batch_samples: &[Sample],
        late: LateWrites,
    ) -> Result<()> {
        let db = self.db.clone();
        // Out-of-order samples written by this batch, so a second one at the
        // same timestamp is dropped like one already stored.
        let mut ooo_written: FxHashSet<(u64, i64)> = FxHashSet::default();
        if let Some(e) = &mut self.egress {
            e.begin();
        }
        for s in batch_samples {
            let id = ids[s.series as usize];
            let v = s.value.to_bits();
            // The head holds this batch's last sample of the series, if it
            // had one; a series this batch creates has nothing stored.
            let newest = if id >= self.next_series_id {
                self.heads.get(id)
            } else {
                self.newest(id, s.ts_ms)?
            };
            let head_max_t = out.max_t.unwrap_or(i64::MIN).max(self.head_max_t);
            let verdict = match check(newest, s.ts_ms, v, head_max_t, self.ooo_window_ms) {
                Verdict::OutOfOrder | Verdict::TooOld if late.admits(s.ts_ms) => {
                    match late {
                        LateWrites::BeforeSuccessor => out.before_successor += 1,
                        _ => out.after_overrun += 1,
                    }
                    Verdict::AppendOutOfOrder
                }
                verdict => verdict,
            };
            match verdict {
                Verdict::Append => {
                    if self.store_samples {
                        samples::append_fresh(wb, id, s.ts_ms, s.value);
                    }
                    if let Some(e) = &mut self.egress {
                        e.push(id, s.ts_ms, s.value);
                    }
                    let previous = self.heads.set(id, Some(Head { t: s.ts_ms, v }));
                    out.undo.push((id, previous));
                    out.max_t = Some(out.max_t.map_or(s.ts_ms, |m| m.max(s.ts_ms)));
                    out.appended += 1;
                }
                Verdict::AppendOutOfOrder => {
                    // As in Prometheus's out-of-order head chunk, a sample
                    // at a timestamp already stored is dropped, never an
                    // overwrite.
                    let taken = ooo_written.contains(&(id, s.ts_ms))
                        || samples::any_in(&db, id, s.ts_ms, s.ts_ms)?;
                    if !taken {
                        if self.store_samples {
                            samples::append(&db, wb, id, s.ts_ms, s.value);
                        }
                        if let Some(e) = &mut self.egress {
                            e.push(id, s.ts_ms, s.value);
                        }
                        ooo_written.insert((id, s.ts_ms));
                        out.appended += 1;
                    }
                }
                Verdict::NoOp => {}
                Verdict::OutOfOrder => out.out_of_order += 1,
                Verdict::TooOld => out.too_old += 1,
                Verdict::Duplicate => out.duplicate += 1,
            }
        }
        Ok(())
    }

    /// Gives back the heads of a batch that was not written (newest change
    /// undone first).
    pub(super) fn undo_admitted(&mut self, admitted: Admitted) {
        for (id, previous) in admitted.undo.into_iter().rev() {
            self.heads.set(id, previous);
        }
    }

    /// Returns the newest stored sample of series `id` if it is at or after
    /// `t`; `None` means every stored sample is older than `t`. Reads the
    /// database on a cache miss (the first use after a restart or after the
    /// series went inactive) through [`samples::read`], so it sees whatever
    /// layout samples are stored in.
    pub(super) fn newest(&mut self, id: u64, t: i64) -> Result<Option<Head>> {
        if let Some(h) = self.heads.get(id) {
            return Ok(Some(h));
        }
        let Some(last) = samples::read(&self.db, id, t, i64::MAX)?.pop() else {
            return Ok(None);
        };
        let h = Head {
            t: last.t,
            v: last.v.to_bits(),
        };
        self.heads.insert(id, h);
        self.head_max_t = self.head_max_t.max(h.t);
        Ok(Some(h))
    }

    /// Makes a written batch's admitted samples the new state and counts
    /// its rejections.
    pub(super) fn commit_admitted(&mut self, admitted: &Admitted) {
        if let Some(t) = admitted.max_t {
            self.head_max_t = self.head_max_t.max(t);
        }
        metrics::samples_rejected(metrics::REJECT_OUT_OF_ORDER, admitted.out_of_order);
        metrics::samples_rejected(metrics::REJECT_TOO_OLD, admitted.too_old);
        metrics::samples_rejected(metrics::REJECT_DUPLICATE, admitted.duplicate);
        metrics::samples_before_successor(admitted.before_successor);
        metrics::samples_after_overrun(admitted.after_overrun);
        metrics::active_series(self.heads.len());
    }

    /// Drops the [`Head`]s of series without a sample in the last
    /// [`ACTIVE_SERIES_WINDOW`], at most every [`PRUNE_INTERVAL`]; they are
    /// reloaded from the database when the series gets a sample again.
    /// Without stored samples ([`super::WriterOptions::store_samples`]) a
    /// head is the only record of a series' newest sample, so none is
    /// dropped (a dropped one would let an older sample, or the same one
    /// again, through to the queue); the gauge still counts the active.
    pub(super) fn prune_heads(&mut self) {
        if self.last_prune.elapsed() < PRUNE_INTERVAL {
            return;
        }
        self.last_prune = Instant::now();
        let cutoff = now_ms().saturating_sub(ACTIVE_SERIES_WINDOW.as_millis() as i64);
        if self.store_samples {
            self.heads.retain_newer(cutoff);
            metrics::active_series(self.heads.len());
        } else {
            metrics::active_series(self.heads.count_newer(cutoff));
        }
    }
}
