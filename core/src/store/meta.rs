//! Stored values beside the data: the settings, the last report, the
//! running metrics, the login session, the pull schedule and what was
//! learned of the server. Every key is named here.

use rusqlite::{params, Connection, OptionalExtension};

use super::db::Tx;
use crate::error::Result;
use crate::report::{Metrics, SyncReport};

/// The settings (JSON; never the password).
pub(crate) const SETTINGS: &str = "settings";
/// The last sync's report (JSON).
pub(crate) const LAST_REPORT: &str = "last_report";
/// The running totals of every sync ([`Metrics`], JSON). A key, not a
/// table: a replica from before it simply has none yet (all zero), and
/// a field added later reads as zero in an older value.
pub(crate) const METRICS: &str = "metrics";
/// The login session, as the server last described it (JSON).
pub(crate) const SESSION: &str = "session";
/// The user name the stored session was logged in as (the user of a
/// shared device's last login).
pub(crate) const SESSION_USER: &str = "session_user";
/// What was last exported of each user's pending changes (JSON: user name
/// to the changes' local ids and counters): a discard needs it.
pub(crate) const EXPORTED: &str = "exported_pending";
/// When each collection's last complete pull started (its schedule).
pub(crate) const PULLED_AT: &str = "pulled_at";
/// Set once the server was seen sending a record at exactly the version a
/// pull asked from (a `>=` lower bound): pulls then ask from the
/// checkpoint plus one. Forgotten with the replica's server (a wipe). The
/// name is the one older replicas hold.
pub(crate) const INCLUSIVE_BOUND: &str = "mahak_inclusive_bound";
/// The push-hint ids seen recently (duplicates are dropped).
pub(crate) const HINTS_SEEN: &str = "hints_seen";

/// A stored configuration value.
pub fn get(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT value FROM rs_meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

/// The running metrics (zero before the first sync; a value no longer
/// readable starts again from zero rather than stop the syncs).
pub fn metrics(conn: &Connection) -> Result<Metrics> {
    Ok(get(conn, METRICS)?
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default())
}

impl Tx<'_> {
    /// Adds a sync's report to the running metrics.
    pub fn add_metrics(&mut self, report: &SyncReport) -> Result<()> {
        let mut metrics = metrics(&self.tx)?;
        metrics.add(report);
        self.set_meta(METRICS, &serde_json::to_string(&metrics)?)
    }

    /// Sets a stored configuration value.
    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        self.forget_author(key);
        self.tx.execute(
            "INSERT INTO rs_meta(key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    /// Removes a stored configuration value.
    pub fn delete_meta(&mut self, key: &str) -> Result<()> {
        self.forget_author(key);
        self.tx
            .execute("DELETE FROM rs_meta WHERE key = ?1", [key])?;
        Ok(())
    }
}
