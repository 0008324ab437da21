//! The sync report: what one sync cycle did, per collection and in total,
//! with what it moved over the network and how long its phases took
//! ([`SyncMetrics`], counted by a [`Meter`] as the calls go); and the running
//! totals the replica keeps of them ([`Metrics`]). Figures only: no record
//! content, no token, no URL.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::calls::{CallRecord, RetryCause};

/// Per-collection figures of a sync.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct CollectionReport {
    /// Records received from the server.
    pub pulled: u64,
    /// Received records that changed local state.
    pub applied: u64,
    /// Of those, tombstones.
    pub deleted: u64,
    /// Local changes the server confirmed.
    pub pushed: u64,
    /// Conflicts resolved (and logged).
    pub conflicts: u64,
    /// Changes parked in the dead-letter queue.
    pub parked: u64,
}

/// What one sync cycle did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SyncReport {
    /// When the sync started (RFC 3339).
    pub started_at: String,
    /// When it ended (RFC 3339).
    pub finished_at: String,
    /// Figures per collection (only collections with something to say).
    pub collections: BTreeMap<String, CollectionReport>,
    /// The collections this sync pulled because they were due (all wanted
    /// ones for `sync_all`); empty when none was.
    pub pulled_collections: Vec<String>,
    /// Pull requests made.
    pub pull_requests: u64,
    /// Save requests made.
    pub push_requests: u64,
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
    /// Uploads the server took in this sync.
    pub uploaded: u64,
    /// Disputes the server took in this sync.
    pub disputes_sent: u64,
    /// Uploads and disputes parked in this sync.
    pub tasks_parked: u64,
    /// Server ids mapped onto local records: (collection, client id, server id).
    pub id_mappings: Vec<(String, i64, i64)>,
    /// The device's clock minus the server's, in seconds (positive: the
    /// device is ahead), as the last login measured it against the login
    /// answer's `ServerTime`; `None` when the server did not say its time
    /// (or no login was made).
    pub clock_skew_seconds: Option<i64>,
    /// `clock_skew_seconds` is further from zero than
    /// `Settings::clock_skew_warning_seconds`: the dates this device writes
    /// are off by that much. Nothing was refused or changed because of it.
    pub clock_skew_warning: bool,
    /// The connection state when the sync ended.
    pub connection: Option<crate::status::ConnectionState>,
    /// The error that ended the sync early, if any.
    pub error: Option<String>,
    /// What the sync moved over the network, and its phases' times.
    pub metrics: SyncMetrics,
    /// What the picture cache did after the sync (nothing when it is off).
    pub pictures: PictureReport,
}

/// What one run of the picture cache did (after a sync, or
/// `Engine::sync_pictures`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct PictureReport {
    /// Pictures wanted (live records of `pictures`, filtered).
    pub wanted: u64,
    /// Pictures fetched (or written from inline data) in this run.
    pub fetched: u64,
    /// Fetches that failed in this run (kept for a later one).
    pub failed: u64,
    /// Files removed because their record was deleted or is no longer
    /// wanted.
    pub removed: u64,
    /// Files evicted to keep the cache under its cap.
    pub evicted: u64,
    /// Pictures in the cache after the run.
    pub cached: u64,
    /// Bytes of the cache's files after the run.
    pub bytes: u64,
    /// Bytes fetched in this run.
    pub bytes_fetched: u64,
}

impl SyncReport {
    /// The figures of `name`, created on first use.
    pub fn collection(&mut self, name: &str) -> &mut CollectionReport {
        self.collections.entry(name.to_string()).or_default()
    }

    /// Records received in total.
    pub fn pulled(&self) -> u64 {
        self.collections.values().map(|c| c.pulled).sum()
    }

    /// Records applied in total.
    pub fn applied(&self) -> u64 {
        self.collections.values().map(|c| c.applied).sum()
    }
}

/// What a sync moved over the network, and how long its phases took.
/// Bytes are bodies' bytes (headers aside).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SyncMetrics {
    /// HTTP requests made: every attempt, logins and retries included.
    pub requests: u64,
    /// Of those, login requests.
    pub login_requests: u64,
    /// Request bodies' bytes, as handed to the transport.
    pub bytes_sent: u64,
    /// Request bodies' bytes on the wire (requests go uncompressed: equal
    /// to `bytes_sent`).
    pub wire_bytes_sent: u64,
    /// Answers' bytes, decoded.
    pub bytes_received: u64,
    /// Answers' bytes as they came on the wire: compressed when the
    /// transport decoded gzip; an app's transport reports what it hands
    /// over (then equal to `bytes_received`).
    pub wire_bytes_received: u64,
    /// Attempts that were followed by another, by cause.
    pub retries: Retries,
    /// Time per phase.
    pub phases: Phases,
}

/// Retries by cause: each counts an attempt that failed and was made again.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Retries {
    /// No complete answer: the connection failed or broke.
    pub transport: u64,
    /// The answer stopped coming (a read timeout).
    pub stall: u64,
    /// A 5xx answer that may pass (500, 502, 503, 504).
    pub server_error: u64,
    /// A 429 answer, its `Retry-After` honoured.
    pub rate_limited: u64,
    /// An answer cut short mid-body.
    pub cut_short: u64,
    /// The token was refused: a new login, then the call again.
    pub token_refresh: u64,
}

impl Retries {
    /// Retries of every cause.
    pub fn total(&self) -> u64 {
        self.transport
            + self.stall
            + self.server_error
            + self.rate_limited
            + self.cut_short
            + self.token_refresh
    }

    fn add(&mut self, o: &Retries) {
        self.transport += o.transport;
        self.stall += o.stall;
        self.server_error += o.server_error;
        self.rate_limited += o.rate_limited;
        self.cut_short += o.cut_short;
        self.token_refresh += o.token_refresh;
    }
}

