//! Conflict rules and the dead-letter queue against the reference server:
//! field merge for people, server-wins for money, deletes against edits,
//! 2002 with and without the server's record, one bad order parked with its
//! lines while everything else goes through, bad records isolated without an
//! errors list, and retry and discard of dead letters across restarts.

use std::sync::Arc;

use rowsync::{ConflictInput, ConflictPolicy, ConflictResolver, Engine, RecordId};
use rowsync_e2e::*;
use rowsync_refserver::{RefServer, ServerConfig};
use serde_json::{json, Map, Value};

fn shop(config: ServerConfig) -> Arc<RefServer> {
    let s = RefServer::open(config).unwrap();
    s.admin().seed_persons(60).unwrap();
    s.admin().seed_products(60).unwrap();
    s.admin()
        .upsert(
            "payments",
            json!({"paymentId": 1, "paymentClientId": 0, "amount": 1000, "note": "cash"}),
        )
        .unwrap();
    s
}

fn fields(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

#[test]
fn two_devices_edit_different_fields_of_a_person_and_both_survive() {
    let server = shop(server_config());
    let (da, db_) = (TempDb::new("merge-a"), TempDb::new("merge-b"));
    let (a, b) = (
        engine_in_process(&da, &server),
        engine_in_process(&db_, &server),
    );
    a.sync().unwrap();
    b.sync().unwrap();
    a.update("persons", RecordId::Server(3), json!({"phone": "0912"}))
        .unwrap();
    b.update("persons", RecordId::Server(3), json!({"address": "Tehran"}))
        .unwrap();
    b.sync().unwrap();
    let r = a.sync().unwrap();
    assert_eq!(r.conflicts, 0, "different fields: nothing overridden");
    let s = server.admin().get("persons", 3).unwrap();
    assert_eq!(
        (s["phone"].as_str(), s["address"].as_str()),
        (Some("0912"), Some("Tehran"))
    );
    let local = a.get("persons", RecordId::Server(3)).unwrap().unwrap();
    assert_eq!(
        (local["phone"].as_str(), local["address"].as_str()),
        (Some("0912"), Some("Tehran"))
    );
    b.sync().unwrap();
    assert_eq!(
        b.get("persons", RecordId::Server(3)).unwrap().unwrap()["phone"],
        "0912"
    );
    assert!(a.conflicts().unwrap().is_empty());
}

#[test]
fn the_same_field_edited_on_both_sides_takes_the_server_value_and_is_logged() {
    let server = shop(server_config());
    let db = TempDb::new("same-field");
    let e = engine_in_process(&db, &server);
    e.sync().unwrap();
    e.update(
        "persons",
        RecordId::Server(4),
        json!({"phone": "mine", "note": "kept"}),
    )
    .unwrap();
    server
        .admin()
        .update_fields("persons", 4, fields(json!({"phone": "office"})))
        .unwrap();
    let r = e.sync().unwrap();
    assert_eq!(r.conflicts, 1);
    let s = server.admin().get("persons", 4).unwrap();
    assert_eq!(s["phone"], "office");
    assert_eq!(
        s["note"], "kept",
        "the one-sided local change was still pushed"
    );
    let log = e.conflicts().unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].fields, vec!["phone".to_string()]);
    assert_eq!(log[0].resolution, "field_merge");
    assert_eq!(log[0].local.as_ref().unwrap()["phone"], "mine");
    assert_eq!(log[0].server.as_ref().unwrap()["phone"], "office");
    assert_eq!(e.clear_conflicts().unwrap(), 1);
    assert!(e.conflicts().unwrap().is_empty());
}

#[test]
fn a_payment_edited_on_both_sides_is_the_servers() {
    let server = shop(server_config());
    let db = TempDb::new("payment");
    let e = engine_in_process(&db, &server);
    e.sync().unwrap();
    e.update(
        "payments",
        RecordId::Server(1),
        json!({"amount": 1500, "note": "card"}),
    )
    .unwrap();
    server
        .admin()
        .update_fields("payments", 1, fields(json!({"amount": 1200})))
        .unwrap();
    e.sync().unwrap();
    let local = e.get("payments", RecordId::Server(1)).unwrap().unwrap();
    let remote = server.admin().get("payments", 1).unwrap();
    assert_eq!(local, remote);
    assert_eq!(
        (remote["amount"].as_i64(), remote["note"].as_str()),
        (Some(1200), Some("cash"))
    );
    let log = e.conflicts().unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].resolution, "server_wins");
    assert_eq!(
        log[0].fields,
        vec!["amount".to_string(), "note".to_string()]
    );
    assert_eq!(e.status().unwrap().counts.pending, 0);
}

