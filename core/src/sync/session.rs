//! One sync, top to bottom: pull every wanted collection (paged until the
//! server has nothing newer), then push the outbox in bounded batches and
//! take each record's outcome as the truth: saved records are confirmed and
//! mapped, refused ones are parked with the server's words, and creates whose
//! answer never came are reconciled by a pull before anything is resent
//! (DESIGN.md invariants 2, 3, 11 and 12). The bytes of every request and
//! answer belong to the dialect; this file never reads a JSON key.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};

use serde_json::Value;

use crate::api::client::{ApiClient, CallKind, CallRecord, Outgoing, Reply};
use crate::api::dialect::{Dialect, Endpoints, PulledCollection, SaveOutcome, SaveRules};
use crate::api::envelope::span_within;
use crate::engine::{lock, read, Engine, Settings, INCLUSIVE_BOUND_KEY, PULLED_AT_KEY};
use crate::error::{Error, RecordError, Result};
use crate::local::{self, Changes};
use crate::log::LogLevel;
use crate::record::Meta;
use crate::report::SyncReport;
use crate::schema;
use crate::store;
use crate::sync::dead_letters;
use crate::sync::pull;
use crate::sync::push::{self, Change, Group};
use crate::sync::schedule;

/// Write-ahead-log pages allowed to accumulate during a pull (64 MiB).
const PULL_WAL_PAGES: i64 = 16_384;
/// A pull that applied at least this many records (a full page) checkpoints
/// at its end; a smaller one is left to the automatic checkpoint.
const BIG_PULL_RECORDS: u64 = 5_000;
/// The writer's page cache during a big pull (from its first page of
/// `BIG_PULL_RECORDS` records), in KiB. A first sync appends: the pages it
/// touches are the right edges of the table and its indexes, while the
/// page parsed ahead is in memory beside the one being applied. A small
/// pull keeps the whole cache (and what it holds).
const PULL_CACHE_KIB: i64 = 4_000;
/// Batches planned at a time, so a huge outbox is not read into memory whole.
const PLAN_BATCHES: usize = 8;
/// Conflict rounds per sync before a change that keeps conflicting is parked.
const MAX_CONFLICT_ROUNDS: usize = 3;
/// Saves per sync whose answer may be lost before the sync gives up (each
/// one costs a reconciling pull).
const MAX_DOUBT_ROUNDS: usize = 3;

/// What a batch's send led to.
enum Sent {
    /// Sent and settled; go on with the next batch.
    Done,
    /// Something was parked, resolved or reconciled: plan again.
    Replan,
}

/// A refused change with the server's words: property, code, text.
type Refusal<'a> = (&'a Change, Option<&'a str>, Option<i64>, &'a str);

/// Pulls that may fail to show a create the server says it already has,
/// before the create is parked with the server's words. More than one: a
/// save sent by an earlier process that was killed may still be on its way
/// in the server when this sync's first pull runs, and be applied after it.
const MAX_RECONCILE_PULLS: u32 = 2;

/// True when `change` may create its record on the server: a create, or
/// any change of a record that has no server id yet (created here, then
/// edited or deleted while its create was in doubt).
/// A save refused as a whole with no per-record result: an unknown
/// outcome, not a refusal (invariant 15).
fn refused_unanswered(message: &str, tracking_id: Option<String>) -> Error {
    let message = match message.trim() {
        "" => "the server refused the save as a whole, without a reason".to_string(),
        m => format!("the server refused the save as a whole, with no word on any record: {m}"),
    };
    Error::InDoubt {
        message,
        tracking_id,
    }
}

fn creates(change: &Change) -> bool {
    change.op == store::Op::Create || change.server_id.is_none()
}

/// Adds a refusal to its write group's list (one dead letter per group).
fn add_to_group<'a>(groups: &mut Vec<(i64, Vec<Refusal<'a>>)>, group: i64, entry: Refusal<'a>) {
    match groups.iter_mut().find(|(g, _)| *g == group) {
        Some((_, list)) => list.push(entry),
        None => groups.push((group, vec![entry])),
    }
}

/// A fetched page with the calls it took (for the sync log), or the error
/// that ended the pull.
type Fetch = (Vec<CallRecord>, Result<Fetched>);

/// A pull page, fetched and parsed, ready to apply.
struct Fetched {
    /// The page's text; the records are spans of it.
    page: String,
    entries: Vec<OwnedEntry>,
    /// The page's number in this pull.
    number: u64,
    /// Collections asked for again after it.
    asking_next: usize,
    /// An error found in the page that ends the pull once it is applied.
    then: Result<()>,
}

/// A parsed collection of a page, detached from the page's borrow.
struct OwnedEntry {
    name: String,
    records: Vec<(RecordText, Meta)>,
    row_version: Option<i64>,
    has_more: bool,
}

/// A record's JSON text: a span of the page, or text of its own.
enum RecordText {
    Span(usize, usize),
    Own(String),
}

