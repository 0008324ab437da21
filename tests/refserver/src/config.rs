//! Server configuration: who may log in, which limits apply, where the data
//! lives, and which flags make the server behave like the less polite real
//! servers the engine must tolerate (bare login answers, no error list).
//! Everything has a default suited to tests; the binary fills it from argv.

use std::path::PathBuf;
use std::time::Duration;

use crate::faults::FaultConfig;

/// Mahak: what a pull answer's `Data` holds in place of `Objects` (hostile
/// answers, issue 23).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullObjects {
    /// `Data.Objects` with the collections, as the real server answers.
    #[default]
    Normal,
    /// `Data: null`.
    NullData,
    /// `Data.Objects: null`.
    NullObjects,
    /// `Data` without `Objects`.
    Missing,
}

impl std::str::FromStr for PullObjects {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "normal" => Ok(PullObjects::Normal),
            "null-data" => Ok(PullObjects::NullData),
            "null-objects" => Ok(PullObjects::NullObjects),
            "missing" => Ok(PullObjects::Missing),
            other => Err(format!(
                "unknown pull answer `{other}`: normal, null-data, null-objects or missing"
            )),
        }
    }
}

/// Which dialect of the Mahak Sync API the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// What the production server speaks (`docs/WIRE.md`): the default.
    #[default]
    Mahak,
    /// The API as the seed document describes it (`docs/PROTOCOL.md`).
    Documented,
}

impl std::str::FromStr for Dialect {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mahak" => Ok(Dialect::Mahak),
            "documented" => Ok(Dialect::Documented),
            other => Err(format!("unknown dialect `{other}`: mahak or documented")),
        }
    }
}

