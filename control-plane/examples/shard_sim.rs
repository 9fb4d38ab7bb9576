//! Simulation benchmark of bounded-load sharding (issue 5): 1,000,000
//! targets over 1,000 scrapers, with unit weights and with skewed
//! (Pareto-like) series counts. Prints assignment time from scratch and after
//! one join and one leave, peak extra memory (VmHWM from /proc/self/status),
//! moved load relative to 1/N, and max/mean load.
//!
//! Run: `cargo run --release -p control-plane --example shard_sim`

use std::time::Instant;

use control_plane::sharding::bounded::{assign_bounded, Assignment, DEFAULT_EPSILON};
use control_plane::sharding::Member;

const TARGETS: usize = 1_000_000;
const MEMBERS: usize = 1_000;

/// Returns a field of /proc/self/status in KiB (0 where unavailable).
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// xorshift64*, for reproducible weights.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed().as_secs_f64() * 1e3)
}

fn report(name: &str, targets: &[(&str, u64)], members: &[Member]) {
    let total: u64 = targets.iter().map(|&(_, w)| w.max(1)).sum();
    let max_w = targets.iter().map(|&(_, w)| w).max().unwrap_or(0);
    let n = members.len() as f64;
    println!("== {name}: {} targets, {} members, total weight {total}, max weight {max_w} (slack eps*W/N = {:.0})",
        targets.len(), members.len(), DEFAULT_EPSILON * total as f64 / n);

    let rss_before = status_kib("VmRSS:");
    let (base, ms) =
        timed(|| assign_bounded(targets, members, &Assignment::default(), DEFAULT_EPSILON));
    let hwm = status_kib("VmHWM:");
    let rss_after = status_kib("VmRSS:");
    println!(
        "from scratch:   {ms:7.1} ms   max/mean {:.4}",
        base.max_over_mean()
    );
    println!(
        "memory: RSS before {} MiB, after {} MiB (result kept), peak {} MiB -> peak extra {} MiB",
        rss_before / 1024,
        rss_after / 1024,
        hwm / 1024,
        hwm.saturating_sub(rss_before) / 1024
    );

    let (again, ms) = timed(|| assign_bounded(targets, members, &base, DEFAULT_EPSILON));
    println!(
        "unchanged:      {ms:7.1} ms   moved load {} (idempotent)",
        base.moved_load(&again, targets)
    );
    drop(again);

    let mut joined = members.to_vec();
    joined.push(Member::new("scraper-joiner"));
    let (after, ms) = timed(|| assign_bounded(targets, &joined, &base, DEFAULT_EPSILON));
    let moved = base.moved_load(&after, targets) as f64 / total as f64;
    println!("one join:       {ms:7.1} ms   moved {:.4}/N (of the load; 1/N = {:.5}), {:.1}% of moved to the joiner, max/mean {:.4}",
        moved * n, 1.0 / n,
        100.0 * after.load("scraper-joiner").unwrap_or(0) as f64 / (moved * total as f64).max(1.0),
        after.max_over_mean());
    drop(after);

    let mut left = members.to_vec();
    let gone = left.remove(members.len() / 2);
    let (after, ms) = timed(|| assign_bounded(targets, &left, &base, DEFAULT_EPSILON));
    let moved = base.moved_load(&after, targets);
    println!(
        "one leave:      {ms:7.1} ms   moved {:.4}/N (leaver's load {:.4}/N), max/mean {:.4}",
        moved as f64 / total as f64 * n,
        base.load(&gone.id).unwrap_or(0) as f64 / total as f64 * n,
        after.max_over_mean()
    );
}

fn main() {
    let ids: Vec<String> = (0..TARGETS)
        .map(|i| {
            format!(
                "job-{}/10.{}.{}.{}:9100",
                i % 50,
                (i >> 16) & 255,
                (i >> 8) & 255,
                i & 255
            )
        })
        .collect();
    let members: Vec<Member> = (0..MEMBERS)
        .map(|i| Member::new(format!("scraper-{i}")))
        .collect();

    let unit: Vec<(&str, u64)> = ids.iter().map(|id| (id.as_str(), 1)).collect();
    report("unit weights", &unit, &members);

    // Pareto-like series counts: most targets ~100 series, a few up to 20,000.
    let mut state = 0x5eed_u64;
    let skewed: Vec<(&str, u64)> = ids
        .iter()
        .map(|id| {
            let u = (xorshift(&mut state) >> 11) as f64 / (1u64 << 53) as f64;
            (
                id.as_str(),
                ((100.0 / (1.0 - u).powf(0.7)) as u64).min(20_000),
            )
        })
        .collect();
    report("skewed weights", &skewed, &members);
}