/// Fetches and parses pull pages, one after the other, keeping the
/// checkpoints each page moves to (those the apply will store: the largest
/// of the old one and the page's), so the next request can leave before
/// the page is applied.
struct Fetcher<'a> {
    engine: &'a Engine,
    client: &'a ApiClient,
    dialect: Dialect,
    endpoint: &'a str,
    page_size: u32,
    max_pages: u64,
    pages: u64,
    /// Collections to ask for next; empty when the pull is over.
    wanted: Vec<String>,
    /// The checkpoints the next request starts from.
    before: HashMap<String, i64>,
    /// The server's lower bound is known to be inclusive (mahak): requests
    /// ask from each checkpoint plus one, so the record at the checkpoint
    /// does not come back.
    inclusive: bool,
    /// `inclusive` was learned during this pull (to be stored).
    learned_inclusive: bool,
    /// Collections whose records came without a version in a paged answer
    /// (mahak): no checkpoint pages past their first page, so they are
    /// asked once more, alone and unpaged, when the rest is done.
    unversioned: Vec<String>,
    /// The request under way is that last, unpaged one.
    unpaged: bool,
    /// Mahak: the order types pulled (empty: all).
    order_types: Vec<i64>,
}

impl Fetcher<'_> {
    /// The next page, or `None` when the pull is over. After an error the
    /// pull is over.
    fn next(&mut self) -> Option<Fetch> {
        if self.wanted.is_empty() {
            return None;
        }
        let mut calls = Vec::new();
        let result = self.fetch(&mut calls);
        if result.is_err() {
            self.wanted.clear();
        }
        Some((calls, result))
    }

    fn fetch(&mut self, calls: &mut Vec<CallRecord>) -> Result<Fetched> {
        if self.pages >= self.max_pages {
            return Err(Error::Protocol {
                collection: None,
                message: format!(
                    "the server kept sending new pages ({}); the pull stopped at its limit",
                    self.pages
                ),
                tracking_id: None,
            });
        }
        let since =
            |before: &HashMap<String, i64>, name: &str| before.get(name).copied().unwrap_or(0);
        let body = {
            let cat = read(&self.engine.catalogue)?;
            let mut asked = Vec::with_capacity(self.wanted.len());
            for name in &self.wanted {
                let from = match since(&self.before, name) {
                    cp if cp > 0 && self.inclusive => cp.saturating_add(1),
                    cp => cp,
                };
                asked.push((cat.require(name)?, from));
            }
            let page_size = if self.unpaged { 0 } else { self.page_size };
            self.dialect
                .pull_body(&asked, page_size, &self.order_types)?
        };
        let logger = &self.engine.logger;
        let out = Outgoing {
            reuse_buffer: true,
            progress: None,
            ..Outgoing::json(&body)
        };
        let reply = self
            .client
            .call_with(self.endpoint, &out, CallKind::Idempotent, &mut |c| {
                log_call(logger, &c);
                calls.push(c)
            })?;
        self.pages += 1;
        let tracking_id = reply.tracking_id.clone();
        let page = self.dialect.page_text(reply.data);
        let cat = read(&self.engine.catalogue)?;
        let mut entries =
            self.dialect
                .parse_pull(&cat, &self.wanted, &page, tracking_id.as_deref())?;
        // Whether this answer showed the bound inclusive for the first time.
        let mut repeats_seen = false;
        if self.dialect == Dialect::Mahak {
            // An inclusive lower bound sends the record at the checkpoint
            // again: it was applied with the page that moved the checkpoint
            // there, so it is not news. Under a cap on the whole answer,
            // such repeats can fill it and leave out the news (see below).
            for e in &mut entries {
                let cp = since(&self.before, &e.def.name);
                if cp > 0 {
                    let had = e.records.len();
                    e.records.retain(|(_, m)| m.row_version != Some(cp));
                    repeats_seen |= e.records.len() < had && !self.inclusive;
                }
            }
            if repeats_seen {
                self.inclusive = true;
                self.learned_inclusive = true;
            }
            if self.page_size > 0 && !self.unpaged {
                for e in entries.iter().filter(|e| e.has_versionless()) {
                    if !self.unversioned.contains(&e.def.name) {
                        self.unversioned.push(e.def.name.clone());
                    }
                }
            }
        }
        let mut then = Ok(());
        let next = match self.dialect {
            Dialect::Mahak => {
                // An answer of repeats alone may have been cut by a cap on
                // the whole answer before any news: ask again, now from the
                // checkpoints plus one. Version numbers are unique across the
                // database (one counter), so the repeat was the only record
                // at its version, and nothing is skipped.
                if repeats_seen
                    || entries
                        .iter()
                        .any(|e| e.brings_news(since(&self.before, &e.def.name)))
                {
                    self.wanted.clone()
                } else if !self.unpaged && !self.unversioned.is_empty() {
                    self.unpaged = true;
                    std::mem::take(&mut self.unversioned)
                } else {
                    Vec::new()
                }
            }
            Dialect::Documented => {
                let mut next = Vec::new();
                for e in entries.iter().filter(|e| e.has_more) {
                    let moved = e
                        .checkpoint()
                        .is_some_and(|cp| cp > since(&self.before, &e.def.name));
                    if !moved {
                        then = Err(Error::Protocol {
                            collection: Some(e.def.name.clone()),
                            message: "the server says more records remain but sent none newer"
                                .into(),
                            tracking_id: tracking_id.clone(),
                        });
                        next.clear();
                        break;
                    }
                    next.push(e.def.name.clone());
                }
                next
            }
        };
        let owned: Vec<OwnedEntry> = entries
            .into_iter()
            .map(|e| {
                if let Some(cp) = e.checkpoint() {
                    let at = self.before.entry(e.def.name.clone()).or_insert(0);
                    *at = (*at).max(cp);
                }
                OwnedEntry {
                    name: e.def.name.clone(),
                    records: e
                        .records
                        .into_iter()
                        .map(|(text, meta)| {
                            let text = match text {
                                Cow::Borrowed(t) => {
                                    match span_within(page.as_bytes(), t.as_bytes()) {
                                        Some(span) => RecordText::Span(span.start, span.end),
                                        None => RecordText::Own(t.to_string()),
                                    }
                                }
                                Cow::Owned(t) => RecordText::Own(t),
                            };
                            (text, meta)
                        })
                        .collect(),
                    row_version: e.row_version,
                    has_more: e.has_more,
                }
            })
            .collect();
        drop(cat);
        self.wanted = next;
        Ok(Fetched {
            page,
            entries: owned,
            number: self.pages,
            asking_next: self.wanted.len(),
            then,
        })
    }
}

