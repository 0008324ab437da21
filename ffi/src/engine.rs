//! `RowsyncEngine`: the object Kotlin, Swift and C hold. A thin wrapper over
//! `Arc<rowsync::Engine>` that converts JSON text and records at the
//! boundary and forwards sync activity to the app's log sink. Every method
//! is synchronous and may block: call it off the UI thread.

use std::sync::Arc;

use serde_json::Value;

use crate::error::{Result, RowsyncError};
use crate::listeners::{
    ChangeAdapter, ChangeListener, StatusAdapter, StatusListener, SubscriptionHandle,
};
use crate::live::{LiveQueryHandle, QueryAdapter, QueryListener, RecordQuery};
use crate::log::{LogLevel, LogSink, SinkAdapter};
use crate::metrics::EngineMetrics;
use crate::transport::{HttpTransport, TransportAdapter};
use crate::types::{
    ConflictRecord, DeadLetterEntry, EngineSettings, EngineStatus, ListQuery, LoginCredentials,
    LoginSession, OrderDispute, PictureSummary, RecordDispute, RecordKey, RecordPage,
    SyncLogRecord, SyncSummary, TaskEntry, UserOutbox, WriteOp,
};

/// The sync engine: a local replica the app reads and writes offline, and
/// syncs with the server on demand. Destroy it (Kotlin `use {}`, Swift
/// release) to close the database; call `shutdown()` first to interrupt a
/// sync running on another thread.
#[derive(uniffi::Object)]
pub struct RowsyncEngine {
    inner: Arc<rowsync::Engine>,
}

pub(crate) fn parse_json(collection: &str, text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| RowsyncError::bad_json(collection, &e))
}

impl RowsyncEngine {
    /// The wrapped engine (for the C API).
    pub(crate) fn core(&self) -> &rowsync::Engine {
        &self.inner
    }

    /// Opens with the settings given as the core's JSON (C API).
    pub(crate) fn open_core(path: &str) -> Result<RowsyncEngine> {
        Ok(RowsyncEngine {
            inner: Arc::new(rowsync::Engine::open(path)?),
        })
    }

    pub(crate) fn open_encrypted_core(path: &str, key: rowsync::DbKey) -> Result<RowsyncEngine> {
        Ok(RowsyncEngine {
            inner: Arc::new(rowsync::Engine::open_encrypted(path, key)?),
        })
    }

    /// Runs one sync; shared by the UniFFI and C faces.
    pub(crate) fn sync_core(&self) -> rowsync::Result<rowsync::SyncReport> {
        self.inner.sync()
    }

    /// Runs one sync pulling every collection, whatever its schedule.
    pub(crate) fn sync_all_core(&self) -> rowsync::Result<rowsync::SyncReport> {
        self.inner.sync_all()
    }

    /// Pulls the chosen collections now; shared by the UniFFI and C faces.
    pub(crate) fn sync_collections_core(
        &self,
        collections: &[String],
    ) -> rowsync::Result<rowsync::SyncReport> {
        self.inner.sync_collections(collections)
    }

