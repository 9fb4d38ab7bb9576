//! The leader's state in etcd: the cluster generation and one key per owned
//! target (layout in [`crate::ha::keys`]).
//!
//! A save is a sequence of transactions of at most [`MAX_TXN_OPS`]
//! operations: owner puts, then owner deletes, then the generation put, in
//! the last one. Each is guarded by "the leader key's create_revision is
//! still `term`", so a deposed leader writes nothing more; the first refused
//! transaction ends the save with [`HaError::NotLeader`]. A save cut short
//! may leave owners with a generation above the saved one, so load reports
//! the highest generation it reads.
//!
//! A load reads the generation, then the owners in pages of [`LOAD_PAGE`]
//! keys, all at the revision of the first read: one consistent snapshot.

use etcd_client::{Compare, CompareOp, GetOptions, Txn, TxnOp};

use super::{EtcdCandidate, MAX_TXN_OPS};
use crate::ha::keys::{self, key_after, prefix_end};
use crate::ha::{HaError, Leadership, PersistedState, Result, StateChange};

/// Owner keys read per request (about 1 MB): at 1,000,000 owners, 2,000
/// pages of 500 took 210 s to load, about 0.1 s each in etcd
/// (`control_scale`).
pub(super) const LOAD_PAGE: i64 = 10_000;

impl EtcdCandidate {
    pub(super) async fn save_change(
        &self,
        leadership: &Leadership,
        change: StateChange,
    ) -> Result<()> {
        change.validate()?;
        let not_leader = HaError::NotLeader {
            term: leadership.term,
        };
        let Ok(term) = i64::try_from(leadership.term) else {
            return Err(not_leader);
        };
        let mut ops: Vec<TxnOp> = change
            .upserts
            .iter()
            .map(|o| TxnOp::put(self.keys.owner(&o.target_id), keys::encode_owner(o), None))
            .collect();
        ops.extend(
            change
                .removals
                .iter()
                .map(|id| TxnOp::delete(self.keys.owner(id), None)),
        );
        ops.push(TxnOp::put(
            self.keys.generation(),
            keys::encode_generation(change.generation),
            None,
        ));
        let still_leading = Compare::create_revision(self.keys.leader(), CompareOp::Equal, term);
        let mut rest = ops;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(MAX_TXN_OPS));
            let chunk = std::mem::replace(&mut rest, tail);
            let txn = Txn::new().when([still_leading.clone()]).and_then(chunk);
            let response = self.client.txn(txn).await?;
            if !response.succeeded() {
                return Err(not_leader);
            }
        }
        Ok(())
    }

    pub(super) async fn load_state(&self) -> Result<PersistedState> {
        let generation_key = self.keys.generation();
        let first = self.client.get(generation_key, GetOptions::new()).await?;
        let revision = first.header().map(|h| h.revision()).unwrap_or(0);
        let saved = match first.kvs().first() {
            Some(kv) => keys::decode_generation(kv.key(), kv.value())?,
            None => 0,
        };
        let owners_prefix = self.keys.owners();
        let end = prefix_end(&owners_prefix);
        let mut from = owners_prefix;
        let mut owners = Vec::new();
        loop {
            let options = GetOptions::new()
                .with_range(end.clone())
                .with_limit(LOAD_PAGE)
                .with_revision(revision);
            let page = self.client.get(from, options).await?;
            for kv in page.kvs() {
                owners.push(self.keys.decode_owner(kv.key(), kv.value())?);
            }
            match page.kvs().last() {
                Some(last) if page.more() => from = key_after(last.key()),
                _ => break,
            }
        }
        Ok(PersistedState::new(saved, owners))
    }
}
