//! Issue 25.5, pictures in two steps as the vendor's app sends them
//! (WIRE.md section 7), over loopback HTTP: the `pictures` record is saved
//! first; the file is then posted with `X-PictureId`, the server id that
//! save gave; the upload waits while the record has none; the answer's
//! `AdditionalData` (`FileUrl`, `FileHash`) is stored on the record as the
//! picture's `url` and `pictureHash`, as the server's and with no pending
//! change. The reference server's habit `upload_without_additional_data`
//! leaves `AdditionalData` out: nothing is stored from the answer, and the
//! next pull brings the fields the server set.

use std::sync::{Arc, Mutex};

use rowsync::{
    ChangeEvent, ChangeListener, ChangeOrigin, Engine, RecordId, TaskState, UploadSource,
};
use rowsync_e2e::*;
use rowsync_refserver::{Fault, FaultBody, RunningServer, ServerConfig};
use serde_json::{json, Value};

fn server(without_additional_data: bool) -> RunningServer {
    start(ServerConfig {
        upload_without_additional_data: without_additional_data,
        ..mahak_server_config()
    })
}

/// A picture record and its file queued; the picture's client id.
fn picture_with_file(e: &Engine, bytes: &[u8]) -> RecordId {
    let p = e
        .create(
            "pictures",
            json!({"fileName": "signed.jpg", "title": "signed invoice"}),
        )
        .unwrap();
    let id = RecordId::Client(client_id(&p, "picture"));
    e.queue_upload(
        "pictures",
        id,
        UploadSource::Bytes(bytes.to_vec()),
        "signed.jpg",
    )
    .unwrap();
    id
}

#[derive(Default)]
struct Seen(Mutex<Vec<ChangeEvent>>);

impl ChangeListener for Seen {
    fn on_change(&self, events: &[ChangeEvent]) {
        self.0.lock().unwrap().extend(events.iter().cloned());
    }
}

/// The endpoints called, in order.
fn calls(server: &RunningServer) -> Vec<String> {
    server
        .server()
        .requests()
        .into_iter()
        .map(|r| r.endpoint)
        .collect()
}

/// The habit on (the real server's answer): the save goes first, the
/// upload names the id it gave, and the file's URL and hash land on the
/// record with nothing pending; the next sync sends nothing and the
/// server's own record, pulled, agrees.
#[test]
fn the_upload_answer_gives_the_picture_its_url_and_hash_with_nothing_pending() {
    let server = server(false);
    let db = TempDb::new("pic-two-steps");
    let e = mahak_engine(&db, &server.base_url());
    let bytes = b"\xFF\xD8\xFF\xE0 a signed invoice".to_vec();
    let id = picture_with_file(&e, &bytes);
    let seen = Arc::new(Seen::default());
    let _sub = e.subscribe_changes(seen.clone());

    let report = e.sync().unwrap();
    assert_eq!((report.pushed, report.uploaded), (1, 1), "{report:?}");
    let log = calls(&server);
    let save = log.iter().position(|c| c == "SaveAllData").unwrap();
    let upload = log.iter().position(|c| c == "Upload").unwrap();
    assert!(save < upload, "the record's save first: {log:?}");

    let local = e.get("pictures", id).unwrap().unwrap();
    let sid = local["pictureId"]
        .as_i64()
        .expect("the save gave a server id");
    let stored = server.server().admin().uploads();
    assert_eq!(stored[0].record_id, sid, "X-PictureId is the saved id");
    assert_eq!(stored[0].data, bytes);
    let on_server = server.server().admin().get("pictures", sid).unwrap();
    let url = on_server["url"].as_str().unwrap();
    assert!(url.starts_with("/api/v3/Content/Images/all/"), "{url}");
    assert_eq!(local["url"], on_server["url"], "FileUrl stored as the url");
    assert_eq!(local["pictureHash"], on_server["pictureHash"]);
    assert_eq!(local["pictureHash"].as_str().map(str::len), Some(32));
    assert_eq!(local["title"], "signed invoice", "the rest as it was");
    assert!(
        seen.0
            .lock()
            .unwrap()
            .iter()
            .any(|c| c.collection == "pictures"
                && c.origin == ChangeOrigin::Sync
                && c.records.iter().any(|r| r.server_id == Some(sid))),
        "the app is told the picture changed"
    );

    // Nothing pending: the fields are the server's, not a local edit.
    let status = e.status().unwrap();
    assert_eq!((status.counts.pending, status.counts.uploads), (0, 0));
    let next = e.sync().unwrap();
    assert_eq!(next.push_requests, 0, "nothing pushed back: {next:?}");
    let after = e.get("pictures", id).unwrap().unwrap();
    assert_eq!(after["url"], on_server["url"]);
    assert_eq!(after["pictureHash"], on_server["pictureHash"]);
    assert_eq!(
        server.server().admin().get("pictures", sid).unwrap()["url"],
        on_server["url"],
        "the server's record untouched by the client"
    );
    // The picture cache serves the uploaded file from the URL the answer
    // gave (issue 27.2): the server serves it there, whole.
    e.sync_pictures().unwrap();
    let file = e
        .picture_path(sid)
        .unwrap()
        .expect("the uploaded picture is cached");
    assert_eq!(std::fs::read(file).unwrap(), bytes);
    // An absolute URL for an image loader, against the server's origin.
    let absolute = e.absolute_url(url).unwrap();
    assert!(absolute.starts_with("http://127.0.0.1:") && absolute.ends_with(url));
}