    /// Runs a group of writes in one transaction.
    pub(crate) fn write_group_core(&self, ops: Vec<WriteOp>) -> Result<Vec<Option<String>>> {
        let mut parsed = Vec::with_capacity(ops.len());
        for op in ops {
            let json = match &op {
                WriteOp::Create {
                    collection,
                    record_json,
                    ..
                }
                | WriteOp::Put {
                    collection,
                    record_json,
                } => Some(parse_json(collection, record_json)?),
                WriteOp::Update {
                    collection,
                    patch_json,
                    ..
                } => Some(parse_json(collection, patch_json)?),
                WriteOp::Delete { .. } => None,
            };
            parsed.push((op, json));
        }
        let out = self.inner.write(|w| {
            // Each operation's collection and record as stored, for the
            // later operations that link to it.
            let mut results: Vec<Option<(String, Value)>> = Vec::with_capacity(parsed.len());
            for (op, json) in parsed {
                let json = json.unwrap_or(Value::Null);
                let r = match op {
                    WriteOp::Create {
                        collection,
                        parent_op,
                        ..
                    } => {
                        let mut json = json;
                        if let Some(i) = parent_op {
                            let earlier = results
                                .get(i as usize)
                                .and_then(Option::as_ref)
                                .map(|(c, v): &(String, Value)| (c.as_str(), v));
                            w.link_to_op(&collection, &mut json, i, earlier)?;
                        }
                        let stored = w.create(&collection, json)?;
                        Some((collection, stored))
                    }
                    WriteOp::Put { collection, .. } => {
                        let stored = w.put(&collection, json)?;
                        Some((collection, stored))
                    }
                    WriteOp::Update {
                        collection, key, ..
                    } => {
                        let stored = w.update(&collection, key.into(), json)?;
                        Some((collection, stored))
                    }
                    WriteOp::Delete { collection, key } => {
                        w.delete(&collection, key.into())?;
                        None
                    }
                };
                results.push(r);
            }
            Ok(results)
        })?;
        Ok(out
            .into_iter()
            .map(|r| r.map(|(_, v)| v.to_string()))
            .collect())
    }
}

#[uniffi::export]
impl RowsyncEngine {
    /// Opens (or creates) the replica at `path` (`:memory:` for an in-memory
    /// one). With `settings`, they replace the stored settings.
    #[uniffi::constructor]
    pub fn open(path: String, settings: Option<EngineSettings>) -> Result<Arc<Self>> {
        let engine = Self::open_core(&path)?;
        if let Some(s) = settings {
            engine.configure(s)?;
        }
        Ok(Arc::new(engine))
    }

    /// Opens (or creates) a replica encrypted with `key`: 32 raw bytes from
    /// the Android Keystore or the iOS Keychain, or a passphrase. A missing
    /// or wrong key is `WrongKey`, and the file is left as it was. The key
    /// is never stored.
    #[uniffi::constructor]
    pub fn open_encrypted(
        path: String,
        key: DatabaseKey,
        settings: Option<EngineSettings>,
    ) -> Result<Arc<Self>> {
        let key = match key {
            DatabaseKey::Raw { bytes } => db_key(&bytes, false)?,
            DatabaseKey::Passphrase { text } => db_key(text.as_bytes(), true)?,
        };
        let engine = Self::open_encrypted_core(&path, key)?;
        if let Some(s) = settings {
            engine.configure(s)?;
        }
        Ok(Arc::new(engine))
    }

    /// Changes the key of this encrypted replica.
    pub fn rekey(&self, key: DatabaseKey) -> Result<()> {
        let key = match key {
            DatabaseKey::Raw { bytes } => db_key(&bytes, false)?,
            DatabaseKey::Passphrase { text } => db_key(text.as_bytes(), true)?,
        };
        Ok(self.inner.rekey(key)?)
    }

    /// The current settings.
    pub fn settings(&self) -> Result<EngineSettings> {
        Ok(self.inner.settings()?.into())
    }

    /// Replaces the settings and stores them.
    pub fn configure(&self, settings: EngineSettings) -> Result<()> {
        settings.password_hashing()?;
        let base = self.inner.settings()?;
        Ok(self.inner.configure(settings.apply_to(base))?)
    }

    /// Supplies the login data (kept in memory only).
    pub fn set_credentials(&self, credentials: LoginCredentials) -> Result<()> {
        Ok(self.inner.set_credentials(credentials.into())?)
    }

    /// Supplies only the password; the rest comes from the stored settings.
    pub fn set_password(&self, password: String) -> Result<()> {
        Ok(self.inner.set_password(&password)?)
    }

    /// Sends every request through the app's own HTTP stack from now on.
    pub fn set_transport(&self, transport: Arc<dyn HttpTransport>) -> Result<()> {
        Ok(self
            .inner
            .set_transport(Arc::new(TransportAdapter(transport)))?)
    }

