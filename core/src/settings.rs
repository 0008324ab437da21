//! The settings an app configures: where the server is, which dialect it
//! speaks, how the engine batches, pages, retries and schedules. Stored in
//! the replica (never the password); a sync takes a snapshot of them.

use std::time::Duration;

use crate::api::client::RetryPolicy;
use crate::api::config::PasswordHash;
use crate::api::dialect::Endpoints;
use crate::catalogue::Dialect;

/// How the engine reaches the server and how it batches. Stored in the
/// database (never the password).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The dialect the server speaks: `mahak` (the real server, the
    /// default) or `documented`. Kept in the replica; switching it on a
    /// replica that holds data is refused (`DialectMismatch`) until it is
    /// wiped.
    pub dialect: Dialect,
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
    /// The login endpoint; empty for the dialect's own (`Login`, `LoginV2`).
    pub login_endpoint: String,
    /// The pull endpoint; empty for the dialect's own (`GetAllData`,
    /// `GetAllDataV2`).
    pub pull_endpoint: String,
    /// The save endpoint; empty for the dialect's own (`SaveAllData`,
    /// `SaveAllDataV2`).
    pub save_endpoint: String,
    /// The endpoint settling orders in dispute; empty for
    /// `SolveOrderDispute`.
    pub order_dispute_endpoint: String,
    /// The endpoint of record disputes and reconciliations; empty for
    /// `SolveDispute`.
    pub dispute_endpoint: String,
    /// The upload endpoint; empty for `Upload`.
    pub upload_endpoint: String,
    /// Texts (case-insensitive) of a per-record save error that means "this
    /// create is already registered" (mahak); empty for the built-in
    /// Persian and English ones.
    pub already_registered: Vec<String>,
    /// `appId` sent at login (mahak).
    pub app_id: String,
    /// Pull requests one sync may make before it stops with an error (a
    /// server that never stops sending new pages).
    pub max_pull_pages: u32,
    /// No sync runs longer than this, in milliseconds, whatever the server
    /// does: no retry is made or waited for past it.
    pub sync_deadline_ms: u64,
    /// Retries one sync may make in all, over every call (transport
    /// errors, 5xx, 429), besides each call's own `max_attempts`.
    pub retry_budget: u32,
    /// An answer that stalls (headers or body) is an error after this
    /// long, in milliseconds: much shorter than the whole-call timeout.
    pub read_timeout_ms: u64,
    /// How often each collection is pulled, in seconds (0: at every sync);
    /// a collection not named here gets its default by churn: six hours for
    /// reference data that rarely changes (banks, person groups, regions,
    /// ...), every sync for the rest. `sync_all` ignores it; the push never
    /// waits for it.
    pub pull_intervals: std::collections::BTreeMap<String, u64>,
    /// The largest file an upload may have, in bytes (10 MiB by default);
    /// a larger one is refused with `FileTooLarge` when queued.
    pub max_upload_bytes: u64,
    /// Ask for gzip answers and decode them as they arrive (on by
    /// default; a pull page shrinks several times over).
    pub gzip: bool,
    /// Fetch and parse the next pull page on another thread while this one
    /// is applied (on by default; off runs the pull step by step).
    pub pipelined_pull: bool,
    /// Mahak: the order types (`orderType`, such as 201 for a sale) whose
    /// orders are pulled (`orderTypes`); empty for every type. Widening the
    /// list pulls the orders again from the start, so those of the types
    /// added arrive too; orders already pulled stay when it narrows.
    pub order_types: Vec<i64>,
    /// Mahak: how the login sends the password, `md5` (most servers, the
    /// default) or `plain` (some servers). Neither form is ever stored.
    pub password_hash: PasswordHash,
    /// How far the device's clock may be from the server's (the login
    /// answer's `ServerTime`, mahak) before the sync report, the status and
    /// the connection state warn, in seconds (780, 13 minutes, by default,
    /// as the vendor's app; 0 never warns). Nothing is refused and no date
    /// is changed because of it: the app decides.
    pub clock_skew_warning_seconds: u64,
    /// Keep a picture cache: after each sync (and at
    /// `Engine::sync_pictures`) the pictures wanted are fetched into
    /// `picture_dir` (on by default). A picture never fails a sync.
    pub pictures: bool,
    /// The picture cache's directory, the engine's own (it removes the
    /// files it does not know there); empty for `<replica>.pictures/`
    /// beside the replica's file. An in-memory replica has no cache until
    /// a directory is set.
    pub picture_dir: String,
    /// The picture ids (`pictureId`) to keep; empty for every live record
    /// of `pictures` (when that collection is pulled).
    pub picture_ids: Vec<i64>,
    /// The most the cache's files may take, in bytes (256 MiB by default;
    /// 0: no cap). Past it the least recently used go (an `Engine::
    /// picture_path` is a use), and come back when asked for again.
    pub picture_cache_bytes: u64,
    /// Check a fetched picture against the hash its record gives when the
    /// hash has the form of an MD5 (32 hex digits) or a SHA-256 (64): a
    /// mismatch is a failed fetch, retried later. Which hash the real
    /// server gives is not known (WIRE.md section 7): a server whose
    /// hashes are of another kind needs this off (the hash then only says
    /// when to fetch again). On by default.
    pub verify_picture_hash: bool,
}

/// The default of [`Settings::picture_cache_bytes`]: 256 MiB.
pub const DEFAULT_PICTURE_CACHE_BYTES: u64 = 256 * 1024 * 1024;

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
            dialect: Dialect::default(),
            login_endpoint: String::new(),
            pull_endpoint: String::new(),
            save_endpoint: String::new(),
            order_dispute_endpoint: String::new(),
            dispute_endpoint: String::new(),
            upload_endpoint: String::new(),
            already_registered: Vec::new(),
            app_id: "rowsync".to_string(),
            max_pull_pages: 100_000,
            sync_deadline_ms: 15 * 60 * 1_000,
            retry_budget: 20,
            read_timeout_ms: 30_000,
            pull_intervals: std::collections::BTreeMap::new(),
            max_upload_bytes: crate::tasks::DEFAULT_MAX_UPLOAD_BYTES,
            gzip: true,
            pipelined_pull: true,
            order_types: Vec::new(),
            password_hash: PasswordHash::Md5,
            clock_skew_warning_seconds: crate::status::DEFAULT_CLOCK_SKEW_WARNING_SECONDS,
            pictures: true,
            picture_dir: String::new(),
            picture_ids: Vec::new(),
            picture_cache_bytes: DEFAULT_PICTURE_CACHE_BYTES,
            verify_picture_hash: true,
        }
    }
}

impl Settings {
    /// The endpoints to call: the dialect's, with any override.
    pub fn endpoints(&self) -> Endpoints {
        let mut e = self.dialect.endpoints();
        for (name, over) in [
            (&mut e.login, &self.login_endpoint),
            (&mut e.pull, &self.pull_endpoint),
            (&mut e.save, &self.save_endpoint),
            (&mut e.order_dispute, &self.order_dispute_endpoint),
            (&mut e.dispute, &self.dispute_endpoint),
            (&mut e.upload, &self.upload_endpoint),
        ] {
            if !over.trim().is_empty() {
                *name = over.trim().to_string();
            }
        }
        e
    }

    /// The retry policy of each call.
    pub(crate) fn retry(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts.max(1),
            base_delay: Duration::from_millis(self.base_delay_ms),
            max_delay: Duration::from_millis(self.max_delay_ms.max(self.base_delay_ms)),
            ..RetryPolicy::default()
        }
    }
}
