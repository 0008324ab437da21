//! The core flows against the reference server: first sync with and without
//! paging, incremental sync of another client's changes, offline writes
//! pushed with ids mapped back, coalescing, unknown fields, crashes between
//! steps, and bad input from the app and from the server.

use std::sync::Arc;

use rowsync::{
    Engine, Error, HttpRequest, HttpResponse, ListOptions, RecordId, Transport, TransportError,
};
use rowsync_e2e::*;
use rowsync_refserver::{Fault, InProcessTransport, RefServer};
use serde_json::{json, Value};

fn seeded(products: usize, persons: usize) -> Arc<RefServer> {
    let s = RefServer::open(server_config()).unwrap();
    s.admin().seed_products(products).unwrap();
    s.admin().seed_persons(persons).unwrap();
    s
}

#[test]
fn first_sync_with_paging_pulls_everything_once() {
    let server = seeded(12_345, 700);
    let db = TempDb::new("first");
    let e = engine_in_process(&db, &server);
    let mut s = e.settings().unwrap();
    s.page_size = 1_000;
    e.configure(s).unwrap();
    let report = e.sync().unwrap();
    assert_eq!(e.count("products", false).unwrap(), 12_345);
    assert_eq!(e.count("persons", false).unwrap(), 700);
    assert_eq!(report.collections["products"].applied, 12_345);
    assert!(
        report.pull_requests >= 13,
        "paged: {} requests",
        report.pull_requests
    );
    // Nothing new: a second sync applies nothing.
    let again = e.sync().unwrap();
    assert_eq!(again.applied(), 0);
    let cps: std::collections::HashMap<_, _> =
        e.status().unwrap().checkpoints.into_iter().collect();
    assert!(cps["products"] > 0 && cps["persons"] > 0);
}

#[test]
fn first_sync_without_paging_over_http() {
    let server = start(server_config());
    server.server().admin().seed_products(3_000).unwrap();
    let db = TempDb::new("nopage");
    let e = engine(&db, &server.base_url());
    let mut s = e.settings().unwrap();
    s.page_size = 0;
    e.configure(s).unwrap();
    let report = e.sync().unwrap();
    assert_eq!(report.pull_requests, 1);
    assert_eq!(e.count("products", false).unwrap(), 3_000);
}

