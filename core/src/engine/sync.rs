//! Starting a sync: the API client the engine keeps (made again when the
//! settings, the credentials or the transport change), and one sync run
//! with a [`Context`] of what it needs, its report kept as the last one.
//! The sync itself is `sync/`.

use std::sync::Arc;
use std::time::Duration;

use super::Engine;
use crate::api::client::{ApiClient, ClientConfig};
use crate::api::dialect::SaveRules;
use crate::error::{Error, Result};
use crate::http::{HttpConfig, UreqTransport};
use crate::locks::{lock, read};
use crate::log::LogLevel;
use crate::report::SyncReport;
use crate::settings::Settings;
use crate::status::ConnectionState;
use crate::store::{self, meta};
use crate::sync;
use crate::sync::context::Context;
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
            },
            credentials,
            transport,
            self.shutdown.clone(),
        )?);
        // A replica filled from one database and visitor never mixes in
        // another's records: a login that names others is refused.
        let expected = match self.db.read(store::holds_data)? {
            true => self.session()?.map(|s| (s.database_id, s.visitor_id)),
            false => None,
        };
        client.expect_identity(expected);
        // A stall is shown while it lasts, inside the sync (invariant 17);
        // when the call gets an answer again the sync goes on.
        let registry = self.registry.clone();
        client.watch_connection(Arc::new(move |state: &ConnectionState| {
            let next = match (state, registry.state()) {
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
        })
    }

    /// Runs one sync cycle: pull the wanted collections that are due (see
    /// `Settings::pull_intervals`; the report names them), then push the
    /// outbox, then fetch the pictures wanted (`Settings::pictures`; see
    /// [`Engine::sync_pictures`]). The report is also kept as the last
    /// report.
    pub fn sync(&self) -> Result<SyncReport> {
        self.sync_inner(false)
    }

    /// [`Engine::sync`], pulling every wanted collection whatever its
    /// schedule.
    pub fn sync_all(&self) -> Result<SyncReport> {
        self.sync_inner(true)
    }

    fn sync_inner(&self, all: bool) -> Result<SyncReport> {
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
                .and_then(|ctx| sync::session::Session::new(ctx, all).run(&mut report));
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
            tx.set_meta(meta::LAST_REPORT, &serde_json::to_string(&report)?)
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