/// Logs one HTTP attempt.
fn log_call(logger: &crate::log::Logger, c: &CallRecord) {
    let level = if c.error.is_some() {
        LogLevel::Warn
    } else {
        LogLevel::Debug
    };
    logger.log(level, "rowsync::http", || {
        format!(
            "{} attempt {} status {} in {} ms, tracking id {}{}",
            c.endpoint,
            c.attempt,
            c.status
                .map_or_else(|| "none".to_string(), |s| s.to_string()),
            c.duration_ms,
            c.tracking_id.as_deref().unwrap_or("none"),
            c.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        )
    });
}

/// Writes a call's attempts to the sync log, in a transaction of their own,
/// and keeps the login session if the call changed it.
fn record_calls(engine: &Engine, client: &ApiClient, calls: &[CallRecord]) -> Result<()> {
    {
        let mut store = lock(&engine.store)?;
        let tx = store.begin()?;
        tx.append_sync_log(calls)?;
        tx.commit()?;
    }
    engine.keep_session(client.session())
}

/// Applies a fetched page with its checkpoints in one transaction (its
/// calls logged in it too), or returns the error that ended the pull
/// (after logging its calls).
fn apply_fetched(
    engine: &Engine,
    client: &ApiClient,
    (calls, fetched): Fetch,
    report: &mut SyncReport,
) -> Result<()> {
    let fetched = match fetched {
        Ok(f) => f,
        Err(e) => {
            record_calls(engine, client, &calls)?;
            return Err(e);
        }
    };
    report.pull_requests += 1;
    let Fetched {
        page,
        entries,
        number,
        asking_next,
        then,
    } = fetched;
    let mut changes = Changes::default();
    let record_count: usize = entries.iter().map(|e| e.records.len()).sum();
    {
        let cat = read(&engine.catalogue)?;
        let resolvers = read(&engine.resolvers)?;
        let mut pulled = Vec::with_capacity(entries.len());
        for e in entries {
            let def = cat.require(&e.name)?;
            let records = e
                .records
                .into_iter()
                .map(|(text, meta)| {
                    let text = match text {
                        RecordText::Span(a, b) => Cow::Borrowed(page.get(a..b).unwrap_or_default()),
                        RecordText::Own(t) => Cow::Owned(t),
                    };
                    (text, meta)
                })
                .collect();
            pulled.push(PulledCollection {
                def,
                records,
                row_version: e.row_version,
                has_more: e.has_more,
            });
        }
        let mut store = lock(&engine.store)?;
        if record_count as u64 >= BIG_PULL_RECORDS {
            store.set_cache_kib(PULL_CACHE_KIB)?;
        }
        let tx = store.begin()?;
        tx.append_sync_log(&calls)?;
        pull::apply(&tx, &cat, &pulled, &resolvers, report, &mut changes)?;
        tx.commit()?;
    }
    // The page's buffer reads the next page.
    client.recycle(page.into_bytes());
    engine.keep_session(client.session())?;
    engine.logger.log(LogLevel::Debug, "rowsync::pull", || {
        format!("page {number} applied; asking again for {asking_next} collection(s)")
    });
    engine.registry.emit_changes(&changes.into_events());
    then
}

/// One sync's state.
pub(crate) struct Session<'e> {
    pub(super) engine: &'e Engine,
    pub(super) client: &'e ApiClient,
    pub(super) settings: Settings,
    pub(super) dialect: Dialect,
    pub(super) endpoints: Endpoints,
    rules: SaveRules,
    conflict_rounds: usize,
    doubt_rounds: usize,
    /// Collections pulled whole in this sync (their in-doubt creates need
    /// no second pull).
    pulled: HashSet<String>,
    /// In-doubt creates a pull showed missing in this sync: a second
    /// "already registered" for one of them parks it.
    reconciled: HashMap<i64, u32>,
    /// `sync_all`: every wanted collection, whatever its schedule.
    pub(crate) pull_everything: bool,
}

