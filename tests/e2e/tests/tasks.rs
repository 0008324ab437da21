//! Uploads and disputes (issue 13, parts 1 and 2), against the reference
//! server over loopback HTTP, in both dialects: the real request shapes, a
//! durable queue, an upload only after its record's own save, progress
//! through the status listener, the size limit, refusals parked with the
//! server's words, and nothing sent twice after a lost answer where the
//! server does not deduplicate.

use std::sync::{Arc, Mutex};

use rowsync::{
    ConnectionState, Dialect, Engine, Error, OrderDisputeItem, RecordDisputeItem, RecordId,
    StatusListener, TaskKind, TaskState, UploadSource,
};
use rowsync_e2e::*;
use rowsync_refserver::{Fault, RunningServer, ServerConfig};
use serde_json::{json, Value};

/// The endpoints the server was called at, in order.
fn endpoints_called(server: &RunningServer) -> Vec<String> {
    server
        .server()
        .requests()
        .into_iter()
        .map(|r| r.endpoint)
        .collect()
}

fn server_for(dialect: Dialect) -> ServerConfig {
    match dialect {
        Dialect::Mahak => mahak_server_config(),
        Dialect::Documented => server_config(),
    }
}

/// A record to attach a file to: a `pictures` record (mahak: the server
/// takes files for pictures, by `X-PictureId`) or a product (documented).
fn attachable(e: &Engine, dialect: Dialect) -> (&'static str, RecordId) {
    let (collection, key, record) = match dialect {
        Dialect::Mahak => (
            "pictures",
            "picture",
            json!({"fileName": "receipt.jpg", "title": "signed invoice"}),
        ),
        Dialect::Documented => ("products", "product", json!({"name": "shop front"})),
    };
    let r = e.create(collection, record).unwrap();
    (collection, RecordId::Client(client_id(&r, key)))
}

struct Progress(Mutex<Vec<ConnectionState>>);

impl StatusListener for Progress {
    fn on_status(&self, state: &ConnectionState) {
        self.0.lock().unwrap().push(state.clone());
    }
}

fn upload_goes_after_its_records_save(dialect: Dialect) {
    let server = start(server_for(dialect));
    let db = TempDb::new("upload");
    let e = engine_for(&db, &server.base_url(), dialect);
    let (collection, id) = attachable(&e, dialect);
    let photo: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let file = db.0.with_extension("jpg");
    std::fs::write(&file, &photo).unwrap();
    let task = e
        .queue_upload(
            collection,
            id,
            UploadSource::Path(file.clone()),
            "فاکتور ۱۲.jpg",
        )
        .unwrap();
    // The app may delete its copy at once.
    std::fs::remove_file(&file).unwrap();
    let status = e.status().unwrap();
    assert_eq!(status.counts.uploads, 1);
    assert_eq!(status.uploads.len(), 1);
    assert_eq!(status.uploads[0].id, task);
    assert_eq!(status.uploads[0].state, TaskState::WaitingForRecord);
    assert_eq!(status.uploads[0].size, photo.len() as u64);

    let progress = Arc::new(Progress(Mutex::new(Vec::new())));
    let _sub = e.subscribe_status(progress.clone());
    let report = e.sync().unwrap();
    assert_eq!(report.uploaded, 1, "{report:?}");
    let sid = e.get(collection, id).unwrap().unwrap()[match dialect {
        Dialect::Mahak => "pictureId",
        Dialect::Documented => "productId",
    }]
    .as_i64()
    .unwrap();
    let stored = server.server().admin().uploads();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].record_id, sid);
    assert_eq!(stored[0].entity, collection);
    assert_eq!(stored[0].file_name, "فاکتور ۱۲.jpg");
    assert_eq!(stored[0].content_type, "image/jpeg");
    assert_eq!(stored[0].data, photo, "the bytes arrive whole");
    assert!(e.status().unwrap().uploads.is_empty());
    assert_eq!(e.status().unwrap().counts.uploads, 0);
    let seen = progress.0.lock().unwrap().clone();
    assert!(
        seen.iter().any(|s| matches!(s, ConnectionState::Uploading {
            upload_id, file: 1, files: 1, bytes, bytes_total, ..
        } if *upload_id == task && *bytes == photo.len() as u64 && *bytes_total == *bytes)),
        "{seen:?}"
    );
    // Progress moves as the file goes out, not only per file.
    let done: Vec<u64> = seen
        .iter()
        .filter_map(|s| match s {
            ConnectionState::Uploading { bytes_done, .. } => Some(*bytes_done),
            _ => None,
        })
        .collect();
    assert_eq!(done.first(), Some(&0), "{done:?}");
    assert_eq!(done.last(), Some(&(photo.len() as u64)), "{done:?}");
    assert!(done.windows(2).all(|w| w[0] < w[1]), "{done:?}");
    assert!(
        done.iter()
            .filter(|&&d| d > 0 && d < photo.len() as u64)
            .count()
            >= 3,
        "every 64 KiB of 300 KB: {done:?}"
    );
    // The upload was sent after the save that gave its record an id.
    let log = endpoints_called(&server);
    let save = log
        .iter()
        .position(|e| e.starts_with("SaveAllData"))
        .unwrap();
    let upload = log.iter().position(|e| e == "Upload").unwrap();
    assert!(save < upload, "{log:?}");
}

