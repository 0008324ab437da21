//! `rowsync-bench`: the benchmark harness of rowsync (issue 8). It runs the
//! scenarios against the reference server — initial sync over loopback HTTP,
//! the apply path from pages in memory, incremental sync, local writes, push,
//! growth — and prints, for each, the figure, a baseline measured in the same
//! run, their ratio and the target, then a table. `--quick` runs every
//! scenario with small sizes (what CI runs); it fails only on an error, never
//! on a missed target. The binary re-executes itself with `--child <name>`
//! to run a client in its own process, so its peak RSS excludes the server.

mod baseline;
mod child;
mod live;
mod scenarios;
mod throttle;
mod transports;

use std::process::ExitCode;
use std::time::Instant;

use scenarios::{Row, Sizes};

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn date() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M:%S UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

fn print_table(rows: &[Row]) {
    println!();
    println!("| Scenario | Metric | Figure | Baseline (same run) | Ratio | Target | Met |");
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "**MISSED**",
            None => "-",
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.scenario, r.metric, r.figure, r.baseline, r.ratio, r.target, met
        );
    }
    println!();
    println!("Ratio = engine speed / baseline speed (1.00 = as fast as the baseline). In");
    println!("scenario 1 the naive client parses and upserts the same pages, kept in memory,");
    println!("on one thread (no network, no server); the engine's figure includes both. For");
    println!("1b it is identity bytes / gzip bytes; for 5 the server+HTTP share of the drain.");
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        let name = args.get(1).cloned().unwrap_or_default();
        return match child::run(&name, &args[2..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("child `{name}` error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let quick = args.iter().any(|a| a == "--quick");
    let only: Option<Vec<String>> = args
        .windows(2)
        .find(|w| w[0] == "--only")
        .map(|w| w[1].split(',').map(str::to_string).collect());
    let dialects: Vec<rowsync::Dialect> = match args
        .windows(2)
        .find(|w| w[0] == "--dialect")
        .map(|w| w[1].as_str())
    {
        None | Some("both") => vec![rowsync::Dialect::Mahak, rowsync::Dialect::Documented],
        Some(d) => match d.parse() {
            Ok(d) => vec![d],
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        },
    };
    if let Some(bad) = args
        .iter()
        .find(|a| a.starts_with("--") && !["--quick", "--only", "--dialect"].contains(&a.as_str()))
    {
        eprintln!("unknown option {bad}; usage: rowsync-bench [--quick] [--only writes,apply,push,initial,encryption,link,live] [--dialect mahak|documented|both]");
        return ExitCode::FAILURE;
    }
    let sizes = if quick { Sizes::quick() } else { Sizes::full() };
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "rowsync-bench ({} mode)",
        if quick { "quick" } else { "full" }
    );
    println!("date:    {}", date());
    println!("machine: nproc={nproc}, CPU: {}", cpu_model());
    println!(
        "build:   {}",
        if cfg!(debug_assertions) {
            "debug (figures are not meaningful: use --release)"
        } else {
            "release"
        }
    );
    let dir = std::env::temp_dir().join(format!("rowsync-bench-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    type Scenario = fn(&Sizes, &std::path::Path, &mut Vec<Row>) -> Result<(), String>;
    let all: [(&str, &str, Scenario); 7] = [
        ("writes", "4 local writes", scenarios::local_writes),
        ("apply", "2+6 apply path and growth", scenarios::apply),
        ("push", "5 push", scenarios::push),
        (
            "initial",
            "1+3 initial and incremental sync",
            scenarios::initial_and_incremental,
        ),
        ("encryption", "7 encryption at rest", scenarios::encryption),
        (
            "link",
            "1c first sync over a 10 Mbit/s link",
            scenarios::slow_link,
        ),
        (
            "live",
            "8 writes with 10 live queries watching",
            live::live_writes,
        ),
    ];
    let mut rows = Vec::new();
    let mut failed = false;
    // One dialect per process (the children inherit it): the parent runs
    // itself once per dialect when asked for both.
    if dialects.len() > 1 {
        for d in dialects {
            let exe = match std::env::current_exe() {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("cannot find the bench binary: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let mut child_args: Vec<String> = Vec::new();
            let mut skip = false;
            for a in &args {
                if skip {
                    skip = false;
                    continue;
                }
                if a == "--dialect" {
                    skip = true;
                    continue;
                }
                child_args.push(a.clone());
            }
            child_args.extend(["--dialect".to_string(), d.as_str().to_string()]);
            match std::process::Command::new(exe).args(&child_args).status() {
                Ok(st) if st.success() => {}
                Ok(st) => {
                    eprintln!("the {d} run failed: {st}");
                    failed = true;
                }
                Err(e) => {
                    eprintln!("cannot run the {d} run: {e}");
                    failed = true;
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        return if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        };
    }
    let dialect = dialects.first().copied().unwrap_or_default();
    let _ = scenarios::DIALECT.set(dialect);
    println!("dialect: {dialect}");
    for (key, title, run) in all {
        if only.as_ref().is_some_and(|o| !o.iter().any(|k| k == key)) {
            continue;
        }
        eprintln!("== scenario {title}");
        let t = Instant::now();
        let before = rows.len();
        match run(&sizes, &dir, &mut rows) {
            Ok(()) => {
                eprintln!("   done in {:.1}s", t.elapsed().as_secs_f64());
                for r in &rows[before..] {
                    eprintln!(
                        "   {} | {} | {} | baseline {} | ratio {} | target {}",
                        r.scenario, r.metric, r.figure, r.baseline, r.ratio, r.target
                    );
                }
            }
            Err(e) => {
                eprintln!("scenario {title} FAILED: {e}");
                failed = true;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    print_table(&rows);
    if failed {
        eprintln!("some scenarios failed");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