#[test]
fn incremental_sync_brings_updates_and_deletes_of_another_client() {
    let server = seeded(200, 10);
    let db = TempDb::new("incr");
    let e = engine_in_process(&db, &server);
    e.sync().unwrap();
    let admin = server.admin();
    let mut fields = serde_json::Map::new();
    fields.insert("name".into(), json!("Renamed on the desktop"));
    admin.update_fields("products", 5, fields).unwrap();
    admin.delete("products", 6).unwrap();
    admin
        .upsert(
            "products",
            json!({"productId": null, "productClientId": 0, "name": "New", "price": 10}),
        )
        .unwrap();
    let report = e.sync().unwrap();
    assert_eq!(report.collections["products"].applied, 3);
    assert_eq!(report.collections["products"].deleted, 1);
    assert_eq!(
        e.get("products", RecordId::Server(5)).unwrap().unwrap()["name"],
        "Renamed on the desktop"
    );
    assert!(e.get("products", RecordId::Server(6)).unwrap().is_none());
    let with_deleted = e
        .list(
            "products",
            &ListOptions {
                limit: 10_000,
                include_deleted: true,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(with_deleted.records.len(), 201);
    assert_eq!(e.count("products", false).unwrap(), 200);
}

fn order_with_lines(e: &Engine, customer: i64, lines: usize) -> i64 {
    e.write(|w| {
        let order = w.create("orders", json!({"customerId": customer, "totalAmount": 95000, "note": "till 1"}))?;
        let oc = client_id(&order, "order");
        for i in 0..lines {
            w.create(
                "orderDetails",
                json!({"orderClientId": oc, "productId": 1 + i as i64, "quantity": 2, "unitPrice": 47500}),
            )?;
        }
        Ok(oc)
    })
    .unwrap()
}

#[test]
fn offline_orders_are_pushed_with_ids_mapped_back_to_children() {
    let server = seeded(20, 5);
    let db = TempDb::new("push");
    let e = engine_in_process(&db, &server);
    e.sync().unwrap();
    let oc = order_with_lines(&e, 1, 3);
    assert_eq!(e.status().unwrap().counts.pending, 4);
    let report = e.sync().unwrap();
    assert_eq!(report.pushed, 4);
    assert_eq!(e.status().unwrap().counts.pending, 0);
    let order = e.get("orders", RecordId::Client(oc)).unwrap().unwrap();
    let oid = order["orderId"].as_i64().expect("server id mapped");
    assert!(report
        .id_mappings
        .contains(&("orders".to_string(), oc, oid)));
    let lines: Vec<Value> = local_all(&e, "orderDetails");
    assert_eq!(lines.len(), 3);
    for l in &lines {
        assert_eq!(
            l["orderId"].as_i64(),
            Some(oid),
            "child linked to parent server id: {l}"
        );
        assert!(l["orderDetailId"].as_i64().is_some());
    }
    assert_eq!(server.admin().count("orders"), 1);
    assert_eq!(server.admin().count("orderDetails"), 3);
    for d in server.admin().dump("orderDetails") {
        assert_eq!(d["orderId"].as_i64(), Some(oid));
    }
    // The echo of our own writes applies as a no-op.
    let echo = e.sync().unwrap();
    assert_eq!(echo.pushed, 0);
    assert_eq!(e.conflicts().unwrap().len(), 0);
    assert_eq!(local_all(&e, "orderDetails").len(), 3);
}

#[test]
fn a_lost_save_response_is_retried_without_a_duplicate() {
    let server = seeded(5, 3);
    let db = TempDb::new("lost");
    let e = engine_in_process(&db, &server);
    e.sync().unwrap();
    order_with_lines(&e, 1, 2);
    server
        .faults()
        .inject(Some("SaveAllDataV2"), Fault::LoseResponseAfterApply, 1);
    let report = e.sync().unwrap();
    assert_eq!(report.pushed, 3);
    assert_eq!(server.admin().count("orders"), 1, "never twice");
    assert_eq!(server.admin().count("orderDetails"), 2);
}

#[test]
fn lost_response_then_crash_then_reopen_sends_once() {
    let server = seeded(5, 3);
    let db = TempDb::new("crash-push");
    {
        let e = engine_in_process(&db, &server);
        e.sync().unwrap();
        order_with_lines(&e, 1, 1);
        // Every attempt of this sync loses its answer: the sync fails offline.
        server
            .faults()
            .inject(Some("SaveAllDataV2"), Fault::LoseResponseAfterApply, 100);
        let err = e.sync().unwrap_err();
        assert!(err.is_transient(), "{err}");
        server.faults().clear();
    } // the app is killed here
    let e = engine_in_process(&db, &server);
    assert_eq!(
        e.status().unwrap().counts.pending,
        2,
        "changes survive the crash"
    );
    e.sync().unwrap();
    assert_eq!(e.status().unwrap().counts.pending, 0);
    assert_eq!(server.admin().count("orders"), 1);
    assert_eq!(server.admin().count("orderDetails"), 1);
    assert!(local_all(&e, "orders")[0]["orderId"].as_i64().is_some());
}

#[test]
fn a_pull_cut_after_some_pages_resumes_from_its_checkpoint() {
    let server = seeded(5_000, 0);
    let db = TempDb::new("crash-pull");
    {
        let e = engine_in_process(&db, &server);
        let mut s = e.settings().unwrap();
        s.page_size = 1_000;
        s.max_attempts = 1;
        e.configure(s).unwrap();
        // Let two pages (plus the login) through, then the network dies.
        server.faults().inject(
            Some("GetAllDataV2"),
            Fault::Latency(std::time::Duration::ZERO),
            2,
        );
        server
            .faults()
            .inject(Some("GetAllDataV2"), Fault::DropBeforeResponse, 50);
        assert!(e.sync().is_err());
        let have = e.count("products", false).unwrap();
        assert_eq!(have, 2_000, "two whole pages applied, nothing of the third");
        server.faults().clear();
    }
    let e = engine_in_process(&db, &server);
    let report = e.sync().unwrap();
    assert_eq!(
        report.collections["products"].pulled, 3_000,
        "resumed, not restarted"
    );
    assert_eq!(e.count("products", false).unwrap(), 5_000);
}

#[test]
fn coalescing_rules() {
    let server = seeded(3, 3);
    let db = TempDb::new("coalesce");
    let e = engine_in_process(&db, &server);
    e.sync().unwrap();
    // create + update = one create with the latest values
    let p = e
        .create("persons", json!({"name": "Sara", "phone": "1"}))
        .unwrap();
    let pc = client_id(&p, "person");
    e.update("persons", RecordId::Client(pc), json!({"phone": "2"}))
        .unwrap();
    // create + delete before any push = nothing at all
    let gone = e.create("persons", json!({"name": "Typo"})).unwrap();
    e.delete("persons", RecordId::Client(client_id(&gone, "person")))
        .unwrap();
    // update + delete = delete
    e.update("persons", RecordId::Server(2), json!({"phone": "9"}))
        .unwrap();
    e.delete("persons", RecordId::Server(2)).unwrap();
    assert_eq!(e.status().unwrap().counts.pending, 2);
    let report = e.sync().unwrap();
    assert_eq!(report.pushed, 2);
    let on_server: Vec<Value> = server.admin().dump("persons");
    let sara: Vec<&Value> = on_server.iter().filter(|r| r["name"] == "Sara").collect();
    assert_eq!(sara.len(), 1);
    assert_eq!(sara[0]["phone"], "2");
    assert!(on_server.iter().all(|r| r["name"] != "Typo"));
    assert_eq!(server.admin().get("persons", 2).unwrap()["deleted"], true);
}

#[test]
fn edit_while_in_flight_stays_pending() {
    // A transport that lets the app edit the record while its save is on the wire.
    struct EditDuringSave {
        inner: InProcessTransport,
        engine: std::sync::Mutex<Option<Arc<Engine>>>,
        client_id: std::sync::atomic::AtomicI64,
    }
    impl Transport for EditDuringSave {
        fn send(&self, req: &HttpRequest) -> Result<HttpResponse, TransportError> {
            if req.url.ends_with("SaveAllDataV2") {
                if let Some(e) = self.engine.lock().unwrap().take() {
                    let c = self.client_id.load(std::sync::atomic::Ordering::SeqCst);
                    e.update("persons", RecordId::Client(c), json!({"phone": "newer"}))
                        .unwrap();
                }
            }
            self.inner.send(req)
        }
    }
    let server = seeded(1, 1);
    let db = TempDb::new("inflight");
    let e = Arc::new(engine(&db, "http://127.0.0.1/API/v3"));
    let t = Arc::new(EditDuringSave {
        inner: InProcessTransport::new(server.clone()),
        engine: std::sync::Mutex::new(None),
        client_id: Default::default(),
    });
    e.set_transport(t.clone()).unwrap();
    e.sync().unwrap();
    let p = e
        .create("persons", json!({"name": "Reza", "phone": "old"}))
        .unwrap();
    t.client_id
        .store(client_id(&p, "person"), std::sync::atomic::Ordering::SeqCst);
    *t.engine.lock().unwrap() = Some(e.clone());
    e.sync().unwrap();
    // The create went through; the newer edit was pushed in the same sync or
    // is still pending — never dropped.
    let status = e.status().unwrap();
    let server_rec = server
        .admin()
        .dump("persons")
        .into_iter()
        .find(|r| r["name"] == "Reza")
        .unwrap();
    if status.counts.pending == 0 {
        assert_eq!(server_rec["phone"], "newer");
    }
    e.sync().unwrap();
    let server_rec = server
        .admin()
        .dump("persons")
        .into_iter()
        .find(|r| r["name"] == "Reza")
        .unwrap();
    assert_eq!(server_rec["phone"], "newer");
    assert_eq!(e.status().unwrap().counts.pending, 0);
    assert_eq!(server.admin().count("persons"), 2);
}

#[test]
fn unknown_fields_survive_a_round_trip() {
    let server = seeded(0, 0);
    server
        .admin()
        .upsert(
            "products",
            json!({"productId": 77, "productClientId": null, "name": "Tea", "price": 5,
                   "x_custom": {"shelf": [1, 2]}, "futureField": "kept"}),
        )
        .unwrap();
    let db = TempDb::new("unknown");
    let e = engine_in_process(&db, &server);
    e.sync().unwrap();
    e.update("products", RecordId::Server(77), json!({"price": 6}))
        .unwrap();
    e.sync().unwrap();
    let stored = server.admin().get("products", 77).unwrap();
    assert_eq!(stored["price"], 6);
    assert_eq!(stored["x_custom"], json!({"shelf": [1, 2]}));
    assert_eq!(stored["futureField"], "kept");
    // And a record created locally with fields the engine does not know.
    let c = e
        .create(
            "products",
            json!({"name": "Cake", "price": 1, "appOnly": [true]}),
        )
        .unwrap();
    e.sync().unwrap();
    let id = e
        .get("products", RecordId::Client(client_id(&c, "product")))
        .unwrap()
        .unwrap()["productId"]
        .as_i64()
        .unwrap();
    assert_eq!(
        server.admin().get("products", id).unwrap()["appOnly"],
        json!([true])
    );
}

#[test]
fn records_without_client_ids_from_the_desktop_work() {
    let server = seeded(0, 0);
    server
        .admin()
        .upsert(
            "persons",
            json!({"personId": 10, "personClientId": 0, "name": "Desk A"}),
        )
        .unwrap();
    server
        .admin()
        .upsert(
            "persons",
            json!({"personId": 11, "personClientId": null, "name": "Desk B"}),
        )
        .unwrap();
    let db = TempDb::new("noclient");
    let e = engine_in_process(&db, &server);
    e.sync().unwrap();
    assert_eq!(e.count("persons", false).unwrap(), 2);
    e.update("persons", RecordId::Server(10), json!({"phone": "5"}))
        .unwrap();
    e.sync().unwrap();
    assert_eq!(server.admin().get("persons", 10).unwrap()["phone"], "5");
    assert_eq!(server.admin().count("persons"), 2);
}

fn snapshot(e: &Engine) -> (Vec<Value>, u64, Vec<(String, i64)>) {
    (
        local_all(e, "products"),
        e.status().unwrap().counts.pending,
        e.status().unwrap().checkpoints,
    )
}

#[test]
fn bad_input_from_the_app_is_rejected_and_changes_nothing() {
    let server = seeded(2, 1);
    let db = TempDb::new("badapp");
    let e = engine_in_process(&db, &server);
    e.sync().unwrap();
    let before = (snapshot(&e), local_all(&e, "orderDetails"));
    let invalid = |r: Result<Value, Error>, want: &str| match r {
        Err(Error::InvalidRecord { field, .. }) => assert_eq!(field, want),
        other => panic!("expected InvalidRecord({want}), got {other:?}"),
    };
    invalid(e.create("products", json!([1, 2])), "record");
    invalid(
        e.create("products", json!({"productId": "12", "name": "x"})),
        "productId",
    );
    invalid(
        e.create("products", json!({"productClientId": 1.5})),
        "productClientId",
    );
    invalid(
        e.create("orderDetails", json!({"productId": 1, "quantity": 1})),
        "orderClientId",
    );
    invalid(
        e.create(
            "orderDetails",
            json!({"orderClientId": 424242, "quantity": 1}),
        ),
        "orderClientId",
    );
    assert!(matches!(
        e.create("ghosts", json!({})),
        Err(Error::UnknownCollection(_))
    ));
    assert!(matches!(
        e.update("products", RecordId::Server(999), json!({"name": "x"})),
        Err(Error::NotFound { .. })
    ));
    // A group that fails half-way stores nothing of its first half.
    let r = e.write(|w| {
        let o = w.create("orders", json!({"customerId": 1}))?;
        w.create(
            "orderDetails",
            json!({"orderClientId": client_id(&o, "order"), "quantity": 1}),
        )?;
        w.create("orderDetails", json!({"quantity": 1}))?;
        Ok(())
    });
    assert!(r.is_err());
    assert_eq!(local_all(&e, "orders").len(), 0);
    assert_eq!((snapshot(&e), local_all(&e, "orderDetails")), before);
}

#[test]
fn bad_input_from_the_server_leaves_the_store_as_it_was() {
    let server = seeded(50, 0);
    let db = TempDb::new("badserver");
    let e = engine_in_process(&db, &server);
    e.sync().unwrap();
    let before = snapshot(&e);
    let good =
        r#"{"productId":2,"productClientId":0,"name":"ok","rowVersion":999999,"deleted":false}"#;
    let pages = [
        "{not json".to_string(),
        format!(
            r#"{{"success":true,"code":0,"data":{{"products":{{"rowVersion":999999,"records":[{good},{{"name":"no id","rowVersion":1000000}}]}}}}}}"#
        ),
        format!(
            r#"{{"success":true,"code":0,"data":{{"products":{{"rowVersion":999999,"records":[{good},{{"productId":"3","rowVersion":1000001}}]}}}}}}"#
        ),
        format!(
            r#"{{"success":true,"code":0,"data":{{"products":{{"rowVersion":"x","records":[{good}]}}}}}}"#
        ),
        format!(
            r#"{{"success":true,"code":0,"data":{{"products":{{"records":[{good},{{"productId":4}}]}}}}}}"#
        ),
    ];
    for page in pages {
        let bad = Arc::new(BadPages {
            inner: InProcessTransport::new(server.clone()),
            page: page.clone(),
        });
        e.set_transport(bad).unwrap();
        let err = e.sync().unwrap_err();
        assert!(matches!(err, Error::Protocol { .. }), "{page}: {err:?}");
        assert_eq!(err.tracking_id(), Some("bad-1"));
        assert_eq!(snapshot(&e), before, "store untouched by {page}");
    }
}

#[test]
fn an_unreadable_page_does_not_hold_the_outbox_back() {
    let server = seeded(10, 2);
    let db = TempDb::new("badpage-push");
    let e = engine_in_process(&db, &server);
    e.sync().unwrap();
    order_with_lines(&e, 1, 2);
    let bad = Arc::new(BadPages {
        inner: InProcessTransport::new(server.clone()),
        page: "{not json".to_string(),
    });
    e.set_transport(bad).unwrap();
    let err = e.sync().unwrap_err();
    assert!(matches!(err, Error::Protocol { .. }), "{err:?}");
    assert_eq!(
        e.status().unwrap().counts.pending,
        0,
        "the order was pushed anyway"
    );
    assert_eq!(server.admin().count("orders"), 1);
    assert_eq!(server.admin().count("orderDetails"), 2);
    assert!(e.last_report().unwrap().unwrap().error.is_some());
}

/// Reads go through their own connection: a read made while a write group
/// holds the writer returns at once, and sees the state before the group.
#[test]
fn reads_do_not_wait_for_the_writer() {
    let server = seeded(3, 0);
    let db = TempDb::new("reader");
    let e = Arc::new(engine_in_process(&db, &server));
    e.sync().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = e.clone();
    let answered = e
        .write(|w| {
            w.create("products", json!({"name": "inside the group"}))?;
            std::thread::spawn(move || {
                let n = reader.count("products", false);
                let got = reader.get("products", RecordId::Server(1));
                let _ = tx.send((n, got));
            });
            Ok(rx.recv_timeout(std::time::Duration::from_secs(10)))
        })
        .unwrap();
    let (n, got) = answered.expect("the read returned while the write group was open");
    assert_eq!(
        n.unwrap(),
        3,
        "the group's own write is not visible before it commits"
    );
    assert!(got.unwrap().is_some());
    assert_eq!(e.count("products", false).unwrap(), 4);
}

#[test]
fn tolerated_server_quirks_apply_idempotently() {
    let server = seeded(0, 0);
    let db = TempDb::new("quirks");
    let e = engine_in_process(&db, &server);
    e.sync().unwrap();
    let rec = |id: i64, rv: i64, name: &str| {
        format!(
            r#"{{"productId":{id},"productClientId":null,"name":"{name}","rowVersion":{rv},"deleted":false,"new":1}}"#
        )
    };
    // Unsorted, repeated, extra unknown collection and envelope fields, no hasMore.
    let page = format!(
        r#"{{"success":true,"code":0,"message":"","extra":1,"data":{{"unknownThings":{{"records":[1]}},
            "persons":null,"products":{{"rowVersion":10,"records":[{},{},{},{}]}}}}}}"#,
        rec(3, 9, "c"),
        rec(1, 7, "a"),
        rec(3, 9, "c"),
        rec(2, 8, "b")
    );
    let quirky = Arc::new(BadPages {
        inner: InProcessTransport::new(server.clone()),
        page,
    });
    e.set_transport(quirky).unwrap();
    let changed = Arc::new(std::sync::Mutex::new(0usize));
    struct Count(Arc<std::sync::Mutex<usize>>);
    impl rowsync::ChangeListener for Count {
        fn on_change(&self, events: &[rowsync::ChangeEvent]) {
            *self.0.lock().unwrap() += events.iter().map(|e| e.records.len()).sum::<usize>();
        }
    }
    let _sub = e.subscribe_changes(Arc::new(Count(changed.clone())));
    let r = e.sync().unwrap();
    assert_eq!(e.count("products", false).unwrap(), 3);
    assert_eq!(r.collections["products"].applied, 3);
    assert_eq!(*changed.lock().unwrap(), 3, "no event for the repeat");
    let again = e.sync().unwrap();
    assert_eq!(again.applied(), 0, "same versions again are a no-op");
    assert_eq!(*changed.lock().unwrap(), 3);
}

