//! The records and enums that cross the boundary by value, and their
//! conversions from the core's types. Records themselves cross as JSON text
//! (what Kotlin and Swift apps already parse); everything the engine reports
//! about itself (status, report, dead letters, conflicts, log) crosses as
//! typed records.

use serde_json::Value;

/// How the engine reaches the server and how it batches. Every field has a
/// default; `base_url` is the only one most apps set. The password is never
/// part of it: give it with `set_credentials`.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct EngineSettings {
    /// Base URL of the Mahak Sync API, e.g. `https://host/API/v3`.
    #[uniffi(default = "")]
    pub base_url: String,
    /// The dialect the server speaks: the real Mahak server's (the
    /// default) or the API document's. Kept in the replica; switching it on
    /// a replica that holds data throws `Config` until it is wiped.
    /// `defaultSettings(baseUrl)` starts from the mahak dialect.
    pub dialect: Dialect,
    /// Records per collection per pull page.
    #[uniffi(default = 5000)]
    pub page_size: u32,
    /// Changes per save request.
    #[uniffi(default = 500)]
    pub batch_size: u32,
    /// Records of one collection per save request.
    #[uniffi(default = 1000)]
    pub max_per_collection: u32,
    /// Collections to pull; empty means all of them.
    #[uniffi(default)]
    pub collections: Vec<String>,
    /// Attempts per call.
    #[uniffi(default = 6)]
    pub max_attempts: u32,
    /// First backoff delay, in milliseconds.
    #[uniffi(default = 500)]
    pub base_delay_ms: u64,
    /// Backoff cap, in milliseconds.
    #[uniffi(default = 30000)]
    pub max_delay_ms: u64,
    /// Connect timeout, in milliseconds.
    #[uniffi(default = 10000)]
    pub connect_timeout_ms: u64,
    /// Whole-call timeout, in milliseconds.
    #[uniffi(default = 60000)]
    pub timeout_ms: u64,
    /// An answer that stalls (headers or body) fails after this long, in
    /// milliseconds.
    #[uniffi(default = 30000)]
    pub read_timeout_ms: u64,
    /// No sync runs longer than this, in milliseconds.
    #[uniffi(default = 900000)]
    pub sync_deadline_ms: u64,
    /// Retries one sync may make in all, over every call.
    #[uniffi(default = 20)]
    pub retry_budget: u32,
    /// Pull requests one sync may make before it stops with an error.
    #[uniffi(default = 100000)]
    pub max_pull_pages: u32,
    /// `appId` sent at login (mahak dialect).
    #[uniffi(default = "rowsync")]
    pub app_id: String,
    /// The login endpoint; empty for the dialect's own (`Login`, `LoginV2`).
    #[uniffi(default = "")]
    pub login_endpoint: String,
    /// The pull endpoint; empty for the dialect's own (`GetAllData`,
    /// `GetAllDataV2`).
    #[uniffi(default = "")]
    pub pull_endpoint: String,
    /// The save endpoint; empty for the dialect's own (`SaveAllData`,
    /// `SaveAllDataV2`).
    #[uniffi(default = "")]
    pub save_endpoint: String,
    /// The endpoint settling orders in dispute; empty for
    /// `SolveOrderDispute`.
    #[uniffi(default = "")]
    pub order_dispute_endpoint: String,
    /// The endpoint of record disputes and reconciliations; empty for
    /// `SolveDispute`.
    #[uniffi(default = "")]
    pub dispute_endpoint: String,
    /// The upload endpoint; empty for `Upload`.
    #[uniffi(default = "")]
    pub upload_endpoint: String,
    /// Texts (case-insensitive) of a per-record save error meaning "this
    /// create is already registered" (mahak dialect); empty for the
    /// built-in Persian and English ones.
    #[uniffi(default)]
    pub already_registered: Vec<String>,
    /// How often each collection is pulled, in seconds (0: at every
    /// sync); a collection not named gets its default by churn (six hours
    /// for reference data such as banks and regions, every sync for the
    /// rest). `syncAll` ignores it; the push never waits for it.
    #[uniffi(default)]
    pub pull_intervals: std::collections::HashMap<String, u64>,
    /// The largest file an upload may have, in bytes; a larger one throws
    /// `FileTooLarge` when queued.
    #[uniffi(default = 10485760)]
    pub max_upload_bytes: u64,
    /// Ask for gzip answers and decode them as they arrive.
    #[uniffi(default = true)]
    pub gzip: bool,
    /// Fetch and parse the next pull page while this one is applied.
    #[uniffi(default = true)]
    pub pipelined_pull: bool,
    /// Mahak: the order types whose orders are pulled (201 for a sale...);
    /// empty for every type. Widening it pulls the orders again.
    #[uniffi(default)]
    pub order_types: Vec<i64>,
    /// Mahak: how the login sends the password, `md5` (most servers) or
    /// `plain` (some servers); anything else throws `Config`. Neither form
    /// is ever stored.
    #[uniffi(default = "md5")]
    pub password_hash: String,
    /// How far the device's clock may be from the server's (the login
    /// answer's `ServerTime`) before the sync summary and the status warn
    /// and the status listeners are told `ClockSkewed`, in seconds (13
    /// minutes by default; 0 never warns). Nothing is refused because of it.
    #[uniffi(default = 780)]
    pub clock_skew_warning_seconds: u64,
    /// Keep a picture cache: after each sync (and at `syncPictures`) the
    /// pictures wanted are fetched (on by default). A picture never fails a
    /// sync.
    #[uniffi(default = true)]
    pub pictures: bool,
    /// The cache's directory, the engine's own; empty for
    /// `<replica>.pictures` beside the replica's file (an in-memory replica
    /// has no cache until one is set).
    #[uniffi(default = "")]
    pub picture_dir: String,
    /// The picture ids to keep; empty for every live picture.
    #[uniffi(default)]
    pub picture_ids: Vec<i64>,
    /// The most the cache's files may take, in bytes (0: no cap); past it
    /// the least recently used go.
    #[uniffi(default = 268435456)]
    pub picture_cache_bytes: u64,
    /// Check a fetched picture against an MD5- or SHA-256-shaped hash its
    /// record gives (the real server's hash is not known: turn it off if
    /// its hashes are of another kind).
    #[uniffi(default = true)]
    pub verify_picture_hash: bool,
}