#[test]
fn a_save_answered_2002_is_resolved_with_the_servers_record() {
    let server = shop(server_config());
    let db = TempDb::new("2002");
    let e = engine_in_process(&db, &server);
    e.sync().unwrap();
    // Stop pulling people, so the push meets the newer version as a 2002.
    let mut s = e.settings().unwrap();
    s.collections = vec!["products".into()];
    e.configure(s).unwrap();
    e.update(
        "persons",
        RecordId::Server(5),
        json!({"phone": "local", "email": "a@b"}),
    )
    .unwrap();
    server
        .admin()
        .update_fields("persons", 5, fields(json!({"phone": "office"})))
        .unwrap();
    let r = e.sync().unwrap();
    assert_eq!(r.conflicts, 1);
    let s = server.admin().get("persons", 5).unwrap();
    assert_eq!(
        (s["phone"].as_str(), s["email"].as_str()),
        (Some("office"), Some("a@b"))
    );
    assert_eq!(e.status().unwrap().counts.pending, 0);
}

#[test]
fn a_2002_without_the_servers_record_fetches_it_first() {
    let server = shop(ServerConfig {
        omit_error_list: true,
        ..server_config()
    });
    let db = TempDb::new("2002-bare");
    let e = engine_in_process(&db, &server);
    e.sync().unwrap();
    e.update("payments", RecordId::Server(1), json!({"amount": 1}))
        .unwrap();
    // The office edits between our pull and our push.
    struct EditBeforeSave(
        rowsync_refserver::InProcessTransport,
        Arc<RefServer>,
        std::sync::atomic::AtomicBool,
    );
    impl rowsync::Transport for EditBeforeSave {
        fn send(
            &self,
            r: &rowsync::HttpRequest,
        ) -> Result<rowsync::HttpResponse, rowsync::TransportError> {
            if r.url.ends_with("SaveAllDataV2")
                && !self.2.swap(true, std::sync::atomic::Ordering::SeqCst)
            {
                let mut f = Map::new();
                f.insert("amount".into(), json!(777));
                self.1.admin().update_fields("payments", 1, f).unwrap();
            }
            self.0.send(r)
        }
    }
    e.set_transport(Arc::new(EditBeforeSave(
        rowsync_refserver::InProcessTransport::new(server.clone()),
        server.clone(),
        Default::default(),
    )))
    .unwrap();
    e.sync().unwrap();
    assert_eq!(
        e.get("payments", RecordId::Server(1)).unwrap().unwrap()["amount"],
        777
    );
    assert_eq!(server.admin().get("payments", 1).unwrap()["amount"], 777);
    assert_eq!(e.conflicts().unwrap().len(), 1);
    assert_eq!(e.status().unwrap().counts.pending, 0);
}

#[test]
fn local_edit_of_a_record_deleted_on_the_server_and_local_delete_of_an_updated_one() {
    let server = shop(server_config());
    let db = TempDb::new("deletes");
    let e = engine_in_process(&db, &server);
    e.sync().unwrap();
    e.update("persons", RecordId::Server(7), json!({"phone": "lost?"}))
        .unwrap();
    server.admin().delete("persons", 7).unwrap();
    e.delete("products", RecordId::Server(8)).unwrap();
    server
        .admin()
        .update_fields("products", 8, fields(json!({"price": 99})))
        .unwrap();
    e.sync().unwrap();
    assert!(
        e.get("persons", RecordId::Server(7)).unwrap().is_none(),
        "server delete wins"
    );
    assert_eq!(server.admin().get("persons", 7).unwrap()["deleted"], true);
    let p = e
        .get("products", RecordId::Server(8))
        .unwrap()
        .expect("server update beats local delete");
    assert_eq!(p["price"], 99);
    let log = e.conflicts().unwrap();
    let res: Vec<&str> = log.iter().map(|c| c.resolution.as_str()).collect();
    assert!(
        res.contains(&"server_delete_wins") && res.contains(&"server_update_beats_local_delete"),
        "{res:?}"
    );
    let lost = log
        .iter()
        .find(|c| c.resolution == "server_delete_wins")
        .unwrap();
    assert_eq!(
        lost.local.as_ref().unwrap()["phone"],
        "lost?",
        "the local values are kept in the log"
    );
}

