//! Scenario 8: the cost of a local write while ten live queries watch the
//! collection it writes (issue 26), against the same writes with none. Two
//! replicas are written in alternating blocks in one run, so both sides
//! share the machine's load; before each block the watched replica's
//! queries are let finish (a new watch's first result comes after every
//! earlier run), so a block of plain writes does not pay for them.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rowsync::{Engine, Query};
use serde_json::Value;

use crate::scenarios::{fmt_n, percentile, product, rate, remove_db, Res, Row, Sizes};

/// Writes per block.
const BLOCK: usize = 100;

/// The ten queries: the shapes an app's screens use, all on `products`.
fn queries() -> Vec<Query> {
    (0..10_i64)
        .map(|i| match i % 3 {
            0 => Query::new("products").order_by("name").limit(50),
            1 => Query::new("products").order_by_desc("price").limit(20),
            _ => Query::new("products").filter("stock", 5 + i),
        })
        .collect()
}

/// Waits until every run the watched replica owes is over.
fn settle(e: &Engine) -> Res<()> {
    let (tx, rx) = channel();
    let tx = Mutex::new(tx);
    let _w = e
        .watch(
            &Query::new("banks"),
            Arc::new(move |_: &[Value]| {
                let _ = tx.lock().map(|t| t.send(()));
            }),
        )
        .map_err(|e| e.to_string())?;
    rx.recv_timeout(Duration::from_secs(120))
        .map_err(|_| "the live queries never settled".to_string())
}

/// Scenario 8: creates with ten live queries watching, against none.
pub fn live_writes(s: &Sizes, dir: &Path, rows: &mut Vec<Row>) -> Res<()> {
    let (pdb, wdb) = (dir.join("live-none.db"), dir.join("live-ten.db"));
    let plain = Engine::open(&pdb).map_err(|e| e.to_string())?;
    let watched = Engine::open(&wdb).map_err(|e| e.to_string())?;
    let told = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for q in queries() {
        let told = told.clone();
        let h = watched
            .watch(
                &q,
                Arc::new(move |_: &[Value]| {
                    told.fetch_add(1, Ordering::Relaxed);
                }),
            )
            .map_err(|e| e.to_string())?;
        handles.push(h);
    }
    let n = s.creates.div_ceil(BLOCK) * BLOCK;
    let (mut none, mut ten) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for b in 0..n / BLOCK {
        for (e, out) in [(&plain, &mut none), (&watched, &mut ten)] {
            settle(&watched)?;
            for i in 0..BLOCK {
                let v = product(b * BLOCK + i);
                let t = Instant::now();
                e.create("products", v).map_err(|e| e.to_string())?;
                out.push(t.elapsed());
            }
        }
    }
    settle(&watched)?;
    let runs: u64 = handles.iter().map(|h| h.runs()).sum();
    none.sort();
    ten.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let (nm, np) = (us(percentile(&none, 0.5)), us(percentile(&none, 0.99)));
    let (tm, tp) = (us(percentile(&ten, 0.5)), us(percentile(&ten, 0.99)));
    let total = |v: &[Duration]| v.iter().sum::<Duration>().as_secs_f64();
    let sc = "8 live queries".to_string();
    let what = format!("{} creates, 10 watching", fmt_n(n));
    rows.push(Row {
        scenario: sc.clone(),
        metric: format!("{what}: median / p99 latency"),
        figure: format!("{tm:.0} / {tp:.0} us"),
        baseline: format!("{nm:.0} / {np:.0} us (no query watching)"),
        ratio: format!("{:.2}", nm / tm),
        target: "-".into(),
        met: None,
    });
    rows.push(Row {
        scenario: sc,
        metric: format!(
            "{what}: writes/s ({runs} query runs, {} results told)",
            told.load(Ordering::Relaxed)
        ),
        figure: rate(n as f64 / total(&ten)),
        baseline: format!("{} (no query watching)", rate(n as f64 / total(&none))),
        ratio: format!("{:.2}", total(&none) / total(&ten)),
        target: "-".into(),
        met: None,
    });
    drop(handles);
    drop(plain);
    drop(watched);
    remove_db(&pdb);
    remove_db(&wdb);
    Ok(())
}