impl EngineSettings {
    /// `password_hash` read, or a `Config` error naming it.
    pub(crate) fn password_hashing(&self) -> crate::error::Result<rowsync::PasswordHash> {
        self.password_hash
            .parse()
            .map_err(|detail| crate::error::RowsyncError::Config { detail })
    }

    /// Applies these settings over `base` (keeping the login fields).
    pub(crate) fn apply_to(&self, base: rowsync::Settings) -> rowsync::Settings {
        rowsync::Settings {
            base_url: self.base_url.clone(),
            dialect: self.dialect.into(),
            page_size: self.page_size,
            batch_size: self.batch_size as usize,
            max_per_collection: self.max_per_collection as usize,
            collections: self.collections.clone(),
            max_attempts: self.max_attempts,
            base_delay_ms: self.base_delay_ms,
            max_delay_ms: self.max_delay_ms,
            connect_timeout_ms: self.connect_timeout_ms,
            timeout_ms: self.timeout_ms,
            read_timeout_ms: self.read_timeout_ms,
            sync_deadline_ms: self.sync_deadline_ms,
            retry_budget: self.retry_budget,
            max_pull_pages: self.max_pull_pages,
            app_id: self.app_id.clone(),
            login_endpoint: self.login_endpoint.clone(),
            pull_endpoint: self.pull_endpoint.clone(),
            save_endpoint: self.save_endpoint.clone(),
            order_dispute_endpoint: self.order_dispute_endpoint.clone(),
            dispute_endpoint: self.dispute_endpoint.clone(),
            upload_endpoint: self.upload_endpoint.clone(),
            already_registered: self.already_registered.clone(),
            pull_intervals: self
                .pull_intervals
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            max_upload_bytes: self.max_upload_bytes,
            gzip: self.gzip,
            pipelined_pull: self.pipelined_pull,
            order_types: self.order_types.clone(),
            // Checked by `configure` (`password_hashing`) before.
            password_hash: self.password_hashing().unwrap_or_default(),
            clock_skew_warning_seconds: self.clock_skew_warning_seconds,
            pictures: self.pictures,
            picture_dir: self.picture_dir.clone(),
            picture_ids: self.picture_ids.clone(),
            picture_cache_bytes: self.picture_cache_bytes,
            verify_picture_hash: self.verify_picture_hash,
            ..base
        }
    }
}

impl From<rowsync::Settings> for EngineSettings {
    fn from(s: rowsync::Settings) -> Self {
        EngineSettings {
            base_url: s.base_url,
            dialect: s.dialect.into(),
            page_size: s.page_size,
            batch_size: u32::try_from(s.batch_size).unwrap_or(u32::MAX),
            max_per_collection: u32::try_from(s.max_per_collection).unwrap_or(u32::MAX),
            collections: s.collections,
            max_attempts: s.max_attempts,
            base_delay_ms: s.base_delay_ms,
            max_delay_ms: s.max_delay_ms,
            connect_timeout_ms: s.connect_timeout_ms,
            timeout_ms: s.timeout_ms,
            read_timeout_ms: s.read_timeout_ms,
            sync_deadline_ms: s.sync_deadline_ms,
            retry_budget: s.retry_budget,
            max_pull_pages: s.max_pull_pages,
            app_id: s.app_id,
            login_endpoint: s.login_endpoint,
            pull_endpoint: s.pull_endpoint,
            save_endpoint: s.save_endpoint,
            order_dispute_endpoint: s.order_dispute_endpoint,
            dispute_endpoint: s.dispute_endpoint,
            upload_endpoint: s.upload_endpoint,
            already_registered: s.already_registered,
            pull_intervals: s.pull_intervals.into_iter().collect(),
            max_upload_bytes: s.max_upload_bytes,
            gzip: s.gzip,
            pipelined_pull: s.pipelined_pull,
            order_types: s.order_types,
            password_hash: match s.password_hash {
                rowsync::PasswordHash::Md5 => "md5".into(),
                rowsync::PasswordHash::Plain => "plain".into(),
            },
            clock_skew_warning_seconds: s.clock_skew_warning_seconds,
            pictures: s.pictures,
            picture_dir: s.picture_dir,
            picture_ids: s.picture_ids,
            picture_cache_bytes: s.picture_cache_bytes,
            verify_picture_hash: s.verify_picture_hash,
        }
    }
}