#[test]
fn mahak_upload_is_multipart_with_picture_id_after_the_pictures_save() {
    upload_goes_after_its_records_save(Dialect::Mahak);
}

#[test]
fn documented_upload_is_multipart_with_entity_and_id_after_the_save() {
    upload_goes_after_its_records_save(Dialect::Documented);
}

#[test]
fn a_file_over_the_limit_or_for_no_record_is_refused_and_nothing_is_queued() {
    let server = start(mahak_server_config());
    let db = TempDb::new("upload-limit");
    let e = mahak_engine(&db, &server.base_url());
    let mut s = e.settings().unwrap();
    s.max_upload_bytes = 1_000;
    e.configure(s).unwrap();
    let (collection, id) = attachable(&e, Dialect::Mahak);
    let big = UploadSource::Bytes(vec![1; 1_001]);
    assert!(matches!(
        e.queue_upload(collection, id, big, "a.jpg"),
        Err(Error::FileTooLarge {
            size: 1_001,
            limit: 1_000
        })
    ));
    let missing = UploadSource::Path(db.0.with_extension("nothing-here"));
    assert!(matches!(
        e.queue_upload(collection, id, missing, "a.jpg"),
        Err(Error::InvalidRecord { .. })
    ));
    let small = || UploadSource::Bytes(vec![1; 10]);
    assert!(matches!(
        e.queue_upload(collection, RecordId::Client(999_999), small(), "a.jpg"),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        e.queue_upload(collection, id, small(), "../a.jpg"),
        Err(Error::InvalidRecord { .. })
    ));
    assert!(e.tasks().unwrap().is_empty());
    e.queue_upload(collection, id, small(), "a.jpg").unwrap();
    assert_eq!(e.tasks().unwrap().len(), 1);
}

#[test]
fn a_refused_upload_is_parked_with_the_servers_words_and_a_retry_sends_it() {
    for dialect in [Dialect::Mahak, Dialect::Documented] {
        let server = start(server_for(dialect));
        let db = TempDb::new("upload-refused");
        let e = engine_for(&db, &server.base_url(), dialect);
        let (collection, id) = attachable(&e, dialect);
        e.queue_upload(
            collection,
            id,
            UploadSource::Bytes(b"jpeg".to_vec()),
            "x.jpg",
        )
        .unwrap();
        server
            .server()
            .update_config(|c| c.refuse_tasks = Some("فرمت فایل مجاز نیست".into()));
        let report = e.sync().unwrap();
        assert_eq!((report.uploaded, report.tasks_parked), (0, 1));
        let letters = e.dead_letters().unwrap();
        assert_eq!(letters.len(), 1, "{dialect:?}");
        assert!(letters[0].message.contains("فرمت فایل مجاز نیست"));
        assert!(letters[0].changes.is_empty());
        assert_eq!(letters[0].tasks.len(), 1);
        assert!(matches!(
            e.uploads().unwrap()[0].state,
            TaskState::Parked { .. }
        ));
        // Nothing else waits behind it: a new record still syncs.
        e.create(collection, json!({"fileName": "b.jpg", "name": "b"}))
            .unwrap();
        assert_eq!(e.sync().unwrap().pushed, 1);
        server.server().update_config(|c| c.refuse_tasks = None);
        e.retry_dead_letter(letters[0].id).unwrap();
        assert_eq!(e.sync().unwrap().uploaded, 1);
        assert!(e.dead_letters().unwrap().is_empty());
        assert_eq!(server.server().admin().uploads().len(), 1);
    }
}

