//! The fault proxy over real HTTP (issue 12, part 4): engines with their
//! own ureq transport reach the reference server on loopback through
//! `rowsync_e2e::proxy::FaultProxy`, which resets connections, loses answers
//! after the server applied them, cuts bodies, delays, and answers HTML 503
//! and 429. Writes, syncs and kills as in the simulation; then the link
//! heals and every engine must converge with nothing lost or doubled.
//! Seeds run until `ROWSYNC_PROXY_FAULTS` faults (300 by default) were
//! injected; one seed replays with `ROWSYNC_PROXY_SEED=<seed>`.

use rowsync_e2e::env_u64;
use rowsync_e2e::sim::{run_seed_over, Network, Stats};

#[test]
fn engines_behind_a_faulty_proxy_lose_nothing_double_nothing_and_converge() {
    if let Some(seed) = env_u64("ROWSYNC_PROXY_SEED") {
        match run_seed_over(seed, Network::Proxy) {
            Ok(stats) => println!("seed {seed}: ok, {stats:?}"),
            Err(failure) => panic!("{failure}"),
        }
        return;
    }
    let target = env_u64("ROWSYNC_PROXY_FAULTS").unwrap_or(300);
    let started = std::time::Instant::now();
    let mut total = Stats::default();
    let mut seeds = 0u64;
    let mut failures = Vec::new();
    for seed in 1..=target.saturating_mul(10).max(10) {
        if total.faults >= target {
            break;
        }
        seeds += 1;
        match run_seed_over(seed, Network::Proxy) {
            Ok(stats) => total.add(&stats),
            Err(failure) => {
                eprintln!("{failure}");
                failures.push(seed);
                if failures.len() >= 3 {
                    break;
                }
            }
        }
    }
    println!(
        "proxy: {seeds} seeds in {:.1} s: {} requests, {} faults ({} answers lost or cut after the server applied), {} kills, {} acknowledged writes; failing seeds: {failures:?}",
        started.elapsed().as_secs_f64(),
        total.requests,
        total.faults,
        total.applied_then_lost,
        total.kills,
        total.acked_writes,
    );
    assert!(failures.is_empty(), "failing seeds: {failures:?}");
    assert!(total.faults >= target, "only {} faults", total.faults);
}
