//! Random sequences of the steps the table cases in `mod.rs` are made of,
//! through the same model of the scrapers.

use super::Step::*;
use super::World;

/// Random clusters: members join, drain, leave, crash and rejoin, weights
/// change, time passes, discovery and the configuration change, the
/// leader and the store come and go. Every round must keep the ledger in
/// step and decide what a round that reads every target decides.
///
/// With `SCRAPEGRID_COORDINATOR_PROMISES=1` every round must also keep the
/// promises (`World::check`, generations that only grow); the test then
/// runs every seed and lists those that break one. That mode found the
/// holes mended beside the incremental rounds (a failover to a member
/// whose handover was still to come, a changed definition re-sent during
/// a handover, a target gone during its handover, a loop replaced before
/// its first slot, a takeover's first starts), each kept by a table case
/// or an e2e test; it still fails on sequences of several faults inside
/// one handover lead (chains of handovers, one member's leave undoing
/// another's), which are not closed yet, so it is not the default.
#[test]
fn random_rounds_match_the_reference() {
    const IDS: [&str; 5] = ["a", "b", "c", "d", "e"];
    let promises = std::env::var_os("SCRAPEGRID_COORDINATOR_PROMISES").is_some();
    let mut broken = Vec::new();
    for seed in 1..=100u64 {
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut w = World::new();
        w.strict = promises;
        let mut history = Vec::new();
        // Scrapers cut off by a leader change: each rejoins or dies before
        // time passes (one that does neither while still scraping is
        // outside what the coordinator can know).
        let mut cut_off: Vec<&'static str> = Vec::new();
        let mut saves_lost = false;
        for i in 0..80 {
            let id = IDS[next(IDS.len() as u64) as usize];
            let connected = w.sessions.contains_key(id);
            let fresh = !connected && !cut_off.contains(&id);
            let step = match next(14) {
                7 | 8 if !cut_off.is_empty() => {
                    let id = cut_off.remove(next(cut_off.len() as u64) as usize);
                    match next(3) {
                        0 => Crash(id),
                        1 => RejoinDraining(id),
                        _ => Rejoin(id),
                    }
                }
                0 | 1 if fresh => Join(id),
                0 | 1 if connected => Weigh(id, 1 + next(50)),
                2 if connected => Drain(id),
                3 if connected => Leave(id),
                4 if connected => Crash(id),
                5 if !cut_off.contains(&id) || next(2) == 0 => Rejoin(id),
                6 if connected => RejoinDraining(id),
                7 | 8 => Advance([200, 600, 1_000, 16_000][next(4) as usize]),
                9 => Targets(next(40) as usize),
                // A leader change after the store was down in its term
                // loses what the leader decided meanwhile: the next one
                // cannot know who runs what until they are back (the
                // storage node's fence is what holds then); the table
                // cases cover that one.
                10 if w.store_down => StoreBack,
                10 if saves_lost => Advance(100),
                10 => {
                    // In id order: the sessions' map has none.
                    cut_off.extend(IDS.iter().filter(|x| w.sessions.contains_key(**x)));
                    LeaderChange
                }
                11 => Reload,
                12 if w.store_down => StoreBack,
                12 => StoreDown,
                _ if connected => Weigh(id, 1 + next(50)),
                _ if fresh => Join(id),
                _ if cut_off.is_empty() => Advance(100),
                _ => Rejoin(cut_off.remove(0)),
            };
            if let Rejoin(x) | RejoinDraining(x) | Crash(x) = step {
                cut_off.retain(|c| *c != x);
            }
            saves_lost |= matches!(step, StoreDown);
            let context = format!("seed {seed}, step {i}: {}, {step:?}", history.join(", "));
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                w.step(step);
                let line = w.round();
                if promises {
                    w.check(&format!("{context} => {line}"));
                }
                line
            }));
            if let Ok(line) = &result {
                history.push(format!("{step:?} => {line}"));
            }
            if let Err(e) = result {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                if !promises || msg.contains("a round that reads") || msg.contains("ledger") {
                    panic!("{context}\n{msg}");
                }
                broken.push(format!("seed {seed}, step {i}: {msg}"));
                break;
            }
        }
    }
    assert!(
        broken.is_empty(),
        "{} of 100 seeds break a promise:\n{}",
        broken.len(),
        broken.join("\n")
    );
}