#[test]
fn an_upload_whose_answer_is_lost_is_sent_again_and_stored_once() {
    for dialect in [Dialect::Mahak, Dialect::Documented] {
        let server = start(server_for(dialect));
        let db = TempDb::new("upload-lost");
        let e = engine_for(&db, &server.base_url(), dialect);
        let (collection, id) = attachable(&e, dialect);
        e.sync().unwrap();
        e.queue_upload(
            collection,
            id,
            UploadSource::Bytes(b"jpeg".to_vec()),
            "x.jpg",
        )
        .unwrap();
        server
            .server()
            .faults()
            .inject(Some("Upload"), Fault::LoseResponseAfterApply, 1);
        assert_eq!(e.sync().unwrap().uploaded, 1);
        let stored = server.server().admin().uploads();
        assert_eq!(stored.len(), 1, "{dialect:?}");
        assert_eq!(stored[0].received, 2, "sent again, replaced, not added");
        assert!(e.tasks().unwrap().is_empty());
    }
}

#[test]
fn an_upload_whose_record_is_gone_is_parked_not_lost() {
    let server = start(mahak_server_config());
    let db = TempDb::new("upload-gone");
    let e = mahak_engine(&db, &server.base_url());
    let (collection, id) = attachable(&e, Dialect::Mahak);
    e.queue_upload(collection, id, UploadSource::Bytes(b"x".to_vec()), "x.jpg")
        .unwrap();
    // Created and deleted before any sync: the record never reaches the
    // server, and its upload cannot go.
    e.delete(collection, id).unwrap();
    e.sync().unwrap();
    let letters = e.dead_letters().unwrap();
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0].message.contains("no longer exists"),
        "{letters:?}"
    );
    e.discard_dead_letter(letters[0].id).unwrap();
    assert!(e.tasks().unwrap().is_empty());
    assert!(server.server().admin().uploads().is_empty());
}

#[test]
fn mahak_disputes_send_the_real_bodies_and_reconcile_reports_what_the_replica_holds() {
    for (bare, plain) in [(false, false), (true, false), (false, true)] {
        let server = start(ServerConfig {
            bare_task_answers: bare,
            plain_task_answers: plain,
            ..mahak_server_config()
        });
        server.server().admin().seed_products(5).unwrap();
        let db = TempDb::new("disputes");
        let e = mahak_engine(&db, &server.base_url());
        e.sync().unwrap();
        let session = e.session().unwrap().unwrap();
        let ids = e
            .solve_order_dispute(vec![
                OrderDisputeItem {
                    order_id: 501,
                    code: 2,
                    ..Default::default()
                },
                OrderDisputeItem {
                    order_id: 502,
                    code: 3,
                    ..Default::default()
                },
            ])
            .unwrap();
        assert_eq!(ids.len(), 1, "one request for both orders");
        e.solve_dispute(
            "products",
            vec![RecordDisputeItem {
                id: 9,
                row_version: 77,
                ..Default::default()
            }],
        )
        .unwrap();
        let reconcile = e.reconcile_dispute("products").unwrap();
        assert_eq!(reconcile.len(), 1);
        assert_eq!(e.status().unwrap().counts.disputes, 3);
        let report = e.sync().unwrap();
        assert_eq!(
            report.disputes_sent, 3,
            "bare answers: {bare}, plain: {plain}"
        );
        assert!(e.tasks().unwrap().is_empty());
        let got = server.server().admin().disputes();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].endpoint, "SolveOrderDispute");
        assert_eq!(
            got[0].body,
            json!({"databaseId": session.database_id,
                   "disputeItems": [{"id": 501, "code": 2}, {"id": 502, "code": 3}]})
        );
        assert_eq!(
            got[1].body,
            json!({"databaseId": session.database_id, "entityName": "product",
                   "disputeItems": [{"id": 9, "rw": 77}]})
        );
        // Reconcile names every product the replica holds, at its version.
        let mut held: Vec<Value> = local_all(&e, "products")
            .iter()
            .map(|p| json!({"id": p["productId"], "rw": p["rowVersion"]}))
            .collect();
        held.sort_by_key(|v| v["id"].as_i64());
        assert_eq!(held.len(), 5);
        assert_eq!(got[2].body["disputeItems"], Value::Array(held));
        assert_eq!(got[2].body["entityName"], "product");
    }
}

