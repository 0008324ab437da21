//! The picture cache's step, run after a sync's pull and push (and by
//! `Engine::sync_pictures`): the pictures wanted are the live records of
//! the dialect's picture collection (filtered by `Settings::picture_ids`);
//! each is fetched when it has no file yet, when its server file name or
//! hash changed, or when its last fetch failed; files whose record is gone
//! are removed; the least recently used files go past the cap. A fetch is
//! a plain GET of the URL made absolute against the server's origin, with
//! no token (WIRE.md section 7), through the transport, never the API
//! client; a picture that came inline is written as it is. Nothing here
//! fails a sync: a failed fetch is kept in the index with its error and
//! tried again at the next run. A file is written whole or not at all
//! (`files.rs`), and the index says ready only after that.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use crate::api::dialect::{Codec, PictureSource};
use crate::error::Result;
use crate::files;
use crate::listeners::Registry;
use crate::log::{LogLevel, Logger};
use crate::report::PictureReport;
use crate::settings::Settings;
use crate::status::ConnectionState;
use crate::store::pictures::{self, PictureEntry, PictureState};
use crate::store::{coll_id_of, Db};
use crate::transport::{HttpRequest, Transport};

/// What one run of the picture cache works with.
pub(crate) struct PictureRun<'a> {
    /// The replica (records and the cache's index).
    pub(crate) db: &'a Db,
    /// The dialect: which collection holds pictures, where their files are.
    pub(crate) codec: &'a dyn Codec,
    /// How the files are fetched (plain GETs).
    pub(crate) transport: &'a dyn Transport,
    /// The server's base URL (relative picture URLs hang from its origin).
    pub(crate) base_url: &'a str,
    /// The cache's directory.
    pub(crate) dir: &'a Path,
    /// The settings (which pictures, the cap, the hash check).
    pub(crate) settings: &'a Settings,
    /// Told the progress, as the connection state.
    pub(crate) events: &'a Registry,
    /// The app's log.
    pub(crate) logger: &'a Logger,
    /// True when the run must stop before its next fetch (shutdown, or the
    /// sync's deadline): the rest waits for a later run.
    pub(crate) stop: &'a dyn Fn() -> bool,
}

/// Runs the picture cache once. An error is the replica's (the index could
/// not be read or written); a fetch that fails is counted and kept.
pub(crate) fn run(job: &PictureRun<'_>) -> Result<PictureReport> {
    let mut report = PictureReport::default();
    let Some(collection) = job.codec.picture_collection() else {
        return Ok(report);
    };
    let Ok(coll) = job.db.read(|conn| coll_id_of(conn, collection)) else {
        return Ok(report);
    };
    let wanted = wanted(job, coll)?;
    report.wanted = wanted.len() as u64;
    let index: HashMap<i64, PictureEntry> = job
        .db
        .read(pictures::entries)?
        .into_iter()
        .map(|e| (e.picture_id, e))
        .collect();
    // No picture, no directory: a replica without pictures stays as it was.
    if wanted.is_empty() && index.is_empty() && !job.dir.is_dir() {
        return Ok(report);
    }
    if let Err(e) = std::fs::create_dir_all(job.dir) {
        job.logger.log(LogLevel::Warn, "rowsync::pictures", || {
            format!("no picture cache at `{}`: {e}", job.dir.display())
        });
        report.failed = wanted.len() as u64;
        return Ok(report);
    }

    // Files whose record was deleted (or is no longer wanted) go first.
    for entry in index
        .values()
        .filter(|e| !wanted.contains_key(&e.picture_id))
    {
        job.db.write(|tx| tx.forget_picture(entry.picture_id))?;
        if let Some(name) = &entry.local_name {
            remove_file(job, name);
        }
        report.removed += 1;
    }
    // A kill's leftovers: temporary files, files the index lost.
    let keep: HashSet<String> = index
        .values()
        .filter(|e| wanted.contains_key(&e.picture_id))
        .filter_map(|e| e.local_name.clone())
        .collect();
    if let Err(e) = files::sweep(job.dir, &keep) {
        job.logger.log(LogLevel::Warn, "rowsync::pictures", || {
            format!("cannot sweep the picture cache: {e}")
        });
    }

    let todo: Vec<(i64, &PictureSource)> = wanted
        .iter()
        .filter(|(id, source)| due(job.dir, index.get(id), source))
        .map(|(id, source)| (*id, source))
        .collect();
    let total = u32::try_from(todo.len()).unwrap_or(u32::MAX);
    for (n, (id, source)) in todo.into_iter().enumerate() {
        if (job.stop)() {
            break;
        }
        job.events.set_state(ConnectionState::FetchingPictures {
            picture: u32::try_from(n + 1).unwrap_or(u32::MAX),
            pictures: total,
            bytes_done: report.bytes_fetched,
        });
        let old = index.get(&id);
        match fetch(job, source).and_then(|data| keep_file(job, id, source, &data)) {
            Ok((name, size)) => {
                job.db.write(|tx| {
                    tx.put_picture(&PictureEntry {
                        picture_id: id,
                        file_name: source.file_name.clone(),
                        hash: source.hash.clone(),
                        local_name: Some(name.clone()),
                        size,
                        last_used: pictures::next_use(tx)?,
                        state: PictureState::Ready,
                        attempts: 0,
                        last_error: None,
                    })
                })?;
                if let Some(old_name) = old.and_then(|e| e.local_name.as_ref()) {
                    if *old_name != name {
                        remove_file(job, old_name);
                    }
                }
                report.fetched += 1;
                report.bytes_fetched += size;
                evict(job, &mut report)?;
            }
            Err(why) => {
                job.logger.log(LogLevel::Warn, "rowsync::pictures", || {
                    format!("picture {id} not fetched (tried again at the next run): {why}")
                });
                report.failed += 1;
                let failed = match old {
                    // A file already there stays served; the index keeps
                    // what it was fetched for, so the next run tries again.
                    Some(e) if e.state == PictureState::Ready => PictureEntry {
                        attempts: e.attempts.saturating_add(1),
                        last_error: Some(why),
                        ..e.clone()
                    },
                    _ => PictureEntry {
                        picture_id: id,
                        file_name: source.file_name.clone(),
                        hash: source.hash.clone(),
                        local_name: None,
                        size: 0,
                        last_used: old.map_or(0, |e| e.last_used),
                        state: PictureState::Failed,
                        attempts: old.map_or(0, |e| e.attempts).saturating_add(1),
                        last_error: Some(why),
                    },
                };
                job.db.write(|tx| tx.put_picture(&failed))?;
            }
        }
    }
    for e in job.db.read(pictures::entries)? {
        if e.state == PictureState::Ready {
            report.cached += 1;
            report.bytes += e.size;
        }
    }
    Ok(report)
}

