//! The picture cache's entry points: where a picture's file is
//! ([`Engine::picture_path`]), a run of the cache now
//! ([`Engine::sync_pictures`]), and the run a sync makes after its pull and
//! push. The cache itself is `sync/pictures.rs` (the step) and
//! `store/pictures.rs` (its index).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::Engine;
use crate::error::Result;
use crate::files;
use crate::locks::lock;
use crate::log::LogLevel;
use crate::report::PictureReport;
use crate::settings::Settings;
use crate::store::pictures::{self, PictureState};
use crate::store::{coll_id_of, row_by_server_id};
use crate::sync::pictures::{run, PictureRun};
use crate::transport::Transport;

impl Engine {
    /// The cache's directory: the one set, else `<replica>.pictures` beside
    /// a file replica; `None` when the cache is off or has no directory.
    fn picture_dir(&self, settings: &Settings) -> Option<PathBuf> {
        if !settings.pictures {
            return None;
        }
        if !settings.picture_dir.trim().is_empty() {
            return Some(PathBuf::from(settings.picture_dir.trim()));
        }
        self.replica_path.as_ref().map(|p| {
            let mut name = p.as_os_str().to_os_string();
            name.push(".pictures");
            PathBuf::from(name)
        })
    }

    /// The local file of picture `picture_id` (its server id, `pictureId`),
    /// or `None` while there is none: not fetched yet, its fetch failed,
    /// evicted (it is then fetched again at the next run), its record
    /// deleted (the file is removed now), or the cache is off. A file
    /// returned is whole, and stays until its picture changes, is deleted
    /// or is evicted. Counts as a use for the eviction order. A changed
    /// picture's older file is served until the new one is in.
    pub fn picture_path(&self, picture_id: i64) -> Result<Option<PathBuf>> {
        let settings = self.settings()?;
        let Some(dir) = self.picture_dir(&settings) else {
            return Ok(None);
        };
        let Some(collection) = settings.dialect.codec().picture_collection() else {
            return Ok(None);
        };
        let Ok(coll) = self.db.read(|conn| coll_id_of(conn, collection)) else {
            return Ok(None);
        };
        enum Found {
            Path(PathBuf),
            Gone(Option<String>),
            Nothing,
        }
        let found = self.db.write(|tx| {
            let Some(entry) = pictures::entry(tx, picture_id)? else {
                return Ok(Found::Nothing);
            };
            let live = row_by_server_id(tx, coll, picture_id)?.is_some_and(|r| !r.deleted);
            if !live {
                tx.forget_picture(picture_id)?;
                return Ok(Found::Gone(entry.local_name));
            }
            match (entry.state, &entry.local_name) {
                (PictureState::Ready, Some(name)) if dir.join(name).is_file() => {
                    tx.touch_picture(picture_id)?;
                    Ok(Found::Path(dir.join(name)))
                }
                // Its file went (removed by hand): fetched again next run.
                (PictureState::Ready, _) => {
                    tx.set_picture_state(picture_id, PictureState::Failed)?;
                    Ok(Found::Nothing)
                }
                (PictureState::Evicted, _) => {
                    tx.set_picture_state(picture_id, PictureState::Asked)?;
                    Ok(Found::Nothing)
                }
                _ => Ok(Found::Nothing),
            }
        })?;
        Ok(match found {
            Found::Path(path) => Some(path),
            Found::Gone(name) => {
                if let Some(name) = name {
                    let _ = files::remove(&dir, &name);
                }
                None
            }
            Found::Nothing => None,
        })
    }

    /// Runs the picture cache now, as a sync does after its pull and push:
    /// fetches the pictures wanted that have no file yet (or changed, or
    /// failed before, or were evicted and asked for), removes those whose
    /// record is gone, evicts past the cap. Needs the server's URL, no
    /// login (the files are public; no token is sent). A picture that
    /// fails is counted, kept for a later run, and fails nothing.
    pub fn sync_pictures(&self) -> Result<PictureReport> {
        let _one_at_a_time = lock(&self.sync_lock)?;
        let before = self.registry.state();
        let settings = self.settings()?;
        let result = self.fetch_pictures(&settings, self.shutdown.monotonic());
        self.set_state(before)?;
        result
    }

    /// One run of the cache, which stops fetching at `started` (on the
    /// engine's monotonic clock) plus the sync's deadline. The caller holds
    /// the sync lock and puts the connection state back.
    pub(crate) fn fetch_pictures(
        &self,
        settings: &Settings,
        started: Duration,
    ) -> Result<PictureReport> {
        let Some(dir) = self.picture_dir(settings) else {
            return Ok(PictureReport::default());
        };
        let transport: Arc<dyn Transport> = self.transport_for(settings)?;
        let deadline = started + Duration::from_millis(settings.sync_deadline_ms);
        let stop = || self.shutdown.is_triggered() || self.shutdown.monotonic() >= deadline;
        let report = run(&PictureRun {
            db: &self.db,
            codec: settings.dialect.codec(),
            transport: transport.as_ref(),
            base_url: &settings.base_url,
            dir: &dir,
            settings,
            events: &self.registry,
            logger: &self.logger,
            stop: &stop,
        })?;
        self.logger.log(LogLevel::Info, "rowsync::pictures", || {
            format!(
                "pictures: {} wanted, {} fetched, {} failed, {} removed, {} evicted, {} cached ({} bytes)",
                report.wanted,
                report.fetched,
                report.failed,
                report.removed,
                report.evicted,
                report.cached,
                report.bytes
            )
        });
        Ok(report)
    }
}