#[test]
fn a_dispute_whose_answer_is_lost_is_never_sent_twice_to_the_real_server() {
    let server = start(mahak_server_config());
    let db = TempDb::new("dispute-lost");
    let e = mahak_engine(&db, &server.base_url());
    e.sync().unwrap();
    e.solve_order_dispute(vec![OrderDisputeItem {
        order_id: 7,
        code: 1,
        ..Default::default()
    }])
    .unwrap();
    server
        .server()
        .faults()
        .inject(Some("SolveOrderDispute"), Fault::LoseResponseAfterApply, 1);
    let report = e.sync().unwrap();
    assert_eq!((report.disputes_sent, report.tasks_parked), (0, 1));
    e.sync().unwrap();
    assert_eq!(server.server().admin().disputes().len(), 1, "never twice");
    let letters = e.dead_letters().unwrap();
    assert_eq!(letters.len(), 1);
    assert!(letters[0].message.contains("never came"), "{letters:?}");
    assert_eq!(letters[0].tasks[0].kind, TaskKind::OrderDispute);
    // The app may decide to send it again.
    e.retry_dead_letter(letters[0].id).unwrap();
    assert_eq!(e.sync().unwrap().disputes_sent, 1);
    assert_eq!(server.server().admin().disputes().len(), 2);
}

#[test]
fn a_documented_dispute_whose_answer_is_lost_is_resent_and_deduplicated() {
    let server = start(server_config());
    let db = TempDb::new("dispute-lost-doc");
    let e = engine(&db, &server.base_url());
    e.sync().unwrap();
    let ids = e
        .solve_order_dispute(vec![
            OrderDisputeItem {
                order_id: 7,
                resolution: "adjust".into(),
                reason: "two bottles broken".into(),
                amount: 120_000.0,
                ..Default::default()
            },
            OrderDisputeItem {
                order_id: 8,
                resolution: "accept".into(),
                ..Default::default()
            },
        ])
        .unwrap();
    assert_eq!(ids.len(), 2, "one request per order in this dialect");
    assert!(matches!(
        e.solve_order_dispute(vec![OrderDisputeItem {
            order_id: 9,
            resolution: "maybe".into(),
            ..Default::default()
        }]),
        Err(Error::InvalidRecord { .. })
    ));
    server
        .server()
        .faults()
        .inject(Some("SolveOrderDispute"), Fault::LoseResponseAfterApply, 1);
    let report = e.sync().unwrap();
    assert_eq!(report.disputes_sent, 2, "{report:?}");
    let got = server.server().admin().disputes();
    assert_eq!(got.len(), 2, "the resend was deduplicated by its requestId");
    assert_eq!(got[0].body["orderId"], 7);
    assert_eq!(got[0].body["resolution"], "adjust");
    assert_eq!(got[0].body["amount"], 120_000.0);
    assert!(got[0].request_id.is_some());
    let lost = server
        .server()
        .requests()
        .into_iter()
        .filter(|r| r.endpoint == "SolveOrderDispute")
        .count();
    assert_eq!(lost, 3, "sent three times, received twice");
}

#[test]
fn a_refused_dispute_is_parked_with_the_servers_words() {
    for dialect in [Dialect::Mahak, Dialect::Documented] {
        let server = start(ServerConfig {
            refuse_tasks: Some("اختلاف قبلا حل شده است".into()),
            ..server_for(dialect)
        });
        let db = TempDb::new("dispute-refused");
        let e = engine_for(&db, &server.base_url(), dialect);
        e.solve_dispute(
            "products",
            vec![RecordDisputeItem {
                id: 3,
                row_version: 4,
                resolution: "keep".into(),
                ..Default::default()
            }],
        )
        .unwrap();
        let report = e.sync().unwrap();
        assert_eq!(report.tasks_parked, 1, "{dialect:?}");
        let letters = e.dead_letters().unwrap();
        assert!(letters[0].message.contains("اختلاف قبلا حل شده است"));
        e.discard_dead_letter(letters[0].id).unwrap();
        assert!(e.tasks().unwrap().is_empty());
        assert!(e.dead_letters().unwrap().is_empty());
    }
}