impl<'e> Session<'e> {
    pub(crate) fn new(engine: &'e Engine, client: &'e ApiClient) -> Result<Self> {
        let settings = engine.settings()?;
        let dialect = settings.dialect;
        Ok(Session {
            engine,
            client,
            endpoints: settings.endpoints(),
            rules: SaveRules {
                already_registered: settings.already_registered.clone(),
            },
            settings,
            dialect,
            conflict_rounds: 0,
            doubt_rounds: 0,
            pulled: HashSet::new(),
            reconciled: HashMap::new(),
            pull_everything: false,
        })
    }

    /// Pull, then push. A page the engine cannot read will not read better
    /// next time: the outbox must not wait behind it, so the push runs
    /// anyway and the pull's error is reported.
    pub(crate) fn run(&mut self, report: &mut SyncReport) -> Result<()> {
        match self.pull_with_large_wal(report) {
            // Uploads and disputes after the push: an upload's record gets
            // its server id there.
            Ok(()) => self.push(report).and_then(|()| self.send_tasks(report)),
            Err(pull_error @ Error::Protocol { .. }) => {
                if let Err(e) = self.push(report) {
                    self.engine.logger.log(LogLevel::Warn, "rowsync::push", || {
                        format!("push after a failed pull: {e}")
                    });
                }
                Err(pull_error)
            }
            Err(e) => Err(e),
        }
    }

    /// One call, its attempts written to the sync log; the login session is
    /// kept when it changed.
    fn call(&self, endpoint: &str, body: &[u8], kind: CallKind) -> Result<Reply> {
        self.call_with(endpoint, &Outgoing::json(body), kind)
    }

    /// [`Session::call`], sending `out`.
    pub(super) fn call_with(
        &self,
        endpoint: &str,
        out: &Outgoing<'_>,
        kind: CallKind,
    ) -> Result<Reply> {
        let mut calls: Vec<CallRecord> = Vec::new();
        let logger = &self.engine.logger;
        let result = self.client.call_with(endpoint, out, kind, &mut |c| {
            log_call(logger, &c);
            calls.push(c)
        });
        record_calls(self.engine, self.client, &calls)?;
        result
    }

    // ----- pull -----------------------------------------------------------------

    /// Runs the pull with checkpoints of the write-ahead log deferred to its
    /// end: a first sync rewrites the same index pages in page after page,
    /// and checkpointing every 4 MiB copied them to the database over and
    /// over. After a big pull the log is checkpointed at once (without
    /// waiting for readers), so the app's next write does not pay for it.
    ///
    /// With a checkpoint thread, that thread is held off while the pull runs
    /// and copies the log once it ends, off the sync's path.
    fn pull_with_large_wal(&mut self, report: &mut SyncReport) -> Result<()> {
        let hold = self.engine.checkpointer.as_ref().map(|c| c.hold());
        lock(&self.engine.store)?.set_wal_autocheckpoint(PULL_WAL_PAGES)?;
        let before = report.applied();
        let out = self.pull(None, report);
        let store = lock(&self.engine.store)?;
        store.set_wal_autocheckpoint(store.wal_limit())?;
        if report.applied() - before >= BIG_PULL_RECORDS && !store.checkpoints_elsewhere() {
            store.checkpoint_passive()?;
        }
        drop(store);
        drop(hold);
        out
    }

    /// Pulls `only` (or every wanted collection), page after page, each
    /// page applied with its checkpoints in one transaction.
    ///
    /// The documented dialect asks again for the collections whose entry
    /// says `hasMore`. The real server has no such flag, and its page cap may
    /// count per collection, over the whole answer, or be its own: a
    /// collection can come back empty only because others used up the page.
    /// So every wanted collection is asked again, each from its new
    /// checkpoint, until an answer brings no record newer than its
    /// checkpoint for any of them. That also ends against a server that
    /// ignores `pageSize`, or that sends the record at the checkpoint again
    /// (an inclusive lower bound).
    fn pull(&mut self, only: Option<&[String]>, report: &mut SyncReport) -> Result<()> {
        let out = self.pull_pages(only, report);
        self.client.drop_spares();
        // A big pull shrank the writer's cache (see `PULL_CACHE_KIB`).
        lock(&self.engine.store)?.set_cache_kib(schema::CACHE_KIB)?;
        out
    }

