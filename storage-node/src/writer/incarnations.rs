//! Which process owns each scraper id's sequence space. A scraper process
//! draws a random incarnation at start and says it in its `WriteHello`.
//! The newest incarnation of an id owns the id's sequences: a Hello with a
//! new one takes over (the previous one is retired), the batches of a
//! retired one are refused (SUPERSEDED), and its Hellos fail. Without this,
//! two processes started with one `--id` number their batches from the same
//! `last_sequence`, and the second batch with a number is acked as a
//! duplicate though it was never stored. A restarted scraper is a new
//! incarnation and simply takes over. Incarnation 0 (a scraper that does
//! not say) is never checked. Kept in memory: after a restart of the
//! storage node the first Hello owns the id again.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Retired incarnations remembered per scraper id.
const RETIRED_KEPT: usize = 16;

#[derive(Debug, Default)]
pub(super) struct Incarnations {
    by_id: HashMap<Arc<str>, Owner>,
}

#[derive(Debug)]
struct Owner {
    current: u64,
    retired: VecDeque<u64>,
}

/// A Hello from a retired incarnation.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Superseded;

impl Incarnations {
    /// A Hello of `incarnation` for `id`: it owns the id from now on, unless
    /// a newer one replaced it before.
    pub(super) fn hello(&mut self, id: &Arc<str>, incarnation: u64) -> Result<(), Superseded> {
        if incarnation == 0 {
            return Ok(());
        }
        let Some(owner) = self.by_id.get_mut(id) else {
            self.by_id.insert(
                id.clone(),
                Owner {
                    current: incarnation,
                    retired: VecDeque::new(),
                },
            );
            return Ok(());
        };
        if owner.current == incarnation {
            return Ok(());
        }
        if owner.retired.contains(&incarnation) {
            return Err(Superseded);
        }
        tracing::warn!(
            scraper = %id,
            previous = owner.current,
            incarnation,
            "a new process took over this scraper id (a restart, or a second process with the same --id: the older one's batches are refused from now on)"
        );
        if owner.retired.len() == RETIRED_KEPT {
            owner.retired.pop_front();
        }
        owner.retired.push_back(owner.current);
        owner.current = incarnation;
        Ok(())
    }

    /// Whether a batch of `incarnation` may be applied for `id`.
    pub(super) fn owns(&self, id: &str, incarnation: u64) -> bool {
        incarnation == 0 || self.by_id.get(id).is_none_or(|o| o.current == incarnation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_incarnation_owns_the_id() {
        let mut inc = Incarnations::default();
        let id: Arc<str> = "s".into();
        assert_eq!(inc.hello(&id, 1), Ok(()));
        assert!(inc.owns("s", 1) && !inc.owns("s", 2));
        assert_eq!(inc.hello(&id, 1), Ok(()), "a reconnect of the owner");
        assert_eq!(inc.hello(&id, 2), Ok(()), "a new process takes over");
        assert!(inc.owns("s", 2) && !inc.owns("s", 1));
        assert_eq!(
            inc.hello(&id, 1),
            Err(Superseded),
            "the old one cannot come back"
        );
        assert!(
            inc.owns("s", 0) && inc.owns("other", 1),
            "0 and unknown ids are not checked"
        );
        assert_eq!(inc.hello(&id, 0), Ok(()));
        // Only the last RETIRED_KEPT retired incarnations are remembered.
        for i in 3..3 + RETIRED_KEPT as u64 {
            inc.hello(&id, i).unwrap();
        }
        assert_eq!(inc.hello(&id, 2), Err(Superseded));
        assert_eq!(inc.hello(&id, 1), Ok(()), "forgotten");
    }
}
