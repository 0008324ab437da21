//! Starting a sync: the API client the engine keeps (made again when the
//! settings, the credentials or the transport change), and one sync run
//! with a [`Context`] of what it needs, its report kept as the last one and
//! added to the running metrics, in one transaction. The sync itself is
//! `sync/`.

use std::sync::Arc;
use std::time::Duration;

use super::Engine;
use crate::api::client::{ApiClient, ClientConfig};
use crate::api::dialect::SaveRules;
use crate::error::{Error, Result};
use crate::http::{HttpConfig, UreqTransport};
use crate::locks::{lock, read};
use crate::log::LogLevel;
use crate::report::{Meter, Metrics, SyncReport};
use crate::settings::Settings;
use crate::status::{clock_skew_warns, ConnectionState};
use crate::store::{self, meta};
use crate::sync;
use crate::sync::context::Context;
use crate::sync::session::Scope;
use crate::transport::Transport;

impl Engine {
    /// The app's transport, else a ureq one with the settings' timeouts.
    pub(crate) fn transport_for(&self, settings: &Settings) -> Result<Arc<dyn Transport>> {
        Ok(match read(&self.transport)?.clone() {
            Some(t) => t,
            None => Arc::new(UreqTransport::new(HttpConfig {
                connect_timeout: Duration::from_millis(settings.connect_timeout_ms),
                timeout: Duration::from_millis(settings.timeout_ms),
                read_timeout: Duration::from_millis(
                    settings.read_timeout_ms.min(settings.timeout_ms),
                ),
                gzip: settings.gzip,
            })?),
        })
    }

    fn client(&self) -> Result<Arc<ApiClient>> {
        let mut slot = lock(&self.client)?;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let settings = self.settings()?;
        if settings.base_url.is_empty() {
            return Err(Error::Config("no server URL is configured".into()));
        }
        let credentials = lock(&self.credentials)?.clone().ok_or_else(|| {
            Error::Config("no credentials: call set_credentials or set_password first".into())
        })?;
        let credentials_user = credentials.username.clone();
        let transport = self.transport_for(&settings)?;
        let client = Arc::new(ApiClient::new(
            ClientConfig {
                base_url: settings.base_url.clone(),
                retry: settings.retry(),
                token_refresh_margin: Duration::from_secs(60),
                dialect: settings.dialect,
                login_endpoint: settings.endpoints().login,
                app_id: settings.app_id.clone(),
                password_hash: settings.password_hash,
                clock_skew_warning_seconds: settings.clock_skew_warning_seconds,
            },
            credentials,
            transport,
            self.shutdown.clone(),
        )?);
        // A replica filled from one database and visitor never mixes in
        // another's records: a login that names others is refused. Another
        // user of the same database (a shared device changing hands) has
        // a visitor of its own: only the database is checked then.
        let (holds_data, session_user) = self
            .db
            .read(|c| Ok((store::holds_data(c)?, meta::get(c, meta::SESSION_USER)?)))?;
        let same_user = session_user
            .as_deref()
            .is_none_or(|u| u == credentials_user.as_str());
        let expected = match holds_data {
            true => self
                .session()?
                .map(|s| (s.database_id, if same_user { s.visitor_id } else { 0 })),
            false => None,
        };
        client.expect_identity(expected);
        // A stall is shown while it lasts, inside the sync (invariant 17);
        // when the call gets an answer again the sync goes on.
        let registry = self.registry.clone();
        client.watch_connection(Arc::new(move |state: &ConnectionState| {
            let next = match (state, registry.state()) {
                (ConnectionState::ClockSkewed { .. }, _) => return registry.notice(state),
                (ConnectionState::Stalled { .. }, _) => state.clone(),
                (_, ConnectionState::Stalled { .. }) => ConnectionState::Syncing,
                _ => return,
            };
            registry.set_state(next);
        }));
        *slot = Some(client.clone());
        Ok(client)
    }