    fn pull_pages(&mut self, only: Option<&[String]>, report: &mut SyncReport) -> Result<()> {
        let engine = self.engine;
        let all: Vec<String> = match only {
            Some(c) => c.to_vec(),
            None if self.settings.collections.is_empty() => read(&engine.catalogue)?
                .iter()
                .map(|c| c.name.clone())
                .collect(),
            None => self.settings.collections.clone(),
        };
        // The sync's own pull asks only for the collections that are due.
        let started = engine.shutdown.now();
        let mut pulled_at: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
        let all = if only.is_none() {
            pulled_at = {
                let store = lock(&engine.store)?;
                store::meta(store.conn(), PULLED_AT_KEY)?
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or_default()
            };
            let due: Vec<String> = all
                .into_iter()
                .filter(|c| {
                    self.pull_everything
                        || schedule::is_due(
                            c,
                            &self.settings.pull_intervals,
                            pulled_at.get(c).copied(),
                            started,
                        )
                })
                .collect();
            report.pulled_collections.clone_from(&due);
            if due.is_empty() {
                return Ok(());
            }
            due
        } else {
            all
        };
        // The real server's lower bound is probably inclusive: the record at
        // the checkpoint comes back, so a page of one would never move on.
        let page_size = match self.dialect {
            Dialect::Mahak if self.settings.page_size > 0 => self.settings.page_size.max(2),
            _ => self.settings.page_size,
        };
        let (before, inclusive): (HashMap<String, i64>, bool) = {
            let store = lock(&engine.store)?;
            (
                store::checkpoints(store.conn())?.into_iter().collect(),
                self.dialect == Dialect::Mahak
                    && store::meta(store.conn(), INCLUSIVE_BOUND_KEY)?.is_some(),
            )
        };
        let client = self.client;
        let mut fetcher = Fetcher {
            engine,
            client,
            dialect: self.dialect,
            endpoint: &self.endpoints.pull,
            page_size,
            max_pages: u64::from(self.settings.max_pull_pages.max(1)),
            pages: 0,
            wanted: all.clone(),
            before,
            inclusive,
            learned_inclusive: false,
            unversioned: Vec::new(),
            unpaged: false,
            order_types: self.settings.order_types.clone(),
        };
        let applied = if self.settings.pipelined_pull {
            // Page N is applied on another thread while page N+1 is fetched
            // and parsed here; the rendezvous channel keeps at most one
            // parsed page waiting, so memory stays flat. The pages are
            // allocated and freed by this thread alone: with glibc, a page
            // buffer made on a second thread lands in that thread's arena,
            // and each arena keeps up to twice the largest page unused.
            std::thread::scope(|scope| -> Result<()> {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Fetch>(0);
                let applier = std::thread::Builder::new()
                    .name("rowsync-apply".into())
                    .spawn_scoped(scope, move || -> Result<()> {
                        // An error drops `rx`: the fetcher stops at its
                        // next page.
                        while let Ok(item) = rx.recv() {
                            apply_fetched(engine, client, item, report)?;
                        }
                        Ok(())
                    })
                    .map_err(|e| Error::Database(format!("cannot start the apply thread: {e}")))?;
                while let Some(item) = fetcher.next() {
                    if tx.send(item).is_err() {
                        break;
                    }
                }
                drop(tx);
                applier.join().unwrap_or_else(|_| {
                    Err(Error::Database("the pull's apply thread panicked".into()))
                })
            })
        } else {
            let mut applied = Ok(());
            while let Some(item) = fetcher.next() {
                applied = apply_fetched(engine, client, item, report);
                if applied.is_err() {
                    break;
                }
            }
            applied
        };
        if fetcher.learned_inclusive {
            // Kept even when the pull failed later: the next one asks from
            // the checkpoints plus one from its first request.
            let mut store = lock(&engine.store)?;
            let tx = store.begin()?;
            tx.set_meta(INCLUSIVE_BOUND_KEY, "1")?;
            tx.commit()?;
        }
        applied?;
        if only.is_none() {
            for c in &all {
                pulled_at.insert(c.clone(), started);
            }
            let mut store = lock(&engine.store)?;
            let tx = store.begin()?;
            tx.set_meta(PULLED_AT_KEY, &serde_json::to_string(&pulled_at)?)?;
            tx.commit()?;
        }
        self.pulled.extend(all);
        Ok(())
    }

    // ----- push -----------------------------------------------------------------

    /// Pushes the outbox, isolating what the server refuses.
    fn push(&mut self, report: &mut SyncReport) -> Result<()> {
        if !self.dialect.idempotent_save() {
            self.reconcile(None, report)?;
        }
        let batch_size = self.settings.batch_size.max(1);
        loop {
            let groups = {
                let cat = read(&self.engine.catalogue)?;
                let store = lock(&self.engine.store)?;
                push::plan(store.conn(), &cat, batch_size.saturating_mul(PLAN_BATCHES))?
            };
            if groups.is_empty() {
                return Ok(());
            }
            // Each round must confirm, park, resolve or reconcile something;
            // a server that answers success without saying what it saved
            // would otherwise have the same changes sent forever.
            let progress =
                |s: &Self, r: &SyncReport| (r.pushed, r.parked, s.conflict_rounds, s.doubt_rounds);
            let before = progress(self, report);
            let batches = push::pack(groups, batch_size, self.settings.max_per_collection.max(1));
            for batch in batches {
                if let Sent::Replan = self.send(batch, report)? {
                    break;
                }
            }
            if progress(self, report) == before {
                return Ok(());
            }
        }
    }