/// Invariant 10: an engine killed at any point of a sync reopens consistent,
/// and the next sync neither loses nor duplicates anything. The k-th HTTP
/// call of a sync dies (before or after the server applied it), the engine
/// is dropped without any cleanup, reopened, and synced again.
#[test]
fn killed_at_any_call_of_a_sync_nothing_is_lost_or_doubled() {
    for fault in [
        Fault::DropBeforeResponse,
        Fault::LoseResponseAfterApply,
        Fault::CutResponse,
    ] {
        for k in 0..12u32 {
            let server = seeded(2_500, 40);
            let db = TempDb::new("kill");
            let mut oc = Vec::new();
            {
                let e = engine_in_process(&db, &server);
                let mut s = e.settings().unwrap();
                s.page_size = 1_000;
                s.batch_size = 5;
                s.max_attempts = 1;
                s.collections = vec!["persons".into()];
                e.configure(s.clone()).unwrap();
                e.sync().unwrap();
                s.collections.clear();
                e.configure(s).unwrap();
                for c in 0..4 {
                    oc.push(order_with_lines(&e, 1 + c, 2));
                }
                e.update("persons", RecordId::Server(1), json!({"phone": "k"}))
                    .unwrap();
                server
                    .faults()
                    .inject(None, Fault::Latency(std::time::Duration::ZERO), k);
                server.faults().inject(None, fault, 1);
                let _ = e.sync();
                server.faults().clear();
            }
            let e = engine_in_process(&db, &server);
            e.sync().unwrap();
            let st = e.status().unwrap();
            assert_eq!(
                (st.counts.pending, st.counts.parked),
                (0, 0),
                "{fault:?} at call {k}"
            );
            let admin = server.admin();
            assert_eq!(admin.count("orders"), 4, "{fault:?} at call {k}");
            assert_eq!(admin.count("orderDetails"), 8, "{fault:?} at call {k}");
            assert_eq!(admin.get("persons", 1).unwrap()["phone"], "k");
            assert_eq!(e.count("products", false).unwrap(), 2_500);
            for c in &oc {
                let local = e.get("orders", RecordId::Client(*c)).unwrap().unwrap();
                let id = local["orderId"].as_i64().expect("mapped");
                assert_eq!(
                    admin.get("orders", id).unwrap()["orderClientId"].as_i64(),
                    Some(*c)
                );
            }
            for d in local_all(&e, "orderDetails") {
                let id = d["orderDetailId"].as_i64().expect("line mapped");
                let s = admin.get("orderDetails", id).unwrap();
                assert_eq!(s["orderId"], d["orderId"]);
            }
        }
    }
}