    /// What a sync works with: the database, the client, the codec, and
    /// snapshots of the settings, the catalogue and the resolvers.
    fn sync_context<'s>(
        &'s self,
        client: &'s ApiClient,
        settings: Settings,
    ) -> Result<Context<'s>> {
        let codec = settings.dialect.codec();
        Ok(Context {
            db: &self.db,
            client,
            codec,
            endpoints: settings.endpoints(),
            rules: SaveRules {
                already_registered: settings.already_registered.clone(),
            },
            settings,
            catalogue: read(&self.catalogue)?.clone(),
            resolvers: read(&self.resolvers)?.clone(),
            events: &self.registry,
            logger: &self.logger,
            login: &self.session,
            meter: Meter::default(),
        })
    }

    /// Runs one sync cycle: pull the wanted collections that are due (see
    /// `Settings::pull_intervals`; the report names them), then push the
    /// outbox, then fetch the pictures wanted (`Settings::pictures`; see
    /// [`Engine::sync_pictures`]). The report is also kept as the last
    /// report.
    pub fn sync(&self) -> Result<SyncReport> {
        self.sync_inner(Scope::Due)
    }

    /// [`Engine::sync`], pulling every wanted collection whatever its
    /// schedule.
    pub fn sync_all(&self) -> Result<SyncReport> {
        self.sync_inner(Scope::Everything)
    }

    /// Syncs now the `collections` chosen (a salesperson's stock check
    /// before a sale): pulls them with their link collections (see
    /// [`Catalogue::with_links`](crate::Catalogue::with_links); of those,
    /// only the wanted ones), whatever their schedule, and pushes nothing:
    /// the outbox and the task queue wait for the next full sync. Like
    /// [`Engine::sync`] it waits for a running sync to end and keeps to
    /// the sync deadline. `UnknownCollection` for a name not in the
    /// catalogue, `Config` for an empty list or a collection the settings
    /// do not want, before anything is done.
    pub fn sync_collections<S: AsRef<str>>(&self, collections: &[S]) -> Result<SyncReport> {
        if collections.is_empty() {
            return Err(Error::Config("no collection to sync was named".into()));
        }
        let linked = read(&self.catalogue)?.with_links(collections)?;
        let wanted = self.settings()?.collections;
        if let Some(c) = collections
            .iter()
            .map(AsRef::as_ref)
            .find(|c| !wanted.is_empty() && !wanted.iter().any(|w| w == c))
        {
            return Err(Error::Config(format!(
                "collection `{c}` is not among the wanted collections of the settings"
            )));
        }
        let chosen = linked
            .into_iter()
            .filter(|c| wanted.is_empty() || wanted.contains(c))
            .collect();
        self.sync_inner(Scope::Only(chosen))
    }

    /// The running totals of every sync this replica ran: requests, bytes,
    /// retries by cause, phase times, records per collection. Kept in the
    /// replica (they survive reopening it, and a wipe); figures only, no
    /// record content and no token.
    pub fn metrics(&self) -> Result<Metrics> {
        self.db.read(store::metrics)
    }

    fn sync_inner(&self, scope: Scope) -> Result<SyncReport> {
        let _one_at_a_time = lock(&self.sync_lock)?;
        let mut report = SyncReport {
            started_at: store::now(),
            ..SyncReport::default()
        };
        *lock(&self.syncing)? = true;
        self.logger
            .log(LogLevel::Info, "rowsync::sync", || "sync started".into());
        self.set_state(ConnectionState::Syncing)?;
        let started = self.shutdown.monotonic();
        let result = self.client().and_then(|client| {
            let settings = self.settings()?;
            client.begin_budget(
                Duration::from_millis(settings.sync_deadline_ms),
                settings.retry_budget,
            );
            let r = self
                .sync_context(&client, settings.clone())
                .and_then(|ctx| sync::session::Session::new(ctx, scope).run(&mut report));
            client.end_budget();
            // The pictures after a sync that went through; a picture never
            // fails the sync (invariant 13 still bounds it).
            if r.is_ok() {
                match self.fetch_pictures(&settings, started) {
                    Ok(pictures) => report.pictures = pictures,
                    Err(e) => self.logger.log(LogLevel::Warn, "rowsync::pictures", || {
                        format!("the picture cache did not run: {e}")
                    }),
                }
            }
            self.set_state(client.connection_state())?;
            report.clock_skew_seconds = client.clock_skew();
            report.clock_skew_warning = clock_skew_warns(
                report.clock_skew_seconds,
                settings.clock_skew_warning_seconds,
            );
            r
        });
        if let Err(e) = &result {
            report.error = Some(e.to_string());
            if matches!(e, Error::Config(_)) {
                self.set_state(ConnectionState::Unknown)?;
            }
        }
        *lock(&self.syncing)? = false;
        report.finished_at = store::now();
        report.connection = Some(self.registry.state());
        self.db.write(|tx| {
            let counts = store::counts(tx)?;
            report.pending = counts.pending;
            report.dead_letters = counts.dead_letters;
            tx.set_meta(meta::LAST_REPORT, &serde_json::to_string(&report)?)?;
            tx.add_metrics(&report)
        })?;
        match &result {
            Ok(()) => self.logger.log(LogLevel::Info, "rowsync::sync", || {
                format!(
                    "sync done: pulled {} (applied {}), pushed {}, conflicts {}, parked {}, pending {}, dead letters {}",
                    report.pulled(),
                    report.applied(),
                    report.pushed,
                    report.conflicts,
                    report.parked,
                    report.pending,
                    report.dead_letters
                )
            }),
            Err(e) => {
                let level = if e.is_transient() { LogLevel::Warn } else { LogLevel::Error };
                self.logger.log(level, "rowsync::sync", || format!("sync failed: {e}"));
            }
        }
        result.map(|_| report)
    }
}
