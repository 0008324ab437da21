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