/// The dialect of the Mahak Sync API a server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Dialect {
    /// What the production Mahak server speaks: MD5 login, `GetAllData`,
    /// `SaveAllData` with per-record results.
    Mahak,
    /// The API as its document describes it (`LoginV2`, `GetAllDataV2`,
    /// `SaveAllDataV2`).
    Documented,
}

impl From<Dialect> for rowsync::Dialect {
    fn from(d: Dialect) -> Self {
        match d {
            Dialect::Mahak => rowsync::Dialect::Mahak,
            Dialect::Documented => rowsync::Dialect::Documented,
        }
    }
}

impl From<rowsync::Dialect> for Dialect {
    fn from(d: rowsync::Dialect) -> Self {
        match d {
            rowsync::Dialect::Mahak => Dialect::Mahak,
            rowsync::Dialect::Documented => Dialect::Documented,
        }
    }
}

/// What the server said of this client at its last login (mahak dialect).
/// Orders carry `visitor_id`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LoginSession {
    /// The visitor (shop, salesman, app) this client acts as.
    pub visitor_id: i64,
    /// The server's sync id of the login.
    pub sync_id: i64,
    /// The Mahak database.
    pub database_id: i64,
    /// The user's display name.
    pub user_title: String,
    /// The server's clock at login, as it wrote it.
    pub server_time: String,
}

impl From<rowsync::Session> for LoginSession {
    fn from(s: rowsync::Session) -> Self {
        LoginSession {
            visitor_id: s.visitor_id,
            sync_id: s.sync_id,
            database_id: s.database_id,
            user_title: s.user_title,
            server_time: s.server_time,
        }
    }
}

/// The settings an engine starts with, with `base_url` filled in.
#[uniffi::export]
pub fn default_settings(base_url: String) -> EngineSettings {
    EngineSettings {
        base_url,
        ..rowsync::Settings::default().into()
    }
}

/// Login data, kept in memory only (never stored, never logged).
#[derive(Clone, PartialEq, uniffi::Record)]
pub struct LoginCredentials {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
    /// Mahak database id.
    pub database_id: i64,
    /// Mahak package number.
    pub package_number: i64,
}

impl std::fmt::Debug for LoginCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginCredentials")
            .field("username", &self.username)
            .field("password", &"***")
            .field("database_id", &self.database_id)
            .field("package_number", &self.package_number)
            .finish()
    }
}

impl From<LoginCredentials> for rowsync::Credentials {
    fn from(c: LoginCredentials) -> Self {
        rowsync::Credentials {
            username: c.username,
            password: c.password,
            database_id: c.database_id,
            package_number: c.package_number,
        }
    }
}

/// How the app names a record: by server id, or by client id (the only id
/// a record has until the server confirmed it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum RecordKey {
    /// The server id (`<key>Id`).
    Server {
        /// The id.
        id: i64,
    },
    /// The client id (`<key>ClientId`).
    Client {
        /// The id.
        id: i64,
    },
}

impl From<RecordKey> for rowsync::RecordId {
    fn from(k: RecordKey) -> Self {
        match k {
            RecordKey::Server { id } => rowsync::RecordId::Server(id),
            RecordKey::Client { id } => rowsync::RecordId::Client(id),
        }
    }
}

/// One write of a group given to `write_group`.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum WriteOp {
    /// Creates a record. With `parent_op`, the record names the record
    /// stored by that earlier operation of the same group (its index, from
    /// 0) through the catalogue's link between the two collections: an
    /// order line's `orderClientId`, an order's `personClientId`.
    Create {
        /// The collection.
        collection: String,
        /// The record, as a JSON object.
        record_json: String,
        /// Index of the earlier operation that stored the record to link to.
        parent_op: Option<u32>,
    },
    /// Sets the given fields of a record.
    Update {
        /// The collection.
        collection: String,
        /// The record.
        key: RecordKey,
        /// The fields to set, as a JSON object.
        patch_json: String,
    },
    /// Creates, or updates when the JSON carries the id of an existing record.
    Put {
        /// The collection.
        collection: String,
        /// The record, as a JSON object.
        record_json: String,
    },
    /// Deletes a record.
    Delete {
        /// The collection.
        collection: String,
        /// The record.
        key: RecordKey,
    },
}

/// Which records `list` returns.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ListQuery {
    /// At most this many records.
    #[uniffi(default = 1000)]
    pub limit: u64,
    /// Skip this many records.
    #[uniffi(default = 0)]
    pub offset: u64,
    /// Start after this cursor (from `RecordPage.next_cursor`).
    #[uniffi(default = None)]
    pub after: Option<i64>,
    /// Include deleted records (tombstones).
    #[uniffi(default = false)]
    pub include_deleted: bool,
}

