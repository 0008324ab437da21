//! `rowsync stats` and the metrics lines of `rowsync sync`: the running
//! totals the replica keeps of every sync, and one sync's network figures.
//! Figures only: the engine keeps no record content and no token in them.

use std::io::Write;

use rowsync::{Metrics, SyncMetrics};

use super::{open_configured, print_json, Args, Outcome};

/// `rowsync stats [--json]`.
pub(crate) fn stats(a: &Args) -> Outcome {
    a.positional(&[])?;
    let engine = open_configured(a)?;
    let m = engine.metrics()?;
    if a.json {
        return print_json(&m);
    }
    print_totals(&m)
}

fn print_totals(m: &Metrics) -> Outcome {
    if m.syncs == 0 {
        say!("no sync yet");
        return Ok(());
    }
    say!(
        "{} sync(s) ({} failed) from {} to {}",
        m.syncs,
        m.failed_syncs,
        m.since,
        m.last_sync_at
    );
    print_sync_metrics(&m.totals)?;
    let p = &m.totals.phases;
    say!(
        "time: login {} ms, pull {} ms (apply {} ms), push {} ms, tasks {} ms",
        p.login_ms,
        p.pull_ms,
        p.apply_ms,
        p.push_ms,
        p.tasks_ms
    );
    say!("records: pulled {}, pushed {}", m.pulled(), m.pushed());
    for (name, c) in m
        .collections
        .iter()
        .filter(|(_, c)| c.pulled + c.pushed > 0)
    {
        say!(
            "  {name:<24} pulled {:>8}  pushed {:>6}",
            c.pulled,
            c.pushed
        );
    }
    Ok(())
}

/// The requests, bytes and retries of one sync (or of all of them).
pub(crate) fn print_sync_metrics(m: &SyncMetrics) -> Outcome {
    say!(
        "network: {} request(s) ({} login), sent {}, received {} ({} on the wire)",
        m.requests,
        m.login_requests,
        bytes(m.bytes_sent),
        bytes(m.bytes_received),
        bytes(m.wire_bytes_received)
    );
    let r = &m.retries;
    if r.total() > 0 {
        say!(
            "retries: {} (transport {}, stall {}, 5xx {}, 429 {}, cut short {}, token refresh {})",
            r.total(),
            r.transport,
            r.stall,
            r.server_error,
            r.rate_limited,
            r.cut_short,
            r.token_refresh
        );
    }
    Ok(())
}

/// `n` bytes for people: B, KiB, MiB.
fn bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}
