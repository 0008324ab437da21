//! Product pictures offline (issue 27, part 2), over loopback HTTP: after a
//! sync the pictures are in a cache beside the replica, fetched with plain
//! GETs and no token; a changed picture is fetched again, a deleted one is
//! removed, a cap evicts the least recently used, and a file cut mid-way is
//! never served, fails nothing, and comes whole at the next sync.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rowsync::{
    ConnectionState, Engine, HttpConfig, HttpRequest, HttpResponse, RecordId, StatusListener,
    Transport, TransportError, UreqTransport,
};
use rowsync_e2e::*;
use rowsync_refserver::{picture_hash, RunningServer, ServerConfig};
use serde_json::json;

/// The built-in transport, with every request it carries written down.
struct Recording {
    inner: UreqTransport,
    seen: Mutex<Vec<HttpRequest>>,
}

impl Transport for Recording {
    fn send(&self, r: &HttpRequest) -> Result<HttpResponse, TransportError> {
        self.seen.lock().unwrap().push(r.clone());
        self.inner.send(r)
    }
    fn get(&self, r: &HttpRequest) -> Result<HttpResponse, TransportError> {
        self.seen.lock().unwrap().push(r.clone());
        self.inner.get(r)
    }
}

struct States(Mutex<Vec<ConnectionState>>);

impl StatusListener for States {
    fn on_status(&self, s: &ConnectionState) {
        self.0.lock().unwrap().push(s.clone());
    }
}

/// A mahak server with a few products and `n` pictures; their ids.
fn server_with_pictures(config: ServerConfig, n: usize) -> (RunningServer, Vec<i64>) {
    let server = start(config);
    server.server().admin().seed_products(3).unwrap();
    let ids = server.server().admin().seed_pictures(n).unwrap();
    (server, ids)
}

/// The bytes the server serves for picture `id` now.
fn served(server: &RunningServer, id: i64) -> Vec<u8> {
    let admin = server.server().admin();
    let record = admin.get("pictures", id).unwrap();
    admin
        .picture_file(record["fileName"].as_str().unwrap())
        .unwrap()
}

fn cache_dir(db: &TempDb) -> PathBuf {
    let mut p = db.0.clone().into_os_string();
    p.push(".pictures");
    PathBuf::from(p)
}

/// The files in the cache whose name starts with `<id>-` (or holds it, for
/// temporary files).
fn files_of(dir: &Path, id: i64) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n.trim_start_matches('.').starts_with(&format!("{id}-")))
                .collect()
        })
        .unwrap_or_default()
}

fn path_of(e: &Engine, id: i64) -> Option<PathBuf> {
    e.picture_path(id).unwrap()
}

#[test]
fn two_hundred_pictures_are_fetched_with_no_token_and_progress_shows() {
    let (server, ids) = server_with_pictures(mahak_server_config(), 200);
    let db = TempDb::new("pictures-200");
    let e = mahak_engine(&db, &server.base_url());
    let recording = Arc::new(Recording {
        inner: UreqTransport::new(HttpConfig::default()).unwrap(),
        seen: Mutex::new(Vec::new()),
    });
    e.set_transport(recording.clone()).unwrap();
    let states = Arc::new(States(Mutex::new(Vec::new())));
    let _sub = e.subscribe_status(states.clone());
    assert_eq!(path_of(&e, ids[0]), None, "nothing before a sync");

    let report = e.sync().unwrap();
    assert_eq!(report.pictures.wanted, 200);
    assert_eq!(report.pictures.fetched, 200);
    assert_eq!((report.pictures.failed, report.pictures.cached), (0, 200));
    for &id in &ids {
        let path = path_of(&e, id).unwrap_or_else(|| panic!("picture {id}"));
        assert!(path.starts_with(cache_dir(&db)), "{path:?}");
        assert_eq!(std::fs::read(&path).unwrap(), served(&server, id));
    }
    assert_eq!(
        report.pictures.bytes,
        ids.iter()
            .map(|&id| served(&server, id).len() as u64)
            .sum::<u64>()
    );

    // Plain GETs of the public files: no token, no credential anywhere.
    let seen = recording.seen.lock().unwrap();
    let gets: Vec<&HttpRequest> = seen.iter().filter(|r| r.method == "GET").collect();
    assert_eq!(gets.len(), 200);
    for r in &gets {
        assert!(r.url.contains("/api/v3/Content/Images/all/p"), "{}", r.url);
        assert!(r.body.is_empty());
        assert!(r.header("authorization").is_none(), "{:?}", r.headers);
        assert!(!r.url.to_ascii_lowercase().contains("token"), "{}", r.url);
    }
    drop(seen);

    // The progress was shown, then the state came back.
    let states = states.0.lock().unwrap();
    assert!(states.contains(&ConnectionState::FetchingPictures {
        picture: 200,
        pictures: 200,
        bytes_done: report.pictures.bytes - served(&server, ids[199]).len() as u64,
    }));
    assert_eq!(states.last(), Some(&ConnectionState::Online));
    drop(states);

    // A second sync fetches nothing again.
    let again = e.sync().unwrap();
    assert_eq!((again.pictures.fetched, again.pictures.cached), (0, 200));
}

