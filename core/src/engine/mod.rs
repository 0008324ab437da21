//! The engine: the entry point an app holds, and nothing else. It owns the
//! replica's database ([`Db`]), the catalogue, the settings, the listeners
//! and the API client; it validates and configures, runs the local write
//! flow (`local.rs`) and the app's reads. Beside this file: `sync.rs`
//! starts a sync (`sync/session.rs`) with a snapshot of what it needs,
//! `tasks.rs` holds the task queue's entry points, `pictures.rs` the picture
//! cache's. Every method is
//! synchronous and may block: call it off the UI thread. `Engine` is
//! `Send + Sync`; share it with an `Arc`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use serde_json::Value;

use crate::api::client::{ApiClient, Credentials, Session, Shutdown};
use crate::api::dialect::Dialect;
use crate::api::shutdown::Clock;
use crate::catalogue::{Catalogue, CollectionDef, ConflictPolicy};
use crate::conflict::ConflictResolver;
use crate::error::{Error, Result};
use crate::explain::Explanation;
use crate::hints::HintOutcome;
use crate::key::DbKey;
use crate::listeners::{ChangeListener, Registry, StatusListener, Subscription};
use crate::live::{Live, LiveQuery, Query, QueryListener};
use crate::local::{self, Changes, ListOptions, Page, RecordId, Writer};
use crate::locks::{lock, read, write};
use crate::log::{LogLevel, LogSink, Logger};
use crate::report::SyncReport;
use crate::settings::Settings;
use crate::status::{clock_skew_warns, ConnectionState};
use crate::store::{self, meta, ConflictEntry, Counts, Db, DeadLetter, SyncLogEntry};
use crate::transport::Transport;

mod handover;
mod pictures;
mod sync;
mod tasks;

/// The engine's state as the app sees it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Status {
    /// The dialect the replica syncs in.
    pub dialect: Dialect,
    /// What the server said of this client at its last login (mahak).
    pub session: Option<Session>,
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
    /// The upload queue, parked uploads included, oldest first.
    pub uploads: Vec<crate::tasks::TaskInfo>,
    /// The device's clock minus the server's, in seconds (positive: the
    /// device is ahead), as the last login measured it (`ServerTime`);
    /// `None` when the server did not say its time or no login is known.
    pub clock_skew_seconds: Option<i64>,
    /// `clock_skew_seconds` is further from zero than
    /// `Settings::clock_skew_warning_seconds`.
    pub clock_skew_warning: bool,
    /// The outbox by the user that made each change (a shared device),
    /// the oldest change's user first.
    pub pending_by_user: Vec<store::UserPending>,
    /// Changes discarded on purpose so far (`Engine::discarded_changes`).
    pub discarded: u64,
}

/// The sync engine.
pub struct Engine {
    /// The replica: the writer, a reader beside it (so the app's reads do
    /// not wait while a sync applies a page) and the checkpoint thread.
    pub(crate) db: Arc<Db>,
    pub(crate) catalogue: RwLock<Catalogue>,
    pub(crate) resolvers: RwLock<HashMap<String, Arc<dyn ConflictResolver>>>,
    pub(crate) settings: RwLock<Settings>,
    pub(crate) credentials: Mutex<Option<Credentials>>,
    pub(crate) transport: RwLock<Option<Arc<dyn Transport>>>,
    pub(crate) client: Mutex<Option<Arc<ApiClient>>>,
    pub(crate) shutdown: Shutdown,
    pub(crate) sync_lock: Mutex<()>,
    pub(crate) syncing: Mutex<bool>,
    /// The login session, as last stored.
    pub(crate) session: Mutex<Option<Session>>,
    /// The app chose the catalogue: a dialect change does not replace it.
    pub(crate) custom_catalogue: bool,
    pub(crate) registry: Arc<Registry>,
    pub(crate) logger: Logger,
    /// The secret push hints are signed with (memory only).
    pub(crate) hint_secret: Mutex<Option<Vec<u8>>>,
    /// The watched queries, and their thread.
    live: Live,
    /// Tells `live` what changed; subscribed at the first watch, so that
    /// a write costs nothing more while no query is watched.
    live_changes: std::sync::OnceLock<Subscription>,
    /// The replica's file (`None` in memory): the picture cache's
    /// directory is beside it by default.
    pub(crate) replica_path: Option<std::path::PathBuf>,
}