    /// Installs a log sink receiving lines at `level` and above (replacing
    /// any earlier sink). Lines never contain passwords, tokens or records.
    pub fn set_log_sink(&self, sink: Arc<dyn LogSink>, level: LogLevel) {
        self.inner
            .set_log_sink(Some(Arc::new(SinkAdapter(sink))), level.into());
    }

    /// Removes the log sink.
    pub fn clear_log_sink(&self) {
        self.inner.set_log_sink(None, rowsync::LogLevel::Error);
    }

    /// Creates a record (a JSON object); returns it as stored, with its
    /// client id.
    pub fn create(&self, collection: String, record_json: String) -> Result<String> {
        let v = parse_json(&collection, &record_json)?;
        Ok(self.inner.create(&collection, v)?.to_string())
    }

    /// Sets the fields of `patch_json` on a record; returns it as stored.
    pub fn update(&self, collection: String, key: RecordKey, patch_json: String) -> Result<String> {
        let v = parse_json(&collection, &patch_json)?;
        Ok(self.inner.update(&collection, key.into(), v)?.to_string())
    }

    /// Creates, or updates when the JSON carries the id of an existing record.
    pub fn put(&self, collection: String, record_json: String) -> Result<String> {
        let v = parse_json(&collection, &record_json)?;
        Ok(self.inner.put(&collection, v)?.to_string())
    }

    /// Deletes a record.
    pub fn delete(&self, collection: String, key: RecordKey) -> Result<()> {
        Ok(self.inner.delete(&collection, key.into())?)
    }

    /// Runs the operations as one group: they commit together and are pushed
    /// together, or none is stored. Returns each operation's record as stored
    /// (null for deletes).
    pub fn write_group(&self, ops: Vec<WriteOp>) -> Result<Vec<Option<String>>> {
        self.write_group_core(ops)
    }

    /// A live record as JSON, or null.
    pub fn get(&self, collection: String, key: RecordKey) -> Result<Option<String>> {
        Ok(self
            .inner
            .get(&collection, key.into())?
            .map(|v| v.to_string()))
    }

    /// Where a record stands, as JSON: `{"state": "synced" | "pending" |
    /// "in_flight" | "in_doubt" | "parked" | "waiting_for_parent" |
    /// "waiting_for_user" | "waiting_for_users_parent" | "overridden" |
    /// "deleted" | "never_seen", ...details}`, plus `words`,
    /// the state in plain words for a support screen.
    pub fn explain(&self, collection: String, key: RecordKey) -> Result<String> {
        explain_json(&self.inner, &collection, key.into())
    }

    /// A page of a collection.
    pub fn list(&self, collection: String, query: ListQuery) -> Result<RecordPage> {
        Ok(self.inner.list(&collection, &query.into())?.into())
    }

    /// Number of live records (or all, with deleted ones) in a collection.
    pub fn count(&self, collection: String, include_deleted: bool) -> Result<u64> {
        Ok(self.inner.count(&collection, include_deleted)?)
    }

    /// Runs one sync cycle: pull, then push. Blocks until done.
    pub fn sync(&self) -> Result<SyncSummary> {
        Ok(self.sync_core()?.into())
    }

    /// Sets the secret push hints are signed with (HMAC-SHA256), or removes
    /// it (`None`). Memory only: pass it again after each start.
    pub fn set_hint_secret(&self, secret: Option<Vec<u8>>) -> Result<()> {
        Ok(self.inner.set_hint_secret(secret.as_deref())?)
    }

    /// Applies a push hint (`payload` as received, `signature` the hex
    /// HMAC-SHA256): the collections it names are pulled at the next sync.
    /// Returns `{"outcome": "applied", "due": [...], "unknown": [...]}` or
    /// `{"outcome": "duplicate"}`; a bad signature is `InvalidInput`.
    pub fn apply_hint(&self, payload: Vec<u8>, signature: String) -> Result<String> {
        let outcome = self.inner.apply_hint(&payload, &signature)?;
        Ok(serde_json::to_string(&outcome).unwrap_or_default())
    }