#[test]
fn a_changed_picture_is_fetched_again_and_its_old_file_goes() {
    let (server, ids) = server_with_pictures(mahak_server_config(), 5);
    let db = TempDb::new("pictures-changed");
    let e = mahak_engine(&db, &server.base_url());
    e.sync().unwrap();
    let id = ids[2];
    let before = path_of(&e, id).unwrap();
    let old = std::fs::read(&before).unwrap();

    let changed = server.server().admin().change_picture(id).unwrap();
    let report = e.sync().unwrap();
    assert_eq!(report.pictures.fetched, 1, "only the changed one");
    let after = path_of(&e, id).unwrap();
    assert_ne!(after, before, "a new file name");
    let new = std::fs::read(&after).unwrap();
    assert_ne!(new, old);
    assert_eq!(new, served(&server, id));
    assert_eq!(changed["pictureHash"], json!(picture_hash(&new)));
    assert!(!before.exists(), "the old file is removed");
    assert_eq!(files_of(&cache_dir(&db), id).len(), 1);
}

#[test]
fn a_deleted_picture_is_removed_whoever_deleted_it() {
    let (server, ids) = server_with_pictures(mahak_server_config(), 4);
    let db = TempDb::new("pictures-deleted");
    let e = mahak_engine(&db, &server.base_url());
    e.sync().unwrap();
    let (on_server, here) = (ids[0], ids[1]);
    let server_file = path_of(&e, on_server).unwrap();
    let local_file = path_of(&e, here).unwrap();

    // Deleted on the server: the pull brings the deletion, the file goes.
    server
        .server()
        .admin()
        .delete("pictures", on_server)
        .unwrap();
    let report = e.sync().unwrap();
    assert_eq!(report.pictures.removed, 1);
    assert_eq!(path_of(&e, on_server), None);
    assert!(!server_file.exists());

    // Deleted here: not served from then on, and its file goes at once.
    e.delete("pictures", RecordId::Server(here)).unwrap();
    assert_eq!(path_of(&e, here), None);
    assert!(!local_file.exists());
    assert!(files_of(&cache_dir(&db), here).is_empty());
    // The others stay.
    for &id in &ids[2..] {
        assert!(path_of(&e, id).is_some());
    }
}