impl Engine {
    /// Opens (or creates) the replica at `path` (`:memory:` for an in-memory
    /// one) with the catalogue of its dialect: the one stored in the
    /// replica, else `mahak`. Configure `Settings::dialect` before the first
    /// write to speak the documented dialect instead.
    pub fn open(path: impl AsRef<Path>) -> Result<Engine> {
        Self::open_inner(path.as_ref(), None)
    }

    /// Opens the replica with a catalogue of the app's choosing.
    pub fn open_with(path: impl AsRef<Path>, catalogue: Catalogue) -> Result<Engine> {
        Self::open_inner(path.as_ref(), Some(catalogue))
    }

    /// Opens (or creates) a replica encrypted with `key` (SQLCipher; needs
    /// the `encryption` feature). A wrong or missing key is `WrongKey`, and
    /// the file is left byte for byte as it was.
    pub fn open_encrypted(path: impl AsRef<Path>, key: DbKey) -> Result<Engine> {
        Self::open_keyed(path.as_ref(), None, Some(key))
    }

    fn open_inner(path: &Path, catalogue: Option<Catalogue>) -> Result<Engine> {
        Self::open_keyed(path, catalogue, None)
    }

    fn open_keyed(path: &Path, catalogue: Option<Catalogue>, key: Option<DbKey>) -> Result<Engine> {
        let db = Db::open(path, key.as_ref())?;
        let (stored, last_report, session) = db.read(|conn| {
            Ok((
                meta::get(conn, meta::SETTINGS)?,
                meta::get(conn, meta::LAST_REPORT)?,
                meta::get(conn, meta::SESSION)?,
            ))
        })?;
        let settings: Settings = match &stored {
            Some(text) => {
                let mut settings: Settings = serde_json::from_str(text).unwrap_or_default();
                // Replicas written before dialects existed synced the
                // documented one.
                if serde_json::from_str::<Value>(text)
                    .ok()
                    .is_some_and(|v| v.get("dialect").is_none())
                {
                    settings.dialect = Dialect::Documented;
                }
                settings
            }
            None => Settings::default(),
        };
        let custom_catalogue = catalogue.is_some();
        let catalogue = catalogue.unwrap_or_else(|| settings.dialect.catalogue());
        db.ensure_collections(catalogue.iter().map(|c| c.name.as_str()))?;
        // The connection state a new process starts with: how the last sync
        // ended, until this process learns better.
        let last_state = last_report
            .and_then(|t| serde_json::from_str::<SyncReport>(&t).ok())
            .and_then(|r| r.connection)
            .unwrap_or(ConnectionState::Unknown);
        let session = session.and_then(|t| serde_json::from_str::<Session>(&t).ok());
        let db = Arc::new(db);
        let registry = Arc::new(Registry::new(last_state));
        let live = Live::new(&db);
        Ok(Engine {
            db,
            catalogue: RwLock::new(catalogue),
            resolvers: RwLock::new(HashMap::new()),
            settings: RwLock::new(settings),
            credentials: Mutex::new(None),
            transport: RwLock::new(None),
            client: Mutex::new(None),
            shutdown: Shutdown::default(),
            sync_lock: Mutex::new(()),
            syncing: Mutex::new(false),
            session: Mutex::new(session),
            custom_catalogue,
            registry,
            logger: Logger::default(),
            hint_secret: Mutex::new(None),
            live,
            live_changes: std::sync::OnceLock::new(),
            replica_path: (path.as_os_str() != ":memory:" && !path.as_os_str().is_empty())
                .then(|| path.to_path_buf()),
        })
    }

    /// Changes the key of this encrypted replica to `key` (every page is
    /// written again). The old key no longer opens it.
    pub fn rekey(&self, key: DbKey) -> Result<()> {
        self.db.rekey(&key)
    }

    /// Encrypts the plain replica at `path` with `key`, in place and
    /// crash-safely: the data is exported into a new encrypted file beside
    /// it, which is synced to disk and then renamed over the old one. A
    /// kill at any moment leaves either the old plain file or the new
    /// encrypted one, each whole. No engine may have the replica open.
    pub fn encrypt_in_place(path: impl AsRef<Path>, key: &DbKey) -> Result<()> {
        crate::key::encrypt_in_place(path.as_ref(), key)
    }

    // ----- configuration ---------------------------------------------------