fn order(e: &Engine, customer: i64, lines: usize) -> i64 {
    e.write(|w| {
        let o = w.create("orders", json!({"customerId": customer, "totalAmount": 10}))?;
        let oc = client_id(&o, "order");
        for i in 0..lines {
            w.create(
                "orderDetails",
                json!({"orderClientId": oc, "productId": 1 + i as i64, "quantity": 1, "unitPrice": 10}),
            )?;
        }
        Ok(oc)
    })
    .unwrap()
}

#[test]
fn an_order_for_an_unknown_customer_is_parked_with_its_lines_and_the_rest_goes_through() {
    let server = shop(server_config());
    let db = TempDb::new("park");
    let e = engine_in_process(&db, &server);
    e.sync().unwrap();
    for i in 0..25 {
        e.update(
            "products",
            RecordId::Server(1 + i),
            json!({"price": 100 + i}),
        )
        .unwrap();
    }
    let bad = order(&e, 999_999, 3);
    for i in 0..25 {
        order(&e, 1 + i, 0);
    }
    let r = e.sync().unwrap();
    assert_eq!(r.pushed, 50);
    assert_eq!(r.parked, 4);
    assert_eq!(server.admin().count("orders"), 25);
    assert_eq!(server.admin().count("orderDetails"), 0);
    let dlq = e.dead_letters().unwrap();
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0].code, 2001);
    assert_eq!(dlq[0].changes.len(), 4);
    assert!(dlq[0].tracking_id.is_some());
    assert!(
        dlq[0].message.contains("999999") || dlq[0].field.as_deref() == Some("customerId"),
        "{:?}",
        dlq[0]
    );
    // A line added later to the parked order waits with it, and is not parked.
    e.create(
        "orderDetails",
        json!({"orderClientId": bad, "productId": 9, "quantity": 1, "unitPrice": 1}),
    )
    .unwrap();
    let other = e.create("persons", json!({"name": "Walk-in"})).unwrap();
    let r = e.sync().unwrap();
    assert_eq!(r.pushed, 1);
    assert_eq!(r.parked, 0);
    assert!(e
        .get("persons", RecordId::Client(client_id(&other, "person")))
        .unwrap()
        .unwrap()["personId"]
        .is_i64());
    assert_eq!(e.status().unwrap().counts.pending, 1, "the late line waits");
    // Survives a restart; the user fixes the customer and retries.
    drop(e);
    let e = engine_in_process(&db, &server);
    assert_eq!(e.dead_letters().unwrap().len(), 1);
    e.update("orders", RecordId::Client(bad), json!({"customerId": 2}))
        .unwrap();
    e.retry_dead_letter(dlq[0].id).unwrap();
    let r = e.sync().unwrap();
    assert_eq!(r.pushed, 5);
    assert!(e.dead_letters().unwrap().is_empty());
    assert_eq!(server.admin().count("orders"), 26);
    assert_eq!(server.admin().count("orderDetails"), 4);
    assert_eq!(e.status().unwrap().counts.pending, 0);
}