#[test]
fn a_cap_evicts_the_least_recently_used_first() {
    let (server, ids) = server_with_pictures(mahak_server_config(), 5);
    let sizes: Vec<u64> = ids
        .iter()
        .map(|&id| served(&server, id).len() as u64)
        .collect();
    let cap: u64 = sizes.iter().sum();
    let db = TempDb::new("pictures-cap");
    let e = mahak_engine(&db, &server.base_url());
    e.configure(rowsync::Settings {
        picture_cache_bytes: cap,
        ..e.settings().unwrap()
    })
    .unwrap();
    let report = e.sync().unwrap();
    assert_eq!((report.pictures.cached, report.pictures.evicted), (5, 0));
    // Used since: all but the second, which is now the least recently used.
    for i in [0, 2, 3, 4] {
        assert!(path_of(&e, ids[i]).is_some());
    }

    // One more picture does not fit: the least recently used goes first.
    let new = server.server().admin().seed_pictures(1).unwrap()[0];
    let report = e.sync().unwrap();
    assert_eq!(report.pictures.fetched, 1);
    assert!(report.pictures.evicted >= 1);
    assert!(
        report.pictures.bytes <= cap,
        "{} > {cap}",
        report.pictures.bytes
    );
    assert!(files_of(&cache_dir(&db), ids[1]).is_empty());
    assert!(path_of(&e, new).is_some(), "the newest stays");
    assert!(
        path_of(&e, ids[4]).is_some(),
        "the most recently used stays"
    );
    // Evicted, then asked for: nothing yet, and the next sync brings it back.
    assert_eq!(path_of(&e, ids[1]), None);
    let report = e.sync().unwrap();
    assert_eq!(report.pictures.fetched, 1);
    assert!(report.pictures.bytes <= cap);
    assert_eq!(
        std::fs::read(path_of(&e, ids[1]).unwrap()).unwrap(),
        served(&server, ids[1])
    );
}

#[test]
fn a_file_cut_mid_way_is_never_served_and_the_next_sync_completes_it() {
    let (server, ids) = server_with_pictures(mahak_server_config(), 4);
    let (cut, missing) = (ids[1], ids[2]);
    server.server().update_config(|c| {
        c.cut_pictures = vec![cut];
        c.missing_pictures = vec![missing];
    });
    let db = TempDb::new("pictures-cut");
    let e = mahak_engine(&db, &server.base_url());
    let report = e.sync().expect("a picture never fails a sync");
    assert_eq!(report.error, None);
    assert_eq!((report.pictures.fetched, report.pictures.failed), (2, 2));
    assert_eq!(path_of(&e, cut), None, "a cut file is not served");
    assert_eq!(path_of(&e, missing), None);
    let dir = cache_dir(&db);
    assert!(
        files_of(&dir, cut).is_empty(),
        "nothing half-written is left"
    );
    assert!(files_of(&dir, missing).is_empty());
    // The cut reached the engine: Content-Length promised more.
    assert!(server
        .server()
        .requests()
        .iter()
        .any(|r| r.outcome.contains("response cut")));

    server.server().update_config(|c| {
        c.cut_pictures.clear();
        c.missing_pictures.clear();
    });
    let report = e.sync().unwrap();
    assert_eq!((report.pictures.fetched, report.pictures.failed), (2, 0));
    for id in [cut, missing] {
        assert_eq!(
            std::fs::read(path_of(&e, id).unwrap()).unwrap(),
            served(&server, id)
        );
    }
}

#[test]
fn inline_pictures_are_written_as_they_came_and_sync_pictures_needs_no_login() {
    let (server, _) = server_with_pictures(mahak_server_config(), 0);
    let bytes: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
    use base64::Engine as _;
    let inline = server
        .server()
        .admin()
        .upsert(
            "pictures",
            json!({"fileName": "inline.png", "binaryData":
                   base64::engine::general_purpose::STANDARD.encode(&bytes)}),
        )
        .unwrap();
    let id = inline["pictureId"].as_i64().unwrap();
    let db = TempDb::new("pictures-inline");
    let e = mahak_engine(&db, &server.base_url());
    e.configure(rowsync::Settings {
        pictures: false,
        ..e.settings().unwrap()
    })
    .unwrap();
    e.sync().unwrap();
    assert_eq!(path_of(&e, id), None, "the cache is off");
    let requests = server.server().requests().len();

    // On again: fetched now, with no sync and no login.
    e.configure(rowsync::Settings {
        pictures: true,
        ..e.settings().unwrap()
    })
    .unwrap();
    e.disconnect().unwrap();
    let report = e.sync_pictures().unwrap();
    assert_eq!(report.fetched, 1);
    assert_eq!(std::fs::read(path_of(&e, id).unwrap()).unwrap(), bytes);
    assert_eq!(server.server().requests().len(), requests, "no call at all");
    let names: HashSet<String> = std::fs::read_dir(cache_dir(&db))
        .unwrap()
        .map(|d| d.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, HashSet::from([format!("{id}-inline.png")]));
}
