//! The scenarios of issue 8, run from the parent process: initial sync and
//! incremental sync (client in a child process, server here on loopback
//! HTTP), the apply path against a plain-rusqlite baseline and its growth,
//! local writes against a plain-rusqlite baseline, and pushing offline orders.
//! Each returns table rows: figure, the baseline measured in the same run, the
//! ratio (engine speed over baseline speed: 1.0 means as fast) and the target.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rowsync::{Dialect, Engine};
use rowsync_refserver::{InProcessTransport, RefServer, RunningServer, ServerConfig};

/// The dialect this run speaks: set once from the command line (the
/// parent's `--dialect`, passed on to every child).
pub static DIALECT: std::sync::OnceLock<Dialect> = std::sync::OnceLock::new();

/// The dialect this run speaks (mahak unless set).
pub fn dialect() -> Dialect {
    DIALECT.get().copied().unwrap_or_default()
}
use serde_json::{json, Map, Value};

use crate::baseline;
use crate::child;
use crate::transports::{Recording, Replay, Timed};

/// Sizes of one mode (full or quick).
pub struct Sizes {
    /// Total records (half products, half persons) for the initial sync.
    pub initial: Vec<usize>,
    /// Records for the apply-path and growth runs.
    pub apply: Vec<usize>,
    /// The size whose apply run is scenario 2's figure.
    pub apply_main: usize,
    /// Records changed on the server for the incremental sync (the replica
    /// holds the largest `initial` size).
    pub changed: usize,
    /// Single-record creates.
    pub creates: usize,
    /// Grouped writes (an order and 3 lines).
    pub groups: usize,
    /// Offline orders (3 lines each) pushed.
    pub push_orders: usize,
    /// Records of the first sync over a throttled link.
    pub slow_link: usize,
    /// Whether the full-size targets apply.
    pub full: bool,
}

impl Sizes {
    /// The full run.
    pub fn full() -> Sizes {
        Sizes {
            initial: vec![10_000, 100_000, 1_000_000],
            apply: vec![10_000, 100_000, 1_000_000],
            apply_main: 100_000,
            changed: 1_000,
            creates: 100_000,
            groups: 10_000,
            push_orders: 10_000,
            slow_link: 20_000,
            full: true,
        }
    }

    /// The quick run (CI): every scenario with small sizes.
    pub fn quick() -> Sizes {
        Sizes {
            initial: vec![2_000, 10_000],
            apply: vec![2_000, 10_000],
            apply_main: 10_000,
            changed: 100,
            creates: 2_000,
            groups: 500,
            push_orders: 500,
            slow_link: 1_000,
            full: false,
        }
    }
}

/// One line of the result table.
pub struct Row {
    /// Scenario number and name.
    pub scenario: String,
    /// What is measured.
    pub metric: String,
    /// The engine's figure.
    pub figure: String,
    /// The baseline's figure.
    pub baseline: String,
    /// Engine speed over baseline speed.
    pub ratio: String,
    /// The target.
    pub target: String,
    /// Met, missed, or not judged (quick mode, or no target).
    pub met: Option<bool>,
}

pub(crate) type Res<T> = Result<T, String>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Median of `v` (not empty).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub(crate) fn fmt_n(n: usize) -> String {
    if n >= 1_000_000 && n % 1_000_000 == 0 {
        format!("{}M", n / 1_000_000)
    } else if n >= 1_000 && n % 1_000 == 0 {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

pub(crate) fn rate(x: f64) -> String {
    if x >= 1_000_000.0 {
        format!("{:.2}M/s", x / 1e6)
    } else if x >= 1_000.0 {
        format!("{:.1}k/s", x / 1e3)
    } else {
        format!("{x:.0}/s")
    }
}

fn judged(full: bool, ok: bool) -> Option<bool> {
    full.then_some(ok)
}

/// Removes a SQLite file and its WAL companions.
pub fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

fn server_config() -> ServerConfig {
    ServerConfig {
        admin: true,
        log_capacity: 16,
        dialect: match dialect() {
            Dialect::Mahak => rowsync_refserver::Dialect::Mahak,
            Dialect::Documented => rowsync_refserver::Dialect::Documented,
        },
        ..ServerConfig::default()
    }
}

/// The collections the incremental scenario changes: products and the
/// people (documented: persons).
fn people() -> &'static str {
    match dialect() {
        Dialect::Mahak => "people",
        Dialect::Documented => "persons",
    }
}

/// Seeds about `n` records and returns how many there are. Documented: half
/// products, half persons. Mahak: a shop's shape, each product with its
/// detail and visitor stock (3 records), each person with its visitor link
/// (2 records), about half of the records each.
fn seed(server: &RefServer, n: usize) -> Res<usize> {
    let admin = server.admin();
    match dialect() {
        Dialect::Documented => {
            admin.seed_products(n / 2).map_err(err)?;
            admin.seed_persons(n - n / 2).map_err(err)?;
        }
        Dialect::Mahak => {
            let products = n / 6;
            admin.seed_products(products).map_err(err)?;
            let left = n.saturating_sub(3 * products + 8);
            admin.seed_persons(left / 2).map_err(err)?;
        }
    }
    Ok(seeded(server))
}

/// Every record the server holds.
fn seeded(server: &RefServer) -> usize {
    let admin = server.admin();
    server.collections().iter().map(|c| admin.count(c)).sum()
}

/// How many `products` and people the seed of `n` made.
fn seeded_split(server: &RefServer) -> (usize, usize) {
    let admin = server.admin();
    (admin.count("products"), admin.count(people()))
}

/// Drops the replica at `db` (and its log) from the OS page cache, so that
/// the next opening reads it from the disk (Linux; elsewhere a no-op).
fn evict(db: &Path) -> Res<()> {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let Ok(file) = std::fs::File::open(&name) else {
            continue;
        };
        file.sync_all().map_err(err)?;
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: a plain system call on a descriptor this function
            // owns for its whole duration.
            let rc =
                unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
            if rc != 0 {
                return Err(format!("posix_fadvise: error {rc}"));
            }
        }
    }
    Ok(())
}