    /// Runs one sync that pulls every collection now, whatever its schedule
    /// (`sync` pulls only the due ones: reference data every six hours by
    /// default, the rest every time). The push is the same.
    pub fn sync_all(&self) -> Result<SyncSummary> {
        Ok(self.sync_all_core()?.into())
    }

    /// Syncs now the chosen `collections` (a stock check before a sale):
    /// pulls them with their link collections (`products` brings
    /// `productDetails`, `productProperties` and `visitorProducts`),
    /// whatever their schedule, and pushes nothing. Waits for a running
    /// sync to end and keeps to the sync deadline. Throws `InvalidInput`
    /// (naming it) for a collection not in the catalogue and `Config` for
    /// an empty list or an unwanted collection, before anything is done.
    /// Blocks until done.
    pub fn sync_collections(&self, collections: Vec<String>) -> Result<SyncSummary> {
        Ok(self.sync_collections_core(&collections)?.into())
    }

    /// The running totals of every sync the replica ran: requests, bytes,
    /// retries by cause, phase times, records per collection. Kept in the
    /// replica; no record content, no token.
    pub fn metrics(&self) -> Result<EngineMetrics> {
        Ok(self.inner.metrics()?.into())
    }

    /// What the server said of this client at its last login (mahak
    /// dialect): the visitor orders must carry, the database, the user's
    /// title. `None` before the first login.
    pub fn session(&self) -> Result<Option<LoginSession>> {
        Ok(self.inner.session()?.map(Into::into))
    }

    /// A URL the server gave (a picture's `url`) made absolute against the
    /// server's origin, ready for an image loader; the real server's may be
    /// relative. Spaces and Persian letters are percent-encoded.
    pub fn absolute_url(&self, url: String) -> Result<String> {
        Ok(self.inner.absolute_url(&url)?)
    }

