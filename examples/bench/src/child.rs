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
    let e = Engine::open(db).map_err(|e| e.to_string())?;
    e.configure(settings(url)).map_err(|e| e.to_string())?;
    e.set_credentials(credentials())
        .map_err(|e| e.to_string())?;
    let http = UreqTransport::new(HttpConfig {
        connect_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(120),
        read_timeout: Duration::from_secs(120),
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
        "initial" => {
            let (e, timed) = http_engine(&db, &url, false)?;
            let t = Instant::now();
            let report = e.sync().map_err(|e| e.to_string())?;
            let total = t.elapsed();
            drop(e);
            println!(
                "RESULT records={} secs={:.6} transport_secs={:.6} calls={} hwm_kib={}",
                report.applied(),
                total.as_secs_f64(),
                timed.spent().as_secs_f64(),
                timed.calls(),
                peak_rss_kib()
            );
        }
        // An up-to-date replica pulls what changed; then the baseline
        // upserts the same changed records with plain rusqlite into a copy
        // of the replica as it was before the sync.
        "incremental" => {
            // The baseline works on a copy taken now, so both start from the
            // same file state (WAL checkpointed) with a cold SQLite cache.
            let copy = db.with_extension("baseline.db");
            std::fs::copy(&db, &copy).map_err(|e| e.to_string())?;
            let (e, timed) = http_engine(&db, &url, true)?;
            let t = Instant::now();
            let report = e.sync().map_err(|e| e.to_string())?;
            let total = t.elapsed();
            drop(e);
            let rec = timed.take();
            let mut conn = baseline::open(&copy).map_err(|e| e.to_string())?;
            let tb = Instant::now();
            let n = baseline::apply_pages(&mut conn, &rec)?;
            let base = tb.elapsed();
            drop(conn);
            crate::scenarios::remove_db(&copy);
            println!(
                "RESULT records={} secs={:.6} transport_secs={:.6} calls={} baseline_secs={:.6} baseline_records={} hwm_kib={}",
                report.applied(),
                total.as_secs_f64(),
                timed.spent().as_secs_f64(),
                timed.calls(),
                base.as_secs_f64(),
                n,
                peak_rss_kib()
            );
        }
        other => return Err(format!("unknown child scenario `{other}`")),
    }
    Ok(())
}