/// Time per phase of a sync, in milliseconds. `login` is the time of the
/// login requests, inside whichever phase needed the token; `apply` is the
/// time spent writing pulled pages, inside `pull` (the next page is fetched
/// while one is applied); `pull` counts every pull of the sync, the ones a
/// push asks for (reconciling, refetching) too, and `push` does not.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Phases {
    /// Logging in.
    pub login_ms: u64,
    /// Pulling (fetching and applying pages).
    pub pull_ms: u64,
    /// Applying pulled pages.
    pub apply_ms: u64,
    /// Pushing the outbox, the pulls it asked for aside.
    pub push_ms: u64,
    /// Sending the task queue (uploads, disputes).
    pub tasks_ms: u64,
}

impl Phases {
    fn add(&mut self, o: &Phases) {
        self.login_ms += o.login_ms;
        self.pull_ms += o.pull_ms;
        self.apply_ms += o.apply_ms;
        self.push_ms += o.push_ms;
        self.tasks_ms += o.tasks_ms;
    }
}

impl SyncMetrics {
    /// Adds `o`'s figures to these.
    pub fn add(&mut self, o: &SyncMetrics) {
        self.requests += o.requests;
        self.login_requests += o.login_requests;
        self.bytes_sent += o.bytes_sent;
        self.wire_bytes_sent += o.wire_bytes_sent;
        self.bytes_received += o.bytes_received;
        self.wire_bytes_received += o.wire_bytes_received;
        self.retries.add(&o.retries);
        self.phases.add(&o.phases);
    }
}

/// Milliseconds of `d`, saturated.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Counts a sync's calls as they are logged, from any of its threads:
/// relaxed atomic additions, nothing else.
#[derive(Debug, Default)]
pub(crate) struct Meter {
    requests: AtomicU64,
    login_requests: AtomicU64,
    login_ms: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    wire_bytes_received: AtomicU64,
    /// By [`RetryCause`], in its order.
    retries: [AtomicU64; 6],
}

impl Meter {
    /// Counts one attempt (`login` when it was a login request).
    pub(crate) fn count(&self, c: &CallRecord, login: bool) {
        let add = |a: &AtomicU64, n: u64| {
            a.fetch_add(n, Ordering::Relaxed);
        };
        add(&self.requests, 1);
        if login {
            add(&self.login_requests, 1);
            add(&self.login_ms, c.duration_ms);
        }
        add(&self.bytes_sent, c.sent_bytes);
        add(&self.bytes_received, c.received_bytes);
        add(&self.wire_bytes_received, c.wire_received_bytes);
        if let Some(cause) = c.retry {
            add(&self.retries[cause_index(cause)], 1);
        }
    }

    /// Adds what was counted to `m`.
    pub(crate) fn add_to(&self, m: &mut SyncMetrics) {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let retry = |cause| get(&self.retries[cause_index(cause)]);
        m.add(&SyncMetrics {
            requests: get(&self.requests),
            login_requests: get(&self.login_requests),
            bytes_sent: get(&self.bytes_sent),
            wire_bytes_sent: get(&self.bytes_sent),
            bytes_received: get(&self.bytes_received),
            wire_bytes_received: get(&self.wire_bytes_received),
            retries: Retries {
                transport: retry(RetryCause::Transport),
                stall: retry(RetryCause::Stall),
                server_error: retry(RetryCause::ServerError),
                rate_limited: retry(RetryCause::RateLimited),
                cut_short: retry(RetryCause::CutShort),
                token_refresh: retry(RetryCause::TokenRefresh),
            },
            phases: Phases {
                login_ms: get(&self.login_ms),
                ..Phases::default()
            },
        });
    }
}

fn cause_index(cause: RetryCause) -> usize {
    match cause {
        RetryCause::Transport => 0,
        RetryCause::Stall => 1,
        RetryCause::ServerError => 2,
        RetryCause::RateLimited => 3,
        RetryCause::CutShort => 4,
        RetryCause::TokenRefresh => 5,
    }
}

/// The running totals of every sync the replica ran, kept in it (see
/// [`Engine::metrics`](crate::Engine::metrics)).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Metrics {
    /// Syncs counted.
    pub syncs: u64,
    /// Of those, syncs that ended with an error.
    pub failed_syncs: u64,
    /// When the first counted sync started (RFC 3339); empty before.
    pub since: String,
    /// When the last counted sync ended (RFC 3339); empty before.
    pub last_sync_at: String,
    /// The network figures and phase times, summed.
    pub totals: SyncMetrics,
    /// Records pulled, applied, pushed ..., summed per collection.
    pub collections: BTreeMap<String, CollectionReport>,
}

impl Metrics {
    /// Adds one sync's report.
    pub fn add(&mut self, report: &SyncReport) {
        self.syncs += 1;
        if report.error.is_some() {
            self.failed_syncs += 1;
        }
        if self.since.is_empty() {
            self.since.clone_from(&report.started_at);
        }
        self.last_sync_at.clone_from(&report.finished_at);
        self.totals.add(&report.metrics);
        for (name, c) in &report.collections {
            let t = self.collections.entry(name.clone()).or_default();
            t.pulled += c.pulled;
            t.applied += c.applied;
            t.deleted += c.deleted;
            t.pushed += c.pushed;
            t.conflicts += c.conflicts;
            t.parked += c.parked;
        }
    }

    /// Records pulled in total.
    pub fn pulled(&self) -> u64 {
        self.collections.values().map(|c| c.pulled).sum()
    }

    /// Records pushed in total.
    pub fn pushed(&self) -> u64 {
        self.collections.values().map(|c| c.pushed).sum()
    }
}