/// Configuration of a [`crate::RefServer`].
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The dialect spoken (mahak by default). Both share the store, the
    /// faults and the admin API.
    pub dialect: Dialect,
    /// Mahak: the pull's lower bound is exclusive (`>`), not inclusive (`>=`,
    /// what the evidence suggests).
    pub exclusive_lower_bound: bool,
    /// Mahak: `pageSize` caps the whole answer, not each collection.
    pub page_cap_total: bool,
    /// Mahak: a cap of the server's own on each answer, below `pageSize`.
    pub server_page_cap: Option<usize>,
    /// Mahak: `pageSize` is ignored (everything comes in one answer).
    pub ignore_page_size: bool,
    /// Mahak: records come unordered within a collection.
    pub unordered: bool,
    /// Mahak: a resent create (a client id already registered) is a silent
    /// update instead of the real server's per-record error.
    pub resend_updates: bool,
    /// Mahak: a date with an offset (`Z`, `+03:30`) in a saved record is
    /// refused per record (whether the real server takes one is not
    /// known); offset-free dates are taken.
    pub refuse_offset_dates: bool,
    /// Mahak: the `VisitorId` a login answers (until the admin changes it),
    /// and the visitor seeded links are for.
    pub visitor_id: i64,
    /// Mahak: the `SyncId` a login answers.
    pub sync_id: i64,
    /// Mahak: the `UserTitle` a login answers.
    pub user_title: String,
    /// Accepted `(username, password)` pairs.
    pub users: Vec<(String, String)>,
    /// Mahak: the `VisitorId` a login of this user answers (users not
    /// named get `visitor_id`): a shared device's users are each a
    /// visitor of their own, and what a user saves is booked under it.
    pub user_visitors: Vec<(String, i64)>,
    /// The `databaseId` a login must carry (else 401 / 1001; mahak:
    /// `Result:false`). Mahak: also the `DatabaseId` a login answers until
    /// the admin changes it ([`crate::Admin::set_session_ids`]).
    pub database_id: i64,
    /// The `packageNumber` (mahak: `packageNo`, a string) a login must carry
    /// (else 401 / 1001; mahak: `Result:false`).
    pub package_number: i64,
    /// Lifetime of an issued token.
    pub token_ttl: Duration,
    /// HS256 secret used to sign tokens.
    pub jwt_secret: String,
    /// Largest accepted `pageSize` of `GetAllDataV2` (default 5000).
    pub max_page_size: usize,
    /// Largest accepted request body in bytes (default 10 MiB).
    pub max_body_bytes: usize,
    /// Most records accepted per collection in one save (default 1000).
    pub max_records_per_save: usize,
    /// Requests per second allowed per token; `None` = no rate limit.
    pub rate_limit_per_sec: Option<u32>,
    /// When rate limiting, send `Retry-After` as an HTTP-date instead of
    /// delta-seconds.
    pub retry_after_http_date: bool,
    /// Serve the `/admin/...` HTTP endpoints.
    pub admin: bool,
    /// `LoginV2` answers a bare `{token, expireDate}` without the envelope.
    pub bare_login: bool,
    /// Failed saves carry no `errors` list (clients must bisect).
    pub omit_error_list: bool,
    /// SQLite file; `None` keeps the data in memory.
    pub data: Option<PathBuf>,
    /// Seed of every random choice (faults, generated records, tracking ids),
    /// so a failing run can be replayed.
    pub seed: u64,
    /// Log every request to stderr.
    pub verbose: bool,
    /// Probabilistic fault injection, active from the start.
    pub faults: FaultConfig,
    /// How many request log entries are kept in memory.
    pub log_capacity: usize,
    /// Mahak: disputes and uploads are answered with an empty 200 body
    /// instead of `{"Result": true}` (the real answer was never captured).
    pub bare_task_answers: bool,
    /// Mahak: disputes and uploads are answered with a 200 `OK` in plain
    /// text (another shape the real answer may have).
    pub plain_task_answers: bool,
    /// Mahak: the records of these collections are answered without their
    /// `RowVersion` (the Swagger's `OrderModel` has none); the server still
    /// filters by it.
    pub versionless: Vec<String>,
    /// Refuse every dispute and upload with this message (a business
    /// failure), on command.
    pub refuse_tasks: Option<String>,
    /// Largest file an upload may carry (default 12 MiB).
    pub max_upload_bytes: usize,
    /// Compress answers of 1 KiB and more with gzip for a client that
    /// accepts it (over HTTP; on by default).
    pub gzip: bool,
    /// Endpoints served under another name, as `(served, endpoint)` pairs
    /// (`("UploadPicture", "Upload")`): such an endpoint answers under its
    /// new name only, as behind a gateway that routes it elsewhere.
    pub renamed: Vec<(String, String)>,
    /// Mahak: every result of a save answer carries `Index: 1` and no
    /// `EntityClientId` (a hostile answer: the records are saved, but the
    /// results cannot be matched to them one to one).
    pub repeat_save_index: bool,
    /// Mahak: a save is applied, then answered `{"Result": false,
    /// "Message": ...}` with no per-record result (a hostile answer).
    pub refuse_saves_after_apply: bool,
    /// Mahak: every pull answer sends its headers and half of its body,
    /// then nothing, until the client gives up.
    pub stall_pulls: bool,
    /// Mahak: what a pull answer's `Data` holds (`Objects` by default).
    pub pull_objects: PullObjects,
    /// Mahak: every pulled record carries one of its ordinary fields twice.
    pub duplicate_pulled_keys: bool,
    /// Mahak: a login carries the password as the user typed it, not its
    /// MD5 (some real servers); the MD5 is then refused.
    pub plain_passwords: bool,
    /// Mahak: the login answer's `ServerTime` is this many seconds away
    /// from the real time (positive: the server's clock is ahead), as a
    /// device whose clock is off would see it.
    pub clock_offset_seconds: i64,
    /// Mahak: the login answer carries no `ServerTime` (as an integration
    /// whose answers lack it).
    pub omit_server_time: bool,
    /// Mahak: an upload's answer carries no `AdditionalData` (the file's
    /// URL and hash); the picture record still gets them.
    pub upload_without_additional_data: bool,
    /// The files of these pictures are answered after
    /// [`ServerConfig::slow_picture_delay`] (a slow file).
    pub slow_pictures: Vec<i64>,
    /// How long a slow picture's file waits (2 s by default).
    pub slow_picture_delay: Duration,
    /// The files of these pictures are missing: 404.
    pub missing_pictures: Vec<i64>,
    /// The files of these pictures are cut mid-way: their full
    /// `Content-Length`, half of their bytes, then the connection closes.
    pub cut_pictures: Vec<i64>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            dialect: Dialect::default(),
            exclusive_lower_bound: false,
            page_cap_total: false,
            server_page_cap: None,
            ignore_page_size: false,
            unordered: false,
            resend_updates: false,
            refuse_offset_dates: false,
            visitor_id: 31,
            sync_id: 241_538_754,
            user_title: "فروشگاه مرکزی ".to_string(),
            users: vec![("user1".to_string(), "pass1".to_string())],
            user_visitors: Vec::new(),
            database_id: 1001,
            package_number: 2002,
            token_ttl: Duration::from_secs(3600),
            jwt_secret: "rowsync-refserver-secret".to_string(),
            max_page_size: 5000,
            max_body_bytes: 10 * 1024 * 1024,
            max_records_per_save: 1000,
            rate_limit_per_sec: None,
            retry_after_http_date: false,
            admin: false,
            bare_login: false,
            omit_error_list: false,
            data: None,
            seed: 42,
            verbose: false,
            faults: FaultConfig::default(),
            log_capacity: 1000,
            bare_task_answers: false,
            plain_task_answers: false,
            versionless: Vec::new(),
            refuse_tasks: None,
            max_upload_bytes: 12 * 1024 * 1024,
            gzip: true,
            renamed: Vec::new(),
            repeat_save_index: false,
            refuse_saves_after_apply: false,
            stall_pulls: false,
            pull_objects: PullObjects::Normal,
            duplicate_pulled_keys: false,
            plain_passwords: false,
            clock_offset_seconds: 0,
            omit_server_time: false,
            upload_without_additional_data: false,
            slow_pictures: Vec::new(),
            slow_picture_delay: Duration::from_secs(2),
            missing_pictures: Vec::new(),
            cut_pictures: Vec::new(),
        }
    }
}

impl ServerConfig {
    /// The login a client needs for this server: its first user, database id
    /// and package number (the defaults give user1/pass1, 1001, 2002).
    pub fn credentials(&self) -> rowsync::Credentials {
        let (username, password) = self.users.first().cloned().unwrap_or_default();
        rowsync::Credentials {
            username,
            password,
            database_id: self.database_id,
            package_number: self.package_number,
        }
    }
}
