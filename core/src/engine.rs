//! The engine: the entry point an app holds. It owns the store (one writer
//! connection behind a mutex), the catalogue, the settings and the API client,
//! and runs the three flows: local writes, and the sync cycle (pull, then
//! push). Every method is synchronous and may block: call it off the UI
//! thread. `Engine` is `Send + Sync`; share it with an `Arc`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use serde_json::Value;

use crate::catalogue::{Catalogue, CollectionDef, ConflictPolicy};
use crate::client::{
    ApiClient, CallRecord, ClientConfig, ConnectionState, Credentials, Reply, RetryPolicy, Shutdown,
};
use crate::conflict::ConflictResolver;
use crate::error::{Error, Result};
use crate::http::{HttpConfig, UreqTransport};
use crate::listeners::{ChangeListener, Registry, StatusListener, Subscription};
use crate::local::{self, Changes, ListOptions, Page, RecordId, Writer};
use crate::log::{LogLevel, LogSink, Logger};
use crate::pull;
use crate::push::{self, Group};
use crate::report::SyncReport;
use crate::schema;
use crate::store::{self, ConflictEntry, Counts, DeadLetter, Store, SyncLogEntry};
use crate::transport::Transport;

/// How the engine reaches the server and how it batches. Stored in the
/// database (never the password).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Base URL, e.g. `https://host/API/v3`.
    pub base_url: String,
    /// Login user name.
    pub username: String,
    /// Mahak database id.
    pub database_id: i64,
    /// Mahak package number.
    pub package_number: i64,
    /// Records per collection per pull page (`pageSize`).
    pub page_size: u32,
    /// Changes per save request.
    pub batch_size: usize,
    /// Records of one collection per save request.
    pub max_per_collection: usize,
    /// Collections to pull; empty means every collection of the catalogue.
    pub collections: Vec<String>,
    /// Attempts per call.
    pub max_attempts: u32,
    /// First backoff delay, in milliseconds.
    pub base_delay_ms: u64,
    /// Backoff cap, in milliseconds.
    pub max_delay_ms: u64,
    /// Connect timeout, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Whole-call timeout, in milliseconds.
    pub timeout_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        let retry = RetryPolicy::default();
        Settings {
            base_url: String::new(),
            username: String::new(),
            database_id: 0,
            package_number: 0,
            page_size: 5_000,
            batch_size: 500,
            max_per_collection: 1_000,
            collections: Vec::new(),
            max_attempts: retry.max_attempts,
            base_delay_ms: retry.base_delay.as_millis() as u64,
            max_delay_ms: retry.max_delay.as_millis() as u64,
            connect_timeout_ms: 10_000,
            timeout_ms: 60_000,
        }
    }
}

impl Settings {
    fn retry(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts.max(1),
            base_delay: Duration::from_millis(self.base_delay_ms),
            max_delay: Duration::from_millis(self.max_delay_ms.max(self.base_delay_ms)),
            ..RetryPolicy::default()
        }
    }
}

/// The engine's state as the app sees it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Status {
    /// Connection state.
    pub connection: ConnectionState,
    /// A sync is running.
    pub syncing: bool,
    /// Outbox and log counts.
    pub counts: Counts,
    /// Pull checkpoints per collection.
    pub checkpoints: Vec<(String, i64)>,
    /// When the last sync ended (RFC 3339).
    pub last_sync: Option<String>,
    /// The last sync's error, if it failed.
    pub last_error: Option<String>,
}

const SETTINGS_KEY: &str = "settings";
const LAST_REPORT_KEY: &str = "last_report";
/// Write-ahead-log pages allowed to accumulate during a pull (64 MiB).
const PULL_WAL_PAGES: i64 = 16_384;
/// A pull that applied at least this many records (a full page) checkpoints
/// at its end; a smaller one is left to the automatic checkpoint.
const BIG_PULL_RECORDS: u64 = 5_000;
/// Batches planned at a time, so a huge outbox is not read into memory whole.
const PLAN_BATCHES: usize = 8;
/// Conflict rounds per sync before a change that keeps conflicting is parked.
const MAX_CONFLICT_ROUNDS: usize = 3;

/// The sync engine.
pub struct Engine {
    store: Mutex<Store>,
    /// A read-only connection beside the writer (file databases only), so
    /// the app's reads do not wait while a sync applies a page.
    reader: Option<Mutex<rusqlite::Connection>>,
    catalogue: RwLock<Catalogue>,
    resolvers: RwLock<HashMap<String, Arc<dyn ConflictResolver>>>,
    settings: RwLock<Settings>,
    credentials: Mutex<Option<Credentials>>,
    transport: RwLock<Option<Arc<dyn Transport>>>,
    client: Mutex<Option<Arc<ApiClient>>>,
    shutdown: Shutdown,
    sync_lock: Mutex<()>,
    syncing: Mutex<bool>,
    last_state: Mutex<ConnectionState>,
    registry: Arc<Registry>,
    logger: Logger,
}

