//! The client side of the end-to-end scenarios, run in a child process (the
//! bench binary re-executed with `--child <scenario>`) so that the peak RSS
//! it reports (`VmHWM` from `/proc/self/status`) is the client's alone: the
//! reference server stays in the parent. A child prints one `RESULT` line of
//! `key=value` pairs on stdout and exits non-zero on any error.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rowsync::{Credentials, Engine, HttpConfig, Settings, UreqTransport};
use rowsync_refserver::ServerConfig;

use crate::baseline;
use crate::transports::Timed;

/// The peak resident set size of this process, in KiB (`VmHWM`).
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Settings for the reference server at `url`, pulling `pageSize` 5000.
pub fn settings(url: &str) -> Settings {
    Settings {
        dialect: crate::scenarios::dialect(),
        base_url: url.to_string(),
        page_size: 5_000,
        max_attempts: 3,
        base_delay_ms: 10,
        max_delay_ms: 100,
        connect_timeout_ms: 5_000,
        timeout_ms: 120_000,
        ..Settings::default()
    }
}

/// The reference server's default credentials.
pub fn credentials() -> Credentials {
    ServerConfig::default().credentials()
}

/// An engine on `db` for `url` whose calls go through a [`Timed`] ureq
/// transport (recording pages when `record`).
pub fn http_engine(db: &Path, url: &str, record: bool) -> Result<(Engine, Arc<Timed>), String> {
    http_engine_as(db, url, record, true, true)
}

/// [`http_engine`], with the pull pipelined or step by step, and gzip asked
/// for or not.
pub fn http_engine_as(
    db: &Path,
    url: &str,
    record: bool,
    pipelined: bool,
    gzip: bool,
) -> Result<(Engine, Arc<Timed>), String> {
    let e = Engine::open(db).map_err(|e| e.to_string())?;
    e.configure(Settings {
        pipelined_pull: pipelined,
        gzip,
        ..settings(url)
    })
    .map_err(|e| e.to_string())?;
    e.set_credentials(credentials())
        .map_err(|e| e.to_string())?;
    let http = UreqTransport::new(HttpConfig {
        connect_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(120),
        read_timeout: Duration::from_secs(120),
        gzip,
    })
    .map_err(|e| e.to_string())?;
    let timed = Timed::new(Arc::new(http), record);
    e.set_transport(timed.clone()).map_err(|e| e.to_string())?;
    Ok((e, timed))
}

fn arg(args: &[String], name: &str) -> Result<String, String> {
    args.windows(2)
        .find(|w| w[0] == name)
        .map(|w| w[1].clone())
        .ok_or_else(|| format!("missing {name}"))
}