#[test]
fn discarding_a_dead_letter_returns_records_to_the_servers_version() {
    let server = shop(server_config());
    let db = TempDb::new("discard");
    let e = engine_in_process(&db, &server);
    e.sync().unwrap();
    let bad = order(&e, 424_242, 2);
    e.update("products", RecordId::Server(2), json!({"price": -5}))
        .unwrap();
    e.sync().unwrap();
    let dlq = e.dead_letters().unwrap();
    assert_eq!(dlq.len(), 2, "{dlq:?}");
    let codes: Vec<i64> = dlq.iter().map(|d| d.code).collect();
    assert!(codes.contains(&2001) && codes.contains(&3001));
    for d in &dlq {
        e.discard_dead_letter(d.id).unwrap();
    }
    assert!(
        e.get("orders", RecordId::Client(bad)).unwrap().is_none(),
        "never on the server: gone"
    );
    assert!(local_all(&e, "orderDetails").is_empty());
    assert_eq!(
        e.get("products", RecordId::Server(2)).unwrap().unwrap(),
        server.admin().get("products", 2).unwrap(),
        "back to the server's version"
    );
    let st = e.status().unwrap();
    assert_eq!(
        (st.counts.pending, st.counts.parked, st.counts.dead_letters),
        (0, 0, 0)
    );
    assert!(e.discard_dead_letter(dlq[0].id).is_err());
}

#[test]
fn two_bad_records_among_500_are_isolated_without_an_errors_list() {
    let server = shop(ServerConfig {
        omit_error_list: true,
        ..server_config()
    });
    let db = TempDb::new("bisect");
    let e = engine_in_process(&db, &server);
    e.sync().unwrap();
    e.write(|w| {
        for i in 0..500 {
            let price = if i == 137 || i == 402 { -1 } else { i };
            w.create("products", json!({"name": format!("p{i}"), "price": price}))?;
        }
        Ok(())
    })
    .unwrap();
    // Those 500 are one write group, which is never split: the server's
    // rejection parks the group whole. A second device makes 500 single
    // writes, two of them bad: only those two are parked.
    let e2db = TempDb::new("bisect2");
    let e2 = engine_in_process(&e2db, &server);
    for i in 0..500 {
        let price = if i == 137 || i == 402 { -1 } else { i };
        e2.create("products", json!({"name": format!("q{i}"), "price": price}))
            .unwrap();
    }
    let r = e2.sync().unwrap();
    assert_eq!(r.pushed, 498);
    assert_eq!(r.parked, 2);
    let dlq = e2.dead_letters().unwrap();
    assert_eq!(dlq.len(), 2);
    let names: Vec<&str> = dlq
        .iter()
        .map(|d| d.changes[0].record["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"q137") && names.contains(&"q402"),
        "{names:?}"
    );
    // The grouped batch of the first device is parked as one group.
    let r = e.sync().unwrap();
    assert_eq!(r.parked, 500);
    assert_eq!(e.dead_letters().unwrap().len(), 1);
}

#[test]
fn an_app_resolver_and_a_changed_policy() {
    struct LongestName;
    impl ConflictResolver for LongestName {
        fn resolve(&self, i: &ConflictInput<'_>) -> Option<Map<String, Value>> {
            let (l, s) = (i.local["name"].as_str()?, i.server["name"].as_str()?);
            let mut out = i.server.clone();
            out.insert("name".into(), json!(if l.len() > s.len() { l } else { s }));
            Some(out)
        }
    }
    let server = shop(server_config());
    let db = TempDb::new("resolver");
    let e = engine_in_process(&db, &server);
    e.sync().unwrap();
    assert!(
        e.set_resolver("payments", Arc::new(LongestName)).is_err(),
        "financial stays server-wins"
    );
    assert!(e
        .set_policy("invoices", ConflictPolicy::FieldMerge)
        .is_err());
    e.set_resolver("persons", Arc::new(LongestName)).unwrap();
    e.set_policy("products", ConflictPolicy::FieldMerge)
        .unwrap();
    e.update(
        "persons",
        RecordId::Server(9),
        json!({"name": "A much longer local name"}),
    )
    .unwrap();
    server
        .admin()
        .update_fields("persons", 9, fields(json!({"name": "Short"})))
        .unwrap();
    e.update("products", RecordId::Server(9), json!({"price": 1}))
        .unwrap();
    server
        .admin()
        .update_fields("products", 9, fields(json!({"name": "Renamed"})))
        .unwrap();
    e.sync().unwrap();
    assert_eq!(
        server.admin().get("persons", 9).unwrap()["name"],
        "A much longer local name"
    );
    let p = server.admin().get("products", 9).unwrap();
    assert_eq!(
        (p["name"].as_str(), p["price"].as_i64()),
        (Some("Renamed"), Some(1))
    );
}