fn lock<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>> {
    m.lock().map_err(|_| {
        Error::Database("an earlier operation panicked while holding the engine's lock".into())
    })
}

fn read<T>(m: &RwLock<T>) -> Result<std::sync::RwLockReadGuard<'_, T>> {
    m.read().map_err(|_| {
        Error::Database("an earlier operation panicked while holding the engine's lock".into())
    })
}

fn write<T>(m: &RwLock<T>) -> Result<std::sync::RwLockWriteGuard<'_, T>> {
    m.write().map_err(|_| {
        Error::Database("an earlier operation panicked while holding the engine's lock".into())
    })
}

impl Engine {
    /// Opens (or creates) the replica at `path` (`:memory:` for an in-memory
    /// one) with the Mahak catalogue.
    pub fn open(path: impl AsRef<Path>) -> Result<Engine> {
        Self::open_with(path, Catalogue::mahak())
    }

    /// Opens the replica with a catalogue of the app's choosing.
    pub fn open_with(path: impl AsRef<Path>, catalogue: Catalogue) -> Result<Engine> {
        let store = Store::open(path.as_ref(), catalogue.iter().map(|c| c.name.as_str()))?;
        let reader = store::open_reader(path.as_ref())?.map(Mutex::new);
        // The connection state a new process starts with: how the last sync
        // ended, until this process learns better.
        let last_state = store::meta(store.conn(), LAST_REPORT_KEY)?
            .and_then(|t| serde_json::from_str::<SyncReport>(&t).ok())
            .and_then(|r| r.connection)
            .unwrap_or(ConnectionState::Unknown);
        let settings = match store::meta(store.conn(), SETTINGS_KEY)? {
            Some(text) => serde_json::from_str(&text).unwrap_or_default(),
            None => Settings::default(),
        };
        Ok(Engine {
            store: Mutex::new(store),
            reader,
            catalogue: RwLock::new(catalogue),
            resolvers: RwLock::new(HashMap::new()),
            settings: RwLock::new(settings),
            credentials: Mutex::new(None),
            transport: RwLock::new(None),
            client: Mutex::new(None),
            shutdown: Shutdown::default(),
            sync_lock: Mutex::new(()),
            syncing: Mutex::new(false),
            last_state: Mutex::new(last_state),
            registry: Arc::new(Registry::default()),
            logger: Logger::default(),
        })
    }

    // ----- configuration ---------------------------------------------------

    /// The current settings.
    pub fn settings(&self) -> Result<Settings> {
        Ok(read(&self.settings)?.clone())
    }

    /// Replaces the settings and stores them (the password is never stored).
    pub fn configure(&self, settings: Settings) -> Result<()> {
        if !settings.base_url.is_empty() {
            crate::http::validate_base_url(&settings.base_url)?;
        }
        {
            let mut store = lock(&self.store)?;
            let tx = store.begin()?;
            tx.set_meta(SETTINGS_KEY, &serde_json::to_string(&settings)?)?;
            tx.commit()?;
        }
        *write(&self.settings)? = settings;
        *lock(&self.client)? = None;
        Ok(())
    }

    /// Supplies the credentials for login, kept in memory only. The user
    /// name, database id and package number also go into the settings.
    pub fn set_credentials(&self, credentials: Credentials) -> Result<()> {
        let mut s = self.settings()?;
        if s.username != credentials.username
            || s.database_id != credentials.database_id
            || s.package_number != credentials.package_number
        {
            s.username = credentials.username.clone();
            s.database_id = credentials.database_id;
            s.package_number = credentials.package_number;
            self.configure(s)?;
        }
        *lock(&self.credentials)? = Some(credentials);
        *lock(&self.client)? = None;
        Ok(())
    }

    /// Supplies only the password; the rest comes from the stored settings.
    pub fn set_password(&self, password: &str) -> Result<()> {
        let s = self.settings()?;
        self.set_credentials(Credentials {
            username: s.username,
            password: password.to_string(),
            database_id: s.database_id,
            package_number: s.package_number,
        })
    }

    /// Uses the app's own HTTP stack instead of the built-in one.
    pub fn set_transport(&self, transport: Arc<dyn Transport>) -> Result<()> {
        *write(&self.transport)? = Some(transport);
        *lock(&self.client)? = None;
        Ok(())
    }

    /// Sends the engine's log lines at `level` and above to `sink` (replacing
    /// any earlier sink); `None` removes it.
    pub fn set_log_sink(&self, sink: Option<Arc<dyn LogSink>>, level: LogLevel) {
        self.logger.set(sink.map(|s| (s, level)));
    }

    /// Stops syncing: drops the token and credentials, keeps all data.
    pub fn disconnect(&self) -> Result<()> {
        *lock(&self.credentials)? = None;
        *lock(&self.client)? = None;
        self.set_state(ConnectionState::Unknown)?;
        Ok(())
    }

