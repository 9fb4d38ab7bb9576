//! Swapping the remote write egress ([`crate::egress::Reloader`]) between
//! two writes.

use super::*;

/// Opens the egress of a new config ([`crate::egress::Egress::open`]).
pub struct EgressOpener(pub Box<dyn FnOnce() -> Result<Option<crate::egress::Egress>> + Send>);

impl std::fmt::Debug for EgressOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EgressOpener")
    }
}

impl WriterHandle {
    /// Replaces the remote write egress: the writer syncs, runs `open`
    /// with no write in between, and queues through what it returns from
    /// the next write on. The old egress's queues must be stopped first.
    pub async fn swap_egress(&self, open: EgressOpener) -> Result<Option<crate::egress::Egress>> {
        let (reply, rx) = oneshot::channel();
        self.send(Job::SwapEgress { open, reply }).await?;
        rx.await.map_err(|_| closed())?
    }
}

impl State {
    /// Syncs (what a queue reads must be durable, so what this group wrote
    /// so far is synced before the new log counts it), opens the new
    /// egress and queues through it from the next write on.
    pub(super) fn swap_egress(
        &mut self,
        open: EgressOpener,
    ) -> Result<Option<crate::egress::Egress>> {
        let res = self.db.sync_wal().and_then(|()| (open.0)());
        if let Ok(egress) = &res {
            self.egress = egress.as_ref().map(crate::egress::Egress::appender);
        }
        res
    }
}
