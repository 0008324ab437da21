//! The deterministic simulation (`rowsync_e2e::sim`): many seeds, each a
//! small shop with one to three engines, a faulty network, kills and a
//! virtual clock. `make test` runs `ROWSYNC_SIM_SEEDS` seeds (10,000 by
//! default) on every core; `make test-sim` runs more. One seed replays with
//! `ROWSYNC_SIM_SEED=<seed>`; `ROWSYNC_SIM_FIRST` moves the range. A seed's
//! run does not depend on the thread it runs on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use rowsync_e2e::env_u64;
use rowsync_e2e::sim::{run_seed, Stats};

#[test]
fn every_seed_loses_nothing_doubles_nothing_and_converges() {
    if let Some(seed) = env_u64("ROWSYNC_SIM_SEED") {
        match run_seed(seed) {
            Ok(stats) => println!("seed {seed}: ok, {stats:?}"),
            Err(failure) => panic!("{failure}"),
        }
        return;
    }
    let seeds = env_u64("ROWSYNC_SIM_SEEDS").unwrap_or(10_000);
    let first = env_u64("ROWSYNC_SIM_FIRST").unwrap_or(1);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(8));
    let started = std::time::Instant::now();
    let next = AtomicU64::new(first);
    let ran = AtomicU64::new(0);
    let total = Mutex::new(Stats::default());
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::SeqCst);
                if seed >= first + seeds || failures.lock().unwrap().len() >= 5 {
                    break;
                }
                ran.fetch_add(1, Ordering::SeqCst);
                match run_seed(seed) {
                    Ok(stats) => total.lock().unwrap().add(&stats),
                    Err(failure) => {
                        eprintln!("{failure}");
                        failures.lock().unwrap().push(failure.seed);
                    }
                }
            });
        }
    });
    let total = total.into_inner().unwrap();
    let mut failures = failures.into_inner().unwrap();
    failures.sort_unstable();
    println!(
        "simulation: {} seeds from {first} on {threads} threads in {:.1} s: {} requests, {} faults ({} after the server applied), {} kills, {} acknowledged writes, {} syncs; failing seeds: {failures:?}",
        ran.load(Ordering::SeqCst),
        started.elapsed().as_secs_f64(),
        total.requests,
        total.faults,
        total.applied_then_lost,
        total.kills,
        total.acked_writes,
        total.syncs,
    );
    assert!(failures.is_empty(), "failing seeds: {failures:?}");
    // The run exercised what it claims to.
    assert!(total.faults > 0 && total.kills > 0 && total.applied_then_lost > 0);
}
