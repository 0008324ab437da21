//! What one sync works with, taken once when it starts: the database
//! handle, the API client, the codec of its dialect, and snapshots of the
//! settings, the catalogue and the conflict resolvers; the listeners and the
//! log to tell. It never holds the engine. Every step gets it; the calls it
//! makes are logged, counted (its [`Meter`]) and written to the sync log
//! here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::api::client::{ApiClient, CallKind, Outgoing, Reply};
use crate::api::dialect::{Codec, Endpoints, SaveRules, Session as Login};
use crate::calls::CallRecord;
use crate::catalogue::Catalogue;
use crate::conflict::ConflictResolver;
use crate::error::Result;
use crate::listeners::{Changes, Registry};
use crate::locks::lock;
use crate::log::{LogLevel, Logger};
use crate::report::Meter;
use crate::settings::Settings;
use crate::store::{meta, Db};

/// What a sync works with, taken once when it starts.
pub(crate) struct Context<'s> {
    /// The replica.
    pub(crate) db: &'s Db,
    /// The server.
    pub(crate) client: &'s ApiClient,
    /// The dialect's bytes and rules.
    pub(crate) codec: &'s dyn Codec,
    /// The settings, as they were when the sync started.
    pub(crate) settings: Settings,
    /// The endpoints to call (the dialect's, with the settings' overrides).
    pub(crate) endpoints: Endpoints,
    /// The catalogue, as it was when the sync started.
    pub(crate) catalogue: Catalogue,
    /// The app's conflict resolvers, by collection.
    pub(crate) resolvers: HashMap<String, Arc<dyn ConflictResolver>>,
    /// What a save answer's refusals mean (the settings' patterns).
    pub(crate) rules: SaveRules,
    /// The listeners, told of every applied step and of the connection
    /// state.
    pub(crate) events: &'s Registry,
    /// The app's log sink.
    pub(crate) logger: &'s Logger,
    /// The login session as last kept (shared with the engine's status).
    pub(crate) login: &'s Mutex<Option<Login>>,
    /// Counts the sync's calls (the report's metrics).
    pub(crate) meter: Meter,
}

impl Context<'_> {
    /// The client's clock (a virtual one in tests).
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.client.shutdown().now()
    }

    /// One call, its attempts logged and written to the sync log; the login
    /// session is kept when it changed.
    pub(crate) fn call(&self, endpoint: &str, out: &Outgoing<'_>, kind: CallKind) -> Result<Reply> {
        let mut calls: Vec<CallRecord> = Vec::new();
        let result = self.client.call_with(endpoint, out, kind, &mut |c| {
            self.log_call(&c);
            calls.push(c)
        });
        self.db.write(|tx| tx.append_sync_log(&calls))?;
        self.keep_login()?;
        result
    }

    /// Logs and counts one HTTP attempt.
    pub(crate) fn log_call(&self, c: &CallRecord) {
        self.meter.count(c, c.endpoint == self.endpoints.login);
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
    }

    /// Stores the login session and its user when they changed, for
    /// `status` and the next process (and the replica's identity check);
    /// the user's changes made before its login learn its visitor.
    pub(crate) fn keep_login(&self) -> Result<()> {
        let Some(session) = self.client.session() else {
            return Ok(());
        };
        let user = self.client.username();
        let mut kept = lock(self.login)?;
        if kept.as_ref() == Some(&session)
            && self
                .db
                .read(|c| meta::get(c, meta::SESSION_USER))?
                .as_deref()
                == Some(&user)
        {
            return Ok(());
        }
        self.db.write(|tx| {
            tx.set_meta(meta::SESSION, &serde_json::to_string(&session)?)?;
            tx.set_meta(meta::SESSION_USER, &user)?;
            tx.note_visitor(&user, session.visitor_id)
        })?;
        *kept = Some(session);
        Ok(())
    }

    /// Tells the listeners what changed.
    pub(crate) fn emit(&self, changes: Changes) {
        self.events.emit_changes(&changes.into_events());
    }
}