/// Runs child scenario `name`; prints its `RESULT` line.
pub fn run(name: &str, args: &[String]) -> Result<(), String> {
    let dialect = arg(args, "--dialect")?
        .parse()
        .map_err(|e: rowsync::Error| e.to_string())?;
    let _ = crate::scenarios::DIALECT.set(dialect);
    let url = arg(args, "--url")?;
    let db = std::path::PathBuf::from(arg(args, "--db")?);
    match name {
        // A fresh replica pulls everything.
        // `--mode serial` (step by step, no gzip), `pipelined` (no gzip) or
        // `gzip` (pipelined, the default settings). `--baseline 1` keeps the
        // pages and then applies them as the naive client does (parse and
        // upsert, one thread), and the upserts alone (the ceiling).
        "initial" => {
            let mode = arg(args, "--mode").unwrap_or_else(|_| "gzip".into());
            let (pipelined, gzip) = match mode.as_str() {
                "serial" => (false, false),
                "pipelined" => (true, false),
                _ => (true, true),
            };
            let baseline = arg(args, "--baseline").is_ok_and(|v| v == "1");
            let (e, timed) = http_engine_as(&db, &url, baseline, pipelined, gzip)?;
            let t = Instant::now();
            let report = e.sync().map_err(|e| e.to_string())?;
            let total = t.elapsed();
            drop(e);
            let hwm = peak_rss_kib();
            let mut extra = String::new();
            if baseline {
                let rec = timed.take();
                let path = db.with_extension("naive.db");
                let mut conn = baseline::open(&path).map_err(|e| e.to_string())?;
                let tb = Instant::now();
                let n = baseline::apply_pages(&mut conn, &rec)?;
                let base = tb.elapsed().as_secs_f64();
                // The naive client must store what the engine stored, one
                // row per record, or it is not doing the same work.
                let rows: i64 = conn
                    .query_row("SELECT count(*) FROM rs_records", [], |r| r.get(0))
                    .map_err(|e| e.to_string())?;
                if rows as u64 != report.applied() {
                    return Err(format!(
                        "the naive client stored {rows} rows for {} records",
                        report.applied()
                    ));
                }
                drop(conn);
                crate::scenarios::remove_db(&path);
                let path = db.with_extension("ceiling.db");
                let mut conn = baseline::open(&path).map_err(|e| e.to_string())?;
                let (m, ceiling) = baseline::upsert_only(&mut conn, &rec)?;
                drop(conn);
                crate::scenarios::remove_db(&path);
                extra = format!(
                    " baseline_secs={base:.6} baseline_records={n} ceiling_secs={ceiling:.6} ceiling_records={m}"
                );
            }
            println!(
                "RESULT records={} secs={:.6} transport_secs={:.6} calls={} hwm_kib={}{extra}",
                report.applied(),
                total.as_secs_f64(),
                timed.spent().as_secs_f64(),
                timed.calls(),
                hwm
            );
        }
        // An up-to-date replica pulls what changed, twice: first in this
        // fresh process (the engine just opened, SQLite's cache empty, the
        // heap not yet grown), then, after the parent changed other records
        // (it waits for `READY` and answers on stdin), in the same engine,
        // as an app that stays open syncs. Step by step without gzip, so
        // that the time outside the transport is the client's alone. The
        // baseline upserts the same pages with plain rusqlite into a copy
        // taken before the first sync (a new connection: SQLite's cache
        // cold), then the second ones on the same connection. The floor is
        // SQLite alone: the same pages parsed beforehand (not timed), then
        // upserted with one prepared statement into another copy, its log
        // copied into the file by nobody during the timing (the engine's
        // checkpoints are off its path too): what any client on SQLite pays
        // for these writes, cold then warm as above.
        "incremental" => {
            let copy = db.with_extension("baseline.db");
            std::fs::copy(&db, &copy).map_err(|e| e.to_string())?;
            let floor_copy = db.with_extension("floor.db");
            std::fs::copy(&db, &floor_copy).map_err(|e| e.to_string())?;
            let (e, timed) = http_engine_as(&db, &url, true, false, false)?;
            let mut rounds = Vec::new();
            for round in 0..2 {
                if round == 1 {
                    use std::io::{BufRead, Write};
                    println!("READY");
                    std::io::stdout().flush().map_err(|e| e.to_string())?;
                    let mut line = String::new();
                    std::io::stdin()
                        .lock()
                        .read_line(&mut line)
                        .map_err(|e| e.to_string())?;
                }
                let spent = timed.spent();
                let calls = timed.calls();
                let t = Instant::now();
                let report = e.sync().map_err(|e| e.to_string())?;
                let total = t.elapsed();
                rounds.push((
                    report.applied(),
                    total,
                    timed.spent() - spent,
                    timed.calls() - calls,
                    timed.take(),
                ));
            }
            drop(e);
            let mut conn = baseline::open(&copy).map_err(|e| e.to_string())?;
            let mut out = String::from("RESULT");
            for (i, (records, total, transport, calls, rec)) in rounds.iter().enumerate() {
                let tb = Instant::now();
                let n = baseline::apply_pages(&mut conn, rec)?;
                let base = tb.elapsed();
                out.push_str(&format!(
                    " records{i}={records} secs{i}={:.6} transport_secs{i}={:.6} calls{i}={calls} baseline_secs{i}={:.6} baseline_records{i}={n}",
                    total.as_secs_f64(),
                    transport.as_secs_f64(),
                    base.as_secs_f64(),
                ));
            }
            drop(conn);
            crate::scenarios::remove_db(&copy);
            let mut conn = baseline::open(&floor_copy).map_err(|e| e.to_string())?;
            conn.pragma_update(None, "wal_autocheckpoint", 0)
                .map_err(|e| e.to_string())?;
            for (i, (_, _, _, _, rec)) in rounds.iter().enumerate() {
                let (n, secs) = baseline::upsert_only(&mut conn, rec)?;
                out.push_str(&format!(" floor_secs{i}={secs:.6} floor_records{i}={n}"));
            }
            drop(conn);
            crate::scenarios::remove_db(&floor_copy);
            println!("{out} hwm_kib={}", peak_rss_kib());
        }
        // A fresh process opens the replica (SQLite's cache empty) and
        // lists the first 100 records of a collection, as an app at start.
        "open" => {
            let collection = arg(args, "--collection")?;
            let t = Instant::now();
            let e = Engine::open(&db).map_err(|e| e.to_string())?;
            let page = e
                .list(
                    &collection,
                    &rowsync::ListOptions {
                        limit: 100,
                        ..Default::default()
                    },
                )
                .map_err(|e| e.to_string())?;
            let secs = t.elapsed().as_secs_f64();
            drop(e);
            println!("RESULT records={} secs={secs:.6}", page.records.len());
        }
        other => return Err(format!("unknown child scenario `{other}`")),
    }
    Ok(())
}