/// Runs `--child name` against `url` and `db`; returns its `RESULT` pairs.
fn run_child(name: &str, url: &str, db: &Path, extra: &[&str]) -> Res<HashMap<String, f64>> {
    run_child_with(name, url, db, extra, None)
}

/// [`run_child`]; when the child prints `READY`, `between` runs and the
/// child is told to go on (a line on its stdin).
fn run_child_with(
    name: &str,
    url: &str,
    db: &Path,
    extra: &[&str],
    mut between: Option<&mut dyn FnMut() -> Res<()>>,
) -> Res<HashMap<String, f64>> {
    let exe = std::env::current_exe().map_err(err)?;
    // `ROWSYNC_BENCH_WRAP=<child>:<command...>` runs that child under a
    // profiler, e.g. `incremental:perf record -e cpu-clock -g -o p.data --`.
    let wrap = std::env::var("ROWSYNC_BENCH_WRAP").ok().and_then(|w| {
        let (child, cmd) = w.split_once(':')?;
        (child == name).then(|| {
            cmd.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
    });
    let mut cmd = match wrap.as_deref() {
        Some([prog, rest @ ..]) => {
            let mut c = Command::new(prog);
            c.args(rest).arg(exe);
            c
        }
        _ => Command::new(exe),
    };
    let mut child = cmd
        .args([
            "--child",
            name,
            "--dialect",
            dialect().as_str(),
            "--url",
            url,
            "--db",
        ])
        .arg(db)
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(err)?;
    let mut seen = String::new();
    if let Some(between) = between.as_mut() {
        use std::io::{BufRead, Write};
        let Some(stdout) = child.stdout.as_mut() else {
            return Err("no stdout".into());
        };
        let mut reader = std::io::BufReader::new(stdout);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).map_err(err)? == 0 {
                break;
            }
            if line.trim() == "READY" {
                between()?;
                if let Some(stdin) = child.stdin.as_mut() {
                    stdin.write_all(b"go\n").map_err(err)?;
                    stdin.flush().map_err(err)?;
                }
                break;
            }
            seen.push_str(&line);
        }
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().map_err(err)?;
    seen.push_str(&String::from_utf8_lossy(&out.stdout));
    let stdout = seen;
    if !out.status.success() {
        return Err(format!("child `{name}` failed ({}): {stdout}", out.status));
    }
    let line = stdout
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .ok_or_else(|| format!("child `{name}` printed no RESULT: {stdout}"))?;
    Ok(line
        .split_whitespace()
        .skip(1)
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        .collect())
}

/// Scenarios 1 and 3: initial sync over loopback HTTP at each size (client
/// in a child), then, on the largest replica, an incremental sync of
/// `changed` records.
pub fn initial_and_incremental(s: &Sizes, dir: &Path, rows: &mut Vec<Row>) -> Res<()> {
    let largest = *s.initial.iter().max().unwrap_or(&0);
    let mut rss_by_n: Vec<(usize, f64)> = Vec::new();
    for &n in &s.initial {
        let running = RunningServer::start(server_config()).map_err(err)?;
        let t = Instant::now();
        let n = seed(running.server(), n)?;
        eprintln!(
            "  [1] seeded {} records in {:.1}s",
            fmt_n(n),
            t.elapsed().as_secs_f64()
        );
        let url = running.base_url();
        let runs = if n <= 100_000 { 3 } else { 1 };
        let is_target = s.full && n == 1_000_000;
        let check = |r: &HashMap<String, f64>, what: &str| -> Res<()> {
            let records = r.get("records").copied().unwrap_or(0.0) as usize;
            if records != n {
                return Err(format!(
                    "{what}: the initial sync applied {records} records, not {n}"
                ));
            }
            Ok(())
        };
        // Once step by step, keeping the pages: the engine as it was, the
        // naive client (parse and upsert on one thread) and the ceiling (the
        // upserts alone) on the very same pages.
        let db = dir.join(format!("initial-{n}-serial.db"));
        let wire = running.server().wire_bytes();
        let r = run_child(
            "initial",
            &url,
            &db,
            &["--mode", "serial", "--baseline", "1"],
        )?;
        let identity_bytes = running.server().wire_bytes() - wire;
        remove_db(&db);
        check(&r, "step by step")?;
        let nf = n as f64;
        let (serial, naive, ceiling) = (
            nf / r["secs"],
            r["baseline_records"] / r["baseline_secs"],
            r["ceiling_records"] / r["ceiling_secs"],
        );
        eprintln!(
            "  [1] N={}: step by step {:.2}s; naive client {:.2}s, upserts alone {:.2}s",
            fmt_n(n),
            r["secs"],
            r["baseline_secs"],
            r["ceiling_secs"]
        );
        let (mut rates, mut rss) = (Vec::new(), Vec::new());
        let mut kept: Option<PathBuf> = None;
        for run in 0..runs {
            let db = dir.join(format!("initial-{n}-{run}.db"));
            let r = run_child("initial", &url, &db, &["--mode", "pipelined"])?;
            check(&r, "pipelined")?;
            rates.push(nf / r["secs"]);
            rss.push(r["hwm_kib"] / 1024.0);
            eprintln!(
                "  [1] N={} pipelined run {}: {:.2}s total, {:.2}s in transport, {} calls, peak RSS {:.1} MiB",
                fmt_n(n),
                run + 1,
                r["secs"],
                r["transport_secs"],
                r["calls"],
                r["hwm_kib"] / 1024.0
            );
            remove_db(&db);
        }
        // With gzip (the default settings): bytes on the wire, and the
        // replica the incremental sync starts from.
        let db = dir.join(format!("initial-{n}-gzip.db"));
        let wire = running.server().wire_bytes();
        let r = run_child("initial", &url, &db, &["--mode", "gzip"])?;
        let gzip_bytes = running.server().wire_bytes() - wire;
        check(&r, "gzip")?;
        let gzip_rate = nf / r["secs"];
        if n == largest {
            kept = Some(db);
        } else {
            remove_db(&db);
        }
        let fig = median(&rates);
        rows.push(Row {
            scenario: "1 initial sync (HTTP)".into(),
            metric: format!("records/s, N={} (pipelined, median of {runs})", fmt_n(n)),
            figure: rate(fig),
            baseline: format!("{} (naive client: parse+upsert)", rate(naive)),
            ratio: format!("{:.2}", fig / naive),
            target: if is_target {
                ">= 1.0x naive".into()
            } else {
                "-".into()
            },
            met: if is_target { Some(fig >= naive) } else { None },
        });
        rows.push(Row {
            scenario: "1 initial sync (HTTP)".into(),
            metric: format!("pipelined vs step by step, N={}", fmt_n(n)),
            figure: rate(fig),
            baseline: format!("{} (step by step)", rate(serial)),
            ratio: format!("{:.2}", fig / serial),
            target: "-".into(),
            met: None,
        });
        rows.push(Row {
            scenario: "1 initial sync (HTTP)".into(),
            metric: format!("share of the ceiling, N={}", fmt_n(n)),
            figure: rate(fig),
            baseline: format!("{} (prepared upserts alone)", rate(ceiling)),
            ratio: format!("{:.2}", fig / ceiling),
            target: "-".into(),
            met: None,
        });
        rows.push(Row {
            scenario: "1b bytes on the wire".into(),
            metric: format!("first sync, N={}", fmt_n(n)),
            figure: format!("{:.1} MB gzip", gzip_bytes as f64 / 1e6),
            baseline: format!("{:.1} MB identity", identity_bytes as f64 / 1e6),
            ratio: format!("{:.2}", identity_bytes as f64 / gzip_bytes.max(1) as f64),
            target: "-".into(),
            met: None,
        });
        rows.push(Row {
            scenario: "1b bytes on the wire".into(),
            metric: format!("loopback records/s with gzip, N={}", fmt_n(n)),
            figure: rate(gzip_rate),
            baseline: format!("{} (identity)", rate(fig)),
            ratio: format!("{:.2}", gzip_rate / fig),
            target: "-".into(),
            met: None,
        });
        let peak = median(&rss);
        rss_by_n.push((n, peak));
        let prev = rss_by_n
            .iter()
            .rev()
            .nth(1)
            .map(|&(pn, p)| (pn, p, peak / p));
        rows.push(Row {
            scenario: "1 initial sync (HTTP)".into(),
            metric: format!("client peak RSS, N={}", fmt_n(n)),
            figure: format!("{peak:.1} MiB"),
            baseline: prev.map_or("-".into(), |(pn, p, _)| {
                format!("{p:.1} MiB at N={}", fmt_n(pn))
            }),
            ratio: prev.map_or("-".into(), |(_, _, r)| format!("{r:.2}")),
            target: if s.full && n >= 100_000 {
                "<= 64 MiB, flat 100k..1M".into()
            } else {
                "-".into()
            },
            met: if s.full && n == 1_000_000 {
                Some(peak <= 64.0 && prev.is_none_or(|(_, _, r)| r <= 1.2))
            } else if s.full && n == 100_000 {
                Some(peak <= 64.0)
            } else {
                None
            },
        });
        if let Some(db) = kept {
            for evicted in [false, true] {
                let mut opens = Vec::new();
                for _ in 0..3 {
                    if evicted {
                        evict(&db)?;
                    }
                    let r = run_child("open", &url, &db, &["--collection", "products"])?;
                    if r["records"] as usize != 100.min(n) {
                        return Err(format!("open listed {} records", r["records"]));
                    }
                    opens.push(r["secs"] * 1e3);
                }
                let open_ms = median(&opens);
                let how = if evicted {
                    "new process, file dropped from the OS cache"
                } else {
                    "new process"
                };
                eprintln!(
                    "  [8] open + list 100 of N={} ({how}): {opens:.1?} ms",
                    fmt_n(n)
                );
                rows.push(Row {
                    scenario: "8 opening".into(),
                    metric: format!("open + list 100, N={} ({how}, median of 3)", fmt_n(n)),
                    figure: format!("{open_ms:.1} ms"),
                    baseline: "-".into(),
                    ratio: "-".into(),
                    target: if s.full { "< 20 ms".into() } else { "-".into() },
                    met: judged(s.full, open_ms < 20.0),
                });
            }
            let changed = s.changed.min(n);
            let admin = running.server().admin();
            let (products, persons) = seeded_split(running.server());
            let (products, persons) = (products.max(1), persons.max(1));
            // `changed` records, half products and half people, spread over
            // the replica; `round` 1 picks others than round 0.
            let change = |round: usize| -> Res<()> {
                let t = Instant::now();
                for k in 0..changed {
                    let (coll, count, field, value) = if k % 2 == 0 {
                        ("products", products, "price", json!(777_000 + k as i64))
                    } else {
                        (people(), persons, "creditLimit", json!(900_000 + k as i64))
                    };
                    let step = (count / (changed / 2).max(1)).max(1);
                    let id = 1 + ((k / 2) * step + round * (step / 2)) as i64;
                    let mut m = Map::new();
                    m.insert(field.into(), value);
                    admin
                        .update_fields(coll, id.min(count as i64), m)
                        .map_err(err)?;
                }
                eprintln!(
                    "  [3] changed {changed} records on the server in {:.2}s",
                    t.elapsed().as_secs_f64()
                );
                Ok(())
            };
            change(0)?;
            let mut second = || change(1);
            let r = run_child_with("incremental", &url, &db, &[], Some(&mut second))?;
            remove_db(&db);
            for (i, when) in [
                "cold: new process, engine just opened",
                "warm: the engine's second sync",
            ]
            .iter()
            .enumerate()
            {
                let got = r.get(&format!("records{i}")).copied().unwrap_or(-1.0);
                if got as usize != changed {
                    return Err(format!(
                        "incremental sync {i} applied {got} records, not {changed}"
                    ));
                }
                let secs = r[&format!("secs{i}")];
                let client_ms = (secs - r[&format!("transport_secs{i}")]) * 1e3;
                let base_ms = r[&format!("baseline_secs{i}")] * 1e3;
                eprintln!(
                    "  [3] {when}: {:.1} ms total, {:.1} ms in transport ({} calls), {client_ms:.1} ms client; baseline {base_ms:.1} ms ({} records)",
                    secs * 1e3,
                    r[&format!("transport_secs{i}")] * 1e3,
                    r[&format!("calls{i}")],
                    r[&format!("baseline_records{i}")]
                );
                rows.push(Row {
                    scenario: "3 incremental sync".into(),
                    metric: format!(
                        "client ms, {} changed of {} local, {when} (total {:.1} ms)",
                        fmt_n(changed),
                        fmt_n(n),
                        secs * 1e3
                    ),
                    figure: format!("{client_ms:.1} ms"),
                    baseline: format!("{base_ms:.1} ms (plain upsert)"),
                    ratio: format!("{:.2}", base_ms / client_ms),
                    target: if s.full { "< 10 ms".into() } else { "-".into() },
                    met: judged(s.full, client_ms < 10.0),
                });
                let floor_ms = r[&format!("floor_secs{i}")] * 1e3;
                let floor_n = r.get(&format!("floor_records{i}")).copied().unwrap_or(-1.0);
                // The same records as the plain client (the real server's
                // inclusive bound sends each collection's last one again).
                let base_n = r[&format!("baseline_records{i}")];
                if floor_n != base_n || (floor_n as usize) < changed {
                    return Err(format!(
                        "the floor of incremental sync {i} wrote {floor_n} records, the plain client {base_n}, {changed} changed"
                    ));
                }
                eprintln!(
                    "  [3] {when}: SQLite alone (prepared upserts of the same records parsed beforehand, no checkpoint) {floor_ms:.1} ms"
                );
                rows.push(Row {
                    scenario: "3 incremental sync".into(),
                    metric: format!("the floor: SQLite alone, {when}"),
                    figure: format!("{client_ms:.1} ms (engine)"),
                    baseline: format!(
                        "{floor_ms:.1} ms (prepared upserts of records parsed beforehand, no checkpoint)"
                    ),
                    ratio: format!("{:.2}", floor_ms / client_ms),
                    target: "-".into(),
                    met: None,
                });
            }
        }
        running.stop();
    }
    Ok(())
}

/// Scenario 1c: a first sync of `slow_link` records through a proxy that
/// paces answers to 10 Mbit/s, with and without gzip.
pub fn slow_link(s: &Sizes, dir: &Path, rows: &mut Vec<Row>) -> Res<()> {
    let running = RunningServer::start(server_config()).map_err(err)?;
    let n = seed(running.server(), s.slow_link)?;
    let link = crate::throttle::Throttle::start(running.addr(), 10_000_000 / 8).map_err(err)?;
    let url = link.base_url();
    let mut secs = Vec::new();
    let mut bytes = Vec::new();
    for mode in ["pipelined", "gzip"] {
        let db = dir.join(format!("link-{mode}.db"));
        let wire = running.server().wire_bytes();
        let r = run_child("initial", &url, &db, &["--mode", mode])?;
        remove_db(&db);
        if r["records"] as usize != n {
            return Err(format!("{mode}: applied {} of {n}", r["records"]));
        }
        bytes.push(running.server().wire_bytes() - wire);
        eprintln!(
            "  [1c] {mode}: {:.2}s, {:.1} MB on the wire",
            r["secs"],
            bytes[bytes.len() - 1] as f64 / 1e6
        );
        secs.push(r["secs"]);
    }
    rows.push(Row {
        scenario: "1c 10 Mbit/s link".into(),
        metric: format!("first sync seconds, N={}", fmt_n(n)),
        figure: format!("{:.1} s gzip ({:.1} MB)", secs[1], bytes[1] as f64 / 1e6),
        baseline: format!(
            "{:.1} s identity ({:.1} MB)",
            secs[0],
            bytes[0] as f64 / 1e6
        ),
        ratio: format!("{:.2}", secs[0] / secs[1]),
        target: "-".into(),
        met: None,
    });
    running.stop();
    Ok(())
}

/// Pulls everything from an in-process server holding `n` records into an
/// in-memory replica, keeping the login answer and every page.
fn capture(n: usize) -> Res<(Recording, usize)> {
    let server = RefServer::open(server_config()).map_err(err)?;
    let n = seed(&server, n)?;
    let e = Engine::open(":memory:").map_err(err)?;
    e.configure(child::settings("http://127.0.0.1/API/v3"))
        .map_err(err)?;
    e.set_credentials(child::credentials()).map_err(err)?;
    let timed = Timed::new(Arc::new(InProcessTransport::new(server)), true);
    e.set_transport(timed.clone()).map_err(err)?;
    let report = e.sync().map_err(err)?;
    if report.applied() as usize != n {
        return Err(format!("capture applied {} of {n}", report.applied()));
    }
    Ok((timed.take(), n))
}

/// The engine applies `rec` through a replaying transport into a fresh file
/// replica; returns the seconds of `sync`.
fn replay_engine(rec: &Arc<Recording>, db: &Path, n: usize) -> Res<f64> {
    let e = Engine::open(db).map_err(err)?;
    e.configure(child::settings("http://127.0.0.1/API/v3"))
        .map_err(err)?;
    e.set_credentials(child::credentials()).map_err(err)?;
    e.set_transport(Replay::new(rec.clone())).map_err(err)?;
    let t = Instant::now();
    let report = e.sync().map_err(err)?;
    let secs = t.elapsed().as_secs_f64();
    drop(e);
    remove_db(db);
    if report.applied() as usize != n {
        return Err(format!("replay applied {} of {n}", report.applied()));
    }
    Ok(secs)
}

fn replay_baseline(rec: &Recording, db: &Path, n: usize) -> Res<f64> {
    let mut conn = baseline::open(db).map_err(err)?;
    let t = Instant::now();
    let applied = baseline::apply_pages(&mut conn, rec)?;
    let secs = t.elapsed().as_secs_f64();
    drop(conn);
    remove_db(db);
    if applied as usize != n {
        return Err(format!("baseline applied {applied} of {n}"));
    }
    Ok(secs)
}

/// Scenarios 2 and 6: the apply path from pages in memory, against plain
/// rusqlite, at each size.
pub fn apply(s: &Sizes, dir: &Path, rows: &mut Vec<Row>) -> Res<()> {
    let mut per_record: Vec<(usize, f64, f64)> = Vec::new();
    for &n in &s.apply {
        let t = Instant::now();
        let (rec, n) = capture(n)?;
        let rec = Arc::new(rec);
        eprintln!(
            "  [2] captured {} pages ({:.1} MB) of {} records in {:.1}s",
            rec.pages.len(),
            rec.page_bytes() as f64 / 1e6,
            fmt_n(n),
            t.elapsed().as_secs_f64()
        );
        let runs = if n <= 100_000 { 3 } else { 1 };
        let (mut eng, mut base) = (Vec::new(), Vec::new());
        for run in 0..runs {
            let e = replay_engine(&rec, &dir.join(format!("apply-{n}-{run}.db")), n)?;
            let b = replay_baseline(&rec, &dir.join(format!("base-{n}-{run}.db")), n)?;
            eprintln!(
                "  [2] N={} run {}: engine {:.3}s, baseline {:.3}s",
                fmt_n(n),
                run + 1,
                e,
                b
            );
            eng.push(e);
            base.push(b);
        }
        let (e, b) = (median(&eng), median(&base));
        let nf = n as f64;
        if n == s.apply_main {
            rows.push(Row {
                scenario: "2 apply path (replayed pages)".into(),
                metric: format!("records/s, N={} (median of {runs})", fmt_n(n)),
                figure: rate(nf / e),
                baseline: format!("{} (plain upsert)", rate(nf / b)),
                ratio: format!("{:.2}", b / e),
                target: if s.full {
                    ">= 0.70 of baseline".into()
                } else {
                    "-".into()
                },
                met: judged(s.full, b / e >= 0.70),
            });
        }
        per_record.push((n, e / nf * 1e6, b / nf * 1e6));
    }
    for &(n, e, b) in &per_record {
        rows.push(Row {
            scenario: "6 growth (apply)".into(),
            metric: format!("us/record, N={}", fmt_n(n)),
            figure: format!("{e:.2} us"),
            baseline: format!("{b:.2} us (plain upsert)"),
            ratio: format!("{:.2}", b / e),
            target: "-".into(),
            met: None,
        });
    }
    let costs: Vec<f64> = per_record.iter().map(|p| p.1).collect();
    let (lo, hi) = (
        costs.iter().copied().fold(f64::INFINITY, f64::min),
        costs.iter().copied().fold(0.0, f64::max),
    );
    let bcosts: Vec<f64> = per_record.iter().map(|p| p.2).collect();
    let (blo, bhi) = (
        bcosts.iter().copied().fold(f64::INFINITY, f64::min),
        bcosts.iter().copied().fold(0.0, f64::max),
    );
    rows.push(Row {
        scenario: "6 growth (apply)".into(),
        metric: "max/min per-record cost across sizes".into(),
        figure: format!("{:.2}", hi / lo),
        baseline: format!("{:.2} (plain upsert)", bhi / blo),
        ratio: "-".into(),
        target: if s.full { "<= 1.20".into() } else { "-".into() },
        met: judged(s.full, hi / lo <= 1.20),
    });
    Ok(())
}

pub(crate) fn product(i: usize) -> Value {
    json!({"name": format!("Bench product {i}"), "productCode": format!("B{i:07}"),
           "price": 1000 + i, "unit": "box", "stock": 5})
}

fn order(i: usize) -> Value {
    match dialect() {
        Dialect::Mahak => json!({"orderType": 201, "personId": 1 + (i % 50) as i64,
                                 "visitorId": 31, "description": "bench till"}),
        Dialect::Documented => {
            json!({"customerId": 1 + (i % 50) as i64, "totalAmount": 95_000, "note": "bench till"})
        }
    }
}

fn line(order_client_id: i64, k: usize) -> Value {
    match dialect() {
        Dialect::Mahak => json!({"orderClientId": order_client_id,
                                 "productDetailId": 1 + k as i64, "count1": 2, "price": 47_500}),
        Dialect::Documented => json!({"orderClientId": order_client_id, "productId": 1 + k as i64,
                                      "quantity": 2, "unitPrice": 47_500}),
    }
}

/// The targets a latency row is judged by: issue 8's for creates (and
/// issue 15's median within 1.15x of plain rusqlite), issue 15's p99
/// within 1.5x for an order with its lines.
#[derive(Clone, Copy)]
enum Targets {
    Creates,
    Groups,
}

fn latency_rows(
    rows: &mut Vec<Row>,
    s: &Sizes,
    what: &str,
    unit: &str,
    mut eng: Vec<Duration>,
    mut base: Vec<Duration>,
    targets: Targets,
) {
    eng.sort();
    base.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let (em, ep) = (us(percentile(&eng, 0.5)), us(percentile(&eng, 0.99)));
    let (bm, bp) = (us(percentile(&base, 0.5)), us(percentile(&base, 0.99)));
    let et: f64 = eng.iter().map(|d| d.as_secs_f64()).sum();
    let bt: f64 = base.iter().map(|d| d.as_secs_f64()).sum();
    let n = eng.len() as f64;
    let slow = |v: &[Duration]| {
        let s: Vec<&Duration> = v.iter().filter(|d| d.as_micros() >= 1_000).collect();
        let total: f64 = s.iter().map(|d| d.as_secs_f64()).sum();
        (s.len(), total)
    };
    let ((es, est), (bs, bst)) = (slow(&eng), slow(&base));
    eprintln!(
        "  [4] {what}: {es} engine ops >= 1 ms ({:.0}% of its time, max {:.1} ms); baseline {bs} ({:.0}%, max {:.1} ms)",
        100.0 * est / eng.iter().map(|d| d.as_secs_f64()).sum::<f64>(),
        eng.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        100.0 * bst / base.iter().map(|d| d.as_secs_f64()).sum::<f64>(),
        base.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
    );
    let sc = "4 local writes".to_string();
    rows.push(Row {
        scenario: sc.clone(),
        metric: format!("{what}: median latency"),
        figure: format!("{em:.1} us"),
        baseline: format!("{bm:.1} us (plain rusqlite)"),
        ratio: format!("{:.2}", bm / em),
        target: match targets {
            Targets::Creates => "< 30 us, <= 1.15x plain".into(),
            Targets::Groups => "-".into(),
        },
        met: match targets {
            Targets::Creates => judged(s.full, em < 30.0 && em <= 1.15 * bm),
            Targets::Groups => None,
        },
    });
    rows.push(Row {
        scenario: sc.clone(),
        metric: format!("{what}: p99 latency"),
        figure: format!("{ep:.1} us"),
        baseline: format!("{bp:.1} us (plain rusqlite)"),
        ratio: format!("{:.2}", bp / ep),
        target: match targets {
            Targets::Creates => "< 1 ms".into(),
            Targets::Groups => "<= 1.5x plain".into(),
        },
        met: match targets {
            Targets::Creates => judged(s.full, ep < 1000.0),
            Targets::Groups => judged(s.full, ep <= 1.5 * bp),
        },
    });
    rows.push(Row {
        scenario: sc,
        metric: format!("{what}: {unit}/s"),
        figure: rate(n / et),
        baseline: format!("{} (plain rusqlite)", rate(n / bt)),
        ratio: format!("{:.2}", bt / et),
        target: "-".into(),
        met: None,
    });
}

/// Scenario 4: single-record creates and grouped writes (an order with 3
/// lines), each its own transaction, against plain rusqlite.
pub fn local_writes(s: &Sizes, dir: &Path, rows: &mut Vec<Row>) -> Res<()> {
    let db = dir.join("writes.db");
    let bdb = dir.join("writes-base.db");
    let e = Engine::open(&db).map_err(err)?;
    let mut b = baseline::Writes::open(&bdb).map_err(err)?;
    let mut eng = Vec::with_capacity(s.creates);
    let mut base = Vec::with_capacity(s.creates);
    for i in 0..s.creates {
        let v = product(i);
        let t = Instant::now();
        e.create("products", v).map_err(err)?;
        eng.push(t.elapsed());
        let v = [product(i)];
        let t = Instant::now();
        b.write(&v).map_err(err)?;
        base.push(t.elapsed());
    }
    latency_rows(
        rows,
        s,
        &format!("{} creates", fmt_n(s.creates)),
        "writes",
        eng,
        base,
        Targets::Creates,
    );
    let mut eng = Vec::with_capacity(s.groups);
    let mut base = Vec::with_capacity(s.groups);
    for i in 0..s.groups {
        let o = order(i);
        let t = Instant::now();
        e.write(|w| {
            let order = w.create("orders", o)?;
            let oc = order["orderClientId"].as_i64().unwrap_or_default();
            for k in 0..3 {
                w.create("orderDetails", line(oc, k))?;
            }
            Ok(())
        })
        .map_err(err)?;
        eng.push(t.elapsed());
        let group = [
            order(i),
            line(i as i64, 0),
            line(i as i64, 1),
            line(i as i64, 2),
        ];
        let t = Instant::now();
        b.write(&group).map_err(err)?;
        base.push(t.elapsed());
    }
    latency_rows(
        rows,
        s,
        &format!("{} orders+3 lines", fmt_n(s.groups)),
        "groups",
        eng,
        base,
        Targets::Groups,
    );
    drop(e);
    drop(b);
    remove_db(&db);
    remove_db(&bdb);
    Ok(())
}

/// Scenario 5: offline orders with 3 lines each, drained to the reference
/// server over loopback HTTP by one `sync`.
pub fn push(s: &Sizes, dir: &Path, rows: &mut Vec<Row>) -> Res<()> {
    let running = RunningServer::start(server_config()).map_err(err)?;
    running.server().admin().seed_persons(100).map_err(err)?;
    running.server().admin().seed_products(100).map_err(err)?;
    let db = dir.join("push.db");
    let (e, timed) = child::http_engine(&db, &running.base_url(), false)?;
    e.sync().map_err(err)?;
    let t = Instant::now();
    for i in 0..s.push_orders {
        e.write(|w| {
            let order = w.create("orders", order(i))?;
            let oc = order["orderClientId"].as_i64().unwrap_or_default();
            for k in 0..3 {
                w.create("orderDetails", line(oc, k + (i % 90)))?;
            }
            Ok(())
        })
        .map_err(err)?;
    }
    eprintln!(
        "  [5] wrote {} offline orders in {:.2}s",
        s.push_orders,
        t.elapsed().as_secs_f64()
    );
    let before = timed.spent();
    let t = Instant::now();
    let report = e.sync().map_err(err)?;
    let secs = t.elapsed().as_secs_f64();
    let wire = (timed.spent() - before).as_secs_f64();
    let changes = s.push_orders * 4;
    let pending = e.status().map_err(err)?.counts.pending;
    if report.pushed as usize != changes || pending != 0 || report.parked != 0 {
        return Err(format!(
            "push: pushed {} of {changes}, {pending} pending, {} parked",
            report.pushed, report.parked
        ));
    }
    eprintln!(
        "  [5] pushed {changes} changes in {secs:.2}s ({} requests, {wire:.2}s in transport)",
        report.push_requests
    );
    drop(e);
    remove_db(&db);
    running.stop();
    rows.push(Row {
        scenario: "5 push (HTTP)".into(),
        metric: format!(
            "drain {} orders+3 lines ({} changes, {} requests)",
            fmt_n(s.push_orders),
            fmt_n(changes),
            report.push_requests
        ),
        figure: format!("{secs:.2} s"),
        baseline: format!("{wire:.2} s (server+HTTP share)"),
        ratio: format!("{:.2}", wire / secs),
        target: if s.full { "< 3 s".into() } else { "-".into() },
        met: judged(s.full, secs < 3.0),
    });
    Ok(())
}

/// Scenario 7, encryption at rest (issue 14): what SQLCipher costs, plain
/// and encrypted in the same run. The first sync of `n` records through the
/// in-process server (parse and apply, no HTTP), local creates, and opening
/// the filled replica and listing 100 records. The baseline of each row is
/// the plain replica; the ratio is plain time over encrypted time.
pub fn encryption(s: &Sizes, dir: &Path, rows: &mut Vec<Row>) -> Res<()> {
    let n = if s.full { 1_000_000 } else { 10_000 };
    let server = RefServer::open(server_config()).map_err(err)?;
    let n = seed(&server, n)?;
    let key = rowsync::DbKey::raw(&[0x5A; 32]).map_err(err)?;
    let open = |db: &Path, encrypted: bool| -> Res<Engine> {
        let e = if encrypted {
            Engine::open_encrypted(db, key.clone())
        } else {
            Engine::open(db)
        }
        .map_err(err)?;
        let mut settings = rowsync::Settings {
            dialect: dialect(),
            base_url: "http://127.0.0.1/API/v3".into(),
            ..rowsync::Settings::default()
        };
        settings.page_size = 5_000;
        e.configure(settings).map_err(err)?;
        e.set_credentials(server.config().credentials())
            .map_err(err)?;
        e.set_transport(Arc::new(InProcessTransport::new(server.clone())))
            .map_err(err)?;
        Ok(e)
    };
    let sc = "7 encryption".to_string();
    let mut secs = [0.0f64; 2];
    let mut dbs = Vec::new();
    for (i, encrypted) in [false, true].into_iter().enumerate() {
        let db = dir.join(format!("enc-{encrypted}.db"));
        remove_db(&db);
        let e = open(&db, encrypted)?;
        let t = Instant::now();
        e.sync().map_err(err)?;
        secs[i] = t.elapsed().as_secs_f64();
        eprintln!(
            "  [7] first sync of {} records, {}: {:.2}s",
            fmt_n(n),
            if encrypted { "encrypted" } else { "plain" },
            secs[i]
        );
        dbs.push(db);
    }
    rows.push(Row {
        scenario: sc.clone(),
        metric: format!(
            "first sync of {} records in-process (parse + apply)",
            fmt_n(n)
        ),
        figure: format!("{:.0} records/s encrypted", n as f64 / secs[1]),
        baseline: format!("{:.0} records/s plain", n as f64 / secs[0]),
        ratio: format!("{:.2}", secs[0] / secs[1]),
        target: "-".into(),
        met: None,
    });
    // Local creates, alternating so both see the same machine.
    let creates = s.creates.min(20_000);
    let (plain, enc) = (open(&dbs[0], false)?, open(&dbs[1], true)?);
    let (mut p, mut q) = (Vec::with_capacity(creates), Vec::with_capacity(creates));
    for i in 0..creates {
        let t = Instant::now();
        plain
            .create("products", product(10_000_000 + i))
            .map_err(err)?;
        p.push(t.elapsed());
        let t = Instant::now();
        enc.create("products", product(20_000_000 + i))
            .map_err(err)?;
        q.push(t.elapsed());
    }
    drop((plain, enc));
    p.sort();
    q.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    for (what, at) in [("median", 0.5), ("p99", 0.99)] {
        let (a, b) = (us(percentile(&p, at)), us(percentile(&q, at)));
        rows.push(Row {
            scenario: sc.clone(),
            metric: format!("{} local creates: {what} latency", fmt_n(creates)),
            figure: format!("{b:.1} us encrypted"),
            baseline: format!("{a:.1} us plain"),
            ratio: format!("{:.2}", a / b),
            target: "-".into(),
            met: None,
        });
    }
    // Opening the filled replica and listing its first 100 products: the
    // median of 5 (the file is in the OS cache; SQLite's own cache is cold).
    let mut open_ms = [0.0f64; 2];
    for (i, encrypted) in [false, true].into_iter().enumerate() {
        let mut times = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            let e = if encrypted {
                Engine::open_encrypted(&dbs[i], key.clone())
            } else {
                Engine::open(&dbs[i])
            }
            .map_err(err)?;
            let page = e
                .list(
                    "products",
                    &rowsync::ListOptions {
                        limit: 100,
                        ..Default::default()
                    },
                )
                .map_err(err)?;
            if page.records.len() != 100 {
                return Err(format!("listed {} products", page.records.len()));
            }
            times.push(t.elapsed().as_secs_f64() * 1e3);
            drop(e);
        }
        times.sort_by(f64::total_cmp);
        open_ms[i] = times[times.len() / 2];
    }
    rows.push(Row {
        scenario: sc,
        metric: format!(
            "open a {}-record replica + list 100 (warm OS cache)",
            fmt_n(n)
        ),
        figure: format!("{:.1} ms encrypted", open_ms[1]),
        baseline: format!("{:.1} ms plain", open_ms[0]),
        ratio: format!("{:.2}", open_ms[0] / open_ms[1]),
        target: "-".into(),
        met: None,
    });
    for db in &dbs {
        remove_db(db);
    }
    Ok(())
}