impl From<ListQuery> for rowsync::ListOptions {
    fn from(q: ListQuery) -> Self {
        rowsync::ListOptions {
            limit: q.limit,
            offset: q.offset,
            after: q.after,
            include_deleted: q.include_deleted,
        }
    }
}

/// A page of records.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RecordPage {
    /// The records, each a JSON object, in local order.
    pub records: Vec<String>,
    /// Pass as `ListQuery.after` for the next page; null at the end.
    pub next_cursor: Option<i64>,
}

impl From<rowsync::Page> for RecordPage {
    fn from(p: rowsync::Page) -> Self {
        RecordPage {
            records: p.records.iter().map(Value::to_string).collect(),
            next_cursor: p.next_cursor,
        }
    }
}

/// A record that changed, by its ids.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ChangedRecord {
    /// Server id, if known.
    pub server_id: Option<i64>,
    /// Client id, if any.
    pub client_id: Option<i64>,
}

/// Where a change came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ChangeSource {
    /// A local write by the app.
    Local,
    /// A pull, a push confirmation or a conflict resolution.
    Sync,
}

/// Records of one collection that changed.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ChangeBatch {
    /// The collection.
    pub collection: String,
    /// The records.
    pub records: Vec<ChangedRecord>,
    /// Where the change came from.
    pub source: ChangeSource,
}

impl From<&rowsync::ChangeEvent> for ChangeBatch {
    fn from(e: &rowsync::ChangeEvent) -> Self {
        ChangeBatch {
            collection: e.collection.clone(),
            records: e
                .records
                .iter()
                .map(|r| ChangedRecord {
                    server_id: r.server_id,
                    client_id: r.client_id,
                })
                .collect(),
            source: match e.origin {
                rowsync::ChangeOrigin::Local => ChangeSource::Local,
                rowsync::ChangeOrigin::Sync => ChangeSource::Sync,
            },
        }
    }
}

/// The connection state.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ConnectionStatus {
    /// Nothing known yet (or disconnected).
    Unknown,
    /// The last attempt got a response.
    Online,
    /// The last call ran out of attempts.
    Offline {
        /// When a retry would make sense (RFC 3339), if known.
        next_attempt: Option<String>,
    },
    /// The server stalls: an answer of `endpoint` stopped coming. Shown
    /// while the call is tried again; a second stall in a row ends the sync
    /// with `Stalled`.
    Stalled {
        /// The endpoint whose answer stalled.
        endpoint: String,
    },
    /// Login was refused: new credentials are needed.
    AuthFailed,
    /// A sync is running.
    Syncing,
    /// A sync is sending the upload queue: file `file` of `files` (from 1)
    /// is on its way.
    Uploading {
        /// The upload's id in the queue.
        upload_id: i64,
        /// Which file of this sync's uploads, from 1.
        file: u32,
        /// Uploads this sync is sending.
        files: u32,
        /// The file's size in bytes.
        bytes: u64,
        /// Bytes of this sync's uploads sent so far, the current file's
        /// as they go out (told every 64 KiB).
        bytes_done: u64,
        /// Bytes of all of this sync's uploads.
        bytes_total: u64,
    },
    /// A notice, not a lasting state: a login just found the device's
    /// clock `skew_seconds` away from the server's, further than
    /// `clock_skew_warning_seconds`. Told once to the listeners; the state
    /// then goes on (`Syncing`, `Online`...), and `status().connection`
    /// never stays on it. Nothing is refused because of it.
    ClockSkewed {
        /// The device's clock minus the server's, in seconds (positive:
        /// the device is ahead).
        skew_seconds: i64,
    },
    /// The picture cache is fetching: picture `picture` of `pictures`
    /// (from 1), after the sync's pull and push (or in `syncPictures`).
    /// A picture that fails changes nothing else.
    FetchingPictures {
        /// Which picture of this run, from 1.
        picture: u32,
        /// Pictures this run fetches.
        pictures: u32,
        /// Bytes of this run's pictures fetched so far.
        bytes_done: u64,
    },
}

impl From<&rowsync::ConnectionState> for ConnectionStatus {
    fn from(s: &rowsync::ConnectionState) -> Self {
        match s {
            rowsync::ConnectionState::Unknown => ConnectionStatus::Unknown,
            rowsync::ConnectionState::Online => ConnectionStatus::Online,
            rowsync::ConnectionState::Offline { next_attempt } => ConnectionStatus::Offline {
                next_attempt: next_attempt.map(|t| t.to_rfc3339()),
            },
            rowsync::ConnectionState::Stalled { endpoint } => ConnectionStatus::Stalled {
                endpoint: endpoint.clone(),
            },
            rowsync::ConnectionState::AuthFailed => ConnectionStatus::AuthFailed,
            rowsync::ConnectionState::Syncing => ConnectionStatus::Syncing,
            rowsync::ConnectionState::Uploading {
                upload_id,
                file,
                files,
                bytes,
                bytes_done,
                bytes_total,
            } => ConnectionStatus::Uploading {
                upload_id: *upload_id,
                file: *file,
                files: *files,
                bytes: *bytes,
                bytes_done: *bytes_done,
                bytes_total: *bytes_total,
            },
            rowsync::ConnectionState::ClockSkewed { skew_seconds } => {
                ConnectionStatus::ClockSkewed {
                    skew_seconds: *skew_seconds,
                }
            }
            rowsync::ConnectionState::FetchingPictures {
                picture,
                pictures,
                bytes_done,
            } => ConnectionStatus::FetchingPictures {
                picture: *picture,
                pictures: *pictures,
                bytes_done: *bytes_done,
            },
        }
    }
}

