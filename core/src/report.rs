//! The sync report: what one sync cycle did, per collection and in total.

use std::collections::BTreeMap;

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
    /// The connection state when the sync ended.
    pub connection: Option<crate::status::ConnectionState>,
    /// The error that ended the sync early, if any.
    pub error: Option<String>,
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