    /// Interrupts backoff waits of a running sync and refuses new network
    /// calls; used when the app shuts the engine down.
    pub fn shutdown(&self) {
        self.shutdown.trigger();
    }

    /// Deletes all local data (records, outbox, dead letters, conflicts,
    /// checkpoints). Refused while changes are pending unless `force`.
    pub fn wipe(&self, force: bool) -> Result<()> {
        let mut store = lock(&self.store)?;
        let counts = store::counts(store.conn())?;
        if !force && counts.pending + counts.parked > 0 {
            return Err(Error::PendingChanges(counts.pending + counts.parked));
        }
        let tx = store.begin()?;
        tx.wipe()?;
        tx.commit()
    }

    /// Forgets the pull checkpoints so the next sync pulls everything again
    /// (data and pending changes are kept).
    pub fn reset_checkpoints(&self) -> Result<()> {
        let mut store = lock(&self.store)?;
        let tx = store.begin()?;
        tx.reset_checkpoints()?;
        tx.commit()
    }

    /// Registers an app-defined collection.
    pub fn register_collection(&self, def: CollectionDef) -> Result<()> {
        let name = def.name.clone();
        write(&self.catalogue)?.register(def)?;
        lock(&self.store)?.ensure_collections([name.as_str()])
    }

    /// Changes a non-financial collection's conflict policy.
    pub fn set_policy(&self, collection: &str, policy: ConflictPolicy) -> Result<()> {
        write(&self.catalogue)?.set_policy(collection, policy)
    }

    /// Installs the app's own conflict resolver for a non-financial collection.
    pub fn set_resolver(
        &self,
        collection: &str,
        resolver: Arc<dyn ConflictResolver>,
    ) -> Result<()> {
        let cat = read(&self.catalogue)?;
        let def = cat.require(collection)?;
        if def.financial {
            return Err(Error::Config(format!(
                "`{collection}` is a financial collection: it always stays server-wins"
            )));
        }
        write(&self.resolvers)?.insert(collection.to_string(), resolver);
        Ok(())
    }

    /// A copy of the catalogue.
    pub fn catalogue(&self) -> Result<Catalogue> {
        Ok(read(&self.catalogue)?.clone())
    }

    // ----- local API ---------------------------------------------------------

    /// Runs `f` as one group of local writes: all of them commit together
    /// and are pushed together, or none is stored.
    pub fn write<T>(&self, f: impl FnOnce(&mut Writer<'_, '_>) -> Result<T>) -> Result<T> {
        let mut changes = Changes::default();
        let out = {
            let cat = read(&self.catalogue)?;
            let mut store = lock(&self.store)?;
            let mut tx = store.begin()?;
            let group = tx.next_seq();
            let mut w = Writer {
                tx: &mut tx,
                catalogue: &cat,
                group,
                changes: &mut changes,
            };
            let out = f(&mut w)?;
            tx.commit()?;
            out
        };
        self.registry.emit_changes(&changes.into_events());
        Ok(out)
    }

    /// Creates a record; returns it as stored, with its client id.
    pub fn create(&self, collection: &str, record: Value) -> Result<Value> {
        self.write(|w| w.create(collection, record))
    }

    /// Sets the given fields of a record; returns it as stored.
    pub fn update(&self, collection: &str, id: RecordId, patch: Value) -> Result<Value> {
        self.write(|w| w.update(collection, id, patch))
    }

    /// Creates, or updates when the JSON carries the id of an existing record.
    pub fn put(&self, collection: &str, record: Value) -> Result<Value> {
        self.write(|w| w.put(collection, record))
    }

    /// Deletes a record (logically).
    pub fn delete(&self, collection: &str, id: RecordId) -> Result<()> {
        self.write(|w| w.delete(collection, id))
    }

    /// Runs a read on the reader connection (or on the writer's, for an
    /// in-memory database). It sees every committed write.
    fn reading<T>(&self, f: impl FnOnce(&rusqlite::Connection) -> Result<T>) -> Result<T> {
        match &self.reader {
            Some(reader) => f(&*lock(reader)?),
            None => f(lock(&self.store)?.conn()),
        }
    }

    /// A live record by id.
    pub fn get(&self, collection: &str, id: RecordId) -> Result<Option<Value>> {
        read(&self.catalogue)?.require(collection)?;
        self.reading(|conn| local::get(conn, store::coll_id_of(conn, collection)?, id))
    }

    /// A page of a collection (tombstones only when asked).
    pub fn list(&self, collection: &str, options: &ListOptions) -> Result<Page> {
        read(&self.catalogue)?.require(collection)?;
        self.reading(|conn| local::list(conn, store::coll_id_of(conn, collection)?, options))
    }

    /// Number of live records (or all, with tombstones) in a collection.
    pub fn count(&self, collection: &str, include_deleted: bool) -> Result<u64> {
        read(&self.catalogue)?.require(collection)?;
        self.reading(|conn| {
            store::count_rows(conn, store::coll_id_of(conn, collection)?, include_deleted)
        })
    }