/// Outbox and log counts.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OutboxCounts {
    /// Changes waiting to be pushed.
    pub pending: u64,
    /// Changes parked in dead letters.
    pub parked: u64,
    /// Dead letters.
    pub dead_letters: u64,
    /// Conflict-log entries.
    pub conflicts: u64,
    /// Creates whose save answer never came: the next sync confirms them
    /// by a pull before anything is sent again.
    pub in_doubt: u64,
    /// Uploads queued (not parked).
    pub uploads: u64,
    /// Disputes queued (not parked).
    pub disputes: u64,
}

impl From<rowsync::Counts> for OutboxCounts {
    fn from(c: rowsync::Counts) -> Self {
        OutboxCounts {
            pending: c.pending,
            parked: c.parked,
            dead_letters: c.dead_letters,
            conflicts: c.conflicts,
            in_doubt: c.in_doubt,
            uploads: c.uploads,
            disputes: c.disputes,
        }
    }
}

/// A pull checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Checkpoint {
    /// The collection.
    pub collection: String,
    /// The highest `rowVersion` pulled.
    pub row_version: i64,
}

/// The engine's state as the app sees it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct EngineStatus {
    /// The dialect the replica syncs in.
    pub dialect: Dialect,
    /// The last login's session (mahak dialect), if any.
    pub session: Option<LoginSession>,
    /// Connection state.
    pub connection: ConnectionStatus,
    /// A sync is running.
    pub syncing: bool,
    /// Outbox and log counts.
    pub counts: OutboxCounts,
    /// Pull checkpoints per collection.
    pub checkpoints: Vec<Checkpoint>,
    /// When the last sync ended (RFC 3339).
    pub last_sync: Option<String>,
    /// The last sync's error, if it failed.
    pub last_error: Option<String>,
    /// The upload queue, parked uploads included, oldest first.
    pub uploads: Vec<TaskEntry>,
    /// The device's clock minus the server's at the last login, in seconds
    /// (positive: the device is ahead); null when the server did not say
    /// its time.
    pub clock_skew_seconds: Option<i64>,
    /// `clock_skew_seconds` is past `clock_skew_warning_seconds`.
    pub clock_skew_warning: bool,
    /// The outbox by the user that made each change (a shared device), the
    /// oldest change's user first.
    pub pending_by_user: Vec<UserOutbox>,
    /// Changes exported and discarded so far (kept in the discard trail).
    pub discarded: u64,
}

/// One user's changes in the outbox: a user other than the signed-in one
/// has changes that go out only under that user's own login.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct UserOutbox {
    /// The user (none: an unknown user's, sent under any login).
    pub user: Option<String>,
    /// The user's visitor, if known.
    pub visitor_id: Option<i64>,
    /// Changes waiting to be pushed.
    pub pending: u64,
    /// Changes parked in the dead-letter queue.
    pub parked: u64,
}

impl From<rowsync::UserPending> for UserOutbox {
    fn from(u: rowsync::UserPending) -> Self {
        UserOutbox {
            user: u.user,
            visitor_id: u.visitor_id,
            pending: u.pending,
            parked: u.parked,
        }
    }
}

impl From<rowsync::Status> for EngineStatus {
    fn from(s: rowsync::Status) -> Self {
        EngineStatus {
            dialect: s.dialect.into(),
            session: s.session.map(Into::into),
            connection: (&s.connection).into(),
            syncing: s.syncing,
            counts: s.counts.into(),
            checkpoints: s
                .checkpoints
                .into_iter()
                .map(|(collection, row_version)| Checkpoint {
                    collection,
                    row_version,
                })
                .collect(),
            last_sync: s.last_sync,
            last_error: s.last_error,
            uploads: s.uploads.into_iter().map(Into::into).collect(),
            clock_skew_seconds: s.clock_skew_seconds,
            clock_skew_warning: s.clock_skew_warning,
            pending_by_user: s.pending_by_user.into_iter().map(Into::into).collect(),
            discarded: s.discarded,
        }
    }
}

/// What a queued task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum TaskType {
    /// A file for a record (`/Sync/Upload`).
    Upload,
    /// `SolveOrderDispute`.
    OrderDispute,
    /// `SolveDispute`.
    Dispute,
}

/// Where a queued task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum TaskStatus {
    /// An upload whose record has no server id yet: it goes after the
    /// record's own save.
    WaitingForRecord,
    /// Goes at the next sync.
    Queued,
    /// Sent, and the answer never came: a dispute to the real server is
    /// parked at the next sync rather than sent twice; anything else is
    /// sent again, safely.
    InDoubt,
    /// Parked in the dead-letter queue.
    Parked {
        /// The dead letter.
        dead_letter: i64,
    },
}