/// The upload waits while its picture has no server id: a sync whose save
/// fails sends no file; the next one saves, then uploads.
#[test]
fn the_upload_waits_for_the_pictures_server_id() {
    let server = server(false);
    let db = TempDb::new("pic-waits");
    let e = mahak_engine(&db, &server.base_url());
    e.sync().unwrap();
    let id = picture_with_file(&e, b"bytes");
    server
        .server()
        .faults()
        .inject(Some("SaveAllData"), Fault::Status(500, FaultBody::Html), 10);
    assert!(e.sync().is_err());
    assert!(server.server().admin().uploads().is_empty(), "no file sent");
    let status = e.status().unwrap();
    assert_eq!(status.uploads[0].state, TaskState::WaitingForRecord);
    server.server().faults().clear();
    let report = e.sync().unwrap();
    assert_eq!(report.uploaded, 1, "{report:?}");
    let sid = e.get("pictures", id).unwrap().unwrap()["pictureId"]
        .as_i64()
        .unwrap();
    assert_eq!(server.server().admin().uploads()[0].record_id, sid);
}

/// The habit off: an answer without `AdditionalData` is taken (the upload
/// is done), nothing is stored from it, nothing is pending, and the next
/// pull brings the url and hash the server gave the picture.
#[test]
fn an_answer_without_additional_data_stores_nothing_and_the_pull_brings_it() {
    let server = server(true);
    let db = TempDb::new("pic-no-extra");
    let e = mahak_engine(&db, &server.base_url());
    let id = picture_with_file(&e, b"\x89PNG a stamp");
    let report = e.sync().unwrap();
    assert_eq!(report.uploaded, 1, "{report:?}");
    let local = e.get("pictures", id).unwrap().unwrap();
    assert!(local.get("url").is_none_or(Value::is_null), "{local}");
    assert!(local.get("pictureHash").is_none_or(Value::is_null));
    assert_eq!(e.status().unwrap().counts.pending, 0);
    let sid = local["pictureId"].as_i64().unwrap();
    let on_server = server.server().admin().get("pictures", sid).unwrap();
    assert!(on_server["url"].is_string());
    let next = e.sync().unwrap();
    assert_eq!(next.push_requests, 0);
    let pulled = e.get("pictures", id).unwrap().unwrap();
    assert_eq!(pulled["url"], on_server["url"], "the pull brings it");
    assert_eq!(pulled["pictureHash"], on_server["pictureHash"]);
}