    /// Sends one batch and settles it.
    fn send(&mut self, batch: Vec<Group>, report: &mut SyncReport) -> Result<Sent> {
        let changes: Vec<&Change> = batch.iter().flat_map(|g| &g.changes).collect();
        let body = {
            let cat = read(&self.engine.catalogue)?;
            self.dialect.save_body(&cat, &changes)?
        };
        {
            let mut store = lock(&self.engine.store)?;
            let tx = store.begin()?;
            for c in &changes {
                let sent = serde_json::to_string(&c.payload)?;
                tx.mark_sent(c.local_id, c.counter, &sent)?;
            }
            tx.commit()?;
        }
        report.push_requests += 1;
        let kind = if self.dialect.idempotent_save() {
            CallKind::Idempotent
        } else {
            CallKind::Save
        };
        match self.call(&self.endpoints.save, &body, kind) {
            Ok(reply) => {
                let answer = {
                    let cat = read(&self.engine.catalogue)?;
                    self.dialect.parse_save(
                        &cat,
                        &changes,
                        &reply.data,
                        &self.rules,
                        reply.tracking_id.as_deref(),
                    )
                };
                match answer {
                    // `Result: false` and not a word on any record: the
                    // server may have applied any of it (invariant 15), so
                    // the outcome is unknown, as for a lost answer: the
                    // creates are in doubt and a pull reconciles them
                    // before anything is sent again.
                    Ok(answer)
                        if !reply.success
                            && answer.outcomes.iter().all(|o| *o == SaveOutcome::Unknown) =>
                    {
                        let error = refused_unanswered(&reply.message, reply.tracking_id.clone());
                        self.in_doubt(&changes, error, report)
                    }
                    Ok(answer) => self.settle(&batch, &answer.outcomes, &reply, report),
                    // An answer that cannot be read may still mean the
                    // server saved: never resend its creates blindly.
                    Err(e) if kind == CallKind::Save => self.in_doubt(&changes, e, report),
                    Err(e) => Err(e),
                }
            }
            Err(e @ Error::InDoubt { .. }) => self.in_doubt(&changes, e, report),
            // The same refusal with no `Data` at all (mahak, HTTP 200).
            Err(Error::Rejected {
                status: 200..=299,
                message,
                errors,
                tracking_id,
                ..
            }) if kind == CallKind::Save && errors.is_empty() => {
                let error = refused_unanswered(&message, tracking_id);
                self.in_doubt(&changes, error, report)
            }
            Err(Error::Conflict {
                message,
                errors,
                tracking_id,
            }) => {
                self.conflict_rounds += 1;
                if self.conflict_rounds > MAX_CONFLICT_ROUNDS {
                    self.park_named(
                        &batch,
                        &errors,
                        2002,
                        &message,
                        tracking_id.as_deref(),
                        report,
                    )?;
                    return Ok(Sent::Replan);
                }
                self.resolve_rejected_saves(&batch, &errors, report)?;
                Ok(Sent::Replan)
            }
            Err(Error::Rejected {
                code,
                message,
                errors,
                tracking_id,
                ..
            }) => self.refused(
                batch,
                code,
                &message,
                &errors,
                tracking_id.as_deref(),
                report,
            ),
            Err(e) => Err(e),
        }
    }

    /// A whole request refused: parks what the errors name, else isolates
    /// the culprit by bisection (a lone group is the culprit itself).
    fn refused(
        &mut self,
        batch: Vec<Group>,
        code: i64,
        message: &str,
        errors: &[RecordError],
        tracking_id: Option<&str>,
        report: &mut SyncReport,
    ) -> Result<Sent> {
        // The real server refuses a whole request without saying which
        // record (no per-record results): isolate it too.
        let isolatable = code == 2001 || code == 3001 || self.dialect == Dialect::Mahak;
        if isolatable && self.park_named(&batch, errors, code, message, tracking_id, report)? > 0 {
            return Ok(Sent::Replan);
        }
        if !isolatable || batch.len() == 1 {
            // An unknown code means the server found the request malformed
            // (a bug on our side): park the batch rather than loop on it.
            let ids: Vec<i64> = batch
                .iter()
                .flat_map(|g| &g.changes)
                .map(|c| c.local_id)
                .collect();
            self.park(&ids, code, message, None, None, tracking_id, report)?;
            return Ok(Sent::Replan);
        }
        // No usable errors list: bisect until the culprit is alone.
        let mut left = batch;
        let right = left.split_off(left.len() / 2);
        if let Sent::Replan = self.send(left, report)? {
            return Ok(Sent::Replan);
        }
        self.send(right, report)
    }