/// A queued upload or dispute.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TaskEntry {
    /// The task's id in the queue.
    pub id: i64,
    /// What it is.
    pub kind: TaskType,
    /// The client-generated request id.
    pub request_id: String,
    /// The record's (upload) or records' (dispute) collection.
    pub collection: Option<String>,
    /// The upload's record, by the id it has now.
    pub record: Option<RecordKey>,
    /// The upload's file name.
    pub file_name: Option<String>,
    /// The upload's size in bytes.
    pub size: u64,
    /// Orders or records a dispute names.
    pub items: u64,
    /// Where it stands.
    pub status: TaskStatus,
    /// Times it was sent.
    pub attempts: u32,
    /// The last failure, if any.
    pub last_error: Option<String>,
    /// When it was queued (RFC 3339).
    pub queued_at: String,
}

impl From<rowsync::TaskInfo> for TaskEntry {
    fn from(t: rowsync::TaskInfo) -> Self {
        TaskEntry {
            id: t.id,
            kind: match t.kind {
                rowsync::TaskKind::Upload => TaskType::Upload,
                rowsync::TaskKind::OrderDispute => TaskType::OrderDispute,
                rowsync::TaskKind::Dispute => TaskType::Dispute,
            },
            request_id: t.request_id,
            collection: t.collection,
            record: t.record.map(|r| match r {
                rowsync::RecordId::Server(id) => RecordKey::Server { id },
                rowsync::RecordId::Client(id) => RecordKey::Client { id },
            }),
            file_name: t.file_name,
            size: t.size,
            items: t.items,
            status: match t.state {
                rowsync::TaskState::WaitingForRecord => TaskStatus::WaitingForRecord,
                rowsync::TaskState::Queued => TaskStatus::Queued,
                rowsync::TaskState::InDoubt => TaskStatus::InDoubt,
                rowsync::TaskState::Parked { dead_letter } => TaskStatus::Parked { dead_letter },
            },
            attempts: t.attempts,
            last_error: t.last_error,
            queued_at: t.queued_at,
        }
    }
}

/// One order of a `SolveOrderDispute`.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct OrderDispute {
    /// The order's server id.
    pub order_id: i64,
    /// The resolution code (mahak dialect).
    #[uniffi(default = 0)]
    pub code: i64,
    /// `accept`, `reject` or `adjust` (documented dialect).
    #[uniffi(default = "")]
    pub resolution: String,
    /// Why (documented dialect).
    #[uniffi(default = "")]
    pub reason: String,
    /// The amount of an `adjust` (documented dialect).
    #[uniffi(default = 0.0)]
    pub amount: f64,
}

impl From<OrderDispute> for rowsync::OrderDisputeItem {
    fn from(d: OrderDispute) -> Self {
        rowsync::OrderDisputeItem {
            order_id: d.order_id,
            code: d.code,
            resolution: d.resolution,
            reason: d.reason,
            amount: d.amount,
        }
    }
}

/// One record of a `SolveDispute`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RecordDispute {
    /// The record's server id.
    pub id: i64,
    /// The row version held for it.
    pub row_version: i64,
    /// The resolution (documented dialect).
    #[uniffi(default = "")]
    pub resolution: String,
    /// Why (documented dialect).
    #[uniffi(default = "")]
    pub reason: String,
}

impl From<RecordDispute> for rowsync::RecordDisputeItem {
    fn from(d: RecordDispute) -> Self {
        rowsync::RecordDisputeItem {
            id: d.id,
            row_version: d.row_version,
            resolution: d.resolution,
            reason: d.reason,
        }
    }
}

/// What one sync did in one collection.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CollectionSummary {
    /// The collection.
    pub collection: String,
    /// Records received from the server.
    pub pulled: u64,
    /// Received records that changed local state.
    pub applied: u64,
    /// Of those, deletions.
    pub deleted: u64,
    /// Local changes the server confirmed.
    pub pushed: u64,
    /// Conflicts resolved.
    pub conflicts: u64,
    /// Changes parked as dead letters.
    pub parked: u64,
}

/// A server id given to a record created locally.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct IdMapping {
    /// The collection.
    pub collection: String,
    /// The record's client id.
    pub client_id: i64,
    /// The server id it received.
    pub server_id: i64,
}

