//! The pull step: which collections are due (their schedule, `schedule.rs`),
//! then page after page fetched (`fetch.rs`) and applied (`apply.rs`), each
//! page with its checkpoints and its calls in one transaction. It returns
//! the collections it pulled; what follows is the driver's to say.
//!
//! Pipelined: page N is applied on another thread while page N+1 is fetched
//! and parsed here; the rendezvous channel keeps at most one parsed page
//! waiting, so memory stays flat. The pages are allocated and freed by this
//! thread alone: with glibc, a page buffer made on a second thread lands in
//! that thread's arena, and each arena keeps up to twice the largest page
//! unused.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::listeners::Changes;
use crate::log::LogLevel;
use crate::report::{millis, SyncReport};
use crate::schema;
use crate::store::{self, meta};
use crate::sync::apply;
use crate::sync::context::Context;
use crate::sync::fetch::{Fetch, Fetcher};
use crate::sync::schedule;

/// A pull that applied at least this many records (a full page) checkpoints
/// at its end; a smaller one is left to the automatic checkpoint.
pub(crate) const BIG_PULL_RECORDS: u64 = 5_000;
/// The writer's page cache during a big pull (from its first page of
/// `BIG_PULL_RECORDS` records), in KiB. A first sync appends: the pages it
/// touches are the right edges of the table and its indexes, while the
/// page parsed ahead is in memory beside the one being applied. A small
/// pull keeps the whole cache (and what it holds).
const PULL_CACHE_KIB: i64 = 4_000;

/// Which collections the sync's own pull takes.
pub(crate) enum Which<'a> {
    /// The wanted ones that are due.
    Due,
    /// Every wanted one.
    Everything,
    /// These (chosen by the app, with their link collections).
    Chosen(&'a [String]),
}

/// The sync's own pull: the collections `which` names, noted as pulled
/// when the pull is whole. Returns the collections pulled.
pub(crate) fn due(
    ctx: &Context<'_>,
    which: Which<'_>,
    report: &mut SyncReport,
) -> Result<Vec<String>> {
    let all: Vec<String> = match which {
        Which::Chosen(chosen) => chosen.to_vec(),
        _ if ctx.settings.collections.is_empty() => {
            ctx.catalogue.iter().map(|c| c.name.clone()).collect()
        }
        _ => ctx.settings.collections.clone(),
    };
    let everything = !matches!(which, Which::Due);
    let started = ctx.now();
    let mut pulled_at: BTreeMap<String, DateTime<Utc>> = ctx
        .db
        .read(|conn| meta::get(conn, meta::PULLED_AT))?
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let due: Vec<String> = all
        .into_iter()
        .filter(|c| {
            everything
                || schedule::is_due(
                    c,
                    &ctx.settings.pull_intervals,
                    pulled_at.get(c).copied(),
                    started,
                )
        })
        .collect();
    report.pulled_collections.clone_from(&due);
    if due.is_empty() {
        return Ok(due);
    }
    run(ctx, &due, report)?;
    for c in &due {
        pulled_at.insert(c.clone(), started);
    }
    ctx.db
        .write(|tx| tx.set_meta(meta::PULLED_AT, &serde_json::to_string(&pulled_at)?))?;
    Ok(due)
}

/// Pulls `collections` now, whatever their schedule.
pub(crate) fn only(
    ctx: &Context<'_>,
    collections: &[String],
    report: &mut SyncReport,
) -> Result<()> {
    run(ctx, collections, report)
}

/// Pulls `wanted`, page after page, each page applied with its checkpoints
/// in one transaction.
fn run(ctx: &Context<'_>, wanted: &[String], report: &mut SyncReport) -> Result<()> {
    let out = pages(ctx, wanted, report);
    ctx.client.drop_spares();
    // A big pull shrank the writer's cache (see `PULL_CACHE_KIB`).
    ctx.db.set_cache_kib(schema::CACHE_KIB)?;
    out
}

fn pages(ctx: &Context<'_>, wanted: &[String], report: &mut SyncReport) -> Result<()> {
    let (before, inclusive): (HashMap<String, i64>, bool) = ctx.db.read(|conn| {
        Ok((
            store::checkpoints(conn)?.into_iter().collect(),
            meta::get(conn, meta::INCLUSIVE_BOUND)?.is_some(),
        ))
    })?;
    let pager = ctx.codec.pager(ctx.settings.page_size, inclusive);
    let mut fetcher = Fetcher::new(ctx, pager, wanted.to_vec(), before);
    let applied = if ctx.settings.pipelined_pull {
        std::thread::scope(|scope| -> Result<()> {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Fetch>(0);
            let applier = std::thread::Builder::new()
                .name("rowsync-apply".into())
                .spawn_scoped(scope, move || -> Result<()> {
                    // An error drops `rx`: the fetcher stops at its next
                    // page.
                    while let Ok(item) = rx.recv() {
                        apply_fetched(ctx, item, report)?;
                    }
                    Ok(())
                })
                .map_err(|e| Error::Database(format!("cannot start the apply thread: {e}")))?;
            while let Some(item) = fetcher.next_page() {
                if tx.send(item).is_err() {
                    break;
                }
            }
            drop(tx);
            applier
                .join()
                .unwrap_or_else(|_| Err(Error::Database("the pull's apply thread panicked".into())))
        })
    } else {
        let mut applied = Ok(());
        while let Some(item) = fetcher.next_page() {
            applied = apply_fetched(ctx, item, report);
            if applied.is_err() {
                break;
            }
        }
        applied
    };
    if fetcher.learned_inclusive_bound() {
        // Kept even when the pull failed later: the next one asks from the
        // checkpoints plus one from its first request.
        ctx.db.write(|tx| tx.set_meta(meta::INCLUSIVE_BOUND, "1"))?;
    }
    applied
}

/// Applies a fetched page with its checkpoints in one transaction (its
/// calls logged in it too), or returns the error that ended the pull
/// (after logging its calls).
fn apply_fetched(
    ctx: &Context<'_>,
    (calls, fetched): Fetch,
    report: &mut SyncReport,
) -> Result<()> {
    let fetched = match fetched {
        Ok(f) => f,
        Err(e) => {
            ctx.db.write(|tx| tx.append_sync_log(&calls))?;
            ctx.keep_login()?;
            return Err(e);
        }
    };
    report.pull_requests += 1;
    let mut changes = Changes::default();
    {
        let pulled = fetched.collections(&ctx.catalogue)?;
        if fetched.record_count() as u64 >= BIG_PULL_RECORDS {
            ctx.db.set_cache_kib(PULL_CACHE_KIB)?;
        }
        let applying = Instant::now();
        ctx.db.write(|tx| {
            tx.append_sync_log(&calls)?;
            apply::apply(
                tx,
                &ctx.catalogue,
                &pulled,
                &ctx.resolvers,
                report,
                &mut changes,
            )
        })?;
        report.metrics.phases.apply_ms += millis(applying.elapsed());
    }
    let (number, asking_next) = (fetched.number, fetched.asking_next);
    // The page's buffer reads the next page.
    ctx.client.recycle(fetched.page.into_bytes());
    ctx.keep_login()?;
    ctx.logger.log(LogLevel::Debug, "rowsync::pull", || {
        format!("page {number} applied; asking again for {asking_next} collection(s)")
    });
    ctx.emit(changes);
    fetched.then
}