#[test]
fn a_wipe_keeps_queued_tasks_unless_forced_and_the_queue_survives_a_reopen() {
    let server = start(mahak_server_config());
    let db = TempDb::new("tasks-wipe");
    {
        let e = mahak_engine(&db, &server.base_url());
        e.solve_order_dispute(vec![OrderDisputeItem {
            order_id: 1,
            code: 1,
            ..Default::default()
        }])
        .unwrap();
    }
    let e = mahak_engine(&db, &server.base_url());
    assert_eq!(e.tasks().unwrap().len(), 1, "durable across a reopen");
    assert!(matches!(e.wipe(false), Err(Error::PendingChanges(1))));
    assert_eq!(e.tasks().unwrap().len(), 1);
    e.wipe(true).unwrap();
    assert!(e.tasks().unwrap().is_empty());
}

/// The task endpoints' names come from the settings (WIRE.md: every name
/// must be configurable). Against a server that serves them elsewhere, the
/// default names fail and nothing is lost: the tasks wait, parked with the
/// server's words; once the names are set, a retry delivers them, under
/// those names.
#[test]
fn task_endpoints_are_called_by_the_names_in_the_settings() {
    let server = start(ServerConfig {
        renamed: vec![
            ("UploadPicture".into(), "Upload".into()),
            ("SolveOrderDisputeX".into(), "SolveOrderDispute".into()),
            ("SolveDisputeX".into(), "SolveDispute".into()),
        ],
        ..mahak_server_config()
    });
    server.server().admin().seed_products(3).unwrap();
    let db = TempDb::new("task-names");
    let e = mahak_engine(&db, &server.base_url());
    let (collection, id) = attachable(&e, Dialect::Mahak);
    e.queue_upload(collection, id, UploadSource::Bytes(vec![7; 1_000]), "a.jpg")
        .unwrap();
    e.solve_order_dispute(vec![OrderDisputeItem {
        order_id: 501,
        code: 2,
        ..Default::default()
    }])
    .unwrap();
    e.solve_dispute(
        "products",
        vec![RecordDisputeItem {
            id: 1,
            row_version: 1,
            ..Default::default()
        }],
    )
    .unwrap();

    let first = e.sync().unwrap();
    assert_eq!((first.uploaded, first.disputes_sent), (0, 0), "{first:?}");
    assert!(server.server().admin().uploads().is_empty());
    assert!(server.server().admin().disputes().is_empty());
    assert_eq!(e.tasks().unwrap().len(), 3, "kept, not dropped");
    assert_eq!(first.tasks_parked, 3, "{first:?}");
    let letters = e.dead_letters().unwrap();
    assert!(
        letters.iter().all(|l| l.code == 404 && l.tasks.len() == 1),
        "{letters:?}"
    );

    e.configure(rowsync::Settings {
        upload_endpoint: "UploadPicture".into(),
        order_dispute_endpoint: "SolveOrderDisputeX".into(),
        dispute_endpoint: "SolveDisputeX".into(),
        ..e.settings().unwrap()
    })
    .unwrap();
    for letter in e.dead_letters().unwrap() {
        e.retry_dead_letter(letter.id).unwrap();
    }
    let second = e.sync().unwrap();
    assert_eq!(
        (second.uploaded, second.disputes_sent),
        (1, 2),
        "{second:?}"
    );
    assert!(e.tasks().unwrap().is_empty());
    assert_eq!(server.server().admin().uploads().len(), 1);
    let disputes = server.server().admin().disputes();
    assert_eq!(disputes.len(), 2);
    let called = endpoints_called(&server);
    for name in ["UploadPicture", "SolveOrderDisputeX", "SolveDisputeX"] {
        assert_eq!(
            called.iter().filter(|c| *c == name).count(),
            1,
            "{name}: {called:?}"
        );
    }
}