    // ----- conflicts, dead letters, log, status ------------------------------

    /// The conflict log.
    pub fn conflicts(&self) -> Result<Vec<ConflictEntry>> {
        self.reading(store::conflicts)
    }

    /// Clears the conflict log; returns how many entries went.
    pub fn clear_conflicts(&self) -> Result<u64> {
        store::clear_conflicts(lock(&self.store)?.conn())
    }

    /// The dead-letter queue.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>> {
        self.reading(store::dead_letters)
    }

    /// Puts a dead letter's changes back in the outbox (after the user fixed
    /// the data with normal writes); the next sync sends them.
    pub fn retry_dead_letter(&self, id: i64) -> Result<()> {
        let mut store = lock(&self.store)?;
        let tx = store.begin()?;
        if !tx.unpark(id)? {
            return Err(Error::NotFound {
                collection: "dead letters".into(),
                id: id.to_string(),
            });
        }
        tx.commit()
    }

    /// Drops a dead letter's changes: each record returns to the server's
    /// version, or disappears if the server never had it (with the pending
    /// lines that depended on it).
    pub fn discard_dead_letter(&self, id: i64) -> Result<()> {
        let mut changes = Changes::default();
        {
            let cat = read(&self.catalogue)?;
            let mut store = lock(&self.store)?;
            let mut tx = store.begin()?;
            let parked = store::parked_in(&tx, id)?;
            if parked.is_empty() && !tx.delete_dead_letter(id)? {
                return Err(Error::NotFound {
                    collection: "dead letters".into(),
                    id: id.to_string(),
                });
            }
            for local_id in parked {
                discard_change(&mut tx, &cat, local_id, &mut changes)?;
            }
            tx.delete_dead_letter(id)?;
            tx.commit()?;
        }
        self.registry.emit_changes(&changes.into_events());
        Ok(())
    }

    /// The newest sync-log rows, newest first.
    pub fn sync_log(&self, limit: u32) -> Result<Vec<SyncLogEntry>> {
        self.reading(|conn| store::sync_log(conn, limit))
    }

    /// The engine's status.
    pub fn status(&self) -> Result<Status> {
        let (counts, checkpoints, last) = self.reading(|conn| {
            Ok((
                store::counts(conn)?,
                store::checkpoints(conn)?,
                store::meta(conn, LAST_REPORT_KEY)?,
            ))
        })?;
        let last: Option<SyncReport> = last.and_then(|t| serde_json::from_str(&t).ok());
        Ok(Status {
            connection: lock(&self.last_state)?.clone(),
            syncing: *lock(&self.syncing)?,
            counts,
            checkpoints,
            last_sync: last.as_ref().map(|r| r.finished_at.clone()),
            last_error: last.and_then(|r| r.error),
        })
    }

    /// The last sync's report, if any.
    pub fn last_report(&self) -> Result<Option<SyncReport>> {
        self.reading(|conn| {
            Ok(store::meta(conn, LAST_REPORT_KEY)?.and_then(|t| serde_json::from_str(&t).ok()))
        })
    }

    /// Calls `listener` after every committed local write or applied sync
    /// step, until the returned subscription is dropped.
    pub fn subscribe_changes(&self, listener: Arc<dyn ChangeListener>) -> Subscription {
        self.registry.add_change(listener)
    }

    /// Calls `listener` with the connection state at once, then on every
    /// change, until the returned subscription is dropped.
    pub fn subscribe_status(&self, listener: Arc<dyn StatusListener>) -> Subscription {
        let current = self
            .last_state
            .lock()
            .map(|s| s.clone())
            .unwrap_or(ConnectionState::Unknown);
        listener.on_status(&current);
        self.registry.add_status(listener)
    }

    fn set_state(&self, state: ConnectionState) -> Result<()> {
        let changed = {
            let mut s = lock(&self.last_state)?;
            let changed = *s != state;
            *s = state.clone();
            changed
        };
        if changed {
            self.registry.emit_status(&state);
        }
        Ok(())
    }

    // ----- sync ----------------------------------------------------------------

    fn client(&self) -> Result<Arc<ApiClient>> {
        let mut slot = lock(&self.client)?;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let settings = self.settings()?;
        if settings.base_url.is_empty() {
            return Err(Error::Config("no server URL is configured".into()));
        }
        let credentials = lock(&self.credentials)?.clone().ok_or_else(|| {
            Error::Config("no credentials: call set_credentials or set_password first".into())
        })?;
        let transport: Arc<dyn Transport> = match read(&self.transport)?.clone() {
            Some(t) => t,
            None => Arc::new(UreqTransport::new(HttpConfig {
                connect_timeout: Duration::from_millis(settings.connect_timeout_ms),
                timeout: Duration::from_millis(settings.timeout_ms),
            })?),
        };
        let client = Arc::new(ApiClient::new(
            ClientConfig {
                base_url: settings.base_url.clone(),
                retry: settings.retry(),
                token_refresh_margin: Duration::from_secs(60),
            },
            credentials,
            transport,
            self.shutdown.clone(),
        )?);
        *slot = Some(client.clone());
        Ok(client)
    }

    /// One call, its attempts written to the sync log.
    fn call(&self, client: &ApiClient, endpoint: &str, body: &[u8]) -> Result<Reply> {
        let mut calls: Vec<CallRecord> = Vec::new();
        let result = client.call(endpoint, body, &mut |c| {
            let level = if c.error.is_some() {
                LogLevel::Warn
            } else {
                LogLevel::Debug
            };
            self.logger.log(level, "rowsync::http", || {
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
            calls.push(c)
        });
        let mut store = lock(&self.store)?;
        let tx = store.begin()?;
        tx.append_sync_log(&calls)?;
        tx.commit()?;
        result
    }

    /// Runs one sync cycle: pull every wanted collection (paged), then push
    /// the outbox. The report is also kept as the last report.
    pub fn sync(&self) -> Result<SyncReport> {
        let _one_at_a_time = lock(&self.sync_lock)?;
        let mut report = SyncReport {
            started_at: store::now(),
            ..SyncReport::default()
        };
        *lock(&self.syncing)? = true;
        self.logger
            .log(LogLevel::Info, "rowsync::sync", || "sync started".into());
        self.set_state(ConnectionState::Syncing)?;
        let result = self.client().and_then(|client| {
            let r = match self.pull_with_large_wal(&client, &mut report) {
                Ok(()) => self.push(&client, &mut report),
                // A page the engine cannot read will not read better next
                // time: the outbox must not wait behind it. Push anyway and
                // report the pull's error (the push's, if any, is logged).
                Err(pull_error @ Error::Protocol { .. }) => {
                    if let Err(e) = self.push(&client, &mut report) {
                        self.logger.log(LogLevel::Warn, "rowsync::push", || {
                            format!("push after a failed pull: {e}")
                        });
                    }
                    Err(pull_error)
                }
                Err(e) => Err(e),
            };
            self.set_state(client.connection_state())?;
            r
        });
        if let Err(e) = &result {
            report.error = Some(e.to_string());
            if matches!(e, Error::Config(_)) {
                self.set_state(ConnectionState::Unknown)?;
            }
        }
        *lock(&self.syncing)? = false;
        report.finished_at = store::now();
        report.connection = Some(lock(&self.last_state)?.clone());
        {
            let mut store = lock(&self.store)?;
            let counts = store::counts(store.conn())?;
            report.pending = counts.pending;
            report.dead_letters = counts.dead_letters;
            let tx = store.begin()?;
            tx.set_meta(LAST_REPORT_KEY, &serde_json::to_string(&report)?)?;
            tx.commit()?;
        }
        match &result {
            Ok(()) => self.logger.log(LogLevel::Info, "rowsync::sync", || {
                format!(
                    "sync done: pulled {} (applied {}), pushed {}, conflicts {}, parked {}, pending {}, dead letters {}",
                    report.pulled(),
                    report.applied(),
                    report.pushed,
                    report.conflicts,
                    report.parked,
                    report.pending,
                    report.dead_letters
                )
            }),
            Err(e) => {
                let level = if e.is_transient() { LogLevel::Warn } else { LogLevel::Error };
                self.logger.log(level, "rowsync::sync", || format!("sync failed: {e}"));
            }
        }
        result.map(|_| report)
    }

    /// Runs a pull with checkpoints of the write-ahead log deferred to its
    /// end: a first sync rewrites the same index pages in page after page,
    /// and checkpointing every 4 MiB copied them to the database over and
    /// over. After a big pull the log is checkpointed at once (without
    /// waiting for readers), so the app's next write does not pay for it; a
    /// small one is left to the usual automatic checkpoint.
    fn pull_with_large_wal(&self, client: &ApiClient, report: &mut SyncReport) -> Result<()> {
        lock(&self.store)?.set_wal_autocheckpoint(PULL_WAL_PAGES)?;
        let before = report.applied();
        let out = self.pull(client, None, report);
        let store = lock(&self.store)?;
        store.set_wal_autocheckpoint(schema::WAL_AUTOCHECKPOINT)?;
        if report.applied() - before >= BIG_PULL_RECORDS {
            store.checkpoint_passive()?;
        }
        out
    }

    /// Pulls `only` (or every wanted collection) until no page says more.
    fn pull(
        &self,
        client: &ApiClient,
        only: Option<&[String]>,
        report: &mut SyncReport,
    ) -> Result<()> {
        let settings = self.settings()?;
        let mut wanted: Vec<String> = match only {
            Some(c) => c.to_vec(),
            None if settings.collections.is_empty() => read(&self.catalogue)?
                .iter()
                .map(|c| c.name.clone())
                .collect(),
            None => settings.collections.clone(),
        };
        let mut pages = 0u64;
        while !wanted.is_empty() {
            let before: HashMap<String, i64> = {
                let store = lock(&self.store)?;
                store::checkpoints(store.conn())?.into_iter().collect()
            };
            let mut body = serde_json::Map::new();
            for name in &wanted {
                let cp = before.get(name).copied().unwrap_or(0);
                let def = read(&self.catalogue)?.require(name)?.checkpoint_field();
                body.insert(def, Value::from(cp));
            }
            if settings.page_size > 0 {
                body.insert("pageSize".into(), Value::from(settings.page_size));
            }
            let reply = self.call(client, "GetAllDataV2", &serde_json::to_vec(&body)?)?;
            report.pull_requests += 1;
            pages += 1;
            let mut changes = Changes::default();
            let next = {
                let cat = read(&self.catalogue)?;
                let resolvers = read(&self.resolvers)?;
                let entries =
                    pull::parse_page(&cat, &wanted, &reply.data, reply.tracking_id.as_deref())?;
                let mut store = lock(&self.store)?;
                let tx = store.begin()?;
                pull::apply(&tx, &entries, &resolvers, report, &mut changes)?;
                tx.commit()?;
                let mut next = Vec::new();
                for e in entries.iter().filter(|e| e.has_more) {
                    let moved = e
                        .checkpoint()
                        .is_some_and(|cp| cp > before.get(&e.def.name).copied().unwrap_or(0));
                    if !moved {
                        return Err(Error::Protocol {
                            collection: Some(e.def.name.clone()),
                            message: "the server says more records remain but sent none newer"
                                .into(),
                            tracking_id: reply.tracking_id.clone(),
                        });
                    }
                    next.push(e.def.name.clone());
                }
                next
            };
            self.logger.log(LogLevel::Debug, "rowsync::pull", || {
                format!("page {pages} applied; more to come for {next:?}")
            });
            self.registry.emit_changes(&changes.into_events());
            wanted = next;
            if pages > 1_000_000 {
                break;
            }
        }
        Ok(())
    }

    /// Pushes the outbox, isolating what the server rejects.
    fn push(&self, client: &ApiClient, report: &mut SyncReport) -> Result<()> {
        let settings = self.settings()?;
        let batch_size = settings.batch_size.max(1);
        let mut conflict_rounds = 0usize;
        loop {
            let groups = {
                let cat = read(&self.catalogue)?;
                let store = lock(&self.store)?;
                push::plan(store.conn(), &cat, batch_size.saturating_mul(PLAN_BATCHES))?
            };
            if groups.is_empty() {
                return Ok(());
            }
            // Each round must confirm, park or resolve something; a server
            // that answers success without listing what it saved would
            // otherwise have the same changes sent forever.
            let progress_before = (report.pushed, report.parked, conflict_rounds);
            let batches = push::pack(groups, batch_size, settings.max_per_collection.max(1));
            for batch in batches {
                if let Sent::Replan = self.send(client, batch, report, &mut conflict_rounds)? {
                    break;
                }
            }
            if (report.pushed, report.parked, conflict_rounds) == progress_before {
                return Ok(());
            }
        }
    }

    /// Sends one batch; on a business error isolates the culprit.
    fn send(
        &self,
        client: &ApiClient,
        batch: Vec<Group>,
        report: &mut SyncReport,
        conflict_rounds: &mut usize,
    ) -> Result<Sent> {
        let body = {
            let cat = read(&self.catalogue)?;
            push::body(&cat, &batch)?
        };
        {
            let mut store = lock(&self.store)?;
            let tx = store.begin()?;
            for c in batch.iter().flat_map(|g| &g.changes) {
                tx.mark_sent(c.local_id, c.counter)?;
            }
            tx.commit()?;
        }
        report.push_requests += 1;
        match self.call(client, "SaveAllDataV2", &body) {
            Ok(reply) => {
                let mut changes = Changes::default();
                {
                    let cat = read(&self.catalogue)?;
                    let mut store = lock(&self.store)?;
                    let mut tx = store.begin()?;
                    push::confirm(
                        &mut tx,
                        &cat,
                        &batch,
                        &reply.data,
                        reply.tracking_id.as_deref(),
                        report,
                    )?;
                    tx.commit()?;
                }
                for c in batch.iter().flat_map(|g| &g.changes) {
                    changes.note(
                        &c.collection,
                        c.server_id,
                        c.client_id,
                        local::ChangeOrigin::Sync,
                    );
                }
                self.registry.emit_changes(&changes.into_events());
                Ok(Sent::Done)
            }
            Err(Error::Conflict {
                message,
                errors,
                tracking_id,
            }) => {
                *conflict_rounds += 1;
                if *conflict_rounds > MAX_CONFLICT_ROUNDS {
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
                self.resolve_rejected_saves(client, &batch, &errors, report)?;
                Ok(Sent::Replan)
            }
            Err(Error::Rejected {
                code,
                message,
                errors,
                tracking_id,
                ..
            }) => {
                let isolatable = code == 2001 || code == 3001;
                if isolatable
                    && self.park_named(
                        &batch,
                        &errors,
                        code,
                        &message,
                        tracking_id.as_deref(),
                        report,
                    )? > 0
                {
                    return Ok(Sent::Replan);
                }
                if !isolatable || batch.len() == 1 {
                    // An unknown code means the server found the request
                    // malformed (a bug on our side): park the batch rather
                    // than loop on it. A lone group is the culprit itself.
                    self.park(
                        &batch,
                        code,
                        &message,
                        None,
                        None,
                        tracking_id.as_deref(),
                        report,
                    )?;
                    return Ok(Sent::Replan);
                }
                // No usable errors list: bisect until the culprit is alone.
                let mut left = batch;
                let right = left.split_off(left.len() / 2);
                if let Sent::Replan = self.send(client, left, report, conflict_rounds)? {
                    return Ok(Sent::Replan);
                }
                self.send(client, right, report, conflict_rounds)
            }
            Err(e) => Err(e),
        }
    }

    /// Parks each group the errors name; returns how many groups.
    fn park_named(
        &self,
        batch: &[Group],
        errors: &[crate::error::RecordError],
        code: i64,
        message: &str,
        tracking_id: Option<&str>,
        report: &mut SyncReport,
    ) -> Result<usize> {
        let cat = self.catalogue()?;
        let mut done: Vec<i64> = Vec::new();
        for err in errors {
            if let Some((group, _)) = push::named(&cat, batch, err) {
                if done.contains(&group.id) {
                    continue;
                }
                done.push(group.id);
                let msg = err.message.as_deref().unwrap_or(message);
                self.park(
                    std::slice::from_ref(group),
                    err.code.unwrap_or(code),
                    msg,
                    err.entity.as_deref(),
                    err.field.as_deref(),
                    tracking_id,
                    report,
                )?;
            }
        }
        Ok(done.len())
    }

    /// Parks every change of `groups` in one new dead letter.
    #[allow(clippy::too_many_arguments)]
    fn park(
        &self,
        groups: &[Group],
        code: i64,
        message: &str,
        entity: Option<&str>,
        field: Option<&str>,
        tracking_id: Option<&str>,
        report: &mut SyncReport,
    ) -> Result<()> {
        let ids: Vec<i64> = groups
            .iter()
            .flat_map(|g| &g.changes)
            .map(|c| c.local_id)
            .collect();
        {
            let mut store = lock(&self.store)?;
            let tx = store.begin()?;
            tx.park(&ids, code, message, entity, field, tracking_id)?;
            tx.commit()?;
        }
        self.logger.log(LogLevel::Warn, "rowsync::push", || {
            format!(
                "parked {} change(s) in the dead-letter queue: code {code}{}, tracking id {}",
                ids.len(),
                field.map(|f| format!(", field `{f}`")).unwrap_or_default(),
                tracking_id.unwrap_or("none")
            )
        });
        for c in groups.iter().flat_map(|g| &g.changes) {
            report.collection(&c.collection).parked += 1;
            report.parked += 1;
        }
        Ok(())
    }

    /// Resolves a 2002 answer: with the server's record, at once; without
    /// it, by pulling the collections concerned (which resolves on apply).
    fn resolve_rejected_saves(
        &self,
        client: &ApiClient,
        batch: &[Group],
        errors: &[crate::error::RecordError],
        report: &mut SyncReport,
    ) -> Result<()> {
        let mut refetch: Vec<String> = Vec::new();
        {
            let cat = read(&self.catalogue)?;
            let resolvers = read(&self.resolvers)?;
            let mut store = lock(&self.store)?;
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
        refetch.retain(|c| {
            self.catalogue
                .read()
                .map(|cat| cat.get(c).is_some())
                .unwrap_or(false)
        });
        if !refetch.is_empty() {
            self.pull(client, Some(&refetch), report)?;
        }
        Ok(())
    }
}

enum Sent {
    Done,
    Replan,
}

/// Drops one parked change: back to the server's version, or gone.
fn discard_change(
    tx: &mut store::Tx<'_>,
    cat: &Catalogue,
    local_id: i64,
    changes: &mut Changes,
) -> Result<()> {
    let Some(row) = store::row_by_local_id(tx, local_id)? else {
        return Ok(());
    };
    let pending = store::pending_of(tx, local_id)?;
    let coll_name: String = tx.query_row(
        "SELECT c.name FROM rs_collections c JOIN rs_records r ON r.coll = c.id WHERE r.local_id = ?1",
        [local_id],
        |r| r.get(0),
    )?;
    changes.note(
        &coll_name,
        row.server_id,
        row.client_id,
        local::ChangeOrigin::Local,
    );
    match pending.and_then(|p| p.base) {
        Some(base) => {
            let deleted = serde_json::from_str::<Value>(&base)?
                .get("deleted")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            tx.drop_pending(local_id)?;
            tx.update_record(local_id, row.server_id, row.row_version, deleted, &base)?;
        }
        None => {
            if let Some(cid) = row.client_id.filter(|&c| c != 0) {
                for child in cat.children_of(&coll_name) {
                    let ccoll = tx.coll_id(&child.name)?;
                    for l in tx.orphaned_creates(ccoll, cid)? {
                        tx.drop_pending(l)?;
                        tx.remove_record(l)?;
                    }
                }
            }
            tx.drop_pending(local_id)?;
            tx.remove_record(local_id)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::ChangeEvent;
    use serde_json::json;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn engine_is_send_and_sync() {
        assert_send_sync::<Engine>();
    }

    #[test]
    fn list_pages_with_a_cursor_and_hides_tombstones() {
        let e = Engine::open(":memory:").unwrap();
        let mut ids = Vec::new();
        for i in 0..25 {
            let r = e
                .create("products", json!({"name": format!("p{i}")}))
                .unwrap();
            ids.push(r["productClientId"].as_i64().unwrap());
        }
        e.delete("products", RecordId::Client(ids[3])).unwrap();
        let mut seen = 0;
        let mut opts = ListOptions {
            limit: 10,
            ..Default::default()
        };
        loop {
            let page = e.list("products", &opts).unwrap();
            seen += page.records.len();
            match page.next_cursor {
                Some(c) => opts.after = Some(c),
                None => break,
            }
        }
        // The create of ids[3] never reached a server: it is simply gone.
        assert_eq!(seen, 24);
        assert_eq!(e.count("products", true).unwrap(), 24);
        let off = e
            .list(
                "products",
                &ListOptions {
                    limit: 5,
                    offset: 20,
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(off.records.len(), 4);
    }

    #[test]
    fn wipe_refuses_pending_changes_unless_forced() {
        let e = Engine::open(":memory:").unwrap();
        e.create("persons", json!({"name": "A"})).unwrap();
        assert!(matches!(e.wipe(false), Err(Error::PendingChanges(1))));
        e.wipe(true).unwrap();
        assert_eq!(e.count("persons", true).unwrap(), 0);
        assert_eq!(e.status().unwrap().counts.pending, 0);
    }

    #[test]
    fn listeners_hear_local_writes_until_dropped() {
        struct L(Mutex<Vec<ChangeEvent>>);
        impl ChangeListener for L {
            fn on_change(&self, events: &[ChangeEvent]) {
                self.0.lock().unwrap().extend_from_slice(events);
            }
        }
        struct S(Mutex<Vec<ConnectionState>>);
        impl StatusListener for S {
            fn on_status(&self, s: &ConnectionState) {
                self.0.lock().unwrap().push(s.clone());
            }
        }
        let e = Engine::open(":memory:").unwrap();
        let l = Arc::new(L(Mutex::new(Vec::new())));
        let s = Arc::new(S(Mutex::new(Vec::new())));
        let sub = e.subscribe_changes(l.clone());
        let ssub = e.subscribe_status(s.clone());
        assert_eq!(s.0.lock().unwrap().as_slice(), &[ConnectionState::Unknown]);
        e.write(|w| {
            w.create("persons", json!({"name": "A"}))?;
            w.create("persons", json!({"name": "B"}))?;
            w.create("products", json!({"name": "C"}))
        })
        .unwrap();
        {
            let got = l.0.lock().unwrap();
            assert_eq!(got.len(), 2);
            assert_eq!(got[0].collection, "persons");
            assert_eq!(got[0].records.len(), 2);
        }
        // A sync without configuration fails with a clear error.
        assert!(matches!(e.sync(), Err(Error::Config(_))));
        assert!(s.0.lock().unwrap().contains(&ConnectionState::Syncing));
        drop(sub);
        ssub.cancel();
        e.create("persons", json!({"name": "D"})).unwrap();
        assert_eq!(l.0.lock().unwrap().len(), 2);
    }

    #[test]
    fn settings_survive_a_reopen_and_the_password_is_not_stored() {
        let dir = std::env::temp_dir().join(format!("rowsync-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.db");
        {
            let e = Engine::open(&path).unwrap();
            e.configure(Settings {
                base_url: "https://example.com/API/v3".into(),
                page_size: 123,
                ..Settings::default()
            })
            .unwrap();
            e.set_credentials(Credentials {
                username: "u".into(),
                password: "s3cr3t-pw".into(),
                database_id: 1,
                package_number: 2,
            })
            .unwrap();
        }
        let e = Engine::open(&path).unwrap();
        let s = e.settings().unwrap();
        assert_eq!(
            (s.page_size, s.username.as_str(), s.database_id),
            (123, "u", 1)
        );
        drop(e);
        for f in ["s.db", "s.db-wal"] {
            let bytes = std::fs::read(dir.join(f)).unwrap_or_default();
            assert!(!bytes.windows(9).any(|w| w == b"s3cr3t-pw"));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