/// The pictures wanted, by id, with where their files are.
fn wanted(job: &PictureRun<'_>, coll: i64) -> Result<BTreeMap<i64, PictureSource>> {
    let only: HashSet<i64> = job.settings.picture_ids.iter().copied().collect();
    let mut out = BTreeMap::new();
    for (id, text) in job.db.read(|conn| pictures::live_records(conn, coll))? {
        if !only.is_empty() && !only.contains(&id) {
            continue;
        }
        let Ok(serde_json::Value::Object(record)) = serde_json::from_str(&text) else {
            continue;
        };
        if let Some(source) = job.codec.picture(&record) {
            out.insert(id, source);
        }
    }
    Ok(out)
}

/// True when picture `entry` must be fetched for `source`.
fn due(dir: &Path, entry: Option<&PictureEntry>, source: &PictureSource) -> bool {
    let Some(e) = entry else {
        return true;
    };
    match e.state {
        PictureState::Ready => {
            e.file_name != source.file_name
                || e.hash != source.hash
                || !e.local_name.as_ref().is_some_and(|n| dir.join(n).is_file())
        }
        PictureState::Failed | PictureState::Asked => true,
        // Fetched again once the app asks for it (`picture_path`).
        PictureState::Evicted => false,
    }
}

/// The file's bytes: inline, or a plain GET with no token.
fn fetch(job: &PictureRun<'_>, source: &PictureSource) -> std::result::Result<Vec<u8>, String> {
    if let Some(data) = &source.inline {
        return Ok(data.clone());
    }
    let url = source.url.as_deref().ok_or("the record names no file")?;
    let url = crate::url::absolute_url(job.base_url, url).map_err(|e| e.to_string())?;
    let request = HttpRequest {
        method: "GET".to_string(),
        url,
        headers: vec![("Accept".to_string(), "image/*, */*".to_string())],
        body: Vec::new(),
    };
    let response = job.transport.get(&request).map_err(|e| e.to_string())?;
    if response.status != 200 {
        return Err(format!("HTTP {}", response.status));
    }
    // A transport of the app's may hand over a short body: a declared
    // length not met is a cut file, never kept.
    if response.header("content-encoding").is_none() {
        if let Some(declared) = response
            .header("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            if declared != response.body.len() as u64 {
                return Err(format!(
                    "the file came cut: {} of {declared} bytes",
                    response.body.len()
                ));
            }
        }
    }
    Ok(response.body)
}

/// Checks `data` against the source's hash and writes it whole; returns
/// its name in the cache and its size.
fn keep_file(
    job: &PictureRun<'_>,
    id: i64,
    source: &PictureSource,
    data: &[u8],
) -> std::result::Result<(String, u64), String> {
    if job.settings.verify_picture_hash {
        if let Some(hash) = &source.hash {
            if files::hash_matches(hash, data) == Some(false) {
                return Err(format!(
                    "the file ({} bytes) does not match its hash {hash}",
                    data.len()
                ));
            }
        }
    }
    let name = files::local_name(id, &source.file_name);
    files::write_whole(job.dir, &name, data)
        .map_err(|e| format!("cannot write `{name}` in the picture cache: {e}"))?;
    Ok((name, data.len() as u64))
}

/// Evicts the least recently used files while the cache is past its cap.
fn evict(job: &PictureRun<'_>, report: &mut PictureReport) -> Result<()> {
    let cap = job.settings.picture_cache_bytes;
    if cap == 0 {
        return Ok(());
    }
    let mut ready: Vec<PictureEntry> = job
        .db
        .read(pictures::entries)?
        .into_iter()
        .filter(|e| e.state == PictureState::Ready)
        .collect();
    let mut total: u64 = ready.iter().map(|e| e.size).sum();
    ready.sort_by_key(|e| e.last_used);
    for e in ready {
        if total <= cap {
            break;
        }
        let evicted = PictureEntry {
            local_name: None,
            size: 0,
            state: PictureState::Evicted,
            ..e.clone()
        };
        job.db.write(|tx| tx.put_picture(&evicted))?;
        if let Some(name) = &e.local_name {
            remove_file(job, name);
        }
        total = total.saturating_sub(e.size);
        report.evicted += 1;
    }
    Ok(())
}

fn remove_file(job: &PictureRun<'_>, name: &str) {
    if let Err(e) = files::remove(job.dir, name) {
        job.logger.log(LogLevel::Warn, "rowsync::pictures", || {
            format!("cannot remove `{name}` from the picture cache: {e}")
        });
    }
}