    /// Applies each record's outcome: saved ones confirmed and mapped (even
    /// when others failed), refused ones parked with the server's words (one
    /// dead letter per write group), and creates the server may hold
    /// reconciled by a pull before anything of them is sent again.
    fn settle(
        &mut self,
        batch: &[Group],
        outcomes: &[SaveOutcome],
        reply: &Reply,
        report: &mut SyncReport,
    ) -> Result<Sent> {
        let changes: Vec<(i64, &Change)> = batch
            .iter()
            .flat_map(|g| g.changes.iter().map(move |c| (g.id, c)))
            .collect();
        let tracking_id = reply.tracking_id.as_deref();
        let mut refused: Vec<(i64, Vec<Refusal<'_>>)> = Vec::new();
        let mut doubt: Vec<String> = Vec::new();
        let mut events = Changes::default();
        {
            let cat = read(&self.engine.catalogue)?;
            let mut store = lock(&self.engine.store)?;
            let tx = store.begin()?;
            for (&(group, change), outcome) in changes.iter().zip(outcomes) {
                let def = cat.require(&change.collection)?;
                match outcome {
                    SaveOutcome::Saved {
                        server_id: Some(sid),
                        row_version,
                    } => {
                        push::confirm_saved(
                            &tx,
                            &cat,
                            def,
                            change.local_id,
                            Some(change.counter),
                            *sid,
                            *row_version,
                            None,
                            || {
                                let mut base = change.payload.clone();
                                base.insert(def.id_field.clone(), Value::from(*sid));
                                base.insert(
                                    "rowVersion".into(),
                                    row_version.map_or(Value::Null, Value::from),
                                );
                                Ok(serde_json::to_string(&base)?)
                            },
                            report,
                        )?;
                        events.note(
                            &change.collection,
                            Some(*sid),
                            change.client_id,
                            local::ChangeOrigin::Sync,
                        );
                    }
                    SaveOutcome::Refused {
                        property,
                        code,
                        message,
                    } => {
                        let entry = (change, property.as_deref(), *code, message.as_str());
                        add_to_group(&mut refused, group, entry);
                    }
                    SaveOutcome::AlreadyThere { message }
                        if self
                            .reconciled
                            .get(&change.local_id)
                            .is_some_and(|&pulls| pulls >= MAX_RECONCILE_PULLS) =>
                    {
                        // A pull found no record of ours, yet the server says
                        // it has one: the server's words go to the app.
                        add_to_group(&mut refused, group, (change, None, None, message.as_str()));
                    }
                    // Saved without an id to map, already there, or not
                    // answered: a create may be on the server; anything
                    // else may be sent again.
                    SaveOutcome::Saved {
                        server_id: None, ..
                    }
                    | SaveOutcome::AlreadyThere { .. }
                    | SaveOutcome::Unknown => {
                        if creates(change) && !self.dialect.idempotent_save() {
                            doubt.push(change.collection.clone());
                        }
                    }
                }
            }
            tx.commit()?;
        }
        self.engine.registry.emit_changes(&events.into_events());
        for (_, list) in &refused {
            let ids: Vec<i64> = list.iter().map(|(c, ..)| c.local_id).collect();
            let (first, property, code, _) = list[0];
            let mut words: Vec<&str> = list.iter().map(|(.., m)| *m).collect();
            words.dedup();
            self.park(
                &ids,
                code.unwrap_or(0),
                &words.join("; "),
                Some(&first.collection),
                property,
                tracking_id,
                report,
            )?;
        }
        if !doubt.is_empty() {
            self.doubt_rounds += 1;
            if self.doubt_rounds > MAX_DOUBT_ROUNDS {
                return Err(Error::InDoubt {
                    message: "the server kept answering saves without saying what it saved".into(),
                    tracking_id: tracking_id.map(str::to_string),
                });
            }
            doubt.sort();
            doubt.dedup();
            self.reconcile(Some(&doubt), report)?;
            return Ok(Sent::Replan);
        }
        Ok(if refused.is_empty() {
            Sent::Done
        } else {
            Sent::Replan
        })
    }

    /// A save whose answer never came whole: its creates stay in doubt
    /// (their sent mark is durable), and a pull reconciles them now.
    fn in_doubt(
        &mut self,
        changes: &[&Change],
        error: Error,
        report: &mut SyncReport,
    ) -> Result<Sent> {
        self.engine.logger.log(LogLevel::Warn, "rowsync::push", || {
            format!("a save's answer was lost; its creates are in doubt: {error}")
        });
        self.doubt_rounds += 1;
        if self.doubt_rounds > MAX_DOUBT_ROUNDS {
            return Err(error);
        }
        let mut collections: Vec<String> = changes
            .iter()
            .filter(|c| creates(c))
            .map(|c| c.collection.clone())
            .collect();
        collections.sort();
        collections.dedup();
        if collections.is_empty() {
            return Ok(Sent::Replan);
        }
        // The pull must follow the save, whatever was pulled before it.
        for c in &collections {
            self.pulled.remove(c);
        }
        self.reconcile(Some(&collections), report)?;
        Ok(Sent::Replan)
    }

    /// Reconciles the creates in doubt: pulls their collections (the pull
    /// confirms, by client id, each one the server holds, and maps its ids),
    /// then marks the ones still missing as safe to send again (invariant
    /// 11). `only` limits it to those collections, pulled even if they were
    /// pulled earlier in this sync.
    fn reconcile(&mut self, only: Option<&[String]>, report: &mut SyncReport) -> Result<()> {
        let doubt = {
            let store = lock(&self.engine.store)?;
            store::in_doubt(store.conn())?
        };
        let doubt: Vec<(String, i64)> = doubt
            .into_iter()
            .filter(|(c, _)| only.is_none_or(|o| o.contains(c)))
            .collect();
        if doubt.is_empty() {
            return Ok(());
        }
        let mut to_pull: Vec<String> = doubt
            .iter()
            .map(|(c, _)| c.clone())
            .filter(|c| only.is_some() || !self.pulled.contains(c))
            .collect();
        to_pull.sort();
        to_pull.dedup();
        if !to_pull.is_empty() {
            self.engine.logger.log(LogLevel::Info, "rowsync::push", || {
                format!(
                    "{} create(s) in doubt: pulling {to_pull:?} before sending them again",
                    doubt.len()
                )
            });
            self.pull(Some(&to_pull), report)?;
        }
        let still = {
            let store = lock(&self.engine.store)?;
            store::in_doubt(store.conn())?
        };
        let mut store = lock(&self.engine.store)?;
        let tx = store.begin()?;
        let mut gone = Changes::default();
        for (name, local_id) in still
            .into_iter()
            .filter(|(c, l)| doubt.iter().any(|(dc, dl)| dc == c && dl == l))
        {
            let deleted =
                store::pending_of(&tx, local_id)?.is_some_and(|p| p.op == store::Op::Delete);
            if deleted {
                // Created here, deleted here, and the server never got the
                // create: nothing is left to send.
                if let Some(row) = store::row_by_local_id(&tx, local_id)? {
                    gone.note(&name, None, row.client_id, local::ChangeOrigin::Sync);
                }
                tx.drop_pending(local_id)?;
                tx.remove_record(local_id)?;
                continue;
            }
            tx.clear_sent(local_id)?;
            *self.reconciled.entry(local_id).or_default() += 1;
        }
        tx.commit()?;
        self.engine.registry.emit_changes(&gone.into_events());
        Ok(())
    }

    // ----- dead letters ------------------------------------------------------

    /// Parks each group the errors name; returns how many groups.
    fn park_named(
        &self,
        batch: &[Group],
        errors: &[RecordError],
        code: i64,
        message: &str,
        tracking_id: Option<&str>,
        report: &mut SyncReport,
    ) -> Result<usize> {
        let cat = self.engine.catalogue()?;
        let mut done: Vec<i64> = Vec::new();
        for err in errors {
            if let Some((group, _)) = push::named(&cat, batch, err) {
                if done.contains(&group.id) {
                    continue;
                }
                done.push(group.id);
                let ids: Vec<i64> = group.changes.iter().map(|c| c.local_id).collect();
                self.park(
                    &ids,
                    err.code.unwrap_or(code),
                    err.message.as_deref().unwrap_or(message),
                    err.entity.as_deref(),
                    err.field.as_deref(),
                    tracking_id,
                    report,
                )?;
            }
        }
        Ok(done.len())
    }

    /// Parks the changes `ids` in one new dead letter.
    #[allow(clippy::too_many_arguments)]
    fn park(
        &self,
        ids: &[i64],
        code: i64,
        message: &str,
        entity: Option<&str>,
        field: Option<&str>,
        tracking_id: Option<&str>,
        report: &mut SyncReport,
    ) -> Result<()> {
        let parked =
            dead_letters::park(self.engine, ids, code, message, entity, field, tracking_id)?;
        for collection in parked {
            report.collection(&collection).parked += 1;
            report.parked += 1;
        }
        Ok(())
    }

    /// Resolves a 2002 answer (documented dialect): with the server's
    /// record, at once; without it, by pulling the collections concerned
    /// (which resolves on apply).
    fn resolve_rejected_saves(
        &mut self,
        batch: &[Group],
        errors: &[RecordError],
        report: &mut SyncReport,
    ) -> Result<()> {
        let mut refetch: Vec<String> = Vec::new();
        {
            let cat = read(&self.engine.catalogue)?;
            let resolvers = read(&self.engine.resolvers)?;
            let mut store = lock(&self.engine.store)?;
            let tx = store.begin()?;
            for err in errors {
                let server = err.server_record.as_ref().and_then(Value::as_object);
                match (push::named(&cat, batch, err), server) {
                    (Some((_, change)), Some(server)) => {
                        let Some(def) = cat.get(&change.collection) else {
                            continue;
                        };
                        let (Some(row), Some(p)) = (
                            store::row_by_local_id(&tx, change.local_id)?,
                            store::pending_of(&tx, change.local_id)?,
                        ) else {
                            continue;
                        };
                        let deleted = server
                            .get("deleted")
                            .and_then(Value::as_bool)
                            .unwrap_or(false);
                        let resolver = resolvers.get(&def.name).map(|r| r.as_ref());
                        pull::resolve_conflict(
                            &tx, def, resolver, &row, &p, server, deleted, report,
                        )?;
                    }
                    (Some((_, change)), None) => refetch.push(change.collection.clone()),
                    (None, _) => refetch.extend(err.entity.iter().cloned()),
                }
            }
            tx.commit()?;
        }
        if errors.is_empty() {
            refetch.extend(
                batch
                    .iter()
                    .flat_map(|g| &g.changes)
                    .map(|c| c.collection.clone()),
            );
        }
        refetch.sort();
        refetch.dedup();
        let cat = self.engine.catalogue()?;
        refetch.retain(|c| cat.get(c).is_some());
        if !refetch.is_empty() {
            self.pull(Some(&refetch), report)?;
        }
        Ok(())
    }
}