/// What one sync cycle did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncSummary {
    /// When the sync started (RFC 3339).
    pub started_at: String,
    /// When it ended (RFC 3339).
    pub finished_at: String,
    /// Figures per collection (only collections with something to say).
    pub collections: Vec<CollectionSummary>,
    /// Pull requests made.
    pub pull_requests: u64,
    /// Save requests made.
    pub push_requests: u64,
    /// Records received in total.
    pub pulled: u64,
    /// Changes confirmed by the server.
    pub pushed: u64,
    /// Conflicts resolved.
    pub conflicts: u64,
    /// Changes parked in this sync.
    pub parked: u64,
    /// Changes still pending after the sync.
    pub pending: u64,
    /// Dead letters after the sync.
    pub dead_letters: u64,
    /// Server ids given to locally created records.
    pub id_mappings: Vec<IdMapping>,
    /// Uploads the server took.
    pub uploaded: u64,
    /// Disputes the server took.
    pub disputes_sent: u64,
    /// Uploads and disputes parked.
    pub tasks_parked: u64,
    /// The device's clock minus the server's at the last login, in seconds
    /// (positive: the device is ahead); null when the server did not say
    /// its time.
    pub clock_skew_seconds: Option<i64>,
    /// `clock_skew_seconds` is past `clock_skew_warning_seconds`: the
    /// dates this device writes are off by that much.
    pub clock_skew_warning: bool,
    /// The collections pulled because they were due, or chosen (with
    /// their link collections) for `sync_collections`.
    pub pulled_collections: Vec<String>,
    /// What the sync moved over the network, and its phases' times.
    pub metrics: crate::metrics::SyncMetricsSummary,
    /// What the picture cache did after the sync.
    pub pictures: PictureSummary,
}

impl CollectionSummary {
    /// The figures of `collection`.
    pub(crate) fn of(collection: String, c: rowsync::CollectionReport) -> Self {
        CollectionSummary {
            collection,
            pulled: c.pulled,
            applied: c.applied,
            deleted: c.deleted,
            pushed: c.pushed,
            conflicts: c.conflicts,
            parked: c.parked,
        }
    }
}

/// What one run of the picture cache did.
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct PictureSummary {
    /// Pictures wanted.
    pub wanted: u64,
    /// Pictures fetched in this run.
    pub fetched: u64,
    /// Fetches that failed (tried again at a later run).
    pub failed: u64,
    /// Files removed because their record went.
    pub removed: u64,
    /// Files evicted to stay under the cap.
    pub evicted: u64,
    /// Pictures in the cache after the run.
    pub cached: u64,
    /// Bytes of the cache's files after the run.
    pub bytes: u64,
    /// Bytes fetched in this run.
    pub bytes_fetched: u64,
}

impl From<rowsync::PictureReport> for PictureSummary {
    fn from(r: rowsync::PictureReport) -> Self {
        PictureSummary {
            wanted: r.wanted,
            fetched: r.fetched,
            failed: r.failed,
            removed: r.removed,
            evicted: r.evicted,
            cached: r.cached,
            bytes: r.bytes,
            bytes_fetched: r.bytes_fetched,
        }
    }
}

impl From<rowsync::SyncReport> for SyncSummary {
    fn from(r: rowsync::SyncReport) -> Self {
        let pulled = r.pulled();
        SyncSummary {
            started_at: r.started_at,
            finished_at: r.finished_at,
            collections: r
                .collections
                .into_iter()
                .map(|(collection, c)| CollectionSummary::of(collection, c))
                .collect(),
            pull_requests: r.pull_requests,
            push_requests: r.push_requests,
            pulled,
            pushed: r.pushed,
            conflicts: r.conflicts,
            parked: r.parked,
            pending: r.pending,
            dead_letters: r.dead_letters,
            id_mappings: r
                .id_mappings
                .into_iter()
                .map(|(collection, client_id, server_id)| IdMapping {
                    collection,
                    client_id,
                    server_id,
                })
                .collect(),
            pictures: r.pictures.into(),
            uploaded: r.uploaded,
            disputes_sent: r.disputes_sent,
            tasks_parked: r.tasks_parked,
            clock_skew_seconds: r.clock_skew_seconds,
            clock_skew_warning: r.clock_skew_warning,
            pulled_collections: r.pulled_collections,
            metrics: r.metrics.into(),
        }
    }
}

/// The kind of a local change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ChangeKind {
    /// A new record.
    Create,
    /// Changed fields.
    Update,
    /// A deletion.
    Delete,
}

/// One change kept in a dead letter.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ParkedChange {
    /// The collection.
    pub collection: String,
    /// Server id, if the record has one.
    pub server_id: Option<i64>,
    /// Client id, if any.
    pub client_id: Option<i64>,
    /// The kind of change.
    pub kind: ChangeKind,
    /// The record as it is locally, as JSON.
    pub record_json: String,
}

/// Changes the server refused, parked until the app retries or discards them.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DeadLetterEntry {
    /// Dead-letter id (for `retry_dead_letter` / `discard_dead_letter`).
    pub id: i64,
    /// The server's error code.
    pub code: i64,
    /// The server's message.
    pub reason: String,
    /// The collection the server named, if any.
    pub entity: Option<String>,
    /// The field the server named, if any.
    pub field: Option<String>,
    /// The server's tracking id.
    pub tracking_id: Option<String>,
    /// When the changes were parked (RFC 3339).
    pub parked_at: String,
    /// The changes.
    pub changes: Vec<ParkedChange>,
    /// The upload or dispute parked instead, if any.
    pub tasks: Vec<TaskEntry>,
}