    /// The outbox by the user that made each change (a shared device
    /// changes hands with `set_credentials`): a sync sends only the
    /// signed-in user's, and throws `PendingChangesOfAnotherUser` before
    /// another user's.
    pub fn pending_by_user(&self) -> Result<Vec<UserOutbox>> {
        Ok(self
            .inner
            .pending_by_user()?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// The changes `user` made that are still in the outbox, as a JSON
    /// array (`collection`, `op`, `record`, `base`, `user`, `visitor_id`,
    /// `changed_at`, `group_id`, `in_doubt`, `dead_letter`), to keep
    /// elsewhere before `discard_pending`.
    pub fn export_pending(&self, user: String) -> Result<String> {
        export_json(&self.inner, &user)
    }

    /// Discards the changes `user` made that are still in the outbox (each
    /// kept in the discard trail first); throws `PendingChanges` unless
    /// `export_pending` exported these very changes. Returns how many went.
    pub fn discard_pending(&self, user: String) -> Result<u64> {
        Ok(self.inner.discard_pending(&user)?)
    }

    /// The trail of changes discarded on purpose, as a JSON array of
    /// `{"change": {...}, "discarded_at", "reason"}`, oldest first.
    pub fn discarded_changes(&self) -> Result<String> {
        to_json_text(&self.inner.discarded_changes()?)
    }

    /// The local file of picture `picture_id` (its server id) in the
    /// picture cache, or null while there is none (not fetched yet, failed,
    /// evicted, its record deleted, or the cache off). A path returned is a
    /// whole file; asking counts as a use for the eviction order.
    pub fn picture_path(&self, picture_id: i64) -> Result<Option<String>> {
        Ok(self
            .inner
            .picture_path(picture_id)?
            .map(|p| p.to_string_lossy().into_owned()))
    }

    /// Runs the picture cache now, as a sync does after its push: fetches
    /// the pictures wanted that have no file yet, removes those whose
    /// record went, evicts past the cap. No login needed; a picture that
    /// fails is counted and kept for a later run.
    pub fn sync_pictures(&self) -> Result<PictureSummary> {
        Ok(self.inner.sync_pictures()?.into())
    }

    /// The engine's status.
    pub fn status(&self) -> Result<EngineStatus> {
        Ok(self.inner.status()?.into())
    }

    /// The last sync's report, if any.
    pub fn last_report(&self) -> Result<Option<SyncSummary>> {
        Ok(self.inner.last_report()?.map(Into::into))
    }

    /// Queues the file at `path` for record `key` of `collection`
    /// (`/Sync/Upload`), under `file_name`. The bytes are copied into the
    /// replica now (the app may delete its file); a sync sends it once the
    /// record has a server id. Returns the upload's id. Throws
    /// `FileTooLarge` past the settings' `max_upload_bytes`, `NotFound` for
    /// an unknown record.
    pub fn queue_upload_file(
        &self,
        collection: String,
        key: RecordKey,
        path: String,
        file_name: String,
    ) -> Result<i64> {
        let source = rowsync::UploadSource::Path(path.into());
        Ok(self
            .inner
            .queue_upload(&collection, key.into(), source, &file_name)?)
    }

    /// [`RowsyncEngine::queue_upload_file`] with the file's bytes.
    pub fn queue_upload_bytes(
        &self,
        collection: String,
        key: RecordKey,
        bytes: Vec<u8>,
        file_name: String,
    ) -> Result<i64> {
        let source = rowsync::UploadSource::Bytes(bytes);
        Ok(self
            .inner
            .queue_upload(&collection, key.into(), source, &file_name)?)
    }

    /// The queued uploads and disputes, parked ones included, oldest first.
    pub fn tasks(&self) -> Result<Vec<TaskEntry>> {
        Ok(self.inner.tasks()?.into_iter().map(Into::into).collect())
    }

    /// Removes a queued upload or dispute (not a parked one).
    pub fn cancel_task(&self, id: i64) -> Result<()> {
        Ok(self.inner.cancel_task(id)?)
    }

    /// Queues `SolveOrderDispute` for `items` (orders by server id): durable,
    /// sent once, parked with the server's words if refused. Returns the
    /// queued tasks' ids.
    pub fn solve_order_dispute(&self, items: Vec<OrderDispute>) -> Result<Vec<i64>> {
        Ok(self
            .inner
            .solve_order_dispute(items.into_iter().map(Into::into).collect())?)
    }

    /// Queues `SolveDispute` for records of `collection` (by server id and
    /// row version). Returns the queued tasks' ids.
    pub fn solve_dispute(&self, collection: String, items: Vec<RecordDispute>) -> Result<Vec<i64>> {
        Ok(self
            .inner
            .solve_dispute(&collection, items.into_iter().map(Into::into).collect())?)
    }

    /// Queues the `SolveDispute` requests that tell the server which
    /// records of `collection` the replica holds, at which row versions
    /// (the vendor plugin's repair of a diverged replica). Returns the
    /// queued tasks' ids.
    pub fn reconcile_dispute(&self, collection: String) -> Result<Vec<i64>> {
        Ok(self.inner.reconcile_dispute(&collection)?)
    }

    /// The changes the server refused, parked.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetterEntry>> {
        Ok(self
            .inner
            .dead_letters()?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Puts a dead letter's changes back in the outbox (after fixing the
    /// data with normal writes).
    pub fn retry_dead_letter(&self, id: i64) -> Result<()> {
        Ok(self.inner.retry_dead_letter(id)?)
    }

    /// Drops a dead letter's changes: records return to the server's version.
    pub fn discard_dead_letter(&self, id: i64) -> Result<()> {
        Ok(self.inner.discard_dead_letter(id)?)
    }

    /// The conflict log.
    pub fn conflicts(&self) -> Result<Vec<ConflictRecord>> {
        Ok(self
            .inner
            .conflicts()?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Clears the conflict log; returns how many entries went.
    pub fn clear_conflicts(&self) -> Result<u64> {
        Ok(self.inner.clear_conflicts()?)
    }

    /// The newest sync-log rows (one per HTTP attempt), newest first.
    pub fn sync_log(&self, limit: u32) -> Result<Vec<SyncLogRecord>> {
        Ok(self
            .inner
            .sync_log(limit)?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Calls `listener` after every local write and applied sync step, as
    /// long as the returned handle lives.
    pub fn subscribe_changes(&self, listener: Arc<dyn ChangeListener>) -> Arc<SubscriptionHandle> {
        SubscriptionHandle::new(
            self.inner
                .subscribe_changes(Arc::new(ChangeAdapter(listener))),
        )
    }

    /// Calls `listener` with the connection state at once, then on every
    /// change, as long as the returned handle lives.
    pub fn subscribe_status(&self, listener: Arc<dyn StatusListener>) -> Arc<SubscriptionHandle> {
        SubscriptionHandle::new(
            self.inner
                .subscribe_status(Arc::new(StatusAdapter(listener))),
        )
    }

    /// The records `query` returns now, each a JSON object.
    pub fn query(&self, query: RecordQuery) -> Result<Vec<String>> {
        Ok(self
            .inner
            .query(&query.to_core()?)?
            .iter()
            .map(Value::to_string)
            .collect())
    }

    /// Watches `query`: `listener` is told its records at once, then again
    /// whenever a local write or a sync changes them, on the engine's own
    /// thread, until the returned handle is cancelled or destroyed. A burst
    /// of writes gives a few calls, the last with the final records; only
    /// changes to the query's collection run it again. An unknown
    /// collection or a bad field is `InvalidInput`, before anything runs.
    pub fn watch(
        &self,
        query: RecordQuery,
        listener: Arc<dyn QueryListener>,
    ) -> Result<Arc<LiveQueryHandle>> {
        let live = self
            .inner
            .watch(&query.to_core()?, Arc::new(QueryAdapter(listener)))?;
        Ok(LiveQueryHandle::new(live))
    }

    /// Stops syncing: forgets the token and credentials, keeps all data.
    pub fn disconnect(&self) -> Result<()> {
        Ok(self.inner.disconnect()?)
    }

    /// Deletes all local data. Refused while changes are pending unless
    /// `force`.
    pub fn wipe(&self, force: bool) -> Result<()> {
        Ok(self.inner.wipe(force)?)
    }

    /// Forgets the pull checkpoints so the next sync pulls everything again.
    pub fn reset_checkpoints(&self) -> Result<()> {
        Ok(self.inner.reset_checkpoints()?)
    }

    /// Interrupts the backoff waits of a running sync and refuses new
    /// network calls. The object stays usable for local reads and writes.
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Arc<RowsyncEngine> {
        RowsyncEngine::open(":memory:".into(), None).expect("open")
    }

    fn json(text: Option<&String>) -> Value {
        serde_json::from_str(text.expect("a stored record")).expect("json")
    }

    #[test]
    fn group_links_each_record_to_the_one_it_names() {
        let e = engine();
        let out = e
            .write_group(vec![
                WriteOp::Create {
                    collection: "people".into(),
                    record_json: r#"{"name": "walk-in"}"#.into(),
                    parent_op: None,
                },
                WriteOp::Create {
                    collection: "orders".into(),
                    record_json: r#"{"orderType": 201, "visitorId": 31}"#.into(),
                    parent_op: Some(0),
                },
                WriteOp::Create {
                    collection: "orderDetails".into(),
                    record_json: r#"{"ProductDetailId": 5, "Count1": 2, "Price": 47500}"#.into(),
                    parent_op: Some(1),
                },
            ])
            .expect("group");
        let (person, order, line) = (
            json(out[0].as_ref()),
            json(out[1].as_ref()),
            json(out[2].as_ref()),
        );
        assert!(person["personClientId"].is_i64());
        assert_eq!(order["personClientId"], person["personClientId"]);
        assert_eq!(line["orderClientId"], order["orderClientId"]);
        assert_eq!(line["productDetailId"], 5);
        assert_eq!(line["count1"], 2);
    }

    #[test]
    fn group_refuses_a_link_the_catalogue_does_not_have() {
        let e = engine();
        let err = e
            .write_group(vec![
                WriteOp::Create {
                    collection: "products".into(),
                    record_json: r#"{"name": "tea"}"#.into(),
                    parent_op: None,
                },
                WriteOp::Create {
                    collection: "orderDetails".into(),
                    record_json: r#"{"count1": 1}"#.into(),
                    parent_op: Some(0),
                },
            ])
            .expect_err("order lines do not link to products");
        assert!(
            matches!(&err, RowsyncError::InvalidInput { field, reason, .. }
                if field == "parent_op" && reason.contains("products")),
            "{err:?}"
        );
        assert_eq!(e.count("products".into(), true).expect("count"), 0);
    }

    #[test]
    fn failed_group_stores_nothing() {
        let e = engine();
        let err = e
            .write_group(vec![
                WriteOp::Create {
                    collection: "products".into(),
                    record_json: "{}".into(),
                    parent_op: None,
                },
                WriteOp::Create {
                    collection: "orderDetails".into(),
                    record_json: "{}".into(),
                    parent_op: Some(7),
                },
            ])
            .expect_err("bad parent_op");
        assert!(matches!(err, RowsyncError::InvalidInput { .. }));
        assert_eq!(e.count("products".into(), true).expect("count"), 0);
    }

    #[test]
    fn errors_are_typed() {
        let e = engine();
        assert!(matches!(
            e.create("nope".into(), "{}".into()),
            Err(RowsyncError::InvalidInput { collection, .. }) if collection == "nope"
        ));
        assert!(matches!(
            e.create("products".into(), "{".into()),
            Err(RowsyncError::InvalidInput { field, .. }) if field == "record"
        ));
        assert!(matches!(e.sync(), Err(RowsyncError::Config { .. })));
        e.create("products".into(), "{}".into()).expect("create");
        assert!(matches!(
            e.wipe(false),
            Err(RowsyncError::PendingChanges { count: 1 })
        ));
    }
}

/// The key of an encrypted replica, as the bindings pass it.
#[derive(Debug, Clone, uniffi::Enum)]
pub enum DatabaseKey {
    /// 32 raw bytes (from the platform's keystore).
    Raw {
        /// The key.
        bytes: Vec<u8>,
    },
    /// A passphrase.
    Passphrase {
        /// The passphrase.
        text: String,
    },
}

/// A core key from bytes: 32 raw ones, or a UTF-8 passphrase.
pub(crate) fn db_key(bytes: &[u8], passphrase: bool) -> Result<rowsync::DbKey> {
    if passphrase {
        let text = std::str::from_utf8(bytes).map_err(|_| RowsyncError::Config {
            detail: "a passphrase must be UTF-8".into(),
        })?;
        Ok(rowsync::DbKey::passphrase(text))
    } else {
        Ok(rowsync::DbKey::raw(bytes)?)
    }
}

fn to_json_text(v: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(v).map_err(|e| RowsyncError::Storage {
        detail: e.to_string(),
    })
}

/// `Engine::export_pending` as a JSON array (shared by UniFFI and C).
pub(crate) fn export_json(engine: &rowsync::Engine, user: &str) -> Result<String> {
    to_json_text(&engine.export_pending(user)?)
}

/// `Engine::explain` as JSON with its plain words (shared by UniFFI and C).
pub(crate) fn explain_json(
    engine: &rowsync::Engine,
    collection: &str,
    id: rowsync::RecordId,
) -> Result<String> {
    let x = engine.explain(collection, id)?;
    let mut v = serde_json::to_value(&x).map_err(|e| RowsyncError::Storage {
        detail: e.to_string(),
    })?;
    if let Some(m) = v.as_object_mut() {
        m.insert("words".into(), Value::String(x.words()));
    }
    Ok(v.to_string())
}