    /// The current settings.
    pub fn settings(&self) -> Result<Settings> {
        Ok(read(&self.settings)?.clone())
    }

    /// Replaces the settings and stores them (the password is never stored).
    pub fn configure(&self, mut settings: Settings) -> Result<()> {
        settings.order_types.sort_unstable();
        settings.order_types.dedup();
        if !settings.base_url.is_empty() {
            crate::url::validate_base_url(&settings.base_url)?;
        }
        let endpoints = settings.endpoints();
        for name in endpoints.all() {
            crate::url::check_endpoint(name)?;
        }
        let (current, old_types) = {
            let s = read(&self.settings)?;
            (s.dialect, s.order_types.clone())
        };
        // Orders of a type not pulled until now lie below the orders'
        // checkpoint: widening the filter (or lifting it) starts the orders
        // over.
        let widened = !old_types.is_empty()
            && (settings.order_types.is_empty()
                || settings.order_types.iter().any(|t| !old_types.contains(t)));
        self.db.write(|tx| {
            if settings.dialect != current {
                if store::holds_data(tx)? {
                    return Err(Error::DialectMismatch {
                        replica: current.to_string(),
                        asked: settings.dialect.to_string(),
                    });
                }
                if !self.custom_catalogue {
                    let catalogue = settings.dialect.catalogue();
                    tx.ensure_collections(catalogue.iter().map(|c| c.name.as_str()))?;
                    *write(&self.catalogue)? = catalogue;
                }
            }
            tx.set_meta(meta::SETTINGS, &serde_json::to_string(&settings)?)?;
            if widened {
                if let Ok(coll) = tx.coll_id("orders") {
                    tx.reset_checkpoint(coll)?;
                }
            }
            Ok(())
        })?;
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

    /// Replaces the clock the engine's waits, backoff, `Retry-After` and the
    /// sync's deadline use (`None`: the real one). With a
    /// [`crate::VirtualClock`] no wait sleeps: for tests and simulation.
    pub fn set_clock(&self, clock: Option<Arc<dyn Clock>>) {
        self.shutdown.set_clock(clock);
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
        self.db.write(|tx| {
            let counts = store::counts(tx)?;
            // Queued uploads and disputes (parked ones too) are changes as well.
            let waiting = counts.pending + counts.parked + store::tasks::count(tx)?;
            if !force && waiting > 0 {
                return Err(Error::PendingChanges(waiting));
            }
            tx.wipe()?;
            for key in [
                meta::SESSION,
                meta::SESSION_USER,
                meta::EXPORTED,
                meta::PULLED_AT,
                meta::INCLUSIVE_BOUND,
            ] {
                tx.delete_meta(key)?;
            }
            Ok(())
        })?;
        *lock(&self.session)? = None;
        // The next login may name another database or visitor.
        *lock(&self.client)? = None;
        self.live.touch_all();
        Ok(())
    }

    /// Forgets the pull checkpoints so the next sync pulls everything again
    /// (data and pending changes are kept).
    pub fn reset_checkpoints(&self) -> Result<()> {
        self.db.write(|tx| {
            tx.reset_checkpoints()?;
            tx.delete_meta(meta::PULLED_AT)
        })
    }

    /// Registers an app-defined collection.
    pub fn register_collection(&self, def: CollectionDef) -> Result<()> {
        let name = def.name.clone();
        write(&self.catalogue)?.register(def)?;
        self.db.ensure_collections([name.as_str()])
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
            self.db.write(|tx| {
                let group = tx.next_seq();
                f(&mut Writer {
                    tx,
                    catalogue: &cat,
                    group,
                    changes: &mut changes,
                })
            })?
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

    /// A live record by id.
    pub fn get(&self, collection: &str, id: RecordId) -> Result<Option<Value>> {
        read(&self.catalogue)?.require(collection)?;
        self.db
            .read(|conn| local::get(conn, store::coll_id_of(conn, collection)?, id))
    }

    /// A page of a collection (tombstones only when asked).
    pub fn list(&self, collection: &str, options: &ListOptions) -> Result<Page> {
        read(&self.catalogue)?.require(collection)?;
        self.db
            .read(|conn| local::list(conn, store::coll_id_of(conn, collection)?, options))
    }

    /// Number of live records (or all, with tombstones) in a collection.
    pub fn count(&self, collection: &str, include_deleted: bool) -> Result<u64> {
        read(&self.catalogue)?.require(collection)?;
        self.db.read(|conn| {
            store::count_rows(conn, store::coll_id_of(conn, collection)?, include_deleted)
        })
    }

    /// The records `query` returns now (see [`Engine::watch`]).
    pub fn query(&self, query: &Query) -> Result<Vec<Value>> {
        let plan = query.plan(&*read(&self.catalogue)?)?;
        self.db.read(|conn| plan.run(conn))
    }

    /// Watches `query`: `listener` is told its records at once, then again
    /// whenever a local write or a sync changes them, until the returned
    /// handle is cancelled or dropped. The query is checked first
    /// (`UnknownCollection`, `InvalidQuery`). Queries run on the engine's
    /// own thread, never the writer's: a burst of writes gives a few runs,
    /// the last of which sees the final state, and only the queries of the
    /// collections a change named run again. A run whose result did not
    /// change tells nobody.
    pub fn watch(&self, query: &Query, listener: Arc<dyn QueryListener>) -> Result<LiveQuery> {
        let plan = query.plan(&*read(&self.catalogue)?)?;
        // Before the first run, so that no change after it goes unseen.
        self.live_changes
            .get_or_init(|| self.registry.add_change(self.live.marker()));
        self.live.watch(plan, listener)
    }

    // ----- conflicts, dead letters, log, status ------------------------------

    /// The conflict log.
    pub fn conflicts(&self) -> Result<Vec<ConflictEntry>> {
        self.db.read(store::conflicts)
    }

    /// Clears the conflict log; returns how many entries went.
    pub fn clear_conflicts(&self) -> Result<u64> {
        self.db.write(|tx| store::logs::clear_conflicts(tx))
    }

    /// The dead-letter queue.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>> {
        self.db.read(store::dead_letters)
    }

    /// Puts a dead letter's changes back in the outbox (after the user fixed
    /// the data with normal writes); the next sync sends them.
    pub fn retry_dead_letter(&self, id: i64) -> Result<()> {
        self.db.write(|tx| {
            if !tx.unpark(id)? {
                return Err(Error::NotFound {
                    collection: "dead letters".into(),
                    id: id.to_string(),
                });
            }
            Ok(())
        })
    }

    /// Drops a dead letter's changes: each record returns to the server's
    /// version, or disappears if the server never had it (with the pending
    /// lines that depended on it).
    pub fn discard_dead_letter(&self, id: i64) -> Result<()> {
        let mut changes = Changes::default();
        {
            let cat = read(&self.catalogue)?;
            self.db.write(|tx| {
                let parked = store::parked_in(tx, id)?;
                if parked.is_empty() && !tx.delete_dead_letter(id)? {
                    return Err(Error::NotFound {
                        collection: "dead letters".into(),
                        id: id.to_string(),
                    });
                }
                for local_id in parked {
                    local::discard_change(tx, &cat, local_id, &mut changes)?;
                }
                tx.delete_dead_letter(id)?;
                Ok(())
            })?;
        }
        self.registry.emit_changes(&changes.into_events());
        Ok(())
    }

    /// The newest sync-log rows, newest first.
    pub fn sync_log(&self, limit: u32) -> Result<Vec<SyncLogEntry>> {
        self.db.read(|conn| store::sync_log(conn, limit))
    }

    /// The engine's status.
    pub fn status(&self) -> Result<Status> {
        let (counts, checkpoints, last, tasks, by_user, discarded) = self.db.read(|conn| {
            Ok((
                store::counts(conn)?,
                store::checkpoints(conn)?,
                meta::get(conn, meta::LAST_REPORT)?,
                store::tasks::list(conn)?,
                store::handover::by_user(conn)?,
                store::handover::discarded_count(conn)?,
            ))
        })?;
        let last: Option<SyncReport> = last.and_then(|t| serde_json::from_str(&t).ok());
        // The live client's measure, else the last sync's (a new process).
        let live = lock(&self.client)?.as_ref().and_then(|c| c.clock_skew());
        let clock_skew_seconds = live.or(last.as_ref().and_then(|r| r.clock_skew_seconds));
        let settings = read(&self.settings)?;
        let clock_skew_warning =
            clock_skew_warns(clock_skew_seconds, settings.clock_skew_warning_seconds);
        Ok(Status {
            dialect: settings.dialect,
            session: self.session()?,
            connection: self.registry.state(),
            syncing: *lock(&self.syncing)?,
            counts,
            checkpoints,
            last_sync: last.as_ref().map(|r| r.finished_at.clone()),
            last_error: last.and_then(|r| r.error),
            uploads: tasks
                .into_iter()
                .filter(|t| t.kind == crate::tasks::TaskKind::Upload)
                .collect(),
            clock_skew_seconds,
            clock_skew_warning,
            pending_by_user: by_user,
            discarded,
        })
    }

    /// The last sync's report, if any.
    pub fn last_report(&self) -> Result<Option<SyncReport>> {
        self.db.read(|conn| {
            Ok(meta::get(conn, meta::LAST_REPORT)?.and_then(|t| serde_json::from_str(&t).ok()))
        })
    }

    /// Sets the secret push hints are signed with (HMAC-SHA256), or removes
    /// it. Kept in memory only, like the password: the app passes it again
    /// after each start.
    pub fn set_hint_secret(&self, secret: Option<&[u8]>) -> Result<()> {
        if secret.is_some_and(<[u8]>::is_empty) {
            return Err(Error::Config("a hint secret must not be empty".into()));
        }
        *lock(&self.hint_secret)? = secret.map(<[u8]>::to_vec);
        Ok(())
    }

    /// Applies a push hint: checks its HMAC-SHA256 `signature` (hex) over
    /// `payload` in constant time, drops it if its id was seen in the last
    /// 24 hours, and marks the collections it names due, so the next
    /// `sync()` pulls them. A bad signature is `HintRefused` and changes
    /// nothing. Hints may come in any order; a missed one only waits for
    /// the collection's schedule.
    pub fn apply_hint(&self, payload: &[u8], signature: &str) -> Result<HintOutcome> {
        let secret = lock(&self.hint_secret)?
            .clone()
            .ok_or_else(|| Error::Config("no hint secret: call set_hint_secret first".into()))?;
        let hint = crate::hints::verify(&secret, payload, signature)?;
        let now = self.shutdown.now();
        let known: Vec<String> = {
            let cat = read(&self.catalogue)?;
            hint.collections
                .iter()
                .filter(|c| cat.get(c).is_some())
                .cloned()
                .collect()
        };
        let admitted = self.db.write(|tx| {
            let mut seen: crate::hints::Seen = meta::get(tx, meta::HINTS_SEEN)?
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default();
            if !seen.admit(&hint.id, now) {
                return Ok(false);
            }
            let mut pulled_at: std::collections::BTreeMap<String, chrono::DateTime<chrono::Utc>> =
                meta::get(tx, meta::PULLED_AT)?
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or_default();
            for c in &known {
                pulled_at.remove(c);
            }
            tx.set_meta(meta::HINTS_SEEN, &serde_json::to_string(&seen)?)?;
            tx.set_meta(meta::PULLED_AT, &serde_json::to_string(&pulled_at)?)?;
            Ok(true)
        })?;
        if !admitted {
            return Ok(HintOutcome::Duplicate);
        }
        let unknown = hint
            .collections
            .iter()
            .filter(|c| !known.contains(c))
            .cloned()
            .collect();
        Ok(HintOutcome::Applied {
            due: known,
            unknown,
        })
    }

    /// Where record `id` of `collection` stands, and why it is not on the
    /// server yet if it is not: synced, pending, in flight, in doubt, parked,
    /// waiting behind a parked parent, overridden by a conflict, deleted, or
    /// never seen. Exactly one is true.
    pub fn explain(&self, collection: &str, id: RecordId) -> Result<Explanation> {
        let def = read(&self.catalogue)?.require(collection)?.clone();
        let syncing = *lock(&self.syncing)?;
        let user = read(&self.settings)?.username.clone();
        let (last_sync_at, last_error) = match self.last_report()? {
            Some(r) if r.error.is_none() => (Some(r.finished_at), None),
            Some(r) => (None, r.error),
            None => (None, None),
        };
        self.db.read(|conn| {
            crate::explain::explain(conn, &def, id, &user, syncing, last_sync_at, last_error)
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
        listener.on_status(&self.registry.state());
        self.registry.add_status(listener)
    }

    pub(crate) fn set_state(&self, state: ConnectionState) -> Result<()> {
        self.registry.set_state(state);
        Ok(())
    }

    /// A URL the server gave (a picture's `url`) made absolute against the
    /// server's origin, ready for an image loader: the real server's may be
    /// relative (`/Files/12.jpg`). An absolute URL is kept; spaces and
    /// Persian letters are percent-encoded. `Config` when no server URL is
    /// configured or `url` is empty.
    pub fn absolute_url(&self, url: &str) -> Result<String> {
        let base = read(&self.settings)?.base_url.clone();
        if base.is_empty() {
            return Err(Error::Config("no server URL is configured".into()));
        }
        crate::url::absolute_url(&base, url)
    }

    /// What the server said of this client at its last login (mahak
    /// dialect): the visitor, database and sync ids, the user's title and
    /// the server's time. Apps need `visitor_id` to write orders. Kept
    /// across restarts; `None` before the first login.
    pub fn session(&self) -> Result<Option<Session>> {
        Ok(lock(&self.session)?.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listeners::ChangeEvent;
    use serde_json::json;

    fn assert_send_sync<T: Send + Sync>() {}

    /// An in-memory engine in the documented dialect (its `persons`).
    fn documented_engine() -> Engine {
        let e = Engine::open(":memory:").unwrap();
        e.configure(Settings {
            dialect: Dialect::Documented,
            ..Settings::default()
        })
        .unwrap();
        e
    }

    #[test]
    fn engine_is_send_and_sync() {
        assert_send_sync::<Engine>();
    }

    #[test]
    fn a_create_with_a_taken_client_id_is_refused_and_writes_nothing() {
        let e = documented_engine();
        let first = e
            .create("products", json!({"name": "a", "productClientId": 77}))
            .unwrap();
        assert_eq!(first["productClientId"], 77);
        let again = e.create("products", json!({"name": "b", "productClientId": 77}));
        assert!(
            matches!(&again, Err(Error::InvalidRecord { field, .. }) if field == "productClientId"),
            "{again:?}"
        );
        assert_eq!(e.count("products", false).unwrap(), 1);
        assert_eq!(e.status().unwrap().counts.pending, 1);
        // Made-up ids never collide with it or with each other.
        for i in 0..50 {
            e.create("products", json!({"name": format!("p{i}")}))
                .unwrap();
        }
        assert_eq!(e.count("products", false).unwrap(), 51);
        assert_eq!(e.status().unwrap().counts.pending, 51);
    }

    #[test]
    fn list_pages_with_a_cursor_and_hides_tombstones() {
        let e = documented_engine();
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
    fn endpoint_names_are_checked_when_configured() {
        let e = documented_engine();
        let bad = Settings {
            save_endpoint: "Save/../Admin?x=1".into(),
            ..e.settings().unwrap()
        };
        assert!(matches!(e.configure(bad), Err(Error::Config(_))));
        assert_eq!(e.settings().unwrap().save_endpoint, "", "nothing stored");
        let good = Settings {
            save_endpoint: "SaveAllDataV2".into(),
            ..e.settings().unwrap()
        };
        e.configure(good).unwrap();
        assert_eq!(e.settings().unwrap().endpoints().save, "SaveAllDataV2");
        // The task endpoints too.
        for bad in [
            Settings {
                upload_endpoint: "Up load".into(),
                ..e.settings().unwrap()
            },
            Settings {
                dispute_endpoint: "../Admin".into(),
                ..e.settings().unwrap()
            },
            Settings {
                order_dispute_endpoint: "Solve?x=1".into(),
                ..e.settings().unwrap()
            },
        ] {
            assert!(matches!(e.configure(bad), Err(Error::Config(_))));
        }
        let endpoints = e.settings().unwrap().endpoints();
        assert_eq!(
            (
                endpoints.order_dispute.as_str(),
                endpoints.dispute.as_str(),
                endpoints.upload.as_str()
            ),
            ("SolveOrderDispute", "SolveDispute", "Upload"),
            "nothing stored; the defaults"
        );
        e.configure(Settings {
            upload_endpoint: " UploadPicture ".into(),
            ..e.settings().unwrap()
        })
        .unwrap();
        assert_eq!(e.settings().unwrap().endpoints().upload, "UploadPicture");
    }

    #[test]
    fn wipe_refuses_pending_changes_unless_forced() {
        let e = documented_engine();
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
        let e = documented_engine();
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