impl From<rowsync::DeadLetter> for DeadLetterEntry {
    fn from(d: rowsync::DeadLetter) -> Self {
        DeadLetterEntry {
            id: d.id,
            code: d.code,
            reason: d.message,
            entity: d.entity,
            field: d.field,
            tracking_id: d.tracking_id,
            parked_at: d.parked_at,
            changes: d
                .changes
                .into_iter()
                .map(|c| ParkedChange {
                    collection: c.collection,
                    server_id: c.server_id,
                    client_id: c.client_id,
                    kind: match c.op {
                        rowsync::Op::Create => ChangeKind::Create,
                        rowsync::Op::Update => ChangeKind::Update,
                        rowsync::Op::Delete => ChangeKind::Delete,
                    },
                    record_json: c.record.to_string(),
                })
                .collect(),
            tasks: d.tasks.into_iter().map(Into::into).collect(),
        }
    }
}

/// A resolved conflict, as logged.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ConflictRecord {
    /// Entry id.
    pub id: i64,
    /// The collection.
    pub collection: String,
    /// Server id of the record.
    pub server_id: Option<i64>,
    /// Client id of the record.
    pub client_id: Option<i64>,
    /// The last server version seen before the local edit, as JSON.
    pub base_json: Option<String>,
    /// The local version that lost something, as JSON.
    pub local_json: Option<String>,
    /// The server version, as JSON.
    pub server_json: Option<String>,
    /// Fields whose local value was discarded or overridden.
    pub fields: Vec<String>,
    /// How it was resolved (`server_wins`, `field_merge`, ...).
    pub resolution: String,
    /// When (RFC 3339).
    pub at: String,
}

impl From<rowsync::ConflictEntry> for ConflictRecord {
    fn from(c: rowsync::ConflictEntry) -> Self {
        ConflictRecord {
            id: c.id,
            collection: c.collection,
            server_id: c.server_id,
            client_id: c.client_id,
            base_json: c.base.map(|v| v.to_string()),
            local_json: c.local.map(|v| v.to_string()),
            server_json: c.server.map(|v| v.to_string()),
            fields: c.fields,
            resolution: c.resolution,
            at: c.at,
        }
    }
}

/// One HTTP attempt, as kept in the sync log.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncLogRecord {
    /// Row id.
    pub id: i64,
    /// When the attempt started (RFC 3339).
    pub at: String,
    /// Endpoint name, e.g. `GetAllData`.
    pub endpoint: String,
    /// HTTP status, if a response came.
    pub status: Option<u16>,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// The response's tracking id.
    pub tracking_id: Option<String>,
    /// What went wrong, if anything.
    pub error: Option<String>,
}

impl From<rowsync::SyncLogEntry> for SyncLogRecord {
    fn from(e: rowsync::SyncLogEntry) -> Self {
        SyncLogRecord {
            id: e.id,
            at: e.at,
            endpoint: e.endpoint,
            status: e.status,
            duration_ms: e.duration_ms,
            tracking_id: e.tracking_id,
            error: e.error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every setting of the core but the login ones crosses the boundary
    /// both ways unchanged: a field added to the core and not here fails.
    #[test]
    fn settings_cross_both_ways() {
        let core = rowsync::Settings {
            dialect: rowsync::Dialect::Documented,
            base_url: "http://h/API/v3".into(),
            username: "kept".into(),
            database_id: 7,
            package_number: 8,
            page_size: 11,
            batch_size: 12,
            max_per_collection: 13,
            collections: vec!["people".into()],
            max_attempts: 14,
            base_delay_ms: 15,
            max_delay_ms: 16,
            connect_timeout_ms: 17,
            timeout_ms: 18,
            login_endpoint: "L".into(),
            pull_endpoint: "P".into(),
            save_endpoint: "S".into(),
            order_dispute_endpoint: "OD".into(),
            dispute_endpoint: "D".into(),
            upload_endpoint: "U".into(),
            already_registered: vec!["dup".into()],
            app_id: "app".into(),
            max_pull_pages: 19,
            sync_deadline_ms: 20,
            retry_budget: 21,
            read_timeout_ms: 22,
            pull_intervals: [("banks".to_string(), 60)].into_iter().collect(),
            max_upload_bytes: 23,
            gzip: false,
            pipelined_pull: false,
            order_types: vec![201, 202],
            password_hash: rowsync::PasswordHash::Plain,
            clock_skew_warning_seconds: 24,
            pictures: false,
            picture_dir: "/pics".into(),
            picture_ids: vec![4, 5],
            picture_cache_bytes: 24,
            verify_picture_hash: false,
        };
        let ffi = EngineSettings::from(core.clone());
        assert_eq!(ffi.password_hash, "plain");
        assert_eq!(ffi.dialect, Dialect::Documented);
        assert_eq!(ffi.apply_to(rowsync::Settings::default()).username, "");
        let back = ffi.apply_to(rowsync::Settings {
            username: "kept".into(),
            database_id: 7,
            package_number: 8,
            ..rowsync::Settings::default()
        });
        assert_eq!(back, core);
    }

    #[test]
    fn default_settings_are_the_cores_in_the_mahak_dialect() {
        let s = default_settings("http://h/API/v3".into());
        assert_eq!(s.dialect, Dialect::Mahak);
        let core = rowsync::Settings::default();
        assert_eq!(
            s.apply_to(core.clone()),
            rowsync::Settings {
                base_url: "http://h/API/v3".into(),
                ..core
            }
        );
    }
}
